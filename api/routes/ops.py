"""Operations: health and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import NodeDep
from api.schemas import HealthOut

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Liveness and a summary of the node",
    responses={200: {"model": HealthOut}},
)
async def healthz(node: NodeDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "node": node.config.code,
        "chain": node.chain,
        "network": node.registry.network_id,
        "heights": {c: h["height"] for c, h in node.heads().items()},
        "evidence": len(node.forks),
    }


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(node: NodeDep) -> Response:
    return Response(generate_latest(node.metrics.registry), media_type=CONTENT_TYPE_LATEST)
