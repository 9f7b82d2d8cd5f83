"""Admission: a new version is `pending` until its stored files are scanned; the scan is
recorded, and the gate (gate.py) then says, today and every day after, whether it is `ok` or
`quarantined` (kept and listed, never served, exported or run). A change of that answer seen
by a scan is recorded in the audit log with the reasons.

Importers get the admitted version back. A process killed between storing and scanning leaves
the version pending, which nothing serves; `repair` (run when `depot serve` starts and by
`depot gc`, while no import holds the store) admits such versions, or removes one whose files
are gone or whose file paths would leave its folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeldepot.config import Settings
from modeldepot.errors import NotFound, StoreLocked, UnsafePath, UsageError
from modeldepot.refs import Reference
from modeldepot.registry import ModelVersion, Registry
from modeldepot.registry.trust import SCANNED, TrustStore
from modeldepot.scan import SCANNER_VERSION, Finding, ScanReport, scan_files
from modeldepot.scan.remote_code import folder_findings
from modeldepot.store import BlobStore, StoreLock, materialize
from modeldepot.verify.gate import Gate, Verdict
from modeldepot.verify.policy import Policy, load_policy

__all__ = ["Admission", "Repair"]

log = logging.getLogger("modeldepot.verify")


@dataclass(frozen=True)
class Repair:
    """What `repair` did with one version left pending."""

    reference: str
    digest: str
    outcome: str
    """The status it was admitted with, or `removed`."""


class Admission:
    def __init__(
        self, settings: Settings, store: BlobStore, registry: Registry, lock: StoreLock,
        gate: Gate,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.store = store
        self.registry = registry
        self.trust = TrustStore(registry)
        self.lock = lock
        self.gate = gate

    # -- the policy ------------------------------------------------------------------------

    def policy(self, *, actor: str | None = None) -> Policy:
        """The current policy; a changed policy file is recorded in the audit log."""
        policy = load_policy(self.settings.home)
        recorded = self.registry.audit.events(action="policy")
        last = recorded[-1].details.get("fingerprint") if recorded else ""
        if policy.fingerprint != last:
            self.registry.audit.append(
                actor or self.settings.actor,
                "policy",
                policy.source,
                {"fingerprint": policy.fingerprint, "text": policy.text},
            )
        return policy

    # -- scanning and admission ------------------------------------------------------------

    def folder(self, version: ModelVersion) -> Path:
        """The version's files under their own names (links to the stored blobs)."""
        return materialize(self.store, version.digest, version.layout, self.settings.home)

    def scan(self, version: ModelVersion) -> ScanReport:
        repo = version.reference.repository
        report = scan_files(
            ((self.store.local_path(f.digest), f"{repo}/{f.path}") for f in version.files), repo
        )
        folder = self.folder(version)
        report.findings += folder_findings(folder, [folder / f.path for f in version.files], repo)
        return report

    def admit(
        self, version: ModelVersion, report: ScanReport | None = None, *, actor: str | None = None
    ) -> ModelVersion:
        """Scan (unless given a report) and record the findings; returns the version with
        the gate's status. A status the scan changes (admitted, quarantined, cleared, or
        quarantined for other reasons) is recorded with the scan, in one transaction."""
        actor = actor or self.settings.actor
        report = report or self.scan(version)
        # A changed policy file is recorded before it is applied; an unreadable one is not
        # (the gate then refuses everything, saying why).
        with contextlib.suppress(UsageError):
            self.policy(actor=actor)
        findings = [f.to_dict() for f in report.findings]
        facts = self.trust.facts([version.digest])[version.digest]
        rules = self.gate.rules()
        safety = self.gate.safety(rules, [version.digest]).get(version.digest)
        before = self.gate.judge(version, facts, rules, safety)
        after = self.gate.judge(
            version, dataclasses.replace(facts, stored=SCANNED, findings=findings), rules, safety
        )
        self.trust.record_scan(
            version.digest, SCANNER_VERSION, findings,
            worst=str(report.worst) if report.worst is not None else None, actor=actor,
            details={"admitted": True} if before.pending and after.admitted else None,
            events=_transitions(before, after),
        )  # fmt: skip
        worst = f", worst {report.worst}" if report.worst is not None else ""
        verdict = ("admitted" if after.admitted else "pending" if after.pending
                   else f"quarantined: {'; '.join(after.reasons)}")  # fmt: skip
        log.info("scanned %s %s: %d findings%s; %s", version.name, version.digest,
                 len(findings), worst, verdict)  # fmt: skip
        return self.gate.apply([version])[0]

    def findings(self, version: ModelVersion) -> list[Finding]:
        scan = self.trust.latest_scan(version.digest)
        return [Finding.from_dict(f) for f in scan.findings] if scan else []

    def refusals(self, version: ModelVersion) -> list[str]:
        """Why `version` may not be served, exported or run now (the gate's reasons: pending,
        held, or today's policy on what is recorded about it, less what an exception in force
        waives); empty when it may."""
        verdict = self.gate.verdict(version)
        return [] if verdict.admitted else list(verdict.reasons)

    # -- repair ----------------------------------------------------------------------------

    def repair(self) -> list[Repair]:
        """Admit every version left pending by an interrupted import, or remove it when its
        files are gone; skipped (returns []) while an import holds the store, since an import
        in progress admits its own version."""
        try:
            with self.lock.exclusive(timeout=0.0):
                return self.repair_held()
        except StoreLocked:
            return []

    def repair_held(self) -> list[Repair]:
        """`repair` for a caller that already holds the store lock exclusively."""
        done: list[Repair] = []
        for version in self.registry.pending():
            ref = version.reference
            name = f"{ref.repository}:{version.tags[0]}" if version.tags else str(ref)
            try:
                admitted = self.admit(version)
            except (NotFound, UnsafePath):  # a blob is missing, or a file path would leave
                # its folder (recorded before paths were checked): never trusted or served
                pinned = Reference(ref.namespace, ref.name, None, version.digest)
                log.warning("removed %s %s, left pending by an interrupted import: its files "
                            "are missing or unsafe", name, version.digest)  # fmt: skip
                self.registry.remove(pinned, actor=self.settings.actor)
                done.append(Repair(name, version.digest, "removed"))
                continue
            done.append(Repair(name, version.digest, admitted.status))
        return done


def _transitions(before: Verdict, after: Verdict) -> list[tuple[str, dict[str, Any]]]:
    """The audit events for a status a scan changed."""
    if after.quarantined and not before.quarantined:
        details: dict[str, Any] = {"reasons": list(after.reasons)}
        if after.lapsed and not before.lapsed:
            details["exception_lapsed"] = after.lapsed
        return [("quarantine", details)]
    if after.quarantined and after.reasons != before.reasons:
        return [("quarantine.update", {"reasons": list(after.reasons)})]
    if after.admitted and before.quarantined:
        return [("quarantine.clear", {"reasons_before": list(before.reasons)})]
    return []
