"""Reading the log back: blocks by range, causal order, and stored evidence."""

from __future__ import annotations

import pytest

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block, Evidence, WitnessRef, seal
from kpledger.ledger.chain import detect_equivocation
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import EquivocationError
from kpledger.ledger.merkle import Frontier
from kpledger.ledger.records import Kind
from kpledger.ledger.state import key_at


def _same(got: Block, want: Block) -> None:
    assert got.header.raw == want.header.raw
    assert got.signed.sig == want.signed.sig
    assert [r.raw for r in got.records] == [r.raw for r in want.records]


def test_blocks_by_range(open_store, workload) -> None:
    net, blocks = workload(600, block_records=25)
    store = open_store(net.registry)
    for b in blocks:
        store.writer.apply(b)
    chains: dict[str, list[Block]] = {}
    for b in blocks:
        chains.setdefault(b.header.chain, []).append(b)

    for chain, applied in chains.items():
        assert len(applied) >= 10
        # whole chain in one read, then in batches whose edges fall everywhere
        for limit in (len(applied) + 5, 1, 3, 4, 7):
            got: list[Block] = []
            start = 1
            while True:
                batch = store.log.blocks(chain, start, limit)
                assert len(batch) <= limit
                if not batch:
                    break
                assert batch[0].header.height == start
                got.extend(batch)
                start += len(batch)
            assert len(got) == len(applied)
            for g, w in zip(got, applied, strict=True):
                _same(g, w)
        # a window that starts in the middle
        mid = len(applied) // 2
        for g, w in zip(store.log.blocks(chain, mid + 1, 3), applied[mid : mid + 3], strict=True):
            _same(g, w)
        assert store.log.blocks(chain, len(applied) + 1, 10) == []
    assert store.log.blocks("ZZ", 1, 10) == []

    # causal order: every witnessed header comes before the block that witnesses it
    seen: dict[str, int] = {}
    count = 0
    for b in store.log.iter_causal(batch=4):
        assert b.header.height == seen.get(b.header.chain, 0) + 1
        for w in b.header.witness:
            assert seen.get(w.chain, 0) >= w.height
        seen[b.header.chain] = b.header.height
        count += 1
    assert count == len(blocks)


def test_evidence_stored_once(open_store) -> None:
    sc = Scenario(Network.create())
    store = open_store(sc.net.registry)
    store.writer.apply(sc.seal("BW", sc.party("BW", "BW-T1")))
    store.writer.apply(sc.seal("EU", sc.party("EU", "EU-T1")))
    honest = sc.seal("BW", sc.register("BW", "BW-P1", "BW-T1", 100, 13_400))
    store.writer.apply(honest)

    # the BW authority signs a second, different block at the same height
    prev = store.header("BW", 1)
    first = store.log.blocks("BW", 1, 1)[0]
    frontier = Frontier()
    for r in first.records:
        frontier.append(r.leaf)
    rogue, _ = seal(
        signer=sc.net.signer("BW"),
        network=sc.net.network_id,
        chain="BW",
        prev=prev,
        frontier=frontier,
        records=[sc.register("BW", "BW-P9", "BW-T1", 200, 26_800)],
        time=sc.tick(),
        witness=[WitnessRef(h.chain, h.height, h.hash) for h in [store.head("EU")]],
    )
    assert rogue.header.height == honest.header.height
    assert rogue.header.hash != honest.header.hash

    ev = detect_equivocation(store, rogue.signed)
    assert ev is not None
    assert {ev.a.header.hash, ev.b.header.hash} == {honest.header.hash, rogue.header.hash}
    assert detect_equivocation(store, honest.signed) is None

    def key_for(chain: str, height: int):
        key = key_at(store, chain, height)
        assert key is not None
        return key

    ev.verify(key_for)
    assert store.evidence.all() == []
    assert store.evidence.add(ev) is True
    assert store.evidence.add(ev) is False
    stored = store.evidence.all()
    assert stored == [ev]
    assert stored[0].id == ev.id
    stored[0].verify(key_for)

    # a pair that does not contradict is not evidence
    with pytest.raises(EquivocationError, match="do not contradict"):
        Evidence.build(first.signed, honest.signed).verify(key_for)

    # survives a reopen
    store.close()
    again = open_store(None)
    assert again.evidence.all() == [ev]
    assert again.evidence.add(ev) is False


def test_key_records_are_the_chains_rotations_and_the_governance_acts_naming_it(
    open_store,
) -> None:
    sc = Scenario(Network.create(("BW", "EU"), ()))
    store = open_store(sc.net.registry)
    store.writer.apply(sc.seal("BW", sc.party("BW", "BW-T1")))
    new = Ed25519Signer.from_seed(b"bw-rotated".ljust(32, b"-"))
    rotate = sc.record("BW", Kind.KEY_ROTATE, {"key": new.public.hex()})
    store.writer.apply(sc.seal("BW", rotate))
    sc.net.signers["BW"] = new
    store.writer.apply(sc.seal("BW", sc.party("BW", "BW-T2")))
    fresh = Ed25519Signer.from_seed(b"eu-fresh".ljust(32, b"-"))
    # EU has sealed nothing yet: its key is replaced from its first block
    body = {"code": "EU", "key": fresh.public.hex(), "from_height": 1, "reason": "theft"}
    replace = sc.governance(Kind.KEY_REPLACE, body)
    store.writer.apply(sc.seal("KP", replace))
    assert [(r.id, i, h) for r, i, h in store.log.key_records("BW")] == [(rotate.id, 1, 2)]
    assert [(r.id, i, h) for r, i, h in store.log.key_records("EU")] == [(replace.id, 0, 1)]
    assert store.log.key_records("WDC") == []
