"""What the registry hands back: plain frozen values, detached from the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modeldepot.formats.base import ModelInfo
from modeldepot.refs import Reference
from modeldepot.store.manifests import Descriptor

__all__ = ["RELATIONS", "Event", "FileRecord", "LineageLink", "ModelVersion", "as_utc"]


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
    on it), or, for a base model, Hugging Face's `base_model_relation` values: `finetune`,
    `adapter`, `quantized`, `merge`, or plain `base_model` when unknown. `target` names it as
    the user gave it; `target_digest` pins it when it is a model of this depot."""

    relation: str
    target: str
    target_digest: str | None = None


RELATIONS = ("base_model", "finetune", "adapter", "quantized", "merge", "dataset")


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

    @property
    def name(self) -> str:
        return str(self.reference)

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
