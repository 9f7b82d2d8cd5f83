"""Holds and exceptions; a version's admission is no longer stored.

Before: `manifests.status` said ok or quarantined, as the policy was when it was last applied,
with the reasons beside it; a release set it to ok whatever the policy said. Now the status is
computed by the gate from the findings, signatures, holds and exceptions under today's policy,
and `manifests.status` only says whether the version was scanned (`pending`, `scanned`).
Reasons that were holds (by hand, or changed bytes found by `depot verify --all`) become rows
of `holds`; reasons that were the policy's are dropped, since the gate finds them again.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_NOW = sa.DateTime(timezone=True)
_HELD = "held by hand"
_POLICY = ("scan:", "licence:", "format:", "advisory ", "signature: no valid signature by a "
           "trusted key", "pending:")  # fmt: skip


def _hold(reason: str) -> tuple[str, str] | None:
    """(kind, reason) of a recorded reason that was a hold; None for the policy's own."""
    if reason == _HELD or reason.startswith(f"{_HELD}:"):
        return "hand", reason.removeprefix(_HELD).removeprefix(":").strip() or _HELD
    if reason.startswith(_POLICY):
        return None
    return "integrity", reason


def upgrade() -> None:
    for name in ("holds", "exceptions"):
        columns: list[sa.Column[object]] = [
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("manifest_id", sa.Integer, nullable=False),
        ]
        if name == "holds":
            columns += [
                sa.Column("kind", sa.String(16), nullable=False),
                sa.Column("reason", sa.Text, nullable=False),
                sa.Column("actor", sa.String(128), nullable=False),
                sa.Column("at", _NOW, nullable=False),
                sa.Column("released_at", _NOW),
                sa.Column("released_by", sa.String(128)),
                sa.Column("release_reason", sa.Text),
            ]
        else:
            columns += [
                sa.Column("reason", sa.Text, nullable=False),
                sa.Column("actor", sa.String(128), nullable=False),
                sa.Column("at", _NOW, nullable=False),
                sa.Column("until", _NOW, nullable=False),
                sa.Column("covers", sa.JSON, nullable=False),
                sa.Column("findings", sa.String(64), nullable=False),
                sa.Column("revoked_at", _NOW),
                sa.Column("revoked_by", sa.String(128)),
            ]
        op.create_table(
            name,
            *columns,
            sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
            sa.ForeignKeyConstraint(
                ["manifest_id"], ["manifests.id"],
                name=f"fk_{name}_manifest_id_manifests", ondelete="CASCADE",
            ),
        )  # fmt: skip
        op.create_index(f"ix_{name}_manifest_id", name, ["manifest_id"])
    _holds_from_reasons()
    op.drop_column("manifests", "status_reasons")  # SQLite 3.35+ drops a plain column in place
    if op.get_bind().dialect.name == "postgresql":
        # (SQLite cannot change a default without rebuilding the table, which would cascade
        # into every table that refers to it; the default is never used: inserts name it.)
        op.alter_column("manifests", "status", server_default="scanned")


def _holds_from_reasons() -> None:
    conn = op.get_bind()
    manifests = sa.table("manifests", sa.column("id", sa.Integer),
                         sa.column("digest", sa.String), sa.column("status", sa.String),
                         sa.column("status_reasons", sa.JSON))  # fmt: skip
    events = sa.table("events", sa.column("id", sa.Integer), sa.column("at", _NOW),
                      sa.column("actor", sa.String), sa.column("action", sa.String),
                      sa.column("subject", sa.Text))  # fmt: skip
    holds = sa.table("holds", sa.column("manifest_id", sa.Integer), sa.column("kind", sa.String),
                     sa.column("reason", sa.Text), sa.column("actor", sa.String),
                     sa.column("at", _NOW))  # fmt: skip
    held = conn.execute(
        sa.select(manifests.c.id, manifests.c.digest, manifests.c.status_reasons).where(
            manifests.c.status == "quarantined"
        )
    ).all()
    for manifest_id, digest, reasons in held:
        last = conn.execute(
            sa.select(events.c.actor, events.c.at)
            .where(events.c.subject.endswith(digest), events.c.action.startswith("quarantine"))
            .order_by(events.c.id.desc())
            .limit(1)
        ).first()
        actor, at = (last.actor, last.at) if last else ("depot", datetime.now(UTC))
        for reason in reasons or []:
            found = _hold(str(reason))
            if found:
                kind, text = found
                conn.execute(holds.insert().values(manifest_id=manifest_id, kind=kind,
                                                   reason=text, actor=actor, at=at))  # fmt: skip
    conn.execute(manifests.update().where(manifests.c.status != "pending").values(status="scanned"))


def downgrade() -> None:
    op.add_column("manifests", sa.Column("status_reasons", sa.JSON))
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE manifests SET status = 'ok' WHERE status = 'scanned'"))
    conn.execute(sa.text(
        "UPDATE manifests SET status = 'quarantined' WHERE id IN "
        "(SELECT manifest_id FROM holds WHERE released_at IS NULL)"
    ))  # fmt: skip
    if conn.dialect.name == "postgresql":
        op.alter_column("manifests", "status", server_default="ok")
    op.drop_table("exceptions")
    op.drop_table("holds")
