"""bench.artisanal's workload: every block it makes is accepted with full validation, and
the lots keep the claims of their first sales."""

from __future__ import annotations

from pathlib import Path

from bench.artisanal import CHAIN, artisanal_blocks
from kpledger.devtools.workload import Network
from kpledger.ledger.store import Store


def test_the_workload_applies_and_lots_keep_their_claims(tmp_path: Path) -> None:
    net = Network.create((CHAIN,), ("WDC",))
    store = Store.open(f"sqlite:///{tmp_path / 'a.db'}", net.registry)
    try:
        bought = 0
        for block, n in artisanal_blocks(net, 1_250, lot=500, claims=30):
            store.writer.apply(block)
            bought += n
        assert bought == 1_250
        lots = [store.parcel(f"{CHAIN}-LOT{i}") for i in (1, 2, 3)]
        assert all(lot is not None for lot in lots)
        for lot in lots:
            assert lot is not None
            assert sum(q for _, q in lot.claims) == lot.weight
            assert all(c.startswith(f"{CHAIN}-C") for c, _ in lot.claims)
        assert store.parcel(f"{CHAIN}-LOT4") is None  # 1,250 = 500 + 500 + 250
        assert store.verifier.verify().tables["purchases"] == 1_250
    finally:
        store.close()
