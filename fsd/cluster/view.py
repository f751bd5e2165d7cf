"""What one member knows of the cluster at one moment: the agent's answer to fsd."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fsd.cluster.membership import MemberInfo


@dataclass(frozen=True)
class ClusterView:
    """What this member knows of the cluster at one moment (immutable)."""

    member_id: str
    members: Mapping[str, MemberInfo] = field(default_factory=dict)  # live, this one included
    leader_id: str | None = None
    is_leader: bool = False
    epoch: int = 0  # epoch of the assignment below (0: none yet)
    assignment: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    mine: Mapping[str, frozenset[int]] = field(
        default_factory=dict
    )  # replicas this member must run
    errors: tuple[str, ...] = field(default=())  # recent I/O problems, for status

    def to_public(self) -> dict[str, Any]:
        """A plain dict for JSON (fsctl, tests)."""
        return {
            "member_id": self.member_id,
            "members": {m: info.to_public() for m, info in self.members.items()},
            "leader_id": self.leader_id,
            "is_leader": self.is_leader,
            "epoch": self.epoch,
            "assignment": {
                name: {str(i): m for i, m in placed.items()}
                for name, placed in self.assignment.items()
            },
            "mine": {name: sorted(indices) for name, indices in self.mine.items()},
            "errors": list(self.errors),
        }


class Problems:
    """Recent I/O problems of the agent, for the view; repeats within 30 s are not news."""

    def __init__(self, keep: int = 5, quiet_for: float = 30.0) -> None:
        self._keep = keep
        self._quiet_for = quiet_for
        self._recent: list[str] = []
        self._last_seen: dict[str, float] = {}

    def note(self, message: str, now: float) -> bool:
        """Record a problem; True if it is news (not seen within quiet_for)."""
        last = self._last_seen.get(message)
        self._last_seen[message] = now
        if last is not None and now - last < self._quiet_for:
            return False
        self._recent = [*self._recent[-(self._keep - 1) :], message]
        return True

    def recent(self) -> tuple[str, ...]:
        """The last few problems, oldest first."""
        return tuple(self._recent)
