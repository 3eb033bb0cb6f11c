"""The disclosures a node holds: clear values and salts of committed fields.

A writer keeps the disclosures of its own records (``put`` when it queues
them); a node that a peer finds entitled receives those of other chains
(``put`` after checking each against its record). The state tables hold
commitments only: ``clear`` turns the commitments a view names into the
clear values this node knows, and the API decides who may read them.

The writer's salt secret (``salt_secret``) lives in ``kpl_meta``: keyed salts
make a resubmitted clear record commit to the same bytes (DESIGN.md section 9).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from kpledger.ledger.commit import Disclosure, commit
from kpledger.ledger.errors import StoreError
from kpledger.ledger.records import Record
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.rows import chunks

__all__ = ["DisclosureStore", "Held"]

_SALT_ROW = "salt_secret"  # the kpl_meta row holding the secret


@dataclass(frozen=True)
class Held:
    """A disclosure this node holds, with the chain and kind of its record."""

    chain: str
    kind: str
    disclosure: Disclosure

    @property
    def commitment(self) -> str:
        return commit(self.disclosure.value, self.disclosure.salt).digest.hex()


def _row(h: Held) -> dict[str, Any]:
    d = h.disclosure
    return {
        "record": d.record,
        "path": d.path,
        "commitment": h.commitment,
        "chain": h.chain,
        "kind": h.kind,
        "salt": d.salt,
        "value": json.dumps(d.value, ensure_ascii=False),
        "cents": d.value if isinstance(d.value, int) else None,
    }


def _held(row: Sequence[Any]) -> Held:
    record, path, chain, kind, salt, value = row
    clear: int | str = json.loads(str(value))
    return Held(str(chain), str(kind), Disclosure(bytes(record), str(path), bytes(salt), clear))


class DisclosureStore:
    """Read and keep disclosures; the writer's salt secret."""

    def __init__(self, engine: Engine, *, read_only: bool) -> None:
        self.engine = engine
        self.read_only = read_only

    def put_in(self, conn: Connection, held: Iterable[Held]) -> int:
        """Keep ``held`` inside the caller's transaction; those already kept are skipped."""
        rows = [_row(h) for h in held]
        if not rows:
            return 0
        have: set[tuple[bytes, str]] = set()
        d = t.disclosures.c
        for part in chunks(sorted({bytes(r["record"]) for r in rows})):
            have.update(
                (bytes(a), str(b))
                for a, b in conn.execute(select(d.record, d.path).where(d.record.in_(part)))
            )
        fresh = [r for r in rows if (r["record"], r["path"]) not in have]
        unique = {(r["record"], r["path"]): r for r in fresh}
        if unique:
            conn.execute(t.disclosures.insert(), list(unique.values()))
        return len(unique)

    def put(self, held: Iterable[Held]) -> int:
        """Keep ``held`` (each already checked against its record); returns how many were new."""
        if self.read_only:
            raise StoreError("this process is a read replica: only the writer process writes")
        try:
            with self.engine.begin() as conn:
                return self.put_in(conn, held)
        except IntegrityError:
            return 0  # a concurrent put kept the same rows
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot keep disclosures: {exc.__class__.__name__}") from exc

    def keep(self, records: Iterable[Record]) -> int:
        """Keep the disclosures ``records`` carry (a writer's own records)."""
        return self.put(Held(r.chain, r.kind.value, d) for r in records for d in r.disclosures)

    def clear(self, commitments: Iterable[str]) -> dict[str, int | str]:
        """The clear value of each commitment (hex) this node holds a disclosure of."""
        wanted = sorted({c for c in commitments if c})
        found: dict[str, int | str] = {}
        d = t.disclosures.c
        with self.engine.connect() as conn:
            for part in chunks(wanted):
                for c, value in conn.execute(
                    select(d.commitment, d.value).where(d.commitment.in_(part))
                ):
                    found[str(c)] = json.loads(str(value))
        return found

    def of_records(self, leaves: Iterable[bytes]) -> list[Held]:
        """The disclosures held of the records with these leaf hashes."""
        wanted = sorted(set(leaves))
        d = t.disclosures.c
        out: list[Held] = []
        with self.engine.connect() as conn:
            for part in chunks(wanted):
                out.extend(
                    _held(r)
                    for r in conn.execute(
                        select(d.record, d.path, d.chain, d.kind, d.salt, d.value)
                        .where(d.record.in_(part))
                        .order_by(d.record, d.path)
                    )
                )
        return out

    def salt_secret(self) -> bytes:
        """The writer's secret for keyed salts: made once, then kept in ``kpl_meta``."""
        m = t.meta.c
        with self.engine.connect() as conn:
            got = conn.execute(select(m.value).where(m.key == _SALT_ROW)).scalar()
        if got is not None:
            return bytes(got)
        if self.read_only:
            raise StoreError("this store has no salt secret yet: the writer process makes it")
        secret = secrets.token_bytes(32)
        try:
            with self.engine.begin() as conn:
                conn.execute(t.meta.insert(), [{"key": _SALT_ROW, "value": secret}])
        except IntegrityError:
            return self.salt_secret()
        return secret
