"""First-stage (x86-64 style) paging: entry format and geometry (vtd.md §3.1, §3.2; SPEC §9.7 Tables 34-40).

The same format serves two readers: ``models.host`` builds a process's page tables with it (the CPU
view) and ``models.iommu`` walks them (the IOMMU view, with the reserved-bit rules of SPEC §3.6).

Levels are numbered as in the spec: 5 = PML5, 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT.
"""

from __future__ import annotations

from .bits import BitStruct, Field

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
ENTRIES = 512

#: address bit where the index of each level starts
LEVEL_SHIFT = {1: 12, 2: 21, 3: 30, 4: 39, 5: 48}
#: page size mapped by a leaf at that level (level 3 leaves need CAP.FS1GP)
LEAF_SIZE = {1: 1 << 12, 2: 1 << 21, 3: 1 << 30}
LEVEL_NAME = {5: "PML5E", 4: "PML4E", 3: "PDPE", 2: "PDE", 1: "PTE"}


def level_index(addr: int, level: int) -> int:
    """Index of ``addr`` in the table at ``level``."""
    return (addr >> LEVEL_SHIFT[level]) & (ENTRIES - 1)


def is_canonical(addr: int, levels: int) -> bool:
    """Bits 63:N equal bit N-1, N = 48 (4-level) or 57 (5-level) (vtd.md §3.1)."""
    n = 48 if levels == 4 else 57
    top = addr >> (n - 1)
    return top == 0 or top == (1 << (64 - n + 1)) - 1


class FsEntry(BitStruct):
    """One 64-bit first-stage paging entry, any level. Which bits are reserved depends on the level,
    the leaf-ness (PS), the host address width and CAP.FS1GP: ``reserved_violations`` applies them."""

    WIDTH = 64
    p = Field(0, doc="present")
    rw = Field(1, doc="read/write: 0 = writes not allowed")
    us = Field(2, doc="user/supervisor: 0 = user accesses not allowed")
    pwt = Field(3)
    pcd = Field(4)
    a = Field(5, doc="accessed")
    d = Field(6, doc="dirty (leaf only)")
    ps = Field(7, doc="page size: leaf at PDPE/PDE; PAT in a PTE; reserved in PML5E/PML4E")
    g = Field(8, doc="global (ignored by the IOMMU)")
    ign9 = Field(9)
    ea = Field(10, doc="extended accessed (only with EAFE)")
    ign11 = Field(11)
    addr = Field(51, 12, doc="physical address bits 51:12 of the next table or page")
    ign62_52 = Field(62, 52)
    xd = Field(63, doc="execute disable in the CPU view; ignored by a 5.10 IOMMU")

    def is_leaf(self, level: int) -> bool:
        return level == 1 or (level in (2, 3) and bool(self.ps))

    def target(self) -> int:
        """Physical address this entry points to (table base, or page base for a 4K leaf)."""
        return self.addr << PAGE_SHIFT

    def page_base(self, level: int) -> int:
        """Base of the page mapped by a leaf at ``level`` (low bits of addr dropped for large pages)."""
        return (self.addr << PAGE_SHIFT) & ~(LEAF_SIZE[level] - 1)

    def reserved_violations(self, level: int, haw: int, fs1gp: bool = True) -> list[str]:
        """Names of reserved bits set in this (present) entry, per SPEC §3.6 / vtd.md §3.2."""
        out = []
        hi_mask = ((1 << 52) - 1) & ~((1 << haw) - 1)
        if self.raw & hi_mask:
            out.append(f"addr[51:{haw}]")
        if level in (4, 5) and self.ps:
            out.append("ps")
        if level == 3 and self.ps:
            if not fs1gp:
                out.append("ps")
            elif self.raw & (((1 << 17) - 1) << 13):
                out.append("addr[29:13]")
        if level == 2 and self.ps and self.raw & (((1 << 8) - 1) << 13):
            out.append("addr[20:13]")
        return out
