"""Harness of the deployment tests: real ``kpl node run`` processes, PostgreSQL schemas.

Node processes come from the shipped harness ``node.local`` (``NodeProcess``,
``free_base_port``), the one the network tests, ``kpl demo`` and the benchmarks use.

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
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from kpledger.node.local import NodeProcess, free_base_port, log_tail

REPO = Path(__file__).resolve().parents[2]


class NodeRun(NodeProcess):
    """``NodeRun(config, url, log, env)``: a node process of the shipped harness, named by
    its configuration's folder."""

    def __init__(self, config: Path, url: str, log: Path, env: dict[str, str]) -> None:
        super().__init__(config.parent.name, config, url, log, env)


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
        free_base_port=free_base_port,
        log_tail=log_tail,
        secrets_of=secrets_of,
        wait_for=wait_for,
    )
