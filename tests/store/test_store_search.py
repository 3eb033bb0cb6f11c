"""Search by prefix: ids and numbers that start with the prefix, case ignored, LIKE escaped."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kpledger.ledger.store import tables as t
from kpledger.ledger.store.search import MAX_SUGGESTIONS, like_prefix

pytestmark = pytest.mark.timeout(240)


def test_prefix_search_matches_a_scan(open_store, workload) -> None:
    net, blocks = workload(1500, block_records=100)
    store = open_store(net.registry)
    for b in blocks:
        store.writer.apply(b)
    with store.engine.connect() as conn:
        ids = sorted(r[0] for r in conn.execute(select(t.parcels.c.id)))
        numbers = sorted(r[0] for r in conn.execute(select(t.certificates.c.number)))
    assert len(ids) > 20
    assert len(numbers) > 5
    for typed in (ids[0][:3], ids[7][:-2], numbers[0][:4], numbers[-1], "X"):
        for prefix in (typed, typed.lower()):
            got = store.search.prefix(prefix, limit=10)
            want_ids = [i for i in ids if i.upper().startswith(prefix.upper())][:10]
            want_numbers = [n for n in numbers if n.upper().startswith(prefix.upper())][:10]
            assert list(got.parcels) == want_ids, prefix
            assert list(got.certificates) == want_numbers, prefix
    assert store.search.prefix(numbers[-1]).certificates == (numbers[-1],)
    assert len(store.search.prefix(ids[0][:2], limit=10_000).parcels) <= MAX_SUGGESTIONS


def test_like_characters_match_themselves(open_store, workload) -> None:
    net, blocks = workload(1500, block_records=100)
    store = open_store(net.registry)
    for b in blocks:
        store.writer.apply(b)
    with store.engine.connect() as conn:
        first = str(conn.execute(select(t.parcels.c.id).limit(1)).scalar())
    assert store.search.prefix(first[:3]).parcels  # "BW-" finds, "B_-" must not
    assert store.search.prefix(first[0] + "_" + first[2]).parcels == ()
    for wild in ("%", "_", "B_", "%W", "\\", "B%"):
        found = store.search.prefix(wild, limit=50)
        assert (found.parcels, found.certificates) == ((), ()), wild
    assert like_prefix("a%b_c\\") == "a\\%b\\_c\\\\%"
    empty = store.search.prefix("")
    assert empty.parcels == ()
    assert empty.certificates == ()
