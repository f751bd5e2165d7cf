"""The function registry: SQLite in the state dir, so functions survive fsd restarts."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from fsd.function_spec import FunctionSpec

_SCHEMA = """
CREATE TABLE IF NOT EXISTS functions (
    name       TEXT PRIMARY KEY,
    package    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    inputs     TEXT NOT NULL,  -- JSON list
    output     TEXT,
    replicas   INTEGER NOT NULL,
    config     TEXT NOT NULL,  -- JSON object
    desired    TEXT NOT NULL DEFAULT 'running',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""


class AlreadyExists(Exception):
    """A function with that name is registered."""


class Registry:
    """CRUD over registered functions; every write is committed before it returns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a registry written by an older fsd up to the current schema."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(functions)")}
        if "desired" not in columns:
            self._db.execute(
                "ALTER TABLE functions ADD COLUMN desired TEXT NOT NULL DEFAULT 'running'"
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def add(self, spec: FunctionSpec) -> None:
        """Register a new function; raises AlreadyExists."""
        now = time.time()
        spec.created_at = now
        try:
            self._db.execute(
                "INSERT INTO functions (package, kind, inputs, output, replicas, config, desired, "
                "name, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*_mutable_fields(spec), spec.name, now, now),
            )
        except sqlite3.IntegrityError:
            raise AlreadyExists(spec.name) from None

    def update(self, spec: FunctionSpec) -> None:
        """Overwrite a function's fields (all but its name and creation time)."""
        self._db.execute(
            "UPDATE functions SET package=?, kind=?, inputs=?, output=?, replicas=?, config=?, "
            "desired=?, updated_at=? WHERE name=?",
            (*_mutable_fields(spec), time.time(), spec.name),
        )

    def remove(self, name: str) -> bool:
        """Unregister; False if it was not registered."""
        return self._db.execute("DELETE FROM functions WHERE name=?", (name,)).rowcount > 0

    def get(self, name: str) -> FunctionSpec | None:
        """One function, or None."""
        row = self._db.execute(
            "SELECT name, package, kind, inputs, output, replicas, config, desired, created_at "
            "FROM functions WHERE name=?",
            (name,),
        ).fetchone()
        return _row_to_spec(row) if row else None

    def all(self) -> list[FunctionSpec]:
        """Every function, by name."""
        rows = self._db.execute(
            "SELECT name, package, kind, inputs, output, replicas, config, desired, created_at "
            "FROM functions ORDER BY name"
        ).fetchall()
        return [_row_to_spec(r) for r in rows]


def _row_to_spec(row: tuple) -> FunctionSpec:
    name, package, kind, inputs, output, replicas, config, desired, created_at = row
    return FunctionSpec(
        name=name,
        package=package,
        kind=kind,
        inputs=json.loads(inputs),
        output=output,
        replicas=replicas,
        config=json.loads(config),
        desired=desired,
        created_at=created_at,
    )


def _mutable_fields(spec: FunctionSpec) -> tuple:
    """Column values in the order: package, kind, inputs, output, replicas, config, desired."""
    return (
        spec.package,
        spec.kind,
        json.dumps(spec.inputs),
        spec.output,
        spec.replicas,
        json.dumps(spec.config),
        spec.desired,
    )
