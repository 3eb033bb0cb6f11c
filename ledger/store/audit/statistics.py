"""The KP statistics tables: production, exports, imports, certificate counts."""

from __future__ import annotations

import json

from sqlalchemy import Connection, func, select

from kpledger.ledger.records import Kind
from kpledger.ledger.state import CertificateStatus
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
    closed_time,
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
    totals: dict[str, list[int]] = {}
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
        row = totals.setdefault(chain, [0, 0, 0])
        row[0] += int(body["weight"])
        row[1] += int(body["value"])
        row[2] += 1
    rows.close()
    return tuple(ProductionTotal(c, w, v, n) for c, (w, v, n) in sorted(totals.items()))


def exports(conn: Connection, period: Period) -> tuple[ExportTotal, ...]:
    return tuple(
        ExportTotal(a, b, as_int(ct), as_int(v), as_int(n))
        for a, b, ct, v, n in conn.execute(
            select(C.issuer, C.destination, func.sum(C.carats), func.sum(C.value), func.count())
            .where(C.status.not_in(NOT_SHIPPED), *period.days(C.issued))
            .group_by(C.issuer, C.destination)
            .order_by(C.issuer, C.destination)
        )
    )


def imports(conn: Connection, period: Period) -> tuple[ImportTotal, ...]:
    return tuple(
        ImportTotal(b, a, as_int(got), as_int(ct), as_int(v), as_int(n))
        for b, a, got, ct, v, n in conn.execute(
            select(
                C.destination,
                C.issuer,
                func.sum(C.received),
                func.sum(C.carats),
                func.sum(C.value),
                func.count(),
            )
            .select_from(closed_time())
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
