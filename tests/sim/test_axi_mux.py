"""Simulation: the N-to-1 AXI4 mux rtl/axi_mux.sv under Verilator (tb/cocotb_axi_mux.py), through the
harness tb/rtl/axi_mux_tb.sv that gives every upstream row its own cocotbext-axi ports.

Each case's pytest id is its test name (the first column of the `make sim` table). The default set is
the IOMMU's configuration with two masters (256-bit data, 4 writes in the W order FIFO); the n3 set has
three masters (N not a power of two, so one ID prefix names no master), a 64-bit bus (more beats per
burst), 3-bit upstream IDs and a 2-entry W FIFO (AW held back by a full FIFO)."""

import json

import pytest

from tb import runner

SOURCES = [runner.ROOT / "tb" / "rtl" / "axi_mux_tb.vlt", *runner.rtl("axi_mux.sv"),
           runner.ROOT / "tb" / "rtl" / "axi_mux_tb.sv"]
TESTS = ["axi_mux_random", "axi_mux_exclusive", "axi_mux_arbitration"]
DEFAULT = dict(N=2, ID_W=4, DATA_W=256, W_FIFO=4)
N3 = dict(N=3, ID_W=3, DATA_W=64, W_FIFO=2)
CASES = [(t, t, DEFAULT) for t in TESTS] + [(f"{t}_n3", t, N3) for t in TESTS]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,params", CASES, ids=[c[0] for c in CASES])
def test_axi_mux(name, testcase, params):
    runner.run("axi_mux_tb", SOURCES, "tb.cocotb_axi_mux", testcase, parameters=params, name=name,
               extra_env={"AXI_MUX_PARAMS": json.dumps(params)})
