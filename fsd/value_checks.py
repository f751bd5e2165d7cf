"""The checks one field of a control request must pass, and how values are shown.

Each check takes a decoded msgpack value and raises ``BadValue`` saying what
was expected; fsd/request_validation.py applies them field by field. No check
quotes a whole client value in a message (``describe`` shortens it), and the
ones that hand a value on to fsd/function_spec.py or fscommon/function_options.py
first bound its type and size, so their messages stay short too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from fscommon.function_options import (
    GUARANTEES,
    MAX_GRANTS,
    ORDERINGS,
    PASS_THROUGH,
    POSITIONS,
)
from fscommon.function_options import SCHEMAS as DATA_SCHEMAS
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
MAX_NAME = 64  # NAME_RE
MAX_TOPIC = 400  # TOPIC_RE: a 200-character name after a tenant/namespace prefix
MAX_PATTERN = 256  # input_pattern: at most 128 nested groups, well inside re's recursion
MAX_SCHEMA_TEXT = 1024 * 1024  # avro_schema
MAX_PATH = 4096  # PATH_MAX
MAX_OFFSET = 2**63 - 1  # a file offset
# Options whose value is one of a few words: checked here so no message quotes a huge value.
_WORD_OPTIONS = {
    "guarantee": GUARANTEES,
    "ordering": ORDERINGS,
    "subscription_position": POSITIONS,
    "input_schema": DATA_SCHEMAS,
    "output_schema": DATA_SCHEMAS,
}
OPTION_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
FIELD_KEY_SHOWN = 40


class BadValue(Exception):
    """Raised by a check: ``expected`` says what would have been right."""

    def __init__(self, expected: str, full_message: str | None = None) -> None:
        super().__init__(expected)
        self.expected = expected
        self.full_message = full_message


Check = Callable[[Any], None]


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
            raise BadValue(f"an integer from {low} to {high}")

    return check


def boolean(value: Any) -> None:
    """true or false."""
    if not isinstance(value, bool):
        raise BadValue("true or false")


def binary(low: int, high: int) -> Check:
    """Bytes (msgpack bin) of a length in [low, high]."""

    def check(value: Any) -> None:
        if not isinstance(value, bytes) or not low <= len(value) <= high:
            raise BadValue(f"bytes, {low} to {high} long")

    return check


def choice(*allowed: str) -> Check:
    """One of the given words."""

    def check(value: Any) -> None:
        if value not in allowed or not isinstance(value, str):
            raise BadValue(f"one of {', '.join(allowed)}")

    return check


def function_name(value: Any) -> None:
    """A function name (it becomes a file name under the state dir, so no path characters)."""
    if not isinstance(value, str) or len(value) > MAX_NAME:
        # Not to validate_name, whose message quotes the whole value (megabytes, or a list
        # nested so deep that repr() fails).
        raise BadValue(
            "a function name",
            full_message=f"invalid function name {describe(value)}: use 1-{MAX_NAME} letters, "
            f"digits, '_', '.' or '-', starting with a letter or digit",
        )
    try:
        validate_name(value)
        # fullmatch: the pattern's '$' would also accept a trailing newline ('victim\n').
        if not NAME_RE.fullmatch(value):
            raise SpecInvalid(f"invalid function name {value!r}: no line breaks")
    except SpecInvalid as exc:
        raise BadValue("a function name", full_message=str(exc)) from None


def topic(what: str) -> Check:
    """A Pulsar topic name."""

    def check(value: Any) -> None:
        if not isinstance(value, str) or len(value) > MAX_TOPIC:
            # Not to validate_topic, whose message quotes the whole value.
            raise BadValue(
                "a topic name",
                full_message=f"invalid {what} topic {describe(value)}: use a name like "
                f"'example-input' or 'persistent://tenant/namespace/topic' (at most {MAX_TOPIC} "
                f"characters)",
            )
        try:
            validate_topic(value, what)
            if not TOPIC_RE.fullmatch(value):
                raise SpecInvalid(f"invalid {what} topic {value!r}: no line breaks")
        except SpecInvalid as exc:
            raise BadValue("a topic name", full_message=str(exc)) from None

    return check


def topics(value: Any) -> None:
    """One input topic or a list of them."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > MAX_INPUTS:
        raise BadValue(f"a topic name or a list of at most {MAX_INPUTS}")
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
        raise BadValue(
            f"a file name without '/' or control characters, at most {MAX_FILE_NAME} long"
        )


def string_map(value: Any) -> None:
    """The function's config: text keys to text values."""
    expected = (
        f"a map of at most {MAX_CONFIG_ENTRIES} text keys (1-{MAX_CONFIG_KEY} characters) to "
        f"text values (at most {MAX_CONFIG_VALUE} characters)"
    )
    if not isinstance(value, dict) or len(value) > MAX_CONFIG_ENTRIES:
        raise BadValue(expected)
    for key, item in value.items():
        if (
            not isinstance(key, str)
            or not 0 < len(key) <= MAX_CONFIG_KEY
            or not isinstance(item, str)
            or len(item) > MAX_CONFIG_VALUE
        ):
            raise BadValue(expected, full_message=f"config[{describe(key)}] = {describe(item)}")


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
        elif isinstance(item, float) and not math.isfinite(item):
            return f"plain data with finite numbers (got {item!r})"
        elif not isinstance(item, str | int | float | bool) and item is not None:
            return f"plain data (got a {type_name(item)})"
    return None


def options_map(value: Any) -> None:
    """The data-path options: a map of option names to plain data; known names type-checked."""
    if not isinstance(value, dict):
        raise BadValue("a map of option names to values")
    for key, item in value.items():
        if not isinstance(key, str) or not OPTION_KEY.match(key):
            raise BadValue(
                "option names in lower_snake_case",
                full_message=f"options: invalid option name {describe(key)}",
            )
        types = _OPTION_TYPES.get(key)
        if types is not None and (
            not isinstance(item, types) or (isinstance(item, bool) and bool not in types)
        ):
            wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise BadValue(
                wanted, full_message=f"options.{key} must be {wanted}, got {describe(item)}"
            )
        problem = _plain_data(item)
        if problem is not None:
            raise BadValue(problem, full_message=f"options.{key} must be {problem}")
        if item is not None:
            _option_value(key, item)


def _option_value(key: str, item: Any) -> None:
    """What fsd/function_options.py would refuse with a message quoting a huge value."""
    if key in _WORD_OPTIONS and item not in _WORD_OPTIONS[key]:
        wanted = f"one of {', '.join(_WORD_OPTIONS[key])}"
        raise BadValue(wanted, full_message=f"options.{key} must be {wanted}, got {describe(item)}")
    if key == "dead_letter_topic":
        topic("dead-letter")(item)
    if key == "pass_through" and not all(p in PASS_THROUGH for p in item):
        wanted = f"a list of {', '.join(PASS_THROUGH)}"
        raise BadValue(wanted, full_message=f"options.pass_through must be {wanted}")
    if key == "input_pattern":
        regex(item)
    if key == "avro_schema" and len(item) > MAX_SCHEMA_TEXT:
        raise BadValue(
            f"at most {MAX_SCHEMA_TEXT} characters",
            full_message=f"options.avro_schema is {len(item)} characters; at most "
            f"{MAX_SCHEMA_TEXT}",
        )
    if key in ("allow_dirs", "allow_env"):
        grant_list(key, item)


def regex(value: Any) -> None:
    """input_pattern: a short regular expression that compiles."""
    if not isinstance(value, str) or len(value) > MAX_PATTERN:
        raise BadValue(
            f"a regex of at most {MAX_PATTERN} characters",
            full_message=f"options.input_pattern must be a regex of at most {MAX_PATTERN} "
            f"characters, got {describe(value)}",
        )
    try:
        re.compile(value)
    except (re.error, RecursionError, OverflowError) as exc:
        raise BadValue(
            "a regex",
            full_message=f"options.input_pattern {describe(value)} is not a regex: {exc}",
        ) from None


def _dir_grant(grant: Any) -> bool:
    return (
        isinstance(grant, dict)
        and set(grant) == {"host", "guest", "mode"}
        and all(isinstance(v, str) and len(v) <= MAX_PATH for v in grant.values())
    )


def _env_grant(entry: Any) -> bool:
    return (
        isinstance(entry, str)
        and len(entry.partition("=")[0]) <= MAX_CONFIG_KEY
        and len(entry) <= MAX_CONFIG_KEY + MAX_CONFIG_VALUE
    )


_GRANT_SHAPES = {
    "allow_dirs": (_dir_grant, "maps of host, guest and mode (text paths)"),
    "allow_env": (_env_grant, "texts NAME or NAME=VALUE"),
}


def grant_list(key: str, value: Any) -> None:
    """allow_dirs or allow_env: their shape and sizes (FunctionOptions checks the paths)."""
    shape, what = _GRANT_SHAPES[key]
    if not isinstance(value, list) or len(value) > MAX_GRANTS or not all(map(shape, value)):
        wanted = f"a list of at most {MAX_GRANTS} {what}"
        raise BadValue(wanted, full_message=f"{key} must be {wanted}, got {describe(value)}")


def grants_map(value: Any) -> None:
    """update's WASI grants: allow_dirs and/or allow_env lists."""
    if not isinstance(value, dict) or not set(value) <= {"allow_dirs", "allow_env"}:
        raise BadValue("a map with allow_dirs and/or allow_env")
    for key, item in value.items():
        grant_list(key, item)


def log_cursor(value: Any) -> None:
    """fsctl logs -f: replica numbers (as text) to byte offsets."""
    if not (
        isinstance(value, dict)
        and len(value) <= MAX_REPLICAS
        and all(
            isinstance(k, str)
            and k.isdigit()
            and len(k) <= 2
            and isinstance(v, int)
            and not isinstance(v, bool)
            and 0 <= v <= MAX_OFFSET
            for k, v in value.items()
        )
    ):
        raise BadValue("a map of replica numbers (as text) to byte offsets >= 0")


def autoscale_map(value: Any) -> None:
    """Autoscaling bounds: a map of known bound names to numbers (ranges: fsd/autoscale.py)."""
    from fsd.autoscale import BOUND_FIELDS

    if not isinstance(value, dict) or not value:
        raise BadValue(f"a map with some of: {', '.join(sorted(BOUND_FIELDS))}")
    for key, item in value.items():
        if key not in BOUND_FIELDS:
            raise BadValue(
                "known bound names",
                full_message=f"autoscale: unknown field {describe(key)}; known: "
                f"{', '.join(sorted(BOUND_FIELDS))}",
            )
        if not isinstance(item, int | float) or isinstance(item, bool):
            raise BadValue(
                "a number", full_message=f"autoscale.{key} must be a number, got {describe(item)}"
            )


DEAD_LETTER_ID = re.compile(r"\d{1,20}:\d{1,20}(:\d{1,10})?")


def dead_letter_id(value: Any) -> None:
    """A dead-letter id as ``fsctl dlq list`` prints it: ``<ledger>:<entry>[:<batch>]``."""
    if not isinstance(value, str) or not DEAD_LETTER_ID.fullmatch(value):
        raise BadValue(
            "a dead-letter id",
            full_message=f"invalid dead-letter id {describe(value)}: ids look like 123:4 "
            f"(or 123:4:0), as 'fsctl dlq list' prints them",
        )


def dead_letter_ids(most: int) -> Check:
    """A list of dead-letter ids."""

    def check(value: Any) -> None:
        if not isinstance(value, list) or len(value) > most:
            raise BadValue(f"a list of at most {most} dead-letter ids")
        for item in value:
            dead_letter_id(item)

    return check
