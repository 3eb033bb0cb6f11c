"""``kpl governance``, ``kpl network join/add-peer`` and ``kpl keys rotate`` without nodes:
files, signatures and every kind of bad input (the network tests run them against nodes)."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kpledger.cli.governance import load_proposal
from kpledger.cli.main import app
from kpledger.keys import load_public_key
from kpledger.ledger.records import Kind
from kpledger.node.config import NodeConfig
from kpledger.node.network import NetworkLayout, init_network


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> NetworkLayout:
    return init_network(tmp_path_factory.mktemp("gov") / "net", ["BW", "EU"], ["WDC"])


def kpl(*args: str, passphrase: str | None = None) -> tuple[int, str]:
    env = {"COLUMNS": "300", "KPL_PASSPHRASE": passphrase or ""}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, " ".join(result.output.split())


def gov_pass(net: NetworkLayout) -> str:
    value: str = tomllib.loads(net.secrets.read_text())["governance"]["passphrase"]
    return value


def propose_suspend(net: NetworkLayout, out: Path) -> None:
    code, text = kpl(
        "governance", "propose", "suspend", "--registry", str(net.root / "genesis.json"),
        "--code", "EU", "--reason", "plenary", "-o", str(out),
    )  # fmt: skip
    assert code == 0, text


def test_propose_sign_and_count(net: NetworkLayout, tmp_path: Path) -> None:
    proposal = tmp_path / "p.json"
    propose_suspend(net, proposal)
    record = load_proposal(proposal)
    assert record.kind is Kind.MEMBER_SUSPEND
    assert record.chain == "KP"
    assert record.network == net.registry.network_id
    assert record.sigs == ()
    registry = str(net.root / "genesis.json")
    key0 = str(net.root / "governance" / "gov-0.key")
    code, text = kpl(
        "governance", "sign", str(proposal), "--key", key0, "--registry", registry,
        passphrase=gov_pass(net),
    )  # fmt: skip
    assert code == 0, text
    assert "signed by 1 of 2 required" in text
    # below the threshold, submit refuses before any network access
    code, text = kpl(
        "governance", "submit", str(proposal), "--node", "http://127.0.0.1:9", "--registry",
        registry,
    )  # fmt: skip
    assert code == 2
    assert "signed by 1 of 2 required" in text
    # one key signs once
    code, text = kpl("governance", "sign", str(proposal), "--key", key0, passphrase=gov_pass(net))
    assert code == 2
    assert "already signed" in text
    assert len(load_proposal(proposal).sigs) == 1
    # a reformatted file still counts: signatures cover canonical bytes
    proposal.write_text(json.dumps(json.loads(proposal.read_text()), indent=2))
    code, text = kpl(
        "governance", "sign", str(proposal), "--key", str(net.root / "governance" / "gov-1.key"),
        "--registry", registry, passphrase=gov_pass(net),
    )  # fmt: skip
    assert code == 0, text
    assert "signed by 2 of 2 required" in text


def test_bad_files_and_keys_are_refused(net: NetworkLayout, tmp_path: Path) -> None:
    proposal = tmp_path / "p.json"
    propose_suspend(net, proposal)
    before = proposal.read_bytes()
    # not a governance key of the registry: a node's key (same format, other passphrase)
    node_pass = tomllib.loads(net.secrets.read_text())["BW"]["passphrase"]
    code, text = kpl(
        "governance", "sign", str(proposal), "--key", str(net.root / "BW" / "node.key"),
        "--registry", str(net.root / "genesis.json"), passphrase=node_pass,
    )  # fmt: skip
    assert code == 2
    assert "not a governance key" in text
    # a wrong passphrase
    code, text = kpl(
        "governance", "sign", str(proposal), "--key", str(net.root / "governance" / "gov-0.key"),
        passphrase="wrong",
    )  # fmt: skip
    assert code == 2
    assert "gov-0.key" in text
    assert proposal.read_bytes() == before  # nothing half-written
    # files that are not proposals
    for name, content in {
        "empty.json": b"",
        "garbage.json": b"{not json",
        "float.json": b'{"v": 1.5}',
    }.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        code, text = kpl("governance", "submit", str(bad), "--node", "http://127.0.0.1:9")
        assert code == 2, name
        assert f"{bad}: not a governance proposal" in text, text
    # a proposal of record format 1 (before committed confidential fields) names its version
    old_format = json.loads(before)
    old_format["v"] = 1
    v1 = tmp_path / "v1.json"
    v1.write_text(json.dumps(old_format))
    code, text = kpl("governance", "submit", str(v1), "--node", "http://127.0.0.1:9")
    assert code == 2
    assert "record format version 1 is not accepted" in text
    # a governance body is all clear in format 2: nothing of it is a commitment
    assert "{'c':" not in str(load_proposal(proposal).body_json)
    other = json.loads(before)
    other["chain"] = "BW"
    other["kind"] = "party.revoke"
    other["body"] = {"party": "BW-X", "reason": "r"}
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(other))
    code, text = kpl("governance", "submit", str(wrong), "--node", "http://127.0.0.1:9")
    assert code == 2
    assert "a party.revoke record of chain BW" in text
    code, text = kpl("governance", "sign", str(tmp_path / "missing.json"), "--key", "k")
    assert code == 2
    assert "cannot read the proposal" in text
    # an existing output file is kept unless --force
    code, text = kpl(
        "governance", "propose", "reinstate", "--registry", str(net.root / "genesis.json"),
        "--code", "EU", "--reason", "r", "-o", str(proposal),
    )  # fmt: skip
    assert code == 2
    assert "exists" in text
    assert proposal.read_bytes() == before
    code, text = kpl(
        "governance", "propose", "key-replace", "--registry", str(net.root / "genesis.json"),
        "--code", "EU", "--key", "not-a-key", "--from-height", "3", "--reason", "r",
        "-o", str(tmp_path / "k.json"),
    )  # fmt: skip
    assert code == 2
    assert "neither 64 hex digits nor an existing public key file" in text


def test_join_writes_a_private_node_folder(net: NetworkLayout, tmp_path: Path) -> None:
    out = tmp_path / "NA"
    code, text = kpl(
        "network", "join", "--registry", str(net.root / "genesis.json"), "--code", "NA",
        "--name", "Namibia", "--url", "http://127.0.0.1:8190", "--out", str(out),
    )  # fmt: skip
    assert code == 0, text
    assert "kpl network add-peer" in text
    config = NodeConfig.load(out / "node.toml")
    assert config.code == "NA"
    assert [p.code for p in config.peers] == ["BW", "EU", "WDC"]
    assert stat.S_IMODE((out / "secrets.toml").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "node.key").stat().st_mode) == 0o600
    assert config.secret("passphrase", "KPL_UNSET_FOR_TEST")
    load_public_key(out / "node.pub")
    # refused: an existing folder, a code of the registry, a bad URL or code
    for args, why in (
        (["--code", "NA", "--url", "http://127.0.0.1:8190", "--out", str(out)], "exists"),
        (["--code", "BW", "--url", "http://h:1", "--out", str(tmp_path / "x")], "already"),
        (["--code", "NA", "--url", "ftp://h", "--out", str(tmp_path / "y")], "http(s)://HOST"),
        (
            ["--code", "na", "--url", "http://h:1", "--out", str(tmp_path / "z")],
            "not a participant",
        ),
    ):
        code, text = kpl(
            "network", "join", "--registry", str(net.root / "genesis.json"), "--name", "n", *args
        )
        assert code == 2, args
        assert why in text, text
    assert not (tmp_path / "x").exists()
    # add-peer: a running node's file, changed atomically and only when valid
    code, text = kpl(
        "network", "add-peer", "--config", str(out / "node.toml"), "--code", "ZZ",
        "--url", "http://127.0.0.1:8191", "--token-sha256", "nothex",
    )  # fmt: skip
    assert code == 2
    assert NodeConfig.load(out / "node.toml") == config
    code, text = kpl(
        "network", "add-peer", "--config", str(out / "node.toml"), "--code", "ZZ",
        "--url", "http://127.0.0.1:8191", "--token-sha256", "ab" * 32,
    )  # fmt: skip
    assert code == 0, text
    changed = NodeConfig.load(out / "node.toml")
    assert changed.peers[-1].code == "ZZ"
    assert any(t.name == "ZZ" and t.role == "peer" for t in changed.tokens)


def test_rotate_refuses_a_node_without_a_chain(net: NetworkLayout) -> None:
    code, text = kpl("keys", "rotate", "--config", str(net.configs["WDC"]))
    assert code == 2
    assert "WDC is not an authority node with a key" in text
