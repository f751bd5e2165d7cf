"""Exit codes: the contract between fsworker and fsd, and fsctl's codes for scripts.

Worker codes follow sysexits.h where one fits, so they read naturally in logs.
"""

from __future__ import annotations

import enum


class WorkerExit(enum.IntEnum):
    """How an fsworker process ended; fsd's supervision decides from this."""

    OK = 0  # clean stop after SIGTERM: drained, flushed, acknowledged
    CRASH = 1  # unexpected failure (an uncaught exception): restart with backoff
    BAD_CONFIG = 64  # EX_USAGE: the function spec is invalid -> FATAL, no retry
    BAD_MODULE = 65  # EX_DATAERR: module missing, not wasm, wrong ABI, traps at init -> FATAL
    BROKER_UNAVAILABLE = 69  # EX_UNAVAILABLE: cannot reach Pulsar -> restart with backoff
    PARENT_GONE = 75  # EX_TEMPFAIL: fsd died; the worker exited so it is not orphaned


FATAL_WORKER_EXITS = frozenset({WorkerExit.BAD_CONFIG, WorkerExit.BAD_MODULE})


class CtlExit(enum.IntEnum):
    """fsctl exit codes (documented in the README)."""

    OK = 0
    FAILED = 1  # the command reached fsd (or the broker) and failed
    USAGE = 2  # bad command-line usage (click's own code)
    UNREACHABLE = 3  # fsd did not answer at its endpoint


def describe_exit(returncode: int) -> str:
    """Say what a ``Popen.returncode`` means: 'exit 65 (BAD_MODULE)' or 'signal 9 (SIGKILL)'."""
    import signal

    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown"
        return f"signal {-returncode} ({name})"
    try:
        return f"exit {returncode} ({WorkerExit(returncode).name})"
    except ValueError:
        return f"exit {returncode}"
