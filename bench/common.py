"""Helpers shared by the benchmarks: timing, medians, fresh databases, output."""

from __future__ import annotations

import json
import math
import os
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

__all__ = [
    "DEFAULT_PG",
    "OUT",
    "fresh_sqlite",
    "median_of",
    "percentile",
    "pg_schema",
    "postgres_url",
    "process_memory",
    "runs",
    "timed",
    "write_result",
]

OUT = Path(__file__).with_name("out")
DEFAULT_PG = "postgresql+psycopg://root@127.0.0.1:5432/test"


def process_memory(pid: int | str = "self", field: str = "VmRSS") -> int | None:
    """Resident memory (bytes) of process ``pid`` (Linux ``/proc``): now (``VmRSS``) or
    its peak (``VmHWM``); None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        return None
    return None


def runs() -> int:
    return max(1, int(os.environ.get("BENCH_RUNS", "3")))


def median_of(fn: Callable[[], float], n: int) -> tuple[float, list[float]]:
    values = [fn() for _ in range(n)]
    return statistics.median(values), values


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; ``inf`` counts as a value."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fresh_sqlite(folder: Path, name: str) -> Path:
    path = folder / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def postgres_url() -> str | None:
    url = os.environ.get("KPL_BENCH_POSTGRES_URL", DEFAULT_PG)
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception:  # noqa: BLE001 - any failure means "no server": report and skip
        return None
    return url


@contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one run; yields a URL that uses it."""
    name = f"kpl_bench_{secrets.token_hex(4)}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{name}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
        engine.dispose()


def write_result(name: str, result: dict[str, Any]) -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return path
