"""The audit report: the WDC's findings, for auditors and observers.

Observers (civil society) read the findings without commercial data: a price
outlier names its certificate and its group, not the certificate's value or price.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from kpledger.api.audit import MAX_FINDINGS, UNCONFIRMED_DAYS, audit_report
from kpledger.api.deps import Caller, NodeDep, require
from kpledger.api.schemas import AuditReportOut, ChainSyncOut
from kpledger.ledger.disclosed import DISCLOSURE_RULES
from kpledger.ledger.errors import InvalidData

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])

#: error answers documented for the audit routes (RFC 9457 problem documents)
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no token, or an unknown one"},
    403: {"description": "a token whose role is not auditor or observer"},
}


@router.get(
    "/report",
    response_model=AuditReportOut,
    response_model_exclude_none=True,
    summary="The audit report: findings for a period, each with the records behind it",
    responses={**AUTH_ERRORS, 422: {"description": "a bad date or bound"}},
)
async def report(
    request: Request,
    node: NodeDep,
    who: Annotated[Caller, Depends(require("auditor", "observer"))],
    since: Annotated[
        date | None, Query(description="first day of the period (inclusive); default: all")
    ] = None,
    until: Annotated[
        date | None,
        Query(description="last day of the period (inclusive) and as-of date; default: today"),
    ] = None,
    days: Annotated[
        int, Query(ge=1, le=3660, description="report certificates unconfirmed this many days")
    ] = UNCONFIRMED_DAYS,
    limit: Annotated[int, Query(ge=1, le=MAX_FINDINGS, description="most findings per list")] = 100,
) -> AuditReportOut:
    """Certificates unconfirmed ``days`` after issue, discrepancies between certificate and
    confirmation, mirror mismatches between participants, price-per-carat outliers per
    participant and HS code, registration where no production is recorded, activity of
    suspended participants, and equivocation evidence. Each finding names its records
    (chain, index, leaf hash, kind, block height and time); every list stops at ``limit``
    and says ``truncated``. The thresholds applied are in ``thresholds``. Artisanal
    producers whose exports of the period exceed their recorded production plus imports
    are listed in ``export_surplus``. An observer token gets the same findings without a
    certificate's value or USD/ct (``price_outliers``)."""
    if since is not None and until is not None and since > until:
        raise InvalidData("since is after until", field="since")

    def work() -> AuditReportOut:
        return audit_report(
            node.store, node.config.code, since=since, until=until, days=days, limit=limit
        )

    found = await asyncio.to_thread(work)
    if who.role == "observer":  # findings, never one certificate's value or price
        for outlier in found.price_outliers.items:
            outlier.value = None
            outlier.usd_per_carat = None
        for mismatch in found.statistics_mismatch.items:
            if mismatch.field == "value":  # the report's figure is public, the ledger's not
                mismatch.ledger = None
        for broken in found.disclosure_inconsistent.items:
            broken.reason = DISCLOSURE_RULES.get(broken.kind, ("", "values do not add up"))[1]
    gossip = request.app.state.gossip
    if gossip is not None:
        found.sync = {c: ChainSyncOut(**v) for c, v in gossip.sync_status().items()}
    return found
