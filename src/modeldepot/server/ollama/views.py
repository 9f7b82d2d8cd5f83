"""How Ollama's listings and `/api/show` describe a version, from the depot's one read of it
(`ModelVersion`, its GGUF header, its preset): `details`, `model_info`, `capabilities`, the
`parameters` text and a generated Modelfile, in the shapes ollama-python's models and Open
WebUI read (times in UTC with a `Z`, digests as bare hex, every name with its tag)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from modeldepot.customise.presets import Preset
from modeldepot.errors import DepotError
from modeldepot.formats.base import format_params
from modeldepot.registry import ModelVersion
from modeldepot.runtime import Capabilities, Capability
from modeldepot.server.ollama.names import display_name, hex_digest

__all__ = [
    "capabilities",
    "details",
    "model_info",
    "modelfile",
    "parameters_text",
    "timestamp",
    "version_entry",
]

SHORT_ARRAY = 5
"""Arrays longer than this are shown empty in `model_info` unless `verbose` (as Ollama)."""
_HIDDEN_KEYS = ("general.name", "tokenizer.chat_template")


def timestamp(at: datetime | None = None) -> str:
    """RFC 3339 in UTC with microseconds and a `Z`, as Go writes `time.Time`."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expires_at(seconds: float | None) -> str:
    """When an idle engine goes (far in the future for one kept forever)."""
    if seconds is None:
        return timestamp(datetime(9999, 12, 31, tzinfo=UTC))
    return timestamp(datetime.now(UTC) + timedelta(seconds=seconds))


def details(version: ModelVersion, parent: str = "") -> dict[str, Any]:
    info = version.info
    family = info.architecture or ""
    return {
        "parent_model": parent,
        "format": info.format,
        "family": family,
        "families": [family] if family else None,
        "parameter_size": format_params(info.parameters) if info.parameters else "",
        "quantization_level": info.quantization or "",
    }


def capabilities(can: Capabilities) -> list[str]:
    """Ollama's words for what a model does: `embedding` only for models that do nothing
    else (a chat model embeds too, as Ollama's do, but is not listed as an embedder)."""
    found = []
    if Capability.CHAT in can or Capability.COMPLETION in can:
        found.append("completion")
        if Capability.TOOLS in can:
            found.append("tools")
    elif Capability.EMBEDDINGS in can:
        found.append("embedding")
    return found


def parent_of(version: ModelVersion) -> str:
    link = next((x for x in version.lineage if x.relation != "dataset"), None)
    return link.target if link is not None else ""


def version_entry(version: ModelVersion, can: Capabilities) -> dict[str, Any]:
    """An `/api/tags` entry."""
    name = display_name(version.reference)
    return {
        "name": name,
        "model": name,
        "modified_at": timestamp(version.created_at),
        "size": version.size,
        "digest": hex_digest(version.digest),
        "details": details(version, parent_of(version)),
        "capabilities": capabilities(can),
    }


@lru_cache(maxsize=64)
def _header(path: Path, digest: str) -> tuple[tuple[tuple[str, Any], ...], frozenset[str]]:
    """The GGUF header's keys of the weights `digest` (cached: blobs never change), and the
    arrays the header reader only counted."""
    from modeldepot.formats.gguf_header import read_header

    header = read_header(path)
    counted = frozenset(k for k, v in header.fields.items()
                        if k in header.array_lengths and not isinstance(v, list))  # fmt: skip
    return tuple((k, v) for k, v in header.fields.items() if k not in _HIDDEN_KEYS), counted


def model_info(version: ModelVersion, weights: Path | None, *, verbose: bool) -> dict[str, Any]:
    """The GGUF header's keys (arrays longer than 5 shown empty unless `verbose`, and those
    the header reader only counted, such as the vocabulary, always), else what the depot read
    from the model's own files."""
    fields: dict[str, Any] = {}
    counted: frozenset[str] = frozenset()
    weights_digest = next((f.digest for f in version.files if f.kind == "weights"), None)
    if weights is not None and weights_digest is not None:
        try:
            pairs, counted = _header(weights, weights_digest)
            fields = dict(pairs)
        except (DepotError, OSError):
            fields = {}
    if not fields:
        fields = {k: v for k, v in version.info.details.items() if k not in _HIDDEN_KEYS}
    if version.info.parameters:
        fields.setdefault("general.parameter_count", version.info.parameters)
    shown: dict[str, Any] = {}
    for key, value in sorted(fields.items()):
        if key in counted:
            shown[key] = []
        elif isinstance(value, list | tuple):
            shown[key] = list(value) if verbose or len(value) <= SHORT_ARRAY else []
        else:
            shown[key] = value
    return shown


def _go_value(value: Any) -> str:
    """A value as Go's `%#v` prints it in `parameters` (strings quoted, numbers bare)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parameters_text(parameters: dict[str, Any]) -> str:
    """Ollama's `parameters`: one `name value` line per value, the name in 30 columns."""
    lines = []
    for name, value in sorted(parameters.items()):
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{name:<30} {_go_value(item)}")
    return "\n".join(lines)


def _quoted(text: str) -> str:
    """A Modelfile value: bare, or quoted when it needs it (as Ollama's `quote`)."""
    if "\n" in text or text.startswith(" ") or text.endswith(" "):
        return f'"""{text}"""' if '"' in text else f'"{text}"'
    return text


def modelfile(version: ModelVersion, preset: Preset | None) -> str:
    """A Modelfile that makes this model again as a preset (`depot create -f`): the model's own
    template comes with it, so only a preset's is written out."""
    name = display_name(version.reference)
    lines = [
        '# Modelfile generated by "depot" for the Ollama API',
        "# To build a new Modelfile based on this, replace FROM with:",
        f"# FROM {name}",
        "",
        f"FROM {name}",
    ]
    if preset is not None and preset.template is not None:
        lines.append(f'TEMPLATE """{preset.template}"""')
    if preset is not None and preset.system is not None:
        lines.append(f"SYSTEM {_quoted(preset.system)}")
    for key, value in sorted((preset.parameters if preset else {}).items()):
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"PARAMETER {key} {_quoted(str(item))}")
    for text in preset.licenses if preset else ():
        lines.append(f"LICENSE {_quoted(text)}")
    for message in preset.messages if preset else ():
        lines.append(f"MESSAGE {message['role']} {_quoted(message['content'])}")
    return "\n".join(lines) + "\n"
