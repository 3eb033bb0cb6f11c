"""The in-process example and the kpl commands around it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kpledger.cli.example import run_example
from kpledger.cli.main import app
from kpledger.ledger.bundle import serialize_bundle
from kpledger.ledger.errors import RestrictedOrigin
from kpledger.ledger.state import CertificateStatus, ParcelStatus
from kpledger.ledger.store.bundles import build_bundle

runner = CliRunner()


def test_example_story_holds(tmp_path: Path) -> None:
    result = run_example(f"sqlite:///{tmp_path / 'x.db'}")
    store = result.store
    try:
        final = store.parcel(result.final_parcel)
        assert final is not None
        assert final.chain == "IN"
        assert final.status is ParcelStatus.ACTIVE
        assert dict(final.origin) == {"BW": 700_000}
        # the mixed Dubai shipment was refused by the EU for its Russian share, and only it
        assert [type(exc) for _, exc in result.refused] == [RestrictedOrigin]
        mixed = store.certificate("AE-2026-0001")
        assert mixed is not None
        assert mixed.status is CertificateStatus.ISSUED
        assert store.parcel("AE-MIX-1") is not None
        assert dict(store.parcel("AE-MIX-1").origin) == {"BW": 450_000, "RU": 900_000}  # type: ignore[union-attr]
        # the lineage reaches both Botswana mines
        ancestors = {e.parent for e in store.lineage.ancestry(result.final_parcel)}
        assert {"EU-AW-1", "BW-JW-1a", "BW-OR-1", "BW-JW-1"} <= ancestors
        assert result.proof_steps > 0
        assert store.verifier.verify().records == sum(
            1 for _ in store.log.iter_causal() for _ in _.records
        )
    finally:
        store.close()


def test_kpl_example_prints_lineage_and_proof() -> None:
    out = runner.invoke(app, ["example"])
    assert out.exit_code == 0, out.output
    assert "rule 9" in out.output
    for text in ("IN-S2", "BW-JW-1", "inclusion proof", "verified"):
        assert text in out.output


def test_keys_generate_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPL_PASSPHRASE", "correct horse battery staple")
    key = tmp_path / "bw.key"
    made = runner.invoke(app, ["keys", "generate", str(key), "--public", str(tmp_path / "bw.pub")])
    assert made.exit_code == 0, made.output
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    shown = runner.invoke(app, ["keys", "show", str(key)])
    assert shown.exit_code == 0
    assert "key_id" in shown.output
    monkeypatch.setenv("KPL_PASSPHRASE", "wrong")
    bad = runner.invoke(app, ["keys", "show", str(key)])
    assert bad.exit_code == 2
    assert "passphrase" in bad.output
    assert "correct horse" not in bad.output


def test_db_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'y.db'}"
    run_example(url).store.close()
    ok = runner.invoke(app, ["db", "verify", "--db", url])
    assert ok.exit_code == 0, ok.output
    assert "verified" in ok.output
    up = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert up.exit_code == 0
    missing = runner.invoke(app, ["db", "verify", "--db", f"sqlite:///{tmp_path / 'none.db'}"])
    assert missing.exit_code == 2
    assert "kpl db upgrade" in missing.output
    assert not (tmp_path / "none.db").exists()
    scheme = runner.invoke(app, ["db", "verify", "--db", "mysql://x"])
    assert scheme.exit_code == 2
    assert "unsupported database URL" in scheme.output


def test_kpl_verify_checks_a_bundle_from_the_example(tmp_path: Path) -> None:
    result = run_example(f"sqlite:///{tmp_path / 'z.db'}")
    try:
        data = serialize_bundle(build_bundle(result.store, result.final_parcel))
    finally:
        result.store.close()
    good = tmp_path / "b.json"
    good.write_bytes(data)
    ok = runner.invoke(app, ["verify", str(good), "--parcel", result.final_parcel])
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "bad.json"
    bad.write_bytes(data.replace(b'"weight":700000', b'"weight":700001', 1))
    refused = runner.invoke(app, ["verify", str(bad), "--parcel", result.final_parcel])
    assert refused.exit_code == 1
    assert "step" in refused.output
