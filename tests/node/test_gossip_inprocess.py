"""Gossip and ``Node.receive`` in one process, peers answered by ``httpx.MockTransport``.

Fast and deterministic beside the real-process tests of this folder: a source
node holds a realistic history (four chains whose blocks witness each other),
a fresh node catches up from it through ``Gossip`` with an HTTP client whose
transport the test controls. Failures are injected at every await of a
catch-up (each request, each apply), and sync must resume afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from kpledger.api.app import create_app
from kpledger.devtools.realistic import realistic_blocks
from kpledger.devtools.workload import Network
from kpledger.ledger.errors import BlockError, InvalidData
from kpledger.ledger.store import Store
from kpledger.node.config import NodeConfig, PeerConfig, TokenConfig, hash_token
from kpledger.node.disclose import disclosures_json
from kpledger.node.gossip import INFORMED_HEADER, Gossip, _Claims
from kpledger.node.node import Node

SOURCE = "BW"
TARGET = "RU"
SOURCE_URL = "http://bw.test"


def config(code: str, folder: Path, **changes: Any) -> NodeConfig:
    base = NodeConfig(
        path=folder / f"{code}.toml",
        code=code,
        host="127.0.0.1",
        port=8100,
        url=f"http://{code.lower()}.test",
        data_dir=folder,
        database_url="sqlite://",
        registry=folder / "genesis.json",
        key_file=None,
        secrets=None,
        peers=(PeerConfig(SOURCE, SOURCE_URL),),
        pull_batch=3,
        peer_timeout=2.0,
        gossip_interval=0.02,
    )
    return replace(base, **changes)


@dataclass
class History:
    net: Network
    blocks: int
    folder: Path


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    folder = tmp_path_factory.mktemp("gossip-source")
    net, blocks = realistic_blocks(120, block_records=10)
    store = Store.open(f"sqlite:///{folder / 'source.db'}", net.registry)
    try:
        for block in blocks:
            store.writer.apply(block)
    finally:
        store.close()
    return History(net, len(blocks), folder)


@pytest.fixture
def source(history: History, tmp_path: Path) -> Iterator[Node]:
    db = tmp_path / "source.db"
    db.write_bytes((history.folder / "source.db").read_bytes())
    store = Store.open(f"sqlite:///{db}", history.net.registry)
    yield Node(config(SOURCE, tmp_path, peers=()), store, history.net.signers[SOURCE])
    store.close()


@pytest.fixture
def target(history: History, tmp_path: Path) -> Iterator[Node]:
    store = Store.open(f"sqlite:///{tmp_path / 'target.db'}", history.net.registry)
    yield Node(config(TARGET, tmp_path), store, history.net.signers[TARGET])
    store.close()


@dataclass
class Peer:
    """The source node as the transport answers it; ``fault`` may spoil one request."""

    node: Node
    requests: list[str] = field(default_factory=list)
    fault: Callable[[int, httpx.Request], httpx.Response | None] | None = None

    def message(self) -> dict[str, Any]:
        return {
            "network": self.node.registry.network_id,
            "from": self.node.config.code,
            "heads": self.node.heads(),
            "evidence": self.node.evidence_ids(),
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        if self.fault is not None:
            spoiled = self.fault(len(self.requests), request)
            if spoiled is not None:
                return spoiled
        path = request.url.path
        if request.method == "POST" and path == "/v1/gossip":
            return httpx.Response(200, json=self.message())
        if request.method == "GET" and path == "/v1/evidence":
            return httpx.Response(200, json={"evidence": self.node.evidence_json()})
        if request.method == "GET" and path.startswith("/v1/chains/"):
            chain = path.split("/")[3]
            start = int(request.url.params["from"])
            limit = int(request.url.params["limit"])
            return httpx.Response(200, content=self.node.blocks_json(chain, start, limit))
        return httpx.Response(404, json={"detail": "not here"})


def gossip_for(target: Node, peer: Peer, clock: Callable[[], float] | None = None) -> Gossip:
    client = httpx.AsyncClient(transport=httpx.MockTransport(peer.handle))
    if clock is None:
        return Gossip(target, client, "token")
    return Gossip(target, client, "token", clock=clock)


def synced(target: Node, source: Node) -> bool:
    return target.heads() == source.heads()


async def exchange_until_synced(gossip: Gossip, source: Node, attempts: int = 20) -> int:
    """Exchange with the source (ignoring its backoff) until synced; the attempts it took."""
    for attempt in range(1, attempts + 1):
        await gossip.exchange(gossip.peers[SOURCE])
        if synced(gossip.node, source):
            return attempt
    raise AssertionError(f"not synced after {attempts} exchanges: {gossip.node.heads()}")


# ---------------------------------------------------------------- a clean catch-up


def test_fresh_node_catches_up_with_witness_dependencies(source: Node, target: Node) -> None:
    peer = Peer(source)
    gossip = gossip_for(target, peer)
    assert asyncio.run(exchange_until_synced(gossip, source)) == 1
    pulls = [r for r in peer.requests if r.startswith("GET /v1/chains/")]
    assert pulls, peer.requests
    assert gossip.sync_status()[SOURCE]["behind"] == 0
    metrics = target.metrics.registry
    blocks = sum(h["height"] for h in source.heads().values())
    assert metrics.get_sample_value("kpl_pulls_total") == len(pulls)
    assert metrics.get_sample_value("kpl_blocks_pulled_total") == blocks  # each block once
    assert metrics.get_sample_value("kpl_blocks_applied_total") == blocks


# ---------------------------------------------------------------- failures at every await


def _count_requests(source: Node, target: Node) -> int:
    peer = Peer(source)
    asyncio.run(exchange_until_synced(gossip_for(target, peer), source))
    return len(peer.requests)


def _spoil(kind: str, request: httpx.Request) -> httpx.Response:
    if kind == "connect":
        raise httpx.ConnectError("connection refused", request=request)
    if kind == "timeout":
        raise httpx.ReadTimeout("read timed out", request=request)
    if kind == "status":
        return httpx.Response(500, json={"detail": "boom"})
    if kind == "garbage":
        return httpx.Response(200, content=b"\x00{not json")
    if kind == "shape":
        return httpx.Response(200, json={"blocks": "no", "heads": [1], "evidence": 3})
    raise AssertionError(kind)


KINDS = ("connect", "timeout", "status", "garbage", "shape")


@pytest.mark.timeout(300)
def test_sync_resumes_after_a_failure_at_any_request(
    history: History, tmp_path: Path, source: Node
) -> None:
    """Spoil the n-th request of the catch-up, for every n, the kinds of failure in turn."""
    probe = Store.open(f"sqlite:///{tmp_path / 'probe.db'}", history.net.registry)
    try:
        total = _count_requests(
            source, Node(config(TARGET, tmp_path), probe, history.net.signers[TARGET])
        )
    finally:
        probe.close()
    assert total >= 5
    for n in range(1, total + 1):
        for kind in (KINDS[n % len(KINDS)],):
            db = tmp_path / f"t-{kind}-{n}.db"
            store = Store.open(f"sqlite:///{db}", history.net.registry)
            try:
                node = Node(config(TARGET, tmp_path), store, history.net.signers[TARGET])
                peer = Peer(source)
                peer.fault = lambda i, r, n=n, kind=kind: _spoil(kind, r) if i == n else None
                gossip = gossip_for(node, peer)
                asyncio.run(exchange_until_synced(gossip, source))
                assert len(peer.requests) >= n, (kind, n)
                assert gossip.sync_status()[SOURCE]["behind"] == 0
            finally:
                store.close()
                db.unlink()


class Flaky:
    """``Node.receive`` that fails on its n-th call with ``error`` (then works again)."""

    def __init__(self, node: Node, n: int, error: BaseException) -> None:
        self.real = node.receive
        self.n = n
        self.calls = 0
        self.error = error

    def __call__(self, chain: str, values: Any) -> Any:
        self.calls += 1
        if self.calls == self.n:
            raise self.error
        return self.real(chain, values)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_sync_resumes_after_a_failing_apply(source: Node, target: Node, n: int) -> None:
    peer = Peer(source)
    gossip = gossip_for(target, peer)
    flaky = Flaky(target, n, RuntimeError("Attempted to exit a cancel scope that isn't current"))
    target.receive = flaky  # type: ignore[method-assign]
    asyncio.run(exchange_until_synced(gossip, source))
    assert flaky.calls > n


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "error",
    [RuntimeError("Attempted to exit a cancel scope that isn't current"), asyncio.CancelledError()],
    ids=["runtime-error", "leaked-cancel"],
)
def test_gossip_loop_survives_failed_rounds(
    source: Node, target: Node, error: BaseException
) -> None:
    """The loop itself (not the test) goes on after a round blew up, and syncs."""
    peer = Peer(source)
    gossip = gossip_for(target, peer)
    flaky = Flaky(target, 2, error)
    target.receive = flaky  # type: ignore[method-assign]
    gossip.round = _failing_once(gossip.round, error)  # type: ignore[method-assign]

    async def scenario() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(gossip.run(stop))
        try:
            async with asyncio.timeout(45):
                while not synced(target, source):
                    assert not loop.done(), "the gossip loop ended"
                    await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.wait_for(loop, 10)

    asyncio.run(scenario())
    assert flaky.calls > 2


def _failing_once(real: Callable[[], Any], error: BaseException) -> Callable[[], Any]:
    calls = 0

    async def round_() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise error
        await real()

    return round_


# ---------------------------------------------------------------- staleness


def test_healthz_says_how_far_behind(source: Node, target: Node) -> None:
    peer = Peer(source)
    peer.fault = lambda i, r: (
        httpx.Response(503, json={"detail": "down"})
        if r.url.path.startswith("/v1/chains/")
        else None
    )
    now = [1000.0]
    gossip = gossip_for(target, peer, clock=lambda: now[0])
    asyncio.run(gossip.exchange(gossip.peers[SOURCE]))
    client = TestClient(create_app(target, gossip))
    health = client.get("/healthz").json()
    bw = health["sync"][SOURCE]
    assert bw["height"] == 0
    assert bw["best_announced"] == source.heads()[SOURCE]["height"] > 0
    assert bw["behind"] == bw["best_announced"]
    assert bw["stale"] is False  # behind for less than the staleness delay
    now[0] += 60  # a minute without progress
    health = client.get("/healthz").json()
    assert health["stale"] is True
    assert health["sync"][SOURCE]["stale"] is True
    assert health["sync"][SOURCE]["since_progress"] >= 60

    peer.fault = None
    asyncio.run(exchange_until_synced(gossip, source))
    health = client.get("/healthz").json()
    assert health["stale"] is False
    assert {s["behind"] for s in health["sync"].values()} == {0}


def test_audit_report_says_how_far_behind(history: History, tmp_path: Path, source: Node) -> None:
    """The audit report carries the same per-chain ``sync`` as /healthz: findings computed
    on a chain the node is behind on say so."""
    token = "auditor-token-for-the-sync-test"
    tokens = (TokenConfig("auditor", "wdc-auditor", hash_token(token)),)
    store = Store.open(f"sqlite:///{tmp_path / 'audited.db'}", history.net.registry)
    try:
        node = Node(config(TARGET, tmp_path, tokens=tokens), store, history.net.signers[TARGET])
        peer = Peer(source)
        peer.fault = lambda i, r: (
            httpx.Response(503, json={"detail": "down"})
            if r.url.path.startswith("/v1/chains/")
            else None
        )
        gossip = gossip_for(node, peer)
        asyncio.run(gossip.exchange(gossip.peers[SOURCE]))
        client = TestClient(create_app(node, gossip))
        auth = {"Authorization": f"Bearer {token}"}
        report = client.get("/v1/audit/report", headers=auth)
        assert report.status_code == 200, report.text
        sync = report.json()["sync"]
        assert set(sync) == set(client.get("/healthz").json()["sync"])
        best = source.heads()[SOURCE]["height"]
        assert sync[SOURCE]["height"] == 0
        assert sync[SOURCE]["best_announced"] == sync[SOURCE]["behind"] == best > 0

        peer.fault = None
        asyncio.run(exchange_until_synced(gossip, source))
        sync = client.get("/v1/audit/report", headers=auth).json()["sync"]
        assert {s["behind"] for s in sync.values()} == {0}
        assert sync[SOURCE]["height"] == best
    finally:
        store.close()


# ---------------------------------------------------------------- Node.receive


def _blocks(source: Node, chain: str, start: int, limit: int) -> list[Any]:
    answer: list[Any] = json.loads(source.blocks_json(chain, start, limit))["blocks"]
    return answer


def _in_order(source: Node) -> list[tuple[str, Any]]:
    """Every block of the source, in an order valid to apply (by witnessed heights)."""
    pending = {c: _blocks(source, c, 1, 1000) for c in source.heads()}
    out: list[tuple[str, Any]] = []
    held = dict.fromkeys(pending, 0)
    while any(pending.values()):
        for chain, blocks in pending.items():
            while blocks and all(
                held.get(w["chain"], 0) >= w["height"] for w in blocks[0]["header"]["witness"]
            ):
                out.append((chain, blocks.pop(0)))
                held[chain] += 1
    return out


def test_receive_holds_out_of_order_blocks_until_the_gap_fills(source: Node, target: Node) -> None:
    order = _in_order(source)
    i = next(k for k in range(len(order) - 1) if order[k][0] == order[k + 1][0])
    for chain, block in order[:i]:
        assert target.receive(chain, [block]).applied == 1
    chain, early = order[i]
    _, late = order[i + 1]
    held = target.receive(chain, [late])
    assert (held.applied, held.waiting) == (0, 1)
    assert (chain, early["header"]["height"]) in held.missing
    filled = target.receive(chain, [early])
    assert (filled.applied, filled.waiting) == (2, 0)
    for chain, block in order[i + 2 :]:
        target.receive(chain, [block])
    assert target.heads() == source.heads()


def test_receive_refuses_a_tampered_block_and_keeps_the_ones_before(
    source: Node, target: Node
) -> None:
    for chain, block in _in_order(source):
        if chain == SOURCE and block["header"]["height"] == 2:
            bad = json.loads(json.dumps(block))
            bad["sig"] = ("00" if bad["sig"][:2] != "00" else "11") + bad["sig"][2:]
            with pytest.raises(InvalidData):
                target.receive(chain, [bad])
            assert target.heads()[SOURCE]["height"] == 1
            break
        target.receive(chain, [block])
    else:
        raise AssertionError("BW has no block 2")


def test_receive_refuses_a_block_of_another_chain(source: Node, target: Node) -> None:
    with pytest.raises(BlockError, match="asked for RU"):
        target.receive("RU", _blocks(source, SOURCE, 1, 1))
    assert target.heads() == {}


def test_applied_blocks_call_on_applied(source: Node, target: Node) -> None:
    calls: list[tuple[list[tuple[str, int]], frozenset[str] | None]] = []
    target.on_applied = lambda blocks, informed: calls.append((list(blocks), informed))
    (chain, first), (chain2, second) = _in_order(source)[:2]
    target.receive(chain, [first])
    target.receive(chain, [first])  # known: nothing new applied
    target.receive(chain2, [second], informed=frozenset({"BW", "AE"}))
    assert calls == [
        ([(chain, 1)], None),
        ([(chain2, second["header"]["height"])], frozenset({"BW", "AE"})),
    ]


# ---------------------------------------------------------------- gossip messages


def test_pushed_heads_make_the_node_pull_from_the_sender(source: Node, target: Node) -> None:
    peer = Peer(source)
    gossip = gossip_for(target, peer)

    async def scenario() -> None:
        gossip.on_heads(SOURCE, peer.message())
        async with asyncio.timeout(30):
            while not synced(target, source):
                await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert not any(r.startswith("POST") for r in peer.requests)  # it only pulled


def test_a_backed_off_peer_whose_push_is_pulled_is_taken_back(source: Node, target: Node) -> None:
    """A link that healed: the peer could not be reached for a while (backed off), then
    pushes its heads; once its blocks are pulled it is available again for our rounds and
    pushes, not only when the backoff ends (up to a minute)."""

    def disclosures(_: int, request: httpx.Request) -> httpx.Response | None:
        if request.url.path != "/v1/disclosures":
            return None
        chain, start = request.url.params["chain"], int(request.url.params["from"])
        return httpx.Response(
            200, json=disclosures_json(source.store, chain, start, 100, TARGET, "authority")
        )

    peer = Peer(source, fault=disclosures)
    gossip = gossip_for(target, peer)
    state = gossip.peers[SOURCE]
    for _ in range(6):
        state.failed(time.monotonic(), bad=False)
    assert not state.available(time.monotonic())

    async def scenario() -> None:
        gossip.on_heads(SOURCE, peer.message())
        async with asyncio.timeout(30):
            while not synced(target, source) or gossip._tasks:
                await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert state.available(time.monotonic())
    assert state.failures == 0


def test_new_evidence_starts_a_round_with_unreachable_peers_taken_back(
    source: Node, target: Node
) -> None:
    peer = Peer(source)
    gossip = gossip_for(target, peer)
    state = gossip.peers[SOURCE]
    for _ in range(6):
        state.failed(time.monotonic(), bad=False)

    async def scenario() -> None:
        gossip._loop = asyncio.get_running_loop()
        gossip.on_evidence()
        await asyncio.sleep(0)
        assert gossip._kick.is_set()

    asyncio.run(scenario())
    assert state.available(time.monotonic())
    # a peer backed off for garbage stays backed off
    state.failed(time.monotonic(), bad=True)

    async def again() -> None:
        gossip._loop = asyncio.get_running_loop()
        gossip.on_evidence()
        await asyncio.sleep(0)

    asyncio.run(again())
    assert not state.available(time.monotonic())


def test_pushed_heads_from_a_stranger_are_ignored(source: Node, target: Node) -> None:
    peer = Peer(source)
    gossip = gossip_for(target, peer)

    async def scenario() -> None:
        gossip.on_heads("AE", peer.message())  # AE is not one of the target's peers
        await asyncio.sleep(0.2)

    asyncio.run(scenario())
    assert peer.requests == []


@pytest.mark.parametrize(
    "message",
    [
        [],
        {"network": "elsewhere", "heads": {}},
        {"heads": "none"},
        {"heads": {"BW": {"height": "7"}}},
        {"heads": {}, "evidence": "x"},
    ],
    ids=["not-object", "other-network", "heads-not-object", "height-not-int", "evidence"],
)
def test_malformed_gossip_answer_backs_the_peer_off(
    source: Node, target: Node, message: Any
) -> None:
    peer = Peer(source)
    if isinstance(message, dict) and "network" not in message:
        message = {"network": source.registry.network_id, **message}
    peer.fault = lambda i, r: httpx.Response(200, json=message) if r.method == "POST" else None
    gossip = gossip_for(target, peer)
    asyncio.run(gossip.exchange(gossip.peers[SOURCE]))
    state = gossip.peers[SOURCE]
    assert state.bad == 1
    assert state.suspect
    assert not state.available(time.monotonic())
    assert target.heads() == {}


def test_a_peer_announcing_blocks_it_does_not_send_is_bad(source: Node, target: Node) -> None:
    peer = Peer(source)
    peer.fault = lambda i, r: (
        httpx.Response(200, json={"blocks": []}) if r.url.path.startswith("/v1/chains/") else None
    )
    gossip = gossip_for(target, peer)
    asyncio.run(gossip.exchange(gossip.peers[SOURCE]))
    assert gossip.peers[SOURCE].bad == 1


def test_round_exchanges_with_fanout_peers_only(
    history: History, tmp_path: Path, source: Node
) -> None:
    others = ("AE", "EU")
    store = Store.open(f"sqlite:///{tmp_path / 'fan.db'}", history.net.registry)
    try:
        peers = tuple(PeerConfig(c, f"http://{c.lower()}.test") for c in (SOURCE, *others))
        node = Node(
            config(TARGET, tmp_path, peers=peers, fanout=2), store, history.net.signers[TARGET]
        )
        peer = Peer(source)
        gossip = gossip_for(node, peer)
        asyncio.run(gossip.round())
        posts = [r for r in peer.requests if r.startswith("POST /v1/gossip")]
        assert len(posts) == 2
    finally:
        store.close()


# ---------------------------------------------------------------- catch-up economy


def _pulls(peer: Peer) -> list[str]:
    return [r for r in peer.requests if r.startswith("GET /v1/chains/")]


class Ranges(Peer):
    """A ``Peer`` that also notes the (chain, from) of every pull."""

    def __init__(self, node: Node, log: list[tuple[str, int]]) -> None:
        super().__init__(node)
        self.log = log

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.startswith("/v1/chains/"):
            self.log.append((request.url.path.split("/")[3], int(request.url.params["from"])))
        return super().handle(request)


def test_two_peers_at_once_pull_each_range_once(
    history: History, tmp_path: Path, source: Node
) -> None:
    ranges: list[tuple[str, int]] = []
    peers = {SOURCE: Ranges(source, ranges), "AE": Ranges(source, ranges)}
    urls = {SOURCE: SOURCE_URL, "AE": "http://ae.test"}

    def handle(request: httpx.Request) -> httpx.Response:
        code = next(c for c, u in urls.items() if str(request.url).startswith(u))
        return peers[code].handle(request)

    store = Store.open(f"sqlite:///{tmp_path / 'two.db'}", history.net.registry)
    try:
        cfg = config(TARGET, tmp_path, peers=tuple(PeerConfig(c, u) for c, u in urls.items()))
        node = Node(cfg, store, history.net.signers[TARGET])
        client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
        gossip = Gossip(node, client, "token")

        async def both() -> None:
            for _ in range(10):
                await asyncio.gather(*(gossip.exchange(p) for p in gossip.peers.values()))
                if synced(node, source):
                    return

        asyncio.run(both())
        assert synced(node, source)
        repeated = sorted({r for r in ranges if ranges.count(r) > 1})
        assert not repeated, f"pulled more than once: {repeated}"
    finally:
        store.close()


def test_witnessed_headers_are_checked_before_the_store_is_asked(
    source: Node, target: Node
) -> None:
    """A block whose witnessed header is missing waits without loading any state."""
    calls = {"apply": 0, "prefetch": 0}
    real_apply, real_prefetch = target.store.writer.apply, target.store.prefetch

    def apply(block: Any, forks: Any = None) -> Any:
        calls["apply"] += 1
        return real_apply(block, forks)

    def prefetch(records: Any) -> None:
        calls["prefetch"] += 1
        real_prefetch(records)

    target.store.writer.apply = apply  # type: ignore[method-assign]
    target.store.prefetch = prefetch  # type: ignore[method-assign]
    order = _in_order(source)
    dependent = next(
        (c, b) for c, b in order if b["header"]["witness"] and b["header"]["height"] == 1
    )
    result = target.receive(dependent[0], [dependent[1]])
    assert (result.applied, result.waiting) == (0, 1)
    assert calls == {"apply": 0, "prefetch": 0}
    peer = Peer(source)
    asyncio.run(exchange_until_synced(gossip_for(target, peer), source))
    blocks = sum(h["height"] for h in source.heads().values())
    assert calls["apply"] == blocks  # every apply succeeded: none failed on a witness


def _pushing(source: Node, target: Node) -> tuple[Gossip, list[httpx.Request], str, dict[str, Any]]:
    """The target holds every block of the source but the last one of another chain;
    a ``Gossip`` of the source pushes to the target's app (each request kept in the
    list). Returns it, that list, and the chain and block still to push."""
    order = _in_order(source)
    at = max(i for i, (c, _) in enumerate(order) if c != TARGET)
    for chain, block in order[:at]:
        target.receive(chain, [block])
    last_chain, last = order[at]
    target.config = replace(
        target.config, tokens=(TokenConfig("peer", SOURCE, hash_token("tok-peer"), None),)
    )
    app = TestClient(create_app(target, None))
    got: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        got.append(request)
        answer = app.post(request.url.path, content=request.content, headers=request.headers)
        return httpx.Response(answer.status_code, content=answer.content)

    source.config = replace(source.config, peers=(PeerConfig(TARGET, "http://ru.test"),))
    pusher = Gossip(source, httpx.AsyncClient(transport=httpx.MockTransport(handle)), "tok-peer")
    return pusher, got, last_chain, last


def test_sealed_block_is_pushed_to_fanout_peers(source: Node, target: Node) -> None:
    """``push`` posts the block itself to the peer, whose node applies it, and names who
    holds it (a peer is never pushed a block of its own chain: it sealed it)."""
    pusher, got, last_chain, last = _pushing(source, target)
    asyncio.run(pusher.push(last_chain, last["header"]["height"]))
    assert [(r.method, r.url.path) for r in got] == [("POST", f"/v1/chains/{last_chain}/blocks")]
    assert got[0].headers[INFORMED_HEADER] == ",".join(sorted({SOURCE, TARGET, last_chain}))
    assert target.heads()[last_chain] == source.heads()[last_chain]
    got.clear()
    asyncio.run(pusher.push(TARGET, source.heads()[TARGET]["height"]))
    asyncio.run(pusher.push(last_chain, last["header"]["height"], informed=frozenset({TARGET})))
    assert got == []  # its own chain's block, and a peer the pusher was told holds it


def test_a_sealed_block_probes_a_peer_backed_off_for_being_unreachable(
    source: Node, target: Node
) -> None:
    """After a partition heals, the next block sealed reaches a peer backed off while the
    link was down, and that peer is available again at once; a peer backed off for
    sending garbage is not pushed to until its backoff ends."""
    pusher, got, last_chain, last = _pushing(source, target)
    state = pusher.peers[TARGET]
    state.failed(time.monotonic(), bad=True)  # garbage: no probe
    asyncio.run(pusher.push(last_chain, last["header"]["height"], probe=True))
    assert got == []
    state.ok(time.monotonic())
    for _ in range(5):
        state.failed(time.monotonic(), bad=False)  # unreachable while the link was down
    asyncio.run(pusher.push(last_chain, last["header"]["height"]))
    assert got == []  # a relay does not probe
    asyncio.run(pusher.push(last_chain, last["header"]["height"], probe=True))
    assert [(r.method, r.url.path) for r in got] == [("POST", f"/v1/chains/{last_chain}/blocks")]
    assert target.heads()[last_chain] == source.heads()[last_chain]
    assert state.available(time.monotonic())
    assert state.failures == 0


def test_pushed_blocks_are_checked_like_pulled_ones(source: Node, target: Node) -> None:
    target.config = replace(
        target.config, tokens=(TokenConfig("peer", SOURCE, hash_token("tok-peer"), None),)
    )
    client = TestClient(create_app(target, None), raise_server_exceptions=False)
    peer = {"Authorization": "Bearer tok-peer"}
    first_chain, first = _in_order(source)[0]
    url = f"/v1/chains/{first_chain}/blocks"
    bad = json.loads(json.dumps(first))
    bad["sig"] = ("00" if bad["sig"][:2] != "00" else "11") + bad["sig"][2:]
    refused = client.post(url, json={"blocks": [bad]}, headers=peer)
    assert refused.status_code in (400, 422), refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert client.post(url, json={"blocks": [first]}).status_code == 401
    assert client.post(url, json={"blocks": "x"}, headers=peer).status_code in (400, 422)
    assert client.post(url, json={"blocks": [first] * 17}, headers=peer).status_code in (400, 422)
    assert client.post("/v1/chains/ZZ/blocks", json={"blocks": []}, headers=peer).status_code == 404
    for informed in ("BW,,RU", "BW;RU", "X" * 33, ",".join(["BW"] * 1025)):
        refused = client.post(
            url, json={"blocks": [first]}, headers={**peer, INFORMED_HEADER: informed}
        )
        assert refused.status_code in (400, 422), refused.text
        assert INFORMED_HEADER in refused.json()["detail"]
    assert target.heads() == {}
    ok = client.post(url, json={"blocks": [first]}, headers=peer)
    assert ok.json() == {"applied": 1, "known": 0, "waiting": 0}
    again = client.post(url, json={"blocks": [first]}, headers=peer)
    assert again.json() == {"applied": 0, "known": 1, "waiting": 0}


def test_a_pull_answer_is_applied_while_it_arrives(
    source: Node, target: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks are applied every ``APPLY_BYTES`` of an answer, before its last byte is read."""
    monkeypatch.setattr("kpledger.node.gossip.APPLY_BYTES", 2048)
    order = _in_order(source)
    first_chain = order[0][0]
    height = source.heads()[first_chain]["height"]
    body = source.blocks_json(first_chain, 1, height)
    held_at_end: list[int] = []

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 1000):
            if i + 1000 >= len(body):  # the last piece: what was applied before it?
                head = target.heads().get(first_chain)
                held_at_end.append(head["height"] if head else 0)
            yield body[i : i + 1000]

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=pieces())

    gossip = Gossip(target, httpx.AsyncClient(transport=httpx.MockTransport(handle)), "token")
    peer = gossip.peers[SOURCE]
    result = asyncio.run(gossip.pull(peer, first_chain, 1, height))
    head = target.heads()[first_chain]["height"]
    assert result.applied + result.waiting == height
    assert head == result.applied > 0
    assert 0 < held_at_end[0] < height  # applied some while the answer still arrived


def test_a_pull_answer_with_more_blocks_than_asked_is_refused(source: Node, target: Node) -> None:
    chain = _in_order(source)[0][0]
    body = source.blocks_json(chain, 1, 3)

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    gossip = Gossip(target, httpx.AsyncClient(transport=httpx.MockTransport(handle)), "token")
    with pytest.raises(InvalidData, match="asked for 2 blocks, got 3"):
        asyncio.run(gossip.pull(gossip.peers[SOURCE], chain, 1, 2))
    assert target.heads() == {}


def test_a_suspect_peer_is_not_forgiven_by_an_exchange_that_took_nothing_from_it(
    source: Node, target: Node
) -> None:
    """A peer backed off for garbage earns its way back only by blocks that check: an
    exchange whose chains another catch-up was pulling (so nothing came from this peer)
    keeps its failures, and its next backoff grows (a forgiven peer was asked every
    second, never backed off further)."""
    gossip = gossip_for(target, Peer(source))
    state = gossip.peers[SOURCE]
    state.failed(time.monotonic() - 10.0, bad=True)  # garbage once, backoff since over
    assert state.suspect
    assert state.available(time.monotonic())
    claims = _Claims()  # another catch-up is pulling every chain the source is ahead on
    for chain in source.heads():
        gossip._pulling[chain] = claims
        claims.chains.add(chain)
    asyncio.run(gossip.exchange(state))
    assert state.failures == 1
    assert state.suspect
    state.failed(time.monotonic(), bad=True)
    assert state.until - time.monotonic() > 1.5  # the second backoff: 2 s, not 1 s


def test_one_conversation_with_a_peer_at_a_time(source: Node, target: Node) -> None:
    """Heads pushed by a peer the node is already exchanging with start no second pull,
    and a round leaves out a peer whose pushed heads are being pulled: two at once
    asked a peer that sent garbage twice in the same instant, before either backoff."""
    peer = Peer(source)
    gossip = gossip_for(target, peer)

    async def scenario() -> None:
        gossip._exchanging.add(SOURCE)
        gossip.on_heads(SOURCE, peer.message())
        assert not gossip._tasks
        gossip._exchanging.discard(SOURCE)
        gossip._syncing.add(SOURCE)
        await gossip.round()
        assert not any(r.startswith("POST /v1/gossip") for r in peer.requests)
        gossip._syncing.discard(SOURCE)
        await gossip.round()
        assert any(r.startswith("POST /v1/gossip") for r in peer.requests)

    asyncio.run(scenario())
