"""Shared ground of the audit queries: thresholds, periods, table aliases, record references."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select

from kpledger.ledger.state import CertificateStatus
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.audit.rows import AuditRecord
from kpledger.ledger.store.rows import IN_CHUNK

__all__ = [
    "CLOSED_BY_IMPORTER",
    "ISSUED",
    "MAX_FINDINGS",
    "PERIOD_PATTERN",
    "PRICE_GROUP_FACTOR",
    "PRICE_GROUP_MIN",
    "PRICE_REFERENCE_FACTOR",
    "RECORDS_PER_FINDING",
    "UNCONFIRMED_DAYS",
    "NOT_SHIPPED",
    "REFUSED",
    "VOIDED",
    "C",
    "H",
    "Period",
    "R",
    "RecordResolver",
    "RefKey",
    "as_int",
    "cents_of",
    "closed_time",
    "known_cents",
    "minus_days",
    "parse_period",
]

UNCONFIRMED_DAYS = 30
PRICE_GROUP_FACTOR = 4.0
PRICE_GROUP_MIN = 5
PRICE_REFERENCE_FACTOR = 10.0
RECORDS_PER_FINDING = 20
MAX_FINDINGS = 1000
#: ``2025`` or ``2025-Q1`` .. ``2025-Q4``
PERIOD_PATTERN = r"^[12][0-9]{3}(-Q[1-4])?$"

ISSUED = CertificateStatus.ISSUED.value
CLOSED_BY_IMPORTER = (CertificateStatus.CONFIRMED.value, CertificateStatus.DISCREPANCY.value)
VOIDED = CertificateStatus.VOIDED.value
REFUSED = CertificateStatus.REFUSED.value
#: certificates whose goods never left (voided, refused by the importer): no export in
#: the mirror comparison and the statistics
NOT_SHIPPED = (VOIDED, REFUSED)

C = t.certificates.c
R = t.records.c
H = t.headers.c


@dataclass(frozen=True)
class Period:
    """Inclusive calendar days; ``since`` None means from the beginning."""

    since: date | None
    until: date

    def days(self, column: Any) -> list[ColumnElement[bool]]:
        """Conditions putting a ``YYYY-MM-DD`` column in the period."""
        out: list[ColumnElement[bool]] = [column <= self.until.isoformat()]
        if self.since is not None:
            out.append(column >= self.since.isoformat())
        return out

    def times(self, column: Any) -> list[ColumnElement[bool]]:
        """Conditions putting a ``YYYY-MM-DDTHH:MM:SSZ`` column in the period."""
        # every time of the last day sorts before "<day>T99"
        out: list[ColumnElement[bool]] = [column <= self.until.isoformat() + "T99"]
        if self.since is not None:
            out.append(column >= self.since.isoformat())
        return out

    def holds_time(self, time: str) -> bool:
        day = time[:10]
        return day <= self.until.isoformat() and (
            self.since is None or day >= self.since.isoformat()
        )


def parse_period(text: str) -> Period:
    """``2025`` -> the year; ``2025-Q2`` -> April 1 to June 30. Assumes ``PERIOD_PATTERN``."""
    year = int(text[:4])
    if len(text) == 4:
        return Period(date(year, 1, 1), date(year, 12, 31))
    q = int(text[-1])
    start = date(year, 3 * q - 2, 1)
    end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return Period(start, end - timedelta(days=1))


def minus_days(day: date, days: int) -> date | None:
    try:
        return day - timedelta(days=days)
    except OverflowError:
        return None


def as_int(value: object) -> int:
    """SQL sums are Decimal on PostgreSQL and None over no rows."""
    return 0 if value is None else int(value)  # type: ignore[call-overload]


def known_cents() -> Any:
    """The clear cents this node holds, one row per commitment (a subquery to join on).

    State tables hold commitments (record format 2); an auditor's node holds the
    disclosures of every chain. A value this node was not disclosed sums as 0.
    """
    d = t.disclosures.c
    return (
        select(d.commitment, func.max(d.cents).label("cents"))
        .where(d.cents.is_not(None))
        .group_by(d.commitment)
        .subquery("known_cents")
    )


def cents_of(conn: Connection, commitments: Iterable[str]) -> dict[str, int]:
    """The clear cents of ``commitments`` this node holds."""
    d = t.disclosures.c
    wanted = sorted(set(commitments))
    found: dict[str, int] = {}
    for i in range(0, len(wanted), IN_CHUNK):
        q = select(d.commitment, d.cents).where(
            d.commitment.in_(wanted[i : i + IN_CHUNK]), d.cents.is_not(None)
        )
        found.update((str(c), int(v)) for c, v in conn.execute(q))
    return found


def closed_time() -> Any:
    """The certificates joined to the block of their closing record (outer: open ones too)."""
    return t.certificates.outerjoin(
        t.records, and_(R.chain == C.closed_chain, R.idx == C.closed_idx)
    ).outerjoin(t.headers, and_(H.chain == R.chain, H.height == R.height))


RefKey = tuple[str, int, bytes, str]  # chain, index, leaf hash, kind


class RecordResolver:
    """Resolves the records named by a finding list to their block heights and times."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.known: dict[tuple[str, int], tuple[int, str]] = {}

    def resolve(self, keys: Iterable[RefKey]) -> Callable[[RefKey], AuditRecord]:
        """Look up every key at once (one query per chain and chunk); answer a converter."""
        by_chain: dict[str, set[int]] = {}
        for chain, index, _, _ in keys:
            if (chain, int(index)) not in self.known:
                by_chain.setdefault(chain, set()).add(int(index))
        for chain, wanted in by_chain.items():
            ids = sorted(wanted)
            for i in range(0, len(ids), IN_CHUNK):
                q = (
                    select(R.idx, R.height, H.time)
                    .join(t.headers, and_(H.chain == R.chain, H.height == R.height))
                    .where(R.chain == chain, R.idx.in_(ids[i : i + IN_CHUNK]))
                )
                for idx, height, time in self.conn.execute(q):
                    self.known[(chain, int(idx))] = (int(height), str(time))

        def convert(key: RefKey) -> AuditRecord:
            chain, index, digest, kind = key
            hit = self.known.get((chain, int(index)))
            return AuditRecord(
                chain,
                int(index),
                bytes(digest).hex(),
                kind,
                None if hit is None else hit[0],
                None if hit is None else hit[1],
            )

        return convert
