"""The node's FastAPI application and its background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api import problems
from api.deps import BodyLimit
from api.routes import (
    audit,
    bundles,
    certificates,
    governance,
    ops,
    parcels,
    peers,
    records,
    stats,
    web,
)
from api.schemas import ProblemOut
from node.gossip import Gossip
from node.node import Node

__all__ = ["create_app"]

log = logging.getLogger("kpl.node")

#: request body limits: a batch of 1,000 records, a gossip message, anything else
LIMITS = {
    "/v1/records": 32 * 1024 * 1024,
    "/v1/gossip": 1024 * 1024,
    "/v1/bundles/verify": 64 * 1024 * 1024,
}
DEFAULT_LIMIT = 1024 * 1024


def _limit(path: str) -> int:
    return LIMITS.get(path.rstrip("/"), DEFAULT_LIMIT)


async def _produce(node: Node, stop: asyncio.Event) -> None:
    """Seal blocks when enough records wait, when the interval passed, or as heartbeats."""
    tick = max(0.005, min(0.05, node.config.block_interval / 4))
    while not stop.is_set():
        if node.seal_due():
            try:
                await asyncio.to_thread(node.seal)
            except Exception:
                log.exception("sealing failed")
                await asyncio.sleep(1.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=tick)


def _problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The OpenAPI schema with every error answer as what it is: a problem document.

    FastAPI documents 422 as ``application/json`` ``HTTPValidationError``; this
    node answers every error (422 included) as ``application/problem+json``
    (``api.problems``), so each 4xx/5xx response of the schema says so.
    """
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = make()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ProblemOut"] = ProblemOut.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        problem = {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemOut"}}
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    if str(status)[:1] in ("4", "5"):
                        response["content"] = dict(problem)
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    return openapi


def create_app(node: Node, gossip: Gossip | None = None, *, loops: bool = True) -> FastAPI:
    """The app for ``node``; with ``loops`` it seals blocks and gossips while it runs."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if loops:
            if node.chain is not None:
                tasks.append(asyncio.create_task(_produce(node, stop)))
            if gossip is not None:
                node.on_sealed = lambda _block: gossip.kick()
                node.on_applied = gossip.kick
                tasks.append(asyncio.create_task(gossip.run(stop)))
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="kpledger node",
        version="1",
        summary="Custody ledger for rough diamonds under the Kimberley Process",
        lifespan=lifespan,
    )
    app.state.node = node
    app.state.gossip = gossip
    problems.install(app)
    app.include_router(records.router)
    app.include_router(governance.router)
    app.include_router(parcels.router)
    app.include_router(certificates.router)
    app.include_router(bundles.router)
    app.include_router(peers.router)
    app.include_router(audit.router)
    app.include_router(stats.router)
    app.include_router(ops.router)
    app.include_router(web.router)
    app.add_middleware(BodyLimit, limits=_limit)
    app.openapi = _problem_openapi(app)  # type: ignore[method-assign]
    return app
