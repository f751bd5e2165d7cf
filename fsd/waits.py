"""When a command that changed desired state is done: predicates over replica views.

A view is the public status of one replica (``Replica.to_public()``, plus
``member`` in a cluster), from this host or from another member's report, so
the same rules answer create, start, scale, update and restart on one host
and in a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fsd.function_spec import FunctionSpec
from fsd.replica_state import ReplicaState as S

View = dict[str, Any]

_FAILED = (str(S.FATAL), str(S.BACKOFF))


class ReplicaFailed(Exception):
    """A replica of the current generation failed to start; the message says which and why."""


def all_running(spec: FunctionSpec, views: Sequence[View]) -> bool:
    """True once every wanted replica is RUNNING at the spec's generation.

    Raises ReplicaFailed as soon as one at that generation is in BACKOFF or FATAL
    (a rolling restart stops there: the others keep the old generation).
    """
    for view in views:
        if view.get("generation") == spec.generation and view.get("state") in _FAILED:
            reason = view.get("last_error") or view.get("last_exit") or "worker exited"
            where = f" on member {view['member']}" if view.get("member") else ""
            raise ReplicaFailed(
                f"replica {view.get('replica')}{where} is {view.get('state')}: {reason}; "
                f"see 'fsctl status -n {spec.name}'"
            )
    indices = {v.get("replica") for v in views}
    return (
        indices == set(range(spec.replicas))
        and len(views) == spec.replicas
        and all(
            v.get("state") == str(S.RUNNING) and v.get("generation") == spec.generation
            for v in views
        )
    )


def all_stopped(views: Sequence[View]) -> bool:
    """True once no replica has a worker process."""
    return all(v.get("state") == str(S.STOPPED) and not v.get("pid") for v in views)
