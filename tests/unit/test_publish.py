"""What goes out with each output (fsworker/publish.py), through stand-in producers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from fscommon.function_options import FunctionOptions
from fsworker.guest import GuestError
from fsworker.host_context import OutputMeta
from fsworker.publish import Publisher


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict[str, Any]]] = []

    def send_async(self, data: bytes, callback: object, **kwargs: Any) -> None:
        self.sent.append((data, kwargs))


class Msg:
    def __init__(self, props: dict[str, str] | None = None, key: str = "", t: int = 0) -> None:
        self._props, self._key, self._t = props or {}, key, t

    def properties(self) -> dict[str, str]:
        return dict(self._props)

    def partition_key(self) -> str:
        return self._key

    def event_timestamp(self) -> int:
        return self._t

    def topic_name(self) -> str:
        return "persistent://public/default/in"

    def message_id(self) -> Any:
        return SimpleNamespace(ledger_id=lambda: 7, entry_id=lambda: 3, batch_index=lambda: -1)


def publisher(**options: Any) -> tuple[Publisher, Producer]:
    producer = Producer()
    io = SimpleNamespace(output=producer, spec=SimpleNamespace(output="out"))
    return Publisher(io, FunctionOptions(**options), "fn"), producer


def test_key_properties_and_event_time_pass_through_with_fs_function() -> None:
    pub, producer = publisher()
    failures: dict[int, tuple[str, str]] = {}
    sent = pub.publish_batch(
        [Msg({"trace": "t"}, "k", 42), Msg()], [[b"a"], [b"b"]], None, failures
    )
    assert sent == 2 and not failures
    assert producer.sent[0] == (
        b"a",
        {"properties": {"trace": "t", "fs-function": "fn"}, "partition_key": "k",
         "event_timestamp": 42},
    )  # fmt: skip
    assert producer.sent[1] == (b"b", {"properties": {"fs-function": "fn"}})


def test_nothing_passes_through_with_none() -> None:
    pub, producer = publisher(pass_through=[])
    pub.publish_batch([Msg({"trace": "t"}, "k", 42)], [[b"a"]], None, {})
    assert producer.sent == [(b"a", {"properties": {"fs-function": "fn"}})]


def test_an_input_property_named_fs_function_is_replaced_not_repeated() -> None:
    pub, producer = publisher()
    pub.publish_batch([Msg({"fs-function": "upstream"})], [[b"a"]], None, {})
    assert producer.sent == [(b"a", {"properties": {"fs-function": "fn"}})]


def test_the_guests_metadata_wins_and_an_empty_override_passes_through() -> None:
    pub, producer = publisher()
    overrides = [OutputMeta(key="mine", properties={"x": "1"}, event_time=9), OutputMeta()]
    pub.publish_batch([Msg({"trace": "t"}, "k", 42)] * 2, [[b"a"], [b"b"]], overrides, {})
    assert producer.sent[0][1] == {
        "properties": {"trace": "t", "fs-function": "fn", "x": "1"},
        "partition_key": "mine",
        "event_timestamp": 9,
    }
    assert producer.sent[1][1] == {
        "properties": {"trace": "t", "fs-function": "fn"},
        "partition_key": "k",
        "event_timestamp": 42,
    }


def test_guest_errors_and_earlier_failures_send_nothing() -> None:
    pub, producer = publisher()
    failures = {0: ("schema", "bad")}
    outcomes = [None, GuestError("trap", "boom"), [], [b"c", b"d"]]
    sent = pub.publish_batch([Msg()] * 4, outcomes, None, failures)
    assert sent == 2
    assert failures == {0: ("schema", "bad"), 1: ("trap", "boom")}
    assert [data for data, _ in producer.sent] == [b"c", b"d"]


def test_a_schema_failure_sends_none_of_that_inputs_outputs() -> None:
    pub, producer = publisher(output_schema="json")
    failures: dict[int, tuple[str, str]] = {}
    pub.publish_batch([Msg(), Msg()], [[b"{}", b"not json"], [b"[1]"]], None, failures)
    assert list(failures) == [0] and failures[0][0] == "schema"
    assert [data for data, _ in producer.sent] == [b"[1]"]


def test_effectively_once_numbers_the_outputs_of_an_input() -> None:
    producer = Producer()
    io = SimpleNamespace(
        output=None, spec=SimpleNamespace(output="out"), dedup_output=lambda topic: producer
    )
    pub = Publisher(io, FunctionOptions(guarantee="effectively-once", ordering="strict"), "fn")
    pub.publish_batch([Msg()], [[b"a", b"b"]], None, {})
    seqs = [kwargs["sequence_id"] for _, kwargs in producer.sent]
    assert seqs[1] == seqs[0] + 1 and seqs[0] == (7 << 40) | (3 << 20) | (0 << 8)
