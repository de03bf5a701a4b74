"""Simulation: rtl/fs_walker.sv under Verilator, scored against models.iommu (tb/cocotb_fs_walker.py).

Each case's pytest id is its test name (the first column of the `make sim` table). The second
parameter set is the small corner: HAW=39 (pointer bits 51:39 reserved), no 1 GiB pages, NW ignored
(NWFS=0), two walk contexts and a 64-bit data bus."""

import json

import pytest

from tb import runner

SOURCES = runner.rtl("fs_walker_pkg.sv", "fs_walker.sv")
TESTS = ["fs_walker_random", "fs_walker_races", "fs_walker_no_exclusive", "fs_walker_full_rate",
         "fs_walker_latency"]
DEFAULT = dict(HAW=48, FS1GP=1, NWFS=1, N_WALKS=4, AXI_DATA_W=256)
SMALL = dict(HAW=39, FS1GP=0, NWFS=0, N_WALKS=2, AXI_DATA_W=64)
CASES = [(t, t, DEFAULT) for t in TESTS] + [
    (f"{t}_small", t, SMALL) for t in ("fs_walker_random", "fs_walker_races", "fs_walker_latency")]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,params", CASES, ids=[c[0] for c in CASES])
def test_fs_walker(name, testcase, params):
    runner.run("fs_walker", SOURCES, "tb.cocotb_fs_walker", testcase, parameters=params, name=name,
               extra_env={"FS_WALKER_PARAMS": json.dumps(params)})
