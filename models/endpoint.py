"""A PCIe endpoint with PASID, ATS and PRI: config space, ATC, page requests (pcie.md §2-§5, vtd.md §7.2).

Sans-I/O: the model never waits. ``cfg_read``/``cfg_write`` are configuration accesses; ``dma(...)``
queues a DMA job; ``poll()`` returns the TLP bytes the device wants to send now, and
``receive_tlp(data)`` consumes one TLP from the host and returns ``poll()``. Every TLP is built and
parsed with ``models.tlp``.

Config space (4 KiB, little-endian registers, pcie §5)
* Type 0 header with the Capabilities List bit and a pointer to a PCI Express capability (ID 0x10,
  version 2, Endpoint). Device Capabilities 2 advertises Extended Fmt Field Supported (bit 20),
  End-End TLP Prefix Supported (bit 21) and Max End-End TLP Prefixes (bits 23:22, 00b = 4): Linux
  refuses to enable PASID without them (pcie §2.1, §5.4). Device Control holds Max_Payload_Size,
  Extended Tag Field Enable and Max_Read_Request_Size, Device Control 2 the 10-Bit Tag Requester Enable.
  The Command register is not modelled (reads 0; Bus Master Enable does not gate DMA).
* Extended capabilities from 0x100, chained by their Next pointers, each present when its parameter
  object is given: PASID (0x1B, pcie §5.1), ATS (0x0F, §5.2), PRI (0x13, §5.3).
* Every register is a ``Register`` (``Endpoint.registers``): offset, ``BitStruct`` format and the
  names of its RW and RW1C fields. Write masks come from it; every other bit is read-only.
* Side effects the spec defines: PRI Reset (write 1 while Enable is, or becomes, 0) drops outstanding
  and queued page requests and always reads 0; PRI Stopped reads 1 when Enable = 0 and no page
  request is outstanding or queued; enabling PRI clears RF and UPRGI (pcie §5.3; the Efinix register
  guide quotes the spec wording). Clearing ATS Enable empties the ATC. Writes with undefined
  behaviour are kept and recorded in ``violations``: changing PASID Control while ATS is enabled
  (pcie §5.1, §5.4: this is how "ATS enabled before PASID" shows up), enabling PRI while not Stopped.

Device behaviour
* A job is split into requests that end at multiples of Max_Payload_Size (writes) or
  Max_Read_Request_Size (reads), so none crosses 4 KiB. Requests are issued in order per job; reads
  get unique tags (5-, 8- or 10-bit as configured) and their completions are reassembled.
* With ATS in use the device looks up its ATC; on a miss it sends a Translation Request (pcie §3.1)
  and caches the returned entries (S-bit ranges, pcie §3.2). With the needed permission it sends
  translated requests (AT=10b, no PASID prefix); with U=1 it keeps sending untranslated ones; without
  the permission it sends a Page Request Group (pcie §4.1) within the Outstanding Page Request
  Allocation (queued locally otherwise) and waits for the PRG Response (pcie §4.2).
* Without ATS (no capability, not enabled, or ``use_ats=False``) it sends untranslated requests with
  the job's PASID prefix; a UR/CA completion fails the job.
* ATS Invalidate Requests drop the ATC entries they hit and are answered with an Invalidate
  Completion once no outstanding read uses a dropped translation (``InvalidateMode`` makes the
  device answer late or never). A Translation Request in flight when an overlapping invalidation
  arrives is answered but not cached (it may carry the old translation).
* ``stop_pasid`` ends a PASID's jobs and sends a Stop Marker once its page requests are answered.
* Problems in what the host sends never raise: they go to ``errors`` (malformed TLPs, bad
  completions) or ``violations`` (protocol rules the host broke), as ``Finding(code, detail)``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from typing import NamedTuple

from . import tlp
from .bits import BitStruct, Field

CFG_SIZE = 4096

CAP_ID_PCIE = 0x10
EXT_CAP_ID_ATS = 0x000F
EXT_CAP_ID_PRI = 0x0013
EXT_CAP_ID_PASID = 0x001B

#: where the model places its structures (any DW-aligned layout is legal; a walker must follow pointers)
PCIE_CAP_OFFSET = 0x40
EXT_CAP_BASE = 0x100


class Finding(NamedTuple):
    """An entry of ``Endpoint.violations`` or ``Endpoint.errors``: ``code`` is stable (tests match
    on it), ``detail`` is for humans."""

    code: str
    detail: str


# ================================================================================================
# Register formats (little-endian config registers)
# ================================================================================================


class HeaderId(BitStruct):
    WIDTH = 32
    vendor_id = Field(15, 0)
    device_id = Field(31, 16)


class Status(BitStruct):
    """Status register (0x06): only Capabilities List is implemented."""

    WIDTH = 16
    capabilities_list = Field(4)


class ClassRevision(BitStruct):
    WIDTH = 32
    revision_id = Field(7, 0)
    class_code = Field(31, 8)


class CapPointer(BitStruct):
    """Capabilities Pointer (0x34): offset of the first legacy capability."""

    WIDTH = 8
    capabilities_pointer = Field(7, 0)


class CapHeader(BitStruct):
    """Legacy capability header: ID and next pointer."""

    WIDTH = 16
    cap_id = Field(7, 0)
    next_ptr = Field(15, 8)


class ExtCapHeader(BitStruct):
    """Extended capability header (pcie §5: ID[15:0], Version[19:16], Next[31:20])."""

    WIDTH = 32
    cap_id = Field(15, 0)
    version = Field(19, 16)
    next_ptr = Field(31, 20)


class PcieCapabilities(BitStruct):
    """PCI Express Capabilities register (PCIe cap + 0x02)."""

    WIDTH = 16
    capability_version = Field(3, 0)
    device_port_type = Field(7, 4, doc="0000b = PCI Express Endpoint")


class DevCap(BitStruct):
    """Device Capabilities (PCIe cap + 0x04)."""

    WIDTH = 32
    max_payload_size_supported = Field(2, 0, doc="128 << value bytes")
    extended_tag_field_supported = Field(5)


class DevCtl(BitStruct):
    """Device Control (PCIe cap + 0x08)."""

    WIDTH = 16
    max_payload_size = Field(7, 5, doc="128 << value bytes")
    extended_tag_field_enable = Field(8)
    max_read_request_size = Field(14, 12, doc="128 << value bytes")


class DevCap2(BitStruct):
    """Device Capabilities 2 (PCIe cap + 0x24; pcie §2.1, Linux PCI_EXP_DEVCAP2_*)."""

    WIDTH = 32
    ten_bit_tag_completer_supported = Field(16)
    ten_bit_tag_requester_supported = Field(17)
    extended_fmt_field_supported = Field(20)
    end_end_tlp_prefix_supported = Field(21)
    max_end_end_tlp_prefixes = Field(23, 22, doc="00b = 4")


class DevCtl2(BitStruct):
    """Device Control 2 (PCIe cap + 0x28; Linux PCI_EXP_DEVCTL2_10BIT_TAG_REQ_EN = 0x1000)."""

    WIDTH = 16
    ten_bit_tag_requester_enable = Field(12)


class PasidCap(BitStruct):
    """PASID Capability register (PASID cap + 0x04, pcie §5.1)."""

    WIDTH = 16
    execute_permission_supported = Field(1)
    privileged_mode_supported = Field(2)
    max_pasid_width = Field(12, 8)


class PasidCtl(BitStruct):
    """PASID Control register (PASID cap + 0x06, pcie §5.1)."""

    WIDTH = 16
    pasid_enable = Field(0)
    execute_permission_enable = Field(1)
    privileged_mode_enable = Field(2)


class AtsCap(BitStruct):
    """ATS Capability register (ATS cap + 0x04, pcie §5.2)."""

    WIDTH = 16
    invalidate_queue_depth = Field(4, 0, doc="0 = 32")
    page_aligned_request = Field(5)
    global_invalidate_supported = Field(6)


class AtsCtl(BitStruct):
    """ATS Control register (ATS cap + 0x06, pcie §5.2)."""

    WIDTH = 16
    stu = Field(4, 0, doc="smallest translation unit: 2^stu x 4 KiB")
    enable = Field(15)


class PriCtl(BitStruct):
    """Page Request Control (PRI cap + 0x04, pcie §5.3)."""

    WIDTH = 16
    enable = Field(0)
    reset = Field(1, doc="write 1 while Enable is (or becomes) 0: clear page request state; reads 0")


class PriStatus(BitStruct):
    """Page Request Status (PRI cap + 0x06, pcie §5.3)."""

    WIDTH = 16
    rf = Field(0, doc="Response Failure (RW1C)")
    uprgi = Field(1, doc="Unexpected Page Request Group Index (RW1C)")
    stopped = Field(8, doc="RO; meaningful while Enable = 0")
    prg_response_pasid_required = Field(15, doc="RO")


class Dword(BitStruct):
    """A plain 32-bit count register (PRI outstanding page request capacity/allocation)."""

    WIDTH = 32
    value = Field(31, 0)


@dataclasses.dataclass(frozen=True)
class Register:
    """One register of this endpoint's config space: absolute offset, format, access."""

    name: str
    offset: int
    struct: type[BitStruct]
    rw: tuple[str, ...] = ()
    rw1c: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return self.struct.nbytes()

    def mask(self, names: tuple[str, ...]) -> int:
        m = 0
        for n in names:
            f = self.struct._fields[n]
            m |= f.mask << f.lo
        return m


# ================================================================================================
# Constructor parameters
# ================================================================================================


@dataclasses.dataclass(frozen=True)
class PasidParams:
    """PASID capability contents (pcie §5.1). The spec strongly recommends a width of 20."""

    execute_permission_supported: bool = False
    privileged_mode_supported: bool = False
    max_pasid_width: int = 20

    def __post_init__(self):
        if not 0 <= self.max_pasid_width <= 20:
            raise ValueError(f"max_pasid_width {self.max_pasid_width} outside 0..20")


@dataclasses.dataclass(frozen=True)
class AtsParams:
    """ATS capability contents (pcie §5.2). Linux enables ATS only with page_aligned_request."""

    invalidate_queue_depth: int = 0  # 0 encodes 32
    page_aligned_request: bool = True
    global_invalidate_supported: bool = True

    def __post_init__(self):
        if not 0 <= self.invalidate_queue_depth <= 31:
            raise ValueError(f"invalidate_queue_depth {self.invalidate_queue_depth} outside 0..31")

    @property
    def queue_depth(self) -> int:
        return self.invalidate_queue_depth or 32


@dataclasses.dataclass(frozen=True)
class PriParams:
    """PRI capability contents (pcie §5.3)."""

    outstanding_page_request_capacity: int = 32
    prg_response_pasid_required: bool = True

    def __post_init__(self):
        if not 0 <= self.outstanding_page_request_capacity < 1 << 32:
            raise ValueError("outstanding_page_request_capacity does not fit in 32 bits")


def _size_code(nbytes: int, what: str) -> int:
    """128 << code == nbytes (Max_Payload_Size / Max_Read_Request_Size encodings, 128..4096)."""
    for code in range(6):
        if 128 << code == nbytes:
            return code
    raise ValueError(f"{what} {nbytes} is not one of 128, 256, 512, 1024, 2048, 4096")


# ================================================================================================
# Device-side state
# ================================================================================================

PAGE = tlp.PAGE
PRG_INDEX_COUNT = 512  # 9-bit PRG Index (pcie §4.1)


class InvalidateMode(enum.Enum):
    """How the device answers ATS Invalidate Requests (pcie §3.5)."""

    ANSWER = "answer"  # as soon as no outstanding read uses an invalidated translation
    HOLD = "hold"  # a late answer: held until ``release_invalidations()``
    NEVER = "never"  # a faulty device that never answers (the IOMMU's time-out path)


class JobStatus(enum.Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class EndpointError(ValueError):
    """A request the endpoint cannot accept (bad argument, or not allowed by its configuration)."""


@dataclasses.dataclass(frozen=True)
class AtcEntry:
    """One cached translation (pcie §3.2): the untranslated range [base, base + size) of the
    address space (pasid, pmr) maps to [translated, translated + size) with the entry's flags.
    Entries with r = w = 0 are kept too: they tell the device to use PRI for that range."""

    pasid: int | None
    pmr: bool
    base: int
    size: int
    translated: int
    r: bool
    w: bool
    u: bool
    exe: bool
    priv: bool
    g: bool
    n: bool

    def covers(self, address: int) -> bool:
        return self.base <= address < self.base + self.size

    def overlaps(self, base: int, size: int) -> bool:
        return self.base < base + size and base < self.base + self.size


@dataclasses.dataclass(eq=False)
class Job:
    """One DMA job. ``status``/``error`` tell how it ended; for a read ``data`` holds the bytes once
    ``status`` is DONE. The remaining fields are the device's progress through the job."""

    pasid: int | None
    va: int
    length: int
    write: bool
    pmr: bool
    data: bytes | None
    chunks: list[tuple[int, int]] = dataclasses.field(repr=False)  # (address, byte count)
    status: JobStatus = JobStatus.RUNNING
    error: str | None = None
    next_chunk: int = dataclasses.field(default=0, repr=False)
    reads_outstanding: int = dataclasses.field(default=0, repr=False)
    prg: PageRequestGroup | None = dataclasses.field(default=None, repr=False)  # the group it waits for
    faults: Counter = dataclasses.field(default_factory=Counter, repr=False)  # page -> groups sent
    buffer: bytearray = dataclasses.field(default_factory=bytearray, repr=False)

    @property
    def pages(self) -> range:
        return range(self.va & -PAGE, self.va + self.length, PAGE)


@dataclasses.dataclass(eq=False)
class PageRequestGroup:
    """A Page Request Group: one Page Request per page, L=1 on the last (pcie §4.1). ``prg_index``
    is assigned when the group is sent (queued groups have none)."""

    pasid: int | None
    pmr: bool
    write: bool
    pages: list[int]
    job: Job = dataclasses.field(repr=False)
    prg_index: int | None = None


@dataclasses.dataclass(eq=False)
class _Read:
    """An outstanding memory read: ``offset`` into the job, ``address`` as sent (translated or not),
    ``entry`` the ATC entry it used (None for an untranslated read)."""

    job: Job
    offset: int
    address: int
    length: int
    entry: AtcEntry | None
    received: int = 0


@dataclasses.dataclass(eq=False)
class _Translation:
    """An outstanding Translation Request for ``count`` pages from ``address``."""

    job: Job
    pasid: int | None
    pmr: bool
    address: int
    count: int
    data: bytes = b""
    remaining: int | None = None  # Byte Count still expected after the first completion
    stale: bool = False  # an invalidation overlapped it: do not cache the result


@dataclasses.dataclass(eq=False)
class _Invalidation:
    itag: int
    dest_id: int
    waiting: set[int]  # tags of reads that used an invalidated translation
    released: bool = False


def _byte_enables(offset: int, nbytes: int) -> tuple[int, int, int]:
    """(length in DW, first_be, last_be) for ``nbytes`` starting ``offset`` bytes into a DW
    (TL §2.2.5.1: Last BE is 0000b for a 1 DW request)."""
    ndw = (offset + nbytes + 3) // 4
    if ndw == 1:
        return 1, ((1 << nbytes) - 1) << offset, 0
    last = (offset + nbytes - 1) % 4 + 1
    return ndw, (0xF << offset) & 0xF, (1 << last) - 1


# ================================================================================================
# The endpoint
# ================================================================================================


class Endpoint:
    """A PCIe endpoint function (sans-I/O). See the module docstring.

    Parameters: ``requester_id`` (bus/device/function); ``pasid``/``ats``/``pri`` the capability
    contents, ``None`` for an absent capability; ``max_payload_size_supported`` (bytes);
    ``ten_bit_tag_requester_supported``; ``max_end_end_tlp_prefixes`` (1..4); ``use_ats=False``
    makes a device that never translates even with ATS enabled; ``invalidate_mode``;
    ``max_translations`` per Translation Request (1..8: the request must fit a 64-byte RCB,
    pcie §3.1); ``page_request_retries``: how often a job asks for the same page before it fails
    (a host that answers Success without mapping the page must not make the device loop forever).

    Inspection: ``registers``/``reg(name)`` (named config registers), ``atc``, ``violations``,
    ``errors``, ``counters``, ``outstanding_page_requests``, ``page_request_groups``,
    ``queued_page_request_groups``, ``stopping``, ``pending_invalidations``, ``outstanding_tags``.
    """

    def __init__(self, requester_id: int, *, pasid: PasidParams | None = PasidParams(),
                 ats: AtsParams | None = AtsParams(), pri: PriParams | None = PriParams(),
                 vendor_id: int = 0x1234, device_id: int = 0x5A17, max_payload_size_supported: int = 512,
                 ten_bit_tag_requester_supported: bool = False, max_end_end_tlp_prefixes: int = 1,
                 use_ats: bool = True, invalidate_mode: InvalidateMode = InvalidateMode.ANSWER,
                 max_translations: int = 1, page_request_retries: int = 3):
        if not 0 <= requester_id <= 0xFFFF:
            raise EndpointError(f"requester_id {requester_id:#x} does not fit in 16 bits")
        if not 1 <= max_end_end_tlp_prefixes <= 4:
            raise EndpointError(f"max_end_end_tlp_prefixes {max_end_end_tlp_prefixes} outside 1..4")
        if not 1 <= max_translations <= 8:
            raise EndpointError(f"max_translations {max_translations} outside 1..8")
        self.requester_id = requester_id
        self.pasid_params, self.ats_params, self.pri_params = pasid, ats, pri
        self.use_ats = use_ats
        self.invalidate_mode = invalidate_mode
        self.max_translations = max_translations
        self.page_request_retries = page_request_retries

        self.registers: dict[str, Register] = {}
        self._cfg = bytearray(CFG_SIZE)
        self._wmask = bytearray(CFG_SIZE)
        self._w1c = bytearray(CFG_SIZE)
        self._build_config(vendor_id, device_id, _size_code(max_payload_size_supported, "max payload size"),
                           ten_bit_tag_requester_supported, max_end_end_tlp_prefixes)

        #: protocol rules the host/driver broke; errors in what the device received
        self.violations: list[Finding] = []
        self.errors: list[Finding] = []
        self.counters: Counter = Counter()
        #: the Address Translation Cache
        self.atc: list[AtcEntry] = []
        self._running: list[Job] = []
        self._pending: dict[int, _Read | _Translation] = {}  # tag -> outstanding non-posted request
        self._tag_cursor = 0
        self._prgs: dict[int, PageRequestGroup] = {}  # PRG index -> outstanding group
        self._prg_queue: list[PageRequestGroup] = []  # formed, waiting for credits (allocation)
        self._prg_cursor = 0
        self._pri_failed = False  # Response Failure received; cleared when PRI is enabled again
        self._stopping: set[int] = set()
        self._invalidations: list[_Invalidation] = []
        self._out: list[bytes] = []

    # ============================================================================================
    # Config space
    # ============================================================================================

    def _add(self, name: str, offset: int, value: BitStruct, rw: tuple[str, ...] = (),
             rw1c: tuple[str, ...] = ()) -> None:
        reg = Register(name, offset, type(value), rw, rw1c)
        self.registers[name] = reg
        self._cfg[offset:offset + reg.size] = value.to_bytes()
        self._wmask[offset:offset + reg.size] = reg.mask(rw).to_bytes(reg.size, "little")
        self._w1c[offset:offset + reg.size] = reg.mask(rw1c).to_bytes(reg.size, "little")

    def _build_config(self, vendor_id, device_id, mps_code, tag10, max_prefixes) -> None:
        self._add("id", 0x00, HeaderId(vendor_id=vendor_id, device_id=device_id))
        self._add("status", 0x06, Status(capabilities_list=1))
        self._add("class_revision", 0x08, ClassRevision(class_code=0x120000))  # processing accelerator
        self._add("capabilities_pointer", 0x34, CapPointer(capabilities_pointer=PCIE_CAP_OFFSET))

        p = PCIE_CAP_OFFSET
        self._add("pcie.header", p, CapHeader(cap_id=CAP_ID_PCIE, next_ptr=0))
        self._add("pcie.capabilities", p + 0x02, PcieCapabilities(capability_version=2, device_port_type=0))
        self._add("pcie.devcap", p + 0x04, DevCap(max_payload_size_supported=mps_code,
                                                  extended_tag_field_supported=1))
        # defaults: 128-byte payload, 512-byte read requests (the spec's reset values), 8-bit tags
        self._add("pcie.devctl", p + 0x08, DevCtl(max_payload_size=0, extended_tag_field_enable=1,
                                                  max_read_request_size=2),
                  rw=("max_payload_size", "extended_tag_field_enable", "max_read_request_size"))
        self._add("pcie.devcap2", p + 0x24, DevCap2(
            ten_bit_tag_completer_supported=int(tag10), ten_bit_tag_requester_supported=int(tag10),
            extended_fmt_field_supported=1, end_end_tlp_prefix_supported=1,
            max_end_end_tlp_prefixes=max_prefixes & 3))
        self._add("pcie.devctl2", p + 0x28, DevCtl2(), rw=("ten_bit_tag_requester_enable",) if tag10 else ())

        caps = []
        if self.pasid_params is not None:
            caps.append(("pasid", EXT_CAP_ID_PASID, 8, self._add_pasid))
        if self.ats_params is not None:
            caps.append(("ats", EXT_CAP_ID_ATS, 8, self._add_ats))
        if self.pri_params is not None:
            caps.append(("pri", EXT_CAP_ID_PRI, 16, self._add_pri))
        offset = EXT_CAP_BASE
        for i, (name, cap_id, size, add) in enumerate(caps):
            nxt = offset + size if i + 1 < len(caps) else 0
            self._add(f"{name}.header", offset, ExtCapHeader(cap_id=cap_id, version=1, next_ptr=nxt))
            add(offset)
            offset += size

    def _add_pasid(self, base: int) -> None:
        p = self.pasid_params
        cap = PasidCap(execute_permission_supported=int(p.execute_permission_supported),
                       privileged_mode_supported=int(p.privileged_mode_supported),
                       max_pasid_width=p.max_pasid_width)
        self._add("pasid.cap", base + 4, cap)
        rw = ("pasid_enable",)
        rw += ("execute_permission_enable",) if p.execute_permission_supported else ()
        rw += ("privileged_mode_enable",) if p.privileged_mode_supported else ()
        self._add("pasid.ctl", base + 6, PasidCtl(), rw=rw)

    def _add_ats(self, base: int) -> None:
        a = self.ats_params
        cap = AtsCap(invalidate_queue_depth=a.invalidate_queue_depth,
                     page_aligned_request=int(a.page_aligned_request),
                     global_invalidate_supported=int(a.global_invalidate_supported))
        self._add("ats.cap", base + 4, cap)
        self._add("ats.ctl", base + 6, AtsCtl(), rw=("stu", "enable"))

    def _add_pri(self, base: int) -> None:
        q = self.pri_params
        self._add("pri.ctl", base + 4, PriCtl(), rw=("enable", "reset"))
        status = PriStatus(stopped=1, prg_response_pasid_required=int(q.prg_response_pasid_required))
        self._add("pri.status", base + 6, status, rw1c=("rf", "uprgi"))
        self._add("pri.capacity", base + 8, Dword(value=q.outstanding_page_request_capacity))
        self._add("pri.allocation", base + 12, Dword(), rw=("value",))

    def _get(self, name: str) -> BitStruct:
        r = self.registers[name]
        return r.struct.from_bytes(self._cfg[r.offset:r.offset + r.size])

    def _put(self, name: str, value: BitStruct) -> None:
        r = self.registers[name]
        self._cfg[r.offset:r.offset + r.size] = value.to_bytes()

    def _pri_quiet(self) -> bool:
        """No page request outstanding or queued."""
        return not self._prgs and not self._prg_queue

    def _sync_status(self) -> None:
        """Stopped = Enable is 0 and no page request is outstanding or queued (pcie §5.3)."""
        if self.pri_params is not None:
            stopped = not self._get("pri.ctl").enable and self._pri_quiet()
            self._put("pri.status", self._get("pri.status").copy(stopped=int(stopped)))

    def reg(self, name: str) -> BitStruct:
        """The current value of register ``name`` (a key of ``registers``) as its ``BitStruct``."""
        self._sync_status()
        return self._get(name)

    @staticmethod
    def _check_access(offset: int, size: int) -> None:
        if size not in (1, 2, 4):
            raise EndpointError(f"config access size {size} is not 1, 2 or 4 bytes")
        if offset % size:
            raise EndpointError(f"config access at {offset:#x} is not aligned to its size {size}")
        if not 0 <= offset <= CFG_SIZE - size:
            raise EndpointError(f"config offset {offset:#x} outside the 4 KiB config space")

    def cfg_read(self, offset: int, size: int) -> int:
        """Read ``size`` (1, 2, 4) bytes at ``offset``, little-endian, as an integer."""
        self._check_access(offset, size)
        self._sync_status()
        return int.from_bytes(self._cfg[offset:offset + size], "little")

    def cfg_write(self, offset: int, value: int, size: int) -> None:
        """Write ``size`` (1, 2, 4) bytes at ``offset``: RW bits take the value, RW1C bits clear
        where it has a 1, read-only bits ignore it; then the spec-defined side effects run."""
        self._check_access(offset, size)
        if not 0 <= value < 1 << (8 * size):
            raise EndpointError(f"config write value {value:#x} does not fit in {size} byte(s)")
        before = {n: self._get(n) for n in ("pcie.devctl", "pasid.ctl", "ats.ctl", "pri.ctl")
                  if n in self.registers}
        for i in range(size):
            a, b = offset + i, (value >> (8 * i)) & 0xFF
            new = (self._cfg[a] & ~self._wmask[a]) | (b & self._wmask[a])
            self._cfg[a] = new & ~(b & self._w1c[a]) & 0xFF
        self._after_cfg_write(before)

    def _after_cfg_write(self, before: dict[str, BitStruct]) -> None:
        devctl = self._get("pcie.devctl")
        if devctl != before["pcie.devctl"]:
            supported = self._get("pcie.devcap").max_payload_size_supported
            if devctl.max_payload_size > supported:
                # software must not program more than Max_Payload_Size Supported; the device would
                # then send payloads it does not support
                self.violations.append(Finding(
                    "max_payload_size_unsupported",
                    f"Max_Payload_Size {128 << devctl.max_payload_size} > supported {128 << supported}"))
        if "pasid.ctl" in before and "ats.ctl" in before:
            if self._get("pasid.ctl") != before["pasid.ctl"] and before["ats.ctl"].enable:
                # pcie §5.1: changing PASID Control while ATS Enable = 1 is undefined; Linux enables
                # PASID before ATS for that reason (pcie §5.4, vtd §7.2)
                self.violations.append(Finding(
                    "pasid_control_while_ats_enabled",
                    f"PASID Control {before['pasid.ctl'].raw:#06x} -> {self._get('pasid.ctl').raw:#06x} "
                    f"while ATS is enabled"))
        if "ats.ctl" in before and before["ats.ctl"].enable and not self._get("ats.ctl").enable:
            self.atc.clear()  # translations may not be used with ATS disabled
        if "pri.ctl" in before:
            old, new = before["pri.ctl"], self._get("pri.ctl")
            if new.reset:
                if not new.enable:
                    self._pri_reset()
                self._put("pri.ctl", new.copy(reset=0))  # Reset always reads 0
            if new.enable and not old.enable:
                if not self._pri_quiet():
                    self.violations.append(Finding(
                        "pri_enable_not_stopped",
                        f"PRI enabled with {self.outstanding_page_requests} page request(s) outstanding "
                        f"and {len(self._prg_queue)} group(s) queued (Stopped = 0)"))
                self._put("pri.status", self._get("pri.status").copy(rf=0, uprgi=0))
                self._pri_failed = False

    def _pri_reset(self) -> None:
        """PRI Reset: forget every outstanding and queued page request (pcie §5.3)."""
        for g in list(self._prgs.values()) + self._prg_queue:
            self._fail(g.job, "PRI was reset while the job waited for a page request")
        self._prgs.clear()
        self._prg_queue.clear()

    # --- effective state -------------------------------------------------------------------------
    def _pasid_enabled(self) -> bool:
        return self.pasid_params is not None and bool(self._get("pasid.ctl").pasid_enable)

    def _ats_active(self) -> bool:
        return self.use_ats and self.ats_params is not None and bool(self._get("ats.ctl").enable)

    def _pri_active(self) -> bool:
        """May the device send page requests now?"""
        return self.pri_params is not None and bool(self._get("pri.ctl").enable) and not self._pri_failed

    def _tag_space(self) -> range:
        """Tags the requester may use: 10-bit tags have Tag[9:8] != 00b (pcie §1.3), 8-bit tags with
        Extended Tag Field Enable, else 5-bit tags."""
        if self._get("pcie.devctl2").ten_bit_tag_requester_enable:
            return range(0x100, 0x400)
        if self._get("pcie.devctl").extended_tag_field_enable:
            return range(0x100)
        return range(0x20)

    def _alloc_tag(self) -> int | None:
        space = self._tag_space()
        for i in range(len(space)):
            tag = space[(self._tag_cursor + i) % len(space)]
            if tag not in self._pending:
                self._tag_cursor = (self._tag_cursor + i + 1) % len(space)
                return tag
        return None

    # ============================================================================================
    # What a test or driver inspects
    # ============================================================================================

    @property
    def outstanding_page_requests(self) -> int:
        """Page Requests sent and not yet answered (what the allocation limits, pcie §5.3)."""
        return sum(len(g.pages) for g in self._prgs.values())

    @property
    def page_request_groups(self) -> dict[int, PageRequestGroup]:
        """Outstanding groups by PRG index."""
        return dict(self._prgs)

    @property
    def queued_page_request_groups(self) -> list[PageRequestGroup]:
        """Groups waiting for page request credits."""
        return list(self._prg_queue)

    @property
    def stopping(self) -> frozenset[int]:
        """PASIDs whose stop marker has not been sent yet."""
        return frozenset(self._stopping)

    @property
    def pending_invalidations(self) -> list[int]:
        """ITags of Invalidate Requests not answered yet."""
        return [inv.itag for inv in self._invalidations]

    @property
    def outstanding_tags(self) -> list[int]:
        """Tags of non-posted requests (reads, Translation Requests) awaiting completion."""
        return sorted(self._pending)

    # ============================================================================================
    # Driver-side API
    # ============================================================================================

    def dma(self, pasid: int | None, va: int, length: int, write: bool, data: bytes | None = None,
            pmr: bool = False) -> Job:
        """Queue a DMA job of ``length`` bytes at ``va`` in the address space ``pasid`` (None: no
        PASID prefix). The TLPs come out of ``poll()``. Chunks end at multiples of
        Max_Payload_Size (writes) or Max_Read_Request_Size (reads), hence never cross 4 KiB."""
        if length < 1 or va < 0 or va + length > 1 << 64:
            raise EndpointError(f"DMA of {length} bytes at {va:#x} is empty or outside the 64-bit space")
        if write:
            if data is None or len(data) != length:
                raise EndpointError(f"a DMA write of {length} bytes needs {length} bytes of data")
        elif data is not None:
            raise EndpointError("a DMA read takes no data")
        self._check_pasid(pasid)
        if pasid is not None and pasid in self._stopping:
            raise EndpointError(f"PASID {pasid:#x} is being stopped")
        if pmr and (pasid is None or not self._get("pasid.ctl").privileged_mode_enable):
            raise EndpointError("pmr needs a PASID and Privileged Mode Enable (pcie §2.2)")
        devctl = self._get("pcie.devctl")
        limit = 128 << (devctl.max_payload_size if write else devctl.max_read_request_size)
        chunks = []
        pos, end = va, va + length
        while pos < end:
            n = min(end, (pos // limit + 1) * limit) - pos
            chunks.append((pos, n))
            pos += n
        job = Job(pasid=pasid, va=va, length=length, write=write, pmr=bool(pmr),
                  data=bytes(data) if write else None, chunks=chunks,
                  buffer=bytearray(0 if write else length))
        self._running.append(job)
        return job

    def _check_pasid(self, pasid: int | None) -> None:
        if pasid is None:
            return
        if self.pasid_params is None:
            raise EndpointError("this endpoint has no PASID capability")
        if not self._pasid_enabled():
            raise EndpointError("PASID Enable is 0: the device may not send a PASID prefix (pcie §2.2)")
        if not 0 <= pasid < 1 << self.pasid_params.max_pasid_width:
            raise EndpointError(f"PASID {pasid:#x} exceeds Max PASID Width "
                                f"{self.pasid_params.max_pasid_width}")

    def stop_pasid(self, pasid: int) -> None:
        """Stop using ``pasid``: its running jobs fail, its queued page requests are dropped, and
        once none of its page requests is outstanding the device sends a Stop Marker (a Page
        Request with the PASID, L=1, R=W=0, pcie §4.1) -- or nothing when PRI is not enabled."""
        self._check_pasid(pasid)
        for job in list(self._running):
            if job.pasid == pasid:
                self._fail(job, f"PASID {pasid:#x} stopped")
        self._stopping.add(pasid)

    def release_invalidations(self) -> None:
        """HOLD mode: let the held Invalidate Completions go out at the next ``poll()``."""
        for inv in self._invalidations:
            inv.released = True

    # ============================================================================================
    # Producing TLPs
    # ============================================================================================

    def poll(self) -> list[bytes]:
        """Advance every job and return the TLPs to send, in order."""
        for job in list(self._running):
            self._advance(job)
        self._send_page_requests()
        self._send_stop_markers()
        self._send_invalidate_completions()
        out, self._out = self._out, []
        return out

    def _finish(self, job: Job) -> None:
        job.status = JobStatus.DONE
        if not job.write:
            job.data = bytes(job.buffer)
        self._running.remove(job)

    def _fail(self, job: Job, reason: str) -> None:
        if job.status is not JobStatus.RUNNING:
            return
        job.status, job.error = JobStatus.FAILED, reason
        self._prg_queue = [g for g in self._prg_queue if g.job is not job]
        self._running.remove(job)

    def _needs(self, job: Job, entry: AtcEntry) -> bool:
        """Does ``entry`` grant what the job needs (pcie §3.2: W for writes, R for reads)?"""
        return bool(entry.w if job.write else entry.r)

    def _atc_lookup(self, pasid: int | None, pmr: bool, address: int) -> AtcEntry | None:
        for e in self.atc:
            if e.pasid == pasid and e.pmr == pmr and e.covers(address):
                return e
        return None

    def _translating(self, pasid: int | None, pmr: bool, page: int) -> bool:
        return any(isinstance(p, _Translation) and p.pasid == pasid and p.pmr == pmr
                   and p.address <= page < p.address + p.count * PAGE for p in self._pending.values())

    def _advance(self, job: Job) -> None:
        if job.pasid is not None and not self._pasid_enabled():
            self._fail(job, "PASID Enable was cleared")
            return
        while job.next_chunk < len(job.chunks):
            va, n = job.chunks[job.next_chunk]
            if not self._ats_active():
                entry = None
            else:
                entry = self._atc_lookup(job.pasid, job.pmr, va)
                if entry is None:
                    self._request_translation(job, va & -PAGE)
                    return
                if not entry.u and not self._needs(job, entry):
                    self._request_pages(job, va & -PAGE)
                    return
                if entry.u:
                    entry = None  # Untranslated Access Only: keep using untranslated requests (pcie §3.2)
            if not self._issue(job, va, n, entry):
                return  # no free tag
        if job.reads_outstanding == 0:
            self._finish(job)

    def _issue(self, job: Job, va: int, n: int, entry: AtcEntry | None) -> bool:
        """Send one memory request for job bytes [va, va + n): translated (AT=10b, no PASID prefix)
        through ``entry``, else untranslated (AT=00b, PASID prefix when the job has one)."""
        if entry is None:
            address, at, pasid = va, tlp.AT_UNTRANSLATED, job.pasid
        else:
            address, at, pasid = entry.translated + (va - entry.base), tlp.AT_TRANSLATED, None
        pmr = int(job.pmr) if pasid is not None else 0
        kind = "untranslated" if entry is None else "translated"
        offset = address & 3
        ndw, first_be, last_be = _byte_enables(offset, n)
        if job.write:
            chunk = job.data[va - job.va:va - job.va + n]
            payload = bytes(offset) + chunk + bytes(4 * ndw - offset - n)
            req = tlp.MemWrite(requester_id=self.requester_id, at=at, address=address - offset,
                               first_be=first_be, last_be=last_be, data=payload, pasid=pasid, pmr=pmr)
            self.counters[f"{kind}_writes"] += 1
        else:
            tag = self._alloc_tag()
            if tag is None:
                return False
            req = tlp.MemRead(requester_id=self.requester_id, tag=tag, at=at, address=address - offset,
                              length=ndw, first_be=first_be, last_be=last_be, pasid=pasid, pmr=pmr)
            self._pending[tag] = _Read(job, va - job.va, address, n, entry)
            job.reads_outstanding += 1
            self.counters[f"{kind}_reads"] += 1
        self._out.append(req.encode())
        job.next_chunk += 1
        return True

    def _request_translation(self, job: Job, page: int) -> None:
        """ATS Translation Request (MRd, AT=01b, Length = 2 per translation, NW for reads) for
        ``page`` and the following pages of the job that are neither cached nor being translated
        (pcie §3.1)."""
        if self._translating(job.pasid, job.pmr, page):
            return
        count = 0
        for p in range(page, page + self.max_translations * PAGE, PAGE):
            if p not in job.pages or (count and (self._atc_lookup(job.pasid, job.pmr, p)
                                                 or self._translating(job.pasid, job.pmr, p))):
                break
            count += 1
        tag = self._alloc_tag()
        if tag is None:
            return
        req = tlp.MemRead(requester_id=self.requester_id, tag=tag, at=tlp.AT_TRANSLATION_REQUEST,
                          address=page, length=2 * count, first_be=0xF, last_be=0xF,
                          nw=int(not job.write), pasid=job.pasid, pmr=int(job.pmr))
        self._pending[tag] = _Translation(job, job.pasid, job.pmr, page, count)
        self.counters["translation_requests"] += 1
        self._out.append(req.encode())

    def _request_pages(self, job: Job, page: int) -> None:
        """Form a Page Request Group for ``page`` and the following job pages the ATC says lack
        the needed permission (at most Outstanding Page Request Allocation pages, else the group
        could never be sent); it is sent by ``_send_page_requests`` when credits allow."""
        if job.prg is not None:
            return
        if not self._pri_active():
            self._fail(job, f"no {'write' if job.write else 'read'} permission for page {page:#x} "
                            f"and PRI is not enabled")
            return
        if job.faults[page] >= self.page_request_retries:
            self._fail(job, f"page {page:#x} still not accessible after {job.faults[page]} successful "
                            f"page request groups")
            return
        job.faults[page] += 1
        limit = max(1, self._get("pri.allocation").value)
        pages = [page]
        for p in range(page + PAGE, job.pages.stop, PAGE):
            e = self._atc_lookup(job.pasid, job.pmr, p)
            if len(pages) == limit or e is None or e.u or self._needs(job, e):
                break
            pages.append(p)
        job.prg = PageRequestGroup(job.pasid, job.pmr, job.write, pages, job)
        self._prg_queue.append(job.prg)

    def _alloc_prg_index(self) -> int | None:
        for i in range(PRG_INDEX_COUNT):
            idx = (self._prg_cursor + i) % PRG_INDEX_COUNT
            if idx not in self._prgs:
                self._prg_cursor = (idx + 1) % PRG_INDEX_COUNT
                return idx
        return None

    def _send_page_requests(self) -> None:
        """Send queued groups in order while the Outstanding Page Request Allocation allows
        (pcie §5.3): one Page Request per page, R or W as the job needs, L=1 on the last."""
        if not self._pri_active():
            return
        allocation = self._get("pri.allocation").value
        while self._prg_queue:
            g = self._prg_queue[0]
            if self.outstanding_page_requests + len(g.pages) > allocation:
                return
            idx = self._alloc_prg_index()
            if idx is None:
                return
            self._prg_queue.pop(0)
            g.prg_index = idx
            self._prgs[idx] = g
            for i, page in enumerate(g.pages):
                req = tlp.PageRequest(requester_id=self.requester_id, address=page, prg_index=idx,
                                      l=int(i == len(g.pages) - 1), w=int(g.write), r=int(not g.write),
                                      pasid=g.pasid, pmr=int(g.pmr))
                self._out.append(req.encode())
                self.counters["page_requests"] += 1

    def _send_stop_markers(self) -> None:
        for pasid in sorted(self._stopping):
            if any(g.pasid == pasid for g in self._prgs.values()):
                continue
            if self._pri_active():
                marker = tlp.PageRequest(requester_id=self.requester_id, address=0, prg_index=0, l=1, w=0,
                                         r=0, pasid=pasid)
                self._out.append(marker.encode())
                self.counters["stop_markers"] += 1
            self._stopping.discard(pasid)

    def _send_invalidate_completions(self) -> None:
        """One Invalidate Completion per request, CC = 1, ITag Vector bit = ITag (pcie §3.5), once
        no outstanding read uses an invalidated translation."""
        waiting = []
        for inv in self._invalidations:
            if inv.waiting or (self.invalidate_mode is InvalidateMode.HOLD and not inv.released):
                waiting.append(inv)
                continue
            cpl = tlp.AtsInvalidateCompletion(requester_id=self.requester_id, dest_id=inv.dest_id, cc=1,
                                              itag_vector=1 << inv.itag)
            self._out.append(cpl.encode())
            self.counters["invalidate_completions"] += 1
        self._invalidations = waiting

    # ============================================================================================
    # Consuming TLPs
    # ============================================================================================

    def receive_tlp(self, data: bytes) -> list[bytes]:
        """Consume one TLP from the host and return ``poll()``. Problems in what was received are
        recorded in ``errors`` (never raised); a TLP with reserved bits set is recorded and then
        handled the way a receiver must, ignoring them (TL §2.2)."""
        t = self._decode(data)
        if t is None:
            pass
        elif t.pasid is not None and not self._pasid_enabled():
            # pcie §2.2: a function with PASID disabled treats a PASID-carrying TLP as UR
            self.errors.append(Finding("pasid_while_disabled", f"{type(t).__name__} with PASID {t.pasid:#x}"))
        elif isinstance(t, tlp.Completion):
            self._on_completion(t)
        elif isinstance(t, tlp.AtsInvalidateRequest):
            self._on_invalidate(t)
        elif isinstance(t, tlp.PrgResponse):
            self._on_prg_response(t)
        elif isinstance(t, tlp.MemRead):
            # no BARs: a memory read targeting this function is an Unsupported Request
            self.errors.append(Finding("unsupported_request", f"MemRead at {t.address:#x}"))
            self._out.append(tlp.error_completion(t, self.requester_id, tlp.CPL_UR).encode())
        else:
            self.errors.append(Finding("unexpected_tlp", f"{type(t).__name__} is not sent to an endpoint"))
        return self.poll()

    def _decode(self, data: bytes) -> tlp.Tlp | None:
        try:
            return tlp.decode(data)
        except tlp.ReservedBitsError as e:
            self.errors.append(Finding("reserved_bits", str(e)))
        except tlp.TlpError as e:
            self.errors.append(Finding("malformed_tlp", str(e)))
            return None
        try:
            return tlp.decode(data, strict=False)
        except tlp.TlpError as e:
            self.errors.append(Finding("malformed_tlp", str(e)))
            return None

    def _misrouted(self, t) -> bool:
        if t.dest_id != self.requester_id:
            self.errors.append(Finding("misrouted", f"{type(t).__name__} for {t.dest_id:#06x} received by "
                                                    f"{self.requester_id:#06x}"))
            return True
        return False

    def _retire(self, tag: int) -> None:
        del self._pending[tag]
        for inv in self._invalidations:
            inv.waiting.discard(tag)

    # --- completions -----------------------------------------------------------------------------
    def _on_completion(self, c: tlp.Completion) -> None:
        if c.requester_id != self.requester_id:
            self.errors.append(Finding("misrouted", f"completion for requester {c.requester_id:#06x}"))
            return
        p = self._pending.get(c.tag)
        if p is None:
            self.errors.append(Finding("unexpected_completion", f"no request outstanding with tag "
                                                                f"{c.tag:#x}"))
        elif isinstance(p, _Translation):
            self._on_translation_completion(c, p)
        else:
            self._on_read_completion(c, p)

    def _bad_read(self, c: tlp.Completion, p: _Read, why: str) -> None:
        self.errors.append(Finding("bad_completion", f"tag {c.tag:#x}: {why}"))
        self._retire(c.tag)
        p.job.reads_outstanding -= 1
        self._fail(p.job, f"bad completion for the read at {p.address:#x}: {why}")

    def _on_read_completion(self, c: tlp.Completion, p: _Read) -> None:
        """Reassemble split read completions (TL §2.3.1.1): Byte Count is what remains including
        this completion, Lower Address the low address bits of its first byte; a completion that
        is not the last one carries whole DWs up to its end."""
        job = p.job
        if c.status != tlp.CPL_SC:
            self._retire(c.tag)
            job.reads_outstanding -= 1
            name = {tlp.CPL_UR: "UR", tlp.CPL_CA: "CA"}.get(c.status, "CRS")
            self._fail(job, f"read at {p.address:#x} completed with status {c.status:03b}b ({name})")
            return
        remaining = p.length - p.received
        expected_la = (p.address + p.received) & 0x7F
        if c.byte_count != remaining:
            return self._bad_read(c, p, f"Byte Count {c.byte_count}, {remaining} bytes remain")
        if c.lower_address != expected_la:
            return self._bad_read(c, p, f"Lower Address {c.lower_address:#x}, expected {expected_la:#x}")
        skip = c.lower_address & 3
        carried = len(c.data) - skip
        if carried <= 0:
            return self._bad_read(c, p, f"{len(c.data)} data bytes for a read still owing {remaining}")
        if c.byte_count <= carried:  # the last completion
            take = c.byte_count
            if len(c.data) != (skip + take + 3) // 4 * 4:
                return self._bad_read(c, p, f"{len(c.data)} data bytes for the last {take} byte(s)")
        else:
            take = carried
        job.buffer[p.offset + p.received:p.offset + p.received + take] = c.data[skip:skip + take]
        p.received += take
        if p.received == p.length:
            self._retire(c.tag)
            job.reads_outstanding -= 1

    def _bad_translation(self, c: tlp.Completion, p: _Translation, why: str) -> None:
        self.errors.append(Finding("bad_completion", f"tag {c.tag:#x}: {why}"))
        self._retire(c.tag)
        self._fail(p.job, f"bad translation completion for {p.address:#x}: {why}")

    def _on_translation_completion(self, c: tlp.Completion, p: _Translation) -> None:
        """Translation Completion (pcie §3.2): UR/CA means no translation (the job fails); success
        is one or two CplDs, Byte Count of the last = its payload, entries of one size covering
        consecutive untranslated ranges from the (size-aligned) requested address."""
        if c.status != tlp.CPL_SC:
            self._retire(c.tag)
            self._fail(p.job, f"Translation Request for {p.address:#x} completed with status {c.status:03b}b")
            return
        if not c.data:
            return self._bad_translation(c, p, "successful Translation Completion without data")
        if p.remaining is not None and c.byte_count != p.remaining:
            return self._bad_translation(c, p, f"Byte Count {c.byte_count}, {p.remaining} bytes remain")
        if c.byte_count < len(c.data) or (p.remaining is None and c.byte_count > 8 * p.count):
            return self._bad_translation(c, p, f"Byte Count {c.byte_count} with {len(c.data)} data bytes "
                                               f"for {p.count} translation(s)")
        p.data += c.data
        if c.byte_count > len(c.data):
            p.remaining = c.byte_count - len(c.data)
            return
        if len(p.data) % 8:
            return self._bad_translation(c, p, f"{len(p.data)} bytes is not a whole number of entries")
        entries = [tlp.TranslationEntry.from_bytes(p.data[i:i + 8]) for i in range(0, len(p.data), 8)]
        try:
            sizes = {e.size() for e in entries}
        except tlp.TlpError as e:
            return self._bad_translation(c, p, str(e))
        if len(sizes) != 1:
            return self._bad_translation(c, p, f"entries of different sizes {sorted(sizes)}")
        self._retire(c.tag)
        if p.stale or not self._ats_active():
            return  # invalidated (or ATS disabled) while in flight: the device asks again if needed
        size = sizes.pop()
        base = p.address & -size
        for e in entries:
            new = AtcEntry(p.pasid, p.pmr, base, size, e.base(), bool(e.r), bool(e.w), bool(e.u),
                           bool(e.exe), bool(e.priv), bool(e.g), bool(e.n))
            self.atc = [a for a in self.atc if not (a.pasid == p.pasid and a.pmr == p.pmr
                                                    and a.overlaps(base, size))]
            self.atc.append(new)
            base += size

    # --- ATS invalidation --------------------------------------------------------------------------
    def _on_invalidate(self, m: tlp.AtsInvalidateRequest) -> None:
        """Drop the ATC entries the request hits and queue its completion (pcie §3.4). Without a
        PASID prefix it hits every entry in the range, PASID-tagged ones included (the Linux SMMUv3
        driver documents this ATC behaviour); with one, that PASID's entries, or all PASIDs' when
        Global Invalidate is set and supported."""
        if self._misrouted(m):
            return
        if not (self.ats_params is not None and self._get("ats.ctl").enable):
            self.errors.append(Finding("invalidate_while_ats_disabled", f"ITag {m.itag}"))
            return
        try:
            base, size = m.range()
        except tlp.TlpError as e:
            self.errors.append(Finding("malformed_tlp", str(e)))
            return
        every_pasid = m.pasid is None or (m.global_invalidate and self.ats_params.global_invalidate_supported)

        def hit(pasid: int | None, lo: int, n: int) -> bool:
            return (every_pasid or pasid == m.pasid) and lo < base + size and base < lo + n

        dropped = [e for e in self.atc if hit(e.pasid, e.base, e.size)]
        self.atc = [e for e in self.atc if e not in dropped]
        for p in self._pending.values():
            if isinstance(p, _Translation) and hit(p.pasid, p.address, p.count * PAGE):
                p.stale = True
        self.counters["invalidate_requests"] += 1
        if self.invalidate_mode is InvalidateMode.NEVER:
            return
        if len(self._invalidations) >= self.ats_params.queue_depth:
            self.violations.append(Finding("invalidate_queue_overflow",
                                           f"ITag {m.itag}: more than Invalidate Queue Depth "
                                           f"{self.ats_params.queue_depth} outstanding (pcie §3.4)"))
        waiting = {tag for tag, p in self._pending.items()
                   if isinstance(p, _Read) and any(p.entry is e for e in dropped)}
        self._invalidations.append(_Invalidation(m.itag, m.requester_id, waiting))

    # --- PRI responses -----------------------------------------------------------------------------
    def _on_prg_response(self, r: tlp.PrgResponse) -> None:
        """PRG Response (pcie §4.2): Success -> translate again; Invalid Request -> the job fails;
        Response Failure (and the unused codes) -> RF, PRI stops, later responses are ignored until
        PRI is enabled again; an index that is not outstanding -> UPRGI."""
        if self._misrouted(r):
            return
        if self.pri_params is None:
            self.errors.append(Finding("unexpected_tlp", "PRG Response to a function without PRI"))
            return
        if self._pri_failed:
            self.counters["prg_responses_ignored"] += 1
            return
        self.counters["prg_responses"] += 1
        prpr = self.pri_params.prg_response_pasid_required
        if not prpr and r.pasid is not None:
            self.violations.append(Finding("prg_response_pasid_unexpected",
                                           f"PRG {r.prg_index:#x} carries PASID {r.pasid:#x} but PRG "
                                           f"Response PASID Required is 0 (pcie §4.2: undefined)"))
        if r.response_code not in (tlp.PRG_SUCCESS, tlp.PRG_INVALID_REQUEST):
            self._put("pri.status", self._get("pri.status").copy(rf=1))
            self._pri_failed = True
            for g in list(self._prgs.values()) + self._prg_queue:
                self._fail(g.job, f"PRG Response code {r.response_code:#x} (Response Failure)")
            self._prgs.clear()
            self._prg_queue.clear()
            return
        g = self._prgs.get(r.prg_index)
        if g is not None and prpr and r.pasid != g.pasid:
            self.violations.append(Finding("prg_response_pasid_mismatch",
                                           f"PRG {r.prg_index:#x} was sent with PASID {g.pasid}, the "
                                           f"response carries {r.pasid} (PRG Response PASID Required = 1)"))
            g = None
        if g is None:
            self._put("pri.status", self._get("pri.status").copy(uprgi=1))
            return
        del self._prgs[r.prg_index]
        job = g.job
        job.prg = None
        if job.status is not JobStatus.RUNNING:
            return
        if r.response_code == tlp.PRG_SUCCESS:
            self.atc = [e for e in self.atc if not (e.pasid == g.pasid and e.pmr == g.pmr
                                                    and any(e.covers(page) for page in g.pages))]
        else:
            self._fail(job, f"PRG Response Invalid Request for page(s) {', '.join(hex(p) for p in g.pages)}")
