"""Evaluations of two kinds: `capability` (what a model can do) and `safety` (red-teaming with
garak, bias and over-refusal), so that the policy and the card read the safety ones apart.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default="capability")
        )
    op.create_index("ix_evaluations_kind", "evaluations", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_evaluations_kind", "evaluations")
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("kind")
