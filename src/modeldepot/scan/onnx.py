"""ONNX models: external data that reaches outside the model's folder (an absolute path or
`..`: CVE-2024-27318, CVE-2024-27319 let `onnx.load` read, or the hub's loader write, files
anywhere), external data that is missing, and a file that claims to be ONNX but does not parse as
`onnx.load` parses it (blocking: what cannot be read as its loader reads it is never passed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from modeldepot.formats.onnx import escapes
from modeldepot.scan.findings import Finding, Severity
from modeldepot.scan.item import Item, Nested

__all__ = ["OnnxScanner"]

# ModelProto starts with ir_version (field 1, varint) then, usually, producer_name or graph.
_FIELD_TAGS = {0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A, 0x42, 0x4A, 0x52, 0x72, 0xA2}


def _tensors(model: Any) -> Iterator[Any]:
    """Every tensor of the model that may hold external data: initialisers, sparse ones, and
    tensors in node attributes (subgraphs included)."""
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors
                if attribute.HasField("g"):
                    graphs.append(attribute.g)
                graphs.extend(attribute.graphs)


class OnnxScanner:
    name: ClassVar[str] = "onnx"

    def accepts(self, item: Item) -> bool:
        head = item.head
        looks = len(head) > 2 and head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] in _FIELD_TAGS
        return looks or item.suffix == ".onnx"

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        del nested
        try:
            import onnx
            from google.protobuf.message import DecodeError
        except ImportError:
            message = (
                "an ONNX file, not inspected without the onnx package (pip install "
                "'modeldepot[onnx]'): what cannot be inspected is not passed"
            )
            return [Finding(item.location, "onnx.not-inspected", Severity.HIGH, message)]

        try:
            model = onnx.load_model_from_string(item.read_all())
        except (DecodeError, ValueError, RuntimeError) as exc:
            return [Finding(item.location, "onnx.unparsable", Severity.HIGH,
                            f"claims to be ONNX but does not parse as onnx.load parses it "
                            f"({exc})")]  # fmt: skip
        if not model.graph.node and not model.graph.initializer:
            if item.suffix != ".onnx":
                return []  # a protobuf of another kind: not ONNX after all
            message = "an ONNX file with an empty graph (truncated or not ONNX)"
            return [Finding(item.location, "onnx.empty", Severity.HIGH, message)]
        found: list[Finding] = []
        seen: set[str] = set()
        folder = item.path.parent if item.path is not None else None
        for tensor in _tensors(model):
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            if location in seen:
                continue
            seen.add(location)
            if escapes(location):
                found.append(Finding(
                    item.location, "onnx.external-data-escape", Severity.CRITICAL,
                    f"tensor {tensor.name!r} takes its data from {location!r}, outside the "
                    "model's folder: loading it reads (or the hub's loader writes) that path "
                    "(CVE-2024-27318, CVE-2024-27319)",
                ))  # fmt: skip
            elif folder is not None and not (folder / location).is_file():
                message = f"external data {location!r} is not beside the model"
                found.append(
                    Finding(item.location, "onnx.external-data-missing", Severity.MEDIUM, message)
                )
        return found
