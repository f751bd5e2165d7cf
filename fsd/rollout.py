"""A rolling restart of one function's local replicas onto a new generation.

One replica at a time: drain it, start it again on the new generation, and wait
until it is RUNNING before the next one, so the function never has fewer than
all-but-one replicas serving. A replica that does not come back stops the rollout
there: the others keep the old generation, fsd logs why, and the command waiting
for the rollout reports the failed replica (fsd/waits.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from fsd.replica import AfterStop, Replica
from fsd.replica_state import ReplicaState

log = structlog.get_logger("fsd.supervisor")

S = ReplicaState

# What the supervisor does to a replica on the rollout's behalf (replica, reason).
ReplicaAction = Callable[[Replica, str], None]


@dataclass
class Rollout:
    """A rolling restart onto ``generation``: one replica at a time, each waiting for RUNNING."""

    generation: int
    pending: deque[int]
    current: int | None = None
    stopping: bool = False  # the current replica is draining (else: starting)
    done: bool = False
    error: str | None = None
    rolled: list[int] = field(default_factory=list)

    def advance(
        self, replicas: dict[int, Replica], request_stop: ReplicaAction, spawn: ReplicaAction
    ) -> None:
        """Move on as far as the replicas' states allow; called from every supervisor tick."""
        while not self.done:
            if self.current is None:
                if not self.pending:
                    self.done = True
                    return
                self.current = self.pending.popleft()
                replica = replicas.get(self.current)
                if replica is None or replica.generation == self.generation:
                    self.current = None  # gone, or already spawned onto the new generation
                    continue
                self.stopping = True
                request_stop(replica, "rolling restart")
            replica = replicas.get(self.current)
            if replica is None or replica.after_stop is AfterStop.RETIRE:
                self.current = None  # scaled away or moved while rolling
                continue
            if self.stopping:
                if replica.state is S.STOPPING:
                    return  # still draining
                if replica.proc is None and replica.after_stop is not AfterStop.RETIRE:
                    replica.tracker.reset()
                    spawn(replica, "rolling restart")
                self.stopping = False
            if replica.state is S.RUNNING:
                self.rolled.append(replica.index)
                self.current = None
                continue
            if replica.state in (S.BACKOFF, S.FATAL, S.STOPPED):
                reason = replica.last_error or replica.last_exit or str(replica.state)
                self.error = (
                    f"replica {replica.index} did not become ready ({replica.state}: {reason}); "
                    f"the rolling restart stopped there"
                )
                log.warning(self.error, function=replica.function)
                self.done = True
            return
