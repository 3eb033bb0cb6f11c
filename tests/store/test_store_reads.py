"""Reads while a writer works: a reader never sees a batch half-loaded.

Regression: ``prefetch`` filled the store's shared caches with ``None``
placeholders before loading them, and API reads take no lock, so a reader
was told "not found" for parcels that had existed for long (603 of 31,600
reads in one run with one writer thread and one reader).
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from kpledger.ledger.store import tables as t

pytestmark = pytest.mark.timeout(240)


def test_reads_never_see_a_batch_in_progress(open_store, workload) -> None:
    net, blocks = workload(6000, block_records=100)
    store = open_store(net.registry)
    half = len(blocks) // 3
    for b in blocks[:half]:
        store.writer.apply(b)
    with store.engine.connect() as conn:
        parcels = [r[0] for r in conn.execute(select(t.parcels.c.id))]
        parties = [r[0] for r in conn.execute(select(t.parties.c.id))]
        certs = [r[0] for r in conn.execute(select(t.certificates.c.number))]
    assert len(parcels) > 500
    # the parcels the remaining batches act on: the ones a prefetch loads
    touched = sorted(
        {p for b in blocks[half:] for r in b.records for p in _parcels_of(r)} & set(parcels)
    )
    assert len(touched) > 100

    done = threading.Event()
    failures: list[BaseException] = []
    missing: list[str] = []
    reads = 0

    def write() -> None:
        try:
            for b in blocks[half:]:
                store.writer.apply(b)
            # then what a node does with every submitted batch: load what it
            # reads, judge it, forget it (for a few seconds, on every batch)
            until = time.monotonic() + 4
            while time.monotonic() < until:
                for b in blocks[:half]:
                    store.prefetch(b.records)
                    store.forget_prefetched()
        except Exception as exc:  # noqa: BLE001 - the reader must stop, the test report it
            failures.append(exc)
        finally:
            done.set()

    def read() -> None:
        nonlocal reads
        try:
            i = 0
            while not done.is_set():
                pid = touched[i % len(touched)]
                if store.parcel(pid) is None:
                    missing.append(pid)
                if i % 7 == 0 and store.party(parties[i % len(parties)]) is None:
                    missing.append(parties[i % len(parties)])
                if certs and i % 11 == 0 and store.certificate(certs[i % len(certs)]) is None:
                    missing.append(certs[i % len(certs)])
                i += 1
            reads = i
        except Exception as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    writer = threading.Thread(target=write, name="writer")
    reader = threading.Thread(target=read, name="reader")
    start = time.monotonic()
    reader.start()
    writer.start()
    writer.join(timeout=200)
    reader.join(timeout=30)
    assert not writer.is_alive()
    assert not reader.is_alive()
    assert not failures, failures
    assert reads > 200, f"only {reads} reads in {time.monotonic() - start:.1f}s"
    assert missing == [], f"{len(missing)} of {reads} reads found nothing: {missing[:5]}"
    assert store.head(blocks[-1].header.chain) is not None


def _parcels_of(record: object) -> list[str]:
    body = getattr(record, "body", None)
    out: list[str] = []
    for name in ("parcel", "parents"):
        value = getattr(body, name, None)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, tuple | list):
            out += [v for v in value if isinstance(v, str)]
    for line in getattr(body, "lines", ()) or ():
        out.append(line.parcel)
    return out
