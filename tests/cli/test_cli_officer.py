"""An officer's acts with ``kpl party|parcel|certificate|policy`` against real nodes.

Three authority nodes and the WDC auditor run as processes (the harness of
tests/node); each command runs in process with ``--node`` pointing at the
authority's node and its operator token in ``KPL_TOKEN``, and is judged by
its output and exit status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from kpledger.cli import officer, query
from kpledger.cli.main import app
from kpledger.node.client import ClientError, NodeClient
from tests.node.conftest import Cluster

Run = Callable[..., tuple[int, str, str]]
WAIT = 60.0


def kpl_for(c: Cluster, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setattr(officer, "console", Console(width=300))
    monkeypatch.setattr(officer, "err", Console(width=300, stderr=True))
    monkeypatch.setattr(query, "err", Console(width=300, stderr=True))
    runner = CliRunner()

    def run(code: str, *args: str, token: str | None = None) -> tuple[int, str, str]:
        env = {"KPL_TOKEN": token if token is not None else c.token(code, "operator_token")}
        result = runner.invoke(app, [*args, "--node", c.nodes[code].url], env=env)
        return result.exit_code, result.stdout, result.stderr

    return run


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def has(client: NodeClient, path: str) -> bool:
    try:
        client.get(path)
    except ClientError:
        return False
    return True


def ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 0, f"exit {code}\n{out}\n{err}"
    return out


def as_json(result: tuple[int, str, str]) -> Any:
    return json.loads(ok(result))


@pytest.mark.timeout(400)
def test_officer_commands_on_a_live_network(
    cluster: Callable[..., Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = cluster(("BW", "EU", "AE"))
    c.start()
    kpl = kpl_for(c, monkeypatch)
    bw, eu = c.reader("BW"), c.reader("EU")

    # parties, and idempotent re-runs
    out = ok(
        kpl(
            "BW",
            "party",
            "register",
            "BW-MINE",
            "--name",
            "Debswana",
            "--role",
            "miner",
            "--address",
            "Gaborone",
        )
    )
    assert "committed party.register as BW record 0" in out
    again = ok(
        kpl(
            "BW",
            "party",
            "register",
            "BW-MINE",
            "--name",
            "Debswana",
            "--role",
            "miner",
            "--address",
            "Gaborone",
        )
    )
    assert "already submitted" in again
    ok(
        kpl(
            "BW",
            "party",
            "register",
            "BW-EXP",
            "--name",
            "Okavango",
            "--role",
            "exporter",
            "--address",
            "Gaborone",
        )
    )
    ok(
        kpl(
            "EU",
            "party",
            "register",
            "EU-IMP",
            "--name",
            "Antwerp Rough",
            "--role",
            "importer",
            "--address",
            "Antwerp",
        )
    )

    # production: a dry run writes nothing; a future production date is refused (exit 1)
    register = (
        "parcel",
        "register",
        "BW-P1",
        "--custodian",
        "BW-MINE",
        "--weight",
        "100.00",
        "--value",
        "13,400.00",
        "--mine",
        "Jwaneng",
    )
    out = ok(kpl("BW", *register, "--dry-run"))
    assert "valid parcel.register: the node would accept it" in out
    assert not has(bw, "/v1/parcels/BW-P1")
    code, out, _ = kpl(
        "BW",
        *register[:3],
        "--custodian",
        "BW-MINE",
        "--weight",
        "1",
        "--value",
        "1",
        "--mine",
        "x",
        "--produced",
        "2999-01-01",
        "--dry-run",
    )
    assert code == 1, out
    assert "refused parcel.register by rule time at body.produced" in out
    doc = as_json(kpl("BW", *register, "--json"))
    assert doc["outcome"]["status"] == "committed"
    assert (doc["record"]["body"]["weight"], doc["record"]["body"]["value"]) == (10_000, 1_340_000)
    ok(
        kpl(
            "BW",
            "parcel",
            "register",
            "BW-P2",
            "--custodian",
            "BW-EXP",
            "--weight",
            "50",
            "--value",
            "6700",
            "--mine",
            "Orapa",
        )
    )

    # a merge of two custodians' parcels is stopped before it is written
    code, _, err = kpl(
        "BW", "parcel", "merge", "--parcel", "BW-P1", "--parcel", "BW-P2", "--into", "BW-M"
    )
    assert code == 2
    assert "held by BW-EXP, BW-MINE" in err
    ok(kpl("BW", "parcel", "transfer", "BW-P1", "--to", "BW-EXP"))
    doc = as_json(
        kpl(
            "BW",
            "parcel",
            "merge",
            "--parcel",
            "BW-P1",
            "--parcel",
            "BW-P2",
            "--into",
            "BW-M",
            "--json",
        )
    )
    assert doc["record"]["body"] == {
        "parents": ["BW-P1", "BW-P2"],
        "parcel": "BW-M",
        "custodian": "BW-EXP",
        "weight": 15_000,
        "value": 2_010_000,
    }
    # sorting: one part weighed, the other takes the rest; values shared by weight
    doc = as_json(
        kpl("BW", "parcel", "split", "BW-M", "--into", "BW-A:60", "--into", "BW-B", "--json")
    )
    assert doc["record"]["body"]["children"] == [
        {"parcel": "BW-A", "weight": 6_000, "value": 804_000},
        {"parcel": "BW-B", "weight": 9_000, "value": 1_206_000},
    ]

    # export: the officer names parcels and destination; the rest comes from the ledger
    out = ok(
        kpl(
            "BW",
            "certificate",
            "issue",
            "BW-C1",
            "--parcel",
            "BW-A",
            "--to",
            "EU",
            "--importer",
            "Antwerp Rough",
            "--importer-address",
            "Antwerp",
        )
    )
    assert "certificate BW-C1 to EU: 1 parcel(s), 60.00 ct, 8,040.00 USD, origin BW" in out
    assert "committed certificate.issue" in out

    # the importer refuses it; the parcel goes back to the exporter
    wait_for("EU to hold BW-C1", lambda: has(eu, "/v1/certificates/BW-C1"))
    code, _, err = kpl(
        "AE", "certificate", "refuse", "BW-C1", "--code", "documents", "--reason", "not ours"
    )
    assert code == 2
    assert "is for EU, not AE" in err
    code, out, _ = kpl(
        "EU",
        "certificate",
        "refuse",
        "BW-C1",
        "--code",
        "restricted-origin",
        "--reason",
        "no",
        "--dry-run",
    )
    assert code == 1
    assert "refused certificate.refuse by rule 6 at body.code" in out
    out = ok(
        kpl(
            "EU",
            "certificate",
            "refuse",
            "BW-C1",
            "--code",
            "seal-broken",
            "--reason",
            "seal SEAL-BW-C1 cut on arrival",
        )
    )
    assert "committed certificate.refuse as EU record" in out
    wait_for(
        "BW to see the refusal",
        lambda: bw.get("/v1/certificates/BW-C1")["status"] == "refused",
    )
    back = bw.get("/v1/parcels/BW-A")
    assert (back["jurisdiction"], back["status"]) == ("BW", "active")

    # a void needs the importer's chain past the expiry: said before anything is sent
    code, _, err = kpl("BW", "certificate", "void", "BW-C1", "--reason", "lost")
    assert code == 2
    assert "a void needs a block of the importer's chain dated after the expiry" in err

    # an import weighed short is held, then released with a reason
    ok(
        kpl(
            "BW",
            "certificate",
            "issue",
            "BW-C2",
            "--parcel",
            "BW-B",
            "--to",
            "EU",
            "--importer",
            "Antwerp Rough",
            "--importer-address",
            "Antwerp",
        )
    )
    wait_for("EU to hold BW-C2", lambda: has(eu, "/v1/certificates/BW-C2"))
    out = ok(
        kpl(
            "EU",
            "certificate",
            "confirm",
            "BW-C2",
            "--custodian",
            "EU-IMP",
            "--received",
            "BW-B=80.00",
        )
    )
    assert "received 80.00 ct to EU-IMP" in out
    assert eu.get("/v1/parcels/BW-B")["status"] == "held"
    out = ok(kpl("EU", "certificate", "release", "BW-C2", "--reason", "re-weighed: 90.00 ct"))
    assert "committed parcel.release" in out
    assert eu.get("/v1/parcels/BW-B")["status"] == "active"

    # policy
    out = ok(kpl("EU", "policy", "restrict-origin", "RU", "--reason", "EU Reg. 833/2014"))
    assert "committed policy.restrict_origin" in out
    code, out, _ = kpl("EU", "policy", "restrict-origin", "RU", "--reason", "again", "--dry-run")
    assert code == 1
    assert "rule 8 at body.origin" in out
    ok(kpl("EU", "policy", "lift-origin", "RU", "--reason", "lifted"))
    # RU is not on this network but is a producing KP participant: restricted above.
    # ZZ is neither: refused before anything is written, naming the field
    for act in ("restrict-origin", "lift-origin"):
        code, _, err = kpl("EU", "policy", act, "ZZ", "--reason", "no such participant")
        assert code == 2, act
        assert "origin: ZZ is no origin: neither a participant of this network nor" in err, err

    # writing needs the operator token
    code, _, err = kpl("BW", "party", "revoke", "BW-MINE", "--reason", "x", token="")
    assert code == 2
    assert "operator token" in err
    out = ok(kpl("BW", "party", "revoke", "BW-MINE", "--reason", "licence withdrawn"))
    assert "committed party.revoke" in out


NOWHERE = "http://127.0.0.1:9"  # nothing listens: an argument refused here never got that far
REGISTER = ("parcel", "register", "BW-X", "--custodian", "BW-M", "--mine", "Jwaneng")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (
            (*REGISTER, "--weight", "1.234", "--value", "10"),
            "weight",
        ),
        (
            (*REGISTER, "--weight", "12", "--value", "ten"),
            "value",
        ),
        (("parcel", "transfer", "BW-X", "--to", "BW-M", "--value", "-5"), "value"),
        (("parcel", "split", "BW-X", "--into", "BW-Y:500", "--into", "BW-Z:abc"), "into"),
        (
            ("certificate", "confirm", "BW-C1", "--custodian", "EU-I", "--received", "BW-A"),
            "received",
        ),
        (
            ("certificate", "confirm", "BW-C1", "--custodian", "EU-I", "--received", "BW-A=x"),
            "received",
        ),
    ],
)
def test_bad_arguments_exit_2_with_the_field_before_any_node_is_asked(
    args: tuple[str, ...], field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(officer, "err", Console(width=300, stderr=True))
    runner = CliRunner()
    env = {"KPL_TOKEN": "operator-token"}
    result = runner.invoke(app, [*args, "--node", NOWHERE], env=env)
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {field}: ")
    result = runner.invoke(app, [*args, "--node", NOWHERE, "--json"], env=env)
    assert result.exit_code == 2
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert (error["exit"], error["kind"]) == (2, "invalid_input")
    assert error["message"].startswith(f"{field}: ")


def test_json_errors_stay_json_when_the_node_cannot_be_reached() -> None:
    result = CliRunner().invoke(
        app,
        ["party", "revoke", "BW-X", "--reason", "r", "--node", NOWHERE, "--json"],
        env={"KPL_TOKEN": "operator-token"},
    )
    assert result.exit_code == 5
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["kind"] == "unreachable"
    assert NOWHERE in error["node"]
