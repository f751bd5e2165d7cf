"""``fsctl dlq``: see, save, replay and purge a function's dead letters (through fsd).

fsd does the broker work (fsd/dead_letters.py); these commands parse, send and
print. Exit codes as every fsctl command: 0 ok, 1 failed (an unknown id
included), 2 usage, 3 fsd unreachable.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from fscommon.exitcodes import CtlExit
from fscommon.protocol import DLQ_DEFAULT_LIMIT, DLQ_MAX_LIMIT, DlqOp
from fsctl import output as show
from fsctl.context import Ctx, json_option, pass_ctx

# Scanning a dead-letter topic takes a few seconds at most; never less than this.
DLQ_CALL_TIMEOUT = 60.0


def _call(ctx: Ctx, name: str, op: DlqOp, **args: Any) -> Any:
    request = {"name": name, "op": str(op), **{k: v for k, v in args.items() if v is not None}}
    return ctx.call("dlq", request, timeout=max(ctx.timeout, DLQ_CALL_TIMEOUT))


def _when(ms: int | None) -> str | None:
    if not ms:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _one_line(text: str | None, width: int = 60) -> str | None:
    if text is None:
        return None
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def _json_ready(message: dict[str, Any]) -> dict[str, Any]:
    """A shown message with its payload as text (or base64), like consume --json."""
    out = {k: v for k, v in message.items() if k != "data"}
    if "data" in message:
        out.update(show.payload(message["data"]))
    return out


@click.group()
def dlq() -> None:
    """A function's dead letters: list, show (and save), replay, purge."""


@dlq.command(name="list")
@click.option("-n", "--name", required=True, help="Function name.")
@click.option(
    "--limit",
    type=click.IntRange(1, DLQ_MAX_LIMIT),
    default=DLQ_DEFAULT_LIMIT,
    show_default=True,
    help="At most this many (oldest first).",
)
@json_option
@pass_ctx
def dlq_list(ctx: Ctx, name: str, limit: int, as_json: bool) -> None:
    """List dead letters with why they failed; nothing is consumed."""
    data = _call(ctx, name, DlqOp.LIST, limit=limit)
    if as_json:
        show.emit_json(data)
        return
    rows = [
        [
            m["id"],
            _when(m["publish_time"]),
            m["error_kind"],
            m["attempts"],
            m["original_topic"],
            m["original_message_id"],
            _one_line(m["error"]),
        ]
        for m in data["messages"]
    ]
    if not rows:
        click.echo(f"No dead letters for '{name}' ({', '.join(data['topics'])})")
        return
    show.table(["ID", "TIME", "KIND", "ATTEMPTS", "ORIGINAL TOPIC", "ORIGINAL ID", "ERROR"], rows)
    if data["more"]:
        click.echo(f"(more than {limit}; --limit shows more)", err=True)


@dlq.command(name="show")
@click.option("-n", "--name", required=True, help="Function name.")
@click.argument("message_id", metavar="ID")
@click.option(
    "--save",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the payload to FILE (then: fsctl run -a F.wasm --input-format raw --input FILE).",
)
@json_option
@pass_ctx
def dlq_show(ctx: Ctx, name: str, message_id: str, save: str | None, as_json: bool) -> None:
    """Show one dead letter: why it failed, its properties and payload."""
    message = _call(ctx, name, DlqOp.SHOW, id=message_id)["message"]
    if save:
        try:
            Path(save).write_bytes(message["data"])
        except OSError as exc:
            show.error(f"cannot write {save}: {exc.strerror}")
            sys.exit(CtlExit.FAILED)
    if as_json:
        show.emit_json(_json_ready(message))
        return
    for key in ("id", "topic", "error_kind", "error", "attempts", "original_topic"):
        click.echo(f"{key}: {message[key]}")
    click.echo(f"original_message_id: {message['original_message_id']}")
    click.echo(f"time: {_when(message['publish_time'])}")
    if message.get("key"):
        click.echo(f"key: {message['key']}")
    for prop, value in sorted(message["properties"].items()):
        click.echo(f"property {prop}: {value}")
    if save:
        click.echo(f"payload ({message['size']} bytes) saved to {save}")
    else:
        click.echo(f"payload ({message['size']} bytes):")
        click.echo(message["data"].decode("utf-8", "backslashreplace"))


@dlq.command(name="replay")
@click.option("-n", "--name", required=True, help="Function name.")
@click.option("--ids", "ids", multiple=True, help="Dead-letter id to replay (repeat, or a,b,c).")
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; change nothing.")
@json_option
@pass_ctx
def dlq_replay(
    ctx: Ctx, name: str, ids: tuple[str, ...], replay_all: bool, dry_run: bool, as_json: bool
) -> None:
    """Re-publish dead letters to their input topic, then remove them from the dead-letter
    topic (only once the broker confirmed the re-publish)."""
    wanted = [i for item in ids for i in item.split(",") if i]
    if bool(wanted) == replay_all:
        raise click.UsageError("give either --ids ID[,ID...] or --all")
    data = _call(ctx, name, DlqOp.REPLAY, ids=wanted or None, all=replay_all or None,
                 dry_run=dry_run)  # fmt: skip
    if as_json:
        show.emit_json(data)
        return
    verb = "Would replay" if dry_run else "Replayed"
    for m in data["replayed"]:
        click.echo(f"{verb} {m['id']} ({m['error_kind']}) -> {m['replayed_to']}")
    click.echo(f"{verb} {len(data['replayed'])} dead letter(s) of '{name}'")


@dlq.command(name="purge")
@click.option("-n", "--name", required=True, help="Function name.")
@click.option("--yes", is_flag=True, help="Really delete every dead letter of the function.")
@json_option
@pass_ctx
def dlq_purge(ctx: Ctx, name: str, yes: bool, as_json: bool) -> None:
    """Delete every dead letter of a function (asks for --yes)."""
    if not yes:
        raise click.UsageError("purge deletes every dead letter of the function: add --yes")
    data = _call(ctx, name, DlqOp.PURGE)
    if as_json:
        show.emit_json(data)
        return
    click.echo(f"Purged {data['purged']} dead letter(s) of '{name}'")
    if data.get("more"):
        click.echo("(more remain: run purge again)", err=True)
