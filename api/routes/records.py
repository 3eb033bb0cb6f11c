"""Submitting records (operators) and asking what became of them."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from kpledger.api.deps import Caller, NodeDep, require
from kpledger.api.schemas import OutcomeOut, OutcomesOut, SubmitOut
from kpledger.ledger.canonical import load_json
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.schema import CODE, RECORD_ID

__all__ = ["router"]

router = APIRouter(prefix="/v1/records", tags=["records"])

MAX_BATCH = 1000


@router.post(
    "",
    summary="Submit one record or a batch of up to 1,000",
    responses={
        200: {"model": SubmitOut},
        409: {"description": "a record id already taken by a record with other content"},
        422: {"description": "not JSON, or not a record or a batch"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One record, or a batch. Every kind's body is documented under "
            "`Record` (units: hundredths of a carat, US cents).",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/RecordSubmission"}}
            },
        }
    },
)
async def submit(
    request: Request,
    node: NodeDep,
    _: Annotated[Caller, Depends(require("operator"))],
) -> dict[str, Any]:
    """Body: one record object, or ``{"records": [...]}``.

    Each record is checked against the chain's state plus the records already
    pending; the answer lists, per record (``position`` in the batch),
    ``pending``, ``rejected`` (with the rule and the reason) or ``invalid``
    (schema). A record id submitted again gets its first outcome (``committed``
    with its log ``index``), marked ``duplicate``. ``pending`` records are on
    disk before this answers.
    """
    body = load_json(await request.body(), what="request body")
    if isinstance(body, dict) and set(body) == {"records"}:
        records = body["records"]
        if not isinstance(records, list) or not 1 <= len(records) <= MAX_BATCH:
            raise InvalidData(f"records must be a list of 1..{MAX_BATCH}", field="records")
    elif isinstance(body, dict):
        records = [body]
    else:
        raise InvalidData('expected a record object or {"records": [...]}')
    results = await asyncio.to_thread(node.submit, records)
    return {"results": [r.to_json() for r in results]}


@router.post(
    "/outcomes",
    summary="What became of up to 1,000 record ids, in one request",
    responses={200: {"model": OutcomesOut}, 422: {"description": "not a list of record ids"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["ids"],
                        "additionalProperties": False,
                        "properties": {
                            "ids": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": MAX_BATCH,
                                "items": {"type": "string"},
                            },
                            "chain": {"type": "string", "maxLength": 8},
                        },
                    }
                }
            },
        }
    },
)
async def outcomes(
    request: Request,
    node: NodeDep,
    _: Annotated[Caller, Depends(require("operator", "auditor", "peer"))],
) -> dict[str, Any]:
    """Body ``{"ids": [...], "chain": "BW"}`` (``chain`` optional: the node's own).
    The answer lists, in the order asked, each id's outcome as ``GET
    /v1/records/{id}`` gives it; ids the chain has never seen are listed under
    ``unknown`` instead."""
    body = load_json(await request.body(), what="request body")
    if not isinstance(body, dict) or not set(body) <= {"ids", "chain"} or "ids" not in body:
        raise InvalidData('expected {"ids": [...]} and optionally "chain"')
    ids, chain = body["ids"], body.get("chain")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_BATCH:
        raise InvalidData(f"ids must be a list of 1..{MAX_BATCH} record ids", field="ids")
    for i, rid in enumerate(ids):
        if not isinstance(rid, str) or RECORD_ID.match(rid) is None:
            raise InvalidData("not a record id", field=f"ids[{i}]")
    if chain is not None and (not isinstance(chain, str) or CODE.match(chain) is None):
        raise InvalidData("not a chain code", field="chain")
    found = await asyncio.to_thread(node.outcomes, ids, chain)
    return {
        "outcomes": [{"id": rid, **o.to_json()} for rid, o in found.items() if o is not None],
        "unknown": [rid for rid, o in found.items() if o is None],
    }


@router.get(
    "/{record_id}",
    summary="What became of a record id",
    responses={200: {"model": OutcomeOut}},
)
async def outcome(
    record_id: str,
    node: NodeDep,
    _: Annotated[Caller, Depends(require("operator", "auditor", "peer"))],
    chain: Annotated[str | None, Query(max_length=8)] = None,
) -> dict[str, Any]:
    """``pending``, ``committed`` (chain, height, log index, leaf hash) or ``rejected``."""
    if RECORD_ID.match(record_id) is None:
        raise InvalidData("not a record id", field="record_id")
    if chain is not None and CODE.match(chain) is None:
        raise InvalidData("not a chain code", field="chain")
    found = await asyncio.to_thread(node.outcome, record_id, chain)
    if found is None:
        raise HTTPException(404, f"no record {record_id} on chain {chain or node.chain}")
    return {"id": record_id, **found.to_json()}
