"""Quarterly statistics reports (``stats.report``): what a chain's cells are, what its
reports say, and where the two disagree (the ``statistics-mismatch`` finding).

A chain's cells for a quarter, as its records show them:

* **production**: ``parcel.register`` by ``produced`` date and ``parcel.purchase``
  (first sales) by ``bought`` date, on the chain: carats, parcels, value;
* **exports** by destination: certificates the chain issued in the quarter,
  voided and refused ones excluded: carats declared, certificates, total value;
* **imports** by issuer: certificates the chain closed (confirmed, or held on a
  discrepancy) in blocks of the quarter: carats received, certificates, total value.

``as of`` a report, only what the ledger showed when the report was sealed
counts: records of the chain before the report's index, and a void or a
refusal only when its block is not later than the report's. A certificate
refused after the report does not make the report wrong.

Values are the clear cents this node holds disclosures of; a cell whose every
commitment this node can open is ``known``, and only a known cell's value is
compared with a report's (an uninvolved node compares carats and counts, which
are public; an auditor compares everything).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, and_, select

from kpledger.ledger.canonical import load_stored
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.records import Kind, StatsCell, StatsReport
from kpledger.ledger.schema import Fields
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.audit.base import (
    CLOSED_BY_IMPORTER,
    NOT_SHIPPED,
    RECORDS_PER_FINDING,
    C,
    H,
    Period,
    R,
    RecordResolver,
    RefKey,
    cents_of,
)
from kpledger.ledger.store.audit.rows import Bounded, StatisticsMismatch

__all__ = [
    "Cell",
    "Report",
    "quarter_cells",
    "quarter_period",
    "quarters_in",
    "report_body",
    "reports",
    "statistics_mismatch",
]

#: the sections of a report, in its order
SECTIONS = ("production", "exports", "imports")


@dataclass(frozen=True)
class Cell:
    """One cell as the ledger shows it: ``known`` when this node opens every value in it."""

    section: str
    partner: str  # "" for production
    carats: int
    count: int
    cents: int
    known: bool
    records: tuple[RefKey, ...]


@dataclass(frozen=True)
class Report:
    """A sealed ``stats.report``: where it is, when its block was sealed, what it says."""

    chain: str
    index: int
    leaf: bytes
    time: str
    body: StatsReport

    def cells(self) -> dict[tuple[str, str], StatsCell]:
        out: dict[tuple[str, str], StatsCell] = {("production", ""): self.body.production}
        out.update({("exports", c.partner): c for c in self.body.exports})
        out.update({("imports", c.partner): c for c in self.body.imports})
        return out


def quarter_period(quarter: str) -> Period:
    """``2026-Q1`` -> January 1 to March 31, 2026."""
    year, q = int(quarter[:4]), int(quarter[-1])
    end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return Period(date(year, 3 * q - 2, 1), end - timedelta(days=1))


def quarters_in(period: Period) -> tuple[str, ...]:
    """The quarters wholly inside a period of whole quarters (a year: four)."""
    assert period.since is not None
    out: list[str] = []
    day = period.since
    while day <= period.until:
        q = (day.month - 1) // 3 + 1
        name = f"{day.year:04d}-Q{q}"
        qp = quarter_period(name)
        if qp.since == day and qp.until <= period.until:
            out.append(name)
        day = qp.until + timedelta(days=1)
    return tuple(out)


def _production(
    conn: Connection, chain: str, period: Period, before: int | None
) -> tuple[int, list[str], list[RefKey]]:
    assert period.since is not None
    lo, hi = period.since.isoformat(), period.until.isoformat()
    carats = 0
    values: list[str] = []
    refs: list[RefKey] = []
    q = select(R.idx, R.kind, R.leaf, R.raw).where(
        R.chain == chain, R.kind.in_((Kind.PARCEL_REGISTER.value, Kind.PARCEL_PURCHASE.value))
    )
    if before is not None:
        q = q.where(R.idx < before)
    for idx, kind, leaf, raw in conn.execute(q.order_by(R.idx)):
        body = load_stored(bytes(raw))["body"]
        day = body["produced"] if kind == Kind.PARCEL_REGISTER.value else body["bought"]
        if not lo <= day <= hi:
            continue
        carats += int(body["weight"])
        field = "value" if kind == Kind.PARCEL_REGISTER.value else "price"
        values.append(str(body[field]["c"]))
        refs.append((chain, int(idx), bytes(leaf), str(kind)))
    return carats, values, refs


def quarter_cells(
    conn: Connection, chain: str, quarter: str, *, before: tuple[int, str] | None = None
) -> dict[tuple[str, str], Cell]:
    """``chain``'s cells for ``quarter`` keyed by (section, partner), as of ``before``
    (the report's index on the chain and its block time) or as of now."""
    period = quarter_period(quarter)
    cutoff = None if before is None else before[0]
    gathered: dict[tuple[str, str], tuple[list[int], list[str], list[RefKey]]] = {}
    carats, values, refs = _production(conn, chain, period, cutoff)
    gathered[("production", "")] = ([carats], values, refs)

    closer = t.records.alias("closer")
    closing = t.headers.alias("closing")
    exports = (
        select(
            C.destination, C.carats, C.value, C.status, C.issue_idx, C.issue_hash, closing.c.time
        )
        .select_from(
            t.certificates.outerjoin(
                closer, and_(closer.c.chain == C.closed_chain, closer.c.idx == C.closed_idx)
            ).outerjoin(
                closing,
                and_(closing.c.chain == closer.c.chain, closing.c.height == closer.c.height),
            )
        )
        .where(C.issuer == chain, *period.days(C.issued))
        .order_by(C.issue_idx)
    )
    if cutoff is not None:
        exports = exports.where(C.issue_idx < cutoff)
    for partner, ct, value, status, idx, leaf, closed_at in conn.execute(exports):
        if status in NOT_SHIPPED and (
            before is None or (closed_at is not None and str(closed_at) <= before[1])
        ):
            continue
        w, v, r = gathered.setdefault(("exports", str(partner)), ([], [], []))
        w.append(int(ct))
        v.append(str(value))
        r.append((chain, int(idx), bytes(leaf), Kind.CERTIFICATE_ISSUE.value))

    imports = (
        select(C.issuer, C.received, C.value, C.closed_idx, C.closed_hash, R.kind)
        .select_from(
            t.certificates.join(
                t.records, and_(R.chain == C.closed_chain, R.idx == C.closed_idx)
            ).join(t.headers, and_(H.chain == R.chain, H.height == R.height))
        )
        .where(
            C.destination == chain,
            C.closed_chain == chain,
            C.status.in_(CLOSED_BY_IMPORTER),
            *period.times(H.time),
        )
        .order_by(C.closed_idx)
    )
    if cutoff is not None:
        imports = imports.where(C.closed_idx < cutoff)
    for partner, got, value, idx, leaf, kind in conn.execute(imports):
        w, v, r = gathered.setdefault(("imports", str(partner)), ([], [], []))
        w.append(int(got or 0))
        v.append(str(value))
        r.append((chain, int(idx), bytes(leaf), str(kind)))

    clear = cents_of(conn, (c for _, values, _ in gathered.values() for c in values))
    out: dict[tuple[str, str], Cell] = {}
    for (section, partner), (weights, values, recs) in gathered.items():
        out[(section, partner)] = Cell(
            section,
            partner,
            sum(weights),
            len(values),
            sum(clear.get(c, 0) for c in values),
            all(c in clear for c in values),
            tuple(recs),
        )
    return out


def report_body(quarter: str, cells: dict[tuple[str, str], Cell], min_cell: int) -> dict[str, Any]:
    """The body of ``stats.report`` for ``quarter`` from the chain's cells: every cell's
    carats and count, and its USD where at least ``min_cell`` records make it (rule S2).

    Raises ``InvalidData`` when such a cell holds a value this node cannot open yet (an
    import whose certificate's disclosures have not arrived): a report is sealed once.
    """

    def cell(section: str, partner: str, count_name: str) -> dict[str, Any]:
        c = cells.get((section, partner))
        carats, count = (0, 0) if c is None else (c.carats, c.count)
        out: dict[str, Any] = {"carats": carats, count_name: count}
        if partner:
            out = {"partner": partner, **out}
        if c is not None and count >= min_cell:
            if not c.known:
                raise InvalidData(
                    f"this node does not hold the values of every record of {section} "
                    f"{partner or ''} in {quarter} yet (disclosures still to arrive); "
                    "compose the report once they have",
                    field="quarter",
                )
            out["value"] = c.cents
        return out

    return {
        "quarter": quarter,
        "production": cell("production", "", "parcels"),
        **{
            section: [
                cell(section, p, "certificates")
                for s, p in sorted(cells)
                if s == section and cells[(s, p)].count > 0
            ]
            for section in ("exports", "imports")
        },
    }


def reports(conn: Connection, period: Period, chain: str | None = None) -> tuple[Report, ...]:
    """The sealed reports of the quarters inside ``period`` (of one chain, or of all); a
    period without a first day holds every quarter up to its last day."""
    q = (
        select(R.chain, R.idx, R.leaf, R.raw, H.time)
        .join(t.headers, and_(H.chain == R.chain, H.height == R.height))
        .where(R.kind == Kind.STATS_REPORT.value)
        .order_by(R.chain, R.idx)
    )
    if chain is not None:
        q = q.where(R.chain == chain)
    out: list[Report] = []
    for c, idx, leaf, raw, time in conn.execute(q):
        body = StatsReport.parse(Fields(load_stored(bytes(raw))["body"], "body"))
        span = quarter_period(body.quarter)
        assert span.since is not None
        if span.until <= period.until and (period.since is None or span.since >= period.since):
            out.append(Report(str(c), int(idx), bytes(leaf), str(time), body))
    return tuple(out)


def _compare(
    report: Report, ledger: dict[tuple[str, str], Cell]
) -> list[tuple[str, str, str, int | None, int | None, tuple[RefKey, ...]]]:
    """(section, partner, field, reported, ledger, records) of every disagreement."""
    said = report.cells()
    found: list[tuple[str, str, str, int | None, int | None, tuple[RefKey, ...]]] = []
    keys = sorted(set(said) | set(ledger), key=lambda k: (SECTIONS.index(k[0]), k[1]))
    for key in keys:
        mine, seen = said.get(key), ledger.get(key)
        recs = () if seen is None else seen.records
        if mine is None and seen is not None and seen.count == 0:
            continue
        got = (0, 0) if mine is None else (mine.carats, mine.count)
        real = (0, 0) if seen is None else (seen.carats, seen.count)
        for name, a, b in (("carats", got[0], real[0]), ("count", got[1], real[1])):
            if a != b:
                found.append((key[0], key[1], name, a, b, recs))
        if (
            mine is not None
            and mine.value is not None
            and seen is not None
            and seen.known
            and mine.value != seen.cents
        ):
            found.append((key[0], key[1], "value", mine.value, seen.cents, recs))
    return found


def statistics_mismatch(
    conn: Connection, period: Period, limit: int, recs: RecordResolver
) -> Bounded[StatisticsMismatch]:
    """Every report of the period's quarters against the ledger as of its sealing: carats
    and counts on every node, values where this node opens every value of the cell."""
    rows: list[tuple[Report, tuple[str, str, str, int | None, int | None, tuple[RefKey, ...]]]] = []
    for report in reports(conn, period):
        cells = quarter_cells(
            conn, report.chain, report.body.quarter, before=(report.index, report.time)
        )
        rows.extend((report, d) for d in _compare(report, cells))
    kept = rows[:limit]
    keys: list[RefKey] = []
    for report, (*_, refs) in kept:
        keys.append((report.chain, report.index, report.leaf, Kind.STATS_REPORT.value))
        keys.extend(refs[: RECORDS_PER_FINDING - 1])
    ref = recs.resolve(keys)
    items = tuple(
        StatisticsMismatch(
            report.chain,
            report.body.quarter,
            section,
            partner,
            name,
            reported,
            held,
            (
                ref((report.chain, report.index, report.leaf, Kind.STATS_REPORT.value)),
                *(ref(k) for k in refs[: RECORDS_PER_FINDING - 1]),
            ),
        )
        for report, (section, partner, name, reported, held, refs) in kept
    )
    return Bounded(items, len(rows) > limit)
