"""An authority's node killed with SIGKILL under load loses nothing it answered.

A client thread keeps submitting batches to BW and asks what became of the
records it was answered for; BW is killed (``kill -9``) at three seeded
moments and restarted each time. The client retries a batch it got no answer
for with the same ids, as clients may: the second submission gets the first's
outcome. In the end every record BW ever answered ``committed`` is still
committed at the same place, every record answered ``pending`` ended
committed or rejected, BW's store verifies, and BW has caught up with RU and
AE.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from kpledger.node.client import ClientError

SEED = 20260302
KILLS = 3
BATCH = 40


class Load:
    """Batches to BW from a worker thread; remembers every answer BW gave."""

    def __init__(self, net: Any, writer: Any) -> None:
        self.net = net
        self.writer = writer
        self.pending: set[str] = set()  # answered pending at least once
        self.committed: dict[str, dict[str, Any]] = {}  # answered committed: where
        self.batches = 0
        self.retries = 0
        self.stop = threading.Event()

    def run(self) -> None:
        client = self.net.operator("BW", timeout=3.0)
        records = self.writer.mixed(BATCH)
        sent: list[list[str]] = []
        while not self.stop.is_set():
            try:
                results = client.submit(records)
            except (httpx.TransportError, ClientError) as exc:
                if isinstance(exc, ClientError) and exc.status < 500:
                    raise
                self.retries += 1  # BW is down (or restarting): the same batch again
                time.sleep(0.05)
                continue
            for r in results:
                assert r["status"] in ("pending", "committed"), r
                if r["status"] == "pending":
                    self.pending.add(r["id"])
                else:
                    self.committed[r["id"]] = r
            self.batches += 1
            sent.append([r.id for r in records])
            if len(sent) > 3:  # a batch sent a little earlier: likely sealed by now
                self.check(client, sent.pop(0))
            records = self.writer.mixed(BATCH)

    def check(self, client: Any, ids: list[str]) -> None:
        """Ask about earlier answers; remember every ``committed`` one with its place."""
        for rid in ids:
            try:
                found = client.outcome(rid)
            except (httpx.TransportError, ClientError):
                return
            if found is not None and found["status"] == "committed":
                self.committed[rid] = found


@pytest.mark.timeout(150)
def test_kill_9_under_load_loses_nothing(cluster: Any, harness: Any) -> None:
    rng = random.Random(SEED)
    net = cluster(("BW", "RU", "AE"), ())
    net.start()
    bw = net.nodes["BW"]
    load = Load(net, harness.ChainWriter(net.network_id, "BW", "crash"))
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(load.run)
        try:
            for _ in range(KILLS):
                time.sleep(rng.uniform(1.0, 3.0))
                before = load.batches
                bw.kill()
                time.sleep(rng.uniform(0.0, 0.5))
                bw.start()
                bw.wait_ready()
                deadline = time.monotonic() + 20
                while load.batches <= before + 1 and not running.done():
                    assert time.monotonic() < deadline, "no progress after a restart"
                    time.sleep(0.05)
            time.sleep(1.0)
        finally:
            load.stop.set()
        running.result(timeout=30)  # the client's own failures, if any
    assert load.retries > 0, "no kill landed while the client was waiting for BW"
    assert len(load.committed) > BATCH, (load.batches, len(load.committed))

    client = net.operator("BW")
    answered = load.pending | set(load.committed)
    final = client.wait_settled(sorted(answered), timeout=60)
    lost = sorted(rid for rid in answered if rid not in final)
    assert not lost
    # (committed or rejected; this workload is valid, so a rejection would be a bug too)
    assert {o["status"] for o in final.values()} == {"committed"}
    for rid, seen in load.committed.items():
        now = final[rid]
        assert now["status"] == "committed", (rid, now)
        assert (now["height"], now["index"], now["hash"]) == (
            seen["height"],
            seen["index"],
            seen["hash"],
        ), rid

    net.wait_converged(("BW", "RU", "AE"), timeout=60, chains=("BW", "RU", "AE"))
    net.stop()
    net.verify_stores(("BW",))
