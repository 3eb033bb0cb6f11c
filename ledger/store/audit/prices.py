"""Price-per-carat outliers: against the issuer's group median and the origin's reference."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from sqlalchemy import Connection, and_, func, select

from kpledger.ledger.kpdata import PRODUCERS, usd_per_carat
from kpledger.ledger.records import Kind
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.audit.base import (
    PRICE_GROUP_FACTOR,
    PRICE_GROUP_MIN,
    PRICE_REFERENCE_FACTOR,
    C,
    Period,
    RecordResolver,
    RefKey,
    known_cents,
)
from kpledger.ledger.store.audit.rows import Bounded, PriceOutlier

__all__ = ["Priced", "price_outliers", "priced", "off_by"]


@dataclass(frozen=True)
class Priced:
    number: str
    issuer: str
    origin: str
    issued: str
    carats: int
    value: int
    hs: str
    ref: RefKey

    @property
    def price(self) -> float:
        """US cents per hundredth of a carat: USD per carat."""
        return self.value / self.carats


def priced(conn: Connection, period: Period) -> list[Priced]:
    pe, p = t.parcel_events.c, t.parcels.c
    v = known_cents()
    q = (
        select(
            C.number,
            C.issuer,
            C.origin,
            C.issued,
            C.carats,
            func.max(v.c.cents),
            C.issue_chain,
            C.issue_idx,
            C.issue_hash,
            func.min(p.hs),
            func.max(p.hs),
        )
        .select_from(
            t.certificates.join(
                t.parcel_events,
                and_(
                    pe.chain == C.issue_chain,
                    pe.idx == C.issue_idx,
                    pe.kind == Kind.CERTIFICATE_ISSUE.value,
                ),
            )
            .join(t.parcels, p.id == pe.parcel)
            .join(v, v.c.commitment == C.value)  # only the prices this node may see
        )
        .where(*period.days(C.issued))
        .group_by(
            C.number,
            C.issuer,
            C.origin,
            C.issued,
            C.carats,
            C.issue_chain,
            C.issue_idx,
            C.issue_hash,
        )
    )
    return [
        Priced(
            number,
            issuer,
            origin,
            issued,
            int(carats),
            int(value),
            hs_lo if hs_lo == hs_hi else "mixed",
            (ic, int(ii), bytes(ih), Kind.CERTIFICATE_ISSUE.value),
        )
        for number, issuer, origin, issued, carats, value, ic, ii, ih, hs_lo, hs_hi in (
            conn.execute(q)
        )
    ]


def price_outliers(
    conn: Connection, period: Period, limit: int, recs: RecordResolver
) -> Bounded[PriceOutlier]:
    certs = priced(conn, period)
    groups: dict[tuple[str, str], list[float]] = {}
    for cert in certs:
        groups.setdefault((cert.issuer, cert.hs), []).append(cert.price)
    medians = {
        key: statistics.median(prices)
        for key, prices in groups.items()
        if len(prices) >= PRICE_GROUP_MIN
    }
    found: list[tuple[float, Priced, tuple[str, ...], float | None, float | None]] = []
    for cert in certs:
        key = (cert.issuer, cert.hs)
        reasons: list[str] = []
        score = 1.0
        median = medians.get(key)
        if median:
            ratio = off_by(cert.price, median)
            if ratio > PRICE_GROUP_FACTOR:
                reasons.append("group")
                score = max(score, ratio)
        reference = usd_per_carat(cert.origin) if cert.origin in PRODUCERS else None
        if reference:
            ratio = off_by(cert.price, reference)
            if ratio > PRICE_REFERENCE_FACTOR:
                reasons.append("reference")
                score = max(score, ratio)
        if reasons:
            found.append((score, cert, tuple(reasons), median, reference))
    found.sort(key=lambda x: (-x[0], x[1].number))
    ref = recs.resolve(cert.ref for _, cert, *_ in found[:limit])
    items = tuple(
        PriceOutlier(
            number=cert.number,
            issuer=cert.issuer,
            hs=cert.hs,
            origin=cert.origin,
            issued=cert.issued,
            carats=cert.carats,
            value=cert.value,
            usd_per_carat=round(cert.price, 2),
            group_median=None if median is None else round(median, 2),
            group_size=len(groups[(cert.issuer, cert.hs)]),
            reference=None if reference is None else round(reference, 2),
            reasons=reasons,
            records=(ref(cert.ref),),
        )
        for _, cert, reasons, median, reference in found[:limit]
    )
    return Bounded(items, len(found) > limit)


def off_by(price: float, against: float) -> float:
    """How many times off ``against`` a price is, either way (>= 1; inf for a zero price)."""
    if price <= 0:
        return float("inf")
    return max(price / against, against / price)
