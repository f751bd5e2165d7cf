"""What this host holds of one function: its local replicas, and where it stands in a rollout.

fsd/supervisor.py keeps one ``FunctionRuntime`` per function and is its only
writer; ``Placement`` is how it is told which replica indices are this host's
(all of them on a single host; the cluster's assignment otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from fsd.function_spec import FunctionSpec
from fsd.replica import AfterStop, Replica
from fsd.rollout import Rollout

# Which replica indices of a function this host runs (all of them on one host).
Placement = Callable[[FunctionSpec], Collection[int]]


def all_replicas(spec: FunctionSpec) -> range:
    """The single-host placement: every replica runs here."""
    return range(spec.replicas)


@dataclass
class FunctionRuntime:
    """The replicas of one function that this host runs, by index."""

    spec: FunctionSpec
    replicas: dict[int, Replica] = field(default_factory=dict)
    rollout: Rollout | None = None
    generation: int = 0  # the generation this host has rolled (or is rolling) onto
    starts: int = 0  # the last 'fsctl start' this host acted on
    deleted: bool = False  # gone from the registry: drain, then forget

    @property
    def busy(self) -> str | None:
        """Why a new scale/restart/update must wait, or None."""
        if self.rollout is not None and not self.rollout.done:
            return "a rolling restart is in progress"
        if any(r.after_stop is AfterStop.RETIRE for r in self.replicas.values()):
            return "a scale-down is in progress"
        return None

    def ordered(self) -> list[Replica]:
        """The replicas by index."""
        return [self.replicas[i] for i in sorted(self.replicas)]
