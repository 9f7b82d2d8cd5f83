"""The layout of DEPOT_HOME is named in one place (`modeldepot.layout`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modeldepot.config import Settings
from modeldepot.layout import Layout

ROOT = Path(__file__).resolve().parents[1]
_BY_HAND = re.compile(
    r"\bhome\s*/\s*[\"'A-Za-z_(]"  # home / "name"
    r"|\bdir\s*=\s*[\w.]*\bhome\b(?!\s*/)"  # a temporary file or folder made in the home
    r"|os\.path\.join\([^)]*\bhome\b"  # os.path.join(home, ...)
    r"|\bPath\([^)]*\bhome\s*,"  # Path(home, "name")
    r"|\bhome\s*\.\s*joinpath\("  # home.joinpath("name")
)


def test_the_home_layout_is_named_in_one_place() -> None:
    """No module joins names to DEPOT_HOME itself, nor makes an unnamed folder or file in it
    (`TemporaryDirectory(dir=settings.home)`): each asks `Layout` (`settings.layout`)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in (ROOT / "src" / "modeldepot").rglob("*.py")
        if path.name != "layout.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if _BY_HAND.search(line) and not line.lstrip().startswith(("#", '"', "`"))
    ]
    assert offenders == []


@pytest.mark.parametrize("line", [
    'tempfile.TemporaryDirectory(dir=depot.settings.home)',
    'tempfile.mkdtemp(prefix="x-", dir=settings.home)',
    'os.path.join(settings.home, "cache")',
    'Path(self.home, "keys")',
    'settings.home.joinpath("logs")',
    'home / "registry.db"',
])  # fmt: skip
def test_the_check_catches_each_way_of_placing_a_file_by_hand(line: str) -> None:
    assert _BY_HAND.search(line), line


def test_the_layout_names_what_the_depot_keeps() -> None:
    layout = Settings(home=Path("/depot")).layout
    assert layout == Layout(Path("/depot"))
    assert layout.run_folder("sha256:" + "ab" * 32) == Path("/depot/run/" + "ab" * 8)
    assert layout.blobs == Path("/depot/blobs") and layout.tmp == Path("/depot/tmp")
    assert layout.work == Path("/depot/work")
    assert layout.named("keys/team.pub") == Path("/depot/keys/team.pub")
    assert layout.named("/etc/keys/team.pub") == Path("/etc/keys/team.pub")
