"""Verification and governance of stored versions: scans, policy and quarantine, signatures,
advisories, model cards, AI-BOMs and the audit log.

The depot calls `admit` after every import: the version's files are scanned where they are
stored, the policy applied, and a version the policy refuses is quarantined (kept, listed,
never served or exported) with its reasons.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modeldepot.bom import build_bom, validate_bom
from modeldepot.card import CardFacts, parse_card, render_card
from modeldepot.config import Settings
from modeldepot.errors import ConflictError, DepotError, UsageError
from modeldepot.policy import Advisory, Policy, load_advisories, load_policy
from modeldepot.registry import ModelVersion
from modeldepot.registry.audit import ChainReport
from modeldepot.registry.evaluations import EvaluationStore
from modeldepot.registry.registry import Registry
from modeldepot.registry.trust import OK, QUARANTINED, SignatureRecord, Status, TrustStore
from modeldepot.scan import SCANNER_VERSION, Finding, ScanReport, scan_files
from modeldepot.scan.remote_code import folder_findings
from modeldepot.signing import (
    SignatureFailure,
    Signer,
    fingerprint,
    public_key_pem,
    sign_folder,
    verify_folder,
)
from modeldepot.store.blobs import BlobStore

HELD = "held by hand"

__all__ = ["Governance", "Verification", "edit_in_editor"]


@dataclass(frozen=True)
class Verification:
    """The outcome of re-checking one version."""

    version: ModelVersion
    signatures: list[str]
    """One line per signature: who signed, and whether it verifies."""
    problems: list[str]
    status_before: str
    status_after: str
    new_findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def changed(self) -> bool:
        return self.status_before != self.status_after or bool(self.new_findings)


class Governance:
    def __init__(
        self,
        settings: Settings,
        blobs: BlobStore,
        registry: Callable[[], Registry],
        materialize: Callable[[ModelVersion], Path],
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        self._registry = registry
        self.materialize = materialize

    @property
    def registry(self) -> Registry:
        return self._registry()

    @property
    def trust(self) -> TrustStore:
        return TrustStore(self.registry)

    @property
    def actor(self) -> str:
        return self.settings.actor

    # -- policy ----------------------------------------------------------------------------

    def policy(self) -> Policy:
        """The current policy; a changed policy file is recorded in the audit log."""
        policy = load_policy(self.settings.home)
        recorded = self.registry.events(action="policy")
        last = recorded[-1].details.get("fingerprint") if recorded else ""
        if policy.fingerprint != last:
            self.registry.add_event(
                self.actor,
                "policy",
                policy.source,
                {"fingerprint": policy.fingerprint, "text": policy.text},
            )
        return policy  # fmt: skip

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

    def _violations(
        self, version: ModelVersion, findings: list[Finding], policy: Policy
    ) -> list[str]:
        trusted = self.trusted_fingerprints(policy)
        signed = any(s.identity in trusted for s in self.trust.signatures(version.digest))
        return policy.violations(
            licence=version.info.license, fmt=version.info.format, findings=findings,
            signed_by_trusted=signed, advisories=self.advisories_for(version),
        )  # fmt: skip

    # -- scanning and admission ------------------------------------------------------------

    def scan_version(self, version: ModelVersion) -> ScanReport:
        repo = version.reference.repository
        report = scan_files(
            ((self.blobs.path(f.digest), f"{repo}/{f.path}") for f in version.files), repo
        )
        folder = self.materialize(version)
        links = [folder / f.path for f in version.files]
        report.findings += folder_findings(folder, links, repo)
        return report

    def admit(self, version: ModelVersion, report: ScanReport | None = None) -> Status:
        """Scan (unless given a report), record, apply the policy, quarantine if refused."""
        report = report or self.scan_version(version)
        self.trust.record_scan(
            version.digest,
            SCANNER_VERSION,
            [f.to_dict() for f in report.findings],
            worst=str(report.worst) if report.worst is not None else None,
            actor=self.actor,
        )
        reasons = self._violations(version, report.findings, self.policy())  # fmt: skip
        current = self.trust.status(version.digest)
        if current.reasons == [HELD]:
            pass  # quarantined by hand: only `quarantine release` lets it out
        elif reasons and not current.quarantined:
            self.trust.set_status(version.digest, QUARANTINED, reasons, actor=self.actor,
                                  action="quarantine")  # fmt: skip
        elif reasons and reasons != current.reasons:
            self.trust.set_status(version.digest, QUARANTINED, reasons, actor=self.actor,
                                  action="quarantine.update")  # fmt: skip
        elif not reasons and current.quarantined:
            self.trust.set_status(version.digest, OK, [], actor=self.actor,
                                  action="quarantine.clear")  # fmt: skip
        return self.trust.status(version.digest)

    def findings(self, version: ModelVersion) -> list[Finding]:
        scan = self.trust.latest_scan(version.digest)
        return [Finding.from_dict(f) for f in scan.findings] if scan else []

    def serve_refusals(self, version: ModelVersion) -> list[str]:
        """Why `version` may not be served now (quarantine, or today's policy on what is
        recorded about it); empty when it may."""
        status = self.trust.status(version.digest)
        if status.quarantined:
            return status.reasons or ["quarantined"]
        return self._violations(version, self.findings(version), load_policy(self.settings.home))

    # -- quarantine ------------------------------------------------------------------------

    def quarantined(self) -> list[Status]:
        return self.trust.quarantined()

    def hold(self, version: ModelVersion) -> None:
        self.trust.set_status(version.digest, QUARANTINED, [HELD], actor=self.actor,
                              action="quarantine")  # fmt: skip

    def release(self, version: ModelVersion, reason: str) -> None:
        if not self.trust.status(version.digest).quarantined:
            raise ConflictError(f"{version.reference} is not quarantined")
        if not reason.strip():
            raise UsageError("give the reason for releasing it (--reason)")
        self.trust.set_status(version.digest, OK, [], actor=self.actor,
                              action="quarantine.release", note=reason)  # fmt: skip

    # -- signatures ------------------------------------------------------------------------

    @property
    def default_key(self) -> Path:
        """The depot's own signing key (`depot keygen` with no path)."""
        return self.settings.home / "keys" / "depot"

    def sign(self, version: ModelVersion, signer: Signer) -> SignatureRecord:
        """Sign `version`; a key that already signed it is not asked again (the existing
        signature is returned)."""
        if signer.key is not None:
            identity = fingerprint(public_key_pem(signer.key))
            for record in self.trust.signatures(version.digest):
                if record.identity == identity:
                    return record
        folder = self.materialize(version)
        with tempfile.TemporaryDirectory(dir=self.settings.home) as tmp:
            out = Path(tmp) / "signature.json"
            identity = sign_folder(folder, out, signer)
            blob = self.blobs.put_file(out)
        record = SignatureRecord(
            digest=blob.digest, method=signer.method, identity=identity,
            public_key=public_key_pem(signer.key) if signer.key else None,
            signed_at=datetime.now(UTC), actor=self.actor,
        )  # fmt: skip
        self.trust.add_signature(version.digest, record)
        return record

    def verify(self, version: ModelVersion, keys: list[Path] | None = None) -> list[str]:
        """Check every signature of `version` by re-hashing its blobs. `keys`: public keys to
        accept (default: the policy's trusted keys, else each signature's own recorded key).
        Returns one line per signature; raises `SignatureFailure` when one fails."""
        records = self.trust.signatures(version.digest)
        if not records:
            raise DepotError(f"{version.reference} is not signed")
        policy = load_policy(self.settings.home)
        key_files = list(keys or policy.trusted_keys)
        accepted = {fingerprint(Path(k).read_text()): Path(k) for k in key_files}
        folder = self.materialize(version)
        lines: list[str] = []
        failures: list[str] = []
        for record in records:
            bundle = self.blobs.path(record.digest)
            with tempfile.TemporaryDirectory(dir=self.settings.home) as tmp:
                key = accepted.get(record.identity)
                note = "an accepted key" if key else "the key recorded at signing (untrusted)"
                if key is None and record.public_key and not key_files:
                    key = Path(tmp) / "signer.pub"
                    key.write_text(record.public_key)
                if key is None:
                    failures.append(f"signed by {record.identity[:16]}, which is not an "
                                    "accepted key")  # fmt: skip
                    continue
                try:
                    verify_folder(folder, bundle, public_key=key)
                except SignatureFailure as exc:
                    failures.append(f"signature by {record.identity[:16]}: {exc}")
                    self.registry.add_event(
                        self.actor,
                        "verify.fail",
                        version.digest,
                        {"files": exc.files, "identity": record.identity},
                    )
                    continue  # fmt: skip
            lines.append(f"{record.method} signature by {record.identity[:16]} verified "
                         f"with {note}")  # fmt: skip
        self.registry.add_event(self.actor, "verify", version.digest,
                                {"verified": len(lines), "failed": len(failures)})  # fmt: skip
        if failures:
            raise SignatureFailure("; ".join(failures), [])
        return lines

    def verify_all(self, versions: list[ModelVersion]) -> list[Verification]:
        """Re-check every version against its signatures, today's scanners and advisories,
        re-apply the policy, and report what changed."""
        results = []
        seen: set[str] = set()
        for version in versions:
            if version.digest in seen:
                continue
            seen.add(version.digest)
            before = self.trust.status(version.digest).status
            old = {(f.code, f.location) for f in self.findings(version)}
            problems: list[str] = []
            signatures: list[str] = []
            if self.trust.signatures(version.digest):
                try:
                    signatures = self.verify(version)
                except SignatureFailure as exc:
                    problems.append(str(exc))
            report = self.scan_version(version)
            status = self.admit(version, report)
            if problems and not status.quarantined:
                self.trust.set_status(version.digest, QUARANTINED,
                                      [f"signature: {p}" for p in problems], actor=self.actor,
                                      action="quarantine")  # fmt: skip
                status = self.trust.status(version.digest)
            problems += [r for r in status.reasons if r.removeprefix("signature: ") not in problems]
            new = [f for f in report.findings if (f.code, f.location) not in old]
            results.append(Verification(version, signatures, problems, before, status.status,
                                        new))  # fmt: skip
        return results

    # -- documentation ---------------------------------------------------------------------

    def facts(self, version: ModelVersion) -> CardFacts:
        findings = self.findings(version)
        scan = self.trust.latest_scan(version.digest)
        if scan is None:
            summary = "not scanned"
        else:
            worst = max((f.severity for f in findings), default=None)
            summary = (f"scanned {scan.scanned_at.date().isoformat()}: {len(findings)} findings"
                       + (f", worst {worst}" if worst is not None else ""))  # fmt: skip
        signatures = tuple(f"{s.method}:{s.identity[:16]}" for s in
                           self.trust.signatures(version.digest))  # fmt: skip
        evaluations = tuple(
            {"dataset": r.task, "metric": metric, "value": round(r.metrics[metric]["value"], 4),
             "stderr": round(r.metrics[metric]["stderr"], 4)}
            for r in EvaluationStore(self.registry).latest(version.digest)
            if (metric := r.primary()) is not None
        )  # fmt: skip
        return CardFacts(summary, signatures, self.trust.status(version.digest).status,
                         evaluations)  # fmt: skip

    def card(self, version: ModelVersion) -> str:
        """The version's card: the last edited one, else generated from what is known now."""
        record = self.trust.card(version.digest)
        if record is not None and record.edited:
            return self.blobs.read_bytes(record.digest).decode("utf-8")
        return render_card(version, self.facts(version))

    def save_card(self, version: ModelVersion, text: str) -> None:
        parse_card(text)
        blob = self.blobs.put_bytes(text.encode("utf-8"))
        self.trust.add_card(version.digest, blob.digest, edited=True, actor=self.actor)

    def bom(self, version: ModelVersion) -> dict[str, Any]:
        document = build_bom(version, self.facts(version))
        validate_bom(document)
        self.registry.add_event(self.actor, "bom", version.digest, {})
        return document

    # -- audit -----------------------------------------------------------------------------

    def audit_verify(self) -> ChainReport:
        return self.registry.verify_chain()


def edit_in_editor(text: str, editor: str) -> str:
    """Open `text` in the user's editor and return what they saved."""
    import shlex
    import subprocess

    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False, encoding="utf-8") as f:
        f.write(text)
        path = f.name
    try:
        subprocess.run([*shlex.split(editor), path], check=True)
        return Path(path).read_text(encoding="utf-8")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DepotError(f"editor {editor!r} failed: {exc}") from None
    finally:
        os.unlink(path)
