"""The node's HTTP API in-process (FastAPI's TestClient over a store in tmp_path),
its configuration errors, and the one-process-per-data-folder lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kpledger.api.app import create_app
from kpledger.api.problems import PROBLEM_BASE
from kpledger.api.server import open_node
from kpledger.ledger.canonical import canonical_bytes
from kpledger.node import gossip
from kpledger.node import node as node_module
from kpledger.node.config import ConfigError, NodeConfig
from kpledger.node.network import init_network

pytestmark = pytest.mark.timeout(60)

PROBLEM = "application/problem+json"
RECORDS_LIMIT = 32 * 1024 * 1024


@pytest.fixture
def api(tmp_path: Path, harness: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """BW's node (not serving, no loops) behind a TestClient, with the network's tokens."""
    monkeypatch.delenv("KPL_PASSPHRASE", raising=False)
    monkeypatch.delenv("KPL_PEER_TOKEN", raising=False)
    layout = init_network(tmp_path / "net", ["BW", "RU"], ["WDC"], base_port=8100)
    secrets = tomllib.loads(layout.secrets.read_text(encoding="utf-8"))
    proc = open_node(layout.configs["BW"])
    app = create_app(proc.node)
    try:
        with TestClient(app) as client:
            yield SimpleNamespace(
                client=client,
                node=proc.node,
                layout=layout,
                operator={"Authorization": f"Bearer {secrets['BW']['operator_token']}"},
                peer={"Authorization": f"Bearer {secrets['RU']['peer_token']}"},
                auditor={"Authorization": f"Bearer {secrets['WDC']['auditor_token']}"},
                writer=harness.ChainWriter(layout.registry.network_id, "BW", "api"),
            )
    finally:
        proc.close()


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == PROBLEM_BASE + code, body  # the code of the error class
    return body


def _body(records: list[Any]) -> dict[str, Any]:
    return {"records": [r.draft() for r in records]}


def test_submit_without_token_is_401(api: Any) -> None:
    response = api.client.post("/v1/records", json=_body([api.writer.party()]))
    _problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    unknown = {"Authorization": "Bearer not-a-token-of-this-node"}
    _problem(
        api.client.post("/v1/records", json=_body([api.writer.party()]), headers=unknown),
        401,
        "unauthorized",
    )


def test_submit_with_peer_token_is_403(api: Any) -> None:
    response = api.client.post("/v1/records", json=_body([api.writer.party()]), headers=api.peer)
    _problem(response, 403, "forbidden")


def test_body_over_the_limit_is_413(api: Any) -> None:
    big = b"[" + b" " * RECORDS_LIMIT + b"]"
    declared = api.client.post(
        "/v1/records",
        content=big,
        headers={**api.operator, "Content-Type": "application/json"},
    )
    _problem(declared, 413, "too-large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        for _ in range(RECORDS_LIMIT // (1 << 20) + 1):
            yield b" " * (1 << 20)

    streamed = api.client.post(
        "/v1/records",
        content=chunks(),
        headers={**api.operator, "Content-Type": "application/json"},
    )
    _problem(streamed, 413, "too-large")
    assert api.node.snapshot()["pending"] == 0


def test_invalid_json_is_422_encoding(api: Any) -> None:
    for junk in (b"{not json", b'{"records": [1.5]}', b"\xff\xfe"):
        response = api.client.post(
            "/v1/records",
            content=junk,
            headers={**api.operator, "Content-Type": "application/json"},
        )
        _problem(response, 422, "encoding")


def test_batch_of_1001_is_422(api: Any) -> None:
    records = [api.writer.party() for _ in range(1001)]
    response = api.client.post("/v1/records", json=_body(records), headers=api.operator)
    body = _problem(response, 422, "invalid-data")
    assert body["field"] == "records"
    assert api.node.snapshot()["pending"] == 0
    ok = api.client.post("/v1/records", json=_body(records[:1000]), headers=api.operator)
    assert ok.status_code == 200
    assert {r["status"] for r in ok.json()["results"]} == {"pending"}


def test_same_id_twice_gets_the_first_outcome(api: Any) -> None:
    record = api.writer.party()
    first = api.client.post("/v1/records", json=_body([record]), headers=api.operator).json()
    assert first["results"][0]["status"] == "pending"
    assert "duplicate" not in first["results"][0]
    again = api.client.post("/v1/records", json=record.draft(), headers=api.operator).json()
    assert again["results"][0]["status"] == "pending"
    assert again["results"][0]["duplicate"] is True

    block = api.node.seal()
    assert block is not None
    assert [r.id for r in block.records] == [record.id]
    sealed = api.client.get(f"/v1/records/{record.id}", headers=api.operator).json()
    assert sealed["status"] == "committed"
    third = api.client.post("/v1/records", json=_body([record]), headers=api.operator).json()
    result = third["results"][0]
    assert result["duplicate"] is True
    assert result["status"] == "committed"
    assert (result["height"], result["index"], result["hash"]) == (
        sealed["height"],
        sealed["index"],
        sealed["hash"],
    )
    # a different record under the same id is a conflict naming the committed record
    twin = api.writer.party()
    doctored = {**twin.draft(), "id": record.id}
    fourth = api.client.post("/v1/records", json=doctored, headers=api.operator)
    problem = _problem(fourth, 409, "conflict")
    assert problem["record"]["hash"] == sealed["hash"]
    assert problem["record"]["status"] == "committed"


def test_unknown_record_is_404(api: Any) -> None:
    _problem(api.client.get("/v1/records/unknown", headers=api.operator), 404, "not-found")
    _problem(api.client.get("/v1/records/unknown", headers=api.auditor), 404, "not-found")
    _problem(api.client.get("/v1/records/unknown"), 401, "unauthorized")


def test_healthz_and_metrics(api: Any) -> None:
    api.node.seal()  # a first block, so that the chain has a height
    health = api.client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["node"] == "BW"
    assert body["network"] == api.layout.registry.network_id
    assert body["heights"] == {"BW": 1}
    metrics = api.client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'kpl_chain_height{chain="BW"} 1.0' in metrics.text
    assert "kpl_rejected_blocks" in metrics.text


def test_blocks_need_a_peer_or_auditor_token(api: Any) -> None:
    api.node.seal()
    _problem(api.client.get("/v1/chains/BW/blocks"), 401, "unauthorized")
    _problem(api.client.get("/v1/chains/BW/blocks", headers=api.operator), 403, "forbidden")
    for who in (api.peer, api.auditor):
        response = api.client.get("/v1/chains/BW/blocks", headers=who)
        assert response.status_code == 200
        blocks = response.json()["blocks"]
        assert [b["header"]["height"] for b in blocks] == [1]
    _problem(api.client.get("/v1/chains/ZZ/blocks", headers=api.peer), 404, "not-found")


def test_pull_answers_stay_under_what_a_puller_accepts(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = node_module.MAX_BLOCKS_BODY
    assert budget <= gossip.MAX_BODY // 2
    for _ in range(4):
        batch = api.client.post(
            "/v1/records", json=_body(api.writer.mixed(30)), headers=api.operator
        )
        assert {r["status"] for r in batch.json()["results"]} == {"pending"}
        assert api.node.seal() is not None
    url = "/v1/chains/BW/blocks?from=1&limit=100"
    whole = api.client.get(url, headers=api.peer).json()["blocks"]
    assert [b["header"]["height"] for b in whole] == [1, 2, 3, 4]
    sizes = [len(canonical_bytes(b)) + 1 for b in whole]  # the stored bytes, and a comma
    monkeypatch.setattr(node_module, "MAX_BLOCKS_BODY", sizes[0] + sizes[1])
    part = api.client.get(url, headers=api.peer).json()["blocks"]
    assert part == whole[:2]  # a prefix: the puller asks again from where it got to
    monkeypatch.setattr(node_module, "MAX_BLOCKS_BODY", 10)
    assert api.client.get(url, headers=api.peer).json()["blocks"] == whole[:1]
    monkeypatch.setattr(node_module, "MAX_BLOCKS_BODY", budget)
    monkeypatch.setattr(node_module, "_READ_BLOCKS", 1)  # read from the store one at a time
    assert api.client.get(url, headers=api.peer).json()["blocks"] == whole
    middle = "/v1/chains/BW/blocks?from=2&limit=2"
    assert api.client.get(middle, headers=api.peer).json()["blocks"] == whole[1:3]


# ---------------------------------------------------------------- configuration


@pytest.fixture
def network(tmp_path: Path) -> Any:
    return init_network(tmp_path / "net", ["BW", "RU"], ["WDC"], base_port=8100)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_config_unknown_key_names_file_and_key(network: Any) -> None:
    path = network.configs["BW"]
    _edit(path, "[blocks]\n", "[blocks]\nspeed = 3\n")
    with pytest.raises(ConfigError) as caught:
        NodeConfig.load(path)
    message = str(caught.value)
    assert str(path) in message
    assert "blocks" in message
    assert "speed" in message


def test_config_bad_listen_names_file_and_key(network: Any) -> None:
    path = network.configs["BW"]
    _edit(path, 'listen = "127.0.0.1:8101"', 'listen = "127.0.0.1"')
    with pytest.raises(ConfigError) as caught:
        NodeConfig.load(path)
    assert str(path) in str(caught.value)
    assert "node.listen" in str(caught.value)
    assert caught.value.field == "node.listen"


def test_config_public_url_is_the_base_of_certificate_codes(network: Any) -> None:
    path = network.configs["BW"]
    assert NodeConfig.load(path).public_base == NodeConfig.load(path).url
    _edit(
        path,
        'listen = "127.0.0.1:8101"',
        'listen = "127.0.0.1:8101"\npublic_url = "https://kp.bw/"',
    )
    assert NodeConfig.load(path).public_base == "https://kp.bw"
    for bad in ("ftp://kp.bw", "https://kp.bw/?x=1", "https://user@kp.bw", "https://kp.bw/#/a"):
        _edit(path, "https://kp.bw/", bad)
        with pytest.raises(ConfigError) as caught:
            NodeConfig.load(path)
        assert caught.value.field == "node.public_url", bad
        _edit(path, bad, "https://kp.bw/")


def test_secrets_readable_by_others_are_refused(
    network: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KPL_PASSPHRASE", raising=False)
    os.chmod(network.secrets, 0o644)
    with pytest.raises(ConfigError) as caught:
        open_node(network.configs["BW"])
    message = str(caught.value)
    assert str(network.secrets) in message
    assert "0644" in message
    assert not (network.configs["BW"].parent / "node.db").exists()


@pytest.mark.timeout(60)
def test_second_process_on_the_same_data_dir_is_refused(cluster: Any) -> None:
    net = cluster(("BW",), ())
    net.start("BW")
    first = net.nodes["BW"]
    second = subprocess.run(
        first.command(),
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "COLUMNS": "200"},
        timeout=30,
        check=False,
    )
    assert second.returncode == 2, second
    assert "node.lock" in second.stderr + second.stdout
    assert first.alive
    health = json.loads(
        subprocess.run(
            [sys.executable, "-c", f"import httpx; print(httpx.get('{first.url}/healthz').text)"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    )
    assert health["node"] == "BW"


def test_repeated_committed_record_keeps_its_batch_position_apart_from_its_log_index(
    api: Any,
) -> None:
    """Regression: a committed record submitted again answered its log index as its position."""
    first = [api.writer.party() for _ in range(5)]
    api.client.post("/v1/records", json=_body(first), headers=api.operator)
    assert api.node.seal() is not None
    committed = first[3]
    sealed = api.client.get(f"/v1/records/{committed.id}", headers=api.operator).json()
    assert sealed["status"] == "committed"
    assert "position" not in sealed

    fresh = api.writer.party()
    answer = api.client.post(
        "/v1/records", json=_body([fresh, committed]), headers=api.operator
    ).json()
    new, again = answer["results"]
    assert (new["position"], new["status"]) == (0, "pending")
    assert "index" not in new  # a pending record has no place in the log yet
    assert again["position"] == 1
    assert again["duplicate"] is True
    assert again["status"] == "committed"
    assert again["index"] == sealed["index"]
    assert again["index"] != again["position"]
    assert (again["height"], again["hash"]) == (sealed["height"], sealed["hash"])


def test_records_dated_far_ahead_are_invalid_and_a_batch_keeps_order(api: Any) -> None:
    record = api.writer.party()
    ahead = {**record.draft(), "time": "2099-01-01T00:00:00Z"}
    answer = api.client.post("/v1/records", json=ahead, headers=api.operator).json()
    result = answer["results"][0]
    assert result["status"] == "invalid"
    assert result["field"] == "time"
    # a valid batch is judged in order and sealed whole
    batch = [api.writer.party() for _ in range(50)]
    answer = api.client.post("/v1/records", json=_body(batch), headers=api.operator).json()
    assert [r["status"] for r in answer["results"]] == ["pending"] * 50
    block = api.node.seal()
    assert block is not None
    assert [r.id for r in block.records] == [r.id for r in batch]
