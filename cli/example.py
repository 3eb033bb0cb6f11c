"""The in-process example: one KP year of custody, verified into a SQL store.

Five authorities (BW, RU, AE, EU, IN) write their chains in memory; every
block they seal is applied, fully verified, to one SQL store, as a node of
the network would. The story follows DOMAIN.md: production in Botswana and
Russia, sorting, export under KP certificates, a mixed Dubai shipment that the
EU refuses for its Russian share, re-export from Antwerp to India, and cutting
in Surat. It ends by printing a parcel's lineage back to the mines and an
RFC 9162 inclusion proof checked against a signed checkpoint.

Records are built and sealed by ``devtools.workload.Scenario``, the builder the
tests use, but the keys are made afresh on each run (``Network.create(seed=None)``)
and live only in memory: the shipped command holds no fixed key. The network
and its keys come back in ``ExampleResult.net``, for a caller that signs more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kpledger.devtools.workload import PRICE_PER_CARAT, Network, Scenario
from kpledger.ledger.blocks import Block
from kpledger.ledger.errors import RuleViolation
from kpledger.ledger.merkle import verify_inclusion
from kpledger.ledger.records import Record
from kpledger.ledger.state import key_at
from kpledger.ledger.store import Store

__all__ = ["ExampleResult", "run_example"]


@dataclass
class ExampleResult:
    store: Store
    final_parcel: str
    net: Network
    refused: list[tuple[Record, RuleViolation]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    proof_size: int = 0
    proof_steps: int = 0


def _ct(carats: float) -> int:
    """Carats to integer hundredths of a carat (only for literals in this story)."""
    return round(carats * 100)


def run_example(url: str) -> ExampleResult:
    """Run the story into the store at ``url``; every block is verified on the way in."""
    net = Network.create(("BW", "RU", "AE", "EU", "IN"), ("WDC",), seed=None)
    sc = Scenario(net)
    store = Store.open(url, net.registry)
    result = ExampleResult(store, "IN-S2", net)

    def seal(chain: str, *records: Record, note: str) -> Block:
        proposal = sc.ledger.seal(net.signer(chain), chain, records, sc.tick(60))
        store.writer.apply(proposal.block)
        result.refused += proposal.rejected
        result.steps.append(f"{chain}/{proposal.block.header.height}: {note}")
        return proposal.block

    bw, ru = PRICE_PER_CARAT["BW"] * 100, PRICE_PER_CARAT["RU"] * 100  # cents per carat
    seal(
        "BW",
        sc.party("BW", "BW-DEBSWANA", "miner", "Debswana Diamond Company"),
        sc.party("BW", "BW-OKAVANGO", "exporter", "Okavango Diamond Company"),
        note="licensed parties registered",
    )
    seal("RU", sc.party("RU", "RU-ALROSA", "miner", "ALROSA"), note="licensed miner registered")
    seal(
        "AE",
        sc.party("AE", "AE-DMCC1", "trader", "Dubai rough trader"),
        note="Dubai trader registered",
    )
    seal(
        "EU",
        sc.party("EU", "EU-ANTWERP1", "importer", "Antwerp rough importer"),
        sc.restrict("EU", "RU"),
        note="Antwerp importer registered; EU restricts RU origin",
    )
    seal(
        "IN",
        sc.party("IN", "IN-SURAT1", "manufacturer", "Surat cutting works"),
        note="Surat manufacturer registered",
    )
    seal(
        "BW",
        sc.register("BW", "BW-JW-1", "BW-DEBSWANA", _ct(12_500), 12_500 * bw, mine="Jwaneng"),
        sc.register("BW", "BW-OR-1", "BW-DEBSWANA", _ct(8_000), 8_000 * bw, mine="Orapa"),
        note="production registered at Jwaneng and Orapa",
    )
    seal(
        "RU",
        sc.register("RU", "RU-MI-1", "RU-ALROSA", _ct(9_000), 9_000 * ru, mine="Mir"),
        note="production registered at Mir",
    )
    seal(
        "BW",
        sc.split(
            "BW",
            "BW-JW-1",
            [
                ("BW-JW-1a", _ct(5_000), 5_000 * bw),
                ("BW-JW-1b", _ct(4_500), 4_500 * bw),
                ("BW-JW-1c", _ct(3_000), 3_000 * bw),
            ],
        ),
        note="sorting in Gaborone: split into three lots",
    )
    seal(
        "BW",
        *(sc.transfer("BW", p, "BW-OKAVANGO") for p in ("BW-JW-1a", "BW-JW-1b", "BW-OR-1")),
        note="lots sold to the exporter",
    )
    seal(
        "BW",
        sc.issue("BW", "BW-2026-0001", "EU", "BW-OKAVANGO", ["BW-JW-1a", "BW-OR-1"]),
        sc.issue("BW", "BW-2026-0002", "AE", "BW-OKAVANGO", ["BW-JW-1b"]),
        note="KP certificates BW-2026-0001 to the EU and BW-2026-0002 to the UAE",
    )
    seal(
        "RU",
        sc.issue("RU", "RU-2026-0001", "AE", "RU-ALROSA", ["RU-MI-1"]),
        note="KP certificate RU-2026-0001 to the UAE",
    )
    seal(
        "AE",
        sc.confirm("AE", "BW-2026-0002", "AE-DMCC1"),
        sc.confirm("AE", "RU-2026-0001", "AE-DMCC1"),
        note="Dubai confirms both imports",
    )
    seal(
        "AE",
        sc.merge("AE", ["BW-JW-1b", "RU-MI-1"], "AE-MIX-1", "AE-DMCC1"),
        note="Dubai mixes Botswana and Russian goods",
    )
    seal(
        "AE",
        sc.issue("AE", "AE-2026-0001", "EU", "AE-DMCC1", ["AE-MIX-1"]),
        note="mixed-origin shipment certified to the EU",
    )
    seal(
        "EU",
        sc.confirm("EU", "AE-2026-0001", "EU-ANTWERP1"),
        sc.confirm("EU", "BW-2026-0001", "EU-ANTWERP1"),
        note="Antwerp confirms the Botswana shipment; the mixed one is refused",
    )
    seal(
        "EU",
        sc.merge("EU", ["BW-JW-1a", "BW-OR-1"], "EU-AW-1", "EU-ANTWERP1"),
        note="Antwerp assorts the two Botswana lots",
    )
    seal(
        "EU",
        sc.issue("EU", "EU-2026-0001", "IN", "EU-ANTWERP1", ["EU-AW-1"]),
        note="re-export to India under EU-2026-0001",
    )
    seal("IN", sc.confirm("IN", "EU-2026-0001", "IN-SURAT1"), note="Surat confirms")
    seal(
        "IN",
        sc.split(
            "IN", "EU-AW-1", [("IN-S1", _ct(6_000), 6_000 * bw), ("IN-S2", _ct(7_000), 7_000 * bw)]
        ),
        note="Surat sorts for cutting",
    )
    # Heartbeats: two other authorities' next blocks witness the latest ones, so
    # every block is cosigned (the registry's cosign: 2) and its bundles verify.
    seal("EU", note="EU's heartbeat witnesses IN's latest block")
    seal("BW", note="BW's heartbeat witnesses EU's and IN's latest blocks")

    # The proof: the final parcel's registration at the mine, against BW's signed head.
    signed = store.log.signed_head("BW")
    assert signed is not None
    key = key_at(store, "BW", signed.header.height)
    assert key is not None
    signed.verify_signature(key)
    origin_event = store.lineage.events("BW-JW-1")[0]
    proof = store.proofs.inclusion("BW", origin_event.ref.index, signed.header.size)
    verify_inclusion(
        origin_event.ref.hash, origin_event.ref.index, signed.header.size, proof, signed.header.root
    )
    result.proof_size = signed.header.size
    result.proof_steps = len(proof)
    return result
