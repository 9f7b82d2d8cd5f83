"""Transfer grants: the short-lived tokens of the Hugging Face Xet protocol (a read token for
one model version, a signed URL for one stored file), known to every replica on one registry.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transfer_grants",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("blob", sa.String(71)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_transfer_grants"),
    )
    op.create_index("ix_transfer_grants_expires", "transfer_grants", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_transfer_grants_expires", "transfer_grants")
    op.drop_table("transfer_grants")
