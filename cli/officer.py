"""An authority officer's acts: ``kpl party|parcel|certificate|policy ...``.

Each command reads what it needs from the authority's own node (``--node``,
``KPL_NODE``) with the operator token (``--token``, ``KPL_TOKEN``), composes
the record with ``node.compose.Composer``, submits it and waits until it is
sealed, then prints the outcome: committed (chain, index, block height), or
the rule and the field that refused it. ``--dry-run`` asks the node to judge
the record against its current state (``POST /v1/records/check``) and writes
nothing; ``--json`` prints the record and the outcome as JSON.

Exit status: 0 committed (or, with ``--dry-run``, valid); 1 refused by a rule
or invalid; 2 the command could not run (bad input, node unreachable, HTTP
problem, no answer in time).

One concept, with a reason for its size: an officer's acts, one short Typer
command per kind of record an authority writes (thirteen of them), each a
call to ``Composer`` and to the shared submit-wait-print path above them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from kpledger.cli import query
from kpledger.cli.exits import Exit, error_json
from kpledger.cli.query import DEFAULT_NODE, NodeOpt, TokenOpt, certificate_app, parcel_app
from kpledger.cli.render import carats
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.records import PARTY_ROLES, REFUSAL_CODES, Kind
from kpledger.node.client import ClientError, NodeClient
from kpledger.node.compose import Composer, parse_carats, parse_usd

__all__ = ["party_app", "policy_app", "run_acts", "settle", "stats_report"]

party_app = typer.Typer(help="licensed parties of this authority", no_args_is_help=True)
policy_app = typer.Typer(help="this participant's import policy (rule 9)", no_args_is_help=True)

console = Console()
err = Console(stderr=True, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="print the record and outcome as JSON")]
DryOpt = Annotated[
    bool, typer.Option("--dry-run", help="have the node check it against its state; write nothing")
]
IdOpt = Annotated[
    str | None,
    typer.Option("--id", help="record id (default: derived from the act, so re-runs are safe)"),
]
WaitOpt = Annotated[
    float, typer.Option("--wait", min=1.0, help="seconds to wait for the block sealing it")
]
Build = Callable[[Composer], list[tuple[Kind, dict[str, Any]]]]


def settle(
    client: NodeClient, records: Sequence[dict[str, Any]], *, dry_run: bool, wait: float
) -> list[dict[str, Any]]:
    """Submit (or check) records; wait until each is committed or refused.

    Returns one outcome per record: ``committed``, ``rejected``, ``invalid``, or
    for a dry run ``valid``. An id already on the chain answers its first outcome.
    """
    if dry_run:
        return client.check(records)
    answers = _submit_acts(client, records)
    waiting = [a["id"] for a in answers if a["status"] == "pending"]
    done = client.wait_settled(waiting, timeout=wait) if waiting else {}
    out = []
    for a in answers:
        if a["status"] == "pending":
            out.append(
                {
                    **done[a["id"]],
                    "id": a["id"],
                    **({"duplicate": True} if a.get("duplicate") else {}),
                }
            )
        else:
            out.append(a)
    return out


def _submit_acts(client: NodeClient, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Submit records whose ids come from the act; an act already on the ledger answers
    the outcome of its first submission (``duplicate``) instead of a conflict.

    A record's id names the act, not its bytes: re-running a command composes the
    same act at another time, which the node answers with 409 (the id holds other
    content). Those records answer their first outcome; the rest are submitted.
    """
    try:
        return client.submit(records)
    except ClientError as exc:
        if exc.status != 409:
            raise
    known: dict[str, dict[str, Any]] = {}
    for r in records:
        first = client.outcome(str(r["id"]))
        if first is not None:
            known[str(r["id"])] = {**first, "id": r["id"], "duplicate": True}
    fresh = [r for r in records if str(r["id"]) not in known]
    if len(fresh) == len(records):  # the conflict is not with an earlier act: say so
        return client.submit(records)
    answers = {str(a["id"]): a for a in client.submit(fresh)} if fresh else {}
    return [known.get(str(r["id"])) or answers[str(r["id"])] for r in records]


def _line(record: dict[str, Any], outcome: dict[str, Any]) -> str:
    kind, rid = record["kind"], record["id"]
    status = outcome["status"]
    again = " (already submitted: its first outcome)" if outcome.get("duplicate") else ""
    if status == "committed":
        return (
            f"[green]committed[/] {kind} as {outcome['chain']} record {outcome['index']} "
            f"in block {outcome['height']}{again}  [dim]id {escape(rid)}[/]"
        )
    if status == "valid":
        return f"[green]valid[/] {kind}: the node would accept it (dry run: nothing written)"
    if status == "pending":  # a dry run of an id the node already queued
        return f"[yellow]pending[/] {kind}: already queued{again}  [dim]id {escape(rid)}[/]"
    where = outcome.get("field") or "record"
    if status == "rejected":
        return (
            f"[bold red]refused[/] {kind} by rule {outcome.get('rule')} at {escape(where)}: "
            f"{escape(str(outcome.get('reason')))} ({outcome.get('code')}){again}"
        )
    return f"[bold red]invalid[/] {kind} at {escape(where)}: {escape(str(outcome.get('reason')))}"


def _summary(kind: str, body: dict[str, Any]) -> str | None:
    if kind == Kind.CERTIFICATE_ISSUE.value:
        return (
            f"certificate {body['number']} to {body['destination']}: {body['parcels']} parcel(s), "
            f"{carats(body['carats'])}, {body['value'] // 100:,}.{body['value'] % 100:02d} USD, "
            f"origin {body['origin']}, issued {body['issued']}, expires {body['expires']}"
        )
    if kind == Kind.PARCEL_MERGE.value:
        return f"{' + '.join(body['parents'])} -> {body['parcel']}: {carats(body['weight'])}"
    if kind == Kind.PARCEL_SPLIT.value:
        parts = ", ".join(f"{c['parcel']} {carats(c['weight'])}" for c in body["children"])
        return f"{body['parcel']} -> {parts}"
    if kind == Kind.STATS_REPORT.value:
        cells = [("production", body["production"])] + [
            (f"{section} {c['partner']}", c)
            for section in ("exports", "imports")
            for c in body[section]
        ]
        return f"statistics {body['quarter']}: " + "; ".join(
            f"{name} {carats(c['carats'])}"
            + (
                f" {c['value'] // 100:,}.{c['value'] % 100:02d} USD"
                if "value" in c
                else " (USD withheld)"
            )
            for name, c in cells
        )
    if kind == Kind.CERTIFICATE_CONFIRM.value:
        got = sum(r["weight"] for r in body["received"])
        return f"certificate {body['number']}: received {carats(got)} to {body['custodian']}"
    return None


def _usd_or_withheld(cell: dict[str, Any]) -> str:
    if "value" not in cell:
        return "(USD withheld: a small cell)"
    return f"{cell['value'] // 100:,}.{cell['value'] % 100:02d} USD"


def run_acts(
    build: Build,
    *,
    node: str,
    token: str | None,
    as_json: bool,
    dry_run: bool,
    record_id: str | None = None,
    wait: float = 60.0,
) -> None:
    """Compose, submit (or check), print; exit 1 if any record is refused."""
    with query.session(node, token, as_json) as client:
        composer = Composer.connect(client)
        acts = build(composer)
        if record_id is not None and len(acts) != 1:
            raise InvalidData("--id names one record; this act writes several", field="id")
        records = [composer.record(kind, body, record_id) for kind, body in acts]
        outcomes = settle(client, records, dry_run=dry_run, wait=wait)
    ok = all(o["status"] in ("committed", "valid", "pending") for o in outcomes)
    if as_json:
        doc = [
            {"record": r, "outcome": o, "dry_run": dry_run}
            for r, o in zip(records, outcomes, strict=True)
        ]
        typer.echo(json.dumps(doc[0] if len(doc) == 1 else doc, indent=2, sort_keys=True))
    else:
        for r, o in zip(records, outcomes, strict=True):
            summary = _summary(r["kind"], r["body"])
            if summary:
                console.print(escape(summary))
            console.print(_line(r, o))
    if not ok:
        raise typer.Exit(1)


@contextmanager
def _arguments(as_json: bool) -> Iterator[None]:
    """Arguments read before the node is asked (carats, dollars, PARCEL=CARATS): one
    that does not parse is named on stderr (JSON with ``--json``) and exits 2."""
    try:
        yield
    except InvalidData as exc:
        if as_json:
            error_json(Exit.INVALID_INPUT, str(exc))
        else:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(Exit.INVALID_INPUT) from exc


def _one(kind: Kind, make: Callable[[Composer], dict[str, Any]]) -> Build:
    return lambda c: [(kind, make(c))]


# ---------------------------------------------------------------- parties


@party_app.command("register")
def party_register(
    name: Annotated[str, typer.Option(help="registered company name")],
    role: Annotated[str, typer.Option(help=", ".join(sorted(PARTY_ROLES)))],
    address: Annotated[str, typer.Option(help="registered address")],
    party: Annotated[
        str | None,
        typer.Argument(
            help="the party's id; default: a new id (BW-7KQ2M4XA) that carries no name: the "
            "name is a committed field other governments never see"
        ),
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """License a company in this jurisdiction (party.register).

    Without an id, a new one is drawn and printed first: re-run the command with
    that id (and the same fields) if it did not finish, so the party is not
    registered twice.
    """

    def build(c: Composer) -> list[tuple[Kind, dict[str, Any]]]:
        pid = party or c.new_party_id()
        if party is None and not as_json:
            console.print(f"new party id {pid}: it carries no name; keep it")
        return [(Kind.PARTY_REGISTER, c.party_register(pid, name, role, address))]

    run_acts(
        build,
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=record_id,
        wait=wait,
    )


@party_app.command("revoke")
def party_revoke(
    party: Annotated[str, typer.Argument(help="the party's id")],
    reason: Annotated[str, typer.Option(help="why the licence ends")],
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Withdraw a party's licence (party.revoke): it may hold nothing new."""
    run_acts(
        _one(Kind.PARTY_REVOKE, lambda c: c.party_revoke(party, reason)),
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=record_id,
        wait=wait,
    )


# ---------------------------------------------------------------- parcels


@parcel_app.command("register")
def parcel_register(
    parcel: Annotated[str, typer.Argument(help="the new parcel's id, e.g. BW-JW-2026-001")],
    custodian: Annotated[str, typer.Option(help="the licensed party holding it")],
    weight: Annotated[str, typer.Option(help="carats, e.g. 1250.50")],
    value: Annotated[str, typer.Option(help="US dollars, e.g. 164000.00")],
    mine: Annotated[str, typer.Option(help="mine or claim of production")],
    hs: Annotated[str, typer.Option(help="HS code: 7102.10, 7102.21 or 7102.31")] = "7102.10",
    produced: Annotated[
        str | None, typer.Option(help="date of production (default today; never later)")
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Register production (parcel.register): origin is this country."""
    with _arguments(as_json):
        w, v = parse_carats(weight, "weight"), parse_usd(value, "value")
    run_acts(
        _one(
            Kind.PARCEL_REGISTER,
            lambda c: c.parcel_register(
                parcel, custodian, w, v, mine=mine, hs=hs, produced=produced
            ),
        ),
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=record_id,
        wait=wait,
    )


@parcel_app.command("transfer")
def parcel_transfer(
    parcel: Annotated[str, typer.Argument(help="a parcel this authority holds")],
    to: Annotated[str, typer.Option("--to", help="the new custodian (a licensed party)")],
    value: Annotated[
        str | None, typer.Option(help="new value in US dollars (default: unchanged)")
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Change a parcel's custodian inside the jurisdiction (parcel.transfer)."""
    with _arguments(as_json):
        v = None if value is None else parse_usd(value, "value")
    run_acts(
        _one(Kind.PARCEL_TRANSFER, lambda c: c.parcel_transfer(parcel, to, v)),
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=record_id,
        wait=wait,
    )


def _parts(into: list[str]) -> list[tuple[str, int | None]]:
    parts: list[tuple[str, int | None]] = []
    for item in into:
        child, _, weight = item.partition(":")
        parts.append((child, parse_carats(weight, "into") if weight else None))
    return parts


@parcel_app.command("split")
def parcel_split(
    parcel: Annotated[str, typer.Argument(help="a parcel this authority holds")],
    into: Annotated[
        list[str],
        typer.Option(help="ID:CARATS per child; one child may give ID alone to take the rest"),
    ],
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Sort a parcel into lots (parcel.split): values shared by weight, origin carried."""
    with _arguments(as_json):
        parts = _parts(into)
    run_acts(
        _one(Kind.PARCEL_SPLIT, lambda c: c.parcel_split(parcel, parts)),
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=record_id,
        wait=wait,
    )


@parcel_app.command("merge")
def parcel_merge(
    parents: Annotated[list[str], typer.Option("--parcel", help="a parcel to merge (repeat)")],
    into: Annotated[str, typer.Option(help="the new parcel's id")],
    custodian: Annotated[
        str | None, typer.Option(help="custodian of the new parcel (default: the parents')")
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Assort one custodian's parcels into one (parcel.merge): sums from the ledger."""
    run_acts(
        _one(Kind.PARCEL_MERGE, lambda c: c.parcel_merge(parents, into, custodian)),
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=record_id,
        wait=wait,
    )


# ---------------------------------------------------------------- certificates


@certificate_app.command("issue")
def certificate_issue(
    number: Annotated[str, typer.Argument(help="the certificate number, e.g. BW-2026-0007")],
    parcels: Annotated[list[str], typer.Option("--parcel", help="a parcel to ship (repeat)")],
    to: Annotated[str, typer.Option("--to", help="destination participant, e.g. EU")],
    importer: Annotated[str, typer.Option(help="importer's name")],
    importer_address: Annotated[str, typer.Option(help="importer's address")],
    exporter: Annotated[
        str | None, typer.Option(help="exporting party (default: the parcels' custodian)")
    ] = None,
    days: Annotated[int, typer.Option(min=0, help="validity in days from the issue date")] = 30,
    issued: Annotated[
        str | None, typer.Option(help="issue date (default today; a few days back is allowed)")
    ] = None,
    seal: Annotated[str | None, typer.Option(help="container seal id")] = None,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Issue a KP certificate (certificate.issue): lines, totals and origin from the ledger."""
    run_acts(
        _one(
            Kind.CERTIFICATE_ISSUE,
            lambda c: c.certificate_issue(
                number,
                parcels,
                to,
                importer,
                importer_address,
                exporter=exporter,
                issued=issued,
                days=days,
                seal=seal,
            ),
        ),
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=record_id,
        wait=wait,
    )


def _received(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        parcel, sep, weight = item.partition("=")
        if not sep:
            raise InvalidData(f"{item!r}: expected PARCEL=CARATS", field="received")
        out[parcel] = parse_carats(weight, "received")
    return out


@certificate_app.command("confirm")
def certificate_confirm(
    number: Annotated[str, typer.Argument(help="an incoming certificate's number")],
    custodian: Annotated[str, typer.Option(help="the importing party receiving the goods")],
    received: Annotated[
        list[str] | None,
        typer.Option(help="PARCEL=CARATS as weighed (default: the declared weight)"),
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Confirm an import (certificate.confirm); off-tolerance weights hold the goods."""
    with _arguments(as_json):
        got = _received(received or [])
    run_acts(
        _one(Kind.CERTIFICATE_CONFIRM, lambda c: c.certificate_confirm(number, custodian, got)),
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=record_id,
        wait=wait,
    )


@certificate_app.command("refuse")
def certificate_refuse(
    number: Annotated[str, typer.Argument(help="an incoming certificate's number")],
    code: Annotated[str, typer.Option(help=", ".join(sorted(REFUSAL_CODES)))],
    reason: Annotated[str, typer.Option(help="the officer's words, kept on the ledger")],
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Refuse an incoming shipment (certificate.refuse): the parcels go back."""
    run_acts(
        _one(Kind.CERTIFICATE_REFUSE, lambda c: c.certificate_refuse(number, code, reason)),
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=record_id,
        wait=wait,
    )


@certificate_app.command("void")
def certificate_void(
    number: Annotated[str, typer.Argument(help="a certificate this authority issued")],
    reason: Annotated[str, typer.Option(help="why it is cancelled")],
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Void an unconfirmed certificate past its expiry (certificate.void)."""
    run_acts(
        _one(Kind.CERTIFICATE_VOID, lambda c: c.certificate_void(number, reason)),
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=record_id,
        wait=wait,
    )


@certificate_app.command("release")
def certificate_release(
    number: Annotated[str, typer.Argument(help="a certificate confirmed with a discrepancy")],
    reason: Annotated[str, typer.Option(help="why the goods may go (kept on the ledger)")],
    parcels: Annotated[
        list[str] | None, typer.Option("--parcel", help="only these parcels (default: all held)")
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    wait: WaitOpt = 60.0,
) -> None:
    """Release goods held on a discrepancy (one parcel.release per held parcel)."""

    def build(c: Composer) -> list[tuple[Kind, dict[str, Any]]]:
        cert = c.certificate(number)
        chosen = parcels or [p for p in cert["parcels"] if c.parcel(p)["status"] == "held"]
        if not chosen:
            raise InvalidData(f"no parcel of {number} is held", field="number")
        return [(Kind.PARCEL_RELEASE, c.parcel_release(p, reason)) for p in chosen]

    run_acts(build, node=node, token=token, as_json=as_json, dry_run=dry_run, wait=wait)


# ---------------------------------------------------------------- policy


@policy_app.command("restrict-origin")
def policy_restrict(
    origin: Annotated[str, typer.Argument(help="participant code of the origin, e.g. RU")],
    reason: Annotated[str, typer.Option(help="the legal basis")],
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Refuse imports holding any share of an origin (policy.restrict_origin, rule 9)."""
    run_acts(
        _one(
            Kind.POLICY_RESTRICT_ORIGIN,
            lambda c: c.policy_origin(c.origin(origin, "origin"), reason),
        ),
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=record_id,
        wait=wait,
    )


@policy_app.command("lift-origin")
def policy_lift(
    origin: Annotated[str, typer.Argument(help="participant code of the origin")],
    reason: Annotated[str, typer.Option(help="why the restriction ends")],
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Lift an origin restriction (policy.lift_origin)."""
    run_acts(
        _one(
            Kind.POLICY_LIFT_ORIGIN,
            lambda c: c.policy_origin(c.origin(origin, "origin"), reason),
        ),
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=record_id,
        wait=wait,
    )


# ---------------------------------------------------------------- statistics


def stats_report(
    quarter: Annotated[str, typer.Option(help="the quarter to report, e.g. 2026-Q1")],
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    wait: WaitOpt = 60.0,
) -> None:
    """Seal this authority's quarterly KP statistics (stats.report): production, exports
    and imports by partner, carats and USD, composed by the node from its records and
    disclosures. A cell of fewer than the network's min_cell records (3) carries no USD;
    a quarter is reported once, after it ends (rules S1-S2)."""
    run_acts(
        lambda c: [(Kind.STATS_REPORT, c.stats_report(quarter))],
        node=node,
        token=token,
        as_json=as_json,
        dry_run=dry_run,
        record_id=f"stats-{quarter}",
        wait=wait,
    )
