"""Runs and watches the worker processes: spawn (fork+exec), stop, reap, restart, scale, roll.

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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import structlog

from fscommon.exitcodes import FATAL_WORKER_EXITS, describe_exit
from fscommon.protocol import MAX_BUSY_MS, EventKind, ProtocolError, decode_heartbeat
from fscommon.worker_spec import WorkerSpec
from fsd.function_spec import FunctionSpec
from fsd.metrics import ReplicaTotals
from fsd.replica_state import PROCESS_STATES, ReplicaState, check_transition
from fsd.restart_policy import RestartPolicy, RestartTracker

log = structlog.get_logger("fsd.supervisor")

S = ReplicaState
COUNTER_FIELDS = ("received", "processed", "failed", "retried", "dead_lettered", "published")

TransitionListener = Callable[["Replica", ReplicaState, ReplicaState, str], None]


@dataclass
class SupervisionPolicy:
    """Timeouts and restart limits (fsd flags and config file)."""

    stop_timeout: float = 10.0  # SIGTERM -> SIGKILL
    heartbeat_timeout: float = 10.0  # RUNNING without a heartbeat this long: hung
    ready_timeout: float = 60.0  # STARTING this long without 'ready': stuck
    restart: RestartPolicy = field(default_factory=RestartPolicy)


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
    restarts: int = 0
    last_exit: str | None = None
    last_error: str | None = None
    retry_at: float | None = None
    kill_at: float | None = None
    # What happens once a stop completes: None (stay STOPPED), "restart" (it hung),
    # "retire" (scaled away).
    after_stop: str | None = None
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
            "last_exit": self.last_exit,
            "last_error": self.last_error,
            **{k: self.counters.get(k, 0) for k in COUNTER_FIELDS},
            **self.resources(),
        }


@dataclass
class Rollout:
    """A rolling restart: one replica at a time, each waiting for RUNNING."""

    pending: deque[int]
    current: int | None = None
    phase: str = ""  # "stopping" or "starting"
    done: bool = False
    error: str | None = None
    rolled: list[int] = field(default_factory=list)


@dataclass
class FunctionRuntime:
    """A registered function's replicas."""

    spec: FunctionSpec
    replicas: list[Replica] = field(default_factory=list)
    rollout: Rollout | None = None

    @property
    def busy(self) -> str | None:
        """Why a new scale/restart/update must wait, or None."""
        if self.rollout is not None and not self.rollout.done:
            return "a rolling restart is in progress"
        if any(r.after_stop == "retire" for r in self.replicas):
            return "a scale-down is in progress"
        return None


class Supervisor:
    """Keeps each function's replicas in the state the registry asks for."""

    def __init__(
        self,
        build_worker_spec: Callable[[FunctionSpec, int], WorkerSpec],
        log_dir: Path,
        policy: SupervisionPolicy | None = None,
        on_transition: TransitionListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._build_worker_spec = build_worker_spec
        self._log_dir = log_dir
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self.policy = policy or SupervisionPolicy()
        self._on_transition = on_transition
        self._clock = clock
        self.functions: dict[str, FunctionRuntime] = {}

    # --- commands --------------------------------------------------------------------------

    def start_function(self, spec: FunctionSpec) -> None:
        """Add a (new or restored) function; spawn its replicas if it is meant to run."""
        runtime = FunctionRuntime(spec)
        self.functions[spec.name] = runtime
        for index in range(spec.replicas):
            replica = self._new_replica(spec.name, index)
            runtime.replicas.append(replica)
            if spec.desired == "running":
                self._spawn(replica, "function started")

    def stop_function(self, name: str) -> None:
        """Ask every replica of a function to stop (SIGTERM; SIGKILL after stop_timeout)."""
        runtime = self.functions[name]
        runtime.rollout = None
        for replica in runtime.replicas:
            self._request_stop(replica, "stop requested")

    def start_replicas(self, name: str) -> list[int]:
        """Start every replica that is not running (STOPPED, FATAL, BACKOFF): 'fsctl start'."""
        started = []
        for replica in self.functions[name].replicas:
            if replica.state in (S.STOPPED, S.FATAL, S.BACKOFF):
                replica.tracker.reset()
                self._spawn(replica, "start requested")
                started.append(replica.index)
        return started

    def scale(self, name: str, count: int) -> None:
        """Grow by spawning new replicas, or shrink by draining the highest-numbered ones."""
        runtime = self.functions[name]
        runtime.spec.replicas = count
        while len(runtime.replicas) < count:
            replica = self._new_replica(name, len(runtime.replicas))
            runtime.replicas.append(replica)
            if runtime.spec.desired == "running":
                self._spawn(replica, "scaled up")
        for replica in runtime.replicas[count:]:
            replica.after_stop = "retire"
            self._request_stop(replica, "scaled down")
        self._prune_retired(runtime)

    def begin_rollout(self, name: str) -> Rollout:
        """Restart every replica, one at a time, each waiting for RUNNING before the next."""
        runtime = self.functions[name]
        runtime.rollout = Rollout(pending=deque(r.index for r in runtime.replicas))
        self._advance_rollout(runtime)
        return runtime.rollout

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

    # --- the main loop's hooks ---------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest pending restart or kill time, so the main loop wakes up for it."""
        times = [
            t
            for rt in self.functions.values()
            for r in rt.replicas
            for t in (
                r.retry_at if r.state is S.BACKOFF else None,
                r.kill_at if r.state is S.STOPPING and r.proc is not None else None,
            )
            if t is not None
        ]
        return min(times) if times else None

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
        if kind is EventKind.HEARTBEAT and event["pid"] == replica.last_pid:
            # Also the last beat of a worker already reaped: its final counts.
            try:
                replica.totals.on_heartbeat(event["pid"], decode_heartbeat(event))
            except ProtocolError as exc:
                log.warning(
                    "bad heartbeat",
                    function=replica.function,
                    replica=replica.index,
                    error=exc.message,
                )
        if replica.pid != event["pid"]:
            return  # from a previous incarnation of this replica
        now = self._clock()
        if kind is EventKind.READY and replica.state is S.STARTING:
            replica.running_since = now
            replica.last_heartbeat = now
            replica.busy_for = 0.0
            replica.transition(S.RUNNING, "worker reported ready")
        elif kind is EventKind.HEARTBEAT:
            replica.last_heartbeat = now
            busy = event.get("busy_ms", 0)
            ok = isinstance(busy, int) and not isinstance(busy, bool) and 0 <= busy <= MAX_BUSY_MS
            replica.busy_for = busy / 1000 if ok else 0.0
            replica.counters = {
                k: int(event[k]) for k in COUNTER_FIELDS if isinstance(event.get(k), int)
            }

    def tick(self) -> None:
        """Reap, detect hung or stuck workers, escalate stops, restart, advance rollouts."""
        now = self._clock()
        policy = self.policy
        for runtime in self.functions.values():
            for replica in runtime.replicas:
                self._reap(replica)
                state = replica.state
                if state is S.RUNNING and _hung(replica, now, policy.heartbeat_timeout):
                    assert replica.last_heartbeat is not None
                    silent = now - replica.last_heartbeat
                    replica.last_error = f"no heartbeat for {silent:.1f}s: worker hung; restarting"
                    replica.after_stop = "restart"
                    self._request_stop(replica, replica.last_error)
                elif (
                    state is S.STARTING
                    and replica.started_mono is not None
                    and now - replica.started_mono > policy.ready_timeout
                ):
                    replica.last_error = f"not ready within {policy.ready_timeout:.0f}s; restarting"
                    replica.after_stop = "restart"
                    self._request_stop(replica, replica.last_error)
                if replica.state is S.STOPPING and replica.kill_at and now >= replica.kill_at:
                    self._kill(replica)
                if replica.state is S.BACKOFF and replica.retry_at and now >= replica.retry_at:
                    self._spawn(replica, "backoff ended")
            self._prune_retired(runtime)
            if runtime.rollout is not None and not runtime.rollout.done:
                self._advance_rollout(runtime)

    # --- internals ---------------------------------------------------------------------------

    def log_path(self, function: str, index: int) -> Path:
        """Where a replica's worker writes its stdout and stderr (every incarnation appends)."""
        return self._log_dir / f"{function}.{index}.log"

    def _new_replica(self, function: str, index: int) -> Replica:
        replica = Replica(function, index, RestartTracker(self.policy.restart))
        if self._on_transition is not None:
            replica.listeners.append(self._on_transition)
        return replica

    def _spawn(self, replica: Replica, reason: str) -> None:
        runtime = self.functions[replica.function]
        worker_spec = self._build_worker_spec(runtime.spec, replica.index)
        log_path = self.log_path(replica.function, replica.index)
        with open(log_path, "ab") as logfile:
            replica.log_offset = logfile.tell()
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
        try:
            replica.ps = psutil.Process(replica.proc.pid)
            replica.ps.cpu_percent(None)  # primes the CPU% measurement
        except psutil.Error:
            replica.ps = None
        replica.last_pid = replica.proc.pid
        replica.log_path = log_path
        replica.started_at = time.time()
        replica.started_mono = self._clock()
        replica.running_since = None
        replica.last_heartbeat = None
        replica.retry_at = None
        replica.kill_at = None
        replica.after_stop = None
        replica.counters = {}
        replica.transition(S.STARTING, reason)

    def _request_stop(self, replica: Replica, reason: str) -> None:
        if replica.state in (S.STARTING, S.RUNNING):
            assert replica.proc is not None
            replica.transition(S.STOPPING, reason)
            replica.kill_at = self._clock() + self.policy.stop_timeout
            with contextlib.suppress(ProcessLookupError):
                replica.proc.send_signal(signal.SIGTERM)
        elif replica.state is S.STOPPING and replica.after_stop == "restart":
            replica.after_stop = None  # an explicit stop wins over a pending hang restart
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
        now = self._clock()
        running_for = now - replica.running_since if replica.running_since is not None else None
        replica.proc = None
        replica.ps = None
        replica.running_since = None
        replica.last_exit = describe_exit(code)
        if code != 0:
            reason = _last_error_line(replica.log_path, replica.log_offset)
            if reason:
                replica.last_error = reason
        if replica.state is S.STOPPING and replica.after_stop != "restart":
            replica.transition(S.STOPPED, f"worker exited ({replica.last_exit})")
            return
        replica.after_stop = None
        replica.transition(S.EXITED, f"worker exited unexpectedly ({replica.last_exit})")
        if code in FATAL_WORKER_EXITS:
            replica.transition(S.FATAL, f"{describe_exit(code)}: not retried until 'fsctl start'")
            return
        decision = replica.tracker.on_exit(now, running_for)
        if decision.fatal:
            replica.transition(S.FATAL, decision.reason)
            return
        replica.restarts += 1
        replica.retry_at = now + decision.delay
        replica.transition(S.BACKOFF, decision.reason)

    def _prune_retired(self, runtime: FunctionRuntime) -> None:
        """Drop scaled-away replicas once they have stopped (always from the end)."""
        while (
            runtime.replicas
            and runtime.replicas[-1].after_stop == "retire"
            and runtime.replicas[-1].proc is None
        ):
            runtime.replicas.pop()

    def _advance_rollout(self, runtime: FunctionRuntime) -> None:
        rollout = runtime.rollout
        assert rollout is not None
        while not rollout.done:
            if rollout.current is None:
                if not rollout.pending:
                    rollout.done = True
                    return
                rollout.current = rollout.pending.popleft()
                if rollout.current >= len(runtime.replicas):
                    rollout.current = None
                    continue
                replica = runtime.replicas[rollout.current]
                rollout.phase = "stopping"
                self._request_stop(replica, "rolling restart")
            replica = runtime.replicas[rollout.current]
            if rollout.phase == "stopping":
                if replica.proc is not None:
                    return  # still draining
                replica.tracker.reset()
                self._spawn(replica, "rolling restart")
                rollout.phase = "starting"
            if replica.state is S.RUNNING:
                rollout.rolled.append(replica.index)
                rollout.current = None
                continue
            if replica.state in (S.BACKOFF, S.FATAL, S.STOPPED):
                reason = replica.last_error or replica.last_exit or str(replica.state)
                rollout.error = (
                    f"replica {replica.index} did not become ready ({replica.state}: {reason}); "
                    f"the rolling restart stopped there"
                )
                rollout.done = True
            return


def _hung(replica: Replica, now: float, heartbeat_timeout: float) -> bool:
    """Nothing moves: no beat for ``heartbeat_timeout`` plus what the last beat announced.

    A worker about to call its guest announces how long that call may take
    (``busy_ms``, bounded by the function's time limit), so a guest working
    inside its limits is not hung however long its limit is (docs/abi.md).
    """
    last = replica.last_heartbeat
    return last is not None and now - last > heartbeat_timeout + replica.busy_for


def _last_error_line(log_path: Path | None, offset: int) -> str | None:
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
