"""The host-memory AXI4 slave agent (tb/axi_mem.py): cocotb tests through tb/rtl/axi_loop.sv under
Verilator (tb/cocotb_axi_mem.py), plus the agent's pure burst rules checked without a simulator.

Simulation case ids are the test names (the first column of the `make sim` table)."""

import pytest
from cocotbext.axi import AxiBurstType

from tb import runner
from tb.axi_mem import AxiProtocolError, Burst, strobe_runs

SOURCES = [runner.ROOT / "tb" / "rtl" / "axi_loop.vlt", runner.ROOT / "tb" / "rtl" / "axi_loop.sv"]
TESTS = ["axi_mem_random", "axi_mem_bursts", "axi_mem_exclusive", "axi_mem_read_stream"]
CASES = [(t if w == 64 else f"{t}_w{w}", t, w) for w in (64, 256) for t in TESTS]


@pytest.mark.sim
@pytest.mark.parametrize("name,testcase,data_w", CASES, ids=[c[0] for c in CASES])
def test_axi_mem(name, testcase, data_w):
    runner.run("axi_loop", SOURCES, "tb.cocotb_axi_mem", testcase, parameters={"DATA_W": data_w}, name=name)


# --- burst rules (AMBA AXI4 §A3.4, §A7.2), no simulator needed -------------------------------------

INCR, FIXED, WRAP = AxiBurstType.INCR, AxiBurstType.FIXED, AxiBurstType.WRAP


def decode(addr, axlen, axsize, axburst, lock=0, bus=8):
    return Burst.decode("ar", 1, addr, axlen, axsize, int(axburst), lock, bus)


@pytest.mark.sim
@pytest.mark.parametrize("args,rule", [
    ((0x0, 0, 0, 3), "reserved"),
    ((0x0, 0, 4, INCR), "do not fit"),                       # 16-byte beats on an 8-byte bus
    ((0x0, 2, 3, WRAP), "2, 4, 8 or 16"),                    # 3 beats
    ((0x4, 1, 3, WRAP), "aligned to its beat size"),
    ((0x0, 16, 0, FIXED), "at most 16"),
    ((0xFF8, 1, 3, INCR), "4 KiB"),                          # 0xFF8..0x1007
])
def test_burst_rules(args, rule):
    with pytest.raises(AxiProtocolError, match=rule):
        decode(*args)


@pytest.mark.sim
def test_unaligned_beat_ends_at_its_container():
    """An unaligned 8-byte beat at 0xFFC transfers 0xFFC..0xFFF only: it does not cross 4 KiB."""
    assert decode(0xFFC, 0, 3, INCR).lanes(8) == [(0xFFC, 4, 8)]


@pytest.mark.sim
@pytest.mark.parametrize("addr,axlen,axsize,bus,rule", [
    (0x0, 16, 0, 8, "at most 16 beats"),                     # 17 beats
    (0x0, 2, 3, 8, "power of two"),                          # 24 bytes
    (0x0, 15, 4, 16, "at most 128"),                         # 256 bytes
    (0x8, 1, 3, 8, "aligned to its total size"),             # 16 bytes at 0x8
])
def test_exclusive_rules(addr, axlen, axsize, bus, rule):
    with pytest.raises(AxiProtocolError, match=rule):
        decode(addr, axlen, axsize, INCR, lock=1, bus=bus)
    decode(addr, axlen, axsize, INCR, lock=0, bus=bus)  # the same burst without the lock is legal


@pytest.mark.sim
def test_exclusive_entry_access_is_legal_on_any_bus():
    """The walker's access: one 8-byte beat (ARSIZE=3, ARLEN=0, INCR) at an 8-byte aligned entry."""
    for bus in (8, 16, 32, 64):
        b = decode(0x1238, 0, 3, INCR, lock=1, bus=bus)
        assert b.lanes(bus) == [(0x1238, 0x1238 % bus, 0x1238 % bus + 8)]


# Worked examples from the AXI4 addressing rules, computed by hand.
@pytest.mark.sim
@pytest.mark.parametrize("args,bus,expected", [
    # unaligned INCR of 4-byte beats on a 4-byte bus starting at 0x7: lanes 3, then whole words
    ((0x7, 2, 2, INCR), 4, [(0x7, 3, 4), (0x8, 0, 4), (0xC, 0, 4)]),
    # narrow 2-byte INCR on an 8-byte bus from 0x3: the first beat uses lane 3 only (container 2..3)
    ((0x3, 2, 1, INCR), 8, [(0x3, 3, 4), (0x4, 4, 6), (0x6, 6, 8)]),
    # 4-beat WRAP of 4 bytes from 0x38: 0x38, 0x3C, 0x30, 0x34 (boundary 0x30, 16 bytes)
    ((0x38, 3, 2, WRAP), 8, [(0x38, 0, 4), (0x3C, 4, 8), (0x30, 0, 4), (0x34, 4, 8)]),
    # FIXED repeats the (unaligned) first beat
    ((0x15, 2, 2, FIXED), 8, [(0x15, 5, 8)] * 3),
])
def test_lanes_examples(args, bus, expected):
    assert decode(*args, bus=bus).lanes(bus) == expected


@pytest.mark.sim
def test_strobe_runs():
    assert list(strobe_runs(0b1011_0110, 0, 8)) == [(1, 3), (4, 6), (7, 8)]
    assert list(strobe_runs(0xFF, 2, 5)) == [(2, 5)]
    assert list(strobe_runs(0, 0, 8)) == []
