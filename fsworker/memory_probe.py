"""The memory probe: a compile-time rewrite that lets the host see a refused ``memory.grow``.

``Store.set_limits(memory_size=...)`` makes a ``memory.grow`` past the limit
return -1 to the guest; wasmtime's C API (which wasmtime-py wraps) builds its
store limits without ``trap_on_grow_failure``, so nothing on the host side
records that a grow was refused. ``add_memory_probe`` rewrites the module at
compile time: every ``memory.grow`` of memory 0 becomes a call to an added
function that does the grow and, when it fails, stores the size it asked for
(in wasm pages, as an i64) in a one-page probe memory the module exports as
``PROBE_EXPORT``. The host side that reads it is ``fsworker.limits.MemoryProbe``.
A module that cannot be rewritten (``ProbeUnsupported``) runs unchanged.

This module reads a module's sections and puts it back together with the probe
added; finding each ``memory.grow`` inside a code body, and the binary format
itself, are fsworker/wasm_decode.py's.
"""

from __future__ import annotations

from dataclasses import dataclass

from fsworker.wasm_decode import (
    ProbeUnsupported,
    Reader,
    limits,
    rewrite_body,
    split_vec,
    uleb,
    valtype,
    vec,
)

PROBE_EXPORT = "__fs_memory_probe"
# Part of the compiled-artifact fingerprint: change it when the rewrite changes.
PROBE_VERSION = 1


def _probe_function(probe_memory: int) -> bytes:
    """``(func (param $delta i32) (result i32))``: grow memory 0; on failure store
    ``memory.size + delta`` (pages, i64) at address 0 of the probe memory."""
    code = (
        b"\x01\x01\x7f"  # one local: i32 $result
        b"\x20\x00\x40\x00\x22\x01"  # local.get 0, memory.grow 0, local.tee 1
        b"\x41\x7f\x46\x04\x40"  # i32.const -1, i32.eq, if
        b"\x41\x00\x3f\x00\xad\x20\x00\xad\x7c"  # addr 0, memory.size + delta as i64
        b"\x37\x43" + uleb(probe_memory) + b"\x00"  # i64.store align=8 in the probe
        b"\x0b\x20\x01\x0b"  # end, local.get 1, end
    )
    return uleb(len(code)) + code


@dataclass
class _Layout:
    """What the rewrite needs to know of a module's index spaces and sections."""

    sections: list[tuple[int, bytes]]  # in file order, custom sections (id 0) included
    by_id: dict[int, bytes]  # the non-custom sections' payloads
    type_count: int = 0
    imported_funcs: int = 0
    defined_funcs: int = 0
    memories: int = 0  # imported + defined: the probe memory's index
    export_count: int = 0
    exports_payload: bytes = b""


def add_memory_probe(wasm: bytes) -> bytes | None:
    """The module with its memory.grow probed, or None when nothing grows memory 0.

    Raises ProbeUnsupported when the module uses something this rewrite does
    not handle (then it runs unchanged, without an exact memory-limit signal).
    """
    if wasm[:8] != b"\0asm\x01\0\0\0":
        raise ProbeUnsupported("not a core WebAssembly module, version 1")
    sections = _sections(wasm)
    by_id = {sid: payload for sid, payload in sections if sid != 0}
    if 10 not in by_id or 3 not in by_id or 1 not in by_id:
        return None  # no code: nothing can grow memory
    layout = _Layout(sections, by_id, type_count=_count_types(by_id[1]))
    memory0_flags = _scan_memories(layout)
    if memory0_flags is None:
        return None  # no memory at all
    if memory0_flags & 0x0E:
        raise ProbeUnsupported("memory 0 is shared, 64-bit or has a custom page size")
    layout.defined_funcs = Reader(by_id[3]).uleb()
    _scan_exports(layout)
    bodies = _rewrite_code(layout)
    if bodies is None:
        return None
    return _assemble(wasm[:8], layout, bodies)


def _sections(wasm: bytes) -> list[tuple[int, bytes]]:
    """Every section after the header, as (id, payload), in file order."""
    sections: list[tuple[int, bytes]] = []
    r = Reader(wasm, 8)
    while r.pos < len(wasm):
        sid = r.byte()
        size = r.uleb()
        start = r.pos
        r.skip(size)
        sections.append((sid, wasm[start : r.pos]))
    return sections


def _count_types(payload: bytes) -> int:
    """How many types the type section declares (plain function types only)."""
    r = Reader(payload)
    type_count = r.uleb()
    for _ in range(type_count):
        if r.byte() != 0x60:
            raise ProbeUnsupported("type section uses GC types")
        for _ in range(2):
            for _ in range(r.uleb()):
                valtype(r)
    return type_count


def _scan_memories(layout: _Layout) -> int | None:
    """Count imported functions and all memories; the limits flags of memory 0, if any."""
    imported_memories = 0
    memory0_flags: int | None = None
    # Imports: functions and memories come first in their index spaces.
    if 2 in layout.by_id:
        r = Reader(layout.by_id[2])
        for _ in range(r.uleb()):
            r.name()
            r.name()
            kind = r.byte()
            if kind == 0x00:
                r.uleb()
                layout.imported_funcs += 1
            elif kind == 0x01:
                valtype(r)
                limits(r)
            elif kind == 0x02:
                flags = limits(r)
                if imported_memories == 0:
                    memory0_flags = flags
                imported_memories += 1
            elif kind == 0x03:
                valtype(r)
                r.byte()
            elif kind == 0x04:
                r.byte()
                r.uleb()
            else:
                raise ProbeUnsupported(f"unknown import kind {kind}")
    defined_memories = 0
    if 5 in layout.by_id:
        r = Reader(layout.by_id[5])
        defined_memories = r.uleb()
        for _ in range(defined_memories):
            flags = limits(r)
            if memory0_flags is None:
                memory0_flags = flags
    layout.memories = imported_memories + defined_memories
    return memory0_flags


def _scan_exports(layout: _Layout) -> None:
    """Keep the exports to extend; refuse a module that already exports the probe's name."""
    if 7 not in layout.by_id:
        return
    r = Reader(layout.by_id[7])
    layout.export_count = r.uleb()
    for _ in range(layout.export_count):
        if r.name() == PROBE_EXPORT.encode():
            raise ProbeUnsupported(f"module already exports '{PROBE_EXPORT}'")
        r.byte()
        r.uleb()
    layout.exports_payload = split_vec(layout.by_id[7])[1]


def _rewrite_code(layout: _Layout) -> list[bytes] | None:
    """Each code body, size-prefixed, with its memory.grow rewritten; None if none changed."""
    code = layout.by_id[10]
    r = Reader(code)
    body_count = r.uleb()
    if body_count != layout.defined_funcs:
        raise ProbeUnsupported("function and code sections disagree")
    # The probe function is appended after every defined function.
    grow_func = layout.imported_funcs + layout.defined_funcs
    bodies: list[bytes] = []
    changed = False
    for _ in range(body_count):
        size = r.uleb()
        start = r.pos
        r.skip(size)
        body = code[start : r.pos]
        new = None
        # A cheap byte test first: most bodies hold no memory.grow (0x40 0x00 / 0x40 0x80...).
        if b"\x40\x00" in body or b"\x40\x80" in body:
            new = rewrite_body(body, grow_func)
        if new is None:
            bodies.append(uleb(size) + body)
        else:
            changed = True
            bodies.append(uleb(len(new)) + new)
    return bodies if changed else None


# Section order; custom sections (id 0) stay where they were.
_ORDER = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11]


def _assemble(header: bytes, layout: _Layout, bodies: list[bytes]) -> bytes:
    """The module again, with the probe's type, function, memory, export and body added."""
    by_id = layout.by_id
    name = PROBE_EXPORT.encode()
    memories = split_vec(by_id[5])[1] if 5 in by_id else b""
    defined_memories = split_vec(by_id[5])[0] if 5 in by_id else 0
    new_payloads = {
        1: vec(layout.type_count + 1, split_vec(by_id[1])[1] + b"\x60\x01\x7f\x01\x7f"),
        3: vec(layout.defined_funcs + 1, split_vec(by_id[3])[1] + uleb(layout.type_count)),
        5: vec(defined_memories + 1, memories + b"\x00\x01"),
        7: vec(
            layout.export_count + 1,
            layout.exports_payload + uleb(len(name)) + name + b"\x02" + uleb(layout.memories),
        ),
        10: vec(len(bodies) + 1, b"".join(bodies) + _probe_function(layout.memories)),
    }
    present = [sid for sid, _ in layout.sections if sid != 0]
    out = [header]
    missing = [sid for sid in (5, 7) if sid not in present]

    def emit(sid: int, payload: bytes) -> None:
        out.append(bytes([sid]) + uleb(len(payload)) + payload)

    def emit_missing_before(sid: int) -> None:
        for m in list(missing):
            if _ORDER.index(m) < _ORDER.index(sid):
                emit(m, new_payloads[m])
                missing.remove(m)

    for sid, payload in layout.sections:
        if sid != 0:
            emit_missing_before(sid)
            emit(sid, new_payloads.get(sid, payload))
        else:
            emit(0, payload)
    for m in missing:
        emit(m, new_payloads[m])
    return b"".join(out)
