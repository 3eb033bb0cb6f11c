"""Provenance bundles: download one, or have the node verify one."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from kpledger.api.deps import Caller, NodeDep, caller
from kpledger.api.problems import problem
from kpledger.ledger.bundle import MAX_BUNDLE_BYTES, check_bundle, serialize_bundle
from kpledger.ledger.entitle import entitled
from kpledger.ledger.errors import InvalidData, NotYetCosigned
from kpledger.ledger.records import Record
from kpledger.ledger.schema import LOCAL_ID
from kpledger.ledger.store.bundles import build_bundle
from kpledger.node.node import Node

__all__ = ["accepts_gzip", "router"]

router = APIRouter(tags=["provenance"])

#: how long GET .../bundle waits for a block to be cosigned: this many heartbeats,
#: at most COSIGN_WAIT_MAX seconds, polling every COSIGN_POLL seconds
COSIGN_WAIT_HEARTBEATS = 2.5
COSIGN_WAIT_MAX = 15.0
COSIGN_POLL = 0.25

#: the body limit of POST /v1/bundles/verify
VERIFY_LIMIT = MAX_BUNDLE_BYTES


#: the body fields of a record that name a party by its id
_PARTY_FIELDS = ("party", "custodian", "to", "exporter")


def _disclose(who: Caller, node: Node) -> Callable[[Record], bool] | None:
    """Of which records a caller's bundle carries the disclosures this node holds: an
    auditor's all; an operator's those its authority is entitled to (``ledger.entitle``);
    a party's those of the records naming it."""
    if who.role == "auditor":
        return lambda _record: True
    if who.role == "operator" and node.chain is not None:
        chain = node.chain
        shipping = node.store.disclosures.exporters_to(chain)
        return lambda record: entitled(chain, "authority", record, shipping.__contains__)
    if who.role == "party" and who.party:
        party = who.party
        return lambda record: any(record.body_json.get(f) == party for f in _PARTY_FIELDS)
    return None


@router.get(
    "/v1/parcels/{parcel_id}/bundle",
    summary="The parcel's provenance bundle",
    responses={
        200: {"content": {"application/json": {}}},
        409: {"description": "not yet cosigned: retry after the other authorities' next blocks"},
    },
)
async def get_bundle(
    parcel_id: str, request: Request, node: NodeDep, who: Annotated[Caller, Depends(caller)]
) -> Response:
    """Every record of the lineage with its RFC 9162 inclusion proof against a signed header
    of its chain, those headers, the key history and the genesis registry: verifiable offline
    with ``kpl verify``. Records are committed (format 2), so anyone may take a bundle; an
    entitled caller's bundle also carries the disclosures this node holds of them (an
    auditor, or an operator of this node: all it holds; a party: those of the records
    naming it), each checked by ``kpl verify`` against its commitment.
    Sent gzip-compressed to clients that accept it (a 50-hop bundle: about 136-197 KB,
    28 KB compressed). Every block the bundle needs must be witnessed by the registry's
    ``cosign`` other authorities (cosigned checkpoints); for a record too recent the
    node waits up to 2.5 heartbeats (at most 15 s) for their next blocks, then answers
    409 ``not-yet-cosigned`` naming the block and its cosigners so far."""
    if LOCAL_ID.match(parcel_id) is None:
        raise InvalidData("not a parcel id (CODE-local part)", field="parcel_id")

    def work() -> bytes:
        parcel = node.store.parcel(parcel_id)
        if parcel is None:
            raise HTTPException(404, f"no parcel {parcel_id}")
        return serialize_bundle(build_bundle(node.store, parcel_id, disclose=_disclose(who, node)))

    packed = accepts_gzip(request.headers.get("accept-encoding", ""))
    # a record too recent: wait for the other authorities' next blocks (heartbeats)
    # a little, then say "not yet cosigned" (409) with the block and its cosigners
    deadline = time.monotonic() + min(
        COSIGN_WAIT_MAX, COSIGN_WAIT_HEARTBEATS * node.config.heartbeat
    )
    while True:
        try:
            data = await asyncio.to_thread(work)
            break
        except NotYetCosigned:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(COSIGN_POLL)
    body = gzip.compress(data, compresslevel=6, mtime=0) if packed else data
    headers = {
        "Content-Disposition": f'attachment; filename="{parcel_id}.bundle.json"',
        "Vary": "Accept-Encoding",
    }
    if packed:
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


def accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` value admits gzip (``gzip``, ``x-gzip`` or ``*``,
    not at ``q=0``)."""
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        weight = params.strip().lower().removeprefix("q=").strip()
        refused = bool(weight) and weight.replace(".", "", 1).strip("0") == ""
        return not refused
    return False


@router.post(
    "/v1/bundles/verify",
    summary="Verify an uploaded bundle against this network",
    responses={
        413: {"description": "a body over the limit (without a token: http.verify_max_bytes)"},
        503: {"description": "http.verify_concurrency verifications already running"},
    },
)
async def verify(
    request: Request,
    node: NodeDep,
    who: Annotated[Caller, Depends(caller)],
    parcel: Annotated[
        str | None, Query(max_length=56, description="the parcel the bundle must be about")
    ] = None,
) -> Any:
    """Runs the same seven offline steps as ``kpl verify``, pinning this node's genesis registry.
    Answers ``{ok, step, error, verdict}``: ``step`` names the failing step, or
    ``verified``.

    Anyone may ask, so it is bounded before anything is parsed: without a token
    the body may hold ``http.verify_max_bytes`` (default 1 MiB, five times a
    50-hop bundle), checked against ``Content-Length`` and counted while it
    streams; with a token, the format's own limit. At most
    ``http.verify_concurrency`` verifications run at once: one more is answered
    503 with ``Retry-After`` before its body is read."""
    limit = node.config.http.verify_max_bytes if who.role == "public" else VERIFY_LIMIT
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _too_large(limit, who)
    gate = _gate(request, node.config.http.verify_concurrency)
    if gate.busy:
        answer = problem(
            503,
            "busy",
            f"{gate.size} bundle verifications are running; retry in a moment",
        )
        answer.headers["Retry-After"] = "1"
        answer.headers["Connection"] = "close"  # its body is not read
        return answer
    with gate:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return _too_large(limit, who)
            chunks.append(chunk)
        data = b"".join(chunks)
        del chunks
        result = await asyncio.to_thread(check_bundle, data, registry=node.registry, parcel=parcel)
    return {
        "ok": result.ok,
        "step": result.step,
        "error": result.error,
        "verdict": result.verdict.to_json() if result.verdict else None,
    }


def _too_large(limit: int, who: Caller) -> Response:
    hint = " without a token" if who.role == "public" else ""
    answer = problem(413, "too-large", f"a bundle to verify{hint} may hold {limit} bytes")
    answer.headers["Connection"] = "close"  # its body is not read
    return answer


class _Gate:
    """Counts the verifications running in this process (one event loop: no lock)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.running = 0

    @property
    def busy(self) -> bool:
        return self.running >= self.size

    def __enter__(self) -> None:
        self.running += 1

    def __exit__(self, *_: object) -> None:
        self.running -= 1


def _gate(request: Request, size: int) -> _Gate:
    gate: _Gate | None = getattr(request.app.state, "verify_gate", None)
    if gate is None:
        gate = _Gate(size)
        request.app.state.verify_gate = gate
    return gate
