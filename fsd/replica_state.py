"""The replica lifecycle: the one table of legal moves between its states.

The state names are wire values (``fsctl status`` shows them), so the enum lives
in fscommon/protocol.py.
"""

from __future__ import annotations

from fscommon.protocol import ReplicaState

__all__ = [
    "LEGAL_TRANSITIONS",
    "PROCESS_STATES",
    "IllegalTransition",
    "ReplicaState",
    "check_transition",
]

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
