"""The demo's story on a real local network: the EU's refusal is a ledger record."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpledger.cli.demo import AUTHORITIES, run_story, wait_agreement
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
                "AE-DMCC1",
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
    finally:
        net.stop()
