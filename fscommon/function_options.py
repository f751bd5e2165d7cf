"""Per-function data-path options: guarantees, ordering, retries, limits, schemas, grants.

Validated once in fsd at create/update (so a bad value is a clear error
naming the option) and carried to every worker in its spec.
"""

from __future__ import annotations

import enum
import os
import posixpath
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar


class Guarantee(enum.StrEnum):
    """What happens to a message when a worker or the broker fails (docs/guarantees.md)."""

    AT_LEAST_ONCE = "at-least-once"
    AT_MOST_ONCE = "at-most-once"
    EFFECTIVELY_ONCE = "effectively-once"


class Ordering(enum.StrEnum):
    """How inputs are spread over replicas: the Pulsar subscription type."""

    NONE = "none"  # Shared
    KEY = "key"  # Key_Shared
    STRICT = "strict"  # Failover: one active consumer per topic


class Position(enum.StrEnum):
    """Where a new subscription starts reading."""

    EARLIEST = "earliest"
    LATEST = "latest"


class DataSchema(enum.StrEnum):
    """How input and output payloads are read and written."""

    BYTES = "bytes"
    STRING = "string"
    JSON = "json"
    AVRO = "avro"


class PassThrough(enum.StrEnum):
    """Input metadata copied to every output."""

    KEY = "key"
    PROPERTIES = "properties"
    EVENT_TIME = "event-time"


E = TypeVar("E", bound=enum.StrEnum)

# The accepted words as plain text, for CLI choices and messages (click shows an enum
# member's name, not its value).
GUARANTEES = tuple(m.value for m in Guarantee)
ORDERINGS = tuple(m.value for m in Ordering)
POSITIONS = tuple(m.value for m in Position)
SCHEMAS = tuple(m.value for m in DataSchema)
PASS_THROUGH = tuple(m.value for m in PassThrough)

MAX_MEMORY_LIMIT = 4 * 1024 * 1024 * 1024  # wasm32 cannot address more

# Sandbox grants (docs/security.md, "Function sandbox").
DIR_MODES = ("ro", "rw")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_GRANTS = 64  # per kind; a guard against a runaway script, not a design limit


class OptionError(ValueError):
    """An option has a bad value; the message names the option and the value."""


@dataclass
class FunctionOptions:
    """Everything about how messages flow through one function."""

    guarantee: Guarantee = Guarantee.AT_LEAST_ONCE
    ordering: Ordering = Ordering.NONE
    subscription_position: Position = Position.EARLIEST
    input_pattern: str | None = None  # a regex over full topic names, instead of inputs
    max_retries: int = 3  # redeliveries after the first attempt, then the dead-letter topic
    retry_delay_ms: int = 1000
    dead_letter_topic: str | None = None  # default: <input topic>-<function>-DLQ
    timeout_ms: int | None = 5000  # per message (any length: busy_ms heartbeats cover it)
    memory_limit: int | None = 256 * 1024 * 1024  # bytes of guest linear memory
    fuel: int | None = None  # wasm instructions (roughly) per message; off by default
    input_schema: DataSchema = DataSchema.BYTES
    output_schema: DataSchema = DataSchema.BYTES
    json_schema: dict[str, Any] | None = None  # checks json input/output; output's topic schema
    avro_schema: str | None = None  # Avro schema (JSON text) for avro input/output
    pass_through: list[PassThrough] = field(default_factory=lambda: list(PassThrough))
    # WASI grants; nothing of the host is visible to the guest without them.
    # Each dir: {"host": abs existing dir, "guest": abs path, "mode": "ro"|"rw"}.
    allow_dirs: list[dict[str, str]] = field(default_factory=list)
    # Each entry "NAME" (the value from fsd's environment) or "NAME=VALUE" (fixed).
    allow_env: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the registry and the worker spec."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> FunctionOptions:
        """Parse and validate; raises OptionError naming the option."""
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise OptionError(f"unknown option(s): {', '.join(unknown)}")
        options = cls(**raw)
        options.validate()
        return options

    def validate(self) -> None:
        """Check every option's type and value; the modes become their enums."""
        self.guarantee = _choice("guarantee", self.guarantee, Guarantee)
        self.ordering = _choice("ordering", self.ordering, Ordering)
        self.subscription_position = _choice(
            "subscription-position", self.subscription_position, Position
        )
        self.input_schema = _choice("input-schema", self.input_schema, DataSchema)
        self.output_schema = _choice("output-schema", self.output_schema, DataSchema)
        _int("max-retries", self.max_retries, 0, 1000)
        _int("retry-delay-ms", self.retry_delay_ms, 0, 3_600_000)
        if self.timeout_ms is not None:
            _int("timeout-ms", self.timeout_ms, 1, 3_600_000)
        if self.memory_limit is not None:
            _int("memory-limit", self.memory_limit, 64 * 1024, MAX_MEMORY_LIMIT)
        if self.fuel is not None:
            _int("fuel", self.fuel, 1, 2**62)
        if self.input_pattern is not None:
            if not isinstance(self.input_pattern, str) or "://" not in self.input_pattern:
                raise OptionError(
                    f"input-pattern must be a regex over full topic names such as "
                    f"'persistent://public/default/orders-.*', got {self.input_pattern!r}"
                )
            try:
                re.compile(self.input_pattern)
            except re.error as exc:
                raise OptionError(
                    f"input-pattern {self.input_pattern!r} is not a regex: {exc}"
                ) from None
        if not isinstance(self.pass_through, list) or any(
            p not in PASS_THROUGH for p in self.pass_through
        ):
            raise OptionError(
                f"pass-through takes a comma-separated subset of {', '.join(PASS_THROUGH)} "
                f"(or 'none'), got {self.pass_through!r}"
            )
        self.pass_through = [PassThrough(p) for p in self.pass_through]
        if self.json_schema is not None:
            if not isinstance(self.json_schema, dict):
                raise OptionError("json-schema must be a JSON object (a JSON Schema document)")
            if DataSchema.JSON not in (self.input_schema, self.output_schema):
                raise OptionError("json-schema needs --input-schema json or --output-schema json")
        avro_used = DataSchema.AVRO in (self.input_schema, self.output_schema)
        if avro_used and not self.avro_schema:
            raise OptionError("an avro input or output schema needs --avro-schema FILE")
        _validate_dir_grants(self.allow_dirs)
        _validate_env_grants(self.allow_env)
        if self.guarantee is Guarantee.EFFECTIVELY_ONCE and self.ordering is not Ordering.STRICT:
            raise OptionError(
                "effectively-once needs --ordering strict: output sequence ids follow the input "
                "order, which only one active consumer per topic keeps"
            )


# The options an operator may give defaults for in fsd.toml (default_<option>).
OPERATOR_DEFAULTS = ("timeout_ms", "memory_limit", "max_retries", "retry_delay_ms")


def with_defaults(raw: Any, defaults: dict[str, Any]) -> Any:
    """A create request's options with fsd's configured defaults for the keys it leaves out.

    An explicit value, including None ("no limit"), wins over the default.
    Anything that is not a map is returned as is, for from_dict to reject.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return raw
    return {**defaults, **raw}


def _choice(name: str, value: Any, allowed: type[E]) -> E:
    """``value`` as a member of ``allowed``; OptionError naming the option if it is none."""
    if not isinstance(value, str) or value not in tuple(allowed):
        raise OptionError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return allowed(value)


def _int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise OptionError(f"{name} must be an integer from {low} to {high}, got {value!r}")


GRANT_FIELDS = ("allow_dirs", "allow_env")


def with_grants(options: dict[str, Any], grants: Any) -> dict[str, Any]:
    """``options`` (FunctionOptions.to_dict()) with the grant lists in ``grants`` replaced.

    For ``fsctl update --allow-dir/--allow-env``; raises OptionError.
    """
    if not isinstance(grants, dict) or not grants or set(grants) - set(GRANT_FIELDS):
        raise OptionError(
            f"grants must be a map with allow_dirs and/or allow_env, got {grants!r}"[:300]
        )
    return FunctionOptions.from_dict({**options, **grants}).to_dict()


def parse_dir_grant(text: str) -> dict[str, str]:
    """``HOST:GUEST[:ro|:rw]`` (the --allow-dir flag) -> a grant; the default mode is rw.

    Only the shape is checked here; ``validate`` checks the paths (in fsd, which
    is on the host that has them).
    """
    parts = text.split(":")
    if len(parts) == 2:
        parts.append("rw")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise OptionError(
            f"--allow-dir takes HOST:GUEST or HOST:GUEST:ro (paths without ':'), got {text!r}"
        )
    host, guest, mode = parts
    if mode not in DIR_MODES:
        raise OptionError(f"--allow-dir mode must be ro or rw, got {mode!r} in {text!r}")
    return {"host": host, "guest": guest, "mode": mode}


def format_dir_grant(grant: dict[str, str]) -> str:
    """A grant as the flag text, ``HOST:GUEST:MODE``."""
    return f"{grant['host']}:{grant['guest']}:{grant['mode']}"


def env_grant_name(entry: str) -> str:
    """The variable name of an --allow-env entry (``NAME`` or ``NAME=VALUE``)."""
    return entry.partition("=")[0]


def _validate_dir_grants(grants: Any) -> None:
    if not isinstance(grants, list) or len(grants) > MAX_GRANTS:
        raise OptionError(f"allow-dirs must be a list of at most {MAX_GRANTS} grants")
    guests: set[str] = set()
    for grant in grants:
        if not isinstance(grant, dict) or set(grant) != {"host", "guest", "mode"}:
            raise OptionError(f"--allow-dir grant must have host, guest and mode, got {grant!r}")
        host, guest, mode = grant["host"], grant["guest"], grant["mode"]
        shown = f"{host}:{guest}:{mode}"
        if mode not in DIR_MODES:
            raise OptionError(f"--allow-dir mode must be ro or rw, got {mode!r} in {shown!r}")
        if not isinstance(host, str) or not os.path.isabs(host) or "\0" in host:
            raise OptionError(f"--allow-dir HOST must be an absolute path, got {host!r}")
        if not os.path.isdir(host):
            raise OptionError(
                f"--allow-dir HOST {host!r} is not an existing directory on fsd's host"
            )
        if (
            not isinstance(guest, str)
            or not guest.startswith("/")
            or "\0" in guest
            or ".." in guest.split("/")
        ):
            raise OptionError(
                f"--allow-dir GUEST must be an absolute path without '..', got {guest!r}"
            )
        normal = posixpath.normpath(guest)
        if normal in guests:
            raise OptionError(f"--allow-dir GUEST {guest!r} is granted twice")
        guests.add(normal)


def _validate_env_grants(entries: Any) -> None:
    if not isinstance(entries, list) or len(entries) > MAX_GRANTS:
        raise OptionError(f"allow-env must be a list of at most {MAX_GRANTS} entries")
    names: set[str] = set()
    for entry in entries:
        if not isinstance(entry, str):
            raise OptionError(f"--allow-env takes NAME or NAME=VALUE, got {entry!r}")
        name, _, value = entry.partition("=")
        if not ENV_NAME.match(name):
            raise OptionError(f"--allow-env NAME must match [A-Za-z_][A-Za-z0-9_]*, got {name!r}")
        if "\0" in value:
            raise OptionError(f"--allow-env {name}: the value must not contain NUL")
        if name in names:
            raise OptionError(f"--allow-env {name} is given twice")
        names.add(name)


_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3}


def parse_size(text: str) -> int:
    """'64MiB' / '64Mi' / '64M' / '65536' -> bytes (Ki/Mi/Gi are binary, k/M/G decimal)."""
    match = _SIZE.match(text)
    if not match:
        raise OptionError(f"memory-limit must be a size like 64MiB or 65536, got {text!r}")
    number, unit = int(match.group(1)), (match.group(2) or "").lower()
    if "i" in unit:
        return number * 1024 ** ("kmg".index(unit[0]) + 1)
    return number * _UNITS[unit[:1]]
