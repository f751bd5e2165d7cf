"""A deadline belongs to a state: none may outlive it (issue 11, part 1).

A kill time left behind after a clean stop made next_deadline() return a time
in the past for ever, and fsd's loop polled with a 0 ms timeout (a full core).
These drive the Supervisor with real child processes (``sleep``) standing in
for workers, and a real clock.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from fsd.function_spec import FunctionSpec
from fsd.replica_state import ReplicaState as S
from fsd.supervisor import Replica, Supervisor, SupervisionPolicy
from tests.helpers import wait_for


def _supervisor(tmp_path: Path) -> Supervisor:
    def no_spec(spec: FunctionSpec, index: int):  # never spawns a real worker here
        raise AssertionError("not used")

    return Supervisor(no_spec, tmp_path / "logs", SupervisionPolicy(stop_timeout=30.0))


def _running(sup: Supervisor, name: str = "f") -> Replica:
    """A replica in RUNNING whose 'worker' is a sleep process (it dies on SIGTERM)."""
    spec = FunctionSpec(
        name=name, package="0" * 64, kind="abi", inputs=["in"], output=None, replicas=0
    )
    sup.start_function(spec)
    replica = sup._new_replica(name, 0)
    sup.functions[name].replicas.append(replica)
    replica.proc = subprocess.Popen(["sleep", "60"])
    replica.last_pid = replica.proc.pid
    replica.state = S.RUNNING
    replica.started_mono = replica.running_since = replica.last_heartbeat = time.monotonic()
    return replica


def _reaped(sup: Supervisor, replica: Replica) -> bool:
    sup.tick()
    return replica.proc is None


def test_clean_stop_leaves_no_deadline(tmp_path: Path):
    sup = _supervisor(tmp_path)
    replica = _running(sup)
    sup.stop_function("f")
    assert replica.state is S.STOPPING and replica.kill_at is not None
    wait_for(lambda: _reaped(sup, replica), 10, "the stopped worker to be reaped")
    assert replica.state is S.STOPPED
    assert replica.kill_at is None
    assert sup.next_deadline() is None


def test_scale_down_leaves_no_deadline(tmp_path: Path):
    sup = _supervisor(tmp_path)
    replica = _running(sup)
    sup.scale("f", 0)
    wait_for(lambda: _reaped(sup, replica), 10, "the retired worker to be reaped")
    assert sup.functions["f"].replicas == []
    assert sup.next_deadline() is None


def test_hang_restart_keeps_only_the_backoff_deadline(tmp_path: Path):
    sup = _supervisor(tmp_path)
    replica = _running(sup)
    replica.after_stop = "restart"
    sup._request_stop(replica, "hung")
    wait_for(lambda: _reaped(sup, replica), 10, "the hung worker to be reaped")
    assert replica.state is S.BACKOFF
    assert replica.kill_at is None
    assert replica.retry_at is not None and sup.next_deadline() == replica.retry_at
    sup._request_stop(replica, "stop requested")  # BACKOFF -> STOPPED drops the retry too
    assert replica.state is S.STOPPED and sup.next_deadline() is None


@pytest.mark.parametrize("state", [S.STOPPED, S.FATAL, S.RUNNING])
def test_stale_deadlines_are_ignored_outside_their_state(tmp_path: Path, state: S):
    sup = _supervisor(tmp_path)
    replica = _running(sup)
    replica.proc.kill()
    replica.proc.wait()
    replica.state = state
    replica.kill_at = replica.retry_at = time.monotonic() - 100
    assert sup.next_deadline() is None
