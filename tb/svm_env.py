"""The SVM software loop against the RTL: endpoint agents (``models.endpoint``) and the operating
system's SVM driver (``models.svm.SvmDriver``) around ``iommu_top``, everything scored by the golden model
through ``tb.iommu_env.IommuEnv`` (every TLP to a device, every byte the DUT writes: DMA, A/D updates,
PRQ descriptors, wait-status words, MSIs; registers and fault records at check points).

World
    One ``IommuEnv`` (DUT + model + scoreboard, its two mirrored memories ``ref``/``dut_mem``). One
    ``EndpointAgent`` per device, each owning an ``Endpoint``: TLPs it emits go upstream through
    ``IommuEnv.send`` (the model sees them in the order the DUT gets them); every TLP the DUT sends and
    the scoreboard matched is routed to the endpoint its routing ID names (``models.system``'s rule:
    Requester ID of a completion, Destination ID of an ID-routed message) and handed to
    ``Endpoint.receive_tlp``. Agents never poll: they act when a TLP arrives or a test gives them a job.
    The driver talks to the hardware through ``SvmPlatform`` (``models.svm.Platform``):

    * ``mem``: reads come from the DUT's memory (the driver acts on what the DUT really wrote: PRQ
      descriptors, wait-status words); writes go to the reference memory, which ``IommuEnv`` mirrors
      into the DUT's (a CPU write). ``frames``: the fixture's frame allocator.
    * registers: ``IommuEnv.reg_read32`` / ``reg_write32`` (writes reach the model first, then the
      DUT over AXI-Lite; 8-byte registers as two halves, low first).
    * ``cfg_read`` / ``cfg_write``: straight to the endpoint objects (config space does not pass the
      IOMMU).
    * ``wait(predicate, what, timeout)``: simulated cycles (``timeout`` is in cycles) until the
      predicate holds; it wakes on every DUT output and at least every ``POLL_CYCLES``; then
      ``WaitTimeout`` naming ``what``, the seed and the rerun command.
    * MSIs: a DUT write into the interrupt window that the scoreboard matched becomes
      ``driver.interrupt(address, data)`` (after ``irq_delay`` cycles: a slow driver), delivered in
      the driver thread (nested inside a ``wait``, like ``models.system``, or as a section of its own).

    The driver is synchronous code. It runs in a thread through cocotb's bridge
    (``cocotb.task.bridge``); each platform call that needs simulated time is a coroutine run through
    ``cocotb.task.resume``, so only one side runs at a time.

Determinism: sections and fences
    The golden model is synchronous; the DUT is not. The model is fed in the order the testbench hands
    things to the DUT, so the two agree only if nothing the CPU does races with a request the DUT is
    still working on. Every piece of driver or CPU code (an interrupt handler, bind/unbind, munmap, a
    process touching its pages, anything that writes host memory or registers) therefore runs as a
    *section* behind a *fence* (``Mode``):

    * DRAIN: devices may not start anything new: requests the IOMMU has to translate (untranslated
      reads, ATS translation requests; the only requests that bring answers that make more work) wait
      in the testbench, in order. What is already in flight goes out: posted TLPs (writes, page
      requests, messages: PCIe does not let a later posted TLP pass them) and translated reads (AT=10b:
      the device holds the translation, and it may answer an ATS invalidation only after those reads
      completed, pcie §3.5). The testbench waits until the DUT has done everything sent (every
      predicted TLP and memory write seen, both memory ports quiet; the memories are compared there)
      and nothing of that kind is left.
    * SECTION: the code runs in the driver thread. What the driver waits for still goes out at once:
      ATS Invalidate Completions (a wait descriptor after a device-TLB invalidation completes only after
      them), the translated reads such a completion waits for, and PRI page requests / stop markers (the
      PRQ drain of vtd §5.5 relies on a device's invalidation completion arriving behind its page
      requests). They may pass the device's held reads (PCIe lets requests pass non-posted ones); a
      held posted request could only come from work given inside the section, and agents take work
      only when OPEN, so ``Upstream`` raises ``OrderingError`` rather than reorder it. Before the
      section's next register or memory write the testbench waits again until the DUT has handled what
      went out (a *sync point*), so a write never races with it. TLPs to the devices are delivered at
      once, in the DUT's order.
    * OPEN again: the held requests go out in order.

    This is what makes model and DUT agree without an "alternatives" model. True CPU/device races are
    covered elsewhere (``iommu_ad`` plays an A/D race on both sides) and by the RTL's own drain rules
    (an inv_wait completes only after every request received before it has drained).

ITags
    The model issues a batch's device-TLB invalidations at the IQT write, each with the lowest free ITag;
    the DUT frees an ITag when the completion arrives and may reuse it at once. A completion that
    overtook the DUT's later invalidate requests would make the DUT pick other ITags than the model
    (both legal), so a completion goes to the DUT only once the DUT has sent every invalidate request
    the model predicted (``SvmEnv._completions_may_go``): a device that answers a little later.

ATS invalidation time-outs
    The RTL times out a device-TLB invalidation after IQ_TIMEOUT cycles (a parameter of tb/rtl/
    iommu_tb.sv); the model has no clock, it is told with ``Iommu.timeout_dev_tlb()``. The testbench
    calls it at the point where the DUT shows the time-out: the fault-event MSI the model did not
    predict yet, or an FSTS read with ITE set that the model does not have, while the model has an
    invalidation outstanding to a device that never answers (``InvalidateMode.NEVER``).
"""

from __future__ import annotations

import enum
import functools
import logging
import threading
from collections import Counter, deque
from typing import Callable

import cocotb
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, Event, First, Lock

from models import tlp as T
from models.endpoint import Endpoint, InvalidateMode, Job, JobStatus
from models.host import Mm
from models.svm import FAULT_VECTOR, SvmDriver, WaitTimeout
from models.system import MSI_WINDOW, RoutingError, System
from models.vtd import REGISTERS, ResponseCode
from tb.iommu_env import IommuEnv, IommuStats, Knobs, Mismatch

POLL_CYCLES = 32  # a driver wait re-checks its condition at least this often
#: idle cycles a fence requires of the DUT (no TLP, no memory burst, nothing predicted outstanding): the
#: memory agents' idle() already covers bursts in flight, this covers the gaps inside the pipeline
FENCE_QUIET = 64
DRIVER_TIMEOUT = 400_000  # cycles a driver wait may take before WaitTimeout
FSTS = REGISTERS["FSTS"]
FSTS_ITE = FSTS.field("ite")


# ================================================================================================
# Pure Python: classification, routing, the upstream queue, interrupt line
# (tests/models/test_svm_env.py tests these without a simulator)
# ================================================================================================


class Kind(enum.Enum):
    """What a device TLP is, for the section rule."""

    READ = "read"  # non-posted, needs the IOMMU's translation: untranslated reads, translation requests
    TREAD = "translated read"  # non-posted, AT=10b: the device already holds the translation
    WRITE = "write"  # posted memory write
    PRI = "page request"  # PRI page request or stop marker (posted message)
    INV_DONE = "invalidate completion"  # ATS Invalidate Completion (posted message)
    OTHER = "other"  # anything else (completions, other messages, malformed bytes)


#: kinds that go out inside a section (module docstring)
PASS_IN_SECTION = (Kind.PRI, Kind.INV_DONE, Kind.TREAD)
NON_POSTED = (Kind.READ, Kind.TREAD)


def classify(data: bytes) -> Kind:
    try:
        pkt = T.decode(bytes(data), strict=False)
    except T.TlpError:
        return Kind.OTHER
    if isinstance(pkt, T.MemRead):
        return Kind.TREAD if pkt.at == T.AT_TRANSLATED else Kind.READ
    if isinstance(pkt, T.MemWrite):
        return Kind.WRITE
    if isinstance(pkt, T.PageRequest):
        return Kind.PRI
    if isinstance(pkt, T.AtsInvalidateCompletion):
        return Kind.INV_DONE
    return Kind.OTHER


def destination(data: bytes) -> int | None:
    """The device a TLP from the IOMMU goes to (``models.system.System``'s routing rule), or None when
    it has no ID routing or does not decode."""
    try:
        return System._destination(bytes(data))
    except (T.TlpError, RoutingError):
        return None


class OrderingError(AssertionError):
    """The testbench would have to reorder a device's posted TLPs to keep a section closed."""


class Mode(enum.Enum):
    """Where the system is with respect to driver sections (module docstring)."""

    OPEN = "open"  # devices run freely
    DRAIN = "drain"  # a section is wanted: nothing new starts, what is in flight finishes
    SECTION = "section"  # the driver runs: only what it waits for goes out


class Upstream:
    """Device TLPs on their way to the IOMMU, in emission order. ``take(mode, completions)`` gives the
    next one that may go, keeping each device's order as PCIe does (only non-posted requests may be
    passed, by anything; nothing passes a device's held posted TLP):

    * OPEN: the oldest TLP of any device with nothing older held;
    * DRAIN: the oldest that is not a ``READ`` with only non-posted requests older held for its device;
    * SECTION: the oldest of ``PASS_IN_SECTION`` with only non-posted requests older held for its
      device (a held write would have to be overtaken: ``OrderingError``).

    With ``completions=False`` ATS Invalidate Completions are held too (see ``SvmEnv._sender``)."""

    def __init__(self):
        self._q: deque[tuple[int, bytes, Kind]] = deque()

    def __len__(self) -> int:
        return len(self._q)

    def put(self, rid: int, data: bytes) -> None:
        self._q.append((rid, bytes(data), classify(data)))

    def held(self) -> list[tuple[int, bytes, Kind]]:
        return list(self._q)

    def _index(self, mode: Mode, completions: bool) -> int | None:
        older: dict[int, list[tuple[bytes, Kind]]] = {}  # device -> its held TLPs seen so far
        for i, (rid, data, kind) in enumerate(self._q):
            before = older.setdefault(rid, [])
            if kind is Kind.INV_DONE and not completions:
                allowed = False
            elif mode is Mode.OPEN:
                allowed = True
            elif mode is Mode.DRAIN:
                allowed = kind is not Kind.READ
            else:
                allowed = kind in PASS_IN_SECTION
            if allowed:
                if not before:
                    return i
                if mode is not Mode.OPEN and all(k in NON_POSTED for _, k in before):
                    return i
                if mode is Mode.SECTION:
                    d, k = next((d, k) for d, k in before if k not in NON_POSTED)
                    if k in (Kind.WRITE, Kind.OTHER):
                        raise OrderingError(
                            f"device {rid:#06x}: a {kind.value} would overtake its held {k.value} "
                            f"({describe(d)}) inside a section (PCIe: posted requests stay in order)")
            before.append((data, kind))
        return None

    def ready(self, mode: Mode, completions: bool = True) -> bool:
        """Whether ``take(mode, completions)`` would give something."""
        return self._index(mode, completions) is not None

    def take(self, mode: Mode, completions: bool = True) -> tuple[int, bytes, Kind] | None:
        i = self._index(mode, completions)
        if i is None:
            return None
        item = self._q[i]
        del self._q[i]
        return item


def describe(data: bytes) -> str:
    try:
        return repr(T.decode(bytes(data), strict=False))
    except T.TlpError as e:
        return f"undecodable {bytes(data).hex()} ({e})"


class IrqLine:
    """MSIs between the DUT's write and the driver: each becomes ready ``delay`` cycles after it was
    seen (a slow interrupt path), and ready ones are taken in order."""

    def __init__(self, delay: int = 0):
        self.delay = delay
        self._waiting: deque[tuple[int, int, int]] = deque()  # (due cycle, address, data)
        self.ready: deque[tuple[int, int]] = deque()
        self.seen = 0

    def raise_(self, now: int, address: int, data: int) -> None:
        self.seen += 1
        self._waiting.append((now + self.delay, address, data))
        self.advance(now)

    def advance(self, now: int) -> None:
        while self._waiting and self._waiting[0][0] <= now:
            _, a, d = self._waiting.popleft()
            self.ready.append((a, d))

    def next_due(self) -> int | None:
        return self._waiting[0][0] if self._waiting else None

    def pending(self) -> bool:
        return bool(self._waiting or self.ready)


# ================================================================================================
# The driver, counting what it does
# ================================================================================================


class TbDriver(SvmDriver):
    """``SvmDriver`` with counters: ``serviced['requests']`` page request descriptors handled (stop
    markers apart), ``['faults']`` demand faults resolved (Success from ``_resolve``), one count per
    response code sent, ``['stop_markers']``."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.serviced: Counter = Counter()

    def _handle_request(self, d):
        self.serviced["stop_markers" if d.is_stop_marker() else "requests"] += 1
        r = super()._handle_request(d)
        if r is not None:
            self.serviced[ResponseCode(r.rc).name] += 1
        return r

    def _resolve(self, svm, d):
        rc = super()._resolve(svm, d)
        if rc == ResponseCode.SUCCESS:
            self.serviced["faults"] += 1
        return rc


# ================================================================================================
# The platform (runs in the driver thread)
# ================================================================================================


class _DriverMemory:
    """The driver's view of host memory: reads from the DUT's memory, writes to the reference memory
    (mirrored into the DUT's as CPU writes)."""

    def __init__(self, svm: SvmEnv):
        self._svm = svm

    def read(self, addr: int, n: int) -> bytes:
        return self._svm.env.dut_mem.read(addr, n)

    def read64(self, addr: int) -> int:
        return self._svm.env.dut_mem.read64(addr)

    def write(self, addr: int, data: bytes) -> None:
        self._svm.env.ref.write(addr, data)

    def write64(self, addr: int, value: int) -> None:
        self._svm.env.ref.write64(addr, value)


class SvmPlatform:
    """``models.svm.Platform`` over the simulation (module docstring). Only the driver thread calls it."""

    def __init__(self, svm: SvmEnv):
        self.svm = svm
        self.mem = _DriverMemory(svm)
        self.frames = svm.env.host.alloc
        self._read32 = resume(svm.env.reg_read32)
        self._write32 = resume(svm._reg_write32)
        self._sleep = resume(svm._sleep)

    def reg_read32(self, off: int) -> int:
        v = self._read32(off)
        if off == FSTS.offset and FSTS_ITE.get(v):
            self.svm._dut_shows_timeout()
        return v

    def reg_read64(self, off: int) -> int:
        return self.reg_read32(off) | self.reg_read32(off + 4) << 32

    def reg_write32(self, off: int, value: int) -> None:
        self._write32(off, value)

    def reg_write64(self, off: int, value: int) -> None:
        self._write32(off, value & 0xFFFF_FFFF)
        self._write32(off + 4, value >> 32)

    def cfg_read(self, device: int, off: int, size: int) -> int:
        return self.svm.endpoint(device).cfg_read(off, size)

    def cfg_write(self, device: int, off: int, size: int, value: int) -> None:
        self.svm.endpoint(device).cfg_write(off, value, size)

    def wait(self, predicate: Callable[[], bool], what: str, timeout: int) -> None:
        start = now = self._sleep(0)
        while True:
            self.svm._deliver_ready()
            if predicate():
                return
            if now - start > timeout:
                self.svm.stats.mismatches += 1
                raise WaitTimeout(f"{self.svm.stats.name}: the driver waited {timeout} cycles for {what}; "
                                  f"{self.svm.env.port_state()}\n  {self.svm.state()}\n  "
                                  f"{self.svm.stats.rerun_hint()}")
            now = self._sleep(POLL_CYCLES)


# ================================================================================================
# Endpoint agents
# ================================================================================================


class EndpointAgent:
    """One device: an ``Endpoint`` plus the wiring. Tests give it work with ``await dma(...)`` /
    ``await stop_pasid(...)`` (taken only outside sections); what it emits goes to ``SvmEnv``'s
    upstream queue."""

    def __init__(self, svm: SvmEnv, ep: Endpoint):
        self.svm = svm
        self.ep = ep
        self.rid = ep.requester_id
        self.received: Counter = Counter()  # TLPs from the IOMMU, by type
        self.jobs: list[Job] = []  # jobs given to the device and (maybe) still running

    def _emit(self, out: list[bytes]) -> None:
        for data in out:
            self.svm._put(self.rid, data)

    def deliver(self, data: bytes) -> None:
        """A TLP from the IOMMU (already matched by the scoreboard)."""
        try:
            self.received[type(T.decode(data, strict=False)).__name__] += 1
        except T.TlpError:
            self.received["undecodable"] += 1
        self._emit(self.ep.receive_tlp(data))

    async def dma(self, pasid: int | None, va: int, length: int, write: bool, data: bytes | None = None,
                  pmr: bool = False) -> Job:
        await self.svm.gate()
        job = self.ep.dma(pasid, va, length, write, data, pmr)
        self.jobs.append(job)
        self._emit(self.ep.poll())
        return job

    async def stop_pasid(self, pasid: int) -> None:
        await self.svm.gate()
        self.ep.stop_pasid(pasid)
        self._emit(self.ep.poll())

    async def release_invalidations(self) -> None:
        await self.svm.gate()
        self.ep.release_invalidations()
        self._emit(self.ep.poll())

    def busy(self) -> bool:
        """Something of this device is still on its way (a job, a request, a page request group, an
        invalidation to answer)."""
        e = self.ep
        self.jobs = [j for j in self.jobs if j.status is JobStatus.RUNNING]
        return bool(self.jobs or e.outstanding_tags
                    or e.page_request_groups or e.queued_page_request_groups or e.stopping
                    or (e.pending_invalidations and e.invalidate_mode is InvalidateMode.ANSWER))


# ================================================================================================
# The environment
# ================================================================================================


class SvmStats(IommuStats):
    """IommuStats plus the SVM numbers (in the JSON record too)."""

    def __init__(self):
        super().__init__()
        self.page_requests = 0   # page request descriptors the driver serviced
        self.demand_faults = 0   # of them resolved by faulting the page in
        self.sections = 0
        self.fence_cycles = 0    # cycles spent draining before sections
        self.section_cycles = 0  # cycles spent inside sections (driver code running)

    def extra(self) -> dict:
        return {**super().extra(), "page_requests": self.page_requests, "demand_faults": self.demand_faults,
                "sections": self.sections, "fence_cycles": self.fence_cycles,
                "section_cycles": self.section_cycles}


class SvmEnv:
    """See the module docstring. Typical use::

        svm = SvmEnv(dut)
        await svm.start()                                   # reset, driver.init() (a section)
        a = svm.add_endpoint(Endpoint(0x0100))
        mm = await svm.new_mm()
        await svm.call(mm.mmap, VA, 4 * PAGE)
        pasid = await svm.call(svm.driver.bind, a.rid, mm)
        job = await a.dma(pasid, VA, 4 * PAGE, write=True, data=...)
        await svm.wait_jobs([job])
        await svm.check_point()                             # registers and fault records compared
    """

    def __init__(self, dut, stats: SvmStats | None = None, knobs: Knobs | None = None, prq_order: int = 0,
                 irq_delay: int = 0, driver_timeout: int = DRIVER_TIMEOUT):
        self.stats = stats or SvmStats()
        self.env = IommuEnv(dut, self.stats, None, knobs)
        self.rng = self.env.rng
        self.dut = dut
        self.log = logging.getLogger("cocotb.svm_env")
        self.agents: dict[int, EndpointAgent] = {}
        self.upstream = Upstream()
        self.irq = IrqLine(irq_delay)
        self.mode = Mode.OPEN
        self.released = 0  # TLPs sent inside the current section since its last sync point
        self.unrouted: list[bytes] = []  # TLPs from the DUT to a device without an agent
        self.timeouts = 0  # ATS invalidation time-outs told to the model
        self.expect_timeouts = False
        self.failure: BaseException | None = None
        self._lock = Lock()
        self._sender_busy = False
        self._sender_wake = Event()
        self._sender_idle = Event()
        self._irq_wake = Event()
        self._open = Event()
        self._open.set()
        self.activity = Event()  # something happened (a TLP to a device, a section ended ...)
        self._main = threading.current_thread()
        self.platform = SvmPlatform(self)
        self.driver = TbDriver(self.platform, prq_order=prq_order, timeout=driver_timeout)
        env = self.env
        env.on_tx.append(self._downstream)
        env.on_dut_write.append(self._msi_seen)
        env.before_dut_write.append(self._before_dut_write)
        self._wrap_ref()

    # --- set-up -----------------------------------------------------------------------------------
    def _wrap_ref(self) -> None:
        """CPU writes from the driver thread inside a section first wait for the sync point."""
        ref = self.env.ref
        write, zero = ref.write, ref.zero

        def synced_write(addr, data):
            self._cpu_write()
            write(addr, data)

        def synced_zero(addr, n):
            self._cpu_write()
            zero(addr, n)

        ref.write, ref.zero = synced_write, synced_zero

    def _cpu_write(self) -> None:
        if threading.current_thread() is self._main:
            return
        if self.mode is not Mode.SECTION:
            raise AssertionError("testbench: driver-thread memory write outside a section")
        if self.released:
            resume(self._sync)()

    async def start(self) -> None:
        """Reset, registers compared with the model, background tasks, then ``driver.init()``."""
        env = self.env
        await env.reset()
        await env.compare_registers()
        cocotb.start_soon(self._guard(self._sender()))
        cocotb.start_soon(self._guard(self._irq_task()))
        await self.call(self.driver.init)

    def add_endpoint(self, ep: Endpoint) -> EndpointAgent:
        if ep.requester_id in self.agents:
            raise ValueError(f"requester ID {ep.requester_id:#06x} is already taken")
        a = EndpointAgent(self, ep)
        self.agents[ep.requester_id] = a
        if ep.invalidate_mode is InvalidateMode.NEVER:
            self.expect_timeouts = True
        return a

    def endpoint(self, rid: int) -> Endpoint:
        a = self.agents.get(rid)
        if a is None:
            raise RoutingError(f"no endpoint with requester ID {rid:#06x}")
        return a.ep

    async def new_mm(self, levels: int = 4) -> Mm:
        """A process address space (its page directory is written: a section)."""
        return await self.call(lambda: Mm(self.env.ref, self.env.host.alloc, levels))

    def cycles(self) -> int:
        return self.env.cycles()

    # --- background tasks ---------------------------------------------------------------------------
    async def _guard(self, coro):
        try:
            await coro
        except BaseException as e:
            if self.failure is None:
                self.failure = e
            self.activity.set()
            self._open.set()
            raise

    def check(self) -> None:
        """Raise the first failure of a background task or of the scoreboard."""
        if self.failure is not None:
            raise self.failure
        self.env.sb.check()

    def _put(self, rid: int, data: bytes) -> None:
        self.upstream.put(rid, data)
        self._sender_wake.set()

    async def _sender(self) -> None:
        """Hands device TLPs to the DUT (through the model) in order, by the section rule."""
        env = self.env
        while True:
            item = self.upstream.take(self.mode, self._completions_may_go())
            if item is None:
                self._sender_busy = False
                self._sender_idle.set()
                self._sender_wake.clear()
                await self._sender_wake.wait()
                continue
            self._sender_busy = True
            self._sender_idle.clear()
            rid, data, kind = item
            if self.mode is Mode.SECTION:
                self.released += 1
            await env.send(data, f"{kind.value} from device {rid:#06x}")

    def _completions_may_go(self) -> bool:
        """An ATS Invalidate Completion goes to the DUT only once the DUT has sent every ATS Invalidate
        Request the model predicted so far. The model issues a batch's device-TLB invalidations at the
        IQT write, each with the lowest free ITag; the DUT frees an ITag when its completion arrives and
        may reuse it at once, so a completion that overtook the DUT's later requests would make it pick
        other ITags than the model (both legal). Holding it a little keeps both on the same ITags."""
        return ("AtsInvalidateRequest",) not in self.env.sb.tlps

    async def _irq_task(self) -> None:
        """Turns ready MSIs into sections (when no section takes them first)."""
        clk = self.dut.clk_i
        while True:
            self.irq.advance(self.cycles())
            if self.irq.ready:
                await self.section(None)
                continue
            due = self.irq.next_due()
            self._irq_wake.clear()
            if due is None:
                await self._irq_wake.wait()
            else:
                await First(self._irq_wake.wait(), ClockCycles(clk, max(1, due - self.cycles())))

    # --- DUT hooks (main thread) ---------------------------------------------------------------------
    def _downstream(self, data: bytes) -> None:
        rid = destination(data)
        agent = self.agents.get(rid) if rid is not None else None
        if agent is None:
            self.unrouted.append(bytes(data))
        else:
            agent.deliver(data)
        self._sender_wake.set()  # (a matched invalidate request may let a completion go)
        self.activity.set()

    def _msi_seen(self, addr: int, data: bytes) -> None:
        if MSI_WINDOW[0] <= addr < MSI_WINDOW[1] and len(data) == 4:
            self.irq.raise_(self.cycles(), addr, int.from_bytes(data, "little"))
            self._irq_wake.set()
            self.activity.set()

    def _before_dut_write(self, addr: int, data: bytes) -> None:
        """The fault-event MSI the model has not predicted: maybe the DUT's ATS invalidation time-out."""
        if (MSI_WINDOW[0] <= addr < MSI_WINDOW[1] and len(data) == 4
                and int.from_bytes(data, "little") == FAULT_VECTOR and addr not in self.env.sb.data):
            self._dut_shows_timeout()

    def _dut_shows_timeout(self) -> None:
        """The DUT shows FSTS.ITE (or its MSI): tell the model its oldest invalidation timed out, if
        the model has one outstanding, does not have ITE yet, and a device never answers."""
        env, model = self.env, self.env.model
        if not self.expect_timeouts or model.field("FSTS", "ite") or not model.iq.outstanding:
            return
        origin = env._origin_for("ATS invalidation time-out (the DUT set FSTS.ITE)")
        with env._model(origin):
            out = model.timeout_dev_tlb()
        for x in out:
            env.sb.expect_tlp(x, origin)
        self.timeouts += 1

    # --- sections -------------------------------------------------------------------------------------
    async def gate(self) -> None:
        """Wait until no fence is up (agents take work only then)."""
        while self.mode is not Mode.OPEN:
            self.check()
            self._open.clear()
            await self._open.wait()

    async def _fence(self) -> None:
        """DRAIN until the DUT has done everything sent and nothing postable is left; then SECTION."""
        self.mode = Mode.DRAIN
        self._open.clear()
        clk = self.dut.clk_i
        while True:
            while self._sender_busy or self.upstream.ready(Mode.DRAIN, self._completions_may_go()):
                self.check()
                self._sender_wake.set()
                await ClockCycles(clk, 1)
            await self.env.quiesce(registers=False, quiet=FENCE_QUIET)
            if not self._sender_busy and not self.upstream.ready(Mode.DRAIN, self._completions_may_go()):
                break
        del self.env._window[:-256]  # fault-record suspects: keep the recent requests only
        self.released = 0
        self.mode = Mode.SECTION

    def _open_up(self) -> None:
        self.mode = Mode.OPEN
        self.released = 0
        self._open.set()
        self._sender_wake.set()
        self.activity.set()

    async def _sync(self) -> None:
        """A sync point inside a section: the DUT has handled everything that went out in it."""
        if self.released:
            self.released = 0
            await self.env.quiesce(registers=False, quiet=FENCE_QUIET)

    async def _reg_write32(self, off: int, value: int) -> None:
        await self._sync()
        await self.env.reg_write32(off, value)

    async def _sleep(self, cycles: int) -> int:
        """(Driver thread) let ``cycles`` pass, waking early on DUT output or a ready MSI; returns the
        cycle count."""
        if cycles:
            self.env.progress.clear()
            await First(self.env.progress.wait(), ClockCycles(self.dut.clk_i, cycles))
        self.irq.advance(self.cycles())
        self.check()
        return self.cycles()

    def _deliver_ready(self) -> None:
        """(Driver thread) hand the ready MSIs to the driver (it defers them while busy)."""
        while self.irq.ready:
            address, data = self.irq.ready.popleft()
            self.driver.interrupt(address, data)

    def _in_thread(self, fn, args):
        result = fn(*args) if fn is not None else None
        self._deliver_ready()
        return result

    async def section(self, fn: Callable | None, *args):
        """Run ``fn(*args)`` in the driver thread behind a fence (module docstring), then the MSIs that
        are ready; returns ``fn``'s result (its exception propagates)."""
        async with self._lock:
            self.irq.advance(self.cycles())
            if fn is None and not self.irq.ready:
                return None
            self.check()
            t0 = self.cycles()
            await self._fence()
            t1 = self.cycles()
            self.stats.sections += 1
            try:
                return await bridge(self._in_thread)(fn, args)
            finally:
                self._open_up()
                self._count()
                self.stats.fence_cycles += t1 - t0
                self.stats.section_cycles += self.cycles() - t1

    async def call(self, fn: Callable, *args):
        """Driver or CPU code as a section (``svm.call(svm.driver.bind, rid, mm)``)."""
        return await self.section(fn, *args)

    def _count(self) -> None:
        s = self.driver.serviced
        self.stats.page_requests = s["requests"]
        self.stats.demand_faults = s["faults"]

    # --- waiting and checking -------------------------------------------------------------------------
    def busy(self) -> bool:
        """Anything left to do: device work, TLPs waiting, MSIs, a section, DUT work."""
        return bool(any(a.busy() for a in self.agents.values()) or len(self.upstream) or self._sender_busy
                    or self.irq.pending() or self._lock.locked() or not self.env.sb.idle())

    def state(self) -> str:
        """What is still going on, for failure messages."""
        parts = []
        for a in self.agents.values():
            e = a.ep
            running = [j for j in a.jobs if j.status is JobStatus.RUNNING]
            parts.append(f"device {a.rid:#06x}: {len(running)} job(s) running, tags {e.outstanding_tags}, "
                         f"PRGs {sorted(e.page_request_groups)}, queued PRGs "
                         f"{len(e.queued_page_request_groups)}, invalidations {e.pending_invalidations}, "
                         f"stopping {sorted(e.stopping)}")
        parts.append(f"{len(self.upstream)} TLP(s) held upstream; mode {self.mode.value}; "
                     f"MSIs pending={self.irq.pending()}")
        parts += [f"predicted, not seen: {p}" for p in self.env.sb.pending()[:8]]
        return "\n  ".join(parts)

    async def until(self, pred: Callable[[], bool], what: str, timeout: int = 200_000,
                    every: int = 1000) -> None:
        """Sleep until ``pred()``: woken by activity (TLPs to devices, sections ending), checked at least
        every ``every`` cycles (for conditions no TLP to a device announces, e.g. DMA data landing)."""
        t_end = self.cycles() + timeout
        while not pred():
            self.check()
            if self.cycles() > t_end:
                self.stats.mismatches += 1
                raise Mismatch(f"{self.stats.name}: waited {timeout} cycles for {what}\n  {self.state()}\n"
                               f"  {self.stats.rerun_hint()}")
            self.activity.clear()
            await First(self.activity.wait(), ClockCycles(self.dut.clk_i, every))
        self.check()

    async def inject(self, rid: int, data: bytes) -> None:
        """Bytes a device sends that its endpoint model would not produce (malformed or unexpected TLPs):
        queued behind what the devices already emitted, outside sections."""
        await self.gate()
        self._put(rid, data)

    async def wait_jobs(self, jobs: list[Job], timeout: int = 400_000) -> None:
        await self.until(lambda: all(j.status is not JobStatus.RUNNING for j in jobs),
                         f"{len(jobs)} DMA job(s) to end", timeout)

    async def idle(self, timeout: int = 400_000) -> None:
        """Wait until nothing is left to do anywhere (``busy()`` false)."""
        await self.until(lambda: not self.busy(), "the system to go idle", timeout)

    async def check_point(self) -> None:
        """Everything settled (fence: memories compared), then every register and the fault records
        against the model (records are not cleared: the driver's fault handler does that)."""
        await self.idle()
        async with self._lock:
            await self._fence()
            try:
                await self.env.compare_faults(clear=False)
                await self.env.compare_registers()
            finally:
                self._open_up()

    def finish(self) -> None:
        self._count()
        self.env.finish()


def svm_test(**kw):
    """Decorator: a cocotb test with a started ``SvmEnv(dut, **kw)``; the body gets the env; afterwards
    everything settles, a last check point, endpoint findings (protocol violations by the host, errors in
    what the devices received) must be empty, PASS and the numbers. A failure logs the seed and what was
    still going on."""

    def deco(body):
        @functools.wraps(body)
        async def test(dut):
            stats = SvmStats()
            svm = SvmEnv(dut, stats, **kw)
            try:
                await svm.start()
                await body(svm)
                await svm.check_point()
                for a in svm.agents.values():
                    if a.ep.violations or a.ep.errors:
                        raise AssertionError(f"device {a.rid:#06x}: protocol violations by the host "
                                             f"{a.ep.violations}, errors in what it received {a.ep.errors}")
                stats.result = "PASS"
                dut._log.info("%s: %d device TLPs, %d TLPs to devices, %d memory bytes matched; %d page "
                              "requests serviced (%d demand faults), %d sections, %d cycles", stats.name,
                              stats.checked, svm.env.sb.tlps_matched, svm.env.sb.bytes_matched,
                              svm.driver.serviced["requests"], svm.driver.serviced["faults"],
                              stats.sections, svm.cycles())
            except BaseException:
                dut._log.error("%s failed at cycle %d; %s\n  %s", stats.name, svm.cycles(),
                               stats.rerun_hint(), svm.state())
                raise
            finally:
                svm.finish()
                stats.write()

        return cocotb.test(test)

    return deco


__all__ = ["EndpointAgent", "IrqLine", "Kind", "Mode", "OrderingError", "SvmEnv", "SvmPlatform", "SvmStats",
           "TbDriver", "Upstream", "classify", "destination", "svm_test"]
