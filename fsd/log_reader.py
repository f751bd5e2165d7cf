"""Reads workers' log files for ``fsctl logs``: the last lines, or what came after an offset.

A replica's worker writes (stdout and stderr) to ``<state>/logs/<function>.<replica>.log``,
appended by every incarnation. Only complete lines are returned: a line still
being written is picked up by the next follow poll. Reads are bounded in bytes
(fsd's main loop does them), so a huge log cannot stall fsd.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from fscommon.protocol import LOGS_MAX_LINE_CHARS

_CHUNK = 64 * 1024
_TIMESTAMP = re.compile(rb'"timestamp": ?"([^"]+)"')


def _cut(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").rstrip("\r")
    if len(text) > LOGS_MAX_LINE_CHARS:
        extra = len(text) - LOGS_MAX_LINE_CHARS
        text = f"{text[:LOGS_MAX_LINE_CHARS]}... [{extra} more characters cut]"
    return text


def tail(path: Path, count: int, max_bytes: int) -> tuple[list[bytes], int]:
    """The last ``count`` complete lines (within ``max_bytes``) and the offset after them."""
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            pos = end
            data = b""
            # Stop once count + 1 newlines are in hand (the extra one bounds the first line).
            while pos > 0 and data.count(b"\n") <= count and end - pos < max_bytes:
                step = min(_CHUNK, pos, max_bytes - (end - pos))
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
    except FileNotFoundError:
        return [], 0
    complete = data.rfind(b"\n") + 1  # a partial last line waits for the next poll
    offset = end - (len(data) - complete)
    lines = data[:complete].split(b"\n")[:-1]
    if pos > 0 and lines:
        lines = lines[1:]  # started mid-line
    return (lines[-count:] if count else []), offset


def read_from(path: Path, offset: int, max_bytes: int) -> tuple[list[bytes], int]:
    """Complete lines written since ``offset`` (from 0 if the file shrank) and the new offset."""
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            if offset > end:
                offset = 0  # truncated or replaced
            fh.seek(offset)
            data = fh.read(max_bytes)
    except FileNotFoundError:
        return [], 0
    complete = data.rfind(b"\n") + 1
    if complete == 0 and len(data) == max_bytes:
        complete = len(data)  # one line longer than the budget: hand it over cut
        return [data], offset + complete
    return data[:complete].split(b"\n")[:-1], offset + complete


def _merge(per_replica: dict[int, list[bytes]]) -> list[dict[str, Any]]:
    """All replicas' lines, oldest first (by timestamp; lines without one keep their place)."""
    keyed = []
    for replica, lines in per_replica.items():
        stamp = b""
        for position, raw in enumerate(lines):
            found = _TIMESTAMP.search(raw, 0, 200)
            if found:
                stamp = found.group(1)
            keyed.append((stamp, replica, position, raw))
    keyed.sort(key=lambda item: (item[0], item[1], item[2]))
    return [{"replica": replica, "line": _cut(raw)} for _, replica, _, raw in keyed]


def read_logs(
    log_path: Any,
    replicas: list[int],
    lines: int,
    cursor: dict[str, int] | None,
    max_bytes: int,
) -> dict[str, Any]:
    """The ``logs`` reply for ``replicas`` (``log_path(index)`` gives each file).

    Without a cursor: each replica's last ``lines`` lines, oldest first. With
    one: what each replica wrote after its offset (a replica the cursor does
    not know starts at its end).
    """
    budget = max(4096, max_bytes // max(1, len(replicas)))
    found: dict[int, list[bytes]] = {}
    new_cursor: dict[str, int] = {}
    for index in replicas:
        path = log_path(index)
        offset = None if cursor is None else cursor.get(str(index))
        if offset is None:
            got, end = tail(path, lines if cursor is None else 0, budget)
        else:
            got, end = read_from(path, offset, budget)
        found[index] = got
        new_cursor[str(index)] = end
    merged = _merge(found)
    if cursor is None and len(merged) > lines:
        merged = merged[-lines:] if lines else []
    return {"replicas": replicas, "lines": merged, "cursor": new_cursor}
