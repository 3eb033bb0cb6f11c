"""The artisanal chain: claims and licences, first sales, diagnostic self-assessments,
and the claims an artisanal parcel was bought from.

Self-contained: it creates its own three tables and adds one nullable column
to ``parcels`` (NULL reads as "no claims": mine output registered before it).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("parcels") as batch:
        batch.add_column(sa.Column("claims", sa.Text(), nullable=True))
    op.create_table(
        "licences",
        sa.Column("id", sa.String(56), primary_key=True),
        sa.Column("chain", sa.String(8), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("claim", sa.String(56)),
        sa.Column("zones", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.String(10), nullable=False),
        sa.Column("valid_until", sa.String(10), nullable=False),
        sa.Column("ended", sa.String(10)),
        sa.Column("end_reason", sa.String(16)),
        sa.Column("reg_chain", sa.String(8), nullable=False),
        sa.Column("reg_idx", sa.BigInteger(), nullable=False),
        sa.Column("reg_hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_index("licences_by_chain", "licences", ["chain", "type"])
    op.create_table(
        "purchases",
        sa.Column("parcel", sa.String(56), primary_key=True),
        sa.Column("chain", sa.String(8), nullable=False),
        sa.Column("buyer", sa.String(56), nullable=False),
        sa.Column("digger", sa.String(56), nullable=False),
        sa.Column("claim", sa.String(56), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("weight", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("bought", sa.String(10), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
    )
    op.create_index("purchases_by_date", "purchases", ["chain", "bought"])
    op.create_table(
        "assessments",
        sa.Column("chain", sa.String(8), primary_key=True),
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("indicator", sa.String(64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("assessed", sa.String(10), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("assessments")
    op.drop_index("purchases_by_date", "purchases")
    op.drop_table("purchases")
    op.drop_index("licences_by_chain", "licences")
    op.drop_table("licences")
    with op.batch_alter_table("parcels") as batch:
        batch.drop_column("claims")
