"""Supervision with real processes: crashes, hangs, faults, scaling, drains, fsd death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests import wasm_fixtures as fx
from tests.helpers import EXAMPLES, REPO, Fsd, pid_alive, unique, wait_for
from tests.streams import OutputCollector, StreamProducer, report

pytestmark = pytest.mark.integration

BASIC = str(EXAMPLES / "basic" / "c" / "basic.wasm")


def _create(fsd: Fsd, name: str, inp: str, out: str, replicas: int = 1, wasm: str = BASIC):
    result = fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "-o", out, "-r", str(replicas))
    assert result.returncode == 0, result.stderr
    return fsd.wait_running(name, replicas)


def test_kill9_replica_comes_back_and_nothing_is_lost(fsd: Fsd, pulsar_url: str):
    name, inp, out = unique("k9"), unique("in"), unique("out")
    collector = OutputCollector(pulsar_url, out)
    replicas = _create(fsd, name, inp, out, replicas=2)
    victim = replicas[0]["pid"]
    stream = StreamProducer(pulsar_url, inp, count=3000, rate=1000)
    stream.start()
    wait_for(lambda: stream.sent > 800, 20, "the stream to be under way")
    os.kill(victim, signal.SIGKILL)

    def back() -> dict | None:
        r = fsd.replicas(name)[0]
        return r if r["state"] == "RUNNING" and r["pid"] != victim else None

    replica = wait_for(back, 30, "the killed replica to be RUNNING again")
    assert replica["restarts"] == 1
    assert replica["last_exit"] == "signal 9 (SIGKILL)"
    stream.finish()
    missing, _dups = report(collector.collect_until(3000, 60), 3000)
    collector.close()
    assert missing == [], f"{len(missing)} records lost, e.g. {missing[:5]}"


def test_exit_at_start_backs_off_then_goes_fatal_and_start_retries(workdir, pulsar_url: str):
    bad = unique("crashy")
    fsd = Fsd(
        workdir,
        pulsar_url,
        extra=["--max-restarts", "2", "--backoff-base", "0.2", "--backoff-cap", "0.4"],
        env={"FSWORKER_FAULT": f"{bad}:exit-at-start"},
    ).start()
    try:
        good, inp, out = unique("good"), unique("in"), unique("out")
        _create(fsd, good, inp, out)
        events = subprocess.Popen(
            [sys.executable, "-m", "fsctl", "events", "-n", bad],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fsd.env(), cwd=REPO,
        )  # fmt: skip
        assert "Watching" in events.stderr.readline()
        result = fsd.ctl("create", "-n", bad, "-a", BASIC, "-i", unique("in"), "-o", unique("o"))
        assert result.returncode == 1
        replica = wait_for(
            lambda: (r := fsd.replicas(bad)[0])["state"] == "FATAL" and r, 30, "FATAL"
        )
        assert replica["restarts"] == 2
        assert replica["last_exit"] == "exit 1 (CRASH)"
        assert replica["last_error"] == "injected fault: exit at start"
        events.terminate()
        seen = [line for line in events.communicate(timeout=10)[0].splitlines()]
        states = [__import__("json").loads(line)["new"] for line in seen]
        assert states[:3] == ["STARTING", "EXITED", "BACKOFF"], states
        assert states[-2:] == ["EXITED", "FATAL"], states

        # The healthy function on the same fsd was never disturbed.
        assert fsd.replicas(good)[0]["restarts"] == 0
        assert fsd.ctl("ping").returncode == 0

        # 'fsctl start' tries again (the fault is still there, so it fails again).
        before = replica["started_at"]
        again = fsd.ctl("start", "-n", bad)
        assert again.returncode == 1 and "replica 0 is" in again.stderr
        wait_for(
            lambda: (r := fsd.replicas(bad)[0])["state"] == "FATAL" and r["started_at"] != before,
            30,
            "a new attempt after 'fsctl start'",
        )
    finally:
        fsd.stop()


def test_hung_worker_is_killed_and_restarted(workdir, pulsar_url: str):
    fsd = Fsd(
        workdir, pulsar_url, extra=["--heartbeat-timeout", "2", "--stop-timeout", "1"]
    ).start()
    try:
        name, inp = unique("hang"), unique("in")
        wasm = str(fx.write(workdir, "loop", fx.LOOP_ON_L))
        # No time limit: a guest inside its limit announces itself and is not hung.
        result = fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "-o", unique("out"),
                         "--timeout-ms", "0")  # fmt: skip
        assert result.returncode == 0, result.stderr
        first = fsd.wait_running(name, 1)[0]["pid"]
        assert fsd.ctl("produce", "-n", inp, "-c", "Loop forever").returncode == 0
        replica = wait_for(
            lambda: (r := fsd.replicas(name)[0])["restarts"] >= 1 and r, 30, "a restart"
        )
        assert not pid_alive(first)
        # The loop in wasm ignores SIGTERM, so the stop escalated to SIGKILL.
        assert replica["last_exit"] == "signal 9 (SIGKILL)"
        assert "no heartbeat" in replica["last_error"]
        assert fsd.ctl("ping").returncode == 0
    finally:
        fsd.stop()


def test_worker_stuck_in_wasm_does_not_outlive_fsd(workdir, pulsar_url: str):
    fsd = Fsd(
        workdir, pulsar_url, extra=["--heartbeat-timeout", "60", "--stop-timeout", "1"]
    ).start()
    name, inp = unique("stuck"), unique("in")
    wasm = str(fx.write(workdir, "loop", fx.LOOP_ON_L))
    pid = _create(fsd, name, inp, unique("out"), wasm=wasm)[0]["pid"]
    assert fsd.ctl("produce", "-n", inp, "-c", "Loop forever").returncode == 0
    wait_for(
        lambda: (fsd.replicas(name)[0]["heartbeat_age"] or 0) > 2, 30, "the worker to be stuck"
    )
    fsd.kill()
    # SIGTERM from the parent-death signal cannot interrupt wasm; the watchdog thread can.
    wait_for(lambda: not pid_alive(pid), 6, "the stuck worker to exit after fsd died")


def test_scale_up_and_down_under_load_loses_nothing(fsd: Fsd, pulsar_url: str):
    name, inp, out = unique("scale"), unique("in"), unique("out")
    collector = OutputCollector(pulsar_url, out)
    _create(fsd, name, inp, out, replicas=1)
    stream = StreamProducer(pulsar_url, inp, count=6000, rate=800)
    stream.start()
    up = fsd.ctl("scale", "-n", name, "-r", "4")
    assert up.returncode == 0, up.stderr
    assert "4/4 replicas running" in up.stdout
    wait_for(
        lambda: all(r["processed"] > 0 for r in fsd.replicas(name)),
        30,
        "every one of 4 replicas to get a share of the messages",
    )
    down = fsd.ctl("scale", "-n", name, "-r", "1")
    assert down.returncode == 0, down.stderr
    assert [r["replica"] for r in fsd.replicas(name)] == [0]
    stream.finish()
    missing, _dups = report(collector.collect_until(6000, 90), 6000)
    collector.close()
    assert missing == [], f"{len(missing)} lost, e.g. {missing[:5]}"
    assert fsd.ctl_json("list")[0]["replicas"] == 1


def test_fsd_kill9_leaves_no_orphans_and_restart_restores_all(fsd: Fsd, pulsar_url: str):
    a, b = unique("a"), unique("b")
    _create(fsd, a, unique("in"), unique("out"), replicas=1)
    in_b, out_b = unique("in"), unique("out")
    _create(fsd, b, in_b, out_b, replicas=2)
    pids = [r["pid"] for n in (a, b) for r in fsd.replicas(n)]
    fsd.kill()
    wait_for(lambda: not any(pid_alive(p) for p in pids), 5, "every worker to exit with fsd")
    fsd.start()
    fsd.wait_running(a, 1)
    fsd.wait_running(b, 2)
    collector = OutputCollector(pulsar_url, out_b)
    stream = StreamProducer(pulsar_url, in_b, count=10, rate=100)
    stream.start()
    stream.finish()
    missing, _ = report(collector.collect_until(10, 30), 10)
    collector.close()
    assert missing == []


def test_fsd_sigterm_drains_workers_and_loses_nothing(fsd: Fsd, pulsar_url: str):
    name, inp, out = unique("drain"), unique("in"), unique("out")
    collector = OutputCollector(pulsar_url, out)
    pids = [r["pid"] for r in _create(fsd, name, inp, out, replicas=2)]
    stream = StreamProducer(pulsar_url, inp, count=4000, rate=1000)
    stream.start()
    wait_for(lambda: stream.sent > 1500, 20, "the stream to be under way")
    assert fsd.stop() == 0
    assert not any(pid_alive(p) for p in pids)
    logs = "".join((fsd.state_dir / "logs" / f"{name}.{i}.log").read_text() for i in (0, 1))
    assert logs.count('"event": "stopped"') == 2, "each worker drained and said so"
    fsd.start()
    stream.finish()
    missing, duplicates = report(collector.collect_until(4000, 90), 4000)
    collector.close()
    assert missing == []
    assert duplicates == 0, "a clean stop duplicates nothing"


def test_rolling_update_and_restart_lose_nothing(fsd: Fsd, pulsar_url: str, workdir):
    name, inp, out = unique("roll"), unique("in"), unique("out")
    collector = OutputCollector(pulsar_url, out)
    before = [r["pid"] for r in _create(fsd, name, inp, out, replicas=2)]
    stream = StreamProducer(pulsar_url, inp, count=4000, rate=800)
    stream.start()
    restarted = fsd.ctl("restart", "-n", name, "--json")
    assert restarted.returncode == 0, restarted.stderr
    middle = [r["pid"] for r in fsd.replicas(name)]
    assert not set(before) & set(middle)
    # Same logic, other lane: the output format does not change mid-stream.
    stdio = str(EXAMPLES / "basic" / "c" / "basic_stdio.wasm")
    updated = fsd.ctl("update", "-n", name, "-a", stdio)
    assert updated.returncode == 0, updated.stderr
    assert fsd.ctl_json("list")[0]["kind"] == "wasi-stdio"
    after = [r["pid"] for r in fsd.wait_running(name, 2)]
    assert not set(middle) & set(after)
    stream.finish()
    missing, _dups = report(collector.collect_until(4000, 90), 4000)
    collector.close()
    assert missing == []


def test_stop_start_and_state_errors(fsd: Fsd, pulsar_url: str):
    name, inp = unique("ss"), unique("in")
    _create(fsd, name, inp, unique("out"), replicas=2)
    stopped = fsd.ctl("stop", "-n", name)
    assert stopped.returncode == 0, stopped.stderr
    assert [r["state"] for r in fsd.replicas(name)] == ["STOPPED", "STOPPED"]

    refused = fsd.ctl("restart", "-n", name)
    assert refused.returncode == 1 and f"use 'fsctl start -n {name}'" in refused.stderr
    for args, fragment in [
        (["scale", "-n", name, "-r", "0"], "replicas must be an integer from 1"),
        (["scale", "-n", "nosuch", "-r", "2"], "function 'nosuch' does not exist"),
        (["start", "-n", "nosuch"], "does not exist"),
        (["update", "-n", name], "nothing to update"),
    ]:
        result = fsd.ctl(*args)
        assert result.returncode == 1 and fragment in result.stderr, (args, result.stderr)

    # Messages wait while it is stopped: the broker reports them as backlog.
    for i in range(5):
        assert fsd.ctl("produce", "-n", inp, "-c", f'{{"name":"w{i}","money":1}}').returncode == 0
    wait_for(lambda: fsd.status(name)["backlog"] == 5, 30, "backlog of 5 in status")

    # Stopped survives an fsd restart.
    fsd.stop()
    fsd.start()
    assert [r["state"] for r in fsd.replicas(name)] == ["STOPPED", "STOPPED"]
    started = fsd.ctl("start", "-n", name)
    assert started.returncode == 0 and "2/2 replicas running" in started.stdout
    wait_for(lambda: fsd.status(name)["backlog"] == 0, 30, "the backlog to drain")
    reps = fsd.replicas(name)
    assert all(r["rss_bytes"] > 1_000_000 and r["cpu_percent"] is not None for r in reps)
    table = fsd.ctl("status", "-n", name).stdout
    assert "RSS" in table and "RUNNING" in table


def test_replicas_that_take_nothing_while_the_backlog_waits_are_restarted(workdir, pulsar_url):
    """The stall watchdog (fsd/stall.py): a worker that heartbeats but consumes nothing, as a
    client stuck after a broker restart does, is restarted once the backlog has waited
    stall_timeout, and the messages then flow. The fault fires in the first worker only."""
    name, inp, out = unique("stall"), unique("in"), unique("out")
    fsd = Fsd(
        workdir,
        pulsar_url,
        extra=["--stall-timeout", "4", "--autoscale-interval", "1"],
        env={"FSWORKER_FAULT": f"{name}:stop-receiving:{workdir / 'fired'}"},
    ).start()
    try:
        collector = OutputCollector(pulsar_url, out)
        first = _create(fsd, name, inp, out)[0]["pid"]
        stream = StreamProducer(pulsar_url, inp, count=200, rate=200)
        stream.start()
        stream.finish()
        replica = wait_for(
            lambda: (r := fsd.replicas(name)[0])["restarts"] >= 1 and r, 60, "a stall restart"
        )
        assert "no message taken for 4s" in replica["last_error"], replica
        assert "stall_timeout" in replica["last_error"], replica
        missing, _dups = report(collector.collect_until(200, 60), 200)
        collector.close()
        assert missing == [], f"{len(missing)} records lost, e.g. {missing[:5]}"
        assert fsd.replicas(name)[0]["pid"] != first
    finally:
        fsd.stop()
