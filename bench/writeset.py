"""The store's own write set, captured from a real ingest and replayed bare.

The honest baseline for ingest: the same rows into the same tables, with the
same indexes and durability, and none of our work (no parsing, no signature,
no rule, no prefetch read, no Python row building). ``capture`` listens on the
store's engine while it applies blocks and keeps, per database transaction,
every data-changing statement exactly as the driver received it (SQL text and
parameters, single or executemany) and, on PostgreSQL, every COPY the store's
``BulkWriter`` sends to the driver's cursor past those events (its statement
and rows, heard through ``BulkWriter.copy_listeners``, and replayed as the
same COPY). ``replay_sqlite`` and ``replay_postgres``
send that list again through the bare DB-API driver into a freshly created
store schema (created by ``Store.open``, so tables and indexes are the same),
one transaction per captured transaction. Reads are left out: they are part of
our checks, not of the write set.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from bench.common import timed
from kpledger.ledger.store.engine import BulkWriter

__all__ = ["Statement", "WriteSet", "capture", "replay_postgres", "replay_sqlite"]

_READS = ("SELECT", "PRAGMA", "WITH", "SHOW", "SAVEPOINT", "RELEASE", "BEGIN", "SET")


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: Any
    many: bool
    #: a ``COPY ... FROM STDIN`` whose rows are ``params`` (``many`` is true)
    copy: bool = False


@dataclass(slots=True)
class WriteSet:
    """Transactions of data-changing statements, in the order they committed."""

    transactions: list[list[Statement]] = field(default_factory=list)
    _open: list[Statement] = field(default_factory=list)

    @property
    def statements(self) -> int:
        return sum(len(tx) for tx in self.transactions)

    @property
    def rows(self) -> int:
        """Rows written (an executemany counts its parameter sets)."""
        total = 0
        for tx in self.transactions:
            for st in tx:
                total += len(st.params) if st.many else 1
        return total


@contextmanager
def capture(engine: Engine, bulk: BulkWriter | None = None) -> Iterator[WriteSet]:
    """Record every write ``engine`` commits while the block is open, with the COPYs
    ``bulk`` sends (the store's ``BulkWriter``: ``Store.bulk``)."""
    ws = WriteSet()

    def on_execute(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if head in _READS:
            return
        params = [_plain(p) for p in parameters] if many else _plain(parameters)
        ws._open.append(Statement(statement, params, many))

    def on_copy(statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
        ws._open.append(Statement(statement, list(rows), many=True, copy=True))

    def on_commit(_conn: Any) -> None:
        if ws._open:
            ws.transactions.append(ws._open)
            ws._open = []

    def on_rollback(_conn: Any) -> None:
        ws._open = []

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", on_execute),
        ("commit", on_commit),
        ("rollback", on_rollback),
    ]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    if bulk is not None:
        bulk.copy_listeners.append(on_copy)
    try:
        yield ws
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)
        if bulk is not None:
            bulk.copy_listeners.remove(on_copy)


def _plain(params: Any) -> Any:
    """A copy of one parameter set that later mutation by the caller cannot change."""
    if isinstance(params, dict):
        return dict(params)
    if isinstance(params, list | tuple):
        return tuple(params)
    return params


def replay_sqlite(path: Path, ws: WriteSet) -> float:
    """Seconds to replay ``ws`` into the store at ``path`` (WAL, synchronous=FULL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")

    def run() -> None:
        for tx in ws.transactions:
            conn.execute("BEGIN")
            for st in tx:
                if st.many:
                    conn.executemany(st.sql, st.params)
                else:
                    conn.execute(st.sql, st.params)
            conn.execute("COMMIT")

    try:
        return timed(run)
    finally:
        conn.close()


def pg_keywords(url: str) -> dict[str, Any]:
    """psycopg's connection keywords for a SQLAlchemy URL: the URL's parts one by one,
    because a rendered URL carries the spaces of its ``options`` as "+", which libpq
    reads literally (a test schema's ``search_path`` was lost so)."""
    parsed = make_url(url)
    args = parsed.translate_connect_args(username="user", database="dbname")
    keywords: dict[str, Any] = {k: v for k, v in args.items() if v is not None}
    keywords.update({k: v if isinstance(v, str) else v[-1] for k, v in parsed.query.items()})
    return keywords


def replay_postgres(url: str, ws: WriteSet) -> float:
    """Seconds to replay ``ws`` through bare psycopg into the schema ``url`` names."""
    with psycopg.connect(**pg_keywords(url)) as conn:

        def run() -> None:
            with conn.cursor() as cur:
                for tx in ws.transactions:
                    for st in tx:
                        if st.copy:
                            with cur.copy(st.sql) as copy:
                                for row in st.params:
                                    copy.write_row(row)
                        elif st.many:
                            cur.executemany(st.sql, st.params)
                        else:
                            cur.execute(st.sql, st.params)
                    conn.commit()

        return timed(run)
