"""Writing a benchmark's section of bench/RESULTS.md, between its own markers."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).parent / "RESULTS.md"


def write_section(name: str, lines: list[str], results: Path = RESULTS) -> str:
    """Replace (or append) the section `name` of `results` and return its text."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = "\n".join([begin, *lines, end])
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    if begin in text:
        head, _, rest = text.partition(begin)
        text = head + section + rest.partition(end)[2]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    results.write_text(text)
    return section
