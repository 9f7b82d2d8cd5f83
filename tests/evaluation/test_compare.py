"""The gap chart, as SVG and as PNG, drawn from a gap table."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from modeldepot.evaluation.compare import GapRow, write_chart
from modeldepot.scores import Difference

ROWS = [
    GapRow("task", "bbh_navigate", "acc", Difference(0.62, 0.41, 0.21, 0.08, 0.33, 100)),
    GapRow("task", "mtbench", "judge", Difference(6.5, 7.0, -0.5, -1.2, 0.3, 10)),
    GapRow("overall", "all items", "score", Difference(0.6, 0.5, 0.1, -0.02, 0.2, 110)),
]


def test_png_chart_draws_both_models(tmp_path: Path) -> None:
    path = write_chart(ROWS, tmp_path / "gap.png", "smollm2", "gemma3")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(path).convert("RGB")
    assert image.width > 400 and image.height > 150
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20) or []}
    assert (0x3B, 0x6E, 0xA8) in colours and (0xD9, 0x82, 0x2B) in colours


def test_svg_chart_names_rows_and_intervals(tmp_path: Path) -> None:
    svg = write_chart(ROWS, tmp_path / "gap.svg", "smollm2", "gemma3").read_text()
    assert svg.startswith("<svg") and "bbh_navigate (acc)" in svg
    assert "+0.210 [+0.080, +0.330] *" in svg and "[all items]" in svg


def test_labels_are_shown_as_written(tmp_path: Path) -> None:
    # matplotlib would read `$...$` as mathematics (and fail on `$\frac{$`)
    rows = [
        GapRow("task", r"$\frac{$ costs $5 or $6", "acc", Difference(0.6, 0.4, 0.2, 0.1, 0.3, 10))
    ]
    assert write_chart(rows, tmp_path / "gap.png", r"a$\alpha$", "b").stat().st_size > 0
    svg = write_chart(rows, tmp_path / "gap.svg", "<a&b>", "b").read_text()
    assert r"$\frac{$ costs $5 or $6 (acc)" in svg and "&lt;a&amp;b&gt;" in svg


@pytest.mark.parametrize("name", ["gap.PNG", "gap.png"])
def test_png_by_suffix(tmp_path: Path, name: str) -> None:
    assert write_chart(ROWS[:1], tmp_path / name, "a", "b").read_bytes().startswith(b"\x89PNG")
