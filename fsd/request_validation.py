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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fscommon.protocol import DLQ_MAX_IDS, DLQ_MAX_LIMIT, LOGS_MAX_LINES, DlqOp, ErrorCode
from fsd.function_spec import MAX_REPLICAS
from fsd.option_checks import grants_map, options_map
from fsd.value_checks import (
    FIELD_KEY_SHOWN,
    BadValue,
    Check,
    autoscale_map,
    binary,
    boolean,
    choice,
    dead_letter_id,
    dead_letter_ids,
    describe,
    file_name,
    function_name,
    integer,
    log_cursor,
    string_map,
    topic,
    topics,
)

__all__ = ["SCHEMAS", "RequestInvalid", "describe", "validate_args"]

# Limits of the state command (as the state store's).
MAX_STATE_KEY = 4096  # fsworker.state_store.MAX_KEY_BYTES
MAX_STATE_VALUE = 4 * 1024 * 1024  # fsworker.state_store.MAX_VALUE_BYTES
MAX_STATE_LIST = 10_000


class RequestInvalid(Exception):
    """A request's arguments do not match the command's schema."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.INVALID_ARGUMENT) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Field:
    """One argument: how to check it and whether it must be present."""

    check: Check
    required: bool = False
    nullable: bool = True  # an explicit nil counts as absent (fsctl sends output=None)


# --- the schemas --------------------------------------------------------------------------------

NAME = Field(function_name, required=True)
MODULE = binary(1, 2**63)  # the size limit is the request limit; precompile checks the content

SCHEMAS: dict[str, dict[str, Field]] = {
    "ping": {},
    "info": {},
    "list": {},
    "members": {},
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
        "autoscale": Field(autoscale_map),
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
        "autoscale": Field(autoscale_map),
        "autoscale_off": Field(boolean),
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
    "dlq": {
        "name": NAME,
        "op": Field(choice(*(op.value for op in DlqOp)), required=True),
        "limit": Field(integer(1, DLQ_MAX_LIMIT)),
        "id": Field(dead_letter_id),
        "ids": Field(dead_letter_ids(DLQ_MAX_IDS)),
        "all": Field(boolean),
        "dry_run": Field(boolean),
    },
}


def _state_rules(args: dict[str, Any]) -> None:
    op = args["op"]
    if op in ("get", "put", "delete") and args.get("key") is None:
        raise RequestInvalid(f"state: {op} needs a key (bytes, 1 to {MAX_STATE_KEY} long)")
    if op == "put" and args.get("value") is None:
        raise RequestInvalid("state: put needs a value (bytes)")


def _dlq_rules(args: dict[str, Any]) -> None:
    op = args["op"]
    if op == DlqOp.SHOW and args.get("id") is None:
        raise RequestInvalid("dlq: show needs an id (as 'fsctl dlq list' prints it)")
    if op == DlqOp.REPLAY and bool(args.get("ids")) == bool(args.get("all")):
        raise RequestInvalid("dlq: replay needs either ids (a non-empty list) or all=true")


# Rules between fields, run after every field passed.
CROSS_FIELD: dict[str, Callable[[dict[str, Any]], None]] = {
    "state": _state_rules,
    "dlq": _dlq_rules,
}


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
        except BadValue as bad:
            if bad.full_message:
                raise RequestInvalid(f"{cmd}: {bad.full_message}") from None
            raise RequestInvalid(
                f"{cmd}: {key} must be {bad.expected}, got {describe(value)}"
            ) from None
    rules = CROSS_FIELD.get(cmd)
    if rules is not None:
        rules(args)
