"""The read model of a version: one dictionary, rendered by every surface (`depot list/show
--json`, `depot import/pull --json`, `/api/models`, the web UI), and the labelled rows of its
human description (`depot show`)."""

from __future__ import annotations

from typing import Any

from modeldepot.formats.base import format_params
from modeldepot.registry import ModelVersion

__all__ = ["describe_rows", "human_size", "version_view"]


def version_view(v: ModelVersion) -> dict[str, Any]:
    """Everything the registry holds about `v`, with its status as the gate gives it: why it
    is refused, or the exception to the policy it is served under."""
    return {
        **v.to_dict(),
        "name": v.reference.repository,
        "model_name": v.info.name,
        "status": v.status,
        "reasons": list(v.reasons),
        "quarantined": v.status == "quarantined",
        "exception": v.exception,
    }


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def describe_rows(v: ModelVersion) -> list[tuple[str, str]]:
    """(label, value) rows that describe `v` to a person."""
    info = v.info
    rows = [
        ("digest", v.digest),
        ("tags", ", ".join(v.tags) or "(untagged)"),
        ("format", info.format),
        ("architecture", info.architecture or "unknown"),
        ("name", info.name or "unknown"),
    ]
    if info.parameters:
        rows.append(("parameters", f"{format_params(info.parameters)} ({info.parameters:,})"))
    for label, value in (
        ("context length", info.context_length),
        ("embedding size", info.embedding_length),
        ("layers", info.layers),
        ("vocabulary", info.vocab_size),
    ):
        if value is not None:
            rows.append((label, f"{value:,}" if isinstance(value, int) else str(value)))
    if info.quantization:
        types = ", ".join(f"{k} x{n}" for k, n in sorted(info.tensor_types.items()))
        rows.append(
            ("quantisation", f"{info.quantization}" + (f" (tensors: {types})" if types else ""))
        )
    licence = info.license or "not stated in the files"
    if info.license_source:
        licence += f" (from {info.license_source})"
    rows.append(("licence", licence))
    if info.chat_template:
        rows.append(("chat template", f"yes, {len(info.chat_template):,} characters"))
    elif info.format == "gguf":
        rows.append(("chat template", "none in the file (use completion-style prompts)"))
    rows.append(("size", human_size(v.size)))
    if v.source:
        rows.append(("source", v.source))
    rows.append(("stored", v.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")))
    for key in ("opset", "inputs", "outputs", "container"):
        if key in info.details:
            rows.append((key, str(info.details[key])))
    return rows
