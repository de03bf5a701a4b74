"""cocotb tests of the N-to-1 AXI4 mux rtl/axi_mux.sv, through the harness tb/rtl/axi_mux_tb.sv.

Upstream row i is cocotbext-axi's ``AxiMaster`` on ``s<i>_axi_*`` (an independent implementation of the
master side); downstream is ``tb.axi_mem.AxiMemory`` on ``m_axi_*`` over a ``models.host.Memory``, with
random latency, out-of-order responses across IDs and back-pressure on every channel. Expected values
come from a Python shadow of memory per worker, the ID rule of the mux's contract (downstream ID =
{source index, upstream ID}) and the AXI4 rules (AMBA AXI4, ARM IHI 0022E), never from the DUT.

* ``axi_mux_random``: every master runs concurrent workers (each its own ID and its own address
  region; the same upstream IDs on every master) doing INCR reads and writes of random length, beat size
  and unaligned start, full-width WRAP and FIXED bursts, random AxCACHE/AxPROT/AxQOS. Read data and
  final memory against the shadow; every write burst the memory stores carries the downstream ID of
  the worker that owns the address.
* ``axi_mux_exclusive``: exclusive pairs (AxLOCK) across masters. Same upstream ID on every master,
  interleaved pairs to different addresses: all succeed (the ID prefix keeps the reservations apart);
  another master's plain write between an exclusive read and write makes that write fail (OKAY, memory
  keeps the plain write); two masters reserve the same word, the second writer fails; then every master
  sets bits in shared words with read / exclusive-write / retry loops: no update may be lost.
* ``axi_mux_arbitration``: short bursts from every master with a cycle monitor on both sides of the
  DUT: each downstream AR/AW is the next one its source (the ID prefix) handed over, payload intact;
  a downstream VALID that is not taken keeps its payload (§A3.2.1); a waiting requester sees at most
  N-1 other grants first (round robin); every downstream W beat is the next beat of the master whose
  AW is the oldest with data outstanding, and no W beat precedes its AW downstream; B and R reach the
  master the ID names, ID stripped. Masters also offer W before their AW is through (counted; must
  happen).
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, gather, with_timeout
from cocotbext.axi import AxiBurstType, AxiBus, AxiLockType, AxiMaster, AxiResp

from models.host import Memory
from tb.axi_mem import AxiMemory, AxiWriteRecord
from tb.stats import Stats

CLK_NS = 4
PAGE = 0x1000
REGION = 4 * PAGE  # address space of one worker
EXCL = AxiLockType.EXCLUSIVE


def _count(default: int) -> int:
    return int(os.environ.get("COUNT") or default)


def _params() -> dict:
    return json.loads(os.environ["AXI_MUX_PARAMS"])


class Tb:
    def __init__(self, dut, stats: Stats, rng: random.Random, params: dict):
        self.dut, self.stats, self.rng = dut, stats, rng
        self.n, self.id_w = params["N"], params["ID_W"]
        self.bus_bytes = params["DATA_W"] // 8
        self.max_size = self.bus_bytes.bit_length() - 1
        Clock(dut.clk_i, CLK_NS, unit="ns").start()
        self.mem = Memory()
        lat = random.Random(rng.random())
        self.axi = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), dut.clk_i, dut.rst_ni, self.mem,
                             reset_active_level=False, read_latency=lambda: lat.randint(0, 12),
                             write_latency=lambda: lat.randint(0, 12), reorder=True)
        self.masters = [AxiMaster(AxiBus.from_prefix(dut, f"s{i}_axi"), dut.clk_i, dut.rst_ni,
                                  reset_active_level=False) for i in range(self.n)]
        for m in self.masters:
            for part in (m.write_if, m.read_if):
                part.log.setLevel(logging.WARNING)
            for ch in self.channels(m).values():
                ch.log.setLevel(logging.WARNING)
        self.owners: dict[int, tuple[int, int]] = {}  # region base -> (source, upstream ID)
        self.records: list[AxiWriteRecord] = []
        self.axi.on_write.append(self.records.append)
        self.t0 = 0

    @staticmethod
    def channels(m: AxiMaster) -> dict:
        return dict(aw=m.write_if.aw_channel, w=m.write_if.w_channel, b=m.write_if.b_channel,
                    ar=m.read_if.ar_channel, r=m.read_if.r_channel)

    def down_id(self, src: int, axi_id: int) -> int:
        """The mux's ID rule: {source index, upstream ID}."""
        return src << self.id_w | axi_id

    def backpressure(self, busy: float, master_busy: float):
        rng = self.rng
        self.axi.random_backpressure(rng, busy)
        for m in self.masters:
            for ch in self.channels(m).values():
                ch.set_pause_generator(iter(lambda: rng.random() < master_busy, None))

    def regions(self, k: int) -> list[int]:
        """k distinct REGION-aligned bases anywhere in the 64-bit space."""
        return [i * REGION for i in self.rng.sample(range((1 << 64) // REGION), k)]

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

    def check_write_ids(self):
        """Every write burst the memory stored came with the downstream ID of the address's owner."""
        for rec in self.records:
            base = rec.addr - rec.addr % REGION
            if base not in self.owners:
                self.fail(f"write burst at {rec.addr:#x}: no worker owns this address", "an owned region",
                          rec)
            src, axi_id = self.owners[base]
            exp = self.down_id(src, axi_id)
            self.check(rec.axi_id == exp, f"write burst at {rec.addr:#x}: downstream ID (master {src}, "
                       f"upstream ID {axi_id:#x})", hex(exp), hex(rec.axi_id))


async def run_test(dut, body, budget_cycles: int):
    """Run ``body(tb)``; a run longer than ``budget_cycles`` is a hang (a lost beat, a stuck channel)."""
    stats = Stats()
    rng = random.Random(stats.seed)
    tb = Tb(dut, stats, rng, _params())
    await tb.reset()
    tb.t0 = get_sim_time("ns")
    try:
        try:
            await with_timeout(body(tb), budget_cycles * CLK_NS, "ns")
        except SimTimeoutError:
            raise AssertionError(f"no progress: still running after {budget_cycles} cycles (a beat was "
                                 f"lost or a channel is stuck); {stats.rerun_hint()}") from None
        stats.cycles = tb.cycles()
        stats.result = "PASS"
    finally:
        stats.write()


# ------------------------------------------------------------------------------------------------
# Random traffic (axi_mux_random, and the load of axi_mux_arbitration)
# ------------------------------------------------------------------------------------------------


def worker_ids(tb: Tb, per_master: int) -> list[list[int]]:
    """Upstream IDs per master: IDs 0 and 1 on every master (the prefix must keep them apart), the
    rest random and distinct within a master."""
    ids = []
    for _ in range(tb.n):
        extra = tb.rng.sample(range(2, 1 << tb.id_w), per_master - 2)
        ids.append([0, 1] + extra)
    return ids


async def random_worker(tb: Tb, src: int, axi_id: int, base: int, ops: int, max_len: int):
    rng, m, bus = tb.rng, tb.masters[src], tb.bus_bytes
    ref = Memory()
    tb.mem.write(base, rng.randbytes(REGION))  # CPU-side fill, so reads see non-zero data from the start
    ref.write(base, tb.mem.read(base, REGION))
    for i in range(ops):
        kind = rng.choices(["write", "read", "wrap", "fixed"], weights=[40, 40, 10, 10])[0]
        attrs = dict(cache=rng.randrange(16), prot=rng.randrange(8), qos=rng.randrange(16))
        op = f"master {src} id {axi_id:#x} op {i} {kind}"
        if kind in ("write", "read"):
            n = rng.randint(1, max_len if rng.random() < 0.9 else 4 * max_len)
            n = min(n, REGION)
            size = rng.choice([tb.max_size] * 3 + list(range(tb.max_size)))
            addr = base + rng.randrange(0, REGION - n + 1)
            op += f" addr={addr:#x} len={n} size={size}"
            if kind == "write":
                data = rng.randbytes(n)
                r = await m.write(addr, data, awid=axi_id, size=size, **attrs)
                tb.check(r.resp == AxiResp.OKAY, f"{op}: write response", "OKAY", r.resp)
                ref.write(addr, data)
            else:
                r = await m.read(addr, n, arid=axi_id, size=size, **attrs)
                exp = ref.read(addr, n)
                tb.check(r.resp == AxiResp.OKAY and r.data == exp, f"{op}: read",
                         f"{exp.hex()} OKAY", f"{r.data.hex()} {r.resp.name}")
        elif kind == "wrap":
            # full-width beats only: AxiMaster lays WRAP data out correctly for those; it also splits
            # at the 4 KiB line counted from the start, so start + total must stay inside the page
            beats = rng.choice([2, 4, 8, 16])
            total = bus * beats
            wrap_base = base + rng.randrange(0, REGION, total)
            start = wrap_base + bus * rng.randrange(min(beats, (PAGE - wrap_base % PAGE - total) // bus + 1))
            op += f" start={start:#x} beats={beats}"
            order = [wrap_base + (start - wrap_base + k * bus) % total for k in range(beats)]  # AXI4 §A3.4.1
            if rng.random() < 0.5:
                data = rng.randbytes(total)
                r = await m.write(start, data, awid=axi_id, burst=AxiBurstType.WRAP, **attrs)
                tb.check(r.resp == AxiResp.OKAY, f"{op}: WRAP write response", "OKAY", r.resp)
                for k, a in enumerate(order):
                    ref.write(a, data[k * bus:(k + 1) * bus])
            else:
                r = await m.read(start, total, arid=axi_id, burst=AxiBurstType.WRAP, **attrs)
                exp = b"".join(ref.read(a, bus) for a in order)
                tb.check(r.resp == AxiResp.OKAY and r.data == exp, f"{op}: WRAP read",
                         f"{exp.hex()} OKAY", f"{r.data.hex()} {r.resp.name}")
        else:  # FIXED, full-width beats at one aligned address: every beat writes / reads the same word
            beats = rng.randint(1, 16)
            addr = base + rng.randrange(0, REGION, bus)
            if addr % PAGE + beats * bus > PAGE:
                beats = (PAGE - addr % PAGE) // bus  # AxiMaster would split the burst at the 4 KiB line
            op += f" addr={addr:#x} beats={beats}"
            if rng.random() < 0.5:
                data = rng.randbytes(beats * bus)
                r = await m.write(addr, data, awid=axi_id, burst=AxiBurstType.FIXED, **attrs)
                tb.check(r.resp == AxiResp.OKAY, f"{op}: FIXED write response", "OKAY", r.resp)
                ref.write(addr, data[-bus:])  # the last beat is what stays
            else:
                r = await m.read(addr, beats * bus, arid=axi_id, burst=AxiBurstType.FIXED, **attrs)
                exp = ref.read(addr, bus) * beats
                tb.check(r.resp == AxiResp.OKAY and r.data == exp, f"{op}: FIXED read",
                         f"{exp.hex()} OKAY", f"{r.data.hex()} {r.resp.name}")
    got, exp = tb.mem.read(base, REGION), ref.read(base, REGION)
    tb.check(got == exp, f"master {src} id {axi_id:#x}: final memory [{base:#x}, +{REGION:#x})",
             exp.hex(), got.hex())


async def random_traffic(tb: Tb, per_master: int, ops_total: int, max_len: int):
    ids = worker_ids(tb, per_master)
    bases = iter(tb.regions(tb.n * per_master))
    jobs = []
    ops = max(1, ops_total // (tb.n * per_master))
    for src in range(tb.n):
        for axi_id in ids[src]:
            base = next(bases)
            tb.owners[base] = (src, axi_id)
            jobs.append(random_worker(tb, src, axi_id, base, ops, max_len))
    await gather(*jobs)
    tb.check_write_ids()


async def _random_body(tb: Tb):
    tb.backpressure(0.3, 0.2)
    await random_traffic(tb, per_master=3, ops_total=_count(240), max_len=300)
    tb.dut._log.info("random: %d checks, %d cycles, memory counters %s", tb.stats.checked, tb.cycles(),
                     tb.axi.counters)


@cocotb.test()
async def axi_mux_random(dut):
    """Concurrent INCR/WRAP/FIXED reads and writes from every master; latency, reordering, back-pressure."""
    await run_test(dut, _random_body, 400 * _count(240) + 20000)


# ------------------------------------------------------------------------------------------------
# Exclusive accesses (axi_mux_exclusive)
# ------------------------------------------------------------------------------------------------


async def xread(tb: Tb, src: int, axi_id: int, addr: int) -> tuple[AxiResp, int]:
    r = await tb.masters[src].read(addr, 8, arid=axi_id, size=3, lock=EXCL)
    return r.resp, int.from_bytes(r.data, "little")


async def xwrite(tb: Tb, src: int, axi_id: int, addr: int, value: int) -> AxiResp:
    r = await tb.masters[src].write(addr, value.to_bytes(8, "little"), awid=axi_id, size=3, lock=EXCL)
    return r.resp


def check_exclusive_record(tb: Tb, what: str, src: int, axi_id: int, addr: int, resp: AxiResp):
    """The memory saw this exclusive write as exclusive, from {src, axi_id}, and answered ``resp``."""
    recs = [r for r in tb.records if r.addr == addr and r.exclusive and r.axi_id == tb.down_id(src, axi_id)]
    tb.check(len(recs) == 1 and recs[0].resp == resp, f"{what}: the memory's record of the exclusive write",
             f"one exclusive write id={tb.down_id(src, axi_id):#x} answered {resp.name}",
             [(hex(r.axi_id), r.exclusive, r.resp.name) for r in tb.records if r.addr == addr])


async def ad_loop(tb: Tb, src: int, axi_id: int, addr: int, bit: int) -> int:
    """Set ``bit`` in the word with exclusive read / exclusive write, retrying on OKAY. Returns attempts."""
    for attempt in range(1, 100):
        resp, old = await xread(tb, src, axi_id, addr)
        tb.check(resp == AxiResp.EXOKAY, f"master {src}: exclusive read of {addr:#x}", "EXOKAY", resp)
        resp = await xwrite(tb, src, axi_id, addr, old | 1 << bit)
        if resp == AxiResp.EXOKAY:
            return attempt
        tb.check(resp == AxiResp.OKAY, f"master {src}: exclusive write of {addr:#x}", "EXOKAY or OKAY", resp)
    tb.fail(f"master {src}: setting bit {bit} of {addr:#x}", "success within 99 attempts", "none")


async def _exclusive_body(tb: Tb):
    rng, n, mem = tb.rng, tb.n, tb.mem
    tb.backpressure(0.3, 0.2)
    words = iter(range(tb.regions(1)[0], 1 << 64, 8))
    rounds = max(1, _count(8) // 4)
    for rnd in range(rounds):
        # 1. the same upstream ID on every master, exclusive reads of different words interleaved with
        #    the writes: every pair succeeds. Without the ID prefix the memory would keep one reservation.
        axi_id = rng.randrange(1 << tb.id_w)
        addrs = [next(words) for _ in range(n)]
        old = [rng.getrandbits(64) for _ in range(n)]
        new = [rng.getrandbits(64) for _ in range(n)]
        for a, v in zip(addrs, old):
            mem.write64(a, v)
        got = await gather(*(xread(tb, s, axi_id, addrs[s]) for s in range(n)))
        for s in range(n):
            tb.check(got[s] == (AxiResp.EXOKAY, old[s]),
                     f"round {rnd} same-ID pairs: master {s} exclusive read of {addrs[s]:#x}",
                     (AxiResp.EXOKAY, hex(old[s])), (got[s][0], hex(got[s][1])))
        resps = await gather(*(xwrite(tb, s, axi_id, addrs[s], new[s]) for s in range(n)))
        for s in range(n):
            what = f"round {rnd} same-ID pairs: master {s} exclusive write of {addrs[s]:#x} (id {axi_id:#x})"
            tb.check(resps[s] == AxiResp.EXOKAY, what, "EXOKAY", resps[s])
            now = mem.read64(addrs[s])
            tb.check(now == new[s], f"{what}: memory", hex(new[s]), hex(now))
            check_exclusive_record(tb, what, s, axi_id, addrs[s], AxiResp.EXOKAY)

        # 2. master a reserves, master b writes the word plainly, a's exclusive write fails
        a, b = rng.sample(range(n), 2)
        addr, v0, vb, va = next(words), rng.getrandbits(64), rng.getrandbits(64), rng.getrandbits(64)
        id_a, id_b = rng.randrange(1 << tb.id_w), rng.randrange(1 << tb.id_w)
        what = (f"round {rnd} plain write between: master {a} (id {id_a:#x}) / master {b} (id {id_b:#x}) "
                f"at {addr:#x}")
        mem.write64(addr, v0)
        got = await xread(tb, a, id_a, addr)
        tb.check(got == (AxiResp.EXOKAY, v0), f"{what}: exclusive read", (AxiResp.EXOKAY, hex(v0)),
                 (got[0], hex(got[1])))
        r = await tb.masters[b].write(addr, vb.to_bytes(8, "little"), awid=id_b, size=3)
        tb.check(r.resp == AxiResp.OKAY, f"{what}: plain write", "OKAY", r.resp)
        resp = await xwrite(tb, a, id_a, addr, va)
        tb.check(resp == AxiResp.OKAY, f"{what}: exclusive write after the plain write", "OKAY", resp)
        now = mem.read64(addr)
        tb.check(now == vb, f"{what}: memory keeps the plain write", hex(vb), hex(now))
        check_exclusive_record(tb, what, a, id_a, addr, AxiResp.OKAY)

        # 3. both reserve the same word with the same upstream ID; the first writer wins, the second fails
        addr, v0, va, vb = next(words), rng.getrandbits(64), rng.getrandbits(64), rng.getrandbits(64)
        what = f"round {rnd} two reservations: masters {a}, {b} (id {id_a:#x}) at {addr:#x}"
        mem.write64(addr, v0)
        got = await gather(xread(tb, a, id_a, addr), xread(tb, b, id_a, addr))
        tb.check(list(got) == [(AxiResp.EXOKAY, v0)] * 2, f"{what}: exclusive reads",
                 [(AxiResp.EXOKAY, hex(v0))] * 2, [(g[0], hex(g[1])) for g in got])
        rb = await xwrite(tb, b, id_a, addr, vb)
        ra = await xwrite(tb, a, id_a, addr, va)
        tb.check((rb, ra) == (AxiResp.EXOKAY, AxiResp.OKAY), f"{what}: exclusive writes (second, then first)",
                 "EXOKAY, OKAY", f"{rb.name}, {ra.name}")
        tb.check(mem.read64(addr) == vb, f"{what}: memory", hex(vb), hex(mem.read64(addr)))
        check_exclusive_record(tb, what, b, id_a, addr, AxiResp.EXOKAY)
        check_exclusive_record(tb, what, a, id_a, addr, AxiResp.OKAY)

    # 4. every master, two IDs each, sets its own bits in shared words at the same time (the walkers'
    #    A/D update loop): every bit must be set in the end, i.e. no exclusive write overwrote another's.
    shared = [next(words) for _ in range(2)]
    for w in shared:
        mem.write64(w, 0)
    agents = [(s, axi_id) for s in range(n) for axi_id in (0, 1 + rng.randrange((1 << tb.id_w) - 1))]
    per_agent = max(1, min(64 * len(shared) // len(agents), _count(8)))
    bits = {ag: list(range(k * per_agent, (k + 1) * per_agent)) for k, ag in enumerate(agents)}

    async def agent(src, axi_id):
        attempts = 0
        for bit in bits[(src, axi_id)]:
            attempts += await ad_loop(tb, src, axi_id, shared[bit // 64], bit % 64)
        return attempts

    attempts = await gather(*(agent(*ag) for ag in agents))
    total = len(agents) * per_agent
    exp = [sum(1 << (b % 64) for b in range(total) if b // 64 == k) for k in range(len(shared))]
    got = [mem.read64(w) for w in shared]
    tb.check(got == exp, "shared words after every master set its bits", [hex(x) for x in exp],
             [hex(x) for x in got])
    tb.dut._log.info("exclusive: %d updates, %d attempts, memory counters %s", total, sum(attempts),
                     tb.axi.counters)


@cocotb.test()
async def axi_mux_exclusive(dut):
    """Exclusive pairs across masters: same-ID pairs succeed, a plain write in between fails the pair."""
    await run_test(dut, _exclusive_body, 3000 * _count(8) + 20000)


# ------------------------------------------------------------------------------------------------
# Arbitration, channel stability and W order, seen cycle by cycle (axi_mux_arbitration)
# ------------------------------------------------------------------------------------------------

ADDR_FIELDS = ("id", "addr", "len", "size", "burst", "lock", "cache", "prot", "qos")


class Monitor:
    """Samples both sides of the DUT at every rising edge (as cocotbext-axi's channels do) and checks
    the mux's contract; see the module docstring. Only this test wakes Python every cycle."""

    def __init__(self, tb: Tb):
        self.tb, self.dut, self.n = tb, tb.dut, tb.n
        self.id_mask = (1 << tb.id_w) - 1
        self.up_a = {ch: [deque() for _ in range(self.n)] for ch in ("ar", "aw")}  # accepted upstream
        self.waited = {ch: [0] * self.n for ch in ("ar", "aw")}  # other grants while a request waits
        self.held = {ch: None for ch in ("ar", "aw", "w")}  # payload of an untaken downstream VALID
        self.up_w = [deque() for _ in range(self.n)]  # W beats accepted upstream, per master
        self.aw_open: deque = deque()  # sources of downstream AWs whose W beats are not all through
        self.aw_down = [0] * self.n  # downstream AW handshakes per source
        self.w_done = [0] * self.n  # complete W bursts accepted upstream per source
        self.down_resp = {ch: [deque() for _ in range(self.n)] for ch in ("r", "b")}
        self.early_w = 0  # cycles in which a master offered W for a write whose AW was not through
        self.max_wait = {"ar": 0, "aw": 0}
        self.running = True

    def sig(self, side: str, name: str) -> int:
        return int(getattr(self.dut, f"{side}_axi_{name}").value)

    def addr_payload(self, side: str, ch: str) -> tuple:
        return tuple(self.sig(side, ch + f) for f in ADDR_FIELDS)

    def check(self, cond: bool, what: str, expected, actual):
        self.tb.check(cond, f"cycle {self.tb.cycles()}: {what}", expected, actual)

    def stable(self, ch: str, valid: bool, ready: bool, payload):
        """AXI4 §A3.2.1: once VALID is up it stays, with the same payload, until the handshake."""
        if self.held[ch] is not None:
            self.check(valid and payload() == self.held[ch], f"downstream {ch.upper()} held until taken",
                       self.held[ch], payload() if valid else "VALID dropped")
        self.held[ch] = payload() if valid and not ready else None

    def address_channel(self, ch: str):
        n, ups = self.n, [f"s{i}" for i in range(self.n)]
        valid = [self.sig(s, ch + "valid") for s in ups]
        accepted = [valid[i] and self.sig(s, ch + "ready") for i, s in enumerate(ups)]
        for i, s in enumerate(ups):
            if accepted[i]:
                self.up_a[ch][i].append(self.addr_payload(s, ch))
        mv, mr = self.sig("m", ch + "valid"), self.sig("m", ch + "ready")
        self.stable(ch, mv, mr, lambda: self.addr_payload("m", ch))
        if not (mv and mr):
            granted = None
        else:
            down = self.addr_payload("m", ch)
            granted = down[0] >> self.tb.id_w
            self.check(granted < n and bool(self.up_a[ch][granted]),
                       f"downstream {ch.upper()} id={down[0]:#x}: a request its source handed over",
                       f"source < {n} with one accepted", down)
            exp = self.up_a[ch][granted].popleft()
            self.check(down == (self.tb.down_id(granted, exp[0]),) + exp[1:],
                       f"downstream {ch.upper()} of master {granted}: payload", exp, down)
            if ch == "aw":
                self.aw_open.append(granted)
                self.aw_down[granted] += 1
        for i in range(n):  # round robin: a waiting requester sees at most N-1 other grants first
            if not valid[i] or accepted[i]:
                self.waited[ch][i] = 0
            elif granted is not None:
                self.waited[ch][i] += 1
                self.max_wait[ch] = max(self.max_wait[ch], self.waited[ch][i])
                self.check(self.waited[ch][i] <= n - 1, f"master {i} waits for {ch.upper()} (round robin)",
                           f"at most {n - 1} other grants", self.waited[ch][i])

    def w_channel(self):
        for i in range(self.n):
            s = f"s{i}"
            if self.sig(s, "wvalid"):
                if self.aw_down[i] == self.w_done[i]:
                    self.early_w += 1
                if self.sig(s, "wready"):
                    beat = (self.sig(s, "wdata"), self.sig(s, "wstrb"), self.sig(s, "wlast"))
                    self.up_w[i].append(beat)
                    self.w_done[i] += beat[2]
        mv, mr = self.sig("m", "wvalid"), self.sig("m", "wready")
        def payload():
            return self.sig("m", "wdata"), self.sig("m", "wstrb"), self.sig("m", "wlast")

        self.stable("w", mv, mr, payload)
        if mv and mr:
            beat = payload()
            self.check(bool(self.aw_open), "downstream W beat after its AW", "an AW with data outstanding",
                       "no AW open")
            src = self.aw_open[0]
            self.check(bool(self.up_w[src]), f"downstream W beat from master {src} (oldest open AW)",
                       "a beat that master handed over", "none")
            exp = self.up_w[src].popleft()
            self.check(beat == exp, f"downstream W beat of master {src}", exp, beat)
            if beat[2]:
                self.aw_open.popleft()

    def response_channel(self, ch: str, fields: tuple[str, ...]):
        if self.sig("m", ch + "valid") and self.sig("m", ch + "ready"):
            rid = self.sig("m", ch + "id")
            src = rid >> self.tb.id_w
            self.check(src < self.n, f"downstream {ch.upper()} id={rid:#x}", f"source < {self.n}", src)
            beat = (rid & self.id_mask,) + tuple(self.sig("m", ch + f) for f in fields)
            self.down_resp[ch][src].append(beat)
        for i in range(self.n):
            s = f"s{i}"
            if self.sig(s, ch + "valid") and self.sig(s, ch + "ready"):
                got = (self.sig(s, ch + "id"),) + tuple(self.sig(s, ch + f) for f in fields)
                q = self.down_resp[ch][i]
                self.check(bool(q), f"master {i} takes a {ch.upper()} beat", "one addressed to it", got)
                exp = q.popleft()
                self.check(got == exp, f"master {i}: {ch.upper()} beat (ID stripped)", exp, got)

    async def run(self):
        edge = RisingEdge(self.dut.clk_i)
        while self.running:
            await edge
            self.address_channel("ar")
            self.address_channel("aw")
            self.w_channel()
            self.response_channel("r", ("data", "resp", "last"))
            self.response_channel("b", ("resp",))

    def finish(self):
        self.running = False
        left = {"ar": self.up_a["ar"], "aw": self.up_a["aw"], "w": self.up_w, "r": self.down_resp["r"],
                "b": self.down_resp["b"]}
        for ch, qs in left.items():
            self.check(all(not q for q in qs), f"{ch.upper()}: all taken on one side reached the other",
                       "nothing left", [len(q) for q in qs])
        self.check(not self.aw_open, "every AW got its W beats", "none open", list(self.aw_open))
        self.check(self.early_w > 0, "masters offered W before their AW was through (coverage)", "> 0 cycles",
                   self.early_w)


async def flood(tb: Tb, src: int, base: int, axi_id: int, k: int):
    """k short reads and k short writes queued at once, so the master's AR and AW stay valid back to back.
    Reads come from the first half of the region (never written), writes go to distinct slots of the
    second half; the reads use random IDs of this master."""
    rng, m, bus = tb.rng, tb.masters[src], tb.bus_bytes
    tb.mem.write(base, rng.randbytes(REGION))
    ref = Memory()
    ref.write(base, tb.mem.read(base, REGION))
    reads, writes = [], []
    for i in range(k):
        n = rng.randint(1, 2 * bus)
        addr = base + rng.randrange(0, REGION // 2 - n)
        ev = m.init_read(addr, n, arid=rng.randrange(1 << tb.id_w), size=rng.randint(0, tb.max_size))
        reads.append((addr, n, ev))
        slot = base + REGION // 2 + i * 2 * bus
        n = rng.randint(1, 2 * bus)
        addr = slot + rng.randrange(0, 2 * bus - n + 1)
        data = rng.randbytes(n)
        writes.append((addr, n, m.init_write(addr, data, awid=axi_id, size=rng.randint(0, tb.max_size))))
        ref.write(addr, data)
    for addr, n, ev in reads:
        await ev.wait()
        r = ev.data
        exp = ref.read(addr, n)
        tb.check(r.resp == AxiResp.OKAY and r.data == exp, f"flood master {src}: read {addr:#x} len={n}",
                 f"{exp.hex()} OKAY", f"{r.data.hex()} {r.resp.name}")
    for addr, n, ev in writes:
        await ev.wait()
        tb.check(ev.data.resp == AxiResp.OKAY, f"flood master {src}: write {addr:#x} len={n}", "OKAY",
                 ev.data.resp)
    got, exp = tb.mem.read(base, REGION), ref.read(base, REGION)
    tb.check(got == exp, f"flood master {src}: final memory [{base:#x}, +{REGION:#x})", exp.hex(), got.hex())


async def _arbitration_body(tb: Tb):
    tb.backpressure(0.3, 0.1)
    for m in tb.masters:  # AW pauses more than W, so W is often offered first
        m.write_if.aw_channel.set_pause_generator(iter(lambda: tb.rng.random() < 0.5, None))
    mon = Monitor(tb)
    task = cocotb.start_soon(mon.run())
    k = min(max(1, _count(240) // (2 * tb.n)), REGION // 2 // (2 * tb.bus_bytes))
    jobs = []
    for src, base in enumerate(tb.regions(tb.n)):
        tb.owners[base] = (src, 0)
        jobs.append(flood(tb, src, base, 0, k))
    await gather(*jobs)
    tb.check_write_ids()
    tb.records.clear()
    tb.owners.clear()
    await random_traffic(tb, per_master=3, ops_total=_count(240), max_len=3 * tb.bus_bytes)
    await ClockCycles(tb.dut.clk_i, 2)
    mon.finish()
    task.cancel()
    tb.dut._log.info("arbitration: %d checks, %d cycles, longest waits AR %d AW %d grants, W offered early "
                     "in %d cycles", tb.stats.checked, tb.cycles(), mon.max_wait["ar"], mon.max_wait["aw"],
                     mon.early_w)


@cocotb.test()
async def axi_mux_arbitration(dut):
    """Short bursts from every master, both sides of the DUT checked cycle by cycle."""
    await run_test(dut, _arbitration_body, 300 * _count(240) + 20000)
