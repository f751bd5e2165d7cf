"""What fsd tells a replica's worker process: a FunctionSpec made into a WorkerSpec.

The supervisor spawns every fsworker with the WorkerSpec built here
(fscommon/worker_spec.py), and the backlog poller samples the same
subscription the workers consume with, so its name is decided here once.
"""

from __future__ import annotations

import os
from pathlib import Path

from fscommon.worker_spec import WorkerSpec
from fsd.config import FsdConfig
from fsd.function_spec import FunctionSpec


def subscription_name(function: str) -> str:
    """The Shared subscription a function's replicas consume with."""
    return f"fs-{function}"


def build_worker_spec(
    config: FsdConfig,
    spec: FunctionSpec,
    replica: int,
    *,
    wasm_path: Path,
    cache_dir: Path,
    state_path: Path,
    pulsar_url: str,
    member: str | None,
) -> WorkerSpec:
    """The WorkerSpec replica ``replica`` of ``spec`` is spawned with.

    ``pulsar_url`` and ``member`` are passed at every spawn: fsd learns them
    only once the broker is up and the cluster joined.
    """
    return WorkerSpec(
        function=spec.name,
        replica=replica,
        wasm_path=str(wasm_path),
        wasm_sha256=spec.package,
        kind=spec.kind,
        inputs=list(spec.inputs),
        output=spec.output,
        subscription=subscription_name(spec.name),
        pulsar_url=pulsar_url,
        events_endpoint=config.events_endpoint,
        cache_dir=str(cache_dir),
        parent_pid=os.getpid(),
        log_level=config.log_level,
        config=dict(spec.config),
        options=dict(spec.options),
        # A shared PostgreSQL store (state_url) wins over the per-host SQLite file.
        state_path=None if config.state_url else str(state_path),
        state_url=config.state_url,
        attempts_path=str(config.state_dir / "attempts" / f"{spec.name}.sqlite3"),
        member=member,
        # Several beats per timeout, so one late beat is not a hang.
        heartbeat_interval=min(1.0, config.heartbeat_timeout / 5),
        stop_timeout=config.stop_timeout,
    )
