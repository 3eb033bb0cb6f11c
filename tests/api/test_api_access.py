"""Access to bundles follows the documented rule; text fields refuse invisible
characters; every answer carries ``X-Content-Type-Options: nosniff``.

README: records are committed (format 2), so anyone takes any bundle and
verifies it; an entitled caller's bundle also carries the disclosures the node
holds (an auditor or operator: all; a party: those of the records naming it),
each checked against its commitment at step 7.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from api_support import TOKENS, Example, bearer, serve

from kpledger.api.routes import bundles
from kpledger.cli.example import run_example
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.bundle import serialize_bundle, verify_bundle
from kpledger.ledger.errors import DisclosureError
from kpledger.ledger.store import Store

PARCELS = ["BW-JW-1", "BW-JW-1c", "BW-OR-1", "AE-MIX-1", "EU-AW-1", "IN-CUT-2", "IN-CUT-1"]


def jurisdictions(example: Example) -> dict[str, str]:
    return {p: example.wdc.get(f"/v1/parcels/{p}").json()["jurisdiction"] for p in PARCELS}


def _bundle(example: Example, pid: str, role: str | None) -> dict[str, Any]:
    answer = example.wdc.get(f"/v1/parcels/{pid}/bundle", headers=bearer(role) if role else {})
    assert answer.status_code == 200, answer.text
    doc: dict[str, Any] = answer.json()
    return doc


def test_anyone_takes_any_bundle_and_verifies_it(example: Example) -> None:
    for pid in PARCELS:
        doc = _bundle(example, pid, None)
        assert "disclosures" not in doc  # committed fields only
        verdict = verify_bundle(serialize_bundle(doc), registry=example.store.registry)
        assert (verdict.subject, verdict.disclosures) == (pid, ())
        text = json.dumps(doc)
        for name in ("Debswana Diamond Company", "Antwerp rough importer", "91700000"):
            assert name not in text


def test_an_entitled_callers_bundle_carries_checked_disclosures(example: Example) -> None:
    full = _bundle(example, "IN-CUT-1", "auditor")
    verdict = verify_bundle(serialize_bundle(full), registry=example.store.registry)
    assert len(verdict.disclosures) == len(full["disclosures"]) > 10
    assert {d["path"] for d in full["disclosures"]} >= {"body.name", "body.value", "body.seal"}
    # a party's carries the disclosures of the records naming it, no other party's name
    party = _bundle(example, "IN-CUT-1", "party:IN-JDAV2W3X")
    names = [d["value"] for d in party.get("disclosures", []) if d["path"] == "body.name"]
    assert names == ["Surat cutting works"]
    # a changed value or salt fails at step 7, naming the field
    for change in ({"value": 1}, {"salt": "00" * 32}):
        bad = json.loads(json.dumps(full))
        target = next(d for d in bad["disclosures"] if d["path"] == "body.value")
        target.update(change)
        with pytest.raises(
            DisclosureError, match=r"^step 7 \(disclosures\): disclosures\["
        ) as info:
            verify_bundle(serialize_bundle(bad), registry=example.store.registry)
        assert "do not open its commitment" in str(info.value)


def test_auditors_take_every_bundle(example: Example) -> None:
    for pid in PARCELS:
        answer = example.wdc.get(f"/v1/parcels/{pid}/bundle", headers=bearer("auditor"))
        assert answer.status_code == 200, (pid, answer.text)


def test_a_bundle_not_yet_cosigned_is_a_clear_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parcel whose block no other authority has witnessed yet: after a short wait,
    409, the block and the cosigners named; once two others' blocks witness it, the
    bundle is served."""
    monkeypatch.setattr(bundles, "COSIGN_WAIT_MAX", 0.5)
    net = Network.create(("BW", "EU", "RU"), ("WDC",))
    sc = Scenario(net)
    store = Store.open("sqlite://", net.registry)
    try:
        store.writer.apply(sc.seal("BW", sc.party("BW", "BW-MINE", "miner")))
        store.writer.apply(sc.seal("BW", sc.register("BW", "BW-P1", "BW-MINE", 9_000, 900)))
        store.writer.apply(sc.seal("EU"))
        client = serve("WDC", store, tmp_path, None)
        answer = client.get("/v1/parcels/BW-P1/bundle", headers=bearer("auditor"))
        assert answer.status_code == 409, answer.text
        body = answer.json()
        assert answer.headers["content-type"] == "application/problem+json"
        assert body["type"].endswith("not-yet-cosigned")
        assert "not yet cosigned" in body["detail"]
        assert (body["block"], body["cosigned_by"], body["cosign"]) == (
            {"chain": "BW", "height": 1},
            ["EU"],
            2,
        )
        store.writer.apply(sc.seal("RU"))
        answer = client.get("/v1/parcels/BW-P1/bundle", headers=bearer("auditor"))
        assert answer.status_code == 200, answer.text
    finally:
        store.close()


# ---------------------------------------------------------------- invisible characters

NOW = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def writer() -> Example:
    """An EU node over its own copy of the story: these tests submit records to it."""
    story = run_example("sqlite://")
    signer = story.net.signers["EU"]
    eu = serve("EU", story.store, Path(tempfile.gettempdir()), signer)
    return Example(story.store, eu, eu, story.final_parcel)


def party(example: Example, serial: int, name: str, address: str = "Main Street 1") -> Any:
    return {
        "v": 2,
        "network": example.store.registry.network_id,
        "chain": "EU",
        "kind": "party.register",
        "id": f"access-{serial}",
        "time": NOW,
        "body": {"party": f"EU-ACC{serial}", "name": name, "role": "trader", "address": address},
    }


def submit(example: Example, records: list[Any]) -> list[dict[str, Any]]:
    answer = example.eu.post(
        "/v1/records",
        content=json.dumps({"records": records}).encode(),
        headers={**bearer("operator"), "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


@pytest.mark.parametrize(
    ("char", "name"),
    [
        ("\u202e", "RIGHT-TO-LEFT OVERRIDE"),
        ("\u2066", "LEFT-TO-RIGHT ISOLATE"),
        ("\u200b", "ZERO WIDTH SPACE"),
        ("\ufeff", "ZERO WIDTH NO-BREAK SPACE"),
        ("\u00a0", "NO-BREAK SPACE"),
        ("\u0085", "(unnamed)"),
        ("\x1b", "(unnamed)"),
        ("\U000e0041", "TAG LATIN CAPITAL LETTER A"),
        ("\u3164", "HANGUL FILLER"),
    ],
)
def test_party_names_refuse_control_and_invisible_characters(
    writer: Example, char: str, name: str
) -> None:
    example = writer
    serial = ord(char)
    results = submit(example, [party(example, serial, f"Gem{char}Traders")])
    assert results[0]["status"] == "invalid", results
    assert results[0]["field"] == "body.name"
    assert f"U+{ord(char):04X} {name}" in results[0]["reason"]
    results = submit(example, [party(example, serial + 1, "Gem Traders", f"Dock{char}1")])
    assert results[0]["status"] == "invalid", results
    assert results[0]["field"] == "body.address"


def test_names_in_any_script_are_accepted(writer: Example) -> None:
    example = writer
    names = ["Société Anonyme d'Anvers", "上海钻石交易所", "شركة دبي للألماس", "Алроса"]
    results = submit(example, [party(example, 900 + i, n) for i, n in enumerate(names)])
    assert [r["status"] for r in results] == ["pending"] * len(names), results


# ---------------------------------------------------------------- nosniff


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/v1/heads", None),
        ("GET", "/healthz", None),
        ("GET", "/v1/parcels/IN-CUT-1", None),
        ("GET", "/v1/parcels/XX-NOPE", None),
        ("GET", "/v1/audit/report", None),
        ("GET", "/v1/parcels/IN-CUT-1/bundle", "auditor"),
        ("GET", "/openapi.json", None),
        ("POST", "/v1/records", "operator"),
        ("POST", "/v1/bundles/verify", None),
    ],
)
def test_every_answer_says_nosniff(
    example: Example, method: str, path: str, role: str | None
) -> None:
    headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
    answer = example.eu.request(method, path, headers=headers, content=b"{}")
    assert answer.headers["x-content-type-options"] == "nosniff", (answer.status_code, path)


def test_an_oversized_body_answer_says_nosniff(example: Example) -> None:
    answer = example.eu.post("/v1/gossip", content=b"x" * (2 * 1024 * 1024), headers=bearer("peer"))
    assert answer.status_code == 413
    assert answer.headers["x-content-type-options"] == "nosniff"
