"""The auditors' queries: the audit report and the KP statistics, in SQL over the store.

Every query is SQLAlchemy Core against the store's tables (``store.engine``)
and every list is bounded: a finding list stops at ``limit`` items and says
``truncated``; a finding lists at most ``RECORDS_PER_FINDING`` records.
Medians (price outliers) and the parsing of record bytes (production) are
done in Python over rows the SQL selected for the period.

Periods are inclusive calendar days in UTC. Dates of certificates are their
``issued`` field; dates of records (confirmations, registrations, activity)
are the time of the block that sealed them; production is dated by the
``produced`` field of ``parcel.register``.

Thresholds of the report (documented in the README, echoed in every report):

* **unconfirmed**: a certificate still ``issued`` (neither confirmed nor
  voided) ``days`` (default 30) or more days after its issue date, as of
  the period's last day;
* **discrepancy**: the ledger's own verdict: a confirmation whose received
  weight differs from the declared weight by more than the network's
  tolerance (genesis ``tolerance_bp``, 0.5 % by default), total or per line;
* **mirror mismatch**: for each ordered pair (A, B), A's certificates to B
  issued in the period (voided excluded) against B's confirmations of A's
  certificates sealed in the period: reported when the counts differ or the
  carats differ by more than ``tolerance_bp`` of A's exported carats;
* **price outlier**: a certificate's price is value / carats (US cents per
  hundredth of a carat = USD per carat). Against its group (same issuer, same
  HS code; "mixed" when its lines differ) of at least ``PRICE_GROUP_MIN``
  certificates in the period: above ``PRICE_GROUP_FACTOR`` times or below
  1 / ``PRICE_GROUP_FACTOR`` of the group's median. Against the reference: a
  certificate with a single country of origin that produced in 2023
  (``ledger.kpdata``) priced above ``PRICE_REFERENCE_FACTOR`` times or below
  1 / ``PRICE_REFERENCE_FACTOR`` of that country's 2023 average USD/ct (a DR
  Congo-origin certificate at 500 USD/ct is 64 times the 7.8 average);
* **unrecorded production**: ``parcel.register`` on a chain that is not a
  producing participant in the 2023 KP statistics (``ledger.kpdata.PRODUCERS``);
* **suspended activity**: records sealed by a participant's chain in blocks
  timed after the governance block that suspended it (and before the one
  that reinstated it, if any);
* **refusals**: certificates issued in the period that their importing
  authority refused (``certificate.refuse``), with the reason code and text;
  refused and voided certificates count as no export in the mirror check and
  the statistics (the goods went back);
* **equivocation**: the evidence this node holds (two validly signed headers
  of one chain that contradict), when either header falls in the period.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, not_, or_, select

from api.schemas import (
    AuditRecordOut,
    AuditReportOut,
    AuditThresholdsOut,
    CertificateCountRow,
    DiscrepancyList,
    DiscrepancyOut,
    EquivocationList,
    EquivocationOut,
    ExportRow,
    HeaderRefOut,
    ImportRow,
    MirrorList,
    MirrorOut,
    PriceOutlierList,
    PriceOutlierOut,
    ProductionRow,
    RefusalList,
    RefusalOut,
    StatsOut,
    StatsTotals,
    SuspendedActivityList,
    SuspendedActivityOut,
    UnconfirmedList,
    UnconfirmedOut,
    UnrecordedProductionList,
    UnrecordedProductionOut,
)
from ledger.blocks import Evidence, SignedHeader
from ledger.canonical import parse_canonical
from ledger.kpdata import PRODUCERS, usd_per_carat
from ledger.records import GOVERNANCE_CHAIN, Kind
from ledger.state import CertificateStatus
from ledger.store import Store
from ledger.store import tables as t

__all__ = [
    "MAX_FINDINGS",
    "PERIOD_PATTERN",
    "PRICE_GROUP_FACTOR",
    "PRICE_GROUP_MIN",
    "PRICE_REFERENCE_FACTOR",
    "RECORDS_PER_FINDING",
    "UNCONFIRMED_DAYS",
    "Period",
    "audit_report",
    "kp_statistics",
    "parse_period",
    "stats_csv",
]

UNCONFIRMED_DAYS = 30
PRICE_GROUP_FACTOR = 4.0
PRICE_GROUP_MIN = 5
PRICE_REFERENCE_FACTOR = 10.0
RECORDS_PER_FINDING = 20
MAX_FINDINGS = 1000
#: ``2025`` or ``2025-Q1`` .. ``2025-Q4``
PERIOD_PATTERN = r"^[12][0-9]{3}(-Q[1-4])?$"

_ISSUED = CertificateStatus.ISSUED.value
_CLOSED_BY_IMPORTER = (CertificateStatus.CONFIRMED.value, CertificateStatus.DISCREPANCY.value)
_VOIDED = CertificateStatus.VOIDED.value
_REFUSED = CertificateStatus.REFUSED.value
#: certificates whose goods never left: no export in the mirror and the statistics
_NOT_SHIPPED = (_VOIDED, _REFUSED)

C = t.certificates.c
R = t.records.c
H = t.headers.c


# ---------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """Inclusive calendar days; ``since`` None means from the beginning."""

    since: date | None
    until: date

    def days(self, column: Any) -> list[ColumnElement[bool]]:
        """Conditions putting a ``YYYY-MM-DD`` column in the period."""
        out: list[ColumnElement[bool]] = [column <= self.until.isoformat()]
        if self.since is not None:
            out.append(column >= self.since.isoformat())
        return out

    def times(self, column: Any) -> list[ColumnElement[bool]]:
        """Conditions putting a ``YYYY-MM-DDTHH:MM:SSZ`` column in the period."""
        # every time of the last day sorts before "<day>T99"
        out: list[ColumnElement[bool]] = [column <= self.until.isoformat() + "T99"]
        if self.since is not None:
            out.append(column >= self.since.isoformat())
        return out

    def holds_time(self, time: str) -> bool:
        day = time[:10]
        return day <= self.until.isoformat() and (
            self.since is None or day >= self.since.isoformat()
        )


def parse_period(text: str) -> Period:
    """``2025`` -> the year; ``2025-Q2`` -> April 1 to June 30. Assumes ``PERIOD_PATTERN``."""
    year = int(text[:4])
    if len(text) == 4:
        return Period(date(year, 1, 1), date(year, 12, 31))
    q = int(text[-1])
    start = date(year, 3 * q - 2, 1)
    end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return Period(start, end - timedelta(days=1))


def _minus_days(day: date, days: int) -> date | None:
    try:
        return day - timedelta(days=days)
    except OverflowError:
        return None


def _int(value: object) -> int:
    """SQL sums are Decimal on PostgreSQL and None over no rows."""
    return 0 if value is None else int(value)  # type: ignore[call-overload]


# ---------------------------------------------------------------- records behind findings


class _Records:
    """Collects every record named by the report, to fill in heights and times at the end."""

    def __init__(self) -> None:
        self.made: list[AuditRecordOut] = []

    def ref(self, chain: str, index: int, digest: bytes, kind: str) -> AuditRecordOut:
        out = AuditRecordOut(chain=chain, index=int(index), hash=bytes(digest).hex(), kind=kind)
        self.made.append(out)
        return out

    def fill(self, conn: Connection) -> None:
        """Heights and block times of every record named, in one query per chain and chunk."""
        by_chain: dict[str, set[int]] = {}
        for r in self.made:
            if r.time is None:
                by_chain.setdefault(r.chain, set()).add(r.index)
        found: dict[tuple[str, int], tuple[int, str]] = {}
        for chain, wanted in by_chain.items():
            ids = sorted(wanted)
            for i in range(0, len(ids), 500):
                q = (
                    select(R.idx, R.height, H.time)
                    .join(t.headers, and_(H.chain == R.chain, H.height == R.height))
                    .where(R.chain == chain, R.idx.in_(ids[i : i + 500]))
                )
                for idx, height, time in conn.execute(q):
                    found[(chain, int(idx))] = (int(height), str(time))
        for r in self.made:
            hit = found.get((r.chain, r.index))
            if hit is not None:
                r.height, r.time = hit


# ---------------------------------------------------------------- findings


def _unconfirmed(
    conn: Connection, period: Period, days: int, limit: int, recs: _Records
) -> UnconfirmedList:
    cutoff = _minus_days(period.until, days)
    if cutoff is None:
        return UnconfirmedList(items=[], truncated=False)
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
        .where(C.status == _ISSUED, C.issued <= cutoff.isoformat(), *period.days(C.issued))
        .order_by(C.issued, C.number)
        .limit(limit + 1)
    )
    rows = conn.execute(q).all()
    items = [
        UnconfirmedOut(
            number=number,
            issuer=issuer,
            destination=destination,
            issued=issued,
            expires=expires,
            days_open=(period.until - date.fromisoformat(issued)).days,
            expired=period.until.isoformat() > expires,
            carats=int(carats),
            records=[recs.ref(ic, ii, ih, Kind.CERTIFICATE_ISSUE.value)],
        )
        for number, issuer, destination, issued, expires, carats, ic, ii, ih in rows[:limit]
    ]
    return UnconfirmedList(items=items, truncated=len(rows) > limit)


def _discrepancies(conn: Connection, period: Period, limit: int, recs: _Records) -> DiscrepancyList:
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
    items = []
    for number, issuer, dest, issued, carats, received, ic, ii, ih, cc, ci, ch in rows[:limit]:
        declared, got = int(carats), _int(received)
        records = [recs.ref(ic, ii, ih, Kind.CERTIFICATE_ISSUE.value)]
        if cc is not None:
            records.append(recs.ref(cc, ci, ch, Kind.CERTIFICATE_CONFIRM.value))
        items.append(
            DiscrepancyOut(
                number=number,
                issuer=issuer,
                destination=dest,
                issued=issued,
                declared=declared,
                received=got,
                difference=got - declared,
                difference_bp=abs(got - declared) * 10_000 // declared if declared else 0,
                records=records,
            )
        )
    return DiscrepancyList(items=items, truncated=len(rows) > limit)


def _refusals(conn: Connection, period: Period, limit: int, recs: _Records) -> RefusalList:
    q = (
        select(
            C.number,
            C.issuer,
            C.destination,
            C.issued,
            C.carats,
            C.origin,
            C.issue_chain,
            C.issue_idx,
            C.issue_hash,
            C.closed_chain,
            C.closed_idx,
            C.closed_hash,
            R.raw,
        )
        .select_from(
            t.certificates.join(t.records, and_(R.chain == C.closed_chain, R.idx == C.closed_idx))
        )
        .where(C.status == _REFUSED, *period.days(C.issued))
        .order_by(C.issued, C.number)
        .limit(limit + 1)
    )
    rows = conn.execute(q).all()
    items = []
    for number, issuer, dest, issued, carats, origin, ic, ii, ih, cc, ci, ch, raw in rows[:limit]:
        body = parse_canonical(bytes(raw), what="stored record")["body"]
        items.append(
            RefusalOut(
                number=number,
                issuer=issuer,
                destination=dest,
                issued=issued,
                carats=int(carats),
                origin=origin,
                code=str(body["code"]),
                reason=str(body["reason"]),
                records=[
                    recs.ref(ic, ii, ih, Kind.CERTIFICATE_ISSUE.value),
                    recs.ref(cc, ci, ch, Kind.CERTIFICATE_REFUSE.value),
                ],
            )
        )
    return RefusalList(items=items, truncated=len(rows) > limit)


def _closed_time() -> Any:
    """The certificates joined to the block of their closing record (outer: open ones too)."""
    return t.certificates.outerjoin(
        t.records, and_(R.chain == C.closed_chain, R.idx == C.closed_idx)
    ).outerjoin(t.headers, and_(H.chain == R.chain, H.height == R.height))


def _mirror(
    conn: Connection, period: Period, limit: int, tolerance_bp: int, recs: _Records
) -> MirrorList:
    exported = conn.execute(
        select(
            C.issuer,
            C.destination,
            func.count(),
            func.sum(C.carats),
            func.sum(case((C.status == _ISSUED, 1), else_=0)),
        )
        .where(C.status.not_in(_NOT_SHIPPED), *period.days(C.issued))
        .group_by(C.issuer, C.destination)
    ).all()
    imported = conn.execute(
        select(C.issuer, C.destination, func.count(), func.sum(C.received))
        .select_from(_closed_time())
        .where(C.status.in_(_CLOSED_BY_IMPORTER), *period.times(H.time))
        .group_by(C.issuer, C.destination)
    ).all()
    pairs: dict[tuple[str, str], list[int]] = {}
    for a, b, n, carats, open_ in exported:
        pairs[(a, b)] = [_int(n), _int(carats), 0, 0, _int(open_)]
    for a, b, n, received in imported:
        row = pairs.setdefault((a, b), [0, 0, 0, 0, 0])
        row[2], row[3] = _int(n), _int(received)
    mismatched = [
        (pair, row)
        for pair, row in sorted(pairs.items())
        if row[0] != row[2] or abs(row[3] - row[1]) * 10_000 > tolerance_bp * row[1]
    ]
    items = []
    for (a, b), (n_out, ct_out, n_in, ct_in, in_transit) in mismatched[:limit]:
        records, more = _mirror_records(conn, period, a, b, recs)
        items.append(
            MirrorOut(
                exporter=a,
                importer=b,
                exported_carats=ct_out,
                exported_certificates=n_out,
                imported_carats=ct_in,
                imported_certificates=n_in,
                difference=ct_in - ct_out,
                in_transit=in_transit,
                records=records,
                records_truncated=more,
            )
        )
    return MirrorList(items=items, truncated=len(mismatched) > limit)


def _mirror_records(
    conn: Connection, period: Period, a: str, b: str, recs: _Records
) -> tuple[list[AuditRecordOut], bool]:
    """The certificates of A to B counted on one side only, or received at another weight."""
    exported_in = and_(C.status.not_in(_NOT_SHIPPED), *period.days(C.issued))
    imported_in = and_(C.status.in_(_CLOSED_BY_IMPORTER), *period.times(H.time))
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
        .select_from(_closed_time())
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
    out: list[AuditRecordOut] = []
    for ic, ii, ih, cc, ci, ch, status in rows[:RECORDS_PER_FINDING]:
        out.append(recs.ref(ic, ii, ih, Kind.CERTIFICATE_ISSUE.value))
        if cc is not None and status in _CLOSED_BY_IMPORTER:
            out.append(recs.ref(cc, ci, ch, Kind.CERTIFICATE_CONFIRM.value))
    return out, len(rows) > RECORDS_PER_FINDING


@dataclass
class _Priced:
    number: str
    issuer: str
    origin: str
    issued: str
    carats: int
    value: int
    hs: str
    ref: tuple[str, int, bytes]

    @property
    def price(self) -> float:
        """US cents per hundredth of a carat: USD per carat."""
        return self.value / self.carats


def _price_outliers(
    conn: Connection, period: Period, limit: int, recs: _Records
) -> PriceOutlierList:
    pe, p = t.parcel_events.c, t.parcels.c
    q = (
        select(
            C.number,
            C.issuer,
            C.origin,
            C.issued,
            C.carats,
            C.value,
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
            ).join(t.parcels, p.id == pe.parcel)
        )
        .where(*period.days(C.issued))
        .group_by(
            C.number,
            C.issuer,
            C.origin,
            C.issued,
            C.carats,
            C.value,
            C.issue_chain,
            C.issue_idx,
            C.issue_hash,
        )
    )
    certs = [
        _Priced(
            number,
            issuer,
            origin,
            issued,
            int(carats),
            int(value),
            hs_lo if hs_lo == hs_hi else "mixed",
            (ic, int(ii), bytes(ih)),
        )
        for number, issuer, origin, issued, carats, value, ic, ii, ih, hs_lo, hs_hi in (
            conn.execute(q)
        )
    ]
    groups: dict[tuple[str, str], list[float]] = {}
    for cert in certs:
        groups.setdefault((cert.issuer, cert.hs), []).append(cert.price)
    medians = {
        key: statistics.median(prices)
        for key, prices in groups.items()
        if len(prices) >= PRICE_GROUP_MIN
    }
    found: list[tuple[float, PriceOutlierOut, tuple[str, int, bytes]]] = []
    for cert in certs:
        key = (cert.issuer, cert.hs)
        reasons: list[str] = []
        score = 1.0
        median = medians.get(key)
        if median:
            ratio = _ratio(cert.price, median)
            if ratio > PRICE_GROUP_FACTOR:
                reasons.append("group")
                score = max(score, ratio)
        reference = usd_per_carat(cert.origin) if cert.origin in PRODUCERS else None
        if reference:
            ratio = _ratio(cert.price, reference)
            if ratio > PRICE_REFERENCE_FACTOR:
                reasons.append("reference")
                score = max(score, ratio)
        if not reasons:
            continue
        out = PriceOutlierOut(
            number=cert.number,
            issuer=cert.issuer,
            hs=cert.hs,
            origin=cert.origin,
            issued=cert.issued,
            carats=cert.carats,
            value=cert.value,
            usd_per_carat=round(cert.price, 2),
            group_median=None if median is None else round(median, 2),
            group_size=len(groups[key]),
            reference=None if reference is None else round(reference, 2),
            reasons=reasons,
            records=[],
        )
        found.append((score, out, cert.ref))
    found.sort(key=lambda x: (-x[0], x[1].number))
    items = []
    for _, out, (chain, index, digest) in found[:limit]:
        out.records = [recs.ref(chain, index, digest, Kind.CERTIFICATE_ISSUE.value)]
        items.append(out)
    return PriceOutlierList(items=items, truncated=len(found) > limit)


def _ratio(price: float, against: float) -> float:
    """How many times off ``against`` a price is, either way (>= 1; inf for a zero price)."""
    if price <= 0:
        return float("inf")
    return max(price / against, against / price)


def _unrecorded_production(
    conn: Connection, period: Period, limit: int, recs: _Records
) -> UnrecordedProductionList:
    q = (
        select(R.chain, R.idx, R.leaf, R.raw)
        .join(t.headers, and_(H.chain == R.chain, H.height == R.height))
        .where(
            R.kind == Kind.PARCEL_REGISTER.value,
            R.chain.not_in(sorted(PRODUCERS)),
            *period.times(H.time),
        )
        .order_by(R.chain, R.idx)
        .limit(limit + 1)
    )
    rows = conn.execute(q).all()
    items = []
    for chain, idx, leaf, raw in rows[:limit]:
        body = json.loads(bytes(raw))["body"]
        items.append(
            UnrecordedProductionOut(
                chain=chain,
                parcel=str(body["parcel"]),
                weight=int(body["weight"]),
                value=int(body["value"]),
                mine=str(body["mine"]),
                produced=str(body["produced"]),
                records=[recs.ref(chain, idx, leaf, Kind.PARCEL_REGISTER.value)],
            )
        )
    return UnrecordedProductionList(items=items, truncated=len(rows) > limit)


def _governance_record(conn: Connection, kp_size: int) -> tuple[int, bytes, str, int, str] | None:
    """The governance record that made member event ``kp_size``: (idx, leaf, kind, height, time)."""
    row = conn.execute(
        select(R.idx, R.leaf, R.kind, R.height, H.time)
        .join(t.headers, and_(H.chain == R.chain, H.height == R.height))
        .where(R.chain == GOVERNANCE_CHAIN, R.idx == kp_size - 1)
    ).first()
    if row is None:
        return None
    return int(row[0]), bytes(row[1]), str(row[2]), int(row[3]), str(row[4])


def _suspended_activity(
    conn: Connection, period: Period, limit: int, recs: _Records
) -> SuspendedActivityList:
    m = t.members.c
    suspensions = conn.execute(
        select(m.code, m.kp_size).where(not_(m.active)).order_by(m.kp_size).limit(limit + 1)
    ).all()
    items = []
    for code, kp_size in suspensions[:limit]:
        found = _governance_record(conn, int(kp_size))
        if found is None:
            continue
        idx, leaf, kind, height, suspended = found
        back = conn.execute(
            select(func.min(m.kp_size)).where(m.code == code, m.active, m.kp_size > kp_size)
        ).scalar()
        reinstated = None
        if back is not None:
            again = _governance_record(conn, int(back))
            reinstated = None if again is None else again[4]
        while_out = [R.chain == code, H.time > suspended, *period.times(H.time)]
        if reinstated is not None:
            while_out.append(H.time < reinstated)
        joined = t.records.join(t.headers, and_(H.chain == R.chain, H.height == R.height))
        count = _int(
            conn.execute(select(func.count()).select_from(joined).where(*while_out)).scalar()
        )
        if count == 0:
            continue
        rows = conn.execute(
            select(R.idx, R.leaf, R.kind)
            .select_from(joined)
            .where(*while_out)
            .order_by(R.idx)
            .limit(RECORDS_PER_FINDING)
        ).all()
        suspension = recs.ref(GOVERNANCE_CHAIN, idx, leaf, kind)
        suspension.height, suspension.time = height, suspended
        items.append(
            SuspendedActivityOut(
                participant=code,
                suspended=suspended,
                reinstated=reinstated,
                suspension=suspension,
                count=count,
                records=[recs.ref(code, i, h, k) for i, h, k in rows],
                records_truncated=count > len(rows),
            )
        )
    return SuspendedActivityList(items=items, truncated=len(suspensions) > limit)


def _header_ref(signed: SignedHeader) -> HeaderRefOut:
    h = signed.header
    return HeaderRefOut(
        chain=h.chain,
        height=h.height,
        hash=h.hash.hex(),
        size=h.size,
        root=h.root.hex(),
        time=h.time,
    )


def _equivocation(conn: Connection, period: Period, limit: int) -> EquivocationList:
    items: list[EquivocationOut] = []
    truncated = False
    rows = conn.execute(
        select(t.evidence.c.id, t.evidence.c.doc)
        .order_by(t.evidence.c.id)
        .execution_options(stream_results=True, yield_per=100)
    )
    for ev_id, doc in rows:
        ev = Evidence.from_json(parse_canonical(bytes(doc), what="stored evidence"))
        if not (period.holds_time(ev.a.header.time) or period.holds_time(ev.b.header.time)):
            continue
        if len(items) == limit:
            truncated = True
            break
        items.append(
            EquivocationOut(
                id=ev_id, chain=ev.chain, headers=[_header_ref(ev.a), _header_ref(ev.b)]
            )
        )
    rows.close()
    return EquivocationList(items=items, truncated=truncated)


def audit_report(
    store: Store,
    node: str,
    *,
    since: date | None,
    until: date | None,
    days: int = UNCONFIRMED_DAYS,
    limit: int = 100,
) -> AuditReportOut:
    """Every finding of DOMAIN.md for the period, each list bounded by ``limit``."""
    now = datetime.now(UTC)
    period = Period(since, until or now.date())
    tolerance = store.registry.params.tolerance_bp
    recs = _Records()
    with store.engine.connect() as conn:
        report = AuditReportOut(
            node=node,
            generated=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            since=None if since is None else since.isoformat(),
            until=period.until.isoformat(),
            limit=limit,
            thresholds=AuditThresholdsOut(
                unconfirmed_days=days,
                tolerance_bp=tolerance,
                price_group_factor=PRICE_GROUP_FACTOR,
                price_group_min=PRICE_GROUP_MIN,
                price_reference_factor=PRICE_REFERENCE_FACTOR,
                records_per_finding=RECORDS_PER_FINDING,
            ),
            unconfirmed=_unconfirmed(conn, period, days, limit, recs),
            discrepancies=_discrepancies(conn, period, limit, recs),
            mirror_mismatches=_mirror(conn, period, limit, tolerance, recs),
            price_outliers=_price_outliers(conn, period, limit, recs),
            unrecorded_production=_unrecorded_production(conn, period, limit, recs),
            suspended_activity=_suspended_activity(conn, period, limit, recs),
            equivocation=_equivocation(conn, period, limit),
            refusals=_refusals(conn, period, limit, recs),
        )
        recs.fill(conn)
    return report


# ---------------------------------------------------------------- KP statistics


def _production(conn: Connection, period: Period) -> list[ProductionRow]:
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
    return [
        ProductionRow(participant=c, carats=w, value=v, parcels=n)
        for c, (w, v, n) in sorted(totals.items())
    ]


def kp_statistics(store: Store, period_text: str) -> StatsOut:
    """The KP statistics tables for a period (``2025`` or ``2025-Q1``)."""
    period = parse_period(period_text)
    assert period.since is not None
    with store.engine.connect() as conn:
        production = _production(conn, period)
        exports = [
            ExportRow(
                participant=a,
                partner=b,
                carats=_int(ct),
                value=_int(v),
                certificates=_int(n),
            )
            for a, b, ct, v, n in conn.execute(
                select(C.issuer, C.destination, func.sum(C.carats), func.sum(C.value), func.count())
                .where(C.status.not_in(_NOT_SHIPPED), *period.days(C.issued))
                .group_by(C.issuer, C.destination)
                .order_by(C.issuer, C.destination)
            )
        ]
        imports = [
            ImportRow(
                participant=b,
                partner=a,
                carats=_int(got),
                declared=_int(ct),
                value=_int(v),
                certificates=_int(n),
            )
            for b, a, got, ct, v, n in conn.execute(
                select(
                    C.destination,
                    C.issuer,
                    func.sum(C.received),
                    func.sum(C.carats),
                    func.sum(C.value),
                    func.count(),
                )
                .select_from(_closed_time())
                .where(C.status.in_(_CLOSED_BY_IMPORTER), *period.times(H.time))
                .group_by(C.destination, C.issuer)
                .order_by(C.destination, C.issuer)
            )
        ]
        counts: dict[str, dict[str, int]] = {}
        for issuer, status, n in conn.execute(
            select(C.issuer, C.status, func.count())
            .where(*period.days(C.issued))
            .group_by(C.issuer, C.status)
        ):
            counts.setdefault(issuer, {})[status] = _int(n)
    certificates = [
        CertificateCountRow(
            participant=issuer,
            total=sum(by.values()),
            unconfirmed=by.get(_ISSUED, 0),
            confirmed=by.get(CertificateStatus.CONFIRMED.value, 0),
            discrepancy=by.get(CertificateStatus.DISCREPANCY.value, 0),
            voided=by.get(_VOIDED, 0),
            refused=by.get(_REFUSED, 0),
        )
        for issuer, by in sorted(counts.items())
    ]
    return StatsOut(
        period=period_text,
        start=period.since.isoformat(),
        end=period.until.isoformat(),
        production=production,
        exports=exports,
        imports=imports,
        certificates=certificates,
        totals=StatsTotals(
            production_carats=sum(r.carats for r in production),
            production_value=sum(r.value for r in production),
            production_parcels=sum(r.parcels for r in production),
            export_carats=sum(r.carats for r in exports),
            export_value=sum(r.value for r in exports),
            export_certificates=sum(r.certificates for r in exports),
            import_carats=sum(r.carats for r in imports),
            import_value=sum(r.value for r in imports),
            import_certificates=sum(r.certificates for r in imports),
            certificates=sum(r.total for r in certificates),
        ),
    )


#: the columns of the statistics CSV; cells a section does not use are empty
CSV_COLUMNS = (
    "section",
    "participant",
    "partner",
    "carats",
    "usd",
    "count",
    "declared_carats",
    "unconfirmed",
    "confirmed",
    "discrepancy",
    "voided",
    "refused",
)


def _decimal(hundredths: int) -> str:
    """Exact decimal text of an integer number of hundredths (carats or US cents)."""
    sign = "-" if hundredths < 0 else ""
    n = abs(hundredths)
    return f"{sign}{n // 100}.{n % 100:02d}"


def _csv_rows(stats: StatsOut) -> Iterator[Iterable[object]]:
    yield CSV_COLUMNS
    for p in stats.production:
        yield ("production", p.participant, "", _decimal(p.carats), _decimal(p.value), p.parcels)
    for e in stats.exports:
        yield (
            "exports",
            e.participant,
            e.partner,
            _decimal(e.carats),
            _decimal(e.value),
            e.certificates,
        )
    for i in stats.imports:
        yield (
            "imports",
            i.participant,
            i.partner,
            _decimal(i.carats),
            _decimal(i.value),
            i.certificates,
            _decimal(i.declared),
        )
    for c in stats.certificates:
        yield (
            "certificates",
            c.participant,
            "",
            "",
            "",
            c.total,
            "",
            c.unconfirmed,
            c.confirmed,
            c.discrepancy,
            c.voided,
            c.refused,
        )


def stats_csv(stats: StatsOut) -> str:
    """One CSV table: a ``section`` column (production, exports, imports, certificates).

    ``carats`` and ``usd`` are exact decimals (two places); ``count`` is parcels
    for production and certificates elsewhere; ``declared_carats`` (imports)
    is what the certificates declared; the status columns are for
    ``certificates`` rows. Cells a section does not use are empty.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in _csv_rows(stats):
        cells = list(row)
        writer.writerow(cells + [""] * (len(CSV_COLUMNS) - len(cells)))
    return out.getvalue()
