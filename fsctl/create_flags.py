"""create's (and run's) data-path and sandbox flags, as the FunctionOptions map fsd checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fscommon.function_options import (
    GUARANTEES,
    ORDERINGS,
    PASS_THROUGH,
    POSITIONS,
    SCHEMAS,
    DataSchema,
    Guarantee,
    OptionError,
    Ordering,
    Position,
    parse_dir_grant,
    parse_size,
)


def data_path_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """create's flags for guarantees, ordering, retries, limits and schemas."""
    choice = click.Choice
    opts = [
        click.option("--guarantee", type=choice(GUARANTEES), default=Guarantee.AT_LEAST_ONCE.value,
                     show_default=True, help="Delivery guarantee."),
        click.option("--ordering", type=choice(ORDERINGS), default=Ordering.NONE.value,
                     show_default=True,
                     help="none: Shared; key: Key_Shared; strict: Failover."),
        click.option("--subscription-position", type=choice(POSITIONS),
                     default=Position.EARLIEST.value, show_default=True,
                     help="Where a new function starts reading."),
        click.option("--input-pattern", help="Regex over full topic names, instead of -i."),
        # No client-side default for these four: fsd applies its configured
        # defaults (default_* in fsd.toml) to what the request leaves out.
        click.option("--max-retries", type=int,
                     help="Redeliveries of a failing message before the dead-letter topic "
                     "[fsd default: 3]."),
        click.option("--retry-delay-ms", type=int, help="[fsd default: 1000]"),
        click.option("--dead-letter-topic", help="Default: <input>-<function>-DLQ."),
        click.option("--timeout-ms", type=int,
                     help="Time limit per message, 0: none [fsd default: 5000]."),
        click.option("--memory-limit",
                     help="Guest memory limit, e.g. 64MiB, 0: none [fsd default: 256MiB]."),
        click.option("--fuel", type=int, help="Fuel (about one per instruction) per message."),
        click.option("--input-schema", type=choice(SCHEMAS), default=DataSchema.BYTES.value,
                     show_default=True),
        click.option("--output-schema", type=choice(SCHEMAS), default=DataSchema.BYTES.value,
                     show_default=True),
        click.option("--json-schema", "json_schema_file", type=click.Path(dir_okay=False),
                     help="JSON Schema file that JSON input must match."),
        click.option("--avro-schema", "avro_schema_file", type=click.Path(dir_okay=False),
                     help="Avro schema file (JSON) for avro input/output."),
        click.option("--pass-through", default=",".join(PASS_THROUGH), show_default=True,
                     help="What passes from input to output: key,properties,event-time or none."),
    ]  # fmt: skip
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def sandbox_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """create's and update's WASI grants (docs/security.md, "Function sandbox")."""
    fn = click.option(
        "--allow-env", "allow_env", multiple=True, metavar="NAME[=VALUE]",
        help="Let the guest see NAME with fsd's value, or with VALUE (repeat). "
        "update: replaces the list; 'none' clears it.",
    )(fn)  # fmt: skip
    return click.option(
        "--allow-dir", "allow_dir", multiple=True, metavar="HOST:GUEST[:ro]",
        help="Let the guest open HOST at GUEST, read-write or :ro (repeat). "
        "update: replaces the list; 'none' clears it.",
    )(fn)  # fmt: skip


def grants_from_flags(allow_dir: tuple[str, ...], allow_env: tuple[str, ...]) -> dict[str, Any]:
    """--allow-dir/--allow-env as FunctionOptions fields; only the flags given ('none': [])."""
    grants: dict[str, Any] = {}
    if allow_dir:
        try:
            grants["allow_dirs"] = (
                [] if allow_dir == ("none",) else [parse_dir_grant(d) for d in allow_dir]
            )
        except OptionError as exc:
            raise click.BadParameter(str(exc), param_hint="--allow-dir") from None
    if allow_env:
        grants["allow_env"] = [] if allow_env == ("none",) else list(allow_env)
    return grants


def options_from_flags(flags: dict[str, Any]) -> dict[str, Any]:
    """Turn create's flags into the FunctionOptions map fsd validates."""
    opts: dict[str, Any] = {
        key: flags[key]
        for key in (
            "guarantee", "ordering", "subscription_position", "input_pattern",
            "dead_letter_topic", "fuel", "input_schema", "output_schema",
        )
    }  # fmt: skip
    for key in ("max_retries", "retry_delay_ms"):
        if flags[key] is not None:
            opts[key] = flags[key]
    if flags["timeout_ms"] is not None:
        opts["timeout_ms"] = flags["timeout_ms"] or None
    if flags["memory_limit"] is not None:
        try:
            limit = parse_size(flags["memory_limit"])
        except OptionError as exc:
            raise click.BadParameter(str(exc), param_hint="--memory-limit") from None
        opts["memory_limit"] = limit or None
    passing = flags["pass_through"].strip()
    opts["pass_through"] = [] if passing in ("", "none") else passing.split(",")
    if flags["json_schema_file"]:
        text = _read_text(flags["json_schema_file"], "--json-schema")
        try:
            opts["json_schema"] = json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--json-schema") from None
    if flags["avro_schema_file"]:
        opts["avro_schema"] = _read_text(flags["avro_schema_file"], "--avro-schema")
    opts.update(grants_from_flags(flags["allow_dir"], flags["allow_env"]))
    return opts


def _read_text(path: str, hint: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=hint) from None
