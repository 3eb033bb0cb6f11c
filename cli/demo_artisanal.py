"""``kpl demo``'s artisanal chapter: Sierra Leone's claims, diggers, buyer and first sales,
an export lot traced to its claims, and the diagnostic self-assessment.

The chapter is data (``ARTISANAL_STORY``) played by ``cli.story.play`` on an
``ArtisanalStory``: the demo's ``Story`` with builders for the artisanal records,
each composed from ``ledger.artisanal``'s bodies and submitted to SL's operator API
(the EU's for its importer and confirmation). Dates are the day the demo runs:
licences from January 1 of this year to the end of next year, first sales today.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kpledger.cli.story import Call, Story, StoryResult, check, play, step
from kpledger.ledger.artisanal import (
    assessment_body,
    buyer_licence_body,
    claim_body,
    digger_licence_body,
    purchase_body,
)
from kpledger.ledger.records import Kind
from kpledger.node.client import NodeClient
from kpledger.node.local import LocalNetwork

__all__ = ["ARTISANAL_STORY", "LOT", "PRODUCER", "ArtisanalStory", "run_artisanal"]

PRODUCER = "SL"
LOT = "SL-KONO-LOT1"

#: first sales: (parcel, digger licence, claim, carats in hundredths, USD per carat, method)
SALES = (
    ("SL-A1", "SL-D1", "SL-KONO-C1", 120, 150, "alluvial"),
    ("SL-A2", "SL-D1", "SL-KONO-C1", 250, 170, "alluvial"),
    ("SL-A3", "SL-D2", "SL-KONO-C2", 480, 160, "alluvial"),
    ("SL-A4", "SL-D2", "SL-KONO-C2", 35, 120, "artisanal"),
    ("SL-A5", "SL-D2", "SL-KONO-C2", 310, 180, "artisanal"),
    ("SL-A6", "SL-D1", "SL-KONO-C1", 95, 140, "artisanal"),
)


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _window() -> tuple[str, str]:
    year = int(_today()[:4])
    return f"{year}-01-01", f"{year + 1}-12-31"


class ArtisanalStory(Story):
    """The demo's story with builders for the records of the artisanal chain."""

    def claim(self, claim: str, holder: str, zone: str, *points: tuple[int, int]) -> dict[str, Any]:
        body = claim_body(claim, holder, zone, points, *_window())
        return self.record(PRODUCER, Kind.CLAIM_REGISTER, body)

    def digger(self, licence: str, holder: str, claim: str, kind: str) -> dict[str, Any]:
        body = digger_licence_body(licence, holder, claim, *_window(), type=kind)
        return self.record(PRODUCER, Kind.LICENCE_DIGGER, body)

    def buyer(self, licence: str, party: str, *zones: str) -> dict[str, Any]:
        body = buyer_licence_body(licence, party, zones, *_window())
        return self.record(PRODUCER, Kind.LICENCE_BUYER, body)

    def purchase(
        self, parcel: str, digger: str, claim: str, weight: int, usd_per_ct: int, method: str
    ) -> dict[str, Any]:
        body = purchase_body(
            parcel,
            "SL-BL1",
            digger,
            claim,
            weight,
            weight * usd_per_ct,
            _today(),
            method=method,
            hs="7102.31",
        )
        return self.record(PRODUCER, Kind.PARCEL_PURCHASE, body)

    def assess(self, indicator: str, score: int, evidence: str) -> dict[str, Any]:
        body = assessment_body(indicator, score, evidence, _today())
        return self.record(PRODUCER, Kind.DIAGNOSTIC_ASSESS, body)


#: the artisanal chapter of ``kpl demo``, played by ``cli.story.play``
ARTISANAL_STORY = (
    step(
        "a Kono collector and a Freetown exporter licensed",
        "SL",
        Call("party", "SL", "SL-ZWOSS27R", "trader", "Kono diamond collector"),
        Call("party", "SL", "SL-GSFBR2RW", "exporter", "Freetown rough exporter"),
    ),
    step(
        "claims registered: two in Kono (a polygon, a point), one in Tongo",
        "SL",
        Call(
            "claim",
            "SL-KONO-C1",
            "Koidu river claim",
            "SL-KONO",
            (8_650_000, -10_970_000),
            (8_660_000, -10_950_000),
            (8_640_000, -10_940_000),
        ),
        Call("claim", "SL-KONO-C2", "Sewa bank claim", "SL-KONO", (8_600_000, -11_000_000)),
        Call("claim", "SL-TONGO-C1", "Tongo field claim", "SL-KENEMA", (8_200_000, -11_070_000)),
    ),
    step(
        "a digger and a cooperative licensed in Kono, a digger in Tongo; a collector for Kono",
        "SL",
        Call("digger", "SL-D1", "Kono digger", "SL-KONO-C1", "digger"),
        Call("digger", "SL-D2", "Sewa cooperative", "SL-KONO-C2", "cooperative"),
        Call("digger", "SL-D3", "Tongo digger", "SL-TONGO-C1", "digger"),
        Call("buyer", "SL-BL1", "SL-ZWOSS27R", "SL-KONO"),
    ),
    step(
        "six first sales in Kono, 0.35 to 4.80 ct, alluvial and artisanal",
        "SL",
        *(Call("purchase", *sale) for sale in SALES),
    ),
    check(
        "a first sale from Tongo to the Kono collector (dry run)",
        "SL",
        Call("purchase", "SL-A7", "SL-D3", "SL-TONGO-C1", 200, 150, "alluvial"),
        rule="A3",
    ),
    step(
        "the first sales merged into export lot SL-KONO-LOT1",
        "SL",
        Call("merge", "SL", [s[0] for s in SALES], LOT, "SL-ZWOSS27R"),
    ),
    step("the lot sold to the exporter", "SL", Call("transfer", "SL", LOT, "SL-GSFBR2RW")),
    step(
        "an Antwerp importer of artisanal rough licensed",
        "EU",
        Call("party", "EU", "EU-FTSD2H7O", "importer", "Antwerp artisanal rough importer"),
    ),
    step(
        "KP certificate SL-2026-0001 for the lot to the EU",
        "SL",
        Call(
            "issue",
            "SL",
            "SL-2026-0001",
            "EU",
            "SL-GSFBR2RW",
            [LOT],
            "Antwerp artisanal rough importer",
        ),
    ),
    step("Antwerp confirms it", "EU", Call("confirm", "EU", "SL-2026-0001", "EU-FTSD2H7O")),
    step(
        "the diagnostic self-assessment, three indicators",
        "SL",
        Call("assess", "formalisation.claim_registry", 3, "claims of Kono and Kenema mapped"),
        Call("assess", "internal_controls.buyer_licensing", 2, "collectors licensed by district"),
        Call("assess", "fair_prices.price_information", 1, "no public price information yet"),
    ),
)


def run_artisanal(net: LocalNetwork, say: Callable[[str], None]) -> StoryResult:
    """Play the artisanal chapter on the network's SL and EU nodes; tell what the WDC sees."""
    s = ArtisanalStory(
        {c: NodeClient(net.layout.urls[c], net.token(c)) for c in (PRODUCER, "EU")},
        NodeClient(net.layout.urls["WDC"], net.token("WDC", "auditor_token")),
        net.layout.registry.network_id,
        say,
    )
    try:
        result = play(s, ARTISANAL_STORY, StoryResult(LOT), sealed="[green]sealed[/] ")
        s.wait(
            "the WDC to hold the lot in the EU",
            lambda: s.auditor.get(f"/v1/parcels/{LOT}").get("jurisdiction") == "EU",
        )
        lot = s.auditor.get(f"/v1/parcels/{LOT}")
        claims = ", ".join(f"{c} {q / 100:.2f} ct" for c, q in sorted(lot["claims"].items()))
        say(f"WDC: {LOT} in Antwerp came from the claims {claims}")
        stats = s.auditor.get("/v1/stats", period=_today()[:4])
        for m in stats["methods"]:
            if m["participant"] == PRODUCER:
                price = m.get("cents_per_carat")
                shown = "withheld" if price is None else f"{price / 100:,.2f} USD/ct at first sale"
                say(f"WDC: {PRODUCER} {m['method']}: {m['carats'] / 100:.2f} ct, {shown}")
        return result
    finally:
        s.close()
