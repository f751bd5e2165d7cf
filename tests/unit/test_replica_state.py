import pytest

from fsd.replica_state import LEGAL_TRANSITIONS, IllegalTransition, ReplicaState, check_transition

S = ReplicaState


def test_every_state_has_an_entry():
    assert set(LEGAL_TRANSITIONS) == set(ReplicaState)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.STOPPED, S.STARTING),
        (S.STARTING, S.RUNNING),
        (S.RUNNING, S.STOPPING),
        (S.STOPPING, S.STOPPED),
        (S.RUNNING, S.EXITED),
        (S.EXITED, S.BACKOFF),
        (S.BACKOFF, S.STARTING),
        (S.EXITED, S.FATAL),
        (S.FATAL, S.STARTING),
    ],
)
def test_legal(old, new):
    check_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.STOPPED, S.RUNNING),  # alive is not ready: must pass through STARTING
        (S.FATAL, S.RUNNING),
        (S.STOPPING, S.RUNNING),
        (S.BACKOFF, S.RUNNING),
        (S.RUNNING, S.STARTING),
        (S.STOPPED, S.STOPPED),
    ],
)
def test_illegal(old, new):
    with pytest.raises(IllegalTransition, match=f"{old} -> {new}"):
        check_transition(old, new)
