"""Scanners: what a model file would do when loaded, judged without loading it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modeldepot._lazy import reexports

__all__ = ["SCANNER_VERSION", "Finding", "ScanReport", "Severity", "scan_files", "scan_path"]

if TYPE_CHECKING:
    from modeldepot.scan.findings import Finding, ScanReport, Severity
    from modeldepot.scan.scanners import SCANNER_VERSION, scan_files, scan_path
else:
    __getattr__, __dir__ = reexports(
        __name__,
        {
            "modeldepot.scan.findings": ["Finding", "ScanReport", "Severity"],
            "modeldepot.scan.scanners": ["SCANNER_VERSION", "scan_files", "scan_path"],
        },
    )
