"""Quotas counted in the registry, so replicas of `depot serve` share them: the requests of the
last minute, and the tokens reserved by requests still running.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quota_requests"),
    )
    op.create_index("ix_quota_requests_key_at", "quota_requests", ["key", "at"])
    op.create_table(
        "quota_reservations",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quota_reservations"),
    )
    op.create_index("ix_quota_reservations_key", "quota_reservations", ["key"])


def downgrade() -> None:
    op.drop_table("quota_reservations")
    op.drop_table("quota_requests")
