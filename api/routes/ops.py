"""Operations: health and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kpledger.api.deps import NodeDep
from kpledger.api.schemas import HealthOut

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Liveness and a summary of the node",
    responses={200: {"model": HealthOut}},
)
async def healthz(request: Request, node: NodeDep) -> dict[str, Any]:
    """``sync`` says per chain how far behind the best height a peer announced this node
    is and for how long it made no progress; ``stale`` is true if any chain is stale."""
    gossip = request.app.state.gossip
    sync = gossip.sync_status() if gossip is not None else None
    return {
        "status": "ok",
        "node": node.config.code,
        "chain": node.chain,
        "network": node.registry.network_id,
        "heights": {c: h["height"] for c, h in node.heads().items()},
        "evidence": len(node.forks),
        "stale": any(s["stale"] for s in (sync or {}).values()),
        "sync": sync,
    }


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(node: NodeDep) -> Response:
    return Response(generate_latest(node.metrics.registry), media_type=CONTENT_TYPE_LATEST)
