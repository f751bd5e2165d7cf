"""Fault injection for supervision tests: FSWORKER_FAULT=<function>:<fault>.

Only the named function's workers are affected, so one fsd can run healthy
and faulty functions side by side. Faults:

* ``exit-at-start``: exit with CRASH before loading the module (a worker that
  dies at start, like one whose dependencies are broken).
* ``never-ready``: load and subscribe but never report ready (a stuck start).
* ``stop-receiving[:MARKER]``: heartbeat on but take no message (a consumer the client
  never brought back after a broker restart; fsd's stall watchdog, fsd/stall.py).
* ``crash-after-publish[:MARKER]``: exit after the first batch's outputs are confirmed by
  the broker but before its inputs are acknowledged (the window that makes
  at-least-once duplicate, and that effectively-once must cover). With a
  MARKER path the fault fires once: only while that file does not exist yet.

And FSWORKER_ABORT_ON=<function>:<prefix>: the worker calls ``abort()`` (SIGABRT,
as a native crash in the host would) when its guest is called on a batch with a
payload that starts with ``prefix``: a message that kills the worker outright.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Sequence
from typing import Any

import structlog

from fsworker.guest import Guest

log = structlog.get_logger("fsworker.faults")


class Fault(enum.StrEnum):
    """The faults FSWORKER_FAULT can inject (see the module docstring)."""

    EXIT_AT_START = "exit-at-start"
    NEVER_READY = "never-ready"
    CRASH_AFTER_PUBLISH = "crash-after-publish"
    STOP_RECEIVING = "stop-receiving"


def fault_for(function: str) -> Fault | None:
    """The fault injected into this function's workers, if any.

    An unknown fault name is logged and ignored, so a typo in a test shows in the
    replica's log instead of silently testing nothing.
    """
    raw = os.environ.get("FSWORKER_FAULT", "")
    for item in raw.split(","):
        name, sep, spec = item.partition(":")
        if sep and name == function:
            word, _, marker = spec.partition(":")
            try:
                fault = Fault(word)
            except ValueError:
                log.error(
                    "unknown injected fault ignored",
                    fault=word,
                    known=", ".join(Fault),
                )
                return None
            if marker:
                if os.path.exists(marker):
                    return None
                open(marker, "w").close()
            return fault
    return None


def stop_receiving(loop: Any) -> None:
    """Make the processing loop take nothing from now on (it still heartbeats and stops)."""
    log.warning("injected fault: taking no messages")

    def take_nothing() -> list:
        time.sleep(0.1)
        return []

    loop._take_batch = take_nothing


def abort_prefix(function: str) -> bytes | None:
    """The payload prefix that makes this function's workers abort, if any."""
    raw = os.environ.get("FSWORKER_ABORT_ON", "")
    for item in raw.split(","):
        name, sep, prefix = item.partition(":")
        if sep and name == function and prefix:
            return prefix.encode()
    return None


def abort_on_payload(guest: Guest, prefix: bytes) -> None:
    """Make ``guest.call_batch`` abort the process when an input starts with ``prefix``."""
    inner = guest.call_batch

    def call_batch(inputs: Sequence[bytes], metas: Any = None) -> Any:
        if any(data.startswith(prefix) for data in inputs):
            log.warning("injected fault: aborting on a poison payload", prefix=prefix.decode())
            os.abort()
        return inner(inputs, metas)

    guest.call_batch = call_batch  # type: ignore[method-assign]
