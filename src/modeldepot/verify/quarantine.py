"""Quarantine by hand: hold a version (its reason beside the policy's), release one with a
recorded reason, list what is held and what is served under an exception.

Releasing a version the policy refuses records an exception (who, why, until when, which
reasons it waives, the findings it was granted on) that the gate honours everywhere, until it
expires or a rescan finds something else. Releasing a version held by hand alone lifts the
hold."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from modeldepot.errors import ConflictError, UsageError
from modeldepot.registry import ModelVersion, Registry
from modeldepot.registry.trust import HAND, INTEGRITY, ExceptionGrant, TrustStore
from modeldepot.spans import parse_span
from modeldepot.verify.gate import Gate, Verdict

__all__ = ["DEFAULT_EXCEPTION", "Entry", "Quarantine", "parse_until"]

log = logging.getLogger("modeldepot.verify")

DEFAULT_EXCEPTION = timedelta(days=30)
"""How long an exception lasts when `--until` is not given."""


def parse_until(text: str | None, now: datetime) -> datetime:
    """When an exception ends: a span from now (`12h`, `30d`, `8w`), an ISO date (the end of
    that day, UTC) or time; DEFAULT_EXCEPTION from now when not given."""
    if not text or not text.strip():
        return now + DEFAULT_EXCEPTION
    text = text.strip()
    span = parse_span(text)
    if span is not None:
        until = now + span
    else:
        try:
            until = datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(f"--until {text!r}: give a span (12h, 30d, 8w) or an ISO date, "
                             "e.g. 2026-12-31") from None  # fmt: skip
        if until.tzinfo is None:
            until = until.replace(tzinfo=now.tzinfo)
            if "T" not in text and " " not in text:
                until += timedelta(days=1)  # a date: the whole of that day
    if until <= now:
        raise UsageError(f"--until {text!r} is not in the future")
    return until


@dataclass(frozen=True)
class Entry:
    """One stored version (every name it goes by) and the gate's verdict on it."""

    names: tuple[str, ...]
    digest: str
    verdict: Verdict


class Quarantine:
    def __init__(self, registry: Registry, gate: Gate, actor: str) -> None:
        self.registry = registry
        self.trust = TrustStore(registry)
        self.gate = gate
        self.actor = actor

    def entries(self) -> list[Entry]:
        """Every stored version with the gate's verdict, in listing order."""
        versions = self.registry.versions(include_untagged=True)
        verdicts = self.gate.verdicts(versions)
        names: dict[str, list[str]] = {}
        for v in versions:
            names.setdefault(v.digest, []).append(str(v.reference))
        return [Entry(tuple(n), digest, verdicts[digest])
                for digest, n in names.items() if digest in verdicts]  # fmt: skip

    def refused(self) -> list[Entry]:
        """Versions that may not be served: quarantined or pending."""
        return [e for e in self.entries() if not e.verdict.admitted]

    def excepted(self) -> list[Entry]:
        """Versions served under an exception, or whose exception lapsed."""
        return [e for e in self.entries() if e.verdict.exception or e.verdict.lapsed]

    def hold(self, version: ModelVersion, *, reason: str | None = None,
             actor: str | None = None) -> Verdict:  # fmt: skip
        """Quarantine `version` by hand, the reason beside whatever else the gate finds; an
        exception in force ends."""
        self.trust.hold(version.digest, HAND, (reason or "").strip(), actor=actor or self.actor)
        log.info("%s held %s %s by hand: %s", actor or self.actor, version.name, version.digest,
                 (reason or "").strip() or "no reason given")  # fmt: skip
        return self.gate.verdict(version)

    def release(self, version: ModelVersion, reason: str, *, until: datetime | None = None,
                actor: str | None = None) -> Verdict:  # fmt: skip
        """Lift the holds of `version` and, when today's policy refuses it, record an
        exception waiving those reasons until `until` (default: DEFAULT_EXCEPTION from now).
        Returns the verdict afterwards (ok)."""
        if not reason.strip():
            raise UsageError("give the reason for releasing it (--reason)")
        rules = self.gate.rules()
        if rules.error:
            raise UsageError(f"the policy cannot be read ({rules.error}); fix it before "
                             "releasing anything")  # fmt: skip
        verdict = self.gate.verdict(version)
        if verdict.pending:
            raise ConflictError(f"{version.reference} is pending: its files were never "
                                "scanned, so there is nothing to release yet (`depot gc` "
                                "admits it)")  # fmt: skip
        if not verdict.quarantined:
            raise ConflictError(f"{version.reference} is not quarantined")
        now = self.gate.clock()
        if until is not None and until <= now:
            raise UsageError("an exception must end in the future")
        integrity = tuple(h.reason for h in verdict.holds if h.kind == INTEGRITY)
        covers = (*verdict.policy, *integrity)
        grant = (ExceptionGrant(until or now + DEFAULT_EXCEPTION, covers, verdict.findings)
                 if covers else None)  # fmt: skip
        self.trust.release(version.digest, reason.strip(), actor=actor or self.actor,
                           kinds=(HAND, INTEGRITY), exception=grant)  # fmt: skip
        log.info("%s released %s %s: %s%s", actor or self.actor, version.name, version.digest,
                 reason.strip(), f" (an exception until {grant.until:%Y-%m-%d})" if grant
                 else "")  # fmt: skip
        return self.gate.verdict(version)
