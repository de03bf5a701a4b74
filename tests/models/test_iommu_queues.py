"""Tests of the page request queue and the invalidation queue (models/iommu_queues.py) driven through
the real golden IOMMU (models/iommu.py): TLP bytes in through ``receive_tlp``, register accesses
through ``reg_write``/``reg_read``, host memory observed directly.

Independence: expected TLP bytes are assembled here by hand from the pcie.md tables (and checked
against pcie.md's worked examples), expected PRQ descriptors from the vtd.md §5.1 bit table, and the
PRQ bookkeeping from a small reference queue in this file. Descriptors given to the IQ are built with
the ``models.vtd`` classes (their encoding is tested in test_vtd.py); the checks look at what the
queue does with them.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import tlp
from models.iommu import Request
from models.vtd import (
    PROFILE,
    CcInvDesc,
    DevTlbInvDesc,
    FaultReason,
    FrcdType,
    IecInvDesc,
    InvWaitDesc,
    IotlbInvDesc,
    PageGroupResponseDescriptor,
    PcInvDesc,
    PDevTlbInvDesc,
    Pgtt,
    PIotlbInvDesc,
)
from tests.models.iommu_env import Env

RID = 0x0100  # bus 1, devfn 0: the device
RID2 = 0x0208  # another device
PASID = 0x12345
VA = 0x7F12_3456_7000
PE_MSI = (0x1000_0000, 0xA5A5)  # page request event: address, data
FE_MSI = (0x1000_0100, 0x5A5A)  # fault event
IE_MSI = (0x1000_0200, 0x1234)  # invalidation completion event
STATUS = 0x2000_0000  # wait descriptor status address
R = FaultReason


# ================================================================================================
# Hand-built wire formats (pcie.md §1.5, §2.2, §3.4, §3.5, §4.1, §4.2) and the descriptor (vtd §5.1)
# ================================================================================================


def prefix(pasid: int | None, pmr: int = 0, er: int = 0) -> bytes:
    if pasid is None:
        return b""
    return bytes([0x91, pmr << 7 | er << 6 | pasid >> 16, pasid >> 8 & 0xFF, pasid & 0xFF])


def page_request(rid: int, addr: int, prgi: int, l: int, w: int, r: int,  # noqa: E741
                 pasid: int | None = None, pmr: int = 0, er: int = 0) -> bytes:
    body = addr | prgi << 3 | l << 2 | w << 1 | r
    return (prefix(pasid, pmr, er) + bytes([0x30, 0, 0, 0]) + rid.to_bytes(2, "big") + bytes([0, 0x04])
            + body.to_bytes(8, "big"))


def prg_response(dest: int, rc: int, prgi: int, pasid: int | None = None, requester: int = 0) -> bytes:
    return (prefix(pasid) + bytes([0x32, 0, 0, 0]) + requester.to_bytes(2, "big") + bytes([0, 0x05])
            + dest.to_bytes(2, "big") + bytes([rc << 4 | prgi >> 8, prgi & 0xFF]) + bytes(4))


def inv_request(dest: int, itag: int, addr: int, s: int, g: int = 0, pasid: int | None = None,
                requester: int = 0) -> bytes:
    return (prefix(pasid) + bytes([0x72, 0, 0, 0x02]) + requester.to_bytes(2, "big") + bytes([itag, 0x01])
            + dest.to_bytes(2, "big") + bytes(6) + (addr | s << 11 | g).to_bytes(8, "big"))


def inv_completion(device: int, itags: int, cc: int = 1, dest: int = 0) -> bytes:
    return (bytes([0x32, 0, 0, 0]) + device.to_bytes(2, "big") + bytes([0, 0x02]) + dest.to_bytes(2, "big")
            + bytes([0, cc]) + itags.to_bytes(4, "big"))


def prq_descriptor(rid: int, addr: int, prgi: int, l: int, w: int, r: int, pasid: int | None,  # noqa: E741
                   pmr: int = 0, er: int = 0) -> bytes:
    """vtd §5.1: QW0 = type 1 | PP<<8 | RID<<16 | PASID<<32 | EXR<<52 | PMR<<53; QW1 = the PCIe
    page request bytes 8-15 (RDR, WRR, LPIG, PRGI, ADDR); QW2 = QW3 = 0."""
    qw0 = 0x01 | (pasid is not None) << 8 | rid << 16 | (pasid or 0) << 32 | er << 52 | pmr << 53
    qw1 = r | w << 1 | l << 2 | prgi << 3 | addr
    return qw0.to_bytes(8, "little") + qw1.to_bytes(8, "little") + bytes(16)


def test_wire_helpers_match_pcie_worked_examples():
    """pcie.md §3.4, §3.5, §4.1, §4.2 worked examples: the helpers above say the same bytes."""
    assert page_request(0x0100, 0x7F12_3456_7000, 0x1A5, 1, 1, 1, pasid=0x12345) == bytes.fromhex(
        "91012345" "30000000" "01000004" "00007f12" "34567d2f")
    assert prg_response(0x0100, 0, 0x1A5) == bytes.fromhex("32000000" "00000005" "010001a5" "00000000")
    assert inv_request(0x0100, 3, 0x7F12_3456_5000, 1) == bytes.fromhex(
        "72000002" "00000301" "01000000" "00000000" "00007f12" "34565800")
    assert inv_completion(0x0100, 1 << 3) == bytes.fromhex("32000000" "01000002" "00000001" "00000008")
    # and the codec agrees with the hand assembly for the messages the IQ/PRQ send
    assert tlp.PrgResponse(dest_id=0x0100, response_code=1, prg_index=0x1A5, pasid=7).encode() == \
        prg_response(0x0100, 1, 0x1A5, pasid=7)


# ================================================================================================
# Fixtures
# ================================================================================================


def msi(env: Env, group: str, address: int, data: int) -> None:
    env.wr(f"{group}ADDR", address)
    env.wr(f"{group}DATA", data)
    env.wr(f"{group}CTL", 0)  # IM=0


class PrqEnv(Env):
    """An enabled IOMMU, device RID bound to ``mm`` for PASID (first stage) and for RID_PASID 0, a PRQ
    of 2^pqs pages and unmasked events."""

    def __init__(self, pqs: int = 0, profile=PROFILE, context: dict | None = None, **pe):
        super().__init__(profile)
        self.enable()
        self.mm = self.new_mm()
        self.bind(RID, PASID, self.mm, context=context, **pe)
        self.bind(RID, 0, self.mm)
        self.prq = self.alloc.alloc(4096 << pqs)
        self.size = 4096 << pqs
        self.wr("PQA", self.prq | pqs)
        self.wr("PQH", 0)
        self.wr("PQT", 0)
        msi(self, "PE", *PE_MSI)
        msi(self, "FE", *FE_MSI)
        self.log = self.watch()

    def send(self, data: bytes) -> list[bytes]:
        return self.iommu.receive_tlp(data)

    def slot(self, offset: int) -> bytes:
        return self.mem.read(self.prq + offset, 32)

    def msis(self, address: int, data: int) -> int:
        return sum(1 for a, d in self.log if a == address and d == data.to_bytes(4, "little"))

    def prq_writes(self) -> list[tuple[int, bytes]]:
        return [(a - self.prq, d) for a, d in self.log if self.prq <= a < self.prq + self.size]


# ================================================================================================
# Page request queue
# ================================================================================================

prq_requests = st.builds(
    dict,
    with_pasid=st.booleans(),
    addr=st.integers(0, (1 << 52) - 1).map(lambda p: p << 12),  # includes non-canonical pages
    prgi=st.integers(0, 511),
    l=st.integers(0, 1),
    w=st.integers(0, 1),
    r=st.integers(0, 1),
    pmr=st.integers(0, 1),
    er=st.integers(0, 1),
)


@settings(max_examples=40, deadline=None)
@given(reqs=st.lists(prq_requests, min_size=1, max_size=4))
def test_prq_descriptor_bytes_and_tail(reqs):
    """vtd §5.2 step 4: each request is written byte-exact at PQA + PQT, PQT advances by 32, nothing is
    sent back; the descriptor reports the request as received (non-canonical address, PMR, ER kept)."""
    env = PrqEnv()
    for i, q in enumerate(reqs):
        pasid = PASID if q["with_pasid"] else None
        pmr, er = (q["pmr"], q["er"]) if pasid is not None else (0, 0)  # PMR/ER live in the prefix
        wire = page_request(RID, q["addr"], q["prgi"], q["l"], q["w"], q["r"], pasid, pmr, er)
        assert env.send(wire) == []
        expected = prq_descriptor(RID, q["addr"], q["prgi"], q["l"], q["w"], q["r"], pasid, pmr, er)
        assert env.slot(32 * i) == expected
        # QW1 is the PCIe message's bytes 8-15 verbatim (pcie.md §4.3)
        assert int.from_bytes(expected[8:16], "little") == int.from_bytes(wire[-8:], "big")
        assert env.rd("PQT") == 32 * (i + 1)
    assert env.iommu.prq.counters.queued == len(reqs)
    assert env.iommu.prq.counters.unaccounted() == 0


def test_prq_tail_wraps_at_queue_end():
    env = PrqEnv(pqs=1)  # 8 KiB = 256 entries
    last = env.size - 32
    env.wr("PQH", last)
    env.wr("PQT", last)
    env.send(page_request(RID, VA, 1, 0, 0, 1, PASID))
    assert env.rd("PQT") == 0
    env.send(page_request(RID, VA + 0x1000, 2, 0, 0, 1, PASID))
    assert env.rd("PQT") == 32
    assert [a for a, _ in env.prq_writes()] == [last, 0]
    assert env.slot(0) == prq_descriptor(RID, VA + 0x1000, 2, 0, 0, 1, PASID)


def test_ppr_and_event_only_on_first_pending_request():
    """vtd §1.12 / §5.3: the first descriptor sets PPR and sends the MSI; more descriptors while PPR is
    set send none; after software clears PPR the next one interrupts again. With IM=1 IP is set
    instead and the MSI goes out when IM is cleared."""
    env = PrqEnv()
    env.send(page_request(RID, VA, 1, 0, 0, 1, PASID))
    assert env.rd("PRS") == 0b01
    assert env.msis(*PE_MSI) == 1
    env.send(page_request(RID, VA, 2, 1, 1, 1, PASID))
    assert env.msis(*PE_MSI) == 1
    # the MSI is written after the descriptor (it must push it, vtd §5.2)
    addrs = [a for a, _ in env.log]
    assert addrs.index(PE_MSI[0]) > addrs.index(env.prq)
    env.wr("PRS", 0b01)  # software clears PPR first (Linux prq_event_thread)
    env.send(page_request(RID, VA, 3, 1, 0, 1, PASID))
    assert env.msis(*PE_MSI) == 2
    env.wr("PRS", 0b01)
    env.wr("PECTL", 1 << 31)  # mask
    env.send(page_request(RID, VA, 4, 1, 0, 1, PASID))
    assert env.msis(*PE_MSI) == 2 and env.rd("PECTL") >> 30 & 1 == 1
    env.wr("PECTL", 0)
    assert env.msis(*PE_MSI) == 3 and env.rd("PECTL") >> 30 & 1 == 0


def fill(env: PrqEnv) -> None:
    """Leave exactly one free slot short of full: N-1 entries used (vtd §5.2 step 3)."""
    env.wr("PQH", 0)
    env.wr("PQT", env.size - 32)


@pytest.mark.parametrize("with_pasid", [True, False])
def test_prq_full_sets_pro_and_auto_success(with_pasid):
    env = PrqEnv()
    pasid = PASID if with_pasid else None
    fill(env)
    out = env.send(page_request(RID, VA, 0x1A5, 1, 1, 1, pasid))
    assert out == [prg_response(RID, 0x0, 0x1A5, pasid)]
    assert env.rd("PRS") == 0b10  # PRO, not PPR
    assert env.msis(*PE_MSI) == 1  # PRO set while PPR=PRO=0: an event
    assert env.prq_writes() == [] and env.rd("PQT") == env.size - 32
    # LPIG=0: dropped without a response
    env.wr("PRS", 0b10)
    assert env.send(page_request(RID, VA, 0x1A6, 0, 1, 1, pasid)) == []
    c = env.iommu.prq.counters
    assert c.auto_responded["full"] == 1 and c.dropped["full"] == 1 and c.unaccounted() == 0


def test_prq_overflow_while_pro_set():
    """PRO already 1: no write, no fault, no event even though there is room again; LPIG=1 gets an
    automatic Success (vtd §5.2 step 2). Clearing PRO brings queueing back."""
    env = PrqEnv()
    fill(env)
    env.send(page_request(RID, VA, 1, 0, 0, 1, PASID))  # sets PRO
    env.wr("PQH", env.size - 32)  # software drained everything; PRO stays set
    out = env.send(page_request(RID, VA, 7, 1, 0, 1, PASID))
    assert out == [prg_response(RID, 0, 7, PASID)]
    assert env.send(page_request(RID, VA, 8, 0, 0, 1, PASID)) == []
    assert env.prq_writes() == [] and env.msis(*PE_MSI) == 1
    assert env.iommu.field("FSTS", "ppf") == 0
    env.wr("PRS", 0b10)
    assert env.send(page_request(RID, VA, 9, 1, 0, 1, PASID)) == []
    assert env.slot(env.size - 32) == prq_descriptor(RID, VA, 9, 1, 0, 1, PASID)
    c = env.iommu.prq.counters
    assert (c.dropped["full"], c.auto_responded["overflow"], c.dropped["overflow"], c.queued) == (1, 1, 1, 1)


@pytest.mark.parametrize("fpd", [0, 1])
def test_prq_table_fault_records_and_auto_invalid(fpd):
    """PRE=0 => SCT.8 (0x47): recorded as a page-request fault (unless FPD, a qualified reason), no PRQ
    write, automatic Invalid Request for LPIG=1 (with the request's PASID), drop for LPIG=0."""
    env = PrqEnv(context=dict(pre=0, fpd=fpd))
    out = env.send(page_request(RID, VA, 0x33, 1, 1, 0, PASID, pmr=1))
    assert out == [prg_response(RID, 0x1, 0x33, PASID)]
    assert env.send(page_request(RID, VA, 0x34, 0, 1, 0, PASID)) == []
    assert env.prq_writes() == [] and env.rd("PRS") == 0 and env.msis(*PE_MSI) == 0
    if fpd:
        assert env.iommu.field("FRCD0", "f") == 0 and env.msis(*FE_MSI) == 0
    else:
        f = env.iommu.registers["FRCD0"].unpack(env.iommu.reg("FRCD0"))
        assert (f["f"], f["fr"], f["sid"], f["pp"], f["pv"], f["fi"], f["priv"]) == (
            1, R.SCT_8, RID, 1, PASID, VA >> 12, 1)
        assert FrcdType.from_bits(f["t1"], f["t2"]) == FrcdType.PAGE_REQUEST
        assert env.iommu.field("FRCD1", "fr") == R.SCT_8  # the LPIG=0 request is logged too
        assert env.msis(*FE_MSI) == 1
    c = env.iommu.prq.counters
    assert c.auto_responded["fault"] == 1 and c.dropped["fault"] == 1


def test_prq_fault_without_pasid_and_rid_pasid_check():
    """A request with PASID equal to RID_PASID faults 0x48; a request without PASID uses RID_PASID and
    its automatic response has no prefix."""
    env = PrqEnv()
    env.set_context(RID, p=1, dte=1, paside=1, pre=1, pdts=7, rid_pasid=PASID)
    out = env.send(page_request(RID, VA, 5, 1, 0, 1, PASID))
    assert out == [prg_response(RID, 1, 5, PASID)]
    assert env.iommu.field("FRCD0", "fr") == R.SCT_9
    env.set_context(RID, p=1, dte=1, paside=1, pre=0, pdts=7)
    assert env.send(page_request(RID, VA, 6, 1, 0, 1)) == [prg_response(RID, 1, 6)]


def test_prq_translation_disabled_auto_invalid_without_fault():
    env = PrqEnv()
    env.gcmd("te", 0)
    assert env.send(page_request(RID, VA, 3, 1, 0, 1, PASID)) == [prg_response(RID, 1, 3, PASID)]
    assert env.send(page_request(RID, VA, 4, 0, 0, 1, PASID)) == []
    assert env.iommu.field("FSTS", "ppf") == 0 and env.prq_writes() == []
    c = env.iommu.prq.counters
    assert c.auto_responded["disabled"] == 1 and c.dropped["disabled"] == 1


def test_stop_markers():
    """ECAP.SMS=1: a stop marker (PASID, L=1, R=W=0) is queued like a request and never answered: not
    when full, not on a table fault. L=1, R=W=0 without PASID is an ordinary request that needs a
    response."""
    env = PrqEnv()
    assert env.send(page_request(RID, VA, 0, 1, 0, 0, PASID)) == []
    assert env.slot(0) == prq_descriptor(RID, VA, 0, 1, 0, 0, PASID)
    fill(env)
    assert env.send(page_request(RID, VA, 0, 1, 0, 0, PASID)) == []
    assert env.rd("PRS") >> 1 & 1  # PRO set by the stop marker that did not fit
    assert env.send(page_request(RID, VA, 0x44, 1, 0, 0)) == [prg_response(RID, 0, 0x44)]  # overflow
    env.set_context(RID, p=1, dte=1, paside=1, pre=0, pdts=7)
    assert env.send(page_request(RID, VA, 0, 1, 0, 0, PASID)) == []
    assert env.iommu.field("FRCD0", "fr") == R.SCT_8  # the table fault is still logged
    c = env.iommu.prq.counters
    assert (c.queued, c.dropped["full"], c.dropped["fault"], c.auto_responded["overflow"]) == (1, 1, 1, 1)


def test_implicit_invalidation_on_page_request():
    """vtd §4.7: a read-only page cached in the IOTLB is made writable without invalidation; a write
    may still legally fault on the stale entry. A page request for the page removes that entry (the
    stale fault is no longer a legal outcome); another page's entry stays (page-selective, AM=0)."""
    env = PrqEnv()
    env.mm.map(VA, write=False)
    env.mm.map(VA + 0x1000, write=False)
    for va in (VA, VA + 0x1000):
        assert env.translate("read", RID, va, PASID).ok
    assert env.iommu.caches.iotlb_pages(1, PASID, VA)
    env.mm.protect(VA, write=True)
    t = env.translate("write", RID, VA, PASID)
    assert t.ok and R.SGN_6 in [a.fault for a in t.legal_alternatives]
    env.send(page_request(RID, VA, 1, 1, 1, 0, PASID))
    assert env.iommu.caches.iotlb_pages(1, PASID, VA) == []
    assert env.iommu.caches.iotlb_pages(1, PASID, VA + 0x1000)
    t = env.translate("write", RID, VA, PASID)
    assert t.ok and all(a.fault is None for a in t.legal_alternatives)


def test_no_implicit_invalidation_when_not_queued():
    """The invalidation is part of queueing (vtd §5.2 step 4): a request refused because the queue is
    full leaves the cached translation alone."""
    env = PrqEnv()
    env.mm.map(VA, write=False)
    env.translate("read", RID, VA, PASID)
    fill(env)
    env.send(page_request(RID, VA, 1, 1, 1, 0, PASID))
    assert env.iommu.caches.iotlb_pages(1, PASID, VA)


def test_implicit_invalidation_pass_through():
    """Table 27: PGTT=100 uses a page-selective-within-domain IOTLB invalidation."""
    env = PrqEnv(profile=dataclasses.replace(PROFILE, pt=1), pgtt=Pgtt.PASS_THROUGH)
    assert env.translate("read", RID, VA, PASID).ok
    assert env.iommu.caches.iotlb_pages(1, PASID, VA)
    env.send(page_request(RID, VA, 1, 1, 0, 1, PASID))
    assert env.iommu.caches.iotlb_pages(1, PASID, VA) == []
    assert env.slot(0) == prq_descriptor(RID, VA, 1, 1, 0, 1, PASID)


@settings(max_examples=15, deadline=None)
@given(ops=st.lists(st.one_of(
    st.tuples(st.just("req"), st.integers(0, 1), st.booleans(), st.integers(1, 40)),
    st.tuples(st.just("consume"), st.integers(0, 200)),
    st.tuples(st.just("clear_pro")),
), max_size=25))
def test_prq_against_reference_queue(ops):
    """A random mix of request bursts, software consumption and PRO clears against a reference queue
    of N-1 usable slots: same descriptors in the same slots, same PRO, same responses, and every
    request accounted for."""
    env = PrqEnv()
    n = env.size // 32
    head = tail = 0
    pro = False
    prgi = 0
    for op in ops:
        if op[0] == "req":
            _, lpig, with_pasid, count = op
            pasid = PASID if with_pasid else None
            for _ in range(count):
                prgi = (prgi + 1) % 512
                out = env.send(page_request(RID, VA, prgi, lpig, 1, 1, pasid))
                if pro or (tail + 1) % n == head:
                    pro = True
                    assert out == ([prg_response(RID, 0, prgi, pasid)] if lpig else [])
                else:
                    assert out == []
                    assert env.slot(32 * tail) == prq_descriptor(RID, VA, prgi, lpig, 1, 1, pasid)
                    tail = (tail + 1) % n
        elif op[0] == "consume":
            head = (head + min(op[1], (tail - head) % n)) % n
            env.wr("PQH", 32 * head)
        else:
            pro = False
            env.wr("PRS", 0b10)
        assert env.rd("PQT") == 32 * tail and bool(env.rd("PRS") & 2) == pro
    assert env.iommu.prq.counters.unaccounted() == 0


# ================================================================================================
# Invalidation queue
# ================================================================================================


class IqEnv(PrqEnv):
    """PrqEnv plus an invalidation queue of 2^qs pages (DW=1), QI enabled, all events unmasked."""

    def __init__(self, qs: int = 0, dw: int = 1, enable: bool = True, **kw):
        super().__init__(**kw)
        self.iq = self.alloc.alloc(4096 << qs)
        self.wr("IQA", self.iq | dw << 11 | qs)
        self.wr("IQT", 0)
        msi(self, "IE", *IE_MSI)
        if enable:
            self.gcmd("qie")
        self.width = 32 if dw else 16

    def submit(self, *descs) -> list[bytes]:
        """Write descriptors at the tail and move IQT (the way qi_submit_sync does); returns the TLPs
        the IQT write produced."""
        tail = self.rd("IQT")
        size = 4096 << self.iommu.field("IQA", "qs")
        for d in descs:
            data = d if isinstance(d, bytes) else d.to_bytes()
            self.mem.write(self.iq + tail, data[:self.width])
            tail = (tail + self.width) % size
        self.wr("IQT", tail)
        return self.iommu.take_tx()

    def complete(self, device: int, itags: int, cc: int = 1) -> list[bytes]:
        return self.send(inv_completion(device, itags, cc))

    def status(self, offset: int = 0) -> bytes:
        return self.mem.read(STATUS + offset, 4)

    def iqe(self) -> tuple[int, int]:
        return self.iommu.field("FSTS", "iqe"), self.iommu.field("IQERCD", "iqei")


def wait(data: int = 0x600D, sw: int = 1, offset: int = 0, **kw) -> InvWaitDesc:
    return InvWaitDesc(sw=sw, status_data=data, status_addr=(STATUS + offset) >> 2, **kw)


def dev_tlb(sid: int = RID, addr: int = VA, s: int = 0) -> DevTlbInvDesc:
    return DevTlbInvDesc(sid=sid, addr=addr >> 12, s=s)


def test_wait_sw_and_if_and_head():
    """vtd §4.4: SW writes the status dword (bits >= HAW of the address dropped); IF sets ICS.IWC and
    signals the invalidation event once while IWC stays set. IQH follows IQT."""
    env = IqEnv()
    high = 1 << PROFILE.haw  # an address bit the IOMMU ignores
    env.submit(wait(0xCAFEF00D), InvWaitDesc(sw=1, status_data=0x11, status_addr=(high | STATUS + 8) >> 2))
    assert env.status() == (0xCAFEF00D).to_bytes(4, "little")
    assert env.status(8) == (0x11).to_bytes(4, "little")
    assert env.rd("IQH") == env.rd("IQT") == 64
    assert env.rd("ICS") == 0 and env.msis(*IE_MSI) == 0
    env.submit(wait(sw=0, if_=1), wait(sw=0, if_=1))
    assert env.rd("ICS") == 1 and env.msis(*IE_MSI) == 1
    env.wr("ICS", 1)
    env.submit(wait(sw=0, if_=1))
    assert env.msis(*IE_MSI) == 2


def test_wait_pd_orders_after_received_page_requests():
    """PD=1: the status write comes after the PRQ writes of page requests already received; in this
    synchronous model the PRQ write happens inside receive_tlp, so the order holds by construction."""
    env = IqEnv()
    env.send(page_request(RID, VA, 1, 1, 1, 1, PASID))
    env.submit(wait(pd=1))
    addrs = [a for a, _ in env.log]
    assert addrs.index(env.prq) < addrs.index(STATUS)


def test_queue_disabled_fetches_nothing():
    env = IqEnv(enable=False)
    env.submit(wait())
    assert env.status() == bytes(4) and env.rd("IQH") == 0
    env.gcmd("qie")
    assert env.status() == (0x600D).to_bytes(4, "little") and env.rd("IQH") == 32


def test_cache_invalidation_descriptors():
    """cc / pc / iotlb / p_iotlb reach the caches with the vtd §4.3 scope: each drops what it covers
    and leaves the rest."""
    env = IqEnv()
    env.bind(RID2, PASID, env.mm, did=2)
    env.mm.map(VA)
    env.mm.map(VA + 0x1000)

    def warm():
        for rid in (RID, RID2):
            for va in (VA, VA + 0x1000):
                assert env.translate("read", rid, va, PASID).ok

    caches = env.iommu.caches
    warm()
    env.submit(CcInvDesc(g=CcInvDesc.G_DEVICE, sid=RID))
    assert RID not in caches.context and RID2 in caches.context
    env.submit(CcInvDesc(g=CcInvDesc.G_GLOBAL))
    assert not caches.context
    warm()
    env.submit(PcInvDesc(g=PcInvDesc.G_PASID, did=1, pasid=PASID))
    assert caches.pasid_records(RID, PASID) == [] and caches.pasid_records(RID2, PASID)
    env.submit(PcInvDesc(g=PcInvDesc.G_GLOBAL))
    assert not caches.pasid
    warm()
    env.submit(PIotlbInvDesc(g=PIotlbInvDesc.G_PAGE, did=1, pasid=PASID, addr=VA >> 12))
    assert caches.iotlb_pages(1, PASID, VA) == [] and caches.iotlb_pages(1, PASID, VA + 0x1000)
    env.submit(PIotlbInvDesc(g=PIotlbInvDesc.G_PASID, did=1, pasid=PASID))
    assert caches.iotlb_pages(1, PASID, VA + 0x1000) == [] and caches.iotlb_pages(2, PASID, VA)
    warm()
    # type-2 page-selective drops every first-stage entry of the DID, whatever the address
    env.submit(IotlbInvDesc(g=IotlbInvDesc.G_PAGE, did=1, addr=VA >> 12))
    assert caches.iotlb_pages(1, PASID, VA + 0x1000) == [] and caches.iotlb_pages(2, PASID, VA)
    env.submit(IotlbInvDesc(g=IotlbInvDesc.G_DOMAIN, did=2))
    assert caches.iotlb_pages(2, PASID, VA) == []
    warm()
    env.submit(IotlbInvDesc(g=IotlbInvDesc.G_GLOBAL))
    assert not caches.iotlb and not caches.psc
    assert env.rd("IQH") == env.rd("IQT") and env.iqe() == (0, 0)


# --- queue errors ---------------------------------------------------------------------------------


def raw_desc(qw0: int, qw1: int = 0, qw2: int = 0, qw3: int = 0) -> bytes:
    return b"".join(q.to_bytes(8, "little") for q in (qw0, qw1, qw2, qw3))


@pytest.mark.parametrize("desc, iqei", [
    (raw_desc(0x0), 3),  # type 0
    (raw_desc(0xB), 3),  # type 0xB
    (IecInvDesc(), 3),  # ECAP.IR=0
    (raw_desc(0xA), 3),  # hpt_inv_dsc, ECAP.HPTS=0
    (raw_desc(0x5 | 1 << 8), 4),  # inv_wait reserved bit 8
    (raw_desc(0x1 | 1 << 4, 0, 1), 4),  # cc_inv with QW2 set
    (raw_desc(0x6), 4),  # p_iotlb G=00 reserved
    (raw_desc(0x9 | 1 << 5), 4),  # page_grp_resp QW0[5] (3.x PDP) reserved
])
def test_invalid_descriptor_stops_queue(desc, iqei):
    """vtd §4.1: IQE + IQEI + fault event, IQH stays on the bad descriptor, later descriptors wait."""
    env = IqEnv()
    env.submit(wait(1), desc, wait(2, offset=4))
    assert env.status() == (1).to_bytes(4, "little") and env.status(4) == bytes(4)
    assert env.iqe() == (1, iqei) and env.rd("IQH") == 32 and env.msis(*FE_MSI) == 1


def test_iqe_resume_after_software_fixes_and_clears():
    env = IqEnv()
    env.submit(wait(1), raw_desc(0x0), wait(2, offset=4))
    env.wr("IQT", env.rd("IQT"))  # kicking the tail does not fetch past the error
    assert env.rd("IQH") == 32
    env.mem.write(env.iq + 32, wait(3, offset=8).to_bytes())  # Linux replaces the bad descriptor
    env.wr("FSTS", 1 << 4)
    assert env.status(8) == (3).to_bytes(4, "little") and env.status(4) == (2).to_bytes(4, "little")
    assert env.rd("IQH") == 96 and env.iqe() == (0, 3)  # IQEI keeps the last error's code


def test_pd_reserved_without_pds():
    env = IqEnv(profile=dataclasses.replace(PROFILE, pds=0))
    env.submit(wait(pd=1))
    assert env.iqe() == (1, 4)


def test_iqei_invalid_width_in_scalable_mode():
    env = IqEnv(dw=0)
    env.submit(wait().to_bytes()[:16])
    assert env.iqe() == (1, 5) and env.rd("IQH") == 0


def test_iqei_tail_beyond_queue_and_misaligned():
    env = IqEnv(qs=0)
    env.wr("IQT", 0x1000)  # one past the 4 KiB queue
    assert env.iqe() == (1, 1)
    env = IqEnv()
    env.mem.write(env.iq, wait().to_bytes())
    env.wr("IQT", 0x10)  # bit 4 with 256-bit descriptors
    assert env.iqe() == (1, 6) and env.status() == bytes(4)


def test_iqei_fetch_error():
    env = IqEnv()
    env.mem.fail_reads(env.iq + 32, 32)
    env.submit(wait(1), wait(2))
    assert env.iqe() == (1, 2) and env.rd("IQH") == 32 and env.status() == (1).to_bytes(4, "little")


def test_iqei_invalid_ttm():
    env = IqEnv()
    env.wr("RTADDR", env.root | 0b10 << 10)
    env.gcmd("srtp")
    env.submit(wait())
    assert env.iqe() == (1, 7)


def test_legacy_mode_descriptors():
    """TTM=00b (QI enabled before the root table is set, as Linux does): both widths work, 128-bit
    descriptors are 16 bytes apart, and only types 0x1-0x5 are valid (Table 26)."""
    env = IqEnv(dw=0)
    env.wr("RTADDR", env.root)  # TTM=00
    env.gcmd("srtp")
    env.submit(wait(1), wait(2, offset=4))
    assert env.rd("IQH") == 32 and env.status(4) == (2).to_bytes(4, "little") and env.iqe() == (0, 0)
    env = IqEnv()
    env.wr("RTADDR", env.root)
    env.gcmd("srtp")
    env.submit(wait(1), PcInvDesc(g=PcInvDesc.G_GLOBAL))
    assert env.status() == (1).to_bytes(4, "little") and env.iqe() == (1, 3) and env.rd("IQH") == 32


# --- device-TLB invalidation -------------------------------------------------------------------


def test_dev_tlb_invalidate_tlp_bytes():
    env = IqEnv()
    out = env.submit(dev_tlb(RID, 0x7F12_3456_5000, s=1),
                     PDevTlbInvDesc(sid=RID2, pasid=PASID, addr=VA >> 12),
                     PDevTlbInvDesc(sid=RID2, pasid=PASID, gi=1, s=1, addr=0x7_FFFF_FFFF_FFFF))
    assert out == [
        inv_request(RID, 0, 0x7F12_3456_5000, 1),  # type 3: no prefix
        inv_request(RID2, 1, VA, 0, pasid=PASID),  # type 8: prefix
        inv_request(RID2, 2, 0x7FFF_FFFF_FFFF_F000, 1, g=1, pasid=PASID),  # global form keeps the prefix
    ]
    assert env.iommu.iq.outstanding == {0: RID, 1: RID2, 2: RID2}
    assert env.rd("IQH") == 96  # started descriptors are consumed


def test_requester_id_is_the_iommu():
    env = IqEnv()
    env.iommu.cfg = dataclasses.replace(env.iommu.cfg, iommu_rid=0x00F8)
    out = env.submit(dev_tlb(), PageGroupResponseDescriptor(rid=RID, prgi=3))
    assert out == [inv_request(RID, 0, VA, 0, requester=0x00F8), prg_response(RID, 0, 3, requester=0x00F8)]


def test_itag_allocation_and_reuse():
    """ITags 0..31; the 33rd invalidation waits at IQH (no TLP) until a completion frees an ITag, and
    gets that ITag; an ITag is not reused while outstanding."""
    env = IqEnv()
    out = env.submit(*[dev_tlb(addr=VA + (i << 12)) for i in range(33)])
    assert out == [inv_request(RID, i, VA + (i << 12), 0) for i in range(32)]
    assert env.rd("IQH") == 32 * 32
    assert env.complete(RID, 1 << 5) == [inv_request(RID, 5, VA + (32 << 12), 0)]
    assert env.rd("IQH") == 33 * 32
    assert env.complete(RID, 1 << 7 | 1 << 9) == []
    out = env.submit(dev_tlb(addr=VA), dev_tlb(addr=VA), dev_tlb(addr=VA))
    assert [o[6] for o in out] == [7, 9]  # ITag: header byte 6 (no prefix on type 3)
    assert env.rd("IQH") == 35 * 32 and env.iqe() == (0, 0)


def test_completion_count():
    """CC completions release an ITag (CC=0 means 8, pcie §3.5); a wait behind it completes only then."""
    env = IqEnv()
    env.submit(dev_tlb(), wait())
    env.complete(RID, 1, cc=2)
    assert env.iommu.iq.outstanding == {0: RID} and env.status() == bytes(4)
    env.complete(RID, 1, cc=2)
    assert env.iommu.iq.outstanding == {} and env.status() == (0x600D).to_bytes(4, "little")
    env.submit(dev_tlb(), wait(7, offset=4))
    for _ in range(7):
        env.complete(RID, 1, cc=0)
    assert env.status(4) == bytes(4)
    env.complete(RID, 1, cc=0)
    assert env.status(4) == (7).to_bytes(4, "little")


@pytest.mark.parametrize("bad", [
    inv_completion(RID, 1 << 4),  # ITag not outstanding
    inv_completion(RID2, 1),  # ITag 0 belongs to another device
    inv_completion(RID, 0),  # empty vector
    inv_completion(RID, 1, dest=0x0042),  # not addressed to this IOMMU
])
def test_bad_completion_sets_ice(bad):
    env = IqEnv()
    env.submit(dev_tlb())
    env.send(bad)
    device = int.from_bytes(bad[4:6], "big")
    assert env.iommu.field("FSTS", "ice") == 1 and env.iommu.field("IQERCD", "icesid") == device
    assert env.msis(*FE_MSI) == 1
    # ICE does not stop the queue
    env.submit(wait(sw=1))
    assert env.rd("IQH") == env.rd("IQT")


def test_wait_order_with_outstanding_invalidations():
    """FN=0: later descriptors run while the wait is pending (the PRG response goes out at once); the
    wait completes when the invalidation issued before it completes, not one issued after it."""
    env = IqEnv()
    out = env.submit(dev_tlb(RID), wait(1), PageGroupResponseDescriptor(rid=RID2, prgi=9), dev_tlb(RID2),
                     wait(2, offset=4))
    assert out == [inv_request(RID, 0, VA, 0), prg_response(RID2, 0, 9), inv_request(RID2, 1, VA, 0)]
    assert env.iommu.iq.pending_waits == 2
    env.complete(RID2, 1 << 1)
    assert env.status() == bytes(4) and env.status(4) == bytes(4)  # wait 2 is behind wait 1
    env.complete(RID, 1)
    assert env.status() == (1).to_bytes(4, "little") and env.status(4) == (2).to_bytes(4, "little")
    assert [a for a, _ in env.log if a in (STATUS, STATUS + 4)] == [STATUS, STATUS + 4]


def test_fence_wait_blocks_later_descriptors():
    """FN=1: nothing after the wait is fetched until it completes."""
    env = IqEnv()
    out = env.submit(dev_tlb(), wait(1, fn=1), PageGroupResponseDescriptor(rid=RID, pp=1, pasid=PASID, prgi=4,
                                                                           rc=1))
    assert out == [inv_request(RID, 0, VA, 0)]
    assert env.rd("IQH") == 64 and env.status() == bytes(4)
    assert env.complete(RID, 1) == [prg_response(RID, 1, 4, PASID)]
    assert env.status() == (1).to_bytes(4, "little") and env.rd("IQH") == 96


def test_timeout_sets_ite_and_aborts_waits():
    """vtd §4.1: time-out => ITE, ITESID, pending waits aborted (no status, no IWC), fetching stops
    until ITE is cleared; the timed-out ITag is free again."""
    env = IqEnv()
    env.submit(dev_tlb(RID2), dev_tlb(RID), wait(1, if_=1, fn=1), wait(2, offset=4))
    assert env.iommu.timeout_dev_tlb() == []
    assert env.iommu.field("FSTS", "ite") == 1 and env.iommu.field("IQERCD", "itesid") == RID2
    assert env.msis(*FE_MSI) == 1 and env.iommu.iq.pending_waits == 0
    assert env.iommu.iq.outstanding == {1: RID}
    env.complete(RID, 1 << 1)
    assert env.status() == bytes(4) and env.status(4) == bytes(4) and env.rd("ICS") == 0
    out = env.submit(dev_tlb(RID))
    assert out == [] and env.rd("IQH") == 96  # stopped at the wait after the aborted one
    env.wr("FSTS", 1 << 6)
    assert env.status(4) == (2).to_bytes(4, "little")
    assert env.iommu.take_tx() == [inv_request(RID, 0, VA, 0)]  # ITag 0 reused after its time-out
    with pytest.raises(ValueError, match="outstanding"):
        IqEnv().iommu.iq.timeout()


def test_late_completion_after_timeout_is_an_error():
    env = IqEnv()
    env.submit(dev_tlb())
    env.iommu.timeout_dev_tlb()
    env.complete(RID, 1)
    assert env.iommu.field("FSTS", "ice") == 1 and env.iommu.field("IQERCD", "icesid") == RID


# --- page group response ----------------------------------------------------------------------


@pytest.mark.parametrize("pp", [0, 1])
@pytest.mark.parametrize("rc", [0x0, 0x1, 0xF])
def test_page_group_response_tlp(pp, rc):
    env = IqEnv()
    out = env.submit(PageGroupResponseDescriptor(pp=pp, rc=rc, rid=RID2, pasid=PASID, prgi=0x1A5, ign66=1))
    assert out == [prg_response(RID2, rc, 0x1A5, PASID if pp else None)]


def test_page_group_response_invalid_without_prs():
    env = IqEnv(profile=dataclasses.replace(PROFILE, prs=0))
    assert env.submit(PageGroupResponseDescriptor(rid=RID, prgi=1)) == []
    assert env.iqe() == (1, 3)


def test_responses_and_invalidations_leave_in_queue_order():
    env = IqEnv()
    descs = [PageGroupResponseDescriptor(rid=RID, prgi=i) if i % 2 else dev_tlb(addr=VA + (i << 12))
             for i in range(6)]
    out = env.submit(*descs)
    expected = []
    for i in range(6):
        expected.append(prg_response(RID, 0, i) if i % 2 else inv_request(RID, i // 2, VA + (i << 12), 0))
    assert out == expected


def test_reset_forgets_queue_state():
    env = IqEnv()
    env.submit(dev_tlb(), wait())
    env.send(page_request(RID, VA, 1, 1, 1, 1, PASID))
    env.iommu.reset()
    assert env.iommu.iq.outstanding == {} and env.iommu.iq.pending_waits == 0
    assert env.iommu.prq.counters.received == 0


def test_request_kind_is_page_request_for_lookup():
    """Page requests are walked as 'page_request' (PRE checked), not as reads: a device with PRE=0 but
    otherwise valid translates reads fine and still gets 0x47 for its page requests."""
    env = PrqEnv(context=dict(pre=0))
    env.mm.map(VA)
    assert env.iommu.translate(Request("read", RID, VA, PASID)).ok
    env.send(page_request(RID, VA, 1, 1, 0, 1, PASID))
    assert env.iommu.field("FRCD0", "fr") == R.SCT_8


@pytest.mark.parametrize("cap, desc", [("ir", IecInvDesc()), ("hpts", raw_desc(0xA | 1 << 4))])
def test_iec_and_hpt_invalidation_accepted_when_advertised(cap, desc):
    """With ECAP.IR / ECAP.HPTS the descriptor is valid; this model has no such cache, so it only
    completes (the queue moves on, no error, no TLP)."""
    env = IqEnv(profile=dataclasses.replace(PROFILE, **{cap: 1}))
    assert env.submit(desc, wait()) == []
    assert env.iqe() == (0, 0) and env.rd("IQH") == 64 and env.status() == (0x600D).to_bytes(4, "little")
