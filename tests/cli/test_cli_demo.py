"""The demo's story on a real local network: the EU's refusal is a ledger record; the
quarter before today's is reported and the public reads its USD; the KP chair admits
and suspends a participant through the governance commands' files."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from kpledger.cli.demo import (
    AUTHORITIES,
    admit_participant,
    closed_quarter,
    local_story,
    run_story,
    trade_and_suspend,
    wait_agreement,
)
from kpledger.cli.governance import load_proposal
from kpledger.cli.story import cents
from kpledger.node.client import NodeClient
from kpledger.node.local import LocalNetwork


@pytest.mark.timeout(600)
def test_demo_story_refuses_the_mixed_shipment_on_the_ledger(tmp_path: Path) -> None:
    net = LocalNetwork.create(tmp_path / "network", AUTHORITIES, ("WDC",))
    net.start()
    try:
        net.wait_ready(timeout=120)
        said: list[str] = []
        try:
            result = run_story(net, say=said.append)
        except Exception as exc:  # say how far the story got
            raise AssertionError("the story stopped after:\n" + "\n".join(said)) from exc
        # the production is dated in the quarter before today's, which every authority
        # reports; the public reads Botswana's production USD (3 parcels) from its report
        quarter, _ = closed_quarter(datetime.now(UTC).date())
        assert result.reported == quarter
        for code in AUTHORITIES:
            assert any(f"{code}: statistics of {quarter} sealed" in line for line in said), code
        usd = sum(cents("BW", ct) for ct in (12_500, 8_000, 3_500)) / 100
        assert said[-1] == (
            f"public statistics of {quarter} on IN's node: BW's production 24,000.00 ct in "
            f"3 parcels, USD {usd:,.2f} (values from the reports)"
        )
        # the EU's node would not let it confirm: its officer refuses instead
        assert [(r["rule"], r["code"]) for r in result.refused] == [("9", "restricted-origin")]
        assert any("rule 9" in line and "AE-2026-0001" in line for line in said)
        assert any("EU refuses the mixed shipment" in line for line in said)
        wait_agreement(net, timeout=120)
        with NodeClient(net.layout.urls["WDC"], net.token("WDC", "auditor_token")) as wdc:
            cert = wdc.get("/v1/certificates/AE-2026-0001")
            assert cert["status"] == "refused"
            assert cert["closed"]["chain"] == "EU"
            mixed = wdc.get("/v1/parcels/AE-MIX-1")
            assert (mixed["jurisdiction"], mixed["status"], mixed["custodian"]) == (
                "AE",
                "active",
                "AE-F6F7FV5W",
            )
            report = wdc.get("/v1/audit/report")
            (refusal,) = report["refusals"]["items"]
            assert (refusal["number"], refusal["destination"], refusal["code"]) == (
                "AE-2026-0001",
                "EU",
                "restricted-origin",
            )
            assert [r["kind"] for r in refusal["records"]] == [
                "certificate.issue",
                "certificate.refuse",
            ]
            final = wdc.get(f"/v1/parcels/{result.final_parcel}")
            assert final["jurisdiction"] == "IN"
            # the auditor's figures, from the disclosures, agree with the report's
            stats = wdc.get("/v1/stats", period=quarter)
            assert stats["values"] == "disclosures"
            production = {r["participant"]: r for r in stats["production"]}
            assert production["BW"]["value"] == round(usd * 100)
            assert (production["RU"]["parcels"], production["RU"]["value"] > 0) == (2, True)
    finally:
        net.stop()


@pytest.mark.timeout(600)
def test_demo_admits_and_suspends_through_the_chair_commands(tmp_path: Path) -> None:
    """``kpl demo``'s governance chapter on a smaller network: VE's folder (``kpl network
    join``), its admission and later its suspension as proposal files signed by two
    governance keys and submitted to a node that is not the KP sealer; VE's first
    certificate confirmed by India; its next refused on every node; the audit finding."""
    net = LocalNetwork.create(tmp_path / "network", ("BW", "EU", "IN"), ("WDC",))
    net.start()
    try:
        net.wait_ready(timeout=120)
        said: list[str] = []
        s = local_story(net, said.append, ("IN",))
        try:  # Surat's manufacturer, whom the story registers before VE trades
            s.commit("IN", s.party("IN", "IN-JDAV2W3X", "manufacturer", "Surat cutting works"))
        finally:
            s.close()
        try:
            admit_participant(net, say=said.append)
            trade_and_suspend(net, say=said.append)
        except Exception as exc:  # say how far the chapter got
            raise AssertionError("the chapter stopped after:\n" + "\n".join(said)) from exc
        governance = net.layout.root / "governance"
        for name, height in (("member.admit-VE.json", 1), ("member.suspend-VE.json", 2)):
            assert len(load_proposal(governance / name).sigs) == 2, name
            assert any(f"({name})" in line and f"KP height {height}" in line for line in said)
        assert any("VE-2026-0002 refused" in line and "VE is suspended" in line for line in said)
        heads = wait_agreement(net, timeout=120)
        assert heads["KP"]["height"] == 2
        assert heads["VE"]["height"] >= 3
        for code, url in net.layout.urls.items():
            cert = httpx.get(f"{url}/v1/certificates/VE-2026-0001", timeout=5).json()
            assert cert["status"] == "confirmed", code
            refused = httpx.get(f"{url}/v1/certificates/VE-2026-0002", timeout=5)
            assert refused.status_code == 404, code
        with NodeClient(net.layout.urls["WDC"], net.token("WDC", "auditor_token")) as wdc:
            items = wdc.get("/v1/audit/report")["suspended_activity"]["items"]
        (finding,) = [f for f in items if f["participant"] == "VE"]
        assert finding["suspension"]["kind"] == "member.suspend"
        assert [r["kind"] for r in finding["records"]] == ["party.register"]
    finally:
        net.stop()


def test_the_demo_reports_the_last_quarter_over() -> None:
    assert closed_quarter(date(2026, 1, 1)) == ("2025-Q4", date(2025, 12, 31))
    assert closed_quarter(date(2026, 3, 31)) == ("2025-Q4", date(2025, 12, 31))
    assert closed_quarter(date(2026, 4, 1)) == ("2026-Q1", date(2026, 3, 31))
    assert closed_quarter(date(2026, 11, 30)) == ("2026-Q3", date(2026, 9, 30))
