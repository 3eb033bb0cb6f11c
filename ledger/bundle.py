"""Provenance bundles: a parcel's custody chain, verifiable offline (``kpledger-bundle/2``).

A provenance bundle is one JSON document that proves where a parcel comes from
to somebody who holds nothing but the network's genesis registry (or not even
that: the bundle carries the registry, and the verifier may pin the one it
trusts). Everything in it is either signed (the registry by the governance
threshold, block headers by each chain's authority), proven against something
signed (every record by an RFC 9162 inclusion proof against its block's
header), or recomputed by the verifier (the custody state, by replaying the
real rules of ``ledger.rules`` over the records).

Serialisation
-------------
The document is RFC 8785 (JCS) canonical JSON in UTF-8: no floats, no
insignificant white space, object keys sorted, binary values as lower-case
hex. A verifier refuses bytes that are not already canonical, so every signed
or hashed object inside is a verbatim substring of the bundle (nothing is
re-serialised to be verified)::

    {"format":   "kpledger-bundle/2",
     "registry": {"registry": {...}, "sigs": [...]},
     "subject":  "IN-CUT-1",
     "headers":  [{"header": {...}, "sig": "<hex>"}, ...],
     "records":  [{"index": 12, "proof": ["<hex>", ...], "record": {...}}, ...],
     "state":    [{"chain": "IN", "height": 7, "slot": {"count": 1, "record": <hex>,
                                                       "path": ["<hex>", ...]}}, ...],
     "disclosures": [{"record": <hex>, "path": ..., "salt": <hex>, "value": ...}, ...]}

No other field is allowed at any level. ``disclosures`` is optional: records
are committed (format 2), so anyone may hold and verify a bundle; a caller
entitled to some confidential fields gets their disclosures too (record leaf
hash, field path, salt, clear value), each checked at step 7.

``registry``
    The signed genesis registry exactly as the network publishes it
    (``ledger.registry``): its network id is
    ``SHA-256("KPL-REGISTRY-V1\\n" || canonical(registry.registry))``.
``subject``
    The id of the parcel whose provenance the bundle proves.
``headers``
    Signed block headers (``ledger.blocks``): ``header`` is the header object,
    ``sig`` the authority's Ed25519 signature over
    ``"KPL-SIG-HEADER-V1\\n" || canonical(header)``. Sorted by
    ``(header.chain, header.height)``, at most one per pair; 1..30,000 of them.
``records``
    Log entries (``ledger.records``): ``record`` is the record object exactly as
    in its chain's log, ``index`` its 0-based position in that log, and
    ``proof`` the RFC 9162 inclusion proof (at most 64 hashes of 32 bytes) of
    its leaf ``SHA-256(0x00 || canonical(record))`` at ``index`` in the tree of
    ``size`` leaves whose root is ``root``, where ``size`` and ``root`` are those
    of the record's *block header*: the header of ``record.chain`` in the bundle
    with the smallest height whose ``size > index``. Sorted by
    ``(record.chain, index)``, at most one per pair; 1..10,000 of them.
``state``
    The subject's slot in the parcel state tree (``ledger.statetree``) of each
    chain that acted on it or to which one of its certificates goes, proven
    against the ``state`` root of that chain's header at ``height``. Sorted by
    chain, one each, at most 64.

The whole document is at most 64 MiB.

What a bundle holds
-------------------
The builder (``ledger.store.bundles.build_bundle``) includes, and the verifier
needs, the following; anything missing makes a step fail, never pass.

1. Lineage: every record that acted on the subject; and, for every record
   included, every earlier record that acted on any parcel it acts on (that
   parcel's history up to that record). This reaches back through splits,
   merges, certificates and confirmations to the registrations at the mines,
   and includes what a certificate needs of the other parcels it carries.
2. Parties: the ``party.register`` of every party those records name as
   custodian, recipient or exporter, and every ``party.revoke`` of them.
3. Origin policy: every ``policy.restrict_origin`` and ``policy.lift_origin``
   of a chain that confirms or refuses an included certificate, below its last
   included confirmation or refusal.
4. Headers: for every record, the header of its block and the header just
   before it (height - 1, unless the block is the chain's first): together
   they show that the block is the record's block
   (``previous.size <= index < block.size``). For every confirmation and
   every refusal, the issuer's header that its block witnesses; for every
   record, the header its block witnesses of each chain whose refusal the
   bundle holds (a refused parcel is acted on again only in blocks that
   witness the refusal); for every void, the importer's
   header that its block witnesses and the importer's header at
   ``importer_height``. For every header that witnesses the governance chain
   ``KP``, that ``KP`` header.
5. Governance: every ``KP`` record below the largest ``size`` of a ``KP``
   header in the bundle (the governance prefix the bundle's headers witness).
6. Keys: every ``key.rotate`` of a chain sealed below the highest header of that
   chain in the bundle.
7. Cosigners: for every block holding a record of the bundle, the signed headers
   of at least ``cosign`` other authorities (``Registry.cosign``: the registry's
   ``params.cosign``, absent: 2, or the genesis authorities minus one if fewer)
   that witness the block's chain at the block's height or above, and every
   header of the block's chain from the block up to the height witnessed.
8. Checkpoints: for every chain whose records act on the subject, and every
   destination of a certificate that carried it, the chain's newest header
   that ``cosign`` other authorities witness, with those cosigners' headers,
   and the subject's slot in that chain's state as of the newest such header
   the bundle holds.

Verification
------------
Each step must pass before the next runs; a failure raises one specific
``InvalidData`` subclass whose message starts ``step N (name):`` and says
where (``step 4 (inclusion): record BW/12: ...``).

1. *parse*: at most 64 MiB; UTF-8 JSON in RFC 8785 canonical form, no floats,
   no duplicate keys; exactly the fields above with their types and limits;
   every header and record schema-checked as on the wire; headers and records
   sorted and unique as above. ``format`` must be ``kpledger-bundle/2`` (a header
   of format 1, which had no ``state``, fails with ``unsupported-version``).
2. *registry*: the registry's schema, and its signatures: every signature must
   be a valid one by a distinct governance key it lists (no unknown, duplicate
   or invalid signatures), and at least ``threshold`` of them. If the verifier
   pins a registry, the bundle's must equal it byte for byte in canonical form.
   Every header and every record must name the registry's network id.
3. *headers*: first what needs no signature: along each chain the headers
   present have non-decreasing ``size`` and ``time``, and between two of
   them (``a`` below ``h``, consecutive or not) no witnessed height goes back
   (for every chain ``C`` in both, ``h``'s height of ``C`` is at least
   ``a``'s) and no witnessed chain is dropped (every chain ``a`` witnesses,
   ``h`` witnesses too), the rules a node applies to each block; a header that witnesses
   ``KP`` has that ``KP`` header in the bundle; every record has its block
   header and the one before it as defined above; the ``KP`` records
   ``0 .. K-1`` are all present, ``K`` the largest ``KP`` header size. Then
   every header's signature is verified under the key its chain has at its
   height, chains in the order ``KP`` first, then by code, heights ascending.
   The key of ``chain`` at ``height`` is the key of the event with the
   largest ``(from_height, kp_size)`` among those with ``from_height <=
   height``, whatever ``KP`` header the header witnesses (so a ``key.replace``
   in the bundle's ``KP`` prefix refuses every later header signed by the
   replaced key). The events are each participant's registry key (from
   height 1, kp_size 0), the registry key of the KP sealer
   (``governance.sealer``, else the first authority) for ``KP`` (from 1,
   kp_size 0), and, taken from the records of headers already verified (their
   inclusion proofs checked there and then): a ``key.rotate`` in block ``h``
   (its key from ``h + 1``, kp_size 0), a ``member.admit`` at ``KP`` index
   ``i`` (from 1, kp_size ``i + 1``) and a ``key.replace`` at ``KP`` index
   ``i`` (from its ``from_height``, kp_size ``i + 1``; it must carry the
   governance threshold of signatures over the record without ``sigs``, tag
   ``KPL-SIG-RECORD-V1\\n``). The header must name that key's id. So a proof
   made before a rotation still verifies after it. Last, consecutive heights
   must link (``prev`` is the hash ``SHA-256("KPL-HEADER-V1\\n" ||
   canonical(header))`` of the one before, or the network id at height 1),
   and a ``witness`` entry naming a header that is in the bundle must carry
   that header's hash. Last, *cosigned checkpoints*: every block holding a
   record of the bundle must be witnessed by headers of at least ``cosign``
   distinct authorities other than its chain and ``KP``: a header of ``X`` counts
   for block ``C/h`` when it witnesses ``C/w`` with ``w >= h`` and the bundle
   holds every header ``C/h .. C/w`` (linked by ``prev`` as just checked), else
   ``NotCosigned`` names the block and the authorities that do witness it. A
   stolen key alone can sign a forked chain but not the other authorities'
   headers, so its bundles fail here; ``cosign`` more keys are needed.
4. *inclusion*: every record's inclusion proof against its block header's root
   (RFC 9162 section 2.1.3.2, with the length and index checks up front); its
   ``time`` must not be after its block's.
5. *replay*: starting from the genesis state of the registry (its members and
   keys) and holding every header of the bundle, apply the records with the
   custody rules of ``ledger.rules`` (``apply_record``), block by block (a
   block: the bundle records whose block header is one header): the blocks
   of a chain by height, and a block only after every block of the bundle on
   a chain ``C`` whose height is at most the height of ``C`` that its header
   witnesses. So governance comes before what witnesses it and a confirmation
   after the issue it names. Each record is judged in its block's context:
   chain, height and time of its header, and as witnesses the bundle's
   headers that the header names. The chain of every header (but ``KP``) must
   be an authority as of the ``KP`` size it witnesses. This re-checks mass and
   value conservation, origin composition, jurisdiction and custodians,
   certificates (Annex I totals, destinations, validity), confirmations (the
   exact issue record, witnessed, before expiry, origin restrictions,
   tolerance) and governance signatures.
6. *subject*: the subject parcel exists after the replay (and equals the parcel
   the verifier expects, if it names one). Then its *checkpoints*: for every
   chain whose records of the bundle act on it, and the destination of every
   certificate that carried it, the ``state`` entry of that chain is at the
   chain's newest cosigned header in the bundle (``checkpoint``), its slot
   proof folds up to that header's ``state`` (``StateProofError``), and the
   slot's count and latest record equal the bundle's records of that chain
   acting on the subject (else ``RecordOmitted``: one is left out). The
   verdict reports it: jurisdiction, custodian, status, weight, origin
   composition, its ancestors back to the mines, the certificates on the
   path, and the checkpoints it holds as of.
7. *disclosures*: each disclosure names a record of the bundle (its leaf
   hash), a confidential field of it (``ledger.commit``), and a clear value
   and salt that open that field's commitment; a changed value or salt
   fails here (``disclosure-mismatch``).

What a bundle does not prove: anything after its checkpoints (a record sealed
later, or in a block that ``cosign`` other authorities have not witnessed yet);
ask for a fresh bundle, or run ``kpl verify --online URL``, whose step 8
compares the subject's state with a node's current one. Up to its
checkpoints, every record of the subject is there (step 6); of its ancestors,
only what the replay needs (their slots are not proven). What it proves about
its records holds only as far as the cosigners' checkpoints: ``cosign + 1``
keys acting together could still sign a consistent fork. The registry is the
trust anchor: without a pinned registry a bundle only proves that it is
consistent under the registry it carries, whose network id the verifier
prints. Bundles carry committed records, so anyone may hold one.

One concept in one file, on purpose: the bundle's format, parser and its numbered
verification steps read top to bottom as the specification (docs/spec/bundle.md)
does; splitting the steps over modules would hide their order.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kpledger.ledger.blocks import Header, SignedHeader
from kpledger.ledger.canonical import Tag, canonical_bytes, from_hex, load_json, parse_canonical
from kpledger.ledger.chain import genesis
from kpledger.ledger.commit import Disclosure
from kpledger.ledger.errors import (
    BlockError,
    DisclosureError,
    EncodingError,
    InvalidData,
    NotCosigned,
    RecordOmitted,
    SchemaError,
    SignatureError,
    UnknownReference,
    VersionError,
    WitnessInvalid,
)
from kpledger.ledger.merkle import verify_inclusion
from kpledger.ledger.records import (
    GOVERNANCE_CHAIN,
    MAX_INDEX,
    Composition,
    KeyReplace,
    KeyRotate,
    MemberAdmit,
    ParcelPurchase,
    ParcelRegister,
    Record,
    RecordRef,
)
from kpledger.ledger.registry import Registry, verify_threshold
from kpledger.ledger.rules import Context, apply_record
from kpledger.ledger.schema import CODE, LOCAL_ID, Fields
from kpledger.ledger.state import (
    Certificate,
    KeyEvent,
    Parcel,
    ParcelStatus,
    State,
    key_at,
    member_role,
)
from kpledger.ledger.statetree import StateProof, verify_state_proof

__all__ = [
    "FORMAT",
    "MAX_BUNDLE_BYTES",
    "MAX_HEADERS",
    "MAX_PROOF",
    "MAX_RECORDS",
    "STEPS",
    "Bundle",
    "BundleRecord",
    "BundleResult",
    "BundleState",
    "Source",
    "Verdict",
    "assemble_bundle",
    "checkpoint",
    "check_bundle",
    "parse_bundle",
    "serialize_bundle",
    "verify_bundle",
]

FORMAT = "kpledger-bundle/2"
MAX_STATES = 64
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_RECORDS = 10_000
MAX_HEADERS = 30_000
MAX_PROOF = 64
MAX_DISCLOSURES = 100_000
#: the verification steps, numbered from 1
STEPS = ("parse", "registry", "headers", "inclusion", "replay", "subject", "disclosures")

_STEP_ATTR = "bundle_step"
#: a hash of 32 bytes, plainly well-formed (anything else goes through ``from_hex``)
_HEX32 = re.compile(r"[0-9a-f]{64}")


# ---------------------------------------------------------------- documents


@dataclass(frozen=True)
class BundleRecord:
    """One record of a bundle: its log index, the record, its inclusion proof."""

    index: int
    record: Record
    proof: tuple[bytes, ...]

    @property
    def chain(self) -> str:
        return self.record.chain

    @property
    def name(self) -> str:
        return f"{self.record.chain}/{self.index}"

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "record": self.record.as_json(),
            "proof": [h.hex() for h in self.proof],
        }


@dataclass(frozen=True)
class BundleState:
    """The subject's slot in one chain's parcel state tree, proven against the state
    root of that chain's newest cosigned header in the bundle (``height``)."""

    chain: str
    height: int
    proof: StateProof

    def to_json(self) -> dict[str, Any]:
        return {"chain": self.chain, "height": self.height, "slot": self.proof.to_json()}


@dataclass(frozen=True)
class Bundle:
    """A parsed bundle (step 1): shapes and schemas checked, nothing verified yet."""

    registry: Mapping[str, Any]
    subject: str
    headers: tuple[SignedHeader, ...]
    records: tuple[BundleRecord, ...]
    disclosures: tuple[Disclosure, ...] = ()
    states: tuple[BundleState, ...] = ()


def assemble_bundle(
    registry: Registry,
    subject: str,
    headers: Iterable[SignedHeader],
    records: Iterable[BundleRecord],
    disclosures: Iterable[Disclosure] = (),
    states: Iterable[BundleState] = (),
) -> dict[str, Any]:
    """The bundle document, in canonical order (headers and records sorted, unique;
    disclosures, if any, by record and path)."""
    hs = {(s.header.chain, s.header.height): s for s in headers}
    rs = {(r.chain, r.index): r for r in records}
    doc: dict[str, Any] = {
        "format": FORMAT,
        "registry": parse_canonical(registry.to_bytes(), what="registry"),
        "subject": subject,
        "headers": [hs[k].to_json() for k in sorted(hs)],
        "records": [rs[k].to_json() for k in sorted(rs)],
        "state": [x.to_json() for x in sorted(states, key=lambda x: x.chain)],
    }
    ds = {(d.record, d.path): d for d in disclosures}
    if ds:
        doc["disclosures"] = [ds[k].to_json() for k in sorted(ds)]
    return doc


def serialize_bundle(doc: Mapping[str, Any]) -> bytes:
    """The bundle's bytes: RFC 8785 canonical JSON."""
    return canonical_bytes(doc)


def parse_bundle(data: bytes) -> Bundle:
    """Step 1: parse bundle bytes with limits; refuses unknown fields and non-canonical bytes."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise SchemaError(f"bundle is {len(data)} bytes; the limit is {MAX_BUNDLE_BYTES}")
    value = parse_canonical(data, what="bundle")
    f = Fields(value)
    fmt = f.string("format", max_len=64)
    if fmt != FORMAT:
        raise SchemaError(
            f"unsupported format {fmt!r}; this verifier reads {FORMAT}", field="format"
        )
    registry = f.mapping("registry")
    subject = f.string("subject", pattern=LOCAL_ID, max_len=56)
    headers = tuple(
        SignedHeader.from_json(item, path)
        for path, item in f.items("headers", low=1, high=MAX_HEADERS)
    )
    records: list[BundleRecord] = []
    for path, item in f.items("records", low=1, high=MAX_RECORDS):
        r = Fields(item, path)
        index = r.integer("index", low=0, high=MAX_INDEX)
        proof = _proof(r, item)
        raw = r.mapping("record")
        try:
            record = Record.from_value(raw)
        except VersionError as exc:  # keeps the version it refused
            where = _join(r.path("record"), exc.field)
            raise VersionError(exc.message, version=exc.version, field=where) from exc
        except (EncodingError, SchemaError, SignatureError) as exc:
            raise type(exc)(exc.message, field=_join(r.path("record"), exc.field)) from exc
        r.done()
        records.append(BundleRecord(index, record, proof))
    states: list[BundleState] = []
    for path, item in f.items("state", low=0, high=MAX_STATES):
        x = Fields(item, path)
        chain = x.string("chain", pattern=CODE, max_len=8)
        height = x.integer("height", low=1, high=MAX_INDEX)
        slot = StateProof.from_json(x.mapping("slot"), x.path("slot"), subject)
        x.done()
        if states and states[-1].chain >= chain:
            raise SchemaError("state must be sorted by chain, one each", field=path)
        states.append(BundleState(chain, height, slot))
    disclosures: tuple[Disclosure, ...] = ()
    if f.has("disclosures"):
        disclosures = tuple(
            Disclosure.from_json(item, path)
            for path, item in f.items("disclosures", low=1, high=MAX_DISCLOSURES)
        )
    f.done()
    hkeys = [(s.header.chain, s.header.height) for s in headers]
    for i in range(1, len(hkeys)):
        if hkeys[i - 1] >= hkeys[i]:
            raise SchemaError(
                "headers must be sorted by (chain, height), one each", field=f"headers[{i}]"
            )
    rkeys = [(r.chain, r.index) for r in records]
    for i in range(1, len(rkeys)):
        if rkeys[i - 1] >= rkeys[i]:
            raise SchemaError(
                "records must be sorted by (chain, index), one each", field=f"records[{i}]"
            )
    return Bundle(registry, subject, headers, tuple(records), disclosures, tuple(states))


def _proof(r: Fields, item: Mapping[str, Any]) -> tuple[bytes, ...]:
    """A record's ``proof``: hashes of 32 bytes in lower-case hex.

    ``Fields.items`` checks the list and its length; hashes that are plainly
    well-formed are decoded at once, else each goes through ``from_hex``, which
    names the bad one.
    """
    checked = r.items("proof", low=0, high=MAX_PROOF)
    if next(checked, None) is None:
        return ()
    hashes: list[Any] = item["proof"]
    if all(type(h) is str and _HEX32.fullmatch(h) for h in hashes):
        return tuple(bytes.fromhex(h) for h in hashes)
    return tuple(from_hex(h, field=r.path(f"proof[{i}]"), size=32) for i, h in enumerate(hashes))


def _join(prefix: str, field: str) -> str:
    return f"{prefix}.{field}" if field else prefix


# ---------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Source:
    """A root of the lineage: a registration at a mine, or a first sale (``mine`` is then
    the claim and ``produced`` the day of the sale)."""

    parcel: str
    chain: str
    mine: str
    produced: str
    weight: int
    ref: RecordRef
    first_sale: bool = False


@dataclass(frozen=True)
class Verdict:
    """What a verified bundle proves about its subject, as of its last record in the bundle."""

    network: str
    subject: str
    chain: str  # the jurisdiction holding it
    custodian: str | None
    status: ParcelStatus
    weight: int
    hs: str
    origin: Composition
    claims: Composition  # the registered claims its stones were bought from (first sales)
    as_of: tuple[str, int, str]  # (chain, height, time) of the block of its last record
    lineage: tuple[str, ...]  # ancestors, back to the registrations at the mines
    sources: tuple[Source, ...]
    certificates: tuple[Certificate, ...]  # certificates that carried the subject or an ancestor
    records: int
    headers: int
    #: (chain, height, time) of each cosigned header whose parcel state the subject's
    #: records were checked against (step 6): nothing of it before them is left out
    checkpoints: tuple[tuple[str, int, str], ...] = ()
    #: the disclosures the bundle carried, each checked against its commitment (step 7)
    disclosures: tuple[Disclosure, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "subject": self.subject,
            "chain": self.chain,
            "custodian": self.custodian,
            "status": self.status.value,
            "weight": self.weight,
            "hs": self.hs,
            "origin": dict(self.origin),
            "claims": dict(self.claims),
            "as_of": {"chain": self.as_of[0], "height": self.as_of[1], "time": self.as_of[2]},
            "lineage": list(self.lineage),
            "sources": [
                {
                    "parcel": s.parcel,
                    "chain": s.chain,
                    "mine": s.mine,
                    "produced": s.produced,
                    "weight": s.weight,
                    "ref": s.ref.to_json(),
                    **({"first_sale": True} if s.first_sale else {}),
                }
                for s in self.sources
            ],
            "certificates": [
                {
                    "number": c.number,
                    "issuer": c.issuer,
                    "destination": c.destination,
                    "status": c.status.value,
                    "issued": c.issued,
                    "expires": c.expires,
                    "carats": c.carats,
                    "origin": c.origin,
                }
                for c in self.certificates
            ],
            "records": self.records,
            "headers": self.headers,
            "checkpoints": [{"chain": c, "height": h, "time": t} for c, h, t in self.checkpoints],
            "disclosures": [d.to_json() for d in self.disclosures],
        }


@dataclass(frozen=True)
class BundleResult:
    """The non-raising outcome: ``step`` names the failing step, or ``"verified"``."""

    ok: bool
    step: str
    error: str | None
    verdict: Verdict | None


def verify_bundle(
    data: bytes | Mapping[str, Any],
    *,
    registry: bytes | Registry | None = None,
    parcel: str | None = None,
) -> Verdict:
    """Verify a bundle offline (steps 1-6); raise ``InvalidData`` naming the failing step.

    ``registry`` pins the genesis registry the caller trusts (its JSON, compared
    in canonical form, or a ``Registry``); ``parcel`` the parcel the caller
    expects the bundle to be about.
    """
    return _Verifier(registry, parcel).run(data)


def check_bundle(
    data: bytes | Mapping[str, Any],
    *,
    registry: bytes | Registry | None = None,
    parcel: str | None = None,
) -> BundleResult:
    """``verify_bundle`` that returns a ``BundleResult`` instead of raising."""
    v = _Verifier(registry, parcel)
    try:
        verdict = v.run(data)
    except InvalidData as exc:
        return BundleResult(False, STEPS[v.step - 1], str(exc), None)
    return BundleResult(True, "verified", None, verdict)


# ---------------------------------------------------------------- the verifier


class _At:
    """``_Verifier.at``'s context: entered around every header, record and block checked,
    so a plain class (a generator-based context manager costs several times more)."""

    __slots__ = ("verifier", "where")

    def __init__(self, verifier: _Verifier, where: str) -> None:
        self.verifier = verifier
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any
    ) -> None:
        if not isinstance(exc, InvalidData) or hasattr(exc, _STEP_ATTR):
            return  # nothing raised, or not ours to restate: it goes on as it is
        n = self.verifier.step
        where = self.where
        text = f"step {n} ({STEPS[n - 1]}): {where + ': ' if where else ''}{exc}"
        new = type(exc).__new__(type(exc))
        new.__dict__.update(exc.__dict__)
        new.args = (text,)
        new.message = text
        setattr(new, _STEP_ATTR, n)
        raise new from exc


_KEY_KINDS = frozenset({"key.rotate", "key.replace", "member.admit"})


class _Verifier:
    def __init__(self, trusted: bytes | Registry | None, parcel: str | None) -> None:
        self.trusted = trusted
        self.parcel = parcel
        self.step = 1
        self.bundle: Bundle | None = None
        self.registry: Registry | None = None
        self.headers: dict[tuple[str, int], SignedHeader] = {}
        self.heights: dict[str, list[int]] = {}
        self.block_of: dict[tuple[str, int], int] = {}  # record (chain, index) -> block height
        self.in_block: dict[tuple[str, int], list[BundleRecord]] = {}
        self.proven: set[tuple[str, int]] = set()
        self.spans: dict[str, list[tuple[int, int, str]]] | None = None

    # ------------------------------------------------------------ errors
    def at(self, where: str = "") -> _At:
        """Restate any ``InvalidData`` raised inside as ``step N (name): where: ...``."""
        return _At(self, where)

    # ------------------------------------------------------------ driver
    def run(self, data: bytes | Mapping[str, Any]) -> Verdict:
        self.step = 1
        with self.at():
            raw = data if isinstance(data, bytes | bytearray) else serialize_bundle(data)
            self.bundle = parse_bundle(bytes(raw))
        self.step = 2
        with self.at():
            self.registry = self._registry(self.bundle)
        self.step = 3
        with self.at():
            self._headers(self.bundle, self.registry)
        self.step = 4
        with self.at():
            self._inclusion(self.bundle)
        self.step = 5
        with self.at():
            state = self._replay(self.bundle, self.registry)
        self.step = 6
        with self.at():
            verdict = self._subject(self.bundle, self.registry, state)
        self.step = 7
        with self.at():
            return self._disclosures(self.bundle, verdict)

    # ------------------------------------------------------------ step 7
    def _disclosures(self, b: Bundle, verdict: Verdict) -> Verdict:
        """Each disclosure opens a committed field of a record of the bundle."""
        by_leaf = {r.record.leaf: r.record for r in b.records}
        for i, d in enumerate(b.disclosures):
            with self.at(f"disclosures[{i}] ({d.path})"):
                record = by_leaf.get(d.record)
                if record is None:
                    raise DisclosureError(
                        "opens no record of the bundle", record=d.record.hex(), field=d.path
                    )
                d.check_record(record.leaf, record.raw)
        return replace(verdict, disclosures=b.disclosures)

    # ------------------------------------------------------------ step 2
    def _registry(self, b: Bundle) -> Registry:
        body = canonical_bytes(b.registry)
        registry = Registry.parse(body, strict=True)
        if self.trusted is not None:
            trusted = (
                self.trusted.to_bytes()
                if isinstance(self.trusted, Registry)
                else canonical_bytes(load_json(self.trusted, what="trusted registry"))
            )
            if trusted != body:
                raise SignatureError(
                    f"the bundle's registry (network {registry.network_id[:16]}) differs from "
                    "the trusted registry",
                    field="registry",
                )
        network = registry.network_id
        for s in b.headers:
            if s.header.network != network:
                raise BlockError(
                    f"header {s.header.chain}/{s.header.height} belongs to another network",
                    field="headers",
                )
        for r in b.records:
            if r.record.network != network:
                raise BlockError(f"record {r.name} belongs to another network", field="records")
        return registry

    # ------------------------------------------------------------ step 3
    def _kp_size(self, h: Header) -> int | None:
        """The KP size a header witnesses (None for KP's own headers: no limit)."""
        if h.chain == GOVERNANCE_CHAIN:
            return None
        for w in h.witness:
            if w.chain == GOVERNANCE_CHAIN:
                return self.headers[(w.chain, w.height)].header.size
        return 0

    def _headers(self, b: Bundle, registry: Registry) -> None:  # noqa: PLR0912, PLR0915 - every header rule of a node, in order
        self.headers = {(s.header.chain, s.header.height): s for s in b.headers}
        for chain, height in self.headers:
            self.heights.setdefault(chain, []).append(height)
        # 3a. along each chain, sizes and times never go backwards
        for chain, heights in self.heights.items():
            heights.sort()
            for lo, hi in itertools.pairwise(heights):
                a, h = self.headers[(chain, lo)].header, self.headers[(chain, hi)].header
                with self.at(f"header {chain}/{hi}"):
                    if h.size < a.size:
                        raise BlockError(
                            f"size {h.size} is below {chain}/{lo}'s {a.size}", field="size"
                        )
                    if h.time < a.time:
                        raise BlockError(
                            f"time {h.time} is before {chain}/{lo}'s {a.time}", field="time"
                        )
                    _witness_order(a, h)
        # 3b. the KP header every header witnesses is in the bundle (it fixes the keys)
        for (chain, height), s in self.headers.items():
            for w in s.header.witness:
                if w.chain == GOVERNANCE_CHAIN and (w.chain, w.height) not in self.headers:
                    with self.at(f"header {chain}/{height}"):
                        raise SchemaError(
                            f"witnesses {w.chain}/{w.height}, which the bundle lacks",
                            field="witness",
                        )
        # 3c. every record's block: the first header with size > index, and the one before
        sizes = {
            c: [self.headers[(c, h)].header.size for h in hs] for c, hs in self.heights.items()
        }
        for r in b.records:
            with self.at(f"record {r.name}"):
                heights = self.heights.get(r.chain, [])
                pos = bisect.bisect_right(sizes.get(r.chain, []), r.index)
                if pos == len(heights):
                    raise SchemaError(f"no header of {r.chain} in the bundle covers it")
                height = heights[pos]
                if height > 1:
                    before = self.headers.get((r.chain, height - 1))
                    if before is None:
                        raise SchemaError(
                            f"the bundle lacks {r.chain}/{height - 1}, the header before its "
                            f"block {r.chain}/{height}"
                        )
                    if before.header.size > r.index:  # pragma: no cover - sizes are sorted
                        raise BlockError(f"{r.chain}/{height - 1} already holds it")
                self.block_of[(r.chain, r.index)] = height
                self.in_block.setdefault((r.chain, height), []).append(r)
        # 3d. the governance prefix the headers witness is complete
        kp_size = max(
            (self.headers[(GOVERNANCE_CHAIN, h)].header.size for h in self.heights.get("KP", [])),
            default=0,
        )
        have = {r.index for r in b.records if r.chain == GOVERNANCE_CHAIN}
        missing = [i for i in range(kp_size) if i not in have]
        if missing:
            with self.at(f"record KP/{missing[0]}"):
                raise SchemaError(
                    f"the bundle's KP headers reach size {kp_size}, so it must hold every KP "
                    "record below it"
                )
        # 3e. signatures, under the key each chain has at each height
        keys = genesis(registry)
        order = sorted(self.heights, key=lambda c: (c != GOVERNANCE_CHAIN, c))
        for chain in order:
            for height in self.heights[chain]:
                s = self.headers[(chain, height)]
                with self.at(f"header {chain}/{height}"):
                    key = key_at(keys, chain, height)
                    if key is None:
                        raise BlockError(f"no key for {chain} at height {height}", field="key_id")
                    s.verify_signature(key)
                for r in self.in_block.get((chain, height), []):
                    kind = r.record.kind.value
                    if kind in _KEY_KINDS and (kind != "key.rotate") == (chain == GOVERNANCE_CHAIN):
                        with self.at(f"key history: record {r.name}"):
                            self._prove(r)
                            keys.keys.append(self._key_event(r, registry, height))

        # 3f. consecutive headers link up, and witnesses held are the very headers named
        network = bytes.fromhex(registry.network_id)
        for chain, heights in self.heights.items():
            first = self.headers[(chain, heights[0])].header
            if first.height == 1 and first.prev != network:
                with self.at(f"header {chain}/1"):
                    raise BlockError("prev of the first block must be the network id", field="prev")
            for lo, hi in itertools.pairwise(heights):
                a, h = self.headers[(chain, lo)].header, self.headers[(chain, hi)].header
                if hi == lo + 1 and h.prev != a.hash:
                    with self.at(f"header {chain}/{hi}"):
                        raise BlockError(f"prev is not the hash of {chain}/{lo}", field="prev")
        for (chain, height), s in self.headers.items():
            for w in s.header.witness:
                held = self.headers.get((w.chain, w.height))
                if held is not None and held.header.hash != w.hash:
                    with self.at(f"header {chain}/{height}"):
                        raise WitnessInvalid(
                            f"witnesses a {w.chain}/{w.height} other than the bundle's",
                            field="witness",
                        )

        # 3g. every block holding a record is cosigned by `cosign` other authorities
        self._cosigned(registry)

    def _spans(self) -> dict[str, list[tuple[int, int, str]]]:
        """``_spans`` of the bundle's headers (steps 3g and 6 read them; made once)."""
        if self.spans is None:
            self.spans = _spans({k: s.header for k, s in self.headers.items()})
        return self.spans

    def _cosigned(self, registry: Registry) -> None:
        need = registry.cosign
        if need == 0:
            return
        spans = self._spans()
        for chain, height in sorted(self.in_block):
            have = _cosigners(spans, chain, height)
            if len(have) < need:
                raise NotCosigned(chain, height, have, need)

    def _key_event(self, r: BundleRecord, registry: Registry, height: int) -> KeyEvent:
        body = r.record.body
        if isinstance(body, KeyRotate):
            return KeyEvent(r.chain, height + 1, body.key, 0)
        if isinstance(body, MemberAdmit):
            return KeyEvent(body.code, 1, body.key, r.index + 1)
        assert isinstance(body, KeyReplace)
        verify_threshold(
            Tag.SIG_RECORD,
            r.record.unsigned_bytes(),
            [(s.key_id, s.sig) for s in r.record.sigs],
            registry.governance_keys,
            registry.threshold,
            what=f"governance record {r.record.id}",
        )
        return KeyEvent(body.code, body.from_height, body.key, r.index + 1)

    def _prove(self, r: BundleRecord) -> None:
        key = (r.chain, r.index)
        if key in self.proven:
            return
        h = self.headers[(r.chain, self.block_of[key])].header
        verify_inclusion(r.record.leaf, r.index, h.size, r.proof, h.root)
        if r.record.time > h.time:
            raise BlockError(
                f"dated {r.record.time}, after its block {h.chain}/{h.height} of {h.time}",
                field="time",
            )
        self.proven.add(key)

    # ------------------------------------------------------------ step 4
    def _inclusion(self, b: Bundle) -> None:
        for r in b.records:
            with self.at(f"record {r.name} inclusion proof"):
                self._prove(r)

    # ------------------------------------------------------------ step 5
    def _authority(self, state: State, h: Header) -> None:
        if h.chain == GOVERNANCE_CHAIN:
            return
        if member_role(state, h.chain, self._kp_size(h) or 0) != "authority":
            raise BlockError(f"{h.chain} is not an authority with a chain", field="chain")

    def _replay(self, b: Bundle, registry: Registry) -> State:
        state = genesis(registry)
        for (chain, height), s in self.headers.items():
            state.headers[(chain, height)] = s.header
            state.signatures[(chain, height)] = s.sig
        blocks = {c: sorted(h for (cc, h) in self.in_block if cc == c) for c in self.heights}
        done = dict.fromkeys(blocks, 0)

        def ready(h: Header) -> bool:
            """Every bundle block at or below the heights ``h`` witnesses is applied."""
            for w in h.witness:
                todo = blocks.get(w.chain, [])
                if done.get(w.chain, 0) < len(todo) and todo[done[w.chain]] <= w.height:
                    return False
            return True

        remaining = sum(len(v) for v in blocks.values())
        order = sorted(blocks, key=lambda c: (c != GOVERNANCE_CHAIN, c))
        while remaining:
            progressed = False
            for chain in order:
                while done[chain] < len(blocks[chain]):
                    height = blocks[chain][done[chain]]
                    h = self.headers[(chain, height)].header
                    if not ready(h):
                        break
                    self._apply_block(state, registry, h)
                    done[chain] += 1
                    remaining -= 1
                    progressed = True
            if not progressed:
                stuck = [f"{c}/{blocks[c][done[c]]}" for c in order if done[c] < len(blocks[c])]
                raise WitnessInvalid(
                    f"the blocks {', '.join(stuck[:4])} witness each other in a cycle: "
                    "no causal order exists"
                )
        for (chain, height), s in self.headers.items():
            with self.at(f"header {chain}/{height}"):
                self._authority(state, s.header)
        return state

    def _apply_block(self, state: State, registry: Registry, h: Header) -> None:
        with self.at(f"block {h.chain}/{h.height}"):
            self._authority(state, h)
        witness = {
            w.chain: self.headers[(w.chain, w.height)].header
            for w in h.witness
            if (w.chain, w.height) in self.headers
        }
        ctx = Context(registry, h.chain, h.height, h.time, witness)
        for r in self.in_block[(h.chain, h.height)]:
            with self.at(f"record {r.name} ({r.record.kind.value} {r.record.id})"):
                apply_record(state, r.record, r.index, ctx)

    # ------------------------------------------------------------ step 6
    def _subject(self, b: Bundle, registry: Registry, state: State) -> Verdict:
        if self.parcel is not None and self.parcel != b.subject:
            raise SchemaError(
                f"the bundle is about parcel {b.subject}, not {self.parcel}", field="subject"
            )
        parcel = state.parcel(b.subject)
        if parcel is None:
            raise UnknownReference(
                f"no record of the bundle creates parcel {b.subject}", field="subject"
            )
        checkpoints = self._checkpoints(b, registry, state)
        parents: dict[str, list[str]] = {}
        for e in state.edges:
            parents.setdefault(e.child, []).append(e.parent)
        lineage: list[str] = []
        todo, seen = [b.subject], {b.subject}
        while todo:
            for p in parents.get(todo.pop(), []):
                if p not in seen:
                    seen.add(p)
                    lineage.append(p)
                    todo.append(p)
        records = {(r.chain, r.index): r.record for r in b.records}
        sources: list[Source] = []
        for pid in sorted(seen):
            root = state.parcel(pid)
            if pid in parents or root is None:
                continue
            source = _source(root, records)
            if source is not None:
                sources.append(source)
        certificates = sorted(
            (c for c in state.certificates.values() if seen.intersection(c.parcels)),
            key=lambda c: (c.issued, c.issue_ref.chain, c.issue_ref.index),
        )
        last = [e for e in state.events if e.parcel == b.subject][-1]
        as_of = self.headers[(last.ref.chain, last.height)].header
        return Verdict(
            network=registry.network_id,
            subject=b.subject,
            chain=parcel.chain,
            custodian=parcel.custodian,
            status=parcel.status,
            weight=parcel.weight,
            hs=parcel.hs,
            origin=parcel.origin,
            claims=parcel.claims,
            as_of=(as_of.chain, as_of.height, as_of.time),
            lineage=tuple(sorted(lineage)),
            sources=tuple(sources),
            certificates=tuple(certificates),
            records=len(b.records),
            headers=len(b.headers),
            checkpoints=checkpoints,
        )

    def _checkpoints(
        self, b: Bundle, registry: Registry, state: State
    ) -> tuple[tuple[str, int, str], ...]:
        """The subject's slot in the state of every chain that acted on it, or to which
        one of its certificates goes, at that chain's newest cosigned header: the
        bundle's records of the subject on that chain must be as many, and end with
        the same record, as the header commits to."""
        subject = b.subject
        acted = [e for e in state.events if e.parcel == subject]
        chains = {e.ref.chain for e in acted} | {
            c.destination for c in state.certificates.values() if subject in c.parcels
        }
        given = {x.chain: x for x in b.states}
        extra = sorted(set(given) - chains)
        if extra:
            raise SchemaError(
                f"a state proof of {extra[0]}, where no record of the bundle acts on "
                f"{subject} and none of its certificates goes",
                field="state",
            )
        headers = {k: s.header for k, s in self.headers.items()}
        out: list[tuple[str, int, str]] = []
        for chain in sorted(chains):
            entry = given.get(chain)
            if entry is None:
                raise RecordOmitted(
                    f"no state proof of {subject} on {chain}, whose records act on it or "
                    "to which one of its certificates goes",
                    field="state",
                )
            top = checkpoint(headers, chain, registry.cosign, self._spans())
            if top is None or entry.height != top:
                raise RecordOmitted(
                    f"the state proof of {chain} is against {chain}/{entry.height}; the "
                    f"bundle's newest cosigned header of {chain} is "
                    f"{'none' if top is None else f'{chain}/{top}'}",
                    field=f"state.{chain}.height",
                )
            h = headers[(chain, top)]
            with self.at(f"state of {subject} on {chain}/{top}"):
                verify_state_proof(entry.proof, h.state)
            mine = [e.ref.hash for e in acted if e.ref.chain == chain]
            want = (len(mine), mine[-1] if mine else None)
            if (entry.proof.count, entry.proof.latest) != want:
                said = entry.proof.latest.hex()[:16] if entry.proof.latest else "none"
                held = want[1].hex()[:16] if want[1] else "none"
                raise RecordOmitted(
                    f"{chain}/{top} commits to {entry.proof.count} record(s) of {chain} "
                    f"acting on {subject}, the latest {said}; the bundle holds {want[0]}, "
                    f"the latest {held}: a record of the subject is left out",
                    field=f"state.{chain}",
                )
            out.append((chain, top, h.time))
        return tuple(out)


def _spans(headers: Mapping[tuple[str, int], Header]) -> dict[str, list[tuple[int, int, str]]]:
    """For each chain, ``(from, to, authority)``: that authority (not ``KP``) witnessed
    ``chain/to``, and through the held headers ``from .. to``, every block in between."""
    heights: dict[str, list[int]] = {}
    for chain, height in sorted(headers):
        heights.setdefault(chain, []).append(height)
    start: dict[tuple[str, int], int] = {}
    for chain, hs in heights.items():
        for i, height in enumerate(hs):
            linked = i > 0 and hs[i - 1] == height - 1
            start[(chain, height)] = start[(chain, hs[i - 1])] if linked else height
    spans: dict[str, list[tuple[int, int, str]]] = {}
    for (other, _), h in headers.items():
        if other == GOVERNANCE_CHAIN:
            continue
        for w in h.witness:
            if w.chain != other and (w.chain, w.height) in start:
                spans.setdefault(w.chain, []).append((start[(w.chain, w.height)], w.height, other))
    return spans


def _cosigners(
    spans: Mapping[str, list[tuple[int, int, str]]], chain: str, height: int
) -> tuple[str, ...]:
    return tuple(
        sorted({o for lo, hi, o in spans.get(chain, []) if lo <= height <= hi and o != chain})
    )


def checkpoint(
    headers: Mapping[tuple[str, int], Header],
    chain: str,
    cosign: int,
    spans: Mapping[str, list[tuple[int, int, str]]] | None = None,
) -> int | None:
    """The highest header of ``chain`` among ``headers`` that ``cosign`` other authorities
    witness (step 3g's rule; with ``cosign`` 0, its highest header), or None.

    The subject's state is proven against it (step 6); the builder picks it the same way.
    ``spans`` is ``_spans(headers)`` when the caller has it already.
    """
    spans = _spans(headers) if spans is None else spans
    held = sorted((h for c, h in headers if c == chain), reverse=True)
    for height in held:
        if len(_cosigners(spans, chain, height)) >= cosign:
            return height
    return None


def _witness_order(a: Header, h: Header) -> None:
    """A node's rule between two headers of one chain, ``a`` below ``h``: the height
    witnessed of every chain never goes back, and a chain once witnessed is never
    dropped (``ledger.blocks.check_link`` step 4, applied across any gap)."""
    before = {w.chain: w.height for w in a.witness}
    for w in h.witness:
        if w.height < before.get(w.chain, 0):
            raise BlockError(
                f"witness of {w.chain} went back from {before[w.chain]} to {w.height} "
                f"(since {a.chain}/{a.height})",
                field="witness",
            )
    dropped = set(before) - {w.chain for w in h.witness}
    if dropped:
        raise BlockError(
            f"witness dropped {sorted(dropped)} (since {a.chain}/{a.height})", field="witness"
        )


def _source(p: Parcel, records: Mapping[tuple[str, int], Record]) -> Source | None:
    record = records.get((p.created.chain, p.created.index))
    if record is None:
        return None
    body = record.body
    if isinstance(body, ParcelPurchase):  # a first sale: the claim is where it was dug
        return Source(p.id, p.created.chain, body.claim, body.bought, body.weight, p.created, True)
    if not isinstance(body, ParcelRegister):
        return None
    return Source(p.id, p.created.chain, body.mine, body.produced, body.weight, p.created)
