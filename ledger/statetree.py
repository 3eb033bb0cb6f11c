"""Parcel state commitments: each chain's map from parcel to its latest record.

Every header commits (its ``state`` field) to the root of a compact sparse
Merkle tree over the parcels its chain's records have acted on. The slot of
parcel ``p`` sits at the 256-bit path ``key(p) = SHA-256("KPL-STATE-KEY-V1\\n"
|| p)`` and holds ``(latest, count)``: the leaf hash of the chain's latest
record that acted on ``p`` and how many of the chain's records acted on it
(``ledger.rules`` says which records act on which parcels: its
``ParcelEvent``\\ s). A bundle carries the subject's slot and its path against
a cosigned header, so a record of the subject that the bundle leaves out
(the split that spent it, a transfer in the middle) makes the count or the
latest record disagree offline.

Hashes (all SHA-256)::

    leaf(p)      = SHA-256("KPL-STATE-LEAF-V1\\n" || key(p) || latest || count)
                   (count as 8 bytes, big-endian)
    node(l, r)   = SHA-256("KPL-STATE-NODE-V1\\n" || l || r)
    empty        = 32 zero bytes

The tree is *compact*: a subtree holding no slot hashes to ``empty``, one
holding exactly one slot hashes to that slot's leaf (wherever its path ends),
and any other to ``node(left, right)``, left being the half whose next path
bit is 0. So the tree of a set of slots is unique, and a slot sits at depth
about log2(slots). The root of a chain with no slot is ``empty``.

A proof of parcel ``p`` is the list of sibling hashes from the root down
(``path``, at most 256) and what ends it at that depth: ``p``'s own slot
(``count >= 1``), or, for a parcel with no slot (``count = 0``), either an
empty subtree or ``other``, the one slot of that subtree, whose key shares
``p``'s first ``len(path)`` bits but is not ``key(p)``. Folding up: at depth
``i`` (from ``len(path) - 1`` to 0) the bit ``i`` of ``key(p)`` (most
significant first) says whether the running hash is the right (1) or left (0)
child of ``path[i]``'s parent.

Updates touch one path per parcel: ``StateTree.record_all`` takes a block's
parcel events at once and hashes each interior node above them once (about
log2(slots) per parcel, fewer where their paths share nodes). A tree may be an
overlay over a base tree (``child``), so a block's changes are kept apart until
the block is committed (``fold``). A store reopening builds each tree whole
(``StateTree.build``), and keeps each slot as one bytes object: a store keeps
every chain's tree in memory (about 700 bytes a slot).

One concept, a little over 500 lines: the tree's hashes, its proofs and their
check, and the one in-memory structure that updates, builds and proves them.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kpledger.ledger.canonical import Tag, from_hex
from kpledger.ledger.errors import StateProofError
from kpledger.ledger.records import (
    CertificateConfirm,
    CertificateIssue,
    CertificateRefuse,
    CertificateVoid,
    ParcelMerge,
    ParcelPurchase,
    ParcelRegister,
    ParcelRelease,
    ParcelSplit,
    ParcelTransfer,
    Record,
)
from kpledger.ledger.schema import Fields

__all__ = [
    "EMPTY",
    "MAX_DEPTH",
    "Slot",
    "StateProof",
    "StateTree",
    "parcels_acted_on",
    "slot_key",
    "slot_leaf",
    "verify_state_proof",
]

EMPTY = bytes(32)
MAX_DEPTH = 256
_COUNT_MAX = 2**53 - 1
_GONE = b""  # an overlay's mark: the base's entry no longer holds
_PENDING = b"pending"  # an interior node whose hash is computed at the end of an update


_KEY_TAG = Tag.STATE_KEY.value
_LEAF_TAG = Tag.STATE_LEAF.value


def slot_key(parcel: str) -> bytes:
    """The 256-bit path of a parcel's slot."""
    return hashlib.sha256(_KEY_TAG + parcel.encode()).digest()


def slot_leaf(key: bytes, latest: bytes, count: int) -> bytes:
    return hashlib.sha256(_LEAF_TAG + key + latest + count.to_bytes(8, "big")).digest()


def parcels_acted_on(record: Record, certificate: Callable[[str], Iterable[str]]) -> list[str]:
    """The parcels a record acts on (those ``ledger.rules`` emits a ``ParcelEvent`` for).

    ``certificate(number)`` gives a certificate's parcels (its issue's lines):
    a refusal and a void act on those.
    """
    b = record.body
    out: list[str] = []
    match b:
        case ParcelRegister() | ParcelTransfer() | ParcelRelease() | ParcelPurchase():
            out = [b.parcel]
        case ParcelSplit():
            out = [b.parcel, *(c.parcel for c in b.children)]
        case ParcelMerge():
            out = [*b.parents, b.parcel]
        case CertificateIssue():
            out = [line.parcel for line in b.lines]
        case CertificateConfirm():
            out = [line.parcel for line in b.received]
        case CertificateRefuse() | CertificateVoid():
            out = list(certificate(b.number))
        case _:
            pass
    return out


_NODE_TAG = Tag.STATE_NODE.value


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_TAG + left + right).digest()


@dataclass(frozen=True, slots=True)
class Slot:
    """A parcel's slot in a chain's tree: its latest record and the records' count."""

    latest: bytes
    count: int


@dataclass(frozen=True)
class StateProof:
    """A parcel's slot (or its absence, ``count == 0``) with its path to a state root.

    ``other`` (key, latest, count) is the slot that ends the path of an absent
    parcel, when the path does not end in an empty subtree.
    """

    parcel: str
    count: int
    latest: bytes | None
    path: tuple[bytes, ...]
    other: tuple[bytes, bytes, int] | None = None

    @classmethod
    def from_json(cls, value: object, path: str, parcel: str) -> StateProof:
        """Parse the proof of ``parcel``'s slot (the parcel is named by the caller)."""
        f = Fields(value, path)
        count = f.integer("count", low=0, high=_COUNT_MAX)
        latest = (
            from_hex(f.string("record", max_len=64), field=f.path("record"), size=32)
            if count > 0
            else None
        )
        steps = tuple(
            from_hex(item, field=p, size=32) for p, item in f.items("path", low=0, high=MAX_DEPTH)
        )
        other = None
        if count == 0 and f.has("other"):
            o = Fields(f.mapping("other"), f.path("other"))
            other = (
                from_hex(o.string("key", max_len=64), field=o.path("key"), size=32),
                from_hex(o.string("record", max_len=64), field=o.path("record"), size=32),
                o.integer("count", low=1, high=_COUNT_MAX),
            )
            o.done()
        f.done()
        return cls(parcel, count, latest, steps, other)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "count": self.count,
            "path": [h.hex() for h in self.path],
        }
        if self.latest is not None:
            out["record"] = self.latest.hex()
        if self.other is not None:
            key, latest, count = self.other
            out["other"] = {"key": key.hex(), "record": latest.hex(), "count": count}
        return out


def verify_state_proof(proof: StateProof, root: bytes) -> None:
    """Raise ``StateProofError`` unless ``proof`` folds up to ``root``."""
    key = slot_key(proof.parcel)
    depth = len(proof.path)
    if depth > MAX_DEPTH:
        raise StateProofError(f"path has {depth} hashes; at most {MAX_DEPTH}", field="path")
    if proof.count > 0:
        if proof.latest is None or proof.other is not None:
            raise StateProofError("a slot with records names its latest one only", field="record")
        running = slot_leaf(key, proof.latest, proof.count)
    elif proof.other is not None:
        okey, olatest, ocount = proof.other
        k, o = int.from_bytes(key, "big"), int.from_bytes(okey, "big")
        if okey == key or (k ^ o) >> (MAX_DEPTH - depth) != 0:
            raise StateProofError(
                "the slot ending the path is not another parcel's under the same prefix",
                field="other.key",
            )
        running = slot_leaf(okey, olatest, ocount)
    else:
        running = EMPTY
    k = int.from_bytes(key, "big")
    for i in range(depth - 1, -1, -1):
        sibling = proof.path[i]
        right = (k >> (MAX_DEPTH - 1 - i)) & 1
        running = _node(sibling, running) if right else _node(running, sibling)
    if running != root:
        raise StateProofError(
            f"parcel {proof.parcel}'s slot folds to {running.hex()}, not the state root "
            f"{root.hex()}",
            field="path",
        )


def _entry(leaf: bytes, latest: bytes, count: bytes, depth: int) -> bytes:
    """A slot as a tree keeps it: one bytes object, ``leaf || latest || count (8 bytes)
    || depth (2 bytes)`` (a tuple of a Slot and three objects took 330 bytes per slot
    more: a store keeps every chain's tree in memory)."""
    return leaf + latest + count + depth.to_bytes(2, "big")


def _leaf_of(entry: bytes) -> bytes:
    return entry[:32]


def _count_of(entry: bytes) -> int:
    return int.from_bytes(entry[64:72], "big")


def _slot_of(entry: bytes) -> Slot:
    return Slot(entry[32:64], _count_of(entry))


def _depth_of(entry: bytes) -> int:
    return int.from_bytes(entry[72:74], "big")


def _pos(depth: int, prefix: int) -> int:
    """The number of the subtree at ``depth`` whose paths start with the ``depth``
    bits ``prefix``: ``2**depth + prefix`` (the root is 1, the children of ``n`` are
    ``2n`` and ``2n + 1``). Plain integers, which the garbage collector never
    tracks, unlike ``(depth, prefix)`` tuples in trees of many thousand nodes."""
    return (1 << depth) | prefix


class StateTree:
    """A chain's compact sparse Merkle tree of parcel slots, updated in place.

    ``_single[n]`` is the key of the one slot in subtree ``n`` (``_pos``: the root
    is 1), ``_inner[n]`` the hash of a subtree holding two or more. An overlay
    (``child``) reads through to its base and writes only to itself until
    ``fold``.
    """

    def __init__(self, base: StateTree | None = None) -> None:
        self.base = base
        #: key -> its slot's leaf hash, latest record, count and depth (``_entry``)
        self._slots: dict[bytes, bytes] = {}
        self._single: dict[int, bytes] = {}
        self._inner: dict[int, bytes] = {}

    @classmethod
    def build(cls, slots: Iterable[tuple[str, bytes, int]]) -> StateTree:
        """A tree from ``(parcel, latest, count)`` triples (a store reloading one).

        Built whole, from the slots sorted by key: each subtree splits at its next
        path bit and each interior node is hashed once (a store of millions of
        parcels reopens three times faster than by inserting the slots one by one)."""
        leaves: dict[bytes, tuple[bytes, int]] = {}
        for parcel, latest, count in slots:
            if len(latest) != 32:  # the entry's layout holds a 32-byte hash
                raise StateProofError("a slot's latest record is a 32-byte hash", field="latest")
            leaves[slot_key(parcel)] = (latest, count)
        tree = cls()
        keys = sorted(leaves)
        if keys:
            ints = [int.from_bytes(k, "big") for k in keys]
            tree._build(keys, ints, leaves, (0, len(keys)), 0)
        return tree

    def _build(
        self,
        keys: list[bytes],
        ints: list[int],
        leaves: dict[bytes, tuple[bytes, int]],
        span: tuple[int, int],
        depth: int,
    ) -> bytes:
        """The hash of the subtree at ``depth`` holding the slots ``keys[lo:hi]`` (one or
        more, sharing their first ``depth`` bits), its nodes and slots set on the way."""
        lo, hi = span
        prefix = ints[lo] >> (MAX_DEPTH - depth)
        pos = (1 << depth) | prefix  # _pos, inlined
        if hi - lo == 1:
            key = keys[lo]
            latest, count = leaves[key]
            counted = count.to_bytes(8, "big")
            leaf = hashlib.sha256(_LEAF_TAG + key + latest + counted).digest()
            self._slots[key] = _entry(leaf, latest, counted, depth)
            self._single[pos] = key
            return leaf
        # the first slot whose next bit is 1: the right half starts there
        mid = bisect.bisect_left(ints, ((prefix << 1) | 1) << (MAX_DEPTH - depth - 1), lo, hi)
        left = self._build(keys, ints, leaves, (lo, mid), depth + 1) if mid > lo else EMPTY
        right = self._build(keys, ints, leaves, (mid, hi), depth + 1) if hi > mid else EMPTY
        node = hashlib.sha256(_NODE_TAG + left + right).digest()
        self._inner[pos] = node
        return node

    # -- reads through the overlay
    def _layers(self) -> list[StateTree]:
        """This tree and its bases, nearest first: the order every read looks in."""
        out: list[StateTree] = []
        t: StateTree | None = self
        while t is not None:
            out.append(t)
            t = t.base
        return out

    def _get_slot(self, key: bytes) -> bytes | None:
        t: StateTree | None = self
        while t is not None:
            if key in t._slots:
                return t._slots[key]
            t = t.base
        return None

    def _get_single(self, pos: int) -> bytes | None:
        t: StateTree | None = self
        while t is not None:
            found = t._single.get(pos)
            if found is not None:
                return found or None
            t = t.base
        return None

    def _get_inner(self, pos: int) -> bytes | None:
        found = self._inner.get(pos)
        t = self.base
        while found is None and t is not None:
            found = t._inner.get(pos)
            t = t.base
        return found

    def own_slots(self) -> int:
        """How many slots this tree holds itself: all of them for a tree that is no
        overlay, an overlay's changes only (a method, not ``len``: an empty tree stays
        true)."""
        return len(self._slots)

    def slot(self, parcel: str) -> Slot | None:
        found = self._get_slot(slot_key(parcel))
        return None if found is None else _slot_of(found)

    def _hash_at(self, pos: int) -> bytes:
        inner = self._get_inner(pos)
        if inner is not None:
            return inner
        single = self._get_single(pos)
        if single is None:
            return EMPTY
        found = self._get_slot(single)
        assert found is not None
        return _leaf_of(found)

    def root(self) -> bytes:
        return self._hash_at(_pos(0, 0))

    # -- writes
    def child(self) -> StateTree:
        return StateTree(self)

    def fold(self) -> None:
        """Write this overlay's changes into its base."""
        base = self.base
        if base is None:
            return
        base._slots.update(self._slots)
        for pos, key in self._single.items():
            if key or base.base is not None:
                base._single[pos] = key
            else:
                base._single.pop(pos, None)
        base._inner.update(self._inner)
        self._slots, self._single, self._inner = {}, {}, {}

    def record(self, parcel: str, latest: bytes) -> None:
        """Another record of this chain acted on ``parcel``: it is now its latest."""
        self.record_all([(parcel, latest)])

    def record_all(self, acts: Iterable[tuple[str, bytes]]) -> None:
        """``record`` for each ``(parcel, latest record)`` in order (a block's parcel
        events), hashing each interior node they change once."""
        counts: dict[str, tuple[bytes, Slot, int | None]] = {}  # parcel -> key, slot, depth
        for parcel, latest in acts:
            had = counts.get(parcel)
            if had is None:
                key = slot_key(parcel)
                found = self._get_slot(key)
                if found is None:
                    counts[parcel] = (key, Slot(latest, 1), None)
                else:
                    slot = Slot(latest, _count_of(found) + 1)
                    counts[parcel] = (key, slot, _depth_of(found))
            else:
                counts[parcel] = (had[0], Slot(latest, had[1].count + 1), had[2])
        self._apply(counts.values())

    def put(self, parcel: str, slot: Slot) -> None:
        """Set ``parcel``'s slot."""
        key = slot_key(parcel)
        found = self._get_slot(key)
        self._apply([(key, slot, None if found is None else _depth_of(found))])

    def _apply(self, slots: Iterable[tuple[bytes, Slot, int | None]]) -> None:
        """Set slots (key, slot, its leaf's depth or None for a new one), then hash each
        interior node above them once, deepest first.

        The reads go to the layers' dicts directly (``_hash_at``, inlined: an update
        reads two positions for each node it hashes)."""
        layers = self._layers()
        inners = [t._inner for t in layers]
        singles = [t._single for t in layers]
        slots_of = [t._slots for t in layers]
        touched: dict[bytes, tuple[int, int]] = {}
        own = self._slots
        sha, leaf_tag = hashlib.sha256, _LEAF_TAG
        for key, slot, held in slots:
            if len(slot.latest) != 32:  # the entry's layout holds a 32-byte hash
                raise StateProofError("a slot's latest record is a 32-byte hash", field="latest")
            moved = own.get(key)  # a leaf pushed down by a new one of this batch
            if moved is not None:
                depth = _depth_of(moved)
            elif held is None:
                depth = self._place(key, touched, inners, slots_of)
            else:
                depth = held
            count = slot.count.to_bytes(8, "big")
            leaf = sha(leaf_tag + key + slot.latest + count).digest()
            own[key] = _entry(leaf, slot.latest, count, depth)
            touched[key] = (int.from_bytes(key, "big"), depth)
        # the interior nodes above the touched leaves, level by level: each leaf's
        # parent, then the parents of each level's nodes
        top = max((d for _, d in touched.values()), default=0)
        levels: list[set[int]] = [set() for _ in range(top)]
        for k, depth in touched.values():
            if depth > 0:
                levels[depth - 1].add(_pos(depth - 1, k >> (MAX_DEPTH - depth + 1)))
        for d in range(top - 1, 0, -1):
            levels[d - 1].update({n >> 1 for n in levels[d]})

        def hash_at(pos: int) -> bytes:
            for i in inners:
                v = i.get(pos)
                if v is not None:
                    return v
            for sg in singles:
                key = sg.get(pos)
                if key is not None:
                    if not key:  # gone from here: pushed down
                        return EMPTY
                    for sl in slots_of:
                        e = sl.get(key)
                        if e is not None:
                            return e[:32]
            return EMPTY

        inner, tag = self._inner, _NODE_TAG
        own_inner = inner.get
        for level in reversed(levels):
            for n in level:
                left, right = 2 * n, 2 * n + 1
                inner[n] = sha(
                    tag + (own_inner(left) or hash_at(left)) + (own_inner(right) or hash_at(right))
                ).digest()

    def _place(
        self,
        key: bytes,
        touched: dict[bytes, tuple[int, int]],
        inners: list[dict[int, bytes]],
        slots_of: list[dict[bytes, bytes]],
    ) -> int:
        """Put a new key's leaf in the tree's shape (hashes come after); its depth.

        Where another slot's leaf sits alone, both go down to the first bit where
        their keys differ; the positions above become interior (hashed later).
        ``inners`` and ``slots_of``: the layers' dicts, nearest first."""
        k = int.from_bytes(key, "big")
        depth, pos = 0, 1  # the root
        while True:  # down the interior nodes on the key's path
            for i in inners:
                if pos in i:
                    break
            else:
                break
            depth += 1
            pos = (1 << depth) | (k >> (MAX_DEPTH - depth))  # _pos, inlined
        there = self._get_single(pos)
        if there is not None:
            o = int.from_bytes(there, "big")
            below = MAX_DEPTH - (k ^ o).bit_length() + 1  # just under the first differing bit
            if self.base is None:  # nothing below to hide: no marker kept
                self._single.pop(pos, None)
            else:
                self._single[pos] = _GONE
            for d in range(depth, below):
                self._inner[_pos(d, k >> (MAX_DEPTH - d))] = _PENDING
            self._single[_pos(below, o >> (MAX_DEPTH - below))] = there
            other = next(sl[there] for sl in slots_of if there in sl)
            self._slots[there] = other[:72] + below.to_bytes(2, "big")  # _entry, deeper
            touched[there] = (o, below)
            depth = below
        self._single[_pos(depth, k >> (MAX_DEPTH - depth))] = key
        return depth

    def prove(self, parcel: str) -> StateProof:
        """The proof of ``parcel``'s slot, or of its absence."""
        key = slot_key(parcel)
        k = int.from_bytes(key, "big")
        path: list[bytes] = []
        depth = 0
        while self._get_inner(_pos(depth, k >> (MAX_DEPTH - depth))) is not None:
            prefix = k >> (MAX_DEPTH - depth - 1)
            path.append(self._hash_at(_pos(depth + 1, prefix ^ 1)))
            depth += 1
        there = self._get_single(_pos(depth, k >> (MAX_DEPTH - depth)))
        if there == key:
            found = self._get_slot(key)
            assert found is not None
            slot = _slot_of(found)
            return StateProof(parcel, slot.count, slot.latest, tuple(path))
        if there is None:
            return StateProof(parcel, 0, None, tuple(path))
        other = self._get_slot(there)
        assert other is not None
        o = _slot_of(other)
        return StateProof(parcel, 0, None, tuple(path), (there, o.latest, o.count))
