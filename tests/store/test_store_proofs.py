"""RFC 9162 proofs served from the stored Merkle nodes verify against signed
header roots, and cost O(1) statements (O(log n) rows) each."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from kpledger.ledger.blocks import Block, Header
from kpledger.ledger.errors import StoreError
from kpledger.ledger.merkle import EMPTY_ROOT, MemoryTree, verify_consistency, verify_inclusion
from kpledger.ledger.store import Store


def _by_chain(blocks: tuple[Block, ...]) -> tuple[dict[str, list[Header]], dict[str, list[bytes]]]:
    headers: dict[str, list[Header]] = defaultdict(list)
    leaves: dict[str, list[bytes]] = defaultdict(list)
    for b in blocks:
        headers[b.header.chain].append(b.header)
        leaves[b.header.chain].extend(r.leaf for r in b.records)
    return headers, leaves


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def test_proofs_verify_against_header_roots(open_store, workload) -> None:
    net, blocks = workload(800, block_records=40)
    store = open_store(net.registry)
    for b in blocks:
        store.writer.apply(b)
    headers, leaves = _by_chain(blocks)
    assert min(len(h) for h in headers.values()) >= 10
    assert max(len(x) for x in leaves.values()) >= 250

    for chain, hdrs in headers.items():
        tree = MemoryTree(leaves[chain])
        assert tree.size == hdrs[-1].size == len(leaves[chain])
        # every stored header's root, recomputed from the stored nodes
        for h in hdrs:
            assert store.proofs.root_at(chain, h.size) == h.root
        # every index at the head size, and at a few earlier signed sizes
        earlier = [h for h in hdrs[:-1] if h.size > 0]
        picked = [hdrs[-1], *(earlier[i] for i in sorted({0, len(earlier) // 2, len(earlier) - 1}))]
        for h in picked:
            for index in range(h.size):
                proof = store.proofs.inclusion(chain, index, h.size)
                verify_inclusion(leaves[chain][index], index, h.size, proof, h.root)
                if index % 17 == 0:
                    assert proof == tree.inclusion_proof(index, h.size)
        # consistency between every pair of signed sizes
        sizes = [(0, EMPTY_ROOT)] + [(h.size, h.root) for h in hdrs]
        for i, (size1, root1) in enumerate(sizes):
            for size2, root2 in sizes[i:]:
                proof = store.proofs.consistency(chain, size1, size2)
                verify_consistency(size1, size2, proof, root1, root2)
                assert proof == tree.consistency_proof(size1, size2)

        # beyond the stored log there is nothing to prove from
        head = hdrs[-1]
        with pytest.raises(StoreError, match="missing"):
            store.proofs.inclusion(chain, 0, head.size + 1)
        with pytest.raises(StoreError, match="missing"):
            store.proofs.consistency(chain, 1, head.size + 1)


def test_proof_costs_two_statements(open_store, workload) -> None:
    net, blocks = workload(4000)
    store = open_store(net.registry)
    for b in blocks:
        store.writer.apply(b)
    headers, leaves = _by_chain(blocks)
    chain = max(leaves, key=lambda c: len(leaves[c]))
    head = headers[chain][-1]
    assert head.size >= 2000
    rng = random.Random(2026)
    ends = [0, 1, head.size // 2, head.size - 2, head.size - 1]
    indices = [*ends, *rng.sample(range(head.size), 5)]
    for index in indices:
        with _statements(store) as seen:
            proof = store.proofs.inclusion(chain, index, head.size)
        assert 1 <= len(seen) <= 2, seen
        verify_inclusion(leaves[chain][index], index, head.size, proof, head.root)

    middle = headers[chain][len(headers[chain]) // 2]
    with _statements(store) as seen:
        proof = store.proofs.consistency(chain, middle.size, head.size)
    assert 1 <= len(seen) <= 2, seen
    verify_consistency(middle.size, head.size, proof, middle.root, head.root)

    with _statements(store) as seen:
        assert store.proofs.root_at(chain, middle.size) == middle.root
    assert 1 <= len(seen) <= 2, seen
