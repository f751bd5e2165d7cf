"""Default locations: state dir, runtime dir, control endpoint, caches."""

from __future__ import annotations

import os
from pathlib import Path

APP = "function-stream"


def default_state_dir() -> Path:
    """Where fsd keeps its registry, package store and embedded broker data.

    systemd sets STATE_DIRECTORY (StateDirectory=function-stream ->
    /var/lib/function-stream); a user gets the XDG location.
    """
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / APP


def default_runtime_dir() -> Path:
    """Where fsd puts its sockets: RUNTIME_DIRECTORY under systemd, else XDG or /tmp."""
    if os.environ.get("RUNTIME_DIRECTORY"):
        return Path(os.environ["RUNTIME_DIRECTORY"].split(":")[0])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / APP
    return Path(f"/tmp/{APP}-{os.getuid()}")


SYSTEM_SOCKET = Path("/run") / APP / "fsd.sock"


def default_control_endpoint() -> str:
    """The control endpoint fsd binds and fsctl connects to, unless told otherwise.

    FS_ENDPOINT wins; else the per-user socket; else, when only the system
    service's socket exists, that one (so fsctl finds a systemd-run fsd).
    """
    if os.environ.get("FS_ENDPOINT"):
        return os.environ["FS_ENDPOINT"]
    user = default_runtime_dir() / "fsd.sock"
    if not user.exists() and SYSTEM_SOCKET.exists() and not os.environ.get("RUNTIME_DIRECTORY"):
        return f"ipc://{SYSTEM_SOCKET}"
    return f"ipc://{user}"


def cache_dir() -> Path:
    """Downloads kept across runs, outside any repository (the Pulsar distribution)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / APP


def ipc_path(endpoint: str) -> Path | None:
    """The filesystem path of an ``ipc://`` endpoint, or None for other transports."""
    if endpoint.startswith("ipc://"):
        return Path(endpoint[len("ipc://") :])
    return None


def suspect_marker(attempts_path: str | Path, replica: int) -> Path:
    """Where a replica's worker says "I am calling a message that already killed a worker".

    The worker writes its pid there before such a call and removes it after
    (fsworker/attempts.py); fsd reads it when it reaps the worker, so an exit a
    poison message caused does not count toward FATAL (fsd/restart_policy.py).
    """
    path = Path(attempts_path)
    return path.with_name(f"{path.stem}.{replica}.suspect")
