"""Derived state: what the logs imply now (parcels, parties, certificates, ...).

The rules read state through ``StateView`` and write through ``State``.
``State`` is an in-memory view that may sit on top of another view (the SQL
store, or another ``State``): reads fall through to the base, writes stay in
the layer. A block is checked in a fresh layer; if any record fails, the layer
is dropped and nothing was written. The store then persists exactly the
layer's changes in one database transaction.

Determinism (DESIGN.md section 3): state that another chain can change is
looked up *as of the prefix the block witnesses*: membership by the
governance log size (``member_status(code, kp_size)``), chain keys by the
height and the witnessed governance size, and other chains' headers by the
exact height the block names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from kpledger.ledger.blocks import Header
from kpledger.ledger.crypto import PublicKey
from kpledger.ledger.merkle import Frontier, NewNode
from kpledger.ledger.records import Composition, Record, RecordRef
from kpledger.ledger.statetree import StateTree

__all__ = [
    "Assessment",
    "Certificate",
    "CertificateStatus",
    "Edge",
    "KeyEvent",
    "Licence",
    "MemberEvent",
    "Parcel",
    "ParcelEvent",
    "ParcelStatus",
    "Party",
    "Purchase",
    "State",
    "StateView",
    "chains_of",
]


class ParcelStatus(StrEnum):
    ACTIVE = "active"
    IN_TRANSIT = "in_transit"
    HELD = "held"  # received with a weight discrepancy: both authorities investigate
    SPENT = "spent"  # split, merged (or exported and since confirmed elsewhere)


class CertificateStatus(StrEnum):
    ISSUED = "issued"
    CONFIRMED = "confirmed"
    DISCREPANCY = "discrepancy"
    VOIDED = "voided"
    REFUSED = "refused"  # the importer refused the shipment: its parcels went back


@dataclass(frozen=True)
class Parcel:
    id: str
    chain: str  # the jurisdiction holding it
    custodian: str | None  # None while in transit
    status: ParcelStatus
    weight: int
    value: str  # the commitment (hex) of its value: ``ledger.commit``
    hs: str
    origin: Composition
    certificate: str | None
    created: RecordRef
    #: the registered claims the stones were bought from: claim id -> hundredths of a
    #: carat, carried through splits and merges like ``origin`` (empty for mine output)
    claims: Composition = ()


@dataclass(frozen=True)
class Party:
    id: str
    chain: str
    name: str  # commitment (hex)
    role: str
    address: str  # commitment (hex)
    active: bool
    registered: RecordRef


@dataclass(frozen=True)
class Certificate:
    number: str
    issuer: str
    destination: str
    exporter: str
    importer_name: str  # commitment (hex)
    status: CertificateStatus
    issued: str
    expires: str
    carats: int
    value: str  # commitment (hex)
    origin: str
    parcels: tuple[str, ...]
    issue_ref: RecordRef
    closed_ref: RecordRef | None = None  # the confirm, refuse or void record
    received: int | None = None  # total carats received, on confirmation


@dataclass(frozen=True)
class Licence:
    """A claim, or a digger's, cooperative's or buyer's licence, on its authority's chain.

    ``type`` is ``claim``, ``digger``, ``cooperative``, ``collector`` or ``comptoir``.
    ``holder`` is the holder's name (claims, diggers) or the buyer's party id.
    ``claim`` is the claim a digger's licence covers; ``zones`` a claim's one zone
    or a buyer's zones. ``ended`` is the date a ``licence.end`` took effect.
    """

    id: str
    chain: str
    type: str
    holder: str
    claim: str | None
    zones: tuple[str, ...]
    valid_from: str
    valid_until: str
    registered: RecordRef
    ended: str | None = None
    end_reason: str | None = None
    location: tuple[tuple[int, int], ...] = ()

    def valid_on(self, day: str) -> bool:
        """Whether it is in force on ``day`` (YYYY-MM-DD): in its window, not yet ended."""
        if not self.valid_from <= day <= self.valid_until:
            return False
        return self.ended is None or day < self.ended


@dataclass(frozen=True)
class Purchase:
    """A first sale (``parcel.purchase``) as the internal controls read it."""

    parcel: str
    chain: str
    buyer: str
    digger: str
    claim: str
    method: str
    weight: int
    price: str  # commitment (hex)
    bought: str
    ref: RecordRef


@dataclass(frozen=True)
class Assessment:
    """One indicator of an authority's diagnostic self-assessment."""

    chain: str
    indicator: str
    score: int
    evidence: str
    assessed: str
    ref: RecordRef


@dataclass(frozen=True)
class Edge:
    """Lineage: ``child`` was made from ``parent`` by record ``ref`` (split or merge)."""

    parent: str
    child: str
    ref: RecordRef


@dataclass(frozen=True)
class ParcelEvent:
    """Record ``ref`` (at block ``height``) acted on parcel ``parcel``."""

    parcel: str
    ref: RecordRef
    height: int
    kind: str


@dataclass(frozen=True)
class MemberEvent:
    """Membership of ``code`` from governance log size ``kp_size`` on (0 = genesis)."""

    code: str
    kp_size: int
    role: str
    active: bool


@dataclass(frozen=True)
class KeyEvent:
    """``key`` signs ``chain``'s blocks from ``from_height`` on.

    ``kp_size`` is 0 for genesis keys and own-chain rotations; for an admission
    or a governance replacement it is the governance log size that includes it.
    """

    chain: str
    from_height: int
    key: PublicKey
    kp_size: int


class StateView(Protocol):
    """Read access to derived state, implemented by ``State`` and by the SQL store."""

    def parcel(self, parcel_id: str) -> Parcel | None: ...
    def party(self, party_id: str) -> Party | None: ...
    def certificate(self, number: str) -> Certificate | None: ...
    def licence(self, licence_id: str) -> Licence | None: ...
    def record_ref(self, chain: str, record_id: str) -> RecordRef | None: ...
    def restricted(self, chain: str) -> frozenset[str]: ...
    def member_events(self, code: str) -> list[MemberEvent]: ...
    def member_codes(self) -> frozenset[str]: ...
    def key_events(self, chain: str) -> list[KeyEvent]: ...
    def header(self, chain: str, height: int) -> Header | None: ...
    def head(self, chain: str) -> Header | None: ...
    def frontier(self, chain: str) -> Frontier: ...
    def state_tree(self, chain: str) -> StateTree: ...
    def confirmation_index(self, chain: str, number: str) -> int | None: ...
    def signature(self, chain: str, height: int) -> bytes | None: ...


def member_active(view: StateView, code: str, kp_size: int) -> bool | None:
    """Whether ``code`` is an active member as of governance log size ``kp_size``.

    None when it was never admitted by then.
    """
    latest: MemberEvent | None = None
    for event in view.member_events(code):
        if event.kp_size <= kp_size and (latest is None or event.kp_size >= latest.kp_size):
            latest = event
    return None if latest is None else latest.active


def member_role(view: StateView, code: str, kp_size: int) -> str | None:
    latest: MemberEvent | None = None
    for event in view.member_events(code):
        if event.kp_size <= kp_size and (latest is None or event.kp_size >= latest.kp_size):
            latest = event
    return None if latest is None else latest.role


def chains_of(view: StateView) -> tuple[str, ...]:
    """Every chain of the network now: authorities ever admitted, and the governance chain."""
    codes = sorted(c for c in view.member_codes() if member_role(view, c, 2**63) == "authority")
    return (*codes, "KP")


def key_at(view: StateView, chain: str, height: int) -> PublicKey | None:
    """The key that signs ``chain`` at ``height``, from every key event this view holds.

    The event with the largest ``(from_height, kp_size)`` among those with
    ``from_height <= height`` wins: a governance ``key.replace`` (kp_size > 0)
    beats an own-chain rotation from the same height. A replacement binds
    every block of its chain from its ``from_height`` on *whatever that block
    witnesses*: a thief holding the old key cannot keep signing blocks that
    simply never witness the governance chain. This is the one place where a
    verdict depends on more than the block's witnessed view: a node that has
    not received the replacement yet may still take a stolen-key block above
    ``from_height`` (README, "Key replacement").
    """
    best: KeyEvent | None = None
    for event in view.key_events(chain):
        if event.from_height > height:
            continue
        if best is None or (event.from_height, event.kp_size) >= (best.from_height, best.kp_size):
            best = event
    return None if best is None else best.key


@dataclass
class State:
    """An in-memory layer of derived state over an optional base view."""

    base: StateView | None = None
    parcels: dict[str, Parcel] = field(default_factory=dict)
    parties: dict[str, Party] = field(default_factory=dict)
    certificates: dict[str, Certificate] = field(default_factory=dict)
    record_refs: dict[tuple[str, str], RecordRef] = field(default_factory=dict)
    restrictions: dict[tuple[str, str], bool] = field(default_factory=dict)
    members: list[MemberEvent] = field(default_factory=list)
    keys: list[KeyEvent] = field(default_factory=list)
    headers: dict[tuple[str, int], Header] = field(default_factory=dict)
    signatures: dict[tuple[str, int], bytes] = field(default_factory=dict)
    heads: dict[str, Header] = field(default_factory=dict)
    frontiers: dict[str, Frontier] = field(default_factory=dict)
    #: the Merkle nodes (level >= 1) that this layer's records of each chain complete,
    #: when the block's check computed them (``apply_block``): a store writes them
    #: without appending the leaves again
    merkle_nodes: dict[str, list[NewNode]] = field(default_factory=dict)
    #: each chain's parcel state tree: the base's, or an overlay of this layer's block
    state_trees: dict[str, StateTree] = field(default_factory=dict)
    confirmations: dict[tuple[str, str], int] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    events: list[ParcelEvent] = field(default_factory=list)
    licences: dict[str, Licence] = field(default_factory=dict)
    purchases: list[Purchase] = field(default_factory=list)
    assessments: list[Assessment] = field(default_factory=list)
    records: list[tuple[RecordRef, int, Record]] = field(default_factory=list)

    # ------------------------------------------------------------ reads
    def parcel(self, parcel_id: str) -> Parcel | None:
        found = self.parcels.get(parcel_id)
        if found is None and self.base is not None:
            return self.base.parcel(parcel_id)
        return found

    def party(self, party_id: str) -> Party | None:
        found = self.parties.get(party_id)
        if found is None and self.base is not None:
            return self.base.party(party_id)
        return found

    def certificate(self, number: str) -> Certificate | None:
        found = self.certificates.get(number)
        if found is None and self.base is not None:
            return self.base.certificate(number)
        return found

    def licence(self, licence_id: str) -> Licence | None:
        found = self.licences.get(licence_id)
        if found is None and self.base is not None:
            return self.base.licence(licence_id)
        return found

    def record_ref(self, chain: str, record_id: str) -> RecordRef | None:
        found = self.record_refs.get((chain, record_id))
        if found is None and self.base is not None:
            return self.base.record_ref(chain, record_id)
        return found

    def restricted(self, chain: str) -> frozenset[str]:
        out = set(self.base.restricted(chain)) if self.base is not None else set()
        for (c, origin), on in self.restrictions.items():
            if c == chain:
                if on:
                    out.add(origin)
                else:
                    out.discard(origin)
        return frozenset(out)

    def member_events(self, code: str) -> list[MemberEvent]:
        below = self.base.member_events(code) if self.base is not None else []
        return below + [m for m in self.members if m.code == code]

    def member_codes(self) -> frozenset[str]:
        below = self.base.member_codes() if self.base is not None else frozenset()
        return below | {m.code for m in self.members}

    def key_events(self, chain: str) -> list[KeyEvent]:
        below = self.base.key_events(chain) if self.base is not None else []
        return below + [k for k in self.keys if k.chain == chain]

    def header(self, chain: str, height: int) -> Header | None:
        found = self.headers.get((chain, height))
        if found is None and self.base is not None:
            return self.base.header(chain, height)
        return found

    def head(self, chain: str) -> Header | None:
        found = self.heads.get(chain)
        if found is None and self.base is not None:
            return self.base.head(chain)
        return found

    def frontier(self, chain: str) -> Frontier:
        found = self.frontiers.get(chain)
        if found is not None:
            return found
        if self.base is not None:
            return self.base.frontier(chain)
        return Frontier()

    def state_tree(self, chain: str) -> StateTree:
        found = self.state_trees.get(chain)
        if found is not None:
            return found
        if self.base is not None:
            return self.base.state_tree(chain)
        found = self.state_trees[chain] = StateTree()
        return found

    def confirmation_index(self, chain: str, number: str) -> int | None:
        found = self.confirmations.get((chain, number))
        if found is None and self.base is not None:
            return self.base.confirmation_index(chain, number)
        return found

    def signature(self, chain: str, height: int) -> bytes | None:
        """The authority's signature over ``chain``'s header at ``height``."""
        found = self.signatures.get((chain, height))
        if found is None and self.base is not None:
            return self.base.signature(chain, height)
        return found

    # ------------------------------------------------------------ writes
    def put_parcel(self, parcel: Parcel) -> None:
        self.parcels[parcel.id] = parcel

    def put_party(self, party: Party) -> None:
        self.parties[party.id] = party

    def put_certificate(self, cert: Certificate) -> None:
        self.certificates[cert.number] = cert

    def put_licence(self, licence: Licence) -> None:
        self.licences[licence.id] = licence

    def add_edges(self, edges: Iterable[Edge]) -> None:
        self.edges.extend(edges)

    def add_events(self, events: Iterable[ParcelEvent]) -> None:
        self.events.extend(events)

    def merge_into(self, other: State) -> None:
        """Copy this layer's changes onto ``other`` (used to commit a block to memory)."""
        other.parcels.update(self.parcels)
        other.parties.update(self.parties)
        other.certificates.update(self.certificates)
        other.record_refs.update(self.record_refs)
        other.restrictions.update(self.restrictions)
        other.members.extend(self.members)
        other.keys.extend(self.keys)
        other.headers.update(self.headers)
        other.signatures.update(self.signatures)
        other.heads.update(self.heads)
        other.frontiers.update(self.frontiers)
        for chain, tree in self.state_trees.items():
            own = other.state_trees.get(chain)
            if own is not None and tree.base is own:
                tree.fold()
            else:
                other.state_trees[chain] = tree
        other.confirmations.update(self.confirmations)
        other.edges.extend(self.edges)
        other.events.extend(self.events)
        other.licences.update(self.licences)
        other.purchases.extend(self.purchases)
        other.assessments.extend(self.assessments)
        other.records.extend(self.records)

    def snapshot(self) -> Mapping[str, object]:
        """A comparable summary of the derived state (for replay checks)."""
        return {
            "parcels": dict(sorted(self.parcels.items())),
            "parties": dict(sorted(self.parties.items())),
            "certificates": dict(sorted(self.certificates.items())),
            "restrictions": sorted(k for k, on in self.restrictions.items() if on),
            "heads": {c: h.hash.hex() for c, h in sorted(self.heads.items())},
            "edges": sorted((e.parent, e.child) for e in self.edges),
            "licences": dict(sorted(self.licences.items())),
            "purchases": len(self.purchases),
            "assessments": len(self.assessments),
        }
