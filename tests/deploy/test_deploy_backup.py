"""Backup and restore: ``kpl export``, wipe, ``kpl import``, ``kpl db verify``; damaged files;
and an authority that lost its store rebuilding it from its peers alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text

from kpledger.devtools.realistic import realistic_blocks
from kpledger.devtools.workload import Network
from kpledger.ledger.blocks import Evidence, Header
from kpledger.ledger.chain import propose
from kpledger.ledger.errors import InvalidData, StoreError
from kpledger.ledger.records import Kind, Record, make_record
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.backup import BackupError, export_store, import_file
from kpledger.node.local import free_base_port
from kpledger.node.network import init_network

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workload() -> tuple[Network, list[Any]]:
    return realistic_blocks(2500, seed=11, block_records=100)


def _party(network: str, chain: str, n: int) -> Record:
    return make_record(
        network=network,
        chain=chain,
        kind=Kind.PARTY_REGISTER,
        record_id=f"backup-{chain}-{n}",
        time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        body={"party": f"{chain}-B{n}", "name": f"Co {n}", "role": "trader", "address": "x"},
    )


def _filled(url: str, net: Network, blocks: list[Any]) -> dict[str, Any]:
    """A store holding the workload, evidence, a pending record and a refusal; its summary."""
    store = Store.open(url, net.registry)
    try:
        for block in blocks:
            store.writer.apply(block)
        head = store.head("BW")
        assert head is not None
        later = "2030-01-01T00:00:0{}Z"
        a, b = (
            propose(store, net.registry, net.signer("BW"), "BW", [], later.format(i))
            for i in (1, 2)
        )
        store.evidence.add(Evidence.build(a.block.signed, b.block.signed))
        store.queue.enqueue(
            [_party(net.network_id, "EU", 1)],
            [(_party(net.network_id, "EU", 2), InvalidData("refused for the test"))],
        )
        return _summary(store)
    finally:
        store.close()


def _summary(store: Store) -> dict[str, Any]:
    with store.engine.connect() as conn:
        queues = {
            name: sorted(tuple(r) for r in conn.execute(select(table).order_by(*table.c)))
            for name, table in (("pending", t.pending), ("rejected", t.rejected))
        }
    return {
        "heads": {c: h.hash for c, h in store.heads().items()},
        "evidence": [e.id for e in store.evidence.all()],
        "pending": [(c, rid, bytes(raw)) for c, rid, _, raw in queues["pending"]],
        "rejected": queues["rejected"],
        "blocks": store.log.block_count(),
    }


def _wipe(url: str) -> None:
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar()
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()


def kpl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kpledger.cli.main", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_export_wipe_import_verify(store_url: str, tmp_path: Path, workload: Any) -> None:
    net, blocks = workload
    before = _filled(store_url, net, blocks)
    out = tmp_path / "backup.jsonl"
    run = kpl("export", "--db", store_url, "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    _wipe(store_url)
    with pytest.raises(StoreError):
        Store.open(store_url, create=False).close()
    run = kpl("import", str(out), "--db", store_url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(blocks):,} blocks" in run.stdout
    run = kpl("db", "verify", "--db", store_url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "verified" in run.stdout
    store = Store.open(store_url)
    try:
        after = _summary(store)
    finally:
        store.close()
    assert after == before  # heads, evidence, pending and refusals: all back
    # a second import into the now full store is refused, and changes nothing
    run = kpl("import", str(out), "--db", store_url)
    assert run.returncode == 2
    assert "not empty" in run.stderr


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _reseal(lines: list[bytes]) -> list[bytes]:
    """Recompute the end line's digest: a forger who knows the format."""
    end = json.loads(lines[-1])
    end["end"]["sha256"] = hashlib.sha256(b"".join(lines[:-1])).hexdigest()
    return [*lines[:-1], json.dumps(end, separators=(",", ":"), sort_keys=True).encode() + b"\n"]


def test_damaged_files_are_refused(tmp_path: Path, workload: Any) -> None:
    net, blocks = workload
    url = f"sqlite:///{tmp_path}/a.db"
    _filled(url, net, blocks)
    good = tmp_path / "good.jsonl"
    export_store(url, good)
    lines = _lines(good)
    assert len(lines) == 1 + len(blocks) + 1 + 1 + 1 + 1  # head, blocks, ev, pending, refusal, end

    def attempt(name: str, content: list[bytes] | bytes) -> tuple[BackupError, Store]:
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(content if isinstance(content, bytes) else b"".join(content))
        target = f"sqlite:///{tmp_path}/{name}.db"
        with pytest.raises(BackupError) as caught:
            import_file(path, target)
        return caught.value, Store.open(target, net.registry)

    # truncated anywhere: refused before anything is written
    raw = good.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 5, len(b"".join(lines[:-1]))):
        error, store = attempt(f"cut{cut}", raw[:cut])
        assert "truncated" in str(error)
        assert "nothing was imported" in str(error)
        assert store.log.block_count() == 0
        store.close()

    # one byte changed in a block: the digest no longer matches; nothing written
    k = len(blocks) // 2
    bad = list(lines)
    bad[k] = bad[k].replace(b'"weight":', b'"weight":1', 1)
    assert bad[k] != lines[k]
    error, store = attempt("flipped", bad)
    assert "altered or damaged" in str(error)
    assert store.log.block_count() == 0
    store.close()

    # the same change with the digest recomputed: verification stops at that block;
    # the blocks before it stay, verified, and the error says so
    error, store = attempt("forged", _reseal(bad))
    assert f"line {k + 1}" in str(error)
    assert f"The {k - 1} blocks before it" in str(error)
    assert "stay in the store" in str(error)
    assert store.log.block_count() == k - 1
    assert store.verifier.verify().blocks == k - 1  # a valid prefix
    store.close()

    # a block left out (and the counts and digest fixed): the next one does not link
    gap = [*lines[:k], *lines[k + 1 :]]
    end = json.loads(gap[-1])
    end["end"]["blocks"] -= 1
    gap[-1] = json.dumps(end).encode() + b"\n"
    error, store = attempt("gap", _reseal(gap))
    assert "failed verification" in str(error)
    store.close()

    # the end line after more content, or a file of another network
    error, store = attempt("appended", [*lines, lines[1]])
    assert "follows the end line" in str(error)
    store.close()
    with pytest.raises(BackupError, match="not of"):
        import_file(good, f"sqlite:///{tmp_path}/other.db", registry=Network.create().registry)


def test_rebuild_from_peers_alone(deploy: Any, nodes: Any, tmp_path: Path) -> None:
    """BW loses its store: started empty, it takes its own chain back from EU, then seals on.

    What BW can get back is what it had published: EU's copy of BW's chain.
    """
    layout = init_network(
        tmp_path / "net",
        ["BW", "EU"],
        [],
        base_port=free_base_port(2),
        block_interval=0.1,
        heartbeat=0.5,
        gossip_interval=0.2,
    )
    secrets = deploy.secrets_of(layout.root)
    bw = nodes(layout.configs["BW"], layout.urls["BW"])
    eu = nodes(layout.configs["EU"], layout.urls["EU"])
    bw.wait_ready()
    eu.wait_ready()
    operator = {"Authorization": f"Bearer {secrets['BW']['operator_token']}"}
    peer = {"Authorization": f"Bearer {secrets['EU']['peer_token']}"}
    network = layout.registry.network_id
    ids = []
    with httpx.Client(base_url=layout.urls["BW"], headers=operator, timeout=5) as http:
        for n in range(3):
            record = _party(network, "BW", n).draft()
            assert http.post("/v1/records", json=record).json()["results"][0]["status"] == "pending"
            ids.append(record["id"])
    eu_reader = httpx.Client(
        base_url=layout.urls["EU"],
        headers={"Authorization": f"Bearer {secrets['EU']['operator_token']}"},
        timeout=5,
    )
    with eu_reader:
        deploy.wait_for(
            "EU to hold BW's records",
            lambda: all(
                eu_reader.get(f"/v1/records/{i}", params={"chain": "BW"}).json().get("status")
                == "committed"
                for i in ids
            ),
            15,
        )
        assert bw.stop() == 0
        last = eu_reader.get("/v1/heads").json()["heads"]["BW"]  # what the network holds
    for suffix in ("", "-wal", "-shm"):
        (layout.configs["BW"].parent / f"node.db{suffix}").unlink(missing_ok=True)

    # the harder case: EU is away too when BW starts again. BW must not seal a
    # height it sealed before; it waits for a peer (node.startup_sync, here longer
    # than EU can take to start on a loaded machine: past it, BW would seal blind) ...
    assert eu.stop() == 0
    config = layout.configs["BW"]
    text = config.read_text()
    assert "\n[node]\n" in f"\n{text}"
    config.write_text(f"\n{text}".replace("\n[node]\n", "\n[node]\nstartup_sync = 600.0\n", 1))
    again = nodes(layout.configs["BW"], layout.urls["BW"])
    assert again.wait_ready()["heights"] == {}
    time.sleep(2.0)  # four heartbeats
    assert httpx.get(layout.urls["BW"] + "/v1/heads").json()["heads"] == {}
    # ... and when EU is back, takes its chain back and only then seals on
    nodes(layout.configs["EU"], layout.urls["EU"]).wait_ready()
    with httpx.Client(base_url=layout.urls["BW"], headers=peer, timeout=5) as http:
        deploy.wait_for(
            "BW to seal past the head EU held",
            lambda: (
                http.get("/v1/heads").json()["heads"].get("BW", {}).get("height", 0)
                > last["height"]
            ),
            20,
        )
        old = http.get("/v1/chains/BW/blocks", params={"from": last["height"], "limit": 1})
        header = Header.from_json(old.json()["blocks"][0]["header"])
        assert header.hash.hex() == last["hash"]  # pulled back from EU, not sealed again
        for i in ids:
            assert http.get(f"/v1/records/{i}").json()["status"] == "committed"

    # EU takes BW's new blocks on top of the old ones: no fork, no evidence
    def eu_height() -> int:
        return int(httpx.get(layout.urls["EU"] + "/v1/heads").json()["heads"]["BW"]["height"])

    deploy.wait_for("EU to follow BW", lambda: eu_height() > last["height"], 10)
    assert httpx.get(layout.urls["EU"] + "/healthz").json()["evidence"] == 0
    eu_store = Store.open(f"sqlite:///{layout.configs['EU'].parent / 'node.db'}")
    try:
        with eu_store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(t.evidence)).scalar() == 0
    finally:
        eu_store.close()


def test_export_reports_progress_per_block(tmp_path: Path, workload: Any) -> None:
    """``kpl export`` shows progress as ``kpl import`` does: the export calls back once per
    block written, counting up to the number of blocks under the heads it read."""
    net, blocks = workload
    url = f"sqlite:///{tmp_path}/p.db"
    before = _filled(url, net, blocks)
    seen: list[tuple[int, int]] = []
    summary = export_store(url, tmp_path / "p.jsonl", progress=lambda d, n: seen.append((d, n)))
    total = before["blocks"]
    assert summary.counts["block"] == total
    assert seen == [(done, total) for done in range(1, total + 1)]
