"""Network benchmark: real node processes on 127.0.0.1, gossiping blocks over HTTP.

Every node is a separate ``kpl node run`` process on a free local port; every
process this benchmark starts is stopped by its pid at the end, on errors too.
Figures are medians over ``BENCH_RUNS`` runs (default 3), each run on fresh
nodes, and ratios are to a limit measured on this machine in the same run:

* propagation, for each network size (default 4 and 16 authorities): every
  authority submits a batch of ``--prop-batch`` records at a steady period
  (by default such that ``--network-blocks`` blocks/s are sealed network-wide);
  for each block, the time from its sealer's store first holding it to the
  last other node's store holding it (``--watch store``, the default: each
  node's SQLite store read every ``--poll-interval``, by default 10 ms,
  through a read-only connection, which costs the nodes nothing; or
  ``--watch http``: each node's ``/v1/heads`` polled, by default every 2.5 ms
  per node, which at 16 nodes costs the nodes and this process a quarter of
  two cores). p50 and p99 in ms; a block not seen everywhere
  within ``--tail`` seconds counts as infinitely late. Gossip: every
  ``--gossip-interval`` s to ``--fanout`` peers (1 s and 2 by default, lower
  than ``init_network``'s 0.5 s and 3, which saturate two cores at 16 nodes).
  Goal: p99 under 1 s at 16 nodes. Also the nodes' CPU seconds per node per
  1,000 records submitted in the window (every record reaches every node, so
  this does not depend on how many nodes share the machine), in total and
  above the idle network's CPU (gossip rounds, heartbeats and, with
  ``--watch http``, this benchmark's polling; measured for ``--idle`` seconds
  before the load);
* catch-up: a fresh observer node (WDC) syncing ``--catchup-records`` records
  of ``realistic_blocks`` (4 chains) from two seed authorities that hold them
  and seal nothing meanwhile; records/s, and the ratio to applying the same
  blocks' wire bytes to an empty SQLite store in-process (``bench.ingest``);
  the node's pulls and blocks pulled (``/metrics``), and its resident memory
  at start and at its peak (``VmHWM``). Goals: ratio 0.8, under 200 MiB;
* submission: records/s from the first ``POST /v1/records`` (batches of
  ``--submit-batch``) to the last record committed, on one authority (with
  ``--submit-peers`` peers replicating), against the same node code driven
  in-process (``Node.submit``/``Node.seal``, no HTTP) on the same records; then
  p99 submit-to-committed latency at half the peak measured in that run,
  submitting small batches open-loop at a fixed rate (a record is committed
  when its node's head first shows the block holding it). Goals: 10,000
  records/s, p99 under 250 ms.

Usage: ``python -m bench.network [--quick] [--sizes 4,16] [--catchup-records N]``;
``--quick`` is 4 nodes only, 20,000 catch-up records and shorter phases.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import random
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from unittest import mock

import httpx

from bench.common import fresh_sqlite, percentile, process_memory, runs, write_result
from bench.ingest import encode_blocks, ingest
from kpledger.devtools.realistic import realistic_blocks
from kpledger.devtools.workload import PRICE_PER_CARAT, Network, Scenario
from kpledger.keys import save_key
from kpledger.ledger.blocks import Block
from kpledger.ledger.canonical import canonical_bytes, load_json
from kpledger.ledger.records import Record
from kpledger.ledger.state import ParcelStatus, State
from kpledger.ledger.store import Store
from kpledger.node.config import NodeConfig, dump_config, hash_token, write_config
from kpledger.node.local import NodeProcess, free_base_port, log_tail, stop_all
from kpledger.node.network import node_config_doc
from kpledger.node.node import Node

__all__ = ["Cluster", "Layout", "NodeSpec", "main", "write_network"]

ROOT = Path(__file__).resolve().parent.parent
#: authority codes for the propagation networks (the first ``size`` are used)
AUTHORITIES = (
    *("BW", "RU", "AE", "EU", "IN", "NA", "CD", "CA"),
    *("ZA", "AO", "SL", "GN", "LS", "TZ", "ZW", "AU"),
)
FRESH = "WDC"  # the observer that catches up
SEEDS = ("BW", "RU")  # the authorities it catches up from

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: every node process started, so that the last ``finally`` stops each one by pid
_STARTED: list[NodeProcess] = []


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class NodeSpec:
    code: str
    port: int
    peers: tuple[str, ...]
    authority: bool = True
    block_interval: float = 0.5
    heartbeat: float = 5.0
    gossip_interval: float = 0.5
    fanout: int = 3
    pull_batch: int = 256


@dataclass(frozen=True)
class Layout:
    root: Path
    configs: dict[str, Path]
    urls: dict[str, str]
    secrets: dict[str, dict[str, str]]
    bench_token: str  # an auditor token every node accepts (reading blocks)

    def db(self, code: str) -> Path:
        return self.root / code / "node.db"

    def operator(self, code: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.secrets[code]['operator_token']}",
            "Content-Type": "application/json",
        }

    def auditor(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bench_token}"}


def write_network(root: Path, net: Network, specs: Sequence[NodeSpec]) -> Layout:
    """A network folder like ``init_network``'s, for ``net``'s deterministic keys and registry.

    ``genesis.json`` is ``net.registry``; each node gets ``CODE/node.toml`` (and
    ``node.key`` if an authority) with its own peers and timing; every secret is
    in ``secrets.toml`` (mode 0600).
    """
    root.mkdir(parents=True)
    (root / "genesis.json").write_bytes(net.registry.to_bytes())
    urls = {s.code: f"http://127.0.0.1:{s.port}" for s in specs}
    tokens: dict[str, dict[str, str]] = {}
    for s in specs:
        tokens[s.code] = {
            "passphrase": secrets.token_urlsafe(16),
            "peer_token": secrets.token_urlsafe(24),
            "operator_token" if s.authority else "auditor_token": secrets.token_urlsafe(24),
        }
    bench_token = secrets.token_urlsafe(24)
    configs: dict[str, Path] = {}
    for s in specs:
        folder = root / s.code
        folder.mkdir()
        if s.authority:
            save_key(
                folder / "node.key", net.signers[s.code], tokens[s.code]["passphrase"].encode()
            )
        accepted = [
            {"role": "peer", "name": o.code, "sha256": hash_token(tokens[o.code]["peer_token"])}
            for o in specs
            if o.code != s.code
        ]
        accepted += [
            {
                "role": "auditor",
                "name": o.code,
                "sha256": hash_token(tokens[o.code]["auditor_token"]),
            }
            for o in specs
            if not o.authority
        ]
        if s.authority:
            operator = hash_token(tokens[s.code]["operator_token"])
            accepted.append({"role": "operator", "name": f"{s.code}-operator", "sha256": operator})
        accepted.append({"role": "auditor", "name": "bench", "sha256": hash_token(bench_token)})
        table: dict[str, Any] = {
            "code": s.code,
            "listen": f"127.0.0.1:{s.port}",
            "url": urls[s.code],
            "data_dir": ".",
            "registry": "../genesis.json",
        }
        if s.authority:
            table["key_file"] = "node.key"
        table["secrets"] = "../secrets.toml"
        doc = node_config_doc(
            table,
            peers={p: urls[p] for p in s.peers},
            tokens=accepted,
            timing={
                "blocks": {"interval": float(s.block_interval), "heartbeat": float(s.heartbeat)},
                "gossip": {
                    "fanout": s.fanout,
                    "interval": float(s.gossip_interval),
                    "batch": s.pull_batch,
                },
            },
        )
        configs[s.code] = write_config(folder / "node.toml", doc)
    secret_doc = {code: dict(entry) for code, entry in tokens.items()}
    text = dump_config(secret_doc, header="# secrets of a benchmark network (mode 0600)")
    fd = os.open(root / "secrets.toml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return Layout(root, configs, urls, tokens, bench_token)


class Cluster:
    """The node processes of one layout (``node.local.NodeProcess``), each stopped by pid."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.nodes: dict[str, NodeProcess] = {}

    def start(self, code: str) -> None:
        config = self.layout.configs[code]
        node = NodeProcess(code, config, self.layout.urls[code], config.parent / "node.log")
        _STARTED.append(node.start())
        self.nodes[code] = node

    def check(self) -> None:
        for code, node in self.nodes.items():
            if not node.alive and node.proc is not None:
                raise RuntimeError(
                    f"node {code} (pid {node.proc.pid}) exited with {node.proc.returncode}; "
                    f"its log ends:\n{log_tail(node.log, 15)}"
                )

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the running node processes have used so far."""
        total = 0.0
        for node in self.nodes.values():
            if node.proc is None:
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{node.proc.pid}/stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / _TICKS
        return total

    def rss(self, code: str, field: str = "VmHWM") -> int | None:
        """Resident memory (bytes) of ``code``'s running process: its peak (``VmHWM``),
        or now (``VmRSS``)."""
        node = self.nodes.get(code)
        if node is None or node.proc is None:
            return None
        return process_memory(node.proc.pid, field)

    def stop(self, code: str) -> None:
        node = self.nodes.pop(code, None)
        if node is not None:
            node.stop(10.0)

    def stop_all(self) -> None:
        stop_all(list(self.nodes.values()), 10.0)
        self.nodes.clear()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_all()


def _free_ports(n: int) -> list[int]:
    """``n`` consecutive ports free on 127.0.0.1 (``node.local.free_base_port``)."""
    base = free_base_port(n)
    return [base + 1 + i for i in range(n)]


def _cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return math.nan, math.nan
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def _busy(a: tuple[float, float], b: tuple[float, float]) -> float:
    return (b[0] - a[0]) / (b[1] - a[1]) if b[1] > a[1] else math.nan


def _ms(seconds: float) -> float:
    return seconds * 1e3


# ---------------------------------------------------------------- HTTP helpers


async def _wait_up(
    http: httpx.AsyncClient, cluster: Cluster, codes: Sequence[str], timeout: float
) -> dict[str, float]:
    """Wait until each node answers ``/healthz``; the time each first did."""
    up: dict[str, float] = {}
    deadline = time.perf_counter() + timeout

    async def probe(code: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            r = await http.get(cluster.layout.urls[code] + "/healthz", timeout=2.0)
            if r.status_code == 200:
                up.setdefault(code, time.perf_counter())

    while len(up) < len(codes):
        cluster.check()
        if time.perf_counter() > deadline:
            missing = sorted(set(codes) - set(up))
            raise TimeoutError(f"nodes {missing} did not answer within {timeout:.0f} s")
        await asyncio.gather(*(probe(c) for c in codes if c not in up))
        await asyncio.sleep(0.02)
    return up


async def _heads(http: httpx.AsyncClient, url: str) -> dict[str, dict[str, Any]]:
    r = await http.get(url + "/v1/heads")
    r.raise_for_status()
    heads: dict[str, dict[str, Any]] = load_json(r.content)["heads"]
    return heads


async def _size(http: httpx.AsyncClient, url: str, chain: str) -> tuple[int, int]:
    head = (await _heads(http, url)).get(chain)
    return (int(head["height"]), int(head["size"])) if head else (0, 0)


async def _wait_size(
    http: httpx.AsyncClient, url: str, chain: str, size: int, timeout: float
) -> float:
    """Poll every 10 ms until ``chain``'s log on the node holds ``size`` records."""
    deadline = time.perf_counter() + timeout
    while True:
        _, now = await _size(http, url, chain)
        if now >= size:
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{chain} holds {now} of {size} records after {timeout:.0f} s")
        await asyncio.sleep(0.01)


@dataclass
class HeadsWatch:
    """Polls nodes' ``/v1/heads``; remembers when each (chain, height) first showed on each."""

    http: httpx.AsyncClient
    urls: dict[str, str]
    interval: float
    first: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)
    seen: dict[str, dict[str, int]] = field(default_factory=dict)
    ready: set[str] = field(default_factory=set)
    polls: int = 0
    errors: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._poll(code, stop) for code in self.urls))

    async def _poll(self, code: str, stop: asyncio.Event) -> None:
        url = self.urls[code] + "/v1/heads"
        next_at = time.perf_counter() + random.uniform(0, self.interval)
        while not stop.is_set():
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at += self.interval
            try:
                r = await self.http.get(url)
                r.raise_for_status()
            except httpx.HTTPError:
                self.errors += 1
                continue
            now = time.perf_counter()
            self.polls += 1
            next_at = max(next_at, now)
            heads = load_json(r.content)["heads"]
            self.saw(code, {chain: int(head["height"]) for chain, head in heads.items()}, now)

    def saw(self, code: str, heights: dict[str, int], now: float) -> None:
        """``code`` holds ``heights`` at ``now``: note every height it had not shown before."""
        seen = self.seen.setdefault(code, {})
        if code not in self.ready:  # the first answer: what was there before we looked
            seen.update(heights)
            self.ready.add(code)
            return
        for chain, height in heights.items():
            before = seen.get(chain, 0)
            for h in range(before + 1, height + 1):
                self.first.setdefault((chain, h), {})[code] = now
            seen[chain] = max(before, height)


@dataclass
class StoreWatch(HeadsWatch):
    """Reads each node's SQLite store (read-only, beside the node's writer: WAL) for the
    height of ``chains``: a block is on a node once its header row is committed, which is
    when the node's ``/v1/heads`` shows it too. A read costs the node nothing and this
    process tens of microseconds, where a ``/v1/heads`` request costs the node about
    0.4 ms of CPU and its client about 0.9 ms: at 16 nodes polled 25 times a second each,
    the watch over HTTP took a quarter of the two cores it was measuring."""

    dbs: dict[str, Path] = field(default_factory=dict)
    chains: tuple[str, ...] = ()

    async def run(self, stop: asyncio.Event) -> None:
        query = " UNION ALL ".join(
            f"SELECT '{c}', (SELECT MAX(height) FROM headers WHERE chain = '{c}')"
            for c in self.chains
        )
        conns = {
            code: sqlite3.connect(f"file:{db}?mode=ro", uri=True, check_same_thread=False)
            for code, db in self.dbs.items()
        }
        try:
            await asyncio.gather(
                *(self._read(code, conn, query, stop) for code, conn in conns.items())
            )
        finally:
            for conn in conns.values():
                conn.close()

    async def _read(
        self, code: str, conn: sqlite3.Connection, query: str, stop: asyncio.Event
    ) -> None:
        next_at = time.perf_counter() + random.uniform(0, self.interval)
        while not stop.is_set():
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at += self.interval
            try:
                rows = conn.execute(query).fetchall()
            except sqlite3.Error:
                self.errors += 1
                continue
            now = time.perf_counter()
            self.polls += 1
            next_at = max(next_at, now)
            self.saw(code, {str(c): int(h) for c, h in rows if h is not None}, now)


def _body(records: Sequence[Record]) -> bytes:
    """A ``POST /v1/records`` body: each record as its officer submits it (``Record.draft``,
    confidential fields in clear; the writer's node commits them)."""
    return canonical_bytes({"records": [r.draft() for r in records]})


def _bodies(records: Sequence[Record], batch: int) -> list[bytes]:
    return [_body(records[i : i + batch]) for i in range(0, len(records), batch)]


# ---------------------------------------------------------------- record streams


def _holder(state: State, parcel_id: str) -> str | None:
    parcel = state.parcel(parcel_id)
    return None if parcel is None else parcel.custodian


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _registrations(net: Network, chain: str, count: int, sc: Scenario) -> list[Record]:
    """A party of ``chain``, then ``count`` parcel registrations into its custody."""
    party = f"{chain}-T0"
    out = [sc.party(chain, party)]
    for i in range(count):
        ct = 500 + (i * 7919) % 49_500
        price = PRICE_PER_CARAT.get(chain, 120)
        out.append(sc.register(chain, f"{chain}-Q{i}", party, ct, ct * price))
    return out


def _producer_stream(
    net: Network, chain: str, importers: Sequence[str], total: int, *, lag: int = 2000
) -> tuple[list[Record], list[Record]]:
    """The parties of a producer's chain, then ``total`` records of it, valid in order.

    The mix of ``realistic_blocks`` for a producer (registrations, transfers,
    splits, merges, export certificates), dated now, generated against an
    in-memory ledger. A record only uses parcels no record touched in the
    ``lag`` records before it, so that batches submitted concurrently (and so
    perhaps reordered by the node) never depend on each other.
    """
    rng = random.Random(11)
    sc = Scenario(net)
    start = _now()
    sc.clock = start
    parties = [sc.party(chain, f"{chain}-T{i}", "trader") for i in range(4)]
    sc.seal(chain, *parties)
    sc.clock = start
    out: list[Record] = []
    touched: dict[str, int] = {}  # parcel -> position of the last record touching it
    counter = 0

    def new_id() -> str:
        nonlocal counter
        counter += 1
        return f"{chain}-P{counter}"

    def add(block: list[Record], record: Record, *parcels: str) -> None:
        block.append(record)
        for pid in parcels:
            touched[pid] = len(out) + len(block)

    while len(out) < total:
        st = sc.ledger.state
        old = len(out) - lag
        pool = [
            p.id
            for p in st.parcels.values()
            if p.chain == chain and p.status is ParcelStatus.ACTIVE and touched[p.id] < old
        ]
        rng.shuffle(pool)
        block: list[Record] = []
        while len(block) < min(500, total - len(out)):
            r = rng.random()
            party = f"{chain}-T{rng.randrange(4)}"
            if r < 0.45 or len(pool) < 2:
                ct = rng.randrange(500, 50_000)
                price = PRICE_PER_CARAT.get(chain, 120)
                pid = new_id()
                add(block, sc.register(chain, pid, party, ct, ct * price), pid)
            elif r < 0.6:
                pid = pool.pop()
                add(block, sc.transfer(chain, pid, party), pid)
            elif r < 0.75:
                p = st.parcel(pool.pop())
                assert p is not None
                if p.weight < 2:
                    continue
                cents = sc.cents(p.value)
                w, v = p.weight // 2, cents // 2
                kids = [(new_id(), w, v), (new_id(), p.weight - w, cents - v)]
                add(block, sc.split(chain, p.id, kids), p.id, *(k[0] for k in kids))
            elif r < 0.85:
                # a merge takes one custodian's parcels (rule 1); else a transfer
                first = pool.pop()
                mate = next(
                    (q for q in reversed(pool) if _holder(st, q) == _holder(st, first)), None
                )
                if mate is None:
                    add(block, sc.transfer(chain, first, party), first)
                    continue
                pool.remove(mate)
                pid = new_id()
                add(block, sc.merge(chain, [first, mate], pid, party), first, mate, pid)
            else:
                p = st.parcel(pool.pop())
                assert p is not None
                counter += 1
                dest = rng.choice(list(importers))
                cert = sc.issue(chain, f"{chain}-C{counter}", dest, p.custodian or party, [p.id])
                add(block, cert, p.id)
        sc.seal(chain, *block)
        sc.clock = start
        out += block
    return parties, out[:total]


# ---------------------------------------------------------------- 1. propagation


@dataclass
class LoadStats:
    requests: int = 0
    records: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    late_ms: list[float] = field(default_factory=list)
    window_records: int = 0  # records accepted in the measured window
    measuring: bool = False


async def _steady_load(
    http: httpx.AsyncClient,
    layout: Layout,
    code: str,
    bodies: list[bytes],
    period: float,
    until: float,
    stats: LoadStats,
) -> None:
    """One batch every ``period`` seconds (random phase) to ``code``'s node until ``until``."""
    url = layout.urls[code] + "/v1/records"
    headers = layout.operator(code)
    next_at = time.perf_counter() + random.uniform(0, period)
    for body in bodies:
        if next_at >= until:
            return
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            stats.late_ms.append(_ms(-delay))
        next_at += period
        try:
            r = await http.post(url, content=body, headers=headers)
        except httpx.HTTPError:
            stats.errors += 1
            continue
        stats.requests += 1
        if r.status_code != 200:
            stats.errors += 1
            continue
        for res in load_json(r.content)["results"]:
            stats.statuses[str(res["status"])] += 1
            stats.records += 1
            stats.window_records += stats.measuring
    raise RuntimeError(f"{code}: the load ran out of records before the window ended")


def _propagation_samples(
    watch: HeadsWatch, codes: Sequence[str], window: tuple[float, float]
) -> tuple[list[float], int]:
    """Propagation (s) of each block sealed in ``window``; inf if not everywhere yet."""
    out: list[float] = []
    missing = 0
    for (chain, _height), seen in watch.first.items():
        sealed = seen.get(chain)
        if sealed is None or not window[0] <= sealed < window[1]:
            continue
        others = [seen.get(c) for c in codes if c != chain]
        if any(t is None for t in others):
            out.append(math.inf)
            missing += 1
        else:
            out.append(max(t for t in others if t is not None) - sealed)
    return out, missing


async def _propagation_run(
    cluster: Cluster, codes: Sequence[str], bodies: dict[str, list[bytes]], args: Any
) -> dict[str, Any]:
    n = len(codes)
    limits = httpx.Limits(max_connections=4 * n, max_keepalive_connections=4 * n)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as http:
        await _wait_up(http, cluster, codes, timeout=60 + 10 * n)
        urls = {c: cluster.layout.urls[c] for c in codes}
        watch = (
            StoreWatch(
                http,
                urls,
                args.poll_interval,
                dbs={c: cluster.layout.db(c) for c in codes},
                chains=tuple(codes),
            )
            if args.watch == "store"
            else HeadsWatch(http, urls, args.poll_interval)
        )
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch.run(stop))
        try:
            await asyncio.sleep(1.0)  # the watch sees every node at rest first
            # the network at rest: gossip rounds, heartbeats and this benchmark's polling
            idle0 = (cluster.cpu_seconds(), time.perf_counter())
            await asyncio.sleep(args.idle)
            idle1 = (cluster.cpu_seconds(), time.perf_counter())
            idle_cores = (idle1[0] - idle0[0]) / (idle1[1] - idle0[1])
            start = time.perf_counter()
            window = (start + args.warmup, start + args.warmup + args.duration)
            stats = LoadStats()
            loads = [
                asyncio.create_task(
                    _steady_load(
                        http, cluster.layout, c, bodies[c], args.prop_period, window[1], stats
                    )
                )
                for c in codes
            ]
            await asyncio.sleep(args.warmup)
            stats.measuring = True
            cpu0, polls0 = _cpu(), watch.polls
            ours0 = (cluster.cpu_seconds(), time.process_time(), time.perf_counter())
            await asyncio.gather(*loads)
            cpu1, polls1 = _cpu(), watch.polls
            ours1 = (cluster.cpu_seconds(), time.process_time(), time.perf_counter())
            cluster.check()
            deadline = time.perf_counter() + args.tail
            samples, missing = _propagation_samples(watch, codes, window)
            while missing and time.perf_counter() < deadline:
                await asyncio.sleep(0.2)
                cluster.check()
                samples, missing = _propagation_samples(watch, codes, window)
        finally:
            stop.set()
            await watcher
    refused = stats.records - stats.statuses["pending"]
    if stats.errors or refused:
        raise RuntimeError(
            f"load errors: {stats.errors} failed requests, {refused} records not accepted "
            f"({dict(stats.statuses)})"
        )
    return {
        "_samples": samples,
        "samples": len(samples),
        "not_everywhere_within_tail": missing,
        "p50_ms": _ms(percentile(samples, 50)),
        "p99_ms": _ms(percentile(samples, 99)),
        "max_ms": _ms(max(samples)) if samples else math.nan,
        "records_submitted": stats.records,
        "records_per_s": stats.records / (window[1] - start),
        "blocks_per_s": len(samples) / args.duration,
        "cpu_busy": _busy(cpu0, cpu1),
        "node_cores": (ours1[0] - ours0[0]) / (ours1[2] - ours0[2]),
        # every record submitted in the window reaches every node: the CPU one node
        # spends per 1,000 of them does not depend on how many nodes share the machine
        "cpu_s_per_node_per_1k_records": (ours1[0] - ours0[0])
        / len(codes)
        / max(1e-9, stats.window_records / 1000),
        "idle_node_cores": idle_cores,
        "cpu_s_per_node_per_1k_records_above_idle": (
            ours1[0] - ours0[0] - idle_cores * (ours1[2] - ours0[2])
        )
        / len(codes)
        / max(1e-9, stats.window_records / 1000),
        "bench_cores": (ours1[1] - ours0[1]) / (ours1[2] - ours0[2]),
        "heads_polls_per_s": (polls1 - polls0) / args.duration,
        "poll_errors": watch.errors,
        "late_submissions": len(stats.late_ms),
    }


def _propagation(args: Any, n_runs: int, folder: Path, size: int) -> dict[str, Any]:
    codes = AUTHORITIES[:size]
    net = Network.create(codes, ())
    per_node = math.ceil((args.warmup + args.duration) / args.prop_period) + 2
    sc = Scenario(net)
    sc.clock = _now()
    bodies = {
        c: _bodies(_registrations(net, c, per_node * args.prop_batch, sc), args.prop_batch)
        for c in codes
    }
    per_run: list[dict[str, Any]] = []
    for run in range(n_runs):
        ports = _free_ports(size)
        specs = [
            NodeSpec(
                c,
                ports[i],
                tuple(p for p in codes if p != c),
                block_interval=args.block_interval,
                gossip_interval=args.gossip_interval,
                fanout=args.fanout,
            )
            for i, c in enumerate(codes)
        ]
        layout = write_network(folder / f"prop-{size}-{run}", net, specs)
        with Cluster(layout) as cluster:
            for c in codes:
                cluster.start(c)
            r = asyncio.run(_propagation_run(cluster, codes, bodies, args))
        per_run.append(r)
        print(
            f"  {size} nodes, run {run + 1}: {r['samples']} blocks, propagation p50 "
            f"{r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms (max {r['max_ms']:.0f} ms); "
            f"{r['records_per_s']:.0f} records/s submitted; nodes used {r['node_cores']:.2f} "
            f"cores ({r['cpu_s_per_node_per_1k_records']:.2f} CPU s per node per 1,000 "
            f"records, {r['cpu_s_per_node_per_1k_records_above_idle']:.2f} above the "
            f"{r['idle_node_cores']:.2f} cores of the idle network), this process "
            f"{r['bench_cores']:.2f}, machine {r['cpu_busy']:.0%} busy",
            flush=True,
        )
    pooled = [x for r in per_run for x in r.pop("_samples")]
    return {
        "nodes": size,
        "batch_period_s": args.prop_period,
        "p50_ms": statistics.median(r["p50_ms"] for r in per_run),
        "p99_ms": statistics.median(r["p99_ms"] for r in per_run),
        "pooled_p50_ms": _ms(percentile(pooled, 50)),
        "pooled_p99_ms": _ms(percentile(pooled, 99)),
        "samples": len(pooled),
        "not_everywhere_within_tail": sum(r["not_everywhere_within_tail"] for r in per_run),
        "cpu_busy": statistics.median(r["cpu_busy"] for r in per_run),
        "node_cores": statistics.median(r["node_cores"] for r in per_run),
        "cpu_s_per_node_per_1k_records": statistics.median(
            r["cpu_s_per_node_per_1k_records"] for r in per_run
        ),
        "cpu_s_per_node_per_1k_records_above_idle": statistics.median(
            r["cpu_s_per_node_per_1k_records_above_idle"] for r in per_run
        ),
        "idle_node_cores": statistics.median(r["idle_node_cores"] for r in per_run),
        "runs": per_run,
    }


# ---------------------------------------------------------------- 2. catch-up


def _catchup_blocks(total: int) -> tuple[Network, list[Block]]:
    """``realistic_blocks(total)`` whose registry also lists the observer ``FRESH``.

    ``realistic_blocks`` makes its network with authorities only; the catching-up
    node must be a participant that seals nothing, so the registry it is built
    from gets ``FRESH`` as an auditor. The blocks are the same otherwise.
    """
    create = Network.create

    def with_observer(
        authorities: Sequence[str], observers: Sequence[str] = (), **kw: Any
    ) -> Network:
        return create(authorities, (*observers, FRESH), **kw)

    with mock.patch.object(Network, "create", with_observer):
        return realistic_blocks(total)


async def _counters(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, float]:
    """The node's pull and apply counters (``/metrics``)."""
    r = await http.get(url + "/metrics", headers=headers)
    r.raise_for_status()
    names = {
        "kpl_pulls_total": "pulls",
        "kpl_blocks_pulled_total": "blocks_pulled",
        "kpl_blocks_applied_total": "blocks_applied",
    }
    out = dict.fromkeys(names.values(), math.nan)
    for line in r.text.splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            out[names[name]] = float(value)
    return out


def _same_heads(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> bool:
    return {c: (h["height"], h["hash"]) for c, h in a.items()} == {
        c: (h["height"], h["hash"]) for c, h in b.items()
    }


async def _catchup_run(cluster: Cluster, target: dict[str, dict[str, Any]]) -> dict[str, float]:
    layout = cluster.layout
    for suffix in ("", "-wal", "-shm"):
        Path(f"{layout.db(FRESH)}{suffix}").unlink(missing_ok=True)
    url = layout.urls[FRESH]
    async with httpx.AsyncClient(timeout=30.0) as http:
        cpu0 = _cpu()
        spawned = time.perf_counter()
        cluster.start(FRESH)
        up = (await _wait_up(http, cluster, [FRESH], timeout=120))[FRESH]
        at_start = cluster.rss(FRESH, "VmRSS")
        deadline = time.perf_counter() + 600
        while True:
            heads = await _heads(http, url)
            if _same_heads(heads, target):
                done = time.perf_counter()
                cpu1 = _cpu()
                break
            cluster.check()
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{FRESH} has not caught up after 600 s: {heads}")
            await asyncio.sleep(0.05)
        for seed in SEEDS:  # the seeds sealed nothing meanwhile
            if not _same_heads(await _heads(http, layout.urls[seed]), target):
                raise RuntimeError(f"seed {seed} changed its heads during the catch-up")
        counts = await _counters(http, url, layout.auditor())
    peak = cluster.rss(FRESH)
    cluster.stop(FRESH)
    return {
        **counts,
        "rss_at_start_mib": math.nan if at_start is None else at_start / 2**20,
        "peak_rss_mib": math.nan if peak is None else peak / 2**20,
        "from_spawn_s": done - spawned,
        "from_up_s": done - up,
        "startup_s": up - spawned,
        "cpu_busy": _busy(cpu0, cpu1),
    }


def _catchup(args: Any, n_runs: int, folder: Path) -> dict[str, Any]:
    print(
        f"catch-up: building {args.catchup_records:,} records of realistic blocks (not timed) ...",
        flush=True,
    )
    net, blocks = _catchup_blocks(args.catchup_records)
    total = sum(len(b.records) for b in blocks)
    wire = encode_blocks(blocks)
    max_records = net.registry.params.max_block_records
    ports = _free_ports(3)
    specs = [  # seeds never seal a heartbeat during the benchmark; the fresh node seals nothing
        *(
            NodeSpec(
                seed,
                ports[i],
                tuple(p for p in (*SEEDS, FRESH) if p != seed),
                heartbeat=86_400.0,
                gossip_interval=args.gossip_interval,
                fanout=args.fanout,
            )
            for i, seed in enumerate(SEEDS)
        ),
        NodeSpec(
            FRESH,
            ports[2],
            SEEDS,
            authority=False,
            gossip_interval=args.gossip_interval,
            fanout=args.fanout,
        ),
    ]
    layout = write_network(folder / "catchup", net, specs)
    # in-process ingest of the same wire bytes; the first run builds the seeds' store
    ingest_s = [ingest(f"sqlite:///{layout.db(SEEDS[0])}", net.registry, wire, max_records)]
    for _ in range(n_runs - 1):
        path = fresh_sqlite(folder, "ingest.db")
        ingest_s.append(ingest(f"sqlite:///{path}", net.registry, wire, max_records))
    fresh_sqlite(folder, "ingest.db")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{layout.db(SEEDS[0])}{suffix}")
        if src.exists():
            shutil.copyfile(src, Path(f"{layout.db(SEEDS[1])}{suffix}"))
    print(
        f"  in-process ingest of the same blocks: {total / statistics.median(ingest_s):,.0f} "
        "records/s",
        flush=True,
    )
    per_run: list[dict[str, float]] = []
    with Cluster(layout) as cluster:
        for seed in SEEDS:
            cluster.start(seed)

        async def seeds_up() -> dict[str, dict[str, Any]]:
            async with httpx.AsyncClient(timeout=30.0) as http:
                await _wait_up(http, cluster, SEEDS, timeout=120)
                return await _heads(http, layout.urls[SEEDS[0]])

        target = asyncio.run(seeds_up())
        for run in range(n_runs):
            r = asyncio.run(_catchup_run(cluster, target))
            r["ingest_s"] = ingest_s[run]
            per_run.append(r)
            print(
                f"  run {run + 1}: caught up in {r['from_up_s']:.2f} s after answering "
                f"({r['startup_s']:.2f} s start-up): {total / r['from_up_s']:,.0f} records/s; "
                f"ratio to in-process ingest {r['ingest_s'] / r['from_up_s']:.3f}; "
                f"{r['pulls']:.0f} pulls, {r['blocks_pulled']:.0f} blocks pulled for "
                f"{len(blocks)}, {r['blocks_applied']:.0f} applied; peak RSS "
                f"{r['peak_rss_mib']:.0f} MiB ({r['rss_at_start_mib']:.0f} MiB at start); "
                f"machine {r['cpu_busy']:.0%} busy",
                flush=True,
            )
    up_s = statistics.median(r["from_up_s"] for r in per_run)
    spawn_s = statistics.median(r["from_spawn_s"] for r in per_run)
    ing_s = statistics.median(ingest_s)
    return {
        "records": total,
        "blocks": len(blocks),
        "wire_bytes": sum(len(w) for w in wire),
        "records_per_s": total / up_s,
        "records_per_s_from_spawn": total / spawn_s,
        "ingest_records_per_s": total / ing_s,
        "ratio_to_ingest": statistics.median(r["ingest_s"] / r["from_up_s"] for r in per_run),
        "ratio_to_ingest_from_spawn": statistics.median(
            r["ingest_s"] / r["from_spawn_s"] for r in per_run
        ),
        "startup_s": statistics.median(r["startup_s"] for r in per_run),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in per_run),
        "pulls": statistics.median(r["pulls"] for r in per_run),
        "blocks_pulled": statistics.median(r["blocks_pulled"] for r in per_run),
        "runs": per_run,
    }


# ---------------------------------------------------------------- 3. submission


def _in_process(
    config: NodeConfig, net: Network, setup: bytes, bodies: list[bytes]
) -> tuple[float, int]:
    """The node's submit and seal path without HTTP: seconds and records accepted.

    ``setup`` is submitted and sealed first, untimed.
    """
    store = Store.open(config.database_url, net.registry)
    chain = config.code
    try:
        node = Node(config, store, net.signers[chain])
        node.submit(load_json(setup)["records"])
        node.seal()
        accepted = 0
        start = time.perf_counter()
        for body in bodies:
            results = node.submit(load_json(body)["records"])
            accepted += sum(1 for r in results if r.status == "pending")
            if node.seal_due():
                node.seal()
        base = len(load_json(setup)["records"])
        for _ in range(10_000):
            head = store.head(chain)
            if (head.size if head else 0) >= base + accepted:
                break
            node.seal()
        return time.perf_counter() - start, accepted
    finally:
        store.close()


async def _post_all(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], bodies: Iterator[bytes]
) -> Counter[str]:
    statuses: Counter[str] = Counter()
    for body in bodies:
        r = await http.post(url, content=body, headers=headers)
        r.raise_for_status()
        statuses.update(str(x["status"]) for x in load_json(r.content)["results"])
    return statuses


async def _record_heights(
    http: httpx.AsyncClient, layout: Layout, code: str, start: int, end: int
) -> dict[str, int]:
    """Record id -> height of the block holding it, for blocks ``start``..``end``."""
    out: dict[str, int] = {}
    url = layout.urls[code] + f"/v1/chains/{code}/blocks"
    while start <= end:
        params = {"from": start, "limit": min(1000, end - start + 1)}
        r = await http.get(url, params=params, headers=layout.auditor())
        r.raise_for_status()
        blocks = load_json(r.content)["blocks"]
        if not blocks:
            break
        for b in blocks:
            height = int(b["header"]["height"])
            out.update((str(rec["id"]), height) for rec in b["records"])
            start = height + 1
    return out


async def _submission_run(
    cluster: Cluster,
    codes: Sequence[str],
    setup: bytes,
    peak_bodies: list[bytes],
    lat_bodies: list[bytes],
    lat_ids: list[list[str]],
    args: Any,
) -> dict[str, Any]:
    layout = cluster.layout
    code = codes[0]
    url = layout.urls[code]
    headers = layout.operator(code)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=120.0, limits=limits) as http:
        await _wait_up(http, cluster, codes, timeout=120)
        parties = await _post_all(http, url + "/v1/records", headers, iter([setup]))
        await _wait_size(http, url, code, parties["pending"], timeout=30)
        # ---- peak: batches back to back from a few connections, until all are committed
        _, base = await _size(http, url, code)
        feed = iter(peak_bodies)
        cpu0 = _cpu()
        start = time.perf_counter()
        tallies = await asyncio.gather(
            *(
                _post_all(http, url + "/v1/records", headers, feed)
                for _ in range(args.submit_concurrency)
            )
        )
        statuses = sum(tallies, Counter[str]())
        accepted = statuses["pending"]
        if accepted != sum(statuses.values()):
            raise RuntimeError(f"peak phase: not every record accepted: {dict(statuses)}")
        sent = time.perf_counter()
        done = await _wait_size(http, url, code, base + accepted, timeout=120 + accepted / 500)
        cpu1 = _cpu()
        peak = accepted / (done - start)
        # ---- latency: small batches open-loop at half that rate
        rate = peak / 2
        period = args.latency_batch / rate
        height0, base = await _size(http, url, code)
        watch = HeadsWatch(http, {code: url}, 0.01)
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch.run(stop))
        sent_at: list[float] = []
        try:
            await asyncio.sleep(0.3)
            t0 = time.perf_counter()
            tasks = []
            for i, body in enumerate(lat_bodies):
                delay = t0 + i * period - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_at.append(time.perf_counter())
                tasks.append(
                    asyncio.create_task(_post_all(http, url + "/v1/records", headers, iter([body])))
                )
            t_last = time.perf_counter()
            lat_statuses = sum(await asyncio.gather(*tasks), Counter[str]())
            lat_accepted = lat_statuses["pending"]
            if lat_accepted != sum(lat_statuses.values()):
                raise RuntimeError(f"latency phase: not every record accepted: {lat_statuses}")
            await _wait_size(http, url, code, base + lat_accepted, timeout=120)
            await asyncio.sleep(0.05)
        finally:
            stop.set()
            await watcher
        height1, _ = await _size(http, url, code)
        heights = await _record_heights(http, layout, code, height0 + 1, height1)
    latencies: list[float] = []
    unmapped = 0
    for i, ids in enumerate(lat_ids):
        for rid in ids:
            seen = watch.first.get((code, heights.get(rid, -1)), {}).get(code)
            if seen is None:
                unmapped += 1
            else:
                latencies.append(seen - sent_at[i])
    if unmapped:
        raise RuntimeError(f"latency phase: {unmapped} records not found in any block seen")
    n_lat = sum(len(ids) for ids in lat_ids)
    return {
        "records": accepted,
        "seconds": done - start,
        "submit_seconds": sent - start,
        "records_per_s": peak,
        "cpu_busy": _busy(cpu0, cpu1),
        "latency_rate_target": rate,
        "latency_rate_sent": n_lat / (t_last - t0) if t_last > t0 else math.nan,
        "latency_records": n_lat,
        "latency_blocks": height1 - height0,
        "latency_p50_ms": _ms(percentile(latencies, 50)),
        "latency_p99_ms": _ms(percentile(latencies, 99)),
        "latency_max_ms": _ms(max(latencies)),
    }


def _submission(args: Any, n_runs: int, folder: Path) -> dict[str, Any]:
    codes = ("BW", "RU", "AE")[: 1 + args.submit_peers]
    net = Network.create(("BW", "RU", "AE"), ())
    n_peak, n_lat = args.submit_records, args.latency_records
    print(f"submission: generating {n_peak + n_lat:,} records of BW (not timed) ...", flush=True)
    parties, stream = _producer_stream(net, "BW", ("RU", "AE"), n_peak + n_lat)
    setup = _body(parties)
    peak_bodies = _bodies(stream[:n_peak], args.submit_batch)
    lat_records = stream[n_peak:]
    lat_bodies = _bodies(lat_records, args.latency_batch)
    lat_ids = [
        [r.id for r in lat_records[i : i + args.latency_batch]]
        for i in range(0, len(lat_records), args.latency_batch)
    ]
    per_run: list[dict[str, Any]] = []
    for run in range(n_runs):
        ports = _free_ports(len(codes))
        specs = [
            NodeSpec(
                c,
                ports[i],
                tuple(p for p in codes if p != c),
                block_interval=args.submit_block_interval if c == "BW" else 0.5,
                gossip_interval=args.gossip_interval,
                fanout=args.fanout,
            )
            for i, c in enumerate(codes)
        ]
        layout = write_network(folder / f"submit-{run}", net, specs)
        config = NodeConfig.load(layout.configs["BW"])
        scratch = fresh_sqlite(folder, "inproc.db")
        inproc_s, inproc_n = _in_process(
            dataclasses.replace(config, database_url=f"sqlite:///{scratch}"),
            net,
            setup,
            peak_bodies,
        )
        fresh_sqlite(folder, "inproc.db")
        with Cluster(layout) as cluster:
            for c in codes:
                cluster.start(c)
            r = asyncio.run(
                _submission_run(cluster, codes, setup, peak_bodies, lat_bodies, lat_ids, args)
            )
        r["in_process_records_per_s"] = inproc_n / inproc_s
        r["ratio_to_in_process"] = r["records_per_s"] / r["in_process_records_per_s"]
        per_run.append(r)
        print(
            f"  run {run + 1}: {r['records_per_s']:,.0f} records/s submitted to committed "
            f"(in-process {r['in_process_records_per_s']:,.0f}; ratio "
            f"{r['ratio_to_in_process']:.3f}); at {r['latency_rate_target']:,.0f} records/s "
            f"latency p50 {r['latency_p50_ms']:.0f} ms, p99 {r['latency_p99_ms']:.0f} ms; machine "
            f"{r['cpu_busy']:.0%} busy at peak",
            flush=True,
        )
    return {
        "node": "BW",
        "peers": list(codes[1:]),
        "records": n_peak,
        "records_per_s": statistics.median(r["records_per_s"] for r in per_run),
        "in_process_records_per_s": statistics.median(
            r["in_process_records_per_s"] for r in per_run
        ),
        "ratio_to_in_process": statistics.median(r["ratio_to_in_process"] for r in per_run),
        "latency_rate": statistics.median(r["latency_rate_target"] for r in per_run),
        "latency_p50_ms": statistics.median(r["latency_p50_ms"] for r in per_run),
        "latency_p99_ms": statistics.median(r["latency_p99_ms"] for r in per_run),
        "runs": per_run,
    }


# ---------------------------------------------------------------- main


def _code_version() -> dict[str, Any]:
    """The commit measured, and whether the working tree differed from it (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": head, "modified_files": len(status.splitlines())}


def _strict_json(value: Any) -> Any:
    """``value`` with infinite or undefined floats as ``None`` (strict JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict_json(v) for v in value]
    return value


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def _overtime(_signum: int, _frame: FrameType | None) -> None:
    raise TimeoutError("the benchmark ran past --max-seconds")


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 nodes, 20k catch-up, short phases")
    ap.add_argument("--only", default="propagation,catchup,submission", help="phases to run")
    ap.add_argument("--sizes", help="propagation network sizes (default 4,16; quick 4)")
    ap.add_argument("--catchup-records", type=int, help="default 200000 (quick 20000)")
    ap.add_argument("--duration", type=float, help="measured seconds per propagation run")
    ap.add_argument("--warmup", type=float, default=3.0, help="load before measuring (s)")
    ap.add_argument("--tail", type=float, default=15.0, help="wait for late blocks (s)")
    ap.add_argument("--idle", type=float, default=5.0, help="CPU of the idle network (s)")
    ap.add_argument("--prop-batch", type=int, default=10, help="records per submission")
    ap.add_argument(
        "--prop-period",
        type=float,
        help="s between one node's batches (default: nodes / --network-blocks)",
    )
    ap.add_argument(
        "--network-blocks", type=float, default=4.0, help="blocks/s sealed network-wide"
    )
    ap.add_argument(
        "--watch",
        choices=("store", "http"),
        default="store",
        help="propagation: read heights from each node's SQLite store, or poll /v1/heads",
    )
    ap.add_argument(
        "--poll-interval",
        type=float,
        help="s between two reads of one node (default: store 0.01; http 0.0025 per node)",
    )
    ap.add_argument("--block-interval", type=float, default=0.2, help="propagation nodes")
    ap.add_argument("--gossip-interval", type=float, default=1.0, help="s (init_network: 0.5)")
    ap.add_argument("--fanout", type=int, default=2, help="peers per round (init_network: 3)")
    ap.add_argument("--submit-records", type=int, help="peak phase (default 50000)")
    ap.add_argument("--submit-batch", type=int, default=500)
    ap.add_argument("--submit-concurrency", type=int, default=2, help="requests in flight")
    ap.add_argument("--submit-peers", type=int, default=1, choices=(0, 1, 2))
    ap.add_argument("--submit-block-interval", type=float, default=0.1)
    ap.add_argument("--latency-records", type=int, help="latency phase (default 20000)")
    ap.add_argument("--latency-batch", type=int, default=20)
    ap.add_argument("--max-seconds", type=int, default=3600, help="give up after this long")
    ap.add_argument("--keep", type=Path, help="build the networks here and keep them (logs)")
    args = ap.parse_args()
    quick = args.quick
    args.sizes = [int(s) for s in (args.sizes or ("4" if quick else "4,16")).split(",")]
    if any(not 2 <= s <= len(AUTHORITIES) for s in args.sizes):
        ap.error(f"sizes must be 2..{len(AUTHORITIES)}")
    args.catchup_records = args.catchup_records or (20_000 if quick else 200_000)
    args.duration = args.duration or (10.0 if quick else 30.0)
    args.submit_records = args.submit_records or (10_000 if quick else 50_000)
    args.latency_records = args.latency_records or (4_000 if quick else 20_000)
    args.only = {p.strip() for p in args.only.split(",") if p.strip()}
    return args


def main() -> None:
    args = _args()
    n_runs = runs()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGALRM, _overtime)
    signal.alarm(args.max_seconds)
    result: dict[str, Any] = {
        "runs": n_runs,
        "cpus": os.cpu_count(),
        "loadavg_at_start": list(os.getloadavg()),
        "code": _code_version(),
        "quick": args.quick,
        "settings": {
            "propagation": {
                "block_interval_s": args.block_interval,
                "gossip_interval_s": args.gossip_interval,
                "gossip_fanout": args.fanout,
                "records_per_batch": args.prop_batch,
                "network_blocks_per_s": args.network_blocks,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "tail_s": args.tail,
                "watch": args.watch,
            },
            "catchup": {
                "gossip_interval_s": args.gossip_interval,
                "fanout": args.fanout,
                "pull_batch_blocks": 256,
                "seeds": list(SEEDS),
                "fresh": FRESH,
            },
            "submission": {
                "batch": args.submit_batch,
                "concurrency": args.submit_concurrency,
                "block_interval_s": args.submit_block_interval,
                "latency_batch": args.latency_batch,
                "peers": args.submit_peers,
            },
        },
    }
    try:
        with contextlib.ExitStack() as stack:
            if args.keep is not None:
                args.keep.mkdir(parents=True, exist_ok=True)
                folder = Path(tempfile.mkdtemp(prefix="kpl-bench-net-", dir=args.keep))
                print(f"networks in {folder}")
            else:
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="kpl-bench-net-"))
                folder = Path(tmp)
            if "propagation" in args.only:
                result["propagation"] = {}
                for size in args.sizes:
                    poll = args.poll_interval or (
                        0.01 if args.watch == "store" else max(0.01, size * 0.0025)
                    )
                    period = args.prop_period or size / args.network_blocks
                    result["settings"]["propagation"][f"poll_interval_s_{size}"] = poll
                    print(
                        f"propagation, {size} nodes (each submits {args.prop_batch} records "
                        f"every {period:.1f} s; heights read every {poll * 1e3:.0f} ms "
                        f"from {'each store' if args.watch == 'store' else '/v1/heads'}):"
                    )
                    p = _propagation(
                        argparse.Namespace(
                            **{**vars(args), "poll_interval": poll, "prop_period": period}
                        ),
                        n_runs,
                        folder,
                        size,
                    )
                    result["propagation"][str(size)] = p
                    print(
                        f"propagation at {size} nodes: p50 {p['p50_ms']:.0f} ms, p99 "
                        f"{p['p99_ms']:.0f} ms (all runs pooled: p50 {p['pooled_p50_ms']:.0f} ms, "
                        f"p99 {p['pooled_p99_ms']:.0f} ms; {p['samples']} blocks; "
                        f"{p['not_everywhere_within_tail']} not everywhere within "
                        f"{args.tail:.0f} s)",
                        flush=True,
                    )
            if "catchup" in args.only:
                c = _catchup(args, n_runs, folder)
                result["catchup"] = c
                print(
                    f"catch-up of {c['records']:,} records: {c['records_per_s']:,.0f} records/s "
                    f"({c['records_per_s_from_spawn']:,.0f} counting process start-up); "
                    f"in-process ingest {c['ingest_records_per_s']:,.0f} records/s; ratio "
                    f"{c['ratio_to_ingest']:.3f} ({c['ratio_to_ingest_from_spawn']:.3f})",
                    flush=True,
                )
            if "submission" in args.only:
                s = _submission(args, n_runs, folder)
                result["submission"] = s
                print(
                    f"submission: {s['records_per_s']:,.0f} records/s through POST /v1/records "
                    f"to committed; in-process {s['in_process_records_per_s']:,.0f} records/s; "
                    f"ratio {s['ratio_to_in_process']:.3f}; at half rate "
                    f"({s['latency_rate']:,.0f} records/s) submit-to-committed p50 "
                    f"{s['latency_p50_ms']:.0f} ms, p99 {s['latency_p99_ms']:.0f} ms",
                    flush=True,
                )
    finally:
        signal.alarm(0)
        stop_all(_STARTED, 10.0)
    result["loadavg_at_end"] = list(os.getloadavg())
    result = _strict_json(result)
    out = write_result("network", result)
    print(json.dumps(result, indent=2, sort_keys=True))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
