"""Autoscaling on a real fsd, broker and workers: a burst scales out and back, a light stream
does not move, and manual scale of an autoscaled function is refused with the way out."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, Fsd, free_port, unique, wait_for
from tests.integration.test_observability import scrape, value
from tests.slow_guest import write_slow_echo
from tests.streams import OutputCollector, StreamProducer, report

pytestmark = pytest.mark.integration

BURST = 100_000
# Short enough for a test: a decision every second, a 5 s cool-down per step down.
BOUNDS = ["--min-replicas", "1", "--max-replicas", "4", "--target-lag", "5",
          "--scale-down-delay", "5"]  # fmt: skip


@pytest.fixture
def scaled(workdir: Path, pulsar_url: str) -> Iterator[tuple[Fsd, int, Path]]:
    port = free_port()
    daemon = Fsd(
        workdir,
        pulsar_url,
        extra=["--autoscale-interval", "1", "--metrics-endpoint", f"127.0.0.1:{port}"],
    ).start()
    yield daemon, port, write_slow_echo(workdir)
    if daemon.proc is not None and daemon.proc.poll() is None:
        assert daemon.stop() == 0


class Notices:
    """'fsctl events -n NAME' in the background: every notice it printed."""

    def __init__(self, fsd: Fsd, name: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fsctl", "events", "-n", name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fsd.env(), cwd=REPO,
        )  # fmt: skip
        assert "Watching" in self.proc.stderr.readline()

    def stop(self) -> list[dict]:
        self.proc.terminate()
        out = self.proc.communicate(timeout=10)[0]
        return [json.loads(line) for line in out.splitlines()]


def scale_notices(notices: list[dict]) -> list[dict]:
    return [n for n in notices if n.get("kind") == "scale" and n["action"] in ("up", "down")]


def test_a_burst_scales_out_drains_every_message_and_scales_back(scaled, pulsar_url):
    fsd, port, module = scaled
    name, inp, out = unique("auto"), unique("in"), unique("out")
    result = fsd.ctl("create", "-n", name, "-a", str(module), "-i", inp, "-o", out, *BOUNDS)
    assert result.returncode == 0, result.stderr
    assert fsd.status(name)["replicas_wanted"] == 1, "starts at the minimum"
    notices = Notices(fsd, name)
    collector = OutputCollector(pulsar_url, out)
    try:
        producer = StreamProducer(pulsar_url, inp, BURST, rate=1e9)
        producer.start()
        producer.finish()
        # Replicas rise above 1 while the backlog drains.
        wait_for(lambda: fsd.status(name)["replicas_wanted"] > 1, 60, "a scale-up")
        samples = wait_for(
            lambda: (
                (s := scrape(port))
                and (value(s, "fs_function_desired_replicas", function=name) or 0) > 1
                and s
            ),
            10,
            "the metrics snapshot to show the scale-up",
        )
        assert value(samples, "fs_function_lag_seconds", function=name) > 0
        seen = collector.collect_until(BURST, timeout=300)
        missing, duplicates = report(seen, BURST)
        assert not missing, f"{len(missing)} messages never came out, e.g. {missing[:5]}"
        # Scaling moves no message twice: new replicas share the subscription, removed
        # ones drain (finish, confirm and acknowledge their batch) before they exit.
        assert duplicates == 0
        # After the cool-down it is back to the minimum, one step at a time.
        wait_for(lambda: fsd.status(name)["replicas_wanted"] == 1, 120, "back to 1 replica")
        fsd.wait_running(name, 1)
    finally:
        collector.close()
        seen_notices = notices.stop()
    moves = scale_notices(seen_notices)
    ups = [n for n in moves if n["action"] == "up"]
    downs = [n for n in moves if n["action"] == "down"]
    assert ups and ups[0]["old"] == 1 and ups[0]["new"] > 1, moves
    assert "backlog" in ups[0]["reason"] and "msg/s per replica" in ups[0]["reason"], ups[0]
    assert all(n["new"] == n["old"] - 1 for n in downs), "down one step at a time"
    assert downs and downs[-1]["new"] == 1, moves
    status = fsd.status(name)
    assert status["autoscale"]["last_scaled"]["new"] == 1
    assert status["autoscale"]["decision"]["action"] in ("down", "steady")
    # The scaled-away replicas drained: nothing failed or was dead-lettered on the way.
    assert all(r["failed"] == 0 and r["dead_lettered"] == 0 for r in fsd.replicas(name))


def test_a_light_steady_stream_makes_no_changes(scaled, pulsar_url):
    fsd, _port, module = scaled
    name, inp, out = unique("steady"), unique("in"), unique("out")
    result = fsd.ctl("create", "-n", name, "-a", str(module), "-i", inp, "-o", out, *BOUNDS)
    assert result.returncode == 0, result.stderr
    notices = Notices(fsd, name)
    collector = OutputCollector(pulsar_url, out)
    count = 1200  # 20 a second for a minute: a few % of one replica
    try:
        producer = StreamProducer(pulsar_url, inp, count, rate=20)
        producer.start()
        producer.finish(timeout=120)
        seen = collector.collect_until(count, timeout=60)
    finally:
        collector.close()
        seen_notices = notices.stop()
    assert len(seen) == count
    assert scale_notices(seen_notices) == []
    status = fsd.status(name)
    assert status["replicas_wanted"] == 1 and status["autoscale"]["last_scaled"] is None
    assert status["autoscale"]["decision"] is not None, "the autoscaler was deciding"


def test_manual_scale_is_refused_and_bounds_change_without_a_roll(scaled):
    fsd, _port, module = scaled
    name = unique("bounds")
    result = fsd.ctl(
        "create", "-n", name, "-a", str(module), "-i", unique("in"), "-o", unique("out"), *BOUNDS
    )
    assert result.returncode == 0, result.stderr
    refused = fsd.ctl("scale", "-n", name, "-r", "3")
    assert refused.returncode != 0
    assert "autoscaled between 1 and 4" in refused.stderr
    assert "--no-autoscale" in refused.stderr and "--min-replicas" in refused.stderr
    pid = fsd.replicas(name)[0]["pid"]
    # New bounds that exclude the current count move it inside them, without a roll.
    result = fsd.ctl("update", "-n", name, "--min-replicas", "2")
    assert result.returncode == 0, result.stderr
    status = fsd.status(name)
    assert status["autoscale"]["min_replicas"] == 2 and status["autoscale"]["max_replicas"] == 4
    assert status["replicas_wanted"] == 2
    running = fsd.wait_running(name, 2)
    assert pid in [r["pid"] for r in running], "the first replica was not rolled"
    bad = fsd.ctl("update", "-n", name, "--max-replicas", "1")
    assert bad.returncode != 0 and "is above --max-replicas" in bad.stderr
    # Off: the count stays, and fsctl scale works again.
    assert fsd.ctl("update", "-n", name, "--no-autoscale").returncode == 0
    assert fsd.status(name)["autoscale"] is None
    assert fsd.ctl("scale", "-n", name, "-r", "1").returncode == 0
    listed = fsd.ctl("list").stdout
    assert name in listed and "auto" not in listed.split(name, 1)[1].splitlines()[0]


def test_in_a_cluster_the_leader_decides_and_replicas_land_on_other_members(
    workdir: Path, pulsar_url: str
):
    from tests.integration.test_cluster import Cluster

    cluster = Cluster(workdir, pulsar_url, unique("acl"), extra=("--autoscale-interval", "1"))
    cluster.start()
    try:
        leader = wait_for(lambda: cluster.leader("a"), 30, "a leader to be elected")
        other = next(m for m in cluster.members if m != leader)
        via = cluster.members[other]
        name, inp, out = unique("cauto"), unique("in"), unique("out")
        module = write_slow_echo(workdir)
        result = via.ctl("create", "-n", name, "-a", str(module), "-i", inp, "-o", out, *BOUNDS)
        assert result.returncode == 0, result.stderr
        collector = OutputCollector(pulsar_url, out)
        count = 20_000
        try:
            producer = StreamProducer(pulsar_url, inp, count, rate=1e9)
            producer.start()
            producer.finish()
            wait_for(lambda: via.status(name)["replicas_wanted"] > 1, 60, "a scale-up")
            wait_for(
                lambda: len(set(cluster.placement(other, name).values())) > 1,
                60,
                "replicas on more than one member",
            )
            seen = collector.collect_until(count, timeout=180)
        finally:
            collector.close()
        assert not report(seen, count)[0], "every message came out"
        wait_for(lambda: via.status(name)["replicas_wanted"] == 1, 120, "back to 1 replica")
        status = via.status(name)["autoscale"]
        # Any member shows the last change (from the registry) and who decides.
        assert status["last_scaled"]["new"] == 1 and status["decided_by"] == leader
        assert status["decision"] is None, "a member that does not lead does not decide"
        decided = [
            m for m, fsd in cluster.members.items() if "autoscale up" in fsd.log_path.read_text()
        ]
        assert decided == [leader]
    finally:
        cluster.stop()
