"""Host side of SVM: physical memory, a frame allocator and process address spaces.

* ``Memory`` - sparse, byte-addressed physical memory (4 KiB pages in a dict; unwritten bytes read as
  zero) with the 64-bit compare-and-swap the IOMMU uses for A/D updates (vtd.md §3.5) and write observers.
* ``FrameAllocator`` - hands out zeroed, naturally aligned blocks (4 KiB frames, 2 MiB / 1 GiB pages).
* ``Mm`` - a process address space whose x86-64 first-stage page tables (vtd.md §3.1, §3.2) really live
  in ``Memory``, so the IOMMU model and the RTL can walk them. ``Mm`` keeps, next to the tables, a plain
  Python record of what was mapped; ``lookup()`` answers from that record only and is the oracle the
  tests compare the tables (and the IOMMU's translations) against.

Entry format and geometry come from ``models.paging``; nothing here redefines a bit position.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable

from .paging import LEAF_SIZE, PAGE_SHIFT, PAGE_SIZE, FsEntry, is_canonical, level_index

ADDR_LIMIT = 1 << 64  # physical and virtual addresses are 64-bit values
PA_LIMIT = 1 << 52  # FsEntry.addr holds PA[51:12] (vtd.md §3.2)
_PAGE_MASK = PAGE_SIZE - 1
_ZERO_PAGE = bytes(PAGE_SIZE)
_LEAF_LEVEL = {size: level for level, size in LEAF_SIZE.items()}  # 4K -> 1, 2M -> 2, 1G -> 3


def _inconsistent(what: str) -> RuntimeError:
    """The tables no longer match what ``Mm`` wrote (something else modified more than A/D bits)."""
    return RuntimeError(f"page tables disagree with the mapping record: {what}")


def _size_name(size: int) -> str:
    return {1 << 12: "4K", 1 << 21: "2M", 1 << 30: "1G"}.get(size, f"{size:#x}")


# ------------------------------------------------------------------------------------------------
# Memory
# ------------------------------------------------------------------------------------------------


class Memory:
    """Sparse physical memory. Only pages that were written hold storage.

    ``on_write`` is a list of callbacks ``f(addr, data: bytes)`` called after every write
    (``write``, ``write64``, a successful ``cmpxchg64``, and ``zero``, which reports one call per
    4 KiB page piece), so a scoreboard can watch memory without wrapping it.
    """

    def __init__(self):
        self._pages: dict[int, bytearray] = {}
        self.on_write: list[Callable[[int, bytes], None]] = []

    @property
    def resident_pages(self) -> int:
        """Number of 4 KiB pages that hold storage (written at least once and not zeroed since)."""
        return len(self._pages)

    @staticmethod
    def _check(addr: int, n: int) -> None:
        if n < 0:
            raise ValueError(f"negative length {n}")
        if addr < 0 or addr >= ADDR_LIMIT:
            raise ValueError(f"address {addr:#x} is outside [0, 2^64)")
        if addr + n > ADDR_LIMIT:
            raise ValueError(f"access of {n} bytes at {addr:#x} runs past 2^64")

    @staticmethod
    def _pieces(addr: int, n: int):
        """(page number, offset in page, offset in the access, length) for each page the access touches."""
        pos = 0
        while pos < n:
            a = addr + pos
            off = a & _PAGE_MASK
            length = min(PAGE_SIZE - off, n - pos)
            yield a >> PAGE_SHIFT, off, pos, length
            pos += length

    def _notify(self, addr: int, data: bytes) -> None:
        for callback in self.on_write:
            callback(addr, data)

    def read(self, addr: int, n: int) -> bytes:
        self._check(addr, n)
        off = addr & _PAGE_MASK
        if off + n <= PAGE_SIZE:  # the common case: inside one page
            page = self._pages.get(addr >> PAGE_SHIFT)
            return bytes(n) if page is None else bytes(page[off : off + n])
        out = bytearray(n)
        for pn, off, pos, length in self._pieces(addr, n):
            page = self._pages.get(pn)
            if page is not None:
                out[pos : pos + length] = page[off : off + length]
        return bytes(out)

    def write(self, addr: int, data: bytes) -> None:
        data = bytes(data)
        self._check(addr, len(data))
        for pn, off, pos, length in self._pieces(addr, len(data)):
            page = self._pages.get(pn)
            if page is None:
                page = self._pages[pn] = bytearray(PAGE_SIZE)
            page[off : off + length] = data[pos : pos + length]
        if self.on_write:
            self._notify(addr, data)

    def zero(self, addr: int, n: int) -> None:
        """Clear ``n`` bytes. Whole pages are dropped from the store, so clearing 1 GiB costs nothing
        unless observers are attached (they are told once per 4 KiB piece)."""
        self._check(addr, n)
        end = addr + n
        lo = min((addr + _PAGE_MASK) & ~_PAGE_MASK, end)  # start of the whole pages
        hi = max(end & ~_PAGE_MASK, lo)  # end of the whole pages
        for start, stop in ((addr, lo), (hi, end)):  # the partial head and tail
            page = self._pages.get(start >> PAGE_SHIFT) if stop > start else None
            if page is not None:
                off = start & _PAGE_MASK
                page[off : off + stop - start] = _ZERO_PAGE[: stop - start]
        first, last = lo >> PAGE_SHIFT, hi >> PAGE_SHIFT
        if last - first > len(self._pages):
            for pn in [pn for pn in self._pages if first <= pn < last]:
                del self._pages[pn]
        else:
            for pn in range(first, last):
                self._pages.pop(pn, None)
        if self.on_write:
            for pn, off, _, length in self._pieces(addr, n):
                self._notify((pn << PAGE_SHIFT) + off, _ZERO_PAGE[:length])

    def read64(self, addr: int) -> int:
        """Little-endian 64-bit read (vtd.md: in-memory structures are little-endian)."""
        return int.from_bytes(self.read(addr, 8), "little")

    def write64(self, addr: int, value: int) -> None:
        if value < 0 or value >= 1 << 64:
            raise ValueError(f"write64 value {value:#x} does not fit in 64 bits")
        self.write(addr, value.to_bytes(8, "little"))

    def cmpxchg64(self, addr: int, expected: int, new: int) -> tuple[bool, int]:
        """Atomic compare-and-swap of the aligned 64-bit word at ``addr`` (the locked read-modify-write
        of vtd.md §3.5). Stores ``new`` only if the word equals ``expected``; returns (stored, old value)."""
        if addr & 7:
            raise ValueError(f"cmpxchg64 address {addr:#x} is not 8-byte aligned")
        if new < 0 or new >= 1 << 64:
            raise ValueError(f"cmpxchg64 new value {new:#x} does not fit in 64 bits")
        old = self.read64(addr)
        if old != expected:
            return False, old
        self.write64(addr, new)
        return True, old


# ------------------------------------------------------------------------------------------------
# Frame allocator
# ------------------------------------------------------------------------------------------------


class OutOfFrames(MemoryError):
    """The allocator has no free, suitably aligned block of the requested size."""


class FrameAllocator:
    """Hands out naturally aligned blocks of physical memory in ``[base, base + size)`` and zeroes them
    in ``mem``. Block sizes are powers of two from 4 KiB up (4 KiB frames, 2 MiB / 1 GiB pages).
    First fit from the lowest address; freed blocks coalesce with their free neighbours."""

    def __init__(self, mem: Memory, base: int, size: int):
        if base & _PAGE_MASK or size & _PAGE_MASK or size <= 0:
            raise ValueError(f"allocator range base={base:#x} size={size:#x}: needs 4 KiB alignment, size > 0")
        if base < 0 or base + size > ADDR_LIMIT:
            raise ValueError(f"allocator range [{base:#x}, {base + size:#x}) is outside [0, 2^64)")
        self.mem = mem
        self.base = base
        self.end = base + size
        self._free: list[tuple[int, int]] = [(base, self.end)]  # sorted, disjoint, non-adjacent [start, end)
        self._blocks: dict[int, int] = {}  # allocated block base -> size

    @property
    def free_bytes(self) -> int:
        return sum(e - s for s, e in self._free)

    @property
    def used_bytes(self) -> int:
        return sum(self._blocks.values())

    def alloc(self, size: int = PAGE_SIZE) -> int:
        """A zeroed block of ``size`` bytes aligned to ``size``; raises ``OutOfFrames`` when none is free."""
        if size < PAGE_SIZE or size & (size - 1):
            raise ValueError(f"block size {size:#x} must be a power of two >= 4 KiB")
        for i, (start, end) in enumerate(self._free):
            pa = (start + size - 1) & ~(size - 1)
            if pa + size <= end:
                rest = [(s, e) for s, e in ((start, pa), (pa + size, end)) if e > s]
                self._free[i : i + 1] = rest
                self._blocks[pa] = size
                self.mem.zero(pa, size)
                return pa
        raise OutOfFrames(
            f"no free {_size_name(size)} block in [{self.base:#x}, {self.end:#x}) "
            f"({self.free_bytes:#x} bytes free, possibly fragmented)"
        )

    def free(self, pa: int, size: int = PAGE_SIZE) -> None:
        got = self._blocks.get(pa)
        if got is None:
            raise ValueError(f"free of {pa:#x}: no block allocated there")
        if got != size:
            raise ValueError(f"free of {pa:#x}: block is {_size_name(got)}, not {_size_name(size)}")
        del self._blocks[pa]
        start, end = pa, pa + size
        i = bisect.bisect_left(self._free, (start, end))
        if i < len(self._free) and self._free[i][0] == end:  # merge with the following free range
            end = self._free.pop(i)[1]
        if i > 0 and self._free[i - 1][1] == start:  # and with the preceding one
            start = self._free[i - 1][0]
            i -= 1
            self._free.pop(i)
        self._free.insert(i, (start, end))


# ------------------------------------------------------------------------------------------------
# Address spaces
# ------------------------------------------------------------------------------------------------


class MmError(ValueError):
    """A request an address space cannot honour (bad alignment or size, overlap, nothing mapped ...)."""


class NonCanonicalError(MmError):
    """The address (range) is not canonical for the paging depth (vtd.md §3.1)."""


class OverlapError(MmError):
    """The new mapping or VMA would overlap an existing one."""


class NotMappedError(MmError):
    """No page is mapped at the address."""


@dataclass(frozen=True)
class Mapping:
    """One leaf translation as recorded by ``Mm`` (the oracle): ``size`` bytes at ``va`` -> ``pa``."""

    va: int
    size: int
    pa: int
    write: bool
    user: bool

    @property
    def end(self) -> int:
        return self.va + self.size

    def translate(self, va: int) -> int:
        """Physical address of ``va`` (which must lie inside this mapping)."""
        if not self.va <= va < self.end:
            raise ValueError(f"{va:#x} is outside {self}")
        return self.pa + (va - self.va)

    def __str__(self):
        return (
            f"{_size_name(self.size)} page {self.va:#x} -> {self.pa:#x} "
            f"({'rw' if self.write else 'ro'}, {'user' if self.user else 'supervisor'})"
        )


@dataclass(frozen=True)
class Vma:
    """A virtual memory area ``[start, end)`` created by ``mmap``: pages appear on ``fault``."""

    start: int
    end: int
    write: bool
    user: bool


class Mm:
    """A process (or kernel) address space with 4- or 5-level first-stage page tables in ``mem``.

    ``pgd`` is the physical address of the PML4 (``levels=4``) or PML5 (``levels=5``): what the SVM driver
    puts in the PASID entry's FSPTPTR. Intermediate entries are written P|RW|US so the leaf alone decides
    the permission (vtd.md §3.3: rights are the AND over all levels). Page-table frames come from
    ``allocator`` and go back to it as soon as a table becomes empty (the root stays).

    A supervisor/kernel address space is just an ``Mm`` whose mappings have ``user=False``.
    """

    def __init__(self, mem: Memory, allocator: FrameAllocator, levels: int = 4):
        if levels not in (4, 5):
            raise ValueError(f"levels must be 4 or 5, not {levels}")
        if allocator.end > PA_LIMIT:
            raise ValueError(f"allocator range ends at {allocator.end:#x}; entries only address PA < 2^52")
        self.mem = mem
        self.allocator = allocator
        self.levels = levels
        self.pgd = allocator.alloc()
        self._present: dict[int, int] = {self.pgd: 0}  # page-table frame -> number of present entries
        self._maps: dict[int, Mapping] = {}  # the oracle: base va -> Mapping
        self._bases: list[int] = []  # sorted keys of _maps, for range queries
        self._owned: set[int] = set()  # base vas whose page came from the allocator (freed on unmap)
        self._vmas: list[Vma] = []  # sorted by start, disjoint

    # --- checks ---------------------------------------------------------------------------------
    def _check_va(self, va: int) -> None:
        if va < 0 or va >= ADDR_LIMIT:
            raise ValueError(f"virtual address {va:#x} is outside [0, 2^64)")
        if not is_canonical(va, self.levels):
            raise NonCanonicalError(f"{va:#x} is not canonical for {self.levels}-level paging")

    def _check_range(self, va: int, size: int) -> None:
        """Page-aligned, non-empty and canonical from end to end (so not across the canonical hole)."""
        if va & _PAGE_MASK or size <= 0 or size & _PAGE_MASK:
            raise MmError(f"range {va:#x}+{size:#x} must be 4 KiB aligned and non-empty")
        self._check_va(va)
        last = va + size - 1
        if last >= ADDR_LIMIT or not is_canonical(last, self.levels) or (va ^ last) >> 63:
            raise NonCanonicalError(
                f"range [{va:#x}, {va + size:#x}) is not canonical for {self.levels}-level paging"
            )

    # --- the oracle -----------------------------------------------------------------------------
    def lookup(self, va: int) -> Mapping | None:
        """What is mapped at ``va`` according to the record kept by this class (never the tables)."""
        self._check_va(va)
        for size in LEAF_SIZE.values():
            m = self._maps.get(va & ~(size - 1))
            if m is not None and m.size == size:
                return m
        return None

    def mappings(self) -> list[Mapping]:
        """Every recorded mapping, by address."""
        return [self._maps[va] for va in self._bases]

    def _overlapping(self, start: int, end: int) -> list[Mapping]:
        """Mappings that intersect [start, end). Mappings are disjoint, so of those starting below
        ``start`` only the last one can reach into the range."""
        i = bisect.bisect_left(self._bases, start)
        out = []
        if i and self._maps[self._bases[i - 1]].end > start:
            out.append(self._maps[self._bases[i - 1]])
        while i < len(self._bases) and self._bases[i] < end:
            out.append(self._maps[self._bases[i]])
            i += 1
        return out

    def _whole_mappings(self, start: int, size: int) -> list[Mapping]:
        """Mappings inside [start, start+size); a mapping sticking out of the range is an error (large
        pages are never split)."""
        self._check_range(start, size)
        found = self._overlapping(start, start + size)
        for m in found:
            if m.va < start or m.end > start + size:
                raise MmError(f"range [{start:#x}, {start + size:#x}) covers only part of the {m}")
        return found

    # --- the tables -----------------------------------------------------------------------------
    @property
    def table_count(self) -> int:
        """Page-table frames in use, the root included."""
        return len(self._present)

    def walk(self, va: int) -> list[tuple[int, int, FsEntry]]:
        """Read the real tables for ``va``: (level, entry address, entry) from the root down to the leaf
        or the first non-present entry (vtd.md §3.1). A debugging view; ``lookup`` is the oracle."""
        self._check_va(va)
        path = []
        table = self.pgd
        for level in range(self.levels, 0, -1):
            slot = table + 8 * level_index(va, level)
            entry = FsEntry(self.mem.read64(slot))
            path.append((level, slot, entry))
            if not entry.p or entry.is_leaf(level):
                break
            table = entry.target()
        return path

    def translate_tables(self, va: int) -> Mapping | None:
        """The mapping the real tables give for ``va`` (rights ANDed over the levels), or None."""
        path = self.walk(va)
        level, _, leaf = path[-1]
        if not leaf.p or not leaf.is_leaf(level):
            return None
        entries = [e for _, _, e in path]
        size = LEAF_SIZE[level]
        return Mapping(
            va=va & ~(size - 1),
            size=size,
            pa=leaf.page_base(level),
            write=all(e.rw for e in entries),
            user=all(e.us for e in entries),
        )

    def _leaf(self, va: int) -> tuple[int, FsEntry]:
        level, slot, entry = self.walk(va)[-1]
        if not entry.p or not entry.is_leaf(level):
            raise NotMappedError(f"no page at {va:#x} in the page tables")
        return slot, entry

    def accessed(self, va: int) -> bool:
        """A bit of the leaf entry mapping ``va`` (set by the IOMMU, vtd.md §3.5)."""
        return bool(self._leaf(va)[1].a)

    def dirty(self, va: int) -> bool:
        """D bit of the leaf entry mapping ``va`` (set by the IOMMU on writes, vtd.md §3.5)."""
        return bool(self._leaf(va)[1].d)

    def _descend(self, va: int, leaf_level: int, create: bool) -> list[tuple[int, int]]:
        """(table, entry address) for each level from the root down to ``leaf_level``, creating missing
        tables when ``create`` (if that runs out of frames, the tables created so far are freed again).
        Tables are reached through the real entries."""
        path = []
        table = self.pgd
        for level in range(self.levels, leaf_level - 1, -1):
            slot = table + 8 * level_index(va, level)
            path.append((table, slot))
            if level == leaf_level:
                break
            entry = FsEntry(self.mem.read64(slot))
            if entry.p and entry.is_leaf(level):
                raise _inconsistent(f"leaf at level {level} on the way to {va:#x}")
            if entry.p:
                table = entry.target()
            elif create:
                try:
                    new = self.allocator.alloc()
                except OutOfFrames:
                    self._prune(path)
                    raise
                self._present[new] = 0
                self.mem.write64(slot, FsEntry(p=1, rw=1, us=1, addr=new >> PAGE_SHIFT).raw)
                self._present[table] += 1
                table = new
            else:
                raise _inconsistent(f"no level-{level} table on the way to {va:#x}")
        return path

    def _prune(self, path: list[tuple[int, int]]) -> None:
        """Free the empty tables at the bottom of ``path`` and clear the entries pointing to them."""
        for i in range(len(path) - 1, 0, -1):
            table = path[i][0]
            if self._present[table]:
                break
            parent, parent_slot = path[i - 1]
            self.mem.write64(parent_slot, 0)
            self._present[parent] -= 1
            del self._present[table]
            self.allocator.free(table)

    # --- explicit mappings ----------------------------------------------------------------------
    def map(
        self, va: int, size: int = PAGE_SIZE, pa: int | None = None, write: bool = True, user: bool = True
    ) -> int:
        """Map one page of ``size`` (4K, 2M or 1G) at ``va``; allocates (and later frees) the page when ``pa``
        is None. Returns the physical address. Leaf: P, RW=write, US=user, PS for 2M/1G (vtd.md §3.2)."""
        leaf_level = _LEAF_LEVEL.get(size)
        if leaf_level is None:
            raise MmError(f"page size {size:#x} is not 4K, 2M or 1G")
        self._check_range(va, size)
        if va & (size - 1):
            raise MmError(f"va {va:#x} is not aligned to the {_size_name(size)} page size")
        if pa is not None and (pa < 0 or pa & (size - 1) or pa + size > PA_LIMIT):
            raise MmError(f"pa {pa:#x} must be {_size_name(size)} aligned and below 2^52")
        clash = self._overlapping(va, va + size)
        if clash:
            raise OverlapError(f"{_size_name(size)} page at {va:#x} overlaps the {clash[0]}")
        owned = pa is None
        if owned:
            pa = self.allocator.alloc(size)
        try:
            path = self._descend(va, leaf_level, create=True)
        except OutOfFrames:
            if owned:
                self.allocator.free(pa, size)
            raise
        table, slot = path[-1]
        if FsEntry(self.mem.read64(slot)).p:
            raise _inconsistent(f"entry {slot:#x} for {va:#x} is already present")
        leaf = FsEntry(p=1, rw=int(write), us=int(user), ps=int(leaf_level > 1), addr=pa >> PAGE_SHIFT)
        self.mem.write64(slot, leaf.raw)
        self._present[table] += 1
        self._maps[va] = Mapping(va, size, pa, bool(write), bool(user))
        bisect.insort(self._bases, va)
        if owned:
            self._owned.add(va)
        return pa

    def _remove(self, m: Mapping) -> None:
        path = self._descend(m.va, _LEAF_LEVEL[m.size], create=False)
        table, slot = path[-1]
        self.mem.write64(slot, 0)
        self._present[table] -= 1
        self._prune(path)
        del self._maps[m.va]
        del self._bases[bisect.bisect_left(self._bases, m.va)]
        if m.va in self._owned:
            self._owned.remove(m.va)
            self.allocator.free(m.pa, m.size)

    def unmap(self, va: int, size: int = PAGE_SIZE) -> list[tuple[int, int]]:
        """Remove every mapping inside [va, va+size) (a page sticking out of the range is an error: large
        pages are not split). Frees allocated pages and emptied tables. Returns the removed (va, size)."""
        victims = self._whole_mappings(va, size)
        for m in victims:
            self._remove(m)
        return [(m.va, m.size) for m in victims]

    def protect(
        self, va: int, size: int = PAGE_SIZE, write: bool | None = None, user: bool | None = None
    ) -> list[tuple[int, int]]:
        """Change RW and/or US of every mapping inside [va, va+size) (None keeps the bit). The leaf entry is
        rewritten in place, so the A/D bits the IOMMU set survive. Returns the (va, size) that changed."""
        changed = []
        for m in self._whole_mappings(va, size):
            new_write = m.write if write is None else bool(write)
            new_user = m.user if user is None else bool(user)
            if (new_write, new_user) == (m.write, m.user):
                continue
            _, slot = self._descend(m.va, _LEAF_LEVEL[m.size], create=False)[-1]
            # A plain read-modify-write is atomic here: the model never runs concurrently with itself.
            entry = FsEntry(self.mem.read64(slot))
            entry.rw, entry.us = int(new_write), int(new_user)
            self.mem.write64(slot, entry.raw)
            self._maps[m.va] = Mapping(m.va, m.size, m.pa, new_write, new_user)
            changed.append((m.va, m.size))
        return changed

    # --- demand paging --------------------------------------------------------------------------
    @property
    def vmas(self) -> list[Vma]:
        return list(self._vmas)

    def find_vma(self, va: int) -> Vma | None:
        i = bisect.bisect_right(self._vmas, va, key=lambda v: v.start) - 1
        if i >= 0 and va < self._vmas[i].end:
            return self._vmas[i]
        return None

    @staticmethod
    def _page_align_length(length: int) -> int:
        if length <= 0:
            raise MmError(f"length {length} must be positive")
        return (length + _PAGE_MASK) & ~_PAGE_MASK

    def mmap(self, va: int, length: int, write: bool = True, user: bool = True) -> Vma:
        """Create a VMA over [va, va+length) (length rounded up to pages, like Linux) with no pages yet.
        Overlapping an existing VMA is refused (MAP_FIXED_NOREPLACE behaviour)."""
        length = self._page_align_length(length)
        self._check_range(va, length)
        for v in self._vmas:
            if v.start < va + length and va < v.end:
                raise OverlapError(f"VMA [{va:#x}, {va + length:#x}) overlaps [{v.start:#x}, {v.end:#x})")
        vma = Vma(va, va + length, bool(write), bool(user))
        bisect.insort(self._vmas, vma, key=lambda v: v.start)
        return vma

    def fault(self, va: int, write: bool) -> bool:
        """Resolve a fault at ``va`` like Linux's ``handle_mm_fault`` after its VMA check (vtd.md §7.1):
        False if no VMA holds ``va`` or it is a write to a read-only VMA; otherwise make sure a page with
        enough permission is mapped and return True. A missing page becomes a 4 KiB page with the VMA's
        permissions (simplification: no zero-page / copy-on-write step). Idempotent."""
        if va < 0 or va >= ADDR_LIMIT:
            raise ValueError(f"virtual address {va:#x} is outside [0, 2^64)")
        vma = self.find_vma(va)  # VMAs are canonical, so a non-canonical va finds none
        if vma is None or (write and not vma.write):
            return False
        m = self.lookup(va)
        if m is None:
            self.map(va & ~_PAGE_MASK, PAGE_SIZE, write=vma.write, user=vma.user)
        elif write and not m.write:
            self.protect(m.va, m.size, write=True)
        return True

    def munmap(self, va: int, length: int) -> list[tuple[int, int]]:
        """Remove [va, va+length) (length rounded up to pages): VMAs are trimmed or split, every page in
        the range is unmapped. Returns the (va, size) whose translations went away, for invalidation."""
        length = self._page_align_length(length)
        end = va + length
        victims = self._whole_mappings(va, length)  # checks the range, and refuses to split a large page
        vmas = []
        for v in self._vmas:
            if v.end <= va or v.start >= end:
                vmas.append(v)
                continue
            if v.start < va:
                vmas.append(Vma(v.start, va, v.write, v.user))
            if v.end > end:
                vmas.append(Vma(end, v.end, v.write, v.user))
        self._vmas = vmas
        for m in victims:
            self._remove(m)
        return [(m.va, m.size) for m in victims]
