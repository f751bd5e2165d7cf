"""Printing for people (tables, one-line errors) and for scripts (--json)."""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from fscommon.protocol import Desired, ReplicaState
from fsctl.autoscale_flags import status_lines


def emit_json(data: Any) -> None:
    """One JSON document on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def payload(data: bytes) -> dict[str, str]:
    """A payload for JSON, as ``fsctl consume --json`` shows it: text, or base64 if not UTF-8."""
    try:
        return {"data": data.decode("utf-8"), "encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"data": base64.b64encode(data).decode(), "encoding": "base64"}


def error(message: str) -> None:
    """One line on stderr: what went wrong."""
    click.echo(f"fsctl: {message}", err=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    click.echo(fmt.format(*headers).rstrip())
    for row in cells:
        click.echo(fmt.format(*row).rstrip())


def duration(seconds: float | None) -> str | None:
    """'3s', '4m05s', '2h03m'."""
    if seconds is None:
        return None
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def size(nbytes: int | None) -> str | None:
    """'25.3M'."""
    if nbytes is None:
        return None
    return f"{nbytes / (1024 * 1024):.1f}M"


def print_status(functions: list[dict[str, Any]]) -> None:
    """One row per replica, then each function's backlog and last errors."""
    headers = [
        "FUNCTION", "REPLICA", "STATE", "PID", "UPTIME", "RESTARTS", "RSS", "CPU%",
        "RECEIVED", "PROCESSED", "FAILED", "DEAD", "LAST EXIT",
    ]  # fmt: skip
    # In a cluster every replica names its member (host).
    clustered = any("member" in r for fn in functions for r in fn["replicas"])
    if clustered:
        headers.insert(2, "MEMBER")
    rows = []
    for fn in functions:
        if not fn["replicas"]:
            rows.append([fn["name"], "-", ReplicaState.STOPPED, *[None] * (len(headers) - 3)])
        for r in fn["replicas"]:
            cpu = r.get("cpu_percent")
            rows.append(
                [
                    fn["name"],
                    r["replica"],
                    *([r.get("member")] if clustered else []),
                    r["state"],
                    r["pid"],
                    duration(r.get("uptime")),
                    r.get("restarts", 0),
                    size(r.get("rss_bytes")),
                    None if cpu is None else f"{cpu:.0f}",
                    r.get("received"),
                    r.get("processed"),
                    r.get("failed"),
                    r.get("dead_lettered"),
                    r.get("last_exit"),
                ]
            )
    if not rows:
        click.echo("no functions")
        return
    table(headers, rows)
    down = broker_line(functions[0].get("broker"))
    if down and not down.startswith("broker: RUNNING"):
        click.echo(down)
    for fn in functions:
        extra = []
        if fn.get("desired") == Desired.STOPPED:
            extra.append("stopped by request")
        if fn.get("backlog") is not None:
            extra.append(f"backlog {fn['backlog']}")
        if extra:
            click.echo(f"{fn['name']}: {', '.join(extra)}")
        for line in status_lines(fn["name"], fn.get("autoscale")):
            click.echo(line)
        for r in fn["replicas"]:
            if r.get("last_error"):
                click.echo(f"{fn['name']}/{r['replica']}: last error: {r['last_error']}")


def broker_line(broker: dict[str, Any] | None) -> str | None:
    """'broker: RESTARTING since 12:03:04 (25s ago), attempt 1' (None: no embedded broker)."""
    if not broker:
        return None
    text = f"broker: {broker['state']}"
    since = broker.get("down_since")
    if since is not None:
        ago = duration(max(0.0, time.time() - since))
        text += f" since {time.strftime('%H:%M:%S', time.localtime(since))} ({ago} ago)"
        text += f", attempt {broker.get('attempt')}"
    if broker.get("retry_in") is not None:
        text += f", next start in {broker['retry_in']:.0f}s"
    if broker.get("last_error") and since is not None:
        text += f"; last error: {broker['last_error']}"
    return text


def print_list(functions: list[dict[str, Any]]) -> None:
    """Registered functions."""
    if not functions:
        click.echo("no functions")
        return
    table(
        ["NAME", "KIND", "INPUTS", "OUTPUT", "REPLICAS", "RUNNING"],
        [
            [
                f["name"],
                f["kind"],
                ",".join(f["inputs"]),
                f["output"],
                _replicas_text(f),
                f["running"],
            ]
            for f in functions
        ],
    )
    for f in functions:
        granted = grants(f.get("options") or {})
        if granted:
            click.echo(f"{f['name']}: sandbox grants {granted}")


def _replicas_text(function: dict[str, Any]) -> str:
    """'2' for a fixed count, '2 (auto 1..4)' for an autoscaled one."""
    bounds = function.get("autoscale")
    if not bounds:
        return str(function["replicas"])
    return f"{function['replicas']} (auto {bounds['min_replicas']}..{bounds['max_replicas']})"


def grants(options: dict[str, Any]) -> str:
    """A function's WASI grants in flag syntax ('' for none): dirs, then variable names.

    Only the names of --allow-env NAME=VALUE entries are shown, not the values.
    """
    dirs = [f"{d['host']}:{d['guest']}:{d['mode']}" for d in options.get("allow_dirs") or []]
    env = [entry.partition("=")[0] for entry in options.get("allow_env") or []]
    parts = [f"dir {d}" for d in dirs] + [f"env {name}" for name in env]
    return ", ".join(parts)


def flush() -> None:
    """Flush stdout (consume prints as messages arrive)."""
    sys.stdout.flush()


# Fields every log line has; the rest are shown as key=value after the message.
_LOG_HEAD = ("timestamp", "level", "event", "function", "replica")


def log_line(function: str, replica: int, line: str, as_json: bool) -> None:
    """One worker log line: readable, or a JSON object (function and replica always set).

    Lines that are not JSON (a guest's stderr, the Pulsar client's own output)
    are shown as they are, tagged with the replica they came from.
    """
    try:
        record = json.loads(line) if line.startswith("{") else None
    except ValueError:
        record = None
    if not isinstance(record, dict):
        record = {"event": line, "source": "stderr"}
        structured = False
    else:
        structured = True
    record.setdefault("function", function)
    record.setdefault("replica", replica)
    if as_json:
        click.echo(json.dumps(record, sort_keys=True, default=str))
        return
    where = f"{record['function']}/{record['replica']}"
    if not structured:
        click.echo(f"[{where}] {line}")
        return
    extra = " ".join(f"{k}={v}" for k, v in record.items() if k not in _LOG_HEAD)
    text = f"{record.get('timestamp', '-')} {record.get('level', '-')!s:<7} [{where}] "
    text += str(record.get("event", ""))
    click.echo(f"{text} {extra}".rstrip())


def print_members(data: dict[str, Any]) -> None:
    """'fsctl members': one row per live member, then the cluster's problems."""
    rows = []
    for m in data["members"]:
        replicas = sorted(f"{r.get('function')}/{r.get('replica')}" for r in m.get("replicas", []))
        rows.append(
            [
                m["member_id"],
                "yes" if m["member_id"] == data.get("leader_id") else "",
                m.get("endpoint"),
                len(replicas),
                " ".join(replicas) or "-",
            ]
        )
    click.echo(
        f"cluster {data['cluster']} ({data['namespace']}); this member: {data['member_id']}; "
        f"leader: {data.get('leader_id') or 'none yet'}"
    )
    table(["MEMBER", "LEADER", "ENDPOINT", "REPLICAS", "RUNS"], rows)
    for error in data.get("errors", []):
        click.echo(f"problem: {error}")
