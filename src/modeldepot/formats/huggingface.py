"""Hugging Face model folders (config.json + *.safetensors + tokenizer files), and lone
safetensors files. Architecture and sizes come from config.json; parameter count and dtype from
the safetensors headers themselves, never from what a README claims."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from modeldepot.errors import FormatError, NotFound
from modeldepot.formats.base import ModelInfo, ModelSource, SourceFile
from modeldepot.formats.safetensors import is_safetensors, read_header
from modeldepot.licences import licence_from_text, normalize_licence
from modeldepot.store.manifests import LayerKind

__all__ = ["HuggingFaceFormat", "file_kind"]

_TOKENIZER_FILES = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
    "vocab.txt", "merges.txt", "tokenizer.model", "added_tokens.json", "spiece.model",
    "sentencepiece.bpe.model",
}  # fmt: skip
_CONFIG_FILES = {
    "config.json", "generation_config.json", "model.safetensors.index.json",
    "preprocessor_config.json", "processor_config.json", "adapter_config.json",
}  # fmt: skip
_TEMPLATE_FILES = {"chat_template.jinja", "chat_template.json"}
_WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5"}
_FRONT_MATTER_LICENCE = re.compile(r"^license:\s*['\"]?([^'\"\n#]+)", re.M)


def file_kind(relpath: str, adapter: bool = False) -> LayerKind:
    """What a file of a model folder is, by its name (weights, tokenizer, licence, ...)."""
    name = relpath.rsplit("/", 1)[-1]
    lower = name.lower()
    suffix = Path(lower).suffix
    if name in _TEMPLATE_FILES:
        return LayerKind.CHAT_TEMPLATE
    if name in _TOKENIZER_FILES:
        return LayerKind.TOKENIZER
    if name in _CONFIG_FILES:
        return LayerKind.CONFIG
    if suffix in _WEIGHT_SUFFIXES:
        return LayerKind.ADAPTER if adapter else LayerKind.WEIGHTS
    if lower.startswith(("license", "licence", "notice", "copying")) or lower == "use_policy.md":
        return LayerKind.LICENSE
    if lower == "readme.md":
        return LayerKind.CARD
    if suffix == ".py":
        return LayerKind.CODE
    if suffix in {".md", ".txt", ".html", ".pdf"}:
        return LayerKind.DOC
    return LayerKind.OTHER


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FormatError(f"{path}: expected a JSON object")
    return data


def _first(config: dict[str, Any], *keys: str) -> Any:
    scopes = [config]
    if isinstance(config.get("text_config"), dict):
        scopes.append(config["text_config"])
    for scope in scopes:
        for key in keys:
            if scope.get(key) is not None:
                return scope[key]
    return None


def _licence(folder: Path, files: list[SourceFile]) -> tuple[str | None, str | None]:
    readme = folder / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8", errors="replace")
        if text.startswith("---"):
            front = text.split("---", 2)[1] if text.count("---") >= 2 else ""
            match = _FRONT_MATTER_LICENCE.search(front)
            if match:
                return normalize_licence(match.group(1).strip()), "README.md"
    for f in files:
        if f.kind is LayerKind.LICENSE and f.path is not None:
            found = licence_from_text(f.path.read_text(encoding="utf-8", errors="replace"))
            if found:
                return found, f.relpath
    return None, None


class HuggingFaceFormat:
    name: ClassVar[str] = "huggingface"

    def detect(self, path: Path) -> bool:
        if path.is_dir():
            return (path / "config.json").is_file() or any(path.glob("*.safetensors"))
        return path.suffix == ".safetensors" and is_safetensors(path)

    def read(self, path: Path) -> ModelSource:
        if not path.exists():
            raise NotFound(f"{path}: no such file or folder")
        if path.is_file():
            return self._read_files(path.parent, [path], config={})
        entries = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        config_path = path / "config.json"
        config = _load_json(config_path) if config_path.is_file() else {}
        return self._read_files(path, entries, config)

    def _read_files(self, folder: Path, paths: list[Path], config: dict[str, Any]) -> ModelSource:
        adapter = (folder / "adapter_config.json").is_file()
        files = [
            SourceFile(
                relpath=p.relative_to(folder).as_posix(),
                kind=file_kind(p.relative_to(folder).as_posix(), adapter),
                path=p,
            )
            for p in paths
        ]
        shards = [f.path for f in files if f.path is not None and f.path.suffix == ".safetensors"]
        if not shards and not config:
            raise FormatError(f"{folder}: no config.json and no *.safetensors files")
        parameters = 0
        dtypes: Counter[str] = Counter()
        tensor_types: Counter[str] = Counter()
        for shard in shards:
            header = read_header(shard)
            parameters += header.parameters
            dtypes.update(header.dtypes)
            tensor_types.update(t.dtype for t in header.tensors)
        chat_template = None
        tok_config = folder / "tokenizer_config.json"
        if tok_config.is_file():
            template = _load_json(tok_config).get("chat_template")
            chat_template = template if isinstance(template, str) else None
        if (folder / "chat_template.jinja").is_file():
            chat_template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
        licence, licence_source = _licence(folder, files)
        architectures = config.get("architectures") or []
        details: dict[str, Any] = {
            key: config[key]
            for key in ("model_type", "auto_map", "transformers_version", "architectures")
            if key in config
        }
        if adapter:
            details["adapter"] = _load_json(folder / "adapter_config.json")
        return ModelSource(
            info=ModelInfo(
                format="safetensors" if shards else "huggingface",
                architecture=architectures[0] if architectures else config.get("model_type"),
                name=config.get("_name_or_path") or folder.name,
                parameters=parameters if shards else None,
                context_length=_first(
                    config, "max_position_embeddings", "n_positions", "max_seq_len", "n_ctx"
                ),
                embedding_length=_first(config, "hidden_size", "n_embd", "d_model"),
                layers=_first(config, "num_hidden_layers", "n_layer", "num_layers"),
                vocab_size=_first(config, "vocab_size"),
                quantization=(
                    dtypes.most_common(1)[0][0]
                    if dtypes
                    else _first(config, "torch_dtype", "dtype")
                ),
                tensor_types=dict(tensor_types),
                chat_template=chat_template,
                license=licence,
                license_source=licence_source,
                details=details,
            ),
            files=tuple(files),
        )
