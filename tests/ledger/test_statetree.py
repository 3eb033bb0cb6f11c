"""The parcel state tree: roots, incremental updates, proofs of slots and of absence."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block, seal
from kpledger.ledger.canonical import Tag
from kpledger.ledger.chain import MemoryLedger
from kpledger.ledger.errors import BlockError, SchemaError, StateProofError
from kpledger.ledger.merkle import Frontier
from kpledger.ledger.statetree import (
    EMPTY,
    Slot,
    StateProof,
    StateTree,
    parcels_acted_on,
    slot_key,
    slot_leaf,
    verify_state_proof,
)


def _h(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(4, "big")).digest()


def _reference_root(slots: dict[str, Slot]) -> bytes:
    """The compact tree's root by its definition, over the whole set at once."""
    leaves = sorted(
        (slot_key(p), slot_leaf(slot_key(p), s.latest, s.count)) for p, s in slots.items()
    )

    def sub(items: list[tuple[bytes, bytes]], depth: int) -> bytes:
        if not items:
            return EMPTY
        if len(items) == 1:
            return items[0][1]
        left = [x for x in items if not (int.from_bytes(x[0], "big") >> (255 - depth)) & 1]
        right = [x for x in items if (int.from_bytes(x[0], "big") >> (255 - depth)) & 1]
        return hashlib.sha256(
            Tag.STATE_NODE.value + sub(left, depth + 1) + sub(right, depth + 1)
        ).digest()

    return sub(leaves, 0)


def test_empty_tree_root_is_zero_and_proves_absence() -> None:
    tree = StateTree()
    assert tree.root() == EMPTY
    proof = tree.prove("BW-P1")
    assert proof.count == 0
    assert proof.path == ()
    assert proof.other is None
    verify_state_proof(proof, EMPTY)


def test_incremental_root_matches_the_definition_and_every_proof_verifies() -> None:
    rng = random.Random(7)
    tree = StateTree()
    slots: dict[str, Slot] = {}
    for i in range(300):
        parcel = f"BW-P{rng.randrange(120)}"
        tree.record(parcel, _h(i))
        old = slots.get(parcel)
        slots[parcel] = Slot(_h(i), 1 if old is None else old.count + 1)
        if i % 37 == 0:
            assert tree.root() == _reference_root(slots)
    root = tree.root()
    assert root == _reference_root(slots)
    for parcel, slot in slots.items():
        proof = tree.prove(parcel)
        assert (proof.count, proof.latest) == (slot.count, slot.latest)
        verify_state_proof(proof, root)
        assert StateProof.from_json(proof.to_json(), "p", proof.parcel) == proof
    for i in range(200, 260):
        proof = tree.prove(f"BW-Q{i}")
        assert proof.count == 0
        verify_state_proof(proof, root)
        assert StateProof.from_json(proof.to_json(), "p", proof.parcel) == proof
    assert StateTree.build((p, s.latest, s.count) for p, s in slots.items()).root() == root


def test_a_reloaded_tree_proves_and_grows_as_the_one_built_by_updates() -> None:
    rng = random.Random(5)
    slots = {f"BW-P{i}": Slot(_h(i), rng.randrange(1, 4)) for i in range(400)}
    built = StateTree.build((p, s.latest, s.count) for p, s in slots.items())
    root = _reference_root(slots)
    assert built.root() == root
    # a reloaded tree keeps no marker of the leaves it pushed down: one entry per slot
    assert len(built._single) == len(slots)
    for parcel in [*list(slots)[::7], "BW-Q1", "BW-Q2"]:
        verify_state_proof(built.prove(parcel), root)
    for block in range(5):  # blocks applied after a restart: overlays folded into it
        layer = built.child()
        acts = [(f"BW-P{rng.randrange(600)}", _h(10_000 + block * 100 + i)) for i in range(40)]
        layer.record_all(acts)
        layer.fold()
        for parcel, latest in acts:
            old = slots.get(parcel)
            slots[parcel] = Slot(latest, 1 if old is None else old.count + 1)
        assert built.root() == _reference_root(slots)
    for parcel in slots:
        verify_state_proof(built.prove(parcel), built.root())


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.integers(0, 10_000), st.integers(1, 5), max_size=40))
def test_a_tree_built_whole_equals_the_definition_and_the_one_updated(
    parcels: dict[int, int],
) -> None:
    slots = {f"BW-P{i}": Slot(_h(i), n) for i, n in parcels.items()}
    built = StateTree.build((p, s.latest, s.count) for p, s in slots.items())
    updated = StateTree()
    for p, s in slots.items():
        updated.put(p, s)
    assert built.root() == updated.root() == _reference_root(slots)
    for parcel in [*slots, "BW-Q"]:
        assert built.prove(parcel) == updated.prove(parcel)
        verify_state_proof(built.prove(parcel), built.root())


def test_a_block_of_updates_at_once_equals_them_one_by_one() -> None:
    rng = random.Random(11)
    one, batched = StateTree(), StateTree()
    slots: dict[str, Slot] = {}
    for block in range(12):
        acts = [(f"BW-P{rng.randrange(300)}", _h(block * 1000 + i)) for i in range(60)]
        for parcel, latest in acts:
            one.record(parcel, latest)
            old = slots.get(parcel)
            slots[parcel] = Slot(latest, 1 if old is None else old.count + 1)
        layer = batched.child()
        layer.record_all(acts)
        layer.fold()
        assert batched.root() == one.root() == _reference_root(slots)
    for parcel in list(slots)[:40]:
        verify_state_proof(batched.prove(parcel), batched.root())


def test_overlays_of_overlays_read_through_every_layer() -> None:
    """A block's overlay over another unfolded overlay (three layers deep): its
    updates, new slots pushing down old leaves of every layer, give the root of the
    whole set, and folding layer by layer keeps it."""
    rng = random.Random(5)
    base = StateTree()
    slots: dict[str, Slot] = {}

    def act(tree: StateTree, n: int, seed: int) -> None:
        acts = [(f"BW-P{rng.randrange(400)}", _h(seed + i)) for i in range(n)]
        tree.record_all(acts)
        for parcel, latest in acts:
            old = slots.get(parcel)
            slots[parcel] = Slot(latest, 1 if old is None else old.count + 1)

    act(base, 150, 0)
    middle = base.child()
    act(middle, 80, 1000)
    top = middle.child()
    act(top, 80, 2000)
    assert top.root() == _reference_root(slots)
    for parcel in list(slots)[:60]:
        verify_state_proof(top.prove(parcel), top.root())
    top.fold()
    assert middle.root() == _reference_root(slots)
    middle.fold()
    assert base.root() == _reference_root(slots)


def test_overlay_keeps_the_base_until_folded() -> None:
    base = StateTree()
    for i in range(50):
        base.record(f"BW-P{i}", _h(i))
    before = base.root()
    layer = base.child()
    layer.record("BW-P3", _h(100))
    layer.record("BW-NEW", _h(101))
    assert base.root() == before
    assert layer.root() != before
    after = layer.root()
    layer.fold()
    assert base.root() == after
    assert base.slot("BW-P3") == Slot(_h(100), 2)


def test_a_left_out_record_or_a_stale_slot_does_not_verify() -> None:
    tree = StateTree()
    for i in range(20):
        tree.record(f"BW-P{i}", _h(i))
    tree.record("BW-P5", _h(99))  # a second record acted on BW-P5
    root = tree.root()
    proof = tree.prove("BW-P5")
    verify_state_proof(proof, root)
    stale = StateProof("BW-P5", 1, _h(5), proof.path)  # what a bundle without the split says
    with pytest.raises(StateProofError, match="folds to"):
        verify_state_proof(stale, root)
    absent = StateProof("BW-P5", 0, None, proof.path)  # claims no record at all
    with pytest.raises(StateProofError):
        verify_state_proof(absent, root)
    other = tree.prove("BW-NONE")
    if other.other is not None:  # the same slot cannot end the path of another parcel
        _, latest, count = other.other
        bad = StateProof("BW-NONE", 0, None, other.path, (slot_key("BW-NONE"), latest, count))
        with pytest.raises(StateProofError, match="same prefix"):
            verify_state_proof(bad, root)


def test_proof_json_refuses_bad_shapes() -> None:
    with pytest.raises(SchemaError, match="unknown field"):
        StateProof.from_json({"count": 0, "path": [], "record": "00" * 32}, "p", "BW-P1")
    with pytest.raises(SchemaError, match="is required"):
        StateProof.from_json({"count": 1, "path": []}, "p", "BW-P1")


def _story() -> tuple[Scenario, list[Block]]:
    sc = Scenario(Network.create())
    blocks = [
        sc.seal("BW", sc.party("BW", "BW-MINE", "miner"), sc.party("BW", "BW-T", "trader")),
        sc.seal("BW", sc.register("BW", "BW-P1", "BW-MINE", 10_000, 1_000_000)),
        sc.seal(
            "BW", sc.split("BW", "BW-P1", [("BW-P2", 4_000, 400_000), ("BW-P3", 6_000, 600_000)])
        ),
        sc.seal("BW"),
    ]
    return sc, blocks


def test_headers_commit_to_each_parcels_latest_record_and_count() -> None:
    sc, blocks = _story()
    tree = sc.ledger.state.state_tree("BW")
    assert blocks[-1].header.state == tree.root() == blocks[-2].header.state  # a heartbeat keeps it
    register, split = blocks[1].records[0], blocks[2].records[0]
    assert tree.slot("BW-P1") == Slot(split.leaf, 2)
    assert tree.slot("BW-P2") == Slot(split.leaf, 1)
    assert blocks[1].header.state == StateTree.build([("BW-P1", register.leaf, 1)]).root()
    assert blocks[0].header.state == EMPTY


def test_a_block_whose_state_root_lies_is_refused() -> None:
    sc, blocks = _story()
    honest = blocks[2]
    prev = blocks[1].header
    frontier = Frontier()
    for b in blocks[:2]:
        for r in b.records:
            frontier.append(r.leaf)
    lying, _ = seal(
        signer=sc.net.signer("BW"),
        network=sc.net.network_id,
        chain="BW",
        prev=prev,
        frontier=frontier,
        records=honest.records,
        time=honest.header.time,
        witness=honest.header.witness,
        state=prev.state,  # as if the split had not spent BW-P1
    )
    fresh = MemoryLedger(sc.net.registry)
    for b in blocks[:2]:
        fresh.append(b)
    with pytest.raises(BlockError, match="does not match the parcel state") as info:
        fresh.append(lying)
    assert info.value.field == "header.state"
    fresh.append(honest)
    assert fresh.state.state_tree("BW").root() == honest.header.state


def test_parcels_acted_on_agrees_with_the_rules_events() -> None:
    sc, blocks = _story()
    events = [(e.parcel, e.ref.hash) for e in sc.ledger.state.events]
    named = [
        (p, r.leaf) for b in blocks for r in b.records for p in parcels_acted_on(r, lambda _: ())
    ]
    assert named == events
