"""Suite-wide settings: required external resources fail instead of skipping in CI.

``KPL_REQUIRE_POSTGRES=1`` makes any skipped PostgreSQL test a failure,
``KPL_REQUIRE_VECTORS=1`` does the same for the external test vectors, and
``KPL_REQUIRE_BROWSER=1`` for the web explorer's tests in headless Chromium, so
a green CI run always includes them.

Temporary folders (``tmp_path``) live on the machine's RAM file system
(``/dev/shm``) when it has room, and PostgreSQL schemas are reached with
``synchronous_commit=off``: SQLite stores run with ``synchronous=FULL`` and every
commit of a test waited for the disk (an ``fdatasync`` of 3 to 13 ms on a shared
machine, against microseconds on ``/dev/shm``).
What a test proves does not change: a process killed with SIGKILL leaves what
it wrote to the kernel either way; only a power cut would tell the two apart,
and no test makes one. ``--basetemp`` or ``PYTEST_DEBUG_TEMPROOT`` choose
another place.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text

settings.register_profile(
    "kpl", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=50
)
settings.load_profile("kpl")

REPO = Path(__file__).resolve().parents[1]
POSTGRES_ENV = "KPL_TEST_POSTGRES_URL"
#: a RAM file system for temporary folders, used when it has this much room free
RAM_TEMPROOT = Path("/dev/shm")
RAM_TEMPROOT_FREE = 4 << 30


def pytest_configure(config: pytest.Config) -> None:
    """Temporary folders on the RAM file system when there is one with room (see above)."""
    if config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT"):
        return
    try:
        room = shutil.disk_usage(RAM_TEMPROOT).free
    except OSError:
        return
    if room >= RAM_TEMPROOT_FREE and os.access(RAM_TEMPROOT, os.W_OK | os.X_OK):
        # read by pytest when the first temporary folder is made; node processes inherit it
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(RAM_TEMPROOT)


@pytest.fixture
def pg_schemas() -> Iterator[Callable[[], str]]:
    """``new()`` gives a PostgreSQL URL whose search_path is a fresh, empty schema.

    The one PostgreSQL fixture of the suite: the server is the one named by
    ``KPL_TEST_POSTGRES_URL`` (skipped when unset, a failure under
    ``KPL_REQUIRE_POSTGRES=1``); every schema is reached through libpq's
    ``options=-csearch_path=...`` and dropped when the test ends.
    """
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL tests skipped")
    admin = create_engine(base)
    made: list[str] = []

    def new() -> str:
        schema = f"kpl_t_{secrets.token_hex(6)}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        made.append(schema)
        sep = "&" if "?" in base else "?"
        # the test's commits need not wait for the server's disk (see the docstring above)
        return f"{base}{sep}options=-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"

    try:
        yield new
    finally:
        try:
            for schema in made:
                with admin.begin() as conn:
                    # a store left open by a failing test must not hang the teardown
                    conn.execute(text("SET LOCAL lock_timeout = '20s'"))
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            admin.dispose()


@pytest.fixture
def pg_url(pg_schemas: Callable[[], str]) -> str:
    """A PostgreSQL URL on a fresh, empty schema of its own (see ``pg_schemas``)."""
    return pg_schemas()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL where no store exists yet, on each backend (SQLite file, PostgreSQL schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/s.db"
    else:
        yield request.getfixturevalue("pg_url")


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
