"""The diagnostic: a country's self-assessment over time beside the computed indicators."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path

from kpledger.api.artisanal import diagnostics
from kpledger.api.deps import NodeDep
from kpledger.api.schemas_artisanal import DiagnosticsOut

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["statistics"])


@router.get(
    "/diagnostics/{country}",
    response_model=DiagnosticsOut,
    response_model_exclude_none=True,
    summary="A country's diagnostic self-assessment beside the ledger's internal controls",
    responses={422: {"description": "not an authority of this network"}},
)
async def country_diagnostics(
    node: NodeDep,
    country: Annotated[str, Path(pattern="^[A-Z]{2,8}$", description="participant code")],
) -> DiagnosticsOut:
    """Every ``diagnostic.assess`` record of ``country``'s chain (indicator, score on the
    indicator's scale, evidence, date), by date, named by the network's indicator list;
    beside them, per year, the internal controls the ledger computes for that country
    (share of exports traced to registered claims, share of production bought by
    licensed buyers, export surplus, first-sale against export price with cells of fewer
    than 3 purchases withheld). Public: aggregates and the authority's own claims."""
    today = datetime.now(UTC).date()
    return await asyncio.to_thread(diagnostics, node.store, country, node.config.indicators, today)
