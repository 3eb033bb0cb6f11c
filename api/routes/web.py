"""The web explorer: static pages at ``/`` and a few read-only helpers they use.

The explorer is plain HTML, CSS and JavaScript in ``api/web/`` (no build
step, nothing fetched from anywhere but this node). It reads the same API as
everybody else, with the caller's own token, so roles apply exactly as in the
API. Its helpers here:

* ``GET /v1/registry``: the signed genesis registry exactly as this node holds
  it (public: it is the network's published trust anchor; the explorer shows
  it but never takes it as the anchor to verify against without saying so);
* ``GET /v1/whoami``: the role, name and party of the caller's token;
* ``GET /v1/network``: this node's peers as its gossip sees them and the sync
  lag per chain (the same numbers ``/metrics`` publishes);
* ``GET /web/qr/{number}.svg``: a QR code of a certificate's code (``ledger.certcode``);
* ``GET /v1/certificates/{number}/parties``: the exporter's registered name and
  address and the importer's, for the printed certificate, to the roles that
  may see the certificate's commercial fields.

``/web/officer.html`` holds the officer's forms (``officer.js``): they read
the pick lists of ``/v1/officer/*`` and have the node compose each record.
"""

from __future__ import annotations

import asyncio
import io
import time
from importlib import resources
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from kpledger.api.deps import Caller, NodeDep, caller
from kpledger.api.provenance import reveal, sees_certificate
from kpledger.ledger.certcode import CertificateCode
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.schema import LOCAL_ID
from kpledger.node.node import Node

__all__ = ["PAGES", "router"]

router = APIRouter(tags=["explorer"])

#: the explorer's files and their media types; nothing else under /web/ is served
PAGES: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "verify.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "lineage.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "officer.html": "text/html; charset=utf-8",
    "officer.js": "text/javascript; charset=utf-8",
    "officer.css": "text/css; charset=utf-8",
}

#: the explorer loads nothing but this node: scripts, styles, images and API calls
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_cache: dict[str, bytes] = {}


def _file(name: str) -> bytes:
    data = _cache.get(name)
    if data is None:
        data = resources.files("api").joinpath("web", name).read_bytes()
        _cache[name] = data
    return data


def _page(name: str) -> Response:
    headers = dict(_HEADERS)
    if name.endswith(".html"):
        headers["Content-Security-Policy"] = CSP
    return Response(_file(name), media_type=PAGES[name], headers=headers)


@router.get("/", include_in_schema=False)
async def index() -> Response:
    """The explorer's single page; it routes by the URL fragment (``#/parcel/IN-CUT-1``)."""
    return _page("index.html")


@router.get("/web/{name}", include_in_schema=False)
async def static(name: str) -> Response:
    if name not in PAGES:
        raise HTTPException(404, f"no explorer file {name}")
    return _page(name)


@router.get("/web/qr/{number}.svg", include_in_schema=False)
async def certificate_qr(number: str, node: NodeDep) -> Response:
    """A QR code of the certificate's code (``ledger.certcode``): its page under the
    node's public base URL (``node.public_url``, never the request's Host header),
    with the network id and the hash of the issue record."""
    if LOCAL_ID.match(number) is None:
        raise InvalidData("not a certificate number (ISSUER-...)", field="number")
    cert = await asyncio.to_thread(node.store.certificate, number)
    if cert is None:
        raise HTTPException(404, f"no certificate {number}")
    network = node.registry.network_id
    code = CertificateCode(node.config.public_base, network, number, cert.issue_ref.hash)
    url = code.url()
    out = io.BytesIO()
    segno.make(url, error="m").save(
        out,
        kind="svg",
        scale=4,
        border=4,
        dark="#000",
        light="#fff",
        xmldecl=False,
        title=f"KP certificate {number}: {url}",
    )
    return Response(out.getvalue(), media_type="image/svg+xml", headers=_HEADERS)


# ---------------------------------------------------------------- JSON helpers


class WhoAmIOut(BaseModel):
    role: str = Field(description="public, operator, auditor, peer or party")
    name: str | None = Field(default=None, description="the token's name")
    party: str | None = Field(default=None, description="the party of a party token")
    node: str = Field(description="the code of the node answering")
    chain: str | None = Field(default=None, description="the chain this node writes, if any")


class PeerOut(BaseModel):
    code: str
    url: str
    reachable: bool = Field(description="the last exchange with it succeeded")
    failures: int = Field(description="failed exchanges in a row")
    suspect: bool = Field(description="backed off for invalid data or slowness")
    last_ok_seconds: float | None = Field(
        default=None, description="seconds since the last good exchange (none yet: absent)"
    )
    backoff_seconds: float = Field(description="seconds until it is tried again")


class NetworkOut(BaseModel):
    network: str = Field(description="the network id (hash of the genesis registry)")
    node: str
    chain: str | None = None
    heads: dict[str, dict[str, Any]] = Field(description="chain -> height, hash, size, time")
    sync_lag: dict[str, int] = Field(
        description="chain -> blocks this node was behind the best peer at its last pull"
    )
    peers: list[PeerOut]
    evidence: int = Field(description="equivocation evidence documents held")


@router.get(
    "/v1/registry",
    summary="The signed genesis registry this node holds",
    responses={200: {"content": {"application/json": {}}}},
)
async def registry(node: NodeDep) -> Response:
    """``{"registry": {...}, "sigs": [...]}`` in its canonical bytes; its network id is
    ``SHA-256("KPL-REGISTRY-V1\\n" || canonical(registry))``. What this node says the
    network is: to verify independently, pin the registry you got from elsewhere."""
    return Response(node.registry.to_bytes(), media_type="application/json")


@router.get(
    "/v1/whoami",
    response_model=WhoAmIOut,
    response_model_exclude_none=True,
    summary="The caller's role as this node sees its token",
)
async def whoami(node: NodeDep, who: Annotated[Caller, Depends(caller)]) -> WhoAmIOut:
    return WhoAmIOut(
        role=who.role,
        name=who.name or None,
        party=who.party,
        node=node.config.code,
        chain=node.chain,
    )


def _lags(node: Node) -> dict[str, int]:
    out: dict[str, int] = {}
    for metric in node.metrics.sync_lag.collect():
        for sample in metric.samples:
            chain = sample.labels.get("chain")
            if chain:
                out[chain] = int(sample.value)
    return dict(sorted(out.items()))


@router.get(
    "/v1/network",
    response_model=NetworkOut,
    response_model_exclude_none=True,
    summary="This node's view of the network: heads, peers, sync lag",
)
async def network(node: NodeDep, request: Request) -> NetworkOut:
    """Every chain's head, each gossip peer's state (reachable, failures, seconds since
    the last good exchange), and the sync lag per chain: how many blocks this node was
    behind the best peer when it last pulled that chain (``kpl_sync_lag_blocks``)."""
    now = time.monotonic()
    gossip = request.app.state.gossip
    peers: list[PeerOut] = []
    if gossip is not None:
        for code, peer in sorted(gossip.peers.items()):
            peers.append(
                PeerOut(
                    code=code,
                    url=peer.config.url,
                    reachable=peer.failures == 0 and peer.last_ok > 0,
                    failures=peer.failures,
                    suspect=peer.suspect,
                    last_ok_seconds=round(now - peer.last_ok, 1) if peer.last_ok else None,
                    backoff_seconds=round(max(0.0, peer.until - now), 1),
                )
            )
    heads = await asyncio.to_thread(node.heads)
    return NetworkOut(
        network=node.registry.network_id,
        node=node.config.code,
        chain=node.chain,
        heads=heads,
        sync_lag=_lags(node),
        peers=peers,
        evidence=len(node.forks),
    )


class PartyOut(BaseModel):
    id: str | None = Field(default=None, description="the licensed party's id, if registered")
    name: str | None = Field(None, description="in clear where this node holds its disclosure")
    address: str | None = Field(None, description="in clear where this node holds its disclosure")
    committed: dict[str, str] | None = Field(
        None,
        description="fields not shown in clear, each with its commitment (hex)",
    )


class PartiesOut(BaseModel):
    number: str
    exporter: PartyOut
    importer: PartyOut


@router.get(
    "/v1/certificates/{number}/parties",
    response_model=PartiesOut,
    response_model_exclude_none=True,
    summary="A certificate's exporter and importer, with names and addresses",
)
async def certificate_parties(
    number: str, node: NodeDep, who: Annotated[Caller, Depends(caller)]
) -> PartiesOut:
    """The exporter as its authority registered it (``party.register``: name and
    address) and the importer as the certificate names it: Annex I fields 6 and 7
    for the printed certificate. Only for the roles that see the certificate's
    commercial fields (auditors, the two authorities' operators, the exporter)."""
    if LOCAL_ID.match(number) is None:
        raise InvalidData("not a certificate number (ISSUER-...)", field="number")
    cert = await asyncio.to_thread(node.store.certificate, number)
    if cert is None:
        raise HTTPException(404, f"no certificate {number}")
    if not sees_certificate(who, cert, node.chain):
        raise HTTPException(
            403,
            "the parties of a certificate are shown to auditors, "
            "the two authorities' operators and the exporter only",
        )
    party = await asyncio.to_thread(node.store.party, cert.exporter)
    record = await asyncio.to_thread(
        node.store.log.record, cert.issue_ref.chain, cert.issue_ref.index
    )
    importer = record.body_json.get("importer", {}) if record is not None else {}
    fields = {
        "exporter.name": party.name if party else "",
        "exporter.address": party.address if party else "",
        "importer.name": cert.importer_name,
        "importer.address": str(importer.get("address", {}).get("c", "")),
    }
    clear = await asyncio.to_thread(reveal, node.store, fields.values())

    def out(side: str, pid: str | None) -> PartyOut:
        name, address = clear.get(fields[f"{side}.name"]), clear.get(fields[f"{side}.address"])
        return PartyOut(
            id=pid,
            name=name if isinstance(name, str) else None,
            address=address if isinstance(address, str) else None,
            committed={
                k: fields[f"{side}.{k}"]
                for k in ("name", "address")
                if fields[f"{side}.{k}"] and fields[f"{side}.{k}"] not in clear
            }
            or None,
        )

    return PartiesOut(
        number=cert.number, exporter=out("exporter", cert.exporter), importer=out("importer", None)
    )
