"""Per-message limits on guest code: time (epoch ticker), memory (grow probe), formatting.

Time. Every engine runs with ``epoch_interruption``: compiled code checks the
engine's epoch at function entries and loop back-edges and traps with
``TrapCode.INTERRUPT`` once it passes the store's deadline. One daemon thread
per process (``ticker``) increments the epoch of every registered engine every
``TICK_MS`` milliseconds while guest code runs, and each call sets its deadline
from the function's ``timeout_ms`` (``deadline_ticks``). The tick only needs the
GIL for a moment, and while the guest runs the GIL is free (ctypes releases it),
so a timeout fires between ``timeout_ms`` and about ``timeout_ms + 2 * TICK_MS``
after the call started.

Memory. ``Store.set_limits(memory_size=...)`` caps a guest's memory, but a refused
``memory.grow`` only returns -1 to the guest. Modules are compiled with a probe
(``fsworker/memory_probe.py`` rewrites them) that records the size a refused grow
asked for; the host zeroes it before a call and reads it after a failed one
(``MemoryProbe``). Without a probe the host calls a failure a memory-limit failure
when the guest's memory is within one wasm page of the limit.
"""

from __future__ import annotations

import ctypes
import math
import threading
import time
import weakref

import wasmtime

from fsworker.memory_probe import PROBE_EXPORT

# Epoch granularity: a timeout fires between timeout_ms and timeout_ms + 2 ticks
# (plus the thread's wake-up latency). A Python thread waking up costs about
# 40-80 us of CPU on the VMs measured here, so 5 ms keeps the ticker near 1% of a
# core while guests run, and it stops ticking when none has run for IDLE_S.
TICK_MS = 5
IDLE_S = 1.0

# "No time limit": a deadline no worker lives to see (and far from u64 overflow).
NO_DEADLINE = 1 << 62

# Fuel given when metering is on but the function set no fuel limit.
UNLIMITED_FUEL = (1 << 63) - 1

WASM_PAGE = 65536


# ---------------------------------------------------------------------------
# Time: the epoch ticker


class _Ticker:
    """One daemon thread per process that advances the epoch of every guest engine.

    Guests bracket their calls with ``enter()``/``leave()``; after ``IDLE_S``
    without a call in progress the thread sleeps until the next ``enter()``, so an
    idle worker costs no CPU. (The epoch only has to move while guest code runs.)
    """

    def __init__(self) -> None:
        self._engines: weakref.WeakSet[wasmtime.Engine] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._active = 0  # calls in progress
        self._sleeping = False
        self.ticks = 0

    def add(self, engine: wasmtime.Engine) -> None:
        """Tick ``engine`` from now on (started on first use, so fsd never runs one)."""
        with self._lock:
            self._engines.add(engine)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="epoch-ticker", daemon=True)
                self._thread.start()

    def enter(self) -> None:
        """Guest code is about to run: make sure the epoch moves."""
        with self._lock:
            self._active += 1
            sleeping = self._sleeping
        if sleeping:
            self._wake.set()

    def leave(self) -> None:
        """The guest call that ``enter()`` announced is over."""
        with self._lock:
            self._active -= 1

    @property
    def running(self) -> bool:
        """The thread exists (it may be idle)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def sleeping(self) -> bool:
        """The thread waits for a guest call (no ticks)."""
        return self._sleeping

    def _run(self) -> None:
        idle = 0.0
        while True:
            interval = TICK_MS / 1000
            time.sleep(interval)
            for engine in list(self._engines):
                engine.increment_epoch()
            self.ticks += 1
            if self._active:
                idle = 0.0
                continue
            idle += interval
            if idle < IDLE_S:
                continue
            with self._lock:
                if self._active:
                    continue
                self._sleeping = True
                self._wake.clear()
            self._wake.wait()
            self._sleeping = False
            idle = 0.0


ticker = _Ticker()


def deadline_ticks(timeout_ms: int | None, count: int = 1) -> int:
    """Epoch ticks to allow ``count`` messages of ``timeout_ms`` each (one extra tick,
    because the first one may come right after the deadline is set)."""
    if timeout_ms is None:
        return NO_DEADLINE
    return math.ceil(timeout_ms * max(count, 1) / TICK_MS) + 1


# ---------------------------------------------------------------------------
# Memory: the host side of the probe


class MemoryProbe:
    """Reads the probe memory of one instance: the size a refused ``memory.grow`` asked for."""

    def __init__(self, store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        base = ctypes.addressof(memory.data_ptr(store).contents)
        self._slot = ctypes.c_int64.from_address(base)
        self._keep = (store, memory)  # the slot points into their memory

    def reset(self) -> None:
        """Forget earlier refusals (before each call)."""
        self._slot.value = 0

    def refused_bytes(self) -> int:
        """Bytes the last refused grow asked for (0: none since ``reset``)."""
        return max(self._slot.value, 0) * WASM_PAGE


def find_probe(store: wasmtime.Store, exports: wasmtime.InstanceExports) -> MemoryProbe | None:
    """The instance's probe, when its module was compiled with one."""
    probe = exports.get(PROBE_EXPORT)
    if isinstance(probe, wasmtime.Memory):
        return MemoryProbe(store, probe)
    return None


def memory_limit_hit(
    limit: int | None, probe: MemoryProbe | None, memory_size: int | None
) -> int | None:
    """If the failure came from the memory limit, the size that was refused (or the
    current size, without a probe); else None."""
    if limit is None:
        return None
    if probe is not None:
        wanted = probe.refused_bytes()
        return wanted if wanted > limit else None
    if memory_size is not None and memory_size + WASM_PAGE > limit:
        return memory_size
    return None


def fmt_bytes(n: int) -> str:
    """``16 MiB``, ``1.5 MiB``, ``64 KiB``, ``100 bytes``: sizes for one-line messages."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            text = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
            return f"{text} {unit}"
    return f"{n} bytes"
