"""Calling a component export with ``list<u8>`` in, without per-byte Python conversion.

wasmtime-py's public ``component.Func.__call__`` converts a ``list<u8>`` one
byte at a time in Python (about 100 us for a 50-byte message). The fast
callers here lay the bytes out as ``wasmtime_component_val_t`` elements with
two slice assignments and one memmove, and read the results back the same way.
They use wasmtime-py 50.0.1 private names: ``wasmtime._ffi`` (the C functions
``wasmtime_component_func_call``, ``wasmtime_component_vallist_new_uninit``,
``wasmtime_component_val_delete`` and the types ``wasmtime_component_val_t``,
``WASMTIME_COMPONENT_*``), ``Store._context()``, ``component.Func._func``,
``WasmtimeError._from_ptr`` and ``component._enter.maybe_raise_last_exn``. If
any is missing the public call is used (same results, slower);
tests/unit/test_component_guest.py checks that both agree.

Two signatures (wit/function-stream.wit): ``process: func(input: list<u8>) ->
result<list<list<u8>>, string>`` (records, or the error text) and
``process-batch: func(batch: list<u8>) -> list<u8>`` (framed bytes).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import component as wc

_missing: str | None = None
try:
    from wasmtime import _ffi
    from wasmtime.component._enter import maybe_raise_last_exn

    _Val = _ffi.wasmtime_component_val_t
    _VAL_SIZE = ctypes.sizeof(_Val)
    _PAYLOAD = _Val.of.offset
    _KIND_U8 = _ffi.WASMTIME_COMPONENT_U8.value
    _KIND_LIST = _ffi.WASMTIME_COMPONENT_LIST.value
    _KIND_STRING = _ffi.WASMTIME_COMPONENT_STRING.value
    _KIND_RESULT = _ffi.WASMTIME_COMPONENT_RESULT.value
    _func_call = _ffi.wasmtime_component_func_call
    _list_new = _ffi.wasmtime_component_vallist_new_uninit
    _val_delete = _ffi.wasmtime_component_val_delete
    _from_error = wasmtime.WasmtimeError._from_ptr
    _VallistT = _ffi.wasmtime_component_vallist_t
    if _VAL_SIZE != 32 or _PAYLOAD != 8 or _Val.kind.offset != 0:
        raise AttributeError("wasmtime_component_val_t changed layout")
    if not callable(getattr(wasmtime.Store, "_context", None)):
        raise AttributeError("wasmtime.Store._context")
except (ImportError, AttributeError, TypeError) as exc:  # pragma: no cover - other wasmtime
    _missing = f"{type(exc).__name__}: {exc}"

FAST_AVAILABLE = _missing is None
FAST_MISSING = _missing  # why the fast path is unavailable (for the log), or None
# A list element: kind byte at 0, payload at 8 (u64 size, then pointer, for a list or string).
_SIZE_PTR = struct.Struct("<QQ")

# What a call returns: ``process`` gives records or its error text, ``process-batch`` bytes.
ProcessResult = list[bytes] | str
Caller = Callable[[bytes], Any]


class _FastCall:
    """One export taking one ``list<u8>``; subclasses read the result value."""

    def __init__(self, store: wasmtime.Store, func: wc.Func) -> None:
        self._func_ref = ctypes.byref(func._func)
        self._store = store
        self._param = _Val()
        self._result = _Val()
        self._param_ref = ctypes.byref(self._param)
        self._result_ref = ctypes.byref(self._result)
        self._u8_kinds: bytes = b""

    def __call__(self, data: bytes) -> Any:
        n = len(data)
        raw = _VallistT()
        _list_new(ctypes.byref(raw), n)
        if n:
            # Each element is a 32-byte val: kind U8 at byte 0, the byte at 8.
            layout = bytearray(n * _VAL_SIZE)
            kinds = self._u8_kinds
            if len(kinds) < n:
                kinds = self._u8_kinds = bytes([_KIND_U8]) * max(n, 2 * len(kinds))
            layout[0::_VAL_SIZE] = kinds[:n]
            layout[_PAYLOAD::_VAL_SIZE] = data
            ctypes.memmove(raw.data, bytes(layout), n * _VAL_SIZE)
        param = self._param
        param.kind = _KIND_LIST
        param.of.list = raw
        try:
            err = _func_call(
                self._func_ref, self._store._context(), self._param_ref, 1, self._result_ref, 1
            )
        finally:
            _val_delete(self._param_ref)
            # wasmtime drops what a val holds before writing one: leave both empty (a bool).
            ctypes.memset(self._param_ref, 0, _VAL_SIZE)
        if err:
            error = _from_error(err)
            maybe_raise_last_exn()
            raise error
        try:
            return self._lift(self._result)
        finally:
            _val_delete(self._result_ref)
            ctypes.memset(self._result_ref, 0, _VAL_SIZE)

    def _lift(self, result: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class FastProcess(_FastCall):
    """``process(input)``: the records, or the error text of an ``err`` result."""

    def _lift(self, result: Any) -> ProcessResult:
        return _lift_result(result)


class FastBytes(_FastCall):
    """``process-batch(batch)``: the ``list<u8>`` it returns."""

    def _lift(self, result: Any) -> bytes:
        if result.kind != _KIND_LIST:
            raise TypeError(f"process-batch returned a value of kind {result.kind}, not a list")
        return _u8_list(result.of.list)


def _u8_list(raw: Any) -> bytes:
    size = raw.size
    return ctypes.string_at(raw.data, size * _VAL_SIZE)[_PAYLOAD::_VAL_SIZE] if size else b""


def _lift_result(result: Any) -> ProcessResult:
    """Read ``result<list<list<u8>>, string>`` from a wasmtime_component_val_t."""
    if result.kind != _KIND_RESULT:
        raise TypeError(f"process returned a value of kind {result.kind}, expected a result")
    payload = result.of.result.val
    if not result.of.result.is_ok:
        if not payload:
            return ""
        text = payload.contents.of.string
        return ctypes.string_at(text.data, text.size).decode("utf-8", "replace")
    if not payload:
        return []
    outer = payload.contents.of.list
    count = outer.size
    if not count:
        return []
    elements = ctypes.string_at(outer.data, count * _VAL_SIZE)
    records = []
    for i in range(count):
        off = i * _VAL_SIZE
        size, ptr = _SIZE_PTR.unpack_from(elements, off + _PAYLOAD)
        records.append(
            ctypes.string_at(ptr, size * _VAL_SIZE)[_PAYLOAD::_VAL_SIZE] if size else b""
        )
    return records


class PublicProcess:
    """``process(input)`` through wasmtime-py's public API (the fallback)."""

    def __init__(self, store: wasmtime.Store, func: wc.Func) -> None:
        self._store = store
        self._func = func

    def __call__(self, data: bytes) -> ProcessResult:
        result = self._func(self._store, bytes(data))
        if isinstance(result, str):
            return result
        return [bytes(record) for record in result]


class PublicBytes:
    """``process-batch(batch)`` through wasmtime-py's public API (the fallback)."""

    def __init__(self, store: wasmtime.Store, func: wc.Func) -> None:
        self._store = store
        self._func = func

    def __call__(self, data: bytes) -> bytes:
        return bytes(self._func(self._store, bytes(data)))


def process_caller(store: wasmtime.Store, func: wc.Func, fast: bool) -> Caller:
    """The caller of ``process``: fast (when available and ``fast``) or public."""
    return FastProcess(store, func) if fast and FAST_AVAILABLE else PublicProcess(store, func)


def batch_caller(store: wasmtime.Store, func: wc.Func, fast: bool) -> Caller:
    """The caller of ``process-batch``: fast (when available and ``fast``) or public."""
    return FastBytes(store, func) if fast and FAST_AVAILABLE else PublicBytes(store, func)


# --- a host function ``func(x: u32)`` without wasmtime-py's per-call type walk -----------
#
# wasmtime-py's component host trampoline rebuilds the function's type from C on
# every call and converts each argument through it: about 15 us for one u32
# (batch.select-input), three times a call without arguments. This callback reads
# the u32 straight from the argument array.

U32Func = Callable[[object, int], None]  # (store, value), like a wasmtime-py host function
_U32_FUNCS: dict[int, U32Func] = {}
_next_u32_func = 1

if FAST_AVAILABLE:

    @_ffi.wasmtime_component_func_callback_t
    def _u32_impl(data, _context, _ty, args, nargs, _results, _nresults):  # type: ignore[no-untyped-def]
        try:
            _U32_FUNCS[data or 0](None, args[0].of.u32)
        except wasmtime.WasmtimeError as exc:
            return ctypes.cast(exc._consume(), ctypes.c_void_p).value
        return 0

    @ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    def _u32_finalize(data):  # type: ignore[no-untyped-def]
        _U32_FUNCS.pop(data or 0, None)


def add_u32_func(instance: Any, name: str, fn: U32Func) -> None:
    """Define ``name: func(x: u32)`` on a linker instance; ``fn`` may only raise WasmtimeError.

    Without the private names, or for an instance that is not wasmtime's (a
    test's recorder), it is ``instance.add_func`` (the same, slower).
    """
    global _next_u32_func
    if not FAST_AVAILABLE or not callable(getattr(instance, "ptr", None)):
        instance.add_func(name, fn)
        return
    key = _next_u32_func
    _next_u32_func += 1
    _U32_FUNCS[key] = fn
    raw = name.encode("utf-8")
    err = _ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(), ctypes.create_string_buffer(raw), len(raw), _u32_impl, key, _u32_finalize
    )
    if err:
        _U32_FUNCS.pop(key, None)
        raise wasmtime.WasmtimeError._from_ptr(err)
