"""The CLI's shared renderings: the lineage tree and certificate states."""

from __future__ import annotations

from rich.console import Console

from kpledger.api.deps import Caller
from kpledger.api.provenance import history_view
from kpledger.cli.render import history_tree, ref, status_text
from kpledger.devtools import artisanal
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.records import Record
from kpledger.ledger.store import Store


def _diamond() -> Store:
    """BW-P is split in two and both halves are merged again, twice over: BW-P is an
    ancestor of BW-D through four paths."""
    net = Network.create(("BW",), ("WDC",))
    sc = Scenario(net)
    store = Store.open("sqlite://", net.registry)

    def seal(*records: Record) -> None:
        store.writer.apply(sc.seal("BW", *records))

    seal(sc.party("BW", "BW-MINE", "miner"))
    seal(sc.register("BW", "BW-P", "BW-MINE", 40_000, 4_000_000))
    seal(sc.split("BW", "BW-P", [("BW-A", 20_000, 2_000_000), ("BW-B", 20_000, 2_000_000)]))
    seal(sc.merge("BW", ["BW-A", "BW-B"], "BW-C", "BW-MINE"))
    seal(sc.split("BW", "BW-C", [("BW-C1", 10_000, 1_000_000), ("BW-C2", 30_000, 3_000_000)]))
    seal(sc.merge("BW", ["BW-C1", "BW-C2"], "BW-D", "BW-MINE"))
    return store


def _text(store: Store, parcel: str) -> str:
    found = store.parcel(parcel)
    assert found is not None
    history = history_view(store, found, Caller("auditor"), None, 1000)
    console = Console(width=200, record=True)
    console.print(history_tree(history.model_dump(exclude_none=True)))
    return console.export_text()


def test_history_tree_draws_each_subtree_once() -> None:
    store = _diamond()
    try:
        text = _text(store, "BW-D")
    finally:
        store.close()
    lines = text.splitlines()
    full = [line for line in lines if "BW-C " in line and "under BW" in line]
    again = [line for line in lines if "BW-C (its lineage is shown above)" in line]
    assert (len(full), len(again)) == (1, 1), text
    # the mine appears once in full, then only by name
    assert sum("BW-P " in line and "registered on BW" in line for line in lines) == 1, text
    assert len(lines) == 9, text


def test_certificate_states_are_words_and_never_upgraded() -> None:
    assert status_text({"status": "issued"}).startswith("issued (in transit")
    refused = status_text({"status": "refused", "refusal": {"reason": "Russian origin"}})
    assert refused == "refused by the importing authority: Russian origin"
    assert status_text({"status": "something-new"}) == "something-new"
    assert ref({"chain": "BW", "index": 4, "hash": "00"}) == "BW/4"


def test_an_export_lots_tree_names_each_first_sale_and_its_claim() -> None:
    net = Network.create(("SL", "EU", "BW"), ("WDC",))
    sc = Scenario(net)
    store = Store.open("sqlite://", net.registry)

    def seal(chain: str, *records: Record) -> None:
        store.writer.apply(sc.seal(chain, *records))

    try:
        artisanal.sierra_leone(sc, seal)
        text = _text(store, "SL-LOT1")
        assert "SL-LOT1 8.85 ct under EU" in text
        assert "SL-A1 1.20 ct under SL, spent; origin SL 100.0%; first sale on SL" in text
        assert "claim SL-C1" in text
        assert "SL-A3 4.80 ct under SL, spent; origin SL 100.0%; first sale on SL" in text
        assert "claim SL-C2" in text
    finally:
        store.close()
