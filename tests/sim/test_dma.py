"""Simulation: rtl/dma_rd.sv, rtl/dma_wr.sv and rtl/tlp_tx.sv under Verilator through tb/rtl/dma_harness.sv,
scored against models.iommu / models.tlp (tb/cocotb_dma.py).

Each case's pytest id is its test name (the first column of the `make sim` table); configurations other
than the default (256-bit bus, Max_Payload_Size 256, RCB 64, dma_rd's default request table, AXI IDs and
bursts in flight, AR bypass on) carry a suffix. The other two also shrink dma_rd: w64 to 4 request slots
and 8 bursts on 4 AXI IDs (a full request table) with registered AR outputs (AR_BYPASS=0), w128 to 4
bursts on 2 AXI IDs (a full burst table, two bursts per ID)."""

import pytest

from tb import runner

SOURCES = [*runner.rtl("iommu_pkg.sv", "dma_pkg.sv", "tlp_tx.sv", "dma_rd.sv", "dma_wr.sv"),
           runner.ROOT / "tb" / "rtl" / "dma_harness.sv"]
TESTS = ["dma_random", "dma_errors", "dma_be_sweep", "dma_lengths", "dma_perf"]
# (AXI_DATA_W, MAX_PAYLOAD, RCB, NREQ, AXI_ID_W, NBURST, AR_BYPASS); 32 / 32 / 1 are dma_rd's defaults
CONFIGS = [(256, 256, 64, 32, 4, 32, 1), (64, 128, 128, 4, 2, 8, 0), (128, 512, 64, 32, 1, 4, 1)]
CASES = [(t if c == CONFIGS[0] else f"{t}_w{c[0]}_mps{c[1]}_rcb{c[2]}", t, c) for c in CONFIGS for t in TESTS]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,config", CASES, ids=[c[0] for c in CASES])
def test_dma(name, testcase, config):
    data_w, mps, rcb, nreq, id_w, nburst, bypass = config
    runner.run("dma_harness", SOURCES, "tb.cocotb_dma", testcase,
               parameters={"AXI_DATA_W": data_w, "MAX_PAYLOAD": mps, "RCB": rcb, "NREQ": nreq,
                           "AXI_ID_W": id_w, "NBURST": nburst, "AR_BYPASS": bypass},
               name=name, extra_env={"DMA_MAX_PAYLOAD": str(mps), "DMA_RCB": str(rcb), "DMA_NREQ": str(nreq),
                                     "DMA_NBURST": str(nburst), "DMA_AR_BYPASS": str(bypass)})
