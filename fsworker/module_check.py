"""Decide which calling convention a module speaks, or say clearly why it speaks none.

Used by fsd at create time (so a bad module is refused before anything runs)
and by the worker at start (so a module swapped on disk is still caught).

A WebAssembly component (lane 3, wit/function-stream.wit) is recognised by its
binary header (layer 1); ``compile_module`` then returns a
``wasmtime.component.Component`` after checking its ``process`` export and its
imports, and ``classify`` says ``ModuleKind.COMPONENT``.
"""

from __future__ import annotations

import enum

import structlog
import wasmtime
from wasmtime import component as wc

from fsworker import host_api
from fsworker.memory_probe import ProbeUnsupported, add_memory_probe

log = structlog.get_logger("fsworker.module_check")

WASI_MODULES = frozenset({"wasi_snapshot_preview1", "wasi_unstable"})


class ModuleKind(enum.StrEnum):
    """How the worker calls a module; see docs/abi.md."""

    ABI = "abi"  # memory + alloc + process, one long-lived instance
    WASI_STDIO = "wasi-stdio"  # a WASI command: stdin -> stdout, one instance per message
    COMPONENT = "component"  # a component exporting process (wit/function-stream.wit)


class InvalidModule(Exception):
    """The module cannot be used; the message is a one-line reason for people."""


# The binary header's version and layer fields (after b"\0asm"): a core module is
# version 1, layer 0; a component has layer 1 (and a pre-1.0 version, 0x0d today).
_CORE_HEADER = b"\x01\x00\x00\x00"
_COMPONENT_LAYER = b"\x01\x00"


def is_component(wasm: bytes) -> bool:
    """Whether ``wasm`` is a WebAssembly component (binary header layer 1)."""
    return len(wasm) >= 8 and wasm[:4] == b"\0asm" and wasm[6:8] == _COMPONENT_LAYER


def compile_module(
    engine: wasmtime.Engine, wasm: bytes, probe: bool = True
) -> wasmtime.Module | wc.Component:
    """Compile wasm bytes, turning wasmtime's multi-line errors into one line.

    With ``probe`` (the default) the module gets the memory-limit probe of
    fsworker/memory_probe.py when it can take one; otherwise it is compiled as is.
    A component is compiled as a ``wasmtime.component.Component`` and checked
    (``check_component``).
    """
    if len(wasm) < 8 or wasm[:4] != b"\0asm":
        raise InvalidModule("not a WebAssembly module (the file does not start with '\\0asm')")
    if is_component(wasm):
        return compile_component(engine, wasm)
    probed, why = None, ""
    if probe:
        try:
            probed = add_memory_probe(wasm)
        except ProbeUnsupported as exc:
            why = str(exc)
        if probed is not None:
            try:
                return wasmtime.Module(engine, probed)
            except wasmtime.WasmtimeError:
                # Compile the original below: its error, if any, is the one to show.
                why = "wasmtime refused the rewritten module"
    try:
        module = wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise InvalidModule(f"WebAssembly module does not compile: {_reason(exc)}") from None
    if why:
        log.warning("module runs without the memory-limit probe", reason=why)
    return module


def _reason(exc: Exception) -> str:
    lines = [" ".join(line.split()) for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    # wasmtime puts the cause under "Caused by:"; the first line alone is often generic.
    if "Caused by:" in lines:
        cause = lines[lines.index("Caused by:") + 1 :]
        return f"{lines[0]}: {'; '.join(cause)}" if cause else lines[0]
    return lines[0]


def compile_component(engine: wasmtime.Engine, wasm: bytes) -> wc.Component:
    """Compile and check a component (lane 3); raises InvalidModule with one line."""
    try:
        component = wc.Component(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise InvalidModule(f"WebAssembly component does not compile: {_reason(exc)}") from None
    check_component(engine, component)
    return component


# What a component may import: WASI preview 2 as wasmtime provides it, and the host API.
COMPONENT_WASI_IMPORTS = ("wasi:io/", "wasi:clocks/", "wasi:random/", "wasi:cli/")
COMPONENT_WASI_DENIED_OK = ("wasi:filesystem/", "wasi:sockets/")  # linked, nothing granted
HOST_INTERFACE = "function-stream:function/host@1.0.0"
HOST_FUNCTIONS = frozenset(
    {
        "state-get",
        "state-put",
        "state-delete",
        "state-add",
        "config-get",
        "log",
        "msg-key",
        "msg-property",
        "msg-event-time",
        "set-output-key",
        "set-output-property",
        "set-output-event-time",
    }
)
_PROCESS_TYPE = "process: func(input: list<u8>) -> result<list<list<u8>>, string>"
# World batch-processor: the batch export and the interface it selects inputs with.
BATCH_INTERFACE = "function-stream:function/batch@1.0.0"
BATCH_FUNCTIONS = frozenset({"select-input"})
_BATCH_TYPE = "process-batch: func(batch: list<u8>) -> list<u8>"


def check_component(engine: wasmtime.Engine, component: wc.Component) -> None:
    """InvalidModule unless the component exports ``process`` with the WIT type and
    imports only WASI preview 2 and ``function-stream:function/host@1.0.0``."""
    ty = component.type
    exports = ty.exports(engine)
    process = exports.get("process")
    if process is None:
        raise InvalidModule(
            f"component does not export 'process' (expected {_PROCESS_TYPE}; "
            f"build it against wit/function-stream.wit, world 'processor')"
        )
    if not _is_process_type(process.ty):
        raise InvalidModule(
            f"component export 'process' has the wrong type: expected {_PROCESS_TYPE}"
        )
    batch = exports.get("process-batch")
    if batch is not None and not _is_batch_type(batch.ty):
        raise InvalidModule(
            f"component export 'process-batch' has the wrong type: expected {_BATCH_TYPE}"
        )
    allowed = {HOST_INTERFACE: HOST_FUNCTIONS | {"log-level"}, BATCH_INTERFACE: BATCH_FUNCTIONS}
    for name, item in ty.imports(engine).items():
        if name.startswith(COMPONENT_WASI_IMPORTS + COMPONENT_WASI_DENIED_OK):
            continue
        if name in allowed:
            unknown = sorted(set(item.ty.exports(engine)) - allowed[name])
            if unknown:
                raise InvalidModule(
                    f"component imports '{name}' function '{unknown[0]}', which the "
                    f"host does not provide (see wit/function-stream.wit)"
                )
            continue
        raise InvalidModule(
            f"component imports unknown '{name}': only WASI preview 2 (io, clocks, random, cli, "
            f"filesystem, sockets; nothing granted), '{HOST_INTERFACE}' and "
            f"'{BATCH_INTERFACE}' are provided "
            f"(see docs/abi.md)"
        )


def _is_list_u8(ty: object) -> bool:
    return isinstance(ty, wc.ListType) and isinstance(ty.element, wc.U8)


def _is_batch_type(ty: object) -> bool:
    if not isinstance(ty, wc.FuncType):
        return False
    params, result = ty.params, ty.result
    return len(params) == 1 and _is_list_u8(params[0][1]) and _is_list_u8(result)


def _is_process_type(ty: object) -> bool:
    if not isinstance(ty, wc.FuncType):
        return False
    params, result = ty.params, ty.result
    if len(params) != 1 or not _is_list_u8(params[0][1]) or not isinstance(result, wc.ResultType):
        return False
    ok, err = result.ok, result.err
    return isinstance(ok, wc.ListType) and _is_list_u8(ok.element) and isinstance(err, wc.String)


def classify(module: wasmtime.Module | wc.Component) -> ModuleKind:
    """Return the module's kind, or raise InvalidModule naming what is missing.

    A component was already checked when it was compiled (``compile_component``).
    """
    if isinstance(module, wc.Component):
        return ModuleKind.COMPONENT
    host_imports = []
    for imp in module.imports:
        if imp.module == host_api.MODULE:
            _check_host_import(imp)
            host_imports.append(f"{imp.module}.{imp.name}")
        elif imp.module not in WASI_MODULES:
            raise InvalidModule(
                f"module imports unknown '{imp.module}.{imp.name}': only WASI preview 1 "
                f"and the '{host_api.MODULE}' host API are provided (see docs/abi.md)"
            )
    kind = _kind(module)
    if kind is ModuleKind.WASI_STDIO and host_imports:
        raise InvalidModule(
            f"module imports '{host_imports[0]}' but is a WASI command: the host API needs "
            f"the Function Stream ABI (memory, alloc, process; see docs/abi.md)"
        )
    return kind


def _check_host_import(imp: wasmtime.ImportType) -> None:
    """InvalidModule unless ``imp`` is exactly an import of the host API."""
    what = f"'{imp.module}.{imp.name}'"
    if imp.name not in host_api.IMPORTS:
        raise InvalidModule(
            f"module imports unknown {what}: not in the Function Stream host API "
            f"version {host_api.VERSION} (see docs/abi.md)"
        )
    ty = imp.type
    if not isinstance(ty, wasmtime.FuncType):
        raise InvalidModule(f"import {what} must be a function")
    if not host_api.matches(imp.name, ty):
        got = host_api.describe(list(ty.params), list(ty.results))
        raise InvalidModule(
            f"import {what} has type {got}, expected {host_api.expected_type(imp.name)}"
        )


def uses_state(module: wasmtime.Module | wc.Component) -> bool:
    """Whether a core module imports any ``fs.state_*`` function.

    A component imports the host interface as a whole, so it cannot be told:
    False (its state calls then fail at run time where no state is offered).
    """
    if not isinstance(module, wasmtime.Module):
        return False
    return any(
        imp.module == host_api.MODULE and (imp.name or "").startswith("state_")
        for imp in module.imports
    )


def uses_message_metadata(module: wasmtime.Module) -> bool:
    """Whether the module imports any ``fs.msg_*`` or ``fs.set_output_*`` function.

    Such a module is called one message at a time (docs/abi.md, "Host API").
    """
    return any(
        imp.module == host_api.MODULE and imp.name in host_api.METADATA_IMPORTS
        for imp in module.imports
    )


def _kind(module: wasmtime.Module) -> ModuleKind:
    exports = {exp.name: exp.type for exp in module.exports}
    memory = exports.get("memory")
    alloc = exports.get("alloc")
    process = exports.get("process")
    if isinstance(memory, wasmtime.MemoryType) and alloc is not None and process is not None:
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        _expect_func(alloc, "alloc", [i32], [i32])
        _expect_func(process, "process", [i32, i32], [i64])
        if "process_batch" in exports:
            _expect_func(exports["process_batch"], "process_batch", [i32, i32], [i64])
        return ModuleKind.ABI
    if isinstance(exports.get("_start"), wasmtime.FuncType):
        return ModuleKind.WASI_STDIO
    missing = [name for name in ("memory", "alloc", "process") if name not in exports] or [
        "memory (as a memory)"
    ]
    raise InvalidModule(
        f"module exports neither the Function Stream ABI (missing: {', '.join(missing)}) "
        f"nor a WASI '_start' command; see docs/abi.md"
    )


def _expect_func(
    ext: object, name: str, params: list[wasmtime.ValType], results: list[wasmtime.ValType]
) -> None:
    if not isinstance(ext, wasmtime.FuncType):
        raise InvalidModule(f"export '{name}' must be a function")
    if list(ext.params) != params or list(ext.results) != results:
        want = f"({', '.join(map(str, params))}) -> ({', '.join(map(str, results))})"
        got = f"({', '.join(map(str, ext.params))}) -> ({', '.join(map(str, ext.results))})"
        raise InvalidModule(f"export '{name}' has type {got}, expected {want}")
