"""Tests of ledger.rules and ledger.chain: every custody rule of DOMAIN.md and every
determinism rule of DESIGN.md, each broken on purpose.

Every refusal is checked three ways, and each time nothing may be written:

1. ``Scenario.seal`` (the node's own ``propose``) raises the rule's error;
2. the same block, signed and received from a peer, is refused by ``apply_block``;
3. ``apply_record`` itself, on a fresh ``State`` layer, raises before writing.

Every test's ledger is then replayed, block by block, into fresh in-memory ledgers in
two different orders that respect the witnessed dependencies: each block must verify
in full, and both replays must reach exactly the state the test built.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block, Evidence, SignedHeader, WitnessRef, seal
from kpledger.ledger.chain import (
    MemoryLedger,
    apply_block,
    detect_equivocation,
    fork_heights,
    propose,
)
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import (
    AlreadySpent,
    BlockError,
    CertificateInvalid,
    ConfirmationInvalid,
    DependencyMissing,
    DuplicateRecord,
    GovernanceInvalid,
    InactiveParty,
    KeyChangeInvalid,
    MassNotConserved,
    OriginNotCarried,
    ParticipantNotActive,
    RestrictedOrigin,
    RuleViolation,
    SchemaError,
    UnknownReference,
    ValueNotConserved,
    VoidInvalid,
    WitnessInvalid,
    WrongJurisdiction,
)
from kpledger.ledger.merkle import Frontier, MemoryTree, verify_inclusion
from kpledger.ledger.records import Composition, Kind, Record, make_record
from kpledger.ledger.registry import Params
from kpledger.ledger.rules import (
    Context,
    allocate_origin,
    apply_record,
    certificate_origin,
    witnessed_median_time,
)
from kpledger.ledger.state import CertificateStatus, ParcelStatus, State, key_at

DAY = 86_400

# --------------------------------------------------------------------------- replay


def schedule(blocks: Mapping[str, Sequence[Block]], prefer: Sequence[str]) -> list[Block]:
    """An order of all ``blocks`` that applies each block only after everything it
    witnesses, taking at every step the first ready chain in ``prefer``."""
    pos = dict.fromkeys(blocks, 0)
    done: dict[str, int] = {}
    out: list[Block] = []
    total = sum(len(v) for v in blocks.values())
    while len(out) < total:
        for chain in prefer:
            if pos.get(chain, 0) >= len(blocks.get(chain, ())):
                continue
            block = blocks[chain][pos[chain]]
            if all(done.get(w.chain, 0) >= w.height for w in block.header.witness):
                out.append(block)
                pos[chain] += 1
                done[chain] = block.header.height
                break
        else:  # pragma: no cover - would mean a block witnesses a block sealed after it
            raise AssertionError("no block is ready: the witness graph has a cycle")
    return out


def replay(sc: Scenario, order: Iterable[Block]) -> MemoryLedger:
    ledger = MemoryLedger(sc.net.registry)
    for block in order:
        ledger.append(block)
    return ledger


def comparable(state: State) -> dict[str, Any]:
    """Everything a replay must reproduce, independent of the order chains arrived in."""
    return {
        "snapshot": state.snapshot(),
        "records": sorted(
            (ref.chain, ref.index, ref.hash, height, rec.raw) for ref, height, rec in state.records
        ),
        "events": sorted((e.parcel, e.ref.chain, e.ref.index, e.kind) for e in state.events),
        "edges": sorted((e.parent, e.child, e.ref.chain, e.ref.index) for e in state.edges),
        "record_refs": dict(sorted(state.record_refs.items())),
        "confirmations": dict(sorted(state.confirmations.items())),
        "members": sorted((m.code, m.kp_size, m.role, m.active) for m in state.members),
        "keys": sorted((k.chain, k.from_height, k.kp_size, k.key.raw) for k in state.keys),
        "headers": {k: h.hash for k, h in sorted(state.headers.items())},
        "signatures": dict(sorted(state.signatures.items())),
        "frontiers": {c: (f.size, f.root()) for c, f in sorted(state.frontiers.items())},
    }


def assert_replays(sc: Scenario) -> list[list[Block]]:
    """Replay the scenario's blocks in two dependency-respecting orders."""
    chains = sorted(sc.ledger.blocks)
    orders = [schedule(sc.ledger.blocks, chains), schedule(sc.ledger.blocks, chains[::-1])]
    want = comparable(sc.ledger.state)
    for order in orders:
        assert comparable(replay(sc, order).state) == want
    return orders


# --------------------------------------------------------------------------- refusals


def fingerprint(sc: Scenario) -> tuple[Any, ...]:
    s = sc.ledger.state
    return (
        comparable(s),
        len(s.records),
        len(s.events),
        len(s.edges),
        {c: len(b) for c, b in sc.ledger.blocks.items()},
    )


def layer_fingerprint(layer: State) -> tuple[Any, ...]:
    return (
        dict(layer.parcels),
        dict(layer.parties),
        dict(layer.certificates),
        dict(layer.record_refs),
        dict(layer.restrictions),
        list(layer.members),
        list(layer.keys),
        dict(layer.confirmations),
        list(layer.edges),
        list(layer.events),
        list(layer.records),
        dict(layer.heads),
        dict(layer.headers),
    )


def context(sc: Scenario, chain: str, time: str) -> Context:
    state = sc.ledger.state
    prev = state.head(chain)
    witnessed = {
        c: h for c in sc.net.registry.chains if c != chain and (h := state.head(c)) is not None
    }
    return Context(sc.net.registry, chain, 1 if prev is None else prev.height + 1, time, witnessed)


def forge(sc: Scenario, chain: str, records: Sequence[Record]) -> Block:
    """The block ``chain``'s authority would sign with these records, refused or not."""
    state = sc.ledger.state
    prev = state.head(chain)
    time = sc.tick()
    if prev is not None and time < prev.time:
        time = prev.time
    witness = [
        WitnessRef(h.chain, h.height, h.hash)
        for c in sc.net.registry.chains
        if c != chain and (h := state.head(c)) is not None
    ]
    block, _ = seal(
        signer=sc.net.signer(chain),
        network=sc.net.network_id,
        chain=chain,
        prev=prev,
        frontier=state.frontier(chain),
        records=records,
        time=time,
        witness=witness,
    )
    return block


def refuse(
    sc: Scenario,
    chain: str,
    *records: Record,
    error: type[RuleViolation],
    field: str,
    match: str | None = None,
    as_block: bool = True,
) -> RuleViolation:
    """Check the last of ``records`` is refused with ``error`` at ``field``, three ways,
    and that nothing at all was written."""
    before = fingerprint(sc)
    # 1. the node's own block production
    with pytest.raises(error, match=match) as info:
        sc.seal(chain, *records)
    exc = info.value
    assert type(exc) is error, repr(exc)
    assert exc.field == field, str(exc)
    assert exc.rule == error.rule
    assert str(exc) == f"{field}: rule {error.rule}: {exc.reason}"
    assert fingerprint(sc) == before
    # 2. the same block received from a peer
    if as_block:
        block = forge(sc, chain, records)
        with pytest.raises(error, match=match) as info2:
            sc.ledger.append(block)
        last = len(records) - 1
        assert type(info2.value) is error
        assert info2.value.field == f"records[{last}].{field}"
        assert f"record {records[-1].id}: " in str(info2.value)
        assert fingerprint(sc) == before
    # 3. the rule function on a fresh layer: it raises before writing anything
    state = sc.ledger.state
    ctx = context(sc, chain, sc.now())
    layer = State(base=state)
    start = state.frontier(chain).size
    for i, record in enumerate(records[:-1]):
        apply_record(layer, record, start + i, ctx)
    mark = layer_fingerprint(layer)
    with pytest.raises(error):
        apply_record(layer, records[-1], start + len(records) - 1, ctx)
    assert layer_fingerprint(layer) == mark
    assert fingerprint(sc) == before
    return exc


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def sc() -> Iterator[Scenario]:
    """BW mines two parcels, RU one; EU, AE and RU have licensed parties."""
    sc = Scenario(Network.create())
    sc.seal(
        "BW",
        sc.party("BW", "BW-MINE", "miner"),
        sc.party("BW", "BW-EXP", "exporter"),
        sc.register("BW", "BW-P1", "BW-MINE", 10_000, 1_340_000),
        sc.register("BW", "BW-P2", "BW-MINE", 5_000, 670_000),
    )
    sc.seal("EU", sc.party("EU", "EU-IMP", "importer"), sc.party("EU", "EU-B", "trader"))
    sc.seal("AE", sc.party("AE", "AE-HUB", "trader"))
    sc.seal(
        "RU",
        sc.party("RU", "RU-MINE", "miner"),
        sc.register("RU", "RU-P1", "RU-MINE", 5_000, 475_000, mine="Jubilee"),
    )
    yield sc
    assert_replays(sc)


def parcel(sc: Scenario, pid: str) -> Any:
    found = sc.ledger.state.parcel(pid)
    assert found is not None, pid
    return found


def cert(sc: Scenario, number: str) -> Any:
    found = sc.ledger.state.certificate(number)
    assert found is not None, number
    return found


def ship(
    sc: Scenario, src: str, number: str, dest: str, exporter: str, parcels: list[str], to: str
) -> None:
    sc.seal(src, sc.issue(src, number, dest, exporter, parcels))
    sc.seal(dest, sc.confirm(dest, number, to))


def issue_body(sc: Scenario, *args: Any, **kw: Any) -> dict[str, Any]:
    """A correct certificate body, to be spoiled by the test."""
    return sc.clear_body(sc.issue(*args, **kw))


def revoke(sc: Scenario, chain: str, party: str) -> Record:
    return sc.record(chain, Kind.PARTY_REVOKE, {"party": party, "reason": "licence withdrawn"})


def lift(sc: Scenario, chain: str, origin: str) -> Record:
    return sc.record(chain, Kind.POLICY_LIFT_ORIGIN, {"origin": origin, "reason": "lifted"})


def signer(label: str) -> Ed25519Signer:
    return Ed25519Signer.from_seed(label.encode().ljust(32, b"#"))


# =========================================================================== rule 1


def test_rule1_acting_on_a_parcel_of_another_jurisdiction(sc: Scenario) -> None:
    exc = refuse(
        sc,
        "AE",
        sc.transfer("AE", "BW-P1", "AE-HUB"),
        error=WrongJurisdiction,
        field="body.parcel",
        match="under BW, not AE",
    )
    assert exc.rule == "1"
    refuse(
        sc,
        "AE",
        sc.split("AE", "BW-P1", [("AE-X1", 5_000, 670_000), ("AE-X2", 5_000, 670_000)]),
        error=WrongJurisdiction,
        field="body.parcel",
    )
    refuse(
        sc,
        "AE",
        sc.merge("AE", ["BW-P1", "BW-P2"], "AE-M1", "AE-HUB"),
        error=WrongJurisdiction,
        field="body.parents[0]",
    )
    refuse(
        sc,
        "AE",
        sc.issue("AE", "AE-C1", "EU", "AE-HUB", ["BW-P1"]),
        error=WrongJurisdiction,
        field="body.lines[0].parcel",
    )


def test_rule1_unknown_parcel(sc: Scenario) -> None:
    refuse(
        sc,
        "BW",
        sc.transfer("BW", "BW-NONE", "BW-EXP"),
        error=UnknownReference,
        field="body.parcel",
    )


def test_rule1_revoked_party_cannot_be_custodian(sc: Scenario) -> None:
    sc.seal("BW", revoke(sc, "BW", "BW-EXP"))
    assert sc.ledger.state.party("BW-EXP").active is False  # type: ignore[union-attr]
    refuse(
        sc,
        "BW",
        sc.transfer("BW", "BW-P1", "BW-EXP"),
        error=InactiveParty,
        field="body.to",
        match="revoked",
    )
    refuse(
        sc,
        "BW",
        sc.register("BW", "BW-P9", "BW-EXP", 100, 100),
        error=InactiveParty,
        field="body.custodian",
    )
    split = sc.record(
        "BW",
        Kind.PARCEL_SPLIT,
        {
            "parcel": "BW-P1",
            "children": [
                {"parcel": "BW-S1", "weight": 4_000, "value": 1},
                {"parcel": "BW-S2", "weight": 6_000, "value": 1_339_999, "custodian": "BW-EXP"},
            ],
        },
    )
    refuse(sc, "BW", split, error=InactiveParty, field="body.children[1].custodian")
    refuse(
        sc,
        "BW",
        sc.merge("BW", ["BW-P1", "BW-P2"], "BW-M1", "BW-EXP"),
        error=InactiveParty,
        field="body.custodian",
    )
    refuse(sc, "BW", revoke(sc, "BW", "BW-EXP"), error=InactiveParty, field="body.party")
    # nor be the exporter on a certificate
    refuse(
        sc,
        "BW",
        sc.issue("BW", "BW-C1", "EU", "BW-EXP", ["BW-P1"]),
        error=InactiveParty,
        field="body.exporter",
    )


def test_rule1_custodian_must_be_a_party_of_this_jurisdiction(sc: Scenario) -> None:
    refuse(
        sc,
        "BW",
        sc.transfer("BW", "BW-P1", "EU-IMP"),
        error=InactiveParty,
        field="body.to",
        match="not a party registered by BW",
    )
    refuse(
        sc,
        "BW",
        sc.transfer("BW", "BW-P1", "BW-NOBODY"),
        error=InactiveParty,
        field="body.to",
    )
    sc.seal("BW", sc.transfer("BW", "BW-P1", "BW-EXP", value=1_400_000))
    assert parcel(sc, "BW-P1").custodian == "BW-EXP"
    assert sc.cents(parcel(sc, "BW-P1").value) == 1_400_000


def test_rule1_party_ids_carry_the_chain_prefix(sc: Scenario) -> None:
    refuse(sc, "BW", sc.party("BW", "EU-FAKE"), error=WrongJurisdiction, field="body.party")


# =========================================================================== rule 2


def test_rule2_split_twice(sc: Scenario) -> None:
    sc.seal("BW", sc.split("BW", "BW-P1", [("BW-A", 4_000, 1), ("BW-B", 6_000, 1_339_999)]))
    exc = refuse(
        sc,
        "BW",
        sc.split("BW", "BW-P1", [("BW-C", 4_000, 1), ("BW-D", 6_000, 1_339_999)]),
        error=AlreadySpent,
        field="body.parcel",
        match="is spent",
    )
    assert exc.rule == "2"
    # rule 8: the spent parent is kept, never deleted
    assert parcel(sc, "BW-P1").status is ParcelStatus.SPENT


def test_rule2_split_then_merge(sc: Scenario) -> None:
    sc.seal("BW", sc.split("BW", "BW-P1", [("BW-A", 4_000, 1), ("BW-B", 6_000, 1_339_999)]))
    refuse(
        sc,
        "BW",
        sc.merge("BW", ["BW-P1", "BW-P2"], "BW-M1", "BW-MINE", weight=15_000, value=2_010_000),
        error=AlreadySpent,
        field="body.parents[0]",
    )
    refuse(
        sc,
        "BW",
        sc.merge("BW", ["BW-P2", "BW-P1"], "BW-M1", "BW-MINE", weight=15_000, value=2_010_000),
        error=AlreadySpent,
        field="body.parents[1]",
    )


def test_rule2_export_then_transfer(sc: Scenario) -> None:
    sc.seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P2"]))
    assert parcel(sc, "BW-P2").status is ParcelStatus.IN_TRANSIT
    assert parcel(sc, "BW-P2").custodian is None
    refuse(
        sc,
        "BW",
        sc.transfer("BW", "BW-P2", "BW-EXP"),
        error=AlreadySpent,
        field="body.parcel",
        match="in_transit",
    )
    refuse(
        sc,
        "BW",
        sc.issue("BW", "BW-C2", "AE", "BW-MINE", ["BW-P1", "BW-P2"]),
        error=AlreadySpent,
        field="body.lines[1].parcel",
    )


def test_rule2_double_spend_inside_one_block(sc: Scenario) -> None:
    first = sc.split("BW", "BW-P1", [("BW-A", 4_000, 1), ("BW-B", 6_000, 1_339_999)])
    second = sc.merge("BW", ["BW-P1", "BW-P2"], "BW-M1", "BW-MINE", weight=15_000, value=2_010_000)
    refuse(sc, "BW", first, second, error=AlreadySpent, field="body.parents[0]")
    # the refused block wrote nothing: the first record can still be sealed
    sc.seal("BW", first)


# =========================================================================== rule 3


def test_rule3_split_mass_off_by_one_hundredth(sc: Scenario) -> None:
    for second in (5_999, 6_001):
        exc = refuse(
            sc,
            "BW",
            sc.split("BW", "BW-P1", [("BW-A", 4_000, 1), ("BW-B", second, 1_339_999)]),
            error=MassNotConserved,
            field="body.children",
            match="10000",
        )
        assert exc.rule == "3"


def disclosure_refused(
    sc: Scenario, record: Record, *, error: type[RuleViolation], field: str, match: str
) -> None:
    """A disclosure rule: the writer refuses ``record`` (values known), but a block
    holding it is valid on every node: validity never depends on what a node may see."""
    with pytest.raises(error, match=match) as info:
        sc.check_disclosed(record)
    assert type(info.value) is error
    assert (info.value.field, info.value.rule) == (field, error.rule)
    sc.seal(record.chain, record)  # the public rules accept it
    assert sc.ledger.state.parcel("BW-P1") is not None


def test_rule3_split_value_off_by_one_cent(sc: Scenario) -> None:
    for second in (1_339_998, 1_340_000):
        with pytest.raises(ValueNotConserved, match="the parent 1340000") as info:
            sc.check_disclosed(
                sc.split("BW", "BW-P1", [("BW-A", 4_000, 1), ("BW-B", 6_000, second)])
            )
        assert (info.value.field, info.value.rule) == ("body.children", "3")
    sc.check_disclosed(sc.split("BW", "BW-P1", [("BW-A", 4_000, 1), ("BW-B", 6_000, 1_339_999)]))
    disclosure_refused(
        sc,
        sc.split("BW", "BW-P1", [("BW-A", 4_000, 1), ("BW-B", 6_000, 1)]),
        error=ValueNotConserved,
        field="body.children",
        match="the parent 1340000",
    )


def test_rule3_merge_weight_and_value_mismatch(sc: Scenario) -> None:
    refuse(
        sc,
        "BW",
        sc.merge("BW", ["BW-P1", "BW-P2"], "BW-M1", "BW-MINE", weight=15_001),
        error=MassNotConserved,
        field="body.weight",
    )
    refuse(
        sc,
        "BW",
        sc.merge("BW", ["BW-P1", "BW-P2"], "BW-M1", "BW-MINE", weight=14_999),
        error=MassNotConserved,
        field="body.weight",
    )
    disclosure_refused(
        sc,
        sc.merge("BW", ["BW-P1", "BW-P2"], "BW-M1", "BW-MINE", value=2_010_001),
        error=ValueNotConserved,
        field="body.value",
        match="parents are worth 2010000 cents, the child declares 2010001",
    )


def test_rule3_exact_split_and_merge(sc: Scenario) -> None:
    sc.seal(
        "BW",
        sc.split(
            "BW", "BW-P1", [("BW-A", 1, 0), ("BW-B", 3_333, 446_666), ("BW-C", 6_666, 893_334)]
        ),
    )
    kids = [parcel(sc, p) for p in ("BW-A", "BW-B", "BW-C")]
    assert sum(k.weight for k in kids) == 10_000
    assert sum(sc.cents(k.value) for k in kids) == 1_340_000
    assert all(k.custodian == "BW-MINE" and k.hs == "7102.31" for k in kids)
    sc.seal("BW", sc.merge("BW", ["BW-A", "BW-P2"], "BW-M1", "BW-EXP"))
    merged = parcel(sc, "BW-M1")
    assert (merged.weight, sc.cents(merged.value), merged.custodian) == (5_001, 670_000, "BW-EXP")
    edges = sorted((e.parent, e.child) for e in sc.ledger.state.edges)
    assert edges == [
        ("BW-A", "BW-M1"),
        ("BW-P1", "BW-A"),
        ("BW-P1", "BW-B"),
        ("BW-P1", "BW-C"),
        ("BW-P2", "BW-M1"),
    ]


# =========================================================================== rule 4


def test_rule4_origin_carried_through_merge_and_split(sc: Scenario) -> None:
    ship(sc, "RU", "RU-C1", "AE", "RU-MINE", ["RU-P1"], "AE-HUB")
    ship(sc, "BW", "BW-C1", "AE", "BW-MINE", ["BW-P1"], "AE-HUB")
    assert parcel(sc, "RU-P1").chain == "AE"
    sc.seal("AE", sc.merge("AE", ["RU-P1", "BW-P1"], "AE-M1", "AE-HUB"))
    assert parcel(sc, "AE-M1").origin == (("BW", 10_000), ("RU", 5_000))
    sc.seal("AE", sc.split("AE", "AE-M1", [("AE-A", 1, 0), ("AE-B", 14_999, 1_815_000)]))
    a, b = parcel(sc, "AE-A"), parcel(sc, "AE-B")
    assert a.origin == (("BW", 1), ("RU", 0))
    assert b.origin == (("BW", 9_999), ("RU", 5_000))
    assert certificate_origin([a.origin]) == "mixed"


def test_rule4_merge_of_different_hs_codes(sc: Scenario) -> None:
    sc.seal("BW", sc.register("BW", "BW-IND", "BW-MINE", 100, 100, hs="7102.21"))
    exc = refuse(
        sc,
        "BW",
        sc.merge("BW", ["BW-P1", "BW-IND"], "BW-M1", "BW-MINE"),
        error=OriginNotCarried,
        field="body.parents",
    )
    assert exc.rule == "4"


def test_rule4_certificate_line_origin_differs_from_the_parcel(sc: Scenario) -> None:
    body = issue_body(sc, "BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"])
    body["lines"][0]["origin"] = {"ZA": 10_000}
    body["origin"] = "ZA"
    refuse(
        sc,
        "BW",
        sc.record("BW", Kind.CERTIFICATE_ISSUE, body),
        error=OriginNotCarried,
        field="body.lines[0].origin",
    )
    body["lines"][0]["origin"] = {"BW": 10_000, "RU": 0}
    body["origin"] = "mixed"
    refuse(
        sc,
        "BW",
        sc.record("BW", Kind.CERTIFICATE_ISSUE, body),
        error=OriginNotCarried,
        field="body.lines[0].origin",
    )


# =========================================================================== rule 5


def test_rule5_certificate_issue_happy_path(sc: Scenario) -> None:
    sc.seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1", "BW-P2"]))
    c = cert(sc, "BW-C1")
    assert c.status is CertificateStatus.ISSUED
    assert (c.issuer, c.destination, c.carats, sc.cents(c.value), c.origin) == (
        "BW",
        "EU",
        15_000,
        2_010_000,
        "BW",
    )
    assert c.parcels == ("BW-P1", "BW-P2")
    assert parcel(sc, "BW-P1").certificate == "BW-C1"


def test_rule5_destination_must_be_an_active_other_participant(sc: Scenario) -> None:
    exc = refuse(
        sc,
        "BW",
        sc.issue("BW", "BW-C1", "BW", "BW-MINE", ["BW-P1"]),
        error=CertificateInvalid,
        field="body.destination",
        match="another participant",
    )
    assert exc.rule == "5"
    for dest in ("ZZ", "WDC", "KP"):
        refuse(
            sc,
            "BW",
            sc.issue("BW", "BW-C1", dest, "BW-MINE", ["BW-P1"]),
            error=CertificateInvalid,
            field="body.destination",
            match="not an active participant",
        )


def test_rule5_hs_codes_must_be_rough_at_schema_level(sc: Scenario) -> None:
    body = issue_body(sc, "BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"])
    for bad in ("7102.29", "7102.39", "7103.10"):
        body["lines"][0]["hs"] = bad
        with pytest.raises(SchemaError) as info:
            sc.record("BW", Kind.CERTIFICATE_ISSUE, body)
        assert info.value.field == "body.lines[0].hs"
    with pytest.raises(SchemaError) as info:
        sc.register("BW", "BW-P9", "BW-MINE", 100, 100, hs="7102.99")
    assert info.value.field == "body.hs"


def test_rule5_line_hs_must_match_the_parcel(sc: Scenario) -> None:
    body = issue_body(sc, "BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"])
    body["lines"][0]["hs"] = "7102.10"
    refuse(
        sc,
        "BW",
        sc.record("BW", Kind.CERTIFICATE_ISSUE, body),
        error=CertificateInvalid,
        field="body.lines[0].hs",
    )


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"carats": 15_001}, "body.carats"),
        ({"carats": 14_999}, "body.carats"),
        ({"parcels": 3}, "body.parcels"),
        ({"parcels": 1}, "body.parcels"),
    ],
)
def test_rule5_lines_must_sum_to_the_totals(
    sc: Scenario, override: dict[str, int], field: str
) -> None:
    body = issue_body(sc, "BW", "BW-C1", "EU", "BW-MINE", ["BW-P1", "BW-P2"])
    body.update(override)
    refuse(
        sc,
        "BW",
        sc.record("BW", Kind.CERTIFICATE_ISSUE, body),
        error=CertificateInvalid,
        field=field,
    )


def test_rule5_certificate_value_is_the_sum_of_its_lines_a_disclosure_rule(sc: Scenario) -> None:
    body = issue_body(sc, "BW", "BW-C1", "EU", "BW-MINE", ["BW-P1", "BW-P2"])
    body["value"] = 2_010_001
    disclosure_refused(
        sc,
        sc.record("BW", Kind.CERTIFICATE_ISSUE, body),
        error=CertificateInvalid,
        field="body.value",
        match="lines sum to 2010000 cents, the total says 2010001",
    )


def test_rule5_line_weight_must_be_the_parcel_weight(sc: Scenario) -> None:
    body = issue_body(sc, "BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"])
    body["lines"][0]["weight"] = 9_999
    body["carats"] = 9_999
    refuse(
        sc,
        "BW",
        sc.record("BW", Kind.CERTIFICATE_ISSUE, body),
        error=CertificateInvalid,
        field="body.lines[0].weight",
    )


def test_rule5_exporter_must_hold_every_parcel(sc: Scenario) -> None:
    refuse(
        sc,
        "BW",
        sc.issue("BW", "BW-C1", "EU", "BW-EXP", ["BW-P1"]),
        error=CertificateInvalid,
        field="body.lines[0].parcel",
        match="not the exporter",
    )


def test_rule5_dates(sc: Scenario) -> None:
    today = sc.clock.date()
    refuse(
        sc,
        "BW",
        sc.issue(
            "BW",
            "BW-C1",
            "EU",
            "BW-MINE",
            ["BW-P1"],
            expires=(today - timedelta(days=1)).isoformat(),
        ),
        error=CertificateInvalid,
        field="body.expires",
        match="expires before it is issued",
    )
    refuse(
        sc,
        "BW",
        sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"], days=61),
        error=CertificateInvalid,
        field="body.expires",
        match="more than 60 days",
    )
    refuse(
        sc,
        "BW",
        sc.issue(
            "BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"], issued=(today + timedelta(1)).isoformat()
        ),
        error=CertificateInvalid,
        field="body.issued",
    )
    # same-day expiry and exactly the maximum validity are fine
    sc.seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"], days=0))
    sc.seal("BW", sc.issue("BW", "BW-C2", "EU", "BW-MINE", ["BW-P2"], days=60))


def test_rule5_certificate_numbers(sc: Scenario) -> None:
    refuse(
        sc,
        "BW",
        sc.issue("BW", "EU-C1", "EU", "BW-MINE", ["BW-P1"]),
        error=CertificateInvalid,
        field="body.number",
        match="start with BW-",
    )
    sc.seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"]))
    refuse(
        sc,
        "BW",
        sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P2"]),
        error=DuplicateRecord,
        field="body.number",
        match="already used",
    )


def test_rule5_origin_field(sc: Scenario) -> None:
    refuse(
        sc,
        "BW",
        sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"], origin="mixed"),
        error=CertificateInvalid,
        field="body.origin",
        match="'BW'",
    )
    ship(sc, "RU", "RU-C1", "AE", "RU-MINE", ["RU-P1"], "AE-HUB")
    ship(sc, "BW", "BW-C1", "AE", "BW-MINE", ["BW-P1"], "AE-HUB")
    for origin in ("BW", "RU", "AE"):
        refuse(
            sc,
            "AE",
            sc.issue("AE", "AE-C1", "EU", "AE-HUB", ["RU-P1", "BW-P1"], origin=origin),
            error=CertificateInvalid,
            field="body.origin",
            match="'mixed'",
        )
    sc.seal("AE", sc.issue("AE", "AE-C1", "EU", "AE-HUB", ["RU-P1", "BW-P1"]))
    assert cert(sc, "AE-C1").origin == "mixed"


# =========================================================================== rule 6


@pytest.fixture
def issued(sc: Scenario) -> Scenario:
    """BW has issued BW-C1 to EU for BW-P1 (100 ct), valid 30 days."""
    sc.seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"]))
    return sc


def test_rule6_confirmation_happy_path(issued: Scenario) -> None:
    sc = issued
    sc.seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP"))
    c = cert(sc, "BW-C1")
    assert c.status is CertificateStatus.CONFIRMED
    assert c.received == 10_000
    assert c.closed_ref is not None
    assert c.closed_ref.chain == "EU"
    p = parcel(sc, "BW-P1")
    assert (p.chain, p.custodian, p.status, p.certificate) == (
        "EU",
        "EU-IMP",
        ParcelStatus.ACTIVE,
        None,
    )
    # the importer now holds it, and the exporter no longer does
    sc.seal("EU", sc.transfer("EU", "BW-P1", "EU-B"))
    refuse(
        sc,
        "BW",
        sc.transfer("BW", "BW-P1", "BW-EXP"),
        error=WrongJurisdiction,
        field="body.parcel",
    )


def test_rule6_only_the_destination_confirms(issued: Scenario) -> None:
    sc = issued
    exc = refuse(
        sc,
        "AE",
        sc.confirm("AE", "BW-C1", "AE-HUB"),
        error=ConfirmationInvalid,
        field="body.number",
        match="is for EU, not AE",
    )
    assert exc.rule == "6"


def test_rule6_confirm_once(issued: Scenario) -> None:
    sc = issued
    again = sc.confirm("EU", "BW-C1", "EU-IMP")
    sc.seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP"))
    refuse(
        sc, "EU", again, error=ConfirmationInvalid, field="body.number", match="already confirmed"
    )


def test_rule6_confirm_before_expiry(issued: Scenario) -> None:
    sc = issued
    expires = cert(sc, "BW-C1").expires
    sc.clock = sc.clock.replace(day=1, month=4, hour=23)  # the expiry day itself
    assert sc.now()[:10] == expires
    on_time = sc.confirm("EU", "BW-C1", "EU-IMP")
    sc.tick(DAY)
    refuse(sc, "EU", on_time, error=ConfirmationInvalid, field="body.number", match="expired")


def test_rule6_confirm_on_the_expiry_day(issued: Scenario) -> None:
    sc = issued
    sc.tick(30 * DAY)
    assert sc.now()[:10] == cert(sc, "BW-C1").expires
    sc.seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP"))


@pytest.mark.parametrize(
    ("key", "value"), [("hash", "00" * 32), ("index", 1), ("index", 5), ("chain", "AE")]
)
def test_rule6_ref_must_name_the_issue_record(issued: Scenario, key: str, value: Any) -> None:
    sc = issued
    body = sc.confirm("EU", "BW-C1", "EU-IMP").body_json
    assert body["ref"]["index"] == 4
    body["ref"][key] = value
    refuse(
        sc,
        "EU",
        sc.record("EU", Kind.CERTIFICATE_CONFIRM, body),
        error=ConfirmationInvalid,
        field="body.ref",
        match="issue record",
    )


def test_rule6_unknown_certificate(issued: Scenario) -> None:
    sc = issued
    body = sc.confirm("EU", "BW-C1", "EU-IMP").body_json
    body["number"] = "BW-C9"
    refuse(
        sc,
        "EU",
        sc.record("EU", Kind.CERTIFICATE_CONFIRM, body),
        error=UnknownReference,
        field="body.number",
    )


def test_rule6_received_parcels_must_be_the_certified_ones(issued: Scenario) -> None:
    sc = issued
    body = sc.confirm("EU", "BW-C1", "EU-IMP").body_json
    body["received"] = [{"parcel": "BW-P2", "weight": 10_000}]
    refuse(
        sc,
        "EU",
        sc.record("EU", Kind.CERTIFICATE_CONFIRM, body),
        error=ConfirmationInvalid,
        field="body.received",
    )
    body["received"] = [{"parcel": "BW-P1", "weight": 10_000}, {"parcel": "BW-P2", "weight": 1}]
    refuse(
        sc,
        "EU",
        sc.record("EU", Kind.CERTIFICATE_CONFIRM, body),
        error=ConfirmationInvalid,
        field="body.received",
    )


def test_rule6_custodian_must_be_an_importer_party(issued: Scenario) -> None:
    sc = issued
    refuse(
        sc,
        "EU",
        sc.confirm("EU", "BW-C1", "BW-MINE"),
        error=InactiveParty,
        field="body.custodian",
    )


def test_rule6_confirmation_needs_a_block_that_witnesses_the_issue(sc: Scenario) -> None:
    state = sc.ledger.state
    eu_before = state.head("EU")
    assert eu_before is not None
    bw_before = state.head("BW")
    assert bw_before is not None
    assert [w.chain for w in eu_before.witness] == ["BW"]
    sc.seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"]))
    confirm = sc.confirm("EU", "BW-C1", "EU-IMP")
    # the rule on its own: a view of BW that stops before the issue record
    ctx = Context(sc.net.registry, "EU", eu_before.height + 1, sc.now(), {"BW": bw_before})
    layer = State(base=state)
    with pytest.raises(ConfirmationInvalid, match="does not witness BW's issue record") as info:
        apply_record(layer, confirm, state.frontier("EU").size, ctx)
    assert info.value.field == "body.ref"
    assert layer_fingerprint(layer) == layer_fingerprint(State())
    with pytest.raises(ConfirmationInvalid):
        apply_record(layer, confirm, 0, dataclasses.replace(ctx, witness={}))
    # a whole block from EU that witnesses only what EU had seen before the issue
    before = fingerprint(sc)
    block, _ = seal(
        signer=sc.net.signer("EU"),
        network=sc.net.network_id,
        chain="EU",
        prev=eu_before,
        frontier=state.frontier("EU"),
        records=[confirm],
        time=sc.tick(),
        witness=eu_before.witness,
    )
    with pytest.raises(ConfirmationInvalid) as info:
        sc.ledger.append(block)
    assert info.value.field == "records[0].body.ref"
    assert fingerprint(sc) == before
    # EU's own node would leave it out of a block proposed on that view
    view = State(base=state)
    view.heads["BW"] = bw_before
    proposal = propose(view, sc.net.registry, sc.net.signer("EU"), "EU", [confirm], sc.tick())
    assert proposal.block.records == ()
    assert [type(e) for _, e in proposal.rejected] == [ConfirmationInvalid]
    # a block that witnesses the issue confirms
    sc.seal("EU", confirm)
    assert cert(sc, "BW-C1").status is CertificateStatus.CONFIRMED


@pytest.mark.parametrize(
    ("received", "status"),
    [
        (10_000, CertificateStatus.CONFIRMED),
        (9_950, CertificateStatus.CONFIRMED),  # -0.50 %: on the tolerance
        (10_050, CertificateStatus.CONFIRMED),  # +0.50 %
        (9_949, CertificateStatus.DISCREPANCY),
        (10_051, CertificateStatus.DISCREPANCY),
        (1, CertificateStatus.DISCREPANCY),
    ],
)
def test_rule6_weight_tolerance(issued: Scenario, received: int, status: CertificateStatus) -> None:
    sc = issued
    assert sc.net.registry.params.tolerance_bp == 50
    sc.seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP", {"BW-P1": received}))
    c = cert(sc, "BW-C1")
    assert c.status is status
    assert c.received == received
    p = parcel(sc, "BW-P1")
    assert p.chain == "EU"
    assert p.weight == 10_000  # the declared weight stays on record
    if status is CertificateStatus.DISCREPANCY:
        assert (p.status, p.certificate) == (ParcelStatus.HELD, "BW-C1")
        refuse(
            sc, "EU", sc.transfer("EU", "BW-P1", "EU-B"), error=AlreadySpent, field="body.parcel"
        )
    else:
        assert (p.status, p.certificate) == (ParcelStatus.ACTIVE, None)


def test_rule6_discrepancy_on_one_line_of_many(sc: Scenario) -> None:
    sc.seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1", "BW-P2"]))
    # the total is within 0.5 % but one parcel lost 2 %
    sc.seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP", {"BW-P1": 10_050, "BW-P2": 4_900}))
    assert cert(sc, "BW-C1").status is CertificateStatus.DISCREPANCY
    assert {parcel(sc, p).status for p in ("BW-P1", "BW-P2")} == {ParcelStatus.HELD}


def test_rule6_tolerance_comes_from_the_registry() -> None:
    sc = Scenario(Network.create(params=Params(tolerance_bp=0)))
    sc.seal("BW", sc.party("BW", "BW-MINE"), sc.register("BW", "BW-P1", "BW-MINE", 10_000, 1))
    sc.seal("EU", sc.party("EU", "EU-IMP"))
    sc.seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"]))
    sc.seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP", {"BW-P1": 10_001}))
    assert cert(sc, "BW-C1").status is CertificateStatus.DISCREPANCY
    assert_replays(sc)


# =========================================================================== rule 7


def _past_expiry(sc: Scenario) -> int:
    """Move time past BW-C1's expiry and seal a heartbeat on every other authority's
    chain, EU's last (time moves on everywhere); returns EU's new height."""
    sc.tick(31 * DAY)
    for chain in sc.net.registry.authorities:
        if chain not in ("BW", "EU"):
            sc.seal(chain)
    sc.seal("EU")
    head = sc.ledger.state.head("EU")
    assert head is not None
    assert head.time[:10] > cert(sc, "BW-C1").expires
    return head.height


def test_rule7_void_after_an_importer_heartbeat_past_expiry(issued: Scenario) -> None:
    sc = issued
    height = _past_expiry(sc)
    sc.seal("BW", sc.void("BW", "BW-C1", height))
    c = cert(sc, "BW-C1")
    assert c.status is CertificateStatus.VOIDED
    assert c.closed_ref is not None
    assert c.closed_ref.chain == "BW"
    p = parcel(sc, "BW-P1")
    assert (p.chain, p.custodian, p.status, p.certificate) == (
        "BW",
        "BW-MINE",
        ParcelStatus.ACTIVE,
        None,
    )
    # the parcels returned: they can be exported again; the voided certificate stays voided
    sc.seal("BW", sc.issue("BW", "BW-C2", "AE", "BW-MINE", ["BW-P1"]))
    refuse(
        sc,
        "BW",
        sc.void("BW", "BW-C1", height),
        error=VoidInvalid,
        field="body.number",
        match="already voided",
    )
    # and the importer can no longer confirm it
    body = sc.confirm("EU", "BW-C1", "EU-IMP").body_json
    refuse(
        sc,
        "EU",
        sc.record("EU", Kind.CERTIFICATE_CONFIRM, body),
        error=ConfirmationInvalid,
        field="body.number",
    )


def test_rule7_void_on_the_importers_clock_alone_refused(issued: Scenario) -> None:
    """Regression (issue 9, item 2): an importer's chain dated past expiry (its clock
    ahead) is not enough while the other authorities' chains say it has not passed."""
    sc = issued
    sc.tick(31 * DAY)
    sc.seal("EU")  # only the importer's chain has moved on
    head = sc.ledger.state.head("EU")
    assert head is not None
    assert head.time[:10] > cert(sc, "BW-C1").expires
    refuse(
        sc,
        "BW",
        sc.void("BW", "BW-C1", head.height),
        error=VoidInvalid,
        field="body.number",
        match="median time of the witnessed authorities",
    )
    # once most authorities' chains have moved past expiry, the void stands
    for chain in sc.net.registry.authorities:
        if chain not in ("BW", "EU"):
            sc.seal(chain)
    sc.seal("BW", sc.void("BW", "BW-C1", head.height))
    assert cert(sc, "BW-C1").status is CertificateStatus.VOIDED


def test_witnessed_median_time_ignores_one_clock_far_ahead(issued: Scenario) -> None:
    sc = issued
    state = sc.ledger.state
    witnessed = {c: h for c in sc.net.registry.chains if c != "BW" and (h := state.head(c))}
    future = dataclasses.replace(witnessed["EU"], time="2099-01-01T00:00:00Z")
    ctx = Context(sc.net.registry, "BW", 9, sc.now(), {**witnessed, "EU": future})
    assert witnessed_median_time(ctx) < "2099"
    # the governance chain does not count
    kp_future = dataclasses.replace(witnessed["EU"], chain="KP", time="2099-01-01T00:00:00Z")
    ctx = Context(sc.net.registry, "BW", 9, sc.now(), {**witnessed, "KP": kp_future})
    assert witnessed_median_time(ctx) < "2099"


def test_rule7_void_before_expiry_refused(issued: Scenario) -> None:
    sc = issued
    sc.seal("EU")
    head = sc.ledger.state.head("EU")
    assert head is not None
    exc = refuse(
        sc,
        "BW",
        sc.void("BW", "BW-C1", head.height),
        error=VoidInvalid,
        field="body.importer_height",
        match="not past expiry",
    )
    assert exc.rule == "7"
    # on the expiry day itself it is still too early
    sc.tick(30 * DAY)
    sc.seal("EU")
    head = sc.ledger.state.head("EU")
    assert head is not None
    assert head.time[:10] == cert(sc, "BW-C1").expires
    refuse(
        sc,
        "BW",
        sc.void("BW", "BW-C1", head.height),
        error=VoidInvalid,
        field="body.importer_height",
    )


def test_rule7_void_must_witness_the_importer_height(issued: Scenario) -> None:
    sc = issued
    height = _past_expiry(sc)
    refuse(
        sc,
        "BW",
        sc.void("BW", "BW-C1", height + 1),
        error=VoidInvalid,
        field="body.importer_height",
        match="does not witness EU",
    )


def test_rule7_void_after_a_confirmation_refused(issued: Scenario) -> None:
    sc = issued
    sc.seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP"))
    height = _past_expiry(sc)
    refuse(
        sc,
        "BW",
        sc.void("BW", "BW-C1", height),
        error=VoidInvalid,
        field="body.number",
        match="already confirmed",
    )


def test_rule7_void_by_a_non_issuer_refused(issued: Scenario) -> None:
    sc = issued
    height = _past_expiry(sc)
    refuse(
        sc,
        "AE",
        sc.void("AE", "BW-C1", height),
        error=WrongJurisdiction,
        field="body.number",
        match="issued by BW",
    )
    refuse(sc, "EU", sc.void("EU", "BW-C1", 1), error=WrongJurisdiction, field="body.number")
    refuse(sc, "BW", sc.void("BW", "BW-C9", height), error=UnknownReference, field="body.number")


# =========================================================================== rule 8


def test_rule8_duplicate_record_id(sc: Scenario) -> None:
    body = {"party": "BW-T1", "name": "Trader", "role": "trader", "address": "Gaborone"}
    first = sc.record("BW", Kind.PARTY_REGISTER, body, record_id="client-42")
    sc.seal("BW", first)
    other = dict(body, party="BW-T2")
    exc = refuse(
        sc,
        "BW",
        sc.record("BW", Kind.PARTY_REGISTER, other, record_id="client-42"),
        error=DuplicateRecord,
        field="id",
        match="client-42",
    )
    assert exc.rule == "8"
    refuse(sc, "BW", first, error=DuplicateRecord, field="id")  # the very same bytes again
    # inside one block
    twin_a = sc.record("BW", Kind.PARTY_REGISTER, other, record_id="client-43")
    twin_b = sc.record("BW", Kind.PARTY_REGISTER, dict(body, party="BW-T3"), record_id="client-43")
    refuse(sc, "BW", twin_a, twin_b, error=DuplicateRecord, field="id")
    # a new id passes, and ids are per chain
    sc.seal("BW", sc.record("BW", Kind.PARTY_REGISTER, other, record_id="client-44"))
    eu_body = dict(body, party="EU-T1")
    sc.seal("EU", sc.record("EU", Kind.PARTY_REGISTER, eu_body, record_id="client-42"))


def test_rule8_ids_of_things_are_never_reused(sc: Scenario) -> None:
    refuse(
        sc,
        "BW",
        sc.party("BW", "BW-MINE"),
        error=DuplicateRecord,
        field="body.party",
    )
    sc.seal("BW", sc.split("BW", "BW-P1", [("BW-A", 4_000, 1), ("BW-B", 6_000, 1_339_999)]))
    refuse(
        sc,
        "BW",
        sc.register("BW", "BW-P1", "BW-MINE", 10_000, 1),
        error=DuplicateRecord,
        field="body.parcel",
        match="never reused",
    )
    refuse(
        sc,
        "BW",
        sc.split("BW", "BW-B", [("BW-A", 1_000, 1), ("BW-Z", 5_000, 1_339_998)]),
        error=DuplicateRecord,
        field="body.children[0].parcel",
    )
    refuse(
        sc,
        "BW",
        sc.merge("BW", ["BW-A", "BW-B"], "BW-P2", "BW-MINE"),
        error=DuplicateRecord,
        field="body.parcel",
    )


def test_rule8_new_ids_carry_the_chain_prefix(sc: Scenario) -> None:
    refuse(
        sc,
        "BW",
        sc.register("BW", "EU-P9", "BW-MINE", 100, 100),
        error=WrongJurisdiction,
        field="body.parcel",
        match="start with BW-",
    )
    refuse(
        sc,
        "BW",
        sc.split("BW", "BW-P1", [("AE-A", 4_000, 1), ("BW-B", 6_000, 1_339_999)]),
        error=WrongJurisdiction,
        field="body.children[0].parcel",
    )
    refuse(
        sc,
        "BW",
        sc.merge("BW", ["BW-P1", "BW-P2"], "RU-M1", "BW-MINE"),
        error=WrongJurisdiction,
        field="body.parcel",
    )
    sc.seal("BW", sc.register("BW", "BW-P9", "BW-MINE", 100, 100))


def test_record_of_another_network(sc: Scenario) -> None:
    other = Scenario(Network.create(seed=1))
    refuse(
        sc,
        "BW",
        other.party("BW", "BW-X"),
        error=UnknownReference,
        field="network",
        as_block=False,
    )
    with pytest.raises(BlockError) as info:
        sc.ledger.append(forge(sc, "BW", [other.party("BW", "BW-X")]))
    assert info.value.field == "records[0]"


# =========================================================================== rule 9


@pytest.fixture
def hub(sc: Scenario) -> Scenario:
    """RU-P1 and BW-P1 shipped to Dubai, merged there into AE-M1; EU restricts RU."""
    ship(sc, "RU", "RU-C1", "AE", "RU-MINE", ["RU-P1"], "AE-HUB")
    ship(sc, "BW", "BW-C1", "AE", "BW-MINE", ["BW-P1"], "AE-HUB")
    sc.seal("AE", sc.merge("AE", ["RU-P1", "BW-P1"], "AE-M1", "AE-HUB"))
    sc.seal("EU", sc.restrict("EU", "RU"))
    assert sc.ledger.state.restricted("EU") == {"RU"}
    return sc


def test_rule9_restricted_origin_through_a_mixing_hub(hub: Scenario) -> None:
    sc = hub
    sc.seal("AE", sc.issue("AE", "AE-C1", "EU", "AE-HUB", ["AE-M1"]))
    exc = refuse(
        sc,
        "EU",
        sc.confirm("EU", "AE-C1", "EU-IMP"),
        error=RestrictedOrigin,
        field="body.received",
        match="holds origin RU",
    )
    assert exc.rule == "9"
    assert cert(sc, "AE-C1").status is CertificateStatus.ISSUED
    # lifting the restriction allows it
    sc.seal("EU", lift(sc, "EU", "RU"))
    sc.seal("EU", sc.confirm("EU", "AE-C1", "EU-IMP"))
    assert parcel(sc, "AE-M1").chain == "EU"


def test_rule9_restricted_origin_survives_splitting_into_tiny_children(hub: Scenario) -> None:
    sc = hub
    sc.seal(
        "AE",
        sc.split("AE", "AE-M1", [("AE-T1", 1, 10), ("AE-T2", 14_999, 1_815_000 - 10)]),
    )
    tiny = parcel(sc, "AE-T1")
    assert tiny.origin == (("BW", 1), ("RU", 0))  # no Russian carat left, but the key is kept
    sc.seal("AE", sc.issue("AE", "AE-C1", "EU", "AE-HUB", ["AE-T1"]))
    refuse(
        sc,
        "EU",
        sc.confirm("EU", "AE-C1", "EU-IMP"),
        error=RestrictedOrigin,
        field="body.received",
    )
    # a Botswana-only parcel passes the same border
    sc.seal("BW", sc.issue("BW", "BW-C2", "EU", "BW-MINE", ["BW-P2"]))
    sc.seal("EU", sc.confirm("EU", "BW-C2", "EU-IMP"))


def test_rule9_restriction_records(sc: Scenario) -> None:
    sc.seal("EU", sc.restrict("EU", "RU"))
    refuse(sc, "EU", sc.restrict("EU", "RU"), error=DuplicateRecord, field="body.origin")
    refuse(sc, "EU", lift(sc, "EU", "ZA"), error=UnknownReference, field="body.origin")
    # restrictions are per participant
    assert sc.ledger.state.restricted("AE") == frozenset()
    ship(sc, "RU", "RU-C1", "AE", "RU-MINE", ["RU-P1"], "AE-HUB")
    sc.seal("EU", lift(sc, "EU", "RU"))
    assert sc.ledger.state.restricted("EU") == frozenset()
    sc.seal("EU", sc.restrict("EU", "RU"))


# =========================================================================== governance


def test_governance_threshold(sc: Scenario) -> None:
    one = sc.governance(Kind.MEMBER_SUSPEND, {"code": "EU", "reason": "plenary"}, signers=1)
    exc = refuse(sc, "KP", one, error=GovernanceInvalid, field="sigs")
    assert "signed by 1 of 2 required" in str(exc)
    assert exc.rule == "governance"
    # an outsider's signature and a repeated one count for nothing
    outsider = signer("outsider")
    body = {"code": "EU", "reason": "plenary"}
    for signers in ([sc.net.governance[0], outsider], [sc.net.governance[1]] * 2):
        record = sc.record("KP", Kind.MEMBER_SUSPEND, body, signers=signers)
        exc = refuse(sc, "KP", record, error=GovernanceInvalid, field="sigs")
        assert "signed by 1 of 2 required" in str(exc)
    sc.seal("KP", sc.governance(Kind.MEMBER_SUSPEND, body, signers=2))


def test_governance_kinds_belong_on_the_kp_chain(sc: Scenario) -> None:
    refuse(
        sc,
        "KP",
        sc.record(
            "KP",
            Kind.PARTY_REGISTER,
            {"party": "KP-X", "name": "x", "role": "trader", "address": "x"},
        ),
        error=GovernanceInvalid,
        field="kind",
        match="a participant chain",
    )
    record = sc.record(
        "BW",
        Kind.MEMBER_SUSPEND,
        {"code": "EU", "reason": "plenary"},
        signers=sc.net.governance[:2],
    )
    refuse(sc, "BW", record, error=GovernanceInvalid, field="kind", match="the KP chain")


def test_suspension_applies_to_blocks_that_witness_it(sc: Scenario) -> None:
    state = sc.ledger.state
    sc.seal("KP")  # a heartbeat: the governance chain before the suspension
    kp_before = state.head("KP")
    assert kp_before is not None
    sc.seal("KP", sc.governance(Kind.MEMBER_SUSPEND, {"code": "EU", "reason": "plenary"}))
    # a BW block that witnesses KP only before the suspension still sees EU active
    view = State(base=state)
    view.heads["KP"] = kp_before
    proposal = propose(
        view,
        sc.net.registry,
        sc.net.signer("BW"),
        "BW",
        [sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"])],
        sc.tick(),
    )
    assert proposal.rejected == []
    sc.ledger.append(proposal.block)  # verified in full by apply_block
    assert cert(sc, "BW-C1").status is CertificateStatus.ISSUED
    # likewise EU's own block that does not witness its suspension yet may still export
    eu_view = State(base=state)
    eu_view.heads["KP"] = kp_before
    eu_records = [sc.register("EU", "EU-P0", "EU-B", 100, 10_000)]
    eu_block = propose(eu_view, sc.net.registry, sc.net.signer("EU"), "EU", eu_records, sc.now())
    sc.ledger.append(eu_block.block)
    eu_issue = sc.issue("EU", "EU-C0", "BW", "EU-B", ["EU-P0"])
    eu_block = propose(eu_view, sc.net.registry, sc.net.signer("EU"), "EU", [eu_issue], sc.tick())
    assert eu_block.rejected == []
    sc.ledger.append(eu_block.block)
    assert cert(sc, "EU-C0").status is CertificateStatus.ISSUED
    # blocks that witness the suspension: EU is no destination, cannot issue nor confirm
    refuse(
        sc,
        "BW",
        sc.issue("BW", "BW-C2", "EU", "BW-MINE", ["BW-P2"]),
        error=CertificateInvalid,
        field="body.destination",
        match="not an active participant",
    )
    sc.seal("EU", sc.register("EU", "EU-P1", "EU-B", 300, 30_000))
    refuse(
        sc,
        "EU",
        sc.issue("EU", "EU-C1", "BW", "EU-B", ["EU-P1"]),
        error=ParticipantNotActive,
        field="chain",
        match="EU is suspended",
    )
    refuse(
        sc,
        "EU",
        sc.confirm("EU", "BW-C1", "EU-IMP"),
        error=ParticipantNotActive,
        field="chain",
    )
    # suspending twice is refused; reinstating restores everything
    refuse(
        sc,
        "KP",
        sc.governance(Kind.MEMBER_SUSPEND, {"code": "EU", "reason": "again"}),
        error=GovernanceInvalid,
        field="body.code",
        match="already suspended",
    )
    sc.seal("KP", sc.governance(Kind.MEMBER_REINSTATE, {"code": "EU", "reason": "complied"}))
    sc.seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP"))
    sc.seal("BW", sc.issue("BW", "BW-C2", "EU", "BW-MINE", ["BW-P2"]))
    sc.seal("EU", sc.issue("EU", "EU-C1", "BW", "EU-B", ["EU-P1"]))
    refuse(
        sc,
        "KP",
        sc.governance(Kind.MEMBER_REINSTATE, {"code": "EU", "reason": "again"}),
        error=GovernanceInvalid,
        field="body.code",
        match="already active",
    )


def test_governance_of_unknown_participants(sc: Scenario) -> None:
    for kind in (Kind.MEMBER_SUSPEND, Kind.MEMBER_REINSTATE):
        refuse(
            sc,
            "KP",
            sc.governance(kind, {"code": "ZZ", "reason": "x"}),
            error=GovernanceInvalid,
            field="body.code",
            match="not a participant",
        )
    key = signer("zz").public.hex()
    refuse(
        sc,
        "KP",
        sc.governance(
            Kind.KEY_REPLACE, {"code": "ZZ", "key": key, "from_height": 1, "reason": "x"}
        ),
        error=GovernanceInvalid,
        field="body.code",
    )


def test_member_admit(sc: Scenario) -> None:
    na = signer("NA")
    sc.net.signers["NA"] = na
    body = {"code": "NA", "name": "Namibia", "role": "authority", "url": "http://na", "key": ""}
    body["key"] = na.public.hex()
    sc.seal("KP")
    kp_before = sc.ledger.state.head("KP")
    sc.seal("KP", sc.governance(Kind.MEMBER_ADMIT, body))
    for code in ("NA", "BW"):
        refuse(
            sc,
            "KP",
            sc.governance(Kind.MEMBER_ADMIT, dict(body, code=code)),
            error=GovernanceInvalid,
            field="body.code",
            match="already a participant",
        )
    # NA's own chain: its first block must witness the admission
    sc.seal("NA", sc.party("NA", "NA-MINE", "miner"), sc.register("NA", "NA-P1", "NA-MINE", 200, 1))
    na_block = sc.ledger.blocks["NA"][0]
    assert any(w.chain == "KP" for w in na_block.header.witness)
    assert key_at(sc.ledger.state, "NA", 1) == na.public
    # BW sees NA as a destination only in blocks that witness the admission
    view = State(base=sc.ledger.state)
    assert kp_before is not None
    view.heads["KP"] = kp_before
    early = propose(
        view,
        sc.net.registry,
        sc.net.signer("BW"),
        "BW",
        [sc.issue("BW", "BW-C1", "NA", "BW-MINE", ["BW-P1"])],
        sc.tick(),
    )
    assert [type(e) for _, e in early.rejected] == [CertificateInvalid]
    sc.seal("BW", sc.issue("BW", "BW-C1", "NA", "BW-MINE", ["BW-P1"]))
    sc.seal("NA", sc.confirm("NA", "BW-C1", "NA-MINE"))
    assert parcel(sc, "BW-P1").chain == "NA"


def test_a_chain_that_is_not_an_authority_is_refused(sc: Scenario) -> None:
    wdc = sc.net.signer("WDC")
    proposal = propose(sc.ledger.state, sc.net.registry, wdc, "WDC", [], sc.tick())
    before = fingerprint(sc)
    with pytest.raises(BlockError, match="not an authority") as info:
        sc.ledger.append(proposal.block)
    assert info.value.field == "header.chain"
    assert fingerprint(sc) == before


# =========================================================================== keys


def test_key_rotate(sc: Scenario) -> None:
    state = sc.ledger.state
    old = sc.net.signer("BW")
    new = signer("bw-2026")
    refuse(
        sc,
        "BW",
        sc.record("BW", Kind.KEY_ROTATE, {"key": old.public.hex()}),
        error=KeyChangeInvalid,
        field="body.key",
        match="current key",
    )
    sc.seal("BW", sc.record("BW", Kind.KEY_ROTATE, {"key": new.public.hex()}))
    rotated_at = state.head("BW")
    assert rotated_at is not None
    assert rotated_at.key_id == old.public.key_id
    # the next block signed by the old key is refused, and nothing is written
    stale = propose(state, sc.net.registry, old, "BW", [], sc.tick())
    before = fingerprint(sc)
    with pytest.raises(BlockError) as info:
        sc.ledger.append(stale.block)
    assert info.value.field == "header.key_id"
    assert fingerprint(sc) == before
    # signed by the new key it is accepted
    sc.net.signers["BW"] = new
    sc.seal("BW", sc.transfer("BW", "BW-P1", "BW-EXP"))
    assert key_at(state, "BW", rotated_at.height) == old.public
    assert key_at(state, "BW", rotated_at.height + 1) == new.public
    # headers from before the rotation still verify with the old key ...
    for height in range(1, rotated_at.height + 1):
        header = state.header("BW", height)
        assert header is not None
        SignedHeader(header, state.signatures[("BW", height)]).verify_signature(
            key_at(state, "BW", height)  # type: ignore[arg-type]
        )
    # ... and so does a record's inclusion proof against such a header
    bw_records = sorted((ref.index, ref.hash) for ref, _, _ in state.records if ref.chain == "BW")
    tree = MemoryTree(h for _, h in bw_records)
    first = state.header("BW", 1)
    assert first is not None
    index = 2  # BW-P1's registration
    verify_inclusion(
        bw_records[index][1], index, first.size, tree.inclusion_proof(index, first.size), first.root
    )
    # evidence about a pre-rotation header still verifies with the old key
    fork, _ = seal(
        signer=old,
        network=sc.net.network_id,
        chain="BW",
        prev=None,
        frontier=Frontier(),
        records=[],
        time=first.time,
        witness=[],
    )
    evidence = detect_equivocation(state, fork.signed)
    assert evidence is not None
    evidence.verify(lambda c, h: key_at(state, c, h))  # type: ignore[arg-type,return-value]
    own = SignedHeader(first, state.signatures[("BW", 1)])
    assert evidence == Evidence.build(own, fork.signed)
    # but the old key cannot fake a post-rotation header
    latest = state.head("BW")
    assert latest is not None
    late_fork, _ = seal(
        signer=old,
        network=sc.net.network_id,
        chain="BW",
        prev=rotated_at,
        frontier=Frontier(),
        records=[],
        time=latest.time,
        witness=list(rotated_at.witness),
    )
    assert detect_equivocation(state, late_fork.signed) is None
    held = state.header("BW", late_fork.header.height)
    assert held is not None
    with pytest.raises(BlockError):
        Evidence.build(
            SignedHeader(held, state.signatures[("BW", held.height)]), late_fork.signed
        ).verify(lambda c, h: key_at(state, c, h))  # type: ignore[arg-type,return-value]


def test_key_replace_through_governance(sc: Scenario) -> None:
    state = sc.ledger.state
    old = sc.net.signer("EU")
    new = signer("eu-replacement")
    eu = state.head("EU")
    assert eu is not None
    body = {
        "code": "EU",
        "key": new.public.hex(),
        "from_height": eu.height + 1,
        "reason": "key lost",
    }
    refuse(
        sc,
        "KP",
        sc.governance(Kind.KEY_REPLACE, body, signers=1),
        error=GovernanceInvalid,
        field="sigs",
    )
    sc.seal("KP", sc.governance(Kind.KEY_REPLACE, body))
    kp = state.head("KP")
    assert kp is not None
    assert key_at(state, "EU", eu.height) == old.public
    assert key_at(state, "EU", eu.height + 1) == new.public
    stale = propose(state, sc.net.registry, old, "EU", [], sc.tick())
    before = fingerprint(sc)
    with pytest.raises(BlockError) as info:
        sc.ledger.append(stale.block)
    assert info.value.field == "header.key_id"
    assert fingerprint(sc) == before
    sc.net.signers["EU"] = new
    sc.seal("EU", sc.party("EU", "EU-NEW"))


# =========================================================================== determinism


def concurrently(sc: Scenario, **records: Sequence[Record]) -> None:
    """Blocks of several chains sealed at the same moment, none witnessing the others:
    each is proposed on the same state, then received and verified in full."""
    state = sc.ledger.state
    time = sc.tick()
    proposals = [
        propose(state, sc.net.registry, sc.net.signer(chain), chain, batch, time)
        for chain, batch in records.items()
    ]
    for proposal in proposals:
        assert proposal.rejected == []
        sc.ledger.append(proposal.block)


def _history(sc: Scenario) -> None:
    """A few chains' worth of custody, sealed in rounds of concurrent blocks: exports,
    a hub merge, a restriction, a discrepancy, a suspension and a reinstatement."""
    concurrently(
        sc,
        RU=[sc.issue("RU", "RU-C1", "AE", "RU-MINE", ["RU-P1"])],
        BW=[sc.split("BW", "BW-P1", [("BW-A", 4_000, 540_000), ("BW-B", 6_000, 800_000)])],
        EU=[sc.restrict("EU", "RU")],
        KP=[sc.governance(Kind.MEMBER_SUSPEND, {"code": "IN", "reason": "plenary"})],
    )
    concurrently(
        sc,
        AE=[sc.confirm("AE", "RU-C1", "AE-HUB")],
        BW=[sc.issue("BW", "BW-C1", "AE", "BW-MINE", ["BW-A"])],
        IN=[],
    )
    concurrently(
        sc,
        AE=[sc.confirm("AE", "BW-C1", "AE-HUB")],
        BW=[sc.issue("BW", "BW-C2", "EU", "BW-MINE", ["BW-B"])],
        KP=[sc.governance(Kind.MEMBER_REINSTATE, {"code": "IN", "reason": "complied"})],
    )
    concurrently(
        sc,
        AE=[sc.merge("AE", ["RU-P1", "BW-A"], "AE-M1", "AE-HUB")],
        EU=[sc.confirm("EU", "BW-C2", "EU-IMP", {"BW-B": 5_000})],
        RU=[],
    )
    concurrently(
        sc,
        AE=[sc.issue("AE", "AE-C1", "EU", "AE-HUB", ["AE-M1"])],
        IN=[],
        BW=[],
    )
    assert cert(sc, "BW-C2").status is CertificateStatus.DISCREPANCY
    assert parcel(sc, "AE-M1").origin == (("BW", 4_000), ("RU", 5_000))


def test_two_arrival_orders_reach_the_same_state(sc: Scenario) -> None:
    _history(sc)
    orders = assert_replays(sc)
    ids = [[(b.header.chain, b.header.height) for b in order] for order in orders]
    assert ids[0] != ids[1]
    assert sorted(ids[0]) == sorted(ids[1])
    first, second = replay(sc, orders[0]), replay(sc, orders[1])
    assert first.state.snapshot() == second.state.snapshot() == sc.ledger.state.snapshot()


def test_dependency_missing_writes_nothing(sc: Scenario) -> None:
    _history(sc)
    fresh = MemoryLedger(sc.net.registry)
    eu_first = sc.ledger.blocks["EU"][0]
    before = comparable(fresh.state)
    with pytest.raises(DependencyMissing) as info:
        fresh.append(eu_first)
    assert (info.value.chain, info.value.height) == ("BW", 1)
    assert comparable(fresh.state) == before
    assert fresh.blocks == {}
    fresh.append(sc.ledger.blocks["BW"][0])
    fresh.append(eu_first)
    # a later AE block needs RU and BW blocks this ledger does not hold yet
    ae_later = sc.ledger.blocks["AE"][1]
    before = comparable(fresh.state)
    with pytest.raises(DependencyMissing):
        fresh.append(ae_later)
    assert comparable(fresh.state) == before


def test_witnessing_another_history_is_refused(sc: Scenario) -> None:
    """EU signs a block witnessing a BW header this node never verified (a fork)."""
    other = Scenario(sc.net, serial=10_000, clear=dict(sc.clear))
    # the same first BW block, then a different second one
    for block in sc.ledger.blocks["BW"][:1]:
        other.ledger.append(block)
    other.clock = sc.clock
    other.seal("BW", other.register("BW", "BW-FORK", "BW-MINE", 1, 1))
    sc.seal("BW", sc.register("BW", "BW-REAL", "BW-MINE", 1, 1))
    for chain in ("EU",):
        for block in sc.ledger.blocks[chain]:
            other.ledger.append(block)
    forked = other.seal("EU", other.party("EU", "EU-X"))
    before = fingerprint(sc)
    with pytest.raises(WitnessInvalid) as info:
        sc.ledger.append(forked)
    assert info.value.field == "header.witness"
    assert info.value.rule == "witness"
    assert fingerprint(sc) == before
    # the fork itself is evidence of equivocation, which any node can check offline
    fork_header = other.ledger.blocks["BW"][1].signed
    evidence = detect_equivocation(sc.ledger.state, fork_header)
    assert evidence is not None
    evidence.verify(lambda c, h: sc.net.signer(c).public)
    assert detect_equivocation(sc.ledger.state, sc.ledger.blocks["BW"][1].signed) is None


def test_witness_of_either_version_of_a_fork_is_accepted_once_evidence_exists(
    sc: Scenario,
) -> None:
    """Regression (issue 9, item 1): with evidence that BW forked at height 2, a block
    witnessing the version this node does not hold is judged as witnessing BW's last
    common header, on every node; records relying on the forked part are refused."""
    other = Scenario(sc.net, serial=10_000, clear=dict(sc.clear))
    for block in sc.ledger.blocks["BW"][:1]:
        other.ledger.append(block)
    for block in sc.ledger.blocks["EU"]:
        other.ledger.append(block)
    other.clock = sc.clock
    other.seal("BW", other.issue("BW", "BW-CF", "EU", "BW-MINE", ["BW-P1"]))
    sc.seal("BW", sc.register("BW", "BW-REAL", "BW-MINE", 1, 1))
    evidence = detect_equivocation(sc.ledger.state, other.ledger.blocks["BW"][1].signed)
    assert evidence is not None
    forks = fork_heights([evidence])
    assert forks == {"BW": 2}
    # EU's node held the other version when it sealed: a plain block (a heartbeat)
    heartbeat = other.seal("EU")
    with pytest.raises(WitnessInvalid):
        apply_block(sc.ledger.state, heartbeat, sc.net.registry)
    view = State(base=sc.ledger.state)
    layer = apply_block(view, heartbeat, sc.net.registry, forks)
    assert layer.heads["EU"] == heartbeat.header
    layer.merge_into(view)
    # a confirmation of the certificate issued in BW's forked part is refused on both
    # sides: where the certificate is unknown, and where it is known but past the fork
    confirm = other.confirm("EU", "BW-CF", "EU-IMP")
    proposal = propose(
        other.ledger.state,
        sc.net.registry,
        sc.net.signer("EU"),
        "EU",
        [confirm],
        other.tick(),
        forks,
    )
    assert [r.id for r, _ in proposal.rejected] == [confirm.id]
    assert isinstance(proposal.rejected[0][1], ConfirmationInvalid)
    sealed_before_evidence = other.seal("EU", confirm)
    with pytest.raises(UnknownReference):
        apply_block(view, sealed_before_evidence, sc.net.registry, forks)


def test_propose_respects_the_block_byte_limit() -> None:
    sc = Scenario(Network.create(params=Params(max_block_bytes=2_048)))
    records = [sc.party("BW", f"BW-T{i}", name="x" * 150) for i in range(20)]
    assert sum(len(r.raw) for r in records) > 2_048
    proposal = propose(
        sc.ledger.state, sc.net.registry, sc.net.signer("BW"), "BW", records, sc.tick()
    )
    taken = len(proposal.block.records)
    assert 0 < taken < len(records)
    assert sum(len(r.raw) for r in proposal.block.records) <= 2_048
    assert proposal.deferred == records[taken:]  # in order, for the next block
    apply_block(sc.ledger.state, proposal.block, sc.net.registry)


def test_propose_respects_the_block_record_limit() -> None:
    sc = Scenario(Network.create(params=Params(max_block_records=2)))
    records = [sc.party("BW", f"BW-T{i}") for i in range(3)]
    proposal = propose(
        sc.ledger.state, sc.net.registry, sc.net.signer("BW"), "BW", records, sc.tick()
    )
    assert proposal.block.records == tuple(records[:2])
    assert proposal.deferred == records[2:]


def test_propose_leaves_records_dated_after_the_block_for_later(sc: Scenario) -> None:
    future = make_record(
        network=sc.net.network_id,
        chain="BW",
        kind=Kind.PARTY_REGISTER,
        record_id="from-the-future",
        time="2027-01-01T00:00:00Z",
        body={"party": "BW-LATE", "name": "Late", "role": "trader", "address": "x"},
    )
    now = sc.party("BW", "BW-NOW")
    after = sc.party("BW", "BW-AFTER")
    proposal = propose(
        sc.ledger.state,
        sc.net.registry,
        sc.net.signer("BW"),
        "BW",
        [now, future, after],
        sc.tick(),
    )
    # records after a future-dated one wait with it: they may build on it
    assert proposal.block.records == (now,)
    assert proposal.rejected == []
    assert proposal.deferred == [future, after]
    sc.ledger.append(proposal.block)  # every node accepts the block its author sealed


def test_certificates_of_an_admitted_member_can_be_confirmed(sc: Scenario) -> None:
    na = signer("NA")
    sc.net.signers["NA"] = na
    body = {"code": "NA", "name": "Namibia", "role": "authority", "url": "http://na"}
    sc.seal("KP", sc.governance(Kind.MEMBER_ADMIT, dict(body, key=na.public.hex())))
    sc.seal("NA", sc.party("NA", "NA-MINE", "miner"), sc.register("NA", "NA-P1", "NA-MINE", 9, 9))
    sc.seal("NA", sc.issue("NA", "NA-C1", "BW", "NA-MINE", ["NA-P1"]))
    sc.seal("BW", sc.confirm("BW", "NA-C1", "BW-MINE"))


# =========================================================================== properties

TRIO = ("BW", "AE", "EU")


def _check_conservation(sc: Scenario, registered: Counter[str]) -> None:
    live = [p for p in sc.ledger.state.parcels.values() if p.status is not ParcelStatus.SPENT]
    assert sum(p.weight for p in live) == sum(registered.values())
    origins: Counter[str] = Counter()
    for p in live:
        assert sum(q for _, q in p.origin) == p.weight, p
        assert set(c for c, _ in p.origin) <= set(registered)
        for c, q in p.origin:
            origins[c] += q
    assert +origins == +registered


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_random_custody_conserves_mass_and_origin(data: st.DataObject) -> None:
    sc = Scenario(Network.create(TRIO, ()))
    registered: Counter[str] = Counter()
    serial = 0

    def fresh(chain: str, kind: str = "X") -> str:
        nonlocal serial
        serial += 1
        return f"{chain}-{kind}{serial}"

    for c in TRIO:
        weights = data.draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=2), label=c)
        records = [sc.party(c, f"{c}-T")]
        for w in weights:
            records.append(sc.register(c, fresh(c), f"{c}-T", w, w * 131))
            registered[c] += w
        sc.seal(c, *records)
    _check_conservation(sc, registered)

    for _ in range(data.draw(st.integers(1, 25), label="steps")):
        state = sc.ledger.state
        active = sorted(
            (p for p in state.parcels.values() if p.status is ParcelStatus.ACTIVE),
            key=lambda p: p.id,
        )
        open_certs = sorted(
            c.number for c in state.certificates.values() if c.status is CertificateStatus.ISSUED
        )
        by_chain: dict[str, list[str]] = {}
        for p in active:
            by_chain.setdefault(p.chain, []).append(p.id)
        options = []
        if any(p.weight >= 2 for p in active):
            options.append("split")
        if any(len(v) >= 2 for v in by_chain.values()):
            options.append("merge")
        if active:
            options.append("export")
        if open_certs:
            options.append("confirm")
        if not options:
            break
        op = data.draw(st.sampled_from(options), label="op")
        event(op)
        if op == "split":
            p = data.draw(st.sampled_from([p for p in active if p.weight >= 2]), label="parent")
            k = data.draw(st.integers(2, min(4, p.weight)), label="children")
            cuts = sorted(
                data.draw(
                    st.lists(
                        st.integers(1, p.weight - 1), min_size=k - 1, max_size=k - 1, unique=True
                    ),
                    label="cuts",
                )
            )
            vcuts = sorted(
                data.draw(
                    st.lists(st.integers(0, sc.cents(p.value)), min_size=k - 1, max_size=k - 1),
                    label="v",
                )
            )
            ws = [b - a for a, b in zip([0, *cuts], [*cuts, p.weight], strict=True)]
            vs = [b - a for a, b in zip([0, *vcuts], [*vcuts, sc.cents(p.value)], strict=True)]
            kids = [(fresh(p.chain), w, v) for w, v in zip(ws, vs, strict=True)]
            sc.seal(p.chain, sc.split(p.chain, p.id, kids))
            made = [parcel(sc, kid) for kid, _, _ in kids]
            assert [m.origin for m in made] == allocate_origin(p.origin, ws)
            assert all({c for c, _ in m.origin} == {c for c, _ in p.origin} for m in made)
        elif op == "merge":
            chain = data.draw(
                st.sampled_from(sorted(c for c, v in by_chain.items() if len(v) >= 2)),
                label="chain",
            )
            parents = data.draw(
                st.lists(st.sampled_from(by_chain[chain]), min_size=2, max_size=3, unique=True),
                label="parents",
            )
            child = fresh(chain)
            sc.seal(chain, sc.merge(chain, parents, child, f"{chain}-T"))
        elif op == "export":
            p = data.draw(st.sampled_from(active), label="parcel")
            same = [q.id for q in active if q.chain == p.chain and q.custodian == p.custodian]
            extra = data.draw(st.lists(st.sampled_from(same), max_size=2, unique=True))
            ids = sorted({p.id, *extra})
            dest = data.draw(st.sampled_from([c for c in TRIO if c != p.chain]), label="dest")
            number = fresh(p.chain, "C")
            assert p.custodian is not None
            sc.seal(p.chain, sc.issue(p.chain, number, dest, p.custodian, ids))
        else:
            number = data.draw(st.sampled_from(open_certs), label="certificate")
            c = cert(sc, number)
            short = data.draw(st.booleans(), label="discrepancy")
            first = c.parcels[0]
            received = {first: max(1, parcel(sc, first).weight // 2)} if short else {}
            dest = c.destination
            sc.seal(dest, sc.confirm(dest, number, f"{dest}-T", received))
        _check_conservation(sc, registered)
    assert_replays(sc)


CODES = ["AE", "BW", "CA", "CD", "NA", "RU", "ZA"]


@st.composite
def allocations(draw: st.DrawFn) -> tuple[Composition, list[int]]:
    weights = draw(st.lists(st.integers(1, 10**9), min_size=1, max_size=8), label="weights")
    total = sum(weights)
    codes = draw(st.lists(st.sampled_from(CODES), min_size=1, max_size=6, unique=True))
    cuts = sorted(
        draw(st.lists(st.integers(0, total), min_size=len(codes) - 1, max_size=len(codes) - 1))
    )
    amounts = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    return tuple(sorted(zip(codes, amounts, strict=True))), weights


@settings(max_examples=300, deadline=None)
@given(allocations())
def test_allocate_origin_is_exact(case: tuple[Composition, list[int]]) -> None:
    origin, weights = case
    rows = allocate_origin(origin, weights)
    assert len(rows) == len(weights)
    keys = [c for c, _ in origin]
    for row, w in zip(rows, weights, strict=True):
        assert [c for c, _ in row] == keys  # every key kept, in order
        assert all(q >= 0 for _, q in row)
        assert sum(q for _, q in row) == w
    for i, (c, q) in enumerate(origin):
        assert sum(row[i][1] for row in rows) == q, c
    # the first child gets its proportional share of every origin, to within one unit
    total = sum(q for _, q in origin)
    for (_, q), (_, share) in zip(origin, rows[0], strict=True):
        assert (weights[0] * q) // total <= share <= -((-weights[0] * q) // total)
    assert allocate_origin(origin, weights) == rows


def test_allocate_origin_examples() -> None:
    mixed = (("BW", 10_000), ("RU", 5_000))
    assert allocate_origin(mixed, [1, 14_999]) == [
        (("BW", 1), ("RU", 0)),
        (("BW", 9_999), ("RU", 5_000)),
    ]
    assert allocate_origin(mixed, [15_000]) == [mixed]
    assert allocate_origin(mixed, [5_000, 5_000, 5_000]) == [
        (("BW", 3_333), ("RU", 1_667)),
        (("BW", 3_334), ("RU", 1_666)),
        (("BW", 3_333), ("RU", 1_667)),
    ]
    thirds = allocate_origin((("BW", 1), ("CA", 1), ("RU", 1)), [1, 1, 1])
    assert [sum(q for _, q in r) for r in thirds] == [1, 1, 1]
    assert [sum(r[i][1] for r in thirds) for i in range(3)] == [1, 1, 1]
    assert allocate_origin((("BW", 0), ("RU", 7)), [3, 4]) == [
        (("BW", 0), ("RU", 3)),
        (("BW", 0), ("RU", 4)),
    ]
