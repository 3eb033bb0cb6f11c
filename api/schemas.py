"""Response schemas of the provenance API (Pydantic, at the API edge only).

Fields that a role may not see are *absent* from the JSON, never null with a
hint: every route answers with ``response_model_exclude_none=True``, so a
field left ``None`` is simply not sent. Weights are integer hundredths of a
carat, values integer US cents, as in the records.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = [
    "CertificateOut",
    "EdgeOut",
    "EventOut",
    "HistoryOut",
    "ParcelOut",
    "ProofOut",
    "RefOut",
]


class RefOut(BaseModel):
    """A record's place: chain, index in that chain's log, block height, leaf hash."""

    chain: str
    index: int
    hash: str
    height: int | None = None
    time: str | None = None


class ParcelOut(BaseModel):
    id: str
    jurisdiction: str = Field(description="the participant holding the parcel")
    status: str = Field(description="active, in_transit, held or spent")
    weight: int = Field(description="hundredths of a carat")
    hs: str
    origin: dict[str, int] = Field(description="country -> hundredths of a carat")
    origin_shares: dict[str, float] = Field(description="country -> percent of the weight")
    certificate: str | None = None
    created: RefOut
    custodian: str | None = Field(None, description="hidden from the public")
    value: int | None = Field(None, description="US cents; hidden from the public")


class EventOut(BaseModel):
    parcel: str
    kind: str
    chain: str
    height: int
    index: int
    hash: str
    time: str
    certificate: str | None = None


class EdgeOut(BaseModel):
    parent: str
    child: str
    kind: str = Field(description="split or merge")
    chain: str
    index: int
    hash: str


class HistoryOut(BaseModel):
    subject: str
    origin: dict[str, int]
    origin_shares: dict[str, float]
    parcels: list[ParcelOut]
    ancestors: list[EdgeOut]
    descendants: list[EdgeOut]
    events: list[EventOut]
    truncated: bool = Field(description="true when the lineage exceeded the limit")


class ProofOut(BaseModel):
    """An RFC 9162 inclusion proof of a record against a signed header of its chain."""

    record: dict[str, object]
    index: int
    size: int
    proof: list[str]
    header: dict[str, object]
    sig: str


class CertificateOut(BaseModel):
    number: str
    issuer: str
    destination: str
    status: str = Field(description="issued, confirmed, discrepancy, voided or expired")
    issued: str
    expires: str
    carats: int = Field(description="hundredths of a carat")
    parcels: list[str]
    origin: str
    issue: RefOut
    closed: RefOut | None = None
    received: int | None = None
    exporter: str | None = Field(None, description="hidden from the public")
    importer: str | None = Field(None, description="hidden from the public")
    value: int | None = Field(None, description="US cents; hidden from the public")
    proof: ProofOut | None = None
