import pickle
from pathlib import Path

import pytest

from builders import write_onnx, write_torch_zip
from modeldepot.errors import FormatError
from modeldepot.formats import Formats


def test_onnx_signature_and_opset(tmp_path: Path) -> None:
    source = Formats.from_entry_points().read(write_onnx(tmp_path / "m.onnx"))
    info = source.info
    assert info.format == "onnx"
    assert info.parameters == 12
    assert info.details["opset"] == {"ai.onnx": 17}
    assert (info.license, info.license_source) == ("MIT", "onnx:metadata_props")
    assert info.details["inputs"] == [{"name": "x", "type": "FLOAT", "shape": ["batch", 4]}]
    assert info.details["outputs"] == [{"name": "y", "type": "FLOAT", "shape": ["batch", 3]}]


def test_truncated_onnx_is_refused(tmp_path: Path) -> None:
    whole = write_onnx(tmp_path / "m.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FormatError):
        Formats.from_entry_points().read(tmp_path / "cut.onnx")


def test_pytorch_zip_is_recognised_without_unpickling(tmp_path: Path) -> None:
    source = Formats.from_entry_points().read(write_torch_zip(tmp_path / "model.pt"))
    assert source.info.format == "pytorch"
    assert source.info.details == {"container": "zip", "members": 3}


def test_legacy_pickle_checkpoint_is_stored_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    # Were this unpickled, it would create a file: it must not be.
    marker = tmp_path / "executed"
    payload = pickle.dumps(_Trap(str(marker)), protocol=4)
    path.write_bytes(payload)
    source = Formats.from_entry_points().read(path)
    assert source.info.details == {"container": "pickle", "protocol": 4}
    assert not marker.exists()


def test_damaged_pytorch_zip_is_refused(tmp_path: Path) -> None:
    whole = write_torch_zip(tmp_path / "model.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(whole[:-30])
    with pytest.raises(FormatError, match="damaged"):
        Formats.from_entry_points().read(tmp_path / "cut.pt")


class _Trap:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (self.path, "w"))
