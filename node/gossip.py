"""Push-pull anti-entropy between nodes over HTTP.

Every ``interval`` (jittered +-50 %), and at once after sealing a block, a
node sends its heads to ``fanout`` random peers (``POST /v1/gossip``). Each
side learns what the other holds and *pulls* what it lacks in batches
(``GET /v1/chains/{chain}/blocks?from=&limit=``), verifying every block before
applying it. Nothing a peer says is trusted: its heads are only hints, its
blocks are fully checked, its bodies are size-limited. A peer that times out or
sends something invalid is backed off exponentially (1 s to 60 s) and sync
goes on from the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from ledger.canonical import load_json
from ledger.errors import InvalidData, LedgerError
from ledger.records import GOVERNANCE_CHAIN
from ledger.state import chains_of
from node.config import PeerConfig
from node.membership import ConfigWatch
from node.node import Node

__all__ = ["MAX_BODY", "Gossip", "PeerState"]

log = logging.getLogger("kpl.gossip")

MAX_BODY = 64 * 1024 * 1024  # a pull answer (nodes send node.MAX_BLOCKS_BODY at most)
MAX_HEADS_BODY = 1024 * 1024
MAX_CATCHUP_ROUNDS = 10_000
#: a whole request (connection, answer and body) must end within this many
#: ``gossip.timeout`` periods: a peer that trickles bytes just fast enough to
#: beat the per-read timeout is slow, not alive
REQUEST_TIMEOUTS = 12


class PeerError(Exception):
    """A peer failed to answer usefully (network error, bad status, timeout)."""

    def __init__(self, message: str, *, slow: bool = False) -> None:
        super().__init__(message)
        self.slow = slow  # it timed out: a slow peer, not (only) an unreachable one


@dataclass
class PeerState:
    config: PeerConfig
    failures: int = 0
    until: float = 0.0
    bad: int = 0
    last_ok: float = 0.0
    #: backed off for sending garbage or for being too slow (not merely unreachable):
    #: its pushed heads do not bring it back before the backoff ends
    suspect: bool = False

    @property
    def code(self) -> str:
        return self.config.code

    def available(self, now: float) -> bool:
        return now >= self.until

    def failed(self, now: float, *, bad: bool, slow: bool = False) -> None:
        self.failures += 1
        if bad:
            self.bad += 1
        self.suspect = bad or slow
        self.until = now + min(60.0, 2.0 ** min(self.failures - 1, 6))

    def ok(self, now: float) -> None:
        self.failures = 0
        self.until = 0.0
        self.last_ok = now
        self.suspect = False


class Gossip:
    def __init__(self, node: Node, client: httpx.AsyncClient, token: str | None) -> None:
        self.node = node
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.peers = {p.code: PeerState(p) for p in node.config.peers}
        self._watch = ConfigWatch(node.config)
        self._kick = asyncio.Event()
        self._syncing: set[str] = set()
        self._exchanging: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ scheduling
    def kick(self) -> None:
        """Ask for a round now (thread-safe): called after sealing a block."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._kick.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        interval = self.node.config.gossip_interval
        while not stop.is_set():
            try:
                await self.round()
            except Exception:
                log.exception("gossip round failed")
            delay = interval * random.uniform(0.5, 1.5)  # noqa: S311 - jitter only
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait(stop), timeout=delay)
            self._kick.clear()
        for task in list(self._tasks):
            task.cancel()

    async def _wait(self, stop: asyncio.Event) -> None:
        kick = asyncio.ensure_future(self._kick.wait())
        halt = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({kick, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            kick.cancel()
            halt.cancel()

    async def round(self) -> None:
        """Exchange with ``fanout`` random peers; wait for them a ``timeout`` at most.

        An exchange still running then (a slow peer, or a long catch-up) goes on
        in the background, and its peer sits out the next rounds until it ends:
        one slow peer never holds up the exchanges with the others.
        """
        self._reload_peers()
        now = time.monotonic()
        ready = [
            p for p in self.peers.values() if p.available(now) and p.code not in self._exchanging
        ]
        chosen = random.sample(ready, min(self.node.config.fanout, len(ready)))
        if chosen:
            tasks = [self._spawn(self.exchange(p)) for p in chosen]
            await asyncio.wait(tasks, timeout=self.node.config.peer_timeout)
        self.node.metrics.peers_up.set(
            sum(1 for p in self.peers.values() if p.failures == 0 and p.last_ok > 0)
        )

    def _reload_peers(self) -> None:
        """Take new peers and tokens from node.toml if it changed (``node.membership``)."""
        fresh = self._watch.changed(self.node.config)
        if fresh is None:
            return
        self.node.config = fresh
        for p in fresh.peers:
            held = self.peers.get(p.code)
            if held is None or held.config != p:
                self.peers[p.code] = PeerState(p)
        for code in set(self.peers) - {p.code for p in fresh.peers}:
            del self.peers[code]

    # ------------------------------------------------------------ one exchange
    def message(self) -> dict[str, Any]:
        return {
            "network": self.node.registry.network_id,
            "from": self.node.config.code,
            "heads": self.node.heads(),
            "evidence": self.node.evidence_ids(),
        }

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("gossip task failed", exc_info=exc)

    async def exchange(self, peer: PeerState) -> None:
        """Send our heads to ``peer``, then pull whatever it holds that we lack."""
        self._exchanging.add(peer.code)
        try:
            answer = await self._post(peer, "/v1/gossip", self.message())
            await self.sync_from(peer, answer)
        except (PeerError, InvalidData) as exc:
            bad = isinstance(exc, InvalidData)
            peer.failed(time.monotonic(), bad=bad, slow=isinstance(exc, PeerError) and exc.slow)
            log.warning("peer %s %s: %s", peer.code, "sent invalid data" if bad else "failed", exc)
            return
        finally:
            self._exchanging.discard(peer.code)
        peer.ok(time.monotonic())

    def on_heads(self, sender: str, message: dict[str, Any]) -> None:
        """A peer pushed its heads to us: pull from it in the background."""
        peer = self.peers.get(sender)
        if peer is None or sender in self._syncing:
            return
        if peer.suspect and not peer.available(time.monotonic()):
            return  # pushing is no way around a backoff for garbage or slowness
        self._spawn(self._pull_from(peer, message))

    async def _pull_from(self, peer: PeerState, message: dict[str, Any]) -> None:
        try:
            await self.sync_from(peer, message)
        except (PeerError, InvalidData) as exc:
            slow = isinstance(exc, PeerError) and exc.slow
            peer.failed(time.monotonic(), bad=isinstance(exc, InvalidData), slow=slow)
            log.warning("peer %s: %s", peer.code, exc)

    async def sync_from(self, peer: PeerState, message: object) -> None:
        """Pull from ``peer`` every block and evidence its message says we lack."""
        if not isinstance(message, dict):
            raise InvalidData("gossip message is not an object")
        if message.get("network") != self.node.registry.network_id:
            raise InvalidData("gossip message is for another network", field="network")
        heads = message.get("heads")
        if not isinstance(heads, dict):
            raise InvalidData("gossip heads missing", field="heads")
        theirs_ev = message.get("evidence", [])
        if not isinstance(theirs_ev, list):
            raise InvalidData("evidence must be a list of ids", field="evidence")
        self._syncing.add(peer.code)
        try:
            if set(map(str, theirs_ev)) - set(self.node.evidence_ids()):
                docs = await self._get(peer, "/v1/evidence")
                if not isinstance(docs, dict) or not isinstance(docs.get("evidence"), list):
                    raise InvalidData("evidence answer malformed")
                await asyncio.to_thread(self.node.receive_evidence, docs["evidence"])
            known = set(chains_of(self.node.store))
            order = sorted(heads, key=lambda c: (c != GOVERNANCE_CHAIN, c))
            for chain in order:
                if chain not in known:
                    continue
                head = heads[chain]
                if not isinstance(head, dict) or not isinstance(head.get("height"), int):
                    raise InvalidData(f"head of {chain} malformed", field=f"heads.{chain}")
                await self._catch_up(peer, chain, int(head["height"]), str(head.get("hash")))
        finally:
            self._syncing.discard(peer.code)

    async def _catch_up(
        self, peer: PeerState, chain: str, height: int, digest: str, *, claimed: bool = True
    ) -> None:
        """Pull ``chain`` up to ``height`` from ``peer``.

        ``claimed``: the peer announced that height itself, so it must serve
        every block up to it; a peer that announces blocks it does not send is
        lying (or broken) and is treated as sending invalid data.
        """
        ours = self.node.store.head(chain)
        mine = ours.height if ours else 0
        self.node.metrics.sync_lag.labels(chain).set(max(0, height - mine))
        if height <= mine:
            held = self.node.store.header(chain, height) if height > 0 else None
            if held is not None and held.hash.hex() != digest:
                await self._pull(peer, chain, height, 1)  # a different header: evidence?
            return
        rounds = 0
        while mine < height and rounds < MAX_CATCHUP_ROUNDS:
            rounds += 1
            limit = min(self.node.config.pull_batch, height - mine)
            result = await self._pull(peer, chain, mine + 1, limit, claimed=claimed)
            for dep_chain, dep_height in sorted(result.missing):
                if dep_chain != chain:
                    dep_head = self.node.store.head(dep_chain)
                    if (dep_head.height if dep_head else 0) < dep_height:
                        await self._catch_up(peer, dep_chain, dep_height, "", claimed=False)
            now = self.node.store.head(chain)
            progressed = (now.height if now else 0) > mine
            mine = now.height if now else 0
            if not progressed:
                if result.waiting and result.missing:
                    await self._retry_buffer(chain)
                    now = self.node.store.head(chain)
                    if (now.height if now else 0) > mine:
                        mine = now.height if now else 0
                        continue
                break
        self.node.metrics.sync_lag.labels(chain).set(max(0, height - mine))

    async def _retry_buffer(self, chain: str) -> None:
        await asyncio.to_thread(self.node.receive, chain, [])

    async def _pull(
        self, peer: PeerState, chain: str, start: int, limit: int, *, claimed: bool = False
    ) -> Any:
        answer = await self._get(
            peer, f"/v1/chains/{chain}/blocks", params={"from": start, "limit": limit}
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("blocks"), list):
            raise InvalidData("blocks answer malformed")
        blocks = answer["blocks"]
        if len(blocks) > limit:
            raise InvalidData(f"asked for {limit} blocks, got {len(blocks)}")
        if claimed and not blocks:
            raise InvalidData(
                f"{peer.code} announced block {start} of {chain} or later but sent none"
            )
        return await asyncio.to_thread(self.node.receive, chain, blocks)

    # ------------------------------------------------------------ HTTP
    async def _post(self, peer: PeerState, path: str, body: dict[str, Any]) -> Any:
        return await self._request(
            peer, "POST", path, content=json.dumps(body).encode(), limit=MAX_HEADS_BODY
        )

    async def _get(self, peer: PeerState, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self._request(peer, "GET", path, params=params, limit=MAX_BODY)

    async def _request(
        self,
        peer: PeerState,
        method: str,
        path: str,
        *,
        limit: int,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        url = peer.config.url + path
        headers = dict(self.headers)
        if content is not None:
            headers["Content-Type"] = "application/json"
        timeout = self.node.config.peer_timeout
        try:
            async with (
                asyncio.timeout(timeout * REQUEST_TIMEOUTS),
                self.client.stream(
                    method, url, content=content, params=params, headers=headers, timeout=timeout
                ) as resp,
            ):
                if resp.status_code != 200:
                    raise PeerError(f"{method} {path}: HTTP {resp.status_code}")
                declared = resp.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise InvalidData(
                        f"{method} {path}: body of {declared} bytes is over the {limit} limit"
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise InvalidData(f"{method} {path}: body over the {limit} byte limit")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise PeerError(
                f"{method} {path}: {exc.__class__.__name__}: {exc}",
                slow=isinstance(exc, httpx.TimeoutException),
            ) from exc
        except TimeoutError as exc:
            raise PeerError(
                f"{method} {path}: not done after {timeout * REQUEST_TIMEOUTS:g} s", slow=True
            ) from exc
        try:
            return load_json(b"".join(chunks), what=f"answer to {method} {path}")
        except LedgerError as exc:
            raise InvalidData(str(exc)) from exc
