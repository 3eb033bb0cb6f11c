"""Tests of ledger.canonical: RFC 8785 vectors, strict parsing, hex, round trips."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from kpledger.cli.example import run_example
from kpledger.devtools import artisanal
from kpledger.devtools.realistic import realistic_blocks
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.canonical import (
    _NOT_CANONICAL,
    Tag,
    _decode_canonical,
    _load_strict,
    canonical_bytes,
    from_hex,
    load_json,
    load_stored,
    parse_canonical,
    sha256,
    tagged_hash,
    to_hex,
)
from kpledger.ledger.errors import EncodingError, InvalidData, SchemaError
from kpledger.ledger.records import Record
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t

# --------------------------------------------------------------------------- vectors

REPO = Path(__file__).parents[2]
VECTORS = Path(os.environ.get("KPL_VECTORS") or REPO / ".." / "shared" / "vectors")
JCS = VECTORS / "jcs"
MISSING = (
    f"external vectors not found: {JCS} does not exist "
    f"(set KPL_VECTORS to the vectors folder; default <repo>/../shared/vectors)"
)
#: cyberphone/json-canonicalization ships 6 cases; a floor, so a lost file is noticed.
MIN_JCS_FILES = 6


def _jcs_inputs() -> list[Path]:
    return sorted((JCS / "input").glob("*.json")) if JCS.is_dir() else []


@pytest.mark.vectors
def test_jcs_vector_folder_is_complete() -> None:
    if not JCS.is_dir():
        pytest.skip(MISSING)
    inputs = _jcs_inputs()
    assert len(inputs) >= MIN_JCS_FILES, f"only {len(inputs)} input files in {JCS / 'input'}"
    for path in inputs:
        assert (JCS / "output" / path.name).is_file(), f"no output for {path.name}"


@pytest.mark.vectors
@pytest.mark.parametrize("name", [p.name for p in _jcs_inputs()] or ["<missing>"])
def test_jcs_vector(name: str) -> None:
    if not JCS.is_dir():
        pytest.skip(MISSING)
    source = (JCS / "input" / name).read_bytes()
    expected = (JCS / "output" / name).read_bytes()
    assert canonical_bytes(json.loads(source)) == expected


# --------------------------------------------------------------------------- canonical_bytes


def test_canonical_bytes_sorts_keys_and_drops_spaces() -> None:
    value = {"b": [1, {"d": True, "c": None}], "a": "é"}
    assert canonical_bytes(value) == '{"a":"é","b":[1,{"c":null,"d":true}]}'.encode()


def test_canonical_bytes_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(EncodingError):
        canonical_bytes({"a": {1, 2}})
    with pytest.raises(EncodingError):
        canonical_bytes(float("nan"))
    with pytest.raises(EncodingError, match="safe integer"):
        canonical_bytes(2**53 + 1)


# --------------------------------------------------------------------------- parse_canonical


def test_parse_canonical_accepts_canonical_bytes() -> None:
    data = b'{"a":[1,-2,"x"],"b":{"c":null,"d":false}}'
    assert parse_canonical(data) == {"a": [1, -2, "x"], "b": {"c": None, "d": False}}


@pytest.mark.parametrize(
    "data",
    [b'{"w":1.5}', b"[0.0]", b"1e5", b"1E5", b'{"w":10.0}', b"-0.5"],
    ids=["fraction", "zero-float", "exponent", "upper-exponent", "integral-float", "negative"],
)
def test_parse_canonical_refuses_floats(data: bytes) -> None:
    with pytest.raises(EncodingError, match="floats are not allowed"):
        parse_canonical(data, what="record")


def test_parse_canonical_refuses_duplicate_keys() -> None:
    with pytest.raises(EncodingError, match="duplicate key 'a'") as info:
        parse_canonical(b'{"a":1,"a":1}', what="record")
    assert "record" in str(info.value)
    with pytest.raises(EncodingError, match="duplicate key"):
        parse_canonical(b'{"x":{"a":1,"a":2}}')


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1}',
        b'{ "a":1}',
        b'{"a":1}\n',
        b' {"a":1}',
        b'{"b":1,"a":2}',
        b"[1, 2]",
        b'"\\u00e9"',
        b'"\\/"',
        b"-0",
        b"01",
    ],
    ids=[
        "space-after-colon",
        "space-after-brace",
        "trailing-newline",
        "leading-space",
        "key-order",
        "space-in-list",
        "needless-escape",
        "escaped-solidus",
        "negative-zero",
        "leading-zero",
    ],
)
def test_parse_canonical_refuses_non_canonical_bytes(data: bytes) -> None:
    with pytest.raises(EncodingError):
        parse_canonical(data, what="header")


def test_non_canonical_error_names_what() -> None:
    with pytest.raises(EncodingError, match="header: bytes are not in RFC 8785 canonical form"):
        parse_canonical(b'{"a": 1}', what="header")


@pytest.mark.parametrize(
    "data",
    [b'"\xff"', b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"\xe2\x82"', b'"\\ud800"'],
    ids=["0xff", "overlong", "utf8-surrogate", "truncated", "escaped-lone-surrogate"],
)
def test_parse_canonical_refuses_invalid_utf8(data: bytes) -> None:
    with pytest.raises(EncodingError):
        parse_canonical(data)


@pytest.mark.parametrize("data", [b"NaN", b"[Infinity]", b'{"a":-Infinity}'])
def test_parse_canonical_refuses_nan_and_infinity(data: bytes) -> None:
    with pytest.raises(EncodingError, match="is not JSON"):
        parse_canonical(data)


@pytest.mark.parametrize("data", [b"", b"{", b"[1,]", b"{'a':1}", b"nul", b"[1]]"])
def test_parse_canonical_refuses_garbage(data: bytes) -> None:
    with pytest.raises(EncodingError, match="not valid JSON"):
        parse_canonical(data)


def test_parse_canonical_refuses_unsafe_integers() -> None:
    assert parse_canonical(b"9007199254740991") == 2**53 - 1
    with pytest.raises(EncodingError):
        parse_canonical(b"9007199254740993")


def test_parse_canonical_refuses_deep_nesting_without_crashing() -> None:
    with pytest.raises(EncodingError):
        parse_canonical(b"[" * 100_000 + b"]" * 100_000)


def test_encoding_error_is_invalid_data() -> None:
    with pytest.raises(InvalidData):
        parse_canonical(b"{")
    with pytest.raises(ValueError):
        parse_canonical(b"{")


# --------------------------------------------------------------------------- hex


def test_hex_round_trip() -> None:
    raw = bytes(range(256))
    assert to_hex(raw) == raw.hex()
    assert from_hex(to_hex(raw), field="x") == raw
    assert from_hex("", field="x") == b""
    assert from_hex("00ff", field="x", size=2) == b"\x00\xff"


@pytest.mark.parametrize(
    "text",
    ["AB", "aB", "abc", "0", "0x00", "ab\n", " ab", "zz", "ab cd", "\u0661\u0662", "ab\t"],
    ids=[
        "upper",
        "mixed-case",
        "odd-3",
        "odd-1",
        "prefix",
        "newline",
        "space",
        "not-hex",
        "inner-space",
        "arabic-indic-digits",
        "tab",
    ],
)
def test_from_hex_refuses_malformed_digits(text: object) -> None:
    with pytest.raises(EncodingError, match="lower-case hex") as info:
        from_hex(text, field="header.root")
    assert info.value.field == "header.root"


@pytest.mark.parametrize("text", [12, None, b"ab", ["ab"]], ids=["int", "none", "bytes", "list"])
def test_from_hex_refuses_a_value_that_is_no_string_as_schema(text: object) -> None:
    with pytest.raises(SchemaError, match="expected a string of lower-case hex") as info:
        from_hex(text, field="header.root", size=32)
    assert info.value.field == "header.root"


@pytest.mark.parametrize(
    "text",
    ["ab" * 31, "ab" * 33, "ab" * 32 + "a", "", "AB" * 31, "zz" * 33],
    ids=["short", "long", "odd", "empty", "short-upper", "long-not-hex"],
)
def test_from_hex_refuses_a_wrong_length_as_schema_whatever_its_digits(text: str) -> None:
    """docs/spec/bundle.md section 1: the length of a binary field is its schema, so a
    wrong length is `schema` before its digits are looked at, short or long alike."""
    want = rf"expected 64 hex digits \(32 bytes\), got {len(text)}\Z"
    with pytest.raises(SchemaError, match=want) as info:
        from_hex(text, field="hash", size=32)
    assert info.value.field == "hash"
    assert info.value.code == "schema"


def test_from_hex_of_the_right_length_with_a_bad_digit_is_encoding() -> None:
    with pytest.raises(EncodingError) as info:
        from_hex("ab" * 31 + "aZ", field="hash", size=32)
    assert info.value.code == "encoding"


# --------------------------------------------------------------------------- hashes


def test_tags_are_distinct_and_prefix_free() -> None:
    values = [t.value for t in Tag]
    for a in values:
        for b in values:
            if a is not b:
                assert not b.startswith(a), (a, b)


def test_tagged_hash_separates_domains() -> None:
    data = b'{"a":1}'
    hashes = {tagged_hash(tag, data) for tag in Tag}
    assert len(hashes) == len(Tag)
    assert tagged_hash(Tag.LEAF, data) == sha256(b"\x00" + data)


# --------------------------------------------------------------------------- properties

SAFE = 2**53 - 1
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-SAFE, SAFE) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_round_trip(value: Any) -> None:
    data = canonical_bytes(value)
    assert parse_canonical(data) == value
    assert canonical_bytes(parse_canonical(data)) == data


#: any JSON value, with unbounded integers and any code point (lone surrogates too)
wild_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(st.characters(codec=None, exclude_categories=()), max_size=12),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.text(st.characters(codec=None, exclude_categories=()), max_size=6),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None)
@given(wild_values)
def test_canonical_bytes_agrees_with_the_reference_implementation(value: Any) -> None:
    """The fast path (msgspec) and ``rfc8785.dumps`` give the same bytes, or both refuse."""
    try:
        want = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        with pytest.raises(EncodingError):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == want


@pytest.mark.parametrize(
    "text",
    ["\x00\x1f\x7f", "\b\f\n\r\t", "\u2028\u2029", '"\\/', "\ufeff", "é\U0001f48e"],
    ids=["controls", "short-escapes", "separators", "quote-backslash-solidus", "bom", "astral"],
)
def test_string_escapes_agree_with_the_reference(text: str) -> None:
    value = {"s": text, "k": [text]}
    assert canonical_bytes(value) == rfc8785.dumps(value)
    assert parse_canonical(canonical_bytes(value)) == value


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.integers(-SAFE, SAFE), min_size=2, max_size=6))
def test_any_other_key_order_is_refused(value: dict[str, int]) -> None:
    data = canonical_bytes(value)
    shuffled = json.dumps(dict(reversed(list(value.items()))), separators=(",", ":"))
    shuffled_bytes = shuffled.encode()
    if shuffled_bytes != data:
        with pytest.raises(EncodingError):
            parse_canonical(shuffled_bytes)


# --------------------------------------------------------------------------- fast path


@settings(max_examples=300, deadline=None)
@given(wild_values)
def test_fast_decoding_agrees_with_the_strict_decoder(value: Any) -> None:
    """What msgspec's fast path accepts, the strict decoder accepts with the same value;
    what the strict decoder refuses, ``load_json`` and ``parse_canonical`` still refuse."""
    try:
        data = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        return
    fast = _decode_canonical(data)
    try:
        strict = _load_strict(data, "document")
    except EncodingError:
        assert fast is _NOT_CANONICAL
        with pytest.raises(EncodingError):
            load_json(data)
        return
    assert load_json(data) == strict
    assert fast is _NOT_CANONICAL or fast == strict


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdef"), st.integers(-SAFE, SAFE), min_size=1))
def test_fast_path_refuses_every_duplicated_key(value: dict[str, int]) -> None:
    """A document with a key written twice, otherwise canonical, is refused on both entries."""
    data = canonical_bytes(value)
    first = next(iter(sorted(value)))
    doubled = data[:1] + canonical_bytes({first: value[first]})[1:-1] + b"," + data[1:]
    assert _decode_canonical(doubled) is _NOT_CANONICAL
    with pytest.raises(EncodingError, match="duplicate key"):
        load_json(doubled)
    with pytest.raises(EncodingError, match="duplicate key"):
        parse_canonical(doubled, what="record")


@pytest.mark.parametrize(
    "data",
    [b'{"a":1,"a":1}', b'{"a":{"b":1,"b":1}}', b'[{"a":1,"a":2}]'],
    ids=["top", "nested", "in-list"],
)
def test_load_json_refuses_duplicate_keys_in_canonical_looking_bytes(data: bytes) -> None:
    with pytest.raises(EncodingError, match=r"block: duplicate key '[ab]'"):
        load_json(data, what="block")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"[1.5]", "floats are not allowed"),
        (b"[9007199254740992]", "outside"),
        (b'{"a":90071992547409920}', "17 digits"),
        (b"[1,-9007199254740992]", "outside"),
        (b"[1e3]", "floats are not allowed"),
        (b'["\\ud800"]', None),
    ],
    ids=["float", "past-2^53", "member-past-2^53", "negative", "exponent", "lone-surrogate"],
)
def test_fast_path_leaves_what_it_cannot_vouch_for_to_the_strict_decoder(
    data: bytes, match: str | None
) -> None:
    assert _decode_canonical(data) is _NOT_CANONICAL
    if match is None:
        assert load_json(data) == ["\ud800"]  # the strict decoder reads it; schemas refuse it
    else:
        with pytest.raises(EncodingError, match=match):
            load_json(data)


def test_long_digit_runs_inside_strings_are_read_as_strings() -> None:
    data = b'{"id":"x:12345678901234567890","n":[1234567890123456]}'
    assert load_json(data) == {"id": "x:12345678901234567890", "n": [1234567890123456]}
    assert parse_canonical(data) == load_json(data)


def test_every_record_of_the_stories_and_the_bench_workload_is_byte_identical(
    tmp_path: Path,
) -> None:
    """msgspec's canonical bytes equal the RFC 8785 reference's on every record, header and
    block of the example story, the artisanal story and the ingest benchmark's workload."""
    _, blocks = realistic_blocks(600, block_records=50)
    docs: list[bytes] = [canonical_bytes(b.to_json()) for b in blocks]
    docs += [b.header.raw for b in blocks] + [r.raw for b in blocks for r in b.records]
    artisan = Network.create(("SL", "EU", "BW"), ("WDC",))
    scenario = Scenario(artisan)
    store = Store.open(f"sqlite:///{tmp_path / 'sl.db'}", artisan.registry)
    try:

        def seal(chain: str, *records: Record) -> None:
            store.writer.apply(scenario.seal(chain, *records))

        artisanal.sierra_leone(scenario, seal)
        with store.engine.connect() as conn:
            docs += [row.raw for row in conn.execute(select(t.records.c.raw))]
    finally:
        store.close()
    example = run_example(f"sqlite:///{tmp_path / 'example.db'}")
    try:
        with example.store.engine.connect() as conn:
            docs += [row.raw for row in conn.execute(select(t.records.c.raw))]
            docs += [row.header for row in conn.execute(select(t.headers.c.header))]
    finally:
        example.store.close()
    assert len(docs) > 700, len(docs)
    for data in docs:
        value = json.loads(data)
        assert rfc8785.dumps(value) == data
        assert canonical_bytes(value) == data
        assert canonical_bytes(value, checked=True) == data
        assert _decode_canonical(data) == value
        assert parse_canonical(data) == value


def test_load_stored_decodes_what_load_json_accepted() -> None:
    doc = {"kind": "parcel.register", "body": {"w": 2**53 - 1, "n": "Zürich \u2028"}, "l": [1, []]}
    raw = canonical_bytes(doc)
    assert load_stored(raw) == load_json(raw) == doc
    with pytest.raises(ValueError, match="float"):
        load_stored(b'{"w":1.5}')
