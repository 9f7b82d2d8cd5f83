"""A GGUF header reader that skips what metadata does not need.

`gguf.GGUFReader` builds a NumPy view for every element of every array, so reading SmolLM2's
49,152-token vocabulary takes seconds. This reader walks the same header with `struct` over a
memory map, decodes scalars, strings and short arrays, and only steps over long arrays (token
lists, merges), keeping their length. It takes its type tables (value types, quantisation block
sizes) from the `gguf` package, and a test checks it against `GGUFReader` on real files.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from modeldepot.errors import FormatError

__all__ = ["GGUFHeader", "TensorInfo", "read_header"]

MAGIC = b"GGUF"
SHORT_ARRAY = 64
"""Arrays up to this many elements are decoded; longer ones keep only their length."""
_MAX_COUNT = 1 << 24
_SCALARS = {
    gguf.GGUFValueType.UINT8: "B",
    gguf.GGUFValueType.INT8: "b",
    gguf.GGUFValueType.UINT16: "H",
    gguf.GGUFValueType.INT16: "h",
    gguf.GGUFValueType.UINT32: "I",
    gguf.GGUFValueType.INT32: "i",
    gguf.GGUFValueType.FLOAT32: "f",
    gguf.GGUFValueType.BOOL: "?",
    gguf.GGUFValueType.UINT64: "Q",
    gguf.GGUFValueType.INT64: "q",
    gguf.GGUFValueType.FLOAT64: "d",
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type_name: str
    offset: int
    """Absolute offset of the tensor's data in the file."""
    n_elements: int
    n_bytes: int


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    fields: dict[str, Any]
    """Key -> value; arrays longer than SHORT_ARRAY are given as their length (an int)."""
    array_lengths: dict[str, int]
    tensors: tuple[TensorInfo, ...]
    data_offset: int

    @property
    def end(self) -> int:
        """Byte just past the last tensor's data."""
        return max((t.offset + t.n_bytes for t in self.tensors), default=self.data_offset)


class _Cursor:
    def __init__(self, buf: memoryview | mmap.mmap, endian: str) -> None:
        self.buf = buf
        self.pos = 0
        self.endian = endian

    def unpack(self, fmt: str) -> Any:
        value = struct.unpack_from(self.endian + fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.unpack("Q")
        if self.pos + length > len(self.buf):
            raise struct.error("string runs past the end of the file")
        raw = bytes(self.buf[self.pos : self.pos + length])
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = self.unpack("Q")  # read first: `pos += unpack()` would lose unpack's advance
        self.pos += length

    def value(self, kind: int) -> Any:
        if kind == gguf.GGUFValueType.STRING:
            return self.string()
        if kind in _SCALARS:
            return self.unpack(_SCALARS[gguf.GGUFValueType(kind)])
        raise FormatError(f"unknown GGUF value type {kind}")

    def array(self) -> tuple[Any, int]:
        kind = self.unpack("I")
        count = self.unpack("Q")
        if count > _MAX_COUNT * 16:
            raise FormatError(f"GGUF array of {count} elements is implausible")
        if count <= SHORT_ARRAY:
            if kind == gguf.GGUFValueType.ARRAY:
                return [self.array()[0] for _ in range(count)], count
            return [self.value(kind) for _ in range(count)], count
        if (
            kind == gguf.GGUFValueType.STRING
        ):  # a vocabulary: skip it with as little Python as can be
            length = struct.Struct(self.endian + "Q")
            read, buf, pos = length.unpack_from, self.buf, self.pos
            for _ in range(count):
                pos += 8 + read(buf, pos)[0]
            self.pos = pos
        elif kind in _SCALARS:
            self.pos += count * struct.calcsize(_SCALARS[gguf.GGUFValueType(kind)])
        else:  # nested arrays are rare; walk them
            for _ in range(count):
                self.array()
        if self.pos > len(self.buf):
            raise struct.error("array runs past the end of the file")
        return count, count


def _parse(buf: memoryview | mmap.mmap) -> GGUFHeader:
    if bytes(buf[:4]) != MAGIC:
        raise FormatError("not a GGUF file (bad magic)")
    (version,) = struct.unpack_from("<I", buf, 4)
    endian = "<"
    if version & 0xFFFF == 0:  # a big-endian file read as little-endian
        endian = ">"
        (version,) = struct.unpack_from(">I", buf, 4)
    if version not in (2, 3):
        raise FormatError(f"GGUF version {version} is not supported (2 and 3 are)")
    cur = _Cursor(buf, endian)
    cur.pos = 8
    tensor_count = cur.unpack("Q")
    kv_count = cur.unpack("Q")
    if tensor_count > _MAX_COUNT or kv_count > _MAX_COUNT:
        raise FormatError(f"implausible GGUF counts ({tensor_count} tensors, {kv_count} keys)")
    fields: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    for _ in range(kv_count):
        key = cur.string()
        kind = cur.unpack("I")
        if kind == gguf.GGUFValueType.ARRAY:
            fields[key], lengths[key] = cur.array()
        else:
            fields[key] = cur.value(kind)
    infos = []
    for _ in range(tensor_count):
        name = cur.string()
        n_dims = cur.unpack("I")
        if n_dims > 8:
            raise FormatError(f"tensor {name!r} claims {n_dims} dimensions")
        shape = tuple(cur.unpack("Q") for _ in range(n_dims))
        infos.append((name, shape, cur.unpack("I"), cur.unpack("Q")))
    alignment = int(fields.get("general.alignment", 32)) or 32
    data_offset = cur.pos + (-cur.pos % alignment)
    tensors = []
    for name, shape, type_id, offset in infos:
        try:
            qtype = gguf.GGMLQuantizationType(type_id)
            block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise FormatError(f"tensor {name!r} has unknown type {type_id}") from None
        n_elements = 1
        for dim in shape:
            n_elements *= dim
        tensors.append(
            TensorInfo(
                name=name,
                shape=shape,
                type_name=qtype.name,
                offset=data_offset + offset,
                n_elements=n_elements,
                n_bytes=n_elements // block * type_size,
            )
        )
    return GGUFHeader(version, fields, lengths, tuple(tensors), data_offset)


def read_header(path: Path) -> GGUFHeader:
    """Parse a GGUF file's header; FormatError when it is cut short or malformed."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size < 24:
            raise FormatError(f"{path}: truncated GGUF file ({size} bytes)")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            try:
                return _parse(mapped)
            except (struct.error, UnicodeDecodeError, OverflowError) as exc:
                raise FormatError(f"{path}: truncated or corrupt GGUF header ({exc})") from None
            except FormatError as exc:
                raise FormatError(f"{path}: {exc}") from None
