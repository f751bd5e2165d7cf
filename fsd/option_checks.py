"""The checks of a function's options map and its WASI grants, as a control request carries them.

fscommon/function_options.py decides what an option's value means; these checks
run first, on the raw msgpack value, so that what reaches it is plain data of
bounded size and depth, and so that no error message quotes a huge value.
fsd/value_checks.py holds the checks of single fields and how values are shown.
"""

from __future__ import annotations

import math
import re
from typing import Any

from fscommon.function_options import (
    GUARANTEES,
    MAX_GRANTS,
    ORDERINGS,
    PASS_THROUGH,
    POSITIONS,
)
from fscommon.function_options import SCHEMAS as DATA_SCHEMAS
from fsd.value_checks import (
    MAX_CONFIG_KEY,
    MAX_CONFIG_VALUE,
    TYPE_NAMES,
    BadValue,
    describe,
    topic,
    type_name,
)

MAX_OPTION_DEPTH = 16  # json_schema documents nest; nothing else does
MAX_OPTION_ITEMS = 10_000  # scalars + containers in the whole options map
MAX_PATTERN = 256  # input_pattern: at most 128 nested groups, well inside re's recursion
MAX_SCHEMA_TEXT = 1024 * 1024  # avro_schema
MAX_PATH = 4096  # PATH_MAX
# Options whose value is one of a few words: checked here so no message quotes a huge value.
_WORD_OPTIONS = {
    "guarantee": GUARANTEES,
    "ordering": ORDERINGS,
    "subscription_position": POSITIONS,
    "input_schema": DATA_SCHEMAS,
    "output_schema": DATA_SCHEMAS,
}
OPTION_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


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
            wanted = " or ".join(TYPE_NAMES.get(t, t.__name__) for t in types)
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
