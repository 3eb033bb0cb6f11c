"""SQL persistence of a node's logs and derived state (SQLite or PostgreSQL)."""

from ledger.store.store import Store, VerifyReport, make_engine, schema_revision, upgrade

__all__ = ["Store", "VerifyReport", "make_engine", "schema_revision", "upgrade"]
