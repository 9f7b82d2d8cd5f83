"""The scanners, and the entry point of every scan.

Scanners are entry points in the `modeldepot.scanners` group; each file (and each member of an
archive) goes to the first scanner that accepts its content. Folders also get the Hugging Face
remote-code checks. Nothing scanned is loaded or executed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from modeldepot.errors import NotFound
from modeldepot.plugins import load, ranked
from modeldepot.scan.findings import Finding, ScanReport, Severity
from modeldepot.scan.item import Item, Scanner
from modeldepot.scan.remote_code import folder_findings
from modeldepot.store.blobs import Progress

__all__ = ["ENTRY_POINT_GROUP", "SCANNER_VERSION", "accepting", "scan_files", "scan_path"]

ENTRY_POINT_GROUP = "modeldepot.scanners"
SCANNER_VERSION = "3"
"""Raised whenever a rule changes, so `depot verify --all` knows old results are stale."""
_ORDER = ("gguf", "jinja", "safetensors", "zip", "tar", "7z", "numpy", "keras-h5", "keras-config",
          "pickle", "onnx", "compressed")  # fmt: skip


@cache
def scanners() -> tuple[Scanner, ...]:
    found: list[Scanner] = load(ENTRY_POINT_GROUP)
    return tuple(ranked(found, _ORDER))


def accepting(item: Item) -> Scanner | None:
    for scanner in scanners():
        if scanner.accepts(item):
            return scanner
    return None


def scan_item(item: Item) -> list[Finding]:
    scanner = accepting(item)
    if scanner is None:
        if item.suffix in {".pt", ".pth", ".ckpt"} and item.size:
            return [
                Finding(
                    item.location,
                    "pytorch.unrecognised-container",
                    Severity.HIGH,
                    "a PyTorch-named file that is neither a zip archive nor a pickle",
                )
            ]
        return []  # fmt: skip
    try:
        return scanner.scan(item, scan_item)
    except (OSError, ValueError, MemoryError) as exc:
        return [Finding(item.location, "scan.incomplete", Severity.HIGH,
                        f"{scanner.name} scanner could not finish ({exc})")]  # fmt: skip


def scan_files(
    files: Iterable[tuple[Path, str]], target: str, progress: Progress | None = None
) -> ScanReport:
    """Scan files given as (path on disk, location to report); `progress` hears each file's
    size once it is scanned."""
    report = ScanReport(target)
    for path, location in files:
        report.scanned.append(location)
        item = Item.from_path(path, location)
        report.findings += scan_item(item)
        if progress:
            progress(item.size)
    return report


def scan_path(path: Path, progress: Progress | None = None) -> ScanReport:
    """Scan a file, or every file of a folder (links are not followed out of it)."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"{path}: no such file or folder")
    if path.is_file():
        return scan_files([(path, path.name)], str(path), progress)
    files = sorted(
        Path(root) / name
        for root, dirs, names in os.walk(path)
        for name in names
        if not Path(root, name).is_symlink() and ".git" not in Path(root).parts
    )
    report = scan_files(((p, f"{path.name}/{p.relative_to(path).as_posix()}") for p in files),
                        str(path), progress)  # fmt: skip
    report.findings += folder_findings(path, files, path.name)
    return report
