"""Conformance vectors that fail at step 5 (*replay*) of bundle verification.

A bundle reaches step 5 only when every header is signed by its chain's key,
linked and witnessed as section 4 of docs/spec/bundle.md demands, and every
record is in its block's tree. So these vectors are made on chains sealed
*without* the custody rules (``RawChains``): real keys (seeded, of a network
whose ``params.cosign`` is 0, so that one chain may stand alone), real
headers and inclusion proofs, and one record in the last block that a rule
refuses. Each names the rule's error code (``ledger.errors``), one or more
per record kind of section 8. The last ones are cut from a real store's
bundle instead: a record the bundle's own records need is left out (its
block and proofs stay), and the replay misses it.

``devtools.spec_vectors`` adds these cases to docs/spec/vectors/; they are not
pinned to its ``registry.json``: each carries the registry of its own network.

One concept, a little over 500 lines: the step-5 vectors, most of it the list
``CASES``, one entry per rule a record kind can break.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Header, SignedHeader, WitnessRef, seal
from kpledger.ledger.bundle import BundleRecord, BundleState, assemble_bundle, serialize_bundle
from kpledger.ledger.merkle import Frontier, MemoryTree
from kpledger.ledger.records import CertificateIssue, Kind, Record
from kpledger.ledger.registry import Params
from kpledger.ledger.statetree import StateTree, parcels_acted_on

__all__ = ["RawChains", "ReplayCase", "omission_cases", "replay_cases"]

Doc = dict[str, Any]


@dataclass(frozen=True)
class ReplayCase:
    name: str
    desc: str
    data: bytes
    parcel: str | None
    code: str | None  # None: the bundle verifies


@dataclass
class RawChains:
    """Chains sealed without the rules: each block signed by its chain's seeded key,
    linked to the one before, witnessing the heads of the chains named."""

    net: Network
    sc: Scenario = field(init=False)
    heads: dict[str, Header] = field(default_factory=dict)
    frontiers: dict[str, Frontier] = field(default_factory=dict)
    trees: dict[str, MemoryTree] = field(default_factory=dict)
    states: dict[str, StateTree] = field(default_factory=dict)
    certificates: dict[str, list[str]] = field(default_factory=dict)
    signed: list[SignedHeader] = field(default_factory=list)
    placed: list[tuple[int, Record, int]] = field(default_factory=list)  # index, record, size

    def __post_init__(self) -> None:
        self.sc = Scenario(self.net)

    def seal(self, chain: str, *records: Record, witness: Sequence[str] = ()) -> None:
        seen = [WitnessRef(h.chain, h.height, h.hash) for c in witness if (h := self.heads.get(c))]
        state = self.states.setdefault(chain, StateTree())
        for r in records:
            if isinstance(r.body, CertificateIssue):
                self.certificates[r.body.number] = [line.parcel for line in r.body.lines]
            for parcel in parcels_acted_on(r, lambda n: self.certificates.get(n, [])):
                state.record(parcel, r.leaf)
        block, frontier = seal(
            signer=self.net.signer(chain),
            network=self.net.network_id,
            chain=chain,
            prev=self.heads.get(chain),
            frontier=self.frontiers.get(chain, Frontier()),
            records=records,
            time=self.sc.tick(60),
            witness=seen,
            state=state.root(),
        )
        tree = self.trees.setdefault(chain, MemoryTree())
        start = tree.size
        tree.extend(r.leaf for r in records)
        self.placed += [(start + i, r, tree.size) for i, r in enumerate(records)]
        self.heads[chain] = block.header
        self.frontiers[chain] = frontier
        self.signed.append(block.signed)

    def bundle(self, subject: str) -> bytes:
        """Every header and record sealed so far, with proofs against each record's block."""
        records = [
            BundleRecord(i, r, tuple(self.trees[r.chain].inclusion_proof(i, size)))
            for i, r, size in self.placed
        ]
        chains: set[str] = set()  # those acting on the subject, and its certificates' destinations
        for _, r, _ in self.placed:
            if subject in parcels_acted_on(r, lambda n: self.certificates.get(n, [])):
                chains.add(r.chain)
                if isinstance(r.body, CertificateIssue):
                    chains.add(r.body.destination)
        states = [  # cosign 0: each chain's newest header is its checkpoint
            BundleState(
                c, self.heads[c].height, self.states.setdefault(c, StateTree()).prove(subject)
            )
            for c in sorted(chains)
            if c in self.heads
        ]
        return serialize_bundle(
            assemble_bundle(self.net.registry, subject, self.signed, records, states=states)
        )


def _base(seed: int) -> RawChains:
    """BW registers two parcels, EU an importer: the valid start of every case."""
    net = Network.create(("BW", "EU"), (), seed=seed, params=Params(cosign=0))
    raw = RawChains(net)
    sc = raw.sc
    raw.seal(
        "BW",
        sc.party("BW", "BW-MINE", "miner"),
        sc.party("BW", "BW-EXP", "exporter"),
        sc.party("BW", "BW-T", "trader"),
    )
    raw.seal("EU", sc.party("EU", "EU-IMP", "importer"))
    raw.seal(
        "BW",
        sc.register("BW", "BW-P1", "BW-MINE", 100_000, 13_400_000),
        sc.register("BW", "BW-P2", "BW-MINE", 50_000, 6_700_000),
    )
    return raw


def _issue_body(number: str, parcel: str, weight: int, value: int, **override: Any) -> Doc:
    body: Doc = {
        "number": number,
        "destination": "EU",
        "exporter": "BW-EXP",
        "importer": {"name": "EU importer", "address": "Antwerp"},
        "lines": [
            {
                "parcel": parcel,
                "weight": weight,
                "value": value,
                "hs": "7102.31",
                "origin": {"BW": weight},
            }
        ],
        "carats": weight,
        "value": value,
        "parcels": 1,
        "origin": "BW",
        "issued": "2026-03-02",
        "expires": "2026-03-31",
        "seal": f"SEAL-{number}",
    }
    body.update(override)
    return body


def _exported(raw: RawChains) -> Record:
    """BW-P2 sold to the exporter and certified to the EU (BW-C1); the issue record."""
    sc = raw.sc
    raw.seal("BW", sc.transfer("BW", "BW-P2", "BW-EXP"))
    issue = sc.record(
        "BW", Kind.CERTIFICATE_ISSUE, _issue_body("BW-C1", "BW-P2", 50_000, 6_700_000)
    )
    raw.seal("BW", issue)
    return issue


def _ref(raw: RawChains, record: Record) -> Doc:
    index = next(i for i, r, _ in raw.placed if r is record)
    return {"chain": record.chain, "index": index, "hash": record.leaf.hex()}


Step = Callable[[RawChains], None]


def _split(parcel: str, children: list[tuple[str, int, int]]) -> Step:
    return lambda raw: raw.seal("BW", raw.sc.split("BW", parcel, children))


def _double_spend(raw: RawChains) -> None:
    sc = raw.sc
    raw.seal(
        "BW",
        sc.split("BW", "BW-P1", [("BW-P1a", 60_000, 8_040_000), ("BW-P1b", 40_000, 5_360_000)]),
    )
    raw.seal("BW", sc.transfer("BW", "BW-P1", "BW-T"))


def _merge_two_holders(raw: RawChains) -> None:
    sc = raw.sc
    raw.seal("BW", sc.transfer("BW", "BW-P2", "BW-T"))
    body = {
        "parents": ["BW-P1", "BW-P2"],
        "parcel": "BW-M",
        "custodian": "BW-T",
        "weight": 150_000,
        "value": 20_100_000,
    }
    raw.seal("BW", sc.record("BW", Kind.PARCEL_MERGE, body))


def _merge_weight(raw: RawChains) -> None:
    body = {
        "parents": ["BW-P1", "BW-P2"],
        "parcel": "BW-M",
        "custodian": "BW-MINE",
        "weight": 150_001,
        "value": 20_100_000,
    }
    raw.seal("BW", raw.sc.record("BW", Kind.PARCEL_MERGE, body))


def _issue(**override: Any) -> Step:
    def step(raw: RawChains) -> None:
        sc = raw.sc
        raw.seal("BW", sc.transfer("BW", "BW-P2", "BW-EXP"))
        body = _issue_body("BW-C1", "BW-P2", 50_000, 6_700_000, **override)
        raw.seal("BW", sc.record("BW", Kind.CERTIFICATE_ISSUE, body))

    return step


def _confirm(*, witness: bool = True, restrict: bool = False, bad_hash: bool = False) -> Step:
    def step(raw: RawChains) -> None:
        sc = raw.sc
        issue = _exported(raw)
        if restrict:
            raw.seal("EU", sc.restrict("EU", "BW"))
        ref = _ref(raw, issue)
        if bad_hash:
            ref["hash"] = "00" * 32
        body = {
            "number": "BW-C1",
            "ref": ref,
            "custodian": "EU-IMP",
            "received": [{"parcel": "BW-P2", "weight": 50_000}],
        }
        raw.seal(
            "EU", sc.record("EU", Kind.CERTIFICATE_CONFIRM, body), witness=["BW"] if witness else ()
        )

    return step


def _refuse_without_restriction(raw: RawChains) -> None:
    issue = _exported(raw)
    body = {
        "number": "BW-C1",
        "ref": _ref(raw, issue),
        "code": "restricted-origin",
        "reason": "no restricted share in it",
    }
    raw.seal("EU", raw.sc.record("EU", Kind.CERTIFICATE_REFUSE, body), witness=["BW"])


def _void_early(raw: RawChains) -> None:
    _exported(raw)
    raw.seal("EU")
    body = {"number": "BW-C1", "reason": "not confirmed", "importer_height": 2}
    raw.seal("BW", raw.sc.record("BW", Kind.CERTIFICATE_VOID, body), witness=["EU"])


def _one(chain: str, kind: Kind, body: Doc, *, signed: bool = False) -> Step:
    def step(raw: RawChains) -> None:
        sc = raw.sc
        signers = raw.net.governance[:2] if signed else ()
        raw.seal(chain, sc.record(chain, kind, body, signers=signers))

    return step


def _repeat_id(raw: RawChains) -> None:
    first = raw.placed[0][1]
    raw.seal(
        "BW",
        raw.sc.record(
            "BW",
            Kind.PARTY_REGISTER,
            {
                "party": "BW-OTHER",
                "name": "Other",
                "role": "trader",
                "address": "Gaborone",
            },
            record_id=first.id,
        ),
    )


def _key_rotate_same(raw: RawChains) -> None:
    key = raw.net.signer("BW").public.hex()
    raw.seal("BW", raw.sc.record("BW", Kind.KEY_ROTATE, {"key": key}))


#: (name, what it does, the last block(s), the error code of the refusing rule)
CASES: list[tuple[str, str, Step, str]] = [
    (
        "party-twice",
        "party.register of a party already registered",
        lambda raw: raw.seal("BW", raw.sc.party("BW", "BW-MINE", "miner")),
        "duplicate-record",
    ),
    (
        "party-other-chain",
        "party.register of an id of another chain",
        lambda raw: raw.seal("BW", raw.sc.party("BW", "EU-X", "trader")),
        "wrong-jurisdiction",
    ),
    (
        "revoke-unknown",
        "party.revoke of a party never registered",
        _one("BW", Kind.PARTY_REVOKE, {"party": "BW-NONE", "reason": "x"}),
        "inactive-party",
    ),
    (
        "register-twice",
        "parcel.register of an id already used",
        lambda raw: raw.seal("BW", raw.sc.register("BW", "BW-P1", "BW-MINE", 10, 10)),
        "duplicate-record",
    ),
    (
        "register-future",
        "parcel.register produced after its block's date",
        _one(
            "BW",
            Kind.PARCEL_REGISTER,
            {
                "parcel": "BW-P9",
                "custodian": "BW-MINE",
                "weight": 10,
                "value": 10,
                "hs": "7102.31",
                "mine": "Jwaneng",
                "produced": "2030-01-01",
            },
        ),
        "future-dated",
    ),
    (
        "register-custodian",
        "parcel.register for a party of another chain",
        lambda raw: raw.seal("BW", raw.sc.register("BW", "BW-P9", "EU-IMP", 10, 10)),
        "inactive-party",
    ),
    (
        "transfer-unknown-party",
        "parcel.transfer to a party never registered",
        lambda raw: raw.seal("BW", raw.sc.transfer("BW", "BW-P1", "BW-NONE")),
        "inactive-party",
    ),
    (
        "transfer-other-chain",
        "parcel.transfer of a parcel under another chain",
        lambda raw: raw.seal("EU", raw.sc.transfer("EU", "BW-P1", "EU-IMP")),
        "wrong-jurisdiction",
    ),
    (
        "transfer-unknown-parcel",
        "parcel.transfer of a parcel never registered",
        lambda raw: raw.seal("BW", raw.sc.transfer("BW", "BW-P7", "BW-T")),
        "unknown-reference",
    ),
    (
        "split-mass",
        "parcel.split whose children weigh one hundredth less",
        _split("BW-P1", [("BW-P1a", 60_000, 8_040_000), ("BW-P1b", 39_999, 5_360_000)]),
        "mass-not-conserved",
    ),
    # a split whose children are worth one cent more is no replay failure: values are
    # committed (format 2) and value conservation is a disclosure rule, checked by the
    # writer and by each holder of the disclosures, never by a verifier of the bundle
    (
        "split-child-id",
        "parcel.split into a child with another chain's id",
        _split("BW-P1", [("BW-P1a", 60_000, 8_040_000), ("EU-P1b", 40_000, 5_360_000)]),
        "wrong-jurisdiction",
    ),
    ("double-spend", "parcel.transfer of a parcel already split", _double_spend, "already-spent"),
    (
        "merge-holders",
        "parcel.merge of parcels of two custodians",
        _merge_two_holders,
        "custody-conflict",
    ),
    (
        "merge-weight",
        "parcel.merge declaring one hundredth more than its parents",
        _merge_weight,
        "mass-not-conserved",
    ),
    (
        "release-active",
        "parcel.release of a parcel not held on a discrepancy",
        _one("BW", Kind.PARCEL_RELEASE, {"parcel": "BW-P1", "reason": "x"}),
        "release-invalid",
    ),
    (
        "issue-carats",
        "certificate.issue whose total is not its lines' sum",
        _issue(carats=49_999),
        "certificate-invalid",
    ),
    (
        "issue-origin",
        "certificate.issue declaring an origin the parcel does not hold",
        _issue(
            lines=[
                {
                    "parcel": "BW-P2",
                    "weight": 50_000,
                    "value": 6_700_000,
                    "hs": "7102.31",
                    "origin": {"RU": 50_000},
                }
            ],
            origin="RU",
        ),
        "origin-not-carried",
    ),
    (
        "issue-exporter",
        "certificate.issue of a parcel the exporter does not hold",
        _issue(
            lines=[
                {
                    "parcel": "BW-P1",
                    "weight": 100_000,
                    "value": 6_700_000,
                    "hs": "7102.31",
                    "origin": {"BW": 100_000},
                }
            ],
            carats=100_000,
        ),
        "certificate-invalid",
    ),
    (
        "issue-validity",
        "certificate.issue valid for longer than params.max_validity_days",
        _issue(expires="2026-12-31"),
        "certificate-invalid",
    ),
    (
        "issue-to-itself",
        "certificate.issue with its own chain as destination",
        _issue(destination="BW"),
        "certificate-invalid",
    ),
    (
        "confirm-unwitnessed",
        "certificate.confirm in a block that does not witness the issue",
        _confirm(witness=False),
        "confirmation-invalid",
    ),
    (
        "confirm-ref",
        "certificate.confirm citing another hash for the issue record",
        _confirm(bad_hash=True),
        "confirmation-invalid",
    ),
    (
        "confirm-restricted",
        "certificate.confirm of an origin the importer restricts",
        _confirm(restrict=True),
        "restricted-origin",
    ),
    (
        "refuse-no-restriction",
        "certificate.refuse for restricted origin with none restricted",
        _refuse_without_restriction,
        "refusal-invalid",
    ),
    ("void-early", "certificate.void before the certificate expires", _void_early, "void-invalid"),
    (
        "lift-unrestricted",
        "policy.lift_origin of an origin not restricted",
        _one("EU", Kind.POLICY_LIFT_ORIGIN, {"origin": "RU", "reason": "x"}),
        "unknown-reference",
    ),
    (
        "rotate-same-key",
        "key.rotate to the key already signing",
        _key_rotate_same,
        "key-change-invalid",
    ),
    (
        "governance-off-kp",
        "member.suspend on an authority's chain",
        _one("BW", Kind.MEMBER_SUSPEND, {"code": "EU", "reason": "x"}, signed=True),
        "governance-invalid",
    ),
    ("record-id-twice", "a record id used twice on one chain", _repeat_id, "duplicate-record"),
]


def replay_cases(seed: int = 21) -> list[ReplayCase]:
    """A valid raw story, then one case per entry of ``CASES``."""
    valid = _base(seed).bundle("BW-P1")
    out = [ReplayCase("replay-valid-raw", "chains sealed as the rules allow", valid, "BW-P1", None)]
    for name, desc, step, code in CASES:
        raw = _base(seed)
        step(raw)
        out.append(ReplayCase(f"replay-{name}", desc, raw.bundle("BW-P1"), "BW-P1", code))
    return out


def omission_cases(
    base: Doc, leave_out: Sequence[tuple[str, str, str, str, str]]
) -> list[tuple[str, str, Doc, str]]:
    """``base`` (a real bundle) without one record each. Every ``(name, kind, field, value,
    code)`` of ``leave_out`` names the record by its kind and one body field's value, and
    the error code the replay then fails with; returns ``(name, desc, bundle, code)``."""
    out = []
    for name, kind, key, value, code in leave_out:
        kept = [
            r
            for r in base["records"]
            if (r["record"]["kind"], r["record"]["body"].get(key)) != (kind, value)
        ]
        if len(kept) != len(base["records"]) - 1:
            raise AssertionError(f"{name}: not one {kind} with {key} {value} in the bundle")
        out.append((name, f"the {kind} of {value} left out", {**base, "records": kept}, code))
    return out
