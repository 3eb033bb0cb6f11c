"""Suite-wide settings: required external resources fail instead of skipping in CI.

``KPL_REQUIRE_POSTGRES=1`` makes any skipped PostgreSQL test a failure,
``KPL_REQUIRE_VECTORS=1`` does the same for the external test vectors, and
``KPL_REQUIRE_BROWSER=1`` for the web explorer's tests in headless Chromium, so
a green CI run always includes them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "kpl", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=50
)
settings.load_profile("kpl")

REPO = Path(__file__).resolve().parents[1]


def vectors_dir() -> Path:
    return Path(os.environ.get("KPL_VECTORS", REPO.parent / "shared" / "vectors"))


_required_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not report.skipped:
        return
    reason = str(report.longrepr)
    postgres = "postgres" in report.keywords or "PostgreSQL" in reason
    vectors = "KPL_VECTORS" in reason
    browser = "browser" in report.keywords or "chromium" in reason.lower()
    if (
        (postgres and os.environ.get("KPL_REQUIRE_POSTGRES") == "1")
        or (vectors and os.environ.get("KPL_REQUIRE_VECTORS") == "1")
        or (browser and os.environ.get("KPL_REQUIRE_BROWSER") == "1")
    ):
        _required_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _required_skips:
        print("\nrequired tests were skipped:")
        for line in _required_skips[:20]:
            print(f"  {line}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
