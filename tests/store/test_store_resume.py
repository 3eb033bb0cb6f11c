"""Dropping an equivocating chain's old blocks once a ``key.replace`` restarts it (issue 9).

The store holds BW's version A of height 2 (a party registered there), RU's
block sealed on version B (witnessing BW/3 of B), and the KP block replacing
BW's key from the fork height 2. ``store.resume.drop`` takes BW/2 out with
everything derived from it, keeps every other block, notes what it dropped,
and the store then takes BW's new height 2 and RU's blocks that witness it;
``kpl db verify``'s replay agrees at every step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kpledger.devtools.workload import Scenario
from kpledger.ledger.chain import fork_heights, propose
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import StoreError
from kpledger.ledger.records import Kind
from kpledger.ledger.state import key_at
from kpledger.ledger.store import Store
from kpledger.ledger.store.backup import export_store, import_file
from tests.ledger.forked import forked

NEW_KEY = Ed25519Signer.from_seed(b"bw-new-after-fork".ljust(32, b"-"))


def _setup(open_store: Callable[..., Store]) -> tuple[Scenario, Scenario, Store, dict[str, int]]:
    sc, other, evidence = forked()
    forks = fork_heights([evidence])
    store = open_store(sc.net.registry)
    bw, ru = sc.ledger.blocks["BW"], sc.ledger.blocks["RU"]
    for block in (bw[0], ru[0], bw[1]):
        store.writer.apply(block, forks)
    store.evidence.add(evidence)
    store.writer.apply(other.ledger.blocks["RU"][1], forks)
    body = {"code": "BW", "key": NEW_KEY.public.hex(), "from_height": 2, "reason": "equivocation"}
    replace = sc.governance(Kind.KEY_REPLACE, body)
    sealed = propose(store, sc.net.registry, sc.net.signer("KP"), "KP", [replace], sc.tick(), forks)
    assert not sealed.rejected
    store.writer.apply(sealed.block, forks)
    return sc, other, store, forks


def test_the_old_keys_blocks_go_with_everything_derived_from_them(
    open_store: Callable[..., Store], store_url: str, tmp_path: Path
) -> None:
    sc, other, store, forks = _setup(open_store)
    assert store.party("BW-ON-A") is not None
    kept = {c: h.hash for c, h in store.heads().items() if c != "BW"}
    part = store.resume.drop("BW", 2, forks)
    assert part.chain == "BW"
    assert part.from_height == 2
    assert part.blocks == 1
    assert [(h, i, r.body.party) for h, i, r in part.records] == [(2, 1, "BW-ON-A")]  # type: ignore[union-attr]
    # BW is back at its common header; its derived state with it; the rest is unchanged
    head = store.head("BW")
    assert head is not None
    assert head.height == 1
    assert store.header("BW", 2) is None
    assert store.party("BW-ON-A") is None
    assert store.party("BW-T1") is not None
    assert store.party("RU-ON-B") is not None
    assert store.queue.outcome("BW", part.records[0][2].id) is None
    assert {c: h.hash for c, h in store.heads().items() if c != "BW"} == kept
    assert store.resume.dropped() == [part]
    store.verifier.verify()

    # BW's new key seals height 2 on the common header; RU's next block witnesses it
    assert key_at(store, "BW", 2) == NEW_KEY.public
    resumed = propose(
        store, sc.net.registry, NEW_KEY, "BW", [sc.party("BW", "BW-NEW")], sc.tick(), forks
    )
    assert resumed.block.header.prev == head.hash
    store.writer.apply(resumed.block, forks)
    after = propose(store, sc.net.registry, sc.net.signer("RU"), "RU", [], sc.tick(), forks)
    witnessed = {w.chain: w for w in after.block.header.witness}
    # the new BW is below the B/3 RU witnessed before: RU repeats that witness (heights never
    # go back), which counts as BW's common header
    b3 = next(w for w in other.ledger.blocks["RU"][1].header.witness if w.chain == "BW")
    assert witnessed["BW"] == b3
    store.writer.apply(after.block, forks)
    assert store.party("BW-NEW") is not None
    store.verifier.verify()
    # kpl export / kpl import carry the restarted chain, RU's repeated witness among it
    exported = tmp_path / "export.kplx"
    export_store(store_url, exported)
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    import_file(exported, copy)
    imported = open_store(None, copy)
    assert imported.heads() == store.heads()
    imported.verifier.verify()
    # a store reopened reads what is left
    again = open_store(None)
    assert again.head("BW") == resumed.block.header
    assert again.resume.dropped() == [part]


def test_a_retained_block_that_does_not_replay_changes_nothing(
    open_store: Callable[..., Store],
) -> None:
    _sc, _other, store, _forks = _setup(open_store)
    before = {name: store.verifier.table_rows(name) for name in ("parties", "headers")}
    # without the evidence, RU's block on version B does not replay (BW/3 of B is not held)
    with pytest.raises(StoreError, match="the blocks kept do not replay"):
        store.resume.drop("BW", 2, {})
    assert {name: store.verifier.table_rows(name) for name in ("parties", "headers")} == before
    assert store.resume.dropped() == []
    head = store.head("BW")
    assert head is not None
    assert head.height == 2
    assert store.party("BW-ON-A") is not None
