"""Model format readers, found through the `modeldepot.formats` entry-point group.

Every reader, built-in or third-party, is an entry point in the `modeldepot.formats` group
naming a class that implements `ModelFormat`; `Formats.from_entry_points()` loads them
all, and tests or embedders may pass their own list instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from modeldepot.errors import NotFound, UnsupportedFormat, UsageError
from modeldepot.formats.base import ModelFormat, ModelInfo, ModelSource, SourceFile
from modeldepot.paths import check_links
from modeldepot.plugins import load, ranked

__all__ = ["Formats", "ModelFormat", "ModelInfo", "ModelSource", "SourceFile"]

ENTRY_POINT_GROUP = "modeldepot.formats"
# Detection order: formats recognised by a magic number before those recognised by layout.
_ORDER = ("gguf", "onnx", "pytorch", "huggingface")


class Formats:
    def __init__(self, formats: Iterable[ModelFormat]) -> None:
        self._formats = {f.name: f for f in ranked(formats, _ORDER)}

    @classmethod
    def from_entry_points(cls) -> Formats:
        return cls(load(ENTRY_POINT_GROUP))

    @property
    def names(self) -> list[str]:
        return list(self._formats)

    def get(self, name: str) -> ModelFormat:
        try:
            return self._formats[name]
        except KeyError:
            raise UsageError(
                f"unknown format {name!r}; known formats: {', '.join(self._formats)}"
            ) from None

    def detect(self, path: Path) -> ModelFormat:
        if not path.exists():
            raise NotFound(f"{path}: no such file or folder")
        for fmt in self._formats.values():
            if fmt.detect(path):
                return fmt
        raise UnsupportedFormat(
            f"{path}: not a model file modeldepot can read (known formats: "
            f"{', '.join(self._formats)}); a truncated or empty file also ends up here"
        )

    def read(self, path: Path, format_name: str | None = None) -> ModelSource:
        """Read a model file or folder; a folder holding a link that leads out of it is
        refused before any reader opens a file of it."""
        if path.is_dir():
            check_links(path)
        fmt = self.get(format_name) if format_name else self.detect(path)
        return fmt.read(path)
