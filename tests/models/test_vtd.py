"""Tests of models.vtd against the bit tables of vtd.md (expected values computed by hand from the
digest's tables, or from the Linux macro layouts the digest quotes; never from the code under test)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import paging
from models.vtd import (
    FAULT_INFO,
    INV_DESC_CLASSES,
    PROFILE,
    REGISTERS,
    Access,
    CapabilityProfile,
    CcInvDesc,
    ContextEntry,
    DevTlbInvDesc,
    FaultReason,
    FrcdAt,
    FrcdType,
    FsEntry,
    HptInvDesc,
    IecInvDesc,
    InvDescError,
    InvDescType,
    InvWaitDesc,
    IotlbInvDesc,
    Iqei,
    PageGroupResponseDescriptor,
    PageRequestDescriptor,
    PasidDirEntry,
    PasidEntry,
    PcInvDesc,
    PDevTlbInvDesc,
    Pgtt,
    PIotlbInvDesc,
    ProfileError,
    Register,
    RegField,
    Response,
    ResponseCode,
    RootEntry,
    build_registers,
    decode_inv_desc,
)

FAST = settings(max_examples=40, deadline=None)

#: a profile in which every descriptor type exists (IEC needs IR, 0xA needs HPTS)
ALL_TYPES = dataclasses.replace(PROFILE, ir=1, hpts=1)


def qws(*words: int) -> int:
    """Raw structure value from its little-endian 64-bit words, QW0 first."""
    return sum(w << (64 * i) for i, w in enumerate(words))


def le(*words: int) -> bytes:
    return b"".join(w.to_bytes(8, "little") for w in words)


# ------------------------------------------------------------------------------------------------
# 1. Translation structures: worked examples (vtd §2.2-§2.5)
# ------------------------------------------------------------------------------------------------


def test_fsentry_is_reexported_not_redefined():
    assert FsEntry is paging.FsEntry


def test_root_entry_worked_example():
    # LP bit 0, LCTP 63:12, UP bit 64 (QW1[0]), UCTP 127:76 (QW1[63:12])
    r = RootEntry(lp=1, lctp=0x12345, up=1, uctp=0xABCDE)
    assert r.to_bytes() == bytes.fromhex("0150341200000000" "01e0cdab00000000")
    assert r.raw == qws(0x12345001, 0xABCDE001)
    back = RootEntry.from_bytes(le(0x12345001, 0xABCDE001))
    assert (back.lp, back.lctp, back.up, back.uctp) == (1, 0x12345, 1, 0xABCDE)
    assert back.lctp_address == 0x12345000 and back.uctp_address == 0xABCDE000
    # devfn 0x00-0x7F -> lower half, 0x80-0xFF -> upper half (vtd §2.1)
    assert back.context_table(0x7F) == (True, 0x12345000)
    assert back.context_table(0x80) == (True, 0xABCDE000)
    assert RootEntry(lp=1).context_table(0x85) == (False, 0)
    assert r.reserved_violations(48) == []


def test_context_entry_worked_example():
    c = ContextEntry(p=1, dte=1, paside=1, pre=1, pdts=7, pasiddirptr=0x1000, rid_pasid=0x12345, rid_priv=1)
    # QW0 = P | DTE<<2 | PASIDE<<3 | PRE<<4 | PDTS<<9 | dir address; QW1 = RID_PASID | RID_PRIV<<20
    assert c.raw == qws(0x1 | 0x4 | 0x8 | 0x10 | (7 << 9) | 0x1000000, 0x12345 | (1 << 20))
    assert c.raw == qws(0x1000E1D, 0x112345)
    back = ContextEntry(qws(0x1000E1D, 0x112345))
    assert back.fields() == dict(
        p=1, fpd=0, dte=1, paside=1, pre=1, hpte=0, eptr=0, pdts=7,
        pasiddirptr=0x1000, rid_pasid=0x12345, rid_priv=1,
    )
    assert back.pasiddirptr_address == 0x1000000
    assert ContextEntry(fpd=1).raw == 0x2
    assert ContextEntry(hpte=1).raw == 0x20 and ContextEntry(eptr=1).raw == 0x40


def test_context_entry_helpers():
    assert ContextEntry(pdts=0).max_pasid() == 2**13 - 1
    assert ContextEntry(pdts=7).max_pasid() == 2**20 - 1  # 2^(7+7)=16384 directory entries x 64
    c = ContextEntry(rid_pasid=0x55, rid_priv=1)
    assert c.effective_rid_pasid(PROFILE) == 0x55  # RPS=1
    assert c.effective_rid_pasid(dataclasses.replace(PROFILE, rps=0)) == 0
    assert c.effective_rid_priv(PROFILE) == 0  # RPRIVS=0
    assert c.effective_rid_priv(dataclasses.replace(PROFILE, rprivs=1)) == 1


def test_pasid_dir_entry_worked_example():
    d = PasidDirEntry(p=1, fpd=1, smptblptr=0x7FFFF)
    assert d.to_bytes() == bytes.fromhex("03f0ff7f00000000")
    assert PasidDirEntry.from_bytes(bytes.fromhex("03f0ff7f00000000")) == d
    assert d.smptblptr_address == 0x7FFFF000


def test_pasid_entry_worked_example_linux_first_level():
    # Linux SVA setup: FSPTPTR = pgd, FSPM = 01 (LA57), DID, AW = 010, PWSNP, PGTT = 001, P
    e = PasidEntry(p=1, aw=2, pgtt=Pgtt.FIRST_STAGE, did=1, pwsnp=1, fspm=1, fsptptr=0x123456)
    qw0 = 0x1 | (2 << 2) | (1 << 6)  # 0x49
    qw1 = 0x1 | (1 << (87 - 64))  # DID 79:64, PWSNP 87
    qw2 = (1 << (130 - 128)) | 0x123456000  # FSPM 131:130, FSPTPTR 191:140
    assert (qw0, qw1, qw2) == (0x49, 0x800001, 0x123456004)
    assert e.raw == qws(qw0, qw1, qw2)
    assert e.to_bytes() == le(qw0, qw1, qw2, 0, 0, 0, 0, 0)
    assert e.fsptptr_address == 0x123456000
    assert e.fs_levels() == 5
    assert e.reserved_violations(48, PROFILE) == []


def test_pasid_entry_worked_example_qw2_flags_and_hpt():
    e = PasidEntry(sre=1, wpe=1, ign133=1, eafe=1, hptsz=3, hptpfd=1, hptptr=0xABC, hptdid=0xBEEF)
    # SRE 128, WPE 132, bit 133, EAFE 135 -> QW2 bits 0, 4, 5, 7; HPTSZ 257:256, HPTPFD 258,
    # HPTPTR 319:268 (QW4[63:12]), HPTDID 335:320 (QW5[15:0])
    assert e.raw == qws(0, 0, 0xB1, 0, 0xABC007, 0xBEEF)
    back = PasidEntry(qws(0, 0x1234 << 32, 0, 0, 0, 0, 0, 0))
    assert back.pat == 0x1234  # PAT is QW1[63:32]
    assert PasidEntry(ssade=1, pgsnp=1, cd=1, emte=1).raw == qws((1 << 9), (1 << 24) | (1 << 25) | (1 << 26))


def test_pasid_entry_fs_levels():
    assert PasidEntry(fspm=0).fs_levels() == 4
    assert PasidEntry(fspm=1).fs_levels() == 5
    with pytest.raises(ValueError, match="fspm"):
        PasidEntry(fspm=2).fs_levels()


def test_entry_addresses():
    assert RootEntry.entry_address(0x1000, 0x12) == 0x1000 + 16 * 0x12
    assert ContextEntry.entry_address(0x2000, 0x85) == 0x2000 + 32 * 5  # devfn[6:0]
    assert PasidDirEntry.entry_address(0x3000, 0x12345) == 0x3000 + 8 * 0x48D  # PASID[19:6]
    assert PasidEntry.entry_address(0x4000, 0x12345) == 0x4000 + 64 * 5  # PASID[5:0]
    with pytest.raises(ValueError, match="bus"):
        RootEntry.entry_address(0, 0x100)
    with pytest.raises(ValueError, match="devfn"):
        ContextEntry.entry_address(0, -1)
    with pytest.raises(ValueError, match="PASID"):
        PasidEntry.entry_address(0, 1 << 20)


# ------------------------------------------------------------------------------------------------
# Reserved bits, by name
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, bit, name",
    [
        (RootEntry, 1, "rsvd[11:1]"),
        (RootEntry, 65, "rsvd[75:65]"),
        (ContextEntry, 7, "rsvd[8:7]"),
        (ContextEntry, 85, "rsvd[255:85]"),
        (ContextEntry, 255, "rsvd[255:85]"),
        (PasidDirEntry, 2, "rsvd[11:2]"),
        (PasidEntry, 5, "rsvd[5]"),  # 3.x SLEE
        (PasidEntry, 10, "rsvd[11:10]"),
        (PasidEntry, 80, "rsvd[86:80]"),
        (PasidEntry, 92, "rsvd[95:91]"),  # 3.x EMT
        (PasidEntry, 95, "rsvd[95:91]"),  # 3.x PCD
        (PasidEntry, 129, "rsvd[129]"),  # 3.x ERE
        (PasidEntry, 136, "rsvd[139:136]"),
        (PasidEntry, 200, "rsvd[255:192]"),
        (PasidEntry, 260, "rsvd[267:259]"),
        (PasidEntry, 400, "rsvd[511:336]"),
    ],
)
def test_reserved_bits_named(cls, bit, name):
    e = cls(1 << bit)
    assert e.reserved_set() == [name]
    assert e.reserved_violations(48) == [name]


def test_ign_bits_are_not_reserved():
    e = PasidEntry(ign133=1, ign134=1)
    assert e.raw == 1 << 133 | 1 << 134
    assert e.reserved_violations(48, PROFILE) == []


def test_pat_reserved_bits():
    # PAi in PAT bits 4i+2:4i, bit 4i+3 reserved
    assert PasidEntry(pat=0x07060504).reserved_violations(48) == []
    assert PasidEntry(pat=0x8 | 0x80000000).reserved_violations(48) == ["pat[3]", "pat[31]"]


@pytest.mark.parametrize(
    "entry, haw, expected",
    [
        (RootEntry(lctp=1 << 36), 48, ["lctp[63:48]"]),  # address bit 48
        (RootEntry(lctp=1 << 36), 52, []),
        (RootEntry(lctp=(1 << 36) - 1), 48, []),  # address bit 47 is fine
        (RootEntry(uctp=1 << 38), 48, ["uctp[127:112]"]),  # address bit 50
        (ContextEntry(pasiddirptr=1 << 51), 48, ["pasiddirptr[63:48]"]),  # address bit 63
        (ContextEntry(pasiddirptr=1 << 27), 39, ["pasiddirptr[63:39]"]),
        (PasidDirEntry(smptblptr=1 << 40), 48, ["smptblptr[63:48]"]),
        (PasidEntry(pgtt=1, fsptptr=1 << 36), 48, ["fsptptr[191:176]"]),
        (PasidEntry(pgtt=2, fsptptr=1 << 36), 48, []),  # FSPTPTR unused for second stage
        (PasidEntry(pgtt=3, fsptptr=1 << 36), 48, []),  # nested: a GPA, checked as SPT.4
        (PasidEntry(pgtt=2, ssptptr=1 << 36), 48, ["ssptptr[63:48]"]),
        (PasidEntry(pgtt=1, ssptptr=1 << 36), 48, []),
        (PasidEntry(hptptr=1 << 36), 48, ["hptptr[319:304]"]),
    ],
)
def test_pointer_bits_above_haw_are_reserved(entry, haw, expected):
    assert entry.reserved_violations(haw) == expected


def test_haw_out_of_range():
    with pytest.raises(ValueError, match="address width"):
        RootEntry().reserved_violations(64)


def test_capability_gated_fields():
    assert ContextEntry(hpte=1).reserved_violations(48) == []  # no profile: structural only
    assert ContextEntry(hpte=1, eptr=1).reserved_violations(48, PROFILE) == ["hpte", "eptr"]
    assert PasidEntry(sre=1).reserved_violations(48, PROFILE) == []  # SRS=1
    assert PasidEntry(sre=1).reserved_violations(48, dataclasses.replace(PROFILE, srs=0)) == ["sre"]
    assert PasidEntry(pwsnp=1).reserved_violations(48, dataclasses.replace(PROFILE, smpwcs=0)) == ["pwsnp"]
    gated = PasidEntry(pgsnp=1, cd=1, eafe=1, hptdid=1, ssade=1).reserved_violations(48, PROFILE)
    assert sorted(gated) == ["cd", "eafe", "hptdid", "pgsnp", "ssade"]


# ------------------------------------------------------------------------------------------------
# 2. Page request descriptor (vtd §5.1)
# ------------------------------------------------------------------------------------------------


def test_page_request_descriptor_worked_example():
    d = PageRequestDescriptor(
        pp=1, rid=0x0108, pasid=0x12345, rdr=1, wrr=1, lpig=1, prgi=0x1AB, addr=0x7FFF1234
    )
    qw0 = 0x01 | (1 << 8) | (0x0108 << 16) | (0x12345 << 32)
    qw1 = 0x1 | 0x2 | 0x4 | (0x1AB << 3) | (0x7FFF1234 << 12)
    assert (qw0, qw1) == (0x00012345_01080101, 0x7FFF1234D5F)
    assert d.to_bytes() == le(qw0, qw1, 0, 0)
    back = PageRequestDescriptor.from_bytes(le(qw0 | (1 << 53), qw1, 0, 0))
    assert back.pmr == 1 and back.exr == 0 and back.address == 0x7FFF1234000
    assert back.needs_response() and not back.is_stop_marker()


def test_page_request_stop_marker_and_reserved():
    stop = PageRequestDescriptor(pp=1, pasid=3, lpig=1)
    assert stop.is_stop_marker() and not stop.needs_response()
    assert not PageRequestDescriptor(rdr=1).needs_response()  # LPIG=0
    assert PageRequestDescriptor().raw == 0x01  # type preset
    assert PageRequestDescriptor(0).raw == 0
    assert PageRequestDescriptor(1 << 9).reserved_set() == ["rsvd[15:9]"]  # 3.x PDP
    assert PageRequestDescriptor(1 << 54).reserved_set() == ["rsvd[63:54]"]
    assert PageRequestDescriptor(1 << 200).reserved_set() == ["rsvd[255:128]"]  # 3.x private data


# ------------------------------------------------------------------------------------------------
# Invalidation descriptors (vtd §4.2): worked examples in Linux macro form
# ------------------------------------------------------------------------------------------------

INV_EXAMPLES = [
    # (descriptor built by field, QW0, QW1) -- QW2 = QW3 = 0
    (CcInvDesc(g=3, sid=0x0108), (0x0108 << 32) | (3 << 4) | 1, 0),
    (IotlbInvDesc(g=2, did=0x42, dr=1, dw=1), (0x42 << 16) | (1 << 7) | (1 << 6) | (2 << 4) | 2, 0),
    (IotlbInvDesc(g=3, did=7, am=9, ih=1, addr=0x200), (7 << 16) | (3 << 4) | 2, 0x200000 | 0x40 | 9),
    (DevTlbInvDesc(sid=0x0108, addr=0xABCD), (0x0108 << 32) | 3, 0xABCD000),
    (DevTlbInvDesc(pfsid_lo=0x3, pfsid_hi=0x012, mip=5, s=1), (0x012 << 52) | (5 << 16) | (0x3 << 12) | 3, 1),
    (IecInvDesc(g=1, im=3, iidx=0x20), (0x20 << 32) | (3 << 27) | (1 << 4) | 4, 0),
    (
        InvWaitDesc(status_data=1, sw=1, pd=1, status_addr=0x12345678 >> 2),
        (1 << 32) | 0x20 | 0x80 | 5,
        0x12345678,
    ),
    (InvWaitDesc(if_=1, fn=1), 0x10 | 0x40 | 5, 0),
    (
        PIotlbInvDesc(pasid=5, did=1, g=3, addr=0x7F0000200, ih=1, am=9),
        (5 << 32) | (1 << 16) | (3 << 4) | 6,
        0x7F0000200000 | 0x40 | 9,
    ),
    (PcInvDesc(pasid=5, did=1, g=1), (5 << 32) | (1 << 16) | (1 << 4) | 7, 0),
    (
        PDevTlbInvDesc(sid=0x0100, pasid=5, mip=0x1F, pfsid_lo=3, pfsid_hi=0x012, s=1, addr=0x7F00001FF),
        0x0120_0005_0100_31F8,
        0x7F00001FF800,
    ),
    (PDevTlbInvDesc(gi=1), 8, 1),
    (
        PageGroupResponseDescriptor(pasid=5, rid=0x0108, rc=ResponseCode.INVALID_REQUEST, pp=1, prgi=0x1AB),
        0x0000_0005_0108_1019,
        0x1AB << 3,
    ),
    (HptInvDesc(g=1, hptdid=0x1234, am=2, ih=3, addr=5), 0x1234_001A, 0x50C2),
]


@pytest.mark.parametrize("desc, qw0, qw1", INV_EXAMPLES)
def test_inv_desc_worked_examples(desc, qw0, qw1):
    assert desc.to_bytes() == le(qw0, qw1, 0, 0)
    decoded = decode_inv_desc(le(qw0, qw1, 0, 0), ALL_TYPES)
    assert type(decoded) is type(desc) and decoded == desc
    assert decoded.desc_type == type(desc).TYPE


def test_inv_desc_helpers():
    d = PDevTlbInvDesc(pfsid_lo=0x3, pfsid_hi=0x012, addr=0x7F00001FF)
    assert d.pfsid == 0x0123 and d.address == 0x7F00001FF000
    assert DevTlbInvDesc(pfsid_lo=0xF, pfsid_hi=0xFFF).pfsid == 0xFFFF
    assert InvWaitDesc(status_addr=0x12345678 >> 2).status_address == 0x12345678


def test_inv_desc_type_is_split_over_two_fields():
    for t, cls in INV_DESC_CLASSES.items():
        assert cls.TYPE == t
        d = cls()
        assert d.raw == (t & 0xF) | ((t >> 4) << 9)
        assert d.desc_type == t
    assert set(INV_DESC_CLASSES) == set(range(1, 0xB))
    d = PcInvDesc(type_hi=1)  # type 0x17
    assert d.desc_type == 0x17 and d.raw == 0x7 | (1 << 9)
    assert CcInvDesc(0).raw == 0  # an explicit raw value is kept, type included


def test_pgr_lpig_bit_is_ignored_not_reserved():
    # a pre-2025 Linux response: QW1 = PRGI<<3 | LPIG<<2
    raw = le(0x0000_0005_0108_0019, (0x1AB << 3) | (1 << 2), 0, 0)
    d = decode_inv_desc(raw)
    assert isinstance(d, PageGroupResponseDescriptor)
    assert d.ign66 == 1 and d.prgi == 0x1AB and d.rc == ResponseCode.SUCCESS and d.pp == 1


def test_decode_dispatch_every_type():
    for t, cls in INV_DESC_CLASSES.items():
        valid_g = sorted(cls.VALID_G)[0] if cls.VALID_G else 0
        d = cls(g=valid_g) if "g" in cls.field_names() else cls()
        got = decode_inv_desc(d.to_bytes(), ALL_TYPES)
        assert type(got) is cls and got.desc_type == t


@pytest.mark.parametrize("dtype", [0x0, 0xB, 0xF, 0x10, 0x19, 0x7F])
def test_decode_invalid_type(dtype):
    raw = le((dtype & 0xF) | ((dtype >> 4) << 9), 0, 0, 0)
    with pytest.raises(InvDescError, match=f"{dtype:#x}") as e:
        decode_inv_desc(raw, ALL_TYPES)
    assert e.value.iqei == Iqei.INVALID_TYPE == 3


@pytest.mark.parametrize(
    "desc, profile, cap",
    [
        (HptInvDesc(g=1), PROFILE, "HPTS"),  # HPTS=0 in our profile
        (IecInvDesc(), PROFILE, "IR"),  # IR=0 in our profile
        (DevTlbInvDesc(), dataclasses.replace(PROFILE, dt=0), "DT"),
        (PDevTlbInvDesc(), dataclasses.replace(PROFILE, dt=0), "DT"),
        (PageGroupResponseDescriptor(), dataclasses.replace(PROFILE, prs=0), "PRS"),
    ],
)
def test_decode_type_needs_capability(desc, profile, cap):
    with pytest.raises(InvDescError, match=f"ECAP.{cap}=0") as e:
        decode_inv_desc(desc.to_bytes(), profile)
    assert e.value.iqei == 3


@pytest.mark.parametrize(
    "desc, bit, name",
    [
        (CcInvDesc(g=1), 6, "rsvd[8:6]"),
        (CcInvDesc(g=1), 12, "rsvd[15:12]"),
        # gaps are named by structure bit range, so a gap running into the next QW is one name
        (CcInvDesc(g=1), 50, "rsvd[255:50]"),
        (CcInvDesc(g=1), 64, "rsvd[255:50]"),  # 128-bit descriptor padded with zeros
        (IotlbInvDesc(g=1), 71, "rsvd[75:71]"),
        (IotlbInvDesc(g=1), 128, "rsvd[255:128]"),
        (DevTlbInvDesc(), 4, "rsvd[8:4]"),
        (DevTlbInvDesc(), 21, "rsvd[31:21]"),
        (DevTlbInvDesc(), 48, "rsvd[51:48]"),
        (DevTlbInvDesc(), 65, "rsvd[75:65]"),
        (InvWaitDesc(), 64, "rsvd[65:64]"),
        (PIotlbInvDesc(g=2), 52, "rsvd[63:52]"),
        (PcInvDesc(), 64, "rsvd[255:52]"),
        (PDevTlbInvDesc(), 65, "rsvd[74:65]"),
        (PageGroupResponseDescriptor(), 5, "rsvd[8:5]"),  # 3.x PDP
        (PageGroupResponseDescriptor(), 52, "rsvd[65:52]"),
        (PageGroupResponseDescriptor(), 64, "rsvd[65:52]"),
        (PageGroupResponseDescriptor(), 130, "rsvd[255:76]"),  # 3.x private data
    ],
)
def test_decode_reserved_field(desc, bit, name):
    with pytest.raises(InvDescError, match=name.replace("[", r"\[").replace("]", r"\]")) as e:
        decode_inv_desc(_set_bit(desc, bit), ALL_TYPES)
    assert e.value.iqei == Iqei.RESERVED_FIELD == 4


def _set_bit(desc, bit: int) -> bytes:
    return type(desc)(desc.raw | (1 << bit)).to_bytes()


def test_decode_pd_needs_pds():
    wait = InvWaitDesc(sw=1, pd=1).to_bytes()
    assert decode_inv_desc(wait).pd == 1  # PDS=1 in our profile
    with pytest.raises(InvDescError, match="pd") as e:
        decode_inv_desc(wait, dataclasses.replace(PROFILE, pds=0))
    assert e.value.iqei == 4


@pytest.mark.parametrize(
    "cls, bad, good",
    [
        (PIotlbInvDesc, [0b00, 0b01], [0b10, 0b11]),
        (PcInvDesc, [0b10], [0b00, 0b01, 0b11]),
        (CcInvDesc, [0b00], [0b01, 0b10, 0b11]),
        (IotlbInvDesc, [0b00], [0b01, 0b10, 0b11]),
    ],
)
def test_decode_granularity(cls, bad, good):
    for g in bad:
        with pytest.raises(InvDescError, match="granularity") as e:
            decode_inv_desc(cls(g=g).to_bytes())
        assert e.value.iqei == 4
    for g in good:
        assert decode_inv_desc(cls(g=g).to_bytes()).g == g


def test_decode_length_errors():
    for n in (0, 16, 31, 33, 64):
        with pytest.raises(ValueError, match="32 bytes") as e:
            decode_inv_desc(bytes(n))
        assert not isinstance(e.value, InvDescError)


def test_from_bytes_length_errors():
    with pytest.raises(ValueError, match="expected 16 bytes"):
        RootEntry.from_bytes(bytes(15))
    with pytest.raises(ValueError, match="expected 64 bytes"):
        PasidEntry.from_bytes(bytes(32))
    with pytest.raises(ValueError, match="expected 32 bytes"):
        PageRequestDescriptor.from_bytes(bytes(16))


def test_field_value_too_wide():
    with pytest.raises(ValueError, match="pdts"):
        ContextEntry(pdts=8)
    with pytest.raises(ValueError, match="pasid"):
        PcInvDesc(pasid=1 << 20)


# ------------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------------

ALL_STRUCTS = [
    RootEntry, ContextEntry, PasidDirEntry, PasidEntry, PageRequestDescriptor, *INV_DESC_CLASSES.values()
]


@pytest.mark.parametrize("cls", ALL_STRUCTS, ids=lambda c: c.__name__)
@FAST
@given(data=st.data())
def test_bytes_round_trip(cls, data):
    b = data.draw(st.binary(min_size=cls.nbytes(), max_size=cls.nbytes()))
    assert cls.from_bytes(b).to_bytes() == b


@pytest.mark.parametrize("cls", list(INV_DESC_CLASSES.values()), ids=lambda c: c.__name__)
@FAST
@given(data=st.data())
def test_valid_descriptor_decodes_to_itself(cls, data):
    values = {}
    for name in cls.field_names():
        if name in ("type_lo", "type_hi"):
            continue
        f = cls._fields[name]
        if name == "g" and cls.VALID_G is not None:
            values[name] = data.draw(st.sampled_from(sorted(cls.VALID_G)))
        else:
            values[name] = data.draw(st.integers(0, f.mask))
    d = cls(**values)
    got = decode_inv_desc(d.to_bytes(), ALL_TYPES)
    assert got == d and got.fields() == d.fields()


# ------------------------------------------------------------------------------------------------
# 3. Fault reasons (vtd §6.1) -- the digest's table transcribed: code, condition, Q, UT, TR, PR
# ------------------------------------------------------------------------------------------------

DIGEST_FAULT_TABLE = """
0x30 RTA.1 N UR CA IR
0x31 RTA.2 N -,UR UR -
0x32 RTA.3 N - - IR
0x33 RTA.4 N UR UR IR
0x34 RTA.5 N -,UR UR -
0x38 SRT.1 N UR CA IR
0x39 SRT.2 N UR UR IR
0x3A SRT.3 N UR CA IR
0x40 SCT.1 N UR CA IR
0x41 SCT.2 Y UR UR IR
0x42 SCT.3 Y UR CA IR
0x43 SCT.4 Y UR CA IR
0x44 SCT.5 Y - UR -
0x45 SCT.6 Y -,UR UR IR
0x46 SCT.7 Y -,UR UR IR
0x47 SCT.8 Y - - IR
0x48 SCT.9 Y -,UR UR IR
0x49 SCT.10 Y - - -
0x50 SPD.1 N UR CA IR
0x51 SPD.2 Y UR S0 IR
0x52 SPD.3 Y UR CA IR
0x58 SPT.1 N UR CA IR
0x59 SPT.2 Y UR S0 IR
0x5A SPT.3 Y UR CA IR
0x5B SPT.4 Y UR CA IR
0x5C SPT.5 Y -,UR S0 -
0x5D SPT.6 Y UR S0 -
0x60 SPT.9 Y - - -
0x70 SFS.1 Y UR S0 -
0x71 SFS.2 Y UR S0 -
0x72 SFS.3 Y UR S0 -
0x73 SFS.4 Y UR S0 -
0x74 SFS.5 Y UR S0 -
0x75 SFS.6 Y UR S0 -
0x76 SFS.7 Y UR S0 -
0x77 SFS.8 Y UR S0 -
0x78 SSS.1 Y UR CA/S0 -
0x79 SSS.2 Y UR CA/S0 -
0x7A SSS.3 Y UR CA/S0 -
0x7B SSS.4 Y UR CA/S0 -
0x7C SSS.5 Y UR CA/S0 -
0x7D SSS.6 Y UR CA/S0 -
0x80 SGN.1 Y UR S0 -
0x81 SGN.2 Y UR S0 -
0x83 SGN.4 Y UR S0 -
0x84 SGN.5 Y UR S0 -
0x85 SGN.6 Y UR Seff -
0x86 SGN.7 Y UR Seff -
0x87 SGN.8 Y UR CA -
0x89 SGN.10 Y -,UR UR -
0x90 SFS.9 Y UR S0 -
0x91 SFS.10 Y UR S0 -
"""


def _digest_rows():
    for line in DIGEST_FAULT_TABLE.strip().splitlines():
        code, cond, q, ut, tr, pr = line.split()
        yield int(code, 16), cond, q, ut, tr, pr


def test_fault_reason_codes_and_names_match_digest():
    rows = list(_digest_rows())
    assert {code for code, *_ in rows} == {int(r) for r in FaultReason}
    assert set(FAULT_INFO) == set(FaultReason)
    for code, cond, *_ in rows:
        assert FaultReason(code).condition == cond


@pytest.mark.parametrize("row", list(_digest_rows()), ids=lambda r: r[1])
def test_fault_info_matches_digest(row):
    code, cond, q, ut, tr, pr = row
    info = FAULT_INFO[FaultReason(code)]
    assert info.reason == code
    assert info.qualified == (q == "Y")
    ut_wo, ut_w = ut.split(",") if "," in ut else (ut, ut)
    assert (info.ut_without_pasid.value if info.ut_without_pasid else "-") == ut_wo
    assert (info.ut_with_pasid.value if info.ut_with_pasid else "-") == ut_w
    assert (info.tr.value if info.tr else "-") == tr
    assert (info.pr.value if info.pr else "-") == pr
    assert info.description and FaultReason(code).description == info.description


def test_fault_spot_checks():
    # a dozen named spot checks, straight from vtd §6.1
    assert FaultReason.RTA_1 == 0x30 and not FaultReason.RTA_1.qualified
    assert FaultReason.SRT_1 == 0x38 and FAULT_INFO[FaultReason.SRT_1].tr is Response.CA
    assert FaultReason.SCT_2 == 0x41 and FaultReason.SCT_2.qualified
    assert FAULT_INFO[FaultReason.SCT_2].tr is Response.UR and FAULT_INFO[FaultReason.SCT_2].pr is Response.IR
    assert FaultReason.SCT_8 == 0x47 and FAULT_INFO[FaultReason.SCT_8].ut_with_pasid is None
    assert FaultReason.SPD_1 == 0x50 and not FaultReason.SPD_1.qualified  # fetch errors never suppressed
    assert FAULT_INFO[FaultReason.SPT_2].tr is Response.S0
    assert FaultReason.SPT_6 == 0x5D and FAULT_INFO[FaultReason.SPT_6].pr is None
    assert FaultReason.SFS_2 == 0x71 and FAULT_INFO[FaultReason.SFS_2].tr is Response.S0
    assert FaultReason.SGN_1 == 0x80 and FAULT_INFO[FaultReason.SGN_1].ut_without_pasid is Response.UR
    assert FAULT_INFO[FaultReason.SGN_6].tr is Response.SEFF
    assert FAULT_INFO[FaultReason.SGN_8].tr is Response.CA
    assert FaultReason.SGN_10 == 0x89 and FAULT_INFO[FaultReason.SGN_10].ut_without_pasid is None
    assert FaultReason.SFS_10 == 0x91 and FaultReason.SFS_9 == 0x90
    assert 0x82 not in {int(r) for r in FaultReason}  # 3.x SGN.3 removed in 5.10


def test_translation_request_logging():
    # UR/CA are logged, S0/Seff are recoverable and not logged, SFS.10 is "also reported" (vtd §6.1, §9.5)
    assert FAULT_INFO[FaultReason.SCT_2].tr_logged is True
    assert FAULT_INFO[FaultReason.SRT_3].tr_logged is True
    assert FAULT_INFO[FaultReason.SFS_2].tr_logged is False
    assert FAULT_INFO[FaultReason.SGN_6].tr_logged is False
    assert FAULT_INFO[FaultReason.SFS_10].tr_logged is True
    assert FAULT_INFO[FaultReason.SCT_8].tr_logged is None  # no translation-request outcome
    assert FAULT_INFO[FaultReason.SSS_1].tr_logged is None  # CA/S0 not resolved by the digest


def test_frcd_type_and_at_encoding():
    # {T1,T2}: 00 write, 01 page request, 10 read, 11 AtomicOp (vtd §1.9)
    kinds = (FrcdType.WRITE, FrcdType.PAGE_REQUEST, FrcdType.READ, FrcdType.ATOMIC)
    assert [(t.t1, t.t2) for t in kinds] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert FrcdType.from_bits(1, 0) is FrcdType.READ
    assert (FrcdAt.UNTRANSLATED, FrcdAt.TRANSLATION_REQUEST, FrcdAt.TRANSLATED) == (0, 1, 2)


def test_frcd_register_worked_example():
    frcd = REGISTERS["FRCD0"]
    value = frcd.pack(
        f=1, t1=FrcdType.READ.t1, t2=FrcdType.READ.t2, at=FrcdAt.UNTRANSLATED, pv=0x12345,
        fr=FaultReason.SFS_2, pp=1, sid=0x0108, fi=0x7F001,
    )  # fmt: skip
    hi = (1 << 63) | (1 << 62) | (0x12345 << 40) | (0x71 << 32) | (1 << 31) | 0x0108
    assert hi == 0xC123457180000108
    assert value == (hi << 64) | 0x7F001000
    assert frcd.unpack(value)["fr"] == 0x71


# ------------------------------------------------------------------------------------------------
# 4. Register page (vtd §1.1)
# ------------------------------------------------------------------------------------------------

EXPECTED_OFFSETS = {
    "VER": (0x000, 32), "CAP": (0x008, 64), "ECAP": (0x010, 64), "GCMD": (0x018, 32), "GSTS": (0x01C, 32),
    "RTADDR": (0x020, 64), "CCMD": (0x028, 64), "FSTS": (0x034, 32), "FECTL": (0x038, 32),
    "FEDATA": (0x03C, 32), "FEADDR": (0x040, 32), "FEUADDR": (0x044, 32), "IQH": (0x080, 64),
    "IQT": (0x088, 64), "IQA": (0x090, 64), "ICS": (0x09C, 32), "IECTL": (0x0A0, 32), "IEDATA": (0x0A4, 32),
    "IEADDR": (0x0A8, 32), "IEUADDR": (0x0AC, 32), "IQERCD": (0x0B0, 64), "PQH": (0x0C0, 64),
    "PQT": (0x0C8, 64), "PQA": (0x0D0, 64), "PRS": (0x0DC, 32), "PECTL": (0x0E0, 32), "PEDATA": (0x0E4, 32),
    "PEADDR": (0x0E8, 32), "PEUADDR": (0x0EC, 32), "IVA": (0x0F0, 64), "IOTLB_REG": (0x0F8, 64),
    "FRCD0": (0x220, 128), "FRCD1": (0x230, 128), "FRCD2": (0x240, 128), "FRCD3": (0x250, 128),
}  # fmt: skip


def test_register_offsets_match_digest():
    assert {r.name: (r.offset, r.width) for r in REGISTERS} == EXPECTED_OFFSETS


def test_registers_do_not_overlap_and_fields_fit():
    end = 0
    for r in REGISTERS:  # iteration is in offset order
        assert r.offset >= end, r.name
        end = r.offset + r.width // 8
        assert end <= 0x1000
        used = 0
        for f in r.fields:
            assert 0 <= f.lo <= f.hi < r.width, (r.name, f.name)
            m = ((1 << (f.hi - f.lo + 1)) - 1) << f.lo
            assert not used & m, (r.name, f.name)
            used |= m
            assert f.name == f.name.lower()


def test_register_reset_values():
    resets = {r.name: r.reset for r in REGISTERS}
    assert resets["VER"] == 0x80
    # CAP: ESRTPS 63, FS5LP 60, FS1GP 56, DRD 55, DWD 54, MAMV=18 53:48, NFR=3 47:40, PSI 39,
    # FRO=0x22 33:24, MGAW=47 21:16, SAGAW bit 10, ND=6
    assert resets["CAP"] == 0x91D2_0380_222F_0406
    # ECAP: SMS 58, RPS 49, SMPWCS 48, FSTS 47, SMTS 43, PDS 42, PASID 40, PSS=19 39:35, NWFS 33,
    # SRS 31, PRS 29, IRO=0x0F 17:8, DT 2, QI 1, C 0
    assert resets["ECAP"] == 0x0403_8D9A_A000_0F07
    for name in ("FECTL", "IECTL", "PECTL"):
        assert resets[name] == 0x8000_0000  # IM=1
    others = set(resets) - {"VER", "CAP", "ECAP", "FECTL", "IECTL", "PECTL"}
    assert all(resets[n] == 0 for n in others)


@pytest.mark.parametrize(
    "reg, field, access, hi, lo",
    [
        ("FSTS", "fri", Access.ROS, 15, 8),
        ("FSTS", "ite", Access.RW1CS, 6, 6),
        ("FSTS", "ice", Access.RW1CS, 5, 5),
        ("FSTS", "iqe", Access.RW1CS, 4, 4),
        ("FSTS", "ppf", Access.ROS, 1, 1),
        ("FSTS", "pfo", Access.RW1CS, 0, 0),
        ("PRS", "pro", Access.RW1CS, 1, 1),
        ("PRS", "ppr", Access.RW1CS, 0, 0),
        ("ICS", "iwc", Access.RW1CS, 0, 0),
        ("FRCD2", "f", Access.RW1CS, 127, 127),
        ("FRCD0", "t2", Access.ROS, 92, 92),
        ("GCMD", "te", Access.WO, 31, 31),
        ("GCMD", "srtp", Access.WO, 30, 30),
        ("GCMD", "qie", Access.WO, 26, 26),
        ("GSTS", "qies", Access.RO, 26, 26),
        ("RTADDR", "ttm", Access.RW, 11, 10),
        ("IQH", "qh", Access.RO, 18, 4),
        ("IQT", "qt", Access.RW, 18, 4),
        ("IQA", "dw", Access.RW, 11, 11),
        ("IQA", "qs", Access.RW, 2, 0),
        ("IQERCD", "iqei", Access.RO, 3, 0),
        ("PQH", "pqh", Access.RW, 18, 5),
        ("PQA", "pqs", Access.RW, 2, 0),
        ("FECTL", "ip", Access.RO, 30, 30),
        ("PECTL", "im", Access.RW, 31, 31),
        ("IEADDR", "ma", Access.RW, 31, 2),
        ("IVA", "am", Access.WO, 5, 0),
        ("IOTLB_REG", "iaig", Access.RO, 58, 57),
    ],
)
def test_register_field_positions_and_access(reg, field, access, hi, lo):
    f = REGISTERS[reg].field(field)
    assert (f.access, f.hi, f.lo) == (access, hi, lo)


def test_whole_registers_access():
    assert all(f.access is Access.RO for n in ("VER", "CAP", "ECAP", "GSTS") for f in REGISTERS[n].fields)
    assert all(f.access is Access.WO for f in REGISTERS["GCMD"].fields)


def test_register_pack_unpack_and_masks():
    rt = REGISTERS["RTADDR"]
    assert rt.pack(rta=0x12345, ttm=1) == 0x12345400
    assert rt.unpack(0x12345400) == {"rta": 0x12345, "ttm": 1, "ssirwe": 0}
    with pytest.raises(KeyError, match="bogus"):
        rt.pack(bogus=1)
    with pytest.raises(ValueError, match="RTADDR.ttm"):
        rt.pack(ttm=4)
    with pytest.raises(ValueError, match="does not fit"):
        rt.unpack(1 << 64)
    assert REGISTERS["FSTS"].mask(Access.RW1CS) == 0x71
    assert REGISTERS["FSTS"].mask(Access.ROS) == 0xFF02
    assert REGISTERS["IQA"].mask(Access.RW) == 0xFFFF_FFFF_FFFF_F807  # same as QEMU's write mask
    assert REGISTERS["PQA"].mask() == 0xFFFF_FFFF_FFFF_F007


def test_register_lookup():
    assert REGISTERS.at(0x008).name == "CAP"
    assert REGISTERS.find(0x00C) == (REGISTERS["CAP"], 4)
    assert REGISTERS.find(0x22C) == (REGISTERS["FRCD0"], 12)
    assert REGISTERS.find(0x030) is None  # hole between CCMD and FSTS
    with pytest.raises(KeyError):
        REGISTERS.at(0x00C)
    with pytest.raises(KeyError, match="NOPE"):
        REGISTERS["NOPE"]
    assert "PQA" in REGISTERS and len(REGISTERS) == len(EXPECTED_OFFSETS)
    assert [r.name for r in REGISTERS.frcds()] == ["FRCD0", "FRCD1", "FRCD2", "FRCD3"]


def test_register_description_validation():
    with pytest.raises(ValueError, match="outside 32 bits"):
        Register("X", 0, 32, (RegField("a", 32, 0, Access.RW),))
    with pytest.raises(ValueError, match="overlaps"):
        Register("X", 0, 32, (RegField("a", 3, 0, Access.RW), RegField("b", 4, 3, Access.RW)))
    with pytest.raises(ValueError, match="aligned"):
        Register("X", 4, 64, ())
    with pytest.raises(ValueError, match="reset"):
        RegField("a", 1, 0, Access.RW, reset=4)


# ------------------------------------------------------------------------------------------------
# 5. Capability profile
# ------------------------------------------------------------------------------------------------

CAP_SET = dict(
    nd=6, mgaw=47, sagaw=0b00100, fs1gp=1, fs5lp=1, psi=1, mamv=18, nfr=3, fro=0x22, drd=1, dwd=1, esrtps=1
)
ECAP_SET = dict(
    c=1, qi=1, dt=1, iro=0x0F, prs=1, srs=1, nwfs=1, pss=19, pasid=1, pds=1, smts=1, fsts=1, smpwcs=1,
    rps=1, sms=1,
)


def test_profile_values_decode_back():
    cap = REGISTERS["CAP"].unpack(PROFILE.cap_value())
    assert {k: v for k, v in cap.items() if v} == CAP_SET
    ecap = REGISTERS["ECAP"].unpack(PROFILE.ecap_value())
    assert {k: v for k, v in ecap.items() if v} == ECAP_SET
    assert REGISTERS["VER"].unpack(PROFILE.ver_value()) == {"max": 8, "min": 0}
    assert PROFILE.haw == 48
    # spot checks of raw bit positions from the digest (vtd §1.3, §1.4)
    cap_v, ecap_v = PROFILE.cap_value(), PROFILE.ecap_value()
    assert (cap_v >> 10) & 1 and cap_v & 0x7 == 6 and (cap_v >> 24) & 0x3FF == 0x22
    assert (ecap_v >> 43) & 1 and (ecap_v >> 29) & 1 and not (ecap_v >> 30) & 1 and not (ecap_v >> 46) & 1
    assert PROFILE.did_bits == 16 and PROFILE.pasid_bits == 20
    assert PROFILE.iro_offset == 0xF0 and PROFILE.frcd_offset(3) == 0x250


def test_profile_check_passes_for_our_profile():
    PROFILE.check()


def test_profile_variants():
    v = dataclasses.replace(PROFILE, nfr=0, fs5lp=0, fs1gp=0, srs=0, rps=0, haw=39)
    v.check()
    cap = REGISTERS["CAP"].unpack(v.cap_value())
    assert (cap["nfr"], cap["fs5lp"], cap["fs1gp"]) == (0, 0, 0)
    assert REGISTERS["ECAP"].unpack(v.ecap_value())["srs"] == 0
    regs = build_registers(v)
    assert [r.name for r in regs.frcds()] == ["FRCD0"]
    big = build_registers(dataclasses.replace(PROFILE, nfr=7))
    assert big.at(0x290).name == "FRCD7"
    with pytest.raises(ValueError, match="FRCD index"):
        v.frcd_offset(1)


def test_profile_value_must_fit():
    with pytest.raises(ValueError, match="CAP.nfr"):
        CapabilityProfile(nfr=256)
    with pytest.raises(ValueError, match="ECAP.pss"):
        CapabilityProfile(pss=32)


@pytest.mark.parametrize(
    "changes, rule",
    [
        (dict(qi=0), "DT => QI"),
        (dict(qi=0, dt=0, prs=0, pds=0), "SMTS => QI"),
        (dict(ir=1, qi=0, dt=0, prs=0, pds=0, smts=0, pasid=0), "IR => QI"),
        (dict(smts=0, prs=0), "PASID => SMTS"),
        (dict(dt=0, pds=0), "PRS => DT and SMTS"),
        (dict(dt=0, prs=0), "PDS => DT"),
        (dict(rprivs=1, srs=0), "RPRIVS => SRS"),
        (dict(eafs=1, smpwcs=0), "EAFS => FSTS and SMPWCS"),
        (dict(nest=1), "NEST => FSTS and SSTS"),
        (dict(ers=1), "ERS = 0"),
        (dict(rwbf=1), "SMTS => RWBF = 0"),
        (dict(psi=0), "SMTS => PSI"),
        (dict(sagaw=0), "SAGAW != 0"),
        (dict(mgaw=0), "MGAW != 0"),
        (dict(nd=7), "ND <= 6"),
        (dict(pss=20), "PSS <= 19"),
        (dict(haw=56), "HAW <= 52"),
        (dict(ver_max=5), "VER major >= 6"),
        (dict(iro=0x22), "overlaps"),  # IVA on top of FRCD0
        (dict(nfr=255), "past the"),  # 256 FRCDs do not fit in the page at 0x220
    ],
)
def test_profile_check_rules(changes, rule):
    with pytest.raises(ProfileError, match=rule.replace("(", r"\(")) as e:
        dataclasses.replace(PROFILE, **changes).check()
    assert isinstance(e.value, ValueError)


def test_inv_desc_type_enum_matches_digest():
    assert [int(t) for t in InvDescType] == list(range(1, 0xB))
    assert (InvDescType.P_IOTLB, InvDescType.PC, InvDescType.P_DEV_TLB, InvDescType.PGRP_RESP) == (6, 7, 8, 9)
    assert (ResponseCode.SUCCESS, ResponseCode.INVALID_REQUEST, ResponseCode.RESPONSE_FAILURE) == (0, 1, 0xF)
