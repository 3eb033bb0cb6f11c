"""The artisanal chain's rules A1-A4, each broken on purpose, and the claims an
export lot carries through merges, splits and an export.

Every refusal is checked two ways and must leave the ledger as it was: the
node's own block production refuses it with the rule's error (naming the
rule and the field), and ``apply_record`` on a fresh layer raises before
writing. Every test's ledger is then replayed into a fresh in-memory ledger
and must reach the same state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.artisanal import (
    assessment_body,
    buyer_licence_body,
    claim_body,
    digger_licence_body,
    end_body,
    purchase_body,
)
from kpledger.ledger.chain import MemoryLedger
from kpledger.ledger.errors import (
    BuyerLicenceInvalid,
    ClaimInvalid,
    DiggerLicenceInvalid,
    FutureDated,
    InactiveParty,
    RegistryInvalid,
    RuleViolation,
    SchemaError,
)
from kpledger.ledger.records import Kind, Record
from kpledger.ledger.rules import Context, apply_record
from kpledger.ledger.state import State

KONO = [(8_650_000, -10_970_000), (8_660_000, -10_950_000), (8_640_000, -10_940_000)]


def rec(sc: Scenario, kind: Kind, body: dict[str, Any]) -> Record:
    return sc.record("SL", kind, body)


def purchase(sc: Scenario, parcel: str, **kw: Any) -> Record:
    args: dict[str, Any] = {
        "buyer": "SL-BL1",
        "digger": "SL-DL1",
        "claim": "SL-C1",
        "weight": 120,
        "price": 30_000,
        "bought": "2026-03-01",
    }
    args.update(kw)
    return rec(
        sc,
        Kind.PARCEL_PURCHASE,
        purchase_body(
            parcel,
            args.pop("buyer"),
            args.pop("digger"),
            args.pop("claim"),
            args.pop("weight"),
            args.pop("price"),
            args.pop("bought"),
            **args,
        ),
    )


def replayed(sc: Scenario) -> State:
    ledger = MemoryLedger(sc.net.registry)
    order = sorted(
        (b for blocks in sc.ledger.blocks.values() for b in blocks),
        key=lambda b: (b.header.time, b.header.chain, b.header.height),
    )
    for block in order:
        ledger.append(block)
    return ledger.state


@pytest.fixture
def sc() -> Iterator[Scenario]:
    """SL registers claims C1 (Kono) and C2 (Bo), diggers on each, a collector for Kono."""
    sc = Scenario(Network.create(("SL", "EU", "BW")))
    sc.seal(
        "SL",
        sc.party("SL", "SL-COLL", "trader"),
        sc.party("SL", "SL-EXP", "exporter"),
        rec(
            sc,
            Kind.CLAIM_REGISTER,
            claim_body("SL-C1", "Koidu miners", "SL-KONO", KONO, "2026-01-01", "2026-12-31"),
        ),
        rec(
            sc,
            Kind.CLAIM_REGISTER,
            claim_body(
                "SL-C2",
                "Bo river group",
                "SL-BO",
                [(7_960_000, -11_740_000)],
                "2026-01-01",
                "2026-12-31",
            ),
        ),
        rec(
            sc,
            Kind.LICENCE_DIGGER,
            digger_licence_body("SL-DL1", "A. Kamara", "SL-C1", "2026-01-01", "2026-06-30"),
        ),
        rec(
            sc,
            Kind.LICENCE_DIGGER,
            digger_licence_body(
                "SL-DL2", "Bo cooperative", "SL-C2", "2026-01-01", "2026-06-30", type="cooperative"
            ),
        ),
        rec(
            sc,
            Kind.LICENCE_BUYER,
            buyer_licence_body("SL-BL1", "SL-COLL", ["SL-KONO"], "2026-02-01", "2026-12-31"),
        ),
    )
    sc.seal("EU", sc.party("EU", "EU-IMP", "importer"))
    yield sc
    assert replayed(sc).snapshot() == sc.ledger.state.snapshot()


def refuse(
    sc: Scenario, record: Record, error: type[RuleViolation], field: str, match: str
) -> None:
    before = (sc.ledger.state.snapshot(), len(sc.ledger.state.records))
    with pytest.raises(error, match=match) as info:
        sc.seal("SL", record)
    exc = info.value
    assert type(exc) is error, repr(exc)
    assert exc.field == field
    assert exc.rule == error.rule
    assert (sc.ledger.state.snapshot(), len(sc.ledger.state.records)) == before
    state = sc.ledger.state
    head = state.head("SL")
    witness = {c: h for c in ("EU", "BW") if (h := state.head(c)) is not None}
    ctx = Context(sc.net.registry, "SL", (head.height if head else 0) + 1, sc.now(), witness)
    layer = State(base=state)
    with pytest.raises(error):
        apply_record(layer, record, state.frontier("SL").size, ctx)
    assert not layer.parcels
    assert not layer.licences
    assert not layer.purchases


def test_a_first_sale_registers_a_parcel_of_its_claim(sc: Scenario) -> None:
    sc.seal("SL", purchase(sc, "SL-A1", weight=250, price=61_000))
    p = sc.ledger.state.parcel("SL-A1")
    assert p is not None
    assert (p.custodian, p.weight, sc.cents(p.value), p.origin, p.claims) == (
        "SL-COLL",
        250,
        61_000,
        (("SL", 250),),
        (("SL-C1", 250),),
    )
    (bought,) = sc.ledger.state.purchases
    assert (bought.buyer, bought.digger, bought.claim, bought.method) == (
        "SL-BL1",
        "SL-DL1",
        "SL-C1",
        "alluvial",
    )


def test_a1_buyer_licence_must_be_valid_on_the_date(sc: Scenario) -> None:
    refuse(
        sc,
        purchase(sc, "SL-A1", bought="2026-01-15"),
        BuyerLicenceInvalid,
        "body.buyer",
        "valid 2026-02-01..2026-12-31; the sale is of 2026-01-15",
    )
    refuse(
        sc,
        purchase(sc, "SL-A1", buyer="SL-NOPE"),
        BuyerLicenceInvalid,
        "body.buyer",
        "not registered",
    )
    refuse(
        sc, purchase(sc, "SL-A1", buyer="SL-DL1"), BuyerLicenceInvalid, "body.buyer", "is a digger"
    )
    sc.seal("SL", rec(sc, Kind.LICENCE_END, end_body("SL-BL1", "revoked", "2026-02-20", "fraud")))
    refuse(sc, purchase(sc, "SL-A1"), BuyerLicenceInvalid, "body.buyer", "revoked on 2026-02-20")
    # a sale dated before the revocation still stands
    sc.seal("SL", purchase(sc, "SL-A2", bought="2026-02-19"))


def test_a1_buyer_party_must_be_active(sc: Scenario) -> None:
    sc.seal("SL", sc.record("SL", Kind.PARTY_REVOKE, {"party": "SL-COLL", "reason": "closed"}))
    refuse(sc, purchase(sc, "SL-A1"), InactiveParty, "body.buyer", "revoked")


def test_a2_digger_licence_must_be_valid_and_for_the_claim(sc: Scenario) -> None:
    sc.seal(
        "SL",
        rec(
            sc,
            Kind.LICENCE_DIGGER,
            digger_licence_body("SL-DL3", "B. Sesay", "SL-C1", "2026-01-01", "2026-02-15"),
        ),
    )
    refuse(
        sc,
        purchase(sc, "SL-A1", digger="SL-DL3"),
        DiggerLicenceInvalid,
        "body.digger",
        "valid 2026-01-01..2026-02-15; the sale is of 2026-03-01",
    )
    refuse(
        sc,
        purchase(sc, "SL-A1", digger="SL-DL2"),
        DiggerLicenceInvalid,
        "body.digger",
        "on SL-C2, not on SL-C1",
    )
    refuse(
        sc, purchase(sc, "SL-A1", digger="SL-C1"), DiggerLicenceInvalid, "body.digger", "is a claim"
    )
    sc.seal(
        "SL", rec(sc, Kind.LICENCE_END, end_body("SL-DL1", "expired", "2026-02-28", "not renewed"))
    )
    refuse(sc, purchase(sc, "SL-A1"), DiggerLicenceInvalid, "body.digger", "expired on 2026-02-28")


def test_a3_claim_active_and_in_the_buyers_zone(sc: Scenario) -> None:
    refuse(
        sc,
        purchase(sc, "SL-A1", digger="SL-DL2", claim="SL-C2"),
        ClaimInvalid,
        "body.claim",
        r"SL-C2 lies in SL-BO, outside SL-BL1's zones \['SL-KONO'\]",
    )
    sc.seal("SL", rec(sc, Kind.LICENCE_END, end_body("SL-C1", "revoked", "2026-02-10", "dispute")))
    refuse(sc, purchase(sc, "SL-A1"), ClaimInvalid, "body.claim", "SL-C1 was revoked on 2026-02-10")


def test_a4_registry_records(sc: Scenario) -> None:
    refuse(
        sc,
        rec(
            sc,
            Kind.CLAIM_REGISTER,
            claim_body("SL-C1", "x", "SL-KONO", KONO, "2026-01-01", "2026-12-31"),
        ),
        RegistryInvalid,
        "body.claim",
        "already registered",
    )
    refuse(
        sc,
        rec(
            sc,
            Kind.CLAIM_REGISTER,
            claim_body("EU-C9", "x", "SL-KONO", KONO, "2026-01-01", "2026-12-31"),
        ),
        RegistryInvalid,
        "body.claim",
        "start with SL-",
    )
    refuse(
        sc,
        rec(
            sc,
            Kind.LICENCE_DIGGER,
            digger_licence_body("SL-DL9", "x", "SL-C9", "2026-01-01", "2026-02-01"),
        ),
        RegistryInvalid,
        "body.claim",
        "SL-C9 is not a claim",
    )
    refuse(
        sc,
        rec(
            sc,
            Kind.LICENCE_BUYER,
            buyer_licence_body("SL-BL9", "SL-NOBODY", ["SL-BO"], "2026-01-01", "2026-02-01"),
        ),
        InactiveParty,
        "body.party",
        "not a party",
    )
    refuse(
        sc,
        rec(sc, Kind.LICENCE_END, end_body("SL-DL1", "revoked", "2025-12-31", "early")),
        RegistryInvalid,
        "body.date",
        "cannot end before",
    )
    sc.seal(
        "SL", rec(sc, Kind.LICENCE_END, end_body("SL-DL1", "surrendered", "2026-03-01", "left"))
    )
    refuse(
        sc,
        rec(sc, Kind.LICENCE_END, end_body("SL-DL1", "revoked", "2026-03-02", "again")),
        RegistryInvalid,
        "body.licence",
        "already ended on 2026-03-01",
    )


def test_dates_after_the_block_are_refused(sc: Scenario) -> None:
    refuse(
        sc,
        purchase(sc, "SL-A1", bought="2026-05-01"),
        FutureDated,
        "body.bought",
        "after the block",
    )
    refuse(
        sc,
        rec(
            sc,
            Kind.DIAGNOSTIC_ASSESS,
            assessment_body("controls.claims", 3, "register", "2027-01-01"),
        ),
        FutureDated,
        "body.assessed",
        "after the block",
    )


def test_schema_refuses_a_two_point_location_and_a_window_backwards(sc: Scenario) -> None:
    with pytest.raises(SchemaError, match="one point, or a polygon"):
        rec(
            sc,
            Kind.CLAIM_REGISTER,
            claim_body("SL-C5", "x", "SL-KONO", KONO[:2], "2026-01-01", "2026-02-01"),
        )
    with pytest.raises(SchemaError, match="before it starts"):
        rec(
            sc,
            Kind.CLAIM_REGISTER,
            claim_body("SL-C5", "x", "SL-KONO", KONO, "2026-03-01", "2026-02-01"),
        )
    with pytest.raises(SchemaError, match="lat: must be in"):
        rec(
            sc,
            Kind.CLAIM_REGISTER,
            claim_body("SL-C5", "x", "SL-KONO", [(91_000_000, 0)], "2026-01-01", "2026-02-01"),
        )
    with pytest.raises(SchemaError, match="method: must be one of"):
        rec(sc, Kind.PARCEL_PURCHASE, {**sc.clear_body(purchase(sc, "SL-A1")), "method": "dredged"})


def test_an_export_lot_keeps_its_claims_through_merge_split_and_export(sc: Scenario) -> None:
    sc.seal(
        "SL",
        rec(
            sc,
            Kind.LICENCE_BUYER,
            buyer_licence_body("SL-BL2", "SL-COLL", ["SL-BO"], "2026-02-01", "2026-12-31"),
        ),
        purchase(sc, "SL-A1", weight=120),
        purchase(sc, "SL-A2", weight=80),
        purchase(
            sc,
            "SL-A3",
            buyer="SL-BL2",
            digger="SL-DL2",
            claim="SL-C2",
            weight=300,
            method="artisanal",
        ),
    )
    sc.seal("SL", sc.merge("SL", ["SL-A1", "SL-A2", "SL-A3"], "SL-LOT1", "SL-COLL"))
    lot = sc.ledger.state.parcel("SL-LOT1")
    assert lot is not None
    assert lot.claims == (("SL-C1", 200), ("SL-C2", 300))
    sc.seal("SL", sc.split("SL", "SL-LOT1", [("SL-L1A", 250, 50_000), ("SL-L1B", 250, 40_000)]))
    halves = [sc.ledger.state.parcel(p) for p in ("SL-L1A", "SL-L1B")]
    assert [dict(h.claims) for h in halves if h] == [
        {"SL-C1": 100, "SL-C2": 150},
        {"SL-C1": 100, "SL-C2": 150},
    ]
    sc.seal("SL", sc.transfer("SL", "SL-L1A", "SL-EXP"))
    sc.seal("SL", sc.issue("SL", "SL-K1", "EU", "SL-EXP", ["SL-L1A"]))
    sc.seal("EU", sc.confirm("EU", "SL-K1", "EU-IMP"))
    moved = sc.ledger.state.parcel("SL-L1A")
    assert moved is not None
    assert moved.chain == "EU"
    assert dict(moved.claims) == {"SL-C1": 100, "SL-C2": 150}


def test_assessments_are_kept_in_order(sc: Scenario) -> None:
    sc.seal(
        "SL",
        rec(
            sc,
            Kind.DIAGNOSTIC_ASSESS,
            assessment_body("formalisation.licensing", 2, "law of 2025", "2026-01-10"),
        ),
        rec(
            sc,
            Kind.DIAGNOSTIC_ASSESS,
            assessment_body("formalisation.licensing", 3, "licences issued", "2026-02-10"),
        ),
    )
    assert [(a.indicator, a.score) for a in sc.ledger.state.assessments] == [
        ("formalisation.licensing", 2),
        ("formalisation.licensing", 3),
    ]
