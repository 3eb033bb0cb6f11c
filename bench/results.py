"""Machine-readable benchmark results, and the README table made from them.

Each benchmark writes ``bench/out/<name>.json``. This module gathers the
figures that matter to users into ``bench/out/results.json`` under stable
keys (numbers; ``null`` for a figure whose benchmark has never been run), and
with ``--readme FILE`` rewrites the table between the markers
``<!-- bench-results:begin -->`` and ``<!-- bench-results:end -->`` so that the
README shows exactly what the last run of each benchmark measured.

Figures are merged, not replaced wholesale: a figure found in a benchmark's
file takes the new value, and every other figure keeps the value the existing
``results.json`` holds (which is committed). Running one benchmark alone (say
``python -m bench.query``) therefore updates its rows and leaves the others'.

Usage: ``python -m bench.results [--readme README.md]`` (``make bench`` runs it last).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import OUT

__all__ = ["FIGURES", "Figure", "collect", "merge", "render_table", "rewrite_readme"]

BEGIN = "<!-- bench-results:begin -->"
END = "<!-- bench-results:end -->"


@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    source: str  # the benchmark (bench/out/<source>.json)
    path: tuple[str, ...]  # where the number sits in that file
    label: str
    unit: str
    goal: str
    meets: Callable[[float], bool] | None = None
    #: (where, value): the figure counts only from a run whose file holds ``value`` there
    #: (the proof figure only from a run at 1,000,000 records)
    only_if: tuple[tuple[str, ...], float] | None = None


FIGURES: tuple[Figure, ...] = (
    Figure(
        "ingest_sqlite_rps",
        "ingest",
        ("sqlite", "records_per_s"),
        "ingest, SQLite, full validation",
        "records/s",
        ">= 20,000",
        lambda v: v >= 20_000,
    ),
    Figure(
        "ingest_pg_rps",
        "ingest",
        ("postgres", "records_per_s"),
        "ingest, PostgreSQL, full validation",
        "records/s",
        ">= 10,000",
        lambda v: v >= 10_000,
    ),
    Figure(
        "ingest_write_set_ratio",
        "ingest",
        ("sqlite", "ratio_to_write_set"),
        "ingest / bare replay of the store's write set (SQLite)",
        "ratio",
        ">= 0.6",
        lambda v: v >= 0.6,
    ),
    Figure(
        "bytes_per_record",
        "ingest",
        ("sqlite", "bytes_per_record"),
        "store size on disk (SQLite)",
        "bytes/record",
        "-",
    ),
    Figure(
        "commit_parse_share",
        "commitments",
        ("parse_share_of_ingest",),
        "parsing the committed fields / ingest (every node), same run",
        "ratio",
        "< 0.15",
        lambda v: v < 0.15,
    ),
    Figure(
        "commit_disclosure_share",
        "commitments",
        ("disclosure_share_of_ingest",),
        "every disclosure checked and kept (an auditor's node) / ingest, same run",
        "ratio",
        "< 0.15",
        lambda v: v < 0.15,
    ),
    Figure(
        "commit_writer_share",
        "commitments",
        ("writer_share_of_ingest",),
        "the writer's salts and commitments / ingest of the same records, same run",
        "ratio",
        "-",
    ),
    Figure(
        "commit_wire_bytes_per_record",
        "commitments",
        ("wire_bytes_per_record_committed",),
        "record bytes with commitments (in clear: see the text)",
        "bytes/record",
        "-",
    ),
    Figure(
        "commit_disk_bytes_per_record_entitled",
        "commitments",
        ("disk_bytes_per_record_entitled",),
        "store size on disk with every disclosure (SQLite)",
        "bytes/record",
        "-",
    ),
    Figure(
        "proof_gen_ms_1m",
        "ingest",
        ("proofs", "generate_median_ms"),
        "inclusion proof from the store at 1,000,000 records (median)",
        "ms",
        "-",
        only_if=(("proofs", "size"), 1_000_000),
    ),
    Figure(
        "artisanal_purchases_rps",
        "artisanal",
        ("purchases_per_s",),
        "artisanal first sales merged into lots, SQLite, full validation",
        "purchases/s",
        "-",
    ),
    Figure(
        "artisanal_ratio_to_industrial",
        "artisanal",
        ("ratio_to_industrial",),
        "artisanal ingest / industrial ingest, records/s, same run",
        "ratio",
        "-",
    ),
    Figure(
        "history_ratio",
        "query",
        ("throughput", "ratio"),
        "parcel history / trivial endpoint, same app",
        "ratio",
        ">= 0.5",
        lambda v: v >= 0.5,
    ),
    Figure(
        "history_cpu_ratio",
        "query",
        ("throughput", "cpu_ratio"),
        "server CPU per trivial request / per history request",
        "ratio",
        "-",
    ),
    Figure(
        "history_p99_ms",
        "query",
        ("throughput", "p99_ms_at_half_peak"),
        "parcel history p99 at half the peak rate",
        "ms",
        "<= 20",
        lambda v: v <= 20,
    ),
    Figure(
        "bundle50_bytes_sent",
        "query",
        ("bundle", "gzip_bytes"),
        "50-hop bundle as sent (gzip)",
        "bytes",
        "<= 65,536",
        lambda v: v <= 65_536,
    ),
    Figure(
        "bundle50_verify_ms",
        "query",
        ("bundle", "verify_median_ms"),
        "50-hop bundle offline verification (median)",
        "ms",
        "<= 50",
        lambda v: v <= 50,
    ),
    Figure(
        "catchup_ratio",
        "network",
        ("catchup", "ratio_to_ingest"),
        "catch-up of a fresh node / in-process ingest",
        "ratio",
        ">= 0.8",
        lambda v: v >= 0.8,
    ),
    Figure(
        "catchup_peak_rss_mib",
        "network",
        ("catchup", "peak_rss_mib"),
        "peak memory of the node catching up (RSS)",
        "MiB",
        "< 200",
        lambda v: v < 200,
    ),
    Figure(
        "submission_rps",
        "network",
        ("submission", "records_per_s"),
        "submission through POST /v1/records to committed",
        "records/s",
        "-",
    ),
    Figure(
        "propagation16_p99_ms",
        "network",
        ("propagation", "16", "p99_ms"),
        "block propagation p99, 16 nodes",
        "ms",
        "< 1,000",
        lambda v: v < 1_000,
    ),
    Figure(
        "propagation16_cpu_s_per_1k",
        "network",
        ("propagation", "16", "cpu_s_per_node_per_1k_records"),
        "CPU per node per 1,000 records propagated, 16 nodes",
        "s",
        "-",
    ),
    Figure(
        "scale_records",
        "scale",
        ("records",),
        "scale run (BENCH_SCALE): records ingested",
        "records",
        "-",
    ),
    Figure(
        "scale_rate_ratio",
        "scale",
        ("rate_ratio_last_to_first",),
        "scale run: ingest rate at the end / at the start",
        "ratio",
        ">= 0.8 at 10 M",
    ),
    Figure(
        "scale_history_p99_ms",
        "scale",
        ("history_p99_ms_at_end",),
        "scale run: parcel history p99 at the end (in-process)",
        "ms",
        "-",
    ),
    Figure(
        "scale_rss_mib",
        "scale",
        ("rss_mib_at_end",),
        "scale run: resident memory at the end (two stores' state trees)",
        "MiB",
        "-",
    ),
)


def _dig(data: Any, path: tuple[str, ...]) -> float | None:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    if isinstance(data, bool) or not isinstance(data, int | float):
        return None
    return float(data)


def collect(folder: Path = OUT) -> dict[str, float | None]:
    """The figures from the benchmarks' output files in ``folder``."""
    sources: dict[str, Any] = {}
    for fig in FIGURES:
        if fig.source not in sources:
            path = folder / f"{fig.source}.json"
            sources[fig.source] = json.loads(path.read_text()) if path.exists() else None
    out: dict[str, float | None] = {}
    for fig in FIGURES:
        source = sources[fig.source]
        wanted = fig.only_if is None or _dig(source, fig.only_if[0]) == fig.only_if[1]
        out[fig.key] = _dig(source, fig.path) if wanted else None
    return out


def merge(previous: dict[str, Any], found: dict[str, float | None]) -> dict[str, float | None]:
    """Every figure: the new value where a benchmark's file gave one, else the previous."""
    out: dict[str, float | None] = {}
    for fig in FIGURES:
        new = found.get(fig.key)
        old = previous.get(fig.key)
        keep = old if isinstance(old, int | float) and not isinstance(old, bool) else None
        out[fig.key] = new if new is not None else (None if keep is None else float(keep))
    return out


def _previous(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{path}: not JSON ({exc}); fix or remove it") from exc
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: not a JSON object of figures; fix or remove it")
    return data


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "not run"
    if unit == "ratio":
        return f"{value:.2f}"
    if unit in ("ms", "s"):
        return f"{value:.2f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def render_table(results: dict[str, float | None]) -> str:
    lines = [
        "| figure | value | unit | goal | met | key in results.json |",
        "|---|---:|---|---|---|---|",
    ]
    for fig in FIGURES:
        value = results.get(fig.key)
        met = "-" if fig.meets is None or value is None else ("yes" if fig.meets(value) else "no")
        lines.append(
            f"| {fig.label} | {_fmt(value, fig.unit)} | {fig.unit} | {fig.goal} | {met} "
            f"| `{fig.key}` |"
        )
    return "\n".join(lines)


def rewrite_readme(readme: Path, table: str) -> None:
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        raise SystemExit(f"{readme}: the markers {BEGIN} and {END} are missing or out of order")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", type=Path, help="rewrite the results table in this file")
    ap.add_argument("--out", type=Path, default=OUT, help="the benchmarks' output folder")
    args = ap.parse_args(argv)
    path = args.out / "results.json"
    results = merge(_previous(path), collect(args.out))
    args.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    table = render_table(results)
    print(table)
    print(f"written to {path}")
    if args.readme is not None:
        rewrite_readme(args.readme, table)
        print(f"table rewritten in {args.readme}")
    missing = [k for k, v in results.items() if v is None]
    if missing:
        print(f"not run: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
