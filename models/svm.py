"""The operating system's SVM driver for the VT-d style IOMMU, sans-I/O (vtd.md §7.1-§7.3, §5.4, §5.5,
§4.5, §4.6; pcie.md §5.4).

Semantics are those of the original Linux VT-d SVM work (the 2015 ``intel_svm_bind_mm`` API with its
later PRIVATE_PASID / SUPERVISOR_MODE flags and per-device fault callback), programmed through the
VT-d 5.10 scalable-mode structures. The driver touches the IOMMU only through its registers and host
memory, and the endpoints only through their configuration space, via a small ``Platform`` interface,
so the same code drives the golden model (``models.system``) and, later, the RTL under cocotb.

Platform interface (duck-typed; ``models.system.System`` is the model-only implementation)
* ``mem`` - host memory: ``read(addr, n)``, ``write(addr, data)``, ``read64``, ``write64``.
* ``frames`` - a ``models.host.FrameAllocator`` for the driver's own tables and queues.
* ``reg_read32(off)``, ``reg_read64(off)``, ``reg_write32(off, v)``, ``reg_write64(off, v)`` - the
  IOMMU register page.
* ``cfg_read(device, off, size) -> int``, ``cfg_write(device, off, size, value)`` - configuration
  space of the endpoint with requester ID ``device`` (size 1, 2 or 4 bytes, little-endian).
* ``wait(predicate, what, timeout)`` - let the platform run (model: pump TLPs and MSIs; cocotb:
  simulated cycles) until ``predicate()`` holds; raises ``WaitTimeout`` naming ``what`` after
  ``timeout`` platform steps.
* MSIs reach the driver as ``driver.interrupt(address, data)``.

Interrupt handling. ``interrupt`` runs the handler at once unless the driver is already inside a
handler or inside ``munmap``; then the event is remembered and handled when that section ends (a
threaded IRQ that is re-run while it was pending). ``munmap`` keeps handlers out the way Linux's
``mmap_lock`` held for write keeps the fault handler out until the TLB flush is complete: a page
fault serviced in between could hand a just-freed frame to the process while a device still holds
a stale translation to it.

Page group response codes (vtd §4.5, §9 item 1; decided here):
* ``SUCCESS`` - every page request of the group was resolved: the page is now mapped with the
  requested access (``Mm.fault``) in the address space bound to the PASID.
* ``INVALID_REQUEST`` - at least one request of the group could not be resolved: no VMA at the
  address, write to a read-only VMA, user request (PMR=0) to a supervisor-only VMA, non-canonical
  address, execute requested (ECAP.ERS=0), PMR=1 on a PASID not bound in supervisor mode, no PASID
  (PP=0), unknown PASID, or a device not bound to that PASID. IR rather than Response Failure,
  because RF disables PRI for the whole function (every PASID of the device) - one bad request of one
  process must not kill the device for the others (modern Linux; the 2015 code answered unknown
  PASIDs with RF).
* ``RESPONSE_FAILURE`` - never chosen by this driver; only when the device driver's fault callback
  returns it (it judges the device broken).
The response of a group is the worst result of its requests (SUCCESS < IR < RF) and is sent only for
the request with LPIG=1 (vtd §5.2: "requires response" = LPIG); stop markers get none.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Protocol

from .endpoint import (
    CAP_ID_PCIE,
    EXT_CAP_BASE,
    EXT_CAP_ID_ATS,
    EXT_CAP_ID_PASID,
    EXT_CAP_ID_PRI,
    AtsCap,
    AtsCtl,
    CapHeader,
    DevCap2,
    ExtCapHeader,
    PasidCap,
    PasidCtl,
    PriCtl,
    PriStatus,
    Status,
)
from .host import FrameAllocator, Memory, Mm
from .paging import PAGE_SIZE, is_canonical
from .tlp import encode_range
from .vtd import (
    INV_DESC_BYTES,
    REGISTERS,
    CcInvDesc,
    ContextEntry,
    FrcdAt,
    FrcdType,
    InvDesc,
    InvWaitDesc,
    IotlbInvDesc,
    PageGroupResponseDescriptor,
    PageRequestDescriptor,
    PasidDirEntry,
    PasidEntry,
    PcInvDesc,
    PDevTlbInvDesc,
    Pgtt,
    PIotlbInvDesc,
    ResponseCode,
    RootEntry,
)

# --- API constants (2015 include/linux/intel-svm.h, vtd §7.1) -------------------------------------
SVM_FLAG_PRIVATE_PASID = 1 << 0  # always a new PASID, never shared with another bind of the mm
SVM_FLAG_SUPERVISOR_MODE = 1 << 1  # kernel address space, PASID entry SRE=1 (needs ECAP.SRS)
#: ``rwxp`` bits passed to the fault callback
SVM_REQ_READ, SVM_REQ_WRITE, SVM_REQ_EXEC, SVM_REQ_PRIV = 8, 4, 2, 1

# --- choices of this driver -----------------------------------------------------------------------
MSI_ADDRESS = 0xFEE0_0000  # x86 local APIC window, destination APIC 0
FAULT_VECTOR, IQ_VECTOR, PRQ_VECTOR = 0x40, 0x41, 0x42  # xxDATA of the three event sources
SVM_DID = 1  # one domain ID for every SVM PASID (Linux FLPT_DEFAULT_DID)
RID_PASID = 0  # PASID of requests without PASID; never handed out (Linux IOMMU_NO_PASID)
IQ_QS = 0  # invalidation queue: 2^0 pages = 128 descriptors of 256 bits
QI_IN_USE, QI_DONE = 1, 2  # wait-descriptor status words (Linux QI_IN_USE / QI_DONE)
WAIT_TIMEOUT = 100_000  # platform steps before a wait gives up

PRQ_DESC_BYTES = PageRequestDescriptor.nbytes()


# ================================================================================================
# Errors and public records
# ================================================================================================


class SvmError(Exception):
    """Base of every error this driver raises."""


class SvmNotSupported(SvmError):
    """A capability the request needs is missing in the IOMMU or the device (Linux -ENODEV/-EINVAL)."""


class SvmBusy(SvmError):
    """The device is already bound to this address space with different fault callbacks (-EBUSY)."""


class SvmNoSpace(SvmError):
    """No PASID usable by the device is free, or the shared PASID is too wide for it (-ENOSPC)."""


class SvmNotBound(SvmError):
    """unbind of a (device, PASID) pair that is not bound (-EINVAL)."""


class QiError(SvmError):
    """The invalidation queue stopped: FSTS.IQE / ICE / ITE (vtd §1.8, §4.1)."""


class WaitTimeout(SvmError):
    """The platform ran ``timeout`` steps and the awaited condition never held."""


@dataclasses.dataclass(frozen=True)
class SvmDevOps:
    """Per-device callbacks given to ``bind`` (2015 ``struct svm_dev_ops``).

    ``fault_cb(device, pasid, addr, rwxp, response)`` is called for every page request of a bound
    (device, PASID) after the driver tried to resolve it; ``response`` is the driver's result for that
    request. Returning a ``ResponseCode`` replaces it (e.g. ``RESPONSE_FAILURE``); ``None`` keeps it."""

    fault_cb: Callable[[int, int, int, int, ResponseCode], ResponseCode | None]


@dataclasses.dataclass(frozen=True)
class FaultRecord:
    """One primary fault read from an FRCD (vtd §1.9)."""

    reason: int
    sid: int
    pasid: int | None
    addr: int
    kind: FrcdType
    at: FrcdAt
    priv: bool


class Platform(Protocol):
    """What the driver needs from its environment (see the module docstring)."""

    mem: Memory
    frames: FrameAllocator

    def reg_read32(self, off: int) -> int: ...
    def reg_read64(self, off: int) -> int: ...
    def reg_write32(self, off: int, value: int) -> None: ...
    def reg_write64(self, off: int, value: int) -> None: ...
    def cfg_read(self, device: int, off: int, size: int) -> int: ...
    def cfg_write(self, device: int, off: int, size: int, value: int) -> None: ...
    def wait(self, predicate: Callable[[], bool], what: str, timeout: int) -> None: ...


# ================================================================================================
# Internal state
# ================================================================================================


@dataclasses.dataclass
class _Device:
    """What the driver knows about one endpoint (Linux ``device_domain_info``)."""

    rid: int
    pasid_cap: int  # config-space offsets of the extended capabilities
    ats_cap: int
    pri_cap: int
    pasid_max: int  # PASIDs usable by the device: [0, pasid_max)
    priv: bool  # Privileged Mode Supported (and enabled when the IOMMU has SRS)
    ats_qdep: int  # MIP field of device-TLB invalidations: the queue depth, 0 for 32
    pasid_dir: int = 0
    pdts: int = 0
    pasid_tables: dict[int, int] = dataclasses.field(default_factory=dict)  # dir index -> table
    enabled: bool = False


@dataclasses.dataclass
class _SvmDev:
    """One device on one PASID (Linux ``intel_svm_dev``)."""

    device: _Device
    ops: SvmDevOps | None
    users: int = 1


@dataclasses.dataclass
class _Svm:
    """One PASID bound to an address space (Linux ``intel_svm``)."""

    pasid: int
    mm: Mm
    flags: int
    devs: dict[int, _SvmDev] = dataclasses.field(default_factory=dict)

    @property
    def supervisor(self) -> bool:
        return bool(self.flags & SVM_FLAG_SUPERVISOR_MODE)


def _reg(name: str):
    """Layout of a register. Only fixed-offset registers are addressed through it; the FRCDs are
    found through CAP.FRO/NFR as read from the hardware (their offsets depend on the profile)."""
    return REGISTERS[name]


def _bit(reg: str, field: str) -> int:
    return _reg(reg).field(field).mask


# ================================================================================================
# The driver
# ================================================================================================


class SvmDriver:
    """SVM driver for one IOMMU. Call ``init()`` once, then ``bind``/``unbind``/``munmap``."""

    def __init__(self, platform: Platform, prq_order: int = 0, timeout: int = WAIT_TIMEOUT):
        if not 0 <= prq_order <= 7:
            raise ValueError(f"prq_order {prq_order} outside 0..7 (PQA.PQS)")
        self.p = platform
        self.mem = platform.mem
        self.prq_order = prq_order
        self.timeout = timeout
        self.cap: dict[str, int] = {}
        self.ecap: dict[str, int] = {}
        self.faults: list[FaultRecord] = []  # primary faults reported by the fault event
        self._root = 0
        self._context_tables: dict[tuple[int, int], int] = {}  # (bus, upper half) -> table
        self._devices: dict[int, _Device] = {}
        self._svms: dict[int, _Svm] = {}  # PASID -> binding
        self._mm_refs: dict[Mm, int] = {}  # references the driver holds on address spaces
        self._iq = self._iq_tail = 0
        self._iq_size = PAGE_SIZE << IQ_QS
        self._status_page = 0
        self._status_free: list[int] = []
        self._prq = 0
        self._prq_size = PAGE_SIZE << prq_order
        self._groups: dict[tuple[int, int | None, int], ResponseCode] = {}  # open page request groups
        self._responses_sent = 0  # page group responses queued so far
        self._pending: list[int] = []  # MSI vectors waiting for the handler
        self._busy = False  # inside a handler or munmap

    # --- registers ------------------------------------------------------------------------------
    def _read(self, name: str) -> int:
        r = _reg(name)
        return self.p.reg_read64(r.offset) if r.width == 64 else self.p.reg_read32(r.offset)

    def _write(self, name: str, value: int) -> None:
        r = _reg(name)
        if r.width == 64:
            self.p.reg_write64(r.offset, value)
        else:
            self.p.reg_write32(r.offset, value)

    def _wait(self, predicate: Callable[[], bool], what: str) -> None:
        self.p.wait(predicate, what, self.timeout)

    def _gcmd(self, command: str, status: str, value: bool) -> None:
        """One GCMD command with the GSTS handshake of vtd §1.5 (SPEC §11.4.4.1): keep the persistent
        enables read from GSTS (mask 0x96FF_FFFF drops the one-shot positions), set or clear one bit,
        write GCMD, then poll GSTS until the status bit follows."""
        bit = _bit("GCMD", command)
        current = self._read("GSTS") & 0x96FF_FFFF
        self._write("GCMD", (current | bit) if value else (current & ~bit))
        sbit = _bit("GSTS", status)
        self._wait(lambda: bool(self._read("GSTS") & sbit) == value, f"GSTS.{status.upper()}={int(value)}")

    # --- initialisation -------------------------------------------------------------------------
    def init(self) -> None:
        """Bring the IOMMU up in scalable mode: read CAP/ECAP, set up the invalidation queue, the page
        request queue and the three event interrupts, latch the root table with TTM=01 and enable
        translation, each with the GCMD/GSTS handshake (vtd §1.5, §1.6, §1.10-§1.12, §4.1)."""
        self.cap = _reg("CAP").unpack(self._read("CAP"))
        self.ecap = _reg("ECAP").unpack(self._read("ECAP"))
        for name in ("qi", "smts"):
            if not self.ecap[name]:
                raise SvmNotSupported(
                    f"ECAP.{name.upper()}=0: this driver needs scalable mode with queued invalidation"
                )
        if self.cap["cm"]:
            raise SvmNotSupported("CAP.CM=1 (caching mode, for emulators) is not supported by this driver")
        if self._read("GSTS") & (_bit("GSTS", "tes") | _bit("GSTS", "qies")):
            raise SvmError("IOMMU already enabled (GSTS.TES or QIES set): init expects the reset state")
        frames = self.p.frames

        # invalidation queue (vtd §4.1): IQT=0, IQA with DW=1 (256-bit descriptors), then QIE
        self._iq = frames.alloc(self._iq_size)
        self._iq_tail = 0
        self._status_page = frames.alloc()
        self._status_free = list(range(self._status_page, self._status_page + PAGE_SIZE, 4))
        self._write("IQT", 0)
        self._write("IQA", _reg("IQA").pack(iqa=self._iq >> 12, dw=1, qs=IQ_QS))
        self._gcmd("qie", "qies", True)

        # page request queue (vtd §1.11), only when page requests exist at all
        if self.ecap["prs"]:
            self._prq = frames.alloc(self._prq_size)
            self._write("PQH", 0)
            self._write("PQT", 0)
            self._write("PQA", _reg("PQA").pack(pqa=self._prq >> 12, pqs=self.prq_order))
            self._write("PRS", _bit("PRS", "pro") | _bit("PRS", "ppr"))

        # event interrupts (vtd §1.8, §1.12): address and data first, then unmask
        for prefix, vector in (("FE", FAULT_VECTOR), ("IE", IQ_VECTOR), ("PE", PRQ_VECTOR)):
            self._write(f"{prefix}DATA", vector)
            self._write(f"{prefix}ADDR", MSI_ADDRESS)
            self._write(f"{prefix}UADDR", 0)
            self._write(f"{prefix}CTL", 0)

        # root table, scalable mode (vtd §1.6): RTADDR then SRTP; without ESRTPS the caches are
        # flushed globally (vtd §4.6, "SM root entry"; dev-TLBs: no device has ATS enabled yet)
        self._root = frames.alloc()
        self._write("RTADDR", _reg("RTADDR").pack(rta=self._root >> 12, ttm=0b01))
        self._gcmd("srtp", "rtps", True)
        if not self.cap["esrtps"]:
            self._qi_submit(
                [
                    CcInvDesc(g=CcInvDesc.G_GLOBAL),
                    PcInvDesc(g=PcInvDesc.G_GLOBAL),
                    IotlbInvDesc(g=IotlbInvDesc.G_GLOBAL),
                ]
            )
        self._gcmd("te", "tes", True)

    # --- invalidation queue ---------------------------------------------------------------------
    def _qi_error(self) -> str | None:
        fsts = _reg("FSTS").unpack(self._read("FSTS"))
        bad = [name.upper() for name in ("iqe", "ice", "ite") if fsts[name]]
        if not bad:
            return None
        rec = _reg("IQERCD").unpack(self._read("IQERCD"))
        return (
            f"FSTS {'/'.join(bad)} set (IQERCD: iqei={rec['iqei']}, itesid={rec['itesid']:#06x}, "
            f"icesid={rec['icesid']:#06x})"
        )

    def _qi_submit(self, descs: list[InvDesc], drain: bool = False) -> None:
        """Queue ``descs`` followed by one wait descriptor (SW=1, plus PD=1 when ``drain`` and ECAP.PDS)
        and return once its status write is seen (Linux ``qi_submit_sync``; vtd §4.1, §4.4).
        Descriptors that do not fit are published and the call waits for IQH to move."""
        slot = self._status_free.pop()
        self.mem.write(slot, QI_IN_USE.to_bytes(4, "little"))
        pd = int(drain and bool(self.ecap["pds"]))
        wait = InvWaitDesc(sw=1, status_data=QI_DONE, status_addr=slot >> 2, pd=pd)
        for desc in [*descs, wait]:
            self._qi_put(desc)
        self._publish()

        def done() -> bool:
            return int.from_bytes(self.mem.read(slot, 4), "little") == QI_DONE or self._qi_error() is not None

        self._wait(done, "invalidation wait descriptor status")
        error = self._qi_error()
        self._status_free.append(slot)
        if error is not None:
            raise QiError(f"invalidation queue stopped: {error}")

    def _qi_put(self, desc: InvDesc) -> None:
        nxt = (self._iq_tail + INV_DESC_BYTES) % self._iq_size
        if nxt == self._read("IQH"):  # full: at most N-1 descriptors are outstanding
            self._publish()
            self._wait(lambda: nxt != self._read("IQH") or self._qi_error() is not None, "a free IQ slot")
            error = self._qi_error()
            if error is not None:
                raise QiError(f"invalidation queue stopped: {error}")
        self.mem.write(self._iq + self._iq_tail, desc.to_bytes())
        self._iq_tail = nxt

    def _publish(self) -> None:
        self._write("IQT", self._iq_tail)

    # --- device discovery and enabling (vtd §7.2, pcie §5.4) ------------------------------------
    def _cfg(self, rid: int, off: int, size: int) -> int:
        return self.p.cfg_read(rid, off, size)

    def _find_pcie_cap(self, rid: int) -> int | None:
        if not Status(self._cfg(rid, 0x06, 2)).capabilities_list:
            return None
        ptr = self._cfg(rid, 0x34, 1) & 0xFC
        seen = set()
        while ptr and ptr not in seen:
            seen.add(ptr)
            hdr = CapHeader(self._cfg(rid, ptr, 2))
            if hdr.cap_id == CAP_ID_PCIE:
                return ptr
            ptr = hdr.next_ptr & 0xFC
        return None

    def _find_ext_caps(self, rid: int) -> dict[int, int]:
        found: dict[int, int] = {}
        ptr = EXT_CAP_BASE
        while ptr and ptr not in found.values():
            raw = self._cfg(rid, ptr, 4)
            if raw in (0, 0xFFFF_FFFF):
                break
            hdr = ExtCapHeader(raw)
            found.setdefault(hdr.cap_id, ptr)
            ptr = hdr.next_ptr & 0xFFC
        return found

    def _probe(self, rid: int, supervisor: bool) -> _Device:
        """Capability checks on the endpoint (vtd §7.2, pcie §5.4). Reads config space only."""
        known = self._devices.get(rid)
        if known is not None:
            dev = known
        else:
            pcie = self._find_pcie_cap(rid)
            if pcie is None:
                raise SvmNotSupported(f"device {rid:#06x}: no PCI Express capability")
            devcap2 = DevCap2(self._cfg(rid, pcie + 0x24, 4))
            if not devcap2.end_end_tlp_prefix_supported:
                raise SvmNotSupported(
                    f"device {rid:#06x}: End-End TLP prefixes not supported (no PASID prefix)"
                )
            ext = self._find_ext_caps(rid)
            needed = ((EXT_CAP_ID_PASID, "PASID"), (EXT_CAP_ID_ATS, "ATS"), (EXT_CAP_ID_PRI, "PRI"))
            for cap_id, name in needed:
                if cap_id not in ext:
                    raise SvmNotSupported(f"device {rid:#06x}: no {name} capability")
            pasid_cap = PasidCap(self._cfg(rid, ext[EXT_CAP_ID_PASID] + 4, 2))
            ats_cap = AtsCap(self._cfg(rid, ext[EXT_CAP_ID_ATS] + 4, 2))
            pri_status = PriStatus(self._cfg(rid, ext[EXT_CAP_ID_PRI] + 6, 2))
            if not ats_cap.page_aligned_request:
                raise SvmNotSupported(
                    f"device {rid:#06x}: ATS without Page Aligned Request (Linux will not enable it)"
                )
            if not pri_status.prg_response_pasid_required:
                raise SvmNotSupported(
                    f"device {rid:#06x}: PRI without 'PRG Response PASID Required': responses to PASID "
                    "page requests would carry a PASID the device does not expect"
                )
            dev = _Device(
                rid=rid,
                pasid_cap=ext[EXT_CAP_ID_PASID],
                ats_cap=ext[EXT_CAP_ID_ATS],
                pri_cap=ext[EXT_CAP_ID_PRI],
                pasid_max=min(1 << pasid_cap.max_pasid_width, 1 << (self.ecap["pss"] + 1)),
                priv=bool(pasid_cap.privileged_mode_supported),
                ats_qdep=ats_cap.invalidate_queue_depth,
            )
        if supervisor and not dev.priv:
            raise SvmNotSupported(f"device {rid:#06x}: supervisor binding needs Privileged Mode Supported")
        if dev.pasid_max <= 1:
            raise SvmNoSpace(f"device {rid:#06x}: Max PASID Width 0 leaves no PASID besides RID_PASID")
        return dev

    def _enable_device(self, dev: _Device) -> None:
        """First bind of a device: PASID directory, context entry, then PASID -> PRI -> ATS in the
        endpoint (vtd §7.2; pcie §5.4: PASID before ATS, PRI reset then enable)."""
        frames = self.p.frames
        dir_entries = max(128, dev.pasid_max >> 6)  # one entry per 64 PASIDs, at least PDTS=0
        dev.pdts = dir_entries.bit_length() - 1 - 7
        dev.pasid_dir = frames.alloc(max(PAGE_SIZE, dir_entries * PasidDirEntry.nbytes()))
        self._write_context(dev)

        rid = dev.rid
        # PASID Control: enable, plus Privileged Mode when both sides support it; never Execute
        # (ECAP.ERS=0 in 5.10)
        ctl = PasidCtl(pasid_enable=1, privileged_mode_enable=int(dev.priv and bool(self.ecap["srs"])))
        self.p.cfg_write(rid, dev.pasid_cap + 6, 2, ctl.raw)
        # PRI: reset while disabled, require Stopped, allocation = min(capacity, PRQ depth), enable
        pri = dev.pri_cap
        self.p.cfg_write(rid, pri + 4, 2, PriCtl(reset=1).raw)
        if not PriStatus(self._cfg(rid, pri + 6, 2)).stopped:
            raise SvmError(f"device {rid:#06x}: PRI not Stopped after reset")
        capacity = self._cfg(rid, pri + 8, 4)
        self.p.cfg_write(rid, pri + 0x0C, 4, min(capacity, self._prq_size // PRQ_DESC_BYTES))
        self.p.cfg_write(rid, pri + 4, 2, PriCtl(enable=1).raw)
        # ATS last, STU = 0 (4 KiB) written together with Enable
        self.p.cfg_write(rid, dev.ats_cap + 6, 2, AtsCtl(stu=0, enable=1).raw)
        dev.enabled = True
        self._devices[rid] = dev

    def _write_context(self, dev: _Device) -> None:
        """Root entry half (lazily) and the device's context entry: P, DTE, PASIDE, PRE, PDTS,
        PASIDDIRPTR, RID_PASID (vtd §2.2, §2.3). Both go from not-present to present, so with CM=0
        no invalidation is required (vtd §4.6: only changes of present entries need one)."""
        bus, devfn = dev.rid >> 8, dev.rid & 0xFF
        upper = devfn >> 7
        table = self._context_tables.get((bus, upper))
        if table is None:
            table = self.p.frames.alloc()
            self._context_tables[(bus, upper)] = table
            slot = RootEntry.entry_address(self._root, bus) + 8 * upper
            if upper:
                half = RootEntry(up=1, uctp=table >> 12).qw(1)
            else:
                half = RootEntry(lp=1, lctp=table >> 12).qw(0)
            self.mem.write64(slot, half)
        ce = ContextEntry(
            p=1, dte=1, paside=1, pre=1, pdts=dev.pdts, pasiddirptr=dev.pasid_dir >> 12, rid_pasid=RID_PASID
        )
        addr = ContextEntry.entry_address(table, devfn)
        raw = ce.to_bytes()
        self.mem.write(addr + 8, raw[8:])  # present bit (QW0) last
        self.mem.write(addr, raw[:8])

    def _pasid_entry_address(self, dev: _Device, pasid: int, create: bool) -> int:
        """Address of the device's PASID entry, allocating its PASID table lazily (vtd §2.4)."""
        index = pasid >> 6
        table = dev.pasid_tables.get(index)
        if table is None:
            if not create:
                raise SvmError(f"device {dev.rid:#06x}: no PASID table for PASID {pasid:#x}")
            table = self.p.frames.alloc()
            dev.pasid_tables[index] = table
            self.mem.write64(
                PasidDirEntry.entry_address(dev.pasid_dir, pasid),
                PasidDirEntry(p=1, smptblptr=table >> 12).raw,
            )
        return PasidEntry.entry_address(table, pasid)

    def _install_pasid(self, dev: _Device, svm: _Svm) -> None:
        """First-stage PASID entry (vtd §2.5, Linux ``intel_pasid_setup_first_level``): FSPTPTR = pgd,
        FSPM for 5-level, PGTT=001, DID, PWSNP (snooped walks: A/D updates need them, vtd §3.5), SRE
        for supervisor. Not-present -> present: no invalidation with CM=0 (vtd §4.6)."""
        pe = PasidEntry(
            p=1,
            pgtt=Pgtt.FIRST_STAGE,
            did=SVM_DID,
            pwsnp=1,
            sre=int(svm.supervisor),
            fspm=1 if svm.mm.levels == 5 else 0,
            fsptptr=svm.mm.pgd >> 12,
        )
        addr = self._pasid_entry_address(dev, svm.pasid, create=True)
        raw = pe.to_bytes()
        self.mem.write(addr + 8, raw[8:])  # present bit (QW0) last
        self.mem.write(addr, raw[:8])

    def _teardown_pasid(self, dev: _Device, pasid: int) -> None:
        """PASID entry P 1 -> 0 with the invalidations of vtd §4.6 (Linux
        ``intel_pasid_tear_down_entry``): PASID-selective PASID-cache, PASID-selective p_iotlb, and
        the PASID's whole device TLB (S=1, address all ones), then one wait."""
        addr = self._pasid_entry_address(dev, pasid, create=False)
        self.mem.write(addr, bytes(PasidEntry.nbytes()))
        everything, s = encode_range(0, 1 << 64)
        self._qi_submit(
            [
                PcInvDesc(g=PcInvDesc.G_PASID, did=SVM_DID, pasid=pasid),
                PIotlbInvDesc(g=PIotlbInvDesc.G_PASID, did=SVM_DID, pasid=pasid),
                PDevTlbInvDesc(sid=dev.rid, pasid=pasid, mip=dev.ats_qdep, s=s, addr=everything >> 12),
            ]
        )

    # --- bind / unbind --------------------------------------------------------------------------
    def _check_iommu(self, mm: Mm, supervisor: bool) -> None:
        needed = [("smts", "scalable mode"), ("pasid", "requests with PASID"), ("prs", "page requests"),
                  ("dt", "device TLBs (ATS)"), ("fsts", "first-stage translation"),
                  ("smpwcs", "snooped first-stage walks (A/D updates)")]
        if supervisor:
            needed.append(("srs", "supervisor requests"))
        for name, what in needed:
            if not self.ecap[name]:
                raise SvmNotSupported(f"ECAP.{name.upper()}=0: the IOMMU lacks {what}")
        # the CPU side of this model maps 1 GiB pages, so first-stage walks must accept them (vtd §7.3)
        if not self.cap["fs1gp"]:
            raise SvmNotSupported("CAP.FS1GP=0: CPU page tables may hold 1 GiB pages the IOMMU cannot walk")
        if mm.levels == 5 and not self.cap["fs5lp"]:
            raise SvmNotSupported("CAP.FS5LP=0: the address space uses 5-level paging")
        if supervisor and any(v.user for v in mm.vmas):
            raise SvmError("supervisor binding needs a kernel address space (this one has user VMAs)")

    def bind(self, device: int, mm: Mm, flags: int = 0, ops: SvmDevOps | None = None) -> int:
        """Bind ``mm`` to ``device`` and return the PASID (vtd §7.1 bind steps 1-4).

        Unless ``SVM_FLAG_PRIVATE_PASID``, a PASID already bound to ``mm`` (same mode, not private)
        is reused, also by other devices; binding the same device again only counts a user (and
        needs the same ``ops``, else ``SvmBusy``). A new PASID is the lowest free one >= 1 below
        the device's limit, and takes a reference on ``mm`` until its last unbind."""
        if flags & ~(SVM_FLAG_PRIVATE_PASID | SVM_FLAG_SUPERVISOR_MODE):
            raise ValueError(f"unknown bind flags {flags:#x}")
        if self._busy:
            raise SvmError("bind from an interrupt handler or during munmap")
        supervisor = bool(flags & SVM_FLAG_SUPERVISOR_MODE)
        self._check_iommu(mm, supervisor)
        dev = self._probe(device, supervisor)

        svm = None
        if not flags & SVM_FLAG_PRIVATE_PASID:
            svm = next((c for c in self._svms.values() if c.mm is mm and c.supervisor == supervisor
                        and not c.flags & SVM_FLAG_PRIVATE_PASID), None)
        if svm is not None:
            if svm.pasid >= dev.pasid_max:
                raise SvmNoSpace(
                    f"device {device:#06x}: PASID {svm.pasid:#x} of this address space is beyond its "
                    f"{dev.pasid_max.bit_length() - 1}-bit PASID width"
                )
            sdev = svm.devs.get(device)
            if sdev is not None:
                if sdev.ops is not ops:
                    raise SvmBusy(
                        f"device {device:#06x} is already bound to PASID {svm.pasid:#x} with other ops"
                    )
                sdev.users += 1
                return svm.pasid
            pasid = svm.pasid
        else:
            pasid = next((n for n in range(1, dev.pasid_max) if n not in self._svms), None)
            if pasid is None:
                raise SvmNoSpace(f"device {device:#06x}: no free PASID below {dev.pasid_max:#x}")

        # every check passed: now change state
        if not dev.enabled:
            self._enable_device(dev)
        if svm is None:
            svm = _Svm(pasid=pasid, mm=mm, flags=flags)
            self._svms[pasid] = svm
            self._mm_refs[mm] = self._mm_refs.get(mm, 0) + 1
        self._install_pasid(dev, svm)
        svm.devs[device] = _SvmDev(device=dev, ops=ops)
        return pasid

    def unbind(self, device: int, pasid: int) -> None:
        """Drop one user of (device, PASID). At zero users: drain the PASID's page requests (vtd §5.5),
        tear the PASID entry down; at the last device free the PASID and release the mm."""
        if self._busy:
            raise SvmError("unbind from an interrupt handler or during munmap")
        svm = self._svms.get(pasid)
        sdev = None if svm is None else svm.devs.get(device)
        if sdev is None:
            raise SvmNotBound(f"device {device:#06x} is not bound to PASID {pasid:#x}")
        sdev.users -= 1
        if sdev.users:
            return
        self._drain_prq(sdev.device, pasid)
        self._teardown_pasid(sdev.device, pasid)
        del svm.devs[device]
        if not svm.devs:
            del self._svms[pasid]
            self._mm_refs[svm.mm] -= 1
            if not self._mm_refs[svm.mm]:
                del self._mm_refs[svm.mm]

    # --- queries --------------------------------------------------------------------------------
    def mm_refs(self, mm: Mm) -> int:
        """References the driver holds on ``mm`` (one per PASID bound to it)."""
        return self._mm_refs.get(mm, 0)

    def users(self, device: int, pasid: int) -> int:
        """Bind count of (device, PASID); 0 when not bound."""
        svm = self._svms.get(pasid)
        sdev = None if svm is None else svm.devs.get(device)
        return 0 if sdev is None else sdev.users

    def pasids(self) -> dict[int, Mm]:
        """The PASIDs in use and their address spaces."""
        return {pasid: svm.mm for pasid, svm in self._svms.items()}

    # --- draining (vtd §5.5) --------------------------------------------------------------------
    def _prq_holds(self, rid: int, pasid: int) -> bool:
        """Whether a descriptor of (rid, PASID) sits between PQH and PQT."""
        head, tail = self._read("PQH"), self._read("PQT")
        while head != tail:
            d = PageRequestDescriptor.from_bytes(self.mem.read(self._prq + head, PRQ_DESC_BYTES))
            if d.pp and d.pasid == pasid and d.rid == rid:
                return True
            head = (head + PRQ_DESC_BYTES) % self._prq_size
        return False

    def _drain_prq(self, dev: _Device, pasid: int) -> None:
        """Drain the page requests and responses of (device, PASID) (SPEC §7.10 via vtd §5.5;
        Linux ``intel_drain_pasid_prq``): wait until the PRQ holds none of them (the handler services
        and answers them), then [wait FN=1, p_iotlb, p_dev_tlb] + wait PD=1 SW=1: the device orders
        its invalidation completion behind its page requests, so when the status is written they are
        all in the PRQ, and the responses queued before have reached the device. Repeat while PRS.PRO
        is set (auto-responses may have happened) or the handler answered requests meanwhile."""
        pro = _bit("PRS", "pro")
        while True:
            self._wait(lambda: not self._prq_holds(dev.rid, pasid), f"PRQ free of PASID {pasid:#x} requests")
            answered = self._responses_sent
            self._qi_submit(
                [
                    InvWaitDesc(fn=1),
                    PIotlbInvDesc(g=PIotlbInvDesc.G_PASID, did=SVM_DID, pasid=pasid),
                    PDevTlbInvDesc(sid=dev.rid, pasid=pasid, mip=dev.ats_qdep),
                ],
                drain=True,
            )
            if self._read("PRS") & pro:
                self._wait(lambda: not self._read("PRS") & pro, "PRS.PRO cleared by the page request handler")
                continue
            # a response queued meanwhile went out after this round's device-TLB invalidation: one
            # more round makes sure it reached the device too
            if self._responses_sent == answered and not self._prq_holds(dev.rid, pasid):
                return

    # --- invalidation of process mappings -------------------------------------------------------
    def munmap(self, mm: Mm, va: int, length: int) -> list[tuple[int, int]]:
        """``munmap`` of a process with the IOMMU side of the TLB shootdown (vtd §4.6 "first-stage PTE
        change", §7.1 invalidate_range): clear the page tables, then one batch of page-selective
        p_iotlb descriptors (naturally aligned power-of-two chunks, IH=0: tables may have been freed)
        for every PASID bound to ``mm``, followed by a p_dev_tlb per chunk for each of its devices
        (all enable ATS), and a single wait descriptor. Returns after the wait's status write, so no
        IOTLB or ATC entry of the range survives. Page requests are held back meanwhile (see the
        module docstring). Returns what ``Mm.munmap`` removed."""
        if self._busy:
            raise SvmError("munmap from an interrupt handler")
        self._busy = True
        try:
            removed = mm.munmap(va, length)
            start = va & ~(PAGE_SIZE - 1)
            end = (va + length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
            chunks = _aligned_chunks(start, end)
            iotlb: list[InvDesc] = []
            devtlb: list[InvDesc] = []
            for svm in self._svms.values():
                if svm.mm is not mm:
                    continue
                for base, size in chunks:
                    iotlb.append(
                        PIotlbInvDesc(
                            g=PIotlbInvDesc.G_PAGE, did=SVM_DID, pasid=svm.pasid,
                            am=size.bit_length() - 1 - 12, addr=base >> 12,
                        )
                    )
                    address, s = encode_range(base, size)
                    for sdev in svm.devs.values():
                        devtlb.append(
                            PDevTlbInvDesc(
                                sid=sdev.device.rid, pasid=svm.pasid, mip=sdev.device.ats_qdep, s=s,
                                addr=address >> 12,
                            )
                        )
            if iotlb:
                self._qi_submit(iotlb + devtlb)
        finally:
            self._busy = False
        self._run_pending()
        return removed

    # --- interrupts -----------------------------------------------------------------------------
    def interrupt(self, address: int, data: int) -> None:
        """An MSI from the IOMMU. Handled now, or after the running handler / munmap."""
        if address != MSI_ADDRESS or data not in (FAULT_VECTOR, IQ_VECTOR, PRQ_VECTOR):
            raise ValueError(f"unexpected MSI address={address:#x} data={data:#x}")
        if data not in self._pending:
            self._pending.append(data)
        if not self._busy:
            self._run_pending()

    def _run_pending(self) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            while self._pending:
                vector = self._pending.pop(0)
                if vector == PRQ_VECTOR:
                    self._service_prq()
                elif vector == FAULT_VECTOR:
                    self._service_faults()
                else:
                    self._write("ICS", _bit("ICS", "iwc"))
        finally:
            self._busy = False

    def _service_faults(self) -> None:
        """Read and clear the primary fault records from FRI on (vtd §1.9, §6.3; Linux ``dmar_fault``)."""
        fsts = _reg("FSTS").unpack(self._read("FSTS"))
        count = self.cap["nfr"] + 1
        layout = _reg("FRCD0")
        index = fsts["fri"]
        for _ in range(count if fsts["ppf"] else 0):
            off = self.cap["fro"] * 16 + 16 * index
            if not self.p.reg_read32(off + 12) >> 31:
                break
            rec = layout.unpack(self.p.reg_read64(off) | self.p.reg_read64(off + 8) << 64)
            self.faults.append(
                FaultRecord(
                    reason=rec["fr"],
                    sid=rec["sid"],
                    pasid=rec["pv"] if rec["pp"] else None,
                    addr=rec["fi"] << 12,
                    kind=FrcdType.from_bits(rec["t1"], rec["t2"]),
                    at=FrcdAt(rec["at"]),
                    priv=bool(rec["priv"]),
                )
            )
            self.p.reg_write32(off + 12, 1 << 31)  # F is RW1CS, bit 127
            index = (index + 1) % count
        if fsts["pfo"]:
            self._write("FSTS", _bit("FSTS", "pfo"))

    # --- page requests (vtd §5.4) ---------------------------------------------------------------
    def _service_prq(self) -> None:
        """One pass of the PRQ thread: clear PPR first, service PQH..PQT, answer the completed groups
        through the invalidation queue, write PQH, and clear PRO once the queue is really empty."""
        ppr, pro = _bit("PRS", "ppr"), _bit("PRS", "pro")
        self._write("PRS", ppr)
        tail, head = self._read("PQT"), self._read("PQH")
        responses: list[InvDesc] = []
        while head != tail:
            d = PageRequestDescriptor.from_bytes(self.mem.read(self._prq + head, PRQ_DESC_BYTES))
            response = self._handle_request(d)
            if response is not None:
                responses.append(response)
            head = (head + PRQ_DESC_BYTES) % self._prq_size
        if responses:
            self._responses_sent += len(responses)
            self._qi_submit(responses)
        self._write("PQH", tail)
        if self._read("PRS") & pro and self._read("PQH") == self._read("PQT"):
            # requests of open groups were dropped and auto-answered by the hardware (vtd §5.2)
            self._groups.clear()
            self._write("PRS", pro)

    def _handle_request(self, d: PageRequestDescriptor) -> PageGroupResponseDescriptor | None:
        """Service one page request; return the group's response when this request ends it. Stop
        markers are skipped before any other check (Linux tests the address for canonicality first;
        a stop marker's address carries no meaning, so it must not earn a response either)."""
        if d.is_stop_marker():
            return None  # no response; the device promises no more requests on the PASID
        svm = self._svms.get(d.pasid) if d.pp else None
        sdev = None if svm is None else svm.devs.get(d.rid)
        result = ResponseCode.INVALID_REQUEST
        if sdev is not None:
            result = self._resolve(svm, d)
            if sdev.ops is not None:
                rwxp = (
                    (d.rdr and SVM_REQ_READ) | (d.wrr and SVM_REQ_WRITE)
                    | (d.exr and SVM_REQ_EXEC) | (d.pmr and SVM_REQ_PRIV)
                )
                forced = sdev.ops.fault_cb(d.rid, d.pasid, d.address, rwxp, result)
                if forced is not None:
                    result = ResponseCode(forced)
        key = (d.rid, d.pasid if d.pp else None, d.prgi)
        worst = max(self._groups.pop(key, ResponseCode.SUCCESS), result)
        if not d.lpig:
            self._groups[key] = worst
            return None
        return PageGroupResponseDescriptor(
            pp=d.pp, rc=worst, rid=d.rid, pasid=d.pasid if d.pp else 0, prgi=d.prgi
        )

    def _resolve(self, svm: _Svm, d: PageRequestDescriptor) -> ResponseCode:
        """Demand-fault the page like ``handle_mm_fault`` after the VMA access check (vtd §7.1)."""
        bad = ResponseCode.INVALID_REQUEST
        if d.exr or (d.pmr and not svm.supervisor) or not is_canonical(d.address, svm.mm.levels):
            return bad
        vma = svm.mm.find_vma(d.address)
        if vma is None or (d.wrr and not vma.write) or (not d.pmr and not vma.user):
            return bad
        return ResponseCode.SUCCESS if svm.mm.fault(d.address, write=bool(d.wrr)) else bad


def _aligned_chunks(start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) as naturally aligned power-of-two blocks of >= 4 KiB, largest first possible."""
    out = []
    while start < end:
        size = start & -start if start else 1 << 63
        while size > end - start:
            size >>= 1
        out.append((start, size))
        start += size
    return out
