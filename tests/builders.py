"""Tiny but real model files, written by the tests with each format's own writer."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import gguf
import numpy as np

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
)


def write_gguf(
    path: Path,
    *,
    arch: str = "llama",
    vocab: int = 32,
    embedding: int = 16,
    layers: int = 2,
    context: int = 256,
    licence: str | None = "apache-2.0",
    template: str | None = CHATML,
    name: str = "tiny",
    seed: int = 0,
    kind: str | None = None,
) -> Path:
    """A random-weight GGUF of any architecture (recognition, not inference); `kind`:
    `general.type` (`adapter` for a LoRA)."""
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(path, arch)
    writer.add_name(name)
    if kind:
        writer.add_type(kind)
    writer.add_context_length(context)
    writer.add_embedding_length(embedding)
    writer.add_block_count(layers)
    writer.add_vocab_size(vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    if licence:
        writer.add_license(licence)
    if template:
        writer.add_chat_template(template)
    writer.add_token_list([f"t{i}" for i in range(vocab)])
    writer.add_tensor("token_embd.weight", rng.standard_normal((vocab, embedding), np.float32))
    for i in range(layers):
        writer.add_tensor(
            f"blk.{i}.attn_q.weight", rng.standard_normal((embedding, embedding), np.float32)
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_hf_folder(
    folder: Path, *, arch: str = "LlamaForCausalLM", licence: str | None = "mit", seed: int = 0
) -> Path:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "architectures": [arch],
                "model_type": "llama",
                "hidden_size": 16,
                "num_hidden_layers": 2,
                "max_position_embeddings": 512,
                "vocab_size": 32,
                "torch_dtype": "float32",
            }
        )
    )
    save_file(
        {
            "model.embed_tokens.weight": rng.standard_normal((32, 16)).astype(np.float32),
            "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((16, 16)).astype(
                np.float16
            ),
        },
        str(folder / "model.safetensors"),
    )
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHATML}))
    if licence:
        (folder / "README.md").write_text(f"---\nlicense: {licence}\n---\n# Tiny model\n")
    return folder


def write_onnx(path: Path, *, seed: int | None = None) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    values = (
        np.ones((4, 3), dtype=np.float32)
        if seed is None
        else np.random.default_rng(seed).standard_normal((4, 3), np.float32)
    )
    weight = numpy_helper.from_array(values, name="W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "tiny-linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {"license": "mit"})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_torch_zip(path: Path) -> Path:
    """The layout `torch.save` writes (an archive with archive/data.pkl), with a plain-data
    pickle: enough for a container check, and never unpickled by the depot anyway."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"weight": [0.0, 1.0]}, protocol=2))
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/data/0", b"\x00" * 64)
    return path


def truncate(path: Path, keep: int, dest: Path) -> Path:
    dest.write_bytes(path.read_bytes()[:keep])
    return dest


def write_hostile_hf_folder(folder: Path) -> Path:
    """A Hugging Face folder whose `pytorch_model.bin` is a pickle that calls `os.system`
    when loaded (never loaded by the depot: scanned, and quarantined)."""
    from corpus import HOSTILE

    write_hf_folder(folder)
    case = next(c for c in HOSTILE if c.name == "reduce-os-system")
    case.build(folder / "pytorch_model.bin")
    return folder


def write_tiny_llama(folder: Path) -> Path:
    """A random-weight llama in Hugging Face's layout, written by transformers (2 layers,
    width 32): small enough for `from_pretrained` in a test."""
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)  # fmt: skip
    transformers.set_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny llama\n")
    return folder
