"""``kpl parcel|certificate|audit|stats`` against a node's API (in process), and their errors."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import OPEN, TOKENS, Example
from fastapi.testclient import TestClient
from rich.console import Console
from typer.testing import CliRunner

from kpledger.cli import query
from kpledger.cli.main import app
from kpledger.devtools.workload import Network
from kpledger.ledger.bundle import serialize_bundle
from kpledger.node.client import NodeClient

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
    code, out, _ = kpl("parcel", "show", "IN-CUT-1")
    assert code == 0
    assert "IN-CUT-1" in out
    assert "9,000.00 ct" in out
    assert "BW 100.0%" in out
    assert "USD" not in out
    assert "IN-JDAV2W3X" not in out


def test_parcel_show_with_a_token_from_the_environment(kpl: Run) -> None:
    code, out, _ = kpl("parcel", "show", "IN-CUT-1", token=TOKENS["auditor"])
    assert code == 0
    assert "IN-JDAV2W3X" in out
    assert "1,177,478.54 USD" in out


def test_parcel_history_is_a_tree_to_the_mines(kpl: Run) -> None:
    code, out, _ = kpl("parcel", "history", "IN-CUT-1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("IN-CUT-1 ")
    for ancestor in ("EU-AW-1", "BW-JW-1a", "BW-OR-1", "BW-JW-1 "):
        assert any(ancestor in line for line in lines[1:]), ancestor
    assert "registered on BW" in out
    assert "BW-2026-0001" in out
    assert "EU-2026-0001" in out
    assert "origin: BW 100.0% (9,000.00 ct)" in out
    # the tree is drawn with guides, deeper for the mines
    mine = next(line for line in lines if line.lstrip("│├└─ ").startswith("BW-JW-1 "))
    antwerp = next(line for line in lines if line.lstrip("│├└─ ").startswith("EU-AW-1 "))
    assert mine.index("BW-JW-1") > antwerp.index("EU-AW-1") > lines[1].index("IN-CUT ")


def test_certificate_show(kpl: Run) -> None:
    code, out, _ = kpl("certificate", "show", "EU-2026-0001", token=TOKENS["auditor"])
    assert code == 0
    assert "confirmed" in out
    assert "EU-LVESSCDL" in out
    assert "signed header" in out
    code, out, _ = kpl("certificate", "show", "EU-2026-0001")
    assert code == 0
    assert "EU-LVESSCDL" not in out


def test_certificate_show_says_who_refused_it_and_why(kpl: Run) -> None:
    """The story's AE-2026-0001 was refused by the EU (certificate.refuse): the reason is
    public, in the CLI's words and in its JSON, never shown as anything but refused."""
    reason = "holds Russian-origin rough: EU ban, also through third countries"
    code, out, _ = kpl("certificate", "show", "AE-2026-0001")
    assert code == 0, out
    said = " ".join(out.split())
    assert f"refused by the importing authority: {reason}" in said, said
    code, out, _ = kpl("certificate", "show", "AE-2026-0001", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["status"] == "refused"
    assert doc["refusal"]["code"] == "restricted-origin"
    assert doc["refusal"]["reason"] == reason
    assert doc["refusal"]["record"] == doc["closed"]
    assert doc["closed"]["chain"] == "EU"
    # a certificate that was not refused carries no refusal
    code, out, _ = kpl("certificate", "show", "EU-2026-0001", "--json")
    assert "refusal" not in json.loads(out)


def test_audit(kpl: Run) -> None:
    # OPEN is issued on 1 April (after the quarter's reports) and expires a month later
    code, out, _ = kpl("audit", "--until", "2026-06-01", token=TOKENS["auditor"])
    assert code == 0, out
    assert OPEN in out
    assert "certificates unconfirmed: 1" in out
    assert "mirror mismatches: 1" in out
    assert "discrepancies: none" in out
    # the EU's rule 9 refusal of the mixed Dubai shipment, with its code and the officer's words
    assert "certificates refused by the importer: 1" in out
    refused = next(line for line in out.splitlines() if "AE-2026-0001" in line)
    assert "AE -> EU" in refused
    assert "restricted-origin" in refused
    assert "Russian" in out  # the reason text, as the officer wrote it
    code, out, _ = kpl("audit", "--json", token=TOKENS["auditor"])
    assert code == 0
    assert '"thresholds"' in out


def test_stats(kpl: Run) -> None:
    code, out, _ = kpl("stats", "--period", "2026")
    assert code == 0
    assert "production" in out
    assert "24,000.00 ct" in out  # BW: Jwaneng, Orapa and Letlhakane


def test_stats_csv(kpl: Run) -> None:
    code, out, _ = kpl("stats", "--period", "2026-Q1", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["section"] for r in rows} == {"production", "exports", "imports", "certificates"}
    assert {r["participant"]: r["carats"] for r in rows if r["section"] == "production"} == {
        "BW": "24000.00",
        "RU": "15000.00",
    }


@pytest.mark.parametrize(
    ("args", "token", "status", "exit_code"),
    [
        (("audit",), None, "401", 4),
        (("audit",), "not-a-token", "401", 4),
        (("audit",), TOKENS["operator"], "403", 4),
        (("parcel", "show", "XX-NOPE"), None, "404", 3),
        (("parcel", "history", "XX-NOPE"), None, "404", 3),
        (("certificate", "show", "XX-2026-1"), None, "404", 3),
        (("parcel", "show", "not-an-id"), None, "422", 2),
        (("stats", "--period", "2026-Q9"), None, "422", 2),
        (("stats", "--period", "2026-Q9", "--csv"), None, "422", 2),
    ],
)
def test_problems_exit_with_their_kind(
    kpl: Run, args: tuple[str, ...], token: str | None, status: str, exit_code: int
) -> None:
    """Not found 3, unauthorised 4, refused input 2 (cli/exits.py; kpl --help)."""
    code, out, err = kpl(*args, token=token)
    assert code == exit_code
    assert f"HTTP {status}" in err
    assert "urn:kpledger:problem:" in err
    assert out == ""
    code, out, err = kpl(*args, "--json", token=token)
    assert code == exit_code
    assert out == ""
    problem = json.loads(err)["error"]
    assert (problem["exit"], problem["status"]) == (exit_code, int(status))
    assert problem["problem"]["type"].startswith("urn:kpledger:problem:")


def test_unreachable_node_exits_5(kpl: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query, "connect", NodeClient)
    code, _, err = kpl("parcel", "show", "IN-CUT-1", node="http://127.0.0.1:9")
    assert code == 5
    assert "cannot reach the node at http://127.0.0.1:9" in err
    code, out, err = kpl("certificate", "show", "EU-2026-0001", "--json", node="http://127.0.0.1:9")
    assert (code, out) == (5, "")
    assert json.loads(err)["error"]["kind"] == "unreachable"


def test_bad_dates_exit_2_before_asking(kpl: Run) -> None:
    code, _, err = kpl("audit", "--since", "May", token=TOKENS["auditor"])
    assert code == 2
    assert "--since must be a date" in err


def test_json_output_of_every_reading_command(kpl: Run) -> None:
    """``--json`` prints the node's document: integer hundredths of a carat and cents,
    times with their zone, records as {chain, index, hash}."""
    code, out, _ = kpl("parcel", "show", "IN-CUT-1", "--json", token=TOKENS["auditor"])
    assert code == 0
    parcel = json.loads(out)
    assert (parcel["id"], parcel["weight"], parcel["value"]) == ("IN-CUT-1", 900_000, 117_747_854)
    assert set(parcel["created"]) >= {"chain", "index", "hash"}
    code, out, _ = kpl("parcel", "history", "IN-CUT-1", "--json")
    history = json.loads(out)
    assert code == 0
    assert history["subject"] == "IN-CUT-1"
    assert {p["id"] for p in history["parcels"]} >= {"BW-JW-1", "BW-OR-1", "EU-AW-1"}
    assert all(e["time"].endswith("Z") for e in history["events"])
    code, out, _ = kpl("certificate", "show", "EU-2026-0001", "--json", token=TOKENS["auditor"])
    cert = json.loads(out)
    assert code == 0
    assert (cert["number"], cert["status"], cert["carats"]) == (
        "EU-2026-0001",
        "confirmed",
        1_300_000,
    )
    code, out, _ = kpl("stats", "--period", "2026", "--json")
    assert code == 0
    stats = json.loads(out)
    assert {r["participant"]: r["carats"] for r in stats["production"]}["BW"] == 2_400_000
    code, out, _ = kpl("audit", "--json", token=TOKENS["auditor"])
    assert code == 0
    assert json.loads(out)["unconfirmed"]["items"][0]["number"] == OPEN
    code, out, _ = kpl("network", "status", "--json")
    assert code == 0
    view = json.loads(out)
    assert set(view["heads"]) >= {"BW", "RU", "AE", "EU", "IN"}
    assert all(h["time"].endswith("Z") for h in view["heads"].values())
    code, out, _ = kpl("network", "status")
    assert code == 0
    assert "seen from node WDC" in " ".join(out.split())


def test_bundle_then_verify_as_json(kpl: Run, tmp_path: Path) -> None:
    target = tmp_path / "in-s2.json"
    code, out, _ = kpl("bundle", "IN-CUT-1", "-o", str(target), "--json", token=TOKENS["auditor"])
    assert code == 0, out
    done = json.loads(out)
    assert done["bytes"] == target.stat().st_size
    assert done["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", str(target), "--parcel", "IN-CUT-1", "--json"])
    assert ok.exit_code == 0
    verdict = json.loads(ok.stdout)
    assert verdict["ok"] is True
    assert verdict["registry"] == "carried"
    assert verdict["verdict"]["subject"] == "IN-CUT-1"
    assert verdict["verdict"]["weight"] == 900_000
    bad = tmp_path / "bad.json"
    bad.write_bytes(target.read_bytes().replace(b'"weight":900000', b'"weight":900001', 1))
    failed = runner.invoke(app, ["verify", str(bad), "--parcel", "IN-CUT-1", "--json"])
    assert failed.exit_code == 1
    outcome = json.loads(failed.stdout)
    assert (outcome["ok"], outcome["verdict"]) == (False, None)
    assert outcome["step"] == "inclusion"
    assert outcome["step_number"] == 4
    missing = runner.invoke(app, ["verify", str(tmp_path / "none.json"), "--json"])
    assert missing.exit_code == 2
    assert missing.stdout == ""
    assert json.loads(missing.stderr)["error"]["kind"] == "invalid_input"
    # a changed disclosed value fails at step 7, naming it
    doc = json.loads(target.read_bytes())
    assert doc["disclosures"]  # the auditor's bundle carries them
    doc["disclosures"][0]["value"] = (
        doc["disclosures"][0]["value"] + 1
        if isinstance(doc["disclosures"][0]["value"], int)
        else doc["disclosures"][0]["value"] + "x"
    )
    bad.write_bytes(serialize_bundle(doc))
    failed = runner.invoke(app, ["verify", str(bad), "--parcel", "IN-CUT-1", "--json"])
    assert failed.exit_code == 1
    outcome = json.loads(failed.stdout)
    assert (outcome["step"], outcome["step_number"]) == ("disclosures", 7)
    # without a token: the public's bundle, committed fields only, verifies too
    public = tmp_path / "public.json"
    code, out, _ = kpl("bundle", "IN-CUT-1", "-o", str(public), "--json")
    assert code == 0, out
    assert "disclosures" not in json.loads(public.read_bytes())
    assert runner.invoke(app, ["verify", str(public), "--parcel", "IN-CUT-1"]).exit_code == 0


def test_token_create_as_json() -> None:
    made = CliRunner().invoke(
        app, ["token", "create", "--role", "party", "--name", "IN-JDAV2W3X", "--json"]
    )
    assert made.exit_code == 0
    doc = json.loads(made.stdout)
    assert doc["sha256"] == hashlib.sha256(doc["token"].encode()).hexdigest()
    assert doc["party"] == "IN-JDAV2W3X"
    assert f'sha256 = "{doc["sha256"]}"' in doc["toml"]
    wrong = CliRunner().invoke(app, ["token", "create", "--role", "king", "--name", "x", "--json"])
    assert wrong.exit_code == 2
    assert json.loads(wrong.stderr)["error"]["kind"] == "invalid_input"


def test_help_documents_exit_codes() -> None:
    shown = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    text = " ".join(shown.stdout.split())
    for words in (
        "3 not found",
        "4 unauthorised",
        "5 node unreachable",
        "2 invalid input",
        "1 verification failed",
    ):
        assert words in text, words


def test_certificate_show_says_the_proof_was_checked_and_against_what(
    kpl: Run, example: Example, tmp_path: Path
) -> None:
    for token in (None, TOKENS["auditor"]):
        code, out, _ = kpl("certificate", "show", "EU-2026-0001", token=token)
        assert code == 0
        said = next(line for line in out.splitlines() if "inclusion proof" in line)
        assert said.startswith("inclusion proof checked against EU header ")
        assert said.endswith("trusting the node's registry")
    genesis = tmp_path / "genesis.json"
    genesis.write_bytes(example.store.registry.to_bytes())
    code, out, _ = kpl("certificate", "show", "EU-2026-0001", "--registry", str(genesis))
    assert code == 0
    assert f"trusting the pinned registry {genesis}" in out
    code, out, _ = kpl("certificate", "show", "EU-2026-0001", "--json", "--registry", str(genesis))
    assert code == 0
    shown = json.loads(out)
    proof = shown["proof"]
    assert proof["checked"] is True
    anchor = proof["anchor"]
    assert anchor["chain"] == "EU"
    assert anchor["trusting"] == f"the pinned registry {genesis}"
    assert anchor["key_id"] == example.store.registry.participant("EU").key.key_id
    assert anchor["record"] == shown["issue"]["hash"]  # the committed issue record is public


def test_certificate_show_fails_with_exit_1_under_another_networks_registry(
    kpl: Run, tmp_path: Path
) -> None:
    other = tmp_path / "other.json"
    other.write_bytes(Network.create(seed=99).registry.to_bytes())
    code, out, err = kpl("certificate", "show", "EU-2026-0001", "--registry", str(other))
    assert code == 1
    assert "NOT verified" in err
    assert "not a header of the issuer's chain on this network" in " ".join(err.split())
    code, out, _ = kpl("certificate", "show", "EU-2026-0001", "--json", "--registry", str(other))
    assert code == 1
    proof = json.loads(out)["proof"]
    assert proof["checked"] is False
    assert proof["anchor"] is None
    code, _, err = kpl("certificate", "show", "EU-2026-0001", "--registry", str(tmp_path / "no"))
    assert code == 2
    assert "no" in err


def test_certificate_show_fails_with_exit_1_when_the_node_forges_the_proof(
    example: Example, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node answering a proof whose path was altered: the check fails, exit 1."""

    class Forging(NodeClient):
        def get(self, path: str, **params: object) -> Any:
            answer = super().get(path, **params)
            if path.startswith("/v1/certificates/"):
                first = answer["proof"]["proof"][0]
                answer["proof"]["proof"][0] = ("0" if first[0] != "0" else "1") + first[1:]
            return answer

    def connect(node: str, token: str | None) -> NodeClient:
        client = Forging(node, token)
        client.http.close()
        client.http = TestClient(example.wdc.app, base_url=node)
        return client

    monkeypatch.setattr(query, "connect", connect)
    result = CliRunner().invoke(app, ["certificate", "show", "EU-2026-0001", "--node", NODE])
    assert result.exit_code == 1
    assert "NOT verified" in result.stderr
    said = " ".join(result.stderr.split())
    assert "inclusion proof NOT checked against the node's registry" in said
    assert "does not check under the registry's key of EU" in said


def test_stats_report_is_composed_and_judged_by_the_authority_s_node(
    example: Example, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kpl stats report --quarter Q --dry-run``: the EU's node composes the report from
    its records and judges it (rule S1: a quarter not over is refused)."""

    def connect(node: str, token: str | None) -> NodeClient:
        client = NodeClient(node, token)
        headers = dict(client.http.headers)
        client.http.close()
        client.http = TestClient(example.eu.app, base_url=node, headers=headers)
        return client

    monkeypatch.setattr(query, "connect", connect)
    runner = CliRunner()
    env = {"KPL_TOKEN": TOKENS["operator"]}
    args = ["stats", "report", "--dry-run", "--json", "--node", "http://eu.test:8104"]
    done = runner.invoke(app, [*args, "--quarter", "2026-Q2"], env=env)
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert (doc["record"]["kind"], doc["record"]["id"]) == ("stats.report", "stats-2026-Q2")
    assert doc["outcome"]["status"] == "valid"
    assert doc["record"]["body"]["quarter"] == "2026-Q2"
    early = runner.invoke(app, [*args, "--quarter", "2099-Q1"], env=env)
    assert early.exit_code == 1, early.output
    refused = json.loads(early.stdout)["outcome"]
    assert (refused["status"], refused["rule"], refused["code"]) == (
        "rejected",
        "S1",
        "stats-report-invalid",
    )
    bad = runner.invoke(app, [*args, "--quarter", "2026-Q7"], env=env)
    assert bad.exit_code == 2, bad.output
