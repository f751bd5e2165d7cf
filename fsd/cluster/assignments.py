"""The assignments topic: one value holding the whole assignment, and its reader.

Choice: ONE key (``assignment``) whose value is the whole map, not one key per
function. A leader's decision then lands atomically (a member never sees half
of a reassignment), the epoch and leader id are stated once, and the latest
value alone is the truth, which is what compaction keeps. A map of a few
thousand replicas is tens of KB, far below Pulsar's 5 MB message limit.

Value (JSON)::

    {"v": 1, "leader": "<member id>", "epoch": <int>, "revision": <int>,
     "assignment": {"<function>": {"<replica index>": "<member id>"}}}

``epoch`` grows with every leadership term (a new leader writes the highest
epoch it read plus one); ``revision`` grows with every value a leader writes
in its term.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from fsd.cluster.scheduler import Assignment

ASSIGNMENT_KEY = "assignment"


class AssignmentInvalid(ValueError):
    """An assignments-topic payload this version cannot read."""


@dataclass(frozen=True)
class AssignmentRecord:
    """One value of the assignments topic."""

    leader: str
    epoch: int
    revision: int
    assignment: Assignment = field(default_factory=dict)

    def newer_than(self, other: AssignmentRecord | None) -> bool:
        """True if this value supersedes ``other`` (a higher epoch, or a later revision)."""
        return other is None or (self.epoch, self.revision) > (other.epoch, other.revision)


def encode_assignment(record: AssignmentRecord) -> bytes:
    """The payload of an assignments value."""
    body: dict[str, Any] = {
        "v": 1,
        "leader": record.leader,
        "epoch": record.epoch,
        "revision": record.revision,
        "assignment": {
            name: {str(index): member for index, member in sorted(placed.items())}
            for name, placed in sorted(record.assignment.items())
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def decode_assignment(payload: bytes) -> AssignmentRecord:
    """An assignments value from its payload; AssignmentInvalid names what is wrong."""
    try:
        body = json.loads(payload)
        return AssignmentRecord(
            leader=str(body["leader"]),
            epoch=int(body["epoch"]),
            revision=int(body["revision"]),
            assignment={
                str(name): {int(index): str(member) for index, member in placed.items()}
                for name, placed in body["assignment"].items()
            },
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AssignmentInvalid(
            f"assignments topic holds a value that is not an assignment ({exc!r}): "
            f"{payload[:80]!r}; is another program writing to the assignments topic?"
        ) from exc


class AssignmentReader:
    """Follows the assignments topic from its start and keeps the latest value.

    Every member, the leader included, takes its replicas from what this
    reader returns: a value counts once the broker has it.
    """

    def __init__(self, client: Any, topic: str) -> None:
        import pulsar

        self._reader = client.create_reader(
            topic, pulsar.MessageId.earliest, is_read_compacted=True
        )
        self.latest: AssignmentRecord | None = None
        self.invalid = 0  # payloads skipped (reported by the caller's log)

    def _take(self, msg: Any) -> bool:
        if msg.partition_key() != ASSIGNMENT_KEY or not msg.data():
            return False
        try:
            record = decode_assignment(msg.data())
        except AssignmentInvalid:
            self.invalid += 1
            return False
        if record.newer_than(self.latest):
            self.latest = record
            return True
        return False

    def poll(self, timeout_ms: int = 0) -> bool:
        """Read what has arrived (waiting up to ``timeout_ms`` for the first); True if newer."""
        import pulsar

        changed = False
        wait = timeout_ms
        while True:
            try:
                msg = self._reader.read_next(wait)
            except pulsar.Timeout:
                return changed
            changed = self._take(msg) or changed
            wait = 0

    def catch_up(self, timeout_ms: int = 5000) -> bool:
        """Read up to the last value the broker holds now; True if newer.

        A new leader calls this after it got the exclusive producer: nobody
        else can write from then on, so what it reads is the final word.
        """
        changed = False
        while self._reader.has_message_available():
            changed = self._take(self._reader.read_next(timeout_ms)) or changed
        return changed

    def close(self) -> None:
        """Close the reader (errors ignored: we are leaving)."""
        with contextlib.suppress(Exception):
            self._reader.close()
