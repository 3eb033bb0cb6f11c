"""The auditors' queries in the store: frozen rows, and database errors in the error tree."""

from __future__ import annotations

import ast
import dataclasses
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.errors import StoreError
from ledger.store.audit import Findings, Period, parse_period

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
