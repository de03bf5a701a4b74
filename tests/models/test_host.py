"""Tests for models.host: sparse memory, frame allocator, address spaces with real page tables.

The page-table checks use a walker written here from the spec text (vtd.md §3.1, §3.2): index bits
IA[12+9(l-1)+8 : 12+9(l-1)] per level, PS leaves at PDPE/PDE, output = ADDR[51:page shift] | IA[offset].
Bit positions are literal constants below, not taken from models.paging.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.host import (
    FrameAllocator,
    Memory,
    MmError,
    Mm,
    NonCanonicalError,
    NotMappedError,
    OutOfFrames,
    OverlapError,
)

K4, M2, G1 = 1 << 12, 1 << 21, 1 << 30

# first-stage entry bits (vtd.md §3.2)
P, RW, US, A, D, PS = 1 << 0, 1 << 1, 1 << 2, 1 << 5, 1 << 6, 1 << 7
ADDR_51_12 = ((1 << 52) - 1) & ~0xFFF


# ------------------------------------------------------------------------------------------------
# the independent walker
# ------------------------------------------------------------------------------------------------


def entry_at(mem: Memory, table: int, level: int, va: int) -> tuple[int, int]:
    """(entry address, raw entry) for ``va`` in the level-``level`` table at ``table``."""
    index = (va >> (12 + 9 * (level - 1))) & 0x1FF
    addr = table + 8 * index
    return addr, int.from_bytes(mem.read(addr, 8), "little")


def spec_translate(mem: Memory, root: int, levels: int, va: int):
    """Walk as the IOMMU would: (page base va, page size, pa of va, write, user) or None."""
    table = root
    write = user = True
    for level in range(levels, 0, -1):
        _, raw = entry_at(mem, table, level, va)
        if not raw & P:
            return None
        write &= bool(raw & RW)
        user &= bool(raw & US)
        if level == 1 or (level in (2, 3) and raw & PS):
            size = 1 << (12 + 9 * (level - 1))
            pa = (raw & ADDR_51_12 & ~(size - 1)) | (va & (size - 1))
            return va & ~(size - 1), size, pa, write, user
        assert not raw & PS, f"PS set in a level-{level} non-leaf entry"
        table = raw & ADDR_51_12
    raise AssertionError("unreachable: level 1 is always a leaf")


def spec_enumerate(mem: Memory, root: int, levels: int):
    """Every leaf in the tree: ({page va: (size, page pa, write, user)}, number of table frames).
    Also checks that every non-leaf entry is P|RW|US and that tables are not shared."""
    top_bit = 48 if levels == 4 else 57
    leaves: dict[int, tuple[int, int, bool, bool]] = {}
    tables = set()

    def visit(table, level, va_prefix):
        assert table not in tables, f"table {table:#x} reached twice"
        tables.add(table)
        for index in range(512):
            raw = int.from_bytes(mem.read(table + 8 * index, 8), "little")
            if not raw & P:
                assert raw == 0, f"non-present entry {raw:#x} left behind"
                continue
            va = va_prefix | (index << (12 + 9 * (level - 1)))
            if level == 1 or (level in (2, 3) and raw & PS):
                size = 1 << (12 + 9 * (level - 1))
                if va >> (top_bit - 1):  # sign-extend into the upper half
                    va |= ((1 << 64) - 1) & ~((1 << top_bit) - 1)
                leaves[va] = (size, raw & ADDR_51_12 & ~(size - 1), bool(raw & RW), bool(raw & US))
            else:
                assert raw & (P | RW | US) == P | RW | US, f"non-leaf entry {raw:#x} lacks P|RW|US"
                visit(raw & ADDR_51_12, level - 1, va)

    visit(root, levels, 0)
    return leaves, len(tables)


def make(levels=4, alloc_base=1 << 32, alloc_size=16 * G1):
    mem = Memory()
    fa = FrameAllocator(mem, alloc_base, alloc_size)
    return mem, fa, Mm(mem, fa, levels=levels)


# ------------------------------------------------------------------------------------------------
# Memory
# ------------------------------------------------------------------------------------------------


def test_memory_reads_zero_and_is_sparse():
    mem = Memory()
    assert mem.read(0x1234, 16) == bytes(16)
    assert mem.read64(1 << 63) == 0
    mem.write(0, b"\x01")
    mem.write((1 << 64) - 1, b"\x02")  # the very last byte
    assert mem.resident_pages == 2
    assert mem.read((1 << 64) - 2, 2) == b"\x00\x02"


def test_memory_little_endian_and_page_crossing():
    mem = Memory()
    addr = 0x2FFC  # 8 bytes across the 0x3000 page boundary
    mem.write(addr, bytes(range(1, 9)))
    assert mem.read64(addr) == 0x0807060504030201
    mem.write64(0x5000, 0x1122334455667788)
    assert mem.read(0x5000, 8) == bytes([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
    big = bytes(random.Random(1).randrange(256) for _ in range(3 * K4 + 100))
    mem.write(0x7F80, big)
    assert mem.read(0x7F80, len(big)) == big
    assert mem.read(0x7F7F, 1) == b"\0" and mem.read(0x7F80 + len(big), 1) == b"\0"


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.read(-1, 1),
        lambda m: m.read(1 << 64, 0),
        lambda m: m.read((1 << 64) - 4, 8),
        lambda m: m.write((1 << 64) - 1, b"ab"),
        lambda m: m.write64(-8, 0),
        lambda m: m.write64(0, 1 << 64),
        lambda m: m.read(0, -1),
        lambda m: m.cmpxchg64(4, 0, 1),
    ],
)
def test_memory_rejects_bad_addresses(call):
    with pytest.raises(ValueError):
        call(Memory())


def test_cmpxchg_semantics():
    mem = Memory()
    mem.write64(0x100, 0x1000 | P)
    assert mem.cmpxchg64(0x100, 0x1000 | P, 0x1000 | P | A) == (True, 0x1000 | P)
    assert mem.read64(0x100) == 0x1000 | P | A
    # stale expected value: nothing stored, the current value comes back
    assert mem.cmpxchg64(0x100, 0x1000 | P, 0xDEAD) == (False, 0x1000 | P | A)
    assert mem.read64(0x100) == 0x1000 | P | A


def test_cmpxchg_loses_no_concurrent_update():
    """The IOMMU's A/D update races a CPU change of the same entry (vtd.md §3.5): the CAS must fail and
    the retry must keep both changes."""
    mem = Memory()
    mem.write64(0x40, 0x5000 | P | RW | US)
    seen = mem.read64(0x40)  # IOMMU reads the entry
    mem.write64(0x40, 0x5000 | P | US)  # CPU write-protects it meanwhile
    ok, old = mem.cmpxchg64(0x40, seen, seen | A | D)
    assert not ok and old == 0x5000 | P | US
    ok, _ = mem.cmpxchg64(0x40, old, old | A)
    assert ok and mem.read64(0x40) == 0x5000 | P | US | A


def test_write_observers():
    mem = Memory()
    log = []
    mem.on_write.append(lambda addr, data: log.append((addr, bytes(data))))
    mem.write(0x10, b"xy")
    mem.write64(0x18, 5)
    mem.cmpxchg64(0x18, 4, 9)  # fails: no write
    mem.cmpxchg64(0x18, 5, 9)
    mem.read(0, 100)
    mem.zero(0x0FFE, 4)
    assert log == [
        (0x10, b"xy"),
        (0x18, (5).to_bytes(8, "little")),
        (0x18, (9).to_bytes(8, "little")),
        (0x0FFE, b"\0\0"),
        (0x1000, b"\0\0"),
    ]


def test_zero_clears_partial_and_whole_pages():
    mem = Memory()
    mem.write(0x0F00, b"\xff" * 0x3200)  # 0x0F00 .. 0x4100
    mem.zero(0x0F80, 0x3100)  # leaves 0x0F00..0x0F80 and 0x4080..0x4100
    assert mem.read(0x0F00, 0x80) == b"\xff" * 0x80
    assert mem.read(0x0F80, 0x3100) == bytes(0x3100)
    assert mem.read(0x4080, 0x80) == b"\xff" * 0x80
    assert mem.resident_pages == 2
    mem.zero(0, 1 << 40)  # huge range: must not iterate 2^28 pages
    assert mem.resident_pages == 0


WINDOW = 3 * K4


@settings(max_examples=60, deadline=None)
@given(
    base=st.sampled_from([0, 0x7FFF_F000, (1 << 64) - WINDOW]),
    ops=st.lists(
        st.tuples(st.integers(0, WINDOW - 1), st.binary(min_size=0, max_size=600), st.booleans()), max_size=25
    ),
)
def test_memory_against_flat_model(base, ops):
    """Random writes / zeroes in a 3-page window against a flat bytearray."""
    mem, ref = Memory(), bytearray(WINDOW)
    for off, data, use_zero in ops:
        data = data[: WINDOW - off]
        if use_zero:
            mem.zero(base + off, len(data))
            ref[off : off + len(data)] = bytes(len(data))
        else:
            mem.write(base + off, data)
            ref[off : off + len(data)] = data
    assert mem.read(base, WINDOW) == bytes(ref)
    for off in range(0, WINDOW - 8, 61):
        assert mem.read64(base + off) == int.from_bytes(ref[off : off + 8], "little")


# ------------------------------------------------------------------------------------------------
# FrameAllocator
# ------------------------------------------------------------------------------------------------


def test_allocator_alignment_zeroing_and_exhaustion():
    mem = Memory()
    fa = FrameAllocator(mem, 0x1000, 4 * G1)  # base deliberately not 2M aligned
    a = fa.alloc()
    assert a == 0x1000
    b = fa.alloc(M2)
    assert b % M2 == 0 and b >= 0x2000
    c = fa.alloc(G1)
    assert c % G1 == 0 and c >= G1
    for pa, size in ((a, K4), (b, M2), (c, G1)):
        assert not (pa < fa.base or pa + size > fa.end)
    # no two blocks overlap
    blocks = sorted([(a, K4), (b, M2), (c, G1)])
    assert all(p0 + s0 <= p1 for (p0, s0), (p1, _) in zip(blocks, blocks[1:]))
    mem.write(a + 8, b"dirty")
    fa.free(a)
    assert fa.alloc() == a and mem.read(a + 8, 5) == bytes(5)
    # exhaustion: [1G, 4G) minus c has two aligned 1G slots at most
    fa.alloc(G1)
    fa.alloc(G1)
    with pytest.raises(OutOfFrames, match="no free 1G block"):
        fa.alloc(G1)
    assert isinstance(OutOfFrames("x"), MemoryError)


def test_allocator_free_coalesces():
    fa = FrameAllocator(Memory(), 0, 2 * M2)
    frames = [fa.alloc() for _ in range(1024)]
    assert sorted(frames) == [i * K4 for i in range(1024)]
    with pytest.raises(OutOfFrames):
        fa.alloc()
    for pa in random.Random(7).sample(frames, len(frames)):
        fa.free(pa)
    assert fa.used_bytes == 0 and fa.free_bytes == 2 * M2
    assert sorted([fa.alloc(M2), fa.alloc(M2)]) == [0, M2]  # fully merged again


def test_allocator_bad_requests():
    fa = FrameAllocator(Memory(), 0, M2)
    pa = fa.alloc()
    with pytest.raises(ValueError, match="no block allocated"):
        fa.free(pa + K4)
    with pytest.raises(ValueError, match="not 2M"):
        fa.free(pa, M2)
    fa.free(pa)
    with pytest.raises(ValueError, match="no block allocated"):
        fa.free(pa)  # double free
    with pytest.raises(ValueError, match="power of two"):
        fa.alloc(3 * K4)
    with pytest.raises(ValueError, match="alignment"):
        FrameAllocator(Memory(), 0x800, M2)


# ------------------------------------------------------------------------------------------------
# Mm: fixed cases
# ------------------------------------------------------------------------------------------------


def test_worked_example_4level():
    """va 0x4020_0000 = PML4[0] / PDPT[1] / PD[1]; a 2M page at pa 0x8000_0000 (vtd.md §3.1)."""
    mem, fa, mm = make()
    assert mm.map(0x4020_0000, M2, pa=0x8000_0000, write=False) == 0x8000_0000
    pml4e = mem.read64(mm.pgd + 8 * 0)
    assert pml4e & (P | RW | US | PS) == P | RW | US
    pdpte = mem.read64((pml4e & ADDR_51_12) + 8 * 1)
    assert pdpte & (P | RW | US | PS) == P | RW | US
    pde = mem.read64((pdpte & ADDR_51_12) + 8 * 1)
    assert pde == 0x8000_0000 | P | US | PS  # RW clear, nothing else set
    assert spec_translate(mem, mm.pgd, 4, 0x4021_2345) == (0x4020_0000, M2, 0x8001_2345, False, True)
    m = mm.lookup(0x4021_2345)
    assert (m.va, m.size, m.pa, m.write, m.user) == (0x4020_0000, M2, 0x8000_0000, False, True)
    assert m.translate(0x4021_2345) == 0x8001_2345
    assert mm.lookup(0x4040_0000) is None and mm.lookup(0x401F_F000) is None


def test_5level_uses_bits_56_48():
    mem, fa, mm = make(levels=5)
    va = (3 << 48) | (5 << 39) | 0x7000  # PML5[3], PML4[5], PDPT[0], PD[0], PT[7]
    pa = mm.map(va)
    assert mm.pgd % K4 == 0
    e5 = mem.read64(mm.pgd + 8 * 3)
    e4 = mem.read64((e5 & ADDR_51_12) + 8 * 5)
    e3 = mem.read64((e4 & ADDR_51_12))
    e2 = mem.read64((e3 & ADDR_51_12))
    e1 = mem.read64((e2 & ADDR_51_12) + 8 * 7)
    assert e1 == pa | P | RW | US
    with pytest.raises(NonCanonicalError):
        make(levels=4)[2].map(va)


def test_upper_half_kernel_mapping():
    mem, fa, mm = make()
    kva = 0xFFFF_8000_0000_0000  # PML4[256]
    pa = mm.map(kva, G1, user=False)
    pml4e = mem.read64(mm.pgd + 8 * 256)
    assert pml4e & (P | RW | US) == P | RW | US
    assert mem.read64(pml4e & ADDR_51_12) == pa | P | RW | PS  # US clear: supervisor-only leaf
    assert spec_translate(mem, mm.pgd, 4, kva + 0x123) == (kva, G1, pa + 0x123, True, False)


@pytest.mark.parametrize(
    "levels,va,ok",
    [
        (4, 0x0000_7FFF_FFFF_F000, True),
        (4, 0x0000_8000_0000_0000, False),
        (4, 0xFFFF_8000_0000_0000, True),
        (4, 0xFF00_0000_0000_0000, False),
        (5, 0x0000_8000_0000_0000, True),
        (5, 0x00FF_FFFF_FFFF_F000, True),
        (5, 0x0100_0000_0000_0000, False),
        (5, 0xFF00_0000_0000_0000, True),
        (5, 0xFE00_0000_0000_0000, False),
    ],
)
def test_canonical(levels, va, ok):
    mem, fa, mm = make(levels=levels)
    if ok:
        mm.map(va)
        assert mm.lookup(va) is not None
    else:
        with pytest.raises(NonCanonicalError):
            mm.map(va)
        with pytest.raises(NonCanonicalError):
            mm.lookup(va)
        with pytest.raises(NonCanonicalError):
            mm.mmap(va, K4)


def test_range_across_canonical_hole_is_refused():
    mm = make()[2]
    with pytest.raises(NonCanonicalError):
        mm.mmap(0x0000_7FFF_FFFF_F000, 2 * K4)
    with pytest.raises(NonCanonicalError):
        mm.mmap(0xFFFF_FFFF_FFFF_F000, 2 * K4)  # would wrap past 2^64


def test_overlaps_are_refused():
    mem, fa, mm = make()
    mm.map(0x20_0000, M2)
    with pytest.raises(OverlapError, match="overlaps the 2M page 0x200000"):
        mm.map(0x20_1000)
    with pytest.raises(OverlapError):
        mm.map(0x20_0000, M2)
    with pytest.raises(OverlapError):
        mm.map(0, G1)
    mm.map(0x40_0000 + 0x1F_F000)  # last 4K of the next 2M region
    with pytest.raises(OverlapError):
        mm.map(0x40_0000, M2)
    used = fa.used_bytes
    with pytest.raises(OverlapError):
        mm.map(0x40_0000, M2)
    assert fa.used_bytes == used  # nothing allocated by a refused map


def test_bad_map_arguments():
    mm = make()[2]
    with pytest.raises(MmError, match="not 4K, 2M or 1G"):
        mm.map(0, 8 * K4)
    with pytest.raises(MmError, match="not aligned"):
        mm.map(K4, M2)
    with pytest.raises(MmError, match="aligned and below 2"):
        mm.map(0, M2, pa=K4)
    with pytest.raises(MmError, match="aligned and below 2"):
        mm.map(0, K4, pa=1 << 52)
    with pytest.raises(ValueError):
        mm.map(-K4)


def test_unmap_and_protect_do_not_split_large_pages():
    mem, fa, mm = make()
    mm.map(0, M2)
    with pytest.raises(MmError, match="only part"):
        mm.unmap(0x1000, K4)
    with pytest.raises(MmError, match="only part"):
        mm.protect(0, K4, write=False)
    assert mm.unmap(M2, K4) == []  # nothing mapped there
    assert mm.unmap(0, G1) == [(0, M2)]  # a covering range takes the whole page
    assert mm.lookup(0) is None


def test_tables_freed_when_empty():
    mem, fa, mm = make()
    pgd_only = fa.used_bytes
    assert pgd_only == K4 and mm.table_count == 1
    vas = [0x1000, 0x3000, 0x20_0000, 0x4000_0000, 0x80_0000_0000, 0x7F00_0000_0000]
    for va in vas:
        mm.map(va)
    leaves, tables = spec_enumerate(mem, mm.pgd, 4)
    assert sorted(leaves) == sorted(vas)
    # PML4 + {PDPT,PD,PT for 0x1000/0x3000} + PT(0x200000) + PD,PT(0x40000000) + PDPT,PD,PT (x2)
    assert tables == mm.table_count == 1 + 3 + 1 + 2 + 3 + 3
    for va in vas:
        mm.unmap(va)
    assert fa.used_bytes == pgd_only and mm.table_count == 1
    assert mem.read(mm.pgd, K4) == bytes(K4)


def test_map_rolls_back_when_frames_run_out():
    mem = Memory()
    fa = FrameAllocator(mem, 0, 3 * K4)  # pgd + 2 frames: not enough for PDPT+PD+PT
    mm = Mm(mem, fa)
    with pytest.raises(OutOfFrames):
        mm.map(0x1000, pa=0x10_0000)
    assert fa.used_bytes == K4 and mm.table_count == 1 and mm.lookup(0x1000) is None
    assert mem.read(mm.pgd, K4) == bytes(K4)


def test_explicit_pa_is_not_freed_and_allocated_pages_are_zero():
    mem, fa, mm = make()
    mem.write(0x10_0000, b"shared")
    mm.map(0x5000, pa=0x10_0000)
    mm.unmap(0x5000)
    assert mem.read(0x10_0000, 6) == b"shared"  # not the allocator's frame: left alone
    pa = mm.map(0x6000)
    assert fa.base <= pa < fa.end and mem.read(pa, K4) == bytes(K4)
    mem.write(pa, b"junk")
    used = fa.used_bytes
    mm.unmap(0x6000)
    assert fa.used_bytes == used - 4 * K4  # the page and its PT, PD, PDPT


def iommu_set_ad(mem, mm, va, write):
    """What the IOMMU does during a walk (vtd.md §3.5): A in every entry used, D in the leaf on a write,
    each with a compare-and-swap. Entry addresses come from the test's own walker."""
    table = mm.pgd
    for level in range(mm.levels, 0, -1):
        addr, raw = entry_at(mem, table, level, va)
        leaf = level == 1 or (level in (2, 3) and raw & PS)
        ok, _ = mem.cmpxchg64(addr, raw, raw | A | (D if leaf and write else 0))
        assert ok
        if leaf:
            return
        table = raw & ADDR_51_12


@pytest.mark.parametrize("size", [K4, M2, G1])
def test_ad_bits_survive_protect(size):
    mem, fa, mm = make()
    va = 3 * G1
    mm.map(va, size)
    mm.map(va + size, size)  # neighbour sharing the tables
    assert not mm.accessed(va) and not mm.dirty(va)
    iommu_set_ad(mem, mm, va, write=True)
    assert mm.accessed(va) and mm.dirty(va)
    assert not mm.accessed(va + size)
    assert mm.protect(va, size, write=False) == [(va, size)]
    assert mm.protect(va, size, write=False) == []  # no change the second time
    assert mm.accessed(va) and mm.dirty(va)
    assert spec_translate(mem, mm.pgd, 4, va)[3] is False
    mm.unmap(va + size, size)  # the path to va stays, with its A bits
    table = mm.pgd
    for level in range(4, 0, -1):
        _, raw = entry_at(mem, table, level, va)
        assert raw & A, f"A lost at level {level}"
        if raw & PS or level == 1:
            break
        table = raw & ADDR_51_12
    with pytest.raises(NotMappedError):
        mm.accessed(va + size)


def test_table_writes_are_observable():
    mem, fa, mm = make()
    log = []
    mem.on_write.append(lambda addr, data: log.append((addr, bytes(data))))
    pa = mm.map(0x7000, pa=0x20_0000, write=False, user=False)
    assert pa == 0x20_0000
    leaf_writes = [(a, d) for a, d in log if d == (0x20_0000 | P).to_bytes(8, "little")]
    assert len(leaf_writes) == 1
    assert leaf_writes[0][0] % K4 == 8 * 7  # PT index 7


# ------------------------------------------------------------------------------------------------
# Mm: random maps / unmaps / protects against the independent walker
# ------------------------------------------------------------------------------------------------


def region_bases(levels):
    top = 1 << (47 if levels == 4 else 56)
    upper = (1 << 64) - top  # lowest canonical upper-half address
    return [0, 5 * G1, top - 2 * G1, upper, upper + 7 * G1]


@pytest.mark.parametrize("levels", [4, 5])
@pytest.mark.parametrize("seed", range(4))
def test_random_against_spec_walker(levels, seed):
    rng = random.Random(seed * 10 + levels)
    where = f"(levels={levels}, seed={seed})"
    mem, fa, mm = make(levels=levels)
    model: dict[int, tuple[int, int, bool, bool]] = {}  # va -> (size, pa, write, user)
    owned: dict[int, int] = {}  # va -> size of pages the Mm allocated
    explicit_pa = iter(range(1 << 44, 1 << 46, G1))  # outside the allocator, never reused

    def overlaps(va, size):
        return [v for v, (s, *_rest) in model.items() if v < va + size and va < v + s]

    for step in range(150):
        op = rng.random()
        if op < 0.55 or not model:
            size = rng.choice([K4, K4, K4, M2, M2, G1])
            base = rng.choice(region_bases(levels))
            va = base + rng.randrange(0, 2 * G1 if size == G1 else 4 * M2, size)
            write, user = rng.random() < 0.7, rng.random() < 0.7
            pa = next(explicit_pa) if rng.random() < 0.3 else None
            if overlaps(va, size):
                with pytest.raises(OverlapError):
                    mm.map(va, size, pa=pa, write=write, user=user)
                continue
            got = mm.map(va, size, pa=pa, write=write, user=user)
            assert got % size == 0 and (pa is None or got == pa), where
            if pa is None:
                owned[va] = size
            model[va] = (size, got, write, user)
        elif op < 0.8:
            va = rng.choice(list(model))
            size = model[va][0]
            assert mm.unmap(va, size) == [(va, size)], where
            del model[va]
            owned.pop(va, None)
        else:
            va = rng.choice(list(model))
            size, pa, write, user = model[va]
            new_write = rng.choice([None, True, False])
            new_user = rng.choice([None, True, False])
            mm.protect(va, size, write=new_write, user=new_user)
            model[va] = (
                size,
                pa,
                write if new_write is None else new_write,
                user if new_user is None else new_user,
            )

        # probes: every mapping's first and last byte, one random inside, and just outside
        for va, (size, pa, write, user) in model.items():
            for probe in (va, va + size - 1, va + rng.randrange(size)):
                expect = (va, size, pa + (probe - va), write, user)
                assert spec_translate(mem, mm.pgd, levels, probe) == expect, f"{where} step {step} {probe:#x}"
                m = mm.lookup(probe)
                assert (m.va, m.size, m.translate(probe), m.write, m.user) == expect, where
            for probe in (va - 1, va + size):
                if 0 <= probe < 1 << 64 and not overlaps(probe, 1):
                    try:
                        mm.lookup(probe)
                    except NonCanonicalError:
                        continue
                    assert mm.lookup(probe) is None, where
                    assert spec_translate(mem, mm.pgd, levels, probe) is None, where

    leaves, tables = spec_enumerate(mem, mm.pgd, levels)
    assert leaves == {va: (s, pa, w, u) for va, (s, pa, w, u) in model.items()}, where
    assert [(m.va, m.size, m.pa, m.write, m.user) for m in mm.mappings()] == sorted(
        (va, *rest) for va, rest in model.items()
    ), where
    assert tables == mm.table_count, where
    assert fa.used_bytes == tables * K4 + sum(owned.values()), f"{where}: frames leaked"
    for m in mm.mappings():
        assert mm.translate_tables(m.va + 1) == m, where
    for va in list(model):
        mm.unmap(va, model[va][0])
    assert fa.used_bytes == K4 and mm.table_count == 1, where


# ------------------------------------------------------------------------------------------------
# demand paging
# ------------------------------------------------------------------------------------------------


def test_fault_populates_only_inside_a_permitting_vma():
    mem, fa, mm = make()
    rw = mm.mmap(0x10_0000, 3 * K4)
    ro = mm.mmap(0x20_0000, 5000, write=False)  # rounded up to 2 pages
    assert (ro.start, ro.end) == (0x20_0000, 0x20_2000)
    assert (rw.start, rw.end, rw.write, rw.user) == (0x10_0000, 0x10_3000, True, True)
    assert mm.mappings() == []  # mmap alone maps nothing
    assert not mm.fault(0x0F_F000, write=False)  # below the VMA
    assert not mm.fault(0x10_3000, write=False)  # just past its end
    assert not mm.fault(0x20_0000, write=True)  # write to a read-only VMA
    assert mm.lookup(0x20_0000) is None
    assert not mm.fault(0x0000_8000_0000_0000, write=False)  # non-canonical: no VMA can hold it

    assert mm.fault(0x10_1234, write=False)
    got = spec_translate(mem, mm.pgd, 4, 0x10_1234)
    assert got[:2] == (0x10_1000, K4) and got[3:] == (True, True)
    assert mm.lookup(0x10_0000) is None  # only the faulting page
    used = fa.used_bytes
    assert mm.fault(0x10_1FFF, write=True)  # already there with enough permission
    assert fa.used_bytes == used and spec_translate(mem, mm.pgd, 4, 0x10_1234) == got

    assert mm.fault(0x20_1000, write=False)
    assert spec_translate(mem, mm.pgd, 4, 0x20_1000)[3] is False


def test_write_fault_restores_write_permission():
    mem, fa, mm = make()
    mm.mmap(0x40_0000, K4)
    assert mm.fault(0x40_0000, write=True)
    mm.protect(0x40_0000, K4, write=False)  # e.g. write-protected for dirty tracking
    assert spec_translate(mem, mm.pgd, 4, 0x40_0000)[3] is False
    assert mm.fault(0x40_0000, write=True)
    assert spec_translate(mem, mm.pgd, 4, 0x40_0000)[3] is True


def test_supervisor_vma():
    mem, fa, mm = make()
    kva = 0xFFFF_C000_0000_0000
    mm.mmap(kva, K4, user=False)
    assert mm.fault(kva, write=True)
    assert spec_translate(mem, mm.pgd, 4, kva)[3:] == (True, False)


def test_mmap_refuses_overlap():
    mm = make()[2]
    mm.mmap(0x10_0000, 4 * K4)
    with pytest.raises(OverlapError):
        mm.mmap(0x10_3000, K4)
    with pytest.raises(OverlapError):
        mm.mmap(0x0F_F000, 2 * K4)
    mm.mmap(0x10_4000, K4)  # adjacent is fine
    with pytest.raises(MmError, match="positive"):
        mm.mmap(0x20_0000, 0)


def test_munmap_splits_vmas_and_reports_changes():
    mem, fa, mm = make()
    mm.mmap(0x10_0000, 8 * K4)
    for i in (0, 2, 3, 7):
        assert mm.fault(0x10_0000 + i * K4, write=True)
    changed = mm.munmap(0x10_2000, 3 * K4)  # pages 2, 3, 4 (4 was never faulted)
    assert changed == [(0x10_2000, K4), (0x10_3000, K4)]
    assert [(v.start, v.end) for v in mm.vmas] == [(0x10_0000, 0x10_2000), (0x10_5000, 0x10_8000)]
    assert spec_translate(mem, mm.pgd, 4, 0x10_2000) is None
    assert spec_translate(mem, mm.pgd, 4, 0x10_3000) is None
    assert spec_translate(mem, mm.pgd, 4, 0x10_0000) is not None
    assert not mm.fault(0x10_3000, write=False)  # hole now
    assert mm.fault(0x10_5000, write=False)  # right-hand remainder still works
    assert mm.munmap(0x30_0000, K4) == []  # nothing there
    changed = mm.munmap(0x10_0000, 1)  # length rounds up to one page
    assert changed == [(0x10_0000, K4)]
    assert mm.munmap(0, G1) == [(0x10_5000, K4), (0x10_7000, K4)]
    assert mm.vmas == [] and fa.used_bytes == K4 and mm.table_count == 1


def test_munmap_refuses_to_split_a_large_page():
    mm = make()[2]
    mm.mmap(0, 4 * M2)
    mm.map(M2, M2)
    with pytest.raises(MmError, match="only part"):
        mm.munmap(M2 + K4, K4)
    assert [(v.start, v.end) for v in mm.vmas] == [(0, 4 * M2)]  # nothing changed
    assert mm.lookup(M2) is not None
