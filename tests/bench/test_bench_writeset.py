"""The write-set baseline replays exactly the rows the store writes.

If the captured write set missed a table, or replayed different rows, the
ingest benchmark's honest baseline would flatter us; so the replay into an
empty store must leave every table identical to the store that was captured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from bench.writeset import capture, replay_postgres, replay_sqlite
from kpledger.devtools.realistic import realistic_blocks
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t


def _tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(url)
    out: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as conn:
            for table in t.metadata.sorted_tables:
                rows = conn.execute(select(table)).all()
                out[table.name] = sorted(
                    (tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows),
                    key=repr,
                )
    finally:
        engine.dispose()
    return out


@pytest.mark.timeout(240)
def test_replayed_write_set_equals_the_store(
    store_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    net, blocks = realistic_blocks(1500, seed=5, block_records=100)
    store = Store.open(store_url, net.registry)
    try:
        with capture(store.engine, store.bulk) as ws:
            for block in blocks:
                store.writer.apply(block)
    finally:
        store.close()
    assert ws.transactions, "nothing captured"
    assert ws.rows > sum(len(b.records) for b in blocks)  # more than one row per record

    if store_url.startswith("sqlite"):
        target = f"sqlite:///{tmp_path}/replay.db"
        Store.open(target, net.registry).close()
        replay_sqlite(Path(target.removeprefix("sqlite:///")), ws)
    else:
        target = request.getfixturevalue("pg_schemas")()
        Store.open(target, net.registry).close()
        replay_postgres(target, ws)

    captured = _tables(store_url)
    replayed = _tables(target)
    assert captured.keys() == replayed.keys()
    for name in captured:
        assert replayed[name] == captured[name], f"table {name} differs after the replay"
