"""PCIe TLP codec, Non-Flit Mode, with the PASID prefix, ATS and PRI messages (pcie.md §1-§4).

``decode(data) -> Tlp`` and ``Tlp.encode() -> bytes``; ``decode(b).encode() == b`` for every TLP
``decode`` accepts in its default strict mode, with one documented exception (prefix order, below).
Header DWs are big-endian (pcie §1.1: byte 0 bit 7 = DW0 bit 31); payloads are raw bytes in wire
order. The fixed layouts are ``BitStruct``s with ``BYTEORDER = "big"`` (``Dw0``, ``PasidPrefix``,
``MemRequestHeader32/64``, ``CompletionHeader``, the four message headers, ``InvalidateRequestBody``,
``TranslationEntry``); each covers header bytes 4.. of its TLP, so bit n of a struct is bit n of the
big-endian value of those bytes.

Classes (dataclasses, keyword-only, field names from pcie.md): ``MemRead`` (MRd/MRdLk; a Translation
Request is a ``MemRead`` with ``at == AT_TRANSLATION_REQUEST`` and ``nw``), ``MemWrite``,
``Completion`` (Cpl/CplD/CplLk/CplDLk), ``AtsInvalidateRequest``, ``AtsInvalidateCompletion``,
``PageRequest``, ``PrgResponse``. Common to all (base ``Tlp``): ``requester_id``, ``tc``, ``attr``
(3 bits: ``ATTR_NS``=1, ``ATTR_RO``=2, ``ATTR_IDO``=4), ``th``, ``td``, ``ep``, ``ln``, the PASID
prefix (``pasid`` = None when absent, ``pmr``, ``er``), ``other_prefixes`` and ``digest``.

Representation choices
* Every header bit is either a field of the object or reserved. Reserved bits (including AT in
  completions/messages, Length in TLPs without data, Tag[9:8] in posted requests, TL §2.2.6.2) must
  be zero: ``decode`` raises ``ReservedBitsError`` naming them. The DW0 flags TH/TD/EP/LN and Attr are
  carried as fields for every type; rules that reserve some of them per type (TH in completions and
  messages, Attr[1:0] and EP in some messages, TL §2.2.8/§2.2.9) are not enforced.
  ``decode(data, strict=False)`` is the receiver view of TL §2.2 ("values in reserved fields must be
  ignored by receivers"): reserved bits are dropped and a 64-bit-format request below 4 GiB is
  accepted; such input does not round-trip.
* ``other_prefixes``: every prefix DW other than the PASID prefix, as 32-bit ints in wire order
  (local prefixes first). Unknown and other End-End prefixes are kept, never dropped: the IOMMU must
  answer a request carrying an End-End prefix type it does not support with UR (pcie §2.1), so it has
  to see them. ``encode`` emits local prefixes, then the PASID prefix, then the other End-End
  prefixes; a received TLP whose PASID prefix follows another End-End prefix therefore re-encodes
  with the PASID prefix first (PCIe does not order End-End prefixes among themselves).
* ``td``: a TLP with TD=1 ends with a one-DW digest, kept raw in ``digest`` (ECRC is not computed
  or checked).
* ``MemRead``/``MemWrite``: 3DW header iff the address is below 4 GiB (TL §2.2.4.1: requesters must
  use the 32-bit format there). With TH=1 the steering tag is ``st``: byte 7 of a read (its byte
  enables are then implied: ``first_be``/``last_be`` hold 1111b/1111b, or 1111b/0000b for one DW),
  the Tag byte of a write (``tag`` must be 0) (TL §2.2.5.1, §2.2.7.1.1). ``ph`` is address bits 1:0
  with TH=1. A Translation Request has ``nw`` in address bit 0 (pcie §3.1 [recall]) and must have
  TH=0 (assumption: bits 1:0 cannot carry both PH and NW).
* ``length`` is the DW count 1..1024 (wire 0 means 1024); ``Completion.byte_count`` is 1..4096
  (wire 0 means 4096). ``MemWrite.length`` and ``Completion.length`` follow from ``data``.
* Addresses are byte addresses: ``address & 3 == 0`` for memory requests, 4 KiB aligned for the
  ATS/PRI messages (the low bits are not address bits there).
* ``AtsInvalidateRequest.itag`` sits in header byte 6 bits 4:0 (bits 7:5 reserved). This is the
  working assumption of pcie §3.4 / §8 Q1, stated once, in ``InvalidateRequestHeader.itag``.

Checks. Malformed input raises a ``TlpError`` (a ``ValueError``) subclass whose message names the
problem: ``TruncatedError``, ``FmtTypeError`` (``UnsupportedTypeError`` for well-formed types this
codec does not model: IO, Cfg, AtomicOps, DMWr), ``LengthError``, ``ReservedEncodingError``,
``ReservedBitsError``, ``PrefixError``, ``MessageCodeError``, ``ByteEnableError``, ``BoundaryError``.
``encode`` applies the same rules (one ``_check`` per class serves both directions) and raises
``ValueError`` naming the field for values that do not fit.

Helpers: ``byte_enable_count`` (TL Table 2-40), ``lower_address`` (Table 2-41), ``read_completions``
(TL §2.3.1.1), ``error_completion``, ``translation_completion`` and ``Completion.translation_entries``
(pcie §3.2), ``encode_range``/``decode_range`` (the S-bit range encoding of pcie §3.2).

"TL §x" is PCIe Base 6.3 chapter 2 as quoted by pcie.md's SPEC63 source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .bits import BitStruct, Field

# ================================================================================================
# Encodings
# ================================================================================================

AT_UNTRANSLATED = 0b00
AT_TRANSLATION_REQUEST = 0b01
AT_TRANSLATED = 0b10  # 0b11 is reserved (pcie §1.2)

ATTR_NS = 0b001  # No Snoop, DW0 bit 12
ATTR_RO = 0b010  # Relaxed Ordering, DW0 bit 13
ATTR_IDO = 0b100  # ID-Based Ordering, DW0 bit 18

# Completion Status (pcie §1.4); every other value is reserved
CPL_SC = 0b000
CPL_UR = 0b001
CPL_CRS = 0b010  # RRS in 6.x
CPL_CA = 0b100
CPL_STATUSES = (CPL_SC, CPL_UR, CPL_CRS, CPL_CA)

# PRG Response codes (pcie §4.2); 0010-1110 are unused and mean Response Failure to a receiver
PRG_SUCCESS = 0x0
PRG_INVALID_REQUEST = 0x1
PRG_RESPONSE_FAILURE = 0xF

# Message codes (pcie §1.5)
MSG_INVALIDATE_REQUEST = 0x01
MSG_INVALIDATE_COMPLETION = 0x02
MSG_PAGE_REQUEST = 0x04
MSG_PRG_RESPONSE = 0x05

FMT_3DW, FMT_4DW, FMT_3DW_DATA, FMT_4DW_DATA, FMT_PREFIX = 0b000, 0b001, 0b010, 0b011, 0b100
TYPE_MEM = 0b00000
TYPE_MEM_LOCKED = 0b00001
TYPE_CPL = 0b01010
TYPE_CPL_LOCKED = 0b01011
TYPE_MSG_TO_RC = 0b10000  # Msg/MsgD type 1 0 r2 r1 r0, routing 000 = to Root Complex
TYPE_MSG_BY_ID = 0b10010  # routing 010 = by ID

PASID_PREFIX = 0x91  # byte 0 of the PASID End-End prefix: Fmt 100b, Type 1 0001b (pcie §2.2)
MAX_E2E_PREFIXES = 4  # pcie §2.1

PAGE = 4096

# ================================================================================================
# Errors
# ================================================================================================


class TlpError(ValueError):
    """A malformed TLP (or an object that would encode to one)."""


class TruncatedError(TlpError):
    """Fewer bytes than a prefix, the header or Length needs."""


class FmtTypeError(TlpError):
    """A reserved or impossible Fmt/Type combination (or a header format a rule forbids)."""


class UnsupportedTypeError(FmtTypeError):
    """A well-formed PCIe TLP type this codec does not model (IO, Cfg, AtomicOp, DMWr)."""


class LengthError(TlpError):
    """Length does not match the payload, or is not allowed for the type."""


class ReservedEncodingError(TlpError):
    """A field holds a reserved encoding (Fmt 101b-111b, AT = 11b, reserved Completion Status...)."""


class ReservedBitsError(TlpError):
    """Reserved bits are non-zero (strict decode only)."""


class PrefixError(TlpError):
    """TLP prefix rules broken (pcie §2.1, §2.2)."""


class MessageCodeError(TlpError):
    """A message code this codec does not know, or a known code with the wrong Msg/MsgD routing."""


class ByteEnableError(TlpError):
    """First/Last DW BE rules of TL §2.2.5.1 broken."""


class BoundaryError(TlpError):
    """A memory request crosses a 4 KiB boundary (TL §2.2.7.1)."""


# ================================================================================================
# Bit layouts (big-endian: bit 0 is the least significant bit of the last byte)
# ================================================================================================


class Dw0(BitStruct):
    """DW0 of every Non-Flit Mode header and of every prefix (pcie §1.2)."""

    WIDTH = 32
    BYTEORDER = "big"
    fmt = Field(31, 29)
    type = Field(28, 24)
    t9 = Field(23, doc="Tag[9]")
    tc = Field(22, 20)
    t8 = Field(19, doc="Tag[8]")
    ido = Field(18, doc="Attr[2]")
    ln = Field(17)
    th = Field(16)
    td = Field(15)
    ep = Field(14)
    attr_lo = Field(13, 12, doc="Attr[1:0]: RO (bit 13), NS (bit 12)")
    at = Field(11, 10)
    length = Field(9, 0, doc="DW count, 0 means 1024")


class PasidPrefix(BitStruct):
    """The PASID End-End TLP prefix, one DW (pcie §2.2); bits 21:20 are reserved."""

    WIDTH = 32
    BYTEORDER = "big"
    fmt_type = Field(31, 24, doc="0x91")
    pmr = Field(23, doc="Privileged Mode Requested")
    er = Field(22, doc="Execute Requested")
    pasid = Field(19, 0)


class MemRequestHeader32(BitStruct):
    """Header bytes 4-11 of a 3DW memory request (pcie §1.3)."""

    WIDTH = 64
    BYTEORDER = "big"
    requester_id = Field(63, 48)
    tag = Field(47, 40, doc="Tag[7:0]; ST[7:0] in a write with TH=1")
    last_be = Field(39, 36, doc="ST[7:4] in a read with TH=1")
    first_be = Field(35, 32, doc="ST[3:0] in a read with TH=1")
    addr = Field(31, 2, doc="Address[31:2]")
    ph = Field(1, 0, doc="PH with TH=1; NW in bit 0 of a Translation Request; else reserved")


class MemRequestHeader64(BitStruct):
    """Header bytes 4-15 of a 4DW memory request (pcie §1.3)."""

    WIDTH = 96
    BYTEORDER = "big"
    requester_id = Field(95, 80)
    tag = Field(79, 72, doc="Tag[7:0]; ST[7:0] in a write with TH=1")
    last_be = Field(71, 68, doc="ST[7:4] in a read with TH=1")
    first_be = Field(67, 64, doc="ST[3:0] in a read with TH=1")
    addr = Field(63, 2, doc="Address[63:2]")
    ph = Field(1, 0, doc="PH with TH=1; NW in bit 0 of a Translation Request; else reserved")


class CompletionHeader(BitStruct):
    """Header bytes 4-11 of a completion (pcie §1.4); bit 7 is reserved."""

    WIDTH = 64
    BYTEORDER = "big"
    completer_id = Field(63, 48)
    status = Field(47, 45)
    bcm = Field(44)
    byte_count = Field(43, 32, doc="0 means 4096")
    requester_id = Field(31, 16)
    tag = Field(15, 8, doc="Tag[7:0]")
    lower_address = Field(6, 0)


class MessageHeader(BitStruct):
    """Header bytes 4-15 of a message (pcie §1.5): the fields every message has."""

    WIDTH = 96
    BYTEORDER = "big"
    requester_id = Field(95, 80)
    msg_code = Field(71, 64)


class PageRequestHeader(MessageHeader):
    """PRI Page Request, bytes 8-15 (pcie §4.1)."""

    tag = Field(79, 72)
    page = Field(63, 12, doc="Page Address[63:12]")
    prg_index = Field(11, 3)
    l = Field(2, doc="last request of the Page Request Group")  # noqa: E741 (spec name)
    w = Field(1)
    r = Field(0)


class PrgResponseHeader(MessageHeader):
    """PRG Response, bytes 8-15 (pcie §4.2): byte 10 bits 3:1 and bytes 12-15 are reserved."""

    tag = Field(79, 72)
    dest_id = Field(63, 48)
    response_code = Field(47, 44)
    prg_index = Field(40, 32)


class InvalidateCompletionHeader(MessageHeader):
    """ATS Invalidate Completion, bytes 8-15 (pcie §3.5)."""

    tag = Field(79, 72)
    dest_id = Field(63, 48, doc="the TA (Requester ID of the Invalidate Request)")
    cc = Field(34, 32, doc="Completion Count")
    itag_vector = Field(31, 0)


class InvalidateRequestHeader(MessageHeader):
    """ATS Invalidate Request header (pcie §3.4). Bytes 10-15 are reserved."""

    itag = Field(76, 72, doc="byte 6 bits 4:0: working assumption (pcie §3.4, §8 Q1); 7:5 reserved")
    dest_id = Field(63, 48, doc="Device ID of the target function")


class InvalidateRequestBody(BitStruct):
    """The 8-byte payload of an ATS Invalidate Request (pcie §3.4); bits 10:1 are reserved."""

    WIDTH = 64
    BYTEORDER = "big"
    addr = Field(63, 12, doc="Untranslated Address[63:12] (with S=1 also the range size)")
    s = Field(11)
    global_invalidate = Field(0)


class TranslationEntry(BitStruct):
    """One 8-byte ATS Translation Completion entry, big-endian (pcie §3.2).

    ``addr`` holds Translated Address[63:12]; ``address`` is the byte address as sent (with S=1 its
    low bits also encode the range size, see ``size``/``base``)."""

    WIDTH = 64
    BYTEORDER = "big"
    addr = Field(63, 12, doc="Translated Address[63:12]")
    s = Field(11, doc="range size > 4 KiB, encoded in the address bits")
    n = Field(10, doc="non-snooped accesses allowed")
    cxl = Field(9, doc="CXL.io (6.x)")
    ama = Field(8, 6, doc="ATS Memory Attributes (6.x)")
    g = Field(5, doc="global mapping")
    priv = Field(4)
    exe = Field(3)
    u = Field(2, doc="untranslated access only")
    w = Field(1)
    r = Field(0)

    @property
    def address(self) -> int:
        return self.addr << 12

    def size(self) -> int:
        return decode_range(self.address, self.s)[1]

    def base(self) -> int:
        return decode_range(self.address, self.s)[0]

    @classmethod
    def from_range(cls, base: int, size: int, **flags) -> TranslationEntry:
        """The entry for the naturally aligned power-of-two range [base, base + size), size >= 4 KiB;
        ``flags`` are the other fields (``r=1, w=1, ...``)."""
        address, s = encode_range(base, size)
        return cls(addr=address >> 12, s=s, **flags)


# ================================================================================================
# Small rules used in several places
# ================================================================================================


def _lsb(x: int) -> int:
    return (x & -x).bit_length() - 1


def _check_width(owner: str, name: str, value, bits: int) -> None:
    if not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise ValueError(f"{owner}.{name}: {value!r} does not fit in {bits} bit(s)")


def encode_range(base: int, size: int) -> tuple[int, int]:
    """(address, s) for a naturally aligned power-of-two range of ``size`` >= 4 KiB (pcie §3.2):
    S=0 means 4 KiB; with S=1 the address bits from 12 up to the first 0 are all 1 and the first 0
    at bit 12+X means 2^(X+1) * 4 KiB."""
    if size < PAGE or size & (size - 1) or size > 1 << 64:
        raise ValueError(f"range size {size:#x} is not a power of two in 4 KiB..2^64")
    if base % size or not 0 <= base < 1 << 64:
        raise ValueError(f"range base {base:#x} is not aligned to its size {size:#x}")
    if size == PAGE:
        return base, 0
    return base | ((size // 2 - 1) & ~(PAGE - 1)), 1


def decode_range(address: int, s: int) -> tuple[int, int]:
    """(base, size) of the range an address with the S bit describes (pcie §3.2)."""
    if not s:
        return address & ~(PAGE - 1), PAGE
    ones = address >> 12
    x = _lsb(~ones)  # position of the first 0 above bit 12
    if x >= 52:
        raise ReservedEncodingError(f"S=1 with address bits 63:12 all ones ({address:#x}) encodes no range")
    size = PAGE << (x + 1)
    return address & ~(size - 1), size


def _enabled_span(length: int, first_be: int, last_be: int) -> tuple[int, int]:
    """Byte offsets [first, end) of the enabled bytes relative to the DW-aligned request address
    (TL Tables 2-40/2-41; a zero-length read counts as one byte)."""
    if not 1 <= length <= 1024:
        raise ValueError(f"length {length} outside 1..1024 DW")
    if length == 1:
        if last_be:
            raise ByteEnableError(f"last_be must be 0000b when Length is 1 DW, got {last_be:04b}b")
        if first_be == 0:
            return 0, 1
        return _lsb(first_be), first_be.bit_length()
    if not first_be or not last_be:
        raise ByteEnableError(f"first_be/last_be must not be 0000b when Length is {length} DW")
    return _lsb(first_be), 4 * (length - 1) + last_be.bit_length()


def byte_enable_count(length: int, first_be: int, last_be: int) -> int:
    """Total byte count of a memory read from Length and byte enables (TL §2.3.1.1 Table 2-40)."""
    first, end = _enabled_span(length, first_be, last_be)
    return end - first


def lower_address(address: int, first_be: int) -> int:
    """Lower Address of the first (or only) completion of a memory read: address bits 6:2 and the
    offset of the first enabled byte (TL §2.3.1.1 Table 2-41; 0000b gives 00b)."""
    return (address & 0x7C) | (_lsb(first_be) if first_be & 0xF else 0)


def _check_byte_enables(length: int, first_be: int, last_be: int, address: int) -> None:
    """TL §2.2.5.1: Length 1 needs Last BE 0000b; Length > 1 needs both non-zero; non-contiguous
    enables are allowed only in a 1 DW request and in a QW-aligned 2 DW request."""
    _enabled_span(length, first_be, last_be)
    if length > 2 or (length == 2 and address & 4):
        if first_be not in (0b1111, 0b1110, 0b1100, 0b1000):
            raise ByteEnableError(f"first_be {first_be:04b}b is not contiguous up to byte 3 "
                                  f"(Length {length} DW at {address:#x})")
        if last_be not in (0b0001, 0b0011, 0b0111, 0b1111):
            raise ByteEnableError(f"last_be {last_be:04b}b is not contiguous from byte 0 "
                                  f"(Length {length} DW at {address:#x})")


def _check_data(owner: str, data: bytes) -> None:
    if len(data) % 4 or not 4 <= len(data) <= 4096:
        raise LengthError(f"{owner}.data: {len(data)} bytes is not 1..1024 whole DWs")


# ================================================================================================
# TLP classes
# ================================================================================================


@dataclass(kw_only=True)
class Tlp:
    """Fields every TLP has: DW0 flags, the Requester ID, the prefixes and the digest."""

    requester_id: int = 0
    tc: int = 0
    attr: int = 0
    th: int = 0
    td: int = 0
    ep: int = 0
    ln: int = 0
    pasid: int | None = None
    pmr: int = 0
    er: int = 0
    other_prefixes: tuple[int, ...] = ()
    digest: bytes = b""

    #: may this type carry a PASID prefix (pcie §2.2)
    PASID_ALLOWED: ClassVar[bool] = True
    #: plain integer fields and their widths, checked by encode
    WIDTHS: ClassVar[dict[str, int]] = {
        "requester_id": 16, "tc": 3, "attr": 3, "th": 1, "td": 1, "ep": 1, "ln": 1, "pmr": 1, "er": 1,
    }

    # --- encode -----------------------------------------------------------------------------------
    def encode(self) -> bytes:
        name = type(self).__name__
        for field, bits in self.WIDTHS.items():
            _check_width(name, field, getattr(self, field), bits)
        self._check()
        dw0 = Dw0(tc=self.tc, ido=self.attr >> 2, attr_lo=self.attr & 3, ln=self.ln, th=self.th,
                  td=self.td, ep=self.ep)
        body = self._pack(dw0)
        return self._prefix_bytes() + dw0.to_bytes() + body + bytes(self.digest)

    def _prefix_bytes(self) -> bytes:
        local = [p for p in self.other_prefixes if not p >> 28 & 1]
        e2e = [p for p in self.other_prefixes if p >> 28 & 1]
        if self.pasid is not None:
            e2e.insert(0, PasidPrefix(fmt_type=PASID_PREFIX, pmr=self.pmr, er=self.er, pasid=self.pasid).raw)
        return b"".join(p.to_bytes(4, "big") for p in local + e2e)

    def _pack(self, dw0: Dw0) -> bytes:
        """Set the type-specific DW0 fields and return the header bytes after DW0 plus payload."""
        raise NotImplementedError

    # --- rules shared by encode and decode ----------------------------------------------------------
    def _check(self) -> None:
        name = type(self).__name__
        if self.pasid is not None:
            _check_width(name, "pasid", self.pasid, 20)
            if not self.PASID_ALLOWED:
                raise PrefixError(f"{name} must not carry a PASID prefix (pcie §2.2)")
        elif self.pmr or self.er:
            raise ValueError(f"{name}: pmr/er live in the PASID prefix and need a pasid")
        if len(self.digest) != (4 if self.td else 0):
            raise ValueError(f"{name}.digest: TD={self.td} needs a {4 if self.td else 0}-byte digest, "
                             f"got {len(self.digest)} bytes")
        e2e = 0 if self.pasid is None else 1
        seen_e2e = False
        for p in self.other_prefixes:
            _check_width(name, "other_prefixes[]", p, 32)
            if p >> 29 != FMT_PREFIX:
                raise PrefixError(f"{name}.other_prefixes: {p:#010x} is not a prefix (Fmt must be 100b)")
            if p >> 24 == PASID_PREFIX:
                raise PrefixError(f"{name}.other_prefixes: the PASID prefix goes in pasid/pmr/er")
            if p >> 28 & 1:
                e2e += 1
                seen_e2e = True
            elif seen_e2e:
                raise PrefixError(f"{name}.other_prefixes: local prefix {p:#010x} after an End-End "
                                  f"prefix (pcie §2.1)")
        if e2e > MAX_E2E_PREFIXES:
            raise PrefixError(f"{name}: {e2e} End-End prefixes, at most {MAX_E2E_PREFIXES} (pcie §2.1)")

    # --- decode (per class) ---------------------------------------------------------------------------
    @classmethod
    def _unpack(cls, dw0: Dw0, header: bytes, payload: bytes, rsv: list[str], strict: bool) -> dict:
        """Fields from DW0, header bytes 4.. and the payload; appends reserved-bit findings to rsv."""
        raise NotImplementedError


def _no_at(dw0: Dw0, rsv: list[str], what: str) -> None:
    if dw0.at:
        rsv.append(f"AT (reserved in {what})")


def _no_tag_hi(dw0: Dw0, rsv: list[str], what: str) -> None:
    if dw0.t9 or dw0.t8:
        rsv.append(f"Tag[9:8] (reserved in {what}, TL §2.2.6.2)")


def _no_length(dw0: Dw0, rsv: list[str], what: str) -> None:
    if dw0.length:
        rsv.append(f"Length (reserved in {what})")


def _reserved_in(struct: BitStruct, rsv: list[str]) -> None:
    rsv.extend(f"{type(struct).__name__}.{n}" for n in struct.reserved_set())


# --- memory requests ------------------------------------------------------------------------------


def _address_header(address: int, four_dw: bool, requester_id: int, tag: int, first_be: int,
                    last_be: int, low: int) -> bytes:
    layout = MemRequestHeader64 if four_dw else MemRequestHeader32
    return layout(requester_id=requester_id, tag=tag, last_be=last_be, first_be=first_be, addr=address >> 2,
                  ph=low).to_bytes()


def _parse_address_header(header: bytes, strict: bool, name: str):
    four_dw = len(header) == 12
    h = (MemRequestHeader64 if four_dw else MemRequestHeader32).from_bytes(header)
    address = h.addr << 2
    if four_dw and address >> 32 == 0 and strict:
        raise FmtTypeError(f"{name}: 4DW header for address {address:#x} below 4 GiB "
                           f"(requesters must use the 3DW format, TL §2.2.4.1)")
    return h, address


@dataclass(kw_only=True)
class _MemRequest(Tlp):
    """Fields and rules MemRead and MemWrite share (pcie §1.3)."""

    tag: int = 0
    at: int = AT_UNTRANSLATED
    address: int = 0
    first_be: int = 0xF
    last_be: int = 0
    ph: int = 0
    st: int = 0

    WIDTHS: ClassVar[dict[str, int]] = {
        **Tlp.WIDTHS, "at": 2, "address": 64, "first_be": 4, "last_be": 4, "ph": 2, "st": 8,
    }

    @property
    def four_dw(self) -> bool:
        return self.address >> 32 != 0

    def _check_request(self, length: int) -> None:
        name = type(self).__name__
        if self.at == 0b11:
            raise ReservedEncodingError(f"{name}: AT = 11b is reserved (pcie §1.2)")
        if self.address & 3:
            raise ValueError(f"{name}.address {self.address:#x} is not DW aligned (use first_be)")
        if not self.th and (self.ph or self.st):
            raise ValueError(f"{name}: ph/st are TLP Processing Hints and need th=1")
        if (self.address & (PAGE - 1)) + 4 * length > PAGE:
            raise BoundaryError(f"{name}: {length} DW at {self.address:#x} crosses a 4 KiB boundary "
                                f"(TL §2.2.7.1)")


@dataclass(kw_only=True)
class MemRead(_MemRequest):
    """MRd / MRdLk (``locked``). A Translation Request has ``at == AT_TRANSLATION_REQUEST`` and the
    No-Write flag ``nw`` (pcie §3.1). With TH=1, ``st`` replaces the byte enables (implied values)."""

    length: int = 1
    nw: int = 0
    locked: int = 0

    WIDTHS: ClassVar[dict[str, int]] = {**_MemRequest.WIDTHS, "tag": 10, "nw": 1, "locked": 1}

    def implied_byte_enables(self) -> tuple[int, int]:
        """(first_be, last_be) implied by TH=1 (TL §2.2.5.1)."""
        return 0xF, (0xF if self.length > 1 else 0)

    def _check(self) -> None:
        super()._check()
        name = type(self).__name__
        if not 1 <= self.length <= 1024:
            raise ValueError(f"{name}.length {self.length} outside 1..1024 DW")
        if self.nw and self.at != AT_TRANSLATION_REQUEST:
            raise ValueError(f"{name}.nw exists only in a Translation Request (at=1)")
        if self.th and self.at == AT_TRANSLATION_REQUEST:
            raise ValueError(f"{name}: th=1 in a Translation Request (address bits 1:0 carry NW)")
        self._check_request(self.length)
        if self.th:
            if (self.first_be, self.last_be) != self.implied_byte_enables():
                raise ValueError(f"{name}: with th=1 byte 7 carries st; first_be/last_be must hold the "
                                 f"implied {self.implied_byte_enables()} (TL §2.2.5.1)")
        else:
            _check_byte_enables(self.length, self.first_be, self.last_be, self.address)

    def _pack(self, dw0: Dw0) -> bytes:
        dw0.fmt = FMT_4DW if self.four_dw else FMT_3DW
        dw0.type = TYPE_MEM_LOCKED if self.locked else TYPE_MEM
        dw0.at, dw0.length = self.at, self.length & 0x3FF
        dw0.t9, dw0.t8 = self.tag >> 9 & 1, self.tag >> 8 & 1
        if self.th:
            be, low = self.st, self.ph
        else:
            be, low = self.last_be << 4 | self.first_be, self.nw
        return _address_header(self.address, self.four_dw, self.requester_id, self.tag & 0xFF, be & 0xF,
                               be >> 4, low)

    @classmethod
    def _unpack(cls, dw0, header, payload, rsv, strict):
        h, address = _parse_address_header(header, strict, cls.__name__)
        length = dw0.length or 1024
        f = dict(requester_id=h.requester_id, tag=dw0.t9 << 9 | dw0.t8 << 8 | h.tag, at=dw0.at,
                 address=address, length=length,
                 locked=int(dw0.type == TYPE_MEM_LOCKED))
        th = dw0.th
        if th and dw0.at == AT_TRANSLATION_REQUEST:
            rsv.append("TH (reserved in a Translation Request)")
            th = 0
        f["th"] = th
        if th:
            f.update(st=h.last_be << 4 | h.first_be, ph=h.ph, first_be=0xF,
                     last_be=0xF if length > 1 else 0)
        else:
            f.update(first_be=h.first_be, last_be=h.last_be)
            if dw0.at == AT_TRANSLATION_REQUEST:
                f["nw"] = h.ph & 1
                if h.ph & 2:
                    rsv.append("address bit 1 (reserved in a Translation Request)")
            elif h.ph:
                rsv.append("address bits 1:0 (PH, reserved when TH=0)")
        return f


@dataclass(kw_only=True)
class MemWrite(_MemRequest):
    """MWr. ``tag`` is Tag[7:0] (Tag[9:8] are reserved in posted requests, TL §2.2.6.2); with TH=1
    the Tag byte carries ``st`` and ``tag`` must be 0. AT is carried as sent (a write with AT=01b is
    not a Translation Request; what to answer is the receiver's decision)."""

    data: bytes = bytes(4)

    WIDTHS: ClassVar[dict[str, int]] = {**_MemRequest.WIDTHS, "tag": 8}

    @property
    def length(self) -> int:
        return len(self.data) // 4

    def _check(self) -> None:
        super()._check()
        name = type(self).__name__
        _check_data(name, self.data)
        self._check_request(self.length)
        if self.th and self.tag:
            raise ValueError(f"{name}: with th=1 the Tag byte carries st; tag must be 0 (TL §2.2.6.2)")
        _check_byte_enables(self.length, self.first_be, self.last_be, self.address)

    def _pack(self, dw0: Dw0) -> bytes:
        dw0.fmt = FMT_4DW_DATA if self.four_dw else FMT_3DW_DATA
        dw0.type = TYPE_MEM
        dw0.at, dw0.length = self.at, self.length & 0x3FF
        tag = self.st if self.th else self.tag
        return _address_header(self.address, self.four_dw, self.requester_id, tag, self.first_be,
                               self.last_be, self.ph) + bytes(self.data)

    @classmethod
    def _unpack(cls, dw0, header, payload, rsv, strict):
        h, address = _parse_address_header(header, strict, cls.__name__)
        _no_tag_hi(dw0, rsv, "a posted request")
        f = dict(requester_id=h.requester_id, at=dw0.at, address=address, first_be=h.first_be,
                 last_be=h.last_be, data=payload)
        if dw0.th:
            f.update(st=h.tag, ph=h.ph)
        else:
            f["tag"] = h.tag
            if h.ph:
                rsv.append("address bits 1:0 (PH, reserved when TH=0)")
        return f


# --- completions -----------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Completion(Tlp):
    """Cpl / CplD (``data`` empty or not) and CplLk / CplDLk (``locked``) (pcie §1.4)."""

    completer_id: int = 0
    status: int = CPL_SC
    bcm: int = 0
    byte_count: int = 4
    tag: int = 0
    lower_address: int = 0
    data: bytes = b""
    locked: int = 0

    PASID_ALLOWED: ClassVar[bool] = False
    WIDTHS: ClassVar[dict[str, int]] = {
        **Tlp.WIDTHS, "completer_id": 16, "status": 3, "bcm": 1, "tag": 10, "lower_address": 7, "locked": 1,
    }

    @property
    def length(self) -> int:
        return len(self.data) // 4

    def translation_entries(self) -> list[TranslationEntry]:
        """The ATS entries of a Translation Completion payload (pcie §3.2)."""
        if len(self.data) % 8:
            raise LengthError(f"translation completion payload of {len(self.data)} bytes is not a whole "
                              f"number of 8-byte entries (pcie §3.2)")
        return [TranslationEntry.from_bytes(self.data[i:i + 8]) for i in range(0, len(self.data), 8)]

    def _check(self) -> None:
        super()._check()
        name = type(self).__name__
        if not 1 <= self.byte_count <= 4096:
            raise ValueError(f"{name}.byte_count {self.byte_count} outside 1..4096 (4096 is sent as 0)")
        if self.status not in CPL_STATUSES:
            raise ReservedEncodingError(f"{name}: Completion Status {self.status:03b}b is reserved "
                                        f"(pcie §1.4)")
        if self.data:
            _check_data(name, self.data)
            if self.status != CPL_SC:
                raise FmtTypeError(f"{name}: a completion with data must have status SC; a non-SC "
                                   f"completion is a Cpl without data (TL §2.3.1.1)")

    def _pack(self, dw0: Dw0) -> bytes:
        dw0.fmt = FMT_3DW_DATA if self.data else FMT_3DW
        dw0.type = TYPE_CPL_LOCKED if self.locked else TYPE_CPL
        dw0.length = self.length & 0x3FF
        dw0.t9, dw0.t8 = self.tag >> 9 & 1, self.tag >> 8 & 1
        h = CompletionHeader(completer_id=self.completer_id, status=self.status, bcm=self.bcm,
                             byte_count=self.byte_count & 0xFFF, requester_id=self.requester_id,
                             tag=self.tag & 0xFF, lower_address=self.lower_address)
        return h.to_bytes() + bytes(self.data)

    @classmethod
    def _unpack(cls, dw0, header, payload, rsv, strict):
        h = CompletionHeader.from_bytes(header)
        _no_at(dw0, rsv, "a completion")
        if not payload:
            _no_length(dw0, rsv, "a Cpl without data")
        _reserved_in(h, rsv)
        return dict(completer_id=h.completer_id, status=h.status, bcm=h.bcm, byte_count=h.byte_count or 4096,
                    requester_id=h.requester_id, tag=dw0.t9 << 9 | dw0.t8 << 8 | h.tag,
                    lower_address=h.lower_address, data=payload, locked=int(dw0.type == TYPE_CPL_LOCKED))


# --- messages ----------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class _Message(Tlp):
    """What every ATS/PRI message shares: 4DW header, routing, code, reserved AT and Tag[9:8]."""

    FMT: ClassVar[int] = FMT_4DW
    TYPE: ClassVar[int]
    CODE: ClassVar[int]
    HEADER: ClassVar[type[MessageHeader]]

    def _header(self) -> MessageHeader:
        raise NotImplementedError

    def _pack(self, dw0: Dw0) -> bytes:
        dw0.fmt, dw0.type = self.FMT, self.TYPE
        h = self._header()
        h.requester_id, h.msg_code = self.requester_id, self.CODE
        return h.to_bytes()

    @classmethod
    def _unpack(cls, dw0, header, payload, rsv, strict):
        h = cls.HEADER.from_bytes(header)
        what = f"a {cls.__name__} message"
        _no_at(dw0, rsv, what)
        _no_tag_hi(dw0, rsv, what)
        if cls.FMT == FMT_4DW:
            _no_length(dw0, rsv, what)
        _reserved_in(h, rsv)
        fields = {n: getattr(h, n) for n in h.field_names() if n != "msg_code"}
        return cls._from_header(fields, payload, rsv)

    @classmethod
    def _from_header(cls, fields: dict, payload: bytes, rsv: list[str]) -> dict:
        return fields


def _check_page_address(name: str, address: int) -> None:
    if address & (PAGE - 1):
        raise ValueError(f"{name}.address {address:#x}: bits 11:0 are not address bits here (4 KiB aligned)")


@dataclass(kw_only=True)
class PageRequest(_Message):
    """PRI Page Request, Msg routed to the RC, code 0x04 (pcie §4.1). A Stop Marker is a Page
    Request with a PASID and l=1, w=r=0."""

    tag: int = 0
    address: int = 0
    prg_index: int = 0
    l: int = 0  # noqa: E741 (spec name)
    w: int = 0
    r: int = 0

    TYPE: ClassVar[int] = TYPE_MSG_TO_RC
    CODE: ClassVar[int] = MSG_PAGE_REQUEST
    HEADER: ClassVar[type[MessageHeader]] = PageRequestHeader
    WIDTHS: ClassVar[dict[str, int]] = {
        **Tlp.WIDTHS, "tag": 8, "address": 64, "prg_index": 9, "l": 1, "w": 1, "r": 1,
    }

    @property
    def is_stop_marker(self) -> bool:
        return self.pasid is not None and self.l == 1 and self.w == 0 and self.r == 0

    def _check(self) -> None:
        super()._check()
        _check_page_address(type(self).__name__, self.address)

    def _header(self):
        return PageRequestHeader(tag=self.tag, page=self.address >> 12, prg_index=self.prg_index,
                                 l=self.l, w=self.w, r=self.r)

    @classmethod
    def _from_header(cls, fields, payload, rsv):
        fields["address"] = fields.pop("page") << 12
        return fields


@dataclass(kw_only=True)
class PrgResponse(_Message):
    """PRI PRG Response, Msg routed by ID, code 0x05 (pcie §4.2)."""

    tag: int = 0
    dest_id: int = 0
    response_code: int = PRG_SUCCESS
    prg_index: int = 0

    TYPE: ClassVar[int] = TYPE_MSG_BY_ID
    CODE: ClassVar[int] = MSG_PRG_RESPONSE
    HEADER: ClassVar[type[MessageHeader]] = PrgResponseHeader
    WIDTHS: ClassVar[dict[str, int]] = {
        **Tlp.WIDTHS, "tag": 8, "dest_id": 16, "response_code": 4, "prg_index": 9,
    }

    def _header(self):
        return PrgResponseHeader(tag=self.tag, dest_id=self.dest_id, response_code=self.response_code,
                                 prg_index=self.prg_index)


@dataclass(kw_only=True)
class AtsInvalidateCompletion(_Message):
    """ATS Invalidate Completion, Msg routed by ID, code 0x02 (pcie §3.5). Never carries a PASID."""

    tag: int = 0
    dest_id: int = 0
    cc: int = 0
    itag_vector: int = 0

    PASID_ALLOWED: ClassVar[bool] = False
    TYPE: ClassVar[int] = TYPE_MSG_BY_ID
    CODE: ClassVar[int] = MSG_INVALIDATE_COMPLETION
    HEADER: ClassVar[type[MessageHeader]] = InvalidateCompletionHeader
    WIDTHS: ClassVar[dict[str, int]] = {**Tlp.WIDTHS, "tag": 8, "dest_id": 16, "cc": 3, "itag_vector": 32}

    def _header(self):
        return InvalidateCompletionHeader(tag=self.tag, dest_id=self.dest_id, cc=self.cc,
                                          itag_vector=self.itag_vector)


@dataclass(kw_only=True)
class AtsInvalidateRequest(_Message):
    """ATS Invalidate Request, MsgD routed by ID, Length 2, code 0x01 (pcie §3.4). ``address`` and
    ``s`` use the range encoding of ``encode_range``; ``range()`` gives (base, size)."""

    dest_id: int = 0
    itag: int = 0
    address: int = 0
    s: int = 0
    global_invalidate: int = 0

    FMT: ClassVar[int] = FMT_4DW_DATA
    TYPE: ClassVar[int] = TYPE_MSG_BY_ID
    CODE: ClassVar[int] = MSG_INVALIDATE_REQUEST
    HEADER: ClassVar[type[MessageHeader]] = InvalidateRequestHeader
    WIDTHS: ClassVar[dict[str, int]] = {
        **Tlp.WIDTHS, "dest_id": 16, "itag": 5, "address": 64, "s": 1, "global_invalidate": 1,
    }

    def range(self) -> tuple[int, int]:
        return decode_range(self.address, self.s)

    def _check(self) -> None:
        super()._check()
        _check_page_address(type(self).__name__, self.address)

    def _header(self):
        return InvalidateRequestHeader(itag=self.itag, dest_id=self.dest_id)

    def _pack(self, dw0: Dw0) -> bytes:
        dw0.length = 2
        body = InvalidateRequestBody(addr=self.address >> 12, s=self.s,
                                     global_invalidate=self.global_invalidate)
        return super()._pack(dw0) + body.to_bytes()

    @classmethod
    def _from_header(cls, fields, payload, rsv):
        if len(payload) != 8:
            raise LengthError(f"AtsInvalidateRequest: Length must be 2 DW, got {len(payload) // 4} "
                              f"(pcie §3.4)")
        body = InvalidateRequestBody.from_bytes(payload)
        _reserved_in(body, rsv)
        return dict(fields, address=body.addr << 12, s=body.s, global_invalidate=body.global_invalidate)


# ================================================================================================
# decode
# ================================================================================================

_MESSAGES: dict[tuple[int, int, int], type[_Message]] = {
    (c.FMT, c.TYPE, c.CODE): c
    for c in (PageRequest, PrgResponse, AtsInvalidateCompletion, AtsInvalidateRequest)
}

_UNMODELLED = {
    (FMT_3DW, 0b00010): "IORd", (FMT_3DW_DATA, 0b00010): "IOWr",
    (FMT_3DW, 0b00100): "CfgRd0", (FMT_3DW_DATA, 0b00100): "CfgWr0",
    (FMT_3DW, 0b00101): "CfgRd1", (FMT_3DW_DATA, 0b00101): "CfgWr1",
    (FMT_3DW, 0b11011): "TCfgRd (deprecated)",
    (FMT_3DW_DATA, 0b11011): "DMWr", (FMT_4DW_DATA, 0b11011): "DMWr",
    (FMT_3DW_DATA, 0b01100): "FetchAdd", (FMT_4DW_DATA, 0b01100): "FetchAdd",
    (FMT_3DW_DATA, 0b01101): "Swap", (FMT_4DW_DATA, 0b01101): "Swap",
    (FMT_3DW_DATA, 0b01110): "CAS", (FMT_4DW_DATA, 0b01110): "CAS",
}


def _classify(dw0: Dw0, header: bytes) -> type[Tlp]:
    fmt, typ = dw0.fmt, dw0.type
    where = f"Fmt {fmt:03b}b Type {typ:05b}b (byte 0 {fmt << 5 | typ:#04x})"
    if typ == TYPE_MEM or (typ == TYPE_MEM_LOCKED and fmt in (FMT_3DW, FMT_4DW)):
        return MemRead if fmt in (FMT_3DW, FMT_4DW) else MemWrite
    if typ in (TYPE_CPL, TYPE_CPL_LOCKED):
        if fmt in (FMT_3DW, FMT_3DW_DATA):
            return Completion
        raise FmtTypeError(f"{where}: completions use a 3DW header (pcie §1.2)")
    if typ >> 3 == 0b10 and fmt in (FMT_4DW, FMT_4DW_DATA):
        if len(header) < 16:
            raise TruncatedError(f"{where}: a message has a 16-byte header, only {len(header)} bytes")
        code = header[7]
        cls = _MESSAGES.get((fmt, typ, code))
        if cls is not None:
            return cls
        for c in _MESSAGES.values():
            if c.CODE == code:
                raise MessageCodeError(f"{where}: message code {code:#04x} ({c.__name__}) must be sent with "
                                       f"byte 0 {c.FMT << 5 | c.TYPE:#04x} (pcie §1.5)")
        raise MessageCodeError(f"{where}: message code {code:#04x} is not an ATS/PRI message (pcie §1.5)")
    if (fmt, typ) in _UNMODELLED:
        raise UnsupportedTypeError(f"{where}: {_UNMODELLED[fmt, typ]} is a PCIe TLP this codec does not "
                                   f"model")
    raise FmtTypeError(f"{where}: reserved Fmt/Type combination (pcie §1.2)")


def decode(data: bytes, *, strict: bool = True) -> Tlp:
    """Parse one whole TLP (prefixes, header, payload, digest). See the module docstring for
    ``strict``."""
    data = bytes(data)
    rsv: list[str] = []
    if not data:
        raise TruncatedError("empty TLP")

    # prefixes (pcie §2.1, §2.2)
    pos, seen_e2e, others = 0, False, []
    pasid = None
    pmr = er = 0
    while pos < len(data) and data[pos] >> 5 == FMT_PREFIX:
        if len(data) - pos < 4:
            raise TruncatedError(f"prefix at byte {pos} needs 4 bytes, {len(data) - pos} left")
        dw = int.from_bytes(data[pos:pos + 4], "big")
        pos += 4
        if dw >> 28 & 1:
            seen_e2e = True
            if dw >> 24 == PASID_PREFIX:
                if pasid is not None:
                    raise PrefixError("more than one PASID prefix (pcie §2.2)")
                p = PasidPrefix(dw)
                pasid, pmr, er = p.pasid, p.pmr, p.er
                _reserved_in(p, rsv)
            else:
                others.append(dw)
        elif seen_e2e:
            raise PrefixError(f"local prefix {dw:#010x} after an End-End prefix (pcie §2.1)")
        else:
            others.append(dw)
    if pos == len(data):
        raise PrefixError(f"{pos // 4} prefix DW(s) with no header after them (pcie §2.1)")

    # DW0 and header
    hdr = data[pos:]
    if len(hdr) < 4:
        raise TruncatedError(f"header DW0 needs 4 bytes, {len(hdr)} left")
    dw0 = Dw0.from_bytes(hdr[:4])
    if dw0.fmt > FMT_PREFIX:
        raise ReservedEncodingError(f"Fmt {dw0.fmt:03b}b is reserved (pcie §1.2)")
    cls = _classify(dw0, hdr)
    hlen = 16 if dw0.fmt & 1 else 12
    if len(hdr) < hlen:
        raise TruncatedError(f"{cls.__name__}: {hlen}-byte header, only {len(hdr)} bytes")

    # payload and digest
    n = (dw0.length or 1024) * 4 if dw0.fmt & 2 else 0
    tail = 4 if dw0.td else 0
    rest = hdr[hlen:]
    expect = f"{n} payload bytes (Length){' + 4-byte digest (TD=1)' if tail else ''}"
    if len(rest) < n + tail:
        raise TruncatedError(f"{cls.__name__}: {expect} expected after the header, got {len(rest)} bytes")
    if len(rest) > n + tail:
        raise LengthError(f"{cls.__name__}: {len(rest) - n - tail} bytes beyond the {expect}")

    fields = dict(tc=dw0.tc, attr=dw0.ido << 2 | dw0.attr_lo, th=dw0.th, td=dw0.td,
                  ep=dw0.ep, ln=dw0.ln, pasid=pasid, pmr=pmr, er=er, other_prefixes=tuple(others),
                  digest=rest[n:])
    fields.update(cls._unpack(dw0, hdr[4:hlen], rest[:n], rsv, strict))
    if strict and rsv:
        raise ReservedBitsError(f"{cls.__name__}: reserved bits set: {', '.join(rsv)} "
                                f"(decode(strict=False) ignores them)")
    tlp = cls(**fields)
    tlp._check()
    return tlp


# ================================================================================================
# Completions for requests
# ================================================================================================


def _completion_for(req: MemRead, completer_id: int, **fields) -> Completion:
    """Requester ID, Tag, TC and Attr copied from the request (pcie §1.4, TL §2.2.9.1)."""
    return Completion(requester_id=req.requester_id, tag=req.tag, tc=req.tc, attr=req.attr,
                      completer_id=completer_id, locked=req.locked, **fields)


def read_completions(req: MemRead, data: bytes, completer_id: int, max_payload: int = 256,
                     rcb: int = 64) -> list[Completion]:
    """The successful CplDs (CplDLks for MRdLk) answering memory read ``req`` (TL §2.3.1.1).

    ``data`` is the ``req.length * 4`` bytes of memory at ``req.address`` (the DW-aligned range; bytes
    outside the byte enables are passed through, their content is undefined for the requester).
    Policy: a single completion when the whole request fits in ``max_payload``; otherwise each
    completion is as long as ``max_payload`` allows and ends on an RCB boundary (the first starts at
    the request address, the last ends where the request does). Byte Count is the remaining byte
    count including this completion (Table 2-40 for the total); Lower Address is from Table 2-41 for
    the first completion and the RCB-aligned address bits 6:0 for the later ones."""
    if req.at == AT_TRANSLATION_REQUEST:
        raise ValueError("a Translation Request is answered with translation_completion()")
    if max_payload not in (128, 256, 512, 1024, 2048, 4096):
        raise ValueError(f"max_payload {max_payload} is not a Max_Payload_Size (128..4096)")
    if rcb not in (64, 128):
        raise ValueError(f"rcb {rcb} is not 64 or 128 (TL §2.3.1.1)")
    if len(data) != 4 * req.length:
        raise ValueError(f"data is {len(data)} bytes, the request covers {4 * req.length}")
    first, end_enabled = _enabled_span(req.length, req.first_be, req.last_be)
    start, end = req.address, req.address + 4 * req.length
    remaining = end_enabled - first
    cpls = []
    pos = start
    while pos < end:
        nxt = end if end - pos <= max_payload else (pos + max_payload) // rcb * rcb
        la = lower_address(req.address, req.first_be) if pos == start else pos & 0x7F
        cpls.append(_completion_for(req, completer_id, status=CPL_SC, byte_count=remaining,
                                    lower_address=la, data=bytes(data[pos - start:nxt - start])))
        remaining -= nxt - max(pos, start + first)
        pos = nxt
    return cpls


def error_completion(req: MemRead, completer_id: int, status: int) -> Completion:
    """The Cpl (CplLk) with a non-SC ``status`` that ends read ``req``; Byte Count and Lower Address
    are what a successful completion would have carried (TL §2.3.1.1), for Translation Requests too."""
    if status == CPL_SC or status not in CPL_STATUSES:
        raise ValueError(f"status {status} is not UR, CRS or CA")
    return _completion_for(req, completer_id, status=status,
                           byte_count=byte_enable_count(req.length, req.first_be, req.last_be),
                           lower_address=lower_address(req.address, req.first_be))


def translation_completion(req: MemRead, completer_id: int, entries: list[TranslationEntry]) -> Completion:
    """A successful Translation Completion as one CplD: Byte Count = 4 * Length (pcie §3.2). The TA
    may return fewer entries than requested, never more. Lower Address follows the read rule."""
    if req.at != AT_TRANSLATION_REQUEST:
        raise ValueError("not a Translation Request (at != AT_TRANSLATION_REQUEST)")
    if not entries or 2 * len(entries) > req.length:
        raise ValueError(f"{len(entries)} entries for a request of {req.length} DW (1..{req.length // 2})")
    data = b"".join(e.to_bytes() for e in entries)
    return _completion_for(req, completer_id, status=CPL_SC, byte_count=len(data),
                           lower_address=lower_address(req.address, req.first_be), data=data)

