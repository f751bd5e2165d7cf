"""Make sure a worker never outlives fsd."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None, sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` when the parent exits; False if it already has.

    Linux only; elsewhere heartbeats lost by fsd are the fallback.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    # The parent may have died before prctl took effect: then we were re-parented.
    return parent_pid is None or os.getppid() == parent_pid


def parent_alive(parent_pid: int | None) -> bool:
    """True while the process that started us is still our parent."""
    return parent_pid is None or os.getppid() == parent_pid


def start_orphan_watchdog(
    parent_pid: int | None, on_orphan: Callable[[], None], grace: float, interval: float = 0.5
) -> threading.Thread | None:
    """Exit the worker if fsd goes away, even when the main thread is stuck in the guest.

    The parent-death signal asks for a graceful drain, but Python runs signal
    handlers only between bytecodes, so a guest looping inside wasm would never
    see it. This thread runs regardless (ctypes releases the GIL while wasm
    runs): it asks for a drain, then ends the process after ``grace`` seconds.
    """
    if parent_pid is None:
        return None

    def watch() -> None:
        while parent_alive(parent_pid):
            time.sleep(interval)
        on_orphan()
        time.sleep(grace)
        os._exit(75)  # WorkerExit.PARENT_GONE; the drain did not finish in time

    thread = threading.Thread(target=watch, name="orphan-watchdog", daemon=True)
    thread.start()
    return thread
