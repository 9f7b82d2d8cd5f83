"""Modelfiles read as Ollama's parser reads them, and every path in one checked: a file that
could leave the Modelfile's folder is refused in one line before anything is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeldepot.customise.modelfile import (
    MAX_MODELFILE,
    engine_fields,
    parse_modelfile,
    read_modelfile,
)
from modeldepot.errors import UnsafePath, UsageError


def test_every_instruction_is_read(tmp_path: Path) -> None:
    (tmp_path / "lora.gguf").write_bytes(b"GGUF")
    text = '''# a preset
from smollm2:latest
PARAMETER temperature 0.2
PARAMETER stop <|im_end|>
parameter stop "###"
PARAMETER num_predict 64
PARAMETER num_gpu 99
SYSTEM You are terse. # not a comment
TEMPLATE """{% for m in messages %}{{ m.content }}
{% endfor %}"""
ADAPTER ./lora.gguf
LICENSE "MIT"
LICENSE """two
lines"""
MESSAGE user Is this a question?
MESSAGE assistant Yes.
'''
    parsed = parse_modelfile(text, tmp_path)
    assert parsed.base == "smollm2:latest" and parsed.base_file is None
    assert parsed.parameters == {"temperature": 0.2, "stop": ["<|im_end|>", "###"],
                                 "num_predict": 64}  # fmt: skip
    assert parsed.system == "You are terse. # not a comment"
    assert parsed.template == "{% for m in messages %}{{ m.content }}\n{% endfor %}"
    assert parsed.adapter == (tmp_path / "lora.gguf").resolve()
    assert parsed.licenses == ("MIT", "two\nlines")
    assert parsed.messages == ({"role": "user", "content": "Is this a question?"},
                               {"role": "assistant", "content": "Yes."})  # fmt: skip
    assert engine_fields(parsed.parameters) == {"temperature": 0.2, "stop": ["<|im_end|>", "###"],
                                                "max_tokens": 64}  # fmt: skip


def test_from_a_file_beside_it(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    (tmp_path / "Modelfile").write_text("FROM ./model.gguf\n")
    assert read_modelfile(tmp_path / "Modelfile").base_file == (tmp_path / "model.gguf").resolve()


@pytest.mark.parametrize("value", ["../../etc/passwd", "/etc/passwd", "./../secret.gguf",
                                   "a/../../b.gguf", "C:\\models\\x.gguf"])  # fmt: skip
@pytest.mark.parametrize("instruction", ["FROM", "ADAPTER"])
def test_a_path_that_leaves_its_folder_is_refused(tmp_path: Path, instruction: str,
                                                   value: str) -> None:  # fmt: skip
    folder = tmp_path / "here"
    folder.mkdir()
    (tmp_path / "secret.gguf").write_bytes(b"GGUF")
    text = f"{instruction} {value}\n" + ("FROM smollm2\n" if instruction == "ADAPTER" else "")
    with pytest.raises(UnsafePath, match=f"{instruction} path .* is refused"):
        parse_modelfile(text, folder)


def test_a_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "here"
    folder.mkdir()
    (tmp_path / "secret.gguf").write_bytes(b"GGUF")
    (folder / "model.gguf").symlink_to(tmp_path / "secret.gguf")
    with pytest.raises(UnsafePath, match="leads out of the Modelfile's folder"):
        parse_modelfile("FROM ./model.gguf\n", folder)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SYSTEM hi\n", "no FROM line"),
        ("FROM a\nFROM b\n", "one FROM only"),
        ("FROM a\nRUN rm -rf /\n", "line 2: command must be one of"),
        ("FROM a\nREQUIRES 0.9\n", "REQUIRES is not supported"),
        ("FROM a\nPARAMETER temperature hot\n", "'temperature' must be a number"),
        ("FROM a\nPARAMETER nonsense 1\n", "unknown parameter 'nonsense'"),
        ("FROM a\nMESSAGE tool hi\n", "message role must be one of"),
        ('FROM a\nSYSTEM """never closed\n', 'the """ quote is never closed'),
        ("FROM a\nPARAMETER\n", "PARAMETER needs a name and a value"),
        ("FROM ./missing.gguf\n", "no such file beside the Modelfile"),
    ],
)
def test_what_is_wrong_is_said_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as refused:
        parse_modelfile(text, tmp_path)
    assert "\n" not in str(refused.value)


def test_a_huge_modelfile_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "Modelfile"
    path.write_bytes(b"FROM a\nSYSTEM " + b"x" * (MAX_MODELFILE + 10))
    with pytest.raises(UsageError, match="larger than"):
        read_modelfile(path)
    path.write_bytes(b"\xff\xfe\x00\x00garbage" + bytes(range(256)))
    with pytest.raises(UsageError):
        read_modelfile(path)
