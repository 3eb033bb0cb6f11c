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

from kpledger.ledger.errors import CertificateInvalid, ValueNotConserved
from kpledger.ledger.records import CertificateIssue, ParcelMerge, ParcelSplit, Record
from kpledger.ledger.state import StateView

__all__ = ["DISCLOSURE_RULES", "Clear", "check_disclosed", "undecided"]

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


def _parcel_values(view: StateView, parcels: Sequence[str]) -> list[str] | None:
    out: list[str] = []
    for pid in parcels:
        parcel = view.parcel(pid)
        if parcel is None:
            return None
        out.append(parcel.value)
    return out


def undecided(view: StateView, record: Record, clear: Clear) -> bool:
    """Whether a disclosure rule applies to ``record`` but some value it needs is unknown."""
    return _values(view, record, clear) is None


def _values(
    view: StateView, record: Record, clear: Clear
) -> tuple[list[int], list[int]] | tuple[()] | None:
    """(the values that must add up, the total they must reach), () if no rule applies,
    None when a value is not known."""
    b = record.body
    if isinstance(b, ParcelSplit):
        parent = _parcel_values(view, [b.parcel])
        parts = _cents(clear, [c.value for c in b.children])
        total = None if parent is None else _cents(clear, parent)
    elif isinstance(b, ParcelMerge):
        parents = _parcel_values(view, b.parents)
        parts = None if parents is None else _cents(clear, parents)
        total = _cents(clear, [b.value])
    elif isinstance(b, CertificateIssue):
        parts = _cents(clear, [line.value for line in b.lines])
        total = _cents(clear, [b.value])
    else:
        return ()
    if parts is None or total is None:
        return None
    return parts, total


def check_disclosed(view: StateView, record: Record, clear: Clear) -> None:
    """Raise the rule's ``RuleViolation`` if ``record`` breaks a disclosure rule.

    A rule whose values are not all known to ``clear`` is not decided here.
    """
    found = _values(view, record, clear)
    if not found:
        return
    parts, (total,) = found
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
