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

from kpledger.ledger.canonical import (
    Tag,
    canonical_bytes,
    from_hex,
    parse_canonical,
    sha256,
    tagged_hash,
    to_hex,
)
from kpledger.ledger.errors import EncodingError, InvalidData, SchemaError

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
    ["AB", "aB", "abc", "0", "0x00", "ab\n", " ab", "zz", "ab cd"],
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
    """The fast path (``json.dumps``) and ``rfc8785.dumps`` give the same bytes, or both refuse."""
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
