"""Simulation: rtl/dma_rd.sv, rtl/dma_wr.sv and rtl/tlp_tx.sv under Verilator through tb/rtl/dma_harness.sv,
scored against models.iommu / models.tlp (tb/cocotb_dma.py).

Each case's pytest id is its test name (the first column of the `make sim` table); configurations other
than the default (256-bit bus, Max_Payload_Size 256, RCB 64) carry a suffix."""

import pytest

from tb import runner

SOURCES = [*runner.rtl("iommu_pkg.sv", "dma_pkg.sv", "tlp_tx.sv", "dma_rd.sv", "dma_wr.sv"),
           runner.ROOT / "tb" / "rtl" / "dma_harness.sv"]
TESTS = ["dma_random", "dma_errors", "dma_be_sweep", "dma_lengths", "dma_perf"]
CONFIGS = [(256, 256, 64), (64, 128, 128), (128, 512, 64)]   # (AXI_DATA_W, MAX_PAYLOAD, RCB)
CASES = [(t if (w, m, r) == CONFIGS[0] else f"{t}_w{w}_mps{m}_rcb{r}", t, w, m, r)
         for w, m, r in CONFIGS for t in TESTS]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,data_w,mps,rcb", CASES, ids=[c[0] for c in CASES])
def test_dma(name, testcase, data_w, mps, rcb):
    runner.run("dma_harness", SOURCES, "tb.cocotb_dma", testcase,
               parameters={"AXI_DATA_W": data_w, "MAX_PAYLOAD": mps, "RCB": rcb}, name=name,
               extra_env={"DMA_MAX_PAYLOAD": str(mps), "DMA_RCB": str(rcb)})
