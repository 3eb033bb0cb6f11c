"""The offline verifier enforces every header rule a node enforces.

Each forged header is built once and fed both to the node's own check of a
received block (``ledger.chain``'s key lookup and ``ledger.blocks.check_link``)
and, inside a bundle, to ``ledger.bundle.verify_bundle``: both must refuse it,
for the same reason. The story: BW's key is replaced by governance (the old key
is stolen), NA is suspended; the stolen key then signs headers that a node
refuses.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block, Header, SignedHeader, check_link
from kpledger.ledger.bundle import STEPS, check_bundle, serialize_bundle
from kpledger.ledger.canonical import Tag, canonical_bytes, sha256
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.merkle import Frontier
from kpledger.ledger.records import Kind
from kpledger.ledger.state import key_at
from kpledger.ledger.store import Store
from kpledger.ledger.store.bundles import build_bundle

Doc = dict[str, Any]


@dataclass(frozen=True)
class Forgery:
    """A forged signed header of a bundle, and what both checks must say of it."""

    name: str
    bundle: bytes
    signed: SignedHeader
    prev: Header
    node_says: str
    bundle_says: str


@dataclass
class Story:
    net: Network
    sc: Scenario
    store: Store
    stolen: Ed25519Signer
    parcel: str


def stolen_key_story() -> Story:
    net = Network.create(("BW", "EU", "NA", "RU"), ("WDC",))
    sc = Scenario(net)
    store = Store.open("sqlite://", net.registry)

    def seal(chain: str, *records: Any) -> None:
        store.writer.apply(sc.seal(chain, *records))

    seal("BW", sc.party("BW", "BW-MINE", "miner"), sc.party("BW", "BW-EXP", "exporter"))
    seal("EU", sc.party("EU", "EU-IMP", "importer"))
    seal("NA", sc.party("NA", "NA-IMP", "importer"))
    seal("BW", sc.register("BW", "BW-P1", "BW-MINE", 100_000, 13_400_000))
    seal("BW", sc.transfer("BW", "BW-P1", "BW-EXP"))
    stolen = net.signers["BW"]
    replaced = Ed25519Signer.from_seed(sha256(b"kpledger-test: headers BW replaced"))
    head = sc.ledger.state.head("BW")
    assert head is not None
    body = {"code": "BW", "key": replaced.public.hex(), "from_height": head.height + 1}
    seal("KP", sc.governance(Kind.KEY_REPLACE, {**body, "reason": "key stolen"}))
    net.signers["BW"] = replaced
    seal("EU", sc.party("EU", "EU-IMP2", "importer"))
    seal("BW", sc.party("BW", "BW-TRD", "trader"))  # witnesses KP/1 and EU/2
    seal("KP", sc.governance(Kind.MEMBER_SUSPEND, {"code": "NA", "reason": "review"}))
    seal("BW", sc.issue("BW", "BW-2026-1", "EU", "BW-EXP", ["BW-P1"]))
    seal("EU", sc.confirm("EU", "BW-2026-1", "EU-IMP"))
    seal("RU")  # heartbeats: now every block is witnessed by two other authorities
    seal("BW")
    return Story(net, sc, store, stolen, "BW-P1")


def _header(doc: Doc, chain: str, height: int) -> Doc:
    found: Doc = next(
        h
        for h in doc["headers"]
        if h["header"]["chain"] == chain and h["header"]["height"] == height
    )
    return found


def _resign(signed: Doc, signer: Ed25519Signer) -> None:
    signed["header"]["key_id"] = signer.public.key_id
    signed["sig"] = signer.sign(Tag.SIG_HEADER, canonical_bytes(signed["header"])).hex()


def forgeries(story: Story) -> list[Forgery]:
    """Forged headers of BW, each put into BW-P1's bundle in place of the real one."""
    doc = build_bundle(story.store, story.parcel)
    heights = sorted(h["header"]["height"] for h in doc["headers"] if h["header"]["chain"] == "BW")
    top = heights[-1]
    assert top - 1 in heights
    prev = Header.from_json(_header(doc, "BW", top - 1)["header"])
    assert {w.chain for w in prev.witness} >= {"KP", "EU"}
    out: list[Forgery] = []

    def forge(name: str, edit: Any, signer: Ed25519Signer, node: str, offline: str) -> None:
        new = copy.deepcopy(doc)
        signed = _header(new, "BW", top)
        edit(signed["header"])
        _resign(signed, signer)
        out.append(
            Forgery(
                name,
                serialize_bundle(new),
                SignedHeader.from_json(signed),
                prev,
                node,
                offline,
            )
        )

    def back(h: Doc) -> None:  # witnesses EU at a height below the one BW/top-1 saw
        eu = next(w for w in h["witness"] if w["chain"] == "EU")
        eu["height"] = 1
        eu["hash"] = _hash_of(story, "EU", 1)

    def drop(h: Doc) -> None:
        h["witness"] = [w for w in h["witness"] if w["chain"] != "EU"]

    def no_kp(h: Doc) -> None:  # the issue's attack: the stolen key, no KP witnessed
        h["witness"] = [w for w in h["witness"] if w["chain"] != "KP"]

    replaced = story.net.signers["BW"]
    forge("witness went back", back, replaced, "witness of EU went back", "went back")
    forge("witness dropped", drop, replaced, "witness dropped ['EU']", "witness dropped ['EU']")
    forge(
        "stolen key after key.replace",
        lambda h: None,
        story.stolen,
        "names key",
        "but the chain's key at that height is",
    )
    forge("stolen key, KP unwitnessed", no_kp, story.stolen, "dropped ['KP']", "dropped ['KP']")
    return out


def _hash_of(story: Story, chain: str, height: int) -> str:
    held = story.sc.ledger.state.header(chain, height)
    assert held is not None
    return held.hash.hex()


def node_check(story: Story, f: Forgery) -> None:
    """What a node does with a received block's header: the key BW has at that
    height (key history, ``key_at``) and ``check_link`` (link, time, witness order,
    signature)."""
    h = f.signed.header
    key = key_at(story.sc.ledger.state, h.chain, h.height)
    assert key is not None
    frontier = Frontier()
    for block in story.sc.ledger.blocks[h.chain][: f.prev.height]:
        for record in block.records:
            frontier.append(record.leaf)
    check_link(
        Block(f.signed, ()),
        network=story.net.registry.network_id,
        prev=f.prev,
        frontier=frontier,
        key=key,
        params=story.net.registry.params,
    )


@pytest.fixture(scope="module")
def story() -> Iterator[Story]:
    s = stolen_key_story()
    try:
        yield s
    finally:
        s.store.close()


def test_the_real_bundle_verifies(story: Story) -> None:
    result = check_bundle(serialize_bundle(build_bundle(story.store, story.parcel)))
    assert result.ok, result.error


@pytest.mark.parametrize("which", range(4))
def test_node_and_offline_verifier_refuse_the_same_forged_header(story: Story, which: int) -> None:
    f = forgeries(story)[which]
    with pytest.raises(InvalidData) as node:
        node_check(story, f)
    assert f.node_says in str(node.value), (f.name, node.value)
    result = check_bundle(f.bundle, parcel=story.parcel)
    assert not result.ok, f.name
    assert result.step == STEPS[2], (f.name, result.error)  # step 3 (headers)
    assert f"header BW/{f.signed.header.height}" in str(result.error)
    assert f.bundle_says in str(result.error), (f.name, result.error)
