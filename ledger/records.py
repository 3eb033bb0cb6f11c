"""Records: the entries of a chain's Merkle log.

A record on the wire (and in the log) is the RFC 8785 form of::

    {"v": 2, "network": <hex>, "chain": "BW", "kind": "parcel.split",
     "id": <client id>, "time": "2026-03-01T10:00:00Z", "body": {...},
     "sigs": [{"key_id": <hex>, "sig": <hex>}]}        # only when signed

``Record.parse`` checks the bytes are canonical, then every field of the
kind's body (types, formats, ranges, list sizes; unknown fields refused).
The parsed record keeps the exact bytes it came from: its leaf hash is the
RFC 9162 hash of those bytes, and nothing is ever re-serialised to verify.

Weights are integer hundredths of a carat, values integer US cents.

Format version 2 (DESIGN.md section 9): each confidential field of a kind
(``ledger.commit.CONFIDENTIAL``: values, party names and addresses, the
importer's name and address, the seal id) holds a salted commitment
``{"c": <64 hex>}``; the parsed body keeps the commitment's hex digest in
that field. ``make_record`` takes a clear body and commits it; the
record it returns carries the disclosures that open its fields
(``Record.disclosures``, never part of its bytes). A record of version 1
is refused with ``VersionError``.
An origin composition maps a country code to hundredths of a carat; its keys
are every origin that ever contributed to the parcel (a key may hold 0 after
a split of a tiny share, so that "any share" stays visible: DOMAIN rule 9).

One concept: the record and the typed body of each kind, one small class per
kind; its length is the number of kinds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from kpledger.ledger.canonical import Tag, canonical_bytes, from_hex, load_stored, parse_canonical
from kpledger.ledger.commit import Disclosure, Opening, open_body, seal_body
from kpledger.ledger.crypto import PublicKey, Signer
from kpledger.ledger.errors import SchemaError, VersionError
from kpledger.ledger.merkle import leaf_hash
from kpledger.ledger.schema import (
    CARAT_MAX,
    CENTS_MAX,
    CODE,
    HS_CODES,
    INDICATOR,
    LOCAL_ID,
    RECORD_ID,
    Fields,
)

__all__ = [
    "BODY_PARSERS",
    "GOVERNANCE_CHAIN",
    "GOVERNANCE_KINDS",
    "Body",
    "CertificateConfirm",
    "CertificateIssue",
    "CertificateRefuse",
    "CertificateVoid",
    "Child",
    "ClaimRegister",
    "DiagnosticAssess",
    "LicenceBuyer",
    "LicenceDigger",
    "LicenceEnd",
    "Composition",
    "ConfirmLine",
    "Kind",
    "Line",
    "MemberAdmit",
    "MemberChange",
    "KeyReplace",
    "KeyRotate",
    "ParcelMerge",
    "ParcelPurchase",
    "ParcelRegister",
    "ParcelRelease",
    "ParcelSplit",
    "ParcelTransfer",
    "PartyRegister",
    "PartyRevoke",
    "PolicyOrigin",
    "FORMAT_VERSION",
    "Point",
    "BUYER_TYPES",
    "DIGGER_TYPES",
    "END_REASONS",
    "METHODS",
    "REFUSAL_CODES",
    "SCORE_MAX",
    "QUARTER",
    "MAX_PARTNERS",
    "StatsCell",
    "StatsReport",
    "Record",
    "RecordRef",
    "RecordSig",
    "make_record",
    "seal_record",
]

GOVERNANCE_CHAIN = "KP"
#: the record format version this code reads and writes (2: committed confidential fields)
FORMAT_VERSION = 2
MAX_RECORD_BYTES = 256 * 1024
MAX_LINES = 1000
#: log indexes and heights stay exact in RFC 8785 numbers (IEEE 754 doubles)
MAX_INDEX = 2**53 - 1

Composition = tuple[tuple[str, int], ...]
"""Origin composition: sorted (country, hundredths of a carat) pairs."""


class Kind(StrEnum):
    PARTY_REGISTER = "party.register"
    PARTY_REVOKE = "party.revoke"
    PARCEL_REGISTER = "parcel.register"
    PARCEL_TRANSFER = "parcel.transfer"
    PARCEL_SPLIT = "parcel.split"
    PARCEL_MERGE = "parcel.merge"
    CERTIFICATE_ISSUE = "certificate.issue"
    CERTIFICATE_CONFIRM = "certificate.confirm"
    CERTIFICATE_VOID = "certificate.void"
    POLICY_RESTRICT_ORIGIN = "policy.restrict_origin"
    POLICY_LIFT_ORIGIN = "policy.lift_origin"
    KEY_ROTATE = "key.rotate"
    MEMBER_ADMIT = "member.admit"
    MEMBER_SUSPEND = "member.suspend"
    MEMBER_REINSTATE = "member.reinstate"
    KEY_REPLACE = "key.replace"
    CERTIFICATE_REFUSE = "certificate.refuse"
    PARCEL_RELEASE = "parcel.release"
    CLAIM_REGISTER = "claim.register"
    LICENCE_DIGGER = "licence.digger"
    LICENCE_BUYER = "licence.buyer"
    LICENCE_END = "licence.end"
    PARCEL_PURCHASE = "parcel.purchase"
    DIAGNOSTIC_ASSESS = "diagnostic.assess"
    STATS_REPORT = "stats.report"


_KIND_NAMES = frozenset(k.value for k in Kind)
GOVERNANCE_KINDS = frozenset(
    {Kind.MEMBER_ADMIT, Kind.MEMBER_SUSPEND, Kind.MEMBER_REINSTATE, Kind.KEY_REPLACE}
)
PARTY_ROLES = frozenset({"miner", "trader", "exporter", "importer", "manufacturer"})
PARTICIPANT_ROLES = frozenset({"authority", "auditor", "observer"})
#: why an importing authority refuses a shipment (``certificate.refuse``)
REFUSAL_CODES = frozenset(
    {"restricted-origin", "documents", "seal-broken", "weight-discrepancy", "other"}
)
#: how a first sale's stones were mined (``parcel.purchase``)
METHODS = frozenset({"artisanal", "alluvial", "industrial"})
#: who holds a digging licence on a claim, and who may buy from them
DIGGER_TYPES = frozenset({"digger", "cooperative"})
BUYER_TYPES = frozenset({"collector", "comptoir"})
#: why a claim or licence ends before (or at) its validity's end
END_REASONS = frozenset({"revoked", "expired", "surrendered"})
#: coordinates are integer microdegrees (no floats in signed documents)
LAT_MAX = 90_000_000
LON_MAX = 180_000_000
MAX_VERTICES = 200
MAX_ZONES = 50
#: a diagnostic score is on the indicator's own scale, at most 0..100
SCORE_MAX = 100
#: a calendar quarter, as ``stats.report`` names it and ``/v1/stats`` reads it
QUARTER = re.compile(r"\A[12][0-9]{3}-Q[1-4]\Z")
#: the most partners one quarterly report lists in each of its exports and imports
MAX_PARTNERS = 300


def _weight(f: Fields, name: str) -> int:
    return f.integer(name, low=1, high=CARAT_MAX)


def _committed(f: Fields, name: str) -> str:
    """A confidential field: its commitment ``{"c": <hex>}``, kept as the hex digest."""
    return f.commitment(name)


def _composition(value: object, field: str) -> Composition:
    if not isinstance(value, Mapping) or not value or len(value) > 300:
        raise SchemaError("expected an object of 1..300 origins", field=field)
    out: list[tuple[str, int]] = []
    for code, carats in value.items():
        if CODE.match(code) is None:
            raise SchemaError(f"origin {code!r} is not a participant code", field=field)
        if (
            not isinstance(carats, int)
            or isinstance(carats, bool)
            or not (0 <= carats <= CARAT_MAX)
        ):
            raise SchemaError(f"origin {code} must be an integer 0..{CARAT_MAX}", field=field)
        out.append((code, carats))
    return tuple(sorted(out))


@dataclass(frozen=True)
class RecordRef:
    """Where a record sits: its chain, its index in that chain's log, its leaf hash."""

    chain: str
    index: int
    hash: bytes

    @classmethod
    def from_json(cls, value: object, path: str) -> RecordRef:
        f = Fields(value, path)
        ref = cls(
            f.string("chain", pattern=CODE, max_len=8),
            f.integer("index", low=0, high=MAX_INDEX),
            from_hex(f.string("hash", max_len=64), field=f.path("hash"), size=32),
        )
        f.done()
        return ref

    def to_json(self) -> dict[str, Any]:
        return {"chain": self.chain, "index": self.index, "hash": self.hash.hex()}


# ---------------------------------------------------------------- bodies


@dataclass(frozen=True)
class PartyRegister:
    party: str
    name: str  # commitment (hex)
    role: str
    address: str  # commitment (hex)

    @classmethod
    def parse(cls, f: Fields) -> PartyRegister:
        return cls(
            f.string("party", pattern=LOCAL_ID, max_len=56),
            _committed(f, "name"),
            f.choice("role", PARTY_ROLES),
            _committed(f, "address"),
        )


@dataclass(frozen=True)
class PartyRevoke:
    party: str
    reason: str

    @classmethod
    def parse(cls, f: Fields) -> PartyRevoke:
        return cls(f.string("party", pattern=LOCAL_ID, max_len=56), f.string("reason", max_len=300))


@dataclass(frozen=True)
class ParcelRegister:
    parcel: str
    custodian: str
    weight: int
    value: str  # commitment (hex)
    hs: str
    mine: str
    produced: str

    @classmethod
    def parse(cls, f: Fields) -> ParcelRegister:
        return cls(
            f.string("parcel", pattern=LOCAL_ID, max_len=56),
            f.string("custodian", pattern=LOCAL_ID, max_len=56),
            _weight(f, "weight"),
            _committed(f, "value"),
            f.choice("hs", HS_CODES),
            f.string("mine", max_len=120),
            f.date("produced"),
        )


@dataclass(frozen=True)
class ParcelTransfer:
    parcel: str
    to: str
    value: str | None

    @classmethod
    def parse(cls, f: Fields) -> ParcelTransfer:
        return cls(
            f.string("parcel", pattern=LOCAL_ID, max_len=56),
            f.string("to", pattern=LOCAL_ID, max_len=56),
            _committed(f, "value") if f.has("value") else None,
        )


@dataclass(frozen=True)
class Child:
    parcel: str
    weight: int
    value: str  # commitment (hex)
    custodian: str | None


@dataclass(frozen=True)
class ParcelSplit:
    parcel: str
    children: tuple[Child, ...]

    @classmethod
    def parse(cls, f: Fields) -> ParcelSplit:
        parent = f.string("parcel", pattern=LOCAL_ID, max_len=56)
        children: list[Child] = []
        for path, item in f.items("children", low=2, high=MAX_LINES):
            c = Fields(item, path)
            children.append(
                Child(
                    c.string("parcel", pattern=LOCAL_ID, max_len=56),
                    _weight(c, "weight"),
                    _committed(c, "value"),
                    c.optional_string("custodian", pattern=LOCAL_ID, max_len=56),
                )
            )
            c.done()
        _unique([c.parcel for c in children] + [parent], f.path("children"))
        return cls(parent, tuple(children))


@dataclass(frozen=True)
class ParcelMerge:
    """Parents into one child; the child's declared weight and value are the sums."""

    parents: tuple[str, ...]
    parcel: str
    custodian: str
    weight: int
    value: str  # commitment (hex)

    @classmethod
    def parse(cls, f: Fields) -> ParcelMerge:
        parents = tuple(
            _list_id(item, path) for path, item in f.items("parents", low=2, high=MAX_LINES)
        )
        child = f.string("parcel", pattern=LOCAL_ID, max_len=56)
        _unique([*parents, child], f.path("parents"))
        return cls(
            parents,
            child,
            f.string("custodian", pattern=LOCAL_ID, max_len=56),
            _weight(f, "weight"),
            _committed(f, "value"),
        )


@dataclass(frozen=True)
class Line:
    """One parcel on a KP certificate, with what the exporter declares of it."""

    parcel: str
    weight: int
    value: str  # commitment (hex)
    hs: str
    origin: Composition


@dataclass(frozen=True)
class CertificateIssue:
    number: str
    destination: str
    exporter: str
    importer_name: str  # commitment (hex)
    importer_address: str  # commitment (hex)
    lines: tuple[Line, ...]
    carats: int
    value: str  # commitment (hex)
    parcels: int
    origin: str
    issued: str
    expires: str
    seal: str  # commitment (hex)

    @classmethod
    def parse(cls, f: Fields) -> CertificateIssue:
        number = f.string("number", pattern=LOCAL_ID, max_len=56)
        destination = f.string("destination", pattern=CODE, max_len=8)
        exporter = f.string("exporter", pattern=LOCAL_ID, max_len=56)
        importer = f.obj("importer")
        importer_name = _committed(importer, "name")
        importer_address = _committed(importer, "address")
        importer.done()
        lines: list[Line] = []
        for path, item in f.items("lines", low=1, high=MAX_LINES):
            x = Fields(item, path)
            lines.append(
                Line(
                    x.string("parcel", pattern=LOCAL_ID, max_len=56),
                    _weight(x, "weight"),
                    _committed(x, "value"),
                    x.choice("hs", HS_CODES),
                    _composition(x.mapping("origin"), x.path("origin")),
                )
            )
            x.done()
        _unique([line.parcel for line in lines], f.path("lines"))
        return cls(
            number,
            destination,
            exporter,
            importer_name,
            importer_address,
            tuple(lines),
            f.integer("carats", low=1, high=CARAT_MAX),
            _committed(f, "value"),
            f.integer("parcels", low=1, high=MAX_LINES),
            f.string("origin", max_len=8),
            f.date("issued"),
            f.date("expires"),
            _committed(f, "seal"),
        )


@dataclass(frozen=True)
class ConfirmLine:
    parcel: str
    weight: int


@dataclass(frozen=True)
class CertificateConfirm:
    number: str
    ref: RecordRef
    custodian: str
    received: tuple[ConfirmLine, ...]

    @classmethod
    def parse(cls, f: Fields) -> CertificateConfirm:
        number = f.string("number", pattern=LOCAL_ID, max_len=56)
        ref = RecordRef.from_json(f.mapping("ref"), f.path("ref"))
        custodian = f.string("custodian", pattern=LOCAL_ID, max_len=56)
        received: list[ConfirmLine] = []
        for path, item in f.items("received", low=1, high=MAX_LINES):
            x = Fields(item, path)
            received.append(
                ConfirmLine(x.string("parcel", pattern=LOCAL_ID, max_len=56), _weight(x, "weight"))
            )
            x.done()
        _unique([r.parcel for r in received], f.path("received"))
        return cls(number, ref, custodian, tuple(received))


@dataclass(frozen=True)
class CertificateVoid:
    number: str
    reason: str
    importer_height: int

    @classmethod
    def parse(cls, f: Fields) -> CertificateVoid:
        return cls(
            f.string("number", pattern=LOCAL_ID, max_len=56),
            f.string("reason", max_len=300),
            f.integer("importer_height", low=1, high=MAX_INDEX),
        )


@dataclass(frozen=True)
class CertificateRefuse:
    """The importing authority refuses a shipment: the parcels go back to the exporter.

    ``ref`` names the exact issue record, as a confirmation does; ``code`` is
    one of ``REFUSAL_CODES`` and ``reason`` the officer's words.
    """

    number: str
    ref: RecordRef
    code: str
    reason: str

    @classmethod
    def parse(cls, f: Fields) -> CertificateRefuse:
        return cls(
            f.string("number", pattern=LOCAL_ID, max_len=56),
            RecordRef.from_json(f.mapping("ref"), f.path("ref")),
            f.choice("code", REFUSAL_CODES),
            f.string("reason", max_len=300),
        )


@dataclass(frozen=True)
class ParcelRelease:
    """The importing authority releases a parcel held on a discrepancy, saying why."""

    parcel: str
    reason: str

    @classmethod
    def parse(cls, f: Fields) -> ParcelRelease:
        return cls(
            f.string("parcel", pattern=LOCAL_ID, max_len=56), f.string("reason", max_len=300)
        )


@dataclass(frozen=True)
class PolicyOrigin:
    origin: str
    reason: str

    @classmethod
    def parse(cls, f: Fields) -> PolicyOrigin:
        return cls(f.string("origin", pattern=CODE, max_len=8), f.string("reason", max_len=300))


@dataclass(frozen=True)
class KeyRotate:
    key: PublicKey

    @classmethod
    def parse(cls, f: Fields) -> KeyRotate:
        return cls(PublicKey.from_hex(f.string("key", max_len=64), field=f.path("key")))


@dataclass(frozen=True)
class MemberAdmit:
    code: str
    name: str
    role: str
    url: str
    key: PublicKey

    @classmethod
    def parse(cls, f: Fields) -> MemberAdmit:
        return cls(
            f.string("code", pattern=CODE, max_len=8),
            f.string("name", max_len=200),
            f.choice("role", PARTICIPANT_ROLES),
            f.string("url", max_len=300),
            PublicKey.from_hex(f.string("key", max_len=64), field=f.path("key")),
        )


@dataclass(frozen=True)
class MemberChange:
    """member.suspend and member.reinstate."""

    code: str
    reason: str

    @classmethod
    def parse(cls, f: Fields) -> MemberChange:
        return cls(f.string("code", pattern=CODE, max_len=8), f.string("reason", max_len=300))


@dataclass(frozen=True)
class KeyReplace:
    """Emergency key replacement: blocks of ``code`` from ``from_height`` on use ``key``."""

    code: str
    key: PublicKey
    from_height: int
    reason: str

    @classmethod
    def parse(cls, f: Fields) -> KeyReplace:
        return cls(
            f.string("code", pattern=CODE, max_len=8),
            PublicKey.from_hex(f.string("key", max_len=64), field=f.path("key")),
            f.integer("from_height", low=1, high=MAX_INDEX),
            f.string("reason", max_len=300),
        )


# ---------------------------------------------------------------- artisanal chain


@dataclass(frozen=True)
class Point:
    """A position in integer microdegrees (WGS 84): 8_500_000 is 8.5 degrees."""

    lat: int
    lon: int


def _location(f: Fields, name: str) -> tuple[Point, ...]:
    """One point, or a polygon of 3..MAX_VERTICES vertices (never two: a line is no area)."""
    points: list[Point] = []
    for path, item in f.items(name, low=1, high=MAX_VERTICES):
        x = Fields(item, path)
        points.append(
            Point(
                x.integer("lat", low=-LAT_MAX, high=LAT_MAX),
                x.integer("lon", low=-LON_MAX, high=LON_MAX),
            )
        )
        x.done()
    if len(points) == 2:
        raise SchemaError("one point, or a polygon of 3 or more vertices", field=f.path(name))
    return tuple(points)


def _window(f: Fields) -> tuple[str, str]:
    start, end = f.date("valid_from"), f.date("valid_until")
    if end < start:
        raise SchemaError(f"ends {end}, before it starts {start}", field=f.path("valid_until"))
    return start, end


@dataclass(frozen=True)
class ClaimRegister:
    """An artisanal claim or mining area registered by the producing authority."""

    claim: str
    holder: str  # commitment (hex)
    zone: str
    location: tuple[Point, ...]
    valid_from: str
    valid_until: str

    @classmethod
    def parse(cls, f: Fields) -> ClaimRegister:
        claim = f.string("claim", pattern=LOCAL_ID, max_len=56)
        holder = _committed(f, "holder")
        zone = f.string("zone", pattern=LOCAL_ID, max_len=56)
        location = _location(f, "location")
        start, end = _window(f)
        return cls(claim, holder, zone, location, start, end)


@dataclass(frozen=True)
class LicenceDigger:
    """A digger's or a cooperative's licence to dig one claim."""

    licence: str
    holder: str  # commitment (hex)
    type: str
    claim: str
    valid_from: str
    valid_until: str

    @classmethod
    def parse(cls, f: Fields) -> LicenceDigger:
        licence = f.string("licence", pattern=LOCAL_ID, max_len=56)
        holder = _committed(f, "holder")
        kind = f.choice("type", DIGGER_TYPES)
        claim = f.string("claim", pattern=LOCAL_ID, max_len=56)
        start, end = _window(f)
        return cls(licence, holder, kind, claim, start, end)


@dataclass(frozen=True)
class LicenceBuyer:
    """A licensed buyer (collector or comptoir): a registered party, buying in its zones."""

    licence: str
    party: str
    type: str
    zones: tuple[str, ...]
    valid_from: str
    valid_until: str

    @classmethod
    def parse(cls, f: Fields) -> LicenceBuyer:
        licence = f.string("licence", pattern=LOCAL_ID, max_len=56)
        party = f.string("party", pattern=LOCAL_ID, max_len=56)
        kind = f.choice("type", BUYER_TYPES)
        zones = tuple(
            _list_id(item, path) for path, item in f.items("zones", low=1, high=MAX_ZONES)
        )
        _unique(zones, f.path("zones"))
        start, end = _window(f)
        return cls(licence, party, kind, zones, start, end)


@dataclass(frozen=True)
class LicenceEnd:
    """A claim or licence revoked, surrendered or recorded expired, from ``date`` on."""

    licence: str
    reason: str
    date: str
    note: str

    @classmethod
    def parse(cls, f: Fields) -> LicenceEnd:
        return cls(
            f.string("licence", pattern=LOCAL_ID, max_len=56),
            f.choice("reason", END_REASONS),
            f.date("date"),
            f.string("note", max_len=300),
        )


@dataclass(frozen=True)
class ParcelPurchase:
    """First sale: a licensed buyer buys from a licensed digger; a new parcel of that claim."""

    parcel: str
    buyer: str
    digger: str
    claim: str
    method: str
    weight: int
    price: str  # commitment (hex)
    hs: str
    bought: str

    @classmethod
    def parse(cls, f: Fields) -> ParcelPurchase:
        return cls(
            f.string("parcel", pattern=LOCAL_ID, max_len=56),
            f.string("buyer", pattern=LOCAL_ID, max_len=56),
            f.string("digger", pattern=LOCAL_ID, max_len=56),
            f.string("claim", pattern=LOCAL_ID, max_len=56),
            f.choice("method", METHODS),
            _weight(f, "weight"),
            _committed(f, "price"),
            f.choice("hs", HS_CODES),
            f.date("bought"),
        )


@dataclass(frozen=True)
class DiagnosticAssess:
    """One indicator of the authority's periodic self-assessment (Washington Declaration
    Diagnostic Framework): the indicator is named by the network's own list."""

    indicator: str
    score: int
    evidence: str
    assessed: str

    @classmethod
    def parse(cls, f: Fields) -> DiagnosticAssess:
        return cls(
            f.string("indicator", pattern=INDICATOR, max_len=64),
            f.integer("score", low=0, high=SCORE_MAX),
            f.string("evidence", max_len=1000),
            f.date("assessed"),
        )


@dataclass(frozen=True)
class StatsCell:
    """One cell of a quarterly report: carats (hundredths), how many records make it
    (parcels for production, certificates for trade) and its USD in cents, absent
    (None) when fewer than the network's ``min_cell`` records make it."""

    partner: str  # "" for production
    carats: int
    count: int
    value: int | None


def _cell(f: Fields, count_name: str, partner: bool) -> StatsCell:
    cell = StatsCell(
        f.string("partner", pattern=CODE, max_len=8) if partner else "",
        f.integer("carats", low=0, high=CARAT_MAX),
        f.integer(count_name, low=0, high=MAX_INDEX),
        f.optional_integer("value", low=0, high=CENTS_MAX),
    )
    f.done()
    return cell


@dataclass(frozen=True)
class StatsReport:
    """An authority's quarterly KP statistics, sealed on its own chain after the quarter:
    production, exports and imports by partner, in carats and USD. Every field is public
    (the KP publishes these figures); a cell of fewer than ``min_cell`` records carries
    no value, so that no single shipment's value can be read from it (rule S2)."""

    quarter: str
    production: StatsCell
    exports: tuple[StatsCell, ...]
    imports: tuple[StatsCell, ...]

    @classmethod
    def parse(cls, f: Fields) -> StatsReport:
        quarter = f.string("quarter", pattern=QUARTER, max_len=7)
        production = _cell(f.obj("production"), "parcels", partner=False)
        trade: list[tuple[StatsCell, ...]] = []
        for name in ("exports", "imports"):
            cells = tuple(
                _cell(Fields(item, path), "certificates", partner=True)
                for path, item in f.items(name, low=0, high=MAX_PARTNERS)
            )
            partners = [c.partner for c in cells]
            if partners != sorted(set(partners)):
                raise SchemaError("partners must be sorted and distinct", field=f.path(name))
            trade.append(cells)
        return cls(quarter, production, trade[0], trade[1])


Body = (
    PartyRegister
    | PartyRevoke
    | ParcelRegister
    | ParcelTransfer
    | ParcelSplit
    | ParcelMerge
    | CertificateIssue
    | CertificateConfirm
    | CertificateVoid
    | PolicyOrigin
    | KeyRotate
    | MemberAdmit
    | MemberChange
    | KeyReplace
    | CertificateRefuse
    | ParcelRelease
    | ClaimRegister
    | LicenceDigger
    | LicenceBuyer
    | LicenceEnd
    | ParcelPurchase
    | DiagnosticAssess
    | StatsReport
)

_PARSERS: dict[Kind, Any] = {
    Kind.PARTY_REGISTER: PartyRegister.parse,
    Kind.PARTY_REVOKE: PartyRevoke.parse,
    Kind.PARCEL_REGISTER: ParcelRegister.parse,
    Kind.PARCEL_TRANSFER: ParcelTransfer.parse,
    Kind.PARCEL_SPLIT: ParcelSplit.parse,
    Kind.PARCEL_MERGE: ParcelMerge.parse,
    Kind.CERTIFICATE_ISSUE: CertificateIssue.parse,
    Kind.CERTIFICATE_CONFIRM: CertificateConfirm.parse,
    Kind.CERTIFICATE_VOID: CertificateVoid.parse,
    Kind.POLICY_RESTRICT_ORIGIN: PolicyOrigin.parse,
    Kind.POLICY_LIFT_ORIGIN: PolicyOrigin.parse,
    Kind.KEY_ROTATE: KeyRotate.parse,
    Kind.MEMBER_ADMIT: MemberAdmit.parse,
    Kind.MEMBER_SUSPEND: MemberChange.parse,
    Kind.MEMBER_REINSTATE: MemberChange.parse,
    Kind.KEY_REPLACE: KeyReplace.parse,
    Kind.CERTIFICATE_REFUSE: CertificateRefuse.parse,
    Kind.PARCEL_RELEASE: ParcelRelease.parse,
    Kind.CLAIM_REGISTER: ClaimRegister.parse,
    Kind.LICENCE_DIGGER: LicenceDigger.parse,
    Kind.LICENCE_BUYER: LicenceBuyer.parse,
    Kind.LICENCE_END: LicenceEnd.parse,
    Kind.PARCEL_PURCHASE: ParcelPurchase.parse,
    Kind.DIAGNOSTIC_ASSESS: DiagnosticAssess.parse,
    Kind.STATS_REPORT: StatsReport.parse,
}
#: each kind's body parser, read-only (the schema module describes bodies from them)
BODY_PARSERS: Mapping[Kind, Any] = MappingProxyType(_PARSERS)


def _list_id(item: object, path: str) -> str:
    """A parcel id that is itself a list element, refused under the element's own path."""
    try:
        return Fields({"id": item}).string("id", pattern=LOCAL_ID, max_len=56)
    except SchemaError as exc:
        raise SchemaError(exc.message, field=path) from exc


def _unique(ids: Sequence[str], field: str) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise SchemaError(f"{item} appears twice", field=field)
        seen.add(item)


@dataclass(frozen=True)
class RecordSig:
    key_id: str
    sig: bytes


@dataclass(frozen=True)
class Record:
    """One parsed, schema-checked record with the exact bytes it came from."""

    network: str
    chain: str
    kind: Kind
    id: str
    time: str
    body: Body
    sigs: tuple[RecordSig, ...]
    raw: bytes
    leaf: bytes
    #: what opens this record's committed fields, when this process knows it (the
    #: writer's own records); never part of the record's bytes, nor of its equality
    disclosures: tuple[Disclosure, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def parse(cls, raw: bytes) -> Record:
        """Parse a record from its exact canonical bytes."""
        if len(raw) > MAX_RECORD_BYTES:
            raise SchemaError(f"record is {len(raw)} bytes; the limit is {MAX_RECORD_BYTES}")
        return cls._build(parse_canonical(raw, what="record"), raw)

    @classmethod
    def from_store(cls, raw: bytes) -> Record:
        """A record from bytes a store holds, found canonical when their block came in:
        parsed and schema-checked without comparing them with their canonical form again."""
        return cls._build(load_stored(raw), raw)

    @classmethod
    def from_value(cls, value: object) -> Record:
        """Parse a record received as a JSON value (inside a block, say).

        The schema is checked first; it admits only ASCII keys, bounded
        integers and strings, so the canonical bytes can then be taken directly.
        """
        return cls._build(value, None)

    @classmethod
    def _build(cls, value: object, raw: bytes | None) -> Record:
        record = record_structs.fast_record(value, raw)  # typed structs: a valid record at C speed
        if record is not None:
            return record
        f = Fields(value)
        version = value.get("v") if isinstance(value, Mapping) else None
        if version != FORMAT_VERSION and isinstance(version, int) and not isinstance(version, bool):
            raise VersionError(
                f"record format version {version} is not accepted: this network writes and "
                f"reads version {FORMAT_VERSION} (committed confidential fields)",
                version=version,
            )
        f.integer("v", low=FORMAT_VERSION, high=FORMAT_VERSION)
        network = from_hex(f.string("network", max_len=64), field="network", size=32).hex()
        chain = f.string("chain", pattern=CODE, max_len=8)
        kind = Kind(f.choice("kind", _KIND_NAMES))
        record_id = f.string("id", pattern=RECORD_ID, max_len=80)
        time = f.time("time")
        body_fields = f.obj("body")
        body = _PARSERS[kind](body_fields)
        body_fields.done()
        sigs: list[RecordSig] = []
        if f.has("sigs"):
            for path, item in f.items("sigs", low=1, high=64):
                s = Fields(item, path)
                sigs.append(
                    RecordSig(
                        from_hex(
                            s.string("key_id", max_len=64), field=s.path("key_id"), size=32
                        ).hex(),
                        from_hex(s.string("sig", max_len=128), field=s.path("sig"), size=64),
                    )
                )
                s.done()
        f.done()
        if raw is None:
            raw = canonical_bytes(value, checked=True)
            if len(raw) > MAX_RECORD_BYTES:
                raise SchemaError(f"record is {len(raw)} bytes; the limit is {MAX_RECORD_BYTES}")
        return cls(network, chain, kind, record_id, time, body, tuple(sigs), raw, leaf_hash(raw))

    def with_disclosures(self, disclosures: Sequence[Disclosure]) -> Record:
        """This record carrying ``disclosures`` (each checked against its commitment)."""
        for d in disclosures:
            d.check_record(self.leaf, self.raw)
        return replace(self, disclosures=tuple(disclosures))

    def unsigned_bytes(self) -> bytes:
        """The bytes governance signatures cover: the record without ``sigs``."""
        if not self.sigs:
            return self.raw
        value = parse_canonical(self.raw)
        del value["sigs"]
        return canonical_bytes(value)

    def as_json(self) -> dict[str, Any]:
        value: dict[str, Any] = parse_canonical(self.raw)
        return value

    def draft(self) -> dict[str, Any]:
        """The record as an officer submits it: confidential fields in clear, from the
        disclosures it carries (a writer's own record); the writer's node commits them."""
        value = self.as_json()
        if self.disclosures:
            value["body"] = open_body(value, self.disclosures)
        return value

    @property
    def body_json(self) -> dict[str, Any]:
        body: dict[str, Any] = self.as_json()["body"]
        return body


def make_record(
    *,
    network: str,
    chain: str,
    kind: Kind | str,
    record_id: str,
    time: str,
    body: Mapping[str, Any],
    signers: Sequence[Signer] = (),
    salts: Callable[[str], bytes] | None = None,
) -> Record:
    """Build, optionally sign (governance), and parse a record from a clear ``body``.

    Confidential fields are committed (salts from ``salts``, a function of the
    field path, else random); the record carries the disclosures that open them.
    """
    return seal_record(
        {
            "v": FORMAT_VERSION,
            "network": network,
            "chain": chain,
            "kind": str(kind),
            "id": record_id,
            "time": time,
            "body": dict(body),
        },
        salts=salts,
        signers=signers,
    )


def seal_record(
    draft: Mapping[str, Any],
    *,
    salts: Callable[[str], bytes] | None = None,
    signers: Sequence[Signer] = (),
) -> Record:
    """The record of a clear ``draft`` document: its confidential fields committed.

    ``draft`` is a record document whose confidential fields hold clear values
    (what an officer submits); the result carries its disclosures.
    """
    if not isinstance(draft, Mapping):
        raise SchemaError("a record is a JSON object")
    kind = draft.get("kind")
    body = draft.get("body")
    doc: dict[str, Any] = dict(draft)
    openings: tuple[Opening, ...] = ()
    if isinstance(kind, str) and isinstance(body, Mapping):
        doc["body"], openings = seal_body(kind, body, salts=salts)
    if signers:
        unsigned = canonical_bytes(doc)
        doc["sigs"] = [
            {"key_id": s.public.key_id, "sig": s.sign(Tag.SIG_RECORD, unsigned).hex()}
            for s in signers
        ]
    record = Record.parse(canonical_bytes(doc))
    return replace(record, disclosures=tuple(Disclosure.of(record.leaf, o) for o in openings))


# The typed fast path of ``Record._build``, built from the classes above; a record it
# refuses is read by ``Fields`` (and refused, if it is, with Fields' own message).
from kpledger.ledger import record_structs  # noqa: E402
