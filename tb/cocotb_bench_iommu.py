"""make bench: the translation pipeline's numbers, measured on iommu_top (tb/rtl/iommu_tb.sv) with the
system environment (tb/iommu_env.py), so every request of the bench is also scored against the golden
model. No back-pressure, no reordering, a fixed memory latency (MEM_LATENCY cycles on both AXI ports).

Measured (cycles are clock edges of the DUT):
* hit_latency_cycles: a 1-DW read whose context, PASID entry and page are cached: from the edge that
  accepts the TLP's first beat on s_axis_rx to the first cycle m_axi_dma ARVALID is high for it.
* miss_latency_cycles: the same for a page touched for the first time (IOTLB miss, context and PASID
  caches hit, 4-level walk whose upper levels are already accessed: the walker sets A in the leaf with an
  exclusive pair), at MEM_LATENCY.
* hit_requests_per_cycle: HIT_BURST 1-DW reads to cached pages sent back to back (DMA port memory latency
  0), each reading the first DW of a 32-byte line: requests divided by the cycles from the first accepted first beat to the last AR
  handshake (+1): end to end, so the read engine and the completion transmitter count too.
* hit_requests_per_cycle_any_offset: the same with the reads at every DW offset; dma_rd spends a
  realignment cycle on each completion whose data does not start in lane 0.
* hit_translations_per_cycle: the same burst measured where resolve hands each request on (translation
  done), i.e. the translation pipeline alone.
* hit_tlps_accepted_per_cycle: the lane-0 burst at the input (s_axis_rx first beats per cycle), which
  bounds the two above.
* walks_in_flight_max: the most walk-table slots busy at once while WALK_BURST reads to untouched pages
  (each a miss) arrive back to back.
* sim_requests_per_second: requests of the whole bench (scoring included) per wall-clock second.
The numbers go to $SVM_BENCH_OUT as JSON (only when every request checked out).
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from tb.iommu_env import K4, IommuEnv, IommuStats, Knobs

MEM_LATENCY = 20
HIT_BURST = 256
WALK_BURST = 16
RID, PASID = 0x0100, 7
VA = 0x7F00_0000_0000 >> 8  # a canonical 4-level address with every index non-zero


class Probe:
    """Samples the DUT every cycle while running: first-beat handshakes on s_axis_rx, AR handshakes and
    first-ARVALID cycles on m_axi_dma, and the walk table's occupancy."""

    def __init__(self, dut):
        self.dut = dut
        self.cycle = 0
        self.first_beats: list[int] = []
        self.ar_valid_first: list[int] = []   # cycle ARVALID rose (or stayed high for a new request)
        self.ar_handshakes: list[int] = []
        self.walks_max = 0
        self.resolved: list[int] = []         # cycles in which resolve handed a request on
        self.rx_stalls = 0                     # cycles with s_axis_rx TVALID high and TREADY low
        self._in_tlp = False
        self._ar_pending = False
        self.running = True
        cocotb.start_soon(self._run())

    async def _run(self):
        d = self.dut
        busy = d.u_top.wt_busy_q
        r_valid, r_ready = d.u_top.tlb_rsp_valid, d.u_top.tlb_rsp_ready
        while self.running:
            await RisingEdge(d.clk_i)
            self.cycle += 1
            if d.s_axis_rx_tvalid.value and not d.s_axis_rx_tready.value:
                self.rx_stalls += 1
            if d.s_axis_rx_tvalid.value and d.s_axis_rx_tready.value:
                if not self._in_tlp:
                    self.first_beats.append(self.cycle)
                self._in_tlp = not d.s_axis_rx_tlast.value
            if d.m_axi_dma_arvalid.value:
                if not self._ar_pending:
                    self.ar_valid_first.append(self.cycle)
                    self._ar_pending = True
                if d.m_axi_dma_arready.value:
                    self.ar_handshakes.append(self.cycle)
                    self._ar_pending = False
            if r_valid.value and r_ready.value:
                self.resolved.append(self.cycle)
            self.walks_max = max(self.walks_max, bin(int(busy.value)).count("1"))

    def mark(self) -> tuple[int, int, int, int]:
        return len(self.first_beats), len(self.ar_valid_first), len(self.ar_handshakes), len(self.resolved)


@cocotb.test()
async def bench_iommu(dut):
    stats = IommuStats()
    env = IommuEnv(dut, stats, knobs=Knobs(busy=0.0, latency=(MEM_LATENCY, MEM_LATENCY), reorder=False))
    wall0 = time.perf_counter()
    await env.start()
    sp = env.new_space(levels=4)
    pages = [env.map(sp, VA + i * K4, K4, hot=1) for i in range(2 + WALK_BURST)]
    env.bind(RID, PASID, sp)
    await env.invalidate()
    probe = Probe(dut)
    requests = 0

    # warm: context, PASID entry, the first page (and the upper-level A bits of the whole space)
    await env.mrd(RID, pages[0].va, 1, pasid=PASID)
    await env.quiesce(registers=False)
    requests += 1

    # hit latency
    b, a, _, _ = probe.mark()
    await env.mrd(RID, pages[0].va + 0x40, 1, pasid=PASID)
    await env.quiesce(registers=False)
    requests += 1
    hit_latency = probe.ar_valid_first[a] - probe.first_beats[b]

    # miss latency (page 1: never touched)
    b, a, _, _ = probe.mark()
    await env.mrd(RID, pages[1].va, 1, pasid=PASID)
    await env.quiesce(registers=False)
    requests += 1
    miss_latency = probe.ar_valid_first[a] - probe.first_beats[b]

    # back-to-back hits (pages 0 and 1 are in the IOTLB now): once with every read's data in lane 0 of
    # the 32-byte bus, once at every DW offset (dma_rd then spends a realignment cycle per completion)
    async def burst(step: int) -> tuple[float, float, float, int]:
        b, _, h, r = probe.mark()
        stalls0 = probe.rx_stalls
        for i in range(HIT_BURST):
            await env.mrd(RID, pages[i % 2].va + (step * (i // 2)) % K4, 1, pasid=PASID)
        await env.quiesce(registers=False)
        first = probe.first_beats[b]
        return (HIT_BURST / (probe.ar_handshakes[h + HIT_BURST - 1] - first + 1),
                HIT_BURST / (probe.resolved[r + HIT_BURST - 1] - first + 1),
                HIT_BURST / (probe.first_beats[b + HIT_BURST - 1] - first + 1),
                probe.rx_stalls - stalls0)

    # the DMA port answers at once during the bursts (the table port keeps MEM_LATENCY): with 8 reads
    # held by the memory agent a latency of 20 would cap the rate at the bus, not the IOMMU
    env.dma.read_latency = 0
    hit_rate, xlate_rate, offered, stalls = await burst(32)
    hit_rate_any, _, _, _ = await burst(4)
    env.dma.read_latency = MEM_LATENCY
    requests += 2 * HIT_BURST
    dut._log.info("hit burst (lane-0 data): %d cycles with s_axis_rx stalled by the DUT", stalls)

    # misses back to back: walks in flight
    probe.walks_max = 0
    for m in pages[2:]:
        await env.mrd(RID, m.va, 1, pasid=PASID)
    await env.quiesce()
    requests += WALK_BURST
    walks_max = probe.walks_max
    probe.running = False
    wall = time.perf_counter() - wall0

    env.finish()
    stats.write()
    out = {
        "hit_latency_cycles": hit_latency,
        "miss_latency_cycles": miss_latency,
        "miss_latency_memory_latency_cycles": MEM_LATENCY,
        "hit_requests_per_cycle": hit_rate,
        "hit_translations_per_cycle": xlate_rate,
        "hit_tlps_accepted_per_cycle": offered,
        "hit_requests_per_cycle_any_offset": hit_rate_any,
        "hit_dma_memory_latency_cycles": 0,
        "walks_in_flight_max": walks_max,
        "sim_requests_per_second": requests / wall,
    }
    dut._log.info("bench: %s", out)
    await ClockCycles(dut.clk_i, 2)
    if os.environ.get("SVM_BENCH_OUT"):
        with open(os.environ["SVM_BENCH_OUT"], "w") as f:
            json.dump(out, f)
