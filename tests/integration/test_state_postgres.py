"""State shared across hosts in a real PostgreSQL: two fsd processes stand in for two hosts.

Also the state handler's busy reply (SQLite and PostgreSQL) and fsd's start-up
check of state_url.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pytest

from fsworker.state_store import SqliteStateStore, open_state_store
from tests.helpers import REPO, Fsd, unique, wait_for
from tests.integration.test_state import WORDCOUNT, _expected, _lines, _produce_lines

pytestmark = pytest.mark.integration


def _short_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="fs-", dir="/tmp"))


@pytest.fixture
def two_hosts(pulsar_url: str, postgres_url: str):
    """Two fsd processes: own state dirs and endpoints, same broker and state_url."""
    hosts = [
        Fsd(_short_dir(), pulsar_url, extra=["--state-url", postgres_url]).start() for _ in range(2)
    ]
    yield hosts
    for host in hosts:
        if host.proc is not None and host.proc.poll() is None:
            host.stop()


def _counts(fsd: Fsd, name: str) -> dict[str, int]:
    listed = fsd.ctl_json("state", "list", "-n", name, "--limit", "1000")
    return {item["key"]: int(item["value"]) for item in listed}


def _wordcount_on_each(hosts: list[Fsd], prefix: str) -> tuple[str, str, str]:
    """The same function (name, topics, so subscription) with 2 replicas on every host."""
    name, inp, out = unique(prefix), unique("lines"), unique("counts")
    for host in hosts:
        created = host.ctl("create", "-n", name, "-a", WORDCOUNT, "-i", inp, "-o", out,
                           "-r", "2")  # fmt: skip
        assert created.returncode == 0, created.stderr
    return name, inp, out


def test_wordcount_on_two_hosts_counts_exactly_in_postgresql(
    two_hosts: list[Fsd], pulsar_url: str, postgres_url: str
):
    a, b = two_hosts
    name, inp, out = _wordcount_on_each(two_hosts, "pgwc")
    lines = _lines(6000, seed=23)
    _produce_lines(pulsar_url, inp, lines)
    expected = dict(_expected(lines))
    wait_for(lambda: _counts(a, name) == expected, 180, "exact counts in PostgreSQL")
    assert _counts(b, name) == expected, "the other host reads the same state"
    per_replica = [r["processed"] for host in two_hosts for r in host.replicas(name)]
    assert sum(1 for n in per_replica if n > 0) >= 2, f"one consumer took all: {per_replica}"

    # The rows are in PostgreSQL itself, not in either host's state dir.
    store = open_state_store(name, url=postgres_url)
    assert int(store.get(b"word07") or 0) == expected["word07"]
    store.close()
    assert not (a.state_dir / "state" / f"{name}.sqlite3").exists()

    # Written through one host, counted on from the other.
    assert b.ctl("state", "put", "-n", name, "word01", "1000").returncode == 0
    _produce_lines(pulsar_url, inp, ["word01 word01"])
    wait_for(lambda: a.ctl("state", "get", "-n", name, "word01").stdout.strip() == "1002", 30,
             "the function to count on from 1000")  # fmt: skip

    # delete keeps the rows (readable from a host that never ran it); --purge removes them.
    for host in two_hosts:
        assert host.ctl("delete", "-n", name).returncode == 0
    kept = a.ctl("state", "get", "-n", name, "word01")
    assert kept.returncode == 0 and kept.stdout.strip() == "1002"
    assert a.ctl("delete", "-n", name, "--purge").returncode == 1, "no longer registered"
    recreated = a.ctl("create", "-n", name, "-a", WORDCOUNT, "-i", inp, "-o", out)
    assert recreated.returncode == 0, recreated.stderr
    purged = a.ctl("delete", "-n", name, "--purge")
    assert purged.returncode == 0, purged.stderr
    gone = b.ctl("state", "get", "-n", name, "word01")
    assert gone.returncode == 1 and "does not exist" in gone.stderr


def test_a_replica_killed_during_the_stream_loses_no_count(
    two_hosts: list[Fsd], pulsar_url: str, postgres_url: str
):
    a, b = two_hosts
    name, inp, _out = _wordcount_on_each(two_hosts, "pgkill")
    lines = _lines(12_000, seed=31)
    producer = threading.Thread(target=_produce_lines, args=(pulsar_url, inp, lines))
    producer.start()
    victim = wait_for(
        lambda: next((r for r in a.replicas(name) if r["processed"] > 300), None),
        120,
        "a replica of host A in the middle of the stream",
        interval=0.05,
    )
    os.kill(victim["pid"], signal.SIGKILL)
    producer.join(120)
    wait_for(lambda: a.replicas(name)[victim["replica"]]["restarts"] >= 1, 30, "the restart")
    expected = _expected(lines)
    total = sum(expected.values())

    def settled() -> dict[str, int] | None:
        counts = _counts(b, name)
        return counts if sum(counts.values()) >= total and set(counts) == set(expected) else None

    counts = wait_for(settled, 180, "every line counted after the kill")
    lost = {w: (counts.get(w), n) for w, n in expected.items() if counts.get(w, 0) < n}
    assert not lost, f"increments lost (word: state, expected): {lost}"
    # A batch committed but not yet acknowledged when the kill landed is redelivered; its
    # marks (fsworker/done_marks.py) keep it from being counted twice.
    extra = Counter({w: counts[w] - n for w, n in expected.items() if counts[w] > n})
    assert not extra, (
        f"{sum(extra.values())} words counted twice after the kill: {dict(extra.most_common(5))}"
    )


def test_state_put_answers_busy_while_a_batch_holds_the_sqlite_lock(fsd: Fsd):
    name = unique("busy")
    db = fsd.state_dir / "state" / f"{name}.sqlite3"
    holder = SqliteStateStore(db)
    holder.apply({b"k": b"old"}, {})
    holder.begin()  # what a replica's batch holds from its first state call to its commit
    try:
        busy = fsd.ctl("state", "put", "-n", name, "k", "new", timeout=30)
        assert busy.returncode == 1, busy
        assert busy.stderr.strip().endswith(
            f"state of {name} is locked by a running batch; try again"
        ), busy.stderr
        assert len(busy.stderr.strip().splitlines()) == 1
        read = fsd.ctl("state", "get", "-n", name, "k", timeout=5)
        assert read.stdout.strip() == "old", "reads do not wait for the batch"
        assert fsd.ctl("ping", timeout=5).returncode == 0
    finally:
        holder.abort()
        holder.close()
    assert fsd.ctl("state", "put", "-n", name, "k", "new").returncode == 0
    assert fsd.ctl("state", "get", "-n", name, "k").stdout.strip() == "new"


def test_state_put_answers_busy_while_a_batch_holds_the_postgresql_lock(
    two_hosts: list[Fsd], postgres_url: str
):
    a, _ = two_hosts
    name = unique("pgbusy")
    holder = open_state_store(name, url=postgres_url)
    holder.apply({b"k": b"old"}, {})
    holder.begin()
    try:
        busy = a.ctl("state", "put", "-n", name, "k", "new", timeout=30)
        assert busy.returncode == 1
        assert f"state of {name} is locked by a running batch; try again" in busy.stderr
        assert a.ctl("state", "get", "-n", name, "k").stdout.strip() == "old"
    finally:
        holder.abort()
    assert a.ctl("state", "put", "-n", name, "k", "new").returncode == 0
    assert holder.get(b"k") == b"new"
    holder.purge()
    holder.close()


def test_fsd_refuses_to_start_with_an_unreachable_state_url(pulsar_url: str):
    work = _short_dir()
    bad = "postgresql://fs:hidden-pw-42@127.0.0.1:1/statedb"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FS_STATE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "fsd", "--state-dir", str(work / "state"),
         "--endpoint", f"ipc://{work / 'fsd.sock'}", "--pulsar-url", pulsar_url,
         "--state-url", bad, "--log-json"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 1, result
    lines = [line for line in result.stderr.splitlines() if line.startswith("fsd:")]
    assert len(lines) == 1, result.stderr
    assert "127.0.0.1:1/statedb" in lines[0] and "state_url" in lines[0]
    assert "hidden-pw-42" not in result.stderr + result.stdout
    assert not (work / "fsd.sock").exists(), "nothing was started"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_crash_between_commit_and_ack_counts_nothing_twice(
    workdir: Path, pulsar_url: str, postgres_url: str, backend: str
):
    """The worker dies after its first batch committed its state, before the acks.

    The batch is redelivered; its marks (fsworker/done_marks.py), committed with the
    state, make the replica acknowledge it without counting again: exact counts.
    """
    from tests.integration.test_state import WORDCOUNT, _expected, _lines, _produce_lines

    name, inp, out = unique("eostate"), unique("lines"), unique("counts")
    extra = ["--state-url", postgres_url] if backend == "postgresql" else []
    fsd = Fsd(workdir, pulsar_url, extra=extra, env={
        "FSWORKER_FAULT": f"{name}:crash-after-publish:{workdir / 'fired'}",
    }).start()  # fmt: skip
    try:
        lines = _lines(3000, seed=41)
        _produce_lines(pulsar_url, inp, lines)
        created = fsd.ctl("create", "-n", name, "-a", WORDCOUNT, "-i", inp, "-o", out,
                          "--no-wait")  # fmt: skip
        assert created.returncode == 0, created.stderr
        wait_for(lambda: fsd.replicas(name)[0]["restarts"] == 1, 60, "the injected crash")
        expected = dict(_expected(lines))
        counts = wait_for(
            lambda: (c := _counts(fsd, name)) and sum(c.values()) >= sum(expected.values()) and c,
            120,
            "every line counted",
        )
        wait_for(lambda: fsd.replicas(name)[0]["processed"] >= 1, 30, "the replica running")
        assert counts == expected, {w: (counts.get(w), n) for w, n in expected.items()
                                    if counts.get(w) != n}  # fmt: skip
        assert not any(k.startswith("\x00") for k in counts), "marks are not listed"
    finally:
        fsd.stop()
