"""Canonical bytes and domain-separated hashes.

``canonical_bytes`` is the only function in kpledger that turns a value into
bytes that are hashed or signed. It implements RFC 8785 (JSON Canonicalization
Scheme): documents of the shape kpledger signs are encoded by msgspec with
sorted keys (the same bytes, checked against the RFC 8785 vectors and the
reference encoder in the tests), anything else by the ``rfc8785`` reference
package. Signed documents hold no floats:
``parse_canonical`` refuses them, and refuses any input that is not already in
canonical form, so that the bytes a node stores are exactly the bytes that
were hashed and signed (they are never re-serialised to be verified).

Binary values travel as lower-case hex everywhere (hashes, keys, signatures).
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import Enum
from typing import Any

import msgspec
import rfc8785

from kpledger.ledger.errors import EncodingError, SchemaError

__all__ = [
    "Tag",
    "canonical_bytes",
    "from_hex",
    "load_json",
    "load_stored",
    "parse_canonical",
    "sha256",
    "strict_decoder",
    "tagged_hash",
    "to_hex",
]


class Tag(bytes, Enum):
    """Domain-separation prefixes: no byte string means two things.

    RFC 9162 uses 0x00 for leaves and 0x01 for interior nodes; every other tag
    starts with ``KPL`` (0x4b) so it can never collide with those.
    """

    LEAF = b"\x00"
    NODE = b"\x01"
    HEADER = b"KPL-HEADER-V1\n"
    REGISTRY = b"KPL-REGISTRY-V1\n"
    EVIDENCE = b"KPL-EVIDENCE-V1\n"
    SIG_HEADER = b"KPL-SIG-HEADER-V1\n"
    SIG_REGISTRY = b"KPL-SIG-REGISTRY-V1\n"
    SIG_RECORD = b"KPL-SIG-RECORD-V1\n"
    STATE_KEY = b"KPL-STATE-KEY-V1\n"
    STATE_LEAF = b"KPL-STATE-LEAF-V1\n"
    STATE_NODE = b"KPL-STATE-NODE-V1\n"


_SAFE_INT = 2**53 - 1  # RFC 8785 numbers are IEEE 754 doubles: larger ints are not exact


def _json_is_canonical(value: Any) -> bool:
    """True when msgspec's sorted JSON encoder already yields RFC 8785 bytes.

    That holds for documents of objects with ASCII keys (so code-point order is
    UTF-16 order), strings, booleans, null and integers within +-(2^53 - 1):
    every document kpledger signs. Anything else (floats above all) goes
    through the reference implementation.
    """
    stack = [value]
    while stack:
        v = stack.pop()
        kind = type(v)
        if kind is str or v is None or kind is bool:
            continue
        if kind is int:
            if not -_SAFE_INT <= v <= _SAFE_INT:
                return False
        elif kind is dict:
            for key, item in v.items():
                if type(key) is not str or not key.isascii():
                    return False
                stack.append(item)
        elif kind is list:
            stack.extend(v)
        else:
            return False
    return True


def canonical_bytes(value: Any, *, checked: bool = False) -> bytes:
    """RFC 8785 bytes of a JSON-compatible value.

    Signed documents take a fast path through msgspec's encoder with sorted
    keys, which gives RFC 8785 bytes for the documents ``_json_is_canonical``
    admits (ASCII keys sort the same by code point and by UTF-16 unit; its
    string escapes are those of RFC 8785); the test suite checks both paths
    against the RFC 8785 vectors and against each other. ``checked=True`` says
    the caller's schema already guarantees that shape (ASCII keys, integers
    within 2^53, no floats), so the walk is skipped.
    """
    if checked or _json_is_canonical(value):
        try:
            return _ENCODER.encode(value)
        except (msgspec.EncodeError, TypeError, ValueError):  # a lone surrogate among them
            pass  # let the reference encoder refuse it
    try:
        out: bytes = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise EncodingError(f"cannot canonicalise: {exc}") from exc
    return out


#: the fast path's encoder: object keys sorted, no spaces, UTF-8 left unescaped
_ENCODER = msgspec.json.Encoder(order="sorted")


def _float_refused(_text: str) -> Any:
    raise ValueError("a float")  # msgspec reports it as a DecodeError: the strict path names it


#: the fast path's decoder: a float anywhere stops it at once
_DECODER = msgspec.json.Decoder(float_hook=_float_refused)
#: a number of 16 digits or more: the only way an integer past 2^53 - 1 (16 digits) can
#: be written. In canonical JSON a number opens the document (``_LEADING_NUMBER``) or follows
#: ``:``, ``,`` or ``[``; a string holding such a run (hex does not) only sends the document
#: through the walk. Two expressions, not one alternation with ``\A``: a pattern that opens
#: with a character set is searched for that set first, three times faster on a block.
_LONG_NUMBER = re.compile(rb"[:,\[]-?[0-9]{16}")
_LEADING_NUMBER = re.compile(rb"-?[0-9]{16}")


def _decode_canonical(data: bytes) -> Any:
    """The value of ``data`` when it is already canonical JSON of the shape kpledger signs,
    else ``_NOT_CANONICAL``.

    The fast path of ``load_json`` and ``parse_canonical``: msgspec decodes
    (refusing any float), and the bytes must equal their own canonical
    re-encoding. That equality also refuses what msgspec's decoder lets
    through: a duplicate key (the re-encoding would hold one member fewer) and
    an escape the canonical form does not use. ASCII bytes without a number of
    16 digits hold only ASCII keys and integers within 2^53; other bytes are
    walked by ``_json_is_canonical``. Any
    input refused here goes through the strict standard decoder, which names
    what is wrong.
    """
    try:
        value = _DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError, ValueError, TypeError):
        return _NOT_CANONICAL
    if (
        not data.isascii()
        or _LONG_NUMBER.search(data) is not None
        or _LEADING_NUMBER.match(data) is not None
    ) and not _json_is_canonical(value):
        return _NOT_CANONICAL
    try:
        encoded = _ENCODER.encode(value)
    except (msgspec.EncodeError, RecursionError, TypeError, ValueError):
        return _NOT_CANONICAL
    return value if encoded == data else _NOT_CANONICAL


#: what ``_decode_canonical`` returns for input it leaves to the strict decoder
_NOT_CANONICAL: Any = object()


def _no_float(text: str) -> Any:
    raise EncodingError(f"floats are not allowed in signed documents (got {text})")


def _no_constant(text: str) -> Any:
    raise EncodingError(f"{text} is not JSON")


#: 2^53 - 1 has 16 digits: a longer integer literal is refused before it is converted
_MAX_INT_DIGITS = len(str(_SAFE_INT))


def _bounded_int(text: str) -> int:
    """An integer literal within +-(2^53 - 1), refused (not converted) when longer.

    Converting a 5,000-digit literal costs quadratic time and, past Python's
    own limit, raises a bare ``ValueError``; no document kpledger reads holds
    an integer outside what RFC 8785 represents exactly.
    """
    digits = len(text) - text.startswith("-")
    if digits > _MAX_INT_DIGITS:
        raise EncodingError(f"an integer of {digits} digits: integers must lie within +-(2^53 - 1)")
    value = int(text)
    if not -_SAFE_INT <= value <= _SAFE_INT:
        raise EncodingError(f"integer {value} is outside +-(2^53 - 1)")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise EncodingError(f"duplicate key {key!r}")
        out[key] = value
    return out


def strict_decoder() -> json.JSONDecoder:
    """The decoder ``load_json`` uses: no floats, no NaN, no duplicate keys, integers only
    within +-(2^53 - 1); each of these raises ``EncodingError`` while decoding.

    For readers that decode a document piece by piece (``raw_decode``) as it
    arrives, with exactly the strictness of ``load_json``.
    """
    return json.JSONDecoder(
        parse_float=_no_float,
        parse_int=_bounded_int,
        parse_constant=_no_constant,
        object_pairs_hook=_unique_keys,
    )


def load_json(data: bytes, *, what: str = "document") -> Any:
    """Parse UTF-8 JSON strictly: no floats, no NaN, no duplicate keys, integers only
    within +-(2^53 - 1).

    Canonical input (every block and record nodes send) is decoded by msgspec
    (``_decode_canonical``); anything else by the standard library's decoder
    with the hooks of ``strict_decoder``.
    """
    if type(data) is bytes:
        value = _decode_canonical(data)
        if value is not _NOT_CANONICAL:
            return value
    return _load_strict(data, what)


def load_stored(data: bytes) -> Any:
    """Decode JSON bytes a store holds: checked canonical (``load_json``) when they came
    in, so decoded by msgspec without that check again (four times the standard
    library's speed on a record)."""
    return _DECODER.decode(data)


def _load_strict(data: bytes, what: str) -> Any:
    try:
        return strict_decoder().decode(data.decode("utf-8"))
    except EncodingError as exc:
        raise EncodingError(f"{what}: {exc.message}") from exc
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:  # JSONDecodeError too
        raise EncodingError(f"{what}: not valid JSON: {exc}") from exc


def parse_canonical(data: bytes, *, what: str = "document") -> Any:
    """Parse bytes that must already be canonical JSON without floats.

    Raises ``EncodingError`` naming ``what`` if the bytes are not UTF-8 JSON,
    hold a float or a duplicate key, or differ from their canonical form.
    """
    if type(data) is bytes:
        value = _decode_canonical(data)
        if value is not _NOT_CANONICAL:
            return value
    value = _load_strict(data, what)
    if canonical_bytes(value) != data:
        raise EncodingError(f"{what}: bytes are not in RFC 8785 canonical form")
    return value


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def tagged_hash(tag: Tag, data: bytes) -> bytes:
    """SHA-256 of ``tag || data``."""
    # a Tag is the bytes of its value: ``tag + data`` skips the enum's ``value`` lookup, a
    # fifth of the cost of hashing a leaf
    return hashlib.sha256(tag + data).digest()


def to_hex(data: bytes) -> str:
    return data.hex()


def from_hex(text: object, *, field: str, size: int | None = None) -> bytes:
    """Decode lower-case hex of ``size`` bytes (any length when ``size`` is None).

    A binary field's type and length are its schema, its digits its encoding
    (docs/spec/bundle.md section 1): a value that is not a string, or a string
    that is not ``2 * size`` characters long, raises ``SchemaError``; a string
    of that length with a character outside ``0-9a-f`` (or of odd length when
    any length goes) raises ``EncodingError``.
    """
    if not isinstance(text, str):
        raise SchemaError("expected a string of lower-case hex", field=field)
    if size is not None and len(text) != 2 * size:
        raise SchemaError(
            f"expected {2 * size} hex digits ({size} bytes), got {len(text)}", field=field
        )
    # fromhex also takes upper case and spaces: the bytes must give back the very text
    try:
        data = bytes.fromhex(text)
    except ValueError:
        data = None
    if data is None or data.hex() != text:
        raise EncodingError("expected lower-case hex", field=field)
    return data
