"""Every control command's argument schema, checked before any handler runs.

The control server calls ``validate_args(cmd, args)`` on each decoded
request. A request with a missing, unexpected or wrongly typed field, or a
value out of range, gets an INVALID_ARGUMENT reply naming the command, the
field, the value (shortened) and what is expected, and never reaches the
handler. Handlers can then rely on the types; they keep only the checks that
need fsd's state (does the function exist, is the module valid wasm, ...).

A command without a schema here is refused (fail closed): adding a command
means adding its schema (tests/unit/test_request_validation.py checks that
every handler has one).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fscommon.protocol import LOGS_MAX_LINES, ErrorCode
from fsd.function_spec import (
    MAX_REPLICAS,
    NAME_RE,
    TOPIC_RE,
    SpecInvalid,
    validate_name,
    validate_topic,
)

# Limits a legitimate request never comes near; they bound what one request can make fsd store.
MAX_INPUTS = 100
MAX_CONFIG_ENTRIES = 1024
MAX_CONFIG_KEY = 256
MAX_CONFIG_VALUE = 64 * 1024
MAX_FILE_NAME = 255
MAX_OPTION_DEPTH = 16  # json_schema documents nest; nothing else does
MAX_OPTION_ITEMS = 10_000  # scalars + containers in the whole options map
MAX_STATE_KEY = 4096  # fsworker.state_store.MAX_KEY_BYTES
MAX_STATE_VALUE = 4 * 1024 * 1024  # fsworker.state_store.MAX_VALUE_BYTES
MAX_STATE_LIST = 10_000
OPTION_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
FIELD_KEY_SHOWN = 40


class RequestInvalid(Exception):
    """A request's arguments do not match the command's schema."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.INVALID_ARGUMENT) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Bad(Exception):
    """Raised by a check: ``expected`` says what would have been right."""

    def __init__(self, expected: str, full_message: str | None = None) -> None:
        super().__init__(expected)
        self.expected = expected
        self.full_message = full_message


Check = Callable[[Any], None]


@dataclass(frozen=True)
class Field:
    """One argument: how to check it and whether it must be present."""

    check: Check
    required: bool = False
    nullable: bool = True  # an explicit nil counts as absent (fsctl sends output=None)


# --- how values are shown in messages ----------------------------------------------------------

_TYPE_NAMES = {
    str: "text",
    bytes: "bytes",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "list",
    dict: "map",
    type(None): "nil",
}


def type_name(value: Any) -> str:
    """The msgpack-level type of ``value``, in words."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def describe(value: Any, limit: int = 60) -> str:
    """A short, safe rendering of a client-supplied value (never a full repr of a huge one)."""
    if isinstance(value, bytes):
        shown = repr(value[:limit])
        return f"{shown}{'...' if len(value) > limit else ''} ({len(value)} bytes)"
    if isinstance(value, str):
        shown = repr(value[:limit])
        return f"{shown}{'...' if len(value) > limit else ''}"
    if isinstance(value, bool | int | float) or value is None:
        text = repr(value)
        return text if len(text) <= limit else text[:limit] + "..."
    if isinstance(value, list | dict):
        return f"a {type_name(value)} of {len(value)} item(s)"
    return f"a value of type {type_name(value)}"


# --- checks ------------------------------------------------------------------------------------


def integer(low: int, high: int) -> Check:
    """An integer (not a boolean) in [low, high]."""

    def check(value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise _Bad(f"an integer from {low} to {high}")

    return check


def boolean(value: Any) -> None:
    """true or false."""
    if not isinstance(value, bool):
        raise _Bad("true or false")


def binary(low: int, high: int) -> Check:
    """Bytes (msgpack bin) of a length in [low, high]."""

    def check(value: Any) -> None:
        if not isinstance(value, bytes) or not low <= len(value) <= high:
            raise _Bad(f"bytes, {low} to {high} long")

    return check


def choice(*allowed: str) -> Check:
    """One of the given words."""

    def check(value: Any) -> None:
        if value not in allowed or not isinstance(value, str):
            raise _Bad(f"one of {', '.join(allowed)}")

    return check


def function_name(value: Any) -> None:
    """A function name (it becomes a file name under the state dir, so no path characters)."""
    try:
        validate_name(value)
        # fullmatch: the pattern's '$' would also accept a trailing newline ('victim\n').
        if not NAME_RE.fullmatch(value):
            raise SpecInvalid(f"invalid function name {value!r}: no line breaks")
    except SpecInvalid as exc:
        raise _Bad("a function name", full_message=str(exc)) from None


def topic(what: str) -> Check:
    """A Pulsar topic name."""

    def check(value: Any) -> None:
        try:
            validate_topic(value, what)
            if not TOPIC_RE.fullmatch(value):
                raise SpecInvalid(f"invalid {what} topic {value!r}: no line breaks")
        except SpecInvalid as exc:
            raise _Bad("a topic name", full_message=str(exc)) from None

    return check


def topics(value: Any) -> None:
    """One input topic or a list of them."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > MAX_INPUTS:
        raise _Bad(f"a topic name or a list of at most {MAX_INPUTS}")
    for item in items:
        topic("input")(item)


def file_name(value: Any) -> None:
    """A plain file name (shown in messages only): no directory part, no traversal."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_FILE_NAME
        or "/" in value
        or "\\" in value
        or value in (".", "..")
        or not value.isprintable()
    ):
        raise _Bad(f"a file name without '/' or control characters, at most {MAX_FILE_NAME} long")


def string_map(value: Any) -> None:
    """The function's config: text keys to text values."""
    expected = (
        f"a map of at most {MAX_CONFIG_ENTRIES} text keys (1-{MAX_CONFIG_KEY} characters) to "
        f"text values (at most {MAX_CONFIG_VALUE} characters)"
    )
    if not isinstance(value, dict) or len(value) > MAX_CONFIG_ENTRIES:
        raise _Bad(expected)
    for key, item in value.items():
        if (
            not isinstance(key, str)
            or not 0 < len(key) <= MAX_CONFIG_KEY
            or not isinstance(item, str)
            or len(item) > MAX_CONFIG_VALUE
        ):
            raise _Bad(expected, full_message=f"config[{describe(key)}] = {describe(item)}")


# Types of the options fsd knows (FunctionOptions checks their values, and refuses unknown
# names; keeping names out of this table lets options added there pass through to it).
_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "guarantee": (str,),
    "ordering": (str,),
    "subscription_position": (str,),
    "input_pattern": (str, type(None)),
    "max_retries": (int,),
    "retry_delay_ms": (int,),
    "dead_letter_topic": (str, type(None)),
    "timeout_ms": (int, type(None)),
    "memory_limit": (int, type(None)),
    "fuel": (int, type(None)),
    "input_schema": (str,),
    "output_schema": (str,),
    "json_schema": (dict, type(None)),
    "avro_schema": (str, type(None)),
    "pass_through": (list,),
}


def _plain_data(value: Any) -> str | None:
    """None if ``value`` is nil/bool/number/text/list/map-with-text-keys within the limits."""
    stack = [(value, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_OPTION_ITEMS:
            return f"at most {MAX_OPTION_ITEMS} values in all"
        if depth > MAX_OPTION_DEPTH:
            return f"nested at most {MAX_OPTION_DEPTH} levels deep"
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return "maps with text keys"
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif not isinstance(item, str | int | float | bool) and item is not None:
            return f"plain data (got a {type_name(item)})"
    return None


def options_map(value: Any) -> None:
    """The data-path options: a map of option names to plain data; known names type-checked."""
    if not isinstance(value, dict):
        raise _Bad("a map of option names to values")
    for key, item in value.items():
        if not isinstance(key, str) or not OPTION_KEY.match(key):
            raise _Bad(
                "option names in lower_snake_case",
                full_message=f"options: invalid option name {describe(key)}",
            )
        types = _OPTION_TYPES.get(key)
        if types is not None and (
            not isinstance(item, types) or (isinstance(item, bool) and bool not in types)
        ):
            wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise _Bad(wanted, full_message=f"options.{key} must be {wanted}, got {describe(item)}")
        problem = _plain_data(item)
        if problem is not None:
            raise _Bad(problem, full_message=f"options.{key} must be {problem}")
        if key == "dead_letter_topic" and item is not None:
            topic("dead-letter")(item)
        if key == "pass_through" and not all(isinstance(p, str) for p in item):
            raise _Bad("a list of words", full_message="options.pass_through must list words")


def grants_map(value: Any) -> None:
    """update's WASI grants: allow_dirs / allow_env lists (FunctionOptions checks the entries)."""
    if not isinstance(value, dict) or not set(value) <= {"allow_dirs", "allow_env"}:
        raise _Bad("a map with allow_dirs and/or allow_env")
    for key, item in value.items():
        problem = _plain_data(item)
        if not isinstance(item, list) or problem is not None:
            raise _Bad("a list", full_message=f"grants.{key} must be a list, got {describe(item)}")


def log_cursor(value: Any) -> None:
    """fsctl logs -f: replica numbers (as text) to byte offsets."""
    if not (
        isinstance(value, dict)
        and len(value) <= MAX_REPLICAS
        and all(
            isinstance(k, str) and k.isdigit() and isinstance(v, int) and v >= 0
            for k, v in value.items()
        )
    ):
        raise _Bad("a map of replica numbers (as text) to byte offsets >= 0")


# --- the schemas --------------------------------------------------------------------------------

NAME = Field(function_name, required=True)
MODULE = binary(1, 2**63)  # the size limit is the request limit; precompile checks the content

SCHEMAS: dict[str, dict[str, Field]] = {
    "ping": {},
    "info": {},
    "list": {},
    "status": {"name": Field(function_name)},
    "create": {
        "name": NAME,
        "wasm": Field(MODULE, required=True),
        "wasm_name": Field(file_name),
        "inputs": Field(topics),
        "output": Field(topic("output")),
        "replicas": Field(integer(1, MAX_REPLICAS)),
        "config": Field(string_map),
        "options": Field(options_map),
        "wait": Field(boolean),
    },
    "delete": {"name": NAME, "purge": Field(boolean)},
    "stop": {"name": NAME},
    "start": {"name": NAME},
    "restart": {"name": NAME},
    "scale": {"name": NAME, "replicas": Field(integer(1, MAX_REPLICAS), required=True)},
    "update": {
        "name": NAME,
        "wasm": Field(MODULE),
        "wasm_name": Field(file_name),
        "config": Field(string_map),
        "grants": Field(grants_map),
    },
    "logs": {
        "name": NAME,
        "replica": Field(integer(0, MAX_REPLICAS - 1)),
        "lines": Field(integer(0, LOGS_MAX_LINES)),
        "cursor": Field(log_cursor),
    },
    "state": {
        "name": NAME,
        "op": Field(choice("get", "put", "delete", "list"), required=True),
        "key": Field(binary(1, MAX_STATE_KEY)),
        "value": Field(binary(0, MAX_STATE_VALUE)),
        "prefix": Field(binary(0, MAX_STATE_KEY)),
        "limit": Field(integer(1, MAX_STATE_LIST)),
    },
}


def _state_rules(args: dict[str, Any]) -> None:
    op = args["op"]
    if op in ("get", "put", "delete") and args.get("key") is None:
        raise RequestInvalid(f"state: {op} needs a key (bytes, 1 to {MAX_STATE_KEY} long)")
    if op == "put" and args.get("value") is None:
        raise RequestInvalid("state: put needs a value (bytes)")


# Rules between fields, run after every field passed.
CROSS_FIELD: dict[str, Callable[[dict[str, Any]], None]] = {"state": _state_rules}


def validate_args(cmd: str, args: dict[str, Any]) -> None:
    """Check ``args`` against ``cmd``'s schema; raise RequestInvalid naming the bad field."""
    schema = SCHEMAS.get(cmd)
    if schema is None:
        raise RequestInvalid(
            f"command {describe(cmd)} has no argument schema in fsd/request_validation.py; "
            f"it is refused until it has one",
            code=ErrorCode.INTERNAL,
        )
    for key in args:
        if key not in schema:
            shown = describe(key, FIELD_KEY_SHOWN) if isinstance(key, str) else describe(key)
            takes = ", ".join(schema) or "no arguments"
            raise RequestInvalid(f"{cmd}: unexpected field {shown}; {cmd} takes: {takes}")
    for key, field in schema.items():
        value = args.get(key)
        if value is None:
            if field.required:
                raise RequestInvalid(f"{cmd}: field '{key}' is required")
            continue
        try:
            field.check(value)
        except _Bad as bad:
            if bad.full_message:
                raise RequestInvalid(f"{cmd}: {bad.full_message}") from None
            raise RequestInvalid(
                f"{cmd}: {key} must be {bad.expected}, got {describe(value)}"
            ) from None
    rules = CROSS_FIELD.get(cmd)
    if rules is not None:
        rules(args)
