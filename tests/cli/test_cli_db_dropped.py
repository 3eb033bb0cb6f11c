"""``kpl db dropped``: what a store dropped of an equivocating chain restarted at its fork."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kpledger.cli.main import app
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.chain import detect_equivocation, fork_heights, propose
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.records import Kind
from kpledger.ledger.store import Store

runner = CliRunner()


def _store_with_a_dropped_part(url: str) -> str:
    """BW forks at height 2; this store holds version A, then the key.replace; drops it."""
    sc = Scenario(Network.create(("EU", "BW"), ()))
    sc.seal("BW", sc.party("BW", "BW-T1"))
    other = Scenario(sc.net, serial=10_000, clear=dict(sc.clear))
    other.ledger.append(sc.ledger.blocks["BW"][0])
    other.clock = sc.clock
    sc.seal("BW", sc.party("BW", "BW-ON-A"))
    other.seal("BW", other.party("BW", "BW-ON-B"))
    evidence = detect_equivocation(sc.ledger.state, other.ledger.blocks["BW"][1].signed)
    assert evidence is not None
    forks = fork_heights([evidence])
    store = Store.open(url, sc.net.registry)
    try:
        for block in sc.ledger.blocks["BW"]:
            store.writer.apply(block)
        store.disclosures.keep(sc.ledger.blocks["BW"][1].records)  # the writer's own values
        store.evidence.add(evidence)
        key = Ed25519Signer.from_seed(b"bw-cli-new".ljust(32, b"-")).public.hex()
        body = {"code": "BW", "key": key, "from_height": 2, "reason": "equivocation"}
        replace = sc.governance(Kind.KEY_REPLACE, body)
        kp = propose(store, sc.net.registry, sc.net.signer("KP"), "KP", [replace], sc.tick(), forks)
        store.writer.apply(kp.block, forks)
        store.resume.drop("BW", 2, forks)
    finally:
        store.close()
    return sc.ledger.blocks["BW"][1].records[0].id


def test_lists_and_writes_the_dropped_records(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.db'}"
    dropped_id = _store_with_a_dropped_part(url)
    out = tmp_path / "dropped.json"
    shown = runner.invoke(app, ["db", "dropped", "--db", url, "--out", str(out)])
    assert shown.exit_code == 0, shown.output
    assert dropped_id in shown.output
    assert "1 record(s) written" in shown.output
    written = json.loads(out.read_text())
    assert [r["id"] for r in written["records"]] == [dropped_id]
    # a draft as the officer submitted it: the committed name back in clear
    assert written["records"][0]["body"]["name"] == "BW-ON-A"
    as_json = runner.invoke(app, ["db", "dropped", "--db", url, "--json"])
    assert as_json.exit_code == 0, as_json.output
    [part] = json.loads(as_json.output)["dropped"]
    assert (part["chain"], part["from_height"], part["blocks"]) == ("BW", 2, 1)
    assert [r["id"] for r in part["records"]] == [dropped_id]


def test_a_store_that_dropped_nothing_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Store.open(url, Network.create(("EU", "BW"), ()).registry).close()
    shown = runner.invoke(app, ["db", "dropped", "--db", url])
    assert shown.exit_code == 0, shown.output
    assert "nothing dropped" in shown.output
    missing = runner.invoke(app, ["db", "dropped", "--db", f"sqlite:///{tmp_path / 'no.db'}"])
    assert missing.exit_code == 2
