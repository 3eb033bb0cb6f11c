"""SQL persistence of a node's logs and derived state (SQLite or PostgreSQL)."""

from kpledger.ledger.store.engine import make_engine, schema_revision, upgrade
from kpledger.ledger.store.store import Store
from kpledger.ledger.store.verify import VerifyReport

__all__ = ["Store", "VerifyReport", "make_engine", "schema_revision", "upgrade"]
