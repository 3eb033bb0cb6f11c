"""Replaying a store's own log into an empty store rebuilds it exactly."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpledger.devtools.realistic import realistic_blocks
from kpledger.ledger.store import Store


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    total=st.integers(min_value=200, max_value=800),
    seed=st.integers(min_value=0, max_value=2**16),
    block_records=st.sampled_from([25, 100, 500]),
)
def test_causal_replay_rebuilds_store(
    tmp_path_factory: pytest.TempPathFactory,
    store_snapshot,
    store_records,
    total: int,
    seed: int,
    block_records: int,
) -> None:
    net, blocks = realistic_blocks(total, seed=seed, block_records=block_records)
    folder = tmp_path_factory.mktemp("replay")
    a = Store.open(f"sqlite:///{folder}/a.db", net.registry)
    b = Store.open(f"sqlite:///{folder}/b.db", net.registry)
    try:
        for block in blocks:
            a.writer.apply(block)
        replayed = 0
        for block in a.log.iter_causal(batch=7):
            b.writer.apply(block)
            replayed += 1
        assert replayed == len(blocks)
        assert store_snapshot(b) == store_snapshot(a)
        assert store_records(b) == store_records(a)
        assert b.heads() == a.heads()
        for chain, head in a.heads().items():
            assert b.frontier(chain).root() == a.frontier(chain).root() == head.root
            assert b.proofs.root_at(chain, head.size) == head.root
    finally:
        a.close()
        b.close()
