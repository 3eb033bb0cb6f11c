"""A node keeps the place its pull of a chain's disclosures reached, across restarts.

BW's writer store holds its disclosures; the EU's store holds the same blocks as
bytes. The EU pulls BW's disclosures (``node.disclose.pull_disclosures``, as its
gossip does, answered by BW's ``disclosures_json`` in pages of two records), its
store is closed and opened again (what a node restart does: the gossip's memory
is gone), BW seals another certificate to the EU, and the next pull asks only
from where the first stopped.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block
from kpledger.ledger.errors import DisclosureError
from kpledger.ledger.store import Store
from kpledger.node.disclose import disclosures_json, pull_disclosures


def as_bytes(block: Block) -> Block:
    return Block.from_json(block.to_json(), max_records=1000)  # no disclosures


def test_a_restarted_node_pulls_disclosures_from_where_it_stopped(tmp_path: Path) -> None:
    net = Network.create(("BW", "EU", "AE"), ("WDC",))
    sc = Scenario(net)
    writer = Store.open(f"sqlite:///{tmp_path / 'bw.db'}", net.registry)
    eu_url = f"sqlite:///{tmp_path / 'eu.db'}"
    reader = Store.open(eu_url, net.registry)

    def seal(chain: str, *records: Any) -> None:
        block = sc.seal(chain, *records)
        writer.writer.apply(block)
        reader.writer.apply(as_bytes(block))

    seal("BW", sc.party("BW", "BW-K7Q2", "exporter", "Okavango Quiet Trading"))
    seal("EU", sc.party("EU", "EU-M4XA", "importer", "Schelde Discreet NV"))
    seal("BW", sc.register("BW", "BW-P1", "BW-K7Q2", 10_000, 1_340_000))
    seal("BW", sc.register("BW", "BW-P2", "BW-K7Q2", 5_000, 700_000))
    seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-K7Q2", ["BW-P1"]))
    asked: list[int] = []

    async def get(path: str, params: dict[str, Any]) -> Any:
        assert path == "/v1/disclosures"
        asked.append(params["from"])
        return disclosures_json(writer, "BW", params["from"], 2, "EU", "authority")

    held = reader.head("BW")
    assert held is not None
    assert reader.disclosures.pulled("BW") == 0
    assert asyncio.run(pull_disclosures(get, reader, "BW")) == held.size
    assert asked[0] == 0
    assert asked == sorted(asked)
    assert reader.disclosures.pulled("BW") == held.size
    first = reader.certificate("BW-C1")
    assert first is not None
    assert reader.disclosures.clear([first.value]) == {first.value: 1_340_000}

    reader.close()  # the node stops ...
    reader = Store.open(eu_url, net.registry)  # ... and starts again
    try:
        assert reader.disclosures.pulled("BW") == held.size
        seal("BW", sc.issue("BW", "BW-C2", "EU", "BW-K7Q2", ["BW-P2"]))
        asked.clear()
        now = reader.head("BW")
        assert now is not None
        assert asyncio.run(pull_disclosures(get, reader, "BW")) == now.size
        assert asked == [held.size]  # not from 0: the place came from the store
        second = reader.certificate("BW-C2")
        assert second is not None
        assert reader.disclosures.clear([second.value]) == {second.value: 700_000}
        assert reader.disclosures.pulled("BW") == now.size
    finally:
        reader.close()
        writer.close()


def test_a_refused_answer_leaves_the_place_where_it_was(tmp_path: Path) -> None:
    net = Network.create(("BW", "EU"), ())
    sc = Scenario(net)
    writer = Store.open(f"sqlite:///{tmp_path / 'bw.db'}", net.registry)
    reader = Store.open(f"sqlite:///{tmp_path / 'eu.db'}", net.registry)
    try:
        for block in (
            sc.seal("BW", sc.party("BW", "BW-X1", "exporter", "Quiet Exports")),
            sc.seal("EU", sc.party("EU", "EU-Y1", "importer", "Quiet Imports")),
            sc.seal("BW", sc.register("BW", "BW-P1", "BW-X1", 10_000, 1_000_000)),
            sc.seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-X1", ["BW-P1"])),
        ):
            writer.writer.apply(block)
            reader.writer.apply(as_bytes(block))

        async def forged(path: str, params: dict[str, Any]) -> Any:
            answer = disclosures_json(writer, "BW", params["from"], 500, "EU", "authority")
            for item in answer["disclosures"]:
                d = item["disclosure"]
                if isinstance(d["value"], int):
                    d["value"] += 1
            return answer

        with pytest.raises(DisclosureError):
            asyncio.run(pull_disclosures(forged, reader, "BW"))
        assert reader.disclosures.pulled("BW") == 0
    finally:
        reader.close()
        writer.close()
