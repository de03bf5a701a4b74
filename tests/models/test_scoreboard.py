"""The IOMMU system testbench's scoreboard and fault-record comparison (tb/iommu_env.py), without a
simulator: each check is fed a DUT behaviour that must pass and ones that must fail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import tlp as T
from models.host import Memory
from models.iommu import Iommu
from models.vtd import REGISTERS, FaultReason, FrcdAt
from tb.iommu_env import AD_MASK, FaultBook, Mismatch, Origin, Scoreboard, fault_fields, frcd_fields, tlp_key
from tb.stats import Stats

A, D, EA = 1 << 5, 1 << 6, 1 << 10
ENTRY = 0x1_0000_2000
PTE = 0x0000_0001_2345_6007  # P, R/W, U/S, frame 0x123456


def board():
    return Scoreboard(Stats(), hint=lambda: "rerun: make waves TEST=x SEED=1")


def cpl(rid: int, tag: int, data: bytes = b"\x11\x22\x33\x44", lower: int = 0) -> bytes:
    return T.Completion(requester_id=rid, tag=tag, completer_id=0, byte_count=len(data), lower_address=lower,
                        data=data).encode()


def origin(n: int = 0) -> Origin:
    return Origin(n, T.MemRead(requester_id=0x100, tag=n, address=0x1000).encode())


# --- TLPs ------------------------------------------------------------------------------------------


def test_ad_mask_is_a_d_ea():
    assert AD_MASK == A | D | EA


def test_tlp_key_is_requester_and_tag():
    assert tlp_key(cpl(0x1234, 0x3FF)) == ("completion", 0x1234, 0x3FF)


def test_keys_interleave_but_one_key_stays_in_order():
    sb = board()
    a1, a2, b1 = cpl(0x100, 1, lower=0), cpl(0x100, 1, lower=0x40), cpl(0x200, 1)
    for x in (a1, a2, b1):
        sb.expect_tlp(x, origin())
    done = []
    sb.on_key_done.append(done.append)
    sb.dut_tlp(b1)  # another key first: fine
    sb.dut_tlp(a1)
    sb.dut_tlp(a2)
    sb.check()
    assert sb.idle() and sb.tlps_matched == 3
    assert done == [("completion", 0x200, 1), ("completion", 0x100, 1)]

    sb = board()
    sb.expect_tlp(a1, origin())
    sb.expect_tlp(a2, origin())
    sb.dut_tlp(a2)  # same key, out of order
    with pytest.raises(Mismatch, match="TLP mismatch"):
        sb.check()


def test_unexpected_wrong_undecodable_and_missing_tlps_fail():
    sb = board()
    sb.dut_tlp(cpl(0x100, 2))
    with pytest.raises(Mismatch, match="unexpected TLP"):
        sb.check()

    sb = board()
    sb.expect_tlp(cpl(0x100, 2, b"\x00\x00\x00\x00"), origin(7))
    sb.dut_tlp(cpl(0x100, 2, b"\x00\x00\x00\x01"))
    with pytest.raises(Mismatch, match=r"(?s)TLP mismatch.*request #7.*rerun: make waves"):
        sb.check()

    sb = board()
    sb.dut_tlp(b"\xff\xff")
    with pytest.raises(Mismatch, match="codec rejects"):
        sb.check()

    sb = board()
    sb.expect_tlp(cpl(0x100, 2), origin())
    sb.settle(Memory(), Memory())
    with pytest.raises(Mismatch, match="did not do everything"):
        sb.check()


# --- memory ----------------------------------------------------------------------------------------


def mems():
    return Memory(), Memory()


def test_bytes_match_in_order_per_address():
    ref, dut = mems()
    sb = board()
    for data in (b"\x01\x02", b"\x03"):
        ref.write(0x5000, data)
        sb.expect_write(0x5000, data, origin())
    dut.write(0x5000, b"\x01\x02")
    sb.dut_write(0x5000, b"\x01\x02")
    dut.write(0x5000, b"\x03")
    sb.dut_write(0x5000, b"\x03")
    sb.settle(ref, dut)
    sb.check()
    assert sb.bytes_matched == 3


@pytest.mark.parametrize("dut_writes,error", [
    ([(0x5000, b"\x03")], "DUT wrote byte 0x5000"),                      # second value first
    ([(0x5000, b"\x01\x02"), (0x5001, b"\x02")], "did not write"),     # one write too many
    ([(0x5000, b"\x01")], "did not do everything"),                      # byte 0x5001 missing
])
def test_bytes_out_of_order_extra_or_missing_fail(dut_writes, error):
    ref, dut = mems()
    sb = board()
    for data in (b"\x01\x02", b"\x03"):
        ref.write(0x5000, data)
        sb.expect_write(0x5000, data, origin())
    for a, d in dut_writes:
        dut.write(a, d)
        sb.dut_write(a, d)
    sb.settle(ref, dut)
    with pytest.raises(Mismatch, match=error):
        sb.check()


def test_settle_compares_touched_pages():
    ref, dut = mems()
    sb = board()
    ref.write(0x7008, b"\xaa")  # a CPU write that did not reach the DUT's memory
    sb.touch(0x7008, 1)
    sb.settle(ref, dut)
    with pytest.raises(Mismatch, match=r"memory differs at 0x7008"):
        sb.check()


@pytest.mark.parametrize("model,dut", [
    ([(PTE, PTE | A), (PTE | A, PTE | A | D)], [(PTE, PTE | A | D)]),   # DUT merged two updates
    ([(PTE, PTE | A | D)], [(PTE, PTE | A), (PTE | A, PTE | A | D)]),   # DUT's read walk went first
    ([(PTE, PTE | A)], [(PTE, PTE | A)]),
])
def test_ad_updates_may_be_ordered_differently(model, dut):
    ref, dmem = mems()
    ref.write64(ENTRY, model[-1][1])
    dmem.write64(ENTRY, dut[-1][1])
    sb = board()
    for old, new in model:
        sb.expect_ad(ENTRY, old, new, origin())
    for old, new in dut:
        sb.dut_ad_write(ENTRY, old, new)
    sb.settle(ref, dmem)
    sb.check()


@pytest.mark.parametrize("dut,error", [
    ((PTE, PTE | A | D), "sets bits the model did not set"),            # D by a read
    ((PTE | A, PTE), "changes more than"),                              # clears A
    ((PTE, (PTE | A) ^ 1 << 12), "changes more than"),                  # address bit
])
def test_illegal_ad_updates_fail(dut, error):
    sb = board()
    sb.expect_ad(ENTRY, PTE, PTE | A, origin())
    sb.dut_ad_write(ENTRY, *dut)
    with pytest.raises(Mismatch, match=error):
        sb.check()


def test_ad_update_nobody_made_fails_and_a_missing_one_is_a_memory_difference():
    sb = board()
    sb.dut_ad_write(ENTRY, PTE, PTE | A)
    with pytest.raises(Mismatch, match="no model walk updated"):
        sb.check()

    ref, dut = mems()
    ref.write64(ENTRY, PTE | A)
    dut.write64(ENTRY, PTE)
    sb = board()
    sb.expect_ad(ENTRY, PTE, PTE | A, origin(3))
    sb.settle(ref, dut)
    with pytest.raises(Mismatch, match=r"(?s)memory differs.*request #3"):
        sb.check()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([A, A | D, A | EA, A | D | EA]), min_size=1, max_size=4),
       st.permutations(range(4)))
def test_any_order_of_the_models_updates_is_legal(bits, order):
    """The DUT applying the model's per-walk bit sets in any order (skipping those already set) ends
    equal and is accepted."""
    ref, dut = mems()
    sb = board()
    v = PTE
    for b in bits:
        if v | b != v:
            sb.expect_ad(ENTRY, v, v | b, origin())
            v |= b
    ref.write64(ENTRY, v)
    w = PTE
    for i in (k for k in order if k < len(bits)):
        if w | bits[i] != w:
            sb.dut_ad_write(ENTRY, w, w | bits[i])
            w |= bits[i]
    dut.write64(ENTRY, w)
    sb.settle(ref, dut)
    sb.check()


# --- fault records ---------------------------------------------------------------------------------

FAULTS = [
    (FaultReason.SFS_2, 0x0100, 5, 0, 0x7000_1234, "read", FrcdAt.UNTRANSLATED),
    (FaultReason.SGN_6, 0x0208, None, 0, 0x1_2345_6000, "write", FrcdAt.UNTRANSLATED),
    (FaultReason.SCT_5, 0x3F07, None, 0, 0xABC000, "translation", FrcdAt.TRANSLATION_REQUEST),
    (FaultReason.SGN_2, 0x0100, 7, 1, 0xFFFF_8000_0000_0000, "read", FrcdAt.UNTRANSLATED),
    (FaultReason.SCT_10, 0x0100, 7, 0, 0x5000, "write", FrcdAt.TRANSLATED),
]


def model_with(faults) -> tuple[Iommu, FaultBook]:
    """A golden model that recorded ``faults`` (in order), and the book of what it tried."""
    m = Iommu(Memory())
    book = FaultBook()
    for f in faults:
        book.attempt(fault_fields(*f), origin())
        m.record_fault(*f)
    return m, book


def frcds(m: Iommu) -> list[int]:
    return [m.reg(r.name) for r in REGISTERS.frcds()]


def test_fault_fields_agree_with_the_models_frcd_packing():
    m, _ = model_with(FAULTS[:4])
    assert [frcd_fields(v) for v in frcds(m)] == [fault_fields(*f) for f in FAULTS[:4]]
    assert frcd_fields(0) is None


def test_same_faults_in_another_order_agree():
    m, book = model_with(FAULTS[:3])
    d, _ = model_with([FAULTS[2], FAULTS[0], FAULTS[1]])
    assert book.compare(frcds(m), m.reg("FSTS"), frcds(d), d.reg("FSTS")) == []


def test_a_missing_or_foreign_record_is_reported():
    m, book = model_with(FAULTS[:3])
    d, _ = model_with([FAULTS[0], FAULTS[1], FAULTS[3]])
    problems = book.compare(frcds(m), m.reg("FSTS"), frcds(d), d.reg("FSTS"))
    assert any("missing" in p for p in problems) and any("does not have" in p for p in problems)
    d, _ = model_with(FAULTS[:2])
    assert any("slots" in p for p in book.compare(frcds(m), m.reg("FSTS"), frcds(d), d.reg("FSTS")))


def test_overflow_accepts_any_four_of_the_window_and_needs_pfo():
    m, book = model_with(FAULTS)          # five faults: the fifth sets PFO
    assert REGISTERS["FSTS"].field("pfo").get(m.reg("FSTS")) == 1
    d, _ = model_with(FAULTS[1:] + FAULTS[:1])   # the DUT logged another four, then overflowed
    assert book.compare(frcds(m), m.reg("FSTS"), frcds(d), d.reg("FSTS")) == []
    foreign = list(FAULTS[1:4]) + [(FaultReason.SPT_2, 0x0999, 1, 0, 0, "read", FrcdAt.UNTRANSLATED),
                                   FAULTS[0]]
    d, _ = model_with(foreign)
    assert any("not one of the faults" in p for p in book.compare(frcds(m), m.reg("FSTS"), frcds(d),
                                                                     d.reg("FSTS")))
    d, _ = model_with(FAULTS[:4])          # four records, no overflow in the DUT
    assert any("PFO" in p for p in book.compare(frcds(m), m.reg("FSTS"), frcds(d), d.reg("FSTS")))
