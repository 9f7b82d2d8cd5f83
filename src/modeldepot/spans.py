"""Spans of time as people type them: `90s`, `30m` (or `30min`), `12h`, `2d`, `8w`. The one
parser of them, for `depot audit --since 1h` (that long ago) and `--until 30d` (that long from
now) alike."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["parse_span"]

_SPAN = re.compile(r"(\d+)\s*(s|m|min|h|d|w)")
_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_span(text: str) -> timedelta | None:
    """The span `text` names (surrounding spaces ignored), or None when it names none."""
    span = _SPAN.fullmatch(text.strip())
    return timedelta(seconds=int(span[1]) * _SECONDS[span[2]]) if span else None
