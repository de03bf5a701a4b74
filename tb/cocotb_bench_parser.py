"""Throughput bench of rtl/tlp_rx_parser.sv (run by tools/bench.py, not part of `make sim`).

Two streams of valid TLPs, driven back to back with no back-pressure anywhere (hdr_ready_i and
m_axis_tready held at 1):
* ``hdr_only``: TLPs without data (reads, page requests, PRG responses, invalidate completions), each one
  beat: the ideal is one TLP per cycle.
* ``mixed``: the regression's random mix (tb.cocotb_tlp_parser.random_tlp, up to 16 DW of data), 1-3 beats.

Cycles are counted from the clock edge that accepts the first beat to the edge that hands out the last
header. The ideal for that window is one input beat per cycle: the beats in front of the last TLP plus the
last TLP's first beat. Wall time covers the same window. One coroutine drives the input and samples both
outputs each cycle (the cheap shape, see the tooling notes §7); headers and payload are checked against
models.tlp after the timed window, so checking costs no simulation speed. The result is written as JSON to
$SVM_BENCH_OUT only when every TLP checked out.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from models import tlp as T
from tb.cocotb_tlp_parser import PKG, expected_header, expected_payload, random_tlp

DRAIN_CYCLES = 20  # payload beats still in flight after the last header


def _hdr_only(rng: random.Random) -> T.Tlp:
    while True:
        t = random_tlp(rng, max_dw=16)
        if not expected_payload(t):
            return t


def _mixed(rng: random.Random) -> T.Tlp:
    return random_tlp(rng, max_dw=16)


STREAMS = {"hdr_only": _hdr_only, "mixed": _mixed}


def to_beats(tlps: list[T.Tlp], nbytes: int) -> tuple[list[tuple[int, int, int]], int]:
    """AXI-Stream beats (tdata, tkeep, tlast) in wire order, and the index of the last TLP's first beat."""
    beats, last_first = [], 0
    for t in tlps:
        data = t.encode()
        last_first = len(beats)
        for off in range(0, len(data), nbytes):
            chunk = data[off:off + nbytes]
            last = int(off + nbytes >= len(data))
            beats.append((int.from_bytes(chunk, "little"), (1 << len(chunk)) - 1, last))
    return beats, last_first


async def reset(dut):
    dut.rst_ni.value = 0
    dut.s_axis_tvalid.value = 0
    dut.hdr_ready_i.value = 0
    dut.m_axis_tready.value = 0
    await ClockCycles(dut.clk_i, 3)
    dut.rst_ni.value = 1
    await ClockCycles(dut.clk_i, 2)


async def stream(dut, tlps: list[T.Tlp], nbytes: int) -> dict:
    beats, last_first = to_beats(tlps, nbytes)
    clk = RisingEdge(dut.clk_i)
    tvalid, tdata, tkeep, tlast, tready = (dut.s_axis_tvalid, dut.s_axis_tdata, dut.s_axis_tkeep,
                                           dut.s_axis_tlast, dut.s_axis_tready)
    hvalid, hdr = dut.hdr_valid_o, dut.hdr_o
    mvalid, mdata, mkeep, mlast, muser = (dut.m_axis_tvalid, dut.m_axis_tdata, dut.m_axis_tkeep,
                                          dut.m_axis_tlast, dut.m_axis_tuser)
    dut.hdr_ready_i.value = 1
    dut.m_axis_tready.value = 1
    headers, out_beats = [], []

    def sample_payload():
        if mvalid.value:
            out_beats.append((int(mdata.value), int(mkeep.value), int(mlast.value), int(muser.value)))

    i, cycle, first_accept, last_header = 0, 0, None, None
    tdata.value, tkeep.value, tlast.value = beats[0]
    tvalid.value = 1
    t0 = time.perf_counter()
    while len(headers) < len(tlps):
        await clk  # values read now are the ones the edge sampled: a handshake happened at this edge
        cycle += 1
        if i < len(beats) and tready.value:
            if first_accept is None:
                first_accept = cycle
            i += 1
            if i < len(beats):
                tdata.value, tkeep.value, tlast.value = beats[i]
            else:
                tvalid.value = 0
        if hvalid.value:
            headers.append(int(hdr.value))
            last_header = cycle
        sample_payload()
        if cycle > 4 * len(beats) + 100:
            raise AssertionError(f"parser stalled: {len(headers)}/{len(tlps)} headers after {cycle} cycles")
    wall = time.perf_counter() - t0
    for _ in range(DRAIN_CYCLES):
        await clk
        if hvalid.value:
            raise AssertionError(f"a header beyond the {len(tlps)} TLPs sent")
        sample_payload()

    check(tlps, headers, out_beats, nbytes)
    cycles = last_header - first_accept
    ideal = last_first + 1
    return dict(tlps=len(tlps), beats=len(beats), cycles=cycles, ideal_cycles=ideal, wall_s=wall,
                sim_cycles=cycle)


def check(tlps: list[T.Tlp], headers: list[int], out_beats: list[tuple], nbytes: int) -> None:
    """Every header and payload against the model's decode of the bytes sent."""
    frames, cur = [], b""
    for data, keep, last, user in out_beats:
        cur += data.to_bytes(nbytes, "little")[:keep.bit_length()]
        if last:
            if user:
                raise AssertionError(f"payload frame {len(frames)} flagged a length error (tuser)")
            frames.append(cur)
            cur = b""
    want_frames = []
    for n, (t, h) in enumerate(zip(tlps, headers)):
        ref = T.decode(t.encode(), strict=False)
        got = PKG.unpack("tlp_hdr_t", h)
        exp = expected_header(ref)
        if got["err"] != "TLP_OK" or {k: got[k] for k in exp} != exp:
            raise AssertionError(f"TLP #{n} header mismatch\n  bytes: {t.encode().hex()}\n  expected: {exp}\n"
                                 f"  actual: {dict((k, got[k]) for k in exp)} err={got['err']}")
        if expected_payload(ref):
            want_frames.append(expected_payload(ref))
    if len(frames) != len(want_frames):
        raise AssertionError(f"{len(frames)} payload frames received, {len(want_frames)} expected")
    for k, (got_frame, want) in enumerate(zip(frames, want_frames)):
        if got_frame != want:
            raise AssertionError(f"payload frame #{k}\n  expected: {want.hex()}\n"
                                 f"  actual:   {got_frame.hex()}")


@cocotb.test()
async def bench_parser(dut):
    """Both streams, COUNT TLPs each (default 10000: about 0.5 s of timed simulation). Writes the numbers
    to $SVM_BENCH_OUT."""
    count = int(os.environ.get("COUNT") or 10000)
    seed = int(os.environ.get("SVM_SEED", "1"))
    nbytes = int(dut.DATA_W.value) // 8
    rng = random.Random(seed)
    Clock(dut.clk_i, 4, unit="ns").start()
    results = {"seed": seed, "data_w": nbytes * 8}
    for name, gen in STREAMS.items():
        await reset(dut)
        try:
            results[name] = await stream(dut, [gen(rng) for _ in range(count)], nbytes)
        except AssertionError as e:
            raise AssertionError(f"{name} stream: {e}\n  seed {seed}; rerun: make bench SEED={seed} "
                                 f"COUNT={count}") from None
        dut._log.info("%s: %s", name, results[name])
    Path(os.environ["SVM_BENCH_OUT"]).write_text(json.dumps(results, indent=2) + "\n")
