"""The auditors' queries over a store: the findings of the audit report and the KP statistics.

Every query is SQLAlchemy Core against the store's tables; the answers are
frozen rows of this module, which the API only formats. A database error is
translated into ``StoreError`` here, in one place (``AuditQueries``). Every
list is bounded: a finding list stops at ``limit`` items and says
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
  issued in the period (voided excluded, and in-transit ones excluded)
  against B's confirmations of A's certificates sealed in the period:
  reported when the counts differ or the carats differ by more than
  ``tolerance_bp`` of A's exported carats;
* **in transit**: a certificate issued in the period, neither confirmed nor
  voided, whose expiry is not past as of the period's last day: listed, and
  left out of the mirror comparison until it expires (after that it counts
  as exported and unmatched);
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
  producing participant, in the year of its ``produced`` date, in the
  network's reference (genesis ``params.producers``, per year; a year it
  does not name falls back to the shipped 2023 table, ``ledger.kpdata``);
* **suspended activity**: records sealed by a participant's chain in blocks
  timed after the governance block that suspended it (and before the one
  that reinstated it, if any);
* **equivocation**: the evidence this node holds (two validly signed headers
  of one chain that contradict), when either header falls in the period.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, and_, case, func, not_, or_, select
from sqlalchemy.exc import SQLAlchemyError

from ledger.blocks import Evidence, Header
from ledger.canonical import parse_canonical
from ledger.errors import StoreError
from ledger.kpdata import PRODUCERS, usd_per_carat
from ledger.records import GOVERNANCE_CHAIN, Kind
from ledger.registry import Params
from ledger.state import CertificateStatus
from ledger.store import tables as t
from ledger.store.rows import IN_CHUNK

__all__ = [
    "MAX_FINDINGS",
    "PERIOD_PATTERN",
    "PRICE_GROUP_FACTOR",
    "PRICE_GROUP_MIN",
    "PRICE_REFERENCE_FACTOR",
    "RECORDS_PER_FINDING",
    "UNCONFIRMED_DAYS",
    "AuditQueries",
    "AuditRecord",
    "Bounded",
    "CertificateCount",
    "Discrepancy",
    "Equivocation",
    "ExportTotal",
    "Findings",
    "ImportTotal",
    "InTransit",
    "MirrorMismatch",
    "Period",
    "PriceOutlier",
    "ProductionTotal",
    "Statistics",
    "SuspendedActivity",
    "Unconfirmed",
    "UnrecordedProduction",
    "parse_period",
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

C = t.certificates.c
R = t.records.c
H = t.headers.c

T = TypeVar("T")


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


# ---------------------------------------------------------------- result rows


@dataclass(frozen=True)
class AuditRecord:
    """A record behind a finding: its place in its chain's log, its kind, block and time."""

    chain: str
    index: int
    hash: str
    kind: str
    height: int | None = None
    time: str | None = None


@dataclass(frozen=True)
class Unconfirmed:
    number: str
    issuer: str
    destination: str
    issued: str
    expires: str
    days_open: int
    expired: bool
    carats: int
    records: tuple[AuditRecord, ...]


@dataclass(frozen=True)
class Discrepancy:
    number: str
    issuer: str
    destination: str
    issued: str
    declared: int
    received: int
    difference: int
    difference_bp: int
    records: tuple[AuditRecord, ...]


@dataclass(frozen=True)
class MirrorMismatch:
    exporter: str
    importer: str
    exported_carats: int
    exported_certificates: int
    imported_carats: int
    imported_certificates: int
    difference: int
    in_transit: int
    records: tuple[AuditRecord, ...]
    records_truncated: bool


@dataclass(frozen=True)
class InTransit:
    """A certificate issued in the period, neither confirmed nor voided, not yet expired."""

    number: str
    issuer: str
    destination: str
    issued: str
    expires: str
    carats: int
    records: tuple[AuditRecord, ...]


@dataclass(frozen=True)
class PriceOutlier:
    number: str
    issuer: str
    hs: str
    origin: str
    issued: str
    carats: int
    value: int
    usd_per_carat: float
    group_median: float | None
    group_size: int
    reference: float | None
    reasons: tuple[str, ...]
    records: tuple[AuditRecord, ...]


@dataclass(frozen=True)
class UnrecordedProduction:
    chain: str
    parcel: str
    weight: int
    value: int
    mine: str
    produced: str
    records: tuple[AuditRecord, ...]


@dataclass(frozen=True)
class SuspendedActivity:
    participant: str
    suspended: str
    reinstated: str | None
    suspension: AuditRecord
    count: int
    records: tuple[AuditRecord, ...]
    records_truncated: bool


@dataclass(frozen=True)
class Equivocation:
    id: str
    chain: str
    headers: tuple[Header, Header]


@dataclass(frozen=True)
class Bounded(Generic[T]):
    """At most ``limit`` items of a finding list; ``truncated`` when there were more."""

    items: tuple[T, ...]
    truncated: bool


@dataclass(frozen=True)
class Findings:
    """Every finding list of the audit report for one period."""

    period: Period
    unconfirmed: Bounded[Unconfirmed]
    discrepancies: Bounded[Discrepancy]
    mirror_mismatches: Bounded[MirrorMismatch]
    in_transit: Bounded[InTransit]
    price_outliers: Bounded[PriceOutlier]
    unrecorded_production: Bounded[UnrecordedProduction]
    suspended_activity: Bounded[SuspendedActivity]
    equivocation: Bounded[Equivocation]


@dataclass(frozen=True)
class ProductionTotal:
    participant: str
    carats: int
    value: int
    parcels: int


@dataclass(frozen=True)
class ExportTotal:
    participant: str
    partner: str
    carats: int
    value: int
    certificates: int


@dataclass(frozen=True)
class ImportTotal:
    participant: str
    partner: str
    carats: int
    declared: int
    value: int
    certificates: int


@dataclass(frozen=True)
class CertificateCount:
    participant: str
    total: int
    unconfirmed: int
    confirmed: int
    discrepancy: int
    voided: int


@dataclass(frozen=True)
class Statistics:
    """The KP statistics tables of one period."""

    period: Period
    production: tuple[ProductionTotal, ...]
    exports: tuple[ExportTotal, ...]
    imports: tuple[ImportTotal, ...]
    certificates: tuple[CertificateCount, ...]


# ---------------------------------------------------------------- records behind findings

RefKey = tuple[str, int, bytes, str]  # chain, index, leaf hash, kind


class _Records:
    """Resolves the records named by a finding list to their block heights and times."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.known: dict[tuple[str, int], tuple[int, str]] = {}

    def resolve(self, keys: Iterable[RefKey]) -> Callable[[RefKey], AuditRecord]:
        """Look up every key at once (one query per chain and chunk); answer a converter."""
        by_chain: dict[str, set[int]] = {}
        for chain, index, _, _ in keys:
            if (chain, int(index)) not in self.known:
                by_chain.setdefault(chain, set()).add(int(index))
        for chain, wanted in by_chain.items():
            ids = sorted(wanted)
            for i in range(0, len(ids), IN_CHUNK):
                q = (
                    select(R.idx, R.height, H.time)
                    .join(t.headers, and_(H.chain == R.chain, H.height == R.height))
                    .where(R.chain == chain, R.idx.in_(ids[i : i + IN_CHUNK]))
                )
                for idx, height, time in self.conn.execute(q):
                    self.known[(chain, int(idx))] = (int(height), str(time))

        def convert(key: RefKey) -> AuditRecord:
            chain, index, digest, kind = key
            hit = self.known.get((chain, int(index)))
            return AuditRecord(
                chain,
                int(index),
                bytes(digest).hex(),
                kind,
                None if hit is None else hit[0],
                None if hit is None else hit[1],
            )

        return convert


# ---------------------------------------------------------------- findings


def _unconfirmed(
    conn: Connection, period: Period, days: int, limit: int, recs: _Records
) -> Bounded[Unconfirmed]:
    cutoff = _minus_days(period.until, days)
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
        .where(C.status == _ISSUED, C.issued <= cutoff.isoformat(), *period.days(C.issued))
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


def _discrepancies(
    conn: Connection, period: Period, limit: int, recs: _Records
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
        declared, got = int(carats), _int(received)
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


def _closed_time() -> Any:
    """The certificates joined to the block of their closing record (outer: open ones too)."""
    return t.certificates.outerjoin(
        t.records, and_(R.chain == C.closed_chain, R.idx == C.closed_idx)
    ).outerjoin(t.headers, and_(H.chain == R.chain, H.height == R.height))


def _in_transit_now(period: Period) -> ColumnElement[bool]:
    """Still open (neither confirmed nor voided) and not expired as of the period's last day.

    Such a certificate is on its way: its absence from the importer's
    confirmations is no mismatch until it expires.
    """
    return and_(C.status == _ISSUED, C.expires >= period.until.isoformat())


def _mirror(
    conn: Connection, period: Period, limit: int, tolerance_bp: int, recs: _Records
) -> Bounded[MirrorMismatch]:
    exported = conn.execute(
        select(
            C.issuer,
            C.destination,
            func.sum(case((_in_transit_now(period), 0), else_=1)),
            func.sum(case((_in_transit_now(period), 0), else_=C.carats)),
            func.sum(case((_in_transit_now(period), 1), else_=0)),
        )
        .where(C.status != _VOIDED, *period.days(C.issued))
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
        keys, more = _mirror_records(conn, period, a, b)
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


def _mirror_records(conn: Connection, period: Period, a: str, b: str) -> tuple[list[RefKey], bool]:
    """The certificates of A to B counted on one side only, or received at another weight."""
    exported_in = and_(C.status != _VOIDED, not_(_in_transit_now(period)), *period.days(C.issued))
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
    out: list[RefKey] = []
    for ic, ii, ih, cc, ci, ch, status in rows[:RECORDS_PER_FINDING]:
        out.append((ic, ii, ih, Kind.CERTIFICATE_ISSUE.value))
        if cc is not None and status in _CLOSED_BY_IMPORTER:
            out.append((cc, ci, ch, Kind.CERTIFICATE_CONFIRM.value))
    return out, len(rows) > RECORDS_PER_FINDING


def _in_transit(conn: Connection, period: Period, limit: int, recs: _Records) -> Bounded[InTransit]:
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
        .where(_in_transit_now(period), *period.days(C.issued))
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


@dataclass(frozen=True)
class _Priced:
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


def _priced(conn: Connection, period: Period) -> list[_Priced]:
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
    return [
        _Priced(
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


def _price_outliers(
    conn: Connection, period: Period, limit: int, recs: _Records
) -> Bounded[PriceOutlier]:
    certs = _priced(conn, period)
    groups: dict[tuple[str, str], list[float]] = {}
    for cert in certs:
        groups.setdefault((cert.issuer, cert.hs), []).append(cert.price)
    medians = {
        key: statistics.median(prices)
        for key, prices in groups.items()
        if len(prices) >= PRICE_GROUP_MIN
    }
    found: list[tuple[float, _Priced, tuple[str, ...], float | None, float | None]] = []
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


def _ratio(price: float, against: float) -> float:
    """How many times off ``against`` a price is, either way (>= 1; inf for a zero price)."""
    if price <= 0:
        return float("inf")
    return max(price / against, against / price)


def _unrecorded_production(
    conn: Connection, period: Period, limit: int, params: Params, recs: _Records
) -> Bounded[UnrecordedProduction]:
    """``parcel.register`` by a participant the network's reference does not list as a
    producer in the year of the ``produced`` date (``Params.producers_in``)."""
    always = PRODUCERS.intersection(*(codes for _, codes in params.producers))
    q = (
        select(R.chain, R.idx, R.leaf, R.raw)
        .join(t.headers, and_(H.chain == R.chain, H.height == R.height))
        .where(
            R.kind == Kind.PARCEL_REGISTER.value,
            R.chain.not_in(sorted(always)),  # a producer of every year is never flagged
            *period.times(H.time),
        )
        .order_by(R.chain, R.idx)
        .execution_options(stream_results=True, yield_per=500)
    )
    flagged: list[tuple[str, int, bytes, dict[str, Any]]] = []
    rows = conn.execute(q)
    for chain, idx, leaf, raw in rows:
        body = json.loads(bytes(raw))["body"]
        if chain in params.producers_in(int(str(body["produced"])[:4])):
            continue
        flagged.append((chain, int(idx), bytes(leaf), body))
        if len(flagged) > limit:
            break
    rows.close()
    register = Kind.PARCEL_REGISTER.value
    ref = recs.resolve((chain, idx, leaf, register) for chain, idx, leaf, _ in flagged[:limit])
    items = tuple(
        UnrecordedProduction(
            chain=chain,
            parcel=str(body["parcel"]),
            weight=int(body["weight"]),
            value=int(body["value"]),
            mine=str(body["mine"]),
            produced=str(body["produced"]),
            records=(ref((chain, idx, leaf, register)),),
        )
        for chain, idx, leaf, body in flagged[:limit]
    )
    return Bounded(items, len(flagged) > limit)


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
) -> Bounded[SuspendedActivity]:
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
        keys: list[RefKey] = [(code, i, h, k) for i, h, k in rows]
        ref = recs.resolve(keys)
        items.append(
            SuspendedActivity(
                participant=code,
                suspended=suspended,
                reinstated=reinstated,
                suspension=AuditRecord(GOVERNANCE_CHAIN, idx, leaf.hex(), kind, height, suspended),
                count=count,
                records=tuple(ref(k) for k in keys),
                records_truncated=count > len(rows),
            )
        )
    return Bounded(tuple(items), len(suspensions) > limit)


def _equivocation(conn: Connection, period: Period, limit: int) -> Bounded[Equivocation]:
    items: list[Equivocation] = []
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
        items.append(Equivocation(ev_id, ev.chain, (ev.a.header, ev.b.header)))
    rows.close()
    return Bounded(tuple(items), truncated)


# ---------------------------------------------------------------- KP statistics


def _production(conn: Connection, period: Period) -> tuple[ProductionTotal, ...]:
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


def _exports(conn: Connection, period: Period) -> tuple[ExportTotal, ...]:
    return tuple(
        ExportTotal(a, b, _int(ct), _int(v), _int(n))
        for a, b, ct, v, n in conn.execute(
            select(C.issuer, C.destination, func.sum(C.carats), func.sum(C.value), func.count())
            .where(C.status != _VOIDED, *period.days(C.issued))
            .group_by(C.issuer, C.destination)
            .order_by(C.issuer, C.destination)
        )
    )


def _imports(conn: Connection, period: Period) -> tuple[ImportTotal, ...]:
    return tuple(
        ImportTotal(b, a, _int(got), _int(ct), _int(v), _int(n))
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
    )


def _certificate_counts(conn: Connection, period: Period) -> tuple[CertificateCount, ...]:
    counts: dict[str, dict[str, int]] = {}
    for issuer, status, n in conn.execute(
        select(C.issuer, C.status, func.count())
        .where(*period.days(C.issued))
        .group_by(C.issuer, C.status)
    ):
        counts.setdefault(issuer, {})[status] = _int(n)
    return tuple(
        CertificateCount(
            participant=issuer,
            total=sum(by.values()),
            unconfirmed=by.get(_ISSUED, 0),
            confirmed=by.get(CertificateStatus.CONFIRMED.value, 0),
            discrepancy=by.get(CertificateStatus.DISCREPANCY.value, 0),
            voided=by.get(_VOIDED, 0),
        )
        for issuer, by in sorted(counts.items())
    )


# ---------------------------------------------------------------- the queries


class AuditQueries:
    """The auditors' reads of one store; every database error leaves as ``StoreError``."""

    def __init__(self, engine: Engine, params: Params) -> None:
        self.engine = engine
        self.params = params
        self.tolerance_bp = params.tolerance_bp

    def _read(self, what: str, body: Callable[[Connection], T]) -> T:
        try:
            with self.engine.connect() as conn:
                return body(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the {what}: {exc.__class__.__name__}: {exc}") from exc

    def findings(
        self, period: Period, *, days: int = UNCONFIRMED_DAYS, limit: int = 100
    ) -> Findings:
        """Every finding list of the report for ``period``, each bounded by ``limit``."""

        def read(conn: Connection) -> Findings:
            recs = _Records(conn)
            return Findings(
                period=period,
                unconfirmed=_unconfirmed(conn, period, days, limit, recs),
                discrepancies=_discrepancies(conn, period, limit, recs),
                mirror_mismatches=_mirror(conn, period, limit, self.tolerance_bp, recs),
                in_transit=_in_transit(conn, period, limit, recs),
                price_outliers=_price_outliers(conn, period, limit, recs),
                unrecorded_production=_unrecorded_production(
                    conn, period, limit, self.params, recs
                ),
                suspended_activity=_suspended_activity(conn, period, limit, recs),
                equivocation=_equivocation(conn, period, limit),
            )

        return self._read("audit findings", read)

    def statistics(self, period: Period) -> Statistics:
        """The KP statistics tables for ``period`` (which must have a first day)."""
        assert period.since is not None, "statistics need a period with a first day"

        def read(conn: Connection) -> Statistics:
            return Statistics(
                period=period,
                production=_production(conn, period),
                exports=_exports(conn, period),
                imports=_imports(conn, period),
                certificates=_certificate_counts(conn, period),
            )

        return self._read("KP statistics", read)
