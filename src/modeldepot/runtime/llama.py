"""The llama.cpp engine: `llama-server`, built from the llama.cpp sources inside the pinned
llama-cpp-python sdist, for GGUF models. It decodes concurrent requests together (continuous
batching over `--parallel` slots), reuses the KV cache of a repeated prompt prefix, constrains
output by JSON schema, parses tool calls in the formats of the templates that define them,
serves embeddings, and applies LoRA adapters loaded at start."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from modeldepot.config import Settings
from modeldepot.runtime.engine import Adapter, Capability, EngineSpec, Launch, ModelFiles
from modeldepot.runtime.process import ModelUnavailable

if TYPE_CHECKING:
    from modeldepot.registry import ModelVersion

__all__ = [
    "ARCHITECTURE_TEMPLATES",
    "LlamaServer",
    "find_llama_program",
    "find_llama_server",
    "llama_cpp_script",
    "memory_estimate",
    "single_weights",
]

# Chat templates llama.cpp has built in, for models whose file carries none: the template the
# architecture is trained with, never llama.cpp's silent default.
ARCHITECTURE_TEMPLATES = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "qwen2": "chatml",
    "qwen3": "chatml",
    "olmo2": "chatml",
    "llama": "llama3",
    "mistral": "mistral-v7",
    "phi3": "phi3",
    "granite": "granite",
    "falcon": "falcon3",
    "deepseek2": "deepseek3",
}


def find_llama_program(name: str, settings: Settings) -> Path:
    """One of llama.cpp's programs (llama-server, llama-quantize, llama-export-lora,
    llama-perplexity), built by `make setup` from the pinned sources: beside the Python
    interpreter, else on PATH; llama-server may be given by DEPOT_LLAMA_SERVER."""
    if name == "llama-server" and settings.llama_server is not None:
        candidates = [settings.llama_server]
    else:
        candidates = [Path(sys.executable).parent / name]
        on_path = shutil.which(name)
        if on_path:
            candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    hint = " or point DEPOT_LLAMA_SERVER at one" if name == "llama-server" else ""
    raise ModelUnavailable(
        f"llama.cpp's {name} is not installed; build it with `make setup` "
        f"(scripts/build-llama-cpp.sh){hint}"
    )


def llama_cpp_script(name: str, settings: Settings) -> Path:
    """One of llama.cpp's Python conversion scripts, from the pinned sources."""
    folder = settings.llama_cpp or Path(sys.executable).parent.parent / "share/modeldepot/llama.cpp"
    script = folder / name
    if not script.is_file():
        raise ModelUnavailable(
            f"llama.cpp's {name} is not at {folder}; run `make setup` "
            "(scripts/build-llama-cpp.sh links the pinned sources there) or set DEPOT_LLAMA_CPP"
        )
    return script


def find_llama_server(settings: Settings) -> Path:
    return find_llama_program("llama-server", settings)


def memory_estimate(version: ModelVersion, context_tokens: int) -> int:
    """Bytes the loaded model will need: weights plus an f16 KV cache for `context_tokens`."""
    info = version.info
    weights = sum(f.size for f in version.files if f.kind == "weights")
    arch = info.architecture or ""
    heads = info.details.get(f"{arch}.attention.head_count") or 0
    kv_heads = info.details.get(f"{arch}.attention.head_count_kv") or heads
    if heads and info.embedding_length and info.layers:
        kv_width = info.embedding_length * kv_heads // heads
        kv_cache = 2 * info.layers * kv_width * context_tokens * 2
    else:
        kv_cache = weights // 4
    return weights + kv_cache + 64 * 1024 * 1024


def single_weights(version: ModelVersion) -> str:
    """The digest of the version's one weights file (ModelUnavailable when it has not one)."""
    weights = [f for f in version.files if f.kind == "weights"]
    if len(weights) != 1:
        raise ModelUnavailable(f"{version.reference} has no single weights file to serve")
    return weights[0].digest


def template_handles_tools(chat_template: str | None) -> bool:
    return bool(chat_template) and "tools" in (chat_template or "")


class LlamaServer:
    name = "llama-server"
    native_n = False  # its `n` reports the usage of the first choice only

    def capabilities(self, version: ModelVersion) -> frozenset[Capability]:
        if version.info.format != "gguf" or version.is_adapter:
            return frozenset()
        return frozenset({Capability.CHAT, Capability.COMPLETION, Capability.EMBEDDINGS,
                          Capability.TOOLS, Capability.ADAPTERS})  # fmt: skip

    def installed(self, settings: Settings) -> bool:
        return True  # built by `make setup`; a missing program is reported when started

    def native_tools(self, version: ModelVersion) -> bool:
        return template_handles_tools(version.info.chat_template)

    def spec(
        self,
        version: ModelVersion,
        capability: Capability,
        files: ModelFiles,
        settings: Settings,
        adapters: tuple[ModelVersion, ...] = (),
    ) -> EngineSpec:
        info = version.info
        if info.format != "gguf":
            raise ModelUnavailable(
                f"{version.reference} is {info.format}; the local engine serves GGUF models "
                "(convert it to GGUF first)"
            )
        per_sequence = min(settings.context, info.context_length or settings.context)
        template = None
        if not info.chat_template:
            template = ARCHITECTURE_TEMPLATES.get(info.architecture or "", "chatml")
        context = per_sequence * settings.parallel
        # Each adapter's GGUF file, loaded off (scale 0) until a request selects it.
        loaded = tuple(Adapter(files.file(a.adapter_file.digest), 0.0, a.digest)
                       for a in adapters if a.adapter_file is not None)  # fmt: skip
        memory = memory_estimate(version, context) + sum(a.size for a in loaded)
        return EngineSpec(
            name=str(version.reference),
            digest=version.digest,
            engine=self.name,
            kind="embed" if capability == Capability.EMBEDDINGS else "generate",
            weights=files.file(single_weights(version)),
            context=context,
            parallel=settings.parallel,
            threads=settings.engine_threads,
            memory=memory,
            device_memory=(("cpu", memory),),
            chat_template=template,
            full_swa_cache=f"{info.architecture}.attention.sliding_window" in info.details,
            adapters=loaded,
        )

    def launch(self, spec: EngineSpec, port: int, settings: Settings) -> Launch:
        command = [
            str(find_llama_server(settings)),
            "--model", str(spec.weights),
            "--alias", spec.name,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--ctx-size", str(spec.context),
            "--parallel", str(spec.parallel),
            "--threads", str(spec.threads),
            "--threads-batch", str(spec.threads),
            "--no-webui",
            "--metrics",
        ]  # fmt: skip
        if spec.chat_template_file is not None:  # a preset's own (Jinja, scanned at admission)
            command += ["--jinja", "--chat-template-file", str(spec.chat_template_file)]
        elif spec.chat_template:
            # A built-in template by name, rendered by llama.cpp itself: with jinja (on by
            # default) the name would be taken for the template's text. Tools for such models
            # go through the depot.
            command += ["--no-jinja", "--chat-template", spec.chat_template]
        else:
            command += ["--jinja"]  # the model's own template, tool-call formats included
        if spec.full_swa_cache:
            command += ["--swa-full"]
        if spec.kind == "embed":
            command += ["--embeddings", "--pooling", "mean"]
        # Every adapter of the base is loaded at its default scale (0: off unless a request
        # selects it with `"lora": [{"id": i, "scale": s}]`), so one engine serves them all.
        for adapter in spec.adapters:
            command += ["--lora-scaled", f"{adapter.path}:{adapter.scale}"]
        return Launch(command)
