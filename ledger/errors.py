"""The one error tree of kpledger.

Every failure the project raises on purpose is a ``LedgerError``. The tree
separates data that is wrong (somebody sent or stored something invalid:
the caller's problem, never retried) from our own failures (a store or key
file that cannot be used: the operator's problem)::

    LedgerError
    +-- InvalidData                   input fails a check; carries `field`
    |   +-- EncodingError             not canonical JSON, floats, hex digits
    |   +-- SchemaError               a field is missing, malformed or out of range
    |   +-- ProofError                an RFC 9162 proof does not verify
    |   |   +-- InclusionProofError
    |   |   +-- ConsistencyProofError
    |   |   +-- StateProofError       a parcel's slot does not verify against a state root
    |   +-- SignatureError            a signature or key does not verify
    |   |   +-- ThresholdError        "signed by 1 of 2 required"
    |   +-- BlockError                a header breaks the chain (prev, size, time, root)
    |   +-- EquivocationError         two signed headers of one chain disagree
    |   |   +-- VersionError          a record of a format version this node refuses (v1)
    |   +-- RecordOmitted             a bundle lacks a record its checkpoint commits to
    |   +-- DisclosureError           a disclosure does not open its commitment
    |   +-- RecordConflict            a record id already taken with other content
    |   +-- RuleViolation             a record breaks a custody rule (DOMAIN.md);
    |       |                         carries `rule` (the rule number) and `field`
    |       +-- DuplicateRecord, UnknownReference, WrongJurisdiction,
    |           InactiveParty, AlreadySpent, MassNotConserved,
    |           ValueNotConserved, OriginNotCarried, CertificateInvalid,
    |           ConfirmationInvalid, VoidInvalid, RestrictedOrigin,
    |           ParticipantNotActive, WitnessInvalid, KeyChangeInvalid,
    |           GovernanceInvalid, CustodyConflict, RefusalInvalid,
    |           ReleaseInvalid, FutureDated, BuyerLicenceInvalid,
    |           DiggerLicenceInvalid, ClaimInvalid, RegistryInvalid,
    |           StatsReportInvalid, StatsCellDisclosed
    +-- DependencyMissing             a block witnesses a header this node lacks yet
    +-- KeyFileError                  a key file is missing, unreadable, too open
    +-- StoreError                    the database refuses or disagrees with itself

Lower-layer exceptions (``cryptography``'s ``InvalidSignature``, SQLAlchemy's
errors, ``json`` decode errors) are translated into this tree where they are
caught, and always chained with ``from``.
"""

from __future__ import annotations

__all__ = [
    "AlreadySpent",
    "BlockError",
    "BuyerLicenceInvalid",
    "CertificateInvalid",
    "ClaimInvalid",
    "ConfirmationInvalid",
    "ConsistencyProofError",
    "CustodyConflict",
    "DependencyMissing",
    "DiggerLicenceInvalid",
    "DisclosureError",
    "NotCosigned",
    "NotYetCosigned",
    "DuplicateRecord",
    "EncodingError",
    "EquivocationError",
    "FutureDated",
    "GovernanceInvalid",
    "InactiveParty",
    "InclusionProofError",
    "InvalidData",
    "KeyChangeInvalid",
    "KeyFileError",
    "LedgerError",
    "MassNotConserved",
    "OriginNotCarried",
    "ParticipantNotActive",
    "ProofError",
    "RefusalInvalid",
    "ReleaseInvalid",
    "RestrictedOrigin",
    "RecordConflict",
    "RecordOmitted",
    "RegistryInvalid",
    "StatsCellDisclosed",
    "StatsReportInvalid",
    "RuleViolation",
    "SchemaError",
    "SignatureError",
    "StateProofError",
    "StoreError",
    "ThresholdError",
    "UnknownReference",
    "ValueNotConserved",
    "VersionError",
    "VoidInvalid",
    "WitnessInvalid",
    "WrongJurisdiction",
]


class LedgerError(Exception):
    """Root of every error kpledger raises on purpose."""

    #: A stable machine-readable name, used as the RFC 9457 problem ``type``.
    code = "ledger-error"


class InvalidData(LedgerError, ValueError):
    """Something received or stored fails a check.

    ``field`` names the offending field as a dotted path (``body.children[2].weight``),
    or is empty when the whole object is at fault.
    """

    code = "invalid-data"

    def __init__(self, message: str, *, field: str = "") -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class RecordConflict(InvalidData):
    """A submitted record's id is taken, on its chain, by a record with other content.

    Carries where the first one is: its ``status`` (``pending``, ``committed``, or
    ``batch`` for an earlier record of the same submission), ``hash`` (its leaf hash,
    hex), and for a committed one its ``index`` and ``height``; ``position`` is the
    submission's index in a batch.
    """

    code = "conflict"

    def __init__(
        self,
        record_id: str,
        chain: str,
        *,
        status: str,
        hash_hex: str,
        position: int = 0,
        index: int | None = None,
        height: int | None = None,
    ) -> None:
        self.record_id = record_id
        self.chain = chain
        self.status = status
        self.hash = hash_hex
        self.position = position
        self.index = index
        self.height = height
        holder = (
            "an earlier record of this batch"
            if status == "batch"
            else f"a {status} record" + (f" at index {index}" if index is not None else "")
        )
        super().__init__(
            f"record id {record_id} on chain {chain} is taken by {holder} with other content "
            f"(leaf hash {hash_hex}); resubmit the same bytes, or use a new id",
            field="id",
        )


class EncodingError(InvalidData):
    code = "encoding"


class SchemaError(InvalidData):
    code = "schema"


class ProofError(InvalidData):
    code = "proof"


class InclusionProofError(ProofError):
    code = "inclusion-proof"


class ConsistencyProofError(ProofError):
    code = "consistency-proof"


class StateProofError(ProofError):
    code = "state-proof"


class SignatureError(InvalidData):
    code = "signature"


class ThresholdError(SignatureError):
    """Fewer valid signatures than the threshold requires."""

    code = "threshold"

    def __init__(self, message: str, *, valid: int, required: int, field: str = "") -> None:
        self.valid = valid
        self.required = required
        super().__init__(f"{message}: signed by {valid} of {required} required", field=field)


class BlockError(InvalidData):
    code = "block"


class NotCosigned(InvalidData):
    """A bundle's block is witnessed by fewer other authorities than the network's
    ``cosign`` parameter demands (bundle step 3): ``have`` names those that do."""

    code = "not-cosigned"

    def __init__(self, chain: str, height: int, have: tuple[str, ...], need: int) -> None:
        self.chain = chain
        self.height = height
        self.have = have
        self.need = need
        named = ", ".join(have) if have else "none"
        super().__init__(
            f"block {chain}/{height} is cosigned by {len(have)} other authorities ({named}); "
            f"the network's cosign is {need}"
        )


class RecordOmitted(InvalidData):
    """A bundle holds fewer records of a parcel on a chain, or another latest one,
    than the chain's cosigned checkpoint commits to (bundle step 6)."""

    code = "record-omitted"


class EquivocationError(InvalidData):
    code = "equivocation"


class VersionError(SchemaError):
    """A record or block in a format version this node does not accept (v1 data)."""

    code = "unsupported-version"

    def __init__(self, message: str, *, version: object, field: str = "v") -> None:
        super().__init__(message, field=field)
        self.version = version


class DisclosureError(InvalidData):
    """A disclosure that does not open the commitment it claims to open.

    ``record`` is the hex leaf hash of the record and ``field`` the field path.
    """

    code = "disclosure-mismatch"

    def __init__(self, message: str, *, record: str, field: str) -> None:
        super().__init__(message, field=field)
        self.record = record


class RuleViolation(InvalidData):
    """A record breaks a custody rule.

    ``rule`` is the rule's number in DOMAIN.md ("Rules the ledger enforces")
    or the name of a DESIGN.md determinism rule (``"witness"``, ``"governance"``,
    ``"keys"``, ``"time"``), so that a refusal can always be traced to the text that demands it.
    """

    code = "rule"
    rule = ""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(f"rule {self.rule}: {message}", field=field)
        self.reason = message


class DuplicateRecord(RuleViolation):
    code = "duplicate-record"
    rule = "8"


class UnknownReference(RuleViolation):
    code = "unknown-reference"
    rule = "1"


class WrongJurisdiction(RuleViolation):
    code = "wrong-jurisdiction"
    rule = "1"


class InactiveParty(RuleViolation):
    code = "inactive-party"
    rule = "1"


class AlreadySpent(RuleViolation):
    code = "already-spent"
    rule = "2"


class MassNotConserved(RuleViolation):
    code = "mass-not-conserved"
    rule = "3"


class ValueNotConserved(RuleViolation):
    code = "value-not-conserved"
    rule = "3"


class OriginNotCarried(RuleViolation):
    code = "origin-not-carried"
    rule = "4"


class CertificateInvalid(RuleViolation):
    code = "certificate-invalid"
    rule = "5"


class ConfirmationInvalid(RuleViolation):
    code = "confirmation-invalid"
    rule = "6"


class VoidInvalid(RuleViolation):
    code = "void-invalid"
    rule = "7"


class RestrictedOrigin(RuleViolation):
    code = "restricted-origin"
    rule = "9"


class ParticipantNotActive(RuleViolation):
    code = "participant-not-active"
    rule = "governance"


class WitnessInvalid(RuleViolation):
    code = "witness-invalid"
    rule = "witness"


class KeyChangeInvalid(RuleViolation):
    code = "key-change-invalid"
    rule = "keys"


class GovernanceInvalid(RuleViolation):
    code = "governance-invalid"
    rule = "governance"


class CustodyConflict(RuleViolation):
    """Parcels of different custodians combined: custody would move without a transfer."""

    code = "custody-conflict"
    rule = "1"


class RefusalInvalid(RuleViolation):
    """A ``certificate.refuse`` that the importing authority may not write."""

    code = "refusal-invalid"
    rule = "6"


class ReleaseInvalid(RuleViolation):
    """A ``parcel.release`` of a parcel that is not held on a discrepancy here."""

    code = "release-invalid"
    rule = "6"


class FutureDated(RuleViolation):
    """A date in a record's body lies after the time of the block that seals it."""

    code = "future-dated"
    rule = "time"


class BuyerLicenceInvalid(RuleViolation):
    """A1: a first sale needs the buyer's licence (collector or comptoir) valid on its date."""

    code = "buyer-licence-invalid"
    rule = "A1"


class DiggerLicenceInvalid(RuleViolation):
    """A2: a first sale needs the digger's (or cooperative's) licence valid on its date,
    for the claim the stones come from."""

    code = "digger-licence-invalid"
    rule = "A2"


class ClaimInvalid(RuleViolation):
    """A3: a first sale's claim is registered, active on the date and in the buyer's zone."""

    code = "claim-invalid"
    rule = "A3"


class RegistryInvalid(RuleViolation):
    """A4: claims and licences: new ids, a digger's claim registered, ended once."""

    code = "registry-invalid"
    rule = "A4"


class StatsReportInvalid(RuleViolation):
    """S1: a quarterly statistics report is sealed once per quarter (record id
    ``stats-<quarter>``), after the quarter's last day, naming no partner twice nor itself."""

    code = "stats-report-invalid"
    rule = "S1"


class StatsCellDisclosed(RuleViolation):
    """S2: a report's cell of fewer than the network's ``min_cell`` records carries no USD
    (one shipment's value would be public); a cell of at least that many carries its USD."""

    code = "stats-cell-disclosed"
    rule = "S2"


class DependencyMissing(LedgerError):
    """A block cannot be judged yet: it witnesses a header this node does not hold.

    Not a verdict on the block: the node keeps it aside and retries once the
    named chain has reached ``height``.
    """

    code = "dependency-missing"

    def __init__(self, chain: str, height: int) -> None:
        self.chain = chain
        self.height = height
        super().__init__(f"waiting for {chain} to reach height {height}")


class NotYetCosigned(LedgerError):
    """A bundle cannot be built yet: a block it needs is witnessed by fewer other
    authorities than ``cosign``. Not a verdict: retry once their next blocks arrive."""

    code = "not-yet-cosigned"

    def __init__(self, chain: str, height: int, have: tuple[str, ...], need: int) -> None:
        self.chain = chain
        self.height = height
        self.have = have
        self.need = need
        super().__init__(
            f"not yet cosigned: block {chain}/{height} is witnessed by {len(have)} other "
            f"authorities of the {need} a bundle needs; retry after their next blocks"
        )


class KeyFileError(LedgerError):
    """A key file cannot be used: missing, too open, wrong passphrase, not Ed25519."""

    code = "key-file"

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class StoreError(LedgerError):
    """The database failed, or its contents disagree with the log."""

    code = "store"
