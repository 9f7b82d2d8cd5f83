"""Keras models: the architecture config of a `.keras` archive (its `config.json`) or of an
HDF5 `.h5` file (the `model_config` attribute). A Lambda layer carries Python code that runs
when the model is loaded; a module reference outside Keras imports arbitrary code."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any, ClassVar

from modeldepot.scan.findings import Finding, Severity
from modeldepot.scan.item import Item, Nested

__all__ = ["KerasConfigScanner", "KerasH5Scanner", "check_config"]

_HDF5 = b"\x89HDF\r\n\x1a\n"
_KERAS_MODULES = ("keras", "tf_keras", "tensorflow.keras", "tensorflow.python.keras")
_CODE_CLASSES = {"Lambda", "__lambda__", "TFOpLambda", "SlicingOpLambda"}


def _walk(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def check_config(config: Any, where: str) -> list[Finding]:
    out: list[Finding] = []
    for path, node in _walk(config, ""):
        at = f"{where}:{path}" if path else where
        cls = node.get("class_name")
        if cls in _CODE_CLASSES:
            out.append(
                Finding(
                    at,
                    "keras.lambda",
                    Severity.CRITICAL,
                    f"{cls} layer: its Python code runs when the model loads",
                )
            )
        module = node.get("module")  # fmt: skip
        if isinstance(module, str) and module and not module.startswith(_KERAS_MODULES):
            out.append(Finding(at, "keras.module", Severity.HIGH,
                               f"config imports module {module!r} (outside Keras)"))  # fmt: skip
        registered = node.get("registered_name")
        if isinstance(registered, str) and ">" in registered:
            out.append(
                Finding(
                    at,
                    "keras.custom-object",
                    Severity.MEDIUM,
                    f"custom object {registered!r} must be supplied by the loader",
                )
            )
    return out  # fmt: skip


class KerasConfigScanner:
    """`config.json` of a `.keras` archive (the zip scanner hands members over by content)."""

    name: ClassVar[str] = "keras-config"

    def accepts(self, item: Item) -> bool:
        return item.name == "config.json" and b'"class_name"' in item.head

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        del nested
        try:
            config = json.loads(item.read_all())
        except (UnicodeDecodeError, json.JSONDecodeError):
            return []
        return check_config(config, item.location)


class KerasH5Scanner:
    name: ClassVar[str] = "keras-h5"

    def accepts(self, item: Item) -> bool:
        return item.head.startswith(_HDF5)

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        del nested
        import h5py  # reads attributes only; no layer is built

        source: Any = item.path if item.path is not None else io.BytesIO(item.read_all())
        out: list[Finding] = []
        try:
            with h5py.File(source, "r") as h5:
                for attr in ("model_config", "training_config"):
                    raw = h5.attrs.get(attr)
                    if raw is None:
                        continue
                    text = raw.decode() if isinstance(raw, bytes) else str(raw)
                    out += check_config(json.loads(text), f"{item.location}:{attr}")
        except (OSError, ValueError) as exc:
            return [Finding(item.location, "keras.unreadable", Severity.MEDIUM,
                            f"HDF5 file cannot be read ({exc})")]  # fmt: skip
        return out
