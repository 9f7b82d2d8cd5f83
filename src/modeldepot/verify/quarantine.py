"""Quarantine by hand: hold a version, release one with a recorded reason, list them."""

from __future__ import annotations

from modeldepot.errors import ConflictError, UsageError
from modeldepot.registry import ModelVersion, Registry
from modeldepot.registry.trust import OK, QUARANTINED, Status, TrustStore

__all__ = ["HELD", "Quarantine"]

HELD = "held by hand"


class Quarantine:
    def __init__(self, registry: Registry, actor: str) -> None:
        self.trust = TrustStore(registry)
        self.actor = actor

    def list(self) -> list[Status]:
        return self.trust.quarantined()

    def hold(self, version: ModelVersion, *, reason: str | None = None,
             actor: str | None = None) -> None:  # fmt: skip
        """Quarantine `version` by hand (with the reason, when given, recorded with it)."""
        reasons = [f"{HELD}: {reason.strip()}" if reason and reason.strip() else HELD]
        self.trust.set_status(version.digest, QUARANTINED, reasons, actor=actor or self.actor,
                              action="quarantine", note=reason or None)  # fmt: skip

    def release(self, version: ModelVersion, reason: str, *, actor: str | None = None) -> None:
        if not self.trust.status(version.digest).quarantined:
            raise ConflictError(f"{version.reference} is not quarantined")
        if not reason.strip():
            raise UsageError("give the reason for releasing it (--reason)")
        self.trust.set_status(version.digest, OK, [], actor=actor or self.actor,
                              action="quarantine.release", note=reason)  # fmt: skip
