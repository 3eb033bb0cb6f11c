"""A network cut in two keeps writing on both sides, diverges, heals and converges.

Every node reaches every other through a TCP proxy of its own (one per
directed pair, run in the test process), so the test can cut exactly the
links between {BW, RU} and {AE, EU, IN}.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

WEST = ("BW", "RU")
EAST = ("AE", "EU", "IN")
ALL = WEST + EAST
PER_CHAIN = 120


def _outcome(net: Any, at: str, chain: str, rid: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = net.reader(at).outcome(rid, chain)
    return found


def _outcomes(net: Any, at: str, chain: str, rids: list[str]) -> dict[str, dict[str, Any]]:
    """The outcome of each of ``rids`` that ``at``'s node knows on ``chain`` (one request
    per 1,000 ids, each as ``_outcome`` gives it)."""
    found: dict[str, dict[str, Any]] = net.reader(at).outcomes(rids, chain)
    return found


@pytest.mark.timeout(150)
def test_partition_diverges_then_heals(cluster: Any, proxies: Any, harness: Any) -> None:
    net = cluster(ALL, ())
    links = {}
    for a, b in itertools.permutations(ALL, 2):
        links[a, b] = proxies.add(f"{a}->{b}", harness.port_of(net.nodes[b].url))
        net.route(a, b, links[a, b].url)
    net.start()
    writers = {c: harness.ChainWriter(net.network_id, c, "pt") for c in ALL}

    # before: everyone writes, everyone converges
    before = {c: harness.submit_all(net.operator(c), writers[c].mixed(PER_CHAIN)) for c in ALL}
    for c, ids in before.items():
        net.operator(c).wait_settled(ids, timeout=30)
    net.wait_converged(ALL, timeout=60, chains=ALL)
    assert all(links[a, b].accepted > 0 for a, b in links), "some pair never talked"

    # the cut: no link between the two sides, in either direction
    cut = [p for (a, b), p in links.items() if (a in WEST) != (b in WEST)]
    assert len(cut) == 2 * len(WEST) * len(EAST)
    proxies.set_cut(cut, True)
    during: dict[str, list[str]] = {}
    settled: dict[str, dict[str, dict[str, Any]]] = {}
    for c in ("BW", "RU", "AE", "EU"):
        during[c] = harness.submit_all(net.operator(c), writers[c].mixed(PER_CHAIN))
    for c, ids in during.items():
        settled[c] = net.operator(c).wait_settled(ids, timeout=30)
        assert {o["status"] for o in settled[c].values()} == {"committed"}

    # each side converges on its own, and does not see the other side's writes
    west = net.wait_converged(WEST, timeout=30, chains=ALL)
    east = net.wait_converged(EAST, timeout=30, chains=ALL)
    for chain in WEST:
        assert west[chain]["height"] > east[chain]["height"], (chain, west, east)
    for chain in ("AE", "EU"):
        assert east[chain]["height"] > west[chain]["height"], (chain, west, east)
    for c, ids in during.items():
        mine = WEST if c in WEST else EAST
        theirs = EAST if c in WEST else WEST
        for rid in (ids[0], ids[-1]):
            for at in mine:
                found = _outcome(net, at, c, rid)
                assert found is not None, (at, rid)
                assert found["hash"] == settled[c][rid]["hash"], (at, rid)
            for at in theirs:
                assert _outcome(net, at, c, rid) is None, (at, c, rid)
    refused = sum(p.refused for p in cut)
    assert refused > 0, "nobody tried to cross the cut"
    time.sleep(1.0)  # a little longer apart: heartbeats move every chain on

    # heal: everything reaches everyone, nothing is lost
    proxies.set_cut(cut, False)
    heads = net.wait_converged(ALL, timeout=60, chains=ALL)
    for chain in ALL:
        assert heads[chain]["height"] >= max(west[chain]["height"], east[chain]["height"])
    for c, ids in {**during, **before}.items():
        sample = ids[:: max(1, len(ids) // 4)]
        for at in ALL:
            held = _outcomes(net, at, c, sample)
            for rid in sample:
                found = held.get(rid)
                assert found is not None, (at, c, rid)
                assert found["status"] == "committed", (at, c, rid, found)
    for c, outcomes in settled.items():
        held = _outcomes(net, "IN" if c in WEST else "RU", c, list(outcomes))
        for rid, want in outcomes.items():
            found = held.get(rid)
            assert found is not None, (c, rid)
            assert found["hash"] == want["hash"], (c, rid)

    net.stop()
    net.verify_stores(ALL)
