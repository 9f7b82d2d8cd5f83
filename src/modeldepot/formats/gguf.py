"""GGUF files (llama.cpp, Ollama), read with the `gguf` package maintained beside llama.cpp."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from modeldepot.errors import FormatError, NotFound
from modeldepot.formats.base import ModelInfo, ModelSource, SourceFile
from modeldepot.licences import normalize_licence
from modeldepot.store.manifests import LayerKind

__all__ = ["GGUFFormat", "read_gguf_info"]

MAGIC = b"GGUF"
_SKIP_DETAILS = ("tokenizer.ggml.", "tokenizer.chat_template", "general.license")


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return None
    if len(field.data) > 64:  # a large array (token lists): only its length is useful here
        return len(field.data)
    return field.contents()


def _file_type_name(value: Any) -> str | None:
    import gguf

    if value is None:
        return None
    try:
        name = str(gguf.LlamaFileType(int(value)).name)
    except ValueError:
        return f"type-{value}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def read_gguf_info(path: Path) -> ModelInfo:
    """Read and validate a GGUF file's metadata without loading its weights."""
    import gguf

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    try:
        reader = gguf.GGUFReader(path, "r")
    except (ValueError, IndexError, KeyError, OSError, EOFError, OverflowError) as exc:
        raise FormatError(
            f"{path}: not a readable GGUF file, truncated or corrupt ({exc})"
        ) from None
    end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    if end > size:
        raise FormatError(
            f"{path}: truncated GGUF file: its tensors need {end} bytes but the file has {size}"
        )

    arch = _field(reader, "general.architecture")
    if isinstance(arch, bytes):
        arch = arch.decode()

    def arch_field(suffix: str) -> Any:
        return _field(reader, f"{arch}.{suffix}") if arch else None

    tensor_types = Counter(t.tensor_type.name for t in reader.tensors)
    vocab = arch_field("vocab_size")
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    if vocab is None and tokens is not None:
        vocab = len(tokens.data)
    quant = _file_type_name(_field(reader, "general.file_type"))
    if quant is None and tensor_types:
        quant = tensor_types.most_common(1)[0][0]
    raw_licence = _field(reader, "general.license") or _field(reader, "general.license.name")
    details: dict[str, Any] = {}
    for key in reader.fields:
        if key.startswith("GGUF.") or key.startswith(_SKIP_DETAILS):
            continue
        value = _field(reader, key)
        if isinstance(value, (str, int, float, bool)) or (
            isinstance(value, list) and len(value) <= 64
        ):
            details[key] = value
    return ModelInfo(
        format="gguf",
        architecture=arch,
        name=_field(reader, "general.name"),
        parameters=sum(int(t.n_elements) for t in reader.tensors),
        context_length=arch_field("context_length"),
        embedding_length=arch_field("embedding_length"),
        layers=arch_field("block_count"),
        vocab_size=vocab,
        quantization=quant,
        tensor_types=dict(tensor_types),
        chat_template=_field(reader, "tokenizer.chat_template"),
        license=normalize_licence(raw_licence),
        license_source="gguf:general.license" if raw_licence else None,
        details=details,
    )


class GGUFFormat:
    name: ClassVar[str] = "gguf"

    def detect(self, path: Path) -> bool:
        if not path.is_file():
            return False
        with open(path, "rb") as f:
            return f.read(4) == MAGIC

    def read(self, path: Path) -> ModelSource:
        info = read_gguf_info(path)
        files = [SourceFile(relpath=path.name, kind=LayerKind.WEIGHTS, path=path)]
        if info.chat_template:
            files.append(
                SourceFile(
                    relpath="chat_template.jinja",
                    kind=LayerKind.CHAT_TEMPLATE,
                    data=info.chat_template.encode(),
                )
            )
        return ModelSource(info=info, files=tuple(files))
