"""Tests of the officer's acts in ledger.rules: refusals, releases, merges of one
custodian's goods, production dates and certificates issued by a night batch.

Refusals are checked with ``test_rules.refuse`` (three ways, nothing written) and
every scenario is replayed in two orders by the ``sc`` fixture's teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import WitnessRef, seal
from kpledger.ledger.errors import (
    AlreadySpent,
    CertificateInvalid,
    ConfirmationInvalid,
    CustodyConflict,
    FutureDated,
    RefusalInvalid,
    ReleaseInvalid,
    SchemaError,
    UnknownReference,
    VoidInvalid,
    WitnessInvalid,
    WrongJurisdiction,
)
from kpledger.ledger.records import REFUSAL_CODES, Kind
from kpledger.ledger.registry import Params
from kpledger.ledger.rules import apply_record
from kpledger.ledger.state import CertificateStatus, ParcelStatus, State
from tests.ledger.test_rules import (
    DAY,
    assert_replays,
    cert,
    context,
    parcel,
    refuse,
    ship,
)


@pytest.fixture(name="sc")
def fixture_sc() -> Iterator[Scenario]:
    """As in test_rules: BW mines two parcels, RU one; EU, AE and RU have licensed parties."""
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


# =========================================================================== rule 1: merges


def test_rule1_merge_of_two_custodians_parcels_is_refused(sc: Scenario) -> None:
    """Regression: a merge took BW-P2 from BW-EXP into BW-MINE's custody without a transfer."""
    sc.seal("BW", sc.transfer("BW", "BW-P2", "BW-EXP"))
    exc = refuse(
        sc,
        "BW",
        sc.merge("BW", ["BW-P1", "BW-P2"], "BW-M1", "BW-MINE"),
        error=CustodyConflict,
        field="body.parents[1]",
        match="held by BW-EXP, not BW-MINE",
    )
    assert exc.rule == "1"
    assert parcel(sc, "BW-P2").custodian == "BW-EXP"
    # after a transfer the same merge is one custodian's assortment
    sc.seal("BW", sc.transfer("BW", "BW-P2", "BW-MINE"))
    sc.seal("BW", sc.merge("BW", ["BW-P1", "BW-P2"], "BW-M1", "BW-MINE"))
    assert parcel(sc, "BW-M1").custodian == "BW-MINE"


# =========================================================================== production date


def test_production_dated_after_the_block_is_refused(sc: Scenario) -> None:
    tomorrow = (sc.clock.date() + timedelta(days=1)).isoformat()
    body = sc.clear_body(sc.register("BW", "BW-P9", "BW-MINE", 100, 100))
    body["produced"] = tomorrow
    exc = refuse(
        sc,
        "BW",
        sc.record("BW", Kind.PARCEL_REGISTER, body),
        error=FutureDated,
        field="body.produced",
        match=f"produced {tomorrow}, after the block's date",
    )
    assert exc.rule == "time"
    body["produced"] = sc.clock.date().isoformat()  # today, and any earlier day, is fine
    sc.seal("BW", sc.record("BW", Kind.PARCEL_REGISTER, body))
    assert parcel(sc, "BW-P9").weight == 100


# =========================================================================== rule 5: night batches


def test_rule5_issue_date_up_to_the_network_backdate(sc: Scenario) -> None:
    today = sc.clock.date()
    assert sc.net.registry.params.issue_backdate_days == 3
    refuse(
        sc,
        "BW",
        sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"], issued=str(today - timedelta(4))),
        error=CertificateInvalid,
        field="body.issued",
        match="more than 3 days before the record's date",
    )
    refuse(
        sc,
        "BW",
        sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"], issued=str(today + timedelta(1))),
        error=CertificateInvalid,
        field="body.issued",
        match="after the record's date",
    )
    three_back = today - timedelta(3)
    sc.seal(
        "BW",
        sc.issue(
            "BW",
            "BW-C1",
            "EU",
            "BW-MINE",
            ["BW-P1"],
            issued=str(three_back),
            expires=str(three_back + timedelta(30)),
        ),
    )
    c = cert(sc, "BW-C1")
    assert (c.issued, c.expires) == (str(three_back), str(three_back + timedelta(30)))
    # validity still counts from the issue date: backdating never lengthens it
    refuse(
        sc,
        "BW",
        sc.issue(
            "BW",
            "BW-C2",
            "EU",
            "BW-MINE",
            ["BW-P2"],
            issued=str(three_back),
            expires=str(three_back + timedelta(61)),
        ),
        error=CertificateInvalid,
        field="body.expires",
    )


def test_rule5_a_backdated_certificate_is_not_recorded_already_expired(sc: Scenario) -> None:
    # issued two days back and valid one day: it would reach the ledger expired, its
    # parcels in transit until a void, with no confirmation possible
    today = sc.clock.date()
    two_back = today - timedelta(2)
    refuse(
        sc,
        "BW",
        sc.issue(
            "BW",
            "BW-C1",
            "EU",
            "BW-MINE",
            ["BW-P1"],
            issued=str(two_back),
            expires=str(two_back + timedelta(1)),
        ),
        error=CertificateInvalid,
        field="body.expires",
        match=f"expires {two_back + timedelta(1)}, before the record's date {today}",
    )
    # expiring on the record's own date is still a day to confirm it
    sc.seal(
        "BW",
        sc.issue(
            "BW",
            "BW-C1",
            "EU",
            "BW-MINE",
            ["BW-P1"],
            issued=str(two_back),
            expires=str(today),
        ),
    )
    assert cert(sc, "BW-C1").expires == str(today)


def test_rule5_backdate_comes_from_the_registry() -> None:
    sc = Scenario(Network.create(params=Params(issue_backdate_days=0)))
    assert b'"issue_backdate_days":0' in sc.net.registry.body_bytes
    sc.seal("BW", sc.party("BW", "BW-MINE", "miner"), sc.register("BW", "BW-P1", "BW-MINE", 1, 1))
    yesterday = str(sc.clock.date() - timedelta(1))
    refuse(
        sc,
        "BW",
        sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"], issued=yesterday),
        error=CertificateInvalid,
        field="body.issued",
        match="more than 0 days",
    )
    assert_replays(sc)


def test_registry_without_backdate_keeps_its_bytes() -> None:
    """A registry written before the parameter existed parses to the default, unchanged."""
    net = Network.create()
    assert b"issue_backdate_days" not in net.registry.body_bytes
    assert net.registry.params.issue_backdate_days == 3


# =========================================================================== rule 6: refusals


@pytest.fixture
def issued(sc: Scenario) -> Scenario:
    """BW has issued BW-C1 to EU for BW-P1 (100 ct), valid 30 days."""
    sc.seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"]))
    return sc


def test_refusal_returns_the_parcels_to_the_exporter(issued: Scenario) -> None:
    sc = issued
    sc.seal("EU", sc.refuse("EU", "BW-C1", "seal-broken", "container seal SEAL-BW-C1 broken"))
    c = cert(sc, "BW-C1")
    assert c.status is CertificateStatus.REFUSED
    assert c.closed_ref is not None
    assert c.closed_ref.chain == "EU"
    assert c.received is None
    p = parcel(sc, "BW-P1")
    assert (p.chain, p.custodian, p.status) == ("BW", "BW-MINE", ParcelStatus.ACTIVE)
    assert sc.ledger.state.confirmation_index("EU", "BW-C1") == c.closed_ref.index
    events = [e.kind for e in sc.ledger.state.events if e.parcel == "BW-P1"]
    assert events[-1] == Kind.CERTIFICATE_REFUSE.value
    # the importer can neither confirm nor refuse it again
    refuse(
        sc,
        "EU",
        sc.record("EU", Kind.CERTIFICATE_CONFIRM, sc.confirm("EU", "BW-C1", "EU-IMP").body_json),
        error=ConfirmationInvalid,
        field="body.number",
        match="already refused",
    )
    refuse(
        sc,
        "EU",
        sc.refuse("EU", "BW-C1", "other"),
        error=RefusalInvalid,
        field="body.number",
        match="already refused",
    )
    # the exporter holds the parcel again: it can ship it elsewhere
    sc.seal("BW", sc.transfer("BW", "BW-P1", "BW-EXP"))
    ship(sc, "BW", "BW-C2", "AE", "BW-EXP", ["BW-P1"], "AE-HUB")
    assert parcel(sc, "BW-P1").chain == "AE"


def test_refusal_settles_the_void_race(issued: Scenario) -> None:
    """A refusal closes the certificate like a confirmation: no void after it."""
    sc = issued
    sc.seal("EU", sc.refuse("EU", "BW-C1", "documents", "importer unknown at the address"))
    sc.tick(31 * DAY)
    sc.seal("EU")
    head = sc.ledger.state.head("EU")
    assert head is not None
    refuse(
        sc,
        "BW",
        sc.void("BW", "BW-C1", head.height),
        error=VoidInvalid,
        field="body.number",
        match="already refused",
    )


def test_refusal_after_expiry_is_refused(issued: Scenario) -> None:
    sc = issued
    sc.tick(31 * DAY)
    refuse(
        sc,
        "EU",
        sc.refuse("EU", "BW-C1", "documents"),
        error=RefusalInvalid,
        field="body.number",
        match="expired on",
    )


def test_only_the_destination_refuses(issued: Scenario) -> None:
    sc = issued
    refuse(
        sc,
        "AE",
        sc.refuse("AE", "BW-C1", "documents"),
        error=RefusalInvalid,
        field="body.number",
        match="is for EU, not AE",
    )


def test_refusal_names_the_exact_issue_record(issued: Scenario) -> None:
    sc = issued
    body = sc.refuse("EU", "BW-C1", "documents").body_json
    body["ref"]["index"] += 1
    refuse(
        sc,
        "EU",
        sc.record("EU", Kind.CERTIFICATE_REFUSE, body),
        error=RefusalInvalid,
        field="body.ref",
    )


def test_refusal_after_a_confirmation_is_refused(issued: Scenario) -> None:
    sc = issued
    refusal = sc.refuse("EU", "BW-C1", "documents")
    sc.seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP"))
    refuse(sc, "EU", refusal, error=RefusalInvalid, field="body.number", match="confirmed")


def test_refusal_code_must_be_known(issued: Scenario) -> None:
    assert {"restricted-origin", "documents", "seal-broken", "weight-discrepancy", "other"} == (
        REFUSAL_CODES
    )
    body = issued.refuse("EU", "BW-C1", "documents").body_json
    body["code"] = "bored"
    with pytest.raises(SchemaError, match="must be one of") as info:
        issued.record("EU", Kind.CERTIFICATE_REFUSE, body)
    assert info.value.field == "body.code"


def test_rule9_refusal_of_a_restricted_origin(sc: Scenario) -> None:
    """EU refuses a Dubai shipment holding Russian-origin rough; the parcels go back to AE."""
    ship(sc, "RU", "RU-C1", "AE", "RU-MINE", ["RU-P1"], "AE-HUB")
    ship(sc, "BW", "BW-C1", "AE", "BW-MINE", ["BW-P1"], "AE-HUB")
    sc.seal("AE", sc.merge("AE", ["RU-P1", "BW-P1"], "AE-M1", "AE-HUB"))
    sc.seal("AE", sc.issue("AE", "AE-C1", "EU", "AE-HUB", ["AE-M1"]))
    # a restricted-origin refusal needs a restriction that the shipment hits
    refuse(
        sc,
        "EU",
        sc.refuse("EU", "AE-C1", "restricted-origin"),
        error=RefusalInvalid,
        field="body.code",
        match="holds an origin EU restricts",
    )
    sc.seal("EU", sc.restrict("EU", "RU"))
    sc.seal("EU", sc.refuse("EU", "AE-C1", "restricted-origin", "holds Russian-origin rough"))
    assert cert(sc, "AE-C1").status is CertificateStatus.REFUSED
    p = parcel(sc, "AE-M1")
    assert (p.chain, p.custodian, p.status) == ("AE", "AE-HUB", ParcelStatus.ACTIVE)


def test_a_returned_parcel_needs_a_block_witnessing_the_refusal(issued: Scenario) -> None:
    """Determinism: the exporter may act on a returned parcel only in a block that
    witnesses the refusal, whatever the verifying node already holds."""
    sc = issued
    eu_before = sc.ledger.state.head("EU")
    assert eu_before is not None
    sc.seal("EU", sc.refuse("EU", "BW-C1", "documents"))
    transfer = sc.transfer("BW", "BW-P1", "BW-EXP")
    state = sc.ledger.state
    prev = state.head("BW")
    witness = [
        WitnessRef(h.chain, h.height, h.hash)
        for c in sc.net.registry.chains
        if c not in ("BW", "EU") and (h := state.head(c)) is not None
    ] + [WitnessRef("EU", eu_before.height, eu_before.hash)]
    block, _ = seal(
        signer=sc.net.signer("BW"),
        network=sc.net.network_id,
        chain="BW",
        prev=prev,
        frontier=state.frontier("BW"),
        records=[transfer],
        time=sc.tick(),
        witness=sorted(witness, key=lambda w: w.chain),
    )
    with pytest.raises(WitnessInvalid, match="which the block does not witness") as info:
        sc.ledger.append(block)
    assert info.value.field == "records[0].body.parcel"
    # the record itself, judged with a view that lacks the refusal
    ctx = context(sc, "BW", sc.now())
    blind = dict(ctx.witness)
    blind["EU"] = eu_before
    layer = State(base=state)
    with pytest.raises(WitnessInvalid):
        apply_record(
            layer,
            transfer,
            state.frontier("BW").size,
            type(ctx)(ctx.registry, "BW", ctx.height, ctx.time, blind),
        )
    # with the refusal witnessed, the same act is fine
    sc.seal("BW", transfer)
    assert parcel(sc, "BW-P1").custodian == "BW-EXP"


# =========================================================================== rule 6: releases


def test_release_of_goods_held_on_a_discrepancy(issued: Scenario) -> None:
    sc = issued
    sc.seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP", {"BW-P1": 9_000}))
    assert cert(sc, "BW-C1").status is CertificateStatus.DISCREPANCY
    assert parcel(sc, "BW-P1").status is ParcelStatus.HELD
    refuse(
        sc,
        "EU",
        sc.transfer("EU", "BW-P1", "EU-B"),
        error=AlreadySpent,
        field="body.parcel",
        match="held",
    )
    refuse(
        sc,
        "BW",
        sc.release("BW", "BW-P1"),
        error=WrongJurisdiction,
        field="body.parcel",
    )
    sc.seal("EU", sc.release("EU", "BW-P1", "re-weighed at 90.00 ct; the exporter agrees"))
    p = parcel(sc, "BW-P1")
    assert (p.chain, p.custodian, p.status, p.certificate) == (
        "EU",
        "EU-IMP",
        ParcelStatus.ACTIVE,
        None,
    )
    assert cert(sc, "BW-C1").status is CertificateStatus.DISCREPANCY  # the finding stays
    refuse(
        sc,
        "EU",
        sc.release("EU", "BW-P1"),
        error=ReleaseInvalid,
        field="body.parcel",
        match="is active, not held",
    )
    sc.seal("EU", sc.transfer("EU", "BW-P1", "EU-B"))


def test_release_of_an_unknown_parcel(sc: Scenario) -> None:
    refuse(sc, "EU", sc.release("EU", "EU-NOPE"), error=UnknownReference, field="body.parcel")


def test_refusal_and_release_records_parse() -> None:
    sc = Scenario(Network.create())
    r = sc.release("EU", "EU-P1", "ok")
    assert r.kind is Kind.PARCEL_RELEASE
    with pytest.raises(SchemaError):
        sc.record("EU", Kind.PARCEL_RELEASE, {"parcel": "EU-P1"})
