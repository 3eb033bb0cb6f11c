"""Search by prefix: the parcel ids and certificate numbers that start with what was typed."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from kpledger.api.deps import NodeDep
from kpledger.api.schemas import SearchOut
from kpledger.ledger.store.search import MAX_PREFIX, MAX_SUGGESTIONS

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["provenance"])


@router.get(
    "/search",
    response_model=SearchOut,
    summary="Parcel ids and certificate numbers starting with a prefix",
    responses={422: {"description": "a missing, empty or too long prefix, or a bad limit"}},
)
async def prefix(
    node: NodeDep,
    prefix: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_PREFIX,
            description="the start of a parcel id or certificate number (case ignored)",
            examples=["BW-"],
        ),
    ],
    limit: Annotated[
        int, Query(ge=1, le=MAX_SUGGESTIONS, description="the most ids, and numbers, answered")
    ] = 10,
) -> SearchOut:
    """Public: only the ids and numbers themselves, sorted, at most ``limit`` of each.
    The explorer offers them when what was typed is not found."""
    found = await asyncio.to_thread(node.store.search.prefix, prefix, limit)
    return SearchOut(
        prefix=prefix, parcels=list(found.parcels), certificates=list(found.certificates)
    )
