"""The vLLM plugin on the engine seam, without vLLM: which engine a version goes to (the one
rule in `Engines`), what the plugin asks vLLM to do, and the clear errors when it cannot. The
real vLLM behind `depot serve` is tested in tests/server/test_vllm.py."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path

import numpy as np
import pytest

from builders import write_gguf, write_hf_folder
from modeldepot.config import Settings
from modeldepot.depot import Depot
from modeldepot.errors import UsageError
from modeldepot.formats.base import ModelInfo, ModelSource, SourceFile
from modeldepot.registry import LineageLink, ModelVersion
from modeldepot.runtime import Capability, Engines, ModelUnavailable, StoredFiles
from modeldepot.runtime.llama import LlamaServer
from modeldepot.runtime.scorer import ScoringEngine
from modeldepot.runtime.sentence import SentenceEngine
from modeldepot.runtime.vllm import VllmEngine
from modeldepot.store import LayerKind


def _engines(settings: Settings | None) -> Engines:
    return Engines([LlamaServer(), VllmEngine(), ScoringEngine(), SentenceEngine()], settings)


@pytest.fixture
def vllm_python(tmp_path: Path) -> Path:
    """A stand-in for `make vllm`'s program (the plugin only looks for it here)."""
    program = tmp_path / "vllm-python"
    program.write_text("#!/bin/sh\nexit 1\n")
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    return program


def _hf_llama(folder: Path, *, template: bool = True, dtype: str = "float32") -> Path:
    """A Hugging Face folder of a generative model, with the sizes the KV cache depends on."""
    write_hf_folder(folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(num_attention_heads=4, num_key_value_heads=2, torch_dtype=dtype)
    (folder / "config.json").write_text(json.dumps(config))
    if not template:
        (folder / "tokenizer_config.json").write_text("{}")
    return folder


def _peft(folder: Path, rank: int) -> Path:
    """A PEFT LoRA adapter folder, as PEFT saves one."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    config = {"peft_type": "LORA", "r": rank, "lora_alpha": 16, "target_modules": ["q_proj"]}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    tensor = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    save_file({tensor: np.zeros((rank, 16), np.float32)}, str(folder / "adapter_model.safetensors"))
    return folder


def _peft_adapter(depot: Depot, base: ModelVersion, folder: Path, rank: int = 24) -> ModelVersion:
    """A PEFT folder imported as an adapter of `base` (`depot import --relation adapter`)."""
    link = LineageLink("adapter", str(base.reference), base.digest)
    return depot.intake.import_path(_peft(folder, rank), "hf-tuned", lineage=[link])


def _finetuned(depot: Depot, base: ModelVersion, folder: Path) -> ModelVersion:
    """An adapter as `depot finetune` stores one: its GGUF, and its PEFT folder under peft/."""
    peft = _peft(folder / "peft", 8)
    gguf = write_gguf(folder / "adapter.gguf", kind="adapter")
    files = (SourceFile("adapter.gguf", LayerKind.ADAPTER, path=gguf),
             SourceFile("peft/adapter_model.safetensors", LayerKind.ADAPTER,
                        path=peft / "adapter_model.safetensors"),
             SourceFile("peft/adapter_config.json", LayerKind.CONFIG,
                        path=peft / "adapter_config.json"))  # fmt: skip
    info = ModelInfo(format="gguf", details={"general.type": "adapter"})
    link = LineageLink("adapter", str(base.reference), base.digest)
    return depot.intake.import_source(ModelSource(info, files), "hf-finetuned", lineage=[link],
                                      origin="finetune:test")  # fmt: skip


def test_hugging_face_folders_go_to_vllm_when_it_is_installed(
    depot: Depot, tmp_path: Path, vllm_python: Path
) -> None:
    hf = depot.intake.import_path(_hf_llama(tmp_path / "hf"), "hf")
    gguf = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "chat")
    installed = _engines(dataclasses.replace(depot.settings, vllm_python=vllm_python))
    can = installed.capabilities(hf)
    generation = (Capability.CHAT, Capability.COMPLETION, Capability.TOOLS, Capability.ADAPTERS)
    assert can.engines == dict.fromkeys(generation, "vllm")
    assert can.native_n and not can.native_tools  # tools through the depot's JSON schema
    assert installed.capabilities(gguf).engines[Capability.CHAT] == "llama-server"
    adapter = _peft_adapter(depot, hf, tmp_path / "adapter")
    assert installed.capabilities(adapter, hf).to_list() == ["chat", "completion", "tools"]
    # without a chat template vLLM completes but does not chat
    bare = depot.intake.import_path(_hf_llama(tmp_path / "bare", template=False), "bare")
    assert installed.capabilities(bare).to_list() == ["adapters", "completion"]

    # not installed: listed nowhere, and asking for it says what to do
    missing = _engines(dataclasses.replace(depot.settings, vllm_python=tmp_path / "absent"))
    assert not missing.capabilities(hf).servable
    files = StoredFiles(depot.store, depot.settings.home)
    with pytest.raises(ModelUnavailable, match=r"install the vllm engine \(`make vllm`\)"):
        missing.spec(hf, Capability.CHAT, files, depot.settings)
    assert missing.capabilities(gguf).engines[Capability.CHAT] == "llama-server"


def test_depot_engine_format_names_the_engine_whatever_is_installed(
    depot: Depot, tmp_path: Path
) -> None:
    hf = depot.intake.import_path(_hf_llama(tmp_path / "hf"), "hf")
    gguf = depot.intake.import_path(write_gguf(tmp_path / "m.gguf"), "chat")
    env = {"DEPOT_HOME": str(depot.settings.home), "DEPOT_VLLM_PYTHON": str(tmp_path / "absent")}
    forced = Settings.from_env({**env, "DEPOT_ENGINE_SAFETENSORS": "vllm"})
    assert forced.engine_for("safetensors") == "vllm"
    engines = _engines(forced)
    assert engines.capabilities(hf).engines[Capability.CHAT] == "vllm"
    spec = engines.spec(hf, Capability.CHAT, StoredFiles(depot.store, forced.home), forced)
    with pytest.raises(ModelUnavailable, match="vLLM is not installed: `make vllm`"):
        engines.get("vllm").launch(spec, 8000, forced)
    # generation follows the setting; what other engines do for the format stays theirs
    gguf_to_vllm = _engines(Settings.from_env({**env, "DEPOT_ENGINE_GGUF": "vllm"}))
    can = gguf_to_vllm.capabilities(gguf)
    assert Capability.CHAT not in can and can.engines[Capability.SCORING] == "scorer"
    with pytest.raises(UsageError, match="DEPOT_ENGINE_GGUF='nothing': no engine of that name"):
        _engines(Settings.from_env({**env, "DEPOT_ENGINE_GGUF": "nothing"}))
    with pytest.raises(UsageError, match="DEPOT_DEVICE='tpu'"):
        Settings.from_env({**env, "DEPOT_DEVICE": "tpu"})


def test_launch_asks_vllm_for_the_stored_precision_the_cache_and_the_adapters(
    depot: Depot, tmp_path: Path, vllm_python: Path
) -> None:
    settings = dataclasses.replace(depot.settings, vllm_python=vllm_python, threads=2,
                                   parallel=2, context=256)  # fmt: skip
    hf = depot.intake.import_path(_hf_llama(tmp_path / "hf"), "hf")
    adapter = _peft_adapter(depot, hf, tmp_path / "adapter", rank=24)
    tuned = _finetuned(depot, hf, tmp_path / "tuned")
    engines = _engines(settings)
    files = StoredFiles(depot.store, settings.home)
    spec = engines.spec(hf, Capability.CHAT, files, settings, (adapter, tuned))
    assert spec.engine == "vllm" and spec.dtype == "float32" and spec.parallel == 2
    # keys and values of 2 layers x 2 KV heads x 4 dimensions, f32, for 2 x 256 tokens
    assert spec.kv_cache >= 2 * 2 * 2 * 4 * 4 * 512
    assert [(a.name, a.rank) for a in spec.adapters] == [(adapter.digest, 24), (tuned.digest, 8)]
    assert spec.adapters[1].path.name == "peft"  # the folder that holds the PEFT files
    assert all((a.path / "adapter_model.safetensors").is_file() for a in spec.adapters)
    # a request names the adapter as its model; the base, or anything else, is the base
    assert spec.selection(adapter.digest) == {"model": adapter.digest}
    assert spec.selection(hf.digest) == {"model": "hf:latest"}

    launch = engines.get("vllm").launch(spec, 8123, settings)
    argv, env = launch.argv, dict(launch.environment or {})
    assert argv[:3] == [str(vllm_python), "-m", "vllm.entrypoints.openai.api_server"]

    def flag(name: str) -> str:
        return argv[argv.index(name) + 1]

    assert flag("--model") == str(spec.weights) and (spec.weights / "config.json").is_file()
    assert flag("--served-model-name") == "hf:latest" and flag("--port") == "8123"
    assert flag("--host") == "127.0.0.1" and flag("--dtype") == "float32"
    assert flag("--max-model-len") == "256" and flag("--max-num-seqs") == "2"
    assert flag("--kv-cache-memory-bytes") == str(spec.kv_cache)
    assert "--enforce-eager" in argv and "--trust-remote-code" not in argv
    assert flag("--max-lora-rank") == "32"  # the smallest slot holding rank 24
    modules = argv[argv.index("--lora-modules") + 1 :][:2]
    assert [json.loads(m) for m in modules] == [{"name": a.name, "path": str(a.path)}
                                                for a in spec.adapters]  # fmt: skip
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1"
    assert env["VLLM_CPU_OMP_THREADS_BIND"].count(",") == 1  # two threads, bound
    assert env["VLLM_CACHE_ROOT"].startswith(str(settings.home))
    assert launch.start_timeout >= 600  # a start under load takes minutes

    # the GPU path: one setting away
    gpu = dataclasses.replace(settings, device="cuda:1")
    on_gpu = engines.spec(hf, Capability.CHAT, files, gpu)
    assert on_gpu.device_memory[0][0] == "cuda:1" and on_gpu.memory < spec.memory
    launched = engines.get("vllm").launch(on_gpu, 8123, gpu)
    assert "--enforce-eager" not in launched.argv
    assert dict(launched.environment or {})["CUDA_VISIBLE_DEVICES"] == "1"


def test_a_bf16_folder_runs_in_bf16(depot: Depot, tmp_path: Path, vllm_python: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    folder = _hf_llama(tmp_path / "hf", dtype="bfloat16")
    save_file({"model.embed_tokens.weight": torch.zeros((32, 16), dtype=torch.bfloat16)},
              str(folder / "model.safetensors"))  # fmt: skip
    settings = dataclasses.replace(depot.settings, vllm_python=vllm_python)
    hf = depot.intake.import_path(folder, "hf")
    assert hf.info.quantization == "BF16"
    spec = _engines(settings).spec(hf, Capability.COMPLETION,
                                   StoredFiles(depot.store, settings.home), settings)  # fmt: skip
    assert spec.dtype == "bfloat16"
