"""The submission queue and what became of each submitted record.

Records a node acknowledged for its own chain wait in ``pending`` until a
block seals them; refused records leave their reason in ``rejected``. Both
survive a crash, so an acknowledged record is never lost and a retried id
gets its first outcome: committed (from ``records``), pending or rejected.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from kpledger.ledger.errors import LedgerError, StoreError
from kpledger.ledger.records import Record
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.disclosures import DisclosureStore, Held
from kpledger.ledger.store.engine import BulkWriter
from kpledger.ledger.store.outcome import Outcome
from kpledger.ledger.store.rows import chunks, rejection_row

__all__ = ["SubmissionQueue"]

#: the records sealed or refused leave the queue: ``chain`` and its ids
_DELETE_PG = "DELETE FROM pending WHERE chain = %s AND record_id = ANY(%s)"
_DELETE_SQLITE = "DELETE FROM pending WHERE chain = ? AND record_id IN ({})"


class SubmissionQueue:
    """``pending`` and ``rejected``: records acknowledged, and records refused."""

    def __init__(
        self, engine: Engine, bulk: BulkWriter, disclosures: DisclosureStore, *, read_only: bool
    ) -> None:
        self.engine = engine
        self._bulk = bulk
        self._disclosures = disclosures
        self.read_only = read_only

    def enqueue(
        self, records: Sequence[Record], rejected: Sequence[tuple[Record, LedgerError]] = ()
    ) -> None:
        """Persist acknowledged records (with their disclosures) and refusals before the
        node answers."""
        if self.read_only:
            raise StoreError("this process is a read replica: only the writer process writes")
        if not records and not rejected:
            return
        try:
            with self.engine.begin() as conn:
                top = conn.execute(select(func.max(t.pending.c.seq))).scalar() or 0
                self._bulk(
                    conn,
                    t.pending,
                    [
                        {"chain": r.chain, "record_id": r.id, "seq": top + 1 + i, "raw": r.raw}
                        for i, r in enumerate(records)
                    ],
                )
                self._bulk(conn, t.rejected, [rejection_row(r, e) for r, e in rejected])
                self._disclosures.put_in(
                    conn, (Held(r.chain, r.kind.value, d) for r in records for d in r.disclosures)
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot queue records: {exc.__class__.__name__}: {exc}") from exc

    def dequeue(
        self,
        conn: Connection,
        sealed: Sequence[Record],
        rejected: Sequence[tuple[Record, LedgerError]],
    ) -> None:
        # records built in this process carry their disclosures: they are kept with the block
        self._disclosures.put_in(
            conn, (Held(r.chain, r.kind.value, d) for r in sealed for d in r.disclosures)
        )
        gone: dict[str, list[str]] = {}
        for r in [*sealed, *(r for r, _ in rejected)]:
            gone.setdefault(r.chain, []).append(r.id)
        pg = conn.dialect.name == "postgresql"
        for chain, ids in gone.items():
            for part in chunks(ids):
                # fixed text on the driver (an expanding IN compiled per block cost more
                # than the delete); the names are the table's, the ids parameters
                if pg:
                    conn.exec_driver_sql(_DELETE_PG, (chain, list(part)))
                else:
                    marks = ", ".join("?" * len(part))
                    conn.exec_driver_sql(_DELETE_SQLITE.format(marks), (chain, *part))
        self._bulk(conn, t.rejected, [rejection_row(r, e) for r, e in rejected])

    def pending(self, chain: str) -> list[Record]:
        """Acknowledged records of ``chain`` not sealed yet, in arrival order.

        A read replica holds nothing pending: the writer owns the queue.
        """
        if self.read_only:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.pending.c.raw).where(t.pending.c.chain == chain).order_by(t.pending.c.seq)
            ).all()
        return [Record.parse(bytes(r[0])) for r in rows]

    def outcomes(self, chain: str, record_ids: Sequence[str]) -> dict[str, Outcome]:
        """``outcome`` for many ids in three queries; ids never seen are absent."""
        found: dict[str, Outcome] = {}
        ids = sorted(set(record_ids))
        r, p, j = t.records.c, t.pending.c, t.rejected.c
        with self.engine.connect() as conn:
            for part in chunks(ids):
                for rid, idx, height, leaf in conn.execute(
                    select(r.record_id, r.idx, r.height, r.leaf).where(
                        r.chain == chain, r.record_id.in_(part)
                    )
                ):
                    found[rid] = Outcome.committed(chain, int(height), int(idx), bytes(leaf))
                for (rid,) in conn.execute(
                    select(p.record_id).where(p.chain == chain, p.record_id.in_(part))
                ):
                    found.setdefault(rid, Outcome.pending(chain))
                for rid, code, rule, field, reason in conn.execute(
                    select(j.record_id, j.code, j.rule, j.field, j.reason).where(
                        j.chain == chain, j.record_id.in_(part)
                    )
                ):
                    found.setdefault(rid, Outcome.rejected(chain, code, rule, field, reason))
        return found

    def outcome(self, chain: str, record_id: str) -> Outcome | None:
        """What became of a record id on ``chain``: committed, pending or rejected."""
        return self.outcomes(chain, [record_id]).get(record_id)
