"""Backup and restore: a node's store as one verifiable JSON-lines file.

``export_store`` writes, one JSON document per line::

    {"format": "kpledger-export", "v": 1, "network": ..., "created": ...,
     "registry": <the genesis registry, its exact bytes>, "heads": {chain: {height, hash}}}
    {"block": {"header": <exact stored bytes>, "records": [<exact bytes>, ...], "sig": hex}}
    ...                                   every block of every chain, in causal order
    {"evidence": {...}}                   equivocation evidence held (self-verifying)
    {"pending": <record bytes>}           records acknowledged but not sealed yet
    {"rejected": {chain, record_id, code, rule, field, reason}}   refusals given
    {"end": {"blocks": N, "records": M, "evidence": E, "pending": P, "rejected": R,
             "sha256": <hex SHA-256 of every line above, newlines included>}}

Headers and records are written exactly as they were hashed and signed, and
the derived state is not written at all: ``import_file`` applies each block
with ``store.writer.apply`` into an empty store, which re-checks every signature,
link, Merkle root and custody rule, and so rebuilds the derived state.

What a failed import leaves behind (the design choice): the file is read
twice. The first pass checks its framing - the first line, the ``end`` line,
the counts and the SHA-256 of everything before ``end`` - and refuses a
truncated or damaged file before anything is written. The second pass
applies block after block, each in its own transaction; if a block then
fails verification (a file forged with a matching digest), the import stops
there with an error naming the block, and the blocks before it stay in the
store: a valid, fully verified prefix of the network's history, but an
incomplete one. Wipe that store and import a good file, or let the node fetch
the rest from its peers.

Evidence is verified against the chains' keys before it is stored; pending
records are queued again (except those the exported blocks already hold) and
the node re-checks them against the rules when it starts; refusals are kept
as they were, so a retried record id gets its first answer.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from kpledger.ledger.blocks import Block, Evidence, Header
from kpledger.ledger.canonical import canonical_bytes, load_json
from kpledger.ledger.chain import fork_heights
from kpledger.ledger.errors import InvalidData, LedgerError, StoreError
from kpledger.ledger.forks import verify_evidence, witness_needs
from kpledger.ledger.records import Record
from kpledger.ledger.registry import Registry
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.store import Store
from kpledger.ledger.store.writer import ReplicaStore

__all__ = [
    "FORMAT",
    "BackupError",
    "BackupSummary",
    "ImportReport",
    "check_file",
    "export_store",
    "import_file",
]

FORMAT = "kpledger-export"
VERSION = 1
_KINDS = ("block", "evidence", "pending", "rejected")
#: how the end line counts each kind of line
_COUNTS = {"block": "blocks", "evidence": "evidence", "pending": "pending", "rejected": "rejected"}


class BackupError(InvalidData):
    """An export file is unusable, or an import had to stop; the message says what stayed."""

    code = "backup"


@dataclass
class BackupSummary:
    """What an export file holds (from its first and last lines)."""

    network: str
    registry: Registry
    heads: dict[str, dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)
    records: int = 0
    sha256: str = ""


@dataclass
class ImportReport:
    blocks: int = 0
    records: int = 0
    evidence: int = 0
    pending: int = 0
    rejected: int = 0
    heads: dict[str, dict[str, Any]] = field(default_factory=dict)


def _heads_json(store: Store) -> dict[str, dict[str, Any]]:
    return {c: {"height": h.height, "hash": h.hash.hex()} for c, h in sorted(store.heads().items())}


def _line(key: str, raw: bytes) -> bytes:
    return b'{"' + key.encode() + b'":' + raw + b"}\n"


# ---------------------------------------------------------------- export


def export_store(
    url: str, out: Path, progress: Callable[[int, int], None] | None = None
) -> BackupSummary:
    """Write the store at ``url`` to ``out`` (mode 0600, replaced atomically when complete).

    Safe while a node is running on the store: the file holds every block up
    to the heads read when the export starts. Pending records are read
    first, so one sealed meanwhile is in the file twice at worst, never lost.
    ``progress(done, total)`` is called per block written, ``total`` being the
    number of blocks up to those heads.
    """
    store = ReplicaStore.open(url, None, create=False)  # only reads, whatever happens
    assert isinstance(store, ReplicaStore)
    part = out.with_name(out.name + ".part")
    try:
        with store.engine.connect() as conn:
            pending = [
                bytes(r[0]) for r in conn.execute(select(t.pending.c.raw).order_by(t.pending.c.seq))
            ]
            rejected = [
                dict(r._mapping)
                for r in conn.execute(
                    select(t.rejected).order_by(t.rejected.c.chain, t.rejected.c.record_id)
                )
            ]
        store.refresh()  # the heads to export: read after the queue
        digest = hashlib.sha256()
        counts = dict.fromkeys(_KINDS, 0)
        records = 0
        part.unlink(missing_ok=True)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:

            def emit(line: bytes) -> None:
                digest.update(line)
                f.write(line)

            heads = _heads_json(store)
            total = sum(h["height"] for h in heads.values())
            head = {
                "format": FORMAT,
                "v": VERSION,
                "network": store.registry.network_id,
                "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "heads": heads,
            }
            # the registry goes in as its exact bytes; the rest is canonical JSON too
            opening = canonical_bytes(head)
            emit(opening[:-1] + b',"registry":' + store.registry.to_bytes() + b"}\n")
            forks = fork_heights(store.evidence.all())

            def needs(header: Header, prev: Header | None) -> Mapping[str, int]:
                # a repeated old witness of a restarted chain needs only its common header
                return witness_needs(store, header, forks, prev)

            for block in store.log.iter_causal(needs=needs if forks else None):
                body = (
                    b'{"header":'
                    + block.header.raw
                    + b',"records":['
                    + b",".join(r.raw for r in block.records)
                    + b'],"sig":"'
                    + block.signed.sig.hex().encode()
                    + b'"}'
                )
                emit(_line("block", body))
                counts["block"] += 1
                records += len(block.records)
                if progress is not None:
                    progress(counts["block"], total)
            for ev in store.evidence.all():
                emit(_line("evidence", canonical_bytes(ev.to_json())))
                counts["evidence"] += 1
            for raw in pending:
                emit(_line("pending", raw))
                counts["pending"] += 1
            for row in rejected:
                emit(_line("rejected", canonical_bytes(row)))
                counts["rejected"] += 1
            end: dict[str, Any] = {_COUNTS[k]: v for k, v in counts.items()}
            end |= {"records": records, "sha256": digest.hexdigest()}
            f.write(canonical_bytes({"end": end}) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        part.replace(out)
        return BackupSummary(
            store.registry.network_id,
            store.registry,
            heads,
            counts,
            records,
            digest.hexdigest(),
        )
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        store.close()


# ---------------------------------------------------------------- reading


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with path.open("rb") as f:
            yield from enumerate(f, 1)
    except OSError as exc:
        raise BackupError(f"{path}: cannot read: {exc}") from exc


def _opening(path: Path, line: bytes) -> BackupSummary:
    value = load_json(line, what=f"{path}: line 1")
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise BackupError(f"{path}: not a kpledger export (line 1 has no format {FORMAT!r})")
    if value.get("v") != VERSION:
        raise BackupError(f"{path}: export format version {value.get('v')!r}, this code reads 1")
    try:
        registry = Registry.parse(canonical_bytes(value.get("registry")))
    except LedgerError as exc:
        raise BackupError(f"{path}: line 1: the registry is not valid: {exc}") from exc
    if registry.network_id != value.get("network"):
        raise BackupError(f"{path}: line 1: the registry is not the one of network")
    heads = value.get("heads")
    if not isinstance(heads, dict):
        raise BackupError(f"{path}: line 1: heads missing")
    return BackupSummary(registry.network_id, registry, heads)


def check_file(path: Path) -> BackupSummary:
    """First pass: the file's framing, counts and digest; raises ``BackupError`` if damaged."""
    digest = hashlib.sha256()
    summary: BackupSummary | None = None
    counts = dict.fromkeys(_KINDS, 0)
    end: bytes | None = None
    last = 0
    for n, line in _lines(path):
        last = n
        if end is not None:
            raise BackupError(f"{path}: line {n} follows the end line; the file was altered")
        if not line.endswith(b"\n"):
            raise BackupError(f"{path} is truncated: line {n} is incomplete; nothing was imported")
        if n == 1:
            summary = _opening(path, line)
        elif line.startswith(b'{"end":'):
            end = line
            continue
        else:
            kind = line[2 : line.find(b'"', 2)].decode("ascii", "replace")
            if kind not in counts:
                raise BackupError(f"{path}: line {n}: unknown entry {kind!r}")
            counts[kind] += 1
        digest.update(line)
    if summary is None:
        raise BackupError(f"{path} is empty")
    if end is None:
        raise BackupError(
            f"{path} is truncated: no end line after line {last} (a complete export always "
            "ends with one); nothing was imported"
        )
    trailer = load_json(end, what=f"{path}: end line")
    info = trailer.get("end") if isinstance(trailer, dict) else None
    if not isinstance(info, dict):
        raise BackupError(f"{path}: the end line is malformed")
    if info.get("sha256") != digest.hexdigest():
        raise BackupError(
            f"{path}: SHA-256 of the content does not match its end line: the file was "
            "altered or damaged; nothing was imported"
        )
    for kind, count in counts.items():
        if info.get(_COUNTS[kind]) != count:
            raise BackupError(
                f"{path}: {count} {kind} lines, the end line says {info.get(_COUNTS[kind])}; "
                "nothing was imported"
            )
    summary.counts = counts
    summary.records = int(info.get("records", 0))
    summary.sha256 = digest.hexdigest()
    return summary


# ---------------------------------------------------------------- import


def _empty(store: Store) -> bool:
    with store.engine.connect() as conn:
        for table in (t.headers, t.pending, t.rejected, t.evidence):
            if conn.execute(select(func.count()).select_from(table)).scalar():
                return False
    return True


def import_file(
    path: Path,
    url: str,
    *,
    registry: Registry | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Load an export into the empty store at ``url`` (created if missing), verifying it all.

    ``registry``, when given, is the genesis the operator expects: a file of
    another network is refused. ``progress(done, total)`` is called per block.
    """
    summary = check_file(path)
    if registry is not None and registry.network_id != summary.network:
        raise BackupError(
            f"{path} is an export of network {summary.network[:16]}, not of "
            f"{registry.network_id[:16]}"
        )
    store = Store.open(url, summary.registry)
    try:
        if not _empty(store):
            raise BackupError(
                "the target store is not empty: import only into a new store (drop the "
                "PostgreSQL schema or database, or remove the SQLite file, first)"
            )
        report = ImportReport()
        total = summary.counts["block"]
        pending: list[Record] = []
        forks = _forks(path)
        for n, line in _lines(path):
            if n == 1 or line.startswith(b'{"end":'):
                continue
            value = load_json(line, what=f"{path}: line {n}")
            (kind, item), *_ = value.items()
            if kind == "block":
                _apply(store, path, n, item, report, forks)
                if progress is not None:
                    progress(report.blocks, total)
            elif kind == "evidence":
                ev = Evidence.from_json(item)
                verify_evidence(store, ev)
                store.evidence.add(ev)
                report.evidence += 1
            elif kind == "pending":
                record = Record.from_value(item)
                if store.record_ref(record.chain, record.id) is None:
                    pending.append(record)
            elif kind == "rejected":
                _rejected(store, item)
                report.rejected += 1
        store.queue.enqueue(pending)
        report.pending = len(pending)
        report.heads = _heads_json(store)
        if report.heads != summary.heads:
            raise BackupError(
                f"{path}: after import the heads are {report.heads}, the file names "
                f"{summary.heads}; the file is inconsistent"
            )
        return report
    finally:
        store.close()


def _forks(path: Path) -> dict[str, int]:
    """Fork heights of the file's evidence, read before its blocks: a store that held
    one version of a forked chain holds blocks witnessing the other (see
    ``ledger.chain.resolve_witness``). Each evidence line is verified after the
    blocks, when the keys are known; one that fails ends the import."""
    found: list[Evidence] = []
    for n, line in _lines(path):
        if line.startswith(b'{"evidence":'):
            value = load_json(line, what=f"{path}: line {n}")
            found.append(Evidence.from_json(value["evidence"]))
    return fork_heights(found)


def _apply(
    store: Store, path: Path, n: int, item: Any, report: ImportReport, forks: dict[str, int]
) -> None:
    where = f"line {n}"
    try:
        block = Block.from_json(item, max_records=store.registry.params.max_block_records)
        where = f"line {n} ({block.header.chain}/{block.header.height})"
        store.writer.apply(block, forks)
    except LedgerError as exc:
        raise BackupError(
            f"{path}: block at {where} failed verification: {exc}. The {report.blocks} "
            "blocks before it were verified and committed and stay in the store: a valid "
            "but incomplete copy. Wipe the store and import a good file, or start the "
            "node and let it fetch the rest from its peers."
        ) from exc
    report.blocks += 1
    report.records += len(block.records)


def _rejected(store: Store, item: Any) -> None:
    keys = {"chain", "record_id", "code", "rule", "field", "reason"}
    if not isinstance(item, dict) or set(item) != keys:
        raise BackupError(f"a rejected entry must have exactly {sorted(keys)}")
    if not all(isinstance(v, str) for v in item.values()):
        raise BackupError("a rejected entry holds strings only")
    try:
        with store.engine.begin() as conn:
            conn.execute(insert(t.rejected), [item])
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot store refusal of {item['record_id']}: {exc}") from exc
