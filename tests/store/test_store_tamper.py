"""``store.verifier.verify`` replays the log and notices derived state edited behind its back."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from kpledger.ledger.errors import InclusionProofError, LedgerError, StoreError
from kpledger.ledger.merkle import verify_inclusion
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t


@pytest.fixture
def applied(open_store, workload) -> Store:
    net, blocks = workload(800, block_records=40)
    store = open_store(net.registry)
    for b in blocks:
        store.writer.apply(b)
    return store


def _flip(value: bytes, at: int = 0) -> bytes:
    return value[:at] + bytes([value[at] ^ 0x01]) + value[at + 1 :]


def test_untouched_store_verifies(applied) -> None:
    report = applied.verifier.verify()
    assert report.blocks == applied.log.block_count()
    assert report.records == 800
    assert all(report.tables[name] > 0 for name in ("parcels", "edges", "merkle_nodes"))


def test_parcel_weight_changed(applied) -> None:
    with applied.engine.begin() as conn:
        pid, weight = conn.execute(
            select(t.parcels.c.id, t.parcels.c.weight).order_by(t.parcels.c.id).limit(1)
        ).one()
        # one byte of the weight: its lowest bit
        conn.execute(update(t.parcels).where(t.parcels.c.id == pid).values(weight=weight ^ 0x01))
    with pytest.raises(StoreError, match=r"derived table parcels differs") as caught:
        applied.verifier.verify()
    assert "edges" not in str(caught.value)


def test_edge_deleted(applied) -> None:
    with applied.engine.begin() as conn:
        parent, child = conn.execute(
            select(t.edges.c.parent, t.edges.c.child).order_by(t.edges.c.child).limit(1)
        ).one()
        deleted = conn.execute(
            t.edges.delete().where(t.edges.c.parent == parent, t.edges.c.child == child)
        ).rowcount
    assert deleted == 1
    with pytest.raises(StoreError, match=r"derived table edges differs") as caught:
        applied.verifier.verify()
    assert "live" in str(caught.value)


def test_merkle_node_flipped(applied) -> None:
    with applied.engine.begin() as conn:
        chain, level, idx, digest = conn.execute(
            select(t.merkle_nodes)
            .where(t.merkle_nodes.c.level == 3)
            .order_by(t.merkle_nodes.c.chain, t.merkle_nodes.c.idx)
            .limit(1)
        ).one()
        conn.execute(
            update(t.merkle_nodes)
            .where(
                t.merkle_nodes.c.chain == chain,
                t.merkle_nodes.c.level == level,
                t.merkle_nodes.c.idx == idx,
            )
            .values(hash=_flip(bytes(digest), 17))
        )
    with pytest.raises(StoreError, match=r"derived table merkle_nodes differs"):
        applied.verifier.verify()


def _set_record(store: Store, chain: str, idx: int, **values) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            update(t.records)
            .where(t.records.c.chain == chain, t.records.c.idx == idx)
            .values(**values)
        )


def _record_row(store: Store, chain: str, idx: int):
    with store.engine.connect() as conn:
        return conn.execute(
            select(t.records).where(t.records.c.chain == chain, t.records.c.idx == idx)
        ).one()


def test_record_leaf_flipped(applied) -> None:
    """The leaf column is level 0 of the Merkle tree: proofs are served from it."""
    head = applied.head("BW")
    row = _record_row(applied, "BW", 6)
    _set_record(applied, "BW", 6, leaf=_flip(bytes(row.leaf), 31))
    # the sibling's proof now carries the wrong leaf and fails against the signed root
    proof = applied.proofs.inclusion("BW", 7, head.size)
    leaf7 = bytes(_record_row(applied, "BW", 7).leaf)
    with pytest.raises(InclusionProofError):
        verify_inclusion(leaf7, 7, head.size, proof, head.root)
    with pytest.raises(StoreError, match=r"table records differ"):
        applied.verifier.verify()


def test_record_id_changed(applied) -> None:
    _set_record(applied, "RU", 3, record_id="forged-id")
    with pytest.raises(StoreError, match=r"table records differ"):
        applied.verifier.verify()


def test_record_bytes_changed(applied) -> None:
    """A changed log no longer replays: the replay itself refuses it."""
    row = _record_row(applied, "AE", 2)
    raw = bytes(row.raw)
    at = raw.index(b'"time":"') + len(b'"time":"2')
    forged = raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :]
    _set_record(applied, "AE", 2, raw=forged)
    with pytest.raises(LedgerError):
        applied.verifier.verify()
