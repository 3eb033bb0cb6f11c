"""KP statistics from the ledger: public aggregates, JSON or CSV."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from kpledger.api.audit import PERIOD_PATTERN, kp_statistics, stats_csv
from kpledger.api.deps import Caller, NodeDep, caller
from kpledger.api.schemas import StatsOut

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["statistics"])


@router.get(
    "/stats",
    response_model=StatsOut,
    summary="KP statistics for a year or a quarter",
    responses={
        200: {
            "description": "the tables as JSON, or with format=csv one CSV table",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        422: {"description": "a bad period or format"},
    },
)
async def stats(
    node: NodeDep,
    who: Annotated[Caller, Depends(caller)],
    period: Annotated[
        str,
        Query(
            pattern=PERIOD_PATTERN,
            description="a year (2025) or a quarter (2025-Q1 .. 2025-Q4)",
            examples=["2026", "2026-Q1"],
        ),
    ],
    fmt: Annotated[
        Literal["json", "csv"], Query(alias="format", description="json (default) or csv")
    ] = "json",
) -> StatsOut | Response:
    """Production by participant (``parcel.register`` by produced date: carats, USD,
    parcels); exports by participant and partner (certificates by issue date, voided
    and refused excluded: carats, USD, certificates); imports by participant and partner
    (confirmations by the date of the block that sealed them: carats received, carats
    and USD declared, certificates); certificate counts by issuer and current status.
    Weights are hundredths of a carat and values US cents in JSON; the CSV has one
    ``section`` column and exact decimal carats and USD. Aggregates name no party:
    public. Carats and counts come from the records; USD from the participants'
    quarterly ``stats.report`` records (``values: reports``): null where a quarter of
    the period is unreported or the report withholds a cell of fewer than the
    network's ``min_cell`` (3) records. An auditor gets every cell's USD from the
    disclosures its node holds (``values: disclosures``)."""
    result = await asyncio.to_thread(
        kp_statistics, node.store, period, every_cell=who.role == "auditor"
    )
    if fmt == "csv":
        return Response(
            stats_csv(result),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="kp-stats-{period}.csv"'},
        )
    return result
