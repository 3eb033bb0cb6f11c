"""The auditors' queries in the store: frozen rows, and database errors in the error tree."""

from __future__ import annotations

import ast
import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block
from kpledger.ledger.chain import propose
from kpledger.ledger.errors import SchemaError, StoreError
from kpledger.ledger.records import Kind, Record
from kpledger.ledger.registry import Params
from kpledger.ledger.schema import Fields
from kpledger.ledger.store.audit import Findings, Period, parse_period

ROOT = Path(__file__).resolve().parents[2]


def test_findings_and_statistics_are_frozen_rows(open_store, workload) -> None:
    net, blocks = workload(600, block_records=25)
    store = open_store(net.registry)
    for b in blocks:
        store.writer.apply(b)
    found = store.audit.findings(Period(None, date(2100, 1, 1)), limit=5)
    assert isinstance(found, Findings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.unconfirmed = found.discrepancies  # type: ignore[misc]
    for rows in (found.unconfirmed, found.mirror_mismatches, found.price_outliers):
        assert len(rows.items) <= 5
        for item in rows.items:
            for rec in item.records:
                assert rec.height is not None
                assert rec.time is not None
    year = blocks[-1].header.time[:4]
    stats = store.audit.statistics(parse_period(year))
    assert sum(e.certificates for e in stats.exports) > 0


def test_a_database_error_is_a_store_error(open_store, workload) -> None:
    net, blocks = workload(600, block_records=25)
    store = open_store(net.registry)
    store.writer.apply(blocks[0])
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE certificates"))
    with pytest.raises(StoreError, match="cannot read the audit findings"):
        store.audit.findings(Period(None, date(2100, 1, 1)))
    with pytest.raises(StoreError, match="cannot read the KP statistics"):
        store.audit.statistics(parse_period("2024"))


def test_the_store_imports_no_api_types() -> None:
    """ledger/ (the store included) never imports the API layer, FastAPI or pydantic."""
    refused = ("api", "fastapi", "pydantic", "starlette", "cli", "node")
    for path in sorted((ROOT / "ledger").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for stmt in ast.walk(tree):
            names: list[str] = []
            if isinstance(stmt, ast.Import):
                names = [a.name for a in stmt.names]
            elif isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.level == 0:
                names = [stmt.module]
            for name in names:
                assert name.split(".")[0] not in refused, f"{path.relative_to(ROOT)} imports {name}"


def test_no_sql_in_the_api_layer() -> None:
    """The API formats; the queries live in ledger/store."""
    for path in sorted((ROOT / "api").rglob("*.py")):
        source = path.read_text()
        assert "sqlalchemy" not in source, path
        assert "store.engine" not in source, path


def _production_case(open_store, params: Params | None) -> list[str]:
    """IN and EU register parcels produced in 2022 and in 2023; BW in both years too."""
    net = Network.create(("BW", "IN", "EU"), (), params=params, created="2022-01-01T00:00:00Z")
    sc = Scenario(net, clock=datetime(2022, 6, 1, 9, 0, tzinfo=UTC))
    store = open_store(net.registry)
    blocks = [
        sc.seal(c, sc.party(c, f"{c}-M", "miner"), sc.register(c, f"{c}-22", f"{c}-M", 100, 10_000))
        for c in ("BW", "IN", "EU")
    ]
    sc.clock = datetime(2023, 6, 1, 9, 0, tzinfo=UTC)
    blocks += [sc.seal(c, sc.register(c, f"{c}-23", f"{c}-M", 100, 10_000)) for c in ("BW", "IN")]
    for b in blocks:
        store.writer.apply(b)
    found = store.audit.findings(Period(None, date(2023, 12, 31)))
    return sorted(x.parcel for x in found.unrecorded_production.items)


def test_production_reference_is_per_year_and_set_by_the_network(open_store) -> None:
    """Regression: India's 2022 production was flagged against the fixed 2023 table."""
    # the network names 2022's producers (India among them); 2023 falls back to the
    # shipped 2023 table, which has no Indian production
    params = Params(producers=((2022, frozenset({"BW", "IN"})),))
    assert _production_case(open_store, params) == ["EU-22", "IN-23"]


def test_production_reference_defaults_to_the_shipped_table(open_store) -> None:
    assert _production_case(open_store, None) == ["EU-22", "IN-22", "IN-23"]


def test_production_reference_in_the_genesis_bytes() -> None:
    plain = Network.create(("BW", "IN"), ())
    assert "producers" not in plain.registry.params.to_json()  # old network ids unchanged
    params = Params(producers=((2022, frozenset({"IN", "BW"})),))
    assert params.to_json()["producers"] == {"2022": ["BW", "IN"]}
    assert Params.parse(Fields(params.to_json())) == params
    assert params.producers_in(2022) == {"BW", "IN"}
    assert "IN" not in params.producers_in(2023)
    for bad, where in (
        ({"22": ["BW"]}, "producers.22"),
        ({"2022": ["BW", "BW"]}, "producers.2022"),
        ({"2022": ["IN", "BW"]}, "producers.2022"),
        ({"2022": "BW"}, "producers.2022"),
        ({"2022": ["bw"]}, "producers.2022"),
    ):
        with pytest.raises(SchemaError) as info:
            Params.parse(Fields({**plain.registry.params.to_json(), "producers": bad}))
        assert info.value.field == where


def test_activity_while_suspended_is_read_from_the_witness(open_store) -> None:
    """Regression: the finding compared block times with the suspension's, so a block that
    witnesses the suspension but is dated in the same second, or backdated to the chain's
    previous block time, was not listed. The rules read membership from the witnessed KP
    height; the finding now does too (and still lists a block dated after the suspension
    that does not witness it yet)."""
    net = Network.create(("BW", "RU"), ())
    sc = Scenario(net)
    store = open_store(net.registry)

    def seal_at(chain: str, when: datetime, *records: Record) -> Block:
        proposal = propose(
            sc.ledger.state, net.registry, net.signer(chain), chain, records, sc.now()
        )
        assert not proposal.rejected, proposal.rejected
        assert proposal.block.header.time == when.strftime("%Y-%m-%dT%H:%M:%SZ")
        sc.ledger.commit(proposal)
        store.writer.apply(proposal.block)
        return proposal.block

    store.writer.apply(sc.seal("RU", sc.party("RU", "RU-ALR", "miner")))
    before = sc.seal("RU", sc.register("RU", "RU-P0", "RU-ALR", 100, 10_000))
    store.writer.apply(before)
    suspend = sc.seal("KP", sc.governance(Kind.MEMBER_SUSPEND, {"code": "RU", "reason": "plenary"}))
    store.writer.apply(suspend)
    # RU's clock stands still: its next block is dated as its last, before the suspension
    sc.clock = datetime.fromisoformat(before.header.time.replace("Z", "+00:00"))
    backdated = sc.register("RU", "RU-P1", "RU-ALR", 100, 10_000)
    seal_at("RU", sc.clock, backdated)
    # the next one in the very second of the suspension's block
    sc.clock = datetime.fromisoformat(suspend.header.time.replace("Z", "+00:00"))
    same_second = sc.register("RU", "RU-P2", "RU-ALR", 100, 10_000)
    seal_at("RU", sc.clock, same_second)
    reinstate = sc.seal("KP", sc.governance(Kind.MEMBER_REINSTATE, {"code": "RU", "reason": "ok"}))
    store.writer.apply(reinstate)
    # a block that witnesses the reinstatement, in its second: trade is normal again
    sc.clock = datetime.fromisoformat(reinstate.header.time.replace("Z", "+00:00"))
    seal_at("RU", sc.clock, sc.register("RU", "RU-P3", "RU-ALR", 100, 10_000))

    found = store.audit.findings(Period(None, date(2100, 1, 1)))
    (ru,) = found.suspended_activity.items
    assert ru.participant == "RU"
    assert ru.count == 2
    assert [r.hash for r in ru.records] == [backdated.leaf.hex(), same_second.leaf.hex()]
