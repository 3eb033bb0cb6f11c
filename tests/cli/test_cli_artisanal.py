"""The artisanal chain with ``kpl claim|licence|purchase|lot|diagnostic`` against real nodes.

Sierra Leone and the EU run as node processes (the harness of tests/node); an SL
officer registers a claim (a polygon) and licences, records first sales (one
refused by rule A3, named), makes an export lot and certifies it to the EU,
records a self-assessment; ``kpl stats`` then splits production by method.
No JSON is written by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from kpledger.cli import importer, officer, query
from kpledger.cli.main import app
from kpledger.cli.verify import verify_command
from kpledger.devtools import artisanal as story
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.bundle import serialize_bundle
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.records import Record
from kpledger.ledger.store import Store
from kpledger.ledger.store.bundles import build_bundle
from kpledger.node.compose_artisanal import parse_point
from tests.cli.test_cli_officer import as_json, has, ok, wait_for
from tests.node.conftest import Cluster

TODAY = datetime.now(UTC).strftime("%Y-%m-%d")
YEAR = TODAY[:4]


def test_points_are_exact_microdegrees() -> None:
    assert parse_point("8.65,-10.97") == (8_650_000, -10_970_000)
    assert parse_point(" -0.000001 , 180") == (-1, 180_000_000)
    for bad in ("8.65", "8.1234567,1", "91,0", "x,1"):
        with pytest.raises(InvalidData):
            parse_point(bad)


@pytest.mark.timeout(300)
def test_an_officer_runs_the_artisanal_chain(
    cluster: Callable[..., Cluster], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    c = cluster(("SL", "EU"))
    c.start()
    monkeypatch.setattr(officer, "console", Console(width=300))
    monkeypatch.setattr(query, "console", Console(width=300))
    monkeypatch.setattr(query, "err", Console(width=300, stderr=True))
    monkeypatch.setattr(importer, "console", Console(width=300))
    runner = CliRunner()

    def kpl(code: str, *args: str) -> tuple[int, str, str]:
        env = {"KPL_TOKEN": c.token(code, "operator_token")}
        result = runner.invoke(app, [*args, "--node", c.nodes[code].url], env=env)
        return result.exit_code, result.stdout, result.stderr

    window = ("--from", f"{YEAR}-01-01", "--until", f"{YEAR}-12-31")
    ok(
        kpl(
            "SL",
            "party",
            "register",
            "SL-COLL",
            "--name",
            "Kono Collector",
            "--role",
            "trader",
            "--address",
            "Koidu",
        )
    )
    out = ok(
        kpl(
            "SL",
            "claim",
            "register",
            "SL-KONO-1",
            "--holder",
            "Koidu Miners",
            "--zone",
            "SL-KONO",
            *("--point", "8.65,-10.97", "--point", "8.66,-10.95", "--point", "8.64,-10.94"),
            *window,
        )
    )
    assert "committed claim.register" in out
    ok(
        kpl(
            "SL",
            "claim",
            "register",
            "SL-BO-1",
            "--holder",
            "Bo",
            "--zone",
            "SL-BO",
            "--point",
            "7.96,-11.74",
            *window,
        )
    )
    ok(
        kpl(
            "SL",
            "licence",
            "digger",
            "SL-D1",
            "--holder",
            "A. Kamara",
            "--claim",
            "SL-KONO-1",
            *window,
        )
    )
    ok(
        kpl(
            "SL",
            "licence",
            "digger",
            "SL-D2",
            "--holder",
            "Bo Coop",
            "--claim",
            "SL-BO-1",
            "--type",
            "cooperative",
            *window,
        )
    )
    ok(kpl("SL", "licence", "buyer", "SL-B1", "--party", "SL-COLL", "--zone", "SL-KONO", *window))

    def sale(parcel: str, digger: str, claim: str, carats: str, usd: str) -> tuple[int, str, str]:
        return kpl(
            "SL",
            "purchase",
            "record",
            parcel,
            *("--buyer", "SL-B1", "--digger", digger, "--claim", claim),
            *("--weight", carats, "--price", usd, "--hs", "7102.31"),
        )

    for parcel, carats, usd in (
        ("SL-A1", "1.20", "300.00"),
        ("SL-A2", "2.50", "700"),
        ("SL-A3", "0.35", "90"),
    ):
        assert "committed parcel.purchase" in ok(sale(parcel, "SL-D1", "SL-KONO-1", carats, usd))
    # a claim outside the buyer's zone: refused, the rule named (exit 1)
    code, out, _ = sale("SL-A4", "SL-D2", "SL-BO-1", "1.00", "250")
    assert code == 1, out
    assert "refused parcel.purchase by rule A3 at body.claim" in out
    assert "outside SL-B1's zones" in out
    # a national system's first sales in batch: all or nothing, each line judged
    sales = tmp_path / "sales.csv"
    header = "parcel,buyer,digger,claim,carats,usd,method\n"
    good = "SL-I1,SL-B1,SL-D1,SL-KONO-1,0.50,80,artisanal\nSL-I2,SL-B1,SL-D1,SL-KONO-1,0.75,120,\n"
    sales.write_text(header + good + "SL-I3,SL-B1,SL-D2,SL-BO-1,1.00,150,alluvial\n")
    code, out, _ = kpl("SL", "import-records", str(sales), "--kind", "parcel.purchase")
    assert code == 1, out
    assert "A3" in out
    assert not has(c.reader("SL"), "/v1/parcels/SL-I1")  # nothing written
    sales.write_text(header + good)
    out = ok(kpl("SL", "import-records", str(sales), "--kind", "parcel.purchase"))
    assert "2 valid" in out
    assert c.reader("SL").get("/v1/parcels/SL-I2")["claims"] == {"SL-KONO-1": 75}
    # bad input never reaches the node (exit 2)
    code, _, err = kpl(
        "SL",
        "purchase",
        "record",
        "SL-A5",
        "--buyer",
        "SL-B1",
        "--digger",
        "SL-D1",
        "--claim",
        "SL-KONO-1",
        "--weight",
        "1",
        "--price",
        "1",
        "--method",
        "dredged",
    )
    assert code == 2
    assert "method" in err

    doc = as_json(
        kpl(
            "SL",
            "lot",
            "make",
            "SL-LOT1",
            "--parcel",
            "SL-A1",
            "--parcel",
            "SL-A2",
            "--parcel",
            "SL-A3",
            "--json",
        )
    )
    assert doc["record"]["body"]["weight"] == 405
    assert doc["record"]["body"]["value"] == 109_000
    sl = c.reader("SL")
    assert sl.get("/v1/parcels/SL-LOT1")["claims"] == {"SL-KONO-1": 405}
    ok(
        kpl(
            "EU",
            "party",
            "register",
            "EU-IMP",
            "--name",
            "Antwerp",
            "--role",
            "importer",
            "--address",
            "Antwerp",
        )
    )
    ok(
        kpl(
            "SL",
            "party",
            "register",
            "SL-EXP",
            "--name",
            "Freetown Exporter",
            "--role",
            "exporter",
            "--address",
            "Freetown",
        )
    )
    ok(kpl("SL", "parcel", "transfer", "SL-LOT1", "--to", "SL-EXP"))
    out = ok(
        kpl(
            "SL",
            "certificate",
            "issue",
            "SL-2026-1",
            "--parcel",
            "SL-LOT1",
            "--to",
            "EU",
            "--importer",
            "Antwerp",
            "--importer-address",
            "Antwerp",
        )
    )
    assert "committed certificate.issue" in out
    eu = c.reader("EU")
    wait_for(
        "EU to hold the export lot's certificate", lambda: has(eu, "/v1/certificates/SL-2026-1")
    )
    assert eu.get("/v1/parcels/SL-LOT1")["claims"] == {"SL-KONO-1": 405}

    out = ok(
        kpl(
            "SL",
            "diagnostic",
            "assess",
            "formalisation.claim_registry",
            "--score",
            "3",
            "--evidence",
            "claims register online",
        )
    )
    assert "committed diagnostic.assess" in out
    out = ok(
        kpl(
            "SL",
            "licence",
            "end",
            "SL-D1",
            "--reason",
            "revoked",
            "--note",
            "sold outside the chain",
        )
    )
    assert "committed licence.end" in out
    code, out, _ = sale("SL-A6", "SL-D1", "SL-KONO-1", "1.00", "250")
    assert code == 1
    assert "by rule A2 at body.digger" in out

    stats = ok(kpl("SL", "stats", "--period", YEAR))
    assert "production by method" in stats
    assert "alluvial" in stats
    assert "internal controls" in stats
    diag = sl.get("/v1/diagnostics/SL")
    assert [(a["indicator"], a["score"]) for a in diag["assessments"]] == [
        ("formalisation.claim_registry", 3)
    ]


def test_kpl_verify_names_the_claims_of_an_export_lot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = Network.create(("SL", "EU", "BW"), ("WDC",))
    sc = Scenario(net)
    store = Store.open(f"sqlite:///{tmp_path / 'sl.db'}", net.registry)
    try:

        def seal(chain: str, *records: Record) -> None:
            store.writer.apply(sc.seal(chain, *records))

        story.sierra_leone(sc, seal)
        for chain in ("SL", "EU", "BW", "SL", "EU", "BW"):
            seal(chain)
        path = tmp_path / "lot.bundle.json"
        path.write_bytes(serialize_bundle(build_bundle(store, "SL-LOT1")))
    finally:
        store.close()
    assert verify_command(path, None) == 0
    out = capsys.readouterr().out
    assert "SL-C1 (3.70 ct), SL-C2 (5.15 ct)" in out
    assert "SL-A1: 1.20 ct bought at first sale on SL's claim SL-C1, 2026-03-01" in out
    assert "under EU" in out
