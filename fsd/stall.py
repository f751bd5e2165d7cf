"""Replicas that stopped taking messages while their input waits: the stall watchdog.

A worker can heartbeat on while its Pulsar consumer takes nothing: after a broker
restart the client's re-subscribe may fail in ways it does not recover from by
itself (seen here: "Consumer that failed is already present on the connection",
then no message for minutes; apache/pulsar-client-cpp#577 is one such case). The
heartbeat says the process is alive, not that it consumes. fsd sees both halves:
the subscription's backlog (fsd/backlog.py) and each replica's ``received``
counter. When the backlog stays above zero and does not shrink for ``timeout``
seconds while none of this host's replicas takes a message and none is inside a
guest call, those replicas are restarted (a fresh client). In a cluster the rule
holds per member: replicas elsewhere that consume make the backlog shrink.

Pure: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Window:
    since: float  # when the current no-progress window began
    backlog: int  # the backlog then
    progress: tuple  # what the replicas had taken then


class StallDetector:
    """``observe`` once per tick per function; True when its replicas should restart."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout  # 0: off
        self._windows: dict[str, _Window] = {}

    def observe(
        self,
        function: str,
        now: float,
        backlog: int | None,
        progress: tuple,
        busy: bool,
        patience: float = 0.0,
    ) -> bool:
        """Whether ``function``'s local replicas have stalled.

        ``backlog``: the latest sample (None: unknown); ``progress``: anything that
        changes when a replica takes a message or is replaced (e.g. (pid, received)
        pairs); ``busy``: a replica is inside a guest call (a slow guest is not a stall);
        ``patience``: a longer wait this function may legitimately have (its retry delay).
        """
        window = self._windows.get(function)
        if (
            self.timeout <= 0
            or backlog is None
            or backlog <= 0
            or busy
            or not progress
            or window is None
            or window.progress != progress
            or backlog < window.backlog
        ):
            self._windows[function] = _Window(now, backlog or 0, progress)
            return False
        if now - window.since < max(self.timeout, patience):
            return False
        # Start over: the restart itself must get a whole window before the next one.
        self._windows[function] = _Window(now, backlog, progress)
        return True

    def forget(self, keep: set[str]) -> None:
        """Drop the windows of functions that are gone."""
        for name in set(self._windows) - keep:
            del self._windows[name]
