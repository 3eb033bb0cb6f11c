"""Query benchmark: lineage queries over HTTP, their growth with the store, and bundles.

Prints, and writes to ``bench/out/query.json``:

* requests/s of ``GET /v1/parcels/{id}/history`` for lineages of about 20 hops
  on a store of ``--records`` records, against a trivial route of the same app
  returning pre-serialized bytes, measured in the same run (medians over
  ``BENCH_RUNS`` runs), their ratio (goal 0.5), and the p99 latency of the
  history query open-loop at half its peak rate (goal under 20 ms);
* the server process's CPU milliseconds per request of each route during those
  runs, and their ratio: what the route costs, whatever else shares the cores
  (on a shared machine the throughput ratio also measures the client and the
  other load);
* median and p99 history latency of sequential requests at a tenth of
  ``--records`` and at ``--records``, and their ratio (logarithmic growth
  expected: about 1, far from the 10x of a linear scan);
* size and offline verification time (median over 20) of the bundle of a
  50-hop lineage (goal under 64 KB and under 50 ms).

The store holds ``realistic_blocks`` data followed by blocks, on the same
network, that build deep lineages: a parcel registered in Botswana, split again
and again, transferred, and exported under KP certificates from chain to chain.

The server is uvicorn in a subprocess (``python -m bench.query --serve DB PORT``)
on 127.0.0.1; the load comes from concurrent httpx clients in this process.

Usage: ``python -m bench.query [--records N] [--quick] [--duration S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import Response

from bench.common import fresh_sqlite, percentile, runs, write_result
from kpledger.api.app import create_app
from kpledger.devtools.realistic import realistic_blocks
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block
from kpledger.ledger.bundle import serialize_bundle, verify_bundle
from kpledger.ledger.records import Record
from kpledger.ledger.store import Store
from kpledger.ledger.store.bundles import build_bundle
from kpledger.node.config import NodeConfig
from kpledger.node.node import Node

__all__ = ["Server", "build_store", "main", "serve"]

CHAINS = ("BW", "RU", "AE", "EU")
SEED = 7  # realistic_blocks' default: the same network
QUERY_HOPS = 20
BUNDLE_HOPS = 50
LINEAGES = 8  # subjects of the throughput test, queried in turn
CONCURRENCY = 32


def _network() -> Network:
    return Network.create(CHAINS, (), seed=SEED)


def _replayed(net: Network, blocks: list[Block]) -> Scenario:
    """A scenario whose ledger holds ``blocks`` (verified again, in memory)."""
    sc = Scenario(net)
    for b in blocks:
        sc.ledger.append(b)
    last = max(b.header.time for b in blocks)
    sc.clock = datetime.fromisoformat(last.replace("Z", "+00:00")) + timedelta(minutes=1)
    sc.serial = 10**9  # record ids after those of the realistic blocks
    return sc


def _deep_blocks(sc: Scenario, count: int, hops: int, tag: str) -> tuple[list[Block], list[str]]:
    """``count`` lineages of ``hops`` splits each, crossing borders every fifth split.

    Returns the blocks and the final parcel of each lineage.
    """
    blocks: list[Block] = []
    serial = 0

    def new_id(chain: str) -> str:
        nonlocal serial
        serial += 1
        return f"{chain}-{tag}{serial}"

    where = 0
    heads = [new_id("BW") for _ in range(count)]
    blocks.append(
        sc.seal("BW", *(sc.register("BW", p, "BW-T0", 10**9, 131 * 10**9) for p in heads))
    )
    for hop in range(hops):
        chain = CHAINS[where]
        if hop and hop % 5 == 0:  # export to the next chain under a KP certificate
            dest = CHAINS[(where + 1) % len(CHAINS)]
            issues: list[Record] = []
            numbers: list[str] = []
            for p in heads:
                parcel = sc.ledger.state.parcel(p)
                assert parcel is not None
                number = new_id(chain).replace(f"-{tag}", f"-C{tag}")
                numbers.append(number)
                issues.append(sc.issue(chain, number, dest, parcel.custodian or "", [p]))
            blocks.append(sc.seal(chain, *issues))
            blocks.append(sc.seal(dest, *(sc.confirm(dest, n, f"{dest}-T1") for n in numbers)))
            where = (where + 1) % len(CHAINS)
            chain = dest
        splits: list[Record] = []
        nxt: list[str] = []
        for p in heads:
            parcel = sc.ledger.state.parcel(p)
            assert parcel is not None
            cents = sc.cents(parcel.value)
            w1, v1 = parcel.weight * 3 // 4, cents * 3 // 4
            keep, rest = new_id(chain), new_id(chain)
            splits.append(
                sc.split(chain, p, [(keep, w1, v1), (rest, parcel.weight - w1, cents - v1)])
            )
            nxt.append(keep)
        blocks.append(sc.seal(chain, *splits))
        heads = nxt
        if hop % 2 == 0:
            blocks.append(
                sc.seal(chain, *(sc.transfer(chain, p, f"{chain}-T{hop % 4}") for p in heads))
            )
    return blocks, heads


def build_store(path: Path, records: int) -> tuple[list[str], str, int]:
    """A store of about ``records`` records; returns query subjects, bundle subject, size."""
    net = _network()
    t0 = time.perf_counter()
    _, blocks = realistic_blocks(max(records - 550, 1000))
    sc = _replayed(net, blocks)
    deep, subjects = _deep_blocks(sc, LINEAGES, QUERY_HOPS, "Q")
    long, (bundle_subject,) = _deep_blocks(sc, 1, BUNDLE_HOPS, "B")
    # two rounds of empty blocks on every chain: each chain's last block with records
    # is witnessed by the others, as the cosigned checkpoints of a bundle need
    long += [sc.seal(chain) for _ in range(2) for chain in CHAINS]
    store = Store.open(f"sqlite:///{path}", net.registry)
    try:
        for b in (*blocks, *deep, *long):
            store.writer.apply(b)
    finally:
        store.close()
    total = sum(len(b.records) for b in (*blocks, *deep, *long))
    print(f"  built {total:,} records in {time.perf_counter() - t0:.0f} s", flush=True)
    return subjects, bundle_subject, total


# ---------------------------------------------------------------- the server


def serve(db: str, port: int) -> None:
    """Run the app over ``db`` with the trivial route added (the subprocess's entry)."""
    net = _network()
    folder = Path(db).parent
    config = NodeConfig(
        path=folder / "EU.toml",
        code="EU",
        host="127.0.0.1",
        port=port,
        url=f"http://127.0.0.1:{port}",
        data_dir=folder,
        database_url=f"sqlite:///{db}",
        registry=folder / "genesis.json",
        key_file=None,
        secrets=None,
    )
    store = Store.open(f"sqlite:///{db}", net.registry, create=False)
    app = create_app(Node(config, store, net.signers["EU"]))
    body = b'{"ok":true,"bench":"static"}'

    async def static() -> Response:
        return Response(body, media_type="application/json")

    app.add_api_route("/bench/static", static, methods=["GET"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, db: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.query", "--serve", str(db), str(self.port)], env=env
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/bench/static", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.close()
        raise RuntimeError("server did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# ---------------------------------------------------------------- the load


#: requests whose connection failed under them (a keep-alive closed as it was reused)
DROPPED = [0]


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _loaded(server: Server, paths: list[str], duration: float) -> tuple[float, float]:
    """Closed-loop requests/s, and the server's CPU milliseconds per request meanwhile."""
    cpu = _cpu_s(server.proc.pid)
    counted: list[int] = []
    rps = asyncio.run(_closed_loop(server.base, paths, duration, counted))
    return rps, (_cpu_s(server.proc.pid) - cpu) * 1e3 / max(1, counted[0])


async def _closed_loop(
    base: str, paths: list[str], duration: float, counted: list[int] | None = None
) -> float:
    """Requests/s of ``CONCURRENCY`` clients asking ``paths`` in turn for ``duration``
    (the number of requests answered is appended to ``counted``)."""
    done = 0
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        end = time.perf_counter() + duration

        async def worker(k: int) -> None:
            nonlocal done
            i = k
            while time.perf_counter() < end:
                try:
                    r = await client.get(paths[i % len(paths)])
                except httpx.TransportError:
                    # a kept-alive connection the server closed as it was reused: counted
                    # as a lost request (the run says how many), never as an answer
                    DROPPED[0] += 1
                    continue
                assert r.status_code == 200, r.text[:200]
                done += 1
                i += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))
        if counted is not None:
            counted.append(done)
        return done / (time.perf_counter() - start)


async def _open_loop(base: str, paths: list[str], rate: float, duration: float) -> list[float]:
    """Latencies (s) of requests sent at a fixed ``rate``, timed from their scheduled start."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def one(path: str, due: float) -> None:
            try:
                r = await client.get(path)
            except httpx.TransportError:  # once more on a fresh connection, timed from ``due``
                DROPPED[0] += 1
                r = await client.get(path)
            assert r.status_code == 200
            latencies.append(time.perf_counter() - due)

        tasks = []
        start = time.perf_counter()
        n = int(rate * duration)
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(paths[i % len(paths)], due)))
        await asyncio.gather(*tasks)
    return latencies


def _sequential(base: str, paths: list[str], n: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for p in paths[:2]:
            client.get(p)  # warm
        for i in range(n):
            start = time.perf_counter()
            r = client.get(paths[i % len(paths)])
            out.append(time.perf_counter() - start)
            assert r.status_code == 200
    return out


def _lineage_shape(base: str, path: str) -> dict[str, int]:
    doc: dict[str, Any] = httpx.get(f"{base}{path}", timeout=30).json()
    return {
        "ancestor_edges": len(doc["ancestors"]),
        "events": len(doc["events"]),
        "parcels": len(doc["parcels"]),
        "response_bytes": len(httpx.get(f"{base}{path}", timeout=30).content),
    }


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 records, shorter runs")
    ap.add_argument("--duration", type=float, default=None, help="seconds per load run")
    ap.add_argument("--serve", nargs=2, metavar=("DB", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    records = 100_000 if args.quick else args.records
    duration = args.duration or (3.0 if args.quick else 10.0)
    n_runs = runs()
    small_records = max(records // 10, 2000)
    result: dict[str, Any] = {"runs": n_runs, "duration_s": duration, "concurrency": CONCURRENCY}
    with tempfile.TemporaryDirectory(prefix="kpl-bench-q-") as tmp:
        folder = Path(tmp)
        latency: dict[str, dict[str, float]] = {}
        for label, size in (("small", small_records), ("large", records)):
            print(f"building a store of {size:,} records (not timed) ...", flush=True)
            db = fresh_sqlite(folder, f"{label}.db")
            subjects, bundle_subject, total = build_store(db, size)
            paths = [f"/v1/parcels/{s}/history" for s in subjects]
            server = Server(db)
            try:
                lat = _sequential(server.base, paths, 300)
                latency[label] = {
                    "records": total,
                    "median_ms": statistics.median(lat) * 1e3,
                    "p99_ms": percentile(lat, 99) * 1e3,
                }
                print(
                    f"  sequential history at {total:,} records: median "
                    f"{latency[label]['median_ms']:.2f} ms, p99 {latency[label]['p99_ms']:.2f} ms",
                    flush=True,
                )
                if label != "large":
                    continue
                result["records"] = total
                result["lineage"] = _lineage_shape(server.base, paths[0])
                hist: list[float] = []
                static: list[float] = []
                cpu_hist: list[float] = []
                cpu_static: list[float] = []
                for _ in range(n_runs):
                    rps, cpu_ms = _loaded(server, ["/bench/static"], duration)
                    static.append(rps)
                    cpu_static.append(cpu_ms)
                    rps, cpu_ms = _loaded(server, paths, duration)
                    hist.append(rps)
                    cpu_hist.append(cpu_ms)
                peak = statistics.median(hist)
                base = statistics.median(static)
                half = asyncio.run(_open_loop(server.base, paths, peak / 2, duration))
                result["throughput"] = {
                    "history_rps": peak,
                    "static_rps": base,
                    "ratio": peak / base,
                    "history_runs": hist,
                    "static_runs": static,
                    "open_loop_rate": peak / 2,
                    "open_loop_requests": len(half),
                    "p50_ms_at_half_peak": statistics.median(half) * 1e3,
                    "p99_ms_at_half_peak": percentile(half, 99) * 1e3,
                    # what a request costs the server, whatever else shares the cores
                    "server_cpu_ms_history": statistics.median(cpu_hist),
                    "server_cpu_ms_static": statistics.median(cpu_static),
                    "cpu_ratio": statistics.median(cpu_static) / statistics.median(cpu_hist),
                }
                print(
                    f"  history {peak:.0f} req/s, trivial route {base:.0f} req/s: ratio "
                    f"{peak / base:.2f}; at half peak p99 "
                    f"{result['throughput']['p99_ms_at_half_peak']:.1f} ms",
                    flush=True,
                )
            finally:
                server.close()
            store = Store.open(f"sqlite:///{db}", _network().registry, create=False)
            try:
                start = time.perf_counter()
                data = serialize_bundle(build_bundle(store, bundle_subject))
                build_s = time.perf_counter() - start
            finally:
                store.close()
            times = []
            verdict = None
            pinned = _network().registry  # the verifier's own registry: made once, not timed
            for _ in range(20):
                start = time.perf_counter()
                verdict = verify_bundle(data, registry=pinned, parcel=bundle_subject)
                times.append(time.perf_counter() - start)
            assert verdict is not None
            result["bundle"] = {
                "hops": BUNDLE_HOPS,
                "lineage_parcels": len(verdict.lineage),
                "records": verdict.records,
                "headers": verdict.headers,
                "bytes": len(data),
                "gzip_bytes": len(gzip.compress(data, compresslevel=6, mtime=0)),  # as sent
                "build_ms": build_s * 1e3,
                "verify_median_ms": statistics.median(times) * 1e3,
            }
        result["growth"] = {
            **latency,
            "median_ratio": latency["large"]["median_ms"] / latency["small"]["median_ms"],
            "p99_ratio": latency["large"]["p99_ms"] / latency["small"]["p99_ms"],
            "size_ratio": latency["large"]["records"] / latency["small"]["records"],
        }
    _report(result)
    result["dropped_connections"] = DROPPED[0]
    if DROPPED[0]:
        print(f"{DROPPED[0]} requests lost their connection under them (not counted as answers)")
    print(f"wrote {write_result('query', result)}")


def _report(r: dict[str, Any]) -> None:
    t, g, b, lin = r["throughput"], r["growth"], r["bundle"], r["lineage"]
    print(f"store: {r['records']:,} records; lineage queried: {lin}")
    print(
        f"history: {t['history_rps']:.0f} req/s; static route: {t['static_rps']:.0f} req/s; "
        f"ratio {t['ratio']:.2f} (goal 0.5)"
    )
    print(
        f"server CPU per request: history {t['server_cpu_ms_history']:.2f} ms, static route "
        f"{t['server_cpu_ms_static']:.2f} ms; ratio {t['cpu_ratio']:.2f}"
    )
    print(
        f"open loop at {t['open_loop_rate']:.0f} req/s (half peak): p50 "
        f"{t['p50_ms_at_half_peak']:.1f} ms, p99 {t['p99_ms_at_half_peak']:.1f} ms (goal < 20 ms)"
    )
    print(
        f"growth {g['small']['records']:,} -> {g['large']['records']:,} records "
        f"(x{g['size_ratio']:.1f}): median {g['small']['median_ms']:.2f} -> "
        f"{g['large']['median_ms']:.2f} ms (x{g['median_ratio']:.2f}), p99 "
        f"{g['small']['p99_ms']:.2f} -> {g['large']['p99_ms']:.2f} ms (x{g['p99_ratio']:.2f})"
    )
    print(
        f"bundle ({b['hops']} hops, {b['records']} records, {b['headers']} headers): "
        f"{b['bytes']:,} bytes, {b['gzip_bytes']:,} as sent gzip-compressed (goal < 65,536); "
        f"verify median {b['verify_median_ms']:.1f} ms "
        f"(goal < 50 ms)"
    )


if __name__ == "__main__":
    main()
