"""This member's part in leadership: contending, its term, and the assignments it writes.

leadership.py is the mechanism (the broker-fenced producer and the pure rule
of who tries); :class:`LeaderRole` is the state around it that the agent's
thread drives each tick:

- contend when :func:`~fsd.cluster.leadership.decide` says so, after listening
  for min(member_timeout, 3 heartbeats); once the producer is ours, read the
  assignments topic to its end and lead in the highest epoch there plus one;
- step down at once when the broker fences a write, when the assignments topic
  holds a newer value by another leader, or when a live member claims a higher
  epoch;
- while leading, recompute the assignment when members or functions changed
  and write it if it differs (and once at the start of every term, to state
  its epoch).

Contending and writing share one state (the epoch, the newest value known, the
inputs last written for), so they live together. The role keeps the newest
assignments value whether or not this member leads: the view shows it, and a
new term counts its epoch from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog

from fsd.cluster.assignments import (
    ASSIGNMENT_KEY,
    AssignmentReader,
    AssignmentRecord,
    encode_assignment,
)
from fsd.cluster.leadership import (
    ElectionAction,
    ElectionInputs,
    Leadership,
    LeadershipLost,
    decide,
)
from fsd.cluster.membership import MemberInfo
from fsd.cluster.scheduler import (
    Assignment,
    ClusterFunction,
    change_reason,
    moves,
    schedule,
)

log = structlog.get_logger("fsd.cluster")


def live_leader(live: Mapping[str, MemberInfo], member_id: str) -> str | None:
    """The live member other than ``member_id`` that claims to lead in the highest epoch."""
    claims = [(i.epoch, m) for m, i in live.items() if i.leader and m != member_id]
    return max(claims)[1] if claims else None


class LeaderRole:
    """Whether this member leads and in which epoch, and what it writes while it does.

    ``error`` records a problem for the view and returns True if it is news;
    ``heartbeat_at`` moves this member's next heartbeat, so that the others
    learn of a term that began or ended without waiting a heartbeat interval.
    """

    def __init__(
        self,
        client: Any,
        assignments_topic: str,
        member_id: str,
        member_timeout: float,
        heartbeat_interval: float,
        clock: Callable[[], float],
        error: Callable[[str], bool],
        heartbeat_at: Callable[[float], None],
    ) -> None:
        self.member_id = member_id
        self._assignments_topic = assignments_topic
        self._timeout = member_timeout
        # Heartbeats are read from now on, not from history: listen long enough to
        # have heard every live member before taking part in an election.
        self._warmup = min(member_timeout, 3 * heartbeat_interval)
        self._clock = clock
        self._error = error
        self._heartbeat_at = heartbeat_at
        self._leadership = Leadership(client, assignments_topic, member_id, member_timeout)
        self._assignments: AssignmentReader | None = None
        self._watch_start = 0.0
        self._epoch = 0  # the epoch this member leads in (0: it does not lead)
        self._record: AssignmentRecord | None = None  # the newest value we know of
        self._inputs_done: tuple[frozenset[str], int] | None = None
        self._exclusive_failing_since: float | None = None

    @property
    def epoch(self) -> int:
        """The epoch this member leads in (0: it does not lead)."""
        return self._epoch

    @property
    def record(self) -> AssignmentRecord | None:
        """The newest assignments value this member knows of (None: none yet)."""
        return self._record

    def start(self, assignments: AssignmentReader, now: float) -> None:
        """Begin watching at ``now``, from what ``assignments`` (caught up) holds."""
        self._assignments = assignments
        self._watch_start = now
        self._record = assignments.latest

    def shift(self, paused: float) -> None:
        """This process was not running for ``paused`` seconds: none of it was watching."""
        self._watch_start += paused
        if self._exclusive_failing_since is not None:
            self._exclusive_failing_since += paused

    def on_record(self, record: AssignmentRecord | None) -> None:
        """Take a value read from the assignments topic; step down if another leader wrote it."""
        if record is None or not record.newer_than(self._record):
            return
        self._record = record
        if self._epoch and record.leader != self.member_id:
            self._step_down(f"member {record.leader} wrote assignments with epoch {record.epoch}")

    def check_still_leader(self, live: Mapping[str, MemberInfo]) -> None:
        """Step down if a live member claims leadership in a higher epoch."""
        for member_id, info in live.items():
            if member_id != self.member_id and info.leader and info.epoch > self._epoch:
                self._step_down(f"member {member_id} claims leadership with epoch {info.epoch}")
                return

    def contend(self, live: Mapping[str, MemberInfo], now: float) -> None:
        """Try to take leadership if this member is the candidate (see leadership.decide)."""
        watching = now - self._watch_start
        if watching < self._warmup:
            return
        leader = live_leader(live, self.member_id)
        if leader is not None:
            self._exclusive_failing_since = None
        failing = self._exclusive_failing_since
        action = decide(
            ElectionInputs(
                member_id=self.member_id,
                live=list(live),
                live_leader=leader,
                last_writer=self._record.leader if self._record else None,
                watching_for=watching,
                exclusive_failing_for=None if failing is None else now - failing,
                member_timeout=self._timeout,
            )
        )
        if action is ElectionAction.WAIT:
            return
        try:
            acquired = self._leadership.acquire(action)
        except Exception as exc:  # broker away: the next tick tries again
            if self._error(f"cannot take the assignments producer: {exc!r}"):
                log.warning(
                    "cluster leadership attempt failed", member_id=self.member_id, error=repr(exc)
                )
            return
        if not acquired:
            if self._exclusive_failing_since is None:
                self._exclusive_failing_since = now
            return
        self._exclusive_failing_since = None
        assert self._assignments is not None
        # Nobody else can write now: what we read is the last word before our term.
        try:
            self._assignments.catch_up()
        except Exception as exc:  # cannot know the latest epoch: do not lead blind
            self._leadership.release()
            self._error(f"cannot read {self._assignments_topic} after taking leadership: {exc!r}")
            return
        self.on_record(self._assignments.latest)
        base = self._record
        self._epoch = (base.epoch if base else 0) + 1
        previous = base.leader if base else None
        log.warning(
            "cluster leadership acquired",
            member_id=self.member_id,
            epoch=self._epoch,
            mode=str(action),
            previous_leader=previous,
            reason="no live leader"
            if action is ElectionAction.TRY_EXCLUSIVE
            else f"fenced {previous or 'an unknown holder'}, silent for member_timeout",
        )
        self._inputs_done = None  # a new term always writes once, to state its epoch
        self._heartbeat_at(now)  # tell the others now

    def _step_down(self, reason: str) -> None:
        log.warning(
            "cluster leadership lost", member_id=self.member_id, epoch=self._epoch, reason=reason
        )
        self._leadership.release()
        self._epoch = 0
        self._inputs_done = None
        self._heartbeat_at(self._clock())

    def reconcile(
        self,
        live: Mapping[str, MemberInfo],
        functions: Mapping[str, ClusterFunction],
        version: int,
    ) -> None:
        """As leader: write a new assignment if the members or functions changed it."""
        inputs = (frozenset(live), version)
        if inputs == self._inputs_done:
            return
        base = self._record
        before: Assignment = dict(base.assignment) if base else {}
        after = schedule(functions.values(), live, before)
        first_of_term = base is None or base.epoch != self._epoch
        if after == before and not first_of_term:
            self._inputs_done = inputs
            return
        revision = 1 if first_of_term else base.revision + 1
        record = AssignmentRecord(self.member_id, self._epoch, revision, after)
        try:
            self._leadership.publish(ASSIGNMENT_KEY, encode_assignment(record))
        except LeadershipLost as exc:
            self._step_down(str(exc))
            return
        except Exception as exc:  # broker away: retried next tick, still the holder
            self._error(f"assignment not written: {exc!r}")
            return
        self._record = record
        reason = (
            "new leadership term"
            if first_of_term or self._inputs_done is None
            else change_reason(self._inputs_done, inputs)
        )
        self._inputs_done = inputs
        changed = moves(before, after)
        log.info(
            "cluster reassignment",
            member_id=self.member_id,
            epoch=self._epoch,
            revision=revision,
            reason=reason,
            moves=[
                {"function": f, "replica": i, "from": old, "to": new} for f, i, old, new in changed
            ],
        )

    def leave(self) -> None:
        """Give up leadership for good: this member stops."""
        if self._epoch:
            log.warning("cluster leadership released", member_id=self.member_id, reason="stop")
        self._leadership.release()
        self._epoch = 0
