"""What the customise stage makes becomes a version like any import: its files, a record of how
it was made (`derivation.json`: the kind, the inputs by digest, the parameters, the library
versions, the measurements) and an in-toto provenance statement, stored through intake (so it
is scanned and admitted) with its lineage, and signed when the depot has a key."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modeldepot.customise.provenance import Material, statement
from modeldepot.depot import Depot
from modeldepot.errors import UsageError
from modeldepot.formats.base import ModelInfo, ModelSource, SourceFile
from modeldepot.registry import LineageLink, ModelVersion
from modeldepot.registry.records import DERIVATION_FILE, PROVENANCE_FILE
from modeldepot.runtime.engines import StoredFiles
from modeldepot.store import LayerKind

__all__ = [
    "Output",
    "base_files",
    "derivation",
    "servable_base",
    "store_result",
]

log = logging.getLogger("modeldepot.customise")


@dataclass(frozen=True)
class Output:
    relpath: str
    kind: LayerKind
    path: Path


def servable_base(depot: Depot, name: str, *, generative: bool = True) -> ModelVersion:
    """The admitted version `name` names, refused when it cannot be a base (not admitted, an
    adapter, or not a generative model when `generative`)."""
    version = depot.names.show(name)
    reasons = depot.admission.refusals(version)
    if reasons:
        raise UsageError(f"{version.reference} cannot be used: {reasons[0]}")
    if version.is_adapter:
        raise UsageError(
            f"{version.reference} is an adapter; merge it into its base first (depot merge)"
        )
    if generative:
        info = version.info
        arch = (info.architecture or "").lower()
        pooling = info.details.get(f"{info.architecture}.pooling_type")
        if "bert" in arch or pooling not in (None, 0) or arch in ("", "clip", "t5encoder"):
            raise UsageError(
                f"{version.reference} is not a generative model "
                f"({info.architecture or 'unknown architecture'}); fine-tune a chat or text model"
            )
    return version


def base_files(depot: Depot, version: ModelVersion) -> Path:
    """The version's files as a folder (links to re-verified blobs)."""
    return StoredFiles(depot.store, depot.settings.home).folder(version)


def derivation(depot: Depot, name: str) -> dict[str, Any] | None:
    """The `derivation.json` record of a version the depot made, if it is one."""
    version = depot.names.show(name)
    found = next((f for f in version.files if f.path == DERIVATION_FILE), None)
    if found is None:
        return None
    return dict(json.loads(depot.store.read_bytes(found.digest)))


def store_result(
    depot: Depot,
    *,
    kind: str,
    name: str,
    info: ModelInfo,
    outputs: Sequence[Output],
    lineage: Sequence[LineageLink],
    materials: Sequence[Material],
    record: Mapping[str, Any],
    invocation: str,
    started: datetime,
    libraries: Mapping[str, str] | None = None,
    actor: str | None = None,
) -> ModelVersion:
    """Store `outputs` as version `name` with the derivation record and provenance; admit it,
    and sign it with the depot's key when there is one."""
    finished = datetime.now(UTC)
    with depot.settings.layout.scratch() as tmp:
        folder = Path(tmp)
        derived = folder / DERIVATION_FILE
        body = {"kind": kind, **record, "libraries": dict(libraries or {}),
                "started": started.isoformat(), "finished": finished.isoformat(),
                "job": invocation}  # fmt: skip
        derived.write_text(json.dumps(body, indent=2, default=str) + "\n")
        subjects = {o.relpath: o.path for o in outputs}
        parameters = {"name": name, **{k: v for k, v in record.items() if k == "parameters"}}
        provenance = folder / PROVENANCE_FILE
        provenance.write_bytes(statement(
            kind, {**subjects, DERIVATION_FILE: derived}, materials, parameters,
            invocation=invocation, started=started, finished=finished,
            libraries=libraries))  # fmt: skip
        files = [SourceFile(o.relpath, o.kind, path=o.path, owned=True) for o in outputs]
        files += [SourceFile(DERIVATION_FILE, LayerKind.CONFIG, path=derived, owned=True),
                  SourceFile(PROVENANCE_FILE, LayerKind.DOC, path=provenance,
                             owned=True)]  # fmt: skip
        version = depot.intake.import_source(
            ModelSource(dataclasses.replace(info, name=name), tuple(files)), name,
            lineage=lineage, origin=f"{kind}:{invocation}", actor=actor)  # fmt: skip
    version = depot.signatures.endorse(version, actor=actor, just_stored=True)
    log.info("made %s %s by %s (%s): %s", version.name, version.digest, kind, invocation,
             version.status)  # fmt: skip
    return version
