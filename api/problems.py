"""RFC 9457 problem documents, and the one place errors become HTTP answers.

Every error answer has ``Content-Type: application/problem+json`` and a
stable ``type`` per error class: ``urn:kpledger:problem:<code>``,
where ``<code>`` is the ``code`` of the class in ``ledger.errors``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from kpledger.ledger.errors import (
    DependencyMissing,
    InvalidData,
    LedgerError,
    NotYetCosigned,
    RecordConflict,
    StoreError,
)

__all__ = ["PROBLEM_BASE", "install", "problem"]

PROBLEM_BASE = "urn:kpledger:problem:"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    422: "Unprocessable content",
    503: "Service unavailable",
}


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


async def _ledger_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LedgerError)
    if isinstance(exc, RecordConflict):
        taken = {
            "id": exc.record_id,
            "chain": exc.chain,
            "status": exc.status,
            "hash": exc.hash,
            "index": exc.index,
            "height": exc.height,
        }
        record = {k: v for k, v in taken.items() if v is not None}
        return problem(409, exc.code, str(exc), field="id", position=exc.position, record=record)
    if isinstance(exc, InvalidData):
        extra: dict[str, Any] = {"field": exc.field} if exc.field else {}
        rule = getattr(exc, "rule", "")
        if rule:
            extra["rule"] = rule
        return problem(422, exc.code, str(exc), **extra)
    if isinstance(exc, DependencyMissing):
        return problem(409, exc.code, str(exc))
    if isinstance(exc, NotYetCosigned):
        return problem(
            409,
            exc.code,
            str(exc),
            block={"chain": exc.chain, "height": exc.height},
            cosigned_by=list(exc.have),
            cosign=exc.need,
        )
    if isinstance(exc, StoreError):
        return problem(503, exc.code, "the node's store is unavailable")
    return problem(500, exc.code, str(exc))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {
        401: "unauthorized",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        413: "too-large",
    }.get(exc.status_code, "http")
    return problem(exc.status_code, code, str(exc.detail))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return problem(422, "request", f"{loc or 'request'}: {first.get('msg', 'invalid')}", field=loc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(LedgerError, _ledger_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
