"""fsworker/pulsar_fast.py against the real client and broker: what it sends through the
binding must read back exactly like what pulsar-client's public API sends.

pulsar_fast uses pulsar-client private names (``Consumer._consumer``,
``Producer._producer``, ``Producer._schema``). When pulsar-client is upgraded and
this fails: re-check fsworker/pulsar_fast.py against the new client's
``pulsar/__init__.py`` before widening the requirement in setup.cfg.
"""

from __future__ import annotations

import pulsar
import pytest

from fsworker.pulsar_fast import Sender, plain_publisher, receiver
from tests.helpers import unique
from tests.streams import client as pulsar_client


@pytest.fixture
def client(pulsar_url: str):  # type: ignore[no-untyped-def]
    c = pulsar_client(pulsar_url)
    yield c
    c.close()


def _read(client: pulsar.Client, topic: str, n: int) -> list[pulsar.Message]:
    consumer = client.subscribe(topic, "check", initial_position=pulsar.InitialPosition.Earliest)
    try:
        return [consumer.receive(10_000) for _ in range(n)]
    finally:
        consumer.close()


def test_the_private_names_are_still_there(client: pulsar.Client) -> None:
    topic = unique("fast-names")
    consumer = client.subscribe(topic, "s")
    producer = client.create_producer(topic)
    try:
        raw = receiver(consumer)
        assert raw is not consumer, "pulsar.Consumer._consumer is gone: fsworker/pulsar_fast.py"
        for name in ("receive", "acknowledge", "acknowledge_cumulative", "negative_acknowledge"):
            assert callable(getattr(raw, name)), f"the consumer binding has no {name}"
        sender = Sender(producer)
        assert sender.fast, "pulsar.Producer._producer/_schema changed: fsworker/pulsar_fast.py"
    finally:
        producer.close()
        consumer.close()


def test_sent_through_the_binding_reads_back_like_the_public_api(client: pulsar.Client) -> None:
    source, out = unique("fast-in"), unique("fast-out")
    producer = client.create_producer(source, batching_enabled=False)
    producer.send(b"with", properties={"trace": "t1"}, partition_key="k1", event_timestamp=1234)
    producer.send(b"without")
    producer.send(b"tagged", properties={"fs-function": "upstream", "x": "y"})
    producer.close()
    consumer = client.subscribe(source, "s", initial_position=pulsar.InitialPosition.Earliest)
    raw = receiver(consumer)
    inputs = [raw.receive(10_000) for _ in range(3)]
    output = client.create_producer(out, batching_enabled=True, batching_max_publish_delay_ms=10)
    sender = Sender(output)
    fallback: list[bytes] = []

    def general(msg: pulsar.Message, outputs: list[bytes]) -> int:
        fallback.extend(outputs)
        props = dict(msg.properties())
        props["fs-function"] = "f"
        for record in outputs:
            sender.send(record, props, None, None, None, None)
        return len(outputs)

    publish = plain_publisher(sender, ("fs-function", "f"), True, True, True, general)
    assert publish(inputs[0], [b"a", b"b"]) == 2
    assert publish(inputs[1], [b"c"]) == 1
    assert publish(inputs[2], [b"d"]) == 1
    assert publish(inputs[1], []) == 0
    confirmed: list[object] = []
    sender.flush_async(confirmed.append)
    output.flush()
    assert confirmed == [pulsar.Result.Ok]
    for msg in inputs:
        raw.acknowledge(msg)
    consumer.close()
    got = _read(client, out, 4)
    output.close()
    assert [m.data() for m in got] == [b"a", b"b", b"c", b"d"]
    assert got[0].properties() == {"trace": "t1", "fs-function": "f"}
    assert got[0].partition_key() == "k1" and got[0].event_timestamp() == 1234
    assert got[2].properties() == {"fs-function": "f"}
    assert got[2].partition_key() == "" and got[2].event_timestamp() == 0
    # An input that already carries fs-function: replaced (general path), never repeated.
    assert fallback == [b"d"]
    assert got[3].properties() == {"fs-function": "f", "x": "y"}


def test_a_stand_in_producer_is_used_through_its_public_methods() -> None:
    class StandIn:
        def __init__(self) -> None:
            self.sent: list[tuple[bytes, dict[str, object]]] = []

        def send_async(self, data: bytes, callback: object, **kwargs: object) -> None:
            self.sent.append((data, kwargs))

        def flush(self) -> None:
            raise RuntimeError("down")

    stand_in = StandIn()
    sender = Sender(stand_in)
    assert not sender.fast
    sender.send(b"x", {"a": "b"}, ("fs-function", "f"), "k", 5, None)
    assert stand_in.sent == [
        (b"x", {"properties": {"a": "b", "fs-function": "f"}, "partition_key": "k",
                "event_timestamp": 5})
    ]  # fmt: skip
    results: list[object] = []
    sender.flush_async(results.append)
    assert isinstance(results[0], RuntimeError)
