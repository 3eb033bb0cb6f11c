"""The genesis registry: who is in the network, with which keys, under which rules.

On the wire::

    {"registry": {"v": 1, "name": ..., "created": <time>,
                  "participants": [{"code", "name", "role", "url", "key"}...],
                  "governance": {"keys": [<hex>...], "threshold": 2,
                                 "sealer": "BW"},      # optional
                  "params": {"tolerance_bp": 50, "max_validity_days": 60,
                             "max_block_records": 1000, "max_block_bytes": 8388608,
                             "heartbeat_seconds": 5,
                             "issue_backdate_days": 3,   # optional, 3 when absent
                             "producers": {"2022": ["AO", "BW", ...], ...}}},
     "sigs": [{"key_id": <hex>, "sig": <hex>}...]}

The network id is ``SHA-256("KPL-REGISTRY-V1\\n" || canonical(registry))``;
every record and header names it. The registry is valid only when at least
``threshold`` distinct governance keys sign those same bytes.

``governance.sealer`` names the KP secretariat: the authority whose node
seals the governance chain ``KP`` (its registry key signs ``KP``'s headers
from height 1). Governance keys never seal anything: they only sign
records, offline. Without ``sealer`` the first authority listed seals ``KP``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kpledger.ledger.artisanal import MIN_CELL
from kpledger.ledger.canonical import Tag, canonical_bytes, from_hex, parse_canonical, tagged_hash
from kpledger.ledger.crypto import PublicKey, Signer
from kpledger.ledger.errors import SchemaError, SignatureError, ThresholdError
from kpledger.ledger.kpdata import PRODUCERS
from kpledger.ledger.records import GOVERNANCE_CHAIN, PARTICIPANT_ROLES
from kpledger.ledger.schema import CODE, Fields

__all__ = [
    "Params",
    "Participant",
    "Registry",
    "SignatureSet",
    "verify_threshold",
]

MAX_PARTICIPANTS = 500
ISSUE_BACKDATE_DAYS = 3


def _or_default(days: int | None) -> int:
    return ISSUE_BACKDATE_DAYS if days is None else days


def _min_cell(value: int | None) -> int:
    return MIN_CELL if value is None else value


@dataclass(frozen=True)
class Participant:
    code: str
    name: str
    role: str
    url: str
    key: PublicKey

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "role": self.role,
            "url": self.url,
            "key": self.key.hex(),
        }


@dataclass(frozen=True)
class Params:
    """Network parameters every node applies identically.

    ``producers`` (optional) names, per calendar year, the participants that
    produced rough diamonds that year according to the KP statistics: the
    audit report's reference for "production where none is recorded". A year
    it does not name falls back to the shipped 2023 table
    (``ledger.kpdata.PRODUCERS``). Absent, it is left out of the registry's
    bytes, so networks created without it keep their id.
    """

    tolerance_bp: int = 50  # received weight may differ by 0.5 % before a discrepancy
    max_validity_days: int = 60
    max_block_records: int = 1000
    max_block_bytes: int = 8 * 1024 * 1024
    heartbeat_seconds: int = 5
    #: a certificate's issue date may lie this many days before its record's date
    #: (a national system's batch sent at night); never after it.
    issue_backdate_days: int = ISSUE_BACKDATE_DAYS
    producers: tuple[tuple[int, frozenset[str]], ...] = ()
    #: other authorities whose signed headers must witness a block before a bundle
    #: holding it verifies offline; absent: min(2, authorities - 1) (``Registry.cosign``)
    cosign: int | None = None
    #: statistical disclosure control: a public statistics cell (and a quarterly
    #: report's cell) built from fewer records than this shows no USD
    min_cell: int = MIN_CELL

    def producers_in(self, year: int) -> frozenset[str]:
        """Participants with recorded production in ``year`` (the network's reference)."""
        for y, codes in self.producers:
            if y == year:
                return codes
        return PRODUCERS

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tolerance_bp": self.tolerance_bp,
            "max_validity_days": self.max_validity_days,
            "max_block_records": self.max_block_records,
            "max_block_bytes": self.max_block_bytes,
            "heartbeat_seconds": self.heartbeat_seconds,
        }
        # absent means the default, so registries written before the parameter
        # existed keep their bytes and their network id
        if self.issue_backdate_days != ISSUE_BACKDATE_DAYS:
            out["issue_backdate_days"] = self.issue_backdate_days
        if self.cosign is not None:
            out["cosign"] = self.cosign
        if self.min_cell != MIN_CELL:
            out["min_cell"] = self.min_cell
        if self.producers:
            out["producers"] = {str(y): sorted(codes) for y, codes in self.producers}
        return out

    @classmethod
    def parse(cls, f: Fields) -> Params:
        params = cls(
            f.integer("tolerance_bp", low=0, high=10_000),
            f.integer("max_validity_days", low=1, high=3660),
            f.integer("max_block_records", low=1, high=100_000),
            f.integer("max_block_bytes", low=1024, high=256 * 1024 * 1024),
            f.integer("heartbeat_seconds", low=1, high=86_400),
            _or_default(f.optional_integer("issue_backdate_days", low=0, high=31)),
            _parse_producers(f) if f.has("producers") else (),
            f.optional_integer("cosign", low=0, high=64),
            _min_cell(f.optional_integer("min_cell", low=1, high=1000)),
        )
        f.done()
        return params


def _parse_producers(f: Fields) -> tuple[tuple[int, frozenset[str]], ...]:
    """``{"2022": ["AO", "BW", ...], ...}``: years of four digits, participant codes."""
    value = f.mapping("producers")
    if len(value) > 1000:
        raise SchemaError("at most 1000 years", field=f.path("producers"))
    out: list[tuple[int, frozenset[str]]] = []
    for year, codes in sorted(value.items()):
        where = f"{f.path('producers')}.{year}"
        if not (isinstance(year, str) and len(year) == 4 and year.isdigit()):
            raise SchemaError("years are four-digit strings", field=where)
        if not isinstance(codes, list) or len(codes) > 1000:
            raise SchemaError("expected a list of up to 1000 participant codes", field=where)
        for code in codes:
            if not isinstance(code, str) or CODE.match(code) is None:
                raise SchemaError(f"not a participant code: {code!r}", field=where)
        if len(set(codes)) != len(codes) or codes != sorted(codes):
            raise SchemaError("codes must be sorted and distinct", field=where)
        out.append((int(year), frozenset(codes)))
    return tuple(out)


@dataclass(frozen=True)
class SignatureSet:
    """Signatures over one byte string, as (key id, signature) pairs."""

    sigs: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, f: Fields, name: str = "sigs") -> SignatureSet:
        out: list[tuple[str, bytes]] = []
        for path, item in f.items(name, low=0, high=64):
            s = Fields(item, path)
            out.append(
                (
                    from_hex(s.string("key_id", max_len=64), field=s.path("key_id"), size=32).hex(),
                    from_hex(s.string("sig", max_len=128), field=s.path("sig"), size=64),
                )
            )
            s.done()
        return cls(tuple(out))

    def to_json(self) -> list[dict[str, str]]:
        return [{"key_id": k, "sig": s.hex()} for k, s in self.sigs]


def verify_threshold(
    tag: Tag,
    payload: bytes,
    sigs: Sequence[tuple[str, bytes]],
    keys: Sequence[PublicKey],
    threshold: int,
    *,
    what: str,
    strict: str = "",
) -> None:
    """Raise ``ThresholdError`` unless ``threshold`` distinct ``keys`` signed ``payload``.

    Signatures by unknown keys, duplicates and invalid signatures count for
    nothing; the error says how many valid ones were found. ``strict`` (the
    signatures' field, e.g. ``registry.sigs``) also refuses any such signature
    once the threshold is met: a ``SignatureError`` naming the first, as
    ``strict[i]``. Each signature is verified once either way.
    """
    by_id = {k.key_id: k for k in keys}
    valid: set[str] = set()
    refused: SignatureError | None = None
    for i, (key_id, sig) in enumerate(sigs):
        where = f"{strict}[{i}]" if strict else ""
        key = by_id.get(key_id)
        problem: SignatureError | None = None
        if key is None:
            problem = SignatureError(f"key {key_id[:16]} is not a governance key", field=where)
        elif key_id in valid:
            problem = SignatureError(f"key {key_id[:16]} signs twice", field=where)
        else:
            try:
                key.verify(tag, payload, sig, field=where)
                valid.add(key_id)
            except SignatureError as exc:
                problem = exc
        if refused is None:
            refused = problem
    if len(valid) < threshold:
        raise ThresholdError(what, valid=len(valid), required=threshold)
    if strict and refused is not None:
        raise refused


@dataclass(frozen=True)
class Registry:
    """A verified genesis registry. Build with ``Registry.parse`` or ``Registry.create``."""

    name: str
    created: str
    participants: tuple[Participant, ...]
    governance_keys: tuple[PublicKey, ...]
    threshold: int
    params: Params
    sealer: str | None
    signatures: SignatureSet
    body_bytes: bytes
    network_id: str

    # ------------------------------------------------------------ building
    @staticmethod
    def body_json(
        *,
        name: str,
        created: str,
        participants: Sequence[Participant],
        governance_keys: Sequence[PublicKey],
        threshold: int,
        params: Params,
        sealer: str | None = None,
    ) -> dict[str, Any]:
        governance: dict[str, Any] = {
            "keys": [k.hex() for k in governance_keys],
            "threshold": threshold,
        }
        if sealer is not None:
            governance["sealer"] = sealer
        return {
            "v": 1,
            "name": name,
            "created": created,
            "participants": [p.to_json() for p in participants],
            "governance": governance,
            "params": params.to_json(),
        }

    @classmethod
    def create(
        cls,
        *,
        name: str,
        created: str,
        participants: Sequence[Participant],
        governance: Sequence[Signer],
        threshold: int,
        params: Params | None = None,
        signers: Sequence[Signer] | None = None,
        sealer: str | None = None,
    ) -> Registry:
        """Build and sign a registry; ``signers`` defaults to all governance keys."""
        body = cls.body_json(
            name=name,
            created=created,
            participants=participants,
            governance_keys=[g.public for g in governance],
            threshold=threshold,
            params=params or Params(),
            sealer=sealer,
        )
        body_bytes = canonical_bytes(body)
        sigs = [
            {"key_id": s.public.key_id, "sig": s.sign(Tag.SIG_REGISTRY, body_bytes).hex()}
            for s in (governance if signers is None else signers)
        ]
        return cls.parse(canonical_bytes({"registry": body, "sigs": sigs}))

    # ------------------------------------------------------------ parsing
    @classmethod
    def parse(cls, data: bytes, *, strict: bool = False) -> Registry:
        """Parse and verify a signed registry (canonical JSON bytes). ``strict`` (what
        a bundle's verifier asks): every signature must be valid, by a distinct
        governance key, not only ``threshold`` of them (``SignatureError`` naming
        ``registry.sigs[i]``)."""
        outer = Fields(parse_canonical(data, what="registry"))
        body = outer.mapping("registry")
        signatures = SignatureSet.parse(outer)
        outer.done()
        body_bytes = canonical_bytes(body)
        f = Fields(body, "registry")
        f.integer("v", low=1, high=1)
        name = f.string("name", max_len=100)
        created = f.time("created")
        participants: list[Participant] = []
        for path, item in f.items("participants", low=1, high=MAX_PARTICIPANTS):
            p = Fields(item, path)
            participants.append(
                Participant(
                    p.string("code", pattern=CODE, max_len=8),
                    p.string("name", max_len=200),
                    p.choice("role", PARTICIPANT_ROLES),
                    p.string("url", max_len=300),
                    PublicKey.from_hex(p.string("key", max_len=64), field=p.path("key")),
                )
            )
            p.done()
        codes = [p.code for p in participants]
        if len(set(codes)) != len(codes):
            raise SchemaError("participant codes must be unique", field="registry.participants")
        if GOVERNANCE_CHAIN in codes:
            raise SchemaError(
                f"{GOVERNANCE_CHAIN} is the governance chain, not a participant",
                field="registry.participants",
            )
        g = f.obj("governance")
        keys = tuple(
            PublicKey.from_hex(item, field=path) for path, item in g.items("keys", low=1, high=64)
        )
        if len({k.key_id for k in keys}) != len(keys):
            raise SchemaError("governance keys must be distinct", field="registry.governance.keys")
        threshold = g.integer("threshold", low=1, high=len(keys))
        authorities = [p.code for p in participants if p.role == "authority"]
        sealer: str | None
        if g.has("sealer"):
            sealer = g.string("sealer", pattern=CODE, max_len=8)
            if sealer not in authorities:
                raise SchemaError(
                    f"the KP sealer {sealer} must be an authority of the registry",
                    field="registry.governance.sealer",
                )
        else:
            sealer = authorities[0] if authorities else None  # no authority: no KP chain
        g.done()
        params = Params.parse(f.obj("params"))
        if params.cosign is not None and params.cosign > max(len(authorities) - 1, 0):
            raise SchemaError(
                f"cosign {params.cosign} exceeds the {len(authorities)} authorities minus one",
                field="registry.params.cosign",
            )
        f.done()
        verify_threshold(
            Tag.SIG_REGISTRY,
            body_bytes,
            signatures.sigs,
            keys,
            threshold,
            what="genesis registry",
            strict="registry.sigs" if strict else "",
        )
        return cls(
            name,
            created,
            tuple(participants),
            keys,
            threshold,
            params,
            sealer,
            signatures,
            body_bytes,
            tagged_hash(Tag.REGISTRY, body_bytes).hex(),
        )

    def to_bytes(self) -> bytes:
        return canonical_bytes(
            {"registry": parse_canonical(self.body_bytes), "sigs": self.signatures.to_json()}
        )

    # ------------------------------------------------------------ queries
    def participant(self, code: str) -> Participant | None:
        for p in self.participants:
            if p.code == code:
                return p
        return None

    @property
    def kp_key(self) -> PublicKey | None:
        """The key that signs the governance chain's headers from height 1: the sealer's."""
        found = None if self.sealer is None else self.participant(self.sealer)
        return None if found is None else found.key

    @property
    def cosign(self) -> int:
        """Other authorities that must witness a block for a bundle to hold it
        (``params.cosign``; absent, 2, or the genesis authorities minus one if fewer)."""
        if self.params.cosign is not None:
            return self.params.cosign
        return max(0, min(2, len(self.authorities) - 1))

    @property
    def authorities(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.participants if p.role == "authority")

    @property
    def chains(self) -> tuple[str, ...]:
        """Every chain of the network: the authorities' and the governance chain."""
        return (*self.authorities, GOVERNANCE_CHAIN)
