"""``kpl parcel``, ``kpl certificate``, ``kpl audit``, ``kpl stats``: the node's API in a terminal.

Every command talks HTTP to one node (``--node URL``, env ``KPL_NODE``) with
an optional bearer token (``--token``, env ``KPL_TOKEN``); what it shows is
what the token's role may see. Errors print one line on stderr and exit with
a code that says what went wrong (``cli.exits``: 3 not found, 4 unauthorised,
5 unreachable, 2 invalid input, 6 any other failure of the node). ``--json``
prints the node's own document (the API's documented shape) on stdout instead
of tables.

One concept, with a reason for its size: the read-only commands, each
rendering one API document as tables (the audit report's sections from one
table of row functions); they share the session, the error exits and the
formatting of weights, values and origins.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kpledger.cli.certificate import ProofAnchor, check_certificate_proof
from kpledger.cli.exits import Exit, error_json, print_json, status_exit
from kpledger.cli.render import artisanal_tables, carats, history_tree, ref, status_text
from kpledger.ledger.canonical import canonical_bytes, load_json
from kpledger.ledger.errors import InvalidData, LedgerError
from kpledger.ledger.registry import Registry
from kpledger.node.client import ClientError, NodeClient

__all__ = [
    "JsonOpt",
    "audit",
    "certificate_app",
    "connect",
    "parcel_app",
    "session",
    "stats",
    "stats_app",
]

DEFAULT_NODE = "http://127.0.0.1:8101"

parcel_app = typer.Typer(help="parcels: current state and lineage", no_args_is_help=True)
certificate_app = typer.Typer(help="KP certificates", no_args_is_help=True)

console = Console()
err = Console(stderr=True, soft_wrap=True)

NodeOpt = Annotated[
    str, typer.Option("--node", envvar="KPL_NODE", help="the node's API URL", show_default=True)
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="KPL_TOKEN", help="API token (env KPL_TOKEN); none: public view"
    ),
]

JsonOpt = Annotated[
    bool, typer.Option("--json", help="print the node's JSON document instead (README: CLI JSON)")
]

_HINTS = {
    401: "the node wants a valid token: pass --token or set KPL_TOKEN",
    403: "this token's role may not do that",
    404: "no such thing on this node",
    422: "the node refused the input",
}


def connect(node: str, token: str | None) -> NodeClient:
    """The client the commands use (tests replace it to talk to an in-process app)."""
    return NodeClient(node, token)


@contextmanager
def session(node: str, token: str | None, as_json: bool = False) -> Iterator[NodeClient]:
    """A client; any failure becomes one clear line on stderr (JSON with ``as_json``) and
    the exit code for its kind (``cli.exits``)."""
    try:
        with connect(node, token) as client:
            yield client
    except ClientError as exc:
        problem = exc.problem if isinstance(exc.problem, dict) else {}
        detail = str(problem.get("detail", exc))
        kind = str(problem.get("type", ""))
        hint = _HINTS.get(exc.status, "the node answered with an error")
        code = status_exit(exc.status)
        if as_json:
            error_json(code, detail, status=exc.status, node=node, problem=problem)
        else:
            err.print(
                f"[bold red]error:[/] HTTP {exc.status} from {escape(node)}: {escape(detail)}"
                + (f" ({escape(kind)})" if kind else "")
                + f"\n  {hint}"
            )
        raise typer.Exit(code) from exc
    except httpx.TransportError as exc:
        reason = str(exc) or exc.__class__.__name__
        if as_json:
            error_json(Exit.UNREACHABLE, f"cannot reach the node: {reason}", node=node)
        else:
            err.print(
                f"[bold red]error:[/] cannot reach the node at {escape(node)}: "
                f"{escape(reason)}\n  is it running? pass --node URL or set KPL_NODE"
            )
        raise typer.Exit(Exit.UNREACHABLE) from exc
    except InvalidData as exc:  # the input was refused before it reached the node
        if as_json:
            error_json(Exit.INVALID_INPUT, str(exc), node=node)
        else:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(Exit.INVALID_INPUT) from exc
    except LedgerError as exc:
        if as_json:
            error_json(Exit.NODE_ERROR, str(exc), node=node)
        else:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(Exit.NODE_ERROR) from exc


def _fail(code: Exit, message: str, as_json: bool) -> NoReturn:
    """One line on stderr (JSON with ``as_json``), then exit with ``code``."""
    if as_json:
        error_json(code, message)
    else:
        err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _path(value: str) -> str:
    return quote(value, safe="")


def _usd(cents: int | None) -> str:
    if cents is None:
        return "withheld"
    return f"{cents // 100:,}.{cents % 100:02d} USD"


def _origin(origin: dict[str, int], shares: dict[str, float]) -> str:
    return ", ".join(
        f"{c} {shares.get(c, 0.0):.1f}% ({carats(q)})"
        for c, q in sorted(origin.items(), key=lambda x: -x[1])
    )


def _fields(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, escape(value))
    return table


# ---------------------------------------------------------------- parcels


@parcel_app.command("show")
def parcel_show(
    parcel_id: str, node: NodeOpt = DEFAULT_NODE, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """A parcel's current state: jurisdiction, status, weight, HS code, origin."""
    with session(node, token, as_json) as client:
        p: dict[str, Any] = client.get(f"/v1/parcels/{_path(parcel_id)}")
    if as_json:
        print_json(p)
        return
    created = p["created"]
    rows = [
        ("jurisdiction", p["jurisdiction"]),
        ("status", p["status"]),
        ("weight", carats(p["weight"])),
        ("HS code", p["hs"]),
        ("origin", _origin(p["origin"], p["origin_shares"])),
    ]
    if p.get("certificate"):
        rows.append(("certificate", p["certificate"]))
    if "custodian" in p:
        rows.append(("custodian", p["custodian"]))
    if "value" in p:
        rows.append(("value", _usd(p["value"])))
    rows.append(("created by", f"record {ref(created)}"))
    console.print(_fields(f"parcel {p['id']}", rows))


@parcel_app.command("history")
def parcel_history(
    parcel_id: str,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="most lineage edges each way")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """The lineage as a tree back to the mines, with origin shares and certificates."""
    with session(node, token, as_json) as client:
        history: dict[str, Any] = client.get(f"/v1/parcels/{_path(parcel_id)}/history", limit=limit)
    if as_json:
        print_json(history)
        return
    console.print(history_tree(history))
    console.print(f"origin: {escape(_origin(history['origin'], history['origin_shares']))}")
    certs = sorted({e["certificate"] for e in history["events"] if e.get("certificate")})
    if certs:
        console.print(f"certificates: {escape(', '.join(certs))}")
    kids = sorted({e["child"] for e in history["descendants"]})
    if kids:
        console.print(f"made into: {escape(', '.join(kids))}")
    if history.get("truncated"):
        console.print(f"[yellow]the lineage is longer than {limit} edges; raise --limit[/]")


# ---------------------------------------------------------------- certificates


def _registry_file(path: Path, as_json: bool) -> Registry:
    """The genesis registry in ``path``; exit 2 naming the file if it is not one."""
    try:
        return Registry.parse(canonical_bytes(load_json(path.read_bytes(), what="registry file")))
    except (OSError, InvalidData) as exc:
        _fail(Exit.INVALID_INPUT, f"{path}: {exc}", as_json)


def _check_proof(
    cert: dict[str, Any], registry: Registry | Any
) -> tuple[ProofAnchor | None, str | None]:
    """The anchor a certificate's proof checks against, or why it does not."""
    try:
        if not isinstance(registry, Registry):
            registry = Registry.parse(canonical_bytes(registry))
        if not cert.get("proof"):
            raise InvalidData("the node answered no inclusion proof")
        return check_certificate_proof(cert, registry), None
    except InvalidData as exc:
        return None, str(exc)


@certificate_app.command("show")
def certificate_show(
    number: str,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    registry: Annotated[
        Path | None,
        typer.Option(
            "--registry",
            help="check the proof under this genesis registry file, not the node's registry",
        ),
    ] = None,
) -> None:
    """A KP certificate: route, status, weights, and its inclusion proof, checked.

    The proof is checked against the issuer's signed header under the registry:
    the node's own (``GET /v1/registry``) unless ``--registry`` pins a genesis
    registry file. Exit 1 if it does not check."""
    pinned = None if registry is None else _registry_file(registry, as_json)
    with session(node, token, as_json) as client:
        c: dict[str, Any] = client.get(f"/v1/certificates/{_path(number)}")
        if pinned is None:
            trusted = "the node's registry"
            served = client.get("/v1/registry")
        else:
            trusted = f"the pinned registry {registry}"
    anchor, failure = _check_proof(c, pinned if pinned is not None else served)
    if anchor is not None:
        said = (
            f"inclusion proof checked against {anchor.chain} header {anchor.height} "
            f"signed by {anchor.key_id[:16]}, trusting {trusted}"
        )
    else:
        said = f"inclusion proof NOT checked against {trusted}: {failure}"
    if as_json:
        check: dict[str, Any] = {
            "checked": anchor is not None,
            "anchor": None if anchor is None else {**anchor.as_json(), "trusting": trusted},
        }
        if failure is not None:
            check["error"] = failure
        print_json({**c, "proof": {**(c.get("proof") or {}), **check}})
        if anchor is None:
            raise typer.Exit(int(Exit.VERIFICATION_FAILED))
        return
    rows = [
        ("issuer", c["issuer"]),
        ("destination", c["destination"]),
        ("status", status_text(c)),
        ("issued", c["issued"]),
        ("expires", c["expires"]),
        ("carats", carats(c["carats"])),
        ("parcels", ", ".join(c["parcels"])),
        ("origin", c["origin"]),
    ]
    if c.get("received") is not None:
        rows.append(("received", carats(c["received"])))
    for key in ("exporter", "importer"):
        if key in c:
            rows.append((key, c[key]))
    if "value" in c:
        rows.append(("value", _usd(c["value"])))
    issue = c["issue"]
    rows.append(("issue record", f"{ref(issue)} ({issue['hash']})"))
    if c.get("closed"):
        rows.append(("closed by", f"record {ref(c['closed'])}"))
    proof = c.get("proof")
    if proof:
        header = proof["header"]
        rows.append(
            (
                "proof",
                f"{len(proof['proof'])} hash{'es' if len(proof['proof']) != 1 else ''}: "
                f"record {proof['index']} of {proof['size']} "
                f"under {header.get('chain')}'s signed header {header.get('height')}",
            )
        )
    console.print(_fields(f"KP certificate {c['number']}", rows))
    if anchor is None:
        err.print(f"[bold red]NOT verified[/]: {escape(said)}")
        raise typer.Exit(int(Exit.VERIFICATION_FAILED))
    console.print(escape(said))


# ---------------------------------------------------------------- audit


def _refs(records: list[dict[str, Any]], more: bool = False) -> str:
    text = ", ".join(ref(r) for r in records)
    return text + (" ..." if more else "")


def _section(title: str, block: dict[str, Any], columns: list[str], rows: list[list[str]]) -> None:
    items = block["items"]
    count = f"{len(items)}{'+' if block['truncated'] else ''}"
    if not items:
        console.print(f"[green]{title}: none[/]")
        return
    table = Table(*columns, title=f"{title}: {count}", title_justify="left")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    if block["truncated"]:
        console.print("[yellow]  more than the limit: raise --limit or narrow the period[/]")


def _unconfirmed_row(x: dict[str, Any]) -> list[str]:
    return [
        x["number"],
        f"{x['issuer']} -> {x['destination']}",
        x["issued"] + (" (expired)" if x["expired"] else ""),
        str(x["days_open"]),
        carats(x["carats"]),
        _refs(x["records"]),
    ]


def _discrepancies_row(x: dict[str, Any]) -> list[str]:
    return [
        x["number"],
        f"{x['issuer']} -> {x['destination']}",
        carats(x["declared"]),
        carats(x["received"]),
        f"{x['difference_bp'] / 100:.2f}%",
        _refs(x["records"]),
    ]


def _refusals_row(x: dict[str, Any]) -> list[str]:
    return [
        x["number"],
        f"{x['issuer']} -> {x['destination']}",
        carats(x["carats"]),
        x["origin"],
        x["code"],
        x["reason"],
        _refs(x["records"]),
    ]


def _mirror_mismatches_row(x: dict[str, Any]) -> list[str]:
    return [
        f"{x['exporter']} -> {x['importer']}",
        f"{carats(x['exported_carats'])} in {x['exported_certificates']}",
        f"{carats(x['imported_carats'])} in {x['imported_certificates']}",
        str(x["in_transit"]),
        _refs(x["records"], x["records_truncated"]),
    ]


def _price_outliers_row(x: dict[str, Any]) -> list[str]:
    return [
        x["number"],
        x["hs"],
        x["origin"],
        "not shown" if x.get("usd_per_carat") is None else f"{x['usd_per_carat']:,.2f}",
        "" if x.get("group_median") is None else f"{x['group_median']:,.2f}",
        "" if x.get("reference") is None else f"{x['reference']:,.2f}",
        ", ".join(x["reasons"]),
    ]


def _unrecorded_production_row(x: dict[str, Any]) -> list[str]:
    return [
        x["chain"],
        x["parcel"],
        carats(x["weight"]),
        x["mine"],
        x["produced"],
        _refs(x["records"]),
    ]


def _suspended_activity_row(x: dict[str, Any]) -> list[str]:
    return [
        x["participant"],
        x["suspended"],
        x.get("reinstated") or "",
        str(x["count"]),
        _refs(x["records"], x["records_truncated"]),
    ]


def _export_surplus_row(x: dict[str, Any]) -> list[str]:
    return [
        x["participant"],
        carats(x["exported"]),
        carats(x["produced"]),
        carats(x["imported"]),
        carats(x["surplus"]),
        _refs(x["records"]),
    ]


def _equivocation_row(x: dict[str, Any]) -> list[str]:
    return [
        x["chain"],
        "; ".join(f"height {h['height']} {h['hash'][:16]}" for h in x["headers"]),
        x["id"][:16],
    ]


def _disclosure_inconsistent_row(x: dict[str, Any]) -> list[str]:
    return [
        x["chain"],
        x["kind"],
        f"{x['code']} (rule {x['rule']})",
        x["reason"],
        _refs(x["records"]),
    ]


def _statistics_mismatch_row(x: dict[str, Any]) -> list[str]:
    def amount(v: int | None) -> str:
        if v is None:
            return "-"
        return carats(v) if x["field"] == "carats" else _usd(v) if x["field"] == "value" else str(v)

    return [
        f"{x['chain']} {x['quarter']}",
        f"{x['section']} {x['partner']}".strip(),
        x["field"],
        amount(x.get("reported")),
        amount(x.get("ledger")),
        _refs(x["records"]),
    ]


#: the audit report's sections, in order: key in the report, title, columns, one row
_Row = Callable[[dict[str, Any]], list[str]]
_AUDIT_SECTIONS: tuple[tuple[str, str, list[str], _Row], ...] = (
    (
        "unconfirmed",
        "certificates unconfirmed",
        ["certificate", "route", "issued", "days open", "carats", "records"],
        _unconfirmed_row,
    ),
    (
        "discrepancies",
        "discrepancies",
        ["certificate", "route", "declared", "received", "difference", "records"],
        _discrepancies_row,
    ),
    (
        "refusals",
        "certificates refused by the importer",
        ["certificate", "route", "carats", "origin", "code", "reason", "records"],
        _refusals_row,
    ),
    (
        "mirror_mismatches",
        "mirror mismatches",
        ["exporter -> importer", "exported", "imported", "in transit", "records"],
        _mirror_mismatches_row,
    ),
    (
        "price_outliers",
        "price-per-carat outliers",
        ["certificate", "HS", "origin", "USD/ct", "group median", "2023 reference", "why"],
        _price_outliers_row,
    ),
    (
        "unrecorded_production",
        "registration where no production is recorded",
        ["chain", "parcel", "weight", "mine", "produced", "records"],
        _unrecorded_production_row,
    ),
    (
        "suspended_activity",
        "activity of suspended participants",
        ["participant", "suspended", "reinstated", "records", "first records"],
        _suspended_activity_row,
    ),
    (
        "export_surplus",
        "exports above recorded production plus imports",
        ["producer", "exported", "produced", "imported", "surplus", "certificates"],
        _export_surplus_row,
    ),
    ("equivocation", "equivocation", ["chain", "headers", "evidence"], _equivocation_row),
    (
        "disclosure_inconsistent",
        "disclosed values that do not add up",
        ["chain", "record", "rule", "what", "records"],
        _disclosure_inconsistent_row,
    ),
    (
        "statistics_mismatch",
        "quarterly reports that disagree with the ledger",
        ["report", "cell", "what", "reported", "ledger", "records"],
        _statistics_mismatch_row,
    ),
)


def audit(
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    since: Annotated[str | None, typer.Option(help="first day, YYYY-MM-DD")] = None,
    until: Annotated[str | None, typer.Option(help="last day and as-of date, YYYY-MM-DD")] = None,
    days: Annotated[int, typer.Option(min=1, help="unconfirmed after this many days")] = 30,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="most findings per list")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """The audit report (auditor token): every finding with the records behind it."""
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                message = f"--{name} must be a date YYYY-MM-DD"
                if as_json:
                    error_json(Exit.INVALID_INPUT, message)
                else:
                    err.print(f"[bold red]error:[/] {message}")
                raise typer.Exit(Exit.INVALID_INPUT) from None
    params: dict[str, Any] = {"days": days, "limit": limit}
    if since:
        params["since"] = since
    if until:
        params["until"] = until
    with session(node, token, as_json) as client:
        r: dict[str, Any] = client.get("/v1/audit/report", **params)
    if as_json:
        print_json(r)
        return
    _audit_heading(r)
    for key, title, columns, row in _AUDIT_SECTIONS:
        _section(title, r[key], columns, [row(x) for x in r[key]["items"]])


def _audit_heading(r: dict[str, Any]) -> None:
    th = r["thresholds"]
    console.print(
        f"[bold]audit report[/] from {escape(r['node'])}, {r.get('since', 'the beginning')} "
        f"to {r['until']}; unconfirmed after {th['unconfirmed_days']} days, tolerance "
        f"{th['tolerance_bp']} bp, price outliers beyond {th['price_group_factor']:g}x the "
        f"group median or {th['price_reference_factor']:g}x the 2023 KP reference"
    )


# ---------------------------------------------------------------- statistics


def stats(
    period: Annotated[str, typer.Option(help="a year (2025) or a quarter (2025-Q1)")],
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="print the node's CSV")] = False,
    as_json: JsonOpt = False,
) -> None:
    """KP statistics for a period: production (and by method), the artisanal producers'
    internal controls, exports, imports, certificate counts."""
    with session(node, token, as_json) as client:
        if as_csv:
            response = client.http.get("/v1/stats", params={"period": period, "format": "csv"})
            if response.status_code >= 400:
                client.get("/v1/stats", period=period)  # raises with the problem document
            sys.stdout.write(response.text)
            return
        s: dict[str, Any] = client.get("/v1/stats", period=period)
    if as_json:
        print_json(s)
        return
    console.print(
        f"[bold]KP statistics {escape(s['period'])}[/] ({s['start']} to {s['end']}; "
        f"USD from the {escape(str(s.get('values', 'reports')))})"
    )
    production = Table("participant", "carats", "USD", "parcels", title="production")
    for row in s["production"]:
        production.add_row(
            row["participant"], carats(row["carats"]), _usd(row["value"]), str(row["parcels"])
        )
    console.print(production)
    for table in artisanal_tables(s):
        console.print(table)
    exports = Table("participant", "partner", "carats", "USD", "certificates", title="exports")
    for row in s["exports"]:
        exports.add_row(
            row["participant"],
            row["partner"],
            carats(row["carats"]),
            _usd(row["value"]),
            str(row["certificates"]),
        )
    console.print(exports)
    imports = Table(
        "participant", "partner", "received", "declared", "USD", "certificates", title="imports"
    )
    for row in s["imports"]:
        imports.add_row(
            row["participant"],
            row["partner"],
            carats(row["carats"]),
            carats(row["declared"]),
            _usd(row["value"]),
            str(row["certificates"]),
        )
    console.print(imports)
    counts = Table(
        "issuer",
        "total",
        "issued",
        "confirmed",
        "discrepancy",
        "voided",
        title="certificates (issued: not yet confirmed)",
    )
    for row in s["certificates"]:
        counts.add_row(
            row["participant"],
            *(str(row[k]) for k in ("total", "unconfirmed", "confirmed", "discrepancy", "voided")),
        )
    console.print(counts)
    t = s["totals"]
    console.print(
        f"totals: produced {carats(t['production_carats'])} ({_usd(t['production_value'])}), "
        f"exported {carats(t['export_carats'])} in {t['export_certificates']} certificates, "
        f"imported {carats(t['import_carats'])} in {t['import_certificates']}"
    )


stats_app = typer.Typer(
    help="KP statistics: the tables (kpl stats --period 2026), and this authority's "
    "quarterly report (kpl stats report --quarter 2026-Q1)",
    invoke_without_command=True,
)


@stats_app.callback()
def stats_tables(
    ctx: typer.Context,
    period: Annotated[str | None, typer.Option(help="a year (2025) or a quarter (2025-Q1)")] = None,
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="print the node's CSV")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the node's JSON")] = False,
) -> None:
    """KP statistics for a period: production (and by method), the artisanal producers'
    internal controls, exports, imports, certificate counts."""
    if ctx.invoked_subcommand is not None:
        return
    if period is None:
        raise typer.BadParameter(
            "a period is required: --period 2026 or 2026-Q1", param_hint="--period"
        )
    stats(period, node, token, as_csv, as_json)
