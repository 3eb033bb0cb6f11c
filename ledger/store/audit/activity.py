"""Findings about participants: unrecorded production, activity while suspended, equivocation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, false, func, not_, or_, select

from kpledger.ledger.blocks import Evidence
from kpledger.ledger.canonical import load_stored, parse_canonical
from kpledger.ledger.kpdata import PRODUCERS
from kpledger.ledger.records import GOVERNANCE_CHAIN, Kind
from kpledger.ledger.registry import Params
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.audit.base import (
    RECORDS_PER_FINDING,
    H,
    Period,
    R,
    RecordResolver,
    RefKey,
    as_int,
    cents_of,
)
from kpledger.ledger.store.audit.rows import (
    AuditRecord,
    Bounded,
    DisclosureInconsistent,
    Equivocation,
    SuspendedActivity,
    UnrecordedProduction,
)
from kpledger.ledger.store.rows import header_of

__all__ = [
    "disclosure_inconsistent",
    "equivocation",
    "governance_record",
    "suspended_activity",
    "unrecorded_production",
]


def unrecorded_production(
    conn: Connection, period: Period, limit: int, params: Params, recs: RecordResolver
) -> Bounded[UnrecordedProduction]:
    """``parcel.register`` by a participant the network's reference does not list as a
    producer in the year of the ``produced`` date (``Params.producers_in``)."""
    always = PRODUCERS.intersection(*(codes for _, codes in params.producers))
    q = (
        select(R.chain, R.idx, R.leaf, R.raw)
        .join(t.headers, and_(H.chain == R.chain, H.height == R.height))
        .where(
            R.kind == Kind.PARCEL_REGISTER.value,
            R.chain.not_in(sorted(always)),  # a producer of every year is never flagged
            *period.times(H.time),
        )
        .order_by(R.chain, R.idx)
        .execution_options(stream_results=True, yield_per=500)
    )
    flagged: list[tuple[str, int, bytes, dict[str, Any]]] = []
    rows = conn.execute(q)
    for chain, idx, leaf, raw in rows:
        body = load_stored(bytes(raw))["body"]
        if chain in params.producers_in(int(str(body["produced"])[:4])):
            continue
        flagged.append((chain, int(idx), bytes(leaf), body))
        if len(flagged) > limit:
            break
    rows.close()
    register = Kind.PARCEL_REGISTER.value
    clear = cents_of(conn, (str(body["value"]["c"]) for _, _, _, body in flagged[:limit]))
    ref = recs.resolve((chain, idx, leaf, register) for chain, idx, leaf, _ in flagged[:limit])
    items = tuple(
        UnrecordedProduction(
            chain=chain,
            parcel=str(body["parcel"]),
            weight=int(body["weight"]),
            value=clear.get(str(body["value"]["c"]), 0),
            mine=str(body["mine"]),
            produced=str(body["produced"]),
            records=(ref((chain, idx, leaf, register)),),
        )
        for chain, idx, leaf, body in flagged[:limit]
    )
    return Bounded(items, len(flagged) > limit)


def governance_record(conn: Connection, kp_size: int) -> tuple[int, bytes, str, int, str] | None:
    """The governance record that made member event ``kp_size``: (idx, leaf, kind, height, time)."""
    row = conn.execute(
        select(R.idx, R.leaf, R.kind, R.height, H.time)
        .join(t.headers, and_(H.chain == R.chain, H.height == R.height))
        .where(R.chain == GOVERNANCE_CHAIN, R.idx == kp_size - 1)
    ).first()
    if row is None:
        return None
    return int(row[0]), bytes(row[1]), str(row[2]), int(row[3]), str(row[4])


def _first_witnessing(conn: Connection, chain: str, kp_height: int) -> int | None:
    """The first height of ``chain`` whose header witnesses ``KP`` at ``kp_height`` or above.

    Witness heights never go back along a chain (``blocks.check_link``), so a
    binary search reads about log2(height) headers."""
    top = conn.execute(select(func.max(H.height)).where(H.chain == chain)).scalar()
    if top is None:
        return None
    lo, hi = 1, int(top) + 1  # the answer lies in [lo, hi]; hi: none of them does
    while lo < hi:
        mid = (lo + hi) // 2
        raw = conn.execute(select(H.header).where(H.chain == chain, H.height == mid)).scalar()
        witnessed = (
            0
            if raw is None
            else next((w.height for w in header_of(raw).witness if w.chain == GOVERNANCE_CHAIN), 0)
        )
        if witnessed >= kp_height:
            hi = mid
        else:
            lo = mid + 1
    return None if lo > int(top) else lo


def suspended_activity(
    conn: Connection, period: Period, limit: int, recs: RecordResolver
) -> Bounded[SuspendedActivity]:
    """Records a participant's chain sealed while it was suspended.

    A block counts when it witnesses the suspension and not the reinstatement
    (membership as the rules read it: a block's time, which its sealer sets,
    cannot hide it), or when it is dated after the suspension before
    witnessing it (a node that had not heard of it yet)."""
    m = t.members.c
    suspensions = conn.execute(
        select(m.code, m.kp_size).where(not_(m.active)).order_by(m.kp_size).limit(limit + 1)
    ).all()
    items = []
    for code, kp_size in suspensions[:limit]:
        found = governance_record(conn, int(kp_size))
        if found is None:
            continue
        idx, leaf, kind, height, suspended = found
        back = conn.execute(
            select(func.min(m.kp_size)).where(m.code == code, m.active, m.kp_size > kp_size)
        ).scalar()
        again = None if back is None else governance_record(conn, int(back))
        reinstated = None if again is None else again[4]
        bound = _first_witnessing(conn, code, height)
        until = None if again is None else _first_witnessing(conn, code, again[3])
        witnessed: list[ColumnElement[bool]] = [R.height >= bound if bound is not None else false()]
        if until is not None:
            witnessed.append(R.height < until)
        dated = [H.time > suspended]
        if bound is not None:
            dated.append(R.height < bound)
        if reinstated is not None:
            dated.append(H.time < reinstated)
        while_out = [R.chain == code, or_(and_(*witnessed), and_(*dated)), *period.times(H.time)]
        joined = t.records.join(t.headers, and_(H.chain == R.chain, H.height == R.height))
        count = as_int(
            conn.execute(select(func.count()).select_from(joined).where(*while_out)).scalar()
        )
        if count == 0:
            continue
        rows = conn.execute(
            select(R.idx, R.leaf, R.kind)
            .select_from(joined)
            .where(*while_out)
            .order_by(R.idx)
            .limit(RECORDS_PER_FINDING)
        ).all()
        keys: list[RefKey] = [(code, i, h, k) for i, h, k in rows]
        ref = recs.resolve(keys)
        items.append(
            SuspendedActivity(
                participant=code,
                suspended=suspended,
                reinstated=reinstated,
                suspension=AuditRecord(GOVERNANCE_CHAIN, idx, leaf.hex(), kind, height, suspended),
                count=count,
                records=tuple(ref(k) for k in keys),
                records_truncated=count > len(rows),
            )
        )
    return Bounded(tuple(items), len(suspensions) > limit)


def equivocation(conn: Connection, period: Period, limit: int) -> Bounded[Equivocation]:
    items: list[Equivocation] = []
    truncated = False
    rows = conn.execute(
        select(t.evidence.c.id, t.evidence.c.doc)
        .order_by(t.evidence.c.id)
        .execution_options(stream_results=True, yield_per=100)
    )
    for ev_id, doc in rows:
        ev = Evidence.from_json(parse_canonical(bytes(doc), what="stored evidence"))
        if not (period.holds_time(ev.a.header.time) or period.holds_time(ev.b.header.time)):
            continue
        if len(items) == limit:
            truncated = True
            break
        items.append(Equivocation(ev_id, ev.chain, (ev.a.header, ev.b.header)))
    rows.close()
    return Bounded(tuple(items), truncated)


def disclosure_inconsistent(
    conn: Connection, period: Period, limit: int, recs: RecordResolver
) -> Bounded[DisclosureInconsistent]:
    """Disclosure rules found broken when disclosures arrived (``disclosure_findings``),
    for records sealed in the period."""
    f = t.disclosure_findings.c
    q = (
        select(f.chain, f.idx, f.record, f.kind, f.code, f.rule, f.field, f.reason)
        .join(t.records, and_(R.chain == f.chain, R.idx == f.idx))
        .join(t.headers, and_(H.chain == R.chain, H.height == R.height))
        .where(*period.times(H.time))
        .order_by(f.chain, f.idx)
        .limit(limit + 1)
    )
    rows = conn.execute(q).all()
    ref = recs.resolve((c, i, leaf, kind) for c, i, leaf, kind, *_ in rows[:limit])
    items = tuple(
        DisclosureInconsistent(
            str(c),
            str(kind),
            str(code),
            str(rule),
            str(field),
            str(reason),
            (ref((c, i, leaf, kind)),),
        )
        for c, i, leaf, kind, code, rule, field, reason in rows[:limit]
    )
    return Bounded(items, len(rows) > limit)
