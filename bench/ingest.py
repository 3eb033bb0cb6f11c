"""Ingest benchmark: apply pre-built blocks to an empty store with full validation.

Prints, as medians over ``BENCH_RUNS`` runs (default 3):

* records/s for parsing wire bytes and applying every block (signatures,
  links, roots, every custody rule, one transaction per block) on SQLite;
* the honest baseline measured in the same run: the store's own write set
  (every row of every table, captured from a real ingest: ``bench.writeset``)
  replayed through bare ``sqlite3`` into a fresh store with the same tables,
  indexes and durability (WAL, synchronous=FULL), and our ratio to it;
* the older, looser baseline beside it: raw ``sqlite3`` executemany of the
  record bytes alone into one table, one transaction per block;
* on-disk bytes per record;
* inclusion-proof generation (from the SQL store) and verification time at
  1,000,000 records;
* the same ingest on PostgreSQL against the write-set replay through bare
  psycopg (and the one-table executemany), if a server answers at
  ``KPL_BENCH_POSTGRES_URL`` (default the local test database).

Usage: ``python -m bench.ingest [--records N] [--proof-size N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import insert

from bench.common import (
    fresh_sqlite,
    pg_schema,
    postgres_url,
    runs,
    timed,
    write_result,
)
from bench.writeset import WriteSet, capture, pg_keywords, replay_postgres, replay_sqlite
from kpledger.devtools.realistic import realistic_blocks
from kpledger.devtools.workload import Network
from kpledger.ledger.blocks import Block
from kpledger.ledger.canonical import canonical_bytes, load_json
from kpledger.ledger.merkle import MemoryTree, verify_inclusion
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t
from kpledger.node.gctune import tune_gc

__all__ = ["encode_blocks", "ingest", "main"]


def encode_blocks(blocks: list[Block]) -> list[bytes]:
    return [canonical_bytes(b.to_json()) for b in blocks]


def ingest(url: str, registry: Any, wire: list[bytes], max_records: int) -> float:
    store = Store.open(url, registry)
    try:

        def run() -> None:
            for data in wire:
                store.writer.apply(Block.from_json(load_json(data), max_records=max_records))

        return timed(run)
    finally:
        store.close()


def _capture(url: str, registry: Any, wire: list[bytes], max_records: int) -> WriteSet:
    """The write set of one full ingest into a fresh store at ``url`` (not timed)."""
    store = Store.open(url, registry)
    try:
        with capture(store.engine, store.bulk) as ws:
            for data in wire:
                store.writer.apply(Block.from_json(load_json(data), max_records=max_records))
        return ws
    finally:
        store.close()


def _empty_store(url: str, registry: Any) -> None:
    """Create the store's schema at ``url`` (what a replay writes into)."""
    Store.open(url, registry).close()


def _raw_sqlite(path: Path, batches: list[list[tuple[str, int, bytes]]]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE r (chain TEXT, idx INTEGER, raw BLOB, PRIMARY KEY (chain, idx))")

    def run() -> None:
        for rows in batches:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO r VALUES (?, ?, ?)", rows)
            conn.execute("COMMIT")

    try:
        return timed(run)
    finally:
        conn.close()


def _raw_postgres(url: str, batches: list[list[tuple[str, int, bytes]]]) -> float:
    with psycopg.connect(**pg_keywords(url)) as conn:
        conn.execute("CREATE TABLE r (chain TEXT, idx BIGINT, raw BYTEA, PRIMARY KEY (chain, idx))")
        conn.commit()

        def run() -> None:
            with conn.cursor() as cur:
                for rows in batches:
                    cur.executemany("INSERT INTO r VALUES (%s, %s, %s)", rows)
                    conn.commit()

        return timed(run)


def _batches(blocks: list[Block]) -> list[list[tuple[str, int, bytes]]]:
    sizes: dict[str, int] = {}
    out = []
    for b in blocks:
        start = sizes.get(b.header.chain, 0)
        out.append([(b.header.chain, start + i, r.raw) for i, r in enumerate(b.records)])
        sizes[b.header.chain] = start + len(b.records)
    return out


def _disk_bytes(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def _proof_store(folder: Path, size: int) -> tuple[Store, MemoryTree]:
    """A store whose BW log holds ``size`` synthetic leaves (records hold leaf hashes only)."""
    net = Network.create()
    path = fresh_sqlite(folder, "proofs.db")
    store = Store.open(f"sqlite:///{path}", net.registry)
    tree = MemoryTree()
    rows: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    with store.engine.begin() as conn:
        for i in range(size):
            leaf = i.to_bytes(32, "big")
            for level, idx, digest in tree.append(leaf):
                if level > 0:
                    nodes.append({"chain": "BW", "level": level, "idx": idx, "hash": digest})
            rows.append(
                {
                    "chain": "BW",
                    "idx": i,
                    "height": 1,
                    "record_id": f"r{i}",
                    "kind": "parcel.register",
                    "leaf": leaf,
                    "raw": b"",
                }
            )
            if len(rows) >= 50_000:
                conn.execute(insert(t.records), rows)
                conn.execute(insert(t.merkle_nodes), nodes)
                rows, nodes = [], []
        if rows:
            conn.execute(insert(t.records), rows)
        if nodes:
            conn.execute(insert(t.merkle_nodes), nodes)
    return store, tree


def _proofs(folder: Path, size: int, samples: int = 1000) -> dict[str, float]:
    store, tree = _proof_store(folder, size)
    root = tree.root()
    rng = random.Random(1)
    gen: list[float] = []
    ver: list[float] = []
    try:
        for _ in range(samples):
            index = rng.randrange(size)
            start = time.perf_counter()
            proof = store.proofs.inclusion("BW", index, size)
            mid = time.perf_counter()
            verify_inclusion(index.to_bytes(32, "big"), index, size, proof, root)
            end = time.perf_counter()
            gen.append(mid - start)
            ver.append(end - mid)
    finally:
        store.close()
    return {
        "size": size,
        "generate_median_ms": statistics.median(gen) * 1e3,
        "generate_p99_ms": sorted(gen)[int(len(gen) * 0.99) - 1] * 1e3,
        "verify_median_ms": statistics.median(ver) * 1e3,
    }


def main() -> None:
    tune_gc()  # as the node process does (node.gctune)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--proof-size", type=int, default=1_000_000)
    args = ap.parse_args()
    n_runs = runs()
    print(f"building {args.records:,} records of realistic blocks (not timed) ...", flush=True)
    net, blocks = realistic_blocks(args.records)
    total = sum(len(b.records) for b in blocks)
    wire = encode_blocks(blocks)
    batches = _batches(blocks)
    max_records = net.registry.params.max_block_records
    result: dict[str, Any] = {"records": total, "blocks": len(blocks), "runs": n_runs}
    with tempfile.TemporaryDirectory(prefix="kpl-bench-") as tmp:
        folder = Path(tmp)
        db = folder / "ingest.db"

        def ours() -> float:
            path = fresh_sqlite(folder, "ingest.db")
            return ingest(f"sqlite:///{path}", net.registry, wire, max_records)

        def raw() -> float:
            return _raw_sqlite(fresh_sqlite(folder, "raw.db"), batches)

        print("capturing the store's write set from one ingest (not timed) ...", flush=True)
        ws = _capture(
            f"sqlite:///{fresh_sqlite(folder, 'capture.db')}", net.registry, wire, max_records
        )

        def replay() -> float:
            path = fresh_sqlite(folder, "replay.db")
            _empty_store(f"sqlite:///{path}", net.registry)
            return replay_sqlite(path, ws)

        runs_ = [(ours(), replay(), raw()) for _ in range(n_runs)]
        ours_s = statistics.median(r[0] for r in runs_)
        ws_s = statistics.median(r[1] for r in runs_)
        raw_s = statistics.median(r[2] for r in runs_)
        ws_ratio = statistics.median(r[1] / r[0] for r in runs_)
        ratio = statistics.median(r[2] / r[0] for r in runs_)
        result["sqlite"] = {
            "records_per_s": total / ours_s,
            "write_set_replay_records_per_s": total / ws_s,
            "ratio_to_write_set": ws_ratio,
            "write_set_rows_per_record": ws.rows / total,
            "write_set_statements": ws.statements,
            "raw_executemany_records_per_s": total / raw_s,
            "ratio_to_raw": ratio,
            "bytes_per_record": _disk_bytes(db) / total,
        }
        print(
            f"SQLite ingest: {total / ours_s:,.0f} records/s with full validation; the store's "
            f"write set ({ws.rows / total:.1f} rows per record) replayed bare "
            f"{total / ws_s:,.0f} records/s, ratio {ws_ratio:.3f}; one-table executemany "
            f"{total / raw_s:,.0f} records/s, ratio {ratio:.3f}; "
            f"{result['sqlite']['bytes_per_record']:.0f} bytes/record on disk",
            flush=True,
        )
        pg = postgres_url()
        if pg is None:
            print("PostgreSQL: no server answered; skipped")
        else:
            with pg_schema(pg) as url:
                pg_ws = _capture(url, net.registry, wire, max_records)

            def pg_run() -> tuple[float, float, float]:
                with pg_schema(pg) as url:
                    mine = ingest(url, net.registry, wire, max_records)
                with pg_schema(pg) as url:
                    _empty_store(url, net.registry)
                    replayed = replay_postgres(url, pg_ws)
                with pg_schema(pg) as url:
                    bare = _raw_postgres(url, batches)
                return mine, replayed, bare

            pg_runs = [pg_run() for _ in range(n_runs)]
            pg_ours = statistics.median(r[0] for r in pg_runs)
            pg_ws_s = statistics.median(r[1] for r in pg_runs)
            pg_raw = statistics.median(r[2] for r in pg_runs)
            pg_ws_ratio = statistics.median(r[1] / r[0] for r in pg_runs)
            pg_ratio = statistics.median(r[2] / r[0] for r in pg_runs)
            result["postgres"] = {
                "records_per_s": total / pg_ours,
                "write_set_replay_records_per_s": total / pg_ws_s,
                "ratio_to_write_set": pg_ws_ratio,
                "raw_executemany_records_per_s": total / pg_raw,
                "ratio_to_raw": pg_ratio,
            }
            print(
                f"PostgreSQL ingest: {total / pg_ours:,.0f} records/s; write set replayed "
                f"bare {total / pg_ws_s:,.0f} records/s, ratio {pg_ws_ratio:.3f}; one-table "
                f"executemany {total / pg_raw:,.0f} records/s, ratio {pg_ratio:.3f}",
                flush=True,
            )
        # written now as well: the proof log below takes long, and the ingest figures
        # stand without it (bench.results keeps the previous proof figure meanwhile)
        write_result("ingest", result)
        print(f"building a {args.proof_size:,}-leaf log for proofs (not timed) ...", flush=True)
        result["proofs"] = _proofs(folder, args.proof_size)
        p = result["proofs"]
        print(
            f"inclusion proof at {p['size']:,} records: generate median "
            f"{p['generate_median_ms']:.3f} ms (p99 {p['generate_p99_ms']:.3f} ms), verify "
            f"median {p['verify_median_ms']:.3f} ms"
        )
    out = write_result("ingest", result)
    print(json.dumps(result, indent=2, sort_keys=True))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
