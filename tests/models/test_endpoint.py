"""Tests for models.endpoint: config space (pcie.md §5, vtd.md §7.2) and the device behaviour
(ATS §3, PRI §4, PASID prefix §2.2).

The test plays the host by hand: it reads config space with its own capability walker, and it
answers the device's TLPs with TLPs built by ``models.tlp``. Expected register masks and message
bytes come from the digest's tables and worked examples, not from the model.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import tlp
from models.endpoint import (AtsParams, Endpoint, EndpointError, InvalidateMode, JobStatus, PasidParams,
                             PriParams)

RID = 0x0100  # the endpoint, 01:00.0
TA = 0x0000  # the root complex / IOMMU
PAGE = 4096

PASID_ID, ATS_ID, PRI_ID = 0x1B, 0x0F, 0x13
EXT_SIZES = {PASID_ID: 8, ATS_ID: 8, PRI_ID: 16}  # pcie §5.1-§5.3


# ================================================================================================
# An independent config-space walker (pcie §5)
# ================================================================================================


def legacy_caps(dev) -> dict[int, int]:
    """cap ID -> offset, following the legacy list from the Capabilities Pointer (0x34)."""
    assert dev.cfg_read(0x06, 2) & 0x10, "Status.Capabilities List must be set"
    caps, ptr = {}, dev.cfg_read(0x34, 1) & 0xFC
    while ptr:
        assert 0x40 <= ptr <= 0xFC and ptr not in caps.values(), f"bad capability pointer {ptr:#x}"
        caps[dev.cfg_read(ptr, 1)] = ptr
        ptr = dev.cfg_read(ptr + 1, 1) & 0xFC
    return caps


def ext_caps(dev) -> dict[int, tuple[int, int]]:
    """cap ID -> (offset, version), following Next[31:20] from 0x100; header 0 = no capabilities."""
    caps, off = {}, 0x100
    while True:
        hdr = dev.cfg_read(off, 4)
        if hdr == 0:
            assert off == 0x100, "a zero header is only allowed at 0x100"
            return caps
        cap_id, version, nxt = hdr & 0xFFFF, hdr >> 16 & 0xF, hdr >> 20
        assert cap_id not in caps
        caps[cap_id] = (off, version)
        if nxt == 0:
            return caps
        assert nxt % 4 == 0 and nxt >= 0x100 and nxt not in [o for o, _ in caps.values()]
        off = nxt


def linux_enable(dev, features: int = 0, pri_requests: int = 32, need_prpr: bool = True) -> dict[int, int]:
    """What Linux does (vtd §7.2, pcie §5.4): PASID first, then PRI (reset, require Stopped,
    allocation = min(capacity, n), enable), then ATS (only with Page Aligned Request; STU 0 +
    Enable in one write). Returns cap ID -> offset. ``need_prpr=False`` skips Linux's refusal of
    PRI with PASID when PRG Response PASID Required is 0."""
    off = {k: v[0] for k, v in ext_caps(dev).items()}
    pasid, pri, ats = off[PASID_ID], off[PRI_ID], off[ATS_ID]
    assert features & ~dev.cfg_read(pasid + 4, 2) & 0x6 == 0
    dev.cfg_write(pasid + 6, 0x1 | features, 2)
    assert dev.cfg_read(pri + 6, 2) & 0x8000 or not need_prpr, "PRG Response PASID Required"
    dev.cfg_write(pri + 4, 0x2, 2)  # pci_reset_pri: Reset with Enable = 0
    assert dev.cfg_read(pri + 4, 2) & 1 == 0 and dev.cfg_read(pri + 6, 2) & 0x100, "Stopped"
    dev.cfg_write(pri + 0xC, min(dev.cfg_read(pri + 8, 4), pri_requests), 4)
    dev.cfg_write(pri + 4, 0x1, 2)
    assert dev.cfg_read(ats + 4, 2) & 0x20, "Page Aligned Request"
    dev.cfg_write(ats + 6, 0x8000, 2)
    return off


def pri_status(dev) -> int:
    return dev.cfg_read(ext_caps(dev)[PRI_ID][0] + 6, 2)


# ================================================================================================
# The test as the IOMMU
# ================================================================================================


def mem_byte(addr: int) -> int:
    """Host memory content (a pattern the test can recompute anywhere)."""
    return (addr * 7 + (addr >> 12) * 13 + 3) & 0xFF


def mem(addr: int, n: int) -> bytes:
    return bytes(mem_byte(a) for a in range(addr, addr + n))


class Host:
    """Answers Translation Requests from ``mapping`` ((pasid, page) -> (pa, r, w); unmapped pages
    get R=W=0), memory reads from ``mem``, records memory writes; every other TLP is handed back."""

    def __init__(self, dev, mapping=None, max_payload=128, rcb=64):
        self.dev, self.mapping = dev, dict(mapping or {})
        self.max_payload, self.rcb = max_payload, rcb
        self.writes: dict[int, int] = {}  # byte address -> value
        self.requests: list[tlp.Tlp] = []  # every TLP the device sent

    def entry(self, pasid, page, pmr=0) -> tlp.TranslationEntry:
        pa, r, w = self.mapping.get((pasid, page), (0, 0, 0))
        return tlp.TranslationEntry.from_range(pa, PAGE, r=r, w=w, priv=pmr)

    def run(self, out: list[bytes]) -> list[tlp.Tlp]:
        """Serve until the device is quiet; return the TLPs the Host does not handle."""
        rest, queue = [], list(out)
        while queue:
            t = tlp.decode(queue.pop(0))
            self.requests.append(t)
            if isinstance(t, tlp.MemRead) and t.at == tlp.AT_TRANSLATION_REQUEST:
                entries = [self.entry(t.pasid, t.address + i * PAGE, t.pmr) for i in range(t.length // 2)]
                queue += self.dev.receive_tlp(tlp.translation_completion(t, TA, entries).encode())
            elif isinstance(t, tlp.MemRead):
                data = mem(t.address, 4 * t.length)
                for c in tlp.read_completions(t, data, TA, self.max_payload, self.rcb):
                    queue += self.dev.receive_tlp(c.encode())
            elif isinstance(t, tlp.MemWrite):
                for i, b in enumerate(t.data):
                    if enabled_byte(t, i):
                        self.writes[t.address + i] = b
            else:
                rest.append(t)
        return rest


def enabled_byte(t, i: int) -> bool:
    """Byte i of a request's payload is enabled by First/Last DW BE (TL §2.2.5.1)."""
    n = 4 * t.length
    if i < 4:
        return bool(t.first_be >> i & 1)
    if i >= n - 4:
        return bool(t.last_be >> (i - (n - 4)) & 1)
    return True


def respond(dev, index: int, code: int = tlp.PRG_SUCCESS, pasid: int | None = None) -> list[bytes]:
    return dev.receive_tlp(tlp.PrgResponse(requester_id=TA, dest_id=RID, response_code=code,
                                           prg_index=index, pasid=pasid).encode())


def invalidate(dev, itag: int, base: int, size: int, pasid=None, g=0) -> list[bytes]:
    address, s = tlp.encode_range(base, size)
    return dev.receive_tlp(tlp.AtsInvalidateRequest(requester_id=TA, dest_id=RID, itag=itag, address=address,
                                                    s=s, global_invalidate=g, pasid=pasid).encode())


def decode_all(out: list[bytes]) -> list[tlp.Tlp]:
    return [tlp.decode(b) for b in out]


def svm_device(**kw) -> Endpoint:
    dev = Endpoint(RID, **kw)
    linux_enable(dev)
    return dev


# ================================================================================================
# Config space
# ================================================================================================

CAP_SETS = {
    "all": dict(),
    "ats_only": dict(pasid=None, pri=None),
    "ats_pri": dict(pasid=None),
    "none": dict(pasid=None, ats=None, pri=None),
}


@pytest.mark.parametrize("which", CAP_SETS)
def test_capability_layout(which):
    dev = Endpoint(RID, max_end_end_tlp_prefixes=2, **CAP_SETS[which])
    assert dev.cfg_read(0x00, 4) == 0x5A17_1234
    pcie = legacy_caps(dev)
    assert list(pcie) == [0x10]
    p = pcie[0x10]
    assert dev.cfg_read(p + 2, 2) & 0xF == 2  # capability version 2
    assert dev.cfg_read(p + 2, 2) >> 4 & 0xF == 0  # PCI Express Endpoint
    devcap2 = dev.cfg_read(p + 0x24, 4)
    assert devcap2 >> 20 & 1 and devcap2 >> 21 & 1, "Extended Fmt + End-End TLP Prefix Supported (pcie §2.1)"
    assert devcap2 >> 22 & 3 == 2

    ext = ext_caps(dev)
    expected = {"all": {PASID_ID, ATS_ID, PRI_ID}, "ats_only": {ATS_ID}, "ats_pri": {ATS_ID, PRI_ID},
                "none": set()}[which]
    assert set(ext) == expected
    spans = sorted((off, off + EXT_SIZES[cid]) for cid, (off, _) in ext.items())
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, "extended capabilities overlap"
    assert all(end <= 0x1000 for _, end in spans)
    assert all(version == 1 for _, version in ext.values())


def test_capability_contents():
    dev = Endpoint(RID, pasid=PasidParams(execute_permission_supported=True, privileged_mode_supported=False,
                                          max_pasid_width=16),
                   ats=AtsParams(invalidate_queue_depth=5, page_aligned_request=True,
                                 global_invalidate_supported=False),
                   pri=PriParams(outstanding_page_request_capacity=77, prg_response_pasid_required=False))
    off = {k: v[0] for k, v in ext_caps(dev).items()}
    assert dev.cfg_read(off[PASID_ID] + 4, 2) == 0x1002  # width 16 in [12:8], exec supported bit 1
    assert dev.cfg_read(off[PASID_ID] + 6, 2) == 0
    assert dev.cfg_read(off[ATS_ID] + 4, 2) == 0x25  # depth 5, page aligned bit 5, no global (bit 6)
    assert dev.cfg_read(off[PRI_ID] + 4, 2) == 0
    assert dev.cfg_read(off[PRI_ID] + 6, 2) == 0x0100  # Stopped, PRG Response PASID Required = 0
    assert dev.cfg_read(off[PRI_ID] + 8, 4) == 77
    assert dev.cfg_read(off[PRI_ID] + 0xC, 4) == 0
    # the same register read as one DW and as bytes
    dw = dev.cfg_read(off[PASID_ID] + 4, 4)
    assert [dev.cfg_read(off[PASID_ID] + 4 + i, 1) for i in range(4)] == list(dw.to_bytes(4, "little"))


def writable_masks(dev, tag10: bool) -> dict[int, int]:
    """Absolute byte offset -> writable bit mask, from the spec tables (pcie §5, Linux pci_regs.h),
    placed where the walker found the structures."""
    p = legacy_caps(dev)[0x10]
    off = {k: v[0] for k, v in ext_caps(dev).items()}
    regs = {
        p + 0x08: (2, 0x71E0),  # Device Control: Max_Payload_Size, Extended Tag Enable, Max_Read_Request_Size
        p + 0x28: (2, 0x1000 if tag10 else 0),  # Device Control 2: 10-Bit Tag Requester Enable
        off[PASID_ID] + 6: (2, 0x0007),  # PASID Control with exec and priv supported
        off[ATS_ID] + 6: (2, 0x801F),  # ATS Control: Enable, STU
        off[PRI_ID] + 4: (2, 0x0001),  # PRI Control: Enable (Reset reads 0)
        off[PRI_ID] + 0xC: (4, 0xFFFF_FFFF),  # Outstanding Page Request Allocation
    }
    masks = {}
    for base, (size, m) in regs.items():
        for i in range(size):
            masks[base + i] = m >> (8 * i) & 0xFF
    return masks


def dump(dev) -> bytearray:
    return bytearray(b"".join(dev.cfg_read(o, 4).to_bytes(4, "little") for o in range(0, 0x1000, 4)))


@settings(max_examples=40, deadline=None)
@given(tag10=st.booleans(), writes=st.lists(st.tuples(st.integers(0, 0x17F), st.sampled_from([1, 2, 4]),
                                                      st.integers(0, 0xFFFF_FFFF)), min_size=1, max_size=6))
def test_write_masks_property(tag10, writes):
    """Random config writes change exactly the RW bits the spec tables name; RO bits never move.
    (No page requests are outstanding here, so Stopped = !Enable and RF/UPRGI stay 0.)"""
    dev = Endpoint(RID, pasid=PasidParams(True, True), ten_bit_tag_requester_supported=tag10)
    masks = writable_masks(dev, tag10)
    pri = ext_caps(dev)[PRI_ID][0]
    shadow = dump(dev)
    for offset, size, value in writes:
        offset -= offset % size
        dev.cfg_write(offset, value & ((1 << 8 * size) - 1), size)
        for i in range(size):
            m = masks.get(offset + i, 0)
            shadow[offset + i] = (shadow[offset + i] & ~m | (value >> 8 * i) & m) & 0xFF
    stopped = 0 if shadow[pri + 4] & 1 else 1
    shadow[pri + 7] = 0x80 | stopped  # status bits 15:8: PRG Response PASID Required, Stopped
    assert dump(dev) == shadow


def test_byte_write_and_rw1c():
    dev = svm_device()
    ats = ext_caps(dev)[ATS_ID][0]
    dev.cfg_write(ats + 7, 0x00, 1)  # upper byte of ATS Control: Enable off, STU untouched
    assert dev.cfg_read(ats + 6, 2) == 0
    dev.cfg_write(ats + 7, 0x80, 1)
    assert dev.cfg_read(ats + 6, 2) == 0x8000

    pri = ext_caps(dev)[PRI_ID][0]
    respond(dev, 5)  # nothing outstanding -> UPRGI
    assert pri_status(dev) & 0x3 == 0x2
    dev.cfg_write(pri + 6, 0x0000, 2)  # writing 0 does not clear
    assert pri_status(dev) & 0x2
    dev.cfg_write(pri + 6, 0xFFFF, 2)  # writing 1 clears UPRGI; Stopped and PRPR are read-only
    assert pri_status(dev) == 0x8000  # Enable = 1 -> Stopped = 0


def test_linux_order_accepted_wrong_order_flagged():
    dev = Endpoint(RID)
    linux_enable(dev)
    assert dev.violations == []

    dev = Endpoint(RID)
    off = {k: v[0] for k, v in ext_caps(dev).items()}
    dev.cfg_write(off[ATS_ID] + 6, 0x8000, 2)  # ATS first ...
    dev.cfg_write(off[PASID_ID] + 6, 0x0000, 2)  # same value: no change, nothing undefined
    assert dev.violations == []
    dev.cfg_write(off[PASID_ID] + 6, 0x0001, 2)  # ... then PASID: undefined (pcie §5.1)
    assert [v.code for v in dev.violations] == ["pasid_control_while_ats_enabled"]
    assert dev.cfg_read(off[PASID_ID] + 6, 2) == 1  # the write is kept, the violation recorded


def test_max_payload_size_above_supported_is_flagged():
    dev = Endpoint(RID, max_payload_size_supported=256)
    p = legacy_caps(dev)[0x10]
    assert dev.cfg_read(p + 4, 4) & 0x7 == 1  # Max_Payload_Size Supported 256 bytes
    dev.cfg_write(p + 8, dev.cfg_read(p + 8, 2) & ~0xE0 | 1 << 5, 2)
    assert dev.violations == []
    dev.cfg_write(p + 8, dev.cfg_read(p + 8, 2) & ~0xE0 | 2 << 5, 2)
    assert [v.code for v in dev.violations] == ["max_payload_size_unsupported"]


@pytest.mark.parametrize("offset,size", [(0x101, 2), (0x102, 4), (0x1000, 1), (0x10, 3), (-4, 4)])
def test_bad_config_access(offset, size):
    dev = Endpoint(RID)
    with pytest.raises(EndpointError):
        dev.cfg_read(offset, size)
    with pytest.raises(EndpointError):
        dev.cfg_write(offset, 0, size)


def test_config_write_value_too_wide():
    with pytest.raises(EndpointError, match="does not fit"):
        Endpoint(RID).cfg_write(0x48, 0x10000, 2)


# ================================================================================================
# DMA with ATS and PRI
# ================================================================================================


def page_request_bytes(pasid: int, page: int, prg_index: int, l: int, w: int, r: int) -> bytes:  # noqa: E741
    """Independent encoding from pcie §2.2 and §4.1: PASID prefix, Msg to RC, code 0x04, bytes 8-15 =
    address[63:12] | PRGI << 3 | L << 2 | W << 1 | R."""
    prefix = bytes([0x91, pasid >> 16 & 0xF, pasid >> 8 & 0xFF, pasid & 0xFF])
    header = bytes([0x30, 0, 0, 0, RID >> 8, RID & 0xFF, 0, 0x04])
    return prefix + header + (page | prg_index << 3 | l << 2 | w << 1 | r).to_bytes(8, "big")


def test_fault_success_retry_translated_write():
    """miss -> Translation Request -> R=W=0 / read-only -> Page Request Group -> Success -> retry ->
    translated writes (two pages, two translations per request)."""
    dev = Endpoint(RID, max_translations=2)
    linux_enable(dev)
    p = legacy_caps(dev)[0x10]
    dev.cfg_write(p + 8, dev.cfg_read(p + 8, 2) & ~0xE0 | 2 << 5, 2)  # Max_Payload_Size 512
    va = 0x7F00_0000_0800
    data = bytes((i * 5 + 1) & 0xFF for i in range(0x1000))
    job = dev.dma(5, va, len(data), write=True, data=data)

    out = dev.poll()
    assert len(out) == 1
    tr = tlp.decode(out[0])
    # pcie §2.2 prefix 91 00 00 05; §1.2 DW0 of a 4DW MRd with AT=01b, Length 4 (two translations);
    # §1.3/§3.1 requester, tag, BEs 1111/1111, address with NW = 0 (a write needs W)
    assert out[0] == bytes.fromhex("91000005" "20000404") + bytes([0x01, 0x00, tr.tag, 0xFF]) + \
        bytes.fromhex("00007f00" "00000000")

    read_only = [tlp.TranslationEntry.from_range(0, PAGE), tlp.TranslationEntry.from_range(0x5000, PAGE, r=1)]
    out = dev.receive_tlp(tlp.translation_completion(tr, TA, read_only).encode())
    assert len(out) == 2
    prgi = tlp.decode(out[0]).prg_index
    assert out == [page_request_bytes(5, 0x7F00_0000_0000, prgi, l=0, w=1, r=0),
                   page_request_bytes(5, 0x7F00_0000_1000, prgi, l=1, w=1, r=0)]
    assert dev.outstanding_page_requests == 2
    assert job.status is JobStatus.RUNNING

    out = respond(dev, prgi, tlp.PRG_SUCCESS, pasid=5)
    assert dev.outstanding_page_requests == 0
    (tr2,) = decode_all(out)
    assert tr2.at == tlp.AT_TRANSLATION_REQUEST and tr2.address == 0x7F00_0000_0000 and tr2.length == 4
    host = Host(dev, {(5, 0x7F00_0000_0000): (0x1_2345_6000, 1, 1),
                      (5, 0x7F00_0000_1000): (0x8000_0000, 1, 1)})
    host.run(out)
    assert job.status is JobStatus.DONE, job.error
    writes = [t for t in host.requests if isinstance(t, tlp.MemWrite)]
    assert len(writes) == 8  # 0x800 bytes per page in 512-byte payloads
    for w in writes:
        assert w.at == tlp.AT_TRANSLATED and w.pasid is None and 4 * w.length <= 512
    expected = {0x1_2345_6800 + i: data[i] for i in range(0x800)}
    expected.update({0x8000_0000 + i: data[0x800 + i] for i in range(0x800)})
    assert host.writes == expected
    assert sorted((e.pasid, e.base, e.translated, e.w) for e in dev.atc) == [
        (5, 0x7F00_0000_0000, 0x1_2345_6000, True), (5, 0x7F00_0000_1000, 0x8000_0000, True)]
    assert dev.counters["page_requests"] == 2 and dev.counters["translation_requests"] == 2
    assert dev.errors == [] and dev.violations == []


def test_translated_read_with_large_entry():
    dev = svm_device()
    va = 0x4000_1234
    job = dev.dma(7, va, 300, write=False)
    (tr,) = decode_all(dev.poll())
    assert tr.nw == 1 and tr.pasid == 7  # a read asks for no write permission (pcie §3.1)
    entry = tlp.TranslationEntry.from_range(0x2_0000_0000, 2 << 20, r=1)  # one 2 MiB entry (S=1)
    host = Host(dev)
    host.run(dev.receive_tlp(tlp.translation_completion(tr, TA, [entry]).encode()))
    assert job.status is JobStatus.DONE
    assert job.data == mem(0x2_0000_0000 + (va - 0x4000_0000), 300)
    assert [(e.base, e.size) for e in dev.atc] == [(0x4000_0000, 2 << 20)]
    # a second job in the same 2 MiB range needs no translation
    job2 = dev.dma(7, 0x4010_0000, 8, write=False)
    host.run(dev.poll())
    assert job2.data == mem(0x2_0010_0000, 8)
    assert dev.counters["translation_requests"] == 1


def fault_once(dev, pasid: int, va: int, write=False):
    """Start a job whose page the host refuses; return (job, prg_index)."""
    job = dev.dma(pasid, va, 16, write=write, data=bytes(16) if write else None)
    prs = Host(dev).run(dev.poll())
    assert len(prs) == 1 and isinstance(prs[0], tlp.PageRequest), prs
    return job, prs[0].prg_index


def test_invalid_request_fails_job():
    dev = svm_device()
    job, prgi = fault_once(dev, 5, 0x1000_0000)
    assert respond(dev, prgi, tlp.PRG_INVALID_REQUEST, pasid=5) == []
    assert job.status is JobStatus.FAILED and "Invalid Request" in job.error
    assert dev.outstanding_page_requests == 0 and pri_status(dev) & 0x3 == 0


def test_response_failure_disables_pri():
    dev = svm_device()
    job1, prg1 = fault_once(dev, 5, 0x1000_0000)
    job2, prg2 = fault_once(dev, 6, 0x2000_0000)
    assert respond(dev, prg1, tlp.PRG_RESPONSE_FAILURE, pasid=5) == []
    assert pri_status(dev) & 0x1 and dev.reg("pri.status").rf == 1, "RF"
    assert job1.status is job2.status is JobStatus.FAILED
    assert dev.outstanding_page_requests == 0
    # later responses are ignored, even for an index that was outstanding (no UPRGI)
    assert respond(dev, prg2, tlp.PRG_SUCCESS, pasid=6) == []
    assert pri_status(dev) & 0x2 == 0 and dev.counters["prg_responses_ignored"] == 1
    # PRI no longer issues page requests: a new fault fails the job at once
    job3 = dev.dma(5, 0x3000_0000, 4, write=False)
    assert Host(dev).run(dev.poll()) == []
    assert job3.status is JobStatus.FAILED and "PRI" in job3.error
    # software recovers: disable (Stopped = 1: nothing outstanding), enable clears RF
    pri = ext_caps(dev)[PRI_ID][0]
    dev.cfg_write(pri + 4, 0, 2)
    assert pri_status(dev) & 0x101 == 0x101
    dev.cfg_write(pri + 4, 1, 2)
    assert pri_status(dev) & 0x1 == 0 and dev.violations == []
    fault_once(dev, 5, 0x3000_0000)


def test_unused_response_code_is_response_failure():
    dev = svm_device()
    job, prgi = fault_once(dev, 5, 0x1000_0000)
    respond(dev, prgi, 0x7, pasid=5)  # 0010b-1110b are treated as Response Failure (pcie §4.2)
    assert pri_status(dev) & 0x1 and job.status is JobStatus.FAILED


def test_uprgi_and_response_pasid_rules():
    dev = svm_device()
    job, prgi = fault_once(dev, 5, 0x1000_0000)
    respond(dev, (prgi + 1) % 512, pasid=5)  # not outstanding
    assert pri_status(dev) & 0x2
    assert job.status is JobStatus.RUNNING and dev.outstanding_page_requests == 1
    dev.cfg_write(ext_caps(dev)[PRI_ID][0] + 6, 0x2, 2)
    # PRG Response PASID Required = 1: a response without the request's PASID does not match
    respond(dev, prgi, pasid=None)
    assert pri_status(dev) & 0x2 and [v.code for v in dev.violations] == ["prg_response_pasid_mismatch"]
    assert dev.outstanding_page_requests == 1

    dev = Endpoint(RID, pri=PriParams(prg_response_pasid_required=False))
    linux_enable(dev, need_prpr=False)
    _, prgi = fault_once(dev, 5, 0x1000_0000)
    out = respond(dev, prgi, pasid=5)  # a PASID the function does not expect: undefined, recorded
    assert [v.code for v in dev.violations] == ["prg_response_pasid_unexpected"]
    assert decode_all(out)[0].at == tlp.AT_TRANSLATION_REQUEST  # still taken as the answer


def test_allocation_limit_queues_page_requests():
    dev = Endpoint(RID)
    linux_enable(dev, pri_requests=1)
    job1 = dev.dma(5, 0x1000_0000, 4, write=False)
    job2 = dev.dma(5, 0x2000_0000, 4, write=True, data=b"abcd")
    prs = Host(dev).run(dev.poll())
    assert len(prs) == 1 and prs[0].address == 0x1000_0000 and prs[0].r == 1
    assert dev.outstanding_page_requests == 1
    assert [g.pages for g in dev.queued_page_request_groups] == [[0x2000_0000]]
    assert pri_status(dev) & 0x100 == 0
    out = decode_all(respond(dev, prs[0].prg_index, pasid=5))
    # the freed credit lets the queued group out; job1 asks for its translation again
    kinds = sorted((type(t).__name__, t.address) for t in out)
    assert kinds == [("MemRead", 0x1000_0000), ("PageRequest", 0x2000_0000)]
    pr2 = next(t for t in out if isinstance(t, tlp.PageRequest))
    assert pr2.w == 1 and pr2.r == 0 and pr2.l == 1
    assert dev.queued_page_request_groups == [] and dev.outstanding_page_requests == 1
    assert job1.status is job2.status is JobStatus.RUNNING


def test_group_size_limited_by_allocation():
    dev = Endpoint(RID, max_translations=3)
    linux_enable(dev, pri_requests=2)
    dev.dma(5, 0x1000_0000, 3 * PAGE, write=False)
    prs = Host(dev).run(dev.poll())
    assert [(p.address, p.l) for p in prs] == [(0x1000_0000, 0), (0x1000_1000, 1)]


def test_page_request_retries_are_bounded():
    dev = svm_device()
    job, prgi = fault_once(dev, 5, 0x1000_0000)
    host = Host(dev)  # keeps refusing the page although it answers Success
    for _ in range(5):
        prs = host.run(respond(dev, prgi, pasid=5))
        if not prs:
            break
        prgi = prs[0].prg_index
    assert job.status is JobStatus.FAILED and "still not accessible" in job.error
    assert dev.counters["page_requests"] == dev.page_request_retries


def test_pri_reset_and_stopped():
    dev = svm_device()
    pri = ext_caps(dev)[PRI_ID][0]
    job, _ = fault_once(dev, 5, 0x1000_0000)
    dev.cfg_write(pri + 4, 0x3, 2)  # Reset while Enable stays 1: no effect
    assert dev.outstanding_page_requests == 1
    dev.cfg_write(pri + 4, 0x0, 2)  # disabled, a request still outstanding
    assert pri_status(dev) & 0x100 == 0, "not Stopped while a request is outstanding"
    dev.cfg_write(pri + 4, 0x1, 2)
    assert [v.code for v in dev.violations] == ["pri_enable_not_stopped"]
    dev.cfg_write(pri + 4, 0x2, 2)  # Reset together with clearing Enable
    assert dev.cfg_read(pri + 4, 2) == 0, "Reset reads 0"
    assert pri_status(dev) & 0x100 and dev.outstanding_page_requests == 0
    assert job.status is JobStatus.FAILED


# ================================================================================================
# ATS invalidation
# ================================================================================================


def warm_atc(dev, pages: list[tuple[int | None, int]]) -> Host:
    host = Host(dev, {(pasid, page): (0x8000_0000 + i * PAGE, 1, 1) for i, (pasid, page) in enumerate(pages)})
    for pasid, page in pages:
        job = dev.dma(pasid, page, 4, write=False)
        host.run(dev.poll())
        assert job.status is JobStatus.DONE
    return host


def atc_keys(dev):
    return sorted(((e.pasid if e.pasid is not None else -1), e.base) for e in dev.atc)


def test_invalidation_scopes_and_completion_bytes():
    dev = svm_device()
    A, B = 0x1000_0000, 0x1000_2000
    warm_atc(dev, [(5, A), (5, A + PAGE), (5, B), (6, A), (None, A)])

    out = invalidate(dev, 3, A, 2 * PAGE, pasid=5)  # 8 KiB at A, PASID 5 only
    # pcie §3.5 worked example: requester 01:00.0, TA 00:00.0, CC = 1, ITag 3
    assert out == [bytes.fromhex("32000000" "01000002" "00000001" "00000008")]
    assert atc_keys(dev) == [(-1, A), (5, B), (6, A)]

    (cpl,) = decode_all(invalidate(dev, 4, B, PAGE, pasid=9, g=1))  # Global Invalidate: every PASID
    assert cpl.itag_vector == 1 << 4 and cpl.dest_id == TA and cpl.cc == 1
    assert atc_keys(dev) == [(-1, A), (6, A)]

    invalidate(dev, 5, A, PAGE)  # no PASID prefix: every entry in the range, PASID-tagged ones too
    assert dev.atc == []
    assert dev.counters["invalidate_requests"] == 3 and dev.errors == []


def test_global_invalidate_ignored_when_unsupported():
    dev = svm_device(ats=AtsParams(global_invalidate_supported=False))
    warm_atc(dev, [(5, 0x1000_0000), (6, 0x1000_0000)])
    invalidate(dev, 0, 0x1000_0000, PAGE, pasid=6, g=1)
    assert atc_keys(dev) == [(5, 0x1000_0000)]


def test_invalidation_waits_for_reads_using_the_translation():
    dev = svm_device()
    host = warm_atc(dev, [(5, 0x1000_0000)])
    job = dev.dma(5, 0x1000_0010, 8, write=False)
    (rd,) = decode_all(dev.poll())
    assert rd.at == tlp.AT_TRANSLATED
    assert invalidate(dev, 7, 0x1000_0000, PAGE, pasid=5) == []  # read still in flight
    assert dev.pending_invalidations == [7]
    (c,) = tlp.read_completions(rd, mem(rd.address, 8), TA)
    (cpl,) = decode_all(dev.receive_tlp(c.encode()))
    assert isinstance(cpl, tlp.AtsInvalidateCompletion) and cpl.itag_vector == 1 << 7
    assert job.status is JobStatus.DONE and job.data == mem(host.mapping[(5, 0x1000_0000)][0] + 0x10, 8)


def test_invalidation_late_and_never():
    dev = svm_device(invalidate_mode=InvalidateMode.HOLD)
    assert invalidate(dev, 1, 0, PAGE) == [] and invalidate(dev, 2, PAGE, PAGE) == []
    assert dev.poll() == [] and dev.pending_invalidations == [1, 2]
    dev.release_invalidations()
    assert [c.itag_vector for c in decode_all(dev.poll())] == [1 << 1, 1 << 2]

    dev = svm_device(invalidate_mode=InvalidateMode.NEVER)
    warm_atc(dev, [(5, 0x1000_0000)])
    assert invalidate(dev, 1, 0x1000_0000, PAGE, pasid=5) == [] and dev.poll() == []
    assert dev.atc == [] and dev.pending_invalidations == []  # dropped, just never answered


def test_invalidate_queue_depth_violation():
    dev = svm_device(ats=AtsParams(invalidate_queue_depth=2), invalidate_mode=InvalidateMode.HOLD)
    for itag in range(3):
        invalidate(dev, itag, 0, PAGE)
    assert [v.code for v in dev.violations] == ["invalidate_queue_overflow"]


def test_invalidation_during_translation_is_not_cached():
    dev = svm_device()
    job = dev.dma(5, 0x1000_0000, 4, write=False)
    (tr,) = decode_all(dev.poll())
    assert len(invalidate(dev, 0, 0x1000_0000, PAGE, pasid=5)) == 1
    stale = tlp.TranslationEntry.from_range(0x9000_0000, PAGE, r=1)
    (again,) = decode_all(dev.receive_tlp(tlp.translation_completion(tr, TA, [stale]).encode()))
    assert dev.atc == [] and again.at == tlp.AT_TRANSLATION_REQUEST
    Host(dev, {(5, 0x1000_0000): (0xA000_0000, 1, 0)}).run([again.encode()])
    assert job.data == mem(0xA000_0000, 4)


def test_invalidation_with_ats_disabled_or_misrouted_is_an_error():
    dev = Endpoint(RID)
    assert invalidate(dev, 0, 0, PAGE) == []
    dev2 = svm_device()
    out = dev2.receive_tlp(tlp.AtsInvalidateRequest(requester_id=TA, dest_id=0x0200, itag=0).encode())
    assert out == []
    assert [e.code for e in dev.errors] == ["invalidate_while_ats_disabled"]
    assert [e.code for e in dev2.errors] == ["misrouted"]


# ================================================================================================
# Stop markers
# ================================================================================================


def test_stop_marker_after_outstanding_page_requests():
    dev = svm_device()
    job, prgi = fault_once(dev, 5, 0x1000_0000)
    other, other_prgi = fault_once(dev, 6, 0x2000_0000)
    dev.stop_pasid(5)
    assert dev.poll() == [] and dev.stopping == {5}
    assert job.status is JobStatus.FAILED and other.status is JobStatus.RUNNING
    with pytest.raises(EndpointError, match="being stopped"):
        dev.dma(5, 0, 4, write=False)
    assert respond(dev, other_prgi, pasid=6) != []  # PASID 6's answer does not release PASID 5
    assert dev.stopping == {5}
    out = respond(dev, prgi, pasid=5)
    # Stop Marker: PASID prefix, L=1, W=R=0 (pcie §4.1)
    assert out == [page_request_bytes(5, 0, 0, l=1, w=0, r=0)]
    assert dev.stopping == frozenset() and dev.counters["stop_markers"] == 1
    dev.dma(5, 0, 4, write=False)  # the PASID may be used again


def test_stop_marker_immediately_when_idle():
    dev = svm_device()
    dev.stop_pasid(0x12345)
    (m,) = decode_all(dev.poll())
    assert m.is_stop_marker and m.pasid == 0x12345


# ================================================================================================
# Without ATS, completions, tags
# ================================================================================================


@pytest.mark.parametrize("kw", [dict(ats=None, pri=None), dict(use_ats=False)])
def test_untranslated_dma_and_ur(kw):
    dev = Endpoint(RID, **kw)
    caps = ext_caps(dev)
    dev.cfg_write(caps[PASID_ID][0] + 6, 1, 2)
    if ATS_ID in caps:
        dev.cfg_write(caps[ATS_ID][0] + 6, 0x8000, 2)
    w = dev.dma(3, 0x1_0000_0004, 8, write=True, data=b"12345678")
    (mw,) = decode_all(dev.poll())
    assert mw.at == tlp.AT_UNTRANSLATED and mw.pasid == 3 and mw.address == 0x1_0000_0004
    assert mw.data == b"12345678" and w.status is JobStatus.DONE
    r = dev.dma(3, 0x2000, 16, write=False)
    (mr,) = decode_all(dev.poll())
    assert mr.at == tlp.AT_UNTRANSLATED and mr.pasid == 3
    assert dev.receive_tlp(tlp.error_completion(mr, TA, tlp.CPL_UR).encode()) == []
    assert r.status is JobStatus.FAILED and "UR" in r.error
    assert dev.outstanding_tags == []


def test_translation_request_ur_fails_job():
    dev = svm_device()
    job = dev.dma(5, 0x1000, 4, write=False)
    (tr,) = decode_all(dev.poll())
    dev.receive_tlp(tlp.error_completion(tr, TA, tlp.CPL_CA).encode())
    assert job.status is JobStatus.FAILED and "Translation Request" in job.error


@settings(max_examples=60, deadline=None)
@given(va=st.integers(0, (1 << 40) - 1), length=st.integers(1, 6000), mrrs=st.sampled_from([128, 512, 4096]),
       max_payload=st.sampled_from([128, 256, 512]), rcb=st.sampled_from([64, 128]))
def test_split_read_completions_reassembled(va, length, mrrs, max_payload, rcb):
    dev = Endpoint(RID, ats=None, pri=None)
    p = legacy_caps(dev)[0x10]
    code = {128: 0, 512: 2, 4096: 5}[mrrs]
    dev.cfg_write(p + 8, dev.cfg_read(p + 8, 2) & ~0x7000 | code << 12, 2)
    job = dev.dma(None, va, length, write=False)
    host = Host(dev, max_payload=max_payload, rcb=rcb)
    host.run(dev.poll())
    reads = [t for t in host.requests if isinstance(t, tlp.MemRead)]
    assert all(4 * t.length <= mrrs and t.pasid is None for t in reads)
    assert job.status is JobStatus.DONE and job.data == mem(va, length)
    assert dev.errors == []


def test_bad_completions_are_recorded_not_raised():
    dev = Endpoint(RID, ats=None, pri=None)
    job = dev.dma(None, 0x1000, 256, write=False)
    (rd,) = decode_all(dev.poll())
    first, second = tlp.read_completions(rd, mem(0x1000, 256), TA, max_payload=128)
    dev.receive_tlp(first.encode())
    bad = tlp.Completion(requester_id=RID, completer_id=TA, tag=rd.tag, byte_count=100, lower_address=0,
                         data=second.data)  # 128 bytes remain
    assert dev.receive_tlp(bad.encode()) == []
    assert [e.code for e in dev.errors] == ["bad_completion"]
    assert job.status is JobStatus.FAILED
    dev.receive_tlp(second.encode())  # the tag is retired: unexpected now
    dev.receive_tlp(b"\x4a\x00")  # truncated
    assert [e.code for e in dev.errors] == ["bad_completion", "unexpected_completion", "malformed_tlp"]

    dev = Endpoint(RID, ats=None, pri=None)
    job = dev.dma(None, 0x1002, 6, write=False)
    (rd,) = decode_all(dev.poll())
    (good,) = tlp.read_completions(rd, mem(0x1000, 8), TA)
    assert good.lower_address == 0x02
    shifted = tlp.Completion(requester_id=RID, completer_id=TA, tag=rd.tag, byte_count=6, lower_address=0x03,
                             data=good.data)
    dev.receive_tlp(shifted.encode())
    assert [e.code for e in dev.errors] == ["bad_completion"] and "Lower Address" in dev.errors[0].detail


@pytest.mark.parametrize("devctl_ext,tag10,expect", [(0, False, 32), (1, False, 256), (1, True, 768)])
def test_tag_space(devctl_ext, tag10, expect):
    dev = Endpoint(RID, ats=None, pri=None, ten_bit_tag_requester_supported=tag10)
    p = legacy_caps(dev)[0x10]
    dev.cfg_write(p + 8, dev.cfg_read(p + 8, 2) & ~0x100 | devctl_ext << 8, 2)
    if tag10:
        dev.cfg_write(p + 0x28, 0x1000, 2)
    for i in range(800):
        dev.dma(None, i * PAGE, 4, write=False)
    reads = decode_all(dev.poll())
    tags = [t.tag for t in reads]
    assert len(tags) == expect == len(set(tags))
    if tag10:
        assert all(0x100 <= t <= 0x3FF for t in tags)  # Tag[9:8] = 00b is not a 10-bit tag (pcie §1.3)
    else:
        assert max(tags) < expect
    # a completion frees a tag and the next read goes out
    (c,) = tlp.read_completions(reads[0], mem(reads[0].address, 4), TA)
    assert len(dev.receive_tlp(c.encode())) == 1


def test_write_split_by_max_payload_size():
    dev = Endpoint(RID, ats=None, pri=None)
    va, data = 0x3FF3, bytes(range(256)) * 4
    dev.dma(None, va, len(data), write=True, data=data)
    host = Host(dev)
    host.run(dev.poll())
    writes = [t for t in host.requests if isinstance(t, tlp.MemWrite)]
    assert all(4 * w.length <= 128 for w in writes)  # default Max_Payload_Size 128
    assert host.writes == {va + i: b for i, b in enumerate(data)}


def test_dma_argument_checks():
    dev = Endpoint(RID)
    with pytest.raises(EndpointError, match="PASID Enable"):
        dev.dma(1, 0, 4, write=False)
    linux_enable(dev)
    with pytest.raises(EndpointError, match="Max PASID Width"):
        dev.dma(1 << 20, 0, 4, write=False)
    with pytest.raises(EndpointError, match="needs 4 bytes"):
        dev.dma(1, 0, 4, write=True, data=b"12")
    with pytest.raises(EndpointError, match="Privileged Mode Enable"):
        dev.dma(1, 0, 4, write=False, pmr=True)
    with pytest.raises(EndpointError, match="empty"):
        dev.dma(1, 0, 0, write=False)


def test_privileged_request_and_prefix_bits():
    dev = Endpoint(RID, pasid=PasidParams(privileged_mode_supported=True))
    linux_enable(dev, features=0x4)
    dev.dma(0x12345, 0x1000, 4, write=False, pmr=True)
    out = dev.poll()
    assert out[0][:4] == bytes.fromhex("91812345")  # PMR is prefix bit 23 (pcie §2.2)


def test_unexpected_requests_to_the_device():
    dev = svm_device()
    mrd = tlp.MemRead(requester_id=TA, tag=9, address=0xFEE0_0000)
    (cpl,) = decode_all(dev.receive_tlp(mrd.encode()))
    assert cpl.status == tlp.CPL_UR and cpl.tag == 9 and cpl.requester_id == TA
    dev.receive_tlp(tlp.PageRequest(requester_id=TA, address=0).encode())
    assert [e.code for e in dev.errors] == ["unsupported_request", "unexpected_tlp"]
