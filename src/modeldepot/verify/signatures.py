"""Signing and verifying stored versions in the OpenSSF model-signing format, and re-checking
the whole store (`depot verify --all`): signatures, today's scanners and advisories, the policy.

The signer works on the folder of links to the stored blobs (`Admission.folder`), so the bytes
signed are exactly the stored ones and the bundle verifies on a plain copy of the files."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from modeldepot.config import Settings
from modeldepot.errors import DepotError, IntegrityError
from modeldepot.registry import ModelVersion, Registry
from modeldepot.registry.trust import INTEGRITY, SignatureRecord, TrustStore
from modeldepot.scan import Finding
from modeldepot.store import BlobStore, Progress
from modeldepot.verify.admission import Admission
from modeldepot.verify.gate import own_public_key
from modeldepot.verify.policy import UNSIGNED, load_policy
from modeldepot.verify.signing import (
    SignatureFailure,
    Signer,
    fingerprint,
    public_key_pem,
    sign_folder,
    signed_digests,
    verify_folder,
)

__all__ = ["Signatures", "Verification"]

log = logging.getLogger("modeldepot.verify")


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


class Signatures:
    def __init__(
        self, settings: Settings, store: BlobStore, registry: Registry, admission: Admission
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.trust = TrustStore(registry)
        self.admission = admission

    @property
    def default_key(self) -> Path:
        """The depot's own signing key (`depot keygen` with no path)."""
        return self.settings.layout.signing_key

    def changed_files(self, version: ModelVersion, progress: Progress | None = None) -> list[str]:
        """Files of `version` whose stored bytes no longer hash to their recorded digest (each
        hashed again now), or are gone."""
        changed = []
        for f in version.files:
            if not self.store.has(f.digest) or self.store.rehash(f.digest, progress) != f.digest:
                changed.append(f.path)
        return changed

    def sign(
        self,
        version: ModelVersion,
        signer: Signer,
        *,
        actor: str | None = None,
        progress: Progress | None = None,
        just_stored: bool = False,
    ) -> SignatureRecord:
        """Sign `version` as its stored bytes hash now: the signature covers the digests
        model-signing computes from the stored files, and is kept only when they are the
        recorded ones (changed bytes are never signed). A key that already signed it is not
        asked again (the existing signature is returned, after the bytes are hashed again).

        `just_stored`: the version was stored by this process a moment ago (a result the depot
        made), so the digests the store computed as it wrote the bytes are signed as they are,
        without reading every file once more."""
        if signer.key is not None:
            identity = fingerprint(public_key_pem(signer.key))
            for record in self.trust.signatures(version.digest):
                if record.identity == identity:
                    self._unchanged(version, progress)
                    return record
        folder = self.admission.folder(version)
        with self.settings.layout.scratch() as tmp:
            out = Path(tmp) / "signature.json"
            recorded = {f.path: f.digest for f in version.files} if just_stored else None
            identity = sign_folder(folder, out, signer, recorded)
            if not signed_digests(out):  # a bundle whose digests cannot be read back
                self._unchanged(version, progress)
            elif differing := self._differing(version, out):
                raise self._changed(version, differing)
            blob = self.store.put_file(out)
        record = SignatureRecord(
            digest=blob.digest, method=signer.method, identity=identity,
            public_key=public_key_pem(signer.key) if signer.key else None,
            signed_at=datetime.now(UTC), actor=actor or self.settings.actor,
        )  # fmt: skip
        self.trust.add_signature(version.digest, record)
        log.info("signed %s %s (%s, %s)", version.name, version.digest, record.method,
                 record.identity[:16])  # fmt: skip
        return record

    def endorse(self, version: ModelVersion, *, actor: str | None = None,
                just_stored: bool = False) -> ModelVersion:  # fmt: skip
        """Sign `version` with the depot's own key (`depot keygen`), when it has one and the
        version is admitted, or refused for nothing but that missing signature (then the
        signature admits it): what the depot made or brought in is vouched for by it, and
        nothing a scan or the policy refuses ever is. Returns the version as the gate sees
        it after."""
        key = self.default_key
        if not key.is_file() or not all(r == UNSIGNED for r in version.reasons):
            return version
        self.sign(version, Signer("key", key), actor=actor, just_stored=just_stored)
        return self.admission.gate.apply([version])[0]

    def _unchanged(self, version: ModelVersion, progress: Progress | None) -> None:
        changed = self.changed_files(version, progress)
        if changed:
            raise self._changed(version, changed)

    @staticmethod
    def _changed(version: ModelVersion, paths: list[str]) -> IntegrityError:
        return IntegrityError(
            f"{version.reference}: {', '.join(paths)} changed since import (the stored "
            "bytes no longer match their digests); nothing was signed"
        )

    def adopt(self, version: ModelVersion, found: list[tuple[bytes, str | None]], *,
              actor: str | None = None) -> list[str]:  # fmt: skip
        """Record signatures that came with a version (from an OCI registry: a bundle and the
        signer's public key each) and verify them all by re-hashing the stored files; raises
        SignatureFailure when one does not verify."""
        for bundle, public_key in found:
            blob = self.store.put_bytes(bundle)
            identity = fingerprint(public_key) if public_key else "sigstore"
            if any(r.identity == identity for r in self.trust.signatures(version.digest)):
                continue
            self.trust.add_signature(version.digest, SignatureRecord(
                digest=blob.digest, method="key" if public_key else "sigstore",
                identity=identity, public_key=public_key, signed_at=datetime.now(UTC),
                actor=actor or self.settings.actor))  # fmt: skip
        return self.verify(version, actor=actor) if found else []

    def bundle(self, record: SignatureRecord) -> bytes:
        return self.store.read_bytes(record.digest)

    def verify(
        self,
        version: ModelVersion,
        keys: list[Path] | None = None,
        *,
        actor: str | None = None,
        progress: Progress | None = None,
        record: bool = True,
    ) -> list[str]:
        """Check every signature of `version` by re-hashing its blobs. `keys`: public keys to
        accept (default: the policy's trusted keys and the depot's own; with neither, each
        signature's own recorded key). Returns one line per signature; raises
        `SignatureFailure` when one fails. `record`: write the outcome to the audit log (a
        page view that shows it does not)."""
        actor = actor or self.settings.actor
        records = self.trust.signatures(version.digest)
        if not records:
            raise DepotError(f"{version.reference} is not signed")
        policy = load_policy(self.settings.home)
        key_files = list(keys or policy.trusted_keys)
        accepted = {fingerprint(Path(k).read_text()): Path(k) for k in key_files}
        own = own_public_key(self.settings)
        own_print = fingerprint(own.read_text()) if own and not keys else None
        if own is not None and own_print is not None:
            accepted.setdefault(own_print, own)

        def audit(action: str, details: dict[str, object]) -> None:
            if record:
                self.trust.note(version.digest, action, details, actor=actor)

        changed = self.changed_files(version, progress)
        if changed:
            audit("verify.fail", {"files": changed})
            raise SignatureFailure(
                f"{', '.join(changed)} differs from its recorded digest: the stored bytes "
                "changed since import",
                changed,
            )
        folder = self.admission.folder(version)
        lines: list[str] = []
        failures: list[str] = []
        for signature in records:
            bundle = self.store.local_path(signature.digest)
            with self.settings.layout.scratch() as tmp:
                key = accepted.get(signature.identity)
                note = ("the depot's own key" if key is not None and signature.identity == own_print
                        else "an accepted key" if key
                        else "the key recorded at signing (untrusted)")  # fmt: skip
                if key is None and signature.public_key and not key_files:
                    key = Path(tmp) / "signer.pub"
                    key.write_text(signature.public_key)
                if key is None:
                    failures.append(f"signed by {signature.identity[:16]}, which is not an "
                                    "accepted key")  # fmt: skip
                    continue
                try:
                    verify_folder(folder, bundle, public_key=key)
                except SignatureFailure as exc:
                    files = self._differing(version, bundle) or exc.files
                    what = (f"{', '.join(files)} differ from what was signed" if files
                            else str(exc))  # fmt: skip
                    failures.append(f"signature by {signature.identity[:16]}: {what}")
                    audit("verify.fail", {"files": files, "identity": signature.identity})
                    continue
            lines.append(f"{signature.method} signature by {signature.identity[:16]} verified "
                         f"with {note}")  # fmt: skip
        audit("verify", {"verified": len(lines), "failed": len(failures)})
        log.info("verified the signatures of %s %s: %d good, %d failed%s", version.name,
                 version.digest, len(lines), len(failures),
                 f" ({'; '.join(failures)})" if failures else "")  # fmt: skip
        if failures:
            raise SignatureFailure("; ".join(failures), [])
        return lines

    @staticmethod
    def _differing(version: ModelVersion, bundle: Path) -> list[str]:
        """Files whose digest differs from the signed one, or that only one side has."""
        signed = signed_digests(bundle)
        if not signed:
            return []
        ours = {f.path: f.digest for f in version.files}
        return sorted(
            name for name in set(signed) | set(ours) if signed.get(name) != ours.get(name)
        )

    def verify_all(
        self, versions: list[ModelVersion], *, actor: str | None = None
    ) -> list[Verification]:
        """Re-check every version against its signatures, today's scanners and advisories,
        and report what changed. Changed bytes or a failing signature hold the version (a
        hold lifted again once the problem is gone, and never placed for a problem an
        exception in force waives); the policy itself is the gate's to apply."""
        actor = actor or self.settings.actor
        gate = self.admission.gate
        results = []
        seen: set[str] = set()
        for version in versions:
            if version.digest in seen:
                continue
            seen.add(version.digest)
            before = gate.verdict(version)
            old = {(f.code, f.location) for f in self.admission.findings(version)}
            problems: list[str] = []
            signatures: list[str] = []
            changed = self.changed_files(version)
            if changed:  # nothing about these bytes can be vouched for
                problems.append(
                    f"integrity: {', '.join(changed)} differs from its recorded "
                    "digest (changed since import)"
                )
            elif self.trust.signatures(version.digest):
                try:
                    signatures = self.verify(version, actor=actor)
                except SignatureFailure as exc:
                    problems.append(f"signature: {exc}")
            report = self.admission.scan(version)
            self.admission.admit(version, report, actor=actor)
            self._hold_for(version, problems, actor)
            after = gate.verdict(version)
            shown = problems + [r for r in after.reasons if r not in problems]
            if after.admitted:  # what an exception in force waives is not a failure
                shown = []
            new = [f for f in report.findings if (f.code, f.location) not in old]
            results.append(Verification(version, signatures, shown, before.status,
                                        after.status, new))  # fmt: skip
        return results

    def _hold_for(self, version: ModelVersion, problems: list[str], actor: str) -> None:
        """Hold `version` for each integrity problem not yet held or waived; release the
        integrity holds whose problem is gone."""
        verdict = self.admission.gate.verdict(version)
        held = {h.reason for h in verdict.holds if h.kind == INTEGRITY}
        waived = set(verdict.exception.covers) if verdict.exception else set()
        for problem in problems:
            if problem not in held and problem not in waived:
                self.trust.hold(version.digest, INTEGRITY, problem, actor=actor)
        gone = held - set(problems)
        if gone:
            self.trust.release(version.digest, "not found again by `depot verify --all`",
                               actor=actor, kinds=(INTEGRITY,), reasons=gone)  # fmt: skip
