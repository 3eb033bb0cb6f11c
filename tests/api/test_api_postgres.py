"""The audit and statistics queries, and parcel histories, answer the same on PostgreSQL
as on SQLite.

Needs the server named by ``KPL_TEST_POSTGRES_URL`` (skipped otherwise; a
failure when ``KPL_REQUIRE_POSTGRES=1``). Each store gets a schema of its own.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from api_support import AuditCase, build_audit_case

from kpledger.api.audit import audit_report, kp_statistics
from kpledger.api.deps import Caller
from kpledger.api.provenance import history_json, history_view
from kpledger.devtools.realistic import realistic_blocks
from kpledger.ledger.store import Store

pytestmark = pytest.mark.postgres


def report_json(store: Store, until: str) -> dict[str, Any]:
    out = audit_report(store, "WDC", since=None, until=date.fromisoformat(until)).model_dump()
    del out["generated"]
    return out


def test_audit_report_is_the_same_on_postgres(pg_url: str, audit_case: AuditCase) -> None:
    case = build_audit_case(pg_url)
    try:
        assert report_json(case.store, case.until) == report_json(audit_case.store, case.until)
        assert kp_statistics(case.store, "2026") == kp_statistics(audit_case.store, "2026")
    finally:
        case.store.close()


def test_statistics_are_the_same_on_postgres(pg_url: str, tmp_path: Any) -> None:
    net, blocks = realistic_blocks(2000, block_records=250)
    pg = Store.open(pg_url, net.registry)
    lite = Store.open(f"sqlite:///{tmp_path / 's.db'}", net.registry)
    try:
        for block in blocks:
            pg.writer.apply(block)
            lite.writer.apply(block)
        for period in ("2026", "2026-Q1", "2026-Q2"):
            assert kp_statistics(pg, period) == kp_statistics(lite, period)
        assert report_json(pg, "2026-06-30") == report_json(lite, "2026-06-30")
    finally:
        pg.close()
        lite.close()


def test_history_answers_the_same_on_postgres(pg_url: str, tmp_path: Any) -> None:
    """``GET /v1/parcels/{id}/history``'s bytes (built from the lineage's rows) are the
    same on PostgreSQL as on SQLite, and are what ``history_view``'s objects make."""
    net, blocks = realistic_blocks(600, block_records=200)
    pg = Store.open(pg_url, net.registry)
    lite = Store.open(f"sqlite:///{tmp_path / 'h.db'}", net.registry)
    try:
        for block in blocks:
            pg.writer.apply(block)
            lite.writer.apply(block)
        with lite.engine.connect() as conn:
            ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM parcels ORDER BY id")]
        assert len(ids) > 50
        for who in (Caller("public"), Caller("auditor"), Caller("operator")):
            for pid in ids[::5]:
                parcel = lite.parcel(pid)
                assert parcel is not None
                want = history_view(lite, parcel, who, "EU", 1000).model_dump_json(
                    exclude_none=True
                )
                assert history_json(lite, pid, who, "EU", 1000) == want.encode(), pid
                assert history_json(pg, pid, who, "EU", 1000) == want.encode(), pid
    finally:
        pg.close()
        lite.close()
