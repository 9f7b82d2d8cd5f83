"""Housekeeping of the store against the registry: garbage collection (blobs no version uses,
leftovers of interrupted imports, versions left pending) and disk usage."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from modeldepot.registry.records import ModelVersion
from modeldepot.registry.versions import Registry
from modeldepot.store import BlobStore, StoreLock

__all__ = ["DiskUsage", "GarbageReport", "Housekeeping", "ModelUsage"]

log = logging.getLogger("modeldepot.registry")


@dataclass(frozen=True)
class GarbageReport:
    removed_blobs: int
    freed_bytes: int
    temporary_bytes: int
    pruned_versions: tuple[str, ...] = ()
    repaired: tuple[str, ...] = ()
    """Versions left pending by an interrupted import, as `reference: outcome`."""


@dataclass(frozen=True)
class ModelUsage:
    """One stored version and every name that reaches it."""

    references: tuple[str, ...]
    digest: str
    size: int
    shared: int
    """Bytes of this version also used by another version (stored once)."""


@dataclass(frozen=True)
class DiskUsage:
    blob_count: int
    blob_bytes: int
    referenced_bytes: int
    reclaimable_bytes: int
    temporary_bytes: int
    logical_bytes: int
    """What the stored versions would take without deduplication."""
    models: tuple[ModelUsage, ...] = field(default_factory=tuple)


class Housekeeping:
    def __init__(
        self,
        store: BlobStore,
        lock: StoreLock,
        registry: Registry,
        repair: Callable[[], Sequence[tuple[str, str]]],
        actor: str,
    ) -> None:
        self.store = store
        self.lock = lock
        self.registry = registry
        self._repair = repair
        self.actor = actor

    def gc(
        self, *, prune_untagged: bool = False, timeout: float = 600.0, actor: str | None = None
    ) -> GarbageReport:
        """Admit (or remove) versions left pending, then delete blobs no version uses and
        every temporary file; no import runs meanwhile."""
        actor = actor or self.actor
        with self.lock.exclusive(timeout=timeout):
            repaired = tuple(f"{ref}: {outcome}" for ref, outcome in self._repair())
            temporary = self.store.clean_temporaries(all_owners=True)
            pruned = self.registry.prune_untagged(actor=actor) if prune_untagged else []
            keep = self.registry.referenced_digests()
            removed, freed = 0, 0
            for digest, size in list(self.store.digests()):
                if digest not in keep:
                    self.store.delete(digest)
                    removed += 1
                    freed += size
            self.registry.audit.append(
                actor,
                "gc",
                self.store.location,
                {"removed_blobs": removed, "freed_bytes": freed, "temporary_bytes": temporary},
            )
        log.info("gc removed %d blobs (%d bytes) and %d bytes of temporary files; pruned %d "
                 "untagged versions, repaired %d", removed, freed, temporary, len(pruned),
                 len(repaired))  # fmt: skip
        return GarbageReport(removed, freed, temporary, tuple(pruned), repaired)

    def disk_usage(self) -> DiskUsage:
        stored = dict(self.store.digests())
        keep = self.registry.referenced_digests()
        versions = self.registry.versions(include_untagged=True)
        users: dict[str, set[str]] = {}
        for v in versions:
            for f in v.files:
                users.setdefault(f.digest, set()).add(v.digest)
        by_version: dict[tuple[str, str], list[ModelVersion]] = {}
        for v in versions:
            by_version.setdefault((v.reference.repository, v.digest), []).append(v)
        models = [
            ModelUsage(
                tuple(str(v.reference) for v in group),
                group[0].digest,
                group[0].size,
                sum(f.size for f in group[0].files if len(users[f.digest]) > 1),
            )
            for group in by_version.values()
        ]
        logical = sum({v.digest: v.size for v in versions}.values())
        return DiskUsage(
            blob_count=len(stored),
            blob_bytes=sum(stored.values()),
            referenced_bytes=sum(s for d, s in stored.items() if d in keep),
            reclaimable_bytes=sum(s for d, s in stored.items() if d not in keep),
            temporary_bytes=self.store.temporary_bytes(),
            logical_bytes=logical,
            models=tuple(models),
        )
