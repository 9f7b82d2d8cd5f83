"""PyTorch checkpoints (.pt, .pth, .bin, .ckpt): stored, never unpickled.

Unpickling runs whatever code the file names, so this reader only looks at the container: a
zip archive (PyTorch >= 1.6) must have an intact central directory and a `data.pkl` record; a
legacy file must start with a pickle protocol header. What the pickle would do is judged by the
scanners, not here.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import ClassVar

from modeldepot.errors import FormatError, NotFound
from modeldepot.formats.base import ModelInfo, ModelSource, SourceFile
from modeldepot.store.manifests import LayerKind

__all__ = ["PyTorchFormat"]

SUFFIXES = {".pt", ".pth", ".bin", ".ckpt"}


class PyTorchFormat:
    name: ClassVar[str] = "pytorch"

    def detect(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() not in SUFFIXES:
            return False
        with open(path, "rb") as f:
            head = f.read(2)
        return head[:2] == b"PK" or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5)

    def read(self, path: Path) -> ModelSource:
        if not path.is_file():
            raise NotFound(f"{path}: no such file")
        with open(path, "rb") as f:
            head = f.read(2)
        if head == b"PK":
            try:
                with zipfile.ZipFile(path) as archive:
                    names = archive.namelist()
            except (zipfile.BadZipFile, OSError) as exc:
                raise FormatError(f"{path}: damaged PyTorch zip archive ({exc})") from None
            records = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if not records:
                raise FormatError(f"{path}: zip archive without a data.pkl: not a PyTorch file")
            details: dict[str, object] = {"container": "zip", "members": len(names)}
        elif len(head) == 2 and head[0] == 0x80:
            details = {"container": "pickle", "protocol": head[1]}
        else:
            raise FormatError(f"{path}: neither a PyTorch zip archive nor a pickle")
        return ModelSource(
            info=ModelInfo(format="pytorch", name=path.stem, details=details),
            files=(SourceFile(relpath=path.name, kind=LayerKind.WEIGHTS, path=path),),
        )
