"""A node's persistent store: the logs of every chain and the state they imply.

``Store`` implements ``StateView`` over SQL, so the same pure rules judge a
block whether state lives in memory or in a database. ``Store.apply(block)``
verifies a block completely and commits it with every effect in ONE database
transaction: a process killed at any instant leaves either the whole block or
none of it, and ``Store.verify()`` can always rebuild the derived state from
the log and compare.

SQLite (default) runs in WAL mode with ``synchronous=FULL``; PostgreSQL is
reached with a ``postgresql+psycopg://`` URL. The schema is managed by Alembic
and a store at an unknown revision is refused.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util.exc import CommandError
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ledger.blocks import Block, Evidence, Header, SignedHeader
from ledger.canonical import canonical_bytes, parse_canonical
from ledger.chain import apply_block, fork_heights, genesis
from ledger.crypto import PublicKey
from ledger.errors import LedgerError, StoreError
from ledger.merkle import Coord, Frontier, consistency_proof, inclusion_proof, root_at
from ledger.records import (
    CertificateConfirm,
    CertificateIssue,
    CertificateVoid,
    ParcelMerge,
    ParcelRegister,
    ParcelSplit,
    ParcelTransfer,
    PartyRegister,
    PartyRevoke,
    Record,
    RecordRef,
)
from ledger.registry import Registry
from ledger.state import (
    Certificate,
    CertificateStatus,
    Edge,
    KeyEvent,
    MemberEvent,
    Parcel,
    ParcelEvent,
    ParcelStatus,
    Party,
    State,
)
from ledger.store import tables as t

__all__ = ["Store", "VerifyReport"]

_MIGRATIONS = Path(__file__).with_name("migrations")
_HEADER_CACHE = 4096
_IN_CHUNK = 500


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for a store URL (``sqlite:///path`` or ``postgresql+psycopg://...``)."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False},
            paramstyle="named",
            poolclass=StaticPool if memory else None,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_pre_ping=True)
    raise StoreError(
        f"unsupported database URL scheme in {url.split(':', 1)[0]!r}; use "
        "sqlite:///FILE or postgresql+psycopg://USER@HOST/DB"
    )


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def schema_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        rev: str | None = MigrationContext.configure(conn).get_current_revision()
        return rev


#: PostgreSQL advisory lock taken by the transactions that create or migrate a
#: store, so that processes starting at once on an empty database take turns
_INIT_LOCK = 0x4B504C5F494E4954  # "KPL_INIT"


def _serialise_init(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _INIT_LOCK})


def upgrade(engine: Engine) -> None:
    """Apply every migration up to the one this code knows."""
    try:
        with engine.begin() as conn:
            _serialise_init(conn)
            command.upgrade(_alembic_config(conn), "head")
    except CommandError as exc:  # e.g. a revision newer than this code
        raise StoreError(
            f"cannot upgrade the store: {exc}; this code knows revisions up to {t.SCHEMA_REVISION}"
        ) from exc


# ---------------------------------------------------------------- row conversions


def _ref(chain: str, idx: int, digest: bytes) -> RecordRef:
    return RecordRef(chain, int(idx), bytes(digest))


def _origin_text(origin: Iterable[tuple[str, int]]) -> str:
    """Storage form of a composition (never hashed or signed, so plain sorted JSON)."""
    return json.dumps(dict(origin), sort_keys=True, separators=(",", ":"))


def _parcel_row(p: Parcel) -> dict[str, Any]:
    return {
        "id": p.id,
        "chain": p.chain,
        "custodian": p.custodian,
        "status": p.status.value,
        "weight": p.weight,
        "value": p.value,
        "hs": p.hs,
        "origin": _origin_text(p.origin),
        "certificate": p.certificate,
        "created_chain": p.created.chain,
        "created_idx": p.created.index,
        "created_hash": p.created.hash,
    }


def _parcel(row: Sequence[Any]) -> Parcel:
    """A ``parcels`` row (selected whole, in table order) as a Parcel."""
    pid, chain, custodian, status, weight, value, hs, origin, cert, cc, ci, ch = row
    return Parcel(
        pid,
        chain,
        custodian,
        ParcelStatus(status),
        int(weight),
        int(value),
        hs,
        tuple(sorted(json.loads(origin).items())),
        cert,
        _ref(cc, ci, ch),
    )


def _party_row(p: Party) -> dict[str, Any]:
    return {
        "id": p.id,
        "chain": p.chain,
        "name": p.name,
        "role": p.role,
        "address": p.address,
        "active": p.active,
        "reg_chain": p.registered.chain,
        "reg_idx": p.registered.index,
        "reg_hash": p.registered.hash,
    }


def _party(row: Sequence[Any]) -> Party:
    pid, chain, name, role, address, active, rc, ri, rh = row
    return Party(pid, chain, name, role, address, bool(active), _ref(rc, ri, rh))


def _cert_row(c: Certificate) -> dict[str, Any]:
    closed = c.closed_ref
    return {
        "number": c.number,
        "issuer": c.issuer,
        "destination": c.destination,
        "exporter": c.exporter,
        "importer_name": c.importer_name,
        "status": c.status.value,
        "issued": c.issued,
        "expires": c.expires,
        "carats": c.carats,
        "value": c.value,
        "origin": c.origin,
        "parcels": json.dumps(list(c.parcels)),
        "issue_chain": c.issue_ref.chain,
        "issue_idx": c.issue_ref.index,
        "issue_hash": c.issue_ref.hash,
        "closed_chain": closed.chain if closed else None,
        "closed_idx": closed.index if closed else None,
        "closed_hash": closed.hash if closed else None,
        "received": c.received,
    }


def _cert(row: Sequence[Any]) -> Certificate:
    (
        number,
        issuer,
        destination,
        exporter,
        importer,
        status,
        issued,
        expires,
        carats,
        value,
        origin,
        parcels,
        ic,
        ii,
        ih,
        cc,
        ci,
        ch,
        received,
    ) = row
    return Certificate(
        number,
        issuer,
        destination,
        exporter,
        importer,
        CertificateStatus(status),
        issued,
        expires,
        int(carats),
        int(value),
        origin,
        tuple(json.loads(parcels)),
        _ref(ic, ii, ih),
        None if cc is None else _ref(cc, ci, ch),
        None if received is None else int(received),
    )


def _header(raw: bytes) -> Header:
    return Header.from_json(parse_canonical(bytes(raw), what="stored header"))


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i : i + _IN_CHUNK]


def _referenced(records: Iterable[Record]) -> tuple[set[str], set[str], set[str]]:
    """Parcel, party and certificate ids that a batch of records will read."""
    parcels: set[str] = set()
    parties: set[str] = set()
    certs: set[str] = set()
    for r in records:
        b = r.body
        match b:
            case PartyRegister() | PartyRevoke():
                parties.add(b.party)
            case ParcelRegister():
                parcels.add(b.parcel)
                parties.add(b.custodian)
            case ParcelTransfer():
                parcels.add(b.parcel)
                parties.add(b.to)
            case ParcelSplit():
                parcels.add(b.parcel)
                parcels.update(c.parcel for c in b.children)
                parties.update(c.custodian for c in b.children if c.custodian)
            case ParcelMerge():
                parcels.update(b.parents)
                parcels.add(b.parcel)
                parties.add(b.custodian)
            case CertificateIssue():
                certs.add(b.number)
                parties.add(b.exporter)
                parcels.update(line.parcel for line in b.lines)
            case CertificateConfirm():
                certs.add(b.number)
                parties.add(b.custodian)
            case CertificateVoid():
                certs.add(b.number)
            case _:
                pass
    return parcels, parties, certs


def _rejection(record: Record, exc: LedgerError) -> dict[str, Any]:
    return {
        "chain": record.chain,
        "record_id": record.id,
        "code": exc.code,
        "rule": str(getattr(exc, "rule", "")),
        "field": str(getattr(exc, "field", "")),
        "reason": str(getattr(exc, "reason", exc)),
    }


@dataclass(frozen=True)
class VerifyReport:
    """What ``Store.verify`` checked."""

    blocks: int
    records: int
    tables: dict[str, int]


class _Reader:
    """RFC 9162 node reads for one chain: level 0 from ``records``, above from ``merkle_nodes``."""

    def __init__(self, store: Store, chain: str) -> None:
        self.store = store
        self.chain = chain

    def subtree_hashes(self, coords: Sequence[Coord]) -> list[bytes]:
        found: dict[Coord, bytes] = {}
        leaves = [i for lvl, i in coords if lvl == 0]
        nodes = [(lvl, i) for lvl, i in coords if lvl > 0]
        with self.store.engine.connect() as conn:
            for part in _chunks(leaves):
                q = select(t.records.c.idx, t.records.c.leaf).where(
                    t.records.c.chain == self.chain, t.records.c.idx.in_(part)
                )
                found.update(((0, int(i)), bytes(h)) for i, h in conn.execute(q))
            m = t.merkle_nodes.c
            for part in _chunks(nodes):
                # one OR of exact primary keys: each term is an index lookup
                q = select(m.level, m.idx, m.hash).where(
                    or_(
                        *(
                            and_(m.chain == self.chain, m.level == lvl, m.idx == i)
                            for lvl, i in part
                        )
                    )
                )
                for row in conn.execute(q):
                    found[(int(row[0]), int(row[1]))] = bytes(row[2])
        missing = [c for c in coords if c not in found]
        if missing:
            raise StoreError(f"merkle nodes missing for {self.chain}: {missing[:4]}")
        return [found[c] for c in coords]


class Store:
    """Logs and derived state in SQL; a ``StateView`` for the rules."""

    def __init__(self, engine: Engine, registry: Registry) -> None:
        self.engine = engine
        self.registry = registry
        self._dialect = engine.dialect.name
        self._heads: dict[str, Header] = {}
        self._frontiers: dict[str, Frontier] = {}
        self._headers: OrderedDict[tuple[str, int], Header] = OrderedDict()
        self._members: dict[str, list[MemberEvent]] = {}
        self._keys: dict[str, list[KeyEvent]] = {}
        self._restricted: dict[str, frozenset[str]] = {}
        self._parcels: dict[str, Parcel | None] = {}
        self._parties: dict[str, Party | None] = {}
        self._certs: dict[str, Certificate | None] = {}
        self._refs: dict[tuple[str, str], RecordRef | None] = {}
        self._confirms: dict[tuple[str, str], int | None] = {}
        self._sql: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}
        self._load_cached()

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, url: str, registry: Registry | None = None, *, create: bool = True) -> Store:
        """Open (and on first use initialise) the store at ``url``.

        Refuses a schema revision this code does not know, and a store that
        belongs to another network than ``registry``.
        """
        if not create and url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if str(path) != ":memory:" and not path.exists():
                raise StoreError(f"no kpledger store at {path}; run kpl db upgrade")
        engine = make_engine(url)
        try:
            rev = schema_revision(engine)
            if rev is None:
                if not create:
                    raise StoreError(f"no kpledger store at {engine.url!r}; run kpl db upgrade")
                upgrade(engine)
            elif rev != t.SCHEMA_REVISION:
                raise StoreError(
                    f"store schema is at revision {rev}, this code knows "
                    f"{t.SCHEMA_REVISION}; run kpl db upgrade"
                )
            with engine.begin() as conn:
                _serialise_init(conn)
                stored = conn.execute(
                    select(t.meta.c.value).where(t.meta.c.key == "registry")
                ).scalar()
                if stored is None:
                    if registry is None:
                        raise StoreError("a new store needs the genesis registry")
                    cls._write_genesis(conn, registry)
                else:
                    on_disk = Registry.parse(bytes(stored))
                    if registry is not None and on_disk.network_id != registry.network_id:
                        raise StoreError(
                            f"store belongs to network {on_disk.network_id[:16]}, not "
                            f"{registry.network_id[:16]}"
                        )
                    registry = on_disk
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(f"cannot open store: {exc.__class__.__name__}: {exc}") from exc
        except LedgerError:
            engine.dispose()
            raise
        return cls(engine, registry)

    @staticmethod
    def _write_genesis(conn: Connection, registry: Registry) -> None:
        g = genesis(registry)
        conn.execute(insert(t.meta), [{"key": "registry", "value": registry.to_bytes()}])
        conn.execute(
            insert(t.members),
            [
                {"code": m.code, "kp_size": m.kp_size, "role": m.role, "active": m.active}
                for m in g.members
            ],
        )
        conn.execute(
            insert(t.keys),
            [
                {
                    "chain": k.chain,
                    "from_height": k.from_height,
                    "kp_size": k.kp_size,
                    "key": k.key.raw,
                }
                for k in g.keys
            ],
        )

    def close(self) -> None:
        self.engine.dispose()

    def _load_cached(self) -> None:
        with self.engine.connect() as conn:
            for code, kp_size, role, active in conn.execute(select(t.members)):
                self._members.setdefault(code, []).append(
                    MemberEvent(code, int(kp_size), role, bool(active))
                )
            for chain, height, kp_size, key in conn.execute(select(t.keys)):
                self._keys.setdefault(chain, []).append(
                    KeyEvent(chain, int(height), PublicKey.from_raw(bytes(key)), int(kp_size))
                )
            last = (
                select(t.headers.c.chain, func.max(t.headers.c.height).label("h"))
                .group_by(t.headers.c.chain)
                .subquery()
            )
            q = select(t.headers.c.header).join(
                last, and_(t.headers.c.chain == last.c.chain, t.headers.c.height == last.c.h)
            )
            for (raw,) in conn.execute(q):
                h = _header(raw)
                self._heads[h.chain] = h

    # ------------------------------------------------------------ StateView
    def parcel(self, parcel_id: str) -> Parcel | None:
        if parcel_id in self._parcels:
            return self._parcels[parcel_id]
        with self.engine.connect() as conn:
            row = conn.execute(select(t.parcels).where(t.parcels.c.id == parcel_id)).first()
        return None if row is None else _parcel(row)

    def party(self, party_id: str) -> Party | None:
        if party_id in self._parties:
            return self._parties[party_id]
        with self.engine.connect() as conn:
            row = conn.execute(select(t.parties).where(t.parties.c.id == party_id)).first()
        return None if row is None else _party(row)

    def certificate(self, number: str) -> Certificate | None:
        if number in self._certs:
            return self._certs[number]
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.certificates).where(t.certificates.c.number == number)
            ).first()
        return None if row is None else _cert(row)

    def record_ref(self, chain: str, record_id: str) -> RecordRef | None:
        if (chain, record_id) in self._refs:
            return self._refs[(chain, record_id)]
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.records.c.idx, t.records.c.leaf).where(
                    t.records.c.chain == chain, t.records.c.record_id == record_id
                )
            ).first()
        return None if row is None else _ref(chain, row[0], row[1])

    def restricted(self, chain: str) -> frozenset[str]:
        if chain not in self._restricted:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(t.restrictions.c.origin).where(
                        t.restrictions.c.chain == chain, t.restrictions.c.active
                    )
                )
                self._restricted[chain] = frozenset(r[0] for r in rows)
        return self._restricted[chain]

    def member_codes(self) -> frozenset[str]:
        return frozenset(self._members)

    def member_events(self, code: str) -> list[MemberEvent]:
        return list(self._members.get(code, ()))

    def key_events(self, chain: str) -> list[KeyEvent]:
        return list(self._keys.get(chain, ()))

    def header(self, chain: str, height: int) -> Header | None:
        head = self._heads.get(chain)
        if head is not None and head.height == height:
            return head
        cached = self._headers.get((chain, height))
        if cached is not None:
            return cached
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(t.headers.c.header).where(
                    t.headers.c.chain == chain, t.headers.c.height == height
                )
            ).scalar()
        if raw is None:
            return None
        h = _header(raw)
        self._headers[(chain, height)] = h
        if len(self._headers) > _HEADER_CACHE:
            self._headers.popitem(last=False)
        return h

    def head(self, chain: str) -> Header | None:
        return self._heads.get(chain)

    def heads(self) -> dict[str, Header]:
        return dict(self._heads)

    def frontier(self, chain: str) -> Frontier:
        if chain not in self._frontiers:
            head = self._heads.get(chain)
            size = 0 if head is None else head.size
            self._frontiers[chain] = Frontier.from_reader(size, _Reader(self, chain))
        return self._frontiers[chain]

    def confirmation_index(self, chain: str, number: str) -> int | None:
        if (chain, number) in self._confirms:
            return self._confirms[(chain, number)]
        with self.engine.connect() as conn:
            idx = conn.execute(
                select(t.confirmations.c.idx).where(
                    t.confirmations.c.chain == chain, t.confirmations.c.number == number
                )
            ).scalar()
        return None if idx is None else int(idx)

    def signature(self, chain: str, height: int) -> bytes | None:
        with self.engine.connect() as conn:
            sig = conn.execute(
                select(t.headers.c.sig).where(
                    t.headers.c.chain == chain, t.headers.c.height == height
                )
            ).scalar()
        return None if sig is None else bytes(sig)

    # ------------------------------------------------------------ applying
    def prefetch(self, records: Sequence[Record]) -> None:
        """Load in a few queries the state a batch of records will read."""
        parcels, parties, certs = _referenced(records)
        with self.engine.connect() as conn:
            self._certs = dict.fromkeys(certs)
            for part in _chunks(sorted(certs)):
                for row in conn.execute(
                    select(t.certificates).where(t.certificates.c.number.in_(part))
                ):
                    cert = _cert(row)
                    self._certs[cert.number] = cert
                    parcels.update(cert.parcels)
                    parties.add(cert.exporter)
            self._parcels = dict.fromkeys(parcels)
            for part in _chunks(sorted(parcels)):
                for row in conn.execute(select(t.parcels).where(t.parcels.c.id.in_(part))):
                    self._parcels[row[0]] = _parcel(row)
            self._parties = dict.fromkeys(parties)
            for part in _chunks(sorted(parties)):
                for row in conn.execute(select(t.parties).where(t.parties.c.id.in_(part))):
                    self._parties[row[0]] = _party(row)
            ids: dict[str, set[str]] = {}
            for r in records:
                ids.setdefault(r.chain, set()).add(r.id)
            self._refs = {}
            self._confirms = {}
            for chain, wanted in ids.items():
                self._refs.update(((chain, i), None) for i in wanted)
                self._confirms.update(((chain, n), None) for n in certs)
                for part in _chunks(sorted(wanted)):
                    q = select(t.records.c.record_id, t.records.c.idx, t.records.c.leaf).where(
                        t.records.c.chain == chain, t.records.c.record_id.in_(part)
                    )
                    for rid, idx, leaf in conn.execute(q):
                        self._refs[(chain, rid)] = _ref(chain, idx, leaf)
                for part in _chunks(sorted(certs)):
                    q2 = select(t.confirmations.c.number, t.confirmations.c.idx).where(
                        t.confirmations.c.chain == chain, t.confirmations.c.number.in_(part)
                    )
                    for number, idx in conn.execute(q2):
                        self._confirms[(chain, number)] = int(idx)

    def _forget(self) -> None:
        self._parcels, self._parties, self._certs = {}, {}, {}
        self._refs, self._confirms = {}, {}

    def apply(self, block: Block, forks: Mapping[str, int] | None = None) -> State:
        """Verify ``block`` against this store and commit it atomically.

        ``forks``: chain -> fork height of the equivocation evidence held (see
        ``ledger.chain.resolve_witness``).
        """
        self.prefetch(block.records)
        try:
            layer = apply_block(self, block, self.registry, forks)
        finally:
            self._forget()
        self.commit(layer)
        return layer

    def commit(self, layer: State, rejected: Sequence[tuple[Record, LedgerError]] = ()) -> None:
        """Write a verified layer (one or more blocks) in one transaction.

        Records of the layer leave the pending queue in the same transaction,
        and ``rejected`` records leave it with their refusal recorded.
        """
        frontiers: dict[str, Frontier] = {}
        nodes: list[dict[str, Any]] = []
        by_chain: dict[str, list[Record]] = {}
        for _, _, record in sorted(layer.records, key=lambda x: (x[0].chain, x[0].index)):
            by_chain.setdefault(record.chain, []).append(record)
        for chain, recs in by_chain.items():
            f = self.frontier(chain).copy()
            for r in recs:
                for level, idx, digest in f.append(r.leaf):
                    if level > 0:
                        nodes.append({"chain": chain, "level": level, "idx": idx, "hash": digest})
            frontiers[chain] = f
        for chain, f in frontiers.items():
            want = layer.frontiers.get(chain)
            if want is not None and want.root() != f.root():
                raise StoreError(f"{chain}: records of the layer do not give its root")
        try:
            with self.engine.begin() as conn:
                self._write(conn, layer, nodes)
                self._dequeue(conn, [r for _, _, r in layer.records], rejected)
        except SQLAlchemyError as exc:
            self._frontiers.clear()
            raise StoreError(f"commit failed: {exc.__class__.__name__}: {exc}") from exc
        self._frontiers.update(frontiers)
        self._heads.update(layer.heads)
        for ev in layer.members:
            self._members.setdefault(ev.code, []).append(ev)
        for k in layer.keys:
            self._keys.setdefault(k.chain, []).append(k)
        for chain, _ in layer.restrictions:
            self._restricted.pop(chain, None)

    def _bulk(
        self,
        conn: Connection,
        table: Any,
        rows: list[dict[str, Any]],
        keys: Sequence[str] = (),
    ) -> None:
        """executemany with SQL compiled once per table (an upsert when ``keys`` are given)."""
        if not rows:
            return
        cols = tuple(rows[0])
        cache_key = (table.name, cols, tuple(keys))
        sql = self._sql.get(cache_key)
        if sql is None:
            dialect: Any = postgresql if self._dialect == "postgresql" else sqlite
            stmt = dialect.insert(table).values({c: bindparam(c) for c in cols})
            if keys:
                stmt = stmt.on_conflict_do_update(
                    index_elements=list(keys),
                    set_={c: stmt.excluded[c] for c in cols if c not in keys},
                )
            sql = str(stmt.compile(dialect=self.engine.dialect))
            self._sql[cache_key] = sql
        conn.exec_driver_sql(sql, rows)

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
        self._bulk(conn, t.parcels, [_parcel_row(p) for p in layer.parcels.values()], ["id"])
        self._bulk(conn, t.parties, [_party_row(p) for p in layer.parties.values()], ["id"])
        self._bulk(
            conn, t.certificates, [_cert_row(c) for c in layer.certificates.values()], ["number"]
        )
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

    # ------------------------------------------------------------ node queues
    def enqueue(
        self, records: Sequence[Record], rejected: Sequence[tuple[Record, LedgerError]] = ()
    ) -> None:
        """Persist acknowledged records (and refusals) before the node answers."""
        if not records and not rejected:
            return
        try:
            with self.engine.begin() as conn:
                top = conn.execute(select(func.max(t.pending.c.seq))).scalar() or 0
                self._bulk(
                    conn,
                    t.pending,
                    [
                        {"chain": r.chain, "record_id": r.id, "seq": top + 1 + i, "raw": r.raw}
                        for i, r in enumerate(records)
                    ],
                )
                self._bulk(conn, t.rejected, [_rejection(r, e) for r, e in rejected])
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot queue records: {exc.__class__.__name__}: {exc}") from exc

    def _dequeue(
        self,
        conn: Connection,
        sealed: Sequence[Record],
        rejected: Sequence[tuple[Record, LedgerError]],
    ) -> None:
        gone: dict[str, list[str]] = {}
        for r in [*sealed, *(r for r, _ in rejected)]:
            gone.setdefault(r.chain, []).append(r.id)
        for chain, ids in gone.items():
            for part in _chunks(ids):
                conn.execute(
                    t.pending.delete().where(
                        t.pending.c.chain == chain, t.pending.c.record_id.in_(part)
                    )
                )
        self._bulk(conn, t.rejected, [_rejection(r, e) for r, e in rejected])

    def pending(self, chain: str) -> list[Record]:
        """Acknowledged records of ``chain`` not sealed yet, in arrival order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.pending.c.raw).where(t.pending.c.chain == chain).order_by(t.pending.c.seq)
            ).all()
        return [Record.parse(bytes(r[0])) for r in rows]

    def outcomes(self, chain: str, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``outcome`` for many ids in three queries; ids never seen are absent."""
        found: dict[str, dict[str, Any]] = {}
        ids = sorted(set(record_ids))
        r, p, j = t.records.c, t.pending.c, t.rejected.c
        with self.engine.connect() as conn:
            for part in _chunks(ids):
                for rid, idx, height, leaf in conn.execute(
                    select(r.record_id, r.idx, r.height, r.leaf).where(
                        r.chain == chain, r.record_id.in_(part)
                    )
                ):
                    found[rid] = {
                        "status": "committed",
                        "chain": chain,
                        "height": int(height),
                        "index": int(idx),
                        "hash": bytes(leaf).hex(),
                    }
                for (rid,) in conn.execute(
                    select(p.record_id).where(p.chain == chain, p.record_id.in_(part))
                ):
                    found.setdefault(rid, {"status": "pending", "chain": chain})
                for row in conn.execute(
                    select(j.record_id, j.code, j.rule, j.field, j.reason).where(
                        j.chain == chain, j.record_id.in_(part)
                    )
                ):
                    found.setdefault(
                        row[0],
                        {
                            "status": "rejected",
                            "chain": chain,
                            "code": row[1],
                            "rule": row[2],
                            "field": row[3],
                            "reason": row[4],
                        },
                    )
        return found

    def forget_prefetched(self) -> None:
        """Drop the state loaded by ``prefetch`` (reads go to the database again)."""
        self._forget()

    def outcome(self, chain: str, record_id: str) -> dict[str, Any] | None:
        """What became of a record id on ``chain``: committed, pending or rejected."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.records.c.idx, t.records.c.height, t.records.c.leaf).where(
                    t.records.c.chain == chain, t.records.c.record_id == record_id
                )
            ).first()
            if row is not None:
                return {
                    "status": "committed",
                    "chain": chain,
                    "height": int(row[1]),
                    "index": int(row[0]),
                    "hash": bytes(row[2]).hex(),
                }
            if conn.execute(
                select(t.pending.c.seq).where(
                    t.pending.c.chain == chain, t.pending.c.record_id == record_id
                )
            ).first():
                return {"status": "pending", "chain": chain}
            rej = conn.execute(
                select(t.rejected).where(
                    t.rejected.c.chain == chain, t.rejected.c.record_id == record_id
                )
            ).first()
        if rej is not None:
            return {
                "status": "rejected",
                "chain": chain,
                "code": rej.code,
                "rule": rej.rule,
                "field": rej.field,
                "reason": rej.reason,
            }
        return None

    # ------------------------------------------------------------ reading the log
    def raw_blocks(
        self, chain: str, start: int, limit: int
    ) -> list[tuple[bytes, bytes, list[bytes]]]:
        """Blocks ``start`` .. ``start + limit - 1`` of ``chain`` as stored bytes.

        Each is (header bytes, signature, record bytes in log order): exactly
        what was hashed and signed, ready to send without re-encoding.
        """
        with self.engine.connect() as conn:
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

    def blocks(self, chain: str, start: int, limit: int) -> list[Block]:
        """Blocks ``start`` .. ``start + limit - 1`` of ``chain``, parsed."""
        return [
            Block(SignedHeader(_header(header), sig), tuple(Record.parse(r) for r in records))
            for header, sig, records in self.raw_blocks(chain, start, limit)
        ]

    def block_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t.headers)).scalar() or 0)

    def iter_blocks_causal(self, batch: int = 256) -> Iterator[Block]:
        """Every stored block, in an order where witnessed headers come first."""
        heights: dict[str, int] = {}
        done: dict[str, int] = {}
        buffers: dict[str, list[Block]] = {}
        chains = list(self._heads)
        for c in chains:
            heights[c] = self._heads[c].height
            done[c] = 0
            buffers[c] = []
        while any(done[c] < heights[c] for c in chains):
            progressed = False
            for c in chains:
                while done[c] < heights[c]:
                    if not buffers[c]:
                        buffers[c] = self.blocks(c, done[c] + 1, batch)
                    b = buffers[c][0]
                    # a witness past what is stored can only name a forked chain's
                    # other version (resolve_witness); replaying the block tells
                    if any(
                        done.get(w.chain, 0) < min(w.height, heights.get(w.chain, 0))
                        for w in b.header.witness
                    ):
                        break
                    buffers[c].pop(0)
                    done[c] += 1
                    progressed = True
                    yield b
            if not progressed:
                raise StoreError("stored blocks witness headers that are not stored")

    # ------------------------------------------------------------ proofs
    def reader(self, chain: str) -> _Reader:
        return _Reader(self, chain)

    def inclusion_proof(self, chain: str, index: int, size: int) -> list[bytes]:
        return inclusion_proof(index, size, _Reader(self, chain))

    def consistency_proof(self, chain: str, size1: int, size2: int) -> list[bytes]:
        return consistency_proof(size1, size2, _Reader(self, chain))

    def root_at(self, chain: str, size: int) -> bytes:
        return root_at(size, _Reader(self, chain))

    def record(self, chain: str, index: int) -> Record | None:
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(t.records.c.raw).where(t.records.c.chain == chain, t.records.c.idx == index)
            ).scalar()
        return None if raw is None else Record.parse(bytes(raw))

    # ------------------------------------------------------------ lineage
    def _edges(self, column: str, parcel_ids: Sequence[str]) -> list[Edge]:
        out: list[Edge] = []
        with self.engine.connect() as conn:
            for part in _chunks(list(parcel_ids)):
                q = select(t.edges).where(t.edges.c[column].in_(part))
                out += [
                    Edge(r.parent, r.child, _ref(r.chain, r.idx, r.hash)) for r in conn.execute(q)
                ]
        return sorted(out, key=lambda e: (e.child, e.parent))

    def parents(self, parcel_ids: Sequence[str]) -> list[Edge]:
        """Edges into the given parcels (what they were split or merged from)."""
        return self._edges("child", parcel_ids)

    def children(self, parcel_ids: Sequence[str]) -> list[Edge]:
        """Edges out of the given parcels (what they were split or merged into)."""
        return self._edges("parent", parcel_ids)

    def ancestry(self, parcel_id: str, limit: int = 10_000) -> list[Edge]:
        """Every edge from ``parcel_id`` back to the registrations at the mines."""
        edges: list[Edge] = []
        frontier, seen = [parcel_id], {parcel_id}
        while frontier and len(edges) < limit:
            found = self.parents(frontier)
            edges += found
            frontier = sorted({e.parent for e in found} - seen)
            seen.update(frontier)
        return edges[:limit]

    def descent(self, parcel_id: str, limit: int = 10_000) -> list[Edge]:
        """Every edge from ``parcel_id`` down to the parcels made from it."""
        edges: list[Edge] = []
        frontier, seen = [parcel_id], {parcel_id}
        while frontier and len(edges) < limit:
            found = self.children(frontier)
            edges += found
            frontier = sorted({e.child for e in found} - seen)
            seen.update(frontier)
        return edges[:limit]

    def events(self, parcel_id: str) -> list[ParcelEvent]:
        """The records that acted on a parcel, in log order per chain."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.parcel_events, t.records.c.leaf)
                .join(
                    t.records,
                    and_(
                        t.records.c.chain == t.parcel_events.c.chain,
                        t.records.c.idx == t.parcel_events.c.idx,
                    ),
                )
                .where(t.parcel_events.c.parcel == parcel_id)
                .order_by(t.parcel_events.c.height, t.parcel_events.c.chain, t.parcel_events.c.idx)
            ).all()
        return [
            ParcelEvent(r.parcel, _ref(r.chain, r.idx, r.leaf), int(r.height), r.kind) for r in rows
        ]

    def events_for(self, parcel_ids: Sequence[str]) -> list[tuple[ParcelEvent, str]]:
        """Records that acted on any of the parcels, each with its block's time."""
        pe, rec, hd = t.parcel_events.c, t.records.c, t.headers.c
        out: list[tuple[ParcelEvent, str]] = []
        with self.engine.connect() as conn:
            for part in _chunks(sorted(set(parcel_ids))):
                q = (
                    select(pe.parcel, pe.chain, pe.idx, pe.height, pe.kind, rec.leaf, hd.time)
                    .join(t.records, and_(rec.chain == pe.chain, rec.idx == pe.idx))
                    .join(t.headers, and_(hd.chain == pe.chain, hd.height == pe.height))
                    .where(pe.parcel.in_(part))
                )
                out += [
                    (ParcelEvent(p, _ref(c, i, leaf), int(h), k), time)
                    for p, c, i, h, k, leaf, time in conn.execute(q)
                ]
        return sorted(out, key=lambda x: (x[1], x[0].ref.chain, x[0].ref.index, x[0].parcel))

    def parcels_many(self, parcel_ids: Sequence[str]) -> dict[str, Parcel]:
        out: dict[str, Parcel] = {}
        with self.engine.connect() as conn:
            for part in _chunks(sorted(set(parcel_ids))):
                for row in conn.execute(select(t.parcels).where(t.parcels.c.id.in_(part))):
                    out[row[0]] = _parcel(row)
        return out

    def signed_header(self, chain: str, height: int) -> SignedHeader | None:
        header = self.header(chain, height)
        sig = self.signature(chain, height)
        return None if header is None or sig is None else SignedHeader(header, sig)

    def signed_head(self, chain: str) -> SignedHeader | None:
        head = self._heads.get(chain)
        if head is None:
            return None
        sig = self.signature(chain, head.height)
        return None if sig is None else SignedHeader(head, sig)

    # ------------------------------------------------------------ evidence
    def add_evidence(self, ev: Evidence) -> bool:
        """Store evidence once; True if it was new."""
        with self.engine.begin() as conn:
            if conn.execute(select(t.evidence.c.id).where(t.evidence.c.id == ev.id)).first():
                return False
            conn.execute(
                insert(t.evidence),
                [{"id": ev.id, "chain": ev.chain, "doc": canonical_bytes(ev.to_json())}],
            )
        return True

    def evidence(self) -> list[Evidence]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.evidence.c.doc).order_by(t.evidence.c.id)).all()
        return [Evidence.from_json(parse_canonical(bytes(r[0]))) for r in rows]

    # ------------------------------------------------------------ verification
    _DERIVED: Mapping[str, Any] = {
        "parcels": t.parcels,
        "parties": t.parties,
        "certificates": t.certificates,
        "edges": t.edges,
        "parcel_events": t.parcel_events,
        "restrictions": t.restrictions,
        "members": t.members,
        "chain_keys": t.keys,
        "confirmations": t.confirmations,
        "merkle_nodes": t.merkle_nodes,
        "headers": t.headers,
    }

    def table_rows(self, name: str) -> list[tuple[Any, ...]]:
        table = self._DERIVED[name]
        with self.engine.connect() as conn:
            rows = conn.execute(select(table)).all()
        return sorted(
            (tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows),
            key=repr,
        )

    def _record_columns(self) -> list[tuple[Any, ...]]:
        r = t.records.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(r.chain, r.idx, r.height, r.record_id, r.kind, r.leaf).order_by(
                    r.chain, r.idx
                )
            ).all()
        return [(c, int(i), int(h), rid, k, bytes(leaf)) for c, i, h, rid, k, leaf in rows]

    def verify(self, scratch_url: str = "sqlite://") -> VerifyReport:
        """Replay the whole log into a scratch store and compare every derived table.

        Every block is re-verified on the way (signatures, links, roots, all
        rules). Raises ``StoreError`` naming the first table that differs.
        """
        scratch = Store.open(scratch_url, self.registry)
        forks = fork_heights(self.evidence())
        try:
            blocks = records = 0
            for block in self.iter_blocks_causal():
                scratch.apply(block, forks)
                blocks += 1
                records += len(block.records)
            counts: dict[str, int] = {}
            for name in self._DERIVED:
                mine, theirs = self.table_rows(name), scratch.table_rows(name)
                if mine != theirs:
                    raise StoreError(
                        f"derived table {name} differs from a replay of the log "
                        f"({len(mine)} rows live, {len(theirs)} replayed)"
                    )
                counts[name] = len(mine)
            # records.leaf (Merkle level 0), record_id, kind and height are derived
            # from records.raw too: proofs, frontiers and duplicate checks read them
            if self._record_columns() != scratch._record_columns():
                raise StoreError("derived columns of table records differ from a replay of the log")
            return VerifyReport(blocks, records, counts)
        finally:
            scratch.close()
