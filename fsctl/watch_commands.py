"""Following fsd: 'events' (notices as JSON lines) and 'logs' (a function's log lines)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from fsctl import output as show
from fsctl.context import Ctx, pass_ctx


@click.command()
@click.option("-n", "--name", help="Only this function.")
@click.option("--count", type=int, help="Exit after this many events.")
@pass_ctx
def events(ctx: Ctx, name: str | None, count: int | None) -> None:
    """Print replica state changes as fsd publishes them (JSON lines)."""

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


LOGS_POLL_SECONDS = 0.5  # how often 'logs -f' asks fsd for new lines


@click.command()
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
