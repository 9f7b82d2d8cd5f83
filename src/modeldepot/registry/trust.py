"""What the depot knows about each stored version's trustworthiness: scan findings,
signatures, model cards, holds and exceptions to the policy. Rows hang off the manifest, so
every tag of the same bytes shares them. Each change is one transaction with its audit event,
which names the model and its digest (`name:tag@sha256:...`). Whether a version may be served
is not stored: the gate (verify/gate.py) weighs these facts under today's policy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from modeldepot.errors import ModelNotFound
from modeldepot.refs import Reference
from modeldepot.registry import schema as t
from modeldepot.registry.records import OK, PENDING, QUARANTINED, SCANNED, as_utc
from modeldepot.registry.versions import Registry

__all__ = ["HAND", "INTEGRITY", "OK", "PENDING", "QUARANTINED", "SCANNED", "CardRecord",
           "ExceptionGrant", "ExceptionRecord", "Facts", "HoldRecord", "ScanRecord",
           "SignatureRecord", "TrustStore", "subject_of"]  # fmt: skip

HAND = "hand"
"""A hold by hand (`depot quarantine hold`)."""
INTEGRITY = "integrity"
"""A hold by `depot verify --all`: stored bytes changed, or a signature fails."""


@dataclass(frozen=True)
class ScanRecord:
    scanner_version: str
    findings: list[dict[str, Any]]
    scanned_at: datetime


@dataclass(frozen=True)
class SignatureRecord:
    digest: str
    """The signature bundle, stored as a blob."""
    method: str
    identity: str
    public_key: str | None
    signed_at: datetime
    actor: str


@dataclass(frozen=True)
class CardRecord:
    digest: str
    edited: bool
    at: datetime
    actor: str


@dataclass(frozen=True)
class HoldRecord:
    id: int
    kind: str
    """HAND or INTEGRITY."""
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class ExceptionRecord:
    """A release of a version the policy refuses: in force until `until`, for the reasons in
    `covers`, while the version's findings are the ones it was granted on."""

    id: int
    reason: str
    actor: str
    at: datetime
    until: datetime
    covers: tuple[str, ...]
    findings: str
    """sha256 over the findings of the scan it was granted on (`findings_fingerprint`)."""

    def to_dict(self) -> dict[str, Any]:
        return {"actor": self.actor, "reason": self.reason, "at": self.at.isoformat(),
                "until": self.until.isoformat(), "covers": list(self.covers)}  # fmt: skip


@dataclass(frozen=True)
class ExceptionGrant:
    """What a new exception says (its actor, reason and time are the release's)."""

    until: datetime
    covers: tuple[str, ...]
    findings: str


@dataclass(frozen=True)
class Facts:
    """What is stored about one version that the gate weighs."""

    stored: str
    """PENDING or SCANNED."""
    findings: list[dict[str, Any]] | None
    """Of its latest scan (None: never scanned)."""
    signers: tuple[str, ...]
    """The identities (key fingerprints, or `sigstore`) of its signatures."""
    holds: tuple[HoldRecord, ...]
    """In force, oldest first."""
    exceptions: tuple[ExceptionRecord, ...]
    """Not revoked, newest first (the gate decides which is still in force)."""


def subject_of(conn: sa.Connection, digest: str) -> str:
    """How an event names a version: `name:tag@sha256:...` (its first tag), `name@sha256:...`
    when untagged, the digest alone when no model holds it any more."""
    row = conn.execute(
        sa.select(t.models.c.namespace, t.models.c.name, t.tags.c.name.label("tag"))
        .select_from(t.manifests)
        .join(t.versions, t.versions.c.manifest_id == t.manifests.c.id)
        .join(t.models, t.models.c.id == t.versions.c.model_id)
        .outerjoin(t.tags, t.tags.c.version_id == t.versions.c.id)
        .where(t.manifests.c.digest == digest)
        .order_by(t.tags.c.name.is_(None), t.versions.c.id, t.tags.c.name)
        .limit(1)
    ).first()
    if row is None:
        return digest
    return str(Reference(row.namespace, row.name, row.tag, digest))


def _rows_of(table: sa.Table, digest: str, *, newest_first: bool = False) -> sa.Select[Any]:
    """The rows of `table` (scans, signatures, cards) that hang off the manifest `digest`."""
    return (
        sa.select(table)
        .join(t.manifests, t.manifests.c.id == table.c.manifest_id)
        .where(t.manifests.c.digest == digest)
        .order_by(table.c.id.desc() if newest_first else table.c.id)
    )


class TrustStore:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.engine = registry.engine

    def _manifest(self, conn: sa.Connection, digest: str) -> int:
        found = conn.scalar(sa.select(t.manifests.c.id).where(t.manifests.c.digest == digest))
        if found is None:
            raise ModelNotFound(f"no stored version has digest {digest}")
        return int(found)

    # -- scans -----------------------------------------------------------------------------

    def record_scan(
        self, digest: str, version: str, findings: list[dict[str, Any]], *,
        worst: str | None, actor: str, details: dict[str, Any] | None = None,
        events: Iterable[tuple[str, dict[str, Any]]] = (),
    ) -> None:  # fmt: skip
        """Record a scan (a pending version becomes `scanned`) and, in the same transaction,
        `events` (action, details) about the version."""
        with self.engine.begin() as conn:
            conn.execute(
                t.scans.insert().values(
                    manifest_id=self._manifest(conn, digest), scanner_version=version,
                    findings=findings, scanned_at=datetime.now(UTC),
                )
            )  # fmt: skip
            conn.execute(
                t.manifests.update()
                .where(t.manifests.c.digest == digest, t.manifests.c.status == PENDING)
                .values(status=SCANNED)
            )
            subject = subject_of(conn, digest)
            summary = {"findings": len(findings), "worst": worst or "none", **(details or {})}
            self.registry.audit.append_in(conn, actor, "scan", subject, summary)
            for action, more in events:
                self.registry.audit.append_in(conn, actor, action, subject, more)

    def latest_scan(self, digest: str) -> ScanRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(_rows_of(t.scans, digest, newest_first=True).limit(1)).first()
        if row is None:
            return None
        return ScanRecord(row.scanner_version, list(row.findings), as_utc(row.scanned_at))

    # -- holds and exceptions --------------------------------------------------------------

    def facts(self, digests: Iterable[str]) -> dict[str, Facts]:
        """What the gate weighs for each of `digests` (stored versions), read in a few
        queries whatever their number."""
        wanted = sorted(set(digests))
        if not wanted:
            return {}
        m = t.manifests
        with self.engine.connect() as conn:
            query = sa.select(m.c.id, m.c.digest, m.c.status).where(m.c.digest.in_(wanted))
            ids = {r.id: (r.digest, r.status) for r in conn.execute(query)}
            keys = list(ids)
            findings: dict[int, list[dict[str, Any]]] = {}
            newest = (sa.select(sa.func.max(t.scans.c.id))
                      .where(t.scans.c.manifest_id.in_(keys))
                      .group_by(t.scans.c.manifest_id))  # fmt: skip
            for r in conn.execute(sa.select(t.scans.c.manifest_id, t.scans.c.findings)
                                  .where(t.scans.c.id.in_(newest))):  # fmt: skip
                findings[r.manifest_id] = list(r.findings)
            signers: dict[int, list[str]] = {}
            for r in conn.execute(sa.select(t.signatures.c.manifest_id, t.signatures.c.identity)
                                  .where(t.signatures.c.manifest_id.in_(keys))
                                  .order_by(t.signatures.c.id)):  # fmt: skip
                signers.setdefault(r.manifest_id, []).append(r.identity)
            holds: dict[int, list[HoldRecord]] = {}
            for r in conn.execute(sa.select(t.holds)
                                  .where(t.holds.c.manifest_id.in_(keys),
                                         t.holds.c.released_at.is_(None))
                                  .order_by(t.holds.c.id)):  # fmt: skip
                holds.setdefault(r.manifest_id, []).append(
                    HoldRecord(r.id, r.kind, r.reason, r.actor, as_utc(r.at))
                )
            exceptions: dict[int, list[ExceptionRecord]] = {}
            for r in conn.execute(sa.select(t.exceptions)
                                  .where(t.exceptions.c.manifest_id.in_(keys),
                                         t.exceptions.c.revoked_at.is_(None))
                                  .order_by(t.exceptions.c.id.desc())):  # fmt: skip
                exceptions.setdefault(r.manifest_id, []).append(ExceptionRecord(
                    r.id, r.reason, r.actor, as_utc(r.at), as_utc(r.until),
                    tuple(r.covers or ()), r.findings))  # fmt: skip
        return {
            digest: Facts(
                status, findings.get(i), tuple(signers.get(i, ())), tuple(holds.get(i, ())),
                tuple(exceptions.get(i, ())),
            )
            for i, (digest, status) in ids.items()
        }  # fmt: skip

    def hold(self, digest: str, kind: str, reason: str, *, actor: str,
             details: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Hold the version (`kind` HAND or INTEGRITY); a hold by hand also ends any exception
        in force. Recorded as `quarantine.hold`."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            manifest = self._manifest(conn, digest)
            conn.execute(t.holds.insert().values(manifest_id=manifest, kind=kind, reason=reason,
                                                 actor=actor, at=now))  # fmt: skip
            revoked = 0
            if kind == HAND:
                revoked = conn.execute(
                    t.exceptions.update()
                    .where(t.exceptions.c.manifest_id == manifest,
                           t.exceptions.c.revoked_at.is_(None))
                    .values(revoked_at=now, revoked_by=actor)
                ).rowcount  # fmt: skip
            self.registry.audit.append_in(
                conn, actor, "quarantine.hold", subject_of(conn, digest),
                {"kind": kind, "reason": reason, **({"exceptions_ended": revoked} if revoked
                                                     else {}), **(details or {})})  # fmt: skip

    def release(self, digest: str, reason: str, *, actor: str, kinds: tuple[str, ...],
                reasons: Iterable[str] | None = None, exception: ExceptionGrant | None = None,
                details: dict[str, Any] | None = None) -> list[HoldRecord]:  # fmt: skip
        """Release the version's holds of `kinds` (only those with one of `reasons`, when
        given) and, with `exception`, record an exception to the policy (ending any earlier
        one); one transaction, one `quarantine.release` event. Returns the holds released."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            manifest = self._manifest(conn, digest)
            query = sa.select(t.holds).where(
                t.holds.c.manifest_id == manifest, t.holds.c.released_at.is_(None),
                t.holds.c.kind.in_(kinds))  # fmt: skip
            if reasons is not None:
                query = query.where(t.holds.c.reason.in_(list(reasons)))
            rows = conn.execute(query.order_by(t.holds.c.id)).all()
            released = [HoldRecord(r.id, r.kind, r.reason, r.actor, as_utc(r.at)) for r in rows]
            if rows:
                conn.execute(t.holds.update().where(t.holds.c.id.in_([r.id for r in rows]))
                             .values(released_at=now, released_by=actor,
                                     release_reason=reason))  # fmt: skip
            event: dict[str, Any] = {
                "reason": reason,
                "holds": [f"{h.reason} ({h.actor})" for h in released],
            }
            if exception is not None:
                conn.execute(
                    t.exceptions.update()
                    .where(t.exceptions.c.manifest_id == manifest,
                           t.exceptions.c.revoked_at.is_(None))
                    .values(revoked_at=now, revoked_by=actor)
                )  # fmt: skip
                conn.execute(t.exceptions.insert().values(
                    manifest_id=manifest, reason=reason, actor=actor, at=now,
                    until=exception.until, covers=list(exception.covers),
                    findings=exception.findings))  # fmt: skip
                event["exception"] = {"until": exception.until.isoformat(),
                                      "covers": list(exception.covers),
                                      "findings": exception.findings}  # fmt: skip
            self.registry.audit.append_in(conn, actor, "quarantine.release",
                                          subject_of(conn, digest),
                                          event | (details or {}))  # fmt: skip
        return released

    def note(self, digest: str, action: str, details: dict[str, Any], *, actor: str) -> None:
        """An event about the version (named by model and digest), in a transaction of its
        own."""
        with self.engine.begin() as conn:
            self.registry.audit.append_in(conn, actor, action, subject_of(conn, digest), details)

    def blob_users(self, digest: str) -> list[tuple[tuple[str, ...], str]]:
        """Every version whose manifest, config, files, signatures or cards include the blob
        `digest`: its names (the repository, and `repository:tag` for each tag) and its
        manifest digest (whether it may be served is the gate's to say)."""
        m, v, mo, tg = t.manifests, t.versions, t.models, t.tags
        owning = sa.or_(
            m.c.digest == digest,
            m.c.config_digest == digest,
            sa.exists().where(t.files.c.manifest_id == m.c.id, t.files.c.digest == digest),
            sa.exists().where(t.signatures.c.manifest_id == m.c.id,
                              t.signatures.c.digest == digest),
            sa.exists().where(t.cards.c.manifest_id == m.c.id, t.cards.c.digest == digest),
        )  # fmt: skip
        query = (
            sa.select(v.c.id, mo.c.namespace, mo.c.name, m.c.digest, tg.c.name.label("tag"))
            .join(m, m.c.id == v.c.manifest_id)
            .join(mo, mo.c.id == v.c.model_id)
            .outerjoin(tg, tg.c.version_id == v.c.id)
            .where(owning)
        )
        found: dict[int, tuple[list[str], str]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                repo = Reference(row.namespace, row.name, None, None).repository
                names, _ = found.setdefault(row.id, ([repo], row.digest))
                if row.tag:
                    names.append(f"{repo}:{row.tag}")
        return [(tuple(names), manifest) for names, manifest in found.values()]

    # -- signatures ------------------------------------------------------------------------

    def add_signature(self, digest: str, record: SignatureRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                t.signatures.insert().values(
                    manifest_id=self._manifest(conn, digest), digest=record.digest,
                    method=record.method, identity=record.identity,
                    public_key=record.public_key, signed_at=record.signed_at,
                    actor=record.actor,
                )
            )  # fmt: skip
            self.registry.audit.append_in(conn, record.actor, "sign", subject_of(conn, digest),
                                 {"method": record.method, "identity": record.identity,
                                  "signature": record.digest})  # fmt: skip

    def signatures(self, digest: str) -> list[SignatureRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(_rows_of(t.signatures, digest)).all()
        return [
            SignatureRecord(r.digest, r.method, r.identity, r.public_key, as_utc(r.signed_at),
                            r.actor)
            for r in rows
        ]  # fmt: skip

    # -- cards -----------------------------------------------------------------------------

    def add_card(self, digest: str, card_digest: str, *, edited: bool, actor: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                t.cards.insert().values(
                    manifest_id=self._manifest(conn, digest), digest=card_digest,
                    edited=edited, at=datetime.now(UTC), actor=actor,
                )
            )  # fmt: skip
            if edited:
                self.registry.audit.append_in(
                    conn, actor, "card.edit", subject_of(conn, digest), {"card": card_digest}
                )

    def card(self, digest: str) -> CardRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(_rows_of(t.cards, digest, newest_first=True).limit(1)).first()
        return (
            None if row is None else CardRecord(row.digest, row.edited, as_utc(row.at), row.actor)
        )
