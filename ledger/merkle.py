"""RFC 9162 (Certificate Transparency v2) Merkle tree over SHA-256.

Hashes
    ``leaf_hash(d) = SHA-256(0x00 || d)``, ``node_hash(l, r) = SHA-256(0x01 || l || r)``
    and the root of the empty tree is ``SHA-256("")``. The Merkle Tree Hash (MTH)
    of ``n > 1`` leaves splits them at ``k``, the largest power of two below ``n``:
    ``MTH(D[0:n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))``.

Coordinates
    A node is named by ``(level, index)``: the node at level ``L`` and index ``i``
    is the root of the *complete* subtree over leaves ``[i * 2**L, (i + 1) * 2**L)``.
    Level 0 holds the leaf hashes. Complete nodes never change once the log has
    grown past them, so they are exactly what a store keeps (one row per node;
    ``Frontier.append`` returns the rows each new leaf creates).

    Nodes of a tree of size ``n`` that are *not* complete lie on its right edge.
    Such a node covers ``[lo, n)`` where ``lo`` is a multiple of a power of two
    larger than ``n - lo``; so the binary decomposition of ``n - lo``, largest
    part first, splits it into complete subtrees, each aligned to its own size.
    Its hash is the right fold of theirs: ``node_hash(h1, node_hash(h2, ... hk))``,
    which is what MTH computes when it keeps splitting at powers of two.

Reads are O(log n)
    An inclusion proof (PATH) or a consistency proof (SUBPROOF) has at most
    ``ceil(log2 n)`` elements (one more for a consistency proof). Each element is
    the hash of one tree node: a complete node, except for at most one node on
    the right edge (once a path turns into a left subtree, everything beneath is
    complete), whose decomposition has at most ``log2 n`` parts. So every proof,
    and every root, needs at most ``2 * log2(n) + 2`` complete nodes. The
    functions below first work out those coordinates from the sizes alone, fetch
    them with a single ``NodeReader.subtree_hashes`` call (one batched query for
    the SQL store), then fold them into the proof.

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 after checking up
front everything that can be checked without hashing (sizes, hash lengths, the
exact number of proof elements), and keeps computing a root apart from
comparing it. Every failure is an ``InclusionProofError`` or
``ConsistencyProofError`` saying what was wrong.

One concept: the RFC 9162 log (tree hashing, proof generation and proof
verification share the same index arithmetic, which is kept together).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeAlias

from kpledger.ledger.canonical import Tag, sha256, tagged_hash
from kpledger.ledger.errors import (
    ConsistencyProofError,
    InclusionProofError,
    ProofError,
    SchemaError,
    StoreError,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Coord",
    "Frontier",
    "MemoryTree",
    "NewNode",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_at",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "root_of",
    "subtree_coords_for_consistency",
    "subtree_coords_for_inclusion",
    "subtree_coords_for_root",
    "verify_consistency",
    "verify_inclusion",
]

#: Length in bytes of every hash in the tree.
HASH_SIZE = 32

#: ``(level, index)`` of a complete subtree.
Coord: TypeAlias = tuple[int, int]
#: ``(level, index, hash)`` of a complete node, as a store persists it.
NewNode: TypeAlias = tuple[int, int, bytes]
#: A half-open range of leaves ``[lo, hi)`` that is one node of the tree.
_Span: TypeAlias = tuple[int, int]

#: Root of the tree with no leaves: SHA-256 of the empty string.
EMPTY_ROOT: bytes = sha256(b"")


def leaf_hash(data: bytes) -> bytes:
    """Hash of one leaf: ``SHA-256(0x00 || data)``."""
    return tagged_hash(Tag.LEAF, data)


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return tagged_hash(Tag.NODE, left + right)


class NodeReader(Protocol):
    """Anything that can serve the hashes of complete subtrees."""

    def subtree_hashes(self, coords: Sequence[Coord]) -> list[bytes]:
        """The hashes of the complete nodes at ``coords``, in the same order."""
        ...


# --------------------------------------------------------------------------- plans
#
# A "plan" is the list of tree nodes, as leaf ranges, whose hashes make up a
# proof, in proof order (bottom-up). It depends on the sizes only.


def _split(width: int) -> int:
    """Largest power of two strictly below ``width`` (``width >= 2``)."""
    return 1 << ((width - 1).bit_length() - 1)


def _decompose(lo: int, hi: int) -> list[Coord]:
    """Complete subtrees covering the node ``[lo, hi)``, largest (leftmost) first."""
    out: list[Coord] = []
    pos = lo
    rest = hi - lo
    while rest:
        level = rest.bit_length() - 1
        out.append((level, pos >> level))
        pos += 1 << level
        rest -= 1 << level
    return out


def _inclusion_plan(index: int, size: int) -> list[_Span]:
    """Nodes of PATH(index, D[0:size]) (RFC 9162 2.1.3.1), bottom-up."""
    top_down: list[_Span] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            top_down.append((mid, hi))
            hi = mid
        else:
            top_down.append((lo, mid))
            lo = mid
    top_down.reverse()
    return top_down


def _consistency_plan(size1: int, size2: int) -> list[_Span]:
    """Nodes of PROOF(size1, D[0:size2]) (RFC 9162 2.1.4.1), bottom-up.

    Empty when ``size1`` is 0 or equal to ``size2``.
    """
    if size1 in (0, size2):
        return []
    top_down: list[_Span] = []
    lo, hi = 0, size2
    first_is_whole_subtree = True  # the RFC's flag b: size1 is a node we never left
    while hi != size1:
        mid = lo + _split(hi - lo)
        if size1 <= mid:
            top_down.append((mid, hi))
            hi = mid
        else:
            top_down.append((lo, mid))
            lo = mid
            first_is_whole_subtree = False
    if not first_is_whole_subtree:
        top_down.append((lo, hi))
    top_down.reverse()
    return top_down


def subtree_coords_for_root(size: int) -> list[Coord]:
    """Complete subtrees whose hashes give the root of a tree of ``size`` leaves."""
    return _decompose(0, size)


def subtree_coords_for_inclusion(index: int, size: int) -> list[Coord]:
    """Every complete subtree an inclusion proof for ``index`` in ``size`` needs."""
    _check_index(index, size)
    return [c for lo, hi in _inclusion_plan(index, size) for c in _decompose(lo, hi)]


def subtree_coords_for_consistency(size1: int, size2: int) -> list[Coord]:
    """Every complete subtree a consistency proof from ``size1`` to ``size2`` needs."""
    _check_sizes(size1, size2)
    return [c for lo, hi in _consistency_plan(size1, size2) for c in _decompose(lo, hi)]


# --------------------------------------------------------------------------- reading


def _check_index(index: int, size: int) -> None:
    if size < 1:
        raise SchemaError(f"a tree of size {size} has no leaves to prove", field="size")
    if not 0 <= index < size:
        raise SchemaError(f"leaf index {index} is outside a tree of size {size}", field="index")


def _check_sizes(size1: int, size2: int) -> None:
    if size1 < 0:
        raise SchemaError(f"tree size {size1} is negative", field="size1")
    if size1 > size2:
        raise SchemaError(f"size1 {size1} is larger than size2 {size2}", field="size1")


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Hash of a node from its decomposition: ``node_hash(h1, node_hash(h2, ...))``."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _read(reader: NodeReader, coords: Sequence[Coord]) -> list[bytes]:
    """One batched read, checked: one 32-byte hash per coordinate."""
    if not coords:
        return []
    hashes = reader.subtree_hashes(coords)
    if len(hashes) != len(coords):
        raise StoreError(f"asked the node store for {len(coords)} hashes, got {len(hashes)}")
    for (level, index), h in zip(coords, hashes, strict=True):
        if len(h) != HASH_SIZE:
            raise StoreError(f"node ({level}, {index}) has a {len(h)}-byte hash")
    return hashes


def _materialise(plan: Sequence[_Span], reader: NodeReader) -> list[bytes]:
    """Hash every node of ``plan`` with a single read of its complete subtrees."""
    parts = [_decompose(lo, hi) for lo, hi in plan]
    hashes = _read(reader, [c for part in parts for c in part])
    out: list[bytes] = []
    pos = 0
    for part in parts:
        out.append(_fold(hashes[pos : pos + len(part)]))
        pos += len(part)
    return out


def root_at(size: int, reader: NodeReader) -> bytes:
    """Root of the first ``size`` leaves, from ``popcount(size)`` stored nodes."""
    if size < 0:
        raise SchemaError(f"tree size {size} is negative", field="size")
    return _fold(_read(reader, subtree_coords_for_root(size)))


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1, leaf level first."""
    _check_index(index, size)
    return _materialise(_inclusion_plan(index, size), reader)


def consistency_proof(size1: int, size2: int, reader: NodeReader) -> list[bytes]:
    """PROOF(size1, D[0:size2]) of RFC 9162 section 2.1.4.1.

    Empty when ``size1`` is 0 (every tree extends the empty one) or equals ``size2``.
    """
    _check_sizes(size1, size2)
    return _materialise(_consistency_plan(size1, size2), reader)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes that are already hashed; ``EMPTY_ROOT`` for none."""
    stack: list[bytes] = []  # the frontier, largest subtree first
    for position, leaf in enumerate(leaf_hashes):
        if len(leaf) != HASH_SIZE:
            raise SchemaError(f"expected {HASH_SIZE} bytes, got {len(leaf)}", field=f"[{position}]")
        carry, index = leaf, position
        while index & 1:  # merge equal-sized subtrees, as Frontier.append does
            carry = node_hash(stack.pop(), carry)
            index >>= 1
        stack.append(carry)
    return _fold(stack)


# --------------------------------------------------------------------------- verifying


def _need_hash(value: bytes, what: str, error: type[ProofError]) -> None:
    if len(value) != HASH_SIZE:
        raise error(f"{what} must be {HASH_SIZE} bytes, got {len(value)}", field=what)


def _need_proof_hashes(proof: Sequence[bytes], error: type[ProofError]) -> None:
    for i, h in enumerate(proof):
        if len(h) != HASH_SIZE:  # the field's name is made only for the error
            _need_hash(h, f"proof[{i}]", error)


def _need_length(proof: Sequence[bytes], want: int, where: str, error: type[ProofError]) -> None:
    got = len(proof)
    if got > want:
        raise error(
            f"proof has {got} hashes, {where} takes exactly {want}: too long "
            f"(extra or garbage elements)",
            field="proof",
        )
    if got < want:
        raise error(
            f"proof has {got} hashes, {where} takes exactly {want}: too short (truncated)",
            field="proof",
        )


def _mismatch(what: str, expected: bytes, calculated: bytes, error: type[ProofError]) -> ProofError:
    return error(
        f"{what} mismatch: expected {expected.hex()}, calculated {calculated.hex()}",
        field=what,
    )


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root a tree of ``size`` must have if ``proof`` shows ``leaf_hash`` at ``index``.

    RFC 9162 section 2.1.3.2 without its final comparison. Raises
    ``InclusionProofError`` if the proof cannot belong to these sizes at all.
    """
    err = InclusionProofError
    if size <= 0:
        raise err(f"tree size {size}: an empty tree includes no leaf", field="size")
    if not 0 <= index < size:
        raise err(f"leaf index {index} is outside a tree of size {size}", field="index")
    _need_hash(leaf_hash, "leaf_hash", err)
    _need_length(proof, len(_inclusion_plan(index, size)), f"leaf {index} of {size}", err)
    _need_proof_hashes(proof, err)

    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:  # unreachable after the length check; kept as the RFC states it
            raise err("proof is longer than the path to the root", field="proof")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise err("proof is shorter than the path to the root", field="proof")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ``InclusionProofError`` unless ``proof`` puts ``leaf_hash`` at ``index``
    of the tree of ``size`` leaves whose root is ``root``."""
    _need_hash(root, "root", InclusionProofError)
    calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if calculated != root:
        raise _mismatch("root", root, calculated, InclusionProofError)


def _check_consistency_args(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes | None
) -> None:
    err = ConsistencyProofError
    if size1 < 0:
        raise err(f"size1 {size1} is negative", field="size1")
    if size1 > size2:
        raise err(f"size1 {size1} is larger than size2 {size2}", field="size1")
    _need_hash(root1, "root1", err)
    if root2 is not None:
        _need_hash(root2, "root2", err)
    if size1 == 0 and proof:
        raise err(
            f"proof from the empty tree must be empty, got {len(proof)} hashes", field="proof"
        )
    if size1 == size2 and proof:
        raise err(f"sizes are equal ({size1}) but the proof has {len(proof)} hashes", field="proof")
    if size1 == 0 and root1 != EMPTY_ROOT:
        raise err(
            f"size1 is 0 but root1 {root1.hex()} is not the empty tree's root {EMPTY_ROOT.hex()}",
            field="root1",
        )
    where = f"size {size1} to {size2}"
    _need_length(proof, len(_consistency_plan(size1, size2)), where, err)
    _need_proof_hashes(proof, err)


def root_from_consistency_proof(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> bytes:
    """The root a tree of ``size2`` must have if ``proof`` extends ``root1`` of ``size1``.

    RFC 9162 section 2.1.4.2, checking ``root1`` but not yet the second root.
    Raises ``ConsistencyProofError`` if the proof does not reproduce ``root1``,
    or if ``size1`` is 0 and ``size2`` is not (nothing to compute the root from).
    """
    err = ConsistencyProofError
    _check_consistency_args(size1, size2, proof, root1, None)
    if size1 == size2:
        return root1
    if size1 == 0:
        raise err("a proof from the empty tree says nothing about the larger root", field="size1")

    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is the seed
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # unreachable after the length check; kept as the RFC states it
            raise err("proof is longer than the path to the root", field="proof")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise err("proof is shorter than the path to the root", field="proof")
    if fr != root1:
        raise _mismatch("root1", root1, fr, err)
    return sr


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Raise ``ConsistencyProofError`` unless the tree of ``size2`` with ``root2``
    extends the tree of ``size1`` with ``root1``.

    ``size1 == 0`` is accepted with an empty proof when ``root1`` is ``EMPTY_ROOT``;
    ``root2`` is then unconstrained (every tree extends the empty one) unless
    ``size2`` is 0 too. Equal sizes need an empty proof and equal roots.
    """
    err = ConsistencyProofError
    _check_consistency_args(size1, size2, proof, root1, root2)
    if size1 == 0:
        if size2 == 0 and root2 != EMPTY_ROOT:
            raise err(
                f"size2 is 0 but root2 {root2.hex()} is not the empty tree's root "
                f"{EMPTY_ROOT.hex()}",
                field="root2",
            )
        return
    if size1 == size2:
        if root1 != root2:
            raise err(
                f"sizes are equal ({size1}) but root1 {root1.hex()} != root2 {root2.hex()}",
                field="root2",
            )
        return
    calculated = root_from_consistency_proof(size1, size2, proof, root1)
    if calculated != root2:
        raise _mismatch("root2", root2, calculated, err)


# --------------------------------------------------------------------------- logs


def _need_leaf(value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise SchemaError(f"expected {HASH_SIZE} bytes, got {len(value)}", field="leaf_hash")


class Frontier:
    """The compact right edge of a log: one hash per set bit of ``size``.

    ``hashes[j]`` is the complete subtree for the ``j``-th set bit of ``size``
    counted from the top, so the largest subtree comes first. That is all it
    takes to append leaves and compute the root.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise SchemaError(f"tree size {size} is negative", field="size")
        if len(hashes) != size.bit_count():
            raise SchemaError(
                f"a tree of size {size} has {size.bit_count()} frontier hashes, got {len(hashes)}",
                field="hashes",
            )
        for i, h in enumerate(hashes):
            if len(h) != HASH_SIZE:
                raise SchemaError(f"expected {HASH_SIZE} bytes, got {len(h)}", field=f"hashes[{i}]")
        self._size = size
        self._hashes = list(hashes)

    @classmethod
    def from_reader(cls, size: int, reader: NodeReader) -> Frontier:
        """The frontier of the first ``size`` leaves, read in one batch."""
        if size < 0:
            raise SchemaError(f"tree size {size} is negative", field="size")
        return cls(size, _read(reader, subtree_coords_for_root(size)))

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def coords(self) -> list[Coord]:
        """``(level, index)`` of each hash in ``hashes``."""
        return subtree_coords_for_root(self._size)

    def append(self, leaf_hash: bytes) -> list[NewNode]:
        """Add a leaf; return every complete node it creates, the leaf first."""
        _need_leaf(leaf_hash)
        index = self._size
        carry = leaf_hash
        level = 0
        created: list[NewNode] = [(0, index, carry)]
        while index & 1:
            carry = node_hash(self._hashes.pop(), carry)
            index >>= 1
            level += 1
            created.append((level, index, carry))
        self._hashes.append(carry)
        self._size += 1
        return created

    def root(self) -> bytes:
        return _fold(self._hashes)

    def copy(self) -> Frontier:
        return Frontier(self._size, self._hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, hashes=<{len(self._hashes)}>)"


class MemoryTree:
    """A whole log in memory: every complete node, level by level.

    ``levels[L][i]`` is node ``(L, i)``. It serves as a ``NodeReader``, so the
    proofs it hands out go through the same code as those of the SQL store.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append(self, leaf_hash: bytes) -> list[NewNode]:
        """Add a leaf; return every complete node it creates, the leaf first."""
        _need_leaf(leaf_hash)
        levels = self._levels
        index = len(levels[0])
        levels[0].append(leaf_hash)
        created: list[NewNode] = [(0, index, leaf_hash)]
        carry = leaf_hash
        level = 0
        while index & 1:
            carry = node_hash(levels[level][index - 1], carry)
            index >>= 1
            level += 1
            if level == len(levels):
                levels.append([])
            levels[level].append(carry)
            created.append((level, index, carry))
        return created

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaves (the created nodes are not returned)."""
        levels = self._levels
        leaves = levels[0]
        for leaf in leaf_hashes:
            _need_leaf(leaf)
            index = len(leaves)
            leaves.append(leaf)
            carry = leaf
            level = 0
            while index & 1:
                carry = node_hash(levels[level][index - 1], carry)
                index >>= 1
                level += 1
                if level == len(levels):
                    levels.append([])
                levels[level].append(carry)

    def subtree_hashes(self, coords: Sequence[Coord]) -> list[bytes]:
        out: list[bytes] = []
        levels = self._levels
        for level, index in coords:
            if not (0 <= level < len(levels) and 0 <= index < len(levels[level])):
                raise StoreError(
                    f"no complete node ({level}, {index}) in a tree of size {self.size}"
                )
            out.append(levels[level][index])
        return out

    def _check_size(self, size: int, field: str) -> None:
        if not 0 <= size <= self.size:
            raise SchemaError(f"size {size} is outside 0..{self.size}", field=field)

    def frontier(self, size: int | None = None) -> Frontier:
        size = self.size if size is None else size
        self._check_size(size, "size")
        return Frontier.from_reader(size, self)

    def root(self) -> bytes:
        return root_at(self.size, self)

    def root_at(self, size: int) -> bytes:
        self._check_size(size, "size")
        return root_at(size, self)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        self._check_size(size, "size")
        return inclusion_proof(index, size, self)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        size2 = self.size if size2 is None else size2
        self._check_size(size2, "size2")
        return consistency_proof(size1, size2, self)
