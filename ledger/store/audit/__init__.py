"""The auditors' queries over a store: the findings of the audit report and the KP statistics.

Every query is SQLAlchemy Core against the store's tables; the answers are
frozen rows (``rows``), which the API only formats. One module per group of
findings, each with its SQL: ``certificates`` (unconfirmed, discrepancies,
mirror mismatches, in transit), ``prices`` (price outliers), ``activity``
(unrecorded production, suspended activity, equivocation), ``statistics``
(the KP tables); ``base`` holds thresholds, periods and record references. A database error is
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
  issued in the period (voided, refused and in-transit ones excluded)
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
* **refusals**: certificates issued in the period that their importing
  authority refused (``certificate.refuse``), with the reason code and text;
  refused and voided certificates count as no export in the mirror check and
  the statistics (the goods went back);
* **export surplus**: an artisanal producer's exports to the period's last day
  above its recorded production plus imports to that day (``artisanal``);
* **disclosure inconsistent**: a disclosure rule (value conserved on a split,
  a merge's value, a certificate's value the sum of its lines) found broken
  when the record's disclosures reached this node: the writer sealed values
  that do not add up; the block stays valid (validity never depends on what a
  node may see), the auditor is told, with the rule and the record;
* **statistics mismatch**: a quarterly ``stats.report`` whose cell disagrees
  with the ledger as of the report's sealing (``reports``): carats and counts
  on every node (they are public), USD where this node opens every value of
  the cell (an auditor's node);
* **equivocation**: the evidence this node holds (two validly signed headers
  of one chain that contradict), when either header falls in the period.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from kpledger.ledger.errors import StoreError
from kpledger.ledger.registry import Params
from kpledger.ledger.state import Assessment
from kpledger.ledger.store.audit.activity import (
    disclosure_inconsistent,
    equivocation,
    suspended_activity,
    unrecorded_production,
)
from kpledger.ledger.store.audit.artisanal import (
    all_production,
    assessments,
    export_surplus,
    internal_controls,
    methods,
)
from kpledger.ledger.store.audit.base import (
    MAX_FINDINGS,
    PERIOD_PATTERN,
    PRICE_GROUP_FACTOR,
    PRICE_GROUP_MIN,
    PRICE_REFERENCE_FACTOR,
    RECORDS_PER_FINDING,
    UNCONFIRMED_DAYS,
    Period,
    RecordResolver,
    parse_period,
)
from kpledger.ledger.store.audit.certificates import (
    discrepancies,
    in_transit,
    mirror,
    refusals,
    unconfirmed,
)
from kpledger.ledger.store.audit.prices import price_outliers
from kpledger.ledger.store.audit.reports import (
    Cell,
    Report,
    quarter_cells,
    report_body,
    reports,
    statistics_mismatch,
)
from kpledger.ledger.store.audit.rows import (
    AuditRecord,
    Bounded,
    CertificateCount,
    ControlRow,
    DisclosureInconsistent,
    Discrepancy,
    Equivocation,
    ExportSurplus,
    ExportTotal,
    Findings,
    ImportTotal,
    InTransit,
    MethodTotal,
    MirrorMismatch,
    PriceOutlier,
    ProductionTotal,
    Refusal,
    Statistics,
    StatisticsMismatch,
    SuspendedActivity,
    Unconfirmed,
    UnrecordedProduction,
)
from kpledger.ledger.store.audit.statistics import certificate_counts, exports, imports

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
    "Cell",
    "CertificateCount",
    "ControlRow",
    "Discrepancy",
    "DisclosureInconsistent",
    "Equivocation",
    "ExportSurplus",
    "ExportTotal",
    "Findings",
    "ImportTotal",
    "InTransit",
    "MethodTotal",
    "MirrorMismatch",
    "Period",
    "PriceOutlier",
    "ProductionTotal",
    "Refusal",
    "Report",
    "Statistics",
    "StatisticsMismatch",
    "SuspendedActivity",
    "Unconfirmed",
    "UnrecordedProduction",
    "parse_period",
]

T = TypeVar("T")


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
            recs = RecordResolver(conn)
            return Findings(
                period=period,
                unconfirmed=unconfirmed(conn, period, days, limit, recs),
                discrepancies=discrepancies(conn, period, limit, recs),
                mirror_mismatches=mirror(conn, period, limit, self.tolerance_bp, recs),
                in_transit=in_transit(conn, period, limit, recs),
                price_outliers=price_outliers(conn, period, limit, recs),
                unrecorded_production=unrecorded_production(conn, period, limit, self.params, recs),
                suspended_activity=suspended_activity(conn, period, limit, recs),
                equivocation=equivocation(conn, period, limit),
                refusals=refusals(conn, period, limit, recs),
                disclosure_inconsistent=disclosure_inconsistent(conn, period, limit, recs),
                export_surplus=export_surplus(conn, period, limit, recs),
                statistics_mismatch=statistics_mismatch(conn, period, limit, recs),
            )

        return self._read("audit findings", read)

    def statistics(self, period: Period) -> Statistics:
        """The KP statistics tables for ``period`` (which must have a first day)."""
        assert period.since is not None, "statistics need a period with a first day"

        def read(conn: Connection) -> Statistics:
            return Statistics(
                period=period,
                production=all_production(conn, period),
                exports=exports(conn, period),
                imports=imports(conn, period),
                certificates=certificate_counts(conn, period),
                methods=methods(conn, period),
                controls=internal_controls(conn, period),
            )

        return self._read("KP statistics", read)

    def reports(self, period: Period, chain: str | None = None) -> tuple[Report, ...]:
        """The quarterly ``stats.report`` records of the quarters inside ``period``."""
        return self._read("quarterly reports", lambda conn: reports(conn, period, chain))

    def quarter_cells(self, chain: str, quarter: str) -> dict[tuple[str, str], Cell]:
        """``chain``'s statistics cells of ``quarter`` as the ledger shows them now, with
        the values this node holds (what a quarterly report of it would say)."""
        return self._read("quarter's cells", lambda conn: quarter_cells(conn, chain, quarter))

    def report_body(self, chain: str, quarter: str) -> dict[str, Any]:
        """The body of ``chain``'s ``stats.report`` for ``quarter``, from its records and
        the disclosures this node holds (``reports.report_body``)."""
        return report_body(quarter, self.quarter_cells(chain, quarter), self.params.min_cell)

    def controls(self, period: Period) -> tuple[ControlRow, ...]:
        """The internal controls of every artisanal producer for ``period``."""
        return self._read("internal controls", lambda conn: internal_controls(conn, period))

    def assessments(self, chain: str | None = None) -> tuple[Assessment, ...]:
        """The diagnostic self-assessments recorded (of one chain, or of all)."""
        return self._read("diagnostic self-assessments", lambda conn: assessments(conn, chain))
