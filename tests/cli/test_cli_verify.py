"""``kpl verify``: a trader checks a provenance bundle file offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.example import run_example
from cli.verify import verify_command
from ledger.bundle import serialize_bundle
from ledger.store.bundles import build_bundle
from ledger.workload import Network


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The IN-S2 bundle, the genesis registry (pretty-printed, as people keep it), a tampered
    bundle and another network's registry, as files."""
    folder = tmp_path_factory.mktemp("verify")
    result = run_example(f"sqlite:///{folder / 'example.db'}")
    try:
        doc = build_bundle(result.store, "IN-S2")
        registry = result.store.registry.to_bytes()
    finally:
        result.store.close()
    paths = {name: folder / f"{name}.json" for name in ("bundle", "registry", "tampered", "other")}
    paths["bundle"].write_bytes(serialize_bundle(doc))
    paths["registry"].write_text(json.dumps(json.loads(registry), indent=2))
    heavier = json.loads(serialize_bundle(doc))
    next(r for r in heavier["records"] if r["record"]["kind"] == "parcel.register")["record"][
        "body"
    ]["weight"] += 1
    paths["tampered"].write_bytes(serialize_bundle(heavier))
    other = Network.create(("BW", "RU", "AE", "EU", "IN"), ("WDC",), seed=9).registry
    paths["other"].write_bytes(other.to_bytes())
    return paths


def test_good_bundle(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_command(files["bundle"], None) == 0
    out = capsys.readouterr().out
    assert "verified" in out
    assert "IN-S2  7,000.00 ct" in out
    assert "BW 100.0% (7,000.00 ct)" in out
    assert "under IN, custodian IN-SURAT1, active" in out
    for text in ("Jwaneng", "Orapa", "EU-AW-1", "BW-2026-0001 BW -> EU", "EU-2026-0001 EU -> IN"):
        assert text in out
    assert "no --registry given" in out


def test_good_bundle_with_pinned_registry_and_parcel(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_command(files["bundle"], files["registry"], "IN-S2") == 0
    out = capsys.readouterr().out
    assert "registry: pinned" in out
    assert "no --registry given" not in out


def test_tampered_bundle(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_command(files["tampered"], files["registry"]) == 1
    captured = capsys.readouterr()
    assert "NOT verified" in captured.err
    assert "step 4 (inclusion): record BW/2 inclusion proof" in captured.err
    assert "verified:" not in captured.out


def test_missing_file(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_command(tmp_path / "nope.json", None) == 2
    assert "does not exist" in capsys.readouterr().err
    assert verify_command(files["bundle"], tmp_path / "genesis.json") == 2
    assert "registry file" in capsys.readouterr().err


def test_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bundle.json"
    path.write_bytes(b"\x89PNG not a bundle")
    assert verify_command(path, None) == 1
    err = capsys.readouterr().err
    assert "step 1 (parse)" in err
    assert "not valid JSON" in err


def test_registry_that_differs(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_command(files["bundle"], files["other"]) == 1
    err = capsys.readouterr().err
    assert "step 2 (registry)" in err
    assert "differs from the trusted registry" in err


def test_registry_file_that_is_no_registry(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_command(files["bundle"], files["bundle"]) == 2
    assert "is not a valid signed genesis registry" in capsys.readouterr().err


def test_bundle_of_another_parcel(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_command(files["bundle"], files["registry"], "IN-S1") == 1
    assert "step 6 (subject): subject: the bundle is about parcel IN-S2" in capsys.readouterr().err
