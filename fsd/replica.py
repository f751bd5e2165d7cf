"""One replica of one function: its worker process, its state and the one way to change it."""

from __future__ import annotations

import enum
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import structlog

from fscommon.protocol import MAX_BUSY_MS
from fsd.metrics import ReplicaTotals
from fsd.replica_state import PROCESS_STATES, ReplicaState, check_transition
from fsd.restart_policy import RestartTracker

log = structlog.get_logger("fsd.supervisor")

S = ReplicaState
COUNTER_FIELDS = ("received", "processed", "failed", "retried", "dead_lettered", "published")

TransitionListener = Callable[["Replica", ReplicaState, ReplicaState, str], None]


class AfterStop(enum.Enum):
    """What happens once a replica's stop completes (None: it stays STOPPED)."""

    RESTART = "restart"  # it hung or never got ready: back off and start again
    RETIRE = "retire"  # scaled away or assigned elsewhere: forget it


@dataclass
class Replica:
    """One replica of one function and its worker process, if any."""

    function: str
    index: int
    tracker: RestartTracker
    state: ReplicaState = S.STOPPED
    proc: subprocess.Popen[bytes] | None = None
    last_pid: int | None = None
    log_path: Path | None = None
    log_offset: int = 0  # where this incarnation's lines start in log_path
    started_at: float | None = None  # wall clock, for people
    started_mono: float | None = None
    running_since: float | None = None
    last_heartbeat: float | None = None
    busy_for: float = 0.0  # seconds the last beat announced a guest call may take
    suspect_marker: Path | None = None  # fscommon/paths.py suspect_marker, when it has a ledger
    restarts: int = 0
    last_exit: str | None = None
    last_error: str | None = None
    retry_at: float | None = None
    kill_at: float | None = None
    after_stop: AfterStop | None = None
    generation: int = 0  # the function's generation this incarnation was spawned with
    counters: dict[str, int] = field(default_factory=dict)  # this incarnation's (status)
    totals: ReplicaTotals = field(default_factory=ReplicaTotals)  # since fsd started (metrics)
    ps: psutil.Process | None = field(default=None, repr=False)
    listeners: list[TransitionListener] = field(default_factory=list, repr=False)

    @property
    def pid(self) -> int | None:
        """The worker's pid while it has one."""
        return self.proc.pid if self.proc is not None else None

    def transition(self, new: ReplicaState, reason: str) -> None:
        """The one way to change state: check the move, log it, tell the listeners."""
        old = self.state
        check_transition(old, new)
        self.state = new
        # A deadline belongs to the state that set it and dies with it: a kill time
        # left over from STOPPING (or a retry time from BACKOFF) would make
        # next_deadline() lie in the past for ever and spin fsd's loop.
        if new is not S.STOPPING:
            self.kill_at = None
        if new is not S.BACKOFF:
            self.retry_at = None
        log.info(
            "replica state",
            function=self.function,
            replica=self.index,
            old=str(old),
            new=str(new),
            reason=reason,
            pid=self.pid or self.last_pid,
        )
        for listener in self.listeners:
            listener(self, old, new, reason)

    def on_heartbeat(self, event: dict[str, Any], now: float) -> None:
        """A beat of the current worker: when it came, its announced guest call, its counters."""
        self.last_heartbeat = now
        busy = event.get("busy_ms", 0)
        ok = isinstance(busy, int) and not isinstance(busy, bool) and 0 <= busy <= MAX_BUSY_MS
        self.busy_for = busy / 1000 if ok else 0.0
        self.counters = {k: int(event[k]) for k in COUNTER_FIELDS if isinstance(event.get(k), int)}

    def resources(self) -> dict[str, Any]:
        """RSS and CPU% of the worker (psutil), or nothing if it has no process."""
        if self.ps is None or self.proc is None:
            return {}
        try:
            with self.ps.oneshot():
                return {
                    "rss_bytes": self.ps.memory_info().rss,
                    "cpu_percent": self.ps.cpu_percent(None),
                }
        except psutil.Error:
            return {}

    def to_public(self) -> dict[str, Any]:
        """What ``fsctl status`` shows."""
        alive = self.started_mono is not None and self.state in PROCESS_STATES
        return {
            "replica": self.index,
            "state": str(self.state),
            "pid": self.pid,
            "started_at": self.started_at,
            "uptime": time.monotonic() - self.started_mono if alive else None,
            "heartbeat_age": (
                time.monotonic() - self.last_heartbeat
                if alive and self.last_heartbeat is not None
                else None
            ),
            "restarts": self.restarts,
            "generation": self.generation,
            "last_exit": self.last_exit,
            "last_error": self.last_error,
            **{k: self.counters.get(k, 0) for k in COUNTER_FIELDS},
            **self.resources(),
        }


def last_error_line(log_path: Path | None, offset: int) -> str | None:
    """The reason a worker gave for exiting: its last error log line.

    Read at reap time because the worker's ERROR event can arrive after the
    exit is noticed; the log line was written before the process exited.
    """
    if log_path is None:
        return None
    try:
        with open(log_path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(offset, fh.tell() - 16384))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("error", "critical"):
            return str(record.get("event", ""))[:1000]
    return None
