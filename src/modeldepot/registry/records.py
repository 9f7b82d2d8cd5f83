"""What the registry hands back: plain frozen values, detached from the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modeldepot.formats.base import ModelInfo
from modeldepot.refs import Reference
from modeldepot.store.manifests import Descriptor

__all__ = [
    "BASE_RELATIONS",
    "OK",
    "PENDING",
    "PRESET",
    "QUARANTINED",
    "RELATIONS",
    "SCANNED",
    "Event",
    "FileRecord",
    "LineageLink",
    "ModelVersion",
    "as_utc",
]

PENDING = "pending"
"""Stored, not yet scanned and admitted: never served, exported or run."""
SCANNED = "scanned"
"""What the registry stores once a version's files were scanned; whether it may be served is
the gate's answer (verify/gate.py), never stored."""
OK = "ok"
"""The gate admits it: served, exported and run."""
QUARANTINED = "quarantined"
"""Refused by the policy (or held): kept and listed, never served, exported or run."""


@dataclass(frozen=True)
class FileRecord:
    path: str
    digest: str
    size: int
    kind: str
    media_type: str

    @classmethod
    def of(cls, layer: Descriptor) -> FileRecord:
        return cls(layer.filepath or "", layer.digest, layer.size, layer.kind.value,
                   layer.media_type)  # fmt: skip


@dataclass(frozen=True)
class LineageLink:
    """`relation` says how this version came from `target`: `dataset` (trained or evaluated
    on it), `preset` (the same files with a system prompt, template or parameters of its own:
    customise/presets.py), or, for a base model, Hugging Face's `base_model_relation` values:
    `finetune`, `adapter`, `quantized`, `merge`, or plain `base_model` when unknown. `target`
    names it as the user gave it; `target_digest` pins it when it is a model of this depot."""

    relation: str
    target: str
    target_digest: str | None = None


BASE_RELATIONS = ("base_model", "finetune", "adapter", "quantized", "merge", "converted")
"""How a version can derive from a base model (Hugging Face's `base_model_relation`)."""
PRESET = "preset"
"""A version that serves its base's files with its own system prompt, template, parameters
or messages (`depot create`)."""
RELATIONS = (*BASE_RELATIONS, PRESET, "dataset")
DERIVATION_FILE = "derivation.json"
"""The file of a version the depot made (fine-tuned, merged, quantised, converted) recording
how: its kind, inputs by digest, parameters, library versions and measurements."""
PROVENANCE_FILE = "provenance.intoto.json"
"""The in-toto provenance statement of a version the depot made."""


@dataclass(frozen=True)
class ModelVersion:
    """One version of one model, as reached through `reference` (a tag or a digest)."""

    reference: Reference
    digest: str
    config_digest: str
    size: int
    info: ModelInfo
    created_at: datetime
    tags: tuple[str, ...] = ()
    source: str | None = None
    files: tuple[FileRecord, ...] = ()
    lineage: tuple[LineageLink, ...] = ()
    status: str = OK
    """PENDING, OK or QUARANTINED, as the gate says now (SCANNED straight from the registry):
    shared by every tag of the same bytes."""
    reasons: tuple[str, ...] = ()
    """Why it is quarantined."""
    exception: dict[str, Any] | None = None
    """The exception to the policy it is served under, if any: actor, reason, at, until,
    covers (the reasons it waives)."""

    @property
    def name(self) -> str:
        return str(self.reference)

    @property
    def layout(self) -> tuple[tuple[str, str], ...]:
        """(path, blob digest) of each file."""
        return tuple((f.path, f.digest) for f in self.files)

    @property
    def admitted(self) -> bool:
        """Scanned and allowed by the gate (today's policy, holds, exceptions)."""
        return self.status == OK

    @property
    def subject(self) -> str:
        """How audit events name it: `name:tag@sha256:...` (the model, and the exact bytes)."""
        tag = self.reference.tag or (self.tags[0] if self.tags else None)
        return str(Reference(self.reference.namespace, self.reference.name, tag, self.digest))

    @property
    def is_adapter(self) -> bool:
        """A LoRA adapter: served on its base model, never alone."""
        return self.info.details.get("general.type") == "adapter" or any(
            f.kind == "adapter" for f in self.files
        )

    @property
    def adapter_of(self) -> LineageLink | None:
        """The base an adapter applies to (its `adapter` lineage link, pinned by digest)."""
        if not self.is_adapter:
            return None
        return next((link for link in self.lineage
                     if link.relation == "adapter" and link.target_digest), None)  # fmt: skip

    @property
    def adapter_file(self) -> FileRecord | None:
        """The adapter's GGUF file, which llama.cpp loads."""
        return next((f for f in self.files if f.kind == "adapter" and f.path.endswith(".gguf")),
                    None) or next((f for f in self.files if f.kind == "weights"
                                   and self.is_adapter), None)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        info = self.info.to_dict()
        return {
            "name": self.reference.repository,
            "tag": self.reference.tag,
            "reference": str(self.reference),
            "digest": self.digest,
            "tags": list(self.tags),
            "size": self.size,
            "created_at": self.created_at.isoformat(),
            "source": self.source,
            **info,
            "files": [vars(f) for f in self.files],
            "lineage": [vars(link) for link in self.lineage],
        }


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any] = field(default_factory=dict)


def as_utc(value: datetime) -> datetime:
    """A timestamp read back from the database (SQLite drops the zone) as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
