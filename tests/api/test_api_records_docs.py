"""Records are documented: typed schemas in /openapi.json, stable operation ids,
docs/records.md up to date, its examples accepted by a node; a conflicting
resubmission is a 409 naming the record that holds the id."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_support import Example, bearer, serve
from fastapi.testclient import TestClient

from kpledger.api import docs_records
from kpledger.api.docs_records import EXAMPLES, example_record
from kpledger.api.openapi import component_name
from kpledger.cli.example import run_example
from kpledger.ledger.record_schema import KIND_DOCS
from kpledger.ledger.records import FORMAT_VERSION, Kind, seal_record


@pytest.fixture(scope="module")
def writer() -> Example:
    """An EU node over its own copy of ``kpl example``'s network: these tests submit."""
    story = run_example("sqlite://")
    signer = story.net.signers["EU"]
    eu = serve("EU", story.store, Path(tempfile.gettempdir()), signer)
    return Example(story.store, eu, eu, story.final_parcel)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def post(client: TestClient, body: Any) -> Any:
    return client.post(
        "/v1/records",
        content=json.dumps(body).encode(),
        headers={**bearer("operator"), "Content-Type": "application/json"},
    )


# ---------------------------------------------------------------- the OpenAPI schema


def test_submission_declares_its_body_as_a_union_of_every_kind(example: Example) -> None:
    schema = example.wdc.get("/openapi.json").json()
    body = schema["paths"]["/v1/records"]["post"]["requestBody"]
    assert body["required"] is True
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/RecordSubmission"
    components = schema["components"]["schemas"]
    union = components["Record"]
    assert union["discriminator"]["propertyName"] == "kind"
    assert set(union["discriminator"]["mapping"]) == {str(k) for k in Kind}
    for kind in Kind:
        name = component_name(kind)
        record = components[f"{name}Record"]
        assert record["properties"]["kind"]["const"] == str(kind)
        assert record["properties"]["body"] == {"$ref": f"#/components/schemas/{name}Body"}
        assert record["additionalProperties"] is False
        body_schema = components[f"{name}Body"]
        assert body_schema["description"]
        for field, spec in body_schema["properties"].items():
            assert spec.get("description"), (kind, field)


def test_units_and_bounds_are_stated(example: Example) -> None:
    components = example.wdc.get("/openapi.json").json()["components"]["schemas"]
    register = components["ParcelRegisterBody"]["properties"]
    assert "hundredths of a carat" in register["weight"]["description"]
    assert register["weight"]["minimum"] == 1
    assert "US cents" in register["value"]["description"]
    line = components["CertificateIssueBody"]["properties"]["lines"]["items"]["properties"]
    assert "hundredths of a carat" in line["origin"]["description"]
    assert line["origin"]["additionalProperties"]["type"] == "integer"
    assert (
        "hundredths of a carat"
        in components["CertificateIssueBody"]["properties"]["carats"]["description"]
    )
    split = components["ParcelSplitBody"]
    children = split["properties"]["children"]
    assert children["minItems"] == 2
    assert set(children["items"]["required"]) == {"parcel", "weight", "value"}  # custodian optional
    assert split["required"] == ["parcel", "children"]
    transfer = components["ParcelTransferBody"]
    assert "value" not in transfer["required"]


def test_every_operation_has_a_short_stable_id(example: Example) -> None:
    paths = example.wdc.get("/openapi.json").json()["paths"]
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    for op_id in ids:
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", op_id), op_id
    assert paths["/v1/records"]["post"]["operationId"] == "records.submit"
    assert paths["/v1/audit/report"]["get"]["operationId"] == "audit.report"
    assert paths["/v1/parcels/{parcel_id}/history"]["get"]["operationId"] == "parcels.history"
    assert paths["/v1/records/{record_id}"]["get"]["operationId"] == "records.outcome"


# ---------------------------------------------------------------- docs/records.md


def test_every_kind_says_what_it_does_in_the_spec_and_the_page() -> None:
    # the description of each union member in /openapi.json and its row in docs/records.md
    assert {k for k in (str(k) for k in Kind) if k not in KIND_DOCS} == set()
    page = docs_records.render()
    for kind in Kind:
        row = next(x for x in page.splitlines() if x.startswith(f"| [`{kind}`]"))
        assert not row.endswith("|  |"), row


def test_the_page_states_the_record_format_version() -> None:
    assert f"`v` ({FORMAT_VERSION})" in docs_records.render()


def test_docs_records_md_is_up_to_date() -> None:
    assert docs_records.main(["--check"]) == 0, "run: python -m kpledger.api.docs_records"


def test_every_kind_has_an_example_that_parses(example: Example) -> None:
    assert set(EXAMPLES) == {str(k) for k in Kind}
    network = example.store.registry.network_id
    for kind in EXAMPLES:
        record = seal_record(example_record(kind, network=network))
        assert record.kind == kind


def live(kind: str, example: Example) -> dict[str, Any]:
    """The docs' example as a record a node takes today."""
    today = datetime.now(UTC).date()
    doc = example_record(kind, network=example.store.registry.network_id, time=now())
    body = doc["body"]
    if "produced" in body:
        body["produced"] = today.isoformat()
    if "issued" in body:
        body["issued"] = today.isoformat()
        body["expires"] = (today + timedelta(days=60)).isoformat()
    if kind in ("certificate.confirm", "certificate.refuse"):
        cert = example.store.certificate(body["number"])
        assert cert is not None
        body["ref"] = cert.issue_ref.to_json()
    assert date.fromisoformat(doc["time"][:10]) == today
    return dict(doc)


#: what an EU node answers each example, in the docs' order
EXPECTED = {
    "party.register": "pending",
    "parcel.register": "pending",
    "parcel.transfer": "pending",
    "parcel.split": "pending",
    "parcel.merge": "pending",
    "certificate.issue": "pending",
    "policy.restrict_origin": "pending",
    "policy.lift_origin": "pending",
    # the story's certificate to the EU is past its expiry, and AE-MIX-1 holds Russian
    # origin; the void cites an importer height that does not exist: refused by the rules
    "certificate.confirm": "rejected",
    "certificate.void": "rejected",
    # the same expired certificate cannot be refused either; no parcel is held here
    "certificate.refuse": "rejected",
    "parcel.release": "rejected",
    "claim.register": "pending",
    "licence.digger": "pending",
    "licence.buyer": "pending",
    "parcel.purchase": "pending",
    "licence.end": "pending",
    "diagnostic.assess": "pending",
    # a quarter that is over, its one-certificate cell without USD (rules S1-S2)
    "stats.report": "pending",
    "party.revoke": "pending",
    "key.rotate": "pending",
}


def test_each_example_is_submitted_to_a_node(writer: Example) -> None:
    for kind, (chain, _, _) in EXAMPLES.items():
        answer = post(writer.eu, live(kind, writer))
        assert answer.status_code == 200, answer.text
        result = answer.json()["results"][0]
        if chain == "KP":  # governance: threshold-signed, on the KP chain, not an operator's
            assert result["status"] == "invalid"
            assert result["code"] == "wrong-chain", result
            continue
        assert result["status"] == EXPECTED[kind], (kind, result)
        if result["status"] == "rejected":  # past the schema: judged by a custody rule
            assert result["rule"], result


# ---------------------------------------------------------------- conflicts


def party(example: Example, record_id: str, name: str) -> dict[str, Any]:
    return {
        "v": 2,
        "network": example.store.registry.network_id,
        "chain": "EU",
        "kind": "party.register",
        "id": record_id,
        "time": now(),
        "body": {
            "party": f"EU-{record_id.upper()}",
            "name": name,
            "role": "trader",
            "address": "Main Street 1",
        },
    }


def test_same_id_other_content_is_a_409_naming_the_pending_record(writer: Example) -> None:
    first = party(writer, "conflict-1", "First Name")
    assert post(writer.eu, first).json()["results"][0]["status"] == "pending"
    again = post(writer.eu, first)
    assert again.status_code == 200
    assert again.json()["results"][0]["status"] == "pending"
    assert again.json()["results"][0]["duplicate"] is True
    leaf = writer.eu.app.state.node.sealer.seal(first).leaf.hex()  # type: ignore[attr-defined]
    other = party(writer, "conflict-1", "Other Name")
    answer = post(writer.eu, other)
    assert answer.status_code == 409, answer.text
    problem = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert problem["type"] == "urn:kpledger:problem:conflict"
    assert problem["field"] == "id"
    assert problem["record"] == {
        "id": "conflict-1",
        "chain": "EU",
        "status": "pending",
        "hash": leaf,
    }
    assert leaf in problem["detail"]


def test_same_id_other_content_after_commit_names_the_committed_record(writer: Example) -> None:
    first = party(writer, "conflict-2", "Committed Name")
    assert post(writer.eu, first).json()["results"][0]["status"] == "pending"
    writer.eu.app.state.node.seal()  # type: ignore[attr-defined]
    outcome = writer.eu.get("/v1/records/conflict-2", headers=bearer("operator")).json()
    assert outcome["status"] == "committed"
    same = post(writer.eu, first)
    assert same.status_code == 200
    assert same.json()["results"][0]["status"] == "committed"
    answer = post(writer.eu, party(writer, "conflict-2", "Changed Name"))
    assert answer.status_code == 409, answer.text
    record = answer.json()["record"]
    assert record["status"] == "committed"
    assert record["hash"] == outcome["hash"]
    assert record["index"] == outcome["index"]
    assert record["height"] == outcome["height"]


def test_a_batch_with_a_conflict_is_refused_whole(writer: Example) -> None:
    fresh = party(writer, "conflict-3", "Fresh")
    twice = [party(writer, "conflict-4", "One"), party(writer, "conflict-4", "Two")]
    answer = post(writer.eu, {"records": [fresh, *twice]})
    assert answer.status_code == 409, answer.text
    assert answer.json()["position"] == 2
    missing = writer.eu.get("/v1/records/conflict-3", headers=bearer("operator"))
    assert missing.status_code == 404  # nothing of the batch was queued


def test_outcomes_of_many_ids_in_one_request(
    writer: Example, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``POST /v1/records/outcomes`` answers what ``GET /v1/records/{id}`` answers, for
    many ids at once (a batch importer's poll), and lists the ids never seen."""
    asked: list[int] = []
    batch = writer.store.queue.outcomes

    def counted(chain: str, record_ids: Any) -> Any:
        asked.append(len(record_ids))
        return batch(chain, record_ids)

    monkeypatch.setattr(writer.store.queue, "outcomes", counted)
    queued = party(writer, "many-1", "Queued")
    assert post(writer.eu, queued).json()["results"][0]["status"] == "pending"
    blocks = writer.eu.get(
        "/v1/chains/EU/blocks", params={"from": 1, "limit": 1}, headers=bearer("peer")
    ).json()["blocks"]
    sealed = blocks[0]["records"][0]["id"]  # a record of the story, committed long ago
    ids = ["many-1", "never-seen", sealed]
    asked.clear()
    answer = writer.eu.post("/v1/records/outcomes", json={"ids": ids}, headers=bearer("operator"))
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert [o["id"] for o in found["outcomes"]] == ["many-1", sealed]
    assert found["unknown"] == ["never-seen"]
    assert asked == [2]  # the store is asked once for the ids not pending here
    for o in found["outcomes"]:
        one = writer.eu.get(f"/v1/records/{o['id']}", headers=bearer("operator")).json()
        assert o == one
    assert [o["status"] for o in found["outcomes"]] == ["pending", "committed"]
    on_chain = writer.eu.post(
        "/v1/records/outcomes", json={"ids": [sealed], "chain": "BW"}, headers=bearer("auditor")
    ).json()
    assert on_chain == {"outcomes": [], "unknown": [sealed]}  # EU's record, asked of BW


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ids": []}, "ids"),
        ({"ids": ["ok"] * 1001}, "ids"),
        ({"ids": "many-1"}, "ids"),
        ({"ids": ["many-1", "bad id!"]}, "ids[1]"),
        ({"ids": ["many-1"], "chain": "bw"}, "chain"),
        ({"ids": ["many-1"], "extra": 1}, None),
        ([], None),
    ],
)
def test_outcomes_refuses_bad_bodies_by_name(writer: Example, body: Any, field: str | None) -> None:
    answer = writer.eu.post("/v1/records/outcomes", json=body, headers=bearer("operator"))
    assert answer.status_code == 422, answer.text
    assert answer.json().get("field") == field
    assert writer.eu.post("/v1/records/outcomes", json={"ids": ["a"]}).status_code == 401
    observer = bearer("observer")
    assert writer.eu.post("/v1/records/outcomes", json=body, headers=observer).status_code == 403
