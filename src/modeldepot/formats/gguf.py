"""GGUF files (llama.cpp, Ollama): metadata, tensor types and the chat template."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import gguf

from modeldepot.errors import FormatError, NotFound
from modeldepot.formats.base import ModelInfo, ModelSource, SourceFile
from modeldepot.formats.gguf_header import MAGIC, read_header
from modeldepot.licences import normalize_licence
from modeldepot.store.manifests import LayerKind

__all__ = ["GGUFFormat", "read_gguf_info"]

_SKIP_DETAILS = ("tokenizer.ggml.", "tokenizer.chat_template", "general.license")


def _file_type_name(value: Any) -> str | None:
    if value is None:
        return None
    try:
        name = str(gguf.LlamaFileType(int(value)).name)
    except ValueError:
        return f"type-{value}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def read_gguf_info(path: Path) -> ModelInfo:
    """Read and validate a GGUF file's metadata without loading its weights."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    header = read_header(path)
    if header.end > size:
        raise FormatError(
            f"{path}: truncated GGUF file: its tensors need {header.end} bytes "
            f"but the file has {size}"
        )
    fields = header.fields
    arch = fields.get("general.architecture")

    def arch_field(suffix: str) -> Any:
        return fields.get(f"{arch}.{suffix}") if arch else None

    tensor_types = Counter(t.type_name for t in header.tensors)
    vocab = arch_field("vocab_size") or header.array_lengths.get("tokenizer.ggml.tokens")
    quant = _file_type_name(fields.get("general.file_type"))
    if quant is None and tensor_types:
        quant = tensor_types.most_common(1)[0][0]
    raw_licence = fields.get("general.license") or fields.get("general.license.name")
    long_arrays = {
        k for k, v in fields.items() if k in header.array_lengths and not isinstance(v, list)
    }
    details = {
        key: value
        for key, value in fields.items()
        if not key.startswith(_SKIP_DETAILS) and key not in long_arrays
    }
    template = fields.get("tokenizer.chat_template")
    if fields.get("general.type") == "adapter":
        # The width the adapter's A matrices take in: the model width it was made for.
        lora_a = next((t for t in header.tensors if t.name.endswith(".lora_a")
                       and (".attn_q." in t.name or ".attn_k." in t.name)), None)  # fmt: skip
        if lora_a is not None and lora_a.shape:
            details["adapter.width"] = int(lora_a.shape[0])
    return ModelInfo(
        format="gguf",
        architecture=arch,
        name=fields.get("general.name"),
        parameters=sum(t.n_elements for t in header.tensors),
        context_length=arch_field("context_length"),
        embedding_length=arch_field("embedding_length"),
        layers=arch_field("block_count"),
        vocab_size=vocab,
        quantization=quant,
        tensor_types=dict(tensor_types),
        chat_template=template if isinstance(template, str) else None,
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
