"""Function Stream SDK for Python: one function, built into a WebAssembly component.

A function is ``def process(data: bytes) -> bytes | list[bytes] | None``:
return one output record (``bytes`` or ``str``), a list of them, or ``None``
for none; raise any exception to fail the input (it is retried, then
dead-lettered, with the exception's text). Export it from the app module as::

    import function_stream as fs

    def process(data: bytes) -> bytes: ...

    WitWorld = fs.component(process)

and build with componentize-py against the repository's ``wit/`` directory,
world ``batch-processor`` (sdks/python/README.md): the class then also exports
``process-batch``, which runs many inputs through ``process`` in one call of
the host (world ``processor`` still works: one call per input). The helpers
below call the host API (docs/abi.md, "Lane 3: components"): state, config,
log and message metadata.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import wit_world
from componentize_py_types import Err
from wit_world.imports import host

try:  # world batch-processor; world processor has no batch interface
    from wit_world.imports import batch as _batch_host
except ImportError:  # pragma: no cover - built with -w processor
    _batch_host = None

__all__ = [
    "component",
    "config_get",
    "log",
    "msg_event_time",
    "msg_key",
    "msg_property",
    "set_output_event_time",
    "set_output_key",
    "set_output_property",
    "state_add",
    "state_delete",
    "state_get",
    "state_put",
]

Output = bytes | bytearray | str | list[bytes | bytearray | str] | None

# Longest error text sent back to the host (it ends up in a dead-letter property).
MAX_ERROR_CHARS = 1000


def _record(value: bytes | bytearray | str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raise TypeError(f"an output record must be bytes or str, not {type(value).__name__}")


def _records(result: Output) -> list[bytes]:
    if result is None:
        return []
    if isinstance(result, list | tuple):
        return [_record(item) for item in result]
    return [_record(result)]


def _error_text(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR_CHARS]


# Inside process-batch: the input being processed, and the one the host last
# selected for metadata (docs/abi.md, "The batch entry point: `process-batch`").
# The host starts every batch at input 0; outside a batch _batch_index is None.
_batch_index: int | None = None
_selected = 0

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
# n and the length of the first record, or -1 and the length of the error text.
_ONE_RECORD = struct.Struct("<iI")


def _select_input() -> None:
    """Point the host's message metadata at the current input of a batch (once per input)."""
    global _selected
    index = _batch_index
    if index is not None and index != _selected:
        _batch_host.select_input(index)
        _selected = index


def _process_batch(process: Callable[[bytes], Output], batch: bytes) -> bytes:
    """Lane 1's batch framing in and out (docs/abi.md), ``process`` once per input."""
    global _batch_index, _selected
    (count,) = _U32.unpack_from(batch, 0)
    off = 4
    out: list[bytes] = []
    append = out.append
    unpack_u32 = _U32.unpack_from
    pack_u32 = _U32.pack
    one_record = _ONE_RECORD.pack
    _selected = 0
    try:
        for index in range(count):
            (length,) = unpack_u32(batch, off)
            off += 4
            end = off + length
            data = batch[off:end]
            off = end
            _batch_index = index
            try:
                result = process(data)
                if type(result) is bytes:  # the common case: one record
                    append(one_record(1, len(result)))
                    append(result)
                    continue
                records = _records(result)
            except Exception as exc:  # this input fails; the others go on
                text = _error_text(exc).encode("utf-8", "replace")
                append(one_record(-1, len(text)))
                append(text)
                continue
            append(_I32.pack(len(records)))
            for record in records:
                append(pack_u32(len(record)))
                append(record)
    finally:
        _batch_index = None
    return b"".join(out)


def component(process: Callable[[bytes], Output]) -> type:
    """The ``WitWorld`` class componentize-py exports, calling ``process`` per input.

    It exports ``process`` (one input per call) and ``process_batch`` (many;
    used when built for world ``batch-processor``). Any exception ``process``
    raises fails that input with the text ``<ExceptionType>: <message>``.
    """

    class WitWorld(wit_world.WitWorld):
        def process(self, input: bytes) -> list[bytes]:
            try:
                return _records(process(input))
            except Exception as exc:  # every failure becomes the input's error
                raise Err(_error_text(exc)) from None

        def process_batch(self, batch: bytes) -> bytes:
            return _process_batch(process, batch)

    return WitWorld


# --- state (needs a function with a state store; see docs/state.md) -------------------


def state_get(key: str) -> bytes | None:
    """The value of ``key`` (this batch's writes included), or None when missing."""
    return host.state_get(key)


def state_put(key: str, value: bytes | str) -> None:
    """Set ``key`` to ``value`` (str is stored as UTF-8)."""
    host.state_put(key, _record(value))


def state_delete(key: str) -> None:
    """Remove ``key``."""
    host.state_delete(key)


def state_add(key: str, delta: int = 1) -> int:
    """Add ``delta`` to the decimal integer stored at ``key`` (missing = 0); the new value."""
    return host.state_add(key, delta)


# --- config and log ---------------------------------------------------------------------

_LEVELS = {
    "debug": host.LogLevel.DEBUG,
    "info": host.LogLevel.INFO,
    "warning": host.LogLevel.WARNING,
    "error": host.LogLevel.ERROR,
}


def config_get(key: str) -> str | None:
    """A value of the function's ``--config`` map, or None."""
    return host.config_get(key)


def log(message: str, level: str = "info") -> None:
    """One line in the replica's log; ``level`` is debug, info, warning or error."""
    host.log(_LEVELS[level], message)


# --- message metadata -------------------------------------------------------------------


def msg_key() -> str | None:
    """The current input's key, or None."""
    _select_input()
    return host.msg_key()


def msg_property(name: str) -> str | None:
    """A property of the current input, or None."""
    _select_input()
    return host.msg_property(name)


def msg_event_time() -> int | None:
    """The current input's event time (ms since the epoch), or None when not set."""
    _select_input()
    ms = host.msg_event_time()
    return ms or None


def set_output_key(key: str) -> None:
    """The key of this input's output records."""
    _select_input()
    host.set_output_key(key)


def set_output_property(name: str, value: str) -> None:
    """A property of this input's output records."""
    _select_input()
    host.set_output_property(name, value)


def set_output_event_time(ms: int) -> None:
    """The event time (ms since the epoch) of this input's output records."""
    _select_input()
    host.set_output_event_time(ms)
