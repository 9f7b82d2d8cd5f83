"""One thing to scan: a file on disk or a member of an archive, with its first bytes."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, ClassVar, Protocol

from modeldepot.scan.findings import Finding

__all__ = ["HEAD_SIZE", "MAX_DEPTH", "Item", "Nested", "Scanner"]

HEAD_SIZE = 4096
MAX_DEPTH = 4  # archives inside archives
MAX_IN_MEMORY = 2 * 1024**3


@dataclass
class Item:
    name: str
    """File name (its extension is a hint only: content decides)."""
    location: str
    """Where a finding points: `folder/file.pt:archive/data.pkl`."""
    head: bytes
    opener: Callable[[], IO[bytes]] = field(repr=False)
    size: int
    path: Path | None = None
    """The file on disk, when the item is one (not an archive member)."""
    depth: int = 0

    @classmethod
    def from_path(cls, path: Path, location: str) -> Item:
        """The file at `path`, named as `location` names it (a stored blob's own file name is
        its digest; its name in the model is what hints at its kind)."""
        with open(path, "rb") as f:
            head = f.read(HEAD_SIZE)
        name = PurePosixPath(location).name or path.name
        return cls(name, location, head, lambda: open(path, "rb"), path.stat().st_size, path)

    @classmethod
    def from_bytes(cls, name: str, location: str, data: bytes, depth: int) -> Item:
        return cls(
            PurePosixPath(name).name, location, data[:HEAD_SIZE],
            lambda: io.BytesIO(data), len(data), None, depth,
        )  # fmt: skip

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix.lower()

    def read_all(self) -> bytes:
        if self.size > MAX_IN_MEMORY:
            raise ValueError(f"{self.location}: {self.size} bytes is too large to inspect")
        with self.opener() as f:
            return f.read()

    def seekable(self) -> IO[bytes]:
        """A seekable stream over the item (archive members are read into memory)."""
        if self.path is not None:
            return open(self.path, "rb")
        return io.BytesIO(self.read_all())


Nested = Callable[[Item], list[Finding]]
"""Scans an item found inside another (dispatching on its content)."""


class Scanner(Protocol):
    """A content scanner: an entry point in the `modeldepot.scanners` group names a class of
    this shape. `accepts` looks at the first bytes (and the name, as a hint); `scan` must never
    load or execute what it reads."""

    name: ClassVar[str]

    def accepts(self, item: Item) -> bool: ...

    def scan(self, item: Item, nested: Nested) -> list[Finding]: ...
