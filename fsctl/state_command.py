"""'fsctl state get|put|delete|list': a function's state, keys and values as UTF-8 text."""

from __future__ import annotations

import sys
from typing import Any

import click

from fscommon.exitcodes import CtlExit
from fsctl import output as show
from fsctl.context import Ctx, json_option, pass_ctx


@click.group()
def state() -> None:
    """Read and change a function's state (keys and values as UTF-8 text)."""


def _show_value(value: bytes | None) -> str:
    if value is None:
        return "(missing)"
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return repr(value)


def _state_json(item: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in item.items()
    }


def _reply(data: dict[str, Any], as_json: bool, text: str) -> None:
    """One key's reply: JSON, or the line for people."""
    if as_json:
        show.emit_json(_state_json(data))
    else:
        click.echo(text)


@state.command(name="get")
@click.option("-n", "--name", required=True, help="Function name.")
@click.argument("key")
@json_option
@pass_ctx
def state_get(ctx: Ctx, name: str, key: str, as_json: bool) -> None:
    """Print one value (exit 1 if the key is missing)."""
    data = ctx.call("state", {"name": name, "op": "get", "key": key.encode()})
    _reply(data, as_json, _show_value(data["value"]))
    if data["value"] is None:
        sys.exit(CtlExit.FAILED)


@state.command(name="put")
@click.option("-n", "--name", required=True, help="Function name.")
@click.argument("key")
@click.argument("value")
@json_option
@pass_ctx
def state_put(ctx: Ctx, name: str, key: str, value: str, as_json: bool) -> None:
    """Set one value."""
    args = {"name": name, "op": "put", "key": key.encode(), "value": value.encode()}
    _reply(ctx.call("state", args), as_json, f"{key} = {value}")


@state.command(name="delete")
@click.option("-n", "--name", required=True, help="Function name.")
@click.argument("key")
@json_option
@pass_ctx
def state_delete(ctx: Ctx, name: str, key: str, as_json: bool) -> None:
    """Remove one key."""
    data = ctx.call("state", {"name": name, "op": "delete", "key": key.encode()})
    _reply(data, as_json, f"{key} deleted")


@state.command(name="list")
@click.option("-n", "--name", required=True, help="Function name.")
@click.option("--prefix", default="", help="Only keys starting with this.")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@pass_ctx
def state_list(ctx: Ctx, name: str, prefix: str, limit: int, as_json: bool) -> None:
    """List keys and values in key order."""
    args = {"name": name, "op": "list", "prefix": prefix.encode(), "limit": limit}
    data = ctx.call("state", args)
    if as_json:
        show.emit_json([_state_json(item) for item in data])
        return
    for item in data:
        click.echo(f"{_show_value(item['key'])} = {_show_value(item['value'])}")
