"""``kpl``: the one command for operators, traders and auditors."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from cli.example import run_example
from keys import (
    generate_key_file,
    load_key,
    load_public_key,
    read_passphrase,
    write_public_key,
)
from ledger.errors import LedgerError
from ledger.state import Certificate, ParcelEvent
from ledger.store import Store, make_engine, schema_revision, upgrade

app = typer.Typer(
    help="kpledger: custody ledger for rough diamonds under the Kimberley Process",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Ed25519 identity keys, encrypted at rest", no_args_is_help=True)
db_app = typer.Typer(help="a node's SQL store", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")

out = Console()
err = Console(stderr=True, soft_wrap=True)

PASS_ENV = "KPL_PASSPHRASE"  # noqa: S105 - the name of the variable, not a secret


def _fail(exc: LedgerError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(2)


def _ct(hundredths: int) -> str:
    return f"{hundredths // 100:,}.{hundredths % 100:02d} ct"


def print_lineage(store: Store, parcel_id: str) -> None:
    """The parcel's lineage as a tree back to the mines, with origins and certificates."""

    def label(pid: str) -> str:
        p = store.parcel(pid)
        if p is None:
            return f"{pid} (unknown)"
        total = sum(q for _, q in p.origin) or 1
        origin = ", ".join(f"{c} {q * 100 / total:.1f}%" for c, q in p.origin)
        certs = sorted(
            {
                c.number
                for e in store.events(pid)
                if e.kind.startswith("certificate.") and (c := _cert_of(store, e)) is not None
            }
        )
        via = f"; certificates {', '.join(certs)}" if certs else ""
        return (
            f"[bold]{pid}[/] {_ct(p.weight)} under {p.chain}, {p.status.value}; "
            f"origin {origin}{via}"
        )

    edges = store.ancestry(parcel_id)
    parents: dict[str, list[str]] = {}
    for e in edges:
        parents.setdefault(e.child, []).append(e.parent)
    tree = Tree(label(parcel_id))

    def grow(node: Tree, pid: str, depth: int) -> None:
        for parent in sorted(parents.get(pid, [])):
            grow(node.add(label(parent)), parent, depth + 1)

    grow(tree, parcel_id, 0)
    out.print(tree)


def _cert_of(store: Store, event: ParcelEvent) -> Certificate | None:
    record = store.record(event.ref.chain, event.ref.index)
    if record is None:
        return None
    number = record.body_json.get("number")
    return None if number is None else store.certificate(str(number))


@app.command()
def example(
    db: Annotated[
        str | None, typer.Option(help="store URL; a temporary SQLite file if unset")
    ] = None,
) -> None:
    """Run the in-process example story into a SQL store and show what it proves."""
    with tempfile.TemporaryDirectory(prefix="kpl-example-") as tmp:
        url = db or f"sqlite:///{Path(tmp) / 'example.db'}"
        try:
            result = run_example(url)
        except LedgerError as exc:
            raise _fail(exc) from exc
        try:
            for step in result.steps:
                out.print(f"  [green]sealed[/] {step}")
            for record, why in result.refused:
                out.print(
                    f"  [yellow]refused[/] {record.chain} {record.kind.value} "
                    f"{record.body_json.get('number', record.id)}: {why}"
                )
            out.print()
            out.print("Lineage of the final parcel, back to the mines:")
            print_lineage(result.store, result.final_parcel)
            out.print()
            out.print(
                f"[green]verified[/]: the registration at Jwaneng is record "
                f"{result.store.events('BW-JW-1')[0].ref.index} of BW's log; its RFC 9162 "
                f"inclusion proof ({result.proof_steps} hashes) checks against BW's signed "
                f"checkpoint at size {result.proof_size}."
            )
            report = result.store.verify()
            out.print(
                f"[green]verified[/]: replaying {report.blocks} blocks "
                f"({report.records} records) rebuilds the same derived state."
            )
        finally:
            result.store.close()


@keys_app.command("generate")
def keys_generate(
    path: Annotated[Path, typer.Argument(help="where to write the encrypted private key")],
    public: Annotated[Path | None, typer.Option(help="also write the public key here")] = None,
) -> None:
    """Generate an Ed25519 key, encrypted with a passphrase (env KPL_PASSPHRASE or prompt)."""
    try:
        passphrase = read_passphrase(PASS_ENV, prompt="passphrase: ", confirm=True)
        signer = generate_key_file(path, passphrase)
        if public is not None:
            write_public_key(public, signer.public)
    except LedgerError as exc:
        raise _fail(exc) from exc
    out.print(f"key {signer.public.key_id} written to {path} (mode 0600)")


@keys_app.command("show")
def keys_show(
    path: Annotated[Path, typer.Argument(help="a private key file or a public key file")],
    private: Annotated[bool, typer.Option(help="the file is an encrypted private key")] = True,
) -> None:
    """Print a key's id and public key."""
    try:
        if private:
            key = load_key(path, read_passphrase(PASS_ENV, prompt="passphrase: ")).public
        else:
            key = load_public_key(path)
    except LedgerError as exc:
        raise _fail(exc) from exc
    out.print(f"key_id {key.key_id}\npublic {key.hex()}")


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
    out.print(f"schema revision {before or 'none'} -> {after}")


@db_app.command("verify")
def db_verify(db: DbUrl) -> None:
    """Replay the whole log into a scratch store and compare the derived state."""
    try:
        store = Store.open(db, create=False)
        try:
            report = store.verify()
        finally:
            store.close()
    except LedgerError as exc:
        raise _fail(exc) from exc
    table = Table("table", "rows")
    for name, count in report.tables.items():
        table.add_row(name, f"{count:,}")
    out.print(table)
    out.print(f"[green]verified[/]: {report.blocks} blocks, {report.records} records")


if __name__ == "__main__":
    app()
