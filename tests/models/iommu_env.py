"""Test fixture for the golden IOMMU: host memory, an ``Iommu`` and helpers that program the root,
context, PASID directory and PASID entries with the ``models.vtd`` classes (vtd.md §2), the way a
driver would. Shared by the IOMMU tests; nothing here decides a translation.
"""

from __future__ import annotations

from models.host import FrameAllocator, Memory, Mm
from models.iommu import Iommu, IommuConfig, MemoryAccessError, Request
from models.vtd import PROFILE, REGISTERS, ContextEntry, PasidDirEntry, PasidEntry, Pgtt, RootEntry

#: where tables and pages come from: above 4 GiB, so never near the interrupt window
ALLOC_BASE = 1 << 32
ALLOC_SIZE = 1 << 36

#: software keeps the enables and drops the one-shot bits when it builds a GCMD value (vtd §1.5)
GSTS_KEEP = 0x96FF_FFFF


def off(name: str) -> int:
    """Byte offset of a register (from the one register description)."""
    return REGISTERS[name].offset


class FaultyMemory(Memory):
    """``Memory`` that can fail reads of chosen ranges and cmpxchg of chosen addresses (raising
    ``MemoryAccessError``, the bus error of the IOMMU's memory interface), and can run a callback
    just before a cmpxchg (to play a CPU changing the entry under the walk)."""

    def __init__(self):
        super().__init__()
        self.bad_reads: list[tuple[int, int]] = []
        self.bad_cmpxchg: set[int] = set()
        self.before_cmpxchg = None
        self.cmpxchg_calls: list[tuple[int, int, int]] = []

    def fail_reads(self, addr: int, n: int) -> None:
        self.bad_reads.append((addr, addr + n))

    def read(self, addr: int, n: int) -> bytes:
        for lo, hi in self.bad_reads:
            if addr < hi and lo < addr + n:
                raise MemoryAccessError(f"read of {n} bytes at {addr:#x} failed")
        return super().read(addr, n)

    def cmpxchg64(self, addr: int, expected: int, new: int):
        self.cmpxchg_calls.append((addr, expected, new))
        if addr in self.bad_cmpxchg:
            raise MemoryAccessError(f"cmpxchg at {addr:#x} failed")
        if self.before_cmpxchg is not None:
            hook, self.before_cmpxchg = self.before_cmpxchg, None
            hook(addr)
        return super().cmpxchg64(addr, expected, new)


class Env:
    """One IOMMU with its memory. Default device programming (``bind``): context P, DTE, PASIDE,
    PRE, PDTS=7 (every 20-bit PASID) and RID_PASID 0; PASID entry first-stage, PWSNP=1, DID 1."""

    def __init__(self, profile=PROFILE, **cfg):
        self.mem = FaultyMemory()
        self.alloc = FrameAllocator(self.mem, ALLOC_BASE, ALLOC_SIZE)
        self.iommu = Iommu(self.mem, IommuConfig(profile=profile, **cfg))
        self.root = self.alloc.alloc()
        self._ctx_tables: dict[tuple[int, int], int] = {}
        self._dirs: dict[int, int] = {}
        self._pasid_tables: dict[tuple[int, int], int] = {}

    def watch(self) -> list[tuple[int, bytes]]:
        """From now on, every memory write (address, bytes) is appended to the returned list."""
        log: list[tuple[int, bytes]] = []
        self.mem.on_write.append(lambda addr, data: log.append((addr, bytes(data))))
        return log

    # --- registers --------------------------------------------------------------------------------
    def rd(self, name: str, size: int | None = None) -> int:
        r = REGISTERS[name]
        return self.iommu.reg_read(r.offset, size or min(r.nbytes, 8))

    def wr(self, name: str, value: int, size: int | None = None) -> None:
        r = REGISTERS[name]
        self.iommu.reg_write(r.offset, value, size or min(r.nbytes, 8))

    def gcmd(self, name: str, on: int = 1) -> None:
        """One command the way software issues it (vtd §1.5)."""
        bit = REGISTERS["GCMD"].field(name).mask
        value = self.rd("GSTS") & GSTS_KEEP
        self.wr("GCMD", value | bit if on else value & ~bit)

    def enable(self, ttm: int = 0b01) -> None:
        self.wr("RTADDR", self.root | ttm << 10)
        self.gcmd("srtp")
        self.gcmd("te")

    # --- structures -----------------------------------------------------------------------------
    def write_struct(self, addr: int, entry) -> None:
        self.mem.write(addr, entry.to_bytes())

    def root_entry_address(self, bus: int) -> int:
        return RootEntry.entry_address(self.root, bus)

    def context_address(self, rid: int) -> int:
        """Address of the context entry of ``rid``; creates the context table and root half."""
        bus, devfn = rid >> 8, rid & 0xFF
        upper = devfn >> 7
        table = self._ctx_tables.get((bus, upper))
        if table is None:
            table = self._ctx_tables[bus, upper] = self.alloc.alloc()
            slot = self.root_entry_address(bus)
            root = RootEntry.from_bytes(self.mem.read(slot, 16))
            if upper:
                root.up, root.uctp = 1, table >> 12
            else:
                root.lp, root.lctp = 1, table >> 12
            self.write_struct(slot, root)
        return ContextEntry.entry_address(table, devfn)

    def set_context(self, rid: int, **fields) -> ContextEntry:
        """Write the context entry of ``rid`` (a PASID directory for all 20-bit PASIDs unless given)."""
        if "pasiddirptr" not in fields:
            if rid not in self._dirs:
                self._dirs[rid] = self.alloc.alloc(1 << 17)  # 2^14 entries of 8 bytes (PDTS=7)
            fields["pasiddirptr"] = self._dirs[rid] >> 12
        entry = ContextEntry(**fields)
        self.write_struct(self.context_address(rid), entry)
        return entry

    def context_entry(self, rid: int) -> ContextEntry:
        return ContextEntry.from_bytes(self.mem.read(self.context_address(rid), 32))

    def dir_entry_address(self, rid: int, pasid: int) -> int:
        return PasidDirEntry.entry_address(self._dirs[rid], pasid)

    def pasid_entry_address(self, rid: int, pasid: int) -> int:
        """Address of the PASID entry; creates the PASID table and a present directory entry."""
        key = (rid, pasid >> 6)
        table = self._pasid_tables.get(key)
        if table is None:
            table = self._pasid_tables[key] = self.alloc.alloc()
            self.write_struct(self.dir_entry_address(rid, pasid), PasidDirEntry(p=1, smptblptr=table >> 12))
        return PasidEntry.entry_address(table, pasid)

    def set_pasid_entry(self, rid: int, pasid: int, **fields) -> PasidEntry:
        entry = PasidEntry(**fields)
        self.write_struct(self.pasid_entry_address(rid, pasid), entry)
        return entry

    def pasid_entry(self, rid: int, pasid: int) -> PasidEntry:
        return PasidEntry.from_bytes(self.mem.read(self.pasid_entry_address(rid, pasid), 64))

    def new_mm(self, levels: int = 4) -> Mm:
        return Mm(self.mem, self.alloc, levels)

    def bind(self, rid: int, pasid: int, mm: Mm, did: int = 1, context: dict | None = None, **pe) -> None:
        """Device ``rid`` uses ``mm`` for ``pasid`` (first stage, like intel_pasid_setup_first_level)."""
        if rid not in self._dirs or context is not None:
            ctx = dict(p=1, dte=1, paside=1, pre=1, pdts=7)
            ctx.update(context or {})
            self.set_context(rid, **ctx)
        fields = dict(p=1, pgtt=Pgtt.FIRST_STAGE, did=did, pwsnp=1, fspm=int(mm.levels == 5),
                      fsptptr=mm.pgd >> 12)
        fields.update(pe)
        self.set_pasid_entry(rid, pasid, **fields)

    # --- requests -----------------------------------------------------------------------------------
    def translate(self, kind: str, rid: int, addr: int, pasid: int | None = None, **kw):
        return self.iommu.translate(Request(kind, rid, addr, pasid, **kw))
