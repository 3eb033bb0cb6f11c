"""A store that holds one version of a forked chain and blocks witnessing the other.

After an equivocation, a node keeps the version of the forked chain it took
first, and applies other chains' blocks that witness the other version (the
evidence caps the witness at the last common header). Its store must still
pass ``verify`` (a replay with the evidence it holds) and survive an export and
an import: both used to refuse such a block as ``witness-invalid``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.chain import detect_equivocation, fork_heights
from kpledger.ledger.errors import WitnessInvalid
from kpledger.ledger.store import Store
from kpledger.ledger.store.backup import export_store, import_file


def test_fork_witnessed_both_ways_verifies_exports_and_imports(tmp_path: Path) -> None:
    sc = Scenario(Network.create())
    sc.seal("BW", sc.party("BW", "BW-MINE", "miner"))
    sc.seal("EU", sc.party("EU", "EU-IMP", "importer"))
    other = Scenario(sc.net, serial=10_000)
    for chain in ("BW", "EU"):
        for block in sc.ledger.blocks[chain]:
            other.ledger.append(block)
    other.clock = sc.clock
    sc.seal("BW", sc.party("BW", "BW-A", "trader"))  # version A, held here
    other.seal("BW", other.party("BW", "BW-B", "trader"))  # version B
    eu = other.seal("EU", other.party("EU", "EU-T", "trader"))  # witnesses BW/2, version B
    evidence = detect_equivocation(sc.ledger.state, other.ledger.blocks["BW"][1].signed)
    assert evidence is not None
    forks = fork_heights([evidence])

    url = f"sqlite:///{tmp_path}/a.db"
    store = Store.open(url, sc.net.registry)
    try:
        for block in (sc.ledger.blocks["BW"][0], sc.ledger.blocks["EU"][0]):
            store.writer.apply(block)
        store.writer.apply(sc.ledger.blocks["BW"][1])
        with pytest.raises(WitnessInvalid):
            store.writer.apply(eu)
        store.evidence.add(evidence)
        store.writer.apply(eu, forks)
        report = store.verifier.verify()
        assert report.blocks == 4
        heads = store.heads()
    finally:
        store.close()

    out = tmp_path / "a.jsonl"
    export_store(url, out)
    copy = f"sqlite:///{tmp_path}/b.db"
    imported = import_file(out, copy)
    assert imported.blocks == 4
    assert imported.evidence == 1
    again = Store.open(copy, sc.net.registry)
    try:
        assert again.heads() == heads
        assert [ev.id for ev in again.evidence.all()] == [evidence.id]
        again.verifier.verify()
    finally:
        again.close()
