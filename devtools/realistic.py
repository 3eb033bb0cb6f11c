"""Blocks of a realistic mix of records, the same for the same seed.

``realistic_blocks(total)`` writes ``total`` records for a network of
authorities with seeded keys (``devtools.workload.Network``): producers
register production and sort it into lots, the others import under KP
certificates, confirm, merge mixed lots and transfer them between traders.
The store, API and benchmark tests replay these blocks; a seed makes the same
blocks on every run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from kpledger.devtools.workload import PRICE_PER_CARAT, Network, Scenario
from kpledger.ledger.blocks import Block
from kpledger.ledger.records import Record
from kpledger.ledger.state import ParcelStatus

__all__ = ["count_records", "realistic_blocks"]


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
