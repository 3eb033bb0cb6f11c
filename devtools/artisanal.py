"""Artisanal chains for tests, examples and benchmarks: a story built case by case, and
a stream of many small first sales merged into export lots.

``sierra_leone`` writes, through any ``seal(chain, *records)`` (an in-memory
``Scenario`` alone, or one that also applies each block to a store), Sierra Leone's
registries, six first sales, a revocation, a self-assessment and an export lot
shipped to the EU; ``smuggling`` adds the cases of the internal controls (a
back-dated registration exported, an import). The figures are the tests' expected
values (tests/store/test_store_artisanal.py).

``purchase_stream`` yields blocks of first sales of 0.1-5 ct, each lot of
``lot_size`` purchases merged into one export lot (the benchmark's workload).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from kpledger.devtools.workload import Scenario
from kpledger.ledger.artisanal import (
    assessment_body,
    buyer_licence_body,
    claim_body,
    digger_licence_body,
    end_body,
    purchase_body,
)
from kpledger.ledger.records import Kind, Record

__all__ = ["Sealer", "purchase_stream", "registries", "sierra_leone", "smuggling"]

Sealer = Callable[..., Any]
"""``seal(chain, *records)``: seal the records as one block of ``chain``."""


def _sl(sc: Scenario, kind: Kind, body: dict[str, Any]) -> Record:
    return sc.record("SL", kind, body)


def sierra_leone(sc: Scenario, seal: Sealer) -> None:
    """Two claims (Kono, Kenema), three diggers (one cooperative), a collector; four
    first sales (8.85 ct, 2,590 USD), a digger's licence revoked after its sales, one
    self-assessment; the sales merged into lot SL-LOT1, exported to the EU under
    SL-2026-1 and confirmed. Needs authorities SL and EU."""
    seal(
        "SL",
        sc.party("SL", "SL-COLL", "trader"),
        sc.party("SL", "SL-EXP", "exporter"),
        _sl(
            sc,
            Kind.CLAIM_REGISTER,
            claim_body(
                "SL-C1", "Koidu", "SL-KONO", [(8_650_000, -10_970_000)], "2026-01-01", "2026-12-31"
            ),
        ),
        _sl(
            sc,
            Kind.CLAIM_REGISTER,
            claim_body(
                "SL-C2",
                "Tongo",
                "SL-KENEMA",
                [(8_200_000, -11_070_000), (8_210_000, -11_060_000), (8_190_000, -11_050_000)],
                "2026-01-01",
                "2026-12-31",
            ),
        ),
        _sl(
            sc,
            Kind.LICENCE_DIGGER,
            digger_licence_body("SL-D1", "A", "SL-C1", "2026-01-01", "2026-12-31"),
        ),
        _sl(
            sc,
            Kind.LICENCE_DIGGER,
            digger_licence_body("SL-D2", "B", "SL-C1", "2026-01-01", "2026-12-31"),
        ),
        _sl(
            sc,
            Kind.LICENCE_DIGGER,
            digger_licence_body(
                "SL-D3", "C", "SL-C2", "2026-01-01", "2026-12-31", type="cooperative"
            ),
        ),
        _sl(
            sc,
            Kind.LICENCE_BUYER,
            buyer_licence_body(
                "SL-B1", "SL-COLL", ["SL-KONO", "SL-KENEMA"], "2026-01-01", "2026-12-31"
            ),
        ),
    )
    sales = [
        ("SL-A1", "SL-D1", "SL-C1", 120, 30_000),
        ("SL-A2", "SL-D2", "SL-C1", 250, 70_000),
        ("SL-A3", "SL-D3", "SL-C2", 480, 150_000),
        ("SL-A4", "SL-D3", "SL-C2", 35, 9_000),
    ]
    seal(
        "SL",
        *(
            _sl(sc, Kind.PARCEL_PURCHASE, purchase_body(p, "SL-B1", d, c, w, v, "2026-03-01"))
            for p, d, c, w, v in sales
        ),
    )
    seal(
        "SL", _sl(sc, Kind.LICENCE_END, end_body("SL-D2", "revoked", "2026-03-02", "sold outside"))
    )
    seal(
        "SL",
        _sl(
            sc,
            Kind.DIAGNOSTIC_ASSESS,
            assessment_body(
                "formalisation.claim_registry", 2, "claims register kept", "2026-03-01"
            ),
        ),
    )
    seal("SL", sc.merge("SL", ["SL-A1", "SL-A2", "SL-A3", "SL-A4"], "SL-LOT1", "SL-COLL"))
    seal("SL", sc.transfer("SL", "SL-LOT1", "SL-EXP"))
    seal("EU", sc.party("EU", "EU-IMP", "importer"))
    seal("SL", sc.issue("SL", "SL-2026-1", "EU", "SL-EXP", ["SL-LOT1"]))
    seal("EU", sc.confirm("EU", "SL-2026-1", "EU-IMP"))


def smuggling(sc: Scenario, seal: Sealer) -> None:
    """After ``sierra_leone``, the cases of the internal controls in 2026-Q1: a fifth first
    sale (artisanal, 1.00 ct, 500 USD) kept; 20.00 ct registered at a "mine" with a
    production date back in 2025 and exported under SL-2026-2; 3.00 ct imported from
    Botswana (BW-2026-1). Needs authority BW too."""
    seal(
        "SL",
        sc.party("SL", "SL-MINE", "miner"),
        _sl(
            sc,
            Kind.PARCEL_PURCHASE,
            purchase_body(
                "SL-A5", "SL-B1", "SL-D1", "SL-C1", 100, 50_000, "2026-03-01", method="artisanal"
            ),
        ),
        _sl(
            sc,
            Kind.PARCEL_REGISTER,
            {
                "parcel": "SL-P1",
                "custodian": "SL-MINE",
                "weight": 2_000,
                "value": 400_000,
                "hs": "7102.31",
                "mine": "Koidu pit",
                "produced": "2025-12-20",
            },
        ),
    )
    seal("SL", sc.transfer("SL", "SL-P1", "SL-EXP"))
    seal("SL", sc.issue("SL", "SL-2026-2", "EU", "SL-EXP", ["SL-P1"]))
    seal("EU", sc.confirm("EU", "SL-2026-2", "EU-IMP"))
    seal(
        "BW",
        sc.party("BW", "BW-EXP", "exporter"),
        sc.register("BW", "BW-P1", "BW-EXP", 300, 39_000),
    )
    seal("BW", sc.issue("BW", "BW-2026-1", "SL", "BW-EXP", ["BW-P1"]))
    seal("SL", sc.confirm("SL", "BW-2026-1", "SL-COLL"))


# ------------------------------------------------------------------ many small first sales


def registries(sc: Scenario, chain: str, claims: int, start: str, end: str) -> list[Record]:
    """A collector (party and licence for zone ``<chain>-Z1``), ``claims`` claims in that
    zone and one digger per claim; ids ``<chain>-C<i>`` and ``<chain>-D<i>``."""
    zone = f"{chain}-Z1"
    out = [
        sc.party(chain, f"{chain}-COLL", "trader"),
    ]
    for i in range(claims):
        out.append(
            sc.record(
                chain,
                Kind.CLAIM_REGISTER,
                claim_body(
                    f"{chain}-C{i}", f"holder {i}", zone, [(8_000_000 + i, -11_000_000)], start, end
                ),
            )
        )
        out.append(
            sc.record(
                chain,
                Kind.LICENCE_DIGGER,
                digger_licence_body(f"{chain}-D{i}", f"digger {i}", f"{chain}-C{i}", start, end),
            )
        )
    out.append(
        sc.record(
            chain,
            Kind.LICENCE_BUYER,
            buyer_licence_body(f"{chain}-B1", f"{chain}-COLL", [zone], start, end),
        )
    )
    return out


def purchase_stream(
    sc: Scenario, chain: str, total: int, *, claims: int, lot_size: int, day: str, seed: int = 1
) -> Iterator[list[Record]]:
    """Blocks of ``lot_size`` first sales of 0.10-5.00 ct (at about 30-300 USD/ct, as
    artisanal first sales go) followed by the merge of the lot: ``total`` purchases in all."""
    rng = random.Random(seed)  # noqa: S311 - reproducible workload, not security
    made = lot = 0
    while made < total:
        n = min(lot_size, total - made)
        block: list[Record] = []
        parents: list[str] = []
        weights = prices = 0
        for _ in range(n):
            made += 1
            i = rng.randrange(claims)
            weight = rng.randint(10, 500)
            price = weight * rng.randint(30, 300)
            pid = f"{chain}-A{made}"
            parents.append(pid)
            weights += weight
            prices += price
            body = purchase_body(
                pid, f"{chain}-B1", f"{chain}-D{i}", f"{chain}-C{i}", weight, price, day
            )
            block.append(sc.record(chain, Kind.PARCEL_PURCHASE, body))
        if len(parents) >= 2:
            lot += 1
            block.append(
                sc.merge(chain, parents, f"{chain}-LOT{lot}", f"{chain}-COLL", weights, prices)
            )
        yield block
