"""Each chain's parcel state tree in the SQL store: rebuilt on open, kept current by
commits, readable as of any past header (what bundles prove a parcel's slot against)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from kpledger.ledger.blocks import Block
from kpledger.ledger.canonical import canonical_bytes
from kpledger.ledger.errors import StoreError
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.stateview import load_state_tree


def test_state_tree_survives_a_reopen_and_matches_every_header(
    open_store: Callable[..., Store], workload: Callable[..., Any], store_url: str
) -> None:
    net, blocks = workload(600, block_records=100)
    store = open_store(net.registry)
    half = len(blocks) // 2
    for block in blocks[:half]:
        store.writer.apply(block)
    store.close()
    again = open_store(net.registry)  # the trees are read back from the tables
    for block in blocks[half:]:
        again.writer.apply(block)
    heads = again.heads()
    assert any(h.state != bytes(32) for h in heads.values())
    for chain, head in heads.items():
        assert again.state_tree(chain).root() == head.state
    sample: list[Block] = [b for b in blocks if b.records][:: max(1, len(blocks) // 6)]
    for block in sample:
        h = block.header
        assert load_state_tree(again.engine, h.chain, h.height).root() == h.state
        assert again.state_tree_at(h.chain, h.height).root() == h.state  # kept for bundles
        assert again.state_tree_at(h.chain, h.height) is again.state_tree_at(h.chain, h.height)


def test_a_store_of_format_1_headers_is_refused_by_name(
    open_store: Callable[..., Store], workload: Callable[..., Any], store_url: str
) -> None:
    """A store written before headers committed to the parcel state: opening it says so."""
    net, blocks = workload(600, block_records=100)
    store = open_store(net.registry)
    for block in blocks[:3]:
        store.writer.apply(block)
    head = next(iter(store.heads().values()))
    old = {k: v for k, v in head.to_json().items() if k != "state"} | {"v": 1}
    with store.engine.begin() as conn:
        conn.execute(
            update(t.headers)
            .where(t.headers.c.chain == head.chain, t.headers.c.height == head.height)
            .values(header=canonical_bytes(old))
        )
    store.close()
    with pytest.raises(StoreError, match="headers of format 1, written before headers committed"):
        open_store(net.registry)


def test_past_trees_kept_for_bundles_are_bounded_by_their_slots(
    open_store: Callable[..., Store],
    workload: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A node serving bundles at many checkpoints keeps their trees within a budget of
    slots (a past tree is a whole chain's: about 760 bytes a slot), the newest always."""
    net, blocks = workload(600, block_records=100)
    store = open_store(net.registry)
    for block in blocks:
        store.writer.apply(block)
    past = [b.header for b in blocks if b.records][-6:]
    sizes = [store.state_tree_at(h.chain, h.height).own_slots() for h in past[:2]]
    budget = sum(sizes) + 1  # room for the first two checkpoints' trees only
    monkeypatch.setattr("kpledger.ledger.store.stateview._PAST_SLOTS", budget)
    for h in past:
        tree = store.state_tree_at(h.chain, h.height)
        assert tree.root() == h.state
        assert store.state_tree_at(h.chain, h.height) is tree  # the newest is always kept
    kept = store._past_trees
    assert 1 <= len(kept) < len(past)
    assert len(kept) == 1 or sum(x.own_slots() for x in kept.values()) <= budget
