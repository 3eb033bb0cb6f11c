"""bench.commitments measures what it says: the entitled run keeps every disclosure of
the blocks (each opening its commitment), the plain run none, and the writer's work
makes exactly the records' commitments."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from bench.commitments import clear_bodies, committed_fields, parse_commitments, side_by_side
from kpledger.devtools.realistic import realistic_blocks
from kpledger.ledger.canonical import sha256
from kpledger.ledger.commit import keyed_salts, seal_body
from kpledger.ledger.registry import Registry
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t


def _disclosures(url: str, registry: Registry) -> int:
    store = Store.open(url, registry)
    try:
        with store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t.disclosures)).scalar_one())
    finally:
        store.close()


def test_the_entitled_run_keeps_every_disclosure_and_the_plain_run_none(tmp_path: Path) -> None:
    net, blocks = realistic_blocks(600, block_records=100)
    records = [r for b in blocks for r in b.records]
    fields = committed_fields(records)
    assert len(fields) == sum(len(r.disclosures) for r in records) > len(records) // 2
    plain, full = f"sqlite:///{tmp_path / 'plain.db'}", f"sqlite:///{tmp_path / 'full.db'}"
    spent = side_by_side(plain, full, net.registry, blocks, sha256(b"salts"))
    assert set(spent) == {"ingest", "entitled_ingest", "intake", "parse", "writer"}
    assert all(seconds > 0 for seconds in spent.values())
    assert _disclosures(plain, net.registry) == 0
    assert _disclosures(full, net.registry) == len(fields)
    assert parse_commitments(fields) > 0
    # the writer's bodies are the records' own clear bodies: committed with the salts the
    # records were made with, they give the records' bodies back
    bodies = clear_bodies(records)
    assert len(bodies) == sum(1 for r in records if r.disclosures)
    secret = sha256(f"kpledger-test-salts:{net.network_id}".encode())
    by_scope = {f"{r.network}\n{r.chain}\n{r.id}": r for r in records}
    for kind, scope, body in bodies[:50]:
        sealed, _ = seal_body(kind, body, salts=keyed_salts(secret, scope))
        assert sealed == by_scope[scope].body_json
