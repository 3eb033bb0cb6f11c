"""Running a node: configuration, key, store, app and uvicorn, until SIGTERM."""

from __future__ import annotations

import fcntl
import logging
import os
import ssl
from pathlib import Path
from typing import IO

import httpx
import uvicorn

from api.app import create_app
from keys import load_key
from ledger.crypto import Ed25519Signer
from ledger.errors import KeyFileError, LedgerError
from ledger.registry import Registry
from ledger.store import Store
from node.config import ConfigError, NodeConfig
from node.gossip import Gossip
from node.node import Node

__all__ = ["NodeProcess", "open_node", "run_node"]

log = logging.getLogger("kpl.node")


class NodeProcess:
    """Everything one running node holds; ``close`` releases it all."""

    def __init__(
        self,
        config: NodeConfig,
        node: Node,
        gossip: Gossip,
        client: httpx.AsyncClient,
        lock: IO[str],
    ) -> None:
        self.config = config
        self.node = node
        self.gossip = gossip
        self.client = client
        self._lock = lock

    def close(self) -> None:
        self.node.store.close()
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


def _registry(config: NodeConfig) -> Registry:
    try:
        return Registry.parse(config.registry.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{config.path}: node.registry: {config.registry} does not exist"
        ) from exc


def _signer(config: NodeConfig) -> Ed25519Signer | None:
    if config.key_file is None:
        return None
    passphrase = config.secret("passphrase", "KPL_PASSPHRASE")
    if not passphrase:
        raise KeyFileError(
            "no passphrase: set KPL_PASSPHRASE or the node's passphrase in its secrets file",
            path=str(config.key_file),
        )
    return load_key(config.key_file, passphrase.encode())


def _client(config: NodeConfig) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
    if config.tls is None:
        return httpx.AsyncClient(limits=limits)
    ctx = ssl.create_default_context(cafile=str(config.tls.ca) if config.tls.ca else None)
    ctx.load_cert_chain(str(config.tls.cert), str(config.tls.key))
    return httpx.AsyncClient(limits=limits, verify=ctx)


def _lock(config: NodeConfig) -> IO[str]:
    """One node process per data folder: a second one is refused, not run beside it."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    handle = (config.data_dir / "node.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise LedgerError(f"another node process holds {config.data_dir / 'node.lock'}") from exc
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def open_node(config_path: Path) -> NodeProcess:
    """Load everything a node needs; raise a ``LedgerError`` naming what is wrong."""
    config = NodeConfig.load(config_path)
    registry = _registry(config)
    signer = _signer(config)
    lock = _lock(config)
    try:
        store = Store.open(config.database_url, registry)
        node = Node(config, store, signer)
    except BaseException:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
        raise
    client = _client(config)
    gossip = Gossip(node, client, config.secret("peer_token", "KPL_PEER_TOKEN"))
    return NodeProcess(config, node, gossip, client, lock)


def run_node(config_path: Path, *, log_level: str = "warning") -> None:
    """Serve the node until SIGINT or SIGTERM; the store is closed cleanly on the way out."""
    proc = open_node(config_path)
    config = proc.config
    app = create_app(proc.node, proc.gossip)
    tls = config.tls
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=log_level,
            access_log=False,
            ssl_certfile=str(tls.cert) if tls else None,
            ssl_keyfile=str(tls.key) if tls else None,
            ssl_ca_certs=str(tls.ca) if tls and tls.ca else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if tls and tls.ca else ssl.CERT_NONE,
            timeout_graceful_shutdown=5,
        )
    )
    try:
        server.run()
    finally:
        proc.close()
