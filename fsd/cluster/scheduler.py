"""Where each replica of each function runs: a pure, deterministic placement.

The leader calls :func:`schedule` whenever the live members or the functions
change. It never moves a replica whose member is still alive (no rebalancing
when a member joins: moving a running replica costs a drain and a restart, and
a new member fills up as new or orphaned replicas appear). Replicas of a
member that is gone, and new replicas, go first to the members that run the
fewest replicas of that function (spread), then to the member with the fewest
replicas assigned in total (least loaded), ties broken by member id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# {function name: {replica index: member id}}
Assignment = dict[str, dict[int, str]]


@dataclass(frozen=True)
class ClusterFunction:
    """What the scheduler needs to know of one registered function."""

    name: str
    replicas: int
    running: bool = True  # False: 'fsctl stop'ped, so no replica is placed


def schedule(
    functions: Iterable[ClusterFunction],
    members: Iterable[str],
    previous: Mapping[str, Mapping[int, str]],
) -> Assignment:
    """The new assignment for ``functions`` over the live ``members``, keeping ``previous``.

    Deterministic: the same inputs give the same output whatever their order.
    With no live member nothing is placed.
    """
    live = sorted(set(members))
    wanted = {f.name: f for f in functions if f.running and f.replicas > 0}
    result: Assignment = {}
    total = dict.fromkeys(live, 0)
    live_set = set(live)
    # First keep every placement that is still valid, so that the load the new
    # placements see counts all of them, whatever the order of the functions.
    for name in sorted(wanted):
        kept = {
            index: member
            for index, member in sorted((previous.get(name) or {}).items())
            if index < wanted[name].replicas and member in live_set
        }
        result[name] = kept
        for member in kept.values():
            total[member] += 1
    if not live:
        return {name: {} for name in result}
    for name in sorted(wanted):
        placed = result[name]
        per_member = dict.fromkeys(live, 0)
        for member in placed.values():
            per_member[member] += 1
        for index in range(wanted[name].replicas):
            if index in placed:
                continue
            member = min(live, key=lambda m: (per_member[m], total[m], m))
            placed[index] = member
            per_member[member] += 1
            total[member] += 1
        result[name] = dict(sorted(placed.items()))
    return result


def replicas_of(
    assignment: Mapping[str, Mapping[int, str]], member: str
) -> dict[str, frozenset[int]]:
    """The replica indices ``member`` runs, by function (functions with none left out)."""
    mine: dict[str, frozenset[int]] = {}
    for name, placed in assignment.items():
        indices = frozenset(i for i, m in placed.items() if m == member)
        if indices:
            mine[name] = indices
    return mine


def moves(
    before: Mapping[str, Mapping[int, str]], after: Mapping[str, Mapping[int, str]]
) -> list[tuple[str, int, str | None, str | None]]:
    """Every (function, index, old member, new member) that differs: for the log."""
    changed = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name) or {}, after.get(name) or {}
        for index in sorted(set(old) | set(new)):
            if old.get(index) != new.get(index):
                changed.append((name, index, old.get(index), new.get(index)))
    return changed


def change_reason(before: tuple[frozenset[str], int], after: tuple[frozenset[str], int]) -> str:
    """Why the leader recomputed, from (live member ids, functions version) before and after."""
    (members, version), (now_members, now_version) = before, after
    parts = []
    if now_members - members:
        parts.append(f"members joined: {', '.join(sorted(now_members - members))}")
    if members - now_members:
        parts.append(f"members gone: {', '.join(sorted(members - now_members))}")
    if now_version != version:
        parts.append("functions changed")
    return "; ".join(parts) or "retry after a failed write"
