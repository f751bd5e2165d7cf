"""The host API, version 1 (docs/abi.md): the functions a guest imports from module ``fs``.

Every import takes i32 pointers and lengths into guest memory (plus an i64
where a number is passed) and returns nothing: results go to out-pointers the
guest passes, because a host function that returns a value is much slower to
call through wasmtime-py. Values the guest reads (state, config, message key
and properties) follow one convention: the host writes ``min(len, cap)`` bytes
to ``buf`` and the full length as an i32 at ``out_len_ptr``, or -1 there when
the value is missing; when the length is larger than ``cap`` the guest calls
again with a bigger buffer.

Each import is a thin layer over a ``HostContext`` (fsworker/host_context.py).
Every pointer and length is bounds-checked; a bad one, a ``StateError`` or any
other exception inside a host function becomes a wasm trap whose message is one
line naming the import (``fs.state_get: key [70000, +5) is outside guest
memory of 65536 bytes``), so the guest call fails with kind ``trap`` and the
instance is rebuilt.

The calls come in through wasmtime's "unchecked" host-function interface
(fsworker/host_binding.py: about 0.5 us per call instead of 6-7 us, through
wasmtime-py private names). If those names are missing, the imports are defined
through ``Linker.define_func`` (same results, slower) and the guest uses
fsworker/fastcall.py's public call path, which re-raises a host function's
``wasmtime.Trap`` with its message. tests/unit/test_host_api.py checks both paths.

``savepoint``/``rollback`` wrap HostContext's (the transaction's undo log) for
one guest call: the guest lane undoes the writes of a call that failed, so a
failed message (which is retried, then dead-lettered) leaves no state behind.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import structlog
import wasmtime

from fsworker.host_binding import (
    I32,
    I64,
    RAW_AVAILABLE,
    define_unchecked,
    public_callback,
)
from fsworker.state_store import StateError

if TYPE_CHECKING:
    from fsworker.fastcall import Invoker
    from fsworker.host_context import HostContext

log = structlog.get_logger("fsworker.host_api")

MODULE = "fs"
VERSION = 1


# Every import of the host API and its parameter types; none has results.
IMPORTS: dict[str, tuple[str, ...]] = {
    "state_get": (I32, I32, I32, I32, I32),  # key_ptr, key_len, buf, cap, out_len_ptr
    "state_put": (I32, I32, I32, I32),  # key_ptr, key_len, value_ptr, value_len
    "state_delete": (I32, I32),  # key_ptr, key_len
    "state_add": (I32, I32, I64, I32),  # key_ptr, key_len, delta, out_ptr (i64)
    "config_get": (I32, I32, I32, I32, I32),  # key_ptr, key_len, buf, cap, out_len_ptr
    "log": (I32, I32, I32),  # level, ptr, len
    "msg_key": (I32, I32, I32),  # buf, cap, out_len_ptr
    "msg_property": (I32, I32, I32, I32, I32),  # name_ptr, name_len, buf, cap, out_len_ptr
    "msg_event_time": (I32,),  # out_ptr (i64 ms, 0 = none)
    "set_output_key": (I32, I32),  # ptr, len
    "set_output_property": (I32, I32, I32, I32),  # name_ptr, name_len, value_ptr, value_len
    "set_output_event_time": (I64,),  # ms since the epoch
}

# Imports that read or set per-message metadata: a module using any of them is
# called one message at a time (docs/abi.md).
METADATA_IMPORTS = frozenset(name for name in IMPORTS if name.startswith(("msg_", "set_output_")))

_VALTYPES = {I32: wasmtime.ValType.i32(), I64: wasmtime.ValType.i64()}

# Longest guest log line kept (characters); the rest is cut and counted.
MAX_LOG_CHARS = 4096

_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_MISSING_LEN = _I32.pack(-1)
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


def func_type(name: str) -> wasmtime.FuncType:
    """The wasm type of one import."""
    return wasmtime.FuncType([_VALTYPES[t] for t in IMPORTS[name]], [])


def describe(params: list[wasmtime.ValType], results: list[wasmtime.ValType]) -> str:
    """``(i32, i32) -> ()``, as module_check prints types."""
    return f"({', '.join(map(str, params))}) -> ({', '.join(map(str, results))})"


def expected_type(name: str) -> str:
    """The type an import must have, as text."""
    return describe([_VALTYPES[t] for t in IMPORTS[name]], [])


def matches(name: str, ty: wasmtime.FuncType) -> bool:
    """Whether ``ty`` is exactly the type of import ``name``."""
    want = [_VALTYPES[t] for t in IMPORTS[name]]
    return list(ty.params) == want and not list(ty.results)


class HostCallError(Exception):
    """A guest misused a host function (bad pointer, bad UTF-8, ...); one line."""


class HostApi:
    """The ``fs`` imports of one guest, bound to its HostContext and its current instance.

    ``define(linker)`` once, then ``attach(invoker)`` for every new instance
    (before ``_initialize``), so the host functions reach that instance's memory.
    """

    def __init__(self, host: HostContext, raw: bool | None = None) -> None:
        self.host = host
        self.raw = RAW_AVAILABLE if raw is None else (raw and RAW_AVAILABLE)
        self.mode = "fast" if self.raw else "public"
        self._inv: Invoker | None = None
        self._size = 0  # guest memory size last seen (memory only grows)
        self._savepoint = 0
        self._pending: BaseException | None = None
        self._keep: list[object] = []  # ctypes callbacks, alive as long as the linker

    # --- wiring ---------------------------------------------------------------

    def define(self, linker: wasmtime.Linker) -> None:
        """Define every ``fs`` import on ``linker`` (store-independent definitions)."""
        fail = self._failure
        for name, params in IMPORTS.items():
            fn = getattr(self, f"_{name}")
            ty = func_type(name)
            if self.raw:
                self._keep.append(define_unchecked(linker, MODULE, name, ty, fn, params, fail))
            else:
                linker.define_func(MODULE, name, ty, public_callback(name, fn, params, fail))

    def attach(self, inv: Invoker | None) -> None:
        """Use this instance's memory from now on (None: no instance yet)."""
        self._inv = inv
        self._size = 0

    # --- state writes per guest call -------------------------------------------------

    def savepoint(self) -> None:
        """Mark the state before one guest call."""
        self._savepoint = self.host.savepoint()

    @property
    def wrote(self) -> bool:
        """Whether the guest wrote state since the last savepoint."""
        return self.host.savepoint() != self._savepoint

    def rollback(self) -> None:
        """Undo the state writes made since the last savepoint."""
        self.host.rollback_to(self._savepoint)

    def raise_pending(self) -> None:
        """Re-raise a KeyboardInterrupt/SystemExit that arrived inside a host function."""
        pending, self._pending = self._pending, None
        if pending is not None:
            raise pending

    # --- memory access ------------------------------------------------------------
    # Through the instance's invoker (fsworker/fastcall.py: a memoryview over the
    # memory's base on the fast path), whose read/write raise IndexError outside memory.

    def _outside(self, what: str, ptr: int, length: int) -> HostCallError:
        if self._inv is None:
            return HostCallError("called before the instance's memory is available")
        size = self._inv.data_len()
        return HostCallError(f"{what} [{ptr}, +{length}) is outside guest memory of {size} bytes")

    def _span(self, ptr: int, length: int, what: str) -> None:
        """HostCallError unless [ptr, +length) lies inside guest memory."""
        end = ptr + length
        if end > self._size:
            if self._inv is not None:
                self._size = self._inv.data_len()  # memory only grows
            if end > self._size or self._inv is None:
                raise self._outside(what, ptr, length)

    def _read(self, ptr: int, length: int, what: str) -> bytes:
        try:
            return self._inv.read(ptr, length)  # type: ignore[union-attr]
        except (IndexError, AttributeError):
            raise self._outside(what, ptr, length) from None

    def _write(self, ptr: int, data: bytes, what: str) -> None:
        try:
            self._inv.write(ptr, data)  # type: ignore[union-attr]
        except (IndexError, AttributeError):
            raise self._outside(what, ptr, len(data)) from None

    def _text(self, ptr: int, length: int, what: str) -> str:
        data = self._read(ptr, length, what)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise HostCallError(f"{what} is not valid UTF-8: {data[:40]!r}") from None

    def _reply(self, value: bytes | None, buf: int, cap: int, out: int) -> None:
        """The value convention: min(len, cap) bytes at buf, the length (or -1) at out.

        The whole buffer [buf, +cap) must lie in memory, however long the value.
        """
        if buf + cap > self._size:
            self._span(buf, cap, "buffer")
        if value is None:
            self._write(out, _MISSING_LEN, "out_len_ptr")
            return
        n = len(value)
        if n:
            self._inv.write(buf, value if n <= cap else memoryview(value)[:cap])  # type: ignore[union-attr, arg-type]
        self._write(out, _I32.pack(n), "out_len_ptr")

    # --- the imports (arguments already unsigned, i64 signed) ---------------------

    def _state_get(self, kp: int, kl: int, buf: int, cap: int, out: int) -> None:
        key = self._read(kp, kl, "key")
        self._reply(self.host.state_get(key), buf, cap, out)

    def _state_put(self, kp: int, kl: int, vp: int, vl: int) -> None:
        key = self._read(kp, kl, "key")
        value = self._read(vp, vl, "value")
        self.host.state_put(key, value)

    def _state_delete(self, kp: int, kl: int) -> None:
        key = self._read(kp, kl, "key")
        self.host.state_delete(key)

    def _state_add(self, kp: int, kl: int, delta: int, out: int) -> None:
        key = self._read(kp, kl, "key")
        self._span(out, 8, "out_ptr")  # before the state changes
        value = self.host.state_add(key, delta)
        if not _I64_MIN <= value <= _I64_MAX:
            raise HostCallError(f"the new value {value} of {key[:40]!r} does not fit in an i64")
        self._write(out, _I64.pack(value), "out_ptr")

    def _config_get(self, kp: int, kl: int, buf: int, cap: int, out: int) -> None:
        key = self._read(kp, kl, "key")
        self._reply(self.host.config_get(key), buf, cap, out)

    def _log(self, level: int, ptr: int, length: int) -> None:
        text = self._read(ptr, length, "message").decode("utf-8", "replace").rstrip()
        if len(text) > MAX_LOG_CHARS:
            text = f"{text[:MAX_LOG_CHARS]}... ({len(text) - MAX_LOG_CHARS} more characters)"
        self.host.log(level, text)

    def _msg_key(self, buf: int, cap: int, out: int) -> None:
        key = self.host.message.key
        self._reply(None if key is None else key.encode(), buf, cap, out)

    def _msg_property(self, np: int, nl: int, buf: int, cap: int, out: int) -> None:
        name = self._read(np, nl, "name").decode("utf-8", "replace")
        value = self.host.message.properties.get(name)
        self._reply(None if value is None else value.encode(), buf, cap, out)

    def _msg_event_time(self, out: int) -> None:
        self._write(out, _I64.pack(self.host.message.event_time or 0), "out_ptr")

    def _set_output_key(self, ptr: int, length: int) -> None:
        self.host.output.key = self._text(ptr, length, "key")

    def _set_output_property(self, np: int, nl: int, vp: int, vl: int) -> None:
        name = self._text(np, nl, "name")
        self.host.output.properties[name] = self._text(vp, vl, "value")

    def _set_output_event_time(self, ms: int) -> None:
        if ms < 0:
            raise HostCallError(f"event time {ms} is negative (ms since the epoch; 0 = none)")
        self.host.output.event_time = ms

    # --- failures -------------------------------------------------------------------

    def _failure(self, name: str, exc: BaseException) -> str:
        """The one-line trap message for an exception inside import ``name``."""
        if isinstance(exc, HostCallError | StateError):
            detail = str(exc)
        elif isinstance(exc, Exception):
            log.error("host function failed", function=f"{MODULE}.{name}", exc_info=exc)
            detail = f"internal error: {type(exc).__name__}: {exc}"
        else:  # KeyboardInterrupt, SystemExit: trap now, re-raised after the call
            self._pending = exc
            detail = f"interrupted ({type(exc).__name__})"
        detail = " ".join(detail.split())
        if len(detail) > 500:
            detail = detail[:500] + "..."
        return f"{MODULE}.{name}: {detail}"
