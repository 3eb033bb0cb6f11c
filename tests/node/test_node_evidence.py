"""The evidence ids a node announces in every gossip message, kept in memory.

``Node.evidence_ids`` is read for each gossip message sent or answered; it
answers from memory what the store holds, and what ``add_evidence`` adds is
in the next answer, also for a node started on a store that already holds
evidence.
"""

from __future__ import annotations

from pathlib import Path

from kpledger.ledger.store import Store
from kpledger.node.config import NodeConfig
from kpledger.node.node import Node
from tests.ledger.forked import forked


def _config(folder: Path, url: str) -> NodeConfig:
    return NodeConfig(
        path=folder / "RU.toml",
        code="RU",
        host="127.0.0.1",
        port=8100,
        url="http://ru.test",
        data_dir=folder,
        database_url=url,
        registry=folder / "genesis.json",
        key_file=None,
        secrets=None,
        peers=(),
    )


def test_evidence_ids_follow_what_the_node_adds(tmp_path: Path) -> None:
    sc, _other, evidence = forked()
    registry = sc.net.registry
    (tmp_path / "genesis.json").write_bytes(registry.to_bytes())
    url = f"sqlite:///{tmp_path / 'ru.db'}"
    store = Store.open(url, registry)
    try:
        node = Node(_config(tmp_path, url), store, sc.net.signers["RU"])
        assert node.evidence_ids() == []
        assert node.add_evidence(evidence)
        assert node.evidence_ids() == [evidence.id]
        assert not node.add_evidence(evidence)  # held already: still one
        assert node.evidence_ids() == [ev.id for ev in store.evidence.all()] == [evidence.id]
    finally:
        store.close()
    store = Store.open(url, registry)
    try:  # a node started on a store holding evidence announces it
        node = Node(_config(tmp_path, url), store, sc.net.signers["RU"])
        assert node.evidence_ids() == [evidence.id]
    finally:
        store.close()
