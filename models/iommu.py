"""The golden IOMMU: a VT-d 5.10 scalable-mode remapping unit with PASID, ATS and PRI (vtd.md §1-§3, §6).

Sans-I/O, shaped like the RISC-V IOMMU reference model. The environment gives a memory object
(``read(addr, n) -> bytes``, ``write(addr, data)``, ``cmpxchg64(addr, expected, new) -> (ok, old)``)
and drives the model through::

    iommu = Iommu(mem, IommuConfig())
    iommu.reg_read(offset, size) / iommu.reg_write(offset, value, size)   # MMIO, with side effects
    iommu.receive_tlp(data) -> [tlp bytes]    # one TLP from a device; TLPs back to devices
    iommu.translate(request) -> Translation   # the decision alone (tests, scoreboards)
    iommu.process_iq() / take_tx() / timeout_dev_tlb()

Every host-memory side effect (A/D updates, DMA, fault-event MSIs, and through ``models.iommu_queues``
PRQ descriptors and wait-status writes) goes through ``mem``, so an observer of ``mem`` sees every
byte. A memory callback reports a failed access (a bus error) by raising ``MemoryAccessError``.

Module map: ``Request``/``Page``/``Translation`` (what goes in and out of a translation),
``FAULT_PRIORITY`` (every check, in order), ``Caches`` (what a correct implementation may still hold),
``EventSource`` (vtd §1.12, one class for the fault, invalidation-completion and page-request
events), ``IommuConfig``/``Iommu`` (registers, fault recording, the walk, TLP handling). The queued
invalidation engine and the page request queue live in ``models.iommu_queues`` and reach the core
through ``iommu.caches``, ``iommu.record_fault``, ``iommu.lookup_pasid_entry``, ``iommu.inv_event``,
``iommu.prq_event``, ``iommu.reg``/``set_reg``/``field``/``set_field`` and ``iommu.send_tlp``.

Design notes
============

Fault priority (vtd §2.6, §3, §6.1; §9 item 4)
    ``FAULT_PRIORITY`` is the one ordered list of checks; it is rendered at the end of this
    docstring. Each row belongs to a *stage*; the walk runs the stages in table order and the rows of
    a stage in table order, and stops at the first row that fires. The walk code only decides which
    stages a request goes through (a translated request stops after the context entry, a
    pass-through PASID entry skips the first-stage walk, an IOTLB hit skips the table reads); it never
    reorders them (``Iommu._run`` refuses a stage that comes earlier in the table than one already
    run, except the per-level restart of ``fs_entry``). Rows whose name ends in ``_read`` or
    ``_update`` perform the step they name (a structure fetch, the atomic A/D update) and fire when
    it fails; every other row is a pure predicate.
    Where the spec leaves the order open we chose, and the RTL must follow:
    * Within one structure, checks go in the numeric order of their reason codes (the order SPEC
      Table 30 lists them): read error, not present, reserved bits, invalid programming, then the
      request-specific checks. A not-present entry is never checked for reserved bits.
    * TTM problems come before the PASID-width check (0x89), which comes before ER (0x34), which
      comes before any table read: none of them needs memory.
    * The first-stage walk checks every level for read error / P / reserved bits (and sets A on the
      way down) before any access right is looked at; rights are the AND over all levels and are
      checked once at the leaf (the IOTLB stores exactly that AND, so a walk and a hit decide the same
      way). So a not-present PTE under a PML4E with U/S=0 reports 0x71, not 0x81 (QEMU checks U/S per
      level and would say 0x81).
    * At the leaf: output-address checks (0x83, 0x87) first, so a translation of the interrupt window
      is refused (CA) before a reduced-permission success could hand it out; then user access (0x81);
      then the A/D update; then write access (0x85). Hence an access refused for U/S or the interrupt
      window sets no A bit in the leaf, a write refused for R/W=0 still sets A (the page is readable:
      an ATS request gets a read-only translation) and D is set only by a write that is allowed.
    * Legacy mode (RTADDR.TTM=00) is not implemented: requests without PASID then fault with RTA.1
      (0x30), after the RTA.2/RTA.3 rows that the spec gives for PASID and page requests.

Accessed/dirty (vtd §3.5)
    Each present, reserved-clean first-stage table entry gets A (and EA with PASID-entry EAFE=1) by
    ``mem.cmpxchg64(slot, seen, seen | bits)`` before the walk goes down; the leaf gets A, plus D when
    the request writes (write/atomic, or an ATS request treated as a write: NW=0 or ECAP.NWFS=0) and
    the write is allowed, in one cmpxchg. No write happens when the bits are already set. When the
    cmpxchg finds a different value (the CPU changed the entry between the read and the swap) the level
    is evaluated again from the read, with the new value: nothing is lost and nothing stale is
    written. A cmpxchg that raises ``MemoryAccessError`` is fault 0x91; an update needed on a walk that
    is not snooped (ECAP.SMPWCS=0 or PASID-entry PWSNP=0) is fault 0x90. A is set before an entry
    enters a cache.

Caches and legal staleness (vtd §3.7, §4.3, §4.6)
    ``translate()`` always walks the tables as they are now (the *fresh* result: what an
    implementation without caches does) and also returns ``Translation.legal_alternatives``: every
    different outcome a correct implementation could still produce because of entries it may have
    cached and software has not yet invalidated. ``Caches`` keeps, per tag, every version a walk has
    produced since the last invalidation covering it: context entries (tag: source-id), PASID entries
    (tag: source-id + PASID, invalidated by DID), first-stage paging-structure entries (tag: DID, PASID,
    level, address bits above the level), IOTLB entries (tag: DID, PASID, page number, page size; data:
    frame, AND(R/W), AND(U/S), leaf D, PGTT). Only valid structures are cached: context and PASID
    entries that passed their own checks, table entries once their A bit is set (also when a lower
    level then faults, as x86 paging-structure caches may), and leaves of successful translations
    (an ATS reduced-permission answer counts as one; a request that faults caches no leaf, vtd §3.7).
    Pass-through translations are cached as 4 KiB pages. The alternatives are the outcomes of evaluating the
    request with every combination of {memory or a cached context entry} x {memory or a cached PASID
    entry} x {a walk from FSPTPTR, from a cached paging-structure entry, or an IOTLB hit}; such
    evaluations read memory but write nothing (their A/D writes are listed in ``ad_updates``). An IOTLB
    entry with D=0 is not a legal hit for a write that its rights allow (the implementation must walk
    again to set D, vtd §3.7); a hit whose cached rights refuse the access is a legal (spurious) fault,
    which is why the page-request path invalidates implicitly (vtd §4.7). Invalidations follow vtd §4.3
    exactly, including the type-2 page-selective rule that drops every first-stage entry of the DID.
    The scoreboard accepts the fresh outcome or any alternative; ``receive_tlp`` acts on the fresh one
    (``respond(tlp, translation)`` acts on a chosen one).

Fault recording (vtd §6.3)
    FRCD ring with an internal index (reset when TES and IRES are both 0); PFO set drops new faults; a
    full slot (F=1) sets PFO; FRI is written only when PPF was 0; F is written last. No compression of
    faults with the same source-id (the optional step 2 of vtd §6.3): every fault takes a slot, which
    makes the ring contents a function of the fault sequence alone.

Other decisions (the RTL follows them)
    * GCMD: every command bit of one write is acted on, in bit order 31 down to 23 (TE, SRTP, WBF, QIE,
      IRE, SIRTP, CFI); software writes one command at a time (vtd §1.5), so this order only matters
      for broken software. WBF/IRE/SIRTP/CFI are not supported by the profile and are ignored.
    * Requests without PASID to 0xFEEx_xxxx are interrupt requests, not DMA (vtd §3.6): with
      ECAP.IR=0 a write goes to memory unchanged (compatibility-format MSI), a read gets UR without a
      fault record, and a translation request gets the special entry R=0, U=1, W=!NW, S=0.
    * TLPs: malformed input (``tlp.TlpError`` other than an unsupported type, decoded as a receiver
      with reserved bits ignored) is dropped without a response, as a Malformed TLP is; a well-formed
      unsupported TLP type or any prefix other than PASID gets UR when non-posted and is dropped when
      posted (pcie §2.1); MRdLk gets UR; a poisoned write is dropped; received completions are
      unexpected and dropped. A translation request answers with one entry covering the leaf page.
    * Failed DMA (``MemoryAccessError`` from ``mem``) after a successful translation: reads complete
      with CA, writes are dropped; nothing is logged (it is not a remapping fault).
    * Translated requests (AT=10b) faulting are answered like untranslated ones (UR / dropped, logged).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from . import tlp
from .paging import LEAF_SIZE, LEVEL_SHIFT, PAGE_SIZE, FsEntry, is_canonical, level_index
from .vtd import (
    FAULT_INFO,
    PROFILE,
    REGISTERS,
    Access,
    CapabilityProfile,
    CcInvDesc,
    ContextEntry,
    FaultReason,
    FrcdAt,
    FrcdType,
    IotlbInvDesc,
    PasidDirEntry,
    PasidEntry,
    PcInvDesc,
    Pgtt,
    PIotlbInvDesc,
    RegisterMap,
    Response,
    RootEntry,
    build_registers,
)

from .iommu_queues import InvalidationQueue, PageRequestQueue

R = FaultReason

#: the interrupt address range (vtd §3.6, SGN.8)
INTERRUPT_BASE = 0xFEE0_0000
INTERRUPT_SIZE = 0x10_0000

KINDS = ("read", "write", "atomic", "translation", "page_request")
_WRITE_KINDS = ("write", "atomic")
_FRCD_TYPE = {
    "read": FrcdType.READ,
    "translation": FrcdType.READ,
    "write": FrcdType.WRITE,
    "atomic": FrcdType.ATOMIC,
    "page_request": FrcdType.PAGE_REQUEST,
}


class MemoryAccessError(Exception):
    """Raised by a memory callback for an access the memory system could not perform (bus error)."""


class Fault(Exception):
    """A remapping fault found by a walk: ``reason`` (FaultReason), ``fpd`` (an FPD bit was set on the
    way, so a qualified reason is neither recorded nor signalled) and ``check`` (the row of
    FAULT_PRIORITY that fired)."""

    def __init__(self, reason: FaultReason, fpd: bool = False, check: str = ""):
        super().__init__(f"{reason.condition} ({reason.value:#04x}) {reason.description}"
                         + (f" [{check}]" if check else "") + (" [FPD]" if fpd else ""))
        self.reason = reason
        self.fpd = fpd
        self.check = check

    @property
    def suppressed(self) -> bool:
        """Qualified and FPD set: not recorded, not signalled (vtd §2.6)."""
        return self.fpd and self.reason.qualified


# ================================================================================================
# Requests and translations
# ================================================================================================


@dataclass(frozen=True)
class Request:
    """One request as the remapping hardware sees it (decoded from a TLP or built by a test).

    ``kind``: 'read', 'write', 'atomic', 'translation' (ATS translation request) or 'page_request'.
    ``at``: FrcdAt; a translation request has TRANSLATION_REQUEST, the others UNTRANSLATED (default)
    or TRANSLATED. ``pasid`` is None for a request without PASID; ``pmr``/``er`` come from the PASID
    prefix; ``nw`` is the No-Write flag of a translation request."""

    kind: str
    rid: int
    addr: int
    pasid: int | None = None
    pmr: int = 0
    er: int = 0
    at: FrcdAt | None = None
    nw: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Request.kind {self.kind!r} is not one of {KINDS}")
        at = self.at
        if at is None:
            at = FrcdAt.TRANSLATION_REQUEST if self.kind == "translation" else FrcdAt.UNTRANSLATED
        at = FrcdAt(at)
        object.__setattr__(self, "at", at)
        if (self.kind == "translation") != (at == FrcdAt.TRANSLATION_REQUEST):
            raise ValueError(f"Request: kind {self.kind!r} does not go with AT={at.name}")
        if self.kind == "page_request" and at != FrcdAt.UNTRANSLATED:
            raise ValueError("Request: a page request has no address type")
        if not 0 <= self.rid <= 0xFFFF:
            raise ValueError(f"Request.rid {self.rid:#x} does not fit in 16 bits")
        if not 0 <= self.addr < 1 << 64:
            raise ValueError(f"Request.addr {self.addr:#x} does not fit in 64 bits")
        if self.pasid is None:
            if self.pmr or self.er:
                raise ValueError("Request: pmr/er come from the PASID prefix and need a pasid")
        elif not 0 <= self.pasid < 1 << 20:
            raise ValueError(f"Request.pasid {self.pasid:#x} does not fit in 20 bits")
        if self.nw and self.kind != "translation":
            raise ValueError("Request.nw exists only in a translation request")

    @property
    def has_pasid(self) -> bool:
        return self.pasid is not None

    @property
    def bus(self) -> int:
        return self.rid >> 8

    @property
    def devfn(self) -> int:
        return self.rid & 0xFF


@dataclass(frozen=True)
class Page:
    """A translated page: input page ``iova`` of ``size`` bytes at output ``pa``; ``rw``/``us`` are
    the AND of R/W and U/S over the walk (1 for pass-through and translated requests), ``dirty`` the
    leaf D bit after the walk. ``did``/``pasid``/``pgtt`` are the IOTLB tag parts (None for a
    translated request or with translation disabled); ``snoop`` is the PASID entry's PGSNP."""

    iova: int
    size: int
    pa: int
    rw: int = 1
    us: int = 1
    dirty: int = 0
    did: int | None = None
    pasid: int | None = None
    pgtt: int | None = None
    snoop: int = 0

    @classmethod
    def identity(cls, addr: int, **tags) -> Page:
        base = addr & ~(PAGE_SIZE - 1)
        return cls(iova=base, size=PAGE_SIZE, pa=base, **tags)


@dataclass(frozen=True)
class Translation:
    """The outcome of one request.

    ``fault``: the FaultReason the request hits (None = none); what that means for the requester
    depends on its kind (FAULT_INFO: a translation request gets S0 / Seff successes for recoverable
    reasons). ``fpd``: an FPD bit was seen on the way. ``page``: the page reached (also for faults found
    at or after the leaf). ``r``/``w``: what the translation grants this requester (for a translation
    request ``w`` is 0 unless it asked for write). ``unsupported``: answered UR without a fault record
    (translation disabled and AT!=00b; a read of the interrupt window). ``untranslated_only``: the
    ATS U bit (interrupt window). ``source``: 'walk' (the fresh walk), 'stale' (a walk through cached
    context/PASID/paging-structure entries), 'iotlb' (a cached leaf), 'disabled' (GSTS.TES=0),
    'interrupt' (an interrupt request). ``ad_updates``: (entry address, old, new) A/D writes this
    outcome implies (done for 'walk', only implied for the alternatives). ``legal_alternatives``: the
    other outcomes a correct implementation may produce now (see the module docstring)."""

    request: Request
    fault: FaultReason | None = None
    fpd: bool = False
    page: Page | None = None
    r: bool = False
    w: bool = False
    unsupported: bool = False
    untranslated_only: bool = False
    source: str = "walk"
    check: str = ""
    ad_updates: tuple[tuple[int, int, int], ...] = ()
    legal_alternatives: tuple[Translation, ...] = ()

    @property
    def ok(self) -> bool:
        """The request may proceed (DMA happens / the ATS completion grants what r/w say)."""
        return self.fault is None and not self.unsupported

    @property
    def address(self) -> int:
        """Output address of the request's address (only when a page was reached)."""
        if self.page is None:
            raise ValueError(f"no page: {self}")
        return self.page.pa + (self.request.addr - self.page.iova)

    @property
    def response(self) -> Response | None:
        """FAULT_INFO's answer for this kind of request (None without a fault)."""
        if self.fault is None:
            return None
        info = FAULT_INFO[self.fault]
        if self.request.kind == "translation":
            return info.tr
        return (info.ut_with_pasid if self.request.has_pasid else info.ut_without_pasid) or Response.UR

    @property
    def logged(self) -> bool:
        """A fault record is due (vtd §6.1-§6.3: FPD, and the translation-request column)."""
        if self.fault is None:
            return False
        info = FAULT_INFO[self.fault]
        if info.qualified and self.fpd:
            return False
        if self.request.kind == "translation":
            return bool(info.tr_logged)
        return True

    def outcome(self) -> tuple:
        """What an observer can tell apart: two translations with equal outcomes are the same answer."""
        p = self.page
        where = None if p is None else (p.iova, p.size, p.pa)
        return (self.fault, self.logged, self.unsupported, where, self.r, self.w, self.untranslated_only)

    def outcomes(self) -> list[tuple]:
        """The fresh outcome first, then the legal alternatives."""
        return [self.outcome()] + [t.outcome() for t in self.legal_alternatives]


# ================================================================================================
# The walk state and the fault priority table
# ================================================================================================


class _Retry(Exception):
    """The entry changed between its read and the cmpxchg: evaluate the level again."""


@dataclass(frozen=True)
class _PasidRecord:
    """A PASID-cache entry: the PASID entry and the FPD of the directory entry that led to it."""

    entry: PasidEntry
    dir_fpd: int


@dataclass(frozen=True)
class _PscEntry:
    """A first-stage paging-structure-cache entry: the non-leaf entry at ``level`` for the region
    containing the address leads to ``table``; ``rw``/``us`` are ANDed down to and including it."""

    level: int
    table: int
    rw: int
    us: int


class _Walk:
    """Everything one evaluation of a request has read so far. ``commit``: this is the real walk
    (A/D updates are written, caches filled); otherwise memory is only read. ``context``,
    ``pasid_rec``, ``start`` (a _PscEntry) and ``hit`` (a cached Page) replace reads from memory."""

    def __init__(self, iommu: Iommu, req: Request, commit: bool, context: ContextEntry | None = None,
                 pasid_rec: _PasidRecord | None = None, start: _PscEntry | None = None,
                 hit: Page | None = None):
        self.iommu = iommu
        self.profile = iommu.profile
        self.req = req
        self.commit = commit
        self.fpd = False
        self.root: RootEntry | None = None
        self.context = context
        if context is not None:
            self.fpd = bool(context.fpd)
        self.dir_entry: PasidDirEntry | None = None
        self.pasid_entry = None if pasid_rec is None else pasid_rec.entry
        if pasid_rec is not None:
            self.fpd = self.fpd or bool(pasid_rec.dir_fpd or pasid_rec.entry.fpd)
        self.start = start
        self.hit = hit
        self.page: Page | None = None
        self.updates: list[tuple[int, int, int]] = []
        self.stage_index = 0  # FAULT_PRIORITY stage reached so far (Iommu._run enforces the order)
        # first-stage position
        self.top_level = 0
        self.level = 0
        self.table = 0
        self.slot = 0
        self.entry: FsEntry | None = None
        self.above_rw = 1
        self.above_us = 1

    # --- request facts ------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.req.kind

    @property
    def has_pasid(self) -> bool:
        return self.req.pasid is not None

    @property
    def translated(self) -> bool:
        return self.req.at == FrcdAt.TRANSLATED

    @property
    def pasid(self) -> int:
        """The PASID the request is processed with: its own, or RID_PASID (vtd §2.1)."""
        if self.has_pasid:
            return self.req.pasid
        return self.context.effective_rid_pasid(self.profile)

    @property
    def supervisor(self) -> bool:
        """PR from the prefix, or RID_PRIV for a request without PASID (vtd §3.3)."""
        if self.has_pasid:
            return bool(self.req.pmr)
        return bool(self.context.effective_rid_priv(self.profile))

    @property
    def wants_write(self) -> bool:
        """Writes, atomics, and ATS requests treated as read+write (vtd §3.5: NW=0, or NWFS=0)."""
        if self.kind == "translation":
            return not (self.req.nw and self.profile.nwfs)
        return self.kind in _WRITE_KINDS

    @property
    def ttm(self) -> int:
        return self.iommu.root_table[1]

    @property
    def haw(self) -> int:
        return self.profile.haw

    def read_allowed(self, us: int) -> bool:
        """vtd §3.3: supervisor reads need nothing; user reads need U/S=1 in every entry."""
        return self.supervisor or bool(us)

    def write_allowed(self, rw: int, us: int) -> bool:
        """vtd §3.3: supervisor writes need R/W=1 only with WPE=1; user writes need R/W=1 and U/S=1."""
        if self.supervisor:
            return bool(rw) or not self.pasid_entry.wpe
        return bool(rw and us)

    # --- fetches (True = the read failed) -------------------------------------------------------
    def _read(self, addr: int, n: int) -> bytes | None:
        try:
            return self.iommu.mem.read(addr, n)
        except MemoryAccessError:
            return None

    def root_read(self) -> bool:
        data = self._read(RootEntry.entry_address(self.iommu.root_table[0], self.req.bus), 16)
        if data is None:
            return True
        self.root = RootEntry.from_bytes(data)
        return False

    def context_read(self) -> bool:
        _, table = self.root.context_table(self.req.devfn)
        data = self._read(ContextEntry.entry_address(table, self.req.devfn), 32)
        if data is None:
            return True
        self.context = ContextEntry.from_bytes(data)
        self.fpd = self.fpd or bool(self.context.fpd)  # FPD counts even when P=0 (vtd §2.3)
        return False

    def dir_read(self) -> bool:
        data = self._read(PasidDirEntry.entry_address(self.context.pasiddirptr_address, self.pasid), 8)
        if data is None:
            return True
        self.dir_entry = PasidDirEntry.from_bytes(data)
        self.fpd = self.fpd or bool(self.dir_entry.fpd)
        return False

    def pasid_read(self) -> bool:
        data = self._read(PasidEntry.entry_address(self.dir_entry.smptblptr_address, self.pasid), 64)
        if data is None:
            return True
        self.pasid_entry = PasidEntry.from_bytes(data)
        self.fpd = self.fpd or bool(self.pasid_entry.fpd)
        return False

    def fs_read(self) -> bool:
        self.slot = self.table + 8 * level_index(self.req.addr, self.level)
        data = self._read(self.slot, 8)
        if data is None:
            return True
        self.entry = FsEntry.from_bytes(data)
        return False

    # --- request-stage predicates -----------------------------------------------------------------
    def ttm_reserved(self) -> bool:
        t = self.ttm
        return t == 0b10 or (t == 0b11 and not self.profile.adms) or (t == 0b01 and not self.profile.smts)

    def ttm_legacy_with_pasid(self) -> bool:
        return self.ttm == 0b00 and self.has_pasid

    def ttm_legacy_page_request(self) -> bool:
        return self.ttm == 0b00 and self.kind == "page_request"

    def ttm_abort(self) -> bool:
        return self.ttm == 0b11

    def ttm_legacy(self) -> bool:
        return self.ttm == 0b00

    def pasid_too_wide(self) -> bool:
        if not self.has_pasid or self.kind == "page_request":
            return False
        return self.req.pasid >> self.profile.pasid_bits != 0

    def _execute_requested(self) -> bool:
        # ER is meaningful for untranslated reads and translation requests only (pcie §2.2)
        return (self.has_pasid and bool(self.req.er) and self.kind in ("read", "translation")
                and not self.translated)

    def execute_rta5(self) -> bool:
        return self.profile.ver_max >= 8 and self._execute_requested()

    # --- root / context ---------------------------------------------------------------------------
    def root_not_present(self) -> bool:
        return not self.root.context_table(self.req.devfn)[0]

    def root_reserved(self) -> bool:
        return bool(self.root.reserved_violations(self.haw))

    def context_not_present(self) -> bool:
        return not self.context.p

    def context_reserved(self) -> bool:
        return bool(self.context.reserved_violations(self.haw, self.profile))

    def context_invalid(self) -> bool:
        c = self.context
        return bool((c.pre and not c.dte) or c.effective_rid_pasid(self.profile) > c.max_pasid()
                    or (c.eptr and not c.paside))

    def dte_disabled(self) -> bool:
        return (self.kind == "translation" or self.translated) and not self.context.dte

    def paside_disabled(self) -> bool:
        return self.has_pasid and not self.context.paside

    def pasid_above_pdts(self) -> bool:
        return self.has_pasid and self.req.pasid > self.context.max_pasid()

    def pre_disabled(self) -> bool:
        return self.kind == "page_request" and not self.context.pre

    def rid_pasid_used(self) -> bool:
        return self.has_pasid and self.req.pasid == self.context.effective_rid_pasid(self.profile)

    def eptr_disabled(self) -> bool:
        return self.translated and self.has_pasid and not (self.profile.ptrs and self.context.eptr)

    # --- PASID directory / PASID entry --------------------------------------------------------------
    def dir_not_present(self) -> bool:
        return not self.dir_entry.p

    def dir_reserved(self) -> bool:
        return bool(self.dir_entry.reserved_violations(self.haw, self.profile))

    def pasid_not_present(self) -> bool:
        return not self.pasid_entry.p

    def pasid_reserved(self) -> bool:
        return bool(self.pasid_entry.reserved_violations(self.haw, self.profile))

    def pasid_invalid(self) -> bool:
        pe, p = self.pasid_entry, self.profile
        if pe.pgtt == Pgtt.FIRST_STAGE:
            return not p.fsts or pe.fspm > 0b01 or (pe.fspm == 0b01 and not p.fs5lp)
        if pe.pgtt == Pgtt.PASS_THROUGH:
            return not p.pt
        return True  # reserved PGTT, or a second-stage / nested type this design does not support

    def execute_spt5(self) -> bool:
        return self.profile.ver_max <= 7 and self._execute_requested()

    def supervisor_disabled(self) -> bool:
        return self.kind != "page_request" and self.supervisor and not self.pasid_entry.sre

    # --- first stage --------------------------------------------------------------------------------
    def non_canonical(self) -> bool:
        return not is_canonical(self.req.addr, self.pasid_entry.fs_levels())

    def fs_root_read(self) -> bool:
        return self.level == self.top_level and self.fs_read()

    def fs_lower_read(self) -> bool:
        return self.level != self.top_level and self.fs_read()

    def fs_not_present(self) -> bool:
        return not self.entry.p

    def fs_reserved(self) -> bool:
        return bool(self.entry.reserved_violations(self.level, self.haw, bool(self.profile.fs1gp)))

    def _ad_target(self) -> int:
        """The entry with the A (EA) and, for an allowed write at the leaf, D bits this access sets."""
        e = self.entry
        bits = 1 << FsEntry.a.lo
        if self.pasid_entry.eafe:
            bits |= 1 << FsEntry.ea.lo
        if e.is_leaf(self.level) and self.wants_write and self.write_allowed(
                self.above_rw & e.rw, self.above_us & e.us):
            bits |= 1 << FsEntry.d.lo
        return e.raw | bits

    def ad_not_snooped(self) -> bool:
        snooped = self.profile.smpwcs and self.pasid_entry.pwsnp
        return not snooped and self._ad_target() != self.entry.raw

    def ad_update(self) -> bool:
        """Set A/EA/D with one cmpxchg (vtd §3.5); True when the memory operation failed."""
        old, new = self.entry.raw, self._ad_target()
        if new == old:
            return False
        if self.commit:
            try:
                ok, seen = self.iommu.mem.cmpxchg64(self.slot, old, new)
            except MemoryAccessError:
                return True
            if not ok:
                raise _Retry
        self.updates.append((self.slot, old, new))
        self.entry = FsEntry(new)
        return False

    # --- output and access ----------------------------------------------------------------------
    def _output_range(self) -> tuple[int, int]:
        """An ATS request is answered with the whole page; other requests use one address (a TLP
        never crosses 4 KiB and the checked ranges are 4 KiB aligned)."""
        if self.kind == "translation":
            return self.page.pa, self.page.size
        return self.page.pa + (self.req.addr - self.page.iova), 1

    def output_above_haw(self) -> bool:
        base, size = self._output_range()
        return base + size > 1 << self.haw

    def output_in_interrupt_range(self) -> bool:
        base, size = self._output_range()
        return base < INTERRUPT_BASE + INTERRUPT_SIZE and INTERRUPT_BASE < base + size

    def user_denied(self) -> bool:
        return not self.read_allowed(self.page.us)

    def write_denied(self) -> bool:
        return self.wants_write and not self.write_allowed(self.page.rw, self.page.us)


@dataclass(frozen=True)
class Check:
    """One row of the fault priority table: ``test(walk)`` true means the request faults with
    ``reason`` here (for ``*_read`` / ``*_update`` rows: the step failed)."""

    stage: str
    name: str
    reason: FaultReason
    test: Callable[[_Walk], bool]
    doc: str


_W = _Walk
#: Every check of the request walk, in the order the model applies it and the RTL must apply it.
FAULT_PRIORITY: tuple[Check, ...] = (
    # request: no memory needed (vtd §1.6, §2.6 steps 2-4)
    Check("request", "ttm_reserved", R.RTA_1, _W.ttm_reserved,
          "latched TTM is 10b, 11b without ECAP.ADMS, or 01b without ECAP.SMTS"),
    Check("request", "ttm_legacy_with_pasid", R.RTA_2, _W.ttm_legacy_with_pasid,
          "TTM=00b, request with PASID"),
    Check("request", "ttm_legacy_page_request", R.RTA_3, _W.ttm_legacy_page_request, "TTM=00b, page request"),
    Check("request", "ttm_abort", R.RTA_4, _W.ttm_abort, "TTM=11b: abort-DMA mode"),
    Check("request", "ttm_legacy", R.RTA_1, _W.ttm_legacy,
          "TTM=00b, request without PASID: legacy mode is not implemented"),
    Check("request", "pasid_too_wide", R.SGN_10, _W.pasid_too_wide,
          "PASID >= 2^(ECAP.PSS+1) (not checked for page requests)"),
    Check("request", "execute_requested", R.RTA_5, _W.execute_rta5,
          "ER=1 in an untranslated read / translation request with PASID, VER major >= 8"),
    # root entry (vtd §2.2)
    Check("root", "root_read", R.SRT_1, _W.root_read, "read the root entry at RTA + 16*bus"),
    Check("root", "root_not_present", R.SRT_2, _W.root_not_present,
          "LP (devfn < 0x80) / UP (devfn >= 0x80) is 0"),
    Check("root", "root_reserved", R.SRT_3, _W.root_reserved,
          "reserved bits, or pointer bits >= HAW, anywhere in the 128-bit entry"),
    # context entry (vtd §2.3); FPD is taken even from a not-present entry
    Check("context", "context_read", R.SCT_1, _W.context_read,
          "read the context entry at CTP + 32*devfn[6:0]"),
    Check("context", "context_not_present", R.SCT_2, _W.context_not_present, "P=0"),
    Check("context", "context_reserved", R.SCT_3, _W.context_reserved,
          "reserved bits, PASIDDIRPTR >= HAW, HPTE without HPTS, EPTR without PTRS"),
    Check("context", "context_invalid", R.SCT_4, _W.context_invalid,
          "PRE=1 with DTE=0, RID_PASID above the PDTS limit, EPTR=1 with PASIDE=0"),
    # checks of the context entry that depend on the request
    Check("context_use", "dte_disabled", R.SCT_5, _W.dte_disabled,
          "translation or translated request, DTE=0"),
    Check("context_use", "paside_disabled", R.SCT_6, _W.paside_disabled, "request with PASID, PASIDE=0"),
    Check("context_use", "pasid_above_pdts", R.SCT_7, _W.pasid_above_pdts, "PASID > 2^(PDTS+13)-1"),
    Check("context_use", "pre_disabled", R.SCT_8, _W.pre_disabled, "page request, PRE=0"),
    Check("context_use", "rid_pasid_used", R.SCT_9, _W.rid_pasid_used,
          "request with PASID equal to RID_PASID (0 when ECAP.RPS=0)"),
    Check("context_use", "eptr_disabled", R.SCT_10, _W.eptr_disabled,
          "translated request with PASID unless ECAP.PTRS=1 and EPTR=1"),
    # PASID directory entry (vtd §2.4)
    Check("pasid_dir", "dir_read", R.SPD_1, _W.dir_read, "read the entry at PASIDDIRPTR + 8*PASID[19:6]"),
    Check("pasid_dir", "dir_not_present", R.SPD_2, _W.dir_not_present, "P=0"),
    Check("pasid_dir", "dir_reserved", R.SPD_3, _W.dir_reserved, "reserved bits, SMPTBLPTR >= HAW"),
    # PASID entry (vtd §2.5)
    Check("pasid_entry", "pasid_read", R.SPT_1, _W.pasid_read, "read the entry at SMPTBLPTR + 64*PASID[5:0]"),
    Check("pasid_entry", "pasid_not_present", R.SPT_2, _W.pasid_not_present, "P=0"),
    Check("pasid_entry", "pasid_reserved", R.SPT_3, _W.pasid_reserved,
          "reserved bits, FSPTPTR >= HAW (PGTT=001), capability-gated fields"),
    Check("pasid_entry", "pasid_invalid", R.SPT_4, _W.pasid_invalid,
          "PGTT not 001 (FSTS) or 100 (PT); FSPM 1x, or 01 without FS5LP"),
    Check("pasid_use", "execute_requested_spt5", R.SPT_5, _W.execute_spt5,
          "ER=1 as for RTA.5, VER major <= 7"),
    Check("pasid_use", "supervisor_disabled", R.SPT_6, _W.supervisor_disabled,
          "PR=1 (or RID_PRIV=1) with SRE=0 (not for page requests)"),
    # first-stage walk (vtd §3)
    Check("fs_input", "non_canonical", R.SGN_1, _W.non_canonical,
          "address bits 63:N-1 not all equal, N = 48 (4-level) or 57 (5-level)"),
    Check("fs_entry", "fs_root_read", R.SFS_4, _W.fs_root_read, "read the entry in the table at FSPTPTR"),
    Check("fs_entry", "fs_read", R.SFS_1, _W.fs_lower_read, "read an entry of a lower table"),
    Check("fs_entry", "fs_not_present", R.SFS_2, _W.fs_not_present, "P=0"),
    Check("fs_entry", "fs_reserved", R.SFS_3, _W.fs_reserved,
          "bits 51:HAW; PS in PML5E/PML4E, in a PDPE without FS1GP; 29:13 / 20:13 in 1G / 2M leaves"),
    Check("fs_table_update", "table_not_snooped", R.SFS_9, _W.ad_not_snooped,
          "A (EA) must be set in a table entry but the walk is not snooped (SMPWCS=0 or PWSNP=0)"),
    Check("fs_table_update", "table_ad_update", R.SFS_10, _W.ad_update,
          "cmpxchg setting A (EA) in a table entry failed; a changed entry is re-evaluated"),
    # the translated page (first-stage leaf, pass-through, translated request, IOTLB hit)
    Check("output", "output_above_haw", R.SGN_4, _W.output_above_haw,
          "output address (ATS: the page) at or above 2^HAW"),
    Check("output", "output_interrupt_range", R.SGN_8, _W.output_in_interrupt_range,
          "output address (ATS: the page) in 0xFEE0_0000-0xFEEF_FFFF"),
    Check("access_user", "user_denied", R.SGN_2, _W.user_denied, "user request, AND(U/S)=0"),
    Check("fs_leaf_update", "leaf_not_snooped", R.SFS_9, _W.ad_not_snooped,
          "A (EA), and D for an allowed write, must be set in the leaf but the walk is not snooped"),
    Check("fs_leaf_update", "leaf_ad_update", R.SFS_10, _W.ad_update,
          "cmpxchg setting A (EA, D) in the leaf failed; a changed entry is re-evaluated"),
    Check("access_write", "write_denied", R.SGN_6, _W.write_denied,
          "write/atomic/ATS-as-write: user needs AND(R/W)=1; supervisor needs it only with WPE=1"),
)

#: the stages in walk order, and each stage's rows
STAGES: tuple[str, ...] = tuple(dict.fromkeys(c.stage for c in FAULT_PRIORITY))
_ROWS: dict[str, tuple[Check, ...]] = {s: tuple(c for c in FAULT_PRIORITY if c.stage == s) for s in STAGES}
_STAGE_INDEX = {s: i for i, s in enumerate(STAGES)}


def _check_table() -> None:
    """The table is grouped by stage (a stage's rows are contiguous) and names are unique."""
    seen = []
    for c in FAULT_PRIORITY:
        if seen and seen[-1] != c.stage and c.stage in seen:
            raise AssertionError(f"FAULT_PRIORITY: stage {c.stage} is split")
        if not seen or seen[-1] != c.stage:
            seen.append(c.stage)
    names = [c.name for c in FAULT_PRIORITY]
    if len(set(names)) != len(names):
        raise AssertionError("FAULT_PRIORITY: duplicate row names")


_check_table()


def render_fault_priority() -> str:
    """FAULT_PRIORITY as a Markdown table (appended to this module's docstring, lifted into docs)."""
    lines = ["| # | stage | check | reason | condition |", "|---|---|---|---|---|"]
    for i, c in enumerate(FAULT_PRIORITY, 1):
        reason = f"{c.reason.value:#04x} {c.reason.condition}"
        lines.append(f"| {i} | {c.stage} | `{c.name}` | {reason} | {c.doc} |")
    return "\n".join(lines)


__doc__ += "\nFault priority table (generated from ``FAULT_PRIORITY``)\n\n" + render_fault_priority() + "\n"


# ================================================================================================
# Caches
# ================================================================================================


def _overlaps(base: int, size: int, lo: int, hi: int) -> bool:
    return base < hi and lo < base + size


class Caches:
    """What a correct implementation may hold (module docstring, "Caches and legal staleness").

    Each cache maps a tag to the set of versions walks produced since the last invalidation covering
    that tag. The invalidation methods take the descriptor fields as they are (granularity = the raw
    G value of vtd §4.2) and implement vtd §4.3:

    * ``invalidate_context(g, did, sid, fm)``: cc_inv_dsc; global and domain-selective (DID ignored in
      scalable mode) drop everything, device-selective the source-ids matching ``sid`` under the
      function mask ``fm``.
    * ``invalidate_pasid(g, did, pasid)``: pc_inv_dsc; 00 domain, 01 PASID-in-domain, 11 global.
    * ``invalidate_iotlb(g, did, pasid, addr, am, ih)``: iotlb_inv_dsc (``pasid`` None, G 01 global /
      10 domain / 11 page) or p_iotlb_inv_dsc (``pasid`` given, G 10 PASID / 11 page-in-PASID), on the
      IOTLB and the first-stage paging-structure cache.
    """

    def __init__(self):
        self.context: dict[int, set[ContextEntry]] = {}
        self.pasid: dict[tuple[int, int], set[_PasidRecord]] = {}
        self.psc: dict[tuple[int, int, int, int], set[_PscEntry]] = {}  # (did, pasid, level, addr >> shift)
        self.iotlb: dict[tuple[int, int, int, int], set[Page]] = {}  # (did, pasid, iova, size)

    def invalidate_all(self) -> None:
        self.context.clear()
        self.pasid.clear()
        self.psc.clear()
        self.iotlb.clear()

    def __len__(self) -> int:
        return sum(len(v) for c in (self.context, self.pasid, self.psc, self.iotlb) for v in c.values())

    # --- fills (the fresh walk) -----------------------------------------------------------------
    def add_context(self, sid: int, entry: ContextEntry) -> None:
        self.context.setdefault(sid, set()).add(entry)

    def add_pasid(self, sid: int, pasid: int, record: _PasidRecord) -> None:
        self.pasid.setdefault((sid, pasid), set()).add(record)

    def add_psc(self, did: int, pasid: int, addr: int, entry: _PscEntry) -> None:
        key = (did, pasid, entry.level, addr >> LEVEL_SHIFT[entry.level])
        self.psc.setdefault(key, set()).add(entry)

    def add_iotlb(self, page: Page) -> None:
        self.iotlb.setdefault((page.did, page.pasid, page.iova, page.size), set()).add(page)

    # --- lookups (the alternatives) ---------------------------------------------------------------
    def contexts(self, sid: int) -> list[ContextEntry]:
        return sorted(self.context.get(sid, ()), key=lambda e: e.raw)

    def pasid_records(self, sid: int, pasid: int) -> list[_PasidRecord]:
        return sorted(self.pasid.get((sid, pasid), ()), key=lambda r: (r.entry.raw, r.dir_fpd))

    def psc_entries(self, did: int, pasid: int, addr: int) -> list[_PscEntry]:
        out = []
        for level in (5, 4, 3, 2):
            out += self.psc.get((did, pasid, level, addr >> LEVEL_SHIFT[level]), ())
        return sorted(out, key=lambda e: (-e.level, e.table, e.rw, e.us))

    def iotlb_pages(self, did: int, pasid: int, addr: int) -> list[Page]:
        out = []
        for size in LEAF_SIZE.values():
            out += self.iotlb.get((did, pasid, addr & ~(size - 1), size), ())
        return sorted(out, key=lambda p: (p.size, p.pa, p.rw, p.us, p.dirty, p.pgtt, p.snoop))

    # --- invalidations ----------------------------------------------------------------------------
    @staticmethod
    def _drop(cache: dict, doomed: Callable) -> None:
        for key in [k for k, versions in cache.items() if any(doomed(k, v) for v in versions)]:
            kept = {v for v in cache[key] if not doomed(key, v)}
            if kept:
                cache[key] = kept
            else:
                del cache[key]

    def invalidate_context(self, granularity: int, did: int | None = None, sid: int | None = None,
                           fm: int = 0) -> None:
        if granularity in (CcInvDesc.G_GLOBAL, CcInvDesc.G_DOMAIN):
            self.context.clear()
        elif granularity == CcInvDesc.G_DEVICE:
            if sid is None:
                raise ValueError("device-selective context invalidation needs a sid")
            mask = ((1 << fm) - 1) << (3 - fm)  # FM masks function-number bits 2, 2:1, 2:0
            self._drop(self.context, lambda k, v: (k & ~mask) == (sid & ~mask))
        else:
            raise ValueError(f"context-cache invalidation granularity {granularity:#04b} is reserved")

    def invalidate_pasid(self, granularity: int, did: int, pasid: int | None = None) -> None:
        if granularity == PcInvDesc.G_GLOBAL:
            self.pasid.clear()
        elif granularity == PcInvDesc.G_DOMAIN:
            self._drop(self.pasid, lambda k, v: v.entry.did == did)
        elif granularity == PcInvDesc.G_PASID:
            if pasid is None:
                raise ValueError("PASID-selective PASID-cache invalidation needs a pasid")
            self._drop(self.pasid, lambda k, v: v.entry.did == did and k[1] == pasid)
        else:
            raise ValueError(f"PASID-cache invalidation granularity {granularity:#04b} is reserved")

    def invalidate_iotlb(self, granularity: int, did: int | None = None, pasid: int | None = None,
                         addr: int | None = None, am: int = 0, ih: int = 0) -> None:
        page_selective = granularity == (IotlbInvDesc.G_PAGE if pasid is None else PIotlbInvDesc.G_PAGE)
        if page_selective:
            if addr is None:
                raise ValueError("page-selective invalidation needs an address")
            lo = addr & ~((1 << (12 + am)) - 1)
            hi = lo + (1 << (12 + am))
        fs = (Pgtt.FIRST_STAGE, Pgtt.NESTED)
        if pasid is None:  # iotlb_inv_dsc, type 2 (vtd §4.3 first table)
            if granularity == IotlbInvDesc.G_GLOBAL:
                self.iotlb.clear()
                self.psc.clear()
                return
            if granularity not in (IotlbInvDesc.G_DOMAIN, IotlbInvDesc.G_PAGE):
                raise ValueError(f"IOTLB invalidation granularity {granularity:#04b} is reserved")
            if page_selective:
                # first-stage entries: every entry of the DID, whatever the address
                self._drop(self.iotlb, lambda k, p: p.did == did and (
                    p.pgtt in fs or _overlaps(p.iova, p.size, lo, hi)))
            else:
                self._drop(self.iotlb, lambda k, p: p.did == did)
            self._drop(self.psc, lambda k, e: k[0] == did)
            return
        # p_iotlb_inv_dsc, type 6 (vtd §4.3 second table)
        if granularity == PIotlbInvDesc.G_PASID:
            self._drop(self.iotlb, lambda k, p: p.did == did and p.pasid == pasid)
            self._drop(self.psc, lambda k, e: k[0] == did and k[1] == pasid)
        elif page_selective:
            self._drop(self.iotlb, lambda k, p: p.did == did and p.pasid == pasid and p.pgtt in fs
                       and _overlaps(p.iova, p.size, lo, hi))
            if not ih:
                self._drop(self.psc, lambda k, e: k[0] == did and k[1] == pasid and _overlaps(
                    k[3] << LEVEL_SHIFT[e.level], 1 << LEVEL_SHIFT[e.level], lo, hi))
        else:
            raise ValueError(f"PASID-based IOTLB invalidation granularity {granularity:#04b} is reserved")


# ================================================================================================
# Interrupt events (vtd §1.12)
# ================================================================================================


class EventSource:
    """One interrupt event source of vtd §1.12: xxCTL (IM, IP), xxDATA, xxADDR, xxUADDR and the
    status bits of its group (``status``: field name -> register name).

    * ``status_set(bit)``: a status bit of the group is being set; sets it, and if no status bit of
      the group was set before, sets IP and, with IM=0, sends the MSI and clears IP.
    * ``ctl_written(old_ctl)``: after a write of xxCTL: IM going 1 -> 0 while IP=1 sends and clears IP.
    * ``status_written()``: after software cleared status bits: no status bit left while IP=1 clears
      IP without a message.
    The MSI is a 32-bit memory write of xxDATA to xxUADDR:xxADDR through ``mem``."""

    def __init__(self, iommu: Iommu, prefix: str, status: dict[str, str]):
        self.iommu = iommu
        self.ctl = f"{prefix}CTL"
        self.data = f"{prefix}DATA"
        self.addr = f"{prefix}ADDR"
        self.uaddr = f"{prefix}UADDR"
        self.status = dict(status)

    def pending(self) -> bool:
        return any(self.iommu.field(reg, bit) for bit, reg in self.status.items())

    def status_set(self, bit: str) -> None:
        reg = self.status.get(bit)
        if reg is None:
            raise ValueError(f"{bit!r} is not a status bit of the {self.ctl} event group "
                             f"{sorted(self.status)}")
        was_pending = self.pending()
        self.iommu.set_field(reg, bit, 1)
        if was_pending:
            return
        if self.iommu.field(self.ctl, "im"):
            self.iommu.set_field(self.ctl, "ip", 1)
        else:
            self._send()

    def ctl_written(self, old_ctl: int) -> None:
        im_was = self.iommu.registers[self.ctl].field("im").get(old_ctl)
        if im_was and not self.iommu.field(self.ctl, "im") and self.iommu.field(self.ctl, "ip"):
            self.iommu.set_field(self.ctl, "ip", 0)
            self._send()

    def status_written(self) -> None:
        if self.iommu.field(self.ctl, "ip") and not self.pending():
            self.iommu.set_field(self.ctl, "ip", 0)

    def message(self) -> tuple[int, bytes]:
        """(address, 4 data bytes) of the MSI as programmed now."""
        address = self.iommu.field(self.uaddr, "mua") << 32 | self.iommu.field(self.addr, "ma") << 2
        return address, self.iommu.reg(self.data).to_bytes(4, "little")

    def _send(self) -> None:
        address, data = self.message()
        self.iommu.mem.write(address, data)


# ================================================================================================
# The IOMMU
# ================================================================================================


@dataclass(frozen=True)
class IommuConfig:
    """Build-time parameters: the capability profile (VER/CAP/ECAP, HAW), the IOMMU's own requester
    ID (completer ID of its completions, requester ID of its messages), and the Max_Payload_Size and
    Read Completion Boundary used to split read completions (pcie §1.4)."""

    profile: CapabilityProfile = PROFILE
    iommu_rid: int = 0x0000
    max_payload: int = 256
    rcb: int = 64

    def __post_init__(self):
        if not 0 <= self.iommu_rid <= 0xFFFF:
            raise ValueError(f"iommu_rid {self.iommu_rid:#x} does not fit in 16 bits")
        if self.max_payload not in (128, 256, 512, 1024, 2048, 4096):
            raise ValueError(f"max_payload {self.max_payload} is not a Max_Payload_Size (128..4096)")
        if self.rcb not in (64, 128):
            raise ValueError(f"rcb {self.rcb} is not 64 or 128")


@dataclass(frozen=True)
class PasidLookup:
    """Result of ``Iommu.lookup_pasid_entry``: the entries used, the PASID (the request's or
    RID_PASID), the DID of the PASID entry and whether an FPD bit was set on the way."""

    context: ContextEntry
    pasid_entry: PasidEntry
    pasid: int
    did: int
    fpd: bool


class Iommu:
    """The golden model. See the module docstring; public attributes: ``mem``, ``cfg``, ``profile``,
    ``registers`` (vtd RegisterMap), ``regs`` (register name -> value), ``caches``, ``fault_event``,
    ``inv_event``, ``prq_event``, ``iq``, ``prq``, ``root_table`` ((RTA, TTM) latched by SRTP)."""

    _FAULT_STATUS = {"ppf": "FSTS", "pfo": "FSTS", "iqe": "FSTS", "ice": "FSTS", "ite": "FSTS"}

    def __init__(self, mem, cfg: IommuConfig | None = None):
        self.mem = mem
        self.cfg = IommuConfig() if cfg is None else cfg
        self.profile = self.cfg.profile
        self.registers: RegisterMap = REGISTERS if self.profile == PROFILE else build_registers(self.profile)
        self.caches = Caches()
        self.fault_event = EventSource(self, "FE", self._FAULT_STATUS)
        self.inv_event = EventSource(self, "IE", {"iwc": "ICS"})
        self.prq_event = EventSource(self, "PE", {"ppr": "PRS", "pro": "PRS"})
        self._hooks: dict[str, Callable[[int, int, int], None]] = {
            "GCMD": self._gcmd_written,
            "FSTS": self._fsts_written,
            "FECTL": lambda old, value, mask: self.fault_event.ctl_written(old),
            "IECTL": lambda old, value, mask: self.inv_event.ctl_written(old),
            "PECTL": lambda old, value, mask: self.prq_event.ctl_written(old),
            "ICS": lambda old, value, mask: self.inv_event.status_written(),
            "PRS": lambda old, value, mask: self.prq_event.status_written(),
            "IQT": lambda old, value, mask: self._run_iq(),
            "CCMD": lambda old, value, mask: self._register_invalidation("CCMD", "icc", "caig"),
            "IOTLB_REG": lambda old, value, mask: self._register_invalidation("IOTLB_REG", "ivt", "iaig"),
        }
        for r in self.registers.frcds():
            self._hooks[r.name] = self._frcd_written
        self.reset()

    # --- reset and storage ----------------------------------------------------------------------
    def reset(self) -> None:
        """Power-on state: register resets, nothing latched, caches empty, nothing to send."""
        self.regs: dict[str, int] = {r.name: r.reset for r in self.registers}
        self.root_table = (0, 0)
        self._fault_index = 0
        self.caches.invalidate_all()
        self._tx: list[bytes] = []
        self.iq = InvalidationQueue(self)
        self.prq = PageRequestQueue(self)

    def reg(self, name: str) -> int:
        return self.regs[self.registers[name].name]

    def set_reg(self, name: str, value: int) -> None:
        """Hardware-side write of a whole register (no access rules, no side effects)."""
        r = self.registers[name]
        if not 0 <= value < 1 << r.width:
            raise ValueError(f"{name}: {value:#x} does not fit in {r.width} bits")
        self.regs[name] = value & r.mask()

    def field(self, reg: str, name: str) -> int:
        return self.registers[reg].field(name).get(self.regs[reg])

    def set_field(self, reg: str, name: str, value: int) -> None:
        f = self.registers[reg].field(name)
        if not 0 <= value <= f.max:
            raise ValueError(f"{reg}.{name}: {value:#x} does not fit in {f.width} bit(s)")
        self.regs[reg] = (self.regs[reg] & ~f.mask) | (value << f.lo)

    # --- MMIO -------------------------------------------------------------------------------------
    def _check_mmio(self, offset: int, size: int) -> None:
        if size not in (4, 8):
            raise ValueError(f"register access size {size} is not 4 or 8")
        if offset % size or not 0 <= offset <= self.registers.PAGE_BYTES - size:
            raise ValueError(f"register access at {offset:#x} size {size} is not aligned inside the page")

    def reg_read(self, offset: int, size: int = 4) -> int:
        """Read 4 or 8 bytes; WO fields and unmapped bytes read 0 (no read side effects exist)."""
        self._check_mmio(offset, size)
        value = 0
        for i in range(size):
            hit = self.registers.find(offset + i)
            if hit is not None:
                r, pos = hit
                readable = self.regs[r.name] & ~r.mask(Access.WO)
                value |= ((readable >> (8 * pos)) & 0xFF) << (8 * i)
        return value

    def reg_write(self, offset: int, value: int, size: int = 4) -> None:
        """Write 4 or 8 bytes with the access rules of each field (RW stored, RW1C/RW1CS cleared by
        ones, RO/ROS ignored, WO not stored) and then each touched register's side effects. TLPs the
        side effects produce wait in ``take_tx()``."""
        self._check_mmio(offset, size)
        if not 0 <= value < 1 << (8 * size):
            raise ValueError(f"register write value {value:#x} does not fit in {size} bytes")
        touched: dict[str, list[int]] = {}  # name -> [value bits, byte mask] in register position
        for i in range(size):
            hit = self.registers.find(offset + i)
            if hit is None:
                continue
            r, pos = hit
            acc = touched.setdefault(r.name, [0, 0])
            acc[0] |= ((value >> (8 * i)) & 0xFF) << (8 * pos)
            acc[1] |= 0xFF << (8 * pos)
        for name, (bits, mask) in touched.items():
            r = self.registers[name]
            old = new = self.regs[name]
            for f in r.fields:
                m = f.mask & mask
                if not m:
                    continue
                if f.access == Access.RW:
                    new = (new & ~m) | (bits & m)
                elif f.access in (Access.RW1C, Access.RW1CS):
                    new &= ~(bits & m)
            self.regs[name] = new
            hook = self._hooks.get(name)
            if hook is not None:
                hook(old, bits, mask)

    def take_tx(self) -> list[bytes]:
        """TLPs produced since the last call (by register side effects or the queues)."""
        out, self._tx = self._tx, []
        return out

    def send_tlp(self, data: bytes) -> None:
        """Queue a TLP for the device side (returned by the current receive_tlp/process_iq call, or
        by take_tx())."""
        self._tx.append(bytes(data))

    def _collect(self, action: Callable[[], None]) -> list[bytes]:
        mark = len(self._tx)
        action()
        out = self._tx[mark:]
        del self._tx[mark:]
        return out

    # --- register side effects --------------------------------------------------------------------
    def _gcmd_written(self, old: int, bits: int, mask: int) -> None:
        """vtd §1.5: GCMD is write-only; each command acts on GSTS (order: see module docstring)."""
        g = self.registers["GCMD"]
        cmd = {f.name: f.get(bits) for f in g.fields if f.mask & mask}
        if "te" in cmd and cmd["te"] != self.field("GSTS", "tes"):
            self.set_field("GSTS", "tes", cmd["te"])
            if not cmd["te"]:
                self.caches.invalidate_all()  # SM: TE 1->0 invalidates every DMA-remapping cache
                if not self.field("GSTS", "ires"):
                    self._fault_index = 0  # vtd §6.3: the index resets when TES = IRES = 0
        if cmd.get("srtp"):
            self.set_field("GSTS", "rtps", 0)
            rta = self.field("RTADDR", "rta") << 12 & ((1 << self.profile.haw) - 1)  # bits >= HAW ignored
            self.root_table = (rta, self.field("RTADDR", "ttm"))
            if self.profile.esrtps:
                self.caches.invalidate_all()
            self.set_field("GSTS", "rtps", 1)
        if "qie" in cmd and cmd["qie"] != self.field("GSTS", "qies"):
            self.set_field("GSTS", "qies", cmd["qie"])
            if cmd["qie"]:
                self._run_iq()
            else:
                self.set_reg("IQH", 0)  # vtd §1.10: disabling QI resets IQH

    def _fsts_written(self, old: int, bits: int, mask: int) -> None:
        self.fault_event.status_written()
        f = self.registers["FSTS"]
        cleared = old & ~self.regs["FSTS"]
        if cleared & (f.field("iqe").mask | f.field("ite").mask):
            self._run_iq()

    def _frcd_written(self, old: int, bits: int, mask: int) -> None:
        self._update_ppf()
        self.fault_event.status_written()

    def _update_ppf(self) -> None:
        """FSTS.PPF is the OR of every FRCD.F (vtd §1.8)."""
        self.set_field("FSTS", "ppf", int(any(self.field(r.name, "f") for r in self.registers.frcds())))

    def _register_invalidation(self, reg: str, go: str, actual: str) -> None:
        """Register-based invalidation is always an error with VER major >= 6 (vtd §1.2, §1.7): the
        command completes at once and reports actual granularity 00."""
        if self.field(reg, go):
            self.set_field(reg, go, 0)
            self.set_field(reg, actual, 0)

    def _run_iq(self) -> None:
        self.iq.process()

    def process_iq(self) -> list[bytes]:
        """Run the invalidation queue as far as it goes; returns the TLPs it sent."""
        return self._collect(self._run_iq)

    def timeout_dev_tlb(self) -> list[bytes]:
        """The environment reports that an outstanding device-TLB invalidation timed out."""
        return self._collect(self.iq.timeout)

    # --- fault recording (vtd §6.3) -----------------------------------------------------------------
    def record_fault(self, reason: FaultReason, rid: int, pasid: int | None, pmr: int, addr: int, kind: str,
                     at: int, er: int = 0) -> bool:
        """Primary fault logging: returns True when a record was written. The caller has already
        applied FPD (see ``Translation.logged`` / ``Fault.suppressed``)."""
        if kind not in _FRCD_TYPE:
            raise ValueError(f"fault kind {kind!r} is not one of {tuple(_FRCD_TYPE)}")
        if self.field("FSTS", "pfo"):
            return False
        n = self._fault_index
        name = f"FRCD{n}"
        if self.field(name, "f"):
            self.fault_event.status_set("pfo")
            return False
        t = _FRCD_TYPE[kind]
        self.set_reg(name, self.registers[name].pack(
            fi=(addr >> 12) & ((1 << 52) - 1), sid=rid, t2=t.t2, priv=int(bool(pmr)), exe=int(bool(er)),
            pp=int(pasid is not None), fr=int(reason), pv=pasid or 0, at=int(at), t1=t.t1))
        if not self.field("FSTS", "ppf"):
            self.set_field("FSTS", "fri", n)
            self.fault_event.status_set("ppf")
        self.set_field(name, "f", 1)  # F last
        self._fault_index = (n + 1) % (self.profile.nfr + 1)
        return True

    # --- the walk ---------------------------------------------------------------------------------
    def _run(self, w: _Walk, stage: str) -> None:
        i = _STAGE_INDEX[stage]
        if i < w.stage_index and stage != "fs_entry":  # only the per-level loop goes back
            raise AssertionError(f"walk ran stage {stage} after {STAGES[w.stage_index]}")
        w.stage_index = i
        for c in _ROWS[stage]:
            if c.test(w):
                raise Fault(c.reason, w.fpd, c.name)

    def _evaluate(self, w: _Walk, until: str | None = None) -> None:
        """Run the stages this request goes through (FAULT_PRIORITY order); raises Fault. With
        ``until`` ('context_use' or 'pasid_use') stop after that stage."""
        req = w.req
        self._run(w, "request")
        if w.context is None:
            self._run(w, "root")
            self._run(w, "context")
            if w.commit:
                self.caches.add_context(req.rid, w.context)
        self._run(w, "context_use")
        if until == "context_use":
            return
        if w.translated:
            w.page = Page.identity(req.addr)
            self._run(w, "output")
            return
        if w.pasid_entry is None:
            self._run(w, "pasid_dir")
            self._run(w, "pasid_entry")
            if w.commit:
                self.caches.add_pasid(req.rid, w.pasid, _PasidRecord(w.pasid_entry, w.dir_entry.fpd))
        self._run(w, "pasid_use")
        if until == "pasid_use":
            return
        pe = w.pasid_entry
        tags = dict(did=pe.did, pasid=w.pasid, pgtt=pe.pgtt, snoop=pe.pgsnp)
        if pe.pgtt == Pgtt.PASS_THROUGH:
            w.page = Page.identity(req.addr, **tags)
            self._run(w, "output")
            return
        if w.hit is not None:
            w.page = w.hit
            for stage in ("output", "access_user", "access_write"):
                self._run(w, stage)
            return
        self._walk_first_stage(w, tags)

    def _walk_first_stage(self, w: _Walk, tags: dict) -> None:
        """vtd §3.1: from FSPTPTR (or a cached paging-structure entry) down to the leaf."""
        self._run(w, "fs_input")
        pe = w.pasid_entry
        w.top_level = pe.fs_levels()
        if w.start is None:
            level, table, rw, us = w.top_level, pe.fsptptr_address, 1, 1
        else:
            level, table, rw, us = w.start.level - 1, w.start.table, w.start.rw, w.start.us
        addr = w.req.addr
        while True:
            w.level, w.table, w.above_rw, w.above_us = level, table, rw, us
            try:
                self._run(w, "fs_entry")
                e = w.entry
                if not e.is_leaf(level):
                    self._run(w, "fs_table_update")
                else:
                    size = LEAF_SIZE[level]
                    w.page = Page(iova=addr & ~(size - 1), size=size, pa=e.page_base(level),
                                  rw=rw & e.rw, us=us & e.us, dirty=e.d, **tags)
                    self._run(w, "output")
                    self._run(w, "access_user")
                    self._run(w, "fs_leaf_update")
            except _Retry:
                w.page = None  # the page seen before the race is void: the re-read decides again
                continue  # the CPU changed the entry: read it again
            e = w.entry
            if e.is_leaf(level):
                w.page = dataclasses.replace(w.page, dirty=e.d)
                break
            rw, us = rw & e.rw, us & e.us
            table = e.target()
            if w.commit:
                self.caches.add_psc(pe.did, w.pasid, addr, _PscEntry(level, table, rw, us))
            level -= 1
        self._run(w, "access_write")

    def _translation(self, w: _Walk, fault: Fault | None, source: str) -> Translation:
        page = w.page
        r = wr = False
        if page is not None:
            r = w.read_allowed(page.us)
            wr = w.write_allowed(page.rw, page.us) and (w.kind != "translation" or w.wants_write)
        return Translation(request=w.req, fault=None if fault is None else fault.reason,
                           fpd=w.fpd, page=page, r=r, w=wr, source=source,
                           check="" if fault is None else fault.check, ad_updates=tuple(w.updates))

    def _walk(self, req: Request, commit: bool, source: str, **given) -> tuple[_Walk, Translation]:
        w = _Walk(self, req, commit, **given)
        try:
            self._evaluate(w)
            fault = None
        except Fault as f:
            fault = f
        return w, self._translation(w, fault, source)

    def lookup_pasid_entry(self, rid: int, pasid: int | None, kind: str) -> PasidLookup:
        """Walk root, context, PASID directory and PASID entry for a request of ``kind`` with every
        check of FAULT_PRIORITY up to the PASID entry (the real walk: caches are filled). Raises
        Fault(reason, fpd=...)."""
        w = _Walk(self, Request(kind, rid, 0, pasid), commit=True)
        self._evaluate(w, until="pasid_use")
        return PasidLookup(w.context, w.pasid_entry, w.pasid, w.pasid_entry.did, w.fpd)

    def translate(self, req: Request) -> Translation:
        """The decision for one request: the fresh walk (A/D updates written, caches filled) plus the
        legal alternatives. Records no fault and moves no data (``respond`` does)."""
        if req.kind == "page_request":
            raise ValueError("page requests are not translated; they go to the page request queue")
        if not self.field("GSTS", "tes"):
            # vtd §2.6 step 1: untranslated requests pass through, AT != 00b is unsupported
            return Translation(req, page=Page.identity(req.addr), r=True, w=True, source="disabled",
                               unsupported=req.at != FrcdAt.UNTRANSLATED)
        if not req.has_pasid and req.at != FrcdAt.TRANSLATED and (
                INTERRUPT_BASE <= req.addr < INTERRUPT_BASE + INTERRUPT_SIZE):
            return self._interrupt_request(req)
        w, fresh = self._walk(req, commit=True, source="walk")
        if fresh.page is not None and fresh.page.did is not None and (
                fresh.fault is None or fresh.response == Response.SEFF):
            self.caches.add_iotlb(fresh.page)  # never a faulting walk (vtd §3.7); Seff is a success
        alternatives = self._alternatives(req, w, fresh)
        return dataclasses.replace(fresh, legal_alternatives=tuple(alternatives))

    @staticmethod
    def _interrupt_request(req: Request) -> Translation:
        """Requests without PASID to 0xFEEx_xxxx are interrupt requests (module docstring)."""
        page = Page.identity(req.addr)
        if req.kind == "write":
            return Translation(req, page=page, w=True, source="interrupt")
        if req.kind == "translation":
            return Translation(req, page=page, w=not req.nw, untranslated_only=True, source="interrupt")
        return Translation(req, page=page, unsupported=True, source="interrupt")

    def _alternatives(self, req: Request, walk: _Walk, fresh: Translation) -> list[Translation]:
        """Every other outcome reachable through cached entries (module docstring). A cached entry
        equal to what the fresh ``walk`` read from memory, combined with memory for the rest, would
        only repeat the fresh walk and is skipped."""
        found: dict[tuple, Translation] = {fresh.outcome(): fresh}
        fresh_rec = None if walk.dir_entry is None or walk.pasid_entry is None else _PasidRecord(
            walk.pasid_entry, walk.dir_entry.fpd)

        def add(t: Translation) -> None:
            found.setdefault(t.outcome(), t)

        for ctx in [None, *(c for c in self.caches.contexts(req.rid) if c != walk.context)]:
            if req.at == FrcdAt.TRANSLATED:
                if ctx is not None:
                    add(self._walk(req, False, "stale", context=ctx)[1])
                continue
            probe = _Walk(self, req, False, context=ctx)
            try:
                self._evaluate(probe, until="context_use")
            except Fault as f:
                if ctx is not None:
                    add(self._translation(probe, f, "stale"))
                continue
            records = self.caches.pasid_records(req.rid, probe.pasid)
            for rec in [None, *(r for r in records if ctx is not None or r != fresh_rec)]:
                given = {"context": ctx, "pasid_rec": rec}
                mid = _Walk(self, req, False, **given)
                try:
                    self._evaluate(mid, until="pasid_use")
                except Fault as f:
                    if ctx is not None or rec is not None:
                        add(self._translation(mid, f, "stale"))
                    continue
                if ctx is not None or rec is not None:
                    add(self._walk(req, False, "stale", **given)[1])
                pe, pasid = mid.pasid_entry, mid.pasid
                if pe.pgtt == Pgtt.FIRST_STAGE and pe.fspm <= 0b01:
                    for start in self.caches.psc_entries(pe.did, pasid, req.addr):
                        add(self._walk(req, False, "stale", start=start, **given)[1])
                for page in self.caches.iotlb_pages(pe.did, pasid, req.addr):
                    if mid.wants_write and not page.dirty and mid.write_allowed(page.rw, page.us):
                        continue  # D must be set: a correct implementation walks again (vtd §3.7)
                    add(self._walk(req, False, "iotlb", hit=page, **given)[1])
        del found[fresh.outcome()]
        return list(found.values())

    # --- TLPs -------------------------------------------------------------------------------------
    def receive_tlp(self, data: bytes) -> list[bytes]:
        """Handle one TLP from a device; returns the TLPs to send back (module docstring for the
        handling of malformed and unsupported input)."""
        return self._collect(lambda: self._receive(bytes(data)))

    def _receive(self, data: bytes) -> None:
        try:
            pkt = tlp.decode(data, strict=False)
        except tlp.UnsupportedTypeError:
            self._unsupported(data)
            return
        except tlp.TlpError:
            return  # Malformed TLP: dropped, no completion
        if isinstance(pkt, tlp.Completion):
            return  # the IOMMU never sent a request: unexpected completion
        if pkt.other_prefixes or (pkt.pasid is not None and not self.profile.pasid):
            if isinstance(pkt, tlp.MemRead):
                self._complete_error(pkt, tlp.CPL_UR)
            return
        if isinstance(pkt, tlp.PageRequest):
            self.prq.receive(pkt)
            return
        if isinstance(pkt, tlp.AtsInvalidateCompletion):
            self.iq.receive_completion(pkt)
            return
        if isinstance(pkt, tlp.MemRead):
            if pkt.locked:
                self._complete_error(pkt, tlp.CPL_UR)
                return
            kind = "translation" if pkt.at == tlp.AT_TRANSLATION_REQUEST else "read"
            if kind == "translation" and (pkt.length < 2 or pkt.length % 2):
                self._complete_error(pkt, tlp.CPL_UR)  # a translation request asks for whole entries
                return
        elif isinstance(pkt, tlp.MemWrite):
            if pkt.at == tlp.AT_TRANSLATION_REQUEST or pkt.ep:
                return  # AT=01b is only for reads; poisoned data is not written
            kind = "write"
        else:
            return  # messages the IOMMU does not consume (ATS invalidate requests, PRG responses)
        req = Request(kind, pkt.requester_id, pkt.address, pkt.pasid, pkt.pmr, pkt.er,
                      FrcdAt(pkt.at), getattr(pkt, "nw", 0))
        self.respond(pkt, self.translate(req))

    def _unsupported(self, data: bytes) -> None:
        """A well-formed TLP type the IOMMU does not handle: UR when non-posted (pcie §2.1)."""
        pos = 0
        while pos + 4 <= len(data) and data[pos] >> 5 == tlp.FMT_PREFIX:
            pos += 4
        if len(data) < pos + 8:
            return
        dw0 = tlp.Dw0.from_bytes(data[pos:pos + 4])
        size = (16 if dw0.fmt & 1 else 12) + ((dw0.length or 1024) * 4 if dw0.fmt & 0b010 else 0) + 4 * dw0.td
        if len(data) - pos != size:
            return  # more or fewer bytes than Fmt/Length (and TD) say: malformed, dropped (pcie §2.1)
        if dw0.type == 0b11011 and dw0.fmt & 0b010:
            return  # DMWr is posted; IO, Cfg and AtomicOp requests are non-posted
        rid = int.from_bytes(data[pos + 4:pos + 6], "big")
        tag = dw0.t9 << 9 | dw0.t8 << 8 | data[pos + 6]
        cpl = tlp.Completion(requester_id=rid, tag=tag, tc=dw0.tc, attr=dw0.ido << 2 | dw0.attr_lo,
                             completer_id=self.cfg.iommu_rid, status=tlp.CPL_UR, byte_count=4)
        self.send_tlp(cpl.encode())

    def _complete_error(self, pkt: tlp.MemRead, status: int) -> None:
        self.send_tlp(tlp.error_completion(pkt, self.cfg.iommu_rid, status).encode())

    def respond(self, pkt: tlp.MemRead | tlp.MemWrite, t: Translation) -> None:
        """Act on translation ``t`` of request TLP ``pkt``: record the fault if due, move the data,
        send the completions (through send_tlp)."""
        req = t.request
        if t.logged:
            self.record_fault(t.fault, req.rid, req.pasid, req.pmr, req.addr, req.kind, req.at, req.er)
        if req.kind == "translation":
            self._respond_translation(pkt, t)
        elif isinstance(pkt, tlp.MemRead):
            if not t.ok:
                self._complete_error(pkt, tlp.CPL_UR)
                return
            try:
                data = self.mem.read(t.address, 4 * pkt.length)
            except MemoryAccessError:
                self._complete_error(pkt, tlp.CPL_CA)
                return
            for c in tlp.read_completions(pkt, data, self.cfg.iommu_rid, self.cfg.max_payload, self.cfg.rcb):
                self.send_tlp(c.encode())
        elif t.ok:
            self._dma_write(t.address, pkt)

    def _dma_write(self, address: int, pkt: tlp.MemWrite) -> None:
        """Write the enabled bytes only, one memory write per contiguous run (pcie §1.3)."""
        n = pkt.length
        enables = []
        for i in range(n):
            be = pkt.first_be if i == 0 else (pkt.last_be if i == n - 1 else 0xF)
            enables += [(be >> b) & 1 for b in range(4)]
        i = 0
        try:
            while i < len(enables):
                if not enables[i]:
                    i += 1
                    continue
                j = i
                while j < len(enables) and enables[j]:
                    j += 1
                self.mem.write(address + i, pkt.data[i:j])
                i = j
        except MemoryAccessError:
            return  # the memory system refused the write: posted, nothing to answer

    def _respond_translation(self, pkt: tlp.MemRead, t: Translation) -> None:
        """ATS translation completion (vtd §3.6, pcie §3.2): one entry for the leaf page."""
        req = t.request
        if t.unsupported:
            self._complete_error(pkt, tlp.CPL_UR)
            return
        priv = int(req.has_pasid and bool(req.pmr))
        response = t.response
        if response in (Response.UR, Response.CA):
            self._complete_error(pkt, tlp.CPL_UR if response == Response.UR else tlp.CPL_CA)
            return
        if response == Response.S0 or t.page is None:
            entry = tlp.TranslationEntry(addr=0, priv=priv)  # R=W=U=0, S=0: a 4 KiB range
        else:
            p = t.page
            entry = tlp.TranslationEntry.from_range(p.pa, p.size, r=int(t.r), w=int(t.w), priv=priv,
                                                    u=int(t.untranslated_only), n=p.snoop)
        self.send_tlp(tlp.translation_completion(pkt, self.cfg.iommu_rid, [entry]).encode())
