"""cocotb tests of rtl/prq.sv (the page request queue writer) through tb/rtl/prq_harness.sv (register
page + control block + queue + TLP transmitter + AXI mux), scored against the golden model
``models.iommu.Iommu`` (its ``PageRequestQueue``, models/iommu_queues.py).

World
    Reference: a ``tests.models.iommu_env.Env`` (host memory with root/context/PASID structures, the
    ``Iommu``). Devices are programmed there only: the queue never reads tables, it gets the lookup
    result with each request. DUT: its own ``models.host.Memory`` behind ``tb.axi_mem.AxiMemory`` on
    m_axi (descriptor writes and MSIs), an ``AxiStreamSink`` on m_axis_tlp (automatic PRG responses),
    software on s_axil (``AxiLiteMaster``), a request driver on req_* and, on inv_*, a checker that
    answers the implicit invalidations instead of an IOTLB (it records each command; the harness has no
    IOTLB, so what is checked is the command and its order against the descriptor write). The model's
    profile is the project's with ECAP.PT=1, so that pass-through PASID entries pass the lookup and the
    pass-through row of vtd §4.7 Table 27 is exercised (pasid_lookup's PT parameter); it differs from the
    register page only in the ECAP value, which no test reads.

Feeding
    A request is encoded with ``models.tlp.PageRequest``; req_hdr_i gets the header the parser makes of
    those bytes (tb.cocotb_tlp_parser.expected_header + the raw DWs), req_lkup_i the model's lookup at
    that moment: GSTS.TES = 0 -> disabled, else ``Iommu.lookup_pasid_entry(rid, pasid, 'page_request')``
    (a ``Fault`` gives reason/fpd; otherwise DID, PGTT and the PASID used). Don't-care fields get random
    values. Tables and TES change only while nothing is in flight (``quiesce``), so the model's own lookup
    inside ``PageRequestQueue.receive`` sees what the DUT was given.

Replay (the order contract of rtl/prq.sv's header)
    Monitors log, with the number of the clock edge it takes effect at: every software write (the edge
    raising s_axil_bvalid), every software read (the edge raising s_axil_rvalid; it returns the page as it
    was before that edge) and every request outcome (outcome_valid_o rises at the edge the outcome takes
    effect: PPR handshake, PRO handshake, fault handshake or the decision). The log is replayed into the
    model in edge order - reads, then the outcome (``prq.receive`` of the next request in acceptance
    order), then the write. A status bit the DUT sets at the edge of a software write that clears it
    stays set (the register page's "hardware wins"), so the replayed write does not clear bits the
    outcome of the same edge set. Replay runs incrementally (``advance``) and at the end.

Scored against the model
    * per request: the outcome (queued / disabled / fault / overflow / full, answered or dropped) against
      what the model's ``PrqCounters`` recorded for it; at the end the counters themselves
      (received = queued + auto-responded + dropped, per cause) against the DUT's outcomes and the
      number of requests the DUT accepted;
    * every register read against ``Iommu.reg_read``; at the end every word of the registers involved;
    * every memory write of the DUT, byte for byte and in order, against the model's: descriptors (mux row
      1) and MSIs (row 0, page request and fault events) as two ordered streams;
    * every TLP out of m_axis_tlp, byte for byte and in order, against the model's ``send_tlp``;
    * every implicit invalidation command against the model's ``Caches.invalidate_iotlb`` call, and the
      order of one queued request's steps: its invalidation completes before its descriptor AW is offered,
      the descriptor's B handshake comes before the PPR edge, and at that edge PQT already points past
      the descriptor (so software never sees PPR, its MSI or the new PQT before the descriptor).
Each test also counts the situations it was written to reach and fails if one is missing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiResp, AxiStreamBus, AxiStreamSink

from models import tlp as T
from models.host import Memory
from models.iommu import Fault
from models.vtd import PROFILE, REGISTERS, Access, FaultReason, IotlbInvDesc, Pgtt, PIotlbInvDesc
from tb.axi_mem import AxiMemory
from tb.cocotb_tlp_parser import expected_header
from tb.runner import RTL_DIR
from tb.stats import Stats
from tb.svstruct import SvPackage
from tests.models.iommu_env import GSTS_KEEP, Env

PRQ_PKG = SvPackage(RTL_DIR / "prq_pkg.sv")
HDR_PKG = SvPackage(RTL_DIR / "iommu_pkg.sv")
TLB_PKG = SvPackage(RTL_DIR / "iotlb_pkg.sv")
MODEL_PROFILE = dataclasses.replace(PROFILE, pt=1)
PERIOD_PS = 4000
HANG_CYCLES = 20_000  # one access or handshake not done in this many cycles: the DUT hangs
AXI_ID_W = 4  # the harness default; the mux row is the ID bit above it
OFF = {r.name: r.offset for r in REGISTERS}
STATUS_BITS = (Access.RW1C, Access.RW1CS)
CAUSES = {"PRQ_QUEUED": None, "PRQ_DISABLED": "disabled", "PRQ_FAULT": "fault", "PRQ_OVERFLOW": "overflow",
          "PRQ_FULL": "full"}
VA_BITS = (1 << 45) - 1  # iotlb_inv_t.addr: input address bits 56:12
PE_MSI, FE_MSI = 0xFEE0_1000, 0xFEE0_2008  # page request / fault event message addresses
FINAL_REGS = ["GSTS", "RTADDR", "PQH", "PQT", "PQA", "PRS", "PECTL", "PEDATA", "PEADDR", "PEUADDR", "FSTS",
              "FECTL", "FEDATA", "FEADDR", "FEUADDR", *(r.name for r in REGISTERS.frcds())]


def count(default: int) -> int:
    return int(os.environ.get("COUNT") or default)


# ================================================================================================
# Stimulus records
# ================================================================================================


@dataclass(frozen=True)
class Op:
    """One 32-bit software access of the register page."""

    kind: str  # "read" | "write"
    word: int
    data: int = 0

    def __str__(self):
        hit = REGISTERS.find(self.word)
        name = "unmapped" if hit is None else hit[0].name + (f"[{8 * hit[1] + 31}:{8 * hit[1]}]"
                                                            if hit[0].nbytes > 4 else "")
        return f"{self.kind} {name}" + (f" = {self.data:#010x}" if self.kind == "write" else "")


@dataclass
class Fed:
    """One page request handed to the DUT, with the lookup it was given."""

    n: int
    pkt: T.PageRequest
    lookup: dict
    note: str
    accept_edge: int = -1
    outcome: tuple | None = None  # (cause, responded) once replayed

    def __str__(self):
        p = self.pkt
        flags = "".join(c for c, v in (("R", p.r), ("W", p.w), ("L", p.l)) if v) or "-"
        pasid = "no PASID" if p.pasid is None else f"PASID {p.pasid:#x} pmr={p.pmr} er={p.er}"
        return (f"request #{self.n} ({self.note}): rid={p.requester_id:#06x} {pasid} addr={p.address:#x} "
                f"prgi={p.prg_index:#x} {flags}, lookup {self.lookup}")


@dataclass
class Event:
    edge: int
    kind: str  # "read" | "outcome" | "commit"
    what: object  # Op, or the DUT outcome (cause, responded)
    seen: int = 0  # read data

    ORDER = {"read": 0, "outcome": 1, "commit": 2}


@dataclass
class Knobs:
    pqs: int = 1                       # queue: 2^PQS pages, 128 << PQS descriptors
    busy: float = 0.3                  # pause probability: AXI-Lite, memory channels, TLP sink
    mem_latency: tuple = (0, 8)        # memory write latency, cycles (drawn per burst)
    inv_delay: tuple = (0, 6)          # cycles before inv_ready and before inv_done
    inv_eager: float = 0.4             # inv_ready already high when a command comes
    req_gap: tuple = (0, 8)            # cycles between requests


def page_request(rng: random.Random, rid: int, pasid: int | None, kind: str = "any") -> T.PageRequest:
    """A page request (``kind``: 'any', 'stop' (stop marker), 'last' (L=1 with R or W), 'rw0' (L=1,
    R=W=0: a stop marker only with a PASID))."""
    x = rng.random()
    if x < 0.3:
        addr = rng.getrandbits(35) << 12  # canonical, low half
    elif x < 0.4:
        addr = (0xFFFF << 48) | rng.getrandbits(36) << 12
    else:
        addr = rng.getrandbits(52) << 12  # anything: queued as received (models.iommu_queues docstring)
    l, r, w = rng.getrandbits(1), rng.getrandbits(1), rng.getrandbits(1)
    if kind in ("stop", "rw0"):
        l, r, w = 1, 0, 0
    elif kind == "last":
        l, r, w = 1, 1, rng.getrandbits(1)
    pmr = er = 0
    if pasid is not None and kind != "stop":
        pmr, er = int(rng.random() < 0.2), int(rng.random() < 0.2)
    return T.PageRequest(requester_id=rid, pasid=pasid, pmr=pmr, er=er, tag=rng.getrandbits(8),
                         tc=rng.getrandbits(3), address=addr, prg_index=rng.getrandbits(9), l=l, w=w, r=r)


def parsed_header(pkt: T.PageRequest) -> int:
    """The tlp_hdr_t tlp_rx_parser makes of the request's bytes."""
    data = pkt.encode()
    pfx = 0 if pkt.pasid is None else 1
    dws = [int.from_bytes(data[4 * (pfx + i):4 * (pfx + i) + 4], "big") for i in range(4)]
    e = expected_header(pkt)
    if (e["dw2"], e["dw3"]) != (dws[2], dws[3]):
        raise AssertionError(f"expected_header and the encoded bytes disagree on bytes 8-15: {data.hex()}")
    e.update(err="TLP_OK", pfx_cnt=pfx, fmt=dws[0] >> 29, tlp_type=dws[0] >> 24 & 0x1F,
             tag=data[4 * pfx + 6], msg_code=data[4 * pfx + 7], dw1=dws[1])
    return HDR_PKG.pack("tlp_hdr_t", e, fill_missing=True)


# ================================================================================================
# Testbench
# ================================================================================================


class PrqTb:
    def __init__(self, dut, knobs: Knobs | None = None):
        self.dut = dut
        self.knobs = knobs or Knobs()
        self.stats = Stats()
        self.rng = random.Random(self.stats.seed)
        self.bus_bytes = len(dut.m_axi_wdata) // 8
        Clock(dut.clk_i, PERIOD_PS, unit="ps").start()

        # reference (MODEL_PROFILE: module docstring)
        self.host = Env(profile=MODEL_PROFILE)
        self.model = self.host.iommu
        self.origin: str | None = None  # set while the model acts: its memory writes are expectations
        self.host.mem.on_write.append(self._model_wrote)
        self.exp_desc: list[tuple[int, bytes, str]] = []
        self.exp_msi: list[tuple[int, bytes, str]] = []
        self.exp_tlps: list[tuple[bytes, str]] = []
        self.exp_invs: list[tuple[dict, str]] = []
        inv = self.model.caches.invalidate_iotlb

        def invalidate_iotlb(g, did=None, pasid=None, addr=None, am=0, ih=0):
            self._model_invalidated(g, did, pasid, addr, am, ih)
            inv(g, did, pasid, addr, am, ih)

        self.model.caches.invalidate_iotlb = invalidate_iotlb

        # DUT side
        clk, rst, kw = dut.clk_i, dut.rst_ni, dict(reset_active_level=False)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), clk, rst, **kw)
        self.dut_mem = Memory()
        lat = lambda: self.rng.randint(*self.knobs.mem_latency)  # noqa: E731 (drawn per burst)
        self.axi = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), clk, rst, self.dut_mem, write_latency=lat,
                             **kw)
        self.axi.on_write.append(self._dut_wrote)
        self.tx = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_tlp"), clk, rst, **kw)
        for agent in (self.tx, self.axil.write_if, self.axil.read_if):
            agent.log.setLevel(logging.WARNING)
        self.dut_desc: list[tuple[int, bytes]] = []
        self.dut_msi: list[tuple[int, bytes]] = []
        self.dut_tlps: list[bytes] = []
        self.dut_invs: list[dict] = []
        self.inv_done = 0

        # log and replay state
        self.phase = 0
        self.log: list[Event] = []
        self.pending_w: deque[Op] = deque()
        self.pending_r: deque[Op] = deque()
        self.fed: list[Fed] = []
        self.replayed = 0
        self.kept: tuple[int, dict] = (-1, {})  # (edge, status bits the outcome of that edge set)
        self.outcomes: Counter = Counter()  # DUT: (cause, responded)
        self.seen: Counter = Counter()  # situations reached
        self.b_edges: list[int] = []  # edges of the descriptor B handshakes
        self.tx_edges: list[int] = []  # latency test: automatic response handshakes
        self.pqa = 0
        self.devices = None  # Devices programmed on the model side

    # --- bookkeeping --------------------------------------------------------------------------------
    @property
    def entries(self) -> int:
        return 128 << self.knobs.pqs

    def edge_now(self) -> int:
        return int((get_sim_time("ps") - self.phase) // PERIOD_PS)

    def fail(self, msg: str):
        self.stats.mismatches += 1
        raise AssertionError(f"{self.stats.name}: {msg}\n  {self.stats.rerun_hint()}")

    def _model_wrote(self, addr: int, data: bytes) -> None:
        if self.origin is None:
            return  # the CPU programming tables
        (self.exp_desc if len(data) == 32 else self.exp_msi).append((addr, bytes(data), self.origin))

    def _model_invalidated(self, g, did, pasid, addr, am, ih) -> None:
        if pasid is None:
            if g != IotlbInvDesc.G_PAGE:
                raise AssertionError(f"model: implicit invalidation with granularity {g} (not page)")
            cmd = dict(kind="INV_DOMAIN_PAGE", did=did, addr=(addr >> 12) & VA_BITS, am=am)
        else:
            if g != PIotlbInvDesc.G_PAGE:
                raise AssertionError(f"model: implicit invalidation with granularity {g} (not page)")
            cmd = dict(kind="INV_PASID_PAGE", did=did, pasid=pasid, addr=(addr >> 12) & VA_BITS, am=am)
        if ih:
            raise AssertionError("model: implicit invalidation with IH=1")
        self.exp_invs.append((cmd, self.origin or "?"))

    def _dut_wrote(self, rec) -> None:
        if rec.resp != AxiResp.OKAY:
            self.fail(f"memory write {rec} answered {rec.resp!r}")
        runs: list[list] = []
        for a, d in rec.pieces:
            if runs and runs[-1][0] + len(runs[-1][1]) == a:
                runs[-1][1] += d
            else:
                runs.append([a, bytearray(d)])
        if len(runs) != 1:
            self.fail(f"memory write {rec}: not one contiguous run of bytes")
        addr, data = runs[0][0], bytes(runs[0][1])
        if rec.axi_id >> AXI_ID_W:  # mux row 1: the queue
            if self.inv_done != len(self.dut_desc) + 1:
                self.fail(f"descriptor write #{len(self.dut_desc)} at {addr:#x} with {self.inv_done} "
                          f"invalidation(s) completed: each descriptor write must follow its own")
            self.dut_desc.append((addr, data))
        else:
            self.dut_msi.append((addr, data))

    # --- reset and monitors -------------------------------------------------------------------------
    async def reset(self):
        dut = self.dut
        dut.rst_ni.value = 0
        for sig in (dut.req_valid_i, dut.req_hdr_i, dut.req_lkup_i, dut.inv_ready_i, dut.inv_done_valid_i):
            sig.value = 0
        await RisingEdge(dut.clk_i)
        self.phase = get_sim_time("ps") % PERIOD_PS
        await ClockCycles(dut.clk_i, 3)
        dut.rst_ni.value = 1
        await ClockCycles(dut.clk_i, 2)
        self.set_busy(self.knobs.busy)
        for mon in (self._write_monitor, self._read_monitor, self._outcome_monitor, self._b_monitor,
                    self._tx_monitor, self._inv_responder):
            cocotb.start_soon(mon())

    def set_busy(self, busy: float) -> None:
        rng = self.rng

        def gen():
            return iter(lambda: rng.random() < busy, None) if busy > 0 else None

        self.tx.set_pause_generator(gen())
        w, r = self.axil.write_if, self.axil.read_if
        for ch in (w.aw_channel, w.w_channel, w.b_channel, r.ar_channel, r.r_channel):
            ch.set_pause_generator(gen())
        self.axi.random_backpressure(rng, busy)

    async def _write_monitor(self):
        while True:
            await RisingEdge(self.dut.s_axil_bvalid)
            self.log.append(Event(self.edge_now(), "commit", self.pending_w.popleft()))

    async def _read_monitor(self):
        dut = self.dut
        while True:
            await RisingEdge(dut.s_axil_rvalid)
            await ReadOnly()
            data = int(dut.s_axil_rdata.value)
            self.log.append(Event(self.edge_now(), "read", self.pending_r.popleft(), data))

    async def _outcome_monitor(self):
        """Logs each outcome; for a queued one also checks the order contract at its edge: the descriptor
        write's B handshake came before it, and PQT already points past that descriptor."""
        dut = self.dut
        while True:
            await RisingEdge(dut.outcome_valid_o)
            await ReadOnly()
            o = PRQ_PKG.unpack("prq_outcome_t", int(dut.outcome_o.value))
            edge = self.edge_now()
            self.outcomes[o["cause"], o["responded"]] += 1
            self.log.append(Event(edge, "outcome", (o["cause"], o["responded"])))
            if o["cause"] == "PRQ_QUEUED":
                queued = self.outcomes["PRQ_QUEUED", 0]
                if len(self.b_edges) != queued or self.b_edges[-1] >= edge or len(self.dut_desc) != queued:
                    self.fail(f"edge {edge}: queued outcome #{queued} with {len(self.b_edges)} descriptor B "
                              f"handshake(s) (last at edge {self.b_edges[-1] if self.b_edges else None}) and "
                              f"{len(self.dut_desc)} descriptor(s) in memory: PQT/PPR before the write is "
                              f"visible")
                slot = (self.dut_desc[-1][0] - self.pqa) // 32
                pqt = int(dut.u_prq.pqt_i.value)
                if pqt != (slot + 1) % self.entries:
                    self.fail(f"edge {edge}: descriptor written to slot {slot}, PQT after the PPR edge is "
                              f"{pqt}")

    async def _b_monitor(self):
        """Edges of the queue's descriptor B handshakes (before the mux)."""
        prq = self.dut.u_prq
        while True:
            await RisingEdge(prq.m_axi_bvalid)
            while True:
                await ReadOnly()
                if prq.m_axi_bready.value:
                    break
                await RisingEdge(self.dut.clk_i)
            self.b_edges.append(self.edge_now() + 1)

    async def _tx_monitor(self):
        while True:
            frame = await self.tx.recv(compact=False)
            keep = list(frame.tkeep)
            n = keep.count(1)
            if keep != [1] * n + [0] * (len(keep) - n) or n == 0:
                self.fail(f"m_axis_tlp frame with holes in tkeep: {keep}")
            self.dut_tlps.append(bytes(frame.tdata[:n]))

    async def _inv_responder(self):
        """Answers inv_* like an IOTLB would, with random delays; records each command; checks that the
        command holds still until accepted and that no descriptor AW is offered before inv_done."""
        dut, rng, k = self.dut, self.rng, self.knobs
        clk, aw = dut.clk_i, dut.u_prq.m_axi_awvalid
        dut.inv_ready_i.value = int(rng.random() < k.inv_eager)
        while True:
            await RisingEdge(dut.inv_valid_o)
            await ReadOnly()
            cmd = int(dut.inv_o.value)
            if not dut.inv_ready_i.value:
                await ClockCycles(clk, rng.randint(*k.inv_delay) + 1)
                dut.inv_ready_i.value = 1
                await ReadOnly()
            if not dut.inv_valid_o.value or int(dut.inv_o.value) != cmd:
                self.fail(f"inv_o changed or inv_valid_o dropped before the handshake (command {cmd:#x})")
            self.dut_invs.append(TLB_PKG.unpack("iotlb_inv_t", cmd))
            await RisingEdge(clk)  # the handshake edge
            dut.inv_ready_i.value = int(rng.random() < k.inv_eager)
            for _ in range(rng.randint(*k.inv_delay)):
                await ReadOnly()
                if aw.value:
                    self.fail("the queue offered its descriptor AW before the invalidation completed")
                await RisingEdge(clk)
            dut.inv_done_valid_i.value = 1
            await ReadOnly()
            if not dut.inv_done_ready_o.value or aw.value:
                self.fail("inv_done_ready_o low, or descriptor AW offered, while the invalidation completes")
            await RisingEdge(clk)
            self.inv_done += 1
            dut.inv_done_valid_i.value = 0

    # --- software -------------------------------------------------------------------------------------
    async def write(self, name: str, value: int, word: int = 0) -> None:
        op = Op("write", OFF[name] + 4 * word, value)
        self.pending_w.append(op)
        await with_timeout(self.axil.write(op.word, value.to_bytes(4, "little")), HANG_CYCLES * PERIOD_PS,
                           "ps")

    async def read(self, name: str, word: int = 0) -> int:
        op = Op("read", OFF[name] + 4 * word)
        self.pending_r.append(op)
        r = await with_timeout(self.axil.read(op.word, 4), HANG_CYCLES * PERIOD_PS, "ps")
        return int.from_bytes(r.data, "little")

    async def write64(self, name: str, value: int) -> None:
        await self.write(name, value & 0xFFFF_FFFF)
        await self.write(name, value >> 32, 1)

    async def gcmd(self, command: str, on: int = 1) -> None:
        """One GCMD command the way software gives it (vtd §1.5)."""
        bit = REGISTERS["GCMD"].field(command).mask
        value = await self.read("GSTS") & GSTS_KEEP
        await self.write("GCMD", value | bit if on else value & ~bit)
        await self.read("GSTS")

    async def setup(self, ttm: int = 0b01, pe_masked: bool = False, fe_masked: bool = False) -> None:
        """Reset, then what a driver does: root table, SRTP, TE, the page request queue and both event
        sources (messages unmasked unless asked)."""
        await self.reset()
        self.pqa = self.host.alloc.alloc(4096 << self.knobs.pqs)
        await self.write64("RTADDR", self.host.root | ttm << 10)
        await self.gcmd("srtp")
        await self.gcmd("te")
        await self.write64("PQA", self.pqa | self.knobs.pqs)
        await self.write("PQH", 0)
        await self.write("PQT", 0)
        await self.write("PEDATA", 0x4041)
        await self.write("PEADDR", PE_MSI)
        await self.write("PEUADDR", 0)
        await self.write("FEDATA", 0x4042)
        await self.write("FEADDR", FE_MSI)
        await self.write("FEUADDR", 0)
        await self.write("PECTL", int(pe_masked) << 31)
        await self.write("FECTL", int(fe_masked) << 31)
        await ClockCycles(self.dut.clk_i, 2)
        self.advance()
        if self.devices is not None:
            self.devices.check()

    async def service(self, limit: int | None = None, pro: str = "empty") -> None:
        """Linux's prq_event_thread (vtd §5.4): clear PPR, read PQT and PQH, consume up to ``limit``
        descriptors (all by default), write PQH; with PRO set, clear it once the queue is empty
        (``pro='empty'``, Linux) or right away (``'always'``: a driver that clears PRO early, which the
        spec allows; the queue may then fill again at once)."""
        n = self.entries
        await self.write("PRS", 1)
        tail = await self.read("PQT") >> 5 & 0x3FFF
        head = await self.read("PQH") >> 5 & 0x3FFF
        todo = (tail - head) % n
        if limit is not None:
            todo = min(todo, limit)
        if todo:
            await self.write("PQH", (head + todo) % n << 5)
            self.seen["descriptors consumed"] += todo
        if await self.read("PRS") & 2:
            if pro == "always":
                await self.write("PRS", 2)
                self.seen["PRO cleared early"] += 1
            elif await self.read("PQH") == await self.read("PQT"):
                await self.write("PRS", 2)
                self.seen["PRO cleared by software"] += 1

    async def clear_faults(self) -> None:
        """Read and clear every fault record, then PFO (vtd §6.3, as a driver's fault handler)."""
        fsts = await self.read("FSTS")
        for r in REGISTERS.frcds():
            if await self.read(r.name, 3) >> 31:
                for w in range(3):
                    await self.read(r.name, w)
                await self.write(r.name, 1 << 31, 3)
        if fsts & 1:
            await self.write("FSTS", 1)

    async def final_reads(self) -> None:
        for name in FINAL_REGS:
            for w in range(REGISTERS[name].nbytes // 4):
                await self.read(name, w)

    # --- requests ---------------------------------------------------------------------------------------
    def lookup(self, pkt: T.PageRequest) -> dict:
        """The lookup result the top would hand over (module docstring), don't-cares random."""
        rng, m = self.rng, self.model
        junk = dict(did=rng.getrandbits(16), pgtt=rng.getrandbits(3), pasid=rng.getrandbits(20))
        if not m.field("GSTS", "tes"):
            return dict(junk, disabled=1, reason=0, fpd=rng.getrandbits(1))
        try:
            found = m.lookup_pasid_entry(pkt.requester_id, pkt.pasid, "page_request")
        except Fault as f:
            return dict(junk, disabled=0, reason=int(f.reason), fpd=int(f.fpd))
        return dict(disabled=0, reason=0, fpd=int(found.fpd), did=found.did, pgtt=int(found.pasid_entry.pgtt),
                    pasid=found.pasid)

    async def feed(self, pkt: T.PageRequest, note: str = "") -> Fed:
        """Offer one request (after the knob's gap) and return when the DUT accepted it."""
        dut, clk = self.dut, self.dut.clk_i
        gap = self.rng.randint(*self.knobs.req_gap)
        if gap:
            dut.req_valid_i.value = 0
            await ClockCycles(clk, gap)
        self.advance()
        fed = Fed(len(self.fed), pkt, self.lookup(pkt), note)
        self.fed.append(fed)
        dut.req_hdr_i.value = parsed_header(pkt)
        dut.req_lkup_i.value = PRQ_PKG.pack("prq_lookup_t", fed.lookup)
        dut.req_valid_i.value = 1
        for _ in range(HANG_CYCLES):
            await ReadOnly()
            if dut.req_ready_o.value:
                break
            await RisingEdge(dut.req_ready_o)
        else:
            self.fail(f"{fed}: not accepted in {HANG_CYCLES} cycles")
        await RisingEdge(clk)
        fed.accept_edge = self.edge_now()
        dut.req_valid_i.value = 0
        return fed

    # --- replay ---------------------------------------------------------------------------------------
    def advance(self) -> None:
        """Replay every logged event of the edges before the current one (module docstring)."""
        limit = self.edge_now()
        ready = sorted((e for e in self.log if e.edge < limit), key=lambda e: (e.edge, Event.ORDER[e.kind]))
        self.log = [e for e in self.log if e.edge >= limit]
        for e in ready:
            if e.kind == "read":
                exp = self.model.reg_read(e.what.word, 4)
                self.stats.checked += 1
                if e.seen != exp:
                    self.fail(f"edge {e.edge}: {e.what}: DUT {e.seen:#010x}, model {exp:#010x}")
            elif e.kind == "outcome":
                self._replay_request(e)
            else:
                self._replay_write(e)

    def _replay_write(self, e: Event) -> None:
        op, data, m = e.what, e.what.data, self.model
        if e.edge == self.kept[0]:  # hardware wins against a same-edge clear
            r, pos = REGISTERS.find(op.word)
            keep = (self.kept[1].get(r.name, 0) >> (8 * pos)) & 0xFFFF_FFFF
            if data & keep:
                self.seen["status bit kept against a same-edge clear"] += 1
            data &= ~keep
        ip = m.field("PECTL", "ip")
        msis = len(self.exp_msi)
        self.origin = f"edge {e.edge}: software {op}"
        m.reg_write(op.word, data, 4)
        self.origin = None
        if op.word == OFF["PECTL"] and ip and len(self.exp_msi) > msis:
            self.seen["page request MSI on unmask"] += 1

    def _replay_request(self, e: Event) -> None:
        m, c = self.model, self.model.prq.counters
        if self.replayed >= len(self.fed):
            self.fail(f"edge {e.edge}: an outcome {e.what} with no request accepted for it")
        fed = self.fed[self.replayed]
        self.replayed += 1
        before = dict(m.regs)
        q0, auto0, drop0 = c.queued, Counter(c.auto_responded), Counter(c.dropped)
        msis, invs, descs = len(self.exp_msi), len(self.exp_invs), len(self.exp_desc)
        self.origin = f"edge {e.edge}: {fed}"
        m.prq.receive(fed.pkt)
        for t in m.take_tx():
            self.exp_tlps.append((t, self.origin))
        self.origin = None
        if c.queued > q0:
            exp = ("PRQ_QUEUED", 0)
        else:
            answered, dropped = c.auto_responded - auto0, c.dropped - drop0
            cause = next(iter(answered or dropped))
            exp = ("PRQ_" + cause.upper(), int(bool(answered)))
        fed.outcome = exp
        self.stats.checked += 1
        if e.what != exp:
            self.fail(f"edge {e.edge}: {fed}\n  DUT outcome {e.what}, model {exp}")
        self.kept = (e.edge, {r.name: m.regs[r.name] & ~before[r.name] & r.mask(*STATUS_BITS)
                              for r in REGISTERS if m.regs[r.name] != before[r.name]})
        # what was reached
        p, seen = fed.pkt, self.seen
        seen[exp[0][4:].lower()] += 1
        if exp[0] != "PRQ_QUEUED":
            seen[f"{exp[0][4:].lower()} {'answered' if exp[1] else 'dropped'}"] += 1
        if p.is_stop_marker:
            seen[f"stop marker {exp[0][4:].lower()}"] += 1
        elif p.pasid is None and p.l and not p.r and not p.w:
            seen["L=1 R=W=0 without PASID " + ("answered" if exp[1] else exp[0][4:].lower())] += 1
        if exp[0] == "PRQ_QUEUED":
            seen["queued with PASID" if p.pasid is not None else "queued without PASID"] += 1
            if len(self.exp_invs) > invs and self.exp_invs[-1][0]["kind"] == "INV_DOMAIN_PAGE":
                seen["pass-through invalidation"] += 1
            if self.exp_desc[descs:] and self.exp_desc[-1][0] == self.pqa and len(self.exp_desc) > 1:
                seen["descriptor at slot 0 (wrapped)"] += 1
        if exp[0] == "PRQ_FAULT":
            pfo = REGISTERS["FSTS"].field("pfo")
            if fed.lookup["disabled"]:
                pass
            elif fed.lookup["fpd"] and FaultReason(fed.lookup["reason"]).qualified:
                seen["fault suppressed by FPD"] += 1
            elif pfo.get(before["FSTS"]):
                seen["fault dropped (PFO)"] += 1
            elif pfo.get(m.regs["FSTS"]):
                seen["fault ring overflow (PFO set)"] += 1
            else:
                seen["fault recorded"] += 1
        if len(self.exp_msi) > msis:
            seen["event MSI"] += 1
        elif REGISTERS["PECTL"].field("ip").get(m.regs["PECTL"]) > REGISTERS["PECTL"].field("ip").get(
                before["PECTL"]):
            seen["page request IP raised (masked)"] += 1

    # --- the end ------------------------------------------------------------------------------------
    def idle(self) -> bool:
        d = self.dut
        return (self.replayed == len(self.fed) and not self.log and bool(d.req_ready_o.value)
                and not d.req_valid_i.value and self.axi.idle() and len(self.dut_tlps) >= len(self.exp_tlps)
                and len(self.dut_msi) >= len(self.exp_msi) and len(self.dut_desc) >= len(self.exp_desc))

    async def quiesce(self, what: str = "") -> None:
        """Wait until every accepted request was decided and replayed and everything it sent arrived."""
        for _ in range(HANG_CYCLES // 10):
            await ClockCycles(self.dut.clk_i, 10)
            self.advance()
            if self.idle():
                await ClockCycles(self.dut.clk_i, 10)
                self.advance()
                if self.idle():
                    return
        self.fail(f"not quiescent after {HANG_CYCLES} cycles {what}: {self.replayed}/{len(self.fed)} "
                  f"requests "
                  f"decided, TLPs {len(self.dut_tlps)}/{len(self.exp_tlps)}, MSIs {len(self.dut_msi)}/"
                  f"{len(self.exp_msi)}, descriptors {len(self.dut_desc)}/{len(self.exp_desc)}")

    def _compare_stream(self, what: str, got: list, exp: list, show) -> None:
        for i, (g, (*want, origin)) in enumerate(zip(got, exp)):
            self.stats.checked += 1
            if tuple(g) != tuple(want):
                self.fail(f"{what} #{i}: DUT {show(g)}\n  model {show(tuple(want))}\n  caused by {origin}")
        if len(got) != len(exp):
            self.fail(f"{len(got)} {what}(s) from the DUT, {len(exp)} from the model; first unmatched: "
                      + (show(got[len(exp)]) if len(got) > len(exp) else f"{show(tuple(exp[len(got)][:-1]))} "
                         f"caused by {exp[len(got)][-1]}"))

    async def finish(self, required: list[str]) -> None:
        await self.quiesce("at the end")
        await self.final_reads()
        await self.quiesce("after the final reads")

        def mem(x):
            return f"{x[1].hex()} at {x[0]:#x}"

        def tlp(x):
            return T.decode(x[0], strict=False).__repr__() + f" [{x[0].hex()}]"

        self._compare_stream("descriptor write", self.dut_desc, self.exp_desc, mem)
        self._compare_stream("MSI", self.dut_msi, self.exp_msi, mem)
        self._compare_stream("TLP", [(t,) for t in self.dut_tlps], self.exp_tlps, tlp)
        self._compare_stream("implicit invalidation", [(self._inv_view(i),) for i in self.dut_invs],
                             self.exp_invs, lambda x: str(x[0]))
        c = self.model.prq.counters
        self.stats.checked += 1
        dut = Counter()
        for (cause, responded), n in self.outcomes.items():
            key = "queued" if cause == "PRQ_QUEUED" else ("auto_responded" if responded else "dropped",
                                                          CAUSES[cause])
            dut[key] += n
        model = Counter({"queued": c.queued,
                         **{("auto_responded", k): v for k, v in c.auto_responded.items()},
                         **{("dropped", k): v for k, v in c.dropped.items()}})
        if +dut != +model or c.received != len(self.fed) or c.unaccounted():
            self.fail(f"counters: DUT accepted {len(self.fed)} with outcomes {dict(+dut)}; model received "
                      f"{c.received}, {dict(+model)}, unaccounted {c.unaccounted()}")
        missing = [k for k in required if not self.seen[k]]
        if missing:
            raise AssertionError(f"the stimulus never reached {missing}; reached {dict(self.seen)}; "
                                 f"{self.stats.rerun_hint()}")
        self.stats.cycles = self.edge_now()
        self.stats.result = "PASS"
        self.dut._log.info("%d requests, %d checks, %d cycles; %s", len(self.fed), self.stats.checked,
                           self.stats.cycles, ", ".join(f"{k}: {v}" for k, v in sorted(self.seen.items())))

    @staticmethod
    def _inv_view(cmd: dict) -> dict:
        """The fields of a DUT command the model defines (no PASID in a domain-selective one)."""
        keys = ("kind", "did", "pasid", "addr", "am") if cmd["kind"] == "INV_PASID_PAGE" else (
            "kind", "did", "addr", "am")
        return {k: cmd[k] for k in keys}


# ================================================================================================
# Devices (programmed on the model side only)
# ================================================================================================

FS, PT = "first-stage", "pass-through"


class Devices:
    """Good devices: first-stage and pass-through PASID entries, with and without PASID (RID_PASID
    0); faulty ones with the reason each is meant to produce (checked against the model)."""

    GOOD = [(0x0100, [0, 1, 0x123, 0xFFFFF], 1, FS), (0x0208, [0, 7, 0x4001], 2, PT),
            (0x1F37, [0, 3], 3, FS)]

    def __init__(self, tb: PrqTb, faulty: bool = False):
        self.tb = tb
        h = tb.host
        mm = h.new_mm()
        self.good: list[tuple[int, int | None]] = []
        for rid, pasids, did, kind in self.GOOD:
            for pasid in pasids:
                pe = dict(pgtt=Pgtt.PASS_THROUGH, fsptptr=0, fspm=0) if kind == PT else {}
                h.bind(rid, pasid, mm, did=did, **pe)
                self.good.append((rid, None if pasid == 0 else pasid))
        self.bad: list[tuple[int, int | None, FaultReason, bool]] = []  # rid, pasid, reason, suppressed
        tb.devices = self
        if not faulty:
            return
        R = FaultReason
        h.set_context(0x0300, p=0)
        h.set_context(0x0308, p=0, fpd=1)
        h.bind(0x0310, 0, mm, context=dict(pre=0, dte=0))
        h.bind(0x0318, 0, mm, context=dict(paside=0))
        h.bind(0x0320, 5, mm, context=dict(pdts=0))
        h.bind(0x0330, 2, mm)
        h.set_pasid_entry(0x0330, 3, p=0, fpd=1)
        self.bad = [
            (0x0300, None, R.SCT_2, False), (0x0300, 9, R.SCT_2, False),
            (0x0308, 4, R.SCT_2, True),
            (0x0310, None, R.SCT_8, False),
            (0x0318, 6, R.SCT_6, False),
            (0x0320, 0x2000, R.SCT_7, False),
            (0x0100, 0, R.SCT_9, False),           # a PASID prefix carrying RID_PASID
            (0x0100, 9, R.SPT_2, False),           # PASID table present, entry not
            (0x0100, 0x4000, R.SPD_2, False),      # directory entry not present
            (0x0330, 3, R.SPT_2, True),            # FPD in the (not present) PASID entry
            (0x7700, None, R.SRT_2, False),        # no root entry: not qualified, FPD cannot help
        ]
        tb.devices = self

    def check(self) -> None:
        """Every device looks up as intended (run once the root table is latched and TES is 1)."""
        for rid, pasid in self.good:
            self.tb.model.lookup_pasid_entry(rid, pasid, "page_request")  # a Fault here is a test bug
        for rid, pasid, reason, suppressed in self.bad:
            try:
                self.tb.model.lookup_pasid_entry(rid, pasid, "page_request")
            except Fault as f:
                if f.reason != reason or f.suppressed != suppressed:
                    raise AssertionError(f"device {rid:#06x} PASID {pasid}: the model says {f}, the test "
                                         f"wants {reason.name} suppressed={suppressed}") from None
            else:
                raise AssertionError(f"device {rid:#06x} PASID {pasid}: no fault, the test wants "
                                     f"{reason.name}")

    def request(self, rng: random.Random, bad: float = 0.0, kind: str = "any"):
        """A request of ``kind`` (see ``page_request``): 'stop' from a device/PASID pair with a PASID,
        'rw0' from one without."""
        if self.bad and rng.random() < bad:
            pool, note = [(rid, pasid) for rid, pasid, _, _ in self.bad], "faulting device"
        else:
            pool, note = self.good, "good device"
        if kind == "stop":
            pool = [d for d in pool if d[1] is not None]
        elif kind == "rw0":
            pool = [d for d in pool if d[1] is None]
        rid, pasid = rng.choice(pool)
        return page_request(rng, rid, pasid, kind), note


# ================================================================================================
# Tests
# ================================================================================================


async def producer(tb: PrqTb, devs: Devices, n: int, bad: float = 0.0, stop: float = 0.0, rw0: float = 0.0):
    """``n`` requests: a fraction ``bad`` from faulting devices, ``stop`` stop markers (from devices with
    a PASID), ``rw0`` L=1 R=W=0 requests without a PASID (not stop markers)."""
    rng = tb.rng
    for _ in range(n):
        x = rng.random()
        kind = "stop" if x < stop else "rw0" if x < stop + rw0 else "any"
        pkt, note = devs.request(rng, bad, kind)
        await tb.feed(pkt, note)


async def run(tb: PrqTb, body, required: list[str]):
    try:
        await with_timeout(body(), 50 * HANG_CYCLES * PERIOD_PS, "ps")
        await tb.finish(required)
    finally:
        tb.stats.write()


@cocotb.test()
async def prq_basic(dut):
    """Requests with and without PASID (first-stage and pass-through entries) into a queue software keeps
    draining the Linux way: descriptors byte-exact, PQT, PPR and its MSI, a masked stretch (IP) and the
    MSI on unmask, the wrap of PQT."""
    tb = PrqTb(dut, Knobs(pqs=0, busy=0.2))
    devs = Devices(tb)
    n = count(300)

    async def body():
        await tb.setup()
        done = cocotb.start_soon(producer(tb, devs, n))
        masked = False
        while not done.done():
            await ClockCycles(dut.clk_i, tb.rng.randint(20, 200))
            if tb.rng.random() < 0.15:
                masked = not masked
                await tb.write("PECTL", int(masked) << 31)
                await tb.read("PECTL")
            await tb.service()
            await tb.read("PRS")
            await tb.read("PECTL")
        await tb.write("PECTL", 0)
        await tb.quiesce()
        await tb.service()

    await run(tb, body, ["queued with PASID", "queued without PASID", "pass-through invalidation",
                         "event MSI",
                         "page request IP raised (masked)", "page request MSI on unmask",
                         "descriptor at slot 0 (wrapped)", "descriptors consumed"])


async def overflow_episodes(tb: PrqTb, task, plans: list[tuple[int | None, str]], poll: tuple[int, int],
                            late: tuple[int, int]) -> None:
    """Slow software while ``task`` feeds requests: poll PRS until PRO is set, wait ``late`` more cycles
    (requests meet the overflowing queue), then service with the next (limit, PRO policy) of ``plans``
    (each plan once per round, shuffled). Every episode produces one full queue."""
    rng, clk = tb.rng, tb.dut.clk_i
    todo: list = []
    while not task.done():
        if not todo:
            todo = rng.sample(plans, len(plans))
        limit, pro = todo.pop()
        while not task.done() and not await tb.read("PRS") & 2:
            await ClockCycles(clk, rng.randint(*poll))
        await ClockCycles(clk, rng.randint(*late))
        await tb.service(limit, pro)


@cocotb.test()
async def prq_full(dut):
    """The smallest queue (128 descriptors) and software that reacts late: it services the queue only once
    PRO is set, some time after, consuming all of it (and clearing PRO the Linux way, once the queue is
    empty) or only part (and clearing PRO early, which the spec allows: the queue fills again soon).
    PRO on full, then overflow; automatic Success for requests that need a response, drops for the
    others (stop markers included). Nothing lost: the counters match the model's."""
    tb = PrqTb(dut, Knobs(pqs=0, busy=0.2, req_gap=(3, 12)))
    devs = Devices(tb)
    n = count(1500)

    async def body():
        await tb.setup()
        task = cocotb.start_soon(producer(tb, devs, n, stop=0.05, rw0=0.05))
        await overflow_episodes(tb, task, [(None, "empty"), (5, "always"), (20, "always"), (5, "always"),
                                           (40, "always")], poll=(50, 200), late=(0, 500))
        await tb.quiesce()
        await tb.service()

    await run(tb, body, ["full answered", "full dropped", "overflow answered", "overflow dropped",
                         "PRO cleared by software", "PRO cleared early", "queued with PASID",
                         "descriptor at slot 0 (wrapped)", "stop marker overflow"])


@cocotb.test()
async def prq_faults(dut):
    """Lookup faults (context not present, PRE=0, PASIDE=0, PASID over PDTS, RID_PASID in a prefix, PASID
    directory / entry not present, no root entry): recorded (FRCD type page request) and answered with
    Invalid Request; FPD suppresses the record of qualified ones; the FRCD ring overflows (PFO) and later
    faults are dropped until software clears it. Then TTM=00 (RTA.3 / RTA.2) and TES=0 (no record,
    Invalid Request)."""
    tb = PrqTb(dut, Knobs(pqs=1, busy=0.3))
    devs = Devices(tb, faulty=True)
    n = count(150)

    async def serve_until(task):
        while not task.done():
            await ClockCycles(dut.clk_i, tb.rng.randint(100, 600))
            if tb.rng.random() < 0.7:
                await tb.clear_faults()
            await tb.service()

    async def body():
        await tb.setup()
        await serve_until(cocotb.start_soon(producer(tb, devs, n, bad=0.7)))
        await tb.quiesce()
        await tb.clear_faults()
        # legacy TTM: every page request faults before any table is read
        await tb.write64("RTADDR", tb.host.root)
        await tb.gcmd("srtp")
        await tb.quiesce()
        await serve_until(cocotb.start_soon(producer(tb, devs, n // 5)))
        await tb.quiesce()
        await tb.clear_faults()
        await tb.write64("RTADDR", tb.host.root | 1 << 10)
        await tb.gcmd("srtp")
        await tb.gcmd("te", 0)
        await tb.quiesce()
        await serve_until(cocotb.start_soon(producer(tb, devs, n // 5, bad=0.5)))
        await tb.quiesce()
        await tb.gcmd("te", 1)
        await tb.quiesce()
        await serve_until(cocotb.start_soon(producer(tb, devs, n // 5, bad=0.5)))
        await tb.quiesce()
        await tb.clear_faults()

    await run(tb, body, ["fault answered", "fault dropped", "fault recorded", "fault suppressed by FPD",
                         "fault ring overflow (PFO set)", "fault dropped (PFO)", "disabled answered",
                         "disabled dropped", "queued with PASID", "event MSI"])


@cocotb.test()
async def prq_stop_marker(dut):
    """Stop markers (PASID, L=1, R=W=0): queued like requests, silently dropped when the queue is full or
    overflowing, on a lookup fault and with TES=0; L=1 with R=W=0 and no PASID is not a stop marker and
    is answered. Software keeps the small queue nearly full (a few descriptors consumed once PRO is set,
    PRO cleared at once), so many requests meet a full queue."""
    tb = PrqTb(dut, Knobs(pqs=0, busy=0.2, req_gap=(0, 2)))
    devs = Devices(tb, faulty=True)
    n = count(900)

    async def body():
        await tb.setup()
        task = cocotb.start_soon(producer(tb, devs, n, bad=0.15, stop=0.45, rw0=0.15))
        await overflow_episodes(tb, task, [(1, "always"), (3, "always"), (5, "always")], poll=(10, 40),
                                late=(0, 40))
        await tb.quiesce()
        await tb.service()
        await tb.gcmd("te", 0)
        await tb.quiesce()
        await producer(tb, devs, 30, stop=0.5, rw0=0.3)
        await tb.quiesce()
        await tb.gcmd("te", 1)

    await run(tb, body, ["stop marker queued", "stop marker full", "stop marker overflow",
                         "stop marker fault",
                         "stop marker disabled", "L=1 R=W=0 without PASID answered",
                         "L=1 R=W=0 without PASID queued"])


async def random_software(tb: PrqTb, task, mood: str) -> None:
    """Driver-like register traffic at random moments while ``task`` feeds requests: servicing (all or
    part; PRO cleared the Linux way or early), masking and unmasking both event sources, clearing faults
    and status bits, reads. ``mood``: 'fast' (every 5-150 cycles), 'slow' (every 300-2000), 'stalled'
    (no servicing at all: the queue fills)."""
    rng, clk = tb.rng, tb.dut.clk_i
    while not task.done():
        await ClockCycles(clk, rng.randint(300, 2000) if mood != "fast" else rng.randint(5, 150))
        x = rng.random()
        if x < 0.45 and mood != "stalled":
            await tb.service(limit=rng.choice([None, None, 1, 10]), pro=rng.choice(["empty", "always"]))
        elif x < 0.55:
            await tb.write(rng.choice(["PECTL", "FECTL"]), rng.getrandbits(1) << 31)
        elif x < 0.65:
            await tb.clear_faults()
        elif x < 0.75 and mood != "stalled":
            await tb.write("PRS", rng.getrandbits(2))
        else:
            await tb.read(rng.choice(["PRS", "PQT", "PQH", "PECTL", "FSTS", "FECTL", "FRCD0"]))


@cocotb.test()
async def prq_random(dut):
    """Random mix of everything - good and faulting devices, stop markers, full and overflowing queues,
    TES off and on - with random back-pressure on every interface (requests, invalidation and its
    completion, memory, TLP output, AXI-Lite) and random driver traffic. Requests come in chunks, each
    with a software mood (fast, slow, stalled: every mood once per three chunks, a stalled chunk long
    enough to fill the queue)."""
    tb = PrqTb(dut, Knobs(pqs=0, busy=0.35, mem_latency=(0, 12), inv_delay=(0, 8), req_gap=(0, 10)))
    devs = Devices(tb, faulty=True)
    n = count(600)

    async def body():
        rng = tb.rng
        await tb.setup(pe_masked=rng.random() < 0.5)
        left, moods = n, []
        while left > 0 or moods:
            if not moods:
                moods = rng.sample(["fast", "slow", "stalled"], 3)
            mood = moods.pop()
            chunk = rng.randint(220, 300) if mood == "stalled" else rng.randint(50, 200)  # 20% faulting
            left -= chunk
            task = cocotb.start_soon(producer(tb, devs, chunk, bad=0.2, stop=0.1, rw0=0.05))
            await random_software(tb, task, mood)
            await tb.quiesce()
            await tb.service()
            if rng.random() < 0.25:  # a stretch with translation disabled
                await tb.gcmd("te", 0)
                await tb.quiesce()
                task = cocotb.start_soon(producer(tb, devs, rng.randint(10, 60), stop=0.1, rw0=0.05))
                await random_software(tb, task, "fast")
                await tb.quiesce()
                await tb.gcmd("te", 1)
                await tb.quiesce()

    await run(tb, body, ["queued with PASID", "queued without PASID", "full", "overflow answered",
                         "overflow dropped", "fault recorded", "event MSI"])


@cocotb.test()
async def prq_latency(dut):
    """prq_write_latency_cycles: from the edge a page request is accepted to the edge of its descriptor
    write's B handshake, with no back-pressure, zero memory latency and an invalidation answered at once;
    the part of it up to the AW handshake (the rest is the memory's write response); also the automatic
    response path (TES=0: accepted -> PRG response header taken by tlp_tx). Requests
    are spaced so each one finds the queue idle. Scored like every other test; with $SVM_BENCH_OUT set,
    writes the numbers there as JSON."""
    tb = PrqTb(dut, Knobs(pqs=3, busy=0.0, mem_latency=(0, 0), inv_delay=(0, 0), inv_eager=1.0,
                          req_gap=(40, 40)))
    devs = Devices(tb)
    n = count(100)
    prq = dut.u_prq

    aw_edges: list[int] = []

    async def aw_monitor():
        while True:
            await RisingEdge(prq.m_axi_awvalid)
            while True:
                await ReadOnly()
                if prq.m_axi_awready.value:
                    break
                await RisingEdge(dut.clk_i)
            aw_edges.append(tb.edge_now() + 1)

    async def tx_monitor():
        while True:
            await RisingEdge(prq.tx_hdr_valid_o)
            while True:
                await ReadOnly()
                if prq.tx_hdr_ready_i.value:
                    break
                await RisingEdge(dut.clk_i)
            tb.tx_edges.append(tb.edge_now() + 1)

    async def body():
        await tb.setup(pe_masked=True)
        cocotb.start_soon(tx_monitor())
        cocotb.start_soon(aw_monitor())
        await producer(tb, devs, n)
        await tb.quiesce()
        await tb.service()
        await tb.gcmd("te", 0)
        await tb.quiesce()
        for _ in range(n // 4):
            rid, pasid = tb.rng.choice(devs.good)
            await tb.feed(page_request(tb.rng, rid, pasid, "last"), "TES=0")
        await tb.quiesce()
        await tb.gcmd("te", 1)

    await run(tb, body, ["queued with PASID", "disabled answered"])
    queued = [f for f in tb.fed if f.outcome == ("PRQ_QUEUED", 0)]
    answered = [f for f in tb.fed if f.outcome and f.outcome[1]]
    if len(tb.b_edges) != len(queued) or len(tb.tx_edges) != len(answered):
        raise AssertionError(f"{len(tb.b_edges)} B handshakes for {len(queued)} queued requests, "
                             f"{len(tb.tx_edges)} responses for {len(answered)} answered ones")
    write = sorted(b - f.accept_edge for b, f in zip(tb.b_edges, queued))
    aw = sorted(a - f.accept_edge for a, f in zip(aw_edges, queued))
    rsp = sorted(t - f.accept_edge for t, f in zip(tb.tx_edges, answered))
    result = dict(seed=tb.stats.seed, data_w=tb.bus_bytes * 8, requests=len(queued),
                  prq_write_latency_cycles=write[len(write) // 2], prq_write_latency_min=write[0],
                  prq_write_latency_max=write[-1], prq_accept_to_aw_cycles=aw[len(aw) // 2],
                  prq_auto_response_latency_cycles=rsp[len(rsp) // 2])
    dut._log.info("latency: %s", result)
    if os.environ.get("SVM_BENCH_OUT"):
        Path(os.environ["SVM_BENCH_OUT"]).write_text(json.dumps(result, indent=2) + "\n")
