"""Appending blocks: verify a block against the store and commit it with its effects.

``BlockWriter.apply(block)`` verifies a block completely (``ledger.chain``)
and commits it with every effect in ONE database transaction: a process
killed at any instant leaves either the whole block or none of it.
``commit`` writes a layer already verified (a block this node sealed) the
same way, and takes its records out of the submission queue in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from kpledger.ledger.blocks import Block
from kpledger.ledger.chain import apply_block
from kpledger.ledger.errors import LedgerError, StoreError
from kpledger.ledger.merkle import Frontier
from kpledger.ledger.records import Record
from kpledger.ledger.state import State
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.engine import BulkWriter
from kpledger.ledger.store.queue import SubmissionQueue
from kpledger.ledger.store.rows import (
    assessment_row,
    cert_row,
    licence_row,
    parcel_row,
    party_row,
    purchase_row,
)
from kpledger.ledger.store.stateview import StoreState

__all__ = ["BlockWriter"]


class BlockWriter:
    """The one path by which blocks enter a store."""

    def __init__(
        self, state: StoreState, queue: SubmissionQueue, bulk: BulkWriter, *, read_only: bool
    ) -> None:
        self.state = state
        self.engine = state.engine
        self.queue = queue
        self._bulk = bulk
        self.read_only = read_only

    def apply(self, block: Block, forks: Mapping[str, int] | None = None) -> State:
        """Verify ``block`` against this store and commit it atomically.

        ``forks``: chain -> fork height of the equivocation evidence held (see
        ``ledger.chain.resolve_witness``).
        """
        if self.read_only:
            raise StoreError("this process is a read replica: only the writer process writes")
        self.state.prefetch(block.records)
        try:
            layer = apply_block(self.state, block, self.state.registry, forks)
        finally:
            self.state.forget_prefetched()
        self.commit(layer)
        return layer

    def commit(self, layer: State, rejected: Sequence[tuple[Record, LedgerError]] = ()) -> None:
        """Write a verified layer (one or more blocks) in one transaction.

        Records of the layer leave the pending queue in the same transaction,
        and ``rejected`` records leave it with their refusal recorded.
        """
        if self.read_only:
            raise StoreError("this process is a read replica: only the writer process writes")
        frontiers: dict[str, Frontier] = {}
        nodes: list[dict[str, Any]] = []
        by_chain: dict[str, list[Record]] = {}
        for _, _, record in sorted(layer.records, key=lambda x: (x[0].chain, x[0].index)):
            by_chain.setdefault(record.chain, []).append(record)
        for chain, recs in by_chain.items():
            made, checked = layer.merkle_nodes.get(chain), layer.frontiers.get(chain)
            if made is not None and checked is not None:
                # the block's check appended these leaves already: one Merkle pass
                nodes.extend(
                    {"chain": chain, "level": lv, "idx": i, "hash": d} for lv, i, d in made
                )
                frontiers[chain] = checked
                continue
            f = self.state.frontier(chain).copy()
            for r in recs:
                for level, idx, digest in f.append(r.leaf):
                    if level > 0:
                        nodes.append({"chain": chain, "level": level, "idx": idx, "hash": digest})
            frontiers[chain] = f
        for chain, f in frontiers.items():
            want = layer.frontiers.get(chain)
            if want is not None and want is not f and want.root() != f.root():
                raise StoreError(f"{chain}: records of the layer do not give its root")
        try:
            with self.engine.begin() as conn:
                self._write(conn, layer, nodes)
                self.queue.dequeue(conn, [r for _, _, r in layer.records], rejected)
        except SQLAlchemyError as exc:
            self.state.drop_frontiers()
            raise StoreError(f"commit failed: {exc.__class__.__name__}: {exc}") from exc
        self.state.advance(layer, frontiers)

    def _write(self, conn: Connection, layer: State, nodes: list[dict[str, Any]]) -> None:
        if layer.headers:
            self._bulk(
                conn,
                t.headers,
                [
                    {
                        "chain": h.chain,
                        "height": h.height,
                        "hash": h.hash,
                        "size": h.size,
                        "time": h.time,
                        "header": h.raw,
                        "sig": layer.signatures[(h.chain, h.height)],
                    }
                    for h in layer.headers.values()
                ],
            )
        if layer.records:
            self._bulk(
                conn,
                t.records,
                [
                    {
                        "chain": ref.chain,
                        "idx": ref.index,
                        "height": height,
                        "record_id": r.id,
                        "kind": r.kind.value,
                        "leaf": r.leaf,
                        "raw": r.raw,
                    }
                    for ref, height, r in layer.records
                ],
            )
        if nodes:
            self._bulk(conn, t.merkle_nodes, nodes)
        self._bulk(conn, t.parcels, [parcel_row(p) for p in layer.parcels.values()], ["id"])
        self._bulk(conn, t.parties, [party_row(p) for p in layer.parties.values()], ["id"])
        self._bulk(
            conn, t.certificates, [cert_row(c) for c in layer.certificates.values()], ["number"]
        )
        self._bulk(conn, t.licences, [licence_row(x) for x in layer.licences.values()], ["id"])
        if layer.purchases:
            self._bulk(conn, t.purchases, [purchase_row(p) for p in layer.purchases])
        if layer.assessments:
            self._bulk(conn, t.assessments, [assessment_row(a) for a in layer.assessments])
        self._bulk(
            conn,
            t.restrictions,
            [{"chain": c, "origin": o, "active": on} for (c, o), on in layer.restrictions.items()],
            ["chain", "origin"],
        )
        if layer.edges:
            self._bulk(
                conn,
                t.edges,
                [
                    {
                        "parent": e.parent,
                        "child": e.child,
                        "chain": e.ref.chain,
                        "idx": e.ref.index,
                        "hash": e.ref.hash,
                    }
                    for e in layer.edges
                ],
            )
        if layer.events:
            self._bulk(
                conn,
                t.parcel_events,
                [
                    {
                        "parcel": e.parcel,
                        "chain": e.ref.chain,
                        "idx": e.ref.index,
                        "height": e.height,
                        "kind": e.kind,
                    }
                    for e in layer.events
                ],
            )
        if layer.members:
            self._bulk(
                conn,
                t.members,
                [
                    {"code": m.code, "kp_size": m.kp_size, "role": m.role, "active": m.active}
                    for m in layer.members
                ],
            )
        if layer.keys:
            self._bulk(
                conn,
                t.keys,
                [
                    {
                        "chain": k.chain,
                        "from_height": k.from_height,
                        "kp_size": k.kp_size,
                        "key": k.key.raw,
                    }
                    for k in layer.keys
                ],
            )
        if layer.confirmations:
            self._bulk(
                conn,
                t.confirmations,
                [{"chain": c, "number": n, "idx": i} for (c, n), i in layer.confirmations.items()],
            )
