"""Parcels: current state and lineage back to the mines."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from kpledger.api.deps import Caller, NodeDep, caller
from kpledger.api.provenance import history_view, parcel_view, reveal
from kpledger.api.schemas import HistoryOut, ParcelOut
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.schema import LOCAL_ID
from kpledger.ledger.state import Parcel
from kpledger.node.node import Node

__all__ = ["router"]

router = APIRouter(prefix="/v1/parcels", tags=["provenance"])

MAX_LINEAGE = 5000


def _parcel(node: Node, parcel_id: str) -> Parcel:
    if LOCAL_ID.match(parcel_id) is None:
        raise InvalidData("not a parcel id (CODE-local part)", field="parcel_id")
    parcel = node.store.parcel(parcel_id)
    if parcel is None:
        raise HTTPException(404, f"no parcel {parcel_id}")
    return parcel


@router.get(
    "/{parcel_id}",
    response_model=ParcelOut,
    response_model_exclude_none=True,
    summary="A parcel's current state",
)
async def get_parcel(
    parcel_id: str, node: NodeDep, who: Annotated[Caller, Depends(caller)]
) -> ParcelOut:
    """Jurisdiction, status, weight, HS code, origin composition; custodian and value for
    those allowed to see them."""
    parcel = await asyncio.to_thread(_parcel, node, parcel_id)
    clear = await asyncio.to_thread(reveal, node.store, [parcel.value])
    return parcel_view(parcel, who, node.chain, clear)


@router.get(
    "/{parcel_id}/history",
    response_model=HistoryOut,
    response_model_exclude_none=True,
    summary="The parcel's lineage graph",
)
async def get_history(
    parcel_id: str,
    node: NodeDep,
    who: Annotated[Caller, Depends(caller)],
    limit: Annotated[
        int, Query(ge=1, le=MAX_LINEAGE, description="most lineage edges each way")
    ] = 1000,
) -> HistoryOut:
    """Its ancestors through merges and splits back to registration at the mine, its
    descendants, and every record that acted on any of them (chain, height, index,
    time), with the origin composition in hundredths of a carat and as shares."""

    def work() -> HistoryOut:
        return history_view(node.store, _parcel(node, parcel_id), who, node.chain, limit)

    return await asyncio.to_thread(work)
