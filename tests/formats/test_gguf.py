from pathlib import Path

import gguf
import pytest

from builders import CHATML, truncate, write_gguf
from modeldepot.errors import FormatError
from modeldepot.formats import Formats
from modeldepot.formats.gguf import GGUFFormat, read_gguf_info
from modeldepot.formats.gguf_header import read_header
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
        Formats.from_entry_points().read(cut, "gguf")


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


def _reference_fields(path: Path) -> dict[str, object]:
    """What the gguf package's own GGUFReader says, for comparison."""
    reader = gguf.GGUFReader(path, "r")
    out: dict[str, object] = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        out[key] = len(field.data) if len(field.data) > 64 else field.contents()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_header_reader_agrees_with_gguf_reader(
    tmp_path: Path, smollm2_path: Path, which: str
) -> None:
    path = smollm2_path if which == "smollm2" else write_gguf(tmp_path / "t.gguf", arch="qwen2")
    header = read_header(path)
    reference = gguf.GGUFReader(path, "r")
    assert header.fields == _reference_fields(path)
    assert [t.name for t in header.tensors] == [t.name for t in reference.tensors]
    assert [t.offset for t in header.tensors] == [int(t.data_offset) for t in reference.tensors]
    assert [t.n_bytes for t in header.tensors] == [int(t.n_bytes) for t in reference.tensors]
    assert [t.type_name for t in header.tensors] == [t.tensor_type.name for t in reference.tensors]
    assert header.end == path.stat().st_size


def test_every_cut_through_the_header_is_a_format_error(tmp_path: Path) -> None:
    whole = write_gguf(tmp_path / "w.gguf").read_bytes()
    data_start = read_header(tmp_path / "w.gguf").data_offset
    cut = tmp_path / "cut.gguf"
    for keep in range(0, data_start + 64, 7):
        cut.write_bytes(whole[:keep])
        with pytest.raises(FormatError):
            read_gguf_info(cut)


def test_garbage_counts_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.gguf"
    path.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (2**40).to_bytes(8, "little") * 2)
    with pytest.raises(FormatError, match="implausible"):
        read_gguf_info(path)
    path.write_bytes(b"GGUF" + (1).to_bytes(4, "little") + bytes(16))
    with pytest.raises(FormatError, match="version 1"):
        read_gguf_info(path)
