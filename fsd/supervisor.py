"""Runs and watches the worker processes: spawn (fork+exec), stop, reap, restart.

All of it is driven from fsd's single main loop: nothing here blocks, and
nothing here runs in a signal handler.  Every state change goes through
``Replica.transition``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from fscommon.exitcodes import FATAL_WORKER_EXITS, describe_exit
from fscommon.protocol import EventKind
from fscommon.worker_spec import WorkerSpec
from fsd.backoff import Backoff
from fsd.function_spec import FunctionSpec
from fsd.replica_state import PROCESS_STATES, ReplicaState, check_transition

log = structlog.get_logger("fsd.supervisor")

S = ReplicaState


@dataclass
class SupervisionPolicy:
    """Timeouts and restart limits (fsd flags and config file)."""

    stop_timeout: float = 10.0
    max_restarts: int = 5  # within restart_window, then FATAL
    restart_window: float = 60.0
    backoff: Backoff = field(default_factory=Backoff)


@dataclass
class Replica:
    """One replica of one function and its worker process, if any."""

    function: str
    index: int
    state: ReplicaState = S.STOPPED
    proc: subprocess.Popen[bytes] | None = None
    last_pid: int | None = None
    log_path: Path | None = None
    started_at: float | None = None  # wall clock, for people
    started_mono: float | None = None
    restarts: int = 0
    recent_restarts: list[float] = field(default_factory=list)
    last_exit: str | None = None
    last_error: str | None = None
    retry_at: float | None = None
    kill_at: float | None = None
    counters: dict[str, int] = field(default_factory=dict)
    listeners: list[Callable[[Replica, ReplicaState, ReplicaState, str], None]] = field(
        default_factory=list, repr=False
    )

    @property
    def pid(self) -> int | None:
        """The worker's pid while it has one."""
        return self.proc.pid if self.proc is not None else None

    def transition(self, new: ReplicaState, reason: str) -> None:
        """The one way to change state: check the move, log it, tell the listeners."""
        old = self.state
        check_transition(old, new)
        self.state = new
        log.info(
            "replica state",
            function=self.function,
            replica=self.index,
            old=str(old),
            new=str(new),
            reason=reason,
            pid=self.pid,
        )
        for listener in self.listeners:
            listener(self, old, new, reason)

    def to_public(self) -> dict[str, Any]:
        """What ``fsctl status`` shows."""
        uptime = (
            time.monotonic() - self.started_mono
            if self.started_mono is not None and self.state in PROCESS_STATES
            else None
        )
        return {
            "replica": self.index,
            "state": str(self.state),
            "pid": self.pid,
            "started_at": self.started_at,
            "uptime": uptime,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_error": self.last_error,
            **self.counters,
        }


@dataclass
class FunctionRuntime:
    """A registered function's replicas."""

    spec: FunctionSpec
    replicas: list[Replica] = field(default_factory=list)


class Supervisor:
    """Keeps each function's replicas running as the registry says."""

    def __init__(
        self,
        build_worker_spec: Callable[[FunctionSpec, int], WorkerSpec],
        log_dir: Path,
        policy: SupervisionPolicy | None = None,
    ) -> None:
        self._build_worker_spec = build_worker_spec
        self._log_dir = log_dir
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self.policy = policy or SupervisionPolicy()
        self.functions: dict[str, FunctionRuntime] = {}

    # --- commands --------------------------------------------------------------------------

    def start_function(self, spec: FunctionSpec) -> None:
        """Start every replica of a (new or restored) function."""
        runtime = FunctionRuntime(spec)
        self.functions[spec.name] = runtime
        for index in range(spec.replicas):
            replica = Replica(spec.name, index)
            runtime.replicas.append(replica)
            self._spawn(replica, "created")

    def stop_function(self, name: str) -> None:
        """Ask every replica of a function to stop (SIGTERM; SIGKILL after stop_timeout)."""
        for replica in self.functions[name].replicas:
            self._request_stop(replica, "stop requested")

    def is_stopped(self, name: str) -> bool:
        """True once no replica of the function has a process."""
        runtime = self.functions.get(name)
        return runtime is None or all(r.proc is None for r in runtime.replicas)

    def forget(self, name: str) -> None:
        """Drop a function whose replicas are all stopped."""
        self.functions.pop(name, None)

    def stop_all(self) -> None:
        """Ask every worker to stop (fsd shutdown)."""
        for name in self.functions:
            self.stop_function(name)

    def all_stopped(self) -> bool:
        """True once no worker process is left."""
        return all(self.is_stopped(name) for name in self.functions)

    def worker_pids(self) -> list[int]:
        """Pids of every live worker."""
        return [
            r.proc.pid for rt in self.functions.values() for r in rt.replicas if r.proc is not None
        ]

    # --- the main loop's hooks ---------------------------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        """A worker event (ready, heartbeat, error) arrived."""
        runtime = self.functions.get(event["function"])
        if runtime is None or not 0 <= event["replica"] < len(runtime.replicas):
            return
        replica = runtime.replicas[event["replica"]]
        kind = event["kind"]
        if kind is EventKind.ERROR and event["pid"] == replica.last_pid:
            # May arrive after the exit was reaped; it still belongs to that incarnation.
            replica.last_error = str(event.get("message", ""))[:1000]
            return
        if replica.pid != event["pid"]:
            return  # from a previous incarnation of this replica
        if kind is EventKind.READY and replica.state is S.STARTING:
            replica.transition(S.RUNNING, "worker reported ready")
        elif kind is EventKind.HEARTBEAT:
            replica.counters = {
                k: int(event[k])
                for k in ("received", "processed", "failed", "published")
                if isinstance(event.get(k), int)
            }

    def tick(self) -> None:
        """Reap exited workers, escalate overdue stops, restart replicas whose backoff ended."""
        now = time.monotonic()
        for runtime in self.functions.values():
            for replica in runtime.replicas:
                self._reap(replica)
                if replica.state is S.STOPPING and replica.kill_at and now >= replica.kill_at:
                    self._kill(replica)
                if replica.state is S.BACKOFF and replica.retry_at and now >= replica.retry_at:
                    self._spawn(replica, "backoff ended")

    # --- internals ---------------------------------------------------------------------------

    def _spawn(self, replica: Replica, reason: str) -> None:
        runtime = self.functions[replica.function]
        worker_spec = self._build_worker_spec(runtime.spec, replica.index)
        log_path = self._log_dir / f"{replica.function}.{replica.index}.log"
        with open(log_path, "ab") as logfile:
            # fork+exec of a fresh interpreter: never a bare fork of fsd, whose
            # ZeroMQ and Pulsar client threads do not survive one.
            replica.proc = subprocess.Popen(
                [sys.executable, "-m", "fsworker", "--spec", worker_spec.to_json()],
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,
            )
        replica.last_pid = replica.proc.pid
        replica.log_path = log_path
        replica.started_at = time.time()
        replica.started_mono = time.monotonic()
        replica.retry_at = None
        replica.kill_at = None
        replica.counters = {}
        replica.transition(S.STARTING, reason)

    def _request_stop(self, replica: Replica, reason: str) -> None:
        if replica.state in (S.STARTING, S.RUNNING):
            assert replica.proc is not None
            replica.transition(S.STOPPING, reason)
            replica.kill_at = time.monotonic() + self.policy.stop_timeout
            with contextlib.suppress(ProcessLookupError):
                replica.proc.send_signal(signal.SIGTERM)
        elif replica.state in (S.BACKOFF, S.FATAL, S.EXITED):
            replica.retry_at = None
            replica.transition(S.STOPPED, reason)

    def _kill(self, replica: Replica) -> None:
        if replica.proc is not None:
            log.warning(
                "worker did not stop in time; killing it",
                function=replica.function,
                replica=replica.index,
                pid=replica.proc.pid,
                stop_timeout=self.policy.stop_timeout,
            )
            with contextlib.suppress(ProcessLookupError):
                replica.proc.kill()
        replica.kill_at = None

    def _reap(self, replica: Replica) -> None:
        proc = replica.proc
        if proc is None or proc.poll() is None:
            return
        code = proc.returncode
        replica.proc = None
        replica.last_exit = describe_exit(code)
        if code != 0:
            reason = _last_error_line(replica.log_path)
            if reason:
                replica.last_error = reason
        if replica.state is S.STOPPING:
            replica.transition(S.STOPPED, f"worker exited ({replica.last_exit})")
            return
        replica.transition(S.EXITED, f"worker exited unexpectedly ({replica.last_exit})")
        self._after_unexpected_exit(replica, code)

    def _after_unexpected_exit(self, replica: Replica, code: int) -> None:
        now = time.monotonic()
        if code in FATAL_WORKER_EXITS:
            replica.transition(S.FATAL, f"{describe_exit(code)}: not retried until 'fsctl start'")
            return
        window = self.policy.restart_window
        replica.recent_restarts = [t for t in replica.recent_restarts if now - t < window]
        if len(replica.recent_restarts) >= self.policy.max_restarts:
            replica.transition(
                S.FATAL,
                f"{len(replica.recent_restarts)} restarts within {window:.0f}s; "
                f"not retried until 'fsctl start'",
            )
            return
        replica.recent_restarts.append(now)
        replica.restarts += 1
        delay = self.policy.backoff.delay(len(replica.recent_restarts))
        replica.retry_at = now + delay
        replica.transition(S.BACKOFF, f"restart in {delay:.1f}s")


def _last_error_line(log_path: Path | None) -> str | None:
    """The reason a worker gave for exiting: its last error log line.

    Read at reap time because the worker's ERROR event can arrive after the
    exit is noticed; the log line was written before the process exited.
    """
    if log_path is None:
        return None
    try:
        with open(log_path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
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
