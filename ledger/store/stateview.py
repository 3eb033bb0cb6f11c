"""Reading derived state from SQL: the ``StateView`` the pure rules judge blocks against.

``StoreState`` answers every ``ledger.state.StateView`` question from the
derived tables, with what it keeps in memory: the heads and frontiers of
every chain, chain keys, membership, origin restrictions, a bounded cache of
headers, and the state a batch of records will read (``prefetch``), loaded
in a few queries before the writer judges the batch and published whole, so
that readers in other threads never see a batch half-loaded.

Only the block writer changes what is cached (``advance``, after a commit).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, and_, func, select

from kpledger.ledger.blocks import Header
from kpledger.ledger.crypto import PublicKey
from kpledger.ledger.errors import StoreError, VersionError
from kpledger.ledger.merkle import Frontier
from kpledger.ledger.records import Record, RecordRef
from kpledger.ledger.registry import Registry
from kpledger.ledger.state import (
    Certificate,
    CertificateStatus,
    KeyEvent,
    Licence,
    MemberEvent,
    Parcel,
    ParcelStatus,
    Party,
    State,
)
from kpledger.ledger.statetree import StateTree
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.engine import KeySelect
from kpledger.ledger.store.proofs import NodeReader
from kpledger.ledger.store.rows import (
    cert_of,
    header_of,
    licence_of,
    licences_referenced,
    parcel_of,
    party_of,
    ref_of,
    referenced,
)

__all__ = ["StoreState", "load_state_tree"]

_HEADER_CACHE = 4096
#: checkpoints' state trees kept for bundles: at most this many, and beyond the newest
#: one at most this many slots in all (about 760 bytes each in memory: a tree of a
#: chain of a million parcels takes about 0.7 GB)
_PAST_TREES = 8
_PAST_SLOTS = 1_000_000
#: records committed last, kept parsed by leaf hash: a disclosure pull, right after the
#: blocks it follows, finds its records here instead of parsing their bytes again
_RECENT_RECORDS = 2048


@dataclass(frozen=True)
class _Batch:
    """What ``prefetch`` loaded for one batch; None marks an id known to be absent."""

    parcels: dict[str, Parcel | None] = field(default_factory=dict)
    parties: dict[str, Party | None] = field(default_factory=dict)
    certs: dict[str, Certificate | None] = field(default_factory=dict)
    refs: dict[tuple[str, str], RecordRef | None] = field(default_factory=dict)
    confirms: dict[tuple[str, str], int | None] = field(default_factory=dict)
    licences: dict[str, Licence | None] = field(default_factory=dict)


#: no batch loaded: every read goes to the database (never filled in)
_NO_BATCH = _Batch()


#: (table, the columns read) of the two prefetch reads that take part of a table
_RECORD_REFS = ("records", ("record_id", "idx", "leaf"))
_CONFIRMS = ("confirmations", ("number", "idx"))


def load_state_tree(engine: Engine, chain: str, height: int | None = None) -> StateTree:
    """``chain``'s parcel state tree from the store, after its block ``height``
    (default: its head): each parcel's count of events and latest record."""
    e, r = t.parcel_events.c, t.records.c
    q = (
        select(e.parcel, r.leaf)
        .select_from(t.parcel_events.join(t.records, and_(r.chain == e.chain, r.idx == e.idx)))
        .where(e.chain == chain)
        .order_by(e.idx)
    )
    if height is not None:
        q = q.where(e.height <= height)
    slots: dict[str, tuple[bytes, int]] = {}
    with engine.connect() as conn:
        for parcel, leaf in conn.execute(q):
            had = slots.get(parcel)
            slots[parcel] = (bytes(leaf), 1 if had is None else had[1] + 1)
    return StateTree.build((p, leaf, n) for p, (leaf, n) in slots.items())


class StoreState:
    """A ``StateView`` over the derived tables of one store."""

    def __init__(self, engine: Engine, registry: Registry) -> None:
        self.engine = engine
        self.registry = registry
        self._heads: dict[str, Header] = {}
        self._frontiers: dict[str, Frontier] = {}
        self._trees: dict[str, StateTree] = {}
        self._past_trees: OrderedDict[tuple[str, int], StateTree] = OrderedDict()
        self._headers: OrderedDict[tuple[str, int], Header] = OrderedDict()
        self._headers_lock = threading.Lock()
        self._recent: OrderedDict[bytes, Record] = OrderedDict()
        self._members: dict[str, list[MemberEvent]] = {}
        self._keys: dict[str, list[KeyEvent]] = {}
        self._restricted: dict[str, frozenset[str]] = {}
        self._batch = _NO_BATCH
        self._select = KeySelect(engine.dialect.name)
        self.reload()

    def reload(self) -> None:
        """Read heads, chain keys and membership from the database again.

        The writer keeps them current itself; a read replica calls this to see
        what another process wrote.
        """
        members: dict[str, list[MemberEvent]] = {}
        keys: dict[str, list[KeyEvent]] = {}
        heads: dict[str, Header] = {}
        with self.engine.connect() as conn:
            for code, kp_size, role, active in conn.execute(select(t.members)):
                members.setdefault(code, []).append(
                    MemberEvent(code, int(kp_size), role, bool(active))
                )
            for chain, height, kp_size, key in conn.execute(select(t.keys)):
                keys.setdefault(chain, []).append(
                    KeyEvent(chain, int(height), PublicKey.from_raw(bytes(key)), int(kp_size))
                )
            last = (
                select(t.headers.c.chain, func.max(t.headers.c.height).label("h"))
                .group_by(t.headers.c.chain)
                .subquery()
            )
            q = select(t.headers.c.header).join(
                last, and_(t.headers.c.chain == last.c.chain, t.headers.c.height == last.c.h)
            )
            for (raw,) in conn.execute(q):
                try:
                    h = header_of(raw)
                except VersionError as exc:
                    raise StoreError(
                        f"this store holds block headers of format {exc.version}, written before "
                        "headers committed to the parcel state; this version reads format 2 "
                        "only: build a new store from a node of a format 2 network"
                    ) from exc
                heads[h.chain] = h
        self._members, self._keys, self._heads = members, keys, heads
        self._frontiers = {}
        self._trees = {}  # parcel state trees: read again from the tables when needed
        with self._headers_lock:
            self._past_trees.clear()
        self._restricted = {}
        with self._headers_lock:  # a chain restarted at its fork has other headers there
            self._headers.clear()

    # ------------------------------------------------------------ StateView
    def parcel(self, parcel_id: str) -> Parcel | None:
        batch = self._batch  # read once: the writer may swap it meanwhile
        if parcel_id in batch.parcels:
            return batch.parcels[parcel_id]
        with self.engine.connect() as conn:
            row = conn.execute(select(t.parcels).where(t.parcels.c.id == parcel_id)).first()
        return None if row is None else parcel_of(row)

    def party(self, party_id: str) -> Party | None:
        batch = self._batch
        if party_id in batch.parties:
            return batch.parties[party_id]
        with self.engine.connect() as conn:
            row = conn.execute(select(t.parties).where(t.parties.c.id == party_id)).first()
        return None if row is None else party_of(row)

    def certificate(self, number: str) -> Certificate | None:
        batch = self._batch
        if number in batch.certs:
            return batch.certs[number]
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.certificates).where(t.certificates.c.number == number)
            ).first()
        return None if row is None else cert_of(row)

    def licence(self, licence_id: str) -> Licence | None:
        batch = self._batch
        if licence_id in batch.licences:
            return batch.licences[licence_id]
        with self.engine.connect() as conn:
            row = conn.execute(select(t.licences).where(t.licences.c.id == licence_id)).first()
        return None if row is None else licence_of(row)

    def held_parcels(self, chain: str, *, limit: int = 500) -> list[Parcel]:
        """Active parcels under ``chain``'s jurisdiction, by id: an officer's pick list."""
        q = (
            select(t.parcels)
            .where(t.parcels.c.chain == chain, t.parcels.c.status == ParcelStatus.ACTIVE.value)
            .order_by(t.parcels.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [parcel_of(row) for row in conn.execute(q)]

    def incoming_certificates(self, chain: str, *, limit: int = 500) -> list[Certificate]:
        """Open certificates destined to ``chain``, oldest first: what it may confirm."""
        c = t.certificates.c
        q = (
            select(t.certificates)
            .where(c.destination == chain, c.status == CertificateStatus.ISSUED.value)
            .order_by(c.issued, c.number)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [cert_of(row) for row in conn.execute(q)]

    def record_ref(self, chain: str, record_id: str) -> RecordRef | None:
        batch = self._batch
        if (chain, record_id) in batch.refs:
            return batch.refs[(chain, record_id)]
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.records.c.idx, t.records.c.leaf).where(
                    t.records.c.chain == chain, t.records.c.record_id == record_id
                )
            ).first()
        return None if row is None else ref_of(chain, row[0], row[1])

    def restricted(self, chain: str) -> frozenset[str]:
        found = self._restricted.get(chain)
        if found is None:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(t.restrictions.c.origin).where(
                        t.restrictions.c.chain == chain, t.restrictions.c.active
                    )
                )
                found = frozenset(r[0] for r in rows)
            self._restricted[chain] = found
        return found

    def member_codes(self) -> frozenset[str]:
        return frozenset(self._members)

    def member_events(self, code: str) -> list[MemberEvent]:
        return list(self._members.get(code, ()))

    def key_events(self, chain: str) -> list[KeyEvent]:
        return list(self._keys.get(chain, ()))

    def header(self, chain: str, height: int) -> Header | None:
        head = self._heads.get(chain)
        if head is not None and head.height == height:
            return head
        with self._headers_lock:
            cached = self._headers.get((chain, height))
        if cached is not None:
            return cached
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(t.headers.c.header).where(
                    t.headers.c.chain == chain, t.headers.c.height == height
                )
            ).scalar()
        if raw is None:
            return None
        h = header_of(raw)
        with self._headers_lock:
            self._headers[(chain, height)] = h
            if len(self._headers) > _HEADER_CACHE:
                self._headers.popitem(last=False)
        return h

    def head(self, chain: str) -> Header | None:
        return self._heads.get(chain)

    def recent_record(self, leaf: bytes) -> Record | None:
        """The record with leaf hash ``leaf``, if it is among the last ones committed
        (``_RECENT_RECORDS``): parsed already. Its bytes are the ones with that hash,
        so it is the record whatever the store did since (a chain restarted, say)."""
        with self._headers_lock:
            return self._recent.get(leaf)

    def heads(self) -> dict[str, Header]:
        return dict(self._heads)

    def frontier(self, chain: str) -> Frontier:
        found = self._frontiers.get(chain)
        if found is None:
            head = self._heads.get(chain)
            size = 0 if head is None else head.size
            found = Frontier.from_reader(size, NodeReader(self.engine, chain))
            self._frontiers[chain] = found
        return found

    def state_tree(self, chain: str) -> StateTree:
        found = self._trees.get(chain)
        if found is None:
            found = self._trees[chain] = load_state_tree(self.engine, chain)
        return found

    def state_tree_at(self, chain: str, height: int) -> StateTree:
        """``chain``'s parcel state tree after its block ``height`` (a bundle's
        checkpoint): read from the tables once, then kept for the next bundles
        (a past header's state never changes)."""
        key = (chain, height)
        with self._headers_lock:
            found = self._past_trees.get(key)
            if found is not None:
                self._past_trees.move_to_end(key)
                return found
        found = load_state_tree(self.engine, chain, height)
        with self._headers_lock:
            self._past_trees[key] = found
            while len(self._past_trees) > 1 and (
                len(self._past_trees) > _PAST_TREES
                or sum(tree.own_slots() for tree in self._past_trees.values()) > _PAST_SLOTS
            ):
                self._past_trees.popitem(last=False)
        return found

    def confirmation_index(self, chain: str, number: str) -> int | None:
        batch = self._batch
        if (chain, number) in batch.confirms:
            return batch.confirms[(chain, number)]
        with self.engine.connect() as conn:
            idx = conn.execute(
                select(t.confirmations.c.idx).where(
                    t.confirmations.c.chain == chain, t.confirmations.c.number == number
                )
            ).scalar()
        return None if idx is None else int(idx)

    def signature(self, chain: str, height: int) -> bytes | None:
        with self.engine.connect() as conn:
            sig = conn.execute(
                select(t.headers.c.sig).where(
                    t.headers.c.chain == chain, t.headers.c.height == height
                )
            ).scalar()
        return None if sig is None else bytes(sig)

    # ------------------------------------------------------------ batches
    def prefetch(self, records: Sequence[Record]) -> None:
        """Load in a few queries the state a batch of records will read.

        Loaded into a private ``_Batch`` and published with one assignment
        when complete: a reader in another thread (the API takes no lock)
        sees either no batch or a whole one, never an id marked absent
        because its row is not loaded yet. What a batch holds is the
        database's state at prefetch time, and the writer commits only after
        ``forget_prefetched``, so a reader never sees it go stale.
        """
        parcels, parties, certs = referenced(records)
        licences = licences_referenced(records)
        batch = _Batch()
        sel = self._select
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            batch.licences.update(dict.fromkeys(licences))
            for found in map(licence_of, sel.rows(cur, t.licences, "id", sorted(licences))):
                batch.licences[found.id] = found
                if found.type in ("collector", "comptoir"):
                    parties.add(found.holder)
            batch.certs.update(dict.fromkeys(certs))
            for cert in map(cert_of, sel.rows(cur, t.certificates, "number", sorted(certs))):
                batch.certs[cert.number] = cert
                parcels.update(cert.parcels)
                parties.add(cert.exporter)
            batch.parcels.update(dict.fromkeys(parcels))
            for row in sel.rows(cur, t.parcels, "id", sorted(parcels)):
                batch.parcels[row[0]] = parcel_of(row)
            batch.parties.update(dict.fromkeys(parties))
            for row in sel.rows(cur, t.parties, "id", sorted(parties)):
                batch.parties[row[0]] = party_of(row)
            ids: dict[str, set[str]] = {}
            for r in records:
                ids.setdefault(r.chain, set()).add(r.id)
            for chain, wanted in ids.items():
                batch.refs.update(((chain, i), None) for i in wanted)
                batch.confirms.update(((chain, n), None) for n in certs)
                for rid, idx, leaf in sel.rows(
                    cur, _RECORD_REFS, "record_id", sorted(wanted), chain
                ):
                    batch.refs[(chain, rid)] = ref_of(chain, idx, leaf)
                for number, idx in sel.rows(cur, _CONFIRMS, "number", sorted(certs), chain):
                    batch.confirms[(chain, number)] = int(idx)
        finally:
            conn.close()
        self._batch = batch  # published whole

    def forget_prefetched(self) -> None:
        """Drop the state loaded by ``prefetch`` (reads go to the database again)."""
        self._batch = _NO_BATCH

    # ------------------------------------------------------------ after a commit
    def drop_frontiers(self) -> None:
        """Forget every frontier (a commit failed: they are read again when needed)."""
        self._frontiers.clear()

    def advance(self, layer: State, frontiers: dict[str, Frontier]) -> None:
        """Take in what a committed layer changed of the cached state."""
        self._frontiers.update(frontiers)
        with self._headers_lock:
            recent = self._recent
            for _, _, record in layer.records:
                recent[record.leaf] = record
            while len(recent) > _RECENT_RECORDS:
                recent.popitem(last=False)
        for chain, tree in layer.state_trees.items():
            if tree.base is not None and tree.base is self._trees.get(chain):
                tree.fold()
            else:  # not an overlay of the tree held here: read it again when needed
                self._trees.pop(chain, None)
        self._heads.update(layer.heads)
        for ev in layer.members:
            self._members.setdefault(ev.code, []).append(ev)
        for k in layer.keys:
            self._keys.setdefault(k.chain, []).append(k)
        for chain, _ in layer.restrictions:
            self._restricted.pop(chain, None)
