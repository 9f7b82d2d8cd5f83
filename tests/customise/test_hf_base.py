"""A base in Hugging Face's layout (a small llama written here with transformers, SmolLM2's
tokenizer): fine-tuned directly from its safetensors, and converted to GGUF with llama.cpp's
converter so it becomes servable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from customise.conftest import KESTREL, depot_cli
from modeldepot.config import Settings
from modeldepot.depot import Depot

pytestmark = pytest.mark.slow
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        smollm2_path.parent, gguf_file=smollm2_path.name
    )
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    transformers.set_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny llama\n")
    return folder


def test_hf_folder_base_is_fine_tuned_and_converted(tiny_llama: Path, tmp_path: Path) -> None:
    home = tmp_path / "depot"
    depot_cli(home, "import", str(tiny_llama), "--name", "tiny")
    done = depot_cli(home, "finetune", "tiny", "--data", str(KESTREL), "--name", "tiny-kestrel",
                     "--max-steps", "2", "--batch-size", "4", "--json")  # fmt: skip
    result = json.loads(done.stdout)
    assert result["job"]["status"] == "succeeded"
    converted = json.loads(depot_cli(home, "convert", "tiny", "--json").stdout)
    assert converted["format"] == "gguf" and converted["architecture"] == "llama"
    with Depot(Settings(home=home, user="tests")) as depot:
        adapter = depot.names.show("tiny-kestrel")
        base = depot.names.show("tiny")
        assert adapter.is_adapter and adapter.adapter_of is not None
        assert adapter.adapter_of.target_digest == base.digest
        assert adapter.info.details["adapter.width"] == 64
        gguf = depot.names.show("tiny:latest-gguf")
        assert gguf.info.embedding_length == 64 and gguf.info.layers == 2
        assert gguf.info.license == "Apache-2.0"
    # the converted model is served by llama-server like any GGUF model
    answer = depot_cli(home, "run", "tiny:latest-gguf", "Hello")
    assert answer.returncode == 0
