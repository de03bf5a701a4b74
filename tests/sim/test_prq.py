"""Simulation: the page request queue writer (rtl/prq.sv) in tb/rtl/prq_harness.sv (register page,
control block, AXI mux, TLP transmitter) under Verilator, scored against models.iommu.Iommu's
PageRequestQueue (tb/cocotb_prq.py).

Each case's pytest id is its test name (the first column of the `make sim` table). The `_w64` / `_w512`
cases run the random test with a 64-bit (4-beat descriptor bursts) and a 512-bit (one narrow beat on
half the lanes) memory bus."""

import pytest

from tb import runner

SOURCES = [*runner.rtl("iommu_pkg.sv", "iommu_reg_pkg.sv", "iotlb_pkg.sv", "dma_pkg.sv", "iommu_ctrl_pkg.sv",
                       "fault_info_pkg.sv", "prq_pkg.sv", "iommu_regs.sv", "iommu_ctrl.sv", "axi_mux.sv",
                       "tlp_tx.sv", "prq.sv"),
           runner.ROOT / "tb" / "rtl" / "prq_harness.sv"]
CASES = [
    ("prq_basic", "prq_basic", {}),
    ("prq_full", "prq_full", {}),
    ("prq_faults", "prq_faults", {}),
    ("prq_stop_marker", "prq_stop_marker", {}),
    ("prq_random", "prq_random", {}),
    ("prq_random_w64", "prq_random", {"AXI_DATA_W": 64}),
    ("prq_random_w512", "prq_random", {"AXI_DATA_W": 512}),
    ("prq_latency", "prq_latency", {}),
]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,params", CASES, ids=[c[0] for c in CASES])
def test_prq(name, testcase, params):
    runner.run("prq_harness", SOURCES, "tb.cocotb_prq", testcase, parameters=params, name=name)
