"""Simulation: rtl/tlp_rx_parser.sv under Verilator, scored against models.tlp (tb/cocotb_tlp_parser.py)."""

import pytest

from tb import runner

SOURCES = runner.rtl("iommu_pkg.sv", "tlp_rx_parser.sv")
TESTS = ["tlp_parser_random", "tlp_parser_streaming", "tlp_parser_long_payloads"]


@pytest.mark.sim
@pytest.mark.parametrize("data_w", [256, 512])
@pytest.mark.parametrize("testcase", TESTS)
def test_tlp_parser(testcase, data_w):
    name = testcase if data_w == 256 else f"{testcase}_w{data_w}"
    runner.run("tlp_rx_parser", SOURCES, "tb.cocotb_tlp_parser", testcase,
               parameters={"DATA_W": data_w}, name=name)
