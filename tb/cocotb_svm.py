"""cocotb tests of the SVM software loop on the whole IOMMU (tb/svm_env.py): endpoint agents
(models.endpoint) do DMA, ATS and PRI; the SVM driver (models.svm) binds, services page requests through
the PRQ, answers through the invalidation queue and invalidates; the golden model scores every TLP to a
device, every byte the DUT writes (DMA data, A/D updates, PRQ descriptors, wait-status words, MSIs) and,
at check points, every register and fault record. Expected results that are not the model's come from
independent sources: ``Mm.lookup`` (the process's mapping record), the data the test itself wrote, the
endpoint's config space and job outcomes, and table/descriptor fields decoded here with literal bit
positions (vtd.md §2, §4.2, §5.1).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import Counter
from pathlib import Path


from models import tlp as T
from models.endpoint import AtsParams, Endpoint, InvalidateMode, JobStatus, PasidParams, PriParams
from models.svm import SVM_FLAG_SUPERVISOR_MODE, QiError
from models.vtd import (PROFILE, InvDescError, InvWaitDesc, PcInvDesc, PIotlbInvDesc, ResponseCode,
                        decode_inv_desc)
from tb.svm_env import SvmEnv, svm_test
from tests.models.test_svm import Recorder  # a device driver's fault callback that records its calls

PAGE = 4096
VA = 0x7F12_3440_0000  # a user address, 2 MiB aligned
KVA = 0xFFFF_8880_0000_0000  # a kernel address (upper canonical half)
RTADDR = 0x020
PASID_ID, ATS_ID, PRI_ID = 0x1B, 0x0F, 0x13


def pattern(n: int, seed: int = 1) -> bytes:
    return bytes((i * 7 + seed * 13) & 0xFF for i in range(n))


def field(value: int, hi: int, lo: int) -> int:
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


def process_bytes(svm: SvmEnv, mm, va: int, n: int) -> bytes:
    """What the process sees at [va, va + n) in the DUT's memory, through ``Mm``'s mapping record."""
    out = bytearray()
    while n:
        m = mm.lookup(va)
        assert m is not None, f"{va:#x} is not mapped"
        take = min(n, m.end - va)
        out += svm.env.dut_mem.read(m.translate(va), take)
        va, n = va + take, n - take
    return bytes(out)


def ext_caps(ep: Endpoint) -> dict[int, int]:
    """Extended capability offsets: header ID[15:0], Next[31:20] from 0x100 (pcie §5)."""
    out, ptr = {}, 0x100
    while ptr:
        hdr = ep.cfg_read(ptr, 4)
        out[hdr & 0xFFFF] = ptr
        ptr = hdr >> 20
    return out


def context_entry(svm: SvmEnv, rid: int) -> int:
    """The 256-bit context entry in the DUT's memory, through RTADDR and the root entry (vtd §2.1-§2.3)."""
    mem = svm.env.dut_mem
    rta = svm.env.model.reg_read(RTADDR, 8) & ~0xFFF
    root = int.from_bytes(mem.read(rta + 16 * (rid >> 8), 16), "little")
    half = (root >> 64 if rid & 0x80 else root) & (2**64 - 1)
    assert half & 1, "root entry half not present"
    return int.from_bytes(mem.read((half & 0xFFFF_FFFF_F000) + 32 * (rid & 0x7F), 32), "little")


def pasid_entry(svm: SvmEnv, rid: int, pasid: int) -> int:
    """The 512-bit PASID entry: PASIDDIRPTR -> directory entry PASID[19:6] -> table PASID[5:0] (vtd §2.4)."""
    mem = svm.env.dut_mem
    de = mem.read64((context_entry(svm, rid) & 0xFFFF_FFFF_F000) + 8 * (pasid >> 6))
    if not de & 1:
        return 0
    return int.from_bytes(mem.read((de & 0xFFFF_FFFF_F000) + 64 * (pasid & 0x3F), 64), "little")


async def process(svm: SvmEnv, levels: int = 4):
    return await svm.new_mm(levels)


# ================================================================================================
# Binding and DMA on mapped pages (no page requests)
# ================================================================================================


@svm_test()
async def svm_bind(svm: SvmEnv):
    """bind through the driver: root/context/PASID entries (checked bit by bit in the DUT's memory),
    PASID/PRI/ATS enabled in both endpoints' config space; then DMA on pages the CPU faulted in and
    filled: an ATS device (translation requests, translated reads and writes) and one without ATS
    (untranslated requests with the PASID prefix), both on the same PASID."""
    a = svm.add_endpoint(Endpoint(0x0100))
    b = svm.add_endpoint(Endpoint(0x0288, use_ats=False, pasid=PasidParams(max_pasid_width=8)))
    mm = await process(svm)

    def cpu():
        mm.mmap(VA, 4 * PAGE)
        for i in range(4):
            mm.fault(VA + i * PAGE, write=True)
        svm.env.ref.write(mm.lookup(VA).pa, pattern(PAGE, 3))
        svm.env.ref.write(mm.lookup(VA + 3 * PAGE).pa, pattern(PAGE, 4))

    await svm.call(cpu)
    pasid = await svm.call(svm.driver.bind, a.rid, mm)
    assert pasid == 1
    assert await svm.call(svm.driver.bind, b.rid, mm) == pasid
    for agent, pdts in ((a, 7), (b, 0)):
        ce = context_entry(svm, agent.rid)
        assert field(ce, 4, 0) == 0b11101, f"{ce:#x}"  # PRE, PASIDE, DTE, FPD=0, P
        assert field(ce, 11, 9) == pdts  # directory covers the device's PASIDs (20 bits -> 7, 8 bits -> 0)
        pe = pasid_entry(svm, agent.rid, pasid)
        assert field(pe, 0, 0) == 1 and field(pe, 8, 6) == 0b001  # P, PGTT first stage
        assert field(pe, 87, 87) == 1 and field(pe, 128, 128) == 0  # PWSNP, SRE
        assert field(pe, 191, 140) << 12 == mm.pgd
        caps = ext_caps(agent.ep)
        assert agent.ep.cfg_read(caps[PASID_ID] + 6, 2) & 1  # PASID Enable
        assert agent.ep.cfg_read(caps[PRI_ID] + 4, 2) & 1  # PRI Enable
        assert agent.ep.cfg_read(caps[ATS_ID] + 6, 2) >> 15  # ATS Enable
    jobs = [
        await a.dma(pasid, VA, PAGE, write=False),
        await a.dma(pasid, VA + PAGE + 0x10, 0x300, write=True, data=pattern(0x300, 5)),
        await b.dma(pasid, VA + 2 * PAGE + 0x7, 0x201, write=True, data=pattern(0x201, 6)),
        await b.dma(pasid, VA + 3 * PAGE, PAGE, write=False),
    ]
    await svm.wait_jobs(jobs)
    for j in jobs:
        assert j.status is JobStatus.DONE, j.error
    assert jobs[0].data == pattern(PAGE, 3)
    assert jobs[3].data == pattern(PAGE, 4)
    await svm.idle()
    assert process_bytes(svm, mm, VA + PAGE + 0x10, 0x300) == pattern(0x300, 5)
    assert process_bytes(svm, mm, VA + 2 * PAGE + 0x7, 0x201) == pattern(0x201, 6)
    assert a.ep.counters["translation_requests"] >= 2 and a.ep.counters["translated_writes"] >= 1
    assert b.ep.counters["untranslated_reads"] >= 1 and b.ep.counters["translation_requests"] == 0
    assert svm.driver.serviced["requests"] == 0  # nothing needed a page request


# ================================================================================================
# Helpers for the page-request tests
# ================================================================================================

PQH, PQT, PRS = 0x0C0, 0x0C8, 0x0DC
IQH, IQT = 0x080, 0x088
FSTS, IQERCD = 0x034, 0x0B0
FSTS_IQE, FSTS_ICE, FSTS_ITE = 1 << 4, 1 << 5, 1 << 6  # vtd §1.8


def prq_descriptor(svm: SvmEnv, index: int) -> dict:
    """Descriptor ``index`` of the PRQ in the DUT's memory, decoded with the bit positions of vtd §5.1."""
    d = svm.driver
    raw = svm.env.dut_mem.read(d._prq + (32 * index) % d._prq_size, 32)
    qw0, qw1 = int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:16], "little")
    return dict(type=field(qw0, 7, 0), pp=field(qw0, 8, 8), rid=field(qw0, 31, 16), pasid=field(qw0, 51, 32),
                exr=field(qw0, 52, 52), pmr=field(qw0, 53, 53), rdr=field(qw1, 0, 0), wrr=field(qw1, 1, 1),
                lpig=field(qw1, 2, 2), prgi=field(qw1, 11, 3), addr=qw1 & ~0xFFF)


def reg(svm: SvmEnv, off: int, size: int = 4) -> int:
    """The model's value of a register (the check point compares every register with the DUT's)."""
    return svm.env.model.reg_read(off, size)


def failed(job, why: str) -> bool:
    return job.status is JobStatus.FAILED and why in (job.error or "")


def done(jobs) -> None:
    for j in jobs:
        assert j.status is JobStatus.DONE, f"job {j.va:#x}+{j.length:#x}: {j.error}"


# ================================================================================================
# The loop: demand faults, sharing, bind/unbind
# ================================================================================================


@svm_test()
async def svm_demand_fault(svm: SvmEnv):
    """A device DMAs into a freshly mapped, unpopulated buffer (and reads fresh pages): translation
    request -> no access -> page request -> PRQ descriptor + MSI -> the driver faults the page in and
    answers Success through the IQ -> PRG response -> retry -> DMA. Every descriptor is checked field
    by field against what the device asked for."""
    a = svm.add_endpoint(Endpoint(0x0100))
    mm = await process(svm)
    await svm.call(mm.mmap, VA, 8 * PAGE)
    cb = Recorder()
    pasid = await svm.call(svm.driver.bind, a.rid, mm, 0, cb.ops)
    assert all(mm.lookup(VA + i * PAGE) is None for i in range(8))
    data = pattern(5 * PAGE + 0x100, 7)
    w = await a.dma(pasid, VA + 0x80, len(data), write=True, data=data)  # pages 0..5
    r = await a.dma(pasid, VA + 6 * PAGE, 2 * PAGE, write=False)  # pages 6, 7: zero-filled on demand
    await svm.wait_jobs([w, r])
    done([w, r])
    await svm.idle()
    assert process_bytes(svm, mm, VA + 0x80, len(data)) == data
    assert r.data == bytes(2 * PAGE)
    assert all(mm.lookup(VA + i * PAGE) is not None for i in range(8))
    # one page request per page, each serviced and answered Success
    sent = a.ep.counters["page_requests"]
    assert sent == 8 and svm.driver.serviced["requests"] == 8 and svm.driver.serviced["faults"] == 8
    assert svm.driver.serviced["SUCCESS"] == 8 and a.ep.counters["prg_responses"] == 8
    assert a.received["PrgResponse"] == 8
    assert sorted(c[2] for c in cb.calls) == [VA + i * PAGE for i in range(8)]
    descs = [prq_descriptor(svm, i) for i in range(8)]
    assert all(d["type"] == 1 and d["pp"] == 1 and d["rid"] == a.rid and d["pasid"] == pasid
               and d["lpig"] == 1 and d["pmr"] == 0 and d["exr"] == 0 for d in descs), descs
    assert sorted(d["addr"] for d in descs) == [VA + i * PAGE for i in range(8)]
    assert {d["addr"]: (d["rdr"], d["wrr"]) for d in descs} == {
        VA + i * PAGE: ((0, 1) if i < 6 else (1, 0)) for i in range(8)}
    assert len({d["prgi"] for d in descs}) == 8 or a.ep.counters["page_requests"] == 8
    assert reg(svm, PQH, 8) == reg(svm, PQT, 8) == 8 * 32 and reg(svm, PRS) == 0
    assert svm.irq.seen >= 1  # the page-request event reached the driver as an MSI


@svm_test()
async def svm_sharing(svm: SvmEnv):
    """Two devices share one PASID (one address space: what one writes the other reads); two processes
    on one device (two PASIDs, the same virtual addresses, isolated data); all demand-faulted."""
    a = svm.add_endpoint(Endpoint(0x0100))
    b = svm.add_endpoint(Endpoint(0x0208, pasid=PasidParams(max_pasid_width=10)))
    mm1, mm2 = await process(svm), await process(svm, levels=5)
    await svm.call(mm1.mmap, VA, 4 * PAGE)
    await svm.call(mm2.mmap, VA, 4 * PAGE)
    p1 = await svm.call(svm.driver.bind, a.rid, mm1)
    assert await svm.call(svm.driver.bind, b.rid, mm1) == p1
    p2 = await svm.call(svm.driver.bind, a.rid, mm2)
    assert p2 != p1 and svm.driver.mm_refs(mm1) == svm.driver.mm_refs(mm2) == 1
    jobs = [await a.dma(p1, VA, 2 * PAGE, write=True, data=pattern(2 * PAGE, 1)),
            await b.dma(p1, VA + 2 * PAGE, 2 * PAGE, write=True, data=pattern(2 * PAGE, 2)),
            await a.dma(p2, VA, 4 * PAGE, write=True, data=pattern(4 * PAGE, 3))]
    await svm.wait_jobs(jobs)
    done(jobs)
    rd = [await b.dma(p1, VA, 4 * PAGE, write=False), await a.dma(p1, VA, 4 * PAGE, write=False),
          await a.dma(p2, VA, 4 * PAGE, write=False)]
    await svm.wait_jobs(rd)
    done(rd)
    assert rd[0].data == rd[1].data == pattern(2 * PAGE, 1) + pattern(2 * PAGE, 2)
    assert rd[2].data == pattern(4 * PAGE, 3)
    await svm.idle()
    assert process_bytes(svm, mm2, VA, 4 * PAGE) == pattern(4 * PAGE, 3)
    assert mm1.lookup(VA).pa != mm2.lookup(VA).pa
    assert svm.driver.serviced["faults"] == 8  # 4 pages in each address space, each faulted once


@svm_test(irq_delay=3000)
async def svm_bind_refcount(svm: SvmEnv):
    """bind/unbind with the reference count: binding a device twice counts users, the PASID entry lives
    until the last user of that device unbinds, the mm until the last PASID user goes. Unbind drains
    pending page requests (vtd §5.5): with a slow interrupt the device's requests sit in the PRQ when
    it is stopped and unbound; the drain services them, the device's stop marker follows its last
    response and is drained too, and only then the PASID entry goes."""
    a = svm.add_endpoint(Endpoint(0x0100))
    b = svm.add_endpoint(Endpoint(0x0300))
    mm = await process(svm)
    await svm.call(mm.mmap, VA, 16 * PAGE)
    p = await svm.call(svm.driver.bind, a.rid, mm)
    assert await svm.call(svm.driver.bind, a.rid, mm) == p and svm.driver.users(a.rid, p) == 2
    assert await svm.call(svm.driver.bind, b.rid, mm) == p and svm.driver.mm_refs(mm) == 1
    await svm.call(svm.driver.unbind, a.rid, p)
    assert svm.driver.users(a.rid, p) == 1 and field(pasid_entry(svm, a.rid, p), 0, 0) == 1
    j = await a.dma(p, VA, 64, write=True, data=pattern(64, 9))
    await svm.wait_jobs([j])
    done([j])

    # four page requests in the PRQ, the interrupt not yet serviced
    before = svm.irq.seen
    jobs = [await a.dma(p, VA + (1 + i) * PAGE, 64, write=True, data=pattern(64, i)) for i in range(4)]
    await svm.until(lambda: a.ep.outstanding_page_requests == 4 and svm.irq.seen > before
                    and svm.driver.serviced["requests"] == 1, "four page requests waiting in the PRQ")
    await a.stop_pasid(p)
    assert all(failed(j, "stopped") for j in jobs)
    await svm.call(svm.driver.unbind, a.rid, p)
    assert svm.driver.users(a.rid, p) == 0 and field(pasid_entry(svm, a.rid, p), 0, 0) == 0
    assert svm.driver.serviced["requests"] == 5 and svm.driver.serviced["stop_markers"] == 1
    assert a.ep.counters["stop_markers"] == 1 and a.ep.outstanding_page_requests == 0
    assert reg(svm, PQH, 8) == reg(svm, PQT, 8)
    assert svm.driver.mm_refs(mm) == 1 and p in svm.driver.pasids()  # b still uses the PASID
    jb = await b.dma(p, VA + 8 * PAGE, 64, write=True, data=pattern(64, 5))
    await svm.wait_jobs([jb])
    done([jb])
    await svm.call(svm.driver.unbind, b.rid, p)
    assert svm.driver.mm_refs(mm) == 0 and p not in svm.driver.pasids()
    assert field(pasid_entry(svm, b.rid, p), 0, 0) == 0
    late = await b.dma(p, VA + 9 * PAGE, 64, write=True, data=pattern(64, 6))
    await svm.wait_jobs([late])
    assert late.status is JobStatus.FAILED  # no PASID entry any more
    # a new binding of a new process gets the lowest free PASID again
    mm2 = await process(svm)
    await svm.call(mm2.mmap, VA, PAGE)
    assert await svm.call(svm.driver.bind, b.rid, mm2) == p
    j2 = await b.dma(p, VA, 64, write=True, data=pattern(64, 7))
    await svm.wait_jobs([j2])
    done([j2])
    await svm.idle()
    assert process_bytes(svm, mm2, VA, 64) == pattern(64, 7)


# ================================================================================================
# Response codes
# ================================================================================================


@svm_test()
async def svm_responses(svm: SvmEnv):
    """Invalid Request for an address the process never mapped and for a write to a read-only mapping
    (the device sees its access fail, the mm is untouched); Response Failure forced by a device
    driver's fault callback: that device's PRI stops (RF in its PRI status, later jobs fail) while the
    other device on the same PASID goes on."""
    a = svm.add_endpoint(Endpoint(0x0100))
    b = svm.add_endpoint(Endpoint(0x0101))
    mm = await process(svm)
    ro = VA + 0x10_0000
    never = VA + 0x20_0000

    def cpu():
        mm.mmap(VA, 4 * PAGE)
        mm.mmap(ro, PAGE, write=False)

    await svm.call(cpu)
    ca, cb = Recorder(), Recorder(force=ResponseCode.RESPONSE_FAILURE)
    p = await svm.call(svm.driver.bind, a.rid, mm, 0, ca.ops)
    assert await svm.call(svm.driver.bind, b.rid, mm, 0, cb.ops) == p
    j_never = await a.dma(p, never + 0x40, 8, write=True, data=pattern(8))
    j_ro_w = await a.dma(p, ro, 16, write=True, data=pattern(16))
    await svm.wait_jobs([j_never, j_ro_w])
    assert failed(j_never, "Invalid Request") and failed(j_ro_w, "Invalid Request")
    assert mm.lookup(never) is None and mm.lookup(ro) is None
    j_ro_r = await a.dma(p, ro, 16, write=False)
    j_ok = await a.dma(p, VA, 256, write=True, data=pattern(256, 2))
    await svm.wait_jobs([j_ro_r, j_ok])
    done([j_ro_r, j_ok])
    assert j_ro_r.data == bytes(16)
    assert [(c[2], c[4]) for c in ca.calls] == [(never, ResponseCode.INVALID_REQUEST),
                                                (ro, ResponseCode.INVALID_REQUEST),
                                                (ro, ResponseCode.SUCCESS), (VA, ResponseCode.SUCCESS)]

    # Response Failure: b's first fault is resolved, but its driver says the device is broken
    jb = await b.dma(p, VA + PAGE, 64, write=True, data=pattern(64, 3))
    await svm.wait_jobs([jb])
    assert failed(jb, "Response Failure")
    assert cb.calls == [(b.rid, p, VA + PAGE, 4, ResponseCode.SUCCESS)]  # rwxp 0100: write
    status = b.ep.cfg_read(ext_caps(b.ep)[PRI_ID] + 6, 2)
    assert status & 1  # RF (pcie §5.3)
    later = await b.dma(p, VA + 2 * PAGE, 64, write=True, data=pattern(64, 4))
    await svm.wait_jobs([later])
    assert failed(later, "PRI is not enabled")
    assert svm.driver.serviced["RESPONSE_FAILURE"] == 1
    ja = await a.dma(p, VA + 2 * PAGE, 64, write=True, data=pattern(64, 5))  # a is unaffected
    await svm.wait_jobs([ja])
    done([ja])
    await svm.idle()
    assert process_bytes(svm, mm, VA + 2 * PAGE, 64) == pattern(64, 5)


# ================================================================================================
# PRQ full and overflow under a slow driver
# ================================================================================================


@svm_test(irq_delay=12000)
async def svm_prq_overflow(svm: SvmEnv):
    """Three devices flood a 128-slot PRQ (127 usable) while the driver's interrupt is slow: the queue
    fills, PRO is set, page requests with LPIG get an automatic Success, the others (hand-made groups of
    three from a fourth device, sent while PRO is set) are dropped; the driver services what was queued,
    answers each queued group once, clears PRO once the queue is empty, and the devices retry.
    Accounting (device counters, the model's PRQ counters, the driver's counters, the TLPs the devices
    received): every page request reached the PRQ or was answered or dropped by the hardware, every LPIG
    request got exactly one response, nothing is lost. Jobs whose device gave up (4 Success responses
    that did not make the page accessible: automatic ones) run again afterwards and complete."""
    eps = [Endpoint(0x0100 + i, pri=PriParams(outstanding_page_request_capacity=1000), page_request_retries=4,
                    max_translations=4 if i == 2 else 1) for i in range(3)]
    agents = [svm.add_endpoint(e) for e in eps]
    g = svm.add_endpoint(Endpoint(0x0110))  # bound; its page request groups are written by hand
    mm = await process(svm)
    n = 60
    await svm.call(mm.mmap, VA, (3 * n + 16) * PAGE)
    p = await svm.call(svm.driver.bind, agents[0].rid, mm)
    for ag in agents[1:] + [g]:
        assert await svm.call(svm.driver.bind, ag.rid, mm) == p
    gva = VA + 3 * n * PAGE

    async def group(prgi: int, first: int) -> None:
        for k in range(3):
            await svm.inject(g.rid, T.PageRequest(requester_id=g.rid, address=gva + (first + k) * PAGE,
                                                  prg_index=prgi, l=int(k == 2), r=0, w=1, pasid=p).encode())

    await group(1, 0)  # queued before the flood, serviced: one response for the group
    await group(2, 3)
    jobs = []
    for k, ag in enumerate(agents):
        base = VA + k * n * PAGE
        jobs += [(ag, await ag.dma(p, base + i * PAGE, 32, write=True, data=pattern(32, i)), base + i * PAGE,
                  32) for i in range(n // 2)]
        jobs += [(ag, await ag.dma(p, base + i * PAGE, 2 * PAGE, write=True, data=pattern(2 * PAGE, i)),
                  base + i * PAGE, 2 * PAGE) for i in range(n // 2, n, 2)]
    await svm.until(lambda: svm.env.model.field("PRS", "pro"), "the PRQ to overflow")
    await group(3, 6)  # while PRO is set: the L=0 requests are dropped, the last one answered
    await group(4, 9)
    await svm.wait_jobs([j for _, j, _, _ in jobs], timeout=2_000_000)
    await svm.idle(timeout=1_000_000)
    c = svm.env.model.prq.counters
    sent = sum(e.counters["page_requests"] for e in eps)
    assert c.received == sent + 12 and c.unaccounted() == 0
    assert c.auto_responded["full"] + c.auto_responded["overflow"] > 0, "the PRQ never overflowed"
    assert c.dropped["overflow"] + c.dropped["full"] == 4, dict(c.dropped)  # the L=0 requests of groups 3, 4
    assert c.queued == svm.driver.serviced["requests"]
    responses = sum(ag.received["PrgResponse"] for ag in agents + [g])
    driver_answers = sum(svm.driver.serviced[rc.name] for rc in ResponseCode)
    assert responses == driver_answers + sum(c.auto_responded.values())
    for e, ag in zip(eps, agents):  # each group a device sent was answered once, nothing unexpected
        assert ag.received["PrgResponse"] == e.counters["prg_responses"] + e.counters["prg_responses_ignored"]
        assert not e.cfg_read(ext_caps(e)[PRI_ID] + 6, 2) & 2  # no UPRGI
        assert e.outstanding_page_requests == 0 and not e.queued_page_request_groups
    assert g.received["PrgResponse"] == 4  # the hand-made groups: one response each
    assert all(mm.lookup(gva + i * PAGE) for i in range(6))  # queued groups were serviced
    assert reg(svm, PRS) & 0b10 == 0 and reg(svm, PQH, 8) == reg(svm, PQT, 8)  # PRO cleared, queue empty
    svm.log.info("prq overflow: %d page requests (+12 by hand), %d queued, auto %s, dropped %s, %d jobs "
                 "failed first", sent, c.queued, dict(c.auto_responded), dict(c.dropped),
                 sum(j.status is JobStatus.FAILED for _, j, _, _ in jobs))
    for ag, j, va, length in jobs:
        if j.status is JobStatus.FAILED:
            assert "still not accessible" in j.error, j.error
    svm.irq.delay = 0
    again = [(await ag.dma(p, va, length, write=True, data=j.data), va, j.data)
             for ag, j, va, length in jobs if j.status is JobStatus.FAILED]
    await svm.wait_jobs([j for j, _, _ in again], timeout=1_000_000)
    done([j for j, _, _ in again])
    await svm.idle()
    for ag, j, va, length in jobs:
        assert process_bytes(svm, mm, va, length) == j.data


# ================================================================================================
# Invalidation: unmap while DMA is in flight
# ================================================================================================


def watch_dma(svm: SvmEnv, frames: set[int]) -> list:
    """From now on, every access of the DUT's DMA port to one of ``frames`` (4 KiB frame numbers) is
    appended to the returned list, except to frames the allocator hands out again later."""
    hits: list = []
    agent, alloc = svm.env.dma, svm.env.host.alloc
    serve, allocate = agent._serve_read, alloc.alloc

    def serve_read(b):
        hits.extend(("read", a) for a, lo, hi in b.lanes(agent.bus_bytes) if (a >> 12) in frames)
        return serve(b)

    def alloc_(size=PAGE):
        pa = allocate(size)
        frames.difference_update(range(pa >> 12, (pa + size) >> 12))
        return pa

    agent._serve_read = serve_read
    alloc.alloc = alloc_
    agent.on_write.append(lambda rec: hits.extend(("write", a) for a, d in rec.pieces if (a >> 12) in frames))
    return hits


@svm_test()
async def svm_unmap_in_flight(svm: SvmEnv):
    """munmap while two devices are in the middle of DMA jobs on the range. The ATS device has the
    unmapped pages' write translations in its ATC (it wrote them earlier) and is writing its way towards
    them, translating page by page; the device without ATS wrote its pages before (the IOTLB holds their
    translations) and is reading them back, part of its reads still to be sent. The driver clears the
    tables, sends p_iotlb + p_dev_tlb for both devices of the PASID and a wait descriptor. Once the wait
    has completed no DMA reaches the old frames (watched on the DMA port): the ATS device's ATC entries
    are gone (its writes there need a new translation, then a page request: Invalid Request), the other
    device's remaining reads find no translation (UR). Pages outside the range hold their data. Few
    enough pages that every translation is still cached at munmap (16-entry IOTLB)."""
    a = svm.add_endpoint(Endpoint(0x0100))
    n = svm.add_endpoint(Endpoint(0x0101, use_ats=False))
    devctl = n.ep.cfg_read(0x48, 2)  # PCIe cap (0x40) + 8: Max_Read_Request_Size [14:12] = 000b, 128 bytes
    n.ep.cfg_write(0x48, devctl & ~0x7000, 2)  # (more, smaller reads: some are still unsent at munmap)
    mm = await process(svm)

    def cpu():
        mm.mmap(VA, 12 * PAGE)
        for i in range(12):
            mm.fault(VA + i * PAGE, write=True)

    await svm.call(cpu)
    p = await svm.call(svm.driver.bind, a.rid, mm)
    assert await svm.call(svm.driver.bind, n.rid, mm) == p
    warm = [await a.dma(p, VA + 4 * PAGE, 4 * PAGE, write=True, data=pattern(4 * PAGE, 3)),  # ATC: 4..7 (W)
            await n.dma(p, VA + 8 * PAGE, 4 * PAGE, write=True, data=pattern(4 * PAGE, 2))]  # IOTLB: 8..11
    await svm.wait_jobs(warm)
    done(warm)
    assert all(any(e.covers(VA + i * PAGE) and e.w for e in a.ep.atc) for i in range(4, 8))
    da = pattern(8 * PAGE, 1)
    ja = await a.dma(p, VA, 8 * PAGE, write=True, data=da)
    await svm.until(lambda: ja.next_chunk >= PAGE // 128, "the ATS device past its first page", every=10)
    jn = await n.dma(p, VA + 8 * PAGE, 4 * PAGE, write=False)
    await svm.until(lambda: jn.next_chunk - jn.reads_outstanding >= 4, "the first reads answered", every=5)
    old = {mm.lookup(VA + i * PAGE).pa >> 12 for i in (4, 5, 6, 7, 10, 11)}
    d = svm.driver
    removed = await svm.call(lambda: d.munmap(mm, VA + 4 * PAGE, 4 * PAGE)
                             + d.munmap(mm, VA + 10 * PAGE, 2 * PAGE))
    assert removed == [(VA + i * PAGE, PAGE) for i in (4, 5, 6, 7, 10, 11)]
    hits = watch_dma(svm, old)
    at_munmap, answered = ja.next_chunk, jn.next_chunk - jn.reads_outstanding
    await svm.wait_jobs([ja, jn])
    await svm.idle()
    assert hits == [], f"DMA reached unmapped frames after the wait descriptor completed: {hits[:8]}"
    assert at_munmap < 4 * PAGE // 128, "the ATS device reached the unmapped pages before munmap"
    assert failed(ja, "Invalid Request"), ja.error
    assert process_bytes(svm, mm, VA, 4 * PAGE) == da[:4 * PAGE]
    assert failed(jn, "UR"), jn.error  # reads of the unmapped pages reached the IOMMU after munmap
    assert process_bytes(svm, mm, VA + 8 * PAGE, 2 * PAGE) == pattern(4 * PAGE, 2)[:2 * PAGE]
    svm.log.info("munmap with the ATS device at chunk %d/%d; %d of the other device's %d reads answered "
                 "before; %d fault records read by the driver", at_munmap, len(ja.chunks), answered,
                 len(jn.chunks), len(d.faults))


# ================================================================================================
# Supervisor PASIDs
# ================================================================================================


@svm_test()
async def svm_supervisor(svm: SvmEnv):
    """A supervisor binding (SVM_FLAG_SUPERVISOR_MODE: PASID entry SRE=1, Privileged Mode Enable in the
    device) serves privileged requests (PMR=1) on kernel pages, demand-faulted; a user request to them
    gets Invalid Request. A user binding of the same device (SRE=0) refuses privileged requests and
    serves user ones."""
    dev = svm.add_endpoint(Endpoint(0x0100, pasid=PasidParams(privileged_mode_supported=True)))
    kmm, umm = await process(svm), await process(svm)
    await svm.call(kmm.mmap, KVA, 4 * PAGE, True, False)  # user=False: kernel pages
    await svm.call(umm.mmap, VA, 4 * PAGE)
    kp = await svm.call(svm.driver.bind, dev.rid, kmm, SVM_FLAG_SUPERVISOR_MODE)
    up = await svm.call(svm.driver.bind, dev.rid, umm)
    assert kp != up
    assert field(pasid_entry(svm, dev.rid, kp), 128, 128) == 1  # SRE
    assert field(pasid_entry(svm, dev.rid, up), 128, 128) == 0
    assert dev.ep.cfg_read(ext_caps(dev.ep)[PASID_ID] + 6, 2) == 0b101  # PASID + Privileged Mode Enable
    jk = await dev.dma(kp, KVA, 2 * PAGE, write=True, data=pattern(2 * PAGE, 1), pmr=True)
    jkr = await dev.dma(kp, KVA + 2 * PAGE, 64, write=False, pmr=True)
    ju_on_k = await dev.dma(kp, KVA + 3 * PAGE, 64, write=True, data=pattern(64), pmr=False)
    jp_on_u = await dev.dma(up, VA, 64, write=True, data=pattern(64), pmr=True)
    await svm.wait_jobs([jk, jkr, ju_on_k, jp_on_u])
    done([jk, jkr])
    assert jkr.data == bytes(64)
    assert failed(ju_on_k, "Invalid Request"), ju_on_k.error
    assert jp_on_u.status is JobStatus.FAILED
    assert kmm.lookup(KVA + 3 * PAGE) is None and umm.lookup(VA) is None
    ju = await dev.dma(up, VA, 64, write=True, data=pattern(64, 5))
    await svm.wait_jobs([ju])
    done([ju])
    await svm.idle()
    assert process_bytes(svm, kmm, KVA, 2 * PAGE) == pattern(2 * PAGE, 1)
    assert process_bytes(svm, umm, VA, 64) == pattern(64, 5)
    n = reg(svm, PQT, 8) // 32
    descs = [prq_descriptor(svm, i) for i in range(n)]
    assert [d["pmr"] for d in descs if d["pasid"] == kp and d["addr"] < KVA + 3 * PAGE] == [1, 1, 1]
    assert all(d["pmr"] == 0 for d in descs if d["addr"] == KVA + 3 * PAGE)


# ================================================================================================
# Bad input: descriptors, messages, a device that never answers
# ================================================================================================


def reserved_bit(desc) -> int:
    """The lowest bit of a descriptor that is reserved under the project's profile."""
    for bit in range(256):
        if type(desc)(desc.raw | 1 << bit).reserved_violations(PROFILE):
            return bit
    raise AssertionError(f"{type(desc).__name__} has no reserved bit")


async def demand(svm: SvmEnv, agent, pasid: int, va: int, seed: int) -> None:
    """One demand-faulted write that must complete (the whole loop, IQ included, works)."""
    j = await agent.dma(pasid, va, 64, write=True, data=pattern(64, seed))
    await svm.wait_jobs([j])
    done([j])


@svm_test()
async def svm_bad_descriptors(svm: SvmEnv):
    """Bad descriptors in the invalidation queue (vtd §4.1): an invalid type (0, 0xF, 0xB), a reserved
    field set, a reserved granularity. Each sets FSTS.IQE with IQERCD.IQEI (3 invalid type, 4 reserved
    field), raises the fault event, leaves IQH on the bad descriptor and stops fetching; software puts
    a valid descriptor in its place and clears IQE, the queue goes on, and the SVM loop works again."""
    a = svm.add_endpoint(Endpoint(0x0100))
    mm = await process(svm)
    await svm.call(mm.mmap, VA, 16 * PAGE)
    p = await svm.call(svm.driver.bind, a.rid, mm)
    await demand(svm, a, p, VA, 1)
    d = svm.driver
    wait = InvWaitDesc(sw=1, status_data=0x1234, status_addr=(d._status_page + 0xF00) >> 2)
    pi = PIotlbInvDesc(g=PIotlbInvDesc.G_PASID, did=1, pasid=p)
    cases = [("type 0", bytes(32), 3), ("type 0xF", (0xF).to_bytes(32, "little"), 3),
             ("type 0xB", (0xB | 0x0 << 9).to_bytes(32, "little"), 3),
             ("p_iotlb with a reserved bit", (pi.raw | 1 << reserved_bit(pi)).to_bytes(32, "little"), 4),
             ("inv_wait with a reserved bit", (wait.raw | 1 << reserved_bit(wait)).to_bytes(32, "little"), 4),
             ("pc_inv with G=10", PcInvDesc(g=0b10, did=1, pasid=p).to_bytes(), 4)]

    def put_raw(raw: bytes) -> int:
        at = d._iq_tail
        d.mem.write(d._iq + at, raw)
        d._iq_tail = (at + 32) % d._iq_size
        d._publish()
        return at

    for k, (name, raw, iqei) in enumerate(cases):
        svm.log.info("bad descriptor: %s", name)
        try:
            decode_inv_desc(raw)
        except InvDescError as e:
            assert e.iqei == iqei, f"{name}: the model says IQEI {e.iqei}"
        else:
            raise AssertionError(f"{name}: the model accepts it")
        at = await svm.call(put_raw, raw)
        await svm.idle()
        assert reg(svm, FSTS) & FSTS_IQE, name
        assert field(reg(svm, IQERCD, 8), 3, 0) == iqei, name
        assert reg(svm, IQH, 8) == at and reg(svm, IQT, 8) == (at + 32) % d._iq_size
        await svm.check_point()  # the DUT agrees: IQE, IQEI, IQH, and the fault event's MSI

        def repair():
            w = InvWaitDesc(sw=1, status_data=0x5A00 + k, status_addr=(d._status_page + 0xF00) >> 2)
            d.mem.write(d._iq + at, w.to_bytes())
            d.p.reg_write32(FSTS, FSTS_IQE)

        await svm.call(repair)
        await svm.idle()
        assert not reg(svm, FSTS) & FSTS_IQE and reg(svm, IQH, 8) == reg(svm, IQT, 8)
        assert svm.env.dut_mem.read(d._status_page + 0xF00, 4) == (0x5A00 + k).to_bytes(4, "little")
    await demand(svm, a, p, VA + PAGE, 2)
    await svm.call(d.munmap, mm, VA, 2 * PAGE)
    assert svm.irq.seen >= len(cases)  # the fault event of each IQE reached the driver


@svm_test()
async def svm_bad_messages(svm: SvmEnv):
    """Malformed or unexpected messages from devices, between normal SVM traffic: invalidation
    completions with no invalidation outstanding, an empty ITag vector, or the wrong destination (ICE
    with ICESID, cleared by software); page requests the driver must refuse (PMR on a user PASID, a
    non-canonical address) answered Invalid Request (the device flags UPRGI: it never sent those
    groups); page requests the PASID lookup refuses (no PASID: RID_PASID 0 has no
    entry; an unbound PASID) and a page request and a stop marker from a device without a context entry
    (fault records, automatic Invalid Request / dropped); truncated and over-long page requests, one with
    the wrong routing, and an invalidate completion with the wrong routing (dropped: pcie §1.5)."""
    a = svm.add_endpoint(Endpoint(0x0100))
    x = svm.add_endpoint(Endpoint(0x0102))  # bound, but its messages are written by hand
    mm = await process(svm)
    await svm.call(mm.mmap, VA, 16 * PAGE)
    p = await svm.call(svm.driver.bind, a.rid, mm)
    assert await svm.call(svm.driver.bind, x.rid, mm) == p
    await demand(svm, a, p, VA, 1)

    def cpl(rid, itag_vector, dest=0):
        return T.AtsInvalidateCompletion(requester_id=rid, dest_id=dest, cc=1,
                                         itag_vector=itag_vector).encode()

    for name, data in (("completion, nothing outstanding", cpl(x.rid, 1 << 3)),
                       ("completion with an empty ITag vector", cpl(x.rid, 0)),
                       ("completion to another destination", cpl(x.rid, 1, dest=0x0100))):
        svm.log.info("bad message: %s", name)
        await svm.inject(x.rid, data)
        await svm.idle()
        assert reg(svm, FSTS) & FSTS_ICE, name
        assert field(reg(svm, IQERCD, 8), 63, 48) == x.rid, name
        await svm.check_point()
        await svm.call(svm.platform.reg_write32, FSTS, FSTS_ICE)
        await demand(svm, a, p, VA + PAGE, 2)  # the IQ works again (a response went through it)

    def pr(rid, address, prgi, pasid=p, pmr=0, r=1, w=0, last=1):
        return T.PageRequest(requester_id=rid, address=address, prg_index=prgi, l=last, r=r, w=w, pasid=pasid,
                             pmr=pmr).encode()

    refused = [pr(x.rid, VA + 3 * PAGE, 12, pmr=1), pr(x.rid, 0x0000_8000_0000_0000, 13)]  # queued
    ir_before = svm.driver.serviced["INVALID_REQUEST"]
    for data in refused:
        await svm.inject(x.rid, data)
    # no PASID entry (RID_PASID 0 for a request without PASID; an unbound PASID): fault, automatic IR
    await svm.inject(x.rid, pr(x.rid, VA + 2 * PAGE, 11, pasid=None))
    await svm.inject(x.rid, pr(x.rid, VA, 14, pasid=p + 7))
    stranger = 0x7700
    await svm.inject(stranger, pr(stranger, VA, 21))
    await svm.inject(stranger, pr(stranger, 0, 0, r=0))  # a stop marker
    good = pr(x.rid, VA + 4 * PAGE, 30, r=0, w=1)
    await svm.inject(x.rid, good[:-4])  # truncated
    await svm.inject(x.rid, good + bytes(4))  # payload on a message without data
    local = bytearray(good)
    local[4] = (local[4] & ~7) | 0b100  # routing "local" instead of "to the root complex": not a page request
    await svm.inject(x.rid, bytes(local))
    to_rc = bytearray(cpl(x.rid, 1))
    to_rc[0] &= ~7  # an invalidate completion routed to the root complex instead of by ID: dropped, no ICE
    await svm.inject(x.rid, bytes(to_rc))
    await svm.idle()
    assert not reg(svm, FSTS) & FSTS_ICE
    assert svm.driver.serviced["INVALID_REQUEST"] - ir_before == len(refused)
    assert x.received["PrgResponse"] == len(refused) + 2
    assert x.ep.cfg_read(ext_caps(x.ep)[PRI_ID] + 6, 2) & 2  # UPRGI: responses to groups it never sent
    assert any(f.sid == stranger for f in svm.driver.faults)
    assert any(f.sid == x.rid and f.pasid == p + 7 for f in svm.driver.faults)
    assert any(f.sid == x.rid and f.pasid is None for f in svm.driver.faults)
    auto = [T.decode(t, strict=False) for t in svm.unrouted]
    assert [(r.dest_id, r.response_code) for r in auto] == [(stranger, T.PRG_INVALID_REQUEST)]
    assert mm.lookup(VA + 2 * PAGE) is None and mm.lookup(VA + 3 * PAGE) is None
    await demand(svm, a, p, VA + 5 * PAGE, 3)


@svm_test()
async def svm_ite(svm: SvmEnv):
    """A device that never answers an ATS invalidation: munmap's p_dev_tlb to it times out in the DUT
    (IQ_TIMEOUT cycles, tb/rtl/iommu_tb.sv), which sets FSTS.ITE with IQERCD.ITESID, raises the fault
    event and aborts the pending wait (no status write); the model is told at that point
    (``timeout_dev_tlb``), the driver's munmap fails with QiError. Software clears ITE and the queue works
    again for an address space the silent device does not use; the other device's ATC was invalidated."""
    a = svm.add_endpoint(Endpoint(0x0100, invalidate_mode=InvalidateMode.NEVER))
    b = svm.add_endpoint(Endpoint(0x0101))
    mm, mm2 = await process(svm), await process(svm)
    await svm.call(mm.mmap, VA, 8 * PAGE)
    await svm.call(mm2.mmap, VA, 8 * PAGE)
    p = await svm.call(svm.driver.bind, a.rid, mm)
    assert await svm.call(svm.driver.bind, b.rid, mm) == p
    p2 = await svm.call(svm.driver.bind, b.rid, mm2)
    await demand(svm, a, p, VA, 1)
    await demand(svm, b, p, VA + PAGE, 2)
    await demand(svm, b, p2, VA, 3)
    assert b.ep.atc and a.ep.atc
    try:
        await svm.call(svm.driver.munmap, mm, VA, 2 * PAGE)
    except QiError as e:
        svm.log.info("munmap failed as expected: %s", e)
    else:
        raise AssertionError("munmap returned although device 0x0100 never answered its invalidation")
    assert svm.timeouts == 1
    assert reg(svm, FSTS) & FSTS_ITE and field(reg(svm, IQERCD, 8), 47, 32) == a.rid
    assert not any(e.base < VA + 2 * PAGE and e.pasid == p for e in b.ep.atc)  # b answered and dropped them
    await svm.check_point()
    await svm.call(svm.platform.reg_write32, FSTS, FSTS_ITE)
    await svm.call(svm.driver.munmap, mm2, VA, PAGE)  # only b uses mm2: completes
    assert reg(svm, IQH, 8) == reg(svm, IQT, 8)
    await demand(svm, b, p2, VA + 2 * PAGE, 4)


# ================================================================================================
# Random SVM regression
# ================================================================================================

SLOT = 4 * PAGE  # a process buffer
STRIDE = 16 * PAGE  # buffers are this far apart; the gaps are never mapped
NSLOTS = 10


@dataclasses.dataclass
class Slot:
    """One buffer of a process: ``state`` none (no VMA) / rw / ro, what the process holds there
    (``data``: every page reads as zeros until written), the job using it."""

    mm_index: int
    va: int
    state: str = "none"
    data: bytearray = dataclasses.field(default_factory=lambda: bytearray(SLOT))
    job: object = None

    def reset(self) -> None:
        self.data = bytearray(SLOT)


class RandomSvm:
    """Random world of svm_random: devices with different capabilities, processes (4- and 5-level) with
    buffers, bindings; jobs, CPU faults and writes, munmap/mmap, bind/unbind, stop markers, changing
    back-pressure and interrupt latency. Expected outcomes come from this bookkeeping alone: a job on
    a mapped buffer with the right access completes with the buffer's data, a job into a gap or a write
    to a read-only buffer fails with Invalid Request; at the end every buffer holds what the bookkeeping
    says."""

    DEVICES = [(0x0100, {}),
               (0x0208, dict(max_translations=4, pri=PriParams(outstanding_page_request_capacity=8),
                             pasid=PasidParams(max_pasid_width=8))),
               (0x0380, dict(ats=AtsParams(invalidate_queue_depth=2), max_translations=2)),
               (0x1010, dict(use_ats=False))]

    def __init__(self, svm: SvmEnv):
        self.svm = svm
        self.rng = svm.rng
        self.agents = [svm.add_endpoint(Endpoint(rid, **kw)) for rid, kw in self.DEVICES]
        self.mms: list = []
        self.slots: list[Slot] = []
        self.bound: dict[tuple[int, int], int] = {}  # (rid, mm index) -> PASID
        self.running: list[tuple] = []  # (job, agent, slot or None, offset, expect)
        self.counts: Counter = Counter()

    async def build(self) -> None:
        rng, svm = self.rng, self.svm
        for k in range(3):
            self.mms.append(await process(svm, levels=rng.choice((4, 5))))
            for i in range(NSLOTS):
                self.slots.append(Slot(k, VA + (k << 32) + i * STRIDE))
        for s in self.slots:
            if rng.random() < 0.8:
                await self.mmap(s)
        for a in self.agents:
            for k in rng.sample(range(3), rng.randint(1, 2)):
                await self.bind(a, k)

    # --- operations ---------------------------------------------------------------------------------
    async def mmap(self, s: Slot) -> None:
        s.state = "rw" if self.rng.random() < 0.8 else "ro"
        s.reset()
        await self.svm.call(self.mms[s.mm_index].mmap, s.va, SLOT, s.state == "rw")
        self.counts["mmap"] += 1

    async def munmap(self, s: Slot) -> None:
        await self.svm.call(self.svm.driver.munmap, self.mms[s.mm_index], s.va, SLOT)
        s.state = "none"
        s.reset()
        self.counts["munmap"] += 1

    async def cpu_touch(self, s: Slot) -> None:
        """The process faults pages in itself and writes to them (read-only buffers: the kernel fills
        them, as for a file mapping)."""
        rng, mm, ref = self.rng, self.mms[s.mm_index], self.svm.env.ref
        pages = sorted(rng.sample(range(SLOT // PAGE), rng.randint(1, SLOT // PAGE)))
        fills = {i: rng.randbytes(PAGE) for i in pages}

        def cpu():
            for i, b in fills.items():
                va = s.va + i * PAGE
                mm.fault(va, write=s.state == "rw")
                ref.write(mm.lookup(va).pa, b)

        await self.svm.call(cpu)
        for i, b in fills.items():
            s.data[i * PAGE:(i + 1) * PAGE] = b
        self.counts["cpu"] += 1

    async def bind(self, a, k: int) -> None:
        pasid = await self.svm.call(self.svm.driver.bind, a.rid, self.mms[k])
        self.bound[(a.rid, k)] = pasid
        self.counts["bind"] += 1

    async def unbind(self, a, k: int) -> None:
        pasid = self.bound.pop((a.rid, k))
        if self.rng.random() < 0.5:
            await a.stop_pasid(pasid)  # the device stops using it: a stop marker
        await self.svm.call(self.svm.driver.unbind, a.rid, pasid)
        self.counts["unbind"] += 1

    async def job(self) -> None:
        rng = self.rng
        pairs = [(a, k) for a in self.agents for k in range(3) if (a.rid, k) in self.bound]
        if not pairs:
            return
        a, k = rng.choice(pairs)
        pasid = self.bound[(a.rid, k)]
        ats = a.ep.use_ats
        free = [s for s in self.slots[k * NSLOTS:(k + 1) * NSLOTS] if s.job is None and s.state != "none"]
        if not ats:  # no page requests: only pages the CPU faulted in
            free = [s for s in free if all(self.mms[k].lookup(s.va + i * PAGE) for i in range(SLOT // PAGE))]
        bad = ats and rng.random() < 0.1
        if bad or not free:
            if not ats:
                return
            ro = None
            if rng.random() < 0.5 or not any(s.state == "ro" for s in free):
                gap = self.slots[k * NSLOTS + rng.randrange(NSLOTS)].va + SLOT
                va = gap + rng.randrange(STRIDE - SLOT - 256)
                write = rng.random() < 0.5
            else:
                ro = rng.choice([s for s in free if s.state == "ro"])
                va, write = ro.va + rng.randrange(SLOT - 256), True
            n = rng.randint(1, 256)
            job = await a.dma(pasid, va, n, write=write, data=rng.randbytes(n) if write else None)
            if ro is not None:
                ro.job = job  # the buffer stays read-only (no munmap/mmap) until the job has failed
            self.running.append((job, a, ro, 0, "fail"))
            self.counts["bad_jobs"] += 1
            return
        fresh = [s for s in free if not all(self.mms[k].lookup(s.va + i * PAGE) for i in range(SLOT // PAGE))]
        s = rng.choice(fresh if fresh and rng.random() < 0.5 else free)  # demand faults half of the time
        write = s.state == "rw" and rng.random() < 0.6
        off = rng.randrange(SLOT)
        n = rng.randint(1, min(SLOT - off, rng.choice((64, 512, SLOT))))
        data = rng.randbytes(n) if write else None
        s.job = await a.dma(pasid, s.va + off, n, write=write, data=data)
        self.running.append((s.job, a, s, off, "done"))
        self.counts["jobs"] += 1

    def retire(self) -> int:
        """Check the jobs that ended; returns how many did."""
        ended = [r for r in self.running if r[0].status is not JobStatus.RUNNING]
        for r in ended:
            job, a, s, off, expect = r
            self.running.remove(r)
            what = "write" if job.write else "read"
            where = f"device {a.rid:#06x} PASID {job.pasid} {what} {job.va:#x}+{job.length}"
            if expect == "fail":
                assert failed(job, "Invalid Request"), \
                    f"{where}: expected Invalid Request, got {job.status} {job.error}"
                if s is not None:
                    s.job = None
                continue
            assert job.status is JobStatus.DONE, f"{where}: {job.error}"
            s.job = None
            if job.write:
                s.data[off:off + job.length] = job.data
            else:
                assert job.data == bytes(s.data[off:off + job.length]), f"{where}: read other data"
        return len(ended)

    async def step(self) -> None:
        rng, svm = self.rng, self.svm
        r = rng.random() * 0.4 if rng.random() < 0.4 else rng.random()
        idle = [s for s in self.slots if s.job is None]
        if r < 0.08 and idle:
            s = rng.choice(idle)
            await (self.munmap(s) if s.state != "none" else self.mmap(s))
        elif r < 0.11 and idle:
            s = rng.choice([s for s in idle if s.state != "none"] or idle)
            if s.state != "none":
                await self.cpu_touch(s)
        elif r < 0.13:
            quiet = [(a, k) for a in self.agents for k in range(3) if (a.rid, k) in self.bound
                     and not any(j[1] is a and j[0].pasid == self.bound[(a.rid, k)] for j in self.running)]
            unbound = [(a, k) for a in self.agents for k in range(3) if (a.rid, k) not in self.bound]
            if quiet and (rng.random() < 0.5 or not unbound):
                await self.unbind(*rng.choice(quiet))
            elif unbound:
                await self.bind(*rng.choice(unbound))
        elif r < 0.16:
            busy = rng.choice((0.0, 0.1, 0.3, 0.5))
            svm.env.set_busy(busy)
            svm.irq.delay = rng.choice((0, 0, 300, 2000))
            self.counts["knobs"] += 1
        elif r < 0.18:
            await svm.check_point()
            self.counts["check_points"] += 1
        else:
            await self.job()

    async def final_check(self) -> None:
        for k, s in enumerate(self.slots):
            mm = self.mms[k // NSLOTS]
            for i in range(SLOT // PAGE):
                va = s.va + i * PAGE
                m = mm.lookup(va)
                want = bytes(s.data[i * PAGE:(i + 1) * PAGE])
                if m is None:
                    assert want == bytes(PAGE), f"{va:#x}: unmapped page with data in the bookkeeping"
                else:
                    assert process_bytes(self.svm, mm, va, PAGE) == want, f"buffer page {va:#x} differs"


def count(default: int) -> int:
    return int(os.environ.get("COUNT") or default)


@svm_test()
async def svm_random(svm: SvmEnv):
    """Random SVM regression (COUNT = DMA jobs, default 150; SEED= reproduces): four devices (ATS with one
    or several translations per request, a small PRI allocation, an invalidate queue depth of 2, one
    without ATS), three processes, jobs on demand-faulted and CPU-filled buffers, bad jobs (gaps,
    writes to read-only buffers), munmap/mmap, bind/unbind with and without stop markers, changing
    back-pressure and interrupt latency; up to six jobs at a time. Job outcomes and buffer contents
    against the test's own bookkeeping; every TLP, byte and register against the model."""
    t0 = time.perf_counter()
    w = RandomSvm(svm)
    await w.build()
    total = count(150)
    last_report = 0
    while w.counts["jobs"] + w.counts["bad_jobs"] < total:
        while len(w.running) >= 6:
            await svm.until(lambda: any(j[0].status is not JobStatus.RUNNING for j in w.running),
                            "a job to end", timeout=1_000_000)
            w.retire()
        await w.step()
        w.retire()
        issued = w.counts["jobs"] + w.counts["bad_jobs"]
        if issued % 1000 == 0 and issued != last_report:
            last_report = issued
            svm.log.info("svm_random: %d/%d jobs, %d page requests serviced, cycle %d, %.0f s", issued, total,
                         svm.driver.serviced["requests"], svm.cycles(), time.perf_counter() - t0)
    await svm.wait_jobs([j[0] for j in w.running], timeout=2_000_000)
    w.retire()
    await svm.idle(timeout=1_000_000)
    await w.final_check()
    wall = time.perf_counter() - t0
    faults = svm.driver.serviced["faults"]
    svm.log.info("svm_random: %s; %d page requests serviced, %d demand faults, %d sections, %.1f s wall "
                 "(%.1f demand faults/s)", dict(w.counts), svm.driver.serviced["requests"], faults,
                 svm.stats.sections, wall, faults / wall)
    out = os.environ.get("SVM_BENCH_OUT")
    if out:
        Path(out).write_text(json.dumps(dict(svm_faults_per_second=faults / wall, demand_faults=faults,
                                             page_requests=svm.driver.serviced["requests"], wall_s=wall,
                                             jobs=total, cycles=svm.cycles())))
