"""The demo's artisanal chapter on real nodes: Sierra Leone's export lot traced to its
claims in Antwerp, a first sale outside the buyer's zone refused (rule A3), and the
statistics split by method with the small cell's price withheld."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpledger.cli.demo import wait_agreement
from kpledger.cli.demo_artisanal import LOT, run_artisanal
from kpledger.node.client import NodeClient
from kpledger.node.local import LocalNetwork


@pytest.mark.timeout(400)
def test_the_artisanal_chapter(tmp_path: Path) -> None:
    net = LocalNetwork.create(tmp_path / "network", ("SL", "EU"), ("WDC",))
    net.start()
    try:
        net.wait_ready(timeout=120)
        said: list[str] = []
        try:
            result = run_artisanal(net, say=said.append)
        except Exception as exc:  # say how far the chapter got
            raise AssertionError("the chapter stopped after:\n" + "\n".join(said)) from exc
        assert [(r["rule"], r["code"]) for r in result.refused] == [("A3", "claim-invalid")]
        assert any(f"{LOT} in Antwerp came from the claims SL-KONO-C1" in line for line in said)
        wait_agreement(net, timeout=120)
        with NodeClient(net.layout.urls["WDC"], net.token("WDC", "auditor_token")) as wdc:
            lot = wdc.get(f"/v1/parcels/{LOT}")
            assert lot["jurisdiction"] == "EU"
            assert lot["claims"] == {"SL-KONO-C1": 465, "SL-KONO-C2": 825}
            cert = wdc.get("/v1/certificates/SL-2026-0001")
            assert (cert["status"], cert["origin"]) == ("confirmed", "SL")
            year = cert["issued"][:4]
            methods = {(m["method"]): m for m in wdc.get("/v1/stats", period=year)["methods"]}
            # three sales in each cell: both prices shown (a cell of fewer is withheld)
            assert methods["alluvial"]["parcels"] == 3
            assert (
                methods["alluvial"]["cents_per_carat"]
                == (120 * 150 + 250 * 170 + 480 * 160) * 100 // 850
            )
            assert methods["artisanal"]["parcels"] == 3
            assert methods["artisanal"]["cents_per_carat"] is not None
            diag = wdc.get("/v1/diagnostics/SL")
            assert len(diag["assessments"]) == 3
    finally:
        net.stop()
