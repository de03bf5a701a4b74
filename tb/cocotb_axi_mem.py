"""cocotb tests of the host-memory AXI4 slave agent (tb/axi_mem.py) through tb/rtl/axi_loop.sv.

A master on s_axi_* talks through the wire-through harness to ``AxiMemory`` on m_axi_*. Expected values
come from a reference ``models.host.Memory`` that the test updates from its own operations, and from
the AXI4 rules written out again here in the spec's iterative form (``beat_lanes``), not from the agent.

* ``axi_mem_random``: cocotbext-axi's ``AxiMaster`` (an independent implementation of the master side):
  concurrent workers with their own IDs doing unaligned and narrow INCR reads/writes (split at 4 KiB by
  the master), WRAP bursts, CPU-side writes between them, error-injected pages; random latency,
  out-of-order responses across IDs, back-pressure on every channel of both sides. Also checks that the
  ``on_write`` records replay to the same memory.
* ``axi_mem_bursts``: a beat-level master for what ``AxiMaster`` cannot express: arbitrary strobes,
  FIXED and narrow WRAP bursts, unaligned narrow beats; inactive read lanes must carry the poison byte.
* ``axi_mem_exclusive``: exclusive pairs that succeed; fail after an AXI write, a CPU write, a
  cmpxchg64 or a zero() of the reserved bytes; survive neighbouring writes, reads and failed cmpxchg64;
  per-ID reservations; the race hooks with a walker-style retry loop; errors; a slave without a monitor;
  then several walkers and a CPU setting bits in the same entries concurrently: no update may be lost.
* ``axi_mem_read_stream``: a stream of reads at full rate (one data beat per cycle; the agent's overhead
  in simulated cycles per wall second is logged), the configured latency on one read and one write,
  an idle stretch with back-pressure configured, during which the agent must sleep, and ``idle()``.
"""

from __future__ import annotations

import logging
import os
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, SimTimeoutError, Timer, gather, with_timeout
from cocotbext.axi import AxiBurstType, AxiBus, AxiLockType, AxiMaster, AxiResp
from cocotbext.axi.axi_channels import AxiARSource, AxiAWSource, AxiBSink, AxiRSink, AxiWSource

from models.host import Memory
from tb.axi_mem import AxiMemory
from tb.stats import Stats

CLK_NS = 4
PAGE = 0x1000
EXCL = AxiLockType.EXCLUSIVE
A_BIT, D_BIT = 1 << 5, 1 << 6  # first-stage entry A and D (vtd.md §3.2)
POISON = 0xDB  # what tb/axi_mem.py documents for read lanes a beat does not use


def _count(default: int) -> int:
    return int(os.environ.get("COUNT") or default)


def beat_lanes(start: int, beats: int, size: int, burst: AxiBurstType,
               bus: int) -> list[list[tuple[int, int]]]:
    """Per beat, the (byte lane, byte address) pairs it transfers: AXI4 §A3.4 in its iterative form
    (Address_N, Lower_Byte_Lane, Upper_Byte_Lane), written independently of tb/axi_mem.py."""
    nb = 1 << size
    total = nb * beats
    lower_wrap = start // total * total
    addr = start
    out = []
    for _ in range(beats):
        word = addr // bus * bus
        lower = addr - word
        upper = addr // nb * nb + nb - 1 - word
        out.append([(lane, word + lane) for lane in range(lower, upper + 1)])
        if burst != AxiBurstType.FIXED:
            addr = addr // nb * nb + nb
            if burst == AxiBurstType.WRAP and addr >= lower_wrap + total:
                addr = lower_wrap
    return out


class BeatMaster:
    """A beat-level AXI4 master: the caller gives every beat's data and strobe. One outstanding burst
    per ID and direction (each worker of the test uses its own ID)."""

    def __init__(self, bus: AxiBus, clock, reset):
        kw = dict(reset_active_level=False)
        self.aw = AxiAWSource(bus.write.aw, clock, reset, **kw)
        self.w = AxiWSource(bus.write.w, clock, reset, **kw)
        self.b = AxiBSink(bus.write.b, clock, reset, **kw)
        self.ar = AxiARSource(bus.read.ar, clock, reset, **kw)
        self.r = AxiRSink(bus.read.r, clock, reset, **kw)
        for ch in (self.aw, self.w, self.b, self.ar, self.r):
            ch.log.setLevel(logging.WARNING)
        self._bq: dict[int, Queue] = {}
        self._rq: dict[int, Queue] = {}
        self._tasks = [cocotb.start_soon(self._b_loop()), cocotb.start_soon(self._r_loop())]

    def backpressure(self, rng: random.Random, busy: float):
        for ch in (self.aw, self.w, self.b, self.ar, self.r):
            ch.set_pause_generator(iter(lambda: rng.random() < busy, None))

    async def _b_loop(self):
        while True:
            b = await self.b.recv()
            await self._bq.setdefault(int(b.bid), Queue()).put(AxiResp(int(b.bresp)))

    async def _r_loop(self):
        beats: dict[int, list] = {}
        while True:
            r = await self.r.recv()
            rid = int(r.rid)
            beats.setdefault(rid, []).append((int(r.rdata), AxiResp(int(r.rresp))))
            if int(r.rlast):
                await self._rq.setdefault(rid, Queue()).put(beats.pop(rid))

    async def write(self, axi_id, addr, size, burst, beats: list[tuple[int, int]], lock=0) -> AxiResp:
        aw = self.aw._transaction_obj()
        aw.awid, aw.awaddr, aw.awlen, aw.awsize = axi_id, addr, len(beats) - 1, size
        aw.awburst, aw.awlock = burst, lock
        self.aw.send_nowait(aw)
        for n, (data, strb) in enumerate(beats):  # no await in between: W order follows AW order
            w = self.w._transaction_obj()
            w.wdata, w.wstrb, w.wlast = data, strb, int(n == len(beats) - 1)
            self.w.send_nowait(w)
        return await self._bq.setdefault(axi_id, Queue()).get()

    async def read(self, axi_id, addr, nbeats, size, burst, lock=0) -> list[tuple[int, AxiResp]]:
        ar = self.ar._transaction_obj()
        ar.arid, ar.araddr, ar.arlen, ar.arsize = axi_id, addr, nbeats - 1, size
        ar.arburst, ar.arlock = burst, lock
        self.ar.send_nowait(ar)
        return await self._rq.setdefault(axi_id, Queue()).get()


class Tb:
    def __init__(self, dut, stats: Stats, rng: random.Random, master: str = "axi", **agent_kw):
        self.dut, self.stats, self.rng = dut, stats, rng
        Clock(dut.clk_i, CLK_NS, unit="ns").start()
        self.mem = Memory()
        self.axi = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), dut.clk_i, dut.rst_ni, self.mem,
                             reset_active_level=False, **agent_kw)
        bus = AxiBus.from_prefix(dut, "s_axi")
        self.bus_bytes = len(dut.s_axi_wdata) // 8
        self.max_size = self.bus_bytes.bit_length() - 1
        if master == "axi":
            self.master = AxiMaster(bus, dut.clk_i, dut.rst_ni, reset_active_level=False)
            for part in (self.master.write_if, self.master.read_if):
                part.log.setLevel(logging.WARNING)
            self.master_channels = [self.master.write_if.aw_channel, self.master.write_if.w_channel,
                                    self.master.write_if.b_channel, self.master.read_if.ar_channel,
                                    self.master.read_if.r_channel]
            for ch in self.master_channels:
                ch.log.setLevel(logging.WARNING)
        else:
            self.master = BeatMaster(bus, dut.clk_i, dut.rst_ni)
        self.t0 = 0  # simulation time (ns) after the first reset; cycles() counts from there

    def master_backpressure(self, busy: float):
        rng = self.rng
        if isinstance(self.master, BeatMaster):
            self.master.backpressure(rng, busy)
        else:
            for ch in self.master_channels:
                ch.set_pause_generator(iter(lambda: rng.random() < busy, None))

    async def reset(self):
        self.dut.rst_ni.value = 0
        await ClockCycles(self.dut.clk_i, 3)
        self.dut.rst_ni.value = 1
        await ClockCycles(self.dut.clk_i, 2)

    def cycles(self) -> int:
        return int((get_sim_time("ns") - self.t0) // CLK_NS)

    def fail(self, what: str, expected, actual):
        self.stats.mismatches += 1
        raise AssertionError(f"{what}\n  expected: {expected}\n  actual:   {actual}\n  "
                             f"{self.stats.rerun_hint()}")

    def check(self, cond: bool, what: str, expected, actual):
        if not cond:
            self.fail(what, expected, actual)
        self.stats.checked += 1

    def region_base(self, size: int) -> int:
        """A random size-aligned region, below 4 GiB or anywhere in the 64-bit space."""
        if self.rng.random() < 0.5:
            return self.rng.randrange(0, 1 << 32, size)
        return self.rng.randrange(1 << 32, (1 << 64) - size, size)


async def run_test(dut, body, budget_cycles: int, master="axi", **agent_kw):
    """Run ``body(tb)``; a run longer than ``budget_cycles`` is a hang (a lost response, a stuck channel)."""
    stats = Stats()
    rng = random.Random(stats.seed)
    tb = Tb(dut, stats, rng, master=master, **agent_kw)
    await tb.reset()
    tb.t0 = get_sim_time("ns")
    try:
        try:
            await with_timeout(body(tb), budget_cycles * CLK_NS, "ns")
        except SimTimeoutError:
            raise AssertionError(f"no progress: still running after {budget_cycles} cycles (a response "
                                 f"was lost or a channel is stuck); {stats.rerun_hint()}") from None
        stats.cycles = tb.cycles()
        stats.result = "PASS"
    finally:
        stats.write()


# ------------------------------------------------------------------------------------------------
# axi_mem_random: AxiMaster traffic
# ------------------------------------------------------------------------------------------------

REGION_PAGES = 4  # ordinary traffic; one more page per worker holds its error range


async def random_worker(tb: Tb, wid: int, ops: int, ref: Memory, recorded: Memory):
    rng, m, bus = tb.rng, tb.master, tb.bus_bytes
    base = tb.region_base(PAGE * (REGION_PAGES + 1))
    size_bytes = PAGE * REGION_PAGES
    err_page = base + size_bytes
    err_lo = err_page + rng.randrange(0, PAGE // 2, 8)
    err = tb.axi.inject_error(err_lo, rng.randint(1, 256), rng.choice([AxiResp.SLVERR, AxiResp.DECERR]))
    for i in range(ops):
        kind = rng.choices(["write", "read", "wrap", "cpu", "error"], weights=[35, 35, 10, 10, 10])[0]
        size = rng.choice([tb.max_size] * 3 + list(range(tb.max_size)))
        op = f"worker {wid} op {i} {kind}"
        if kind in ("write", "read"):
            n = rng.randint(1, 300)
            addr = base + rng.randrange(0, size_bytes - n + 1)
            op += f" addr={addr:#x} len={n} size={size}"
            if kind == "write":
                data = rng.randbytes(n)
                r = await m.write(addr, data, awid=wid, size=size)
                tb.check(r.resp == AxiResp.OKAY, f"{op}: write response", "OKAY", r.resp)
                ref.write(addr, data)
            else:
                r = await m.read(addr, n, arid=wid, size=size)
                tb.check(r.resp == AxiResp.OKAY, f"{op}: read response", "OKAY", r.resp)
                exp = ref.read(addr, n)
                tb.check(r.data == exp, f"{op}: read data", exp.hex(), r.data.hex())
        elif kind == "wrap":
            # AxiMaster lays WRAP data out correctly only for full-width beats; it must not split the burst
            beats = rng.choice([2, 4, 8, 16])
            total = bus * beats
            wrap_base = base + rng.randrange(0, size_bytes, total)
            start = wrap_base + bus * rng.randrange(beats)
            if start // PAGE != (start + total - 1) // PAGE:
                continue
            op += f" start={start:#x} beats={beats}"
            order = [wrap_base + (start - wrap_base + k * bus) % total for k in range(beats)]
            if rng.random() < 0.5:
                data = rng.randbytes(total)
                r = await m.write(start, data, awid=wid, burst=AxiBurstType.WRAP)
                tb.check(r.resp == AxiResp.OKAY, f"{op}: WRAP write response", "OKAY", r.resp)
                for k, a in enumerate(order):
                    ref.write(a, data[k * bus:(k + 1) * bus])
            else:
                r = await m.read(start, total, arid=wid, burst=AxiBurstType.WRAP)
                exp = b"".join(ref.read(a, bus) for a in order)
                tb.check(r.data == exp and r.resp == AxiResp.OKAY, f"{op}: WRAP read",
                         exp.hex(), f"{r.data.hex()} {r.resp.name}")
        elif kind == "cpu":  # the host CPU writes behind the bus; the next AXI read must see it
            n = rng.randint(1, 64)
            addr = base + rng.randrange(0, size_bytes - n + 1)
            data = rng.randbytes(n)
            tb.mem.write(addr, data)
            ref.write(addr, data)
            recorded.write(addr, data)
        else:  # a single-burst access touching the error range: error response, memory unchanged
            n = rng.randint(1, 64)
            addr = rng.randrange(max(err_page, err.base - n + 1), err.base + err.size)
            addr = min(addr, err_page + PAGE - n)
            op += f" addr={addr:#x} len={n} size={tb.max_size} range={err.base:#x}+{err.size:#x}"
            if rng.random() < 0.5:
                r = await m.write(addr, rng.randbytes(n), awid=wid)
            else:
                r = await m.read(addr, n, arid=wid)
            tb.check(r.resp == err.resp, f"{op}: injected error", err.resp.name, r.resp.name)
    # everything this worker wrote, and nothing else, is in memory; the records replay to the same bytes
    got, exp, rec = (x.read(base, size_bytes + PAGE) for x in (tb.mem, ref, recorded))
    tb.check(got == exp, f"worker {wid}: final memory [{base:#x}, +{size_bytes + PAGE:#x})",
             exp.hex(), got.hex())
    tb.check(rec == exp, f"worker {wid}: on_write records replayed", exp.hex(), rec.hex())


async def _random_body(tb: Tb):
    rng = tb.rng
    tb.axi.random_backpressure(rng, 0.3)
    tb.master_backpressure(0.2)
    ref, recorded = Memory(), Memory()

    def record(rec):
        for a, d in rec.pieces:
            recorded.write(a, d)

    tb.axi.on_write.append(record)
    workers = 6
    ops = max(1, _count(360) // workers)
    await gather(*(random_worker(tb, wid, ops, ref, recorded) for wid in range(1, workers + 1)))
    tb.dut._log.info("random: %d checks, counters %s", tb.stats.checked, tb.axi.counters)


@cocotb.test()
async def axi_mem_random(dut):
    """AxiMaster reads/writes/WRAP, CPU writes, injected errors; random latency, reordering, back-pressure."""
    rng = random.Random(int(os.environ.get("SVM_SEED", "1")) ^ 0x5A5A)
    await run_test(dut, _random_body, 300 * _count(360) + 20000, read_latency=lambda: rng.randint(0, 12),
                   write_latency=lambda: rng.randint(0, 12), reorder=True)


# ------------------------------------------------------------------------------------------------
# axi_mem_bursts: beat-level bursts with arbitrary strobes, FIXED, narrow WRAP
# ------------------------------------------------------------------------------------------------


def random_burst(rng: random.Random, base: int, bus: int, max_size: int):
    """(addr, beats, size, burst) of a legal burst inside the 4 KiB page at ``base``."""
    while True:
        burst = rng.choice([AxiBurstType.INCR, AxiBurstType.INCR, AxiBurstType.FIXED, AxiBurstType.WRAP])
        size = rng.randint(0, max_size)
        nb = 1 << size
        if burst == AxiBurstType.WRAP:
            beats = rng.choice([2, 4, 8, 16])
            addr = base + rng.randrange(0, PAGE, nb)
        elif burst == AxiBurstType.FIXED:
            beats = rng.randint(1, 16)
            addr = base + rng.randrange(0, PAGE - nb + 1)
        else:
            beats = rng.randint(1, 40)
            addr = base + rng.randrange(0, PAGE)
            if (addr // nb * nb + nb * beats - 1) // PAGE != addr // PAGE:
                continue
        return addr, beats, size, burst


async def bursts_worker(tb: Tb, wid: int, ops: int, ref: Memory):
    rng, bus = tb.rng, tb.bus_bytes
    base = tb.region_base(PAGE)
    for i in range(ops):
        addr, beats, size, burst = random_burst(rng, base, bus, tb.max_size)
        lanes = beat_lanes(addr, beats, size, burst, bus)
        op = f"worker {wid} op {i} addr={addr:#x} len={beats - 1} size={size} burst={burst.name}"
        if rng.random() < 0.5:
            wbeats = []
            for beat in lanes:
                data = rng.getrandbits(8 * bus)
                strb = sum(1 << lane for lane, _ in beat if rng.random() < 0.7)
                wbeats.append((data, strb))
            resp = await tb.master.write(wid, addr, size, burst, wbeats)
            tb.check(resp == AxiResp.OKAY, f"{op}: write response", "OKAY", resp)
            for beat, (data, strb) in zip(lanes, wbeats):
                for lane, a in beat:
                    if strb >> lane & 1:
                        ref.write(a, bytes([data >> 8 * lane & 0xFF]))
        else:
            got = await tb.master.read(wid, addr, beats, size, burst)
            tb.check(len(got) == beats, f"{op}: beat count", beats, len(got))
            for n, (beat, (data, resp)) in enumerate(zip(lanes, got)):
                raw = data.to_bytes(bus, "little")
                active = {lane: a for lane, a in beat}
                exp = bytes(ref.read(active[lane], 1)[0] if lane in active else POISON for lane in range(bus))
                tb.check(raw == exp and resp == AxiResp.OKAY,
                         f"{op}: beat {n} (inactive lanes = {POISON:#x})",
                         exp.hex(), f"{raw.hex()} {resp.name}")
    got, exp = tb.mem.read(base, PAGE), ref.read(base, PAGE)
    tb.check(got == exp, f"worker {wid}: final page {base:#x}", exp.hex(), got.hex())


async def _bursts_body(tb: Tb):
    tb.axi.random_backpressure(tb.rng, 0.3)
    tb.master_backpressure(0.2)
    ref = Memory()
    workers = 4
    ops = max(1, _count(400) // workers)
    await gather(*(bursts_worker(tb, wid, ops, ref) for wid in range(workers)))


@cocotb.test()
async def axi_mem_bursts(dut):
    """Beat-level INCR/FIXED/WRAP bursts, all sizes, unaligned, random strobes; back-pressure everywhere."""
    rng = random.Random(int(os.environ.get("SVM_SEED", "1")) ^ 0xB0B0)
    await run_test(dut, _bursts_body, 100 * _count(400) + 20000, master="beats",
                   read_latency=lambda: rng.randint(0, 6),
                   write_latency=lambda: rng.randint(0, 6), reorder=True)


# ------------------------------------------------------------------------------------------------
# axi_mem_exclusive
# ------------------------------------------------------------------------------------------------


async def xread(tb: Tb, axi_id: int, addr: int, n: int = 8):
    r = await tb.master.read(addr, n, arid=axi_id, size=3, lock=EXCL)
    return r.resp, int.from_bytes(r.data, "little")


async def xwrite(tb: Tb, axi_id: int, addr: int, value: int, n: int = 8):
    r = await tb.master.write(addr, value.to_bytes(n, "little"), awid=axi_id, size=3, lock=EXCL)
    return r.resp


async def ad_update(tb: Tb, axi_id: int, addr: int, bits: int) -> int:
    """What the IOMMU walker does (docs/atomics.md): exclusive read; nothing to do if the bits are set;
    exclusive write of old|bits; on OKAY read again and retry. Returns the number of attempts."""
    attempts = 0
    while True:
        attempts += 1
        resp, old = await xread(tb, axi_id, addr)
        tb.check(resp == AxiResp.EXOKAY, f"ad_update id={axi_id} addr={addr:#x}: exclusive read",
                 "EXOKAY", resp)
        if old & bits == bits:
            return attempts
        resp = await xwrite(tb, axi_id, addr, old | bits)
        if resp == AxiResp.EXOKAY:
            return attempts
        tb.check(resp == AxiResp.OKAY, f"ad_update id={axi_id} addr={addr:#x}: exclusive write", "OKAY", resp)
        if attempts > 50:
            tb.fail(f"ad_update id={axi_id} addr={addr:#x}: no progress", "< 50 attempts", attempts)


async def exclusive_scenarios(tb: Tb):
    rng, mem, axi = tb.rng, tb.mem, tb.axi
    base = tb.region_base(4 * PAGE)
    slots = iter(range(base, base + 4 * PAGE, 64))  # a fresh 64-byte slot per scenario

    def entry() -> tuple[int, int]:
        a = next(slots)
        v = rng.getrandbits(64) & ~(A_BIT | D_BIT)
        mem.write64(a, v)
        return a, v

    def expect(name, cond, exp, act):
        tb.check(cond, f"exclusive scenario '{name}'", exp, act)

    # succeeds, then the reservation is used up
    a, v = entry()
    resp, got = await xread(tb, 1, a)
    expect("read answers EXOKAY with the data", resp == AxiResp.EXOKAY and got == v,
           (v, "EXOKAY"), (got, resp))
    expect("reservation recorded", axi.reservations.get(1) == (a, a + 8), (a, a + 8), axi.reservations.get(1))
    resp = await xwrite(tb, 1, a, v | A_BIT)
    expect("write succeeds", resp == AxiResp.EXOKAY and mem.read64(a) == v | A_BIT, (v | A_BIT, "EXOKAY"),
           (mem.read64(a), resp))
    resp = await xwrite(tb, 1, a, 0)
    expect("second write without a read fails", resp == AxiResp.OKAY and mem.read64(a) == v | A_BIT,
           (v | A_BIT, "OKAY"), (mem.read64(a), resp))

    # an AXI write of one overlapping byte by another ID breaks it; an adjacent one does not
    a, v = entry()
    await xread(tb, 1, a)
    await tb.master.write(a + 8, b"\x11" * 8, awid=2)
    resp = await xwrite(tb, 1, a, v | A_BIT)
    expect("adjacent AXI write keeps the reservation", resp == AxiResp.EXOKAY, "EXOKAY", resp)
    a, v = entry()
    await xread(tb, 1, a)
    await tb.master.write(a + 7, b"\x22", awid=2)
    resp = await xwrite(tb, 1, a, v | A_BIT)
    exp = (v & ~(0xFF << 56)) | 0x22 << 56
    expect("overlapping AXI write breaks it", resp == AxiResp.OKAY and mem.read64(a) == exp, (exp, "OKAY"),
           (mem.read64(a), resp))

    # CPU side: write, cmpxchg64 that stores, zero() break it; a read or a cmpxchg64 that fails does not
    for name, cpu, breaks in (
            ("CPU write64", lambda a, v: mem.write64(a, v ^ 2), True),
            ("CPU byte write", lambda a, v: mem.write(a + 3, b"\x00"), True),
            ("CPU cmpxchg64 that stores", lambda a, v: mem.cmpxchg64(a, v, v | 4), True),
            ("CPU zero()", lambda a, v: mem.zero(a & ~(PAGE - 1), PAGE), True),
            ("CPU read", lambda a, v: mem.read64(a), False),
            ("CPU cmpxchg64 that fails", lambda a, v: mem.cmpxchg64(a, v ^ 1, 0), False)):
        a, v = entry()
        await xread(tb, 3, a)
        cpu(a, v)
        after_cpu = mem.read64(a)
        resp = await xwrite(tb, 3, a, v | D_BIT)
        exp = (after_cpu, AxiResp.OKAY) if breaks else (v | D_BIT, AxiResp.EXOKAY)
        expect(name, (mem.read64(a), resp) == exp, exp, (mem.read64(a), resp))
        if name == "CPU zero()":
            slots = iter(range(base + PAGE, base + 4 * PAGE, 64))  # that page is now zero: move on

    # one reservation per ID: a second ID's successful write breaks the first; a new read replaces
    a, v = entry()
    await xread(tb, 4, a)
    await xread(tb, 5, a)
    r5 = await xwrite(tb, 5, a, v | A_BIT)
    r4 = await xwrite(tb, 4, a, v | D_BIT)
    expect("two IDs: first writer wins", (r5, r4, mem.read64(a)) == (AxiResp.EXOKAY, AxiResp.OKAY, v | A_BIT),
           ("EXOKAY", "OKAY", v | A_BIT), (r5, r4, mem.read64(a)))
    a, v = entry()
    b, w = entry()
    await xread(tb, 6, a)
    await xread(tb, 6, b)
    ra = await xwrite(tb, 6, a, 1)
    rb = await xwrite(tb, 6, b, w | A_BIT)
    expect("a new read replaces the ID's reservation",
           (ra, rb, mem.read64(a)) == (AxiResp.OKAY, AxiResp.EXOKAY, v),
           ("OKAY", "EXOKAY", v), (ra, rb, mem.read64(a)))

    # 16-byte exclusive (two 8-byte beats): a write to its last byte breaks it
    a = next(slots)
    old = mem.read(a, 16)
    resp, _ = await xread(tb, 7, a, 16)
    mem.write(a + 15, b"\x99")
    resp = await xwrite(tb, 7, a, 0, 16)
    expect("16-byte reservation covers its last byte", resp == AxiResp.OKAY and mem.read(a, 15) == old[:15],
           "OKAY, unchanged", (resp, mem.read(a, 15).hex()))

    # the race hooks, with the walker's retry loop: the CPU's change survives, A/D are added to it
    for phase in ("read", "write"):
        a, v = entry()
        races = axi.race(a, lambda old: old ^ 1 << 1, phase=phase)  # the CPU toggles R/W
        attempts = await ad_update(tb, 8, a, A_BIT | D_BIT)
        expect(f"race at phase {phase}: one retry, CPU change kept",
               (attempts, len(races), mem.read64(a)) == (2, 1, v ^ 2 | A_BIT | D_BIT),
               (2, 1, v ^ 2 | A_BIT | D_BIT), (attempts, len(races), mem.read64(a)))

    # injected error: no reservation, no write
    a, v = entry()
    err = axi.inject_error(a, 8, AxiResp.SLVERR)
    rr, _ = await xread(tb, 9, a)
    rw = await xwrite(tb, 9, a, 0)
    axi.remove_error(err)
    expect("exclusive pair on an error range", (rr, rw, mem.read64(a), 9 in axi.reservations) ==
           (AxiResp.SLVERR, AxiResp.SLVERR, v, False), ("SLVERR", "SLVERR", v, False),
           (rr, rw, mem.read64(a), 9 in axi.reservations))

    # a slave without a monitor: OKAY to the read (the master must not rely on it), write done normally
    a, v = entry()
    axi.exclusive_support = False
    rr, _ = await xread(tb, 10, a)
    rw = await xwrite(tb, 10, a, 5)
    axi.exclusive_support = True
    expect("no exclusive support", (rr, rw, mem.read64(a)) == (AxiResp.OKAY, AxiResp.OKAY, 5),
           ("OKAY", "OKAY", 5), (rr, rw, mem.read64(a)))

    # reset forgets every reservation
    a, v = entry()
    await xread(tb, 1, a)
    held = 1 in axi.reservations
    await tb.reset()
    resp = await xwrite(tb, 1, a, 0)
    expect("reset clears the monitor", (held, resp, mem.read64(a)) == (True, AxiResp.OKAY, v),
           (True, "OKAY", v), (held, resp, mem.read64(a)))


async def exclusive_contention(tb: Tb, updates: int):
    """Walkers (one ID each) and the CPU set distinct bits of the same few entries at the same time;
    random race hooks add CPU writes exactly between exclusive reads and writes. Every bit must end up
    set: a lost update would show as a missing bit."""
    rng, mem, axi = tb.rng, tb.mem, tb.axi
    base = tb.region_base(PAGE)
    entries = [base + 8 * i for i in range(4)]
    for e in entries:
        mem.write64(e, 0)
    jobs = [(e, bit) for e in entries for bit in range(64)]
    rng.shuffle(jobs)
    jobs = jobs[:updates]
    walkers = 5
    queues = [jobs[i::walkers + 1] for i in range(walkers + 1)]  # the last share is the CPU's
    for _ in range(max(1, updates // 16)):
        e = rng.choice(entries)
        axi.race(e, lambda old: old, phase=rng.choice(["read", "write"]))  # a CPU store of the same value

    async def walker(axi_id, work):
        for e, bit in work:
            await ad_update(tb, axi_id, e, 1 << bit)

    async def cpu(work):
        for e, bit in work:
            await Timer(rng.randint(1, 40) * CLK_NS, "ns")
            mem.write64(e, mem.read64(e) | 1 << bit)  # a locked OR on the CPU side

    failed_before = axi.counters.exclusive_writes_failed
    await gather(*(walker(11 + i, q) for i, q in enumerate(queues[:-1])), cpu(queues[-1]))
    for e in entries:
        exp = 0
        for je, bit in jobs:
            exp |= (je == e) << bit
        tb.check(mem.read64(e) == exp, f"contention: entry {e:#x} keeps every update",
                 hex(exp), hex(mem.read64(e)))
    failed = axi.counters.exclusive_writes_failed - failed_before
    tb.check(failed > 0, "contention: some exclusive writes failed (the race was exercised)", "> 0", failed)


async def _exclusive_body(tb: Tb):
    tb.axi.random_backpressure(tb.rng, 0.3)
    tb.master_backpressure(0.2)
    await exclusive_scenarios(tb)
    await exclusive_contention(tb, min(256, _count(160)))
    tb.dut._log.info("exclusive: %d checks, counters %s", tb.stats.checked, tb.axi.counters)


@cocotb.test()
async def axi_mem_exclusive(dut):
    """Exclusive pairs: success, every kind of intervening write, IDs, race hooks, errors, contention."""
    rng = random.Random(int(os.environ.get("SVM_SEED", "1")) ^ 0xE0E0)
    await run_test(dut, _exclusive_body, 100 * _count(160) + 20000, read_latency=lambda: rng.randint(0, 8),
                   write_latency=lambda: rng.randint(0, 8), reorder=True)


# ------------------------------------------------------------------------------------------------
# axi_mem_read_stream: overhead, and sleeping while idle
# ------------------------------------------------------------------------------------------------


class CountingPause:
    """A pause generator that counts how often the agent draws from it."""

    def __init__(self, rng: random.Random, busy: float):
        self.rng, self.busy, self.draws = rng, busy, 0

    def __iter__(self):
        return self

    def __next__(self):
        self.draws += 1
        return self.rng.random() < self.busy


async def _stream_body(tb: Tb):
    rng, bus = tb.rng, tb.bus_bytes
    base = tb.region_base(16 * PAGE)
    tb.mem.write(base, rng.randbytes(16 * PAGE))
    n = _count(1500)
    length = 64
    start_cycle, t0 = tb.cycles(), time.perf_counter()
    reads = []
    for i in range(n):
        addr = base + (i * length) % (16 * PAGE)
        reads.append((addr, cocotb.start_soon(tb.master.read(addr, length, arid=i % 16))))
    for addr, task in reads:
        r = await task
        tb.check(r.data == tb.mem.read(addr, length) and r.resp == AxiResp.OKAY, f"stream read {addr:#x}",
                 tb.mem.read(addr, length).hex(), r.data.hex())
    wall = time.perf_counter() - t0
    cycles = tb.cycles() - start_cycle
    beats = n * ((length + bus - 1) // bus)
    tb.dut._log.info("read stream: %d reads of %d bytes (%d beats of %d bytes) in %d cycles, %.2f s wall: "
                     "%.0f simulated cycles per wall second",
                     n, length, beats, bus, cycles, wall, cycles / wall)
    limit = int(beats * 1.05) + 20  # one data beat per cycle; a bubble per burst would exceed this
    tb.check(cycles <= limit, "read stream keeps the bus busy (cycles vs beats)", f"<= {limit}", cycles)
    await ClockCycles(tb.dut.clk_i, 2)
    tb.check(tb.axi.idle(), "agent idle once every response is out", True, tb.axi.idle())

    # a configured latency holds back the first data beat / the write response by that many cycles
    tb.axi.read_latency = tb.axi.write_latency = 30
    for what, op in (("read", lambda: tb.master.read(base, 8, arid=2)),
                     ("write", lambda: tb.master.write(base, b"\0" * 8, awid=2))):
        c0 = tb.cycles()
        await op()
        took = tb.cycles() - c0
        tb.check(30 <= took <= 30 + 12, f"{what} round trip with latency 30", "30..42 cycles", took)
    tb.axi.read_latency = tb.axi.write_latency = 0

    # idle with back-pressure configured: the agent must not wake every cycle
    pauses = {ch: CountingPause(rng, 0.3) for ch in ("ar", "aw", "w", "r", "b")}
    for ch, g in pauses.items():
        tb.axi.set_pause_generator(ch, g)
    await ClockCycles(tb.dut.clk_i, 20)
    before = {ch: g.draws for ch, g in pauses.items()}
    idle_cycles = 20000
    t0 = time.perf_counter()
    await Timer(idle_cycles * CLK_NS, "ns")
    idle_wall = time.perf_counter() - t0
    draws = {ch: pauses[ch].draws - before[ch] for ch in pauses}
    tb.dut._log.info("idle: %d cycles in %.3f s wall; pause draws while idle %s",
                     idle_cycles, idle_wall, draws)
    tb.check(all(d <= 2 for d in draws.values()), "agent sleeps while idle (pause generator draws)",
             "<= 2 per channel", draws)
    # and it still answers afterwards, with the back-pressure in force
    r = await tb.master.read(base, 256, arid=1)
    tb.check(r.data == tb.mem.read(base, 256), "read after the idle stretch", tb.mem.read(base, 256).hex(),
             r.data.hex())

    # a write whose address was taken but whose data has not arrived keeps the agent busy
    w_channel = tb.master.write_if.w_channel
    w_channel.pause = True
    write = cocotb.start_soon(tb.master.write(base, b"\1" * 64, awid=3))
    await ClockCycles(tb.dut.clk_i, 40)
    busy = not tb.axi.idle()
    w_channel.pause = False
    await write
    await ClockCycles(tb.dut.clk_i, 2)
    tb.check(busy and tb.axi.idle(), "idle() while a write waits for its data, and after it",
             (True, True), (busy, tb.axi.idle()))


@cocotb.test()
async def axi_mem_read_stream(dut):
    """Full-rate reads (the agent's overhead), latency, then an idle stretch during which it must sleep."""
    await run_test(dut, _stream_body, 20 * _count(1500) + 40000)
