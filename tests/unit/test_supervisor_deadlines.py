"""The supervisor reconciles toward the registry, and no deadline outlives its state.

Issue 11, part 1: a kill time left behind after a clean stop made
next_deadline() return a time in the past for ever, and fsd's loop polled with
a 0 ms timeout (a full core). These drive the Supervisor with real child
processes (``sleep``) standing in for workers, and a real clock.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fscommon.protocol import Desired
from fsd.function_spec import FunctionSpec
from fsd.replica import AfterStop, Replica
from fsd.replica_state import ReplicaState as S
from fsd.supervisor import SupervisionPolicy, Supervisor
from tests.helpers import wait_for


class _Spec:
    """Stands in for WorkerSpec: the sleep command needs nothing from it."""

    attempts_path = None


def _supervisor(tmp_path: Path) -> Supervisor:
    return Supervisor(
        lambda spec, index: _Spec(),  # type: ignore[arg-type,return-value]
        tmp_path / "logs",
        SupervisionPolicy(stop_timeout=30.0),
        command=lambda spec: ["sleep", "60"],
    )


def _spec(replicas: int = 1, **kw) -> FunctionSpec:
    return FunctionSpec(
        name="f", package="0" * 64, kind="abi", inputs=["in"], output=None, replicas=replicas, **kw
    )


def _settle(sup: Supervisor, spec: FunctionSpec, until, what: str, placement=None) -> None:
    def step() -> bool:
        if placement is None:
            sup.reconcile([spec])
        else:
            sup.reconcile([spec], placement)
        sup.tick()
        return until()

    wait_for(step, 10, what)


def _running(sup: Supervisor, spec: FunctionSpec) -> list[Replica]:
    """Reconcile until every replica is spawned, then mark them ready (sleep never reports)."""
    sup.reconcile([spec])
    replicas = sup.functions[spec.name].ordered()
    for replica in replicas:
        replica.transition(S.RUNNING, "test: ready")
        replica.running_since = replica.last_heartbeat = time.monotonic()
    return replicas


def test_reconcile_spawns_every_replica_and_restores_the_same_way(tmp_path: Path):
    sup = _supervisor(tmp_path)
    sup.reconcile([_spec(replicas=3)])
    runtime = sup.functions["f"]
    assert sorted(runtime.replicas) == [0, 1, 2]
    assert all(r.state is S.STARTING and r.proc is not None for r in runtime.replicas.values())
    sup.reconcile([_spec(replicas=3)])  # idempotent: nothing new is spawned
    assert len({r.pid for r in runtime.replicas.values()}) == 3
    sup.stop_all()


def test_placement_decides_which_indices_run_here(tmp_path: Path):
    sup = _supervisor(tmp_path)
    spec = _spec(replicas=4)
    sup.reconcile([spec], placement=lambda s: {1, 3})
    assert sorted(sup.functions["f"].replicas) == [1, 3]
    # Replica 3 moves away: it drains and is forgotten; 1 stays untouched.
    pid1 = sup.functions["f"].replicas[1].pid
    _settle(
        sup,
        spec,
        lambda: 3 not in sup.functions["f"].replicas,
        "replica 3 to be retired",
        placement=lambda s: {1},
    )
    assert sup.functions["f"].replicas[1].pid == pid1
    sup.stop_all()


def test_clean_stop_leaves_no_deadline(tmp_path: Path):
    sup = _supervisor(tmp_path)
    spec = _spec()
    (replica,) = _running(sup, spec)
    spec.desired = Desired.STOPPED
    sup.reconcile([spec])
    assert replica.state is S.STOPPING and replica.kill_at is not None
    _settle(sup, spec, lambda: replica.proc is None, "the stopped worker to be reaped")
    assert replica.state is S.STOPPED
    assert replica.kill_at is None
    assert sup.next_deadline() is None
    # Start again: the same replica is spawned anew.
    spec.desired = Desired.RUNNING
    sup.reconcile([spec])
    assert replica.state is S.STARTING
    sup.stop_all()


def test_scale_down_and_delete_leave_no_deadline(tmp_path: Path):
    sup = _supervisor(tmp_path)
    spec = _spec(replicas=2)
    _running(sup, spec)
    spec.replicas = 1
    _settle(sup, spec, lambda: list(sup.functions["f"].replicas) == [0], "replica 1 to retire")
    assert sup.next_deadline() is None

    def deleted() -> bool:
        sup.reconcile([])
        sup.tick()
        return "f" not in sup.functions

    wait_for(deleted, 10, "the deleted function to be forgotten")
    assert sup.next_deadline() is None


def test_new_generation_rolls_one_replica_at_a_time(tmp_path: Path):
    sup = _supervisor(tmp_path)
    spec = _spec(replicas=2)
    first = [r.pid for r in _running(sup, spec)]
    spec.generation = 1
    sup.reconcile([spec])
    rollout = sup.functions["f"].rollout
    assert rollout is not None and rollout.current == 0
    r0, r1 = sup.functions["f"].ordered()
    assert r0.state is S.STOPPING and r1.state is S.RUNNING  # one at a time
    _settle(sup, spec, lambda: r0.state is S.STARTING, "replica 0 to be respawned")
    assert r0.generation == 1 and r0.pid != first[0]
    r0.transition(S.RUNNING, "test: ready")
    r0.last_heartbeat = time.monotonic()
    _settle(sup, spec, lambda: r1.state is S.STARTING, "replica 1 to be respawned")
    r1.transition(S.RUNNING, "test: ready")
    r1.last_heartbeat = time.monotonic()
    sup.tick()
    assert rollout.done and rollout.rolled == [0, 1] and rollout.error is None
    sup.stop_all()


def test_hang_restart_keeps_only_the_backoff_deadline(tmp_path: Path):
    sup = _supervisor(tmp_path)
    spec = _spec()
    (replica,) = _running(sup, spec)
    replica.after_stop = AfterStop.RESTART
    sup._request_stop(replica, "hung")
    wait_for(lambda: (sup.tick(), replica.proc is None)[1], 10, "the hung worker to be reaped")
    assert replica.state is S.BACKOFF
    assert replica.kill_at is None
    assert replica.retry_at is not None and sup.next_deadline() == replica.retry_at
    spec.desired = Desired.STOPPED  # BACKOFF -> STOPPED drops the retry too
    sup.reconcile([spec])
    assert replica.state is S.STOPPED and sup.next_deadline() is None


@pytest.mark.parametrize("state", [S.STOPPED, S.FATAL, S.RUNNING])
def test_stale_deadlines_are_ignored_outside_their_state(tmp_path: Path, state: S):
    sup = _supervisor(tmp_path)
    (replica,) = _running(sup, _spec())
    replica.proc.kill()
    replica.proc.wait()
    replica.state = state
    replica.kill_at = replica.retry_at = time.monotonic() - 100
    assert sup.next_deadline() is None
