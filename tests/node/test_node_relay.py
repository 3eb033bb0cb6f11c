"""A block applied from one peer is pushed on to the node's other peers at once.

Three real ``kpl node run`` processes in a line: BW knows only WDC, WDC knows
BW and RU, RU knows only WDC. The gossip round interval is a minute and no
node seals heartbeats, so the only way RU can hold BW's new block within a
few seconds is WDC passing it on as soon as it applied it.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

ROUND = 60.0  # seconds between periodic gossip rounds: jittered, never under 30 s
PROMPT = 12.0  # what "at once" means under a loaded machine, far below ROUND / 2


@pytest.mark.timeout(120)
def test_applied_block_is_relayed_to_other_peers(cluster: Any, harness: Any) -> None:
    net = cluster(
        ("BW", "RU"),
        ("WDC",),
        blocks={"heartbeat": 3600.0},
        gossip={"interval": ROUND, "fanout": 3},
    )
    links = {"BW": {"WDC"}, "WDC": {"BW", "RU"}, "RU": {"WDC"}}

    for code, keep in links.items():

        def only(doc: dict[str, Any], keep: set[str] = keep) -> None:
            doc["gossip"]["peers"] = [p for p in doc["gossip"]["peers"] if p["code"] in keep]

        net.configure(code, only)
    net.start()
    time.sleep(1.0)  # the start-up round of each node is over; the next is >= 30 s away

    writer = harness.ChainWriter(net.network_id, "BW", "relay")
    ids = harness.submit_all(net.operator("BW"), [writer.party()])
    outcome = net.operator("BW").wait_settled(ids, timeout=30)[ids[0]]
    assert outcome["status"] == "committed"
    sealed = time.monotonic()

    deadline = sealed + PROMPT
    seen: dict[str, Any] = {}
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            seen = net.heads("RU", http)
            if seen.get("BW", {}).get("height", 0) >= outcome["height"]:
                break
            time.sleep(0.1)
    assert seen.get("BW", {}).get("height", 0) >= outcome["height"], (
        f"RU did not get BW's block {outcome['height']} within {PROMPT}s of its seal "
        f"(RU holds {seen.get('BW')}): WDC did not pass it on"
    )
    took = time.monotonic() - sealed
    assert took < ROUND / 2


def _pulled(net: Any, code: str, http: httpx.Client) -> float:
    text = http.get(f"{net.nodes[code].url}/metrics", timeout=2.0).text
    line = next(x for x in text.splitlines() if x.startswith("kpl_blocks_pulled_total "))
    return float(line.split()[1])


@pytest.mark.timeout(120)
def test_sealed_block_reaches_every_peer_in_one_push(cluster: Any, harness: Any) -> None:
    """With ``fanout`` 1, a sealed block still goes at once to every peer (``gossip.push``):
    each holds it within seconds, long before a round, and none pulled it. The others
    know only BW, so none of them can have passed it on."""
    others = ("RU", "AE", "EU")
    net = cluster(
        ("BW", *others),
        (),
        blocks={"heartbeat": 3600.0},
        gossip={"interval": ROUND, "fanout": 1},
    )
    for code in others:

        def only_bw(doc: dict[str, Any]) -> None:
            doc["gossip"]["peers"] = [p for p in doc["gossip"]["peers"] if p["code"] == "BW"]

        net.configure(code, only_bw)
    net.start()
    time.sleep(1.0)  # the start-up round of each node is over; the next is >= 30 s away
    with httpx.Client(timeout=2.0) as http:
        before = {c: _pulled(net, c, http) for c in others}
        writer = harness.ChainWriter(net.network_id, "BW", "push")
        ids = harness.submit_all(net.operator("BW"), [writer.party()])
        outcome = net.operator("BW").wait_settled(ids, timeout=30)[ids[0]]
        assert outcome["status"] == "committed"
        deadline = time.monotonic() + PROMPT
        missing = set(others)
        while missing and time.monotonic() < deadline:
            missing = {
                c
                for c in missing
                if net.heads(c, http).get("BW", {}).get("height", 0) < outcome["height"]
            }
            time.sleep(0.1)
        assert not missing, f"{sorted(missing)} lack BW's block {outcome['height']} after {PROMPT}s"
        after = {c: _pulled(net, c, http) for c in others}
    assert after == before, f"blocks were pulled, not pushed: {before} -> {after}"
