"""The SQL schema of a node's store (SQLAlchemy Core).

The log tables (``headers``, ``records``, ``merkle_nodes``) are the truth:
append-only, exactly the bytes that were hashed and signed. Every other table
is derived state that ``store.verifier.verify`` can rebuild from the log and compare.

Merkle nodes: level 0 is each record's leaf hash (kept in ``records.leaf``);
``merkle_nodes`` holds every complete subtree of level >= 1, so a proof is one
indexed read of O(log n) rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "SCHEMA_REVISION",
    "assessments",
    "certificates",
    "confirmations",
    "disclosure_findings",
    "disclosures",
    "edges",
    "evidence",
    "headers",
    "keys",
    "licences",
    "members",
    "merkle_nodes",
    "meta",
    "metadata",
    "parcel_events",
    "parcels",
    "parties",
    "pending",
    "purchases",
    "records",
    "rejected",
    "restrictions",
]

#: the Alembic revision this code reads and writes; a store at any other
#: revision is refused until ``kpl db upgrade`` brings it here.
SCHEMA_REVISION = "0005"

metadata = MetaData()

meta = Table(
    "kpl_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

headers = Table(
    "headers",
    metadata,
    Column("chain", String(8), primary_key=True),
    Column("height", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("time", String(20), nullable=False),
    Column("header", LargeBinary, nullable=False),
    Column("sig", LargeBinary(64), nullable=False),
)

records = Table(
    "records",
    metadata,
    Column("chain", String(8), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("height", BigInteger, nullable=False),
    Column("record_id", String(80), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("leaf", LargeBinary(32), nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Index("records_by_id", "chain", "record_id", unique=True),
)

merkle_nodes = Table(
    "merkle_nodes",
    metadata,
    Column("chain", String(8), primary_key=True),
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,
)

parcels = Table(
    "parcels",
    metadata,
    Column("id", String(56), primary_key=True),
    Column("chain", String(8), nullable=False),
    Column("custodian", String(56)),
    Column("status", String(16), nullable=False),
    Column("weight", BigInteger, nullable=False),
    # 0005: the commitment (hex) of its value; the clear value is a disclosure
    Column("value", String(64), nullable=False),
    Column("hs", String(8), nullable=False),
    Column("origin", Text, nullable=False),
    Column("certificate", String(56)),
    Column("created_chain", String(8), nullable=False),
    Column("created_idx", BigInteger, nullable=False),
    Column("created_hash", LargeBinary(32), nullable=False),
    Index("parcels_by_custodian", "custodian"),
    # 0004: the claims an artisanal parcel was bought from (NULL: none)
    Column("claims", Text),
)

parties = Table(
    "parties",
    metadata,
    Column("id", String(56), primary_key=True),
    Column("chain", String(8), nullable=False),
    Column("name", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("address", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("reg_chain", String(8), nullable=False),
    Column("reg_idx", BigInteger, nullable=False),
    Column("reg_hash", LargeBinary(32), nullable=False),
)

certificates = Table(
    "certificates",
    metadata,
    Column("number", String(56), primary_key=True),
    Column("issuer", String(8), nullable=False),
    Column("destination", String(8), nullable=False),
    Column("exporter", String(56), nullable=False),
    Column("importer_name", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued", String(10), nullable=False),
    Column("expires", String(10), nullable=False),
    Column("carats", BigInteger, nullable=False),
    Column("value", String(64), nullable=False),  # 0005: commitment (hex)
    Column("origin", String(8), nullable=False),
    Column("parcels", Text, nullable=False),
    Column("issue_chain", String(8), nullable=False),
    Column("issue_idx", BigInteger, nullable=False),
    Column("issue_hash", LargeBinary(32), nullable=False),
    Column("closed_chain", String(8)),
    Column("closed_idx", BigInteger),
    Column("closed_hash", LargeBinary(32)),
    Column("received", BigInteger),
    Index("certificates_by_route", "issuer", "destination"),
    # 0003: the certificate a record issued or closed (lineage reads)
    Index("certificates_by_issue", "issue_chain", "issue_idx"),
    Index("certificates_by_close", "closed_chain", "closed_idx"),
)

edges = Table(
    "edges",
    metadata,
    Column("parent", String(56), primary_key=True),
    Column("child", String(56), primary_key=True),
    Column("chain", String(8), nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    Index("edges_by_child", "child"),
)

parcel_events = Table(
    "parcel_events",
    metadata,
    Column("parcel", String(56), primary_key=True),
    Column("chain", String(8), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("height", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    sqlite_with_rowid=False,
)

restrictions = Table(
    "restrictions",
    metadata,
    Column("chain", String(8), primary_key=True),
    Column("origin", String(8), primary_key=True),
    Column("active", Boolean, nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("code", String(8), primary_key=True),
    Column("kp_size", BigInteger, primary_key=True, autoincrement=False),
    Column("role", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
)

keys = Table(
    "chain_keys",
    metadata,
    Column("chain", String(8), primary_key=True),
    Column("from_height", BigInteger, primary_key=True, autoincrement=False),
    Column("kp_size", BigInteger, primary_key=True, autoincrement=False),
    Column("key", LargeBinary(32), nullable=False),
)

confirmations = Table(
    "confirmations",
    metadata,
    Column("chain", String(8), primary_key=True),
    Column("number", String(56), primary_key=True),
    Column("idx", BigInteger, nullable=False),
)

evidence = Table(
    "evidence",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("chain", String(8), nullable=False),
    Column("doc", LargeBinary, nullable=False),
)

# ---------------------------------------------------------------- node tables (0002)
# Records a node has acknowledged for its own chain but not sealed yet, and
# the outcome of every record it refused: both survive a crash, so an
# acknowledged record is never lost and a retried id gets its first outcome.

pending = Table(
    "pending",
    metadata,
    Column("chain", String(8), primary_key=True),
    Column("record_id", String(80), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("raw", LargeBinary, nullable=False),
)

rejected = Table(
    "rejected",
    metadata,
    Column("chain", String(8), primary_key=True),
    Column("record_id", String(80), primary_key=True),
    Column("code", String(64), nullable=False),
    Column("rule", String(16), nullable=False),
    Column("field", Text, nullable=False),
    Column("reason", Text, nullable=False),
)

# ---------------------------------------------------------------- artisanal chain (0004)
# Claims and licences (one id space per chain), first sales, and the diagnostic
# self-assessments: derived from the records like every table above.

licences = Table(
    "licences",
    metadata,
    Column("id", String(56), primary_key=True),
    Column("chain", String(8), nullable=False),
    Column("type", String(16), nullable=False),
    Column("holder", Text, nullable=False),
    Column("claim", String(56)),
    Column("zones", Text, nullable=False),
    Column("location", Text, nullable=False),
    Column("valid_from", String(10), nullable=False),
    Column("valid_until", String(10), nullable=False),
    Column("ended", String(10)),
    Column("end_reason", String(16)),
    Column("reg_chain", String(8), nullable=False),
    Column("reg_idx", BigInteger, nullable=False),
    Column("reg_hash", LargeBinary(32), nullable=False),
    Index("licences_by_chain", "chain", "type"),
)

purchases = Table(
    "purchases",
    metadata,
    Column("parcel", String(56), primary_key=True),
    Column("chain", String(8), nullable=False),
    Column("buyer", String(56), nullable=False),
    Column("digger", String(56), nullable=False),
    Column("claim", String(56), nullable=False),
    Column("method", String(16), nullable=False),
    Column("weight", BigInteger, nullable=False),
    Column("price", String(64), nullable=False),  # 0005: commitment (hex)
    Column("bought", String(10), nullable=False),
    Column("idx", BigInteger, nullable=False),
    Index("purchases_by_date", "chain", "bought"),
)

assessments = Table(
    "assessments",
    metadata,
    Column("chain", String(8), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("indicator", String(64), nullable=False),
    Column("score", Integer, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("assessed", String(10), nullable=False),
)

# ---------------------------------------------------------------- disclosures (0005)
# The clear value and salt of a committed field of a record (DESIGN.md section 9):
# the writer's own, and those peers gave this node because it is entitled to them.
# ``commitment`` (the hex the state tables hold) finds the clear value of a field;
# ``cents`` repeats an integer value so that sums stay in SQL.

disclosures = Table(
    "disclosures",
    metadata,
    Column("record", LargeBinary(32), primary_key=True),
    Column("path", String(120), primary_key=True),
    Column("commitment", String(64), nullable=False),
    Column("chain", String(8), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("salt", LargeBinary(32), nullable=False),
    Column("value", Text, nullable=False),
    Column("cents", BigInteger),
    Index("disclosures_by_commitment", "commitment"),
    Index("disclosures_by_chain", "chain"),
)

#: disclosure rules found broken when the disclosures arrived (audit finding
#: ``disclosure-inconsistent``): the block stays valid, the auditor is told
disclosure_findings = Table(
    "disclosure_findings",
    metadata,
    Column("record", LargeBinary(32), primary_key=True),
    Column("chain", String(8), nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("code", String(64), nullable=False),
    Column("rule", String(16), nullable=False),
    Column("field", Text, nullable=False),
    Column("reason", Text, nullable=False),
)
