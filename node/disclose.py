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

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kpledger.ledger.commit import Disclosure, commit, keyed_salts
from kpledger.ledger.disclosed import check_disclosed, check_wanted, parcels_read, wanted
from kpledger.ledger.errors import RuleViolation, SchemaError
from kpledger.ledger.records import Record, seal_record
from kpledger.ledger.state import Parcel, StateView
from kpledger.ledger.store import Store

__all__ = [
    "MAX_DISCLOSURES",
    "Sealer",
    "disclosures_json",
    "pull_disclosures",
    "receive_disclosures",
]

log = logging.getLogger("kpl.gossip")

#: records of a chain one disclosure pull covers
MAX_DISCLOSURES = 500


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


def disclosures_json(
    store: Store, chain: str, start: int, limit: int, reader: str, role: str | None
) -> dict[str, Any]:
    """The answer to a peer's pull: what ``reader`` may see of ``chain`` from ``start``."""
    items, upto = store.disclosures.for_reader(chain, start, limit, reader, role)
    return {
        "chain": chain,
        "next": upto,
        "disclosures": [{"index": i, "disclosure": d.to_json()} for i, d in items],
    }


@dataclass(frozen=True)
class _Loaded:
    """Parcels loaded at once, read as the disclosure rules read the state."""

    found: Mapping[str, Parcel]

    def parcel(self, parcel_id: str) -> Parcel | None:
        return self.found.get(parcel_id)


def receive_disclosures(
    store: Store, chain: str, answer: object, held: int | None = None
) -> tuple[int, int]:
    """Check and keep a peer's answer to a pull; (disclosures kept, findings made).

    ``InvalidData`` (a ``DisclosureError`` for one that does not open its
    commitment) refuses the whole answer: the caller backs the sender off.
    """
    if not isinstance(answer, Mapping) or not isinstance(answer.get("disclosures"), list):
        raise SchemaError("a disclosures answer is {chain, next, disclosures}")
    items: list[tuple[int, Disclosure]] = []
    for i, item in enumerate(answer["disclosures"]):
        where = f"disclosures[{i}]"
        if not isinstance(item, (dict, Mapping)) or set(item) != {
            "index",
            "disclosure",
        }:
            raise SchemaError("expected {index, disclosure}", field=where)
        index = item["index"]
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise SchemaError("expected a record index", field=f"{where}.index")
        if held is None or index < held:  # a record not pulled yet is asked for again later
            items.append((index, Disclosure.from_json(item["disclosure"], f"{where}.disclosure")))
    touched = store.disclosures.receive(chain, items)
    # the parcels and values the rules read, each loaded in one query
    parcels = _Loaded(store.lineage.parcels([p for _, r in touched for p in parcels_read(r)]))
    reads = [(index, record, wanted(parcels, record)) for index, record in touched]
    known = store.disclosures.clear({c for _, _, w in reads if w for c in w.commitments})
    findings = 0
    for index, record, found in reads:
        if found is None:
            continue
        try:
            check_wanted(record, found, known.get)
        except RuleViolation as exc:
            store.disclosures.note_inconsistent(chain, index, record, exc)
            findings += 1
    return len(items), findings


async def pull_disclosures(
    get: Callable[[str, dict[str, Any]], Awaitable[Any]],
    store: Store,
    chain: str,
    start: int | None = None,
) -> int:
    """Pull from ``chain``'s writer the disclosures of the records this node holds from
    index ``start`` on (None: from the place the store kept, ``disclosures.pulled``),
    what the writer finds it entitled to; keeps and answers the index to start from
    next time, so a restarted node does not ask again from the beginning.
    ``InvalidData`` if the writer sent something that does not check: nothing of that
    answer is kept, and the place stays where it was."""
    if start is None:
        start = await asyncio.to_thread(store.disclosures.pulled, chain)
    head = store.head(chain)
    held = head.size if head is not None else 0
    while start < held:
        answer = await get("/v1/disclosures", {"chain": chain, "from": start})
        nxt = answer.get("next") if isinstance(answer, Mapping) else None
        if isinstance(nxt, bool) or not isinstance(nxt, int) or nxt < start:
            raise SchemaError("a disclosures answer names the index to ask from next", field="next")
        _, findings = await asyncio.to_thread(receive_disclosures, store, chain, answer, held)
        if findings:
            log.warning(
                "%s: %d disclosure rule(s) broken on arrival: audit findings", chain, findings
            )
        if nxt == start:
            break
        start = min(nxt, held)
        await asyncio.to_thread(store.disclosures.note_pulled, chain, start)
    return start
