"""A store that applied a realistic history holds exactly the state memory derives."""

from __future__ import annotations

import pytest

from kpledger.devtools.realistic import count_records
from kpledger.ledger.merkle import EMPTY_ROOT, Frontier, MemoryTree, NewNode, verify_inclusion


def test_store_state_equals_memory_ledger(open_store, workload, replay_in_memory) -> None:
    net, blocks = workload(3000)
    store = open_store(net.registry)
    for b in blocks:
        layer = store.writer.apply(b)
        assert layer.heads[b.header.chain] == b.header
    mem = replay_in_memory(net, blocks)
    state = mem.state

    assert state.parcels
    assert state.parties
    assert state.certificates
    for pid, parcel in state.parcels.items():
        assert store.parcel(pid) == parcel, pid
    for party_id, party in state.parties.items():
        assert store.party(party_id) == party, party_id
    for number, cert in state.certificates.items():
        assert store.certificate(number) == cert, number
    assert store.parcel("no-such-parcel") is None
    assert store.party("no-such-party") is None
    assert store.certificate("no-such-certificate") is None

    assert store.heads() == state.heads
    for chain, head in state.heads.items():
        assert store.head(chain) == head
        assert store.header(chain, head.height) == head
        assert store.frontier(chain) == state.frontiers[chain]
        assert store.frontier(chain).root() == head.root
        assert store.proofs.root_at(chain, head.size) == head.root
        assert store.proofs.root_at(chain, 0) == EMPTY_ROOT
    for (chain, number), idx in state.confirmations.items():
        assert store.confirmation_index(chain, number) == idx
    for (chain, height), sig in state.signatures.items():
        assert store.signature(chain, height) == sig
    for ref, _, record in state.records[:: max(1, len(state.records) // 200)]:
        assert store.record_ref(ref.chain, record.id) == ref
        stored = store.log.record(ref.chain, ref.index)
        assert stored is not None
        assert stored.raw == record.raw

    edges = {(parent, child) for parent, child, *_ in store.verifier.table_rows("edges")}
    assert edges == {(e.parent, e.child) for e in state.edges}

    report = store.verifier.verify()
    assert report.blocks == len(blocks) == store.log.block_count()
    assert report.records == count_records(blocks) == 3000
    assert report.tables["parcels"] == len(state.parcels)
    assert report.tables["parties"] == len(state.parties)
    assert report.tables["certificates"] == len(state.certificates)
    assert report.tables["edges"] == len(state.edges)
    assert report.tables["parcel_events"] == len(state.events)
    assert report.tables["confirmations"] == len(state.confirmations)
    assert report.tables["headers"] == len(blocks)


def test_a_blocks_leaves_are_appended_to_the_log_once(
    open_store, workload, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Applying a block appends each record's leaf to its chain's Merkle frontier once
    (the block's check); the nodes written are those, and every proof and root of the
    stored log still holds."""
    net, blocks = workload(600)
    store = open_store(net.registry)
    appended: list[bytes] = []
    real = Frontier.append

    def append(self: Frontier, leaf: bytes) -> list[NewNode]:
        appended.append(leaf)
        return real(self, leaf)

    monkeypatch.setattr(Frontier, "append", append)
    for b in blocks:
        store.writer.apply(b)
    leaves = [r.leaf for b in blocks for r in b.records]
    assert appended == leaves
    monkeypatch.undo()
    for chain in {b.header.chain for b in blocks}:
        chain_leaves = [r.leaf for b in blocks if b.header.chain == chain for r in b.records]
        tree = MemoryTree(chain_leaves)
        size = len(chain_leaves)
        assert store.proofs.root_at(chain, size) == tree.root()
        for index in range(0, size, max(1, size // 25)):
            proof = store.proofs.inclusion(chain, index, size)
            verify_inclusion(chain_leaves[index], index, size, proof, tree.root())
