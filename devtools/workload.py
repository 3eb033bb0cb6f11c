"""Deterministic networks and realistic record streams.

Used by the tests, the benchmarks, ``kpl example`` and the specification's
vectors, so that all of them exercise the same rules on the same kind of
data. Nothing here is random unless a seed says so, and keys come from fixed
seeds (``Network.create(seed=None)`` makes fresh ones instead): never use a
seeded key for a real network.

Prices for realistic parcels come from public KP statistics for 2023
(``ledger.kpdata``): Botswana about 131 USD per carat, Russia about 97,
DR Congo about 8, Namibia about 517. Streams of many records in a realistic
mix are ``devtools.realistic``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kpledger.ledger.blocks import Block
from kpledger.ledger.canonical import sha256
from kpledger.ledger.chain import MemoryLedger, propose
from kpledger.ledger.commit import commit, keyed_salts, open_body
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.disclosed import check_disclosed
from kpledger.ledger.kpdata import PARTICIPANT_NAMES, PRODUCTION_2023
from kpledger.ledger.records import GOVERNANCE_CHAIN, Kind, Record, make_record
from kpledger.ledger.registry import Params, Participant, Registry
from kpledger.ledger.rules import certificate_origin

__all__ = ["NAMES", "PRICE_PER_CARAT", "Network", "Scenario"]

NAMES = PARTICIPANT_NAMES
#: whole USD per carat of 2023 production, from public KP statistics (ledger.kpdata)
PRICE_PER_CARAT = {c: round(v / ct) for c, (ct, v) in PRODUCTION_2023.items()}


def _seeded(label: str, seed: int | None) -> Ed25519Signer:
    """The key of ``label`` under ``seed``; a fresh random key when ``seed`` is None."""
    if seed is None:
        return Ed25519Signer.generate()
    return Ed25519Signer.from_seed(sha256(f"kpledger-test-key:{seed}:{label}".encode()))


@dataclass
class Network:
    """A registry with its keys: authorities, observers and governance.

    ``create`` derives every key from ``seed`` (the same network on every run,
    for tests and vectors), or makes fresh keys when ``seed`` is None.
    """

    registry: Registry
    signers: dict[str, Ed25519Signer]
    governance: list[Ed25519Signer]
    #: seals chain KP: the sealer's registry key (KP keeps it when the sealer rotates its own)
    kp: Ed25519Signer | None = None

    @classmethod
    def create(
        cls,
        authorities: Sequence[str] = ("BW", "RU", "AE", "EU", "IN"),
        observers: Sequence[str] = ("WDC",),
        *,
        seed: int | None = 0,
        governance: int = 3,
        threshold: int = 2,
        params: Params | None = None,
        created: str = "2026-01-01T00:00:00Z",
    ) -> Network:
        signers = {c: _seeded(c, seed) for c in (*authorities, *observers)}
        gov = [_seeded(f"governance-{i}", seed) for i in range(governance)]
        participants = [
            Participant(
                c,
                NAMES.get(c, c),
                "authority" if c in authorities else "auditor",
                f"http://127.0.0.1:{8100 + i}",
                signers[c].public,
            )
            for i, c in enumerate((*authorities, *observers))
        ]
        registry = Registry.create(
            name="kpledger-test",
            created=created,
            participants=participants,
            governance=gov,
            threshold=threshold,
            params=params,
        )
        sealer = registry.sealer
        return cls(registry, signers, gov, signers[sealer] if sealer else None)

    @property
    def network_id(self) -> str:
        return self.registry.network_id

    def signer(self, chain: str) -> Ed25519Signer:
        if chain == GOVERNANCE_CHAIN:
            if self.kp is None:
                raise KeyError("this network has no authority to seal chain KP")
            return self.kp
        return self.signers[chain]


@dataclass
class Scenario:
    """Writes records for a network and seals them into an in-memory ledger."""

    net: Network
    clock: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    ledger: MemoryLedger = field(init=False)
    #: the number in the last record id given (``r<serial>``); set it to start elsewhere
    serial: int = 0
    #: the clear value of every commitment this scenario made (its writers' disclosures)
    clear: dict[str, int | str] = field(default_factory=dict)
    #: the records made that carry disclosures (``store.disclosures.keep`` takes them)
    made: list[Record] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ledger = MemoryLedger(self.net.registry)

    # ------------------------------------------------------------ time
    def now(self) -> str:
        return self.clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def tick(self, seconds: int = 1) -> str:
        self.clock += timedelta(seconds=seconds)
        return self.now()

    # ------------------------------------------------------------ records
    def record(
        self,
        chain: str,
        kind: Kind,
        body: Mapping[str, Any],
        *,
        record_id: str | None = None,
        signers: Sequence[Ed25519Signer] = (),
    ) -> Record:
        self.serial += 1
        rid = record_id or f"r{self.serial}"
        record = make_record(
            network=self.net.network_id,
            chain=chain,
            kind=kind,
            record_id=rid,
            time=self.now(),
            body=body,
            signers=signers,
            salts=keyed_salts(self.salt_secret, f"{self.net.network_id}\n{chain}\n{rid}"),
        )
        for d in record.disclosures:
            self.clear[commit(d.value, d.salt).digest.hex()] = d.value
        if record.disclosures:
            self.made.append(record)
        return record

    @property
    def salt_secret(self) -> bytes:
        """The salt secret of every writer of this test network: fixed, so runs repeat
        (a real node keeps a random secret of its own)."""
        return sha256(f"kpledger-test-salts:{self.net.network_id}".encode())

    def check_disclosed(self, record: Record) -> None:
        """The writer's disclosure rules on ``record`` against the sealed state
        (``ledger.disclosed``): what a node checks at submission."""
        check_disclosed(self.ledger.state, record, self.clear.get)

    def clear_body(self, record: Record) -> dict[str, Any]:
        """``record``'s body with its confidential fields in clear (a draft to submit again)."""
        return open_body(record.as_json(), record.disclosures)

    def cents(self, commitment: str) -> int:
        """The clear value (US cents) of a value commitment made by this scenario."""
        value = self.clear[commitment]
        assert isinstance(value, int)
        return value

    def party(
        self, chain: str, party: str, role: str = "trader", name: str | None = None
    ) -> Record:
        return self.record(
            chain,
            Kind.PARTY_REGISTER,
            {
                "party": party,
                "name": name or party,
                "role": role,
                "address": f"{NAMES.get(chain, chain)}",
            },
        )

    def register(
        self,
        chain: str,
        parcel: str,
        custodian: str,
        weight: int,
        value: int,
        hs: str = "7102.31",
        mine: str = "Jwaneng",
    ) -> Record:
        return self.record(
            chain,
            Kind.PARCEL_REGISTER,
            {
                "parcel": parcel,
                "custodian": custodian,
                "weight": weight,
                "value": value,
                "hs": hs,
                "mine": mine,
                "produced": self.now()[:10],
            },
        )

    def transfer(self, chain: str, parcel: str, to: str, value: int | None = None) -> Record:
        body: dict[str, Any] = {"parcel": parcel, "to": to}
        if value is not None:
            body["value"] = value
        return self.record(chain, Kind.PARCEL_TRANSFER, body)

    def split(self, chain: str, parcel: str, children: Sequence[tuple[str, int, int]]) -> Record:
        return self.record(
            chain,
            Kind.PARCEL_SPLIT,
            {
                "parcel": parcel,
                "children": [{"parcel": p, "weight": w, "value": v} for p, w, v in children],
            },
        )

    def merge(
        self,
        chain: str,
        parents: Sequence[str],
        parcel: str,
        custodian: str,
        weight: int | None = None,
        value: int | None = None,
    ) -> Record:
        state = self.ledger.state
        found = [state.parcel(p) for p in parents]
        total_w = sum(p.weight for p in found if p is not None)
        total_v = sum(self.cents(p.value) for p in found if p is not None)
        return self.record(
            chain,
            Kind.PARCEL_MERGE,
            {
                "parents": list(parents),
                "parcel": parcel,
                "custodian": custodian,
                "weight": total_w if weight is None else weight,
                "value": total_v if value is None else value,
            },
        )

    def issue(
        self,
        chain: str,
        number: str,
        destination: str,
        exporter: str,
        parcels: Sequence[str],
        *,
        days: int = 30,
        **override: Any,
    ) -> Record:
        """A certificate whose lines declare the parcels exactly as the ledger holds them."""
        lines: list[dict[str, Any]] = []
        for pid in parcels:
            p = self.ledger.state.parcel(pid)
            if p is None:
                raise KeyError(pid)
            lines.append(
                {
                    "parcel": p.id,
                    "weight": p.weight,
                    "value": self.cents(p.value),
                    "hs": p.hs,
                    "origin": dict(p.origin),
                }
            )
        issued = self.clock.date()
        body: dict[str, Any] = {
            "number": number,
            "destination": destination,
            "exporter": exporter,
            "importer": {
                "name": f"Importer in {destination}",
                "address": NAMES.get(destination, destination),
            },
            "lines": lines,
            "carats": sum(x["weight"] for x in lines),
            "value": sum(x["value"] for x in lines),
            "parcels": len(lines),
            "origin": certificate_origin([tuple(x["origin"].items()) for x in lines]),
            "issued": issued.isoformat(),
            "expires": (issued + timedelta(days=days)).isoformat(),
            "seal": f"SEAL-{number}",
        }
        body.update(override)
        return self.record(chain, Kind.CERTIFICATE_ISSUE, body)

    def confirm(
        self, chain: str, number: str, custodian: str, received: Mapping[str, int] | None = None
    ) -> Record:
        cert = self.ledger.state.certificate(number)
        if cert is None:
            raise KeyError(number)
        weights = {p: self.ledger.state.parcel(p) for p in cert.parcels}
        lines = [
            {"parcel": p, "weight": (received or {}).get(p, x.weight if x else 1)}
            for p, x in weights.items()
        ]
        return self.record(
            chain,
            Kind.CERTIFICATE_CONFIRM,
            {
                "number": number,
                "ref": cert.issue_ref.to_json(),
                "custodian": custodian,
                "received": lines,
            },
        )

    def void(self, chain: str, number: str, importer_height: int) -> Record:
        return self.record(
            chain,
            Kind.CERTIFICATE_VOID,
            {
                "number": number,
                "reason": "not confirmed before expiry",
                "importer_height": importer_height,
            },
        )

    def refuse(self, chain: str, number: str, code: str, reason: str = "refused") -> Record:
        cert = self.ledger.state.certificate(number)
        if cert is None:
            raise KeyError(number)
        return self.record(
            chain,
            Kind.CERTIFICATE_REFUSE,
            {"number": number, "ref": cert.issue_ref.to_json(), "code": code, "reason": reason},
        )

    def release(self, chain: str, parcel: str, reason: str = "weighed again") -> Record:
        return self.record(chain, Kind.PARCEL_RELEASE, {"parcel": parcel, "reason": reason})

    def restrict(self, chain: str, origin: str) -> Record:
        return self.record(
            chain,
            Kind.POLICY_RESTRICT_ORIGIN,
            {"origin": origin, "reason": "sanctions on rough diamonds of this origin"},
        )

    def governance(self, kind: Kind, body: Mapping[str, Any], signers: int = 2) -> Record:
        return self.record(GOVERNANCE_CHAIN, kind, body, signers=self.net.governance[:signers])

    # ------------------------------------------------------------ blocks
    def seal(self, chain: str, *records: Record, strict: bool = True) -> Block:
        """Seal a block on ``chain``; with ``strict`` every record must be accepted.

        A strict seal that refuses a record raises that record's rule error and
        seals nothing: the ledger is left exactly as it was.
        """
        proposal = propose(
            self.ledger.state,
            self.net.registry,
            self.net.signer(chain),
            chain,
            records,
            self.tick(),
        )
        if strict and proposal.rejected:
            raise proposal.rejected[0][1]
        self.ledger.commit(proposal)
        return proposal.block
