"""Cluster mode end to end: three fsd members (standing in for three hosts) on one real broker.

Each member has its own state dir, control endpoint and member id; they share
the Pulsar cluster and the cluster name, and nothing else. Timings are short
(heartbeat 0.5 s, member_timeout 3 s) so failures are detected quickly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, REPO, Fsd, unique, wait_for
from tests.streams import OutputCollector, StreamProducer, report

pytestmark = pytest.mark.integration

BASIC = str(EXAMPLES / "basic" / "c" / "basic.wasm")
MEMBER_TIMEOUT = 3.0
TIMINGS = ["--member-timeout", str(MEMBER_TIMEOUT), "--member-heartbeat", "0.5"]


class Cluster:
    """Three members of one cluster, started and stopped by the test."""

    def __init__(self, root: Path, pulsar_url: str, name: str, extra: tuple[str, ...] = ()) -> None:
        self.name = name
        self.members: dict[str, Fsd] = {}
        for member in ("a", "b", "c"):
            workdir = root / member
            workdir.mkdir()
            self.members[member] = Fsd(
                workdir,
                pulsar_url,
                extra=[
                    "--cluster",
                    name,
                    "--member-id",
                    member,
                    *TIMINGS,
                    "--stop-timeout",
                    "3",
                    *extra,
                ],
            )

    def start(self, *which: str) -> None:
        for member in which or tuple(self.members):
            self.members[member].start()

    def stop(self) -> None:
        for fsd in self.members.values():
            if fsd.proc is not None and fsd.proc.poll() is None:
                fsd.stop()

    def alive(self) -> list[Fsd]:
        return [f for f in self.members.values() if f.proc is not None and f.proc.poll() is None]

    def view(self, via: str) -> dict:
        return self.members[via].ctl_json("members")

    def leader(self, via: str) -> str | None:
        return self.view(via).get("leader_id")

    def placement(self, via: str, function: str) -> dict[int, str]:
        """replica -> member, for RUNNING replicas, as member ``via`` reports them."""
        reps = self.members[via].replicas(function)
        return {r["replica"]: r["member"] for r in reps if r["state"] == "RUNNING"}


@pytest.fixture
def cluster(workdir: Path, pulsar_url: str) -> Iterator[Cluster]:
    c = Cluster(workdir, pulsar_url, unique("cl"))
    c.start()
    wait_for(lambda: c.leader("a"), 30, "a leader to be elected")
    yield c
    c.stop()


def _spread(cluster: Cluster, via: str, function: str, count: int, timeout: float = 30) -> dict:
    def ok() -> dict | None:
        placed = cluster.placement(via, function)
        return placed if len(placed) == count else None

    return wait_for(ok, timeout, f"{count} RUNNING replicas of {function} seen from {via}")


def test_create_through_one_member_spreads_and_every_member_sees_it(cluster: Cluster):
    name, inp, out = unique("f"), unique("in"), unique("out")
    a = cluster.members["a"]
    result = a.ctl("create", "-n", name, "-a", BASIC, "-i", inp, "-o", out, "-r", "3")
    assert result.returncode == 0, result.stderr
    placed = _spread(cluster, "c", name, 3)
    assert sorted(placed.values()) == ["a", "b", "c"], placed
    members = cluster.view("b")
    assert sorted(m["member_id"] for m in members["members"]) == ["a", "b", "c"]
    assert members["leader_id"] in ("a", "b", "c")
    text = cluster.members["b"].ctl("status", "-n", name)
    assert "MEMBER" in text.stdout, text.stdout
    # Every worker log line says which member ran it.
    on_a = next(i for i, m in placed.items() if m == "a")
    worker_log = (a.state_dir / "logs" / f"{name}.{on_a}.log").read_text()
    assert '"member": "a"' in worker_log, worker_log[-500:]
    # fsctl list and delete through yet another member.
    assert [f["name"] for f in cluster.members["c"].ctl_json("list")] == [name]
    assert cluster.members["c"].ctl("delete", "-n", name).returncode == 0
    wait_for(lambda: cluster.members["a"].ctl_json("list") == [], 20, "the delete to reach a")


def test_member_killed_its_replicas_run_elsewhere_and_nothing_is_lost(
    cluster: Cluster, pulsar_url: str
):
    name, inp, out = unique("f"), unique("in"), unique("out")
    a = cluster.members["a"]
    assert a.ctl("create", "-n", name, "-a", BASIC, "-i", inp, "-o", out, "-r", "3").returncode == 0
    _spread(cluster, "a", name, 3)
    collector = OutputCollector(pulsar_url, out)
    stream = StreamProducer(pulsar_url, inp, count=6000, rate=1000)
    stream.start()
    wait_for(lambda: stream.sent > 1500, 20, "the stream to be under way")
    cluster.members["b"].kill()
    placed = wait_for(
        lambda: (p := cluster.placement("a", name)) and len(p) == 3 and "b" not in p.values() and p,
        MEMBER_TIMEOUT + 20,
        "b's replica to run on another member",
    )
    assert set(placed.values()) <= {"a", "c"}
    stream.finish()
    missing, _dups = report(collector.collect_until(6000, 90), 6000)
    collector.close()
    assert missing == [], f"{len(missing)} records lost, e.g. {missing[:5]}"


def test_leader_killed_another_leads_and_commands_keep_working(cluster: Cluster):
    old = cluster.leader("a")
    survivor = next(m for m in ("a", "b", "c") if m != old)
    cluster.members[old].kill()
    new = wait_for(
        lambda: (leader := cluster.leader(survivor)) not in (None, old) and leader,
        MEMBER_TIMEOUT + 20,
        "another member to lead",
    )
    assert new != old
    ctl = cluster.members[survivor]
    name = unique("f")
    assert ctl.ctl("create", "-n", name, "-a", BASIC, "-i", unique("in"), "-r", "2").returncode == 0
    placed = _spread(cluster, survivor, name, 2)
    assert old not in placed.values()
    assert ctl.ctl("scale", "-n", name, "-r", "1").returncode == 0
    wait_for(lambda: len(ctl.replicas(name)) == 1, 30, "the scale-down")
    assert ctl.ctl("delete", "-n", name).returncode == 0


def test_paused_leader_is_fenced_and_steps_down(cluster: Cluster):
    old = cluster.leader("a")
    others = [m for m in ("a", "b", "c") if m != old]
    fsd = cluster.members[old]
    os.kill(fsd.proc.pid, signal.SIGSTOP)
    try:
        new = wait_for(
            lambda: (leader := cluster.leader(others[0])) not in (None, old) and leader,
            MEMBER_TIMEOUT + 20,
            "another member to lead while the old leader is paused",
        )
    finally:
        os.kill(fsd.proc.pid, signal.SIGCONT)
    # Once it runs again it must not lead: one leader, seen the same from every member.
    wait_for(
        lambda: all(cluster.leader(m) == new for m in ("a", "b", "c")),
        MEMBER_TIMEOUT + 20,
        "every member, the old leader included, to agree on the new leader",
    )
    assert not cluster.view(old)["members"][0].get("leader") or new == old


def test_all_members_restart_and_functions_come_back(cluster: Cluster):
    name = unique("f")
    a = cluster.members["a"]
    assert a.ctl("create", "-n", name, "-a", BASIC, "-i", unique("in"), "-r", "3").returncode == 0
    _spread(cluster, "a", name, 3)
    cluster.stop()
    cluster.start()
    placed = _spread(cluster, "b", name, 3, timeout=60)
    assert len(placed) == 3


def test_bad_cluster_settings_say_what_and_exit(workdir: Path, pulsar_url: str):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        cmd = [sys.executable, "-m", "fsd", "--state-dir", str(workdir / "s")]
        cmd += ["--endpoint", f"ipc://{workdir / 'x.sock'}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)

    bad_name = run("--cluster", "no/such name", "--pulsar-url", pulsar_url)
    assert bad_name.returncode != 0
    assert "cluster" in bad_name.stderr and "'no/such name'" in bad_name.stderr, bad_name.stderr
    no_pulsar = run("--cluster", "x")
    assert no_pulsar.returncode != 0 and "pulsar_url" in no_pulsar.stderr, no_pulsar.stderr
    admin = os.environ.get("FS_TEST_PULSAR_ADMIN_URL", "")
    unreachable = run(
        "--cluster", "x", "--pulsar-url", "pulsar://127.0.0.1:1", "--pulsar-admin-url", admin
    )
    assert unreachable.returncode != 0
    last = unreachable.stderr.strip().splitlines()[-1]
    assert "127.0.0.1:1" in last or "cannot" in last, unreachable.stderr


def test_members_on_a_single_host_says_how_to_join(fsd: Fsd):
    result = fsd.ctl("members")
    assert result.returncode == 1
    assert "--cluster" in result.stderr


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_wordcount_on_three_members_over_postgresql_is_exact(
    workdir: Path, pulsar_url: str, postgres_url: str
):
    from tests.integration.test_state import WORDCOUNT, _expected, _lines, _produce_lines

    c = Cluster(workdir, pulsar_url, unique("cl"))
    for fsd in c.members.values():
        fsd.extra += ["--state-url", postgres_url]
    c.start()
    try:
        wait_for(lambda: c.leader("a"), 30, "a leader to be elected")
        name, inp, out = unique("wc"), unique("lines"), unique("counts")
        a = c.members["a"]
        created = a.ctl("create", "-n", name, "-a", WORDCOUNT, "-i", inp, "-o", out, "-r", "3")
        assert created.returncode == 0, created.stderr
        assert sorted(_spread(c, "a", name, 3).values()) == ["a", "b", "c"]
        lines = _lines(6000, seed=5)
        _produce_lines(pulsar_url, inp, lines)
        expected = dict(_expected(lines))

        def counts(via: str) -> dict[str, int]:
            listed = c.members[via].ctl_json("state", "list", "-n", name, "--limit", "1000")
            return {item["key"]: int(item["value"]) for item in listed}

        wait_for(lambda: counts("b") == expected, 180, "exact counts in PostgreSQL")
        assert counts("c") == expected, "every member reads the same state"

        # A member dies during a second stream: its replica moves; counts stay exact.
        import threading

        more = _lines(6000, seed=6)
        producer = threading.Thread(target=_produce_lines, args=(pulsar_url, inp, more))
        producer.start()
        wait_for(
            lambda: sum(counts("a").values()) > sum(expected.values()) + 2000,
            60,
            "the second stream to be under way",
        )
        c.members["b"].kill()
        producer.join(120)
        total = _expected(lines + more)
        settled = wait_for(
            lambda: (n := counts("a")) and sum(n.values()) >= sum(total.values()) and n,
            180,
            "every line counted after the member kill",
        )
        lost = {w: (settled.get(w), n) for w, n in total.items() if settled.get(w, 0) < n}
        assert not lost, f"increments lost (word: state, expected): {lost}"
        extra = {w: (settled[w], n) for w, n in total.items() if settled[w] > n}
        assert not extra, f"counted twice after the member kill (word: state, expected): {extra}"
    finally:
        c.stop()


def test_a_function_with_state_needs_a_shared_store_in_a_cluster(cluster: Cluster):
    from tests.integration.test_state import WORDCOUNT

    result = cluster.members["a"].ctl("create", "-n", unique("wc"), "-a", WORDCOUNT, "-i", "x")
    assert result.returncode == 1
    assert "state" in result.stderr and "--state-url" in result.stderr, result.stderr


def test_a_package_that_cannot_be_fetched_is_fatal_with_the_reason(
    cluster: Cluster, pulsar_url: str
):
    """A registry entry whose module is not in the cluster (written here by hand)."""
    from fsd.cluster.naming import ClusterNames
    from fsd.cluster.registry_topic import TopicRegistry
    from fsd.function_spec import FunctionSpec
    from tests.streams import client

    good = unique("good")
    a = cluster.members["a"]
    assert a.ctl("create", "-n", good, "-a", BASIC, "-i", unique("in")).returncode == 0
    c = client(pulsar_url)
    try:
        registry = TopicRegistry(c, ClusterNames(cluster.name).registry, member="test")
        bad = unique("nopkg")
        registry.add(
            FunctionSpec(
                name=bad, package="ab" * 32, kind="abi", inputs=[unique("in")], output=None
            )
        )
        registry.close()
    finally:
        c.close()
    replica = wait_for(
        lambda: next((r for r in a.replicas(bad) if r["state"] == "FATAL"), None),
        60,
        "the replica whose package is missing to be FATAL",
    )
    assert "cannot be fetched" in (replica.get("last_error") or ""), replica
    assert [r["state"] for r in a.replicas(good)] == ["RUNNING"]
