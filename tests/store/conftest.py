"""Fixtures of the store tests: one store URL per backend, fresh for every test.

``store_url`` (from ``tests/conftest.py``) runs each test on SQLite and on
PostgreSQL, each PostgreSQL test in a schema of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import Any

import pytest
from sqlalchemy import func, select

from kpledger.devtools.realistic import realistic_blocks
from kpledger.devtools.workload import Network
from kpledger.ledger.blocks import Block
from kpledger.ledger.chain import MemoryLedger
from kpledger.ledger.registry import Registry
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.verify import DERIVED

Snapshot = dict[str, Any]


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[..., Store]]:
    """``open_store(registry)`` opens the test's store; every store opened is closed at the end."""
    opened: list[Store] = []

    def _open(registry: Registry | None, url: str | None = None, **kw: Any) -> Store:
        store = Store.open(url or store_url, registry, **kw)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@cache
def _workload(total: int, seed: int, block_records: int) -> tuple[Network, tuple[Block, ...]]:
    net, blocks = realistic_blocks(total, seed=seed, block_records=block_records)
    return net, tuple(blocks)


@pytest.fixture(scope="session")
def workload() -> Callable[..., tuple[Network, tuple[Block, ...]]]:
    """``workload(total, seed=7, block_records=500)``: ``realistic_blocks``, generated once."""

    def _get(
        total: int, *, seed: int = 7, block_records: int = 500
    ) -> tuple[Network, tuple[Block, ...]]:
        return _workload(total, seed, block_records)

    return _get


def memory_ledger(net: Network, blocks: Iterable[Block]) -> MemoryLedger:
    mem = MemoryLedger(net.registry)
    for b in blocks:
        mem.append(b)
    return mem


@pytest.fixture(scope="session")
def replay_in_memory() -> Callable[..., MemoryLedger]:
    """``replay_in_memory(net, blocks)``: a MemoryLedger that applied ``blocks`` in order."""
    return memory_ledger


def record_rows(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.records).order_by(t.records.c.chain, t.records.c.idx)).all()
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]


def record_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.records)).scalar() or 0)


def snapshot(store: Store) -> Snapshot:
    """Every derived table, the record count, and the heads: what a failed apply must not touch."""
    out: Snapshot = {name: store.verifier.table_rows(name) for name in DERIVED}
    out["records"] = record_count(store)
    out["heads"] = {c: h.hash for c, h in store.heads().items()}
    return out


@pytest.fixture(scope="session")
def store_snapshot() -> Callable[[Store], Snapshot]:
    return snapshot


@pytest.fixture(scope="session")
def store_records() -> Callable[[Store], list[tuple[Any, ...]]]:
    return record_rows
