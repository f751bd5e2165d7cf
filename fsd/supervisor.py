"""Runs and watches the worker processes: reconciles them toward the desired state.

The registry (fsd/functions.py FunctionService is its only writer) says what
should run; ``reconcile`` makes the replicas this host runs match it, the way
a controller does: spawn what is missing, drain what is no longer wanted, roll
replicas spawned at an older generation. On one host every replica is local;
in a cluster, ``placement`` says which indices this member runs.

All of it is driven from fsd's single main loop: nothing here blocks, and
nothing here runs in a signal handler. Every state change goes through
``Replica.transition``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from fscommon.exitcodes import FATAL_WORKER_EXITS, describe_exit
from fscommon.paths import suspect_marker
from fscommon.protocol import Desired, EventKind, ProtocolError, decode_heartbeat
from fscommon.worker_spec import WorkerSpec
from fsd.function_runtime import FunctionRuntime, Placement, all_replicas
from fsd.function_spec import FunctionSpec
from fsd.replica import (
    AfterStop,
    Replica,
    TransitionListener,
    last_error_line,
)
from fsd.replica_state import ReplicaState
from fsd.restart_policy import RestartPolicy, RestartTracker
from fsd.rollout import Rollout
from fsd.worker_process import (
    blamed_on_message,
    exit_code,
    hung,
    kill,
    launch,
    terminate,
    worker_command,
)

log = structlog.get_logger("fsd.supervisor")

S = ReplicaState


@dataclass
class SupervisionPolicy:
    """Timeouts and restart limits (fsd flags and config file)."""

    stop_timeout: float = 10.0  # SIGTERM -> SIGKILL
    heartbeat_timeout: float = 10.0  # RUNNING without a heartbeat this long: hung
    ready_timeout: float = 60.0  # STARTING this long without 'ready': stuck
    restart: RestartPolicy = field(default_factory=RestartPolicy)


class Supervisor:
    """Keeps each function's local replicas in the state the registry asks for."""

    def __init__(
        self,
        build_worker_spec: Callable[[FunctionSpec, int], WorkerSpec],
        log_dir: Path,
        policy: SupervisionPolicy | None = None,
        on_transition: TransitionListener | None = None,
        clock: Callable[[], float] = time.monotonic,
        command: Callable[[WorkerSpec], list[str]] | None = None,
    ) -> None:
        self._build_worker_spec = build_worker_spec
        self._command = command or worker_command
        self._log_dir = log_dir
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self.policy = policy or SupervisionPolicy()
        self._on_transition = on_transition
        self._clock = clock
        self.functions: dict[str, FunctionRuntime] = {}
        self._shutting_down = False

    # --- reconcile -----------------------------------------------------------------------

    def reconcile(self, specs: Iterable[FunctionSpec], placement: Placement = all_replicas) -> None:
        """Move the local replicas toward ``specs`` (the whole registry) and ``placement``."""
        if self._shutting_down:
            return
        seen = set()
        for spec in specs:
            seen.add(spec.name)
            runtime = self.functions.get(spec.name)
            if runtime is None or runtime.deleted:
                if runtime is not None and not self.is_stopped(spec.name):
                    continue  # re-created while the old one still drains: wait for it
                runtime = FunctionRuntime(spec, generation=spec.generation, starts=spec.starts)
                self.functions[spec.name] = runtime
            self._reconcile_function(runtime, spec, set(placement(spec)))
        for name, runtime in list(self.functions.items()):
            if name not in seen and not runtime.deleted:
                runtime.deleted = True
                runtime.rollout = None
                for replica in runtime.replicas.values():
                    replica.after_stop = AfterStop.RETIRE
                    self._request_stop(replica, "function deleted")
            if runtime.deleted:
                self._prune_retired(runtime)
                if not runtime.replicas:
                    del self.functions[name]

    def _reconcile_function(
        self, runtime: FunctionRuntime, spec: FunctionSpec, placed: set[int]
    ) -> None:
        runtime.spec = spec
        running = spec.desired is Desired.RUNNING
        if spec.starts != runtime.starts:
            # 'fsctl start': everything not running gets a fresh restart budget and goes now.
            runtime.starts = spec.starts
            for replica in runtime.replicas.values():
                if running and replica.state in (S.FATAL, S.BACKOFF) and replica.index in placed:
                    replica.tracker.reset()
                    self._spawn(replica, "start requested")
        if not running:
            # Stopped replicas stay listed (STOPPED) where they are placed, for status.
            runtime.rollout = None
            runtime.generation = spec.generation
            for index in placed - runtime.replicas.keys():
                runtime.replicas[index] = self._new_replica(spec.name, index)
            for replica in runtime.replicas.values():
                if replica.index not in placed:
                    replica.after_stop = AfterStop.RETIRE
                self._request_stop(replica, "stop requested")
            self._prune_retired(runtime)
            return
        wanted = placed
        if spec.generation != runtime.generation:
            runtime.generation = spec.generation
            runtime.rollout = Rollout(
                spec.generation,
                deque(i for i in sorted(runtime.replicas) if runtime.replicas[i].proc is not None),
            )
        for index in sorted(wanted):
            replica = runtime.replicas.get(index)
            if replica is None:
                replica = self._new_replica(spec.name, index)
                runtime.replicas[index] = replica
                self._spawn(replica, "replica placed here")
            elif replica.after_stop is AfterStop.RETIRE:
                replica.after_stop = None  # wanted again before its drain finished
            elif replica.state is S.STOPPED:
                self._spawn(replica, "start requested")
        for index, replica in runtime.replicas.items():
            if index not in wanted and replica.after_stop is not AfterStop.RETIRE:
                replica.after_stop = AfterStop.RETIRE
                why = "scaled down" if index >= spec.replicas else "placed on another member"
                self._request_stop(replica, why)
        self._prune_retired(runtime)
        if runtime.rollout is not None and not runtime.rollout.done:
            runtime.rollout.advance(runtime.replicas, self._request_stop, self._spawn)

    # --- queries -------------------------------------------------------------------------

    def is_stopped(self, name: str) -> bool:
        """True once no local replica of the function has a process."""
        runtime = self.functions.get(name)
        return runtime is None or all(r.proc is None for r in runtime.replicas.values())

    def stop_all(self) -> None:
        """Ask every worker to stop (fsd shutdown); reconcile does nothing after this."""
        self._shutting_down = True
        for runtime in self.functions.values():
            runtime.rollout = None
            for replica in runtime.replicas.values():
                self._request_stop(replica, "fsd is stopping")

    def all_stopped(self) -> bool:
        """True once no worker process is left."""
        return all(self.is_stopped(name) for name in self.functions)

    def replicas(self) -> Iterable[Replica]:
        """Every local replica of every function."""
        for runtime in self.functions.values():
            yield from runtime.replicas.values()

    # --- the main loop's hooks ---------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest pending restart or kill time, so the main loop wakes up for it."""
        times = [
            t
            for r in self.replicas()
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
        replica = runtime.replicas.get(event["replica"]) if runtime is not None else None
        if replica is None:
            return
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
            replica.on_heartbeat(event, now)

    def tick(self) -> None:
        """Reap, detect hung or stuck workers, escalate stops, restart, advance rollouts."""
        now = self._clock()
        policy = self.policy
        for runtime in self.functions.values():
            for replica in runtime.replicas.values():
                self._reap(replica)
                state = replica.state
                if state is S.RUNNING and hung(replica, now, policy.heartbeat_timeout):
                    assert replica.last_heartbeat is not None
                    silent = now - replica.last_heartbeat
                    replica.last_error = f"no heartbeat for {silent:.1f}s: worker hung; restarting"
                    replica.after_stop = AfterStop.RESTART
                    self._request_stop(replica, replica.last_error)
                elif (
                    state is S.STARTING
                    and replica.started_mono is not None
                    and now - replica.started_mono > policy.ready_timeout
                ):
                    replica.last_error = f"not ready within {policy.ready_timeout:.0f}s; restarting"
                    replica.after_stop = AfterStop.RESTART
                    self._request_stop(replica, replica.last_error)
                if replica.state is S.STOPPING and replica.kill_at and now >= replica.kill_at:
                    self._kill(replica)
                if replica.state is S.BACKOFF and replica.retry_at and now >= replica.retry_at:
                    self._spawn(replica, "backoff ended")
            self._prune_retired(runtime)
            if runtime.rollout is not None and not runtime.rollout.done:
                runtime.rollout.advance(runtime.replicas, self._request_stop, self._spawn)

    def restart_stalled(self, function: str, reason: str) -> int:
        """Restart this host's RUNNING replicas of ``function`` (fsd/stall.py); how many."""
        runtime = self.functions.get(function)
        if runtime is None or runtime.busy is not None:
            return 0
        stalled = [r for r in runtime.replicas.values() if r.state is S.RUNNING]
        for replica in stalled:
            replica.last_error = reason
            replica.after_stop = AfterStop.RESTART
            self._request_stop(replica, reason)
        return len(stalled)

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
        launched = launch(self._command(worker_spec), log_path)
        replica.proc, replica.ps = launched.proc, launched.ps
        replica.log_offset = launched.log_offset
        replica.last_pid = replica.proc.pid
        replica.log_path = log_path
        replica.generation = runtime.spec.generation
        replica.suspect_marker = (
            suspect_marker(worker_spec.attempts_path, replica.index)
            if worker_spec.attempts_path
            else None
        )
        replica.started_at = time.time()
        replica.started_mono = self._clock()
        replica.running_since = None
        replica.last_heartbeat = None
        replica.after_stop = None
        replica.counters = {}
        replica.transition(S.STARTING, reason)

    def _request_stop(self, replica: Replica, reason: str) -> None:
        if replica.state in (S.STARTING, S.RUNNING):
            assert replica.proc is not None
            replica.transition(S.STOPPING, reason)
            replica.kill_at = self._clock() + self.policy.stop_timeout
            terminate(replica.proc)
        elif replica.state is S.STOPPING and replica.after_stop is AfterStop.RESTART:
            replica.after_stop = None  # an explicit stop wins over a pending hang restart
        elif replica.state in (S.BACKOFF, S.FATAL, S.EXITED):
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
            kill(replica.proc)
        replica.kill_at = None

    def _reap(self, replica: Replica) -> None:
        code = exit_code(replica)
        if code is None:
            return
        now = self._clock()
        running_for = now - replica.running_since if replica.running_since is not None else None
        replica.running_since = None
        replica.last_exit = describe_exit(code)
        if code != 0:
            reason = last_error_line(replica.log_path, replica.log_offset)
            if reason:
                replica.last_error = reason
        if replica.state is S.STOPPING and replica.after_stop is not AfterStop.RESTART:
            replica.transition(S.STOPPED, f"worker exited ({replica.last_exit})")
            return
        replica.after_stop = None
        replica.transition(S.EXITED, f"worker exited unexpectedly ({replica.last_exit})")
        if code in FATAL_WORKER_EXITS:
            replica.transition(S.FATAL, f"{describe_exit(code)}: not retried until 'fsctl start'")
            return
        blamed = blamed_on_message(replica, replica.last_pid)
        decision = replica.tracker.on_exit(now, running_for, blamed)
        if decision.fatal:
            replica.transition(S.FATAL, decision.reason)
            return
        replica.restarts += 1
        replica.retry_at = now + decision.delay
        replica.transition(S.BACKOFF, decision.reason)

    def _prune_retired(self, runtime: FunctionRuntime) -> None:
        """Forget scaled-away (or moved, or deleted) replicas once they have stopped."""
        for index in [
            i
            for i, r in runtime.replicas.items()
            if r.after_stop is AfterStop.RETIRE and r.proc is None
        ]:
            del runtime.replicas[index]
