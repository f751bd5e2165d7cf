"""Rollout.advance: one replica at a time, with fake stop/spawn actions (no processes)."""

from __future__ import annotations

from collections import deque

from fsd.replica import AfterStop, Replica
from fsd.replica_state import ReplicaState as S
from fsd.restart_policy import RestartPolicy, RestartTracker
from fsd.rollout import Rollout


class FakeProc:
    """Stands in for a worker's Popen: only its pid is read."""

    pid = 4242


class FakeSupervisor:
    """Records what the rollout asked for and moves replicas the way the supervisor would."""

    def __init__(self, count: int) -> None:
        self.replicas = {
            i: Replica("f", i, RestartTracker(RestartPolicy()), state=S.RUNNING, proc=FakeProc())  # type: ignore[arg-type]
            for i in range(count)
        }
        self.actions: list[tuple[str, int]] = []

    def stop(self, replica: Replica, reason: str) -> None:
        self.actions.append(("stop", replica.index))
        replica.transition(S.STOPPING, reason)

    def spawn(self, replica: Replica, reason: str) -> None:
        self.actions.append(("spawn", replica.index))
        replica.generation = 1
        replica.proc = FakeProc()  # type: ignore[assignment]
        replica.transition(S.STARTING, reason)

    def exited(self, index: int) -> None:
        replica = self.replicas[index]
        replica.proc = None
        replica.transition(S.STOPPED, "test: exited")


def _rollout(count: int) -> Rollout:
    return Rollout(generation=1, pending=deque(range(count)))


def test_each_replica_is_drained_respawned_and_waited_for_in_turn():
    sup, rollout = FakeSupervisor(2), _rollout(2)
    advance = lambda: rollout.advance(sup.replicas, sup.stop, sup.spawn)  # noqa: E731
    advance()
    assert sup.actions == [("stop", 0)] and rollout.current == 0
    advance()  # still draining: nothing more
    assert sup.actions == [("stop", 0)]
    sup.exited(0)
    advance()
    assert sup.actions == [("stop", 0), ("spawn", 0)]
    assert sup.replicas[1].state is S.RUNNING  # untouched until 0 is RUNNING
    sup.replicas[0].transition(S.RUNNING, "test: ready")
    advance()
    assert sup.actions[-1] == ("stop", 1) and rollout.rolled == [0]
    sup.exited(1)
    advance()
    sup.replicas[1].transition(S.RUNNING, "test: ready")
    advance()
    assert rollout.done and rollout.rolled == [0, 1] and rollout.error is None


def test_a_replica_that_does_not_come_back_stops_the_rollout_with_the_reason():
    sup, rollout = FakeSupervisor(2), _rollout(2)
    rollout.advance(sup.replicas, sup.stop, sup.spawn)
    sup.exited(0)
    rollout.advance(sup.replicas, sup.stop, sup.spawn)
    r0 = sup.replicas[0]
    r0.proc, r0.last_error = None, "bad module"
    r0.transition(S.EXITED, "test: crashed")
    r0.transition(S.BACKOFF, "test: backing off")
    rollout.advance(sup.replicas, sup.stop, sup.spawn)
    assert rollout.done and rollout.rolled == []
    assert rollout.error is not None and "replica 0" in rollout.error
    assert "bad module" in rollout.error
    assert ("stop", 1) not in sup.actions  # replica 1 keeps the old generation


def test_replicas_already_on_the_generation_or_scaled_away_are_skipped():
    sup, rollout = FakeSupervisor(3), _rollout(3)
    sup.replicas[0].generation = 1  # spawned onto the new generation already
    del sup.replicas[1]  # gone
    rollout.advance(sup.replicas, sup.stop, sup.spawn)
    assert sup.actions == [("stop", 2)]
    sup.replicas[2].after_stop = AfterStop.RETIRE  # scaled away while draining
    rollout.advance(sup.replicas, sup.stop, sup.spawn)
    assert rollout.done and rollout.rolled == [] and rollout.error is None
    assert ("spawn", 2) not in sup.actions
