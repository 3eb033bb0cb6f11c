"""Engines, migrations and opening a store's database (no state, no caches).

SQLite (default) runs in WAL mode with ``synchronous=FULL``; PostgreSQL is
reached with a ``postgresql+psycopg://`` URL. The schema is managed by Alembic
and a store at an unknown revision is refused. ``open_database`` returns an
engine on a store of the right revision and network, writing the genesis
state into a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from kpledger.ledger.chain import genesis
from kpledger.ledger.errors import LedgerError, StoreError
from kpledger.ledger.registry import Registry
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.rows import chunks

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic and psycopg are imported where they are used (a migration; COPY on
# PostgreSQL): a node or command on an up-to-date SQLite store starts without them
# (about 0.2 s of imports).

__all__ = [
    "BulkWriter",
    "CopyListener",
    "KeySelect",
    "make_engine",
    "open_database",
    "schema_revision",
    "upgrade",
]

_MIGRATIONS = Path(__file__).with_name("migrations")

#: PostgreSQL advisory lock taken by the transactions that create or migrate a
#: store, so that processes starting at once on an empty database take turns
_INIT_LOCK = 0x4B504C5F494E4954  # "KPL_INIT"


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
    from alembic.config import Config  # noqa: PLC0415 - lazy: see the imports

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


#: the table and column in which Alembic keeps a database's schema revision
_VERSION_TABLE = "alembic_version"
_VERSION_SQL = f"SELECT version_num FROM {_VERSION_TABLE}"  # noqa: S608 - a constant


def schema_revision(engine: Engine) -> str | None:
    """The store's schema revision as Alembic recorded it; None for a database Alembic
    never touched (read directly: a store opened at its revision needs no Alembic)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(_VERSION_TABLE):
            return None
        rows = conn.execute(text(_VERSION_SQL)).all()
        revs = [str(r[0]) for r in rows]
    if len(revs) > 1:
        raise StoreError(f"the store's schema has {len(revs)} revisions at once: {sorted(revs)}")
    return revs[0] if revs else None


def _serialise_init(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _INIT_LOCK})


def upgrade(engine: Engine) -> None:
    """Apply every migration up to the one this code knows."""
    from alembic import command  # noqa: PLC0415 - lazy: see the imports
    from alembic.util.exc import CommandError  # noqa: PLC0415 - lazy: see the imports

    try:
        with engine.begin() as conn:
            _serialise_init(conn)
            command.upgrade(_alembic_config(conn), "head")
    except CommandError as exc:  # e.g. a revision newer than this code
        raise StoreError(
            f"cannot upgrade the store: {exc}; this code knows revisions up to {t.SCHEMA_REVISION}"
        ) from exc


def _write_genesis(conn: Connection, registry: Registry) -> None:
    g = genesis(registry)
    conn.execute(t.meta.insert(), [{"key": "registry", "value": registry.to_bytes()}])
    conn.execute(
        t.members.insert(),
        [
            {"code": m.code, "kp_size": m.kp_size, "role": m.role, "active": m.active}
            for m in g.members
        ],
    )
    conn.execute(
        t.keys.insert(),
        [
            {"chain": k.chain, "from_height": k.from_height, "kp_size": k.kp_size, "key": k.key.raw}
            for k in g.keys
        ],
    )


def open_database(url: str, registry: Registry | None, *, create: bool) -> tuple[Engine, Registry]:
    """An engine on the store at ``url`` and the registry it holds.

    On first use (``create``) the schema is created and the genesis state
    written. Refuses a schema revision this code does not know, and a store
    that belongs to another network than ``registry``.
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
            stored = conn.execute(select(t.meta.c.value).where(t.meta.c.key == "registry")).scalar()
            if stored is None:
                if registry is None:
                    raise StoreError("a new store needs the genesis registry")
                _write_genesis(conn, registry)
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
    return engine, registry


#: told of each COPY a ``BulkWriter`` sends: its statement and its rows (SQLAlchemy's
#: events do not see it, as it goes to the driver's cursor directly)
CopyListener = Callable[[str, Sequence[tuple[Any, ...]]], None]


class BulkWriter:
    """Batch inserts with their SQL built once per (table, columns, conflict keys).

    On SQLite, and for an upsert, an ``executemany``. A plain insert on
    PostgreSQL (the append-only tables: headers, records, Merkle nodes, edges,
    events and the like) goes through ``COPY ... FROM STDIN`` on the driver's
    cursor, in the same transaction: the same rows, all or none, several times
    fewer round trips. A failure there is raised as SQLAlchemy's ``DBAPIError``
    of the driver's error (a duplicate key is an ``IntegrityError``), as an
    ``executemany`` would raise it.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._copy = engine.dialect.name == "postgresql"
        self._sql: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}
        #: see ``CopyListener``; the write-set benchmark (``bench.writeset``) listens
        self.copy_listeners: list[CopyListener] = []

    def __call__(
        self,
        conn: Connection,
        table: Any,
        rows: list[dict[str, Any]],
        keys: Sequence[str] = (),
    ) -> None:
        """Insert ``rows`` (an upsert on ``keys`` when given) on ``conn``."""
        if not rows:
            return
        cols = tuple(rows[0])
        cache_key = (table.name, cols, tuple(keys))
        sql = self._sql.get(cache_key)
        if sql is None:
            sql = self._compile(table, cols, keys)
            self._sql[cache_key] = sql
        if self._copy and not keys:
            self._send_copy(conn, sql, [tuple(row[c] for c in cols) for row in rows])
        else:
            conn.exec_driver_sql(sql, rows)

    def _compile(self, table: Any, cols: tuple[str, ...], keys: Sequence[str]) -> str:
        dialect = self._engine.dialect
        if self._copy and not keys:
            quote = dialect.identifier_preparer.quote_identifier
            names = ", ".join(quote(c) for c in cols)
            return f"COPY {quote(table.name)} ({names}) FROM STDIN"
        module: Any = postgresql if dialect.name == "postgresql" else sqlite
        stmt = module.insert(table).values({c: bindparam(c) for c in cols})
        if keys:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys),
                set_={c: stmt.excluded[c] for c in cols if c not in keys},
            )
        return str(stmt.compile(dialect=dialect))

    def _send_copy(self, conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
        import psycopg  # noqa: PLC0415 - lazy: see the imports

        driver: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
        try:
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as exc:
            raise DBAPIError.instance(sql, rows, exc, psycopg.Error) from exc
        for listener in self.copy_listeners:
            listener(sql, rows)


class KeySelect:
    """``SELECT <columns> FROM <table> WHERE [chain = ? AND] <key> IN (...)`` on the
    driver's cursor (``sqlite3`` or ``psycopg``), its rows plain tuples.

    The store's hot reads by key (``prefetch``, about seven per block; a disclosure
    pull's records and disclosures) go through it: built and executed through
    SQLAlchemy (an expanding ``IN`` compiled anew each time, result objects per
    row) they cost more than the database's own work. ``table``: a table of
    ``ledger.store.tables`` (every column read) or ``(name, column names)``; names
    come from there, never from input, and the values are parameters.
    """

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"
        self._sql: dict[tuple[str, str, bool, int], str] = {}

    def _text(self, table: Any, key: str, chained: bool, n: int) -> str:
        name, cols = (
            table if isinstance(table, tuple) else (table.name, tuple(c.name for c in table.c))
        )
        cache = (name, key, chained, n)
        sql = self._sql.get(cache)
        if sql is None:
            mark = "%s" if self.pg else "?"
            test = f"{key} = ANY({mark})" if self.pg else f"{key} IN ({', '.join('?' * n)})"
            where = f"chain = {mark} AND {test}" if chained else test
            sql = f"SELECT {', '.join(cols)} FROM {name} WHERE {where}"  # noqa: S608
            self._sql[cache] = sql
        return sql

    def rows(
        self, cur: Any, table: Any, key: str, ids: Sequence[Any], chain: str | None = None
    ) -> Iterator[Any]:
        """The rows whose ``key`` is one of ``ids`` (and of ``chain``, when given)."""
        head: tuple[Any, ...] = () if chain is None else (chain,)
        for part in chunks(ids):
            if self.pg:
                cur.execute(self._text(table, key, chain is not None, 0), (*head, list(part)))
            else:
                cur.execute(self._text(table, key, chain is not None, len(part)), (*head, *part))
            yield from cur.fetchall()
