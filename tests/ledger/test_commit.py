"""Tests of ledger.commit: commitments, sealing a clear body, checking disclosures."""

from __future__ import annotations

import hashlib
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpledger.ledger.canonical import canonical_bytes
from kpledger.ledger.commit import (
    SALT_BYTES,
    Commitment,
    Disclosure,
    commit,
    confidential_paths,
    field_at,
    keyed_salts,
    open_body,
    seal_body,
)
from kpledger.ledger.errors import DisclosureError, InvalidData, SchemaError
from kpledger.ledger.merkle import leaf_hash


def _salts() -> Any:
    n = count()
    return lambda _path: bytes([next(n) % 256]) * SALT_BYTES


ISSUE: dict[str, Any] = {
    "number": "BW-C1",
    "destination": "AE",
    "exporter": "BW-P7Q2K",
    "importer": {"name": "Gulf Gems LLC", "address": "Dubai Diamond Exchange"},
    "lines": [
        {
            "parcel": "BW-1",
            "weight": 500,
            "value": 4_100_000,
            "hs": "7102.10",
            "origin": {"BW": 500},
        },
        {
            "parcel": "BW-2",
            "weight": 300,
            "value": 2_000_000,
            "hs": "7102.10",
            "origin": {"BW": 300},
        },
    ],
    "carats": 800,
    "value": 6_100_000,
    "parcels": 2,
    "origin": "BW",
    "issued": "2026-03-02",
    "expires": "2026-04-01",
    "seal": "SEAL-991",
}


def _record(kind: str, body: dict[str, Any]) -> tuple[bytes, bytes]:
    raw = canonical_bytes({"v": 2, "kind": kind, "body": body})
    return raw, leaf_hash(raw)


def test_commitment_is_the_specified_hash() -> None:
    salt = bytes(range(32))
    expected = hashlib.sha256(b"KPL-COMMIT-V1\n" + salt + b"4100000").digest()
    assert commit(4_100_000, salt).digest == expected
    assert (
        commit("Gulf Gems", salt).digest
        == hashlib.sha256(b"KPL-COMMIT-V1\n" + salt + b'"Gulf Gems"').digest()
    )
    assert commit(4_100_000, salt).to_json() == {"c": expected.hex()}


def test_salt_hides_equal_values_and_must_be_32_bytes() -> None:
    assert commit(100, b"\1" * 32) != commit(100, b"\2" * 32)
    with pytest.raises(SchemaError, match="32 bytes"):
        commit(100, b"\1" * 16)


def test_seal_body_commits_exactly_the_confidential_fields() -> None:
    sealed, openings = seal_body("certificate.issue", ISSUE, salts=_salts())
    assert [o.path for o in openings] == [
        "body.importer.name",
        "body.importer.address",
        "body.lines[0].value",
        "body.lines[1].value",
        "body.value",
        "body.seal",
    ]
    text = canonical_bytes(sealed).decode()
    for secret in ("Gulf Gems", "Dubai", "4100000", "6100000", "SEAL-991"):
        assert secret not in text
    # the public fields are untouched
    assert sealed["lines"][0]["weight"] == 500
    assert sealed["carats"] == 800
    assert sealed["exporter"] == "BW-P7Q2K"
    assert sealed["origin"] == "BW"
    assert ISSUE["value"] == 6_100_000  # the clear body is not changed in place
    raw, leaf = _record("certificate.issue", sealed)
    for opening in openings:
        Disclosure.of(leaf, opening).check_record(leaf, raw)


def test_optional_field_absent_is_not_committed() -> None:
    sealed, openings = seal_body("parcel.transfer", {"parcel": "BW-1", "to": "BW-X"})
    assert openings == ()
    assert sealed == {"parcel": "BW-1", "to": "BW-X"}
    sealed, openings = seal_body("parcel.transfer", {"parcel": "BW-1", "to": "BW-X", "value": 5})
    assert [o.path for o in openings] == ["body.value"]
    assert Commitment.is_commitment(sealed["value"])


def test_public_kinds_carry_no_confidential_field() -> None:
    body = {"number": "BW-C1", "reason": "lost", "importer_height": 3}
    assert seal_body("certificate.void", body) == (body, ())


def test_changed_value_or_salt_is_refused() -> None:
    sealed, openings = seal_body("parcel.register", {"parcel": "BW-1", "value": 700})
    raw, leaf = _record("parcel.register", sealed)
    good = Disclosure.of(leaf, openings[0])
    good.check_record(leaf, raw)
    for bad in (
        Disclosure(leaf, good.path, good.salt, 701),
        Disclosure(leaf, good.path, bytes(32), 700),
        Disclosure(leaf, good.path, good.salt, "700"),
    ):
        with pytest.raises(DisclosureError, match="do not open") as info:
            bad.check_record(leaf, raw)
        assert info.value.field == "body.value"
        assert info.value.record == leaf.hex()


def test_disclosure_of_another_record_or_a_public_field_is_refused() -> None:
    sealed, openings = seal_body("parcel.register", {"parcel": "BW-1", "weight": 9, "value": 7})
    raw, leaf = _record("parcel.register", sealed)
    with pytest.raises(DisclosureError, match="another record"):
        Disclosure.of(bytes(32), openings[0]).check_record(leaf, raw)
    with pytest.raises(DisclosureError, match="not a confidential field"):
        Disclosure(leaf, "body.weight", openings[0].salt, 9).check_record(leaf, raw)


def test_disclosure_json_round_trip_and_bad_input_named() -> None:
    d = Disclosure(b"\7" * 32, "body.value", b"\1" * SALT_BYTES, 12)
    assert Disclosure.from_json(d.to_json()) == d
    with pytest.raises(InvalidData) as info:
        Disclosure.from_json({**d.to_json(), "salt": "ab"})
    assert info.value.field == "disclosure.salt"
    with pytest.raises(SchemaError) as info:
        Disclosure.from_json({**d.to_json(), "value": 1.5})
    assert info.value.field == "disclosure.value"
    with pytest.raises(SchemaError) as info:
        Disclosure.from_json({**d.to_json(), "path": "weight"})
    assert info.value.field == "disclosure.path"
    with pytest.raises(SchemaError):
        Disclosure.from_json({"record": d.record.hex()})


def test_commitment_json_refuses_anything_but_c() -> None:
    assert Commitment.from_json({"c": "ab" * 32}, "body.value").digest == b"\xab" * 32
    for bad in (5, {"c": "ab"}, {"c": "ab" * 32, "x": 1}, {"value": 5}):
        with pytest.raises(InvalidData) as info:
            Commitment.from_json(bad, "body.value")
        assert info.value.field.startswith("body.value")


def test_paths() -> None:
    doc = {"kind": "parcel.split", "body": {"children": [{"value": 1}, {"value": 2}]}}
    assert confidential_paths(doc) == ("body.children[0].value", "body.children[1].value")
    assert field_at(doc, "body.children[1].value") == 2
    with pytest.raises(SchemaError):
        field_at(doc, "body.children[2].value")
    with pytest.raises(SchemaError):
        field_at(doc, "body.nothing")


@settings(max_examples=60, deadline=None)
@given(
    value=st.one_of(st.integers(0, 10**15), st.text(max_size=300)),
    salt=st.binary(min_size=32, max_size=32),
    other=st.one_of(st.integers(0, 10**15), st.text(max_size=300)),
)
def test_only_the_committed_value_opens(value: int | str, salt: bytes, other: int | str) -> None:
    c = commit(value, salt)
    Disclosure(bytes(32), "body.value", salt, value).check(c)
    if other != value:
        with pytest.raises(DisclosureError):
            Disclosure(bytes(32), "body.value", salt, other).check(c)


def test_keyed_salts_are_reproducible_and_differ_by_scope_and_path() -> None:
    salts = keyed_salts(b"\1" * 32, "net:BW:r1")
    assert salts("body.value") == keyed_salts(b"\1" * 32, "net:BW:r1")("body.value")
    assert len(salts("body.value")) == SALT_BYTES
    others = {
        keyed_salts(b"\1" * 32, "net:BW:r2")("body.value"),
        keyed_salts(b"\2" * 32, "net:BW:r1")("body.value"),
        salts("body.seal"),
    }
    assert salts("body.value") not in others
    assert len(others) == 3
    # the same clear body under the same keyed salts seals to the same bytes
    a, _ = seal_body("parcel.register", {"parcel": "BW-1", "value": 7}, salts=salts)
    b, _ = seal_body("parcel.register", {"parcel": "BW-1", "value": 7}, salts=salts)
    assert a == b


def test_open_body_puts_disclosed_fields_back_and_checks_them() -> None:
    sealed, openings = seal_body("certificate.issue", ISSUE, salts=_salts())
    _, leaf = _record("certificate.issue", sealed)
    doc = {"v": 2, "kind": "certificate.issue", "body": sealed}
    disclosures = [Disclosure.of(leaf, o) for o in openings]
    assert open_body(doc, disclosures) == ISSUE
    partly = open_body(doc, disclosures[:2])
    assert partly["importer"] == ISSUE["importer"]
    assert Commitment.is_commitment(partly["value"])
    with pytest.raises(DisclosureError):
        open_body(doc, [Disclosure(leaf, "body.value", openings[4].salt, 1)])


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ({"parcel": "BW-1", "to": "BW-2", "value": -1}, "body.value", "0.."),
        ({"parcel": "BW-1", "to": "BW-2", "value": True}, "body.value", "integer"),
    ],
)
def test_clear_values_are_checked_before_sealing(
    body: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(SchemaError, match=message) as info:
        seal_body("parcel.transfer", body)
    assert info.value.field == path


def test_clear_names_refuse_invisible_characters() -> None:
    body = {"party": "BW-X", "name": "Gem\u202eTraders", "role": "trader", "address": "x"}
    with pytest.raises(SchemaError, match="U\\+202E") as info:
        seal_body("party.register", body)
    assert info.value.field == "body.name"
    with pytest.raises(SchemaError, match="length") as info:
        seal_body("party.register", {**body, "name": "x" * 201})
    assert info.value.field == "body.name"
