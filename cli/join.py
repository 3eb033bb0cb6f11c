"""``kpl network join`` and ``kpl network add-peer``: a new participant's node.

``join`` writes the folder of a participant to be admitted (key, secrets,
node.toml, a copy of the genesis registry) and prints what the KP chair and
the other operators do next. ``add-peer`` is that next step on each side: it
adds a peer and accepts its peer token in a ``node.toml``; a running node
takes the change at its next gossip round (``node.membership``).
``--local-net`` does every ``add-peer`` at once for a network that
``kpl network init`` wrote on this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kpledger.ledger.errors import InvalidData, LedgerError
from kpledger.node.config import NodeConfig, read_secrets
from kpledger.node.membership import JoinLayout, add_peer, join_network

__all__ = ["connect_local", "network_add_peer", "network_join"]

console = Console()
err = Console(stderr=True, soft_wrap=True)


def connect_local(layout: JoinLayout, net: Path) -> list[str]:
    """Peer the new node with every node of a local network folder, both ways."""
    secrets_path = net / "secrets.toml"
    table = read_secrets(secrets_path)
    joined: list[str] = []
    for config_path in sorted(net.glob("*/node.toml")):
        if config_path.resolve() == layout.config.resolve():
            continue
        other = NodeConfig.load(config_path)
        token = table.get(other.code, {}).get("peer_token")
        if not isinstance(token, str):
            raise InvalidData(f"{secrets_path}: no peer_token for {other.code}")
        add_peer(config_path, layout.code, layout.url, token_sha256=layout.peer_token_sha256)
        add_peer(layout.config, other.code, other.url, token=token)
        joined.append(other.code)
    if not joined:
        raise InvalidData(f"{net}: no */node.toml found: not a network folder")
    return joined


def network_join(
    registry: Annotated[Path, typer.Option(help="the network's genesis.json")],
    code: Annotated[str, typer.Option(help="the new participant's code, e.g. NA")],
    name: Annotated[str, typer.Option(help="its name, e.g. Namibia")],
    url: Annotated[str, typer.Option(help="the URL its node will serve at")],
    out: Annotated[Path, typer.Option(help="the new node's folder (must not exist)")],
    listen: Annotated[
        str | None, typer.Option(help="HOST:PORT to listen on (default: the URL's)")
    ] = None,
    local_net: Annotated[
        Path | None,
        typer.Option(help="a local network folder (kpl network init): peer with all its nodes"),
    ] = None,
) -> None:
    """Create a participant-to-be's keys and node folder; print the admission steps."""
    try:
        layout = join_network(registry, out, code=code, name=name, url=url, listen=listen)
        joined = connect_local(layout, local_net) if local_net is not None else []
    except LedgerError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(
        f"{code}'s node folder written to {out} (key {layout.key_id[:16]}, secrets in "
        f"{out / 'secrets.toml'}, mode 0600)"
    )
    if joined:
        console.print(f"peered both ways with {', '.join(joined)}")
    else:
        console.print(
            "each operator adds the new node (and sends back its own peer token's SHA-256):\n"
            f"  kpl network add-peer --config node.toml --code {code} --url {url} "
            f"--token-sha256 {layout.peer_token_sha256}"
        )
    console.print(
        "the KP chair proposes the admission, two governance keys sign it, and it is submitted:\n"
        f"  kpl governance propose admit --registry {registry} --code {code} --name "
        f"'{name}' --url {url} --key {layout.public_key} -o admit-{code}.json\n"
        f"then: kpl node run --config {layout.config} (it replicates, and writes its chain "
        "once the admission reaches it)"
    )


def network_add_peer(
    config: Annotated[Path, typer.Option(help="the node.toml to change")],
    code: Annotated[str, typer.Option(help="the peer's participant code")],
    url: Annotated[str, typer.Option(help="the peer's node URL")],
    token_sha256: Annotated[
        str | None, typer.Option(help="SHA-256 of the peer's token (what its operator sends)")
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="or a file holding the peer's token itself")
    ] = None,
) -> None:
    """Add a peer and accept its token; a running node takes it within a gossip round."""
    try:
        token = None
        if token_file is not None:
            token = token_file.read_text(encoding="utf-8").strip()
        if (token is None) == (token_sha256 is None):
            raise InvalidData("give exactly one of --token-sha256 and --token-file")
        updated = add_peer(config, code, url, token_sha256=token_sha256, token=token)
    except (LedgerError, OSError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{updated.path}: peer {code} at {url}; {len(updated.peers)} peers in all")
