"""The function registry: SQLite in the state dir, so functions survive fsd restarts."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Protocol

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
    options    TEXT NOT NULL DEFAULT '{}',  -- JSON: FunctionOptions
    generation INTEGER NOT NULL DEFAULT 0,
    starts     INTEGER NOT NULL DEFAULT 0,
    autoscale  TEXT,  -- JSON: AutoscaleBounds, NULL for fixed replicas
    last_scaled TEXT,  -- JSON: the autoscaler's last change
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""


_COLUMNS = (
    "name, package, kind, inputs, output, replicas, config, desired, options, generation, "
    "starts, autoscale, last_scaled, created_at"
)


class AlreadyExists(Exception):
    """A function with that name is registered."""


class RegistryBackend(Protocol):
    """Where desired state lives: SQLite on one host, a compacted topic in a cluster.

    Only fsd/functions.py FunctionService writes through it.
    """

    def add(self, spec: FunctionSpec) -> None:
        """Register a new function; raises AlreadyExists."""
        ...

    def update(self, spec: FunctionSpec) -> None:
        """Overwrite a registered function."""
        ...

    def remove(self, name: str) -> bool:
        """Unregister; False if it was not registered."""
        ...

    def get(self, name: str) -> FunctionSpec | None:
        """One function, or None."""
        ...

    def all(self) -> list[FunctionSpec]:
        """Every function, by name."""
        ...

    def close(self) -> None:
        """Release the backend."""
        ...


class Registry:
    """The single-host backend: every write is committed before it returns."""

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
        for column, ddl in (
            ("desired", "desired TEXT NOT NULL DEFAULT 'running'"),
            ("options", "options TEXT NOT NULL DEFAULT '{}'"),
            ("generation", "generation INTEGER NOT NULL DEFAULT 0"),
            ("starts", "starts INTEGER NOT NULL DEFAULT 0"),
            ("autoscale", "autoscale TEXT"),
            ("last_scaled", "last_scaled TEXT"),
        ):
            if column not in columns:
                self._db.execute(f"ALTER TABLE functions ADD COLUMN {ddl}")

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
                "options, generation, starts, autoscale, last_scaled, name, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*_mutable_fields(spec), spec.name, now, now),
            )
        except sqlite3.IntegrityError:
            raise AlreadyExists(spec.name) from None

    def update(self, spec: FunctionSpec) -> None:
        """Overwrite a function's fields (all but its name and creation time)."""
        self._db.execute(
            "UPDATE functions SET package=?, kind=?, inputs=?, output=?, replicas=?, config=?, "
            "desired=?, options=?, generation=?, starts=?, autoscale=?, last_scaled=?, "
            "updated_at=? WHERE name=?",
            (*_mutable_fields(spec), time.time(), spec.name),
        )

    def remove(self, name: str) -> bool:
        """Unregister; False if it was not registered."""
        return self._db.execute("DELETE FROM functions WHERE name=?", (name,)).rowcount > 0

    def get(self, name: str) -> FunctionSpec | None:
        """One function, or None."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM functions WHERE name=?",
            (name,),
        ).fetchone()
        return _row_to_spec(row) if row else None

    def all(self) -> list[FunctionSpec]:
        """Every function, by name."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM functions ORDER BY name").fetchall()
        return [_row_to_spec(r) for r in rows]


def _row_to_spec(row: tuple) -> FunctionSpec:
    (name, package, kind, inputs, output, replicas, config, desired, options, generation, starts,
     autoscale, last_scaled, created_at) = row  # fmt: skip
    return FunctionSpec(
        name=name,
        package=package,
        kind=kind,
        inputs=json.loads(inputs),
        output=output,
        replicas=replicas,
        config=json.loads(config),
        desired=desired,
        options=json.loads(options),
        generation=generation,
        starts=starts,
        autoscale=json.loads(autoscale) if autoscale else None,
        last_scaled=json.loads(last_scaled) if last_scaled else None,
        created_at=created_at,
    )


def _mutable_fields(spec: FunctionSpec) -> tuple:
    """Column values: package, kind, inputs, output, replicas, config, desired, options,
    generation, starts, autoscale, last_scaled."""
    return (
        spec.package,
        spec.kind,
        json.dumps(spec.inputs),
        spec.output,
        spec.replicas,
        json.dumps(spec.config),
        str(spec.desired),
        json.dumps(spec.options),
        spec.generation,
        spec.starts,
        json.dumps(spec.autoscale) if spec.autoscale else None,
        json.dumps(spec.last_scaled) if spec.last_scaled else None,
    )
