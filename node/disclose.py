"""The writer's side of confidentiality: a clear submission becomes a committed record.

An officer submits a record with its confidential fields in clear. The node
commits them with salts keyed by its own secret (``keyed_salts``, scoped by
network, chain and record id), so the same clear record submitted again
commits to the same bytes and is answered its first outcome. The record
keeps its disclosures; the node checks the disclosure rules
(``ledger.disclosed``) against the values it knows before it queues the
record, and keeps the disclosures with it.
"""

from __future__ import annotations

from collections.abc import Mapping

from kpledger.ledger.commit import commit, keyed_salts
from kpledger.ledger.disclosed import check_disclosed
from kpledger.ledger.errors import SchemaError
from kpledger.ledger.records import Record, seal_record
from kpledger.ledger.state import StateView
from kpledger.ledger.store import Store

__all__ = ["Sealer"]


class Sealer:
    """Commits clear submissions and checks their disclosure rules for one writer."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._secret: bytes | None = None
        #: clear values of the records accepted but not sealed yet, by commitment
        self._pending: dict[str, int | str] = {}

    def _salt_secret(self) -> bytes:
        if self._secret is None:
            self._secret = self.store.disclosures.salt_secret()
        return self._secret

    def seal(self, value: object) -> Record:
        """The committed record of a clear submission (``InvalidData`` if it is not one)."""
        if not isinstance(value, Mapping):
            raise SchemaError("a record is a JSON object")
        scope = f"{value.get('network')}\n{value.get('chain')}\n{value.get('id')}"
        return seal_record(value, salts=keyed_salts(self._salt_secret(), scope))

    def check(self, view: StateView, record: Record) -> None:
        """Raise the rule's violation if ``record`` breaks a disclosure rule.

        ``view`` is the state before the record. Values come from the record's
        own disclosures, those of records pending, and those the store holds; a
        rule needing a value this node was never disclosed is left undecided.
        """
        own = {commit(d.value, d.salt).digest.hex(): d.value for d in record.disclosures}

        def clear(c: str) -> int | str | None:
            if c in own:
                return own[c]
            if c in self._pending:
                return self._pending[c]
            return self.store.disclosures.clear([c]).get(c)

        check_disclosed(view, record, clear)

    def accepted(self, record: Record) -> None:
        for d in record.disclosures:
            self._pending[commit(d.value, d.salt).digest.hex()] = d.value

    def sealed(self) -> None:
        """The pending records were sealed or refused: their values are in the store."""
        self._pending.clear()
