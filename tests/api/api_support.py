"""Fixtures of the API tests: stores holding realistic data, nodes over them, HTTP clients.

* ``example``: the in-process example story (``cli.example.run_example``) in a
  SQLite store, plus one shipment left open (``OPEN``: Dubai certifies the
  mixed lot to the EU again), served by the WDC auditor's node (no signer) and
  by the EU authority's node (the example network's EU key);
* ``realistic``: ``realistic_blocks(2000)`` applied to a store, served by EU;
* ``audit_case``: a constructed network history with one case of every audit
  finding (see ``build_audit_case``), served by WDC.

Every node answers through ``fastapi.testclient.TestClient`` over
``create_app(node)``: no background sealing or gossip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kpledger.api.app import create_app
from kpledger.cli.example import ExampleResult, run_example
from kpledger.devtools.realistic import realistic_blocks
from kpledger.devtools.workload import PRICE_PER_CARAT, Network, Scenario
from kpledger.ledger.blocks import Block, Evidence
from kpledger.ledger.chain import propose
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.records import Kind, Record
from kpledger.ledger.store import Store
from kpledger.node.config import NodeConfig, TokenConfig, hash_token
from kpledger.node.node import Node

#: role -> token for every node of these tests (party tokens name their party)
#: the shipment the ``example`` fixture leaves open on top of the story (AE to EU)
OPEN = "AE-2026-0003"
TOKENS = {
    "auditor": "tok-auditor",
    "operator": "tok-operator",
    "peer": "tok-peer",
    "observer": "tok-observer",
    "party:IN-JDAV2W3X": "tok-party-surat",
    "party:BW-ACL2HHH6": "tok-party-debswana",
    "party:EU-LVESSCDL": "tok-party-antwerp",
}


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def token_configs() -> tuple[TokenConfig, ...]:
    out = []
    for key, token in TOKENS.items():
        role, _, party = key.partition(":")
        out.append(TokenConfig(role, party or f"test-{role}", hash_token(token), party or None))
    return tuple(out)


def node_config(code: str, folder: Path, url: str) -> NodeConfig:
    return NodeConfig(
        path=folder / f"{code}.toml",
        code=code,
        host="127.0.0.1",
        port=8100,
        url="http://testserver",
        data_dir=folder,
        database_url=url,
        registry=folder / "genesis.json",
        key_file=None,
        secrets=None,
        tokens=token_configs(),
    )


def serve(code: str, store: Store, folder: Path, signer: Ed25519Signer | None) -> TestClient:
    node = Node(node_config(code, folder, "sqlite://"), store, signer)
    return TestClient(create_app(node), raise_server_exceptions=False)


# ---------------------------------------------------------------- the example story


@dataclass
class Example:
    store: Store
    wdc: TestClient
    eu: TestClient
    final: str


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    folder = tmp_path_factory.mktemp("example")
    result = run_example(f"sqlite:///{folder / 'example.db'}")
    net = result.net  # the example's keys, fresh on each run
    assert net.registry.network_id == result.store.registry.network_id
    leave_open(result)
    yield Example(
        result.store,
        serve("WDC", result.store, folder, None),
        serve("EU", result.store, folder, net.signers["EU"]),
        result.final_parcel,
    )
    result.store.close()


def leave_open(result: ExampleResult) -> None:
    """On top of the story, one shipment left open (``OPEN``): Dubai certifies the mixed
    lot the EU refused to the EU again, and the EU neither confirms nor refuses it."""
    s = result.story
    s.commit(
        "AE",
        s.issue("AE", OPEN, "EU", "AE-F6F7FV5W", ["AE-MIX-1"], "Antwerp rough importer"),
    )
    for chain in ("EU", "BW"):  # heartbeats: AE's new block is cosigned too
        s.clients[chain].seal()


# ---------------------------------------------------------------- a realistic network


@dataclass
class Realistic:
    net: Network
    blocks: list[Block]
    store: Store
    client: TestClient


@pytest.fixture(scope="session")
def realistic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realistic]:
    """2,000 records; blocks of 250 so that confirmations are among them."""
    folder = tmp_path_factory.mktemp("realistic")
    net, blocks = realistic_blocks(2000, block_records=250)
    store = Store.open(f"sqlite:///{folder / 'realistic.db'}", net.registry)
    for block in blocks:
        store.writer.apply(block)
    yield Realistic(net, blocks, store, serve("EU", store, folder, net.signers["EU"]))
    store.close()


# ---------------------------------------------------------------- one case of every finding


def cents(carats: int, usd_per_carat: int) -> int:
    return carats * usd_per_carat * 100


@dataclass
class AuditCase:
    """What ``build_audit_case`` made, by name, to compare the report against."""

    net: Network
    store: Store
    blocks: list[Block] = field(default_factory=list)
    records: dict[str, Record] = field(default_factory=dict)
    evidence: Evidence | None = None
    until: str = ""
    client: TestClient | None = None
    #: the scenario that wrote it, for a test that seals more
    sc: Scenario | None = None


def build_audit_case(url: str) -> AuditCase:
    """A year of trade with one case of each finding of the audit report.

    * BW exports eight 100 ct parcels (at Botswana's 2023 price) and one at
      700 USD/ct: BW-C7 is a price outlier against its group's median only;
    * DR Congo exports a 100 ct parcel at 500 USD/ct: CD-C1 is an outlier
      against the 2023 reference (about 7.8 USD/ct);
    * the EU confirms BW-C6 with 90 ct received of 100: a discrepancy, and a
      mirror mismatch BW -> EU beyond the tolerance;
    * BW-C8 to India is never confirmed: unconfirmed after 45 days, and a
      mirror mismatch BW -> IN;
    * AE (no production in the KP statistics) registers a parcel;
    * governance suspends RU, RU registers a parcel anyway, RU is
      reinstated and registers another (which is not a finding);
    * AE signs two different blocks at one height: equivocation evidence;
    * the EU refuses BW-C9 (documents): a refusal, and no mirror mismatch.
    """
    net = Network.create(("BW", "RU", "AE", "EU", "IN", "CD"), ("WDC",))
    sc = Scenario(net)
    store = Store.open(url, net.registry)
    case = AuditCase(net, store, sc=sc)
    bw, cd = PRICE_PER_CARAT["BW"], 500

    def seal(chain: str, *named: tuple[str, Record]) -> None:
        block = sc.seal(chain, *(r for _, r in named))
        store.writer.apply(block)
        case.blocks.append(block)
        for name, record in named:
            case.records[name] = record

    seal(
        "BW",
        ("p1", sc.party("BW", "BW-DEB", "miner")),
        ("p2", sc.party("BW", "BW-OKA", "exporter")),
    )
    seal("RU", ("p3", sc.party("RU", "RU-ALR", "miner")))
    seal("AE", ("p4", sc.party("AE", "AE-DMCC", "trader")))
    seal("EU", ("p5", sc.party("EU", "EU-ANT", "importer")))
    seal("IN", ("p6", sc.party("IN", "IN-SUR", "manufacturer")))
    seal("CD", ("p7", sc.party("CD", "CD-MIBA", "miner")))
    seal(
        "BW",
        *(
            (f"BW-P{i}", sc.register("BW", f"BW-P{i}", "BW-OKA", 10_000, cents(100, bw)))
            for i in range(1, 7)
        ),
        ("BW-P7", sc.register("BW", "BW-P7", "BW-OKA", 10_000, cents(100, 700))),
        ("BW-P8", sc.register("BW", "BW-P8", "BW-OKA", 5_000, cents(50, bw))),
        ("BW-P9", sc.register("BW", "BW-P9", "BW-OKA", 10_000, cents(100, bw))),
    )
    seal(
        "CD",
        ("CD-P1", sc.register("CD", "CD-P1", "CD-MIBA", 10_000, cents(100, cd), mine="Mbuji-Mayi")),
    )
    seal("AE", ("AE-P1", sc.register("AE", "AE-P1", "AE-DMCC", 2_000, cents(20, 100), mine="none")))
    seal(
        "BW",
        *(
            (f"BW-C{i}", sc.issue("BW", f"BW-C{i}", "EU", "BW-OKA", [f"BW-P{i}"]))
            for i in range(1, 8)
        ),
        ("BW-C8", sc.issue("BW", "BW-C8", "IN", "BW-OKA", ["BW-P8"], days=60)),
        ("BW-C9", sc.issue("BW", "BW-C9", "EU", "BW-OKA", ["BW-P9"])),
    )
    seal("CD", ("CD-C1", sc.issue("CD", "CD-C1", "AE", "CD-MIBA", ["CD-P1"])))
    seal(
        "EU",
        *((f"conf-BW-C{i}", sc.confirm("EU", f"BW-C{i}", "EU-ANT")) for i in (1, 2, 3, 4, 5, 7)),
        ("conf-BW-C6", sc.confirm("EU", "BW-C6", "EU-ANT", {"BW-P6": 9_000})),
        ("refuse-BW-C9", sc.refuse("EU", "BW-C9", "documents", "importer unknown at the address")),
    )
    seal("AE", ("conf-CD-C1", sc.confirm("AE", "CD-C1", "AE-DMCC")))
    sc.clock += timedelta(days=45)
    seal("KP", ("suspend", sc.governance(Kind.MEMBER_SUSPEND, {"code": "RU", "reason": "plenary"})))
    seal("RU", ("RU-P1", sc.register("RU", "RU-P1", "RU-ALR", 3_000, cents(30, 97), mine="Mir")))
    seal("KP", ("reinstate", sc.governance(Kind.MEMBER_REINSTATE, {"code": "RU", "reason": "ok"})))
    seal("RU", ("RU-P2", sc.register("RU", "RU-P2", "RU-ALR", 3_000, cents(30, 97), mine="Mir")))
    # AE signs two blocks at one height; the network keeps one, the other is the evidence
    when = sc.tick()
    a = propose(
        sc.ledger.state,
        net.registry,
        net.signer("AE"),
        "AE",
        [sc.register("AE", "AE-P2", "AE-DMCC", 1_000, cents(10, 100))],
        when,
    )
    b = propose(
        sc.ledger.state,
        net.registry,
        net.signer("AE"),
        "AE",
        [sc.register("AE", "AE-P3", "AE-DMCC", 1_000, cents(10, 100))],
        when,
    )
    assert a.block.header.height == b.block.header.height
    sc.ledger.commit(a)
    store.writer.apply(a.block)
    case.blocks.append(a.block)
    case.records["AE-P2"] = a.block.records[0]
    case.evidence = Evidence.build(a.block.signed, b.block.signed)
    assert store.evidence.add(case.evidence)
    case.until = sc.clock.date().isoformat()
    return case


@pytest.fixture(scope="session")
def audit_case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditCase]:
    folder = tmp_path_factory.mktemp("audit")
    case = build_audit_case(f"sqlite:///{folder / 'audit.db'}")
    case.client = serve("WDC", case.store, folder, None)
    yield case
    case.store.close()
