"""The golden IOMMU's two in-memory queues: the page request queue writer (vtd.md §1.11, §4.7, §5) and
the invalidation queue engine (vtd.md §1.10, §4).

``models.iommu.Iommu`` creates one ``PageRequestQueue`` (``iommu.prq``) and one ``InvalidationQueue``
(``iommu.iq``), routes PRI Page Requests to ``prq.receive``, ATS Invalidate Completions to
``iq.receive_completion``, calls ``iq.process()`` after an IQT write, GCMD.QIE 0->1 and a software
clear of FSTS.IQE/ITE, and ``iq.timeout()`` from ``Iommu.timeout_dev_tlb()``. Both queues reach the
core only through ``iommu.mem``, ``iommu.field``/``set_field``, the event sources
(``status_set`` sets the status bit and runs vtd §1.12), ``iommu.lookup_pasid_entry``,
``iommu.record_fault``, ``iommu.caches`` and ``iommu.send_tlp``.

The model is synchronous: a page request is written (or refused) inside ``receive``, a descriptor
runs when it is fetched, and only device-TLB invalidations stay outstanding until the device answers.

Page request queue (vtd §5.2, Table 31)
    For one received page request, in this order:

    1. GSTS.TES=0 (translation disabled; the spec gives no row for it, this is our decision): no table
       is consulted, nothing is recorded, nothing is written; a request that needs a response gets an
       automatic Invalid Request, any other is dropped (cause ``'disabled'``).
    2. Walk root/context/PASID directory/PASID entry with the page-request checks
       (``lookup_pasid_entry(rid, pasid, 'page_request')``: TTM, PRE 0x47, PASIDE 0x45, PDTS 0x46,
       RID_PASID 0x48 ...). A fault is recorded unless FPD suppresses it (FRCD type page request,
       AT 00, PRIV = PMR, EXE = ER), the PRQ is not written, a request that needs a response gets an
       automatic Invalid Request, any other is dropped (cause ``'fault'``).
    3. PRS.PRO already 1: no write, no fault, no event; automatic Success or drop (cause
       ``'overflow'``).
    4. Full, ``(PQT + 32) mod size == PQH`` (at most N-1 entries): PRS.PRO is set through the event
       logic; automatic Success or drop (cause ``'full'``).
    5. Otherwise the implicit invalidation of vtd §4.7 (Table 27, address = the requested page, AM=0,
       IH=0), the 32-byte ``PageRequestDescriptor`` at PQA + PQT, PQT = (PQT + 32) mod size, then PRS.PPR
       through the event logic (an event only when PPR and PRO were both 0).

    "Needs a response" = L=1 and not a stop marker (vtd §5.2). A stop marker is a page request *with a
    PASID* and L=1, R=W=0 (pcie §4.1, ``tlp.PageRequest.is_stop_marker``); it is queued like any request
    and silently dropped when full, overflowing or faulting (ECAP.SMS=1 behaviour; with SMS=0 the spec
    leaves those cases undefined and the model does the same). L=1, R=W=0 *without* a PASID is not a
    stop marker (PCIe defines stop markers per PASID; Arm SMMU states the same): it is a page request
    that needs a response.
    Automatic responses are PRG Response messages from ``cfg.iommu_rid`` to the requester with the
    request's PRG index, carrying a PASID prefix (PMR=ER=0) exactly when the request had one.

    What "malformed" means: page requests are posted, so a malformed one is dropped without any
    answer. Malformed at the TLP level (``tlp.TlpError``), an unsupported prefix, or a PASID prefix with
    ECAP.PASID=0 is decided and dropped by the core before the PRQ sees it. Everything the descriptor
    can carry is queued as received: a non-canonical address, PMR=1 (whatever ECAP.SRS says), ER=1,
    R=W=0 with L=0. The descriptor is a report; judging the request is software's job (Linux answers
    non-canonical, PMR=1 and EXR=1 requests with Invalid Request, vtd §5.4). The PRQ itself drops
    nothing for its content.

    ``counters`` (``PrqCounters``) account for every request that reached the PRQ: received = queued +
    auto-responded + dropped, each of the last two split by cause.

Invalidation queue (vtd §4.1-§4.5, Table 26)
    Descriptors are fetched in order from IQH while GSTS.QIES=1, IQH != IQT, FSTS.IQE=0, FSTS.ITE=0,
    no fencing wait (FN=1) is pending and the descriptor at IQH can start (a device-TLB invalidation
    needs a free ITag). IQH advances past a descriptor once it validated and started. Before each fetch
    the queue configuration is checked, in this order (the first that fails sets IQERCD.IQEI and then
    FSTS.IQE through the fault event; IQH stays; nothing more is fetched until software clears IQE):

    * 7 invalid TTM: the mode latched by SRTP is 10b, 01b without ECAP.SMTS or 11b without ADMS;
    * 5 invalid width: DW=0 in scalable or abort-DMA mode, DW=1 with SMTS=ADMS=0;
    * 1 invalid tail: IQT beyond the queue (2^QS pages);
    * 6 tail misaligned: IQT bit 4 set with DW=1;
    * 2 fetch error: the descriptor read raised ``MemoryAccessError``;
    * 3 / 4 from ``vtd.decode_inv_desc`` (type invalid or unsupported by the profile / reserved field
      or encoding), plus 3 for types above 5 in legacy mode (TTM=00b: 0x1-0x5 only). A DW=0 descriptor
      is 16 bytes, decoded in its zero-padded 256-bit form.

    IQERCD.IQEI, ITESID and ICESID are written when their status bit goes from 0 to 1 and keep the
    first error's value until the next one (they are not cleared with the status bit).

    Semantics: cc_inv, pc_inv, iotlb_inv and p_iotlb_inv go to ``iommu.caches`` with the descriptor's
    raw fields (vtd §4.3). iec_inv and hpt_inv are valid only with ECAP.IR / ECAP.HPTS (the project
    profile has neither); this model has no such cache, so with such a profile they complete without
    effect. dev_tlb_inv (type 3) and
    p_dev_tlb_inv (type 8) send an ATS Invalidate Request from ``cfg.iommu_rid`` to SID with the
    lowest free ITag (0..31; an ITag is free again after its completion count was reached or it timed
    out), address and S copied from the descriptor (the VT-d size encoding is the ATS one, pcie §3.2).
    Type 8 always carries a PASID prefix with the descriptor's PASID (PMR=ER=0) and sets the body's
    Global Invalidate bit from GI: PCIe defines Global Invalidate as a modifier of an invalidation
    with PASID (it is reserved when PASID is not supported, and the RISC-V IOMMU, which follows PCIe,
    allows its G bit only with a PASID), so the global form keeps the prefix. Type 3 never has a
    prefix. MIP (a throttling hint) and PFSID (ECAP.DIT=0) are not used. page_grp_resp sends a PRG
    Response from ``cfg.iommu_rid`` to RID with RC and PRGI, PASID prefix iff PP=1 (PMR=ER=0);
    QW1[2] (3.x LPIG) is ignored. All TLPs leave in queue order.

    inv_wait completes when every earlier descriptor has completed, i.e. when every device-TLB
    invalidation issued before it got its completions and every earlier wait completed: at fetch when
    nothing is outstanding, else later, in queue order, from ``receive_completion``. On completion:
    SW=1 writes the 4 status-data bytes (little-endian) at the status address (bits >= HAW dropped),
    then IF=1 sets ICS.IWC through the invalidation event. A pending wait with FN=1 stops fetching
    until it completes; with FN=0 later descriptors run meanwhile. PD=1 (drain page requests): its
    ordering after the PRQ writes of page requests already received holds by construction, because
    ``PageRequestQueue.receive`` writes or refuses a request before it returns.

    ``receive_completion``: each ITag of the vector must be outstanding for the completion's requester,
    and the completion must be addressed to ``cfg.iommu_rid`` with a non-empty vector; otherwise
    FSTS.ICE is set (fault event) with IQERCD.ICESID = the completion's requester (valid ITags of the
    same message still count). An ITag is released when it has received CC completions (CC=0 means 8,
    pcie §3.5). ``timeout()``: the oldest outstanding invalidation timed out: its ITag is released,
    IQERCD.ITESID = its SID, FSTS.ITE is set (fault event), every pending wait is aborted (no status
    write, no IWC) and fetching stops until software clears ITE. Other invalidations stay outstanding.

    Not modelled: bus errors on the PRQ descriptor write and the wait status write (the spec defines no
    report for them; ``MemoryAccessError`` propagates to the caller).
"""

from __future__ import annotations

import collections
import dataclasses

from . import tlp
from .vtd import (
    INV_DESC_BYTES,
    CcInvDesc,
    DevTlbInvDesc,
    FrcdAt,
    HptInvDesc,
    IecInvDesc,
    InvDesc,
    InvDescError,
    InvWaitDesc,
    IotlbInvDesc,
    Iqei,
    PageGroupResponseDescriptor,
    PageRequestDescriptor,
    PcInvDesc,
    PDevTlbInvDesc,
    Pgtt,
    PIotlbInvDesc,
    ResponseCode,
    decode_inv_desc,
)

#: bytes of one PRQ descriptor (vtd §5.1)
PRQ_DESC_BYTES = PageRequestDescriptor.nbytes()
#: ATS invalidation tags (pcie §3.4: 5 bits)
ITAGS = 32

TTM_LEGACY, TTM_SCALABLE, TTM_ABORT = 0b00, 0b01, 0b11
LEGACY_MAX_TYPE = 0x5  # vtd §4.1, Table 26: legacy mode knows types 0x1-0x5 only


def _queue_bytes(pages_log2: int) -> int:
    return 4096 << pages_log2


# ================================================================================================
# Page request queue
# ================================================================================================


@dataclasses.dataclass
class PrqCounters:
    """What happened to every page request the PRQ received. Causes: ``'disabled'`` (GSTS.TES=0),
    ``'fault'`` (remapping-table fault), ``'overflow'`` (PRS.PRO was set), ``'full'``."""

    received: int = 0
    queued: int = 0
    auto_responded: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    dropped: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def unaccounted(self) -> int:
        """Requests with no recorded outcome: 0 when nothing was lost."""
        return self.received - self.queued - sum(self.auto_responded.values()) - sum(self.dropped.values())


#: response code of the automatic page group response per cause (vtd §5.2 Table 31)
_AUTO_RC = {
    "disabled": ResponseCode.INVALID_REQUEST,
    "fault": ResponseCode.INVALID_REQUEST,
    "overflow": ResponseCode.SUCCESS,
    "full": ResponseCode.SUCCESS,
}


class PageRequestQueue:
    """The PRQ writer (module docstring, "Page request queue")."""

    def __init__(self, iommu):
        self.iommu = iommu
        self.counters = PrqCounters()

    def receive(self, req: tlp.PageRequest) -> None:
        """Handle one received page request (or stop marker)."""
        from .iommu import Fault  # models.iommu imports this module

        iommu = self.iommu
        self.counters.received += 1
        if not iommu.field("GSTS", "tes"):
            self._not_queued(req, "disabled")
            return
        try:
            found = iommu.lookup_pasid_entry(req.requester_id, req.pasid, "page_request")
        except Fault as fault:
            if not fault.suppressed:
                iommu.record_fault(fault.reason, req.requester_id, req.pasid, req.pmr, req.address,
                                   "page_request", FrcdAt.UNTRANSLATED, req.er)
            self._not_queued(req, "fault")
            return
        if iommu.field("PRS", "pro"):
            self._not_queued(req, "overflow")
            return
        size = _queue_bytes(iommu.field("PQA", "pqs"))
        head = iommu.field("PQH", "pqh") * PRQ_DESC_BYTES
        tail = iommu.field("PQT", "pqt") * PRQ_DESC_BYTES
        if (tail + PRQ_DESC_BYTES) % size == head:
            iommu.prq_event.status_set("pro")
            self._not_queued(req, "full")
            return
        self._implicit_invalidation(found, req.address)
        desc = PageRequestDescriptor(
            pp=int(req.pasid is not None), rid=req.requester_id, pasid=req.pasid or 0, exr=req.er,
            pmr=req.pmr, rdr=req.r, wrr=req.w, lpig=req.l, prgi=req.prg_index, addr=req.address >> 12)
        iommu.mem.write((iommu.field("PQA", "pqa") << 12) + tail, desc.to_bytes())
        iommu.set_field("PQT", "pqt", (tail + PRQ_DESC_BYTES) % size // PRQ_DESC_BYTES)
        iommu.prq_event.status_set("ppr")
        self.counters.queued += 1

    def _implicit_invalidation(self, found, page: int) -> None:
        """vtd §4.7, Table 27: drop what the caches may hold for the requested page, so a permission
        upgrade needs no explicit invalidation. The core walks first-stage and pass-through PASID
        entries only (second-stage and nested ones fault 0x5B in the lookup), so Table 27's rows for
        PGTT 010 (page-in-domain) and 011 (domain) cannot occur here."""
        caches, did, pgtt = self.iommu.caches, found.did, found.pasid_entry.pgtt
        if pgtt == Pgtt.FIRST_STAGE:
            caches.invalidate_iotlb(PIotlbInvDesc.G_PAGE, did, found.pasid, addr=page, am=0, ih=0)
        elif pgtt == Pgtt.PASS_THROUGH:
            caches.invalidate_iotlb(IotlbInvDesc.G_PAGE, did, None, addr=page, am=0, ih=0)
        else:
            raise AssertionError(f"PASID entry with PGTT {pgtt:#05b} passed the page-request lookup")

    def _not_queued(self, req: tlp.PageRequest, cause: str) -> None:
        """Table 31: answer a request that needs a response, drop anything else."""
        if req.l and not req.is_stop_marker:
            rsp = tlp.PrgResponse(requester_id=self.iommu.cfg.iommu_rid, dest_id=req.requester_id,
                                  response_code=_AUTO_RC[cause], prg_index=req.prg_index, pasid=req.pasid)
            self.iommu.send_tlp(rsp.encode())
            self.counters.auto_responded[cause] += 1
        else:
            self.counters.dropped[cause] += 1


# ================================================================================================
# Invalidation queue
# ================================================================================================


@dataclasses.dataclass
class _Outstanding:
    """A device-TLB invalidation waiting for its completion(s)."""

    serial: int  # issue order
    sid: int
    received: int = 0


@dataclasses.dataclass
class _PendingWait:
    desc: InvWaitDesc
    after: int  # serial of the last device-TLB invalidation issued before this wait


class InvalidationQueue:
    """The queued invalidation engine (module docstring, "Invalidation queue")."""

    def __init__(self, iommu):
        self.iommu = iommu
        self._outstanding: dict[int, _Outstanding] = {}  # ITag -> invalidation; insertion = issue order
        self._waits: collections.deque[_PendingWait] = collections.deque()
        self._serial = 0
        #: why the last queue error (IQE) was raised, for people reading a failing test
        self.last_error = ""

    # --- views for tests and scoreboards ------------------------------------------------------
    @property
    def outstanding(self) -> dict[int, int]:
        """ITag -> SID of every device-TLB invalidation still waiting for its completion."""
        return {itag: o.sid for itag, o in self._outstanding.items()}

    @property
    def pending_waits(self) -> int:
        return len(self._waits)

    # --- fetch loop -----------------------------------------------------------------------------
    def process(self) -> None:
        """Run descriptors from IQH as far as the queue allows."""
        iommu = self.iommu
        while (iommu.field("GSTS", "qies") and not iommu.field("FSTS", "iqe")
               and not iommu.field("FSTS", "ite") and not any(w.desc.fn for w in self._waits)):
            dw = iommu.field("IQA", "dw")
            size = _queue_bytes(iommu.field("IQA", "qs"))
            head, tail = iommu.field("IQH", "qh") << 4, iommu.field("IQT", "qt") << 4
            if head == tail:
                return
            try:
                desc = self._fetch(head, tail, dw, size)
            except InvDescError as e:
                self._queue_error(e.iqei, str(e))
                return
            if not self._start(desc):
                return  # no free ITag: the descriptor stays at IQH
            iommu.set_field("IQH", "qh", ((head + (32 if dw else 16)) % size) >> 4)

    def _fetch(self, head: int, tail: int, dw: int, size: int) -> InvDesc:
        """Check the queue configuration, read and validate the descriptor at IQH (IQEI order of the
        module docstring)."""
        from .iommu import MemoryAccessError  # models.iommu imports this module

        iommu, p = self.iommu, self.iommu.profile
        ttm = iommu.root_table[1]
        if ttm == 0b10 or (ttm == TTM_SCALABLE and not p.smts) or (ttm == TTM_ABORT and not p.adms):
            raise InvDescError(Iqei.INVALID_TTM, f"latched RTADDR.TTM={ttm:02b}b is invalid for this profile")
        if not dw and ttm in (TTM_SCALABLE, TTM_ABORT):
            raise InvDescError(Iqei.INVALID_WIDTH, "IQA.DW=0 (128-bit descriptors) in scalable or abort mode")
        if dw and not (p.smts or p.adms):
            raise InvDescError(Iqei.INVALID_WIDTH, "IQA.DW=1 without ECAP.SMTS or ECAP.ADMS")
        if tail >= size:
            raise InvDescError(Iqei.INVALID_TAIL, f"IQT offset {tail:#x} is beyond the {size:#x}-byte queue")
        if dw and tail & 0x10:
            raise InvDescError(Iqei.TAIL_MISALIGNED, f"IQT offset {tail:#x} has bit 4 set with DW=1")
        width = INV_DESC_BYTES if dw else INV_DESC_BYTES // 2
        try:
            raw = iommu.mem.read((iommu.field("IQA", "iqa") << 12) + head, width)
        except MemoryAccessError as e:
            raise InvDescError(Iqei.FETCH_ERROR, f"descriptor fetch at IQH {head:#x} failed: {e}") from e
        desc = decode_inv_desc(raw.ljust(INV_DESC_BYTES, b"\0"), p)
        if ttm == TTM_LEGACY and desc.desc_type > LEGACY_MAX_TYPE:
            raise InvDescError(Iqei.INVALID_TYPE,
                               f"descriptor type {desc.desc_type:#x} is invalid in legacy mode")
        return desc

    def _queue_error(self, iqei: int, message: str) -> None:
        self.last_error = f"IQEI {int(iqei)}: {message}"
        self.iommu.set_field("IQERCD", "iqei", int(iqei))
        self.iommu.fault_event.status_set("iqe")

    # --- descriptor semantics ---------------------------------------------------------------------
    def _start(self, d: InvDesc) -> bool:
        """Run (or, for device-TLB invalidations and waits, start) one descriptor. False when it
        cannot start yet (no free ITag)."""
        iommu = self.iommu
        caches = iommu.caches
        if isinstance(d, CcInvDesc):
            caches.invalidate_context(d.g, d.did, d.sid, d.fm)
        elif isinstance(d, PcInvDesc):
            caches.invalidate_pasid(d.g, d.did, d.pasid)
        elif isinstance(d, IotlbInvDesc):
            caches.invalidate_iotlb(d.g, d.did, None, d.address, d.am, d.ih)
        elif isinstance(d, PIotlbInvDesc):
            caches.invalidate_iotlb(d.g, d.did, d.pasid, d.address, d.am, d.ih)
        elif isinstance(d, (DevTlbInvDesc, PDevTlbInvDesc)):
            return self._send_invalidation(d)
        elif isinstance(d, InvWaitDesc):
            self._waits.append(_PendingWait(d, self._serial))
            self._complete_waits()
        elif isinstance(d, PageGroupResponseDescriptor):
            rsp = tlp.PrgResponse(requester_id=iommu.cfg.iommu_rid, dest_id=d.rid, response_code=d.rc,
                                  prg_index=d.prgi, pasid=d.pasid if d.pp else None)
            iommu.send_tlp(rsp.encode())
        elif isinstance(d, (IecInvDesc, HptInvDesc)):
            pass  # no interrupt entry cache and no HPT cache in this model: nothing to invalidate
        else:
            raise AssertionError(f"decode_inv_desc returned an unknown descriptor {d!r}")
        return True

    def _send_invalidation(self, d: DevTlbInvDesc | PDevTlbInvDesc) -> bool:
        free = [i for i in range(ITAGS) if i not in self._outstanding]
        if not free:
            return False
        itag = free[0]
        self._serial += 1
        self._outstanding[itag] = _Outstanding(self._serial, d.sid)
        with_pasid = isinstance(d, PDevTlbInvDesc)
        req = tlp.AtsInvalidateRequest(
            requester_id=self.iommu.cfg.iommu_rid, dest_id=d.sid, itag=itag, address=d.address, s=d.s,
            global_invalidate=d.gi if with_pasid else 0, pasid=d.pasid if with_pasid else None)
        self.iommu.send_tlp(req.encode())
        return True

    def _complete_waits(self) -> None:
        """Complete, in queue order, every pending wait whose earlier invalidations all completed."""
        while self._waits:
            oldest = min((o.serial for o in self._outstanding.values()), default=None)
            if oldest is not None and oldest <= self._waits[0].after:
                return
            self._finish_wait(self._waits.popleft().desc)

    def _finish_wait(self, d: InvWaitDesc) -> None:
        """vtd §4.4: status write, then the completion event."""
        iommu = self.iommu
        if d.sw:
            address = d.status_address & ((1 << iommu.profile.haw) - 1)
            iommu.mem.write(address, d.status_data.to_bytes(4, "little"))
        if d.if_:
            iommu.inv_event.status_set("iwc")

    # --- device side ----------------------------------------------------------------------------
    def receive_completion(self, cpl: tlp.AtsInvalidateCompletion) -> None:
        """An ATS Invalidate Completion from a device (pcie §3.5)."""
        valid = cpl.itag_vector != 0 and cpl.dest_id == self.iommu.cfg.iommu_rid
        needed = cpl.cc or 8
        for itag in range(ITAGS):
            if not cpl.itag_vector >> itag & 1:
                continue
            o = self._outstanding.get(itag)
            if o is None or o.sid != cpl.requester_id:
                valid = False
                continue
            o.received += 1
            if o.received >= needed:
                del self._outstanding[itag]
        if not valid:
            self._status_with_sid("ice", "icesid", cpl.requester_id)
        self._complete_waits()
        self.process()

    def timeout(self) -> None:
        """The oldest outstanding device-TLB invalidation timed out (module docstring)."""
        if not self._outstanding:
            raise ValueError("no device-TLB invalidation is outstanding, nothing can time out")
        itag = next(iter(self._outstanding))
        sid = self._outstanding.pop(itag).sid
        self._waits.clear()
        self._status_with_sid("ite", "itesid", sid)

    def _status_with_sid(self, bit: str, sid_field: str, sid: int) -> None:
        """Record the source-id and set FSTS.<bit> (fault event); the first error's SID is kept."""
        if not self.iommu.field("FSTS", bit):
            self.iommu.set_field("IQERCD", sid_field, sid)
        self.iommu.fault_event.status_set(bit)
