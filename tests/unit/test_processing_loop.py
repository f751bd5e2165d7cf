"""fsworker/loop.py over in-process stand-ins: heartbeats, and what it does after a rewind.

Heartbeats: fsd learns what a replica did as soon as it goes idle. Found in the
walkthrough: ``fsctl status`` right after the output came showed ``RECEIVED 1
PROCESSED 0`` until the next timed beat (up to a heartbeat interval).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pulsar

from fscommon.function_options import FunctionOptions
from fsworker.local_broker import LocalIO, LocalMessage
from fsworker.local_input import LocalInput
from fsworker.loop import ProcessingLoop


class EchoGuest:
    """What the loop uses of a guest: every payload comes back as the one output."""

    before_call = None
    last_output_meta = None
    uses_message_metadata = False

    def __init__(self) -> None:
        self.called: list[bytes] = []

    def call_batch(self, payloads: list[bytes], metas: Any) -> list[list[bytes]]:
        self.called += payloads
        return [[p] for p in payloads]


class Sink:
    """The local stand-ins' reports; only the outputs matter here."""

    def __init__(self) -> None:
        self.outputs: list[bytes] = []

    def received(self, msg: Any) -> None:
        pass

    def published(self, record: bytes, kwargs: dict[str, Any]) -> None:
        self.outputs.append(record)

    def dead_lettered(self, data: bytes, properties: dict[str, str]) -> None:
        raise AssertionError(f"nothing should be dead-lettered: {properties}")

    def drained(self) -> None:
        pass


class Trickle:
    """A consumer with ``messages`` queued, then silence; it stops the loop after ``idle`` waits."""

    def __init__(self, messages: list[Any], idle: int) -> None:
        self.messages = messages
        self.idle = idle
        self.loop: ProcessingLoop | None = None
        self.rewound = False

    def receive(self, timeout_millis: int | None = None) -> Any:
        if self.messages:
            return self.messages.pop(0)
        self.idle -= 1
        if self.idle <= 0 and self.loop is not None:
            self.loop.stop()
        raise pulsar.Timeout("nothing queued")

    def acknowledge(self, msg: Any) -> None:
        pass

    def negative_acknowledge(self, msg: Any) -> None:
        raise AssertionError("nothing should be handed back")

    def redeliver_unacknowledged_messages(self) -> None:
        self.rewound = True
        if self.loop is not None:
            self.loop.stop()


class RecordingLink:
    """The fsd link: keeps each heartbeat's counters and whether the loop was still running."""

    def __init__(self) -> None:
        self.loop: ProcessingLoop | None = None
        self.beats: list[tuple[bool, dict[str, Any]]] = []

    def send(self, kind: Any, **fields: Any) -> None:
        running = self.loop is not None and not self.loop._stopping
        self.beats.append((running, fields))

    def close(self) -> None:
        pass


def _loop(
    messages: int,
    idle: int,
    options: FunctionOptions | None = None,
    ledger: Any = None,
    io_class: type[LocalIO] = LocalIO,
) -> tuple[ProcessingLoop, RecordingLink, Sink]:
    sink = Sink()
    queued = [LocalMessage(LocalInput(b"m%d" % i), i + 1, "run") for i in range(messages)]
    consumer = Trickle(queued, idle)
    link = RecordingLink()
    loop = ProcessingLoop(
        EchoGuest(),  # type: ignore[arg-type]
        io_class("f", consumer, sink),  # type: ignore[arg-type]
        link,  # type: ignore[arg-type]
        options or FunctionOptions(),
        "f",
        0,
        max_batch=10,
        heartbeat_interval=3600.0,  # no timed beat after the first one during the test
        ledger=ledger,
    )
    consumer.loop = link.loop = loop
    return loop, link, sink


def test_an_idle_replica_reports_what_it_processed_without_waiting_for_the_interval():
    loop, link, sink = _loop(messages=3, idle=5)
    loop.run()
    assert sink.outputs == [b"m0", b"m1", b"m2"]
    while_running = [fields for running, fields in link.beats if running]
    assert any(f["processed"] == 3 for f in while_running), link.beats
    # One beat at the start and one on going idle: not one per empty wait.
    assert len(while_running) == 2, while_running


def test_an_idle_replica_with_nothing_new_sends_no_extra_beats():
    loop, link, _sink = _loop(messages=0, idle=5)
    loop.run()
    assert [running for running, _ in link.beats] == [True, False]  # the start and the end


class FirstFlushFails(LocalIO):
    """The broker does not confirm the first batch's outputs."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        if self.flushes == 1:
            raise pulsar.Timeout("not confirmed")


class Ledger:
    """The attempt ledger as the loop sees it, with one suspect: the second message."""

    def __init__(self, suspect: bytes) -> None:
        self.suspect = suspect

    def known(self) -> dict[bytes, int]:
        return {self.suspect: 1}

    def begin(self, entries: list[tuple[bytes, int]]) -> None:
        pass

    def settle(self, mid: bytes, attempts: int | None) -> None:
        pass

    @contextlib.contextmanager
    def suspect_call(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass


def test_after_a_rewind_the_rest_of_the_batch_in_hand_is_not_processed():
    # effectively-once: the first run of the batch (before the suspect) is not confirmed,
    # so the subscription is rewound; calling the suspect and the rest now would publish
    # them ahead of that run, whose outputs the broker would then drop as duplicates.
    options = FunctionOptions(guarantee="effectively-once", ordering="strict")
    suspect = LocalMessage(LocalInput(b"m1"), 2, "run").message_id().serialize()
    loop, _link, _sink = _loop(3, 5, options, Ledger(suspect), FirstFlushFails)
    loop.run()
    assert loop._consumer.rewound
    assert loop._guest.called == [b"m0"]  # not the suspect m1, not m2
