#!/usr/bin/env python3
"""make bench: run the benchmark scenarios, print one `name: value` per line, write sim_build/bench.json.

Adding a metric: write a function that measures something and returns {metric name: number}, decorate it
with @bench, and it runs with the others (in the order defined). Every number is measured in this run;
ratios are computed from numbers of the same run. ``--only NAME`` runs the scenarios whose function name
contains NAME. Knobs: SEED (stimulus seed, default 1 so runs compare), COUNT (TLPs per parser stream).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tb import runner  # noqa: E402  (needs the repo root on sys.path)

OUT = ROOT / "sim_build" / "bench.json"
SYNTH_DIR = ROOT / "sim_build" / "synth"

Metrics = dict[str, float | int]
BENCHES: list[Callable[[], Metrics]] = []


def bench(fn: Callable[[], Metrics]) -> Callable[[], Metrics]:
    BENCHES.append(fn)
    return fn


def run_cocotb(name: str, top: str, sources: list, module: str, testcase: str,
               parameters: dict | None = None, extra_env: dict | None = None) -> dict:
    """Run a cocotb bench test that writes its numbers as JSON to $SVM_BENCH_OUT; return them. ``sources``:
    file names under rtl/, or paths; ``extra_env`` more environment for the test."""
    out = runner.BUILD_DIR / "bench" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    paths = [s if isinstance(s, Path) else runner.RTL_DIR / s for s in sources]
    runner.run(top, paths, module, testcase, parameters=parameters, name=name,
               extra_env={"SVM_BENCH_OUT": str(out), **(extra_env or {})})
    if not out.exists():  # outside pytest the runner does not raise on a failed test
        raise RuntimeError(f"bench {name}: the cocotb test failed (see its log above); no numbers written")
    return json.loads(out.read_text())


def sim_sources(test_file: str) -> list:
    """The SOURCES list of a tests/sim/test_*.py wrapper (one list per test bench, kept there)."""
    sys.path.insert(0, str(ROOT / "tests" / "sim"))
    return __import__(test_file).SOURCES


@bench
def tlp_parser() -> Metrics:
    """tlp_rx_parser with no back-pressure: TLPs accepted per cycle against the one-beat-per-cycle ideal,
    and the testbench's wall-clock speed."""
    r = run_cocotb("bench_parser", "tlp_rx_parser", ["iommu_pkg.sv", "tlp_rx_parser.sv"],
                   "tb.cocotb_bench_parser", "bench_parser", parameters={"DATA_W": 256})
    m: Metrics = {}
    for stream in ("hdr_only", "mixed"):
        s = r[stream]
        m[f"tlp_parser_{stream}_tlps_per_cycle"] = s["tlps"] / s["cycles"]
        m[f"tlp_parser_{stream}_ideal_tlps_per_cycle"] = s["tlps"] / s["ideal_cycles"]
        m[f"tlp_parser_{stream}_efficiency"] = s["ideal_cycles"] / s["cycles"]
    wall = sum(r[s]["wall_s"] for s in ("hdr_only", "mixed"))
    m["sim_tlps_per_second"] = sum(r[s]["tlps"] for s in ("hdr_only", "mixed")) / wall
    m["sim_cycles_per_second"] = sum(r[s]["cycles"] for s in ("hdr_only", "mixed")) / wall
    return m


@bench
def iommu_top() -> Metrics:
    """The translation pipeline on iommu_top, scored by the golden model while it is measured
    (tb/cocotb_bench_iommu.py: latencies from the first TLP beat accepted to ARVALID on the DMA port,
    back-to-back IOTLB hits, walks in flight, simulation speed)."""
    return run_cocotb("bench_iommu", "iommu_tb", sim_sources("test_iommu"), "tb.cocotb_bench_iommu", "bench_iommu")


@bench
def queues() -> Metrics:
    """The page request queue and the invalidation queue on their harnesses (scored like their tests):
    page request accepted -> descriptor write answered (visible), and page group response descriptor
    fetched -> PRG response TLP header at the transmitter."""
    prq = run_cocotb("bench_prq", "prq_harness", sim_sources("test_prq"), "tb.cocotb_prq", "prq_latency")
    iq = run_cocotb("bench_inv_queue", "inv_queue_harness", sim_sources("test_inv_queue"), "tb.cocotb_inv_queue",
                    "iq_prg_response")
    return {"prq_write_latency_cycles": prq["prq_write_latency_cycles"],
            "prg_response_latency_cycles": iq["prg_response_latency_cycles"]}


#: DMA jobs of the svm bench's random run (COUNT overrides it)
SVM_BENCH_JOBS = 150


@bench
def svm() -> Metrics:
    """The SVM software loop (tb/cocotb_svm.py svm_random, scored by the golden model while it runs):
    demand faults the driver resolved (page requests answered Success after faulting the page in) per
    wall-clock second of the random run, with SVM_BENCH_JOBS DMA jobs (or COUNT)."""
    r = run_cocotb("bench_svm", "iommu_tb", sim_sources("test_svm"), "tb.cocotb_svm", "svm_random",
                   extra_env={"COUNT": os.environ.get("COUNT") or str(SVM_BENCH_JOBS)})
    return {"svm_faults_per_second": r["svm_faults_per_second"]}


@bench
def synth_resources() -> Metrics:
    """LUTs and FFs of every synthesis top (xc7), from `make synth` (run when a top's summary is missing
    or older than an RTL file). ``lut``/``ff`` are the whole IOMMU's (iommu_top)."""
    tops = os.environ.get("SYNTH_TOPS", "").split()
    if not tops:
        raise RuntimeError("SYNTH_TOPS is empty: run through `make bench` (it passes the Makefile's list)")
    newest_rtl = max(p.stat().st_mtime for p in (ROOT / "rtl").glob("*.sv"))
    if any(not (SYNTH_DIR / f"{t}.json").exists() or (SYNTH_DIR / f"{t}.json").stat().st_mtime < newest_rtl
           for t in tops):
        subprocess.run(["make", "--no-print-directory", "synth"], cwd=ROOT, check=True)
    m: Metrics = {}
    for t in tops:
        s = json.loads((SYNTH_DIR / f"{t}.json").read_text())
        m[f"{t}_lut"] = s["lut"]
        m[f"{t}_ff"] = s["ff"]
    if "iommu_top" in tops:
        m["lut"], m["ff"] = m["iommu_top_lut"], m["iommu_top_ff"]
    return m


def fmt(v: float | int) -> float | int:
    """Four decimals for ratios, whole numbers for rates and counts."""
    if isinstance(v, int):
        return v
    return round(v, 4) if abs(v) < 100 else round(v)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="run only the scenarios whose name contains this")
    args = ap.parse_args(argv)
    os.environ.setdefault("SEED", "1")  # same stimulus every run unless SEED is given
    chosen = [b for b in BENCHES if args.only in b.__name__]
    if not chosen:
        print(f"bench: no scenario matches {args.only!r}; known: {', '.join(b.__name__ for b in BENCHES)}")
        return 2
    OUT.unlink(missing_ok=True)  # a failed run leaves no numbers behind
    metrics: Metrics = {}
    timing = {}
    for b in chosen:
        t0 = time.perf_counter()
        try:
            got = {k: fmt(v) for k, v in b().items()}
        except (RuntimeError, subprocess.CalledProcessError) as e:
            print(f"bench: scenario {b.__name__} failed: {e}")
            return 1
        timing[b.__name__] = round(time.perf_counter() - t0, 1)
        if dup := metrics.keys() & got.keys():
            raise RuntimeError(f"bench {b.__name__}: metric names already used: {sorted(dup)}")
        metrics.update(got)
    print()
    for k, v in metrics.items():
        print(f"{k}: {v}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"metrics": metrics, "seed": int(os.environ["SEED"]), "scenario_wall_s": timing},
                              indent=2) + "\n")
    print(f"(written to {OUT.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
