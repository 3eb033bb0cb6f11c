"""``kpl``: the one command for operators, traders and auditors.

The web API's modules (FastAPI, uvicorn) are imported by the commands that use
them (``node run``, ``example``), not when ``kpl`` starts: every other command,
``kpl db verify`` among them, starts without them.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import tempfile
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table

from kpledger.cli import artisanal, governance, importer, join, keyops, officer, ops
from kpledger.cli.certificate import verify_certificate_command
from kpledger.cli.demo import (
    AUTHORITIES,
    admit_participant,
    run_story,
    trade_and_suspend,
    wait_agreement,
)
from kpledger.cli.demo_artisanal import PRODUCER, run_artisanal
from kpledger.cli.exits import EXIT_HELP, Exit, error_json, print_json
from kpledger.cli.query import (
    DEFAULT_NODE,
    JsonOpt,
    NodeOpt,
    TokenOpt,
    audit,
    certificate_app,
    parcel_app,
    session,
    stats_app,
)
from kpledger.cli.render import history_tree
from kpledger.cli.verify import verify_command
from kpledger.ledger.bundle import verify_bundle
from kpledger.ledger.errors import LedgerError
from kpledger.ledger.store import Store, make_engine, schema_revision, upgrade
from kpledger.node.client import NodeClient
from kpledger.node.config import ROLES, hash_token
from kpledger.node.gctune import tune_gc
from kpledger.node.local import LocalNetwork
from kpledger.node.network import init_network

__all__ = ["app"]

app = typer.Typer(
    help="kpledger: custody ledger for rough diamonds under the Kimberley Process",
    epilog=EXIT_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="a node's SQL store", no_args_is_help=True)
network_app = typer.Typer(
    help="create a network of nodes; a node's view of it", no_args_is_help=True
)
node_app = typer.Typer(help="run a participant's node", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (stored hashed in node.toml)", no_args_is_help=True)
app.add_typer(keyops.app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(network_app, name="network")
app.add_typer(node_app, name="node")
app.add_typer(token_app, name="token")
app.add_typer(parcel_app, name="parcel")
app.add_typer(certificate_app, name="certificate")
app.add_typer(officer.party_app, name="party")
app.add_typer(officer.policy_app, name="policy")
app.add_typer(artisanal.claim_app, name="claim")
app.add_typer(artisanal.licence_app, name="licence")
app.add_typer(artisanal.purchase_app, name="purchase")
app.add_typer(artisanal.lot_app, name="lot")
app.add_typer(artisanal.diagnostic_app, name="diagnostic")
app.command("audit")(audit)
stats_app.command("report")(officer.stats_report)
app.add_typer(stats_app, name="stats")
app.add_typer(ops.app, name="ops")
app.add_typer(governance.app, name="governance")
network_app.command("join")(join.network_join)
network_app.command("add-peer")(join.network_add_peer)
app.command("export")(ops.export)
app.command("import")(ops.import_)
app.command("import-records")(importer.import_records)

console = Console()
err = Console(stderr=True, soft_wrap=True)


def _fail(exc: LedgerError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(2)


def print_lineage(store: Store, parcel_id: str) -> None:
    """The parcel's lineage as a tree back to the mines, as an auditor sees it in the API."""
    from kpledger.api.deps import Caller  # noqa: PLC0415 - the web API: see above
    from kpledger.api.provenance import history_view  # noqa: PLC0415 - the web API: see above

    parcel = store.parcel(parcel_id)
    if parcel is None:
        raise LedgerError(f"no parcel {parcel_id}")
    history = history_view(store, parcel, Caller("auditor"), None, limit=1000)
    console.print(history_tree(history.model_dump(exclude_none=True)))


@app.command()
def example(
    db: Annotated[
        str | None, typer.Option(help="store URL; a temporary SQLite file if unset")
    ] = None,
) -> None:
    """Play the KP story in memory into a SQL store and show what it proves."""
    from kpledger.cli.example import run_example  # noqa: PLC0415 - the web API: see above

    with tempfile.TemporaryDirectory(prefix="kpl-example-") as tmp:
        url = db or f"sqlite:///{Path(tmp) / 'example.db'}"
        try:
            result = run_example(url)
        except LedgerError as exc:
            raise _fail(exc) from exc
        try:
            for step in result.steps:
                console.print(f"  [green]sealed[/] {step}")
            for why in result.refused:
                console.print(
                    f"  [yellow]refused[/] by {why['chain']}'s rules: "
                    f"rule {why['rule']} ({why['code']}): {why['reason']}"
                )
            console.print()
            console.print("Lineage of the final parcel, back to the mines:")
            print_lineage(result.store, result.final_parcel)
            console.print()
            console.print(
                f"[green]verified[/]: the registration at Jwaneng is record "
                f"{result.store.lineage.events('BW-JW-1')[0].ref.index} of BW's log; its RFC 9162 "
                f"inclusion proof ({result.proof_steps} hashes) checks against BW's signed "
                f"checkpoint at size {result.proof_size}."
            )
            report = result.store.verifier.verify()
            console.print(
                f"[green]verified[/]: replaying {report.blocks} blocks "
                f"({report.records} records) rebuilds the same derived state."
            )
        finally:
            result.store.close()


@app.command()
def demo(
    exit_: Annotated[bool, typer.Option("--exit", help="stop the network at the end")] = False,
) -> None:
    """Start a local network of six authorities and a WDC auditor, and run the KP story
    and Sierra Leone's artisanal chain."""
    with tempfile.TemporaryDirectory(prefix="kpl-demo-") as tmp:
        net = LocalNetwork.create(Path(tmp) / "network", (*AUTHORITIES, PRODUCER), ("WDC",))
        console.print(f"network {net.layout.registry.network_id[:16]}... in {tmp}")
        net.start()
        try:
            with console.status(f"starting {len(net.layout.urls)} node processes ..."):
                net.wait_ready(timeout=120.0)
            console.print("nodes up; the KP admits a new participant into the running network:")
            admit_participant(net, say=lambda line: console.print(f"  [green]done[/] {line}"))
            console.print("the story, each step submitted to its authority's API:")
            result = run_story(net, say=lambda line: console.print(f"  {line}"))
            console.print("Sierra Leone's artisanal chain, from the claims to Antwerp:")
            run_artisanal(net, say=lambda line: console.print(f"  {line}"))
            console.print("the new participant trades, then the KP suspends it:")
            trade_and_suspend(net, say=lambda line: console.print(f"  [green]done[/] {line}"))
            with console.status("waiting until every node holds the same chains ..."):
                heads = wait_agreement(net)
            console.print(
                f"all {len(net.procs)} nodes agree on {len(heads)} chains: "
                + ", ".join(f"{c} at height {h['height']}" for c, h in heads.items())
            )
            auditor = NodeClient(net.layout.urls["WDC"], net.token("WDC", "auditor_token"))
            with auditor:
                history = auditor.get(f"/v1/parcels/{result.final_parcel}/history")
                data = auditor.get_bytes(f"/v1/parcels/{result.final_parcel}/bundle")
                refusals = auditor.get("/v1/audit/report")["refusals"]["items"]
            for r in refusals:
                console.print(
                    f"audit report (WDC): {r['number']} from {r['issuer']} refused by "
                    f"{r['destination']} ({r['code']}): {r['reason']}"
                )
            console.print(f"\nLineage of {result.final_parcel}, from the WDC auditor's node:")
            console.print(history_tree(history))
            bundle_file = Path(tmp) / f"{result.final_parcel}.bundle.json"
            bundle_file.write_bytes(data)
            verdict = verify_bundle(data, registry=net.layout.registry, parcel=result.final_parcel)
            console.print(
                f"\n[green]verified offline[/]: the bundle of {result.final_parcel} "
                f"({len(data):,} bytes, {verdict.records} records, {verdict.headers} "
                f"signed headers) checks against the genesis registry alone: "
                f"signatures, RFC 9162 inclusion proofs, and every custody rule "
                f"replayed from the mines. Check it yourself: kpl verify "
                f"{bundle_file} --registry {net.layout.root / 'genesis.json'}"
            )
            console.print("\nnodes:")
            for code, url in net.layout.urls.items():
                console.print(f"  {code:4} {url}")
            console.print(
                f"\nexplorer: {net.layout.urls['WDC']}/#/parcel/{result.final_parcel} "
                f"(to verify there, use WDC's auditor_token from {net.layout.secrets})"
            )
            if exit_:
                return
            console.print("\nthe network keeps running; Ctrl-C stops it")
            with contextlib.suppress(KeyboardInterrupt):
                while all(p.poll() is None for p in net.procs.values()):
                    time.sleep(0.5)
        except LedgerError as exc:
            raise _fail(exc) from exc
        finally:
            net.stop()


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="a provenance bundle (JSON)")],
    registry: Annotated[
        Path | None, typer.Option(help="the genesis registry you trust; the bundle's must equal it")
    ] = None,
    parcel: Annotated[str | None, typer.Option(help="the parcel the bundle must prove")] = None,
    online: Annotated[
        list[str] | None,
        typer.Option(
            help="a node URL (repeatable): last, compare the parcel's proven state with each "
            "node's current one, and the nodes with each other"
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a provenance bundle offline: registry, signatures, proofs, every custody rule;
    with --online, then compare with each node's current state (step 8).

    Exit 0 verified, 1 not verified (the failing step is named), 2 an input cannot be used.
    """
    raise typer.Exit(verify_command(file, registry, parcel, as_json, list(online or []) or None))


@app.command("verify-certificate")
def verify_certificate(
    code: Annotated[str, typer.Argument(help="the certificate's QR code (a URL)")],
    registry: Annotated[Path, typer.Option(help="the genesis registry you trust")],
    node: Annotated[
        list[str] | None,
        typer.Option(help="a node to ask (repeatable); default: the issuer's, per the registry"),
    ] = None,
) -> None:
    """Check a printed KP certificate's QR code against the registry and nodes.

    Exit 0 verified, 1 not verified (each anchor's answer is named), 2 an input cannot be used.
    """
    raise typer.Exit(verify_certificate_command(code, registry, list(node or [])))


@app.command("bundle")
def bundle(
    parcel: Annotated[str, typer.Argument(help="parcel id")],
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write")],
    node: NodeOpt = DEFAULT_NODE,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a parcel's provenance bundle from a node."""
    with session(node, token, as_json) as client:
        data = client.get_bytes(f"/v1/parcels/{quote(parcel, safe='')}/bundle")
    try:
        output.write_bytes(data)
    except OSError as exc:
        if as_json:
            error_json(Exit.INVALID_INPUT, f"cannot write {output}: {exc}")
        else:
            err.print(f"[bold red]error:[/] cannot write {output}: {exc}")
        raise typer.Exit(Exit.INVALID_INPUT) from exc
    if as_json:
        print_json(
            {
                "parcel": parcel,
                "file": str(output),
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
        return
    console.print(
        f"bundle of {parcel} written to {output} ({len(data):,} bytes); "
        f"check it with: kpl verify {output} --parcel {parcel}"
    )


DbUrl = Annotated[str, typer.Option("--db", help="store URL, e.g. sqlite:///node.db")]


@db_app.command("upgrade")
def db_upgrade(db: DbUrl) -> None:
    """Apply the store's schema migrations."""
    try:
        engine = make_engine(db)
        before = schema_revision(engine)
        upgrade(engine)
        after = schema_revision(engine)
        engine.dispose()
    except LedgerError as exc:
        raise _fail(exc) from exc
    console.print(f"schema revision {before or 'none'} -> {after}")


db_app.command("dropped")(ops.db_dropped)


@db_app.command("verify")
def db_verify(db: DbUrl) -> None:
    """Replay the whole log into a scratch store and compare the derived state.

    Safe on a running node: everything is read from one snapshot of the
    database, so blocks committed meanwhile are not part of the check.
    """
    tune_gc()
    try:
        store = Store.open(db, create=False)
        try:
            with console.status("verifying ...") as status:

                def progress(done: int, total: int) -> None:
                    if done % 100 == 0 or done == total:
                        status.update(f"verifying: {done:,} of {total:,} blocks replayed")

                report = store.verifier.verify(progress=progress)
        finally:
            store.close()
    except LedgerError as exc:
        raise _fail(exc) from exc
    table = Table("table", "rows")
    for name, count in report.tables.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    console.print(f"[green]verified[/]: {report.blocks} blocks, {report.records} records")


def _codes(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()] if text else []


@network_app.command("init")
def network_init(
    participants: Annotated[str, typer.Option(help="authority codes, e.g. BW,RU,AE,EU,IN")],
    out: Annotated[Path, typer.Option(help="folder to create the network in")],
    auditor: Annotated[str, typer.Option(help="auditor codes, e.g. WDC")] = "WDC",
    base_port: Annotated[int, typer.Option(help="nodes listen on base+1, base+2, ...")] = 8100,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="one PostgreSQL URL for every node (default: SQLite in each node's folder)"
        ),
    ] = None,
    tls: Annotated[
        bool, typer.Option(help="a network CA and node certificates: HTTPS with mutual TLS")
    ] = False,
    docker: Annotated[
        bool, typer.Option(help="the layout docker/compose.yaml mounts (implies --tls)")
    ] = False,
    api_base_port: Annotated[
        int | None,
        typer.Option(help="with --tls: API listeners on base+1, ... (--docker: base-port+100)"),
    ] = None,
) -> None:
    """Write a genesis registry, keys, secrets and one config per node."""
    try:
        layout = init_network(
            out,
            _codes(participants),
            _codes(auditor),
            base_port=base_port,
            database_url=database_url,
            tls=tls,
            docker=docker,
            api_base_port=api_base_port,
        )
    except LedgerError as exc:
        raise _fail(exc) from exc
    table = Table("node", "url", "config")
    for code, path in layout.configs.items():
        table.add_row(code, layout.urls[code], str(path))
    console.print(table)
    console.print(
        f"network {layout.registry.network_id} written to {layout.root}; secrets in "
        f"{layout.secrets} (mode 0600)"
    )


@network_app.command("status")
def network_status(
    node: NodeOpt = DEFAULT_NODE, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """A node's view of the network: every chain's head, its peers, sync lag, evidence."""
    with session(node, token, as_json) as client:
        view = client.get("/v1/network")
    if as_json:
        print_json(view)
        return
    console.print(f"network {view['network']} seen from node {view['node']}")
    heads = Table("chain", "height", "size", "time (UTC)", "behind by")
    lag = view.get("sync_lag", {})
    for chain, head in sorted(view["heads"].items()):
        behind = lag.get(chain)
        heads.add_row(
            chain,
            str(head.get("height", "")),
            str(head.get("size", "")),
            str(head.get("time", "")),
            "" if behind is None else f"{behind} blocks",
        )
    console.print(heads)
    if view["peers"]:
        peers = Table("peer", "url", "reachable", "failures", "last good exchange")
        for p in view["peers"]:
            last = p.get("last_ok_seconds")
            peers.add_row(
                p["code"],
                p["url"],
                "yes" if p["reachable"] else "no",
                str(p["failures"]),
                "never" if last is None else f"{last:g} s ago",
            )
        console.print(peers)
    else:
        console.print("no gossip peers (this node does not gossip)")
    console.print(f"equivocation evidence held: {view['evidence']}")


@node_app.command("run")
def node_run(
    config: Annotated[Path, typer.Option(help="the node's node.toml")],
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
) -> None:
    """Run a node until SIGTERM or Ctrl-C."""
    from kpledger.api.server import run_node  # noqa: PLC0415 - the web API: see above

    try:
        run_node(config, log_level=log_level)
    except LedgerError as exc:
        raise _fail(exc) from exc


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="operator, auditor, peer, party or observer")],
    name: Annotated[str, typer.Option(help="who holds it (a party id for party tokens)")],
    as_json: JsonOpt = False,
) -> None:
    """Make a new random token; print it once, and the lines to add to node.toml."""
    if role not in ROLES:
        message = f"--role must be one of {sorted(ROLES)}"
        if as_json:
            error_json(Exit.INVALID_INPUT, message)
        else:
            err.print(f"[bold red]error:[/] {message}")
        raise typer.Exit(Exit.INVALID_INPUT)
    token = secrets.token_urlsafe(32)
    party = f'\nparty = "{name}"' if role == "party" else ""
    toml = f'[[tokens]]\nrole = "{role}"\nname = "{name}"\nsha256 = "{hash_token(token)}"{party}'
    if as_json:
        print_json(
            {
                "role": role,
                "name": name,
                "party": name if role == "party" else None,
                "token": token,
                "sha256": hash_token(token),
                "toml": toml,
            }
        )
        return
    console.print(f"token (give it to {name}; it is not stored anywhere): {token}")
    console.print(f"add to node.toml:\n{toml}")


if __name__ == "__main__":
    app()
