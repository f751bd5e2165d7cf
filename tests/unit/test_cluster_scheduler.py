"""Scheduler (pure placement) and the assignments codec."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from fsd.cluster.assignments import (
    AssignmentInvalid,
    AssignmentRecord,
    decode_assignment,
    encode_assignment,
)
from fsd.cluster.scheduler import ClusterFunction, change_reason, moves, replicas_of, schedule

F = ClusterFunction


def per_member(assignment: dict[str, dict[int, str]]) -> Counter[str]:
    return Counter(m for placed in assignment.values() for m in placed.values())


def test_spreads_a_functions_replicas_over_members_first() -> None:
    out = schedule([F("f", 3)], ["a", "b", "c"], {})
    assert out == {"f": {0: "a", 1: "b", 2: "c"}}


def test_more_replicas_than_members_wrap_around_evenly() -> None:
    out = schedule([F("f", 5)], ["a", "b"], {})
    assert out == {"f": {0: "a", 1: "b", 2: "a", 3: "b", 4: "a"}}


def test_then_least_loaded_then_member_id() -> None:
    # a already runs two replicas of g: f's single replica goes to b, the least loaded.
    previous = {"g": {0: "a", 1: "a"}}
    out = schedule([F("f", 1), F("g", 2)], ["a", "b"], previous)
    assert out == {"f": {0: "b"}, "g": {0: "a", 1: "a"}}
    # equal load: lowest member id
    assert schedule([F("h", 1)], ["c", "b"], {}) == {"h": {0: "b"}}


def test_stable_when_a_member_joins() -> None:
    before = schedule([F("f", 2), F("g", 2)], ["a", "b"], {})
    after = schedule([F("f", 2), F("g", 2)], ["a", "b", "c"], before)
    assert after == before  # no rebalancing on join
    grown = schedule([F("f", 3), F("g", 2)], ["a", "b", "c"], before)
    assert grown["f"][2] == "c"  # the newcomer takes new replicas first


def test_member_loss_reassigns_only_the_lost_replicas() -> None:
    fns = [F("f", 3), F("g", 3), F("h", 1)]
    before = schedule(fns, ["a", "b", "c"], {})
    after = schedule(fns, ["a", "c"], before)
    changed = moves(before, after)
    assert changed and all(old == "b" for _, _, old, _ in changed)
    assert all(new in ("a", "c") for _, _, _, new in changed)
    assert "b" not in per_member(after)
    # what a and c ran before, they still run
    for name, placed in before.items():
        for index, member in placed.items():
            if member != "b":
                assert after[name][index] == member


def test_orphans_go_where_the_function_has_fewest_replicas() -> None:
    before = {"f": {0: "a", 1: "b", 2: "c"}}
    after = schedule([F("f", 3)], ["a", "b", "c", "d"], {"f": {0: "a", 1: "x", 2: "c"}})
    assert after["f"][1] == "b"  # b and d run no f and nothing else: the lower id
    assert after["f"][0] == before["f"][0] and after["f"][2] == before["f"][2]


def test_scale_down_drops_the_highest_indices() -> None:
    before = {"f": {0: "a", 1: "b", 2: "c", 3: "a"}}
    assert schedule([F("f", 2)], ["a", "b", "c"], before) == {"f": {0: "a", 1: "b"}}


def test_stopped_and_deleted_functions_get_no_placements() -> None:
    before = {"f": {0: "a"}, "gone": {0: "b"}}
    out = schedule([F("f", 2, running=False), F("z", 0)], ["a", "b"], before)
    assert out == {}


def test_no_live_member_places_nothing() -> None:
    assert schedule([F("f", 2)], [], {"f": {0: "a"}}) == {"f": {}}


def test_deterministic_whatever_the_input_order() -> None:
    fns = [F("f", 3), F("g", 2), F("h", 4), F("i", 1)]
    members = ["m3", "m1", "m2"]
    previous = {"g": {0: "m2"}, "h": {2: "m9"}}
    want = schedule(fns, members, previous)
    for perm_f, perm_m in itertools.product(
        itertools.permutations(fns, 4), itertools.permutations(members)
    ):
        assert schedule(perm_f, perm_m, previous) == want
    counts = per_member(want)
    assert max(counts.values()) - min(counts.values()) <= 1


def test_replicas_of_one_member() -> None:
    out = {"f": {0: "a", 1: "b", 2: "a"}, "g": {0: "b"}}
    assert replicas_of(out, "a") == {"f": frozenset({0, 2})}
    assert replicas_of(out, "z") == {}


def test_assignment_codec_round_trips() -> None:
    record = AssignmentRecord("m2", 7, 3, {"f": {0: "m1", 10: "m2"}, "g": {}})
    assert decode_assignment(encode_assignment(record)) == record


@pytest.mark.parametrize(
    "payload", [b"", b"not json", b"{}", b'{"leader":"a","epoch":"x","revision":1,"assignment":{}}']
)
def test_assignment_codec_rejects_garbage_with_a_clear_error(payload: bytes) -> None:
    with pytest.raises(AssignmentInvalid, match="not an assignment"):
        decode_assignment(payload)


def test_newer_than_orders_by_epoch_then_revision() -> None:
    old = AssignmentRecord("a", 1, 9)
    assert AssignmentRecord("b", 2, 1).newer_than(old)
    assert AssignmentRecord("a", 1, 10).newer_than(old)
    assert not AssignmentRecord("a", 1, 9).newer_than(old)
    assert old.newer_than(None)


def test_change_reason_names_what_changed() -> None:
    ab, abc = frozenset({"a", "b"}), frozenset({"a", "b", "c"})
    assert change_reason((abc, 1), (ab, 1)) == "members gone: c"
    assert change_reason((ab, 1), (abc, 2)) == "members joined: c; functions changed"
    assert change_reason((ab, 1), (ab, 1)) == "retry after a failed write"
