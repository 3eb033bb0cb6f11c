"""Quarterly reports (``stats.report``): the public's USD come from them, auditors' from the
disclosures; a report that disagrees with the records or the disclosures is the audit
report's ``statistics-mismatch`` finding; the officer API composes a report.

The audit case (``api_support.build_audit_case``) trades in 2026-Q1 and ends in April;
then BW, EU and CD seal their Q1 reports as their nodes compose them, except that BW's
export value to the EU is raised by 1,000 USD, and AE reports 15 ct of production where
its records show 20. After the reports, India refuses BW-C8: a certificate BW counted as
exported when it reported, so no finding.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from api_support import AuditCase, bearer, build_audit_case, serve

from kpledger.ledger.records import Kind
from kpledger.ledger.store.audit import parse_period

AUDITOR = bearer("auditor")
OBSERVER = bearer("observer")
OPERATOR = bearer("operator")
RAISED = 100_000  # cents: BW's forged export value to the EU is 1,000 USD too high


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditCase]:
    folder = tmp_path_factory.mktemp("reports")
    case = build_audit_case(f"sqlite:///{folder / 'reports.db'}")
    sc = case.sc
    assert sc is not None
    store = case.store

    def seal(chain: str, body: dict[str, Any], record_id: str = "stats-2026-Q1") -> None:
        block = sc.seal(chain, sc.record(chain, Kind.STATS_REPORT, body, record_id=record_id))
        store.writer.apply(block)
        case.blocks.append(block)

    bw = store.audit.report_body("BW", "2026-Q1")
    forged = copy.deepcopy(bw)
    cell = next(c for c in forged["exports"] if c["partner"] == "EU")
    cell["value"] += RAISED
    seal("BW", forged)
    for chain in ("EU", "CD"):
        seal(chain, store.audit.report_body(chain, "2026-Q1"))
    ae = store.audit.report_body("AE", "2026-Q1")
    assert ae["production"] == {"carats": 2_000, "parcels": 1}
    seal("AE", {**ae, "production": {"carats": 1_500, "parcels": 1}})
    refusal = sc.seal("IN", sc.refuse("IN", "BW-C8", "documents", "after the report"))
    store.writer.apply(refusal)
    case.client = serve("WDC", store, folder, None)
    yield case
    store.close()


def rows(stats: dict[str, Any], section: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["participant"], r.get("partner", "")): r for r in stats[section]}


def test_the_public_takes_usd_from_the_reports(reported: AuditCase) -> None:
    assert reported.client is not None
    public = reported.client.get("/v1/stats", params={"period": "2026-Q1"}).json()
    full = reported.client.get("/v1/stats", params={"period": "2026-Q1"}, headers=AUDITOR).json()
    assert (public["values"], full["values"]) == ("reports", "disclosures")
    exports, truth = rows(public, "exports"), rows(full, "exports")
    # the forged figure is what BW published: the public reads it, the auditor the truth
    assert exports[("BW", "EU")]["certificates"] == 7  # C1-C7; C9 was refused
    assert exports[("BW", "EU")]["value"] == truth[("BW", "EU")]["value"] + RAISED
    # a cell of one certificate: no USD in the report, so none in the public table
    assert exports[("CD", "AE")]["value"] is None
    assert isinstance(truth[("CD", "AE")]["value"], int)
    # BW reported its certificate to India (then open) without USD; India refused it
    # since, so the table no longer has the cell
    (sealed,) = reported.store.audit.reports(parse_period("2026-Q1"), "BW")
    india = next(c for c in sealed.body.exports if c.partner == "IN")
    assert (india.count, india.value) == (1, None)
    assert ("BW", "IN") not in exports
    imports = rows(public, "imports")
    assert imports[("EU", "BW")]["value"] == rows(full, "imports")[("EU", "BW")]["value"]
    production = rows(public, "production")
    assert production[("BW", "")]["value"] == rows(full, "production")[("BW", "")]["value"]
    assert production[("CD", "")]["value"] is None  # one parcel
    # a year whose last three quarters nobody reported: no USD at all, carats as before
    year = reported.client.get("/v1/stats", params={"period": "2026"}).json()
    assert all(r["value"] is None for r in year["exports"])
    assert sum(r["carats"] for r in year["exports"]) == sum(
        r["carats"]
        for r in rows(
            reported.client.get("/v1/stats", params={"period": "2026"}, headers=AUDITOR).json(),
            "exports",
        ).values()
    )


def test_statistics_mismatch_names_the_forged_cells(reported: AuditCase) -> None:
    assert reported.client is not None
    report = reported.client.get(
        "/v1/audit/report", params={"since": "2026-01-01"}, headers=AUDITOR
    ).json()
    found = {
        (m["chain"], m["section"], m["partner"], m["field"]): (m["reported"], m["ledger"])
        for m in report["statistics_mismatch"]["items"]
    }
    stats = reported.client.get("/v1/stats", params={"period": "2026-Q1"}, headers=AUDITOR).json()
    true_value = rows(stats, "exports")[("BW", "EU")]["value"]
    assert found == {
        ("BW", "exports", "EU", "value"): (true_value + RAISED, true_value),
        ("AE", "production", "", "carats"): (1_500, 2_000),
    }
    forged = next(m for m in report["statistics_mismatch"]["items"] if m["chain"] == "BW")
    first, *cell = forged["records"]
    assert (first["chain"], first["kind"]) == ("BW", "stats.report")
    assert first["height"] is not None
    assert {r["kind"] for r in cell} == {"certificate.issue"}
    assert len(cell) == rows(stats, "exports")[("BW", "EU")]["certificates"]
    # an observer sees the finding, never the value the disclosures give
    seen = reported.client.get(
        "/v1/audit/report", params={"since": "2026-01-01"}, headers=OBSERVER
    ).json()
    told = {(m["chain"], m["field"]): m for m in seen["statistics_mismatch"]["items"]}
    assert told[("BW", "value")].get("ledger") is None
    assert told[("BW", "value")]["reported"] == true_value + RAISED
    assert told[("AE", "carats")]["ledger"] == 2_000  # carats are public


def test_the_officer_api_composes_the_report(reported: AuditCase, tmp_path: Any) -> None:
    bw = serve("BW", reported.store, tmp_path, reported.net.signers["BW"])
    answer = bw.get("/v1/officer/stats-report", params={"quarter": "2026-Q2"}, headers=OPERATOR)
    assert answer.status_code == 200, answer.text
    record = answer.json()["record"]
    assert (record["kind"], record["id"], record["chain"]) == (
        "stats.report",
        "stats-2026-Q2",
        "BW",
    )
    assert record["body"] == reported.store.audit.report_body("BW", "2026-Q2")
    q1 = bw.get("/v1/officer/stats-report", params={"quarter": "2026-Q1"}, headers=OPERATOR)
    body = q1.json()["record"]["body"]
    eu = next(c for c in body["exports"] if c["partner"] == "EU")
    assert "value" in eu
    assert eu["certificates"] >= 3
    # BW-C8 was refused after the report: as of now it is no export to India
    assert [c["partner"] for c in body["exports"]] == ["EU"]
    for who in ({}, OBSERVER, AUDITOR):
        denied = bw.get("/v1/officer/stats-report", params={"quarter": "2026-Q1"}, headers=who)
        assert denied.status_code in (401, 403), denied.text
    bad = bw.get("/v1/officer/stats-report", params={"quarter": "2026-Q5"}, headers=OPERATOR)
    assert bad.status_code == 422
