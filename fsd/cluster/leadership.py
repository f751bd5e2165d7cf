"""Leadership: the leader is whoever holds the exclusive producer on the assignments topic.

The broker, not this code, fences: only one producer in an exclusive access
mode can exist on a topic, and a producer taken with ``ExclusiveWithFencing``
invalidates the previous holder for good (its sends fail with
``ProducerFenced``, even after it wakes from a pause, and it cannot get the
producer back by reconnecting). So an old leader that was paused and resumes
cannot write: the worst it does is believe it leads until it notices.

Who tries (:func:`decide`, pure): when no live leader is known, the live
member with the lowest id tries ``Exclusive`` (fails at once if someone holds
it). It escalates to ``ExclusiveWithFencing`` only when the member that wrote
the latest assignment has been silent for member_timeout (a paused or cut-off
leader whose connection the broker still keeps), or when Exclusive attempts
have failed for member_timeout with no live leader in sight (a holder that
never wrote). A member needs member_timeout of watching before it may fence,
so "silent" always means silence it observed.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any


class ElectionAction(enum.StrEnum):
    """What a member that does not lead does about leadership this tick."""

    WAIT = "wait"  # a live leader exists, or another member is the candidate
    TRY_EXCLUSIVE = "try-exclusive"  # take the producer if nobody holds it
    FENCE = "fence"  # take the producer from a silent holder


@dataclass(frozen=True)
class ElectionInputs:
    """What a member knows when it decides whether to contend."""

    member_id: str
    live: Collection[str]  # live member ids, this one included
    live_leader: str | None  # a live member that claims to lead (None: none known)
    last_writer: str | None  # leader id on the latest assignments value
    watching_for: float  # seconds since this member started judging liveness
    exclusive_failing_for: float | None  # seconds Exclusive attempts have failed (None: not)
    member_timeout: float


def decide(inputs: ElectionInputs) -> ElectionAction:
    """Whether to wait, try Exclusive, or fence the holder (see the module docstring)."""
    if inputs.live_leader is not None and inputs.live_leader != inputs.member_id:
        return ElectionAction.WAIT
    if not inputs.live or min(inputs.live) != inputs.member_id:
        return ElectionAction.WAIT
    if inputs.exclusive_failing_for is None:
        return ElectionAction.TRY_EXCLUSIVE
    may_fence = inputs.watching_for >= inputs.member_timeout
    writer_silent = inputs.last_writer is not None and (
        inputs.last_writer not in inputs.live or inputs.last_writer == inputs.member_id
    )
    if may_fence and (writer_silent or inputs.exclusive_failing_for >= inputs.member_timeout):
        return ElectionAction.FENCE
    return ElectionAction.TRY_EXCLUSIVE


class LeadershipLost(Exception):
    """The broker refused a write of the leader: another member took the producer."""


class Leadership:
    """The exclusive producer on the assignments topic, while this member holds it."""

    def __init__(self, client: Any, topic: str, member_id: str, send_timeout: float) -> None:
        self._client = client
        self._topic = topic
        self._member_id = member_id
        self._send_timeout_ms = max(1000, int(send_timeout * 1000))
        self._producer: Any = None

    @property
    def held(self) -> bool:
        """True while this member holds the producer (as far as it knows)."""
        return self._producer is not None

    def acquire(self, action: ElectionAction) -> bool:
        """Take the producer (Exclusive, or with fencing); False if someone else holds it.

        Other errors (broker unreachable) propagate: the caller retries next tick.
        """
        import pulsar

        mode = (
            pulsar.ProducerAccessMode.ExclusiveWithFencing
            if action is ElectionAction.FENCE
            else pulsar.ProducerAccessMode.Exclusive
        )
        try:
            self._producer = self._client.create_producer(
                self._topic,
                producer_name=None,
                access_mode=mode,
                batching_enabled=False,
                send_timeout_millis=self._send_timeout_ms,
            )
        except (pulsar.ProducerFenced, pulsar.ProducerBusy):
            return False
        return True

    def publish(self, key: str, payload: bytes) -> None:
        """Write one value as the leader; LeadershipLost if the broker fenced us.

        Any other failure (a timeout while the broker is away) propagates and
        leaves the producer held: the write is retried next tick.
        """
        import pulsar

        if self._producer is None:
            raise LeadershipLost(f"member {self._member_id} does not hold the producer")
        try:
            self._producer.send(payload, partition_key=key)
        except pulsar.ProducerFenced as exc:
            self.release()
            raise LeadershipLost(
                f"the broker fenced member {self._member_id}'s producer on {self._topic}: "
                f"another member took leadership"
            ) from exc

    def release(self) -> None:
        """Close the producer so another member can take it (errors ignored)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close()
