"""Manifests: what a model version is made of, in the OCI / CNCF ModelPack layout.

A version is an OCI image manifest (artifactType `application/vnd.cncf.model.manifest.v1+json`)
whose config blob is a ModelPack model config and whose layers are the model's files, each a
raw blob annotated with its path inside the model folder. Any ModelPack-aware tool can read it;
the `io.modeldepot.kind` annotation adds the finer kind modeldepot uses (chat template,
tokenizer, licence...). The manifest is itself stored as a blob, so its digest names the version
and pins every byte of it.

A manifest is checked as it is parsed, wherever it comes from (an import, another depot, an
OCI registry): digests well formed, sizes not negative, and every layer's file path a safe
relative path (`modeldepot.paths`), each naming one file only. A hostile manifest is refused
here, before any of its files is fetched or written.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modeldepot.errors import FormatError, UnsafePath
from modeldepot.paths import check_relpath
from modeldepot.refs import is_digest

__all__ = [
    "ANNOTATION_FILEPATH",
    "ANNOTATION_KIND",
    "ARTIFACT_TYPE",
    "CONFIG_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "Descriptor",
    "LayerKind",
    "Manifest",
    "ModelConfig",
    "layer_media_type",
]

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.cncf.model.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.cncf.model.config.v1+json"
ANNOTATION_FILEPATH = "org.cncf.model.filepath"
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_KIND = "io.modeldepot.kind"


class LayerKind(enum.StrEnum):
    WEIGHTS = "weights"
    ADAPTER = "adapter"
    CONFIG = "config"
    TOKENIZER = "tokenizer"
    CHAT_TEMPLATE = "chat-template"
    LICENSE = "license"
    CARD = "card"
    DOC = "doc"
    CODE = "code"
    DATASET = "dataset"
    OTHER = "other"


_MEDIA_TYPES = {
    LayerKind.WEIGHTS: "application/vnd.cncf.model.weight.v1.raw",
    LayerKind.ADAPTER: "application/vnd.cncf.model.weight.v1.raw",
    LayerKind.CONFIG: "application/vnd.cncf.model.weight.config.v1.raw",
    LayerKind.TOKENIZER: "application/vnd.cncf.model.weight.config.v1.raw",
    LayerKind.CHAT_TEMPLATE: "application/vnd.cncf.model.weight.config.v1.raw",
    LayerKind.LICENSE: "application/vnd.cncf.model.doc.v1.raw",
    LayerKind.CARD: "application/vnd.cncf.model.doc.v1.raw",
    LayerKind.DOC: "application/vnd.cncf.model.doc.v1.raw",
    LayerKind.CODE: "application/vnd.cncf.model.code.v1.raw",
    LayerKind.DATASET: "application/vnd.cncf.model.dataset.v1.raw",
    LayerKind.OTHER: "application/vnd.cncf.model.doc.v1.raw",
}


def layer_media_type(kind: LayerKind) -> str:
    return _MEDIA_TYPES[kind]


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="allow")


class Descriptor(_Wire):
    media_type: str = Field(alias="mediaType")
    digest: str
    size: int = Field(ge=0)
    annotations: dict[str, str] | None = None

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not is_digest(value):
            raise ValueError("expected sha256: and 64 lowercase hex digits")
        return value

    @property
    def filepath(self) -> str | None:
        return (self.annotations or {}).get(ANNOTATION_FILEPATH)

    @property
    def kind(self) -> LayerKind:
        raw = (self.annotations or {}).get(ANNOTATION_KIND, LayerKind.OTHER.value)
        try:
            return LayerKind(raw)
        except ValueError:
            return LayerKind.OTHER

    @classmethod
    def for_layer(cls, digest: str, size: int, path: str, kind: LayerKind) -> Descriptor:
        return cls(
            media_type=layer_media_type(kind),
            digest=digest,
            size=size,
            annotations={
                ANNOTATION_FILEPATH: path,
                ANNOTATION_TITLE: path.rsplit("/", 1)[-1],
                ANNOTATION_KIND: kind.value,
            },
        )


class Manifest(_Wire):
    schema_version: int = Field(2, alias="schemaVersion")
    media_type: str = Field(MANIFEST_MEDIA_TYPE, alias="mediaType")
    artifact_type: str = Field(ARTIFACT_TYPE, alias="artifactType")
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str] | None = None

    @field_validator("layers")
    @classmethod
    def _paths(cls, layers: list[Descriptor]) -> list[Descriptor]:
        """Every layer names its file with a safe relative path, one file per path (no two
        alike, none a folder of another)."""
        seen: set[str] = set()
        folders: set[str] = set()
        for layer in layers:
            if layer.filepath is None:
                raise UnsafePath(f"layer {layer.digest} has no {ANNOTATION_FILEPATH} annotation")
            path = check_relpath(layer.filepath, f"the manifest's {ANNOTATION_FILEPATH}")
            parents = {path.rsplit("/", i)[0] for i in range(1, path.count("/") + 1)}
            if path in seen or path in folders or parents & seen:
                raise UnsafePath(f"the manifest's {ANNOTATION_FILEPATH} {path!r} is refused: "
                                 "it collides with another file's path (the same, or one "
                                 "a folder of the other)")  # fmt: skip
            seen.add(path)
            folders |= parents
        return layers

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse and check a manifest: FormatError when it is not one, UnsafePath when a file
        path in it is not a safe relative path."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the manifest"
            raise FormatError(f"not a valid model manifest: {where}: {first['msg']}") from None

    @property
    def size(self) -> int:
        """Bytes of the model's files (the layers)."""
        return sum(layer.size for layer in self.layers)

    def digests(self) -> set[str]:
        """Every blob this manifest needs, its config included."""
        return {self.config.digest, *(layer.digest for layer in self.layers)}


class ModelConfig(_Wire):
    """The ModelPack model config (`descriptor`, `config`, `modelfs`), plus modeldepot's full
    metadata under `io.modeldepot.metadata` so a manifest carries everything between depots."""

    descriptor: dict[str, Any]
    config: dict[str, Any]
    modelfs: dict[str, Any]
    metadata: dict[str, Any] = Field(default_factory=dict, alias="io.modeldepot.metadata")

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()
