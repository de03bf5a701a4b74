"""cocotb tests of rtl/iotlb.sv, scored against the golden model's IOTLB rules (``models.iommu.Caches``).

Reference. ``Caches`` is driven standalone: every fill the IOTLB accepts is ``add_iotlb(Page(...,
pgtt=FIRST_STAGE))``, every invalidation it accepts is ``invalidate_iotlb(g, did, pasid, addr, am)``
with the descriptor granularity it stands for (vtd §4.3 lives in the model, not here). Operations are
applied in acceptance order, and within one cycle fill, then invalidation, then lookup (the order
rtl/iotlb.sv documents). A lookup's legal answers are the pages ``Caches.iotlb_pages`` returns when it
is accepted, plus pages filled while it is in flight; a write may not use a page with D=0 (vtd §3.7).
* Every hit must return (size, frame, rw, us, d) of one legal page; a miss is always legal.
* "Exact" scenarios keep the working set within the capacity of every set (no eviction), so there a
  miss is only legal when the model has no legal page: this catches an IOTLB that misses too often or
  invalidates too much. Lookups in flight across an invalidation are exempt (they may hit or miss).
* In flight rule: at most one lookup is in flight when an invalidation is accepted (the answer in the
  response register); when inv_done completes, every lookup accepted before that invalidation has been
  answered; inv_done comes within SETS + 1 cycles of the invalidation, or in the cycle after that
  in-flight answer was taken if that is later.
* MATCH_SRC=1 (the configuration iommu_top builds): entries are matched by the request's source tag
  {RID, PV, PASID} and invalidated by DID/PASID. Each source stands for one (DID, PASID), several sources
  share one (as devices of one domain using the same PASID do), and lookups carry random DID/PASID
  fields (the IOTLB must not look at them). The model is keyed by DID/PASID, so the testbench keeps
  which source filled which model page: a page is legal for a lookup only if the lookup's source filled
  it, and the record goes when the model drops the page. With MATCH_SRC=0 the src fields are random.
* Protocol: rsp / inv_done stay valid and stable until taken; responses come back in order with the
  lookup's user tag.

Signals are driven on the falling edge and sampled in ReadOnly of the same cycle, so a handshake seen
there is the one the rising edge that follows takes (simulator-independent, no Verilator edge quirks).
Back-pressure: random gaps on every input channel and random rsp_ready / inv_done_ready.
"""

from __future__ import annotations

import os
import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from models.iommu import Caches, Page
from models.vtd import IotlbInvDesc, Pgtt, PIotlbInvDesc
from tb.runner import RTL_DIR
from tb.stats import Stats
from tb.svstruct import SvPackage

PKG = SvPackage(RTL_DIR / "iotlb_pkg.sv")
SIZE_CODES = ("PS_4K", "PS_2M", "PS_1G")
SIZE_BYTES = (1 << 12, 1 << 21, 1 << 30)
RESERVED_SIZE = 3
VA_BITS = 57                                   # rtl/iotlb_pkg.sv: input address bits 56:0
INV_KINDS = ("INV_GLOBAL", "INV_DOMAIN", "INV_DOMAIN_PAGE", "INV_PASID", "INV_PASID_PAGE")
LATENCY = 1                                    # documented in rtl/iotlb.sv
SRC_BITS = 37                                  # iotlb_pkg: src = {rid, pv, pasid}


def pack(struct: str, values: dict) -> int:
    """A port value; members not given are 0."""
    return PKG.pack(struct, values, fill_missing=True)


def model_invalidate(caches: Caches, inv: dict) -> None:
    """Apply one invalidation to the model as the descriptor it stands for (iotlb_pkg::iotlb_inv_e)."""
    kind = PKG.enums["iotlb_inv_e"][1].get(inv["kind"], "reserved")
    did, pasid, addr, am = inv["did"], inv["pasid"], inv["addr"], inv["am"]
    if kind in ("INV_GLOBAL", "reserved"):   # reserved codes: the IOTLB drops everything (documented)
        caches.invalidate_iotlb(IotlbInvDesc.G_GLOBAL)
    elif kind == "INV_DOMAIN":
        caches.invalidate_iotlb(IotlbInvDesc.G_DOMAIN, did)
    elif kind == "INV_DOMAIN_PAGE":
        caches.invalidate_iotlb(IotlbInvDesc.G_PAGE, did, None, addr, am)
    elif kind == "INV_PASID":
        caches.invalidate_iotlb(PIotlbInvDesc.G_PASID, did, pasid)
    else:
        caches.invalidate_iotlb(PIotlbInvDesc.G_PAGE, did, pasid, addr, am)


def fill_page(f: dict) -> Page | None:
    """The model page a fill stands for (None: the reserved size code, which the IOTLB drops)."""
    if f["size"] == RESERVED_SIZE:
        return None
    size = SIZE_BYTES[f["size"]]
    return Page(iova=f["va"] & ~(size - 1), size=size, pa=f["pa"] & ~(size - 1), rw=f["rw"], us=f["us"],
                dirty=f["d"], did=f["did"], pasid=f["pasid"], pgtt=Pgtt.FIRST_STAGE)


def usable(page: Page, lk: dict) -> bool:
    """The page covers the lookup and may answer it (a write needs D=1, vtd §3.7)."""
    return (page.did == lk["did"] and page.pasid == lk["pasid"]
            and page.iova <= lk["va"] < page.iova + page.size and (page.dirty or not lk["is_write"]))


def fmt_page(p: Page) -> str:
    return f"iova={p.iova:#x} size={p.size:#x} pa={p.pa:#x} rw={p.rw} us={p.us} d={p.dirty}"


# ------------------------------------------------------------------------------------------------
# Stimulus
# ------------------------------------------------------------------------------------------------
class Pool:
    """Tags and addresses a scenario draws from: a few DIDs, PASIDs and 1G regions, and inside each
    region a few 2M windows of a few 4K pages, so pages of different sizes overlap and collide."""

    def __init__(self, rng: random.Random, n_did: int, n_pasid: int, windows: int, pages: int,
                 match_src: bool = False):
        self.rng = rng
        self.dids = [rng.getrandbits(16) for _ in range(n_did)]
        self.pasids = [rng.getrandbits(20) for _ in range(n_pasid)]
        self.regions = [rng.getrandbits(VA_BITS - 30) << 30 for _ in range(3)]
        self.windows, self.pages = windows, pages
        self.match_src = match_src
        # MATCH_SRC: source tags {rid, pv, pasid} of two requester IDs, each standing for one (DID, PASID);
        # there are more sources than pairs, so some pairs are shared
        self.sources: list[tuple[int, int, int]] = []   # (src, did, pasid)
        if match_src:
            rids = [rng.getrandbits(16) for _ in range(2)]
            seen = set()
            while len(self.sources) < n_did * n_pasid + 2:
                pv = rng.getrandbits(1)
                pasid = rng.choice(self.pasids + [rng.getrandbits(20)]) if pv else 0
                src = rng.choice(rids) << 21 | pv << 20 | pasid
                if src not in seen:
                    seen.add(src)
                    self.sources.append((src, rng.choice(self.dids), rng.choice(self.pasids)))

    def tag(self) -> dict:
        """did, pasid and src of a random source (MATCH_SRC=0: src is noise the IOTLB must ignore)."""
        rng = self.rng
        if self.match_src:
            src, did, pasid = rng.choice(self.sources)
            return dict(did=did, pasid=pasid, src=src)
        return dict(did=rng.choice(self.dids), pasid=rng.choice(self.pasids), src=rng.getrandbits(SRC_BITS))

    def dut_tag(self, f: dict) -> tuple:
        """What the IOTLB tells entries apart by: (src or DID + PASID, page, size)."""
        size = SIZE_BYTES[f["size"]]
        who = (f["src"],) if self.match_src else (f["did"], f["pasid"])
        return (*who, f["va"] & ~(size - 1), size)

    def page(self, size_weights=(70, 20, 10)) -> dict:
        """A random fill (va and pa may point anywhere inside the page: the IOTLB aligns them)."""
        rng = self.rng
        code = rng.choices(range(3), weights=size_weights)[0]
        return dict(self.tag(), size=code, va=self.address(), pa=rng.getrandbits(52),
                    rw=rng.getrandbits(1), us=rng.getrandbits(1), d=int(rng.random() < 0.7))

    def address(self) -> int:
        rng = self.rng
        return (rng.choice(self.regions) + (rng.randrange(self.windows) << 21)
                + (rng.randrange(self.pages) << 12) + rng.getrandbits(12))

    def lookup_in(self, f: dict, write_share: float) -> dict:
        size = SIZE_BYTES[f["size"] if f["size"] != RESERVED_SIZE else 0]
        va = (f["va"] & ~(size - 1)) + self.rng.randrange(size)
        src = f["src"] if self.match_src else self.rng.getrandbits(SRC_BITS)
        return dict(did=f["did"], pasid=f["pasid"], src=src, va=va,
                    is_write=int(self.rng.random() < write_share))

    def lookup_any(self) -> dict:
        """A lookup of a random source and address (mostly nothing cached)."""
        return dict(self.tag(), va=self.address(), is_write=self.rng.getrandbits(1))

    def invalidation(self, near: dict | None) -> dict:
        """Any granularity (reserved codes now and then), tags and addresses near a cached page."""
        rng = self.rng
        kind = rng.choice(range(len(INV_KINDS))) if rng.random() > 0.04 else rng.choice((5, 6, 7))
        did = near["did"] if near and rng.random() < 0.8 else rng.choice(self.dids)
        pasid = near["pasid"] if near and rng.random() < 0.8 else rng.choice(self.pasids)
        addr = near["va"] if near and rng.random() < 0.8 else self.address()
        am = rng.choice([0, 0, 0, 1, 4, 9, 9, 18, rng.randrange(64)])
        return dict(kind=kind, did=did, pasid=pasid, addr=addr & ~((1 << 12) - 1), am=am)


class RandomScenario:
    """Capacity pressure: fills, lookups (mostly of recently filled pages) and invalidations of every
    granularity, with random back-pressure. Legality only (misses are legal)."""

    exact = False

    def __init__(self, rng: random.Random, entries: int, lookups: int, match_src: bool = False):
        self.rng = rng
        self.pool = Pool(rng, n_did=3, n_pasid=3, windows=4, pages=24, match_src=match_src)
        self.recent: deque = deque(maxlen=max(8, entries + entries // 2))
        self.lookups_left = lookups

    def next_fill(self, sb) -> dict | None:
        if self.lookups_left == 0 or self.rng.random() > 0.3:
            return None
        f = self.pool.page()
        if self.rng.random() < 0.02:
            f["size"] = RESERVED_SIZE
        self.recent.append(f)
        return f

    def next_inv(self, sb) -> dict | None:
        if self.lookups_left == 0 or self.rng.random() > 0.03:
            return None
        return self.pool.invalidation(self.rng.choice(self.recent) if self.recent else None)

    def next_lookup(self, sb) -> dict | None:
        if self.lookups_left == 0 or self.rng.random() > 0.9:
            return None
        self.lookups_left -= 1
        if self.recent and self.rng.random() < 0.8:
            return self.pool.lookup_in(self.rng.choice(self.recent), write_share=0.3)
        return self.pool.lookup_any()


def working_set(pool: Pool, entries: int, ways: int, size_weights=(70, 20, 10)) -> list[dict]:
    """Pages with distinct tags and at most `ways` per set, per the set index rtl/iotlb.sv documents
    (a page of size code k lives in set (va >> (12 + 9k)) mod SETS): they all fit at once."""
    sets = entries // ways
    occupancy: dict[int, int] = {}
    tags, out = set(), []
    for _ in range(50 * entries):
        if len(out) == entries:
            break
        f = pool.page(size_weights)
        tag = pool.dut_tag(f)
        s = (f["va"] >> (12 + 9 * f["size"])) % sets
        if tag in tags or occupancy.get(s, 0) == ways:
            continue
        tags.add(tag)
        occupancy[s] = occupancy.get(s, 0) + 1
        out.append(f)
    return out


class ExactScenario:
    """A working set that fits (no capacity misses): fills it, refills pages invalidations removed,
    looks pages up (and some addresses outside it) and invalidates now and then."""

    exact = True

    def __init__(self, rng: random.Random, entries: int, ways: int, lookups: int, inv_rate: float,
                 pool: Pool | None = None, size_weights=(70, 20, 10), match_src: bool = False):
        self.rng = rng
        self.pool = pool or Pool(rng, n_did=3, n_pasid=2, windows=8, pages=64, match_src=match_src)
        self.ws = working_set(self.pool, entries, ways, size_weights)
        if len(self.ws) != entries:
            raise RuntimeError(f"found only {len(self.ws)} of {entries} working-set pages (widen the Pool)")
        self.lookups_left = lookups
        self.inv_rate = inv_rate

    def next_fill(self, sb) -> dict | None:
        if self.lookups_left and self.rng.random() < 0.02:
            return dict(self.pool.page(), size=RESERVED_SIZE)   # dropped: must not take a way
        # only pages the model does not hold: one version per tag, so the IOTLB can hold all of them
        missing = [f for f in self.ws if not sb.holds(f)]
        if not missing:
            return None
        f = dict(self.rng.choice(missing))
        f.update(pa=self.rng.getrandbits(52), rw=self.rng.getrandbits(1), us=self.rng.getrandbits(1),
                 d=int(self.rng.random() < 0.7))
        return f

    def next_inv(self, sb) -> dict | None:
        if self.lookups_left == 0 or self.rng.random() > self.inv_rate:
            return None
        return self.pool.invalidation(self.rng.choice(self.ws))

    def next_lookup(self, sb) -> dict | None:
        if self.lookups_left == 0:
            return None
        self.lookups_left -= 1
        if self.rng.random() < 0.9:
            return self.pool.lookup_in(self.rng.choice(self.ws), write_share=0.3)
        return self.pool.lookup_any()


class OverlapScenario(ExactScenario):
    """4K pages inside cached 2M pages of the same DID and PASID, and page-in-PASID invalidations of
    one 4K page inside a 2M page: while the walk runs, a lookup of a cached 4K page that is not
    invalidated must still hit it (the smallest covering page wins, rtl/iotlb.sv), exactly as the model
    says."""

    def __init__(self, rng: random.Random, entries: int, ways: int, lookups: int, match_src: bool = False):
        super().__init__(rng, entries, ways, lookups, inv_rate=0.05,
                         pool=Pool(rng, n_did=1, n_pasid=1, windows=4, pages=64, match_src=match_src),
                         size_weights=(50, 50, 0))
        self.small = [f for f in self.ws if f["size"] == 0]
        self.big = [f for f in self.ws if f["size"] == 1]

    def next_inv(self, sb) -> dict | None:
        if self.lookups_left == 0 or not self.big or self.rng.random() > self.inv_rate:
            return None
        big = self.rng.choice(self.big)
        addr = (big["va"] & ~((1 << 21) - 1)) + (self.rng.randrange(512) << 12)
        return dict(kind=PKG.enum_value("iotlb_inv_e", "INV_PASID_PAGE"), did=big["did"], pasid=big["pasid"],
                    addr=addr, am=0)

    def next_lookup(self, sb) -> dict | None:
        if self.lookups_left == 0:
            return None
        self.lookups_left -= 1
        return self.pool.lookup_in(self.rng.choice(self.small or self.ws), write_share=0.3)


class StreamScenario(ExactScenario):
    """Throughput and latency: the working set is filled first, then lookups back to back with no
    back-pressure and no invalidations; every one must hit."""

    def __init__(self, rng: random.Random, entries: int, ways: int, lookups: int, match_src: bool = False):
        super().__init__(rng, entries, ways, lookups, inv_rate=0.0, match_src=match_src)
        self.ws = [dict(f, d=1) for f in self.ws]   # a write may use every page

    def next_fill(self, sb) -> dict | None:
        missing = [f for f in self.ws if not sb.holds(f)]
        return missing[0] if missing else None

    def next_lookup(self, sb) -> dict | None:
        if any(not sb.holds(f) for f in self.ws) or self.lookups_left == 0:
            return None
        self.lookups_left -= 1
        return self.pool.lookup_in(self.rng.choice(self.ws), write_share=0.3)


# ------------------------------------------------------------------------------------------------
# Testbench
# ------------------------------------------------------------------------------------------------
class Ready:
    """A random ready signal: low with probability `busy`, and now and then low for a burst of up to
    `burst` cycles (long enough to hold lookups in flight across a whole invalidation walk)."""

    def __init__(self, rng: random.Random, busy: float, burst: int):
        self.rng, self.busy, self.burst, self.left = rng, busy, burst, 0

    def __call__(self) -> int:
        if self.left:
            self.left -= 1
            return 0
        if self.busy and self.rng.random() < 0.02:
            self.left = self.rng.randint(1, self.burst)
            return 0
        return int(self.rng.random() >= self.busy)


class Tb:
    def __init__(self, dut, stats: Stats, rng: random.Random):
        self.dut, self.stats, self.rng = dut, stats, rng
        # the build parameters, passed by tests/sim/test_iotlb.py
        self.entries = int(os.environ["IOTLB_ENTRIES"])
        self.ways = int(os.environ["IOTLB_WAYS"])
        self.sets = self.entries // self.ways
        self.user_mask = (1 << int(os.environ["IOTLB_USER_W"])) - 1
        self.match_src = os.environ.get("IOTLB_MATCH_SRC", "0") == "1"
        self.caches = Caches()
        self.filled_by: set[tuple[int, Page]] = set()   # MATCH_SRC: (src, model page) pairs a fill made
        self.pending: deque[dict] = deque()    # lookups accepted, not answered, in order
        self.seq = 0
        self.cycle = 0
        self.hits = 0
        self.answered = 0
        self.model_held = 0                    # lookups the model had a usable page for when accepted
        self.accept_cycles: list[int] = []
        self.latencies: list[int] = []
        self.inv = None                        # the invalidation accepted and not yet done
        Clock(dut.clk_i, 4, unit="ns").start()

    async def reset(self):
        d = self.dut
        for s in (d.lkup_valid_i, d.fill_valid_i, d.inv_valid_i, d.rsp_ready_i, d.inv_done_ready_i,
                  d.lkup_i, d.lkup_user_i, d.fill_i, d.inv_i):
            s.value = 0
        d.rst_ni.value = 0
        await ClockCycles(d.clk_i, 3)
        d.rst_ni.value = 1
        await ClockCycles(d.clk_i, 2)

    def fail(self, what: str, expected, actual):
        self.stats.mismatches += 1
        raise AssertionError(f"cycle {self.cycle}: {what}\n  expected: {expected}\n  actual:   {actual}\n"
                             f"  {self.stats.rerun_hint()}")

    # --- model side ------------------------------------------------------------------------------
    def holds(self, f: dict) -> bool:
        """The model holds the page of fill ``f`` for its source (MATCH_SRC) or its DID + PASID."""
        size = SIZE_BYTES[f["size"]]
        versions = self.caches.iotlb.get((f["did"], f["pasid"], f["va"] & ~(size - 1), size), ())
        return any(not self.match_src or (f["src"], p) in self.filled_by for p in versions)

    def legal_for(self, page: Page, lk: dict) -> bool:
        return usable(page, lk) and (not self.match_src or (lk["src"], page) in self.filled_by)

    def on_fill(self, f: dict):
        page = fill_page(f)
        if page is None:
            return
        self.caches.add_iotlb(page)
        if self.match_src:
            self.filled_by.add((f["src"], page))
        for lk in self.pending:                # legal for lookups in flight too
            if self.legal_for(page, lk):
                lk["legal"].append(page)

    def on_inv(self, inv: dict):
        model_invalidate(self.caches, inv)
        if self.match_src:                     # forget the sources of the pages the model dropped
            held = {p for versions in self.caches.iotlb.values() for p in versions}
            self.filled_by = {(src, p) for src, p in self.filled_by if p in held}
        old = [lk for lk in self.pending if not lk["old"]]
        if len(old) > 1:
            self.fail("more than one lookup in flight when an invalidation was accepted", "at most 1 (the "
                      "answer in the response register)", [lk["seq"] for lk in old])
        for lk in old:                         # accepted before it: in flight
            lk["old"] = True
        self.inv = dict(inv, accepted=self.cycle, old_answered=self.cycle)

    def on_lookup(self, lk: dict):
        pages = self.caches.iotlb_pages(lk["did"], lk["pasid"], lk["va"])
        legal = [p for p in pages if self.legal_for(p, lk)]
        self.pending.append(dict(lk, seq=self.seq, accepted=self.cycle, legal=legal, at_accept=bool(legal),
                                 old=False))
        self.accept_cycles.append(self.cycle)
        self.seq += 1

    def on_response(self, raw: int, user: int, exact: bool):
        rsp = PKG.unpack("iotlb_rsp_t", raw)
        if not self.pending:
            self.fail("response without a lookup", "nothing", rsp)
        lk = self.pending.popleft()
        req = (f"lookup #{lk['seq']} did={lk['did']:#x} pasid={lk['pasid']:#x} src={lk['src']:#x} "
               f"va={lk['va']:#x} is_write={lk['is_write']} (accepted cycle {lk['accepted']})")
        if lk["old"] and self.inv is not None:
            self.inv["old_answered"] = self.cycle
        if user != lk["seq"] & self.user_mask:
            self.fail(f"{req}: response out of order (user tag)", lk["seq"] & self.user_mask, user)
        self.latencies.append(self.cycle - lk["accepted"])
        self.answered += 1
        self.model_held += lk["at_accept"]
        self.stats.checked += 1
        if rsp["hit"]:
            self.hits += 1
            got = (SIZE_BYTES[SIZE_CODES.index(rsp["size"])] if rsp["size"] in SIZE_CODES else rsp["size"],
                   rsp["frame"] << 12, rsp["rw"], rsp["us"], rsp["d"])
            if not any(got == (p.size, p.pa, p.rw, p.us, p.dirty) for p in lk["legal"]):
                self.fail(f"{req}: hit on a translation the model does not allow",
                          [fmt_page(p) for p in lk["legal"]] or "miss (no legal page)",
                          f"size={got[0]:#x} pa={got[1]:#x} rw={got[2]} us={got[3]} d={got[4]}")
        else:
            if raw != 0:
                self.fail(f"{req}: miss with non-zero data", "all zero", rsp)
            if exact and lk["at_accept"] and not lk["old"]:
                self.fail(f"{req}: miss although the working set fits and the model holds it",
                          [fmt_page(p) for p in lk["legal"]], "miss")

    def on_done(self):
        inv = self.inv
        if inv is None:
            self.fail("inv_done without an invalidation", "nothing", "inv_done")
        old = [lk["seq"] for lk in self.pending if lk["old"]]
        if old:
            self.fail(f"invalidation accepted at cycle {inv['accepted']} done while lookups accepted "
                      "before it are unanswered", "none", old)
        self.inv = None

    # --- the cycle loop ------------------------------------------------------------------------------
    async def run(self, scenario, busy: float, max_cycles: int):
        d, rng = self.dut, self.rng
        fall, ro = FallingEdge(d.clk_i), ReadOnly()
        fill = inv = lkup = None
        prev_rsp = prev_done = None
        rsp_ready_gen = Ready(rng, busy, 2 * self.sets + 8)
        done_ready_gen = Ready(rng, busy, 2 * self.sets + 8)
        end = self.cycle + max_cycles
        while True:
            await fall
            self.cycle += 1
            self.stats.cycles += 1
            if self.cycle > end:
                self.fail(f"no progress after {max_cycles} cycles", "scenario finished",
                          f"{len(self.pending)} lookups pending, invalidation {self.inv}")
            # drive: an item, once valid, stays until taken
            if fill is None and rng.random() >= busy:
                fill = scenario.next_fill(self)
            if inv is None and rng.random() >= busy:
                inv = scenario.next_inv(self)
            if lkup is None and rng.random() >= busy:
                lkup = scenario.next_lookup(self)
            d.fill_valid_i.value = int(fill is not None)
            if fill is not None:
                entry = dict(fill, va=fill["va"] >> 12, frame=fill["pa"] >> 12)
                del entry["pa"]  # the byte address; the port carries it as frame
                d.fill_i.value = pack("iotlb_entry_t", entry)
            d.inv_valid_i.value = int(inv is not None)
            if inv is not None:
                d.inv_i.value = pack("iotlb_inv_t", dict(inv, addr=inv["addr"] >> 12))
            d.lkup_valid_i.value = int(lkup is not None)
            if lkup is not None:
                if self.match_src and "noise" not in lkup:   # DID/PASID the IOTLB must not look at
                    lkup["noise"] = dict(did=rng.getrandbits(16), pasid=rng.getrandbits(20))
                drv = dict(did=lkup["did"], pasid=lkup["pasid"], src=lkup["src"], va=lkup["va"] >> 12,
                           is_write=lkup["is_write"])
                drv.update(lkup.get("noise", {}))
                d.lkup_i.value = pack("iotlb_lkup_t", drv)
                d.lkup_user_i.value = self.seq & self.user_mask
            rsp_ready = rsp_ready_gen()
            done_ready = done_ready_gen()
            d.rsp_ready_i.value = rsp_ready
            d.inv_done_ready_i.value = done_ready

            await ro
            rsp_valid = int(d.rsp_valid_o.value)
            rsp_raw = (int(d.rsp_o.value), int(d.rsp_user_o.value)) if rsp_valid else None
            done_valid = int(d.inv_done_valid_o.value)
            if prev_rsp is not None and rsp_raw != prev_rsp:
                self.fail("response changed or dropped while stalled", prev_rsp, rsp_raw)
            if prev_done and not done_valid:
                self.fail("inv_done_valid dropped before it was taken", 1, 0)
            prev_rsp = rsp_raw if rsp_valid and not rsp_ready else None
            prev_done = done_valid and not done_ready

            # this cycle's handshakes, in the documented order: fill, invalidation, lookup
            if fill is not None and d.fill_ready_o.value:
                self.on_fill(fill)
                fill = None
            if inv is not None and d.inv_ready_o.value:
                if self.inv is not None:
                    self.fail("a second invalidation accepted before the first one was done", 0, 1)
                self.on_inv(inv)
                inv = None
            if lkup is not None and d.lkup_ready_o.value:
                self.on_lookup(lkup)
                lkup = None
            if rsp_valid and rsp_ready:
                self.on_response(rsp_raw[0], rsp_raw[1], scenario.exact)
            if self.inv is not None:
                in_flight = any(lk["old"] for lk in self.pending)
                if self.inv["accepted"] < self.cycle and not in_flight:
                    deadline = max(self.inv["accepted"] + self.sets + 1, self.inv["old_answered"] + 1)
                    if not done_valid and self.cycle >= deadline:
                        self.fail(f"invalidation accepted at cycle {self.inv['accepted']} not done in time",
                                  f"inv_done_valid by cycle {deadline}", "still busy")
                if done_valid and done_ready:
                    self.on_done()
            elif done_valid:
                self.fail("inv_done_valid without an invalidation", 0, 1)

            if (scenario.lookups_left == 0 and fill is None and inv is None and lkup is None
                    and not self.pending and self.inv is None):
                break


def _count(default: int) -> int:
    return int(os.environ.get("COUNT") or default)


async def run_scenario(dut, make_scenario, busy: float, check=None):
    stats = Stats()
    rng = random.Random(stats.seed)
    tb = Tb(dut, stats, rng)
    try:
        await tb.reset()
        scenario = make_scenario(rng, tb)
        await tb.run(scenario, busy, max_cycles=200 * max(1, scenario.lookups_left) + 10_000)
        if check:
            check(tb, scenario)
        stats.result = "PASS"
        dut._log.info("ENTRIES=%d WAYS=%d: %d lookups, hit rate %.3f (the model held a usable page for "
                      "%.3f), %d cycles", tb.entries, tb.ways, tb.answered, tb.hits / max(1, tb.answered),
                      tb.model_held / max(1, tb.answered), stats.cycles)
    finally:
        stats.write()


@cocotb.test()
async def iotlb_random(dut):
    """Fills, lookups and every invalidation granularity under capacity pressure and back-pressure."""
    def check(tb, sc):
        if tb.hits == 0:
            raise AssertionError(f"no lookup hit at all; {tb.stats.rerun_hint()}")
    await run_scenario(dut, lambda rng, tb: RandomScenario(rng, tb.entries, _count(3000), tb.match_src),
                       busy=0.3, check=check)


@cocotb.test()
async def iotlb_exact(dut):
    """A working set that fits: every lookup not in flight across an invalidation hits exactly when the
    model holds a usable page; invalidations interleaved, back-pressure everywhere."""
    await run_scenario(dut, lambda rng, tb: ExactScenario(rng, tb.entries, tb.ways, _count(3000), 0.02,
                                                          match_src=tb.match_src), busy=0.3)


@cocotb.test()
async def iotlb_overlap(dut):
    """4K pages inside 2M pages; single-page invalidations inside the 2M pages during lookups (exact)."""
    await run_scenario(dut, lambda rng, tb: OverlapScenario(rng, tb.entries, tb.ways, _count(3000),
                                                            tb.match_src), busy=0.2)


@cocotb.test()
async def iotlb_stream(dut):
    """No back-pressure: one lookup accepted per cycle, each answered LATENCY cycles later, all hit."""
    def check(tb, sc):
        n = len(tb.latencies)
        first = tb.accept_cycles[0]
        span = tb.accept_cycles[-1] - first + 1
        dut._log.info("throughput %.3f lookups/cycle (%d lookups in %d cycles), latency %s cycles",
                      n / span, n, span, sorted(set(tb.latencies)))
        if span != n or set(tb.latencies) != {LATENCY} or tb.hits != n:
            raise AssertionError(f"expected {n} lookups in {n} cycles, latency {LATENCY}, {n} hits; got "
                                 f"{span} cycles, latencies {sorted(set(tb.latencies))}, {tb.hits} hits; "
                                 f"{tb.stats.rerun_hint()}")
    await run_scenario(dut, lambda rng, tb: StreamScenario(rng, tb.entries, tb.ways, _count(2000),
                                                           tb.match_src), busy=0.0, check=check)
