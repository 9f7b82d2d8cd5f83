"""The layout of DEPOT_HOME is named in one place (`modeldepot.layout`)."""

from __future__ import annotations

import re
from pathlib import Path

from modeldepot.config import Settings
from modeldepot.layout import Layout

ROOT = Path(__file__).resolve().parents[1]


def test_the_home_layout_is_named_in_one_place() -> None:
    """No module joins names to DEPOT_HOME itself: each asks `Layout` (`settings.layout`)."""
    by_hand = re.compile(r"\bhome\s*/\s*[\"'A-Za-z_(]")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in (ROOT / "src" / "modeldepot").rglob("*.py")
        if path.name != "layout.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if by_hand.search(line) and not line.lstrip().startswith(("#", '"', "`"))
    ]
    assert offenders == []


def test_the_layout_names_what_the_depot_keeps() -> None:
    layout = Settings(home=Path("/depot")).layout
    assert layout == Layout(Path("/depot"))
    assert layout.run_folder("sha256:" + "ab" * 32) == Path("/depot/run/" + "ab" * 8)
    assert layout.blobs == Path("/depot/blobs") and layout.tmp == Path("/depot/tmp")
    assert layout.named("keys/team.pub") == Path("/depot/keys/team.pub")
    assert layout.named("/etc/keys/team.pub") == Path("/etc/keys/team.pub")
