"""The artisanal chain's acts: officer-level fields (an import row, a form) into records.

``ARTISANAL_ACTS`` holds one ``node.compose.Act`` per artisanal kind, and
``OFFICER_ACTS`` every act an officer may compose (``node.compose.ACTS`` and
these): ``kpl import-records --kind parcel.purchase purchases.csv`` loads a
national system's first sales, ``POST /v1/officer/compose`` composes any of
them. Carats and US dollars come as text and are read exactly; a point is
``LAT,LON`` in decimal degrees (read to integer microdegrees); lists are
``;``-separated in CSV; dates default to the composer's today.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from kpledger.ledger.artisanal import (
    assessment_body,
    buyer_licence_body,
    claim_body,
    digger_licence_body,
    end_body,
    purchase_body,
)
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.records import Kind
from kpledger.node.compose import ACTS, Act, Composer, Row, optional_field, parse_carats, parse_usd

__all__ = ["ARTISANAL_ACTS", "OFFICER_ACTS", "parse_point"]

_MICRO = Decimal(1_000_000)


def parse_point(text: str, field: str = "point") -> tuple[int, int]:
    """``"8.65,-10.97"`` (decimal degrees, at most 6 decimals) -> integer microdegrees."""
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2:
        raise InvalidData(f"{text!r}: expected LAT,LON in decimal degrees", field=field)
    out = []
    for part, top in zip(parts, (90, 180), strict=True):
        try:
            value = Decimal(part) * _MICRO
        except InvalidOperation as exc:
            raise InvalidData(f"{part!r} is not a number of degrees", field=field) from exc
        if not value.is_finite() or value != value.to_integral_value():
            raise InvalidData(f"{part!r}: at most 6 decimals", field=field)
        if abs(value) > top * _MICRO:
            raise InvalidData(f"{part!r} is beyond {top} degrees", field=field)
        out.append(int(value))
    return out[0], out[1]


def _text(row: Row, name: str, default: str | None = None) -> str:
    found = optional_field(row, name)
    if found is None:
        if default is None:
            raise InvalidData("missing", field=name)
        return default
    return found


def _items(row: Row, name: str) -> list[str]:
    value = row.get(name)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    items = [v.strip() for v in _text(row, name).split(";") if v.strip()]
    if not items:
        raise InvalidData("expected one or more items separated by ;", field=name)
    return items


def _today(c: Composer) -> str:
    return str(c.clock())[:10]


def _claim(c: Composer, r: Row) -> dict[str, Any]:
    points = [parse_point(p, "points") for p in _items(r, "points")]
    return claim_body(
        _text(r, "claim"),
        _text(r, "holder"),
        _text(r, "zone"),
        points,
        _text(r, "valid_from"),
        _text(r, "valid_until"),
    )


def _purchase(c: Composer, r: Row) -> dict[str, Any]:
    return purchase_body(
        _text(r, "parcel"),
        _text(r, "buyer"),
        _text(r, "digger"),
        _text(r, "claim"),
        parse_carats(_text(r, "carats"), "carats"),
        parse_usd(_text(r, "usd"), "usd"),
        _text(r, "bought", _today(c)),
        method=_text(r, "method", "alluvial"),
        hs=_text(r, "hs", "7102.10"),
    )


def _score(r: Row) -> int:
    text = _text(r, "score")
    if not text.isdigit():
        raise InvalidData("expected a whole number", field="score")
    return int(text)


ARTISANAL_ACTS: Mapping[str, Act] = {
    a.kind.value: a
    for a in (
        Act(
            Kind.CLAIM_REGISTER,
            "claim, holder, zone, points (LAT,LON;... one, or 3+), valid_from, valid_until",
            lambda r: _text(r, "claim"),
            _claim,
        ),
        Act(
            Kind.LICENCE_DIGGER,
            "licence, holder, claim, type (digger), valid_from, valid_until",
            lambda r: _text(r, "licence"),
            lambda c, r: digger_licence_body(
                _text(r, "licence"),
                _text(r, "holder"),
                _text(r, "claim"),
                _text(r, "valid_from"),
                _text(r, "valid_until"),
                type=_text(r, "type", "digger"),
            ),
        ),
        Act(
            Kind.LICENCE_BUYER,
            "licence, party, zones (;-separated), type (collector), valid_from, valid_until",
            lambda r: _text(r, "licence"),
            lambda c, r: buyer_licence_body(
                _text(r, "licence"),
                _text(r, "party"),
                _items(r, "zones"),
                _text(r, "valid_from"),
                _text(r, "valid_until"),
                type=_text(r, "type", "collector"),
            ),
        ),
        Act(
            Kind.LICENCE_END,
            "licence, reason (revoked, expired, surrendered), date (today), note",
            lambda r: _text(r, "licence"),
            lambda c, r: end_body(
                _text(r, "licence"),
                _text(r, "reason"),
                _text(r, "date", _today(c)),
                _text(r, "note"),
            ),
        ),
        Act(
            Kind.PARCEL_PURCHASE,
            "parcel, buyer, digger, claim, carats, usd, method (alluvial), hs (7102.10), "
            "bought (today)",
            lambda r: _text(r, "parcel"),
            _purchase,
        ),
        Act(
            Kind.DIAGNOSTIC_ASSESS,
            "indicator, score, evidence, assessed (today)",
            lambda r: f"{_text(r, 'indicator')}@{_text(r, 'assessed', '')}",
            lambda c, r: assessment_body(
                _text(r, "indicator"),
                _score(r),
                _text(r, "evidence"),
                _text(r, "assessed", _today(c)),
            ),
        ),
    )
}

#: every act an officer composes: the custody acts and the artisanal chain's
OFFICER_ACTS: Mapping[str, Act] = {**ACTS, **ARTISANAL_ACTS}
