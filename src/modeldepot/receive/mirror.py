"""Pull-through mirrors: a model from an upstream hub, brought in through the depot's gate.

    depot pull hf://[NAMESPACE/]NAME[@REVISION]    through a Hugging Face Hub (`--hf`) or
                                                   another depot (`--depot`)
    depot pull ollama://[NAMESPACE/]MODEL[:TAG]    through an Ollama registry (`--ollama`)

The mirror is the one of the right kind (`--mirror NAME` when there are several). Its files
are fetched in the upstream's own protocol (`hub.py`, `ollama.py`, or another depot's API
through `transfer.py`), every answer bounded and timed and every byte checked against what
the upstream declares, into a folder under the depot's home; then the intake every import
goes through: the files are read by their format, stored, scanned and judged by the policy,
and signed with the depot's own key when it has one. Nothing is visible before it is
admitted, and a hostile file upstream quarantines the version: stored, listed with its
reasons, never served. The pull is recorded with its provenance: the mirror, the upstream,
the repository and revision asked for and the commit or digest it resolved to.

On demand (`depot mirror add ... --on-demand`), the server asks `on_demand` for a model a
client wants and the depot lacks: it is fetched and admitted the same way before the client
gets an answer.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeldepot.config import Settings, secret_from_env
from modeldepot.errors import InvalidReference, ModelNotFound, UnsupportedFormat, UsageError
from modeldepot.formats import Formats, ModelSource, SourceFile
from modeldepot.formats.huggingface import file_kind
from modeldepot.receive import hub, ollama
from modeldepot.receive.intake import Intake
from modeldepot.receive.remote import Limits
from modeldepot.refs import DEFAULT_TAG, Reference, is_digest
from modeldepot.registry import ModelVersion
from modeldepot.registry.mirrors import Mirror, MirrorStore
from modeldepot.store import LayerKind, Progress
from modeldepot.verify.signatures import Signatures

__all__ = ["SCHEMES", "Mirroring", "Wanted", "wanted"]

log = logging.getLogger(__name__)
SCHEMES = {"hf": ("hf", "depot"), "ollama": ("ollama",)}
"""The mirror kinds each scheme of `depot pull` goes through."""
_MAIN = "main"


@dataclass(frozen=True)
class Wanted:
    """A model asked for through a mirror: `hf://acme/tiny@v1`, `ollama://llama3.2:1b`."""

    scheme: str
    repository: str
    revision: str

    def __str__(self) -> str:
        if self.scheme == "ollama":
            return f"ollama://{self.repository}:{self.revision}"
        return f"hf://{self.repository}@{self.revision}"


def wanted(spec: str) -> Wanted:
    scheme, sep, rest = spec.partition("://")
    if not sep or scheme not in SCHEMES or not rest:
        raise UsageError(f"{spec!r}: expected hf://[NAMESPACE/]NAME[@REVISION] or "
                         "ollama://[NAMESPACE/]MODEL[:TAG]")  # fmt: skip
    if scheme == "ollama":
        name = ollama.ollama_name(rest)
        repository = name.model if name.namespace == "library" else f"{name.namespace}/{name.model}"
        return Wanted(scheme, repository, name.tag)
    repository, _, revision = rest.partition("@")
    return Wanted(scheme, hub.check_repo_id(repository), revision or _MAIN)


def depot_name(want: Wanted) -> str:
    """The name a model pulled through a mirror is stored under: its repository, lowercase,
    tagged with its revision (`main` is `latest`)."""
    tag = DEFAULT_TAG if want.revision == _MAIN else want.revision.replace("/", "-")
    if is_digest(want.revision):
        tag = DEFAULT_TAG
    name = f"{want.repository.lower()}:{tag}"
    try:
        return str(Reference.parse(name))
    except InvalidReference as exc:
        raise UsageError(f"{want} has no depot name of its own ({exc}); give one with "
                         "--name NAME[:TAG]") from None  # fmt: skip


def _main_file(formats: Formats, folder: Path, paths: list[str]) -> str:
    """The file a model without a Hugging Face layout is read from: a GGUF first, else the
    first file a format reader recognises."""
    for path in sorted(paths, key=lambda p: (not p.endswith(".gguf"), p)):
        try:
            formats.detect(folder / path)
        except UnsupportedFormat:
            continue
        return path
    raise UnsupportedFormat("the repository holds no model file the depot can read "
                            f"({', '.join(paths[:8])})")  # fmt: skip


def read_fetched(formats: Formats, folder: Path, files: dict[str, str],
                 weights: str | None = None,
                 kinds: dict[str, LayerKind] | None = None) -> ModelSource:  # fmt: skip
    """Fetched files (path -> sha256 hex, under `folder`) as a model: read by the format they
    are in (a Hugging Face layout, or `weights`/the main file's own format), every file kept
    under its own path, given up to the store and pinned to the sha256 it was checked
    against."""
    hf_format = formats.get("huggingface")
    if weights is None and hf_format.detect(folder):
        source = hf_format.read(folder)
    else:
        main = weights or _main_file(formats, folder, list(files))
        read = formats.read(folder / main)
        made = [f for f in read.files[1:] if f.path is None and f.relpath not in files]
        others = [SourceFile(p, (kinds or {}).get(p) or file_kind(p), path=folder / p)
                  for p in sorted(files) if p != main]  # fmt: skip
        source = ModelSource(read.info, (dataclasses.replace(read.files[0], relpath=main),
                                         *others, *made))  # fmt: skip
    pinned = []
    for f in source.files:
        if f.path is not None:
            relpath = f.path.relative_to(folder).as_posix()
            f = dataclasses.replace(f, expected=f"sha256:{files[relpath]}", owned=True)
        pinned.append(f)
    return ModelSource(source.info, tuple(pinned))


class Mirroring:
    def __init__(self, settings: Settings, mirrors: MirrorStore, intake: Intake,
                 signatures: Signatures, formats: Formats) -> None:  # fmt: skip
        self.settings = settings
        self.mirrors = mirrors
        self.intake = intake
        self.signatures = signatures
        self.formats = formats

    def choose(self, want: Wanted, name: str | None = None) -> Mirror:
        """The mirror `want` goes through: `name`, or the only one of a kind that can."""
        kinds = SCHEMES[want.scheme]
        if name is not None:
            mirror = self.mirrors.mirror(name)
            if mirror.kind not in kinds:
                raise UsageError(f"{want.scheme}:// goes through a {' or '.join(kinds)} mirror; "
                                 f"{mirror.name} is {mirror.kind}")  # fmt: skip
            return mirror
        found = [m for m in self.mirrors.mirrors() if m.kind in kinds]
        if not found:
            raise UsageError(f"no mirror for {want.scheme}://: add one with `depot mirror add "
                             f"NAME --{kinds[0]} URL`")  # fmt: skip
        if len(found) > 1:
            names = ", ".join(m.name for m in found)
            raise UsageError(f"several mirrors can bring {want}: {names}; name one with --mirror")
        return found[0]

    def pull(
        self,
        spec: str,
        *,
        mirror: str | None = None,
        as_name: str | None = None,
        progress: Progress | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Fetch `spec` (`hf://...`, `ollama://...`) through a mirror, then store, scan,
        judge and sign it; returns the version with the gate's status."""
        want = wanted(spec)
        return self.through(self.choose(want, mirror), want, as_name=as_name, progress=progress,
                            actor=actor)  # fmt: skip

    def on_demand(self, repository: str, revision: str, *,
                  actor: str | None = None) -> ModelVersion | None:  # fmt: skip
        """A model a client asked for (a Hugging Face repo id, as it wrote it) and the depot
        lacks, fetched through the first on-demand mirror that has it (Hugging Face Hubs and
        depots, by name); None when no mirror is on demand. ModelNotFound when none has it."""
        want = Wanted("hf", hub.check_repo_id(repository), revision)
        mirrors = [m for m in self.mirrors.mirrors() if m.on_demand and m.kind in SCHEMES["hf"]]
        if not mirrors:
            return None
        missing = []
        for mirror in mirrors:
            try:
                return self.through(mirror, want, actor=actor)
            except ModelNotFound as exc:
                missing.append(f"{mirror.name}: {exc}")
        raise ModelNotFound("; ".join(missing))

    def through(
        self,
        mirror: Mirror,
        want: Wanted,
        *,
        as_name: str | None = None,
        progress: Progress | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        name = as_name or depot_name(want)
        token = secret_from_env(mirror.api_key_env)
        provenance: dict[str, Any] = {"mirror": mirror.name, "upstream": mirror.url,
                                      "kind": mirror.kind, "asked": str(want)}  # fmt: skip
        log.info("pulling %s through %s (%s)", want, mirror.name, mirror.url)
        if mirror.kind == "depot":
            at = "@" if is_digest(want.revision) else ":"
            revision = DEFAULT_TAG if want.revision == _MAIN else want.revision
            url = f"{mirror.url}/{want.repository.lower()}{at}{revision}"
            version = self.intake.pull(url, as_name=name, api_key=token, progress=progress,
                                       actor=actor)  # fmt: skip
            return self.signatures.endorse(version, actor=actor)
        limits = Limits.of(self.settings)
        with self.settings.layout.scratch("mirror-") as tmp:
            folder = Path(tmp) / want.repository.rsplit("/", 1)[-1]  # a folder's name is
            folder.mkdir()  # the model's name when its files give none
            if mirror.kind == "hf":
                got = hub.fetch(mirror.url, want.repository, want.revision, folder, token=token,
                                limits=limits, progress=progress)  # fmt: skip
                provenance["commit"] = got.commit
                origin = f"{mirror.url}/{got.repo}@{got.commit}"
                source = read_fetched(self.formats, folder, dict(got.files))
            else:
                pulled = ollama.fetch(mirror.url, ollama.ollama_name(
                    f"{want.repository}:{want.revision}"), folder, token=token, limits=limits,
                    progress=progress)  # fmt: skip
                provenance["digest"] = pulled.digest
                origin = f"{mirror.url}/{pulled.name}@{pulled.digest}"
                kinds = {p: LayerKind.OTHER for p, _ in pulled.files if p != pulled.weights}
                source = read_fetched(self.formats, folder, dict(pulled.files), pulled.weights,
                                      {**kinds, **{p: LayerKind.LICENSE for p in kinds
                                                   if p.startswith("LICENSE")}})  # fmt: skip
            version = self.intake.import_source(source, name, origin=origin, progress=progress,
                                                actor=actor, action="pull",
                                                details=provenance)  # fmt: skip
        return self.signatures.endorse(version, actor=actor, just_stored=True)
