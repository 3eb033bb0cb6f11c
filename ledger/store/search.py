"""Search by prefix: the parcel ids and certificate numbers that start with what was typed.

The explorer offers these when an id or number is not found. Only the
public keys are read (``parcels.id``, ``certificates.number``, both primary
keys); the prefix is matched case-insensitively, its ``%``, ``_`` and ``\\``
escaped so that they match themselves, and every answer is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Engine, select

from kpledger.ledger.store import tables as t

__all__ = ["MAX_SUGGESTIONS", "PrefixSearch", "Suggestions", "like_prefix"]

#: the most ids (and the most numbers) one search answers
MAX_SUGGESTIONS = 50

#: the longest prefix worth searching (ids and numbers are at most 56 characters)
MAX_PREFIX = 56


def like_prefix(prefix: str) -> str:
    """A LIKE pattern (escape character ``\\``) matching strings that start with ``prefix``."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


@dataclass(frozen=True)
class Suggestions:
    """Parcel ids and certificate numbers starting with a prefix, each sorted, each bounded."""

    prefix: str
    parcels: tuple[str, ...]
    certificates: tuple[str, ...]


class PrefixSearch:
    """Parcel ids and certificate numbers by prefix."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _starting(self, column: Column[str], prefix: str, limit: int) -> tuple[str, ...]:
        q = (
            select(column)
            .where(column.ilike(like_prefix(prefix), escape="\\"))
            .order_by(column)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return tuple(str(r[0]) for r in conn.execute(q))

    def prefix(self, prefix: str, limit: int = 10) -> Suggestions:
        """Up to ``limit`` parcel ids and up to ``limit`` certificate numbers starting
        with ``prefix`` (ignoring case). An empty prefix, or one longer than any id,
        finds nothing; ``limit`` is clamped to 1..``MAX_SUGGESTIONS``."""
        limit = max(1, min(int(limit), MAX_SUGGESTIONS))
        if not prefix or len(prefix) > MAX_PREFIX:
            return Suggestions(prefix, (), ())
        return Suggestions(
            prefix,
            self._starting(t.parcels.c.id, prefix, limit),
            self._starting(t.certificates.c.number, prefix, limit),
        )
