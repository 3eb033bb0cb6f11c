"""The KP statistics tables: production, exports, imports, certificate counts."""

from __future__ import annotations

import json

from sqlalchemy import Connection, func, select

from kpledger.ledger.records import Kind
from kpledger.ledger.state import CertificateStatus
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.audit.base import (
    CLOSED_BY_IMPORTER,
    ISSUED,
    NOT_SHIPPED,
    REFUSED,
    VOIDED,
    C,
    H,
    Period,
    R,
    as_int,
    cents_of,
    closed_time,
    known_cents,
)
from kpledger.ledger.store.audit.rows import (
    CertificateCount,
    ExportTotal,
    ImportTotal,
    ProductionTotal,
)

__all__ = ["certificate_counts", "exports", "imports", "production"]


def production(conn: Connection, period: Period) -> tuple[ProductionTotal, ...]:
    """``parcel.register`` records whose ``produced`` date is in the period, by chain.

    The raw bytes are canonical JSON (no whitespace), so a record produced in
    year Y contains ``"produced":"Y`` literally: rows without it are skipped
    before parsing.
    """
    assert period.since is not None
    lo, hi = period.since.isoformat(), period.until.isoformat()
    needles = {
        f'"produced":"{y:04d}'.encode() for y in range(period.since.year, period.until.year + 1)
    }
    totals: dict[str, tuple[list[int], list[str]]] = {}
    rows = conn.execute(
        select(R.chain, R.raw)
        .where(R.kind == Kind.PARCEL_REGISTER.value)
        .execution_options(stream_results=True, yield_per=2000)
    )
    for chain, raw in rows:
        data = bytes(raw)
        if not any(n in data for n in needles):
            continue
        body = json.loads(data)["body"]
        if not lo <= body["produced"] <= hi:
            continue
        weights, values = totals.setdefault(chain, ([], []))
        weights.append(int(body["weight"]))
        values.append(str(body["value"]["c"]))
    rows.close()
    clear = cents_of(conn, (c for _, values in totals.values() for c in values))
    return tuple(
        ProductionTotal(c, sum(w), sum(clear.get(x, 0) for x in values), len(w))
        for c, (w, values) in sorted(totals.items())
    )


def exports(conn: Connection, period: Period) -> tuple[ExportTotal, ...]:
    v = known_cents()
    return tuple(
        ExportTotal(a, b, as_int(ct), as_int(cents), as_int(n))
        for a, b, ct, cents, n in conn.execute(
            select(C.issuer, C.destination, func.sum(C.carats), func.sum(v.c.cents), func.count())
            .select_from(t.certificates.outerjoin(v, v.c.commitment == C.value))
            .where(C.status.not_in(NOT_SHIPPED), *period.days(C.issued))
            .group_by(C.issuer, C.destination)
            .order_by(C.issuer, C.destination)
        )
    )


def imports(conn: Connection, period: Period) -> tuple[ImportTotal, ...]:
    v = known_cents()
    return tuple(
        ImportTotal(b, a, as_int(got), as_int(ct), as_int(cents), as_int(n))
        for b, a, got, ct, cents, n in conn.execute(
            select(
                C.destination,
                C.issuer,
                func.sum(C.received),
                func.sum(C.carats),
                func.sum(v.c.cents),
                func.count(),
            )
            .select_from(closed_time().outerjoin(v, v.c.commitment == C.value))
            .where(C.status.in_(CLOSED_BY_IMPORTER), *period.times(H.time))
            .group_by(C.destination, C.issuer)
            .order_by(C.destination, C.issuer)
        )
    )


def certificate_counts(conn: Connection, period: Period) -> tuple[CertificateCount, ...]:
    counts: dict[str, dict[str, int]] = {}
    for issuer, status, n in conn.execute(
        select(C.issuer, C.status, func.count())
        .where(*period.days(C.issued))
        .group_by(C.issuer, C.status)
    ):
        counts.setdefault(issuer, {})[status] = as_int(n)
    return tuple(
        CertificateCount(
            participant=issuer,
            total=sum(by.values()),
            unconfirmed=by.get(ISSUED, 0),
            confirmed=by.get(CertificateStatus.CONFIRMED.value, 0),
            discrepancy=by.get(CertificateStatus.DISCREPANCY.value, 0),
            voided=by.get(VOIDED, 0),
            refused=by.get(REFUSED, 0),
        )
        for issuer, by in sorted(counts.items())
    )
