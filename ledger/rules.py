"""The custody rules: one pure function per record kind.

``apply_record(state, record, index, ctx)`` checks a record against the state
it would change and, only when every check passes, writes its effects into
``state`` (a ``State`` layer). A check that fails raises the one specific
``RuleViolation`` subclass of ``ledger.errors`` for that rule, naming the field
and the rule; nothing has been written at that point.

Rule numbers are those of DOMAIN.md "Rules the ledger enforces":

1. only the holding jurisdiction acts on a parcel; custodians are active parties
2. a parcel is spent once
3. mass conserved on split and merge (value conserved on split is a disclosure
   rule: ``ledger.disclosed``, checked where the values are known, never here)
4. origin composition carried through split and merge (and declared truly on export)
5. certificates: active destination, rough HS codes, lines sum to the carats
   (their values' sum is a disclosure rule),
   issue <= expiry, unique number
6. only the named importer confirms, once, before expiry, referencing the
   exact issue record; weight outside tolerance is a discrepancy
6. (also) the named importer may refuse an open certificate instead, with a
   reason code; its parcels return to the exporter. Goods held on a
   discrepancy are released by the authority holding them, with a reason
7. the issuer voids an unconfirmed certificate; its parcels return
8. nothing deleted or rewritten: ids are never reused
9. an importer's origin restrictions refuse any shipment holding a restricted share

Quarterly statistics (``stats.report``, README "Commercial confidentiality"):

S1. one report per authority and quarter (its record id is ``stats-<quarter>``),
    sealed in a block dated after the quarter's last day; partners sorted,
    distinct, never the reporting chain; a trade cell counts at least one certificate
S2. a cell of fewer than the network's ``min_cell`` records carries no USD, one of
    at least that many carries it (carats and counts are checked against the
    public records by the audit report, not here: a certificate refused after
    the report would otherwise make a valid block invalid)

The artisanal chain (README, "Artisanal and alluvial production") adds rules A1-A4
on the producing authority's own chain:

A1. a first sale (``parcel.purchase``) needs the buyer's licence valid on its date
A2. ... and the digger's (or cooperative's) licence valid on that date, for that claim
A3. ... and the claim active on that date and in one of the buyer's zones
A4. claims and licences have new ids of the chain; a digger's claim is registered;
    a claim or licence ends once, not before it starts

Cross-chain facts are read as of the block's witnessed view (``Context``):
governance membership at the witnessed governance size, other chains'
records only within the witnessed prefix, times from the witnessed headers.

One concept: the state machine, one pure function per record kind numbered
as in DOMAIN.md; its length is the number of kinds and rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from kpledger.ledger.blocks import Header
from kpledger.ledger.canonical import Tag
from kpledger.ledger.errors import (
    AlreadySpent,
    BuyerLicenceInvalid,
    CertificateInvalid,
    ClaimInvalid,
    ConfirmationInvalid,
    CustodyConflict,
    DiggerLicenceInvalid,
    DuplicateRecord,
    FutureDated,
    GovernanceInvalid,
    InactiveParty,
    KeyChangeInvalid,
    MassNotConserved,
    OriginNotCarried,
    ParticipantNotActive,
    RefusalInvalid,
    RegistryInvalid,
    ReleaseInvalid,
    RestrictedOrigin,
    StatsCellDisclosed,
    StatsReportInvalid,
    ThresholdError,
    UnknownReference,
    VoidInvalid,
    WitnessInvalid,
    WrongJurisdiction,
)
from kpledger.ledger.records import (
    BUYER_TYPES,
    DIGGER_TYPES,
    GOVERNANCE_CHAIN,
    GOVERNANCE_KINDS,
    CertificateConfirm,
    CertificateIssue,
    CertificateRefuse,
    CertificateVoid,
    ClaimRegister,
    Composition,
    DiagnosticAssess,
    KeyReplace,
    KeyRotate,
    Kind,
    LicenceBuyer,
    LicenceDigger,
    LicenceEnd,
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
    PolicyOrigin,
    Record,
    RecordRef,
    StatsCell,
    StatsReport,
)
from kpledger.ledger.registry import Registry, verify_threshold
from kpledger.ledger.state import (
    Assessment,
    Certificate,
    CertificateStatus,
    Edge,
    KeyEvent,
    Licence,
    MemberEvent,
    Parcel,
    ParcelEvent,
    ParcelStatus,
    Party,
    Purchase,
    State,
    key_at,
    member_active,
    member_role,
)

__all__ = [
    "Context",
    "allocate_origin",
    "apply_record",
    "certificate_origin",
    "witnessed_median_time",
]


@dataclass(frozen=True)
class Context:
    """What a record is judged against besides state: its block's view of the network.

    ``time`` is the block's header time (for a record not yet sealed, the
    time it would be sealed at); ``witness`` maps each witnessed chain to the
    header the block names; ``kp_size`` is the governance log size witnessed.
    ``forks`` maps each chain with equivocation evidence to its log size at
    its last common header: records of such a chain at or past that index
    are in its forked part, which no other chain's record may rely on (the
    witness of a forked chain is already capped there, see
    ``ledger.chain.resolve_witness``). ``heights`` and ``fork_heights`` bound
    a ``key.replace``'s ``from_height`` (``_key_replace``).
    """

    registry: Registry
    chain: str
    height: int
    time: str
    witness: Mapping[str, Header]
    forks: Mapping[str, int] = field(default_factory=dict)
    #: the height of each chain the block's header names (before any cap)
    heights: Mapping[str, int] = field(default_factory=dict)
    #: each chain with equivocation evidence held -> its fork height
    fork_heights: Mapping[str, int] = field(default_factory=dict)

    @property
    def kp_size(self) -> int:
        if self.chain == GOVERNANCE_CHAIN:
            return 2**63  # the governance chain sees its own whole prefix
        kp = self.witness.get(GOVERNANCE_CHAIN)
        return 0 if kp is None else kp.size


# ------------------------------------------------------------------ helpers


def _in_fork(ref: RecordRef | None, ctx: Context) -> bool:
    """Whether ``ref`` lies in the forked part of a chain shown to equivocate."""
    if ref is None:
        return False
    common = ctx.forks.get(ref.chain)
    return common is not None and ref.index >= common


def _status(cert: Certificate, ctx: Context) -> CertificateStatus:
    """A certificate's status, not counting a confirmation or void from a forked part.

    A node that took one version of a fork may hold a certificate closed by a
    record the other nodes never saw; for the rules, every node counts it as
    open, as the nodes that took the other version do.
    """
    if cert.closed_ref is not None and _in_fork(cert.closed_ref, ctx):
        return CertificateStatus.ISSUED
    return cert.status


def _seconds(time_text: str) -> int:
    """Seconds since 2000-01-01 of an RFC 3339 UTC time (for comparing and medians)."""
    moment = date.fromisoformat(time_text[:10])
    hh, mm, ss = int(time_text[11:13]), int(time_text[14:16]), int(time_text[17:19])
    return (moment - date(2000, 1, 1)).days * 86_400 + hh * 3_600 + mm * 60 + ss


def witnessed_median_time(ctx: Context) -> str:
    """The median time of the block's own header and the authority chains it witnesses.

    The governance chain is left out (its blocks are sealed rarely, by
    whoever holds a governance key). With an even count the lower middle is
    taken, so that no single clock ahead of the others moves it.
    """
    times = sorted(
        [ctx.time, *(h.time for c, h in ctx.witness.items() if c != GOVERNANCE_CHAIN)],
        key=_seconds,
    )
    return times[(len(times) - 1) // 2]


def _new_id(state: State, new_id: str, ctx: Context, field: str) -> None:
    """Ids made on a chain start with its code, so two chains can never mint the same one."""
    if not new_id.startswith(ctx.chain + "-"):
        raise WrongJurisdiction(f"new ids on {ctx.chain} start with {ctx.chain}-", field=field)
    if state.parcel(new_id) is not None:
        raise DuplicateRecord(f"parcel {new_id} already exists; ids are never reused", field=field)


def _holding(state: State, parcel_id: str, ctx: Context, field: str) -> Parcel:
    parcel = state.parcel(parcel_id)
    if parcel is None:
        raise UnknownReference(f"no parcel {parcel_id}", field=field)
    if parcel.chain != ctx.chain:
        raise WrongJurisdiction(
            f"parcel {parcel_id} is under {parcel.chain}, not {ctx.chain}", field=field
        )
    if parcel.status is not ParcelStatus.ACTIVE:
        raise AlreadySpent(f"parcel {parcel_id} is {parcel.status.value}", field=field)
    if parcel.certificate is not None:
        _return_witnessed(state, parcel, ctx, field)
    return parcel


def _return_witnessed(state: State, parcel: Parcel, ctx: Context, field: str) -> None:
    """A parcel sent back by an importer's refusal is the exporter's again only in blocks
    that witness the refusal: the verdict must not depend on when a node received it."""
    cert = state.certificate(parcel.certificate or "")
    if cert is None or cert.status is not CertificateStatus.REFUSED:
        return
    refusal = cert.closed_ref
    if refusal is None or refusal.chain == ctx.chain:
        return
    seen = ctx.witness.get(refusal.chain)
    if seen is None or seen.size <= refusal.index:
        raise WitnessInvalid(
            f"parcel {parcel.id} came back by {refusal.chain}'s refusal of {cert.number}, "
            "which the block does not witness",
            field=field,
        )


def _custodian(state: State, party_id: str, ctx: Context, field: str) -> Party:
    party = state.party(party_id)
    if party is None or party.chain != ctx.chain:
        raise InactiveParty(f"{party_id} is not a party registered by {ctx.chain}", field=field)
    if not party.active:
        raise InactiveParty(f"party {party_id} is revoked", field=field)
    return party


def _authority_active(ctx: Context, state: State, code: str, field: str) -> None:
    if member_role(state, code, ctx.kp_size) != "authority":
        raise ParticipantNotActive(f"{code} is not a participant authority", field=field)
    if not member_active(state, code, ctx.kp_size):
        raise ParticipantNotActive(f"{code} is suspended", field=field)


def allocate_origin(origin: Composition, weights: Sequence[int]) -> list[Composition]:
    """Share a parent's origin composition among children of the given weights, exactly.

    Each child gets, for every origin, its proportional share of what is
    left (largest remainder, ties to the lower country code); the last child
    takes the rest. Every child sums to its weight, every origin sums to the
    parent's, and every child keeps every origin key (possibly at 0) so that
    no share of an origin can be washed out by splitting.
    """
    left = dict(origin)
    left_total = sum(left.values())
    out: list[Composition] = []
    for i, w in enumerate(weights):
        if i == len(weights) - 1:
            out.append(tuple(sorted(left.items())))
            break
        share = {c: (w * q) // left_total for c, q in left.items()}
        rest = w - sum(share.values())
        order = sorted(left, key=lambda c: (-((w * left[c]) % left_total), c))
        for c in order[:rest]:
            share[c] += 1
        out.append(tuple(sorted(share.items())))
        for c, q in share.items():
            left[c] -= q
        left_total -= w
    return out


def certificate_origin(lines: Sequence[Composition]) -> str:
    """Annex I "country of origin": the one origin of every line, else "mixed"."""
    origins = {c for comp in lines for c, _ in comp}
    return next(iter(origins)) if len(origins) == 1 else "mixed"


def _events(parcels: Sequence[str], ref: RecordRef, ctx: Context, kind: Kind) -> list[ParcelEvent]:
    return [ParcelEvent(p, ref, ctx.height, kind.value) for p in parcels]


# ------------------------------------------------------------------ parties


def _party_register(state: State, b: PartyRegister, ref: RecordRef, ctx: Context) -> None:
    if not b.party.startswith(ctx.chain + "-"):
        raise WrongJurisdiction(
            f"parties of {ctx.chain} have ids starting {ctx.chain}-", field="body.party"
        )
    if state.party(b.party) is not None:
        raise DuplicateRecord(f"party {b.party} is already registered", field="body.party")
    state.put_party(Party(b.party, ctx.chain, b.name, b.role, b.address, True, ref))


def _party_revoke(state: State, b: PartyRevoke, ref: RecordRef, ctx: Context) -> None:
    party = _custodian(state, b.party, ctx, "body.party")
    state.put_party(replace(party, active=False))


# ------------------------------------------------------------------ parcels


def _parcel_register(state: State, b: ParcelRegister, ref: RecordRef, ctx: Context) -> None:
    _new_id(state, b.parcel, ctx, "body.parcel")
    if b.produced > ctx.time[:10]:
        raise FutureDated(
            f"produced {b.produced}, after the block's date {ctx.time[:10]}",
            field="body.produced",
        )
    _custodian(state, b.custodian, ctx, "body.custodian")
    state.put_parcel(
        Parcel(
            b.parcel,
            ctx.chain,
            b.custodian,
            ParcelStatus.ACTIVE,
            b.weight,
            b.value,
            b.hs,
            ((ctx.chain, b.weight),),
            None,
            ref,
        )
    )
    state.add_events(_events([b.parcel], ref, ctx, Kind.PARCEL_REGISTER))


def _parcel_transfer(state: State, b: ParcelTransfer, ref: RecordRef, ctx: Context) -> None:
    parcel = _holding(state, b.parcel, ctx, "body.parcel")
    _custodian(state, b.to, ctx, "body.to")
    value = parcel.value if b.value is None else b.value
    state.put_parcel(replace(parcel, custodian=b.to, value=value))
    state.add_events(_events([b.parcel], ref, ctx, Kind.PARCEL_TRANSFER))


def _parcel_split(state: State, b: ParcelSplit, ref: RecordRef, ctx: Context) -> None:
    parent = _holding(state, b.parcel, ctx, "body.parcel")
    for i, child in enumerate(b.children):
        _new_id(state, child.parcel, ctx, f"body.children[{i}].parcel")
        _custodian(
            state, child.custodian or parent.custodian or "", ctx, f"body.children[{i}].custodian"
        )
    weight = sum(c.weight for c in b.children)
    if weight != parent.weight:
        raise MassNotConserved(
            f"children weigh {weight} hundredths of a carat, the parent {parent.weight}",
            field="body.children",
        )
    origins = allocate_origin(parent.origin, [c.weight for c in b.children])
    claims = (
        allocate_origin(parent.claims, [c.weight for c in b.children])
        if parent.claims
        else [()] * len(b.children)
    )
    state.put_parcel(replace(parent, status=ParcelStatus.SPENT))
    for child, origin, claim in zip(b.children, origins, claims, strict=True):
        state.put_parcel(
            Parcel(
                child.parcel,
                ctx.chain,
                child.custodian or parent.custodian,
                ParcelStatus.ACTIVE,
                child.weight,
                child.value,
                parent.hs,
                origin,
                None,
                ref,
                claim,
            )
        )
    state.add_edges(Edge(parent.id, c.parcel, ref) for c in b.children)
    state.add_events(
        _events([parent.id, *(c.parcel for c in b.children)], ref, ctx, Kind.PARCEL_SPLIT)
    )


def _parcel_merge(state: State, b: ParcelMerge, ref: RecordRef, ctx: Context) -> None:
    parents = [_holding(state, p, ctx, f"body.parents[{i}]") for i, p in enumerate(b.parents)]
    _new_id(state, b.parcel, ctx, "body.parcel")
    _custodian(state, b.custodian, ctx, "body.custodian")
    _same_custodian(parents)
    weight = sum(p.weight for p in parents)
    if weight != b.weight:
        raise MassNotConserved(
            f"parents weigh {weight} hundredths of a carat, the child declares {b.weight}",
            field="body.weight",
        )
    hs = {p.hs for p in parents}
    if len(hs) != 1:
        raise OriginNotCarried(
            f"parents carry different HS codes {sorted(hs)}", field="body.parents"
        )
    origin: dict[str, int] = {}
    claims: dict[str, int] = {}
    for p in parents:
        for c, q in p.origin:
            origin[c] = origin.get(c, 0) + q
        for c, q in p.claims:
            claims[c] = claims.get(c, 0) + q
    for p in parents:
        state.put_parcel(replace(p, status=ParcelStatus.SPENT))
    state.put_parcel(
        Parcel(
            b.parcel,
            ctx.chain,
            b.custodian,
            ParcelStatus.ACTIVE,
            weight,
            b.value,
            hs.pop(),
            tuple(sorted(origin.items())),
            None,
            ref,
            tuple(sorted(claims.items())),
        )
    )
    state.add_edges(Edge(p.id, b.parcel, ref) for p in parents)
    state.add_events(_events([*b.parents, b.parcel], ref, ctx, Kind.PARCEL_MERGE))


def _same_custodian(parents: Sequence[Parcel]) -> None:
    """1. a merge assorts one custodian's goods: it never takes a parcel from another
    custodian (that needs the transfer record, on which custody rests)."""
    holder = parents[0].custodian
    for i, p in enumerate(parents):
        if p.custodian != holder:
            raise CustodyConflict(
                f"parcel {p.id} is held by {p.custodian}, not {holder} like "
                f"{parents[0].id}; transfer it before merging",
                field=f"body.parents[{i}]",
            )


def _parcel_release(state: State, b: ParcelRelease, ref: RecordRef, ctx: Context) -> None:
    parcel = state.parcel(b.parcel)
    if parcel is None:
        raise UnknownReference(f"no parcel {b.parcel}", field="body.parcel")
    if parcel.chain != ctx.chain:
        raise WrongJurisdiction(
            f"parcel {b.parcel} is under {parcel.chain}, not {ctx.chain}", field="body.parcel"
        )
    if parcel.status is not ParcelStatus.HELD:
        raise ReleaseInvalid(
            f"parcel {b.parcel} is {parcel.status.value}, not held on a discrepancy",
            field="body.parcel",
        )
    state.put_parcel(replace(parcel, status=ParcelStatus.ACTIVE, certificate=None))
    state.add_events(_events([b.parcel], ref, ctx, Kind.PARCEL_RELEASE))


# ------------------------------------------------------------------ certificates


def _certificate_issue(
    state: State, b: CertificateIssue, ref: RecordRef, ctx: Context, record_time: str
) -> None:
    if not b.number.startswith(ctx.chain + "-"):
        raise CertificateInvalid(
            f"certificate numbers of {ctx.chain} start with {ctx.chain}-", field="body.number"
        )
    if state.certificate(b.number) is not None:
        raise DuplicateRecord(
            f"certificate number {b.number} was already used", field="body.number"
        )
    _authority_active(ctx, state, ctx.chain, "chain")
    if b.destination == ctx.chain:
        raise CertificateInvalid(
            "a certificate is for export to another participant", field="body.destination"
        )
    if member_role(state, b.destination, ctx.kp_size) != "authority" or not member_active(
        state, b.destination, ctx.kp_size
    ):
        raise CertificateInvalid(
            f"{b.destination} is not an active participant", field="body.destination"
        )
    exporter = _custodian(state, b.exporter, ctx, "body.exporter")
    held: list[Parcel] = []
    for i, line in enumerate(b.lines):
        at = f"body.lines[{i}]"
        parcel = _holding(state, line.parcel, ctx, f"{at}.parcel")
        held.append(parcel)
        if parcel.custodian != exporter.id:
            raise CertificateInvalid(
                f"parcel {parcel.id} is held by {parcel.custodian}, not the exporter {exporter.id}",
                field=f"{at}.parcel",
            )
        if line.weight != parcel.weight:
            raise CertificateInvalid(
                f"declares {line.weight} but parcel {parcel.id} weighs {parcel.weight}",
                field=f"{at}.weight",
            )
        if line.hs != parcel.hs:
            raise CertificateInvalid(
                f"declares HS {line.hs} but parcel {parcel.id} is {parcel.hs}", field=f"{at}.hs"
            )
        if line.origin != parcel.origin:
            raise OriginNotCarried(
                f"declared origin {dict(line.origin)} differs from parcel "
                f"{parcel.id}'s {dict(parcel.origin)}",
                field=f"{at}.origin",
            )
    carats = sum(line.weight for line in b.lines)
    if carats != b.carats:
        raise CertificateInvalid(
            f"lines sum to {carats}, the total says {b.carats}", field="body.carats"
        )
    if b.parcels != len(b.lines):
        raise CertificateInvalid(
            f"{len(b.lines)} lines, the total says {b.parcels}", field="body.parcels"
        )
    origin = certificate_origin([line.origin for line in b.lines])
    if b.origin != origin:
        raise CertificateInvalid(f"country of origin must read {origin!r}", field="body.origin")
    _validity(date.fromisoformat(b.issued), date.fromisoformat(b.expires), record_time, ctx)
    # a parcel in transit is worth what its line declares: the importer then needs only
    # the certificate's disclosures to know the value of what it receives
    for parcel, line in zip(held, b.lines, strict=True):
        state.put_parcel(
            replace(
                parcel,
                status=ParcelStatus.IN_TRANSIT,
                custodian=None,
                certificate=b.number,
                value=line.value,
            )
        )
    state.put_certificate(
        Certificate(
            b.number,
            ctx.chain,
            b.destination,
            b.exporter,
            b.importer_name,
            CertificateStatus.ISSUED,
            b.issued,
            b.expires,
            b.carats,
            b.value,
            b.origin,
            tuple(line.parcel for line in b.lines),
            ref,
        )
    )
    state.add_events(_events([line.parcel for line in b.lines], ref, ctx, Kind.CERTIFICATE_ISSUE))


def _validity(issued: date, expires: date, record_time: str, ctx: Context) -> None:
    """5. the issue date (below), then an expiry after it, not before the record's date
    (a backdated certificate never reaches the ledger expired, its parcels stuck in
    transit until a void) and within ``max_validity_days`` of the issue date."""
    recorded = date.fromisoformat(record_time[:10])
    _issue_date(issued, recorded, ctx)
    if expires < issued:
        raise CertificateInvalid("expires before it is issued", field="body.expires")
    if expires < recorded:
        raise CertificateInvalid(
            f"expires {expires}, before the record's date {recorded}", field="body.expires"
        )
    limit = ctx.registry.params.max_validity_days
    if expires - issued > timedelta(days=limit):
        raise CertificateInvalid(f"valid for more than {limit} days", field="body.expires")


def _issue_date(issued: date, recorded: date, ctx: Context) -> None:
    """5. issued on the record's date, or up to ``issue_backdate_days`` before it (a
    national system's batch sent at night), never after it. Expiry is counted from
    the issue date, so an earlier issue date only shortens the validity."""
    if issued > recorded:
        raise CertificateInvalid(
            f"issue date {issued} is after the record's date {recorded}", field="body.issued"
        )
    back = ctx.registry.params.issue_backdate_days
    if recorded - issued > timedelta(days=back):
        raise CertificateInvalid(
            f"issue date {issued} is more than {back} days before the record's date {recorded}",
            field="body.issued",
        )


def _certificate_confirm(state: State, b: CertificateConfirm, ref: RecordRef, ctx: Context) -> None:
    cert = state.certificate(b.number)
    if cert is None:
        raise UnknownReference(f"no certificate {b.number}", field="body.number")
    # 6a. the exact issue record, within what this block witnesses of the issuer's chain
    if b.ref != cert.issue_ref:
        raise ConfirmationInvalid(
            "ref does not name the certificate's issue record", field="body.ref"
        )
    seen = ctx.witness.get(cert.issuer)
    if seen is None or seen.size <= b.ref.index:
        raise ConfirmationInvalid(
            f"the block does not witness {cert.issuer}'s issue record", field="body.ref"
        )
    # 6b. only the named importer, while it is an active participant
    if cert.destination != ctx.chain:
        raise ConfirmationInvalid(
            f"certificate {b.number} is for {cert.destination}, not {ctx.chain}",
            field="body.number",
        )
    _authority_active(ctx, state, ctx.chain, "chain")
    # 6b'. no import from a participant suspended in this block's view
    _authority_active(ctx, state, cert.issuer, "body.ref")
    # 6c. once, before expiry
    open_status = _status(cert, ctx)
    if (
        open_status is not CertificateStatus.ISSUED
        or state.confirmation_index(ctx.chain, b.number) is not None
    ):
        raise ConfirmationInvalid(
            f"certificate {b.number} is already {open_status.value}", field="body.number"
        )
    if ctx.time[:10] > cert.expires:
        raise ConfirmationInvalid(
            f"certificate {b.number} expired on {cert.expires}", field="body.number"
        )
    # 6d. the parcels received are the parcels certified
    if sorted(r.parcel for r in b.received) != sorted(cert.parcels):
        raise ConfirmationInvalid(
            "received parcels differ from the certificate's", field="body.received"
        )
    custodian = _custodian(state, b.custodian, ctx, "body.custodian")
    parcels = {p: state.parcel(p) for p in cert.parcels}
    # 9. the importer's origin restrictions reach through every merge
    banned = state.restricted(ctx.chain)
    for p in parcels.values():
        assert p is not None
        hit = sorted(banned.intersection(c for c, _ in p.origin))
        if hit:
            raise RestrictedOrigin(
                f"parcel {p.id} holds origin {', '.join(hit)}, which {ctx.chain} does not import",
                field="body.received",
            )
    tol = ctx.registry.params.tolerance_bp
    discrepancy = False
    for r in b.received:
        declared = parcels[r.parcel]
        assert declared is not None
        if abs(r.weight - declared.weight) * 10_000 > tol * declared.weight:
            discrepancy = True
    received = sum(r.weight for r in b.received)
    if abs(received - cert.carats) * 10_000 > tol * cert.carats:
        discrepancy = True
    status = ParcelStatus.HELD if discrepancy else ParcelStatus.ACTIVE
    for p in parcels.values():
        assert p is not None
        state.put_parcel(
            replace(
                p,
                chain=ctx.chain,
                custodian=custodian.id,
                status=status,
                certificate=b.number if discrepancy else None,
            )
        )
    state.put_certificate(
        replace(
            cert,
            status=CertificateStatus.DISCREPANCY if discrepancy else CertificateStatus.CONFIRMED,
            closed_ref=ref,
            received=received,
        )
    )
    state.confirmations[(ctx.chain, b.number)] = ref.index
    state.add_events(_events(cert.parcels, ref, ctx, Kind.CERTIFICATE_CONFIRM))


def _certificate_refuse(state: State, b: CertificateRefuse, ref: RecordRef, ctx: Context) -> None:
    cert = state.certificate(b.number)
    if cert is None:
        raise UnknownReference(f"no certificate {b.number}", field="body.number")
    # 6a. the exact issue record, within what this block witnesses of the issuer's chain
    if b.ref != cert.issue_ref:
        raise RefusalInvalid("ref does not name the certificate's issue record", field="body.ref")
    seen = ctx.witness.get(cert.issuer)
    if seen is None or seen.size <= b.ref.index:
        raise RefusalInvalid(
            f"the block does not witness {cert.issuer}'s issue record", field="body.ref"
        )
    # 6b. only the named importer
    if cert.destination != ctx.chain:
        raise RefusalInvalid(
            f"certificate {b.number} is for {cert.destination}, not {ctx.chain}",
            field="body.number",
        )
    _authority_active(ctx, state, ctx.chain, "chain")
    # 6c. once, before expiry: a refusal closes the certificate as a confirmation
    # does, so the exporter's void races it exactly as it races a confirmation
    if (
        cert.status is not CertificateStatus.ISSUED
        or state.confirmation_index(ctx.chain, b.number) is not None
    ):
        raise RefusalInvalid(
            f"certificate {b.number} is already {cert.status.value}", field="body.number"
        )
    if ctx.time[:10] > cert.expires:
        raise RefusalInvalid(
            f"certificate {b.number} expired on {cert.expires}", field="body.number"
        )
    parcels = [state.parcel(p) for p in cert.parcels]
    # 9. a refusal for a restricted origin names a shipment that holds one
    if b.code == "restricted-origin":
        banned = state.restricted(ctx.chain)
        if not any(banned.intersection(c for c, _ in p.origin) for p in parcels if p):
            raise RefusalInvalid(
                f"no parcel of {b.number} holds an origin {ctx.chain} restricts",
                field="body.code",
            )
    for p in parcels:
        assert p is not None
        state.put_parcel(
            replace(
                p,
                chain=cert.issuer,
                custodian=cert.exporter,
                status=ParcelStatus.ACTIVE,
                certificate=b.number,
            )
        )
    state.put_certificate(replace(cert, status=CertificateStatus.REFUSED, closed_ref=ref))
    state.confirmations[(ctx.chain, b.number)] = ref.index
    state.add_events(_events(cert.parcels, ref, ctx, Kind.CERTIFICATE_REFUSE))


def _certificate_void(state: State, b: CertificateVoid, ref: RecordRef, ctx: Context) -> None:
    cert = state.certificate(b.number)
    if cert is None:
        raise UnknownReference(f"no certificate {b.number}", field="body.number")
    if cert.issuer != ctx.chain:
        raise WrongJurisdiction(
            f"certificate {b.number} was issued by {cert.issuer}", field="body.number"
        )
    status = _status(cert, ctx)
    if status is not CertificateStatus.ISSUED:
        raise VoidInvalid(f"certificate {b.number} is already {status.value}", field="body.number")
    # 7. settle the race with the importer by time on the importer's own chain
    seen = ctx.witness.get(cert.destination)
    if seen is None or seen.height < b.importer_height:
        raise VoidInvalid(
            f"the block does not witness {cert.destination} at height {b.importer_height}",
            field="body.importer_height",
        )
    header = state.header(cert.destination, b.importer_height)
    if header is None:  # pragma: no cover - witnessed headers are always held
        raise VoidInvalid("importer header not held", field="body.importer_height")
    if header.time[:10] <= cert.expires:
        raise VoidInvalid(
            f"{cert.destination}'s chain at height {b.importer_height} is dated "
            f"{header.time}, not past expiry {cert.expires}",
            field="body.importer_height",
        )
    confirmed_at = state.confirmation_index(cert.destination, b.number)
    if confirmed_at is not None and confirmed_at < header.size:
        raise VoidInvalid(f"{cert.destination} confirmed {b.number}", field="body.number")
    # 7b. and not on the importer's clock alone: the exporter's own block and the
    # median of the authority chains the block witnesses are past expiry too
    if ctx.time[:10] <= cert.expires:
        raise VoidInvalid(
            f"this block is dated {ctx.time}, not past expiry {cert.expires}",
            field="body.number",
        )
    median = witnessed_median_time(ctx)
    if median[:10] <= cert.expires:
        raise VoidInvalid(
            f"the median time of the witnessed authorities' chains is {median}, "
            f"not past expiry {cert.expires}",
            field="body.number",
        )
    for number in cert.parcels:
        parcel = state.parcel(number)
        assert parcel is not None
        state.put_parcel(
            replace(
                parcel,
                chain=cert.issuer,
                status=ParcelStatus.ACTIVE,
                custodian=cert.exporter,
                certificate=None,
            )
        )
    state.put_certificate(replace(cert, status=CertificateStatus.VOIDED, closed_ref=ref))
    state.add_events(_events(cert.parcels, ref, ctx, Kind.CERTIFICATE_VOID))


# ------------------------------------------------------------------ policy and keys


def _restrict(state: State, b: PolicyOrigin, ref: RecordRef, ctx: Context) -> None:
    if b.origin in state.restricted(ctx.chain):
        raise DuplicateRecord(
            f"{ctx.chain} already restricts origin {b.origin}", field="body.origin"
        )
    state.restrictions[(ctx.chain, b.origin)] = True


def _lift(state: State, b: PolicyOrigin, ref: RecordRef, ctx: Context) -> None:
    if b.origin not in state.restricted(ctx.chain):
        raise UnknownReference(
            f"{ctx.chain} does not restrict origin {b.origin}", field="body.origin"
        )
    state.restrictions[(ctx.chain, b.origin)] = False


def _key_rotate(state: State, b: KeyRotate, ref: RecordRef, ctx: Context) -> None:
    current = key_at(state, ctx.chain, ctx.height)
    if current is not None and current.key_id == b.key.key_id:
        raise KeyChangeInvalid("the new key is the current key", field="body.key")
    state.keys.append(KeyEvent(ctx.chain, ctx.height + 1, b.key, 0))


# ------------------------------------------------------------------ governance


def _governance_signed(record: Record, ctx: Context) -> None:
    try:
        verify_threshold(
            Tag.SIG_RECORD,
            record.unsigned_bytes(),
            [(s.key_id, s.sig) for s in record.sigs],
            ctx.registry.governance_keys,
            ctx.registry.threshold,
            what=f"governance record {record.id}",
        )
    except ThresholdError as exc:
        raise GovernanceInvalid(exc.message, field="sigs") from exc


def _member_admit(state: State, b: MemberAdmit, ref: RecordRef, ctx: Context) -> None:
    if state.member_events(b.code) or b.code == GOVERNANCE_CHAIN:
        raise GovernanceInvalid(f"{b.code} is already a participant", field="body.code")
    state.members.append(MemberEvent(b.code, ref.index + 1, b.role, True))
    state.keys.append(KeyEvent(b.code, 1, b.key, ref.index + 1))


def _member_change(
    state: State, b: MemberChange, ref: RecordRef, ctx: Context, active: bool
) -> None:
    now = member_active(state, b.code, ref.index)
    if now is None:
        raise GovernanceInvalid(f"{b.code} is not a participant", field="body.code")
    if now == active:
        raise GovernanceInvalid(
            f"{b.code} is already {'active' if active else 'suspended'}", field="body.code"
        )
    role = member_role(state, b.code, ref.index) or "authority"
    state.members.append(MemberEvent(b.code, ref.index + 1, role, active))


def _key_replace(state: State, b: KeyReplace, ref: RecordRef, ctx: Context) -> None:
    """A replacement starts past what its ``KP`` block witnesses of the chain.

    ``from_height`` is above the height of ``code`` that the block witnesses
    (for ``KP`` itself, above the block's own height): the old key's blocks
    that the governance chain has seen stay valid, and the chair may choose
    any later height. The one exception is an equivocating chain's fork
    height, which restarts the chain there (README, "When an authority
    equivocates"); it needs the evidence, and a node that lacks it waits
    for it: the refusal is ``WitnessInvalid``, which a node receiving the
    block treats as "wait", like a witness it cannot judge yet.
    """
    if b.code != GOVERNANCE_CHAIN and member_role(state, b.code, ref.index) is None:
        raise GovernanceInvalid(f"{b.code} is not a participant", field="body.code")
    seen = ctx.height if b.code == GOVERNANCE_CHAIN else ctx.heights.get(b.code, 0)
    fork = ctx.fork_heights.get(b.code)
    if b.from_height <= seen and b.from_height != fork:
        held = (
            f"the evidence held puts its fork at height {fork}"
            if fork is not None
            else f"this node holds no evidence that {b.code} equivocated"
        )
        raise WitnessInvalid(
            f"from_height {b.from_height} is at or below {b.code}'s height {seen} that this "
            f"block witnesses: a key.replace starts at {seen + 1} or later, or at the fork "
            f"height of an equivocating chain ({held})",
            field="body.from_height",
        )
    state.keys.append(KeyEvent(b.code, b.from_height, b.key, ref.index + 1))


# ------------------------------------------------------------------ artisanal chain


def _new_licence(state: State, licence_id: str, ctx: Context, field: str) -> None:
    """A4: claims and licences get new ids that start with their chain's code."""
    if not licence_id.startswith(ctx.chain + "-"):
        raise RegistryInvalid(f"ids on {ctx.chain} start with {ctx.chain}-", field=field)
    if state.licence(licence_id) is not None:
        raise RegistryInvalid(
            f"{licence_id} is already registered; ids are never reused", field=field
        )


def _not_after_block(day: str, ctx: Context, field: str) -> None:
    if day > ctx.time[:10]:
        raise FutureDated(f"{day} is after the block's date {ctx.time[:10]}", field=field)


def _claim_register(state: State, b: ClaimRegister, ref: RecordRef, ctx: Context) -> None:
    _new_licence(state, b.claim, ctx, "body.claim")
    state.put_licence(
        Licence(
            b.claim,
            ctx.chain,
            "claim",
            b.holder,
            None,
            (b.zone,),
            b.valid_from,
            b.valid_until,
            ref,
            location=tuple((p.lat, p.lon) for p in b.location),
        )
    )


def _licence_digger(state: State, b: LicenceDigger, ref: RecordRef, ctx: Context) -> None:
    _new_licence(state, b.licence, ctx, "body.licence")
    claim = state.licence(b.claim)
    if claim is None or claim.type != "claim" or claim.chain != ctx.chain:
        raise RegistryInvalid(
            f"{b.claim} is not a claim registered by {ctx.chain}", field="body.claim"
        )
    state.put_licence(
        Licence(
            b.licence,
            ctx.chain,
            b.type,
            b.holder,
            b.claim,
            claim.zones,
            b.valid_from,
            b.valid_until,
            ref,
        )
    )


def _licence_buyer(state: State, b: LicenceBuyer, ref: RecordRef, ctx: Context) -> None:
    _new_licence(state, b.licence, ctx, "body.licence")
    _custodian(state, b.party, ctx, "body.party")
    state.put_licence(
        Licence(
            b.licence, ctx.chain, b.type, b.party, None, b.zones, b.valid_from, b.valid_until, ref
        )
    )


def _licence_end(state: State, b: LicenceEnd, ref: RecordRef, ctx: Context) -> None:
    found = state.licence(b.licence)
    if found is None or found.chain != ctx.chain:
        raise RegistryInvalid(f"{b.licence} is not registered by {ctx.chain}", field="body.licence")
    if found.ended is not None:
        raise RegistryInvalid(
            f"{b.licence} already ended on {found.ended} ({found.end_reason})", field="body.licence"
        )
    if b.date < found.valid_from:
        raise RegistryInvalid(
            f"{b.licence} starts {found.valid_from}; it cannot end before, on {b.date}",
            field="body.date",
        )
    state.put_licence(replace(found, ended=b.date, end_reason=b.reason))


def _in_force(
    state: State, licence_id: str, types: frozenset[str], day: str, ctx: Context
) -> tuple[Licence | None, str]:
    """The licence and, when it is not in force on ``day`` for this chain, why not."""
    found = state.licence(licence_id)
    if found is None or found.chain != ctx.chain:
        return None, f"{licence_id} is not registered by {ctx.chain}"
    if found.type not in types:
        return found, f"{licence_id} is a {found.type}, not a {' or '.join(sorted(types))}"
    if found.ended is not None and found.ended <= day:
        return found, f"{licence_id} was {found.end_reason} on {found.ended}; the sale is of {day}"
    if not found.valid_from <= day <= found.valid_until:
        return found, (
            f"{licence_id} is valid {found.valid_from}..{found.valid_until}; the sale is of {day}"
        )
    return found, ""


def _parcel_purchase(state: State, b: ParcelPurchase, ref: RecordRef, ctx: Context) -> None:
    _new_id(state, b.parcel, ctx, "body.parcel")
    _not_after_block(b.bought, ctx, "body.bought")
    buyer, why = _in_force(state, b.buyer, BUYER_TYPES, b.bought, ctx)
    if buyer is None or why:
        raise BuyerLicenceInvalid(why, field="body.buyer")
    _custodian(state, buyer.holder, ctx, "body.buyer")
    digger, why = _in_force(state, b.digger, DIGGER_TYPES, b.bought, ctx)
    if digger is None or why:
        raise DiggerLicenceInvalid(why, field="body.digger")
    if digger.claim != b.claim:
        raise DiggerLicenceInvalid(
            f"{b.digger} licenses digging on {digger.claim}, not on {b.claim}", field="body.digger"
        )
    claim, why = _in_force(state, b.claim, frozenset({"claim"}), b.bought, ctx)
    if claim is None or why:
        raise ClaimInvalid(why, field="body.claim")
    if not set(claim.zones) & set(buyer.zones):
        raise ClaimInvalid(
            f"{b.claim} lies in {claim.zones[0]}, outside {b.buyer}'s zones {list(buyer.zones)}",
            field="body.claim",
        )
    state.put_parcel(
        Parcel(
            b.parcel,
            ctx.chain,
            buyer.holder,
            ParcelStatus.ACTIVE,
            b.weight,
            b.price,
            b.hs,
            ((ctx.chain, b.weight),),
            None,
            ref,
            ((b.claim, b.weight),),
        )
    )
    state.purchases.append(
        Purchase(
            b.parcel,
            ctx.chain,
            b.buyer,
            b.digger,
            b.claim,
            b.method,
            b.weight,
            b.price,
            b.bought,
            ref,
        )
    )
    state.add_events(_events([b.parcel], ref, ctx, Kind.PARCEL_PURCHASE))


def _diagnostic_assess(state: State, b: DiagnosticAssess, ref: RecordRef, ctx: Context) -> None:
    _not_after_block(b.assessed, ctx, "body.assessed")
    state.assessments.append(
        Assessment(ctx.chain, b.indicator, b.score, b.evidence, b.assessed, ref)
    )


def _apply_artisanal(state: State, body: object, ref: RecordRef, ctx: Context) -> bool:
    """Apply a record of the artisanal chain; False when ``body`` is of another kind."""
    match body:
        case ClaimRegister():
            _claim_register(state, body, ref, ctx)
        case LicenceDigger():
            _licence_digger(state, body, ref, ctx)
        case LicenceBuyer():
            _licence_buyer(state, body, ref, ctx)
        case LicenceEnd():
            _licence_end(state, body, ref, ctx)
        case ParcelPurchase():
            _parcel_purchase(state, body, ref, ctx)
        case DiagnosticAssess():
            _diagnostic_assess(state, body, ref, ctx)
        case _:
            return False
    return True


# ------------------------------------------------------------------ statistics


def _quarter_end(quarter: str) -> date:
    year, q = int(quarter[:4]), int(quarter[-1])
    return (date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)) - timedelta(days=1)


def _stats_cell(cell: StatsCell, min_cell: int, field: str) -> None:
    if cell.value is None and cell.count >= min_cell:
        raise StatsCellDisclosed(
            f"a cell of {cell.count} records (at least {min_cell}) reports its USD",
            field=field + ".value",
        )
    if cell.value is not None and cell.count < min_cell:
        raise StatsCellDisclosed(
            f"a cell of {cell.count} records (fewer than {min_cell}) carries no USD: "
            "it would show one shipment's value",
            field=field + ".value",
        )


def _stats_report(b: StatsReport, record_id: str, ctx: Context) -> None:
    """S1-S2: the quarter is over, reported once, and no small cell shows its value."""
    if record_id != f"stats-{b.quarter}":
        raise StatsReportInvalid(
            f"a report of {b.quarter} has the record id stats-{b.quarter}, so that a "
            "quarter is reported once",
            field="id",
        )
    last = _quarter_end(b.quarter)
    if ctx.time[:10] <= last.isoformat():
        raise StatsReportInvalid(
            f"{b.quarter} ends on {last.isoformat()}: its report is sealed after that, "
            f"not on {ctx.time[:10]}",
            field="body.quarter",
        )
    min_cell = ctx.registry.params.min_cell
    _stats_cell(b.production, min_cell, "body.production")
    for name, cells in (("exports", b.exports), ("imports", b.imports)):
        for i, cell in enumerate(cells):
            where = f"body.{name}[{i}]"
            if cell.partner == ctx.chain:
                raise StatsReportInvalid(
                    f"{ctx.chain} does not trade with itself", field=where + ".partner"
                )
            if cell.count < 1:
                raise StatsReportInvalid(
                    "a partner's cell counts at least one certificate",
                    field=where + ".certificates",
                )
            _stats_cell(cell, min_cell, where)


# ------------------------------------------------------------------ dispatch


def apply_record(  # noqa: PLR0912 - one branch per record kind (format 2 adds kinds)
    state: State, record: Record, index: int, ctx: Context
) -> RecordRef:
    """Check ``record`` as entry ``index`` of ``ctx.chain`` and apply it to ``state``.

    Returns the record's reference. Raises a ``RuleViolation`` (and writes
    nothing) if any rule refuses it.
    """
    if record.network != ctx.registry.network_id:
        raise UnknownReference("record is for another network", field="network")
    if record.chain != ctx.chain:
        raise WrongJurisdiction(
            f"record is for chain {record.chain}, not {ctx.chain}", field="chain"
        )
    if state.record_ref(ctx.chain, record.id) is not None:
        raise DuplicateRecord(f"record id {record.id} is already on {ctx.chain}", field="id")
    governance = record.kind in GOVERNANCE_KINDS
    if governance != (ctx.chain == GOVERNANCE_CHAIN):
        raise GovernanceInvalid(
            f"{record.kind.value} records belong on "
            f"{'the KP chain' if governance else 'a participant chain'}",
            field="kind",
        )
    if governance:
        _governance_signed(record, ctx)
    ref = RecordRef(ctx.chain, index, record.leaf)
    body = record.body
    if _apply_artisanal(state, body, ref, ctx):
        state.record_refs[(ctx.chain, record.id)] = ref
        state.records.append((ref, ctx.height, record))
        return ref
    match body:
        case PartyRegister():
            _party_register(state, body, ref, ctx)
        case PartyRevoke():
            _party_revoke(state, body, ref, ctx)
        case ParcelRegister():
            _parcel_register(state, body, ref, ctx)
        case ParcelTransfer():
            _parcel_transfer(state, body, ref, ctx)
        case ParcelSplit():
            _parcel_split(state, body, ref, ctx)
        case ParcelMerge():
            _parcel_merge(state, body, ref, ctx)
        case CertificateIssue():
            _certificate_issue(state, body, ref, ctx, record.time)
        case CertificateConfirm():
            _certificate_confirm(state, body, ref, ctx)
        case CertificateVoid():
            _certificate_void(state, body, ref, ctx)
        case CertificateRefuse():
            _certificate_refuse(state, body, ref, ctx)
        case ParcelRelease():
            _parcel_release(state, body, ref, ctx)
        case PolicyOrigin() if record.kind is Kind.POLICY_RESTRICT_ORIGIN:
            _restrict(state, body, ref, ctx)
        case PolicyOrigin():
            _lift(state, body, ref, ctx)
        case KeyRotate():
            _key_rotate(state, body, ref, ctx)
        case MemberAdmit():
            _member_admit(state, body, ref, ctx)
        case MemberChange():
            _member_change(state, body, ref, ctx, record.kind is Kind.MEMBER_REINSTATE)
        case KeyReplace():
            _key_replace(state, body, ref, ctx)
        case StatsReport():
            _stats_report(body, record.id, ctx)
    state.record_refs[(ctx.chain, record.id)] = ref
    state.records.append((ref, ctx.height, record))
    return ref
