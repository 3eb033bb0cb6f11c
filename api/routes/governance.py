"""Governance records: threshold-signed membership and key changes for chain ``KP``.

``POST /v1/governance`` takes one record of a governance kind (``member.admit``,
``member.suspend``, ``member.reinstate``, ``key.replace``). It needs no token:
the record itself carries the threshold of governance signatures, which the
node checks before anything is sealed, so a bearer token would add nothing.
Only the KP sealer's node (the registry's ``governance.sealer``) seals it; any
other node answers 409 ``not-kp-sealer`` with the sealer's code and URL.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kpledger.api.deps import NodeDep
from kpledger.api.problems import problem
from kpledger.ledger.canonical import load_json
from kpledger.node.node import NotSealer

__all__ = ["router"]

router = APIRouter(prefix="/v1/governance", tags=["governance"])


@router.post(
    "",
    summary="Seal one threshold-signed governance record on chain KP",
    operation_id="governance.submit",
)
async def submit_governance(request: Request, node: NodeDep) -> Any:
    """``committed`` with the KP height and index, or ``rejected`` with the rule and reason."""
    value = load_json(await request.body(), what="request body")
    try:
        return await asyncio.to_thread(node.submit_governance, value)
    except NotSealer as exc:
        response: JSONResponse = problem(
            409, exc.code, str(exc), sealer=exc.sealer, sealer_url=exc.url
        )
        return response
