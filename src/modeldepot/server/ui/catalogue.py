"""The catalogue: every version a caller may see, searched, narrowed by facets, sorted and cut
into pages. Pure functions over the read model (`describe/view.py`), so the page and its
JSON twin (`/api/catalogue`) answer from the same rows."""

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


_CACHE: dict[int, tuple[tuple[int, str], list[dict[str, Any]]]] = {}


def _all_rows(depot: Any) -> list[dict[str, Any]]:
    """Every version's row, rebuilt only when the registry changed: every change to a version
    (import, tag, removal, admission, quarantine) appends to the audit chain, so its head says
    whether the rows built last are still true."""
    from modeldepot.describe.view import version_view

    head = depot.audit.head()
    cached = _CACHE.get(id(depot))
    if cached is not None and cached[0] == head:
        return cached[1]
    rows = catalogue_rows([version_view(v) for v in depot.names.versions()])
    _CACHE[id(depot)] = (head, rows)
    return rows


async def rows_for(state: Any, key: Any) -> list[dict[str, Any]]:
    """The catalogue's rows for `key` (a server's state; the versions it may see)."""
    import asyncio

    rows = await asyncio.to_thread(_all_rows, state.depot)
    return [r for r in rows if key.allows(r["reference"])]


def page_json(found: Page) -> dict[str, Any]:
    rows = [{k: v for k, v in r.items() if k not in ("search_text", "created_ts")}
            for r in found.rows]  # fmt: skip
    return {"total": found.total, "page": found.page, "pages": found.pages, "rows": rows,
            "facets": found.counts}  # fmt: skip


def _timestamp(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()
