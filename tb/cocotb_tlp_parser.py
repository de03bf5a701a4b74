"""cocotb tests of rtl/tlp_rx_parser.sv, scored against models.tlp.

Stimulus: random TLPs built with models.tlp (memory reads/writes with every AT, completions, the four
ATS/PRI messages, 0-4 prefixes incl. PASID), plus malformed byte strings made by mutating valid ones.
The golden verdict for every byte string is ``models.tlp.decode``: a TLP it accepts must come out with
every header field and payload byte equal to the decoded object's; one it rejects must be flagged by
the parser with an error of the matching class (see ``ERROR_CLASSES``), or passed on unflagged when the
rule is one the parser leaves to later stages (byte enables, message codes, ...).
Back-pressure is random on the input, the header channel and the payload stream.
"""

from __future__ import annotations

import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from models import tlp as T
from tb.runner import RTL_DIR
from tb.stats import Stats
from tb.svstruct import SvPackage

PKG = SvPackage(RTL_DIR / "iommu_pkg.sv")

# decode() verdict -> parser outcomes that agree with it. "payload" = flagged on the payload's last beat.
ERROR_CLASSES = {
    T.TruncatedError: {"TLP_ERR_TRUNCATED", "TLP_ERR_LENGTH", "payload"},
    T.LengthError: {"TLP_ERR_LENGTH", "payload"},
    T.PrefixError: {"TLP_ERR_PREFIX", "TLP_ERR_TRUNCATED"},  # a prefix with no header is truncated
    T.FmtTypeError: {"TLP_ERR_FMT_TYPE"},
    T.ReservedEncodingError: {"TLP_ERR_FMT_TYPE", "TLP_ERR_RESERVED"},
}
# Rules the parser deliberately leaves to the stages after it (they see the decoded fields).
LATER_STAGE = (T.ByteEnableError, T.BoundaryError, T.MessageCodeError)
LENGTH_OUTCOMES = {"TLP_OK", "TLP_ERR_LENGTH", "TLP_ERR_TRUNCATED", "payload"}
# First-beat errors that decode() ranks below a length error. The parser's header verdict is final after
# the first beat, so for a TLP longer than one beat it reports these before the length is known.
BELOW_LENGTH = {"TLP_ERR_PREFIX", "TLP_ERR_RESERVED"}


def _rand_prefixes(rng: random.Random) -> dict:
    """PASID prefix (often) and sometimes other local / End-End prefixes (pcie §2.1)."""
    f = {}
    if rng.random() < 0.6:
        f.update(pasid=rng.getrandbits(20), pmr=rng.getrandbits(1), er=rng.getrandbits(1))
    others = []
    if rng.random() < 0.1:
        others.append(0x8E000000 | rng.getrandbits(24))  # vendor local prefix
    if rng.random() < 0.1:
        others.append(0x90000000 | rng.getrandbits(24))  # TPH End-End prefix
    if others:
        f["other_prefixes"] = tuple(others)
    return f


def _rand_be(rng: random.Random, length: int) -> tuple[int, int]:
    if length == 1:
        return rng.choice([0x1, 0x3, 0x6, 0xC, 0xF, 0x8, 0x0]), 0
    return rng.choice([0xF, 0xE, 0xC, 0x8]), rng.choice([0xF, 0x7, 0x3, 0x1])


def _rand_addr(rng: random.Random, length: int) -> int:
    wide = rng.random() < 0.5
    page = rng.getrandbits(52 if wide else 20) << 12
    if wide and page >> 32 == 0:
        page |= 1 << 40
    off = rng.randrange(0, 4096 - 4 * length + 1, 4)
    return page | off


def random_tlp(rng: random.Random, max_dw: int) -> T.Tlp:
    """One random valid TLP (rejection-sampled through the codec's own encode-side checks)."""
    while True:
        kind = rng.choices(["rd", "wr", "cpl", "msg"], weights=[35, 35, 15, 15])[0]
        common = dict(requester_id=rng.getrandbits(16), tc=rng.getrandbits(3), attr=rng.getrandbits(3))
        try:
            if kind == "rd":
                length = rng.randint(1, max_dw)
                first_be, last_be = _rand_be(rng, length)
                at = rng.choice([T.AT_UNTRANSLATED, T.AT_TRANSLATION_REQUEST, T.AT_TRANSLATED])
                t = T.MemRead(**common, **_rand_prefixes(rng), tag=rng.getrandbits(10), at=at,
                              address=_rand_addr(rng, length), length=length, first_be=first_be,
                              last_be=last_be, nw=rng.getrandbits(1) if at == T.AT_TRANSLATION_REQUEST else 0)
            elif kind == "wr":
                length = rng.randint(1, max_dw)
                first_be, last_be = _rand_be(rng, length)
                t = T.MemWrite(**common, **_rand_prefixes(rng), tag=rng.getrandbits(8),
                               at=rng.choice([T.AT_UNTRANSLATED, T.AT_TRANSLATED]),
                               address=_rand_addr(rng, length), first_be=first_be, last_be=last_be,
                               data=rng.randbytes(4 * length))
            elif kind == "cpl":
                n = rng.choice([0, rng.randint(1, max_dw)])
                t = T.Completion(**common, completer_id=rng.getrandbits(16), tag=rng.getrandbits(10),
                                 status=T.CPL_SC if n else rng.choice(T.CPL_STATUSES),
                                 byte_count=rng.randint(1, 4095), lower_address=rng.getrandbits(7),
                                 data=rng.randbytes(4 * n))
            else:
                m = rng.randrange(4)
                if m == 0:
                    t = T.PageRequest(**common, **_rand_prefixes(rng), address=rng.getrandbits(52) << 12,
                                      prg_index=rng.getrandbits(9), l=rng.getrandbits(1),
                                      w=rng.getrandbits(1), r=rng.getrandbits(1))
                elif m == 1:
                    t = T.PrgResponse(**common, **_rand_prefixes(rng), dest_id=rng.getrandbits(16),
                                      response_code=rng.choice([0, 1, 0xF]), prg_index=rng.getrandbits(9))
                elif m == 2:
                    t = T.AtsInvalidateRequest(**common, **_rand_prefixes(rng), dest_id=rng.getrandbits(16),
                                               itag=rng.getrandbits(5), address=rng.getrandbits(52) << 12,
                                               s=rng.getrandbits(1))
                else:
                    t = T.AtsInvalidateCompletion(**common, dest_id=rng.getrandbits(16), cc=rng.getrandbits(3),
                                                  itag_vector=rng.getrandbits(32))
            t.encode()
            return t
        except ValueError:
            continue  # the codec refused this combination: draw again


def mutate(rng: random.Random, data: bytes) -> bytes:
    """A malformed variant of a valid TLP's bytes."""
    op = rng.randrange(7)
    npfx = 0
    while 4 * npfx < len(data) and data[4 * npfx] >> 5 == 0b100:
        npfx += 1
    if op == 0:   # truncate anywhere
        return data[: rng.randrange(1, len(data))]
    if op == 1:   # extra bytes after the end
        return data + rng.randbytes(4 * rng.randint(1, 12))
    if op == 2:   # reserved Fmt (101b..111b) or random Fmt/Type byte
        b = bytearray(data)
        b[4 * npfx] = rng.choice([0xA0 | rng.getrandbits(5), 0xE0 | rng.getrandbits(5), rng.getrandbits(8)])
        return bytes(b)
    if op == 3:   # too many prefixes
        return bytes.fromhex("90000000") * 5 + data[4 * npfx:]
    if op == 4:   # local prefix after an End-End prefix
        return bytes.fromhex("91000001") + bytes.fromhex("8e000000") + data[4 * npfx:]
    if op == 5:   # two PASID prefixes
        return bytes.fromhex("91000001") + bytes.fromhex("91000002") + data[4 * npfx:]
    b = bytearray(data)  # AT = 11b
    b[4 * npfx + 2] |= 0x0C
    return bytes(b)


def expected_header(t: T.Tlp) -> dict:
    """The parser's header fields as the decoded object defines them."""
    e = dict(pasid_valid=int(t.pasid is not None), pasid=t.pasid or 0, pmr=t.pmr, er=t.er, tc=t.tc,
             attr=t.attr, th=t.th, td=t.td, ep=t.ep, ln=t.ln, requester_id=t.requester_id)
    if isinstance(t, (T.MemRead, T.MemWrite)):
        e.update(kind="TLP_MEM_RD" if isinstance(t, T.MemRead) else "TLP_MEM_WR", at=t.at,
                 length=t.length & 0x3FF, tag=t.tag, addr=t.address,
                 ph=t.nw if isinstance(t, T.MemRead) and t.at == T.AT_TRANSLATION_REQUEST else t.ph)
        if not t.th:
            e.update(first_be=t.first_be, last_be=t.last_be)
    elif isinstance(t, T.Completion):
        if t.data:  # Length is reserved in a completion without data
            e["length"] = (len(t.data) // 4) & 0x3FF
        e.update(kind="TLP_CPL", tag=t.tag,
                 requester_id=t.completer_id,  # bytes 4-5 of a completion hold the completer ID
                 dw1=t.completer_id << 16 | t.status << 13 | t.bcm << 12 | (t.byte_count & 0xFFF),
                 dw2=t.requester_id << 16 | (t.tag & 0xFF) << 8 | t.lower_address)
    else:
        e.update(kind="TLP_MSG", msg_code=type(t).CODE)
        if isinstance(t, T.PageRequest):
            qw = t.address | t.prg_index << 3 | t.l << 2 | t.w << 1 | t.r
            e.update(dw2=qw >> 32, dw3=qw & 0xFFFFFFFF)
        elif isinstance(t, T.PrgResponse):
            e.update(dw2=t.dest_id << 16 | t.response_code << 12 | t.prg_index)
        elif isinstance(t, T.AtsInvalidateCompletion):
            e.update(dw2=t.dest_id << 16 | t.cc, dw3=t.itag_vector)
        elif isinstance(t, T.AtsInvalidateRequest):
            e.update(dw2=t.dest_id << 16)
    return e


def expected_payload(t: T.Tlp) -> bytes:
    if isinstance(t, (T.MemWrite, T.Completion)):
        return bytes(t.data)
    if isinstance(t, T.AtsInvalidateRequest):  # body, pcie §3.4: address | S<<11 | global
        return (t.address | t.s << 11 | t.global_invalidate).to_bytes(8, "big")
    return b""


class Tb:
    def __init__(self, dut, stats: Stats, rng: random.Random):
        self.dut, self.stats, self.rng = dut, stats, rng
        Clock(dut.clk_i, 4, unit="ns").start()
        kw = dict(reset_active_level=False)
        self.src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk_i, dut.rst_ni, **kw)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk_i, dut.rst_ni, **kw)
        for agent in (self.src, self.sink):
            agent.log.setLevel(logging.WARNING)  # no per-frame log lines
        self.headers: list[dict] = []

    def backpressure(self, busy: float):
        rng = self.rng
        self.src.set_pause_generator(iter(lambda: rng.random() < busy, None))
        self.sink.set_pause_generator(iter(lambda: rng.random() < busy, None))
        self.hdr_busy = busy

    async def reset(self):
        self.dut.rst_ni.value = 0
        self.dut.hdr_ready_i.value = 0
        await ClockCycles(self.dut.clk_i, 3)
        self.dut.rst_ni.value = 1
        await ClockCycles(self.dut.clk_i, 2)

    async def header_monitor(self, n: int):
        """Collect n headers, with a random hdr_ready (back-pressure on the header channel)."""
        dut, rng = self.dut, self.rng
        clk, valid, ready, hdr = dut.clk_i, dut.hdr_valid_o, dut.hdr_ready_i, dut.hdr_o
        edge = RisingEdge(clk)
        ready.value = 1
        while len(self.headers) < n:
            await edge
            self.stats.cycles += 1
            if valid.value and ready.value:
                self.headers.append(PKG.unpack("tlp_hdr_t", int(hdr.value)))
            ready.value = int(rng.random() >= self.hdr_busy)
        ready.value = 0

    def fail(self, i: int, data: bytes, what: str, expected, actual):
        self.stats.mismatches += 1
        raise AssertionError(
            f"TLP #{i} {what} mismatch\n  bytes:    {data.hex()}\n  expected: {expected}\n"
            f"  actual:   {actual}\n  {self.stats.rerun_hint()}")


async def run_stream(dut, count: int, malformed: float, busy: float, max_dw: int):
    stats = Stats()
    rng = random.Random(stats.seed)
    tb = Tb(dut, stats, rng)
    tb.backpressure(busy)
    beat_bytes = int(dut.DATA_W.value) // 8
    await tb.reset()
    try:
        cases = []
        for _ in range(count):
            data = random_tlp(rng, max_dw).encode()
            if rng.random() < malformed:
                data = mutate(rng, data)
            try:
                verdict = T.decode(data, strict=False)  # a receiver ignores reserved bits
            except T.TlpError as exc:
                verdict = exc
            cases.append((data, verdict))
        # TLPs that must produce payload beats, in order
        mon = cocotb.start_soon(tb.header_monitor(len(cases)))
        for data, _ in cases:
            await tb.src.send(AxiStreamFrame(data))
        await mon

        for i, ((data, verdict), hdr) in enumerate(zip(cases, tb.headers)):
            rtl_err = hdr["err"]
            if isinstance(verdict, T.Tlp):
                exp = expected_header(verdict)
                got = {k: hdr[k] for k in exp}
                if exp["kind"] == "TLP_CPL":
                    got["dw2"] &= ~0x80  # DW2 bit 7 of a completion is reserved; decode(strict=False) drops it
                if rtl_err != "TLP_OK" or got != exp:
                    tb.fail(i, data, "header", dict(exp, err="TLP_OK"), dict(got, err=rtl_err))
                payload = expected_payload(verdict)
                if payload:
                    frame = await tb.sink.recv()
                    tuser = frame.tuser[-1] if isinstance(frame.tuser, list) else frame.tuser
                    if bytes(frame.tdata) != payload or tuser:
                        tb.fail(i, data, "payload", payload.hex(), f"{bytes(frame.tdata).hex()} tuser={tuser}")
            elif isinstance(verdict, T.UnsupportedTypeError):
                # the model stops at the type; the parser may also have seen a length problem
                if hdr["kind"] != "TLP_OTHER" or rtl_err not in ("TLP_OK", "TLP_ERR_LENGTH", "TLP_ERR_TRUNCATED"):
                    tb.fail(i, data, "unsupported type", "TLP_OTHER", f"{hdr['kind']}/{rtl_err}")
                if rtl_err == "TLP_OK" and hdr["payload_bytes"]:
                    await tb.sink.recv()
            else:
                allowed = next((v for k, v in ERROR_CLASSES.items() if isinstance(verdict, k)), None)
                outcome = rtl_err
                if rtl_err == "TLP_OK" and hdr["payload_bytes"] and hdr["kind"] != "TLP_OTHER":
                    frame = await tb.sink.recv()
                    tuser = frame.tuser[-1] if isinstance(frame.tuser, list) else frame.tuser
                    outcome = "payload" if tuser else "TLP_OK"
                elif rtl_err == "TLP_OK" and hdr["payload_bytes"]:
                    await tb.sink.recv()
                if allowed is None:
                    # decode() stops at these rules before checking the length, so the parser may
                    # also have flagged a length problem the model never looked at
                    if not isinstance(verdict, LATER_STAGE) or outcome not in LENGTH_OUTCOMES:
                        tb.fail(i, data, "later-stage rule", f"TLP_OK ({type(verdict).__name__}: {verdict})",
                                outcome)
                elif (isinstance(verdict, (T.TruncatedError, T.LengthError)) and len(data) > beat_bytes
                      and outcome in BELOW_LENGTH):
                    pass  # the parser judged the first beat before the length could be known (see BELOW_LENGTH)
                elif outcome not in allowed:
                    tb.fail(i, data, "error verdict", f"one of {sorted(allowed)} ({type(verdict).__name__}: "
                            f"{verdict})", outcome)
            stats.checked += 1
        await ClockCycles(dut.clk_i, 10)
        if not tb.sink.empty():
            raise AssertionError(f"parser produced unexpected payload frames; {stats.rerun_hint()}")
        stats.result = "PASS"
        dut._log.info("checked %d TLPs (%d malformed), %d cycles", stats.checked,
                      sum(not isinstance(v, T.Tlp) for _, v in cases), stats.cycles)
    finally:
        stats.write()


def _count(default: int) -> int:
    return int(os.environ.get("COUNT") or default)


@cocotb.test()
async def tlp_parser_random(dut):
    """Random valid + malformed TLPs, random back-pressure everywhere."""
    await run_stream(dut, _count(1500), malformed=0.2, busy=0.3, max_dw=40)


@cocotb.test()
async def tlp_parser_streaming(dut):
    """Back-to-back valid TLPs with no back-pressure (exercises the parser at full rate)."""
    await run_stream(dut, _count(600), malformed=0.0, busy=0.0, max_dw=16)


@cocotb.test()
async def tlp_parser_long_payloads(dut):
    """Writes and completions up to 1024 DW (Length = 0 on the wire)."""
    await run_stream(dut, _count(60), malformed=0.1, busy=0.2, max_dw=1024)
