"""The audit report finds a constructed case of every finding, with the records behind it."""

from __future__ import annotations

from typing import Any

import pytest
from api_support import OPEN, AuditCase, Example, Realistic, bearer
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kpledger.ledger.records import Record
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t


@pytest.fixture(scope="module")
def report(audit_case: AuditCase) -> dict[str, Any]:
    assert audit_case.client is not None
    answer = audit_case.client.get(
        "/v1/audit/report", params={"until": audit_case.until}, headers=bearer("auditor")
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def ref_of(store: Store, record: Record) -> dict[str, Any]:
    """The (chain, index, hash, kind) of a record as the store holds it."""
    ref = store.record_ref(record.chain, record.id)
    assert ref is not None
    return {
        "chain": ref.chain,
        "index": ref.index,
        "hash": ref.hash.hex(),
        "kind": record.kind.value,
    }


def place(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: r[k] for k in ("chain", "index", "hash", "kind")} for r in records]


def by(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}


def test_unconfirmed_after_n_days(report: dict[str, Any], audit_case: AuditCase) -> None:
    found = by(report["unconfirmed"]["items"], "number")
    assert set(found) == {"BW-C8"}
    c8 = found["BW-C8"]
    assert (c8["issuer"], c8["destination"], c8["days_open"], c8["expired"]) == (
        "BW",
        "IN",
        45,
        False,
    )
    assert place(c8["records"]) == [ref_of(audit_case.store, audit_case.records["BW-C8"])]
    assert c8["records"][0]["time"].startswith("2026-03-02")
    assert report["thresholds"]["unconfirmed_days"] == 30


def test_unconfirmed_days_is_a_parameter(audit_case: AuditCase) -> None:
    assert audit_case.client is not None
    answer = audit_case.client.get(
        "/v1/audit/report",
        params={"until": audit_case.until, "days": 46},
        headers=bearer("auditor"),
    ).json()
    assert answer["unconfirmed"]["items"] == []
    assert answer["thresholds"]["unconfirmed_days"] == 46


def test_refusals_with_their_reasons(report: dict[str, Any], audit_case: AuditCase) -> None:
    found = by(report["refusals"]["items"], "number")
    assert set(found) == {"BW-C9"}
    c9 = found["BW-C9"]
    assert (c9["issuer"], c9["destination"], c9["carats"], c9["origin"]) == (
        "BW",
        "EU",
        10_000,
        "BW",
    )
    assert (c9["code"], c9["reason"]) == ("documents", "importer unknown at the address")
    assert place(c9["records"]) == [
        ref_of(audit_case.store, audit_case.records["BW-C9"]),
        ref_of(audit_case.store, audit_case.records["refuse-BW-C9"]),
    ]
    assert report["refusals"]["truncated"] is False


def test_discrepancy(report: dict[str, Any], audit_case: AuditCase) -> None:
    found = by(report["discrepancies"]["items"], "number")
    assert set(found) == {"BW-C6"}
    c6 = found["BW-C6"]
    assert (c6["declared"], c6["received"], c6["difference"], c6["difference_bp"]) == (
        10_000,
        9_000,
        -1_000,
        1_000,
    )
    assert place(c6["records"]) == [
        ref_of(audit_case.store, audit_case.records["BW-C6"]),
        ref_of(audit_case.store, audit_case.records["conf-BW-C6"]),
    ]


def test_mirror_mismatches(report: dict[str, Any], audit_case: AuditCase) -> None:
    found = {(m["exporter"], m["importer"]): m for m in report["mirror_mismatches"]["items"]}
    # CD -> AE matches; BW-C8 to India is open and unexpired: in transit, no mismatch
    assert set(found) == {("BW", "EU")}
    eu = found[("BW", "EU")]
    assert (eu["exported_carats"], eu["imported_carats"]) == (70_000, 69_000)
    assert (eu["exported_certificates"], eu["imported_certificates"], eu["in_transit"]) == (7, 7, 0)
    assert place(eu["records"]) == [
        ref_of(audit_case.store, audit_case.records["BW-C6"]),
        ref_of(audit_case.store, audit_case.records["conf-BW-C6"]),
    ]


def test_a_certificate_within_its_validity_is_in_transit_not_a_mismatch(
    report: dict[str, Any], audit_case: AuditCase
) -> None:
    """Regression: an open certificate still valid was reported as a mirror mismatch."""
    transit = by(report["in_transit"]["items"], "number")
    assert set(transit) == {"BW-C8"}
    c8 = transit["BW-C8"]
    assert (c8["issuer"], c8["destination"], c8["expires"]) == ("BW", "IN", "2026-05-01")
    assert place(c8["records"]) == [ref_of(audit_case.store, audit_case.records["BW-C8"])]
    assert report["until"] <= c8["expires"]
    # on its last valid day it is still in transit; the day after it is a mismatch
    assert audit_case.client is not None
    for until, in_transit in (("2026-05-01", True), ("2026-05-02", False)):
        later = audit_case.client.get(
            "/v1/audit/report", params={"until": until}, headers=bearer("auditor")
        ).json()
        pairs = {(m["exporter"], m["importer"]): m for m in later["mirror_mismatches"]["items"]}
        numbers = [x["number"] for x in later["in_transit"]["items"]]
        if in_transit:
            assert ("BW", "IN") not in pairs
            assert numbers == ["BW-C8"]
            continue
        assert numbers == []
        india = pairs[("BW", "IN")]
        assert (india["exported_certificates"], india["imported_certificates"]) == (1, 0)
        assert india["in_transit"] == 0
        assert place(india["records"]) == [ref_of(audit_case.store, audit_case.records["BW-C8"])]


def test_price_outliers(report: dict[str, Any], audit_case: AuditCase) -> None:
    found = by(report["price_outliers"]["items"], "number")
    assert set(found) == {"BW-C7", "CD-C1"}
    congo = found["CD-C1"]
    assert congo["reasons"] == ["reference"]
    assert congo["usd_per_carat"] == 500.0
    assert 7 < congo["reference"] < 8  # DR Congo's 2023 average
    assert "group_median" not in congo  # a group of one has no median test
    bw = found["BW-C7"]
    assert bw["reasons"] == ["group"]
    assert bw["group_median"] == 131.0
    assert bw["group_size"] == 9  # a refused certificate still declared its price
    assert place(bw["records"]) == [ref_of(audit_case.store, audit_case.records["BW-C7"])]
    th = report["thresholds"]
    assert (th["price_group_factor"], th["price_reference_factor"]) == (4.0, 10.0)


def test_registration_where_no_production_is_recorded(
    report: dict[str, Any], audit_case: AuditCase
) -> None:
    found = by(report["unrecorded_production"]["items"], "parcel")
    assert set(found) == {"AE-P1", "AE-P2"}
    assert found["AE-P1"]["weight"] == 2_000
    assert place(found["AE-P1"]["records"]) == [
        ref_of(audit_case.store, audit_case.records["AE-P1"])
    ]


def test_activity_of_a_suspended_participant(report: dict[str, Any], audit_case: AuditCase) -> None:
    (ru,) = report["suspended_activity"]["items"]
    assert ru["participant"] == "RU"
    assert ru["suspended"] < ru["reinstated"]
    assert place([ru["suspension"]]) == [ref_of(audit_case.store, audit_case.records["suspend"])]
    # RU-P1 was registered while suspended; RU-P2 after the reinstatement is not a finding
    assert ru["count"] == 1
    assert place(ru["records"]) == [ref_of(audit_case.store, audit_case.records["RU-P1"])]


def test_equivocation_evidence(report: dict[str, Any], audit_case: AuditCase) -> None:
    assert audit_case.evidence is not None
    (ev,) = report["equivocation"]["items"]
    assert ev["id"] == audit_case.evidence.id
    assert ev["chain"] == "AE"
    hashes = [h["hash"] for h in ev["headers"]]
    assert hashes == [
        audit_case.evidence.a.header.hash.hex(),
        audit_case.evidence.b.header.hash.hex(),
    ]
    assert ev["headers"][0]["height"] == ev["headers"][1]["height"]


def test_every_list_is_bounded(audit_case: AuditCase) -> None:
    assert audit_case.client is not None
    answer = audit_case.client.get(
        "/v1/audit/report",
        params={"until": audit_case.until, "limit": 1},
        headers=bearer("auditor"),
    ).json()
    for name in ("price_outliers", "unrecorded_production"):
        assert len(answer[name]["items"]) == 1
        assert answer[name]["truncated"] is True
    assert answer["discrepancies"]["truncated"] is False
    # after BW-C8's expiry two pairs mismatch: BW -> EU and BW -> IN
    expired = audit_case.client.get(
        "/v1/audit/report", params={"until": "2026-05-02", "limit": 1}, headers=bearer("auditor")
    ).json()
    assert len(expired["mirror_mismatches"]["items"]) == 1
    assert expired["mirror_mismatches"]["truncated"] is True


def test_the_period_bounds_the_findings(audit_case: AuditCase) -> None:
    assert audit_case.client is not None
    later = audit_case.client.get(
        "/v1/audit/report",
        params={"since": "2026-04-01", "until": audit_case.until},
        headers=bearer("auditor"),
    ).json()
    # only what happened in April: AE-P2, RU's activity, the equivocation
    assert later["unconfirmed"]["items"] == []
    assert later["discrepancies"]["items"] == []
    assert later["price_outliers"]["items"] == []
    assert later["mirror_mismatches"]["items"] == []
    assert [x["parcel"] for x in later["unrecorded_production"]["items"]] == ["AE-P2"]
    assert len(later["suspended_activity"]["items"]) == 1
    assert len(later["equivocation"]["items"]) == 1
    before = audit_case.client.get(
        "/v1/audit/report", params={"until": "2026-04-01"}, headers=bearer("auditor")
    ).json()
    assert before["suspended_activity"]["items"] == []
    assert before["equivocation"]["items"] == []
    assert [x["number"] for x in before["unconfirmed"]["items"]] == ["BW-C8"]


def test_realistic_network_raises_no_false_alarm(realistic: Realistic) -> None:
    """Realistic trade at 2023 prices, confirmed in full, by producers only."""
    answer = realistic.client.get(
        "/v1/audit/report", params={"until": "2026-03-03"}, headers=bearer("auditor")
    )
    assert answer.status_code == 200
    body = answer.json()
    for name in ("discrepancies", "price_outliers", "unrecorded_production", "suspended_activity"):
        assert body[name]["items"] == [], name
    assert body["equivocation"]["items"] == []
    # certificates still open when the workload stopped are in transit, not mismatches
    assert body["mirror_mismatches"]["items"] == []
    with realistic.store.engine.connect() as conn:
        issued = conn.execute(
            select(func.count()).where(t.certificates.c.status == "issued")
        ).scalar()
    assert issued
    assert len(body["in_transit"]["items"]) == min(issued, 100)


def test_example_report(example: Example) -> None:
    """The mixed shipment the EU refused is a refusal; certified to the EU again and left
    open (the fixture's ``OPEN``, issued on 1 April after the quarter's reports, valid a
    month), it stays unconfirmed: the findings say so."""
    client: TestClient = example.wdc
    body = client.get(
        "/v1/audit/report", params={"until": "2026-06-01"}, headers=bearer("auditor")
    ).json()
    assert [x["number"] for x in body["unconfirmed"]["items"]] == [OPEN]
    assert [(x["number"], x["code"]) for x in body["refusals"]["items"]] == [
        ("AE-2026-0001", "restricted-origin")
    ]
    assert body["unconfirmed"]["items"][0]["expired"] is True
    assert [(m["exporter"], m["importer"]) for m in body["mirror_mismatches"]["items"]] == [
        ("AE", "EU")
    ]
