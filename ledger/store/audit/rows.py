"""The frozen rows the audit queries answer (the API turns them into its response models)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from kpledger.ledger.artisanal import Controls, Totals
from kpledger.ledger.blocks import Header

if TYPE_CHECKING:
    from kpledger.ledger.store.audit.base import Period

__all__ = [
    "AuditRecord",
    "Bounded",
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
    "PriceOutlier",
    "Refusal",
    "ProductionTotal",
    "Statistics",
    "StatisticsMismatch",
    "SuspendedActivity",
    "Unconfirmed",
    "UnrecordedProduction",
]

T = TypeVar("T")


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
class Refusal:
    """A certificate issued in the period that its importing authority refused."""

    number: str
    issuer: str
    destination: str
    issued: str
    carats: int
    origin: str
    code: str
    reason: str
    records: tuple[AuditRecord, ...]


@dataclass(frozen=True)
class DisclosureInconsistent:
    """A disclosure rule found broken when the record's disclosures reached this node:
    the writer sealed values that do not add up (the block stays valid)."""

    chain: str
    kind: str
    code: str
    rule: str
    field: str
    reason: str
    records: tuple[AuditRecord, ...]


@dataclass(frozen=True)
class StatisticsMismatch:
    """A quarterly report's cell that disagrees with the ledger as of the report's
    sealing: carats or counts (public, every node) or USD (where this node opens every
    value of the cell). ``section`` is production, exports or imports; ``field`` is
    carats, count or value; ``ledger`` is what the records show."""

    chain: str
    quarter: str
    section: str
    partner: str
    field: str
    reported: int | None
    ledger: int | None
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
class MethodTotal:
    """Production of one participant by one method: carats, parcels, and the
    first-sale price per carat (US cents) when the cell is large enough to show."""

    participant: str
    method: str
    carats: int
    parcels: int
    cents_per_carat: int | None


@dataclass(frozen=True)
class ControlRow:
    """The internal-control indicators of one artisanal producer for the period."""

    participant: str
    totals: Totals
    controls: Controls


@dataclass(frozen=True)
class ExportSurplus:
    """Exports above recorded production plus imports (hundredths of a carat, to date)."""

    participant: str
    exported: int
    produced: int
    imported: int
    surplus: int
    records: tuple[AuditRecord, ...]


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
    refusals: Bounded[Refusal]
    disclosure_inconsistent: Bounded[DisclosureInconsistent]
    #: artisanal producers exporting more than they recorded producing and importing
    export_surplus: Bounded[ExportSurplus] = Bounded((), False)
    #: quarterly reports that disagree with the records (or the disclosures held)
    statistics_mismatch: Bounded[StatisticsMismatch] = Bounded((), False)


@dataclass(frozen=True)
class ProductionTotal:
    participant: str
    carats: int
    #: None when 1 or 2 first sales are in it: their price would show (disclosure control)
    value: int | None
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
    refused: int


@dataclass(frozen=True)
class Statistics:
    """The KP statistics tables of one period."""

    period: Period
    production: tuple[ProductionTotal, ...]
    exports: tuple[ExportTotal, ...]
    imports: tuple[ImportTotal, ...]
    certificates: tuple[CertificateCount, ...]
    #: production by participant and method (``audit.artisanal.MethodTotal``)
    methods: tuple[MethodTotal, ...] = ()
    #: internal-control indicators per artisanal producer (``audit.artisanal.ControlRow``)
    controls: tuple[ControlRow, ...] = ()
