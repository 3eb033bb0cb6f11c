"""Each role sees exactly what it should (DOMAIN rule 10), through the HTTP API.

The example story's store, served by the WDC auditor's node and by the EU
authority's node. Hidden fields are absent from the JSON, never null; a
confidential field not shown in clear is named under ``committed`` with its
commitment, never given a made-up value.
"""

from __future__ import annotations

from typing import Any

import pytest
from api_support import Example, bearer

from kpledger.api.deps import Caller
from kpledger.api.provenance import history_view
from kpledger.api.schemas import HistoryOut

HIDDEN = {"value", "custodian", "exporter", "importer"}
PARCELS = ["BW-JW-1", "BW-JW-1c", "BW-OR-1", "AE-MIX-1", "EU-AW-1", "IN-CUT-2", "IN-CUT-1"]
CERTIFICATES = ["BW-2026-0001", "BW-2026-0002", "RU-2026-0001", "AE-2026-0001", "EU-2026-0001"]


def keys(value: Any) -> set[str]:
    """Every key anywhere in a JSON value (but inside ``committed``, which names fields
    held back, and inside a committed record, whose confidential fields are commitments)."""
    if isinstance(value, dict):
        if set(value) == {"c"}:
            return set()
        return set(value) | {
            k for name, v in value.items() if name not in ("committed", "record") for k in keys(v)
        }
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


def parcels_in(history: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in history["parcels"]}


@pytest.mark.parametrize("pid", PARCELS)
def test_public_sees_no_commercial_field_of_any_parcel(example: Example, pid: str) -> None:
    for client in (example.wdc, example.eu):
        parcel = client.get(f"/v1/parcels/{pid}")
        assert parcel.status_code == 200
        assert not keys(parcel.json()) & HIDDEN
        history = client.get(f"/v1/parcels/{pid}/history")
        assert history.status_code == 200
        assert not keys(history.json()) & HIDDEN
        assert None not in parcel.json().values()
        stored = example.store.parcel(pid)
        assert stored is not None
        assert parcel.json()["committed"] == {"value": stored.value}


@pytest.mark.parametrize("number", CERTIFICATES)
def test_public_sees_no_commercial_field_of_any_certificate(example: Example, number: str) -> None:
    answer = example.wdc.get(f"/v1/certificates/{number}")
    assert answer.status_code == 200
    body = answer.json()
    assert not keys(body) & HIDDEN
    assert set(body["committed"]) == {"value", "importer", "seal"}
    # the issue record is public now: its confidential fields are commitments
    record = body["proof"]["record"]["body"]
    assert record["number"] == number
    assert record["value"] == {"c": body["committed"]["value"]}
    assert set(record["importer"]["name"]) == {"c"}
    assert all(set(line["value"]) == {"c"} for line in record["lines"])
    assert {"status", "carats", "origin", "issuer", "destination"} <= set(body)


def test_public_sees_origin_weights_dates_jurisdictions(example: Example) -> None:
    p = example.wdc.get("/v1/parcels/IN-CUT-1").json()
    assert p["jurisdiction"] == "IN"
    assert p["weight"] == 900_000
    assert p["origin"] == {"BW": 900_000}
    assert p["origin_shares"] == {"BW": 100.0}
    mixed = example.wdc.get("/v1/parcels/AE-MIX-1").json()
    assert mixed["origin"] == {"BW": 300_000, "RU": 900_000}
    assert mixed["status"] == "in_transit"


def test_auditor_sees_everything(example: Example) -> None:
    for pid in PARCELS:
        p = example.wdc.get(f"/v1/parcels/{pid}", headers=bearer("auditor")).json()
        assert "value" in p
        stored = example.store.parcel(pid)
        assert stored is not None
        assert p["value"] == example.store.disclosures.clear([stored.value])[stored.value]
        assert "committed" not in p
    history = example.wdc.get("/v1/parcels/IN-CUT-1/history", headers=bearer("auditor")).json()
    assert all("value" in p for p in history["parcels"])
    for number in CERTIFICATES:
        c = example.wdc.get(f"/v1/certificates/{number}", headers=bearer("auditor")).json()
        assert {"value", "exporter", "importer"} <= set(c)
        assert isinstance(c["value"], int)
        assert isinstance(c["importer"], str)
        assert c["proof"]["record"]["body"]["number"] == number


def test_party_sees_its_own_parcels_in_full_and_no_one_elses(example: Example) -> None:
    surat = bearer("party:IN-JDAV2W3X")
    own = example.wdc.get("/v1/parcels/IN-CUT-1", headers=surat).json()
    assert own["custodian"] == "IN-JDAV2W3X"
    assert own["value"] == 117_747_854
    other = example.wdc.get("/v1/parcels/BW-JW-1c", headers=surat).json()
    assert not set(other) & HIDDEN
    # and the other way round
    debswana = bearer("party:BW-ACL2HHH6")
    assert "value" in example.wdc.get("/v1/parcels/BW-JW-1", headers=debswana).json()
    assert not set(example.wdc.get("/v1/parcels/IN-CUT-1", headers=debswana).json()) & HIDDEN
    # in a lineage, only the party's own parcels carry values
    history = parcels_in(example.wdc.get("/v1/parcels/EU-AW-1/history", headers=surat).json())
    assert {pid for pid, p in history.items() if "value" in p} == {
        "EU-AW-1",
        "IN-CUT",
        "IN-CUT-1",
        "IN-CUT-2",
        "IN-CUT-3",
    }
    assert "value" not in history["BW-JW-1"]


def test_party_sees_values_of_certificates_it_exported_only(example: Example) -> None:
    antwerp = example.wdc.get("/v1/certificates/EU-2026-0001", headers=bearer("party:EU-LVESSCDL"))
    assert antwerp.json()["value"] == 170_080_233
    surat = example.wdc.get("/v1/certificates/EU-2026-0001", headers=bearer("party:IN-JDAV2W3X"))
    assert not keys(surat.json()) & HIDDEN


def test_operator_sees_its_jurisdiction_in_full(example: Example) -> None:
    op = bearer("operator")
    for pid in PARCELS:
        p = example.eu.get(f"/v1/parcels/{pid}", headers=op).json()
        assert ("value" in p) == (p["jurisdiction"] == "EU"), pid
    assert "value" in example.eu.get("/v1/parcels/BW-OR-1", headers=op).json()
    # certificates its authority issued or received, not others
    for number in CERTIFICATES:
        c = example.eu.get(f"/v1/certificates/{number}", headers=op).json()
        assert ("value" in c) == ("EU" in (c["issuer"], c["destination"])), number
    # the WDC node has no jurisdiction: its operator token sees no values
    assert "value" not in example.wdc.get("/v1/parcels/BW-OR-1", headers=op).json()


def test_history_reaches_the_mines(example: Example) -> None:
    h = example.eu.get(f"/v1/parcels/{example.final}/history").json()
    assert h["subject"] == "IN-CUT-3"
    parents = {(e["parent"], e["child"]) for e in h["ancestors"]}
    assert {("EU-AW-1", "IN-CUT"), ("IN-CUT-2", "IN-CUT-3"), ("RU-UD-1", "IN-CUT-3")} <= parents
    assert ("BW-JW-1", "BW-JW-1a") in parents
    registered = {e["parcel"] for e in h["events"] if e["kind"] == "parcel.register"}
    assert registered == {"BW-JW-1", "BW-OR-1", "RU-UD-1"}
    certs = {e["certificate"] for e in h["events"] if e.get("certificate")}
    assert certs == {
        "AE-2026-0002",
        "BW-2026-0001",
        "BW-2026-0002",
        "EU-2026-0001",
        "RU-2026-0002",
    }
    assert h["truncated"] is False


def test_stats_is_public_and_names_no_party(example: Example) -> None:
    answer = example.wdc.get("/v1/stats", params={"period": "2026"})
    assert answer.status_code == 200
    text = answer.text
    for party in ("DEBSWANA", "OKAVANGO", "ALROSA", "ANTWERP", "SURAT", "DMCC", "Importer"):
        assert party not in text


@pytest.mark.parametrize("role", [None, "operator", "auditor"])
def test_history_view_is_what_validation_would_make(example: Example, role: str | None) -> None:
    """The history view (plain dictionaries validated once, whole) is a fixed point of
    validation, and the route sends exactly it."""
    parcel = example.store.parcel(example.final)
    assert parcel is not None
    view = history_view(example.store, parcel, Caller(role or "public"), "EU", 1000)
    checked = HistoryOut.model_validate(view.model_dump())
    assert checked == view
    assert checked.model_dump_json(exclude_none=True) == view.model_dump_json(exclude_none=True)
    headers = bearer(role) if role else {}
    sent = example.eu.get(f"/v1/parcels/{example.final}/history", headers=headers).json()
    assert HistoryOut.model_validate(sent).model_dump(exclude_none=True) == view.model_dump(
        exclude_none=True
    )


ROLES = [None, "operator", "auditor", "party:IN-JDAV2W3X", "party:BW-ACL2HHH6"]


@pytest.mark.parametrize("role", ROLES)
def test_history_route_sends_the_models_bytes(example: Example, role: str | None) -> None:
    """The route encodes the view's documents itself (no model on its path): for every
    parcel of the story, on both nodes, each role gets byte for byte what ``HistoryOut``
    with no nulls serialises (the answer FastAPI made of ``history_view``)."""
    with example.store.engine.connect() as conn:
        ids = sorted(r[0] for r in conn.exec_driver_sql("SELECT id FROM parcels"))
    assert len(ids) >= 14
    headers = bearer(role) if role else {}
    who = Caller("public")
    if role is not None:
        kind, _, party = role.partition(":")
        who = Caller(kind, party=party or None)
    for client, chain in ((example.eu, "EU"), (example.wdc, "WDC")):
        for pid in ids:
            parcel = example.store.parcel(pid)
            assert parcel is not None
            want = history_view(example.store, parcel, who, chain, 1000)
            sent = client.get(f"/v1/parcels/{pid}/history", headers=headers)
            assert sent.status_code == 200
            assert sent.headers["content-type"] == "application/json"
            assert sent.content == want.model_dump_json(exclude_none=True).encode(), (pid, chain)
        limited = client.get(f"/v1/parcels/{ids[0]}/history", params={"limit": 1}, headers=headers)
        parcel = example.store.parcel(ids[0])
        assert parcel is not None
        want = history_view(example.store, parcel, who, chain, 1)
        assert limited.content == want.model_dump_json(exclude_none=True).encode()
