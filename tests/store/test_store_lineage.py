"""Lineage reads: the recursive walks answer exactly what the level-by-level walk did."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from kpledger.ledger.records import Record
from kpledger.ledger.state import Edge
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t

pytestmark = pytest.mark.timeout(240)


def _level_walk(store: Store, parcel_id: str, limit: int, up: bool) -> list[Edge]:
    """The walk the history used before: one query per level of the lineage."""
    edges: list[Edge] = []
    frontier, seen = [parcel_id], {parcel_id}
    while frontier and len(edges) < limit:
        found = store.lineage.parents(frontier) if up else store.lineage.children(frontier)
        edges += found
        nxt = {e.parent for e in found} if up else {e.child for e in found}
        frontier = sorted(nxt - seen)
        seen.update(frontier)
    return edges[:limit]


def _old_history(store: Store, parcel_id: str, limit: int) -> dict[str, object]:
    """What the history view computed before, parsing records for certificate numbers."""
    ancestors = _level_walk(store, parcel_id, limit, up=True)
    descendants = _level_walk(store, parcel_id, limit, up=False)
    ids = {parcel_id} | {e.parent for e in ancestors} | {e.child for e in ancestors}
    ids |= {e.child for e in descendants} | {e.parent for e in descendants}
    events = []
    for pid in sorted(ids):
        for e in store.lineage.events(pid):
            cert = None
            if e.kind.startswith("certificate."):
                record = store.log.record(e.ref.chain, e.ref.index)
                assert record is not None
                cert = str(record.body_json.get("number", ""))
            header = store.header(e.ref.chain, e.height)
            assert header is not None
            events.append((header.time, e.ref.chain, e.ref.index, e.parcel, e.kind, cert))
    return {
        "ancestors": ancestors,
        "descendants": descendants,
        "parcels": sorted(ids & set(store.lineage.parcels(sorted(ids)))),
        "events": sorted(events),
        "truncated": len(ancestors) >= limit or len(descendants) >= limit,
    }


def test_recursive_walks_match_the_level_walk(open_store, workload) -> None:
    net, blocks = workload(6000, block_records=100)
    store = open_store(net.registry)
    for b in blocks:
        store.writer.apply(b)
    with store.engine.connect() as conn:
        edged = [r[0] for r in conn.execute(select(t.edges.c.child).distinct())]
        edged += [r[0] for r in conn.execute(select(t.edges.c.parent).distinct())]
        deepest = conn.execute(select(func.count()).select_from(t.edges)).scalar()
    assert (deepest or 0) > 200
    subjects = sorted(set(edged))
    sample = random.Random(5).sample(subjects, min(60, len(subjects)))
    longest = 0
    for pid in sample:
        for limit in (10_000, 5, 1):
            for up in (True, False):
                walk = store.lineage.ancestry if up else store.lineage.descent
                assert walk(pid, limit=limit) == _level_walk(store, pid, limit, up), (pid, up)
        longest = max(longest, len(store.lineage.ancestry(pid)))
    assert longest >= 5  # the sample holds lineages of several levels (merges of splits)


def test_history_matches_the_old_answer(open_store, workload) -> None:
    net, blocks = workload(6000, block_records=100)
    store = open_store(net.registry)
    for b in blocks:
        store.writer.apply(b)
    with store.engine.connect() as conn:
        certified = sorted(
            {
                r[0]
                for r in conn.execute(
                    select(t.parcel_events.c.parcel).where(
                        t.parcel_events.c.kind.like("certificate.%")
                    )
                )
            }
        )
    assert len(certified) > 20
    for pid in random.Random(9).sample(certified, 20):
        for limit in (1000, 3):
            got = store.lineage.history(pid, limit=limit)
            want = _old_history(store, pid, limit)
            assert list(got.ancestors) == want["ancestors"]
            assert list(got.descendants) == want["descendants"]
            assert sorted(got.parcels) == want["parcels"]
            assert got.truncated == want["truncated"]
            events = sorted(
                (
                    h.time,
                    h.event.ref.chain,
                    h.event.ref.index,
                    h.event.parcel,
                    h.event.kind,
                    h.certificate,
                )
                for h in got.events
            )
            assert events == want["events"]
            # and in the order the view lists them: time, chain, index, parcel
            order = [
                (h.time, h.event.ref.chain, h.event.ref.index, h.event.parcel) for h in got.events
            ]
            assert order == sorted(order)
            assert any(h.certificate for h in got.events)


def test_history_reads_no_record_bytes(open_store, workload, monkeypatch) -> None:
    """The read path takes certificate numbers from the derived tables, not by parsing."""
    net, blocks = workload(6000, block_records=100)
    store = open_store(net.registry)
    for b in blocks:
        store.writer.apply(b)
    with store.engine.connect() as conn:
        pid = conn.execute(
            select(t.parcel_events.c.parcel).where(t.parcel_events.c.kind == "certificate.confirm")
        ).scalar()
    assert pid is not None

    def refuse(*_: object, **__: object) -> Record:
        raise AssertionError("a record was parsed on the history read path")

    monkeypatch.setattr(Record, "parse", refuse)
    found = store.lineage.history(pid)
    assert any(h.event.kind == "certificate.confirm" and h.certificate for h in found.events)
