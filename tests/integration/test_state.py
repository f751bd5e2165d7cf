"""Stateful functions on a real broker: wordcount, state across crashes, config, guest logs."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter

import pulsar
import pytest

from tests.helpers import EXAMPLES, Fsd, unique, wait_for
from tests.streams import client

pytestmark = pytest.mark.integration

WORDCOUNT = str(EXAMPLES / "wordcount" / "c" / "wordcount.wasm")
VOCABULARY = [f"word{i:02d}" for i in range(40)] + ["a", "an", "to", "of"]


def _lines(count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(1, 8))) for _ in range(count)
    ]


def _produce_lines(url: str, topic: str, lines: list[str]) -> None:
    c = client(url)
    try:
        producer = c.create_producer(
            topic, batching_type=pulsar.BatchingType.KeyBased, block_if_queue_full=True
        )
        for line in lines:
            producer.send_async(line.encode(), None, partition_key=line.split(" ")[0])
        producer.flush()
    finally:
        c.close()


def _expected(lines: list[str], min_length: int = 1) -> Counter[str]:
    return Counter(w for line in lines for w in line.split(" ") if len(w) >= min_length)


def _processed(fsd: Fsd, name: str) -> int:
    return sum(r["processed"] for r in fsd.replicas(name))


def _state(fsd: Fsd, name: str, key: str) -> str | None:
    result = fsd.ctl("state", "get", "-n", name, key)
    return result.stdout.strip() if result.returncode == 0 else None


def test_wordcount_is_exact_across_two_replicas_and_survives_crashes(fsd: Fsd, pulsar_url: str):
    name, inp, out = unique("wc"), unique("lines"), unique("counts")
    created = fsd.ctl("create", "-n", name, "-a", WORDCOUNT, "-i", inp, "-o", out, "-r", "2",
                      "--ordering", "key")  # fmt: skip
    assert created.returncode == 0, created.stderr
    lines = _lines(10_000)
    _produce_lines(pulsar_url, inp, lines)
    wait_for(lambda: _processed(fsd, name) >= 10_000, 120, "10k lines processed")
    expected = _expected(lines)
    listed = fsd.ctl_json("state", "list", "-n", name, "--limit", "1000")
    assert {item["key"]: int(item["value"]) for item in listed} == dict(expected)
    assert all(r["processed"] > 0 for r in fsd.replicas(name)), "both replicas took lines"

    # The outputs carry the running count: the last one per word is the total.
    c = client(pulsar_url)
    reader = c.create_reader(out, pulsar.MessageId.earliest)
    last: dict[str, int] = {}
    read = 0
    deadline = time.monotonic() + 120  # a deadline for the whole read, not per message
    while last != dict(expected) and time.monotonic() < deadline:
        try:
            record = json.loads(reader.read_next(1000).data())
        except pulsar.Timeout:
            continue
        read += 1
        last[record["word"]] = max(last.get(record["word"], 0), record["count"])
    c.close()
    short = {w: (last.get(w), n) for w, n in expected.items() if last.get(w) != n}
    assert not short, f"after {read} output records, word: (last count seen, state): {short}"

    # kill -9 a replica: state is on disk, the replica comes back with it.
    os.kill(fsd.replicas(name)[0]["pid"], signal.SIGKILL)
    wait_for(lambda: fsd.replicas(name)[0]["restarts"] == 1, 30, "the restart")
    fsd.wait_running(name, 2)
    # fsd restart: still there, and counting goes on from it.
    fsd.stop()
    fsd.start()
    fsd.wait_running(name, 2)
    assert _state(fsd, name, "word07") == str(expected["word07"])
    _produce_lines(pulsar_url, inp, ["word07 word07"])
    wait_for(lambda: _state(fsd, name, "word07") == str(expected["word07"] + 2), 30, "counting on")

    # fsctl state writes what the function then reads.
    assert fsd.ctl("state", "put", "-n", name, "word01", "1000").returncode == 0
    _produce_lines(pulsar_url, inp, ["word01"])
    wait_for(lambda: _state(fsd, name, "word01") == "1001", 30, "the function to add to 1000")
    assert fsd.ctl("state", "delete", "-n", name, "word01").returncode == 0
    missing = fsd.ctl("state", "get", "-n", name, "word01")
    assert missing.returncode == 1 and missing.stdout.strip() == "(missing)"

    # delete keeps state; --purge removes it.
    assert fsd.ctl("delete", "-n", name).returncode == 0
    assert _state(fsd, name, "word07") == str(expected["word07"] + 2)
    recreated = fsd.ctl("create", "-n", name, "-a", WORDCOUNT, "-i", inp, "-o", out)
    assert recreated.returncode == 0
    assert fsd.ctl("delete", "-n", name, "--purge").returncode == 0
    gone = fsd.ctl("state", "get", "-n", name, "word07")
    assert gone.returncode == 1 and "does not exist" in gone.stderr


def test_config_updates_reach_the_function_and_guest_logs_reach_the_worker_log(
    fsd: Fsd, pulsar_url: str
):
    name, inp, out = unique("wcfg"), unique("lines"), unique("counts")
    created = fsd.ctl("create", "-n", name, "-a", WORDCOUNT, "-i", inp, "-o", out,
                      "--config", "min_length=5")  # fmt: skip
    assert created.returncode == 0, created.stderr
    _produce_lines(pulsar_url, inp, ["an apple to eat"])
    wait_for(lambda: _state(fsd, name, "apple") == "1", 30, "apple counted")
    assert _state(fsd, name, "an") is None, "words shorter than min_length=5 are skipped"

    updated = fsd.ctl("update", "-n", name, "--config", "min_length=2")
    assert updated.returncode == 0, updated.stderr
    _produce_lines(pulsar_url, inp, ["an apple"])
    wait_for(lambda: _state(fsd, name, "an") == "1", 30, "the new min_length to apply")

    # A line without words makes the guest log "empty line" through fs.log.
    _produce_lines(pulsar_url, inp, ["!!! ???"])
    log_path = fsd.state_dir / "logs" / f"{name}.0.log"

    def guest_line() -> dict | None:
        for line in log_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("source") == "guest" and "empty line" in record.get("event", ""):
                return record
        return None

    record = wait_for(guest_line, 30, "the guest's log line")
    assert record["function"] == name and record["replica"] == 0
