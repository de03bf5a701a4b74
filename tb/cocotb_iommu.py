"""cocotb tests of the whole IOMMU (rtl/iommu_top.sv through tb/rtl/iommu_tb.sv) on tb/iommu_env.py:
every TLP out, every byte written to host memory and every fault record is scored against the golden
model (see the environment's docstring for how). Directed tests build one situation each and let the
model say what must happen; iommu_random throws random traffic from several devices and PASIDs at
random 4/5-level address spaces with back-pressure everywhere.

Stimulus stays inside what the spec defines: a write never goes out while an earlier read of the same
bytes waits for its completions (PCIe lets the write pass); tables, data buffers and registers change
only at quiescent points, followed by the global invalidation (SRTP with the same RTADDR, ESRTPS=1)
when tables changed; the CPU races of iommu_ad are played identically on both sides.
"""

from __future__ import annotations

import functools
import random

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from models import tlp as T
from models.paging import FsEntry, is_canonical
from models.vtd import (PROFILE, REGISTERS, CcInvDesc, ContextEntry, DevTlbInvDesc, InvWaitDesc, IotlbInvDesc,
                        PageGroupResponseDescriptor, PasidDirEntry, PasidEntry, PcInvDesc, PDevTlbInvDesc, Pgtt,
                        PIotlbInvDesc, RootEntry)
from tb.cocotb_tlp_parser import mutate, random_tlp
from tb.iommu_env import G1, K4, M2, IommuEnv, IommuStats, Knobs, Mapping, Space, count

INTERRUPT_PAGE = 0xFEE0_0000
#: what page aging clears: A and D (vtd §3.5)
AD_CLEAR = FsEntry.a.mask << FsEntry.a.lo | FsEntry.d.mask << FsEntry.d.lo


# ================================================================================================
# Helpers
# ================================================================================================


def iommu_test(**knobs):
    """Decorator: a cocotb test with a started environment (``Knobs(**knobs)``); the body gets the env;
    afterwards one last quiescent point, the numbers, PASS."""

    def deco(body):
        @functools.wraps(body)
        async def test(dut):
            stats = IommuStats()
            env = IommuEnv(dut, stats, random.Random(stats.seed), Knobs(**knobs))
            try:
                await env.start()
                await body(env)
                await env.quiesce()
                stats.result = "PASS"
                dut._log.info("%s: %d requests, %d TLPs, %d memory bytes, %d fault records matched; "
                              "%d cycles", stats.name, stats.checked, env.sb.tlps_matched,
                              env.sb.bytes_matched, stats.faults, env.cycles())
            finally:
                env.finish()
                stats.write()

        return cocotb.test(test)

    return deco


def shape(rng: random.Random, max_dw: int = 1024, long: float = 0.1) -> tuple[int, int, int, int]:
    """(length in DW, byte offset in the 4 KiB piece, first BE, last BE) of a random valid request."""
    r = rng.random()
    if r < 0.3:
        length = 1
    elif r < 1 - long - 0.2:
        length = rng.randint(2, 16)
    elif r < 1 - long:
        length = rng.randint(17, 64)
    else:
        length = rng.randint(65, 1024)
    length = min(length, max_dw)
    off = rng.randrange(0, K4 - 4 * length + 1, 4)
    if length == 1:
        return length, off, rng.choice([0xF, 0xF, 0x1, 0x3, 0x6, 0xC, 0x8, 0x0, 0x5, 0xA]), 0
    if length == 2 and off % 8 == 0 and rng.random() < 0.2:
        return length, off, rng.choice([0x1, 0x2, 0x4, 0x8, 0x9]), rng.choice([0x1, 0x2, 0x4, 0x8])
    return length, off, rng.choice([0xF, 0xF, 0xE, 0xC, 0x8]), rng.choice([0xF, 0xF, 0x7, 0x3, 0x1])


def extras(rng: random.Random) -> dict:
    """Traffic class and attributes, sometimes TPH (TH=1 with a steering tag)."""
    f = dict(tc=rng.getrandbits(3) if rng.random() < 0.3 else 0,
             attr=rng.getrandbits(3) if rng.random() < 0.3 else 0)
    if rng.random() < 0.05:
        f.update(th=1, st=rng.getrandbits(8), ph=rng.getrandbits(2))
    return f


async def read(env: IommuEnv, rid: int, va: int, pasid=None, pmr=0, max_dw: int = 1024, long: float = 0.1,
               **kw):
    """A random read inside the 4 KiB piece at ``va`` (the page offset of ``va`` is ignored)."""
    rng = env.rng
    length, off, fbe, lbe = shape(rng, max_dw, long)
    f = extras(rng)
    f.update(kw)
    if pasid is not None:
        f.update(pasid=pasid, pmr=pmr)
    return await env.mrd(rid, (va & ~0xFFF) + off, length, fbe, lbe, **f)


async def write(env: IommuEnv, rid: int, va: int, pasid=None, pmr=0, max_dw: int = 256, **kw):
    """A random write inside the 4 KiB piece at ``va``."""
    rng = env.rng
    length, off, fbe, lbe = shape(rng, max_dw, long=0.05)
    f = extras(rng)
    if f.get("th"):
        f["tag"] = 0
    f.update(kw)
    if pasid is not None:
        f.update(pasid=pasid, pmr=pmr)
    return await env.mwr(rid, (va & ~0xFFF) + off, rng.randbytes(4 * length), fbe, lbe, **f)


async def ats(env: IommuEnv, rid: int, va: int, pasid=None, pmr=0, nw=None, **kw):
    """A translation request for the page at ``va`` (NW random unless given)."""
    rng = env.rng
    f = dict(kw)
    if pasid is not None:
        f.update(pasid=pasid, pmr=pmr)
    return await env.ats(rid, va, nw=rng.getrandbits(1) if nw is None else nw, **f)


async def every_kind(env: IommuEnv, rid: int, va: int, pasid=None, pmr=0, translation: bool = True, **kw):
    """A read, a write, and (``translation``) an ATS translation request of the piece at ``va``;
    ``kw`` go into each TLP."""
    await read(env, rid, va, pasid, pmr, long=0.0, **kw)
    await write(env, rid, va, pasid, pmr, max_dw=16, **kw)
    if translation:
        await ats(env, rid, va, pasid, pmr, **kw)


# ================================================================================================
# Directed tests
# ================================================================================================


@iommu_test()
async def iommu_pages(env: IommuEnv):
    """4K/2M/1G pages (4-level), reads and writes of many lengths and byte enables (then the same
    bytes read back), with PASID, without (RID_PASID 0 and a non-zero RID_PASID), 3DW and 4DW
    addresses, TPH, traffic classes and attributes; concurrently and one at a time."""
    rng = env.rng
    sp, sp2 = env.new_space(4), env.new_space(4)
    env.map(sp, 0x7000_0000, K4)                              # below 4 GiB: 3DW requests
    env.map(sp, 0x7000_3000, K4)
    env.map(sp, 0x0000_0012_3440_0000, M2, hot=4)
    env.map(sp, 0x0000_0080_0000_0000, G1, hot=4)
    env.map(sp, 0xFFFF_8000_1234_5000, K4)                    # upper canonical half
    env.map(sp2, 0x7000_0000, K4)                             # same va, another space
    env.map(sp2, 0x0000_0040_0020_0000, M2, hot=3)
    a, b = 0x0100, 0x0281                                     # devfn >= 0x80: upper context table
    env.device(a)
    env.device(b, rid_pasid=0x21)
    env.bind(a, 0, sp)                                        # RID_PASID of a
    env.bind(a, 5, sp)
    env.bind(a, 6, sp2)
    env.bind(b, 0x21, sp2)                                    # RID_PASID of b
    env.bind(b, 5, sp)
    await env.invalidate()
    users = [(a, None, sp), (a, 5, sp), (a, 6, sp2), (b, None, sp2), (b, 5, sp)]

    # one request at a time: reads, writes, read back
    for rid, pasid, s in users:
        for va, _, _ in s.hot:
            await read(env, rid, va, pasid)
            await env.quiesce(registers=False)
            await write(env, rid, va, pasid)
            await read(env, rid, va, pasid)
            await env.quiesce(registers=False)
    await env.quiesce()

    # everything at once, every length
    for n in range(120):
        rid, pasid, s = rng.choice(users)
        va = rng.choice(s.hot)[0]
        if rng.random() < 0.55:
            await read(env, rid, va, pasid, long=0.2)
        else:
            await write(env, rid, va, pasid)
    await env.quiesce()

    # the extremes: whole 4 KiB reads and writes, zero-length reads
    va = sp.hot[0][0]
    await env.mrd(a, va, 1024, pasid=5)
    await env.mwr(a, va, rng.randbytes(4096), pasid=5)
    await env.mrd(a, va, 1024, pasid=5)
    await env.mrd(a, va + 0x10, 1, 0x0, 0, pasid=5)
    await env.mrd(b, sp2.hot[0][0] + 0x20, 1, 0x0, 0)


@iommu_test()
async def iommu_5level(env: IommuEnv):
    """5-level address spaces (FSPM=01): pages under every part of the 57-bit space, 4K/2M/1G; next
    to a 4-level space; non-canonical addresses for both (SGN.1)."""
    sp5, sp4 = env.new_space(5), env.new_space(4)
    vas = [(0x0000_0000_7000_0000, K4), (0x00AB_CDEF_1234_5000, K4), (0x0080_0000_0020_0000, M2),
           (0x00FF_FFC0_0000_0000, G1), (0xFF00_0000_0000_1000, K4), (0xFFFF_FFFF_FFE0_0000, M2)]
    for va, size in vas:
        env.map(sp5, va, size, hot=3)
    env.map(sp4, 0x0000_7FFF_FFFF_F000, K4)
    env.map(sp4, 0xFFFF_8000_0000_0000, M2)
    rid = 0x0318
    env.device(rid)
    env.bind(rid, 0, sp5)
    env.bind(rid, 0x100, sp5)
    env.bind(rid, 0x101, sp4)
    await env.invalidate()
    for pasid, sp in ((None, sp5), (0x100, sp5), (0x101, sp4)):
        for va, _, _ in sp.hot:
            await every_kind(env, rid, va, pasid)
    await env.quiesce()
    # non-canonical: bit 57 / bit 48 differs from the bits above it
    for va, pasid in ((0x0200_0000_0000_0000, 0x100), (0x8000_0000_0000_0000, None),
                      (0x0001_0000_0000_0000, 0x101), (0xFFFE_8000_0000_0000, 0x101)):
        assert not is_canonical(va, 5 if pasid != 0x101 else 4)
        await every_kind(env, rid, va, pasid)
    await env.quiesce()
    # a canonical 5-level address that is not canonical for the 4-level space, and the reverse case
    await every_kind(env, rid, 0x00AB_CDEF_1234_5000, 0x101)
    for n in range(60):
        pasid, sp = env.rng.choice(((None, sp5), (0x100, sp5), (0x101, sp4)))
        va = env.rng.choice(sp.hot)[0]
        await (read if env.rng.random() < 0.5 else write)(env, rid, va, pasid)


class Faults:
    """iommu_faults' world: one space with a few pages; every case gets a fresh device (bus 1) or a
    fresh bus, so the broken structure affects nothing else."""

    def __init__(self, env: IommuEnv):
        self.env = env
        self.sp = env.new_space(4)
        self.page = env.map(self.sp, 0x4000_0000, K4).va
        self.next_devfn = 0
        self.next_bus = 0x10

    def device(self, **ctx) -> int:
        rid = 0x0100 | self.next_devfn
        self.next_devfn += 1
        self.env.device(rid, **ctx)
        return rid

    def bus(self) -> int:
        rid = self.next_bus << 8
        self.next_bus += 1
        return rid

    def bound(self, pasid: int = 9, ctx: dict | None = None, **pe) -> int:
        rid = self.device(**(ctx or {}))
        self.env.bind(rid, 0, self.sp, **pe)
        self.env.bind(rid, pasid, self.sp, **pe)
        return rid


def reserved_bit(cls) -> int:
    """The lowest bit of a structure that is reserved under the project's profile."""
    for bit in range(cls.WIDTH):
        if cls(1 << bit).reserved_violations(PROFILE.haw, PROFILE):
            return bit
    raise AssertionError(f"{cls.__name__} has no reserved bit")


@iommu_test()
async def iommu_faults(env: IommuEnv):
    """Every request/root/context/PASID/first-stage fault reason the profile reaches (FAULT_PRIORITY),
    each with a read, a write and a translation request: completions (UR / CA / S0 / Seff), dropped
    writes and FRCDs against the model; FPD suppression; legacy and reserved TTM."""
    f = Faults(env)
    host, mem = env.host, env.ref
    va = f.page

    async def case(name: str, rid: int, pasid=None, pmr=0, addr=va, **kw):
        env.log.info("fault case: %s", name)
        await env.invalidate()
        await every_kind(env, rid, addr, pasid, pmr, **kw)
        await env.quiesce()

    # --- root entry (vtd §2.2) -----------------------------------------------------------------------
    rid = f.bus()
    env.device(rid)
    env.bind(rid, 0, f.sp)
    err = env.read_error(RootEntry.entry_address(host.root, rid >> 8), 16)
    await case("SRT.1 root entry read error", rid)
    env.remove_error(err)
    await case("SRT.2 root entry not present", f.bus())
    rid = f.bus()
    env.device(rid)
    env.bind(rid, 0, f.sp)
    root = RootEntry.from_bytes(mem.read(RootEntry.entry_address(host.root, rid >> 8), 16))
    root.raw |= 1 << reserved_bit(RootEntry)
    host.write_struct(RootEntry.entry_address(host.root, rid >> 8), root)
    await case("SRT.3 root entry reserved bit", rid)

    # --- context entry (vtd §2.3) --------------------------------------------------------------------
    rid = f.bound()
    err = env.read_error(host.context_address(rid), 32)
    await case("SCT.1 context read error", rid, 9)
    env.remove_error(err)
    rid = f.bound()
    host.set_context(rid, **{**host.context_entry(rid).fields(), "p": 0})
    await case("SCT.2 context not present", rid, 9)
    rid = f.bound()
    ctx = host.context_entry(rid)
    ctx.raw |= 1 << reserved_bit(ContextEntry)
    host.write_struct(host.context_address(rid), ctx)
    await case("SCT.3 context reserved bit", rid)
    rid = f.bound(ctx=dict(pre=1, dte=0))
    await case("SCT.4 PRE=1 with DTE=0", rid, 9)
    rid = f.bound(ctx=dict(pre=0, dte=0))
    await case("SCT.5 translation request with DTE=0", rid, 9)
    await case("SCT.5 translated request with DTE=0", rid, addr=va, at=T.AT_TRANSLATED, translation=False)
    rid = f.bound(ctx=dict(paside=0))
    await case("SCT.6 PASID with PASIDE=0", rid, 9)
    rid = f.bound(ctx=dict(pdts=0))
    await case("SCT.7 PASID above the PDTS limit", rid, 0x2000)
    rid = f.device(rid_pasid=3)
    env.bind(rid, 3, f.sp)
    await case("SCT.9 PASID equal to RID_PASID", rid, 3)
    rid = f.bound()
    await case("SCT.10 translated request with PASID", rid, 9, addr=va, at=T.AT_TRANSLATED, translation=False)

    # --- PASID directory and entry (vtd §2.4, §2.5) ----------------------------------------------------
    rid = f.bound(pasid=0x45)
    err = env.read_error(host.dir_entry_address(rid, 0x45), 8)
    await case("SPD.1 directory read error", rid, 0x45)
    env.remove_error(err)
    rid = f.bound()
    await case("SPD.2 directory entry not present", rid, 0x80)
    rid = f.bound(pasid=0x45)
    de = PasidDirEntry.from_bytes(mem.read(host.dir_entry_address(rid, 0x45), 8))
    de.raw |= 1 << reserved_bit(PasidDirEntry)
    host.write_struct(host.dir_entry_address(rid, 0x45), de)
    await case("SPD.3 directory entry reserved bit", rid, 0x45)
    rid = f.bound()
    err = env.read_error(host.pasid_entry_address(rid, 9), 64)
    await case("SPT.1 PASID entry read error", rid, 9)
    env.remove_error(err)
    await case("SPT.2 PASID entry not present", rid, 10)
    rid = f.bound()
    pe = host.pasid_entry(rid, 9)
    pe.raw |= 1 << reserved_bit(PasidEntry)
    host.write_struct(host.pasid_entry_address(rid, 9), pe)
    await case("SPT.3 PASID entry reserved bit", rid, 9)
    for what, fields in (("PGTT second stage", dict(pgtt=Pgtt.SECOND_STAGE)),
                         ("PGTT pass-through (ECAP.PT=0)", dict(pgtt=Pgtt.PASS_THROUGH)),
                         ("FSPM reserved", dict(fspm=2))):
        rid = f.bound(**fields)
        await case(f"SPT.4 {what}", rid, 9)
    rid = f.bound(sre=0)
    await case("SPT.6 supervisor request with SRE=0", rid, 9, pmr=1)
    await case("RTA.5 execute requested", rid, 9, er=1, translation=False)

    # --- first stage (vtd §3) --------------------------------------------------------------------------
    rid = f.bound()
    await case("SGN.1 non-canonical", rid, 9, addr=0x0000_8000_0000_0000)
    sp = env.new_space(4)
    m = env.map(sp, 0x5000_0000, K4)
    rid = f.device()
    env.bind(rid, 9, sp)
    levels = sp.mm.walk(m.va)
    err = env.read_error(levels[0][1], 8)
    await case("SFS.4 top-level table read error", rid, 9, addr=m.va)
    env.remove_error(err)
    err = env.read_error(levels[2][1], 8)
    await case("SFS.1 lower table read error", rid, 9, addr=m.va)
    env.remove_error(err)
    await case("SFS.2 PTE not present", rid, 9, addr=m.va + K4)
    await case("SFS.2 PML4E not present", rid, 9, addr=0x0000_7F00_0000_0000)
    for what, slot_level, bits in (("PS in a PML4E", 0, 1 << 7),
                                   ("PTE address bit 50 (above HAW)", 3, 1 << 50)):
        sp = env.new_space(4)
        m = env.map(sp, 0x5000_0000, K4)
        rid = f.device()
        env.bind(rid, 9, sp)
        slot = sp.mm.walk(m.va)[slot_level][1]
        mem.write64(slot, mem.read64(slot) | bits)
        await case(f"SFS.3 {what}", rid, 9, addr=m.va)
    sp = env.new_space(4)
    m = env.map(sp, 0x4020_0000, M2)
    slot = sp.mm.walk(m.va)[-1][1]
    mem.write64(slot, mem.read64(slot) | 1 << 13)
    rid = f.device()
    env.bind(rid, 9, sp)
    await case("SFS.3 2M leaf bit 13", rid, 9, addr=m.va)

    sp = env.new_space(4)
    m = env.map(sp, 0x5000_0000, K4)
    rid = f.device()
    env.bind(rid, 9, sp, pwsnp=0)
    await case("SFS.9 A update on a walk that is not snooped", rid, 9, addr=m.va)
    sp = env.new_space(4)
    m = env.map(sp, 0x5000_0000, K4)
    rid = f.device()
    env.bind(rid, 9, sp)
    err = env.update_error(sp.mm.walk(m.va)[1][1])
    await case("SFS.10 A update of a table entry fails", rid, 9, addr=m.va)
    env.remove_error(err)
    sp = env.new_space(4)
    m = env.map(sp, 0x5000_0000, K4)
    rid = f.device()
    env.bind(rid, 9, sp)
    err = env.update_error(sp.mm.walk(m.va)[-1][1])
    await case("SFS.10 A/D update of the leaf fails", rid, 9, addr=m.va)
    env.remove_error(err)

    sp = env.new_space(4)
    hi = env.map(sp, 0x5000_0000, K4, pa=1 << 48)
    irq = env.map(sp, 0x5000_1000, K4, pa=INTERRUPT_PAGE + 0x3000)
    user = env.map(sp, 0x5000_2000, K4, user=False)
    ro = env.map(sp, 0x5000_3000, K4, write=False)
    rid = f.device()
    env.bind(rid, 9, sp)
    await case("SGN.4 output above HAW", rid, 9, addr=hi.va)
    await case("SGN.8 output in the interrupt window", rid, 9, addr=irq.va)
    await case("SGN.2 user request to a supervisor page", rid, 9, addr=user.va)
    await case("SGN.6 write to a read-only page", rid, 9, addr=ro.va)

    # --- FPD: qualified faults are neither recorded nor signalled ----------------------------------------
    rid = f.bound(ctx=dict(fpd=1))
    await case("FPD in the context entry, PTE not present", rid, 9, addr=va + K4)
    rid = f.bound(fpd=1)
    await case("FPD in the PASID entry, PTE not present", rid, 9, addr=va + K4)
    rid = f.device(fpd=1, p=0)
    await case("FPD with context P=0", rid, 9)

    # --- TTM (vtd §1.6): legacy mode is not implemented, 10b is reserved ----------------------------------
    rid = f.bound()
    for ttm in (0b00, 0b10):
        await env.reg_write("RTADDR", host.root | ttm << 10)
        await case(f"RTA.x TTM={ttm:02b} without PASID", rid)
        await case(f"RTA.x TTM={ttm:02b} with PASID", rid, 9)
    await env.reg_write("RTADDR", host.root | 0b01 << 10)
    await case("TTM=01 again: translates", rid, 9)


@iommu_test()
async def iommu_user_supervisor(env: IommuEnv):
    """U/S and R/W (leaf and table entries) against user and supervisor requests (PMR in the PASID
    prefix), with SRE and WPE in every combination; requests without PASID are user requests
    (ECAP.RPRIVS=0)."""
    sp = env.new_space(4)
    pages = [env.map(sp, 0x6000_0000 + k * K4, K4, write=bool(k & 1), user=bool(k & 2)) for k in range(4)]
    # a region whose PDE says supervisor-only / read-only while the leaves allow everything
    sup = [env.map(sp, 0x6040_0000, K4), env.map(sp, 0x6080_0000, K4)]
    for m, field in zip(sup, ("us", "rw")):
        slot = sp.mm.walk(m.va)[2][1]
        e = FsEntry(env.ref.read64(slot))
        setattr(e, field, 0)
        env.ref.write64(slot, e.raw)
    rid = 0x0420
    env.device(rid)
    env.bind(rid, 0, sp)
    combos = {}
    for sre in (0, 1):
        for wpe in (0, 1):
            pasid = 0x10 + 2 * sre + wpe
            env.bind(rid, pasid, sp, sre=sre, wpe=wpe)
            combos[pasid] = (sre, wpe)
    await env.invalidate()
    for m in pages + sup:
        for pasid in combos:
            for pmr in (0, 1):
                await every_kind(env, rid, m.va, pasid, pmr)
                await ats(env, rid, m.va, pasid, pmr, nw=1 - env.rng.getrandbits(1))
        await every_kind(env, rid, m.va)
        await env.quiesce()


@iommu_test()
async def iommu_ad(env: IommuEnv):
    """A set on every level by reads, D by allowed writes and ATS requests without NW; many walks of
    the same entries at once; page aging (the CPU clears A/D at quiescent points); CPU races between
    the walker's exclusive read and its exclusive write (the entry changes, the walk re-evaluates),
    played identically on the model (before its cmpxchg) and the DUT's table port."""
    rng = env.rng
    sp = env.new_space(4)
    ms = [env.map(sp, 0x2000_0000 + k * K4, K4, write=k % 4 != 3) for k in range(8)]
    ms += [env.map(sp, 0x4000_0000, M2, hot=4), env.map(sp, 0x80_0000_0000, G1, hot=2)]
    rid = 0x0510
    env.device(rid)
    env.bind(rid, 0, sp)
    env.bind(rid, 7, sp)
    await env.invalidate()
    hot = [h[0] for h in sp.hot]

    for rnd in range(3):
        for n in range(80):
            va = rng.choice(hot)
            pasid = rng.choice((None, 7))
            r = rng.random()
            if r < 0.4:
                await read(env, rid, va, pasid, long=0.0)
            elif r < 0.8:
                await write(env, rid, va, pasid, max_dw=8)
            else:
                await ats(env, rid, va, pasid)
        await env.quiesce()
        # page aging: the CPU clears A/D (leaf and tables) of half the pages, then invalidates
        for m in rng.sample(ms, len(ms) // 2):
            for _, slot, e in sp.mm.walk(m.va):
                env.ref.write64(slot, e.raw & ~AD_CLEAR)
        await env.invalidate()

    # CPU races: one request at a time (nothing else may touch the raced entry)
    mutations = {
        "ignored bit 9 set": lambda old: old | 1 << 9,
        "A set by the CPU": lambda old: old | 1 << 5,
        "D set by the CPU": lambda old: old | 1 << 6,
        "P cleared": lambda old: old & ~1,
        "R/W cleared": lambda old: old & ~2,
        "U/S cleared": lambda old: old & ~4,
        "bit 51 set (above HAW)": lambda old: old | 1 << 51,
        "address bit 40 flipped": lambda old: old ^ 1 << 40,
    }
    races = 0
    for name, change in sorted(mutations.items()):
        for phase in ("write", "read"):
            for kind in ("write", "read", "ats"):
                sp2 = env.new_space(4)
                m = env.map(sp2, 0x3000_0000, K4)
                pasid = 0x40 + races
                env.bind(rid, pasid, sp2)
                await env.invalidate()
                done = env.arm_race(change)
                env.log.info("race: %s at the %s phase, %s", name, phase, kind)
                if kind == "write":
                    await env.mwr(rid, m.va + 8, rng.randbytes(8), pasid=pasid, phase=phase)
                elif kind == "read":
                    await env.mrd(rid, m.va + 8, 2, pasid=pasid, phase=phase)
                else:
                    await env.ats(rid, m.va, pasid=pasid, phase=phase)
                if not done:
                    raise AssertionError(f"testbench: the race '{name}' found no A/D update to meet")
                races += 1
                await env.quiesce()
                if not env.dut_race:
                    raise AssertionError(f"race '{name}': the DUT never made the exclusive access the model's "
                                         f"walk raced with; {env.stats.rerun_hint()}")
    env.log.info("%d CPU races", races)


@iommu_test()
async def iommu_frcd_overflow(env: IommuEnv):
    """More faults than the four FRCDs: PFO, records kept, later faults dropped; partial clearing
    (the ring index goes on where it was); faults after clearing are recorded again."""
    sp = env.new_space(4)
    m = env.map(sp, 0x1000_0000, K4)
    rids = [0x0600 + k for k in range(6)]
    for rid in rids:
        env.device(rid)
        env.bind(rid, 0, sp)
        env.bind(rid, 1, sp)
    await env.invalidate()
    bad = 0x2000_0000  # not mapped: SFS.2

    async def faults(n: int):
        for k in range(n):
            rid = env.rng.choice(rids)
            if env.rng.random() < 0.5:
                await env.mrd(rid, bad + 0x40 * k, 1, pasid=env.rng.choice((None, 1)))
            else:
                await env.mwr(rid, bad + 0x1000 * k, bytes(4))

    await faults(9)                      # at once: four records, then PFO
    await env.quiesce()
    for n in (1, 3, 4, 5):               # one at a time: the record order is the request order
        for _ in range(n):
            await faults(1)
            await env.quiesce(registers=False)
        await env.compare_faults()
    # fill all four, clear only FRCD0 and FRCD1 (no PFO yet): the next two go there, the third overflows
    for k in range(4):
        await faults(1)
        await env.quiesce(registers=False)
    await env.compare_faults(clear=False)
    for r in list(REGISTERS.frcds())[:2]:
        await env.reg_write32(r.offset + 12, 1 << 31, f"clear {r.name}.F")
    await faults(3)
    await env.quiesce(registers=False)
    await env.compare_faults(clear=False)
    await env.compare_registers()
    await env.clear_faults()
    await faults(2)
    await env.mrd(rids[0], m.va, 4, pasid=1)   # and translation still works


@iommu_test()
async def iommu_fault_msi(env: IommuEnv):
    """The fault event (vtd §1.12): FEDATA/FEADDR/FEUADDR programmed, IM=0: the first fault of a window
    sends the MSI (scored as a memory write), later ones while PPF is set do not; after clearing the next
    fault sends again. IM=1: IP is set instead; unmasking sends the pending message; clearing the
    status while masked drops it (IP clears, no message)."""
    sp = env.new_space(4)
    m = env.map(sp, 0x1000_0000, K4)
    rid = 0x0700
    env.device(rid)
    env.bind(rid, 0, sp)
    await env.invalidate()
    msi = env.data_pages(K4) | 0x40
    await env.fault_event(msi, 0x4321)

    async def fault(n: int = 1):
        for _ in range(n):
            await env.mrd(rid, 0x2000_0000 + 0x40 * env.rng.randrange(64), 1)   # not mapped: SFS.2

    await fault()
    await env.quiesce()                  # one MSI
    await fault(3)
    await env.quiesce()                  # one MSI for the window
    await env.fault_event(msi + 0x10 | 0x12 << 32, 0xBEEF)   # 64-bit message address
    await fault(2)
    await env.mrd(rid, m.va, 2)
    await env.quiesce()

    # masked: IP instead of the message; unmasking sends it
    await env.reg_write("FECTL", 1 << 31)
    await fault()
    await env.quiesce(registers=False)
    await env.compare_registers()        # FECTL.IP = 1, no message (an unexpected write would fail)
    await env.reg_write("FECTL", 0)      # the pending message goes out now
    await env.quiesce()
    # masked again; software clears the status: IP drops, no message, unmasking sends nothing
    await env.reg_write("FECTL", 1 << 31)
    await fault(2)
    await env.quiesce(registers=False)
    await env.compare_faults()           # clears FRCD.F (and PFO): IP clears without a message
    await env.compare_registers()
    await env.reg_write("FECTL", 0)
    await env.quiesce()


@iommu_test()
async def iommu_ats(env: IommuEnv):
    """ATS translation requests (AT=01b): 4K/2M/1G pages (the S-bit size), R/W/U/S and PRIV per
    request, NW (ECAP.NWFS=1: treated as a read), lengths other than one entry (UR for odd or 1 DW),
    faults answered S0 / Seff / UR / CA per the model, the interrupt window without PASID (U=1),
    DTE=0."""
    sp = env.new_space(5)
    ms = []
    for k, size in enumerate((K4, K4, M2, G1)):
        for w in (0, 1):
            for u in (0, 1):
                va = (0x10_0000_0000 * (k + 1)) + (2 * w + u) * size * 4
                ms.append(env.map(sp, va, size, write=bool(w), user=bool(u), hot=1))
    hi = env.map(sp, 0x7000_0000, K4, pa=1 << 48)
    irq = env.map(sp, 0x7000_1000, K4, pa=INTERRUPT_PAGE)
    rid, nodte = 0x0800, 0x0801
    env.device(rid, rid_pasid=1)
    env.bind(rid, 1, sp)
    env.bind(rid, 2, sp, sre=1, wpe=1)
    env.bind(rid, 3, sp, sre=0)
    env.device(nodte, dte=0, pre=0)
    env.bind(nodte, 0, sp)
    await env.invalidate()
    for m in ms + [hi, irq]:
        for pasid, pmr in ((None, 0), (2, 0), (2, 1), (3, 1)):
            for nw in (0, 1):
                await env.ats(rid, m.va, nw=nw, pasid=pasid, pmr=pmr)
        await env.ats(nodte, m.va)
        await env.quiesce()
    for length in (1, 3, 4, 8):
        await env.ats(rid, ms[0].va, length=length, pasid=2)
    await env.ats(rid, 0x6000_0000_0000, pasid=2)           # not mapped: S0 (not logged)
    await env.ats(rid, 0x0100_0000_0000_0000, pasid=2)       # non-canonical
    await env.ats(rid, 0xFEE0_0000)                          # interrupt window, no PASID: U=1
    await env.ats(rid, 0xFEE0_0000, nw=1)
    await env.ats(rid, 0xFEE0_0000, pasid=2)                 # with PASID: translated as any address
    await env.ats(rid, 0x7000_0000, pasid=9)                 # PASID entry not present
    await env.quiesce()
    # translations mixed with DMA to the same pages (the IOTLB serves both)
    for n in range(80):
        m = env.rng.choice(ms)
        pasid = env.rng.choice((None, 2))
        r = env.rng.random()
        if r < 0.4:
            await ats(env, rid, m.va, pasid)
        elif r < 0.7:
            await read(env, rid, m.va, pasid, long=0.0)
        else:
            await write(env, rid, m.va, pasid, max_dw=8)


@iommu_test()
async def iommu_translated(env: IommuEnv):
    """Translated requests (AT=10b): with DTE=1 they go to the address as given (after the output
    checks: above HAW SGN.4, interrupt window SGN.8), with PASID they fault SCT.10 (ECAP.PTRS=0), with
    DTE=0 SCT.5. Then translation disabled (GCMD.TE=0): untranslated requests pass through, AT!=00b
    gets UR without a record; TE=1 again."""
    rng = env.rng
    pas = []
    for _ in range(4):
        pa = env.data_pages(K4)
        env.fill(pa)
        pas.append(pa)
    low = 0x3000_0000                                          # below 4 GiB: 3DW headers
    env.fill(low)
    pas.append(low)
    rid, nodte = 0x0900, 0x0901
    sp = env.new_space(4)
    env.map(sp, 0x5000_0000, K4)
    env.device(rid)
    env.bind(rid, 0, sp)
    env.device(nodte, dte=0, pre=0)
    env.bind(nodte, 0, sp)
    await env.invalidate()
    for _ in range(3):
        for pa in pas:
            await read(env, rid, pa, at=T.AT_TRANSLATED)
            await write(env, rid, pa, at=T.AT_TRANSLATED)
            await read(env, rid, pa, at=T.AT_TRANSLATED)
    await env.quiesce()
    for addr in (1 << 48, INTERRUPT_PAGE + 0x100, pas[0]):
        await every_kind(env, rid, addr, translation=False, at=T.AT_TRANSLATED)
        await every_kind(env, nodte, addr, translation=False, at=T.AT_TRANSLATED)
        await every_kind(env, rid, addr, pasid=4, translation=False, at=T.AT_TRANSLATED)
        await env.quiesce()
    # translation off
    await env.gcmd("te", 0)
    for pa in pas:
        await read(env, rid, pa)
        await write(env, rid, pa, pasid=rng.choice((None, 3)))
        await read(env, rid, pa, at=T.AT_TRANSLATED)
        await ats(env, rid, pa)
    await env.quiesce()
    await env.gcmd("te", 1)
    await every_kind(env, rid, 0x5000_0000)
    await every_kind(env, rid, pas[1], translation=False, at=T.AT_TRANSLATED)


def unsupported_tlps(rng: random.Random, rid: int) -> list[bytes]:
    """Well-formed TLP types the IOMMU does not handle (pcie §1.2 Fmt/Type): IO and configuration
    requests, AtomicOps (non-posted: UR), DMWr (posted: dropped)."""
    def tlp(fmt: int, typ: int, length: int, body: bytes, payload: bytes = b"") -> bytes:
        dw0 = T.Dw0(fmt=fmt, type=typ, length=length, tc=0)
        return dw0.to_bytes() + body + payload

    tag = rng.getrandbits(8)
    hdr32 = rid.to_bytes(2, "big") + bytes([tag, 0x0F]) + (0x1000).to_bytes(4, "big")
    hdr64 = rid.to_bytes(2, "big") + bytes([tag, 0xFF]) + (0x1_0000_1000).to_bytes(8, "big")
    cfg = rid.to_bytes(2, "big") + bytes([tag, 0x0F]) + bytes([0x01, 0x08, 0x00, 0x10])
    out = [
        tlp(T.FMT_3DW, 0b00010, 1, hdr32),                                   # IO read
        tlp(T.FMT_3DW_DATA, 0b00010, 1, hdr32, rng.randbytes(4)),            # IO write
        tlp(T.FMT_3DW, 0b00100, 1, cfg),                                     # CfgRd0
        tlp(T.FMT_3DW_DATA, 0b00101, 1, cfg, rng.randbytes(4)),              # CfgWr1
        tlp(T.FMT_4DW_DATA, 0b01100, 2, hdr64, rng.randbytes(8)),            # FetchAdd
        tlp(T.FMT_3DW_DATA, 0b01101, 1, hdr32, rng.randbytes(4)),            # Swap
        tlp(T.FMT_4DW_DATA, 0b01110, 4, hdr64, rng.randbytes(16)),           # CAS
        tlp(T.FMT_4DW_DATA, 0b11011, 2, hdr64, rng.randbytes(8)),            # DMWr (posted)
    ]
    return [b for b in out if _is_unsupported(b)]


def _is_unsupported(data: bytes) -> bool:
    try:
        T.decode(data, strict=False)
    except T.UnsupportedTypeError:
        return True
    except T.TlpError:
        return False
    return False


def acceptable_mutation(data: bytes) -> bool:
    """Mutated bytes the RTL is meant to see today: no page requests and no ATS invalidation
    completions (the queues' tests send those). Unsupported types of the wrong size are sent: the model
    drops them as malformed, like the RTL."""
    try:
        pkt = T.decode(data, strict=False)
    except T.TlpError:
        return True
    return not isinstance(pkt, (T.PageRequest, T.AtsInvalidateCompletion))


@iommu_test()
async def iommu_bad_tlps(env: IommuEnv):
    """Unsupported types (UR / dropped), MRdLk (UR), poisoned writes and writes with AT=01b (dropped),
    requests with prefixes other than PASID (UR / dropped), translation requests of a bad length (UR),
    completions and messages sent to the IOMMU (dropped); then writes whose payload does not match
    Length (malformed: dropped, nothing logged), then random valid and mutated TLPs from devices without
    a root entry. Normal traffic between and after them still works."""
    rng = env.rng
    sp = env.new_space(4)
    ms = [env.map(sp, 0x7700_0000 + k * K4, K4) for k in range(4)]
    rid = 0x0A00
    env.device(rid)
    env.bind(rid, 0, sp)
    env.bind(rid, 2, sp)
    await env.invalidate()
    stranger = 0xE000  # bus 0xE0 has no root entry

    async def normal(n: int = 6):
        for _ in range(n):
            m = rng.choice(ms)
            await (read if rng.random() < 0.5 else write)(env, rid, m.va, rng.choice((None, 2)))

    m = ms[0]
    for data in unsupported_tlps(rng, rid):
        await env.send(data, "unsupported type")
    await env.mrd(rid, m.va, 4, locked=1, note="MRdLk")
    await env.mrd(rid, m.va, 4, locked=1, pasid=2, note="MRdLk with PASID")
    await env.mwr(rid, m.va, rng.randbytes(16), ep=1, note="poisoned write")
    await env.mwr(rid, m.va + 0x40, rng.randbytes(8), at=T.AT_TRANSLATION_REQUEST, note="MWr with AT=01b")
    for pfx in (0x8E00_1234, 0x9000_0001):
        await env.mrd(rid, m.va, 2, other_prefixes=(pfx,), note="other prefix")
        await env.mrd(rid, m.va, 2, other_prefixes=(pfx,), pasid=2, note="other prefix + PASID")
        await env.mwr(rid, m.va + 0x80, rng.randbytes(8), other_prefixes=(pfx,), note="other prefix")
    for length in (1, 3):
        await env.ats(rid, m.va, length=length, note="translation request of odd length")
    await env.send(T.Completion(requester_id=0, tag=5, completer_id=rid, byte_count=4,
                                data=bytes(4)).encode(), "completion to the IOMMU")
    await env.send(T.Completion(requester_id=0, tag=6, completer_id=rid, status=T.CPL_UR).encode(),
                   "UR completion to the IOMMU")
    await env.send(T.AtsInvalidateRequest(requester_id=rid, dest_id=rid, itag=1, address=0x1000).encode(),
                   "invalidate request to the IOMMU")
    await env.send(T.PrgResponse(requester_id=rid, dest_id=rid, prg_index=3).encode(), "PRG response")
    # a page request / ATS Invalidate Completion with another message routing than its own (pcie §1.5):
    # malformed, dropped (not queued, not counted)
    for code, good in ((0x04, T.PageRequest(requester_id=rid, address=m.va, prg_index=1, l=1, r=1, pasid=2)),
                       (0x02, T.AtsInvalidateCompletion(requester_id=rid, dest_id=0, itag_vector=1, cc=1))):
        for byte0 in (0x30, 0x32, 0x33, 0x34):
            data = bytearray(good.encode())
            first = 4 if good.pasid is not None else 0     # past the PASID prefix
            if data[first] == byte0:
                continue
            data[first] = byte0
            await env.send(bytes(data), f"message code {code:#04x} routed with byte 0 {byte0:#04x}")
    await normal(20)
    await env.quiesce()

    # payload longer / shorter than Length (in one beat and over several): to a mapped page, to one that
    # faults in the walk, and from a device without a root entry (faults in the context lookup)
    for who, va in ((rid, m.va), (rid, 0x7780_0000), (stranger | 0x11, m.va)):
        for n in (16, 96):
            good = T.MemWrite(requester_id=who, address=va + 0x100, data=rng.randbytes(n),
                              last_be=0xF).encode()
            await env.send(good + rng.randbytes(4), f"MWr of {n} bytes with 4 bytes more than Length")
            await env.send(good[:-4], f"MWr of {n} bytes with 4 bytes less than Length")
    await normal()
    await env.quiesce()

    for rnd in range(6):
        for _ in range(12):
            t = random_tlp(rng, 32)
            t.requester_id = stranger | rng.getrandbits(8)
            data = t.encode()
            bad = mutate(rng, data) if rng.random() < 0.7 else data
            if acceptable_mutation(bad) and acceptable_mutation(data):
                await env.send(bad, "random / mutated TLP")
        await normal()
        await env.quiesce()


# ================================================================================================
# Random
# ================================================================================================

class RandomWorld:
    """Several devices and PASIDs on random 4/5-level address spaces with mixed page sizes and rights;
    a device without a root entry, one with DTE=0, unbound PASIDs; and the CPU's changes between
    batches (protect, unmap/map, page aging)."""

    def __init__(self, env: IommuEnv):
        self.env = env
        rng = self.rng = env.rng
        self.spaces: list[Space] = []
        for _ in range(4):
            sp = env.new_space(rng.choice((4, 5)))
            self.spaces.append(sp)
            for _ in range(rng.randint(6, 12)):
                self.add_page(sp, K4)
            for _ in range(rng.randint(1, 3)):
                self.add_page(sp, M2)
            if rng.random() < 0.5:
                self.add_page(sp, G1)
        self.devices: dict[int, dict] = {}  # rid -> {None: space, pasid: space, ...}
        self.rid_pasid: dict[int, int] = {}  # rid -> its RID_PASID (the PASID of requests without one)
        # one PASID-entry programming per (space, PASID): devices sharing a DID and PASID share IOTLB
        # entries, which the spec allows only for the same translation
        attrs: dict[tuple[int, int], dict] = {}

        def attr(sp: Space, pasid: int) -> dict:
            return attrs.setdefault((sp.did, pasid), dict(sre=rng.getrandbits(1), wpe=rng.getrandbits(1)))
        rids = [0x0008, 0x0100, 0x01A3, 0x3F80, 0x0101]
        for k, rid in enumerate(rids):
            rid_pasid = rng.choice((0, 0, 1, 0x55))
            env.device(rid, rid_pasid=rid_pasid, dte=int(k != 4), pre=int(k != 4))
            sp = rng.choice(self.spaces)
            env.bind(rid, rid_pasid, sp, **attr(sp, rid_pasid))
            self.rid_pasid[rid] = rid_pasid
            b = {None: sp}
            for _ in range(rng.randint(1, 3)):
                pasid = rng.choice((rng.randrange(2, 64), rng.randrange(64, 1 << 20)))
                if pasid == rid_pasid or pasid in b:
                    continue
                sp = rng.choice(self.spaces)
                env.bind(rid, pasid, sp, **attr(sp, pasid))
                b[pasid] = sp
            self.devices[rid] = b
        self.stranger = 0x7700   # no root entry for bus 0x77
        self.changes = 0
    def add_page(self, sp: Space, size: int) -> None:
        rng, bits = self.rng, 48 if sp.levels == 4 else 57
        for _ in range(20):
            va = rng.getrandbits(bits - 1) & ~(size - 1)
            if rng.random() < 0.3:
                va |= ((1 << 64) - 1) ^ ((1 << (bits - 1)) - 1)  # upper half
            if rng.random() < 0.2:
                va &= 0xFFFF_F000 & ~(size - 1)                   # below 4 GiB: 3DW
            try:
                self.env.map(sp, va, size, write=rng.random() < 0.75, user=rng.random() < 0.8,
                             hot=1 if size == K4 else 3)
                return
            except ValueError:
                continue  # overlaps, or the 1 GiB region crosses the canonical hole

    def change(self) -> list[tuple[Space, Mapping, bool]]:
        """CPU changes at a quiescent point (the caller invalidates afterwards); returns the mappings
        whose translation changed, with their space and whether entries above the leaf changed too
        (page aging clears A in every level of the walk, entries other pages share)."""
        rng = self.rng
        sp = rng.choice(self.spaces)
        what = rng.choice(("protect", "remap", "age", "age"))
        self.changes += 1
        if what == "protect" and sp.maps:
            m = rng.choice(sp.maps)
            sp.mm.protect(m.va, m.size, write=rng.random() < 0.6, user=rng.random() < 0.7)
            m.write, m.user = sp.mm.lookup(m.va).write, sp.mm.lookup(m.va).user
            return [(sp, m, False)]
        if what == "remap" and len(sp.maps) > 3:
            m = rng.choice([m for m in sp.maps if m.size != G1] or sp.maps)
            sp.mm.unmap(m.va, m.size)
            sp.maps.remove(m)
            sp.hot = [h for h in sp.hot if h[2] is not m]
            self.add_page(sp, rng.choice((K4, K4, M2)))
            return [(sp, m, False)]
        aged = rng.sample(sp.maps, max(1, len(sp.maps) // 3))
        for m in aged:
            for _, slot, e in sp.mm.walk(m.va):
                self.env.ref.write64(slot, e.raw & ~AD_CLEAR)
        return [(sp, m, True) for m in aged]

    def pasids_of(self, sp: Space) -> set[int]:
        """Every PASID some device reaches ``sp`` with (RID_PASID for requests without one)."""
        return {self.rid_pasid[rid] if p is None else p
                for rid, b in self.devices.items() for p, s in b.items() if s is sp}

    def iq_invalidation(self, changed: list[tuple[Space, Mapping, bool]], iq: InvQueue) -> list:
        """The invalidation descriptors software could issue for ``changed`` (vtd §4.3; first-stage
        entries: a page-selective iotlb_inv_dsc drops the whole domain), at a random scope, then a
        wait. A change above the leaf (an A bit cleared in an upper level) is invalidated for the whole
        PASID even at page scope: otherwise the DUT may still hit a cached page under that entry where
        the model walks again and sets A, both legal, and the memories would differ."""
        rng = self.rng
        scope = rng.choice(("global", "domain", "domain-page", "pasid", "page", "page"))
        descs: list = []
        if scope == "global":
            descs.append(IotlbInvDesc(g=0b01))
        for sp, m, upper in changed if scope != "global" else []:
            if scope == "domain":
                descs.append(IotlbInvDesc(g=0b10, did=sp.did))
            elif scope == "domain-page":
                descs.append(IotlbInvDesc(g=0b11, did=sp.did, addr=m.va >> 12, am=0))
            for pasid in sorted(self.pasids_of(sp)) if scope in ("pasid", "page") else []:
                if scope == "pasid" or upper:
                    descs.append(PIotlbInvDesc(g=0b10, did=sp.did, pasid=pasid))
                else:
                    am = (m.size // K4).bit_length() - 1
                    descs.append(PIotlbInvDesc(g=0b11, did=sp.did, pasid=pasid, addr=(m.va >> 12) & (1 << 52) - 1,
                                               am=am))
        self.env.log.debug("invalidation through the queue, scope %s: %d descriptors", scope, len(descs))
        return descs[:100] + [iq.wait(if_=rng.getrandbits(1), fn=rng.getrandbits(1))]

    async def request(self) -> None:
        env, rng = self.env, self.rng
        rid = rng.choice(list(self.devices))
        b = self.devices[rid]
        pasid = rng.choice([p for p in b if p is not None] or [None]) if rng.random() < 0.6 else None
        pmr = int(pasid is not None and rng.random() < 0.3)
        sp = b[pasid]
        r = rng.random()
        if r < 0.9:
            va = rng.choice(sp.hot)[0]
        elif r < 0.94:
            va = rng.getrandbits(47) & ~0xFFF                    # most likely not mapped
        elif r < 0.96:
            va = 0x0200_0000_0000_0000 | rng.getrandbits(40) << 12   # not canonical
        elif r < 0.98:
            pasid, pmr = rng.randrange(1 << 20), 0               # not bound (or bound elsewhere)
            va = rng.choice(sp.hot)[0]
        else:
            rid = self.stranger | rng.getrandbits(8)
            va = rng.choice(sp.hot)[0]
        kind = rng.choices(("read", "write", "ats", "translated"), (45, 35, 15, 5))[0]
        if kind == "translated":
            pa = rng.choice(rng.choice(self.spaces).hot)[1]      # a filled page, as the ATC would know it
            if rng.random() < 0.8:
                pasid = None
            await (read if rng.random() < 0.5 else write)(env, rid, pa, pasid, pmr, at=T.AT_TRANSLATED)
        elif kind == "read":
            await read(env, rid, va, pasid, pmr)
        elif kind == "write":
            await write(env, rid, va, pasid, pmr)
        else:
            await ats(env, rid, va, pasid, pmr)

@iommu_test()
async def iommu_random(env: IommuEnv):
    """Random traffic (COUNT requests, default 1500) in batches; between batches a quiescent point
    (memory, fault records and every register compared), sometimes CPU changes to the tables followed
    by an invalidation (the global one, or descriptors through the invalidation queue at a random
    scope: global, domain, PASID, page with AM, and a wait), the fault event re-programmed, or other
    back-pressure."""
    rng = env.rng
    world = RandomWorld(env)
    await env.invalidate()
    iq = InvQueue(env)
    await iq.start()
    msi = env.data_pages(K4)
    await env.fault_event(msi, 0x0A0A, masked=rng.random() < 0.3)
    total = count(1500)
    done = iq_invalidations = 0
    while done < total:
        n = min(total - done, rng.randint(10, 80))
        for _ in range(n):
            await world.request()
        done += n
        await env.quiesce()
        env.log.info("random: %d/%d requests settled, cycle %d", done, total, env.cycles())
        if rng.random() < 0.3:
            changed = [c for _ in range(rng.randint(1, 3)) for c in world.change()]
            if rng.random() < 0.6:   # through the invalidation queue, at a random scope
                await iq.submit(*world.iq_invalidation(changed, iq))
                await env.quiesce(registers=False)   # software waits for the wait descriptor's status
                iq_invalidations += 1
            else:                    # the global invalidation (SRTP)
                await env.invalidate()
        if rng.random() < 0.1:
            await env.fault_event(msi + 4 * rng.randrange(16), rng.getrandbits(16), masked=rng.random() < 0.3)
        if rng.random() < 0.1:
            busy = rng.choice((0.0, 0.1, 0.3, 0.6))
            env.set_busy(busy)
            env.knobs.busy = busy
    env.log.info("random: %d requests, %d CPU changes, %d invalidations through the queue", done, world.changes,
                 iq_invalidations)
    await ClockCycles(env.dut.clk_i, 10)


@iommu_test()
async def iommu_page_requests(env: IommuEnv):
    """Page requests through the whole IOMMU into the PRQ (vtd §5.2; the RTL block is rtl/prq.sv): with
    and without PASID, last/not-last in a group, stop markers, a device without a context entry (fault
    record + automatic Invalid Request), the page-request event MSI (PECTL/PEDATA/PEADDR); then a queue
    of one page with software that drains it late: full (PRO, automatic Success for the last request of a
    group, the rest dropped), overflow while PRO stays set, and recovery once software clears PRO. Every
    descriptor, response TLP, PQT/PRS value and MSI is scored against the model."""
    sp = env.new_space(4)
    env.map(sp, 0x4000_0000, K4)
    rids = (0x0300, 0x0301)
    for rid in rids:
        env.device(rid)
        env.bind(rid, 9, sp)
    await env.invalidate()
    queue = env.data_pages(K4)                      # PQS=0: one page, 128 descriptors
    msi = env.data_pages(K4) | 0x80
    await env.reg_write("PEDATA", 0x55AA)
    await env.reg_write("PEADDR", msi)
    await env.reg_write("PEUADDR", 0)
    await env.reg_write("PQA", queue)
    await env.reg_write("PQH", 0)
    await env.reg_write("PQT", 0)
    await env.reg_write("PECTL", 0)
    rng = env.rng

    def request(rid: int, pasid: int | None, last: int, prgi: int, r: int = 1, w: int = 0) -> bytes:
        return T.PageRequest(requester_id=rid, address=0x4000_0000 + K4 * rng.randrange(64), prg_index=prgi,
                             l=last, r=r, w=w, pasid=pasid, pmr=0).encode()

    async def drain():
        """Software consumes every queued descriptor and clears PPR/PRO (the model's view first)."""
        await env.quiesce()
        await env.reg_write("PQH", env.model.reg("PQT"))
        await env.reg_write("PRS", env.model.reg("PRS"))

    for i in range(24):
        rid = rng.choice(rids)
        await env.send(request(rid, rng.choice([9, None]), rng.getrandbits(1), i % 512), "page request")
    await env.send(T.PageRequest(requester_id=rids[0], address=0, prg_index=7, l=1, r=0, w=0, pasid=9).encode(),
                   "stop marker")
    await env.send(request(0x0A00, 9, 1, 3), "page request from a device without a context entry")
    await drain()

    # a full queue and an overflowing one: 140 requests into 128 slots (127 usable)
    for i in range(140):
        await env.send(request(rids[i % 2], 9, rng.getrandbits(1), i % 512), "page request (filling)")
    await env.quiesce()
    for i in range(6):
        await env.send(request(rids[0], 9, 1, i), "page request while PRO is set")
    await drain()
    for i in range(6):
        await env.send(request(rids[1], None, 1, 100 + i), "page request after software drained the queue")


class InvQueue:
    """Software's side of the invalidation queue (vtd §1.10, §4): one 4 KiB queue of 256-bit
    descriptors; ``submit`` writes descriptors at the tail (CPU writes: both memories) and moves IQT,
    which the model acts on at once and the DUT when it fetches."""

    def __init__(self, env: IommuEnv):
        self.env = env
        self.base = env.data_pages(K4)
        self.status = env.data_pages(K4)     # status words of wait descriptors
        self.tail = 0
        self.serial = 0

    async def start(self) -> None:
        env = self.env
        msi = env.data_pages(K4)
        for name, value in (("FEDATA", 0x4455), ("FEADDR", msi | 0x40), ("FECTL", 0),
                            ("IEDATA", 0x6677), ("IEADDR", msi | 0x80), ("IECTL", 0),
                            ("IQA", self.base | 1 << REGISTERS["IQA"].field("dw").lo), ("IQT", 0)):
            await env.reg_write(name, value)
        await env.gcmd("qie")

    def put(self, *descs) -> None:
        for d in descs:
            self.env.ref.write(self.base + self.tail, d.to_bytes())
            self.tail = (self.tail + 32) % K4

    async def submit(self, *descs) -> None:
        self.put(*descs)
        await self.env.reg_write("IQT", self.tail)

    def wait(self, **fields) -> InvWaitDesc:
        """An inv_wait_dsc with a status write (SW=1) to a fresh word, unless ``fields`` say otherwise."""
        self.serial += 1
        fields = {"sw": 1, "status_data": 0x1000 + self.serial,
                  "status_addr": (self.status + 4 * (self.serial % 1024)) >> 2, **fields}
        return InvWaitDesc(**fields)


@iommu_test()
async def iommu_inv_queue(env: IommuEnv):
    """The invalidation queue through the whole IOMMU (rtl/inv_queue.sv in iommu_top): every descriptor
    type scalable mode uses, and each cache command proven by a translation that changed in memory and
    must not be served from the cache after the wait (the model walks afresh, so a stale hit is a
    mismatch): page-selective and PASID-selective PASID-based IOTLB invalidation, PASID-cache
    invalidation after a PASID entry moved to another address space, context-cache invalidation of one
    device; device-TLB invalidations (with and without PASID) whose wait completes only once the
    devices answered (ITags from the model), the invalidation-completion MSI (IWC), page group
    responses with and without PASID, a bad descriptor (IQE, IQERCD, fault MSI) fixed by software, and
    a bogus ATS Invalidate Completion (ICE)."""
    sp, sp2 = env.new_space(4), env.new_space(4)
    va = 0x5000_0000
    for k in range(3):
        env.map(sp, va + k * K4, K4, hot=1)
        env.map(sp2, va + k * K4, K4, hot=1)
    a, b = 0x0100, 0x0208
    env.device(a)
    env.device(b)
    env.bind(a, 7, sp)
    env.bind(b, 7, sp)
    env.bind(b, 9, sp2)
    await env.invalidate()
    iq = InvQueue(env)
    await iq.start()

    async def touch(rid: int, pasid: int, pages=range(3)) -> None:
        for k in pages:
            await env.mrd(rid, va + k * K4 + 0x40, 4, pasid=pasid)
        await env.quiesce(registers=False)

    # fill the IOTLB, unmap one page: a page-selective p_iotlb_inv_dsc + wait, then the page faults
    await touch(a, 7)
    await touch(b, 7)
    sp.mm.unmap(va + K4)
    await iq.submit(PIotlbInvDesc(g=0b11, did=sp.did, pasid=7, addr=(va + K4) >> 12, am=0), iq.wait())
    await env.quiesce()
    await touch(a, 7)
    # a 2-page range (AM=1) for PASID 7 only: PASID 9 of b keeps its own translations
    sp.mm.unmap(va)
    sp.mm.unmap(va + 2 * K4)
    env.map(sp, va, K4, hot=1)
    await touch(b, 9)
    await iq.submit(PIotlbInvDesc(g=0b11, did=sp.did, pasid=7, addr=va >> 12, am=1),
                    PIotlbInvDesc(g=0b11, did=sp.did, pasid=7, addr=(va + 2 * K4) >> 12, am=0),
                    iq.wait(if_=1))
    await env.quiesce()
    await touch(a, 7)
    await touch(b, 9)

    # the PASID entry of (a, 7) moves to sp2: PASID-cache + PASID-selective IOTLB invalidation
    env.bind(a, 7, sp2)
    await iq.submit(PcInvDesc(g=0b01, did=sp.did, pasid=7), PIotlbInvDesc(g=0b10, did=sp.did, pasid=7),
                    iq.wait(fn=1))
    await env.quiesce()
    await touch(a, 7)
    # device b loses its context entry: context-cache invalidation of b (device-selective), then the
    # PASID cache and IOTLB globally, as software must after a context entry change (vtd §4.3)
    env.device(b, p=0)
    await iq.submit(CcInvDesc(g=0b11, sid=b, fm=0), PcInvDesc(g=0b11), IotlbInvDesc(g=0b01), iq.wait())
    await env.quiesce()
    await touch(b, 7, pages=[0])
    env.device(b)
    env.bind(b, 7, sp)
    env.bind(b, 9, sp2)
    await iq.submit(CcInvDesc(g=0b01), PcInvDesc(g=0b11), IotlbInvDesc(g=0b01), iq.wait())
    await env.quiesce()

    # device-TLB invalidations: the wait behind them completes only when both devices answered
    await iq.submit(DevTlbInvDesc(sid=a, addr=va >> 12, s=0),
                    PDevTlbInvDesc(sid=b, pasid=9, addr=(va | 0x1000) >> 12, s=1, gi=0),
                    iq.wait(if_=1))
    await env.quiesce()
    pending = env.model.iq.outstanding
    if len(pending) != 2:
        raise AssertionError(f"testbench: expected 2 device-TLB invalidations outstanding, model has {pending}")
    status_words = env.sb.bytes_matched
    for itag, sid in sorted(pending.items()):
        await env.send(T.AtsInvalidateCompletion(requester_id=sid, dest_id=0, itag_vector=1 << itag, cc=1).encode(),
                       f"ATS Invalidate Completion ITag {itag}")
        await env.quiesce(registers=False)
    if env.sb.bytes_matched <= status_words:
        raise AssertionError("testbench: the wait's status write and MSI were not scored after the completions")
    # a completion nobody asked for: ICE (and IQERCD.ICESID, a fault event)
    await env.send(T.AtsInvalidateCompletion(requester_id=a, dest_id=0, itag_vector=1 << 5, cc=1).encode(),
                   "bogus ATS Invalidate Completion")
    await env.quiesce()
    await env.reg_write("FSTS", 1 << REGISTERS["FSTS"].field("ice").lo)

    # page group responses (with PASID: the prefix; without: none), every response code
    await iq.submit(PageGroupResponseDescriptor(pp=1, rc=0, rid=a, pasid=7, prgi=5),
                    PageGroupResponseDescriptor(pp=0, rc=1, rid=b, prgi=0x1FF),
                    PageGroupResponseDescriptor(pp=1, rc=0xF, rid=b, pasid=9, prgi=3), iq.wait())
    await env.quiesce()

    # a bad descriptor: IQE, IQH stays on it; software rewrites the slot and clears IQE
    slot = iq.tail
    bad = InvWaitDesc(sw=1, status_data=1, status_addr=iq.status >> 2)
    raw = bytearray(bad.to_bytes())
    raw[0] = (raw[0] & 0xF0) | 0xF                          # type 0x0F: no such descriptor
    env.ref.write(iq.base + slot, bytes(raw))
    iq.tail = (iq.tail + 32) % K4
    await iq.submit(iq.wait())
    await env.quiesce()
    if not env.model.field("FSTS", "iqe"):
        raise AssertionError("testbench: the model did not set IQE for a descriptor of type 0x0F")
    env.ref.write(iq.base + slot, iq.wait().to_bytes())
    await env.reg_write("FSTS", 1 << REGISTERS["FSTS"].field("iqe").lo)
    await env.quiesce()


@iommu_test(busy=0.0, latency=(30, 60))
async def iommu_inv_drain(env: IommuEnv):
    """A wait descriptor completes only after every request received before it has finished with
    memory (vtd.md §4.3): long reads are in flight on the DMA port, software writes IQT (during the
    traffic, which is deterministic here: a wait alone changes no translation), and at the status
    write's AW handshake no DMA read burst may be outstanding. No back-pressure in this test, so the
    status write is not held up behind reads that came after the drain. Also: page requests received
    before a PD=1 wait are in the PRQ before its status write."""
    sp = env.new_space(4)
    va = 0x6000_0000
    env.map(sp, va, M2, hot=8)
    rid = 0x0100
    env.device(rid)
    env.bind(rid, 3, sp)
    await env.invalidate()
    iq = InvQueue(env)
    await iq.start()
    dut = env.dut
    state = {"outstanding": 0, "at_iqt": [], "checked": 0}
    status_words = set()

    async def monitor():
        while True:
            await RisingEdge(dut.clk_i)
            if dut.m_axi_dma_arvalid.value and dut.m_axi_dma_arready.value:
                state["outstanding"] += 1
            if dut.m_axi_dma_rvalid.value and dut.m_axi_dma_rready.value and dut.m_axi_dma_rlast.value:
                state["outstanding"] -= 1
            if (dut.m_axi_tbl_awvalid.value and dut.m_axi_tbl_awready.value
                    and int(dut.m_axi_tbl_awaddr.value) in status_words):
                state["checked"] += 1
                if state["outstanding"]:
                    env.sb.fail("a wait's status write left while DMA reads received before it were still "
                                f"reading memory ({state['outstanding']} bursts)", None, 0, state["outstanding"])

    mon = cocotb.start_soon(monitor())
    for rounds in range(count(6)):
        w = iq.wait(pd=rounds % 2)
        status_words.add(w.status_address)
        iq.put(w)                                   # the descriptor is written while all is quiet
        for _ in range(12):
            n = env.rng.choice([16, 64, 256, 1008])
            k = env.rng.randrange((K4 - 4 * n) // 64 + 1)
            await env.mrd(rid, env.rng.choice(sp.hot)[0] + 64 * k, n, pasid=3)
        await ClockCycles(dut.clk_i, env.rng.randint(0, 40))
        # the IQT write while the reads are in flight (what env.reg_write does, without its quiet check)
        state["at_iqt"].append(state["outstanding"])
        off = REGISTERS["IQT"].offset
        with env._model(env._origin_for(f"IQT = {iq.tail:#x} during traffic")):
            env.model.reg_write(off, iq.tail, 4)
        await env.axil.write(off, iq.tail.to_bytes(4, "little"))
        await env.quiesce(registers=False)
        env.sb.check()
    mon.cancel()
    if state["checked"] != count(6) or not any(state["at_iqt"]):
        raise AssertionError(f"testbench: {state['checked']} status writes seen, reads in flight at the IQT "
                             f"writes {state['at_iqt']}: the drain was never exercised")
