"""NumPy `.npy` arrays (alone or inside `.npz`): an object array is a pickle in disguise."""

from __future__ import annotations

import ast
import io
import struct
from typing import Any, ClassVar

from modeldepot.scan.findings import Finding, Severity
from modeldepot.scan.item import Item, Nested
from modeldepot.scan.pickles import scan_pickle

__all__ = ["NumpyScanner"]

_MAGIC = b"\x93NUMPY"


def _header(head: bytes) -> tuple[dict[str, Any], int]:
    major = head[6]
    if major == 1:
        (length,) = struct.unpack("<H", head[8:10])
        start = 10
    else:
        (length,) = struct.unpack("<I", head[8:12])
        start = 12
    text = head[start : start + length].decode("latin1")
    value = ast.literal_eval(text)  # a Python literal, never code
    if not isinstance(value, dict):
        raise ValueError("header is not a dict")
    return value, start + length


def _has_object(descr: Any) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list | tuple):
        return any(_has_object(part) for part in descr)
    return False


class NumpyScanner:
    name: ClassVar[str] = "numpy"

    def accepts(self, item: Item) -> bool:
        return item.head.startswith(_MAGIC)

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        del nested
        try:
            header, offset = _header(item.head)
        except (ValueError, SyntaxError, struct.error, IndexError) as exc:
            return [Finding(item.location, "numpy.bad-header", Severity.MEDIUM,
                            f"unreadable .npy header ({exc})")]  # fmt: skip
        if not _has_object(header.get("descr")):
            return []
        data = item.read_all()
        found = [
            Finding(item.location, "numpy.object-array", Severity.MEDIUM,
                    "object array: numpy.load(allow_pickle=True) unpickles its content")
        ]  # fmt: skip
        found += scan_pickle(io.BytesIO(data[offset:]), f"{item.location}:<object data>")
        return found
