"""Parcels: current state and lineage back to the mines."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from kpledger.api.deps import Caller, NodeDep, caller
from kpledger.api.provenance import history_json, parcel_view, reveal
from kpledger.api.schemas import HistoryOut, ParcelOut
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.schema import LOCAL_ID
from kpledger.ledger.state import Parcel
from kpledger.node.node import Node

__all__ = ["router"]

router = APIRouter(prefix="/v1/parcels", tags=["provenance"])

MAX_LINEAGE = 5000


def _check_id(parcel_id: str) -> None:
    if LOCAL_ID.match(parcel_id) is None:
        raise InvalidData("not a parcel id (CODE-local part)", field="parcel_id")


def _parcel(node: Node, parcel_id: str) -> Parcel:
    _check_id(parcel_id)
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
    request: Request,
    who: Annotated[Caller, Depends(caller)],
    limit: Annotated[
        int, Query(ge=1, le=MAX_LINEAGE, description="most lineage edges each way")
    ] = 1000,
) -> Response:
    """Its ancestors through merges and splits back to registration at the mine, its
    descendants, and every record that acted on any of them (chain, height, index,
    time), with the origin composition in hundredths of a carat and as shares."""
    # the answer is encoded in the worker thread, as HistoryOut with no nulls
    # (``history_json``): no model is built or validated again on the event loop
    node: Node = request.app.state.node

    def work() -> bytes:
        _check_id(parcel_id)
        body = history_json(node.store, parcel_id, who, node.chain, limit)
        if body is None:
            raise HTTPException(404, f"no parcel {parcel_id}")
        return body

    return Response(await asyncio.to_thread(work), media_type="application/json")
