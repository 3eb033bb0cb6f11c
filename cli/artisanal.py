"""The artisanal chain's officer commands: ``kpl claim|licence|purchase|lot|diagnostic``.

A producing authority's officer registers claims (a point or a polygon given as
``LAT,LON`` in decimal degrees), diggers' and buyers' licences, ends them,
records first sales (carats and US dollars as text, exactly), merges first
sales into an export lot, and records the diagnostic self-assessment. Each
command composes its record (``ledger.artisanal``'s bodies, ids derived from
the act so a re-run is safe), submits it with the operator token and waits until
it is sealed, as ``kpl party|parcel|certificate`` do (``cli.officer.run_acts``):
exit 0 committed, 1 refused by a rule (named) or invalid, 2 the command could
not run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from kpledger.cli.officer import DryOpt, IdOpt, JsonOpt, WaitOpt, run_acts
from kpledger.cli.query import DEFAULT_NODE, NodeOpt, TokenOpt
from kpledger.ledger.artisanal import (
    assessment_body,
    buyer_licence_body,
    claim_body,
    digger_licence_body,
    end_body,
    purchase_body,
)
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.records import BUYER_TYPES, DIGGER_TYPES, END_REASONS, METHODS, Kind
from kpledger.node.compose import Composer, parse_carats, parse_usd
from kpledger.node.compose_artisanal import parse_point

__all__ = [
    "claim_app",
    "diagnostic_app",
    "licence_app",
    "lot_app",
    "purchase_app",
]

claim_app = typer.Typer(help="artisanal claims and mining areas", no_args_is_help=True)
licence_app = typer.Typer(help="diggers' and buyers' licences", no_args_is_help=True)
purchase_app = typer.Typer(help="first sales: a licensed buyer buys from a digger")
lot_app = typer.Typer(help="export lots merged from first sales", no_args_is_help=True)
diagnostic_app = typer.Typer(help="the diagnostic self-assessment", no_args_is_help=True)

FromOpt = Annotated[str, typer.Option("--from", help="first day of validity (YYYY-MM-DD)")]
UntilOpt = Annotated[str, typer.Option("--until", help="last day of validity (YYYY-MM-DD)")]


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _run(
    kind: Kind,
    make: Callable[[Composer], dict[str, Any]],
    opts: dict[str, Any],
) -> None:
    run_acts(lambda c: [(kind, make(c))], **opts)


def _opts(
    node: str, token: str | None, as_json: bool, dry_run: bool, record_id: str | None, wait: float
) -> dict[str, Any]:
    return {
        "node": node,
        "token": token,
        "as_json": as_json,
        "dry_run": dry_run,
        "record_id": record_id,
        "wait": wait,
    }


def _choice(value: str, options: frozenset[str], field: str) -> str:
    if value not in options:
        raise InvalidData(f"{value!r}: one of {', '.join(sorted(options))}", field=field)
    return value


@claim_app.command("register")
def claim_register(
    claim: Annotated[str, typer.Argument(help="the claim's id, e.g. SL-KONO-0042")],
    holder: Annotated[str, typer.Option(help="the holder's name, as on the claim")],
    zone: Annotated[str, typer.Option(help="the zone it lies in, e.g. SL-KONO")],
    point: Annotated[
        list[str], typer.Option(help="LAT,LON in decimal degrees: once, or 3+ times (a polygon)")
    ],
    valid_from: FromOpt,
    valid_until: UntilOpt,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Register an artisanal claim or mining area (claim.register)."""
    _run(
        Kind.CLAIM_REGISTER,
        lambda _: claim_body(
            claim, holder, zone, [parse_point(p) for p in point], valid_from, valid_until
        ),
        _opts(node, token, as_json, dry_run, record_id, wait),
    )


def _end(licence: str, reason: str, date: str | None, note: str, opts: dict[str, Any]) -> None:
    _run(
        Kind.LICENCE_END,
        lambda _: end_body(licence, _choice(reason, END_REASONS, "reason"), date or _today(), note),
        opts,
    )


@claim_app.command("end")
def claim_end(
    claim: Annotated[str, typer.Argument(help="the claim's id")],
    reason: Annotated[str, typer.Option(help="revoked, expired or surrendered")],
    note: Annotated[str, typer.Option(help="the officer's words")],
    date: Annotated[str | None, typer.Option(help="from this day on (default today)")] = None,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """End a claim: revoked, expired or surrendered (licence.end)."""
    _end(claim, reason, date, note, _opts(node, token, as_json, dry_run, record_id, wait))


@licence_app.command("digger")
def licence_digger(
    licence: Annotated[str, typer.Argument(help="the licence's id, e.g. SL-DL-2026-117")],
    holder: Annotated[str, typer.Option(help="the digger's or cooperative's name")],
    claim: Annotated[str, typer.Option(help="the claim it may dig")],
    valid_from: FromOpt,
    valid_until: UntilOpt,
    kind: Annotated[str, typer.Option("--type", help="digger or cooperative")] = "digger",
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """License a digger or a cooperative on a registered claim (licence.digger)."""
    _run(
        Kind.LICENCE_DIGGER,
        lambda _: digger_licence_body(
            licence,
            holder,
            claim,
            valid_from,
            valid_until,
            type=_choice(kind, DIGGER_TYPES, "type"),
        ),
        _opts(node, token, as_json, dry_run, record_id, wait),
    )


@licence_app.command("buyer")
def licence_buyer(
    licence: Annotated[str, typer.Argument(help="the licence's id, e.g. SL-BL-2026-9")],
    party: Annotated[str, typer.Option(help="the buyer: a party registered by this authority")],
    zone: Annotated[list[str], typer.Option(help="a zone it may buy in (repeat)")],
    valid_from: FromOpt,
    valid_until: UntilOpt,
    kind: Annotated[str, typer.Option("--type", help="collector or comptoir")] = "collector",
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """License a buyer (collector or comptoir) for zones (licence.buyer)."""
    _run(
        Kind.LICENCE_BUYER,
        lambda _: buyer_licence_body(
            licence, party, zone, valid_from, valid_until, type=_choice(kind, BUYER_TYPES, "type")
        ),
        _opts(node, token, as_json, dry_run, record_id, wait),
    )


@licence_app.command("end")
def licence_end(
    licence: Annotated[str, typer.Argument(help="the licence's id")],
    reason: Annotated[str, typer.Option(help="revoked, expired or surrendered")],
    note: Annotated[str, typer.Option(help="the officer's words")],
    date: Annotated[str | None, typer.Option(help="from this day on (default today)")] = None,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """End a licence: revoked, expired or surrendered (licence.end)."""
    _end(licence, reason, date, note, _opts(node, token, as_json, dry_run, record_id, wait))


@purchase_app.command("record")
def purchase_record(
    parcel: Annotated[str, typer.Argument(help="the new parcel's id, e.g. SL-A-2026-00001")],
    buyer: Annotated[str, typer.Option(help="the buyer's licence")],
    digger: Annotated[str, typer.Option(help="the digger's or cooperative's licence")],
    claim: Annotated[str, typer.Option(help="the claim the stones were dug on")],
    weight: Annotated[str, typer.Option(help="carats, e.g. 1.25")],
    price: Annotated[str, typer.Option(help="US dollars paid, e.g. 310.00")],
    method: Annotated[str, typer.Option(help="artisanal, alluvial or industrial")] = "alluvial",
    hs: Annotated[str, typer.Option(help="HS code: 7102.10, 7102.21 or 7102.31")] = "7102.10",
    date: Annotated[str | None, typer.Option(help="day of the sale (default today)")] = None,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Record a first sale (parcel.purchase): rules A1-A3 check both licences and the claim."""
    _run(
        Kind.PARCEL_PURCHASE,
        lambda _: purchase_body(
            parcel,
            buyer,
            digger,
            claim,
            parse_carats(weight),
            parse_usd(price, "price"),
            date or _today(),
            method=_choice(method, METHODS, "method"),
            hs=hs,
        ),
        _opts(node, token, as_json, dry_run, record_id, wait),
    )


@lot_app.command("make")
def lot_make(
    lot: Annotated[str, typer.Argument(help="the export lot's id, e.g. SL-LOT-2026-04")],
    parcels: Annotated[list[str], typer.Option("--parcel", help="a first sale's parcel (repeat)")],
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Merge one buyer's first sales into an export lot (parcel.merge): weights and prices
    summed from the ledger; the lot keeps the claims it came from."""
    _run(
        Kind.PARCEL_MERGE,
        lambda c: c.parcel_merge(parcels, lot),
        _opts(node, token, as_json, dry_run, record_id, wait),
    )


@diagnostic_app.command("assess")
def diagnostic_assess(
    indicator: Annotated[str, typer.Argument(help="the indicator's id in the network's list")],
    score: Annotated[int, typer.Option(min=0, max=100, help="on the indicator's scale")],
    evidence: Annotated[str, typer.Option(help="what the score rests on")],
    date: Annotated[str | None, typer.Option(help="day of the assessment (default today)")] = None,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    dry_run: DryOpt = False,
    record_id: IdOpt = None,
    wait: WaitOpt = 60.0,
) -> None:
    """Record one indicator of the diagnostic self-assessment (diagnostic.assess)."""
    _run(
        Kind.DIAGNOSTIC_ASSESS,
        lambda _: assessment_body(indicator, score, evidence, date or _today()),
        _opts(node, token, as_json, dry_run, record_id, wait),
    )
