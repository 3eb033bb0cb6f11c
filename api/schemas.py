"""Response schemas of the provenance API (Pydantic, at the API edge only).

Fields that a role may not see are *absent* from the JSON, never null with a
hint: every route answers with ``response_model_exclude_none=True``, so a
field left ``None`` is simply not sent. Weights are integer hundredths of a
carat, values integer US cents, as in the records.

One concept, with a reason for its size: the shapes of the documents the API
answers, one small Pydantic class per document and no logic. Together they
are the components of ``/openapi.json``; kept in one module, their names stay
unique and the published schema is read in one place.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from kpledger.api.schemas_artisanal import ControlsRow, MethodRow

__all__ = [
    "AuditRecordOut",
    "BlocksOut",
    "EvidenceListOut",
    "GossipOut",
    "HeadOut",
    "HeadsOut",
    "InTransitList",
    "InTransitOut",
    "KeyProofOut",
    "HealthOut",
    "OutcomeOut",
    "OutcomesOut",
    "SubmitOut",
    "AuditReportOut",
    "AuditThresholdsOut",
    "CertificateCountRow",
    "CertificateOut",
    "CertificateRefusalOut",
    "DiscrepancyList",
    "DiscrepancyOut",
    "EquivocationList",
    "EquivocationOut",
    "ExportRow",
    "ExportSurplusList",
    "ExportSurplusOut",
    "HeaderRefOut",
    "ImportRow",
    "MirrorList",
    "MirrorOut",
    "PriceOutlierList",
    "PriceOutlierOut",
    "ProblemOut",
    "ProductionRow",
    "SearchOut",
    "StatsOut",
    "StatsTotals",
    "SuspendedActivityList",
    "SuspendedActivityOut",
    "UnconfirmedList",
    "UnconfirmedOut",
    "UnrecordedProductionList",
    "UnrecordedProductionOut",
    "EdgeOut",
    "EventOut",
    "HistoryOut",
    "ParcelOut",
    "ProofOut",
    "RefOut",
]


class RefOut(BaseModel):
    """A record's place: chain, index in that chain's log, block height, leaf hash."""

    chain: str
    index: int
    hash: str
    height: int | None = None
    time: str | None = None


class ParcelOut(BaseModel):
    id: str
    jurisdiction: str = Field(description="the participant holding the parcel")
    status: str = Field(description="active, in_transit, held or spent")
    weight: int = Field(description="hundredths of a carat")
    hs: str
    origin: dict[str, int] = Field(description="country -> hundredths of a carat")
    origin_shares: dict[str, float] = Field(description="country -> percent of the weight")
    claims: dict[str, int] = Field(
        default_factory=dict,
        description="registered claim -> hundredths of a carat bought from it at first sale",
    )
    certificate: str | None = None
    created: RefOut
    custodian: str | None = Field(None, description="hidden from the public")
    value: int | None = Field(
        None, description="US cents, to a caller entitled to it (else null: see committed)"
    )
    committed: dict[str, str] | None = Field(
        None,
        description="confidential fields not shown in clear, each with its commitment (hex)",
    )


class EventOut(BaseModel):
    parcel: str
    kind: str
    chain: str
    height: int
    index: int
    hash: str
    time: str
    certificate: str | None = None


class EdgeOut(BaseModel):
    parent: str
    child: str
    kind: str = Field(description="split or merge")
    chain: str
    index: int
    hash: str


class HistoryOut(BaseModel):
    subject: str
    origin: dict[str, int]
    origin_shares: dict[str, float]
    claims: dict[str, int] = Field(
        default_factory=dict, description="registered claim -> hundredths of a carat"
    )
    parcels: list[ParcelOut]
    ancestors: list[EdgeOut]
    descendants: list[EdgeOut]
    events: list[EventOut]
    truncated: bool = Field(description="true when the lineage exceeded the limit")


class KeyProofOut(BaseModel):
    """A record that changed a chain's key, proved against the signed header of its block
    (``ledger.keyhistory``)."""

    record: dict[str, object]
    index: int
    proof: list[str]
    header: dict[str, object]
    sig: str


class ProofOut(BaseModel):
    """An RFC 9162 inclusion proof of a record against a signed header of its chain.

    ``keys`` (absent when the chain still signs with its registry key) holds every
    record that changed that chain's key, each with its own proof, so that a verifier
    holding only the genesis registry learns the key that signed ``header``."""

    record: dict[str, object]
    index: int
    size: int
    proof: list[str]
    header: dict[str, object]
    sig: str
    keys: list[KeyProofOut] | None = None


class CertificateRefusalOut(BaseModel):
    """Why the importing authority refused a shipment: its ``certificate.refuse`` record
    (public: the code and the words are in the record in clear)."""

    code: str = Field(
        description="documents, other, restricted-origin, seal-broken or weight-discrepancy"
    )
    reason: str = Field(description="the refusing officer's words")
    record: RefOut = Field(description="the certificate.refuse record")


class CertificateOut(BaseModel):
    number: str
    issuer: str
    destination: str
    status: str = Field(description="issued, confirmed, discrepancy, voided, refused or expired")
    issued: str
    expires: str
    carats: int = Field(description="hundredths of a carat")
    parcels: list[str]
    origin: str
    issue: RefOut
    closed: RefOut | None = None
    received: int | None = None
    refusal: CertificateRefusalOut | None = Field(
        default=None, description="when the status is refused: the importer's code and reason"
    )
    exporter: str | None = Field(None, description="hidden from the public")
    importer: str | None = Field(
        None, description="the importer's name, to a caller entitled to it (else see committed)"
    )
    value: int | None = Field(
        None, description="US cents, to a caller entitled to it (else null: see committed)"
    )
    seal: str | None = Field(
        None, description="the container's seal id, to a caller entitled to it (else committed)"
    )
    committed: dict[str, str] | None = Field(
        None,
        description="confidential fields not shown in clear, each with its commitment (hex)",
    )
    proof: ProofOut | None = None
    code: str | None = Field(
        default=None,
        description="the certificate code its printed QR encodes (ledger/certcode.py): its "
        "page under this node's public base URL, with the network id and issue record hash",
    )


# ---------------------------------------------------------------- problems


class ProblemOut(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``).

    ``type`` is stable per error class: ``urn:kpledger:problem:<code>``.
    """

    model_config = {"extra": "allow"}

    type: str = Field(description="urn:kpledger:problem:<code>, stable per error class")
    title: str
    status: int
    detail: str
    field: str | None = Field(default=None, description="the offending input, for 422")
    rule: str | None = Field(default=None, description="the ledger rule refused, when one was")


# ---------------------------------------------------------------- audit report


class AuditRecordOut(BaseModel):
    """A record behind a finding: its place in its chain's log and what kind it is."""

    chain: str
    index: int
    hash: str = Field(description="the record's leaf hash (hex)")
    kind: str
    height: int | None = Field(default=None, description="the block holding it")
    time: str | None = Field(default=None, description="its block's time")


class ExportSurplusOut(BaseModel):
    participant: str
    exported: int = Field(description="hundredths of a carat exported in the period")
    produced: int = Field(description="hundredths of a carat produced (first sales and mines)")
    imported: int = Field(description="hundredths of a carat imported")
    surplus: int = Field(description="exported - produced - imported")
    records: list[AuditRecordOut] = Field(description="the period's certificates of issue")


class ExportSurplusList(BaseModel):
    items: list[ExportSurplusOut]
    truncated: bool


class HeaderRefOut(BaseModel):
    """A signed block header: the evidence of an equivocation."""

    chain: str
    height: int
    hash: str
    size: int
    root: str
    time: str


class AuditThresholdsOut(BaseModel):
    """The thresholds the report applied (documented in the README)."""

    unconfirmed_days: int = Field(description="a certificate open this many days is reported")
    tolerance_bp: int = Field(
        description="the network's weight tolerance in basis points (genesis parameter): "
        "discrepancies and mirror carat differences beyond it are reported"
    )
    price_group_factor: float = Field(
        description="a certificate's USD/ct above factor x or below 1/factor x the median of "
        "its (issuer, HS code) group is an outlier"
    )
    price_group_min: int = Field(description="groups smaller than this have no median test")
    price_reference_factor: float = Field(
        description="a single-origin certificate's USD/ct above factor x or below 1/factor x "
        "the origin's 2023 KP average is an outlier"
    )
    records_per_finding: int = Field(description="most records listed under one finding")


class UnconfirmedOut(BaseModel):
    number: str
    issuer: str
    destination: str
    issued: str
    expires: str
    days_open: int = Field(description="days from issue to the report's as-of date")
    expired: bool = Field(description="past its expiry as of the report date")
    carats: int = Field(description="hundredths of a carat")
    records: list[AuditRecordOut]


class DiscrepancyOut(BaseModel):
    number: str
    issuer: str
    destination: str
    issued: str
    declared: int = Field(description="hundredths of a carat on the certificate")
    received: int = Field(description="hundredths of a carat the importer confirmed")
    difference: int = Field(description="received - declared, hundredths of a carat")
    difference_bp: int = Field(description="|difference| in basis points of the declared")
    records: list[AuditRecordOut] = Field(description="the issue and the confirmation")


class MirrorOut(BaseModel):
    exporter: str = Field(description="participant A")
    importer: str = Field(description="participant B")
    exported_carats: int = Field(description="A's certificates to B issued in the period")
    exported_certificates: int
    imported_carats: int = Field(description="B's confirmations from A dated in the period")
    imported_certificates: int
    difference: int = Field(description="imported - exported, hundredths of a carat")
    in_transit: int = Field(
        description="A's certificates to B in the period still open and unexpired: "
        "in transit, left out of both counts"
    )
    records: list[AuditRecordOut] = Field(description="the certificates that do not match")
    records_truncated: bool


class InTransitOut(BaseModel):
    """A certificate on its way: issued in the period, open, its expiry not past."""

    number: str
    issuer: str
    destination: str
    issued: str
    expires: str
    carats: int = Field(description="hundredths of a carat")
    records: list[AuditRecordOut]


class PriceOutlierOut(BaseModel):
    number: str
    issuer: str
    hs: str = Field(description="the HS code of every line, or 'mixed'")
    origin: str
    issued: str
    carats: int = Field(description="hundredths of a carat")
    value: int | None = Field(default=None, description="US cents; not shown to observers")
    usd_per_carat: float | None = Field(default=None, description="not shown to observers")
    group_median: float | None = Field(default=None, description="median USD/ct of (issuer, hs)")
    group_size: int
    reference: float | None = Field(
        default=None,
        description="2023 KP average USD/ct of the origin, for single-origin certificates",
    )
    reasons: list[str] = Field(description="'group' and/or 'reference'")
    records: list[AuditRecordOut]


class UnrecordedProductionOut(BaseModel):
    chain: str = Field(description="a participant with no production in the KP statistics")
    parcel: str
    weight: int = Field(description="hundredths of a carat")
    value: int = Field(description="US cents")
    mine: str
    produced: str
    records: list[AuditRecordOut]


class SuspendedActivityOut(BaseModel):
    participant: str
    suspended: str = Field(description="time of the governance block that suspended it")
    reinstated: str | None = None
    suspension: AuditRecordOut = Field(description="the member.suspend record")
    count: int = Field(description="records the participant's chain sealed while suspended")
    records: list[AuditRecordOut]
    records_truncated: bool


class EquivocationOut(BaseModel):
    id: str = Field(description="the evidence document's id")
    chain: str
    headers: list[HeaderRefOut] = Field(description="two signed headers that contradict")


class RefusalOut(BaseModel):
    """A certificate the importing authority refused (``certificate.refuse``)."""

    number: str
    issuer: str
    destination: str = Field(description="the participant that refused it")
    issued: str
    carats: int = Field(description="hundredths of a carat on the certificate")
    origin: str = Field(description="the certificate's country of origin, or mixed")
    code: str = Field(description="restricted-origin, documents, seal-broken, ...")
    reason: str = Field(description="the refusing officer's words")
    records: list[AuditRecordOut] = Field(description="the issue and the refusal")


class RefusalList(BaseModel):
    items: list[RefusalOut]
    truncated: bool


class DisclosureInconsistentOut(BaseModel):
    """A disclosure rule found broken when the record's disclosures reached this node."""

    chain: str
    kind: str
    code: str = Field(description="the rule's error code, e.g. value-not-conserved")
    rule: str = Field(description="the rule's number in DOMAIN.md")
    field: str
    reason: str = Field(description="what does not add up (no values to an observer)")
    records: list[AuditRecordOut] = Field(description="the record")


class StatisticsMismatchOut(BaseModel):
    """A quarterly report's cell that disagrees with the ledger as of its sealing."""

    chain: str = Field(description="the reporting authority")
    quarter: str = Field(description="the report's quarter, e.g. 2026-Q1")
    section: Literal["production", "exports", "imports"]
    partner: str = Field(description="the partner of a trade cell; empty for production")
    field: Literal["carats", "count", "value"] = Field(
        description="what disagrees: carats (hundredths), count (parcels or certificates), "
        "value (US cents: compared only where this node opens every value of the cell)"
    )
    reported: int | None = Field(description="what the report says")
    ledger: int | None = Field(
        description="what the records (and the disclosures held) show; no value to an observer"
    )
    records: list[AuditRecordOut] = Field(description="the report, then the cell's records")


class StatisticsMismatchList(BaseModel):
    items: list[StatisticsMismatchOut]
    truncated: bool


class DisclosureInconsistentList(BaseModel):
    items: list[DisclosureInconsistentOut]
    truncated: bool


class UnconfirmedList(BaseModel):
    items: list[UnconfirmedOut]
    truncated: bool


class DiscrepancyList(BaseModel):
    items: list[DiscrepancyOut]
    truncated: bool


class MirrorList(BaseModel):
    items: list[MirrorOut]
    truncated: bool


class InTransitList(BaseModel):
    items: list[InTransitOut]
    truncated: bool


class PriceOutlierList(BaseModel):
    items: list[PriceOutlierOut]
    truncated: bool


class UnrecordedProductionList(BaseModel):
    items: list[UnrecordedProductionOut]
    truncated: bool


class SuspendedActivityList(BaseModel):
    items: list[SuspendedActivityOut]
    truncated: bool


class EquivocationList(BaseModel):
    items: list[EquivocationOut]
    truncated: bool


class ChainSyncOut(BaseModel):
    """How far behind its peers this node holds one chain."""

    height: int = Field(description="height held here")
    best_announced: int = Field(description="highest height any peer announced (a hint)")
    behind: int = Field(description="best_announced - height")
    since_progress: float | None = Field(
        description="seconds since the height last grew or last matched the best announced"
    )
    stale: bool = Field(description="behind, and no progress for a while: answers may be old")


class AuditReportOut(BaseModel):
    """The WDC's findings (DOMAIN.md "What the auditors look for"), each with its records."""

    node: str
    generated: str
    since: str | None = Field(default=None, description="first day of the period (inclusive)")
    until: str = Field(description="last day of the period (inclusive); the as-of date")
    limit: int = Field(description="most findings per list")
    thresholds: AuditThresholdsOut
    unconfirmed: UnconfirmedList
    discrepancies: DiscrepancyList
    mirror_mismatches: MirrorList
    in_transit: InTransitList = Field(
        description="certificates on their way (not findings): no mirror mismatch until they expire"
    )
    price_outliers: PriceOutlierList
    unrecorded_production: UnrecordedProductionList
    suspended_activity: SuspendedActivityList
    equivocation: EquivocationList
    refusals: RefusalList = Field(
        default_factory=lambda: RefusalList(items=[], truncated=False),
        description="certificates refused by their importer, issued in the period",
    )
    disclosure_inconsistent: DisclosureInconsistentList = Field(
        default_factory=lambda: DisclosureInconsistentList(items=[], truncated=False),
        description="disclosure rules found broken when a record's disclosures arrived "
        "(the block stays valid)",
    )
    controls: list[ControlsRow] = Field(
        default_factory=list,
        description="the internal-control indicators of each artisanal producer for the period",
    )
    export_surplus: ExportSurplusList = Field(
        default_factory=lambda: ExportSurplusList(items=[], truncated=False),
        description="artisanal producers whose exports of the period exceed their recorded "
        "production plus imports (stones smuggled in and laundered, or stock carried over)",
    )
    statistics_mismatch: StatisticsMismatchList = Field(
        default_factory=lambda: StatisticsMismatchList(items=[], truncated=False),
        description="quarterly stats.report cells of the period that disagree with the "
        "records as of the report (carats, counts) or with the disclosures this node holds "
        "(USD)",
    )
    sync: dict[str, ChainSyncOut] | None = Field(
        default=None,
        description="how far behind its peers this node held each chain when it wrote the "
        "report: findings on a stale chain may miss its latest records",
    )


# ---------------------------------------------------------------- KP statistics


class ProductionRow(BaseModel):
    participant: str
    carats: int = Field(description="hundredths of a carat")
    value: int | None = Field(
        description="US cents; null when one or two first sales are in it (their price would show)"
    )
    parcels: int


class ExportRow(BaseModel):
    participant: str = Field(description="the exporting participant (certificate issuer)")
    partner: str = Field(description="the destination")
    carats: int = Field(description="hundredths of a carat declared")
    value: int | None = Field(
        description="US cents declared; to all but auditors the sum of the exporter's "
        "quarterly reports, null where a quarter is unreported or a report withholds the "
        "cell (fewer than min_cell certificates: one shipment's value would show)"
    )
    certificates: int


class ImportRow(BaseModel):
    participant: str = Field(description="the importing participant (who confirmed)")
    partner: str = Field(description="the exporting participant")
    carats: int = Field(description="hundredths of a carat received")
    declared: int = Field(description="hundredths of a carat on the certificates")
    value: int | None = Field(
        description="US cents declared on the certificates; to all but auditors the sum of "
        "the importer's quarterly reports, null where a quarter is unreported or a report "
        "withholds the cell"
    )
    certificates: int


class CertificateCountRow(BaseModel):
    participant: str = Field(description="the issuing participant")
    total: int = Field(description="certificates issued in the period")
    unconfirmed: int
    confirmed: int
    discrepancy: int
    voided: int
    refused: int = Field(default=0, description="refused by the importing authority")


class StatsTotals(BaseModel):
    production_carats: int
    production_value: int | None = Field(description="null when a participant's is withheld")
    production_parcels: int
    export_carats: int
    export_value: int | None = Field(description="null when a cell's is withheld")
    export_certificates: int
    import_carats: int
    import_value: int | None = Field(description="null when a cell's is withheld")
    import_certificates: int
    certificates: int


class SearchOut(BaseModel):
    """Parcel ids and certificate numbers starting with a prefix (case ignored), sorted."""

    prefix: str
    parcels: list[str]
    certificates: list[str]


class StatsOut(BaseModel):
    """KP statistics tables for a period, from the ledger. Aggregates name no party."""

    period: str
    start: str = Field(description="first day (inclusive)")
    end: str = Field(description="last day (inclusive)")
    production: list[ProductionRow] = Field(
        description="parcel.register records by producing participant, by produced date, "
        "and first sales (parcel.purchase) by their date"
    )
    exports: list[ExportRow] = Field(
        description="certificates by issuer and destination, by issue date, "
        "voided and refused excluded"
    )
    imports: list[ImportRow] = Field(
        description="confirmations by importer and exporter, by the confirmation's block date"
    )
    certificates: list[CertificateCountRow] = Field(
        description="certificates issued in the period by issuer, by current status"
    )
    totals: StatsTotals
    methods: list[MethodRow] = Field(
        default_factory=list,
        description="production by participant and method: first sales by their method, "
        "mine registrations as industrial",
    )
    controls: list[ControlsRow] = Field(
        default_factory=list,
        description="internal-control indicators of each artisanal producer",
    )
    values: Literal["reports", "disclosures"] = Field(
        default="reports",
        description="where the USD come from: the participants' quarterly stats.report "
        "records (public; a cell is null until every quarter of the period is reported, "
        "and where a report withholds it), or, for an auditor, the disclosures this node "
        "holds (every cell)",
    )


# ---------------------------------------------------------------- node and peer answers
# Documentation of the answers the node builds as plain JSON (declared with
# ``responses=``, so the bytes sent are exactly what the node builds).


class HeadOut(BaseModel):
    height: int
    hash: str
    size: int = Field(description="records in the chain's log")
    root: str = Field(description="RFC 9162 Merkle root of the log (hex)")
    time: str


class HealthOut(BaseModel):
    status: str
    node: str
    chain: str | None = Field(description="the chain this node writes; null for an auditor")
    network: str
    heights: dict[str, int]
    evidence: int = Field(description="chains with equivocation evidence held")
    stale: bool = Field(
        default=False, description="some chain is stale (see sync): answers may lag the network"
    )
    sync: dict[str, ChainSyncOut] | None = Field(
        default=None, description="per chain, how far behind the peers; null on a read replica"
    )


class HeadsOut(BaseModel):
    network: str
    node: str
    heads: dict[str, HeadOut]


class PushOut(BaseModel):
    applied: int = Field(description="blocks applied now (with any they unblocked)")
    known: int = Field(description="blocks already held")
    waiting: int = Field(description="blocks held back until what they witness arrives")


class GossipOut(BaseModel):
    model_config = {"populate_by_name": True}

    network: str
    from_: str = Field(alias="from", description="the answering node's code")
    heads: dict[str, HeadOut]
    evidence: list[str] = Field(description="ids of the evidence it holds")


class BlocksOut(BaseModel):
    blocks: list[dict[str, Any]] = Field(
        description="{header, records, sig} per block, in the exact stored bytes"
    )


class EvidenceListOut(BaseModel):
    evidence: list[dict[str, Any]] = Field(description="{v, a, b}: two signed headers each")


class OutcomeOut(BaseModel):
    """What became of a record: pending, committed, rejected (a rule) or invalid (schema).

    The wire form of ``ledger.store.outcome.Outcome``.
    """

    model_config = {"extra": "forbid"}

    status: str = Field(description="pending, committed, rejected or invalid")
    id: str | None = None
    position: int | None = Field(
        default=None, description="in the answer to a submission: the record's place in the batch"
    )
    chain: str | None = None
    height: int | None = Field(default=None, description="committed: the block holding it")
    index: int | None = Field(
        default=None, description="committed: the record's index in its chain's log"
    )
    hash: str | None = Field(default=None, description="committed: its leaf hash (hex)")
    code: str | None = None
    rule: str | None = None
    field: str | None = None
    reason: str | None = None
    duplicate: bool | None = Field(
        default=None, description="true when the id was submitted before: its first outcome"
    )


class OutcomesOut(BaseModel):
    """The answer to ``POST /v1/records/outcomes``."""

    model_config = {"extra": "forbid"}

    outcomes: list[OutcomeOut] = Field(description="each known id's outcome, in the order asked")
    unknown: list[str] = Field(description="ids the chain has never seen")


class SubmitOut(BaseModel):
    results: list[OutcomeOut] = Field(description="one outcome per record, in order")


# ---------------------------------------------------------------- disclosures


class DisclosureOut(BaseModel):
    """The clear value and salt of one committed field of one record."""

    record: str = Field(description="the record's leaf hash, hex")
    path: str = Field(description="the field, e.g. body.lines[0].value")
    salt: str = Field(description="32 bytes, hex")
    value: int | str = Field(description="the clear value (US cents, or text)")


class DisclosureItemOut(BaseModel):
    index: int = Field(description="the record's index in its chain's log")
    disclosure: DisclosureOut


class DisclosuresOut(BaseModel):
    """What the asking peer may see of one chain's records from an index on."""

    chain: str
    next: int = Field(description="the record index to ask from next")
    disclosures: list[DisclosureItemOut]
