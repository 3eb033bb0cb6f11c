"""Tests of ledger.merkle: external RFC 6962/9162 vectors, an independent
recursive oracle, O(log n) node reads, and bit-flip properties."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpledger.ledger.errors import (
    ConsistencyProofError,
    InclusionProofError,
    ProofError,
    SchemaError,
    StoreError,
)
from kpledger.ledger.merkle import (
    EMPTY_ROOT,
    Coord,
    Frontier,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_at,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    root_of,
    subtree_coords_for_consistency,
    subtree_coords_for_inclusion,
    subtree_coords_for_root,
    verify_consistency,
    verify_inclusion,
)

# --------------------------------------------------------------------------- vectors

REPO = Path(__file__).parents[2]
VECTORS = Path(os.environ.get("KPL_VECTORS") or REPO.parent / "shared" / "vectors")
RFC6962 = VECTORS / "rfc6962"
MISSING = (
    f"external vectors not found: {RFC6962} does not exist "
    f"(set KPL_VECTORS to the vectors folder; default <repo>/../shared/vectors)"
)

# The folder holds 98 inclusion and 98 consistency cases; these are floors, so
# that a missing or renamed sub-folder cannot pass unnoticed.
MIN_INCLUSION_FILES = 98
MIN_CONSISTENCY_FILES = 98
MIN_VECTOR_FILES = 196

# Cases where we are deliberately stricter than the upstream verifier. The key
# is the path relative to rfc6962/; the test asserts that the vector still says
# "valid" (so the entry is still needed) and that we refuse it.
STRICTER_THAN_UPSTREAM = {
    "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json": (
        "its 'roots' are the 12-byte string \"don't care 2\"; upstream does not look "
        "at roots when the sizes are equal, we refuse any hash that is not 32 bytes"
    ),
}

# The RFC 6962 reference leaves behind the happy-path vectors.
REFERENCE_LEAVES = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]


def _files(kind: str) -> list[Path]:
    folder = RFC6962 / kind
    return sorted(folder.rglob("*.json")) if folder.is_dir() else []


def _param_files(kind: str, name: str = "") -> list[Any]:
    files = [p for p in _files(kind) if not name or p.name == name]
    if not files:
        return [pytest.param(None, id=f"{kind}-vectors-missing")]
    return [pytest.param(p, id=p.relative_to(RFC6962).as_posix()) for p in files]


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _load(path: Path | None) -> tuple[str, dict[str, Any]]:
    if path is None:
        pytest.skip(MISSING)
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return path.relative_to(RFC6962).as_posix(), data


def _expect(rel: str, want_err: bool) -> bool:
    """Whether our verifier must refuse the case."""
    if rel in STRICTER_THAN_UPSTREAM:
        assert want_err is False, f"{rel} no longer needs its STRICTER_THAN_UPSTREAM entry"
        return True
    return want_err


@pytest.mark.vectors
def test_vector_folder_is_complete() -> None:
    if not RFC6962.is_dir():
        pytest.skip(MISSING)
    inclusion = len(_files("inclusion"))
    consistency = len(_files("consistency"))
    assert inclusion >= MIN_INCLUSION_FILES, f"only {inclusion} inclusion vectors"
    assert consistency >= MIN_CONSISTENCY_FILES, f"only {consistency} consistency vectors"
    assert inclusion + consistency >= MIN_VECTOR_FILES


@pytest.mark.vectors
@pytest.mark.parametrize("path", _param_files("inclusion"))
def test_inclusion_vector(path: Path | None) -> None:
    rel, v = _load(path)
    proof = [_b64(p) for p in v["proof"] or []]
    args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b64(v["root"]))
    if _expect(rel, v["wantErr"]):
        with pytest.raises(InclusionProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.vectors
@pytest.mark.parametrize("path", _param_files("consistency"))
def test_consistency_vector(path: Path | None) -> None:
    rel, v = _load(path)
    proof = [_b64(p) for p in v["proof"] or []]
    args = (v["size1"], v["size2"], proof, _b64(v["root1"]), _b64(v["root2"]))
    if _expect(rel, v["wantErr"]):
        with pytest.raises(ConsistencyProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


@pytest.mark.vectors
@pytest.mark.parametrize(
    "path",
    _param_files("inclusion", "happy-path.json") + _param_files("consistency", "happy-path.json"),
)
def test_happy_path_vectors_are_what_we_generate(path: Path | None) -> None:
    """Our proofs are byte-for-byte the published ones (same reference leaves)."""
    _, v = _load(path)
    tree = MemoryTree(leaf_hash(x) for x in REFERENCE_LEAVES)
    proof = [_b64(p) for p in v["proof"] or []]
    if "leafIdx" in v:
        assert tree.subtree_hashes([(0, v["leafIdx"])]) == [_b64(v["leafHash"])]
        assert tree.root_at(v["treeSize"]) == _b64(v["root"])
        assert tree.inclusion_proof(v["leafIdx"], v["treeSize"]) == proof
    else:
        assert tree.root_at(v["size1"]) == _b64(v["root1"])
        assert tree.root_at(v["size2"]) == _b64(v["root2"])
        assert tree.consistency_proof(v["size1"], v["size2"]) == proof


# --------------------------------------------------------------------------- oracle
#
# RFC 9162 sections 2.1.1, 2.1.3.1 and 2.1.4.1 written as literally as possible,
# over ranges of one fixed list of leaves.

ORACLE_LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(80)]


def _k(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


@cache
def mth(lo: int, hi: int) -> bytes:
    if hi == lo:
        return hashlib.sha256(b"").digest()
    if hi - lo == 1:
        return ORACLE_LEAVES[lo]
    k = _k(hi - lo)
    return node_hash(mth(lo, lo + k), mth(lo + k, hi))


def path(m: int, lo: int, hi: int) -> list[bytes]:
    if hi - lo == 1:
        return []
    k = _k(hi - lo)
    if m < k:
        return [*path(m, lo, lo + k), mth(lo + k, hi)]
    return [*path(m - k, lo + k, hi), mth(lo, lo + k)]


def subproof(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if whole else [mth(lo, hi)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, lo, lo + k, whole), mth(lo + k, hi)]
    return [*subproof(m - k, lo + k, hi, False), mth(lo, lo + k)]


@cache
def oracle_tree() -> MemoryTree:
    return MemoryTree(ORACLE_LEAVES)


# --------------------------------------------------------------------------- hashing


def test_hash_functions() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert (
        leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    left, right = b"\x11" * 32, b"\x22" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert root_of([]) == EMPTY_ROOT
    assert MemoryTree().root() == EMPTY_ROOT == Frontier().root()


def test_reference_root_of_eight_leaves() -> None:
    tree = MemoryTree(leaf_hash(x) for x in REFERENCE_LEAVES)
    assert tree.root().hex() == ("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")


# --------------------------------------------------------------------------- generation


def test_root_at_every_prefix() -> None:
    tree = oracle_tree()
    for size in range(len(ORACLE_LEAVES) + 1):
        want = mth(0, size)
        assert tree.root_at(size) == want
        assert root_of(ORACLE_LEAVES[:size]) == want
        assert MemoryTree(ORACLE_LEAVES[:size]).root() == want


def test_inclusion_every_index_up_to_70() -> None:
    tree = oracle_tree()
    for size in range(1, 71):
        root = tree.root_at(size)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == path(index, 0, size), (index, size)
            leaf = ORACLE_LEAVES[index]
            assert root_from_inclusion_proof(leaf, index, size, proof) == root
            verify_inclusion(leaf, index, size, proof, root)
            assert len(subtree_coords_for_inclusion(index, size)) <= 2 * math.log2(size) + 2


def test_consistency_every_pair_up_to_40() -> None:
    tree = oracle_tree()
    for size2 in range(0, 41):
        root2 = tree.root_at(size2)
        for size1 in range(0, size2 + 1):
            proof = tree.consistency_proof(size1, size2)
            want = [] if size1 in (0, size2) else subproof(size1, 0, size2, True)
            assert proof == want, (size1, size2)
            root1 = tree.root_at(size1)
            verify_consistency(size1, size2, proof, root1, root2)
            if size1 > 0:
                assert root_from_consistency_proof(size1, size2, proof, root1) == root2


def test_default_sizes_are_the_whole_tree() -> None:
    tree = oracle_tree()
    n = tree.size
    assert tree.inclusion_proof(7) == tree.inclusion_proof(7, n)
    assert tree.consistency_proof(9) == tree.consistency_proof(9, n)
    assert tree.root() == tree.root_at(n)


def test_frontier_matches_memory_tree() -> None:
    frontier = Frontier()
    tree = MemoryTree()
    for i, leaf in enumerate(ORACLE_LEAVES):
        created = frontier.append(leaf)
        assert tree.append(leaf) == created
        assert created[0] == (0, i, leaf)
        for level, index, h in created:
            assert h == mth(index << level, (index + 1) << level)
        assert frontier.size == tree.size == i + 1
        assert frontier.root() == tree.root() == mth(0, i + 1)
        assert Frontier.from_reader(frontier.size, tree) == frontier
        assert tree.frontier() == frontier
        assert frontier.hashes == tuple(tree.subtree_hashes(subtree_coords_for_root(frontier.size)))
        assert frontier.coords() == subtree_coords_for_root(frontier.size)
        assert len(frontier.hashes) == frontier.size.bit_count()


def test_frontier_every_created_node_is_stored_exactly_once() -> None:
    frontier = Frontier()
    seen: set[Coord] = set()
    for leaf in ORACLE_LEAVES[:64]:
        for level, index, _ in frontier.append(leaf):
            assert (level, index) not in seen
            seen.add((level, index))
    # 64 leaves make 32 + 16 + 8 + 4 + 2 + 1 interior nodes.
    assert len(seen) == 127


def test_frontier_copy_is_independent() -> None:
    frontier = Frontier()
    for leaf in ORACLE_LEAVES[:5]:
        frontier.append(leaf)
    twin = frontier.copy()
    assert twin == frontier
    twin.append(ORACLE_LEAVES[5])
    assert frontier.size == 5
    assert twin.size == 6
    assert frontier.root() == mth(0, 5)
    assert twin.root() == mth(0, 6)
    rebuilt = Frontier(5, frontier.hashes)
    assert rebuilt == frontier
    assert rebuilt != twin


def test_frontier_refuses_bad_state() -> None:
    with pytest.raises(SchemaError, match="3 frontier hashes, got 2"):
        Frontier(7, [b"\x00" * 32] * 2)
    with pytest.raises(SchemaError):
        Frontier(1, [b"\x00" * 31])
    with pytest.raises(SchemaError):
        Frontier(-1)
    with pytest.raises(SchemaError):
        Frontier().append(b"short")


def test_extend_equals_append() -> None:
    one = MemoryTree()
    for leaf in ORACLE_LEAVES:
        one.append(leaf)
    other = MemoryTree()
    other.extend(ORACLE_LEAVES[:33])
    other.extend(ORACLE_LEAVES[33:])
    assert one.size == other.size
    for size in range(other.size + 1):
        assert one.root_at(size) == other.root_at(size)


def test_generation_refuses_out_of_range() -> None:
    tree = oracle_tree()
    with pytest.raises(SchemaError):
        tree.inclusion_proof(5, 5)
    with pytest.raises(SchemaError):
        tree.inclusion_proof(-1, 5)
    with pytest.raises(SchemaError):
        tree.inclusion_proof(0, 0)
    with pytest.raises(SchemaError):
        tree.inclusion_proof(0, tree.size + 1)
    with pytest.raises(SchemaError):
        tree.consistency_proof(4, 3)
    with pytest.raises(SchemaError):
        tree.consistency_proof(-1, 3)
    with pytest.raises(SchemaError):
        tree.consistency_proof(1, tree.size + 1)
    with pytest.raises(SchemaError):
        tree.root_at(tree.size + 1)
    with pytest.raises(StoreError):
        tree.subtree_hashes([(0, tree.size)])
    with pytest.raises(StoreError):
        tree.subtree_hashes([(0, -1)])
    with pytest.raises(StoreError):
        tree.subtree_hashes([(7, 0)])  # 80 leaves: no complete node of 128


# --------------------------------------------------------------------------- O(log n) reads


class CountingReader:
    """Synthesises a hash for any complete node of a tree of `size` and counts calls."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls: list[list[Coord]] = []

    def subtree_hashes(self, coords: Sequence[Coord]) -> list[bytes]:
        self.calls.append(list(coords))
        for level, index in coords:
            assert level >= 0
            assert index >= 0
            assert (index + 1) << level <= self.size, f"({level}, {index}) is not complete"
        return [hashlib.sha256(f"{lv}/{ix}".encode()).digest() for lv, ix in coords]


SIZES = [1_000_000, 999_999, 1 << 20, (1 << 20) + 1, 123_456_789, (1 << 40) - 1]


def _bound(n: int) -> float:
    return 2 * math.log2(n) + 2


@pytest.mark.parametrize("size", SIZES)
def test_inclusion_is_one_batched_read(size: int) -> None:
    for index in sorted({0, 1, size // 3, size // 2, size - 2, size - 1, 0x5A5A5 % size}):
        reader = CountingReader(size)
        proof = inclusion_proof(index, size, reader)
        assert len(reader.calls) == 1
        coords = reader.calls[0]
        assert len(coords) <= _bound(size)
        assert len(set(coords)) == len(coords)
        assert coords == subtree_coords_for_inclusion(index, size)
        assert len(proof) <= math.ceil(math.log2(size))


@pytest.mark.parametrize("size", SIZES)
def test_consistency_is_one_batched_read(size: int) -> None:
    for size1 in sorted({1, 2, 3, size // 3, size // 2, 1 << 19, size - 1} - {0, size}):
        if size1 >= size:
            continue
        reader = CountingReader(size)
        proof = consistency_proof(size1, size, reader)
        assert len(reader.calls) == 1
        coords = reader.calls[0]
        assert len(coords) <= _bound(size)
        assert len(set(coords)) == len(coords)
        assert coords == subtree_coords_for_consistency(size1, size)
        assert len(proof) <= math.ceil(math.log2(size)) + 1


@pytest.mark.parametrize("size", SIZES)
def test_root_and_frontier_are_one_batched_read(size: int) -> None:
    reader = CountingReader(size)
    root_at(size, reader)
    assert [len(c) for c in reader.calls] == [size.bit_count()]
    reader = CountingReader(size)
    frontier = Frontier.from_reader(size, reader)
    assert len(reader.calls) == 1
    assert frontier.size == size


def test_trivial_requests_read_nothing() -> None:
    reader = CountingReader(10)
    assert consistency_proof(10, 10, reader) == []
    assert consistency_proof(0, 10, reader) == []
    assert inclusion_proof(0, 1, CountingReader(1)) == []
    assert root_at(0, reader) == EMPTY_ROOT
    assert reader.calls == []


def test_reader_that_lies_is_a_store_error() -> None:
    class Short:
        def subtree_hashes(self, coords: Sequence[Coord]) -> list[bytes]:
            return [b"\x00" * 32] * (len(coords) - 1)

    class Narrow:
        def subtree_hashes(self, coords: Sequence[Coord]) -> list[bytes]:
            return [b"\x00" * 31] * len(coords)

    with pytest.raises(StoreError):
        inclusion_proof(3, 10, Short())
    with pytest.raises(StoreError):
        root_at(10, Narrow())


def test_large_real_tree_round_trip() -> None:
    size = (1 << 14) + 77
    tree = MemoryTree(leaf_hash(i.to_bytes(4, "big")) for i in range(size))
    root = tree.root()
    for index in (0, 1, 8191, 8192, size - 2, size - 1):
        leaf = tree.subtree_hashes([(0, index)])[0]
        verify_inclusion(leaf, index, size, tree.inclusion_proof(index), root)
    for size1 in (1, 2, 3, 1 << 13, (1 << 14) - 1, 1 << 14, size - 1):
        proof = tree.consistency_proof(size1)
        verify_consistency(size1, size, proof, tree.root_at(size1), root)


# --------------------------------------------------------------------------- verification errors


def test_inclusion_errors_say_what_is_wrong() -> None:
    tree = oracle_tree()
    size, index = 21, 5
    leaf, root = ORACLE_LEAVES[index], tree.root_at(size)
    proof = tree.inclusion_proof(index, size)
    with pytest.raises(InclusionProofError, match="outside a tree of size 21"):
        verify_inclusion(leaf, 21, size, proof, root)
    with pytest.raises(InclusionProofError, match="empty tree"):
        verify_inclusion(leaf, 0, 0, [], EMPTY_ROOT)
    with pytest.raises(InclusionProofError, match="leaf_hash must be 32 bytes, got 31"):
        verify_inclusion(leaf[:31], index, size, proof, root)
    with pytest.raises(InclusionProofError, match="root must be 32 bytes, got 33"):
        verify_inclusion(leaf, index, size, proof, root + b"\x00")
    with pytest.raises(InclusionProofError, match=r"proof\[2\] must be 32 bytes"):
        verify_inclusion(leaf, index, size, [*proof[:2], b"", *proof[3:]], root)
    with pytest.raises(InclusionProofError, match="too long"):
        verify_inclusion(leaf, index, size, [*proof, root], root)
    with pytest.raises(InclusionProofError, match="too short"):
        verify_inclusion(leaf, index, size, proof[:-1], root)
    wrong = tree.root_at(size - 1)
    calculated = root_from_inclusion_proof(leaf, index, size, proof)
    with pytest.raises(InclusionProofError) as caught:
        verify_inclusion(leaf, index, size, proof, wrong)
    assert wrong.hex() in str(caught.value)
    assert calculated.hex() in str(caught.value)
    assert caught.value.field == "root"


def test_consistency_errors_say_what_is_wrong() -> None:
    tree = oracle_tree()
    r = tree.root_at
    proof = tree.consistency_proof(6, 13)
    with pytest.raises(ConsistencyProofError, match="larger than size2"):
        verify_consistency(13, 6, proof, r(13), r(6))
    with pytest.raises(ConsistencyProofError, match="empty tree must be empty"):
        verify_consistency(0, 13, proof, EMPTY_ROOT, r(13))
    with pytest.raises(ConsistencyProofError, match="sizes are equal"):
        verify_consistency(13, 13, proof, r(13), r(13))
    with pytest.raises(ConsistencyProofError, match="sizes are equal") as caught:
        verify_consistency(13, 13, [], r(13), r(12))
    assert r(12).hex() in str(caught.value)
    with pytest.raises(ConsistencyProofError, match="root1 must be 32 bytes"):
        verify_consistency(6, 13, proof, r(6)[:12], r(13))
    with pytest.raises(ConsistencyProofError, match="root2 must be 32 bytes"):
        verify_consistency(6, 13, proof, r(6), r(13)[:12])
    with pytest.raises(ConsistencyProofError, match="too long"):
        verify_consistency(6, 13, [*proof, r(6)], r(6), r(13))
    with pytest.raises(ConsistencyProofError, match="too short"):
        verify_consistency(6, 13, proof[:-1], r(6), r(13))
    with pytest.raises(ConsistencyProofError, match="too short"):
        verify_consistency(6, 13, [], r(6), r(13))
    with pytest.raises(ConsistencyProofError, match="root1 mismatch") as caught:
        verify_consistency(6, 13, proof, r(7), r(13))
    assert r(7).hex() in str(caught.value)
    with pytest.raises(ConsistencyProofError, match="root2 mismatch") as caught:
        verify_consistency(6, 13, proof, r(6), r(14))
    assert r(14).hex() in str(caught.value)
    assert root_from_consistency_proof(6, 13, proof, r(6)).hex() in str(caught.value)
    with pytest.raises(ConsistencyProofError, match="empty tree"):
        verify_consistency(0, 5, [], b"\x00" * 32, r(5))
    with pytest.raises(ConsistencyProofError, match="empty tree"):
        verify_consistency(0, 0, [], EMPTY_ROOT, b"\x00" * 32)
    with pytest.raises(ConsistencyProofError):
        root_from_consistency_proof(0, 5, [], EMPTY_ROOT)
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(0, 13, [], EMPTY_ROOT, r(13))


def test_proof_errors_are_invalid_data() -> None:
    assert issubclass(InclusionProofError, ProofError)
    assert issubclass(ConsistencyProofError, ValueError)


# --------------------------------------------------------------------------- properties

HYPO_SIZE = 300


@cache
def hypo_tree() -> MemoryTree:
    return MemoryTree(leaf_hash(b"h" + i.to_bytes(4, "big")) for i in range(HYPO_SIZE))


@cache
def big_tree() -> MemoryTree:
    return MemoryTree(leaf_hash(b"b" + i.to_bytes(4, "big")) for i in range((1 << 12) + 37))


def _flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_bit_flip_breaks_inclusion(data: st.DataObject) -> None:
    tree = hypo_tree()
    size = data.draw(st.integers(1, HYPO_SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    leaf = tree.subtree_hashes([(0, index)])[0]
    root = tree.root_at(size)
    proof = tree.inclusion_proof(index, size)
    verify_inclusion(leaf, index, size, proof, root)
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == -2:
        leaf = _flip(leaf, bit)
    elif target == -1:
        root = _flip(root, bit)
    else:
        proof[target] = _flip(proof[target], bit)
    with pytest.raises(InclusionProofError):
        verify_inclusion(leaf, index, size, proof, root)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_bit_flip_breaks_consistency(data: st.DataObject) -> None:
    tree = hypo_tree()
    size2 = data.draw(st.integers(0, HYPO_SIZE), label="size2")
    size1 = data.draw(st.integers(0, size2), label="size1")
    root1, root2 = tree.root_at(size1), tree.root_at(size2)
    proof = tree.consistency_proof(size1, size2)
    verify_consistency(size1, size2, proof, root1, root2)
    target = data.draw(st.integers(-2, len(proof) - 1), label="target")
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == -2:
        root1 = _flip(root1, bit)
    elif target == -1:
        root2 = _flip(root2, bit)
    else:
        proof[target] = _flip(proof[target], bit)
    if target == -1 and size1 == 0 < size2:
        # Every tree extends the empty one: root2 is not constrained by size1 == 0.
        verify_consistency(size1, size2, proof, root1, root2)
        return
    with pytest.raises(ConsistencyProofError):
        verify_consistency(size1, size2, proof, root1, root2)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_valid_proofs_verify(data: st.DataObject) -> None:
    tree = big_tree()
    size = data.draw(st.integers(1, tree.size), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    size1 = data.draw(st.integers(0, size), label="size1")
    root = tree.root_at(size)
    leaf = tree.subtree_hashes([(0, index)])[0]
    proof = tree.inclusion_proof(index, size)
    assert root_from_inclusion_proof(leaf, index, size, proof) == root
    verify_inclusion(leaf, index, size, proof, root)
    verify_consistency(size1, size, tree.consistency_proof(size1, size), tree.root_at(size1), root)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_coordinate_plans_stay_logarithmic(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 1 << 62), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    size1 = data.draw(st.integers(0, size), label="size1")
    for coords in (
        subtree_coords_for_inclusion(index, size),
        subtree_coords_for_consistency(size1, size),
        subtree_coords_for_root(size),
    ):
        assert len(coords) <= _bound(size)
        assert len(set(coords)) == len(coords)
        for level, ix in coords:
            assert (ix + 1) << level <= size
