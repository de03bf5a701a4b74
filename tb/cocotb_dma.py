"""cocotb tests of the translated-DMA engines and the TLP transmitter (rtl/dma_rd.sv, rtl/dma_wr.sv,
rtl/tlp_tx.sv) through tb/rtl/dma_harness.sv, scored against the golden model.

Host memory is ``tb.axi_mem.AxiMemory`` over a ``models.host.Memory`` (random latency, reordering
between IDs, random back-pressure on every channel, SLVERR/DECERR pages). The golden side is a
``models.iommu.Iommu`` over a second ``Memory`` with the same initial content, seen through a wrapper
that raises ``MemoryAccessError`` where the agent injects errors (``AxiMemory.error_for``): every
request is handed to ``Iommu.respond`` with a translation to the physical page the DUT gets, so

* each read's expected TLPs are the model's (``models.tlp.read_completions`` of the golden memory's
  data, or ``error_completion`` with CA on a bus error); requests the translation already failed
  (status UR/CA/CRS, MRdLk) expect ``models.tlp.error_completion``;
* each write changes the golden memory by the model's DMA rule (only enabled bytes; nothing on a bus
  error); writes the DUT must drop (header drop flag, tuser from the parser, payload length mismatch)
  are not applied. The two memories are compared page by page at the end, and every AXI write burst
  is checked as it happens: it stores exactly the next expected write's enabled bytes, in order.

Every TLP frame out of tlp_tx is compared byte for byte with the head of one of two in-order
streams: dma_rd's completions (request order) and the TLPs the testbench feeds to tlp_tx's second
source (random ``models.tlp`` TLPs: prefixes, 4-DW headers, messages with data), and its tkeep must be
full on every beat but the last. Reads and writes run concurrently; the testbench only keeps a read
behind an unfinished write to the same bytes and a write behind an unfinished read of them (the top's
ordering job, not the engines'), so the model's sequential order is the DUT's.
"""

from __future__ import annotations

import logging
import os
import random
from collections import deque
from dataclasses import dataclass, field

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, Event, FallingEdge, First, ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiResp, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from models import tlp as T
from models.host import Memory
from models.iommu import Iommu, IommuConfig, MemoryAccessError, Page, Request, Translation
from tb.axi_mem import AxiMemory
from tb.cocotb_tlp_parser import random_tlp
from tb.runner import RTL_DIR
from tb.stats import Stats
from tb.svstruct import SvPackage

PKG = SvPackage(RTL_DIR / "dma_pkg.sv")
PAGE = 4096
CLK_NS = 4
STREAM = 40  # dma_perf: 1-DW reads streamed back to back (more than the request table holds)
RATE_LATENCY = 20   # dma_perf: memory latency of the sustained-rate measurement (cycles)
RATE_READS = 400    # dma_perf: 1-DW reads in that measurement
# rtl/dma_rd.sv header: request handshake in cycle t -> ARVALID in cycle t (AR_BYPASS=1) or t + 1 (0)
AR_LATENCY = {True: 0, False: 1}
MIN_RATE = 0.9      # dma_perf: sustained 1-DW reads per cycle at memory latency RATE_LATENCY (header: ~1)
STATUS = {T.CPL_SC: 0b000, T.CPL_UR: 0b001, T.CPL_CRS: 0b010, T.CPL_CA: 0b100}


def pack(struct: str, **values) -> int:
    """The integer a packed struct of dma_pkg reads as; members not given are 0."""
    return PKG.pack(struct, values, fill_missing=True)


def enabled_bytes(length: int, first_be: int, last_be: int) -> list[bool]:
    """Per payload byte: written or not (First/Last DW BE, pcie.md §1.3)."""
    out = []
    for i in range(length):
        be = first_be if i == 0 else (last_be if i == length - 1 else 0xF)
        out += [bool(be >> b & 1) for b in range(4)]
    return out


def tx_header(data: bytes) -> tuple[int, bytes]:
    """A TLP's bytes as tlp_tx's source input: (packed tx_hdr_t, payload)."""
    npfx = 0
    while data[4 * npfx] >> 5 == T.FMT_PREFIX:
        npfx += 1
    hlen = 4 * npfx + (16 if data[4 * npfx] >> 5 & 1 else 12)
    dws = sum(int.from_bytes(data[4 * k:4 * k + 4], "big") << 32 * k for k in range(hlen // 4))
    payload = data[hlen:]
    return pack("tx_hdr_t", n_dw=hlen // 4, has_data=int(bool(payload)), dws=dws), payload


class GoldMemory:
    """The golden model's host memory: a ``Memory`` plus the bus errors the AXI agent injects."""

    def __init__(self, mem: Memory, axi: AxiMemory):
        self.mem, self.axi = mem, axi

    def read(self, addr: int, n: int) -> bytes:
        if self.axi.error_for(addr, n, write=False):
            raise MemoryAccessError(f"read of {n} bytes at {addr:#x}: injected bus error")
        return self.mem.read(addr, n)

    def write(self, addr: int, data: bytes) -> None:
        if self.axi.error_for(addr, len(data), write=True):
            raise MemoryAccessError(f"write of {len(data)} bytes at {addr:#x}: injected bus error")
        self.mem.write(addr, data)


class ValidReadyDriver:
    """Drives a ready/valid port from a queue, with random idle cycles; sleeps while the queue is empty."""

    def __init__(self, clk, data, valid, ready, rng: random.Random, busy: float):
        self.clk, self.data, self.valid, self.ready = clk, data, valid, ready
        self.rng, self.busy = rng, busy
        self.queue: deque = deque()
        self.event = Event()
        self.accept_times: list[int] = []
        valid.value = 0
        cocotb.start_soon(self._run())

    def send(self, value: int) -> None:
        self.queue.append(value)
        self.event.set()

    async def _run(self):
        edge = RisingEdge(self.clk)
        while True:
            while not self.queue:
                self.event.clear()
                await self.event.wait()
                await edge
            while self.rng.random() < self.busy:
                await edge
            self.data.value = self.queue[0]
            self.valid.value = 1
            await edge
            while not self.ready.value:
                await edge
            self.accept_times.append(get_sim_time("ns"))
            self.queue.popleft()
            self.valid.value = 0


@dataclass
class Op:
    """One request the testbench issued and what it expects."""

    desc: str
    lo: int = 0                     # physical byte range [lo, hi) it touches
    hi: int = 0
    expect: deque = field(default_factory=deque)   # rd/tx: TLP bytes still to come
    seq: int = 0                    # wr: header ordinal (done when wr_done_cnt_o > seq)


class Tb:
    def __init__(self, dut, stats: Stats, rng: random.Random, busy: float, latency: tuple[int, int],
                 error_pages: int, npages: int = 24):
        self.dut, self.stats, self.rng = dut, stats, rng
        Clock(dut.clk_i, CLK_NS, unit="ns").start()
        self.bytes = len(dut.m_axi_wdata) // 8
        self.mps = int(os.environ.get("DMA_MAX_PAYLOAD", "256"))
        self.nreq = int(os.environ.get("DMA_NREQ", "32"))    # dma_rd's request table (tests/sim/test_dma.py)
        self.nburst = int(os.environ.get("DMA_NBURST", "32"))  # and its bursts in flight
        self.ar_bypass = os.environ.get("DMA_AR_BYPASS", "1") == "1"
        self.rcb = int(os.environ.get("DMA_RCB", "64"))
        self.cid = rng.getrandbits(16)
        dut.completer_id_i.value = self.cid

        self.hw_mem, self.gold_mem = Memory(), Memory()
        kw = dict(reset_active_level=False)
        lo, hi = latency
        self.axi = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), dut.clk_i, dut.rst_ni, self.hw_mem,
                             read_latency=lambda: rng.randint(lo, hi),
                             write_latency=lambda: rng.randint(lo, hi),
                             reorder=True, **kw)
        self.axi.random_backpressure(rng, busy)
        self.axi.on_write.append(self.axi_write)
        self.gold = Iommu(GoldMemory(self.gold_mem, self.axi),
                          IommuConfig(iommu_rid=self.cid, max_payload=self.mps, rcb=self.rcb))

        # physical pages (below and above 4 GiB) with random content, each under its own IOVA page
        self.pages: list[tuple[int, int]] = []   # (pa, iova)
        used: set[int] = set()
        while len(self.pages) < npages:
            pa = rng.getrandbits(rng.choice([20, 40])) << 12
            iova = rng.getrandbits(rng.choice([20, 45])) << 12
            if pa in used or iova in used:
                continue
            used |= {pa, iova}
            content = rng.randbytes(PAGE)
            self.hw_mem.write(pa, content)
            self.gold_mem.write(pa, content)
            self.pages.append((pa, iova))
        self.error_pages = {pa for pa, _ in self.pages[:error_pages]}
        for pa in self.error_pages:
            self.axi.inject_error(pa, PAGE, rng.choice([AxiResp.SLVERR, AxiResp.DECERR]))

        self.wr_src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_wr"), dut.clk_i, dut.rst_ni, **kw)
        self.tx_src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_tx"), dut.clk_i, dut.rst_ni, **kw)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_tlp"), dut.clk_i, dut.rst_ni, **kw)
        for agent in (self.wr_src, self.tx_src, self.sink):
            agent.log.setLevel(logging.WARNING)
            if busy:
                agent.set_pause_generator(iter(lambda: rng.random() < busy, None))
        clk = dut.clk_i
        self.rd_drv = ValidReadyDriver(clk, dut.rd_req_i, dut.rd_req_valid_i, dut.rd_req_ready_o, rng, busy)
        self.wr_drv = ValidReadyDriver(clk, dut.wr_req_i, dut.wr_req_valid_i, dut.wr_req_ready_o, rng, busy)
        self.tx_drv = ValidReadyDriver(clk, dut.tx_hdr_i, dut.tx_hdr_valid_i, dut.tx_hdr_ready_o, rng, busy)

        self.rd_ops: deque[Op] = deque()          # reads with completions still to come, in order
        self.tx_ops: deque[Op] = deque()
        self.wr_pending: deque[Op] = deque()      # writes not yet reported done
        self.wr_expect: deque[tuple[Op, dict[int, int]]] = deque()   # AXI stores still to come
        self.wr_seq = 0
        self.failure: str | None = None
        self.progress = Event()                   # a TLP frame arrived or an AXI write was checked
        self.frames = 0
        self.frame_log: list[tuple[int, int]] = []   # per TLP frame: (sim ns of its last beat, its bytes)
        self.first_out_ns: int | None = None

    # --- reset and monitors -------------------------------------------------------------------------
    async def reset(self):
        self.dut.rst_ni.value = 0
        await ClockCycles(self.dut.clk_i, 3)
        self.dut.rst_ni.value = 1
        await ClockCycles(self.dut.clk_i, 2)
        self.t0 = get_sim_time("ns")
        cocotb.start_soon(self.tlp_monitor())

    def fail(self, msg: str) -> None:
        if self.failure is None:
            self.failure = msg
            self.stats.mismatches += 1

    async def tlp_monitor(self):
        """Every frame out of tlp_tx is the next TLP of dma_rd's stream or of the tb source's."""
        b = self.bytes
        while True:
            frame = await self.sink.recv(compact=False)
            if self.first_out_ns is None:
                self.first_out_ns = get_sim_time("ns")
            self.progress.set()
            keep = list(frame.tkeep)
            n = keep.count(1)
            data = bytes(frame.tdata[:n])
            self.frames += 1
            self.frame_log.append((int(get_sim_time("ns")), n))
            if keep != [1] * n + [0] * (len(keep) - n) or len(keep) - n >= b or len(keep) % b:
                self.fail(f"frame #{self.frames}: tkeep not full on every beat but the last: {keep}")
                continue
            for ops in (self.rd_ops, self.tx_ops):
                if ops and ops[0].expect[0] == data:
                    op = ops[0]
                    op.expect.popleft()
                    if not op.expect:
                        ops.popleft()
                        self.stats.checked += 1
                    break
            else:
                heads = [f"{name}: {ops[0].desc}\n      expected {ops[0].expect[0].hex()}\n      decoded  "
                         f"{self._decode(ops[0].expect[0])}"
                         for name, ops in (("dma_rd", self.rd_ops), ("tb source", self.tx_ops)) if ops]
                self.fail(f"TLP frame #{self.frames} matches neither stream's next TLP\n  actual:   "
                          f"{data.hex()}\n  decoded:  {self._decode(data)}\n  heads:\n    "
                          + "\n    ".join(heads))

    @staticmethod
    def _decode(data: bytes) -> str:
        try:
            return repr(T.decode(data))
        except T.TlpError as exc:
            return f"(undecodable: {exc})"

    def axi_write(self, rec) -> None:
        """Each AXI write burst stores exactly the next expected bytes (in order, enabled bytes only)."""
        self.progress.set()
        if not rec.pieces:
            if rec.resp in (AxiResp.SLVERR, AxiResp.DECERR) and rec.addr & ~(PAGE - 1) in self.error_pages:
                return  # the memory refused it; the write is lost, as the model's is
            self.fail(f"AXI write at {rec.addr:#x} stored nothing (resp {rec.resp.name}): a write with no "
                      f"byte enabled must not reach the bus")
            return
        if not self.wr_expect:
            self.fail(f"unexpected AXI write burst at {rec.addr:#x} (no write pending): {rec.pieces}")
            return
        op, exp = self.wr_expect[0]
        for addr, chunk in rec.pieces:
            for i, byte in enumerate(chunk):
                if exp.pop(addr + i, None) != byte:
                    self.fail(f"AXI write stored {byte:#04x} at {addr + i:#x}, which the next write does not "
                              f"write (or not with that value)\n  write: {op.desc}")
                    return
        if not exp:
            self.wr_expect.popleft()

    # --- waiting ----------------------------------------------------------------------------------
    def check(self) -> None:
        if self.failure:
            raise AssertionError(f"{self.failure}\n  {self.stats.rerun_hint()}")

    async def until(self, pred, what: str, timeout: int = 200_000):
        """Sleep until ``pred()``: re-checked when a frame arrives, a write finishes or 64 cycles pass."""
        t_end = get_sim_time("ns") + timeout * CLK_NS
        while not pred():
            self.check()
            self.progress.clear()
            await First(self.progress.wait(), self.dut.wr_done_cnt_o.value_change,
                        ClockCycles(self.dut.clk_i, 64))
            if get_sim_time("ns") > t_end:
                raise AssertionError(f"timeout after {timeout} cycles waiting for {what}; reads pending "
                                     f"{len(self.rd_ops)}, tx pending {len(self.tx_ops)}, writes pending "
                                     f"{len(self.wr_pending)}\n  {self.stats.rerun_hint()}")
        self.check()

    def writes_done(self) -> int:
        done = int(self.dut.wr_done_cnt_o.value)
        while self.wr_pending and self.wr_pending[0].seq < done:
            self.wr_pending.popleft()
        return done

    def write_hazard(self, lo: int, hi: int) -> bool:
        """An unfinished write touches [lo, hi)."""
        self.writes_done()
        return any(w.lo < hi and lo < w.hi for w in self.wr_pending)

    def outstanding(self) -> int:
        self.writes_done()
        return len(self.rd_ops) + len(self.tx_ops) + len(self.wr_pending)

    async def throttle(self, limit: int):
        await self.until(lambda: self.outstanding() < limit, "the DUT to catch up")

    # --- requests -----------------------------------------------------------------------------------
    def page(self) -> tuple[int, int]:
        return self.rng.choice(self.pages)

    async def read(self, pa_page: int, iova_page: int, offset: int, length: int, first_be: int, last_be: int,
                   status: int = T.CPL_SC, locked: int = 0, **fields):
        """Issue a translated read of ``length`` DW at page offset ``offset`` and expect the model's TLPs."""
        rng = self.rng
        f = dict(requester_id=rng.getrandbits(16), tag=rng.getrandbits(10), tc=rng.getrandbits(3),
                 attr=rng.getrandbits(3))
        f.update(fields)
        pkt = T.MemRead(address=iova_page + offset, length=length, first_be=first_be, last_be=last_be,
                        locked=locked, **f)
        pkt.encode()  # the codec accepts it
        lo, hi = pa_page + offset, pa_page + offset + 4 * length
        await self.until(lambda: not self.write_hazard(lo, hi), "an earlier write to the same bytes")
        if status == T.CPL_SC:
            t = Translation(request=Request("read", pkt.requester_id, pkt.address),
                            page=Page(iova=iova_page, size=PAGE, pa=pa_page))
            self.gold.respond(pkt, t)
            expect = self.gold.take_tx()
        else:
            expect = [T.error_completion(pkt, self.cid, status).encode()]
        desc = (f"read pa={lo:#x} iova={pkt.address:#x} len={length} be={first_be:x}/{last_be:x} "
                f"status={status} locked={locked} tag={pkt.tag:#x}")
        self.rd_ops.append(Op(desc, lo, hi, deque(expect)))
        self.rd_drv.send(pack("rd_req_t", addr=lo, ua_lo=pkt.address >> 2 & 0x1F,
                              requester_id=pkt.requester_id,
                              tag=pkt.tag, tc=pkt.tc, attr=pkt.attr, length=length & 0x3FF, first_be=first_be,
                              last_be=last_be, status=STATUS[status], locked=locked))

    async def write(self, pa_page: int, iova_page: int, offset: int, length: int, first_be: int, last_be: int,
                    variant: str = "ok"):
        """Issue a translated write. variant: ok | drop (header flag) | tuser (parser flagged the length) |
        short / long (payload length differs, flagged with tuser) | bare_short / bare_long (differs, no
        tuser: the engine's own check)."""
        rng = self.rng
        data = rng.randbytes(4 * length)
        pkt = T.MemWrite(requester_id=rng.getrandbits(16), address=iova_page + offset, first_be=first_be,
                         last_be=last_be, data=data)
        pkt.encode()
        lo, hi = pa_page + offset, pa_page + offset + 4 * length
        await self.until(lambda: not any(r.lo < hi and lo < r.hi for r in self.rd_ops),
                         "an earlier read of the same bytes")
        payload, tuser = data, 0
        if variant in ("short", "bare_short"):
            payload = data[:-4 * rng.randint(1, length - 1)]
        elif variant in ("long", "bare_long"):
            payload = data + rng.randbytes(4 * rng.choice([1, 2, rng.randint(1, 300), 1024]))
        if variant in ("tuser", "short", "long"):
            tuser = 1
        stores = {}
        if variant == "ok":
            self.gold.respond(pkt, Translation(request=Request("write", pkt.requester_id, pkt.address),
                                               page=Page(iova=iova_page, size=PAGE, pa=pa_page)))
            if pa_page not in self.error_pages:
                enables = enabled_bytes(length, first_be, last_be)
                stores = {lo + i: data[i] for i, en in enumerate(enables) if en}
        desc = (f"write pa={lo:#x} len={length} be={first_be:x}/{last_be:x} variant={variant} "
                f"seq={self.wr_seq}")
        op = Op(desc, lo, hi, seq=self.wr_seq)
        self.wr_seq += 1
        self.wr_pending.append(op)
        if stores:
            self.wr_expect.append((op, stores))
        self.wr_drv.send(pack("wr_req_t", addr=lo, length=length & 0x3FF, first_be=first_be, last_be=last_be,
                              drop=int(variant == "drop")))
        frame = AxiStreamFrame(payload, tuser=[0] * (len(payload) - 1) + [tuser])
        await self.wr_src.send(frame)

    async def tx(self, t: T.Tlp):
        """A TLP through tlp_tx's second source."""
        data = t.encode()
        hdr, payload = tx_header(data)
        self.tx_ops.append(Op(f"tb TLP {t!r}", expect=deque([data])))
        self.tx_drv.send(hdr)
        if payload:
            await self.tx_src.send(AxiStreamFrame(payload))

    async def ar_latency(self, pa: int, iova: int) -> int:
        """One lone 1-DW read: cycles from the cycle its request handshake happens to the first cycle ARVALID
        is high, both sampled mid-cycle (falling edge, ReadOnly) so there is no edge-ordering question."""
        dut = self.dut
        assert not self.rd_ops and not int(dut.m_axi_arvalid.value), "ar_latency needs dma_rd idle"
        fall, ro = FallingEdge(dut.clk_i), ReadOnly()
        await self.read(pa, iova, 0x40, 1, 0xF, 0)
        cycle, accepted = 0, None
        while True:
            await fall
            await ro
            cycle += 1
            if cycle > 1000:
                raise AssertionError(f"ar_latency: no AR within 1000 cycles\n  {self.stats.rerun_hint()}")
            if accepted is None and int(dut.rd_req_valid_i.value) and int(dut.rd_req_ready_o.value):
                accepted = cycle
            if accepted is not None and int(dut.m_axi_arvalid.value):
                break
        await self.until(lambda: not self.rd_ops, "the read")
        return cycle - accepted

    def frames_span(self, since: int, lengths: list[int], what: str) -> int:
        """The TLP frames logged from index ``since`` on (``lengths``: their expected sizes in bytes) left
        back to back: from the first beat of the first to the last beat of the last, one cycle per beat,
        ceil(bytes / bus bytes) beats per TLP. Returns that span in cycles."""
        log = self.frame_log[since:]
        if len(log) != len(lengths):
            raise AssertionError(f"{what}: {len(log)} frames, expected {len(lengths)}\n  {self.stats.rerun_hint()}")
        b = self.bytes
        span = (log[-1][0] - log[0][0]) // CLK_NS + -(-log[0][1] // b)
        ideal = sum(-(-n // b) for n in lengths)
        if span != ideal:
            gaps = [(log[i][0] - log[i - 1][0]) // CLK_NS for i in range(1, len(log))]
            raise AssertionError(f"{what}: {len(log)} TLPs took {span} cycles, expected {ideal} (one beat per "
                                 f"cycle, no idle cycle between TLPs)\n  cycles between frame ends: {gaps}\n  "
                                 f"{self.stats.rerun_hint()}")
        return span

    async def tx_lockstep(self, tlps: list[T.Tlp]) -> None:
        """TLPs through tlp_tx's second source, each offered as iommu_top's ATS completion source does: its
        header and its payload (one beat: at most a bus width) valid together, the next TLP in the cycle
        after both were taken. Wakes every cycle until the last is taken: for short bursts, while the tb
        source's own agents are idle."""
        dut, edge = self.dut, RisingEdge(self.dut.clk_i)
        assert not self.tx_drv.queue and self.tx_src.idle(), "tx_lockstep needs the tb source's agents idle"
        for t in tlps:
            data = t.encode()
            hdr, payload = tx_header(data)
            assert len(payload) <= self.bytes, "tx_lockstep sends one-beat payloads only"
            self.tx_ops.append(Op(f"tb TLP {t!r}", expect=deque([data])))
            dut.tx_hdr_i.value = hdr
            dut.tx_hdr_valid_i.value = 1
            hdr_wait, pay_wait = True, bool(payload)
            if payload:
                dut.s_axis_tx_tdata.value = int.from_bytes(payload, "little")
                dut.s_axis_tx_tkeep.value = (1 << len(payload)) - 1
                dut.s_axis_tx_tlast.value = 1
                dut.s_axis_tx_tvalid.value = 1
            while hdr_wait or pay_wait:
                await edge
                if hdr_wait and dut.tx_hdr_ready_o.value:
                    hdr_wait = False
                    dut.tx_hdr_valid_i.value = 0
                if pay_wait and dut.s_axis_tx_tready.value:
                    pay_wait = False
                    dut.s_axis_tx_tvalid.value = 0

    async def finish(self):
        """Wait until everything issued is answered/written, then compare the memories."""
        await self.until(lambda: self.outstanding() == 0 and self.axi.idle(), "the last requests")
        await ClockCycles(self.dut.clk_i, 20)
        self.check()
        if not self.sink.empty():
            raise AssertionError(f"TLPs nobody expected: {self.sink.count()} frame(s)\n  "
                                 f"{self.stats.rerun_hint()}")
        if self.wr_expect:
            op, exp = self.wr_expect[0]
            raise AssertionError(f"{len(self.wr_expect)} write(s) never reached memory, first: {op.desc} "
                                 f"({len(exp)} bytes missing)\n  {self.stats.rerun_hint()}")
        for pa, _ in self.pages:
            hw, gold = self.hw_mem.read(pa, PAGE), self.gold_mem.read(pa, PAGE)
            if hw != gold:
                i = next(k for k in range(PAGE) if hw[k] != gold[k])
                self.stats.mismatches += 1
                raise AssertionError(f"host memory differs from the golden model at {pa + i:#x}: "
                                     f"{hw[i]:#04x} != {gold[i]:#04x}\n  {self.stats.rerun_hint()}")
        self.stats.cycles = int((get_sim_time("ns") - self.t0) // CLK_NS)


# ------------------------------------------------------------------------------------------------
# Stimulus
# ------------------------------------------------------------------------------------------------


def rand_length(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.35:
        return rng.randint(1, 16)
    if r < 0.65:
        return rng.randint(17, 160)
    if r < 0.9:
        return rng.randint(161, 1023)
    return rng.choice([1024, 1023, 512, 513, 64, 65])


def rand_be(rng: random.Random, length: int, offset: int) -> tuple[int, int]:
    """Byte enables the codec accepts (TL §2.2.5.1): any for 1 DW, any non-zero pair for a QW-aligned
    2 DW request, contiguous otherwise."""
    if length == 1:
        return rng.randrange(16), 0
    if length == 2 and offset % 8 == 0:
        return rng.randrange(1, 16), rng.randrange(1, 16)
    return rng.choice([0xF, 0xE, 0xC, 0x8]), rng.choice([0xF, 0x7, 0x3, 0x1])


def rand_offset(rng: random.Random, length: int) -> int:
    if rng.random() < 0.2:   # near the end of the page
        return PAGE - 4 * length
    return 4 * rng.randint(0, PAGE // 4 - length)


WRITE_VARIANTS = (["ok"] * 14 + ["drop", "tuser", "short", "long", "bare_short", "bare_long"])


async def random_op(tb: Tb, rng: random.Random, tx_share: float):
    r = rng.random()
    pa, iova = tb.page()
    length = rand_length(rng)
    offset = rand_offset(rng, length)
    first_be, last_be = rand_be(rng, length, offset)
    if r < tx_share:
        await tb.tx(random_tlp(rng, 64))
    elif r < tx_share + (1 - tx_share) / 2:
        status, locked = T.CPL_SC, int(rng.random() < 0.03)
        if rng.random() < 0.12:   # the translation failed already
            status = rng.choice([T.CPL_UR, T.CPL_CA])
            locked = int(status == T.CPL_UR and rng.random() < 0.3)
        await tb.read(pa, iova, offset, length, first_be, last_be, status, locked)
    else:
        variant = rng.choice(WRITE_VARIANTS)
        if variant in ("short", "bare_short") and length == 1:
            variant = "long"
        await tb.write(pa, iova, offset, length, first_be, last_be, variant)


def _count(default: int) -> int:
    return int(os.environ.get("COUNT") or default)


async def run_random(dut, count: int, busy: float, latency: tuple[int, int], error_pages: int,
                     tx_share: float, limit: int = 24):
    stats = Stats()
    rng = random.Random(stats.seed)
    tb = Tb(dut, stats, rng, busy, latency, error_pages)
    await tb.reset()
    try:
        for _ in range(count):
            await tb.throttle(limit)
            await random_op(tb, rng, tx_share)
        await tb.finish()
        stats.result = "PASS"
        dut._log.info("checked %d requests (%d TLP frames), %d cycles", stats.checked + tb.wr_seq, tb.frames,
                      stats.cycles)
    finally:
        stats.checked += tb.wr_seq
        stats.write()


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------


@cocotb.test()
async def dma_random(dut):
    """Random reads, writes (and their drop cases) and tb TLPs, with latency and back-pressure everywhere."""
    await run_random(dut, _count(300), busy=0.3, latency=(0, 30), error_pages=2, tx_share=0.1)


@cocotb.test()
async def dma_errors(dut):
    """A third of the pages answer SLVERR/DECERR: CA completions for reads, dropped writes."""
    await run_random(dut, _count(200), busy=0.2, latency=(0, 10), error_pages=8, tx_share=0.0)


@cocotb.test()
async def dma_be_sweep(dut):
    """Every byte-enable pattern the codec accepts, as a read and as a write: 1 DW (all 16 First BEs),
    2 DW QW-aligned (every non-zero pair), 2 DW unaligned and longer requests (every contiguous pair),
    at random lanes; plus lengths across the MAX_PAYLOAD and RCB boundaries."""
    stats = Stats()
    rng = random.Random(stats.seed)
    tb = Tb(dut, stats, rng, busy=0.2, latency=(0, 8), error_pages=0)
    await tb.reset()
    contiguous = [(f, l) for f in (0xF, 0xE, 0xC, 0x8) for l in (0xF, 0x7, 0x3, 0x1)]
    cases = [(1, 8 * rng.randrange(PAGE // 8) + rng.choice([0, 4]), f, 0) for f in range(16)]
    cases += [(2, 8 * rng.randrange(PAGE // 8 - 1), f, l) for f in range(1, 16) for l in range(1, 16)]
    cases += [(2, 8 * rng.randrange(PAGE // 8 - 1) + 4, f, l) for f, l in contiguous]
    cases += [(n, 4 * rng.randint(0, PAGE // 4 - n), f, l) for f, l in contiguous
              for n in (3, rng.randint(4, 40))]
    mps_dw = tb.mps // 4
    for n in sorted(k for k in {1, 2, mps_dw - 1, mps_dw, mps_dw + 1, 2 * mps_dw, 1023, 1024} if k <= 1024):
        for off in {0, 4 * rng.randint(0, PAGE // 4 - n), PAGE - 4 * n, min(PAGE - 4 * n, tb.rcb - 4)}:
            cases.append((n, off, 0xF, 0xF if n > 1 else 0))
    try:
        for n, off, f, l in cases:
            for kind in ("rd", "wr"):
                await tb.throttle(24)
                pa, iova = tb.page()
                if kind == "rd":
                    await tb.read(pa, iova, off, n, f, l)
                else:
                    await tb.write(pa, iova, off, n, f, l)
        await tb.finish()
        stats.result = "PASS"
    finally:
        stats.checked += tb.wr_seq
        stats.write()


@cocotb.test()
async def dma_lengths(dut):
    """Every length 1..1024 DW (with COUNT=1024; by default a spread of COUNT lengths), as a read and
    as a write."""
    stats = Stats()
    rng = random.Random(stats.seed)
    tb = Tb(dut, stats, rng, busy=0.1, latency=(0, 8), error_pages=0)
    await tb.reset()
    count = min(_count(48), 1024)
    lengths = sorted({1, 1024} | {round(1 + i * 1023 / max(count - 1, 1)) for i in range(count)})
    try:
        for n in lengths:
            for kind in ("rd", "wr"):
                await tb.throttle(16)
                pa, iova = tb.page()
                off = rand_offset(rng, n)
                f, l = rand_be(rng, n, off)
                if kind == "rd":
                    await tb.read(pa, iova, off, n, f, l)
                else:
                    await tb.write(pa, iova, off, n, f, l)
        await tb.finish()
        stats.result = "PASS"
    finally:
        stats.checked += tb.wr_seq
        stats.write()


@cocotb.test()
async def dma_perf(dut):
    """Latency and throughput without back-pressure (memory latency 10 cycles), results still scored.
    Logs: request -> first completion byte for a 1 DW read; output bytes/cycle of back-to-back 4 KiB
    reads; memory write bytes/cycle of back-to-back 4 KiB writes. Checks: those rates against the
    transmitter's bound; tlp_tx's latency (a header taken while idle -> its first beat valid the next
    cycle); back-to-back short TLPs (1-DW completions from dma_rd, short TLPs from the tb source offered
    header and payload together) leave one beat per cycle, ceil(TLP bytes / bus bytes) beats each,
    without an idle cycle between TLPs; STREAM 1-DW reads offered one per cycle with memory latency 0 (data
    in lane 0 of the bus, then at random DW offsets) come out as completions one beat per cycle from the
    first on (more reads than dma_rd's request table holds, so its slots must be freed as fast as they
    fill); a lone read's request handshake -> ARVALID takes AR_LATENCY cycles (sampled mid-cycle);
    RATE_READS 1-DW reads at memory latency RATE_LATENCY, the memory holding as many as come, leave at
    MIN_RATE completions per cycle or more with dma_rd's default request table and burst table (logged
    for every configuration)."""
    stats = Stats()
    rng = random.Random(stats.seed)
    tb = Tb(dut, stats, rng, busy=0.0, latency=(10, 10), error_pages=0, npages=8)
    await tb.reset()
    clk = dut.clk_i
    b, mps = tb.bytes, tb.mps
    try:
        # latency of a lone 1 DW read, with memory latency 0 and 10
        lat = {}
        for mem_latency in (0, 10):
            tb.axi.read_latency = mem_latency
            pa, iova = tb.pages[0]
            tb.first_out_ns = None
            await tb.read(pa, iova, 0x40, 1, 0xF, 0)
            await tb.until(lambda: not tb.rd_ops, "the read")
            lat[mem_latency] = (tb.first_out_ns - tb.rd_drv.accept_times[-1]) // CLK_NS
        # request handshake -> ARVALID of a lone read
        tb.axi.read_latency = 0
        ar_lat = await tb.ar_latency(*tb.pages[1])
        # latency of tlp_tx alone: a 3-DW Cpl through the tb source
        tb.first_out_ns = None
        await tb.tx(T.Completion(completer_id=1, requester_id=2, status=T.CPL_UR))
        await tb.until(lambda: not tb.tx_ops, "the tb TLP")
        tx_latency = (tb.first_out_ns - tb.tx_drv.accept_times[-1]) // CLK_NS
        # back-to-back 4 KiB reads
        n = 16
        tb.first_out_ns = None
        for i in range(n):
            pa, iova = tb.pages[i % len(tb.pages)]
            await tb.read(pa, iova, 0, 1024, 0xF, 0xF)
        await tb.until(lambda: not tb.rd_ops, "the reads")
        rd_cycles = (get_sim_time("ns") - tb.first_out_ns) // CLK_NS
        rd_rate = n * PAGE / rd_cycles
        # back-to-back 4 KiB writes (distinct pages from the reads' - no ordering waits)
        t_first = get_sim_time("ns")
        for i in range(n):
            pa, iova = tb.pages[i % len(tb.pages)]
            await tb.write(pa, iova, 0, 1024, 0xF, 0xF)
        await tb.until(lambda: tb.outstanding() == 0, "the writes")
        wr_cycles = (get_sim_time("ns") - t_first) // CLK_NS
        wr_rate = n * PAGE / wr_cycles
        # back-to-back short TLPs, the sink never stalling. dma_rd: a request table's worth of 1-DW reads
        # whose read data the memory holds back until all of them are issued, then returns one beat per
        # cycle (the transmit side alone, all data already in).
        since, lengths = len(tb.frame_log), []
        tb.axi.r_channel.pause = True
        outstanding, tb.axi.max_outstanding = tb.axi.max_outstanding, tb.nreq   # it holds every burst
        for i in range(tb.nreq):
            pa, iova = tb.pages[i % len(tb.pages)]
            await tb.read(pa, iova, 4 * rng.randrange(PAGE // 4), 1, rng.randrange(16), 0)
            lengths += [len(x) for x in tb.rd_ops[-1].expect]
        await ClockCycles(clk, 4 * tb.nreq + 40)   # every AR accepted and its data due
        tb.axi.r_channel.pause = False
        await tb.until(lambda: not tb.rd_ops, "the 1-DW reads")
        tb.axi.max_outstanding = outstanding
        cpl_span = tb.frames_span(since, lengths, "back-to-back 1-DW completions from dma_rd")
        # back-to-back 1-DW reads streaming through (memory latency 0, nothing stalls): requests offered one
        # per cycle, completions leave one beat per cycle from the first on, with the data in lane 0 of the
        # bus and at any DW offset
        tb.axi.read_latency = 0
        stream_spans = {}
        for what, offset in (("lane 0", lambda: b * rng.randrange(PAGE // b)),
                             ("any offset", lambda: 4 * rng.randrange(PAGE // 4))):
            since, lengths = len(tb.frame_log), []
            for i in range(STREAM):
                pa, iova = tb.pages[i % len(tb.pages)]
                await tb.read(pa, iova, offset(), 1, 0xF, 0)
                lengths += [len(x) for x in tb.rd_ops[-1].expect]
            await tb.until(lambda: not tb.rd_ops, "the streamed 1-DW reads")
            stream_spans[what] = tb.frames_span(since, lengths, f"{STREAM} streamed 1-DW reads ({what} data)")
        # sustained 1-DW reads at memory latency RATE_LATENCY, the memory holding as many reads as come (so
        # only dma_rd's request table and AXI IDs bound the rate): completions per cycle over the last three
        # quarters of the run (the first quarter fills the pipe)
        tb.axi.read_latency = RATE_LATENCY
        outstanding, tb.axi.max_outstanding = tb.axi.max_outstanding, 4 * RATE_READS
        since = len(tb.frame_log)
        for i in range(RATE_READS):
            pa, iova = tb.pages[i % len(tb.pages)]
            await tb.read(pa, iova, 4 * rng.randrange(PAGE // 4), 1, 0xF, 0)
        await tb.until(lambda: not tb.rd_ops, f"the reads at memory latency {RATE_LATENCY}")
        tb.axi.max_outstanding = outstanding
        log = tb.frame_log[since:]
        k = len(log) // 4
        rate_l20 = (len(log) - 1 - k) / ((log[-1][0] - log[k][0]) / CLK_NS)
        # the tb source, offering each TLP's header and payload together (as iommu_top's ATS completions do)
        since = len(tb.frame_log)
        tlps = [random_tlp(rng, 2) for _ in range(64)]
        await tb.tx_lockstep(tlps)
        await tb.until(lambda: not tb.tx_ops, "the tb TLPs")
        tx_span = tb.frames_span(since, [len(t.encode()) for t in tlps],
                                 "back-to-back short TLPs through the tb source")
        await tb.finish()
        # the transmitter's ceiling: ceil((12 + MPS) / B) beats per MAX_PAYLOAD bytes
        tx_bound = mps / -(-(12 + mps) // b)
        dut._log.info(
            "perf (bus %d B, MPS %d, %d request slots, %d bursts in flight): 1 DW read request -> "
            "completion out %d cycles (memory latency 0), %d cycles (memory latency 10); request handshake "
            "-> ARVALID %d cycles; tlp_tx header accepted -> TLP out %d cycles; 4 KiB reads %.1f B/cycle "
            "(tlp_tx bound %.1f); 4 KiB writes %.1f B/cycle; %d 1-DW completions back to back in %d "
            "cycles, %d short tb TLPs in %d cycles; %d streamed 1-DW reads (memory latency 0): completions "
            "out in %d cycles (lane-0 data), %d (any offset); 1-DW reads at memory latency %d: %.3f per "
            "cycle",
            b, mps, tb.nreq, tb.nburst, lat[0], lat[10], ar_lat, tx_latency, rd_rate, tx_bound, wr_rate,
            tb.nreq, cpl_span, len(tlps), tx_span, STREAM, stream_spans["lane 0"], stream_spans["any offset"],
            RATE_LATENCY, rate_l20)
        if ar_lat != AR_LATENCY[tb.ar_bypass]:
            raise AssertionError(f"request handshake -> ARVALID took {ar_lat} cycles, expected "
                                 f"{AR_LATENCY[tb.ar_bypass]} (rtl/dma_rd.sv header, AR_BYPASS="
                                 f"{int(tb.ar_bypass)})\n  {stats.rerun_hint()}")
        if tb.nreq >= 32 and tb.nburst >= 32 and rate_l20 < MIN_RATE:
            raise AssertionError(f"1-DW reads at memory latency {RATE_LATENCY}: {rate_l20:.3f} per cycle, "
                                 f"expected >= {MIN_RATE} with {tb.nreq} request slots and {tb.nburst} "
                                 f"bursts in flight\n  {stats.rerun_hint()}")
        # a header taken while tlp_tx is idle: its first beat is valid one cycle later, the frame's last
        # beat (where the latency is measured) ceil(12 / B) - 1 cycles after that
        if tx_latency != -(-12 // b):
            raise AssertionError(f"tlp_tx latency: a 3-DW Cpl left {tx_latency} cycles after its header was "
                                 f"taken, expected {-(-12 // b)}\n  {stats.rerun_hint()}")
        if rd_rate < 0.8 * tx_bound or wr_rate < 0.6 * b:
            raise AssertionError(f"throughput below the design's: reads {rd_rate:.1f} B/cycle (bound "
                                 f"{tx_bound:.1f}), writes {wr_rate:.1f} B/cycle (bus {b})")
        stats.result = "PASS"
    finally:
        stats.checked += tb.wr_seq
        stats.write()
