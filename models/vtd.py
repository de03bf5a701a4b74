"""VT-d 5.10 scalable-mode data: structures, descriptors, fault reasons, register page, capabilities.

Everything here is data plus the small helpers that read it; behaviour (walks, queues, handshakes,
RW1C side effects, fault priority) lives in ``models.iommu``. Spec facts come from vtd.md (the
project's digest of the Intel VT-d Architecture Specification Rev. 5.10, cited as vtd §x; SPEC §x is
the specification's own numbering quoted by the digest).

Conventions
* Field names are the spec's, in lower case. Pointer fields hold the *address bits* the entry stores
  (``lctp`` = address bits 63:12); the matching ``*_address`` property gives the byte address.
* Every structure is a ``models.bits.BitStruct``: ``from_bytes(b).to_bytes() == b`` for every input,
  reserved bits kept; ``reserved_set()`` names the reserved ranges that are non-zero.
* Host-address-width (HAW) and capability dependent reserved bits of the translation structures
  are checked by ``reserved_violations(haw, profile=None)``; names use the structure's own bit
  numbering (``uctp[127:112]`` is bits 63:48 of the upper pointer). Descriptors have
  ``reserved_violations(profile)``.

Contents, in order
1. ``RootEntry``, ``ContextEntry``, ``PasidDirEntry``, ``PasidEntry`` (+ ``Pgtt``); ``FsEntry`` is
   re-exported from ``models.paging``.
2. ``PageRequestDescriptor``; the invalidation descriptors ``CcInvDesc`` ... ``HptInvDesc`` (one
   class per type, ``INV_DESC_CLASSES``), ``PageGroupResponseDescriptor`` + ``ResponseCode``,
   ``decode_inv_desc`` raising ``InvDescError`` with an ``Iqei`` code.
3. ``FaultReason``, ``FAULT_INFO`` (``FaultInfo``, ``Response``), ``FrcdType``, ``FrcdAt``.
4. ``Access``, ``RegField``, ``Register``, ``RegisterMap``, ``build_registers(profile)``.
5. ``CapabilityProfile`` (``check()`` raises ``ProfileError``), ``PROFILE`` (ours) and
   ``REGISTERS`` (its register page).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import ClassVar, Iterator

from .bits import BitStruct, Field
from .paging import FsEntry  # noqa: F401  (re-exported: the first-stage entry format, vtd §3.2)

PAGE_SHIFT = 12

# ================================================================================================
# 1. Scalable-mode translation structures (vtd §2)
# ================================================================================================


def _check_haw(haw: int) -> None:
    # First-stage entries hold address bits 51:12 (vtd §3.2), so a HAW above 52 cannot be expressed.
    if not 32 <= haw <= 52:
        raise ValueError(f"host address width {haw} outside the supported range 32..52")


def _check_pasid(pasid: int) -> None:
    if not 0 <= pasid < 1 << 20:
        raise ValueError(f"PASID {pasid:#x} does not fit in 20 bits")


def _pointer_above_haw(entry: BitStruct, name: str, haw: int) -> list[str]:
    """Pointer field ``name`` holds address bits 63:12; its bits for address bits >= HAW are reserved.
    Returns ``['name[hi:lo]']`` (structure bit numbering) when any of them is set."""
    f = type(entry)._fields[name]
    lo = f.lo + haw - PAGE_SHIFT
    if lo > f.hi:
        return []
    mask = ((1 << (f.hi - lo + 1)) - 1) << lo
    return [f"{name}[{f.hi}:{lo}]"] if entry.raw & mask else []


def _gated_violations(entry, gated: dict[str, str], profile) -> list[str]:
    """Fields that are Reserved(0) because the capability enabling them is not advertised."""
    if profile is None:
        return []
    return [name for name, cap in gated.items() if getattr(entry, name) and not getattr(profile, cap)]


class RootEntry(BitStruct):
    """Scalable-mode root entry, 128 bits, indexed by bus (vtd §2.1, §2.2; SPEC §9.2).

    The lower half points to the context table for devfn 0x00-0x7F, the upper half to the one for
    devfn 0x80-0xFF. Faults: read error 0x38, LP/UP = 0 0x39, reserved bits 0x3A."""

    WIDTH = 128
    lp = Field(0, doc="lower context table present")
    lctp = Field(63, 12, doc="lower context-table pointer, address bits 63:12 (63:HAW reserved)")
    up = Field(64, doc="upper context table present")
    uctp = Field(127, 76, doc="upper context-table pointer, address bits 63:12 (63:HAW reserved)")

    @staticmethod
    def entry_address(rta: int, bus: int) -> int:
        """Address of the root entry for ``bus`` in the root table at ``rta`` (16 bytes each)."""
        if not 0 <= bus <= 0xFF:
            raise ValueError(f"bus {bus:#x} out of range 0..0xff")
        return rta + 16 * bus

    @property
    def lctp_address(self) -> int:
        return self.lctp << PAGE_SHIFT

    @property
    def uctp_address(self) -> int:
        return self.uctp << PAGE_SHIFT

    def context_table(self, devfn: int) -> tuple[bool, int]:
        """(present, table address) of the half that holds ``devfn`` (vtd §2.1)."""
        if not 0 <= devfn <= 0xFF:
            raise ValueError(f"devfn {devfn:#x} out of range 0..0xff")
        if devfn & 0x80:
            return bool(self.up), self.uctp_address
        return bool(self.lp), self.lctp_address

    def reserved_violations(self, haw: int, profile=None) -> list[str]:
        """Reserved bits set (fault 0x3A SRT.3): bits 11:1, 75:65 and both pointers above HAW."""
        _check_haw(haw)
        return (
            self.reserved_set()
            + _pointer_above_haw(self, "lctp", haw)
            + _pointer_above_haw(self, "uctp", haw)
        )


class ContextEntry(BitStruct):
    """Scalable-mode context entry, 256 bits, indexed by devfn[6:0] (vtd §2.3; SPEC §9.4).

    When P=0 only FPD is looked at. There is no DINVE in scalable mode (that was VT-d 2.x)."""

    WIDTH = 256
    p = Field(0, doc="present")
    fpd = Field(1, doc="fault processing disable for qualified faults (honoured even when P=0)")
    dte = Field(2, doc="device-TLB enable: translation and translated requests allowed (else 0x44)")
    paside = Field(3, doc="requests with PASID allowed (else 0x45)")
    pre = Field(4, doc="page requests allowed (else 0x47); PRE=1 with DTE=0 is invalid (0x43)")
    hpte = Field(5, doc="host permission table enable (ECAP.HPTS only)")
    eptr = Field(6, doc="PASID in translated requests allowed (ECAP.PTRS only)")
    pdts = Field(11, 9, doc="PASID directory has 2^(PDTS+7) entries")
    pasiddirptr = Field(63, 12, doc="PASID directory address bits 63:12 (63:HAW reserved)")
    rid_pasid = Field(83, 64, doc="PASID used for requests without PASID (used only when ECAP.RPS=1)")
    rid_priv = Field(84, doc="privilege of requests without PASID (used only when ECAP.RPRIVS=1)")

    #: fields that are Reserved(0) when the named capability is 0. HPTE and EPTR are marked
    #: "(HPTS only)" / "(PTRS only)" in vtd §2.3, and QEMU treats both as reserved. RID_PASID and
    #: RID_PRIV are *ignored* (taken as 0) without RPS / RPRIVS (vtd §2.1), see ``effective_*``.
    CAP_GATED: ClassVar[dict[str, str]] = {"hpte": "hpts", "eptr": "ptrs"}

    @staticmethod
    def entry_address(table: int, devfn: int) -> int:
        """Address of the context entry for ``devfn`` in the (lower or upper) table at ``table``."""
        if not 0 <= devfn <= 0xFF:
            raise ValueError(f"devfn {devfn:#x} out of range 0..0xff")
        return table + 32 * (devfn & 0x7F)

    @property
    def pasiddirptr_address(self) -> int:
        return self.pasiddirptr << PAGE_SHIFT

    def max_pasid(self) -> int:
        """Largest PASID the PASID directory covers: 2^(PDTS+13) - 1 (vtd §2.3; larger => 0x46)."""
        return (1 << (self.pdts + 13)) - 1

    def effective_rid_pasid(self, profile) -> int:
        """PASID for requests without PASID: RID_PASID, or 0 when ECAP.RPS=0 (vtd §2.1)."""
        return self.rid_pasid if profile.rps else 0

    def effective_rid_priv(self, profile) -> int:
        """Privilege for requests without PASID: RID_PRIV, or 0 when ECAP.RPRIVS=0 (vtd §2.1)."""
        return self.rid_priv if profile.rprivs else 0

    def reserved_violations(self, haw: int, profile=None) -> list[str]:
        """Reserved bits set (fault 0x42 SCT.3): bits 8:7, 255:85, PASIDDIRPTR above HAW and, when a
        ``profile`` is given, HPTE/EPTR without HPTS/PTRS."""
        _check_haw(haw)
        return (
            self.reserved_set()
            + _pointer_above_haw(self, "pasiddirptr", haw)
            + _gated_violations(self, self.CAP_GATED, profile)
        )


class PasidDirEntry(BitStruct):
    """Scalable-mode PASID directory entry, 64 bits, indexed by PASID[19:6] (vtd §2.4; SPEC §9.5).

    Faults: read error 0x50, P=0 0x51, reserved 0x52."""

    WIDTH = 64
    p = Field(0, doc="present")
    fpd = Field(1, doc="fault processing disable (honoured even when P=0)")
    smptblptr = Field(63, 12, doc="PASID table address bits 63:12 (63:HAW reserved)")

    @staticmethod
    def entry_address(directory: int, pasid: int) -> int:
        """Address of the directory entry for ``pasid`` (8 bytes each, index PASID[19:6])."""
        _check_pasid(pasid)
        return directory + 8 * (pasid >> 6)

    @property
    def smptblptr_address(self) -> int:
        return self.smptblptr << PAGE_SHIFT

    def reserved_violations(self, haw: int, profile=None) -> list[str]:
        """Reserved bits set (fault 0x52 SPD.3): bits 11:2 and SMPTBLPTR above HAW."""
        _check_haw(haw)
        return self.reserved_set() + _pointer_above_haw(self, "smptblptr", haw)


class Pgtt(enum.IntEnum):
    """PASID-granular translation type (vtd §2.5); 000 and 101-111 are reserved."""

    FIRST_STAGE = 0b001
    SECOND_STAGE = 0b010
    NESTED = 0b011
    PASS_THROUGH = 0b100


class PasidEntry(BitStruct):
    """Scalable-mode PASID table entry, 512 bits, indexed by PASID[5:0] (vtd §2.5; SPEC §9.6, 5.10).

    3.x-only fields (SLEE, EMT, PWT, PCD, ERE) are reserved in 5.10; bits 133 (3.x NXE) and 134 are
    IGN (``ign133``, ``ign134``: any value is accepted). Faults: read error 0x58, P=0 0x59,
    reserved 0x5A, invalid programming 0x5B."""

    WIDTH = 512
    p = Field(0, doc="present")
    fpd = Field(1, doc="fault processing disable")
    aw = Field(4, 2, doc="second-stage AGAW: 001 3-, 010 4-, 011 5-level (ignored for PGTT 001/100)")
    pgtt = Field(8, 6, doc="translation type, see Pgtt")
    ssade = Field(9, doc="second-stage accessed/dirty enable (ECAP.SSADS only)")
    ssptptr = Field(63, 12, doc="second-stage root, address bits 63:12")
    did = Field(79, 64, doc="domain ID (cache tag)")
    pwsnp = Field(87, doc="page-walk snoop (ECAP.SMPWCS only)")
    pgsnp = Field(88, doc="page snoop (ECAP.SC only)")
    cd = Field(89, doc="cache disable (ECAP.MTS only)")
    emte = Field(90, doc="extended memory type enable (ECAP.MTS only)")
    pat = Field(127, 96, doc="PA0..PA7, PAi in bits 4i+2:4i, bit 4i+3 reserved (ECAP.MTS only)")
    sre = Field(128, doc="supervisor request enable (ECAP.SRS only); PR=1 with SRE=0 => 0x5D")
    fspm = Field(131, 130, doc="first-stage paging mode: 00 4-level, 01 5-level (needs FS5LP), 1x reserved")
    wpe = Field(132, doc="write-protect enable for supervisor requests")
    ign133 = Field(133, doc="IGN in 5.10 (3.x NXE)")
    ign134 = Field(134, doc="IGN in 5.10")
    eafe = Field(135, doc="extended-accessed flag enable (ECAP.EAFS only)")
    fsptptr = Field(191, 140, doc="first-stage root, address bits 63:12 (GPA when nested)")
    hptsz = Field(257, 256, doc="host permission table size (ECAP.HPTS only)")
    hptpfd = Field(258, doc="host permission table fault processing disable (ECAP.HPTS only)")
    hptptr = Field(319, 268, doc="host permission table, address bits 63:12 (ECAP.HPTS only)")
    hptdid = Field(335, 320, doc="host permission table domain ID (ECAP.HPTS only)")

    #: fields that are Reserved(0) when the named capability is 0 (each marked "(X only)" in vtd §2.5)
    CAP_GATED: ClassVar[dict[str, str]] = {
        "ssade": "ssads",
        "pwsnp": "smpwcs",
        "pgsnp": "sc",
        "cd": "mts",
        "emte": "mts",
        "pat": "mts",
        "sre": "srs",
        "eafe": "eafs",
        "hptsz": "hpts",
        "hptpfd": "hpts",
        "hptptr": "hpts",
        "hptdid": "hpts",
    }
    #: bit 4i+3 of the PAT field (i = 0..7) is reserved
    PAT_RESERVED_MASK: ClassVar[int] = 0x88888888

    @staticmethod
    def entry_address(table: int, pasid: int) -> int:
        """Address of the PASID entry for ``pasid`` (64 bytes each, index PASID[5:0])."""
        _check_pasid(pasid)
        return table + 64 * (pasid & 0x3F)

    @property
    def fsptptr_address(self) -> int:
        return self.fsptptr << PAGE_SHIFT

    @property
    def ssptptr_address(self) -> int:
        return self.ssptptr << PAGE_SHIFT

    @property
    def hptptr_address(self) -> int:
        return self.hptptr << PAGE_SHIFT

    def fs_levels(self) -> int:
        """First-stage paging levels selected by FSPM: 00 -> 4, 01 -> 5 (vtd §2.5, §3.1).
        FSPM=1x is reserved: raises ValueError (the walk reports it as 0x5B SPT.4)."""
        if self.fspm == 0b00:
            return 4
        if self.fspm == 0b01:
            return 5
        raise ValueError(f"PasidEntry.fspm={self.fspm:#04b} is a reserved paging mode (SPT.4, 0x5B)")

    def reserved_violations(self, haw: int, profile=None) -> list[str]:
        """Reserved bits set (fault 0x5A SPT.3).

        Always: the fixed reserved ranges and the reserved bit of each PAT entry (``pat[3]`` ... in
        PAT-field numbering). Pointer bits at or above HAW only for the pointers the PGTT uses:
        FSPTPTR for PGTT=001 (for nested it is a guest address, checked as SPT.4), SSPTPTR for
        PGTT=010/011, HPTPTR always (the whole HPT group is reserved without HPTS anyway). With a
        ``profile``, the capability-gated fields of ``CAP_GATED`` too."""
        _check_haw(haw)
        out = self.reserved_set()
        out += [f"pat[{4 * i + 3}]" for i in range(8) if (self.pat >> (4 * i + 3)) & 1]
        if self.pgtt == Pgtt.FIRST_STAGE:
            out += _pointer_above_haw(self, "fsptptr", haw)
        if self.pgtt in (Pgtt.SECOND_STAGE, Pgtt.NESTED):
            out += _pointer_above_haw(self, "ssptptr", haw)
        out += _pointer_above_haw(self, "hptptr", haw)
        return out + _gated_violations(self, self.CAP_GATED, profile)


# ================================================================================================
# 2. Page request descriptor and invalidation-queue descriptors (vtd §4, §5.1)
# ================================================================================================


class PageRequestDescriptor(BitStruct):
    """page_req_dsc, 256 bits, written by hardware into the PRQ (vtd §5.1, 5.10 layout).

    QW0[9] (3.x PDP) and QW2/QW3 (3.x private data) are reserved in 5.10. Constructing by field
    presets ``type`` = 1; ``from_bytes`` keeps whatever the bytes hold."""

    WIDTH = 256
    TYPE: ClassVar[int] = 0x01
    type = Field(7, 0, doc="descriptor type, 0x01")
    pp = Field(8, doc="PASID present")
    rid = Field(31, 16, doc="requester ID: bus[15:8], devfn[7:0]")
    pasid = Field(51, 32, doc="PASID (undefined when PP=0)")
    exr = Field(52, doc="execute requested")
    pmr = Field(53, doc="privilege mode requested (1 = supervisor)")
    rdr = Field(64, doc="read requested")
    wrr = Field(65, doc="write requested")
    lpig = Field(66, doc="last page in group")
    prgi = Field(75, 67, doc="page request group index (undefined when RDR=WRR=0)")
    addr = Field(127, 76, doc="page address bits 63:12")

    def __init__(self, raw: int | None = None, **fields):
        super().__init__(self.TYPE if raw is None else raw, **fields)

    @property
    def address(self) -> int:
        return self.addr << PAGE_SHIFT

    def is_stop_marker(self) -> bool:
        """RDR=WRR=0 with LPIG=1: a PCIe stop marker, needs no response (vtd §5.1, §5.2)."""
        return not self.rdr and not self.wrr and bool(self.lpig)

    def needs_response(self) -> bool:
        """5.10: a page group response is required exactly when LPIG=1 and it is not a stop marker."""
        return bool(self.lpig) and not self.is_stop_marker()


class InvDescType(enum.IntEnum):
    """The 7-bit descriptor type {QW0[11:9], QW0[3:0]} (vtd §4.1, §4.2)."""

    CC = 0x1
    IOTLB = 0x2
    DEV_TLB = 0x3
    IEC = 0x4
    INV_WAIT = 0x5
    P_IOTLB = 0x6
    PC = 0x7
    P_DEV_TLB = 0x8
    PGRP_RESP = 0x9
    HPT = 0xA


class Iqei(enum.IntEnum):
    """IQERCD.IQEI codes (vtd §1.10; SPEC §11.4.9.9)."""

    NO_INFO = 0
    INVALID_TAIL = 1
    FETCH_ERROR = 2
    INVALID_TYPE = 3
    RESERVED_FIELD = 4
    INVALID_WIDTH = 5
    TAIL_MISALIGNED = 6
    INVALID_TTM = 7


class InvDescError(ValueError):
    """An invalid invalidation descriptor; ``iqei`` is the code hardware records in IQERCD.IQEI."""

    def __init__(self, iqei: int, message: str):
        super().__init__(message)
        self.iqei = Iqei(iqei)


class InvDesc(BitStruct):
    """Base of the 256-bit invalidation descriptors. The 7-bit type is split over ``type_lo``
    (QW0[3:0]) and ``type_hi`` (QW0[11:9]); constructing by field presets the class's type, and
    ``from_bytes`` keeps whatever the bytes hold. 128-bit descriptors (types 1-5) are padded with
    zeros in their 256-bit form, so QW2/QW3 are reserved unless a class says otherwise (vtd §4.1)."""

    WIDTH = 256
    TYPE: ClassVar[InvDescType]
    #: capability (CapabilityProfile attribute) without which this type is invalid (IQEI 3)
    REQUIRES: ClassVar[str | None] = None
    #: fields that are Reserved(0) when the named capability is 0
    CAP_GATED: ClassVar[dict[str, str]] = {}
    #: valid values of the granularity field ``g``; None when the descriptor has no such restriction
    VALID_G: ClassVar[frozenset[int] | None] = None

    type_lo = Field(3, 0, doc="type[3:0]")
    type_hi = Field(11, 9, doc="type[6:4]")

    def __init__(self, raw: int | None = None, **fields):
        if raw is None:
            raw = (self.TYPE & 0xF) | ((self.TYPE >> 4) << 9)
        super().__init__(raw, **fields)

    @property
    def desc_type(self) -> int:
        return (self.type_hi << 4) | self.type_lo

    def reserved_violations(self, profile) -> list[str]:
        """Reserved fields set (IQEI 4): fixed reserved ranges plus capability-gated fields."""
        return self.reserved_set() + _gated_violations(self, self.CAP_GATED, profile)


class _AddrMixin:
    """ADDR[63:12] of QW1 as a byte address."""

    @property
    def address(self) -> int:
        return self.addr << PAGE_SHIFT


class CcInvDesc(InvDesc):
    """cc_inv_dsc, type 0x1: context-cache invalidation (vtd §4.2). In scalable mode DID is ignored
    (domain-selective acts as global, vtd §4.3). G=00 is reserved."""

    TYPE = InvDescType.CC
    G_GLOBAL, G_DOMAIN, G_DEVICE = 0b01, 0b10, 0b11
    VALID_G = frozenset({G_GLOBAL, G_DOMAIN, G_DEVICE})
    g = Field(5, 4, doc="granularity: 01 global, 10 domain, 11 device")
    did = Field(31, 16)
    sid = Field(47, 32)
    fm = Field(49, 48, doc="function mask")


class IotlbInvDesc(_AddrMixin, InvDesc):
    """iotlb_inv_dsc, type 0x2 (vtd §4.2, §4.3). A page-selective (G=11) invalidation drops every
    first-stage (PGTT 001/011) entry of the DID regardless of address. G=00 is reserved."""

    TYPE = InvDescType.IOTLB
    G_GLOBAL, G_DOMAIN, G_PAGE = 0b01, 0b10, 0b11
    VALID_G = frozenset({G_GLOBAL, G_DOMAIN, G_PAGE})
    g = Field(5, 4, doc="granularity: 01 global, 10 domain, 11 page-in-domain")
    dw = Field(6, doc="drain writes")
    dr = Field(7, doc="drain reads")
    did = Field(31, 16)
    am = Field(69, 64, doc="address mask: number of low ADDR bits ignored")
    ih = Field(70, doc="invalidation hint: only leaf entries changed")
    addr = Field(127, 76, doc="address bits 63:12")


class DevTlbInvDesc(_AddrMixin, InvDesc):
    """dev_tlb_inv_dsc, type 0x3: device-TLB invalidation without PASID (vtd §4.2). Needs ECAP.DT.
    S=1: the range size is the lowest 0 bit of ADDR (ATS encoding)."""

    TYPE = InvDescType.DEV_TLB
    REQUIRES = "dt"
    pfsid_lo = Field(15, 12, doc="PFSID[3:0]")
    mip = Field(20, 16, doc="max invalidations pending (hint, 0 = 32)")
    sid = Field(47, 32, doc="requester ID of the device")
    pfsid_hi = Field(63, 52, doc="PFSID[15:4]")
    s = Field(64, doc="size: 1 = range encoded in ADDR")
    addr = Field(127, 76, doc="address bits 63:12")

    @property
    def pfsid(self) -> int:
        """Physical function source-id (used only when ECAP.DIT=1)."""
        return (self.pfsid_hi << 4) | self.pfsid_lo


class IecInvDesc(InvDesc):
    """iec_inv_dsc, type 0x4: interrupt-entry-cache invalidation (vtd §4.2). Invalid without
    interrupt remapping (ECAP.IR=0): this design does not implement the interrupt entry cache."""

    TYPE = InvDescType.IEC
    REQUIRES = "ir"
    g = Field(4, doc="0 global, 1 index-selective")
    im = Field(31, 27, doc="index mask")
    iidx = Field(47, 32, doc="interrupt index")


class InvWaitDesc(InvDesc):
    """inv_wait_dsc, type 0x5 (vtd §4.2, §4.4). ``if_`` is the spec's IF (a Python keyword).
    PD is reserved without ECAP.PDS. Status address bits >= HAW are ignored, not reserved."""

    TYPE = InvDescType.INV_WAIT
    CAP_GATED = {"pd": "pds"}
    if_ = Field(4, doc="IF: set ICS.IWC and signal the completion event")
    sw = Field(5, doc="status write: write status_data to status_address")
    fn = Field(6, doc="fence: later descriptors wait for this one")
    pd = Field(7, doc="page-request drain (ECAP.PDS only)")
    status_data = Field(63, 32)
    status_addr = Field(127, 66, doc="status address bits 63:2")

    @property
    def status_address(self) -> int:
        return self.status_addr << 2


class PIotlbInvDesc(_AddrMixin, InvDesc):
    """p_iotlb_inv_dsc, type 0x6: PASID-based IOTLB invalidation (vtd §4.2, §4.3).
    G=00 and G=01 are invalid in 5.10."""

    TYPE = InvDescType.P_IOTLB
    G_PASID, G_PAGE = 0b10, 0b11
    VALID_G = frozenset({G_PASID, G_PAGE})
    g = Field(5, 4, doc="granularity: 10 all in PASID, 11 page in PASID")
    did = Field(31, 16)
    pasid = Field(51, 32)
    am = Field(69, 64, doc="address mask")
    ih = Field(70, doc="invalidation hint")
    addr = Field(127, 76, doc="address bits 63:12")


class PcInvDesc(InvDesc):
    """pc_inv_dsc, type 0x7: PASID-cache invalidation (vtd §4.2). G=10 is invalid."""

    TYPE = InvDescType.PC
    G_DOMAIN, G_PASID, G_GLOBAL = 0b00, 0b01, 0b11
    VALID_G = frozenset({G_DOMAIN, G_PASID, G_GLOBAL})
    g = Field(5, 4, doc="granularity: 00 domain, 01 PASID in domain, 11 global")
    did = Field(31, 16)
    pasid = Field(51, 32)


class PDevTlbInvDesc(_AddrMixin, InvDesc):
    """p_dev_tlb_inv_dsc, type 0x8: PASID-based device-TLB invalidation (vtd §4.2). Needs ECAP.DT."""

    TYPE = InvDescType.P_DEV_TLB
    REQUIRES = "dt"
    mip = Field(8, 4, doc="max invalidations pending (hint, 0 = 32)")
    pfsid_lo = Field(15, 12, doc="PFSID[3:0]")
    sid = Field(31, 16, doc="requester ID of the device")
    pasid = Field(51, 32)
    pfsid_hi = Field(63, 52, doc="PFSID[15:4]")
    gi = Field(64, doc="global: all PASIDs")
    s = Field(75, doc="size: 1 = range encoded in ADDR")
    addr = Field(127, 76, doc="address bits 63:12")

    @property
    def pfsid(self) -> int:
        return (self.pfsid_hi << 4) | self.pfsid_lo


class ResponseCode(enum.IntEnum):
    """Page group response codes (vtd §4.5; SPEC Table 32; PCIe PRG Response). 0x2-0xE reserved."""

    SUCCESS = 0x0
    INVALID_REQUEST = 0x1
    RESPONSE_FAILURE = 0xF


class PageGroupResponseDescriptor(InvDesc):
    """page_grp_resp_dsc, type 0x9 (vtd §4.5, 5.10 layout). Needs ECAP.PRS.

    QW1[2] (``ign66``) was LPIG in 3.x and is IGN in 5.10: Linux kernels before 2025 set it, so it is a
    named field that is never reported as reserved. QW0[5] (3.x PDP) and QW2/QW3 (3.x private data)
    are reserved."""

    TYPE = InvDescType.PGRP_RESP
    REQUIRES = "prs"
    pp = Field(4, doc="PASID present (must equal the request's PP)")
    rc = Field(15, 12, doc="response code, see ResponseCode")
    rid = Field(31, 16, doc="requester ID copied from the page request")
    pasid = Field(51, 32, doc="ignored when PP=0")
    ign66 = Field(66, doc="IGN (3.x LPIG)")
    prgi = Field(75, 67, doc="page request group index")


class HptInvDesc(_AddrMixin, InvDesc):
    """hpt_inv_dsc, type 0xA: host-permission-table cache invalidation (vtd §4.2). Needs ECAP.HPTS
    (this design advertises HPTS=0, so the type is always invalid here)."""

    TYPE = InvDescType.HPT
    REQUIRES = "hpts"
    g = Field(5, 4)
    hptdid = Field(31, 16)
    am = Field(69, 64)
    ih = Field(71, 70)
    addr = Field(127, 76)


#: descriptor class per 7-bit type
INV_DESC_CLASSES: dict[int, type[InvDesc]] = {
    cls.TYPE: cls
    for cls in (
        CcInvDesc,
        IotlbInvDesc,
        DevTlbInvDesc,
        IecInvDesc,
        InvWaitDesc,
        PIotlbInvDesc,
        PcInvDesc,
        PDevTlbInvDesc,
        PageGroupResponseDescriptor,
        HptInvDesc,
    )
}

INV_DESC_BYTES = 32


def decode_inv_desc(b: bytes, profile: CapabilityProfile | None = None) -> InvDesc:
    """Decode and validate one 256-bit (IQA.DW=1) invalidation descriptor (vtd §4.1, §4.2).

    ``profile`` (default ``PROFILE``) decides which types exist (DT, PRS, IR, HPTS) and which fields
    are reserved (PD without PDS). Raises ``InvDescError`` with the IQEI code:
    * 3 (invalid type): type 0, a type above 0xA, or a type whose capability is not advertised;
    * 4 (reserved field): a reserved bit set (the message names the range, from ``reserved_set()``),
      or a reserved granularity encoding (cc/iotlb G=00, p_iotlb G=00/01, pc G=10). IQEI has no code
      for "reserved encoding"; a reserved value of a field is a reserved-field violation, so 4.
    A buffer that is not 32 bytes is a caller error (ValueError), not a descriptor error."""
    profile = PROFILE if profile is None else profile
    data = bytes(b)
    if len(data) != INV_DESC_BYTES:
        raise ValueError(f"invalidation descriptor must be {INV_DESC_BYTES} bytes (DW=1), got {len(data)}")
    raw = int.from_bytes(data, "little")
    dtype = (raw & 0xF) | (((raw >> 9) & 0x7) << 4)
    cls = INV_DESC_CLASSES.get(dtype)
    if cls is None:
        raise InvDescError(Iqei.INVALID_TYPE, f"invalid descriptor type {dtype:#x}")
    if cls.REQUIRES and not getattr(profile, cls.REQUIRES):
        raise InvDescError(
            Iqei.INVALID_TYPE,
            f"descriptor type {dtype:#x} ({cls.__name__}) is invalid with ECAP.{cls.REQUIRES.upper()}=0",
        )
    desc = cls(raw)
    bad = desc.reserved_violations(profile)
    if bad:
        raise InvDescError(Iqei.RESERVED_FIELD, f"{cls.__name__}: reserved field(s) set: {', '.join(bad)}")
    if cls.VALID_G is not None and desc.g not in cls.VALID_G:
        raise InvDescError(Iqei.RESERVED_FIELD, f"{cls.__name__}: granularity G={desc.g:#04b} is reserved")
    return desc


# ================================================================================================
# 3. Fault reasons (vtd §6)
# ================================================================================================


class FaultReason(enum.IntEnum):
    """Scalable-mode fault reasons (vtd §6.1; SPEC §7.1.3 Table 30), named after the condition code
    (``SCT_2`` is "SCT.2"). 0x82 (3.x SGN.3, execute) was removed in 5.10 and is not listed.
    ``description`` and the per-request-kind outcomes are in ``FAULT_INFO``."""

    RTA_1 = 0x30
    RTA_2 = 0x31
    RTA_3 = 0x32
    RTA_4 = 0x33
    RTA_5 = 0x34
    SRT_1 = 0x38
    SRT_2 = 0x39
    SRT_3 = 0x3A
    SCT_1 = 0x40
    SCT_2 = 0x41
    SCT_3 = 0x42
    SCT_4 = 0x43
    SCT_5 = 0x44
    SCT_6 = 0x45
    SCT_7 = 0x46
    SCT_8 = 0x47
    SCT_9 = 0x48
    SCT_10 = 0x49
    SPD_1 = 0x50
    SPD_2 = 0x51
    SPD_3 = 0x52
    SPT_1 = 0x58
    SPT_2 = 0x59
    SPT_3 = 0x5A
    SPT_4 = 0x5B
    SPT_5 = 0x5C
    SPT_6 = 0x5D
    SPT_9 = 0x60
    SFS_1 = 0x70
    SFS_2 = 0x71
    SFS_3 = 0x72
    SFS_4 = 0x73
    SFS_5 = 0x74
    SFS_6 = 0x75
    SFS_7 = 0x76
    SFS_8 = 0x77
    SSS_1 = 0x78
    SSS_2 = 0x79
    SSS_3 = 0x7A
    SSS_4 = 0x7B
    SSS_5 = 0x7C
    SSS_6 = 0x7D
    SGN_1 = 0x80
    SGN_2 = 0x81
    SGN_4 = 0x83
    SGN_5 = 0x84
    SGN_6 = 0x85
    SGN_7 = 0x86
    SGN_8 = 0x87
    SGN_10 = 0x89
    SFS_9 = 0x90
    SFS_10 = 0x91

    @property
    def condition(self) -> str:
        """The spec's condition code, e.g. ``'SCT.2'``."""
        return self.name.replace("_", ".")

    @property
    def description(self) -> str:
        return FAULT_INFO[self].description

    @property
    def qualified(self) -> bool:
        return FAULT_INFO[self].qualified


class Response(str, enum.Enum):
    """What hardware answers a request that hits a fault (vtd §6.1 column legend)."""

    UR = "UR"  # Unsupported Request completion (untranslated / translation request)
    CA = "CA"  # Completer Abort completion (translation request)
    S0 = "S0"  # Success completion with R=W=U=S=0: recoverable, not logged
    SEFF = "Seff"  # Success with the effective (reduced) permissions: recoverable, not logged
    IR = "IR"  # page request: automatic page group response Invalid Request (when LPIG=1)
    #: second-stage faults: the digest gives "CA/S0" for SSS.1-6 without splitting it per code.
    #: Unreachable in this design (ECAP.SSTS = NEST = 0); kept so the table stays complete.
    CA_OR_S0 = "CA/S0"


@dataclasses.dataclass(frozen=True)
class FaultInfo:
    """Per-reason facts of vtd §6.1. ``None`` in an outcome column means "not applicable" (the
    digest's '-'): that kind of request cannot raise this fault.

    ``tr_logged``: a translation-request fault is recorded in an FRCD when the completion is UR/CA;
    S0/Seff are recoverable and not logged, except SFS.10, which the spec says is also reported
    (vtd §6.1, §9 item 5). ``None`` when it does not apply or the outcome is CA/S0. Untranslated
    requests and page requests are always logged (subject to FPD for qualified reasons)."""

    reason: FaultReason
    description: str
    qualified: bool  # suppressed by any FPD=1 on the walk (context, PASID directory, PASID entry)
    ut_without_pasid: Response | None  # untranslated request without PASID
    ut_with_pasid: Response | None  # untranslated request with PASID
    tr: Response | None  # ATS translation request
    tr_logged: bool | None
    pr: Response | None  # page request that needs a response (LPIG=1); others are dropped


_UR, _CA, _S0, _SEFF, _IR = Response.UR, Response.CA, Response.S0, Response.SEFF, Response.IR
# (reason, Q, UT without PASID, UT with PASID, TR, PR, description) -- vtd §6.1, one row per reason.
_FAULT_ROWS = [
    (FaultReason.RTA_1, False, _UR, _UR, _CA, _IR, "invalid TTM or SSIRWE programming in RTADDR"),
    (FaultReason.RTA_2, False, None, _UR, _UR, None, "legacy mode (TTM=00) and a request with PASID"),
    (FaultReason.RTA_3, False, None, None, None, _IR, "legacy mode (TTM=00) and a page request"),
    (FaultReason.RTA_4, False, _UR, _UR, _UR, _IR, "abort-DMA mode (TTM=11)"),
    (FaultReason.RTA_5, False, None, _UR, _UR, None, "request with ER=1 (VER major >= 8)"),
    (FaultReason.SRT_1, False, _UR, _UR, _CA, _IR, "error reading the scalable-mode root entry"),
    (FaultReason.SRT_2, False, _UR, _UR, _UR, _IR, "root entry LP/UP is 0 for the device's half"),
    (FaultReason.SRT_3, False, _UR, _UR, _CA, _IR, "reserved bit set in the root entry"),
    (FaultReason.SCT_1, False, _UR, _UR, _CA, _IR, "error reading the scalable-mode context entry"),
    (FaultReason.SCT_2, True, _UR, _UR, _UR, _IR, "context entry not present (P=0)"),
    (FaultReason.SCT_3, True, _UR, _UR, _CA, _IR, "reserved bit set in the context entry"),
    (
        FaultReason.SCT_4,
        True,
        _UR,
        _UR,
        _CA,
        _IR,
        "invalid context entry (PRE=1 with DTE=0, RID_PASID above the PDTS limit, EPTR=1 with PASIDE=0)",
    ),
    (FaultReason.SCT_5, True, None, None, _UR, None, "translation or translated request with DTE=0"),
    (FaultReason.SCT_6, True, None, _UR, _UR, _IR, "request or page request with PASID while PASIDE=0"),
    (FaultReason.SCT_7, True, None, _UR, _UR, _IR, "PASID above 2^(PDTS+13)-1"),
    (FaultReason.SCT_8, True, None, None, None, _IR, "page request while PRE=0"),
    (FaultReason.SCT_9, True, None, _UR, _UR, _IR, "request with PASID carries the RID_PASID value"),
    (FaultReason.SCT_10, True, None, None, None, None, "translated request with PASID while EPTR=0"),
    (FaultReason.SPD_1, False, _UR, _UR, _CA, _IR, "error reading the PASID directory entry"),
    (FaultReason.SPD_2, True, _UR, _UR, _S0, _IR, "PASID directory entry not present (P=0)"),
    (FaultReason.SPD_3, True, _UR, _UR, _CA, _IR, "reserved bit set in the PASID directory entry"),
    (FaultReason.SPT_1, False, _UR, _UR, _CA, _IR, "error reading the PASID table entry"),
    (FaultReason.SPT_2, True, _UR, _UR, _S0, _IR, "PASID table entry not present (P=0)"),
    (FaultReason.SPT_3, True, _UR, _UR, _CA, _IR, "reserved bit set in the PASID table entry"),
    (
        FaultReason.SPT_4,
        True,
        _UR,
        _UR,
        _CA,
        _IR,
        "invalid PASID entry programming (AW, PGTT, FSPM or nested FSPTPTR unsupported)",
    ),
    (FaultReason.SPT_5, True, None, _UR, _S0, None, "request with ER=1 while ERS=0 (VER major <= 7)"),
    (FaultReason.SPT_6, True, _UR, _UR, _S0, None, "supervisor request (PR=1 or RID_PRIV=1) with SRE=0"),
    (FaultReason.SPT_9, True, None, None, None, None, "translated address beyond the HPT size"),
    (FaultReason.SFS_1, True, _UR, _UR, _S0, None, "error reading a first-stage entry below the root"),
    (FaultReason.SFS_2, True, _UR, _UR, _S0, None, "first-stage entry not present (P=0)"),
    (FaultReason.SFS_3, True, _UR, _UR, _S0, None, "reserved bit set in a present first-stage entry"),
    (FaultReason.SFS_4, True, _UR, _UR, _S0, None, "error reading the first-stage root entry (FSPTPTR)"),
    (FaultReason.SFS_5, True, _UR, _UR, _S0, None, "nested translation first-stage fault (SFS.5)"),
    (FaultReason.SFS_6, True, _UR, _UR, _S0, None, "nested translation first-stage fault (SFS.6)"),
    (FaultReason.SFS_7, True, _UR, _UR, _S0, None, "nested translation first-stage fault (SFS.7)"),
    (FaultReason.SFS_8, True, _UR, _UR, _S0, None, "nested translation first-stage fault (SFS.8)"),
    (FaultReason.SSS_1, True, _UR, _UR, Response.CA_OR_S0, None, "second-stage fault (SSS.1)"),
    (FaultReason.SSS_2, True, _UR, _UR, Response.CA_OR_S0, None, "second-stage fault (SSS.2)"),
    (FaultReason.SSS_3, True, _UR, _UR, Response.CA_OR_S0, None, "second-stage fault (SSS.3)"),
    (FaultReason.SSS_4, True, _UR, _UR, Response.CA_OR_S0, None, "second-stage fault (SSS.4)"),
    (FaultReason.SSS_5, True, _UR, _UR, Response.CA_OR_S0, None, "second-stage fault (SSS.5)"),
    (FaultReason.SSS_6, True, _UR, _UR, Response.CA_OR_S0, None, "second-stage fault (SSS.6)"),
    (FaultReason.SGN_1, True, _UR, _UR, _S0, None, "non-canonical input address"),
    (FaultReason.SGN_2, True, _UR, _UR, _S0, None, "user request and U/S=0 in an entry of the walk"),
    (FaultReason.SGN_4, True, _UR, _UR, _S0, None, "output address above HAW"),
    (FaultReason.SGN_5, True, _UR, _UR, _S0, None, "second-stage input address above 2^min(MGAW,AW)"),
    (FaultReason.SGN_6, True, _UR, _UR, _SEFF, None, "write or atomic without write permission"),
    (FaultReason.SGN_7, True, _UR, _UR, _SEFF, None, "read without read permission (second stage)"),
    (FaultReason.SGN_8, True, _UR, _UR, _CA, None, "output address in the interrupt range 0xFEEx_xxxx"),
    (FaultReason.SGN_10, True, None, _UR, _UR, None, "PASID wider than ECAP.PSS allows"),
    (FaultReason.SFS_9, True, _UR, _UR, _S0, None, "A/D update needed but the walk is not snooped"),
    (FaultReason.SFS_10, True, _UR, _UR, _S0, None, "atomic A/D/EA update of a first-stage entry failed"),
]


def _tr_logged(reason: FaultReason, tr: Response | None) -> bool | None:
    if tr is None or tr is Response.CA_OR_S0:
        return None
    if reason is FaultReason.SFS_10:
        return True  # "also reported" although the completion is S0 (vtd §6.1)
    return tr in (Response.UR, Response.CA)


FAULT_INFO: dict[FaultReason, FaultInfo] = {
    reason: FaultInfo(reason, desc, q, ut_wo, ut_w, tr, _tr_logged(reason, tr), pr)
    for reason, q, ut_wo, ut_w, tr, pr, desc in _FAULT_ROWS
}


class FrcdType(enum.IntEnum):
    """FRCD request type, value = {T1, T2} (vtd §1.9): T1 is FRCD bit 126, T2 bit 92."""

    WRITE = 0b00
    PAGE_REQUEST = 0b01
    READ = 0b10
    ATOMIC = 0b11

    @property
    def t1(self) -> int:
        return self.value >> 1

    @property
    def t2(self) -> int:
        return self.value & 1

    @classmethod
    def from_bits(cls, t1: int, t2: int) -> FrcdType:
        return cls((t1 << 1) | t2)


class FrcdAt(enum.IntEnum):
    """FRCD AT field (bits 125:124): address type of the faulting request (vtd §1.9); 11 reserved."""

    UNTRANSLATED = 0b00
    TRANSLATION_REQUEST = 0b01
    TRANSLATED = 0b10


# ================================================================================================
# 4. The register page (vtd §1)
# ================================================================================================


class Access(str, enum.Enum):
    """Register field access types (SPEC §11.4 conventions). Side effects are the model's job."""

    RO = "RO"  # read-only
    ROS = "ROS"  # read-only, sticky (kept across a function-level reset)
    RW = "RW"  # read-write
    RW1C = "RW1C"  # read, write 1 to clear
    RW1CS = "RW1CS"  # read, write 1 to clear, sticky
    WO = "WO"  # write-only: reads return 0


@dataclasses.dataclass(frozen=True)
class RegField:
    """Bits ``hi``..``lo`` of a register."""

    name: str
    hi: int
    lo: int
    access: Access
    reset: int = 0
    doc: str = ""

    def __post_init__(self):
        if self.hi < self.lo or self.lo < 0:
            raise ValueError(f"field {self.name}: bad bit range [{self.hi}:{self.lo}]")
        if not 0 <= self.reset <= self.max:
            raise ValueError(f"field {self.name}: reset {self.reset:#x} does not fit in {self.width} bit(s)")

    @property
    def width(self) -> int:
        return self.hi - self.lo + 1

    @property
    def max(self) -> int:
        return (1 << self.width) - 1

    @property
    def mask(self) -> int:
        """The field's bits in register position."""
        return self.max << self.lo

    def get(self, value: int) -> int:
        return (value >> self.lo) & self.max


def _f(name: str, hi: int, lo: int | None = None, access: Access = Access.RW, reset: int = 0, doc: str = ""):
    return RegField(name, hi, hi if lo is None else lo, access, reset, doc)


@dataclasses.dataclass(frozen=True)
class Register:
    """One register of the page: name, byte offset, width in bits (32, 64 or 128) and its fields.
    Bits no field covers are reserved: they read as 0 and ignore writes."""

    name: str
    offset: int
    width: int
    fields: tuple[RegField, ...]
    doc: str = ""

    def __post_init__(self):
        if self.width not in (32, 64, 128):
            raise ValueError(f"{self.name}: width {self.width} is not 32, 64 or 128")
        if self.offset % min(self.width // 8, 8):
            raise ValueError(f"{self.name}: offset {self.offset:#x} is not naturally aligned")
        used = 0
        names = set()
        for f in self.fields:
            if f.hi >= self.width:
                raise ValueError(f"{self.name}.{f.name}[{f.hi}:{f.lo}] is outside {self.width} bits")
            if used & f.mask:
                raise ValueError(f"{self.name}.{f.name} overlaps another field")
            if f.name in names:
                raise ValueError(f"{self.name}: duplicate field {f.name}")
            used |= f.mask
            names.add(f.name)

    @property
    def nbytes(self) -> int:
        return self.width // 8

    def field(self, name: str) -> RegField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}")

    @property
    def reset(self) -> int:
        value = 0
        for f in self.fields:
            value |= f.reset << f.lo
        return value

    def mask(self, *access: Access) -> int:
        """OR of the masks of the fields with one of the given access types (all fields if none)."""
        value = 0
        for f in self.fields:
            if not access or f.access in access:
                value |= f.mask
        return value

    def pack(self, **values: int) -> int:
        """Register value with the given fields set and every other bit 0."""
        value = 0
        for name, v in values.items():
            f = self.field(name)
            v = int(v)
            if not 0 <= v <= f.max:
                raise ValueError(
                    f"{self.name}.{name}: value {v:#x} does not fit in {f.width} bit(s) [{f.hi}:{f.lo}]"
                )
            value |= v << f.lo
        return value

    def unpack(self, value: int) -> dict[str, int]:
        """Every field's value in ``value``."""
        if not 0 <= value < 1 << self.width:
            raise ValueError(f"{self.name}: value {value:#x} does not fit in {self.width} bits")
        return {f.name: f.get(value) for f in self.fields}


_RO, _ROS, _RW, _RW1CS, _WO = Access.RO, Access.ROS, Access.RW, Access.RW1CS, Access.WO

# Field layouts of VER, CAP and ECAP (vtd §1.2-§1.4). All RO; the reset values come from the
# CapabilityProfile, whose attributes carry the same names. DEP / reserved positions have no field.
VER_FIELDS = (_f("max", 7, 4, _RO, doc="major version"), _f("min", 3, 0, _RO, doc="minor version"))
CAP_FIELDS = (
    _f("esrtps", 63, None, _RO, doc="SRTP also invalidates all DMA-remapping caches"),
    _f("esirtps", 62, None, _RO, doc="SIRTP also invalidates interrupt-remapping caches"),
    _f("ecmds", 61, None, _RO, doc="enhanced command interface"),
    _f("fs5lp", 60, None, _RO, doc="5-level first-stage paging"),
    _f("pi", 59, None, _RO, doc="posted interrupts"),
    _f("fs1gp", 56, None, _RO, doc="1 GiB first-stage pages"),
    _f("drd", 55, None, _RO, doc="read draining (deprecated, report 1)"),
    _f("dwd", 54, None, _RO, doc="write draining (deprecated, report 1)"),
    _f("mamv", 53, 48, _RO, doc="max address-mask value of iotlb_inv_dsc"),
    _f("nfr", 47, 40, _RO, doc="number of fault recording registers minus 1"),
    _f("psi", 39, None, _RO, doc="page-selective invalidation"),
    _f("sslps", 37, 34, _RO, doc="second-stage large pages"),
    _f("fro", 33, 24, _RO, doc="fault recording register offset / 16"),
    _f("zlr", 22, None, _RO, doc="zero-length read"),
    _f("mgaw", 21, 16, _RO, doc="max guest address width minus 1"),
    _f("sagaw", 12, 8, _RO, doc="supported second-stage AGAWs (bit 10 of CAP = 48-bit 4-level)"),
    _f("cm", 7, None, _RO, doc="caching mode"),
    _f("phmr", 6, None, _RO, doc="protected high memory region"),
    _f("plmr", 5, None, _RO, doc="protected low memory region"),
    _f("rwbf", 4, None, _RO, doc="write-buffer flush required"),
    _f("nd", 2, 0, _RO, doc="domain-ID width = 4 + 2*ND bits"),
)
ECAP_FIELDS = (
    _f("irreq", 62, None, _RO),
    _f("eimer", 61, None, _RO),
    _f("rdts", 60, None, _RO),
    _f("hpt1gps", 59, None, _RO),
    _f("sms", 58, None, _RO, doc="stop marker support"),
    _f("ssirws", 57, None, _RO),
    _f("ptrs", 56, None, _RO, doc="PASID in translated requests"),
    _f("hpts", 55, None, _RO, doc="host permission tables"),
    _f("rprivs", 53, None, _RO, doc="RID_PRIV supported"),
    _f("adms", 52, None, _RO, doc="abort-DMA mode"),
    _f("pms", 51, None, _RO, doc="perfmon"),
    _f("tdxcs", 50, None, _RO),
    _f("rps", 49, None, _RO, doc="RID_PASID supported"),
    _f("smpwcs", 48, None, _RO, doc="scalable-mode page-walk coherency (PWSNP honoured)"),
    _f("fsts", 47, None, _RO, doc="first-stage translation"),
    _f("ssts", 46, None, _RO, doc="second-stage translation"),
    _f("ssads", 45, None, _RO, doc="second-stage A/D"),
    _f("vcs", 44, None, _RO, doc="virtual command"),
    _f("smts", 43, None, _RO, doc="scalable mode"),
    _f("pds", 42, None, _RO, doc="page-request drain"),
    _f("dit", 41, None, _RO, doc="device-TLB invalidation throttle"),
    _f("pasid", 40, None, _RO, doc="requests with PASID"),
    _f("pss", 39, 35, _RO, doc="PASID width minus 1"),
    _f("eafs", 34, None, _RO, doc="extended-accessed flag"),
    _f("nwfs", 33, None, _RO, doc="no-write flag honoured"),
    _f("srs", 31, None, _RO, doc="supervisor requests"),
    _f("ers", 30, None, _RO, doc="execute requests (must be 0 in 5.10)"),
    _f("prs", 29, None, _RO, doc="page requests"),
    _f("nest", 26, None, _RO, doc="nested translation"),
    _f("mts", 25, None, _RO, doc="memory types"),
    _f("mhmv", 23, 20, _RO, doc="IEC handle mask max"),
    _f("iro", 17, 8, _RO, doc="IOTLB register offset / 16"),
    _f("sc", 7, None, _RO, doc="snoop control"),
    _f("pt", 6, None, _RO, doc="pass-through"),
    _f("eim", 4, None, _RO, doc="x2APIC interrupt remapping"),
    _f("ir", 3, None, _RO, doc="interrupt remapping"),
    _f("dt", 2, None, _RO, doc="device-TLB (ATS)"),
    _f("qi", 1, None, _RO, doc="queued invalidation"),
    _f("c", 0, None, _RO, doc="page-walk coherency for root/context/PASID tables"),
)


def _event_regs(prefix: str, base: int, what: str) -> list[Register]:
    """The four registers of one interrupt event source (vtd §1.8, §1.12): xxCTL, xxDATA, xxADDR,
    xxUADDR. IM resets to 1 (masked)."""
    return [
        Register(
            f"{prefix}CTL",
            base,
            32,
            (
                _f("im", 31, None, _RW, reset=1, doc="interrupt mask"),
                _f("ip", 30, None, _RO, doc="interrupt pending"),
            ),
            f"{what} event control",
        ),
        Register(f"{prefix}DATA", base + 4, 32, (_f("imd", 15, 0, _RW, doc="message data"),)),
        Register(f"{prefix}ADDR", base + 8, 32, (_f("ma", 31, 2, _RW, doc="message address 31:2"),)),
        Register(f"{prefix}UADDR", base + 12, 32, (_f("mua", 31, 0, _RW, doc="message upper address"),)),
    ]


def _frcd(n: int, offset: int) -> Register:
    """Fault recording register n (vtd §1.9): 128 bits, F written last by hardware."""
    return Register(
        f"FRCD{n}",
        offset,
        128,
        (
            _f("fi", 63, 12, _ROS, doc="faulting page address 63:12"),
            _f("sid", 79, 64, _ROS, doc="requester ID"),
            _f("t2", 92, None, _ROS, doc="type bit 2, see FrcdType"),
            _f("priv", 93, None, _ROS, doc="supervisor requested"),
            _f("exe", 94, None, _ROS, doc="execute requested"),
            _f("pp", 95, None, _ROS, doc="PASID present"),
            _f("fr", 103, 96, _ROS, doc="fault reason, see FaultReason"),
            _f("pv", 123, 104, _ROS, doc="PASID value"),
            _f("at", 125, 124, _ROS, doc="address type, see FrcdAt"),
            _f("t1", 126, None, _ROS, doc="type bit 1, see FrcdType"),
            _f("f", 127, None, _RW1CS, doc="fault: valid record"),
        ),
        f"fault recording register {n}",
    )


class RegisterMap:
    """The register page of one capability profile: iteration in offset order, ``regs["CAP"]``,
    ``regs.at(0x008)`` (register starting at an offset), ``regs.find(offset)`` (register covering a
    byte, with the byte's position in it). Construction rejects overlapping registers and registers
    outside the 4 KiB page."""

    PAGE_BYTES = 0x1000

    def __init__(self, registers):
        self.registers = tuple(sorted(registers, key=lambda r: r.offset))
        self._by_name: dict[str, Register] = {}
        self._by_byte: dict[int, Register] = {}
        for r in self.registers:
            if r.name in self._by_name:
                raise ValueError(f"duplicate register name {r.name}")
            self._by_name[r.name] = r
            if r.offset + r.nbytes > self.PAGE_BYTES:
                raise ValueError(f"{r.name} at {r.offset:#x} extends past the {self.PAGE_BYTES:#x}-byte page")
            for i in range(r.nbytes):
                other = self._by_byte.get(r.offset + i)
                if other is not None:
                    raise ValueError(f"{r.name} at {r.offset:#x} overlaps {other.name} at {other.offset:#x}")
                self._by_byte[r.offset + i] = r

    def __iter__(self) -> Iterator[Register]:
        return iter(self.registers)

    def __len__(self) -> int:
        return len(self.registers)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Register:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no register named {name!r}") from None

    def at(self, offset: int) -> Register:
        """The register that starts at ``offset`` (KeyError otherwise)."""
        r = self._by_byte.get(offset)
        if r is None or r.offset != offset:
            raise KeyError(f"no register starts at offset {offset:#x}")
        return r

    def find(self, offset: int) -> tuple[Register, int] | None:
        """(register, byte position inside it) for any byte offset; None for an unmapped offset
        (reads 0, writes ignored)."""
        r = self._by_byte.get(offset)
        return None if r is None else (r, offset - r.offset)

    def frcds(self) -> list[Register]:
        """The fault recording registers, FRCD0 first."""
        return [r for r in self.registers if r.name.startswith("FRCD")]


def build_registers(profile: CapabilityProfile) -> RegisterMap:
    """The register page this profile implies (vtd §1.1): CAP/ECAP/VER resets are the profile's
    values, IVA/IOTLB_REG sit at ECAP.IRO*16, FRCD0..NFR at CAP.FRO*16 + 16*n. Not implemented (and so
    reading 0): AFLOG, PMEN/PLMBASE/PLMLIMIT/PHMBASE/PHMLIMIT (PLMR=PHMR=0), IRTA (IR=0), MTRRs (MTS=0),
    perfmon (PMS=0), ECMD (ECMDS=0), VCMD (VCS=0)."""
    regs = [
        Register("VER", 0x000, 32, _with_resets(VER_FIELDS, profile.ver_fields()), "version"),
        Register("CAP", 0x008, 64, _with_resets(CAP_FIELDS, profile.cap_fields()), "capability"),
        Register("ECAP", 0x010, 64, _with_resets(ECAP_FIELDS, profile.ecap_fields()), "extended capability"),
        Register(
            "GCMD",
            0x018,
            32,
            (
                _f("te", 31, None, _WO, doc="translation enable"),
                _f("srtp", 30, None, _WO, doc="set root table pointer (one-shot)"),
                _f("wbf", 27, None, _WO, doc="write buffer flush (one-shot, RWBF only)"),
                _f("qie", 26, None, _WO, doc="queued invalidation enable"),
                _f("ire", 25, None, _WO, doc="interrupt remapping enable"),
                _f("sirtp", 24, None, _WO, doc="set interrupt remap table pointer (one-shot)"),
                _f("cfi", 23, None, _WO, doc="compatibility format interrupt"),
            ),
            "global command: one command per write, software keeps the other enables (vtd §1.5)",
        ),
        Register(
            "GSTS",
            0x01C,
            32,
            (
                _f("tes", 31, None, _RO),
                _f("rtps", 30, None, _RO),
                _f("wbfs", 27, None, _RO),
                _f("qies", 26, None, _RO),
                _f("ires", 25, None, _RO),
                _f("irtps", 24, None, _RO),
                _f("cfis", 23, None, _RO),
            ),
            "global status",
        ),
        Register(
            "RTADDR",
            0x020,
            64,
            (
                _f("rta", 63, 12, _RW, doc="root table address 63:12"),
                _f("ttm", 11, 10, _RW, doc="translation table mode: 01 scalable"),
                _f("ssirwe", 7, None, _RW, doc="second-stage I/O R/W enable (SSIRWS only)"),
            ),
            "root table address, latched by GCMD.SRTP (vtd §1.6)",
        ),
        Register(
            "CCMD",
            0x028,
            64,
            (
                _f("icc", 63, None, _RW, doc="invalidate context cache"),
                _f("cirg", 62, 61, _RW, doc="requested granularity"),
                _f("caig", 60, 59, _RO, doc="actual granularity (00 = error)"),
                _f("fm", 33, 32, _WO, doc="function mask"),
                _f("sid", 31, 16, _WO),
                _f("did", 15, 0, _RW),
            ),
            "register-based context invalidation: always an error in scalable mode (vtd §1.7)",
        ),
        Register(
            "FSTS",
            0x034,
            32,
            (
                _f("fri", 15, 8, _ROS, doc="index of the first pending FRCD"),
                _f("ite", 6, None, _RW1CS, doc="invalidation time-out error"),
                _f("ice", 5, None, _RW1CS, doc="invalidation completion error"),
                _f("iqe", 4, None, _RW1CS, doc="invalidation queue error"),
                _f("ppf", 1, None, _ROS, doc="primary pending fault: OR of all FRCD.F"),
                _f("pfo", 0, None, _RW1CS, doc="primary fault overflow"),
            ),
            "fault status (vtd §1.8); bit 7 was 2.x PRO and is reserved",
        ),
        *_event_regs("FE", 0x038, "fault"),
        Register("IQH", 0x080, 64, (_f("qh", 18, 4, _RO, doc="offset of the next descriptor"),)),
        Register("IQT", 0x088, 64, (_f("qt", 18, 4, _RW, doc="offset of the next free slot"),)),
        Register(
            "IQA",
            0x090,
            64,
            (
                _f("iqa", 63, 12, _RW, doc="queue base 63:12"),
                _f("dw", 11, None, _RW, doc="descriptor width: 1 = 256-bit (required in scalable mode)"),
                _f("qs", 2, 0, _RW, doc="queue size: 2^QS pages"),
            ),
            "invalidation queue address (vtd §1.10)",
        ),
        Register("ICS", 0x09C, 32, (_f("iwc", 0, None, _RW1CS, doc="invalidation wait complete"),)),
        *_event_regs("IE", 0x0A0, "invalidation completion"),
        Register(
            "IQERCD",
            0x0B0,
            64,
            (
                _f("icesid", 63, 48, _RO, doc="source-id of the bad invalidation completion"),
                _f("itesid", 47, 32, _RO, doc="source-id of the timed-out device-TLB invalidation"),
                _f("iqei", 3, 0, _RO, doc="invalidation queue error info, see Iqei"),
            ),
            "invalidation queue error record",
        ),
        Register("PQH", 0x0C0, 64, (_f("pqh", 18, 5, _RW, doc="next descriptor software reads"),)),
        Register("PQT", 0x0C8, 64, (_f("pqt", 18, 5, _RW, doc="next slot hardware writes"),)),
        Register(
            "PQA",
            0x0D0,
            64,
            (
                _f("pqa", 63, 12, _RW, doc="queue base 63:12"),
                _f("pqs", 2, 0, _RW, doc="queue size: 2^PQS pages, 2^(PQS+7) entries"),
            ),
            "page request queue address (vtd §1.11)",
        ),
        Register(
            "PRS",
            0x0DC,
            32,
            (
                _f("pro", 1, None, _RW1CS, doc="page request overflow"),
                _f("ppr", 0, None, _RW1CS, doc="pending page request"),
            ),
            "page request status",
        ),
        *_event_regs("PE", 0x0E0, "page request"),
        Register(
            "IVA",
            profile.iro_offset,
            64,
            (
                _f("addr", 63, 12, _WO),
                _f("ih", 6, None, _WO),
                _f("am", 5, 0, _WO),
            ),
            "register-based IOTLB invalidation address (legacy only)",
        ),
        Register(
            "IOTLB_REG",
            profile.iro_offset + 8,
            64,
            (
                _f("ivt", 63, None, _RW, doc="invalidate IOTLB"),
                _f("iirg", 61, 60, _RW, doc="requested granularity"),
                _f("iaig", 58, 57, _RO, doc="actual granularity (00 = error)"),
                _f("dr", 49, None, _RW),
                _f("dw", 48, None, _RW),
                _f("did", 47, 32, _RW),
            ),
            "register-based IOTLB invalidation: always an error in scalable mode (vtd §1.7)",
        ),
        *[_frcd(n, profile.frcd_offset(n)) for n in range(profile.nfr + 1)],
    ]
    return RegisterMap(regs)


def _with_resets(fields: tuple[RegField, ...], values: dict[str, int]) -> tuple[RegField, ...]:
    return tuple(dataclasses.replace(f, reset=values[f.name]) for f in fields)


# Layout-only views of VER/CAP/ECAP (reset 0) used to pack and unpack profile values.
_VER_LAYOUT = Register("VER", 0x000, 32, VER_FIELDS)
_CAP_LAYOUT = Register("CAP", 0x008, 64, CAP_FIELDS)
_ECAP_LAYOUT = Register("ECAP", 0x010, 64, ECAP_FIELDS)


# ================================================================================================
# 5. The capabilities we advertise
# ================================================================================================


class ProfileError(ValueError):
    """A capability profile that breaks a dependency rule of vtd §1.3/§1.4 or the register layout."""


@dataclasses.dataclass(frozen=True)
class CapabilityProfile:
    """The VER/CAP/ECAP values this IOMMU advertises, one attribute per register field (named as in
    ``CAP_FIELDS`` / ``ECAP_FIELDS``), plus the host address width. The defaults are the project's
    profile; build variants with ``dataclasses.replace(PROFILE, nfr=0, fs5lp=0, ...)`` or keyword
    arguments. Values must fit their fields (checked on construction); ``check()`` applies the
    dependency rules, which a variant may deliberately break for negative tests."""

    # --- VER (vtd §1.2) ---
    #: major 8: register-based invalidation (CCMD, IOTLB_REG) is always an error (major >= 6), and a
    #: request with ER=1 faults with RTA.5 (0x34) before any table walk (major >= 8)
    ver_max: int = 8
    ver_min: int = 0

    #: host address width. Not in any register: the platform reports it in the ACPI DMAR table as
    #: "Host Address Width" = HAW - 1 (47). Pointer and page-frame bits >= HAW are reserved.
    haw: int = 48

    # --- CAP (vtd §1.3) ---
    esrtps: int = 1  # SRTP also invalidates every DMA-remapping cache: nothing survives a root switch
    esirtps: int = 0  # no interrupt remapping
    ecmds: int = 0  # no enhanced command interface
    fs5lp: int = 1  # 5-level first stage (FSPM=01) so processes using LA57 can be bound
    pi: int = 0  # no posted interrupts (no interrupt remapping)
    fs1gp: int = 1  # 1 GiB first-stage pages: Linux refuses SVM on a CPU with GB pages otherwise
    drd: int = 1  # read draining: deprecated, the spec asks to report 1
    dwd: int = 1  # write draining: deprecated, the spec asks to report 1
    mamv: int = 18  # iotlb_inv_dsc accepts address masks up to 18 (1 GiB)
    nfr: int = 3  # 4 fault recording registers (NFR = count - 1)
    psi: int = 1  # page-selective invalidation: mandatory for p_iotlb_inv_dsc with SMTS
    sslps: int = 0  # no second stage, so no second-stage large pages
    fro: int = 0x22  # FRCD0 at 0x220 (where QEMU puts it), past the MTRR range 0x100-0x218 (MTS=0)
    zlr: int = 0  # zero-length reads get no special treatment
    mgaw: int = 47  # 48-bit guest addresses; must be non-zero even without second-stage support
    sagaw: int = 0b00100  # CAP bit 10: 48-bit/4-level; must be non-zero even with SSTS=0
    cm: int = 0  # no caching mode: real hardware, not-present entries are never cached
    phmr: int = 0  # no protected high-memory region
    plmr: int = 0  # no protected low-memory region
    rwbf: int = 0  # no write-buffer flush needed (SMTS=1 implies 0)
    nd: int = 6  # 16-bit domain IDs (4 + 2*6), as Linux and QEMU expect

    # --- ECAP (vtd §1.4) ---
    irreq: int = 0  # no interrupt remapping
    eimer: int = 0  # no interrupt remapping
    rdts: int = 0  # no RDT
    hpt1gps: int = 0  # no host permission tables
    sms: int = 1  # stop markers go into the PRQ and are dropped when full (defined behaviour)
    ssirws: int = 0  # no second stage
    ptrs: int = 0  # translated requests carry no PASID (EPTR reserved)
    hpts: int = 0  # no host permission tables (HPT fields reserved, type 0xA invalid)
    rprivs: int = 0  # requests without PASID are always user requests (RID_PRIV ignored)
    adms: int = 0  # no abort-DMA mode (TTM=11 is invalid)
    pms: int = 0  # no perfmon
    tdxcs: int = 0  # no TDX Connect
    rps: int = 1  # RID_PASID honoured: DMA without PASID uses the context entry's RID_PASID
    smpwcs: int = 1  # PWSNP honoured: walks are snooped, so A/D updates never hit fault 0x90
    fsts: int = 1  # first-stage translation (PGTT=001), the SVM translation type
    ssts: int = 0  # no second stage
    ssads: int = 0  # no second stage
    vcs: int = 0  # no virtual command interface (emulation only)
    smts: int = 1  # scalable mode
    pds: int = 1  # page-request drain (inv_wait_dsc.PD), needed by the PRQ drain flow (vtd §5.5)
    dit: int = 0  # no device-TLB throttling: PFSID is ignored
    pasid: int = 1  # requests with PASID
    pss: int = 19  # 20-bit PASIDs
    eafs: int = 0  # no extended-accessed flag (EAFE reserved)
    nwfs: int = 1  # translation requests with NW=1 are treated as reads (no D update, W=0)
    srs: int = 1  # supervisor requests (PR=1) with SRE/WPE, the 2015 SUPERVISOR_MODE semantics
    ers: int = 0  # no execute requests: required by 5.10
    prs: int = 1  # page requests (PRI) into the PRQ
    nest: int = 0  # no nested translation
    mts: int = 0  # no memory types (CD/EMTE/PAT reserved)
    mhmv: int = 0  # no interrupt remapping
    iro: int = 0x0F  # IVA at 0xF0, IOTLB_REG at 0xF8 (where QEMU puts them)
    sc: int = 0  # no snoop control (PGSNP reserved)
    pt: int = 0  # no pass-through (PGTT=100 invalid)
    eim: int = 0  # no interrupt remapping
    ir: int = 0  # no interrupt remapping (iec_inv_dsc invalid)
    dt: int = 1  # device-TLB: ATS translation requests and translated requests
    qi: int = 1  # queued invalidation (the only invalidation interface in scalable mode)
    c: int = 1  # root/context/PASID table walks are snooped

    def __post_init__(self):
        _VER_LAYOUT.pack(**self.ver_fields())
        _CAP_LAYOUT.pack(**self.cap_fields())
        _ECAP_LAYOUT.pack(**self.ecap_fields())

    # --- register values ------------------------------------------------------------------------
    def ver_fields(self) -> dict[str, int]:
        return {"max": self.ver_max, "min": self.ver_min}

    def cap_fields(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in CAP_FIELDS}

    def ecap_fields(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in ECAP_FIELDS}

    def ver_value(self) -> int:
        return _VER_LAYOUT.pack(**self.ver_fields())

    def cap_value(self) -> int:
        return _CAP_LAYOUT.pack(**self.cap_fields())

    def ecap_value(self) -> int:
        return _ECAP_LAYOUT.pack(**self.ecap_fields())

    # --- derived facts --------------------------------------------------------------------------
    @property
    def iro_offset(self) -> int:
        """Byte offset of IVA (IOTLB_REG follows at +8)."""
        return self.iro * 16

    def frcd_offset(self, n: int) -> int:
        """Byte offset of FRCD[n], n = 0..NFR."""
        if not 0 <= n <= self.nfr:
            raise ValueError(f"FRCD index {n} outside 0..{self.nfr} (CAP.NFR)")
        return self.fro * 16 + 16 * n

    @property
    def pasid_bits(self) -> int:
        """Width of the PASIDs accepted (ECAP.PSS + 1); wider ones fault with SGN.10."""
        return self.pss + 1

    @property
    def did_bits(self) -> int:
        return 4 + 2 * self.nd

    # --- consistency ----------------------------------------------------------------------------
    def check(self) -> None:
        """Raise ProfileError listing every broken rule: the ECAP dependencies of vtd §1.4, the CAP
        constraints of vtd §1.3, value ranges, and a register page without overlaps."""
        broken = [rule for rule, ok in _PROFILE_RULES if not ok(self)]
        try:
            build_registers(self)
        except ValueError as e:
            broken.append(f"register layout: {e}")
        if broken:
            raise ProfileError("capability profile breaks: " + "; ".join(broken))


_PROFILE_RULES = [
    # vtd §1.4 dependencies
    ("DT => QI", lambda p: not p.dt or p.qi),
    ("IR => QI", lambda p: not p.ir or p.qi),
    ("SMTS => QI", lambda p: not p.smts or p.qi),
    ("PASID => SMTS", lambda p: not p.pasid or p.smts),
    ("PRS => DT and SMTS", lambda p: not p.prs or (p.dt and p.smts)),
    ("PDS => DT", lambda p: not p.pds or p.dt),
    ("RPRIVS => SRS", lambda p: not p.rprivs or p.srs),
    ("EAFS => FSTS and SMPWCS", lambda p: not p.eafs or (p.fsts and p.smpwcs)),
    ("NEST => FSTS and SSTS", lambda p: not p.nest or (p.fsts and p.ssts)),
    ("ERS = 0 (5.10)", lambda p: not p.ers),
    # vtd §1.3
    ("SMTS => RWBF = 0", lambda p: not p.smts or not p.rwbf),
    ("SMTS => PSI (page-selective p_iotlb is mandatory)", lambda p: not p.smts or p.psi),
    ("SAGAW != 0", lambda p: p.sagaw != 0),
    ("MGAW != 0", lambda p: p.mgaw != 0),
    ("ND <= 6 (domain IDs are at most 16 bits)", lambda p: p.nd <= 6),
    # ranges
    ("PSS <= 19 (PASIDs are at most 20 bits)", lambda p: p.pss <= 19),
    ("32 <= HAW <= 52", lambda p: 32 <= p.haw <= 52),
    # project rule: this scalable-mode-only design treats register-based invalidation as an error
    ("VER major >= 6", lambda p: p.ver_max >= 6),
]

#: the project's profile
PROFILE = CapabilityProfile()
#: the register page of PROFILE
REGISTERS = build_registers(PROFILE)
