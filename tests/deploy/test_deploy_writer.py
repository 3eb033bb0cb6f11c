"""PostgreSQL in production: one writer per database, read replicas, takeover; schema checks.

Two real node processes share one PostgreSQL database with the same
configuration but their listen port. Only the holder of the writer lock seals
(its ``kpl_blocks_sealed`` counter moves, the other's stays at zero) and takes
submissions; the other says ``role: replica`` in ``/healthz``, refuses
submissions with 503 and follows the writer's heads. After ``kill -9`` of the
writer the replica takes over within a bound and seals. A node refuses to
start on a schema revision it does not know.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from kpledger.ledger.records import Kind, make_record
from kpledger.ledger.registry import Registry
from kpledger.ledger.store import Store
from kpledger.node.config import NodeConfig
from kpledger.node.network import init_network

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

TAKEOVER_BOUND = 15.0  # seconds from kill -9 of the writer to the replica sealing (~1.5 s idle)


def _party(network: str, n: int) -> dict[str, Any]:
    return make_record(
        network=network,
        chain="BW",
        kind=Kind.PARTY_REGISTER,
        record_id=f"deploy-BW-{n}",
        time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        body={"party": f"BW-CO{n}", "name": f"Company {n}", "role": "miner", "address": "Gaborone"},
    ).draft()


def _sealed(http: httpx.Client) -> float:
    found = re.search(r"^kpl_blocks_sealed_total (\S+)$", http.get("/metrics").text, re.M)
    return float(found.group(1)) if found else 0.0


def _height(http: httpx.Client) -> int:
    head = http.get("/v1/heads").json()["heads"].get("BW")
    return int(head["height"]) if head else 0


def _two_configs(deploy: Any, tmp_path: Path, pg_url: str) -> tuple[Path, Path, list[str], str]:
    """One authority BW on ``pg_url``; a second config differing only in the port."""
    base = deploy.free_base_port(2)
    a, b = base + 1, base + 2
    layout = init_network(
        tmp_path / "net",
        ["BW"],
        [],
        base_port=a - 1,
        block_interval=0.2,
        heartbeat=0.5,
        gossip_interval=0.2,
        database_url=pg_url,
    )
    first = layout.configs["BW"]
    text_a = first.read_text().replace("[node]\n", "[node]\nwriter_retry = 0.5\n", 1)
    first.write_text(text_a)
    second = first.with_name("node-b.toml")
    second.write_text(text_a.replace(f":{a}", f":{b}"))
    token = deploy.secrets_of(layout.root)["BW"]["operator_token"]
    return first, second, [f"http://127.0.0.1:{a}", f"http://127.0.0.1:{b}"], token


def test_one_writer_replica_refuses_and_takes_over(
    deploy: Any, tmp_path: Path, pg_url: str, nodes: Any
) -> None:
    config_a, config_b, (url_a, url_b), token = _two_configs(deploy, tmp_path, pg_url)
    wait_for = deploy.wait_for
    auth = {"Authorization": f"Bearer {token}"}
    a = nodes(config_a, url_a)
    assert a.wait_ready()["role"] == "writer"
    b = nodes(config_b, url_b)  # same database, same data_dir: no node.lock on PostgreSQL
    assert b.wait_ready()["role"] == "replica"
    network = Store.open(pg_url).registry.network_id

    with a.client(headers=auth) as ha, b.client(headers=auth) as hb:
        # heads advance, sealed by A alone; B follows them from the database
        start = _height(ha)
        wait_for("A to seal", lambda: _height(ha) >= start + 3, 15)
        wait_for("B to follow A's heads", lambda: _height(hb) >= start + 3, 10)
        assert _sealed(ha) >= 3
        assert _sealed(hb) == 0

        # submissions: refused by the replica, taken by the writer and visible on both
        refused = hb.post("/v1/records", json={"records": [_party(network, 1)]})
        assert refused.status_code == 503, refused.text
        assert refused.json()["type"].endswith("not-writer")
        answer = ha.post("/v1/records", json={"records": [_party(network, 1)]}).json()
        assert answer["results"][0]["status"] == "pending"
        wait_for(
            "the record committed, as seen by the replica",
            lambda: hb.get("/v1/records/deploy-BW-1").json().get("status") == "committed",
            10,
        )
        assert _sealed(hb) == 0

        # kill -9 the writer: the replica takes over within the bound and seals
        before = _height(hb)
        a.kill()
        killed = time.monotonic()
        wait_for(
            "the replica to become the writer",
            lambda: hb.get("/healthz").json()["role"] == "writer",
            TAKEOVER_BOUND,
        )
        wait_for("B to seal", lambda: _sealed(hb) >= 1 and _height(hb) > before, TAKEOVER_BOUND)
        took = time.monotonic() - killed
        assert took < TAKEOVER_BOUND
        print(f"takeover: the replica sealed {took:.1f}s after kill -9 of the writer")
        answer = hb.post("/v1/records", json={"records": [_party(network, 2)]}).json()
        assert answer["results"][0]["status"] == "pending"
        wait_for(
            "B to commit a record",
            lambda: hb.get("/v1/records/deploy-BW-2").json().get("status") == "committed",
            10,
        )

    # the old writer, started again, is now the replica
    again = nodes(config_a, url_a)
    assert again.wait_ready()["role"] == "replica"
    assert b.stop() == 0  # SIGTERM: a clean stop, the lock released
    assert again.stop() == 0
    store = Store.open(pg_url)
    try:
        report = store.verifier.verify()
        assert report.blocks == store.heads()["BW"].height
    finally:
        store.close()


def test_node_refuses_unknown_schema_revision(deploy: Any, tmp_path: Path, pg_url: str) -> None:
    config, _, _, _ = _two_configs(deploy, tmp_path, pg_url)
    registry = Registry.parse(NodeConfig.load(config).registry.read_bytes())
    # a store at a revision this code does not know (as a newer kpledger would leave it)
    store = Store.open(pg_url, registry)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    store.close()
    env = {
        "PYTHONPATH": str(deploy.REPO),
        "PATH": "/usr/bin:/bin",
        "KPL_PASSPHRASE": deploy.secrets_of(config.parents[1])["BW"]["passphrase"],
    }

    def kpl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kpledger.cli.main", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=deploy.REPO,
            env=env,
        )

    run = kpl("node", "run", "--config", str(config))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "9999_future" in run.stderr
    assert "kpl db upgrade" in run.stderr
    # and kpl db upgrade does not pretend it can bring a newer schema back
    up = kpl("db", "upgrade", "--db", pg_url)
    assert up.returncode == 2, up.stdout + up.stderr
    assert "9999_future" in up.stderr
