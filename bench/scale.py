"""Scale benchmark: ingest rate and history latency as a store grows to ``--records``.

``make bench BENCH_SCALE=10m`` runs it on 10,000,000 records (``100k`` and
``1m`` too; without ``BENCH_SCALE`` it is not run). Records are made and
sealed while the benchmark goes, a segment at a time, so no list of records
or blocks grows with the scale: a generator store seals each block (``chain.propose``
over the SQL store, as a node seals), and the measured store applies the
block's wire bytes with full validation (parse, signatures, links, roots,
every rule; one transaction per block), as ``bench.ingest`` does. Only that
last part is timed.

The mix, on four chains: registrations, transfers, splits and merges of the
parcels each chain registered recently (a bounded pool per chain: older
parcels stay in the store, untouched). At every tenth of ``--records`` (every
million at 10 M) a parcel with a 20-hop lineage is added, and the history of
it and of those before is read through ``store.lineage.history`` (what
``GET /v1/parcels/{id}/history`` calls): median and p99 of 200 reads.

Memory does grow: each store keeps its chains' state trees in memory (about
600 bytes per parcel slot, ``ledger.statetree``), and this process holds two
stores, so its resident memory is printed at each tenth (3.4 KB per record
in all in a run to 5,000,000 records with the earlier, larger slots: 10,000,000
records needed more than this 24 GiB machine has).

Prints, and writes to ``bench/out/scale.json``: the rate of each tenth, the
history latency and the process's resident memory at each tenth, and the
rate at the end over the rate at the start (the medians of the last and of
the first three tenths; goal: within 0.8 at 10 M of the rate at 100 k).

Usage: ``python -m bench.scale [--records N | --scale 100k|1m|10m]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import fresh_sqlite, percentile, process_memory, write_result
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block
from kpledger.ledger.canonical import canonical_bytes, load_json
from kpledger.ledger.chain import propose
from kpledger.ledger.records import Record
from kpledger.ledger.store import Store
from kpledger.node.gctune import tune_gc

__all__ = ["SCALES", "Generator", "main", "scale_records"]

SCALES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
CHAINS = ("BW", "RU", "AE", "EU")
BLOCK_RECORDS = 500
POOL = 2_000  # parcels per chain that later records may use
HOPS = 20
READS = 200


def scale_records(text: str) -> int:
    """``100k``, ``1m``, ``10m`` (or a plain number) as a number of records."""
    key = text.strip().lower()
    if key in SCALES:
        return SCALES[key]
    if key.isdigit() and int(key) > 0:
        return int(key)
    raise ValueError(f"scale {text!r}: expected one of {', '.join(SCALES)} or a number")


@dataclass
class _Parcel:
    weight: int
    value: int
    custodian: str


@dataclass
class Generator:
    """Seals blocks of the mix on a generator store; hands out their wire bytes."""

    net: Network
    store: Store
    rng: random.Random = field(default_factory=lambda: random.Random(3))
    pools: dict[str, dict[str, _Parcel]] = field(default_factory=dict)
    counter: int = 0
    kinds: dict[str, int] = field(default_factory=dict)  # records sealed, by kind

    def __post_init__(self) -> None:
        self.sc = Scenario(self.net)
        self.pools = {c: {} for c in CHAINS}

    def _new_id(self, chain: str) -> str:
        self.counter += 1
        return f"{chain}-S{self.counter}"

    def _party(self, chain: str) -> str:
        return f"{chain}-T{self.rng.randrange(4)}"

    def seal(self, chain: str, records: list[Record]) -> bytes:
        """Seal ``records`` as ``chain``'s next block (each must be accepted): its wire bytes."""
        self.store.prefetch(records)
        try:
            proposal = propose(
                self.store,
                self.net.registry,
                self.net.signer(chain),
                chain,
                records,
                self.sc.tick(),
            )
        finally:
            self.store.forget_prefetched()
        if proposal.rejected or proposal.deferred:
            bad = proposal.rejected[0][1] if proposal.rejected else "deferred records"
            raise RuntimeError(f"the scale mix made a record the rules refuse: {bad}")
        self.store.writer.commit(proposal.layer, proposal.rejected)
        for record in records:
            self.kinds[record.kind.value] = self.kinds.get(record.kind.value, 0) + 1
        return canonical_bytes(proposal.block.to_json())

    def parties(self) -> list[bytes]:
        return [
            self.seal(c, [self.sc.party(c, f"{c}-T{i}", "trader") for i in range(4)])
            for c in CHAINS
        ]

    def _register(self, chain: str, pool: dict[str, _Parcel]) -> Record:
        pid, party = self._new_id(chain), self._party(chain)
        weight = self.rng.randrange(500, 50_000)
        pool[pid] = _Parcel(weight, weight * 120, party)
        return self.sc.register(chain, pid, party, weight, weight * 120)

    def _one(self, chain: str, pool: dict[str, _Parcel], free: list[str]) -> Record:
        r = self.rng.random()
        if r < 0.4 or len(free) < 2:
            return self._register(chain, pool)
        pid = free.pop()
        p = pool.pop(pid)
        if r < 0.6:
            to = f"{chain}-T{(int(p.custodian[-1]) + self.rng.randrange(1, 4)) % 4}"
            pool[pid] = _Parcel(p.weight, p.value, to)
            return self.sc.transfer(chain, pid, to)
        if r < 0.8 and p.weight >= 2:
            w, v = p.weight // 2, p.value // 2
            kids = [(self._new_id(chain), w, v), (self._new_id(chain), p.weight - w, p.value - v)]
            for kid, kw, kv in kids:
                pool[kid] = _Parcel(kw, kv, p.custodian)
            return self.sc.split(chain, pid, kids)
        mate = next((q for q in free if pool[q].custodian == p.custodian), None)
        if mate is None:
            pool[pid] = p
            return self._register(chain, pool)
        free.remove(mate)
        m = pool.pop(mate)
        merged = self._new_id(chain)
        pool[merged] = _Parcel(p.weight + m.weight, p.value + m.value, p.custodian)
        return self.sc.merge(
            chain, [pid, mate], merged, p.custodian, p.weight + m.weight, p.value + m.value
        )

    def block(self, chain: str, size: int) -> bytes:
        """A block of ``size`` records of the mix on ``chain`` (a parcel used once per block)."""
        pool = self.pools[chain]
        while len(pool) > POOL:  # the oldest leave the pool (not the store)
            del pool[next(iter(pool))]
        free = list(pool)
        self.rng.shuffle(free)
        records = [self._one(chain, pool, free) for _ in range(size)]
        return self.seal(chain, records)

    def lineage(self, chain: str = "BW") -> tuple[bytes, str]:
        """A block holding a parcel registered and split ``HOPS`` times: its wire, the last id."""
        pid, party = self._new_id(chain), self._party(chain)
        weight = 2**HOPS * 1000
        records = [self.sc.register(chain, pid, party, weight, weight)]
        for _ in range(HOPS):
            half = weight // 2
            kids = [(self._new_id(chain), half, half), (self._new_id(chain), half, half)]
            records.append(self.sc.split(chain, pid, kids))
            pid, weight = kids[0][0], half
        return self.seal(chain, records), pid


def _apply(store: Store, wire: list[bytes], max_records: int) -> float:
    """Parse and apply ``wire`` to ``store`` with full validation: the seconds it took."""
    start = time.perf_counter()
    for data in wire:
        store.writer.apply(Block.from_json(load_json(data), max_records=max_records))
    return time.perf_counter() - start


def _rss_mib() -> float:
    """This process's resident memory now (0 where it cannot be read)."""
    return (process_memory() or 0) / 2**20


def _history(store: Store, subjects: list[str]) -> dict[str, float]:
    times: list[float] = []
    for i in range(READS):
        start = time.perf_counter()
        found = store.lineage.history(subjects[i % len(subjects)])
        times.append(time.perf_counter() - start)
        assert found is not None
    return {"median_ms": statistics.median(times) * 1e3, "p99_ms": percentile(times, 99) * 1e3}


def run(total: int, folder: Path, steps: int = 10) -> dict[str, Any]:
    net = Network.create(CHAINS, ())
    max_records = net.registry.params.max_block_records
    gen_store = Store.open(f"sqlite:///{fresh_sqlite(folder, 'generator.db')}", net.registry)
    path = fresh_sqlite(folder, "measured.db")
    store = Store.open(f"sqlite:///{path}", net.registry)
    gen = Generator(net, gen_store)
    step = max(total // steps, BLOCK_RECORDS)
    points: list[dict[str, Any]] = []
    subjects: list[str] = []
    done = 0
    try:
        _apply(store, gen.parties(), max_records)
        t0 = time.perf_counter()
        while done < total:
            seconds, made = 0.0, 0
            target = min(step, total - done)
            chain_i = 0
            while made < target:
                size = min(BLOCK_RECORDS, target - made)
                wire = [gen.block(CHAINS[chain_i % len(CHAINS)], size)]
                chain_i += 1
                if made + size >= target:
                    line, subject = gen.lineage()
                    wire.append(line)
                    subjects.append(subject)
                    size += HOPS + 1
                seconds += _apply(store, wire, max_records)
                made += size
            done += made
            point: dict[str, Any] = {
                "records": done,
                "seconds": seconds,
                "records_per_s": made / seconds,
                "history": _history(store, subjects),
                "rss_mib": _rss_mib(),
            }
            points.append(point)
            print(
                f"  {done:>12,} records: {point['records_per_s']:,.0f} records/s for the last "
                f"{made:,}; history median {point['history']['median_ms']:.2f} ms, p99 "
                f"{point['history']['p99_ms']:.2f} ms; resident memory {point['rss_mib']:,.0f} MiB "
                f"({time.perf_counter() - t0:.0f} s so far)",
                flush=True,
            )
    finally:
        gen_store.close()
        store.close()
    out = {
        "records": done,
        "disk_bytes": sum(p.stat().st_size for p in path.parent.glob(path.name + "*")),
        "kinds": dict(sorted(gen.kinds.items())),
        "points": points,
        # the medians of the first and the last three tenths: one tenth alone swings
        # with whatever else this shared machine runs
        "first_rate": statistics.median(p["records_per_s"] for p in points[:3]),
        "last_rate": statistics.median(p["records_per_s"] for p in points[-3:]),
        "history_median_ms_at_end": points[-1]["history"]["median_ms"],
        "history_p99_ms_at_end": points[-1]["history"]["p99_ms"],
        "rss_mib_at_end": points[-1]["rss_mib"],
    }
    out["rate_ratio_last_to_first"] = out["last_rate"] / out["first_rate"]
    return out


def main(argv: list[str] | None = None) -> int:
    tune_gc()  # as the node process does (node.gctune)
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scale", default=os.environ.get("BENCH_SCALE", "100k"))
    ap.add_argument("--records", type=int, help="overrides --scale")
    ap.add_argument("--steps", type=int, default=10, help="points measured on the way")
    args = ap.parse_args(argv)
    try:
        total = args.records or scale_records(args.scale)
    except ValueError as exc:
        ap.error(str(exc))
    print(f"scale: {total:,} records, sealed and applied a segment at a time ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="kpl-bench-scale-") as tmp:
        result = run(total, Path(tmp), args.steps)
    print(
        f"rate at the end {result['last_rate']:,.0f} records/s, at the start "
        f"{result['first_rate']:,.0f}: ratio {result['rate_ratio_last_to_first']:.2f} "
        f"(goal >= 0.8); history at {result['records']:,} records: median "
        f"{result['history_median_ms_at_end']:.2f} ms, p99 {result['history_p99_ms_at_end']:.2f} ms"
    )
    print(f"wrote {write_result('scale', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
