"""What commitments cost: the same blocks ingested with and without their disclosures.

Record format 2 commits each confidential field (DESIGN.md section 9), and
format 1 is gone, so the cost is measured as the work commitments add, on
the same records in the same run:

* **ingest** (every node, an uninvolved one included): the blocks of
  ``devtools.realistic`` parsed and applied with full validation, their
  confidential fields held as commitments and opened by no one;
* **parsing the commitments**: inside that ingest, the record parser's work
  on the committed fields (``Fields.commitment`` on each ``{"c": <hex>}``),
  timed alone over every committed field: what every node pays for them;
* **entitled ingest** (an auditor's node, entitled to every field): the same
  blocks, each followed by its disclosures as a peer's pull answers them
  (``GET /v1/disclosures``): parsed, each checked against the commitment in
  its record, kept, and the disclosure rules checked on arrival
  (``node.disclose.receive_disclosures``);
* **writer**: what committing costs the writing node, the salts keyed by its
  secret and the commitment hashes of every confidential field
  (``ledger.commit.seal_body`` on the records' clear bodies).

The kinds of work are timed block by block in turn (``side_by_side``), so
that each meets the same load on a shared machine, over ``BENCH_RUNS`` runs
(default 3); medians are printed, each cost as a share of the ingest of the
same run (the mean of the two stores' apply times: the same blocks, applied
twice). Bytes per record: the
records' wire bytes with commitments against the same records with their
fields in clear, and the SQLite store on disk without and with the
disclosures.

Usage: ``python -m bench.commitments [--records N]``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import fresh_sqlite, runs, timed, write_result
from bench.ingest import encode_blocks
from kpledger.devtools.realistic import realistic_blocks
from kpledger.ledger.blocks import Block
from kpledger.ledger.canonical import canonical_bytes, load_json, sha256
from kpledger.ledger.commit import confidential_paths, field_at, keyed_salts, open_body, seal_body
from kpledger.ledger.records import Record
from kpledger.ledger.schema import Fields
from kpledger.ledger.store import Store
from kpledger.node.disclose import receive_disclosures
from kpledger.node.gctune import tune_gc

__all__ = [
    "answers",
    "clear_bodies",
    "committed_fields",
    "disk_bytes",
    "main",
    "parse_commitments",
    "side_by_side",
    "writer",
]


def answers(blocks: list[Block]) -> list[tuple[str, bytes]]:
    """For each block, its chain and the pull answer carrying its records' disclosures
    (wire bytes, as ``GET /v1/disclosures`` sends them)."""
    sizes: dict[str, int] = {}
    out: list[tuple[str, bytes]] = []
    for b in blocks:
        chain = b.header.chain
        start = sizes.get(chain, 0)
        items = [
            {"index": start + i, "disclosure": d.to_json()}
            for i, r in enumerate(b.records)
            for d in r.disclosures
        ]
        sizes[chain] = start + len(b.records)
        answer = {"chain": chain, "next": sizes[chain], "disclosures": items}
        out.append((chain, canonical_bytes(answer)))
    return out


def clear_bodies(records: list[Record]) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, salt scope, clear body) of every record with confidential fields: what its
    writer committed."""
    return [
        (r.kind.value, f"{r.network}\n{r.chain}\n{r.id}", open_body(r.as_json(), r.disclosures))
        for r in records
        if r.disclosures
    ]


def writer(bodies: list[tuple[str, str, dict[str, Any]]], secret: bytes) -> float:
    """Seconds to commit every confidential field of ``bodies`` as a writer does."""

    def run() -> None:
        for kind, scope, body in bodies:
            seal_body(kind, body, salts=keyed_salts(secret, scope))

    return timed(run)


def committed_fields(records: list[Record]) -> list[tuple[dict[str, Any], str]]:
    """(the object holding it, its name) of every committed field of ``records``."""
    out: list[tuple[dict[str, Any], str]] = []
    for r in records:
        doc = r.as_json()
        for path in confidential_paths(doc):
            parent, _, name = path.rpartition(".")
            holder = field_at(doc, parent)
            assert isinstance(holder, dict)
            out.append((holder, name))
    return out


def parse_commitments(fields: list[tuple[dict[str, Any], str]]) -> float:
    """Seconds the record parser spends on ``fields`` (each a commitment)."""

    def run() -> None:
        for holder, name in fields:
            Fields(holder).commitment(name)

    return timed(run)


def side_by_side(
    plain_url: str,
    entitled_url: str,
    registry: Any,
    blocks: list[Block],
    secret: bytes,
) -> dict[str, float]:
    """Seconds of each kind of work, timed block by block in turn so that every kind
    meets the same load on a shared machine: ``ingest`` (a block parsed from its wire
    bytes and applied to the store at ``plain_url``), ``entitled_ingest`` (the same into
    the store at ``entitled_url``), ``intake`` (that block's disclosures received there
    after it, as a pull answers them), ``parse`` (the record parser's work on its
    committed fields) and ``writer`` (its records' fields committed by their writer)."""
    wire = encode_blocks(blocks)
    pulls = answers(blocks)
    work = [(clear_bodies(list(b.records)), committed_fields(list(b.records))) for b in blocks]
    limit = registry.params.max_block_records
    spent = dict.fromkeys(("ingest", "entitled_ingest", "intake", "parse", "writer"), 0.0)
    plain, entitled = Store.open(plain_url, registry), Store.open(entitled_url, registry)

    def apply(store: Store, data: bytes) -> None:
        store.writer.apply(Block.from_json(load_json(data), max_records=limit))

    try:
        for data, (chain, answer), (bodies, fields) in zip(wire, pulls, work, strict=True):
            start = time.perf_counter()
            apply(plain, data)
            applied = time.perf_counter()
            apply(entitled, data)
            entitled_applied = time.perf_counter()
            receive_disclosures(entitled, chain, load_json(answer))
            received = time.perf_counter()
            spent["ingest"] += applied - start
            spent["entitled_ingest"] += entitled_applied - applied
            spent["intake"] += received - entitled_applied
            spent["parse"] += parse_commitments(fields)
            spent["writer"] += writer(bodies, secret)
    finally:
        plain.close()
        entitled.close()
    return spent


def disk_bytes(path: Path) -> int:
    """The SQLite store's bytes on disk, its write-ahead log checkpointed."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def main() -> None:
    tune_gc()  # as the node process does (node.gctune)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=50_000)
    args = ap.parse_args()
    n_runs = runs()
    print(f"building {args.records:,} records of realistic blocks (not timed) ...", flush=True)
    net, blocks = realistic_blocks(args.records)
    records = [r for b in blocks for r in b.records]
    total = len(records)
    bodies = clear_bodies(records)
    fields = committed_fields(records)
    secret = sha256(b"kpledger-bench-salts")
    committed_bytes = sum(len(canonical_bytes(r.as_json())) for r in records)
    clear_bytes = sum(len(canonical_bytes(_clear_doc(r))) for r in records)
    result: dict[str, Any] = {
        "records": total,
        "records_with_disclosures": len(bodies),
        "disclosures": len(fields),
        "runs": n_runs,
    }
    timings: list[dict[str, float]] = []
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="kpl-bench-") as tmp:
        folder = Path(tmp)
        for _ in range(n_runs):
            plain_db = fresh_sqlite(folder, "plain.db")
            full_db = fresh_sqlite(folder, "entitled.db")
            run = side_by_side(
                f"sqlite:///{plain_db}", f"sqlite:///{full_db}", net.registry, blocks, secret
            )
            sizes["plain"], sizes["entitled"] = disk_bytes(plain_db), disk_bytes(full_db)
            timings.append(run)
            print("  run: " + ", ".join(f"{k} {v:.2f} s" for k, v in run.items()), flush=True)

    def median(key: str) -> float:
        return statistics.median(t[key] for t in timings)

    def ingest(t: dict[str, float]) -> float:
        """The run's ingest: the same blocks were applied twice, to each store."""
        return (t["ingest"] + t["entitled_ingest"]) / 2

    def share(key: str) -> float:
        return statistics.median(t[key] / ingest(t) for t in timings)

    result.update(
        {
            "ingest_records_per_s": total / statistics.median(ingest(t) for t in timings),
            "entitled_ingest_records_per_s": total
            / statistics.median(t["entitled_ingest"] + t["intake"] for t in timings),
            "writer_commit_records_per_s": len(bodies) / median("writer"),
            "parse_share_of_ingest": share("parse"),
            "disclosure_share_of_ingest": share("intake"),
            "writer_share_of_ingest": share("writer"),
            "wire_bytes_per_record_committed": committed_bytes / total,
            "wire_bytes_per_record_clear": clear_bytes / total,
            "disk_bytes_per_record": sizes["plain"] / total,
            "disk_bytes_per_record_entitled": sizes["entitled"] / total,
        }
    )
    r = result
    print(
        f"{total:,} records ({len(bodies):,} with {len(fields):,} committed fields), medians "
        f"of {n_runs} runs:\n"
        f"  ingest (every node): {r['ingest_records_per_s']:,.0f} records/s; parsing the "
        f"commitments is {r['parse_share_of_ingest']:.1%} of it (goal < 15 %)\n"
        f"  ingest with every disclosure checked and kept (an auditor's node): "
        f"{r['entitled_ingest_records_per_s']:,.0f} records/s; the disclosures add "
        f"{r['disclosure_share_of_ingest']:.1%} of ingest\n"
        f"  the writer's salts and commitments: {r['writer_commit_records_per_s']:,.0f} "
        f"records/s, {r['writer_share_of_ingest']:.1%} of ingest\n"
        f"  bytes per record: {clear_bytes / total:.0f} in clear, "
        f"{committed_bytes / total:.0f} committed on the wire; "
        f"{r['disk_bytes_per_record']:.0f} on disk, "
        f"{r['disk_bytes_per_record_entitled']:.0f} with the disclosures",
        flush=True,
    )
    out = write_result("commitments", result)
    print(json.dumps(result, indent=2, sort_keys=True))
    print(f"written to {out}")


def _clear_doc(record: Record) -> dict[str, Any]:
    """``record``'s document with its confidential fields in clear (a format-1 shape: for
    its size only)."""
    doc = dict(record.as_json())
    doc["body"] = open_body(doc, record.disclosures)
    return doc


if __name__ == "__main__":
    main()
