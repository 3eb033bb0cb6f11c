"""The artisanal chain: record bodies, and the internal controls computed from it.

Bodies of the artisanal kinds (``claim.register``, ``licence.digger``,
``licence.buyer``, ``licence.end``, ``parcel.purchase``, ``diagnostic.assess``)
are built here for every writer (officer commands, the demo, the benchmark,
the tests), so that one spelling of each exists.

The internal controls a producing authority keeps over artisanal production
(DOMAIN.md, "Artisanal and alluvial production") are pure functions of a few
totals the store adds up for one producer and period (``Totals``):

- ``traceable``: the share of exported carats that trace back to registered claims;
- ``licensed``: the share of recorded production bought by licensed buyers
  (first sales) rather than registered otherwise;
- ``surplus``: exports above recorded production plus imports (stones
  smuggled in from a neighbour show up this way);
- ``price_ratio``: the mean price per carat at first sale against the export
  price per carat (the fair-price concern), suppressed when fewer than
  ``MIN_CELL`` purchases make the cell (no single purchase may be exposed).

Shares are returned in parts per million (integers: the same figure on every
node, no float rounding) and as None when their denominator is zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kpledger.ledger.errors import SchemaError
from kpledger.ledger.records import SCORE_MAX
from kpledger.ledger.schema import INDICATOR, Fields

__all__ = [
    "MIN_CELL",
    "PPM",
    "MEASURES",
    "Controls",
    "Indicator",
    "Totals",
    "assessment_body",
    "buyer_licence_body",
    "claim_body",
    "controls",
    "digger_licence_body",
    "end_body",
    "parse_indicators",
    "price_cell",
    "purchase_body",
    "share",
    "traced_carats",
]

#: a statistic over purchases is shown only when at least this many purchases make it
MIN_CELL = 3
#: shares are in parts per million
PPM = 1_000_000


def claim_body(
    claim: str,
    holder: str,
    zone: str,
    location: Sequence[tuple[int, int]],
    valid_from: str,
    valid_until: str,
) -> dict[str, Any]:
    """A ``claim.register`` body; ``location`` is one point or a polygon, in microdegrees."""
    return {
        "claim": claim,
        "holder": holder,
        "zone": zone,
        "location": [{"lat": lat, "lon": lon} for lat, lon in location],
        "valid_from": valid_from,
        "valid_until": valid_until,
    }


def digger_licence_body(
    licence: str,
    holder: str,
    claim: str,
    valid_from: str,
    valid_until: str,
    *,
    type: str = "digger",
) -> dict[str, Any]:
    return {
        "licence": licence,
        "holder": holder,
        "type": type,
        "claim": claim,
        "valid_from": valid_from,
        "valid_until": valid_until,
    }


def buyer_licence_body(
    licence: str,
    party: str,
    zones: Sequence[str],
    valid_from: str,
    valid_until: str,
    *,
    type: str = "collector",
) -> dict[str, Any]:
    return {
        "licence": licence,
        "party": party,
        "type": type,
        "zones": list(zones),
        "valid_from": valid_from,
        "valid_until": valid_until,
    }


def end_body(licence: str, reason: str, date: str, note: str) -> dict[str, Any]:
    return {"licence": licence, "reason": reason, "date": date, "note": note}


def purchase_body(  # noqa: PLR0913 - one argument per field of a first sale
    parcel: str,
    buyer: str,
    digger: str,
    claim: str,
    weight: int,
    price: int,
    bought: str,
    *,
    method: str = "alluvial",
    hs: str = "7102.31",
) -> dict[str, Any]:
    return {
        "parcel": parcel,
        "buyer": buyer,
        "digger": digger,
        "claim": claim,
        "method": method,
        "weight": weight,
        "price": price,
        "hs": hs,
        "bought": bought,
    }


def assessment_body(indicator: str, score: int, evidence: str, assessed: str) -> dict[str, Any]:
    return {"indicator": indicator, "score": score, "evidence": evidence, "assessed": assessed}


# ------------------------------------------------------------------ internal controls


@dataclass(frozen=True)
class Totals:
    """What the store adds up for one producer and period (weights in hundredths of a carat).

    ``purchased``: carats of first sales; ``registered``: carats of production
    registered otherwise (``parcel.register`` at a mine); ``imported``: carats
    received on confirmed imports; ``exported``: carats on certificates issued
    (not voided or refused); ``exported_traced``: the part of those carats whose
    origin composition traces to registered claims; ``export_value``: the cents
    of those certificates; ``purchases``: the number of first sales and
    ``purchase_value`` their cents.
    """

    purchased: int
    registered: int
    imported: int
    exported: int
    exported_traced: int
    export_value: int
    purchases: int
    purchase_value: int


@dataclass(frozen=True)
class Controls:
    """The internal-control indicators of one producer and period."""

    traceable_ppm: int | None
    licensed_ppm: int | None
    surplus: int
    first_sale_cents_per_carat: int | None
    export_cents_per_carat: int | None
    price_ratio_ppm: int | None
    suppressed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "traceable_ppm": self.traceable_ppm,
            "licensed_ppm": self.licensed_ppm,
            "surplus": self.surplus,
            "first_sale_cents_per_carat": self.first_sale_cents_per_carat,
            "export_cents_per_carat": self.export_cents_per_carat,
            "price_ratio_ppm": self.price_ratio_ppm,
            "suppressed": self.suppressed,
        }


def share(part: int, whole: int) -> int | None:
    """``part`` of ``whole`` in parts per million, rounded down; None when ``whole`` is 0."""
    if whole <= 0:
        return None
    return part * PPM // whole


def price_cell(count: int, cents: int, weight: int) -> int | None:
    """Cents per carat over ``count`` purchases, or None when the cell is too small to show.

    ``weight`` is in hundredths of a carat. A cell of fewer than ``MIN_CELL``
    purchases (or no weight) is suppressed: a reader could tell one seller's price.
    """
    if count < MIN_CELL or weight <= 0:
        return None
    return cents * 100 // weight


def controls(t: Totals) -> Controls:
    """The indicators of ``t``'s producer and period."""
    produced = t.purchased + t.registered
    first = price_cell(t.purchases, t.purchase_value, t.purchased)
    export = t.export_value * 100 // t.exported if t.exported > 0 else None
    ratio = None if first is None or not export else first * PPM // export
    return Controls(
        traceable_ppm=share(t.exported_traced, t.exported),
        licensed_ppm=share(t.purchased, produced),
        surplus=max(0, t.exported - produced - t.imported),
        first_sale_cents_per_carat=first,
        export_cents_per_carat=export,
        price_ratio_ppm=ratio,
        suppressed=first is None and t.purchases > 0,
    )


def traced_carats(origin: Mapping[str, int], claims: Mapping[str, int], producer: str) -> int:
    """Of a parcel, the carats of ``producer``'s origin that trace to registered claims."""
    return min(origin.get(producer, 0), sum(claims.values()))


# ------------------------------------------------------------------ the indicator list

#: the ledger-computed indicators an indicator of the list may be shown beside
MEASURES = frozenset({"traceable_ppm", "licensed_ppm", "surplus", "price_ratio_ppm"})


@dataclass(frozen=True)
class Indicator:
    """One indicator of the network's diagnostic list: its id (the records' ``indicator``),
    topic, wording, the top of its scale, and the computed measure shown beside it."""

    id: str
    topic: str
    title: str
    scale: int
    measure: str | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "topic": self.topic,
            "title": self.title,
            "scale": self.scale,
        }
        if self.measure is not None:
            out["measure"] = self.measure
        return out


def parse_indicators(doc: object) -> tuple[Indicator, ...]:
    """The indicator list of a network: ``{"indicators": [{"id", "topic", "title", "scale",
    "measure"?}, ...]}`` (``about`` may say what it is); ``SchemaError`` names what is wrong."""
    f = Fields(doc)
    if f.has("about"):
        f.string("about", max_len=2000)
    out: list[Indicator] = []
    for path, item in f.items("indicators", low=1, high=500):
        x = Fields(item, path)
        measure = x.optional_string("measure", max_len=32)
        if measure is not None and measure not in MEASURES:
            raise SchemaError(f"must be one of {sorted(MEASURES)}", field=x.path("measure"))
        out.append(
            Indicator(
                x.string("id", pattern=INDICATOR, max_len=64),
                x.string("topic", max_len=100),
                x.string("title", max_len=300),
                x.integer("scale", low=1, high=SCORE_MAX),
                measure,
            )
        )
        x.done()
    f.done()
    ids = [i.id for i in out]
    if len(set(ids)) != len(ids):
        raise SchemaError("an indicator id appears twice", field="indicators")
    return tuple(out)
