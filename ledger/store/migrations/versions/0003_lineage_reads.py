"""Lineage reads: find a certificate by the record that issued or closed it.

The history of a parcel names the certificate of each ``certificate.*``
record it lists; these two indexes let it join ``certificates`` on the
record's place in the log instead of parsing the record again.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("certificates_by_issue", "certificates", ["issue_chain", "issue_idx"])
    op.create_index("certificates_by_close", "certificates", ["closed_chain", "closed_idx"])


def downgrade() -> None:
    op.drop_index("certificates_by_close", "certificates")
    op.drop_index("certificates_by_issue", "certificates")
