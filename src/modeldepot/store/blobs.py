"""The blob-store seam: what the depot asks of any place that keeps content-addressed blobs.

Every file of every version is a blob named by its sha256 (`sha256:<hex>`). A store is written
atomically per blob (a reader never sees a partial one) and never rewrites a blob in place.
`LocalBlobStore` (files under `DEPOT_HOME/blobs`) is the default; `MemoryBlobStore` keeps bytes
in memory (for tests and embedders). Consumers that need a real file (engines, scanners,
signing) ask `local_path()`, which a remote store answers from a local cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

__all__ = ["Blob", "BlobStore", "Progress", "Readable"]


class Readable(Protocol):
    def readinto(self, buffer: bytearray, /) -> int | None: ...


Progress = Callable[[int], None]
"""Called with the number of bytes just processed."""


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    new: bool
    """False when an identical blob was already stored (deduplicated)."""
    cloned: bool = False
    """True when the bytes were cloned by the filesystem rather than copied."""


@runtime_checkable
class BlobStore(Protocol):
    location: str
    """Where the blobs are, for messages (a folder, a bucket URL)."""

    def has(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int:
        """The blob's size; raises NotFound when it is not stored."""
        ...

    def open(self, digest: str) -> BinaryIO:
        """A binary reader of the blob; raises NotFound when it is not stored."""
        ...

    def read_bytes(self, digest: str) -> bytes: ...

    def local_path(self, digest: str) -> Path:
        """A real, read-only file holding the blob's bytes, for consumers that need one."""
        ...

    def verified_path(self, digest: str, progress: Progress | None = None) -> Path:
        """`local_path`, after making sure the bytes still hash to `digest` (what engines
        load); raises IntegrityError when they do not."""
        ...

    def put_bytes(self, data: bytes) -> Blob: ...

    def put_file(
        self,
        source: Path,
        *,
        expected: str | None = None,
        progress: Progress | None = None,
        consume: bool = False,
    ) -> Blob:
        """Store one file; with `expected`, refuse (IntegrityError) bytes of another digest.
        With `consume`, the file is the caller's own to give up (a result the depot just made):
        the store may move it in instead of copying it."""
        ...

    def put_stream(
        self,
        sources: Iterable[Readable],
        *,
        expected: str | None = None,
        progress: Progress | None = None,
    ) -> Blob:
        """Store the concatenation of several readers as one blob."""
        ...

    def delete(self, digest: str) -> None: ...

    def digests(self) -> Iterator[tuple[str, int]]:
        """Every stored blob with its size."""
        ...

    def rehash(self, digest: str, progress: Progress | None = None) -> str:
        """Hash a stored blob again and return the digest its bytes have now."""
        ...

    def temporary_bytes(self) -> int:
        """Bytes held by unfinished writes."""
        ...

    def clean_temporaries(self, *, all_owners: bool = False) -> int:
        """Remove unfinished writes of dead processes (of anyone with `all_owners`, when the
        caller holds the store lock exclusively); returns the bytes freed."""
        ...
