"""``kpl db verify`` on a store a node is writing: one snapshot, never a false alarm.

Regression: verify replayed up to the heads its store read when it opened
and then compared the derived tables as they were later, so a block
committed meanwhile was reported as corruption ("derived table headers
differs ... 1437 rows live, 1436 replayed").
"""

from __future__ import annotations

import threading
import time

import pytest

from kpledger.ledger.store import Store

pytestmark = pytest.mark.timeout(240)


def test_verify_while_a_writer_appends(open_store, store_url, workload) -> None:
    net, blocks = workload(6000, block_records=40)
    writer = open_store(net.registry)
    first = len(blocks) // 2
    for b in blocks[:first]:
        writer.writer.apply(b)

    stop = threading.Event()
    failures: list[Exception] = []
    applied = first

    def write() -> None:
        nonlocal applied
        try:
            for b in blocks[first:]:
                if stop.is_set():
                    return
                writer.writer.apply(b)
                applied += 1
                time.sleep(0.01)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    thread = threading.Thread(target=write, name="writer")
    thread.start()
    reports = []
    seen: list[tuple[int, int]] = []
    try:
        checker = Store.open(store_url, create=False)  # as `kpl db verify` opens it
        try:
            while thread.is_alive() or len(reports) < 2:
                before = applied
                reports.append(
                    checker.verifier.verify(progress=lambda done, total: seen.append((done, total)))
                )
                if not thread.is_alive() and len(reports) >= 2:
                    break
                assert reports[-1].blocks >= before
        finally:
            checker.close()
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failures, failures
    assert len(reports) >= 2
    assert all(r.blocks >= first for r in reports)
    # at least one run overlapped the writer: it saw fewer blocks than there are now
    assert min(r.blocks for r in reports) < len(blocks)
    assert seen
    assert all(done <= total for done, total in seen)
    final = writer.verifier.verify()
    assert final.blocks == len(blocks)
