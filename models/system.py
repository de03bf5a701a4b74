"""The model-only platform: host memory, the golden IOMMU, endpoints and the wires between them.

This is the pure-Python twin of the cocotb environment: it implements the ``models.svm.Platform``
interface the SVM driver talks through (registers, config space, memory, ``wait``) and moves TLPs
and MSIs until the system is idle.

* One ``Memory`` and one ``FrameAllocator`` (the physical memory the driver and the processes share).
* The golden ``Iommu`` (``models.iommu``) with a capability profile.
* ``Endpoint``s by requester ID. Every TLP a device sends goes upstream to the IOMMU
  (``receive_tlp``); every TLP the IOMMU sends goes to the device named by its routing ID: the
  Requester ID of a completion, the Destination ID of an ID-routed message (pcie §1.4, §1.5). Both
  directions are FIFOs, so TLPs of one device keep their order (what the PRQ drain of vtd §5.5
  relies on: a device's invalidation completion arrives behind its page requests).
* MSIs: the IOMMU signals events as 32-bit memory writes to the address the driver programmed
  (vtd §1.12). A ``Memory`` observer catches every 4-byte write into the x86 interrupt window
  0xFEE0_0000-0xFEEF_FFFF and queues it; ``step`` delivers it as ``driver.interrupt(address, data)``
  (never from inside the IOMMU call that wrote it).

``step()`` makes one unit of progress, in this priority: deliver an MSI, deliver a TLP to a device,
deliver a TLP to the IOMMU, let the endpoints produce TLPs. ``wait`` and ``run_until_idle`` repeat
it. ``wait`` may be re-entered from the driver's interrupt handler (it only pops queues and calls
out after its own state is consistent)."""

from __future__ import annotations

from collections import deque
from typing import Callable

from . import tlp
from .endpoint import Endpoint
from .host import FrameAllocator, Memory
from .iommu import Iommu, IommuConfig
from .svm import WaitTimeout
from .vtd import PROFILE, CapabilityProfile

MSI_WINDOW = (0xFEE0_0000, 0xFEF0_0000)
IOMMU_RID = 0x0000  # the IOMMU / root complex: requester of its messages, completer of its completions


class RoutingError(Exception):
    """A TLP from the IOMMU names a destination no endpoint has."""


class System:
    """Model-only platform (see the module docstring). ``frames`` covers ``[ram_base, ram_base +
    ram_size)``; endpoints are added with ``add_endpoint``; the driver is attached with
    ``attach(driver)`` so MSIs reach it."""

    def __init__(self, profile: CapabilityProfile = PROFILE, ram_base: int = 0x1000_0000,
                 ram_size: int = 0x1000_0000):
        self.mem = Memory()
        self.frames = FrameAllocator(self.mem, ram_base, ram_size)
        self.iommu = Iommu(self.mem, IommuConfig(profile=profile, iommu_rid=IOMMU_RID))
        self.endpoints: dict[int, Endpoint] = {}
        self.driver = None
        self.msis: list[tuple[int, int]] = []  # every MSI seen, in order (address, data)
        self.reg_writes: list[tuple[int, int, int]] = []  # (offset, value, size), in order
        self.steps = 0
        self._msi_queue: deque[tuple[int, int]] = deque()
        self._upstream: deque[bytes] = deque()
        self._downstream: deque[bytes] = deque()
        self.mem.on_write.append(self._observe)

    # --- assembly -------------------------------------------------------------------------------
    def add_endpoint(self, endpoint: Endpoint) -> Endpoint:
        rid = endpoint.requester_id
        if rid in self.endpoints or rid == IOMMU_RID:
            raise ValueError(f"requester ID {rid:#06x} is already taken")
        self.endpoints[rid] = endpoint
        return endpoint

    def attach(self, driver) -> None:
        """MSIs from now on go to ``driver.interrupt``; ``None`` holds them back (they stay queued
        and are delivered once a driver is attached again)."""
        self.driver = driver

    def send_upstream(self, data: bytes) -> None:
        """Queue a TLP as if a device had sent it (a testbench injecting traffic the endpoint models
        would not produce)."""
        self._upstream.append(bytes(data))

    def _observe(self, addr: int, data: bytes) -> None:
        if MSI_WINDOW[0] <= addr < MSI_WINDOW[1] and len(data) == 4:
            msi = (addr, int.from_bytes(data, "little"))
            self.msis.append(msi)
            self._msi_queue.append(msi)

    # --- the platform interface of models.svm -----------------------------------------------------
    def reg_read32(self, off: int) -> int:
        return self.iommu.reg_read(off, 4)

    def reg_read64(self, off: int) -> int:
        return self.iommu.reg_read(off, 8)

    def reg_write32(self, off: int, value: int) -> None:
        self._reg_write(off, value, 4)

    def reg_write64(self, off: int, value: int) -> None:
        self._reg_write(off, value, 8)

    def _reg_write(self, off: int, value: int, size: int) -> None:
        self.reg_writes.append((off, value, size))
        self.iommu.reg_write(off, value, size)
        self._downstream.extend(self.iommu.take_tx())  # e.g. an IQT write ran the queue

    def cfg_read(self, device: int, off: int, size: int) -> int:
        return self._endpoint(device).cfg_read(off, size)

    def cfg_write(self, device: int, off: int, size: int, value: int) -> None:
        self._endpoint(device).cfg_write(off, value, size)

    def _endpoint(self, rid: int) -> Endpoint:
        ep = self.endpoints.get(rid)
        if ep is None:
            raise RoutingError(f"no endpoint with requester ID {rid:#06x}")
        return ep

    def wait(self, predicate: Callable[[], bool], what: str, timeout: int) -> None:
        """Step until ``predicate()`` holds. An idle system that does not satisfy it never will:
        that raises at once; so does running ``timeout`` steps."""
        for _ in range(timeout):
            if predicate():
                return
            if not self.step() and not predicate():
                raise WaitTimeout(f"waiting for {what}: the system is idle and the condition is false")
        if not predicate():
            raise WaitTimeout(f"waiting for {what}: not reached after {timeout} steps")

    # --- running ----------------------------------------------------------------------------------
    def step(self) -> bool:
        """One unit of progress; False when there was nothing to do."""
        self.steps += 1
        if self._msi_queue and self.driver is not None:
            address, data = self._msi_queue.popleft()
            self.driver.interrupt(address, data)
            return True
        if self._downstream:
            data = self._downstream.popleft()
            self._upstream.extend(self._endpoint(self._destination(data)).receive_tlp(data))
            return True
        if self._upstream:
            self._downstream.extend(self.iommu.receive_tlp(self._upstream.popleft()))
            return True
        for ep in self.endpoints.values():
            out = ep.poll()
            if out:
                self._upstream.extend(out)
                return True
        return False

    def run_until_idle(self, max_steps: int = 100_000) -> int:
        """Step until nothing is left to do; returns the number of steps. Raises ``WaitTimeout``
        when ``max_steps`` is not enough (a livelock)."""
        for n in range(max_steps):
            if not self.step():
                return n
        raise WaitTimeout(f"the system is still busy after {max_steps} steps")

    @staticmethod
    def _destination(data: bytes) -> int:
        """Routing ID of a TLP travelling to a device: Requester ID of a completion, Destination ID
        of an ID-routed message (pcie §1.4, §1.5)."""
        pkt = tlp.decode(data, strict=False)
        if isinstance(pkt, tlp.Completion):
            return pkt.requester_id
        dest = getattr(pkt, "dest_id", None)
        if dest is None:
            raise RoutingError(f"{type(pkt).__name__} from the IOMMU has no ID routing")
        return dest
