"""The bundle format's conformance vectors (docs/spec/vectors): each verifies or fails
at its stated step with its stated error code, and they are what the generator
(``devtools/spec_vectors.py``) writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kpledger.devtools.spec_vectors import write
from kpledger.ledger.bundle import STEPS, verify_bundle
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.registry import Registry

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "spec" / "vectors"
INDEX: list[dict[str, Any]] = json.loads((VECTORS / "index.json").read_text())


def test_there_are_enough_valid_and_invalid_vectors() -> None:
    assert len(INDEX) >= 60
    valid = [c for c in INDEX if c["want"]["ok"]]
    assert len(valid) >= 5
    steps = {c["want"]["step"] for c in INDEX if not c["want"]["ok"]}
    assert steps >= {1, 2, 3, 4, 5, 6}


@pytest.mark.parametrize("case", INDEX, ids=[c["file"] for c in INDEX])
def test_vector(case: dict[str, Any]) -> None:
    registry = Registry.parse((VECTORS / "registry.json").read_bytes()) if case["pin"] else None
    data = (VECTORS / case["file"]).read_bytes()
    want = case["want"]
    if want["ok"]:
        verdict = verify_bundle(data, registry=registry, parcel=case["parcel"])
        assert verdict.subject == json.loads(data)["subject"]
        return
    with pytest.raises(InvalidData) as info:
        verify_bundle(data, registry=registry, parcel=case["parcel"])
    assert str(info.value).startswith(f"step {want['step']} ({STEPS[want['step'] - 1]}): ")
    assert want["name"] == STEPS[want["step"] - 1]
    assert info.value.code == want["code"], str(info.value)


def test_the_generator_writes_these_files(tmp_path: Path) -> None:
    count = write(tmp_path)
    assert count == len(INDEX)
    assert (tmp_path / "index.json").read_bytes() == (VECTORS / "index.json").read_bytes()
    assert (tmp_path / "registry.json").read_bytes() == (VECTORS / "registry.json").read_bytes()
    for case in INDEX:
        assert (tmp_path / case["file"]).read_bytes() == (VECTORS / case["file"]).read_bytes(), case
