"""The verifier written from docs/spec alone (``independent_verifier.py``) against the
conformance vectors and against real bundles of the project's stories.

Every vector must end at its stated step with its stated code. Every real bundle
(each parcel of the KP example story and of the artisanal Sierra Leone story,
with all of its disclosures) must verify under both verifiers, and both must
find the same jurisdiction, custodian, status, weight, origin and claims: a
difference is a place where docs/spec and the reference code disagree.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kpledger.cli.example import run_example
from kpledger.devtools import artisanal
from kpledger.devtools.replay_vectors import _base
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.artisanal import assessment_body
from kpledger.ledger.bundle import check_bundle, serialize_bundle, verify_bundle
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import InvalidData, NotYetCosigned
from kpledger.ledger.records import Kind, Record
from kpledger.ledger.store import Store
from kpledger.ledger.store.bundles import build_bundle
from kpledger.ledger.store.tables import parcels
from tests.spec.independent_verifier import canonical, verify
from tests.spec.mutations import mutated, random_story

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "spec" / "vectors"
CASES = json.loads((VECTORS / "index.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["file"].split("/")[-1] for c in CASES])
def test_the_independent_verifier_agrees_with_every_vector(case: dict[str, Any]) -> None:
    pinned = canonical(json.loads((VECTORS / "registry.json").read_text())) if case["pin"] else None
    outcome = verify((VECTORS / case["file"]).read_bytes(), pinned, case["parcel"])
    got: dict[str, Any] = {"ok": True}
    if not outcome.ok:
        got = {"ok": False, "step": outcome.step, "name": outcome.name, "code": outcome.code}
    assert got == case["want"], outcome.message


def test_the_vectors_cover_valid_and_invalid_cases_of_every_step() -> None:
    steps = {c["want"].get("step") for c in CASES}
    assert steps == {None, 1, 2, 3, 4, 5, 6}
    assert sum(c["want"]["ok"] for c in CASES) >= 9


def _compare(store: Store, registry: bytes) -> tuple[list[str], int]:
    """Verify every parcel's bundle with both verifiers; the parcels compared and how
    many of their bundles carried disclosures."""
    with store.engine.connect() as conn:
        ids = sorted(r[0] for r in conn.execute(select(parcels.c.id)))
    compared = []
    disclosing = 0
    for pid in ids:
        try:
            doc = build_bundle(store, pid, disclose=lambda _r: True)
        except NotYetCosigned:
            continue
        data = serialize_bundle(doc)
        reference = check_bundle(data, registry=registry, parcel=pid)
        mine = verify(data, registry, pid)
        assert reference.ok, (pid, reference.error)
        assert mine.ok, (pid, mine.message)
        assert reference.verdict is not None
        assert mine.state is not None
        v, s = reference.verdict, mine.state
        assert (s["chain"], s["custodian"], s["status"], s["weight"], s["hs"]) == (
            v.chain,
            v.custodian,
            v.status.value,
            v.weight,
            v.hs,
        ), pid
        assert s["origin"] == dict(v.origin), pid
        assert s["claims"] == dict(v.claims), pid
        compared.append(pid)
        # a spoiled disclosure fails both at step 7
        if "disclosures" in doc:
            disclosing += 1
            bad = copy.deepcopy(doc)
            bad["disclosures"][0]["salt"] = "00" * 32
            spoiled = serialize_bundle(bad)
            assert check_bundle(spoiled, registry=registry).step == "disclosures"
            assert (verify(spoiled, registry).step, verify(spoiled, registry).code) == (
                7,
                "disclosure-mismatch",
            )
    print(f"{len(compared)} of {len(ids)} parcels compared, {disclosing} with disclosures")
    return compared, disclosing


@pytest.fixture(scope="module")
def example_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    result = run_example(f"sqlite:///{tmp_path_factory.mktemp('spec') / 'example.db'}")
    yield result.store
    result.store.close()


def test_real_bundles_of_the_example_story_agree(example_store: Store) -> None:
    registry = example_store.registry.to_bytes()
    compared, disclosing = _compare(example_store, registry)
    assert len(compared) >= 8, compared
    assert disclosing >= 1


@pytest.fixture(scope="module")
def artisanal_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    net = Network.create(("SL", "EU", "BW"), ("WDC",))
    sc = Scenario(net)
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('spec') / 'sl.db'}", net.registry)

    def seal(chain: str, *records: Record) -> None:
        store.writer.apply(sc.seal(chain, *records))

    artisanal.sierra_leone(sc, seal)
    artisanal.smuggling(sc, seal)
    for chain in ("EU", "BW", "SL", "EU", "BW"):  # later blocks witness the story's: cosigned
        seal(chain)
    yield store
    store.close()


def test_real_bundles_of_the_artisanal_story_agree(artisanal_store: Store) -> None:
    registry = artisanal_store.registry.to_bytes()
    compared, _ = _compare(artisanal_store, registry)
    assert any(p.startswith("SL-") for p in compared), compared
    assert len(compared) >= 4, compared


def test_real_bundles_across_governance_and_key_changes_agree(tmp_path: Path) -> None:
    """Key events of every kind (key.rotate, KP's key.replace and member.admit), a
    suspension and reinstatement, and a self-assessment: both verifiers learn the same
    keys (step 3e) and replay the same state."""
    sc = Scenario(Network.create(("BW", "EU", "RU"), ("WDC",)))
    store = Store.open(f"sqlite:///{tmp_path / 'keys.db'}", sc.net.registry)

    def seal(chain: str, *records: Record) -> None:
        store.writer.apply(sc.seal(chain, *records))

    seal("BW", sc.party("BW", "BW-MINE", "miner"), sc.party("BW", "BW-T", "trader"))
    seal("BW", sc.register("BW", "BW-P1", "BW-MINE", 100_000, 13_400_000))
    head = sc.ledger.state.head("BW")
    assert head is not None
    replaced = Ed25519Signer.from_seed(b"bw-replaced".ljust(32, b"."))
    body = {"code": "BW", "key": replaced.public.hex(), "from_height": head.height + 1}
    seal("KP", sc.governance(Kind.KEY_REPLACE, {**body, "reason": "lost"}))
    sc.net.signers["BW"] = replaced
    seal(
        "EU", sc.record("EU", Kind.DIAGNOSTIC_ASSESS, assessment_body("x.y", 2, "e", "2026-03-02"))
    )
    seal("BW", sc.transfer("BW", "BW-P1", "BW-T"))
    rotated = Ed25519Signer.from_seed(b"bw-rotated".ljust(32, b"."))
    seal("BW", sc.record("BW", Kind.KEY_ROTATE, {"key": rotated.public.hex()}))
    sc.net.signers["BW"] = rotated
    newcomer = Ed25519Signer.from_seed(b"na-admitted".ljust(32, b"."))
    admit = {"code": "NA", "name": "Namibia", "role": "authority", "url": "http://na.invalid"}
    seal("KP", sc.governance(Kind.MEMBER_ADMIT, {**admit, "key": newcomer.public.hex()}))
    seal("KP", sc.governance(Kind.MEMBER_SUSPEND, {"code": "RU", "reason": "review"}))
    seal("KP", sc.governance(Kind.MEMBER_REINSTATE, {"code": "RU", "reason": "cleared"}))
    seal("BW", sc.split("BW", "BW-P1", [("BW-P2", 60_000, 1), ("BW-P3", 40_000, 2)]))
    for chain in ("EU", "RU", "BW", "EU", "RU"):
        seal(chain)
    compared, _ = _compare(store, store.registry.to_bytes())
    assert {"BW-P1", "BW-P2", "BW-P3"} <= set(compared)
    doc = build_bundle(store, "BW-P2")
    kinds = {r["record"]["kind"] for r in doc["records"]}
    assert {"key.replace", "key.rotate", "member.admit", "member.suspend"} <= kinds
    store.close()


def _reference(data: bytes, registry: bytes | None, parcel: str | None) -> Any:
    """The reference verifier's outcome: None when it verifies, else (step, code)."""
    try:
        verify_bundle(data, registry=registry, parcel=parcel)
    except InvalidData as exc:
        found = re.match(r"step (\d+) ", str(exc))
        return int(found.group(1)) if found else str(exc), exc.code
    return None


def _hex_paths(x: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The paths of every binary value (64 or 128 lower-case hex digits) in a document."""
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _hex_paths(v, (*path, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _hex_paths(v, (*path, i))
    elif isinstance(x, str) and len(x) in (64, 128) and re.fullmatch("[0-9a-f]+", x):
        yield path


def test_a_binary_field_of_the_wrong_length_is_schema_whatever_the_field() -> None:
    """bundle.md section 1: every binary field of a valid vector one byte short, one byte
    long, or a digit short fails with `schema`, at step 1 (step 2 inside the registry),
    in both verifiers; a bad digit at the right length with `encoding`."""
    case = next(c for c in CASES if c["want"]["ok"] and c["pin"])
    pinned = canonical(json.loads((VECTORS / "registry.json").read_text()))
    original = json.loads((VECTORS / case["file"]).read_bytes())
    paths = list(_hex_paths(original))
    assert {p[0] for p in paths} >= {"registry", "headers", "records"}
    fields = set()
    for path in paths:
        fields.add(".".join(str(p) for p in path if not isinstance(p, int)))
        step = 2 if path[0] == "registry" else 1
        for change, code in (
            (lambda v: v[:-2], "schema"),
            (lambda v: v + "ab", "schema"),
            (lambda v: v[:-1], "schema"),
            (lambda v: v[:-1] + "g", "encoding"),
        ):
            doc = copy.deepcopy(original)
            parent = doc
            for k in path[:-1]:
                parent = parent[k]
            parent[path[-1]] = change(parent[path[-1]])
            data = canonical(doc)
            o = verify(data, pinned, case["parcel"])
            assert _reference(data, pinned, case["parcel"]) == (step, code), path
            assert (o.step, o.code) == (step, code), (path, o.message)
    # hashes, keys, signatures, key ids, proof hashes, witnessed hashes, the network id
    assert len(fields) >= 10, sorted(fields)


def test_both_verifiers_judge_mutated_vectors_alike() -> None:
    """Each valid vector with one field changed, added or removed: same step, same code
    (a binary field of the wrong length is `schema` for both, whatever the field)."""
    rng = random.Random(14)
    pinned = canonical(json.loads((VECTORS / "registry.json").read_text()))
    valid = [c for c in CASES if c["want"]["ok"]]
    outcomes = set()
    for _ in range(300):
        case = rng.choice(valid)
        doc, change = mutated(json.loads((VECTORS / case["file"]).read_bytes()), rng)
        try:
            data = canonical(doc)
        except ValueError:
            continue
        registry = pinned if case["pin"] else None
        reference = _reference(data, registry, case["parcel"])
        o = verify(data, registry, case["parcel"])
        mine = None if o.ok else (o.step, o.code)
        assert reference == mine, (case["file"], change, reference, o.message)
        outcomes.add(reference)
    assert len(outcomes) >= 8, outcomes  # the mutations reach many steps and codes


def test_both_verifiers_replay_random_stories_alike() -> None:
    """Random stories sealed without the rules: the same step and code, or the same state."""
    rng = random.Random(15)
    codes = set()
    for _ in range(60):
        data, subject, steps = random_story(rng)
        reference = _reference(data, None, subject)
        o = verify(data, None, subject)
        mine = None if o.ok else (o.step, o.code)
        assert reference == mine, (steps, reference, o.message)
        if o.ok:
            verdict = check_bundle(data, parcel=subject).verdict
            assert verdict is not None
            state = o.state
            assert state is not None
            assert (state["chain"], state["status"], state["weight"], state["origin"]) == (
                verdict.chain,
                verdict.status.value,
                verdict.weight,
                dict(verdict.origin),
            ), steps
        codes.add(reference)
    assert None in codes
    assert len(codes) >= 5, codes


def _cell(partner: str | None, count: int, value: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"carats": 100}
    out.update({"partner": partner, "certificates": count} if partner else {"parcels": count})
    if value is not None:
        out["value"] = value
    return out


STATS = {
    "valid": ([_cell("EU", 3, 500)], 1, None, "2025-Q4", None),
    "small-cell-with-usd": ([], 1, 5, "2025-Q4", "stats-cell-disclosed"),
    "large-cell-without-usd": ([_cell("EU", 4)], 1, None, "2025-Q4", "stats-cell-disclosed"),
    "trades-with-itself": ([_cell("BW", 1)], 1, None, "2025-Q4", "stats-report-invalid"),
    "quarter-not-over": ([], 1, None, "2026-Q1", "stats-report-invalid"),
    "empty-trade-cell": ([_cell("EU", 0)], 1, None, "2025-Q4", "stats-report-invalid"),
}


@pytest.mark.parametrize("name", sorted(STATS))
def test_both_verifiers_judge_stats_reports_alike(name: str) -> None:
    """bundle.md 8.5 ``stats.report`` (rules S1-S2), sealed without the rules."""
    exports, parcels, value, quarter, code = STATS[name]
    body = {
        "quarter": quarter,
        "production": _cell(None, parcels, value),
        "exports": exports,
        "imports": [],
    }
    raw = _base(3)
    raw.seal("BW", raw.sc.record("BW", Kind.STATS_REPORT, body, record_id=f"stats-{quarter}"))
    data = raw.bundle("BW-P1")
    o = verify(data, None, "BW-P1")
    want = None if code is None else (5, code)
    assert _reference(data, None, "BW-P1") == want
    assert (None if o.ok else (o.step, o.code)) == want, o.message
