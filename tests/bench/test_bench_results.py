"""bench.results: stable keys from the benchmarks' files, and the README table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.results import BEGIN, END, FIGURES, collect, main, merge, render_table, rewrite_readme


def test_every_figure_is_collected_from_its_file(tmp_path: Path) -> None:
    (tmp_path / "ingest.json").write_text(
        json.dumps({"sqlite": {"records_per_s": 12345.6, "ratio_to_write_set": 0.7}})
    )
    (tmp_path / "network.json").write_text(json.dumps({"propagation": {"16": {"p99_ms": 640}}}))
    got = collect(tmp_path)
    assert set(got) == {f.key for f in FIGURES}
    assert got["ingest_sqlite_rps"] == 12345.6
    assert got["ingest_write_set_ratio"] == 0.7
    assert got["propagation16_p99_ms"] == 640.0
    assert got["history_ratio"] is None  # query.json absent: not run, never a made-up number


def test_table_marks_goals_met_and_missing(tmp_path: Path) -> None:
    results = {f.key: None for f in FIGURES}
    results["ingest_write_set_ratio"] = 0.42
    results["bundle50_verify_ms"] = 12.5
    table = render_table(results)
    row = next(line for line in table.splitlines() if "`ingest_write_set_ratio`" in line)
    assert "| 0.42 |" in row
    assert "| no |" in row
    row = next(line for line in table.splitlines() if "`bundle50_verify_ms`" in line)
    assert "| 12.50 |" in row
    assert "| yes |" in row
    assert table.count("not run") == len(FIGURES) - 2


def test_readme_block_is_rewritten_in_place(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n\nbefore\n{BEGIN}\nold table\n{END}\nafter\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "query.json").write_text(json.dumps({"throughput": {"ratio": 0.61}}))
    assert main(["--out", str(tmp_path / "out"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old table" not in text
    assert text.startswith("# T\n\nbefore\n")
    assert text.endswith(f"{END}\nafter\n")
    assert "| 0.61 |" in text
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["history_ratio"] == 0.61
    assert list(saved) == sorted(f.key for f in FIGURES)


def test_readme_without_markers_is_refused(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        rewrite_readme(readme, "| x |")


def test_one_benchmark_rerun_keeps_the_others_figures(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "ingest.json").write_text(json.dumps({"sqlite": {"records_per_s": 9000.0}}))
    (out / "query.json").write_text(json.dumps({"throughput": {"ratio": 0.4}}))
    assert main(["--out", str(out)]) == 0
    # a later run of the query benchmark alone, in a checkout without ingest.json
    (out / "ingest.json").unlink()
    (out / "query.json").write_text(json.dumps({"throughput": {"ratio": 0.7}}))
    assert main(["--out", str(out)]) == 0
    saved = json.loads((out / "results.json").read_text())
    assert saved["history_ratio"] == 0.7
    assert saved["ingest_sqlite_rps"] == 9000.0
    assert saved["ingest_pg_rps"] is None  # never measured: still null


def test_merge_prefers_new_figures_and_refuses_a_broken_file(tmp_path: Path) -> None:
    found = {f.key: None for f in FIGURES}
    found["history_ratio"] = 0.8
    merged = merge({"history_ratio": 0.3, "history_p99_ms": 12, "scale_records": True}, found)
    assert merged["history_ratio"] == 0.8
    assert merged["history_p99_ms"] == 12.0
    assert merged["scale_records"] is None  # not a number: not kept
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(SystemExit, match="not JSON"):
        main(["--out", str(tmp_path)])


def test_the_proof_figure_counts_only_from_a_run_at_a_million_records(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    at = {"generate_median_ms": 4.7, "size": 1_000_000}
    (out / "ingest.json").write_text(json.dumps({"proofs": at}))
    assert main(["--out", str(out)]) == 0
    smaller = {"generate_median_ms": 1.2, "size": 10_000}
    (out / "ingest.json").write_text(json.dumps({"proofs": smaller}))
    assert collect(out)["proof_gen_ms_1m"] is None
    assert main(["--out", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["proof_gen_ms_1m"] == 4.7
