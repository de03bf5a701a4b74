"""Tests of the golden IOMMU (models/iommu.py) against vtd.md §1-§3, §6 and pcie.md §1-§3.

Tables are real: ``models.host.Mm`` builds the first-stage tables, ``tests/models/iommu_env.py``
writes root/context/PASID structures with the ``models.vtd`` classes. Expected translations come from
``Mm.lookup()`` (a record kept in Python, never read back from the tables) or from constants in the
test; expected fault order from the documented decisions of the module.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import models.iommu as iommu_mod
from models import tlp
from models.iommu import (
    FAULT_PRIORITY,
    INTERRUPT_BASE,
    Fault,
    Request,
    render_fault_priority,
)
from models.host import OverlapError
from models.paging import LEVEL_SHIFT, FsEntry, is_canonical, level_index
from models.vtd import (
    FAULT_INFO,
    PROFILE,
    REGISTERS,
    CcInvDesc,
    ContextEntry,
    FaultReason,
    FrcdAt,
    FrcdType,
    IotlbInvDesc,
    PageGroupResponseDescriptor,
    PageRequestDescriptor,
    PasidDirEntry,
    PasidEntry,
    PcInvDesc,
    PDevTlbInvDesc,
    Pgtt,
    PIotlbInvDesc,
    Response,
)
from tests.models.iommu_env import Env, off

R = FaultReason
RID = 0x0100  # bus 1, devfn 0x00: lower context table
PASID = 1
VA = 0x7F12_3456_7000
K4, M2, G1 = 1 << 12, 1 << 21, 1 << 30
ROW = {c.name: c for c in FAULT_PRIORITY}


def leaf_slot(mm, va: int) -> int:
    """Address of the last entry the real tables use for ``va`` (the leaf when mapped)."""
    return mm.walk(va)[-1][1]


def entry_at(env: Env, slot: int) -> FsEntry:
    return FsEntry(env.mem.read64(slot))


def mapped(levels: int = 4, size: int = K4, write: bool = True, user: bool = True, va: int = VA,
           profile=PROFILE, pa: int | None = None, context: dict | None = None, **pe):
    """An enabled IOMMU, one address space with one page at ``va``, bound to (RID, PASID)."""
    env = Env(profile)
    env.enable()
    mm = env.new_mm(levels)
    mm.map(va, size, pa=pa, write=write, user=user)
    env.bind(RID, PASID, mm, context=context, **pe)
    return env, mm


def frcd(env: Env, n: int) -> dict:
    r = REGISTERS[f"FRCD{n}"]
    lo = env.iommu.reg_read(r.offset, 8)
    hi = env.iommu.reg_read(r.offset + 8, 8)
    return r.unpack(hi << 64 | lo)


def fsts(env: Env) -> dict:
    return REGISTERS["FSTS"].unpack(env.rd("FSTS"))


# ================================================================================================
# Translation of random address spaces against the oracle
# ================================================================================================


def _random_address_space(rng: random.Random, mm, levels: int) -> None:
    width = 47 if levels == 4 else 56
    regions = [rng.randrange(0, 1 << (width - 30)) << 30 for _ in range(3)]
    regions += [(1 << 64) - (1 << width) + (rng.randrange(0, 1 << (width - 31)) << 30)]  # upper half
    for i in range(40):
        size = [K4, M2, G1][i] if i < 3 else rng.choices([K4, M2, G1], [6, 3, 1])[0]
        base = rng.choice(regions) + rng.randrange(0, 4 * G1, size)
        pa = rng.randrange(1 << 33, 1 << 46, size)  # explicit frames: nothing to allocate or zero
        try:  # the first three are user read-write pages, one of each size
            mm.map(base, size, pa=pa, write=i < 3 or rng.random() < 0.6, user=i < 3 or rng.random() < 0.7)
        except OverlapError:  # an earlier page is in the way: skip this one
            pass


@pytest.mark.parametrize("seed,levels", [(11, 4), (12, 5), (13, 4), (14, 5)])
def test_random_address_spaces_match_the_oracle(seed, levels):
    rng = random.Random(seed)
    env = Env()
    env.enable()
    mm = env.new_mm(levels)
    _random_address_space(rng, mm, levels)
    wpe = rng.randrange(2)
    env.bind(RID, PASID, mm, sre=1, wpe=wpe)
    maps = mm.mappings()
    written = set()
    seen = set()  # (fault, page size) combinations met, to show the run covered the cases
    for i in range(400):
        if i < 2 * len(maps):  # every page twice first, then at random
            m = maps[i // 2]
            va = m.va + rng.randrange(0, m.size, 4)
        elif rng.random() < 0.8:
            m = rng.choice(maps)
            va = m.va + rng.randrange(0, m.size, 4)
        else:
            va = rng.choice(maps).va + rng.choice([-K4, K4, M2, G1, 513 * G1])
            va %= 1 << 64
        kind = rng.choice(["read", "write"])
        sup = rng.random() < 0.3
        t = env.translate(kind, RID, va, PASID, pmr=int(sup))
        where = f"seed {seed} step {i}: {kind} {'supervisor' if sup else 'user'} at {va:#x}"
        if not is_canonical(va, levels):
            assert t.fault == R.SGN_1, where
            continue
        m = mm.lookup(va)
        # vtd §3.3: users need U/S (and R/W to write); supervisors need R/W to write only with WPE=1
        if m is None:
            expected = R.SFS_2
        elif not sup and not m.user:
            expected = R.SGN_2
        elif kind == "write" and not m.write and (wpe or not sup):
            expected = R.SGN_6
        else:
            expected = None
        assert t.fault == expected, f"{where}: got {t.fault!r}, mapping {m}"
        seen.add((expected, None if m is None else m.size))
        assert t.legal_alternatives == (), f"{where}: nothing changed, so nothing can be stale"
        if expected is None:
            assert t.address == m.translate(va), where
            assert (t.page.iova, t.page.size) == (m.va, m.size), where
            assert mm.accessed(va), where
            if kind == "write":
                written.add(m.va)
                assert mm.dirty(va), where
    for m in maps:
        if m.va not in written:
            assert not mm.dirty(m.va), f"seed {seed}: D set on {m} that was never written"
    assert {f for f, _ in seen} == {None, R.SFS_2, R.SGN_2, R.SGN_6}, f"seed {seed}: {seen}"
    assert {size for f, size in seen if f is None} == {K4, M2, G1}, f"seed {seed}: {seen}"


def test_the_same_translation_from_a_cached_walk_and_from_memory():
    env, mm = mapped()
    first = env.translate("read", RID, VA + 8, PASID)
    again = env.translate("read", RID, VA + 8, PASID)
    assert first.outcome() == again.outcome() and again.legal_alternatives == ()
    assert again.ad_updates == ()  # A already set: a second walk writes nothing


# ================================================================================================
# Every row of the fault priority table, reached by a directed setup
# ================================================================================================


def _fault_setups():
    """Row name -> function returning (env, request); the request must fault at that row."""
    s = {}

    def row(name):
        def deco(f):
            s[name] = f
            return f
        return deco

    def ttm(value, profile=PROFILE):
        env, mm = mapped(profile=profile)
        env.wr("RTADDR", env.root | value << 10)
        env.gcmd("srtp")
        return env

    row("ttm_reserved")(lambda: (ttm(0b10), Request("read", RID, VA, PASID)))
    row("ttm_legacy_with_pasid")(lambda: (ttm(0b00), Request("read", RID, VA, PASID)))
    row("ttm_legacy_page_request")(lambda: (ttm(0b00), Request("page_request", RID, VA)))
    row("ttm_abort")(lambda: (ttm(0b11, dataclasses.replace(PROFILE, adms=1)),
                              Request("read", RID, VA, PASID)))
    row("ttm_legacy")(lambda: (ttm(0b00), Request("read", RID, VA)))

    @row("pasid_too_wide")
    def _():
        env, _ = mapped(profile=dataclasses.replace(PROFILE, pss=7))
        return env, Request("read", RID, VA, 0x100)

    @row("execute_requested")
    def _():
        return mapped()[0], Request("read", RID, VA, PASID, er=1)

    @row("root_read")
    def _():
        env, _ = mapped()
        env.mem.fail_reads(env.root_entry_address(RID >> 8), 16)
        return env, Request("read", RID, VA, PASID)

    @row("root_not_present")
    def _():
        return mapped()[0], Request("read", 0x0200, VA, PASID)  # nothing programmed for bus 2

    @row("root_reserved")
    def _():
        env, _ = mapped()
        slot = env.root_entry_address(RID >> 8)
        env.mem.write64(slot, env.mem.read64(slot) | 1 << 1)
        return env, Request("read", RID, VA, PASID)

    @row("context_read")
    def _():
        env, _ = mapped()
        env.mem.fail_reads(env.context_address(RID), 32)
        return env, Request("read", RID, VA, PASID)

    def ctx(**changes):
        env, _ = mapped()
        env.write_struct(env.context_address(RID), env.context_entry(RID).copy(**changes))
        return env

    row("context_not_present")(lambda: (ctx(p=0), Request("read", RID, VA, PASID)))

    @row("context_reserved")
    def _():
        env, _ = mapped()
        env.write_struct(env.context_address(RID), ContextEntry(env.context_entry(RID).raw | 1 << 7))
        return env, Request("read", RID, VA, PASID)

    row("context_invalid")(lambda: (ctx(dte=0, pre=1), Request("read", RID, VA, PASID)))
    row("dte_disabled")(lambda: (ctx(dte=0, pre=0), Request("translation", RID, VA, PASID)))
    row("paside_disabled")(lambda: (ctx(paside=0), Request("read", RID, VA, PASID)))
    row("pasid_above_pdts")(lambda: (ctx(pdts=0), Request("read", RID, VA, 1 << 13)))
    row("pre_disabled")(lambda: (ctx(pre=0), Request("page_request", RID, VA, PASID)))
    row("rid_pasid_used")(lambda: (ctx(rid_pasid=PASID), Request("read", RID, VA, PASID)))
    row("eptr_disabled")(lambda: (ctx(), Request("read", RID, VA, PASID, at=FrcdAt.TRANSLATED)))

    @row("dir_read")
    def _():
        env, _ = mapped()
        env.mem.fail_reads(env.dir_entry_address(RID, PASID), 8)
        return env, Request("read", RID, VA, PASID)

    def dir_entry(**changes):
        env, _ = mapped()
        slot = env.dir_entry_address(RID, PASID)
        env.write_struct(slot, PasidDirEntry(env.mem.read64(slot)).copy(**changes))
        return env

    row("dir_not_present")(lambda: (dir_entry(p=0), Request("read", RID, VA, PASID)))

    @row("dir_reserved")
    def _():
        env, _ = mapped()
        slot = env.dir_entry_address(RID, PASID)
        env.mem.write64(slot, env.mem.read64(slot) | 1 << 2)
        return env, Request("read", RID, VA, PASID)

    @row("pasid_read")
    def _():
        env, _ = mapped()
        env.mem.fail_reads(env.pasid_entry_address(RID, PASID), 64)
        return env, Request("read", RID, VA, PASID)

    def pe(profile=PROFILE, **changes):
        env, _ = mapped(profile=profile)
        env.write_struct(env.pasid_entry_address(RID, PASID), env.pasid_entry(RID, PASID).copy(**changes))
        return env

    row("pasid_not_present")(lambda: (pe(p=0), Request("read", RID, VA, PASID)))

    @row("pasid_reserved")
    def _():
        env, _ = mapped()
        slot = env.pasid_entry_address(RID, PASID)
        env.write_struct(slot, PasidEntry(env.pasid_entry(RID, PASID).raw | 1 << 10))
        return env, Request("read", RID, VA, PASID)

    row("pasid_invalid")(lambda: (pe(pgtt=Pgtt.SECOND_STAGE), Request("read", RID, VA, PASID)))
    row("execute_requested_spt5")(lambda: (mapped(profile=dataclasses.replace(PROFILE, ver_max=7))[0],
                                           Request("read", RID, VA, PASID, er=1)))
    row("supervisor_disabled")(lambda: (mapped()[0], Request("read", RID, VA, PASID, pmr=1)))
    row("non_canonical")(lambda: (mapped()[0], Request("read", RID, 1 << 47, PASID)))

    @row("fs_root_read")
    def _():
        env, mm = mapped()
        env.mem.fail_reads(mm.walk(VA)[0][1], 8)
        return env, Request("read", RID, VA, PASID)

    @row("fs_read")
    def _():
        env, mm = mapped()
        env.mem.fail_reads(leaf_slot(mm, VA), 8)
        return env, Request("read", RID, VA, PASID)

    row("fs_not_present")(lambda: (mapped()[0], Request("read", RID, VA + K4, PASID)))

    @row("fs_reserved")
    def _():
        env, mm = mapped()
        slot = leaf_slot(mm, VA)
        env.mem.write64(slot, env.mem.read64(slot) | 1 << 51)  # address bit 51 >= HAW (48)
        return env, Request("read", RID, VA, PASID)

    row("table_not_snooped")(lambda: (mapped(pwsnp=0)[0], Request("read", RID, VA, PASID)))

    @row("table_ad_update")
    def _():
        env, mm = mapped()
        env.mem.bad_cmpxchg.add(mm.walk(VA)[0][1])
        return env, Request("read", RID, VA, PASID)

    row("output_above_haw")(lambda: (mapped()[0], Request("read", RID, 1 << 48, at=FrcdAt.TRANSLATED)))
    row("output_interrupt_range")(lambda: (mapped(pa=INTERRUPT_BASE)[0], Request("read", RID, VA, PASID)))
    row("user_denied")(lambda: (mapped(user=False)[0], Request("read", RID, VA, PASID)))

    def warm_neighbour(**pe_fields):
        """Tables with A already set by an access to the neighbour page; VA itself untouched."""
        env, mm = mapped()
        mm.map(VA + K4)
        env.translate("read", RID, VA + K4, PASID)
        if pe_fields:
            _pe_raw(env, **pe_fields)
            env.iommu.caches.invalidate_all()
        return env, mm

    row("leaf_not_snooped")(lambda: (warm_neighbour(pwsnp=0)[0], Request("read", RID, VA, PASID)))

    @row("leaf_ad_update")
    def _():
        env, mm = warm_neighbour()
        env.mem.bad_cmpxchg.add(leaf_slot(mm, VA))
        return env, Request("read", RID, VA, PASID)

    row("write_denied")(lambda: (mapped(write=False)[0], Request("write", RID, VA, PASID)))
    return s


FAULT_SETUPS = _fault_setups()


def test_every_row_of_the_priority_table_has_a_directed_setup():
    assert list(FAULT_SETUPS) == [c.name for c in FAULT_PRIORITY]  # same rows, written in table order


def _fault_of(env: Env, req: Request) -> tuple[FaultReason, str]:
    if req.kind == "page_request":
        with pytest.raises(Fault) as info:
            env.iommu.lookup_pasid_entry(req.rid, req.pasid, req.kind)
        return info.value.reason, info.value.check
    t = env.iommu.translate(req)
    return t.fault, t.check


@pytest.mark.parametrize("name", list(FAULT_SETUPS))
def test_directed_fault(name):
    env, req = FAULT_SETUPS[name]()
    reason, check = _fault_of(env, req)
    assert (reason, check) == (ROW[name].reason, name)


def _tlp_for(req: Request):
    common = dict(requester_id=req.rid, address=req.addr, pasid=req.pasid, pmr=req.pmr, er=req.er)
    if req.kind == "write":
        return tlp.MemWrite(data=bytes(4), at=int(req.at), **common)
    length = 2 if req.kind == "translation" else 1
    return tlp.MemRead(tag=0x55, length=length, last_be=0xF if length > 1 else 0, at=int(req.at),
                       nw=req.nw, **common)


def _expect_response(env, req, reason, out):
    """The completion FAULT_INFO (vtd §6.1) prescribes for ``req`` and whether a record is due."""
    info = FAULT_INFO[reason]
    if req.kind == "write":
        assert out == []
        return True
    cpl = tlp.decode(out[0])
    if req.kind == "read":
        assert cpl.status == tlp.CPL_UR
        return True
    status = {Response.UR: tlp.CPL_UR, Response.CA: tlp.CPL_CA}.get(info.tr, tlp.CPL_SC)
    assert cpl.status == status, info
    if status == tlp.CPL_SC:
        (entry,) = cpl.translation_entries()
        assert (entry.r, entry.w) == ((0, 0) if info.tr == Response.S0 else (1, 0)), info
    return bool(info.tr_logged)


_PAGE_REQUEST_ROWS = ("ttm_legacy_page_request", "pre_disabled")  # no TLP response: the PRQ's business
_TRANSLATED_ROWS = ("eptr_disabled", "output_above_haw")  # set up with translated requests
_TLP_CASES = [(n, False) for n in ROW if n not in _PAGE_REQUEST_ROWS] + [
    (n, True) for n in ROW if n not in _PAGE_REQUEST_ROWS + _TRANSLATED_ROWS]


@pytest.mark.parametrize("name,as_translation_request", _TLP_CASES,
                         ids=[f"{n}-{'ats' if a else 'as-is'}" for n, a in _TLP_CASES])
def test_directed_fault_response_and_record(name, as_translation_request):
    env, req = FAULT_SETUPS[name]()
    if as_translation_request:
        assert req.at != FrcdAt.TRANSLATED
        req = Request("translation", req.rid, req.addr, req.pasid, req.pmr, req.er)
    reason = ROW[name].reason
    assert FAULT_SETUPS[name]()[0].iommu.translate(req).check == name  # the same row fires for this form
    out = env.iommu.receive_tlp(_tlp_for(req).encode())
    logged = _expect_response(env, req, reason, out)
    rec = frcd(env, 0)
    assert rec["f"] == int(logged)
    if logged:
        expected_type = FrcdType.WRITE if req.kind == "write" else FrcdType.READ
        got = tuple(rec[k] for k in ("fr", "sid", "at", "pp", "pv", "fi", "priv", "exe"))
        want = (reason, req.rid, req.at, int(req.has_pasid), req.pasid or 0, req.addr >> 12, req.pmr, req.er)
        assert got == want
        assert FrcdType.from_bits(rec["t1"], rec["t2"]) == expected_type


def test_the_fault_reasons_of_the_first_stage_and_table_path_are_all_reachable():
    """Every first-stage / table reason of vtd §6.1 this design can produce is a row (hence reached)."""
    reachable = {c.reason for c in FAULT_PRIORITY}
    # second stage, nested, HPT and interrupt-remapping-only reasons need capabilities we do not have
    impossible = {R.SPT_9, R.SFS_5, R.SFS_6, R.SFS_7, R.SFS_8, R.SSS_1, R.SSS_2, R.SSS_3, R.SSS_4, R.SSS_5,
                  R.SSS_6, R.SGN_5, R.SGN_7}
    assert reachable | impossible == set(FaultReason)


def test_the_docstring_renders_the_priority_table_in_order():
    doc = iommu_mod.__doc__
    positions = [doc.index(f"`{c.name}`") for c in FAULT_PRIORITY]
    assert positions == sorted(positions)
    assert render_fault_priority() in doc


# ================================================================================================
# Priority: two conditions at once
# ================================================================================================


def _pe_raw(env, **changes):
    env.write_struct(env.pasid_entry_address(RID, PASID), env.pasid_entry(RID, PASID).copy(**changes))


def _warm(env, mm, va=VA):
    """Map the neighbour page and touch it: every table entry above ``va`` has A set."""
    mm.map(va + K4)
    env.translate("read", RID, va + K4, PASID)


def _prio_context_absent_with_reserved():
    env, mm = mapped()
    env.write_struct(env.context_address(RID), ContextEntry(1 << 7))
    return env, Request("read", RID, VA, PASID)


def _prio_pasid_reserved_and_invalid():
    env, mm = mapped()
    bad = env.pasid_entry(RID, PASID).copy(pgtt=0).raw | 1 << 10
    env.write_struct(env.pasid_entry_address(RID, PASID), PasidEntry(bad))
    return env, Request("read", RID, VA, PASID)


def _prio_absent_pte_under_supervisor_pml4e():
    env, mm = mapped()
    top = mm.walk(VA)[0][1]
    env.mem.write64(top, env.mem.read64(top) & ~(1 << 2))  # U/S=0 at the top
    return env, Request("read", RID, VA + K4, PASID)  # a user request, PTE not present


def _prio_er_and_absent_context():
    env, mm = mapped()
    env.write_struct(env.context_address(RID), ContextEntry())
    return env, Request("read", RID, VA, PASID, er=1)


def _prio_absent_pasid_entry_and_non_canonical():
    env, mm = mapped()
    _pe_raw(env, p=0)
    return env, Request("read", RID, 1 << 47, PASID)


def _prio_absent_pte_with_reserved_bits():
    env, mm = mapped()
    env.mem.write64(leaf_slot(mm, VA), 1 << 51)
    return env, Request("read", RID, VA, PASID)


def _prio_dte_and_paside():
    env, mm = mapped(context=dict(dte=0, pre=0, paside=0))
    return env, Request("translation", RID, VA, PASID)


def _prio_interrupt_page_read_only():
    env, mm = mapped(pa=INTERRUPT_BASE, write=False)
    return env, Request("write", RID, VA, PASID)


def _prio_user_write_to_supervisor_read_only():
    env, mm = mapped(write=False, user=False)
    return env, Request("write", RID, VA, PASID)


def _prio_leaf_update_fails_on_denied_write():
    env, mm = mapped(write=False)
    _warm(env, mm)
    env.mem.bad_cmpxchg.add(leaf_slot(mm, VA))  # A is still needed in the leaf
    return env, Request("write", RID, VA, PASID)


def _prio_user_denied_before_leaf_update():
    env, mm = mapped(user=False)
    _warm(env, mm)
    env.mem.bad_cmpxchg.add(leaf_slot(mm, VA))
    return env, Request("read", RID, VA, PASID)


def _prio_ttm_and_root_read():
    env, mm = mapped()
    env.wr("RTADDR", env.root | 0b10 << 10)
    env.gcmd("srtp")
    env.mem.fail_reads(env.root_entry_address(RID >> 8), 16)
    return env, Request("read", RID, VA, PASID)


def _prio_pasid_width_and_paside():
    env, mm = mapped(profile=dataclasses.replace(PROFILE, pss=7), context=dict(paside=0))
    return env, Request("read", RID, VA, 0x100)


#: (row that must win, row whose condition also holds) -> setup. The winners follow the documented
#: decisions (module docstring), e.g. a not-present entry is never checked for reserved bits, rights
#: are checked at the leaf after the whole walk, output checks come before access checks.
PRIORITY_CASES = {
    ("context_not_present", "context_reserved"): _prio_context_absent_with_reserved,
    ("pasid_reserved", "pasid_invalid"): _prio_pasid_reserved_and_invalid,
    ("fs_not_present", "user_denied"): _prio_absent_pte_under_supervisor_pml4e,
    ("execute_requested", "context_not_present"): _prio_er_and_absent_context,
    ("pasid_not_present", "non_canonical"): _prio_absent_pasid_entry_and_non_canonical,
    ("fs_not_present", "fs_reserved"): _prio_absent_pte_with_reserved_bits,
    ("dte_disabled", "paside_disabled"): _prio_dte_and_paside,
    ("output_interrupt_range", "write_denied"): _prio_interrupt_page_read_only,
    ("user_denied", "write_denied"): _prio_user_write_to_supervisor_read_only,
    ("leaf_ad_update", "write_denied"): _prio_leaf_update_fails_on_denied_write,
    ("user_denied", "leaf_ad_update"): _prio_user_denied_before_leaf_update,
    ("ttm_reserved", "root_read"): _prio_ttm_and_root_read,
    ("pasid_too_wide", "paside_disabled"): _prio_pasid_width_and_paside,
}


@pytest.mark.parametrize("pair", list(PRIORITY_CASES), ids="-over-".join)
def test_two_conditions_at_once_the_table_order_wins(pair):
    expected, other = pair
    names = [c.name for c in FAULT_PRIORITY]
    assert names.index(expected) < names.index(other)  # the table says so ...
    env, req = PRIORITY_CASES[pair]()
    assert _fault_of(env, req) == (ROW[expected].reason, expected)  # ... and the walk does it


def test_supervisor_rights_and_wpe():
    """vtd §3.3: supervisor reads ignore U/S; supervisor writes need R/W only with WPE=1."""
    for wpe in (0, 1):
        env, mm = mapped(write=False, user=False, sre=1, wpe=wpe)
        assert env.translate("read", RID, VA, PASID, pmr=1).ok
        t = env.translate("write", RID, VA, PASID, pmr=1)
        assert t.fault == (R.SGN_6 if wpe else None)
        assert env.translate("read", RID, VA, PASID).fault == R.SGN_2  # the same page as a user


def test_requests_without_pasid_use_rid_pasid():
    env, mm = mapped(context=dict(rid_pasid=3))
    env.bind(RID, 3, mm)
    t = env.translate("read", RID, VA)
    assert t.ok and t.page.pasid == 3
    env.write_struct(env.pasid_entry_address(RID, 3), PasidEntry())
    env.iommu.caches.invalidate_all()
    assert env.translate("read", RID, VA).fault == R.SPT_2
    # without ECAP.RPS the RID_PASID field is ignored: PASID 0
    env2, mm2 = mapped(profile=dataclasses.replace(PROFILE, rps=0), context=dict(rid_pasid=3))
    env2.bind(RID, 0, mm2)
    assert env2.translate("read", RID, VA).page.pasid == 0


def test_lookup_pasid_entry_reports_the_entry_and_fpd():
    env, mm = mapped(did=7)
    found = env.iommu.lookup_pasid_entry(RID, PASID, "page_request")
    assert (found.pasid, found.did, found.fpd, found.pasid_entry.fsptptr) == (PASID, 7, False, mm.pgd >> 12)
    _pe_raw(env, p=0, fpd=1)
    with pytest.raises(Fault) as info:
        env.iommu.lookup_pasid_entry(RID, PASID, "page_request")
    assert (info.value.reason, info.value.fpd, info.value.suppressed) == (R.SPT_2, True, True)


# ================================================================================================
# FPD
# ================================================================================================


def _mrd(addr, pasid=None, length=1, tag=5, rid=RID, **kw):
    return tlp.MemRead(requester_id=rid, tag=tag, address=addr, length=length, pasid=pasid,
                       last_be=0xF if length > 1 else 0, **kw)


@pytest.mark.parametrize("where", ["context", "dir", "pasid"])
def test_fpd_suppresses_qualified_faults(where):
    env, mm = mapped()
    if where == "context":
        env.write_struct(env.context_address(RID), env.context_entry(RID).copy(fpd=1))
    elif where == "dir":
        slot = env.dir_entry_address(RID, PASID)
        env.write_struct(slot, PasidDirEntry(env.mem.read64(slot)).copy(fpd=1))
    else:
        _pe_raw(env, fpd=1)
    out = env.iommu.receive_tlp(_mrd(VA + K4, PASID).encode())  # PTE not present: 0x71, qualified
    cpl = tlp.decode(out[0])
    assert cpl.status == tlp.CPL_UR
    assert fsts(env)["ppf"] == 0 and frcd(env, 0)["f"] == 0


def test_fpd_in_a_not_present_context_entry_counts():
    env, _ = mapped()
    env.write_struct(env.context_address(RID), ContextEntry(fpd=1))
    t = env.translate("read", RID, VA, PASID)
    assert (t.fault, t.fpd, t.logged) == (R.SCT_2, True, False)


def test_fpd_does_not_suppress_non_qualified_faults():
    env, _ = mapped()
    env.write_struct(env.context_address(RID), env.context_entry(RID).copy(fpd=1))
    env.mem.fail_reads(env.dir_entry_address(RID, PASID), 8)
    env.iommu.receive_tlp(_mrd(VA, PASID).encode())
    assert frcd(env, 0)["f"] == 1 and frcd(env, 0)["fr"] == R.SPD_1


# ================================================================================================
# Accessed / dirty
# ================================================================================================


@pytest.mark.parametrize("size", [K4, M2, G1])
def test_accessed_on_every_level_dirty_on_the_leaf_for_writes(size):
    env, mm = mapped(size=size, va=VA & ~(size - 1), pa=1 << 40)
    va = VA & ~(size - 1)
    assert env.translate("read", RID, va, PASID).ok
    path = mm.walk(va)
    assert all(e.a for _, _, e in path) and not any(e.d for _, _, e in path)
    calls = len(env.mem.cmpxchg_calls)
    assert env.translate("read", RID, va + 64, PASID).ok
    assert len(env.mem.cmpxchg_calls) == calls  # nothing left to set
    assert env.translate("write", RID, va, PASID).ok
    path = mm.walk(va)
    assert path[-1][2].d and not any(e.d for _, _, e in path[:-1])
    assert len(env.mem.cmpxchg_calls) == calls + 1  # only the leaf


def test_the_leaf_gets_a_and_d_in_one_cmpxchg():
    env, mm = mapped()
    env.translate("write", RID, VA, PASID)
    slot = leaf_slot(mm, VA)
    leaf_calls = [c for c in env.mem.cmpxchg_calls if c[0] == slot]
    assert len(leaf_calls) == 1
    _, old, new = leaf_calls[0]
    assert new == old | 1 << 5 | 1 << 6


def test_ats_no_write_sets_no_dirty_bit():
    env, mm = mapped()
    t = env.translate("translation", RID, VA, PASID, nw=1)
    assert t.ok and (t.r, t.w) == (True, False) and mm.accessed(VA) and not mm.dirty(VA)
    t = env.translate("translation", RID, VA, PASID)
    assert (t.r, t.w) == (True, True) and mm.dirty(VA)
    env2, mm2 = mapped(profile=dataclasses.replace(PROFILE, nwfs=0))
    t = env2.translate("translation", RID, VA, PASID, nw=1)  # NWFS=0: always read+write
    assert t.w and mm2.dirty(VA)


def test_race_that_makes_the_leaf_not_present_leaves_no_page_behind():
    """Found by the RTL walker's scoreboard: after a lost A/D race the re-read entry decides alone."""
    env, mm = mapped()
    mm.map(VA + K4)
    env.translate("read", RID, VA + K4, PASID)  # A set in the tables; only the leaf is left
    slot = leaf_slot(mm, VA)

    def cpu_unmaps(addr):
        assert addr == slot
        env.mem.write64(slot, env.mem.read64(slot) & ~1)  # the CPU clears P

    env.mem.before_cmpxchg = cpu_unmaps
    t = env.translate("write", RID, VA, PASID)
    assert t.fault == R.SFS_2
    assert t.page is None and not t.r and not t.w


def test_cmpxchg_race_the_entry_changed_underneath_is_evaluated_again():
    env, mm = mapped()
    mm.map(VA + K4)
    env.translate("read", RID, VA + K4, PASID)  # A set in the tables; only the leaf is left
    slot = leaf_slot(mm, VA)

    def cpu_write_protects(addr):
        assert addr == slot
        env.mem.write64(slot, env.mem.read64(slot) & ~(1 << 1))  # the CPU clears R/W

    env.mem.before_cmpxchg = cpu_write_protects
    t = env.translate("write", RID, VA, PASID)
    assert t.fault == R.SGN_6  # the re-read entry no longer allows the write
    leaf = entry_at(env, slot)
    assert leaf.a and not leaf.d and not leaf.rw

    env2, mm2 = mapped()
    slot2 = leaf_slot(mm2, VA)
    mm2.map(VA + K4)
    env2.translate("read", RID, VA + K4, PASID)

    def cpu_sets_an_ignored_bit(addr):
        assert addr == slot2
        env2.mem.write64(slot2, env2.mem.read64(slot2) | 1 << 9)

    env2.mem.before_cmpxchg = cpu_sets_an_ignored_bit
    calls = len(env2.mem.cmpxchg_calls)
    assert env2.translate("write", RID, VA, PASID).ok
    leaf = entry_at(env2, slot2)
    assert leaf.a and leaf.d and leaf.ign9  # nothing the CPU wrote was lost
    assert len(env2.mem.cmpxchg_calls) == calls + 2  # the failed swap, then the one on the new value


def test_extended_accessed_with_eafe():
    profile = dataclasses.replace(PROFILE, eafs=1)
    env, mm = mapped(profile=profile, eafe=1)
    env.translate("read", RID, VA, PASID)
    assert all(e.a and e.ea for _, _, e in mm.walk(VA))


# ================================================================================================
# Fault recording
# ================================================================================================


def test_fault_record_fields():
    env, _ = mapped()
    env.iommu.receive_tlp(tlp.MemWrite(requester_id=RID, address=VA + K4 + 0x10, pasid=PASID, pmr=0,
                                       data=bytes(4)).encode())
    rec = frcd(env, 0)
    assert rec == dict(fi=(VA + K4) >> 12, sid=RID, t2=FrcdType.WRITE.t2, priv=0, exe=0, pp=1, fr=R.SFS_2,
                       pv=PASID, at=FrcdAt.UNTRANSLATED, t1=FrcdType.WRITE.t1, f=1)
    assert fsts(env)["ppf"] == 1 and fsts(env)["fri"] == 0
    # the top dword (bits 127:96, vtd §1.9): F, T1, AT, PV, FR
    r = REGISTERS["FRCD0"]
    top = 1 << 31 | FrcdType.WRITE.t1 << 30 | FrcdAt.UNTRANSLATED << 28 | PASID << 8 | 0x71
    assert env.iommu.reg_read(r.offset + 12) == top
    assert env.iommu.reg_read(r.offset + 8) == 1 << 31 | RID  # PP (bit 95) and SID (79:64)
    assert env.iommu.reg_read(r.offset, 8) == (VA + K4) & ~0xFFF


def test_frcd_ring_overflow_and_pfo():
    env, _ = mapped()
    n = PROFILE.nfr + 1
    for i in range(n):
        env.iommu.receive_tlp(_mrd(VA + (i + 1) * K4, PASID).encode())
    assert [frcd(env, i)["f"] for i in range(n)] == [1] * n
    assert [frcd(env, i)["fi"] for i in range(n)] == [(VA >> 12) + i + 1 for i in range(n)]
    assert fsts(env)["fri"] == 0 and fsts(env)["pfo"] == 0
    env.iommu.receive_tlp(_mrd(VA + 0x100 * K4, PASID).encode())  # slot 0 still full
    assert fsts(env)["pfo"] == 1
    assert frcd(env, 0)["fi"] == (VA >> 12) + 1  # not overwritten
    # software services FRCD0 only: PFO still blocks every new fault
    env.iommu.reg_write(REGISTERS["FRCD0"].offset + 12, 1 << 31)  # F is bit 127: RW1CS
    assert frcd(env, 0)["f"] == 0 and fsts(env)["ppf"] == 1
    env.iommu.receive_tlp(_mrd(VA + 0x200 * K4, PASID).encode())
    assert frcd(env, 0)["f"] == 0
    # clear everything, then PFO: the next fault goes to the internal index (0 after wrapping)
    for i in range(1, n):
        env.iommu.reg_write(REGISTERS[f"FRCD{i}"].offset + 12, 1 << 31)
    assert fsts(env)["ppf"] == 0
    env.wr("FSTS", 1)  # PFO is RW1CS
    assert fsts(env)["pfo"] == 0
    env.iommu.receive_tlp(_mrd(VA + 0x300 * K4, PASID).encode())
    assert frcd(env, 0)["f"] == 1 and frcd(env, 0)["fi"] == (VA >> 12) + 0x300 and fsts(env)["fri"] == 0
    env.iommu.receive_tlp(_mrd(VA + 0x301 * K4, PASID).encode())
    assert frcd(env, 1)["f"] == 1 and fsts(env)["fri"] == 0  # PPF was already 1: FRI kept


def test_fri_points_at_the_first_record_written_while_ppf_was_clear():
    env, _ = mapped()
    for i in range(2):
        env.iommu.receive_tlp(_mrd(VA + (i + 1) * K4, PASID).encode())
    for i in range(2):
        env.iommu.reg_write(REGISTERS[f"FRCD{i}"].offset + 12, 1 << 31)
    env.iommu.receive_tlp(_mrd(VA + 9 * K4, PASID).encode())
    assert fsts(env)["fri"] == 2 and frcd(env, 2)["f"] == 1


def test_the_fault_index_resets_when_translation_is_disabled():
    env, _ = mapped()
    env.iommu.receive_tlp(_mrd(VA + K4, PASID).encode())
    env.iommu.reg_write(REGISTERS["FRCD0"].offset + 12, 1 << 31)
    env.gcmd("te", 0)
    env.gcmd("te", 1)
    env.iommu.receive_tlp(_mrd(VA + 2 * K4, PASID).encode())
    assert frcd(env, 0)["f"] == 1 and frcd(env, 1)["f"] == 0


def test_record_fault_for_page_requests_and_bad_kinds():
    env, _ = mapped()
    assert env.iommu.record_fault(R.SCT_8, RID, 9, 0, 0x5000, "page_request", FrcdAt.UNTRANSLATED)
    rec = frcd(env, 0)
    assert FrcdType.from_bits(rec["t1"], rec["t2"]) == FrcdType.PAGE_REQUEST and rec["fr"] == 0x47
    with pytest.raises(ValueError, match="fault kind"):
        env.iommu.record_fault(R.SCT_8, RID, 9, 0, 0x5000, "dma", FrcdAt.UNTRANSLATED)


# ================================================================================================
# Interrupt events (vtd §1.12)
# ================================================================================================


def _program_event(env, prefix, addr=0x1_2345_6780, data=0xBEEF):
    env.wr(f"{prefix}DATA", data)
    env.wr(f"{prefix}ADDR", addr & 0xFFFF_FFFF)
    env.wr(f"{prefix}UADDR", addr >> 32)
    return addr, data.to_bytes(4, "little")


def test_fault_event_with_masking_and_unmasking():
    env, _ = mapped()
    msi = _program_event(env, "FE")
    log = env.watch()
    ctl = REGISTERS["FECTL"]
    assert ctl.unpack(env.rd("FECTL")) == dict(im=1, ip=0)  # IM resets to 1
    env.iommu.receive_tlp(_mrd(VA + K4, PASID).encode())
    assert ctl.unpack(env.rd("FECTL")) == dict(im=1, ip=1) and msi not in log
    env.wr("FECTL", 0)  # unmask: the pending interrupt goes out
    assert log.count(msi) == 1 and ctl.unpack(env.rd("FECTL")) == dict(im=0, ip=0)
    env.iommu.receive_tlp(_mrd(VA + 2 * K4, PASID).encode())  # PPF already set: no new event
    assert log.count(msi) == 1
    for i in range(2):
        env.iommu.reg_write(REGISTERS[f"FRCD{i}"].offset + 12, 1 << 31)
    env.iommu.receive_tlp(_mrd(VA + 3 * K4, PASID).encode())  # unmasked and nothing pending
    assert log.count(msi) == 2


def test_clearing_the_status_while_masked_drops_the_pending_interrupt():
    env, _ = mapped()
    msi = _program_event(env, "FE")
    log = env.watch()
    env.iommu.receive_tlp(_mrd(VA + K4, PASID).encode())
    assert REGISTERS["FECTL"].unpack(env.rd("FECTL"))["ip"] == 1
    env.iommu.reg_write(REGISTERS["FRCD0"].offset + 12, 1 << 31)  # PPF -> 0, nothing else pending
    assert REGISTERS["FECTL"].unpack(env.rd("FECTL"))["ip"] == 0
    env.wr("FECTL", 0)
    assert msi not in log


def test_the_three_event_groups_share_the_state_machine():
    env = Env()
    iommu = env.iommu
    log = env.watch()
    msi = _program_event(env, "IE", data=0x11)
    env.wr("IECTL", 0)
    iommu.inv_event.status_set("iwc")
    iommu.inv_event.status_set("iwc")
    assert log.count(msi) == 1 and REGISTERS["ICS"].unpack(env.rd("ICS"))["iwc"] == 1
    env.wr("ICS", 1)  # RW1CS
    iommu.inv_event.status_set("iwc")
    assert log.count(msi) == 2
    pmsi = _program_event(env, "PE", addr=0x2000, data=0x22)
    env.wr("PECTL", 0)
    iommu.prq_event.status_set("ppr")
    iommu.prq_event.status_set("pro")  # PPR already set: no second event
    assert log.count(pmsi) == 1 and REGISTERS["PRS"].unpack(env.rd("PRS")) == dict(pro=1, ppr=1)
    fmsi = _program_event(env, "FE", addr=0x3000, data=0x33)
    env.wr("FECTL", 0)
    iommu.fault_event.status_set("iqe")
    iommu.fault_event.status_set("ite")
    assert log.count(fmsi) == 1
    with pytest.raises(ValueError, match="not a status bit"):
        iommu.prq_event.status_set("iwc")


# ================================================================================================
# Registers
# ================================================================================================


def test_gcmd_gsts_handshake_and_root_pointer_latch():
    env = Env()
    gsts = REGISTERS["GSTS"]
    assert env.rd("GSTS") == 0 and env.rd("GCMD") == 0
    env.wr("RTADDR", env.root | 0b01 << 10)
    assert env.iommu.root_table == (0, 0)  # takes effect only on SRTP
    env.gcmd("srtp")
    assert env.iommu.root_table == (env.root, 0b01) and gsts.unpack(env.rd("GSTS"))["rtps"] == 1
    env.wr("RTADDR", 0x5000 | 0b10 << 10)
    assert env.iommu.root_table == (env.root, 0b01)
    env.wr("RTADDR", env.root | 1 << 50 | 0b01 << 10)  # bits >= HAW are ignored by the latch
    env.gcmd("srtp")
    assert env.iommu.root_table == (env.root, 0b01)
    env.gcmd("te")
    assert gsts.unpack(env.rd("GSTS"))["tes"] == 1 and env.rd("GCMD") == 0  # GCMD is write-only
    env.gcmd("qie")
    assert gsts.unpack(env.rd("GSTS"))["qies"] == 1 and gsts.unpack(env.rd("GSTS"))["tes"] == 1
    env.iommu.set_reg("IQH", 0x40)
    env.gcmd("qie", 0)
    assert env.rd("IQH") == 0 and gsts.unpack(env.rd("GSTS")) == dict(
        tes=1, rtps=1, wbfs=0, qies=0, ires=0, irtps=0, cfis=0)
    env.gcmd("te", 0)
    assert gsts.unpack(env.rd("GSTS"))["tes"] == 0


def test_te_off_and_srtp_invalidate_the_caches():
    env, mm = mapped()
    env.translate("read", RID, VA, PASID)
    assert len(env.iommu.caches)
    env.gcmd("srtp")  # CAP.ESRTPS=1
    assert len(env.iommu.caches) == 0
    env.translate("read", RID, VA, PASID)
    env.gcmd("te", 0)
    assert len(env.iommu.caches) == 0


def test_read_only_fields_ignore_writes_and_64_bit_registers_split_in_halves():
    env = Env()
    cap = env.rd("CAP")
    assert cap == PROFILE.cap_value() and env.rd("VER") == PROFILE.ver_value()
    env.wr("CAP", 0)
    env.wr("GSTS", 0xFFFF_FFFF)
    assert env.rd("CAP") == cap and env.rd("GSTS") == 0
    env.iommu.reg_write(off("IQA"), 0x1234_5000 | 1 << 11 | 3, 4)
    env.iommu.reg_write(off("IQA") + 4, 0x0000_0042, 4)
    assert env.rd("IQA") == 0x42_1234_5000 | 1 << 11 | 3
    assert env.iommu.reg_read(off("IQA") + 4) == 0x42
    env.iommu.reg_write(off("IQA"), 0xFFFF_FFFF, 4)  # reserved bits 10:3 read 0
    assert env.rd("IQA") & 0x7F8 == 0
    assert env.iommu.reg_read(0x300) == 0  # unmapped
    env.iommu.reg_write(0x300, 0xFFFF_FFFF)


def test_register_based_invalidation_reports_an_error():
    env = Env()
    env.wr("CCMD", 1 << 63 | 0b01 << 61)
    assert REGISTERS["CCMD"].unpack(env.rd("CCMD"))["icc"] == 0
    assert REGISTERS["CCMD"].unpack(env.rd("CCMD"))["caig"] == 0
    env.wr("IOTLB_REG", 1 << 63 | 0b01 << 60)
    assert REGISTERS["IOTLB_REG"].unpack(env.rd("IOTLB_REG"))["ivt"] == 0


def test_bad_register_accesses_are_refused():
    env = Env()
    for offset, size in [(0x2, 4), (0x4, 8), (0x1000, 4), (0x0, 2)]:
        with pytest.raises(ValueError):
            env.iommu.reg_read(offset, size)
    with pytest.raises(ValueError, match="does not fit"):
        env.iommu.reg_write(0x3C, 1 << 32)


_RW_REGS = [r for r in REGISTERS if r.name in ("RTADDR", "FEDATA", "FEADDR", "FEUADDR", "IQA", "PQA", "PQH",
                                               "IEDATA", "PEADDR")]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(_RW_REGS), st.integers(0, (1 << 64) - 1))
def test_rw_registers_read_back_what_was_written(reg, value):
    env = Env()
    value &= (1 << reg.width) - 1
    env.iommu.reg_write(reg.offset, value, reg.nbytes)
    assert env.iommu.reg_read(reg.offset, reg.nbytes) == value & reg.mask()


# ================================================================================================
# ATS translation requests
# ================================================================================================


def _tr(addr, pasid=PASID, nw=0, length=2, **kw):
    return tlp.MemRead(requester_id=RID, tag=0x2A5, address=addr, length=length, last_be=0xF,
                       at=tlp.AT_TRANSLATION_REQUEST, pasid=pasid, nw=nw, **kw).encode()


def _one_entry(out):
    assert len(out) == 1
    cpl = tlp.decode(out[0])
    assert cpl.status == tlp.CPL_SC and cpl.tag == 0x2A5 and cpl.byte_count == 8
    (entry,) = cpl.translation_entries()
    return entry


@pytest.mark.parametrize("size", [K4, M2, G1])
def test_ats_completion_covers_the_leaf_page(size):
    va = VA & ~(size - 1)
    pa = 0x33 << 30
    env, _ = mapped(size=size, va=va, pa=pa)
    entry = _one_entry(env.iommu.receive_tlp(_tr(va + size // 2)))
    assert (entry.base(), entry.size()) == (pa, size)
    assert (entry.r, entry.w, entry.u, entry.exe, entry.priv, entry.g, entry.n) == (1, 1, 0, 0, 0, 0, 0)
    assert entry.s == int(size > K4)


def test_ats_recoverable_faults_answer_s0_and_are_not_logged():
    env, _ = mapped()
    for req in (_tr(VA + K4), _tr(1 << 47), _tr(VA, pmr=1)):  # not present, non-canonical, SRE=0
        entry = _one_entry(env.iommu.receive_tlp(req))
        assert (entry.r, entry.w, entry.u, entry.s) == (0, 0, 0, 0)
    assert fsts(env)["ppf"] == 0
    assert _one_entry(env.iommu.receive_tlp(_tr(VA, pmr=1))).priv == 1


def test_ats_reduced_permissions_for_a_read_only_page():
    env, mm = mapped(write=False)
    entry = _one_entry(env.iommu.receive_tlp(_tr(VA)))
    assert (entry.r, entry.w) == (1, 0) and fsts(env)["ppf"] == 0
    assert mm.accessed(VA) and not mm.dirty(VA)


def test_ats_supervisor_translation_carries_priv():
    env, _ = mapped(user=False, sre=1)
    entry = _one_entry(env.iommu.receive_tlp(_tr(VA, pmr=1)))
    assert (entry.r, entry.w, entry.priv) == (1, 1, 1)


def test_ats_table_errors_are_logged_with_ur_or_ca():
    env, _ = mapped()
    bad = PasidEntry(env.pasid_entry(RID, PASID).raw | 1 << 10)  # reserved bit 10
    env.write_struct(env.pasid_entry_address(RID, PASID), bad)
    out = env.iommu.receive_tlp(_tr(VA))
    assert tlp.decode(out[0]).status == tlp.CPL_CA
    rec = frcd(env, 0)
    assert (rec["fr"], rec["at"], FrcdType.from_bits(rec["t1"], rec["t2"])) == (
        R.SPT_3, FrcdAt.TRANSLATION_REQUEST, FrcdType.READ)
    env2, _ = mapped(context=dict(dte=0, pre=0))
    assert tlp.decode(env2.iommu.receive_tlp(_tr(VA))[0]).status == tlp.CPL_UR
    assert frcd(env2, 0)["fr"] == R.SCT_5


def test_ats_interrupt_window_without_pasid():
    env, _ = mapped()
    entry = _one_entry(env.iommu.receive_tlp(_tr(INTERRUPT_BASE + 0x1000, pasid=None)))
    assert (entry.r, entry.w, entry.u, entry.s) == (0, 1, 1, 0)
    entry = _one_entry(env.iommu.receive_tlp(_tr(INTERRUPT_BASE, pasid=None, nw=1)))
    assert (entry.r, entry.w, entry.u) == (0, 0, 1)


def test_ats_request_for_an_odd_length_gets_ur():
    env, _ = mapped()
    odd = tlp.MemRead(requester_id=RID, tag=1, address=VA, length=1, at=tlp.AT_TRANSLATION_REQUEST,
                      pasid=PASID)
    out = env.iommu.receive_tlp(odd.encode())
    assert tlp.decode(out[0]).status == tlp.CPL_UR


# ================================================================================================
# Translated requests, translation disabled
# ================================================================================================

HPA = 0x2_0000_1000


def test_translated_requests_need_dte():
    env, _ = mapped()
    env.mem.write(HPA, bytes(range(16)))
    out = env.iommu.receive_tlp(_mrd(HPA, length=4, at=tlp.AT_TRANSLATED).encode())
    assert tlp.decode(out[0]).data == bytes(range(16))
    env.iommu.receive_tlp(tlp.MemWrite(requester_id=RID, address=HPA, at=tlp.AT_TRANSLATED,
                                       data=b"\xaa" * 4).encode())
    assert env.mem.read(HPA, 4) == b"\xaa" * 4
    env2, _ = mapped(context=dict(dte=0, pre=0))
    out = env2.iommu.receive_tlp(_mrd(HPA, at=tlp.AT_TRANSLATED).encode())
    assert tlp.decode(out[0]).status == tlp.CPL_UR
    rec = frcd(env2, 0)
    assert (rec["fr"], rec["at"], rec["pp"]) == (R.SCT_5, FrcdAt.TRANSLATED, 0)


def test_translated_request_with_pasid_needs_ptrs_and_eptr():
    env, _ = mapped()
    assert env.translate("read", RID, HPA, PASID, at=FrcdAt.TRANSLATED).fault == R.SCT_10
    profile = dataclasses.replace(PROFILE, ptrs=1)
    env2, _ = mapped(profile=profile, context=dict(eptr=1))
    assert env2.translate("read", RID, HPA, PASID, at=FrcdAt.TRANSLATED).ok


def test_translation_disabled_passes_untranslated_requests_through():
    env = Env()
    env.mem.write(VA, b"\x01\x02\x03\x04")
    out = env.iommu.receive_tlp(_mrd(VA, PASID).encode())
    assert tlp.decode(out[0]).data == b"\x01\x02\x03\x04"
    for at in (tlp.AT_TRANSLATION_REQUEST, tlp.AT_TRANSLATED):
        out = env.iommu.receive_tlp(_mrd(VA, length=2, at=at, pasid=None).encode())
        assert tlp.decode(out[0]).status == tlp.CPL_UR
    assert fsts(env)["ppf"] == 0


# ================================================================================================
# DMA
# ================================================================================================


def test_read_completions_are_split_at_max_payload():
    env, mm = mapped()
    pa = mm.lookup(VA).pa
    data = bytes(random.Random(5).randrange(256) for _ in range(1024))
    env.mem.write(pa, data)
    req = tlp.MemRead(requester_id=RID, tag=0x17, address=VA, length=256, first_be=0b1110, last_be=0b0111,
                      pasid=PASID)
    cpls = [tlp.decode(b) for b in env.iommu.receive_tlp(req.encode())]
    assert [c.byte_count for c in cpls] == [1022, 767, 511, 255]  # remaining bytes, 1 + 1 disabled
    assert [len(c.data) for c in cpls] == [256] * 4
    assert b"".join(c.data for c in cpls) == data
    assert [c.lower_address for c in cpls] == [1, 0, 0, 0]
    assert all(c.requester_id == RID and c.tag == 0x17 and c.completer_id == 0 for c in cpls)


def test_writes_honour_byte_enables():
    env, mm = mapped()
    pa = mm.lookup(VA).pa
    env.mem.write(pa, b"\xee" * 16)
    env.iommu.receive_tlp(tlp.MemWrite(requester_id=RID, address=VA + 4, first_be=0b1100, last_be=0b0011,
                                       data=bytes(range(1, 13)), pasid=PASID).encode())
    expected = b"\xee" * 4 + b"\xee\xee\x03\x04" + bytes(range(5, 9)) + b"\x09\x0a\xee\xee"
    assert env.mem.read(pa, 16) == expected


def test_faulting_reads_complete_with_ur_and_faulting_writes_are_dropped():
    env, mm = mapped(write=False)
    pa = mm.lookup(VA).pa
    out = env.iommu.receive_tlp(tlp.MemWrite(requester_id=RID, address=VA, data=b"\x55" * 4,
                                             pasid=PASID).encode())
    assert out == [] and env.mem.read(pa, 4) == bytes(4)
    rec = frcd(env, 0)
    assert (rec["fr"], FrcdType.from_bits(rec["t1"], rec["t2"])) == (R.SGN_6, FrcdType.WRITE)
    out = env.iommu.receive_tlp(_mrd(VA + K4, PASID, tag=0x301).encode())
    cpl = tlp.decode(out[0])
    assert (cpl.status, cpl.tag, cpl.data) == (tlp.CPL_UR, 0x301, b"")
    assert FrcdType.from_bits(frcd(env, 1)["t1"], frcd(env, 1)["t2"]) == FrcdType.READ


def test_a_memory_error_during_dma_completes_with_ca():
    env, mm = mapped()
    env.mem.fail_reads(mm.lookup(VA).pa, 4)
    out = env.iommu.receive_tlp(_mrd(VA, PASID).encode())
    assert tlp.decode(out[0]).status == tlp.CPL_CA and fsts(env)["ppf"] == 0


# ================================================================================================
# TLP handling: unsupported, malformed, routed
# ================================================================================================


def test_unsupported_prefix_type_and_malformed_tlps():
    env, mm = mapped()
    tph = 0x9000_0000  # End-End TPH prefix: not supported by the IOMMU
    out = env.iommu.receive_tlp(_mrd(VA, PASID, other_prefixes=(tph,)).encode())
    assert tlp.decode(out[0]).status == tlp.CPL_UR
    w = tlp.MemWrite(requester_id=RID, address=VA, data=b"\x66" * 4, pasid=PASID, other_prefixes=(tph,))
    assert env.iommu.receive_tlp(w.encode()) == [] and env.mem.read(mm.lookup(VA).pa, 4) == bytes(4)
    assert env.iommu.receive_tlp(b"\x00\x00\x00") == []  # truncated
    assert env.iommu.receive_tlp(_mrd(VA, PASID).encode()[:-2]) == []
    fetch_add = bytes([0x4C, 0x00, 0x00, 0x01]) + RID.to_bytes(2, "big") + bytes([0x42, 0x0F]) + \
        (0x1000).to_bytes(4, "big") + bytes(4)
    cpl = tlp.decode(env.iommu.receive_tlp(fetch_add)[0])
    assert (cpl.status, cpl.requester_id, cpl.tag) == (tlp.CPL_UR, RID, 0x42)
    # an unsupported type whose size does not match Fmt/Length is malformed: dropped, not UR
    assert env.iommu.receive_tlp(fetch_add + bytes(4)) == []
    assert env.iommu.receive_tlp(fetch_add[:-4]) == []
    locked = tlp.MemRead(requester_id=RID, tag=3, address=VA, locked=1, pasid=None)
    assert tlp.decode(env.iommu.receive_tlp(locked.encode())[0]).status == tlp.CPL_UR
    cpl_in = tlp.Completion(requester_id=0, completer_id=RID, byte_count=4, data=bytes(4))
    assert env.iommu.receive_tlp(cpl_in.encode()) == []
    poisoned = tlp.MemWrite(requester_id=RID, address=VA, data=b"\x77" * 4, pasid=PASID, ep=1)
    assert env.iommu.receive_tlp(poisoned.encode()) == [] and env.mem.read(mm.lookup(VA).pa, 4) == bytes(4)
    assert fsts(env)["ppf"] == 0


def test_interrupt_requests_without_pasid():
    env, _ = mapped()
    log = env.watch()
    msi = tlp.MemWrite(requester_id=RID, address=INTERRUPT_BASE + 0x10, data=b"\x41\x00\x00\x00")
    assert env.iommu.receive_tlp(msi.encode()) == []
    assert log == [(INTERRUPT_BASE + 0x10, b"\x41\x00\x00\x00")]
    out = env.iommu.receive_tlp(_mrd(INTERRUPT_BASE).encode())
    assert tlp.decode(out[0]).status == tlp.CPL_UR and fsts(env)["ppf"] == 0


def test_page_requests_and_invalidation_completions_are_routed_to_the_queues():
    env, _ = mapped()
    seen = []

    class Recorder:
        def receive(self, pkt):
            seen.append(("prq", pkt))

        def receive_completion(self, pkt):
            seen.append(("iq", pkt))

    env.iommu.prq = env.iommu.iq = Recorder()
    pr = tlp.PageRequest(requester_id=RID, address=VA, prg_index=3, l=1, r=1, pasid=PASID)
    cpl = tlp.AtsInvalidateCompletion(requester_id=RID, dest_id=0, cc=1, itag_vector=1 << 3)
    env.iommu.receive_tlp(pr.encode())
    env.iommu.receive_tlp(cpl.encode())
    assert seen == [("prq", pr), ("iq", cpl)]


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="kind"):
        Request("exec", RID, 0)
    with pytest.raises(ValueError, match="AT"):
        Request("read", RID, 0, at=FrcdAt.TRANSLATION_REQUEST)
    with pytest.raises(ValueError, match="pasid"):
        Request("read", RID, 0, pmr=1)
    with pytest.raises(ValueError, match="page requests"):
        Env().iommu.translate(Request("page_request", RID, 0))


# ================================================================================================
# Caches: stale results stay legal until the right invalidation
# ================================================================================================

NEW_PA = 0x7_7777_7000


def _remap_leaf(env, mm, va, pa):
    """Point the leaf at another frame behind the IOMMU's back (the oracle is not told)."""
    slot = leaf_slot(mm, va)
    e = entry_at(env, slot)
    e.addr = pa >> 12
    env.mem.write64(slot, e.raw)


def _stale_addresses(t):
    return {a.address for a in t.legal_alternatives if a.ok}


def test_a_cached_leaf_stays_legal_until_a_page_invalidation():
    env, mm = mapped(did=4)
    old = env.translate("read", RID, VA, PASID).address
    _remap_leaf(env, mm, VA, NEW_PA)
    t = env.translate("read", RID, VA, PASID)
    assert t.address == NEW_PA and _stale_addresses(t) == {old}
    assert {a.source for a in t.legal_alternatives} == {"iotlb"}
    assert t.outcomes() == [t.outcome(), t.legal_alternatives[0].outcome()]
    # the wrong PASID or another page: nothing changes
    env.iommu.caches.invalidate_iotlb(PIotlbInvDesc.G_PAGE, did=4, pasid=PASID + 1, addr=VA)
    env.iommu.caches.invalidate_iotlb(PIotlbInvDesc.G_PAGE, did=4, pasid=PASID, addr=VA + K4)
    assert _stale_addresses(env.translate("read", RID, VA, PASID)) == {old}
    env.iommu.caches.invalidate_iotlb(PIotlbInvDesc.G_PAGE, did=4, pasid=PASID, addr=VA - K4, am=1)
    assert env.translate("read", RID, VA, PASID).legal_alternatives == ()


def test_type_2_page_invalidation_drops_every_first_stage_entry_of_the_domain():
    env, mm = mapped(did=4)
    old = env.translate("read", RID, VA, PASID).address
    _remap_leaf(env, mm, VA, NEW_PA)
    env.iommu.caches.invalidate_iotlb(IotlbInvDesc.G_PAGE, did=5, addr=VA)  # other domain
    assert _stale_addresses(env.translate("read", RID, VA, PASID)) == {old}
    env.iommu.caches.invalidate_iotlb(IotlbInvDesc.G_PAGE, did=4, addr=0x1234_5000)  # other address!
    assert env.translate("read", RID, VA, PASID).legal_alternatives == ()


def test_faulting_walks_are_never_cached_and_unmapped_pages_stay_legal():
    env, mm = mapped()
    assert env.translate("read", RID, VA + K4, PASID).fault == R.SFS_2
    mm.map(VA + K4)  # not present -> present needs no invalidation
    t = env.translate("read", RID, VA + K4, PASID)
    assert t.ok and t.legal_alternatives == ()
    old = t.address
    mm.unmap(VA + K4)
    t = env.translate("read", RID, VA + K4, PASID)
    assert t.fault == R.SFS_2 and _stale_addresses(t) == {old}
    env.iommu.caches.invalidate_iotlb(PIotlbInvDesc.G_PASID, did=1, pasid=PASID)
    assert env.translate("read", RID, VA + K4, PASID).legal_alternatives == ()


def test_a_walk_refused_for_rights_is_not_cached_either():
    env, mm = mapped(write=False)
    assert env.translate("write", RID, VA, PASID).fault == R.SGN_6  # the first access faults
    mm.protect(VA, write=True)  # a permission upgrade needs no invalidation (vtd §4.6)
    t = env.translate("write", RID, VA, PASID)
    assert t.ok and t.legal_alternatives == ()
    env2, mm2 = mapped(user=False)
    assert env2.translate("read", RID, VA, PASID).fault == R.SGN_2
    mm2.protect(VA, user=True)
    t = env2.translate("read", RID, VA, PASID)
    assert t.ok and t.legal_alternatives == ()


def test_a_clean_cached_entry_cannot_serve_a_write():
    env, mm = mapped()
    old = env.translate("read", RID, VA, PASID).address  # cached with D=0
    _remap_leaf(env, mm, VA, NEW_PA)
    t = env.translate("write", RID, VA, PASID)
    assert t.address == NEW_PA and _stale_addresses(t) == set()  # must walk again to set D
    assert _stale_addresses(env.translate("read", RID, VA, PASID)) == {old}


def test_a_permission_upgrade_without_invalidation_may_fault_spuriously():
    env, mm = mapped(write=False)
    env.translate("read", RID, VA, PASID)
    mm.protect(VA, write=True)
    t = env.translate("write", RID, VA, PASID)
    assert t.ok and [a.fault for a in t.legal_alternatives] == [R.SGN_6]
    assert t.legal_alternatives[0].logged  # an untranslated write would record it
    env.iommu.caches.invalidate_iotlb(PIotlbInvDesc.G_PAGE, did=1, pasid=PASID, addr=VA)
    assert env.translate("write", RID, VA, PASID).legal_alternatives == ()


def test_paging_structure_cache_survives_a_leaf_only_invalidation():
    env, mm = mapped()
    old = env.translate("read", RID, VA, PASID).address
    # move the PT: a copy with the leaf pointing elsewhere, and the PDE pointing at the copy
    (_, pde_slot, pde), (_, pte_slot, _) = mm.walk(VA)[-2:]
    new_pt = env.alloc.alloc()
    env.mem.write(new_pt, env.mem.read(pde.target(), 4096))
    moved = FsEntry(env.mem.read64(pte_slot))
    moved.addr = NEW_PA >> 12
    env.mem.write64(new_pt + 8 * level_index(VA, 1), moved.raw)
    pde.addr = new_pt >> 12
    env.mem.write64(pde_slot, pde.raw)
    env.iommu.caches.invalidate_iotlb(PIotlbInvDesc.G_PAGE, did=1, pasid=PASID, addr=VA, ih=1)
    t = env.translate("read", RID, VA, PASID)
    assert t.address == NEW_PA and _stale_addresses(t) == {old}
    assert {a.source for a in t.legal_alternatives} == {"stale"}
    env.iommu.caches.invalidate_iotlb(PIotlbInvDesc.G_PAGE, did=1, pasid=PASID, addr=VA, ih=0)
    assert env.translate("read", RID, VA, PASID).legal_alternatives == ()


def test_context_cache_staleness_and_device_selective_invalidation():
    env, mm = mapped()
    old = env.translate("read", RID, VA, PASID).address
    env.write_struct(env.context_address(RID), ContextEntry())
    t = env.translate("read", RID, VA, PASID)
    assert t.fault == R.SCT_2 and _stale_addresses(t) == {old}
    env.iommu.caches.invalidate_context(CcInvDesc.G_DEVICE, sid=RID ^ 0x08)  # another device
    assert _stale_addresses(env.translate("read", RID, VA, PASID)) == {old}
    env.iommu.caches.invalidate_context(CcInvDesc.G_DEVICE, sid=RID | 0x7, fm=0b11)  # function mask
    assert env.translate("read", RID, VA, PASID).legal_alternatives == ()


def test_pasid_cache_staleness_needs_pasid_and_iotlb_invalidation():
    env, mm = mapped(did=2)
    old = env.translate("read", RID, VA, PASID).address
    other = env.new_mm()
    other.map(VA, pa=NEW_PA)
    env.bind(RID, PASID, other, did=2)  # new FSPTPTR, no invalidation
    t = env.translate("read", RID, VA, PASID)
    assert t.address == NEW_PA and _stale_addresses(t) == {old}
    env.iommu.caches.invalidate_pasid(PcInvDesc.G_DOMAIN, did=3)
    assert _stale_addresses(env.translate("read", RID, VA, PASID)) == {old}
    env.iommu.caches.invalidate_pasid(PcInvDesc.G_PASID, did=2, pasid=PASID)
    # the IOTLB and the paging-structure cache still hold the old tables' entries
    assert _stale_addresses(env.translate("read", RID, VA, PASID)) == {old}
    env.iommu.caches.invalidate_iotlb(PIotlbInvDesc.G_PASID, did=2, pasid=PASID)
    assert env.translate("read", RID, VA, PASID).legal_alternatives == ()


def test_global_invalidations_empty_the_caches():
    env, _ = mapped()
    env.translate("read", RID, VA, PASID)
    c = env.iommu.caches
    assert c.context and c.pasid and c.psc and c.iotlb
    c.invalidate_context(CcInvDesc.G_DOMAIN, did=99)  # domain-selective = global in scalable mode
    c.invalidate_pasid(PcInvDesc.G_GLOBAL, did=0)
    c.invalidate_iotlb(IotlbInvDesc.G_GLOBAL)
    assert len(c) == 0
    with pytest.raises(ValueError, match="reserved"):
        c.invalidate_pasid(0b10, did=0)
    with pytest.raises(ValueError, match="reserved"):
        c.invalidate_iotlb(0b01, did=0, pasid=1)


def test_paging_structure_entries_are_tagged_by_level_and_region():
    env, mm = mapped(levels=5)
    env.translate("read", RID, VA, PASID)
    keys = sorted(env.iommu.caches.psc)
    assert [k[2] for k in keys] == [2, 3, 4, 5]
    assert all(k[3] == VA >> LEVEL_SHIFT[k[2]] for k in keys)


def test_pass_through_pasid_entries_with_a_pt_profile():
    profile = dataclasses.replace(PROFILE, pt=1)
    env = Env(profile)
    env.enable()
    env.set_context(RID, p=1, dte=1, paside=1, pdts=7)
    env.set_pasid_entry(RID, PASID, p=1, pgtt=Pgtt.PASS_THROUGH, did=9)
    t = env.translate("write", RID, 0x1234_5678, PASID)
    assert t.ok and t.address == 0x1234_5678 and (t.page.size, t.page.pgtt) == (K4, Pgtt.PASS_THROUGH)
    assert env.translate("read", RID, 1 << 48, PASID).fault == R.SGN_4
    assert env.translate("read", RID, INTERRUPT_BASE + 8, PASID).fault == R.SGN_8
    assert Env().iommu.profile.pt == 0  # the project profile has no PT: PGTT=100 is SPT.4 there
    # PT entries are hit by a type-2 page invalidation only at their address (vtd §4.3)
    env.translate("read", RID, 0x1000, PASID)
    env.translate("read", RID, 0x2000, PASID)
    mm = env.new_mm()
    mm.map(0x1000, pa=NEW_PA)
    mm.map(0x2000, pa=NEW_PA + K4)
    env.set_pasid_entry(RID, PASID, p=1, pgtt=Pgtt.FIRST_STAGE, did=9, pwsnp=1, fsptptr=mm.pgd >> 12)
    env.iommu.caches.invalidate_pasid(PcInvDesc.G_PASID, did=9, pasid=PASID)
    env.iommu.caches.invalidate_iotlb(IotlbInvDesc.G_PAGE, did=9, addr=0x1000)
    assert _stale_addresses(env.translate("read", RID, 0x1000, PASID)) == set()
    assert _stale_addresses(env.translate("read", RID, 0x2000, PASID)) == {0x2000}


def test_refused_accesses_leave_the_leaf_a_bit_as_documented():
    """user_denied and the output checks come before the leaf update; write_denied after it."""
    for setup, kind, a_expected in ((dict(user=False), "read", 0), (dict(write=False), "write", 1),
                                    (dict(pa=INTERRUPT_BASE), "read", 0)):
        env, mm = mapped(**setup)
        assert not env.translate(kind, RID, VA, PASID).ok
        assert entry_at(env, leaf_slot(mm, VA)).a == a_expected, setup
        assert all(e.a for _, _, e in mm.walk(VA)[:-1])  # the tables above were used


_tlp_requests = st.builds(
    lambda kind, addr, length, pasid, pmr, er, at, tag, fill: (
        tlp.MemRead(requester_id=RID, tag=tag, address=addr, length=length, last_be=0xF if length > 1 else 0,
                    at=at, pasid=pasid, pmr=pmr if pasid is not None else 0,
                    er=er if pasid is not None else 0) if kind == "rd" else
        tlp.MemWrite(requester_id=RID, address=addr, data=bytes([fill]) * (4 * length),
                     last_be=0xF if length > 1 else 0, at=at & 2, pasid=pasid,
                     pmr=pmr if pasid is not None else 0, er=er if pasid is not None else 0)),
    st.sampled_from(["rd", "wr"]),
    st.one_of(st.sampled_from([VA, VA + K4, INTERRUPT_BASE, 1 << 47, 1 << 48, 0, (1 << 64) - K4]),
              st.integers(0, (1 << 62) - 1).map(lambda a: a & ~0xFFF)),
    st.sampled_from([1, 2, 16]),
    st.one_of(st.none(), st.sampled_from([0, PASID, 0x100, 0xFFFFF])),
    st.integers(0, 1), st.integers(0, 1), st.sampled_from([0, 1, 2]), st.integers(0, 1023),
    st.integers(0, 255),
)


@settings(max_examples=150, deadline=None)
@given(_tlp_requests)
def test_device_requests_never_raise(pkt):
    env, _ = mapped()
    out = env.iommu.receive_tlp(pkt.encode())
    for b in out:
        cpl = tlp.decode(b)
        assert cpl.requester_id == RID and cpl.tag == pkt.tag


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=0, max_size=40))
def test_garbage_never_raises(data):
    env, _ = mapped()
    assert isinstance(env.iommu.receive_tlp(data), list)


@settings(max_examples=200, deadline=None)
@given(_tlp_requests, st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), min_size=1, max_size=3))
def test_corrupted_requests_never_raise(pkt, flips):
    data = bytearray(pkt.encode())
    for pos, value in flips:
        data[pos % len(data)] = value
    env, _ = mapped()
    for b in env.iommu.receive_tlp(bytes(data)):
        assert isinstance(tlp.decode(b), tlp.Completion)


# ================================================================================================
# Wiring to models.iommu_queues (the queue semantics are tested in test_iommu_queues.py)
# ================================================================================================


def _iq_env():
    env, mm = mapped()
    iq = env.alloc.alloc()
    env.wr("IQA", iq | 1 << 11)  # 256-bit descriptors, one page
    return env, iq


def _prg_response_desc(prgi):
    return PageGroupResponseDescriptor(rid=RID, rc=0, prgi=prgi).to_bytes()


def test_iqt_writes_qie_enable_and_iqe_clear_run_the_invalidation_queue():
    env, iq = _iq_env()
    env.mem.write(iq, _prg_response_desc(7))
    env.wr("IQT", 0x20)  # QIE still off: nothing runs
    assert env.iommu.take_tx() == []
    env.gcmd("qie")  # enabling runs the queue
    (rsp,) = [tlp.decode(b) for b in env.iommu.take_tx()]
    assert isinstance(rsp, tlp.PrgResponse) and (rsp.dest_id, rsp.prg_index) == (RID, 7)
    env.mem.write(iq + 0x20, bytes(32))  # type 0: invalid -> IQE, the queue stops at it
    env.wr("IQT", 0x40)
    assert fsts(env)["iqe"] == 1 and env.rd("IQH") == 0x20 and env.iommu.take_tx() == []
    env.mem.write(iq + 0x20, _prg_response_desc(8))
    env.wr("FSTS", REGISTERS["FSTS"].field("iqe").mask)  # clearing IQE resumes the fetch
    assert [tlp.decode(b).prg_index for b in env.iommu.take_tx()] == [8]
    assert env.rd("IQH") == 0x40


def test_process_iq_and_timeout_return_what_they_sent():
    env, iq = _iq_env()
    env.gcmd("qie")
    env.mem.write(iq, PDevTlbInvDesc(sid=RID, pasid=PASID, s=1, addr=0x7FFFF).to_bytes())
    env.iommu.set_reg("IQT", 0x20)  # storage only: nothing runs until asked
    (inv,) = [tlp.decode(b) for b in env.iommu.process_iq()]
    assert isinstance(inv, tlp.AtsInvalidateRequest) and inv.dest_id == RID
    assert env.iommu.timeout_dev_tlb() == [] and fsts(env)["ite"] == 1


def test_page_requests_reach_the_page_request_queue():
    env, _ = mapped()
    prq = env.alloc.alloc()
    env.wr("PQA", prq)
    pr = tlp.PageRequest(requester_id=RID, address=VA + K4, prg_index=5, l=1, w=1, r=1, pasid=PASID)
    assert env.iommu.receive_tlp(pr.encode()) == []
    desc = PageRequestDescriptor.from_bytes(env.mem.read(prq, 32))
    assert (desc.rid, desc.pasid, desc.prgi, desc.address, desc.lpig) == (RID, PASID, 5, VA + K4, 1)
    assert REGISTERS["PRS"].unpack(env.rd("PRS"))["ppr"] == 1 and env.rd("PQT") == 0x20


def test_reset_returns_to_power_on_state():
    env, _ = mapped()
    env.translate("read", RID, VA, PASID)
    env.iommu.receive_tlp(_mrd(VA + K4, PASID).encode())
    env.iommu.reset()
    assert env.rd("GSTS") == 0 and env.rd("FSTS") == 0 and frcd(env, 0)["f"] == 0
    assert env.rd("FECTL") == REGISTERS["FECTL"].reset and len(env.iommu.caches) == 0
    assert env.iommu.root_table == (0, 0) and env.iommu.take_tx() == []
