"""bench.network: what its load submits is accepted, and its store watch sees each block."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from bench.network import (
    NodeSpec,
    StoreWatch,
    _body,
    _now,
    _registrations,
    write_network,
)
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.canonical import load_json
from kpledger.ledger.store import Store
from kpledger.node.config import NodeConfig
from kpledger.node.node import Node

CODES = ("BW", "RU")


def _node(tmp_path: Path) -> tuple[Network, Node, Path]:
    net = Network.create(CODES, ())
    layout = write_network(
        tmp_path / "net", net, [NodeSpec("BW", 9, ("RU",)), NodeSpec("RU", 10, ("BW",))]
    )
    config = NodeConfig.load(layout.configs["BW"])
    store = Store.open(config.database_url, net.registry)
    return net, Node(config, store, net.signers["BW"]), layout.db("BW")


def test_the_load_is_submitted_as_drafts_the_node_accepts(tmp_path: Path) -> None:
    net, node, _ = _node(tmp_path)
    try:
        sc = Scenario(net)
        sc.clock = _now()
        records = _registrations(net, "BW", 5, sc)
        results = node.submit(load_json(_body(records))["records"])
        assert [r.status for r in results] == ["pending"] * len(records)
    finally:
        node.store.close()


@pytest.mark.timeout(120)
def test_the_store_watch_sees_each_block_once_committed(tmp_path: Path) -> None:
    net, node, db = _node(tmp_path)
    sc = Scenario(net)
    sc.clock = _now()
    records = _registrations(net, "BW", 4, sc)

    async def scenario() -> StoreWatch:
        async with httpx.AsyncClient() as http:
            watch = StoreWatch(http, {"BW": ""}, 0.005, dbs={"BW": db}, chains=CODES)
            stop = asyncio.Event()
            task = asyncio.create_task(watch.run(stop))
            while "BW" not in watch.ready:
                await asyncio.sleep(0.005)
            for record in records[:3]:  # three blocks, one record each
                node.submit(load_json(_body([record]))["records"])
                node.seal()
                height = node.store.head("BW").height  # type: ignore[union-attr]
                while ("BW", height) not in watch.first:
                    await asyncio.sleep(0.005)
            stop.set()
            await task
            return watch

    try:
        head = node.store.head("BW")
        before = head.height if head else 0
        watch = asyncio.run(scenario())
    finally:
        node.store.close()
    assert sorted(watch.first) == [("BW", before + i) for i in (1, 2, 3)]
    assert all(set(seen) == {"BW"} for seen in watch.first.values())
    assert watch.polls > 0
    assert watch.errors == 0
