"""Provenance bundles: download one, or have the node verify one."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from api.deps import Caller, NodeDep, caller
from api.provenance import sees_parcel
from ledger.bundle import MAX_BUNDLE_BYTES, check_bundle, serialize_bundle
from ledger.errors import InvalidData
from ledger.schema import LOCAL_ID
from ledger.store.bundles import build_bundle

router = APIRouter(tags=["provenance"])

#: the body limit of POST /v1/bundles/verify
VERIFY_LIMIT = MAX_BUNDLE_BYTES


@router.get(
    "/v1/parcels/{parcel_id}/bundle",
    summary="The parcel's provenance bundle",
    responses={200: {"content": {"application/json": {}}}},
)
async def get_bundle(
    parcel_id: str, node: NodeDep, who: Annotated[Caller, Depends(caller)]
) -> Response:
    """Every record of the lineage with its RFC 9162 inclusion proof against a signed header
    of its chain, those headers, the key history and the genesis registry: verifiable offline
    with ``kpl verify``. Records carry values and party names (DOMAIN rule 10), so a bundle
    is for auditors, the operator of the parcel's current jurisdiction, and the party
    holding the parcel (the README's visibility rule, as for the parcel's own fields)."""
    if LOCAL_ID.match(parcel_id) is None:
        raise InvalidData("not a parcel id (CODE-local part)", field="parcel_id")
    if who.role == "public":
        raise HTTPException(401, "a bundle holds commercial fields: it needs a token")

    def work() -> bytes:
        parcel = node.store.parcel(parcel_id)
        if parcel is None:
            raise HTTPException(404, f"no parcel {parcel_id}")
        if not sees_parcel(who, parcel, node.chain):
            whose = {
                "operator": f"an operator sees its own jurisdiction's parcels ({node.chain}); "
                f"{parcel_id} is under {parcel.chain}",
                "party": f"a party sees the parcels it holds; {parcel_id} is not held by "
                f"{who.party}",
            }.get(who.role, f"a {who.role} token cannot take bundles")
            raise HTTPException(403, f"not this parcel's bundle: {whose}")
        return serialize_bundle(build_bundle(node.store, parcel_id))

    body = await asyncio.to_thread(work)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{parcel_id}.bundle.json"'},
    )


@router.post("/v1/bundles/verify", summary="Verify an uploaded bundle against this network")
async def verify(
    request: Request,
    node: NodeDep,
    parcel: Annotated[
        str | None, Query(max_length=56, description="the parcel the bundle must be about")
    ] = None,
) -> dict[str, Any]:
    """Runs the same six steps as ``kpl verify``, pinning this node's genesis registry.
    Answers ``{ok, step, error, verdict}``: ``step`` names the failing step, or
    ``verified``."""
    data = await request.body()
    result = await asyncio.to_thread(check_bundle, data, registry=node.registry, parcel=parcel)
    return {
        "ok": result.ok,
        "step": result.step,
        "error": result.error,
        "verdict": result.verdict.to_json() if result.verdict else None,
    }
