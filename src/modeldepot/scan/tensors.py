"""safetensors headers: a header length past the format's bound (a header bomb: loaders
allocate it up front), offsets that overlap or leave the file, sizes that disagree with shape
and dtype, absurd shapes, bytes after the last tensor (the safetensors library refuses such a
file, and they can carry a second payload). The header is parsed leniently so that every
problem is reported, not only the first."""

from __future__ import annotations

import itertools
import math
import struct
from typing import Any, ClassVar

from modeldepot import jsonl
from modeldepot.formats.safetensors import DTYPE_SIZES
from modeldepot.scan.findings import Finding, Severity
from modeldepot.scan.item import Item, Nested

__all__ = ["SafetensorsScanner"]

_MAX_HEADER = 100 * 1024 * 1024
_MAX_RANK = 16
_MAX_ELEMENTS = 1 << 44  # 17.6 trillion: no real tensor comes near
_SUB_BYTE = {"F4", "F6_E2M3", "F6_E3M2"}
_PADDING = b" \t\r\n\xef\xbb\xbf"  # JSON whitespace, and a UTF-8 byte-order mark


class SafetensorsScanner:
    name: ClassVar[str] = "safetensors"

    def accepts(self, item: Item) -> bool:
        """Every file named `.safetensors`, whatever it holds (what the importer reads as
        safetensors, a header bomb included); any other whose first 8 bytes are a header length
        in bounds followed by `{`, or by whitespace before one (which a lenient JSON parser
        skips and the safetensors library refuses), so padding cannot hide a header."""
        if item.suffix == ".safetensors":
            return True
        if len(item.head) < 9:
            return False
        (length,) = struct.unpack("<Q", item.head[:8])
        rest = item.head[8:].lstrip(_PADDING)
        return 2 <= length <= _MAX_HEADER and rest[:1] in (b"{", b"")

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        del nested
        where = item.location
        if item.size < 8:
            return [Finding(where, "safetensors.bad-header", Severity.HIGH,
                            f"{item.size} bytes: shorter than the header length")]  # fmt: skip
        (length,) = struct.unpack("<Q", item.head[:8])
        if length > _MAX_HEADER:
            message = (f"header claims {length} bytes; the format allows at most {_MAX_HEADER}, "
                       "and a loader allocates it before reading")  # fmt: skip
            return [Finding(where, "safetensors.header-bomb", Severity.HIGH, message)]
        if length > item.size - 8:
            return [
                Finding(
                    where,
                    "safetensors.out-of-bounds",
                    Severity.HIGH,
                    f"header claims {length} bytes of a {item.size}-byte file",
                )
            ]
        with item.opener() as f:  # fmt: skip
            f.seek(8)
            raw = f.read(length)
        out = []
        if raw[:1] != b"{":  # the rest is still checked: padding may hide a payload
            message = ("header does not start with '{': the safetensors library refuses it, "
                       "and leading bytes can hide it from scanners")  # fmt: skip
            out.append(Finding(where, "safetensors.bad-header", Severity.HIGH, message))
        try:
            header = jsonl.loads(raw)
        except ValueError as exc:
            return [*out, Finding(where, "safetensors.bad-header", Severity.HIGH,
                                  f"header: {exc}")]  # fmt: skip
        if not isinstance(header, dict):
            return [*out, Finding(where, "safetensors.bad-header", Severity.HIGH,
                                  "header is not a JSON object")]  # fmt: skip
        return out + _check(where, header, item.size - 8 - length)


def _check(where: str, header: dict[str, Any], data_size: int) -> list[Finding]:
    out: list[Finding] = []
    metadata = header.pop("__metadata__", None)
    if metadata is not None and (
        not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
    ):
        out.append(Finding(where, "safetensors.bad-metadata", Severity.MEDIUM,
                           "__metadata__ must map strings to strings"))  # fmt: skip
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        at = f"{where}:{name}"
        try:
            dtype = str(entry["dtype"])
            shape = [int(d) for d in entry["shape"]]
            begin, end = (int(o) for o in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            out.append(Finding(at, "safetensors.bad-entry", Severity.HIGH,
                               "malformed tensor entry"))  # fmt: skip
            continue
        if dtype not in DTYPE_SIZES:
            out.append(Finding(at, "safetensors.unknown-dtype", Severity.MEDIUM,
                               f"unknown dtype {dtype!r}"))  # fmt: skip
        if (
            len(shape) > _MAX_RANK
            or any(d < 0 for d in shape)
            or (math.prod(shape) > _MAX_ELEMENTS)
        ):
            out.append(Finding(at, "safetensors.absurd-shape", Severity.HIGH,
                               f"shape {shape} cannot be a real tensor"))  # fmt: skip
            continue
        if not 0 <= begin <= end or end > data_size:
            out.append(Finding(at, "safetensors.out-of-bounds", Severity.HIGH,
                               f"byte range [{begin}, {end}) lies outside the "
                               f"{data_size}-byte data section"))  # fmt: skip
            continue
        if dtype in DTYPE_SIZES and dtype not in _SUB_BYTE:
            expected = math.prod(shape) * DTYPE_SIZES[dtype]
            if expected != end - begin:
                out.append(Finding(at, "safetensors.size-mismatch", Severity.HIGH,
                                   f"{dtype} {shape} needs {expected} bytes but its range "
                                   f"holds {end - begin}"))  # fmt: skip
        spans.append((begin, end, name))
    spans.sort()
    for (_b1, end1, name1), (begin2, end2, name2) in itertools.pairwise(spans):
        if begin2 < end1 and end2 > begin2:
            out.append(Finding(f"{where}:{name2}", "safetensors.overlap", Severity.HIGH,
                               f"byte range overlaps tensor {name1!r}"))  # fmt: skip
    last = max((end for _b, end, _n in spans), default=0)
    if last < data_size:
        message = (f"{data_size - last} bytes follow the last tensor: the safetensors library "
                   "refuses the file, and they can hold a second payload")  # fmt: skip
        out.append(Finding(where, "safetensors.trailing-bytes", Severity.HIGH, message))
    covered = gaps = 0
    for begin, end, _name in spans:
        gaps += max(0, begin - covered)
        covered = max(covered, end)
    if gaps:
        out.append(Finding(where, "safetensors.unreferenced-bytes", Severity.LOW,
                           f"{gaps} bytes between tensors belong to none of them"))  # fmt: skip
    return out
