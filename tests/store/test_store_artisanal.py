"""The artisanal chain in the store: an export lot of first sales traced to its claims in
the lineage and in a bundle verified offline, and the derived tables a replay rebuilds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from kpledger.devtools import artisanal as story
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.artisanal import (
    Totals,
    buyer_licence_body,
    claim_body,
    digger_licence_body,
    purchase_body,
)
from kpledger.ledger.blocks import Block
from kpledger.ledger.bundle import check_bundle, serialize_bundle, verify_bundle
from kpledger.ledger.records import Kind, Record
from kpledger.ledger.store import Store
from kpledger.ledger.store import engine as store_engine
from kpledger.ledger.store.audit import parse_period
from kpledger.ledger.store.bundles import build_bundle
from kpledger.ledger.store.engine import make_engine, schema_revision, upgrade

Opener = Callable[..., Store]
MIGRATIONS = Path(store_engine.__file__).with_name("migrations")


class Story:
    """Sierra Leone's artisanal chain, every block also applied, fully verified, to a store."""

    def __init__(self, open_store: Opener) -> None:
        self.net = Network.create(("SL", "EU", "BW"), ("WDC",))
        self.sc = Scenario(self.net)
        self.store = open_store(self.net.registry)

    def seal(self, chain: str, *records: Record) -> Block:
        block = self.sc.seal(chain, *records)
        self.store.writer.apply(block)
        return block

    def rec(self, kind: Kind, body: dict[str, Any]) -> Record:
        return self.sc.record("SL", kind, body)

    def checkpoint(self) -> None:
        for chain in self.net.registry.authorities:
            self.seal(chain)


def sierra_leone(open_store: Opener) -> Story:
    """``devtools.artisanal.sierra_leone``, and heartbeats so bundles are cosigned."""
    s = Story(open_store)
    story.sierra_leone(s.sc, s.seal)
    s.checkpoint()
    s.checkpoint()
    return s


def test_an_export_lot_is_traced_to_its_claims_in_lineage_and_bundle(open_store: Opener) -> None:
    s = sierra_leone(open_store)
    lot = s.store.parcel("SL-LOT1")
    assert lot is not None
    assert lot.chain == "EU"
    assert dict(lot.claims) == {"SL-C1": 370, "SL-C2": 515}
    assert {e.parent for e in s.store.lineage.ancestry("SL-LOT1")} == {
        "SL-A1",
        "SL-A2",
        "SL-A3",
        "SL-A4",
    }
    doc = build_bundle(s.store, "SL-LOT1")
    kinds = sorted({r["record"]["kind"] for r in doc["records"]})
    assert {"claim.register", "licence.digger", "licence.buyer", "licence.end"} <= set(kinds)
    assert "diagnostic.assess" not in kinds  # nothing the lineage needs
    verdict = verify_bundle(serialize_bundle(doc), registry=s.store.registry, parcel="SL-LOT1")
    assert dict(verdict.claims) == {"SL-C1": 370, "SL-C2": 515}
    assert verdict.to_json()["claims"] == {"SL-C1": 370, "SL-C2": 515}
    assert sorted((x.parcel, x.mine, x.produced) for x in verdict.sources) == [
        ("SL-A1", "SL-C1", "2026-03-01"),
        ("SL-A2", "SL-C1", "2026-03-01"),
        ("SL-A3", "SL-C2", "2026-03-01"),
        ("SL-A4", "SL-C2", "2026-03-01"),
    ]
    assert [c.number for c in verdict.certificates] == ["SL-2026-1"]


def test_a_bundle_without_the_claim_record_does_not_verify(open_store: Opener) -> None:
    s = sierra_leone(open_store)
    doc = build_bundle(s.store, "SL-LOT1")
    doc["records"] = [r for r in doc["records"] if r["record"]["kind"] != "claim.register"]
    result = check_bundle(serialize_bundle(doc), registry=s.store.registry)
    assert not result.ok
    assert result.error is not None
    assert result.step == "replay"
    assert "rule A4: SL-C1 is not a claim registered by SL" in result.error


def test_the_derived_tables_replay(open_store: Opener) -> None:
    s = sierra_leone(open_store)
    report = s.store.verifier.verify()
    assert report.tables["licences"] == 6
    assert report.tables["purchases"] == 4
    assert report.tables["assessments"] == 1
    ended = s.store.licence("SL-D2")
    assert ended is not None
    assert (ended.ended, ended.end_reason) == ("2026-03-02", "revoked")
    claim = s.store.licence("SL-C2")
    assert claim is not None
    assert len(claim.location) == 3


# ------------------------------------------------------------------ internal controls


def with_smuggling(open_store: Opener) -> Story:
    """The story above and ``devtools.artisanal.smuggling``: case by case in
    2026-Q1, a fifth first sale (artisanal, 1.00 ct for 500 USD) kept; 20.00 ct
    registered at a "mine" produced 2025-12-20 (back-dated) and exported; BW's 3.00 ct
    imported."""
    s = sierra_leone(open_store)
    story.smuggling(s.sc, s.seal)
    s.checkpoint()
    return s


def test_internal_controls_of_a_quarter(open_store: Opener) -> None:
    s = with_smuggling(open_store)
    q1 = s.store.audit.statistics(parse_period("2026-Q1"))
    (row,) = q1.controls
    assert row.participant == "SL"
    # first sales 1.20 + 2.50 + 4.80 + 0.35 + 1.00 ct; mine output dated 2025; 3.00 ct in
    assert row.totals == Totals(
        purchased=985,
        registered=0,
        imported=300,
        exported=885 + 2_000,
        exported_traced=885,
        export_value=259_000 + 400_000,
        purchases=5,
        purchase_value=259_000 + 50_000,
    )
    c = row.controls
    assert c.traceable_ppm == 885 * 1_000_000 // 2_885 == 306_759
    assert c.licensed_ppm == 1_000_000  # all of the quarter's production went through first sales
    assert c.surplus == 2_885 - 985 - 300 == 1_600
    assert c.first_sale_cents_per_carat == 309_000 * 100 // 985 == 31_370
    assert c.export_cents_per_carat == 659_000 * 100 // 2_885 == 22_842
    assert c.price_ratio_ppm == 31_370 * 1_000_000 // 22_842
    assert not c.suppressed
    # production by method: the artisanal cell holds one purchase, its price is not shown;
    # nor the alluvial cell's: with SL's published total (5 purchases) it would give it away
    assert [
        (m.participant, m.method, m.carats, m.parcels, m.cents_per_carat) for m in q1.methods
    ] == [
        ("BW", "industrial", 300, 1, None),
        ("SL", "alluvial", 885, 4, None),
        ("SL", "artisanal", 100, 1, None),
    ]
    # the KP production table counts first sales as production
    assert [(p.participant, p.carats, p.parcels) for p in q1.production] == [
        ("BW", 300, 1),
        ("SL", 985, 5),
    ]
    # 2025: the back-dated registration is 2025 production; no first sale yet: no controls
    y2025 = s.store.audit.statistics(parse_period("2025"))
    assert [(m.participant, m.method, m.carats) for m in y2025.methods] == [
        ("SL", "industrial", 2_000)
    ]
    assert y2025.controls == ()


def test_export_surplus_is_a_finding_with_its_certificates(open_store: Opener) -> None:
    s = with_smuggling(open_store)
    found = s.store.audit.findings(parse_period("2026-Q1"))
    (surplus,) = found.export_surplus.items
    assert (surplus.participant, surplus.exported, surplus.produced, surplus.imported) == (
        "SL",
        2_885,
        985,
        300,
    )
    assert surplus.surplus == 1_600
    issued = {s.store.certificate(n).issue_ref.index for n in ("SL-2026-1", "SL-2026-2")}  # type: ignore[union-attr]
    assert {(r.chain, r.index, r.kind) for r in surplus.records} == {
        ("SL", i, "certificate.issue") for i in issued
    }
    assert all(r.height is not None for r in surplus.records)
    # without the back-dated registration's export there is no surplus
    before = s.store.audit.findings(parse_period("2026-Q2"))
    assert before.export_surplus.items == ()


def test_a_price_cell_of_fewer_than_three_purchases_is_suppressed(open_store: Opener) -> None:
    s = Story(open_store)
    s.seal(
        "SL",
        s.sc.party("SL", "SL-COLL", "trader"),
        s.rec(
            Kind.CLAIM_REGISTER,
            claim_body("SL-C1", "K", "SL-KONO", [(1, 1)], "2026-01-01", "2026-12-31"),
        ),
        s.rec(
            Kind.LICENCE_DIGGER,
            digger_licence_body("SL-D1", "A", "SL-C1", "2026-01-01", "2026-12-31"),
        ),
        s.rec(
            Kind.LICENCE_BUYER,
            buyer_licence_body("SL-B1", "SL-COLL", ["SL-KONO"], "2026-01-01", "2026-12-31"),
        ),
        *(
            s.rec(
                Kind.PARCEL_PURCHASE,
                purchase_body(f"SL-A{i}", "SL-B1", "SL-D1", "SL-C1", 100, 10_000 * i, "2026-02-01"),
            )
            for i in (1, 2)
        ),
    )
    q1 = s.store.audit.statistics(parse_period("2026-Q1"))
    (row,) = q1.controls
    # the KP production table withholds the value too: it would be the two prices' sum
    assert [(p.participant, p.carats, p.value) for p in q1.production] == [("SL", 200, None)]
    assert row.controls.first_sale_cents_per_carat is None
    assert row.controls.suppressed
    assert row.controls.price_ratio_ppm is None
    s.seal(
        "SL",
        s.rec(
            Kind.PARCEL_PURCHASE,
            purchase_body("SL-A3", "SL-B1", "SL-D1", "SL-C1", 100, 30_000, "2026-02-01"),
        ),
    )
    q1 = s.store.audit.statistics(parse_period("2026-Q1"))
    (row,) = q1.controls
    assert [(p.participant, p.value) for p in q1.production] == [("SL", 60_000)]
    assert row.controls.first_sale_cents_per_carat == 60_000 * 100 // 300 == 20_000
    assert not row.controls.suppressed


# ------------------------------------------------------------------ the migration


def test_a_store_at_0003_upgrades_and_keeps_its_parcels(store_url: str) -> None:
    """0004_artisanal on a store written before it: the new tables appear, a parcel
    registered before reads with no claims, and the artisanal chain then works."""
    net = Network.create(("SL", "EU", "BW"), ("WDC",))
    sc = Scenario(net)
    first = sc.seal(
        "SL",
        sc.party("SL", "SL-MINE", "miner"),
        sc.register("SL", "SL-OLD", "SL-MINE", 500, 90_000),
    )
    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0003")
        assert schema_revision(engine) == "0003"
        assert "licences" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    upgrade(make_engine(store_url))
    store = Store.open(store_url, net.registry)
    try:
        assert {"licences", "purchases", "assessments"} <= set(
            inspect(store.engine).get_table_names()
        )
        store.writer.apply(first)
        old = store.parcel("SL-OLD")
        assert old is not None
        assert old.claims == ()
        s = Story.__new__(Story)
        s.net, s.sc, s.store = net, sc, store
        story.sierra_leone(sc, s.seal)
        lot = store.parcel("SL-LOT1")
        assert lot is not None
        assert dict(lot.claims) == {"SL-C1": 370, "SL-C2": 515}
    finally:
        store.close()


def test_a_lone_withheld_cell_takes_another_with_it(open_store: Opener) -> None:
    """Secondary suppression: SL's first-sale price over all its purchases is published;
    with one method cell withheld, the smallest shown cell is withheld too."""
    s = Story(open_store)
    s.seal(
        "SL",
        s.sc.party("SL", "SL-COLL", "trader"),
        *story.registries(s.sc, "SL", 1, "2026-01-01", "2026-12-31")[1:],
    )

    def sales(method: str, ids: range) -> None:
        s.seal(
            "SL",
            *(
                s.rec(
                    Kind.PARCEL_PURCHASE,
                    purchase_body(
                        f"SL-A{i}",
                        "SL-B1",
                        "SL-D0",
                        "SL-C0",
                        100,
                        10_000 + i,
                        "2026-02-01",
                        method=method,
                    ),
                )
                for i in ids
            ),
        )

    def cells() -> dict[str, int | None]:
        q1 = s.store.audit.statistics(parse_period("2026-Q1"))
        return {m.method: m.cents_per_carat for m in q1.methods}

    sales("alluvial", range(1, 5))
    assert cells() == {"alluvial": (4 * 10_000 + 10) * 100 // 400}
    sales("artisanal", range(5, 6))
    assert cells() == {"alluvial": None, "artisanal": None}
    sales("artisanal", range(6, 8))
    assert cells() == {
        "alluvial": (4 * 10_000 + 10) * 100 // 400,
        "artisanal": (3 * 10_000 + 18) * 100 // 300,
    }
