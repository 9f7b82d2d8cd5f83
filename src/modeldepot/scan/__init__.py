"""Scanners: what a model file would do when loaded, judged without loading it."""

from modeldepot.scan.findings import Finding, ScanReport, Severity
from modeldepot.scan.scanners import SCANNER_VERSION, scan_files, scan_path

__all__ = ["SCANNER_VERSION", "Finding", "ScanReport", "Severity", "scan_files", "scan_path"]
