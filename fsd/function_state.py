"""A function's state store as fsd sees it: where it is, reachable at start, purged on request.

A function keeps its state either in a per-host SQLite file under the state
directory or, when ``state_url`` is set, in a shared PostgreSQL database
(docs/state.md). The workers open the store (fsworker/state_store.py); fsd only
checks at start that a shared store can be reached and purges a deleted
function's state when asked ('fsctl delete --purge').
"""

from __future__ import annotations

from pathlib import Path


def state_path(state_dir: Path, function: str) -> Path:
    """The function's per-host state database (kept after delete unless purged)."""
    return state_dir / "state" / f"{function}.sqlite3"


def check_state_store(state_url: str | None) -> str | None:
    """At start: None if the state store is usable, else the one-line reason."""
    if not state_url:
        return None
    # Imported here: psycopg is only needed when a shared store is configured.
    from fsworker.state_postgres import check_reachable
    from fsworker.state_store import StateError

    try:
        check_reachable(state_url)
    except StateError as exc:
        return str(exc)
    return None


def purge_state(function: str, path: Path, state_url: str | None) -> None:
    """Remove a function's state (from ``state_url`` if set, else ``path``); StateError if not."""
    from fsworker.state_store import open_state_store

    if not state_url and not path.exists():
        return
    store = open_state_store(function, path=path, url=state_url, lock_timeout_ms=200)
    try:
        store.purge()
    finally:
        store.close()
