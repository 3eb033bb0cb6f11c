"""Opening a store: reopening continues where it stopped; wrong networks, unknown
schema revisions and missing registries are refused."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from kpledger.devtools.workload import Network
from kpledger.ledger.errors import StoreError
from kpledger.ledger.store import Store, schema_revision
from kpledger.ledger.store import tables as t


def test_reopen_continues(open_store, workload, replay_in_memory) -> None:
    net, blocks = workload(3000)
    cut = len(blocks) // 2
    store = open_store(net.registry)
    for b in blocks[:cut]:
        store.writer.apply(b)
    heads = store.heads()
    frontiers = {c: store.frontier(c).copy() for c in heads}
    store.close()

    again = open_store(net.registry)
    assert again.heads() == heads
    for chain, head in heads.items():
        assert again.frontier(chain) == frontiers[chain]
        assert again.frontier(chain).root() == head.root
        assert again.header(chain, head.height) == head

    # the registry on disk is enough to reopen
    third = open_store(None)
    assert third.registry.network_id == net.network_id
    assert third.heads() == heads
    third.close()

    for b in blocks[cut:]:
        again.writer.apply(b)
    mem = replay_in_memory(net, blocks)
    assert again.heads() == mem.state.heads
    for chain, head in mem.state.heads.items():
        assert again.frontier(chain) == mem.state.frontiers[chain]
        assert again.proofs.root_at(chain, head.size) == head.root
    again.close()

    last = open_store(net.registry)
    assert last.heads() == mem.state.heads
    assert last.verifier.verify().blocks == len(blocks)


def test_other_network_refused(open_store, workload) -> None:
    net, blocks = workload(3000)
    store = open_store(net.registry)
    store.writer.apply(blocks[0])
    store.close()
    other = Network.create(seed=99).registry
    assert other.network_id != net.network_id
    with pytest.raises(StoreError, match="belongs to network") as caught:
        open_store(other)
    assert net.network_id[:16] in str(caught.value)
    assert other.network_id[:16] in str(caught.value)
    # refusing did not touch it
    assert open_store(net.registry).heads() == {"BW": blocks[0].header}


def test_unknown_schema_revision_refused(open_store) -> None:
    net = Network.create()
    store = open_store(net.registry)
    assert schema_revision(store.engine) == t.SCHEMA_REVISION
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    store.close()
    with pytest.raises(StoreError, match="run kpl db upgrade") as caught:
        open_store(net.registry)
    assert "9999_future" in str(caught.value)
    with pytest.raises(StoreError, match="run kpl db upgrade"):
        open_store(None)


def test_new_store_needs_registry(open_store) -> None:
    with pytest.raises(StoreError, match="no kpledger store"):
        open_store(Network.create().registry, create=False)
    with pytest.raises(StoreError, match="genesis registry"):
        open_store(None)
    # the refused open did not leave a half-made store behind that cannot be initialised
    net = Network.create()
    store = open_store(net.registry)
    assert store.registry.network_id == net.network_id
    assert store.heads() == {}
    assert store.log.block_count() == 0


def test_unsupported_url() -> None:
    with pytest.raises(StoreError, match="unsupported database URL"):
        Store.open("mysql://root@localhost/test", None)
