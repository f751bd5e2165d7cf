"""The data path on a real broker: retries, dead letters, limits, schemas, guarantees, ordering."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import defaultdict

import pulsar
import pytest

from tests import wasm_fixtures as fx
from tests.dead_letter_fixtures import MEMORY_BOMB
from tests.helpers import EXAMPLES, Fsd, unique, wait_for
from tests.streams import OutputCollector, Reader, StreamProducer, client, person, report, send

pytestmark = pytest.mark.integration

BASIC = str(EXAMPLES / "basic" / "c" / "basic.wasm")
NS = "persistent://public/default/"


def _create(fsd: Fsd, name: str, *args: str, replicas: int = 1) -> list[dict]:
    result = fsd.ctl("create", "-n", name, "-r", str(replicas), *args)
    assert result.returncode == 0, result.stderr
    return fsd.wait_running(name, replicas)


def test_poison_message_is_dead_lettered_after_exactly_max_retries(fsd: Fsd, pulsar_url: str):
    name, inp, out = unique("poison"), unique("in"), unique("out")
    outputs, dlq = Reader(pulsar_url, out), Reader(pulsar_url, f"{NS}{inp}-{name}-DLQ")
    wasm = str(fx.write(fsd.workdir, "echo", fx.ECHO))
    _create(fsd, name, "-a", wasm, "-i", inp, "-o", out, "--max-retries", "2",
            "--retry-delay-ms", "200")  # fmt: skip
    send(pulsar_url, inp, [b"before", b"X marks the trap", b"after"], properties={"p": "1"})
    assert sorted(m.data() for m in outputs.wait(2)) == [b"after", b"before"]
    dead = dlq.wait(1)[0]
    assert dead.data() == b"X marks the trap"
    props = dead.properties()
    assert props["fs-error-kind"] == "trap"
    assert "wasm trap" in props["fs-error"]
    assert props["fs-function"] == name and props["fs-replica"] == "0"
    assert props["fs-attempts"] == "3"  # the first attempt and exactly 2 retries
    assert props["fs-original-topic"] == f"{NS}{inp}" and props["fs-original-message-id"]
    assert props["p"] == "1"
    replica = wait_for(
        lambda: (r := fsd.replicas(name)[0])["dead_lettered"] == 1 and r, 10, "counters"
    )
    assert (replica["failed"], replica["retried"], replica["processed"]) == (3, 2, 2)
    assert replica["state"] == "RUNNING" and replica["restarts"] == 0
    outputs.close()
    dlq.close()


def test_time_and_memory_limits_dead_letter_and_replica_stays_running(fsd: Fsd, pulsar_url):
    for wat, payload, kind, flags in [
        (fx.LOOP_ON_L, b"Loop forever", "timeout", ["--timeout-ms", "200"]),
        (MEMORY_BOMB, b"More memory", "memory-limit", ["--memory-limit", "2MiB"]),
    ]:
        name, inp, out = unique(kind), unique("in"), unique("out")
        outputs, dlq = Reader(pulsar_url, out), Reader(pulsar_url, f"{NS}{inp}-{name}-DLQ")
        wasm = str(fx.write(fsd.workdir, kind, wat))
        pid = _create(fsd, name, "-a", wasm, "-i", inp, "-o", out, "--max-retries", "0",
                      *flags)[0]["pid"]  # fmt: skip
        send(pulsar_url, inp, [payload, b"fine"])
        assert [m.data() for m in outputs.wait(1)] == [b"fine"]
        dead = dlq.wait(1)[0]
        assert dead.data() == payload
        assert dead.properties()["fs-error-kind"] == kind, dead.properties()
        replica = fsd.replicas(name)[0]
        assert replica["state"] == "RUNNING" and replica["pid"] == pid
        outputs.close()
        dlq.close()


def test_malformed_json_and_schema_violations_are_dead_lettered(fsd: Fsd, pulsar_url: str):
    name, inp, out = unique("schema"), unique("in"), unique("out")
    schema = fsd.workdir / "person.schema.json"
    schema.write_text(json.dumps({
        "type": "object", "required": ["name", "money"],
        "properties": {"name": {"type": "string"}, "money": {"type": "integer"}},
    }))  # fmt: skip
    outputs, dlq = Reader(pulsar_url, out), Reader(pulsar_url, f"{NS}{inp}-{name}-DLQ")
    _create(fsd, name, "-a", BASIC, "-i", inp, "-o", out, "--max-retries", "0",
            "--input-schema", "json", "--json-schema", str(schema),
            "--output-schema", "json")  # fmt: skip
    send(pulsar_url, inp, [b"{not json", b'{"name":"x"}', b'{"name":"ok","money":1}'])
    assert [m.data() for m in outputs.wait(1)] == [b'{"name":"ok","money":2,"expected":0}']
    reasons = {m.data(): m.properties() for m in dlq.wait(2)}
    assert reasons[b"{not json"]["fs-error-kind"] == "schema"
    assert "input is not valid JSON" in reasons[b"{not json"]["fs-error"]
    assert "'money' is a required property" in reasons[b'{"name":"x"}']["fs-error"]
    outputs.close()
    dlq.close()


def test_chaos_kill9_every_second_loses_nothing(workdir, pulsar_url: str):
    fsd = Fsd(workdir, pulsar_url, extra=["--max-restarts", "50"]).start()
    try:
        name, inp, out = unique("chaos"), unique("in"), unique("out")
        collector = OutputCollector(pulsar_url, out)
        _create(fsd, name, "-a", BASIC, "-i", inp, "-o", out, replicas=2)
        total = 20_000
        stream = StreamProducer(pulsar_url, inp, count=total, rate=2000)
        stream.start()
        kills = 0
        rng = random.Random(7)
        while stream.is_alive():
            time.sleep(rng.uniform(1.0, 2.0))
            running = [r for r in fsd.replicas(name) if r["state"] == "RUNNING"]
            if running:
                os.kill(rng.choice(running)["pid"], signal.SIGKILL)
                kills += 1
        stream.finish()
        missing, duplicates = report(collector.collect_until(total, 120), total)
        print(f"chaos: {kills} kills, {duplicates} duplicates")
        collector.close()
        assert kills >= 4
        assert missing == [], f"{len(missing)} lost, e.g. {missing[:5]}"
    finally:
        fsd.stop()


@pytest.mark.parametrize("guarantee", ["at-least-once", "effectively-once"])
def test_crash_between_publish_and_ack(workdir, pulsar_url: str, guarantee: str):
    """effectively-once: a replayed input produces no second output; at-least-once: it does."""
    name, inp, out = unique("eo"), unique("in"), unique("out")
    fsd = Fsd(workdir, pulsar_url, env={
        "FSWORKER_FAULT": f"{name}:crash-after-publish:{workdir / 'fired'}",
    }).start()  # fmt: skip
    try:
        collector = OutputCollector(pulsar_url, out)
        send(pulsar_url, inp, [person(i) for i in range(200)])
        result = fsd.ctl("create", "-n", name, "-a", BASIC, "-i", inp, "-o", out,
                         "--guarantee", guarantee, "--ordering", "strict", "--no-wait")  # fmt: skip
        assert result.returncode == 0, result.stderr
        wait_for(lambda: fsd.replicas(name)[0]["restarts"] == 1, 30, "the injected crash")
        # A redelivered input is processed last, so its duplicate output comes late:
        # wait long enough after the last new record for it to show up.
        missing, duplicates = report(collector.collect_until(200, 60, quiet=5.0), 200)
        collector.close()
        assert missing == []
        if guarantee == "effectively-once":
            assert duplicates == 0
        else:
            assert duplicates > 0, "the control case must show the duplicates dedup removes"
    finally:
        fsd.stop()


def test_key_ordering_is_kept_per_key_across_two_replicas(fsd: Fsd, pulsar_url: str):
    name, inp, out = unique("keys"), unique("in"), unique("out")
    collector_client = client(pulsar_url)
    consumer = collector_client.subscribe(
        out, "order-check", initial_position=pulsar.InitialPosition.Earliest
    )
    replicas = _create(fsd, name, "-a", BASIC, "-i", inp, "-o", out, "--ordering", "key",
                       replicas=2)  # fmt: skip
    c = client(pulsar_url)
    producer = c.create_producer(
        inp, batching_type=pulsar.BatchingType.KeyBased, block_if_queue_full=True
    )
    keys = [f"k{i}" for i in range(20)]
    for seq in range(100):
        for key in keys:
            body = json.dumps({"name": key, "money": seq}).encode()
            producer.send_async(body, None, partition_key=key)
    producer.flush()
    c.close()
    last: dict[str, int] = defaultdict(lambda: 0)
    received = 0
    deadline = time.monotonic() + 60
    while received < 2000 and time.monotonic() < deadline:
        try:
            msg = consumer.receive(500)
        except pulsar.Timeout:
            continue
        consumer.acknowledge(msg)
        received += 1
        record = json.loads(msg.data())
        assert msg.partition_key() == record["name"], "the key passes through"
        assert record["money"] > last[record["name"]], f"order broken for {record['name']}"
        last[record["name"]] = record["money"]
    collector_client.close()
    assert received == 2000
    assert len(replicas) == 2
    counts = wait_for(
        lambda: (c := [r["processed"] for r in fsd.replicas(name)]) and sum(c) == 2000 and c,
        10,
        "both replicas' counters",
    )
    assert all(n > 0 for n in counts), f"both replicas take keys: {counts}"


def test_inputs_patterns_sinks_properties_and_at_most_once(fsd: Fsd, pulsar_url: str):
    # Two input topics; key, properties and event time pass through, plus fs-function.
    name, in1, in2, out = unique("multi"), unique("in"), unique("in"), unique("out")
    outputs = Reader(pulsar_url, out)
    _create(fsd, name, "-a", BASIC, "-i", in1, "-i", in2, "-o", out)
    send(pulsar_url, in1, [person(1)], partition_key="K1", properties={"trace": "t1"},
          event_timestamp=1234567)  # fmt: skip
    send(pulsar_url, in2, [person(2)])
    got = {json.loads(m.data())["name"]: m for m in outputs.wait(2)}
    first = got["m-1"]
    assert first.partition_key() == "K1" and first.event_timestamp() == 1234567
    assert first.properties() == {"trace": "t1", "fs-function": name}
    outputs.close()

    # A topic pattern picks up topics that match, including ones created later.
    prefix = unique("pat")
    pat_name, pat_out = unique("pattern"), unique("out")
    pattern_outputs = Reader(pulsar_url, pat_out)
    send(pulsar_url, f"{prefix}-a", [person(3)])
    _create(fsd, pat_name, "-a", BASIC, "--input-pattern", f"{NS}{prefix}-.*", "-o", pat_out)
    assert json.loads(pattern_outputs.wait(1)[0].data())["name"] == "m-3"
    pattern_outputs.close()

    # A sink (no output) with at-most-once: failures go straight to the dead-letter topic.
    sink, sink_in = unique("sink"), unique("in")
    dlq = Reader(pulsar_url, f"{NS}{sink_in}-{sink}-DLQ")
    wasm = str(fx.write(fsd.workdir, "echo", fx.ECHO))
    _create(fsd, sink, "-a", wasm, "-i", sink_in, "--guarantee", "at-most-once")
    send(pulsar_url, sink_in, [b"ok", b"X trap"])
    dead = dlq.wait(1)[0]
    assert dead.properties()["fs-attempts"] == "1"
    wait_for(lambda: fsd.replicas(sink)[0]["processed"] == 1, 10, "the sink to process")
    dlq.close()


def test_subscription_position_latest_skips_the_backlog(fsd: Fsd, pulsar_url: str):
    name, inp, out = unique("latest"), unique("in"), unique("out")
    outputs = Reader(pulsar_url, out)
    send(pulsar_url, inp, [person(1)])
    _create(fsd, name, "-a", BASIC, "-i", inp, "-o", out, "--subscription-position", "latest")
    send(pulsar_url, inp, [person(2)])
    assert [json.loads(m.data())["name"] for m in outputs.wait(1)] == ["m-2"]
    # Nothing else arrives: the earlier message was before the subscription.
    assert outputs.more_within(2.0) == []
    outputs.close()


PERSON_AVRO = {
    "type": "record",
    "name": "Person",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "money", "type": "long"},
        {"name": "expected", "type": "long"},
    ],
}


def test_avro_output_is_read_natively_by_other_pulsar_clients(fsd: Fsd, pulsar_url: str):
    from pulsar.schema import AvroSchema

    name, inp, out = unique("avro"), unique("in"), unique("out")
    schema_file = fsd.workdir / "person.avsc"
    schema_file.write_text(json.dumps(PERSON_AVRO))
    c = client(pulsar_url)
    try:
        native = c.subscribe(
            out, "native-avro", schema=AvroSchema(None, schema_definition=PERSON_AVRO),
            initial_position=pulsar.InitialPosition.Earliest,
        )  # fmt: skip
        _create(fsd, name, "-a", BASIC, "-i", inp, "-o", out, "--input-schema", "json",
                "--output-schema", "avro", "--avro-schema", str(schema_file))  # fmt: skip
        send(pulsar_url, inp, [b'{"name":"rbt","money":2}'])
        msg = native.receive(30_000)
        assert msg.value() == {"name": "rbt", "money": 3, "expected": 0}
    finally:
        c.close()


def test_a_backlog_drains_whole_batches_and_a_lone_message_still_flows(fsd: Fsd, pulsar_url):
    """Under load the loop takes whole batches (batch_receive): a backlog of several
    batches comes out whole and once, and a lone message after it still comes out."""
    name, inp, out = unique("backlog"), unique("in"), unique("out")
    total = 7_500  # several full batches, and a last one that is not full
    c = client(pulsar_url)
    producer = c.create_producer(inp, batching_max_messages=1000, block_if_queue_full=True)
    for i in range(total):
        producer.send_async(person(i), None)
    producer.flush()
    collector = OutputCollector(pulsar_url, out)
    try:
        _create(fsd, name, "-a", BASIC, "-i", inp, "-o", out)
        missing, duplicates = report(collector.collect_until(total, 90), total)
        assert not missing and not duplicates
        producer.send(person(total))  # alone, after the backlog is gone
        collector.collect_until(total + 1, 30, quiet=0)
        assert f"m-{total}" in collector.seen, "a lone message after the backlog came out"
    finally:
        collector.close()
        c.close()
    wait_for(lambda: fsd.replicas(name)[0]["processed"] == total + 1, 10, "processed count")
