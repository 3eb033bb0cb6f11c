"""The quarterly statistics report (``stats.report``): its schema and rules S1-S2, and the
registry's ``min_cell`` (statistical disclosure control) as a genesis parameter.

Each refusal is checked where every node checks it: sealing the record into a
block raises the rule's error naming the field, and the ledger is unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.errors import (
    DuplicateRecord,
    RuleViolation,
    SchemaError,
    StatsCellDisclosed,
    StatsReportInvalid,
)
from kpledger.ledger.records import Kind, Record, StatsReport
from kpledger.ledger.registry import Params, Registry
from kpledger.ledger.schema import Fields


def body(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "quarter": "2026-Q1",
        "production": {"carats": 120_000, "parcels": 4, "value": 9_000_000},
        "exports": [
            {"partner": "AE", "carats": 500, "certificates": 1},
            {"partner": "EU", "carats": 80_000, "certificates": 3, "value": 7_500_000},
        ],
        "imports": [],
    }
    out.update(changes)
    return out


def report(sc: Scenario, content: dict[str, Any], record_id: str | None = None) -> Record:
    return sc.record(
        "BW",
        Kind.STATS_REPORT,
        content,
        record_id=record_id or f"stats-{content['quarter']}",
    )


@pytest.fixture
def sc() -> Scenario:
    """BW, EU and AE; the clock stands in April 2026, Q1 is over."""
    return Scenario(
        Network.create(("BW", "EU", "AE"), ()),
        clock=datetime(2026, 4, 2, 9, 0, tzinfo=UTC),
    )


def refuse(
    sc: Scenario, record: Record, error: type[RuleViolation], field: str, match: str
) -> None:
    before = (sc.ledger.state.snapshot(), len(sc.ledger.state.records))
    with pytest.raises(error, match=match) as info:
        sc.seal("BW", record)
    assert type(info.value) is error
    assert info.value.field == field
    assert (sc.ledger.state.snapshot(), len(sc.ledger.state.records)) == before


def test_a_report_after_its_quarter_is_sealed_and_public(sc: Scenario) -> None:
    record = report(sc, body())
    assert record.disclosures == ()  # nothing committed: the report is a public statistic
    sc.seal("BW", record)
    parsed = record.body
    assert isinstance(parsed, StatsReport)
    assert parsed.production.value == 9_000_000
    assert [c.partner for c in parsed.exports] == ["AE", "EU"]
    assert parsed.exports[0].value is None


def test_s1_a_quarter_is_reported_once(sc: Scenario) -> None:
    sc.seal("BW", report(sc, body()))
    with pytest.raises(DuplicateRecord, match="stats-2026-Q1"):
        sc.seal("BW", report(sc, body(production={"carats": 1, "parcels": 1})))


def test_s1_the_record_id_names_the_quarter(sc: Scenario) -> None:
    refuse(sc, report(sc, body(), "my-report"), StatsReportInvalid, "id", "stats-2026-Q1")


def test_s1_a_quarter_not_yet_over_is_refused(sc: Scenario) -> None:
    refuse(
        sc,
        report(sc, body(quarter="2026-Q2")),
        StatsReportInvalid,
        "body.quarter",
        "2026-Q2 ends on 2026-06-30",
    )


def test_s1_no_trade_with_itself_and_no_empty_cell(sc: Scenario) -> None:
    mine = [{"partner": "BW", "carats": 100, "certificates": 1}]
    refuse(
        sc, report(sc, body(imports=mine)), StatsReportInvalid, "body.imports[0].partner", "itself"
    )
    empty = [{"partner": "EU", "carats": 0, "certificates": 0}]
    refuse(
        sc,
        report(sc, body(imports=empty)),
        StatsReportInvalid,
        "body.imports[0].certificates",
        "at least one",
    )


def test_s2_a_small_cell_carries_no_usd(sc: Scenario) -> None:
    leak = [{"partner": "AE", "carats": 500, "certificates": 2, "value": 120_000}]
    refuse(
        sc,
        report(sc, body(exports=leak)),
        StatsCellDisclosed,
        "body.exports[0].value",
        "one shipment's value",
    )
    refuse(
        sc,
        report(sc, body(production={"carats": 900, "parcels": 1, "value": 5})),
        StatsCellDisclosed,
        "body.production.value",
        "fewer than 3",
    )


def test_s2_a_large_cell_carries_its_usd(sc: Scenario) -> None:
    quiet = [{"partner": "EU", "carats": 80_000, "certificates": 3}]
    refuse(
        sc, report(sc, body(exports=quiet)), StatsCellDisclosed, "body.exports[0].value", "reports"
    )


def test_partners_sorted_and_distinct() -> None:
    sc = Scenario(Network.create(("BW", "EU", "AE"), ()))
    twice = [
        {"partner": "EU", "carats": 1, "certificates": 1},
        {"partner": "AE", "carats": 1, "certificates": 1},
    ]
    with pytest.raises(SchemaError, match="sorted and distinct"):
        report(sc, body(exports=twice))
    with pytest.raises(SchemaError, match="quarter"):
        report(sc, body(quarter="2026-Q5"), "stats-x")


def test_min_cell_is_a_genesis_parameter() -> None:
    """Absent from the registry's bytes at its default (network ids stay), present and
    applied by the rules otherwise."""
    assert "min_cell" not in Params().to_json()
    assert Params(min_cell=5).to_json()["min_cell"] == 5
    plain = Network.create(("BW", "EU"), ())
    same = Network.create(("BW", "EU"), (), params=Params(min_cell=3))
    strict = Network.create(("BW", "EU"), (), params=Params(min_cell=5))
    assert plain.network_id == same.network_id != strict.network_id
    again = Registry.parse(strict.registry.to_bytes())
    assert again.params.min_cell == 5
    sc = Scenario(strict, clock=datetime(2026, 4, 2, 9, 0, tzinfo=UTC))
    small = {"carats": 100, "parcels": 4}
    four = [{"partner": "EU", "carats": 100, "certificates": 4, "value": 10}]
    with pytest.raises(StatsCellDisclosed, match="fewer than 5"):
        sc.seal("BW", report(sc, body(production=small, exports=four)))
    quiet = [{"partner": "EU", "carats": 100, "certificates": 4}]
    sc.seal("BW", report(sc, body(production=small, exports=quiet)))


def test_min_cell_bounds() -> None:
    raw = Params().to_json()
    with pytest.raises(SchemaError, match="min_cell"):
        Params.parse(Fields({**raw, "min_cell": 0}, "params"))
