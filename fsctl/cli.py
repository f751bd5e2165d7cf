"""fsctl: create, inspect and delete functions; produce to and consume from topics.

Exit codes: 0 ok; 1 the command failed; 2 usage error; 3 fsd unreachable.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fscommon.exitcodes import CtlExit
from fscommon.function_options import (
    GUARANTEES,
    ORDERINGS,
    PASS_THROUGH,
    POSITIONS,
    SCHEMAS,
    OptionError,
    parse_dir_grant,
    parse_size,
)
from fscommon.paths import default_control_endpoint
from fsctl import output as show
from fsctl.autoscale_flags import autoscale_args, autoscale_options
from fsctl.client import ClientCurve, CommandFailed, Unreachable, call


class Ctx:
    """Options shared by every command."""

    def __init__(
        self,
        endpoint: str,
        timeout: float,
        server_key: str | None = None,
        client_key: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.server_key = server_key
        self.client_key = client_key

    def curve(self) -> ClientCurve | None:
        """CURVE keys from --server-key/--client-key; a tcp:// endpoint requires them."""
        from fscommon.curve_keys import KeyFileError, read_public_key, read_secret_key

        if not self.server_key and not self.client_key:
            if self.endpoint.startswith("tcp://"):
                show.error(
                    f"{self.endpoint} is a TCP endpoint: fsd only serves it with CURVE keys. "
                    f"Give --server-key FILE (fsd's public key) and --client-key FILE (your "
                    f"secret key), or FSCTL_SERVER_KEY/FSCTL_CLIENT_KEY; see 'fsctl keygen'"
                )
                sys.exit(CtlExit.USAGE)
            return None
        if not self.server_key or not self.client_key:
            missing = "--server-key" if not self.server_key else "--client-key"
            show.error(f"CURVE needs both --server-key and --client-key; {missing} is missing")
            sys.exit(CtlExit.USAGE)
        try:
            server = read_public_key(self.server_key, "server public key file (--server-key)")
            public, secret = read_secret_key(
                self.client_key, "client secret key file (--client-key)"
            )
        except KeyFileError as exc:
            show.error(str(exc))
            sys.exit(CtlExit.USAGE)
        return ClientCurve(server, public, secret)

    def call(
        self, cmd: str, args: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """Send a request to fsd; errors end the command with the right exit code."""
        curve = self.curve()
        try:
            return call(self.endpoint, cmd, args, timeout or self.timeout, curve)
        except Unreachable as exc:
            show.error(str(exc))
            sys.exit(CtlExit.UNREACHABLE)
        except CommandFailed as exc:
            show.error(exc.message)
            sys.exit(CtlExit.FAILED)


pass_ctx = click.make_pass_decorator(Ctx)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add --json to a command."""

    @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def _parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint=what)
        out[key] = value
    return out


def _read_module(archive: str) -> bytes:
    try:
        return Path(archive).read_bytes()
    except OSError as exc:
        show.error(f"cannot read module '{archive}': {exc.strerror}")
        sys.exit(CtlExit.FAILED)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--endpoint",
    envvar="FS_ENDPOINT",
    default=default_control_endpoint,
    show_default="ipc://<runtime dir>/fsd.sock",
    help="fsd's control endpoint.",
)
@click.option(
    "--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for fsd."
)
@click.option(
    "--server-key",
    envvar="FSCTL_SERVER_KEY",
    show_envvar=True,
    help="fsd's CURVE public key file (tcp:// endpoints).",
)
@click.option(
    "--client-key",
    envvar="FSCTL_CLIENT_KEY",
    show_envvar=True,
    help="Your CURVE secret key file (tcp:// endpoints).",
)
@click.pass_context
def main(
    ctx: click.Context,
    endpoint: str,
    timeout: float,
    server_key: str | None,
    client_key: str | None,
) -> None:
    """Control Function Stream: run WebAssembly functions on Pulsar topics."""
    ctx.obj = Ctx(endpoint, timeout, server_key, client_key)


def _data_path_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """create's flags for guarantees, ordering, retries, limits and schemas."""
    choice = click.Choice
    opts = [
        click.option("--guarantee", type=choice(GUARANTEES), default="at-least-once",
                     show_default=True, help="Delivery guarantee."),
        click.option("--ordering", type=choice(ORDERINGS), default="none", show_default=True,
                     help="none: Shared; key: Key_Shared; strict: Failover."),
        click.option("--subscription-position", type=choice(POSITIONS), default="earliest",
                     show_default=True, help="Where a new function starts reading."),
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
        click.option("--input-schema", type=choice(SCHEMAS), default="bytes", show_default=True),
        click.option("--output-schema", type=choice(SCHEMAS), default="bytes", show_default=True),
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


def _sandbox_options(fn: Callable[..., Any]) -> Callable[..., Any]:
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


def _grants_from_flags(allow_dir: tuple[str, ...], allow_env: tuple[str, ...]) -> dict[str, Any]:
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


def _options_from_flags(flags: dict[str, Any]) -> dict[str, Any]:
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
    opts.update(_grants_from_flags(flags["allow_dir"], flags["allow_env"]))
    return opts


def _read_text(path: str, hint: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=hint) from None


@main.command()
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
@_data_path_options
@_sandbox_options
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
        "wasm": _read_module(archive),
        "wasm_name": Path(archive).name,
        "inputs": list(inputs),
        "output": output,
        "replicas": replicas,
        "config": _parse_pairs(config, "--config"),
        "options": _options_from_flags(flags),
        "wait": not no_wait,
        **scaling,
    }
    data = ctx.call("create", args, timeout=max(ctx.timeout, 90.0))
    _print_function(data, as_json, f"Function '{name}' created")


@main.command()
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


@main.command(name="list")
@json_option
@pass_ctx
def list_(ctx: Ctx, as_json: bool) -> None:
    """List registered functions."""
    data = ctx.call("list")
    if as_json:
        show.emit_json(data)
    else:
        show.print_list(data)


@main.command()
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


def _print_function(data: dict[str, Any], as_json: bool, message: str) -> None:
    if as_json:
        show.emit_json(data)
        return
    running = sum(r["state"] == "RUNNING" for r in data["replicas"])
    click.echo(f"{message}: {running}/{len(data['replicas'])} replicas running")


@main.command()
@click.option("-n", "--name", required=True, help="Function name.")
@json_option
@pass_ctx
def stop(ctx: Ctx, name: str, as_json: bool) -> None:
    """Drain and stop every replica; the function stays registered (and stopped)."""
    data = ctx.call("stop", {"name": name}, timeout=max(ctx.timeout, 120.0))
    _print_function(data, as_json, f"Function '{name}' stopped")


@main.command()
@click.option("-n", "--name", required=True, help="Function name.")
@json_option
@pass_ctx
def start(ctx: Ctx, name: str, as_json: bool) -> None:
    """Start replicas that are stopped or FATAL (resets their restart count)."""
    data = ctx.call("start", {"name": name}, timeout=max(ctx.timeout, 120.0))
    _print_function(data, as_json, f"Function '{name}' started")


@main.command()
@click.option("-n", "--name", required=True, help="Function name.")
@click.option("-r", "--replicas", type=int, required=True, help="New number of replicas.")
@json_option
@pass_ctx
def scale(ctx: Ctx, name: str, replicas: int, as_json: bool) -> None:
    """Change the number of replicas (scale-down drains the removed ones).

    Refused for an autoscaled function: change its bounds with update instead."""
    data = ctx.call("scale", {"name": name, "replicas": replicas}, timeout=max(ctx.timeout, 180.0))
    _print_function(data, as_json, f"Function '{name}' scaled")


@main.command()
@click.option("-n", "--name", required=True, help="Function name.")
@json_option
@pass_ctx
def restart(ctx: Ctx, name: str, as_json: bool) -> None:
    """Rolling restart: one replica at a time, each back to RUNNING before the next."""
    data = ctx.call("restart", {"name": name}, timeout=max(ctx.timeout, 600.0))
    _print_function(data, as_json, f"Function '{name}' restarted")


@main.command()
@click.option("-n", "--name", required=True, help="Function name.")
@click.option("-a", "--archive", help="New WebAssembly module.")
@click.option("--config", "config", multiple=True, help="key=value; replaces the whole map.")
@_sandbox_options
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
    grants = _grants_from_flags(allow_dir, allow_env)
    if grants:
        args["grants"] = grants
    if archive:
        args["wasm"] = _read_module(archive)
        args["wasm_name"] = Path(archive).name
    if config:
        args["config"] = _parse_pairs(config, "--config")
    data = ctx.call("update", args, timeout=max(ctx.timeout, 600.0))
    _print_function(data, as_json, f"Function '{name}' updated")


@main.group()
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


@state.command(name="get")
@click.option("-n", "--name", required=True, help="Function name.")
@click.argument("key")
@json_option
@pass_ctx
def state_get(ctx: Ctx, name: str, key: str, as_json: bool) -> None:
    """Print one value (exit 1 if the key is missing)."""
    data = ctx.call("state", {"name": name, "op": "get", "key": key.encode()})
    if as_json:
        show.emit_json(_state_json(data))
    else:
        click.echo(_show_value(data["value"]))
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
    data = ctx.call("state", args)
    if as_json:
        show.emit_json(_state_json(data))
    else:
        click.echo(f"{key} = {value}")


@state.command(name="delete")
@click.option("-n", "--name", required=True, help="Function name.")
@click.argument("key")
@json_option
@pass_ctx
def state_delete(ctx: Ctx, name: str, key: str, as_json: bool) -> None:
    """Remove one key."""
    data = ctx.call("state", {"name": name, "op": "delete", "key": key.encode()})
    if as_json:
        show.emit_json(_state_json(data))
    else:
        click.echo(f"{key} deleted")


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


@main.command()
@click.option("-n", "--name", help="Only this function.")
@click.option("--count", type=int, help="Exit after this many events.")
@pass_ctx
def events(ctx: Ctx, name: str | None, count: int | None) -> None:
    """Print replica state changes as fsd publishes them (JSON lines)."""
    import json

    import msgpack
    import zmq

    endpoint = ctx.call("info")["transitions_endpoint"]
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, name.encode() if name else b"")
    sock.connect(endpoint)
    click.echo(f"Watching replica state changes at {endpoint} (Ctrl-C to stop)", err=True)
    seen = 0
    try:
        while count is None or seen < count:
            _topic, frame = sock.recv_multipart()
            event = msgpack.unpackb(frame, raw=False)
            if name and event.get("function") != name:
                continue
            click.echo(json.dumps(event, sort_keys=True))
            show.flush()
            seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


@main.command()
@click.option(
    "--out",
    "out_dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory for the key files.",
)
@click.option("--name", help="File name stem (NAME.key, NAME.key_secret). [default: your user]")
def keygen(out_dir: str, name: str | None) -> None:
    """Create a CURVE key pair (Z85 text): NAME.key (public) and NAME.key_secret (0600).

    For fsd: point curve_secret_key at its .key_secret and give its .key to
    clients (--server-key). For a client: put its .key in fsd's
    curve_allowed_clients directory and use its .key_secret as --client-key.
    """
    import getpass
    import re

    from fscommon.curve_keys import KeyFileError, write_keypair

    name = name or getpass.getuser()
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", name):
        raise click.BadParameter(
            f"{name!r}: use 1-64 letters, digits, '_', '.' or '-'", param_hint="--name"
        )
    try:
        public, secret = write_keypair(Path(out_dir), name)
    except (KeyFileError, OSError) as exc:
        show.error(str(exc))
        sys.exit(CtlExit.FAILED)
    click.echo(f"public key: {public}")
    click.echo(f"secret key: {secret} (mode 0600; keep it private)")


@main.command()
@json_option
@pass_ctx
def ping(ctx: Ctx, as_json: bool) -> None:
    """Check that fsd answers."""
    data = ctx.call("ping")
    if as_json:
        show.emit_json(data)
    else:
        click.echo(f"fsd {data['version']} (pid {data['pid']}) is up")


@main.command()
@json_option
@pass_ctx
def info(ctx: Ctx, as_json: bool) -> None:
    """Show fsd's version, endpoint and Pulsar URL."""
    data = ctx.call("info")
    if as_json:
        show.emit_json(data)
        return
    keys = ("version", "pid", "endpoint", "pulsar_url", "embedded_broker", "state_dir")
    for key in (*keys, "cluster", "member_id"):
        if key in keys or data.get(key) is not None:
            click.echo(f"{key}: {data.get(key)}")
    if show.broker_line(data.get("broker")):
        click.echo(show.broker_line(data.get("broker")))


@main.command()
@json_option
@pass_ctx
def members(ctx: Ctx, as_json: bool) -> None:
    """List the cluster's live members, its leader and each member's replicas."""
    data = ctx.call("members")
    if as_json:
        show.emit_json(data)
    else:
        show.print_members(data)


def _pulsar_url(ctx: Ctx, explicit: str | None) -> str:
    return explicit or ctx.call("info")["pulsar_url"]


@main.command()
@click.option("-n", "--name", "topic", required=True, help="Topic to produce to.")
@click.option("-c", "--content", required=True, help="Message payload (UTF-8 text).")
@click.option("-k", "--key", help="Message key.")
@click.option("-p", "--property", "props", multiple=True, help="key=value property (repeat).")
@click.option("--pulsar-url", envvar="FS_PULSAR_URL", help="Default: the one fsd uses.")
@json_option
@pass_ctx
def produce(
    ctx: Ctx,
    topic: str,
    content: str,
    key: str | None,
    props: tuple[str, ...],
    pulsar_url: str | None,
    as_json: bool,
) -> None:
    """Publish one message to a topic."""
    from fsctl import topics

    properties = _parse_pairs(props, "--property")
    url = _pulsar_url(ctx, pulsar_url)
    try:
        message_id = topics.produce(url, topic, content.encode(), key, properties)
    except topics.TopicError as exc:
        show.error(str(exc))
        sys.exit(CtlExit.FAILED)
    if as_json:
        show.emit_json({"topic": topic, "message_id": message_id})
    else:
        click.echo("Event produced")


@main.command()
@click.option("-n", "--name", "topic", required=True, help="Topic to consume from.")
@click.option("--count", type=int, help="Exit after this many messages.")
@click.option("--timeout", "wait", type=float, help="Exit after this many seconds.")
@click.option("--from-earliest", is_flag=True, help="Start at the oldest retained message.")
@click.option("--pulsar-url", envvar="FS_PULSAR_URL", help="Default: the one fsd uses.")
@json_option
@pass_ctx
def consume(
    ctx: Ctx,
    topic: str,
    count: int | None,
    wait: float | None,
    from_earliest: bool,
    pulsar_url: str | None,
    as_json: bool,
) -> None:
    """Print each message of a topic as it arrives (Ctrl-C to stop)."""
    from fsctl import topics

    url = _pulsar_url(ctx, pulsar_url)
    deadline = time.monotonic() + wait if wait else None
    try:
        for message in topics.consume(url, topic, from_earliest, deadline, count):
            if as_json:
                import json

                click.echo(json.dumps(message, sort_keys=True))
            else:
                click.echo(message["data"])
            show.flush()
    except topics.TopicError as exc:
        show.error(str(exc))
        sys.exit(CtlExit.FAILED)
    except KeyboardInterrupt:
        pass


LOGS_POLL_SECONDS = 0.5  # how often 'logs -f' asks fsd for new lines


@main.command()
@click.option("-n", "--name", required=True, help="Function name.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("--replica", type=int, help="Only this replica (default: all).")
@click.option(
    "-l", "--lines", type=int, default=100, show_default=True, help="How many recent lines."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_ctx
def logs(ctx: Ctx, name: str, follow: bool, replica: int | None, lines: int, as_json: bool) -> None:
    """Show a function's worker and guest log lines (all replicas, oldest first)."""
    args: dict[str, Any] = {"name": name, "lines": lines}
    if replica is not None:
        args["replica"] = replica
    try:
        while True:
            data = ctx.call("logs", args)
            for item in data["lines"]:
                show.log_line(name, item["replica"], item["line"], as_json)
            show.flush()
            if not follow:
                return
            args["cursor"] = data["cursor"]
            time.sleep(LOGS_POLL_SECONDS)
    except KeyboardInterrupt:
        pass


# Commands kept in their own modules (they import this one, so these lines stay last).
from fsctl import dlq_command, run_command  # noqa: E402

main.add_command(run_command.run)
main.add_command(dlq_command.dlq)
