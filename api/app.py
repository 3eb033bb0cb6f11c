"""The node's FastAPI application and its background loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import problems
from api.deps import BodyLimit
from api.routes import certificates, ops, parcels, peers, records
from node.gossip import Gossip
from node.node import Node

__all__ = ["create_app"]

log = logging.getLogger("kpl.node")

#: request body limits: a batch of 1,000 records, a gossip message, anything else
LIMITS = {"/v1/records": 32 * 1024 * 1024, "/v1/gossip": 1024 * 1024}
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
    app.include_router(parcels.router)
    app.include_router(certificates.router)
    app.include_router(peers.router)
    app.include_router(ops.router)
    app.add_middleware(BodyLimit, limits=_limit)
    return app
