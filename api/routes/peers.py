"""Node-to-node: heads, gossip, block ranges and evidence."""

from __future__ import annotations

import asyncio
import functools
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from kpledger.api.deps import Caller, NodeDep, require
from kpledger.api.schemas import (
    BlocksOut,
    DisclosuresOut,
    EvidenceListOut,
    GossipOut,
    HeadsOut,
    PushOut,
)
from kpledger.ledger.canonical import load_json
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.records import MAX_INDEX
from kpledger.ledger.state import chains_of, member_role
from kpledger.node.disclose import MAX_DISCLOSURES, disclosures_json
from kpledger.node.gossip import INFORMED_HEADER

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["peers"])

MAX_PULL = 1000
#: blocks in one push (a node pushes the one it just sealed)
MAX_PUSH = 16
#: node codes an ``X-KPL-Informed`` header may name
MAX_INFORMED = 1024
_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")


@router.get(
    "/heads",
    summary="The head of every chain this node holds",
    responses={200: {"model": HeadsOut}},
)
async def heads(node: NodeDep) -> dict[str, Any]:
    return {"network": node.registry.network_id, "node": node.config.code, "heads": node.heads()}


@router.post(
    "/gossip",
    summary="Exchange heads (push-pull anti-entropy)",
    responses={200: {"model": GossipOut}},
)
async def gossip(
    request: Request,
    node: NodeDep,
    who: Annotated[Caller, Depends(require("peer"))],
) -> dict[str, Any]:
    """Body ``{network, from, heads, evidence}``; answers the same with this node's.

    The sender's heads are hints: this node then pulls what it lacks from the
    sender and verifies every block.
    """
    message = load_json(await request.body(), what="gossip message")
    if not isinstance(message, dict) or message.get("network") != node.registry.network_id:
        raise InvalidData("gossip message for another network", field="network")
    sender = message.get("from")
    if sender != who.name:
        raise HTTPException(403, f"token of {who.name} cannot speak for {sender!r}")
    g = request.app.state.gossip
    if g is not None:
        g.on_heads(str(sender), message)
    answer: dict[str, Any] = (
        g.message()
        if g is not None
        else {
            "network": node.registry.network_id,
            "from": node.config.code,
            "heads": node.heads(),
            "evidence": node.evidence_ids(),
        }
    )
    return answer


@router.get(
    "/chains/{chain}/blocks",
    summary="A range of one chain's blocks",
    responses={200: {"model": BlocksOut}},
)
async def blocks(
    chain: str,
    node: NodeDep,
    _: Annotated[Caller, Depends(require("peer", "auditor"))],
    start: Annotated[
        int, Query(alias="from", ge=1, le=MAX_INDEX, description="first height (1..2^53 - 1)")
    ] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_PULL)] = 100,
) -> Response:
    """``{"blocks": [{header, records, sig}, ...]}`` in the exact stored bytes."""
    if chain not in chains_of(node.store):
        raise HTTPException(404, f"no chain {chain} in this network")
    body = await asyncio.to_thread(node.blocks_json, chain, start, limit)
    return Response(body, media_type="application/json")


def _informed(value: str | None) -> frozenset[str] | None:
    """The node codes of an ``X-KPL-Informed`` header (None without one)."""
    if value is None:
        return None
    codes = [c.strip() for c in value.split(",")]
    if len(codes) > MAX_INFORMED or not all(_CODE.fullmatch(c) for c in codes):
        raise InvalidData(
            f"{INFORMED_HEADER} must list at most {MAX_INFORMED} node codes "
            "(letters, digits, '-' or '_', up to 32 each) separated by commas",
            field=INFORMED_HEADER,
        )
    return frozenset(codes)


@router.post(
    "/chains/{chain}/blocks",
    summary="Push blocks of one chain (a peer's freshly sealed block)",
    responses={200: {"model": PushOut}},
)
async def push(
    chain: str,
    request: Request,
    node: NodeDep,
    _: Annotated[Caller, Depends(require("peer"))],
) -> dict[str, Any]:
    """Body ``{"blocks": [{header, records, sig}, ...]}`` (at most 16, in order).

    Each block is verified in full and applied, or held until what it
    witnesses arrives (a gossip round is started to pull that); an invalid
    block is refused with a problem naming the check it failed. The optional
    header ``X-KPL-Informed: CODE,CODE,...`` names the nodes that hold the
    blocks or are being sent them: relaying them skips those.
    """
    if chain not in chains_of(node.store):
        raise HTTPException(404, f"no chain {chain} in this network")
    informed = _informed(request.headers.get(INFORMED_HEADER))
    body = load_json(await request.body(), what="pushed blocks")
    if not isinstance(body, dict) or not isinstance(body.get("blocks"), list):
        raise InvalidData("pushed blocks must be an object with a list 'blocks'", field="blocks")
    if len(body["blocks"]) > MAX_PUSH:
        raise InvalidData(f"at most {MAX_PUSH} blocks in one push", field="blocks")
    result = await asyncio.to_thread(
        functools.partial(node.receive, chain, body["blocks"], informed=informed)
    )
    g = request.app.state.gossip
    if result.missing and g is not None:
        g.kick()
    return {"applied": result.applied, "known": result.known, "waiting": result.waiting}


@router.get(
    "/disclosures",
    summary="The disclosures of a chain's records that the asking peer may see",
    responses={200: {"model": DisclosuresOut}},
)
async def disclosures(
    node: NodeDep,
    who: Annotated[Caller, Depends(require("peer"))],
    chain: Annotated[str, Query(pattern="^[A-Z]{2,8}$", description="the chain")],
    start: Annotated[
        int, Query(alias="from", ge=0, le=MAX_INDEX, description="first record index")
    ] = 0,
) -> dict[str, Any]:
    """Clear values and salts of committed fields of ``chain``'s records from index
    ``from`` on (``MAX_DISCLOSURES`` records at a time), only those the asking peer's
    identity (its token's name) is entitled to: its own chain's, a certificate naming
    it as destination and its exporter's registration, or every record for an
    auditor. The peer checks each against its commitment."""
    if chain not in chains_of(node.store):
        raise HTTPException(404, f"no chain {chain} in this network")
    participant = node.registry.participant(who.name)
    role = participant.role if participant is not None else member_role(node.store, who.name, 2**63)
    return await asyncio.to_thread(
        disclosures_json, node.store, chain, start, MAX_DISCLOSURES, who.name, role
    )


@router.get(
    "/evidence",
    summary="Equivocation evidence held by this node",
    responses={200: {"model": EvidenceListOut}},
)
async def evidence(node: NodeDep) -> dict[str, Any]:
    return {"evidence": await asyncio.to_thread(node.evidence_json)}
