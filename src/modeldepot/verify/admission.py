"""Admission: a new version is `pending` until its stored files are scanned and the policy
applied; then it is `ok` or `quarantined` (kept and listed, never served, exported or run).

Importers get the admitted version back. A process killed between storing and scanning leaves
the version pending, which nothing serves; `repair` (run when `depot serve` starts and by
`depot gc`, while no import holds the store) admits such versions, or removes one whose files
are gone or whose file paths would leave its folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from modeldepot.config import Settings
from modeldepot.errors import NotFound, StoreLocked, UnsafePath, UsageError
from modeldepot.refs import Reference
from modeldepot.registry import ModelVersion, Registry
from modeldepot.registry.trust import OK, QUARANTINED, TrustStore
from modeldepot.scan import SCANNER_VERSION, Finding, ScanReport, scan_files
from modeldepot.scan.remote_code import folder_findings
from modeldepot.store import BlobStore, StoreLock, materialize
from modeldepot.verify.policy import Advisory, Policy, load_advisories, load_policy
from modeldepot.verify.quarantine import HELD
from modeldepot.verify.signing import fingerprint

__all__ = ["Admission", "Repair"]


@dataclass(frozen=True)
class Repair:
    """What `repair` did with one version left pending."""

    reference: str
    digest: str
    outcome: str
    """The status it was admitted with, or `removed`."""


class Admission:
    def __init__(
        self, settings: Settings, store: BlobStore, registry: Registry, lock: StoreLock
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.trust = TrustStore(registry)
        self.lock = lock

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

    def advisories_for(self, version: ModelVersion) -> list[Advisory]:
        digests = {version.digest, *(f.digest for f in version.files)}
        return [a for a in load_advisories(self.settings.home) if a.digest in digests]

    def trusted_fingerprints(self, policy: Policy) -> set[str]:
        found = set()
        for path in policy.trusted_keys:
            try:
                found.add(fingerprint(path.read_text()))
            except (OSError, ValueError) as exc:
                raise UsageError(f"trusted key {path}: {exc}") from None
        return found

    def violations(
        self, version: ModelVersion, findings: list[Finding], policy: Policy
    ) -> list[str]:
        trusted = self.trusted_fingerprints(policy)
        signed = any(s.identity in trusted for s in self.trust.signatures(version.digest))
        return policy.violations(
            licence=version.info.license, fmt=version.info.format, findings=findings,
            signed_by_trusted=signed, advisories=self.advisories_for(version),
        )  # fmt: skip

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
        """Scan (unless given a report), record the findings, apply the policy, and set the
        status: `ok`, or `quarantined` with the reasons. Returns the version as admitted."""
        actor = actor or self.settings.actor
        report = report or self.scan(version)
        reasons = self.violations(version, report.findings, self.policy(actor=actor))
        self.trust.record_scan(
            version.digest,
            SCANNER_VERSION,
            [f.to_dict() for f in report.findings],
            worst=str(report.worst) if report.worst is not None else None,
            actor=actor,
            admit=not reasons,
        )
        current = self.trust.status(version.digest)
        if any(r == HELD or r.startswith(f"{HELD}:") for r in current.reasons):
            pass  # quarantined by hand: only `quarantine release` lets it out
        elif reasons and not current.quarantined:
            self.trust.set_status(version.digest, QUARANTINED, reasons, actor=actor,
                                  action="quarantine")  # fmt: skip
        elif reasons and reasons != current.reasons:
            self.trust.set_status(version.digest, QUARANTINED, reasons, actor=actor,
                                  action="quarantine.update")  # fmt: skip
        elif not reasons and current.quarantined:
            self.trust.set_status(version.digest, OK, [], actor=actor,
                                  action="quarantine.clear")  # fmt: skip
        status = self.trust.status(version.digest)
        return dataclasses.replace(version, status=status.status, reasons=tuple(status.reasons))

    def findings(self, version: ModelVersion) -> list[Finding]:
        scan = self.trust.latest_scan(version.digest)
        return [Finding.from_dict(f) for f in scan.findings] if scan else []

    def refusals(self, version: ModelVersion) -> list[str]:
        """Why `version` may not be served, exported or run now (pending, quarantined, or
        today's policy on what is recorded about it); empty when it may."""
        status = self.trust.status(version.digest)
        if status.pending:
            return ["pending: not yet scanned and admitted (an import was interrupted; "
                    "`depot gc` or the next `depot serve` admits it)"]  # fmt: skip
        if status.quarantined:
            return status.reasons or ["quarantined"]
        return self.violations(version, self.findings(version), load_policy(self.settings.home))

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
                self.registry.remove(pinned, actor=self.settings.actor)
                done.append(Repair(name, version.digest, "removed"))
                continue
            done.append(Repair(name, version.digest, admitted.status))
        return done
