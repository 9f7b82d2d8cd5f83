"""JSON Lines from outside the depot (fine-tuning data, evaluation task data, batch input),
read within bounds, so that no file can exhaust memory or the stack:

- a line is read with at most `max_bytes` held (the rest of a longer one is read in chunks and
  dropped, and the line is reported as too long);
- a value nests at most `max_depth` arrays and objects (CPython's parser recurses, so a line
  of 100,000 `[` would otherwise end in RecursionError);
- the text is UTF-8 (a byte-order mark on the first line is allowed) and strict JSON (no NaN
  or Infinity).

A line that breaks a bound is reported with its number, never raised from inside a parse: each
caller decides whether one bad line stops the file (a batch) or is listed with the rest (a
fine-tuning data check).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["MAX_DEPTH", "MAX_LINE", "Line", "Readable", "loads", "read_lines"]

MAX_LINE = 4 * 1024 * 1024
"""Longest line, in bytes, unless the caller says otherwise."""
MAX_DEPTH = 64
"""Deepest nesting of arrays and objects."""
_CHUNK = 1 << 16
_BOM = b"\xef\xbb\xbf"


class Readable(Protocol):
    """A binary stream read line by line (an open file, a gzip file, BytesIO)."""

    def readline(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class Line:
    number: int
    """1-based, counting blank lines."""
    value: Any = None
    problem: str | None = None
    """Why the line has no value: `longer than N bytes`, `not UTF-8 text`, `not valid JSON
    (...)`, `nested deeper than N levels`."""


def read_lines(
    stream: Readable, *, max_bytes: int = MAX_LINE, max_depth: int = MAX_DEPTH
) -> Iterator[Line]:
    """Every non-blank line of a binary stream, parsed or with its problem."""
    number = 0
    while raw := stream.readline(max_bytes + 1):
        number += 1
        if number == 1:
            raw = raw.removeprefix(_BOM)
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            _skip_rest(stream)
            yield Line(number, problem=f"longer than {max_bytes} bytes")
            continue
        if not raw.strip():
            continue
        try:
            yield Line(number, loads(raw, max_depth=max_depth))
        except ValueError as exc:
            yield Line(number, problem=str(exc))


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """One JSON value within `max_depth`; ValueError says what is wrong with it."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if _deeper_than(value, max_depth):
        raise ValueError(f"nested deeper than {max_depth} levels")
    return value


def _skip_rest(stream: Readable) -> None:
    while (chunk := stream.readline(_CHUNK)) and not chunk.endswith(b"\n"):
        pass


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests more than `limit` arrays and objects, without recursion."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            if level > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
