"""Lineage queries: the edges of splits and merges, and the records that acted on parcels.

``edges`` (parent, child, the record that made the child) and
``parcel_events`` (each record that acted on a parcel) are derived tables
written with every block; the history of a parcel is read from them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, and_, select

from ledger.state import Edge, Parcel, ParcelEvent
from ledger.store import tables as t
from ledger.store.rows import chunks, parcel_of, ref_of

__all__ = ["Lineage"]


class Lineage:
    """Ancestors, descendants and the records of parcels."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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

    def ancestry(self, parcel_id: str, limit: int = 10_000) -> list[Edge]:
        """Every edge from ``parcel_id`` back to the registrations at the mines."""
        edges: list[Edge] = []
        frontier, seen = [parcel_id], {parcel_id}
        while frontier and len(edges) < limit:
            found = self.parents(frontier)
            edges += found
            frontier = sorted({e.parent for e in found} - seen)
            seen.update(frontier)
        return edges[:limit]

    def descent(self, parcel_id: str, limit: int = 10_000) -> list[Edge]:
        """Every edge from ``parcel_id`` down to the parcels made from it."""
        edges: list[Edge] = []
        frontier, seen = [parcel_id], {parcel_id}
        while frontier and len(edges) < limit:
            found = self.children(frontier)
            edges += found
            frontier = sorted({e.child for e in found} - seen)
            seen.update(frontier)
        return edges[:limit]

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

    def events_for(self, parcel_ids: Sequence[str]) -> list[tuple[ParcelEvent, str]]:
        """Records that acted on any of the parcels, each with its block's time."""
        pe, rec, hd = t.parcel_events.c, t.records.c, t.headers.c
        out: list[tuple[ParcelEvent, str]] = []
        with self.engine.connect() as conn:
            for part in chunks(sorted(set(parcel_ids))):
                q = (
                    select(pe.parcel, pe.chain, pe.idx, pe.height, pe.kind, rec.leaf, hd.time)
                    .join(t.records, and_(rec.chain == pe.chain, rec.idx == pe.idx))
                    .join(t.headers, and_(hd.chain == pe.chain, hd.height == pe.height))
                    .where(pe.parcel.in_(part))
                )
                out += [
                    (ParcelEvent(p, ref_of(c, i, leaf), int(h), k), time)
                    for p, c, i, h, k, leaf, time in conn.execute(q)
                ]
        return sorted(out, key=lambda x: (x[1], x[0].ref.chain, x[0].ref.index, x[0].parcel))

    def parcels(self, parcel_ids: Sequence[str]) -> dict[str, Parcel]:
        out: dict[str, Parcel] = {}
        with self.engine.connect() as conn:
            for part in chunks(sorted(set(parcel_ids))):
                for row in conn.execute(select(t.parcels).where(t.parcels.c.id.in_(part))):
                    out[row[0]] = parcel_of(row)
        return out
