"""Running a node: configuration, key, store, app and uvicorn, until SIGTERM.

Exactly one process writes a node's store. On SQLite that is the process
holding ``node.lock`` in the data folder (a second one is refused). On
PostgreSQL several processes may serve one database: the one holding the
writer lock (``ledger.store.writer``) seals blocks, gossips and takes
submissions; the others are read replicas of the API. A replica refuses
writes with 503 ``not-writer``, reloads its view of the store every
``node.writer_retry`` seconds and tries the lock each time; when the writer
dies it takes over, waits one more ``writer_retry`` (a writer that lost its
lock stops within half that) and starts writing. A writer that finds its
lock session gone stops writing at once and exits with an error, to come back
as a replica. ``/healthz`` says which role a process has.

Before its first seal an authority's writer asks its peers for the head of
its own chain and catches up to it (``node.startup_sync``): a node restored
from an old backup, or rebuilt from its peers alone, must never seal a
height it already sealed before.

With ``[tls]`` the node's listener speaks HTTPS and, with ``tls.ca``, asks
every client for a certificate signed by that CA (mutual TLS: peers); the
node presents its certificate to peers too. ``tls.api_listen`` adds a second
listener for API clients with its own server certificate (``tls.api_cert``,
``tls.api_key``; default the node's) that asks for no client certificate and
does not take peer gossip.

One concept, with a reason for its size: the life of one node process, from
its files to its listeners and its stop. The role supervisor (writer or
replica), the guard that refuses writes on a replica and labels ``/healthz``,
and the listeners all act on one process's state (which role it holds,
whether it is stopping); apart, they would hand that state between modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any, Protocol

import httpx
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kpledger.api.app import create_app
from kpledger.api.limits import (
    MAX_HEADER_BYTES,
    BodyTimeout,
    connection_budget,
    guarded_protocol,
    install_log_limits,
)
from kpledger.api.middleware import NoSniff
from kpledger.api.problems import problem
from kpledger.keys import load_key
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import KeyFileError, LedgerError
from kpledger.ledger.registry import Registry
from kpledger.ledger.store import Store
from kpledger.ledger.store.writer import ReplicaStore, WriterLock
from kpledger.node.config import ConfigError, NodeConfig
from kpledger.node.gctune import tune_gc
from kpledger.node.gossip import Gossip
from kpledger.node.keyring import KeyRing
from kpledger.node.node import Node
from kpledger.node.runtime import run_loops

__all__ = ["NodeProcess", "open_node", "run_node"]

log = logging.getLogger("kpl.node")


class _WriterGuard(Protocol):
    @property
    def acquired(self) -> bool: ...
    def try_acquire(self) -> bool: ...
    def held(self) -> bool: ...
    def release(self) -> None: ...


class NodeProcess:
    """Everything one running node holds; ``close`` releases it all.

    ``gossip`` is None while the process is a read replica.
    """

    def __init__(
        self,
        config: NodeConfig,
        registry: Registry,
        signer: Ed25519Signer | None,
        url: str,
        lock: _WriterGuard,
        client: httpx.AsyncClient,
    ) -> None:
        self.config = config
        self.registry = registry
        self.signer = signer
        self.url = url
        self.lock = lock
        self.client = client
        self.node, self.gossip = self._open()

    @property
    def writer(self) -> bool:
        return self.lock.acquired

    def _open(self) -> tuple[Node, Gossip | None]:
        if self.writer:
            store = Store.open(self.url, self.registry)
        else:
            store = ReplicaStore.open(self.url, self.registry)
        try:
            node = Node(self.config, store, self.signer, keyring=_keyring(self.config))
        except BaseException:
            store.close()
            raise
        if not self.writer:
            return node, None
        token = self.config.secret("peer_token", "KPL_PEER_TOKEN")
        return node, Gossip(node, self.client, token)

    def promote(self) -> None:
        """Open the store for writing, now that this process holds the writer lock."""
        old = self.node.store
        self.node, self.gossip = self._open()
        old.close()

    def close(self) -> None:
        self.node.store.close()
        self.lock.release()


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


def _keyring(config: NodeConfig) -> KeyRing | None:
    """Every key file of the node (current, next, retired), re-read when the ledger
    names a key the node has not loaded: a rotation needs no restart."""
    if config.key_file is None:
        return None
    passphrase = config.secret("passphrase", "KPL_PASSPHRASE")
    if not passphrase:
        return None
    ring = KeyRing(key_file=config.key_file, passphrase=passphrase.encode())
    ring.reload()
    return ring


def _client(config: NodeConfig) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
    if config.tls is None:
        return httpx.AsyncClient(limits=limits)
    ctx = ssl.create_default_context(cafile=str(config.tls.ca) if config.tls.ca else None)
    ctx.load_cert_chain(str(config.tls.cert), str(config.tls.key))
    return httpx.AsyncClient(limits=limits, verify=ctx)


class _FileLock:
    """SQLite: one node process per data folder (``node.lock``); a second one is refused."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle: IO[str] | None = handle

    @property
    def acquired(self) -> bool:
        return self._handle is not None

    def try_acquire(self) -> bool:
        return self.acquired

    def held(self) -> bool:
        return self.acquired

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


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
    """Load everything a node needs; raise a ``LedgerError`` naming what is wrong.

    On PostgreSQL the process is the writer if it got the writer lock, else a
    read replica (``NodeProcess.writer``).
    """
    config = NodeConfig.load(config_path)
    registry = _registry(config)
    signer = _signer(config)
    url = config.store_url()
    lock: _WriterGuard
    if config.is_sqlite:
        lock = _FileLock(_lock(config))
    else:
        lock = WriterLock(url, registry.network_id, config.code)
        lock.try_acquire()
    try:
        return NodeProcess(config, registry, signer, url, lock, _client(config))
    except BaseException:
        lock.release()
        raise


# ---------------------------------------------------------------- roles


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class _Supervisor:
    """Runs the writer's loops, or the replica's refresh-and-retry loop, inside the app."""

    def __init__(self, proc: NodeProcess, app: FastAPI, on_lost: Callable[[], None]) -> None:
        self.proc = proc
        self.app = app
        self.on_lost = on_lost
        self.stop = asyncio.Event()
        self.role = "writer" if proc.writer else "replica"
        self.lost = False

    async def run(self) -> None:
        try:
            if not self.proc.writer and not await self._replicate():
                return
            await self._write()
        except Exception:
            log.exception("node supervisor failed")
            self.lost = True
            self.on_lost()

    # ---------------------------------------------------------- replica
    async def _replicate(self) -> bool:
        """Serve reads until the writer lock is ours; True once this process is the writer."""
        retry = self.proc.config.writer_retry
        log.warning("%s: read replica; the writer lock is held elsewhere", self.proc.config.code)
        while not self.stop.is_set():
            await _pause(self.stop, retry)
            if self.stop.is_set():
                return False
            try:
                await asyncio.to_thread(self._refresh)
            except LedgerError as exc:
                log.warning("replica refresh failed: %s", exc)
            if await asyncio.to_thread(self.proc.lock.try_acquire):
                break
        else:
            return False
        log.warning("%s: took the writer lock; writing in %.1fs", self.proc.config.code, retry)
        await _pause(self.stop, retry)  # a writer that lost the lock has stopped by now
        if self.stop.is_set():
            return False
        await asyncio.to_thread(self.proc.promote)
        self.app.state.node = self.proc.node
        self.app.state.gossip = self.proc.gossip
        self.role = "writer"
        return True

    def _refresh(self) -> None:
        store = self.proc.node.store
        if isinstance(store, ReplicaStore):
            store.refresh()
        self.proc.node.reload()

    # ---------------------------------------------------------- writer
    async def _write(self) -> None:
        loops = asyncio.Event()
        task = asyncio.create_task(run_loops(self.proc.node, self.proc.gossip, loops))
        try:
            if self.proc.config.is_sqlite:
                await self.stop.wait()
                return
            check = self.proc.config.writer_retry / 2
            while not self.stop.is_set():
                await _pause(self.stop, check)
                if self.stop.is_set():
                    return
                if not await asyncio.to_thread(self.proc.lock.held):
                    log.error("%s: lost the writer lock: stopping", self.proc.config.code)
                    self.lost = True
                    self.role = "stopping"
                    return
        finally:
            loops.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if self.lost:
                self.on_lost()

    def lifespan(self) -> Callable[[FastAPI], Any]:
        inner = self.app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
            async with inner(app) as state:
                task = asyncio.create_task(self.run())
                try:
                    yield state
                finally:
                    self.stop.set()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

        return lifespan


# ---------------------------------------------------------------- HTTP wrappers

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class _RoleGuard:
    """Refuse writes on a read replica (503 ``not-writer``); add ``role`` to ``/healthz``."""

    def __init__(self, app: ASGIApp, role: Callable[[], str]) -> None:
        self.app = app
        self.role = role

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        role = self.role()
        path = scope.get("path", "")
        if role != "writer" and scope["method"] not in _READS and path != "/v1/gossip":
            response = problem(
                503,
                "not-writer",
                f"this process is a {role} of the node's database: only the writer process "
                "takes submissions; retry (another process, or this one after a takeover)",
            )
            response.headers["Retry-After"] = "2"
            await response(scope, receive, send)
            return
        if path != "/healthz":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _with_role(send, role))


def _with_role(send: Send, role: str) -> Send:
    start: Message | None = None
    chunks: list[bytes] = []

    async def patched(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            value = json.loads(body)
            if isinstance(value, dict):
                body = json.dumps({**value, "role": role}).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return patched


class _ApiListener:
    """The public API listener: everything but peer gossip and pushed blocks, which need
    mutual TLS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").rstrip("/") if scope["type"] == "http" else ""
        pushed = scope.get("method") == "POST" and path.startswith("/v1/chains/")
        if path == "/v1/gossip" or pushed:
            response = problem(
                403, "peer-port", "peers gossip on the node's mutual-TLS listener, not this one"
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


# ---------------------------------------------------------------- serving


def _client_limits(config: NodeConfig) -> dict[str, Any]:
    """uvicorn settings against slow and excess clients (``api.limits``, ``[http]``)."""
    limits = config.http
    listeners = 2 if config.tls is not None and config.tls.api_port is not None else 1
    return {
        "http": guarded_protocol(
            limits.header_timeout, connection_budget(limits.max_connections, listeners)
        ),
        "timeout_keep_alive": limits.keep_alive,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "log_config": None,  # every line goes through install_log_limits' handler
    }


def _servers(config: NodeConfig, app: ASGIApp, log_level: str) -> list[uvicorn.Server]:
    tls = config.tls
    client_limits = _client_limits(config)
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                app,
                host=config.host,
                port=config.port,
                log_level=log_level,
                access_log=False,
                **client_limits,
                ssl_certfile=str(tls.cert) if tls else None,
                ssl_keyfile=str(tls.key) if tls else None,
                ssl_ca_certs=str(tls.ca) if tls and tls.ca else None,
                ssl_cert_reqs=ssl.CERT_REQUIRED if tls and tls.ca else ssl.CERT_NONE,
                timeout_graceful_shutdown=5,
            )
        )
    ]
    if tls is not None and tls.api_port is not None:
        servers.append(
            uvicorn.Server(
                uvicorn.Config(
                    _ApiListener(app),
                    host=tls.api_host or config.host,
                    port=tls.api_port,
                    log_level=log_level,
                    access_log=False,
                    **client_limits,
                    lifespan="off",  # the node's own listener runs the node
                    ssl_certfile=str(tls.api_cert or tls.cert),
                    ssl_keyfile=str(tls.api_key or tls.key),
                    ssl_cert_reqs=ssl.CERT_NONE,
                    timeout_graceful_shutdown=5,
                )
            )
        )
    return servers


async def _serve_all(servers: list[uvicorn.Server]) -> None:
    """Serve every listener; when one stops (signal, lost lock, failure) stop them all."""
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for s in servers:
        s.should_exit = True
    await asyncio.gather(*tasks)


def _stop_all(servers: list[uvicorn.Server]) -> Callable[[], None]:
    def stop() -> None:
        for s in servers:
            s.should_exit = True

    return stop


def run_node(config_path: Path, *, log_level: str = "warning") -> None:
    """Serve the node until SIGINT or SIGTERM; the store is closed cleanly on the way out.

    Raises ``LedgerError`` if the process lost the PostgreSQL writer lock.
    """
    install_log_limits()
    tune_gc()
    proc = open_node(config_path)
    config = proc.config
    app = create_app(proc.node, proc.gossip)
    app.add_middleware(BodyTimeout, seconds=config.http.body_timeout)
    servers: list[uvicorn.Server] = []
    supervisor = _Supervisor(proc, app, _stop_all(servers))
    app.router.lifespan_context = supervisor.lifespan()
    servers += _servers(config, NoSniff(_RoleGuard(app, lambda: supervisor.role)), log_level)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again
    # with the handler that was installed before it ran: make that one end the
    # process through ``finally`` (store closed, lock released, exit status 0)
    # instead of the default action that kills it on the spot.
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _stopped) for sig in _SIGNALS}
    try:
        asyncio.run(_serve_all(servers))
    except _Stopped:
        log.info("node %s stopped", config.code)
    finally:
        proc.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if supervisor.lost:
        raise LedgerError(
            f"node {config.code} stopped writing: it lost the writer lock of its database "
            "(see the log); started again, it serves as a read replica until it can write"
        )


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stopped(Exception):
    """SIGINT or SIGTERM, after uvicorn's graceful shutdown."""


def _stopped(signum: int, _frame: object) -> None:
    for sig in _SIGNALS:  # one stop is enough: let the store close undisturbed
        signal.signal(sig, signal.SIG_IGN)
    raise _Stopped(signal.Signals(signum).name)
