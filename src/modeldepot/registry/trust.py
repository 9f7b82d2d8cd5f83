"""What the depot knows about each stored version's trustworthiness: scan findings,
signatures, model cards, and whether it is quarantined. Rows hang off the manifest, so every
tag of the same bytes shares them. Each change is one transaction with its audit event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from modeldepot.errors import ModelNotFound
from modeldepot.refs import Reference
from modeldepot.registry import schema as t
from modeldepot.registry.records import OK, PENDING, QUARANTINED, as_utc
from modeldepot.registry.versions import Registry

__all__ = ["OK", "PENDING", "QUARANTINED", "CardRecord", "ScanRecord", "SignatureRecord",
           "Status", "TrustStore"]  # fmt: skip


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
class Status:
    digest: str
    status: str
    reasons: list[str]

    @property
    def quarantined(self) -> bool:
        return self.status == QUARANTINED

    @property
    def pending(self) -> bool:
        return self.status == PENDING


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
        worst: str | None, actor: str, admit: bool = False,
    ) -> None:  # fmt: skip
        """Record a scan; with `admit`, a pending version becomes `ok` in the same
        transaction (the policy found nothing against it)."""
        with self.engine.begin() as conn:
            conn.execute(
                t.scans.insert().values(
                    manifest_id=self._manifest(conn, digest), scanner_version=version,
                    findings=findings, scanned_at=datetime.now(UTC),
                )
            )  # fmt: skip
            details: dict[str, Any] = {"findings": len(findings), "worst": worst or "none"}
            if admit:
                admitted = conn.execute(
                    t.manifests.update()
                    .where(t.manifests.c.digest == digest, t.manifests.c.status == PENDING)
                    .values(status=OK, status_reasons=[])
                )
                if admitted.rowcount:
                    details["admitted"] = True
            self.registry.audit.append_in(conn, actor, "scan", digest, details)

    def latest_scan(self, digest: str) -> ScanRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(_rows_of(t.scans, digest, newest_first=True).limit(1)).first()
        if row is None:
            return None
        return ScanRecord(row.scanner_version, list(row.findings), as_utc(row.scanned_at))

    # -- quarantine ------------------------------------------------------------------------

    def status(self, digest: str) -> Status:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.manifests.c.status, t.manifests.c.status_reasons).where(
                    t.manifests.c.digest == digest
                )
            ).first()
        if row is None:
            raise ModelNotFound(f"no stored version has digest {digest}")
        return Status(digest, row.status, list(row.status_reasons or []))

    def set_status(self, digest: str, status: str, reasons: list[str], *, actor: str,
                   action: str, note: str | None = None) -> None:  # fmt: skip
        with self.engine.begin() as conn:
            self._manifest(conn, digest)
            conn.execute(
                t.manifests.update()
                .where(t.manifests.c.digest == digest)
                .values(status=status, status_reasons=reasons)
            )
            details: dict[str, Any] = {"reasons": reasons}
            if note:
                details["note"] = note
            self.registry.audit.append_in(conn, actor, action, digest, details)

    def quarantined(self) -> list[Status]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.manifests.c.digest, t.manifests.c.status_reasons)
                .where(t.manifests.c.status == QUARANTINED)
                .order_by(t.manifests.c.id)
            ).all()
        return [Status(r.digest, QUARANTINED, list(r.status_reasons or [])) for r in rows]

    def blob_users(self, digest: str) -> list[tuple[tuple[str, ...], str]]:
        """Every version whose manifest, config, files, signatures or cards include the blob
        `digest`: its names (the repository, and `repository:tag` for each tag) and status."""
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
            sa.select(v.c.id, mo.c.namespace, mo.c.name, m.c.status, tg.c.name.label("tag"))
            .join(m, m.c.id == v.c.manifest_id)
            .join(mo, mo.c.id == v.c.model_id)
            .outerjoin(tg, tg.c.version_id == v.c.id)
            .where(owning)
        )
        found: dict[int, tuple[list[str], str]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                repo = Reference(row.namespace, row.name, None, None).repository
                names, _ = found.setdefault(row.id, ([repo], row.status))
                if row.tag:
                    names.append(f"{repo}:{row.tag}")
        return [(tuple(names), status) for names, status in found.values()]

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
            self.registry.audit.append_in(conn, record.actor, "sign", digest,
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
                    conn, actor, "card.edit", digest, {"card": card_digest}
                )

    def card(self, digest: str) -> CardRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(_rows_of(t.cards, digest, newest_first=True).limit(1)).first()
        return (
            None if row is None else CardRecord(row.digest, row.edited, as_utc(row.at), row.actor)
        )
