"""bench.scale: the mix it seals is valid, and its figures come from a real ingest."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scale import SCALES, run, scale_records


def test_scales_are_read_by_name_or_number() -> None:
    assert [scale_records(k) for k in ("100k", "1M", "10m")] == [100_000, 1_000_000, 10_000_000]
    assert scale_records("2500") == 2500
    assert set(SCALES) == {"100k", "1m", "10m"}
    for bad in ("", "ten", "0", "-5", "1g"):
        with pytest.raises(ValueError, match="expected one of 100k, 1m, 10m"):
            scale_records(bad)


@pytest.mark.timeout(240)
def test_a_small_scale_run_ingests_every_record_and_reads_histories(tmp_path: Path) -> None:
    result = run(3000, tmp_path, steps=3)
    points = result["points"]
    assert len(points) == 3
    assert [p["records"] for p in points] == sorted(p["records"] for p in points)
    # each tenth ends with a 20-hop lineage (a register and 20 splits), counted in it
    assert 3000 <= result["records"] <= 3000 + 21
    assert all(p["records_per_s"] > 0 and p["history"]["median_ms"] > 0 for p in points)
    kinds = result["kinds"]
    for kind in ("parcel.register", "parcel.transfer", "parcel.split", "parcel.merge"):
        assert kinds.get(kind, 0) > 0, kinds
    assert sum(kinds.values()) == result["records"] + 16  # and four parties on each chain
    assert result["rate_ratio_last_to_first"] > 0
    # the resident memory is read at each tenth and never shrinks to nothing
    assert all(p["rss_mib"] > 10 for p in points)
    assert result["rss_mib_at_end"] == points[-1]["rss_mib"]
