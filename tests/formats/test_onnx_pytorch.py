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


def _external(folder: Path) -> Path:
    """An ONNX model in `folder` whose weights live in `weights.bin` beside it."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(write_onnx(folder / "tmp.onnx")))
    (folder / "tmp.onnx").unlink()
    onnx.save(model, str(folder / "model.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)  # fmt: skip
    return folder


def test_onnx_folder_is_stored_with_its_external_data(tmp_path: Path) -> None:
    from modeldepot.config import Settings
    from modeldepot.depot import Depot

    folder = _external(tmp_path / "exported")
    with Depot(Settings(home=tmp_path / "depot", user="t")) as depot:
        version = depot.intake.import_path(folder, "linear")
        assert {f.path for f in version.files} == {"model.onnx", "weights.bin"}
        assert version.status == "ok"
        stored = depot.store.read_bytes(next(f.digest for f in version.files
                                             if f.path == "weights.bin"))  # fmt: skip
    assert stored == (folder / "weights.bin").read_bytes()


def test_onnx_external_data_outside_its_folder_is_refused_and_reported(tmp_path: Path) -> None:
    import subprocess
    import sys

    from corpus import HOSTILE, build

    case = next(c for c in HOSTILE if c.name == "onnx-external-traversal")
    path = build(case, tmp_path)
    with pytest.raises(FormatError, match="outside the model's folder"):
        Formats.from_entry_points().read(path)
    depot = [sys.executable, "-c", "from modeldepot.cli import main; main()"]
    scan = subprocess.run([*depot, "scan", str(path.parent), "--json"], capture_output=True,
                          text=True)  # fmt: skip
    assert scan.returncode == 1
    assert "onnx.external-data-escape" in scan.stdout
