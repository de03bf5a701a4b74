"""cocotb tests of rtl/fs_walker.sv (the first-stage page walker, vtd.md §3), scored against the golden
IOMMU ``models.iommu.Iommu.translate``.

The world: a golden ``Env`` (tests/models/iommu_env.py: root, context, PASID directory and PASID
entries, one PASID per combination of supervisor / WPE / EAFE for every address space) and random
address spaces built with ``models.host.Mm`` (4- and 5-level, 4K/2M/1G pages, random R/W and U/S,
pages in the interrupt window or above HAW), then edited the way a careless CPU would: entries made
not-present, reserved bits and pointers above HAW, R/W or U/S cleared in table entries, ignored bits
set, A/EA/D set in advance. Every write while the world is built goes to both the golden memory and
the DUT's memory (``AxiMemory`` over a second ``models.host.Memory``); from then on each side only sees
its own walker's A/D updates, plus the same CPU races on both.

Every request is translated by the golden model when it is issued; the DUT's response must equal it
field by field (fault reason, and for walks that reached a leaf: page, size, AND(R/W), AND(U/S), leaf D,
granted R/W). After each walk, the A/EA/D bits the golden walk set must be set in the DUT's memory;
at the end every 8-byte word either side wrote must be equal in both memories.

Walks run concurrently in the DUT and one after the other in the model. That is only equivalent when
no walk's outcome depends on another's A/D updates, so: an address space is either snooped or not for
all its PASIDs (a not-snooped walk never writes, so its tables never change); error injection is by
address (a failing cmpxchg address fails for every walk, so its A bit never changes); and a request
that carries a CPU race runs alone in its address space (the driver waits until the space is quiet and
holds later requests to it back until the answer came). The leaf D bit a walk reports is the one it
read, so two walks of the same leaf where one sets D do not overlap either.

CPU races (``FaultyMemory.before_cmpxchg`` on the golden side, ``AxiMemory.race`` at the exclusive
write on the DUT side) change the entry between the walk's read and its atomic update: set an ignored
bit or A, clear P / R/W / U/S, flip PS or an address bit, set a reserved bit. After the answer the raced
entry must be equal on both sides, and the CPU puts its old value back so the tables do not decay; in
fs_walker_races the CPU also clears A/EA/D of a quiet space now and then (page aging), so that there
are updates to race with.

Back-pressure is random on the request and response handshakes and on all five AXI channels; memory
latency is random per burst and responses of different IDs come back out of order.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, Event, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiBus, AxiResp
from cocotbext.axi.stream import define_stream

from models.host import Memory, MmError
from models.iommu import FAULT_PRIORITY, Request
from models.paging import FsEntry, is_canonical
from models.vtd import PROFILE
from tb.axi_mem import AxiMemory
from tb.runner import RTL_DIR
from tb.stats import Stats
from tb.svstruct import SvPackage
from tests.models.iommu_env import ALLOC_BASE, ALLOC_SIZE, Env

PKG = SvPackage(RTL_DIR / "fs_walker_pkg.sv")

FsReqBus, FsReqTransaction, FsReqSource, _, _ = define_stream(
    "FsReq", signals=["i", "tag_i", "valid_i", "ready_o"], valid_signal="valid_i", ready_signal="ready_o")
FsRspBus, _, _, FsRspSink, _ = define_stream(
    "FsRsp", signals=["o", "tag_o", "valid_o", "ready_i"], valid_signal="valid_o", ready_signal="ready_i")

K4, M2, G1 = 1 << 12, 1 << 21, 1 << 30
RID = 0x0100
TAGS = 256  # TAG_W = 8
HANG_CYCLES = 20000  # no response for this long: the walker (or the testbench) hangs
KINDS = {"read": "FS_READ", "write": "FS_WRITE", "atomic": "FS_ATOMIC", "translation": "FS_TRANSLATION"}
SIZES = {K4: "FS_PAGE_4K", M2: "FS_PAGE_2M", G1: "FS_PAGE_1G"}
#: the first-stage rows of FAULT_PRIORITY: the faults a walk can end with
FS_STAGES = ("fs_input", "fs_entry", "fs_table_update", "output", "access_user", "fs_leaf_update",
             "access_write")
FS_FAULTS = {c.reason for c in FAULT_PRIORITY if c.stage in FS_STAGES}
#: rows that fire at or after the leaf: the walker reports the page with them
AT_LEAF = {c.name for c in FAULT_PRIORITY if c.stage in ("output", "access_user", "fs_leaf_update",
                                                          "access_write")}
IGNORED_BITS = (3, 4, 8, 9, 11, 52, 55, 58, 62, 63)  # PWT/PCD/G/ignored/XD: no effect on a 5.10 IOMMU


pack = PKG.pack


def peek(mem: Memory, addr: int) -> int:
    """The 64-bit word at ``addr`` as stored, past the golden side's injected read errors."""
    return int.from_bytes(Memory.read(mem, addr, 8), "little")


def sign_extend(va: int, levels: int) -> int:
    """The canonical form of a va given its low 48 / 57 bits (vtd.md §3.1)."""
    n = 48 if levels == 4 else 57
    va &= (1 << n) - 1
    return va | (((1 << 64) - 1) ^ ((1 << n) - 1)) if va >> (n - 1) else va


# ================================================================================================
# The world: golden environment, address spaces, and the DUT's copy of memory
# ================================================================================================


class Everywhere:
    """Stands in for ``FaultyMemory.bad_cmpxchg`` on the golden side of a memory without an exclusive
    monitor: no atomic update is possible anywhere, which the walker reports as 0x91 (like a cmpxchg
    that raises)."""

    def __contains__(self, addr: int) -> bool:
        return True


@dataclasses.dataclass
class Space:
    """One address space with its PASIDs: (supervisor, wpe, eafe) -> PASID."""

    n: int
    mm: object
    levels: int
    snooped: bool
    pasids: dict
    pages: list = dataclasses.field(default_factory=list)   # (va, size) mapped
    regions: list = dataclasses.field(default_factory=list)  # 1 GiB-aligned vas that hold mappings
    slots: dict = dataclasses.field(default_factory=dict)    # entries on the way to pages: (level, leaf)
    outstanding: int = 0
    locked: bool = False  # a request with a CPU race is in flight


@dataclasses.dataclass
class Case:
    n: int
    space: Space
    fields: dict     # fs_req_t
    expect: dict     # fs_rsp_t
    check: str       # the FAULT_PRIORITY row that fired ('' = translated)
    updates: tuple   # (slot, old, new) the golden walk wrote
    race: str = ""   # the CPU race the request met, for messages
    race_slot: int = 0  # the entry the CPU changed, and its value before
    race_old: int = 0
    leaf: tuple | None = None  # (space, page va) when the walk reached a leaf
    sets_d: bool = False       # the walk set D in its leaf

    def describe(self) -> str:
        f = dict(self.fields, fsptptr=hex(self.fields["fsptptr"]), addr=hex(self.fields["addr"]))
        return (f"request #{self.n} (space {self.space.n}, {self.space.levels}-level, "
                f"{'snooped' if self.space.snooped else 'not snooped'}"
                f"{', race: ' + self.race if self.race else ''})"
                f"\n  fs_req_t: {f}\n  golden row: {self.check or 'translated'}")


class World:
    """Golden Env + address spaces; ``dut_mem`` is the DUT's memory. Everything written before
    ``seal()`` goes to both memories; after it each side only sees its own walker and the races."""

    def __init__(self, rng: random.Random, haw: int, fs1gp: bool, nwfs: bool, exclusive: bool = True):
        self.rng = rng
        self.haw = haw
        self.profile = dataclasses.replace(PROFILE, haw=haw, fs1gp=int(fs1gp), nwfs=int(nwfs), eafs=1)
        self.profile.check()
        self.env = Env(self.profile)
        self.gold = self.env.mem
        self.exclusive = exclusive
        if not exclusive:
            self.gold.bad_cmpxchg = Everywhere()
        self.dut_mem = Memory()
        self.gold.on_write.append(self.dut_mem.write)  # construction writes go to both memories
        self.env.enable()
        self.spaces: list[Space] = []
        self.read_errors: list[int] = []
        self.cmpxchg_errors: list[int] = []
        self._next_pasid = 1
        self.gold_writes: set[int] = set()  # 8-byte words written after seal(), per side
        self.dut_writes: set[int] = set()

    def seal(self) -> None:
        self.gold.on_write.remove(self.dut_mem.write)
        self.gold.on_write.append(lambda a, d: self.gold_writes.update(range(a & ~7, a + len(d), 8)))
        self.dut_mem.on_write.append(lambda a, d: self.dut_writes.update(range(a & ~7, a + len(d), 8)))

    @classmethod
    def random(cls, rng: random.Random, haw: int, fs1gp: bool, nwfs: bool, spaces: int = 6,
               exclusive: bool = True, errors: float = 0.02) -> "World":
        w = cls(rng, haw, fs1gp, nwfs, exclusive)
        for n in range(spaces):
            sp = w.add_space(rng.choice((4, 5)), rng.random() < 0.75)
            while not sp.pages:
                for _ in range(rng.randint(1, 3)):
                    w._fill_top(sp)
            w._edit(sp)
        w._plant()
        w._inject_errors(errors)
        w.seal()
        return w

    def add_space(self, levels: int, snooped: bool) -> Space:
        """A new address space bound to 8 PASIDs (supervisor x WPE x EAFE, SRE=1, PWSNP=snooped)."""
        mm = self.env.new_mm(levels)
        sp = Space(len(self.spaces), mm, levels, snooped, {})
        for sup in (0, 1):
            for wpe in (0, 1):
                for eafe in (0, 1):
                    pasid, self._next_pasid = self._next_pasid, self._next_pasid + 1
                    self.env.bind(RID, pasid, mm, sre=1, wpe=wpe, eafe=eafe, pwsnp=int(snooped))
                    sp.pasids[sup, wpe, eafe] = pasid
        self.spaces.append(sp)
        return sp

    # --- construction ------------------------------------------------------------------------------
    def _pa(self, size: int) -> int:
        """Where a page goes: anywhere below 2^HAW, sometimes over the interrupt window or above HAW;
        never into the frames the tables come from, so that an entry edited into a table pointer
        (PS cleared in a large page) leads to empty memory, never into another space's tables."""
        rng = self.rng
        r = rng.random()
        if r < (0.05 if size == K4 else 0.2):
            return {K4: 0xFEE0_0000 + K4 * rng.randrange(256), M2: 0xFEE0_0000, G1: 0xC000_0000}[size]
        while True:
            if rng.random() < 0.03 and self.haw < 52:
                pa = (rng.getrandbits(52 - self.haw) << self.haw | rng.getrandbits(self.haw)) & ~(size - 1)
            else:
                pa = rng.getrandbits(self.haw) & ~(size - 1)
            if all(a + size <= ALLOC_BASE or a >= ALLOC_BASE + ALLOC_SIZE for a in (pa, pa ^ 1 << 40)):
                return pa  # (bit 40: see the "address bit 40 flipped" race)

    def _fill_top(self, sp: Space) -> None:
        """A few 1 GiB regions under one random top-level entry."""
        rng, levels = self.rng, sp.levels
        top = rng.getrandbits(48 if levels == 4 else 57) & ~(G1 - 1)
        for k in range(rng.randint(1, 3)):
            region = sign_extend(top + k * G1, levels)
            if not is_canonical(region + G1 - 1, levels) or (region ^ (region + G1 - 1)) >> 63:
                continue
            sp.regions.append(region)
            self._fill(sp, region)

    def map(self, sp: Space, va: int, size: int, pa: int | None = None, write: bool | None = None,
            user: bool | None = None) -> None:
        rng = self.rng
        try:
            sp.mm.map(va, size, pa=self._pa(size) if pa is None else pa,
                      write=rng.random() < 0.7 if write is None else write,
                      user=rng.random() < 0.7 if user is None else user)
        except MmError:
            return  # overlaps a page mapped before: keep that one
        sp.pages.append((va, size))

    def _fill(self, sp: Space, region: int) -> None:
        """Pages in one 1 GiB region: a 1G page, or 2M pages and 4K pages in a few page tables."""
        rng = self.rng
        if rng.random() < 0.25:
            self.map(sp, region, G1)
            return
        for _ in range(rng.randint(0, 3)):
            self.map(sp, region + M2 * rng.randrange(512), M2)
        for _ in range(rng.randint(1, 3)):
            chunk = region + M2 * rng.randrange(512)
            for _ in range(rng.randint(1, 6)):
                self.map(sp, chunk + K4 * rng.randrange(512), K4)

    def _edit(self, sp: Space) -> None:
        """CPU edits of the finished tables (each entry on the way to a page at most once)."""
        rng, mem = self.rng, self.gold
        for va, _ in sp.pages:
            for level, slot, entry in sp.mm.walk(va):
                sp.slots[slot] = (level, entry.is_leaf(level) and bool(entry.p))
        for slot, (level, leaf) in sorted(sp.slots.items()):
            e = FsEntry(mem.read64(slot))
            r = rng.random()
            if r < 0.02:
                e.p = 0
            elif r < (0.1 if leaf and level > 1 else 0.04):
                choices = ["ps"] if level >= 4 else []
                if self.haw < 52:
                    choices.append("high")
                if leaf and level == 3:
                    choices += ["1g", "1g"]
                if leaf and level == 2:
                    choices += ["2m", "2m"]
                what = rng.choice(choices or ["ps"])
                if what == "ps":
                    e.ps ^= 1
                elif what == "high":
                    e.raw |= 1 << rng.randrange(self.haw, 52)
                else:
                    e.raw |= 1 << rng.randrange(13, 30 if what == "1g" else 21)
            elif r < 0.14 and not leaf:
                if rng.random() < 0.5:
                    e.rw = 0
                else:
                    e.us = 0
            if rng.random() < 0.1:
                e.raw |= 1 << rng.choice(IGNORED_BITS)
            # A/EA/D already set: most entries of a not-snooped space (or none of its walks get through)
            if rng.random() < (0.85 if not sp.snooped else 0.3):
                e.a = 1
                e.ea = int(rng.random() < 0.7)
                if leaf and rng.random() < 0.6:
                    e.d = 1
            mem.write64(slot, e.raw)

    def _plant(self) -> None:
        """Rare cases every world has (when it has the entries for them): reserved bits in one 1 GiB
        and one 2 MiB leaf, a read error in one top-level entry and one lower entry, a failing update
        in one snooped table entry and one snooped leaf."""
        rng = self.rng
        entries = [(slot, level, leaf, sp) for sp in self.spaces
                   for slot, (level, leaf) in sorted(sp.slots.items())]

        def pick(ok):
            found = [e for e in entries if ok(*e)]
            return rng.choice(found)[0] if found else None

        for level, hi in ((3, 30), (2, 21)):
            slot = pick(lambda s, lv, leaf, sp: leaf and lv == level)
            if slot is not None:
                self.gold.write64(slot, self.gold.read64(slot) | 1 << rng.randrange(13, hi))
        for slot in (pick(lambda s, lv, leaf, sp: lv == sp.levels),
                     pick(lambda s, lv, leaf, sp: lv < sp.levels)):
            if slot is not None:
                self.read_errors.append(slot)
        for want_leaf in (False, True):
            slot = pick(lambda s, lv, leaf, sp: sp.snooped and leaf == want_leaf
                        and s not in self.read_errors)
            if slot is not None and self.exclusive:  # (without exclusives every update fails anyway)
                self.cmpxchg_errors.append(slot)

    def _inject_errors(self, rate: float) -> None:
        """Read errors and failing atomic updates at random entry addresses (the same on both sides:
        FaultyMemory here, AxiMemory.inject_error on the bus)."""
        for slot, snooped in sorted((slot, sp.snooped) for sp in self.spaces for slot in sp.slots):
            r = self.rng.random()
            if slot in self.read_errors or slot in self.cmpxchg_errors:
                continue
            if r < rate:
                self.read_errors.append(slot)
            elif r < 2 * rate and snooped and self.exclusive:
                self.cmpxchg_errors.append(slot)
        for slot in self.read_errors:
            self.gold.fail_reads(slot, 8)
        for slot in self.cmpxchg_errors:
            self.gold.bad_cmpxchg.add(slot)

    def age(self, sp: Space) -> None:
        """The CPU clears A, EA and D in every entry of a quiet space (page aging), on both sides, so
        that walks have updates to do again. Each side is read as it is (reads bypass the injected
        errors: this is the CPU, not the walker)."""
        mask = ~(1 << FsEntry.a.lo | 1 << FsEntry.ea.lo | 1 << FsEntry.d.lo)
        for slot in sp.slots:
            for mem in (self.gold, self.dut_mem):
                mem.write64(slot, peek(mem, slot) & mask)

    # --- requests ------------------------------------------------------------------------------------
    def draw(self) -> tuple[Space, dict]:
        """A random request: (space, request facts)."""
        rng = self.rng
        sp = rng.choice(self.spaces)
        r = rng.random()
        if r < 0.75 and sp.pages:
            va, size = rng.choice(sp.pages)
            addr = va + rng.randrange(size)
        elif r < 0.9:
            addr = rng.choice(sp.regions) + rng.randrange(G1)
        elif r < 0.95:
            addr = sign_extend(rng.getrandbits(64), sp.levels)
        else:  # not canonical: one bit of 63:N-1 flipped
            top = 47 if sp.levels == 4 else 56
            addr = sign_extend(rng.getrandbits(64), sp.levels) ^ 1 << rng.randrange(top, 64)
        kind = rng.choice(list(KINDS))
        return sp, dict(addr=addr, kind=kind, nw=int(kind == "translation" and rng.random() < 0.5),
                        supervisor=int(rng.random() < 0.3), wpe=int(rng.random() < 0.5),
                        eafe=int(rng.random() < 0.25))

    def golden(self, n: int, sp: Space, facts: dict) -> Case:
        """Translate with the golden model now (its memory changes as the model's walk goes)."""
        pasid = sp.pasids[facts["supervisor"], facts["wpe"], facts["eafe"]]
        req = Request(facts["kind"], RID, facts["addr"], pasid, pmr=facts["supervisor"], nw=facts["nw"])
        self.env.iommu.caches.invalidate_all()  # only the fresh walk matters: keep alternatives cheap
        t = self.env.iommu.translate(req)
        if t.fault is not None and t.fault not in FS_FAULTS:
            raise AssertionError(f"testbench setup: golden fault {t.fault!r} ({t.check}) is not a "
                                 f"first-stage fault for {req}")
        fields = dict(fsptptr=sp.mm.pgd >> 12, level5=int(sp.levels == 5), addr=facts["addr"],
                      kind=KINDS[facts["kind"]], nw=facts["nw"], supervisor=facts["supervisor"],
                      wpe=facts["wpe"], eafe=facts["eafe"], snooped=int(sp.snooped))
        expect = dict(fault=PKG.enums["fs_fault_e"][1][0 if t.fault is None else int(t.fault)],
                      leaf=0, page=0, size="FS_PAGE_4K", rw=0, us=0, d=0, r=0, w=0)
        if t.fault is None or t.check in AT_LEAF:
            p = t.page
            expect.update(leaf=1, page=p.pa >> 12, size=SIZES[p.size], rw=p.rw, us=p.us, d=p.dirty,
                          r=int(t.r), w=int(t.w))
        case = Case(n, sp, fields, expect, t.check, t.ad_updates)
        if expect["leaf"]:
            case.leaf = (sp.n, t.page.iova)
            case.sets_d = any((new & ~old) >> FsEntry.d.lo & 1 for _, old, new in t.ad_updates)
        return case


# ================================================================================================
# The testbench
# ================================================================================================


class Tb:
    def __init__(self, dut, stats: Stats, rng: random.Random, world: World, exclusive: bool = True,
                 max_latency: int = 20, busy: float = 0.3, aging: float = 0.0):
        self.dut, self.stats, self.rng, self.world = dut, stats, rng, world
        self.aging = aging  # chance that the CPU clears A/EA/D in a space before a race request
        self.period = 4  # ns
        self.steps = self.period * 1000  # simulation steps (ps) per cycle
        Clock(dut.clk_i, self.period, unit="ns").start()
        kw = dict(reset_active_level=False)
        self.src = FsReqSource(FsReqBus.from_prefix(dut, "req"), dut.clk_i, dut.rst_ni, **kw)
        self.sink = FsRspSink(FsRspBus.from_prefix(dut, "rsp"), dut.clk_i, dut.rst_ni, **kw)
        self.src.queue_occupancy_limit = 2
        for agent in (self.src, self.sink):
            agent.log.setLevel(logging.WARNING)
        self.axi = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), dut.clk_i, dut.rst_ni, world.dut_mem,
                             read_latency=lambda: rng.randint(0, max_latency),
                             write_latency=lambda: rng.randint(0, max_latency),
                             reorder=True, exclusive_support=exclusive, **kw)
        for slot in world.read_errors:
            self.axi.inject_error(slot, 8, rng.choice([AxiResp.SLVERR, AxiResp.DECERR]), writes=False)
        for slot in world.cmpxchg_errors:
            self.axi.inject_error(slot, 8, rng.choice([AxiResp.SLVERR, AxiResp.DECERR]), reads=False)
        self.backpressure(busy)
        self.pending: dict[int, Case] = {}
        self.quiet = Event()  # set whenever a response came back (a space may have become quiet)
        self.seen: dict[str, int] = {}  # golden row (or 'translated') -> count
        self.rsp_time: dict[int, int] = {}  # tag -> simulation step of the response handshake
        self.leaf_busy: dict[tuple, list[Case]] = {}  # leaf (space, page) -> walks of it in flight
        self.races = 0

    def backpressure(self, busy: float) -> None:
        rng = self.rng
        self.axi.random_backpressure(rng, busy)
        for agent in (self.src, self.sink):
            agent.set_pause_generator(iter(lambda: rng.random() < busy, None) if busy else None)

    async def reset(self):
        self.dut.rst_ni.value = 0
        await ClockCycles(self.dut.clk_i, 3)
        self.dut.rst_ni.value = 1
        await ClockCycles(self.dut.clk_i, 2)

    async def until(self, done) -> None:
        """Wait (woken by responses only) until ``done()`` is true."""
        while not done():
            self.quiet.clear()
            await self.quiet.wait()

    def fail(self, case: Case, what: str, expected, actual):
        self.stats.mismatches += 1
        raise AssertionError(f"{what} mismatch for {case.describe()}\n  expected: {expected}\n"
                             f"  actual:   {actual}\n  {self.stats.rerun_hint()}")

    # --- one request -------------------------------------------------------------------------------
    def _race(self):
        """Arm a CPU race for the golden walk: its next cmpxchg meets an entry the CPU just changed.
        Returns (name, mutation, list that receives (entry address, value before) when it happened)."""
        rng, haw = self.rng, self.world.haw
        mutations = {
            "ignored bit 9 set": lambda old: old | 1 << 9,
            "A set by the CPU": lambda old: old | 1 << 5,
            "P cleared": lambda old: old & ~1,
            "R/W cleared": lambda old: old & ~2,
            "U/S cleared": lambda old: old & ~4,
            "address bit 40 flipped": lambda old: old ^ 1 << 40,  # to empty memory (or above HAW)
            "PS flipped": lambda old: old ^ 1 << 7,
        }
        if haw < 52:
            mutations["bit 51 set (above HAW)"] = lambda old: old | 1 << 51
        name = rng.choice(sorted(mutations))
        mutate = mutations[name]
        hit: list[int] = []

        def hook(addr: int):
            old = self.world.gold.read64(addr)
            hit.append((addr, old))
            self.world.gold.write64(addr, mutate(old))

        self.world.gold.before_cmpxchg = hook
        return name, mutate, hit

    async def issue(self, n: int, race: bool) -> None:
        sp, facts = self.world.draw()
        if race:  # a race needs an A/EA/D update to meet: writes with EA more often than not
            facts.update(kind=self.rng.choice(["write", "atomic"]), nw=0, eafe=int(self.rng.random() < 0.6))
        await self.submit(n, sp, facts, race)

    async def submit(self, n: int, sp: Space, facts: dict, race: bool = False) -> Case:
        """Translate request #n with the golden model and hand it to the DUT (after the waits that
        keep the two equivalent, see the module docstring)."""
        world = self.world
        await self.until(lambda: not sp.locked and not (race and sp.outstanding))
        if race and sp.snooped and self.rng.random() < self.aging:
            world.age(sp)
        armed = self._race() if race else None
        case = world.golden(n, sp, facts)
        if armed is not None:
            name, mutate, hit = armed
            world.gold.before_cmpxchg = None
            if hit:  # the golden walk met the race: the DUT meets it at the same exclusive write
                case.race_slot, case.race_old = hit[0]
                self.axi.race(case.race_slot, mutate, phase="write")
                case.race = f"{name} at {case.race_slot:#x}"
                sp.locked = True
                self.races += 1
        # The leaf's D bit is reported as read: it depends on whether another walk of the same leaf
        # that sets D ran before. The model ran them in issue order, so the DUT must not overlap them.
        if case.leaf is not None:
            await self.until(lambda: not any(case.sets_d or other.sets_d
                                             for other in self.leaf_busy.get(case.leaf, [])))
            self.leaf_busy.setdefault(case.leaf, []).append(case)
        tag = n % TAGS
        if tag in self.pending:
            raise AssertionError(f"testbench: tag {tag} still in flight")
        self.pending[tag] = case
        sp.outstanding += 1
        await self.src.send(FsReqTransaction(i=pack("fs_req_t", case.fields), tag_i=tag))
        return case

    async def monitor(self, count: int | None = None) -> None:
        """Check ``count`` responses (None: until cancelled)."""
        world = self.world
        n = 0
        while count is None or n < count:
            n += 1
            try:
                rsp = await with_timeout(self.sink.recv(), HANG_CYCLES * self.period, "ns")
            except SimTimeoutError:
                self.stats.mismatches += 1
                waiting = "\n".join(c.describe() for c in self.pending.values())
                raise AssertionError(f"no response for {HANG_CYCLES} cycles; waiting for:\n{waiting}\n"
                                     f"  {self.stats.rerun_hint()}") from None
            self.rsp_time[int(rsp.tag_o)] = get_sim_time()
            tag = int(rsp.tag_o)
            case = self.pending.pop(tag, None)
            if case is None:
                raise AssertionError(f"response with tag {tag} nobody asked for; {self.stats.rerun_hint()}")
            got = PKG.unpack("fs_rsp_t", int(rsp.o))
            if got != case.expect:
                diff = {k: (case.expect[k], got[k]) for k in got if got[k] != case.expect[k]}
                self.fail(case, f"response {diff} (expected, actual)", case.expect, got)
            for slot, old, new in case.updates:
                bits = new & ~old
                have = world.dut_mem.read64(slot)
                if have & bits != bits:
                    self.fail(case, f"A/EA/D bits of the entry at {slot:#x}", f"{bits:#x} set (golden wrote "
                              f"{old:#x} -> {new:#x})", f"{have:#x}")
            self.stats.checked += 1
            self.seen[case.check or "translated"] = self.seen.get(case.check or "translated", 0) + 1
            case.space.outstanding -= 1
            if case.leaf is not None:
                self.leaf_busy[case.leaf].remove(case)
            if case.race:
                self.restore(case)
                case.space.locked = False
            self.quiet.set()

    def restore(self, case: Case) -> None:
        """After a race: the raced entry must be equal on both sides; then the CPU puts the value from
        before the race back (without the A/D bits set since), so the tables do not decay."""
        world, slot = self.world, case.race_slot
        g, d = peek(world.gold, slot), peek(world.dut_mem, slot)
        if g != d:
            self.fail(case, f"raced entry at {slot:#x}", f"{g:#x}", f"{d:#x}")
        world.gold.write64(slot, case.race_old)
        world.dut_mem.write64(slot, case.race_old)

    def compare_memory(self) -> None:
        """Every word either side wrote since construction must hold the same value on both sides."""
        world = self.world
        for addr in sorted(world.gold_writes | world.dut_writes):
            g, d = peek(world.gold, addr), peek(world.dut_mem, addr)
            if g != d:
                self.stats.mismatches += 1
                raise AssertionError(f"memory word {addr:#x}: golden {g:#x}, DUT {d:#x} "
                                     f"({FsEntry(g)} vs {FsEntry(d)}); {self.stats.rerun_hint()}")


def _count(default: int) -> int:
    return int(os.environ.get("COUNT") or default)


def _params() -> dict:
    """The RTL parameters of this build (tests/sim/test_fs_walker.py passes them)."""
    return json.loads(os.environ["FS_WALKER_PARAMS"])


async def run_random(dut, count: int, race: float = 0.0, exclusive: bool = True, busy: float = 0.3,
                     max_latency: int = 20, errors: float = 0.02, aging: float = 0.0):
    stats = Stats()
    rng = random.Random(stats.seed)
    p = _params()
    world = World.random(rng, p["HAW"], bool(p["FS1GP"]), bool(p["NWFS"]), exclusive=exclusive,
                         errors=errors)
    tb = Tb(dut, stats, rng, world, exclusive=exclusive, max_latency=max_latency, busy=busy, aging=aging)
    await tb.reset()
    t0 = get_sim_time("ns")
    try:
        mon = cocotb.start_soon(tb.monitor(count))
        for n in range(count):
            await tb.issue(n, race=rng.random() < race)
        await mon
        stats.cycles = int((get_sim_time("ns") - t0) // tb.period)
        await ClockCycles(dut.clk_i, 20)
        if not tb.sink.empty() or dut.rsp_valid_o.value:
            raise AssertionError(f"walker answered more than it was asked; {stats.rerun_hint()}")
        tb.compare_memory()
        stats.result = "PASS"
        dut._log.info("checked %d walks, %d CPU races, %d cycles; rows: %s; AXI: %s", stats.checked,
                      tb.races, stats.cycles, dict(sorted(tb.seen.items())), tb.axi.counters)
    finally:
        stats.write()
    return tb


@cocotb.test()
async def fs_walker_random(dut):
    """Random walks over random, partly broken tables: every response and every A/D bit vs the model."""
    await run_random(dut, _count(600), race=0.05)


@cocotb.test()
async def fs_walker_races(dut):
    """Many CPU races between the exclusive read and write (the entry changes; the walk re-evaluates),
    with the CPU clearing A/EA/D now and then so that there are updates to race with."""
    await run_random(dut, _count(300), race=0.8, aging=0.3)


@cocotb.test()
async def fs_walker_no_exclusive(dut):
    """A memory without an exclusive monitor: every needed A/D update fails with 0x91, nothing is written."""
    await run_random(dut, _count(200), exclusive=False, errors=0.0)


@cocotb.test()
async def fs_walker_full_rate(dut):
    """No back-pressure and no memory latency: walks back to back."""
    await run_random(dut, _count(300), busy=0.0, max_latency=0, race=0.05)


# ================================================================================================
# Latency and walks in flight (directed)
# ================================================================================================


def facts(va: int, kind: str = "read") -> dict:
    """A user request without PASID-entry extras (latency test)."""
    return dict(addr=va, kind=kind, nw=0, supervisor=0, wpe=0, eafe=0)


async def req_handshakes(dut, times: dict) -> None:
    """Record the simulation step of every request handshake, by tag (latency test only)."""
    edge = RisingEdge(dut.clk_i)
    while True:
        await edge
        if dut.req_valid_i.value and dut.req_ready_o.value:
            times[int(dut.req_tag_i.value)] = get_sim_time()


@cocotb.test()
async def fs_walker_latency(dut):
    """Cycles per level at fixed memory latencies (reads only, and with an A update at every level),
    and walks in flight: N_WALKS walks overlap, and a short walk overtakes a long one."""
    stats = Stats()
    rng = random.Random(stats.seed)
    p = _params()
    n_walks = p["N_WALKS"]
    world = World(rng, p["HAW"], bool(p["FS1GP"]), bool(p["NWFS"]))
    page = 0xA000_0000  # a page outside the table frames
    spaces = {}
    for lat in (0, 8):
        for levels in (4, 5):
            for k in range(n_walks + 1):
                sp = world.add_space(levels, snooped=True)
                va = sign_extend(0x12_3456_7000 + k * (1 << 39), levels)
                world.map(sp, va, K4, pa=page, write=True, user=True)
                spaces[lat, levels, k] = (sp, va)
    world.seal()
    latency = [0]
    tb = Tb(dut, stats, rng, world, busy=0.0)
    tb.axi.read_latency = tb.axi.write_latency = lambda: latency[0]
    tb.axi.reorder = False
    await tb.reset()
    req_time: dict[int, int] = {}
    cocotb.start_soon(req_handshakes(dut, req_time))
    cocotb.start_soon(tb.monitor())
    n = 0

    async def walk(sp: Space, va: int) -> int:
        """One walk alone; its latency in cycles (request handshake to response handshake)."""
        nonlocal n
        case = await tb.submit(n, sp, facts(va))
        n += 1
        await tb.until(lambda: not sp.outstanding)
        tag = case.n % TAGS
        return (tb.rsp_time[tag] - req_time[tag]) // tb.steps

    try:
        measured = {}
        for lat in (0, 8):
            latency[0] = lat
            for levels in (4, 5):
                sp, va = spaces[lat, levels, 0]
                measured[lat, levels, "update"] = await walk(sp, va)  # A clear at every level
                measured[lat, levels, "read"] = await walk(sp, va)    # A already set everywhere
            per_read = measured[lat, 5, "read"] - measured[lat, 4, "read"]
            per_update = measured[lat, 5, "update"] - measured[lat, 4, "update"]
            dut._log.info("memory latency %d: 4-level walk %d cycles (%d with A updates), 5-level %d (%d); "
                          "per level %d cycles reading, %d with the A update", lat, measured[lat, 4, "read"],
                          measured[lat, 4, "update"], measured[lat, 5, "read"], measured[lat, 5, "update"],
                          per_read, per_update)
            # design budget: a level costs the read round trip plus at most 4 cycles of the walker and
            # the memory agent; an A update adds the write round trip plus at most 4 more
            if per_read > lat + 4 or per_update > 2 * lat + 8:
                raise AssertionError(f"memory latency {lat}: {per_read} cycles per level reading, "
                                     f"{per_update} with an update; budget {lat + 4} / {2 * lat + 8}; "
                                     f"{stats.rerun_hint()}")

        # N_WALKS walks needing updates at every level, all at once (latency 8): they overlap
        latency[0] = 8
        single = measured[8, 5, "update"]
        first = n
        for k in range(1, n_walks + 1):
            sp, va = spaces[8, 5, k]
            await tb.submit(n, sp, facts(va))
            n += 1
        await tb.until(lambda: not any(spaces[8, 5, k][0].outstanding for k in range(1, n_walks + 1)))
        span = (max(tb.rsp_time[t % TAGS] for t in range(first, n))
                - min(req_time[t % TAGS] for t in range(first, n))) // tb.steps
        dut._log.info("%d concurrent 5-level walks with updates: %d cycles (one alone: %d)",
                      n_walks, span, single)
        if n_walks > 1 and span > single + single // 2:
            raise AssertionError(f"{n_walks} walks took {span} cycles, one takes {single}: they do not "
                                 f"overlap; {stats.rerun_hint()}")

        # a long walk (5 levels, updates) then a short one (4 levels, A set): the short one answers first
        if n_walks > 1:
            slow_sp, slow_va = spaces[0, 5, 1]
            fast_sp, fast_va = spaces[8, 4, 0]
            slow = await tb.submit(n, slow_sp, facts(slow_va, "write"))
            fast = await tb.submit(n + 1, fast_sp, facts(fast_va))
            n += 2
            await tb.until(lambda: not slow_sp.outstanding and not fast_sp.outstanding)
            if not tb.rsp_time[fast.n % TAGS] < tb.rsp_time[slow.n % TAGS]:
                raise AssertionError(f"the short walk did not overtake the long one; {stats.rerun_hint()}")
        stats.cycles = get_sim_time() // tb.steps
        tb.compare_memory()
        stats.result = "PASS"
    finally:
        stats.write()


