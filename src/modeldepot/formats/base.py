"""What a model format reader produces, and the interface every reader implements."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from modeldepot.paths import check_relpath
from modeldepot.store.manifests import LayerKind

__all__ = ["ModelFormat", "ModelInfo", "ModelSource", "SourceFile", "format_params"]


@dataclass(frozen=True)
class ModelInfo:
    """Metadata read from a model's own files. Unknown values stay None."""

    format: str
    architecture: str | None = None
    name: str | None = None
    parameters: int | None = None
    context_length: int | None = None
    embedding_length: int | None = None
    layers: int | None = None
    vocab_size: int | None = None
    quantization: str | None = None
    """The file's overall quantisation or precision (e.g. Q4_1, Q4_K_M, BF16, F32)."""
    tensor_types: dict[str, int] = field(default_factory=dict)
    """Tensor data type -> number of tensors of that type."""
    chat_template: str | None = None
    license: str | None = None
    license_source: str | None = None
    """Where the licence was read (e.g. `gguf:general.license`, `README.md`)."""
    details: dict[str, Any] = field(default_factory=dict)
    """Format-specific extras: ONNX opset and graph signature, GGUF organisation, ..."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class SourceFile:
    """One file of a model: on disk (`path`) or produced by the reader (`data`), under its
    path in the model's folder (`relpath`, checked by `modeldepot.paths` as it is made: a file
    name from outside that could leave the folder is refused before anything is stored)."""

    relpath: str
    kind: LayerKind
    path: Path | None = None
    data: bytes | None = None
    digest: str | None = None
    """Set when the bytes are already in the store under this digest."""
    expected: str | None = None
    """A digest the bytes must have (a packaged model's pinned file)."""
    owned: bool = False
    """The file is a result the depot made, given up to the store (moved in, not copied)."""

    def __post_init__(self) -> None:
        check_relpath(self.relpath)


@dataclass(frozen=True)
class ModelSource:
    info: ModelInfo
    files: tuple[SourceFile, ...]


class ModelFormat(Protocol):
    """A reader for one model format. Built-in readers and plugins register the same way:
    an entry point in the `modeldepot.formats` group naming a class with this shape."""

    name: ClassVar[str]

    def detect(self, path: Path) -> bool:
        """True when `path` (a file or folder) is in this format, judged by its content."""
        ...

    def read(self, path: Path) -> ModelSource:
        """Validate `path` and read its metadata; raise FormatError when it is damaged."""
        ...


def format_params(count: int | None) -> str:
    """A parameter count the way model names write it: 135M, 1.2B."""
    if count is None:
        return "?"
    for scale, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if count >= scale:
            value = count / scale
            return f"{value:.0f}{suffix}" if value >= 100 else f"{value:.1f}{suffix}"
    return str(count)
