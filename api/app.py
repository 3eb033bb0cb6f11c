"""The node's FastAPI application (its background loops are ``node.runtime``'s)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from kpledger.api import problems
from kpledger.api.deps import BodyLimit
from kpledger.api.middleware import NoSniff
from kpledger.api.openapi import add_record_schemas, operation_id
from kpledger.api.routes import (
    artisanal,
    audit,
    bundles,
    certificates,
    checks,
    governance,
    officer,
    ops,
    parcels,
    peers,
    records,
    search,
    stats,
    web,
)
from kpledger.api.schemas import ProblemOut
from kpledger.node.gossip import Gossip
from kpledger.node.node import Node

__all__ = ["create_app"]

#: request body limits: a batch of 1,000 records, a gossip message, anything else
LIMITS = {
    "/v1/records": 32 * 1024 * 1024,
    "/v1/records/check": 32 * 1024 * 1024,
    "/v1/gossip": 1024 * 1024,
    "/v1/bundles/verify": 64 * 1024 * 1024,
}
DEFAULT_LIMIT = 1024 * 1024


#: a pushed block (``POST /v1/chains/{chain}/blocks``): up to a full block of records
PUSH_LIMIT = 32 * 1024 * 1024


def _limit(path: str) -> int:
    path = path.rstrip("/")
    if path.startswith("/v1/chains/") and path.endswith("/blocks"):
        return PUSH_LIMIT
    return LIMITS.get(path, DEFAULT_LIMIT)


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
        add_record_schemas(schema)
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


def create_app(node: Node, gossip: Gossip | None = None) -> FastAPI:
    """The HTTP application of ``node``; ``gossip`` answers peers' pushed heads.

    It runs no background loop: a node process runs ``node.runtime.run_loops``
    beside it (``api.server``).
    """
    app = FastAPI(
        title="kpledger node",
        version="1",
        summary="Custody ledger for rough diamonds under the Kimberley Process",
        generate_unique_id_function=operation_id,
    )
    app.state.node = node
    app.state.gossip = gossip
    problems.install(app)
    app.include_router(records.router)
    app.include_router(checks.router)
    app.include_router(officer.router)
    app.include_router(governance.router)
    app.include_router(parcels.router)
    app.include_router(certificates.router)
    app.include_router(bundles.router)
    app.include_router(peers.router)
    app.include_router(audit.router)
    app.include_router(stats.router)
    app.include_router(artisanal.router)
    app.include_router(search.router)
    app.include_router(ops.router)
    app.include_router(web.router)
    app.add_middleware(BodyLimit, limits=_limit)
    app.add_middleware(NoSniff)
    app.openapi = _problem_openapi(app)  # type: ignore[method-assign]
    return app
