"""Deterministic networks and realistic record streams.

Used by the tests, the benchmarks and the examples, so that all of them
exercise the same rules on the same kind of data. Nothing here is random
unless a seed says so, and keys come from fixed seeds: never use these keys
for a real network.

Prices for realistic parcels come from public KP statistics for 2023
(``ledger.kpdata``): Botswana about 131 USD per carat, Russia about 97,
DR Congo about 8, Namibia about 517.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
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
from kpledger.ledger.state import ParcelStatus

__all__ = ["NAMES", "PRICE_PER_CARAT", "Network", "Scenario", "realistic_blocks"]

NAMES = PARTICIPANT_NAMES
#: whole USD per carat of 2023 production, from public KP statistics (ledger.kpdata)
PRICE_PER_CARAT = {c: round(v / ct) for c, (ct, v) in PRODUCTION_2023.items()}


def _seeded(label: str, seed: int) -> Ed25519Signer:
    return Ed25519Signer.from_seed(sha256(f"kpledger-test-key:{seed}:{label}".encode()))


@dataclass
class Network:
    """A registry with its keys: authorities, observers and governance."""

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
        seed: int = 0,
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

    @property
    def salt_secret(self) -> bytes:
        """The salt secret of every writer of this test network: fixed, so runs repeat
        (a real node keeps a random secret of its own)."""
        return sha256(f"kpledger-test-salts:{self.net.network_id}".encode())

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


class _RealisticMix:
    """The state of ``realistic_blocks`` while it writes: one method per kind of record."""

    def __init__(self, chains: Sequence[str], seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible workload, not security
        self.chains = list(chains)
        self.net = Network.create(chains, (), seed=seed)
        self.sc = Scenario(self.net)
        self.producers = list(chains[:2])
        self.blocks: list[Block] = []
        self.pending: dict[str, list[Record]] = {c: [] for c in chains}
        for c in chains:
            self.pending[c] += [self.sc.party(c, f"{c}-T{i}", "trader") for i in range(4)]
        self.counter = 0
        self.open_certs: list[tuple[str, str, str]] = []  # (number, destination, importer)
        self.used: set[str] = set()

    def custodian_of(self, pid: str) -> str | None:
        p = self.sc.ledger.state.parcel(pid)
        return None if p is None else p.custodian

    def new_id(self, chain: str) -> str:
        self.counter += 1
        return f"{chain}-P{self.counter}"

    def flush(self, chain: str) -> None:
        if self.pending[chain]:
            self.blocks.append(self.sc.seal(chain, *self.pending[chain]))
            self.pending[chain] = []

    def flush_all(self) -> None:
        for c in self.chains:
            self.flush(c)

    def active(self, chain: str) -> list[str]:
        st = self.sc.ledger.state
        return [
            p.id
            for p in st.parcels.values()
            if p.chain == chain and p.status is ParcelStatus.ACTIVE and p.id not in self.used
        ]

    def take(self, pool: list[str]) -> str:
        pid = pool.pop()
        self.used.add(pid)
        return pid

    def register(self, chain: str, party: str, price: int) -> Record:
        ct = self.rng.randrange(500, 50_000)
        return self.sc.register(chain, self.new_id(chain), party, ct, ct * price)

    def split(self, chain: str, pid: str) -> Record | None:
        p = self.sc.ledger.state.parcel(pid)
        assert p is not None
        if p.weight < 2:
            return None
        w1 = p.weight // 2
        value = self.sc.cents(p.value)
        v1 = value // 2
        parts = [(self.new_id(chain), w1, v1), (self.new_id(chain), p.weight - w1, value - v1)]
        return self.sc.split(chain, pid, parts)

    def merge(self, chain: str, pool: list[str], party: str) -> Record:
        """A merge assorts one custodian's parcels (rule 1); with no partner of the same
        custodian, the parcel is transferred instead."""
        a = self.take(pool)
        holder = self.custodian_of(a)
        mate = next((q for q in reversed(pool) if self.custodian_of(q) == holder), None)
        if mate is None:
            return self.sc.transfer(chain, a, party)
        pool.remove(mate)
        self.used.add(mate)
        return self.sc.merge(chain, [a, mate], self.new_id(chain), party)

    def issue(self, chain: str, pid: str, party: str) -> Record:
        p = self.sc.ledger.state.parcel(pid)
        assert p is not None
        dest = self.rng.choice([d for d in self.chains if d != chain])
        exporter = p.custodian or party
        self.counter += 1
        number = f"{chain}-C{self.counter}"
        cert = self.sc.issue(chain, number, dest, exporter, [pid])
        self.open_certs.append((number, dest, f"{dest}-T{self.rng.randrange(4)}"))
        return cert

    def one(self, chain: str, pool: list[str]) -> Record | bool | None:
        """The next record of ``chain``: a record, ``None`` to draw again, ``False`` to stop."""
        r = self.rng.random()
        party = f"{chain}-T{self.rng.randrange(4)}"
        if chain in self.producers and (r < 0.45 or not pool):
            return self.register(chain, party, PRICE_PER_CARAT.get(chain, 120))
        if r < 0.6 and pool:
            return self.sc.transfer(chain, self.take(pool), party)
        if r < 0.75 and pool:
            return self.split(chain, self.take(pool))
        if r < 0.85 and len(pool) >= 2:
            return self.merge(chain, pool, party)
        if pool:
            return self.issue(chain, self.take(pool), party)
        return self.fallback(chain, party)

    def fallback(self, chain: str, party: str) -> Record | bool:
        """A chain with no parcel left: a producer registers more, another stops."""
        ct = self.rng.randrange(500, 50_000)
        if chain not in self.producers:
            return False
        return self.sc.register(chain, self.new_id(chain), party, ct, ct * 120)

    def fill(self, chain: str, budget: int) -> int:
        """Records of ``chain`` until its pending block holds ``budget``; how many it holds."""
        out = self.pending[chain]
        pool = self.active(chain)
        self.rng.shuffle(pool)
        while len(out) < budget:
            record = self.one(chain, pool)
            if record is False:
                break
            if isinstance(record, Record):
                out.append(record)
        return len(out)

    def confirm(self, made: int, total: int) -> int:
        """Confirmations of certificates now witnessed, on the importers' chains."""
        still: list[tuple[str, str, str]] = []
        for number, dest, importer in self.open_certs:
            if made >= total:
                still.append((number, dest, importer))
                continue
            self.pending[dest].append(self.sc.confirm(dest, number, importer))
            made += 1
        self.open_certs = still
        return made


def realistic_blocks(
    total: int,
    *,
    chains: Sequence[str] = ("BW", "RU", "AE", "EU"),
    block_records: int = 500,
    seed: int = 7,
) -> tuple[Network, list[Block]]:
    """Blocks holding ``total`` records of a realistic mix, valid in order.

    Producers (the first two chains) register production and sort it into
    lots; the others import under KP certificates, confirm, merge mixed
    lots and transfer them between traders. About 40 % registrations, 15 %
    transfers, 15 % splits, 10 % merges, 10 % certificates, 10 % confirmations.
    """
    mix = _RealisticMix(chains, seed)
    made = sum(len(v) for v in mix.pending.values())
    while made < total:
        mix.flush_all()
        mix.used.clear()
        for chain in chains:
            made += mix.fill(chain, min(block_records, total - made))
            if made >= total:
                break
        mix.flush_all()
        made = mix.confirm(made, total)
    mix.flush_all()
    return mix.net, mix.blocks


def count_records(blocks: Sequence[Block]) -> int:
    return sum(len(b.records) for b in blocks)


def iter_records(blocks: Sequence[Block]) -> Iterator[Record]:
    for b in blocks:
        yield from b.records
