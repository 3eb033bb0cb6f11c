"""Provenance queries: parcels, lineage, certificates, as each role may see them.

Plain functions over a ``Store``; routes turn their results into schemas.
Visibility (DOMAIN rule 10): values and party names are for authorities and
auditors. An auditor sees everything; an operator sees its own jurisdiction's
parcels and the certificates its authority issued or received; a party sees
the parcels it holds; everyone else sees origin, weights, dates,
jurisdictions and certificate status.

A view is built as plain dictionaries and validated once, whole
(``model_validate``, in pydantic's compiled core): the history of a 20-hop
lineage holds a few hundred parcels, edges and events, and building a model
object per item in Python cost more than the queries that read them. The
dictionaries are already the answer's JSON: fields in the schema's order, a
field the caller may not see (or that has no value) left out, as
``response_model_exclude_none`` would. ``history_json`` builds them from the
lineage's rows and encodes them as they are, with no object per row and no
model in between: ``GET /v1/parcels/{id}/history`` answers those bytes
(``HistoryOut`` stays its documented schema; the tests check the bytes equal
the model's own serialisation of ``history_view``, on SQLite and PostgreSQL).

Record format 2: the state holds commitments of values and names. A clear
value is shown only where the caller is entitled to the field (above) *and*
this node holds its disclosure (a node holds only the disclosures its
authority may see: its own, and those peers gave it as counterpart or
auditor); otherwise the field is null and ``committed`` names it with its
commitment, never a made-up value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from kpledger.api.deps import Caller
from kpledger.api.schemas import (
    CertificateOut,
    CertificateRefusalOut,
    HistoryOut,
    KeyProofOut,
    ParcelOut,
    ProofOut,
    RefOut,
)
from kpledger.ledger.canonical import parse_canonical
from kpledger.ledger.errors import StoreError
from kpledger.ledger.records import Composition, Kind, RecordRef
from kpledger.ledger.state import Certificate, CertificateStatus, Edge, Parcel
from kpledger.ledger.store import Store
from kpledger.ledger.store.lineage import EdgeRow, History, HistoryEvent, HistoryRows

__all__ = [
    "certificate_view",
    "history_json",
    "history_view",
    "key_history",
    "parcel_view",
    "reveal",
    "shares",
]

#: the answer's encoder: keys in the order the view built them, UTF-8 left unescaped
#: (the bytes pydantic's serializer writes for the same document)
_JSON = msgspec.json.Encoder()


def shares(origin: Composition) -> dict[str, float]:
    total = sum(q for _, q in origin)
    return {c: round(q * 100 / total, 4) if total else 0.0 for c, q in origin}


def _ref_doc(ref: RecordRef, height: int | None = None, time: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"chain": ref.chain, "index": ref.index, "hash": ref.hash.hex()}
    if height is not None:
        doc["height"] = height
    if time is not None:
        doc["time"] = time
    return doc


def _ref(ref: RecordRef, height: int | None = None, time: str | None = None) -> RefOut:
    return RefOut.model_validate(_ref_doc(ref, height, time))


def sees_parcel(caller: Caller, parcel: Parcel, node_chain: str | None) -> bool:
    if caller.role == "auditor":
        return True
    if caller.role == "operator":
        return parcel.chain == node_chain
    if caller.role == "party":
        return parcel.custodian is not None and parcel.custodian == caller.party
    return False


def sees_certificate(caller: Caller, cert: Certificate, node_chain: str | None) -> bool:
    if caller.role == "auditor":
        return True
    if caller.role == "operator":
        return node_chain in (cert.issuer, cert.destination)
    if caller.role == "party":
        return caller.party == cert.exporter
    return False


def parcel_view(
    parcel: Parcel,
    caller: Caller,
    node_chain: str | None,
    clear: Mapping[str, int | str] | None = None,
) -> ParcelOut:
    """``clear`` maps commitments to the clear values this node holds (``reveal``)."""
    return ParcelOut.model_validate(_parcel_doc(parcel, caller, node_chain, clear))


def _parcel_doc(
    parcel: Parcel,
    caller: Caller,
    node_chain: str | None,
    clear: Mapping[str, int | str] | None,
) -> dict[str, Any]:
    full = sees_parcel(caller, parcel, node_chain)
    value = _cents((clear or {}).get(parcel.value)) if full else None
    doc: dict[str, Any] = {
        "id": parcel.id,
        "jurisdiction": parcel.chain,
        "status": parcel.status.value,
        "weight": parcel.weight,
        "hs": parcel.hs,
        "origin": dict(parcel.origin),
        "origin_shares": shares(parcel.origin),
        "claims": dict(parcel.claims),
    }
    if parcel.certificate is not None:
        doc["certificate"] = parcel.certificate
    doc["created"] = _ref_doc(parcel.created)
    if full and parcel.custodian is not None:
        doc["custodian"] = parcel.custodian
    if value is not None:
        doc["value"] = value
    else:
        doc["committed"] = {"value": parcel.value}
    return doc


def _cents(value: int | str | None) -> int | None:
    return value if isinstance(value, int) else None


def _text(value: int | str | None) -> str | None:
    return value if isinstance(value, str) else None


def reveal(store: Store, commitments: Iterable[str]) -> dict[str, int | str]:
    """The clear values this node holds of ``commitments`` (only ask for a caller entitled)."""
    return store.disclosures.clear(commitments)


def _edges(edges: Sequence[Edge], kinds: dict[tuple[str, int], str]) -> list[dict[str, Any]]:
    return [
        {
            "parent": e.parent,
            "child": e.child,
            "kind": "split" if kinds.get((e.ref.chain, e.ref.index)) == "parcel.split" else "merge",
            "chain": e.ref.chain,
            "index": e.ref.index,
            "hash": e.ref.hash.hex(),
        }
        for e in edges
    ]


def _event_doc(h: HistoryEvent) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "parcel": h.event.parcel,
        "kind": h.event.kind,
        "chain": h.event.ref.chain,
        "height": h.event.height,
        "index": h.event.ref.index,
        "hash": h.event.ref.hash.hex(),
        "time": h.time,
    }
    if h.certificate is not None:
        doc["certificate"] = h.certificate
    return doc


def _history_doc(
    store: Store, found: History, parcel: Parcel, caller: Caller, node_chain: str | None
) -> dict[str, Any]:
    """The history as ``HistoryOut``'s JSON document (fields in order, no nulls)."""
    entitled = [p.value for p in found.parcels.values() if sees_parcel(caller, p, node_chain)]
    clear = reveal(store, entitled) if entitled else {}
    kinds = {(h.event.ref.chain, h.event.ref.index): h.event.kind for h in found.events}
    return {
        "subject": parcel.id,
        "origin": dict(parcel.origin),
        "origin_shares": shares(parcel.origin),
        "claims": dict(parcel.claims),
        "parcels": [
            _parcel_doc(p, caller, node_chain, clear) for _, p in sorted(found.parcels.items())
        ],
        "ancestors": _edges(found.ancestors, kinds),
        "descendants": _edges(found.descendants, kinds),
        "events": [_event_doc(h) for h in found.events],
        "truncated": found.truncated,
    }


def history_view(
    store: Store, parcel: Parcel, caller: Caller, node_chain: str | None, limit: int
) -> HistoryOut:
    """The lineage graph: ancestors back to the mines, descendants, and every record."""
    found = store.lineage.history(parcel.id, limit=limit)
    return HistoryOut.model_validate(_history_doc(store, found, parcel, caller, node_chain))


def history_json(
    store: Store, parcel_id: str, caller: Caller, node_chain: str | None, limit: int
) -> bytes | None:
    """``history_view``'s answer as the route sends it (``HistoryOut`` with no nulls), as
    JSON bytes; None when there is no parcel ``parcel_id``.

    Built from the lineage's rows (``Lineage.history_rows``): no object per parcel,
    edge or record, the same document as ``history_view`` makes of the objects (the
    tests compare both). The subject's row comes with the others; the store is asked
    for it alone only when the lineage lacks it (a parcel of a block being applied).
    """
    found = store.lineage.history_rows(parcel_id, limit=limit)
    row = found.parcels.get(parcel_id)
    if row is None:
        parcel = store.parcel(parcel_id)
        if parcel is None:
            return None
        return _JSON.encode(_history_doc(store, found.objects(), parcel, caller, node_chain))
    return _JSON.encode(_history_rows_doc(store, found, row, caller, node_chain))


#: the columns of a ``parcels`` row (``rows.parcel_of``), by name
_ID, _CHAIN, _CUSTODIAN, _STATUS, _WEIGHT, _VALUE, _HS, _ORIGIN, _CERT = range(9)
_CREATED_CHAIN, _CREATED_IDX, _CREATED_HASH, _CLAIMS = range(9, 13)


def _composition(text: str | None) -> dict[str, int]:
    """A stored composition (``rows.origin_text``) as ``dict(Parcel.origin)`` has it."""
    return dict(sorted(json.loads(text).items())) if text else {}


def _sees_row(caller: Caller, row: tuple[Any, ...], node_chain: str | None) -> bool:
    """``sees_parcel`` of a ``parcels`` row."""
    if caller.role == "auditor":
        return True
    if caller.role == "operator":
        return bool(row[_CHAIN] == node_chain)
    if caller.role == "party":
        return row[_CUSTODIAN] is not None and row[_CUSTODIAN] == caller.party
    return False


def _parcel_row_doc(
    row: tuple[Any, ...], full: bool, clear: Mapping[str, int | str]
) -> dict[str, Any]:
    """``_parcel_doc`` of a ``parcels`` row (``full``: the caller sees the parcel)."""
    origin = _composition(row[_ORIGIN])
    commitment = str(row[_VALUE])
    value = _cents(clear.get(commitment)) if full else None
    doc: dict[str, Any] = {
        "id": row[_ID],
        "jurisdiction": row[_CHAIN],
        "status": row[_STATUS],
        "weight": int(row[_WEIGHT]),
        "hs": row[_HS],
        "origin": origin,
        "origin_shares": shares(tuple(origin.items())),
        "claims": _composition(row[_CLAIMS]),
    }
    if row[_CERT] is not None:
        doc["certificate"] = row[_CERT]
    doc["created"] = {
        "chain": row[_CREATED_CHAIN],
        "index": int(row[_CREATED_IDX]),
        "hash": bytes(row[_CREATED_HASH]).hex(),
    }
    if full and row[_CUSTODIAN] is not None:
        doc["custodian"] = row[_CUSTODIAN]
    if value is not None:
        doc["value"] = value
    else:
        doc["committed"] = {"value": commitment}
    return doc


def _edge_rows_doc(rows: list[EdgeRow], kinds: dict[tuple[str, int], str]) -> list[dict[str, Any]]:
    return [
        {
            "parent": p,
            "child": c,
            "kind": "split" if kinds.get((ch, i)) == "parcel.split" else "merge",
            "chain": ch,
            "index": i,
            "hash": h.hex(),
        }
        for p, c, ch, i, h in rows
    ]


def _history_rows_doc(
    store: Store,
    found: HistoryRows,
    subject: tuple[Any, ...],
    caller: Caller,
    node_chain: str | None,
) -> dict[str, Any]:
    """``_history_doc`` of the lineage's rows."""
    seen = {pid: _sees_row(caller, row, node_chain) for pid, row in found.parcels.items()}
    entitled = [str(row[_VALUE]) for pid, row in found.parcels.items() if seen[pid]]
    clear = reveal(store, entitled) if entitled else {}
    kinds = {(c, i): k for _, c, i, _, k, _, _, _ in found.events}
    events: list[dict[str, Any]] = []
    for p, c, i, h, k, leaf, time, cert in found.events:
        event: dict[str, Any] = {
            "parcel": p,
            "kind": k,
            "chain": c,
            "height": h,
            "index": i,
            "hash": leaf.hex(),
            "time": time,
        }
        if cert is not None:
            event["certificate"] = cert
        events.append(event)
    origin = _composition(subject[_ORIGIN])
    return {
        "subject": subject[_ID],
        "origin": origin,
        "origin_shares": shares(tuple(origin.items())),
        "claims": _composition(subject[_CLAIMS]),
        "parcels": [
            _parcel_row_doc(row, seen[pid], clear) for pid, row in sorted(found.parcels.items())
        ],
        "ancestors": _edge_rows_doc(found.ancestors, kinds),
        "descendants": _edge_rows_doc(found.descendants, kinds),
        "events": events,
        "truncated": found.truncated,
    }


def certificate_status(cert: Certificate, today: str | None = None) -> str:
    day = today or datetime.now(UTC).strftime("%Y-%m-%d")
    if cert.status is CertificateStatus.ISSUED and day > cert.expires:
        return "expired"
    return cert.status.value


def inclusion(store: Store, ref: RecordRef) -> ProofOut | None:
    """A record's inclusion proof against its chain's signed head."""
    head = store.log.signed_head(ref.chain)
    record = store.log.record(ref.chain, ref.index)
    if head is None or record is None:
        return None
    size = head.header.size
    proof = store.proofs.inclusion(ref.chain, ref.index, size)
    header: dict[str, Any] = parse_canonical(head.header.raw)
    return ProofOut(
        record=record.as_json(),
        index=ref.index,
        size=size,
        proof=[p.hex() for p in proof],
        header=header,
        sig=head.sig.hex(),
        keys=key_history(store, ref.chain) or None,
    )


def key_history(store: Store, chain: str) -> list[KeyProofOut]:
    """Every record that changed ``chain``'s key, each proved against its block's header."""
    out: list[KeyProofOut] = []
    for record, index, height in store.log.key_records(chain):
        signed = store.log.signed_header(record.chain, height)
        if signed is None:
            raise StoreError(f"header {record.chain}/{height} of a key record is not stored")
        path = store.proofs.inclusion(record.chain, index, signed.header.size)
        out.append(
            KeyProofOut(
                record=record.as_json(),
                index=index,
                proof=[p.hex() for p in path],
                header=parse_canonical(signed.header.raw),
                sig=signed.sig.hex(),
            )
        )
    return out


def refusal_of(store: Store, cert: Certificate) -> CertificateRefusalOut | None:
    """A refused certificate's reason, from the ``certificate.refuse`` record that closed it."""
    if cert.status is not CertificateStatus.REFUSED or cert.closed_ref is None:
        return None
    record = store.log.record(cert.closed_ref.chain, cert.closed_ref.index)
    if record is None or record.kind is not Kind.CERTIFICATE_REFUSE:
        return None
    body = record.body_json
    return CertificateRefusalOut(
        code=str(body["code"]), reason=str(body["reason"]), record=_ref(cert.closed_ref)
    )


def certificate_view(
    store: Store, cert: Certificate, caller: Caller, node_chain: str | None
) -> CertificateOut:
    full = sees_certificate(caller, cert, node_chain)
    proof = inclusion(store, cert.issue_ref)
    body = proof.record.get("body", {}) if proof is not None else {}
    seal_c = str(body.get("seal", {}).get("c", "")) if isinstance(body, dict) else ""
    clear = reveal(store, [cert.value, cert.importer_name, seal_c]) if full else {}
    value = _cents(clear.get(cert.value))
    importer = _text(clear.get(cert.importer_name))
    seal = _text(clear.get(seal_c))
    committed: dict[str, str] = {}
    if value is None:
        committed["value"] = cert.value
    if importer is None:
        committed["importer"] = cert.importer_name
    if seal is None and seal_c:
        committed["seal"] = seal_c
    return CertificateOut(
        number=cert.number,
        issuer=cert.issuer,
        destination=cert.destination,
        refusal=refusal_of(store, cert),
        status=certificate_status(cert),
        issued=cert.issued,
        expires=cert.expires,
        carats=cert.carats,
        parcels=list(cert.parcels),
        origin=cert.origin,
        issue=_ref(cert.issue_ref),
        closed=_ref(cert.closed_ref) if cert.closed_ref else None,
        received=cert.received,
        exporter=cert.exporter if full else None,
        importer=importer,
        value=value,
        seal=seal,
        committed=committed or None,
        proof=proof,
    )
