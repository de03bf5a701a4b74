"""The pure-Python parts of the SVM system testbench (tb/svm_env.py), without a simulator: TLP
classification, routing of IOMMU TLPs to devices, the upstream queue's section rule (what may leave while
a driver section runs, and when it would break PCIe ordering), the delayed interrupt line, and the
driver's counters on the model-only platform (models.system)."""

from __future__ import annotations

import pytest

from models import tlp as T
from models.endpoint import Endpoint, JobStatus
from models.host import Mm
from models.system import System
from tb.svm_env import IrqLine, Kind, Mode, OrderingError, TbDriver, Upstream, classify, destination

A, B = 0x0100, 0x0208
PAGE = 4096


def mrd(rid=A, tag=1, at=T.AT_UNTRANSLATED):
    return T.MemRead(requester_id=rid, tag=tag, address=0x1000, length=1, first_be=0xF, last_be=0,
                     at=at).encode()


def mwr(rid=A):
    return T.MemWrite(requester_id=rid, address=0x2000, data=bytes(4), first_be=0xF, last_be=0).encode()


def page_request(rid=A, prgi=1, pasid=5, last=1):
    return T.PageRequest(requester_id=rid, address=0x3000, prg_index=prgi, l=last, r=1, w=0,
                         pasid=pasid).encode()


def inv_done(rid=A, itag=0):
    return T.AtsInvalidateCompletion(requester_id=rid, dest_id=0, cc=1, itag_vector=1 << itag).encode()


# ================================================================================================
# classification and routing
# ================================================================================================


def test_classify_every_kind():
    assert classify(mrd()) is Kind.READ
    assert classify(mrd(at=T.AT_TRANSLATION_REQUEST)) is Kind.READ  # a translation request is a read
    assert classify(mrd(at=T.AT_TRANSLATED)) is Kind.TREAD
    assert classify(mwr()) is Kind.WRITE
    assert classify(page_request()) is Kind.PRI
    stop = T.PageRequest(requester_id=A, address=0, prg_index=0, l=1, r=0, w=0, pasid=5).encode()
    assert classify(stop) is Kind.PRI
    assert classify(inv_done()) is Kind.INV_DONE
    cpl = T.Completion(requester_id=0, tag=1, completer_id=A, status=T.CPL_UR).encode()
    assert classify(cpl) is Kind.OTHER
    assert classify(b"\x01\x02\x03") is Kind.OTHER  # malformed bytes


def test_destination_is_the_routing_id():
    # completion -> its Requester ID; ID-routed messages -> Destination ID (pcie §1.4, §1.5)
    cpl = T.Completion(requester_id=B, tag=3, completer_id=0, byte_count=4, data=bytes(4)).encode()
    assert destination(cpl) == B
    rsp = T.PrgResponse(requester_id=0, dest_id=A, prg_index=7, pasid=5).encode()
    assert destination(rsp) == A
    inv = T.AtsInvalidateRequest(requester_id=0, dest_id=B, itag=2, address=0x1000, pasid=None).encode()
    assert destination(inv) == B
    # no ID routing (a memory request) or undecodable bytes: nowhere
    assert destination(mrd()) is None
    assert destination(b"\xff" * 3) is None


# ================================================================================================
# the upstream queue
# ================================================================================================


def test_upstream_keeps_emission_order_when_open():
    q = Upstream()
    items = [(A, mrd(A)), (B, mwr(B)), (A, page_request(A)), (B, inv_done(B))]
    for rid, d in items:
        q.put(rid, d)
    assert [q.take(Mode.OPEN)[:2] for _ in items] == items
    assert q.take(Mode.OPEN) is None and len(q) == 0


def test_section_lets_completions_and_page_requests_pass_reads_only():
    q = Upstream()
    q.put(A, mrd(A, tag=1))
    q.put(A, mrd(A, tag=2, at=T.AT_TRANSLATION_REQUEST))
    q.put(A, inv_done(A))
    q.put(B, mrd(B))
    q.put(A, page_request(A))
    got = q.take(Mode.SECTION)
    assert got[0] == A and got[2] is Kind.INV_DONE  # passes A's held reads (posted may pass non-posted)
    got = q.take(Mode.SECTION)
    assert got[0] == A and got[2] is Kind.PRI
    assert q.take(Mode.SECTION) is None  # reads and translation requests wait for the section's end
    assert len(q) == 3
    assert [k for _, _, k in q.held()] == [Kind.READ, Kind.READ, Kind.READ]
    assert q.take(Mode.OPEN)[1] == mrd(A, tag=1)  # and leave in order afterwards


def test_drain_lets_posted_tlps_out_and_holds_reads():
    q = Upstream()
    q.put(A, mrd(A, tag=1))
    q.put(A, mwr(A))
    q.put(B, mrd(B, at=T.AT_TRANSLATION_REQUEST))
    q.put(B, page_request(B))
    q.put(A, b"\x00\x11")  # unknown bytes count as posted
    assert q.ready(Mode.DRAIN)
    out = []
    while q.ready(Mode.DRAIN):
        out.append(q.take(Mode.DRAIN))
    assert [(rid, k) for rid, _, k in out] == [(A, Kind.WRITE), (B, Kind.PRI), (A, Kind.OTHER)]
    assert [k for _, _, k in q.held()] == [Kind.READ, Kind.READ]  # what brings answers waits
    assert not q.ready(Mode.SECTION) and q.ready(Mode.OPEN)


def test_translated_reads_go_while_draining_and_inside_sections():
    # the device holds their translation: an invalidation completion of it must wait for them
    for mode in (Mode.DRAIN, Mode.SECTION):
        q = Upstream()
        q.put(A, mrd(A, tag=1, at=T.AT_TRANSLATION_REQUEST))
        q.put(A, mrd(A, tag=2, at=T.AT_TRANSLATED))
        q.put(A, inv_done(A))
        assert [q.take(mode)[2] for _ in range(2)] == [Kind.TREAD, Kind.INV_DONE]
        assert q.take(mode) is None and q.held()[0][2] is Kind.READ


def test_section_completion_may_pass_another_devices_write():
    q = Upstream()
    q.put(B, mwr(B))
    q.put(A, inv_done(A))
    assert q.take(Mode.SECTION)[0] == A
    assert q.take(Mode.SECTION) is None


@pytest.mark.parametrize("posted", [mwr(A), b"\x00\x11"])
def test_section_refuses_to_reorder_a_devices_posted_tlps(posted):
    q = Upstream()
    q.put(A, posted)
    q.put(A, inv_done(A))
    with pytest.raises(OrderingError, match="overtake"):
        q.take(Mode.SECTION)
    q2 = Upstream()
    q2.put(A, posted)
    q2.put(A, page_request(A))
    with pytest.raises(OrderingError):
        q2.take(Mode.SECTION)


def test_section_keeps_page_requests_of_one_device_in_order():
    q = Upstream()
    q.put(A, page_request(A, prgi=1, last=0))
    q.put(A, page_request(A, prgi=1, last=1))
    q.put(A, inv_done(A))
    out = [q.take(Mode.SECTION) for _ in range(3)]
    assert [T.decode(d).l for _, d, k in out[:2]] == [0, 1] and out[2][2] is Kind.INV_DONE


# ================================================================================================
# the interrupt line
# ================================================================================================


def test_irq_line_delays_and_keeps_order():
    line = IrqLine(delay=100)
    line.raise_(10, 0xFEE0_0000, 0x42)
    line.raise_(50, 0xFEE0_0000, 0x40)
    assert not line.ready and line.pending() and line.next_due() == 110
    line.advance(109)
    assert not line.ready
    line.advance(110)
    assert list(line.ready) == [(0xFEE0_0000, 0x42)] and line.next_due() == 150
    line.advance(1000)
    assert list(line.ready) == [(0xFEE0_0000, 0x42), (0xFEE0_0000, 0x40)]
    line.ready.clear()
    assert not line.pending() and line.seen == 2
    now = IrqLine()
    now.raise_(5, 0xFEE0_0000, 0x41)
    assert list(now.ready) == [(0xFEE0_0000, 0x41)]  # no delay: ready at once


# ================================================================================================
# the counting driver on the model-only platform
# ================================================================================================


def test_tb_driver_counts_requests_faults_and_responses():
    s = System()
    ep = s.add_endpoint(Endpoint(A))
    d = TbDriver(s)
    s.attach(d)
    d.init()
    mm = Mm(s.mem, s.frames)
    mm.mmap(0x7000_0000, 3 * PAGE)
    pasid = d.bind(A, mm)
    ok = ep.dma(pasid, 0x7000_0000, 3 * PAGE, write=True, data=bytes(range(256)) * 48)
    bad = ep.dma(pasid, 0x9000_0000, 8, write=True, data=bytes(8))  # no VMA: Invalid Request
    s.run_until_idle()
    assert ok.status is JobStatus.DONE and bad.status is JobStatus.FAILED
    # the counts come from the endpoint's own counters: every page request it sent was serviced
    assert d.serviced["requests"] == ep.counters["page_requests"] == 4
    assert d.serviced["faults"] == 3
    assert d.serviced["SUCCESS"] == 3 and d.serviced["INVALID_REQUEST"] == 1
    assert d.serviced["stop_markers"] == 0


def test_completions_can_be_held_and_nothing_of_that_device_passes_them():
    q = Upstream()
    q.put(A, inv_done(A))
    q.put(A, page_request(A))
    q.put(B, page_request(B))
    q.put(A, mrd(A))
    for mode in (Mode.SECTION, Mode.DRAIN):
        assert q.ready(mode, completions=False)
    assert q.take(Mode.SECTION, completions=False)[0] == B  # another device's page request goes
    assert q.take(Mode.SECTION, completions=False) is None  # A's page request stays behind its completion
    assert q.take(Mode.OPEN, completions=False) is None  # open or not: A waits
    assert [k for _, _, k in (q.take(Mode.SECTION), q.take(Mode.SECTION))] == [Kind.INV_DONE, Kind.PRI]
    assert q.take(Mode.SECTION) is None and q.take(Mode.OPEN)[2] is Kind.READ


def test_open_keeps_each_devices_order_but_devices_interleave():
    q = Upstream()
    q.put(A, inv_done(A))
    q.put(A, mrd(A))
    q.put(B, mwr(B))
    assert q.take(Mode.OPEN, completions=False)[0] == B
    assert q.take(Mode.OPEN, completions=False) is None
    assert q.take(Mode.OPEN)[2] is Kind.INV_DONE and q.take(Mode.OPEN)[2] is Kind.READ
