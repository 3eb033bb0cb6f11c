"""Self-check: replay the whole log into a scratch store and compare every derived table.

Every block is re-verified on the way (signatures, links, roots, all rules);
the first derived table that differs from the replay is named in a
``StoreError``. The live store is read in one snapshot, so the check is
sound while a node is writing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from kpledger.ledger.blocks import Header
from kpledger.ledger.chain import fork_heights
from kpledger.ledger.errors import StoreError
from kpledger.ledger.forks import witness_needs
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.apply import BlockWriter
from kpledger.ledger.store.disclosures import DisclosureStore
from kpledger.ledger.store.engine import BulkWriter, open_database
from kpledger.ledger.store.evidence import EvidenceLog
from kpledger.ledger.store.log import LogReader, heights_at
from kpledger.ledger.store.queue import SubmissionQueue
from kpledger.ledger.store.stateview import StoreState

__all__ = ["DERIVED", "Verifier", "VerifyReport", "open_scratch", "replay", "snapshot"]

#: the derived tables a replay must reproduce row for row
DERIVED: Mapping[str, Any] = {
    "parcels": t.parcels,
    "parties": t.parties,
    "certificates": t.certificates,
    "edges": t.edges,
    "parcel_events": t.parcel_events,
    "restrictions": t.restrictions,
    "members": t.members,
    "chain_keys": t.keys,
    "confirmations": t.confirmations,
    "merkle_nodes": t.merkle_nodes,
    "headers": t.headers,
    "licences": t.licences,
    "purchases": t.purchases,
    "assessments": t.assessments,
}


@dataclass(frozen=True)
class VerifyReport:
    """What ``Verifier.verify`` checked."""

    blocks: int
    records: int
    tables: dict[str, int]


def _table_rows(conn: Connection, name: str) -> list[tuple[Any, ...]]:
    rows = conn.execute(select(DERIVED[name])).all()
    return sorted(
        (tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows),
        key=repr,
    )


def _record_columns(conn: Connection) -> list[tuple[Any, ...]]:
    r = t.records.c
    rows = conn.execute(
        select(r.chain, r.idx, r.height, r.record_id, r.kind, r.leaf).order_by(r.chain, r.idx)
    ).all()
    return [(c, int(i), int(h), rid, k, bytes(leaf)) for c, i, h, rid, k, leaf in rows]


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction: every read on the connection sees the same committed state.

    PostgreSQL: REPEATABLE READ, READ ONLY (the snapshot is taken at the
    first query). SQLite: an explicit deferred ``BEGIN`` on one connection
    (in WAL mode the first read fixes the snapshot; writers go on, the WAL
    grows until it ends). The transaction is rolled back at the end.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        else:
            conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()


def _compare(live: Connection, replayed: Connection) -> dict[str, int]:
    """Row counts of the derived tables; ``StoreError`` at the first that differs."""
    counts: dict[str, int] = {}
    for name in DERIVED:
        mine, theirs = _table_rows(live, name), _table_rows(replayed, name)
        if mine != theirs:
            raise StoreError(
                f"derived table {name} differs from a replay of the log "
                f"({len(mine)} rows live, {len(theirs)} replayed)"
            )
        counts[name] = len(mine)
    # records.leaf (Merkle level 0), record_id, kind and height are derived
    # from records.raw too: proofs, frontiers and duplicate checks read them
    if _record_columns(live) != _record_columns(replayed):
        raise StoreError("derived columns of table records differ from a replay of the log")
    return counts


def open_scratch(url: str, state: StoreState) -> Engine:
    """A new store at ``url`` (default in memory) holding only ``state``'s genesis."""
    engine, _ = open_database(url, state.registry, create=True)
    return engine


def replay(
    state: StoreState,
    scratch: Engine,
    live: Connection,
    heights: Mapping[str, int],
    forks: Mapping[str, int],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Apply every block of ``live`` up to ``heights`` to the ``scratch`` store, in causal
    order, each verified in full with the evidence's ``forks``; (blocks, records) applied.

    ``state`` (the live store's view) tells which heights of a forked chain
    each block needs (``ledger.forks.witness_needs``).
    """
    target = StoreState(scratch, state.registry)
    bulk = BulkWriter(scratch)
    writer = BlockWriter(
        target,
        SubmissionQueue(scratch, bulk, DisclosureStore(scratch, read_only=False), read_only=False),
        bulk,
        read_only=False,
    )
    total = sum(heights.values())
    blocks = records = 0

    def needs(header: Header, prev: Header | None) -> Mapping[str, int]:
        return witness_needs(state, header, forks, prev)

    for block in LogReader(state).iter_causal(conn=live, heights=heights, needs=needs):
        writer.apply(block, forks)
        blocks += 1
        records += len(block.records)
        if progress is not None:
            progress(blocks, total)
    return blocks, records


class Verifier:
    """Checks that a store's derived state is what its log implies."""

    def __init__(self, state: StoreState) -> None:
        self.state = state
        self.engine = state.engine

    def table_rows(self, name: str) -> list[tuple[Any, ...]]:
        """Every row of the derived table ``name``, in a stable order."""
        with self.engine.connect() as conn:
            return _table_rows(conn, name)

    def verify(
        self,
        scratch_url: str = "sqlite://",
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> VerifyReport:
        """Replay the whole log into a scratch store and compare every derived table.

        Everything is read from one snapshot of the store (``snapshot``), so a
        node may go on writing meanwhile: the replay and the comparison see
        the same blocks, and a block committed during the run is simply not
        part of it. ``progress(done, total)`` is called as blocks are
        replayed. Raises ``StoreError`` naming the first table that differs.
        """
        engine = open_scratch(scratch_url, self.state)
        try:
            with snapshot(self.engine) as live:
                heights = heights_at(live)
                forks = fork_heights(EvidenceLog(self.engine, read_only=True).all())
                blocks, records = replay(self.state, engine, live, heights, forks, progress)
                with engine.connect() as replayed:
                    counts = _compare(live, replayed)
            return VerifyReport(blocks, records, counts)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot verify the store: {exc.__class__.__name__}: {exc}") from exc
        finally:
            engine.dispose()
