"""Evaluation charts as SVG, drawn on the server: a task's score per version (the model page)
and the gap between two models (the leaderboard, `depot eval compare --chart F.svg`).

Every label here was named by someone else: a task file's name, a model's label, a category,
a metric. Each chart is therefore an element tree (`xml.etree.ElementTree`) serialised once,
so a label is always escaped text or a quoted attribute value, never markup; nothing builds
SVG by joining strings."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

if TYPE_CHECKING:
    from modeldepot.evaluation.compare import GapRow

__all__ = ["gap_svg", "version_bars"]

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_BLUE, _ORANGE = "#3b6ea8", "#d9822b"


def _clean(text: object) -> str:
    """A label as XML can carry it (control characters have no place in a chart)."""
    return _NOT_XML.sub("", str(text))


def _attributes(given: dict[str, object]) -> dict[str, str]:
    """Keyword arguments as SVG attributes: `font_size` is `font-size`, `class_` is `class`."""
    return {k.rstrip("_").replace("_", "-"): _clean(v) for k, v in given.items()}


def _add(parent: ElementTree.Element, tag: str, text: object = None,
         **attributes: object) -> ElementTree.Element:  # fmt: skip
    """A child element (text and values are escaped when the tree is serialised)."""
    element = ElementTree.SubElement(parent, tag, _attributes(attributes))
    if text is not None:
        element.text = _clean(text)
    return element


def _svg(label: str, box: tuple[int, int], **attributes: object) -> ElementTree.Element:
    """The chart's root (`box`: width and height in its units), named by `label` for assistive
    technology."""
    root = ElementTree.Element("svg", {"xmlns": "http://www.w3.org/2000/svg",
                                       "viewBox": f"0 0 {box[0]} {box[1]}"})  # fmt: skip
    root.attrib.update(_attributes(attributes))
    root.attrib.update({"role": "img", "aria-label": _clean(label)})
    return root


def _text(svg: ElementTree.Element) -> str:
    return ElementTree.tostring(svg, encoding="unicode")


def version_bars(task: str, rows: Sequence[dict[str, Any]]) -> str:
    """A task's score for each version of a model (`label`, `value`, `this`), as bars."""
    top = max([1.0, *(r["value"] for r in rows if not math.isnan(r["value"]))])
    svg = _svg(f"{task} by version", (420, 22 * len(rows) + 8), class_="bars")  # sized by CSS
    for i, r in enumerate(rows):
        width = 0 if math.isnan(r["value"]) else max(1, int(260 * r["value"] / top))
        y = 4 + 22 * i
        _add(svg, "text", str(r["label"])[:24], x=0, y=y + 14, class_="label")
        _add(svg, "rect", x=150, y=y, width=width, height=16,
             class_="this" if r["this"] else "other")  # fmt: skip
        _add(svg, "text", f"{r['value']:.3f}", x=155 + width, y=y + 13)
    return _text(svg)


def gap_svg(rows: Sequence[GapRow], a_label: str, b_label: str) -> str:
    """Both models' scores per row of a gap table, with the difference and its interval."""
    width, bar, gap_h, left = 900, 14, 18, 260
    span = width - left - 200
    height = 70 + len(rows) * (2 * bar + gap_h)
    svg = _svg(f"{a_label} vs {b_label}", (width, height), width=width, height=height,
               font_family="sans-serif", font_size=12)  # fmt: skip
    _add(svg, "rect", width=width, height=height, fill="white")
    _add(svg, "text", f"{a_label} vs {b_label}", x=10, y=20, font_size=14, font_weight="bold")
    _add(svg, "rect", x=left, y=32, width=12, height=10, fill=_BLUE)
    _add(svg, "text", a_label, x=left + 16, y=41)
    _add(svg, "rect", x=left + 300, y=32, width=12, height=10, fill=_ORANGE)
    _add(svg, "text", b_label, x=left + 316, y=41)
    y = 60
    for row in rows:
        label = f"{row.label} ({row.metric})" if row.kind == "task" else f"[{row.label}]"
        _add(svg, "text", label, x=10, y=y + bar + 4)
        for value, colour, dy in ((row.gap.a, _BLUE, 0), (row.gap.b, _ORANGE, bar)):
            w = max(0.0, min(1.0, value / row.scale)) * span
            _add(svg, "rect", x=left, y=y + dy, width=f"{w:.1f}", height=bar - 2, fill=colour)
        mark = " *" if row.gap.significant else ""
        _add(svg, "text", f"{row.gap.difference:+.3f} [{row.gap.low:+.3f}, "
             f"{row.gap.high:+.3f}]{mark}", x=left + span + 10, y=y + bar + 4)  # fmt: skip
        y += 2 * bar + gap_h
    return _text(svg)
