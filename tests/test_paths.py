"""File paths from outside, checked in one place before anything is written under them."""

from __future__ import annotations

import re

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
