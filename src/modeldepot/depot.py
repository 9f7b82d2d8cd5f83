"""The composition root: one depot's parts, built from its settings and wired together. It
holds no logic of its own; each stage is a service reached through it:

    depot.intake        receive    import, pull (packages, other depots)
    depot.mirroring     receive    pull through mirrors (Hugging Face, Ollama, depots)
    depot.names         registry   show, list, search, tag, remove
    depot.gate          verify     may a version be served now (policy, holds, exceptions)
    depot.admission     verify     scan + policy before a version is visible; repair
    depot.quarantine    verify     hold, release (an exception to the policy)
    depot.signatures    verify     sign, verify, re-check everything
    depot.integrity     verify     hash stored bytes again (`depot check`)
    depot.documents     describe   model card, AI-BOM
    depot.housekeeping  store      gc, disk usage
    depot.resolver      serve      which model a name reaches (aliases, remotes, versions)
    depot.jobs, depot.datasets
                        customise  fine-tuning jobs and their training data sets
    depot.keys, depot.gateway, depot.mirrors, depot.audit, depot.anchors, depot.usage
                                   access, remotes, mirrors, the audit log and its
                                   checkpoints, usage

The store, the lock and the format readers may be passed in (a `MemoryBlobStore`, a fake
reader); by default they come from the settings.
"""

from __future__ import annotations

import contextlib
from functools import cached_property

from modeldepot.config import Settings
from modeldepot.describe.documents import Documents
from modeldepot.formats import Formats
from modeldepot.receive import catalogue
from modeldepot.receive.intake import Intake
from modeldepot.receive.mirror import Mirroring
from modeldepot.registry import Registry
from modeldepot.registry.audit import AuditLog
from modeldepot.registry.gateway import GatewayStore
from modeldepot.registry.housekeeping import Housekeeping
from modeldepot.registry.jobs import DatasetStore, JobStore
from modeldepot.registry.keys import KeyStore
from modeldepot.registry.lease import LeaseLock
from modeldepot.registry.mirrors import MirrorStore
from modeldepot.registry.names import Names
from modeldepot.registry.resolver import Resolver
from modeldepot.registry.usage import UsageLog
from modeldepot.store import BlobStore, FileLock, StoreLock, open_store
from modeldepot.verify.admission import Admission
from modeldepot.verify.anchors import Anchors
from modeldepot.verify.gate import Gate
from modeldepot.verify.integrity import Integrity
from modeldepot.verify.quarantine import Quarantine
from modeldepot.verify.signatures import Signatures

__all__ = ["Depot"]


class Depot:
    """One depot: a blob store (under `settings.home` by default) and a registry at
    `settings.registry_url`."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: BlobStore | None = None,
        lock: StoreLock | None = None,
        formats: Formats | None = None,
        packaged: dict[str, catalogue.PackagedModel] | None = None,
    ) -> None:
        self.settings = settings
        self.store: BlobStore = store or open_store(settings)
        self._lock = lock
        self.formats = formats or Formats.from_entry_points()
        self.packaged = packaged

    @cached_property
    def registry(self) -> Registry:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        registry = Registry.open(self.settings.registry_url, self.settings.layout.lock_dir)
        with contextlib.suppress(OSError):  # a read-only home still reads its registry
            self.anchors.start(registry.audit)
        return registry

    @cached_property
    def lock(self) -> StoreLock:
        """The store lock: a registry-held lease on PostgreSQL, else a file lock."""
        if self._lock is not None:
            return self._lock
        if self.registry.engine.dialect.name == "postgresql":
            return LeaseLock(self.registry.engine)
        return FileLock(self.settings.layout.store_lock)

    def close(self) -> None:
        if "registry" in self.__dict__:
            with contextlib.suppress(OSError):  # anchoring must not lose the command's work
                self.anchors.record(self.registry.audit)
            self.registry.close()
            for name in list(self.__dict__):
                if name not in ("settings", "store", "_lock", "formats", "packaged"):
                    del self.__dict__[name]

    def __enter__(self) -> Depot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the stages ------------------------------------------------------------------------

    @cached_property
    def gate(self) -> Gate:
        return Gate(self.settings, self.registry)

    @cached_property
    def admission(self) -> Admission:
        return Admission(self.settings, self.store, self.registry, self.lock, self.gate)

    @cached_property
    def intake(self) -> Intake:
        return Intake(self.settings, self.store, self.lock, self.formats, self.registry,
                      self.admission, self.packaged)  # fmt: skip

    @cached_property
    def mirroring(self) -> Mirroring:
        return Mirroring(self.settings, self.mirrors, self.intake, self.signatures,
                         self.formats)  # fmt: skip

    @cached_property
    def names(self) -> Names:
        return Names(self.registry, self.settings.actor, self.gate.apply)

    @cached_property
    def quarantine(self) -> Quarantine:
        return Quarantine(self.registry, self.gate, self.settings.actor)

    @cached_property
    def signatures(self) -> Signatures:
        return Signatures(self.settings, self.store, self.registry, self.admission)

    @cached_property
    def integrity(self) -> Integrity:
        return Integrity(self.store, self.names)

    @cached_property
    def documents(self) -> Documents:
        return Documents(self.store, self.registry, self.settings.actor)

    @cached_property
    def housekeeping(self) -> Housekeeping:
        def repair() -> list[tuple[str, str]]:
            return [(r.reference, r.outcome) for r in self.admission.repair_held()]

        return Housekeeping(self.store, self.lock, self.registry, repair, self.settings.actor)

    @cached_property
    def resolver(self) -> Resolver:
        gateway = self.gateway
        return Resolver(
            self.names.show,
            lambda: (
                {a.name: a for a in gateway.aliases()},
                {r.name: r for r in gateway.remotes()},
            ),
            self.admission.refusals,
        )

    # -- access, gateway, records ----------------------------------------------------------

    @cached_property
    def keys(self) -> KeyStore:
        return KeyStore(self.registry.engine, self.settings.actor)

    @cached_property
    def gateway(self) -> GatewayStore:
        return GatewayStore(self.registry.engine, self.settings.actor)

    @cached_property
    def mirrors(self) -> MirrorStore:
        return MirrorStore(self.registry.engine, self.settings.actor)

    @cached_property
    def audit(self) -> AuditLog:
        return self.registry.audit

    @cached_property
    def anchors(self) -> Anchors:
        return Anchors(self.settings.layout.audit_checkpoints, self.settings.layout.signing_key)

    @cached_property
    def usage(self) -> UsageLog:
        return UsageLog(self.registry.engine)

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(self.registry.engine)

    @cached_property
    def datasets(self) -> DatasetStore:
        return DatasetStore(self.registry.engine)
