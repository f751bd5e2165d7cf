"""The replica lifecycle: supervisord's state names and the one table of legal moves."""

from __future__ import annotations

import enum


class ReplicaState(enum.StrEnum):
    """Where a replica is in its life."""

    STOPPED = "STOPPED"  # not running, and not meant to
    STARTING = "STARTING"  # process spawned, not ready yet
    RUNNING = "RUNNING"  # reported ready: module loaded, consumer subscribed
    BACKOFF = "BACKOFF"  # exited unexpectedly; waiting to be started again
    STOPPING = "STOPPING"  # asked to stop (SIGTERM sent), not yet exited
    EXITED = "EXITED"  # exited unexpectedly; supervision decides BACKOFF or FATAL
    FATAL = "FATAL"  # will not be started again until an explicit start


S = ReplicaState

LEGAL_TRANSITIONS: dict[ReplicaState, frozenset[ReplicaState]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.RUNNING, S.STOPPING, S.EXITED}),
    S.RUNNING: frozenset({S.STOPPING, S.EXITED}),
    S.BACKOFF: frozenset({S.STARTING, S.STOPPED, S.FATAL}),
    # EXITED: fsd stopped it because it hung or never got ready, and will restart it.
    S.STOPPING: frozenset({S.STOPPED, S.EXITED}),
    S.EXITED: frozenset({S.BACKOFF, S.FATAL, S.STOPPED}),
    S.FATAL: frozenset({S.STARTING, S.STOPPED}),
}

# States in which a worker process may exist.
PROCESS_STATES = frozenset({S.STARTING, S.RUNNING, S.STOPPING})


class IllegalTransition(Exception):
    """A move the table does not allow: a supervision bug, never user input."""


def check_transition(old: ReplicaState, new: ReplicaState) -> None:
    """Raise IllegalTransition unless ``old -> new`` is in the table."""
    if new not in LEGAL_TRANSITIONS[old]:
        raise IllegalTransition(f"illegal replica transition {old} -> {new}")
