from pathlib import Path

import pytest

from builders import CHATML, truncate, write_gguf
from modeldepot.errors import FormatError
from modeldepot.formats import FormatRegistry
from modeldepot.formats.gguf import GGUFFormat, read_gguf_info
from modeldepot.store.manifests import LayerKind


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma3", "mistral", "falcon", "olmo"])
def test_reads_architecture_and_sizes(tmp_path: Path, arch: str) -> None:
    path = write_gguf(tmp_path / f"{arch}.gguf", arch=arch, vocab=40, embedding=8, layers=3)
    info = read_gguf_info(path)
    assert info.format == "gguf"
    assert info.architecture == arch
    assert info.context_length == 256
    assert info.embedding_length == 8
    assert info.layers == 3
    assert info.vocab_size == 40
    assert info.parameters == 40 * 8 + 3 * 8 * 8
    assert info.quantization == "F32"
    assert info.tensor_types == {"F32": 4}
    assert info.license == "Apache-2.0" and info.license_source == "gguf:general.license"
    assert info.chat_template == CHATML


def test_template_becomes_its_own_layer(tmp_path: Path) -> None:
    source = GGUFFormat().read(write_gguf(tmp_path / "m.gguf"))
    kinds = {f.relpath: f.kind for f in source.files}
    assert kinds == {"m.gguf": LayerKind.WEIGHTS, "chat_template.jinja": LayerKind.CHAT_TEMPLATE}


def test_model_without_template_or_licence(tmp_path: Path) -> None:
    info = read_gguf_info(write_gguf(tmp_path / "m.gguf", template=None, licence=None))
    assert info.chat_template is None and info.license is None


@pytest.mark.parametrize("keep", [3, 100, 2000, -10])
def test_truncated_file_is_refused(tmp_path: Path, keep: int) -> None:
    whole = write_gguf(tmp_path / "whole.gguf")
    size = whole.stat().st_size
    cut = truncate(whole, keep if keep > 0 else size + keep, tmp_path / "cut.gguf")
    with pytest.raises(FormatError, match=r"truncated|corrupt|not a readable"):
        FormatRegistry.from_entry_points().read(cut, "gguf")


@pytest.mark.slow
def test_real_smollm2_metadata(smollm2_path: Path) -> None:
    info = read_gguf_info(smollm2_path)
    assert info.architecture == "llama"
    assert info.parameters == 134_515_008
    assert info.context_length == 8192
    assert info.embedding_length == 576
    assert info.layers == 30
    assert info.vocab_size == 49152
    assert info.quantization == "Q4_1"
    assert info.license == "Apache-2.0"
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template
