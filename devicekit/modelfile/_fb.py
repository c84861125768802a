"""A bounds-checked FlatBuffers table reader (read-only, no allocation of untrusted sizes).

The generated ``schema_py_generated`` accessors trust every offset: on a corrupt
file they read past the end, return garbage lengths (a 2**31-element vector
loop is a hang), or crash deep inside struct.unpack. Every offset here is
checked against the buffer length before it is followed, vectors are checked
to fit in the buffer before they are read, and any violation raises
``FlatbufferError`` with a one-line reason.
"""

from __future__ import annotations

import struct

import numpy as np

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U16 = struct.Struct("<H")

_SCALARS = {
    "u8": ("<B", 1),
    "i8": ("<b", 1),
    "u16": ("<H", 2),
    "i16": ("<h", 2),
    "u32": ("<I", 4),
    "i32": ("<i", 4),
    "u64": ("<Q", 8),
    "i64": ("<q", 8),
    "f32": ("<f", 4),
    "bool": ("<?", 1),
}
_NP = {"u8": "<u1", "i8": "<i1", "i32": "<i4", "u32": "<u4", "i64": "<i8", "f32": "<f4", "u64": "<u8"}


class FlatbufferError(ValueError):
    """The buffer is not a well-formed flatbuffer (an offset or length points outside it)."""


class Buf:
    def __init__(self, data: bytes | memoryview):
        self.data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self.n = len(data)

    def need(self, pos: int, size: int, what: str) -> None:
        if pos < 0 or size < 0 or pos + size > self.n:
            raise FlatbufferError(f"{what} at offset {pos} (+{size} bytes) lies outside the {self.n}-byte file")

    def u32(self, pos: int, what: str = "offset") -> int:
        self.need(pos, 4, what)
        return _U32.unpack_from(self.data, pos)[0]

    def i32(self, pos: int, what: str = "offset") -> int:
        self.need(pos, 4, what)
        return _I32.unpack_from(self.data, pos)[0]

    def u16(self, pos: int, what: str = "vtable entry") -> int:
        self.need(pos, 2, what)
        return _U16.unpack_from(self.data, pos)[0]

    def root(self, name: str = "root") -> "Table":
        return Table(self, self.u32(0, "root offset"), name)


class Table:
    """One table: ``pos`` is where its soffset to the vtable sits."""

    __slots__ = ("buf", "pos", "name", "_vt", "_vtlen")

    def __init__(self, buf: Buf, pos: int, name: str):
        self.buf, self.pos, self.name = buf, pos, name
        vt = pos - buf.i32(pos, f"{name} table")
        vtlen = buf.u16(vt, f"{name} vtable")
        if vtlen % 2:
            raise FlatbufferError(f"{name} vtable at {vt} has an odd length {vtlen}")
        buf.need(vt, vtlen, f"{name} vtable")
        # as flatbuffers' own verifier (VerifyTableStart): the vtable must fit; the table's declared inline size
        # is not checked, each field is when it is read (a vtable shorter than 4 bytes has no fields)
        self._vt, self._vtlen = vt, vtlen

    def _field(self, slot: int) -> int:
        """Absolute position of field ``slot`` (0-based), or 0 when absent."""
        vo = 4 + 2 * slot
        if vo >= self._vtlen:
            return 0
        off = self.buf.u16(self._vt + vo)
        return self.pos + off if off else 0

    def has(self, slot: int) -> bool:
        return self._field(slot) != 0

    def scalar(self, slot: int, kind: str, default=0):
        p = self._field(slot)
        if not p:
            return default
        fmt, size = _SCALARS[kind]
        self.buf.need(p, size, f"{self.name} field {slot}")
        return struct.unpack_from(fmt, self.buf.data, p)[0]

    def _indirect(self, slot: int) -> int:
        p = self._field(slot)
        if not p:
            return 0
        return p + self.buf.u32(p, f"{self.name} field {slot}")

    def table(self, slot: int, name: str) -> "Table | None":
        p = self._indirect(slot)
        return Table(self.buf, p, name) if p else None

    def _vector(self, slot: int, elem: int) -> tuple[int, int]:
        p = self._indirect(slot)
        if not p:
            return 0, 0
        n = self.buf.u32(p, f"{self.name} vector length")
        if n * elem > self.buf.n:
            raise FlatbufferError(f"{self.name} field {slot}: vector of {n} elements cannot fit in {self.buf.n} bytes")
        self.buf.need(p + 4, n * elem, f"{self.name} vector")
        return p + 4, n

    def string(self, slot: int) -> str | None:
        start, n = self._vector(slot, 1)
        if not start:
            return None
        return bytes(self.buf.data[start : start + n]).decode("utf-8", errors="replace")

    def numbers(self, slot: int, kind: str) -> np.ndarray:
        """A vector of scalars as a numpy array (copied)."""
        size = _SCALARS[kind][1]
        start, n = self._vector(slot, size)
        if not start:
            return np.zeros(0, dtype=_NP[kind])
        return np.frombuffer(self.buf.data, dtype=_NP[kind], count=n, offset=start).copy()

    def bytes_span(self, slot: int) -> tuple[int, int]:
        """(start, length) of a [ubyte] vector without copying it (0, 0 when absent)."""
        return self._vector(slot, 1)

    def tables(self, slot: int, name: str) -> list["Table"]:
        start, n = self._vector(slot, 4)
        out = []
        for i in range(n):
            p = start + 4 * i
            out.append(Table(self.buf, p + self.buf.u32(p), f"{name}[{i}]"))
        return out

    def table_count(self, slot: int) -> int:
        return self._vector(slot, 4)[1]
