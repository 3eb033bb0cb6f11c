"""Dry runs: a record checked against the node's current state, nothing written."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from kpledger.api.deps import Caller, NodeDep, require
from kpledger.api.routes.records import MAX_BATCH
from kpledger.api.schemas import SubmitOut
from kpledger.ledger.canonical import load_json
from kpledger.ledger.errors import InvalidData

__all__ = ["router"]

router = APIRouter(prefix="/v1/records", tags=["records"])


@router.post(
    "/check",
    summary="Check records against the node's current state without writing them",
    responses={200: {"model": SubmitOut}},
)
async def check(
    request: Request,
    node: NodeDep,
    _: Annotated[Caller, Depends(require("operator"))],
) -> dict[str, Any]:
    """The body and the answer of ``POST /v1/records``, as a dry run: each record is
    judged against the chain's state plus the pending records (and the records
    before it in the batch), and nothing is queued. A record that would be
    accepted answers ``valid``; a refused one ``rejected`` with the rule, the
    field and the reason; an id already submitted answers its first outcome."""
    body = load_json(await request.body(), what="request body")
    if isinstance(body, dict) and set(body) == {"records"}:
        records = body["records"]
        if not isinstance(records, list) or not 1 <= len(records) <= MAX_BATCH:
            raise InvalidData(f"records must be a list of 1..{MAX_BATCH}", field="records")
    elif isinstance(body, dict):
        records = [body]
    else:
        raise InvalidData('expected a record object or {"records": [...]}')
    results = await asyncio.to_thread(node.check, records)
    return {"results": results}
