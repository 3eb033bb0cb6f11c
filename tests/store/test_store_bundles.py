"""Building provenance bundles from a store, and verifying them offline."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from kpledger.cli.example import run_example
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block
from kpledger.ledger.bundle import Verdict, check_bundle, serialize_bundle, verify_bundle
from kpledger.ledger.canonical import Tag, canonical_bytes, sha256
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import BlockError, NotCosigned, SchemaError, UnknownReference
from kpledger.ledger.records import Kind, Record
from kpledger.ledger.registry import Registry
from kpledger.ledger.state import CertificateStatus, ParcelStatus
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.bundles import build_bundle

Doc = dict[str, Any]
Opener = Callable[..., Store]


def parcel_ids(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(select(t.parcels.c.id)))


def verified(store: Store, parcel: str) -> Verdict:
    """Build the bundle, verify its bytes pinned to the store's registry and the parcel,
    and check the verdict against the store's own derived state."""
    data = serialize_bundle(build_bundle(store, parcel))
    verdict = verify_bundle(data, registry=store.registry, parcel=parcel)
    held = store.parcel(parcel)
    assert held is not None
    assert (verdict.chain, verdict.custodian, verdict.status) == (
        held.chain,
        held.custodian,
        held.status,
    )
    assert (verdict.weight, verdict.hs, verdict.origin) == (held.weight, held.hs, held.origin)
    assert {e.parent for e in store.lineage.ancestry(parcel)} == set(verdict.lineage)
    return verdict


def kinds(doc: Doc) -> list[tuple[str, int, str]]:
    return [(r["record"]["chain"], r["index"], r["record"]["kind"]) for r in doc["records"]]


def without(doc: Doc, chain: str, index: int) -> bytes:
    new = copy.deepcopy(doc)
    new["records"] = [
        r for r in new["records"] if (r["record"]["chain"], r["index"]) != (chain, index)
    ]
    return serialize_bundle(new)


class Story:
    """A scenario whose every block is also applied, fully verified, to a store."""

    def __init__(self, open_store: Opener, chains: tuple[str, ...] = ("BW", "EU")) -> None:
        self.net = Network.create(chains, ("WDC",))
        self.sc = Scenario(self.net)
        self.store = open_store(self.net.registry)

    def seal(self, chain: str, *records: Record) -> Block:
        block = self.sc.seal(chain, *records)
        self.store.writer.apply(block)
        return block

    def checkpoint(self) -> None:
        """A heartbeat on every authority's chain: each one witnesses the blocks
        before it, so every block with records is cosigned and bundles verify."""
        for chain in self.net.registry.authorities:
            self.seal(chain)


# ------------------------------------------------------------------ the example story


def test_example_bundle_of_the_final_parcel(store_url: str) -> None:
    result = run_example(store_url)
    store = result.store
    try:
        verdict = verified(store, "IN-CUT-1")
        assert dict(verdict.origin) == {"BW": 900_000}
        assert {"EU-AW-1", "BW-JW-1a", "BW-OR-1", "BW-JW-1"} <= set(verdict.lineage)
        assert [c.number for c in verdict.certificates] == [
            "AE-2026-0002",
            "BW-2026-0001",
            "BW-2026-0002",
            "EU-2026-0001",
        ]
        assert {s.parcel for s in verdict.sources} == {"BW-JW-1", "BW-OR-1"}
        # building is deterministic: the same store gives the same bytes
        assert serialize_bundle(build_bundle(store, "IN-CUT-1")) == serialize_bundle(
            build_bundle(store, "IN-CUT-1")
        )
        # every parcel of the story has a bundle that verifies, whatever its state
        for parcel in parcel_ids(store):
            verified(store, parcel)
        mixed = verified(store, "AE-MIX-1")  # refused by the EU for its Russian share
        assert mixed.status is ParcelStatus.ACTIVE  # back in Dubai
        assert dict(mixed.origin) == {"BW": 300_000, "RU": 900_000}
        assert ("AE-2026-0001", CertificateStatus.REFUSED) in [
            (c.number, c.status) for c in mixed.certificates
        ]
        with pytest.raises(UnknownReference, match="no parcel XX-NONE"):
            build_bundle(store, "XX-NONE")
    finally:
        store.close()


# ------------------------------------------------------------------ realistic data


def test_realistic_bundles(
    open_store: Opener, workload: Callable[..., tuple[Network, tuple[Block, ...]]]
) -> None:
    net, blocks = workload(3000, block_records=100)
    store = open_store(net.registry)
    for block in blocks:
        store.writer.apply(block)
    ids = parcel_ids(store)
    deepest = sorted(ids, key=lambda p: (-len(store.lineage.ancestry(p)), p))[:4]
    sample = random.Random(5).sample(ids, 20)
    for parcel in [*deepest, *sample]:
        verified(store, parcel)
    deep = verified(store, deepest[0])
    assert len(deep.lineage) >= 8
    assert deep.certificates


# ------------------------------------------------------------------ key rotation


def test_bundle_across_a_key_rotation(open_store: Opener) -> None:
    s = Story(open_store)
    s.seal("BW", s.sc.party("BW", "BW-MINE", "miner"), s.sc.party("BW", "BW-EXP", "exporter"))
    s.seal("EU", s.sc.party("EU", "EU-IMP", "importer"))
    s.seal("BW", s.sc.register("BW", "BW-P1", "BW-MINE", 100_000, 13_400_000))
    s.seal(
        "BW",
        s.sc.split("BW", "BW-P1", [("BW-P2", 60_000, 8_040_000), ("BW-P3", 40_000, 5_360_000)]),
    )
    s.checkpoint()
    before = serialize_bundle(build_bundle(s.store, "BW-P3"))
    new = Ed25519Signer.from_seed(sha256(b"kpledger-test: BW rotated"))
    rotation = s.seal("BW", s.sc.record("BW", Kind.KEY_ROTATE, {"key": new.public.hex()}))
    s.net.signers["BW"] = new
    s.seal("BW", s.sc.transfer("BW", "BW-P2", "BW-EXP"))
    s.seal("BW", s.sc.issue("BW", "BW-2026-1", "EU", "BW-EXP", ["BW-P2"]))
    s.seal("BW")  # a heartbeat: EU's confirmation witnesses this later head of BW
    s.seal("EU", s.sc.confirm("EU", "BW-2026-1", "EU-IMP"))
    s.checkpoint()

    doc = build_bundle(s.store, "BW-P2")
    verdict = verified(s.store, "BW-P2")
    assert (verdict.chain, verdict.custodian) == ("EU", "EU-IMP")
    key_ids = {h["header"]["key_id"] for h in doc["headers"] if h["header"]["chain"] == "BW"}
    genesis_key = s.net.registry.participant("BW")
    assert genesis_key is not None
    assert key_ids == {genesis_key.key.key_id, new.public.key_id}
    rotate_at = (rotation.header.chain, rotation.header.size - 1, "key.rotate")
    assert rotate_at in kinds(doc)
    # proofs made before the rotation still verify after it
    assert verify_bundle(before).subject == "BW-P3"
    verified(s.store, "BW-P3")
    verified(s.store, "BW-P1")
    # without the rotation record the later BW headers name a key nobody handed over
    message = str(check_bundle(without(doc, "BW", rotate_at[1])).error)
    assert message.startswith(f"step 3 (headers): header BW/{rotation.header.height + 1}: ")
    with pytest.raises(BlockError, match="names key"):
        verify_bundle(without(doc, "BW", rotate_at[1]))
    # the confirmation must be judged against the BW head its block witnessed; that
    # head is also what shows BW's issue block cosigned by EU (the only other
    # authority), so without it the bundle fails already at step 3
    confirm_at = next(i for c, i, k in kinds(doc) if k == "certificate.confirm")
    confirm_block = min(
        (
            h["header"]
            for h in doc["headers"]
            if h["header"]["chain"] == "EU" and h["header"]["size"] > confirm_at
        ),
        key=lambda h: h["height"],
    )
    seen = next(w for w in confirm_block["witness"] if w["chain"] == "BW")
    stripped = copy.deepcopy(doc)
    stripped["headers"] = [
        h
        for h in stripped["headers"]
        if (h["header"]["chain"], h["header"]["height"]) != ("BW", seen["height"])
    ]
    with pytest.raises(NotCosigned, match=r"^step 3 \(headers\): block BW/\d+ is cosigned by 0"):
        verify_bundle(serialize_bundle(stripped))


# ------------------------------------------------------------------ governance


def test_bundle_with_governance_records(open_store: Opener) -> None:
    """KP admits Namibia and replaces Botswana's key: the bundle carries KP's log prefix."""
    s = Story(open_store)
    na = Ed25519Signer.from_seed(sha256(b"kpledger-test: NA"))
    s.seal("BW", s.sc.party("BW", "BW-MINE", "miner"), s.sc.party("BW", "BW-EXP", "exporter"))
    admit = {
        "code": "NA",
        "name": "Namibia",
        "role": "authority",
        "url": "http://127.0.0.1:8200",
        "key": na.public.hex(),
    }
    s.seal("KP", s.sc.governance(Kind.MEMBER_ADMIT, admit))
    s.net.signers["NA"] = na
    s.seal("NA", s.sc.party("NA", "NA-IMP", "importer"))
    replaced = Ed25519Signer.from_seed(sha256(b"kpledger-test: BW replaced"))
    bw_before = s.net.signers["BW"]
    head = s.sc.ledger.state.head("BW")
    assert head is not None
    s.seal(
        "KP",
        s.sc.governance(
            Kind.KEY_REPLACE,
            {
                "code": "BW",
                "key": replaced.public.hex(),
                "from_height": head.height + 1,
                "reason": "key lost",
            },
        ),
    )
    s.net.signers["BW"] = replaced
    s.seal("BW", s.sc.register("BW", "BW-P1", "BW-MINE", 100_000, 13_400_000))
    s.seal("BW", s.sc.transfer("BW", "BW-P1", "BW-EXP"))
    s.seal("BW", s.sc.issue("BW", "BW-2026-1", "NA", "BW-EXP", ["BW-P1"]))
    s.seal("NA", s.sc.confirm("NA", "BW-2026-1", "NA-IMP"))

    s.checkpoint()
    doc = build_bundle(s.store, "BW-P1")
    verdict = verified(s.store, "BW-P1")
    assert (verdict.chain, verdict.custodian) == ("NA", "NA-IMP")
    assert ("KP", 0, "member.admit") in kinds(doc)
    assert ("KP", 1, "key.replace") in kinds(doc)
    # the governance prefix must be complete: without it NA is no participant
    with pytest.raises(SchemaError, match=r"^step 3 \(headers\): record KP/0: .*every KP record"):
        verify_bundle(without(doc, "KP", 0))
    with pytest.raises(SchemaError, match=r"^step 3 \(headers\): record KP/1: "):
        verify_bundle(without(doc, "KP", 1))
    # a header after the replacement signed by the replaced (stolen) key is refused
    # offline, even one that witnesses no KP header at all
    stolen_at = head.height + 1
    forged = copy.deepcopy(doc)
    signed = next(
        h
        for h in forged["headers"]
        if (h["header"]["chain"], h["header"]["height"]) == ("BW", stolen_at)
    )
    signed["header"]["witness"] = [w for w in signed["header"]["witness"] if w["chain"] != "KP"]
    signed["header"]["key_id"] = bw_before.public.key_id
    signed["sig"] = bw_before.sign(Tag.SIG_HEADER, canonical_bytes(signed["header"])).hex()
    with pytest.raises(BlockError, match=rf"header BW/{stolen_at}: .*names key"):
        verify_bundle(serialize_bundle(forged))
    # a bundle pinned to another registry is refused before anything else
    other: Registry = Network.create(("BW", "EU"), ("WDC",), seed=3).registry
    assert check_bundle(serialize_bundle(doc), registry=other).step == "registry"


# ------------------------------------------------------------------ voids


def test_bundle_through_a_voided_certificate(open_store: Opener) -> None:
    s = Story(open_store)
    s.seal("BW", s.sc.party("BW", "BW-MINE", "miner"), s.sc.party("BW", "BW-EXP", "exporter"))
    s.seal("EU", s.sc.party("EU", "EU-IMP", "importer"))
    s.seal("BW", s.sc.register("BW", "BW-P1", "BW-EXP", 100_000, 13_400_000))
    s.seal("BW", s.sc.issue("BW", "BW-2026-1", "EU", "BW-EXP", ["BW-P1"], days=1))
    s.sc.clock += timedelta(days=3)
    heartbeat = s.seal("EU")  # EU's chain moves past the expiry without a confirmation
    s.seal("BW", s.sc.void("BW", "BW-2026-1", heartbeat.header.height))
    s.seal("BW", s.sc.transfer("BW", "BW-P1", "BW-MINE"))

    s.checkpoint()
    doc = build_bundle(s.store, "BW-P1")
    verdict = verified(s.store, "BW-P1")
    assert (verdict.chain, verdict.custodian, verdict.status) == ("BW", "BW-MINE", "active")
    assert [(c.number, c.status) for c in verdict.certificates] == [
        ("BW-2026-1", CertificateStatus.VOIDED)
    ]
    assert ("EU", heartbeat.header.height) in {
        (h["header"]["chain"], h["header"]["height"]) for h in doc["headers"]
    }


# ------------------------------------------------------------------ a long lineage


def long_lineage(open_store: Opener, steps: int = 25) -> tuple[Store, str, int]:
    """``steps`` rounds across BW and EU, each a split and transfer, or a merge with a
    fresh local parcel, then a KP certificate to the other chain and its confirmation."""
    s = Story(open_store)
    for c in ("BW", "EU"):
        s.seal(c, s.sc.party(c, f"{c}-T", "trader"), s.sc.party(c, f"{c}-EXP", "exporter"))
    s.seal("BW", s.sc.register("BW", "BW-P0", "BW-T", 10_000_000, 1_340_000_000))
    current, chain, hops = "BW-P0", "BW", 0
    for i in range(steps):
        other = "EU" if chain == "BW" else "BW"
        parcel = s.sc.ledger.state.parcel(current)
        assert parcel is not None
        if i % 2 == 0:
            kept = f"{chain}-S{i}a"
            cut = [
                (kept, parcel.weight - 1_000, s.sc.cents(parcel.value) - 100_000),
                (f"{chain}-S{i}b", 1_000, 100_000),
            ]
            s.seal(chain, s.sc.split(chain, current, cut))
            s.seal(chain, s.sc.transfer(chain, kept, f"{chain}-EXP"))
        else:
            local, kept = f"{chain}-R{i}", f"{chain}-M{i}"
            s.seal(chain, s.sc.register(chain, local, f"{chain}-T", 5_000, 600_000))
            s.seal(chain, s.sc.merge(chain, [current, local], kept, f"{chain}-EXP"))
        s.seal(chain, s.sc.issue(chain, f"{chain}-C{i}", other, f"{chain}-EXP", [kept]))
        s.seal(other, s.sc.confirm(other, f"{chain}-C{i}", f"{other}-T"))
        current, chain, hops = kept, other, hops + 2
    s.checkpoint()
    return s.store, current, hops


def test_fifty_hop_lineage(open_store: Opener) -> None:
    store, parcel, hops = long_lineage(open_store)
    assert hops == 50
    verdict = verified(store, parcel)
    assert len(verdict.certificates) == 25
    assert len(verdict.sources) == 13  # the mine registration and 12 local parcels merged in
    assert sum(q for _, q in verdict.origin) == verdict.weight
