"""Restarting an equivocating chain: dropping the old key's blocks from its fork height on.

When a governance ``key.replace`` restarts chain ``X`` at its fork height
``F`` (``ledger.forks.resumed_at``), every block of ``X`` from ``F`` on that a
node holds was signed with the old key, on one of the two versions: it is no
longer part of ``X``. ``ChainResume.drop`` takes those blocks out of the log
and rebuilds every derived table from what stays, in one database
transaction:

1. the retained log (every block but ``X``'s from ``F`` on) is replayed into a
   scratch store, each block verified in full with the evidence held, as
   ``kpl db verify`` does;
2. one transaction deletes ``X``'s headers and records from ``F`` on, replaces
   every derived table with the replay's rows, drops the disclosure findings
   on the dropped records and notes what was dropped in ``kpl_meta``.

A process killed at any moment leaves the store as before or as after.
Nothing an honest chain holds can depend on the dropped part: its blocks saw
``X`` only up to ``F - 1`` (``ledger.chain.resolve_witness``), so the replay
reproduces every one of them; a block that fails to replay is an error, and
nothing is changed.

What was dropped is kept (``dropped``): the records, so that ``X``'s operator
can check and submit again those it had acknowledged (``kpl db dropped``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.exc import SQLAlchemyError

from kpledger.ledger.canonical import canonical_bytes, parse_canonical
from kpledger.ledger.errors import LedgerError, StoreError
from kpledger.ledger.records import Record
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.log import heights_at
from kpledger.ledger.store.stateview import StoreState
from kpledger.ledger.store.verify import DERIVED, open_scratch, replay, snapshot

__all__ = ["ChainResume", "DroppedPart"]

#: ``kpl_meta`` key prefix of the notes of what was dropped (one per chain and height)
_DROPPED_ROW = "dropped:"


@dataclass(frozen=True)
class DroppedPart:
    """The old key's blocks of ``chain`` from ``from_height`` on, taken out of the log."""

    chain: str
    from_height: int
    #: how many blocks were dropped, and the height of the last one
    blocks: int
    last_height: int
    #: (height, index, record) of each record dropped, in log order
    records: tuple[tuple[int, int, Record], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "from_height": self.from_height,
            "blocks": self.blocks,
            "last_height": self.last_height,
            "records": [
                {"height": h, "index": i, "id": r.id, "kind": r.kind.value, "record": r.as_json()}
                for h, i, r in self.records
            ],
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> DroppedPart:
        return cls(
            str(value["chain"]),
            int(value["from_height"]),
            int(value["blocks"]),
            int(value["last_height"]),
            tuple(
                (int(r["height"]), int(r["index"]), Record.from_value(r["record"]))
                for r in value["records"]
            ),
        )


def _rows(conn: Connection, table: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(table))]


class ChainResume:
    """Drops a restarted chain's old blocks and rebuilds the derived state without them."""

    def __init__(self, state: StoreState, *, read_only: bool) -> None:
        self.state = state
        self.engine = state.engine
        self.read_only = read_only

    def drop(
        self, chain: str, from_height: int, forks: Mapping[str, int], scratch_url: str = "sqlite://"
    ) -> DroppedPart:
        """Take ``chain``'s blocks from ``from_height`` on out of the store, atomically.

        ``forks``: the evidence's fork heights, which the replay of the
        retained blocks is judged with. Raises ``StoreError`` (nothing
        changed) if the retained log does not replay.
        """
        if self.read_only:
            raise StoreError("this process is a read replica: only the writer process writes")
        if from_height < 1:
            raise StoreError(f"cannot drop {chain}'s blocks from height {from_height}")
        scratch = open_scratch(scratch_url, self.state)
        try:
            with snapshot(self.engine) as live:
                heights = dict(heights_at(live))
                held = heights.get(chain, 0)
                heights[chain] = min(held, from_height - 1)
                try:
                    replay(self.state, scratch, live, heights, forks)
                except LedgerError as exc:
                    raise StoreError(
                        f"cannot drop {chain}'s blocks from height {from_height}: the blocks "
                        f"kept do not replay ({exc.__class__.__name__}: {exc})"
                    ) from exc
                part = self._dropped(live, chain, from_height, held)
                with scratch.connect() as replayed:
                    rebuilt = {name: _rows(replayed, table) for name, table in DERIVED.items()}
            with self.engine.begin() as conn:
                self._write(conn, part, rebuilt)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot drop {chain}'s blocks from height {from_height}: "
                f"{exc.__class__.__name__}: {exc}"
            ) from exc
        finally:
            scratch.dispose()
        self.state.reload()
        return part

    @staticmethod
    def _dropped(conn: Connection, chain: str, from_height: int, held: int) -> DroppedPart:
        r = t.records.c
        rows = conn.execute(
            select(r.height, r.idx, r.raw)
            .where(r.chain == chain, r.height >= from_height)
            .order_by(r.idx)
        ).all()
        records = tuple((int(h), int(i), Record.parse(bytes(raw))) for h, i, raw in rows)
        blocks = max(0, held - from_height + 1)
        return DroppedPart(chain, from_height, blocks, max(held, from_height - 1), records)

    def _write(
        self, conn: Connection, part: DroppedPart, rebuilt: Mapping[str, list[dict[str, Any]]]
    ) -> None:
        chain, height = part.chain, part.from_height
        conn.execute(
            delete(t.records).where(t.records.c.chain == chain, t.records.c.height >= height)
        )
        for name, table in DERIVED.items():
            if name == "headers":  # the log: only the dropped part goes
                conn.execute(
                    delete(t.headers).where(
                        t.headers.c.chain == chain, t.headers.c.height >= height
                    )
                )
                continue
            conn.execute(delete(table))
            rows = rebuilt[name]
            if rows:
                conn.execute(table.insert(), rows)
        if part.records:
            first = part.records[0][1]
            f = t.disclosure_findings.c
            conn.execute(delete(t.disclosure_findings).where(f.chain == chain, f.idx >= first))
        if part.blocks:
            key = f"{_DROPPED_ROW}{chain}:{height}"
            conn.execute(delete(t.meta).where(t.meta.c.key == key))
            conn.execute(t.meta.insert(), [{"key": key, "value": canonical_bytes(part.to_json())}])

    def dropped(self) -> list[DroppedPart]:
        """Every part of a chain this store dropped, by chain and height."""
        m = t.meta.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(m.value).where(m.key.startswith(_DROPPED_ROW)).order_by(m.key)
            ).all()
        parts = [DroppedPart.from_json(parse_canonical(bytes(v))) for (v,) in rows]
        return sorted(parts, key=lambda p: (p.chain, p.from_height))
