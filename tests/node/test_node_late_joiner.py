"""A node that was in the genesis all along, started late with an empty store, catches up."""

from __future__ import annotations

import time
from typing import Any

import pytest

EARLY = ("BW", "RU", "AE")
LATE = "EU"
PER_CHAIN = 200


@pytest.mark.timeout(120)
def test_late_joiner_catches_up(cluster: Any, harness: Any) -> None:
    net = cluster((*EARLY, LATE), ())
    net.start(*EARLY)
    settled = {}
    for code in EARLY:
        writer = harness.ChainWriter(net.network_id, code, "lj")
        client = net.operator(code)
        ids = harness.submit_all(client, writer.mixed(PER_CHAIN), batch=100)
        settled[code] = client.wait_settled(ids, timeout=30)
        assert {o["status"] for o in settled[code].values()} == {"committed"}
    before = net.wait_converged(EARLY, timeout=30, chains=EARLY)
    assert not net.nodes[LATE].db_path.exists()

    started = time.monotonic()
    net.start(LATE)
    heads = net.wait_converged(
        (*EARLY, LATE),
        timeout=45,
        chains=(*EARLY, LATE),
        at_least={c: before[c]["height"] for c in EARLY},
    )
    took = time.monotonic() - started
    assert took < 45
    for code in EARLY:
        assert heads[code]["size"] >= len(settled[code])
    # the newcomer answers for the records of the others, at the same place
    late = net.reader(LATE)
    for code, outcomes in settled.items():
        for rid, want in list(outcomes.items())[::20]:
            found = late.outcome(rid, code)
            assert found is not None, (code, rid)
            assert (found["height"], found["index"], found["hash"]) == (
                want["height"],
                want["index"],
                want["hash"],
            )
    net.stop()
    net.verify_stores((LATE,))
