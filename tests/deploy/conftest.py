"""Harness of the deployment tests: real ``kpl node run`` processes, PostgreSQL schemas.

Every process a test starts is stopped at teardown by its pid (SIGTERM, then
SIGKILL); a failed test gets the tail of each node's log in its report. Each
PostgreSQL test gets a schema of its own in the server named by
``KPL_TEST_POSTGRES_URL`` (reached with ``options=-csearch_path=...``), dropped
afterwards; without the variable those tests skip.

Test modules reach the helpers through the ``deploy`` fixture (``deploy.wait_for``,
``deploy.NodeRun``, ...), not by importing this file: every test folder has a
``conftest`` module of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on 127.0.0.1 right now (bound, read, released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class NodeRun:
    """One ``kpl node run`` process with its log; stopped by pid."""

    def __init__(self, config: Path, url: str, log: Path, env: dict[str, str]) -> None:
        self.config = config
        self.url = url
        self.log = log
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeRun:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KPL_PASSPHRASE", "KPL_PEER_TOKEN", "KPL_DATABASE_PASSWORD"))
        }
        env |= {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **self.env}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "node", "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=env,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kw.pop("timeout", 5.0), **kw)

    def wait_ready(self, timeout: float = START_TIMEOUT, **client: Any) -> dict[str, Any]:
        """Wait until ``/healthz`` answers 200; return its body."""
        deadline = time.monotonic() + timeout
        with self.client(timeout=2.0, **client) as http:
            while True:
                if not self.alive:
                    rc = None if self.proc is None else self.proc.returncode
                    raise AssertionError(f"{self.config} exited ({rc}):\n{log_tail(self.log)}")
                with contextlib.suppress(httpx.HTTPError):
                    r = http.get("/healthz")
                    if r.status_code == 200:
                        body: dict[str, Any] = r.json()
                        return body
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.url} not ready:\n{log_tail(self.log)}")
                time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=STOP_TIMEOUT)

    def terminate(self) -> None:
        """SIGTERM, without waiting (``stop`` waits)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


@pytest.fixture
def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., NodeRun]]:
    """``nodes(config, url, env={})``: a started node process, stopped at teardown."""
    started: list[NodeRun] = []

    def make(config: Path, url: str, env: dict[str, str] | None = None) -> NodeRun:
        log = tmp_path / f"node-{len(started)}-{config.parent.name}.log"
        run = NodeRun(config, url, log, env or {}).start()
        started.append(run)
        return run

    yield make
    for run in started:
        run.terminate()
    for run in started:
        run.stop()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for run in started:
            print(f"\n--- log of {run.config} ({run.url}) ---\n{log_tail(run.log)}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def secrets_of(root: Path) -> dict[str, Any]:
    return tomllib.loads((root / "secrets.toml").read_text(encoding="utf-8"))


def wait_for(what: str, check: Callable[[], Any], timeout: float, poll: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


@pytest.fixture(scope="session")
def deploy() -> SimpleNamespace:
    """The harness's helpers, for test modules."""
    return SimpleNamespace(
        REPO=REPO,
        NodeRun=NodeRun,
        free_ports=free_ports,
        log_tail=log_tail,
        secrets_of=secrets_of,
        wait_for=wait_for,
    )
