"""Just enough of the WebAssembly binary format for the memory probe (fsworker/memory_probe.py).

A reader for LEB128 numbers, names and the few structures the module sections
hold, an encoder for the numbers and vectors the rewrite writes, and a decoder
of every instruction of a code body (SIMD included, so an immediate is never
mistaken for an opcode) that replaces each ``memory.grow`` of memory 0 by a call.
Anything it does not know raises ``ProbeUnsupported``: the module then runs
without a probe.
"""

from __future__ import annotations


class ProbeUnsupported(Exception):
    """The module uses something the rewrite does not handle; it runs without a probe."""


def uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ProbeUnsupported("unexpected end of data")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uleb(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ProbeUnsupported("LEB128 number too long")

    def sleb(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                if b & 0x40:
                    result -= 1 << shift
                return result
            if shift > 70:
                raise ProbeUnsupported("LEB128 number too long")

    def skip(self, n: int) -> None:
        if self.pos + n > self.end:
            raise ProbeUnsupported("unexpected end of data")
        self.pos += n

    def name(self) -> bytes:
        n = self.uleb()
        start = self.pos
        self.skip(n)
        return self.data[start : self.pos]


_REF_WITH_HEAP = (0x63, 0x64)  # (ref null ht), (ref ht)


def valtype(r: Reader) -> None:
    if r.byte() in _REF_WITH_HEAP:
        r.sleb()  # heap type: an abstract type byte or a type index


def limits(r: Reader) -> int:
    flags = r.byte()
    r.uleb()
    if flags & 0x01:
        r.uleb()
    if flags & 0x08:
        r.uleb()  # custom page size (log2)
    return flags


def memarg(r: Reader) -> None:
    align = r.uleb()
    if align & 0x40:
        r.uleb()  # memory index (multi-memory)
    r.uleb()  # offset


def blocktype(r: Reader) -> None:
    first = r.data[r.pos] if r.pos < r.end else -1
    r.sleb()
    if first in _REF_WITH_HEAP:
        r.sleb()


# Opcodes with no immediates: the MVP numeric range, plus a few control ones.
_PLAIN = frozenset(
    {0x00, 0x01, 0x05, 0x0A, 0x0B, 0x0F, 0x19, 0x1A, 0x1B, 0xD1, 0xD3, 0xD4}
    | set(range(0x45, 0xC5))
)
# Opcodes with exactly one LEB128 immediate.
_ONE_LEB = frozenset(
    {0x07, 0x08, 0x09, 0x0C, 0x0D, 0x10, 0x12, 0x14, 0x15, 0x18, 0xD2, 0xD5, 0xD6}
    | set(range(0x20, 0x27))
)
_MEMARG = frozenset(range(0x28, 0x3F))
_SIMD_MEMARG = frozenset({*range(0, 12), 92, 93})
_SIMD_LANE = frozenset(range(21, 35))
_SIMD_MEMARG_LANE = frozenset(range(84, 92))
_SIMD_LAST = 0x113  # relaxed SIMD ends here


def rewrite_body(body: bytes, grow_func: int) -> bytes | None:
    """Replace ``memory.grow 0`` with ``call grow_func``; None if there is none."""
    r = Reader(body)
    for _ in range(r.uleb()):  # local declarations
        r.uleb()
        valtype(r)
    call = b"\x10" + uleb(grow_func)
    out: list[bytes] = []
    copied = 0
    data = body
    end = len(body)
    while r.pos < end:
        start = r.pos
        op = data[start]
        r.pos = start + 1
        if op in _PLAIN:
            continue
        if op in _ONE_LEB:
            r.uleb()
        elif op in _MEMARG:
            memarg(r)
        elif op == 0x40 or op == 0x3F:  # memory.grow / memory.size
            if r.uleb() == 0 and op == 0x40:
                out.append(data[copied:start])
                out.append(call)
                copied = r.pos
        elif op == 0x41 or op == 0x42:
            r.sleb()
        elif op == 0x43:
            r.skip(4)
        elif op == 0x44:
            r.skip(8)
        elif op in (0x02, 0x03, 0x04, 0x06):
            blocktype(r)
        elif op == 0x0E:  # br_table
            for _ in range(r.uleb() + 1):
                r.uleb()
        elif op in (0x11, 0x13):  # call_indirect, return_call_indirect
            r.uleb()
            r.uleb()
        elif op == 0x1C:  # select t*
            for _ in range(r.uleb()):
                valtype(r)
        elif op == 0x1F:  # try_table
            blocktype(r)
            for _ in range(r.uleb()):
                kind = r.byte()
                if kind in (0x00, 0x01):
                    r.uleb()
                r.uleb()
        elif op == 0xD0:  # ref.null
            r.sleb()
        elif op == 0xFC:
            sub = r.uleb()
            if sub <= 7 or 19 <= sub <= 22:
                pass
            elif sub in (8, 10, 12, 14):
                r.uleb()
                r.uleb()
            elif sub in (9, 11, 13, 15, 16, 17):
                r.uleb()
            else:
                raise ProbeUnsupported(f"unknown instruction 0xfc {sub}")
        elif op == 0xFD:
            sub = r.uleb()
            if sub in _SIMD_MEMARG:
                memarg(r)
            elif sub == 12 or sub == 13:
                r.skip(16)
            elif sub in _SIMD_LANE:
                r.skip(1)
            elif sub in _SIMD_MEMARG_LANE:
                memarg(r)
                r.skip(1)
            elif sub > _SIMD_LAST:
                raise ProbeUnsupported(f"unknown instruction 0xfd {sub}")
        elif op == 0xFE:
            sub = r.uleb()
            if sub == 0x03:
                r.skip(1)
            else:
                memarg(r)
        else:
            raise ProbeUnsupported(f"unsupported instruction 0x{op:02x}")
    if not out:
        return None
    out.append(data[copied:])
    return b"".join(out)


def vec(count: int, items: bytes) -> bytes:
    return uleb(count) + items


def split_vec(payload: bytes) -> tuple[int, bytes]:
    """A section's item count and the bytes of its items."""
    r = Reader(payload)
    count = r.uleb()
    return count, payload[r.pos :]
