"""Harness of the network tests: real node processes on loopback.

Every test here runs ``python -m kpledger.cli.main node run`` processes on 127.0.0.1
through the shipped harness ``node.local`` (``NodeProcess``, ``free_base_port``;
configs edited with ``node.config.edit_config``), on ports checked free by
binding, with logs in ``tmp_path/logs`` (their tails are attached to the report
of a failed test). Everything started is stopped
at teardown by its pid: node processes, TCP proxies and fake peers.

Pieces:

* ``cluster(...)``: ``init_network`` (what ``kpl network init`` runs), node configs
  tuned for tests (short block interval, heartbeat and gossip interval), a
  ``NodeProc`` per node, clients with the right tokens, convergence waits;
* ``ChainWriter``: valid records for one chain (parties, parcels, transfers,
  splits), built the way ``devtools.workload.Scenario`` builds them;
* ``ProxyHub``: TCP proxies (one per directed pair of nodes, say) that can be
  cut, healed and pointed elsewhere;
* ``FakePeer``: an HTTP server that speaks the node-to-node protocol as a
  participant, and answers whatever the test tells it to.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from kpledger.ledger.blocks import Header
from kpledger.ledger.records import Kind, Record, make_record
from kpledger.ledger.registry import Registry
from kpledger.node.client import ClientError, NodeClient
from kpledger.node.config import NodeConfig, edit_config
from kpledger.node.local import START_TIMEOUT, NodeProcess, free_base_port, log_tail
from kpledger.node.network import NetworkLayout, init_network

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
STOP_TIMEOUT = 15.0
LOG_TAIL_LINES = 60

#: settings written into every node.toml unless a test asks otherwise
TUNING: dict[str, dict[str, Any]] = {
    "blocks": {"interval": 0.2, "heartbeat": 2.0},
    "gossip": {"interval": 0.25, "timeout": 2.0},
}

_LOGS = pytest.StashKey[list[Path]]()


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for path in item.stash.get(_LOGS, []):
            if path.exists():  # nodes never started have no log
                title = f"log {path.parent.name}/{path.name} (tail)"
                report.sections.append((title, log_tail(path)))
    return report


# ---------------------------------------------------------------- node processes

#: one node process; the shipped harness (``node.local``), also used by ``kpl demo``
NodeProc = NodeProcess


def head_summary(heads: dict[str, dict[str, Any]]) -> str:
    return " ".join(f"{c}:{h['height']}/{h['hash'][:8]}" for c, h in sorted(heads.items()))


class Cluster:
    """A network written by ``init_network`` and its node processes."""

    def __init__(self, root: Path, layout: NetworkLayout, logs: list[Path]) -> None:
        self.root = root
        self.layout = layout
        self.registry: Registry = layout.registry
        self.network_id = layout.registry.network_id
        self.secrets: dict[str, Any] = tomllib.loads(layout.secrets.read_text(encoding="utf-8"))
        self.roles = {p.code: p.role for p in layout.registry.participants}
        (root / "logs").mkdir(exist_ok=True)
        self.nodes: dict[str, NodeProc] = {}
        for code, config in layout.configs.items():
            log = root / "logs" / f"{code}.log"
            logs.append(log)
            self.nodes[code] = NodeProc(code, config, layout.urls[code], log)
        self._clients: list[NodeClient] = []
        self._readers: dict[str, NodeClient] = {}

    # ------------------------------------------------------------ configs
    def configure(self, code: str, change: Callable[[dict[str, Any]], None]) -> None:
        edit_config(self.nodes[code].config, change)

    def route(self, src: str, dst: str, url: str) -> None:
        """Make ``src`` reach its peer ``dst`` at ``url`` (a proxy, a fake)."""

        def change(doc: dict[str, Any]) -> None:
            for peer in doc["gossip"]["peers"]:
                if peer["code"] == dst:
                    peer["url"] = url
                    return
            doc["gossip"]["peers"].append({"code": dst, "url": url})

        self.configure(src, change)

    # ------------------------------------------------------------ tokens and clients
    def token(self, code: str, kind: str = "peer_token") -> str:
        value: str = self.secrets[code][kind]
        return value

    def passphrase(self, code: str) -> bytes:
        return str(self.secrets[code]["passphrase"]).encode()

    def operator(self, code: str, *, timeout: float = 10.0) -> NodeClient:
        """A client with ``code``'s operator token (submits to its chain)."""
        client = NodeClient(
            self.nodes[code].url, self.token(code, "operator_token"), timeout=timeout
        )
        self._clients.append(client)
        return client

    def reader_token(self, code: str) -> str:
        """A token ``code``'s node accepts for reading records and blocks of every chain."""
        other = next(c for c in self.nodes if c != code)
        return self.token(other)

    def reader(self, code: str) -> NodeClient:
        """A client of ``code``'s node for reading (kept: one per node)."""
        client = self._readers.get(code)
        if client is None:
            client = NodeClient(self.nodes[code].url, self.reader_token(code), timeout=10.0)
            self._readers[code] = client
            self._clients.append(client)
        return client

    def close_clients(self) -> None:
        for c in self._clients:
            c.close()
        self._clients.clear()
        self._readers.clear()

    # ------------------------------------------------------------ processes
    def start(self, *codes: str, timeout: float = START_TIMEOUT) -> None:
        """Start nodes (all at once) and wait until each answers /healthz."""
        chosen = codes or tuple(self.nodes)
        for code in chosen:
            self.nodes[code].start()
        for code in chosen:
            self.nodes[code].wait_ready(timeout)

    def stop(self, *codes: str) -> None:
        """SIGTERM the nodes (all at once) and wait for each to exit."""
        chosen = [self.nodes[c] for c in codes or tuple(self.nodes)]
        for n in chosen:
            n.terminate()
        for n in chosen:
            n.stop()

    def kill_all(self) -> None:
        for n in self.nodes.values():
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                n.kill()

    # ------------------------------------------------------------ observing
    def heads(self, code: str, http: httpx.Client | None = None) -> dict[str, dict[str, Any]]:
        url = f"{self.nodes[code].url}/v1/heads"
        response = (http or httpx).get(url, timeout=2.0)
        response.raise_for_status()
        heads: dict[str, dict[str, Any]] = response.json()["heads"]
        return heads

    def hash_at(self, code: str, chain: str, height: int) -> str | None:
        """The hash of the block of ``chain`` at ``height`` that ``code``'s node holds."""
        path = f"/v1/chains/{chain}/blocks"
        blocks = self.reader(code).get(path, **{"from": height, "limit": 1})["blocks"]
        if not blocks or blocks[0]["header"]["height"] != height:
            return None
        return Header.from_json(blocks[0]["header"]).hash.hex()

    def wait_holding(
        self, codes: Sequence[str], heads: dict[str, dict[str, Any]], *, timeout: float
    ) -> float:
        """Wait until every node of ``codes`` holds each block of ``heads`` (chain ->
        ``{height, hash}``) at its height; the seconds it took.

        Where every chain seals a heartbeat block every few seconds, heads read one
        node after another match only by luck on a loaded machine; this asks whether
        the nodes hold the same history up to the given heads.
        """
        start = time.monotonic()
        deadline = start + timeout
        while True:
            held = {}
            for code in codes:
                for chain, head in heads.items():
                    try:
                        held[(code, chain)] = self.hash_at(code, chain, head["height"])
                    except (httpx.HTTPError, ClientError) as exc:
                        held[(code, chain)] = f"error {exc.__class__.__name__}"
            if all(h == heads[chain]["hash"] for (_, chain), h in held.items()):
                return time.monotonic() - start
            if time.monotonic() > deadline:
                raise AssertionError(f"not every node holds {heads} after {timeout}s: {held}")
            time.sleep(0.1)

    def wait_converged(
        self,
        codes: Sequence[str],
        *,
        timeout: float,
        chains: Sequence[str] = (),
        at_least: dict[str, int] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Poll /v1/heads of ``codes`` until all answer the same heads; return them.

        ``chains`` must all be present; ``at_least`` maps a chain to a height
        every node must have reached.
        """
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        with httpx.Client(timeout=2.0) as http:
            while True:
                seen: dict[str, dict[str, dict[str, Any]]] = {}
                for code in codes:
                    try:
                        seen[code] = self.heads(code, http)
                    except httpx.HTTPError as exc:
                        last[code] = f"error {exc.__class__.__name__}"
                        break
                else:
                    last = {c: head_summary(h) for c, h in seen.items()}
                    first = seen[codes[0]]
                    same = all(h == first for h in seen.values())
                    enough = all(c in first for c in chains) and all(
                        c in first and first[c]["height"] >= n for c, n in (at_least or {}).items()
                    )
                    if same and enough:
                        return first
                if time.monotonic() > deadline:
                    lines = "\n".join(f"  {c}: {s}" for c, s in last.items())
                    raise AssertionError(f"nodes did not converge in {timeout}s:\n{lines}")
                time.sleep(0.05)

    def verify_stores(self, codes: Sequence[str], timeout: float = 120.0) -> None:
        """``kpl db verify`` on several stopped nodes' stores, in parallel; all must pass
        (each within ``timeout`` seconds: a replay takes time in proportion to the store)."""
        procs = {
            code: subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kpledger.cli.main",
                    "db",
                    "verify",
                    "--db",
                    self.nodes[code].db_url,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
            )
            for code in codes
        }
        failures = []
        for code, p in procs.items():
            try:
                out, _ = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
            if p.returncode != 0 or "verified" not in out:
                failures.append(f"{code}: exit {p.returncode}\n{out}")
        assert not failures, "kpl db verify failed:\n" + "\n".join(failures)


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Cluster]]:
    """``cluster(participants, auditors=("WDC",), blocks=..., gossip=...)``: a network on disk.

    Node configs get ``TUNING`` (updated with ``blocks`` and ``gossip``); no
    node runs until the test calls ``start``. Every node still running at
    teardown is killed by its pid.
    """
    made: list[Cluster] = []
    logs = request.node.stash.setdefault(_LOGS, [])

    def make(
        participants: Sequence[str],
        auditors: Sequence[str] = ("WDC",),
        *,
        blocks: dict[str, Any] | None = None,
        gossip: dict[str, Any] | None = None,
    ) -> Cluster:
        root = tmp_path / f"net{len(made)}"
        n = len(participants) + len(auditors)
        layout = init_network(root, list(participants), list(auditors), base_port=free_base_port(n))
        c = Cluster(root, layout, logs)
        tuning = {
            "blocks": {**TUNING["blocks"], **(blocks or {})},
            "gossip": {**TUNING["gossip"], **(gossip or {})},
        }

        if "startup_sync" in {f.name for f in dataclasses.fields(NodeConfig)}:
            tuning["node"] = {"startup_sync": 0.0}  # no waiting for peers before sealing

        def tune(doc: dict[str, Any]) -> None:
            for table, values in tuning.items():
                doc.setdefault(table, {}).update(values)

        for code in c.nodes:
            c.configure(code, tune)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close_clients()
        c.kill_all()


# ---------------------------------------------------------------- records


class ChainWriter:
    """Valid records for one authority's chain: parties, parcels, transfers, splits.

    It tracks what it wrote (not what was committed), so it only builds
    records that are valid if everything before them was accepted.
    """

    def __init__(self, network_id: str, chain: str, tag: str = "t") -> None:
        self.network_id = network_id
        self.chain = chain
        self.tag = tag
        self.serial = 0
        self.parties: list[str] = []
        self.parcels: dict[str, tuple[str, int, int]] = {}  # id -> (custodian, weight, value)
        self.spent: set[str] = set()

    def _record(self, kind: Kind, body: dict[str, Any]) -> Record:
        self.serial += 1
        return make_record(
            network=self.network_id,
            chain=self.chain,
            kind=kind,
            record_id=f"{self.tag}-{self.chain}-{self.serial}",
            time=utc_now(),
            body=body,
        )

    def _new_id(self, prefix: str) -> str:
        return f"{self.chain}-{self.tag}-{prefix}{self.serial + 1}"

    def party(self, role: str = "trader") -> Record:
        pid = self._new_id("T")
        self.parties.append(pid)
        return self._record(
            Kind.PARTY_REGISTER,
            {"party": pid, "name": f"Trader {pid}", "role": role, "address": "Main Street 1"},
        )

    def parcel(self, weight: int | None = None) -> Record:
        assert self.parties, "register a party first"
        pid = self._new_id("P")
        weight = weight or 1000 + self.serial % 9000
        value = weight * 134
        custodian = self.parties[0]
        self.parcels[pid] = (custodian, weight, value)
        return self._record(
            Kind.PARCEL_REGISTER,
            {
                "parcel": pid,
                "custodian": custodian,
                "weight": weight,
                "value": value,
                "hs": "7102.31",
                "mine": "Jwaneng",
                "produced": utc_now()[:10],
            },
        )

    def live(self) -> list[str]:
        return [p for p in self.parcels if p not in self.spent]

    def transfer(self, parcel: str | None = None) -> Record:
        pid = parcel or self.live()[0]
        custodian, weight, value = self.parcels[pid]
        to = next((p for p in self.parties if p != custodian), custodian)
        self.parcels[pid] = (to, weight, value)
        return self._record(Kind.PARCEL_TRANSFER, {"parcel": pid, "to": to})

    def split(self, parcel: str | None = None) -> Record:
        pid = parcel or next(p for p in self.live() if self.parcels[p][1] >= 2)
        custodian, weight, value = self.parcels[pid]
        self.spent.add(pid)
        w1, v1 = weight // 2, value // 2
        kids = []
        for w, v in ((w1, v1), (weight - w1, value - v1)):
            kid = f"{self.chain}-{self.tag}-C{len(self.parcels)}"
            self.parcels[kid] = (custodian, w, v)
            kids.append({"parcel": kid, "weight": w, "value": v})
        return self._record(Kind.PARCEL_SPLIT, {"parcel": pid, "children": kids})

    def mixed(self, n: int) -> list[Record]:
        """``n`` records: mostly registrations, some transfers and splits."""
        out: list[Record] = []
        if len(self.parties) < 2:
            out += [self.party(), self.party()]
        while len(out) < n:
            r = self.serial % 10
            live = self.live()
            if r == 3 and len(live) > 4:
                out.append(self.transfer(random.Random(self.serial).choice(live)))
            elif r == 7 and len(live) > 4:
                out.append(self.split(live[self.serial % len(live)]))
            else:
                out.append(self.parcel())
        return out


# ---------------------------------------------------------------- TCP proxies


class Proxy:
    """A TCP proxy on 127.0.0.1:``port`` to ``target``; can be cut and retargeted."""

    def __init__(self, hub: ProxyHub, name: str, target: int) -> None:
        self.hub = hub
        self.name = name
        self.target = target
        self.port = 0
        self.cut = False
        self.accepted = 0
        self.refused = 0
        self.server: asyncio.base_events.Server | None = None
        self.conns: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            self.refused += 1
            writer.transport.abort()
            return
        self.accepted += 1
        try:
            up_r, up_w = await asyncio.open_connection(HOST, self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_w)
        self.conns.update(pair)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(1 << 16):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                for w in pair:
                    w.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        finally:
            self.conns.difference_update(pair)

    def _abort_all(self) -> None:
        for w in list(self.conns):
            w.transport.abort()
        self.conns.clear()


class ProxyHub:
    """Many ``Proxy`` objects served by one asyncio loop in a thread of the test process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxies", daemon=True)
        self.thread.start()
        self.proxies: dict[str, Proxy] = {}

    def _call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def add(self, name: str, target: int) -> Proxy:
        proxy = Proxy(self, name, target)

        async def start() -> None:
            proxy.server = await asyncio.start_server(proxy._handle, HOST, 0)
            proxy.port = proxy.server.sockets[0].getsockname()[1]

        self._call(start)
        self.proxies[name] = proxy
        return proxy

    def set_cut(self, proxies: Sequence[Proxy], cut: bool) -> None:
        """Cut (refuse new connections, drop open ones) or heal ``proxies`` at one instant."""

        def apply() -> None:
            for p in proxies:
                p.cut = cut
                if cut:
                    p._abort_all()

        self._call(apply)

    def retarget(self, proxy: Proxy, port: int) -> None:
        def apply() -> None:
            proxy.target = port
            proxy._abort_all()

        self._call(apply)

    def close(self) -> None:
        async def shutdown() -> None:
            for p in self.proxies.values():
                p._abort_all()
                if p.server is not None:
                    p.server.close()

        with contextlib.suppress(Exception):
            self._call(shutdown)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def proxies() -> Iterator[ProxyHub]:
    hub = ProxyHub()
    yield hub
    hub.close()


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


# ---------------------------------------------------------------- fake peers


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a node that gave up on a slow answer closes the socket: expected here


class FakePeer:
    """An HTTP server that answers the node-to-node protocol as participant ``code``.

    ``claim`` is the heads it announces in answer to ``POST /v1/gossip``;
    ``serve_blocks(handler, chain, start, limit)`` writes the answer to
    ``GET /v1/chains/{chain}/blocks`` (by default: slices of ``chains``, the
    block JSON objects it holds). Every request is logged in ``requests`` as
    ``(monotonic time, method, path and query)``.
    """

    def __init__(self, network_id: str, code: str) -> None:
        self.network_id = network_id
        self.code = code
        self.claim: dict[str, dict[str, Any]] = {}
        self.chains: dict[str, list[dict[str, Any]]] = {}
        self.evidence: list[dict[str, Any]] = []
        self.serve_blocks: Callable[[BaseHTTPRequestHandler, str, int, int], None] = (
            self.default_blocks
        )
        self.requests: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._log(self)
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                if urlsplit(self.path).path == "/v1/gossip":
                    fake.send_json(self, fake.message())
                else:
                    fake.send_json(self, {"detail": "not here"}, 404)

            def do_GET(self) -> None:
                fake._log(self)
                parts = urlsplit(self.path)
                m = re.fullmatch(r"/v1/chains/([A-Z]{2,8})/blocks", parts.path)
                if m:
                    q = parse_qs(parts.query)
                    start = int(q.get("from", ["1"])[0])
                    limit = int(q.get("limit", ["100"])[0])
                    fake.serve_blocks(self, m[1], start, limit)
                elif parts.path == "/v1/evidence":
                    fake.send_json(self, {"evidence": fake.evidence})
                elif parts.path == "/v1/heads":
                    fake.send_json(self, fake.message())
                else:
                    fake.send_json(self, {"detail": "not here"}, 404)

        self.server = _QuietServer((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self._stop = threading.Event()
        self._pushers: list[threading.Thread] = []

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _log(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.requests.append((time.monotonic(), handler.command, handler.path))

    def message(self) -> dict[str, Any]:
        return {"network": self.network_id, "from": self.code, "heads": self.claim, "evidence": []}

    @staticmethod
    def send_json(handler: BaseHTTPRequestHandler, value: Any, status: int = 200) -> None:
        FakePeer.send_bytes(handler, json.dumps(value).encode(), status)

    @staticmethod
    def send_bytes(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def default_blocks(
        self, handler: BaseHTTPRequestHandler, chain: str, start: int, limit: int
    ) -> None:
        held = self.chains.get(chain, [])
        self.send_json(handler, {"blocks": held[start - 1 : start - 1 + limit]})

    def hits(self, method: str = "GET", path: str = "/v1/chains/") -> list[float]:
        """Times of the requests seen with ``method`` whose path starts with ``path``."""
        with self.lock:
            return [t for t, m, p in self.requests if m == method and p.startswith(path)]

    def push(self, url: str, token: str, interval: float) -> None:
        """Push our heads to the node at ``url`` every ``interval`` s, as ``code`` (a thread)."""

        def loop() -> None:
            with httpx.Client(timeout=2.0) as http:
                while not self._stop.wait(interval):
                    with contextlib.suppress(httpx.HTTPError):
                        http.post(
                            f"{url}/v1/gossip",
                            json=self.message(),
                            headers={"Authorization": f"Bearer {token}"},
                        )

        t = threading.Thread(target=loop, name=f"push-{self.code}", daemon=True)
        t.start()
        self._pushers.append(t)

    def close(self) -> None:
        self._stop.set()
        for t in self._pushers:
            t.join(timeout=5)
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_peer() -> Iterator[Callable[[str, str], FakePeer]]:
    """``fake_peer(network_id, code)``: a running ``FakePeer``, closed at teardown."""
    made: list[FakePeer] = []

    def make(network_id: str, code: str) -> FakePeer:
        fake = FakePeer(network_id, code)
        made.append(fake)
        return fake

    yield make
    for f in made:
        f.close()


def submit_all(client: NodeClient, records: Sequence[Record], batch: int = 250) -> list[str]:
    """Submit in batches; every record must be answered ``pending``; return the ids."""
    ids = []
    for i in range(0, len(records), batch):
        part = records[i : i + batch]
        results = client.submit(part)
        bad = [r for r in results if r["status"] != "pending"]
        assert not bad, f"records refused: {bad[:3]}"
        ids += [r.id for r in part]
    return ids


@pytest.fixture(scope="session")
def harness() -> SimpleNamespace:
    """The harness' helpers for test modules (a conftest cannot be imported reliably)."""
    return SimpleNamespace(
        ChainWriter=ChainWriter,
        NodeProc=NodeProc,
        free_base_port=free_base_port,
        log_tail=log_tail,
        port_of=port_of,
        submit_all=submit_all,
        utc_now=utc_now,
    )
