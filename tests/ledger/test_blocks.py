"""Tests of ledger.blocks: sealing, the chain link checks, and equivocation evidence."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpledger.devtools.workload import Network
from kpledger.ledger.blocks import (
    Block,
    Evidence,
    Header,
    SignedHeader,
    WitnessRef,
    check_link,
    seal,
)
from kpledger.ledger.canonical import Tag, canonical_bytes, parse_canonical, tagged_hash
from kpledger.ledger.crypto import Ed25519Signer, PublicKey
from kpledger.ledger.errors import (
    BlockError,
    EncodingError,
    EquivocationError,
    InvalidData,
    SchemaError,
    SignatureError,
    VersionError,
)
from kpledger.ledger.merkle import EMPTY_ROOT, Frontier, root_of
from kpledger.ledger.records import Kind, Record, make_record
from kpledger.ledger.registry import Params

NET = Network.create()
OTHER = Network.create(seed=1)
NID = NET.network_id
BW = NET.signer("BW")
EU = NET.signer("EU")
PARAMS = NET.registry.params

T0 = "2026-03-02T10:00:00Z"
T1 = "2026-03-02T10:00:05Z"
T2 = "2026-03-02T10:00:10Z"
T3 = "2026-03-02T10:00:15Z"
RECORD_TIME = "2026-03-02T09:00:00Z"

EU_1 = WitnessRef("EU", 1, b"\x11" * 32)
EU_2 = WitnessRef("EU", 2, b"\x22" * 32)
RU_1 = WitnessRef("RU", 1, b"\x33" * 32)


def rec(i: int, chain: str = "BW", *, time: str = RECORD_TIME, network: str = NID) -> Record:
    return make_record(
        network=network,
        chain=chain,
        kind=Kind.PARTY_REGISTER,
        record_id=f"r{i}",
        time=time,
        body={"party": f"{chain}-T{i}", "name": f"Trader {i}", "role": "trader", "address": "x"},
    )


def make(
    prev: Block | None = None,
    records: Sequence[Record] = (),
    *,
    time: str = T1,
    witness: Sequence[WitnessRef] = (),
    signer: Ed25519Signer = BW,
    chain: str = "BW",
    network: str = NID,
    frontier: Frontier | None = None,
) -> tuple[Block, Frontier]:
    if frontier is None:
        frontier = Frontier()
        if prev is not None:
            frontier = frontier_after(prev)
    return seal(
        signer=signer,
        network=network,
        chain=chain,
        prev=None if prev is None else prev.header,
        frontier=frontier,
        records=records,
        time=time,
        witness=witness,
    )


_FRONTIERS: dict[bytes, Frontier] = {}


def frontier_after(block: Block) -> Frontier:
    return _FRONTIERS[block.header.hash].copy()


def chain_of(*specs: dict[str, Any]) -> list[Block]:
    """Blocks of BW sealed one on the other; each spec is keyword arguments of ``make``."""
    blocks: list[Block] = []
    for spec in specs:
        block, frontier = make(blocks[-1] if blocks else None, **spec)
        _FRONTIERS[block.header.hash] = frontier
        blocks.append(block)
    return blocks


def check(
    block: Block,
    prev: Block | None,
    *,
    key: PublicKey = BW.public,
    params: Params = PARAMS,
    frontier: Frontier | None = None,
) -> Frontier:
    if frontier is None:
        frontier = Frontier() if prev is None else frontier_after(prev)
    return check_link(
        block,
        network=NID,
        prev=None if prev is None else prev.header,
        frontier=frontier,
        key=key,
        params=params,
    )


def broken(
    block: Block, prev: Block | None, field: str, match: str | None = None, **kw: Any
) -> BlockError:
    with pytest.raises(BlockError, match=match) as info:
        check(block, prev, **kw)
    assert info.value.field == field, str(info.value)
    return info.value


@pytest.fixture
def two() -> list[Block]:
    return chain_of(
        {"records": [rec(1), rec(2)], "time": T1, "witness": [EU_1]},
        {"records": [rec(3)], "time": T2, "witness": [EU_2]},
    )


# --------------------------------------------------------------------------- happy path


def test_seal_and_check_link(two: list[Block]) -> None:
    b1, b2 = two
    f1 = check(b1, None)
    assert f1 == frontier_after(b1)
    assert b1.header.height == 1
    assert b1.header.prev == bytes.fromhex(NID)
    assert b1.header.size == 2
    assert b1.header.root == root_of([r.leaf for r in b1.records])
    assert b1.header.key_id == BW.public.key_id
    assert b1.header.hash == tagged_hash(Tag.HEADER, b1.header.raw)
    f2 = check(b2, b1)
    assert b2.header.height == 2
    assert b2.header.prev == b1.header.hash
    assert f2.size == 3
    assert b2.header.root == root_of([r.leaf for r in (*b1.records, *b2.records)])
    b1.signed.verify_signature(BW.public)


def test_block_json_round_trip(two: list[Block]) -> None:
    for block in two:
        value = block.to_json()
        again = Block.from_json(value, max_records=10)
        assert again == block
        assert canonical_bytes(again.header.to_json()) == block.header.raw
    with pytest.raises(SchemaError) as info:
        Block.from_json(two[0].to_json(), max_records=1)
    assert info.value.field == "records"


def test_empty_heartbeat_blocks_are_valid(two: list[Block]) -> None:
    (first,) = chain_of({"time": T0})
    assert first.header.size == 0
    assert first.header.root == EMPTY_ROOT
    assert check(first, None).size == 0
    b1, b2 = two
    beat, _ = make(b2, time=T3, witness=[EU_2])
    check(b2, b1)
    after = check(beat, b2)
    assert beat.records == ()
    assert beat.header.size == b2.header.size
    assert beat.header.root == b2.header.root
    assert after == frontier_after(b2)


def test_equal_time_is_allowed(two: list[Block]) -> None:
    b1 = two[0]
    same, _ = make(b1, [rec(3)], time=b1.header.time, witness=[EU_1])
    check(same, b1)


def test_witness_may_grow(two: list[Block]) -> None:
    b1 = two[0]
    for witness in ([EU_1], [EU_2], [EU_1, RU_1], [RU_1, EU_2]):
        block, _ = make(b1, time=T2, witness=witness)
        check(block, b1)


# --------------------------------------------------------------------------- breaks


def test_wrong_network(two: list[Block]) -> None:
    block, _ = make(network=OTHER.network_id)
    broken(block, None, "header.network", "another network")


def test_wrong_chain(two: list[Block]) -> None:
    b1 = two[0]
    block, _ = make(b1, chain="EU", witness=[])
    broken(block, b1, "header.chain", "expected BW")


def test_wrong_height(two: list[Block]) -> None:
    b1, b2 = two
    b3, _ = make(b2, time=T3, witness=[EU_2])
    broken(b3, b1, "header.height", "height 3, expected 2")
    broken(b1, b1, "header.height", "height 1, expected 2")
    broken(b2, None, "header.height", "height 2, expected 1")


def test_wrong_prev(two: list[Block]) -> None:
    b1, _ = two
    (fork1, fork2) = chain_of({"records": [rec(1), rec(2)], "time": T0}, {"time": T2})
    assert fork1.header.hash != b1.header.hash
    broken(fork2, b1, "header.prev", "prev does not match")


def test_time_going_backwards(two: list[Block]) -> None:
    b1 = two[0]
    block, _ = make(b1, time=T0, witness=[EU_1])
    broken(block, b1, "header.time", "before the previous block's")


def test_too_many_records() -> None:
    (block,) = chain_of({"records": [rec(1), rec(2), rec(3)]})
    check(block, None, params=dataclasses.replace(PARAMS, max_block_records=3))
    broken(
        block,
        None,
        "records",
        "3 records; the limit is 2",
        params=dataclasses.replace(PARAMS, max_block_records=2),
    )


def test_too_many_record_bytes() -> None:
    records = [rec(i) for i in range(10)]
    total = sum(len(r.raw) for r in records)
    assert total > 1024
    (block,) = chain_of({"records": records})
    broken(
        block,
        None,
        "records",
        "the limit is 1024",
        params=dataclasses.replace(PARAMS, max_block_bytes=1024),
    )
    check(block, None, params=dataclasses.replace(PARAMS, max_block_bytes=total))


def test_record_of_another_chain() -> None:
    (block,) = chain_of({"records": [rec(1), rec(2, "EU")]})
    broken(block, None, "records[1]", "is for chain EU, not BW")


def test_record_of_another_network() -> None:
    (block,) = chain_of({"records": [rec(1, network=OTHER.network_id)]})
    broken(block, None, "records[0]", "another network")


def test_record_dated_after_its_block() -> None:
    (block,) = chain_of({"records": [rec(1), rec(2, time=T2)], "time": T1})
    broken(block, None, "records[1].time", "after its block's")
    (same,) = chain_of({"records": [rec(1, time=T1)], "time": T1})
    check(same, None)


def test_witness_height_going_back(two: list[Block]) -> None:
    b2 = two[1]
    block, _ = make(b2, time=T3, witness=[EU_1])
    broken(block, b2, "header.witness", "went back from 2 to 1")


def test_witness_dropped(two: list[Block]) -> None:
    b2 = two[1]
    block, _ = make(b2, time=T3, witness=[RU_1])
    broken(block, b2, "header.witness", r"dropped \['EU'\]")


def test_wrong_key_id(two: list[Block]) -> None:
    broken(two[0], None, "header.key_id", "names key", key=EU.public)
    signed_by_eu, _ = make(signer=EU)
    broken(signed_by_eu, None, "header.key_id", key=BW.public)


def test_bad_signature(two: list[Block]) -> None:
    """A signature that does not verify is a SignatureError (the error tree's branch for
    signatures), naming the ``sig`` field."""
    b1 = two[0]
    flipped = bytearray(b1.signed.sig)
    flipped[0] ^= 1
    forged = Block(SignedHeader(b1.header, bytes(flipped)), b1.records)
    with pytest.raises(SignatureError) as info:
        check(forged, None)
    assert info.value.field == "sig"
    # a valid signature by another key over the very same bytes, under BW's key id
    by_eu = EU.sign(Tag.SIG_HEADER, b1.header.raw)
    with pytest.raises(SignatureError):
        check(Block(SignedHeader(b1.header, by_eu), b1.records), None)
    # BW's signature made with another domain tag
    other_tag = BW.sign(Tag.SIG_REGISTRY, b1.header.raw)
    with pytest.raises(SignatureError):
        check(Block(SignedHeader(b1.header, other_tag), b1.records), None)


def test_wrong_size(two: list[Block]) -> None:
    b1 = two[0]
    broken(Block(b1.signed, b1.records[:1]), None, "header.size", "size 2, expected 1")
    broken(Block(b1.signed, (*b1.records, rec(9))), None, "header.size", "expected 3")
    one = Frontier()
    one.append(rec(9).leaf)
    broken(b1, None, "header.size", "expected 3", frontier=one)


def test_wrong_root(two: list[Block]) -> None:
    b1 = two[0]
    broken(Block(b1.signed, (rec(1), rec(9))), None, "header.root", "does not match")
    broken(Block(b1.signed, tuple(reversed(b1.records))), None, "header.root")
    # the right records on top of another log of the same size
    other = Frontier()
    other.append(rec(8).leaf)
    other.append(rec(9).leaf)
    broken(two[1], b1, "header.root", frontier=other)


# --------------------------------------------------------------------------- header parsing


def _header_json(**changes: Any) -> dict[str, Any]:
    (block,) = chain_of({"witness": [EU_1, RU_1]})
    value = block.header.to_json()
    value.update(changes)
    return value


def test_header_witness_must_be_sorted_and_unique() -> None:
    with pytest.raises(SchemaError, match="sorted") as info:
        Header.from_json(_header_json(witness=[RU_1.to_json(), EU_1.to_json()]))
    assert info.value.field == "header.witness"
    with pytest.raises(SchemaError, match="one entry each") as info:
        Header.from_json(_header_json(witness=[EU_1.to_json(), EU_2.to_json()]))
    assert info.value.field == "header.witness"
    with pytest.raises(SchemaError, match="itself") as info:
        Header.from_json(_header_json(witness=[{"chain": "BW", "height": 1, "hash": "00" * 32}]))
    assert info.value.field == "header.witness"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"v": 1}, "header.v"),
        ({"v": 3}, "header.v"),
        ({"height": 0}, "header.height"),
        ({"size": -1}, "header.size"),
        ({"time": "2026-03-02T10:00:00"}, "header.time"),
        ({"chain": "bw"}, "header.chain"),
        ({"extra": 1}, "header"),
    ],
)
def test_header_schema(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SchemaError) as info:
        Header.from_json(_header_json(**change))
    assert info.value.field == field


def test_header_hex_fields() -> None:
    with pytest.raises(EncodingError) as info:
        Header.from_json(_header_json(root="AB" * 32))
    assert info.value.field == "header.root"
    for prev in ("ab" * 31, "ab" * 33):  # a wrong length: schema, short or long
        with pytest.raises(SchemaError) as info:
            Header.from_json(_header_json(prev=prev))
        assert info.value.field == "header.prev"
    with pytest.raises(SchemaError) as info:
        Header.from_json(_header_json(state="ab" * 31))
    assert info.value.field == "header.state"


def test_header_of_format_1_is_refused_by_name() -> None:
    old = _header_json(v=1)
    del old["state"]
    with pytest.raises(VersionError, match="format 1 has no parcel state commitment") as info:
        Header.from_json(old)
    assert info.value.code == "unsupported-version"


class _Checked(dict[str, Any]):
    """A header value ``Header.from_json`` checks field by field (its one-pass check of a
    plain header takes only a ``dict``)."""


def _outcome(value: Any) -> Header | tuple[type[InvalidData], str, str]:
    try:
        return Header.from_json(value)
    except InvalidData as exc:
        return type(exc), str(exc), exc.field


HEADER_VARIANTS: list[dict[str, Any]] = [
    {},
    {"witness": []},
    {"witness": [{"chain": "KP", "height": 3, "hash": "0f" * 32}, RU_1.to_json()]},
    {"v": True},
    {"v": 2.0},
    {"v": "2"},
    {"height": True},
    {"height": 2**53},
    {"height": 2**53 - 1},
    {"size": 0},
    {"size": 2**53},
    {"size": "1"},
    {"chain": "B"},
    {"chain": "ABCDEFGHI"},
    {"chain": "B W"},
    {"chain": " BW"},
    {"chain": "\uff22\uff37"},
    {"chain": 7},
    {"prev": "AB" * 32},
    {"prev": "ab" * 31 + "g0"},
    {"prev": "ab" * 31 + "a\u200b"},
    {"prev": ""},
    {"prev": None},
    {"network": "00" * 32},
    {"key_id": "ab" * 32 + "\n"},
    {"time": "2026-02-30T10:00:00Z"},
    {"time": "2026-03-02T25:00:00Z"},
    {"time": "\uff12026-03-02T10:00:00Z"},
    {"time": "2026-03-02T10:00:00+00:00"},
    {"time": " 2026-03-02T10:00:00Z"},
    {"time": ""},
    {"witness": "EU"},
    {"witness": [{"chain": "EU", "height": 1}]},
    {"witness": [{"chain": "EU", "height": 1, "hash": "00" * 32, "x": 1}]},
    {"witness": [{"chain": "EU", "height": 0, "hash": "00" * 32}]},
    {"witness": [{"chain": "EU", "height": False, "hash": "00" * 32}]},
    {"witness": [{"chain": "eu", "height": 1, "hash": "00" * 32}]},
    {"witness": [{"chain": "EU", "height": 1, "hash": "0" * 63}]},
    {"witness": [["EU", 1, "00" * 32]]},
    {"witness": [RU_1.to_json(), EU_1.to_json()]},
    {"witness": [EU_1.to_json(), EU_1.to_json()]},
    {"witness": [{"chain": "BW", "height": 1, "hash": "00" * 32}]},
    {
        "witness": [
            {"chain": f"A{chr(65 + i // 26)}{chr(65 + i % 26)}", "height": 1, "hash": "00" * 32}
            for i in range(501)
        ]
    },
    {"extra": 1},
]


@pytest.mark.parametrize("change", HEADER_VARIANTS)
def test_header_parsed_in_one_pass_as_field_by_field(change: dict[str, Any]) -> None:
    """A plain header is checked in one pass; whatever the value, the outcome (the header,
    or the error with its message and field) is the field-by-field checks' own."""
    value = _header_json(**change)
    fast = _outcome(value)
    assert fast == _outcome(_Checked(value))
    for name in list(value):  # each field missing
        fewer = {k: v for k, v in value.items() if k != name}
        assert _outcome(fewer) == _outcome(_Checked(fewer))


def test_header_of_a_block_parsed_in_one_pass_has_its_bytes() -> None:
    (block,) = chain_of({"witness": [EU_1, RU_1]})
    value = block.header.to_json()
    header = Header.from_json(value)
    assert header == block.header
    assert header.raw == canonical_bytes(value)
    assert header.hash == tagged_hash(Tag.HEADER, header.raw)


# --------------------------------------------------------------------------- evidence


def _key_for(chain: str, height: int) -> PublicKey:
    return BW.public


@pytest.fixture
def fork(two: list[Block]) -> tuple[Block, Block, Block]:
    """Two different blocks at height 2 on the same block 1, both signed by BW."""
    b1, b2 = two
    other, _ = make(b1, [rec(7)], time=T2, witness=[EU_2])
    assert other.header.height == b2.header.height
    assert other.header.hash != b2.header.hash
    return b1, b2, other


def test_evidence_of_conflicting_headers(fork: tuple[Block, Block, Block]) -> None:
    _, x, y = fork
    evidence = Evidence.build(x.signed, y.signed)
    evidence.verify(_key_for)
    assert evidence.chain == "BW"
    assert evidence.a.header.hash < evidence.b.header.hash
    again = Evidence.from_json(evidence.to_json())
    assert again == evidence
    again.verify(_key_for)


def test_evidence_build_is_order_independent(fork: tuple[Block, Block, Block]) -> None:
    _, x, y = fork
    assert Evidence.build(x.signed, y.signed) == Evidence.build(y.signed, x.signed)
    assert Evidence.build(x.signed, y.signed).id == Evidence.build(y.signed, x.signed).id


def test_evidence_of_same_size_other_root(two: list[Block]) -> None:
    """Heights differ, but both claim a log of 2 records with different contents."""
    b1 = two[0]
    beat, rest = chain_of({"time": T0}, {"records": [rec(5), rec(6)], "time": T1})
    assert beat.header.size == 0
    assert rest.header.size == b1.header.size
    assert rest.header.height != b1.header.height
    Evidence.build(b1.signed, rest.signed).verify(_key_for)


def test_evidence_of_identical_headers_refused(fork: tuple[Block, Block, Block]) -> None:
    _, x, _ = fork
    with pytest.raises(EquivocationError, match="distinct"):
        Evidence.build(x.signed, x.signed).verify(_key_for)
    with pytest.raises(EquivocationError):
        Evidence(x.signed, x.signed).verify(_key_for)


def test_evidence_out_of_order_refused(fork: tuple[Block, Block, Block]) -> None:
    _, x, y = fork
    good = Evidence.build(x.signed, y.signed)
    with pytest.raises(EquivocationError, match="ordered by hash"):
        Evidence(good.b, good.a).verify(_key_for)


def test_evidence_of_different_chains_refused(two: list[Block]) -> None:
    b1 = two[0]
    eu_block, _ = make(signer=EU, chain="EU", records=[rec(1, "EU")], time=T1)
    with pytest.raises(EquivocationError, match="different chains"):
        Evidence.build(b1.signed, eu_block.signed).verify(lambda c, h: NET.signer(c).public)
    other_net, _ = make(network=OTHER.network_id, records=[rec(1)])
    with pytest.raises(EquivocationError, match="different chains"):
        Evidence.build(b1.signed, other_net.signed).verify(_key_for)


def test_evidence_of_consistent_headers_refused(two: list[Block]) -> None:
    b1, b2 = two
    with pytest.raises(EquivocationError, match="do not contradict"):
        Evidence.build(b1.signed, b2.signed).verify(_key_for)
    beat, _ = make(b2, time=T3, witness=[EU_2])
    with pytest.raises(EquivocationError, match="do not contradict"):
        Evidence.build(b2.signed, beat.signed).verify(_key_for)


def test_evidence_with_a_header_signed_by_the_wrong_key_refused(
    fork: tuple[Block, Block, Block],
) -> None:
    b1, x, _ = fork
    by_eu, _ = make(b1, [rec(7)], time=T2, witness=[EU_2], signer=EU)
    with pytest.raises(BlockError) as info:
        Evidence.build(x.signed, by_eu.signed).verify(_key_for)
    assert info.value.field == "header.key_id"
    # the right key id, but the signature is EU's
    forged = SignedHeader(fork[2].header, EU.sign(Tag.SIG_HEADER, fork[2].header.raw))
    with pytest.raises(SignatureError):
        Evidence.build(x.signed, forged).verify(_key_for)
    # checked against a key the chain does not hold at that height
    with pytest.raises(BlockError):
        Evidence.build(x.signed, fork[2].signed).verify(lambda c, h: EU.public)


# --------------------------------------------------------------------------- bit flips

SIGNED = chain_of(
    {"records": [rec(1), rec(2)], "time": T1, "witness": [EU_1, RU_1]},
    {"records": [rec(3)], "time": T2, "witness": [EU_2, RU_1]},
)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _receive_header(raw: bytes, block: Block) -> None:
    """What a node does with header bytes: parse, check the signature, link the block."""
    header = Header.from_json(parse_canonical(raw, what="header"))
    signed = SignedHeader(header, block.signed.sig)
    signed.verify_signature(BW.public)
    check(Block(signed, block.records), None if header.height == 1 else SIGNED[0])


def _receive_evidence(data: bytes) -> None:
    Evidence.from_json(parse_canonical(data, what="evidence")).verify(_key_for)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SIGNED), st.data())
def test_bit_flip_in_header_bytes_fails(block: Block, data: st.DataObject) -> None:
    raw = block.header.raw
    bit = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    with pytest.raises(InvalidData):
        _receive_header(_flip(raw, bit), block)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SIGNED), st.integers(0, 64 * 8 - 1))
def test_bit_flip_in_signature_fails(block: Block, bit: int) -> None:
    signed = SignedHeader(block.header, _flip(block.signed.sig, bit))
    with pytest.raises(SignatureError):
        signed.verify_signature(BW.public)
    prev = None if block.header.height == 1 else SIGNED[0]
    with pytest.raises(SignatureError):
        check(Block(signed, block.records), prev)


_FORK_B, _ = make(SIGNED[0], [rec(7)], time=T2, witness=[EU_2, RU_1])
EVIDENCE = canonical_bytes(Evidence.build(SIGNED[1].signed, _FORK_B.signed).to_json())


def test_evidence_sample_is_valid() -> None:
    Evidence.from_json(parse_canonical(EVIDENCE)).verify(_key_for)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(EVIDENCE) * 8 - 1))
def test_bit_flip_in_evidence_fails(bit: int) -> None:
    with pytest.raises(InvalidData):
        _receive_evidence(_flip(EVIDENCE, bit))
