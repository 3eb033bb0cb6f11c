"""The first schema: log tables and derived state.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S8 = sa.String(8)
ID = sa.String(56)
BIG = sa.BigInteger()
H32 = sa.LargeBinary(32)


def _req(name: str, type_: Any, *, pk: bool = False) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=False, primary_key=pk, autoincrement=False)


def upgrade() -> None:
    op.create_table(
        "kpl_meta", _req("key", sa.String(64), pk=True), _req("value", sa.LargeBinary())
    )
    op.create_table(
        "headers",
        _req("chain", S8, pk=True),
        _req("height", BIG, pk=True),
        _req("hash", H32),
        _req("size", BIG),
        _req("time", sa.String(20)),
        _req("header", sa.LargeBinary()),
        _req("sig", sa.LargeBinary(64)),
    )
    op.create_table(
        "records",
        _req("chain", S8, pk=True),
        _req("idx", BIG, pk=True),
        _req("height", BIG),
        _req("record_id", sa.String(80)),
        _req("kind", sa.String(32)),
        _req("leaf", H32),
        _req("raw", sa.LargeBinary()),
    )
    op.create_index("records_by_id", "records", ["chain", "record_id"], unique=True)
    op.create_table(
        "merkle_nodes",
        _req("chain", S8, pk=True),
        _req("level", sa.Integer(), pk=True),
        _req("idx", BIG, pk=True),
        _req("hash", H32),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "parcels",
        _req("id", ID, pk=True),
        _req("chain", S8),
        sa.Column("custodian", ID),
        _req("status", sa.String(16)),
        _req("weight", BIG),
        _req("value", BIG),
        _req("hs", S8),
        _req("origin", sa.Text()),
        sa.Column("certificate", ID),
        _req("created_chain", S8),
        _req("created_idx", BIG),
        _req("created_hash", H32),
    )
    op.create_index("parcels_by_custodian", "parcels", ["custodian"])
    op.create_table(
        "parties",
        _req("id", ID, pk=True),
        _req("chain", S8),
        _req("name", sa.Text()),
        _req("role", sa.String(16)),
        _req("address", sa.Text()),
        _req("active", sa.Boolean()),
        _req("reg_chain", S8),
        _req("reg_idx", BIG),
        _req("reg_hash", H32),
    )
    op.create_table(
        "certificates",
        _req("number", ID, pk=True),
        _req("issuer", S8),
        _req("destination", S8),
        _req("exporter", ID),
        _req("importer_name", sa.Text()),
        _req("status", sa.String(16)),
        _req("issued", sa.String(10)),
        _req("expires", sa.String(10)),
        _req("carats", BIG),
        _req("value", BIG),
        _req("origin", S8),
        _req("parcels", sa.Text()),
        _req("issue_chain", S8),
        _req("issue_idx", BIG),
        _req("issue_hash", H32),
        sa.Column("closed_chain", S8),
        sa.Column("closed_idx", BIG),
        sa.Column("closed_hash", H32),
        sa.Column("received", BIG),
    )
    op.create_index("certificates_by_route", "certificates", ["issuer", "destination"])
    op.create_table(
        "edges",
        _req("parent", ID, pk=True),
        _req("child", ID, pk=True),
        _req("chain", S8),
        _req("idx", BIG),
        _req("hash", H32),
    )
    op.create_index("edges_by_child", "edges", ["child"])
    op.create_table(
        "parcel_events",
        _req("parcel", ID, pk=True),
        _req("chain", S8, pk=True),
        _req("idx", BIG, pk=True),
        _req("height", BIG),
        _req("kind", sa.String(32)),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "restrictions",
        _req("chain", S8, pk=True),
        _req("origin", S8, pk=True),
        _req("active", sa.Boolean()),
    )
    op.create_table(
        "members",
        _req("code", S8, pk=True),
        _req("kp_size", BIG, pk=True),
        _req("role", sa.String(16)),
        _req("active", sa.Boolean()),
    )
    op.create_table(
        "chain_keys",
        _req("chain", S8, pk=True),
        _req("from_height", BIG, pk=True),
        _req("kp_size", BIG, pk=True),
        _req("key", H32),
    )
    op.create_table(
        "confirmations", _req("chain", S8, pk=True), _req("number", ID, pk=True), _req("idx", BIG)
    )
    op.create_table(
        "evidence",
        _req("id", sa.String(64), pk=True),
        _req("chain", S8),
        _req("doc", sa.LargeBinary()),
    )


def downgrade() -> None:
    for name in (
        "evidence",
        "confirmations",
        "chain_keys",
        "members",
        "restrictions",
        "parcel_events",
        "edges",
        "certificates",
        "parties",
        "parcels",
        "merkle_nodes",
        "records",
        "headers",
        "kpl_meta",
    ):
        op.drop_table(name)
