"""The catalogue's search, facets, sorting and pages, over rows of the read model."""

from __future__ import annotations

from typing import Any

from modeldepot.server.ui.catalogue import Query, catalogue_rows, search
from modeldepot.server.ui.markdown import render_markdown


def _view(i: int, **extra: Any) -> dict[str, Any]:
    return {"reference": f"m{i:03d}:latest", "digest": f"sha256:{i:064x}", "model_name": None,
            "format": "gguf", "architecture": "llama" if i % 2 else "gemma3",
            "quantization": "Q4_1", "license": "MIT" if i % 3 else "Apache-2.0",
            "tags": ["latest"], "size": 1000 + i, "parameters": i, "status": "ok",
            "created_at": f"2026-11-{1 + i % 28:02d}T00:00:00+00:00", "lineage": [],
            **extra}  # fmt: skip


def test_search_facets_sort_and_pages() -> None:
    views = [_view(i) for i in range(60)]
    views.append(
        _view(
            60,
            reference="kestrel:latest",
            lineage=[
                {
                    "relation": "adapter",
                    "target": "m001:latest",
                    "target_digest": f"sha256:{1:064x}",
                }
            ],
        )
    )
    rows = catalogue_rows(views)
    everything = search(rows, Query())
    assert (everything.total, everything.pages, len(everything.rows)) == (61, 3, 25)
    last = search(rows, Query(page=9))
    assert last.page == 3 and len(last.rows) == 11
    llama = search(rows, Query(facets={"architecture": "llama"}))
    assert llama.total == 30
    # each facet's counts are among rows matching the other facets
    assert dict(llama.counts["architecture"]) == {"llama": 30, "gemma3": 31}
    assert dict(llama.counts["licence"]) == {"MIT": 20, "Apache-2.0": 10}
    adapters = search(rows, Query(facets={"adapters": "yes"}))
    assert [r["reference"] for r in adapters.rows] == ["m001:latest"]
    assert search(rows, Query(text="KESTREL")).total == 1
    biggest = search(rows, Query(sort="size"))
    assert biggest.rows[0]["reference"] == "kestrel:latest"
    assert search(rows, Query.from_params({"page": "x", "sort": "nonsense"})).page == 1


def test_markdown_is_sanitised() -> None:
    html = render_markdown(
        "# T <script>alert(1)</script>\n\n[x](javascript:alert(1)) [y](https://e.org)\n\n"
        '<img src=x onerror="alert(1)"> <a href="#" onclick="alert(1)">z</a>\n'
    )
    # raw HTML is shown as text, never as elements; a javascript: link is no link
    assert "<script" not in html and "<img" not in html and '<a href="#"' not in html
    assert "&lt;script&gt;" in html and 'href="javascript' not in html
    assert '<a href="https://e.org" rel="noopener noreferrer nofollow">y</a>' in html
