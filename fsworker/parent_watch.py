"""Make sure a worker never outlives fsd."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

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
