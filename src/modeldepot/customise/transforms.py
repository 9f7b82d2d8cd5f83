"""New versions made from stored ones with llama.cpp's tools, each with full lineage, its
derivation record and provenance, scanned, admitted and signed like any import:

- `merge`: an adapter folded into its base (llama-export-lora), relation `merge`;
- `quantize`: a GGUF version re-encoded (llama-quantize), relation `quantized`, with the
  perplexity of source and result on the text the project ships;
- `convert`: a Hugging Face folder (safetensors) to GGUF (convert_hf_to_gguf.py), relation
  `converted`, so it becomes servable by llama-server; or, `to="hf"`, a GGUF version to a
  Hugging Face folder (dequantised by transformers' GGUF loader), relation `converted`, so vLLM
  can serve it.
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import UTC, datetime
from pathlib import Path

from modeldepot.customise import llamacpp
from modeldepot.customise.examples import BUILTIN_TEMPLATES
from modeldepot.customise.provenance import Material
from modeldepot.customise.results import Output, base_files, servable_base, store_result
from modeldepot.depot import Depot
from modeldepot.errors import UsageError
from modeldepot.formats.gguf import read_gguf_info
from modeldepot.formats.huggingface import HuggingFaceFormat
from modeldepot.refs import Reference
from modeldepot.registry import LineageLink, ModelVersion
from modeldepot.runtime.llama import ARCHITECTURE_TEMPLATES
from modeldepot.store import LayerKind

__all__ = ["CONVERT_TARGETS", "CONVERT_TYPES", "HF_TYPES", "convert", "merge", "quantize"]

CONVERT_TYPES = ("f16", "bf16", "f32", "q8_0", "auto")
HF_TYPES = ("f32", "f16", "bf16")
"""What a Hugging Face folder made from GGUF is saved as (f32 keeps the dequantised values)."""
CONVERT_TARGETS = ("gguf", "hf")
_UNQUANTISED = {"F32", "F16", "BF16"}


def _invocation(kind: str) -> str:
    return f"{kind[:2]}-{secrets.token_hex(6)}"


def _target(name: str | None, default: str) -> str:
    ref = Reference.parse(name or default)
    if ref.digest is not None:
        raise UsageError(f"{name!r}: name the new model NAME[:TAG], without a digest")
    return str(ref)


def _weights(depot: Depot, version: ModelVersion) -> tuple[str, Path]:
    weights = [f for f in version.files if f.kind == LayerKind.WEIGHTS]
    if version.info.format != "gguf" or len(weights) != 1:
        raise UsageError(f"{version.reference} is not a single GGUF file")
    return weights[0].path, depot.store.verified_path(weights[0].digest)


def _materials(*versions: tuple[str, ModelVersion]) -> list[Material]:
    return [Material(role, f"depot:{v.reference}", v.digest) for role, v in versions]


def merge(depot: Depot, adapter_name: str, *, name: str | None = None, scale: float = 1.0,
          actor: str | None = None) -> ModelVersion:  # fmt: skip
    """The adapter folded into its base: one GGUF that serves at the base's speed."""
    adapter = depot.names.show(adapter_name)
    link = adapter.adapter_of
    if link is None or adapter.adapter_file is None:
        raise UsageError(f"{adapter.reference} is not an adapter of a stored base")
    refusals = depot.admission.refusals(adapter)
    if refusals:
        raise UsageError(f"{adapter.reference} cannot be used: {refusals[0]}")
    repository = Reference.parse(link.target).repository
    base = servable_base(depot, f"{repository}@{link.target_digest}", generative=False)
    started = datetime.now(UTC)
    target = _target(name, f"{adapter.reference.repository}-merged:{adapter.reference.tag}")
    filename, base_path = _weights(depot, base)
    adapter_path = depot.store.verified_path(adapter.adapter_file.digest)
    with depot.settings.layout.scratch() as tmp:
        out = Path(tmp) / f"{Reference.parse(target).name}.gguf"
        llamacpp.export_lora(base_path, adapter_path, out, depot.settings, scale)
        info = read_gguf_info(out)
        info = info.__class__(**{**info.to_dict(), "license": base.info.license,
                                 "license_source": f"base:{link.target}"})  # fmt: skip
        lineage = [LineageLink("merge", link.target, base.digest),
                   LineageLink("merge", str(adapter.reference), adapter.digest),
                   *(d for d in adapter.lineage if d.relation == "dataset")]  # fmt: skip
        return store_result(
            depot, kind="merge", name=target, info=info,
            outputs=[Output(out.name, LayerKind.WEIGHTS, out)], lineage=lineage,
            materials=_materials(("base", base), ("adapter", adapter)),
            record={"base": {"reference": link.target, "digest": base.digest},
                    "adapter": {"reference": str(adapter.reference), "digest": adapter.digest},
                    "parameters": {"scale": scale, "source_file": filename}},
            invocation=_invocation("merge"), started=started, actor=actor,
        )  # fmt: skip


def quantize(depot: Depot, source_name: str, kind: str, *, name: str | None = None,
             actor: str | None = None) -> ModelVersion:  # fmt: skip
    """The version re-encoded as `kind` (Q8_0, Q4_K_M, ...), with the perplexity of both."""
    types = llamacpp.quantization_types(depot.settings)
    wanted = kind.upper()
    if wanted not in types:
        raise UsageError(f"{kind!r} is not a quantisation type llama.cpp knows; "
                         f"try one of {', '.join(types)}")  # fmt: skip
    source = servable_base(depot, source_name, generative=False)
    filename, source_path = _weights(depot, source)
    started = datetime.now(UTC)
    target = _target(name, f"{source.reference.repository}:{wanted.lower()}")
    requantize = (source.info.quantization or "").upper() not in _UNQUANTISED
    with depot.settings.layout.scratch() as tmp:
        stem = filename.rsplit(".gguf", 1)[0]
        out = Path(tmp) / f"{stem}.{wanted}.gguf"
        llamacpp.quantize(source_path, out, wanted, depot.settings, requantize=requantize)
        before = llamacpp.perplexity(source_path, depot.settings)
        after = llamacpp.perplexity(out, depot.settings)
        info = read_gguf_info(out)
        info = info.__class__(**{**info.to_dict(), "license": source.info.license,
                                 "license_source": source.info.license_source})  # fmt: skip
        record = {
            "source": {"reference": str(source.reference), "digest": source.digest,
                       "quantization": source.info.quantization},
            "parameters": {"type": wanted, "requantized": requantize},
            "perplexity": {
                "text": llamacpp.PERPLEXITY_TEXT, "context": llamacpp.PERPLEXITY_CONTEXT,
                "source": {"value": before[0], "stderr": before[1]},
                "result": {"value": after[0], "stderr": after[1]},
            },
        }  # fmt: skip
        lineage = [LineageLink("quantized", str(source.reference), source.digest),
                   *(d for d in source.lineage if d.relation == "dataset")]  # fmt: skip
        return store_result(
            depot, kind="quantize", name=target, info=info,
            outputs=[Output(out.name, LayerKind.WEIGHTS, out)], lineage=lineage,
            materials=_materials(("source", source)), record=record,
            invocation=_invocation("quantize"), started=started, actor=actor,
        )  # fmt: skip


def convert(depot: Depot, source_name: str, *, to: str = "gguf", outtype: str | None = None,
            name: str | None = None, actor: str | None = None) -> ModelVersion:  # fmt: skip
    """A Hugging Face folder version as one GGUF file (`to="gguf"`, `outtype` f16 by default),
    or a GGUF version as a Hugging Face folder (`to="hf"`, f32 by default)."""
    if to not in CONVERT_TARGETS:
        raise UsageError(f"--to {to!r}: one of {', '.join(CONVERT_TARGETS)}")
    if to == "hf":
        return _to_hf(depot, source_name, outtype or "f32", name, actor)
    outtype = outtype or "f16"
    if outtype not in CONVERT_TYPES:
        raise UsageError(f"--type {outtype!r}: one of {', '.join(CONVERT_TYPES)}")
    source = servable_base(depot, source_name, generative=False)
    if source.info.format not in ("huggingface", "safetensors"):
        raise UsageError(
            f"{source.reference} is {source.info.format}; depot convert reads Hugging Face "
            "folders (safetensors)"
        )
    started = datetime.now(UTC)
    target = _target(name, f"{source.reference.repository}:{source.reference.tag}-gguf")
    folder = base_files(depot, source)
    with depot.settings.layout.scratch() as tmp:
        out = Path(tmp) / f"{Reference.parse(target).name}.{outtype.upper()}.gguf"
        llamacpp.convert_hf(folder, out, outtype, depot.settings)
        info = read_gguf_info(out)
        if info.license is None and source.info.license:
            info = info.__class__(**{**info.to_dict(), "license": source.info.license,
                                     "license_source": source.info.license_source})  # fmt: skip
        outputs = [Output(out.name, LayerKind.WEIGHTS, out)]
        return store_result(
            depot, kind="convert", name=target, info=info, outputs=outputs,
            lineage=[LineageLink("converted", str(source.reference), source.digest)],
            materials=_materials(("source", source)),
            record={"source": {"reference": str(source.reference), "digest": source.digest},
                    "parameters": {"outtype": outtype}},
            invocation=_invocation("convert"), started=started, actor=actor,
        )  # fmt: skip


def _to_hf(depot: Depot, source_name: str, outtype: str, name: str | None,
           actor: str | None) -> ModelVersion:  # fmt: skip
    """A GGUF version as a Hugging Face folder, dequantised with transformers' GGUF loader.
    A model whose file has no chat template gets the one llama-server would use for it."""
    from modeldepot.customise import training  # torch, only when converting

    if outtype not in HF_TYPES:
        raise UsageError(
            f"--type {outtype!r}: a Hugging Face folder is one of {', '.join(HF_TYPES)}"
        )
    source = servable_base(depot, source_name)
    filename, _ = _weights(depot, source)
    started = datetime.now(UTC)
    target = _target(name, f"{source.reference.repository}:{source.reference.tag}-hf")
    architecture = source.info.architecture or ""
    template = None
    if not source.info.chat_template:
        template = BUILTIN_TEMPLATES.get(ARCHITECTURE_TEMPLATES.get(architecture, "chatml"))
    base = training.Base(base_files(depot, source), filename, architecture, template)
    with depot.settings.layout.scratch() as tmp:
        out = Path(tmp) / "hf"
        training.export_hf(base, out, outtype)
        made = HuggingFaceFormat().read(out)
        info = dataclasses.replace(
            made.info, license=source.info.license, license_source=source.info.license_source
        )
        outputs = [Output(f.relpath, f.kind, f.path) for f in made.files if f.path is not None]
        return store_result(
            depot, kind="convert", name=target, info=info, outputs=outputs,
            lineage=[LineageLink("converted", str(source.reference), source.digest),
                     *(d for d in source.lineage if d.relation == "dataset")],
            materials=_materials(("source", source)),
            record={"source": {"reference": str(source.reference), "digest": source.digest,
                               "quantization": source.info.quantization},
                    "parameters": {"to": "hf", "dtype": outtype, "source_file": filename},
                    "chat_template": "the source's own" if template is None else
                    "llama.cpp " + ARCHITECTURE_TEMPLATES.get(architecture, "chatml")},
            invocation=_invocation("convert"), started=started,
            libraries=training.library_versions(), actor=actor,
        )  # fmt: skip
