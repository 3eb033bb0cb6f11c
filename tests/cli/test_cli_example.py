"""The in-process example and the kpl commands around it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kpledger.cli.example import run_example
from kpledger.cli.main import app
from kpledger.cli.story import KP_STORY, final_parcel
from kpledger.ledger.bundle import serialize_bundle
from kpledger.ledger.errors import RestrictedOrigin
from kpledger.ledger.state import CertificateStatus, ParcelStatus
from kpledger.ledger.store.bundles import build_bundle

runner = CliRunner()


def test_example_story_holds(tmp_path: Path) -> None:
    result = run_example(f"sqlite:///{tmp_path / 'x.db'}")
    store = result.store
    try:
        # the one KP story, every chapter of it (RU takes part), step by step
        assert result.final_parcel == final_parcel(KP_STORY) == "IN-CUT-3"
        sealed = [s for s in KP_STORY if s.rule is None]
        assert [line.rsplit(" (", 1)[0] for line in result.steps[: len(sealed)]] == [
            f"{s.chain}: {s.text}" for s in sealed
        ]
        final = store.parcel(result.final_parcel)
        assert final is not None
        assert final.chain == "IN"
        assert final.status is ParcelStatus.ACTIVE
        # Antwerp's assortment (5,000 + 8,000 ct) and Dubai's lot (4,500 ct) cut to
        # 8,500 ct of 17,500, then Udachny's 6,000 ct: hundredths of a carat by origin
        assert dict(final.origin) == {"BW": 850_000, "RU": 600_000}
        # the EU's node refused the mixed Dubai shipment for its Russian share (a dry
        # run, rule 9), and only it; the EU then refused the certificate on the ledger
        assert [(r["chain"], r["rule"], r["code"]) for r in result.refused] == [
            ("EU", "9", RestrictedOrigin.code)
        ]
        mixed = store.certificate("AE-2026-0001")
        assert mixed is not None
        assert mixed.status is CertificateStatus.REFUSED
        assert dict(store.parcel("AE-MIX-1").origin) == {"BW": 300_000, "RU": 900_000}  # type: ignore[union-attr]
        # the lineage reaches both Botswana mines and Udachny
        ancestors = {e.parent for e in store.lineage.ancestry(result.final_parcel)}
        assert {"EU-AW-1", "BW-JW-1a", "BW-OR-1", "BW-JW-1", "RU-UD-1"} <= ancestors
        assert result.proof_steps > 0
        assert store.verifier.verify().records == sum(
            1 for _ in store.log.iter_causal() for _ in _.records
        )
    finally:
        store.close()


def test_kpl_example_prints_lineage_and_proof() -> None:
    out = runner.invoke(app, ["example"])
    assert out.exit_code == 0, out.output
    said = " ".join(out.output.split())
    assert "refused by EU's rules: rule 9 (restricted-origin): parcel AE-MIX-1" in said
    for text in ("IN-CUT-3", "BW-JW-1", "RU-UD-1", "inclusion proof", "verified"):
        assert text in said


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
    bad.write_bytes(data.replace(b'"weight":1450000', b'"weight":1450001', 1))
    refused = runner.invoke(app, ["verify", str(bad), "--parcel", result.final_parcel])
    assert refused.exit_code == 1
    assert "step" in refused.output
