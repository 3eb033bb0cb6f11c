"""``kpl import-records``: a national system's export, checked line by line, then written.

A file holds rows of one kind (``--kind``): CSV with a header line, or JSON
Lines (one object per line). Each row names the act in the officer's units,
as the ``kpl`` commands do (carats and US dollars, parcels by id), and the
``Composer`` turns it into a record from the node's state.

1. every row is parsed and composed; a row that cannot be is reported with its
   line and field;
2. the node judges every record (``POST /v1/records/check``, in batches of up
   to 1,000, each record against the state plus the earlier ones of its batch)
   and nothing is written; the report lists every line: valid, already on the
   ledger, refused (rule, field, reason) or invalid;
3. only when every line is valid or already on the ledger are the new records
   submitted, with a progress bar up to the blocks that seal them.

Idempotent re-runs: a row's record id is its ``id`` column if the file has
one, else derived from the chain, the kind and the row's key (the parcel,
party or certificate number it creates or acts on), so importing the same
file twice writes each record once: the second run reports every line as
already on the ledger.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kpledger.cli import query
from kpledger.cli.query import DEFAULT_NODE, NodeOpt, TokenOpt
from kpledger.ledger.errors import InvalidData, LedgerError
from kpledger.ledger.schema import RECORD_ID
from kpledger.node.client import NodeClient
from kpledger.node.compose import Act, Composer, Row, optional_field, record_id_for
from kpledger.node.compose_artisanal import OFFICER_ACTS as ACTS

__all__ = ["import_records", "read_rows"]

console = Console()
err = Console(stderr=True, soft_wrap=True)

BATCH = 1000
MAX_ROWS = 100_000
#: seconds a node may take to judge or take one batch (a loaded node needs more than 10)
BATCH_TIMEOUT = 120.0


def read_rows(path: Path) -> Iterator[tuple[int, Row | InvalidData]]:
    """(line number, row) for every data line of a .csv or .jsonl file."""
    if path.suffix not in (".csv", ".jsonl"):
        raise InvalidData(f"{path.name}: expected a .csv or .jsonl file", field="file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidData(f"cannot read {path}: {exc}", field="file") from exc
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        for row in reader:
            if None in row:
                yield reader.line_num, InvalidData("more cells than the header names")
            else:
                yield reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items()}
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            yield number, InvalidData(f"not JSON: {exc}")
            continue
        if not isinstance(value, dict):
            yield number, InvalidData("expected a JSON object")
            continue
        yield number, value


@dataclass
class Line:
    """One line of the file: its record, or why there is none; then the node's verdict."""

    number: int
    record: dict[str, Any] | None = None
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.outcome.get("status", ""))

    @property
    def on_ledger(self) -> bool:
        return bool(self.outcome.get("duplicate")) and self.status in ("committed", "pending")


def _record_id(chain: str, spec: Act, row: Row) -> str:
    given = optional_field(row, "id")
    if given is not None:
        if RECORD_ID.match(given) is None:
            raise InvalidData("not a record id (letters, digits, . _ : -; 80 at most)", field="id")
        return given
    return record_id_for(chain, spec.kind, {"import": spec.key(row)})


def compose_lines(
    composer: Composer, spec: Act, rows: Sequence[tuple[int, Row | InvalidData]]
) -> list[Line]:
    out: list[Line] = []
    ids: dict[str, int] = {}
    for number, row in rows:
        line = Line(number)
        out.append(line)
        try:
            if isinstance(row, InvalidData):
                raise row
            rid = _record_id(composer.chain, spec, row)
            if rid in ids:
                raise InvalidData(f"same record id as line {ids[rid]}", field="id")
            ids[rid] = number
            line.record = composer.record(spec.kind, spec.body(composer, row), rid)
        except LedgerError as exc:  # the node's 404s arrive as ClientError
            where = getattr(exc, "field", "")
            problem = getattr(exc, "problem", None)
            reason = str(problem.get("detail", exc)) if isinstance(problem, dict) else str(exc)
            if isinstance(exc, InvalidData):
                reason = exc.message
            line.outcome = {"status": "invalid", "field": where, "reason": reason}
    return out


def _judge(client: NodeClient, lines: Sequence[Line]) -> None:
    """The node's dry-run verdict on every composed record, in batches."""
    todo = [x for x in lines if x.record is not None]
    for i in range(0, len(todo), BATCH):
        part = todo[i : i + BATCH]
        answers = client.check([x.record for x in part if x.record is not None])
        for line, answer in zip(part, answers, strict=True):
            line.outcome = answer


def _report(lines: Sequence[Line], *, show: str) -> None:
    table = Table(title="validation report", title_justify="left")
    for col in ("line", "record id", "status", "rule", "field", "reason"):
        table.add_column(col)
    for x in lines:
        if show == "problems" and (x.status == "valid" or x.on_ledger):
            continue
        status = "already on the ledger" if x.on_ledger else x.status
        style = {"valid": "green", "committed": "green", "already on the ledger": "dim"}.get(
            status, "red"
        )
        table.add_row(
            str(x.number),
            escape(x.record["id"] if x.record else ""),
            f"[{style}]{escape(status)}[/]",
            escape(str(x.outcome.get("rule") or "")),
            escape(str(x.outcome.get("field") or "")),
            escape(str(x.outcome.get("reason") or "")),
        )
    if table.row_count:
        console.print(table)


def _submit(client: NodeClient, lines: Sequence[Line], wait: float) -> None:
    """Submit the new records in batches; follow them to their blocks on a progress bar."""
    fresh = [x for x in lines if x.record is not None and not x.on_ledger]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        sent = progress.add_task("submitted", total=len(fresh))
        sealed = progress.add_task("sealed in blocks", total=len(fresh))
        for i in range(0, len(fresh), BATCH):
            part = fresh[i : i + BATCH]
            try:
                answers = client.submit([x.record for x in part if x.record is not None])
            except (httpx.TransportError, LedgerError):
                _stopped(i, part, len(fresh))
                raise
            for line, answer in zip(part, answers, strict=True):
                line.outcome = answer
            progress.advance(sent, len(part))
        waiting = [x for x in fresh if x.status == "pending"]
        progress.advance(sealed, len(fresh) - len(waiting))
        deadline = time.monotonic() + wait
        while waiting:
            found_all = client.outcomes([str(x.record["id"]) for x in waiting if x.record])
            still = []
            for x in waiting:
                assert x.record is not None
                found = found_all.get(x.record["id"])
                if found is not None and found["status"] in ("committed", "rejected"):
                    x.outcome = {**found, "id": x.record["id"]}
                    progress.advance(sealed, 1)
                else:
                    still.append(x)
            waiting = still
            if waiting:
                if time.monotonic() > deadline:
                    raise InvalidData(
                        f"{len(waiting)} records still pending after {wait}s; run the "
                        "import again later: what was written is skipped",
                        field="wait",
                    )
                time.sleep(0.1)


def _stopped(sent: int, part: Sequence[Line], total: int) -> None:
    """Say what a submission that failed half-way leaves behind, and how to finish it."""
    first, last = part[0].number, part[-1].number
    err.print(
        f"[bold red]import stopped[/] after {sent} of {total} new records were taken by the "
        f"node; the batch of lines {first} to {last} may or may not have been written. Run "
        "the same import again: lines already on the ledger are skipped, the rest written."
    )


def import_records(
    file: Annotated[Path, typer.Argument(help="a .csv (header line) or .jsonl file")],
    kind: Annotated[
        str, typer.Option(help=f"the rows' kind: {', '.join(ACTS)}", show_default=False)
    ],
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report on every line; write nothing")
    ] = False,
    show: Annotated[
        str, typer.Option(help="report lines: all, or problems (refused and invalid only)")
    ] = "all",
    wait: Annotated[
        float, typer.Option(min=1.0, help="seconds to wait for the blocks sealing them")
    ] = 300.0,
) -> None:
    """Import a national system's export: every line checked by the node, then written.

    Nothing is written unless every line is valid or already on the ledger.
    Exit status: 0 all written (or valid, on a dry run); 1 a line is invalid or
    refused; 2 the import could not run.
    """
    spec = ACTS.get(kind)
    if spec is None:
        err.print(f"[bold red]error:[/] --kind must be one of: {', '.join(ACTS)}")
        raise typer.Exit(2)
    if show not in ("all", "problems"):
        err.print("[bold red]error:[/] --show must be all or problems")
        raise typer.Exit(2)
    with query.session(node, token) as client:
        client.http.timeout = httpx.Timeout(BATCH_TIMEOUT)
        rows = list(read_rows(file))
        if not rows:
            raise InvalidData(f"{file.name} holds no rows", field="file")
        if len(rows) > MAX_ROWS:
            raise InvalidData(f"{len(rows)} rows; at most {MAX_ROWS} per import", field="file")
        composer = Composer.connect(client)
        lines = compose_lines(composer, spec, rows)
        _judge(client, lines)
        _report(lines, show=show)
        bad = [x for x in lines if x.status not in ("valid",) and not x.on_ledger]
        new = [x for x in lines if x.status == "valid"]
        done = len(lines) - len(bad) - len(new)
        console.print(
            f"{len(lines)} lines: {len(new)} valid, {done} already on the ledger, "
            f"{len(bad)} refused or invalid"
        )
        if bad:
            console.print("[bold red]nothing written[/]: correct the lines above and run again")
            raise typer.Exit(1)
        if dry_run or not new:
            console.print("nothing to write" if not new else "dry run: nothing written")
            return
        _submit(client, new, wait)
    refused = [x for x in new if x.status != "committed"]
    console.print(f"{len(new) - len(refused)} records committed")
    if refused:
        _report(refused, show="all")
        raise typer.Exit(1)
