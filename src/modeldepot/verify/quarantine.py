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

    def hold(self, version: ModelVersion, *, actor: str | None = None) -> None:
        self.trust.set_status(version.digest, QUARANTINED, [HELD], actor=actor or self.actor,
                              action="quarantine")  # fmt: skip

    def release(self, version: ModelVersion, reason: str, *, actor: str | None = None) -> None:
        if not self.trust.status(version.digest).quarantined:
            raise ConflictError(f"{version.reference} is not quarantined")
        if not reason.strip():
            raise UsageError("give the reason for releasing it (--reason)")
        self.trust.set_status(version.digest, OK, [], actor=actor or self.actor,
                              action="quarantine.release", note=reason)  # fmt: skip
