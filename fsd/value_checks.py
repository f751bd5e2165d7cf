"""The checks one field of a control request must pass, and how values are shown.

Each check takes a decoded msgpack value and raises ``BadValue`` saying what
was expected; fsd/request_validation.py applies them field by field. No check
quotes a whole client value in a message (``describe`` shortens it), and the
ones that hand a value on to fsd/function_spec.py or fscommon/function_options.py
first bound its type and size, so their messages stay short too. The options map
and the WASI grants have their own module, fsd/option_checks.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

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
MAX_NAME = 64  # NAME_RE
MAX_TOPIC = 400  # TOPIC_RE: a 200-character name after a tenant/namespace prefix
MAX_OFFSET = 2**63 - 1  # a file offset
FIELD_KEY_SHOWN = 40


class BadValue(Exception):
    """Raised by a check: ``expected`` says what would have been right."""

    def __init__(self, expected: str, full_message: str | None = None) -> None:
        super().__init__(expected)
        self.expected = expected
        self.full_message = full_message


Check = Callable[[Any], None]


# --- how values are shown in messages ----------------------------------------------------------

TYPE_NAMES = {
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
    return TYPE_NAMES.get(type(value), type(value).__name__)


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
