"""A blob store in memory: the same contract as the local one, for tests and embedders that
want no disk. `local_path()` spills a blob to a private folder the first time a consumer needs
a real file (an engine, a scanner, the signer)."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from modeldepot.errors import IntegrityError, NotFound
from modeldepot.refs import parse_digest
from modeldepot.store.blobs import Blob, Progress, Readable

__all__ = ["MemoryBlobStore"]


class MemoryBlobStore:
    def __init__(self, spill: Path | None = None) -> None:
        self.blobs: dict[str, bytes] = {}
        self._spill = spill
        self.location = "memory"

    def _get(self, digest: str) -> bytes:
        try:
            return self.blobs[parse_digest(digest)]
        except KeyError:
            raise NotFound(f"blob {digest} is missing from the memory store") from None

    def has(self, digest: str) -> bool:
        return parse_digest(digest) in self.blobs

    def size(self, digest: str) -> int:
        return len(self._get(digest))

    def open(self, digest: str) -> BinaryIO:
        return io.BytesIO(self._get(digest))

    def read_bytes(self, digest: str) -> bytes:
        return self._get(digest)

    def local_path(self, digest: str) -> Path:
        data = self._get(digest)
        if self._spill is None:
            self._spill = Path(tempfile.mkdtemp(prefix="depot-memory-"))
        self._spill.mkdir(parents=True, exist_ok=True)
        path = self._spill / parse_digest(digest).replace(":", "-")
        if not path.is_file():
            partial = path.with_suffix(".partial")
            partial.write_bytes(data)
            os.chmod(partial, 0o444)
            partial.rename(path)
        return path

    def verified_path(self, digest: str, progress: Progress | None = None) -> Path:
        if self.rehash(digest, progress) != parse_digest(digest):
            raise IntegrityError(f"blob {digest} has changed in the memory store")
        return self.local_path(digest)

    def put_bytes(self, data: bytes, *, expected: str | None = None) -> Blob:
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if expected is not None and parse_digest(expected) != digest:
            raise IntegrityError(
                f"content has digest {digest} but {parse_digest(expected)} was expected: "
                "the source is corrupt or not the file it claims to be; nothing was stored"
            )
        new = digest not in self.blobs
        self.blobs[digest] = data
        return Blob(digest, len(data), new=new)

    def put_file(
        self,
        source: Path,
        *,
        expected: str | None = None,
        progress: Progress | None = None,
        consume: bool = False,
    ) -> Blob:
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{source}: no such file") from None
        if progress:
            progress(len(data))
        return self.put_bytes(data, expected=expected)

    def put_stream(
        self,
        sources: Iterable[Readable],
        *,
        expected: str | None = None,
        progress: Progress | None = None,
    ) -> Blob:
        out = bytearray()
        buffer = bytearray(1 << 20)
        for src in sources:
            while n := src.readinto(buffer):
                out += buffer[:n]
                if progress:
                    progress(n)
        return self.put_bytes(bytes(out), expected=expected)

    def delete(self, digest: str) -> None:
        self.blobs.pop(parse_digest(digest), None)
        if self._spill is not None:
            (self._spill / parse_digest(digest).replace(":", "-")).unlink(missing_ok=True)

    def digests(self) -> Iterator[tuple[str, int]]:
        yield from [(d, len(b)) for d, b in self.blobs.items()]

    def rehash(self, digest: str, progress: Progress | None = None) -> str:
        data = self._get(digest)
        if progress:
            progress(len(data))
        return f"sha256:{hashlib.sha256(data).hexdigest()}"

    def temporary_bytes(self) -> int:
        return 0

    def clean_temporaries(self, *, all_owners: bool = False) -> int:
        return 0
