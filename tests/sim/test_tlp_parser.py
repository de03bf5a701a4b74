"""Simulation: rtl/tlp_rx_parser.sv under Verilator, scored against models.tlp (tb/cocotb_tlp_parser.py).

Each case's pytest id is its test name (the first column of the `make sim` table)."""

import pytest

from tb import runner

SOURCES = runner.rtl("iommu_pkg.sv", "tlp_rx_parser.sv")
TESTS = ["tlp_parser_random", "tlp_parser_streaming", "tlp_parser_long_payloads"]
CASES = [(t if w == 256 else f"{t}_w{w}", t, w) for w in (256, 512) for t in TESTS]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,data_w", CASES, ids=[c[0] for c in CASES])
def test_tlp_parser(name, testcase, data_w):
    runner.run("tlp_rx_parser", SOURCES, "tb.cocotb_tlp_parser", testcase,
               parameters={"DATA_W": data_w}, name=name)
