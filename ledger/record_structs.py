"""The typed fast path of record parsing: each kind's body as ``msgspec`` structs.

``Record._build`` (``ledger.records``) reads a record field by field through
``Fields``, which names the exact field and reason of any refusal. Almost
every record a node reads is valid, and for those that reader's per-field
Python is most of the cost. ``fast_record`` checks the same record in one
``msgspec.convert`` call against typed structs that mirror each parser's
constraints (exact types, lengths, patterns, bounds, closed objects), then
runs in Python what a struct cannot say: real dates and times, distinct
parcel ids, sorted partners, a location of one point or a polygon, a window
that ends after it starts, keys that are Ed25519 points, and that every list
is a ``list`` (``convert`` takes a tuple for one). It builds the very body
classes of ``ledger.records``.

The fast path accepts a subset of what ``Fields`` accepts and nothing
more: where it refuses (or cannot be sure), it answers None and the
record goes through ``Fields``, which accepts it or refuses it with its
own message. So a refusal always reads as it did, and a record accepted
either way is the same ``Record`` (``tests/ledger/test_record_structs.py``
checks both on mutated records of every kind). A string constraint of
``Fields`` (1..max characters, none of ``FORBIDDEN_CHARACTERS``, no
surrounding space, the field's pattern) becomes one regular expression and
a length bound: ``str.strip`` removes only characters the forbidden list
holds, and U+0020.

One concept, a little over 500 lines: one struct per kind's body, and what
builds that kind's body from it; its length is the number of kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from kpledger.ledger.canonical import canonical_bytes
from kpledger.ledger.crypto import PublicKey
from kpledger.ledger.merkle import leaf_hash
from kpledger.ledger.records import (
    BUYER_TYPES,
    DIGGER_TYPES,
    END_REASONS,
    FORMAT_VERSION,
    LAT_MAX,
    LON_MAX,
    MAX_INDEX,
    MAX_LINES,
    MAX_PARTNERS,
    MAX_RECORD_BYTES,
    MAX_VERTICES,
    MAX_ZONES,
    METHODS,
    PARTICIPANT_ROLES,
    PARTY_ROLES,
    QUARTER,
    REFUSAL_CODES,
    SCORE_MAX,
    Body,
    CertificateConfirm,
    CertificateIssue,
    CertificateRefuse,
    CertificateVoid,
    Child,
    ClaimRegister,
    ConfirmLine,
    DiagnosticAssess,
    KeyReplace,
    KeyRotate,
    Kind,
    LicenceBuyer,
    LicenceDigger,
    LicenceEnd,
    Line,
    MemberAdmit,
    MemberChange,
    ParcelMerge,
    ParcelPurchase,
    ParcelRegister,
    ParcelRelease,
    ParcelSplit,
    ParcelTransfer,
    PartyRegister,
    PartyRevoke,
    Point,
    PolicyOrigin,
    Record,
    RecordRef,
    RecordSig,
    StatsCell,
    StatsReport,
)
from kpledger.ledger.schema import (
    CARAT_MAX,
    CENTS_MAX,
    CODE,
    FORBIDDEN_CHARACTERS,
    HS_CODES,
    INDICATOR,
    LOCAL_ID,
    RECORD_ID,
)

__all__ = ["fast_record"]


def _choice(options: frozenset[str]) -> Any:
    """``Fields.choice``: one of ``options`` (each a short ASCII word without spaces)."""
    return Literal[tuple(sorted(options))]


#: what ``Fields.string`` admits without a pattern, as one expression: a first and a last
#: character that is neither forbidden nor a space, and none forbidden between them
_ALLOWED = "[^" + FORBIDDEN_CHARACTERS.pattern[1:-1] + "]"
_EDGE = "[^ " + FORBIDDEN_CHARACTERS.pattern[1:-1] + "]"
_TEXT = rf"\A{_EDGE}(?:{_ALLOWED}*{_EDGE})?\Z"


def _text(max_len: int) -> Any:
    return Annotated[str, Meta(min_length=1, max_length=max_len, pattern=_TEXT)]


# Patterned strings: each pattern admits only printable ASCII without spaces, so it implies
# the forbidden-character and surrounding-space checks of ``Fields.string``.
_LocalId = Annotated[str, Meta(max_length=56, pattern=LOCAL_ID.pattern)]
_Code = Annotated[str, Meta(max_length=8, pattern=CODE.pattern)]
_RecordId = Annotated[str, Meta(max_length=80, pattern=RECORD_ID.pattern)]
_Indicator = Annotated[str, Meta(max_length=64, pattern=INDICATOR.pattern)]
_Quarter = Annotated[str, Meta(max_length=7, pattern=QUARTER.pattern)]
#: ``from_hex(..., size=32)`` / ``size=64`` after ``Fields.string``
_Hex32 = Annotated[str, Meta(pattern=r"\A[0-9a-f]{64}\Z")]
_Hex64 = Annotated[str, Meta(pattern=r"\A[0-9a-f]{128}\Z")]
# Dates and times in ASCII digits (``Fields`` takes any Unicode digit its ``\d`` matches,
# then leaves the verdict to ``fromisoformat``: such a record goes the slow way); whether
# the date is real is checked after.
_Date = Annotated[str, Meta(pattern=r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")]
_Time = Annotated[str, Meta(pattern=r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")]
_Weight = Annotated[int, Meta(ge=1, le=CARAT_MAX)]
_Carats = Annotated[int, Meta(ge=0, le=CARAT_MAX)]
_Count = Annotated[int, Meta(ge=0, le=MAX_INDEX)]
_Cents = Annotated[int, Meta(ge=0, le=CENTS_MAX)]
_Height = Annotated[int, Meta(ge=1, le=MAX_INDEX)]
_Hs = _choice(HS_CODES)
_Reason = _text(300)


def _items(item: Any, low: int, high: int) -> Any:
    return Annotated[list[item], Meta(min_length=low, max_length=high)]


class _Closed(Struct, forbid_unknown_fields=True, kw_only=True):
    """An object that holds exactly its fields (``Fields.done``)."""


class _Commitment(_Closed):
    c: _Hex32


class _Ref(_Closed):
    chain: _Code
    index: Annotated[int, Meta(ge=0, le=MAX_INDEX)]
    hash: _Hex32


class _PartyRegister(_Closed):
    party: _LocalId
    name: _Commitment
    role: _choice(PARTY_ROLES)  # type: ignore[valid-type]
    address: _Commitment


class _PartyRevoke(_Closed):
    party: _LocalId
    reason: _Reason  # type: ignore[valid-type]


class _ParcelRegister(_Closed):
    parcel: _LocalId
    custodian: _LocalId
    weight: _Weight
    value: _Commitment
    hs: _Hs  # type: ignore[valid-type]
    mine: _text(120)  # type: ignore[valid-type]
    produced: _Date


class _ParcelTransfer(_Closed):
    parcel: _LocalId
    to: _LocalId
    value: _Commitment | UnsetType = UNSET


class _Child(_Closed):
    parcel: _LocalId
    weight: _Weight
    value: _Commitment
    custodian: _LocalId | UnsetType = UNSET


class _ParcelSplit(_Closed):
    parcel: _LocalId
    children: _items(_Child, 2, MAX_LINES)  # type: ignore[valid-type]


class _ParcelMerge(_Closed):
    parents: _items(_LocalId, 2, MAX_LINES)  # type: ignore[valid-type]
    parcel: _LocalId
    custodian: _LocalId
    weight: _Weight
    value: _Commitment


class _Importer(_Closed):
    name: _Commitment
    address: _Commitment


class _Line(_Closed):
    parcel: _LocalId
    weight: _Weight
    value: _Commitment
    hs: _Hs  # type: ignore[valid-type]
    origin: Annotated[
        dict[Annotated[str, Meta(pattern=CODE.pattern)], _Carats],
        Meta(min_length=1, max_length=300),
    ]


class _CertificateIssue(_Closed):
    number: _LocalId
    destination: _Code
    exporter: _LocalId
    importer: _Importer
    lines: _items(_Line, 1, MAX_LINES)  # type: ignore[valid-type]
    carats: _Weight
    value: _Commitment
    parcels: Annotated[int, Meta(ge=1, le=MAX_LINES)]
    origin: _text(8)  # type: ignore[valid-type]
    issued: _Date
    expires: _Date
    seal: _Commitment


class _ConfirmLine(_Closed):
    parcel: _LocalId
    weight: _Weight


class _CertificateConfirm(_Closed):
    number: _LocalId
    ref: _Ref
    custodian: _LocalId
    received: _items(_ConfirmLine, 1, MAX_LINES)  # type: ignore[valid-type]


class _CertificateVoid(_Closed):
    number: _LocalId
    reason: _Reason  # type: ignore[valid-type]
    importer_height: _Height


class _CertificateRefuse(_Closed):
    number: _LocalId
    ref: _Ref
    code: _choice(REFUSAL_CODES)  # type: ignore[valid-type]
    reason: _Reason  # type: ignore[valid-type]


class _ParcelRelease(_Closed):
    parcel: _LocalId
    reason: _Reason  # type: ignore[valid-type]


class _PolicyOrigin(_Closed):
    origin: _Code
    reason: _Reason  # type: ignore[valid-type]


class _KeyRotate(_Closed):
    key: _Hex32


class _MemberAdmit(_Closed):
    code: _Code
    name: _text(200)  # type: ignore[valid-type]
    role: _choice(PARTICIPANT_ROLES)  # type: ignore[valid-type]
    url: _Reason  # type: ignore[valid-type]
    key: _Hex32


class _MemberChange(_Closed):
    code: _Code
    reason: _Reason  # type: ignore[valid-type]


class _KeyReplace(_Closed):
    code: _Code
    key: _Hex32
    from_height: _Height
    reason: _Reason  # type: ignore[valid-type]


class _Point(_Closed):
    lat: Annotated[int, Meta(ge=-LAT_MAX, le=LAT_MAX)]
    lon: Annotated[int, Meta(ge=-LON_MAX, le=LON_MAX)]


class _ClaimRegister(_Closed):
    claim: _LocalId
    holder: _Commitment
    zone: _LocalId
    location: _items(_Point, 1, MAX_VERTICES)  # type: ignore[valid-type]
    valid_from: _Date
    valid_until: _Date


class _LicenceDigger(_Closed):
    licence: _LocalId
    holder: _Commitment
    type: _choice(DIGGER_TYPES)  # type: ignore[valid-type]
    claim: _LocalId
    valid_from: _Date
    valid_until: _Date


class _LicenceBuyer(_Closed):
    licence: _LocalId
    party: _LocalId
    type: _choice(BUYER_TYPES)  # type: ignore[valid-type]
    zones: _items(_LocalId, 1, MAX_ZONES)  # type: ignore[valid-type]
    valid_from: _Date
    valid_until: _Date


class _LicenceEnd(_Closed):
    licence: _LocalId
    reason: _choice(END_REASONS)  # type: ignore[valid-type]
    date: _Date
    note: _Reason  # type: ignore[valid-type]


class _ParcelPurchase(_Closed):
    parcel: _LocalId
    buyer: _LocalId
    digger: _LocalId
    claim: _LocalId
    method: _choice(METHODS)  # type: ignore[valid-type]
    weight: _Weight
    price: _Commitment
    hs: _Hs  # type: ignore[valid-type]
    bought: _Date


class _DiagnosticAssess(_Closed):
    indicator: _Indicator
    score: Annotated[int, Meta(ge=0, le=SCORE_MAX)]
    evidence: _text(1000)  # type: ignore[valid-type]
    assessed: _Date


class _ProductionCell(_Closed):
    carats: _Carats
    parcels: _Count
    value: _Cents | UnsetType = UNSET


class _TradeCell(_Closed):
    partner: _Code
    carats: _Carats
    certificates: _Count
    value: _Cents | UnsetType = UNSET


class _StatsReport(_Closed):
    quarter: _Quarter
    production: _ProductionCell
    exports: _items(_TradeCell, 0, MAX_PARTNERS)  # type: ignore[valid-type]
    imports: _items(_TradeCell, 0, MAX_PARTNERS)  # type: ignore[valid-type]


class _Sig(_Closed):
    key_id: _Hex32
    sig: _Hex64


class _Refused(Exception):
    """A check after the struct failed: the record goes through ``Fields``."""


def _date(text: str) -> str:
    """``parse_date`` after the struct's pattern: a ValueError sends the record the slow way."""
    date.fromisoformat(text)
    return text


def _distinct(ids: list[str]) -> None:
    if len(set(ids)) != len(ids):
        raise _Refused


def _window(body: Any) -> tuple[str, str]:
    start, end = _date(body.valid_from), _date(body.valid_until)
    if end < start:
        raise _Refused
    return start, end


def _value(v: _Commitment | UnsetType) -> str | None:
    return None if isinstance(v, UnsetType) else v.c


def _cents(v: int | UnsetType) -> int | None:
    return None if isinstance(v, UnsetType) else v


def _ref(r: _Ref) -> RecordRef:
    return RecordRef(r.chain, r.index, bytes.fromhex(r.hash))


def _party_register(b: _PartyRegister) -> PartyRegister:
    return PartyRegister(b.party, b.name.c, b.role, b.address.c)


def _parcel_register(b: _ParcelRegister) -> ParcelRegister:
    return ParcelRegister(
        b.parcel, b.custodian, b.weight, b.value.c, b.hs, b.mine, _date(b.produced)
    )


def _parcel_split(b: _ParcelSplit) -> ParcelSplit:
    children = tuple(
        Child(c.parcel, c.weight, c.value.c, None if c.custodian is UNSET else c.custodian)
        for c in b.children
    )
    _distinct([c.parcel for c in children] + [b.parcel])
    return ParcelSplit(b.parcel, children)


def _parcel_merge(b: _ParcelMerge) -> ParcelMerge:
    _distinct([*b.parents, b.parcel])
    return ParcelMerge(tuple(b.parents), b.parcel, b.custodian, b.weight, b.value.c)


def _certificate_issue(b: _CertificateIssue) -> CertificateIssue:
    lines = tuple(
        Line(x.parcel, x.weight, x.value.c, x.hs, tuple(sorted(x.origin.items()))) for x in b.lines
    )
    _distinct([x.parcel for x in lines])
    return CertificateIssue(
        b.number,
        b.destination,
        b.exporter,
        b.importer.name.c,
        b.importer.address.c,
        lines,
        b.carats,
        b.value.c,
        b.parcels,
        b.origin,
        _date(b.issued),
        _date(b.expires),
        b.seal.c,
    )


def _certificate_confirm(b: _CertificateConfirm) -> CertificateConfirm:
    received = tuple(ConfirmLine(x.parcel, x.weight) for x in b.received)
    _distinct([x.parcel for x in received])
    return CertificateConfirm(b.number, _ref(b.ref), b.custodian, received)


def _claim_register(b: _ClaimRegister) -> ClaimRegister:
    if len(b.location) == 2:
        raise _Refused
    location = tuple(Point(p.lat, p.lon) for p in b.location)
    start, end = _window(b)
    return ClaimRegister(b.claim, b.holder.c, b.zone, location, start, end)


def _licence_buyer(b: _LicenceBuyer) -> LicenceBuyer:
    _distinct(b.zones)
    start, end = _window(b)
    return LicenceBuyer(b.licence, b.party, b.type, tuple(b.zones), start, end)


def _trade(cells: list[_TradeCell]) -> tuple[StatsCell, ...]:
    partners = [c.partner for c in cells]
    if partners != sorted(set(partners)):
        raise _Refused
    return tuple(StatsCell(c.partner, c.carats, c.certificates, _cents(c.value)) for c in cells)


def _stats_report(b: _StatsReport) -> StatsReport:
    p = b.production
    production = StatsCell("", p.carats, p.parcels, _cents(p.value))
    return StatsReport(b.quarter, production, _trade(b.exports), _trade(b.imports))


#: each kind's body struct, what builds its body from it, and the body's list fields
_KINDS: dict[Kind, tuple[type[_Closed], Callable[[Any], Body], tuple[str, ...]]] = {
    Kind.PARTY_REGISTER: (_PartyRegister, _party_register, ()),
    Kind.PARTY_REVOKE: (_PartyRevoke, lambda b: PartyRevoke(b.party, b.reason), ()),
    Kind.PARCEL_REGISTER: (_ParcelRegister, _parcel_register, ()),
    Kind.PARCEL_TRANSFER: (
        _ParcelTransfer,
        lambda b: ParcelTransfer(b.parcel, b.to, _value(b.value)),
        (),
    ),
    Kind.PARCEL_SPLIT: (_ParcelSplit, _parcel_split, ("children",)),
    Kind.PARCEL_MERGE: (_ParcelMerge, _parcel_merge, ("parents",)),
    Kind.CERTIFICATE_ISSUE: (_CertificateIssue, _certificate_issue, ("lines",)),
    Kind.CERTIFICATE_CONFIRM: (_CertificateConfirm, _certificate_confirm, ("received",)),
    Kind.CERTIFICATE_VOID: (
        _CertificateVoid,
        lambda b: CertificateVoid(b.number, b.reason, b.importer_height),
        (),
    ),
    Kind.POLICY_RESTRICT_ORIGIN: (_PolicyOrigin, lambda b: PolicyOrigin(b.origin, b.reason), ()),
    Kind.POLICY_LIFT_ORIGIN: (_PolicyOrigin, lambda b: PolicyOrigin(b.origin, b.reason), ()),
    Kind.KEY_ROTATE: (_KeyRotate, lambda b: KeyRotate(PublicKey.from_hex(b.key)), ()),
    Kind.MEMBER_ADMIT: (
        _MemberAdmit,
        lambda b: MemberAdmit(b.code, b.name, b.role, b.url, PublicKey.from_hex(b.key)),
        (),
    ),
    Kind.MEMBER_SUSPEND: (_MemberChange, lambda b: MemberChange(b.code, b.reason), ()),
    Kind.MEMBER_REINSTATE: (_MemberChange, lambda b: MemberChange(b.code, b.reason), ()),
    Kind.KEY_REPLACE: (
        _KeyReplace,
        lambda b: KeyReplace(b.code, PublicKey.from_hex(b.key), b.from_height, b.reason),
        (),
    ),
    Kind.CERTIFICATE_REFUSE: (
        _CertificateRefuse,
        lambda b: CertificateRefuse(b.number, _ref(b.ref), b.code, b.reason),
        (),
    ),
    Kind.PARCEL_RELEASE: (_ParcelRelease, lambda b: ParcelRelease(b.parcel, b.reason), ()),
    Kind.CLAIM_REGISTER: (_ClaimRegister, _claim_register, ("location",)),
    Kind.LICENCE_DIGGER: (
        _LicenceDigger,
        lambda b: LicenceDigger(b.licence, b.holder.c, b.type, b.claim, *_window(b)),
        (),
    ),
    Kind.LICENCE_BUYER: (_LicenceBuyer, _licence_buyer, ("zones",)),
    Kind.LICENCE_END: (
        _LicenceEnd,
        lambda b: LicenceEnd(b.licence, b.reason, _date(b.date), b.note),
        (),
    ),
    Kind.PARCEL_PURCHASE: (
        _ParcelPurchase,
        lambda b: ParcelPurchase(
            b.parcel,
            b.buyer,
            b.digger,
            b.claim,
            b.method,
            b.weight,
            b.price.c,
            b.hs,
            _date(b.bought),
        ),
        (),
    ),
    Kind.DIAGNOSTIC_ASSESS: (
        _DiagnosticAssess,
        lambda b: DiagnosticAssess(b.indicator, b.score, b.evidence, _date(b.assessed)),
        (),
    ),
    Kind.STATS_REPORT: (_StatsReport, _stats_report, ("exports", "imports")),
}


def _envelope(kind: Kind, body: type[_Closed]) -> type[Struct]:
    """The whole record of ``kind``: its envelope, tagged by ``kind``, around its body."""
    return msgspec.defstruct(
        f"_Record_{kind.name}",
        [
            ("v", Literal[FORMAT_VERSION]),
            ("network", _Hex32),
            ("chain", _Code),
            ("id", _RecordId),
            ("time", _Time),
            ("body", body),
            ("sigs", _items(_Sig, 1, 64) | UnsetType, UNSET),
        ],
        bases=(_Closed,),
        tag_field="kind",
        tag=str(kind),
    )


#: each kind's record struct by the kind's name (one struct per ``convert``: msgspec keeps
#: the checks of a struct type with it, while a union would be analysed again on each call)
_ENVELOPES: dict[object, tuple[type[Struct], Kind, Callable[[Any], Body], tuple[str, ...]]] = {
    str(kind): (_envelope(kind, body), kind, build, lists)
    for kind, (body, build, lists) in _KINDS.items()
}


def _plain_lists(value: Mapping[str, Any], names: tuple[str, ...]) -> bool:
    """Every list of the record is a ``list``, as ``Fields.items`` requires (``convert``
    takes a tuple for one); ``names`` are the body's lists. Lists are never nested in a
    record."""
    sigs = value.get("sigs")
    if sigs is not None and type(sigs) is not list:
        return False
    if names:
        body = value["body"]
        for name in names:
            if type(body[name]) is not list:
                return False
    return True


def fast_record(value: object, raw: bytes | None) -> Record | None:
    """``value`` (with ``raw``, its bytes, when known) as a ``Record``, or None when the
    typed structs refuse it: ``Record._build`` then reads it with ``Fields``."""
    if type(value) is not dict:
        return None
    name = value.get("kind")
    envelope = _ENVELOPES.get(name) if type(name) is str else None
    if envelope is None:
        return None
    struct, kind, build, lists = envelope
    try:
        parsed: Any = msgspec.convert(value, struct, strict=True)
        if not _plain_lists(value, lists):
            return None
        body = build(parsed.body)
        datetime.fromisoformat(parsed.time)  # ``parse_time`` after the struct's pattern
        sigs = (
            ()
            if parsed.sigs is UNSET
            else tuple(RecordSig(s.key_id, bytes.fromhex(s.sig)) for s in parsed.sigs)
        )
        if raw is None:
            raw = canonical_bytes(value, checked=True)
            if len(raw) > MAX_RECORD_BYTES:
                return None
    except Exception:  # noqa: BLE001 - whatever failed, Fields reads the record and names it
        return None
    return Record(
        parsed.network, parsed.chain, kind, parsed.id, parsed.time, body, sigs, raw, leaf_hash(raw)
    )
