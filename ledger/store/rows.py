"""Conversions between the ledger's state types and rows of ``ledger.store.tables``.

Plain functions, no SQL execution: every collaborator of the store that reads
or writes a derived table converts through here, so a row has one shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from kpledger.ledger.blocks import Header
from kpledger.ledger.canonical import canonical_bytes, parse_canonical
from kpledger.ledger.errors import LedgerError
from kpledger.ledger.records import (
    CertificateConfirm,
    CertificateIssue,
    CertificateRefuse,
    CertificateVoid,
    ClaimRegister,
    LicenceBuyer,
    LicenceDigger,
    LicenceEnd,
    ParcelMerge,
    ParcelPurchase,
    ParcelRegister,
    ParcelRelease,
    ParcelSplit,
    ParcelTransfer,
    PartyRegister,
    PartyRevoke,
    Record,
    RecordRef,
)
from kpledger.ledger.state import (
    Assessment,
    Certificate,
    CertificateStatus,
    Licence,
    Parcel,
    ParcelStatus,
    Party,
    Purchase,
)

__all__ = [
    "IN_CHUNK",
    "assessment_row",
    "cert_of",
    "cert_row",
    "chunks",
    "header_of",
    "licence_of",
    "licence_row",
    "licences_referenced",
    "origin_text",
    "parcel_of",
    "parcel_row",
    "party_of",
    "party_row",
    "purchase_row",
    "ref_of",
    "referenced",
    "rejection_row",
]

#: ids per ``IN (...)`` list: well under every driver's bound-parameter limit
IN_CHUNK = 500


def ref_of(chain: str, idx: int, digest: bytes) -> RecordRef:
    return RecordRef(chain, int(idx), bytes(digest))


def origin_text(origin: Iterable[tuple[str, int]]) -> str:
    """Storage form of a composition: sorted JSON (never hashed or signed; country codes
    and integers, so the canonical encoder's fast path writes it)."""
    return canonical_bytes(dict(origin), checked=True).decode()


def parcel_row(p: Parcel) -> dict[str, Any]:
    return {
        "id": p.id,
        "chain": p.chain,
        "custodian": p.custodian,
        "status": p.status.value,
        "weight": p.weight,
        "value": p.value,
        "hs": p.hs,
        "origin": origin_text(p.origin),
        "certificate": p.certificate,
        "created_chain": p.created.chain,
        "created_idx": p.created.index,
        "created_hash": p.created.hash,
        "claims": origin_text(p.claims) if p.claims else None,
    }


def parcel_of(row: Sequence[Any]) -> Parcel:
    """A ``parcels`` row (selected whole, in table order) as a Parcel."""
    pid, chain, custodian, status, weight, value, hs, origin, cert, cc, ci, ch, claims = row
    return Parcel(
        pid,
        chain,
        custodian,
        ParcelStatus(status),
        int(weight),
        str(value),
        hs,
        tuple(sorted(json.loads(origin).items())),
        cert,
        ref_of(cc, ci, ch),
        () if not claims else tuple(sorted(json.loads(claims).items())),
    )


def party_row(p: Party) -> dict[str, Any]:
    return {
        "id": p.id,
        "chain": p.chain,
        "name": p.name,
        "role": p.role,
        "address": p.address,
        "active": p.active,
        "reg_chain": p.registered.chain,
        "reg_idx": p.registered.index,
        "reg_hash": p.registered.hash,
    }


def party_of(row: Sequence[Any]) -> Party:
    pid, chain, name, role, address, active, rc, ri, rh = row
    return Party(pid, chain, name, role, address, bool(active), ref_of(rc, ri, rh))


def cert_row(c: Certificate) -> dict[str, Any]:
    closed = c.closed_ref
    return {
        "number": c.number,
        "issuer": c.issuer,
        "destination": c.destination,
        "exporter": c.exporter,
        "importer_name": c.importer_name,
        "status": c.status.value,
        "issued": c.issued,
        "expires": c.expires,
        "carats": c.carats,
        "value": c.value,
        "origin": c.origin,
        "parcels": json.dumps(list(c.parcels)),
        "issue_chain": c.issue_ref.chain,
        "issue_idx": c.issue_ref.index,
        "issue_hash": c.issue_ref.hash,
        "closed_chain": closed.chain if closed else None,
        "closed_idx": closed.index if closed else None,
        "closed_hash": closed.hash if closed else None,
        "received": c.received,
    }


def cert_of(row: Sequence[Any]) -> Certificate:
    (
        number,
        issuer,
        destination,
        exporter,
        importer,
        status,
        issued,
        expires,
        carats,
        value,
        origin,
        parcels,
        ic,
        ii,
        ih,
        cc,
        ci,
        ch,
        received,
    ) = row
    return Certificate(
        number,
        issuer,
        destination,
        exporter,
        importer,
        CertificateStatus(status),
        issued,
        expires,
        int(carats),
        str(value),
        origin,
        tuple(json.loads(parcels)),
        ref_of(ic, ii, ih),
        None if cc is None else ref_of(cc, ci, ch),
        None if received is None else int(received),
    )


def header_of(raw: bytes) -> Header:
    return Header.from_json(parse_canonical(bytes(raw), what="stored header"))


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), IN_CHUNK):
        yield items[i : i + IN_CHUNK]


def referenced(records: Iterable[Record]) -> tuple[set[str], set[str], set[str]]:
    """Parcel, party and certificate ids that a batch of records will read."""
    parcels: set[str] = set()
    parties: set[str] = set()
    certs: set[str] = set()
    for r in records:
        b = r.body
        match b:
            case PartyRegister() | PartyRevoke():
                parties.add(b.party)
            case ParcelRegister():
                parcels.add(b.parcel)
                parties.add(b.custodian)
            case ParcelTransfer():
                parcels.add(b.parcel)
                parties.add(b.to)
            case ParcelSplit():
                parcels.add(b.parcel)
                parcels.update(c.parcel for c in b.children)
                parties.update(c.custodian for c in b.children if c.custodian)
            case ParcelMerge():
                parcels.update(b.parents)
                parcels.add(b.parcel)
                parties.add(b.custodian)
            case CertificateIssue():
                certs.add(b.number)
                parties.add(b.exporter)
                parcels.update(line.parcel for line in b.lines)
            case CertificateConfirm():
                certs.add(b.number)
                parties.add(b.custodian)
            case CertificateVoid() | CertificateRefuse():
                certs.add(b.number)
            case ParcelRelease():
                parcels.add(b.parcel)
            case ParcelPurchase():
                parcels.add(b.parcel)
            case LicenceBuyer():
                parties.add(b.party)
            case _:
                pass
    return parcels, parties, certs


def licence_row(x: Licence) -> dict[str, Any]:
    return {
        "id": x.id,
        "chain": x.chain,
        "type": x.type,
        "holder": x.holder,
        "claim": x.claim,
        "zones": json.dumps(list(x.zones)),
        "location": json.dumps([list(p) for p in x.location]),
        "valid_from": x.valid_from,
        "valid_until": x.valid_until,
        "ended": x.ended,
        "end_reason": x.end_reason,
        "reg_chain": x.registered.chain,
        "reg_idx": x.registered.index,
        "reg_hash": x.registered.hash,
    }


def licence_of(row: Sequence[Any]) -> Licence:
    """A ``licences`` row (selected whole, in table order) as a Licence."""
    lid, chain, kind, holder, claim, zones, location, start, end, ended, why, rc, ri, rh = row
    return Licence(
        lid,
        chain,
        kind,
        holder,
        claim,
        tuple(json.loads(zones)),
        start,
        end,
        ref_of(rc, ri, rh),
        ended,
        why,
        tuple((int(a), int(b)) for a, b in json.loads(location)),
    )


def purchase_row(p: Purchase) -> dict[str, Any]:
    return {
        "parcel": p.parcel,
        "chain": p.chain,
        "buyer": p.buyer,
        "digger": p.digger,
        "claim": p.claim,
        "method": p.method,
        "weight": p.weight,
        "price": p.price,
        "bought": p.bought,
        "idx": p.ref.index,
    }


def assessment_row(a: Assessment) -> dict[str, Any]:
    return {
        "chain": a.chain,
        "idx": a.ref.index,
        "indicator": a.indicator,
        "score": a.score,
        "evidence": a.evidence,
        "assessed": a.assessed,
    }


def licences_referenced(records: Iterable[Record]) -> set[str]:
    """Claim and licence ids that a batch of records will read."""
    out: set[str] = set()
    for r in records:
        b = r.body
        match b:
            case ClaimRegister():
                out.add(b.claim)
            case LicenceDigger():
                out.update((b.licence, b.claim))
            case LicenceBuyer() | LicenceEnd():
                out.add(b.licence)
            case ParcelPurchase():
                out.update((b.buyer, b.digger, b.claim))
            case _:
                pass
    return out


def rejection_row(record: Record, exc: LedgerError) -> dict[str, Any]:
    return {
        "chain": record.chain,
        "record_id": record.id,
        "code": exc.code,
        "rule": str(getattr(exc, "rule", "")),
        "field": str(getattr(exc, "field", "")),
        "reason": str(getattr(exc, "reason", exc)),
    }
