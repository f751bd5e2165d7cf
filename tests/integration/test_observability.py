"""Metrics at fsd's Prometheus endpoint and 'fsctl logs', on a real fsd, workers and broker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import EXAMPLES, REPO, Fsd, free_port, pid_alive, unique, wait_for
from tests.streams import person, send

pytestmark = pytest.mark.integration

BASIC = str(EXAMPLES / "basic" / "c" / "basic.wasm")
GOOD, BAD = 20, 5


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample at /metrics as {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def observed(workdir, pulsar_url) -> Iterator[tuple[Fsd, int]]:
    port = free_port()
    daemon = Fsd(workdir, pulsar_url, extra=["--metrics-endpoint", f"127.0.0.1:{port}"]).start()
    yield daemon, port
    if daemon.proc is not None and daemon.proc.poll() is None:
        assert daemon.stop() == 0


def test_metrics_count_messages_restarts_and_resources(observed, pulsar_url):
    fsd, port = observed
    name, inp, out = unique("obs"), unique("in"), unique("out")
    result = fsd.ctl("create", "-n", name, "-a", BASIC, "-i", inp, "-o", out,
                     "--max-retries", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr
    pid = fsd.wait_running(name, 1)[0]["pid"]
    # The basic example refuses input that is not its JSON person: a guest error.
    payloads = [person(i) for i in range(GOOD)] + [b"not a person %d" % i for i in range(BAD)]
    send(pulsar_url, inp, payloads)

    labels = {"function": name, "replica": "0"}
    expected = {
        "fs_messages_received_total": GOOD + BAD,
        "fs_messages_processed_total": GOOD,
        "fs_messages_failed_total": BAD,
        "fs_messages_dead_lettered_total": BAD,
        "fs_records_published_total": GOOD,
        "fs_processing_latency_seconds_count": GOOD + BAD,
    }

    def counted() -> dict | None:
        samples = scrape(port)
        got = {k: value(samples, k, **labels) for k in expected}
        return samples if got == expected else None

    samples = wait_for(counted, 30, f"counters {expected}", interval=0.5)
    assert value(samples, "fs_processing_latency_seconds_sum", **labels) > 0
    assert value(samples, "fs_processing_latency_seconds_bucket", **labels, le="+Inf") == 25
    assert value(samples, "fs_replica_rss_bytes", **labels) > 10_000_000
    assert value(samples, "fs_replica_state", **labels, state="RUNNING") == 1
    assert value(samples, "fs_replica_state", **labels, state="BACKOFF") == 0
    assert value(samples, "fs_replica_restarts_total", **labels) == 0
    assert value(samples, "fsd_process_resident_memory_bytes") > 0
    assert value(samples, "fs_fuel_consumed_total", **labels) is None  # fuel is off

    metered, metered_in = unique("fuel"), unique("in")
    result = fsd.ctl("create", "-n", metered, "-a", BASIC, "-i", metered_in, "-o", unique("o"),
                     "--fuel", "1000000")  # fmt: skip
    assert result.returncode == 0, result.stderr
    send(pulsar_url, metered_in, [person(i) for i in range(3)])
    wait_for(
        lambda: (
            (value(scrape(port), "fs_fuel_consumed_total", function=metered, replica="0") or 0)
            > 1000
        ),
        30,
        "fuel used by the metered function",
        interval=0.5,
    )

    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: value(scrape(port), "fs_replica_restarts_total", **labels) == 1,
        20,
        "the restart to be counted",
        interval=0.5,
    )
    new_pid = fsd.wait_running(name, 1)[0]["pid"]
    assert new_pid != pid and pid_alive(new_pid)
    # Counted across the restart: the new worker starts at zero, fsd's totals do not.
    send(pulsar_url, inp, [person(GOOD)])
    wait_for(
        lambda: value(scrape(port), "fs_messages_processed_total", **labels) == GOOD + 1,
        30,
        "processed to keep counting after the restart",
        interval=0.5,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Follower:
    """'fsctl logs -f' in the background, its stdout collected line by line."""

    def __init__(self, fsd: Fsd, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fsctl", "logs", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**fsd.env(), "PYTHONFAULTHANDLER": "1"},
            cwd=REPO,
            # Ctrl-C must reach it as in a terminal: a test session started in the background
            # by a shell without job control ignores SIGINT, and its children inherit that
            # (Python then installs no KeyboardInterrupt handler, and the follower never stops).
            preexec_fn=_default_sigint,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> str:
        """Ctrl-C the follower; return its stderr (with a stack dump if it did not exit)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            # PYTHONFAULTHANDLER makes SIGABRT print every thread's stack: the next
            # failure says where fsctl was stuck instead of only that it was.
            self.proc.send_signal(signal.SIGABRT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        assert self.proc.stderr is not None
        return self.proc.stderr.read()


def test_logs_show_function_and_replica_and_follow(observed):
    fsd, _port = observed
    name = unique("logs")
    result = fsd.ctl("create", "-n", name, "-a", BASIC, "-i", unique("in"), "-o", unique("o"))
    assert result.returncode == 0, result.stderr
    pid = fsd.wait_running(name, 1)[0]["pid"]

    readable = fsd.ctl("logs", "-n", name)
    assert readable.returncode == 0, readable.stderr
    assert f"[{name}/0] ready" in readable.stdout, readable.stdout

    records = [
        json.loads(line) for line in fsd.ctl("logs", "-n", name, "--json").stdout.splitlines()
    ]
    assert records and all(r["function"] == name and r["replica"] == 0 for r in records)
    assert any(r["event"] == "ready" for r in records)
    one = fsd.ctl("logs", "-n", name, "--replica", "0", "--lines", "1", "--json")
    assert len(one.stdout.splitlines()) == 1, one.stdout

    follower = _Follower(fsd, "-n", name, "-f", "--lines", "0", "--json")
    try:
        restart = fsd.ctl("restart", "-n", name)
        assert restart.returncode == 0, restart.stderr

        def new_ready() -> bool:
            for line in list(follower.lines):
                record = json.loads(line)
                assert record["function"] == name and record["replica"] == 0
                if record["event"] == "ready":
                    return True
            return False

        wait_for(new_ready, 30, "'logs -f' to show the restarted worker's ready line")
        assert fsd.replicas(name)[0]["pid"] != pid
    finally:
        stderr = follower.stop()
    # A plain string: pytest shortens the repr of a tuple, and the stack dump is the point.
    assert follower.proc.returncode == 0, f"exit {follower.proc.returncode}:\n{stderr}"

    for args, fragment in (
        (["--replica", "5"], "replica 5 does not exist: function '%s' has 1 replica (0 to 0)"),
        (["--replica", "-1"], "logs: replica must be an integer from 0 to 63, got -1"),
        (["--lines", "-3"], "lines must be an integer from 0 to 10000"),
    ):
        bad = fsd.ctl("logs", "-n", name, *args)
        assert bad.returncode == 1, (args, bad.stdout, bad.stderr)
        assert bad.stderr.strip().startswith("fsctl: ")
        assert (fragment % name if "%s" in fragment else fragment) in bad.stderr, bad.stderr
    missing = fsd.ctl("logs", "-n", "nosuch")
    assert missing.returncode == 1 and "function 'nosuch' does not exist" in missing.stderr


def test_metrics_port_in_use_stops_fsd_with_one_clear_line(workdir, pulsar_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Fsd(workdir, pulsar_url, extra=["--metrics-endpoint", f"127.0.0.1:{port}"])
        with pytest.raises(AssertionError, match="fsd exited with 1"):
            daemon.start(timeout=30)
    assert f"fsd: cannot serve metrics at 127.0.0.1:{port}: Address already in use" in (
        daemon.log_tail()
    )
