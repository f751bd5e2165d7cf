"""fsd's per-tick load watching: backlog targets, stall watchdog, autoscaling, metrics.

Once per turn of fsd's loop, after the reconcile, ``LoadWatch.tick`` tells the
backlog poller (fsd/backlog.py) which subscriptions to sample, restarts this
host's replicas that take nothing while their backlog waits (fsd/stall.py),
lets the autoscaler (fsd/autoscaler.py) decide, and refreshes the metrics
snapshot. It only reads the registry's specs: a scaling decision goes through
the function service like any other change, and restarts go to the supervisor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from fsd.replica_state import ReplicaState
from fsd.stall import StallDetector
from fsd.worker_specs import subscription_name

if TYPE_CHECKING:
    from fsd.autoscaler import Autoscaler
    from fsd.backlog import BacklogPoller
    from fsd.function_spec import FunctionSpec
    from fsd.metrics import MetricsServer
    from fsd.supervisor import Supervisor

# The daemon's logger: these lines read as fsd's own, as they did before this module.
log = structlog.get_logger("fsd")


class LoadWatch:
    """The watchers fsd's loop runs once per tick over every registered function."""

    def __init__(
        self,
        supervisor: Supervisor,
        backlog: BacklogPoller | None,
        autoscaler: Autoscaler,
        metrics: MetricsServer | None,
        stall_timeout: float,
        deciding: Callable[[], bool],
    ) -> None:
        """``deciding`` says, each tick, whether this fsd makes autoscaling decisions."""
        self.supervisor = supervisor
        self.backlog = backlog  # None without a broker admin URL: no backlog, no stalls
        self.autoscaler = autoscaler
        self.metrics = metrics
        self.stalls = StallDetector(stall_timeout)  # 0: off
        self._deciding = deciding

    def tick(self, specs: list[FunctionSpec]) -> None:
        """Backlog targets, stall watchdog, autoscaling decisions and the metrics snapshot."""
        if self.backlog is not None:
            # Every registered function: a cluster's leader decides for replicas elsewhere too.
            self.backlog.set_targets(
                [(s.name, tuple(s.inputs), subscription_name(s.name)) for s in specs]
            )
            self._watch_stalls(self.backlog, specs)
        self.autoscaler.tick(specs, self._deciding())
        if self.metrics is not None:
            self.metrics.refresh(self.supervisor, self.backlog, specs, self.autoscaler)

    def _watch_stalls(self, backlog_poller: BacklogPoller, specs: list[FunctionSpec]) -> None:
        """Restart local replicas that take nothing while their backlog waits (fsd/stall.py)."""
        now = time.monotonic()
        for spec in specs:
            runtime = self.supervisor.functions.get(spec.name)
            replicas = runtime.ordered() if runtime is not None else []
            running = [r for r in replicas if r.state is ReplicaState.RUNNING]
            sample = backlog_poller.sample(spec.name)
            backlog = sample[0] if sample is not None else None
            if backlog is not None:  # messages held for delayed delivery are not a stall
                backlog -= backlog_poller.delayed(spec.name)
            progress = tuple((r.pid, r.counters.get("received", 0)) for r in running)
            busy = any(r.busy_for > 0 for r in running) or len(running) < len(replicas)
            # A nacked message waits retry_delay_ms before it comes back: not a stall either.
            patience = 2 * spec.options.get("retry_delay_ms", 0) / 1000
            if self.stalls.observe(spec.name, now, backlog, progress, busy, patience):
                reason = (
                    f"no message taken for {self.stalls.timeout:.0f}s while {backlog} wait(s) "
                    f"on the subscription; restarting (stall_timeout)"
                )
                log.warning("replicas stalled", function=spec.name, backlog=backlog)
                self.supervisor.restart_stalled(spec.name, reason)
        self.stalls.forget({s.name for s in specs})
