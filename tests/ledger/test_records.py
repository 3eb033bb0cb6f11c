"""Tests of ledger.records: every kind parses, and every malformed field is refused
with a ``SchemaError`` naming its dotted path.

Documents here are drafts with confidential fields in clear, as an officer
submits them; ``parse`` commits them (``seal_record``, fixed salts) and parses
the committed bytes, so a clear value is checked where a writer checks it."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpledger.ledger.canonical import Tag, canonical_bytes, parse_canonical
from kpledger.ledger.commit import commit, keyed_salts, open_body
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import EncodingError, InvalidData, SchemaError, VersionError
from kpledger.ledger.merkle import leaf_hash
from kpledger.ledger.records import (
    MAX_LINES,
    MAX_RECORD_BYTES,
    CertificateConfirm,
    CertificateIssue,
    CertificateRefuse,
    CertificateVoid,
    Child,
    ClaimRegister,
    DiagnosticAssess,
    KeyReplace,
    KeyRotate,
    Kind,
    LicenceBuyer,
    LicenceDigger,
    LicenceEnd,
    Line,
    MemberAdmit,
    MemberChange,
    ParcelMerge,
    ParcelPurchase,
    ParcelRegister,
    ParcelRelease,
    ParcelSplit,
    ParcelTransfer,
    PartyRegister,
    PartyRevoke,
    PolicyOrigin,
    Record,
    RecordRef,
    StatsReport,
    make_record,
    seal_record,
)
from kpledger.ledger.schema import CARAT_MAX, CENTS_MAX

NETWORK = "ab" * 32
KEY = Ed25519Signer.from_seed(bytes(32)).public.hex()
GOV = [Ed25519Signer.from_seed(bytes([i]) * 32) for i in (1, 2)]

#: One valid body per kind, with the dataclass it parses into.
BODIES: dict[Kind, tuple[dict[str, Any], type]] = {
    Kind.PARTY_REGISTER: (
        {"party": "BW-ACME", "name": "Acme Mining", "role": "miner", "address": "Gaborone"},
        PartyRegister,
    ),
    Kind.PARTY_REVOKE: ({"party": "BW-ACME", "reason": "licence withdrawn"}, PartyRevoke),
    Kind.PARCEL_REGISTER: (
        {
            "parcel": "BW-P1",
            "custodian": "BW-ACME",
            "weight": 12_345,
            "value": 1_654_230,
            "hs": "7102.31",
            "mine": "Jwaneng",
            "produced": "2026-03-01",
        },
        ParcelRegister,
    ),
    Kind.PARCEL_TRANSFER: ({"parcel": "BW-P1", "to": "BW-B", "value": 100}, ParcelTransfer),
    Kind.PARCEL_SPLIT: (
        {
            "parcel": "BW-P1",
            "children": [
                {"parcel": "BW-P2", "weight": 1, "value": 0},
                {"parcel": "BW-P3", "weight": 2, "value": 3, "custodian": "BW-B"},
            ],
        },
        ParcelSplit,
    ),
    Kind.PARCEL_MERGE: (
        {
            "parents": ["BW-P1", "BW-P2"],
            "parcel": "BW-P3",
            "custodian": "BW-ACME",
            "weight": 3,
            "value": 4,
        },
        ParcelMerge,
    ),
    Kind.CERTIFICATE_ISSUE: (
        {
            "number": "BW-C1",
            "destination": "EU",
            "exporter": "BW-ACME",
            "importer": {"name": "Antwerp Rough NV", "address": "Hoveniersstraat, Antwerp"},
            "lines": [
                {
                    "parcel": "BW-P1",
                    "weight": 10_000,
                    "value": 1_340_000,
                    "hs": "7102.31",
                    "origin": {"BW": 10_000},
                },
                {
                    "parcel": "BW-P2",
                    "weight": 500,
                    "value": 10,
                    "hs": "7102.10",
                    "origin": {"BW": 400, "RU": 100},
                },
            ],
            "carats": 10_500,
            "value": 1_340_010,
            "parcels": 2,
            "origin": "mixed",
            "issued": "2026-03-01",
            "expires": "2026-03-31",
            "seal": "SEAL-0001",
        },
        CertificateIssue,
    ),
    Kind.CERTIFICATE_CONFIRM: (
        {
            "number": "BW-C1",
            "ref": {"chain": "BW", "index": 3, "hash": "cd" * 32},
            "custodian": "EU-IMP",
            "received": [{"parcel": "BW-P1", "weight": 9_990}],
        },
        CertificateConfirm,
    ),
    Kind.CERTIFICATE_VOID: (
        {"number": "BW-C1", "reason": "not confirmed", "importer_height": 4},
        CertificateVoid,
    ),
    Kind.POLICY_RESTRICT_ORIGIN: ({"origin": "RU", "reason": "sanctions"}, PolicyOrigin),
    Kind.POLICY_LIFT_ORIGIN: ({"origin": "RU", "reason": "lifted"}, PolicyOrigin),
    Kind.KEY_ROTATE: ({"key": KEY}, KeyRotate),
    Kind.MEMBER_ADMIT: (
        {"code": "NA", "name": "Namibia", "role": "authority", "url": "http://na", "key": KEY},
        MemberAdmit,
    ),
    Kind.MEMBER_SUSPEND: ({"code": "RU", "reason": "plenary decision"}, MemberChange),
    Kind.MEMBER_REINSTATE: ({"code": "RU", "reason": "plenary decision"}, MemberChange),
    Kind.KEY_REPLACE: (
        {"code": "BW", "key": KEY, "from_height": 5, "reason": "key lost"},
        KeyReplace,
    ),
    Kind.CERTIFICATE_REFUSE: (
        {
            "number": "BW-C1",
            "ref": {"chain": "BW", "index": 3, "hash": "cd" * 32},
            "code": "restricted-origin",
            "reason": "holds Russian-origin rough",
        },
        CertificateRefuse,
    ),
    Kind.PARCEL_RELEASE: ({"parcel": "BW-P1", "reason": "weighed again"}, ParcelRelease),
    Kind.CLAIM_REGISTER: (
        {
            "claim": "BW-C1",
            "holder": "Claim Holder",
            "zone": "BW-Z1",
            "location": [{"lat": -21_000_000, "lon": 25_000_000}],
            "valid_from": "2026-01-01",
            "valid_until": "2026-12-31",
        },
        ClaimRegister,
    ),
    Kind.LICENCE_DIGGER: (
        {
            "licence": "BW-D1",
            "holder": "A Digger",
            "type": "digger",
            "claim": "BW-C1",
            "valid_from": "2026-01-01",
            "valid_until": "2026-12-31",
        },
        LicenceDigger,
    ),
    Kind.LICENCE_BUYER: (
        {
            "licence": "BW-B1",
            "party": "BW-ACME",
            "type": "comptoir",
            "zones": ["BW-Z1", "BW-Z2"],
            "valid_from": "2026-01-01",
            "valid_until": "2026-12-31",
        },
        LicenceBuyer,
    ),
    Kind.LICENCE_END: (
        {"licence": "BW-D1", "reason": "revoked", "date": "2026-02-01", "note": "fraud"},
        LicenceEnd,
    ),
    Kind.PARCEL_PURCHASE: (
        {
            "parcel": "BW-A1",
            "buyer": "BW-B1",
            "digger": "BW-D1",
            "claim": "BW-C1",
            "method": "artisanal",
            "weight": 150,
            "price": 40_000,
            "hs": "7102.31",
            "bought": "2026-01-15",
        },
        ParcelPurchase,
    ),
    Kind.DIAGNOSTIC_ASSESS: (
        {
            "indicator": "controls.claim_registry",
            "score": 2,
            "evidence": "register kept on paper",
            "assessed": "2026-01-31",
        },
        DiagnosticAssess,
    ),
    Kind.STATS_REPORT: (
        {
            "quarter": "2025-Q4",
            "production": {"carats": 150_000, "parcels": 3, "value": 12_000_000},
            "exports": [{"partner": "EU", "carats": 90_000, "certificates": 1}],
            "imports": [],
        },
        StatsReport,
    ),
}
OPTIONAL = {(Kind.PARCEL_TRANSFER, "value")}


def doc(kind: Kind, body: dict[str, Any] | None = None, /, **top: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "v": 2,
        "network": NETWORK,
        "chain": "KP" if kind.value.startswith(("member.", "key.replace")) else "BW",
        "kind": kind.value,
        "id": "rec-1",
        "time": "2026-03-01T10:00:00Z",
        "body": copy.deepcopy(BODIES[kind][0]) if body is None else body,
    }
    value.update(top)
    return value


SALTS = keyed_salts(b"test-salts", "records")


def parse(value: dict[str, Any]) -> Record:
    """The committed record of a clear draft (what a writer makes of a submission)."""
    return seal_record(value, salts=SALTS)


def c(value: int | str, path: str) -> str:
    """The commitment (hex) ``parse`` makes of ``value`` at field ``path``."""
    return commit(value, SALTS(path)).digest.hex()


def refused(value: dict[str, Any], field: str, match: str | None = None) -> SchemaError:
    with pytest.raises(SchemaError, match=match) as info:
        parse(value)
    assert info.value.field == field, str(info.value)
    assert type(info.value) is SchemaError
    return info.value


def body_with(kind: Kind, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(BODIES[kind][0])
    body.update(changes)
    return body


def split(children: list[dict[str, Any]], parent: str = "BW-P1") -> dict[str, Any]:
    return doc(Kind.PARCEL_SPLIT, {"parcel": parent, "children": children})


def issue_line(**changes: Any) -> dict[str, Any]:
    line: dict[str, Any] = copy.deepcopy(BODIES[Kind.CERTIFICATE_ISSUE][0]["lines"][0])
    line.update(changes)
    return line


def issue(**changes: Any) -> dict[str, Any]:
    return doc(Kind.CERTIFICATE_ISSUE, body_with(Kind.CERTIFICATE_ISSUE, **changes))


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("kind", list(Kind), ids=str)
def test_every_kind_parses(kind: Kind) -> None:
    record = parse(doc(kind))
    assert record.kind is kind
    assert type(record.body) is BODIES[kind][1]
    assert record.network == NETWORK
    assert record.leaf == leaf_hash(record.raw)
    assert open_body(record.as_json(), record.disclosures) == BODIES[kind][0]
    assert Record.parse(record.raw) == record
    assert parse(doc(kind)).raw == record.raw  # the same salts commit to the same bytes
    for d in record.disclosures:
        d.check_record(record.leaf, record.raw)
        if len(str(d.value)) >= 4:  # short numbers occur in hex digests by chance
            assert str(d.value).encode() not in record.raw
    assert record.sigs == ()
    assert record.unsigned_bytes() == record.raw


def test_every_kind_is_covered() -> None:
    assert set(BODIES) == set(Kind)


def test_parsed_values() -> None:
    split_body = parse(doc(Kind.PARCEL_SPLIT)).body
    assert split_body == ParcelSplit(
        "BW-P1",
        (
            Child("BW-P2", 1, c(0, "body.children[0].value"), None),
            Child("BW-P3", 2, c(3, "body.children[1].value"), "BW-B"),
        ),
    )
    cert = parse(doc(Kind.CERTIFICATE_ISSUE)).body
    assert isinstance(cert, CertificateIssue)
    assert cert.lines[1] == Line(
        "BW-P2", 500, c(10, "body.lines[1].value"), "7102.10", (("BW", 400), ("RU", 100))
    )
    assert cert.importer_name == c("Antwerp Rough NV", "body.importer.name")
    assert cert.seal == c("SEAL-0001", "body.seal")
    confirm = parse(doc(Kind.CERTIFICATE_CONFIRM)).body
    assert isinstance(confirm, CertificateConfirm)
    assert confirm.ref == RecordRef("BW", 3, bytes.fromhex("cd" * 32))
    assert RecordRef.from_json(confirm.ref.to_json(), "ref") == confirm.ref
    transfer = parse(doc(Kind.PARCEL_TRANSFER, {"parcel": "BW-P1", "to": "BW-B"})).body
    assert transfer == ParcelTransfer("BW-P1", "BW-B", None)


def test_make_record_signs_governance_records() -> None:
    record = make_record(
        network=NETWORK,
        chain="KP",
        kind=Kind.MEMBER_SUSPEND,
        record_id="gov-1",
        time="2026-03-01T10:00:00Z",
        body=BODIES[Kind.MEMBER_SUSPEND][0],
        signers=GOV,
    )
    assert [s.key_id for s in record.sigs] == [g.public.key_id for g in GOV]
    unsigned = record.unsigned_bytes()
    assert b"sigs" not in unsigned
    for signer, sig in zip(GOV, record.sigs, strict=True):
        signer.public.verify(Tag.SIG_RECORD, unsigned, sig.sig)
    assert unsigned == canonical_bytes({k: v for k, v in record.as_json().items() if k != "sigs"})


# --------------------------------------------------------------------------- missing / unknown


@pytest.mark.parametrize(
    ("kind", "name"),
    [(k, n) for k, (body, _) in BODIES.items() for n in body if (k, n) not in OPTIONAL],
    ids=str,
)
def test_missing_body_field(kind: Kind, name: str) -> None:
    body = copy.deepcopy(BODIES[kind][0])
    del body[name]
    refused(doc(kind, body), f"body.{name}", "is required")


@pytest.mark.parametrize("name", ["v", "network", "chain", "kind", "id", "time", "body"])
def test_missing_top_level_field(name: str) -> None:
    value = doc(Kind.PARTY_REVOKE)
    del value[name]
    refused(value, name, "is required")


@pytest.mark.parametrize("kind", list(Kind), ids=str)
def test_unknown_body_field(kind: Kind) -> None:
    refused(doc(kind, body_with(kind, extra="x")), "body", "unknown field")


def test_unknown_fields_elsewhere() -> None:
    refused(doc(Kind.PARTY_REVOKE, extra=1), "", "unknown field")
    refused(split([{"parcel": "BW-P2", "weight": 1, "value": 0, "x": 1}] * 1), "body.children")
    children = [
        {"parcel": "BW-P2", "weight": 1, "value": 0},
        {"parcel": "BW-P3", "weight": 1, "value": 0, "colour": "D"},
    ]
    refused(split(children), "body.children[1]", "unknown field")
    refused(issue(lines=[issue_line(extra=1)]), "body.lines[0]", "unknown field")
    refused(
        issue(importer={"name": "x", "address": "y", "phone": "1"}),
        "body.importer",
        "unknown field",
    )
    confirm = body_with(Kind.CERTIFICATE_CONFIRM)
    confirm["ref"]["extra"] = 1
    refused(doc(Kind.CERTIFICATE_CONFIRM, confirm), "body.ref", "unknown field")
    confirm = body_with(Kind.CERTIFICATE_CONFIRM)
    confirm["received"][0]["extra"] = 1
    refused(doc(Kind.CERTIFICATE_CONFIRM, confirm), "body.received[0]", "unknown field")
    sig = {"key_id": "ab" * 32, "sig": "cd" * 64, "extra": 1}
    refused(doc(Kind.MEMBER_SUSPEND, sigs=[sig]), "sigs[0]", "unknown field")


def test_missing_nested_fields() -> None:
    children = [{"parcel": "BW-P2", "weight": 1, "value": 0}, {"parcel": "BW-P3", "value": 0}]
    refused(split(children), "body.children[1].weight", "is required")
    line = issue_line()
    del line["origin"]
    refused(issue(lines=[line]), "body.lines[0].origin", "is required")
    refused(issue(importer={"name": "x"}), "body.importer.address", "is required")
    confirm = body_with(Kind.CERTIFICATE_CONFIRM)
    del confirm["ref"]["hash"]
    refused(doc(Kind.CERTIFICATE_CONFIRM, confirm), "body.ref.hash", "is required")


# --------------------------------------------------------------------------- types


def _wrong_type(value: Any) -> Any:
    if isinstance(value, str):
        return 5
    if isinstance(value, int):
        return "5"
    if isinstance(value, list):
        return "x"
    return []


@pytest.mark.parametrize(
    ("kind", "name"),
    [(k, n) for k, (body, _) in BODIES.items() for n in body],
    ids=str,
)
def test_wrong_type_body_field(kind: Kind, name: str) -> None:
    body = copy.deepcopy(BODIES[kind][0])
    body[name] = _wrong_type(body[name])
    refused(doc(kind, body), f"body.{name}", "expected")


@pytest.mark.parametrize(
    ("name", "value"),
    [("v", "1"), ("chain", 1), ("kind", 1), ("id", 7), ("time", 0), ("body", [])],
)
def test_wrong_type_top_level(name: str, value: Any) -> None:
    refused(doc(Kind.PARTY_REVOKE, **{name: value}), name, "expected")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, weight=True)), "body.weight"),
        (doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, value=False)), "body.value"),
        (doc(Kind.PARCEL_TRANSFER, body_with(Kind.PARCEL_TRANSFER, value=True)), "body.value"),
        (
            split([{"parcel": "BW-P2", "weight": True, "value": 0}] * 2),
            "body.children[0].weight",
        ),
        (issue(carats=True), "body.carats"),
        (issue(parcels=True), "body.parcels"),
        (issue(lines=[issue_line(origin={"BW": True})]), "body.lines[0].origin"),
        (doc(Kind.CERTIFICATE_VOID, body_with(Kind.CERTIFICATE_VOID, importer_height=True)), ""),
        (doc(Kind.KEY_REPLACE, body_with(Kind.KEY_REPLACE, from_height=True)), ""),
        (doc(Kind.PARTY_REVOKE, v=True), "v"),
    ],
    ids=[
        "weight",
        "value",
        "transfer-value",
        "child-weight",
        "carats",
        "parcels",
        "origin",
        "importer_height",
        "from_height",
        "version",
    ],
)
def test_bools_are_not_integers(value: dict[str, Any], field: str) -> None:
    if not field:  # named after the body field
        field = "body." + next(k for k, v in value["body"].items() if v is True)
    refused(value, field)


@pytest.mark.parametrize("version", [1, 0, 3, -1])
def test_other_format_versions_are_refused_naming_the_version(version: int) -> None:
    value = parse(doc(Kind.PARTY_REVOKE)).as_json()
    value["v"] = version
    with pytest.raises(VersionError, match=f"record format version {version} is not accepted"):
        Record.parse(canonical_bytes(value))


def test_committed_fields_hold_commitments_only() -> None:
    value = parse(doc(Kind.PARCEL_REGISTER)).as_json()
    value["body"]["value"] = 1_654_230  # a clear value in a committed record
    with pytest.raises(SchemaError, match="commitment") as info:
        Record.parse(canonical_bytes(value))
    assert info.value.field == "body.value"
    value["body"]["value"] = {"c": "ab" * 31}
    with pytest.raises(SchemaError, match="expected 64 hex digits") as info:
        Record.parse(canonical_bytes(value))
    assert info.value.field == "body.value.c"


def test_confirm_ref_index_bool_refused() -> None:
    confirm = body_with(Kind.CERTIFICATE_CONFIRM)
    confirm["ref"]["index"] = True
    refused(doc(Kind.CERTIFICATE_CONFIRM, confirm), "body.ref.index", "expected an integer")
    confirm["ref"]["index"] = -1
    refused(doc(Kind.CERTIFICATE_CONFIRM, confirm), "body.ref.index", "must be in")


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, weight=0)), "body.weight"),
        (doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, weight=-5)), "body.weight"),
        (
            doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, weight=CARAT_MAX + 1)),
            "body.weight",
        ),
        (doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, value=-1)), "body.value"),
        (
            doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, value=CENTS_MAX + 1)),
            "body.value",
        ),
        (doc(Kind.PARCEL_TRANSFER, body_with(Kind.PARCEL_TRANSFER, value=-1)), "body.value"),
        (split([{"parcel": "BW-P2", "weight": 0, "value": 0}] * 2), "body.children[0].weight"),
        (
            split(
                [
                    {"parcel": "BW-P2", "weight": 1, "value": 0},
                    {"parcel": "BW-P3", "weight": 1, "value": -1},
                ]
            ),
            "body.children[1].value",
        ),
        (doc(Kind.PARCEL_MERGE, body_with(Kind.PARCEL_MERGE, weight=0)), "body.weight"),
        (doc(Kind.PARCEL_MERGE, body_with(Kind.PARCEL_MERGE, value=-1)), "body.value"),
        (issue(carats=0), "body.carats"),
        (issue(carats=CARAT_MAX + 1), "body.carats"),
        (issue(value=-1), "body.value"),
        (issue(parcels=0), "body.parcels"),
        (issue(parcels=MAX_LINES + 1), "body.parcels"),
        (issue(lines=[issue_line(weight=0)]), "body.lines[0].weight"),
        (issue(lines=[issue_line(value=CENTS_MAX + 1)]), "body.lines[0].value"),
        (issue(lines=[issue_line(origin={"BW": -1})]), "body.lines[0].origin"),
        (issue(lines=[issue_line(origin={"BW": CARAT_MAX + 1})]), "body.lines[0].origin"),
        (
            doc(Kind.CERTIFICATE_VOID, body_with(Kind.CERTIFICATE_VOID, importer_height=0)),
            "body.importer_height",
        ),
        (
            doc(Kind.KEY_REPLACE, body_with(Kind.KEY_REPLACE, from_height=0)),
            "body.from_height",
        ),
    ],
    ids=[
        "weight-0",
        "weight-negative",
        "weight-over-max",
        "value-negative",
        "value-over-max",
        "transfer-value-negative",
        "child-weight-0",
        "child-value-negative",
        "merge-weight-0",
        "merge-value-negative",
        "carats-0",
        "carats-over-max",
        "cert-value-negative",
        "parcels-0",
        "parcels-over-max",
        "line-weight-0",
        "line-value-over-max",
        "origin-negative",
        "origin-over-max",
        "importer-height-0",
        "from-height-0",
    ],
)
def test_out_of_range(value: dict[str, Any], field: str) -> None:
    refused(value, field)


def test_range_bounds_are_inclusive() -> None:
    parse(doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, weight=1, value=0)))
    parse(
        doc(
            Kind.PARCEL_REGISTER,
            body_with(Kind.PARCEL_REGISTER, weight=CARAT_MAX, value=CENTS_MAX),
        )
    )
    parse(issue(lines=[issue_line(origin={"BW": 0, "RU": CARAT_MAX})]))


# --------------------------------------------------------------------------- ids and codes


@pytest.mark.parametrize(
    "bad", ["bw-P1", "BW_P1", "BWP1", "B-P1", "ABCDEFGHI-P1", "BW-", "BW-P 1", "BW-" + "x" * 49]
)
def test_malformed_parcel_ids(bad: str) -> None:
    refused(doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, parcel=bad)), "body.parcel")
    refused(
        doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, custodian=bad)),
        "body.custodian",
    )
    refused(doc(Kind.PARCEL_TRANSFER, body_with(Kind.PARCEL_TRANSFER, to=bad)), "body.to")
    refused(
        split([{"parcel": "BW-P2", "weight": 1, "value": 0}, {"parcel": bad, "weight": 1}]),
        "body.children[1].parcel",
    )
    refused(doc(Kind.PARCEL_MERGE, body_with(Kind.PARCEL_MERGE, parcel=bad)), "body.parcel")
    refused(issue(number=bad), "body.number")
    refused(issue(exporter=bad), "body.exporter")
    refused(issue(lines=[issue_line(parcel=bad)]), "body.lines[0].parcel")
    refused(doc(Kind.PARTY_REGISTER, body_with(Kind.PARTY_REGISTER, party=bad)), "body.party")


@pytest.mark.parametrize("position", [0, 1])
def test_malformed_merge_parent_is_named_by_its_list_path(position: int) -> None:
    parents = ["BW-P1", "BW-P2"]
    parents[position] = "bw-p"
    refused(
        doc(Kind.PARCEL_MERGE, body_with(Kind.PARCEL_MERGE, parents=parents)),
        f"body.parents[{position}]",
        "does not match",
    )
    parents[position] = 7  # type: ignore[call-overload]
    refused(
        doc(Kind.PARCEL_MERGE, body_with(Kind.PARCEL_MERGE, parents=parents)),
        f"body.parents[{position}]",
        "expected a string",
    )


@pytest.mark.parametrize("bad", ["bw", "B", "ABCDEFGHI", "B1", "", " BW"])
def test_malformed_codes(bad: str) -> None:
    refused(doc(Kind.PARTY_REVOKE, chain=bad), "chain")
    refused(issue(destination=bad), "body.destination")
    refused(
        doc(Kind.POLICY_RESTRICT_ORIGIN, body_with(Kind.POLICY_RESTRICT_ORIGIN, origin=bad)),
        "body.origin",
    )
    refused(doc(Kind.MEMBER_ADMIT, body_with(Kind.MEMBER_ADMIT, code=bad)), "body.code")


@pytest.mark.parametrize("bad", ["has space", "", "-lead", "x" * 81, "é", "a\nb"])
def test_malformed_record_ids(bad: str) -> None:
    refused(doc(Kind.PARTY_REVOKE, id=bad), "id")


def test_bad_origin_codes() -> None:
    refused(issue(lines=[issue_line(origin={"bw": 10_000})]), "body.lines[0].origin", "origin")
    refused(issue(lines=[issue_line(origin={})]), "body.lines[0].origin", "1..300")
    many = {f"A{chr(65 + i // 26)}{chr(65 + i % 26)}": 0 for i in range(301)}
    refused(issue(lines=[issue_line(origin=many)]), "body.lines[0].origin", "1..300")
    refused(issue(lines=[issue_line(origin=[["BW", 1]])]), "body.lines[0].origin")


def test_unknown_kind_and_choices() -> None:
    refused(doc(Kind.PARTY_REVOKE, kind="parcel.burn"), "kind", "must be one of")
    refused(
        doc(Kind.PARTY_REGISTER, body_with(Kind.PARTY_REGISTER, role="smuggler")),
        "body.role",
        "must be one of",
    )
    refused(
        doc(Kind.MEMBER_ADMIT, body_with(Kind.MEMBER_ADMIT, role="miner")),
        "body.role",
        "must be one of",
    )


def test_strings_refuse_control_characters_spaces_and_overlength() -> None:
    for bad in [" Acme", "Acme ", "Ac\tme", "Ac\x00me", "", "x" * 201]:
        refused(doc(Kind.PARTY_REGISTER, body_with(Kind.PARTY_REGISTER, name=bad)), "body.name")


def test_hex_fields_refuse_bad_digits_as_encoding_and_wrong_lengths_as_schema() -> None:
    """docs/spec/bundle.md section 1, the same for every binary field: short and long
    alike are `schema`, a bad digit at the right length `encoding`."""
    for bad, error in [
        ("AB" * 32, EncodingError),
        ("zz" * 32, EncodingError),
        ("ab" * 31, SchemaError),
        ("ab" * 33, SchemaError),
    ]:
        with pytest.raises(error) as info:
            parse(doc(Kind.PARTY_REVOKE, network=bad))
        assert info.value.field == "network"
        confirm = body_with(Kind.CERTIFICATE_CONFIRM)
        confirm["ref"]["hash"] = bad
        with pytest.raises(error) as info:
            parse(doc(Kind.CERTIFICATE_CONFIRM, confirm))
        assert info.value.field == "body.ref.hash"
    for key in ("ab" * 31, "ab" * 33):
        with pytest.raises(SchemaError) as info:
            parse(doc(Kind.KEY_ROTATE, {"key": key}))
        assert info.value.field == "body.key"
    for sig in ("cd" * 63, "cd" * 65):
        with pytest.raises(SchemaError) as info:
            parse(doc(Kind.MEMBER_SUSPEND, sigs=[{"key_id": "ab" * 32, "sig": sig}]))
        assert info.value.field == "sigs[0].sig"


# --------------------------------------------------------------------------- HS codes, dates, times


@pytest.mark.parametrize("bad", ["7103.10", "7102.29", "7102", "7102.1", "7102.10 ", "71.02"])
def test_bad_hs_codes(bad: str) -> None:
    refused(doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, hs=bad)), "body.hs")
    refused(issue(lines=[issue_line(hs=bad)]), "body.lines[0].hs")


@pytest.mark.parametrize("good", ["7102.10", "7102.21", "7102.31"])
def test_rough_hs_codes(good: str) -> None:
    parse(doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, hs=good)))


@pytest.mark.parametrize(
    "bad",
    ["2026-02-30", "2026-13-01", "2026-3-1", "20260301", "2026-03-01T00:00:00Z", "0000-01-01"],
)
def test_bad_dates(bad: str) -> None:
    refused(
        doc(Kind.PARCEL_REGISTER, body_with(Kind.PARCEL_REGISTER, produced=bad)),
        "body.produced",
    )
    refused(issue(issued=bad), "body.issued")
    refused(issue(expires=bad), "body.expires")


@pytest.mark.parametrize(
    "bad",
    [
        "2026-03-01T10:00:00",
        "2026-03-01 10:00:00Z",
        "2026-03-01T10:00:00+00:00",
        "2026-03-01T10:00:00.5Z",
        "2026-03-01T24:00:00Z",
        "2026-02-29T10:00:00Z",
        "2026-03-01T10:60:00Z",
        "2026-03-01t10:00:00z",
        "2026-03-01",
    ],
)
def test_bad_times(bad: str) -> None:
    refused(doc(Kind.PARTY_REVOKE, time=bad), "time")


# --------------------------------------------------------------------------- list sizes


def _children(n: int) -> list[dict[str, Any]]:
    return [{"parcel": f"BW-C{i}", "weight": 1, "value": 0} for i in range(n)]


def test_list_sizes() -> None:
    parse(split(_children(MAX_LINES)))
    refused(split(_children(MAX_LINES + 1)), "body.children", "must hold 2..1000")
    refused(split(_children(1)), "body.children", "must hold 2..1000")
    refused(
        doc(Kind.PARCEL_MERGE, body_with(Kind.PARCEL_MERGE, parents=["BW-P1"])),
        "body.parents",
        "must hold",
    )
    parents = [f"BW-Q{i}" for i in range(MAX_LINES + 1)]
    refused(
        doc(Kind.PARCEL_MERGE, body_with(Kind.PARCEL_MERGE, parents=parents)),
        "body.parents",
        "must hold",
    )
    refused(issue(lines=[]), "body.lines", "must hold 1..1000")
    lines = [issue_line(parcel=f"BW-L{i}") for i in range(MAX_LINES + 1)]
    refused(issue(lines=lines), "body.lines", "must hold 1..1000")
    confirm = body_with(Kind.CERTIFICATE_CONFIRM, received=[])
    refused(doc(Kind.CERTIFICATE_CONFIRM, confirm), "body.received", "must hold")
    sig = {"key_id": "ab" * 32, "sig": "cd" * 64}
    refused(doc(Kind.MEMBER_SUSPEND, sigs=[]), "sigs", "must hold 1..64")
    refused(doc(Kind.MEMBER_SUSPEND, sigs=[sig] * 65), "sigs", "must hold 1..64")
    parse(doc(Kind.MEMBER_SUSPEND, sigs=[sig] * 64))


def test_record_size_limit() -> None:
    with pytest.raises(SchemaError, match="limit"):
        Record.parse(b" " * (MAX_RECORD_BYTES + 1))


# --------------------------------------------------------------------------- duplicates


def test_duplicate_parcel_ids() -> None:
    twice = [
        {"parcel": "BW-P2", "weight": 1, "value": 0},
        {"parcel": "BW-P2", "weight": 2, "value": 0},
    ]
    refused(split(twice), "body.children", "BW-P2 appears twice")
    own_parent = [
        {"parcel": "BW-P1", "weight": 1, "value": 0},
        {"parcel": "BW-P2", "weight": 2, "value": 0},
    ]
    refused(split(own_parent), "body.children", "BW-P1 appears twice")
    refused(
        doc(Kind.PARCEL_MERGE, body_with(Kind.PARCEL_MERGE, parents=["BW-P1", "BW-P1"])),
        "body.parents",
        "appears twice",
    )
    refused(
        doc(Kind.PARCEL_MERGE, body_with(Kind.PARCEL_MERGE, parcel="BW-P2")),
        "body.parents",
        "appears twice",
    )
    refused(issue(lines=[issue_line(), issue_line()]), "body.lines", "appears twice")
    received = [{"parcel": "BW-P1", "weight": 1}, {"parcel": "BW-P1", "weight": 2}]
    refused(
        doc(Kind.CERTIFICATE_CONFIRM, body_with(Kind.CERTIFICATE_CONFIRM, received=received)),
        "body.received",
        "appears twice",
    )


# --------------------------------------------------------------------------- bytes


def test_non_canonical_bytes_are_encoding_errors() -> None:
    value = parse(doc(Kind.PARCEL_REGISTER)).as_json()
    raw = canonical_bytes(value)
    parse_canonical(raw)
    variants = [
        json.dumps(value).encode(),
        json.dumps(dict(reversed(value.items())), separators=(",", ":")).encode(),  # not sorted
        raw + b"\n",
        raw.replace(b'"weight":12345', b'"weight":12345.0'),
        raw.replace(b'"weight":12345', b'"weight":1.2345e4'),
        raw.replace(b'"kind":', b'"kind":"x","kind":'),
    ]
    for data in variants:
        assert data != raw
        with pytest.raises(EncodingError, match="record"):
            Record.parse(data)


def test_non_object_is_refused() -> None:
    for data in [b"[]", b"1", b'"record"', b"null"]:
        with pytest.raises(SchemaError, match="expected an object"):
            Record.parse(data)


def test_records_are_frozen() -> None:
    record = parse(doc(Kind.PARCEL_SPLIT))
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.id = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.raw = b"{}"  # type: ignore[misc]
    body = record.body
    assert isinstance(body, ParcelSplit)
    with pytest.raises(dataclasses.FrozenInstanceError):
        body.parcel = "BW-P9"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        body.children[0].weight = 99  # type: ignore[misc]
    assert isinstance(body.children, tuple)


# --------------------------------------------------------------------------- bit flips

SAMPLES = [parse(doc(kind)).raw for kind in Kind] + [
    make_record(
        network=NETWORK,
        chain="KP",
        kind=Kind.KEY_REPLACE,
        record_id="gov-2",
        time="2026-03-01T10:00:00Z",
        body=BODIES[Kind.KEY_REPLACE][0],
        signers=GOV,
    ).raw
]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SAMPLES), st.data())
def test_single_bit_flip_never_keeps_the_leaf_hash(raw: bytes, data: st.DataObject) -> None:
    original = Record.parse(raw)
    bit = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    flipped = bytearray(raw)
    flipped[bit // 8] ^= 1 << (bit % 8)
    try:
        record = Record.parse(bytes(flipped))
    except InvalidData:
        return  # refused, as it should be: nothing else may escape
    assert record.leaf != original.leaf
    assert record.raw != original.raw
