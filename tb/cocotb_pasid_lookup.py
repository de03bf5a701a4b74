"""cocotb tests of rtl/pasid_lookup.sv (the request-to-PASID-entry lookup, vtd.md §2.6 steps 1-9),
scored against the golden IOMMU (models/iommu.py).

The world is a golden ``Env`` (tests/models/iommu_env.py): one ``FaultyMemory`` that the model walks and
the DUT reads through ``AxiMemory`` (tb/axi_mem.py), root / context / PASID directory / PASID entries
programmed with the ``models.vtd`` classes, and read errors injected into both (``FaultyMemory.fail_reads``
and ``AxiMemory.inject_error`` on the same byte range). The capability profile comes from the pytest
wrapper (``PL_PROFILE``, attribute overrides of ``models.vtd.PROFILE``) and is passed to the RTL as its
parameters (``PROFILE_PARAMS``).

Scoreboard. Every lookup is evaluated by the model when the DUT accepts it: the fresh walk (the
FAULT_PRIORITY rows of the lookup stages, run on memory as it is now; it fills the model's caches) and
every outcome that entries the model's ``Caches`` still hold make legal (each cached context version, or
memory, combined with each cached PASID-entry record for the PASID that context gives, or memory; the
same rule ``Iommu.translate`` uses for its ``legal_alternatives``, plus PASID entries read through a
cached context entry, which the model does not record; see ``golden``). The DUT's answer must be one
of them: fault reason + FPD, or the fields the first stage needs. Invalidations are applied to the model
when the DUT takes them. Memory is only changed while the DUT is idle, so the DUT's reads see what the
model saw. The DUT takes an invalidation only when it holds no lookup (the in-flight rule of
pasid_lookup.sv), which the driver asserts: a lookup and an invalidation are never taken in one cycle.

Tests: ``pasid_lookup_random`` (a random world edited between bursts of random lookups: rewrites without
invalidation, not-present entries with random contents, single-bit corruptions, invalid programming,
read errors, TTM / TE changes; random cc_inv / pc_inv during traffic), ``pasid_lookup_faults`` (one
directed case per lookup row of FAULT_PRIORITY, with and without FPD bits; the golden walk must fire that
row, and every row must be reached unless the profile makes it unreachable), ``pasid_lookup_stale``
(entries changed without invalidation may come back old or new; after invalidations vtd §4.6 accepts,
in random granularities, only new; the caches must really serve stale entries, a hit must cost no
memory read and take 1 cycle, back-to-back hits one per cycle) and ``pasid_lookup_bitflip`` (every
bit of every structure flipped once). Every cycle busy_o must say whether a lookup is outstanding.
Back-pressure is random on the request and response handshakes and on the AXI channels, invalidations
arrive at random points of the traffic; read latency is random per burst and bursts of different IDs
complete out of order.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections import Counter, deque
from typing import Callable

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus

from models.host import Memory
from models.iommu import FAULT_PRIORITY, Fault, Request, _PasidRecord, _Walk
from models.vtd import (PROFILE, CcInvDesc, ContextEntry, FaultReason, FrcdAt, PasidDirEntry, PasidEntry,
                        PcInvDesc, Pgtt, RootEntry)
from tb.axi_mem import AxiMemory
from tb.runner import RTL_DIR
from tb.stats import Stats
from tb.svstruct import SvPackage
from tests.models.iommu_env import Env

PKG = SvPackage(RTL_DIR / "pasid_lookup_pkg.sv")

#: RTL parameter -> models.vtd.CapabilityProfile attribute: the profile half of pasid_lookup's parameters
PROFILE_PARAMS = {
    "HAW": "haw", "VER_MAJOR": "ver_max", "PSS": "pss", "SMTS": "smts", "ADMS": "adms", "RPS": "rps",
    "RPRIVS": "rprivs", "SRS": "srs", "PTRS": "ptrs", "HPTS": "hpts", "FSTS": "fsts", "PT": "pt",
    "FS5LP": "fs5lp", "SMPWCS": "smpwcs", "SC": "sc", "MTS": "mts", "EAFS": "eafs", "SSADS": "ssads",
    "C": "c",
}
#: the FAULT_PRIORITY stages the lookup implements, and their rows
LOOKUP_STAGES = ("request", "root", "context", "context_use", "pasid_dir", "pasid_entry", "pasid_use")
LOOKUP_ROWS = tuple(c.name for c in FAULT_PRIORITY if c.stage in LOOKUP_STAGES)
STAGE_OF = {c.name: c.stage for c in FAULT_PRIORITY}
#: pl_kind_e -> (models.iommu.Request kind, AT); a translated request is a read, write or atomic
KINDS = {
    "PL_READ": ("read", FrcdAt.UNTRANSLATED),
    "PL_WRITE": ("write", FrcdAt.UNTRANSLATED),
    "PL_ATOMIC": ("atomic", FrcdAt.UNTRANSLATED),
    "PL_TRANSLATION": ("translation", FrcdAt.TRANSLATION_REQUEST),
    "PL_TRANSLATED": (None, FrcdAt.TRANSLATED),
    "PL_PAGE_REQ": ("page_request", FrcdAt.UNTRANSLATED),
}
REASON_VALUE = {name: value for value, name in PKG.enums["pl_fault_e"][1].items()}
TAG_W = 8
WATCHDOG = 3000  # cycles without any handshake before the bench calls it a hang
HIT_LATENCY = 1  # rtl/pasid_lookup.sv header: both caches hit -> answered 1 cycle after acceptance
DIDS = (1, 2, 3, 0x1234)  # few domains, so domain-selective invalidations hit several entries


def profile_from_env():
    overrides = json.loads(os.environ.get("PL_PROFILE") or "{}")
    p = dataclasses.replace(PROFILE, **overrides)
    p.check()
    return p


def rtl_parameters(overrides: dict) -> dict:
    """Every profile parameter of pasid_lookup for the profile PROFILE + ``overrides``."""
    p = dataclasses.replace(PROFILE, **overrides)
    return {param: int(getattr(p, attr)) for param, attr in PROFILE_PARAMS.items()}


pack = PKG.pack


def _count(default: int) -> int:
    return int(os.environ.get("COUNT") or default)


# ================================================================================================
# Lookups and the golden verdict
# ================================================================================================


@dataclasses.dataclass
class Lookup:
    """One lookup: ``req`` is what the golden model sees, ``kind``/``pmr``/``er`` what the DUT is driven
    with (PMR and ER without PASID are driven at random: the DUT must ignore them)."""

    req: Request
    kind: str
    pmr: int
    er: int
    note: str = ""

    @classmethod
    def make(cls, kind: str, rid: int, pasid: int | None, pmr: int = 0, er: int = 0, note: str = "",
             rng: random.Random | None = None) -> Lookup:
        mkind, at = KINDS[kind]
        if mkind is None:
            mkind = rng.choice(("read", "write", "atomic")) if rng else "read"
        with_pasid = pasid is not None
        req = Request(mkind, rid, 0, pasid, pmr if with_pasid else 0, er if with_pasid else 0, at)
        return cls(req, kind, pmr, er, note)

    def fields(self) -> dict:
        r = self.req
        return dict(rid=r.rid, pasid_valid=int(r.pasid is not None), pasid=r.pasid or 0, pmr=self.pmr,
                    er=self.er, kind=self.kind)

    def __str__(self):
        r = self.req
        pasid = "none" if r.pasid is None else f"{r.pasid:#x}"
        return (f"{self.kind} rid={r.rid:#06x} pasid={pasid} pmr={self.pmr} er={self.er}"
                + (f" ({self.note})" if self.note else ""))


@dataclasses.dataclass
class Golden:
    fresh: tuple       # outcome of the walk on memory as it is now
    check: str         # the FAULT_PRIORITY row the fresh walk fired ('' = none)
    legal: set         # fresh and every outcome the model's caches allow


def _ok_outcome(w: _Walk, profile) -> tuple:
    c = w.context
    ctx = (c.dte, c.paside, c.pre, c.eptr, c.pdts, c.pasiddirptr, c.effective_rid_pasid(profile),
           c.effective_rid_priv(profile))
    pe = None
    if w.pasid_entry is not None:
        e = w.pasid_entry
        pe = (e.did, e.pgtt, e.fspm, e.fsptptr, e.sre, e.wpe, e.eafe, e.pwsnp, e.pgsnp)
    return ("ok", bool(w.fpd), w.pasid, int(w.supervisor), ctx, pe)


def _evaluate(iommu, req: Request, commit: bool, **given) -> tuple[tuple, str, _Walk]:
    """The lookup stages of FAULT_PRIORITY for ``req`` (``given``: cached context / PASID record)."""
    w = _Walk(iommu, req, commit, **given)
    try:
        iommu._evaluate(w, until="pasid_use")
    except Fault as f:
        return ("fault", int(f.reason), bool(f.fpd)), f.check, w
    return _ok_outcome(w, iommu.profile), "", w


def golden(iommu, req: Request) -> Golden:
    """The verdict for a lookup taken now. ``Iommu.lookup_pasid_entry`` cannot carry PMR, ER or AT and
    returns no alternatives, so this runs the same walk (``_Walk`` / ``Iommu._evaluate``, stopping after
    the pasid_use stage; it must agree with ``lookup_pasid_entry`` wherever that can express the
    request) and enumerates the cached versions the way ``Iommu._alternatives`` does.

    One addition to the model's rules: a PASID entry read from memory through a *cached* context entry
    passes its checks, so a correct implementation may cache it (it found the PASID table through
    the context it holds). The model's ``Caches`` only records what the fresh walk read, so such a
    record is added here; it stays legal until a PASID-cache invalidation covers it, as in hardware."""
    if not iommu.field("GSTS", "tes"):
        return Golden(("disabled",), "", {("disabled",)})
    fresh, check, _ = _evaluate(iommu, req, commit=True)
    if not (req.pmr or req.er or req.at == FrcdAt.TRANSLATED):  # what the public entry point can express
        try:
            found = iommu.lookup_pasid_entry(req.rid, req.pasid, req.kind)
            public = ("ok", found.fpd, found.pasid, found.did)
        except Fault as f:
            public = ("fault", int(f.reason), bool(f.fpd))
        mine = fresh[:3] + (fresh[5][0],) if fresh[0] == "ok" else fresh
        if mine != public:
            raise AssertionError(f"testbench: the walk here says {mine} for {req}, "
                                 f"Iommu.lookup_pasid_entry says {public}")
    legal = {fresh}
    for ctx in [None, *iommu.caches.contexts(req.rid)]:
        probe = _Walk(iommu, req, False, context=ctx)
        try:
            iommu._evaluate(probe, until="context_use")
        except Fault as f:
            legal.add(("fault", int(f.reason), bool(f.fpd)))
            continue
        records = [] if req.at == FrcdAt.TRANSLATED else iommu.caches.pasid_records(req.rid, probe.pasid)
        for rec in [None, *records]:
            outcome, row, w = _evaluate(iommu, req, False, context=ctx, pasid_rec=rec)
            legal.add(outcome)
            if ctx is not None and rec is None and (row == "" or STAGE_OF[row] == "pasid_use") \
                    and w.pasid_entry is not None:
                iommu.caches.add_pasid(req.rid, w.pasid, _PasidRecord(w.pasid_entry, w.dir_entry.fpd))
    return Golden(fresh, check, legal)


def rtl_outcome(rsp: dict) -> tuple:
    """The DUT's answer in the golden outcome's shape."""
    if rsp["disabled"]:
        return ("disabled",)
    reason = REASON_VALUE.get(rsp["reason"], rsp["reason"])
    if reason:
        return ("fault", reason, bool(rsp["fpd"]))
    c = PKG.unpack("pl_ctx_t", rsp["ctx"])
    ctx = (c["dte"], c["paside"], c["pre"], c["eptr"], c["pdts"], c["pasiddirptr"], c["rid_pasid"],
           c["rid_priv"])
    pe = None
    if rsp["pe_valid"]:
        e = PKG.unpack("pl_pe_t", rsp["pe"])
        pe = tuple(e[f] for f in ("did", "pgtt", "fspm", "fsptptr", "sre", "wpe", "eafe", "pwsnp", "pgsnp"))
    return ("ok", bool(rsp["fpd"]), rsp["pasid"], rsp["priv"], ctx, pe)


def describe(outcome: tuple) -> str:
    if outcome[0] == "fault":
        name = FaultReason(outcome[1]).condition if outcome[1] in set(FaultReason) else "?"
        return f"fault {name} ({outcome[1]:#04x}) fpd={int(outcome[2])}"
    if outcome[0] == "ok":
        _, fpd, pasid, priv, ctx, pe = outcome
        return f"ok fpd={int(fpd)} pasid={pasid:#x} priv={priv} ctx={ctx} pe={pe}"
    return outcome[0]


# ================================================================================================
# The world: devices with context, PASID directory and PASID entries
# ================================================================================================


@dataclasses.dataclass
class Device:
    rid: int
    pasids: list          # PASIDs with a PASID entry (the effective RID_PASID among them)
    rid_pasid: int        # the PASID requests without PASID use (0 when ECAP.RPS=0)
    valid: dict = dataclasses.field(default_factory=dict)  # address -> bytes of the valid programming

    @property
    def bus(self) -> int:
        return self.rid >> 8


def random_pe_fields(rng: random.Random, p, **over) -> dict:
    """A PASID entry for profile ``p``: valid (first stage, or pass-through with ECAP.PT) unless
    ``over`` says otherwise. A pointer the PGTT does not use may hold any 52 bits (not reserved);
    with an ``over`` PGTT of 010/011 SSPTPTR may reach above HAW (reserved)."""
    pgtt = over.get("pgtt", Pgtt.PASS_THROUGH if p.pt and rng.random() < 0.3 else Pgtt.FIRST_STAGE)

    def pointer(used: bool) -> int:
        return rng.getrandbits(p.haw - 12 if used and rng.random() < 0.7 else 52) if rng.random() < 0.8 else 0

    f = dict(p=1, fpd=int(rng.random() < 0.15), did=rng.choice(DIDS), wpe=rng.getrandbits(1), pgtt=pgtt,
             fsptptr=rng.getrandbits(p.haw - 12) if pgtt == Pgtt.FIRST_STAGE else pointer(False),
             ssptptr=pointer(pgtt in (Pgtt.SECOND_STAGE, Pgtt.NESTED)),
             fspm=int(bool(p.fs5lp) and rng.random() < 0.3),
             sre=int(bool(p.srs) and rng.random() < 0.6), pwsnp=int(bool(p.smpwcs) and rng.random() < 0.8),
             pgsnp=int(bool(p.sc) and rng.random() < 0.5), eafe=int(bool(p.eafs) and rng.random() < 0.5))
    if p.mts:
        f.update(cd=rng.getrandbits(1), emte=rng.getrandbits(1), pat=rng.getrandbits(32) & 0x77777777)
    if p.ssads:
        f.update(ssade=rng.getrandbits(1))
    if p.hpts:
        f.update(hptdid=rng.getrandbits(16), hptptr=rng.getrandbits(p.haw - 12), hptsz=rng.getrandbits(2))
    f.update(over)
    return f


def random_ctx_fields(rng: random.Random, p, **over) -> dict:
    """A valid context entry for profile ``p`` with PASIDs, ATS and PRI enabled."""
    pdts = over.get("pdts", rng.choice((7, 7, rng.randrange(8))))
    f = dict(p=1, fpd=int(rng.random() < 0.15), dte=1, paside=1, pre=1, pdts=pdts,
             rid_pasid=rng.choice((0, rng.randrange(1, 1 << (pdts + 13)))),  # within the directory
             rid_priv=rng.getrandbits(1), eptr=int(bool(p.ptrs) and rng.random() < 0.5),
             hpte=int(bool(p.hpts) and rng.random() < 0.3))
    f.update(over)
    return f


class World:
    """The devices the DUT and the model look up, programmed in the golden ``Env``."""

    def __init__(self, env: Env, rng: random.Random):
        self.env, self.rng, self.p = env, rng, env.iommu.profile
        self.devices: list[Device] = []
        self.used_buses: set[int] = set()
        self.root_valid: dict[int, bytes] = {}  # bus -> its root entry as first programmed

    def new_rid(self) -> int:
        """A requester ID on a bus no device uses yet (root-entry changes then stay local)."""
        bus = self.rng.choice([b for b in range(256) if b not in self.used_buses])
        self.used_buses.add(bus)
        return bus << 8 | self.rng.randrange(256)

    def program(self, rid: int, npasids: int = 3, ctx: dict | None = None, pe: dict | None = None,
                fpd: frozenset = frozenset({"random"})) -> Device:
        """(Re)program device ``rid``: a valid context entry, ``npasids`` random PASIDs plus the
        effective RID_PASID, each with a present directory entry and a valid PASID entry. ``fpd``: the
        structures whose FPD is set ({'ctx', 'dir', 'pe'}), or {'random'}."""
        env, rng, p = self.env, self.rng, self.p
        rnd = "random" in fpd
        cf = random_ctx_fields(rng, p, **(ctx or {}))
        if not rnd:
            cf["fpd"] = int("ctx" in fpd)
        env.set_context(rid, **cf)
        root = env.root_entry_address(rid >> 8)
        if rid >> 8 in self.root_valid:
            env.mem.write(root, self.root_valid[rid >> 8])
        self.root_valid[rid >> 8] = self.peek(root, 16)
        entry = ContextEntry(**cf)
        limit = entry.max_pasid()
        if p.pss < 19:
            limit = min(limit, (1 << (p.pss + 1)) - 1)
        rid_pasid = entry.effective_rid_pasid(p)
        pasids = {rid_pasid}  # requests without PASID need it even where a PASID could not name it
        while len(pasids) < npasids + 1:
            pasids.add(rng.choice((rng.randrange(64), rng.randrange(limit + 1))))
        dev = Device(rid, sorted(pasids), rid_pasid)
        for pasid in dev.pasids:
            pf = random_pe_fields(rng, p, **(pe or {}))
            if not rnd:
                pf["fpd"] = int("pe" in fpd)
            env.set_pasid_entry(rid, pasid, **pf)
            self._write_dir(dev, pasid, fpd=int(rng.random() < 0.1) if rnd else int("dir" in fpd))
        dev.valid[env.context_address(rid)] = self.peek(env.context_address(rid), 32)
        for pasid in dev.pasids:
            a = env.pasid_entry_address(rid, pasid)
            dev.valid[a] = self.peek(a, 64)
            d = env.dir_entry_address(rid, pasid)
            dev.valid[d] = self.peek(d, 8)
        dev.valid[root] = self.root_valid[dev.bus]
        self.devices = [d for d in self.devices if d.rid != rid] + [dev]
        return dev

    def _write_dir(self, dev: Device, pasid: int, fpd: int) -> None:
        table = self.env.pasid_entry_address(dev.rid, pasid) & ~0xFFF
        self.env.write_struct(self.env.dir_entry_address(dev.rid, pasid),
                              PasidDirEntry(p=1, fpd=fpd, smptblptr=table >> 12))

    def restore(self, dev: Device) -> None:
        """Write back the valid programming of ``dev`` (its root entry too)."""
        for addr, data in dev.valid.items():
            self.env.mem.write(addr, data)

    # --- addresses of a device's structures ---------------------------------------------------
    def addr_of(self, dev: Device, what: str, pasid: int | None = None) -> tuple[int, int]:
        env = self.env
        if what == "root":
            return env.root_entry_address(dev.bus), 16
        if what == "ctx":
            return env.context_address(dev.rid), 32
        if what == "dir":
            return env.dir_entry_address(dev.rid, pasid), 8
        return env.pasid_entry_address(dev.rid, pasid), 64

    def peek(self, addr: int, nbytes: int) -> bytes:
        """Memory contents as the CPU sees them (injected read errors are for the IOMMU only)."""
        return Memory.read(self.env.mem, addr, nbytes)

    def flip(self, addr: int, nbytes: int, bit: int) -> None:
        v = int.from_bytes(self.peek(addr, nbytes), "little") ^ (1 << bit)
        self.env.mem.write(addr, v.to_bytes(nbytes, "little"))

    def write_raw(self, addr: int, nbytes: int, value: int) -> None:
        self.env.mem.write(addr, value.to_bytes(nbytes, "little"))

    def reserved_bit(self, cls, raw: int) -> int:
        """A bit whose setting makes ``cls(raw)`` break its reserved-bit rule (the model's verdict),
        other than the present bit."""
        while True:
            bit = self.rng.randrange(1, cls.WIDTH)
            if cls(raw | 1 << bit).reserved_violations(self.p.haw, self.p) and not raw >> bit & 1:
                return bit

    # --- random requests ------------------------------------------------------------------------
    def random_lookup(self, rng: random.Random) -> Lookup:
        p = self.p
        kind = rng.choice(tuple(KINDS))
        if rng.random() < 0.05 or not self.devices:
            rid, pasids, rid_pasid = rng.getrandbits(16), [rng.getrandbits(20)], 0
        else:
            dev = rng.choice(self.devices)
            rid, pasids, rid_pasid = dev.rid, [x for x in dev.pasids if x != dev.rid_pasid], dev.rid_pasid
        u = rng.random()
        if u < 0.25:
            pasid = None
        elif u < 0.75:
            pasid = rng.choice(pasids)
        elif u < 0.8:
            pasid = rid_pasid
        elif u < 0.9:
            pasid = rng.randrange(1 << (p.pss + 1))
        else:
            pasid = rng.getrandbits(20)
        return Lookup.make(kind, rid, pasid, pmr=int(rng.random() < 0.2), er=int(rng.random() < 0.15),
                           rng=rng)


# ================================================================================================
# The bench
# ================================================================================================


class Tb:
    def __init__(self, dut):
        self.dut = dut
        self.stats = Stats()
        self.rng = rng = random.Random(self.stats.seed)
        self.profile = profile_from_env()
        self.env = Env(self.profile)
        self.iommu = self.env.iommu
        self.world = World(self.env, rng)
        self.max_latency = 12
        Clock(dut.clk_i, 4, unit="ns").start()
        self.axi = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), dut.clk_i, dut.rst_ni, self.env.mem,
                             reset_active_level=False, reorder=True,
                             read_latency=lambda: rng.randint(0, self.max_latency))
        self.errors: list = []
        self.stale = 0             # answers equal to a legal alternative but not to the fresh walk
        self.rows = Counter()      # FAULT_PRIORITY rows the fresh walks fired ('' = none)
        self.seq = 0
        self._req_valid = 0
        for value, name in PKG.enums["pl_fault_e"][1].items():  # the RTL enum names the model's reasons
            if value and name != f"PL_FR_{FaultReason(value).name}":
                raise AssertionError(f"pl_fault_e {name} = {value:#x} is {FaultReason(value).name} "
                                     "in models.vtd")

    async def reset(self):
        dut = self.dut
        for sig in (dut.req_valid_i, dut.rsp_ready_i, dut.cc_inv_valid_i, dut.pc_inv_valid_i, dut.req_i,
                    dut.req_tag_i, dut.cc_inv_i, dut.pc_inv_i, dut.tes_i, dut.rta_i, dut.ttm_i):
            sig.value = 0
        dut.rst_ni.value = 0
        await ClockCycles(dut.clk_i, 3)
        dut.rst_ni.value = 1
        await ClockCycles(dut.clk_i, 2)

    def backpressure(self, busy: float) -> None:
        self.busy = busy
        self.axi.random_backpressure(self.rng, busy)
        if not busy:  # removing a pause generator leaves the channel's last pause value in force
            for ch in ("ar", "aw", "w", "r", "b"):
                getattr(self.axi, f"{ch}_channel").pause = False

    def sync_config(self) -> None:
        """Drive TES, RTA and TTM as the register block latched them (the model's state)."""
        rta, ttm = self.iommu.root_table
        self.dut.tes_i.value = self.iommu.field("GSTS", "tes")
        self.dut.rta_i.value = rta >> 12
        self.dut.ttm_i.value = ttm

    def enable(self, ttm: int = 0b01) -> None:
        self.env.enable(ttm)
        self.sync_config()

    async def set_root(self, ttm: int) -> None:
        """SRTP with a new TTM: the model drops every cached entry (CAP.ESRTPS), the DUT is told with
        global invalidations, as the register block would."""
        self.env.wr("RTADDR", self.env.root | ttm << 10)
        self.env.gcmd("srtp")
        self.sync_config()
        await self.invalidate_all()

    async def set_te(self, on: int) -> None:
        self.env.gcmd("te", on)
        self.sync_config()
        await self.invalidate_all()

    async def invalidate_all(self) -> None:
        await self.run([], invs=[("cc", dict(g=CcInvDesc.G_GLOBAL, sid=0, fm=0)),
                                 ("pc", dict(g=PcInvDesc.G_GLOBAL, did=0, pasid=0))])

    def fail_reads(self, addr: int, nbytes: int) -> None:
        """A read error on [addr, addr+nbytes) for the DUT (SLVERR) and the model alike."""
        self.errors.append((self.axi.inject_error(addr, nbytes), (addr, addr + nbytes)))
        self.env.mem.fail_reads(addr, nbytes)

    def heal(self) -> None:
        for r, span in self.errors:
            self.axi.remove_error(r)
            self.env.mem.bad_reads.remove(span)
        self.errors.clear()

    def apply_inv(self, port: str, f: dict) -> None:
        caches = self.iommu.caches
        if port == "cc":
            caches.invalidate_context(f["g"], None, f["sid"], f["fm"])
        else:
            caches.invalidate_pasid(f["g"], f["did"], f["pasid"])

    def fail(self, what: str, lk: Lookup | None, expected, actual):
        self.stats.mismatches += 1
        raise AssertionError(f"{what}\n  lookup:   {lk}\n  expected: {expected}\n  actual:   {actual}\n"
                             f"  {self.stats.rerun_hint()}")

    async def run(self, lookups: list[Lookup], invs: list | None = None,
                  inv_gen: Callable[[], tuple] | None = None, inv_rate: float = 0.0,
                  busy: float | None = None) -> list[tuple[Lookup, Golden, int]]:
        """Offer ``lookups`` in order (random gaps), take every answer (random back-pressure) and
        score it; offer the invalidations ``invs`` first and, while lookups remain, one from
        ``inv_gen()`` with probability ``inv_rate`` per lookup. Returns (lookup, golden verdict,
        cycles from acceptance to answer) per lookup. The DUT must be idle when it is called."""
        dut, rng = self.dut, self.rng
        busy = self.busy if busy is None else busy
        todo, invq = deque(lookups), deque(invs or [])
        expect: deque = deque()
        done = []
        cur = None          # (lookup, tag) being offered
        cur_inv = None      # (port, fields) being offered
        rsp_ready = 0
        cycle = last_progress = 0
        edge = RisingEdge(dut.clk_i)
        while todo or expect or cur or invq or cur_inv:
            await edge
            cycle += 1
            if cycle - last_progress > WATCHDOG:
                self.fail(f"no handshake for {WATCHDOG} cycles ({len(expect)} lookups unanswered, "
                          f"invalidation offered: {cur_inv})", expect[0][0] if expect else None,
                          "progress", "none")
            took_req = took_inv = False
            if bool(dut.busy_o.value) != bool(expect):  # busy_o: a lookup taken and not yet answered
                self.fail("busy_o", expect[0][0] if expect else None, int(bool(expect)),
                          int(dut.busy_o.value))
            if cur is not None and dut.req_ready_o.value:
                lk, tag = cur
                g = golden(self.iommu, lk.req)
                self.rows[g.check] += 1
                expect.append((lk, tag, g, cycle))
                cur, took_req, last_progress = None, True, cycle
            if cur_inv is not None and getattr(dut, f"{cur_inv[0]}_inv_ready_o").value:
                self.apply_inv(*cur_inv)
                getattr(dut, f"{cur_inv[0]}_inv_valid_i").value = 0
                cur_inv, took_inv, last_progress = None, True, cycle
            if took_req and took_inv:
                self.fail("a lookup and an invalidation were taken in the same cycle", cur, "", "")
            if rsp_ready and dut.rsp_valid_o.value:
                if not expect:
                    self.fail("answer without a lookup", None, "nothing",
                              PKG.unpack("pl_rsp_t", int(dut.rsp_o.value)))
                lk, tag, g, t0 = expect.popleft()
                got = rtl_outcome(PKG.unpack("pl_rsp_t", int(dut.rsp_o.value)))
                got_tag = int(dut.rsp_tag_o.value)
                if got_tag != tag or got not in g.legal:
                    legal = "\n            ".join(describe(o) for o in g.legal if o != g.fresh)
                    self.fail(f"answer mismatch (tag {got_tag}, expected tag {tag})", lk,
                              f"{describe(g.fresh)} [row {g.check or 'none'}]"
                              + (f"\n  or stale: {legal}" if legal else ""), describe(got))
                self.stale += got != g.fresh
                self.stats.checked += 1
                last_progress = cycle
                done.append((lk, g, cycle - t0))
            # next cycle
            if cur_inv is None:
                if invq:
                    cur_inv = invq.popleft()
                elif inv_gen is not None and todo and rng.random() < inv_rate:
                    cur_inv = inv_gen()
                if cur_inv is not None:
                    port, f = cur_inv
                    getattr(dut, f"{port}_inv_i").value = pack(f"pl_{port}_inv_t", f)
                    getattr(dut, f"{port}_inv_valid_i").value = 1
            if cur is None and todo and not invq and rng.random() >= busy:
                lk = todo.popleft()
                tag = self.seq % (1 << TAG_W)
                self.seq += 1
                dut.req_i.value = pack("pl_req_t", lk.fields())
                dut.req_tag_i.value = tag
                cur = (lk, tag)
            valid = int(cur is not None)
            if valid != self._req_valid:
                dut.req_valid_i.value = self._req_valid = valid
            rsp_ready = int(rng.random() >= busy)
            dut.rsp_ready_i.value = rsp_ready
        dut.rsp_ready_i.value = 0
        self.stats.cycles += cycle
        return done


def random_inv(rng: random.Random, world: World) -> tuple:
    """A random cc_inv / pc_inv aimed at the world's devices, domains and PASIDs (vtd §4.2)."""
    dev = rng.choice(world.devices)
    if rng.random() < 0.5:
        g = rng.choice((CcInvDesc.G_GLOBAL, CcInvDesc.G_DOMAIN, CcInvDesc.G_DEVICE, CcInvDesc.G_DEVICE))
        sid = dev.rid ^ (rng.randrange(8) if rng.random() < 0.3 else 0)
        return ("cc", dict(g=g, sid=sid, fm=rng.choice((0, 0, 1, 2, 3))))
    g = rng.choice((PcInvDesc.G_DOMAIN, PcInvDesc.G_PASID, PcInvDesc.G_PASID, PcInvDesc.G_GLOBAL))
    return ("pc", dict(g=g, did=rng.choice(DIDS), pasid=rng.choice(dev.pasids)))


async def start(dut) -> Tb:
    tb = Tb(dut)
    tb.backpressure(0.3)
    await tb.reset()
    tb.enable()
    return tb


def finish(tb: Tb, what: str) -> None:
    tb.stats.result = "PASS"
    rows = ", ".join(f"{r or 'ok'}:{n}" for r, n in sorted(tb.rows.items()))
    tb.dut._log.info("%s: %d lookups checked (%d stale answers), %d cycles, %d bursts read; rows: %s",
                     what, tb.stats.checked, tb.stale, tb.stats.cycles, tb.axi.counters.read_bursts, rows)


# ================================================================================================
# pasid_lookup_random
# ================================================================================================


def mutate(tb: Tb, rng: random.Random) -> str:
    """One change of the world without invalidation; returns what it did."""
    w, p = tb.world, tb.profile
    dev = rng.choice(w.devices)
    pasid = rng.choice(dev.pasids)
    op = rng.choice(("pe_rewrite", "pe_absent", "pe_flip", "pe_program", "dir_absent", "dir_flip",
                     "ctx_rewrite", "ctx_absent", "ctx_flip", "root_flip", "read_error", "restore",
                     "restore", "reprogram"))
    if op == "pe_rewrite":
        tb.env.set_pasid_entry(dev.rid, pasid, **random_pe_fields(rng, p))
    elif op == "pe_absent":  # random contents: a not-present entry is never checked for reserved bits
        w.write_raw(*w.addr_of(dev, "pe", pasid), rng.getrandbits(512) & ~1)
    elif op == "pe_flip":
        w.flip(*w.addr_of(dev, "pe", pasid), rng.randrange(512))
    elif op == "pe_program":
        tb.env.set_pasid_entry(dev.rid, pasid, **random_pe_fields(
            rng, p, pgtt=rng.randrange(8), fspm=rng.randrange(4), sre=rng.getrandbits(1) & p.srs))
    elif op == "dir_absent":
        w.write_raw(*w.addr_of(dev, "dir", pasid), rng.getrandbits(64) & ~1)
    elif op == "dir_flip":
        w.flip(*w.addr_of(dev, "dir", pasid), rng.randrange(64))
    elif op == "ctx_rewrite":  # any combination of the enables, PDTS and RID_PASID
        tb.env.set_context(dev.rid, **random_ctx_fields(
            rng, p, dte=rng.getrandbits(1), paside=rng.getrandbits(1), pre=rng.getrandbits(1),
            eptr=rng.getrandbits(1) if rng.random() < 0.2 else int(bool(p.ptrs)),
            hpte=rng.getrandbits(1) if rng.random() < 0.1 else 0, pdts=rng.randrange(8),
            rid_pasid=rng.choice((dev.rid_pasid, rng.getrandbits(20)))))
    elif op == "ctx_absent":
        w.write_raw(*w.addr_of(dev, "ctx"), rng.getrandbits(256) & ~1)
    elif op == "ctx_flip":
        w.flip(*w.addr_of(dev, "ctx"), rng.randrange(256))
    elif op == "root_flip":
        w.flip(*w.addr_of(dev, "root"), rng.randrange(128))
    elif op == "read_error":
        what = rng.choice(("root", "ctx", "dir", "pe"))
        addr, n = w.addr_of(dev, what, pasid)
        off = rng.randrange(0, n, 8)
        tb.fail_reads(addr + off, rng.choice((8, n - off)))
        op += f" {what}"
    elif op == "restore":
        w.restore(dev)
    else:
        w.program(dev.rid)
    return f"{op} rid={dev.rid:#06x} pasid={pasid:#x}"


@cocotb.test()
async def pasid_lookup_random(dut):
    """Random world and edits, random lookups and invalidations, back-pressure everywhere."""
    tb = await start(dut)
    rng, w = tb.rng, tb.world
    try:
        for _ in range(8):
            w.program(w.new_rid(), npasids=rng.randint(1, 4))
        target = _count(1500)
        ttm_changed = False
        while tb.stats.checked < target:
            tb.backpressure(rng.choice((0.0, 0.3, 0.6)))
            tb.max_latency = rng.choice((0, 4, 20))
            if rng.random() < 0.5:
                tb.heal()
            if ttm_changed:
                await tb.set_root(0b01)
                await tb.set_te(1)
                ttm_changed = False
            for _ in range(rng.randint(0, 3)):
                mutate(tb, rng)
            if rng.random() < 0.04:
                ttm_changed = True
                if rng.random() < 0.3:
                    await tb.set_te(0)
                else:
                    await tb.set_root(rng.choice((0b00, 0b10, 0b11)))
            lookups = [w.random_lookup(rng) for _ in range(rng.randint(5, 40))]
            await tb.run(lookups, inv_gen=lambda: random_inv(rng, w), inv_rate=0.04)
        finish(tb, "random")
    finally:
        tb.stats.write()


# ================================================================================================
# pasid_lookup_faults: one directed case per lookup row of FAULT_PRIORITY
# ================================================================================================


def fault_cases(tb: Tb, fpd: frozenset) -> tuple[list[tuple[str, int, Lookup]], dict[str, str]]:
    """(row, TTM, lookup) for every row reachable with this profile; a device of its own per case.
    Returns also the rows the profile makes unreachable, with the reason."""
    w, p, rng, env = tb.world, tb.profile, tb.rng, tb.env
    cases: list[tuple[str, int, Lookup]] = []
    unreachable: dict[str, str] = {}

    def dev(**ctx) -> Device:
        return w.program(w.new_rid(), npasids=2, ctx=ctx or None, fpd=fpd)

    def add(row: str, lk: Lookup, ttm: int = 0b01):
        cases.append((row, ttm, lk))

    def user(d: Device) -> int:
        return next(x for x in d.pasids if x != d.rid_pasid)

    # --- request: no memory read
    d = dev()
    add("ttm_reserved", Lookup.make("PL_READ", d.rid, user(d)), 0b10)
    add("ttm_legacy_with_pasid", Lookup.make("PL_TRANSLATION", d.rid, user(d)), 0b00)
    add("ttm_legacy_page_request", Lookup.make("PL_PAGE_REQ", d.rid, None), 0b00)
    add("ttm_legacy", Lookup.make("PL_WRITE", d.rid, None), 0b00)
    if p.adms:
        add("ttm_abort", Lookup.make("PL_READ", d.rid, None), 0b11)
    else:
        add("ttm_reserved", Lookup.make("PL_READ", d.rid, None, note="TTM=11 without ADMS"), 0b11)
        unreachable["ttm_abort"] = "ECAP.ADMS=0: TTM=11 is reserved (RTA.1)"
    if p.pss < 19:
        add("pasid_too_wide", Lookup.make("PL_READ", d.rid, 1 << (p.pss + 1) | rng.getrandbits(p.pss + 1)))
    else:
        unreachable["pasid_too_wide"] = "ECAP.PSS=19: every 20-bit PASID is supported"
    if p.ver_max >= 8:
        add("execute_requested", Lookup.make("PL_TRANSLATION", d.rid, user(d), er=1))
        unreachable["execute_requested_spt5"] = "VER major >= 8: ER=1 faults RTA.5 before the walk"
    else:
        d = dev()
        add("execute_requested_spt5", Lookup.make("PL_READ", d.rid, user(d), er=1))
        unreachable["execute_requested"] = "VER major <= 7: ER=1 faults SPT.5 after the PASID entry"
    # --- root entry
    d = dev()
    tb.fail_reads(*w.addr_of(d, "root"))
    add("root_read", Lookup.make("PL_READ", d.rid, user(d)))
    d = dev()
    root = RootEntry.from_bytes(w.peek(*w.addr_of(d, "root")))
    root.raw &= ~(1 << (64 if d.rid & 0x80 else 0))
    env.write_struct(w.addr_of(d, "root")[0], root)
    add("root_not_present", Lookup.make("PL_TRANSLATED", d.rid, None, rng=rng))
    d = dev()
    raw = int.from_bytes(w.peek(*w.addr_of(d, "root")), "little")
    w.flip(*w.addr_of(d, "root"), w.reserved_bit(RootEntry, raw))
    add("root_reserved", Lookup.make("PL_PAGE_REQ", d.rid, None))
    # --- context entry
    d = dev()
    tb.fail_reads(*w.addr_of(d, "ctx"))
    add("context_read", Lookup.make("PL_READ", d.rid, None))
    d = dev()
    w.write_raw(*w.addr_of(d, "ctx"), rng.getrandbits(256) & ~3 | int("ctx" in fpd) << 1)
    add("context_not_present", Lookup.make("PL_ATOMIC", d.rid, user(d)))
    d = dev()
    raw = int.from_bytes(w.peek(*w.addr_of(d, "ctx")), "little")
    w.flip(*w.addr_of(d, "ctx"), w.reserved_bit(ContextEntry, raw))
    add("context_reserved", Lookup.make("PL_READ", d.rid, user(d)))
    d = dev(pre=1, dte=0)
    add("context_invalid", Lookup.make("PL_READ", d.rid, None, note="PRE=1 with DTE=0"))
    if p.rps:
        d = dev(pdts=0, rid_pasid=1 << 13)
        add("context_invalid", Lookup.make("PL_READ", d.rid, None, note="RID_PASID above PDTS"))
    if p.ptrs:
        d = dev(eptr=1, paside=0)
        add("context_invalid", Lookup.make("PL_READ", d.rid, None, note="EPTR=1 with PASIDE=0"))
    # --- checks of the context entry for the request
    d = dev(dte=0, pre=0)
    add("dte_disabled", Lookup.make("PL_TRANSLATION", d.rid, None))
    add("dte_disabled", Lookup.make("PL_TRANSLATED", d.rid, None, rng=rng))
    d = dev(paside=0, eptr=0)
    add("paside_disabled", Lookup.make("PL_PAGE_REQ", d.rid, user(d)))
    d = dev(pdts=0)
    add("pasid_above_pdts", Lookup.make("PL_READ", d.rid, (1 << 13) + rng.randrange(1 << 13)))
    d = dev(pre=0)
    add("pre_disabled", Lookup.make("PL_PAGE_REQ", d.rid, None))
    d = dev(rid_pasid=rng.randrange(1 << 13))
    add("rid_pasid_used", Lookup.make("PL_WRITE", d.rid, d.rid_pasid))
    d = dev(eptr=0)
    add("eptr_disabled", Lookup.make("PL_TRANSLATED", d.rid, user(d), rng=rng))
    # --- PASID directory entry
    d = dev()
    tb.fail_reads(*w.addr_of(d, "dir", user(d)))
    add("dir_read", Lookup.make("PL_READ", d.rid, user(d)))
    d = dev()
    w.write_raw(*w.addr_of(d, "dir", d.rid_pasid), rng.getrandbits(64) & ~3 | int("dir" in fpd) << 1)
    add("dir_not_present", Lookup.make("PL_TRANSLATION", d.rid, None))
    d = dev()
    raw = int.from_bytes(w.peek(*w.addr_of(d, "dir", user(d))), "little")
    w.flip(*w.addr_of(d, "dir", user(d)), w.reserved_bit(PasidDirEntry, raw))
    add("dir_reserved", Lookup.make("PL_READ", d.rid, user(d)))
    # --- PASID entry
    d = dev()
    tb.fail_reads(*w.addr_of(d, "pe", user(d)))
    add("pasid_read", Lookup.make("PL_READ", d.rid, user(d)))
    d = dev()
    w.write_raw(*w.addr_of(d, "pe", user(d)), rng.getrandbits(512) & ~3 | int("pe" in fpd) << 1)
    add("pasid_not_present", Lookup.make("PL_READ", d.rid, user(d)))
    d = dev()
    raw = int.from_bytes(w.peek(*w.addr_of(d, "pe", user(d))), "little")
    w.flip(*w.addr_of(d, "pe", user(d)), w.reserved_bit(PasidEntry, raw))
    add("pasid_reserved", Lookup.make("PL_WRITE", d.rid, user(d)))
    if p.haw < 52:  # SSPTPTR above HAW is reserved for PGTT 010/011 (checked before the PGTT itself)
        d = dev()
        env.set_pasid_entry(d.rid, user(d), **random_pe_fields(
            rng, p, fpd=int("pe" in fpd), pgtt=rng.choice((Pgtt.SECOND_STAGE, Pgtt.NESTED)),
            ssptptr=1 << rng.randrange(p.haw - 12, 52)))
        add("pasid_reserved", Lookup.make("PL_READ", d.rid, user(d), note="SSPTPTR above HAW"))
    ss = rng.getrandbits(p.haw - 12)  # a second-stage pointer below HAW: the PGTT itself is the fault
    invalid = [dict(pgtt=0), dict(pgtt=Pgtt.SECOND_STAGE, ssptptr=ss), dict(pgtt=Pgtt.NESTED, ssptptr=ss),
               dict(pgtt=5 + rng.randrange(3)),
               dict(pgtt=Pgtt.FIRST_STAGE, fspm=2 + rng.randrange(2))]
    invalid += [] if p.fs5lp else [dict(pgtt=Pgtt.FIRST_STAGE, fspm=1)]
    invalid += [] if p.pt else [dict(pgtt=Pgtt.PASS_THROUGH)]
    for over in invalid:
        d = dev()
        env.set_pasid_entry(d.rid, d.rid_pasid, **random_pe_fields(rng, p, fpd=int("pe" in fpd), **over))
        add("pasid_invalid", Lookup.make("PL_READ", d.rid, None, note=str(over)))
    d = dev()
    env.set_pasid_entry(d.rid, user(d), **random_pe_fields(rng, p, fpd=int("pe" in fpd), sre=0))
    add("supervisor_disabled", Lookup.make("PL_TRANSLATION", d.rid, user(d), pmr=1))
    if p.rprivs:
        d = dev(rid_priv=1)
        env.set_pasid_entry(d.rid, d.rid_pasid, **random_pe_fields(rng, p, fpd=int("pe" in fpd), sre=0))
        add("supervisor_disabled", Lookup.make("PL_READ", d.rid, None, note="RID_PRIV=1"))
    # --- successes: every kind, with and without PASID
    for kind in KINDS:
        d = dev(rid_priv=0, eptr=int(bool(p.ptrs)))
        add("", Lookup.make(kind, d.rid, user(d), rng=rng) if kind != "PL_TRANSLATED" or p.ptrs
            else Lookup.make(kind, d.rid, None, rng=rng))
        add("", Lookup.make(kind, d.rid, None, rng=rng))
    return cases, unreachable


@cocotb.test()
async def pasid_lookup_faults(dut):
    """Every lookup row of FAULT_PRIORITY, each with no FPD and with FPD bits set; cases sharing a
    TTM run concurrently."""
    tb = await start(dut)
    try:
        hit: set[str] = set()
        unreachable: dict[str, str] = {}
        fpd_seen: dict[str, set] = {}
        for fpd in (frozenset(), frozenset({"ctx"}), frozenset({"dir"}), frozenset({"pe"}),
                    frozenset({"ctx", "dir", "pe"})):
            cases, unreachable = fault_cases(tb, fpd)
            for ttm in sorted({t for _, t, _ in cases}, reverse=True):
                batch = [(row, lk) for row, t, lk in cases if t == ttm]
                if ttm != 0b01:
                    await tb.set_root(ttm)
                done = await tb.run([lk for _, lk in batch])
                for (row, lk), (_, g, _) in zip(batch, done):
                    if g.check != row:
                        raise AssertionError(f"testbench: case for row {row or 'ok'} ({lk}) made the golden "
                                             f"walk fire {g.check or 'no row'}")
                    hit.add(row)
                    fpd_seen.setdefault(row, set()).add(g.fresh[1] if row == "" else g.fresh[2])
                if ttm != 0b01:
                    await tb.set_root(0b01)
            tb.heal()
        missing = [r for r in LOOKUP_ROWS if r not in hit and r not in unreachable]
        if missing:
            raise AssertionError(f"rows never reached: {missing}")
        # every row after the context entry was read must have been seen with and without FPD
        after_ctx = LOOKUP_ROWS[LOOKUP_ROWS.index("context_not_present"):] + ("",)
        one_sided = [r for r in after_ctx if r in fpd_seen and fpd_seen[r] != {False, True}]
        if one_sided:
            raise AssertionError(f"testbench: rows seen with only one FPD value: {one_sided}")
        tb.dut._log.info("rows reached: %d of %d; unreachable with this profile: %s", len(hit - {""}),
                         len(LOOKUP_ROWS), unreachable)
        finish(tb, "faults")
    finally:
        tb.stats.write()


# ================================================================================================
# pasid_lookup_stale: cache legality around changes without and with invalidation
# ================================================================================================


def lookups_for(dev: Device, rng: random.Random) -> list[Lookup]:
    """A lookup of every PASID of ``dev`` (RID_PASID through a request without PASID)."""
    out = [Lookup.make("PL_READ", dev.rid, None)]
    out += [Lookup.make(rng.choice(("PL_READ", "PL_WRITE", "PL_TRANSLATION")), dev.rid, x)
            for x in dev.pasids if x != dev.rid_pasid]
    return out


FM_MASK = (0b000, 0b100, 0b110, 0b111)  # function-number bits a cc_inv FM value ignores (vtd §4.2)


def cc_covering(rng: random.Random, rid: int) -> tuple:
    """A context-cache invalidation that covers ``rid``: device-selective (a random FM, and a SID that
    differs from ``rid`` only in the masked function bits), domain-selective (global in scalable
    mode) or global."""
    g = rng.choice((CcInvDesc.G_DEVICE, CcInvDesc.G_DEVICE, CcInvDesc.G_DOMAIN, CcInvDesc.G_GLOBAL))
    fm = rng.randrange(4)
    return ("cc", dict(g=g, sid=rid ^ (rng.getrandbits(3) & FM_MASK[fm]), fm=fm))


def pc_covering(rng: random.Random, pairs: list[tuple[int, int]]) -> list[tuple]:
    """PASID-cache invalidations covering every cached (DID, PASID) of ``pairs``: PASID-selective
    ones, domain-selective ones, or one global."""
    how = rng.randrange(3)
    if how == 0:
        return [("pc", dict(g=PcInvDesc.G_PASID, did=d, pasid=x)) for d, x in sorted(set(pairs))]
    if how == 1:
        return [("pc", dict(g=PcInvDesc.G_DOMAIN, did=d, pasid=0)) for d in sorted({d for d, _ in pairs})]
    return [("pc", dict(g=PcInvDesc.G_GLOBAL, did=0, pasid=0))]


def change(tb: Tb, dev: Device, what: str, rng: random.Random) -> list[tuple]:
    """Change ``dev``'s structures without invalidating; returns invalidations that vtd §4.6 accepts
    for that change, in a random one of their allowed granularities (the DIDs are the ones cached
    before the change)."""
    env, w, p = tb.env, tb.world, tb.profile
    pasid = rng.choice([x for x in dev.pasids if x != dev.rid_pasid])
    old = {x: env.pasid_entry(dev.rid, x).did for x in dev.pasids}
    everything = [(old[x], x) for x in dev.pasids]
    if what == "pe_fields":
        env.set_pasid_entry(dev.rid, pasid, **random_pe_fields(rng, p, did=rng.choice(DIDS)))
        return pc_covering(rng, [(old[pasid], pasid)])
    if what == "pe_absent":
        w.write_raw(*w.addr_of(dev, "pe", pasid), 0)
        return pc_covering(rng, [(old[pasid], pasid)])
    if what == "dir_absent":  # the directory entry serves PASIDs with the same bits 19:6
        w.write_raw(*w.addr_of(dev, "dir", pasid), 0)
        return pc_covering(rng, [(old[x], x) for x in dev.pasids if x >> 6 == pasid >> 6])
    if what == "ctx_fields":
        ctx = ContextEntry.from_bytes(w.peek(*w.addr_of(dev, "ctx")))
        ctx.fpd ^= 1
        ctx.paside = rng.getrandbits(1)
        if p.rps:
            ctx.rid_pasid = pasid
        env.write_struct(w.addr_of(dev, "ctx")[0], ctx)
        return [cc_covering(rng, dev.rid)] + pc_covering(rng, everything)
    if what == "ctx_absent":
        w.write_raw(*w.addr_of(dev, "ctx"), 0)
        return [cc_covering(rng, dev.rid)] + pc_covering(rng, everything)
    root = RootEntry.from_bytes(w.peek(*w.addr_of(dev, "root")))
    root.raw &= ~(1 << (64 if dev.rid & 0x80 else 0))
    env.write_struct(w.addr_of(dev, "root")[0], root)
    return [("cc", dict(g=rng.choice((CcInvDesc.G_GLOBAL, CcInvDesc.G_DOMAIN)), sid=0, fm=0)),
            ("pc", dict(g=PcInvDesc.G_GLOBAL, did=0, pasid=0))]


@cocotb.test()
async def pasid_lookup_stale(dut):
    """Fill the caches, change entries without invalidating (old or new answers are legal), issue the
    invalidations vtd §4.6 asks for (only new answers are legal). Also: a hit reads no memory and
    answers in HIT_LATENCY cycles."""
    tb = await start(dut)
    rng, w = tb.rng, tb.world
    try:
        # latency: a lone lookup, no back-pressure, memory answering at once
        tb.backpressure(0.0)
        tb.max_latency = 0
        dev = w.program(w.new_rid(), npasids=1)
        lk = Lookup.make("PL_READ", dev.rid, dev.pasids[-1] if dev.pasids[-1] != dev.rid_pasid else None)
        bursts = tb.axi.counters.read_bursts
        (_, g, miss), = await tb.run([lk])
        miss_reads = tb.axi.counters.read_bursts - bursts
        (_, g, hit), = await tb.run([lk])
        hit_reads = tb.axi.counters.read_bursts - bursts - miss_reads
        if g.fresh[0] != "ok" or miss_reads != 4 or hit_reads != 0 or hit != HIT_LATENCY:
            tb.fail("cache hit", lk, f"a miss of 4 reads, then a hit of 0 reads in {HIT_LATENCY} cycles",
                    f"{describe(g.fresh)}: miss {miss_reads} reads, hit {hit_reads} reads in {hit} cycles")
        tb.dut._log.info("latency with a 0-cycle memory: miss (4 reads) %d cycles, hit %d cycles", miss, hit)
        # throughput of hits: back to back, one per cycle once two slots can be in use
        n, cycles = 32, tb.stats.cycles
        await tb.run([lk] * n)
        cycles = tb.stats.cycles - cycles
        slots = int(os.environ.get("PL_SLOTS", "4"))
        bound = n + 3 if slots >= 2 else 2 * n + 3
        if cycles > bound:
            tb.fail("hit throughput", lk, f"{n} hits in at most {bound} cycles ({slots} slots)",
                    f"{cycles} cycles")
        tb.dut._log.info("%d back-to-back hits: %d cycles", n, cycles)

        changes = ("pe_fields", "pe_absent", "dir_absent", "ctx_fields", "ctx_absent", "root_absent")
        rounds = _count(60)
        for n in range(rounds):
            tb.backpressure(rng.choice((0.0, 0.3)))
            tb.max_latency = rng.choice((0, 10))
            await tb.invalidate_all()
            dev = w.program(w.new_rid() if len(w.used_buses) < 250 else w.devices[0].rid, npasids=3)
            await tb.run(lookups_for(dev, rng))                      # fill
            invs = change(tb, dev, changes[n % len(changes)], rng)
            await tb.run(lookups_for(dev, rng) * 2)                   # old or new
            await tb.run([], invs=invs)
            for lk, g, _ in await tb.run(lookups_for(dev, rng)):      # new only
                if g.legal != {g.fresh}:
                    raise AssertionError(f"testbench: after {invs} the model still allows stale answers "
                                         f"for {lk}: {g.legal}")
            w.restore(dev)
        if tb.stale == 0:
            tb.fail("caching", None, "some answers from entries cached before a change", "none")
        finish(tb, "stale")
    finally:
        tb.stats.write()


# ================================================================================================
# pasid_lookup_bitflip: every bit of every structure
# ================================================================================================


@cocotb.test()
async def pasid_lookup_bitflip(dut):
    """Flip each bit of the root, context, PASID directory and PASID entry once (BATCH devices at a
    time, each on its own bus), look up, restore."""
    tb = await start(dut)
    rng, w = tb.rng, tb.world
    batch = 24
    try:
        devs = [w.program(w.new_rid(), npasids=1) for _ in range(batch)]
        for what, width in (("root", 128), ("ctx", 256), ("dir", 64), ("pe", 512)):
            bits = list(range(width))
            rng.shuffle(bits)
            for i in range(0, width, batch):
                await tb.invalidate_all()
                lookups = []
                for dev, bit in zip(devs, bits[i:i + batch]):
                    pasid = rng.choice([x for x in dev.pasids if x != dev.rid_pasid] + [None])
                    w.flip(*w.addr_of(dev, what, dev.rid_pasid if pasid is None else pasid), bit)
                    # a kind that reads the flipped structure (a translated request stops at the context)
                    kinds = [k for k in KINDS
                             if k != "PL_TRANSLATED" or (pasid is None and what in ("root", "ctx"))]
                    lookups.append(Lookup.make(rng.choice(kinds), dev.rid, pasid, pmr=rng.getrandbits(1),
                                               note=f"{what} bit {bit} flipped", rng=rng))
                await tb.run(lookups)
                for dev in devs:
                    w.restore(dev)
        finish(tb, "bitflip")
    finally:
        tb.stats.write()
