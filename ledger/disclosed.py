"""Disclosure rules: the custody rules that need clear values (DESIGN.md section 9).

Values are committed in the signed record, so a rule that compares values
cannot decide a block's validity: a node that may not see the values would
judge otherwise than one that may, and validity must not depend on what a
node may see. These rules are checked instead

* by the writer, on every record it is asked to seal (a violation is refused
  at submission, naming the rule, as a public rule is), and
* by every node that holds the disclosures, when they arrive (a violation is
  then an audit finding, ``disclosure-inconsistent``, never a block rejection).

``check_disclosed(view, record, clear)`` reads the state *before* the record
(``view``) and ``clear``, which maps a commitment (hex) to the clear value
the caller knows, or to ``None``; a rule whose values are not all known is
not decided (``None`` is returned for it by ``undecided``).

3. value is conserved on a split: the children's values sum to the parent's;
   a merge's child is worth the sum of its parents;
5. a certificate's value is the sum of its lines' values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from kpledger.ledger.errors import CertificateInvalid, ValueNotConserved
from kpledger.ledger.records import CertificateIssue, ParcelMerge, ParcelSplit, Record
from kpledger.ledger.state import Parcel, StateView

__all__ = [
    "DISCLOSURE_RULES",
    "Clear",
    "Parcels",
    "Wanted",
    "check_disclosed",
    "check_wanted",
    "parcels_read",
    "undecided",
    "wanted",
]

#: a commitment (hex) to the clear value known of it, or None
Clear = Callable[[str], int | str | None]

#: the rule of each record kind that needs clear values: (rule number, what it says)
DISCLOSURE_RULES = {
    "parcel.split": ("3", "the children's values sum to the parent's value"),
    "parcel.merge": ("3", "the child's value is the sum of its parents' values"),
    "certificate.issue": ("5", "the certificate's value is the sum of its lines' values"),
}


def _cents(clear: Clear, commitments: Sequence[str]) -> list[int] | None:
    values = [clear(c) for c in commitments]
    if any(not isinstance(v, int) for v in values):
        return None
    return [v for v in values if isinstance(v, int)]


class Parcels(Protocol):
    """What the disclosure rules read of the state: parcels (their value commitments)."""

    def parcel(self, parcel_id: str) -> Parcel | None: ...


def parcels_read(record: Record) -> tuple[str, ...]:
    """The parcels whose values the disclosure rule of ``record`` reads: a split's
    parent, a merge's parents (so that a node can load them at once)."""
    b = record.body
    if isinstance(b, ParcelSplit):
        return (b.parcel,)
    if isinstance(b, ParcelMerge):
        return tuple(b.parents)
    return ()


def _parcel_values(view: Parcels, parcels: Sequence[str]) -> list[str] | None:
    out: list[str] = []
    for pid in parcels:
        parcel = view.parcel(pid)
        if parcel is None:
            return None
        out.append(parcel.value)
    return out


@dataclass(frozen=True)
class Wanted:
    """The commitments (hex) a disclosure rule reads of one record: the values that
    must add up (``parts``) and the one total they must reach."""

    parts: tuple[str, ...]
    total: str

    @property
    def commitments(self) -> tuple[str, ...]:
        return (*self.parts, self.total)


def wanted(view: Parcels, record: Record) -> Wanted | None:
    """What the disclosure rule of ``record`` reads, against ``view`` (the state before
    it); None when no rule applies or a parcel it reads is not in ``view``. A node
    checking many records gathers every ``commitments`` and fetches their values at once."""
    b = record.body
    if isinstance(b, ParcelSplit):
        parent = _parcel_values(view, [b.parcel])
        if parent is None:
            return None
        return Wanted(tuple(c.value for c in b.children), parent[0])
    if isinstance(b, ParcelMerge):
        parents = _parcel_values(view, b.parents)
        return None if parents is None else Wanted(tuple(parents), b.value)
    if isinstance(b, CertificateIssue):
        return Wanted(tuple(line.value for line in b.lines), b.value)
    return None


def undecided(view: StateView, record: Record, clear: Clear) -> bool:
    """Whether a disclosure rule applies to ``record`` but some value it needs is unknown."""
    if not isinstance(record.body, ParcelSplit | ParcelMerge | CertificateIssue):
        return False
    found = wanted(view, record)
    return found is None or any(not isinstance(clear(c), int) for c in found.commitments)


def check_disclosed(view: StateView, record: Record, clear: Clear) -> None:
    """Raise the rule's ``RuleViolation`` if ``record`` breaks a disclosure rule.

    A rule whose values are not all known to ``clear`` is not decided here.
    """
    found = wanted(view, record)
    if found is not None:
        check_wanted(record, found, clear)


def check_wanted(record: Record, found: Wanted, clear: Clear) -> None:
    """``check_disclosed`` once ``found = wanted(view, record)`` is known."""
    parts = _cents(clear, found.parts)
    totals = _cents(clear, [found.total])
    if parts is None or totals is None:
        return
    (total,) = totals
    if sum(parts) == total:
        return
    b = record.body
    if isinstance(b, ParcelSplit):
        raise ValueNotConserved(
            f"children are worth {sum(parts)} cents, the parent {total}", field="body.children"
        )
    if isinstance(b, ParcelMerge):
        raise ValueNotConserved(
            f"parents are worth {sum(parts)} cents, the child declares {total}", field="body.value"
        )
    raise CertificateInvalid(
        f"lines sum to {sum(parts)} cents, the total says {total}", field="body.value"
    )
