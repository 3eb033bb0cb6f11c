"""An authority that signs two different blocks at one height is caught by every node,
and its chain resumes at the fork under a new key (README "When an authority equivocates").

BW's node runs with RU, AE and the auditor WDC until all hold the same chain;
then BW's node stops, and the test, holding BW's key (as a rogue operator of
BW would), seals two different blocks at the next height on top of BW's real
head. RU reaches "BW" (through its proxy) at a fake peer serving one of them,
AE and WDC at a fake peer serving the other. Every honest node must detect
the equivocation, hold the same evidence document, and refuse BW's chain past
the fork even when offered a validly signed next block.

The honest nodes reach each other through proxies that are cut while BW's two
versions arrive, so that RU applies version A and AE and WDC version B, and
RU and AE each seal blocks witnessing the version they hold (with records
their operators were told are pending). Once the links heal and the evidence
spreads, the honest chains must converge on every node (issue 9, item 1:
they used to refuse each other's blocks as ``witness-invalid`` for good),
with every acknowledged record committed. Then the operator's procedure: the
chair's ``key.replace`` from the fork height, every node dropping the old key's
blocks, BW's node restarted with the new key on its store (which holds one
version), BW's chain resumed at the fork on every node, and the record BW's
node dropped submitted again and committed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from kpledger.cli.main import app
from kpledger.keys import load_key, save_key
from kpledger.ledger.blocks import Block, Evidence, seal
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.store import Store

HONEST = ("RU", "AE", "WDC")
HONEST_CHAINS = ("RU", "AE")
#: seconds from the evidence on every node (as the test sees it: /v1/evidence and
#: /healthz answer it on all three) until every node holds the blocks RU and AE had
#: sealed by then: blocks waiting on the evidence are judged at once, new evidence
#: starts a gossip round with every reachable peer, and a healed link is back at the
#: next block pushed; the issue's goal is 5 s, this leaves room for a loaded machine
CONVERGE_AFTER_EVIDENCE = 10.0


def _evidence(url: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = httpx.get(f"{url}/v1/evidence", timeout=2.0).json()["evidence"]
    return docs


@pytest.mark.timeout(600)
@pytest.mark.parametrize("ru_holds", ["lower", "higher"])
def test_equivocation_is_detected_everywhere(
    cluster: Any, proxies: Any, fake_peer: Any, harness: Any, ru_holds: str, tmp_path: Path
) -> None:
    """``ru_holds``: which of the two versions (by header hash) RU takes first, so that
    neither order of the hashes decides the outcome."""
    net = cluster(("RU", "BW", "AE"), ("WDC",))  # RU seals KP: BW's node will be down
    to_bw = {}
    for code in HONEST:
        to_bw[code] = proxies.add(f"{code}->BW", harness.port_of(net.nodes["BW"].url))
        net.route(code, "BW", to_bw[code].url)
    links = []
    for src in HONEST:
        for dst in HONEST:
            if src != dst:
                link = proxies.add(f"{src}->{dst}", harness.port_of(net.nodes[dst].url))
                net.route(src, dst, link.url)
                links.append(link)
    net.start()
    writer = harness.ChainWriter(net.network_id, "BW", "eq")
    bw = net.operator("BW")
    for _ in range(2):
        bw.wait_settled(harness.submit_all(bw, writer.mixed(50)), timeout=20)
    net.wait_converged(("BW", *HONEST), timeout=30, chains=("BW", "RU", "AE"))

    # BW's node stops; its real chain is what the honest nodes hold
    net.stop("BW")
    store = Store.open(net.nodes["BW"].db_url, create=False)
    try:
        head = store.head("BW")
        assert head is not None
        frontier = store.frontier("BW")
        real = [b.to_json() for b in store.log.blocks("BW", 1, head.height)]
    finally:
        store.close()
    h = head.height
    net.wait_converged(HONEST, timeout=30, at_least={"BW": h})

    # two blocks at height h + 1, both validly signed by BW's key, and one more on each
    signer = load_key(net.nodes["BW"].config.parent / "node.key", net.passphrase("BW"))
    when = max(harness.utc_now(), head.time)

    def make(prev: Any, front: Any, records: list[Any]) -> tuple[Block, Any]:
        block, after = seal(
            signer=signer,
            network=net.network_id,
            chain="BW",
            prev=prev,
            frontier=front,
            records=records,
            time=when,
            witness=list(head.witness),
        )
        return block, after

    block_a, front_a = make(head, frontier, [writer.party()])
    block_b, front_b = make(head, frontier, [writer.party()])
    assert block_a.header.height == block_b.header.height == h + 1
    assert block_a.header.hash != block_b.header.hash
    if (block_a.header.hash < block_b.header.hash) != (ru_holds == "lower"):
        (block_a, front_a), (block_b, front_b) = (block_b, front_b), (block_a, front_a)
    next_a, _ = make(block_a.header, front_a, [])
    next_b, _ = make(block_b.header, front_b, [])

    fakes = {}
    for name, block in (("A", block_a), ("B", block_b)):
        fake = fake_peer(net.network_id, "BW")
        fake.chains = {"BW": [*real, block.to_json()]}
        fake.claim = {"BW": {"height": h + 1, "hash": block.header.hash.hex()}}
        fakes[name] = fake
    proxies.set_cut(links, True)  # the honest nodes cannot compare notes for a while
    proxies.retarget(to_bw["RU"], fakes["A"].port)
    proxies.retarget(to_bw["AE"], fakes["B"].port)
    proxies.retarget(to_bw["WDC"], fakes["B"].port)
    version = {"RU": block_a.header.hash.hex(), "AE": block_b.header.hash.hex()}
    version["WDC"] = version["AE"]
    deadline = time.monotonic() + 30
    while any(net.heads(c)["BW"]["hash"] != version[c] for c in HONEST):
        assert time.monotonic() < deadline, {c: net.heads(c)["BW"] for c in HONEST}
        time.sleep(0.1)
    # RU and AE seal records on top of the version each holds; their operators
    # are told "pending": these must not be lost
    acked: dict[str, list[str]] = {}
    mark = {c: net.heads(c)[c]["height"] for c in HONEST_CHAINS}
    for code in HONEST_CHAINS:
        w = harness.ChainWriter(net.network_id, code, "fork")
        acked[code] = harness.submit_all(net.operator(code), w.mixed(20))
    deadline = time.monotonic() + 30
    for code in HONEST_CHAINS:
        net.operator(code).wait_settled(acked[code], timeout=30)
        while net.heads(code)[code]["height"] <= mark[code] + 1:
            assert time.monotonic() < deadline, net.heads(code)
            time.sleep(0.1)
    proxies.set_cut(links, False)
    healed = time.monotonic()

    # every honest node ends up with the same evidence document
    deadline = time.monotonic() + 30
    while True:
        held = {code: _evidence(net.nodes[code].url) for code in HONEST}
        if all(held.values()):
            break
        assert time.monotonic() < deadline, {c: len(d) for c, d in held.items()}
        time.sleep(0.1)
    docs = held["RU"]
    assert len(docs) == 1
    assert all(d == docs for d in held.values()), held
    evidence = Evidence.from_json(docs[0])
    assert evidence.chain == "BW"
    assert {evidence.a.header.hash, evidence.b.header.hash} == {
        block_a.header.hash,
        block_b.header.hash,
    }
    evidence.verify(lambda _chain, _height: signer.public)
    for code in HONEST:
        health = httpx.get(f"{net.nodes[code].url}/healthz", timeout=2.0).json()
        assert health["evidence"] == 1, (code, health)
    evidence_everywhere = time.monotonic()

    # the honest chains converge on every node, whichever version each node took: every
    # block each honest authority had sealed when the evidence was everywhere (its records
    # acknowledged on either side of the fork among them) is held by every node, the same
    # block at the same height. (Heads read one node after another never match on a
    # loaded machine while every chain seals a heartbeat block every 2 s.)
    target = {k: net.heads(k)[k] for k in HONEST_CHAINS}
    assert all(target[k]["height"] > mark[k] + 1 for k in HONEST_CHAINS), target
    net.wait_holding(HONEST, target, timeout=CONVERGE_AFTER_EVIDENCE)
    converged = time.monotonic() - evidence_everywhere
    print(
        f"evidence on every node {evidence_everywhere - healed:.2f} s after the links healed; "
        f"honest chains converged {converged:.2f} s after that"
    )
    # every record acknowledged on either side of the fork is committed, on every node
    for code in HONEST:
        reader = net.reader(code)
        for chain, ids in acked.items():
            held = reader.outcomes(ids, chain)  # each as GET /v1/records/{id} gives it
            for rid in ids:
                got = held.get(rid)
                assert got is not None, (code, chain, rid)
                assert got["status"] == "committed", (code, chain, rid, got)
    for code in HONEST:
        assert net.heads(code)["BW"]["hash"] == version[code], code  # each keeps its version

    # a validly signed block past the fork is offered to everyone and taken by no one
    for name, block in (("A", next_a), ("B", next_b)):
        fakes[name].chains["BW"].append(block.to_json())
        fakes[name].claim = {"BW": {"height": h + 2, "hash": block.header.hash.hex()}}
    offered = time.monotonic()
    deadline = offered + 60  # a few gossip rounds; a peer backed off earlier waits longer
    query = f"/v1/chains/BW/blocks?from={h + 2}"

    def unasked() -> list[str]:
        return [
            name
            for name, f in fakes.items()
            if not any(p.startswith(query) for t, _, p in f.requests if t > offered)
        ]

    while unasked():
        assert time.monotonic() < deadline, f"fakes {unasked()} never asked for the next block"
        time.sleep(0.1)
    time.sleep(1.0)  # and a few more rounds
    for code in HONEST:
        heads = net.heads(code)
        assert heads["BW"]["height"] == h + 1, (code, heads["BW"])
        assert heads["BW"]["hash"] in {block_a.header.hash.hex(), block_b.header.hash.hex()}
        assert _evidence(net.nodes[code].url) == docs

    _resume(net, proxies, harness, tmp_path, to_bw, signer, block_a, h + 1)


def _kpl(*args: str, passphrase: str | None = None) -> str:
    env = {"COLUMNS": "300"}
    if passphrase is not None:
        env["KPL_PASSPHRASE"] = passphrase
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def _resume(
    net: Any,
    proxies: Any,
    harness: Any,
    tmp_path: Path,
    to_bw: dict[str, Any],
    old_key: Any,
    block_a: Block,
    fork: int,
) -> None:
    """README "When an authority equivocates", steps 2-4, with real processes: the chair's
    key.replace from the fork height, BW's node restarted with the new key on its store
    (which holds version A), BW's chain resumed at the fork on every node, the records
    BW's node dropped submitted again and committed."""
    # BW's store held version A when its node stopped (it sealed it: two writers)
    store = Store.open(net.nodes["BW"].db_url, create=False)
    try:
        store.writer.apply(block_a)
        store.disclosures.keep(block_a.records)
    finally:
        store.close()
    for code in HONEST:  # BW's address leads to BW's node again
        proxies.retarget(to_bw[code], harness.port_of(net.nodes["BW"].url))

    # 2. the chair: key.replace of BW from the fork height, two governance signatures
    new_key = Ed25519Signer.generate()
    registry = str(net.root / "genesis.json")
    proposal = tmp_path / "replace-BW.json"
    _kpl(
        "governance", "propose", "key-replace", "--registry", registry, "-o", str(proposal),
        "--code", "BW", "--key", new_key.public.hex(), "--from-height", str(fork),
        "--reason", "equivocation",
    )  # fmt: skip
    chair = str(net.secrets["governance"]["passphrase"])
    for gov in ("gov-0.key", "gov-2.key"):
        key = str(net.root / "governance" / gov)
        _kpl("governance", "sign", str(proposal), "--key", key, "--registry", registry,
             passphrase=chair)  # fmt: skip
    out = _kpl("governance", "submit", str(proposal), "--node", net.nodes["RU"].url)
    assert "committed on chain KP" in out, out
    submitted = time.monotonic()

    # 3. every honest node drops the old key's BW blocks from the fork on
    deadline = submitted + 60
    while any(net.heads(c)["BW"]["height"] != fork - 1 for c in HONEST):
        assert time.monotonic() < deadline, {c: net.heads(c)["BW"] for c in HONEST}
        time.sleep(0.1)
    dropped = time.monotonic() - submitted
    # BW's node starts with the new key as node.key, on its store
    key_file = net.nodes["BW"].config.parent / "node.key"
    key_file.rename(tmp_path / "bw-old.key")  # the old key leaves the node's folder
    save_key(key_file, new_key, net.passphrase("BW"))
    net.start("BW")
    started = time.monotonic()
    deadline = started + 120
    while True:
        heads = {c: net.heads(c) for c in ("BW", *HONEST)}
        if all(h["BW"]["height"] >= fork for h in heads.values()):
            break
        assert time.monotonic() < deadline, {c: h["BW"] for c, h in heads.items()}
        time.sleep(0.2)
    resumed = time.monotonic() - started
    every = ("BW", *HONEST)
    for code in every:
        block = net.reader(code).get("/v1/chains/BW/blocks", **{"from": fork, "limit": 1})
        header = block["blocks"][0]["header"]
        assert header["key_id"] == new_key.public.key_id, (code, header)
        assert header["key_id"] != old_key.public.key_id
    print(
        f"key.replace to old blocks dropped on every honest node {dropped:.2f} s; "
        f"BW's restart to its new block {fork} on every node {resumed:.2f} s"
    )

    # 4. what BW's node dropped: listed, submitted again, committed everywhere
    listing = tmp_path / "dropped.json"
    shown = _kpl("db", "dropped", "--db", net.nodes["BW"].db_url, "--out", str(listing))
    [again] = json.loads(listing.read_text())["records"]
    assert again["id"] == block_a.records[0].id
    assert again["id"] in shown
    [result] = net.operator("BW").submit([again])
    assert result["status"] == "pending", result
    net.operator("BW").wait_settled([again["id"]], timeout=60)
    target = {k: net.heads(k)[k] for k in ("BW", *HONEST_CHAINS)}
    net.wait_holding(every, target, timeout=60)
    for code in every:
        got = net.reader(code).outcome(again["id"], "BW")
        assert got is not None, code
        assert got["status"] == "committed", (code, got)
        assert got["height"] >= fork
    net.stop()
    net.verify_stores(every)
