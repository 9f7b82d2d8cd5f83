import json
import struct
from pathlib import Path

import pytest

from builders import CHATML, write_hf_folder
from modeldepot.errors import FormatError
from modeldepot.formats import Formats
from modeldepot.formats.safetensors import read_header
from modeldepot.store.manifests import LayerKind


def test_folder_metadata_from_config_and_headers(tmp_path: Path) -> None:
    folder = write_hf_folder(tmp_path / "tiny")
    source = Formats.from_entry_points().read(folder)
    info = source.info
    assert info.format == "safetensors"
    assert info.architecture == "LlamaForCausalLM"
    assert info.parameters == 32 * 16 + 16 * 16
    assert info.context_length == 512 and info.embedding_length == 16 and info.layers == 2
    assert info.vocab_size == 32
    assert info.quantization == "F32"  # most parameters are F32
    assert info.tensor_types == {"F32": 1, "F16": 1}
    assert info.license == "MIT" and info.license_source == "README.md"
    assert info.chat_template == CHATML
    kinds = {f.relpath: f.kind for f in source.files}
    assert kinds == {
        "README.md": LayerKind.CARD,
        "config.json": LayerKind.CONFIG,
        "model.safetensors": LayerKind.WEIGHTS,
        "tokenizer.json": LayerKind.TOKENIZER,
        "tokenizer_config.json": LayerKind.TOKENIZER,
    }


def test_licence_recognised_from_licence_file(tmp_path: Path) -> None:
    folder = write_hf_folder(tmp_path / "tiny", licence=None)
    (folder / "LICENSE").write_text("                Apache License\n  Version 2.0, January 2004\n")
    info = Formats.from_entry_points().read(folder).info
    assert (info.license, info.license_source) == ("Apache-2.0", "LICENSE")


def test_truncated_safetensors_is_refused(tmp_path: Path) -> None:
    folder = write_hf_folder(tmp_path / "tiny")
    shard = folder / "model.safetensors"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(FormatError, match="truncated"):
        Formats.from_entry_points().read(folder)


def _header(header: object) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * 4


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x01\x02", "no header"),
        (struct.pack("<Q", 10**12) + b"{}", "claims"),
        (struct.pack("<Q", 4) + b"{nop", "not valid JSON"),
        (struct.pack("<Q", 3) + b" {}", "does not start with"),  # padding the library refuses
        (_header({"w": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}), "unknown dtype"),
        (_header({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}), "negative"),
        (_header({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 400]}}), "truncated"),
        (_header({"w": {"dtype": "F32", "shape": "x"}}), "malformed"),
        (_header({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}), "holds 4"),
        (_header(["not", "an", "object"]), "does not start with"),
    ],
)
def test_broken_headers(tmp_path: Path, raw: bytes, message: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw)
    with pytest.raises(FormatError, match=message):
        read_header(path)


def test_folder_without_model_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(FormatError):
        Formats.from_entry_points().read(tmp_path / "empty")


def test_a_folder_whose_file_names_are_unsafe_is_refused_before_anything_is_stored(
    tmp_path: Path,
) -> None:
    from modeldepot.config import Settings
    from modeldepot.depot import Depot
    from modeldepot.errors import UnsafePath

    folder = write_hf_folder(tmp_path / "tiny")
    (folder / "notes\x1b[2J.txt").write_text("a name that rewrites the terminal\n")
    with Depot(Settings(home=tmp_path / "depot", user="t")) as depot:
        with pytest.raises(UnsafePath, match="control character"):
            depot.intake.import_path(folder, "tiny")
        assert depot.names.versions(include_untagged=True) == []
        assert list(depot.store.digests()) == []
