"""Host memory as an AXI4 slave for the testbench, with the exclusive monitor used for A/D updates.

``AxiMemory`` answers an AXI4 port of the DUT from a ``models.host.Memory`` - the same object the golden
model and the SVM driver model use, so a CPU-side ``mem.write`` from the testbench is what the DUT
reads next, and every byte the DUT writes is in the memory the model looks at.

Mechanism for atomic A/D updates (docs/atomics.md): the IOMMU reads the 8-byte paging entry with an
exclusive read (ARLOCK=1) and writes the updated entry with an exclusive write (AWLOCK=1, same ID,
address, size and length). The agent answers the read with EXOKAY and records a reservation for that
ID; the write succeeds (EXOKAY, memory updated) only if nothing wrote any reserved byte since, and fails
otherwise (OKAY, memory unchanged) - the IOMMU then reads again and retries. That is
``Memory.cmpxchg64`` of the golden model, done on a bus.

What the agent does (AMBA AXI4, ARM IHI 0022E: §A3.4 transfer addresses, byte lanes and strobes; §A7.2
exclusive accesses):

* INCR / FIXED / WRAP bursts with narrow and unaligned transfers, byte strobes, any data width, the
  address width of the bus (64 bits in this project). Inactive byte lanes of read data carry a poison
  byte so a master that uses them shows up.
* Read data of one burst comes out in one piece (no interleaving). With ``reorder=True`` bursts of
  different IDs may complete out of order (whichever is due first); one ID is always in order.
* Latency: ``read_latency`` (address handshake -> first data beat) and ``write_latency`` (last data
  beat -> response), in clock cycles, an int or a callable drawn per burst; they are minimums, on top
  of the agent's own cycle of reaction. Up to ``max_outstanding`` bursts per direction are held, plus
  the two each address sink buffers.
* Back-pressure: a pause generator per channel (``set_pause_generator``, ``random_backpressure``),
  READY on AR/AW/W and VALID on R/B. The agent sleeps while idle: the channels wait for VALID or for
  data to send, and a pause generator is not advanced while its channel has nothing to do.
* Exclusive monitor: one reservation per ARID (a new exclusive read of that ID replaces it); any write
  that touches a reserved byte clears it, whether it comes over AXI, from ``mem.write``/``write64``/
  ``zero`` on the CPU side, or from ``mem.cmpxchg64`` (the agent watches ``mem.on_write``).
  ``exclusive_support=False`` models a slave without a monitor (OKAY to exclusive reads, exclusive
  writes done as normal writes), the case a master must detect from the read's OKAY.
* Races: ``exclusive_hooks`` are called when an exclusive read has been served and the reservation
  made (phase "read") and just before an exclusive write is checked (phase "write"); a hook that writes
  the memory makes the exclusive write fail. ``race()`` is the ready-made "CPU changes the entry" hook.
* ``on_write``: every write burst, with what it stored (strobes applied) and its response.
* Errors: ``inject_error(base, size, resp)`` answers SLVERR or DECERR for accesses that touch the
  range; a write burst that touches it stores nothing, a read beat that touches it returns poison.
  ``error_for()`` gives the same verdict to a model-side memory wrapper.
* Protocol violations by the master (reserved burst type, WRAP length, 4 KiB crossing, exclusive
  size/alignment, WLAST, strobes outside the active lanes, ...) raise ``AxiProtocolError``, which fails
  the test.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Callable, Iterator

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import Event, RisingEdge, Timer
from cocotbext.axi import AxiBurstType, AxiBus, AxiResp
from cocotbext.axi.axi_channels import AxiARSink, AxiAWSink, AxiBSource, AxiRSource, AxiWSink
from cocotbext.axi.reset import Reset

from models.host import Memory

CHANNELS = ("ar", "aw", "w", "r", "b")
POISON = 0xDB  # read data on byte lanes a beat does not use, and on beats answered with an error
PAGE = 0x1000  # a burst must not cross a 4 KiB boundary (AXI4 §A3.4)
EXCLUSIVE_MAX_BYTES = 128  # AXI4 §A7.2 (exclusive access restrictions)
EXCLUSIVE_MAX_BEATS = 16


class AxiProtocolError(AssertionError):
    """The master broke an AXI4 rule; the message names the rule and the transaction."""


# ------------------------------------------------------------------------------------------------
# Bursts: decoding and the address of every beat (pure functions, testable without a simulator)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Burst:
    """One AXI4 address-channel transaction: ``beats`` = AxLEN+1, ``size`` = AxSIZE (log2 bytes)."""

    channel: str  # "ar" or "aw", for messages
    axi_id: int
    addr: int
    beats: int
    size: int
    burst: AxiBurstType
    lock: bool

    def __str__(self):
        return (f"{self.channel.upper()} id={self.axi_id:#x} addr={self.addr:#x} len={self.beats - 1} "
                f"size={self.size} burst={self.burst.name}{' exclusive' if self.lock else ''}")

    @property
    def nbytes(self) -> int:
        """Bytes per beat (2^AxSIZE)."""
        return 1 << self.size

    @property
    def total(self) -> int:
        return self.nbytes * self.beats

    @classmethod
    def decode(cls, channel: str, axi_id: int, addr: int, axlen: int, axsize: int, axburst: int,
               axlock: int, bus_bytes: int) -> "Burst":
        """Check the address-channel rules (AXI4 §A3.4, §A7.2) and return the burst."""

        def bad(rule: str):
            return AxiProtocolError(f"{channel.upper()} id={axi_id:#x} addr={addr:#x} len={axlen} "
                                    f"size={axsize} burst={axburst} lock={axlock}: {rule}")

        if axburst == 3:
            raise bad("AxBURST=0b11 is reserved")
        b = cls(channel, axi_id, addr, axlen + 1, axsize, AxiBurstType(axburst), bool(axlock))
        if b.nbytes > bus_bytes:
            raise bad(f"{b.nbytes}-byte beats do not fit the {bus_bytes}-byte data bus")
        if b.burst == AxiBurstType.WRAP:
            if b.beats not in (2, 4, 8, 16):
                raise bad("a WRAP burst has 2, 4, 8 or 16 beats")
            if addr % b.nbytes:
                raise bad("a WRAP burst starts at an address aligned to its beat size")
        elif b.burst == AxiBurstType.FIXED:
            if b.beats > 16:
                raise bad("a FIXED burst has at most 16 beats")
        else:
            last = (addr & ~(b.nbytes - 1)) + b.total - 1
            if addr // PAGE != last // PAGE:
                raise bad("an INCR burst must not cross a 4 KiB boundary")
        if b.lock:
            if b.beats > EXCLUSIVE_MAX_BEATS:
                raise bad(f"an exclusive access has at most {EXCLUSIVE_MAX_BEATS} beats")
            if b.total & (b.total - 1) or b.total > EXCLUSIVE_MAX_BYTES:
                raise bad(f"an exclusive access transfers a power of two bytes, "
                          f"at most {EXCLUSIVE_MAX_BYTES}")
            if addr % b.total:
                raise bad(f"an exclusive access is aligned to its total size ({b.total} bytes)")
        return b

    def lanes(self, bus_bytes: int) -> list[tuple[int, int, int]]:
        """Per beat: (memory address of the first active lane, first active lane, end lane), AXI4 §A3.4.

        The first beat of an unaligned burst starts at AxADDR; later beats are aligned to the beat size.
        FIXED repeats the first beat's address; WRAP wraps at the boundary aligned to the burst's total.
        """
        nb = self.nbytes
        aligned = self.addr & ~(nb - 1)
        total = self.total
        wrap_base = self.addr - self.addr % total
        out = []
        for n in range(self.beats):
            if n == 0 or self.burst == AxiBurstType.FIXED:
                start, container = self.addr, aligned
            elif self.burst == AxiBurstType.INCR:
                start = container = aligned + n * nb
            else:
                start = container = wrap_base + (self.addr - wrap_base + n * nb) % total
            out.append((start, start % bus_bytes, container % bus_bytes + nb))
        return out

    def same_shape(self, other: "Burst") -> bool:
        shape = (self.addr, self.beats, self.size, self.burst)
        return shape == (other.addr, other.beats, other.size, other.burst)


def strobe_runs(strb: int, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """Maximal runs [start, end) of set strobe bits between lanes lo and hi."""
    lane = lo
    while lane < hi:
        if strb >> lane & 1:
            start = lane
            while lane < hi and strb >> lane & 1:
                lane += 1
            yield start, lane
        else:
            lane += 1


# ------------------------------------------------------------------------------------------------
# Records handed to the test
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxiWriteRecord:
    """One write burst the agent answered. ``pieces`` is exactly what it stored, strobes applied:
    (address, bytes) runs in beat order; empty when nothing was stored (failed exclusive, error)."""

    axi_id: int
    addr: int
    exclusive: bool
    resp: AxiResp
    pieces: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True)
class ExclusiveEvent:
    """Handed to ``exclusive_hooks``. phase "read": an exclusive read was served and its reservation
    made; phase "write": an exclusive write has all its data and is about to be checked."""

    phase: str
    axi_id: int
    addr: int
    nbytes: int


@dataclass(frozen=True)
class ErrorRange:
    base: int
    size: int
    resp: AxiResp
    reads: bool
    writes: bool


@dataclass
class AxiMemoryCounters:
    read_bursts: int = 0
    read_beats: int = 0
    write_bursts: int = 0
    write_beats: int = 0
    exclusive_reads: int = 0  # answered EXOKAY (a reservation was made)
    exclusive_writes_ok: int = 0
    exclusive_writes_failed: int = 0
    error_responses: int = 0  # bursts answered SLVERR/DECERR


@dataclass(frozen=True)
class _Reservation:
    burst: Burst
    lo: int
    hi: int


@dataclass
class _Pending:
    burst: Burst
    due: int  # simulation step before which the response must not start
    resp: AxiResp = AxiResp.OKAY  # writes: the answer decided at commit time


# ------------------------------------------------------------------------------------------------
# Channels: cocotbext-axi's, with a time stamp on sampled beats and pause generators that sleep
# ------------------------------------------------------------------------------------------------


def _stamped(transaction_cls):
    """The channel's transaction type, remembering the simulation step it was sampled in."""

    class Stamped(transaction_cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.stamp = get_sim_time()

    Stamped.__name__ = transaction_cls.__name__
    return Stamped


async def _sink_pause(self):
    """Pause generator of a sink (READY side): not advanced while VALID is low."""
    edge = RisingEdge(self.clock)
    for val in self._pause_generator:
        self.pause = val
        await edge
        if self.valid.value != 1:
            await RisingEdge(self.valid)


async def _source_pause(self):
    """Pause generator of a source (VALID side): not advanced while there is nothing to send."""
    edge = RisingEdge(self.clock)
    for val in self._pause_generator:
        self.pause = val
        await edge
        if self.empty() and not self.active:
            await self.active_event.wait()


def _sink(base):
    return type(base.__name__, (base,), {"_transaction_obj": _stamped(base._transaction_obj),
                                          "_run_pause": _sink_pause})


def _source(base):
    return type(base.__name__, (base,), {"_run_pause": _source_pause})


_ArSink, _AwSink, _WSink = _sink(AxiARSink), _sink(AxiAWSink), _sink(AxiWSink)
_RSource, _BSource = _source(AxiRSource), _source(AxiBSource)


# ------------------------------------------------------------------------------------------------
# The agent
# ------------------------------------------------------------------------------------------------


class AxiMemory(Reset):
    """AXI4 slave backed by ``mem``. See the module docstring; typical use::

        axi = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), dut.clk_i, dut.rst_ni, mem,
                        reset_active_level=False, read_latency=lambda: rng.randint(2, 20), reorder=True)
        axi.random_backpressure(rng, 0.3)
        axi.on_write.append(scoreboard.axi_write)
        axi.race(pte_addr, lambda old: old & ~2)   # the CPU clears R/W between the IOMMU's read and write
    """

    def __init__(self, bus: AxiBus, clock, reset, mem: Memory, *, reset_active_level: bool = True,
                 read_latency: int | Callable[[], int] = 0, write_latency: int | Callable[[], int] = 0,
                 reorder: bool = False, max_outstanding: int = 8, exclusive_support: bool = True):
        if max_outstanding < 1:
            raise ValueError(f"max_outstanding must be at least 1, not {max_outstanding}")
        self.mem = mem
        self.clock = clock
        self.read_latency = read_latency
        self.write_latency = write_latency
        self.reorder = reorder
        self.max_outstanding = max_outstanding
        self.exclusive_support = exclusive_support
        self.on_write: list[Callable[[AxiWriteRecord], None]] = []
        self.exclusive_hooks: list[Callable[[ExclusiveEvent], None]] = []
        self.counters = AxiMemoryCounters()

        self.ar_channel = _ArSink(bus.read.ar, clock, reset, reset_active_level)
        self.r_channel = _RSource(bus.read.r, clock, reset, reset_active_level)
        self.aw_channel = _AwSink(bus.write.aw, clock, reset, reset_active_level)
        self.w_channel = _WSink(bus.write.w, clock, reset, reset_active_level)
        self.b_channel = _BSource(bus.write.b, clock, reset, reset_active_level)
        for ch in (self.ar_channel, self.r_channel, self.aw_channel, self.w_channel, self.b_channel):
            ch.queue_occupancy_limit = 2
            ch.log.setLevel(logging.WARNING)  # they only report reset edges
        self.log = logging.getLogger(f"cocotb.{bus.read.ar._entity._name}.{bus.read.ar._name}.mem")

        wbits, rbits = len(self.w_channel.bus.wdata), len(self.r_channel.bus.rdata)
        self.bus_bytes = wbits // 8
        if wbits % 8 or rbits != wbits:
            raise ValueError("AxiMemory needs byte-multiple data buses of the same width on R and W")
        self.full_strobe = (1 << self.bus_bytes) - 1
        self.wstrb_present = hasattr(self.w_channel.bus, "wstrb")
        self._poison = bytes([POISON]) * self.bus_bytes

        self._errors: list[ErrorRange] = []
        self._resv: dict[int, _Reservation] = {}
        self._reads: list[_Pending] = []
        self._writes: list[_Pending] = []
        self._w_open = False  # an AW was taken and its data beats are still being collected
        self._read_event, self._read_space = Event(), Event()
        self._write_event, self._write_space = Event(), Event()
        self._period: int | None = None
        self._period_known = Event()
        self._tasks: list = []
        mem.on_write.append(self._snoop)
        self._init_reset(reset, reset_active_level)

    # --- configuration --------------------------------------------------------------------------
    def set_pause_generator(self, channel: str, generator=None) -> None:
        """Back-pressure on one channel ("ar", "aw", "w": READY; "r", "b": VALID); None removes it."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown AXI channel {channel!r}; one of {CHANNELS}")
        ch = getattr(self, f"{channel}_channel")
        ch.set_pause_generator(generator)
        if generator is None:
            ch.pause = False  # cocotbext-axi keeps the last value a removed generator gave

    def random_backpressure(self, rng: random.Random, busy: float | dict[str, float]) -> None:
        """Pause each channel with probability ``busy`` per cycle (a float, or one per channel)."""
        for ch in CHANNELS:
            p = busy.get(ch, 0.0) if isinstance(busy, dict) else busy
            self.set_pause_generator(ch, iter(lambda p=p: rng.random() < p, None) if p > 0 else None)

    def inject_error(self, base: int, size: int, resp: AxiResp = AxiResp.SLVERR, reads: bool = True,
                     writes: bool = True) -> ErrorRange:
        """Answer ``resp`` (SLVERR or DECERR) to accesses touching [base, base+size)."""
        resp = AxiResp(resp)
        if resp not in (AxiResp.SLVERR, AxiResp.DECERR):
            raise ValueError(f"error injection answers SLVERR or DECERR, not {resp.name}")
        if size <= 0 or base < 0 or base + size > 1 << 64:
            raise ValueError(f"error range {base:#x}+{size:#x} is empty or outside [0, 2^64)")
        r = ErrorRange(base, size, resp, reads, writes)
        self._errors.append(r)
        return r

    def remove_error(self, r: ErrorRange) -> None:
        self._errors.remove(r)

    def error_for(self, addr: int, n: int, write: bool) -> AxiResp | None:
        """The injected error an access of ``n`` bytes at ``addr`` gets, or None."""
        for r in self._errors:
            if (r.writes if write else r.reads) and r.base < addr + n and addr < r.base + r.size:
                return r.resp
        return None

    def race(self, addr: int, mutate: Callable[[int], int], phase: str = "read", times: int = 1) -> list:
        """The CPU rewrites the 8-byte word at ``addr`` to ``mutate(old)`` the next ``times`` times an
        exclusive access covering it reaches ``phase`` (see ``ExclusiveEvent``), so that exclusive write
        fails. Returns a list that collects (old, new) per race, for the test's expectations."""
        if phase not in ("read", "write"):
            raise ValueError(f"race phase is 'read' or 'write', not {phase!r}")
        if addr & 7:
            raise ValueError(f"race address {addr:#x} is not 8-byte aligned")
        done: list[tuple[int, int]] = []

        def hook(ev: ExclusiveEvent):
            if ev.phase != phase or not ev.addr <= addr < ev.addr + ev.nbytes:
                return
            old = self.mem.read64(addr)
            new = mutate(old)
            self.mem.write64(addr, new)
            done.append((old, new))
            if len(done) >= times:
                self.exclusive_hooks.remove(hook)

        self.exclusive_hooks.append(hook)
        return done

    @property
    def reservations(self) -> dict[int, tuple[int, int]]:
        """Current exclusive reservations: AXI ID -> (first byte, end byte)."""
        return {i: (r.lo, r.hi) for i, r in self._resv.items()}

    def idle(self) -> bool:
        """No burst accepted and not yet fully answered (the channels' queues included)."""
        chans = (self.ar_channel, self.aw_channel, self.w_channel)
        return (not self._reads and not self._writes and not self._w_open and all(c.empty() for c in chans)
                and self.r_channel.idle() and self.b_channel.idle())

    # --- reset and processes --------------------------------------------------------------------
    def _handle_reset(self, state):
        """Reset drops every accepted burst and every reservation (cocotbext-axi's Reset mixin)."""
        if state:
            self._stop()
        elif not self._tasks:
            self._tasks = [cocotb.start_soon(c) for c in (
                self._read_accept(), self._read_respond(), self._write_accept(), self._write_respond())]
            if self._period is None:
                self._tasks.append(cocotb.start_soon(self._measure_period()))

    def _stop(self):
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        self._reads.clear()
        self._writes.clear()
        self._w_open = False
        self._resv.clear()

    async def _measure_period(self):
        edge = RisingEdge(self.clock)
        await edge
        t0 = get_sim_time()
        await edge
        self._period = get_sim_time() - t0
        self._period_known.set()

    async def _due(self, stamp: int, latency) -> int:
        cycles = latency() if callable(latency) else latency
        if cycles <= 0:
            return stamp
        if self._period is None:
            await self._period_known.wait()
        return stamp + cycles * self._period

    async def _until(self, due: int) -> None:
        """Sleep (one timer, not one wake per cycle) until the clock edge at step ``due``."""
        left = due - get_sim_time()
        if left <= 0:
            return
        if left > 1:
            await Timer(left - 1, "step")
        await RisingEdge(self.clock)

    def _pick(self, pending: list[_Pending]) -> _Pending:
        """The next response: the oldest, or with ``reorder`` the earliest due among each ID's oldest."""
        if not self.reorder:
            return pending[0]
        seen, best = set(), None
        for p in pending:
            if p.burst.axi_id in seen:
                continue
            seen.add(p.burst.axi_id)
            if best is None or p.due < best.due:
                best = p
        return best

    # --- reads ----------------------------------------------------------------------------------
    async def _read_accept(self):
        while True:
            while len(self._reads) >= self.max_outstanding:
                self._read_space.clear()
                await self._read_space.wait()
            ar = await self.ar_channel.recv()
            b = Burst.decode("ar", int(ar.arid), int(ar.araddr), int(ar.arlen), int(ar.arsize),
                             int(ar.arburst), int(getattr(ar, "arlock", 0)), self.bus_bytes)
            self._reads.append(_Pending(b, await self._due(ar.stamp, self.read_latency)))
            self._read_event.set()

    async def _read_respond(self):
        while True:
            while not self._reads:
                self._read_event.clear()
                await self._read_event.wait()
            p = self._pick(self._reads)
            await self._until(p.due)
            self._reads.remove(p)
            self._read_space.set()
            for r in self._serve_read(p.burst):
                await self.r_channel.send(r)

    def _serve_read(self, b: Burst) -> list:
        """Sample the burst's data (all beats at once, so an exclusive read is atomic with its
        reservation), make the reservation, run the read-phase hooks; return the R beats."""
        lanes = b.lanes(self.bus_bytes)
        errors = [self.error_for(a, hi - lo, write=False) for a, lo, hi in lanes]
        failed = any(errors)
        exclusive = b.lock and self.exclusive_support and not failed
        ok = AxiResp.EXOKAY if exclusive else AxiResp.OKAY
        beats = []
        for n, ((a, lo, hi), err) in enumerate(zip(lanes, errors)):
            if err is not None:
                word = self._poison
            elif lo == 0 and hi == self.bus_bytes:
                word = self.mem.read(a, hi)
            else:
                word = self._poison[:lo] + self.mem.read(a, hi - lo) + self._poison[hi:]
            r = self.r_channel._transaction_obj()
            r.rid = b.axi_id
            r.rdata = int.from_bytes(word, "little")
            r.rresp = ok if err is None else err
            r.rlast = n == b.beats - 1
            beats.append(r)
        c = self.counters
        c.read_bursts += 1
        c.read_beats += b.beats
        c.error_responses += failed
        if b.lock and self.exclusive_support:
            if failed:
                self._resv.pop(b.axi_id, None)
            else:
                lo = min(a for a, _, _ in lanes)
                hi = max(a + h - l for a, l, h in lanes)
                self._resv[b.axi_id] = _Reservation(b, lo, hi)
                c.exclusive_reads += 1
                self._run_hooks(ExclusiveEvent("read", b.axi_id, lo, hi - lo))
        return beats

    # --- writes ---------------------------------------------------------------------------------
    async def _write_accept(self):
        while True:
            while len(self._writes) >= self.max_outstanding:
                self._write_space.clear()
                await self._write_space.wait()
            aw = await self.aw_channel.recv()
            b = Burst.decode("aw", int(aw.awid), int(aw.awaddr), int(aw.awlen), int(aw.awsize),
                             int(aw.awburst), int(getattr(aw, "awlock", 0)), self.bus_bytes)
            self._w_open = True
            beats = []
            for n in range(b.beats):
                w = await self.w_channel.recv()
                if bool(int(w.wlast)) != (n == b.beats - 1):
                    raise AxiProtocolError(f"{b}: WLAST={int(w.wlast)} on beat {n} of {b.beats}")
                beats.append(w)
            resp = self._commit_write(b, beats)
            self._writes.append(_Pending(b, await self._due(beats[-1].stamp, self.write_latency), resp))
            self._w_open = False
            self._write_event.set()

    async def _write_respond(self):
        while True:
            while not self._writes:
                self._write_event.clear()
                await self._write_event.wait()
            p = self._pick(self._writes)
            await self._until(p.due)
            self._writes.remove(p)
            self._write_space.set()
            bt = self.b_channel._transaction_obj()
            bt.bid = p.burst.axi_id
            bt.bresp = p.resp
            await self.b_channel.send(bt)

    def _commit_write(self, b: Burst, beats: list) -> AxiResp:
        """Apply one write burst to memory (or not) and decide its response."""
        lanes = b.lanes(self.bus_bytes)
        pieces = []
        for (a, lo, hi), w in zip(lanes, beats):
            strb = int(w.wstrb) if self.wstrb_present else self.full_strobe
            active = ((1 << hi) - 1) & ~((1 << lo) - 1)
            if strb & ~active:
                raise AxiProtocolError(f"{b}: WSTRB={strb:#x} sets lanes outside the beat's active "
                                       f"lanes {lo}..{hi - 1}")
            data = int(w.wdata).to_bytes(self.bus_bytes, "little")
            base = a - lo  # address of lane 0
            if strb & active == active:
                pieces.append((a, data[lo:hi]))
            else:
                pieces.extend((base + s, data[s:e]) for s, e in strobe_runs(strb, lo, hi))
        c = self.counters
        c.write_bursts += 1
        c.write_beats += b.beats
        err = next((e for e in (self.error_for(a, hi - lo, write=True) for a, lo, hi in lanes) if e), None)
        exclusive = b.lock and self.exclusive_support
        if err is not None:
            resp, pieces = err, []
            c.error_responses += 1
            self.log.debug("%s answered %s (injected error)", b, err.name)
        elif exclusive:
            lo = min(a for a, _, _ in lanes)
            hi = max(a + h - l for a, l, h in lanes)
            self._run_hooks(ExclusiveEvent("write", b.axi_id, lo, hi - lo))
            r = self._resv.get(b.axi_id)
            if r is not None and r.burst.addr == b.addr:
                if not r.burst.same_shape(b):
                    raise AxiProtocolError(f"{b}: exclusive write differs in size/length/burst from its "
                                           f"exclusive read {r.burst}")
                del self._resv[b.axi_id]  # used up (also when the strobes store nothing)
                resp = AxiResp.EXOKAY
                c.exclusive_writes_ok += 1
            else:  # an ID's reservation for another address stays (only writes to it end it)
                resp, pieces = AxiResp.OKAY, []
                c.exclusive_writes_failed += 1
                self.log.debug("%s fails: no reservation for this ID and address", b)
        else:
            resp = AxiResp.OKAY
        for a, d in pieces:
            self.mem.write(a, d)  # through _snoop this clears every reservation it touches
        if self.on_write:
            rec = AxiWriteRecord(b.axi_id, b.addr, b.lock, resp, tuple(pieces))
            for f in list(self.on_write):
                f(rec)
        return resp

    # --- exclusive monitor ----------------------------------------------------------------------
    def _snoop(self, addr: int, data: bytes) -> None:
        """``mem.on_write`` observer: a write to any reserved byte ends that reservation."""
        if self._resv:
            end = addr + len(data)
            for i in [i for i, r in self._resv.items() if r.lo < end and addr < r.hi]:
                del self._resv[i]

    def _run_hooks(self, ev: ExclusiveEvent) -> None:
        for hook in list(self.exclusive_hooks):
            hook(ev)
