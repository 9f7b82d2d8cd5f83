"""The evaluation charts as SVG: whatever a task, a model, a category or a metric is named,
the label is the chart's text or one attribute's value, and the chart is well-formed XML."""

from __future__ import annotations

from xml.etree import ElementTree

from modeldepot.evaluation.charts import gap_svg, version_bars
from modeldepot.evaluation.compare import GapRow
from modeldepot.scores import Difference

HOSTILE = 'x" hx-post="/release" hx-trigger="load" y=\'<img src=x onerror=alert(1)>&amp;'
SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ElementTree.Element:
    root = ElementTree.fromstring(svg)  # well-formed, or this raises
    assert root.tag == f"{SVG}svg"
    assert {e.tag for e in root.iter()} <= {f"{SVG}svg", f"{SVG}rect", f"{SVG}text"}
    attributes = {name for e in root.iter() for name in e.attrib}
    assert not any(name.startswith(("on", "hx-")) for name in attributes), attributes
    return root


def test_a_hostile_task_name_is_one_attribute_value() -> None:
    rows = [{"label": "victim:latest", "value": 0.5, "this": True},
            {"label": HOSTILE, "value": float("nan"), "this": False}]  # fmt: skip
    root = _parse(version_bars(HOSTILE, rows))
    assert root.get("aria-label") == f"{HOSTILE} by version"
    assert root.get("class") == "bars"
    assert [t.text for t in root.iter(f"{SVG}text")][2] == HOSTILE[:24]


def test_gap_chart_labels_are_text() -> None:
    rows = [
        GapRow("task", HOSTILE, HOSTILE, Difference(0.6, 0.4, 0.2, 0.1, 0.3, 10)),
        GapRow("category", HOSTILE, "score", Difference(0.6, 0.4, 0.2, -0.1, 0.3, 10)),
    ]
    root = _parse(gap_svg(rows, HOSTILE, "b\x00\x1b"))  # control characters are dropped
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts[:3] == [f"{HOSTILE} vs b", HOSTILE, "b"]
    assert f"{HOSTILE} ({HOSTILE})" in texts and f"[{HOSTILE}]" in texts
    assert root.get("aria-label") == f"{HOSTILE} vs b"
