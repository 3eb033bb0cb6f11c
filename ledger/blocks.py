"""Blocks: signed checkpoints of one chain's Merkle log.

A header is the RFC 8785 form of::

    {"v": 2, "network": <hex>, "chain": "BW", "height": 7, "prev": <hex>,
     "size": 1234, "root": <hex>, "state": <hex>,
     "time": "2026-03-01T10:00:05Z",
     "witness": [{"chain": "EU", "height": 12, "hash": <hex>}, ...],
     "key_id": <hex>}

``prev`` is the hash of the previous header (the network id for height 1),
``size`` and ``root`` are the RFC 9162 size and root of the chain's log after
the block, ``state`` the root of the chain's parcel state tree after it
(``ledger.statetree``: each parcel its records acted on, with the latest of
them and their count; a header of format 1 has none and is refused),
``witness`` names (by height and hash) the heads of other chains that the
authority had verified when it sealed the block, sorted by chain.
A header's hash is ``SHA-256("KPL-HEADER-V1\\n" || header bytes)``; the
authority signs ``"KPL-SIG-HEADER-V1\\n" || header bytes``.

A block on the wire is ``{"header": {...}, "sig": <hex>, "records": [...]}``;
an empty ``records`` list is a heartbeat that moves the chain's time on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kpledger.ledger.canonical import Tag, canonical_bytes, from_hex, parse_canonical, tagged_hash
from kpledger.ledger.crypto import PublicKey, Signer
from kpledger.ledger.errors import BlockError, EquivocationError, SchemaError, VersionError
from kpledger.ledger.merkle import Frontier, NewNode
from kpledger.ledger.records import MAX_INDEX, Record
from kpledger.ledger.registry import Params
from kpledger.ledger.schema import CODE, Fields, parse_time
from kpledger.ledger.statetree import EMPTY

__all__ = [
    "Block",
    "Evidence",
    "HEADER_VERSION",
    "Header",
    "SignedHeader",
    "WitnessRef",
    "check_link",
    "seal",
]

MAX_WITNESS = 500
#: the header format: 2 added ``state`` (the parcel state commitment)
HEADER_VERSION = 2

#: the fields of a header, and of one of its witnesses
_HEADER_FIELDS = frozenset(
    (
        "v",
        "network",
        "chain",
        "height",
        "prev",
        "size",
        "root",
        "state",
        "time",
        "witness",
        "key_id",
    )
)
_WITNESS_FIELDS = frozenset(("chain", "height", "hash"))
#: values that pass ``Fields``' checks of their field (and ``from_hex``'s) as they are: a
#: value these do not match takes the checks that name what is wrong
_HEX32 = re.compile(r"[0-9a-f]{64}")
_CODE_PLAIN = re.compile(r"[A-Z]{2,8}")
_TIME_PLAIN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


@dataclass(frozen=True, order=True)
class WitnessRef:
    chain: str
    height: int
    hash: bytes

    def to_json(self) -> dict[str, Any]:
        return {"chain": self.chain, "height": self.height, "hash": self.hash.hex()}


@dataclass(frozen=True)
class Header:
    network: str
    chain: str
    height: int
    prev: bytes
    size: int
    root: bytes
    state: bytes
    time: str
    witness: tuple[WitnessRef, ...]
    key_id: str
    raw: bytes
    hash: bytes

    @classmethod
    def from_json(cls, value: object, path: str = "header") -> Header:
        plain = _plain_header(value)
        if plain is not None:
            return plain
        f = Fields(value, path)
        version = value.get("v") if isinstance(value, Mapping) else None
        if version != HEADER_VERSION and isinstance(version, int) and not isinstance(version, bool):
            raise VersionError(
                f"header format {version}: this network writes and reads format "
                f"{HEADER_VERSION} (format 1 has no parcel state commitment)",
                version=version,
                field=f.path("v"),
            )
        f.integer("v", low=HEADER_VERSION, high=HEADER_VERSION)
        network = from_hex(f.string("network", max_len=64), field=f.path("network"), size=32)
        chain = f.string("chain", pattern=CODE, max_len=8)
        height = f.integer("height", low=1, high=MAX_INDEX)
        prev = from_hex(f.string("prev", max_len=64), field=f.path("prev"), size=32)
        size = f.integer("size", low=0, high=MAX_INDEX)
        root = from_hex(f.string("root", max_len=64), field=f.path("root"), size=32)
        state = from_hex(f.string("state", max_len=64), field=f.path("state"), size=32)
        time = f.time("time")
        witness: list[WitnessRef] = []
        for wpath, item in f.items("witness", low=0, high=MAX_WITNESS):
            w = Fields(item, wpath)
            witness.append(
                WitnessRef(
                    w.string("chain", pattern=CODE, max_len=8),
                    w.integer("height", low=1, high=MAX_INDEX),
                    from_hex(w.string("hash", max_len=64), field=w.path("hash"), size=32),
                )
            )
            w.done()
        chains = [w.chain for w in witness]
        if chains != sorted(set(chains)):
            raise SchemaError(
                "witness must be sorted by chain, one entry each", field=f.path("witness")
            )
        if chain in chains:
            raise SchemaError("a chain does not witness itself", field=f.path("witness"))
        key_id = from_hex(f.string("key_id", max_len=64), field=f.path("key_id"), size=32).hex()
        f.done()
        raw = canonical_bytes(value)
        return cls(
            network.hex(),
            chain,
            height,
            prev,
            size,
            root,
            state,
            time,
            tuple(witness),
            key_id,
            raw,
            tagged_hash(Tag.HEADER, raw),
        )

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = parse_canonical(self.raw)
        return value


def _index(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_INDEX


def _plain_header(value: object) -> Header | None:
    """``Header.from_json`` of a well-formed header, checked in one pass (None for anything
    else, which ``from_json`` then checks field by field to name what is wrong).

    A header is parsed for every block received and every header of a bundle; this
    accepts exactly what the field-by-field checks accept, but only values plain
    enough to see that at once: exact field sets, hex of 32 bytes, codes of capitals,
    integers in range, a time of digits.
    """
    if type(value) is not dict or value.keys() != _HEADER_FIELDS:
        return None
    v = value
    chain, height, size, time, witness = v["chain"], v["height"], v["size"], v["time"], v["witness"]
    hexes = (v["network"], v["prev"], v["root"], v["state"], v["key_id"])
    if not (
        type(v["v"]) is int
        and v["v"] == HEADER_VERSION
        and all(type(h) is str and _HEX32.fullmatch(h) for h in hexes)
        and type(chain) is str
        and _CODE_PLAIN.fullmatch(chain)
        and _index(height)
        and height >= 1
        and _index(size)
        and type(time) is str
        and _TIME_PLAIN.fullmatch(time)
        and type(witness) is list
        and len(witness) <= MAX_WITNESS
    ):
        return None
    refs = _plain_witness(witness)
    if refs is None or chain in (w.chain for w in refs):
        return None
    try:
        parse_time(time, field="time")
    except SchemaError:
        return None
    network, prev, root, state, key_id = hexes
    raw = canonical_bytes(value, checked=True)  # the checks above are the shape it needs
    return Header(
        network,
        chain,
        height,
        bytes.fromhex(prev),
        size,
        bytes.fromhex(root),
        bytes.fromhex(state),
        time,
        refs,
        key_id,
        raw,
        tagged_hash(Tag.HEADER, raw),
    )


def _plain_witness(witness: list[Any]) -> tuple[WitnessRef, ...] | None:
    """``_plain_header``'s witness list: plain entries, sorted by chain, one each (or None)."""
    refs: list[WitnessRef] = []
    for w in witness:
        if type(w) is not dict or w.keys() != _WITNESS_FIELDS:
            return None
        wc, wh, wd = w["chain"], w["height"], w["hash"]
        if not (
            type(wc) is str
            and _CODE_PLAIN.fullmatch(wc)
            and _index(wh)
            and wh >= 1
            and type(wd) is str
            and _HEX32.fullmatch(wd)
            and (not refs or refs[-1].chain < wc)
        ):
            return None
        refs.append(WitnessRef(wc, wh, bytes.fromhex(wd)))
    return tuple(refs)


@dataclass(frozen=True)
class SignedHeader:
    header: Header
    sig: bytes

    @classmethod
    def from_json(cls, value: object, path: str = "") -> SignedHeader:
        f = Fields(value, path)
        header = Header.from_json(f.mapping("header"), f.path("header"))
        sig = from_hex(f.string("sig", max_len=128), field=f.path("sig"), size=64)
        f.done()
        return cls(header, sig)

    def to_json(self) -> dict[str, Any]:
        return {"header": self.header.to_json(), "sig": self.sig.hex()}

    def verify_signature(self, key: PublicKey) -> None:
        if key.key_id != self.header.key_id:
            raise BlockError(
                f"{self.header.chain}/{self.header.height} names key {self.header.key_id[:16]}"
                f" but the chain's key at that height is {key.key_id[:16]}",
                field="header.key_id",
            )
        key.verify(Tag.SIG_HEADER, self.header.raw, self.sig, field="sig")


@dataclass(frozen=True)
class Block:
    signed: SignedHeader
    records: tuple[Record, ...]

    @property
    def header(self) -> Header:
        return self.signed.header

    @classmethod
    def from_json(cls, value: object, *, max_records: int, path: str = "") -> Block:
        """Parse a block received from anyone; every record is schema-checked."""
        f = Fields(value, path)
        signed = SignedHeader.from_json(
            {"header": f.mapping("header"), "sig": f.string("sig", max_len=128)}, path
        )
        records = tuple(
            Record.from_value(item) for _, item in f.items("records", low=0, high=max_records)
        )
        f.done()
        return cls(signed, records)

    def to_json(self) -> dict[str, Any]:
        return {**self.signed.to_json(), "records": [r.as_json() for r in self.records]}


def seal(  # noqa: PLR0913 - every field of a header is an argument
    *,
    signer: Signer,
    network: str,
    chain: str,
    prev: Header | None,
    frontier: Frontier,
    records: Sequence[Record],
    time: str,
    witness: Sequence[WitnessRef],
    state: bytes | None = None,
) -> tuple[Block, Frontier]:
    """Make and sign the next block; returns it with the log's new frontier.

    ``state`` is the root of the chain's parcel state tree after ``records``
    (``ledger.chain.state_after``); None keeps the previous header's (or the
    empty tree's at height 1), which is right only when no record acts on a parcel.
    """
    if state is None:
        state = EMPTY if prev is None else prev.state
    new = frontier.copy()
    for record in records:
        new.append(record.leaf)
    header = {
        "v": HEADER_VERSION,
        "network": network,
        "chain": chain,
        "height": 1 if prev is None else prev.height + 1,
        "prev": network if prev is None else prev.hash.hex(),
        "size": new.size,
        "root": new.root().hex(),
        "state": state.hex(),
        "time": time,
        "witness": [w.to_json() for w in sorted(witness)],
        "key_id": signer.public.key_id,
    }
    parsed = Header.from_json(header)
    sig = signer.sign(Tag.SIG_HEADER, parsed.raw)
    return Block(SignedHeader(parsed, sig), tuple(records)), new


def check_link(  # noqa: PLR0912 - split after the node-time rules being merged land here
    block: Block,
    *,
    network: str,
    prev: Header | None,
    frontier: Frontier,
    key: PublicKey,
    params: Params,
    nodes: list[NewNode] | None = None,
) -> Frontier:
    """Check everything about a block that its own chain decides; return the new frontier.

    The steps, cheapest first: network, chain, height and ``prev`` link, time
    order, limits, records' network and chain, signature, then size and root.
    Witness heights may never go backwards along a chain. Record rules
    (custody) are checked separately against the state. ``nodes``, when given,
    receives every complete Merkle node above the leaves that the records add
    (level >= 1, as ``Frontier.append`` makes them): what a store writes.
    """
    h = block.header
    # 1. the right network and chain, the next height, linked to the previous header
    if h.network != network:
        raise BlockError("header belongs to another network", field="header.network")
    if prev is not None and h.chain != prev.chain:
        raise BlockError(
            f"header is for chain {h.chain}, expected {prev.chain}", field="header.chain"
        )
    want_height = 1 if prev is None else prev.height + 1
    if h.height != want_height:
        raise BlockError(f"height {h.height}, expected {want_height}", field="header.height")
    want_prev = bytes.fromhex(network) if prev is None else prev.hash
    if h.prev != want_prev:
        raise BlockError("prev does not match the previous header's hash", field="header.prev")
    # 2. time never goes backwards on a chain
    if prev is not None and h.time < prev.time:
        raise BlockError(
            f"time {h.time} is before the previous block's {prev.time}", field="header.time"
        )
    # 3. limits
    if len(block.records) > params.max_block_records:
        raise BlockError(
            f"{len(block.records)} records; the limit is {params.max_block_records}",
            field="records",
        )
    total = sum(len(r.raw) for r in block.records)
    if total > params.max_block_bytes:
        raise BlockError(
            f"{total} record bytes; the limit is {params.max_block_bytes}", field="records"
        )
    for i, r in enumerate(block.records):
        if r.network != network or r.chain != h.chain:
            raise BlockError(
                f"record {r.id} belongs to {r.chain} on another network"
                if r.network != network
                else f"record {r.id} is for chain {r.chain}, not {h.chain}",
                field=f"records[{i}]",
            )
        if r.time > h.time:
            raise BlockError(
                f"record {r.id} is dated {r.time}, after its block's {h.time}",
                field=f"records[{i}].time",
            )
    # 4. witness heights never go backwards
    if prev is not None:
        before = {w.chain: w.height for w in prev.witness}
        for w in h.witness:
            if w.height < before.get(w.chain, 0):
                raise BlockError(
                    f"witness of {w.chain} went back from {before[w.chain]} to {w.height}",
                    field="header.witness",
                )
        dropped = set(before) - {w.chain for w in h.witness}
        if dropped:
            raise BlockError(f"witness dropped {sorted(dropped)}", field="header.witness")
    # 5. the authority's signature
    block.signed.verify_signature(key)
    # 6. the log: size and root after appending the records
    if h.size != frontier.size + len(block.records):
        raise BlockError(
            f"size {h.size}, expected {frontier.size + len(block.records)}", field="header.size"
        )
    new = frontier.copy()
    for r in block.records:
        made = new.append(r.leaf)
        if nodes is not None and len(made) > 1:
            nodes.extend(made[1:])
    root = new.root()
    if root != h.root:
        raise BlockError(
            f"root {h.root.hex()} does not match the records' root {root.hex()}",
            field="header.root",
        )
    return new


@dataclass(frozen=True)
class Evidence:
    """Two validly signed headers of one chain that cannot both be true.

    Either they share a height but differ, or they claim the same log size
    with different roots. Self-verifying given the chain's keys.
    """

    a: SignedHeader
    b: SignedHeader

    @classmethod
    def build(cls, x: SignedHeader, y: SignedHeader) -> Evidence:
        """Order the pair canonically (by header hash) so every node builds the same document."""
        a, b = sorted((x, y), key=lambda s: s.header.hash)
        return cls(a, b)

    @classmethod
    def from_json(cls, value: object, path: str = "") -> Evidence:
        f = Fields(value, path)
        f.integer("v", low=1, high=1)
        a = SignedHeader.from_json(f.mapping("a"), f.path("a"))
        b = SignedHeader.from_json(f.mapping("b"), f.path("b"))
        f.done()
        return cls(a, b)

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, "a": self.a.to_json(), "b": self.b.to_json()}

    @property
    def chain(self) -> str:
        return self.a.header.chain

    @property
    def id(self) -> str:
        return tagged_hash(Tag.EVIDENCE, canonical_bytes(self.to_json())).hex()

    def verify(self, key_for: Callable[[str, int], PublicKey]) -> None:
        """Raise unless this is proof that the chain's authority signed two histories.

        ``key_for(chain, height)`` gives the chain's key at a height (from the
        registry and the key history).
        """
        x, y = self.a.header, self.b.header
        if x.network != y.network or x.chain != y.chain:
            raise EquivocationError("the headers are of different chains")
        if x.hash >= y.hash:
            raise EquivocationError("headers must be distinct and ordered by hash")
        same_height = x.height == y.height
        same_size_other_root = x.size == y.size and x.root != y.root
        if not (same_height or same_size_other_root):
            raise EquivocationError("the headers do not contradict each other")
        self.a.verify_signature(key_for(x.chain, x.height))
        self.b.verify_signature(key_for(y.chain, y.height))
