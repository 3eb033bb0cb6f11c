"""Artisanal benchmark: many small first sales merged into export lots, full validation.

Builds Sierra Leone's registries (a collector, ``--claims`` claims, a digger on
each) and ``ARTISANAL_PURCHASES`` (default 1,000,000) first sales of 0.10-5.00
ct, each block holding ``--lot`` purchases and the merge of them into one export
lot (``devtools.artisanal.purchase_stream``). Blocks are made and signed as
they are needed (not timed) and applied to an empty SQLite store with every rule
checked (A1-A3 on each purchase, mass and custody on each merge, signatures,
links, roots), one transaction per block: only ``writer.apply`` is timed.

Beside it, in the same run, the industrial ingest of ``realistic_blocks`` (mine
registrations, splits, merges, certificates) on the same machine, and the ratio.

Usage: ``python -m bench.artisanal [--lot N] [--claims N] [--industrial N]``;
``ARTISANAL_PURCHASES=20000`` for a quick pass.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import fresh_sqlite, timed, write_result
from kpledger.devtools.artisanal import purchase_stream, registries
from kpledger.devtools.realistic import realistic_blocks
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block, Header, seal
from kpledger.ledger.merkle import Frontier
from kpledger.ledger.records import Record
from kpledger.ledger.statetree import StateTree, parcels_acted_on
from kpledger.ledger.store import Store
from kpledger.node.gctune import tune_gc

__all__ = ["artisanal_blocks", "main"]

CHAIN = "SL"
DAY = "2026-03-01"


def artisanal_blocks(
    net: Network, total: int, *, lot: int, claims: int
) -> Iterator[tuple[Block, int]]:
    """The registries' blocks, then blocks of ``lot`` purchases and their merge, made and
    signed one at a time; with each block the number of purchases in it."""
    sc = Scenario(net)
    prev: Header | None = None
    frontier = Frontier()
    state = StateTree()
    clock = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def make(records: list[Record]) -> Block:
        nonlocal prev, frontier, clock
        clock += timedelta(seconds=1)
        for r in records:
            for parcel in parcels_acted_on(r, lambda _: ()):
                state.record(parcel, r.leaf)
        block, frontier = seal(
            signer=net.signer(CHAIN),
            network=net.network_id,
            chain=CHAIN,
            prev=prev,
            frontier=frontier,
            records=records,
            time=clock.strftime("%Y-%m-%dT%H:%M:%SZ"),
            witness=[],
            state=state.root(),
        )
        prev = block.header
        return block

    made = registries(sc, CHAIN, claims, "2026-01-01", "2026-12-31")
    limit = net.registry.params.max_block_records
    for i in range(0, len(made), limit):
        yield make(made[i : i + limit]), 0
    for records in purchase_stream(sc, CHAIN, total, claims=claims, lot_size=lot, day=DAY):
        yield make(records), sum(1 for r in records if r.kind.value == "parcel.purchase")


def _artisanal(folder: Path, total: int, lot: int, claims: int) -> dict[str, Any]:
    net = Network.create((CHAIN,), ("WDC",))
    store = Store.open(f"sqlite:///{fresh_sqlite(folder, 'artisanal.db')}", net.registry)
    spent = 0.0
    purchases = records = 0
    last = time.monotonic()
    try:
        for block, bought in artisanal_blocks(net, total, lot=lot, claims=claims):
            spent += timed(lambda b=block: store.writer.apply(b))  # type: ignore[misc]
            purchases += bought
            records += len(block.records)
            if time.monotonic() - last > 30:
                last = time.monotonic()
                print(f"  {purchases:,} purchases applied, {purchases / spent:,.0f}/s", flush=True)
    finally:
        store.close()
    return {
        "purchases": purchases,
        "records": records,
        "seconds": spent,
        "purchases_per_s": purchases / spent,
        "records_per_s": records / spent,
        "lot_size": lot,
        "claims": claims,
    }


def _industrial(folder: Path, n: int) -> dict[str, Any]:
    net, blocks = realistic_blocks(n)
    store = Store.open(f"sqlite:///{fresh_sqlite(folder, 'industrial.db')}", net.registry)
    try:
        spent = sum(timed(lambda b=b: store.writer.apply(b)) for b in blocks)  # type: ignore[misc]
    finally:
        store.close()
    total = sum(len(b.records) for b in blocks)
    return {"records": total, "records_per_s": total / spent}


def main() -> None:
    tune_gc()  # as the node process does (node.gctune)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lot", type=int, default=500, help="purchases per export lot (<= 999)")
    ap.add_argument("--claims", type=int, default=2_000, help="registered claims")
    ap.add_argument("--industrial", type=int, default=100_000, help="industrial records")
    args = ap.parse_args()
    total = int(os.environ.get("ARTISANAL_PURCHASES", "1000000"))
    with tempfile.TemporaryDirectory(prefix="kpl-bench-") as tmp:
        folder = Path(tmp)
        print(
            f"{total:,} first sales of 0.10-5.00 ct in lots of {args.lot}, "
            f"{args.claims:,} claims, SQLite, full validation ...",
            flush=True,
        )
        result = _artisanal(folder, total, args.lot, args.claims)
        industrial_n = min(args.industrial, max(total, 1_000))
        print(f"industrial ingest of {industrial_n:,} realistic records ...", flush=True)
        result["industrial"] = _industrial(folder, industrial_n)
    result["ratio_to_industrial"] = result["records_per_s"] / result["industrial"]["records_per_s"]
    print(
        f"artisanal ingest: {result['purchases_per_s']:,.0f} purchases/s "
        f"({result['records_per_s']:,.0f} records/s with the lot merges) for "
        f"{result['purchases']:,} purchases in {result['seconds']:.1f}s; industrial ingest "
        f"{result['industrial']['records_per_s']:,.0f} records/s; ratio "
        f"{result['ratio_to_industrial']:.2f}",
        flush=True,
    )
    out = write_result("artisanal", result)
    print(json.dumps(result, indent=2, sort_keys=True))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
