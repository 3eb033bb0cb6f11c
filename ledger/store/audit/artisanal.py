"""Internal controls over artisanal production, and production by method.

Per producer with first sales (``parcel.purchase``) and period, the store adds
up a ``ledger.artisanal.Totals`` and the pure ``controls`` turns it into the
indicators (README, "Artisanal and alluvial production"):

* first sales: ``purchases`` bought in the period (by their ``bought`` date);
* other production: ``parcel.register`` by ``produced`` date (``statistics.production``);
* imports: carats received on confirmations sealed in the period;
* exports: certificates issued in the period, voided and refused excluded; the
  carats traced are, per exported parcel, the part of its weight its claims
  composition holds of the producer's own claims (ids start with its code).

**Export surplus** (a finding): in the period, the producer exported more
carats than it recorded producing (first sales by ``bought`` date, mine
registrations by ``produced`` date) plus what it imported: the KP's own
statistical check, per period. On a ledger every exported stone was
registered or imported at some time, so a surplus means production dated
outside the period (a registration back-dated to launder stones, say) or
stock carried over from an earlier period: the finding names the
certificates of the period (at most ``RECORDS_PER_FINDING``) for the
auditor to follow to their sources.

Production by method: first sales by their ``method``; ``parcel.register``
counts as ``industrial``. The first-sale price per carat of a cell is shown
only when at least ``ledger.artisanal.MIN_CELL`` purchases make it, and a
producer's one withheld cell takes a second with it (``_complement``), so that
no cell is recovered from the producer's published total by subtraction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, select

from kpledger.ledger.artisanal import MIN_CELL, Totals, controls, price_cell
from kpledger.ledger.records import Kind
from kpledger.ledger.state import Assessment
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.audit.base import (
    CLOSED_BY_IMPORTER,
    NOT_SHIPPED,
    RECORDS_PER_FINDING,
    C,
    H,
    Period,
    RecordResolver,
    RefKey,
    as_int,
    closed_time,
    known_cents,
)
from kpledger.ledger.store.audit.rows import (
    Bounded,
    ControlRow,
    ExportSurplus,
    MethodTotal,
    ProductionTotal,
)
from kpledger.ledger.store.audit.statistics import production
from kpledger.ledger.store.rows import IN_CHUNK, ref_of

__all__ = [
    "EARLIEST",
    "MAX_ASSESSMENTS",
    "all_production",
    "artisanal_production",
    "assessments",
    "export_surplus",
    "internal_controls",
    "methods",
    "producers",
]

P = t.purchases.c
#: the first day of a period "from the beginning"
EARLIEST = date(2000, 1, 1)
#: most assessment rows one read answers (a few dozen indicators a year for decades)
MAX_ASSESSMENTS = 10_000


def producers(conn: Connection, period: Period) -> list[str]:
    """Participants with first sales recorded up to the period's last day."""
    q = select(P.chain).where(P.bought <= period.until.isoformat()).group_by(P.chain)
    return sorted(str(c) for (c,) in conn.execute(q))


def artisanal_production(conn: Connection, period: Period) -> dict[str, tuple[int, int, int]]:
    """participant -> (carats, cents, purchases) of first sales in the period."""
    v = known_cents()
    q = (
        select(P.chain, func.sum(P.weight), func.sum(v.c.cents), func.count())
        .select_from(t.purchases.outerjoin(v, v.c.commitment == P.price))
        .where(*period.days(P.bought))
        .group_by(P.chain)
    )
    return {str(c): (as_int(w), as_int(v), as_int(n)) for c, w, v, n in conn.execute(q)}


def methods(conn: Connection, period: Period) -> tuple[MethodTotal, ...]:
    """Production of the period by participant and method (``parcel.register``: industrial)."""
    cells: dict[tuple[str, str], list[int]] = {}
    v = known_cents()
    q = (
        select(P.chain, P.method, func.sum(P.weight), func.sum(v.c.cents), func.count())
        .select_from(t.purchases.outerjoin(v, v.c.commitment == P.price))
        .where(*period.days(P.bought))
        .group_by(P.chain, P.method)
    )
    for chain, method, w, v, n in conn.execute(q):
        cells[(str(chain), str(method))] = [as_int(w), as_int(v), as_int(n), as_int(n)]
    for row in production(conn, period):
        # registrations at a mine: industrial output, priced by the miner (not a first sale)
        cell = cells.setdefault((row.participant, "industrial"), [0, 0, 0, 0])
        cell[0] += row.carats
        cell[2] += row.parcels
    prices = {
        key: price_cell(sales, v, w) if sales == n else None
        for key, (w, v, n, sales) in cells.items()
    }
    _complement(cells, prices)
    return tuple(
        MethodTotal(chain, method, w, n, prices[(chain, method)])
        for (chain, method), (w, v, n, _) in sorted(cells.items())
    )


def _complement(cells: dict[tuple[str, str], list[int]], prices: dict[Any, int | None]) -> None:
    """Secondary suppression: a producer's first-sale price over all its purchases is
    published (``controls``, when 3 or more make it), so a producer with exactly one
    withheld cell would have it recovered by subtraction: its shown cell of the fewest
    purchases is withheld too (the withheld cells together then hold 3 or more)."""
    for chain in sorted({c for c, _ in cells}):
        mine = [(m, cells[(c, m)][3]) for c, m in cells if c == chain and cells[(c, m)][3] > 0]
        if sum(sales for _, sales in mine) < MIN_CELL:
            continue  # no producer total is published: nothing to subtract from
        withheld = [m for m, _ in mine if prices[(chain, m)] is None]
        shown = sorted((sales, m) for m, sales in mine if prices[(chain, m)] is not None)
        if len(withheld) == 1 and shown:
            prices[(chain, shown[0][1])] = None


def all_production(conn: Connection, period: Period) -> tuple[ProductionTotal, ...]:
    """The KP production table: registrations at mines plus first sales, by participant;
    the value is withheld (None) where fewer than ``MIN_CELL`` first sales are in it."""
    rows = {r.participant: [r.carats, r.value or 0, r.parcels] for r in production(conn, period)}
    withheld: set[str] = set()
    for chain, (w, v, n) in artisanal_production(conn, period).items():
        row = rows.setdefault(chain, [0, 0, 0])
        row[0] += w
        row[1] += v
        row[2] += n
        if n < MIN_CELL:  # a value of one or two first sales would show their prices
            withheld.add(chain)
    return tuple(
        ProductionTotal(c, w, None if c in withheld else v, n)
        for c, (w, v, n) in sorted(rows.items())
    )


def assessments(conn: Connection, chain: str | None = None) -> tuple[Assessment, ...]:
    """Diagnostic self-assessments, by chain, date and log order (all chains when None)."""
    a = t.assessments.c
    q = select(a.chain, a.idx, a.indicator, a.score, a.evidence, a.assessed, t.records.c.leaf).join(
        t.records, (t.records.c.chain == a.chain) & (t.records.c.idx == a.idx)
    )
    if chain is not None:
        q = q.where(a.chain == chain)
    q = q.order_by(a.chain, a.assessed, a.idx).limit(MAX_ASSESSMENTS)
    return tuple(
        Assessment(str(c), str(ind), int(score), str(ev), str(day), ref_of(c, i, leaf))
        for c, i, ind, score, ev, day, leaf in conn.execute(q)
    )


def _exports(conn: Connection, chain: str, period: Period) -> tuple[int, int, int, list[str]]:
    """(carats, cents, carats traced to the chain's claims, certificate numbers)."""
    carats = value = traced = 0
    numbers: list[str] = []
    parcels: list[str] = []
    v = known_cents()
    q = (
        select(C.number, C.carats, v.c.cents, C.parcels)
        .select_from(t.certificates.outerjoin(v, v.c.commitment == C.value))
        .where(C.issuer == chain, C.status.not_in(NOT_SHIPPED), *period.days(C.issued))
    )
    for number, ct, cents, listed in conn.execute(q):
        carats += as_int(ct)
        value += as_int(cents)
        numbers.append(str(number))
        parcels.extend(json.loads(listed))
    own = chain + "-"
    for i in range(0, len(parcels), IN_CHUNK):
        part = parcels[i : i + IN_CHUNK]
        rows = conn.execute(
            select(t.parcels.c.claims, t.parcels.c.weight).where(t.parcels.c.id.in_(part))
        )
        for claims, weight in rows:
            if claims:
                mine = sum(q for c, q in json.loads(claims).items() if c.startswith(own))
                traced += min(as_int(weight), mine)
    return carats, value, traced, numbers


def _imports(conn: Connection, chain: str, period: Period) -> int:
    q = (
        select(func.sum(C.received))
        .select_from(closed_time())
        .where(C.destination == chain, C.status.in_(CLOSED_BY_IMPORTER), *period.times(H.time))
    )
    return as_int(conn.execute(q).scalar())


def _bounded(period: Period) -> Period:
    """A period "from the beginning" starts at ``EARLIEST`` (nothing predates the KP)."""
    return Period(EARLIEST, period.until) if period.since is None else period


def _each_producer(conn: Connection, period: Period) -> Iterator[tuple[str, Totals, list[str]]]:
    """Every artisanal producer's totals for ``period`` and its certificates' numbers; the
    first sales and the mine registrations are read once for all of them."""
    period = _bounded(period)
    bought = artisanal_production(conn, period)
    registered = {r.participant: r.carats for r in production(conn, period)}
    for chain in producers(conn, period):
        yield (chain, *_totals(conn, chain, period, bought, registered))


def _totals(
    conn: Connection,
    chain: str,
    period: Period,
    bought_by: dict[str, tuple[int, int, int]],
    registered_by: dict[str, int],
) -> tuple[Totals, list[str]]:
    bought = bought_by.get(chain, (0, 0, 0))
    carats, value, traced, numbers = _exports(conn, chain, period)
    totals = Totals(
        purchased=bought[0],
        registered=registered_by.get(chain, 0),
        imported=_imports(conn, chain, period),
        exported=carats,
        exported_traced=traced,
        export_value=value,
        purchases=bought[2],
        purchase_value=bought[1],
    )
    return totals, numbers


def internal_controls(conn: Connection, period: Period) -> tuple[ControlRow, ...]:
    """The indicators of every artisanal producer for ``period`` (from the beginning of
    the ledger when it has no first day)."""
    return tuple(
        ControlRow(chain, totals, controls(totals))
        for chain, totals, _ in _each_producer(conn, period)
    )


def export_surplus(
    conn: Connection, period: Period, limit: int, recs: RecordResolver
) -> Bounded[ExportSurplus]:
    """Producers whose exports of the period exceed its production plus imports."""
    found: list[ExportSurplus] = []
    for chain, totals, numbers in _each_producer(conn, period):
        produced = totals.purchased + totals.registered
        surplus = totals.exported - produced - totals.imported
        if surplus <= 0:
            continue
        keys: list[RefKey] = [
            (str(c), as_int(i), bytes(h), Kind.CERTIFICATE_ISSUE.value)
            for c, i, h in conn.execute(
                select(C.issue_chain, C.issue_idx, C.issue_hash)
                .where(C.number.in_(numbers[:RECORDS_PER_FINDING]))
                .order_by(C.issue_idx)
            )
        ]
        convert = recs.resolve(keys)
        found.append(
            ExportSurplus(
                chain,
                totals.exported,
                produced,
                totals.imported,
                surplus,
                tuple(convert(k) for k in keys),
            )
        )
    return Bounded(tuple(found[:limit]), len(found) > limit)
