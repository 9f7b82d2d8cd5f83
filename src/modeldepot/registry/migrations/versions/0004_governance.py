"""Scans, signatures, model cards, quarantine status, and the hash chain of the events.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modeldepot.registry.audit import chain_hash

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("manifests") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="ok"))
        batch.add_column(sa.Column("status_reasons", sa.JSON))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(64)))
        batch.add_column(sa.Column("hash", sa.String(64)))
    for name in ("scans", "signatures", "cards"):
        columns: list[sa.Column[object]] = [
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("manifest_id", sa.Integer, nullable=False),
        ]
        if name == "scans":
            columns += [
                sa.Column("scanner_version", sa.String(16), nullable=False),
                sa.Column("findings", sa.JSON, nullable=False),
                sa.Column("scanned_at", _NOW, nullable=False),
            ]
        elif name == "signatures":
            columns += [
                sa.Column("digest", sa.String(71), nullable=False),
                sa.Column("method", sa.String(16), nullable=False),
                sa.Column("identity", sa.Text, nullable=False),
                sa.Column("public_key", sa.Text),
                sa.Column("signed_at", _NOW, nullable=False),
                sa.Column("actor", sa.String(128), nullable=False),
            ]
        else:
            columns += [
                sa.Column("digest", sa.String(71), nullable=False),
                sa.Column("edited", sa.Boolean, nullable=False),
                sa.Column("at", _NOW, nullable=False),
                sa.Column("actor", sa.String(128), nullable=False),
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
    _chain_existing_events()


def _chain_existing_events() -> None:
    conn = op.get_bind()
    events = sa.table(
        "events",
        sa.column("id", sa.Integer), sa.column("at", _NOW), sa.column("actor", sa.String),
        sa.column("action", sa.String), sa.column("subject", sa.Text),
        sa.column("details", sa.JSON), sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )  # fmt: skip
    previous = ""
    for row in conn.execute(sa.select(events).order_by(events.c.id)).mappings().all():
        digest = chain_hash(previous, row["at"], row["actor"], row["action"], row["subject"],
                            row["details"])  # fmt: skip
        conn.execute(
            events.update().where(events.c.id == row["id"]).values(prev_hash=previous, hash=digest)
        )
        previous = digest


def downgrade() -> None:
    for name in ("cards", "signatures", "scans"):
        op.drop_table(name)
    with op.batch_alter_table("events") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
    with op.batch_alter_table("manifests") as batch:
        batch.drop_column("status_reasons")
        batch.drop_column("status")
