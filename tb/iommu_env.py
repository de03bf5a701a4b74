"""Verification environment for the whole translation pipeline (rtl/iommu_top.sv through
tb/rtl/iommu_tb.sv), scored against the golden model ``models.iommu.Iommu``. tb/cocotb_iommu.py runs on it;
it is meant to carry later system tests (the SVM driver) too.

World
    Two host memories. The DUT's (``dut_mem``) sits behind two ``tb.axi_mem.AxiMemory`` agents, one on
    m_axi_dma and one on m_axi_tbl (one memory, so the exclusive monitor of the table port sees DMA
    writes). The reference memory (``ref``) is the ``FaultyMemory`` of a ``tests/models/iommu_env.Env``
    whose ``Iommu`` is the golden model. Tests build everything on the reference side with that fixture
    (root/context/PASID entries, ``Mm`` page tables) and the helpers here (address spaces, data pages);
    every write to ``ref`` that the model does not make (a CPU write) is copied into ``dut_mem`` as it
    happens. Writes the model makes while it handles a TLP or a register write are expectations for the
    DUT instead. CPU changes and register writes happen only while the DUT is quiescent
    (``quiesce()``); the one exception is the CPU race of ``race()``, played on both sides at the same
    point of the walk (model: ``FaultyMemory.before_cmpxchg``; DUT: ``AxiMemory.race``).

Feeding
    ``send(tlp)`` hands the bytes to the model (``receive_tlp``), registers what the model produced, and
    queues the bytes on s_axis_rx: the model sees the TLPs in the order the DUT receives them. Register
    writes go to the model first (so an MSI they cause is expected before the DUT can send it) and then
    to the DUT over AXI-Lite, as the same 32-bit accesses (8-byte registers as two halves, low first);
    TLPs the model sends because of a register write (the invalidation queue run by an IQT write) are
    expectations like those of a request.
    PCIe lets a posted write pass an earlier read, so ``send`` holds a write back until no earlier
    read that is still waiting for completions reads a byte it writes (physical addresses, from the
    model's translation); everything else goes out at once.

Scoreboard (``Scoreboard``, pure Python; checked against the model only)
    1. TLPs: every frame out of m_axis_tx must equal, byte for byte, the oldest model-predicted TLP not
       yet seen with the same key (a completion's requester ID + tag; other TLPs by type). TLPs of one
       key stay in order, different keys may interleave (completions of different requests may come
       out in any order). A TLP the model did not predict, or one predicted and never sent, is an error.
    2. Memory: every byte the DUT stores with a normal AXI write (DMA writes, fault-event MSIs) must be
       the next value the model wrote to that byte address (per address, in order). A/D updates come
       as AXI exclusive writes and are checked per 8-byte entry instead of per byte in order: concurrent
       walks may update one entry in a different order than the model's sequential walks (a read's walk
       may set A before an earlier write's walk sets A and D; the model then wrote A|D once, the DUT A
       and then D). So an exclusive write must only add A/EA/D bits to the value it replaced, only bits
       the model set in that entry since the last quiescent point, and only where the model updated the
       entry at all. At every quiescent point nothing the model wrote may be missing and the two
       memories must be equal over every page either side (or the CPU) touched since the last one -
       which also proves the final A/D values.
    3. Fault records (``FaultBook``): at quiescent points the DUT's FRCDs and FSTS, read over
       AXI-Lite, against the model's. A hit may overtake a miss, so the DUT may log in another order:
       without overflow the records are compared as a multiset (and the occupied slots as a set); when
       the model overflowed (PFO) the DUT must hold as many records, each one of the faults the model
       tried to record in that window, and PFO. Then both are cleared the same way (FRCD.F, FSTS.PFO).
    Every other register word is compared at the same points. A mismatch names the test, the seed, the
    request (decoded with ``models.tlp.decode``), expected and actual, and the rerun command.

Hooks (for environments built on this one, e.g. tb/svm_env.py)
    ``on_tx(data)`` after every DUT TLP the scoreboard matched; ``before_dut_write(addr, data)`` and
    ``on_dut_write(addr, data)`` around the scoring of every piece of a normal DUT store;
    ``quiesce(quiet=...)`` shortens the idle window a quiescent point requires.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
from collections import Counter, deque
from pathlib import Path
from typing import Callable

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, Event, First, SimTimeoutError, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiResp, AxiStreamBus, AxiStreamFrame
from cocotbext.axi import AxiStreamSink, AxiStreamSource

from models import tlp as T
from models.host import Memory, Mm
from models.paging import LEAF_SIZE, FsEntry
from models.vtd import REGISTERS, FrcdType
from tb.axi_mem import AxiMemory
from tb.stats import Stats
from tests.models.iommu_env import ALLOC_BASE, ALLOC_SIZE, GSTS_KEEP, Env

CLK_NS = 4
HANG_CYCLES = 20_000  # a handshake the testbench waits for (TLP in, register access) takes longer: hang
PAGE = 4096
K4, M2, G1 = LEAF_SIZE[1], LEAF_SIZE[2], LEAF_SIZE[3]

#: the bits a first-stage walk may set in an entry: A, D, EA (vtd §3.5)
AD_MASK = sum(f.mask << f.lo for f in (FsEntry.a, FsEntry.d, FsEntry.ea))
#: data pages come from here: above the table frames of the Env fixture, below HAW
DATA_BASE = ALLOC_BASE + ALLOC_SIZE
DATA_LIMIT = 1 << 47
#: FRCD request type per model request kind (vtd §1.9: T1/T2)
FRCD_TYPE = {"read": FrcdType.READ, "translation": FrcdType.READ, "write": FrcdType.WRITE,
             "atomic": FrcdType.ATOMIC, "page_request": FrcdType.PAGE_REQUEST}
FRCD_FIELDS = ("fr", "sid", "pp", "pv", "priv", "exe", "at", "t1", "t2", "fi")
FRCDS = list(REGISTERS.frcds())


def describe_tlp(data: bytes) -> str:
    """A TLP's bytes as the codec reads them (receiver view), or why it cannot."""
    try:
        return repr(T.decode(bytes(data), strict=False))
    except T.TlpError as exc:
        return f"undecodable ({type(exc).__name__}: {exc}) {bytes(data).hex()}"


def tlp_key(data: bytes) -> tuple:
    """Which TLPs must stay in order among themselves: a completion's requester ID + tag; any other
    TLP by its type. Raises ``TlpError`` for bytes the codec rejects."""
    pkt = T.decode(bytes(data), strict=False)
    if isinstance(pkt, T.Completion):
        return ("completion", pkt.requester_id, pkt.tag)
    return (type(pkt).__name__,)


class IommuStats(Stats):
    """``tb.stats.Stats`` plus the scoreboard's own numbers (also written to the JSON record)."""

    def __init__(self):
        super().__init__()
        self.tlps = 0        # TLPs matched
        self.mem_bytes = 0   # memory bytes matched (DMA, MSI, A/D)
        self.faults = 0      # fault records compared

    def extra(self) -> dict:
        """The numbers this class adds to the JSON record (subclasses extend it)."""
        return dict(tlps=self.tlps, mem_bytes=self.mem_bytes, faults=self.faults)

    def write(self):
        super().write()
        d = os.environ.get("SVM_STATS_DIR")
        if d:
            p = Path(d) / f"{self.name}.json"
            rec = json.loads(p.read_text())
            rec.update(self.extra())
            p.write_text(json.dumps(rec))


@dataclasses.dataclass(frozen=True)
class Origin:
    """What an expectation comes from: request #n (its TLP bytes) or a register write (``note``)."""

    n: int
    data: bytes | None = None
    note: str = ""

    def __str__(self):
        what = f"request #{self.n}" if self.data is not None else f"action #{self.n}"
        note = f" ({self.note})" if self.note else ""
        body = f": {describe_tlp(self.data)}" if self.data is not None else ""
        return f"{what}{note}{body}"


class Mismatch(AssertionError):
    """The DUT disagreed with the model (or hung); the message says everything needed to rerun."""


# ================================================================================================
# Scoreboard (pure Python: tests/models/test_scoreboard.py drives it without a simulator)
# ================================================================================================


class Scoreboard:
    """TLP and memory checks of the module docstring. The environment feeds it: ``expect_tlp`` /
    ``expect_write`` / ``expect_ad`` with what the model produced, ``dut_tlp`` / ``dut_write`` /
    ``dut_ad_write`` with what the DUT did, ``touch`` for CPU writes, ``settle`` at quiescent points.
    The first mismatch is kept in ``failure`` (callbacks of bus agents must not raise) and raised by
    ``check()``. ``on_key_done(key)`` is called when the last expected TLP of a key was matched."""

    def __init__(self, stats: Stats, hint: Callable[[], str] | None = None):
        self.stats = stats
        self.hint = hint or stats.rerun_hint
        self.failure: str | None = None
        self.tlps: dict[tuple, deque] = {}      # key -> deque[(bytes, Origin)]
        self.data: dict[int, deque] = {}        # byte address -> deque[(value, Origin)]
        self.ad: dict[int, list] = {}           # entry address -> [(old, new, Origin)]
        self.pages: set[int] = set()            # pages written since the last settle()
        self.last_writer: dict[int, Origin] = {}  # 8-byte word -> last model write's origin
        self.tlps_matched = 0
        self.bytes_matched = 0
        self.on_key_done: list[Callable[[tuple], None]] = []

    # --- failures -----------------------------------------------------------------------------------
    def fail(self, what: str, origin, expected, actual) -> None:
        if self.failure is not None:
            return
        self.stats.mismatches += 1
        self.failure = (f"{self.stats.name}: {what}\n  request:  {origin if origin is not None else '-'}\n"
                        f"  expected: {expected}\n  actual:   {actual}\n  {self.hint()}")

    def check(self) -> None:
        if self.failure is not None:
            raise Mismatch(self.failure)

    # --- TLPs ---------------------------------------------------------------------------------------
    def expect_tlp(self, data: bytes, origin: Origin) -> None:
        self.tlps.setdefault(tlp_key(data), deque()).append((bytes(data), origin))

    def dut_tlp(self, data: bytes) -> bool:
        """A TLP the DUT sent; True when it matched the model's prediction."""
        data = bytes(data)
        try:
            key = tlp_key(data)
        except T.TlpError as exc:
            self.fail("the DUT sent a TLP the codec rejects", None, "a well-formed TLP",
                      f"{data.hex()} ({exc})")
            return False
        q = self.tlps.get(key)
        if not q:
            self.fail(f"unexpected TLP (nothing predicted for {key})", None, "no TLP", describe_tlp(data))
            return False
        want, origin = q[0]
        if want != data:
            self.fail(f"TLP mismatch for {key}", origin, f"{describe_tlp(want)}\n            {want.hex()}",
                      f"{describe_tlp(data)}\n            {data.hex()}")
            return False
        q.popleft()
        self.tlps_matched += 1
        if not q:
            del self.tlps[key]
            for f in self.on_key_done:
                f(key)
        return True

    # --- memory -------------------------------------------------------------------------------------
    def touch(self, addr: int, n: int) -> None:
        for page in range(addr // PAGE, (addr + max(n, 1) - 1) // PAGE + 1):
            self.pages.add(page)

    def expect_write(self, addr: int, data: bytes, origin: Origin) -> None:
        self.touch(addr, len(data))
        for i, b in enumerate(data):
            self.data.setdefault(addr + i, deque()).append((b, origin))
        for w in range((addr & ~7), addr + len(data), 8):
            self.last_writer[w] = origin

    def expect_ad(self, entry: int, old: int, new: int, origin: Origin) -> None:
        self.touch(entry, 8)
        self.ad.setdefault(entry, []).append((old, new, origin))
        self.last_writer[entry] = origin

    def dut_write(self, addr: int, data: bytes) -> None:
        """A normal (non-exclusive) store by the DUT: each byte is the model's next write there."""
        self.touch(addr, len(data))
        for i, b in enumerate(data):
            a = addr + i
            q = self.data.get(a)
            if not q:
                self.fail(f"DUT wrote byte {a:#x} = {b:#04x}, which the model did not write (or not "
                          f"this often)", self.last_writer.get(a & ~7), "no write", f"{b:#04x}")
                return
            want, origin = q.popleft()
            if not q:
                del self.data[a]
            if want != b:
                self.fail(f"DUT wrote byte {a:#x}", origin, f"{want:#04x}", f"{b:#04x}")
                return
            self.bytes_matched += 1

    def dut_ad_write(self, entry: int, old: int, new: int) -> None:
        """An exclusive store that succeeded: ``old`` -> ``new`` in the 8-byte entry (docstring, 2)."""
        self.touch(entry, 8)
        ups = self.ad.get(entry)
        if not ups:
            self.fail(f"DUT updated the entry at {entry:#x}, which no model walk updated", None,
                      "no write", f"{old:#018x} -> {new:#018x}")
            return
        allowed = 0
        for o, n, _ in ups:
            allowed |= n & ~o
        origin = ups[-1][2]
        if (old ^ new) & ~AD_MASK or old & ~new:
            self.fail(f"A/D update of the entry at {entry:#x} changes more than setting A/EA/D",
                      origin, f"{old:#018x} with some of {allowed:#x} set", f"{new:#018x}")
        elif new & ~old & ~allowed:
            self.fail(f"A/D update of the entry at {entry:#x} sets bits the model did not set",
                      origin, f"bits within {allowed:#x} ({FsEntry(old)} before)",
                      f"bits {new & ~old:#x} set")
        else:
            self.bytes_matched += 8

    # --- quiescent points ---------------------------------------------------------------------------
    def pending(self) -> list[str]:
        """What the model predicted and the DUT has not done yet (empty: nothing outstanding)."""
        out = [f"TLP {describe_tlp(q[0][0])} for {q[0][1]}" for q in self.tlps.values()]
        if self.data:
            firsts: dict[Origin, list[int]] = {}
            for a, q in sorted(self.data.items()):
                firsts.setdefault(q[0][1], []).append(a)
            out += [f"{len(addrs)} byte(s) from {addrs[0]:#x} written by {o}" for o, addrs in firsts.items()]
        return out

    def idle(self) -> bool:
        return not self.tlps and not self.data

    def settle(self, ref: Memory, dut: Memory) -> None:
        """At a quiescent point: nothing missing, both memories equal on every touched page; then a
        new window starts (A/D permissions and touched pages are forgotten)."""
        missing = self.pending()
        if missing:
            self.fail("the DUT did not do everything the model did", None, "\n    " + "\n    ".join(missing),
                      "nothing (quiescent)")
            return
        for page in sorted(self.pages):
            a = page * PAGE
            want, got = Memory.read(ref, a, PAGE), Memory.read(dut, a, PAGE)
            if want != got:
                i = next(k for k in range(PAGE) if want[k] != got[k])
                w = (a + i) & ~7
                self.fail(f"memory differs at {a + i:#x} (word {w:#x})", self.last_writer.get(w),
                          f"{int.from_bytes(want[w - a:w - a + 8], 'little'):#018x} (reference)",
                          f"{int.from_bytes(got[w - a:w - a + 8], 'little'):#018x} (DUT)")
                return
        self.pages.clear()
        self.ad.clear()
        self.last_writer.clear()


# ================================================================================================
# Fault records
# ================================================================================================


def frcd_fields(value: int) -> tuple | None:
    """The fields of a 128-bit FRCD value (None when F=0), in FRCD_FIELDS order."""
    r = FRCDS[0]
    if not r.field("f").get(value):
        return None
    return tuple(r.field(n).get(value) for n in FRCD_FIELDS)


def fault_fields(reason, rid: int, pasid: int | None, pmr: int, addr: int, kind: str, at: int,
                 er: int = 0) -> tuple:
    """What vtd §1.9 says an FRCD holds for this fault (independent of the model's packing)."""
    t = FRCD_TYPE[kind]
    return (int(reason), rid, int(pasid is not None), pasid or 0, int(bool(pmr)), int(bool(er)), int(at),
            t.t1, t.t2, (addr >> 12) & ((1 << 52) - 1))


def show_fault(f: tuple) -> str:
    d = dict(zip(FRCD_FIELDS, f))
    return (f"fr={d['fr']:#04x} sid={d['sid']:#06x} pp={d['pp']} pv={d['pv']:#x} priv={d['priv']} "
            f"exe={d['exe']} at={d['at']} t={d['t1']}{d['t2']} fi={d['fi']:#x}")


class FaultBook:
    """The faults the model tried to record (``record_fault`` calls) since the last clear, and the
    comparison of the docstring's point 3."""

    def __init__(self):
        self.attempts: list[tuple[tuple, Origin]] = []

    def attempt(self, fields: tuple, origin: Origin) -> None:
        self.attempts.append((fields, origin))

    def clear(self) -> None:
        self.attempts.clear()

    def compare(self, model_frcds: list[int], model_fsts: int, dut_frcds: list[int], dut_fsts: int,
                suspects: Callable[[tuple], list] = lambda f: []) -> list[str]:
        """Problems found (empty: agree). FRCD lists are the 128-bit values of FRCD0..NFR;
        ``suspects(fields)`` names the requests a record the model does not have may come from."""
        fsts = REGISTERS["FSTS"]
        pfo = fsts.field("pfo")
        model = {i: frcd_fields(v) for i, v in enumerate(model_frcds)}
        dut = {i: frcd_fields(v) for i, v in enumerate(dut_frcds)}
        m_slots = {i for i, f in model.items() if f}
        d_slots = {i for i, f in dut.items() if f}
        problems = []
        if pfo.get(model_fsts) != pfo.get(dut_fsts):
            problems.append(f"FSTS.PFO: model {pfo.get(model_fsts)}, DUT {pfo.get(dut_fsts)}")
        if m_slots != d_slots:
            problems.append(f"occupied FRCD slots: model {sorted(m_slots)}, DUT {sorted(d_slots)}")
        if pfo.get(model_fsts):
            pool = Counter(f for f, _ in self.attempts)
            for i in sorted(d_slots):
                f = dut[i]
                if pool[f]:
                    pool[f] -= 1
                else:
                    problems.append(f"FRCD{i} holds {show_fault(f)}, which is not one of the faults of "
                                    f"this window:\n      " + "\n      ".join(
                                        f"{show_fault(a)}  <- {o}" for a, o in self.attempts)
                                    + "".join(f"\n      from {o}?" for o in suspects(f)))
        else:
            want = Counter(model[i] for i in m_slots)
            got = Counter(dut[i] for i in d_slots)
            for f in sorted((want - got).elements()):
                origin = next((o for a, o in self.attempts if a == f), None)
                problems.append(f"record missing in the DUT: {show_fault(f)}  <- {origin}")
            for f in sorted((got - want).elements()):
                problems.append(f"record in the DUT the model does not have: {show_fault(f)}"
                                + "".join(f"\n      from {o}?" for o in suspects(f)))
        return problems


# ================================================================================================
# Address spaces and data pages (built on the reference side)
# ================================================================================================


@dataclasses.dataclass
class Mapping:
    """One page mapped in a space: ``va`` of ``size`` bytes at ``pa``, rights as mapped."""

    va: int
    size: int
    pa: int
    write: bool
    user: bool


@dataclasses.dataclass
class Space:
    """An ``Mm`` address space with its DID (one DID per space: an IOTLB tag (DID, PASID) then always
    names one set of page tables) and the pages mapped in it. ``hot`` lists 4 KiB pieces (va, pa,
    mapping) whose data was filled with random bytes: requests aim there."""

    mm: Mm
    did: int
    levels: int
    maps: list = dataclasses.field(default_factory=list)
    hot: list = dataclasses.field(default_factory=list)


# ================================================================================================
# The environment
# ================================================================================================


@dataclasses.dataclass
class Knobs:
    """Timing knobs: per-cycle pause probability on every handshake (streams, AXI-Lite, both AXI
    ports) and the memory latency range in cycles; ``reorder`` lets AXI responses of different IDs
    overtake each other."""

    busy: float = 0.3
    latency: tuple[int, int] = (0, 20)
    reorder: bool = True


class IommuEnv:
    """See the module docstring. Typical use::

        env = IommuEnv(dut)
        await env.start()                         # reset, root table, SRTP, TE
        sp = env.new_space(levels=4)
        env.map(sp, 0x7000_0000, K4, write=True, user=True)
        env.bind(0x0100, 5, sp)
        await env.invalidate()                    # tables changed: global invalidation (SRTP)
        await env.mrd(0x0100, 0x7000_0010, 4, pasid=5)
        await env.quiesce()                       # everything matched, registers compared
    """

    def __init__(self, dut, stats: IommuStats | None = None, rng: random.Random | None = None,
                 knobs: Knobs | None = None):
        self.dut = dut
        self.stats = stats or IommuStats()
        self.rng = rng or random.Random(self.stats.seed)
        # timing (back-pressure, latency, tags) draws from its own generator, so one seed gives the same
        # stimulus on every configuration
        self.trng = random.Random(self.stats.seed * 7919 + 1)
        self.knobs = knobs or Knobs()
        self.log = logging.getLogger("cocotb.iommu_env")
        Clock(dut.clk_i, CLK_NS, unit="ns").start()

        # reference side
        self.host = Env()
        self.ref = self.host.mem
        self.model = self.host.iommu
        self.dut_mem = Memory()
        self.sb = Scoreboard(self.stats)
        self.faults = FaultBook()
        self._origin: Origin | None = None
        self._in_ad = False
        self._race_write = False
        self._translation = None
        self._n = 0
        self._data_next = DATA_BASE
        self._next_did = 1
        self.ref.on_write.append(self._ref_written)
        self._wrap_model()

        # DUT side
        kw = dict(reset_active_level=False)
        clk, rst = dut.clk_i, dut.rst_ni
        self.rx = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_rx"), clk, rst, **kw)
        self.tx = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_tx"), clk, rst, **kw)
        self.rx.queue_occupancy_limit_frames = 2
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), clk, rst, **kw)
        lat = lambda: self.trng.randint(*self.knobs.latency)  # noqa: E731 (drawn per burst)
        self.dma = AxiMemory(AxiBus.from_prefix(dut, "m_axi_dma"), clk, rst, self.dut_mem, read_latency=lat,
                             write_latency=lat, reorder=self.knobs.reorder, **kw)
        self.tbl = AxiMemory(AxiBus.from_prefix(dut, "m_axi_tbl"), clk, rst, self.dut_mem, read_latency=lat,
                             write_latency=lat, reorder=self.knobs.reorder, **kw)
        for agent in (self.rx, self.tx, self.axil.write_if, self.axil.read_if):
            agent.log.setLevel(logging.WARNING)
        self.bus_bytes = len(dut.s_axis_rx_tdata) // 8
        self._ex_old = (0, 0)
        self.tbl.exclusive_hooks.append(self._exclusive_snapshot)
        self.dma.on_write.append(self._dut_written)
        self.tbl.on_write.append(self._dut_written)
        self.set_busy(self.knobs.busy)

        # traffic state
        self.progress = Event()
        self._reads: dict[tuple, tuple[int, int]] = {}   # key -> physical [lo, hi) still to be read
        self._tags: set[tuple[int, int]] = set()         # (rid, tag) of non-posted requests in flight
        self._dropped_tags: set[tuple[int, int]] = set()  # released at the next quiescent point
        self._sent = 0                                    # requests since the last quiescent point
        self._race = None                                 # (mutate, done) armed by arm_race()
        self.dut_race: list = []                          # (old, new) once the DUT met the last race
        self._window: list[Origin] = []                   # requests since the faults were cleared
        self.sb.on_key_done.append(self._key_done)
        self.t0 = 0
        # hooks for environments built on this one (tb/svm_env.py): ``on_tx(data)`` after a DUT TLP
        # matched the model; ``before_dut_write(addr, data)`` / ``on_dut_write(addr, data)`` around the
        # scoring of every normal (non-exclusive) store piece of the DUT
        self.on_tx: list[Callable[[bytes], None]] = []
        self.before_dut_write: list[Callable[[int, bytes], None]] = []
        self.on_dut_write: list[Callable[[int, bytes], None]] = []

    # --- model hooks --------------------------------------------------------------------------------
    def _wrap_model(self) -> None:
        ref, model = self.ref, self.model
        cmpxchg, record, respond = ref.cmpxchg64, model.record_fault, model.respond

        def cmpxchg64(addr, expected, new):
            self._in_ad = True
            try:
                ok, old = cmpxchg(addr, expected, new)
            finally:
                self._in_ad = False
            if ok and new != old and self._origin is not None:
                self.sb.expect_ad(addr, old, new, self._origin)
            return ok, old

        def record_fault(reason, rid, pasid, pmr, addr, kind, at, er=0):
            self.faults.attempt(fault_fields(reason, rid, pasid, pmr, addr, kind, at, er), self._origin)
            return record(reason, rid, pasid, pmr, addr, kind, at, er)

        def respond_(pkt, t):
            self._translation = t
            return respond(pkt, t)

        ref.cmpxchg64 = cmpxchg64
        model.record_fault = record_fault
        model.respond = respond_

    def _ref_written(self, addr: int, data: bytes) -> None:
        self.sb.touch(addr, len(data))
        if self._race_write:
            return  # the CPU side of a race: the DUT gets its own copy through AxiMemory.race
        if self._origin is None:
            if self._sent:
                raise AssertionError(f"testbench: CPU write at {addr:#x} while {self._sent} request(s) are "
                                     f"not settled; call quiesce() first")
            self.dut_mem.write(addr, data)  # a CPU write: both memories
        elif not self._in_ad:
            self.sb.expect_write(addr, data, self._origin)

    @contextlib.contextmanager
    def _model(self, origin: Origin):
        self._origin = origin
        try:
            yield
        finally:
            self._origin = None

    def _origin_for(self, note: str, data: bytes | None = None) -> Origin:
        o = Origin(self._n, data, note)
        self._n += 1
        return o

    # --- DUT hooks ----------------------------------------------------------------------------------
    def _exclusive_snapshot(self, ev) -> None:
        if ev.phase == "write":
            entry = ev.addr & ~7
            self._ex_old = (entry, self.dut_mem.read64(entry))

    def _dut_written(self, rec) -> None:
        self.progress.set()
        if not rec.pieces:
            return  # nothing stored: a failed exclusive write or an injected error
        if rec.exclusive:
            entry = rec.addr & ~7
            end = max(a + len(d) for a, d in rec.pieces)
            if min(a for a, _ in rec.pieces) < entry or end > entry + 8 or self._ex_old[0] != entry:
                self.sb.fail(f"exclusive write at {rec.addr:#x} is not one 8-byte entry update", None,
                             "8 bytes at an 8-byte aligned entry", rec)
                return
            self.sb.dut_ad_write(entry, self._ex_old[1], self.dut_mem.read64(entry))
        else:
            for a, d in rec.pieces:
                for f in self.before_dut_write:
                    f(a, bytes(d))
                self.sb.dut_write(a, d)
                for f in self.on_dut_write:
                    f(a, bytes(d))

    async def _tx_monitor(self) -> None:
        while True:
            frame = await self.tx.recv(compact=False)
            keep = list(frame.tkeep)
            n = keep.count(1)
            if keep != [1] * n + [0] * (len(keep) - n) or len(keep) - n >= self.bus_bytes or n == 0:
                self.sb.fail("m_axis_tx frame with holes in tkeep or an empty last beat", None,
                             "contiguous tkeep", keep)
            data = bytes(frame.tdata[:n])
            if self.sb.dut_tlp(data):
                for f in self.on_tx:
                    f(data)
            self.progress.set()

    def _key_done(self, key: tuple) -> None:
        self._reads.pop(key, None)
        if key[0] == "completion":
            self._tags.discard(key[1:])
        self.progress.set()

    # --- set-up -------------------------------------------------------------------------------------
    def set_busy(self, busy: float) -> None:
        """Random back-pressure with probability ``busy`` on every handshake the testbench drives."""
        rng = self.trng

        def gen():
            return iter(lambda: rng.random() < busy, None) if busy > 0 else None

        self.dma.random_backpressure(rng, busy)
        self.tbl.random_backpressure(rng, busy)
        chans = [self.rx, self.tx, self.axil.write_if.aw_channel, self.axil.write_if.w_channel,
                 self.axil.write_if.b_channel, self.axil.read_if.ar_channel, self.axil.read_if.r_channel]
        for ch in chans:
            ch.set_pause_generator(gen())
        if busy <= 0:
            # removing a pause generator leaves the channel's last pause value in place (cocotbext-axi)
            for ch in chans:
                ch.pause = False

    async def reset(self) -> None:
        self.dut.rst_ni.value = 0
        await ClockCycles(self.dut.clk_i, 5)
        self.dut.rst_ni.value = 1
        await ClockCycles(self.dut.clk_i, 2)
        self.t0 = get_sim_time("ns")
        cocotb.start_soon(self._tx_monitor())

    async def start(self, ttm: int = 0b01) -> None:
        """Reset, then the driver's bring-up: RTADDR, SRTP, TE (vtd §1.5)."""
        await self.reset()
        await self.compare_registers()
        await self.enable(ttm)

    async def enable(self, ttm: int = 0b01) -> None:
        await self.reg_write("RTADDR", self.host.root | ttm << 10)
        await self.gcmd("srtp")
        await self.gcmd("te")

    def cycles(self) -> int:
        return int((get_sim_time("ns") - self.t0) // CLK_NS)

    def finish(self) -> None:
        """Copy the numbers into the stats record (call at the end of a test, pass or fail)."""
        self.stats.cycles = self.cycles()
        self.stats.tlps = self.sb.tlps_matched
        self.stats.mem_bytes = self.sb.bytes_matched

    # --- reference-side world building ----------------------------------------------------------------
    def data_pages(self, size: int) -> int:
        """A fresh, naturally aligned physical block for data (never a table frame)."""
        pa = (self._data_next + size - 1) & ~(size - 1)
        if pa + size > DATA_LIMIT:
            raise MemoryError("data region exhausted")
        self._data_next = pa + size
        return pa

    def fill(self, pa: int, n: int = PAGE) -> None:
        """Random bytes at ``pa`` (a CPU write: both memories)."""
        self.ref.write(pa, self.rng.randbytes(n))

    def new_space(self, levels: int = 4) -> Space:
        sp = Space(self.host.new_mm(levels), self._next_did, levels)
        self._next_did += 1
        return sp

    def map(self, sp: Space, va: int, size: int, write: bool = True, user: bool = True, pa: int | None = None,
            hot: int = 2) -> Mapping:
        """Map a page (data pages allocated unless ``pa`` is given) and fill ``hot`` of its 4 KiB
        pieces (the first, the last, random ones between) with random data."""
        if pa is None:
            pa = self.data_pages(size)
        sp.mm.map(va, size, pa=pa, write=write, user=user)
        m = Mapping(va, size, pa, write, user)
        sp.maps.append(m)
        pieces = size // K4
        picks = {0, pieces - 1} | {self.rng.randrange(pieces) for _ in range(max(0, hot - 2))}
        for k in sorted(picks)[:max(hot, 1)]:
            self.fill(pa + k * K4)
            sp.hot.append((va + k * K4, pa + k * K4, m))
        return m

    def device(self, rid: int, **ctx) -> None:
        """(Re)write the context entry of ``rid``: the Env defaults (P, DTE, PASIDE, PRE, PDTS=7) with
        ``ctx`` on top."""
        fields = dict(p=1, dte=1, paside=1, pre=1, pdts=7)
        fields.update(ctx)
        self.host.set_context(rid, **fields)

    def bind(self, rid: int, pasid: int, sp: Space, **pe) -> None:
        """PASID entry of (rid, pasid) -> first-stage translation through ``sp`` (SRE=1 unless given);
        the device needs a context entry first (``device``)."""
        if rid not in self.host._dirs:
            self.device(rid)
        fields = dict(sre=1)
        fields.update(pe)
        self.host.bind(rid, pasid, sp.mm, did=sp.did, **fields)

    # --- registers ----------------------------------------------------------------------------------
    def _quiet_required(self, what: str) -> None:
        if self._sent:
            raise AssertionError(f"testbench: {what} while {self._sent} request(s) are not settled; "
                                 f"call quiesce() first")

    async def reg_write32(self, offset: int, value: int, note: str = "") -> None:
        """One 32-bit register write: the model first (it may send an MSI), then the DUT."""
        self._quiet_required(f"register write at {offset:#x}")
        origin = self._origin_for(note or f"register write [{offset:#05x}] = {value:#010x}")
        with self._model(origin):
            self.model.reg_write(offset, value, 4)
        for x in self.model.take_tx():      # TLPs of its side effects (invalidation queue)
            self.sb.expect_tlp(x, origin)
        resp = await self._bounded(self.axil.write(offset, value.to_bytes(4, "little")),
                                   f"the AXI-Lite write at {offset:#x}")
        if resp.resp != AxiResp.OKAY:
            self.sb.fail(f"AXI-Lite write at {offset:#x} answered {resp.resp}", origin, "OKAY", resp.resp)
        self.sb.check()

    async def reg_read32(self, offset: int) -> int:
        resp = await self._bounded(self.axil.read(offset, 4), f"the AXI-Lite read at {offset:#x}")
        if resp.resp != AxiResp.OKAY:
            self.sb.fail(f"AXI-Lite read at {offset:#x} answered {resp.resp}", None, "OKAY", resp.resp)
            self.sb.check()
        return int.from_bytes(resp.data, "little")

    async def reg_write(self, name: str, value: int) -> None:
        r = REGISTERS[name]
        for i in range(0, min(r.nbytes, 8), 4):
            await self.reg_write32(r.offset + i, value >> (8 * i) & 0xFFFF_FFFF, f"{name} = {value:#x}")

    async def reg_read(self, name: str) -> int:
        r = REGISTERS[name]
        value = 0
        for i in range(0, r.nbytes, 4):
            value |= await self.reg_read32(r.offset + i) << (8 * i)
        return value

    async def gcmd(self, command: str, on: int = 1) -> None:
        """One GCMD command as software issues it (vtd §1.5), then wait until the DUT's GSTS shows it."""
        bit = REGISTERS["GCMD"].field(command).mask
        value = self.model.reg("GSTS") & GSTS_KEEP
        await self.reg_write("GCMD", value | bit if on else value & ~bit)
        want = self.model.reg("GSTS")
        status = {"te": ("tes", on), "srtp": ("rtps", 1)}.get(command)
        if status and self.model.field("GSTS", status[0]) != status[1]:
            raise AssertionError(f"testbench: the model ignored GCMD.{command}={on} (GSTS {want:#010x})")
        for _ in range(200):
            got = await self.reg_read32(REGISTERS["GSTS"].offset)
            if got == want:
                return
        raise Mismatch(f"{self.stats.name}: GSTS after GCMD.{command}={on}: model {want:#010x}, "
                       f"DUT {got:#010x} (polled 200 times)\n  {self.stats.rerun_hint()}")

    async def invalidate(self) -> None:
        """The global invalidation the RTL has: SRTP with the same RTADDR (ESRTPS=1: every cache)."""
        await self.gcmd("srtp")

    async def fault_event(self, address: int, data: int, masked: bool = False) -> None:
        """Program the fault event (FEDATA, FEADDR, FEUADDR, FECTL.IM)."""
        await self.reg_write("FEDATA", data)
        await self.reg_write("FEADDR", address & 0xFFFF_FFFC)
        await self.reg_write("FEUADDR", address >> 32)
        await self.reg_write("FECTL", int(masked) << 31)

    async def compare_registers(self) -> None:
        """Every 32-bit word of every register but the FRCDs: DUT (over AXI-Lite) vs model."""
        for r in REGISTERS:
            if r in FRCDS:
                continue
            for i in range(0, r.nbytes, 4):
                got = await self.reg_read32(r.offset + i)
                want = self.model.reg_read(r.offset + i, 4)
                if got != want:
                    self.sb.fail(f"register {r.name} word {i // 4} ([{r.offset + i:#05x}])", None,
                                 f"{want:#010x}", f"{got:#010x}")
                    self.sb.check()

    async def compare_faults(self, clear: bool = True) -> None:
        """Point 3 of the module docstring, then (``clear``) clear both the same way."""
        dut = []
        for r in FRCDS:
            dut.append(await self.reg_read(r.name))
        model = [self.model.reg(r.name) for r in FRCDS]
        dut_fsts = await self.reg_read32(REGISTERS["FSTS"].offset)
        model_fsts = self.model.reg("FSTS")
        problems = self.faults.compare(model, model_fsts, dut, dut_fsts, self._suspects)
        if problems:
            def show(frcds: list[int], fsts: int) -> list[str]:
                return [f"FRCD{i}: {show_fault(frcd_fields(v)) if frcd_fields(v) else '-'}"
                        for i, v in enumerate(frcds)] + [f"FSTS {fsts:#010x}"]

            self.sb.fail("fault records differ", None, "\n    " + "\n    ".join(show(model, model_fsts)),
                         "\n    " + "\n    ".join(show(dut, dut_fsts) + ["problems:"] + problems))
            self.sb.check()
        self.stats.faults += sum(1 for v in dut if frcd_fields(v))
        if clear:
            await self.clear_faults()

    def _suspects(self, fields: tuple) -> list[Origin]:
        """Requests sent since the faults were last cleared whose header (read raw, so malformed ones
        count too) has the record's source-id and page."""
        d = dict(zip(FRCD_FIELDS, fields))
        out = []
        for o in self._window:
            data, pos = o.data, 0
            while pos + 4 <= len(data) and data[pos] >> 5 == T.FMT_PREFIX:
                pos += 4
            hdr = data[pos:]
            if len(hdr) < 12 or int.from_bytes(hdr[4:6], "big") != d["sid"]:
                continue
            four_dw = hdr[0] >> 5 & 1
            if four_dw and len(hdr) < 16:
                continue
            addr = int.from_bytes(hdr[8:16] if four_dw else hdr[8:12], "big") & ~3
            if (addr >> 12) & ((1 << 52) - 1) == d["fi"]:
                out.append(o)
        return out

    async def clear_faults(self) -> None:
        """Software's fault handling: write 1 to every FRCD.F that is set, then to FSTS.PFO."""
        f = FRCDS[0].field("f")
        for r in FRCDS:
            if f.get(self.model.reg(r.name)):
                await self.reg_write32(r.offset + 12, 1 << (f.lo - 96), f"clear {r.name}.F")
        if REGISTERS["FSTS"].field("pfo").get(self.model.reg("FSTS")):
            await self.reg_write32(REGISTERS["FSTS"].offset, 1, "clear FSTS.PFO")
        self.faults.clear()
        self._window.clear()

    # --- errors the memory system answers ------------------------------------------------------------
    def read_error(self, addr: int, n: int, agent: AxiMemory | None = None):
        """Reads of [addr, addr+n) fail on both sides (SLVERR on the DUT's port ``agent``, default
        the table port). Returns a handle for ``remove_error``."""
        agent = agent or self.tbl
        self.ref.fail_reads(addr, n)
        return ("read", addr, n, agent, agent.inject_error(addr, n, AxiResp.SLVERR, reads=True, writes=False))

    def update_error(self, entry: int):
        """The atomic update of the entry fails on both sides (model: cmpxchg raises; DUT: SLVERR to
        the exclusive write)."""
        self.ref.bad_cmpxchg.add(entry)
        return ("cmpxchg", entry, 8, self.tbl, self.tbl.inject_error(entry, 8, AxiResp.DECERR, reads=False,
                                                                     writes=True))

    def remove_error(self, handle) -> None:
        kind, addr, n, agent, r = handle
        if kind == "read":
            self.ref.bad_reads.remove((addr, addr + n))
        else:
            self.ref.bad_cmpxchg.discard(addr)
        agent.remove_error(r)

    # --- CPU races -----------------------------------------------------------------------------------
    def arm_race(self, mutate: Callable[[int], int]) -> list:
        """For the next request: the CPU rewrites the first entry the model's walk updates to
        ``mutate(old)`` between the walk's read and its atomic update. ``send`` then arms the same
        race on the DUT's table port (``dut_race`` receives (old, new) when the DUT meets it).
        Returns a list that receives (entry, old, new) if the model met it."""
        done: list = []

        def hook(addr: int):
            old = self.ref.read64(addr)
            self._race_write = True
            try:
                self.ref.write64(addr, mutate(old))
            finally:
                self._race_write = False
            done.append((addr, old, mutate(old)))

        self.ref.before_cmpxchg = hook
        self._race = (mutate, done)
        return done

    # --- traffic -------------------------------------------------------------------------------------
    def _read_overlaps(self, lo: int, hi: int) -> bool:
        return any(a < hi and lo < b for a, b in self._reads.values())

    async def _bounded(self, coro, what: str):
        """``await coro``, failing with the outstanding work when it takes over HANG_CYCLES."""
        try:
            return await with_timeout(coro, HANG_CYCLES * CLK_NS, "ns")
        except SimTimeoutError:
            self.stats.mismatches += 1
            raise Mismatch(f"{self.stats.name}: waited {HANG_CYCLES} cycles for {what} (the DUT hangs?); "
                           f"{self.port_state()}; {self._outstanding()}") from None

    def _outstanding(self) -> str:
        return ("outstanding:\n    " + "\n    ".join(self.sb.pending() or ["-"])
                + f"\n  {self.stats.rerun_hint()}")

    def port_state(self) -> str:
        """The DUT's handshake outputs and the memory agents' state, for hang reports."""
        d = self.dut
        sig = {n: int(getattr(d, n).value) for n in (
            "s_axis_rx_tready", "m_axis_tx_tvalid", "s_axil_awready", "s_axil_arready", "m_axi_dma_arvalid",
            "m_axi_dma_awvalid", "m_axi_dma_wvalid", "m_axi_tbl_arvalid", "m_axi_tbl_awvalid",
            "m_axi_tbl_wvalid")}
        agents = {n: ("idle" if a.idle() else "busy") for n, a in (("dma", self.dma), ("tbl", self.tbl))}
        return f"ports {sig}, memory agents {agents}"

    async def until(self, pred: Callable[[], bool], what: str, timeout: int = 50_000) -> None:
        """Sleep until ``pred()``: re-checked on every DUT output and every 64 cycles."""
        t_end = get_sim_time("ns") + timeout * CLK_NS
        while not pred():
            self.sb.check()
            if get_sim_time("ns") > t_end:
                self.stats.mismatches += 1
                raise Mismatch(f"{self.stats.name}: waited {timeout} cycles for {what}; "
                               f"{self._outstanding()}")
            self.progress.clear()
            await First(self.progress.wait(), ClockCycles(self.dut.clk_i, 64))
        self.sb.check()

    async def send(self, data: bytes, note: str = "", phase: str = "write") -> Origin:
        """Model first, then s_axis_rx (see the module docstring). ``phase``: where the DUT meets an
        armed race (``AxiMemory.race``)."""
        self.sb.check()
        data = bytes(data)
        origin = self._origin_for(note, data)
        self._translation = None
        with self._model(origin):
            out = self.model.receive_tlp(data)
        t, self._translation = self._translation, None
        if self._race is not None:
            mutate, done = self._race
            self._race = None
            self.ref.before_cmpxchg = None
            if done:
                self.dut_race = self.tbl.race(done[0][0], mutate, phase=phase)
        for x in out:
            self.sb.expect_tlp(x, origin)
            key = tlp_key(x)
            if key[0] == "completion":
                self._tags.add(key[1:])
        try:
            pkt = T.decode(data, strict=False)
        except T.TlpError:
            pkt = None
        if isinstance(pkt, T.MemRead):
            key = ("completion", pkt.requester_id, pkt.tag)
            if not out:
                self._dropped_tags.add(key[1:])
            elif t is not None and t.ok and t.request.kind == "read":
                self._reads[key] = (t.address, t.address + 4 * pkt.length)
        elif isinstance(pkt, T.MemWrite) and t is not None and t.ok:
            lo = t.address
            await self.until(lambda: not self._read_overlaps(lo, lo + 4 * pkt.length),
                             f"earlier reads of the bytes {origin} writes")
        self._sent += 1
        self._window.append(origin)
        await self._bounded(self.rx.send(AxiStreamFrame(data)), f"s_axis_rx to take {origin}")
        return origin

    async def tag(self, rid: int) -> int:
        """A random 10-bit tag that no non-posted request of ``rid`` in flight uses."""
        await self.until(lambda: sum(r == rid for r, _ in self._tags | self._dropped_tags) < 768,
                         f"a free tag of {rid:#06x}")
        while True:
            t = self.trng.randrange(1024)
            if (rid, t) not in self._tags and (rid, t) not in self._dropped_tags:
                return t

    async def mrd(self, rid: int, addr: int, length: int = 1, first_be: int | None = None,
                  last_be: int | None = None, note: str = "", phase: str = "write", **fields) -> Origin:
        """An MRd (``at``, ``pasid``/``pmr``/``er``, ``th``/``st``/``ph``, ``nw``, ``locked``,
        ``tc``/``attr`` as in ``models.tlp.MemRead``) with a free tag unless ``tag`` is given."""
        if first_be is None:
            first_be = 0xF
        if last_be is None:
            last_be = 0xF if length > 1 else 0
        if fields.get("th"):
            first_be, last_be = 0xF, (0xF if length > 1 else 0)
        tag = fields.pop("tag", None)
        if tag is None:
            tag = await self.tag(rid)
        pkt = T.MemRead(requester_id=rid, tag=tag, address=addr, length=length, first_be=first_be,
                        last_be=last_be, **fields)
        return await self.send(pkt.encode(), note, phase)

    async def mwr(self, rid: int, addr: int, data: bytes, first_be: int | None = None,
                  last_be: int | None = None, note: str = "", phase: str = "write", **fields) -> Origin:
        """An MWr (fields as in ``models.tlp.MemWrite``)."""
        n = len(data) // 4
        if first_be is None:
            first_be = 0xF
        if last_be is None:
            last_be = 0xF if n > 1 else 0
        fields.setdefault("tag", self.rng.getrandbits(8) if not fields.get("th") else 0)
        pkt = T.MemWrite(requester_id=rid, address=addr, data=bytes(data), first_be=first_be, last_be=last_be,
                         **fields)
        return await self.send(pkt.encode(), note, phase)

    async def ats(self, rid: int, addr: int, nw: int = 0, length: int = 2, note: str = "",
                  **fields) -> Origin:
        """An ATS translation request (MRd with AT=01b) for the page holding ``addr``."""
        return await self.mrd(rid, addr & ~0xFFF, length, at=T.AT_TRANSLATION_REQUEST, nw=nw, note=note,
                              **fields)

    # --- quiescent points ----------------------------------------------------------------------------
    def _quiet_now(self) -> bool:
        return (self.rx.idle() and self.sb.idle() and self.dma.idle() and self.tbl.idle()
                and self.tx.empty() and not self.tx.active)

    def _activity(self) -> tuple:
        """Changes whenever the DUT takes input, touches memory or sends something."""
        return (dataclasses.astuple(self.dma.counters), dataclasses.astuple(self.tbl.counters),
                self.sb.tlps_matched, self.sb.bytes_matched, self.rx.queue_occupancy_frames, self.rx.active,
                self.tx.active)

    async def quiesce(self, registers: bool = True, timeout: int = 100_000, quiet: int | None = None) -> None:
        """Wait until every predicted TLP and memory write happened and both memory ports stayed
        idle for a while (no new burst: no walk or DMA is still on its way), then check memory
        (``Scoreboard.settle``) and, with ``registers``, the fault records (cleared afterwards) and
        every other register. A DUT that does nothing for ``stall`` cycles while the model expects
        more fails at once (with what is missing). ``quiet``: the idle cycles required (default
        4 x the longest memory latency + 64)."""
        quiet = quiet or 4 * self.knobs.latency[1] + 64
        stall = max(2000, 10 * quiet)
        clk = self.dut.clk_i
        now = lambda: get_sim_time("ns") // CLK_NS  # noqa: E731
        t_end, t_act, seen = now() + timeout, now(), self._activity()
        while True:
            self.sb.check()
            if self._quiet_now():
                await ClockCycles(clk, quiet)
                if self._activity() == seen and self._quiet_now():
                    break
            else:
                self.progress.clear()
                await First(self.progress.wait(), ClockCycles(clk, 64))
            if self._activity() != seen:
                seen, t_act = self._activity(), now()
            if now() - t_act > stall or now() > t_end:
                self.stats.mismatches += 1
                what = (f"stopped for {now() - t_act} cycles" if now() - t_act > stall
                        else f"did not settle in {timeout} cycles (memory traffic: {seen[:2]})")
                raise Mismatch(f"{self.stats.name}: the DUT {what} ({self.port_state()}); the model's work "
                               f"still outstanding:\n    "
                               + "\n    ".join(self.sb.pending() or ["-"]) + f"\n  {self.stats.rerun_hint()}")
        self.sb.settle(self.ref, self.dut_mem)
        self.sb.check()
        self.stats.checked += self._sent
        self._sent = 0
        self._dropped_tags.clear()
        if self._reads:
            raise AssertionError(f"testbench: reads still tracked at a quiescent point: {self._reads}")
        if registers:
            await self.compare_faults()
            await self.compare_registers()


def count(default: int) -> int:
    """COUNT= from the environment (make sim COUNT=...), else ``default``."""
    return int(os.environ.get("COUNT") or default)

