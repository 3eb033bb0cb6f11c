"""An equivocating chain restarted by a ``key.replace`` at its fork height (issue 9).

BW signs two versions of height 2: this node (``sc``) holds version A, the
other side (``other``) version B and one more block on it, which RU witnesses.
The governance chain (sealed by EU) then replaces BW's key from height 2.

* ``key.replace``'s ``from_height`` lies above the height its ``KP`` block
  witnesses, or is the fork height of evidence held (``witness-invalid``
  otherwise, a wait for a node that lacks the evidence);
* once the old key's blocks from the fork on are dropped and the retained ones
  replayed, BW's new key seals height 2 on top of the common header 1;
* a block that sees the replacement witnesses BW's new chain, checked like any
  other, or repeats its previous block's witness of an old version above the
  new head (witness heights never go back), which counts as the common header;
  a block that does not see it keeps the cap there, whatever BW hash it names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest

from kpledger.devtools.workload import Scenario
from kpledger.ledger.blocks import Block, Evidence, WitnessRef, seal
from kpledger.ledger.chain import (
    apply_block,
    detect_equivocation,
    fork_heights,
    genesis,
    propose,
)
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import BlockError, DependencyMissing, InvalidData, WitnessInvalid
from kpledger.ledger.forks import live_forks, resumed_at, verify_evidence, witness_needs
from kpledger.ledger.records import Kind, Record
from kpledger.ledger.state import State, key_at
from tests.ledger.forked import forked

NEW_KEY = Ed25519Signer.from_seed(b"bw-after-the-fork".ljust(32, b"-"))


def _apply(view: State, blocks: Iterable[Block], sc: Scenario, forks: Mapping[str, int]) -> None:
    for block in blocks:
        apply_block(view, block, sc.net.registry, forks).merge_into(view)


def _forked() -> tuple[Scenario, Scenario, dict[str, int]]:
    sc, other, evidence = forked()
    return sc, other, fork_heights([evidence])


def _replace(sc: Scenario, from_height: int, code: str = "BW") -> Record:
    body = {
        "code": code,
        "key": NEW_KEY.public.hex(),
        "from_height": from_height,
        "reason": "equivocation",
    }
    return sc.governance(Kind.KEY_REPLACE, body)


def test_from_height_must_lie_past_the_witnessed_height_or_at_the_fork() -> None:
    sc, other, forks = _forked()
    assert forks == {"BW": 2}
    view = State(base=sc.ledger.state)
    _apply(view, other.ledger.blocks["RU"][1:], sc, forks)

    def judge(record: Record, held: Mapping[str, int]) -> list[str]:
        p = propose(view, sc.net.registry, sc.net.signer("KP"), "KP", [record], sc.tick(), held)
        return [exc.code for _, exc in p.rejected]

    # the KP block witnesses BW at 2 (version A, held here)
    assert judge(_replace(sc, 3), {}) == []  # the next height: always valid
    assert judge(_replace(sc, 40), {}) == []  # or later, the chair's choice
    assert judge(_replace(sc, 2), {}) == ["witness-invalid"]  # no evidence held
    assert judge(_replace(sc, 2), forks) == []  # the fork height, with the evidence
    assert judge(_replace(sc, 1), forks) == ["witness-invalid"]  # below the fork
    p = propose(view, sc.net.registry, sc.net.signer("KP"), "KP", [_replace(sc, 1)], sc.tick())
    exc = p.rejected[0][1]
    assert exc.field == "body.from_height"
    assert "from_height 1" in exc.reason
    assert "BW's height 2" in exc.reason
    # KP's own key: from the next KP height on
    assert judge(_replace(sc, 1, "KP"), {}) == ["witness-invalid"]
    assert judge(_replace(sc, 2, "KP"), {}) == []

    # a peer's KP block naming the fork height waits on a node without the evidence
    sealed = propose(
        view, sc.net.registry, sc.net.signer("KP"), "KP", [_replace(sc, 2)], sc.tick(), forks
    )
    assert not sealed.rejected
    with pytest.raises(WitnessInvalid):
        apply_block(view, sealed.block, sc.net.registry, {})
    apply_block(view, sealed.block, sc.net.registry, forks)


def test_the_chain_resumes_at_the_fork_height_under_the_new_key() -> None:
    sc, other, forks = _forked()
    ru_on_b = other.ledger.blocks["RU"][1]
    view = State(base=sc.ledger.state)
    _apply(view, [ru_on_b], sc, forks)
    replace = _replace(sc, 2)
    sealed = propose(view, sc.net.registry, sc.net.signer("KP"), "KP", [replace], sc.tick(), forks)
    assert not sealed.rejected
    kp_block = sealed.block
    assert resumed_at(sealed.layer, forks) == {"BW": 1}
    # RU's node held version B and sealed on, not having seen the replacement yet
    late = propose(
        other.ledger.state, sc.net.registry, sc.net.signer("RU"), "RU", [], other.tick()
    ).block
    assert {w.chain: w.height for w in late.header.witness}["BW"] == 3

    # a node drops BW's blocks from height 2 on and replays what it keeps
    kept = State(base=None)
    genesis(sc.net.registry).merge_into(kept)
    _apply(kept, [sc.ledger.blocks["BW"][0], *sc.ledger.blocks["RU"], ru_on_b], sc, forks)
    _apply(kept, [kp_block], sc, forks)
    assert key_at(kept, "BW", 2) == NEW_KEY.public
    assert key_at(kept, "BW", 1) == sc.net.signer("BW").public

    # the old key's version of height 2 is no longer BW's: its signature is refused
    with pytest.raises(BlockError):
        apply_block(kept, sc.ledger.blocks["BW"][1], sc.net.registry, forks)
    # the new key seals height 2, linked to the common header 1
    resumed = propose(kept, sc.net.registry, NEW_KEY, "BW", [], sc.tick(), forks)
    assert resumed.block.header.height == 2
    assert resumed.block.header.prev == sc.ledger.blocks["BW"][0].header.hash
    _apply(kept, [resumed.block], sc, forks)

    # RU's late block (before the replacement, on its own view) is judged as before:
    # BW capped at its common header, whatever BW/3 it names
    assert witness_needs(kept, late.header, forks)["BW"] == 1
    view_late = State(base=kept)
    _apply(view_late, [late], sc, forks)

    # a block that sees the replacement repeats its previous witness of BW (version B's
    # BW/3, above BW's new head 2): witness heights never go back, and the repeat counts
    # as BW's common header 1
    after = propose(view_late, sc.net.registry, sc.net.signer("RU"), "RU", [], sc.tick(), forks)
    witnessed = {w.chain: w for w in after.block.header.witness}
    assert witnessed["BW"] == next(w for w in late.header.witness if w.chain == "BW")
    assert witnessed["KP"].height == 1
    assert live_forks(view_late, forks, 1) == {}
    assert live_forks(view_late, forks, 0) == {"BW": 2}
    assert witness_needs(view_late, after.block.header, forks, late.header)["BW"] == 1
    assert witness_needs(view_late, after.block.header, forks)["BW"] == 3  # not a repeat
    _apply(view_late, [after.block], sc, forks)

    # an old-key BW header it did not witness before is not capped: a block that sees the
    # replacement must name the new chain's BW/4, which this node does not hold
    old_b4 = other.seal("BW").header
    kp_head = kp_block.header
    refs = [w for w in after.block.header.witness if w.chain not in ("BW", "KP")]
    wrong, _ = seal(
        signer=sc.net.signer("RU"),
        network=sc.net.network_id,
        chain="RU",
        prev=after.block.header,
        frontier=view_late.frontier("RU"),
        records=[],
        time=sc.tick(),
        witness=[
            *refs,
            WitnessRef("BW", old_b4.height, old_b4.hash),
            WitnessRef("KP", kp_head.height, kp_head.hash),
        ],
    )
    assert witness_needs(view_late, wrong.header, forks, after.block.header)["BW"] == 4
    with pytest.raises(DependencyMissing):
        apply_block(view_late, wrong, sc.net.registry, forks)

    # once BW's new chain reaches the height repeated, blocks witness it like any other
    for _ in range(2):
        _apply(
            view_late,
            [propose(view_late, sc.net.registry, NEW_KEY, "BW", [], sc.tick(), forks).block],
            sc,
            forks,
        )
    new_bw = view_late.head("BW")
    assert new_bw is not None
    assert new_bw.height == 4
    later = propose(view_late, sc.net.registry, sc.net.signer("RU"), "RU", [], sc.tick(), forks)
    bw_ref = next(w for w in later.block.header.witness if w.chain == "BW")
    assert (bw_ref.height, bw_ref.hash) == (4, new_bw.hash)
    assert witness_needs(view_late, later.block.header, forks, after.block.header)["BW"] == 4
    _apply(view_late, [later.block], sc, forks)
    assert later.layer.heads["RU"] == later.block.header


def test_evidence_signed_with_the_replaced_key_still_verifies() -> None:
    """A node that receives the evidence after the key.replace (catching up, an import)
    checks it against the key history as it stood before; an old-key header and the new
    key's header at the fork height are no evidence."""
    sc, other, forks = _forked()
    evidence = detect_equivocation(sc.ledger.state, other.ledger.blocks["BW"][1].signed)
    assert evidence is not None
    view = State(base=sc.ledger.state)
    kp = propose(
        view, sc.net.registry, sc.net.signer("KP"), "KP", [_replace(sc, 2)], sc.tick(), forks
    )
    kp.layer.merge_into(view)
    assert key_at(view, "BW", 2) == NEW_KEY.public
    with pytest.raises(BlockError):  # the ledger's key at height 2 is the new one now
        evidence.verify(lambda c, h: key_at(view, c, h))  # type: ignore[arg-type,return-value]
    verify_evidence(view, evidence)
    # the new key's height 2 against the old key's version A: not one key's two histories
    kept = State(base=None)
    genesis(sc.net.registry).merge_into(kept)
    _apply(kept, [sc.ledger.blocks["BW"][0], sc.ledger.blocks["RU"][0], kp.block], sc, forks)
    resumed = propose(kept, sc.net.registry, NEW_KEY, "BW", [], sc.tick(), forks).block
    old_a = sc.ledger.blocks["BW"][1].signed
    mixed = Evidence.build(old_a, resumed.signed)
    with pytest.raises(InvalidData):
        verify_evidence(view, mixed)
