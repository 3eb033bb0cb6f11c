"""SQL persistence of a node's logs and derived state (SQLite or PostgreSQL)."""

from ledger.store.engine import make_engine, schema_revision, upgrade
from ledger.store.store import Store
from ledger.store.verify import VerifyReport

__all__ = ["Store", "VerifyReport", "make_engine", "schema_revision", "upgrade"]
