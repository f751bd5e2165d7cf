"""Cluster agent against the real broker: membership, leadership with fencing, assignments.

Three real OS processes (tests/cluster_agent_proc.py), each one ClusterAgent,
on topics unique to the test. Short timings: member_timeout 3 s, heartbeat 0.5 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulsar
import pytest

from fscommon.logs import silent_pulsar_logger
from fsd.cluster.assignments import ASSIGNMENT_KEY, decode_assignment
from fsd.cluster.leadership import ElectionAction, Leadership, LeadershipLost
from tests.helpers import REPO, unique, wait_for

pytestmark = pytest.mark.integration

MEMBER_TIMEOUT = 3.0
HEARTBEAT = 0.5
TAKEOVER = MEMBER_TIMEOUT + 4.0  # member_timeout + a few seconds
FUNCTIONS = [["f1", 3, True], ["f2", 2, True], ["f3", 1, False]]


class AgentProc:
    """One ClusterAgent in its own process; its views parsed from stdout as they come."""

    def __init__(self, url: str, topics: tuple[str, str], member_id: str, workdir: Path) -> None:
        self.member_id = member_id
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{member_id}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "tests.cluster_agent_proc", "--pulsar-url", url]
        cmd += ["--members-topic", topics[0], "--assignments-topic", topics[1]]
        cmd += ["--member-id", member_id, "--functions", "[]"]
        cmd += ["--member-timeout", str(MEMBER_TIMEOUT), "--heartbeat", str(HEARTBEAT)]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, cwd=REPO
            )
        self.views: list[dict[str, Any]] = []
        self.stopped_at: float | None = None
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            record = json.loads(line)
            if record.get("stopped"):
                self.stopped_at = time.monotonic()
            else:
                self.views.append(record)

    @property
    def view(self) -> dict[str, Any]:
        return self.views[-1] if self.views else {}

    def send_functions(self, functions: list[list[Any]]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(functions) + "\n").encode())
        self.proc.stdin.flush()

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def log_events(self) -> list[str]:
        events = []
        for line in self.log_path.read_text().splitlines():
            try:
                events.append(json.loads(line).get("event", ""))
            except ValueError:
                continue
        return events

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def topics() -> tuple[str, str]:
    return (
        f"persistent://public/default/{unique('members')}",
        f"persistent://public/default/{unique('assignments')}",
    )


@pytest.fixture
def start_members(pulsar_url: str, topics: tuple[str, str], workdir: Path) -> Iterator[Any]:
    started: list[AgentProc] = []

    def start(*member_ids: str) -> tuple[list[AgentProc], dict[str, Any]]:
        """Start members, let them elect a leader, then hand them the functions.

        The functions come once every member is in (a registry that arrives
        before the others are heard would be placed on fewer members: there
        is no rebalancing on join). Returns the members and their common view.
        """
        procs = [AgentProc(pulsar_url, topics, m, workdir) for m in member_ids]
        started.extend(procs)
        wait_for(lambda: agreed(procs, placed=False), 30, "all members in, one leader")
        for proc in procs:
            proc.send_functions(FUNCTIONS)
        return procs, wait_for(lambda: agreed(procs), 10, "a full spread assignment")

    yield start
    for proc in started:
        proc.close()


def agreed(
    procs: list[AgentProc], leader: str | None = None, spread: bool = True, placed: bool = True
) -> dict[str, Any] | None:
    """The common view if every member sees the same live set, leader, epoch and assignment."""
    views = [p.view for p in procs]
    if not all(views):
        return None
    keys = ("leader_id", "epoch", "live", "assignment")
    first = {k: views[0][k] for k in keys}
    if any({k: v[k] for k in keys} != first for v in views[1:]):
        return None
    ids = sorted(p.member_id for p in procs)
    if first["live"] != ids or first["leader_id"] not in ids or not first["epoch"]:
        return None
    if leader is not None and first["leader_id"] != leader:
        return None
    if [v["member_id"] for v in views if v["is_leader"]] != [first["leader_id"]]:
        return None
    first["assignment_ints"] = {
        name: {int(i): m for i, m in placed_on.items()}
        for name, placed_on in first["assignment"].items()
    }
    if not placed:
        return first
    return first if complete(first["assignment"], ids, spread) else None


def complete(assignment: dict[str, dict[str, str]], ids: list[str], spread: bool = True) -> bool:
    """f1 and f2 fully placed on live members (spread over as many as they can); f3 not."""
    if set(assignment) != {"f1", "f2"}:
        return False
    for name, replicas in (("f1", 3), ("f2", 2)):
        placed = assignment[name]
        if sorted(placed) != [str(i) for i in range(replicas)]:
            return False
        if not set(placed.values()) <= set(ids):
            return False
        if spread and len(set(placed.values())) != min(replicas, len(ids)):
            return False
    return True


def assert_mine_matches(procs: list[AgentProc], assignment: dict[str, dict[str, str]]) -> None:
    for proc in procs:
        want: dict[str, list[int]] = {}
        for name, placed in assignment.items():
            indices = sorted(int(i) for i, m in placed.items() if m == proc.member_id)
            if indices:
                want[name] = indices
        assert proc.view["mine"] == want, proc.member_id


def moved(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> set[str]:
    """The members whose replicas were taken away."""
    return {
        member
        for name, placed in before.items()
        for index, member in placed.items()
        if after.get(name, {}).get(index) != member
    }


def read_assignments(url: str, topic: str) -> list[Any]:
    """Every value on the assignments topic, in order."""
    client = pulsar.Client(url, logger=silent_pulsar_logger())
    try:
        reader = client.create_reader(topic, pulsar.MessageId.earliest)
        values = []
        while reader.has_message_available():
            msg = reader.read_next(5000)
            if msg.partition_key() == ASSIGNMENT_KEY:
                values.append(decode_assignment(msg.data()))
        return values
    finally:
        client.close()


def split(procs: list[AgentProc], leader: str) -> tuple[AgentProc, list[AgentProc]]:
    """The leader's process and the others'."""
    return next(p for p in procs if p.member_id == leader), [
        p for p in procs if p.member_id != leader
    ]


def test_three_members_elect_one_leader_spread_and_a_clean_stop_leaves_at_once(
    start_members: Any, pulsar_url: str, topics: tuple[str, str]
) -> None:
    procs, first = start_members("m1", "m2", "m3")
    assert all(len(set(p.values())) == len(p) for p in first["assignment"].values())
    assert_mine_matches(procs, first["assignment"])

    leader, others = split(procs, first["leader_id"])
    leaving, staying = others[0], [leader, others[1]]
    leaving.signal(signal.SIGTERM)
    assert leaving.proc.wait(10) == 0
    # The tombstone removes it at once: well before member_timeout.
    after = wait_for(
        lambda: agreed(staying, leader=leader.member_id), MEMBER_TIMEOUT / 2, "a clean leave"
    )
    assert moved(first["assignment"], after["assignment"]) == {leaving.member_id}
    assert_mine_matches(staying, after["assignment"])
    # One value per change, none while nothing changed: the term's first (no
    # functions yet), the functions arriving, the member leaving.
    values = read_assignments(pulsar_url, topics[1])
    assert [(v.leader, v.epoch, v.revision) for v in values] == [
        (leader.member_id, first["epoch"], revision) for revision in (1, 2, 3)
    ]
    assert [v.assignment for v in values] == [
        {},
        first["assignment_ints"],
        after["assignment_ints"],
    ]


def test_kill_9_the_leader_another_leads_and_reassigns_only_its_replicas(
    start_members: Any,
) -> None:
    procs, before = start_members("m1", "m2", "m3")
    leader, others = split(procs, before["leader_id"])
    leader.proc.kill()
    leader.proc.wait(10)
    killed = time.monotonic()
    successor = min(p.member_id for p in others)  # the deterministic candidate
    after = wait_for(
        lambda: agreed(others, leader=successor), TAKEOVER, f"{successor} to lead, leader gone"
    )
    took = time.monotonic() - killed
    assert after["epoch"] > before["epoch"]
    assert moved(before["assignment"], after["assignment"]) == {leader.member_id}
    assert_mine_matches(others, after["assignment"])
    print(f"leader kill -9 -> new leader with a new assignment: {took:.2f} s")
    assert (
        "cluster leadership acquired"
        in next(p for p in others if p.member_id == successor).log_events()
    )


def test_a_paused_old_leader_is_fenced_by_the_broker_and_steps_down(
    start_members: Any, pulsar_url: str, topics: tuple[str, str]
) -> None:
    procs, before = start_members("m1", "m2", "m3")
    old, others = split(procs, before["leader_id"])
    old.signal(signal.SIGSTOP)
    # While it sleeps, its registry changes: on waking it has a reason to write.
    old.send_functions([*FUNCTIONS, ["f4", 2, True]])
    new = min(p.member_id for p in others)
    after = wait_for(lambda: agreed(others, leader=new), TAKEOVER, f"{new} takes over")
    assert after["epoch"] > before["epoch"]
    old.signal(signal.SIGCONT)
    wait_for(
        lambda: old.view.get("leader_id") == new and not old.view["is_leader"],
        10,
        "the old leader to step down and follow the new one",
    )
    # It is a member again; nothing moves back to it (no rebalancing on join).
    settled = wait_for(
        lambda: agreed(procs, leader=new, spread=False), 10, "all three follow the new leader"
    )
    assert settled["assignment"] == after["assignment"]

    values = read_assignments(pulsar_url, topics[1])
    takeover = next(i for i, v in enumerate(values) if v.leader == new)
    assert all(v.leader == old.member_id and v.epoch == before["epoch"] for v in values[:takeover])
    for value in values[takeover:]:
        assert value.leader == new and value.epoch == after["epoch"], value
        assert "f4" not in value.assignment  # only the old leader knew f4: never written
    assert "cluster leadership lost" in old.log_events()


def test_the_broker_fences_the_old_holder_of_the_assignments_producer(
    pulsar_url: str, topics: tuple[str, str]
) -> None:
    """The mechanism the paused-leader case relies on, step by step."""
    clients = [pulsar.Client(pulsar_url, logger=silent_pulsar_logger()) for _ in range(2)]
    try:
        old = Leadership(clients[0], topics[1], "old", send_timeout=5.0)
        new = Leadership(clients[1], topics[1], "new", send_timeout=5.0)
        assert old.acquire(ElectionAction.TRY_EXCLUSIVE)
        old.publish(ASSIGNMENT_KEY, b'{"leader":"old","epoch":1,"revision":1,"assignment":{}}')
        assert not new.acquire(ElectionAction.TRY_EXCLUSIVE)  # held: Exclusive fails at once
        assert new.acquire(ElectionAction.FENCE)
        new.publish(ASSIGNMENT_KEY, b'{"leader":"new","epoch":2,"revision":1,"assignment":{}}')
        with pytest.raises(LeadershipLost, match="fenced member old"):
            old.publish(ASSIGNMENT_KEY, b'{"leader":"old","epoch":1,"revision":2,"assignment":{}}')
        assert not old.held
        assert not old.acquire(ElectionAction.TRY_EXCLUSIVE)  # cannot get it back either
        new.release()
        assert old.acquire(ElectionAction.TRY_EXCLUSIVE)  # released: free to take
        old.release()
    finally:
        for client in clients:
            client.close()
    assert [v.leader for v in read_assignments(pulsar_url, topics[1])] == ["old", "new"]


def test_two_processes_with_one_member_id_are_reported(
    pulsar_url: str, topics: tuple[str, str], workdir: Path
) -> None:
    first = AgentProc(pulsar_url, topics, "dup", workdir / "a")
    second = AgentProc(pulsar_url, topics, "dup", workdir / "b")
    try:
        wait_for(
            lambda: any(
                "cluster member id in use twice" in p.log_events() for p in (first, second)
            ),
            10,
            "a member to notice another process using its id",
        )
    finally:
        first.close()
        second.close()
