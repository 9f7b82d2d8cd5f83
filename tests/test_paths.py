"""File paths from outside, checked in one place before anything is written under them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modeldepot.errors import FormatError, UnsafePath
from modeldepot.paths import MAX_PATH_DEPTH, MAX_SEGMENT_BYTES, check_relpath


@pytest.mark.parametrize(
    "path",
    ["model.gguf", "tokenizer/vocab.json", "a/b/c/d.safetensors", ".gitattributes", "a..b",
     "..a", "é/模型.bin", "name with spaces.txt", "/".join(["d"] * MAX_PATH_DEPTH)],
)  # fmt: skip
def test_plain_relative_paths_are_accepted(path: str) -> None:
    assert check_relpath(path) == path


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        ("../../etc/passwd", "climbs out"),
        ("a/../../b", "climbs out"),
        ("..", "climbs out"),
        ("/etc/passwd", "absolute"),
        ("//server/share", "absolute"),
        ("C:/Windows/x", "drive"),
        ("c:x", "drive"),
        ("a\\..\\b", "backslash"),
        ("a/./b", "'.' segment"),
        (".", "'.' segment"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a\x1b[31mb", "control character"),
        ("a\x85b", "control character"),
        ("\ud800", "control character"),
        ("x" * (MAX_SEGMENT_BYTES + 1), "longer than"),
        ("é" * (MAX_SEGMENT_BYTES // 2 + 1), "longer than"),
        ("/".join(["d"] * (MAX_PATH_DEPTH + 1)), "deeper than"),
        ("a/" * 600 + "b", "longer than"),
    ],
)
def test_paths_that_could_leave_their_folder_are_refused(path: str, reason: str) -> None:
    with pytest.raises(UnsafePath, match=re.escape(reason)) as refused:
        check_relpath(path, "the file path")
    message = str(refused.value)
    assert message.startswith("the file path ") and "\n" not in message and len(message) < 220
    assert isinstance(refused.value, FormatError)  # exit code 1, HTTP 400


@pytest.mark.parametrize("value", [None, 3, b"model.gguf", ["a"]])
def test_a_path_that_is_not_text_is_refused(value: object) -> None:
    with pytest.raises(UnsafePath, match="not text"):
        check_relpath(value)


def test_a_folder_linking_out_of_itself_is_refused_and_nothing_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link leading out of an imported folder is refused with one line, whatever it names;
    a link that stays inside the folder is imported as the file it names."""
    from click.testing import CliRunner

    from builders import write_hf_folder
    from modeldepot.cli import app

    monkeypatch.setenv("DEPOT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEPOT_DATABASE_URL", raising=False)
    folder = write_hf_folder(tmp_path / "model")
    secret = tmp_path / "secret.txt"
    secret.write_text("the depot must never store this\n")
    (folder / "notes.txt").symlink_to(secret)
    refused = CliRunner().invoke(app, ["import", str(folder), "-n", "m"])
    assert refused.exit_code == 1, refused.output
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and "notes.txt is refused" in lines[0], refused.output
    assert "outside" in lines[0]
    assert CliRunner().invoke(app, ["list", "--json"]).output.strip() == "[]"
    stored = [p.read_bytes() for p in (tmp_path / "home").rglob("*") if p.is_file()]
    assert not any(b"never store this" in data for data in stored)

    (folder / "notes.txt").unlink()
    (folder / "notes.txt").symlink_to("README.md")  # inside: an ordinary file of the model
    assert CliRunner().invoke(app, ["import", str(folder), "-n", "m"]).exit_code == 0
