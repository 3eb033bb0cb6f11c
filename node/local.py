"""Running real ``kpl node run`` processes on 127.0.0.1: the one node-process harness.

``kpl demo``, the benchmarks and the network and deployment tests all start
nodes through this module:

* ``free_base_port``: the one helper that finds free ports (a base port such
  that base+1 .. base+n are free, each checked by binding);
* ``NodeProcess``: one node process with its log file; started with the
  secrets of the caller's environment removed, waited for on ``/healthz``,
  and stopped by its own pid (SIGTERM, then SIGKILL after a grace period);
* ``LocalNetwork``: a network written by ``init_network`` (what ``kpl network
  init`` runs) and one ``NodeProcess`` per node.

Every process is stopped by its pid; nothing here signals a process it did
not start.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from kpledger.ledger.errors import LedgerError
from kpledger.node.network import NetworkLayout, init_network

__all__ = [
    "NodeProcess",
    "LocalNetwork",
    "NodeStartError",
    "free_base_port",
    "log_tail",
    "stop_all",
    "SOURCE_ROOT",
]

HOST = "127.0.0.1"
#: the folder holding the ``cli``, ``node``, ... packages (put on a child's PYTHONPATH)
SOURCE_ROOT = Path(__file__).resolve().parents[1]
#: seconds a node process may take to answer ``/healthz`` after its start; a shared,
#: loaded machine (a soak beside other work; at a load of 37 on 2 cores a node took over
#: 60 s to import and listen) may need more: ``KPL_START_TIMEOUT``
START_TIMEOUT = float(os.environ.get("KPL_START_TIMEOUT", "120"))
STOP_TIMEOUT = 15.0
#: variables of the caller's environment a node process never inherits
_SECRET_PREFIXES = ("KPL_PASSPHRASE", "KPL_PEER_TOKEN", "KPL_DATABASE_PASSWORD")


class NodeStartError(LedgerError):
    """A node process exited, or did not answer ``/healthz``, while starting."""

    def __init__(self, message: str, *, code: str, returncode: int | None) -> None:
        super().__init__(message)
        self.code = code
        self.returncode = returncode


def free_base_port(count: int, start: int | None = None, stop: int = 32_000) -> int:
    """A base port such that base+1 .. base+count are all free on 127.0.0.1 right now.

    Each port is checked by binding it (all held together while checking).
    Without ``start`` the candidates are random and below the kernel's
    ephemeral range, so that networks started at once on one machine rarely
    race for the same ports, and outgoing connections of running nodes never
    take one between this check and a node's start. With ``start`` the search
    walks upwards from it.
    """
    rng = random.Random()  # noqa: S311 - not secret
    base = start if start is not None else rng.randrange(20_000, stop - count)
    for _ in range(500):
        if base + count >= 65_535:
            break
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base + 1, base + count + 1):
                    s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    s.bind((HOST, port))
            except OSError:
                base = base + count if start is not None else rng.randrange(20_000, stop - count)
                continue
        return base
    raise LedgerError(f"no run of {count} free ports on {HOST}")


def log_tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a log file, or a note saying why there are none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeProcess:
    """One ``kpl node run`` process (restartable), its log file and its URL."""

    def __init__(
        self,
        code: str,
        config: Path,
        url: str,
        log: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.code = code
        self.config = config
        self.url = url
        self.log = log
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.terminated = False

    @property
    def db_path(self) -> Path:
        """The SQLite store of a node whose configuration names no database."""
        return self.config.parent / "node.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "kpledger.cli.main",
            "node",
            "run",
            "--config",
            str(self.config),
        ]

    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SECRET_PREFIXES)}
        env["PYTHONPATH"] = str(SOURCE_ROOT)
        env["PYTHONUNBUFFERED"] = "1"
        return env | self.env

    def start(self) -> NodeProcess:
        if self.alive:
            raise LedgerError(f"node {self.code} is already running")
        self.starts += 1
        self.terminated = False
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            log.write(f"=== {_utc_now()} start #{self.starts} of {self.code}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed args
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.child_env(),
            )
        return self

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kw.pop("timeout", 5.0), **kw)

    def wait_ready(self, timeout: float = START_TIMEOUT, **client: Any) -> dict[str, Any]:
        """Wait until ``/healthz`` answers 200 and return its body; ``client``: httpx options."""
        deadline = time.monotonic() + timeout
        with self.client(timeout=2.0, **client) as http:
            while True:
                if not self.alive:
                    rc = None if self.proc is None else self.proc.returncode
                    raise NodeStartError(
                        f"node {self.code} exited ({rc}) while starting:\n{log_tail(self.log)}",
                        code=self.code,
                        returncode=rc,
                    )
                with contextlib.suppress(httpx.HTTPError):
                    answer = http.get("/healthz")
                    if answer.status_code == 200:
                        body: dict[str, Any] = answer.json()
                        return body
                if time.monotonic() > deadline:
                    raise NodeStartError(
                        f"node {self.code} not ready after {timeout}s:\n{log_tail(self.log)}",
                        code=self.code,
                        returncode=None,
                    )
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, by pid, and reap."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)

    def terminate(self) -> None:
        """SIGTERM, by pid, once, without waiting (``stop`` waits): a clean shutdown."""
        if self.alive and not self.terminated:
            assert self.proc is not None
            self.terminated = True
            os.kill(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL if the node takes longer than ``timeout``; its exit status."""
        if self.proc is None:
            return None
        self.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.proc.returncode


def stop_all(nodes: Sequence[NodeProcess], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every node at once, then wait for each (SIGKILL after ``timeout``)."""
    for node in nodes:
        node.terminate()
    for node in nodes:
        node.stop(timeout)


class LocalNetwork:
    """A network written by ``init_network`` and its node processes (logs beside configs)."""

    def __init__(self, layout: NetworkLayout) -> None:
        self.layout = layout
        self.secrets: dict[str, Any] = tomllib.loads(layout.secrets.read_text(encoding="utf-8"))
        self.nodes = {
            code: NodeProcess(code, config, layout.urls[code], config.parent / "node.log")
            for code, config in layout.configs.items()
        }

    @classmethod
    def create(
        cls,
        root: Path,
        authorities: Sequence[str],
        auditors: Sequence[str] = ("WDC",),
        *,
        block_interval: float = 0.2,
        heartbeat: float = 2.0,
        gossip_interval: float = 0.2,
    ) -> LocalNetwork:
        """Write a new network under ``root`` on free ports (nothing started yet)."""
        base = free_base_port(len(authorities) + len(auditors))
        layout = init_network(
            root,
            authorities,
            auditors,
            base_port=base,
            block_interval=block_interval,
            heartbeat=heartbeat,
            gossip_interval=gossip_interval,
        )
        return cls(layout)

    @property
    def procs(self) -> dict[str, subprocess.Popen[bytes]]:
        """The processes started so far, by node code."""
        return {c: n.proc for c, n in self.nodes.items() if n.proc is not None}

    def token(self, code: str, kind: str = "operator_token") -> str:
        value = self.secrets[code][kind]
        assert isinstance(value, str)
        return value

    def start(self, codes: Sequence[str] | None = None) -> None:
        for code in codes or list(self.nodes):
            if code not in self.nodes:  # added to the layout since (``kpl network join``)
                config = self.layout.configs[code]
                self.nodes[code] = NodeProcess(
                    code, config, self.layout.urls[code], config.parent / "node.log"
                )
            self.nodes[code].start()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        for node in self.nodes.values():
            if node.proc is not None:
                node.wait_ready(timeout)

    def stop(self, grace: float = 10.0) -> None:
        stop_all(list(self.nodes.values()), grace)
