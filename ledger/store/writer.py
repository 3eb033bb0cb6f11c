"""Exactly one writer per node database: the PostgreSQL writer lock and read replicas.

Several node processes may serve one PostgreSQL database (API replicas behind
a load balancer), but only one of them may write: seal blocks of the node's
chain, apply peers' blocks, queue submissions. That process holds a
session-level advisory lock (``pg_try_advisory_lock``) on a key derived from
the network id and the node's code, on a connection of its own that it keeps
open for as long as it writes. PostgreSQL releases the lock when that session
ends, whether the process exits, is killed or loses its connection, and
another process can take it.

The other processes are read replicas: they open the store as a
``ReplicaStore``, which refuses every write, reload what the store caches
(heads, keys, membership) from the database periodically, and retry the lock.

A writer whose lock session is gone must stop writing at once (``held``
turns false); as a last fence, the headers table's primary key
``(chain, height)`` refuses a second block at a height already written, so two
processes that both believed they were the writer could never both commit a
block of the same height.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from kpledger.ledger.store.store import Store

__all__ = ["ReplicaStore", "WriterLock", "writer_key"]

log = logging.getLogger("kpl.store")

#: libpq settings of the lock's own connection: notice a dead server within ~11 s
_KEEPALIVE: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "connect_timeout": 5,
}


def writer_key(network_id: str, code: str) -> int:
    """The advisory lock key of ``code``'s writer in ``network_id``: a signed 64-bit integer."""
    digest = hashlib.sha256(f"KPL-WRITER-V1\n{network_id}\n{code}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class WriterLock:
    """The PostgreSQL advisory lock that makes one process the writer of a node's store."""

    def __init__(self, url: str, network_id: str, code: str) -> None:
        self.url = url
        self.code = code
        self.key = writer_key(network_id, code)
        self._engine: Engine | None = None
        self._conn: Connection | None = None

    @property
    def acquired(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True if this process holds it now."""
        if self._conn is not None:
            return True
        if self._engine is None:
            self._engine = create_engine(self.url, poolclass=NullPool, connect_args=_KEEPALIVE)
        try:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            log.warning("writer lock: cannot connect: %s", exc.__class__.__name__)
            return False
        try:
            conn.execute(text("SET statement_timeout = '5s'"))
            # the server side too: a writer whose machine vanished (no FIN ever sent)
            # loses the lock after ~11 s of silence, not after the OS default of hours
            for name, value in (("idle", 5), ("interval", 2), ("count", 3)):
                conn.execute(text(f"SET tcp_keepalives_{name} = {value}"))
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            )
        except SQLAlchemyError as exc:
            log.warning("writer lock: %s", exc.__class__.__name__)
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def held(self) -> bool:
        """Whether the lock's session is alive and still holds the lock (a round trip)."""
        if self._conn is None:
            return False
        try:
            count = self._conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid() AND objsubid = 1"
                    " AND ((classid::bigint << 32) | objid::bigint) = :u"
                ),
                {"u": self.key},  # the shift wraps like the signed key: compare as is
            ).scalar()
        except SQLAlchemyError as exc:
            log.error("writer lock: the lock's session is gone: %s", exc.__class__.__name__)
            self._drop()
            return False
        if not count:
            self._drop()
            return False
        return True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except SQLAlchemyError:
                pass

    def release(self) -> None:
        """Let the lock go (closing its session) and free the engine."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                conn.close()
            except SQLAlchemyError:
                conn.invalidate()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


class ReplicaStore(Store):
    """A store that only reads: every write is refused; ``refresh`` reloads the caches.

    What a ``Store`` caches in memory (heads, chain keys, membership,
    frontiers, restrictions) is kept current by the writer in its own process
    only; a replica reloads it from the database with ``refresh``.
    """

    READ_ONLY = True

    def refresh(self) -> None:
        self.reload()
