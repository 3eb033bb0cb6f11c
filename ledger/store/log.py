"""Reading the logs: stored blocks as bytes or parsed, single records, signed headers.

What is read here is exactly what was hashed and signed: headers and records
come back as their stored bytes, ready to send to a peer without re-encoding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from sqlalchemy import Connection, func, select

from kpledger.ledger.blocks import Block, Header, SignedHeader
from kpledger.ledger.errors import StoreError
from kpledger.ledger.records import GOVERNANCE_CHAIN, Kind, Record
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.rows import header_of
from kpledger.ledger.store.stateview import StoreState

__all__ = ["LogReader", "heights_at"]


def _raw_blocks(
    conn: Connection, chain: str, start: int, limit: int
) -> list[tuple[bytes, bytes, list[bytes]]]:
    hdrs = conn.execute(
        select(t.headers.c.size, t.headers.c.header, t.headers.c.sig)
        .where(
            t.headers.c.chain == chain,
            t.headers.c.height >= start,
            t.headers.c.height < start + limit,
        )
        .order_by(t.headers.c.height)
    ).all()
    if not hdrs:
        return []
    before = 0
    if start > 1:
        found = conn.execute(
            select(t.headers.c.size).where(
                t.headers.c.chain == chain, t.headers.c.height == start - 1
            )
        ).scalar()
        if found is None:
            raise StoreError(f"{chain}: header {start - 1} missing below stored blocks")
        before = int(found)
    raws = conn.execute(
        select(t.records.c.raw)
        .where(
            t.records.c.chain == chain,
            t.records.c.idx >= before,
            t.records.c.idx < int(hdrs[-1][0]),
        )
        .order_by(t.records.c.idx)
    ).all()
    out: list[tuple[bytes, bytes, list[bytes]]] = []
    pos = 0
    for size, header, sig in hdrs:
        n = int(size) - before - pos
        out.append((bytes(header), bytes(sig), [bytes(r[0]) for r in raws[pos : pos + n]]))
        pos += n
    return out


def heights_at(conn: Connection) -> dict[str, int]:
    """The height of every chain's head as ``conn`` sees the headers table."""
    h = t.headers.c
    rows = conn.execute(select(h.chain, func.max(h.height)).group_by(h.chain)).all()
    return {str(c): int(height) for c, height in rows}


class LogReader:
    """The append-only log tables (``headers``, ``records``) of every chain."""

    def __init__(self, state: StoreState) -> None:
        self.state = state
        self.engine = state.engine

    def raw_blocks(
        self, chain: str, start: int, limit: int, *, conn: Connection | None = None
    ) -> list[tuple[bytes, bytes, list[bytes]]]:
        """Blocks ``start`` .. ``start + limit - 1`` of ``chain`` as stored bytes.

        Each is (header bytes, signature, record bytes in log order): exactly
        what was hashed and signed, ready to send without re-encoding. Read on
        ``conn`` when given (a snapshot), else on a connection of its own.
        """
        if conn is not None:
            return _raw_blocks(conn, chain, start, limit)
        with self.engine.connect() as own:
            return _raw_blocks(own, chain, start, limit)

    def blocks(
        self, chain: str, start: int, limit: int, *, conn: Connection | None = None
    ) -> list[Block]:
        """Blocks ``start`` .. ``start + limit - 1`` of ``chain``, parsed."""
        return [
            Block(SignedHeader(header_of(header), sig), tuple(Record.parse(r) for r in records))
            for header, sig, records in self.raw_blocks(chain, start, limit, conn=conn)
        ]

    def block_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t.headers)).scalar() or 0)

    def iter_causal(
        self,
        batch: int = 256,
        *,
        conn: Connection | None = None,
        heights: Mapping[str, int] | None = None,
        needs: Callable[[Header, Header | None], Mapping[str, int]] | None = None,
    ) -> Iterator[Block]:
        """Every stored block, in an order where witnessed headers come first.

        Up to ``heights`` per chain (default: the heads this store holds in
        memory), read on ``conn`` when given. ``needs(header, prev)`` says which
        height of each witnessed chain a block needs, ``prev`` being the
        previous header of its chain (default: the witnessed heights;
        ``ledger.forks.witness_needs`` for a store with evidence, where a
        forked chain's witness may name a version this store does not hold).
        """
        if heights is None:
            heights = {c: h.height for c, h in self.state.heads().items()}
        done: dict[str, int] = {}
        last: dict[str, Header] = {}
        buffers: dict[str, list[Block]] = {}
        chains = list(heights)
        for c in chains:
            done[c] = 0
            buffers[c] = []
        while any(done[c] < heights[c] for c in chains):
            progressed = False
            for c in chains:
                while done[c] < heights[c]:
                    if not buffers[c]:
                        buffers[c] = self.blocks(c, done[c] + 1, batch, conn=conn)
                    b = buffers[c][0]
                    # a witness past what is stored can only name a forked chain's
                    # other version (resolve_witness); replaying the block tells
                    want = (
                        {w.chain: w.height for w in b.header.witness}
                        if needs is None
                        else needs(b.header, last.get(c))
                    )
                    if any(
                        done.get(chain, 0) < min(height, heights.get(chain, 0))
                        for chain, height in want.items()
                    ):
                        break
                    buffers[c].pop(0)
                    last[c] = b.header
                    done[c] += 1
                    progressed = True
                    yield b
            if not progressed:
                raise StoreError("stored blocks witness headers that are not stored")

    def record(self, chain: str, index: int) -> Record | None:
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(t.records.c.raw).where(t.records.c.chain == chain, t.records.c.idx == index)
            ).scalar()
        return None if raw is None else Record.parse(bytes(raw))

    def key_records(self, chain: str) -> list[tuple[Record, int, int]]:
        """The records that changed ``chain``'s key, as ``(record, index, block height)``:
        its own ``key.rotate`` records, and the ``member.admit`` and ``key.replace``
        records on ``KP`` that name it or ``KP`` (``ledger.keyhistory``), in log order."""
        r = t.records.c
        own = (r.chain == chain) & (r.kind == Kind.KEY_ROTATE.value)
        governance = (r.chain == GOVERNANCE_CHAIN) & r.kind.in_(
            [Kind.MEMBER_ADMIT.value, Kind.KEY_REPLACE.value]
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(r.raw, r.idx, r.height).where(own | governance).order_by(r.chain, r.idx)
            ).all()
        found = [(Record.parse(bytes(raw)), int(idx), int(height)) for raw, idx, height in rows]
        return [
            (record, idx, height)
            for record, idx, height in found
            if record.chain == chain or record.body_json.get("code") in (chain, GOVERNANCE_CHAIN)
        ]

    def signed_header(self, chain: str, height: int) -> SignedHeader | None:
        header = self.state.header(chain, height)
        sig = self.state.signature(chain, height)
        return None if header is None or sig is None else SignedHeader(header, sig)

    def signed_head(self, chain: str) -> SignedHeader | None:
        head = self.state.head(chain)
        if head is None:
            return None
        sig = self.state.signature(chain, head.height)
        return None if sig is None else SignedHeader(head, sig)
