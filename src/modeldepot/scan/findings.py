"""What a scan reports: findings with a code, a severity, a message and a location."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = ["Finding", "ScanReport", "Severity"]


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r} (one of {names})") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, order=True)
class Finding:
    location: str
    code: str
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": str(self.severity),
            "message": self.message,
            "location": self.location,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            location=str(data["location"]),
            code=str(data["code"]),
            severity=Severity.parse(str(data["severity"])),
            message=str(data["message"]),
        )


@dataclass
class ScanReport:
    """The findings for one file or folder, and which files were looked at."""

    target: str
    findings: list[Finding] = field(default_factory=list)
    scanned: list[str] = field(default_factory=list)

    def blocking(self, at_least: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity >= at_least]

    @property
    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "scanned": self.scanned,
            "findings": [f.to_dict() for f in sorted(self.findings)],
        }
