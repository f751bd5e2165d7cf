"""Poison messages with the defaults; at-most-once under kill -9 and without its ledger (issue 11).

A message that makes the guest loop forever, or that kills the worker outright,
must reach the dead-letter topic after ``max_retries + 1`` attempts with the right
``fs-error-kind`` and ``fs-attempts``, every other message of its batch must come
out, and the replica must be RUNNING at the end. Real fsd, real workers, the
real broker. The messages are produced before the function is created, so the
worker takes them as one batch.
"""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from tests import wasm_fixtures as fx
from tests.helpers import EXAMPLES, Fsd, unique, wait_for
from tests.streams import OutputCollector, Reader, StreamProducer, report, send

pytestmark = pytest.mark.integration

BASIC = str(EXAMPLES / "basic" / "c" / "basic.wasm")
NS = "persistent://public/default/"
GOOD = [f"good-{i}".encode() for i in range(20)]


def _run_poison_case(
    fsd: Fsd, pulsar_url: str, name: str, wat: str, poison: list[bytes], *flags: str
) -> tuple[list, dict]:
    """Create the function over a backlog of GOOD with ``poison`` in its middle.

    Returns the dead letters and the replica's status once every good message
    came out and every poison message was dead-lettered.
    """
    inp, out = unique("in"), unique("out")
    outputs, dlq = Reader(pulsar_url, out), Reader(pulsar_url, f"{NS}{inp}-{name}-DLQ")
    send(pulsar_url, inp, GOOD[:10] + poison + GOOD[10:])
    wasm = str(fx.write(fsd.workdir, name, wat))
    result = fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "-o", out, "--no-wait", *flags)
    assert result.returncode == 0, result.stderr
    try:
        dead = dlq.wait(len(poison), timeout=180)
        # At-least-once: a good message taken in a batch before a crash may come out twice.
        wait_for(
            lambda: {m.data() for m in outputs.more_within(0.5) + outputs.messages} >= set(GOOD),
            30,
            "every good message out",
        )
        assert {m.data() for m in outputs.messages} == set(GOOD)
        replica = wait_for(
            lambda: (r := fsd.replicas(name)[0])["state"] == "RUNNING" and r,
            30,
            "the replica RUNNING again",
        )
        return dead, replica
    finally:
        outputs.close()
        dlq.close()


def test_three_looping_messages_in_one_batch_with_the_defaults(fsd: Fsd, pulsar_url: str):
    """--timeout-ms 5000, heartbeat_timeout 10 s: 15 s in the guest per batch is not a hang."""
    name = unique("loop3")
    poison = [b"L1 loops", b"L2 loops", b"L3 loops"]
    dead, replica = _run_poison_case(fsd, pulsar_url, name, fx.LOOP_ON_L, poison)
    assert sorted(m.data() for m in dead) == poison
    for msg in dead:
        props = msg.properties()
        assert props["fs-error-kind"] == "timeout", props
        assert props["fs-attempts"] == "4", props  # max_retries 3 (the default) + 1
    assert replica["restarts"] == 0, replica  # never taken for hung
    wait_for(
        lambda: (r := fsd.replicas(name)[0])["dead_lettered"] == 3 and r["processed"] == len(GOOD),
        10,
        "the counters in status",
    )


def test_one_looping_message_in_a_process_batch_call(fsd: Fsd, pulsar_url: str):
    """The batch call of 21 messages may take 21 s at --timeout-ms 1000: fsd waits for it."""
    name = unique("loopbatch")
    dead, replica = _run_poison_case(
        fsd, pulsar_url, name, fx.BATCH_ECHO, [b"L loops"], "--timeout-ms", "1000"
    )
    props = dead[0].properties()
    assert dead[0].data() == b"L loops"
    assert props["fs-error-kind"] == "timeout" and props["fs-attempts"] == "4", props
    assert replica["restarts"] == 0, replica


def test_a_message_that_kills_the_worker_is_dead_lettered(workdir, pulsar_url: str):
    """No real guest can crash the host, so the fault FSWORKER_ABORT_ON (fsworker/faults.py)
    makes the worker call abort() when its guest is given a payload starting with 'K'."""
    name = unique("abort")
    fsd = Fsd(workdir, pulsar_url, env={"FSWORKER_ABORT_ON": f"{name}:K"}).start()
    try:
        dead, replica = _run_poison_case(fsd, pulsar_url, name, fx.ECHO, [b"K kills"])
        props = dead[0].properties()
        assert dead[0].data() == b"K kills"
        assert props["fs-error-kind"] == "crash", props
        assert props["fs-attempts"] == "4", props  # every attempt ended with the worker dying
        assert replica["restarts"] == 4, replica  # one per attempt, and not FATAL
    finally:
        fsd.stop()


def test_a_worker_killing_message_with_more_retries_than_restarts_is_not_fatal(
    workdir, pulsar_url: str
):
    """--max-retries 7 > max_restarts 5: the exits it causes alone are not counted (issue 11)."""
    name = unique("abort7")
    fsd = Fsd(
        workdir,
        pulsar_url,
        extra=["--backoff-base", "0.2"],
        env={"FSWORKER_ABORT_ON": f"{name}:K"},
    ).start()
    try:
        dead, replica = _run_poison_case(
            fsd, pulsar_url, name, fx.ECHO, [b"K kills"], "--max-retries", "7"
        )
        props = dead[0].properties()
        assert props["fs-error-kind"] == "crash" and props["fs-attempts"] == "8", props
        assert replica["restarts"] == 8, replica  # one per attempt, and never FATAL
    finally:
        fsd.stop()


def test_at_most_once_never_processes_a_message_twice_under_kill9(workdir, pulsar_url: str):
    """kill -9 of one of two replicas every ~second during a stream: no output twice."""
    fsd = Fsd(workdir, pulsar_url, extra=["--max-restarts", "100"]).start()
    try:
        name, inp, out = unique("amo"), unique("in"), unique("out")
        collector = OutputCollector(pulsar_url, out)
        result = fsd.ctl("create", "-n", name, "-a", BASIC, "-i", inp, "-o", out, "-r", "2",
                         "--guarantee", "at-most-once")  # fmt: skip
        assert result.returncode == 0, result.stderr
        fsd.wait_running(name, 2)
        total = 8000
        stream = StreamProducer(pulsar_url, inp, count=total, rate=1000)
        stream.start()
        kills = 0
        rng = random.Random(11)
        while stream.is_alive():
            time.sleep(rng.uniform(0.6, 1.2))
            running = [r for r in fsd.replicas(name) if r["state"] == "RUNNING"]
            if running:
                os.kill(rng.choice(running)["pid"], signal.SIGKILL)
                kills += 1
        stream.finish()
        seen = collector.collect_until(total, 60, quiet=3.0)
        missing, duplicates = report(seen, total)
        collector.close()
        print(f"at-most-once: {kills} kills, {len(missing)} lost, {duplicates} duplicates")
        assert kills >= 4
        twice = [k for k, n in seen.items() if n > 1]
        assert twice == [], f"{len(twice)} inputs came out more than once, e.g. {twice[:5]}"
    finally:
        fsd.stop()


def test_at_most_once_does_not_run_without_its_ledger_and_recovers_when_it_opens(
    workdir, pulsar_url: str
):
    """A replica that cannot open its attempt ledger exits CRASH under at-most-once (without
    it a redelivered batch would be processed twice), and fsd restarts it until the ledger
    opens. At-least-once runs on without it, with its error line."""
    fsd = Fsd(
        workdir, pulsar_url, extra=["--max-restarts", "100", "--backoff-base", "0.2",
                                    "--backoff-cap", "0.4"],
    ).start()  # fmt: skip
    amo, alo = unique("amoled"), unique("aloled")
    attempts = fsd.state_dir / "attempts"
    # A directory where the ledger file should be: SQLite cannot open it, even as root.
    for name in (amo, alo):
        (attempts / f"{name}.sqlite3").mkdir(parents=True)
    readers = []
    try:
        echo = str(fx.write(fsd.workdir, "echo", fx.ECHO))
        for name, guarantee in ((amo, "at-most-once"), (alo, "at-least-once")):
            inp, out = unique("in"), unique("out")
            send(pulsar_url, inp, GOOD)
            readers.append(Reader(pulsar_url, out))
            result = fsd.ctl("create", "-n", name, "-a", echo, "-i", inp, "-o", out,
                             "--guarantee", guarantee, "--no-wait")  # fmt: skip
            assert result.returncode == 0, result.stderr
        amo_out, alo_out = readers

        # At-least-once: running, everything out, never restarted.
        assert len(alo_out.wait(len(GOOD), timeout=60)) == len(GOOD)
        assert fsd.replicas(alo)[0]["restarts"] == 0
        assert "cannot open the attempt ledger" in fsd.ctl("logs", "-n", alo).stdout

        crashed = wait_for(
            lambda: (r := fsd.replicas(amo)[0])["restarts"] >= 2 and r, 30, "two restarts"
        )
        assert crashed["last_exit"] == "exit 1 (CRASH)", crashed
        assert "cannot open the attempt ledger" in crashed["last_error"], crashed
        assert "at-most-once does not run without it" in crashed["last_error"], crashed
        assert amo_out.more_within(1.0) == [], "at-most-once ran without its ledger"

        (attempts / f"{amo}.sqlite3").rmdir()
        assert len(amo_out.wait(len(GOOD), timeout=60)) == len(GOOD)
        wait_for(lambda: fsd.replicas(amo)[0]["state"] == "RUNNING", 30, "RUNNING")
    finally:
        for reader in readers:
            reader.close()
        fsd.stop()
