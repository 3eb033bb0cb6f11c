"""The auditors' answers: the audit report and the KP statistics, formatted for the API.

The queries live in the store (``ledger.store.audit``: SQL, thresholds, and
the frozen rows they answer); this module turns those rows into the API's
response models and the statistics into CSV. Thresholds are documented
there and in the README, and echoed in every report.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime

from kpledger.api.artisanal import controls_row, method_row, surplus_list
from kpledger.api.schemas import (
    AuditReportOut,
    AuditThresholdsOut,
    CertificateCountRow,
    DisclosureInconsistentList,
    DiscrepancyList,
    EquivocationList,
    EquivocationOut,
    ExportRow,
    HeaderRefOut,
    ImportRow,
    InTransitList,
    MirrorList,
    PriceOutlierList,
    ProductionRow,
    RefusalList,
    StatisticsMismatchList,
    StatsOut,
    StatsTotals,
    SuspendedActivityList,
    UnconfirmedList,
    UnrecordedProductionList,
)
from kpledger.ledger.blocks import Header
from kpledger.ledger.store import Store
from kpledger.ledger.store.audit import (
    MAX_FINDINGS,
    PERIOD_PATTERN,
    PRICE_GROUP_FACTOR,
    PRICE_GROUP_MIN,
    PRICE_REFERENCE_FACTOR,
    RECORDS_PER_FINDING,
    UNCONFIRMED_DAYS,
    Period,
    Report,
    parse_period,
)
from kpledger.ledger.store.audit.reports import quarters_in

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


def _header_ref(h: Header) -> HeaderRefOut:
    return HeaderRefOut(
        chain=h.chain,
        height=h.height,
        hash=h.hash.hex(),
        size=h.size,
        root=h.root.hex(),
        time=h.time,
    )


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
    found = store.audit.findings(period, days=days, limit=limit)
    return AuditReportOut(
        node=node,
        generated=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        since=None if since is None else since.isoformat(),
        until=period.until.isoformat(),
        limit=limit,
        thresholds=AuditThresholdsOut(
            unconfirmed_days=days,
            tolerance_bp=store.audit.tolerance_bp,
            price_group_factor=PRICE_GROUP_FACTOR,
            price_group_min=PRICE_GROUP_MIN,
            price_reference_factor=PRICE_REFERENCE_FACTOR,
            records_per_finding=RECORDS_PER_FINDING,
        ),
        unconfirmed=UnconfirmedList.model_validate(asdict(found.unconfirmed)),
        discrepancies=DiscrepancyList.model_validate(asdict(found.discrepancies)),
        mirror_mismatches=MirrorList.model_validate(asdict(found.mirror_mismatches)),
        in_transit=InTransitList.model_validate(asdict(found.in_transit)),
        price_outliers=PriceOutlierList.model_validate(asdict(found.price_outliers)),
        unrecorded_production=UnrecordedProductionList.model_validate(
            asdict(found.unrecorded_production)
        ),
        suspended_activity=SuspendedActivityList.model_validate(asdict(found.suspended_activity)),
        equivocation=EquivocationList(
            items=[
                EquivocationOut(id=e.id, chain=e.chain, headers=[_header_ref(h) for h in e.headers])
                for e in found.equivocation.items
            ],
            truncated=found.equivocation.truncated,
        ),
        refusals=RefusalList.model_validate(asdict(found.refusals)),
        disclosure_inconsistent=DisclosureInconsistentList.model_validate(
            asdict(found.disclosure_inconsistent)
        ),
        export_surplus=surplus_list(found.export_surplus),
        statistics_mismatch=StatisticsMismatchList.model_validate(
            asdict(found.statistics_mismatch)
        ),
        controls=[controls_row(r) for r in store.audit.controls(period)],
    )


class _Reported:
    """The USD the participants' quarterly reports give for a period's cells."""

    def __init__(self, reports: Iterable[Report], quarters: tuple[str, ...]) -> None:
        self.quarters = quarters
        self.by = {(r.chain, r.body.quarter): r.cells() for r in reports}

    def value(self, section: str, participant: str, partner: str = "") -> int | None:
        """The sum over the period's quarters; None when a quarter of the period is not
        reported by ``participant`` or its report withholds the cell (a cell a report
        does not name had no trade that quarter, as far as the report says)."""
        if not self.quarters:
            return None
        total = 0
        for quarter in self.quarters:
            cells = self.by.get((participant, quarter))
            if cells is None:
                return None
            cell = cells.get((section, partner))
            if cell is None:
                continue
            if cell.value is None:
                return None
            total += cell.value
        return total


def kp_statistics(store: Store, period_text: str, *, every_cell: bool = True) -> StatsOut:
    """The KP statistics tables for a period (``2025`` or ``2025-Q1``).

    Carats and counts come from the public records. USD: for an auditor
    (``every_cell``), the disclosures this node holds, every cell; for everyone
    else, the participants' quarterly ``stats.report`` records: a cell's USD is
    the sum of its quarters' reported values, null when a quarter of the period
    is not reported or a report withholds the cell. Statistical disclosure
    control is the reports' own (rule S2: a cell of fewer than the genesis
    ``min_cell`` records, 3 by default, carries no USD), so that no single
    shipment's value can be read from the public tables; a total over a
    withheld cell is withheld too (else the cell would be the difference).
    """
    period = parse_period(period_text)
    assert period.since is not None
    found = store.audit.statistics(period)
    production = [ProductionRow.model_validate(asdict(r)) for r in found.production]
    exports = [ExportRow.model_validate(asdict(r)) for r in found.exports]
    imports = [ImportRow.model_validate(asdict(r)) for r in found.imports]
    if not every_cell:
        told = _Reported(store.audit.reports(period), quarters_in(period))
        for row in production:
            row.value = told.value("production", row.participant)
        for e in exports:
            e.value = told.value("exports", e.participant, e.partner)
        for i in imports:
            i.value = told.value("imports", i.participant, i.partner)
    certificates = [CertificateCountRow.model_validate(asdict(r)) for r in found.certificates]
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
            production_value=None
            if any(r.value is None for r in production)
            else sum(r.value or 0 for r in production),
            production_parcels=sum(r.parcels for r in production),
            export_carats=sum(r.carats for r in exports),
            export_value=None
            if any(r.value is None for r in exports)
            else sum(r.value or 0 for r in exports),
            export_certificates=sum(r.certificates for r in exports),
            import_carats=sum(r.carats for r in imports),
            import_value=None
            if any(r.value is None for r in imports)
            else sum(r.value or 0 for r in imports),
            import_certificates=sum(r.certificates for r in imports),
            certificates=sum(r.total for r in certificates),
        ),
        methods=[method_row(m) for m in found.methods],
        controls=[controls_row(r) for r in found.controls],
        values="disclosures" if every_cell else "reports",
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


def _decimal(hundredths: int | None) -> str:
    """Exact decimal text of an integer number of hundredths (carats or US cents); empty
    for a value withheld."""
    if hundredths is None:
        return ""
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
