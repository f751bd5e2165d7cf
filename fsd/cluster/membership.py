"""Membership: heartbeats on a compacted members topic, and who is alive.

Every member publishes a heartbeat, keyed by its member id, every
``heartbeat_interval``. A member is alive while a NEW heartbeat from it (a
sequence number above the last one seen from that process) arrived less than
``member_timeout`` ago by this member's own monotonic clock: clocks of other
hosts are never compared. A clean shutdown publishes a tombstone (the key with
an empty payload), which removes the member at once.

:class:`MemberTable` is the pure bookkeeping (the clock is passed in), so the
liveness rules are unit-tested with a fake clock; :class:`MembersChannel` is
the topic I/O, driven by the agent's thread.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class HeartbeatInvalid(ValueError):
    """A members-topic payload that is not a heartbeat this version understands."""


@dataclass(frozen=True)
class MemberLoad:
    """What a member reports of its load."""

    replicas: int = 0  # replica processes it runs
    cpu: float = 0.0  # host CPU use, percent


@dataclass(frozen=True)
class MemberInfo:
    """One heartbeat: what a member says of itself."""

    member_id: str
    endpoint: str  # its fsd control endpoint, for fsctl
    started_at: float  # wall-clock start time: shown to people, never compared
    incarnation: str  # random per process start: a restart with the same id is a new sequence
    seq: int  # grows by one per heartbeat of this incarnation
    leader: bool = False  # it believes it holds the assignments producer
    epoch: int = 0  # the leadership epoch it claims (0: none)
    load: MemberLoad = field(default_factory=MemberLoad)
    replicas: tuple[dict[str, Any], ...] = ()  # public status of the replicas it runs

    def to_public(self) -> dict[str, Any]:
        """A plain dict for JSON (fsctl, logs)."""
        return {
            "member_id": self.member_id,
            "endpoint": self.endpoint,
            "started_at": self.started_at,
            "leader": self.leader,
            "epoch": self.epoch,
            "load": {"replicas": self.load.replicas, "cpu": self.load.cpu},
            "replicas": [dict(r) for r in self.replicas],
        }


def encode_heartbeat(info: MemberInfo) -> bytes:
    """The members-topic payload of a heartbeat (JSON; the key is the member id)."""
    body = info.to_public()
    body.update(v=1, incarnation=info.incarnation, seq=info.seq)
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def decode_heartbeat(payload: bytes) -> MemberInfo:
    """A heartbeat from its payload; HeartbeatInvalid names what is wrong."""
    try:
        body = json.loads(payload)
        load = body.get("load") or {}
        return MemberInfo(
            member_id=str(body["member_id"]),
            endpoint=str(body["endpoint"]),
            started_at=float(body["started_at"]),
            incarnation=str(body["incarnation"]),
            seq=int(body["seq"]),
            leader=bool(body.get("leader", False)),
            epoch=int(body.get("epoch", 0)),
            load=MemberLoad(int(load.get("replicas", 0)), float(load.get("cpu", 0.0))),
            replicas=tuple(dict(r) for r in body.get("replicas") or ()),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HeartbeatInvalid(
            f"members topic holds a payload that is not a heartbeat ({exc!r}): "
            f"{payload[:80]!r}; is another program writing to the members topic?"
        ) from exc


@dataclass
class _Seen:
    info: MemberInfo
    at: float  # local monotonic time the newest sequence number arrived


class MemberTable:
    """Heartbeats seen so far and the liveness judgement over them."""

    def __init__(self, member_timeout: float) -> None:
        self.member_timeout = member_timeout
        self._seen: dict[str, _Seen] = {}

    def observe(self, info: MemberInfo, now: float) -> bool:
        """Record a heartbeat; True if it is new (a replayed or older one changes nothing)."""
        last = self._seen.get(info.member_id)
        if (
            last is not None
            and last.info.incarnation == info.incarnation
            and info.seq <= last.info.seq
        ):
            return False
        self._seen[info.member_id] = _Seen(info, now)
        return True

    def leave(self, member_id: str) -> bool:
        """A tombstone: the member left cleanly. True if it was known."""
        return self._seen.pop(member_id, None) is not None

    def shift(self, paused: float, seen_before: float) -> None:
        """This process was not running for ``paused`` seconds (SIGSTOP, a stall).

        Time we did not watch is not counted against anyone: a member is only
        judged silent for silence we could have observed. Only heartbeats that
        arrived before ``seen_before`` (before the pause) are moved.
        """
        for seen in self._seen.values():
            if seen.at < seen_before:
                seen.at += paused

    def live(self, now: float) -> dict[str, MemberInfo]:
        """Members heard from within member_timeout, by id (sorted)."""
        return {
            member_id: seen.info
            for member_id, seen in sorted(self._seen.items())
            if now - seen.at < self.member_timeout
        }


class MembersChannel:
    """The members topic: this member's heartbeats out, everyone's in.

    Heartbeats are read from *now* on, not from the topic's history: an old
    heartbeat read at start would look fresh.
    """

    def __init__(self, client: Any, topic: str, member_id: str, send_timeout: float) -> None:
        import pulsar

        self._member_id = member_id
        self._producer = client.create_producer(
            topic,
            batching_enabled=False,
            send_timeout_millis=max(1000, int(send_timeout * 1000)),
            block_if_queue_full=False,
        )
        try:
            self._reader = client.create_reader(topic, pulsar.MessageId.latest)
        except Exception:
            self._producer.close()
            raise

    def send(self, info: MemberInfo, on_result: Callable[[Any, Any], None]) -> None:
        """Publish a heartbeat without waiting; ``on_result`` runs on a client thread."""
        self._producer.send_async(encode_heartbeat(info), on_result, partition_key=self._member_id)

    def send_tombstone(self) -> None:
        """Publish the empty payload that tells the others we left (waits for the broker)."""
        self._producer.send(b"", partition_key=self._member_id)

    def receive(self, first_wait_ms: int) -> tuple[list[tuple[str, MemberInfo | None]], list[str]]:
        """What arrived, waiting up to ``first_wait_ms`` for the first message.

        Returns (key, heartbeat or None for a tombstone) pairs in order, and a
        description of each payload that was not a heartbeat.
        """
        import pulsar

        received: list[tuple[str, MemberInfo | None]] = []
        problems: list[str] = []
        wait = first_wait_ms
        while True:
            try:
                msg = self._reader.read_next(wait)
            except pulsar.Timeout:
                return received, problems
            wait = 0
            key, payload = msg.partition_key(), msg.data()
            if not payload:
                received.append((key, None))
                continue
            try:
                received.append((key, decode_heartbeat(payload)))
            except HeartbeatInvalid as exc:
                problems.append(str(exc))

    def close(self) -> None:
        """Close producer and reader (errors ignored: we are leaving)."""
        for closable in (self._producer, self._reader):
            with contextlib.suppress(Exception):
                closable.close()
