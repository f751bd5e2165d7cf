"""The commands that change or show a function.

create, delete, list, status, stop, start, scale, restart, update.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from fscommon.protocol import ReplicaState
from fsctl import output as show
from fsctl.autoscale_flags import autoscale_args, autoscale_options
from fsctl.context import Ctx, json_option, parse_pairs, pass_ctx, read_module
from fsctl.create_flags import (
    data_path_options,
    grants_from_flags,
    options_from_flags,
    sandbox_options,
)


@click.command()
@click.option("-n", "--name", required=True, help="Function name.")
@click.option(
    "-a",
    "--archive",
    "archive",
    required=True,
    help="The function's WebAssembly module (.wasm).",
)
@click.option("-i", "--input", "inputs", multiple=True, help="Input topic (repeat).")
@click.option("-o", "--output", help="Output topic (omit for a sink function).")
@click.option("-r", "--replicas", type=int, default=1, show_default=True)
@click.option("--config", "config", multiple=True, help="key=value for the function (repeat).")
@click.option("--no-wait", is_flag=True, help="Return without waiting for the replicas to run.")
@data_path_options
@sandbox_options
@autoscale_options(update=False)
@json_option
@pass_ctx
def create(
    ctx: Ctx,
    name: str,
    archive: str,
    inputs: tuple[str, ...],
    output: str | None,
    replicas: int,
    config: tuple[str, ...],
    no_wait: bool,
    as_json: bool,
    **flags: Any,
) -> None:
    """Register a function and start its replicas (-r of them, or autoscaled in bounds)."""
    scaling = autoscale_args(flags)
    args = {
        "name": name,
        "wasm": read_module(archive),
        "wasm_name": Path(archive).name,
        "inputs": list(inputs),
        "output": output,
        "replicas": replicas,
        "config": parse_pairs(config, "--config"),
        "options": options_from_flags(flags),
        "wait": not no_wait,
        **scaling,
    }
    data = ctx.call("create", args, timeout=max(ctx.timeout, 90.0))
    print_function(data, as_json, f"Function '{name}' created")


@click.command()
@click.option("-n", "--name", required=True, help="Function name.")
@click.option("--purge", is_flag=True, help="Also delete the function's state.")
@json_option
@pass_ctx
def delete(ctx: Ctx, name: str, purge: bool, as_json: bool) -> None:
    """Stop a function's replicas and unregister it (its state is kept unless --purge)."""
    data = ctx.call("delete", {"name": name, "purge": purge}, timeout=max(ctx.timeout, 60.0))
    if as_json:
        show.emit_json(data)
    else:
        click.echo(f"Function '{name}' deleted")


@click.command(name="list")
@json_option
@pass_ctx
def list_(ctx: Ctx, as_json: bool) -> None:
    """List registered functions."""
    data = ctx.call("list")
    if as_json:
        show.emit_json(data)
    else:
        show.print_list(data)


@click.command()
@click.option("-n", "--name", help="Only this function.")
@click.option(
    "--watch",
    "watch",
    is_flag=False,
    flag_value=2.0,
    type=float,
    default=None,
    help="Refresh every N seconds (default 2) until Ctrl-C.",
)
@json_option
@pass_ctx
def status(ctx: Ctx, name: str | None, watch: float | None, as_json: bool) -> None:
    """Show each replica's state, pid, uptime, restarts, resources and counters."""
    while True:
        data = ctx.call("status", {"name": name} if name else {})
        if watch:
            click.clear()
        if as_json:
            show.emit_json(data)
        else:
            show.print_status(data)
        if not watch:
            return
        show.flush()
        try:
            time.sleep(watch)
        except KeyboardInterrupt:
            return


def print_function(data: dict[str, Any], as_json: bool, message: str) -> None:
    if as_json:
        show.emit_json(data)
        return
    running = sum(r["state"] == ReplicaState.RUNNING for r in data["replicas"])
    click.echo(f"{message}: {running}/{len(data['replicas'])} replicas running")


@click.command()
@click.option("-n", "--name", required=True, help="Function name.")
@click.option("-r", "--replicas", type=int, required=True, help="New number of replicas.")
@json_option
@pass_ctx
def scale(ctx: Ctx, name: str, replicas: int, as_json: bool) -> None:
    """Change the number of replicas (scale-down drains the removed ones).

    Refused for an autoscaled function: change its bounds with update instead."""
    data = ctx.call("scale", {"name": name, "replicas": replicas}, timeout=max(ctx.timeout, 180.0))
    print_function(data, as_json, f"Function '{name}' scaled")


@click.command()
@click.option("-n", "--name", required=True, help="Function name.")
@click.option("-a", "--archive", help="New WebAssembly module.")
@click.option("--config", "config", multiple=True, help="key=value; replaces the whole map.")
@sandbox_options
@autoscale_options(update=True)
@json_option
@pass_ctx
def update(
    ctx: Ctx,
    name: str,
    archive: str | None,
    config: tuple[str, ...],
    as_json: bool,
    allow_dir: tuple[str, ...],
    allow_env: tuple[str, ...],
    **scaling: Any,
) -> None:
    """Replace the module, config and/or grants (then roll the replicas one at a time),
    or change the autoscaling bounds (no roll)."""
    args: dict[str, Any] = {"name": name, **autoscale_args(scaling)}
    grants = grants_from_flags(allow_dir, allow_env)
    if grants:
        args["grants"] = grants
    if archive:
        args["wasm"] = read_module(archive)
        args["wasm_name"] = Path(archive).name
    if config:
        args["config"] = parse_pairs(config, "--config")
    data = ctx.call("update", args, timeout=max(ctx.timeout, 600.0))
    print_function(data, as_json, f"Function '{name}' updated")


def _by_name(cmd: str, done: str, wait: float, summary: str) -> click.Command:
    """A command that takes only -n NAME, asks fsd, and waits up to ``wait`` seconds."""

    @click.command(name=cmd, help=summary)
    @click.option("-n", "--name", required=True, help="Function name.")
    @json_option
    @pass_ctx
    def command(ctx: Ctx, name: str, as_json: bool) -> None:
        data = ctx.call(cmd, {"name": name}, timeout=max(ctx.timeout, wait))
        print_function(data, as_json, f"Function '{name}' {done}")

    return command


stop = _by_name(
    "stop", "stopped", 120.0,
    "Drain and stop every replica; the function stays registered (and stopped).",
)  # fmt: skip
start = _by_name(
    "start", "started", 120.0,
    "Start replicas that are stopped or FATAL (resets their restart count).",
)  # fmt: skip
restart = _by_name(
    "restart", "restarted", 600.0,
    "Rolling restart: one replica at a time, each back to RUNNING before the next.",
)  # fmt: skip
