"""The node's background loops, wired in one place: sealing, gossip and relay.

``run_loops(node, gossip, stop)`` is what a writing node process runs beside its
API until ``stop`` is set:

* sealing (authorities only): first ``startup_sync`` (never seal a height
  already sealed before), then ``produce``, which seals blocks when enough
  records wait, when the block interval passed, or as heartbeats;
* gossip: ``Gossip.run``, periodic push-pull rounds with the peers;
* relay: a block this node sealed is pushed at once to ``gossip.push`` peers
  (``Node.on_sealed``: the block itself, not only our heads); a block applied
  from a peer's push is pushed on to ``fanout`` peers the push did not reach
  (``Node.on_applied``), and blocks applied from pulls start a gossip round at
  once, so they travel on without waiting for the next periodic round; new
  equivocation evidence starts one at once too (``Node.on_evidence``).

Each loop is guarded: an exception in one is logged and the loop starts again
after a pause; only ``stop`` ends them. ``api.server`` calls ``run_loops``;
``api.app`` only builds the HTTP application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from kpledger.node.gossip import Gossip, PeerState
from kpledger.node.node import Node

__all__ = ["peer_height", "produce", "run_loops", "startup_sync"]

log = logging.getLogger("kpl.node")

#: pause before a loop that failed starts again (seconds)
RESTART_PAUSE = 1.0


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def produce(node: Node, stop: asyncio.Event) -> None:
    """Seal blocks when enough records wait, when the interval passed, or as heartbeats."""
    tick = max(0.005, min(0.05, node.config.block_interval / 4))
    while not stop.is_set():
        if node.seal_due():
            try:
                await asyncio.to_thread(node.seal)
            except Exception:
                log.exception("sealing failed")
                await _pause(stop, RESTART_PAUSE)
        await _pause(stop, tick)


async def peer_height(gossip: Gossip, peer: PeerState, chain: str) -> int | None:
    """The height of ``chain`` that ``peer`` reports, 0 if it has none, None if no answer."""
    try:
        r = await gossip.client.get(
            peer.config.url + "/v1/heads",
            headers=gossip.headers,
            timeout=gossip.node.config.peer_timeout,
        )
        if r.status_code != 200:
            return None
        answer = r.json()
        if (
            answer.get("network") != gossip.node.registry.network_id
            or answer.get("node") != peer.code
        ):
            return None  # not that peer: a wrong URL, or a port someone else now uses
        head = answer.get("heads", {}).get(chain)
        return int(head["height"]) if isinstance(head, dict) else 0
    except (httpx.HTTPError, ValueError, TypeError, KeyError, AttributeError):
        return None


async def startup_sync(node: Node, gossip: Gossip | None, stop: asyncio.Event) -> None:
    """Before the first seal, hold at least the height of our chain any peer reports.

    Returns at once without peers; after ``node.startup_sync`` seconds when no
    peer answers; and never while an answering peer shows our chain higher
    than we hold it (gossip is pulling it meanwhile): sealing then would sign
    a second block at a height already signed.
    """
    chain = node.chain
    wait = node.config.startup_sync
    if gossip is None or chain is None or not gossip.peers or wait <= 0:
        return
    deadline = time.monotonic() + wait
    target: int | None = None
    warned = 0.0
    peers = list(gossip.peers.values())
    while not stop.is_set():
        answers = await asyncio.gather(*(peer_height(gossip, p, chain) for p in peers))
        heard = [h for h in answers if h is not None]
        if heard:
            target = max([target or 0, *heard])
        head = node.store.head(chain)
        mine = head.height if head else 0
        if target is not None and mine >= target:
            return
        ahead = [p for p, h in zip(peers, answers, strict=True) if h is not None and h > mine]
        if ahead:  # pull from it now, whatever gossip's back-off says about it
            await gossip.exchange(max(ahead, key=lambda p: answers[peers.index(p)] or 0))
            continue
        now = time.monotonic()
        if target is None and now > deadline:
            log.warning("%s: no peer answered within %.0fs; sealing", chain, wait)
            return
        if target is not None and now - warned > 10:
            warned = now
            log.warning(
                "%s: peers hold our chain at %d, we at %d: catching up", chain, target, mine
            )
        await _pause(stop, 0.25)


async def _guarded(
    name: str, loop: Callable[[], Coroutine[Any, Any, None]], stop: asyncio.Event
) -> None:
    """Run ``loop`` until ``stop``; start it again, after a pause, whenever it ends early."""
    while not stop.is_set():
        try:
            await loop()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if stop.is_set() or (task is not None and task.cancelling()):
                raise
            # a cancellation that leaked out of a library's cancel scope, not ours
            log.error("%s loop was cancelled from inside; starting it again", name)
        except Exception:
            log.exception("%s loop failed; starting it again", name)
        else:
            if stop.is_set():
                return
            log.error("%s loop ended before the node stopped; starting it again", name)
        await _pause(stop, RESTART_PAUSE)


async def run_loops(node: Node, gossip: Gossip | None, stop: asyncio.Event) -> None:
    """Seal (authorities), gossip and relay for ``node`` until ``stop`` is set."""
    tasks: list[asyncio.Task[None]] = []
    if gossip is not None:
        node.on_sealed = gossip.push_sealed
        node.on_applied = gossip.relay
        node.on_evidence = gossip.on_evidence
        tasks.append(asyncio.create_task(_guarded("gossip", lambda: gossip.run(stop), stop)))
    if node.chain is not None:

        async def seal() -> None:
            await startup_sync(node, gossip, stop)
            await produce(node, stop)

        tasks.append(asyncio.create_task(_guarded("sealing", seal, stop)))
    try:
        await stop.wait()
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        node.on_sealed = None
        node.on_applied = None
        node.on_evidence = None
