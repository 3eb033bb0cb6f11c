"""Committed confidential fields and their disclosures (DESIGN.md section 9).

In a record of format version 2 each confidential field (a value in US
cents, a party's name or address, the importer's name and address on a
certificate, a seal id) holds a salted commitment instead of its clear
value::

    {"c": hex(SHA-256("KPL-COMMIT-V1\\n" || salt || canonical(value)))}

with ``salt`` 32 random bytes. The salt keeps a guess of a small value (a
price, say) from being checked against the commitment. The clear value and
its salt form a **disclosure**: (record hash, field path, salt, value). The
writer keeps it and gives it only to those entitled to the field.

This module is pure: it builds commitments, says which fields of which
record kind are confidential, turns a clear body into a committed one with
the openings to disclose, and checks a disclosure against the record it
claims to open. Salts are random unless the caller gives them (``salts``, a function of the
field path): a writer derives them from its own secret (``keyed_salts``) so
that a resubmission is idempotent, and test workloads stay reproducible.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kpledger.ledger.canonical import canonical_bytes, from_hex, parse_canonical, sha256
from kpledger.ledger.errors import DisclosureError, SchemaError
from kpledger.ledger.schema import CENTS_MAX, Fields

__all__ = [
    "COMMIT_PREFIX",
    "CONFIDENTIAL",
    "SALT_BYTES",
    "Commitment",
    "Disclosure",
    "Opening",
    "commit",
    "confidential_paths",
    "field_at",
    "keyed_salts",
    "open_body",
    "public_body",
    "random_salt",
    "seal_body",
]

COMMIT_PREFIX = b"KPL-COMMIT-V1\n"
SALT_BYTES = 32

#: the confidential fields of each record kind, as paths inside ``body``;
#: ``[]`` stands for every element of a list
CONFIDENTIAL: Mapping[str, tuple[str, ...]] = {
    "party.register": ("name", "address"),
    "parcel.register": ("value",),
    "parcel.transfer": ("value",),
    "parcel.split": ("children[].value",),
    "parcel.merge": ("value",),
    "certificate.issue": (
        "importer.name",
        "importer.address",
        "lines[].value",
        "value",
        "seal",
    ),
    # the artisanal chain: the names of claim holders and diggers, the price paid at first sale
    "claim.register": ("holder",),
    "licence.digger": ("holder",),
    "parcel.purchase": ("price",),
}

_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d*)\])?")
#: a disclosed value is a bounded integer (cents) or a short string (name, address, seal)
_MAX_TEXT = 300


@dataclass(frozen=True)
class Commitment:
    """A committed field: the 32-byte digest, shown as ``{"c": <hex>}``."""

    digest: bytes

    def to_json(self) -> dict[str, str]:
        return {"c": self.digest.hex()}

    @classmethod
    def from_json(cls, value: object, field: str) -> Commitment:
        if not isinstance(value, (dict, Mapping)) or set(value) != {"c"}:
            raise SchemaError('expected a commitment {"c": <64 hex digits>}', field=field)
        return cls(from_hex(value["c"], field=f"{field}.c", size=32))

    @staticmethod
    def is_commitment(value: object) -> bool:
        return isinstance(value, Mapping) and set(value) == {"c"}


#: the longest clear text of each confidential text field, by its last name
_TEXT_LIMITS = {"name": 200, "address": 300, "seal": 64, "holder": 200}
#: confidential fields holding US cents
_CENTS_FIELDS = frozenset({"value", "price"})


def _check_value(value: object, field: str, path: str | None = None) -> int | str:
    """A clear value passes the checks its field had in clear (record format 1).

    The field ``path`` (default ``field``) says the type: a ``value`` or a
    ``price`` is an integer of US cents, every other confidential field a string.
    """
    name = (path or field).rsplit(".", 1)[-1]
    if name in _CENTS_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError("expected an integer (US cents)", field=field)
        if not 0 <= value <= CENTS_MAX:
            raise SchemaError(f"must be in 0..{CENTS_MAX}", field=field)
        return value
    if not isinstance(value, str):
        raise SchemaError("expected a string", field=field)
    limit = _TEXT_LIMITS.get(name, _MAX_TEXT)
    try:
        return Fields({"v": value}).string("v", max_len=limit)
    except SchemaError as exc:
        raise SchemaError(exc.message, field=field) from exc


def commit(value: int | str, salt: bytes) -> Commitment:
    """The commitment to ``value`` under ``salt`` (32 bytes)."""
    if len(salt) != SALT_BYTES:
        raise SchemaError(f"a salt is {SALT_BYTES} bytes, not {len(salt)}", field="salt")
    return Commitment(sha256(COMMIT_PREFIX + salt + canonical_bytes(value)))


@dataclass(frozen=True)
class Opening:
    """What opens one committed field of a body not yet sealed into a record."""

    path: str  # the field path from the record's root: ``body.lines[0].value``
    salt: bytes
    value: int | str


@dataclass(frozen=True)
class Disclosure:
    """The clear value of one committed field of one record, with its salt."""

    record: bytes  # the record's leaf hash
    path: str
    salt: bytes
    value: int | str

    @classmethod
    def of(cls, record: bytes, opening: Opening) -> Disclosure:
        return cls(record, opening.path, opening.salt, opening.value)

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record.hex(),
            "path": self.path,
            "salt": self.salt.hex(),
            "value": self.value,
        }

    @classmethod
    def from_json(cls, value: object, field: str = "disclosure") -> Disclosure:
        # dict first: a decoded answer's objects are dicts, and Mapping's check is slower
        if not isinstance(value, (dict, Mapping)) or set(value) != {
            "record",
            "path",
            "salt",
            "value",
        }:
            raise SchemaError("expected a disclosure {record, path, salt, value}", field=field)
        path = value["path"]
        if not isinstance(path, str) or not path.startswith("body.") or len(path) > 120:
            raise SchemaError(
                "a disclosure's path names a field of the body", field=f"{field}.path"
            )
        return cls(
            from_hex(value["record"], field=f"{field}.record", size=32),
            path,
            from_hex(value["salt"], field=f"{field}.salt", size=SALT_BYTES),
            _check_value(value["value"], f"{field}.value", path),
        )

    def check(self, commitment: Commitment) -> None:
        """Raise ``DisclosureError`` unless this disclosure opens ``commitment``."""
        if commit(self.value, self.salt) != commitment:
            raise DisclosureError(
                f"the disclosed value and salt of {self.path} do not open its commitment",
                record=self.record.hex(),
                field=self.path,
            )

    def check_record(self, leaf: bytes, raw: bytes) -> None:
        """Check this disclosure against the record with leaf hash ``leaf`` and bytes ``raw``."""
        doc = parse_canonical(raw, what="record")
        self.check_parsed(leaf, doc, confidential_paths(doc))

    def check_parsed(
        self, leaf: bytes, doc: Mapping[str, Any], paths: Collection[str]
    ) -> Commitment:
        """``check_record`` on a record already parsed: ``doc``, parsed from the bytes
        whose leaf hash is ``leaf``, and its ``confidential_paths`` (a node checking
        many disclosures of one record parses it once). Returns the commitment opened."""
        if leaf != self.record:
            raise DisclosureError(
                "the disclosure names another record", record=self.record.hex(), field=self.path
            )
        if self.path not in paths:
            raise DisclosureError(
                f"{self.path} is not a confidential field of this record",
                record=self.record.hex(),
                field=self.path,
            )
        opened = Commitment.from_json(field_at(doc, self.path), self.path)
        self.check(opened)
        return opened


def _steps(path: str) -> Iterator[tuple[str, str | None]]:
    for part in path.split("."):
        m = _STEP.fullmatch(part)
        if m is None:
            raise SchemaError(f"{path!r} is not a field path", field="path")
        yield m.group(1), m.group(2)


@functools.lru_cache(maxsize=1024)
def _steps_of(path: str) -> tuple[tuple[str, str | None], ...]:
    """``_steps`` of ``path``, kept: a node checking disclosures meets the same few
    paths (``body.value``, ``body.lines[0].value``, ...) thousands of times."""
    return tuple(_steps(path))


def field_at(doc: object, path: str) -> object:
    """The value at a concrete field path (``body.lines[2].value``) of a JSON document."""
    here = doc
    for name, index in _steps_of(path):
        # dict first: a parsed document's objects are dicts, and Mapping's check is slower
        if not isinstance(here, (dict, Mapping)) or name not in here:
            raise SchemaError(f"{path} names no field of this record", field=path)
        here = here[name]
        if index is not None:
            if not isinstance(here, list) or not index or int(index) >= len(here):
                raise SchemaError(f"{path} names no field of this record", field=path)
            here = here[int(index)]
    return here


def _expand(doc: Mapping[str, Any], pattern: str, prefix: str) -> Iterator[str]:
    """Concrete paths of ``pattern`` (with ``[]`` for every element) present in ``doc``."""
    head, _, rest = pattern.partition(".")
    if head.endswith("[]"):
        name = head[:-2]
        items = doc.get(name)
        if not isinstance(items, list):
            return
        for i, item in enumerate(items):
            here = f"{prefix}{name}[{i}]"
            if not rest:
                yield here
            elif isinstance(item, (dict, Mapping)):
                yield from _expand(item, rest, here + ".")
        return
    if head not in doc:
        return
    if not rest:
        yield prefix + head
    elif isinstance(doc[head], (dict, Mapping)):
        yield from _expand(doc[head], rest, f"{prefix}{head}.")


def confidential_paths(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """The concrete paths of the confidential fields a record document carries."""
    body = doc.get("body")
    kind = doc.get("kind")
    if not isinstance(body, (dict, Mapping)) or not isinstance(kind, str):
        return ()
    return tuple(
        path for pattern in CONFIDENTIAL.get(kind, ()) for path in _expand(body, pattern, "body.")
    )


def _replace(doc: Any, path: str, new: object) -> None:
    steps = list(_steps(path))
    here = doc
    for name, index in steps[:-1]:
        here = here[name]
        if index is not None:
            here = here[int(index)]
    name, index = steps[-1]
    if index is not None:
        here[name][int(index)] = new
    else:
        here[name] = new


def random_salt(_path: str) -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def keyed_salts(secret: bytes, scope: str) -> Callable[[str], bytes]:
    """Salts derived from a writer's secret: HMAC-SHA-256(secret, scope || "\n" || path).

    With ``scope`` naming the record (network, chain, id), resubmitting the
    same clear record reproduces the same committed bytes, while nobody
    without ``secret`` can predict a salt.
    """

    def salt(path: str) -> bytes:
        return hmac.new(secret, f"{scope}\n{path}".encode(), hashlib.sha256).digest()

    return salt


def seal_body(
    kind: str,
    body: Mapping[str, Any],
    *,
    salts: Callable[[str], bytes] | None = None,
) -> tuple[dict[str, Any], tuple[Opening, ...]]:
    """Commit every confidential field of a clear ``body``.

    Returns the committed body (to put in the record) and one opening per
    committed field (to become disclosures once the record's hash is known).
    A field that already holds a commitment is refused: a writer seals clear
    values only.
    """
    doc = {"kind": kind, "body": parse_canonical(canonical_bytes(dict(body)))}
    openings: list[Opening] = []
    for path in confidential_paths(doc):
        value = _check_value(field_at(doc, path), path)
        salt = (salts or random_salt)(path)
        openings.append(Opening(path, salt, value))
        _replace(doc, path, commit(value, salt).to_json())
    sealed: dict[str, Any] = doc["body"]
    return sealed, tuple(openings)


def public_body(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` without its confidential fields (what anyone may read of a clear draft)."""
    doc = {"kind": kind, "body": parse_canonical(canonical_bytes(dict(body)))}
    for path in reversed(confidential_paths(doc)):
        _replace(doc, path, None)
    out: dict[str, Any] = doc["body"]
    return out


def open_body(doc: Mapping[str, Any], disclosures: Iterable[Disclosure]) -> dict[str, Any]:
    """The body of record document ``doc`` with each disclosed field put back in clear.

    Each disclosure is checked against the commitment it replaces; a field
    without a disclosure stays committed.
    """
    opened = parse_canonical(canonical_bytes(dict(doc)))
    for d in disclosures:
        d.check(Commitment.from_json(field_at(opened, d.path), d.path))
        _replace(opened, d.path, d.value)
    body: dict[str, Any] = opened["body"]
    return body
