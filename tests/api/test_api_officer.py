"""The officer endpoints: pick lists, records composed by the node, and dry runs."""

from __future__ import annotations

from typing import Any

from api_support import OPEN, Example, bearer


def compose(example: Example, kind: str, fields: dict[str, Any], role: str = "operator") -> Any:
    return example.eu.post(
        "/v1/officer/compose", json={"kind": kind, "fields": fields}, headers=bearer(role)
    )


def test_incoming_lists_what_the_eu_may_confirm(example: Example) -> None:
    answer = example.eu.get("/v1/officer/incoming", headers=bearer("operator"))
    assert answer.status_code == 200, answer.text
    found = {c["number"]: c for c in answer.json()}
    assert set(found) == {OPEN}  # the mixed Dubai shipment certified again, still open
    assert found[OPEN]["origin"] == "mixed"
    assert "proof" not in found[OPEN]
    assert example.eu.get("/v1/officer/incoming").status_code == 401
    assert example.eu.get("/v1/officer/parcels", headers=bearer("auditor")).status_code == 403


def test_compose_then_check_writes_nothing(example: Example) -> None:
    before = example.store.head("EU")
    confirm = compose(example, "certificate.confirm", {"number": OPEN, "custodian": "EU-LVESSCDL"})
    assert confirm.status_code == 200, confirm.text
    record = confirm.json()["record"]
    issue = example.store.certificate(OPEN)
    assert issue is not None
    assert record["body"]["ref"] == issue.issue_ref.to_json()
    assert record["body"]["received"] == [{"parcel": "AE-MIX-1", "weight": 1_200_000}]
    # the example's certificates expired long ago (they are dated 2026-03-02)
    verdict = example.eu.post(
        "/v1/records/check", json={"records": [record]}, headers=bearer("operator")
    ).json()["results"][0]
    assert (verdict["status"], verdict["rule"], verdict["field"]) == (
        "rejected",
        "6",
        "body.number",
    )
    assert "expired on" in verdict["reason"]
    party = compose(
        example,
        "party.register",
        {"party": "EU-NEW", "name": "New NV", "role": "trader", "address": "Antwerp"},
    ).json()["record"]
    verdict = example.eu.post("/v1/records/check", json=party, headers=bearer("operator"))
    assert verdict.json()["results"][0]["status"] == "valid"
    assert example.store.head("EU") == before
    assert example.store.party("EU-NEW") is None
    outcome = example.eu.get(f"/v1/records/{party['id']}", headers=bearer("operator"))
    assert outcome.status_code == 404
    assert example.eu.post("/v1/records/check", json=party).status_code == 401


def test_compose_errors_name_the_field(example: Example) -> None:
    bad = compose(
        example,
        "parcel.register",
        {
            "parcel": "EU-X",
            "custodian": "EU-LVESSCDL",
            "carats": "heavy",
            "usd": "1",
            "mine": "none",
        },
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "carats"
    unknown = compose(example, "parcel.teleport", {})
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "kind"
    missing = compose(example, "certificate.refuse", {"number": OPEN, "code": "other"})
    assert missing.status_code == 422
    assert missing.json()["field"] == "reason"
    nothing = compose(
        example, "certificate.refuse", {"number": "EU-NONE-1", "code": "other", "reason": "x"}
    )
    assert nothing.json()["field"] == "number"
    assert compose(example, "party.register", {}, role="auditor").status_code == 403
    wdc = example.wdc.post(
        "/v1/officer/compose",
        json={"kind": "party.register", "fields": {}},
        headers=bearer("operator"),
    )
    assert wdc.status_code == 422
    assert "has no chain" in wdc.json()["detail"]


def test_an_issue_date_that_is_not_a_date_names_the_field(example: Example) -> None:
    # the date is read before the parcels: a bad one is named whatever the parcels are
    fields = {
        "number": "EU-DATE-1",
        "parcels": ["EU-ANY-1"],
        "destination": "IN",
        "importer": "Surat Rough Pvt",
        "importer_address": "Surat",
        "issued": "28-11-2026",
    }
    bad = compose(example, "certificate.issue", fields)
    assert bad.status_code == 422, bad.text
    assert bad.json()["field"] == "issued"
    assert "28-11-2026" in bad.json()["detail"]
