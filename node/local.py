"""Running a whole local network of node processes (demo, scripts).

Each node is a real ``kpl node run`` process on 127.0.0.1 with its own store;
``LocalNetwork`` starts them, waits until they answer, and stops exactly the
processes it started (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import httpx

from ledger.errors import LedgerError
from node.network import NetworkLayout, init_network

__all__ = ["LocalNetwork", "free_base_port"]


def free_base_port(count: int, start: int | None = None, stop: int = 60000) -> int:
    """A base port such that base+1 .. base+count are free on 127.0.0.1 right now.

    The search starts at a random port (20000 to 40000 unless ``start`` is
    given), so that networks started at once on one machine rarely race for
    the same ports between this check and their nodes' binding.
    """
    base = random.randrange(20000, 40000) if start is None else start  # noqa: S311 - not secret
    while base + count < stop:
        ok = True
        for port in range(base + 1, base + count + 1):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    base = port
                    break
        if ok:
            return base
    raise LedgerError("no free run of ports on 127.0.0.1")


class LocalNetwork:
    def __init__(self, layout: NetworkLayout) -> None:
        self.layout = layout
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self.secrets = tomllib.loads(layout.secrets.read_text(encoding="utf-8"))

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

    def token(self, code: str, kind: str = "operator_token") -> str:
        value = self.secrets[code][kind]
        assert isinstance(value, str)
        return value

    def start(self, codes: Sequence[str] | None = None) -> None:
        for code in codes or list(self.layout.configs):
            config = self.layout.configs[code]
            log = (config.parent / "node.log").open("ab")
            self._logs[code] = log
            self.procs[code] = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed args
                [sys.executable, "-m", "cli.main", "node", "run", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ},
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            for code in self.procs:
                url = self.layout.urls[code] + "/healthz"
                while True:
                    proc = self.procs[code]
                    if proc.poll() is not None:
                        raise LedgerError(
                            f"node {code} exited with {proc.returncode}; see "
                            f"{self.layout.configs[code].parent / 'node.log'}"
                        )
                    try:
                        if client.get(url).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise LedgerError(f"node {code} did not answer within {timeout}s")
                    time.sleep(0.1)

    def stop(self, grace: float = 10.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for log in self._logs.values():
            log.close()
        self.procs.clear()
        self._logs.clear()
