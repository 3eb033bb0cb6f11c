"""JSON Schemas of the records, traced from the parsers themselves.

Each record kind's body is parsed by a ``parse`` method reading ``Fields``
(``ledger.records``). Rather than keep a second description that could drift
from it, this module *runs* every parser of ``ledger.records`` against a
tracing ``Fields`` that records each field read (its type, bounds, pattern,
list sizes, whether it is optional) and answers a placeholder value. So a
new kind, or a new field, appears in the schema as soon as its parser reads
it. Descriptions and units come from the tables below (by field name); the
unit of an integer follows from its bound (``CARAT_MAX``: hundredths of a
carat, ``CENTS_MAX``: US cents).

Pure: no I/O. The API publishes the result in ``/openapi.json`` and
``api.docs_records`` writes ``docs/records.md`` from it.

One concept, a little over 500 lines: the trace and the description table it
reads, which grows by one line per documented field of every kind.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from kpledger.ledger import records
from kpledger.ledger.blocks import Header
from kpledger.ledger.errors import EncodingError
from kpledger.ledger.records import Kind
from kpledger.ledger.registry import Params
from kpledger.ledger.schema import CARAT_MAX, CENTS_MAX, CODE, TRACER, Fields, Traced

__all__ = [
    "KIND_DOCS",
    "body_schema",
    "header_schema",
    "kind_schemas",
    "params_schema",
    "record_schema",
    "traced",
]

#: what each kind does and which chain takes it (README, "Records and rules")
KIND_DOCS: dict[str, str] = {
    "party.register": "A licensed company (miner, trader, exporter, importer, manufacturer) "
    "registered by its authority, on that authority's chain.",
    "party.revoke": "A party's licence withdrawn by its authority; it can hold nothing new.",
    "parcel.register": "New rough production at a mine, by the producing authority: a new "
    "parcel whose origin is that country.",
    "parcel.transfer": "A parcel handed to another party of the same jurisdiction (with an "
    "optional new value), by the authority holding it.",
    "parcel.split": "A parcel split into two or more children whose weights and values add up "
    "exactly to the parent's; the parent is spent.",
    "parcel.merge": "Two or more parcels of one custodian merged into one child with the sums "
    "of their weights and values; the parents are spent.",
    "certificate.issue": "A KP certificate issued by the exporting authority with every "
    "Annex I field; its parcels are in transit.",
    "certificate.confirm": "The importing authority confirms a certificate, citing the issue "
    "record by (chain, index, hash) and the weights received; parcels move to it, or are held "
    "on a discrepancy.",
    "certificate.void": "The exporter cancels an unconfirmed certificate once the importer's "
    "chain has passed its expiry (cited by height); its parcels return.",
    "certificate.refuse": "The importing authority refuses an incoming certificate, citing "
    "its issue record, with a reason code (restricted-origin, documents, seal-broken, "
    "weight-discrepancy, other) and text: the certificate is refused and its parcels go back "
    "to the exporter's jurisdiction and custodian.",
    "parcel.release": "The importing authority releases a parcel held on a discrepancy, with "
    "the reason: it becomes active again with its custodian.",
    "policy.restrict_origin": "This authority refuses imports holding any share of an origin.",
    "policy.lift_origin": "Lifts a restriction of an origin.",
    "key.rotate": "The authority's chain is signed with a new key from the next block.",
    "member.admit": "Governance (chain KP, threshold-signed): a new participant.",
    "member.suspend": "Governance (chain KP, threshold-signed): a participant suspended.",
    "member.reinstate": "Governance (chain KP, threshold-signed): a suspension lifted.",
    "claim.register": "An artisanal claim or mining area registered by the producing "
    "authority: holder, zone, location (a point or a polygon) and validity.",
    "licence.digger": "A digger's or cooperative's licence to dig one registered claim, "
    "with its validity.",
    "licence.buyer": "A licensed buyer (collector or comptoir): a registered party, the zones "
    "it may buy in, its validity.",
    "licence.end": "A claim or licence revoked, surrendered or recorded expired from a date on.",
    "parcel.purchase": "First sale: a licensed buyer buys from a licensed digger or cooperative; "
    "a new parcel of that claim, with its production method, weight and price paid (rules A1-A3).",
    "diagnostic.assess": "One indicator of the authority's periodic diagnostic self-assessment "
    "(Washington Declaration Diagnostic Framework): score and evidence, named by the network's "
    "indicator list.",
    "stats.report": "The authority's quarterly KP statistics, sealed once after the quarter "
    "(record id stats-<quarter>): production, exports and imports by partner, carats, counts "
    "and USD. Public; a cell of fewer than the network's min_cell records (3) carries no USD "
    "(rules S1-S2).",
    "key.replace": "Governance (chain KP, threshold-signed): an authority's key replaced from "
    "a height on, after a loss or theft.",
}

#: the longest clear text of each committed text field (as ``ledger.commit`` checks it)
_TEXT_LIMITS = {"name": 200, "address": 300, "seal": 64, "holder": 200}
_COMMITTED = (
    " Confidential: submitted in clear; the writer's node commits it, so the signed "
    'record holds {"c": <64 hex>} (a salted SHA-256 commitment) and the clear value is a '
    "disclosure."
)
_SIGNED = (
    " Confidential: a salted SHA-256 commitment to the clear value; the clear value and "
    "its salt are a disclosure, given only to those entitled to it."
)
_COMMITMENT: dict[str, Any] = {
    "type": "object",
    "properties": {"c": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
    "required": ["c"],
    "additionalProperties": False,
}
#: which form of the record the trace describes: "draft" (submitted) or "signed"
_FORM = ["draft"]


def _clear_schema(name: str) -> dict[str, Any]:
    if name in ("value", "price"):
        return {"type": "integer", "minimum": 0, "maximum": CENTS_MAX}
    return {"type": "string", "minLength": 1, "maxLength": _TEXT_LIMITS.get(name, 300)}


_CARATS = "Unit: hundredths of a carat (100 = 1.00 ct)."
_CENTS = "Unit: US cents (100 = 1.00 USD)."

#: field descriptions by name; ``name:type`` entries win over plain names
FIELD_DOCS: dict[str, str] = {
    "v": "Record format version: 2 (confidential fields committed); 1 is refused.",
    "network": "The network id: SHA-256 of the genesis registry, lower-case hex.",
    "chain": "The chain (participant code) that takes the record: the submitting authority.",
    "kind": "The record kind; it selects the schema of body.",
    "id": "The submitter's id for the record, unique on its chain: submitting the same id "
    "again is idempotent, with other content a 409 conflict.",
    "time": "When the record was made, UTC (YYYY-MM-DDTHH:MM:SSZ); at most a minute after "
    "the node's clock.",
    "body": "The kind's fields.",
    "sigs": "Governance signatures (KP chain only): key id and Ed25519 signature over the "
    "record without sigs.",
    "key_id": "SHA-256 of the raw Ed25519 public key, hex.",
    "sig": "Ed25519 signature, hex.",
    "party": "A party id: the registering authority's code, '-', a local part.",
    "name": "The registered name, as on the licence.",
    "role": "The role.",
    "address": "The registered address.",
    "reason": "Why, in words.",
    "parcel": "A parcel id: the minting chain's code, '-', a local part.",
    "custodian": "The party holding the parcel (a party id of the same jurisdiction).",
    "to": "The party that receives the parcel.",
    "weight": "The weight. " + _CARATS,
    "value": "The value. " + _CENTS,
    "hs": "The HS code of rough diamonds: 7102.10 (unsorted), 7102.21 (industrial), "
    "7102.31 (non-industrial).",
    "mine": "The mine or production site.",
    "produced": "Date of production.",
    "children": "The parcels the parent is split into (at least two).",
    "parents": "The parcels merged (at least two, one custodian).",
    "number": "The KP certificate number, starting with the issuer's code.",
    "destination": "The importing participant's code.",
    "exporter": "The exporting party.",
    "importer": "The consignee, as printed on the certificate.",
    "lines": "One line per parcel shipped, with what the exporter declares of it.",
    "origin": "Origin composition: participant code -> weight of that origin. " + _CARATS,
    "origin:string": "The country of origin printed on the certificate (a participant code, "
    "or text such as MIXED for mixed origin: the lines carry the composition).",
    "carats": "Total weight of the shipment. " + _CARATS,
    "parcels": "Number of parcels shipped (the number of lines).",
    "issued": "Date of issue.",
    "expires": "Date of expiry.",
    "seal": "The seal number on the shipment.",
    "ref": "The issue record: its chain, its index in that chain's log, its leaf hash.",
    "index": "Index of the record in its chain's log (0-based).",
    "hash": "RFC 9162 leaf hash of the record, hex.",
    "received": "Weights received per parcel.",
    "importer_height": "A height of the importer's chain whose header is dated after the "
    "expiry and holds no confirmation.",
    "key": "An Ed25519 public key, hex.",
    "code": "A participant code.",
    "url": "The participant node's URL.",
    "from_height": "The first height of the chain signed with the new key.",
    "claim": "A claim or mining area id, registered on this chain.",
    "holder": "The holder's name, as on the claim or licence.",
    "holder:string": "The holder's name, as on the claim or licence.",
    "zone": "The administrative zone the claim lies in (a chain-local id such as SL-KONO).",
    "zones": "The zones the buyer may buy in.",
    "location": "One point, or a polygon of 3 or more vertices (WGS 84).",
    "lat": "Latitude in microdegrees (8500000 = 8.5 degrees north).",
    "lon": "Longitude in microdegrees (-11000000 = 11 degrees west).",
    "valid_from": "First day of validity.",
    "valid_until": "Last day of validity.",
    "licence": "A claim or licence id, registered on this chain.",
    "type": "The kind of holder.",
    "date": "The day it takes effect.",
    "note": "The officer's words.",
    "buyer": "The buyer's licence (collector or comptoir).",
    "digger": "The digger's or cooperative's licence.",
    "method": "How the stones were mined.",
    "price": "The price paid at first sale. " + _CENTS,
    "bought": "Date of the first sale.",
    "indicator": "The indicator, by the topic name of the network's indicator list.",
    "score": "The score on the indicator's scale.",
    "evidence": "What the score rests on, in words (documents, figures).",
    "assessed": "Date of the assessment.",
    "quarter": "A calendar quarter: YYYY-Q1 .. YYYY-Q4.",
    "production": "The quarter's production: mine registrations by produced date and first "
    "sales by date.",
    "exports": "Certificates issued in the quarter (voided and refused excluded), by "
    "destination, partners sorted.",
    "imports": "Certificates confirmed in blocks of the quarter, by exporter, partners sorted; "
    "carats received.",
    "partner": "The other participant of the cell.",
    "certificates": "How many certificates make the cell.",
    "stats.report/carats": "The cell's carats (imports: received). " + _CARATS,
    "stats.report/parcels": "How many parcels make the production cell.",
    "stats.report/value": "The cell's USD, present exactly when at least min_cell records "
    "make it (public: no single shipment's value). " + _CENTS,
}

#: objects read as a whole by a helper rather than field by field
MAPPING_SCHEMAS: dict[str, dict[str, Any]] = {
    "producers": {
        "type": "object",
        "maxProperties": 1000,
        "propertyNames": {"pattern": "^[0-9]{4}$"},
        "additionalProperties": {
            "type": "array",
            "maxItems": 1000,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": "^[A-Z]{2,8}$"},
        },
    },
    "origin": {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 300,
        "propertyNames": {"pattern": "^[A-Z]{2,8}$"},
        "additionalProperties": {"type": "integer", "minimum": 0, "maximum": CARAT_MAX},
    },
}


def _ecma(pattern: re.Pattern[str]) -> str:
    return pattern.pattern.replace("\\A", "^").replace("\\Z", "$")


def _describe(schema: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    text = (
        FIELD_DOCS.get(f"{kind}/{name}")
        or FIELD_DOCS.get(f"{name}:{schema.get('type')}")
        or FIELD_DOCS.get(name)
    )
    if text is None and schema.get("type") == "integer":
        high = schema.get("maximum")
        text = _CARATS if high == CARAT_MAX else _CENTS if high == CENTS_MAX else None
    if text is None:
        text = name.replace("_", " ").capitalize() + "."
    return {"description": text, **schema}


# ---------------------------------------------------------------- the trace


class _Node:
    """What the parser read at one place: an object's fields, or one value's schema."""

    def __init__(self) -> None:
        self.props: dict[str, _Node | dict[str, Any]] = {}
        self.required: list[str] = []
        self.closed = False
        self.used_as_object = False
        self.string: dict[str, Any] | None = None


class _Item(str, Traced):
    """A list element: read as an object (``Fields(item)``) or as a string."""

    node: _Node

    def __new__(cls, text: str, node: _Node) -> _Item:
        item = super().__new__(cls, text)
        item.node = node
        return item

    def note_string(self, pattern: re.Pattern[str] | None, max_len: int) -> None:
        schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": max_len}
        if pattern is not None:
            schema["pattern"] = _ecma(pattern)
        self.node.string = schema


#: what a mapping read whole by a helper holds while tracing, by field name (default: one
#: origin share)
_MAP_PLACEHOLDERS: dict[str, dict[str, Any]] = {"producers": {"2026": ["BW"]}}


class _Map(dict[str, Any], Traced):
    """An object handed to a helper: one placeholder entry when iterated. A dict, so that
    a parser that takes the canonical bytes of what it read gets past that."""

    def __init__(self, node: _Node, name: str = "") -> None:
        super().__init__(_MAP_PLACEHOLDERS.get(name, {"BW": 1}))
        self.node = node

    def note_string(self, pattern: re.Pattern[str] | None, max_len: int) -> None:
        raise TypeError("an object read as a string")


_serial = itertools.count(1)


def _code(n: int) -> str:
    """A participant code of its own for ``n``: ``XA``, ``XB``, ... ``XAA``."""
    letters = ""
    while True:
        n, digit = divmod(n, 26)
        letters = chr(ord("A") + digit) + letters
        if n == 0:
            return "X" + letters


def _placeholder(pattern: re.Pattern[str] | None, max_len: int) -> str:
    """A value that passes the reader's own check (unique, for the parsers' duplicate checks:
    a header's own chain and the chain it witnesses differ)."""
    if pattern is None:
        return "0" * max_len  # hex-shaped: network ids, hashes, keys and signatures parse
    n = next(_serial)
    for text in (f"XX-T{n}", _code(n), f"r{n}", "2026-01-01", "2026-01-01T00:00:00Z", "2026-Q1"):
        if pattern.match(text):
            return text
    raise ValueError(f"no placeholder for pattern {pattern.pattern}")


class _TracingFields(Fields):
    def __init__(self, value: object, path: str = "") -> None:
        node = value.node if isinstance(value, _Item | _Map) else _Node()
        node.used_as_object = True
        self.node = node
        self._asked: set[str] = set()
        self._path = path

    def _field(self, name: str, schema: dict[str, Any] | _Node, *, optional: bool = False) -> None:
        self.node.props[name] = schema
        if not optional and name not in self._asked and name not in self.node.required:
            self.node.required.append(name)

    def has(self, name: str) -> bool:
        self._asked.add(name)  # read only when present: optional
        return True

    def string(
        self, name: str, *, pattern: re.Pattern[str] | None = None, max_len: int = 200
    ) -> str:
        schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": max_len}
        if pattern is not None:
            schema["pattern"] = _ecma(pattern)
        self._field(name, schema)
        return _placeholder(pattern, max_len)

    def optional_string(
        self, name: str, *, pattern: re.Pattern[str] | None = None, max_len: int = 200
    ) -> str | None:
        self._asked.add(name)
        return self.string(name, pattern=pattern, max_len=max_len)

    def choice(self, name: str, options: frozenset[str]) -> str:
        self._field(name, {"type": "string", "enum": sorted(options)})
        return sorted(options)[0]

    def integer(self, name: str, *, low: int, high: int) -> int:
        self._field(name, {"type": "integer", "minimum": low, "maximum": high})
        return low

    def optional_integer(self, name: str, *, low: int, high: int) -> int | None:
        self._asked.add(name)
        return self.integer(name, low=low, high=high)

    def time(self, name: str) -> str:
        self._field(
            name,
            # no "format": "date-time": clients would send any RFC 3339 form (+00:00,
            # fractions), and a record's time has exactly one
            {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
            },
        )
        return "2026-01-01T00:00:00Z"

    def date(self, name: str) -> str:
        self._field(
            name, {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
        )
        return "2026-01-01"

    def items(self, name: str, *, low: int, high: int) -> Iterator[tuple[str, Any]]:
        element = _Node()
        self._field(name, {"type": "array", "minItems": low, "maxItems": high, "items": element})
        yield f"{self.path(name)}[0]", _Item(f"XX-T{next(_serial)}", element)

    def obj(self, name: str) -> Fields:
        child = _Node()
        self._field(name, child)
        return _TracingFields(_Map(child), self.path(name))

    def commitment(self, name: str) -> str:
        plain = _describe(dict(_clear_schema(name)), name, "")["description"]
        if _FORM[0] == "signed":  # the field as the signed record holds it
            self._field(name, {**_COMMITMENT, "description": plain + _SIGNED})
        else:  # what is submitted: the clear value, which the writer's node commits
            self._field(name, {**_clear_schema(name), "description": plain + _COMMITTED})
        return "0" * 64

    def mapping(self, name: str) -> Mapping[str, Any]:
        child = _Node()
        self._field(name, child)
        return _Map(child, name)

    def done(self) -> None:
        self.node.closed = True

    def path(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name


TRACER[:] = [_TracingFields]


def _to_schema(value: _Node | dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out = dict(value)
        if isinstance(out.get("items"), _Node):
            out["items"] = _to_schema(out["items"], name, kind)
            out["items"].pop("description", None)
        return _describe(out, name, kind)
    if value.string is not None and not value.used_as_object:
        return _describe(dict(value.string), name, kind)
    if not value.used_as_object:  # read whole by a helper
        return _describe(dict(MAPPING_SCHEMAS.get(name, {"type": "object"})), name, kind)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {k: _to_schema(v, k, kind) for k, v in value.props.items()},
        "required": list(value.required),
    }
    if value.closed:
        schema["additionalProperties"] = False
    return _describe(schema, name, kind)


def _parsers() -> Mapping[Kind, Any]:
    parsers: Mapping[Kind, Any] = records.BODY_PARSERS
    return parsers


def body_schema(kind: Kind, *, signed: bool = False) -> dict[str, Any]:
    """The JSON Schema of ``kind``'s body, traced from its parser: as submitted (a
    confidential field in clear), or as the signed record holds it (``signed``: a
    confidential field is its commitment)."""
    _FORM[0] = "signed" if signed else "draft"
    try:
        return _body_schema(kind)
    finally:
        _FORM[0] = "draft"


def _body_schema(kind: Kind) -> dict[str, Any]:
    root = _Node()
    fields = _TracingFields(_Map(root), "body")
    _parsers()[kind](fields)
    root.closed = True  # Record._build calls done() on every body
    schema = _to_schema(root, "body", str(kind))
    schema["description"] = KIND_DOCS.get(str(kind), f"The body of a {kind} record.")
    return schema


def record_schema(kind: Kind, body_ref: str) -> dict[str, Any]:
    """The whole record of ``kind``, traced from ``Record._build``; its body is ``body_ref``."""
    root = _Node()
    with contextlib.suppress(TypeError):  # the placeholders cannot become canonical bytes
        records.Record._build(_Map(root), None)
    if not root.closed:
        raise RuntimeError("the record envelope's trace did not reach its end")
    schema = _to_schema(root, "record", str(kind))
    props = schema["properties"]
    props["kind"] = {**props["kind"], "enum": [str(kind)], "const": str(kind)}
    props["body"] = {"$ref": body_ref}
    schema["description"] = KIND_DOCS.get(str(kind), f"A {kind} record.")
    schema["title"] = f"record {kind}"
    return schema


def traced(parse: Any, name: str) -> dict[str, Any]:
    """The schema of the object ``parse(fields)`` reads, ``fields`` a tracing reader: for
    the parsers of the other signed objects (headers, blocks, the registry's params)."""
    root = _Node()
    # the placeholders cannot become canonical bytes, which a parser takes after its last
    # field: the trace is whole when the reader was closed (checked below)
    with contextlib.suppress(TypeError, EncodingError):
        parse(_Map(root, name))
    if not root.closed:
        raise RuntimeError(f"the trace of {name} did not reach its end")
    return _to_schema(root, name, "")


def header_schema() -> dict[str, Any]:
    """A block header, traced from ``Header.from_json``."""
    schema = traced(Header.from_json, "header")
    schema["description"] = (
        "A block's header: its chain's log after the block (size, RFC 9162 root), the "
        "previous header's hash, and the heads of other chains it witnesses."
    )
    return schema


def params_schema() -> dict[str, Any]:
    """The registry's network parameters, traced from ``Params.parse``."""
    schema = traced(lambda value: Params.parse(Fields(value, "params")), "params")
    schema["description"] = "Network parameters every node applies identically."
    return schema


def kind_schemas() -> dict[Kind, dict[str, Any]]:
    """Every kind's body schema, in the order of ``ledger.records``' parsers."""
    return {kind: body_schema(kind) for kind in _parsers()}


assert CODE.match("BW")  # the placeholder origin of ``_Map`` is a participant code
