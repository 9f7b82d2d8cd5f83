"""Integrity of stored bytes: hash every blob of some versions again (`depot check`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from modeldepot.registry import ModelVersion
from modeldepot.registry.names import Names
from modeldepot.store import BlobStore, Progress

__all__ = ["CheckProblem", "Integrity", "check"]


@dataclass(frozen=True)
class CheckProblem:
    reference: str
    path: str
    digest: str
    problem: str
    """`missing`, or `corrupt` with the digest the bytes have now in `actual`."""
    actual: str | None = None


def check(
    store: BlobStore, versions: Iterable[ModelVersion], *, progress: Progress | None = None
) -> Iterator[CheckProblem]:
    """Hash every blob of `versions` again and yield each file whose bytes are missing or no
    longer match their digest (a blob shared by several versions is hashed once)."""
    verdicts: dict[str, str | None] = {}
    for v in versions:
        entries = [
            ("(manifest)", v.digest),
            ("(config)", v.config_digest),
            *((f.path, f.digest) for f in v.files),
        ]
        for path, digest in entries:
            if digest not in verdicts:
                if not store.has(digest):
                    verdicts[digest] = "missing"
                else:
                    actual = store.rehash(digest, progress)
                    verdicts[digest] = None if actual == digest else actual
            verdict = verdicts[digest]
            if verdict == "missing":
                yield CheckProblem(str(v.reference), path, digest, "missing")
            elif verdict is not None:
                yield CheckProblem(str(v.reference), path, digest, "corrupt", verdict)


class Integrity:
    def __init__(self, store: BlobStore, names: Names) -> None:
        self.store = store
        self.names = names

    def check(
        self, names: Sequence[str] = (), *, progress: Progress | None = None
    ) -> Iterator[CheckProblem]:
        """`check` the named versions, or every stored version when none is named."""
        versions = (
            [self.names.show(n) for n in names]
            if names
            else self.names.versions(include_untagged=True)
        )
        return check(self.store, versions, progress=progress)
