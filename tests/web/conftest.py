"""The officer forms' browser tests drive real node processes (the tests/node harness)."""

from __future__ import annotations

from tests.node.conftest import cluster, pytest_runtest_makereport

__all__ = ["cluster", "pytest_runtest_makereport"]
