"""The CLI tests reuse the network harness of tests/node: real node processes."""

from __future__ import annotations

from tests.node.conftest import cluster, pytest_runtest_makereport

__all__ = ["cluster", "pytest_runtest_makereport"]
