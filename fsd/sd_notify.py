"""systemd's notify protocol (sd_notify(3)) without libsystemd.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET``: an AF_UNIX datagram
socket, a filesystem path or, when it starts with '@', an abstract address.
fsd sends ``READY=1`` once it is really ready (see docs/systemd.md),
``STATUS=...`` lines for ``systemctl status``, ``STOPPING=1`` when it starts
draining, and, when the unit sets ``WatchdogSec=``, ``WATCHDOG=1`` every half
``WATCHDOG_USEC`` from its main loop, so a hung loop stops petting and systemd
restarts fsd.

Outside systemd (no ``NOTIFY_SOCKET``) every call is a cheap no-op.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, MutableMapping

_ENV_KEYS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def socket_address(value: str) -> str | bytes:
    """The sendto() address for a NOTIFY_SOCKET value ('@name' is abstract: NUL + name)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def watchdog_interval(environ: MutableMapping[str, str], pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None if no watchdog.

    WATCHDOG_PID, when set, names the process the watchdog is meant for; any
    other process (a child that inherited the environment) must not pet it.
    """
    raw = environ.get("WATCHDOG_USEC", "")
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    target = environ.get("WATCHDOG_PID", "")
    if target and target != str(pid):
        return None
    return usec / 1_000_000 / 2


class Notifier:
    """Sends notify messages to one socket; tracks when the watchdog is due."""

    def __init__(
        self,
        address: str | None,
        watchdog: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = address or None
        self.watchdog = watchdog if self.address else None
        self._clock = clock
        self._last_pet: float | None = None

    @classmethod
    def from_environment(
        cls, environ: MutableMapping[str, str] | None = None, unset: bool = True
    ) -> Notifier:
        """Read NOTIFY_SOCKET/WATCHDOG_USEC; with ``unset`` remove them from the environment.

        Removing them keeps workers and the JVM (which inherit fsd's
        environment) from talking to systemd on fsd's behalf.
        """
        env = os.environ if environ is None else environ
        notifier = cls(env.get("NOTIFY_SOCKET"), watchdog_interval(env, os.getpid()))
        if unset:
            for key in _ENV_KEYS:
                env.pop(key, None)
        return notifier

    @property
    def enabled(self) -> bool:
        """True when running under a notify-aware service manager."""
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; False if not sent (never raises)."""
        if self.address is None or not assignments:
            return False
        payload = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(payload, socket_address(self.address))
        except OSError:
            # systemd gone or the socket unreachable: nothing useful to do about it.
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """READY=1 (and a status line); starts the watchdog clock."""
        lines = ["READY=1"] + ([f"STATUS={status}"] if status else [])
        self._last_pet = self._clock()
        return self.notify(*lines)

    def status(self, text: str) -> bool:
        """A one-line status shown by ``systemctl status``."""
        return self.notify(f"STATUS={_one_line(text)}")

    def stopping(self, status: str | None = None) -> bool:
        """STOPPING=1: fsd has begun its shutdown."""
        return self.notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def pet_watchdog(self) -> bool:
        """WATCHDOG=1 if half the watchdog interval passed since the last one; else nothing.

        Call it from every turn of the main loop: only a loop that keeps
        turning keeps the service alive.
        """
        if self.watchdog is None:
            return False
        now = self._clock()
        if self._last_pet is not None and now - self._last_pet < self.watchdog:
            return False
        self._last_pet = now
        return self.notify("WATCHDOG=1")


def _one_line(text: str) -> str:
    return " ".join(text.split())
