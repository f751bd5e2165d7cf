"""fsd's signal handling: handlers only enqueue, the main loop does the work.

SIGTERM and SIGINT ask for a stop; SIGCHLD has nothing to say beyond "a
worker exited", which the supervisor finds out by reaping. Every signal also
writes a byte to a socket pair (``signal.set_wakeup_fd``) whose read end fsd's
poller watches, so the loop wakes at once instead of at the end of its tick.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable


class SignalWakeup:
    """Installs fsd's signal handlers; ``fileno()`` becomes readable on every signal.

    Keep the object for as long as the loop runs: the wakeup descriptor is its
    socket pair's write end, closed when the object goes.
    """

    def __init__(self, on_stop: Callable[[], None]) -> None:
        """``on_stop`` runs in the signal handler: it must only set a flag."""
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)

        def request_stop(signum: int, _frame: object) -> None:
            on_stop()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        # SIGCHLD only needs to wake the poller (via the wakeup fd); the loop reaps.
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def fileno(self) -> int:
        """The descriptor to poll for readability."""
        return self._read.fileno()

    def drain(self) -> None:
        """Empty the read end, so the next poll waits for the next signal."""
        try:
            while self._read.recv(4096):
                pass
        except BlockingIOError:
            pass
