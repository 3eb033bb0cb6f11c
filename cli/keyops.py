"""``kpl keys``: ``generate`` and ``show`` key files; ``rotate`` a running node's key.

``kpl keys rotate``: a running authority node moves to a new key without a restart.

The command and the node meet on disk and on the ledger, not through a
special endpoint:

1. the command writes the new key, encrypted under the node's passphrase, to
   ``node.key.next`` beside ``node.key`` (an interrupted run reuses it);
2. it submits ``key.rotate`` (the new public key) with the operator token, the
   way any record is submitted, and waits until it is committed at height h;
3. the node seals block h + 1: the ledger now names the new key, which the
   node does not hold in memory, so its key ring reads the key files again
   and signs with ``node.key.next`` (``node.keyring``);
4. once the chain has moved past h, the command renames ``node.key`` to
   ``node.key.retired-<old key id>`` and ``node.key.next`` to ``node.key``,
   so a restart finds the current key where the configuration says.

Headers sealed before h + 1 keep verifying under the old key: every verifier
reads the key history from the chain itself.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kpledger.keys import (
    generate_key_file,
    load_key,
    load_public_key,
    read_passphrase,
    save_key,
    write_public_key,
)
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import InvalidData, LedgerError
from kpledger.ledger.records import Kind, make_record
from kpledger.ledger.registry import Registry
from kpledger.node.client import NodeClient
from kpledger.node.config import NodeConfig
from kpledger.node.keyring import next_key_file, retired_key_file

__all__ = ["app", "keys_generate", "keys_rotate", "keys_show", "rotate_key"]

app = typer.Typer(help="Ed25519 identity keys, encrypted at rest", no_args_is_help=True)
console = Console()
err = Console(stderr=True, soft_wrap=True)

PASS_ENV = "KPL_PASSPHRASE"  # noqa: S105 - the name of the variable, not a secret


def _fail(exc: LedgerError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(2)


@app.command("generate")
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
    console.print(f"key {signer.public.key_id} written to {path} (mode 0600)")


@app.command("show")
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
    console.print(f"key_id {key.key_id}\npublic {key.hex()}")


def rotate_key(
    config_path: Path,
    *,
    node_url: str | None = None,
    token: str | None = None,
    timeout: float = 60.0,
) -> tuple[str, str, int]:
    """Rotate the key of the node configured at ``config_path``.

    Returns (old key id, new key id, height of the block holding ``key.rotate``).
    """
    config = NodeConfig.load(config_path)
    registry = Registry.parse(config.registry.read_bytes())
    me = registry.participant(config.code)
    if config.key_file is None or me is None or me.role != "authority":
        raise InvalidData(f"{config.path}: {config.code} is not an authority node with a key")
    passphrase_text = config.secret("passphrase", "KPL_PASSPHRASE")
    passphrase = (
        passphrase_text.encode()
        if passphrase_text
        else read_passphrase(None, prompt=f"passphrase of {config.key_file}: ")
    )
    token = token or config.secret("operator_token", "KPL_TOKEN")
    if not token:
        raise InvalidData(
            "no operator token: pass --token, set KPL_TOKEN, or put operator_token in the "
            "node's secrets file"
        )
    old = load_key(config.key_file, passphrase)
    pending = next_key_file(config.key_file)
    if pending.exists():
        new = load_key(pending, passphrase)  # an earlier run stopped half way: finish it
    else:
        new = Ed25519Signer.generate()
        save_key(pending, new, passphrase)
    if new.public.key_id == old.public.key_id:
        raise InvalidData(f"{pending} holds the current key; remove it and run again")
    record = make_record(
        network=registry.network_id,
        chain=config.code,
        kind=Kind.KEY_ROTATE,
        record_id=f"key.rotate-{new.public.key_id[:24]}",
        time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        body={"key": new.public.hex()},
    )
    with NodeClient(node_url or config.url, token, timeout=10.0) as client:
        result = client.submit([record])[0]
        if result["status"] in ("invalid", "rejected"):
            raise InvalidData(
                f"the node refused key.rotate: {result.get('field', '')}: {result.get('reason')}"
            )
        outcome = client.wait_settled([record.id], timeout=timeout)[record.id]
        if outcome["status"] != "committed":
            raise InvalidData(f"key.rotate was refused: {outcome.get('reason', outcome)}")
        height = int(outcome["height"])
        deadline = time.monotonic() + timeout
        while int(client.heads().get(config.code, {}).get("height", 0)) <= height:
            if time.monotonic() > deadline:
                raise LedgerError(
                    f"key.rotate is committed at {config.code}/{height} but the node has not "
                    f"sealed with the new key within {timeout:.0f}s; {pending} stays in place"
                )
            time.sleep(0.2)
    os.replace(config.key_file, retired_key_file(config.key_file, old.public.key_id))
    os.replace(pending, config.key_file)
    return old.public.key_id, new.public.key_id, height


@app.command("rotate")
def keys_rotate(
    config: Annotated[Path, typer.Option(help="the running node's node.toml")],
    node: Annotated[
        str | None, typer.Option(help="the node's URL (default: node.url of the config)")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="operator token (default: KPL_TOKEN or the secrets file)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each step")] = 60.0,
) -> None:
    """Make a new key, seal key.rotate, and have the running node sign with it."""
    try:
        old, new, height = rotate_key(config, node_url=node, token=token, timeout=timeout)
    except LedgerError as exc:
        raise _fail(exc) from exc
    console.print(
        f"key.rotate committed at height {height}: blocks from {height + 1} on are signed by "
        f"{new[:16]} (was {old[:16]}); the old key is kept as "
        f"{retired_key_file(Path('node.key'), old).name} beside node.key"
    )
