"""Disclosures in the store: who is answered what, checks on arrival, and findings.

BW's writer store holds its own disclosures (its records carry them); a
second store (EU's, AE's or the auditor WDC's) holds the same blocks received
as bytes, without any. ``for_reader`` answers each what it is entitled to;
``receive_disclosures`` checks each against the record held, refusing the
whole answer at the first that does not open its commitment; a disclosure
rule found broken on arrival becomes a finding while the block stays.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger import commit as commit_module
from kpledger.ledger.blocks import Block
from kpledger.ledger.errors import DisclosureError
from kpledger.ledger.records import Record
from kpledger.ledger.store import Store
from kpledger.ledger.store import disclosures as disclosures_module
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.audit import Period
from kpledger.node.disclose import disclosures_json, receive_disclosures

Opener = Callable[..., Store]


def story() -> tuple[Network, list[Block]]:
    net = Network.create(("BW", "EU", "AE"), ("WDC",))
    sc = Scenario(net)
    blocks = [
        sc.seal("BW", sc.party("BW", "BW-K7Q2", "exporter", "Okavango Quiet Trading")),
        sc.seal("EU", sc.party("EU", "EU-M4XA", "importer", "Schelde Discreet NV")),
        sc.seal("BW", sc.register("BW", "BW-P1", "BW-K7Q2", 10_000, 1_340_000)),
        sc.seal("BW", sc.split("BW", "BW-P1", [("BW-P2", 4_000, 536_000), ("BW-P3", 6_000, 1)])),
        sc.seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-K7Q2", ["BW-P2"])),
    ]
    return net, blocks


def stores(open_store: Opener, tmp_path: Path) -> tuple[Network, Store, Store]:
    net, blocks = story()
    writer = open_store(net.registry, f"sqlite:///{tmp_path / 'bw.db'}")
    reader = open_store(net.registry)
    for b in blocks:
        writer.writer.apply(b)  # the writer's records carry their disclosures
        reader.writer.apply(Block.from_json(b.to_json(), max_records=1000))  # bytes only
    return net, writer, reader


def answer_for(writer: Store, reader: str, role: str) -> dict[str, Any]:
    return disclosures_json(writer, "BW", 0, 500, reader, role)


def kinds(answer: dict[str, Any], writer: Store) -> list[tuple[str, str]]:
    out = []
    for item in answer["disclosures"]:
        record = writer.log.record("BW", item["index"])
        assert record is not None
        out.append((record.kind.value, item["disclosure"]["path"]))
    return out


def test_each_peer_is_answered_what_it_is_entitled_to(open_store: Opener, tmp_path: Path) -> None:
    _, writer, _ = stores(open_store, tmp_path)
    assert answer_for(writer, "AE", "authority")["disclosures"] == []
    eu = kinds(answer_for(writer, "EU", "authority"), writer)
    assert sorted(eu) == [
        ("certificate.issue", "body.importer.address"),
        ("certificate.issue", "body.importer.name"),
        ("certificate.issue", "body.lines[0].value"),
        ("certificate.issue", "body.seal"),
        ("certificate.issue", "body.value"),
        ("party.register", "body.address"),  # the certificate's exporter
        ("party.register", "body.name"),
    ]
    auditor = kinds(answer_for(writer, "WDC", "auditor"), writer)
    assert {k for k, _ in auditor} == {
        "party.register",
        "parcel.register",
        "parcel.split",
        "certificate.issue",
    }
    assert answer_for(writer, "WDC", "auditor")["next"] == writer.head("BW").size  # type: ignore[union-attr]


def test_received_disclosures_are_checked_and_kept(open_store: Opener, tmp_path: Path) -> None:
    _, writer, reader = stores(open_store, tmp_path)
    cert = reader.certificate("BW-C1")
    assert cert is not None
    assert reader.disclosures.clear([cert.value]) == {}
    kept, findings = receive_disclosures(reader, "BW", answer_for(writer, "EU", "authority"))
    assert (kept, findings) == (7, 0)
    assert reader.disclosures.clear([cert.value, cert.importer_name]) == {
        cert.value: 536_000,
        cert.importer_name: "Importer in EU",
    }
    # the imported parcel's value is its certificate line's: the EU can read it
    parcel = reader.parcel("BW-P2")
    assert parcel is not None
    assert reader.disclosures.clear([parcel.value]) == {parcel.value: 536_000}


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("value", lambda d: d.update(value=d["value"] + 1)),
        ("salt", lambda d: d.update(salt="00" * 32)),
    ],
)
def test_a_disclosure_that_does_not_open_its_commitment_is_refused(
    open_store: Opener, tmp_path: Path, field: str, change: Callable[[dict[str, Any]], None]
) -> None:
    _, writer, reader = stores(open_store, tmp_path)
    answer = copy.deepcopy(answer_for(writer, "EU", "authority"))
    target = next(
        i["disclosure"] for i in answer["disclosures"] if i["disclosure"]["path"] == "body.value"
    )
    change(target)
    with pytest.raises(DisclosureError, match="do not open its commitment") as info:
        receive_disclosures(reader, "BW", answer)
    assert info.value.field == "body.value"
    assert info.value.code == "disclosure-mismatch"
    cert = reader.certificate("BW-C1")
    assert cert is not None
    assert reader.disclosures.clear([cert.importer_name]) == {}  # nothing of the answer kept


def test_records_committed_lately_are_not_parsed_again_for_their_rules(
    open_store: Opener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull right after the blocks it follows (gossip pulls a writer's disclosures
    once it has caught up with it) finds the records its disclosure rules read among
    those the store committed last, parsed already: none is parsed again, and the
    verdicts are the same."""
    _, writer, reader = stores(open_store, tmp_path)
    answer = answer_for(writer, "WDC", "auditor")
    split = next(
        r
        for r in (reader.log.record("BW", i["index"]) for i in answer["disclosures"])
        if r and r.kind.value == "parcel.split"
    )
    assert reader.recent_record(split.leaf) == split
    assert reader.recent_record(bytes(32)) is None
    built: list[bytes] = []
    real_build = Record.from_store

    def build(raw: bytes) -> Record:
        built.append(raw)
        return real_build(raw)

    monkeypatch.setattr(Record, "from_store", staticmethod(build))
    kept, findings = receive_disclosures(reader, "BW", answer)
    assert built == []
    assert kept > 0
    assert findings == 1  # the split's children are worth more than the parent


def test_a_disclosure_rule_broken_on_arrival_is_a_finding_not_a_rejection(
    open_store: Opener, tmp_path: Path
) -> None:
    _, writer, reader = stores(open_store, tmp_path)
    assert reader.parcel("BW-P3") is not None  # the split's block was applied: valid
    kept, findings = receive_disclosures(reader, "BW", answer_for(writer, "WDC", "auditor"))
    assert kept > 0
    assert findings == 1
    with reader.engine.connect() as conn:
        rows = conn.execute(
            t.disclosure_findings.select().with_only_columns(
                t.disclosure_findings.c.kind,
                t.disclosure_findings.c.code,
                t.disclosure_findings.c.rule,
                t.disclosure_findings.c.field,
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("parcel.split", "value-not-conserved", "3", "body.children")
    ]
    # the audit report lists it, with the record
    found = reader.audit.findings(Period(None, date(2100, 1, 1))).disclosure_inconsistent
    (item,) = found.items
    assert (item.chain, item.kind, item.code) == ("BW", "parcel.split", "value-not-conserved")
    assert "children are worth 536001 cents, the parent 1340000" in item.reason
    split = reader.log.record("BW", item.records[0].index)
    assert split is not None
    assert split.kind.value == "parcel.split"


def test_an_answer_is_checked_with_one_parse_per_record_and_one_value_query(
    open_store: Opener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The work an entitled node does per disclosure stays small (``bench.commitments``):
    each record is parsed once however many of its fields are disclosed, a ``Record`` is
    built only where a disclosure rule applies, and the values the rules read are
    fetched in one query. (Here none of the records is among those committed lately,
    whose parsed ``Record`` the store keeps: see the next test.)"""
    _, writer, reader = stores(open_store, tmp_path)
    monkeypatch.setattr(reader.disclosures, "_recent", lambda _leaf: None)
    answer = answer_for(writer, "WDC", "auditor")
    opened: list[str] = []  # a record's confidential paths, found once it is parsed
    real_paths = commit_module.confidential_paths

    def paths(doc: Any) -> tuple[str, ...]:
        opened.append(doc["kind"])
        return real_paths(doc)

    built: list[str] = []
    real_build = Record.from_store

    def build(raw: bytes) -> Record:
        record = real_build(raw)
        built.append(record.kind.value)
        return record

    queries: list[int] = []
    real_clear = reader.disclosures.clear

    def clear(commitments: Any) -> dict[str, int | str]:
        wanted = list(commitments)
        queries.append(len(wanted))
        return real_clear(wanted)

    for module in (disclosures_module, commit_module):
        monkeypatch.setattr(module, "confidential_paths", paths, raising=False)
    monkeypatch.setattr(Record, "from_store", staticmethod(build))
    monkeypatch.setattr(reader.disclosures, "clear", clear)
    kept, findings = receive_disclosures(reader, "BW", answer)
    indexes = {i["index"] for i in answer["disclosures"]}
    assert kept > len(indexes)  # records with several disclosed fields
    assert len(opened) == len(indexes)
    assert sorted(built) == ["certificate.issue", "parcel.split"]
    # one query: the split's two children and parent, the certificate's line and total
    assert len(queries) == 1
    assert queries[0] == 5
    assert findings == 1
