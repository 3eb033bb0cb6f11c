"""KP statistics: totals equal sums computed independently from the records; CSV parses."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import pytest
from api_support import AuditCase, Realistic, bearer

from kpledger.ledger.blocks import Block
from kpledger.ledger.commit import open_body
from kpledger.ledger.records import Kind, Record

Sums = dict[tuple[str, ...], list[int]]
AUDITOR = bearer("auditor")


def clear(r: Record) -> dict[str, Any]:
    return open_body(r.as_json(), r.disclosures)


def independent(blocks: list[Block], start: str, end: str) -> dict[str, Sums]:
    """The statistics from the records and the disclosures they carry, without the store."""
    production: Sums = defaultdict(lambda: [0, 0, 0])
    exports: Sums = defaultdict(lambda: [0, 0, 0])
    imports: Sums = defaultdict(lambda: [0, 0, 0, 0])
    counts: Sums = defaultdict(lambda: [0])
    issues: dict[str, dict[str, Any]] = {}
    voided: set[str] = set()
    for block in blocks:
        for r in block.records:
            if r.kind is Kind.CERTIFICATE_ISSUE:
                issues[r.body_json["number"]] = {**clear(r), "chain": r.chain}
            elif r.kind in (Kind.CERTIFICATE_VOID, Kind.CERTIFICATE_REFUSE):
                voided.add(r.body_json["number"])  # the goods never left
    for block in blocks:
        day = block.header.time[:10]
        for r in block.records:
            body = clear(r)
            if r.kind is Kind.PARCEL_REGISTER and start <= body["produced"] <= end:
                row = production[(r.chain,)]
                row[0] += body["weight"]
                row[1] += body["value"]
                row[2] += 1
            elif r.kind is Kind.CERTIFICATE_ISSUE and start <= body["issued"] <= end:
                counts[(r.chain,)][0] += 1
                if body["number"] not in voided:
                    row = exports[(r.chain, body["destination"])]
                    row[0] += body["carats"]
                    row[1] += body["value"]
                    row[2] += 1
            elif r.kind is Kind.CERTIFICATE_CONFIRM and start <= day <= end:
                cert = issues[body["number"]]
                row = imports[(r.chain, cert["chain"])]
                row[0] += sum(line["weight"] for line in body["received"])
                row[1] += cert["carats"]
                row[2] += cert["value"]
                row[3] += 1
    return {"production": production, "exports": exports, "imports": imports, "counts": counts}


def from_api(stats: dict[str, Any]) -> dict[str, Sums]:
    return {
        "production": {
            (r["participant"],): [r["carats"], r["value"], r["parcels"]]
            for r in stats["production"]
        },
        "exports": {
            (r["participant"], r["partner"]): [r["carats"], r["value"], r["certificates"]]
            for r in stats["exports"]
        },
        "imports": {
            (r["participant"], r["partner"]): [
                r["carats"],
                r["declared"],
                r["value"],
                r["certificates"],
            ]
            for r in stats["imports"]
        },
        "counts": {(r["participant"],): [r["total"]] for r in stats["certificates"]},
    }


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [("2026", "2026-01-01", "2026-12-31"), ("2026-Q1", "2026-01-01", "2026-03-31")],
)
def test_realistic_stats_equal_independent_sums(
    realistic: Realistic, period: str, start: str, end: str
) -> None:
    answer = realistic.client.get("/v1/stats", params={"period": period}, headers=AUDITOR)
    assert answer.status_code == 200
    stats = answer.json()
    assert (stats["start"], stats["end"]) == (start, end)
    want = independent(realistic.blocks, start, end)
    got = from_api(stats)
    for section in ("production", "exports", "imports", "counts"):
        assert got[section] == dict(want[section]), section
    assert stats["imports"], "the workload confirms some certificates"
    totals = stats["totals"]
    assert totals["production_carats"] == sum(v[0] for v in want["production"].values())
    assert totals["production_value"] == sum(v[1] for v in want["production"].values())
    assert totals["export_carats"] == sum(v[0] for v in want["exports"].values())
    assert totals["export_certificates"] == sum(v[2] for v in want["exports"].values())
    assert totals["import_carats"] == sum(v[0] for v in want["imports"].values())
    assert totals["certificates"] == sum(v[0] for v in want["counts"].values())


def test_without_reports_the_public_sees_carats_and_counts_but_no_usd(
    audit_case: AuditCase,
) -> None:
    """The public's USD come from the participants' quarterly reports (none in the audit
    case: ``test_api_stats_reports`` seals some); carats and counts come from the records,
    and are the auditor's; auditors see every cell's USD from the disclosures."""
    assert audit_case.client is not None
    public = audit_case.client.get("/v1/stats", params={"period": "2026"}).json()
    full = audit_case.client.get("/v1/stats", params={"period": "2026"}, headers=AUDITOR).json()
    assert (public["values"], full["values"]) == ("reports", "disclosures")
    for section, count in (
        ("exports", "certificates"),
        ("imports", "certificates"),
        ("production", "parcels"),
    ):
        assert public[section], section
        for mine, theirs in zip(public[section], full[section], strict=True):
            assert (mine["carats"], mine[count]) == (theirs["carats"], theirs[count])
            assert isinstance(theirs["value"], int)
            assert mine["value"] is None, mine
    assert public["totals"]["export_value"] is None


def test_other_quarters_are_empty(realistic: Realistic) -> None:
    for period in ("2026-Q2", "2025", "2027-Q4"):
        stats = realistic.client.get("/v1/stats", params={"period": period}).json()
        assert stats["production"] == stats["exports"] == stats["imports"] == []
        assert stats["totals"]["certificates"] == 0


def test_audit_case_stats_count_discrepancies_and_received_weights(audit_case: AuditCase) -> None:
    assert audit_case.client is not None
    stats = audit_case.client.get("/v1/stats", params={"period": "2026"}, headers=AUDITOR).json()
    got = from_api(stats)
    want = independent(audit_case.blocks, "2026-01-01", "2026-12-31")
    for section in ("production", "exports", "imports", "counts"):
        assert got[section] == dict(want[section]), section
    eu = {(r["participant"], r["partner"]): r for r in stats["imports"]}[("EU", "BW")]
    assert (eu["carats"], eu["declared"]) == (69_000, 70_000)
    bw = {r["participant"]: r for r in stats["certificates"]}["BW"]
    assert (bw["total"], bw["confirmed"], bw["discrepancy"], bw["unconfirmed"]) == (9, 6, 1, 1)
    assert bw["refused"] == 1
    assert {r["participant"] for r in stats["production"]} == {"AE", "BW", "CD", "RU"}


def cents(text: str) -> int:
    return int(Decimal(text) * 100)


def test_csv_parses_and_matches_the_json(realistic: Realistic) -> None:
    answer = realistic.client.get(
        "/v1/stats", params={"period": "2026", "format": "csv"}, headers=AUDITOR
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "kp-stats-2026.csv" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert rows
    sections = Counter(r["section"] for r in rows)
    stats = realistic.client.get("/v1/stats", params={"period": "2026"}, headers=AUDITOR).json()
    assert sections == Counter(
        {
            "production": len(stats["production"]),
            "exports": len(stats["exports"]),
            "imports": len(stats["imports"]),
            "certificates": len(stats["certificates"]),
        }
    )
    totals = stats["totals"]
    production = [r for r in rows if r["section"] == "production"]
    assert sum(cents(r["carats"]) for r in production) == totals["production_carats"]
    assert sum(cents(r["usd"]) for r in production) == totals["production_value"]
    assert sum(int(r["count"]) for r in production) == totals["production_parcels"]
    exports = [r for r in rows if r["section"] == "exports"]
    assert sum(cents(r["carats"]) for r in exports) == totals["export_carats"]
    assert sum(int(r["count"]) for r in exports) == totals["export_certificates"]
    imports = [r for r in rows if r["section"] == "imports"]
    assert sum(cents(r["carats"]) for r in imports) == totals["import_carats"]
    certificates = [r for r in rows if r["section"] == "certificates"]
    assert sum(int(r["count"]) for r in certificates) == totals["certificates"]
    assert all(r["carats"] == "" for r in certificates)
