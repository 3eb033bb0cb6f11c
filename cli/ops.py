"""Operator commands: ``kpl export``, ``kpl import``, ``kpl db dropped``, ``kpl ops ...``.

* ``kpl export`` / ``kpl import``: a node's chains as one verifiable file
  (``ledger.store.backup``), for backups and moves between databases;
* ``kpl ops cert``: a node certificate from a network's CA (a new participant,
  a renewal, another name for a node);
* ``kpl db dropped``: what the store dropped of an equivocating chain restarted
  by a ``key.replace`` (``ledger.store.resume``), for the operator to resubmit;
* ``kpl ops story``: the KP story (``cli.story``) through a running network's
  APIs, for the four authorities BW, AE, EU, IN and the WDC auditor of
  ``docker/`` (and Russia's chapter when RU takes part).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kpledger.cli.exits import print_json
from kpledger.cli.render import history_tree
from kpledger.cli.story import Story, StoryResult, final_parcel, play, story_for
from kpledger.ledger.commit import Disclosure
from kpledger.ledger.errors import InvalidData, LedgerError
from kpledger.ledger.registry import Registry
from kpledger.ledger.store import Store
from kpledger.ledger.store.backup import export_store, import_file
from kpledger.node.client import NodeClient
from kpledger.node.config import NodeConfig, read_secrets
from kpledger.node.gctune import tune_gc
from kpledger.node.tls import issue_node_certificate, load_ca

__all__ = ["app", "db_dropped", "export", "import_"]

app = typer.Typer(
    help="operations: node certificates, a story against a running network", no_args_is_help=True
)

console = Console()
err = Console(stderr=True, soft_wrap=True)

STORY_AUDITOR = "WDC"


def _fail(exc: LedgerError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(2)


def _store_url(db: str | None, config: Path | None) -> str:
    if (db is None) == (config is None):
        raise InvalidData("give exactly one of --db URL and --config node.toml", field="db")
    if db is not None:
        return db
    assert config is not None
    return NodeConfig.load(config).store_url()


Db = Annotated[
    str | None, typer.Option("--db", help="store URL, e.g. sqlite:///node.db or postgresql+...")
]
Config = Annotated[
    Path | None,
    typer.Option("--config", help="or: the node's node.toml (its database_url and password)"),
]


def export(
    out: Annotated[Path, typer.Option("--out", help="the file to write (mode 0600)")],
    db: Db = None,
    config: Config = None,
) -> None:
    """Write a node's chains to one file: registry, every block as stored, in causal order."""
    try:
        url = _store_url(db, config)
        with console.status("exporting ...") as status:

            def progress(done: int, total: int) -> None:
                if done % 100 == 0 or done == total:
                    status.update(f"exporting: {done:,} of {total:,} blocks written")

            summary = export_store(url, out, progress=progress)
    except (LedgerError, OSError) as exc:
        raise _fail(exc if isinstance(exc, LedgerError) else LedgerError(str(exc))) from exc
    heads = ", ".join(f"{c} {h['height']}" for c, h in summary.heads.items()) or "none"
    console.print(
        f"exported network {summary.network[:16]}...: {summary.counts['block']:,} blocks, "
        f"{summary.records:,} records, {summary.counts['evidence']} evidence, "
        f"{summary.counts['pending']} pending; heads {heads}"
    )
    console.print(f"{out}: sha256 of the content {summary.sha256}")


def import_(
    file: Annotated[Path, typer.Argument(help="a file written by kpl export")],
    db: Db = None,
    config: Config = None,
    registry: Annotated[
        Path | None, typer.Option(help="refuse a file of another network than this genesis")
    ] = None,
) -> None:
    """Load an export into an empty store, re-verifying every block; refuses a non-empty store.

    A damaged or truncated file is refused before anything is written. If a
    block fails verification, the blocks before it stay in the store (a
    verified but incomplete copy) and the error says so.
    """
    tune_gc()
    try:
        expected = Registry.parse(registry.read_bytes()) if registry is not None else None
        url = _store_url(db, config)
        with console.status("importing ...") as status:

            def progress(done: int, total: int) -> None:
                if done % 100 == 0 or done == total:
                    status.update(f"importing: {done:,} of {total:,} blocks verified")

            report = import_file(file, url, registry=expected, progress=progress)
    except (LedgerError, OSError) as exc:
        raise _fail(exc if isinstance(exc, LedgerError) else LedgerError(str(exc))) from exc
    console.print(
        f"[green]imported[/]: {report.blocks:,} blocks ({report.records:,} records) verified "
        f"and applied, {report.evidence} evidence, {report.pending} pending records, "
        f"{report.rejected} refusals; heads "
        + ", ".join(f"{c} {h['height']}" for c, h in report.heads.items())
    )


@app.command("cert")
def cert(
    network: Annotated[Path, typer.Option(help="the network folder (its tls/ holds the CA)")],
    code: Annotated[str, typer.Option(help="the participant's code, e.g. ZA")],
    out: Annotated[Path, typer.Option(help="folder for ca.pem, node.pem, node-key.pem")],
    name: Annotated[
        list[str] | None,
        typer.Option(help="a DNS name or IP address of the node (repeat); default its code"),
    ] = None,
    days: Annotated[int, typer.Option(help="validity in days")] = 825,
) -> None:
    """Issue a node certificate (server and client) signed by the network's CA."""
    try:
        ca_key, ca_cert = load_ca(network / "tls")
        names = list(name or []) or [code.lower(), "localhost", "127.0.0.1"]
        path = issue_node_certificate(ca_key, ca_cert, code, names, out, days=days)
    except LedgerError as exc:
        raise _fail(exc) from exc
    console.print(f"{path} for {code} ({', '.join(names)}); key in {out / 'node-key.pem'} (0600)")


# ---------------------------------------------------------------- the story


def _client(folder: Path, host: str, token: str) -> NodeClient:
    """A client of the node configured in ``folder``: its API listener if it has one."""
    config = NodeConfig.load(folder / "node.toml")
    tls = config.tls
    if tls is None:
        return NodeClient(f"http://{host}:{config.port}", token)
    ctx = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else None)
    if tls.api_port is not None:
        return NodeClient(f"https://{host}:{tls.api_port}", token, verify=ctx)
    ctx.load_cert_chain(str(tls.cert), str(tls.key))  # the node's own mutual-TLS listener
    return NodeClient(f"https://{host}:{config.port}", token, verify=ctx)


def run_network_story(
    network: Path, host: str, say: Callable[[str], None]
) -> tuple[str, dict[str, Any]]:
    """Drive the KP story (``cli.story``) through the network's authorities; return the
    final parcel and its history as the auditor's node answers it.

    The network needs BW, AE, EU, IN and the WDC auditor; with RU it plays Russia's
    chapter too."""
    registry = Registry.parse((network / "genesis.json").read_bytes())
    authorities = [p.code for p in registry.participants if p.role == "authority"]
    if STORY_AUDITOR not in {p.code for p in registry.participants}:
        raise InvalidData(f"the story needs the auditor {STORY_AUDITOR} in this network")
    steps = story_for(authorities)
    playing = sorted({s.chain for s in steps})
    secrets = read_secrets(network / "secrets.toml")
    clients = {c: _client(network / c, host, str(secrets[c]["operator_token"])) for c in playing}
    auditor = _client(network / STORY_AUDITOR, host, str(secrets[STORY_AUDITOR]["auditor_token"]))
    s = Story(clients, auditor, registry.network_id, say)
    final = final_parcel(steps)
    try:
        play(s, steps, StoryResult(final))
        s.wait("the auditor to hold the final parcel", lambda: _held(auditor, final))
        history: dict[str, Any] = auditor.get(f"/v1/parcels/{final}/history")
        return final, history
    finally:
        s.close()


def _held(client: NodeClient, parcel: str) -> bool:
    try:
        client.get(f"/v1/parcels/{parcel}")
    except LedgerError:
        return False
    return True


@app.command("story")
def story(
    network: Annotated[Path, typer.Option(help="the network folder (kpl network init --out)")],
    host: Annotated[
        str, typer.Option(help="where the nodes' ports are reachable (published ports)")
    ] = "127.0.0.1",
) -> None:
    """Play the KP story through a running network of BW, AE, EU, IN and the WDC auditor
    (with RU, Russia's chapter too).

    Each node is reached at HOST on its API listener (tls.api_listen) when it
    has one, else on its own port (with its certificate under mutual TLS).
    """
    try:
        final, history = run_network_story(
            network, host, lambda line: console.print(f"  [green]sealed[/] {line}")
        )
    except LedgerError as exc:
        raise _fail(exc) from exc
    console.print(f"\nLineage of {final}, from the WDC auditor's node:")
    console.print(history_tree(history))


def db_dropped(
    db: Annotated[str, typer.Option("--db", help="store URL, e.g. sqlite:///node.db")],
    out: Annotated[
        Path | None,
        typer.Option(
            help='write the dropped records here as {"records": [...]}, confidential '
            "fields in clear where the store holds them: check, then POST to /v1/records"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the parts as JSON on stdout")] = False,
) -> None:
    """What this store dropped of equivocating chains restarted by a key.replace.

    The old key's blocks from the fork height on, with every record in them:
    on the equivocating authority's own store, records it had acknowledged.
    Check each (whoever signed the other version may have written some of
    them) and submit those that are yours again. Safe on a running node.
    """
    try:
        store = Store.open(db, create=False)
        try:
            parts = store.resume.dropped()
            # drafts: confidential fields back in clear where this store holds them (the
            # writer's own records), as an officer submits them; the node commits them again
            leaves = [r.leaf for p in parts for _, _, r in p.records]
            held: dict[bytes, list[Disclosure]] = {}
            for h in store.disclosures.of_records(leaves):
                held.setdefault(h.disclosure.record, []).append(h.disclosure)
        finally:
            store.close()
    except LedgerError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    if out is not None:
        drafts = [
            replace(r, disclosures=tuple(held.get(r.leaf, ()))).draft()
            for p in parts
            for _, _, r in p.records
        ]
        out.write_text(json.dumps({"records": drafts}, indent=2, ensure_ascii=False) + "\n")
    if as_json:
        print_json({"dropped": [p.to_json() for p in parts]})
        return
    if not parts:
        console.print("nothing dropped")
        return
    table = Table("chain", "heights", "blocks", "record", "kind", "height", "index")
    for p in parts:
        span = f"{p.from_height}-{p.last_height}"
        if not p.records:
            table.add_row(p.chain, span, str(p.blocks), "-", "-", "-", "-")
        for height, index, record in p.records:
            table.add_row(
                p.chain, span, str(p.blocks), record.id, record.kind.value, str(height), str(index)
            )
    console.print(table)
    if out is not None:
        count = sum(len(p.records) for p in parts)
        console.print(f"{count} record(s) written to {out}")
