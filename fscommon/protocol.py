"""The one wire protocol between fsctl, fsd and fsworker (msgpack over ZeroMQ).

Control requests (fsctl -> fsd, DEALER -> ROUTER) are envelopes
``{v, id, cmd, args}``; replies are ``{v, id, ok: true, data}`` or
``{v, id, ok: false, error: {code, message}}``.  Worker events (fsworker ->
fsd, PUSH -> PULL) are ``{v, kind, function, replica, pid, ...}``.

Everything that decodes bytes from a peer goes through this module, so a
malformed frame always turns into a ``ProtocolError`` and never into a crash.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import msgpack

PROTOCOL_VERSION = 1

# Large enough for an 18 MB componentize-py module in a create request.
MAX_REQUEST_BYTES = 64 * 1024 * 1024
# Bounds on a request's shape, checked on the bytes before anything is decoded: the deepest
# legitimate request (a create's json_schema option) nests about 20 levels, the largest holds
# about 13,000 values (config, options, inputs). Deeper values made repr() and the handlers
# recurse past Python's limit; more values only cost memory and time.
MAX_REQUEST_DEPTH = 32
MAX_REQUEST_ITEMS = 32_768
# An error message is one line for people; longer ones are cut (a value can be megabytes).
MAX_ERROR_MESSAGE = 1000


class ErrorCode(enum.StrEnum):
    """Error codes a reply can carry; fsctl maps them to messages and exit codes."""

    BAD_REQUEST = "bad_request"  # envelope malformed, wrong types, too deep or too many values
    VERSION_MISMATCH = "version_mismatch"
    UNKNOWN_COMMAND = "unknown_command"
    INVALID_ARGUMENT = "invalid_argument"  # a field has a bad value
    INVALID_MODULE = "invalid_module"  # not wasm, or missing the ABI exports
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    CONFLICT = "conflict"  # the current state forbids the action
    UNAVAILABLE = "unavailable"  # e.g. the broker is not ready
    BUSY = "busy"  # a resource is held for a moment (e.g. state locked by a batch): retry
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A frame that cannot be decoded or does not match the envelope."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Request:
    """A decoded control request."""

    id: int
    cmd: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """A decoded control reply."""

    id: int
    ok: bool
    data: Any = None
    error_code: str | None = None
    error_message: str | None = None


def _pack(obj: dict[str, Any]) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def shown(value: Any, limit: int = 40) -> str:
    """A short rendering of a peer's value: never a full repr of a huge or deep one."""
    if isinstance(value, list | dict | tuple):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# msgpack's header bytes: what follows each one (the spec, "Formats").
_FIXED = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,
          0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}  # fmt: skip
_SIZED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}  # bin/str: width of the length
_CONTAINERS = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}  # width, values per entry
_EXT = frozenset({0xC7, 0xC8, 0xC9, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8})


def check_request_shape(frame: bytes) -> None:
    """Refuse a request nested deeper than MAX_REQUEST_DEPTH, holding more than MAX_REQUEST_ITEMS
    values, or using extension types (the protocol has none), reading only the headers.

    Runs before msgpack builds any object, stops at the first bound crossed, so its cost is
    bounded whatever the frame holds. Truncated or garbage bytes pass: decoding reports them.
    """
    view = memoryview(frame)
    pos, items, end = 0, 0, len(frame)
    pending: list[int] = []  # values still to read in each open container, innermost last
    while pos < end:
        head = view[pos]
        pos += 1
        items += 1
        if items > MAX_REQUEST_ITEMS:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"request holds more than {MAX_REQUEST_ITEMS} values; a request holds fewer",
            )
        if pending:
            pending[-1] -= 1
        count = 0
        if head <= 0x7F or head >= 0xE0:
            pass  # fixint
        elif head <= 0x8F:
            count = 2 * (head & 0x0F)
        elif head <= 0x9F:
            count = head & 0x0F
        elif head <= 0xBF:
            pos += head & 0x1F
        elif head in _FIXED:
            pos += _FIXED[head]
        elif head in _SIZED:
            width = _SIZED[head]
            pos += width + int.from_bytes(view[pos : pos + width], "big")
        elif head in _CONTAINERS:
            width, per_entry = _CONTAINERS[head]
            count = per_entry * int.from_bytes(view[pos : pos + width], "big")
            pos += width
        elif head in _EXT:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                "request uses a msgpack extension type; the protocol has none (send plain "
                "maps, lists, text, bytes and numbers)",
            )
        else:
            return  # 0xc1, never used: msgpack names it
        if count:
            pending.append(count)
            if len(pending) > MAX_REQUEST_DEPTH:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST,
                    f"request is nested more than {MAX_REQUEST_DEPTH} levels deep; a request "
                    f"nests fewer",
                )
            continue
        while pending and pending[-1] == 0:
            pending.pop()  # this value was the last of its container (and maybe of its parent)
        if not pending:
            return  # one complete value; anything after it is msgpack's "extra data"


def _unpack(frame: bytes, limit: int, bounded: bool = False) -> dict[str, Any]:
    if len(frame) > limit:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"message of {len(frame)} bytes exceeds the {limit}-byte limit"
        )
    if bounded:
        check_request_shape(frame)
    try:
        obj = msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"frame is not valid msgpack ({type(exc).__name__}: {str(exc)[:100]})",
        ) from None
    if not isinstance(obj, dict):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"envelope must be a map, got {type(obj).__name__}"
        )
    version = obj.get("v")
    # type() too: msgpack's true and 1.0 compare equal to 1 but are not version 1.
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.VERSION_MISMATCH,
            f"protocol version {shown(version)} is not supported (this side speaks "
            f"{PROTOCOL_VERSION})",
        )
    return obj


def encode_request(request_id: int, cmd: str, args: dict[str, Any] | None = None) -> bytes:
    """Encode a control request envelope."""
    return _pack({"v": PROTOCOL_VERSION, "id": request_id, "cmd": cmd, "args": args or {}})


REQUEST_FIELDS = ("v", "id", "cmd", "args")


def decode_request(frame: bytes) -> Request:
    """Decode and validate a control request; raises ProtocolError."""
    obj = _unpack(frame, MAX_REQUEST_BYTES, bounded=True)
    extra = sorted(str(key)[:40] for key in obj if key not in REQUEST_FIELDS)
    if extra:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"unexpected envelope field(s) {', '.join(map(repr, extra[:5]))}; a request has "
            f"only {', '.join(REQUEST_FIELDS)}",
        )
    request_id, cmd, args = obj.get("id"), obj.get("cmd"), obj.get("args", {})
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "envelope field 'id' must be an integer")
    if not isinstance(cmd, str) or not cmd:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, "envelope field 'cmd' must be a non-empty string"
        )
    if not isinstance(args, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "envelope field 'args' must be a map")
    return Request(id=request_id, cmd=cmd, args=args)


def encode_ok(request_id: int, data: Any = None) -> bytes:
    """Encode a successful reply."""
    return _pack({"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "data": data})


def encode_error(request_id: int | None, code: ErrorCode, message: str) -> bytes:
    """Encode an error reply (request_id is None when the request could not be decoded).

    The message becomes one line of at most MAX_ERROR_MESSAGE characters, whatever value
    it quotes.
    """
    line = " ".join(message.splitlines())
    if len(line) > MAX_ERROR_MESSAGE:
        line = f"{line[: MAX_ERROR_MESSAGE - 30]}... [{len(line)} characters cut]"
    return _pack(
        {
            "v": PROTOCOL_VERSION,
            "id": request_id,
            "ok": False,
            "error": {"code": str(code), "message": line},
        }
    )


def decode_reply(frame: bytes) -> Reply:
    """Decode a reply envelope; raises ProtocolError."""
    obj = _unpack(frame, MAX_REQUEST_BYTES)
    request_id = obj.get("id")
    ok = obj.get("ok")
    if not isinstance(ok, bool):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "reply field 'ok' must be a boolean")
    if ok:
        return Reply(id=request_id, ok=True, data=obj.get("data"))
    error = obj.get("error")
    if not isinstance(error, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "error reply without an 'error' map")
    return Reply(
        id=request_id,
        ok=False,
        error_code=str(error.get("code", ErrorCode.INTERNAL)),
        error_message=str(error.get("message", "")),
    )


# --- states in status replies (fsd -> fsctl) -------------------------------------------------


class ReplicaState(enum.StrEnum):
    """Where a replica is in its life (supervisord's names; legal moves: fsd/replica_state.py)."""

    STOPPED = "STOPPED"  # not running, and not meant to
    STARTING = "STARTING"  # process spawned, not ready yet
    RUNNING = "RUNNING"  # reported ready: module loaded, consumer subscribed
    BACKOFF = "BACKOFF"  # exited unexpectedly; waiting to be started again
    STOPPING = "STOPPING"  # asked to stop (SIGTERM sent), not yet exited
    EXITED = "EXITED"  # exited unexpectedly; supervision decides BACKOFF or FATAL
    FATAL = "FATAL"  # will not be started again until an explicit start


class Desired(enum.StrEnum):
    """What a function's replicas should be doing ('fsctl stop' / 'fsctl start')."""

    RUNNING = "running"
    STOPPED = "stopped"


# --- worker events (fsworker -> fsd) ---------------------------------------------------------


class EventKind(enum.StrEnum):
    """What a worker tells fsd."""

    READY = "ready"  # module instantiated, consumer subscribed, producer created
    HEARTBEAT = "heartbeat"  # from the processing loop, with counters
    ERROR = "error"  # a one-line reason, sent before a non-zero exit


MAX_EVENT_BYTES = 64 * 1024


def encode_event(kind: EventKind, function: str, replica: int, pid: int, **fields: Any) -> bytes:
    """Encode a worker event."""
    return _pack(
        {
            "v": PROTOCOL_VERSION,
            "kind": str(kind),
            "function": function,
            "replica": replica,
            "pid": pid,
            **fields,
        }
    )


def decode_event(frame: bytes) -> dict[str, Any]:
    """Decode and validate a worker event; raises ProtocolError."""
    obj = _unpack(frame, MAX_EVENT_BYTES)
    try:
        obj["kind"] = EventKind(obj.get("kind"))
    except ValueError:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"unknown event kind {obj.get('kind')!r}"
        ) from None
    for key, typ in (("function", str), ("replica", int), ("pid", int)):
        if not isinstance(obj.get(key), typ):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"event field {key!r} must be {typ.__name__}"
            )
    return obj


# --- heartbeat payload (fsworker -> fsd) -----------------------------------------------------
#
# A heartbeat carries the incarnation's cumulative counters as top-level ints
# (HEARTBEAT_COUNTERS), the latency histogram as ``latency`` (one count per
# bucket of fscommon.latency.LATENCY_BUCKETS plus +Inf, not cumulative) and
# ``latency_sum`` (seconds), and ``fuel_used`` when the function meters fuel.
# Everything counts from the worker's start; fsd adds incarnations up.
#
# ``busy_ms`` (optional, default 0): the worker is about to call the guest, and
# that call (with its time limit) may keep the loop silent for up to this many
# milliseconds from this beat. fsd calls a RUNNING replica hung only after
# ``busy_ms`` + ``heartbeat_timeout`` without a beat (docs/abi.md, "Time limits
# and the heartbeat"). A worker whose guest has no time limit never sends it.

HEARTBEAT_COUNTERS = ("received", "processed", "failed", "retried", "dead_lettered", "published")


@dataclass(frozen=True)
class Heartbeat:
    """The metrics of one heartbeat, checked."""

    counters: dict[str, int]
    latency: tuple[int, ...]
    latency_sum: float
    fuel_used: int | None = None
    busy_ms: int = 0


# A worker may announce at most this long a guest call (the largest --timeout-ms,
# 1 h, times the largest process_batch chunk, 256, is below it); more is a bad beat.
MAX_BUSY_MS = 31 * 24 * 3600 * 1000


def heartbeat_fields(
    counters: dict[str, int],
    latency: list[int],
    latency_sum: float,
    fuel_used: int | None = None,
    busy_ms: int = 0,
) -> dict[str, Any]:
    """The extra fields of a heartbeat event (``encode_event(HEARTBEAT, ..., **fields)``)."""
    fields: dict[str, Any] = {**counters, "latency": latency, "latency_sum": latency_sum}
    if fuel_used is not None:
        fields["fuel_used"] = fuel_used
    if busy_ms:
        fields["busy_ms"] = busy_ms
    return fields


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def decode_heartbeat(event: dict[str, Any]) -> Heartbeat:
    """Check a decoded heartbeat event's metrics; raises ProtocolError naming the field."""
    from fscommon.latency import LATENCY_BUCKETS

    counters = {}
    for key in HEARTBEAT_COUNTERS:
        value = event.get(key, 0)
        if not _count(value):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"heartbeat field {key!r} must be a count, got {value!r}"
            )
        counters[key] = value
    latency = event.get("latency", [0] * (len(LATENCY_BUCKETS) + 1))
    if (
        not isinstance(latency, list)
        or len(latency) != len(LATENCY_BUCKETS) + 1
        or not all(_count(c) for c in latency)
    ):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"heartbeat field 'latency' must be {len(LATENCY_BUCKETS) + 1} counts "
            f"(buckets of fscommon.latency plus +Inf)",
        )
    latency_sum = event.get("latency_sum", 0.0)
    if not isinstance(latency_sum, int | float) or isinstance(latency_sum, bool) or latency_sum < 0:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"heartbeat field 'latency_sum' must be >= 0: {latency_sum!r}"
        )
    fuel_used = event.get("fuel_used")
    if fuel_used is not None and not _count(fuel_used):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"heartbeat field 'fuel_used' must be a count: {fuel_used!r}"
        )
    busy_ms = event.get("busy_ms", 0)
    if not _count(busy_ms) or busy_ms > MAX_BUSY_MS:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"heartbeat field 'busy_ms' must be a count up to {MAX_BUSY_MS}: {busy_ms!r}",
        )
    return Heartbeat(counters, tuple(latency), float(latency_sum), fuel_used, busy_ms)


# --- the logs command (fsctl logs) -----------------------------------------------------------
#
# args:  name (str), replica (int, optional: every replica), lines (int, the
#        last N lines of each log when no cursor is given), cursor (optional map
#        replica-as-string -> byte offset, from a previous reply: only what was
#        written since).
# reply: {"function", "replicas": [indexes], "lines": [{"replica", "line"}...]
#        (oldest first), "cursor": {replica-as-string: offset}}.
# A line is the worker's text as written: a JSON object for structured lines,
# anything else (guest stderr, native client output) as is.

LOGS_DEFAULT_LINES = 100
LOGS_MAX_LINES = 10_000
LOGS_MAX_LINE_CHARS = 16_384  # longer lines are cut (the rest is dropped, marked)
LOGS_MAX_REPLY_BYTES = 2 * 1024 * 1024  # per reply; a follower gets the rest next poll


# --- notices (fsd -> 'fsctl events', PUB -> SUB; the topic frame is the function name) -----


class NoticeKind(enum.StrEnum):
    """What fsd announces to whoever watches."""

    REPLICA = "replica"  # a replica changed state: old, new, reason, replica, pid
    SCALE = "scale"  # the autoscaler changed (or stopped changing) the replica count


def encode_notice(kind: NoticeKind, function: str, when: float, **fields: Any) -> list[bytes]:
    """The two frames of one notice: the function name (to subscribe by) and the body."""
    body = {"v": PROTOCOL_VERSION, "kind": str(kind), "time": when, "function": function}
    return [function.encode(), _pack({**body, **fields})]


# --- the dlq command (fsctl dlq): a function's dead letters -----------------------------------
#
# args:  name (str), op (DlqOp), and per op:
#        list:   limit (int, 1..DLQ_MAX_LIMIT, default DLQ_DEFAULT_LIMIT)
#        show:   id (str, a dead-letter id as list prints it)
#        replay: ids (list of str) or all (true); dry_run (bool)
#        purge:  nothing (fsctl asks for --yes)
# reply: list   -> {"function", "topics": [dead-letter topics], "messages": [entry...],
#                   "more": bool (more than limit are waiting)}
#        show   -> {"function", "message": entry + "data" (bytes) + "properties" (all)}
#        replay -> {"function", "dry_run": bool, "replayed": [entry...]} (each entry with
#                   "replayed_to": the input topic it was published to)
#        purge  -> {"function", "purged": count}
# entry: id, topic (the dead-letter topic), error_kind, error, attempts (int or None),
#        original_topic, original_message_id, replica, publish_time (ms), key, size.
#
# Dead letters are read on a durable Shared subscription, DLQ_SUBSCRIPTION, of each
# dead-letter topic without acknowledging (list, show, a dry run: they stay), and
# acknowledged there by replay (only once the re-publish was confirmed) and purge.
# A dead-letter id is "<ledger>:<entry>" (":<batch index>" added for a message of a batch).


class DlqOp(enum.StrEnum):
    """What ``fsctl dlq`` does with a function's dead letters."""

    LIST = "list"
    SHOW = "show"
    REPLAY = "replay"
    PURGE = "purge"


DLQ_SUBSCRIPTION = "fs-dlq"
DLQ_DEFAULT_LIMIT = 100
DLQ_MAX_LIMIT = 1000
DLQ_MAX_IDS = 10_000
# Properties a replayed message carries: the dead letter it came from, and its topic.
REPLAYED_FROM = "fs-replayed-from"
REPLAYED_FROM_TOPIC = "fs-replayed-from-topic"
# What the worker adds to a dead letter (fsworker/records.py); a replay removes them again.
DEAD_LETTER_PROPERTIES = (
    "fs-error-kind",
    "fs-error",
    "fs-function",
    "fs-replica",
    "fs-original-message-id",
    "fs-original-topic",
    "fs-attempts",
)
