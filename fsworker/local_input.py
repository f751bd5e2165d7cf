"""Messages for a local run (``fsctl run``): lines, JSON lines or whole files.

Three input formats (``InputFormat``):

* ``lines``: one message per line, the line's bytes without its line end
  (``\\n`` or ``\\r\\n``). An empty line is an empty message; the newline that
  ends the last line does not start another one.
* ``json-lines``: one JSON object per line, the shape ``fsctl consume --json``
  prints, so a topic's messages can be saved and run again: ``data`` (text;
  required), ``encoding`` (``utf-8``, the default, or ``base64``), ``key``,
  ``properties`` (a map of text to text), ``event_time`` (ms since the epoch),
  ``topic``. The other fields consume prints (``message_id``, ``publish_time``)
  are ignored; any other field is refused, so a typo is not silently dropped.
  Blank lines are skipped. A bad line is an ``InputError`` naming its number.
* ``raw``: one whole file per message; a directory gives one message per
  regular file in it, in name order.

Parsing is lazy: a file can be read up front with ``list(...)`` (so a bad
line stops the run before anything is called), standard input as it comes.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

# The topic name local messages carry when the input does not name one.
LOCAL_TOPIC = "local-input"

_JSON_FIELDS = frozenset({"data", "encoding", "key", "properties", "event_time", "topic"})
# Printed by `fsctl consume --json` (and `fsctl run --json`), meaningless as input.
_IGNORED_FIELDS = frozenset({"message_id", "publish_time", "type", "input"})


class InputFormat(enum.StrEnum):
    """How the input is cut into messages."""

    LINES = "lines"
    JSON_LINES = "json-lines"
    RAW = "raw"


class InputError(ValueError):
    """The input cannot be read or parsed; the message names the file and line."""


@dataclass(frozen=True)
class LocalInput:
    """One message to run the function on, as a consumer would receive it."""

    data: bytes
    key: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    event_time: int = 0  # ms since the epoch; 0 = not set
    topic: str = LOCAL_TOPIC
    origin: str = ""  # where it came from, for people: "line 3", "file a.json"


def parse_lines(lines: Iterable[bytes], source: str = "<stdin>") -> Iterator[LocalInput]:
    """One message per line of ``lines`` (each with or without its line end)."""
    for number, line in enumerate(lines, 1):
        yield LocalInput(_strip_eol(line), origin=f"{source}:{number}")


def parse_json_lines(lines: Iterable[bytes], source: str = "<stdin>") -> Iterator[LocalInput]:
    """One message per non-blank line, each a JSON object (module docstring)."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        yield parse_json_line(line, f"{source}:{number}")


def parse_json_line(line: bytes | str, where: str) -> LocalInput:
    """One json-lines record; raises InputError starting with ``where`` (file:line)."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise InputError(f"{where}: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise InputError(
            f'{where}: expected a JSON object such as {{"data": "..."}}, got {type(obj).__name__}'
        )
    unknown = sorted(set(obj) - _JSON_FIELDS - _IGNORED_FIELDS)
    if unknown:
        raise InputError(
            f"{where}: unknown field(s) {', '.join(unknown)}; a line takes "
            f"{', '.join(sorted(_JSON_FIELDS))}"
        )
    return LocalInput(
        data=_payload(obj, where),
        key=_optional_text(obj, "key", where),
        properties=_properties(obj.get("properties"), where),
        event_time=_event_time(obj.get("event_time"), where),
        topic=_optional_text(obj, "topic", where) or LOCAL_TOPIC,
        origin=where,
    )


def _payload(obj: dict[str, Any], where: str) -> bytes:
    data = obj.get("data")
    if data is None:
        raise InputError(f"{where}: field 'data' (the payload, as text) is required")
    if not isinstance(data, str):
        raise InputError(
            f"{where}: 'data' must be text (JSON payloads go in as a string, or "
            f'base64 with "encoding": "base64"), got {type(data).__name__}'
        )
    encoding = obj.get("encoding", "utf-8")
    if encoding in (None, "utf-8"):
        return data.encode()
    if encoding == "base64":
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{where}: 'data' is not valid base64") from None
    raise InputError(f"{where}: 'encoding' must be utf-8 or base64, got {encoding!r}")


def _optional_text(obj: dict[str, Any], name: str, where: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}: '{name}' must be text, got {type(value).__name__}")
    return value or None


def _properties(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InputError(f"{where}: 'properties' must be a map of text to text")
    return dict(value)


def _event_time(value: Any, where: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"{where}: 'event_time' must be milliseconds since the epoch (>= 0)")
    return value


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(b"\n") else line


def raw_inputs(path: Path) -> Iterator[LocalInput]:
    """A file as one message, or each regular file of a directory (name order)."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for file in files:
        yield LocalInput(_read(file), origin=f"file {file}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read input {path}: {exc.strerror}") from None


def read_inputs(
    source: str, fmt: InputFormat, stdin: BinaryIO | None = None
) -> Iterator[LocalInput]:
    """The messages of ``source`` (a path, or ``-`` for ``stdin``) in format ``fmt``.

    Raises InputError for a missing file and (lazily) for a bad line.
    """
    if source == "-":
        if stdin is None:
            raise InputError("no standard input to read")
        if fmt is InputFormat.RAW:
            return iter([LocalInput(stdin.read(), origin="<stdin>")])
        return _by_line(stdin, fmt, "<stdin>")
    path = Path(source)
    if not path.exists():
        raise InputError(f"input {source} does not exist")
    if fmt is InputFormat.RAW:
        return raw_inputs(path)
    if path.is_dir():
        raise InputError(f"input {source} is a directory; only --input-format raw reads those")
    return _by_line_from_file(path, fmt, source)


def _by_line(stream: BinaryIO, fmt: InputFormat, source: str) -> Iterator[LocalInput]:
    parse = parse_lines if fmt is InputFormat.LINES else parse_json_lines
    return parse(stream, source)


def _by_line_from_file(path: Path, fmt: InputFormat, source: str) -> Iterator[LocalInput]:
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read input {source}: {exc.strerror}") from None
    with stream:
        yield from _by_line(stream, fmt, source)
