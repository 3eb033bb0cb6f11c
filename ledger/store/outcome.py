"""What became of a submitted record: one typed answer for the store, the node and the API.

A record is ``pending`` (acknowledged, on disk, not sealed), ``committed``
(in its chain's log: ``height``, ``index`` and leaf ``hash``), ``rejected``
(a ledger rule refused it: ``code``, ``rule``, ``field``, ``reason``) or
``invalid`` (it never parsed as a record: ``code``, ``field``, ``reason``).

In the answer to a submission, ``position`` is the record's place in the
submitted batch; ``index`` is always its index in the chain's log, and only
a committed record has one. The two were one field once, and a repeated,
already committed record answered its log index as its batch position.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from kpledger.ledger.errors import InvalidData, RuleViolation

__all__ = ["Outcome", "OutcomeStatus"]


class OutcomeStatus(StrEnum):
    PENDING = "pending"
    COMMITTED = "committed"
    REJECTED = "rejected"
    INVALID = "invalid"


@dataclass(frozen=True)
class Outcome:
    """The outcome of one record id (frozen; ``to_json`` is its wire form)."""

    status: OutcomeStatus
    chain: str | None = None
    id: str | None = None
    position: int | None = None
    height: int | None = None
    index: int | None = None
    hash: str | None = None
    code: str | None = None
    rule: str | None = None
    field: str | None = None
    reason: str | None = None
    duplicate: bool = False

    @classmethod
    def pending(cls, chain: str) -> Outcome:
        return cls(OutcomeStatus.PENDING, chain)

    @classmethod
    def committed(cls, chain: str, height: int, index: int, leaf: bytes) -> Outcome:
        return cls(OutcomeStatus.COMMITTED, chain, height=height, index=index, hash=leaf.hex())

    @classmethod
    def rejected(cls, chain: str, code: str, rule: str, field: str, reason: str) -> Outcome:
        return cls(OutcomeStatus.REJECTED, chain, code=code, rule=rule, field=field, reason=reason)

    @classmethod
    def refused(cls, chain: str, exc: RuleViolation) -> Outcome:
        return cls.rejected(chain, exc.code, str(exc.rule), str(exc.field), str(exc.reason))

    @classmethod
    def invalid(cls, code: str, field: str, reason: str) -> Outcome:
        return cls(OutcomeStatus.INVALID, code=code, field=field, reason=reason)

    @classmethod
    def unparsed(cls, exc: InvalidData) -> Outcome:
        """A value that is not a record (schema, encoding)."""
        return cls.invalid(exc.code, exc.field, exc.message)

    def at(self, position: int, record_id: str | None, *, duplicate: bool = False) -> Outcome:
        """This outcome as the answer to the record at ``position`` of a submitted batch."""
        return replace(self, position=position, id=record_id, duplicate=duplicate)

    def to_json(self) -> dict[str, Any]:
        """The wire form: fields that do not apply are left out, ``duplicate`` only when true."""
        out: dict[str, Any] = {"status": self.status.value}
        for name in ("id", "position", "chain", "height", "index", "hash"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        for name in ("code", "rule", "field", "reason"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.duplicate:
            out["duplicate"] = True
        return out
