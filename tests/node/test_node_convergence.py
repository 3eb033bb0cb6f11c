"""Five authorities and an auditor, written to at once, end with identical chains."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

AUTHORITIES = ("BW", "RU", "AE", "EU", "IN")
PER_CHAIN = 150  # records per authority (two parties, parcels, transfers, splits)


@pytest.mark.timeout(150)
def test_concurrent_writers_converge_and_stores_verify(cluster: Any, harness: Any) -> None:
    net = cluster(AUTHORITIES, ("WDC",))
    net.start()
    codes = [*AUTHORITIES, "WDC"]

    def write(chain: str) -> list[str]:
        w = harness.ChainWriter(net.network_id, chain, "cv")
        client = net.operator(chain)
        ids: list[str] = []
        for _ in range(3):  # three batches, so that writes overlap blocks and gossip
            ids += harness.submit_all(client, w.mixed(PER_CHAIN // 3), batch=100)
            time.sleep(0.1)
        return ids

    with ThreadPoolExecutor(len(AUTHORITIES)) as pool:
        futures = {c: pool.submit(write, c) for c in AUTHORITIES}
        submitted = {c: f.result(timeout=90) for c, f in futures.items()}

    # every record is sealed on its own chain
    committed: dict[str, dict[str, dict[str, Any]]] = {}
    for chain, ids in submitted.items():
        assert len(ids) == len(set(ids)) >= PER_CHAIN
        outcomes = net.operator(chain).wait_settled(ids, timeout=60)
        assert {o["status"] for o in outcomes.values()} == {"committed"}
        committed[chain] = outcomes

    # ... and replicated everywhere: all six nodes answer the same heads
    heads = net.wait_converged(
        codes,
        timeout=60,
        chains=AUTHORITIES,
        at_least={c: max(o["height"] for o in committed[c].values()) for c in AUTHORITIES},
    )
    for chain in AUTHORITIES:
        assert heads[chain]["size"] >= len(submitted[chain])

    # every node holds the same record at the same place (a sample of each chain)
    auditor = net.reader("WDC")
    ru = net.reader("RU")
    for chain, outcomes in committed.items():
        for rid in list(outcomes)[:: max(1, len(outcomes) // 5)]:
            for client in (auditor, ru):
                found = client.outcome(rid, chain)
                assert found is not None, (chain, rid)
                for key in ("status", "height", "index", "hash"):
                    assert found[key] == outcomes[rid][key], (chain, rid, key)

    # a clean stop, then every store replays to the same derived state
    net.stop()
    for code in codes:
        assert net.nodes[code].proc.returncode == 0, harness.log_tail(net.nodes[code].log)
    net.verify_stores(codes)
