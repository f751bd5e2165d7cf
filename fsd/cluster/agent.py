"""The cluster agent: membership, leadership and assignments in one background thread.

fsd's main loop never touches the network for the cluster: each tick it hands
the agent the latest registry snapshot and this member's replica status
(:meth:`ClusterAgent.update`) and reads back an immutable :class:`ClusterView`
(:meth:`ClusterAgent.snapshot`). Everything else happens in the agent's thread:

1. read the heartbeats and assignments that arrived (before judging anyone,
   so a member that was paused first sees what happened while it slept);
2. judge liveness (membership.py); a gap in our own loop longer than
   member_timeout / 2 is a local pause, and is not counted against others;
3. if it leads: step down at once when the broker fences a write, when the
   assignments topic holds a newer value by another leader, or when a live
   member claims a higher epoch; else recompute the assignment when members
   or functions changed and publish it if it differs (leader_role.py);
4. if it does not lead: contend when leadership.decide() says so
   (leader_role.py);
5. heartbeat when due.

Timings (a member is gone member_timeout after its last heartbeat arrived, at
once after a clean stop; a dead or paused leader is replaced member_timeout +
one tick after its last heartbeat, and the new assignment written in that
tick): docs/cluster.md, "Membership, leadership and scheduling".
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import structlog

from fsd.cluster.assignments import AssignmentReader
from fsd.cluster.leader_role import LeaderRole, live_leader
from fsd.cluster.membership import MemberInfo, MemberLoad, MembersChannel, MemberTable
from fsd.cluster.scheduler import ClusterFunction, replicas_of
from fsd.cluster.view import ClusterView, Problems

log = structlog.get_logger("fsd.cluster")


class ClusterAgent:
    """One member's view of and part in the cluster, run in one daemon thread."""

    def __init__(
        self,
        client: Any,
        members_topic: str,
        assignments_topic: str,
        member_id: str,
        endpoint: str,
        member_timeout: float = 10.0,
        heartbeat_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if heartbeat_interval <= 0 or member_timeout <= 2 * heartbeat_interval:
            raise ValueError(
                f"cluster timings heartbeat_interval={heartbeat_interval}s "
                f"member_timeout={member_timeout}s: member_timeout must exceed two heartbeats "
                f"(e.g. heartbeat 2 s, timeout 10 s)"
            )
        self._client = client
        self._members_topic = members_topic
        self._assignments_topic = assignments_topic
        self.member_id = member_id
        self._endpoint = endpoint
        self._timeout = member_timeout
        self._interval = heartbeat_interval
        self._clock = clock
        self._tick = min(0.1, heartbeat_interval / 5)
        self._stall = member_timeout / 2

        self._lock = threading.Lock()
        self._functions: dict[str, ClusterFunction] | None = None
        self._functions_version = 0
        self._local_status: tuple[dict[str, Any], ...] = ()
        self._view = ClusterView(member_id=member_id)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

        self._table = MemberTable(member_timeout)
        self._role = LeaderRole(
            client,
            assignments_topic,
            member_id,
            member_timeout,
            heartbeat_interval,
            clock,
            error=self._error,
            heartbeat_at=self._heartbeat_at,
        )
        self._incarnation = secrets.token_hex(8)
        self._started_at = time.time()
        self._seq = 0
        self._live_ids: frozenset[str] = frozenset()
        self._problems = Problems()
        self._members: MembersChannel | None = None
        self._assignments: AssignmentReader | None = None

    # -- the main loop's side -------------------------------------------------

    def start(self) -> None:
        """Open the topics (raises if Pulsar refuses, naming the topic) and start the thread."""
        import pulsar

        try:
            self._members = MembersChannel(
                self._client, self._members_topic, self.member_id, self._timeout
            )
            self._assignments = AssignmentReader(self._client, self._assignments_topic)
            self._assignments.catch_up()
        except pulsar.PulsarException as exc:
            self._close_io()
            raise RuntimeError(
                f"cluster member {self.member_id} cannot open {self._members_topic} / "
                f"{self._assignments_topic}: {exc}; check the Pulsar URL and the namespace"
            ) from exc
        now = self._clock()
        self._role.start(self._assignments, now)
        self._last_loop = now
        self._next_heartbeat = now
        self._thread = threading.Thread(target=self._run, name="cluster-agent", daemon=True)
        self._thread.start()
        log.info("cluster member started", member_id=self.member_id, endpoint=self._endpoint)

    def stop(self, timeout: float = 10.0) -> None:
        """Leave: give up leadership, publish a tombstone, close everything."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def update(self, functions: Iterable[ClusterFunction], local_status: Iterable[dict]) -> None:
        """Hand over the latest registry snapshot and this member's replica status."""
        by_name = {f.name: f for f in functions}
        status = tuple(dict(s) for s in local_status)
        with self._lock:
            if by_name != self._functions:
                self._functions = by_name
                self._functions_version += 1
            self._local_status = status

    def snapshot(self) -> ClusterView:
        """The latest view (immutable; cheap: the agent swaps in a new one each tick)."""
        return self._view

    # -- the agent thread ----------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._loop_once()
            except Exception as exc:  # one bad tick must not end membership
                if self._error(f"cluster agent tick failed: {exc!r}"):
                    log.exception("cluster agent tick failed", member_id=self.member_id)
                self._stopping.wait(self._tick)
        self._leave()

    def _loop_once(self) -> None:
        self._read_members(int(self._tick * 1000))
        now = self._clock()
        gap = now - self._last_loop
        if gap > self._stall:
            # We were not running (SIGSTOP, swap) somewhere since the last loop, most
            # likely inside the read: that silence is ours, not theirs. Heartbeats
            # read since we woke are newer than now - gap / 2 and keep their time.
            self._table.shift(gap, seen_before=now - gap / 2)
            self._role.shift(gap)
            log.warning("cluster agent was paused", member_id=self.member_id, seconds=gap)
        assert self._assignments is not None
        role = self._role
        if self._assignments.poll(0):
            role.on_record(self._assignments.latest)
        now = self._clock()
        live = self._judge(now)
        with self._lock:
            functions, version = self._functions, self._functions_version
        if role.epoch:
            role.check_still_leader(live)
        if not role.epoch and functions is not None:
            role.contend(live, now)
        if role.epoch and functions is not None:
            role.reconcile(live, functions, version)
        if now >= self._next_heartbeat:
            self._heartbeat(now)
        self._publish_view(live)
        self._last_loop = self._clock()

    def _read_members(self, first_wait_ms: int) -> None:
        assert self._members is not None
        received, problems = self._members.receive(first_wait_ms)
        for problem in problems:
            self._error(problem)
        for key, info in received:
            if info is None:
                if key != self.member_id and self._table.leave(key):
                    log.info("cluster member left", member_id=self.member_id, left=key)
            elif info.member_id != self.member_id:
                self._table.observe(info, self._clock())
            elif info.incarnation != self._incarnation and self._error(
                f"another process publishes heartbeats as member {self.member_id} "
                f"(endpoint {info.endpoint}); give every fsd of the cluster its own member id"
            ):
                log.error("cluster member id in use twice", member_id=self.member_id)

    def _judge(self, now: float) -> dict[str, MemberInfo]:
        live = self._table.live(now)
        live[self.member_id] = self._own_info()
        live = dict(sorted(live.items()))
        ids = frozenset(live)
        if ids != self._live_ids:
            joined, gone = sorted(ids - self._live_ids), sorted(self._live_ids - ids)
            log.info(
                "cluster membership changed",
                member_id=self.member_id,
                joined=joined,
                gone=gone,
                live=sorted(ids),
            )
            self._live_ids = ids
        return live

    def _own_info(self) -> MemberInfo:
        with self._lock:
            status = self._local_status
        return MemberInfo(
            member_id=self.member_id,
            endpoint=self._endpoint,
            started_at=self._started_at,
            incarnation=self._incarnation,
            seq=self._seq,
            leader=bool(self._role.epoch),
            epoch=self._role.epoch,
            load=MemberLoad(replicas=len(status), cpu=_cpu_percent()),
            replicas=status,
        )

    def _heartbeat(self, now: float) -> None:
        self._seq += 1
        self._next_heartbeat = now + self._interval
        try:
            assert self._members is not None
            self._members.send(self._own_info(), self._sent)
        except Exception as exc:  # queue full while the broker is away: next one retries
            self._error(f"heartbeat not sent: {exc!r}")

    def _heartbeat_at(self, at: float) -> None:
        # The role moves the next heartbeat when a term begins or ends.
        self._next_heartbeat = at

    def _sent(self, result: Any, _msg_id: Any) -> None:
        # Called on a client thread: only record, never act.
        import pulsar

        if result != pulsar.Result.Ok:
            self._error(f"heartbeat not confirmed by the broker: {result}")

    # -- view and teardown -------------------------------------------------

    def _publish_view(self, live: Mapping[str, MemberInfo]) -> None:
        record = self._role.record
        leading = bool(self._role.epoch)
        assignment = record.assignment if record else {}
        leader = self.member_id if leading else live_leader(live, self.member_id)
        self._view = ClusterView(
            member_id=self.member_id,
            members=MappingProxyType(dict(live)),
            leader_id=leader,
            is_leader=leading,
            epoch=record.epoch if record else 0,
            assignment=MappingProxyType(
                {n: MappingProxyType(dict(p)) for n, p in assignment.items()}
            ),
            mine=MappingProxyType(replicas_of(assignment, self.member_id)),
            errors=self._problems.recent(),
        )

    def _error(self, message: str) -> bool:
        """Keep a problem for the view; True if it is news (worth a log line)."""
        return self._problems.note(message, self._clock())

    def _leave(self) -> None:
        self._role.leave()
        try:
            assert self._members is not None
            self._members.send_tombstone()
        except Exception as exc:
            log.warning("cluster tombstone not written", member_id=self.member_id, error=repr(exc))
        self._close_io()
        self._view = ClusterView(member_id=self.member_id)
        log.info("cluster member left", member_id=self.member_id, left=self.member_id)

    def _close_io(self) -> None:
        for closable in (self._members, self._assignments):
            if closable is not None:
                with contextlib.suppress(Exception):
                    closable.close()


def _cpu_percent() -> float:
    """Host CPU use since the last call (psutil; 0.0 on the first call)."""
    import psutil

    return float(psutil.cpu_percent(interval=None))
