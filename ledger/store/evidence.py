"""Evidence of equivocation: two validly signed headers of one chain that contradict.

Stored once per id, as its canonical bytes; kept forever, shown in the audit.
"""

from __future__ import annotations

from sqlalchemy import Engine, insert, select

from kpledger.ledger.blocks import Evidence
from kpledger.ledger.canonical import canonical_bytes, parse_canonical
from kpledger.ledger.errors import StoreError
from kpledger.ledger.store import tables as t

__all__ = ["EvidenceLog"]


class EvidenceLog:
    """The ``evidence`` table."""

    def __init__(self, engine: Engine, *, read_only: bool) -> None:
        self.engine = engine
        self.read_only = read_only

    def add(self, ev: Evidence) -> bool:
        """Store evidence once; True if it was new."""
        if self.read_only:
            raise StoreError("this process is a read replica: only the writer process writes")
        with self.engine.begin() as conn:
            if conn.execute(select(t.evidence.c.id).where(t.evidence.c.id == ev.id)).first():
                return False
            conn.execute(
                insert(t.evidence),
                [{"id": ev.id, "chain": ev.chain, "doc": canonical_bytes(ev.to_json())}],
            )
        return True

    def all(self) -> list[Evidence]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.evidence.c.doc).order_by(t.evidence.c.id)).all()
        return [Evidence.from_json(parse_canonical(bytes(r[0]))) for r in rows]
