"""Build and run cocotb tests under Verilator from pytest (cocotb 2.1 runner flow).

* One build directory per (top, parameters, waves): ``sim_build/<top>-<params>[-waves]``; builds are
  serialised with a file lock so pytest-xdist workers share them.
* ``SEED=<n>`` reproduces a run; otherwise a fresh seed is drawn and printed. ``WAVES=1`` builds with
  FST tracing (VCD when liblz4's header is missing) and each test writes its dump in its own run dir.
* Tests report their numbers through ``tb.stats``; ``make sim`` prints them as a table.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from cocotb_tools.runner import get_runner
from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
RTL_DIR = ROOT / "rtl"
BUILD_DIR = ROOT / "sim_build"
STATS_DIR = BUILD_DIR / "stats"
WAIVERS = ROOT / "lint" / "waivers.vlt"


def waves_enabled() -> bool:
    return os.environ.get("WAVES", "") not in ("", "0")


def fst_available() -> bool:
    return Path("/usr/include/lz4.h").exists()


def rtl(*names: str) -> list[Path]:
    return [RTL_DIR / n for n in names]


def build(top: str, sources: list[Path], parameters: dict | None = None, waves: bool = False):
    parameters = dict(parameters or {})
    tag = "_".join(f"{k}{v}" for k, v in sorted(parameters.items())) or "default"
    build_dir = BUILD_DIR / f"{top}-{tag}{'-waves' if waves else ''}"
    build_args = ["--x-assign", "unique", "--x-initial", "unique"]
    if waves:
        if fst_available():
            build_args += ["--trace-fst", "--trace-structs"]
        else:
            print("note: /usr/include/lz4.h missing ('apt-get install liblz4-dev' for FST); tracing to VCD")
            build_args += ["--trace-structs"]
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty; large designs switch to precompiled
    # headers and then fail to link ("Vtop__pch.h.fast: linker input file not found").
    if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    runner = get_runner("verilator")
    build_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(build_dir) + ".lock"):
        runner.build(
            sources=[WAIVERS, *sources],
            hdl_toplevel=top,
            build_dir=build_dir,
            parameters=parameters,
            waves=waves,
            build_args=build_args,
            timescale=("1ns", "1ps"),
        )
    return runner, build_dir


def run(
    top: str,
    sources: list[Path],
    test_module: str,
    testcase: str,
    parameters: dict | None = None,
    name: str | None = None,
    extra_env: dict | None = None,
) -> None:
    """Build (cached) and run one cocotb test; raises (SystemExit under pytest) when it fails."""
    name = name or testcase
    seed = int(os.environ["SEED"]) if os.environ.get("SEED") else random.randrange(1, 2**31)
    waves = waves_enabled()
    runner, build_dir = build(top, sources, parameters, waves)
    test_dir = build_dir / f"run-{name}"
    test_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "SVM_TEST_NAME": name,
        "SVM_SEED": str(seed),
        "SVM_STATS_DIR": str(STATS_DIR),
        "SVM_WAVES": "1" if waves else "",
        "SVM_TEST_DIR": str(test_dir),
    }
    if os.environ.get("COUNT"):
        env["COUNT"] = os.environ["COUNT"]
    env.update(extra_env or {})
    print(f"[{name}] seed={seed} (rerun: make waves TEST={name} SEED={seed})")
    runner.test(
        hdl_toplevel=top,
        test_module=test_module,
        testcase=testcase,
        test_dir=test_dir,
        seed=seed,
        waves=waves,
        extra_env=env,
    )
