"""Node queues: acknowledged-but-unsealed records and refused records.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending",
        sa.Column("chain", sa.String(8), primary_key=True),
        sa.Column("record_id", sa.String(80), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "rejected",
        sa.Column("chain", sa.String(8), primary_key=True),
        sa.Column("record_id", sa.String(80), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(16), nullable=False),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rejected")
    op.drop_table("pending")
