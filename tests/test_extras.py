"""Optional features come as extras (`onnx`, `keras`, `evaluation`); without one, what needs
it says which extra to install, and a scanner that cannot inspect a file blocks it instead of
passing it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from builders import write_onnx
from corpus import HOSTILE, build
from modeldepot.errors import PackageNotInstalled
from modeldepot.evaluation.stats import sacrebleu
from modeldepot.formats import Formats
from modeldepot.scan import Severity, scan_path


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> object:
    def hide(*modules: str) -> None:
        for name in modules:
            monkeypatch.setitem(sys.modules, name, None)  # `import name` raises ImportError

    return hide


def test_onnx_without_its_extra(tmp_path: Path, without: object) -> None:
    model = write_onnx(tmp_path / "m.onnx")
    without("onnx")  # type: ignore[operator]
    with pytest.raises(PackageNotInstalled, match=r"modeldepot\[onnx\]"):
        Formats.from_entry_points().read(model)
    report = scan_path(model)
    codes = {f.code: f.severity for f in report.findings}
    assert codes.get("onnx.not-inspected") == Severity.HIGH


def test_keras_h5_without_its_extra(tmp_path: Path, without: object) -> None:
    case = next(c for c in HOSTILE if c.name == "h5-lambda")
    path = build(case, tmp_path)
    without("h5py")  # type: ignore[operator]
    report = scan_path(path)
    codes = {f.code: f.severity for f in report.findings}
    assert codes.get("keras.not-inspected") == Severity.HIGH


def test_bleu_without_its_extra(without: object) -> None:
    without("sacrebleu")  # type: ignore[operator]
    with pytest.raises(PackageNotInstalled, match=r"modeldepot\[evaluation\]"):
        sacrebleu()


def test_training_stack_only_when_fine_tuning(tmp_path: Path, without: object) -> None:
    """Serving and the rest of the depot never import torch, transformers or peft; without the
    `train` extra, fine-tuning says which extra to install."""
    import subprocess

    probe = (
        "import sys, modeldepot.cli, modeldepot.server.app, modeldepot.customise.finetune, "
        "modeldepot.customise.transforms; "
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"
    from modeldepot.customise.training import gguf_architectures

    without("peft")  # type: ignore[operator]
    with pytest.raises(PackageNotInstalled, match=r"modeldepot\[train\]"):
        gguf_architectures()
