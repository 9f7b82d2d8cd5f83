"""safetensors headers: read and checked against the file without touching the tensor data.

The format is an 8-byte little-endian header length, a JSON header mapping each tensor to its
dtype, shape and byte range, then the data. Checking every byte range against the file size is
what tells a truncated download from a whole one.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeldepot import jsonl
from modeldepot.errors import FormatError, NotFound

__all__ = ["DTYPE_SIZES", "SafetensorsHeader", "TensorEntry", "read_header"]

DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
    "F4": 1, "F6_E2M3": 1, "F6_E3M2": 1,
}  # fmt: skip
_MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: tuple[TensorEntry, ...]
    metadata: dict[str, str]

    @property
    def parameters(self) -> int:
        return sum(t.elements for t in self.tensors)

    @property
    def dtypes(self) -> Counter[str]:
        """dtype -> number of parameters stored in it."""
        counts: Counter[str] = Counter()
        for t in self.tensors:
            counts[t.dtype] += t.elements
        return counts


_SUB_BYTE = {"F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}  # bits per element, packed


def _expected_bytes(entry: TensorEntry) -> int | None:
    if entry.dtype in _SUB_BYTE:
        return None  # packing rules differ between writers; not checked
    return entry.elements * DTYPE_SIZES[entry.dtype]


def is_safetensors(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= _MAX_HEADER and head[8:9] == b"{"


def read_header(path: Path) -> SafetensorsHeader:
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw_len = f.read(8)
            if len(raw_len) < 8:
                raise FormatError(f"{path}: truncated safetensors file (no header)")
            (length,) = struct.unpack("<Q", raw_len)
            if length > _MAX_HEADER or length > size - 8:
                raise FormatError(
                    f"{path}: safetensors header claims {length} bytes but the file has {size}: "
                    "truncated or not a safetensors file"
                )
            raw = f.read(length)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    if raw[:1] != b"{":  # as the safetensors library demands: no padding to hide behind
        raise FormatError(f"{path}: safetensors header does not start with '{{'")
    try:
        header: dict[str, Any] = jsonl.loads(raw)
    except ValueError as exc:
        raise FormatError(f"{path}: safetensors header: {exc}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: safetensors header is not a JSON object")
    data_size = size - 8 - length
    metadata = header.pop("__metadata__", None) or {}
    tensors = []
    for name, entry in header.items():
        try:
            dtype = str(entry["dtype"])
            shape = tuple(int(d) for d in entry["shape"])
            begin, end = (int(o) for o in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{path}: tensor {name!r} has a malformed header entry") from None
        if dtype not in DTYPE_SIZES:
            raise FormatError(f"{path}: tensor {name!r} has unknown dtype {dtype!r}")
        if any(d < 0 for d in shape) or not 0 <= begin <= end:
            raise FormatError(f"{path}: tensor {name!r} has a negative shape or byte range")
        if end > data_size:
            raise FormatError(
                f"{path}: truncated safetensors file: tensor {name!r} ends at byte {end} "
                f"of a data section of {data_size} bytes"
            )
        entry = TensorEntry(name, dtype, shape, begin, end)
        expected = _expected_bytes(entry)
        if expected is not None and expected != end - begin:
            raise FormatError(
                f"{path}: tensor {name!r} is {dtype} {list(shape)} ({expected} bytes) "
                f"but its byte range holds {end - begin}"
            )
        tensors.append(entry)
    return SafetensorsHeader(tuple(tensors), {str(k): str(v) for k, v in metadata.items()})
