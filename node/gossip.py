"""Push-pull anti-entropy between nodes over HTTP.

Every ``interval`` (jittered +-50 %), and at once after sealing a block, a
node sends its heads to ``fanout`` random peers (``POST /v1/gossip``). Each
side learns what the other holds and *pulls* what it lacks in batches
(``GET /v1/chains/{chain}/blocks?from=&limit=``), verifying every block before
applying it, and then pulls from a chain's writer the disclosures of that
chain's records it is entitled to (``GET /v1/disclosures``, ``node.disclose``).
Nothing a peer says is trusted: its heads are only hints, its
blocks are fully checked, its bodies are size-limited. A peer that times out or
sends something invalid is backed off exponentially (1 s to 60 s) and sync
goes on from the others.

Catch-up is iterative (a stack of goals, never recursion): pulling a chain
whose blocks witness headers of other chains not held yet pushes those
chains' goals on the stack first. No failure of one exchange (a peer's
garbage, a timeout, an error of the store) ends the gossip loop: it is
logged, the peer is backed off and later rounds go on.

``sync_status`` says, per chain, how far behind the best height any peer
announced this node is and how long ago it last made progress (``/healthz``).

One concept: anti-entropy with peers (exchange of heads, catch-up, push and
peer backoff), which share one view of what each peer announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from kpledger.ledger.blocks import Block
from kpledger.ledger.canonical import load_json
from kpledger.ledger.errors import InvalidData, LedgerError
from kpledger.ledger.records import GOVERNANCE_CHAIN
from kpledger.ledger.state import chains_of
from kpledger.node.config import PeerConfig
from kpledger.node.disclose import pull_disclosures
from kpledger.node.membership import ConfigWatch
from kpledger.node.node import Node, ReceiveResult
from kpledger.node.stream import ArrayItems

__all__ = ["INFORMED_HEADER", "MAX_BODY", "Gossip", "PeerState"]

log = logging.getLogger("kpl.gossip")

MAX_BODY = 64 * 1024 * 1024  # a pull answer (nodes send node.MAX_BLOCKS_BODY at most)
MAX_HEADS_BODY = 1024 * 1024
#: at most this many blocks applied at once are relayed by pushing them; more (a
#: catch-up) start a gossip round instead
RELAY_PUSH_MAX = 4
#: the header of a push naming the nodes that hold the block or are being sent it
INFORMED_HEADER = "X-KPL-Informed"
#: bytes of a pull answer decoded before its blocks are applied (and released)
APPLY_BYTES = 512 * 1024
MAX_CATCHUP_ROUNDS = 10_000
#: a chain behind a peer's announced head without progress for this many
#: seconds (or this many gossip intervals, if more) is reported stale
STALE_AFTER = 10.0
STALE_INTERVALS = 5
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
    #: the height of each chain this peer last announced (hints, never trusted), and when
    heads: dict[str, int] = field(default_factory=dict)
    heard: float = 0.0

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


@dataclass(eq=False)
class _Claims:
    """What one running catch-up pulls (``chains``) and waits for (``waiting``)."""

    chains: set[str] = field(default_factory=set)
    waiting: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: when its last pull answered: a catch-up slower than a peer timeout is not waited for
    touched: float = field(default_factory=time.monotonic)

    def fresh(self, now: float, timeout: float) -> bool:
        return now - self.touched < timeout


class Gossip:
    def __init__(
        self,
        node: Node,
        client: httpx.AsyncClient,
        token: str | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.clock = clock  # for sync_status: when each chain last made progress
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.peers = {p.code: PeerState(p) for p in node.config.peers}
        self._watch = ConfigWatch(node.config)
        self._kick = asyncio.Event()
        self._syncing: set[str] = set()
        self._exchanging: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: chains being pulled now, each by one catch-up (set when it lets go of it):
        #: two peers announcing the same blocks never have them pulled twice at once
        self._pulling: dict[str, _Claims] = {}
        #: per chain, the record index its writer's disclosures were pulled up to (also
        #: kept in the store: a restarted node starts from the store's place)
        self._disclosed: dict[str, int] = {}
        #: per chain: the local height last seen, and when it last grew or was up to date
        self._seen: dict[str, int] = {}
        self._progress: dict[str, float] = {}

    # ------------------------------------------------------------ scheduling
    def kick(self) -> None:
        """Ask for a round now (thread-safe): called after sealing a block."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._kick.set)

    def on_evidence(self) -> None:
        """New equivocation evidence was stored (thread-safe; ``Node.on_evidence``).

        A round starts at once, with every peer that was only unreachable
        taken back from its backoff: the evidence (announced in our heads) and
        the blocks it let through spread now, not when backoffs end. After a
        partition heals, backoffs of up to a minute would otherwise decide how
        long honest chains stay apart. Peers backed off for garbage or
        slowness stay backed off.
        """
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._retry_all)

    def _retry_all(self) -> None:
        for peer in self.peers.values():
            if not peer.suspect:
                peer.until = 0.0
        self._kick.set()

    def push_sealed(self, block: Block) -> None:
        """Send a block this node just sealed to its peers at once (thread-safe).

        The block itself travels (``POST /v1/chains/{chain}/blocks``), not only
        our heads: a peer applies it without a round trip to pull it. It goes
        to ``gossip.push`` peers (at least ``fanout``), so that in a network of
        that many nodes every peer has it after one hop. A push that fails
        changes nothing; rounds and pulls stay the way blocks are guaranteed
        to arrive. It also probes the links of peers backed off for being
        unreachable (not for garbage or slowness): one that takes the block is
        available again at once, so a healed partition is noticed at the next
        block sealed, not when a backoff of up to a minute ends.
        """
        if self._loop is not None:
            chain, height = block.header.chain, block.header.height
            width = max(self.node.config.fanout, self.node.config.push_peers)
            self._loop.call_soon_threadsafe(
                self._spawn_push, chain, height, width, frozenset(), True
            )

    def relay(self, blocks: Sequence[tuple[str, int]], informed: frozenset[str] | None) -> None:
        """Pass on blocks just applied from a peer (thread-safe; ``Node.on_applied``).

        A few blocks whose pusher said who holds them (``informed``) are pushed
        on to ``fanout`` peers outside that set, if any (a sealer that pushed to
        every node leaves nothing to relay); anything else starts a gossip round
        at once, so the blocks travel on without waiting for the next one.
        """
        if self._loop is None:
            return
        if informed is None or len(blocks) > RELAY_PUSH_MAX:
            self.kick()
            return
        width = self.node.config.fanout
        for chain, height in blocks:
            self._loop.call_soon_threadsafe(self._spawn_push, chain, height, width, informed)

    def _spawn_push(
        self,
        chain: str,
        height: int,
        width: int,
        informed: frozenset[str],
        probe: bool = False,
    ) -> None:
        self._spawn(self.push(chain, height, width=width, informed=informed, probe=probe))

    async def push(
        self,
        chain: str,
        height: int,
        *,
        width: int | None = None,
        informed: frozenset[str] = frozenset(),
        probe: bool = False,
    ) -> None:
        """Push block ``height`` of ``chain`` at once to ``width`` available peers (default
        ``fanout``) that are not ``informed`` and did not announce holding it; tell them
        who has it now (``X-KPL-Informed``), so that their relay skips those. ``probe``:
        peers backed off only for being unreachable count as available (``push_sealed``)."""
        now = time.monotonic()
        ready = [
            p
            for p in self.peers.values()
            if (p.available(now) or (probe and not p.suspect))
            and p.code not in informed
            and p.code != chain
            and p.heads.get(chain, 0) < height
        ]
        count = self.node.config.fanout if width is None else width
        chosen = random.sample(ready, min(count, len(ready)))
        if not chosen:
            return
        body = await asyncio.to_thread(self.node.blocks_json, chain, height, 1)
        told = informed | {self.node.config.code, chain} | {p.code for p in chosen}
        header = {INFORMED_HEADER: ",".join(sorted(told))}
        await asyncio.gather(*(self._push_to(p, chain, height, body, header) for p in chosen))

    async def _push_to(
        self, peer: PeerState, chain: str, height: int, body: bytes, header: dict[str, str]
    ) -> None:
        try:
            await self._request(
                peer,
                "POST",
                f"/v1/chains/{chain}/blocks",
                content=body,
                limit=MAX_HEADS_BODY,
                headers=header,
            )
        except (PeerError, InvalidData) as exc:
            log.info("push of %s/%d to %s failed: %s", chain, height, peer.code, exc)
            return
        if peer.failures and not peer.suspect:
            peer.ok(time.monotonic())  # it took the block: the link is back

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        interval = self.node.config.gossip_interval
        failed = 0  # rounds failed in a row: the next one waits longer (at most 30 s)
        while not stop.is_set():
            try:
                await self.round()
                failed = 0
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if stop.is_set() or (task is not None and task.cancelling()):
                    raise
                failed += 1
                log.error("gossip round was cancelled from inside; going on")
            except Exception:
                failed += 1
                log.exception("gossip round failed")
            backoff = min(30.0, interval * 2.0 ** min(failed, 8)) if failed else interval
            delay = backoff * random.uniform(0.5, 1.5)  # noqa: S311 - jitter only
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
        busy = self._exchanging | self._syncing  # one conversation with a peer at a time
        ready = [p for p in self.peers.values() if p.available(now) and p.code not in busy]
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
            deferred = await self.sync_from(peer, answer)
        except (PeerError, InvalidData) as exc:
            bad = isinstance(exc, InvalidData)
            peer.failed(time.monotonic(), bad=bad, slow=isinstance(exc, PeerError) and exc.slow)
            log.warning("peer %s %s: %s", peer.code, "sent invalid data" if bad else "failed", exc)
            return
        except Exception:
            # not the peer's fault as far as we know (the store, a library): back off
            # this peer a little and let later rounds try again
            peer.failed(time.monotonic(), bad=False)
            log.exception("exchange with %s failed", peer.code)
            return
        finally:
            self._exchanging.discard(peer.code)
        if deferred and peer.suspect:
            # nothing was taken from it this time (another catch-up had its chains): a
            # peer backed off for garbage or slowness earns its way back only by blocks
            # that check, so its failures keep counting and the next backoff grows
            return
        peer.ok(time.monotonic())

    def on_heads(self, sender: str, message: dict[str, Any]) -> None:
        """A peer pushed its heads to us: pull from it in the background."""
        peer = self.peers.get(sender)
        if peer is None or sender in self._syncing or sender in self._exchanging:
            return  # already talking with it: its heads are pulled by that conversation
        if peer.suspect and not peer.available(time.monotonic()):
            return  # pushing is no way around a backoff for garbage or slowness
        self._spawn(self._pull_from(peer, message))

    async def _pull_from(self, peer: PeerState, message: dict[str, Any]) -> None:
        try:
            deferred = await self.sync_from(peer, message)
        except (PeerError, InvalidData) as exc:
            slow = isinstance(exc, PeerError) and exc.slow
            peer.failed(time.monotonic(), bad=isinstance(exc, InvalidData), slow=slow)
            log.warning("peer %s: %s", peer.code, exc)
        except Exception:
            peer.failed(time.monotonic(), bad=False)
            log.exception("pull from %s failed", peer.code)
        else:
            # it reached us and answered every pull: take it back from a backoff at once
            # (a link that healed), for our rounds and pushes too; one backed off for
            # garbage or slowness only by blocks that checked (as ``exchange`` does)
            if not (deferred and peer.suspect):
                peer.ok(time.monotonic())

    async def sync_from(self, peer: PeerState, message: object) -> bool:
        """Pull from ``peer`` every block and evidence its message says we lack; True when
        a chain it is ahead on was left to another catch-up or a better peer."""
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
        peer.heard = time.monotonic()
        peer.heads = {
            str(c): h["height"]
            for c, h in heads.items()
            if isinstance(h, dict) and isinstance(h.get("height"), int) and h["height"] >= 0
        }
        self._syncing.add(peer.code)
        deferred = False
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
                height = int(head["height"])
                busy = self._pulling.get(chain)
                timeout = self.node.config.peer_timeout
                if height > self._height(chain) and (
                    (busy is not None and busy.fresh(time.monotonic(), timeout))
                    or self._better_peer(peer, chain, height)
                ):
                    deferred = True
                    continue  # pulled now by another catch-up, or due from a peer ahead
                await self._catch_up(peer, chain, height, str(head.get("hash")))
            if peer.code in known:  # the writer of a chain: what it may disclose to us
                self._disclosed[peer.code] = await pull_disclosures(
                    lambda path, params: self._get(peer, path, params),
                    self.node.store,
                    peer.code,
                    self._disclosed.get(peer.code),  # None: where the store says
                )
        finally:
            self._syncing.discard(peer.code)
        return deferred

    def _height(self, chain: str) -> int:
        head = self.node.store.head(chain)
        return head.height if head else 0

    async def _catch_up(
        self, peer: PeerState, chain: str, height: int, digest: str, *, claimed: bool = True
    ) -> None:
        """Pull ``chain`` up to ``height`` from ``peer``, and first what its blocks witness.

        Iterative: ``goals`` is a stack of (chain, height, claimed). A pull
        that applies nothing because its blocks witness headers of another
        chain not held yet pushes that chain's goal on top; a goal that cannot
        progress from this peer is dropped (and its chain not tried again in
        this catch-up), so the loop always ends.

        ``claimed``: the peer announced that height itself, so it must serve
        every block up to it; a peer that announces blocks it does not send is
        lying (or broken) and is treated as sending invalid data.
        """
        mine = self._height(chain)
        self._note(chain)
        if height <= mine:
            held = self.node.store.header(chain, height) if height > 0 else None
            if held is not None and held.hash.hex() != digest:
                await self.pull(peer, chain, height, 1)  # a different header: evidence?
            return
        goals: list[tuple[str, int, bool]] = [(chain, height, claimed)]
        stuck: set[str] = set()
        me = _Claims()  # the chains this catch-up is pulling
        rounds = 0
        try:
            while goals and rounds < MAX_CATCHUP_ROUNDS:
                rounds += 1
                goal, target, _ = goals[-1]
                if self._height(goal) < target:
                    await self._claim(goal, me)
                if self._height(goal) >= target:  # (also: pulled by the one we waited for)
                    goals.pop()
                    continue
                await self._pull_step(peer, goals, stuck)
                me.touched = time.monotonic()
        finally:
            for name in me.chains:
                if self._pulling.get(name) is me:
                    del self._pulling[name]
            me.done.set()
        self._note(chain)

    async def _claim(self, chain: str, me: _Claims) -> None:
        """Make ``chain`` this catch-up's to pull. If another catch-up has it, wait until
        that one ends, unless its last pull answered more than a peer timeout ago (a slow
        peer), or it waits, directly or through others, for a chain of ours (a deadlock):
        then pull it anyway."""
        while chain not in me.chains:
            other = self._pulling.get(chain)
            if other is None:
                self._pulling[chain] = me
                me.chains.add(chain)
                return
            if self._waits_on(other, me):
                return
            timeout = self.node.config.peer_timeout
            left = timeout - (time.monotonic() - other.touched)
            if left > 0:
                me.waiting = chain
                try:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(other.done.wait(), left)
                finally:
                    me.waiting = None
            if self._pulling.get(chain) is other and not other.fresh(time.monotonic(), timeout):
                return  # slower than a peer timeout: pull it too rather than stall behind it

    def _waits_on(self, other: _Claims, me: _Claims) -> bool:
        seen: set[int] = set()
        while id(other) not in seen:
            seen.add(id(other))
            if other.waiting is None:
                return False
            holder = self._pulling.get(other.waiting)
            if holder is None:
                return False
            if holder is me:
                return True
            other = holder
        return False

    def _better_peer(self, peer: PeerState, chain: str, height: int) -> bool:
        """Another peer, reachable and not suspect, announced ``chain`` higher than ``peer``:
        pull it from that one (its own exchange does), not twice."""
        now = time.monotonic()
        recent = now - 2 * max(1.0, self.node.config.gossip_interval)
        return any(
            p is not peer
            and p.available(now)
            and not p.suspect
            and p.heard >= recent
            and p.heads.get(chain, 0) > height
            for p in self.peers.values()
        )

    async def _pull_step(
        self, peer: PeerState, goals: list[tuple[str, int, bool]], stuck: set[str]
    ) -> None:
        """One pull for the goal on top of ``goals``; push what it witnesses, or drop it."""
        goal, target, announced = goals[-1]
        mine = self._height(goal)
        if self.node.holds(goal, mine + 1):  # pulled before and waiting: never pull it twice
            result = await self._retry_buffer(goal)
        else:
            limit = min(self.node.config.pull_batch, target - mine)
            result = await self.pull(peer, goal, mine + 1, limit, claimed=announced)
        self._note(goal)
        if self._height(goal) > mine:
            return
        waiting_on = sorted(
            (c, h)
            for c, h in result.missing
            if c != goal and self._height(c) < h and c not in stuck
        )
        pending = {c for c, _, _ in goals}
        fresh = [(c, h) for c, h in waiting_on if c not in pending]
        if fresh:
            goals += [(c, h, False) for c, h in reversed(fresh)]
            return
        if result.waiting and result.missing:
            await self._retry_buffer(goal)
            if self._height(goal) > mine:
                return
        stuck.add(goal)
        goals.pop()

    def _note(self, chain: str) -> None:
        """Record progress of ``chain`` (its height grew, or it is as high as announced)."""
        mine = self._height(chain)
        best = max([mine, *(p.heads.get(chain, 0) for p in self.peers.values())])
        if mine > self._seen.get(chain, -1) or mine >= best:
            self._progress[chain] = self.clock()
        self._seen[chain] = mine
        self.node.metrics.sync_lag.labels(chain).set(best - mine)

    def sync_status(self) -> dict[str, dict[str, Any]]:
        """Per chain: local height, best height a peer announced, how stale.

        ``behind`` is the difference of the two; ``since_progress`` the
        seconds since the local height last grew or was last as high as any
        peer announced (null before the first observation); ``stale`` is true
        when the chain is behind and has made no progress for ``STALE_AFTER``
        seconds (or ``STALE_INTERVALS`` gossip intervals, if longer).
        """
        now = self.clock()
        after = max(STALE_AFTER, STALE_INTERVALS * self.node.config.gossip_interval)
        chains = set(self.node.store.heads())
        for p in self.peers.values():
            chains |= set(p.heads)
        known = set(chains_of(self.node.store))
        out: dict[str, dict[str, Any]] = {}
        for chain in sorted(chains & known):
            self._note(chain)
            mine = self._height(chain)
            best = max([mine, *(p.heads.get(chain, 0) for p in self.peers.values())])
            since = now - self._progress[chain] if chain in self._progress else None
            behind = best - mine
            out[chain] = {
                "height": mine,
                "best_announced": best,
                "behind": behind,
                "since_progress": None if since is None else round(since, 1),
                "stale": behind > 0 and (since is None or since >= after),
            }
        return out

    async def _retry_buffer(self, chain: str) -> ReceiveResult:
        return await asyncio.to_thread(self.node.receive, chain, [])

    async def pull(
        self, peer: PeerState, chain: str, start: int, limit: int, *, claimed: bool = False
    ) -> ReceiveResult:
        """Pull up to ``limit`` blocks of ``chain`` from ``start``, applying them as they come.

        The answer is decoded while it arrives (``node.stream.ArrayItems``) and
        handed to ``Node.receive`` every ``APPLY_BYTES`` of it: the node holds
        a few blocks at a time, never a whole answer, and applies the first
        blocks while the peer still sends the next.
        """
        path = f"/v1/chains/{chain}/blocks"
        items = ArrayItems("blocks", what=f"answer to GET {path}")
        result = ReceiveResult()
        batch: list[Any] = []
        size = 0
        self.node.metrics.pulls.inc()
        async with contextlib.aclosing(
            self._chunks(peer, "GET", path, limit=MAX_BODY, params={"from": start, "limit": limit})
        ) as chunks:
            async for chunk in chunks:
                batch += items.feed(chunk)
                size += len(chunk)
                if items.count > limit:
                    raise InvalidData(f"asked for {limit} blocks, got {items.count}")
                if batch and size >= APPLY_BYTES:
                    self._merge(result, await asyncio.to_thread(self.node.receive, chain, batch))
                    batch, size = [], 0
        batch += items.close()
        self.node.metrics.pulled.inc(items.count)
        if items.count > limit:
            raise InvalidData(f"asked for {limit} blocks, got {items.count}")
        if claimed and not items.count:
            raise InvalidData(
                f"{peer.code} announced block {start} of {chain} or later but sent none"
            )
        if batch or not items.count:
            self._merge(result, await asyncio.to_thread(self.node.receive, chain, batch))
        return result

    @staticmethod
    def _merge(into: ReceiveResult, part: ReceiveResult) -> None:
        into.applied += part.applied
        into.known += part.known
        into.waiting = part.waiting
        into.missing |= part.missing

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
        headers: dict[str, str] | None = None,
    ) -> Any:
        parts: list[bytes] = []
        async with contextlib.aclosing(
            self._chunks(
                peer, method, path, limit=limit, content=content, params=params, headers=headers
            )
        ) as chunks:
            async for chunk in chunks:
                parts.append(chunk)
        try:
            return load_json(b"".join(parts), what=f"answer to {method} {path}")
        except LedgerError as exc:
            raise InvalidData(str(exc)) from exc

    async def _chunks(
        self,
        peer: PeerState,
        method: str,
        path: str,
        *,
        limit: int,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """The bytes of ``peer``'s answer as they arrive, at most ``limit`` of them.

        The whole exchange must end within ``REQUEST_TIMEOUTS`` peer timeouts,
        not counting the time the caller spends between two pieces (applying
        blocks is not the peer's slowness).
        """
        url = peer.config.url + path
        headers = {**self.headers, **(headers or {})}
        if content is not None:
            headers["Content-Type"] = "application/json"
        timeout = self.node.config.peer_timeout
        loop = asyncio.get_running_loop()
        try:
            async with (
                asyncio.timeout(timeout * REQUEST_TIMEOUTS) as deadline,
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
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise InvalidData(f"{method} {path}: body over the {limit} byte limit")
                    left = (deadline.when() or loop.time()) - loop.time()
                    deadline.reschedule(None)
                    yield chunk
                    deadline.reschedule(loop.time() + left)
        except httpx.HTTPError as exc:
            raise PeerError(
                f"{method} {path}: {exc.__class__.__name__}: {exc}",
                slow=isinstance(exc, httpx.TimeoutException),
            ) from exc
        except TimeoutError as exc:
            raise PeerError(
                f"{method} {path}: not done after {timeout * REQUEST_TIMEOUTS:g} s", slow=True
            ) from exc
