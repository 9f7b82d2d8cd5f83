"""The gate: whether a stored version may be served, exported or run, decided now from what is
stored about it (the findings of its latest scan, its signatures, holds and exceptions, and
its red-team results when the policy has a [safety] section) under today's policy and
advisories. Nothing stores the answer: every view gets versions through
`Names`, which asks the gate, and the server, `depot run`, `depot push` and the customising
commands ask it before they act, so a changed policy, a new advisory or an expired exception
shows everywhere at once.

    pending       stored, never scanned (an import was interrupted): nothing serves it
    quarantined   held (by hand, or by `depot verify --all` for changed bytes), or refused by
                  a reason of the policy no exception in force waives
    ok            everything else

An exception is what releasing a refused version records: who, why, until when, and the
policy's reasons it waives, word for word. It holds until its expiry, and only while the
version's findings are those of the scan it was granted on: a rescan that finds anything else
voids it. A reason it does not list (a new advisory, a stricter policy) refuses the version
again. A policy that cannot be read refuses everything, saying why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modeldepot.config import Settings
from modeldepot.errors import UsageError
from modeldepot.registry import ModelVersion, Registry
from modeldepot.registry.evaluations import EvaluationStore
from modeldepot.registry.trust import (
    HAND,
    OK,
    PENDING,
    QUARANTINED,
    ExceptionRecord,
    Facts,
    HoldRecord,
    TrustStore,
)
from modeldepot.scan import Finding
from modeldepot.verify.policy import (
    Advisory,
    Policy,
    SafetyMeasure,
    load_advisories,
    load_policy,
)
from modeldepot.verify.signing import fingerprint

__all__ = ["HELD", "PENDING_REASON", "Gate", "Rules", "Verdict", "findings_fingerprint",
           "own_public_key"]  # fmt: skip

HELD = "held by hand"
PENDING_REASON = ("pending: not yet scanned and admitted (an import was interrupted; "
                  "`depot gc` or the next `depot serve` admits it)")  # fmt: skip


def findings_fingerprint(findings: Iterable[dict[str, Any]] | None) -> str:
    """sha256 over a scan's findings, in any order: what an exception is bound to."""
    lines = sorted(json.dumps(f, sort_keys=True) for f in findings or ())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def own_public_key(settings: Settings) -> Path | None:
    """The public half of the depot's own signing key (`depot keygen`), when it has one."""
    public = settings.layout.public_key
    return public if public.is_file() else None


@dataclass(frozen=True)
class Rules:
    """Today's policy, advisories and trusted keys, read once for a batch of verdicts."""

    policy: Policy | None
    advisories: tuple[Advisory, ...] = ()
    trusted: frozenset[str] = frozenset()
    """Fingerprints of the keys whose signature counts: the policy's and the depot's own."""
    error: str | None = None
    """Why the policy (or an advisory, or a trusted key) cannot be read: everything is refused."""


@dataclass(frozen=True)
class Verdict:
    digest: str
    status: str
    reasons: tuple[str, ...]
    """Why it may not be served (empty when `ok`)."""
    policy: tuple[str, ...] = ()
    """Every reason today's policy gives against it, waived or not."""
    holds: tuple[HoldRecord, ...] = ()
    exception: ExceptionRecord | None = None
    """The exception in force (of today's reasons, it waives `waived`)."""
    waived: tuple[str, ...] = ()
    lapsed: str | None = None
    """Why the newest exception no longer holds (expired, or the findings changed)."""
    findings: str = ""
    """The fingerprint of its latest scan's findings."""

    @property
    def admitted(self) -> bool:
        return self.status == OK

    @property
    def quarantined(self) -> bool:
        return self.status == QUARANTINED

    @property
    def pending(self) -> bool:
        return self.status == PENDING

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "reasons": list(self.reasons),
            "holds": [{"kind": h.kind, "reason": h.reason, "actor": h.actor,
                       "at": h.at.isoformat()} for h in self.holds],
            "exception": self.exception.to_dict() if self.exception else None,
            "waived": list(self.waived), "exception_lapsed": self.lapsed,
        }  # fmt: skip


def _hold_reason(hold: HoldRecord) -> str:
    if hold.kind == HAND:
        return f"{HELD} by {hold.actor}" + (f": {hold.reason}" if hold.reason else "")
    return hold.reason


class Gate:
    def __init__(self, settings: Settings, registry: Registry,
                 clock: Callable[[], datetime] | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.trust = TrustStore(registry)
        self.evaluations = EvaluationStore(registry)
        self.clock = clock or (lambda: datetime.now(UTC))

    def rules(self) -> Rules:
        """Today's policy, advisories and trusted keys (or why they cannot be read)."""
        try:
            policy = load_policy(self.settings.home)
            advisories = tuple(load_advisories(self.settings.home))
            trusted = set()
            for path in policy.trusted_keys:
                try:
                    trusted.add(fingerprint(path.read_text()))
                except (OSError, ValueError) as exc:
                    raise UsageError(f"trusted key {path}: {exc}") from None
        except UsageError as exc:
            return Rules(None, error=str(exc))
        own = own_public_key(self.settings)
        if own is not None:  # a damaged key of its own only means its signatures do not count
            with contextlib.suppress(OSError, ValueError):
                trusted.add(fingerprint(own.read_text()))
        return Rules(policy, advisories, frozenset(trusted))

    def verdict(self, version: ModelVersion) -> Verdict:
        return self.verdicts([version])[version.digest]

    def verdicts(self, versions: Iterable[ModelVersion]) -> dict[str, Verdict]:
        """The verdict on each version (by digest), with the registry read once for all."""
        versions = list(versions)
        facts = self.trust.facts(v.digest for v in versions)
        rules = self.rules()
        safety = self.safety(rules, [v.digest for v in versions])
        return {v.digest: self.judge(v, facts[v.digest], rules, safety.get(v.digest))
                for v in versions if v.digest in facts}  # fmt: skip

    def safety(self, rules: Rules, digests: list[str]) -> dict[str, dict[str, SafetyMeasure]]:
        """The red-team results of each version, when the policy judges them (not inside an
        evaluation, which measures them)."""
        if rules.policy is None or not rules.policy.judges_safety or self.settings.measuring:
            return {}
        found = self.evaluations.attack_success(sorted(set(digests)))
        return {d: {probe: SafetyMeasure(rate, n) for probe, (rate, n) in probes.items()}
                for d, probes in found.items()}  # fmt: skip

    def apply(self, versions: list[ModelVersion]) -> list[ModelVersion]:
        """`versions` with the gate's status, reasons and exception in force."""
        found = self.verdicts(versions)
        out = []
        for v in versions:
            verdict = found.get(v.digest)
            if verdict is None:  # removed meanwhile: nothing may use it
                out.append(dataclasses.replace(v, status=QUARANTINED, reasons=("removed",)))
                continue
            out.append(dataclasses.replace(
                v, status=verdict.status, reasons=verdict.reasons,
                exception=verdict.exception.to_dict() if verdict.exception else None))  # fmt: skip
        return out

    def judge(self, version: ModelVersion, facts: Facts, rules: Rules,
              safety: dict[str, SafetyMeasure] | None = None) -> Verdict:  # fmt: skip
        """The verdict on `version` from what is stored about it (`facts`, its red-team
        results `safety`) and `rules`."""
        fingerprint_now = findings_fingerprint(facts.findings)
        holds = tuple(_hold_reason(h) for h in facts.holds)
        if facts.stored == PENDING:
            return Verdict(version.digest, PENDING, (PENDING_REASON, *holds), (), facts.holds,
                           findings=fingerprint_now)  # fmt: skip
        if rules.policy is None:
            return Verdict(version.digest, QUARANTINED, (*holds, f"policy: {rules.error}"), (),
                           facts.holds, findings=fingerprint_now)  # fmt: skip
        digests = {version.digest, *(f.digest for f in version.files)}
        policy = tuple(rules.policy.violations(
            licence=version.info.license, fmt=version.info.format,
            findings=[Finding.from_dict(f) for f in facts.findings or ()],
            signed_by_trusted=bool(rules.trusted & set(facts.signers)),
            advisories=[a for a in rules.advisories if a.digest in digests],
            safety=None if self.settings.measuring or not rules.policy.judges_safety
            else safety or {},
        ))  # fmt: skip
        exception, lapsed = None, None
        newest = facts.exceptions[0] if facts.exceptions else None
        if newest is not None:
            if self.clock() >= newest.until:
                lapsed = f"expired {newest.until:%Y-%m-%d %H:%M} UTC"
            elif newest.findings != fingerprint_now:
                lapsed = "the findings changed since it was granted (a later scan)"
            else:
                exception = newest
        waived = tuple(r for r in policy if exception and r in exception.covers)
        reasons = (*holds, *(r for r in policy if r not in waived))
        if reasons and newest is not None and lapsed is not None:
            reasons += (f"the exception granted by {newest.actor} ({newest.reason}) no longer "
                        f"holds: {lapsed}",)  # fmt: skip
        return Verdict(
            version.digest, QUARANTINED if reasons else OK, reasons, policy, facts.holds,
            exception, waived, lapsed, fingerprint_now,
        )  # fmt: skip
