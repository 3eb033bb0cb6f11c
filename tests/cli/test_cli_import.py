"""``kpl import-records`` against real nodes: a report per line before anything is
written, all-or-nothing, idempotent re-runs, and a progress bar."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from kpledger.cli import importer, query
from kpledger.cli.main import app
from kpledger.node.client import ClientError, NodeClient
from tests.node.conftest import Cluster


def exists(client: NodeClient, path: str) -> bool:
    try:
        client.get(path)
    except ClientError:
        return False
    return True


def chain_size(client: NodeClient, chain: str) -> int:
    return int(client.heads()[chain]["size"])


@pytest.mark.timeout(400)
def test_import_records_checks_every_line_then_writes_once(
    cluster: Callable[..., Cluster], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    c = cluster(("BW", "EU"))
    c.start("BW", "EU")
    monkeypatch.setattr(importer, "console", Console(width=300))
    monkeypatch.setattr(importer, "err", Console(width=300, stderr=True))
    monkeypatch.setattr(query, "err", Console(width=300, stderr=True))
    runner = CliRunner()
    bw = c.reader("BW")

    def kpl(*args: str) -> tuple[int, str, str]:
        env = {"KPL_TOKEN": c.token("BW", "operator_token")}
        result = runner.invoke(app, [*args, "--node", c.nodes["BW"].url], env=env)
        return result.exit_code, result.stdout, result.stderr

    # parties from a CSV export
    parties = tmp_path / "parties.csv"
    parties.write_text(
        "party,name,role,address\n"
        "BW-DEB,Debswana,miner,Gaborone\n"
        '"BW-OKA","Okavango Diamond Company, Ltd",exporter,Gaborone\n'
    )
    code, out, err = kpl("import-records", str(parties), "--kind", "party.register")
    assert code == 0, out + err
    assert "2 lines: 2 valid, 0 already on the ledger, 0 refused or invalid" in out
    assert "2 records committed" in out
    assert "sealed in blocks" in out

    # production from a JSONL export: two bad lines stop the whole import
    rows = [
        {"parcel": f"BW-N{i:03d}", "custodian": "BW-DEB", "carats": f"{100 + i}.25",
         "usd": "12,000.00", "mine": "Jwaneng"}
        for i in range(40)
    ]  # fmt: skip
    bad = [dict(r) for r in rows]
    bad[6]["carats"] = "heavy"
    bad[9]["produced"] = "2999-12-31"
    production = tmp_path / "production.jsonl"
    production.write_text("".join(json.dumps(r) + "\n" for r in bad) + "{not json\n")
    before = chain_size(bw, "BW")
    code, out, _ = kpl("import-records", str(production), "--kind", "parcel.register")
    assert code == 1, out
    assert "40 valid" not in out
    assert "38 valid, 0 already on the ledger, 3 refused or invalid" in out
    report = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert "invalid" in report["7"]
    assert "carats" in report["7"]
    assert "rejected" in report["10"]
    assert "time" in report["10"]
    assert "body.produced" in report["10"]
    assert "not JSON" in report["41"]
    assert "nothing written" in out
    assert chain_size(bw, "BW") == before
    assert not exists(bw, "/v1/parcels/BW-N000")

    # corrected: a dry run reports and writes nothing, then the import writes all
    production.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, _ = kpl("import-records", str(production), "--kind", "parcel.register", "--dry-run")
    assert code == 0, out
    assert "40 valid" in out
    assert "dry run: nothing written" in out
    assert not exists(bw, "/v1/parcels/BW-N000")
    code, out, _ = kpl("import-records", str(production), "--kind", "parcel.register")
    assert code == 0, out
    assert "40 records committed" in out
    assert bw.get("/v1/parcels/BW-N039")["weight"] == 13_925
    size = chain_size(bw, "BW")

    # the same file again: every line is already on the ledger; nothing is written
    code, out, _ = kpl(
        "import-records", str(production), "--kind", "parcel.register", "--show", "problems"
    )
    assert code == 0, out
    assert "40 lines: 0 valid, 40 already on the ledger" in out
    assert "nothing to write" in out
    assert chain_size(bw, "BW") == size

    # certificates from CSV, parcels ;-separated, totals from the ledger
    certs = tmp_path / "certs.csv"
    certs.write_text(
        "id,number,parcels,destination,importer,importer_address\n"
        "nat-0001,BW-2026-0001,BW-N000;BW-N001,EU,Antwerp Rough NV,Antwerp\n"
        "nat-0002,BW-2026-0002,BW-N002,EU,Antwerp Rough NV,Antwerp\n"
    )
    code, out, _ = kpl("import-records", str(certs), "--kind", "certificate.issue")
    assert code == 0, out
    assert "2 records committed" in out
    first = bw.get("/v1/certificates/BW-2026-0001")
    assert (first["carats"], first["parcels"], first["origin"]) == (
        10_025 + 10_125,
        ["BW-N000", "BW-N001"],
        "BW",
    )
    assert bw.outcome("nat-0002") is not None  # the national system's ids are the record ids

    # bad invocations
    code, _, err = kpl("import-records", str(certs), "--kind", "parcel.teleport")
    assert code == 2
    assert "--kind must be one of" in err
    code, _, err = kpl("import-records", str(tmp_path / "x.xlsx"), "--kind", "party.register")
    assert code == 2
    assert "expected a .csv or .jsonl file" in err


class _TimesOutOnSecondBatch:
    """A node that takes the first batch and then stops answering."""

    def __init__(self) -> None:
        self.batches = 0

    def submit(self, records: list[dict[str, object]]) -> list[dict[str, object]]:
        self.batches += 1
        if self.batches > 1:
            raise httpx.ReadTimeout("timed out")
        return [{"id": r["id"], "status": "committed"} for r in records]


def test_a_submission_failing_half_way_says_what_was_taken_and_how_to_finish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importer, "console", Console(width=300, file=io.StringIO()))
    said = io.StringIO()
    monkeypatch.setattr(importer, "err", Console(width=300, file=said))
    lines = [
        importer.Line(n + 2, {"id": f"BW-import-{n}"}, {"status": "valid"})
        for n in range(importer.BATCH + 10)
    ]
    client = _TimesOutOnSecondBatch()
    with pytest.raises(httpx.ReadTimeout):
        importer._submit(client, lines, wait=1.0)  # type: ignore[arg-type]
    text = " ".join(said.getvalue().split())
    assert f"after {importer.BATCH} of {importer.BATCH + 10} new records" in text
    assert f"lines {importer.BATCH + 2} to {importer.BATCH + 11} may or may not" in text
    assert "Run the same import again" in text
