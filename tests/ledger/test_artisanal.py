"""ledger.artisanal: the internal-control arithmetic, and the indicator list's reader."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from kpledger.ledger.artisanal import (
    MIN_CELL,
    Totals,
    controls,
    parse_indicators,
    price_cell,
    share,
)
from kpledger.ledger.errors import SchemaError


def totals(**kw: int) -> Totals:
    base = {
        "purchased": 0,
        "registered": 0,
        "imported": 0,
        "exported": 0,
        "exported_traced": 0,
        "export_value": 0,
        "purchases": 0,
        "purchase_value": 0,
    }
    return Totals(**{**base, **kw})


def test_shares_are_integer_parts_per_million_rounded_down() -> None:
    assert share(1, 3) == 333_333
    assert share(885, 2_885) == 306_759
    assert share(5, 5) == 1_000_000
    assert share(0, 0) is None


def test_a_price_cell_needs_three_purchases() -> None:
    assert MIN_CELL == 3
    assert price_cell(2, 60_000, 200) is None
    assert price_cell(3, 60_000, 300) == 20_000  # cents per carat: weights in hundredths
    assert price_cell(3, 60_000, 0) is None


def test_controls_case_by_case() -> None:
    nothing = controls(totals())
    assert nothing.to_json() == {
        "traceable_ppm": None,
        "licensed_ppm": None,
        "surplus": 0,
        "first_sale_cents_per_carat": None,
        "export_cents_per_carat": None,
        "price_ratio_ppm": None,
        "suppressed": False,
    }
    # two purchases: the price is withheld, and so is the ratio; the rest is shown
    two = controls(
        totals(
            purchased=300,
            purchases=2,
            purchase_value=90_000,
            exported=300,
            exported_traced=300,
            export_value=120_000,
        )
    )
    assert (two.first_sale_cents_per_carat, two.price_ratio_ppm, two.suppressed) == (
        None,
        None,
        True,
    )
    assert (two.traceable_ppm, two.licensed_ppm, two.export_cents_per_carat) == (
        1_000_000,
        1_000_000,
        40_000,
    )
    # exports above production plus imports: the surplus; half the production at mines
    c = controls(
        totals(
            purchased=500,
            registered=500,
            imported=200,
            exported=1_500,
            exported_traced=400,
            export_value=300_000,
            purchases=4,
            purchase_value=100_000,
        )
    )
    assert c.surplus == 1_500 - 1_000 - 200
    assert c.licensed_ppm == 500_000
    assert c.traceable_ppm == 400 * 1_000_000 // 1_500
    assert c.first_sale_cents_per_carat == 100_000 * 100 // 500
    assert c.export_cents_per_carat == 300_000 * 100 // 1_500
    assert c.price_ratio_ppm == 20_000 * 1_000_000 // 20_000


def shipped() -> Any:
    text = resources.files("kpledger.api").joinpath("data/indicators.json").read_text("utf-8")
    return json.loads(text)


def test_the_shipped_list_reads_and_names_indicators_by_topic() -> None:
    found = parse_indicators(shipped())
    assert len(found) >= 10
    assert {i.topic for i in found} >= {"formalisation", "internal controls", "fair prices"}
    assert {i.measure for i in found} >= {"traceable_ppm", "licensed_ppm", "surplus"}
    assert all(i.id.split(".")[0].replace("_", " ") == i.topic for i in found)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: d["indicators"][0].update(id="Bad Id"), "indicators[0].id", "does not match"),
        (lambda d: d["indicators"][0].update(scale=0), "indicators[0].scale", "must be in 1..100"),
        (lambda d: d["indicators"][0].update(measure="x"), "indicators[0].measure", "one of"),
        (lambda d: d["indicators"][1].update(id=d["indicators"][0]["id"]), "indicators", "twice"),
        (lambda d: d["indicators"][0].update(extra=1), "indicators[0]", "unknown field"),
        (lambda d: d.update(indicators=[]), "indicators", "must hold 1..500"),
    ],
)
def test_a_bad_list_is_refused_naming_the_field(change: Any, field: str, message: str) -> None:
    doc = shipped()
    change(doc)
    with pytest.raises(SchemaError, match=message) as info:
        parse_indicators(doc)
    assert info.value.field == field
