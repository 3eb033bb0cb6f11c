"""Findings about certificates: unconfirmed, discrepancies, mirror mismatches, in transit."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, not_, or_, select

from kpledger.ledger.canonical import parse_canonical
from kpledger.ledger.records import Kind
from kpledger.ledger.state import CertificateStatus
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.audit.base import (
    CLOSED_BY_IMPORTER,
    ISSUED,
    NOT_SHIPPED,
    RECORDS_PER_FINDING,
    C,
    H,
    Period,
    R,
    RecordResolver,
    RefKey,
    as_int,
    closed_time,
    minus_days,
)
from kpledger.ledger.store.audit.rows import (
    Bounded,
    Discrepancy,
    InTransit,
    MirrorMismatch,
    Refusal,
    Unconfirmed,
)

__all__ = [
    "discrepancies",
    "in_transit",
    "refusals",
    "in_transit_now",
    "mirror",
    "mirror_records",
    "unconfirmed",
]


def unconfirmed(
    conn: Connection, period: Period, days: int, limit: int, recs: RecordResolver
) -> Bounded[Unconfirmed]:
    cutoff = minus_days(period.until, days)
    if cutoff is None:
        return Bounded((), False)
    q = (
        select(
            C.number,
            C.issuer,
            C.destination,
            C.issued,
            C.expires,
            C.carats,
            C.issue_chain,
            C.issue_idx,
            C.issue_hash,
        )
        .where(C.status == ISSUED, C.issued <= cutoff.isoformat(), *period.days(C.issued))
        .order_by(C.issued, C.number)
        .limit(limit + 1)
    )
    rows = conn.execute(q).all()
    issue = Kind.CERTIFICATE_ISSUE.value
    ref = recs.resolve((ic, ii, ih, issue) for *_, ic, ii, ih in rows[:limit])
    items = tuple(
        Unconfirmed(
            number=number,
            issuer=issuer,
            destination=destination,
            issued=issued,
            expires=expires,
            days_open=(period.until - date.fromisoformat(issued)).days,
            expired=period.until.isoformat() > expires,
            carats=int(carats),
            records=(ref((ic, ii, ih, issue)),),
        )
        for number, issuer, destination, issued, expires, carats, ic, ii, ih in rows[:limit]
    )
    return Bounded(items, len(rows) > limit)


def discrepancies(
    conn: Connection, period: Period, limit: int, recs: RecordResolver
) -> Bounded[Discrepancy]:
    q = (
        select(
            C.number,
            C.issuer,
            C.destination,
            C.issued,
            C.carats,
            C.received,
            C.issue_chain,
            C.issue_idx,
            C.issue_hash,
            C.closed_chain,
            C.closed_idx,
            C.closed_hash,
        )
        .where(C.status == CertificateStatus.DISCREPANCY.value, *period.days(C.issued))
        .order_by(C.issued, C.number)
        .limit(limit + 1)
    )
    rows = conn.execute(q).all()
    keyed: list[tuple[Any, list[RefKey]]] = []
    for row in rows[:limit]:
        *_, ic, ii, ih, cc, ci, ch = row
        keys: list[RefKey] = [(ic, ii, ih, Kind.CERTIFICATE_ISSUE.value)]
        if cc is not None:
            keys.append((cc, ci, ch, Kind.CERTIFICATE_CONFIRM.value))
        keyed.append((row, keys))
    ref = recs.resolve(k for _, keys in keyed for k in keys)
    items = []
    for (number, issuer, dest, issued, carats, received, *_), keys in keyed:
        declared, got = int(carats), as_int(received)
        items.append(
            Discrepancy(
                number=number,
                issuer=issuer,
                destination=dest,
                issued=issued,
                declared=declared,
                received=got,
                difference=got - declared,
                difference_bp=abs(got - declared) * 10_000 // declared if declared else 0,
                records=tuple(ref(k) for k in keys),
            )
        )
    return Bounded(tuple(items), len(rows) > limit)


def in_transit_now(period: Period) -> ColumnElement[bool]:
    """Still open (neither confirmed nor voided) and not expired as of the period's last day.

    Such a certificate is on its way: its absence from the importer's
    confirmations is no mismatch until it expires.
    """
    return and_(C.status == ISSUED, C.expires >= period.until.isoformat())


def mirror(
    conn: Connection, period: Period, limit: int, tolerance_bp: int, recs: RecordResolver
) -> Bounded[MirrorMismatch]:
    exported = conn.execute(
        select(
            C.issuer,
            C.destination,
            func.sum(case((in_transit_now(period), 0), else_=1)),
            func.sum(case((in_transit_now(period), 0), else_=C.carats)),
            func.sum(case((in_transit_now(period), 1), else_=0)),
        )
        .where(C.status.not_in(NOT_SHIPPED), *period.days(C.issued))
        .group_by(C.issuer, C.destination)
    ).all()
    imported = conn.execute(
        select(C.issuer, C.destination, func.count(), func.sum(C.received))
        .select_from(closed_time())
        .where(C.status.in_(CLOSED_BY_IMPORTER), *period.times(H.time))
        .group_by(C.issuer, C.destination)
    ).all()
    pairs: dict[tuple[str, str], list[int]] = {}
    for a, b, n, carats, open_ in exported:
        pairs[(a, b)] = [as_int(n), as_int(carats), 0, 0, as_int(open_)]
    for a, b, n, received in imported:
        row = pairs.setdefault((a, b), [0, 0, 0, 0, 0])
        row[2], row[3] = as_int(n), as_int(received)
    mismatched = [
        (pair, row)
        for pair, row in sorted(pairs.items())
        if row[0] != row[2] or abs(row[3] - row[1]) * 10_000 > tolerance_bp * row[1]
    ]
    items = []
    for (a, b), (n_out, ct_out, n_in, ct_in, in_transit) in mismatched[:limit]:
        keys, more = mirror_records(conn, period, a, b)
        ref = recs.resolve(keys)
        items.append(
            MirrorMismatch(
                exporter=a,
                importer=b,
                exported_carats=ct_out,
                exported_certificates=n_out,
                imported_carats=ct_in,
                imported_certificates=n_in,
                difference=ct_in - ct_out,
                in_transit=in_transit,
                records=tuple(ref(k) for k in keys),
                records_truncated=more,
            )
        )
    return Bounded(tuple(items), len(mismatched) > limit)


def mirror_records(conn: Connection, period: Period, a: str, b: str) -> tuple[list[RefKey], bool]:
    """The certificates of A to B counted on one side only, or received at another weight."""
    exported_in = and_(
        C.status.not_in(NOT_SHIPPED), not_(in_transit_now(period)), *period.days(C.issued)
    )
    imported_in = and_(C.status.in_(CLOSED_BY_IMPORTER), *period.times(H.time))
    q = (
        select(
            C.issue_chain,
            C.issue_idx,
            C.issue_hash,
            C.closed_chain,
            C.closed_idx,
            C.closed_hash,
            C.status,
        )
        .select_from(closed_time())
        .where(
            C.issuer == a,
            C.destination == b,
            or_(
                and_(exported_in, not_(imported_in)),
                and_(imported_in, not_(exported_in)),
                and_(exported_in, imported_in, C.received != C.carats),
            ),
        )
        .order_by(C.issued, C.number)
        .limit(RECORDS_PER_FINDING + 1)
    )
    rows = conn.execute(q).all()
    out: list[RefKey] = []
    for ic, ii, ih, cc, ci, ch, status in rows[:RECORDS_PER_FINDING]:
        out.append((ic, ii, ih, Kind.CERTIFICATE_ISSUE.value))
        if cc is not None and status in CLOSED_BY_IMPORTER:
            out.append((cc, ci, ch, Kind.CERTIFICATE_CONFIRM.value))
    return out, len(rows) > RECORDS_PER_FINDING


def in_transit(
    conn: Connection, period: Period, limit: int, recs: RecordResolver
) -> Bounded[InTransit]:
    q = (
        select(
            C.number,
            C.issuer,
            C.destination,
            C.issued,
            C.expires,
            C.carats,
            C.issue_chain,
            C.issue_idx,
            C.issue_hash,
        )
        .where(in_transit_now(period), *period.days(C.issued))
        .order_by(C.issued, C.number)
        .limit(limit + 1)
    )
    rows = conn.execute(q).all()
    issue = Kind.CERTIFICATE_ISSUE.value
    ref = recs.resolve((ic, ii, ih, issue) for *_, ic, ii, ih in rows[:limit])
    items = tuple(
        InTransit(
            number=number,
            issuer=issuer,
            destination=destination,
            issued=issued,
            expires=expires,
            carats=int(carats),
            records=(ref((ic, ii, ih, issue)),),
        )
        for number, issuer, destination, issued, expires, carats, ic, ii, ih in rows[:limit]
    )
    return Bounded(items, len(rows) > limit)


def refusals(
    conn: Connection, period: Period, limit: int, recs: RecordResolver
) -> Bounded[Refusal]:
    """Certificates issued in the period that their importer refused, with its reason."""
    q = (
        select(
            C.number,
            C.issuer,
            C.destination,
            C.issued,
            C.carats,
            C.origin,
            R.raw,
            C.issue_chain,
            C.issue_idx,
            C.issue_hash,
            C.closed_chain,
            C.closed_idx,
            C.closed_hash,
        )
        .select_from(
            t.certificates.join(t.records, and_(R.chain == C.closed_chain, R.idx == C.closed_idx))
        )
        .where(C.status == CertificateStatus.REFUSED.value, *period.days(C.issued))
        .order_by(C.issued, C.number)
        .limit(limit + 1)
    )
    rows = conn.execute(q).all()
    keyed: list[tuple[Any, list[RefKey]]] = []
    for row in rows[:limit]:
        *_, ic, ii, ih, cc, ci, ch = row
        keys: list[RefKey] = [
            (ic, ii, ih, Kind.CERTIFICATE_ISSUE.value),
            (cc, ci, ch, Kind.CERTIFICATE_REFUSE.value),
        ]
        keyed.append((row, keys))
    ref = recs.resolve(k for _, keys in keyed for k in keys)
    items = []
    for (number, issuer, dest, issued, carats, origin, raw, *_), keys in keyed:
        body = parse_canonical(bytes(raw), what="stored record")["body"]
        items.append(
            Refusal(
                number=number,
                issuer=issuer,
                destination=dest,
                issued=issued,
                carats=as_int(carats),
                origin=origin,
                code=str(body["code"]),
                reason=str(body["reason"]),
                records=tuple(ref(k) for k in keys),
            )
        )
    return Bounded(tuple(items), len(rows) > limit)
