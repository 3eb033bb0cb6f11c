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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from kpledger.ledger.canonical import load_stored
from kpledger.ledger.commit import CONFIDENTIAL, Disclosure, commit, confidential_paths
from kpledger.ledger.disclosed import DISCLOSURE_RULES
from kpledger.ledger.entitle import entitled
from kpledger.ledger.errors import DisclosureError, RuleViolation, StoreError
from kpledger.ledger.records import CertificateIssue, Record
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.engine import BulkWriter, KeySelect
from kpledger.ledger.store.rows import chunks

__all__ = ["DisclosureStore", "Held"]

_SALT_ROW = "salt_secret"  # the kpl_meta row holding the secret
#: the kpl_meta row holding, per chain, the record index its writer's disclosures were
#: pulled up to (8 bytes, big-endian): a restarted node asks from there
_PULLED_ROW = "disclosures-pulled:"

#: (table, the columns read) of the reads by key of the intake
_KEPT = ("disclosures", ("record", "path"))
_CLEAR = ("disclosures", ("commitment", "value"))
_OPENED = ("records", ("idx", "kind", "leaf", "raw"))


@dataclass(frozen=True)
class Held:
    """A disclosure this node holds, with the chain and kind of its record."""

    chain: str
    kind: str
    disclosure: Disclosure
    #: the commitment it opens (hex), when the caller has just checked it
    opens: str = ""

    @property
    def commitment(self) -> str:
        if self.opens:
            return self.opens
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
        # an integer's JSON is its decimal digits (bool is no disclosed value)
        "value": str(d.value)
        if isinstance(d.value, int)
        else json.dumps(d.value, ensure_ascii=False),
        "cents": d.value if isinstance(d.value, int) else None,
    }


def _none(_leaf: bytes) -> Record | None:
    return None


def _held(row: Sequence[Any]) -> Held:
    record, path, chain, kind, salt, value = row
    clear: int | str = json.loads(str(value))
    return Held(str(chain), str(kind), Disclosure(bytes(record), str(path), bytes(salt), clear))


class DisclosureStore:
    """Read and keep disclosures; the writer's salt secret."""

    def __init__(
        self,
        engine: Engine,
        *,
        read_only: bool,
        bulk: BulkWriter | None = None,
        recent: Callable[[bytes], Record | None] | None = None,
    ) -> None:
        self.engine = engine
        self.read_only = read_only
        #: a record committed lately, parsed, by its leaf hash (``StoreState.recent_record``)
        self._recent = recent if recent is not None else _none
        #: the batch inserts (the store's own, so that its listeners see them too)
        self._bulk = bulk if bulk is not None else BulkWriter(engine)
        self._select = KeySelect(engine.dialect.name)

    def put_in(self, conn: Connection, held: Iterable[Held]) -> int:
        """Keep ``held`` inside the caller's transaction; those already kept are skipped."""
        rows = [_row(h) for h in held]
        if not rows:
            return 0
        records = sorted({bytes(r["record"]) for r in rows})
        cur = conn.connection.cursor()
        try:
            have = {(bytes(a), str(b)) for a, b in self._select.rows(cur, _KEPT, "record", records)}
        finally:
            cur.close()
        unique = {(r["record"], r["path"]): r for r in rows if (r["record"], r["path"]) not in have}
        self._bulk(conn, t.disclosures, list(unique.values()))
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
        if not wanted:
            return found
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            for c, value in self._select.rows(cur, _CLEAR, "commitment", wanted):
                found[str(c)] = json.loads(str(value))
        finally:
            conn.close()
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

    def for_reader(
        self, chain: str, start: int, limit: int, reader: str, role: str | None
    ) -> tuple[list[tuple[int, Disclosure]], int]:
        """The disclosures this node holds of ``chain``'s records ``start`` ..
        ``start + limit - 1`` that ``reader`` is entitled to (``ledger.entitle``), by
        record index; and the index to ask from next."""
        r, d, c = t.records.c, t.disclosures.c, t.certificates.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(r.idx, r.raw)
                .where(r.chain == chain, r.idx >= start, r.idx < start + limit)
                .where(r.kind.in_(sorted(CONFIDENTIAL)))
                .order_by(r.idx)
            ).all()
            upto = conn.execute(
                select(func.max(r.idx)).where(r.chain == chain, r.idx < start + limit)
            ).scalar()
            shipping = {
                str(x) for (x,) in conn.execute(select(c.exporter).where(c.destination == reader))
            }
            wanted: dict[bytes, int] = {}
            exporters: set[str] = set()
            for idx, raw in rows:
                record = Record.parse(bytes(raw))
                if entitled(reader, role, record, shipping.__contains__):
                    wanted[record.leaf] = int(idx)
                    if isinstance(record.body, CertificateIssue):
                        exporters.add(record.body.exporter)
            # a certificate entitles its destination to its exporter's registration, which
            # sits earlier in the log than a reader's cursor may be: sent with it
            p = t.parties.c
            for part in chunks(sorted(exporters)):
                for reg_idx, reg_hash in conn.execute(
                    select(p.reg_idx, p.reg_hash).where(p.id.in_(part), p.reg_chain == chain)
                ):
                    wanted[bytes(reg_hash)] = int(reg_idx)
            out: list[tuple[int, Disclosure]] = []
            for part in chunks(sorted(wanted)):
                for row in conn.execute(
                    select(d.record, d.path, d.chain, d.kind, d.salt, d.value)
                    .where(d.record.in_(part))
                    .order_by(d.record, d.path)
                ):
                    held = _held(row)
                    out.append((wanted[held.disclosure.record], held.disclosure))
        out.sort(key=lambda item: (item[0], item[1].path))
        return out, (start if upto is None else max(start, int(upto) + 1))

    def exporters_to(self, reader: str) -> set[str]:
        """The exporters of the certificates destined to participant ``reader``."""
        c = t.certificates.c
        with self.engine.connect() as conn:
            return {
                str(x) for (x,) in conn.execute(select(c.exporter).where(c.destination == reader))
            }

    def receive(
        self, chain: str, items: Sequence[tuple[int, Disclosure]]
    ) -> list[tuple[int, Record]]:
        """Keep disclosures of ``chain``'s records sent by a peer, each checked against
        the record this node holds at its index (``DisclosureError`` on the first that
        does not open its commitment: nothing is kept then). Answers the records that
        received disclosures and have a disclosure rule (``DISCLOSURE_RULES``), for
        those rules to be checked on arrival.

        Each record is read and parsed once, however many of its fields are
        disclosed; only those with a rule are built as ``Record``."""
        indexes = sorted({i for i, _ in items})
        found: dict[int, tuple[str, bytes, bytes]] = {}
        if indexes:
            conn = self.engine.raw_connection()
            try:
                cur = conn.cursor()
                for idx, kind, leaf, raw in self._select.rows(cur, _OPENED, "idx", indexes, chain):
                    found[int(idx)] = (str(kind), bytes(leaf), bytes(raw))
            finally:
                conn.close()
        opened: dict[int, tuple[dict[str, Any], tuple[str, ...]]] = {}
        held: list[Held] = []
        ruled: dict[int, tuple[bytes, bytes]] = {}
        for index, disclosure in items:
            row = found.get(index)
            if row is None:
                raise DisclosureError(
                    f"no record {chain}/{index} is held here to open",
                    record=disclosure.record.hex(),
                    field=disclosure.path,
                )
            kind, leaf, raw = row
            if index not in opened:
                # bytes this store holds were checked canonical when their block came in
                doc = load_stored(raw)
                opened[index] = (doc, confidential_paths(doc))
            commitment = disclosure.check_parsed(leaf, *opened[index])
            held.append(Held(chain, kind, disclosure, commitment.digest.hex()))
            if kind in DISCLOSURE_RULES:
                ruled[index] = (leaf, raw)
        if held:
            self.put(held)
        out: list[tuple[int, Record]] = []
        for index in sorted(ruled):
            leaf, raw = ruled[index]
            out.append((index, self._recent(leaf) or Record.from_store(raw)))
        return out

    def note_inconsistent(self, chain: str, index: int, record: Record, exc: RuleViolation) -> None:
        """Keep a disclosure rule found broken on arrival: an audit finding, never a
        block rejection (``disclosure-inconsistent``)."""
        if self.read_only:
            raise StoreError("this process is a read replica: only the writer process writes")
        f = t.disclosure_findings.c
        row = {
            "record": record.leaf,
            "chain": chain,
            "idx": index,
            "kind": record.kind.value,
            "code": exc.code,
            "rule": exc.rule,
            "field": exc.field,
            "reason": exc.reason,
        }
        try:
            with self.engine.begin() as conn:
                held = conn.execute(select(f.record).where(f.record == record.leaf)).first()
                if held is None:
                    conn.execute(t.disclosure_findings.insert(), [row])
        except SQLAlchemyError as exc2:
            raise StoreError(f"cannot keep a finding: {exc2.__class__.__name__}") from exc2

    def pulled(self, chain: str) -> int:
        """The record index of ``chain`` its writer's disclosures were pulled up to (0:
        never pulled)."""
        m = t.meta.c
        with self.engine.connect() as conn:
            got = conn.execute(select(m.value).where(m.key == _PULLED_ROW + chain)).scalar()
        return 0 if got is None else int.from_bytes(bytes(got), "big")

    def note_pulled(self, chain: str, upto: int) -> None:
        """Keep the place a pull of ``chain``'s disclosures reached (``pulled``)."""
        m = t.meta.c
        key, value = _PULLED_ROW + chain, upto.to_bytes(8, "big")
        with self.engine.begin() as conn:
            done = conn.execute(t.meta.update().where(m.key == key).values(value=value))
            if done.rowcount == 0:
                conn.execute(t.meta.insert(), [{"key": key, "value": value}])

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
