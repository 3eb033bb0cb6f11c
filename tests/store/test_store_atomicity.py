"""A block is committed whole or not at all.

A block that breaks a rule is refused before anything is written; a failure
in the middle of the commit rolls the whole transaction back. Either way the
store is left exactly as it was and the next valid block applies.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block, WitnessRef, seal
from kpledger.ledger.errors import (
    AlreadySpent,
    DuplicateRecord,
    FutureDated,
    MassNotConserved,
    RuleViolation,
    StoreError,
    UnknownReference,
)
from kpledger.ledger.records import Kind, Record
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.engine import BulkWriter


def _history(store: Store) -> Scenario:
    """Three blocks over two chains, applied to ``store``; the scenario stays in step."""
    sc = Scenario(Network.create())
    blocks = [
        sc.seal(
            "BW",
            sc.party("BW", "BW-T1"),
            sc.party("BW", "BW-T2"),
            sc.register("BW", "BW-P1", "BW-T1", 1000, 134_000),
            sc.register("BW", "BW-P2", "BW-T1", 500, 67_000),
        ),
        sc.seal("EU", sc.party("EU", "EU-T1")),
        sc.seal("BW", sc.transfer("BW", "BW-P2", "BW-T2")),
    ]
    for b in blocks:
        store.writer.apply(b)
    return sc


def _seal_on_store(sc: Scenario, store: Store, chain: str, records: list[Record]) -> Block:
    """Sign the next block of ``chain`` on top of the store, bypassing the rules."""
    prev = store.head(chain)
    witness = [
        WitnessRef(h.chain, h.height, h.hash)
        for c, h in sorted(store.heads().items())
        if c != chain
    ]
    block, _ = seal(
        signer=sc.net.signer(chain),
        network=sc.net.network_id,
        chain=chain,
        prev=prev,
        frontier=store.frontier(chain),
        records=records,
        time=sc.tick(),
        witness=witness,
    )
    return block


def _mass_off_by_one(sc: Scenario) -> Record:
    return sc.split("BW", "BW-P1", [("BW-P1a", 500, 67_000), ("BW-P1b", 499, 67_000)])


def _future_production(sc: Scenario) -> Record:
    body = sc.clear_body(sc.register("BW", "BW-P9", "BW-T1", 10, 10))
    body["produced"] = "2099-01-01"
    return sc.record("BW", Kind.PARCEL_REGISTER, body)


def _unknown_parcel(sc: Scenario) -> Record:
    return sc.transfer("BW", "BW-P404", "BW-T2")


def _spent_parcel(sc: Scenario) -> Record:
    return sc.split("BW", "BW-P3", [("BW-P3a", 100, 10), ("BW-P3b", 100, 10)])


def _reused_id(sc: Scenario) -> Record:
    return sc.register("BW", "BW-P2", "BW-T1", 10, 10)


BAD: list[tuple[Callable[[Scenario], Record], type[RuleViolation], str]] = [
    (_mass_off_by_one, MassNotConserved, "body.children"),
    (_future_production, FutureDated, "body.produced"),
    (_unknown_parcel, UnknownReference, "body.parcel"),
    (_spent_parcel, AlreadySpent, "body.parcel"),
    (_reused_id, DuplicateRecord, "body.parcel"),
]


@pytest.mark.parametrize(("make_bad", "error", "field"), BAD, ids=[e.__name__ for _, e, _ in BAD])
def test_refused_block_leaves_store_unchanged(
    open_store, store_snapshot, make_bad, error, field
) -> None:
    store = open_store(Network.create().registry)
    sc = _history(store)
    before = store_snapshot(store)
    head, frontier = store.head("BW"), store.frontier("BW").copy()

    # valid records first, so the refused block's layer holds real changes
    records = [
        sc.register("BW", "BW-P3", "BW-T1", 200, 26_800),
        sc.split("BW", "BW-P3", [("BW-P3x", 100, 13_400), ("BW-P3y", 100, 13_400)]),
        sc.transfer("BW", "BW-P1", "BW-T2"),
        make_bad(sc),
    ]
    bad = _seal_on_store(sc, store, "BW", records)
    with pytest.raises(error) as caught:
        store.writer.apply(bad)
    assert caught.value.field == f"records[3].{field}"

    assert store_snapshot(store) == before
    assert store.head("BW") == head
    assert store.frontier("BW") == frontier
    assert store.parcel("BW-P3") is None
    assert store.parcel("BW-P1").custodian == "BW-T1"

    # the scenario never saw the refused block: its next block is valid here
    good = sc.seal(
        "BW", sc.split("BW", "BW-P1", [("BW-P1a", 500, 67_000), ("BW-P1b", 500, 67_000)])
    )
    assert good.header.height == head.height + 1
    store.writer.apply(good)
    assert store.head("BW") == good.header
    assert store.parcel("BW-P1a") is not None
    assert store.parcel("BW-P1").status.value == "spent"
    assert store.verifier.verify().blocks == 4


@pytest.mark.parametrize("fail_at", ["merkle_nodes", "parcels", "edges", "parcel_events"])
def test_failure_inside_commit_rolls_back(open_store, store_snapshot, monkeypatch, fail_at) -> None:
    store = open_store(Network.create().registry)
    sc = _history(store)
    block = sc.seal(
        "BW",
        sc.register("BW", "BW-P3", "BW-T1", 200, 26_800),
        sc.split("BW", "BW-P1", [("BW-P1a", 500, 67_000), ("BW-P1b", 500, 67_000)]),
        sc.transfer("BW", "BW-P2", "BW-T1"),
        sc.party("BW", "BW-T3"),
    )
    before = store_snapshot(store)
    heads, frontier = store.heads(), store.frontier("BW").copy()

    original = BulkWriter.__call__
    seen: dict[str, int] = {}

    def failing_bulk(self, conn, table, rows, keys=()):
        original(self, conn, table, rows, keys)
        if table.name == fail_at:
            # the records were written, inside the transaction that is about to fail
            seen["records"] = int(
                conn.execute(select(func.count()).select_from(t.records)).scalar()
            )
            raise OperationalError("INSERT ...", {}, Exception("injected: disk I/O error"))

    monkeypatch.setattr(BulkWriter, "__call__", failing_bulk)
    with pytest.raises(StoreError, match="commit failed"):
        store.writer.apply(block)
    assert seen["records"] == before["records"] + len(block.records)

    assert store_snapshot(store) == before
    assert store.heads() == heads
    assert store.frontier("BW") == frontier
    assert store.header("BW", block.header.height) is None
    assert store.parcel("BW-P1a") is None

    monkeypatch.undo()
    store.writer.apply(block)
    assert store.head("BW") == block.header
    assert store.frontier("BW").root() == block.header.root
    assert store.parcel("BW-P1a") is not None
    assert store.party("BW-T3") is not None
    report = store.verifier.verify()
    assert report.blocks == 4
    assert report.records == before["records"] + len(block.records)


def test_a_duplicate_row_fails_the_batch_as_an_integrity_error(open_store) -> None:
    """COPY on PostgreSQL and executemany on SQLite refuse a duplicate key alike: the driver's
    error surfaces as SQLAlchemy's IntegrityError, and the transaction writes nothing."""
    store = open_store(Network.create().registry)
    _history(store)
    with store.engine.connect() as conn:
        before = conn.execute(select(t.headers)).all()
    row = dict(before[0]._mapping)
    fresh = dict(row, height=99)
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        store.bulk(conn, t.headers, [fresh, row])
    with store.engine.connect() as conn:
        assert conn.execute(select(t.headers)).all() == before


@pytest.mark.postgres
def test_postgres_appends_by_copy_and_upserts_by_insert(pg_url: str) -> None:
    """The append-only tables are written by COPY, in the block's transaction; the tables
    of current state (an upsert on their key) keep INSERT ... ON CONFLICT."""
    store = Store.open(pg_url, Network.create().registry)
    copied: list[str] = []
    store.bulk.copy_listeners.append(lambda sql, rows: copied.append(sql.split()[1]))
    try:
        _history(store)
    finally:
        store.close()
    assert {'"headers"', '"records"', '"merkle_nodes"'} <= set(copied)
    assert '"parcels"' not in copied
    assert '"parties"' not in copied


def test_sqlite_sends_no_copy(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'x.db'}", Network.create().registry)
    store.bulk.copy_listeners.append(lambda sql, rows: pytest.fail(f"COPY on SQLite: {sql}"))
    try:
        _history(store)
    finally:
        store.close()
