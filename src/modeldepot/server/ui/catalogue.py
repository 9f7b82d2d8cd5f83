"""The catalogue: every version a caller may see, searched, narrowed by facets, sorted and cut
into pages. Pure functions over the read model (`describe/view.py`), so the page and its
JSON twin (`/ui/catalogue.json`) answer from the same rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FACETS", "SORTS", "Page", "Query", "search"]

FACETS = {
    "licence": "license",
    "architecture": "architecture",
    "format": "format",
    "quantisation": "quantization",
    "status": "status",
    "adapters": "has_adapters",
}
"""Facet name in the page -> field of a row."""
SORTS = {
    "name": lambda r: (r["reference"],),
    "newest": lambda r: (-r["created_ts"], r["reference"]),
    "size": lambda r: (-r["size"], r["reference"]),
    "parameters": lambda r: (-(r.get("parameters") or 0), r["reference"]),
}
PAGE_SIZE = 25


@dataclass(frozen=True)
class Query:
    text: str = ""
    facets: Mapping[str, str] = field(default_factory=dict)
    sort: str = "name"
    page: int = 1
    size: int = PAGE_SIZE

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Query:
        facets = {k: params[k] for k in FACETS if params.get(k)}
        try:
            page = max(1, int(params.get("page") or 1))
        except ValueError:
            page = 1
        sort = params.get("sort") or "name"
        return cls(params.get("q", "").strip()[:200], facets, sort if sort in SORTS else "name",
                   page)  # fmt: skip


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    counts: dict[str, list[tuple[str, int]]]
    """Facet -> (value, rows with it among those matching everything else)."""


def _value(row: Mapping[str, Any], facet: str) -> str:
    value = row.get(FACETS[facet])
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value) if value not in (None, "") else "unknown"


def _matches(row: Mapping[str, Any], words: Sequence[str]) -> bool:
    haystack = row["search_text"]
    return all(w in haystack for w in words)


def search(rows: Sequence[dict[str, Any]], query: Query) -> Page:
    words = query.text.lower().split()
    found = [r for r in rows if _matches(r, words)]
    counts: dict[str, list[tuple[str, int]]] = {}
    for facet in FACETS:  # each facet counted among rows matching the other facets
        others = {k: v for k, v in query.facets.items() if k != facet}
        counted = Counter(_value(r, facet) for r in found
                          if all(_value(r, k) == v for k, v in others.items()))  # fmt: skip
        counts[facet] = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
    chosen = [r for r in found if all(_value(r, k) == v for k, v in query.facets.items())]
    chosen.sort(key=SORTS[query.sort])
    pages = max(1, -(-len(chosen) // query.size))
    page = min(query.page, pages)
    start = (page - 1) * query.size
    return Page(chosen[start : start + query.size], len(chosen), page, pages, counts)


def catalogue_rows(views: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The read model's rows with what the catalogue sorts, searches and facets by."""
    bases = {link["target_digest"] for v in views for link in v.get("lineage", [])
             if link.get("relation") == "adapter" and link.get("target_digest")}  # fmt: skip
    rows = []
    for v in views:
        text = " ".join(str(x) for x in (
            v["reference"], v.get("model_name"), v.get("format"), v.get("architecture"),
            v.get("quantization"), v.get("license"), " ".join(v.get("tags", [])))
            if x).lower()  # fmt: skip
        rows.append({**v, "has_adapters": v["digest"] in bases, "search_text": text,
                     "created_ts": _timestamp(v["created_at"])})  # fmt: skip
    return rows


def _timestamp(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()
