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

from ledger.blocks import Block
from ledger.canonical import sha256
from ledger.chain import MemoryLedger, propose
from ledger.crypto import Ed25519Signer
from ledger.kpdata import PARTICIPANT_NAMES, PRODUCTION_2023
from ledger.records import GOVERNANCE_CHAIN, Kind, Record, make_record
from ledger.registry import Params, Participant, Registry
from ledger.rules import certificate_origin
from ledger.state import ParcelStatus

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
        return make_record(
            network=self.net.network_id,
            chain=chain,
            kind=kind,
            record_id=record_id or f"r{self.serial}",
            time=self.now(),
            body=body,
            signers=signers,
        )

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
        total_v = sum(p.value for p in found if p is not None)
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
                    "value": p.value,
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
    rng = random.Random(seed)  # noqa: S311 - reproducible workload, not security
    net = Network.create(chains, (), seed=seed)
    sc = Scenario(net)
    producers = list(chains[:2])
    blocks: list[Block] = []
    pending: dict[str, list[Record]] = {c: [] for c in chains}
    for c in chains:
        pending[c] += [sc.party(c, f"{c}-T{i}", "trader") for i in range(4)]
    counter = 0
    open_certs: list[tuple[str, str, str]] = []  # (number, destination, importer party)

    def custodian_of(pid: str) -> str | None:
        p = sc.ledger.state.parcel(pid)
        return None if p is None else p.custodian

    def new_id(chain: str) -> str:
        nonlocal counter
        counter += 1
        return f"{chain}-P{counter}"

    def flush(chain: str) -> None:
        if pending[chain]:
            blocks.append(sc.seal(chain, *pending[chain]))
            pending[chain] = []

    def active(chain: str) -> list[str]:
        st = sc.ledger.state
        return [
            p.id
            for p in st.parcels.values()
            if p.chain == chain and p.status is ParcelStatus.ACTIVE and p.id not in used
        ]

    made = sum(len(v) for v in pending.values())
    used: set[str] = set()
    while made < total:
        for c in chains:
            flush(c)
        used.clear()
        for chain in chains:
            budget = min(block_records, total - made)
            out = pending[chain]
            pool = active(chain)
            rng.shuffle(pool)
            while len(out) < budget:
                r = rng.random()
                party = f"{chain}-T{rng.randrange(4)}"
                if chain in producers and (r < 0.45 or not pool):
                    ct = rng.randrange(500, 50_000)
                    out.append(
                        sc.register(
                            chain, new_id(chain), party, ct, ct * PRICE_PER_CARAT.get(chain, 120)
                        )
                    )
                elif r < 0.6 and pool:
                    pid = pool.pop()
                    used.add(pid)
                    out.append(sc.transfer(chain, pid, party))
                elif r < 0.75 and pool:
                    pid = pool.pop()
                    used.add(pid)
                    p = sc.ledger.state.parcel(pid)
                    assert p is not None
                    if p.weight < 2:
                        continue
                    w1 = p.weight // 2
                    v1 = p.value // 2
                    out.append(
                        sc.split(
                            chain,
                            pid,
                            [(new_id(chain), w1, v1), (new_id(chain), p.weight - w1, p.value - v1)],
                        )
                    )
                elif r < 0.85 and len(pool) >= 2:
                    # a merge assorts one custodian's parcels (rule 1); with no
                    # partner of the same custodian, the parcel is transferred instead
                    a = pool.pop()
                    used.add(a)
                    holder = custodian_of(a)
                    mate = next((q for q in reversed(pool) if custodian_of(q) == holder), None)
                    if mate is None:
                        out.append(sc.transfer(chain, a, party))
                        continue
                    pool.remove(mate)
                    used.add(mate)
                    out.append(sc.merge(chain, [a, mate], new_id(chain), party))
                elif pool:
                    pid = pool.pop()
                    used.add(pid)
                    p = sc.ledger.state.parcel(pid)
                    assert p is not None
                    dest = rng.choice([d for d in chains if d != chain])
                    exporter = p.custodian or party
                    counter += 1
                    number = f"{chain}-C{counter}"
                    cert = sc.issue(chain, number, dest, exporter, [pid])
                    out.append(cert)
                    open_certs.append((number, dest, f"{dest}-T{rng.randrange(4)}"))
                else:
                    ct = rng.randrange(500, 50_000)
                    if chain not in producers:
                        break
                    out.append(sc.register(chain, new_id(chain), party, ct, ct * 120))
            made += len(out)
            if made >= total:
                break
        for c in chains:
            flush(c)
        # confirmations for certificates now witnessed, on the importers' chains
        still: list[tuple[str, str, str]] = []
        for number, dest, importer in open_certs:
            if made >= total:
                still.append((number, dest, importer))
                continue
            pending[dest].append(sc.confirm(dest, number, importer))
            made += 1
        open_certs = still
    for c in chains:
        flush(c)
    return net, blocks


def count_records(blocks: Sequence[Block]) -> int:
    return sum(len(b.records) for b in blocks)


def iter_records(blocks: Sequence[Block]) -> Iterator[Record]:
    for b in blocks:
        yield from b.records
