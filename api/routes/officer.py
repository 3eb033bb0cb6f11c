"""What the explorer's officer forms need: pick lists, and records composed by the node.

``POST /v1/officer/compose`` turns officer-level fields (carats and US dollars
as text, parcels by id: ``node.compose.ACTS``) into a record composed by
``node.compose.Composer`` from this node's state, the code the ``kpl``
officer commands run. It writes nothing: the form then submits the record to
``POST /v1/records`` like any client. Operators only.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from kpledger.api.deps import Caller, NodeDep, require
from kpledger.api.provenance import certificate_status, certificate_view, parcel_view, reveal
from kpledger.api.schemas import CertificateOut, ParcelOut, RefOut
from kpledger.ledger.errors import InvalidData, UnknownReference
from kpledger.ledger.records import Kind
from kpledger.ledger.schema import LOCAL_ID
from kpledger.node.compose import Composer
from kpledger.node.compose_artisanal import OFFICER_ACTS as ACTS
from kpledger.node.node import Node

__all__ = ["router"]

router = APIRouter(prefix="/v1/officer", tags=["officer"])

#: a calendar quarter (``ledger.records.QUARTER``), as a query pattern
QUARTER_PATTERN = r"^[12][0-9]{3}-Q[1-4]$"

Operator = Annotated[Caller, Depends(require("operator"))]


class _LocalReader:
    """The composer's reads, answered from this node's store as the API would answer them."""

    def __init__(self, node: Node, who: Caller) -> None:
        self.node = node
        self.who = who

    def get(self, path: str, **params: Any) -> Any:
        parts = path.strip("/").split("/")
        if parts == ["v1", "heads"]:
            return {"network": self.node.registry.network_id, "heads": self.node.heads()}
        if len(parts) == 3 and parts[:2] == ["v1", "parcels"]:
            pid = unquote(parts[2])
            parcel = self.node.store.parcel(pid) if LOCAL_ID.match(pid) else None
            if parcel is None:
                raise UnknownReference(f"no parcel {pid}", field="parcel")
            clear = reveal(self.node.store, [parcel.value])
            return parcel_view(parcel, self.who, self.node.chain, clear).model_dump(
                exclude_none=True
            )
        if len(parts) == 3 and parts[:2] == ["v1", "certificates"]:
            number = unquote(parts[2])
            cert = self.node.store.certificate(number) if LOCAL_ID.match(number) else None
            if cert is None:
                raise UnknownReference(f"no certificate {number}", field="number")
            view = certificate_view(self.node.store, cert, self.who, self.node.chain)
            return view.model_dump(exclude_none=True)
        raise InvalidData(f"the composer asked for {path}, which this node does not answer")


def _chain(node: Node) -> str:
    if node.chain is None:
        raise InvalidData(f"{node.config.code} has no chain: it does not take records")
    return node.chain


class ComposeIn(BaseModel):
    kind: str = Field(description="one of the acts: " + ", ".join(ACTS))
    fields: dict[str, Any] = Field(
        description="the act's fields in the officer's units (carats, US dollars as text)"
    )


class ComposeOut(BaseModel):
    record: dict[str, Any] = Field(description="the record, ready for POST /v1/records")


@router.post(
    "/compose", response_model=ComposeOut, summary="Compose a record from this node's state"
)
async def compose(body: ComposeIn, node: NodeDep, who: Operator) -> ComposeOut:
    """Weights, values, origins, custodians and references are read from the ledger;
    an input that cannot be composed is a 422 problem naming the field."""
    act = ACTS.get(body.kind)
    if act is None:
        raise InvalidData(f"must be one of {', '.join(ACTS)}", field="kind")

    def work() -> dict[str, Any]:
        composer = Composer(_LocalReader(node, who), node.registry.network_id, _chain(node))
        record: dict[str, Any] = composer.record(act.kind, act.body(composer, body.fields))
        return record

    return ComposeOut(record=await asyncio.to_thread(work))


class StatsReportDraftOut(BaseModel):
    record: dict[str, Any] = Field(
        description="the stats.report record for the quarter (id stats-<quarter>), ready for "
        "POST /v1/records: composed from this chain's records and the disclosures the node "
        "holds; a cell of fewer than the network's min_cell records carries no value"
    )


@router.get(
    "/stats-report",
    response_model=StatsReportDraftOut,
    summary="Compose this authority's quarterly statistics report",
)
async def stats_report(
    node: NodeDep,
    who: Operator,
    quarter: Annotated[
        str, Query(pattern=QUARTER_PATTERN, description="the quarter", examples=["2026-Q1"])
    ],
) -> StatsReportDraftOut:
    """Production, exports and imports by partner in carats and USD, as this node's store
    shows them now; the node judges the record when it is submitted (rules S1-S2: once per
    quarter, after it ends)."""

    def work() -> dict[str, Any]:
        chain = _chain(node)
        body = node.store.audit.report_body(chain, quarter)
        composer = Composer(_LocalReader(node, who), node.registry.network_id, chain)
        record: dict[str, Any] = composer.record(
            Kind.STATS_REPORT, body, record_id=f"stats-{quarter}"
        )
        return record

    return StatsReportDraftOut(record=await asyncio.to_thread(work))


@router.get(
    "/parcels",
    response_model=list[ParcelOut],
    response_model_exclude_none=True,
    summary="Active parcels this authority holds (a pick list)",
)
async def held(
    node: NodeDep,
    who: Operator,
    limit: Annotated[int, Query(ge=1, le=1000, description="most parcels")] = 500,
) -> list[ParcelOut]:
    def work() -> list[ParcelOut]:
        chain = _chain(node)
        parcels = node.store.held_parcels(chain, limit=limit)
        clear = reveal(node.store, [p.value for p in parcels])
        return [parcel_view(p, who, chain, clear) for p in parcels]

    return await asyncio.to_thread(work)


@router.get(
    "/incoming",
    response_model=list[CertificateOut],
    response_model_exclude_none=True,
    summary="Open certificates destined to this authority",
)
async def incoming(
    node: NodeDep,
    who: Operator,
    limit: Annotated[int, Query(ge=1, le=1000, description="most certificates")] = 500,
) -> list[CertificateOut]:
    def work() -> list[CertificateOut]:
        chain = _chain(node)
        incoming = node.store.incoming_certificates(chain, limit=limit)
        clear = reveal(node.store, [x for c in incoming for x in (c.value, c.importer_name)])
        return [
            CertificateOut(
                number=c.number,
                issuer=c.issuer,
                destination=c.destination,
                status=certificate_status(c),
                issued=c.issued,
                expires=c.expires,
                carats=c.carats,
                parcels=list(c.parcels),
                origin=c.origin,
                exporter=c.exporter,
                importer=_text(clear.get(c.importer_name)),
                value=_cents(clear.get(c.value)),
                seal=None,  # a pick list: the certificate's page shows the seal
                committed={
                    k: v
                    for k, v in (("importer", c.importer_name), ("value", c.value))
                    if v not in clear
                }
                or None,
                issue=RefOut(
                    chain=c.issue_ref.chain, index=c.issue_ref.index, hash=c.issue_ref.hash.hex()
                ),
            )  # no proof here: a pick list; the certificate's page has it
            for c in incoming
        ]

    return await asyncio.to_thread(work)


def _cents(value: int | str | None) -> int | None:
    return value if isinstance(value, int) else None


def _text(value: int | str | None) -> str | None:
    return value if isinstance(value, str) else None
