"""Membership liveness with a fake clock, the heartbeat codec, and the election rule."""

from __future__ import annotations

import pytest

from fsd.cluster.leadership import ElectionAction, ElectionInputs, decide
from fsd.cluster.membership import (
    HeartbeatInvalid,
    MemberInfo,
    MemberLoad,
    MemberTable,
    decode_heartbeat,
    encode_heartbeat,
)

TIMEOUT = 10.0


def beat(member: str, seq: int, incarnation: str = "i1", **kw: object) -> MemberInfo:
    return MemberInfo(member, f"ipc://{member}", 0.0, incarnation, seq, **kw)  # type: ignore[arg-type]


def test_alive_until_member_timeout_after_the_last_new_heartbeat() -> None:
    table = MemberTable(TIMEOUT)
    assert table.observe(beat("a", 1), now=100.0)
    assert list(table.live(109.9)) == ["a"]
    assert table.live(110.0) == {}  # exactly member_timeout of silence: gone


def test_a_replayed_or_older_sequence_does_not_revive() -> None:
    table = MemberTable(TIMEOUT)
    table.observe(beat("a", 5), now=0.0)
    assert not table.observe(beat("a", 5), now=9.0)  # duplicate delivery
    assert not table.observe(beat("a", 3), now=9.0)  # older
    assert table.live(10.0) == {}
    assert table.observe(beat("a", 6), now=10.5)
    assert list(table.live(10.5)) == ["a"]


def test_a_restart_with_the_same_id_starts_a_new_sequence() -> None:
    table = MemberTable(TIMEOUT)
    table.observe(beat("a", 50, incarnation="old"), now=0.0)
    assert table.observe(beat("a", 1, incarnation="new"), now=1.0)
    assert table.live(1.0)["a"].incarnation == "new"


def test_tombstone_removes_at_once() -> None:
    table = MemberTable(TIMEOUT)
    table.observe(beat("a", 1), now=0.0)
    table.observe(beat("b", 1), now=0.0)
    assert table.leave("a")
    assert list(table.live(0.1)) == ["b"]
    assert not table.leave("never-seen")


def test_our_own_pause_is_not_counted_against_others() -> None:
    table = MemberTable(TIMEOUT)
    table.observe(beat("a", 1), now=0.0)
    table.observe(beat("b", 1), now=-8.0)  # already silent 8 s before we paused
    table.observe(beat("c", 1), now=30.5)  # read after we woke
    table.shift(30.0, seen_before=16.0)  # we were stopped for about 30 s
    assert sorted(table.live(31.0)) == ["a", "b", "c"]
    assert list(table.live(32.5)) == ["a", "c"]  # b's 8 s + 2.5 s observed: 10.5 s silent
    assert list(table.live(40.0)) == ["c"]  # a: heard at 0, plus 30 s asleep, plus 10 s
    assert table.live(40.5) == {}  # c was not shifted: 10 s since it arrived


def test_live_is_sorted_and_carries_the_latest_info() -> None:
    table = MemberTable(TIMEOUT)
    table.observe(beat("c", 1), now=0.0)
    table.observe(beat("a", 1), now=0.0)
    table.observe(beat("a", 2, leader=True, epoch=3), now=1.0)
    live = table.live(1.0)
    assert list(live) == ["a", "c"]
    assert live["a"].leader and live["a"].epoch == 3


def test_heartbeat_codec_round_trips() -> None:
    info = MemberInfo(
        "m1",
        "tcp://10.0.0.1:7000",
        1700000000.5,
        "abc",
        42,
        leader=True,
        epoch=3,
        load=MemberLoad(2, 37.5),
        replicas=({"function": "f", "replica": 0, "state": "RUNNING"},),
    )
    assert decode_heartbeat(encode_heartbeat(info)) == info


@pytest.mark.parametrize("payload", [b"x", b"[]", b'{"member_id":"a"}'])
def test_heartbeat_codec_rejects_garbage_with_a_clear_error(payload: bytes) -> None:
    with pytest.raises(HeartbeatInvalid, match="not a heartbeat"):
        decode_heartbeat(payload)


def inputs(**kw: object) -> ElectionInputs:
    base: dict[str, object] = {
        "member_id": "a",
        "live": ["a", "b"],
        "live_leader": None,
        "last_writer": None,
        "watching_for": 60.0,
        "exclusive_failing_for": None,
        "member_timeout": TIMEOUT,
    }
    base.update(kw)
    return ElectionInputs(**base)  # type: ignore[arg-type]


def test_election_waits_for_a_live_leader_or_a_lower_id() -> None:
    assert decide(inputs(live_leader="b")) is ElectionAction.WAIT
    assert decide(inputs(member_id="b")) is ElectionAction.WAIT
    assert decide(inputs()) is ElectionAction.TRY_EXCLUSIVE


def test_election_fences_only_a_holder_silent_for_member_timeout() -> None:
    # the last writer is alive (just not claiming yet): keep trying Exclusive
    assert decide(inputs(last_writer="b", exclusive_failing_for=1.0)) is (
        ElectionAction.TRY_EXCLUSIVE
    )
    # the last writer is not live (silent member_timeout): fence it
    assert decide(inputs(last_writer="z", exclusive_failing_for=0.1)) is ElectionAction.FENCE
    # but not before we have watched for member_timeout ourselves
    assert decide(inputs(last_writer="z", exclusive_failing_for=0.1, watching_for=5.0)) is (
        ElectionAction.TRY_EXCLUSIVE
    )
    # an unknown holder that never wrote: fence after member_timeout of failures
    assert decide(inputs(exclusive_failing_for=9.0)) is ElectionAction.TRY_EXCLUSIVE
    assert decide(inputs(exclusive_failing_for=10.0)) is ElectionAction.FENCE
    # our own earlier incarnation wrote last and we do not lead: it is gone
    assert decide(inputs(last_writer="a", exclusive_failing_for=0.1)) is ElectionAction.FENCE
