"""``kpl parcel|certificate|audit|stats`` against a node's API (in process), and their errors."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from conftest import TOKENS, Example
from fastapi.testclient import TestClient
from rich.console import Console
from typer.testing import CliRunner

from cli import query
from cli.main import app
from node.client import NodeClient

NODE = "http://wdc.test:8106"
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def kpl(example: Example, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``kpl(*args, token=None)`` -> (exit code, stdout, stderr), talking to the WDC node."""

    def connect(node: str, token: str | None) -> NodeClient:
        client = NodeClient(node, token)
        headers = dict(client.http.headers)
        client.http.close()
        client.http = TestClient(example.wdc.app, base_url=node, headers=headers)
        return client

    monkeypatch.setattr(query, "connect", connect)
    monkeypatch.setattr(query, "console", Console(width=200))
    monkeypatch.setattr(query, "err", Console(width=200, stderr=True))
    runner = CliRunner()

    def run(*args: str, token: str | None = None, node: str = NODE) -> tuple[int, str, str]:
        env = {"KPL_TOKEN": token} if token else {}
        result = runner.invoke(app, [*args, "--node", node], env=env)
        return result.exit_code, result.stdout, result.stderr

    return run


def test_parcel_show_public(kpl: Run) -> None:
    code, out, _ = kpl("parcel", "show", "IN-S2")
    assert code == 0
    assert "IN-S2" in out
    assert "7,000.00 ct" in out
    assert "BW 100.0%" in out
    assert "USD" not in out
    assert "IN-SURAT1" not in out


def test_parcel_show_with_a_token_from_the_environment(kpl: Run) -> None:
    code, out, _ = kpl("parcel", "show", "IN-S2", token=TOKENS["auditor"])
    assert code == 0
    assert "IN-SURAT1" in out
    assert "917,000.00 USD" in out


def test_parcel_history_is_a_tree_to_the_mines(kpl: Run) -> None:
    code, out, _ = kpl("parcel", "history", "IN-S2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("IN-S2 ")
    for ancestor in ("EU-AW-1", "BW-JW-1a", "BW-OR-1", "BW-JW-1 "):
        assert any(ancestor in line for line in lines[1:]), ancestor
    assert "registered on BW" in out
    assert "BW-2026-0001" in out
    assert "EU-2026-0001" in out
    assert "origin: BW 100.0% (7,000.00 ct)" in out
    # the tree is drawn with guides, deeper for the mines
    mine = next(line for line in lines if line.lstrip("│├└─ ").startswith("BW-JW-1 "))
    assert mine.index("BW-JW-1") > lines[1].index("EU-AW-1")


def test_certificate_show(kpl: Run) -> None:
    code, out, _ = kpl("certificate", "show", "EU-2026-0001", token=TOKENS["auditor"])
    assert code == 0
    assert "confirmed" in out
    assert "EU-ANTWERP1" in out
    assert "signed header" in out
    code, out, _ = kpl("certificate", "show", "EU-2026-0001")
    assert code == 0
    assert "EU-ANTWERP1" not in out


def test_audit(kpl: Run) -> None:
    code, out, _ = kpl("audit", "--until", "2026-05-01", token=TOKENS["auditor"])
    assert code == 0, out
    assert "AE-2026-0001" in out
    assert "certificates unconfirmed: 1" in out
    assert "mirror mismatches: 1" in out
    assert "discrepancies: none" in out
    code, out, _ = kpl("audit", "--json", token=TOKENS["auditor"])
    assert code == 0
    assert '"thresholds"' in out


def test_stats(kpl: Run) -> None:
    code, out, _ = kpl("stats", "--period", "2026")
    assert code == 0
    assert "production" in out
    assert "20,500.00 ct" in out  # BW: Jwaneng and Orapa


def test_stats_csv(kpl: Run) -> None:
    code, out, _ = kpl("stats", "--period", "2026-Q1", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["section"] for r in rows} == {"production", "exports", "imports", "certificates"}
    assert {r["participant"]: r["carats"] for r in rows if r["section"] == "production"} == {
        "BW": "20500.00",
        "RU": "9000.00",
    }


@pytest.mark.parametrize(
    ("args", "token", "status"),
    [
        (("audit",), None, "401"),
        (("audit",), "not-a-token", "401"),
        (("audit",), TOKENS["operator"], "403"),
        (("parcel", "show", "XX-NOPE"), None, "404"),
        (("parcel", "history", "XX-NOPE"), None, "404"),
        (("certificate", "show", "XX-2026-1"), None, "404"),
        (("parcel", "show", "not-an-id"), None, "422"),
        (("stats", "--period", "2026-Q9"), None, "422"),
        (("stats", "--period", "2026-Q9", "--csv"), None, "422"),
    ],
)
def test_problems_exit_2_with_the_status(
    kpl: Run, args: tuple[str, ...], token: str | None, status: str
) -> None:
    code, out, err = kpl(*args, token=token)
    assert code == 2
    assert f"HTTP {status}" in err
    assert "urn:kpledger:problem:" in err
    assert out == ""


def test_unreachable_node_exits_2(kpl: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query, "connect", NodeClient)
    code, _, err = kpl("parcel", "show", "IN-S2", node="http://127.0.0.1:9")
    assert code == 2
    assert "cannot reach the node at http://127.0.0.1:9" in err


def test_bad_dates_exit_2_before_asking(kpl: Run) -> None:
    code, _, err = kpl("audit", "--since", "May", token=TOKENS["auditor"])
    assert code == 2
    assert "--since must be a date" in err
