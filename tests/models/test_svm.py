"""Tests for models.svm (the SVM driver) on models.system (the model-only platform).

The whole loop runs model-only: endpoint DMA -> ATS miss -> page request -> PRQ -> MSI -> driver ->
demand fault -> page group response -> PRG response -> retry -> DMA. Results are checked against
sources independent of the driver: ``Mm.lookup`` + ``Memory`` for what the process sees, the
endpoint's config space and ATC, the golden IOMMU's caches, and the descriptors the driver writes
into the invalidation queue, decoded here with the bit positions of vtd.md §4.2/§4.5 written out as
literals (as are the table-entry bits of vtd.md §2 and the register offsets of vtd.md §1.1).
"""

from __future__ import annotations

import dataclasses

import pytest

from models import svm
from models.endpoint import AtsParams, Endpoint, JobStatus, PasidParams, PriParams
from models.host import Mm
from models.iommu import Request
from models.svm import (
    SVM_FLAG_PRIVATE_PASID,
    SVM_FLAG_SUPERVISOR_MODE,
    SVM_REQ_WRITE,
    SvmBusy,
    SvmDevOps,
    SvmDriver,
    SvmError,
    SvmNoSpace,
    SvmNotBound,
    SvmNotSupported,
)
from models.system import System
from models.vtd import PROFILE, FrcdAt, FrcdType, ResponseCode

PAGE = 4096
RID_A, RID_B = 0x0100, 0x0208
RID_UP = 0x0380  # devfn 0x80: its context entry lives in the upper context table (vtd §2.1)
VA = 0x7F12_3440_0000  # a 2 MiB aligned user address
KVA = 0xFFFF_8880_0000_0000  # a kernel (upper canonical half) address

# register offsets (vtd §1.1)
GCMD, GSTS, RTADDR, FSTS = 0x018, 0x01C, 0x020, 0x034
FECTL, FEDATA, FEADDR = 0x038, 0x03C, 0x040
IQT, IQA = 0x088, 0x090
IECTL, IEDATA, IEADDR = 0x0A0, 0x0A4, 0x0A8
PQH, PQT, PQA, PRS = 0x0C0, 0x0C8, 0x0D0, 0x0DC
PECTL, PEDATA, PEADDR = 0x0E0, 0x0E4, 0x0E8
TE, SRTP, QIE = 1 << 31, 1 << 30, 1 << 26  # GCMD / GSTS bit positions (vtd §1.5)
MSI_ADDR = 0xFEE0_0000


# ================================================================================================
# helpers
# ================================================================================================


def make(*endpoints: Endpoint, profile=PROFILE, **driver_args) -> tuple[System, SvmDriver]:
    s = System(profile)
    for ep in endpoints or (Endpoint(RID_A), Endpoint(RID_B)):
        s.add_endpoint(ep)
    d = SvmDriver(s, **driver_args)
    s.attach(d)
    d.init()
    return s, d


def new_mm(s: System, levels: int = 4) -> Mm:
    return Mm(s.mem, s.frames, levels=levels)


def rd(s: System, off: int, size: int = 4) -> int:
    return s.iommu.reg_read(off, size)


def read_va(s: System, mm: Mm, va: int, n: int) -> bytes:
    """What the process sees at [va, va + n), through the mapping record of ``Mm`` (not the IOMMU)."""
    out = bytearray()
    while n:
        m = mm.lookup(va)
        assert m is not None, f"{va:#x} is not mapped"
        take = min(n, m.end - va)
        out += s.mem.read(m.translate(va), take)
        va, n = va + take, n - take
    return bytes(out)


def pattern(n: int, seed: int = 1) -> bytes:
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


@dataclasses.dataclass
class Desc:
    """One 256-bit invalidation-queue descriptor, fields decoded per vtd §4.2 / §4.5."""

    qw0: int
    qw1: int

    @property
    def type(self) -> int:
        return (self.qw0 & 0xF) | ((self.qw0 >> 9) & 0x7) << 4

    def bits(self, qw: int, hi: int, lo: int) -> int:
        return ((self.qw0, self.qw1)[qw] >> lo) & ((1 << (hi - lo + 1)) - 1)


class IqLog:
    """Every descriptor written into the invalidation queue (found through IQA) from now on."""

    def __init__(self, s: System):
        iqa = rd(s, IQA, 8)
        self.base, self.size = iqa & ~0xFFF, PAGE << (iqa & 7)
        self.descs: list[Desc] = []
        s.mem.on_write.append(self._seen)

    def _seen(self, addr: int, data: bytes) -> None:
        if self.base <= addr < self.base + self.size:
            assert len(data) == 32, "descriptors are written whole (256 bits, IQA.DW=1)"
            self.descs.append(Desc(int.from_bytes(data[:8], "little"), int.from_bytes(data[8:16], "little")))

    def of(self, dtype: int) -> list[Desc]:
        return [d for d in self.descs if d.type == dtype]

    def waits(self) -> list[dict]:  # type 5: IF[4] SW[5] FN[6] PD[7]
        return [dict(sw=d.bits(0, 5, 5), fn=d.bits(0, 6, 6), pd=d.bits(0, 7, 7)) for d in self.of(0x5)]

    def p_iotlb(self) -> list[tuple]:  # type 6: G[5:4] DID[31:16] PASID[51:32]; AM[5:0] IH[6] ADDR[63:12]
        return [(d.bits(0, 5, 4), d.bits(0, 51, 32), d.bits(1, 5, 0), d.bits(1, 6, 6), d.qw1 & ~0xFFF)
                for d in self.of(0x6)]

    def p_dev_tlb(self) -> list[tuple]:  # type 8: SID[31:16] PASID[51:32]; S[11] ADDR[63:12]
        return [(d.bits(0, 31, 16), d.bits(0, 51, 32), d.bits(1, 11, 11), d.qw1 & ~0xFFF)
                for d in self.of(0x8)]

    def responses(self) -> list[tuple]:  # type 9: PP[4] RC[15:12] RID[31:16] PASID[51:32]; PRGI[11:3]
        return [(d.bits(0, 4, 4), d.bits(0, 15, 12), d.bits(0, 31, 16), d.bits(0, 51, 32), d.bits(1, 11, 3))
                for d in self.of(0x9)]


def ext_caps(s: System, rid: int) -> dict[int, int]:
    """Extended capability offsets of a device: header ID[15:0], Next[31:20] from 0x100 (pcie §5)."""
    out, ptr = {}, 0x100
    while ptr:
        hdr = s.cfg_read(rid, ptr, 4)
        out[hdr & 0xFFFF] = ptr
        ptr = hdr >> 20
    return out


PASID_ID, ATS_ID, PRI_ID = 0x1B, 0x0F, 0x13


def context_entry(s: System, rid: int) -> int:
    """The device's 256-bit context entry, reached through RTADDR and the root entry (vtd §2.1-§2.3)."""
    rta = rd(s, RTADDR, 8) & ~0xFFF
    root = int.from_bytes(s.mem.read(rta + 16 * (rid >> 8), 16), "little")
    half = (root >> 64 if rid & 0x80 else root) & (2**64 - 1)
    assert half & 1, "root entry half not present"
    table = half & 0xFFFF_FFFF_F000
    return int.from_bytes(s.mem.read(table + 32 * (rid & 0x7F), 32), "little")


def pasid_entry(s: System, rid: int, pasid: int) -> int:
    """The 512-bit PASID entry: PASIDDIRPTR -> directory entry PASID[19:6] -> table PASID[5:0] (vtd §2.4)."""
    directory = context_entry(s, rid) & 0xFFFF_FFFF_F000
    de = s.mem.read64(directory + 8 * (pasid >> 6))
    if not de & 1:
        return 0
    return int.from_bytes(s.mem.read((de & 0xFFFF_FFFF_F000) + 64 * (pasid & 0x3F), 64), "little")


def field(value: int, hi: int, lo: int) -> int:
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


def plant_page_request(s: System, rid: int, addr: int, *, pasid: int | None, prgi: int, lpig: int = 1,
                       rdr: int = 0, wrr: int = 1, exr: int = 0, pmr: int = 0) -> None:
    """Play the PRQ hardware: write a page_req_dsc (vtd §5.1 bit positions) at PQT, advance PQT and
    raise PPR, for requests the IOMMU's checks would never let through."""
    qw0 = 0x01 | (pasid is not None) << 8 | rid << 16 | (pasid or 0) << 32 | exr << 52 | pmr << 53
    qw1 = rdr | wrr << 1 | lpig << 2 | prgi << 3 | addr
    base, tail = rd(s, PQA, 8) & ~0xFFF, rd(s, PQT, 8)
    s.mem.write(base + tail, qw0.to_bytes(8, "little") + qw1.to_bytes(8, "little") + bytes(16))
    s.iommu.set_reg("PQT", (tail + 32) % (PAGE << (rd(s, PQA, 8) & 7)))
    s.iommu.prq_event.status_set("ppr")


class Recorder:
    """Fault callback that records its calls and may force a response code."""

    def __init__(self, force: ResponseCode | None = None):
        self.calls: list[tuple] = []
        self.force = force
        self.ops = SvmDevOps(fault_cb=self)

    def __call__(self, device, pasid, addr, rwxp, response):
        self.calls.append((device, pasid, addr, rwxp, response))
        return self.force


# ================================================================================================
# initialisation and programming
# ================================================================================================


def test_init_programs_queues_interrupts_and_root_table_with_the_handshake():
    s, d = make()
    gsts = rd(s, GSTS)
    assert gsts & TE and gsts & SRTP and gsts & QIE  # TES, RTPS, QIES
    assert field(rd(s, RTADDR, 8), 11, 10) == 0b01  # scalable mode
    assert field(rd(s, IQA, 8), 11, 11) == 1  # 256-bit descriptors
    assert rd(s, PQA, 8) & ~0xFFF and rd(s, PQH, 8) == rd(s, PQT, 8) == 0
    for ctl, addr in ((FECTL, FEADDR), (IECTL, IEADDR), (PECTL, PEADDR)):
        assert rd(s, ctl) >> 31 == 0  # unmasked
        assert rd(s, addr) == MSI_ADDR
    assert len({rd(s, FEDATA), rd(s, IEDATA), rd(s, PEDATA)}) == 3  # one vector per event source
    # GCMD: one command per write, keeping the enables GSTS reports (SRTP masked out) (vtd §1.5)
    gcmd = [v for off, v, _ in s.reg_writes if off == GCMD]
    assert gcmd == [QIE, QIE | SRTP, QIE | TE]
    order = [off for off, _, _ in s.reg_writes]
    first_gcmd = order.index(GCMD)
    assert order.index(IQA) < first_gcmd and order.index(IQT) < first_gcmd
    srtp_at = next(i for i, (off, v, _) in enumerate(s.reg_writes) if off == GCMD and v & SRTP)
    te_at = len(order) - 1 - order[::-1].index(GCMD)
    assert max(i for i, off in enumerate(order) if off == RTADDR) < srtp_at
    assert all(i < te_at for i, off in enumerate(order) if off in (PQA, FEDATA, IEDATA, PEDATA, PECTL))
    with pytest.raises(SvmError, match="already enabled"):
        SvmDriver(s).init()


def test_bind_programs_context_and_pasid_entries():
    s, d = make(Endpoint(RID_A), Endpoint(RID_UP, pasid=PasidParams(max_pasid_width=10)))
    mm4, mm5 = new_mm(s), new_mm(s, levels=5)
    p4 = d.bind(RID_A, mm4)
    p5 = d.bind(RID_UP, mm5)
    assert (p4, p5) == (1, 2)  # lowest free PASIDs, 0 being RID_PASID
    for rid, pasid, mm, pdts, fspm in ((RID_A, p4, mm4, 7, 0b00), (RID_UP, p5, mm5, 0, 0b01)):
        ce = context_entry(s, rid)
        assert field(ce, 4, 0) == 0b11101  # PRE, PASIDE, DTE, FPD=0, P
        # PDTS: 2^(PDTS+7) directory entries cover the device's PASIDs: 20-bit -> 7, 10-bit -> 0
        assert field(ce, 11, 9) == pdts
        assert field(ce, 83, 64) == 0  # RID_PASID
        pe = pasid_entry(s, rid, pasid)
        assert field(pe, 0, 0) == 1 and field(pe, 1, 1) == 0  # P, FPD
        assert field(pe, 8, 6) == 0b001  # PGTT first-stage only
        assert field(pe, 79, 64) == svm.SVM_DID
        assert field(pe, 87, 87) == 1  # PWSNP: snooped walks, so A/D can be updated
        assert field(pe, 128, 128) == 0  # SRE
        assert field(pe, 131, 130) == fspm
        assert field(pe, 191, 140) << 12 == mm.pgd
    assert root_halves(s, RID_UP) == (0, 1)


def root_halves(s: System, rid: int) -> tuple[int, int]:
    rta = rd(s, RTADDR, 8) & ~0xFFF
    root = int.from_bytes(s.mem.read(rta + 16 * (rid >> 8), 16), "little")
    return root & 1, (root >> 64) & 1


def test_device_is_enabled_pasid_then_pri_then_ats():
    s = System()
    ep = s.add_endpoint(Endpoint(RID_A, pri=PriParams(outstanding_page_request_capacity=500)))
    d = SvmDriver(s)
    s.attach(d)
    d.init()
    writes = []
    cfg_write = s.cfg_write
    def logged(dev, off, size, value):
        writes.append((dev, off, value))
        cfg_write(dev, off, size, value)

    s.cfg_write = logged
    d.bind(RID_A, new_mm(s))
    caps = ext_caps(s, RID_A)
    pasid_ctl, ats_ctl = caps[PASID_ID] + 6, caps[ATS_ID] + 6
    pri_ctl, pri_alloc = caps[PRI_ID] + 4, caps[PRI_ID] + 0x0C
    assert writes == [
        (RID_A, pasid_ctl, 0x0001),  # PASID Enable (no privileged mode: not supported)
        (RID_A, pri_ctl, 0x0002),  # PRI Reset while disabled
        (RID_A, pri_alloc, 128),  # min(capacity 500, PRQ depth 128)
        (RID_A, pri_ctl, 0x0001),  # PRI Enable
        (RID_A, ats_ctl, 0x8000),  # ATS Enable with STU 0
    ]
    assert ep.violations == []
    # a second PASID on the same device leaves config space alone
    writes.clear()
    d.bind(RID_A, new_mm(s))
    assert writes == []


# ================================================================================================
# the SVM loop
# ================================================================================================


def test_dma_write_into_unpopulated_buffer_demand_faults_every_page():
    s, d = make()
    ep = s.endpoints[RID_A]
    mm = new_mm(s)
    mm.mmap(VA, 3 * PAGE)
    iq = IqLog(s)
    cb = Recorder()
    pasid = d.bind(RID_A, mm, ops=cb.ops)
    assert all(mm.lookup(VA + i * PAGE) is None for i in range(3))
    data = pattern(2 * PAGE + 0x100)
    job = ep.dma(pasid, VA + 0x80, len(data), write=True, data=data)
    s.run_until_idle()
    assert job.status is JobStatus.DONE, job.error
    assert read_va(s, mm, VA + 0x80, len(data)) == data
    assert all(mm.dirty(VA + i * PAGE) for i in range(3))  # the IOMMU set D in the process's tables
    # one page request per page, each answered Success with the request's PASID, RID and PRG index
    assert ep.counters["page_requests"] == 3 and ep.counters["prg_responses"] == 3
    responses = iq.responses()
    assert [(pp, rc, rid, p) for pp, rc, rid, p, _ in responses] == [(1, 0x0, RID_A, pasid)] * 3
    assert len({prgi for *_, prgi in responses}) == 3
    assert [c[:4] for c in cb.calls] == [(RID_A, pasid, VA + i * PAGE, SVM_REQ_WRITE) for i in range(3)]
    assert all(c[4] == ResponseCode.SUCCESS for c in cb.calls)
    assert (MSI_ADDR, rd(s, PEDATA)) in s.msis
    assert rd(s, PQH, 8) == rd(s, PQT, 8) and rd(s, PRS) == 0
    assert ep.errors == [] and ep.violations == []


def test_dma_read_sees_cpu_data_and_zero_filled_new_pages():
    s, d = make()
    ep = s.endpoints[RID_A]
    mm = new_mm(s)
    mm.mmap(VA, 2 * PAGE)
    mm.fault(VA, write=True)  # the CPU touches the first page and writes to it
    s.mem.write(mm.lookup(VA).pa, pattern(PAGE, seed=3))
    pasid = d.bind(RID_A, mm)
    job = ep.dma(pasid, VA, 2 * PAGE, write=False)
    s.run_until_idle()
    assert job.status is JobStatus.DONE, job.error
    assert job.data == pattern(PAGE, seed=3) + bytes(PAGE)
    assert mm.lookup(VA + PAGE) is not None  # read-faulted in
    assert ep.counters["page_requests"] == 1
    assert mm.accessed(VA + PAGE) and not mm.dirty(VA + PAGE)  # a read never sets D (NW=1, vtd §3.5)


def test_two_devices_share_one_pasid():
    s, d = make()
    mm = new_mm(s)
    mm.mmap(VA, 4 * PAGE)
    pa = d.bind(RID_A, mm)
    pb = d.bind(RID_B, mm)
    assert pa == pb == 1
    ja = s.endpoints[RID_A].dma(pa, VA, PAGE, write=True, data=pattern(PAGE, 1))
    jb = s.endpoints[RID_B].dma(pb, VA + 2 * PAGE, PAGE, write=True, data=pattern(PAGE, 2))
    s.run_until_idle()
    assert ja.status is jb.status is JobStatus.DONE
    assert read_va(s, mm, VA, PAGE) == pattern(PAGE, 1)
    assert read_va(s, mm, VA + 2 * PAGE, PAGE) == pattern(PAGE, 2)
    # B reads what A wrote, through the same address space
    jr = s.endpoints[RID_B].dma(pb, VA, PAGE, write=False)
    s.run_until_idle()
    assert jr.data == pattern(PAGE, 1)


def test_two_processes_on_one_device_are_isolated():
    s, d = make()
    ep = s.endpoints[RID_A]
    mm1, mm2 = new_mm(s), new_mm(s)
    for mm in (mm1, mm2):
        mm.mmap(VA, PAGE)
    p1, p2 = d.bind(RID_A, mm1), d.bind(RID_A, mm2)
    assert p1 != p2
    j1 = ep.dma(p1, VA, 64, write=True, data=pattern(64, 1))
    j2 = ep.dma(p2, VA, 64, write=True, data=pattern(64, 2))
    s.run_until_idle()
    assert j1.status is j2.status is JobStatus.DONE
    assert mm1.lookup(VA).pa != mm2.lookup(VA).pa
    assert read_va(s, mm1, VA, 64) == pattern(64, 1)
    assert read_va(s, mm2, VA, 64) == pattern(64, 2)


# ================================================================================================
# reference counting
# ================================================================================================


def test_users_mm_reference_and_pasid_reuse():
    s, d = make()
    mm = new_mm(s)
    mm.mmap(VA, PAGE)
    cb = Recorder()
    pasid = d.bind(RID_A, mm, ops=cb.ops)
    assert d.bind(RID_A, mm, ops=cb.ops) == pasid
    assert d.users(RID_A, pasid) == 2
    with pytest.raises(SvmBusy):
        d.bind(RID_A, mm, ops=Recorder().ops)
    assert d.bind(RID_B, mm) == pasid
    assert d.mm_refs(mm) == 1
    private = d.bind(RID_A, mm, flags=SVM_FLAG_PRIVATE_PASID)
    assert private != pasid and d.mm_refs(mm) == 2
    d.unbind(RID_A, private)
    assert d.mm_refs(mm) == 1

    d.unbind(RID_A, pasid)
    assert d.users(RID_A, pasid) == 1 and field(pasid_entry(s, RID_A, pasid), 0, 0) == 1
    d.unbind(RID_A, pasid)
    assert d.users(RID_A, pasid) == 0 and pasid_entry(s, RID_A, pasid) == 0
    assert d.mm_refs(mm) == 1  # B still holds the address space
    job = s.endpoints[RID_B].dma(pasid, VA, 64, write=True, data=pattern(64))
    s.run_until_idle()
    assert job.status is JobStatus.DONE and read_va(s, mm, VA, 64) == pattern(64)
    # A no longer reaches it: its PASID entry is gone, its page request gets an Invalid Request
    job = s.endpoints[RID_A].dma(pasid, VA + 64, 64, write=True, data=pattern(64, 9))
    s.run_until_idle()
    assert job.status is JobStatus.FAILED and "Invalid Request" in job.error
    assert read_va(s, mm, VA + 64, 64) == bytes(64)

    d.unbind(RID_B, pasid)
    assert d.mm_refs(mm) == 0 and d.pasids() == {}
    with pytest.raises(SvmNotBound):
        d.unbind(RID_B, pasid)
    other = new_mm(s)
    assert d.bind(RID_B, other) == pasid  # the freed PASID is handed out again
    assert field(pasid_entry(s, RID_B, pasid), 191, 140) << 12 == other.pgd


def test_unbind_drains_outstanding_page_requests():
    s, d = make()
    ep = s.endpoints[RID_A]
    mm = new_mm(s)
    mm.mmap(VA, PAGE)
    pasid = d.bind(RID_A, mm)
    iq = IqLog(s)
    job = ep.dma(pasid, VA, 64, write=True, data=pattern(64))
    while not ep.outstanding_page_requests:  # the page request is on its way to the IOMMU
        assert s.step()
    ep.stop_pasid(pasid)  # the device driver quiesces the device first
    d.unbind(RID_A, pasid)
    # unbind returned only after the request was queued, serviced and answered
    assert ep.outstanding_page_requests == 0 and ep.counters["prg_responses"] == 1
    assert [rc for _, rc, *_ in iq.responses()] == [0x0]
    assert job.status is JobStatus.FAILED  # stopped by the device driver
    # drain rounds (vtd §5.5): wait FN=1, p_iotlb, p_dev_tlb, wait PD=1 SW=1. The request arrives
    # during the first round and is answered (response + wait), so a second round pushes that
    # response to the device; then the teardown
    drain, response, teardown = [0x5, 0x6, 0x8, 0x5], [0x9, 0x5], [0x7, 0x6, 0x8, 0x5]
    assert [x.type for x in iq.descs] == drain + response + drain + teardown
    waits = iq.waits()
    assert [w["fn"] for w in waits] == [1, 0, 0, 1, 0, 0]
    assert waits[1] == waits[4] == dict(sw=1, fn=0, pd=1) and waits[2] == dict(sw=1, fn=0, pd=0)
    # teardown: PASID-selective pc, p_iotlb (G=10) and the PASID's whole device TLB (S=1, all ones)
    assert iq.p_iotlb()[-1][:2] == (0b10, pasid)
    assert iq.p_dev_tlb()[-1] == (RID_A, pasid, 1, 0x7FFF_FFFF_FFFF_F000)
    s.run_until_idle()
    assert ep.counters["stop_markers"] == 1 and rd(s, PQH, 8) == rd(s, PQT, 8)


# ================================================================================================
# responses
# ================================================================================================


def test_invalid_request_for_unmapped_and_read_only_addresses():
    s, d = make()
    ep = s.endpoints[RID_A]
    mm = new_mm(s)
    mm.mmap(VA, PAGE, write=False)
    cb = Recorder()
    pasid = d.bind(RID_A, mm, ops=cb.ops)
    iq = IqLog(s)
    never = VA + 0x10_0000
    j1 = ep.dma(pasid, never, 64, write=True, data=pattern(64))
    s.run_until_idle()
    j2 = ep.dma(pasid, VA, 64, write=True, data=pattern(64))
    s.run_until_idle()
    for job in (j1, j2):
        assert job.status is JobStatus.FAILED and "Invalid Request" in job.error
    assert [rc for _, rc, *_ in iq.responses()] == [0x1, 0x1]
    assert [(c[2], c[4]) for c in cb.calls] == [(never, ResponseCode.INVALID_REQUEST),
                                                (VA, ResponseCode.INVALID_REQUEST)]
    assert mm.lookup(never) is None and mm.lookup(VA) is None
    # a read of the read-only page is fine
    j3 = ep.dma(pasid, VA, 64, write=False)
    s.run_until_idle()
    assert j3.status is JobStatus.DONE


def test_requests_the_driver_cannot_attribute_get_invalid_request():
    s, d = make()
    mm = new_mm(s)
    mm.mmap(VA, 2 * PAGE)
    pasid = d.bind(RID_A, mm)
    iq = IqLog(s)
    plant_page_request(s, RID_A, VA, pasid=None, prgi=1)  # no PASID
    plant_page_request(s, RID_A, VA, pasid=0x77, prgi=2)  # unknown PASID
    plant_page_request(s, RID_B, VA, pasid=pasid, prgi=3)  # device not bound to the PASID
    plant_page_request(s, RID_A, VA, pasid=pasid, prgi=4, rdr=1, wrr=0, exr=1)  # execute
    plant_page_request(s, RID_A, 0x0000_8000_0000_0000, pasid=pasid, prgi=5)  # non-canonical
    plant_page_request(s, RID_A, VA, pasid=pasid, prgi=6, pmr=1)  # supervisor on a user PASID
    plant_page_request(s, RID_A, 0, pasid=pasid, prgi=0, wrr=0)  # stop marker: no response
    # a group of two: the first page is outside any VMA, the second fine -> one IR for the group
    plant_page_request(s, RID_A, VA + 0x10_0000, pasid=pasid, prgi=7, lpig=0)
    plant_page_request(s, RID_A, VA + PAGE, pasid=pasid, prgi=7, lpig=1)
    s.run_until_idle()
    assert iq.responses() == [
        (0, 0x1, RID_A, 0, 1),
        (1, 0x1, RID_A, 0x77, 2),
        (1, 0x1, RID_B, pasid, 3),
        (1, 0x1, RID_A, pasid, 4),
        (1, 0x1, RID_A, pasid, 5),
        (1, 0x1, RID_A, pasid, 6),
        (1, 0x1, RID_A, pasid, 7),
    ]
    assert mm.lookup(VA) is None  # nothing was faulted for the rejected requests
    assert mm.lookup(VA + PAGE) is not None  # the good page of the group was
    assert rd(s, PQH, 8) == rd(s, PQT, 8)


def test_response_failure_from_the_fault_callback_disables_pri():
    s, d = make()
    ep = s.endpoints[RID_A]
    mm = new_mm(s)
    mm.mmap(VA, 2 * PAGE)
    cb = Recorder(force=ResponseCode.RESPONSE_FAILURE)
    pasid = d.bind(RID_A, mm, ops=cb.ops)
    iq = IqLog(s)
    job = ep.dma(pasid, VA, 64, write=True, data=pattern(64))
    s.run_until_idle()
    assert cb.calls == [(RID_A, pasid, VA, SVM_REQ_WRITE, ResponseCode.SUCCESS)]
    assert [rc for _, rc, *_ in iq.responses()] == [0xF]
    assert job.status is JobStatus.FAILED and "Response Failure" in job.error
    pri_status = s.cfg_read(RID_A, ext_caps(s, RID_A)[PRI_ID] + 6, 2)
    assert pri_status & 1  # RF (pcie §5.3)
    later = ep.dma(pasid, VA + PAGE, 64, write=True, data=pattern(64))
    s.run_until_idle()
    assert later.status is JobStatus.FAILED and "PRI is not enabled" in later.error


def test_supervisor_pasid_serves_privileged_requests_only():
    s, d = make(Endpoint(RID_A, pasid=PasidParams(privileged_mode_supported=True)))
    ep = s.endpoints[RID_A]
    kmm = new_mm(s)
    kmm.mmap(KVA, 2 * PAGE, user=False)
    pasid = d.bind(RID_A, kmm, flags=SVM_FLAG_SUPERVISOR_MODE)
    assert field(pasid_entry(s, RID_A, pasid), 128, 128) == 1  # SRE
    assert s.cfg_read(RID_A, ext_caps(s, RID_A)[PASID_ID] + 6, 2) == 0b101  # PASID + Privileged Mode Enable
    job = ep.dma(pasid, KVA, 64, write=True, data=pattern(64), pmr=True)
    s.run_until_idle()
    assert job.status is JobStatus.DONE, job.error
    assert read_va(s, kmm, KVA, 64) == pattern(64)
    user = ep.dma(pasid, KVA + PAGE, 64, write=True, data=pattern(64), pmr=False)
    s.run_until_idle()
    assert user.status is JobStatus.FAILED and "Invalid Request" in user.error
    assert kmm.lookup(KVA + PAGE) is None
    # the same device with a user address space: privileged requests are refused
    mm = new_mm(s)
    mm.mmap(VA, PAGE)
    upasid = d.bind(RID_A, mm)
    assert upasid != pasid and field(pasid_entry(s, RID_A, upasid), 128, 128) == 0
    priv = ep.dma(upasid, VA, 64, write=True, data=pattern(64), pmr=True)
    s.run_until_idle()
    assert priv.status is JobStatus.FAILED and mm.lookup(VA) is None
    with pytest.raises(SvmError, match="kernel address space"):
        d.bind(RID_A, mm, flags=SVM_FLAG_SUPERVISOR_MODE)


def test_supervisor_binding_needs_srs_and_a_privileged_device():
    s, d = make(Endpoint(RID_A), profile=dataclasses.replace(PROFILE, srs=0))
    with pytest.raises(SvmNotSupported, match="SRS"):
        d.bind(RID_A, new_mm(s), flags=SVM_FLAG_SUPERVISOR_MODE)
    s, d = make(Endpoint(RID_A))
    with pytest.raises(SvmNotSupported, match="Privileged Mode"):
        d.bind(RID_A, new_mm(s), flags=SVM_FLAG_SUPERVISOR_MODE)
    assert d.pasids() == {}


def test_prq_overflow_is_recovered_once_the_queue_is_empty():
    # allocation = min(capacity, PRQ depth 128): 128 one-page groups can be outstanding, the PRQ holds
    # 127 (vtd §5.2 step 3: at most N-1 entries), so the 128th request overflows
    s, d = make(Endpoint(RID_A, pri=PriParams(outstanding_page_request_capacity=1000)))
    ep = s.endpoints[RID_A]
    mm = new_mm(s)
    mm.mmap(VA, 128 * PAGE)
    pasid = d.bind(RID_A, mm)
    s.attach(None)  # interrupts are held back while the device floods the queue
    jobs = [ep.dma(pasid, VA + i * PAGE, 8, write=True, data=pattern(8, i)) for i in range(128)]
    s.run_until_idle()
    assert rd(s, PRS) == 0b11  # PRO and PPR
    s.attach(d)
    s.run_until_idle()
    assert rd(s, PRS) == 0 and rd(s, PQH, 8) == rd(s, PQT, 8)  # PRO cleared: the queue was empty
    done = [i for i, j in enumerate(jobs) if j.status is JobStatus.DONE]
    assert len(done) == 127  # the overflowing request got automatic Successes until it gave up
    assert all(read_va(s, mm, VA + i * PAGE, 8) == pattern(8, i) for i in done)
    retry = ep.dma(pasid, VA + 127 * PAGE, 8, write=True, data=pattern(8, 127))
    s.run_until_idle()
    assert retry.status is JobStatus.DONE and read_va(s, mm, VA + 127 * PAGE, 8) == pattern(8, 127)


# ================================================================================================
# invalidation
# ================================================================================================


def populate(s: System, rid: int, pasid: int, va: int, n: int) -> None:
    job = s.endpoints[rid].dma(pasid, va, n, write=True, data=pattern(n))
    s.run_until_idle()
    assert job.status is JobStatus.DONE, job.error


def iotlb_pages(s: System, pasid: int, lo: int, hi: int) -> list:
    return [k for k in s.iommu.caches.iotlb if k[1] == pasid and k[2] < hi and lo < k[2] + k[3]]


def test_munmap_invalidates_in_one_batch_and_the_old_translation_is_gone():
    s, d = make()
    mm = new_mm(s)
    mm.mmap(VA, 8 * PAGE)
    pasid = d.bind(RID_A, mm)
    assert d.bind(RID_B, mm) == pasid
    populate(s, RID_A, pasid, VA, 8 * PAGE)
    populate(s, RID_B, pasid, VA, 4 * PAGE)
    lo, hi = VA, VA + 4 * PAGE
    assert iotlb_pages(s, pasid, lo, hi)  # something to invalidate: the IOTLB and both ATCs hold it
    assert all(any(e.overlaps(lo, hi - lo) for e in s.endpoints[rid].atc) for rid in (RID_A, RID_B))
    iq = IqLog(s)
    iqt_before = sum(off == IQT for off, _, _ in s.reg_writes)
    removed = d.munmap(mm, VA, 4 * PAGE)
    assert removed == [(VA + i * PAGE, PAGE) for i in range(4)]
    # one p_iotlb page-in-PASID with AM=2 (16 KiB), one p_dev_tlb per device with the 16 KiB range
    # encoding (S=1, bit 12 set, bit 13 clear: pcie §3.2), one wait: published by one IQT write
    assert iq.p_iotlb() == [(0b11, pasid, 2, 0, VA)]
    assert sorted(iq.p_dev_tlb()) == [(RID_A, pasid, 1, VA | 0x1000), (RID_B, pasid, 1, VA | 0x1000)]
    assert iq.waits() == [dict(sw=1, fn=0, pd=0)] and len(iq.descs) == 4
    assert sum(off == IQT for off, _, _ in s.reg_writes) - iqt_before == 1
    # nothing of the old mapping survives: no IOTLB entry, no ATC entry, and no legal alternative
    assert iotlb_pages(s, pasid, lo, hi) == []
    assert not any(e.overlaps(lo, hi - lo) for rid in (RID_A, RID_B) for e in s.endpoints[rid].atc)
    for va in range(lo, hi, PAGE):
        t = s.iommu.translate(Request("translation", RID_A, va, pasid=pasid))
        assert all(not r and not w for *_, r, w, _u in t.outcomes())
    job = s.endpoints[RID_B].dma(pasid, VA, 64, write=True, data=pattern(64))
    s.run_until_idle()
    assert job.status is JobStatus.FAILED and "Invalid Request" in job.error
    # pages outside the range are untouched and still reachable
    assert read_va(s, mm, VA + 4 * PAGE, PAGE) == pattern(8 * PAGE)[4 * PAGE:5 * PAGE]


def test_munmap_splits_an_unaligned_range_into_aligned_chunks():
    s, d = make(Endpoint(RID_A))
    mm = new_mm(s)
    mm.mmap(VA, 8 * PAGE)
    pasid = d.bind(RID_A, mm)
    iq = IqLog(s)
    d.munmap(mm, VA + PAGE, 6 * PAGE)  # pages 1..6: 4K @1, 8K @2, 8K @4, 4K @6
    assert iq.p_iotlb() == [(0b11, pasid, 0, 0, VA + PAGE), (0b11, pasid, 1, 0, VA + 2 * PAGE),
                            (0b11, pasid, 1, 0, VA + 4 * PAGE), (0b11, pasid, 0, 0, VA + 6 * PAGE)]
    # device TLB: S=0 for 4 KiB; 8 KiB is S=1 with bit 12 clear (pcie §3.2 table)
    assert iq.p_dev_tlb() == [(RID_A, pasid, 0, VA + PAGE), (RID_A, pasid, 1, VA + 2 * PAGE),
                              (RID_A, pasid, 1, VA + 4 * PAGE), (RID_A, pasid, 0, VA + 6 * PAGE)]
    assert len(iq.waits()) == 1
    iq.descs.clear()
    d.munmap(new_mm(s), VA, PAGE)  # an address space nobody bound: nothing to invalidate
    assert iq.descs == []


def test_page_faults_wait_until_the_munmap_flush_is_complete():
    s, d = make()
    mm = new_mm(s)
    mm.mmap(VA, 2 * PAGE)
    seen_stale = []
    cb = SvmDevOps(fault_cb=lambda dev, pasid, addr, rwxp, rc: seen_stale.append(
        any(e.overlaps(VA, PAGE) for ep in s.endpoints.values() for e in ep.atc)))
    pasid = d.bind(RID_A, mm, ops=cb)
    assert d.bind(RID_B, mm, ops=cb) == pasid
    populate(s, RID_B, pasid, VA, PAGE)  # B caches a translation of page 0
    seen_stale.clear()
    job = s.endpoints[RID_A].dma(pasid, VA + PAGE, 64, write=True, data=pattern(64))
    msis = len(s.msis)
    while len(s.msis) == msis:  # run until A's page request raised the PRQ interrupt
        assert s.step()
    d.munmap(mm, VA, PAGE)  # the interrupt is delivered while the flush is in progress
    assert seen_stale == [False]  # serviced only after no device held the old translation
    s.run_until_idle()
    assert job.status is JobStatus.DONE


def test_fault_event_records_are_read_and_cleared():
    s, d = make(Endpoint(RID_A, use_ats=False))
    mm = new_mm(s)
    mm.mmap(VA, PAGE)
    pasid = d.bind(RID_A, mm)
    s.endpoints[RID_A].dma(pasid, VA + 0x40, 8, write=True, data=pattern(8))  # untranslated, not present
    s.run_until_idle()
    assert d.faults == [svm.FaultRecord(reason=0x71, sid=RID_A, pasid=pasid, addr=VA, kind=FrcdType.WRITE,
                                        at=FrcdAt.UNTRANSLATED, priv=False)]
    assert rd(s, FSTS) & 0b11 == 0  # PPF (no F left) and PFO clear


# ================================================================================================
# capability checks
# ================================================================================================


@pytest.mark.parametrize(
    "endpoint, match",
    [
        (Endpoint(RID_A, pri=None), "no PRI"),
        (Endpoint(RID_A, pasid=None), "no PASID"),
        (Endpoint(RID_A, ats=None), "no ATS"),
        (Endpoint(RID_A, ats=AtsParams(page_aligned_request=False)), "Page Aligned"),
        (Endpoint(RID_A, pri=PriParams(prg_response_pasid_required=False)), "PASID Required"),
    ],
)
def test_device_capability_checks(endpoint, match):
    s, d = make(endpoint)
    with pytest.raises(SvmNotSupported, match=match):
        d.bind(RID_A, new_mm(s))
    assert d.pasids() == {} and endpoint.violations == []
    assert all(s.cfg_read(RID_A, off + 6, 2) == 0 for cid, off in ext_caps(s, RID_A).items() if cid != PRI_ID)


def test_pasid_width_limits():
    s, d = make(Endpoint(RID_A, pasid=PasidParams(max_pasid_width=1)), Endpoint(RID_B))
    mm1, mm2, mm3 = new_mm(s), new_mm(s), new_mm(s)
    assert d.bind(RID_A, mm1) == 1  # PASIDs 0 and 1 only
    with pytest.raises(SvmNoSpace):
        d.bind(RID_A, mm2)
    assert d.bind(RID_B, mm3) == 2
    with pytest.raises(SvmNoSpace, match="beyond"):
        d.bind(RID_A, mm3)  # mm3's PASID does not fit the narrow device
    assert d.pasids() == {1: mm1, 2: mm3} and d.mm_refs(mm2) == 0
    s, d = make(Endpoint(RID_A, pasid=PasidParams(max_pasid_width=0)))
    with pytest.raises(SvmNoSpace):
        d.bind(RID_A, new_mm(s))


def test_device_without_end_end_prefixes_is_refused():
    s, d = make(Endpoint(RID_A))
    pcie = s.cfg_read(RID_A, 0x34, 1)  # capability pointer
    while s.cfg_read(RID_A, pcie, 1) != 0x10:  # PCI Express capability ID
        pcie = s.cfg_read(RID_A, pcie + 1, 1)
    cfg_read = s.cfg_read
    # Device Capabilities 2 (PCIe cap + 0x24) with End-End TLP Prefix Supported (bit 21) cleared
    s.cfg_read = lambda dev, off, size: cfg_read(dev, off, size) & ~(1 << 21 if off == pcie + 0x24 else 0)
    with pytest.raises(SvmNotSupported, match="End-End"):
        d.bind(RID_A, new_mm(s))


@pytest.mark.parametrize("change, levels, match", [
    (dict(prs=0, pds=0), 4, "PRS"),
    (dict(fs5lp=0), 5, "FS5LP"),
    (dict(fs1gp=0), 4, "FS1GP"),
])
def test_iommu_capability_checks(change, levels, match):
    s, d = make(Endpoint(RID_A), profile=dataclasses.replace(PROFILE, **change))
    with pytest.raises(SvmNotSupported, match=match):
        d.bind(RID_A, new_mm(s, levels=levels))
    assert d.pasids() == {}
