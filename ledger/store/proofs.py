"""RFC 9162 proofs from a store: subtree hashes read from ``records`` and ``merkle_nodes``.

Level 0 of the tree is each record's leaf hash (``records.leaf``); every
complete subtree above it is a row of ``merkle_nodes``, so a proof costs one
indexed read of O(log n) rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, and_, or_, select

from kpledger.ledger.errors import StoreError
from kpledger.ledger.merkle import Coord, consistency_proof, inclusion_proof, root_at
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.rows import chunks

__all__ = ["NodeReader", "Proofs"]


class NodeReader:
    """Subtree hashes of one chain's log, for ``ledger.merkle``."""

    def __init__(self, engine: Engine, chain: str) -> None:
        self.engine = engine
        self.chain = chain

    def subtree_hashes(self, coords: Sequence[Coord]) -> list[bytes]:
        found: dict[Coord, bytes] = {}
        leaves = [i for lvl, i in coords if lvl == 0]
        nodes = [(lvl, i) for lvl, i in coords if lvl > 0]
        with self.engine.connect() as conn:
            for part in chunks(leaves):
                q = select(t.records.c.idx, t.records.c.leaf).where(
                    t.records.c.chain == self.chain, t.records.c.idx.in_(part)
                )
                found.update(((0, int(i)), bytes(h)) for i, h in conn.execute(q))
            m = t.merkle_nodes.c
            for part in chunks(nodes):
                # one OR of exact primary keys: each term is an index lookup
                q = select(m.level, m.idx, m.hash).where(
                    or_(
                        *(
                            and_(m.chain == self.chain, m.level == lvl, m.idx == i)
                            for lvl, i in part
                        )
                    )
                )
                for row in conn.execute(q):
                    found[(int(row[0]), int(row[1]))] = bytes(row[2])
        missing = [c for c in coords if c not in found]
        if missing:
            raise StoreError(f"merkle nodes missing for {self.chain}: {missing[:4]}")
        return [found[c] for c in coords]


class Proofs:
    """Inclusion and consistency proofs and roots of any stored chain."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def reader(self, chain: str) -> NodeReader:
        return NodeReader(self.engine, chain)

    def inclusion(self, chain: str, index: int, size: int) -> list[bytes]:
        return inclusion_proof(index, size, NodeReader(self.engine, chain))

    def consistency(self, chain: str, size1: int, size2: int) -> list[bytes]:
        return consistency_proof(size1, size2, NodeReader(self.engine, chain))

    def root_at(self, chain: str, size: int) -> bytes:
        return root_at(size, NodeReader(self.engine, chain))
