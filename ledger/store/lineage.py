"""Lineage queries: the edges of splits and merges, and the records that acted on parcels.

``edges`` (parent, child, the record that made the child) and
``parcel_events`` (each record that acted on a parcel) are derived tables
written with every block; the history of a parcel is read from them with
one recursive query per direction (``WITH RECURSIVE``, the same text on
SQLite and PostgreSQL), never one query per level of the lineage, and its
four statements run on the driver's own connection (no SQLAlchemy layers on
this read path, which ``GET /v1/parcels/{id}/history`` serves). That route
reads them as rows (``history_rows``), with no object per edge, parcel or
record; ``history`` makes the objects of the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, select

from kpledger.ledger.records import Record
from kpledger.ledger.state import Edge, Parcel, ParcelEvent
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.rows import chunks, parcel_of, ref_of

__all__ = ["History", "HistoryEvent", "HistoryRows", "Lineage"]


#: the walk up: every parcel reachable through edges into it, at its least depth
_ANCESTRY_SQL = """
    WITH RECURSIVE walk(id, depth) AS (
        SELECT CAST(? AS VARCHAR(56)), 0
        UNION
        SELECT e.parent, w.depth + 1 FROM edges e JOIN walk w ON e.child = w.id
    )
    SELECT e.parent, e.child, e.chain, e.idx, e.hash, d.depth
    FROM (SELECT id, MIN(depth) AS depth FROM walk GROUP BY id) d
    JOIN edges e ON e.child = d.id
"""

#: the walk down: every parcel made from it, and the edges out of each
_DESCENT_SQL = """
    WITH RECURSIVE walk(id, depth) AS (
        SELECT CAST(? AS VARCHAR(56)), 0
        UNION
        SELECT e.child, w.depth + 1 FROM edges e JOIN walk w ON e.parent = w.id
    )
    SELECT e.parent, e.child, e.chain, e.idx, e.hash, d.depth
    FROM (SELECT id, MIN(depth) AS depth FROM walk GROUP BY id) d
    JOIN edges e ON e.parent = d.id
"""

#: the parcels ``{ids}``, their columns in table order (``rows.parcel_of``); the names
#: come from the table's definition, never from input
_PARCEL_COLUMNS = ", ".join(c.name for c in t.parcels.c)
_PARCELS_SQL = "SELECT " + _PARCEL_COLUMNS + " FROM parcels WHERE id {ids}"  # noqa: S608

#: records that acted on the parcels ``{ids}``, with block time and certificate number
_EVENTS_SQL = """
    SELECT pe.parcel, pe.chain, pe.idx, pe.height, pe.kind, r.leaf, h.time,
           COALESCE(ci.number, cc.number)
    FROM parcel_events pe
    JOIN records r ON r.chain = pe.chain AND r.idx = pe.idx
    JOIN headers h ON h.chain = pe.chain AND h.height = pe.height
    LEFT OUTER JOIN certificates ci ON ci.issue_chain = pe.chain AND ci.issue_idx = pe.idx
    LEFT OUTER JOIN certificates cc ON cc.closed_chain = pe.chain AND cc.closed_idx = pe.idx
    WHERE pe.parcel {ids}
"""


class _Raw:
    """The history's SQL on the bare DB-API connection (``sqlite3`` or ``psycopg``).

    The read path of ``GET /v1/parcels/{id}/history`` runs four statements; through
    SQLAlchemy's execution and result layers they cost more than the database's
    own work, so here each is a fixed string per dialect, executed on the
    driver's cursor, its rows plain tuples.
    """

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"
        mark = "%s" if self.pg else "?"
        self.ancestry = _ANCESTRY_SQL.replace("?", mark)
        self.descent = _DESCENT_SQL.replace("?", mark)
        self._parcels: dict[int, str] = {}
        self._events: dict[int, str] = {}

    def _in(self, n: int) -> str:
        # PostgreSQL takes the list as one array parameter; SQLite one mark per id
        return "= ANY(%s)" if self.pg else f"IN ({', '.join('?' * n)})"

    def _args(self, ids: Sequence[str]) -> tuple[Any, ...]:
        return (list(ids),) if self.pg else tuple(ids)

    def parcels(self, cur: Any, ids: Sequence[str]) -> list[Any]:
        n = 0 if self.pg else len(ids)
        sql = self._parcels.get(n) or self._parcels.setdefault(
            n, _PARCELS_SQL.format(ids=self._in(n))
        )
        cur.execute(sql, self._args(ids))
        return list(cur.fetchall())

    def events(self, cur: Any, ids: Sequence[str]) -> list[Any]:
        n = 0 if self.pg else len(ids)
        sql = self._events.get(n) or self._events.setdefault(n, _EVENTS_SQL.format(ids=self._in(n)))
        cur.execute(sql, self._args(ids))
        return list(cur.fetchall())


@dataclass(frozen=True)
class HistoryEvent:
    """A record that acted on a parcel of a lineage, with its block's time and, for
    ``certificate.*`` records, the certificate's number."""

    event: ParcelEvent
    time: str
    certificate: str | None


@dataclass(frozen=True)
class History:
    """A parcel's lineage graph: edges up and down (nearest first), parcels, records."""

    subject: str
    ancestors: tuple[Edge, ...]
    descendants: tuple[Edge, ...]
    parcels: dict[str, Parcel]
    events: tuple[HistoryEvent, ...]
    truncated: bool


#: an edge as read: (parent, child, chain, index, record hash)
EdgeRow = tuple[str, str, str, int, bytes]
#: a record of the lineage as read: (parcel, chain, index, height, kind, record hash,
#: block time, certificate number or None)
EventRow = tuple[str, str, int, int, str, bytes, str, str | None]


@dataclass(frozen=True)
class HistoryRows:
    """``History`` as the database's rows, in the same order: the read path of
    ``GET /v1/parcels/{id}/history``, which makes no object per row (``parcels`` maps
    ids to their ``parcels`` rows, columns in table order as ``rows.parcel_of`` reads)."""

    subject: str
    ancestors: list[EdgeRow]
    descendants: list[EdgeRow]
    parcels: dict[str, tuple[Any, ...]]
    events: list[EventRow]
    truncated: bool

    def objects(self) -> History:
        def edges(rows: list[EdgeRow]) -> tuple[Edge, ...]:
            return tuple(Edge(p, c, ref_of(ch, i, h)) for p, c, ch, i, h in rows)

        return History(
            subject=self.subject,
            ancestors=edges(self.ancestors),
            descendants=edges(self.descendants),
            parcels={pid: parcel_of(row) for pid, row in self.parcels.items()},
            events=tuple(
                HistoryEvent(ParcelEvent(p, ref_of(c, i, leaf), h, k), time, cert)
                for p, c, i, h, k, leaf, time, cert in self.events
            ),
            truncated=self.truncated,
        )


class Lineage:
    """Ancestors, descendants and the records of parcels."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._raw = _Raw(engine.dialect.name)

    def _edges(self, column: str, parcel_ids: Sequence[str]) -> list[Edge]:
        out: list[Edge] = []
        with self.engine.connect() as conn:
            for part in chunks(list(parcel_ids)):
                q = select(t.edges).where(t.edges.c[column].in_(part))
                out += [
                    Edge(r.parent, r.child, ref_of(r.chain, r.idx, r.hash)) for r in conn.execute(q)
                ]
        return sorted(out, key=lambda e: (e.child, e.parent))

    def parents(self, parcel_ids: Sequence[str]) -> list[Edge]:
        """Edges into the given parcels (what they were split or merged from)."""
        return self._edges("child", parcel_ids)

    def children(self, parcel_ids: Sequence[str]) -> list[Edge]:
        """Edges out of the given parcels (what they were split or merged into)."""
        return self._edges("parent", parcel_ids)

    @staticmethod
    def _edge_rows(rows: list[Any], limit: int) -> list[EdgeRow]:
        # the order of the level-by-level walk: by the depth of the node the edge
        # was found from, then (child, parent); sorted here, not in SQL, so that
        # no database collation can change it
        rows.sort(key=lambda r: (int(r[5]), r[1], r[0]))
        return [(p, c, ch, int(i), bytes(h)) for p, c, ch, i, h, _ in rows[:limit]]

    @classmethod
    def _edges_of(cls, rows: list[Any], limit: int) -> list[Edge]:
        return [Edge(p, c, ref_of(ch, i, h)) for p, c, ch, i, h in cls._edge_rows(rows, limit)]

    def _walk(self, sql: str, parcel_id: str, limit: int) -> list[Edge]:
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute(sql, (parcel_id,))
            return self._edges_of(list(cur.fetchall()), limit)
        finally:
            conn.close()

    def ancestry(self, parcel_id: str, limit: int = 10_000) -> list[Edge]:
        """Every edge from ``parcel_id`` back to the registrations at the mines.

        Nearest first: edges into a parcel at distance d come before those
        into parcels at distance d + 1 (then by child, parent). One query.
        """
        return self._walk(self._raw.ancestry, parcel_id, limit)

    def descent(self, parcel_id: str, limit: int = 10_000) -> list[Edge]:
        """Every edge from ``parcel_id`` down to the parcels made from it (nearest first)."""
        return self._walk(self._raw.descent, parcel_id, limit)

    def history(self, parcel_id: str, limit: int = 10_000) -> History:
        """The lineage graph of a parcel and every record that acted on any parcel of it.

        A handful of queries on one connection, whatever the depth: one
        recursive walk each way, the parcels, and their records with block
        times and certificate numbers (from the derived tables: no record
        is parsed).
        """
        return self.history_rows(parcel_id, limit).objects()

    def history_rows(self, parcel_id: str, limit: int = 10_000) -> HistoryRows:
        """``history`` as rows (``HistoryRows``): the same queries, no object per row."""
        raw = self._raw
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute(raw.ancestry, (parcel_id,))
            ancestors = self._edge_rows(list(cur.fetchall()), limit)
            cur.execute(raw.descent, (parcel_id,))
            descendants = self._edge_rows(list(cur.fetchall()), limit)
            ids = {parcel_id}
            for p, c, *_ in ancestors:
                ids.add(p)
                ids.add(c)
            for p, c, *_ in descendants:
                ids.add(p)
                ids.add(c)
            parcels: dict[str, tuple[Any, ...]] = {}
            rows: list[Any] = []
            for part in chunks(sorted(ids)):
                for row in raw.parcels(cur, part):
                    parcels[row[0]] = tuple(row)
                rows += raw.events(cur, part)
        finally:
            conn.close()
        return HistoryRows(
            subject=parcel_id,
            ancestors=ancestors,
            descendants=descendants,
            parcels=parcels,
            events=self._event_rows(rows),
            truncated=len(ancestors) >= limit or len(descendants) >= limit,
        )

    def _event_rows(self, rows: list[Any]) -> list[EventRow]:
        out: list[EventRow] = []
        for p, c, i, h, k, leaf, time, number in rows:
            cert: str | None = None
            if k.startswith("certificate."):
                cert = number if number is not None else self._number_of(c, int(i))
            out.append((p, c, int(i), int(h), k, bytes(leaf), str(time), cert))
        out.sort(key=lambda x: (x[6], x[1], x[2], x[0]))
        return out

    def _number_of(self, chain: str, index: int) -> str:
        """The certificate a record names, from its bytes: only for a record that issued
        or closed no certificate (no kind does today; the derived tables answer the rest)."""
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(t.records.c.raw).where(t.records.c.chain == chain, t.records.c.idx == index)
            ).scalar()
        if raw is None:
            return ""
        return str(Record.parse(bytes(raw)).body_json.get("number", ""))

    def events(self, parcel_id: str) -> list[ParcelEvent]:
        """The records that acted on a parcel, in log order per chain."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.parcel_events, t.records.c.leaf)
                .join(
                    t.records,
                    and_(
                        t.records.c.chain == t.parcel_events.c.chain,
                        t.records.c.idx == t.parcel_events.c.idx,
                    ),
                )
                .where(t.parcel_events.c.parcel == parcel_id)
                .order_by(t.parcel_events.c.height, t.parcel_events.c.chain, t.parcel_events.c.idx)
            ).all()
        return [
            ParcelEvent(r.parcel, ref_of(r.chain, r.idx, r.leaf), int(r.height), r.kind)
            for r in rows
        ]

    def parcels(self, parcel_ids: Sequence[str]) -> dict[str, Parcel]:
        out: dict[str, Parcel] = {}
        with self.engine.connect() as conn:
            for part in chunks(sorted(set(parcel_ids))):
                for row in conn.execute(select(t.parcels).where(t.parcels.c.id.in_(part))):
                    out[row[0]] = parcel_of(row)
        return out
