"""Strict field readers for documents received as JSON.

Each reader names the field it fails on with its dotted path, so a refusal
says exactly what was wrong (``body.children[2].weight: must be >= 1``).
Unknown fields are refused too: a signed document means exactly what it says.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

from kpledger.ledger.canonical import from_hex
from kpledger.ledger.errors import SchemaError

__all__ = [
    "CARAT_MAX",
    "CENTS_MAX",
    "CODE",
    "DATE",
    "FORBIDDEN_CHARACTERS",
    "HS_CODES",
    "INDICATOR",
    "LOCAL_ID",
    "RECORD_ID",
    "TIME",
    "Fields",
    "parse_date",
    "parse_time",
]

#: participant codes: ISO 3166-1 alpha-2 (EU counts as one), or a longer
#: upper-case code for observers and the governance chain (WDC, KP).
CODE = re.compile(r"\A[A-Z]{2,8}\Z")
#: ids of parties, parcels and certificates: ``<code>-<local part>`` (no "/": ids are URL
#: path segments of the API).
LOCAL_ID = re.compile(r"\A[A-Z]{2,8}-[A-Za-z0-9][A-Za-z0-9._-]{0,47}\Z")
#: a diagnostic indicator: a dotted topic name from the network's list (``access.licensing``)
INDICATOR = re.compile(r"\A[a-z][a-z0-9_]{0,30}(\.[a-z][a-z0-9_]{0,30}){0,2}\Z")
RECORD_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,79}\Z")
TIME = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
#: rough-diamond HS codes; the only ones a KP certificate may carry.
HS_CODES = frozenset({"7102.10", "7102.21", "7102.31"})
#: 10^12 hundredths of a carat is ten billion carats: about 90 years of
#: world production. Values are US cents up to 10^15 (ten trillion dollars).
CARAT_MAX = 10**12
CENTS_MAX = 10**15
#: Characters no string of a record may hold: controls (C0, DEL, C1), bidirectional
#: controls (U+202E and kin, which make "gnp.exe" read as "exe.png"), zero-width and
#: other invisible format characters, fillers that render as nothing, every space
#: but U+0020, line and paragraph separators, surrogates, private use, tags,
#: variation selectors and noncharacters. A fixed list, not Unicode categories:
#: categories move between Unicode versions, and every node must reach the same
#: verdict on the same record whatever Python it runs.
FORBIDDEN_CHARACTERS = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"  # C0, DEL, C1
    "\u00a0\u00ad\u034f\u061c\u115f\u1160\u1680\u17b4\u17b5\u180b-\u180f"
    "\u2000-\u200f"  # spaces, zero-width space and joiners, LRM, RLM
    "\u2028-\u202f"  # line/paragraph separators, LRE RLE PDF LRO RLO, narrow NBSP
    "\u205f-\u206f"  # medium space, word joiner, invisible operators, LRI RLI FSI PDI
    "\u2800\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\ufffe\uffff"
    "\ud800-\udfff\ue000-\uf8ff\ufdd0-\ufdef"  # surrogates, private use, nonchars
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff"  # musical format, tags, VS 17-256
    "\U000f0000-\U0010ffff"  # private use planes 15 and 16
    "]"
)


def _character_name(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, '(unnamed)')}"


def parse_time(text: str, *, field: str) -> datetime:
    if TIME.match(text) is None:
        raise SchemaError("expected a UTC time like 2026-01-31T12:00:00Z", field=field)
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as exc:
        raise SchemaError(f"not a real time: {exc}", field=field) from exc


def parse_date(text: str, *, field: str) -> date:
    if DATE.match(text) is None:
        raise SchemaError("expected a date like 2026-01-31", field=field)
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise SchemaError(f"not a real date: {exc}", field=field) from exc


#: a commitment's digest as ``from_hex`` accepts it (32 bytes, lower-case hex)
_COMMITMENT = re.compile(r"[0-9a-f]{64}")

#: a field absent from the object read (``Fields.get`` default; never a JSON value)
_MISSING: Any = object()


class Traced:
    """Marks the placeholders ``ledger.record_schema`` feeds a parser to trace its schema.

    ``Fields`` over one of them is the tracing reader that records each field
    read instead of checking it (``TRACER``), and a placeholder read as a
    string element of a list is told which constraints applied to it.
    """

    def note_string(self, pattern: re.Pattern[str] | None, max_len: int) -> None:
        raise NotImplementedError


#: the tracing subclass of ``Fields``, set by ``ledger.record_schema``
TRACER: list[type[Fields]] = []


class Fields:
    """Reads typed fields out of one JSON object, refusing anything unexpected."""

    def __new__(cls, value: object, path: str = "") -> Fields:
        if cls is Fields and TRACER and isinstance(value, Traced):
            return object.__new__(TRACER[0])  # its __init__ then runs with the same arguments
        return object.__new__(cls)

    def __init__(self, value: object, path: str = "") -> None:
        if not isinstance(value, Mapping):
            raise SchemaError("expected an object", field=path)
        self._d: Mapping[str, Any] = value
        self._path = path
        self._seen: set[str] = set()

    def _at(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def _get(self, name: str) -> Any:
        self._seen.add(name)
        if name not in self._d:
            raise SchemaError("is required", field=self._at(name))
        return self._d[name]

    def has(self, name: str) -> bool:
        return name in self._d

    def string(
        self, name: str, *, pattern: re.Pattern[str] | None = None, max_len: int = 200
    ) -> str:
        # the hot path of parsing every record: the field's path is only made for an error
        self._seen.add(name)
        value = self._d.get(name, _MISSING)
        if type(value) is not str:
            if value is _MISSING:
                raise SchemaError("is required", field=self._at(name))
            if not isinstance(value, str):
                raise SchemaError("expected a string", field=self._at(name))
        if not value or len(value) > max_len:
            raise SchemaError(f"length must be 1..{max_len}", field=self._at(name))
        bad = FORBIDDEN_CHARACTERS.search(value)
        if bad is not None:
            raise SchemaError(
                f"{_character_name(bad.group())} at position {bad.start()}: control, "
                "bidirectional, invisible and non-ASCII space characters are not allowed",
                field=self._at(name),
            )
        if value != value.strip():
            raise SchemaError("no surrounding spaces", field=self._at(name))
        if pattern is not None and pattern.match(value) is None:
            raise SchemaError(f"does not match {pattern.pattern}", field=self._at(name))
        if isinstance(value, Traced):
            value.note_string(pattern, max_len)
        return value

    def optional_string(
        self, name: str, *, pattern: re.Pattern[str] | None = None, max_len: int = 200
    ) -> str | None:
        if name not in self._d:
            self._seen.add(name)
            return None
        return self.string(name, pattern=pattern, max_len=max_len)

    def choice(self, name: str, options: frozenset[str]) -> str:
        value = self.string(name, max_len=64)
        if value not in options:
            raise SchemaError(f"must be one of {sorted(options)}", field=self._at(name))
        return value

    def integer(self, name: str, *, low: int, high: int) -> int:
        self._seen.add(name)
        value = self._d.get(name, _MISSING)
        if type(value) is not int:
            if value is _MISSING:
                raise SchemaError("is required", field=self._at(name))
            if not isinstance(value, int) or isinstance(value, bool):
                raise SchemaError("expected an integer", field=self._at(name))
        if not low <= value <= high:
            raise SchemaError(f"must be in {low}..{high}", field=self._at(name))
        return value

    def optional_integer(self, name: str, *, low: int, high: int) -> int | None:
        if name not in self._d:
            self._seen.add(name)
            return None
        return self.integer(name, low=low, high=high)

    def time(self, name: str) -> str:
        value = self.string(name, max_len=20)
        parse_time(value, field=self._at(name))
        return value

    def date(self, name: str) -> str:
        value = self.string(name, max_len=10)
        parse_date(value, field=self._at(name))
        return value

    def items(self, name: str, *, low: int, high: int) -> Iterator[tuple[str, Any]]:
        """A list field: yields (path, element) after checking its length."""
        value = self._get(name)
        field = self._at(name)
        if not isinstance(value, list):
            raise SchemaError("expected a list", field=field)
        if not low <= len(value) <= high:
            raise SchemaError(f"must hold {low}..{high} items", field=field)
        for i, item in enumerate(value):
            yield f"{field}[{i}]", item

    def obj(self, name: str) -> Fields:
        return Fields(self._get(name), self._at(name))

    def commitment(self, name: str) -> str:
        """A committed confidential field ``{"c": <64 hex>}`` (record format 2), as its hex."""
        value = self._get(name)
        if type(value) is dict and len(value) == 1:  # the well-formed case, checked at once
            digest = value.get("c")
            if type(digest) is str and _COMMITMENT.fullmatch(digest) is not None:
                return digest
        field = self._at(name)
        if not isinstance(value, Mapping):
            raise SchemaError(
                'expected a commitment {"c": <64 hex digits>}: a confidential field is '
                "committed in record format 2 (submit it in clear to the writer's node)",
                field=field,
            )
        inner = Fields(value, field)
        digest = from_hex(inner.string("c", max_len=64), field=inner.path("c"), size=32)
        inner.done()
        return digest.hex()

    def mapping(self, name: str) -> Mapping[str, Any]:
        value = self._get(name)
        if not isinstance(value, Mapping):
            raise SchemaError("expected an object", field=self._at(name))
        return value

    def done(self) -> None:
        extra = sorted(set(self._d) - self._seen)
        if extra:
            raise SchemaError(f"unknown field(s) {extra}", field=self._path)

    def path(self, name: str) -> str:
        return self._at(name)
