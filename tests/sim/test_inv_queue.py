"""Simulation: rtl/inv_queue.sv (invalidation queue engine) with the register page, the control block, the
TLP parser and transmitter and an AXI mux around it (tb/rtl/inv_queue_harness.sv), scored against
models.iommu_queues.InvalidationQueue (tb/cocotb_inv_queue.py).

Each case's pytest id is its test name (the first column of the `make sim` table). The `_w64` case runs
the random test with a 64-bit memory bus (descriptors read in 2 or 4 beats), the `_w512` case the basic
test with a 512-bit one (descriptors and status words in the upper lanes of a beat)."""

import pytest

from tb import runner

SOURCES = [*runner.rtl("iommu_pkg.sv", "iommu_reg_pkg.sv", "iommu_ctrl_pkg.sv", "dma_pkg.sv",
                       "pasid_lookup_pkg.sv", "iotlb_pkg.sv", "inv_queue_pkg.sv", "iommu_regs.sv",
                       "iommu_ctrl.sv", "tlp_rx_parser.sv", "tlp_tx.sv", "axi_mux.sv", "inv_queue.sv"),
           runner.ROOT / "tb" / "rtl" / "inv_queue_harness.sv"]
TESTS = ["iq_basic", "iq_errors", "iq_dev_tlb", "iq_prg_response", "iq_wait_fence", "iq_random"]
CASES = [(t, t, {}) for t in TESTS] + [("iq_random_w64", "iq_random", {"AXI_DATA_W": 64}),
                                       ("iq_basic_w512", "iq_basic", {"AXI_DATA_W": 512})]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,params", CASES, ids=[c[0] for c in CASES])
def test_inv_queue(name, testcase, params):
    runner.run("inv_queue_harness", SOURCES, "tb.cocotb_inv_queue", testcase, parameters=params, name=name)
