"""ONNX models, read with the `onnx` package (graph only; external weights are listed, not
loaded): a `.onnx` file, or a folder holding one `.onnx` file, stored with every external-data
file it names (which must lie inside its folder)."""

from __future__ import annotations

import math
import posixpath
from pathlib import Path
from typing import Any, ClassVar

from modeldepot.errors import FormatError, NotFound, PackageNotInstalled
from modeldepot.formats.base import ModelInfo, ModelSource, SourceFile
from modeldepot.licences import normalize_licence
from modeldepot.store.manifests import LayerKind

__all__ = ["ONNXFormat", "escapes"]


def _signature(values: Any) -> list[dict[str, Any]]:
    import onnx

    out = []
    for value in values:
        tensor = value.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
        elem = onnx.TensorProto.DataType.Name(tensor.elem_type) if tensor.elem_type else None
        out.append({"name": value.name, "type": elem, "shape": dims})
    return out


def escapes(location: str) -> bool:
    """An external-data location that is absolute or climbs out of the model's folder."""
    drive = len(location) > 1 and location[1] == ":"
    if not location or location.startswith(("/", "\\")) or drive:
        return True
    normal = posixpath.normpath(location.replace("\\", "/"))
    return normal == ".." or normal.startswith("../")


def _only_onnx(folder: Path) -> Path | None:
    """The one `.onnx` file at the top of `folder` (None when there are none or several, or
    the folder has other weights: then it is another format's)."""
    found = [p for p in folder.iterdir() if p.suffix.lower() == ".onnx" and p.is_file()]
    others = any(p.suffix.lower() in (".safetensors", ".gguf") for p in folder.iterdir())
    return found[0] if len(found) == 1 and not others else None


class ONNXFormat:
    name: ClassVar[str] = "onnx"

    def detect(self, path: Path) -> bool:
        if path.is_dir():
            return _only_onnx(path) is not None
        return path.is_file() and path.suffix.lower() == ".onnx"

    def read(self, path: Path) -> ModelSource:
        try:
            import onnx
            from google.protobuf.message import DecodeError
        except ImportError:
            raise PackageNotInstalled(
                "reading ONNX models needs the onnx package: pip install 'modeldepot[onnx]'"
            ) from None

        if path.is_dir():
            found = _only_onnx(path)
            if found is None:
                raise FormatError(f"{path}: a folder read as ONNX holds exactly one .onnx file")
            path = found
        if not path.is_file():
            raise NotFound(f"{path}: no such file")
        try:
            model = onnx.load(str(path), load_external_data=False)
        except (DecodeError, ValueError, RuntimeError, OSError) as exc:
            raise FormatError(
                f"{path}: not a readable ONNX model, truncated or corrupt ({exc})"
            ) from None
        graph = model.graph
        if not graph.node and not graph.initializer:
            raise FormatError(f"{path}: ONNX file holds an empty graph (truncated or not ONNX)")
        external: list[str] = []
        parameters = 0
        tensor_types: dict[str, int] = {}
        for init in graph.initializer:
            parameters += math.prod(init.dims)
            dtype = onnx.TensorProto.DataType.Name(init.data_type)
            tensor_types[dtype] = tensor_types.get(dtype, 0) + 1
            if init.data_location == onnx.TensorProto.EXTERNAL:
                location = next((e.value for e in init.external_data if e.key == "location"), None)
                if location and location not in external:
                    external.append(location)
        files = [SourceFile(relpath=path.name, kind=LayerKind.WEIGHTS, path=path)]
        for location in external:
            data = (path.parent / location).resolve()
            if escapes(location) or path.parent.resolve() not in data.parents:
                raise FormatError(f"{path}: external weights {location!r} lie outside the model's "
                                  "folder (refused: CVE-2024-27318, CVE-2024-27319)")  # fmt: skip
            if not data.is_file():
                raise FormatError(f"{path}: external weights {location!r} are missing")
            files.append(SourceFile(relpath=posixpath.normpath(location), kind=LayerKind.WEIGHTS,
                                    path=data))  # fmt: skip
        opsets = {op.domain or "ai.onnx": op.version for op in model.opset_import}
        props = {p.key: p.value for p in model.metadata_props}
        raw_licence = props.get("license") or props.get("licence")
        return ModelSource(
            info=ModelInfo(
                format="onnx",
                architecture=graph.name or None,
                name=graph.name or path.stem,
                parameters=parameters,
                quantization=max(tensor_types, key=lambda k: tensor_types[k])
                if tensor_types
                else None,
                tensor_types=tensor_types,
                license=normalize_licence(raw_licence),
                license_source="onnx:metadata_props" if raw_licence else None,
                details={
                    "ir_version": model.ir_version,
                    "opset": opsets,
                    "producer": " ".join(
                        p for p in (model.producer_name, model.producer_version) if p
                    ),
                    "inputs": _signature(graph.input),
                    "outputs": _signature(graph.output),
                    "nodes": len(graph.node),
                },
            ),
            files=tuple(files),
        )
