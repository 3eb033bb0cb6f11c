"""``kpl verify``: a trader checks a provenance bundle file offline."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from kpledger.api.app import create_app
from kpledger.cli.example import run_example
from kpledger.cli.main import app
from kpledger.cli.verify import verify_command
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.bundle import serialize_bundle
from kpledger.ledger.store import Store
from kpledger.ledger.store.bundles import build_bundle
from kpledger.node.config import NodeConfig
from kpledger.node.node import Node


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The IN-CUT-1 bundle, the genesis registry (pretty-printed, as people keep it), a tampered
    bundle and another network's registry, as files."""
    folder = tmp_path_factory.mktemp("verify")
    result = run_example(f"sqlite:///{folder / 'example.db'}")
    try:
        doc = build_bundle(result.store, "IN-CUT-1")
        registry = result.store.registry.to_bytes()
    finally:
        result.store.close()
    paths = {name: folder / f"{name}.json" for name in ("bundle", "registry", "tampered", "other")}
    paths["bundle"].write_bytes(serialize_bundle(doc))
    paths["registry"].write_text(json.dumps(json.loads(registry), indent=2))
    heavier = json.loads(serialize_bundle(doc))
    next(r for r in heavier["records"] if r["record"]["kind"] == "parcel.register")["record"][
        "body"
    ]["weight"] += 1
    paths["tampered"].write_bytes(serialize_bundle(heavier))
    other = Network.create(("BW", "RU", "AE", "EU", "IN"), ("WDC",), seed=9).registry
    paths["other"].write_bytes(other.to_bytes())
    return paths


def test_good_bundle(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_command(files["bundle"], None) == 0
    out = capsys.readouterr().out
    assert "verified" in out
    assert "IN-CUT-1  9,000.00 ct" in out
    assert "BW 100.0% (9,000.00 ct)" in out
    assert "under IN, custodian IN-JDAV2W3X, active" in out
    for text in ("Jwaneng", "Orapa", "EU-AW-1", "BW-2026-0001 BW -> EU", "EU-2026-0001 EU -> IN"):
        assert text in out
    assert "no --registry given" in out


def test_good_bundle_with_pinned_registry_and_parcel(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_command(files["bundle"], files["registry"], "IN-CUT-1") == 0
    out = capsys.readouterr().out
    assert "registry: pinned" in out
    assert "no --registry given" not in out


def test_tampered_bundle(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_command(files["tampered"], files["registry"]) == 1
    captured = capsys.readouterr()
    assert "NOT verified" in captured.err
    assert "step 4 (inclusion): record BW/2 inclusion proof" in captured.err
    assert "verified:" not in captured.out


def test_missing_file(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_command(tmp_path / "nope.json", None) == 2
    assert "does not exist" in capsys.readouterr().err
    assert verify_command(files["bundle"], tmp_path / "genesis.json") == 2
    assert "registry file" in capsys.readouterr().err


def test_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bundle.json"
    path.write_bytes(b"\x89PNG not a bundle")
    assert verify_command(path, None) == 1
    err = capsys.readouterr().err
    assert "step 1 (parse)" in err
    assert "not valid JSON" in err


def test_registry_that_differs(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_command(files["bundle"], files["other"]) == 1
    err = capsys.readouterr().err
    assert "step 2 (registry)" in err
    assert "differs from the trusted registry" in err


def test_registry_file_that_is_no_registry(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_command(files["bundle"], files["bundle"]) == 2
    assert "is not a valid signed genesis registry" in capsys.readouterr().err


def test_bundle_of_another_parcel(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_command(files["bundle"], files["registry"], "IN-CUT-2") == 1
    assert (
        "step 6 (subject): subject: the bundle is about parcel IN-CUT-1" in capsys.readouterr().err
    )


# ---------------------------------------------------------------- --online (step 8)


def _serve(
    store: Store, folder: Path
) -> tuple[str, uvicorn.Server, threading.Thread, socket.socket]:
    config = NodeConfig(
        path=folder / "WDC.toml",
        code="WDC",
        host="127.0.0.1",
        port=0,
        url="http://127.0.0.1",
        data_dir=folder,
        database_url="sqlite://",
        registry=folder / "genesis.json",
        key_file=None,
        secrets=None,
    )
    app = create_app(Node(config, store, None))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn stopped"
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread, sock


def test_online_step_catches_a_parcel_spent_after_the_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bundle made while BW-P1 was active still verifies offline after a split spent
    it (a log proves inclusion, not absence); ``--online`` names the difference."""
    net = Network.create(("BW", "EU", "RU"), ("WDC",))
    sc = Scenario(net)
    store = Store.open("sqlite://", net.registry)

    def seal(chain: str, *records: Any) -> None:
        store.writer.apply(sc.seal(chain, *records))

    seal("BW", sc.party("BW", "BW-MINE", "miner"))
    seal("BW", sc.register("BW", "BW-P1", "BW-MINE", 10_000, 1_340_000))
    seal("EU")
    seal("RU")
    old = tmp_path / "old.json"
    old.write_bytes(serialize_bundle(build_bundle(store, "BW-P1")))
    url, server, thread, sock = _serve(store, tmp_path)
    try:
        assert verify_command(old, None, "BW-P1", online=url) == 0
        assert "reports the same state now (step 8)" in capsys.readouterr().out
        seal("BW", sc.split("BW", "BW-P1", [("BW-P2", 6_000, 804_000), ("BW-P3", 4_000, 536_000)]))
        assert verify_command(old, None, "BW-P1") == 0  # offline it cannot know
        capsys.readouterr()
        assert verify_command(old, None, "BW-P1", online=url) == 1
        message = capsys.readouterr().err
        assert "step 8 (online):" in message
        assert "reports BW-P1 spent under BW" in message
        assert "proves it active under BW" in message
        assert verify_command(old, None, "BW-P1", as_json=True, online=url) == 1
        doc = json.loads(capsys.readouterr().out)
        assert (doc["ok"], doc["step"], doc["step_number"]) == (False, "online", 8)
        # an unreachable node is an input that cannot be used: exit 2
        assert verify_command(old, None, "BW-P1", online="http://127.0.0.1:9") == 2
        assert "cannot be reached" in capsys.readouterr().err
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        store.close()


def test_online_compares_several_nodes_and_names_the_one_that_left_records_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two nodes of one network: ``full`` holds every block, ``stale`` lacks the last
    block of BW (it spent BW-P1). Asked together, the stale node is named: for a fresh
    bundle it reports another state (exit 1), and its log of BW is shorter."""
    net = Network.create(("BW", "EU", "RU"), ("WDC",))
    sc = Scenario(net)
    full = Store.open("sqlite://", net.registry)
    stale = Store.open("sqlite://", net.registry)

    def seal(chain: str, *records: Any, to: tuple[Store, ...] = (full, stale)) -> None:
        block = sc.seal(chain, *records)
        for store in to:
            store.writer.apply(block)

    seal("BW", sc.party("BW", "BW-MINE", "miner"))
    seal("BW", sc.register("BW", "BW-P1", "BW-MINE", 10_000, 1_340_000))
    seal("EU")
    seal("RU")
    old = tmp_path / "old.json"
    old.write_bytes(serialize_bundle(build_bundle(full, "BW-P1")))
    registry = tmp_path / "genesis.json"
    registry.write_bytes(net.registry.to_bytes())
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    url_full, server_a, thread_a, _ = _serve(full, tmp_path / "a")
    url_stale, server_b, thread_b, _ = _serve(stale, tmp_path / "b")
    try:
        # in step: both report the proven state, the anchor is the pinned registry
        assert verify_command(old, registry, "BW-P1", online=[url_full, url_stale]) == 0
        shown = capsys.readouterr().out
        assert "online: all 2 nodes" in shown
        assert "report the same state now (step 8)" in shown
        assert f"anchor trusted: the pinned registry {registry}" in shown
        # the split reaches only the full node; EU and RU witness it there (cosign 2)
        split = [("BW-P2", 6_000, 804_000), ("BW-P3", 4_000, 536_000)]
        seal("BW", sc.split("BW", "BW-P1", split), to=(full,))
        seal("EU", to=(full,))
        seal("RU", to=(full,))
        fresh = tmp_path / "fresh.json"
        fresh.write_bytes(serialize_bundle(build_bundle(full, "BW-P1")))
        assert verify_command(fresh, registry, "BW-P1", online=[url_full, url_stale]) == 1
        message = capsys.readouterr().err
        assert f"step 8 (online): node {url_stale} reports BW-P1 active under BW" in message
        assert f"node {url_stale} holds only up to BW/2 of BW, below the bundle's block" in message
        assert f"node {url_stale} holds a shorter log of BW (2 records" in message
        assert f"than node {url_full} (3 records" in message
        assert f"node {url_full} reports" not in message
        assert "anchor trusted: the pinned registry" in message
        # the old bundle: the full node reports the split, the stale one is behind
        assert verify_command(old, None, "BW-P1", online=[url_stale, url_full]) == 1
        message = capsys.readouterr().err
        assert f"node {url_full} reports BW-P1 spent under BW" in message
        assert f"node {url_stale} holds a shorter log of BW" in message
        assert "anchor trusted: the registry the bundle carries" in message
        # --json: every node's answer, its differences, and whether each fails
        args = (fresh, registry, "BW-P1", True, [url_full, url_stale])
        assert verify_command(*args) == 1
        doc = json.loads(capsys.readouterr().out)
        assert (doc["ok"], doc["step_number"]) == (False, 8)
        by_url = {n["url"]: n for n in doc["nodes"]}
        assert by_url[url_full]["differences"] == []
        assert by_url[url_full]["state"] == {
            "jurisdiction": "BW",
            "status": "spent",
            "weight": 10_000,
        }
        assert by_url[url_stale]["heads"]["BW"]["size"] == 2
        assert [d["fails"] for d in by_url[url_stale]["differences"]] == [True, False, False]
        # an unreachable node among usable ones is listed, not fatal; alone it is exit 2
        assert (
            verify_command(fresh, registry, "BW-P1", online=[url_full, "http://127.0.0.1:9"]) == 0
        )
        shown = capsys.readouterr().out
        assert "online: not compared: node http://127.0.0.1:9 cannot be reached" in shown
        assert verify_command(fresh, registry, "BW-P1", online=["http://127.0.0.1:9"]) == 2
        assert "cannot be reached" in capsys.readouterr().err
    finally:
        server_a.should_exit = True
        server_b.should_exit = True
        thread_a.join(timeout=10)
        thread_b.join(timeout=10)


def test_kpl_verify_takes_online_more_than_once(files: dict[str, Path]) -> None:
    """The command line passes every ``--online`` URL to step 8: none can be reached, so
    the input cannot be used (exit 2) and both are named."""
    args = ["verify", str(files["bundle"]), "--online", "http://127.0.0.1:9"]
    result = CliRunner().invoke(app, [*args, "--online", "http://127.0.0.1:7"])
    assert result.exit_code == 2, result.output
    assert "node http://127.0.0.1:9 cannot be reached" in result.output
    assert "node http://127.0.0.1:7 cannot be reached" in result.output
