"""The dlq command's pure parts: request checks, topics, ids, replay properties."""

from __future__ import annotations

import pytest

from fscommon.protocol import DLQ_SUBSCRIPTION, REPLAYED_FROM, REPLAYED_FROM_TOPIC
from fsd.control_server import HandlerError
from fsd.dead_letter_box import dead_letter_id, describe, replay_properties
from fsd.dead_letters import dead_letter_topics
from fsd.function_spec import FunctionSpec
from fsd.request_validation import RequestInvalid, validate_args


class _Id:
    def __init__(self, ledger: int, entry: int, batch: int = -1) -> None:
        self._v = (ledger, entry, batch)

    def ledger_id(self) -> int:
        return self._v[0]

    def entry_id(self) -> int:
        return self._v[1]

    def batch_index(self) -> int:
        return self._v[2]


class _Msg:
    """What the dead-letter box reads of a pulsar.Message."""

    def __init__(self, props: dict[str, str], batch: int = -1, key: str = "") -> None:
        self._props, self._id, self._key = props, _Id(12, 34, batch), key

    def message_id(self) -> _Id:
        return self._id

    def properties(self) -> dict[str, str]:
        return dict(self._props)

    def publish_timestamp(self) -> int:
        return 1000

    def partition_key(self) -> str:
        return self._key

    def data(self) -> bytes:
        return b"payload"


DEAD = {
    "origin": "app",
    "fs-error-kind": "trap",
    "fs-error": "wasm trap: boom",
    "fs-function": "f",
    "fs-replica": "0",
    "fs-original-message-id": "(1,2,-1,-1)",
    "fs-original-topic": "persistent://public/default/in",
    "fs-attempts": "4",
}


def test_ids_entries_and_replay_properties():
    assert dead_letter_id(_Msg(DEAD)) == "12:34"
    assert dead_letter_id(_Msg(DEAD, batch=2)) == "12:34:2"
    entry = describe(_Msg(DEAD, key="k"), "t-DLQ")
    assert entry == {
        "id": "12:34", "topic": "t-DLQ", "error_kind": "trap", "error": "wasm trap: boom",
        "attempts": 4, "original_topic": "persistent://public/default/in",
        "original_message_id": "(1,2,-1,-1)", "replica": "0", "publish_time": 1000,
        "key": "k", "size": 7,
    }  # fmt: skip
    # The dead letter's reasons go; the original properties stay; where it came from is added.
    assert replay_properties(_Msg(DEAD), "t-DLQ") == {
        "origin": "app", REPLAYED_FROM: "12:34", REPLAYED_FROM_TOPIC: "t-DLQ"
    }  # fmt: skip
    assert DLQ_SUBSCRIPTION == "fs-dlq"


def _spec(inputs: list[str], **options) -> FunctionSpec:
    return FunctionSpec(name="f", package="p", kind="abi", inputs=inputs, output=None,
                        options=options)  # fmt: skip


def test_dead_letter_topics_follow_the_worker():
    spec = _spec(["in", "persistent://t/n/other"])
    assert dead_letter_topics(spec) == [
        "persistent://public/default/in-f-DLQ",
        "persistent://t/n/other-f-DLQ",
    ]
    assert dead_letter_topics(_spec(["a", "b"], dead_letter_topic="errors")) == [
        "persistent://public/default/errors"
    ]
    with pytest.raises(HandlerError, match="--dead-letter-topic"):
        dead_letter_topics(_spec([], input_pattern="persistent://public/default/x-.*"))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ({"op": "show"}, "show needs an id"),
        ({"op": "show", "id": "12"}, "invalid dead-letter id"),
        ({"op": "replay"}, "either ids"),
        ({"op": "replay", "ids": ["1:2"], "all": True}, "either ids"),
        ({"op": "replay", "ids": ["1:2", "x"]}, "invalid dead-letter id"),
        ({"op": "list", "limit": 0}, "limit must be"),
        ({"op": "drop"}, "op must be one of list, show, replay, purge"),
        ({"op": "list", "force": True}, "unexpected field"),
    ],
)
def test_bad_dlq_requests_are_refused_before_the_handler(args: dict, says: str):
    with pytest.raises(RequestInvalid, match=says):
        validate_args("dlq", {"name": "f", **args})


def test_good_dlq_requests_pass():
    for args in (
        {"op": "list", "limit": 10},
        {"op": "show", "id": "12:34:0"},
        {"op": "replay", "ids": ["12:34"], "dry_run": True},
        {"op": "replay", "all": True},
        {"op": "purge"},
    ):
        validate_args("dlq", {"name": "f", **args})
