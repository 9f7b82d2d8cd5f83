"""Keras models: the architecture config of a `.keras` archive (its `config.json`) or of an
HDF5 `.h5` file (the `model_config` attribute). A Lambda layer carries Python code that runs
when the model is loaded; a module reference outside Keras imports arbitrary code; inside Keras,
functions other than activations, losses, metrics and the like are what safe_mode bypasses were
made of (`keras.config.enable_unsafe_deserialization`, CVE-2025-9906; `keras.utils.get_file`,
CVE-2025-8747), and some layers load code from elsewhere (TFSMLayer's SavedModel,
CVE-2026-1462; TorchModuleWrapper's pickled module, CVE-2025-49655)."""

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
_EXTERNAL_CLASSES = {"TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}
# Function references a model config may make: the mathematical parts of Keras.
_FUNCTION_NAMESPACES = {"activations", "losses", "metrics", "initializers", "regularizers",
                        "constraints", "ops", "backend", "optimizers", "schedules"}  # fmt: skip
_DANGEROUS_FUNCTIONS = {"enable_unsafe_deserialization", "get_file", "load_model",
                        "load_weights", "set_value", "exec", "eval"}  # fmt: skip


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
        if cls in _EXTERNAL_CLASSES:
            out.append(Finding(at, "keras.external-code", Severity.CRITICAL,
                               f"{cls} layer: loads code or a model from outside the archive "
                               "when the model loads"))  # fmt: skip
        module = node.get("module")
        if cls == "function" and isinstance(module, str) and module.startswith(_KERAS_MODULES):
            name = str(node.get("config") or node.get("registered_name") or "")
            parts = set(module.split("."))
            if name in _DANGEROUS_FUNCTIONS or not parts & _FUNCTION_NAMESPACES:
                severity = Severity.CRITICAL if name in _DANGEROUS_FUNCTIONS else Severity.HIGH
                out.append(Finding(at, "keras.unsafe-function", severity,
                                   f"config calls {module}.{name}, which is no activation, loss "
                                   "or metric (a safe_mode bypass)"))  # fmt: skip
        if cls in _EXTERNAL_CLASSES:
            continue  # its `module` field holds the wrapped object, not an import
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
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return [Finding(item.location, "keras.unreadable", Severity.HIGH,
                            f"a Keras config that is not JSON ({exc}): what cannot be "
                            "inspected is not passed")]  # fmt: skip
        return check_config(config, item.location)


class KerasH5Scanner:
    name: ClassVar[str] = "keras-h5"

    def accepts(self, item: Item) -> bool:
        return item.head.startswith(_HDF5)

    def scan(self, item: Item, nested: Nested) -> list[Finding]:
        del nested
        try:
            import h5py  # reads attributes only; no layer is built
        except ImportError:
            message = (
                "an HDF5 file, not inspected without h5py (pip install "
                "'modeldepot[keras]'): what cannot be inspected is not passed"
            )
            return [Finding(item.location, "keras.not-inspected", Severity.HIGH, message)]

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
            return [Finding(item.location, "keras.unreadable", Severity.HIGH,
                            f"HDF5 file cannot be read as h5py reads it ({exc}): what cannot "
                            "be inspected is not passed")]  # fmt: skip
        return out
