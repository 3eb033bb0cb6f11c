"""Record format 2: committed confidential fields and their disclosures.

The state's value columns (parcels, certificates, first-sale prices) hold the
commitment (hex) of a value instead of the clear cents, and the new
``disclosures`` table keeps the clear values and salts this node may know;
``disclosure_findings`` the disclosure rules found broken when disclosures
arrived. A store holding records of format 1 cannot move: their bytes are
refused by this code (there is no deployed network of format 1 to carry over),
so the upgrade refuses such a store with a message saying so.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from alembic.util.exc import CommandError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    held = op.get_bind().execute(sa.text("SELECT count(*) FROM records")).scalar()
    if held:
        raise CommandError(
            f"this store holds {held} records of format 1, which format 2 refuses: "
            "start the network again from its genesis (no data of format 1 is carried over)"
        )
    with op.batch_alter_table("parcels") as batch:
        batch.alter_column(
            "value",
            type_=sa.String(64),
            existing_type=sa.BigInteger(),
            existing_nullable=False,
            postgresql_using="value::text",
        )
    with op.batch_alter_table("certificates") as batch:
        batch.alter_column(
            "value",
            type_=sa.String(64),
            existing_type=sa.BigInteger(),
            existing_nullable=False,
            postgresql_using="value::text",
        )
    with op.batch_alter_table("purchases") as batch:
        batch.alter_column(
            "price",
            type_=sa.String(64),
            existing_type=sa.BigInteger(),
            existing_nullable=False,
            postgresql_using="price::text",
        )
    op.create_table(
        "disclosures",
        sa.Column("record", sa.LargeBinary(32), primary_key=True),
        sa.Column("path", sa.String(120), primary_key=True),
        sa.Column("commitment", sa.String(64), nullable=False),
        sa.Column("chain", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("cents", sa.BigInteger()),
    )
    op.create_index("disclosures_by_commitment", "disclosures", ["commitment"])
    op.create_index("disclosures_by_chain", "disclosures", ["chain"])
    op.create_table(
        "disclosure_findings",
        sa.Column("record", sa.LargeBinary(32), primary_key=True),
        sa.Column("chain", sa.String(8), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(16), nullable=False),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("disclosure_findings")
    op.drop_index("disclosures_by_chain", "disclosures")
    op.drop_index("disclosures_by_commitment", "disclosures")
    op.drop_table("disclosures")
    for table, column in (("purchases", "price"), ("certificates", "value"), ("parcels", "value")):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                type_=sa.BigInteger(),
                existing_type=sa.String(64),
                existing_nullable=False,
                postgresql_using=f"{column}::bigint",
            )
