"""A node restarts an equivocating chain when the ``key.replace`` naming its fork arrives.

In process, over SQLite stores: BW signs two versions of height 2. AE's node
holds version A (a party registered in it); RU sealed a block on version B,
witnessing BW/3 of B. Then EU (the KP secretariat) seals the ``key.replace``
of BW from height 2. AE's node must drop BW/2 with what it implies, log it,
seal on (repeating its witness of BW's old height 2 until the new chain
reaches it: witness heights never go back), take BW's new height 2, and
ignore the old key's blocks from then on; BW's own node, started with the
new key, seals height 2 once the replacement reaches it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block, Evidence
from kpledger.ledger.chain import detect_equivocation, propose
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.records import Kind
from kpledger.ledger.store import Store
from kpledger.node.config import NodeConfig
from kpledger.node.node import Node

NEW_KEY = Ed25519Signer.from_seed(b"bw-resumes-at-its-fork".ljust(32, b"-"))


@dataclass
class Fork:
    sc: Scenario
    a: list[Block]  # BW/1, RU/1, BW/2 of version A, in causal order
    ru_on_b: Block  # RU/2, witnessing BW/3 of version B
    evidence: Evidence


@pytest.fixture
def fork() -> Fork:
    sc = Scenario(Network.create(("EU", "BW", "RU", "AE"), ()))
    sc.seal("BW", sc.party("BW", "BW-T1"))
    sc.seal("RU", sc.party("RU", "RU-T1"))
    other = Scenario(sc.net, serial=10_000, clear=dict(sc.clear))
    for block in (sc.ledger.blocks["BW"][0], sc.ledger.blocks["RU"][0]):
        other.ledger.append(block)
    other.clock = sc.clock
    sc.seal("BW", sc.party("BW", "BW-ON-A"))
    other.seal("BW", other.party("BW", "BW-ON-B"))
    other.seal("BW")
    ru_on_b = other.seal("RU", other.party("RU", "RU-ON-B"))
    evidence = detect_equivocation(sc.ledger.state, other.ledger.blocks["BW"][1].signed)
    assert evidence is not None
    a = [sc.ledger.blocks["BW"][0], sc.ledger.blocks["RU"][0], sc.ledger.blocks["BW"][1]]
    return Fork(sc, a, ru_on_b, evidence)


def _node(fork: Fork, code: str, folder: Path, signer: Ed25519Signer) -> Iterator[Node]:
    store = Store.open(f"sqlite:///{folder / f'{code}.db'}", fork.sc.net.registry)
    config = NodeConfig(
        path=folder / f"{code}.toml",
        code=code,
        host="127.0.0.1",
        port=8100,
        url=f"http://{code.lower()}.test",
        data_dir=folder,
        database_url="sqlite://",
        registry=folder / "genesis.json",
        key_file=None,
        secrets=None,
        peers=(),
    )
    node = Node(config, store, signer, clock=fork.sc.now)
    try:
        yield node
    finally:
        store.close()


def _receive(node: Node, *blocks: Block) -> None:
    for block in blocks:
        node.receive(block.header.chain, [block.to_json()])


def _replacement(fork: Fork, node: Node) -> Block:
    body = {"code": "BW", "key": NEW_KEY.public.hex(), "from_height": 2, "reason": "equivocation"}
    record = fork.sc.governance(Kind.KEY_REPLACE, body)
    sealed = propose(
        node.store,
        fork.sc.net.registry,
        fork.sc.net.signer("KP"),
        "KP",
        [record],
        fork.sc.tick(),
        node.forks,
    )
    assert not sealed.rejected
    return sealed.block


def test_an_honest_node_drops_the_old_version_and_takes_the_new_chain(
    fork: Fork, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for node in _node(fork, "AE", tmp_path, fork.sc.net.signer("AE")):
        _receive(node, *fork.a)
        fork.sc.tick()
        own = node.seal()
        assert own is not None
        assert {w.chain: w.height for w in own.header.witness}["BW"] == 2
        # RU's block on version B waits for BW/3, which this node will never hold...
        _receive(node, fork.ru_on_b)
        assert node.holds("RU", 2)
        # ...until the evidence caps BW at its common header for it
        assert node.add_evidence(fork.evidence)
        assert not node.holds("RU", 2)
        head = node.store.head("RU")
        assert head is not None
        assert head.height == 2
        assert node.frozen("BW")
        assert node.store.party("BW-ON-A") is not None

        kp = _replacement(fork, node)
        with caplog.at_level(logging.WARNING, logger="kpl.node"):
            _receive(node, kp)
        assert not node.frozen("BW")
        bw = node.store.head("BW")
        assert bw is not None
        assert bw.height == 1
        assert node.store.party("BW-ON-A") is None
        [part] = node.store.resume.dropped()
        assert [r.id for _, _, r in part.records] == [fork.a[2].records[0].id]
        assert "BW restarted at height 2" in caplog.text
        assert fork.a[2].records[0].id in caplog.text

        # AE seals on: BW's new chain is below the A/2 it witnessed, which it repeats
        fork.sc.tick()
        after = node.seal()
        assert after is not None
        witnessed = {w.chain: w for w in after.header.witness}
        assert witnessed["BW"] == next(w for w in own.header.witness if w.chain == "BW")
        assert witnessed["KP"].height == 1
        # BW's new key seals height 2 on the common header; the old version is ignored
        resumed = propose(
            node.store,
            fork.sc.net.registry,
            NEW_KEY,
            "BW",
            [fork.sc.party("BW", "BW-NEW")],
            fork.sc.tick(),
            node.forks,
        )
        got = node.receive("BW", [resumed.block.to_json()])
        assert got.applied == 1
        assert node.receive("BW", [fork.a[2].to_json()]).known == 1
        assert node.store.head("BW") == resumed.block.header
        fork.sc.tick()
        later = node.seal()
        assert later is not None
        bw_ref = next(w for w in later.header.witness if w.chain == "BW")
        assert (bw_ref.height, bw_ref.hash) == (2, resumed.block.header.hash)
        node.store.verifier.verify()  # every block replays, AE's repeated witness among them


def test_the_equivocating_authority_seals_with_its_new_key_once_replaced(
    fork: Fork, tmp_path: Path
) -> None:
    # BW's node is restarted with the new key on its store, which holds its version A
    store = Store.open(f"sqlite:///{tmp_path / 'BW.db'}", fork.sc.net.registry)
    for block in fork.a:
        store.writer.apply(block)
    store.close()
    for node in _node(fork, "BW", tmp_path, NEW_KEY):
        node.add_evidence(fork.evidence)
        fork.sc.tick()
        assert node.seal() is None  # frozen, and the ledger still names the old key
        _receive(node, _replacement(fork, node))
        fork.sc.tick()
        sealed = node.seal()
        assert sealed is not None
        assert sealed.header.height == 2
        assert sealed.header.key_id == NEW_KEY.public.key_id
        assert sealed.header.prev == fork.a[0].header.hash
        node.store.verifier.verify()


def test_the_kp_secretariat_seals_the_replacement_once_it_holds_the_evidence(
    fork: Fork, tmp_path: Path
) -> None:
    for node in _node(fork, "EU", tmp_path, fork.sc.net.signer("EU")):
        _receive(node, *fork.a)
        body = {"code": "BW", "key": NEW_KEY.public.hex(), "from_height": 2, "reason": "fork"}
        record = fork.sc.governance(Kind.KEY_REPLACE, body)
        # without the evidence, the fork height lies in BW's witnessed past: refused
        refused = node.submit_governance(record.as_json())
        assert refused["status"] == "rejected", refused
        assert refused["code"] == "witness-invalid"
        assert refused["field"] == "body.from_height"
        assert "no evidence" in refused["reason"]
        bw = node.store.head("BW")
        assert bw is not None
        assert bw.height == 2
        # with it, the record is sealed and the node drops BW's old block at once
        node.add_evidence(fork.evidence)
        sealed = node.submit_governance(record.as_json())
        assert sealed["status"] == "committed", sealed
        bw = node.store.head("BW")
        assert bw is not None
        assert bw.height == 1
        assert node.store.party("BW-ON-A") is None
