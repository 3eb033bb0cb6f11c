"""Conformance vectors of the bundle format (docs/spec/bundle.md): ``docs/spec/vectors/``.

Run ``python -m kpledger.devtools.spec_vectors docs/spec/vectors`` to write them; the output
is deterministic (fixed keys, fixed times), and ``tests/ledger/test_spec_vectors.py``
checks both that the files are what this generator writes and that the verifier
reaches the expected verdict on each.

Layout: ``registry.json`` (the registry to pin), ``index.json`` (one entry per
case: ``file``, ``desc``, ``parcel`` (the parcel to pin, or null), ``pin``
(whether to pin ``registry.json``), and ``want``: ``{"ok": true}`` or
``{"ok": false, "step": N, "name": "<step>", "code": "<error code>"}``), and
``bundles/NNN-name.json``, each a bundle's exact bytes (invalid ones are not
always canonical JSON: that is what some of them test).

A vector's expected step and code are stated here, per mutation, and the
generator refuses to write a vector the verifier does not judge that way. The
vectors of step 5 (replay) come from ``devtools.replay_vectors``: records the
story's bundle needs left out (``LEFT_OUT``), and chains sealed without the
rules, one broken rule each. The vectors of step 6 leave out a record of the
subject that only its checkpoints' state reveals, or change its state proofs.

One concept, a little over 500 lines: the list of conformance cases, one
statement per case, read top to bottom in the order of the verification steps.
"""

from __future__ import annotations

import copy
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kpledger.devtools.replay_vectors import omission_cases, replay_cases
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.bundle import STEPS, serialize_bundle, verify_bundle
from kpledger.ledger.canonical import Tag, canonical_bytes
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.records import Record
from kpledger.ledger.store import Store
from kpledger.ledger.store.bundles import build_bundle

__all__ = ["LEFT_OUT", "Case", "cases", "main", "write"]

Doc = dict[str, Any]
Edit = Callable[[Doc], None]

#: records of the story's bundle of BW-P2 left out, one at a time, and the replay's error
LEFT_OUT = [
    ("replay-omit-exporter", "party.register", "party", "BW-EXP", "inactive-party"),
    ("replay-omit-registration", "parcel.register", "parcel", "BW-P1", "unknown-reference"),
    ("replay-omit-split", "parcel.split", "parcel", "BW-P1", "unknown-reference"),
    ("replay-omit-transfer", "parcel.transfer", "parcel", "BW-P2", "certificate-invalid"),
    ("replay-omit-issue", "certificate.issue", "number", "BW-C1", "unknown-reference"),
]


@dataclass(frozen=True)
class Case:
    name: str
    desc: str
    data: bytes
    parcel: str | None
    pin: bool
    step: int | None  # None: valid
    code: str | None


@dataclass
class _Story:
    net: Network
    store: Store
    parcels: tuple[str, ...]


def _story() -> _Story:
    net = Network.create(("BW", "EU", "RU"), ("WDC",), seed=14)
    sc = Scenario(net)
    store = Store.open("sqlite://", net.registry)

    def seal(chain: str, *records: Record) -> None:
        store.writer.apply(sc.seal(chain, *records))

    seal("BW", sc.party("BW", "BW-MINE", "miner"), sc.party("BW", "BW-EXP", "exporter"))
    seal("EU", sc.party("EU", "EU-IMP", "importer"))
    seal("RU", sc.party("RU", "RU-MINE", "miner"))
    seal("BW", sc.register("BW", "BW-P1", "BW-MINE", 100_000, 13_400_000))
    seal("RU", sc.register("RU", "RU-P1", "RU-MINE", 20_000, 1_900_000))
    seal("EU")  # a heartbeat: BW's next headers witness EU/2
    seal(
        "BW", sc.split("BW", "BW-P1", [("BW-P2", 60_000, 8_040_000), ("BW-P3", 40_000, 5_360_000)])
    )
    seal("BW", sc.transfer("BW", "BW-P2", "BW-EXP"))
    seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-EXP", ["BW-P2"]))
    seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP"))
    seal("RU")
    seal("BW")
    seal("EU")
    # BW-P3 leaves for RU, which has not acted on it: its bundle proves that absence
    seal("BW", sc.transfer("BW", "BW-P3", "BW-EXP"))
    seal("BW", sc.issue("BW", "BW-C2", "RU", "BW-EXP", ["BW-P3"]))
    seal("RU")
    seal("EU")
    seal("BW")
    seal("RU")
    return _Story(net, store, ("BW-P1", "BW-P2", "BW-P3", "RU-P1", "BW-MINE-NONE"))


def _header(doc: Doc, chain: str, height: int) -> Doc:
    found: Doc = next(
        h
        for h in doc["headers"]
        if h["header"]["chain"] == chain and h["header"]["height"] == height
    )
    return found


def _resign(signed: Doc, signer: Ed25519Signer) -> None:
    signed["header"]["key_id"] = signer.public.key_id
    signed["sig"] = signer.sign(Tag.SIG_HEADER, canonical_bytes(signed["header"])).hex()


def _flip(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


def _update(part: str, i: int, inner: str, **values: Any) -> Edit:
    def edit(d: Doc) -> None:
        d[part][i][inner].update(values)

    return edit


def _flip_sig(chain: str, height: int) -> Edit:
    def edit(d: Doc) -> None:
        signed = _header(d, chain, height)
        signed["sig"] = _flip(signed["sig"])

    return edit


def _flip_proof(i: int) -> Edit:
    def edit(d: Doc) -> None:
        proof = d["records"][i]["proof"]
        proof[0] = _flip(proof[0])

    return edit


def cases() -> list[Case]:  # noqa: PLR0915 - one statement per case: the list of vectors
    s = _story()
    try:
        base = build_bundle(s.store, "BW-P2")
        out: list[Case] = []
        # valid: every parcel's bundle, pinned and not
        for pid in s.parcels[:4]:
            data = serialize_bundle(build_bundle(s.store, pid))
            out.append(Case(f"valid-{pid}", f"the bundle of {pid}", data, pid, True, None, None))
            out.append(
                Case(
                    f"valid-{pid}-carried",
                    f"{pid}, registry not pinned",
                    data,
                    None,
                    False,
                    None,
                    None,
                )
            )

        def bad(name: str, desc: str, step: int, code: str, edit: Edit, **kw: Any) -> None:
            doc = copy.deepcopy(base)
            edit(doc)
            data = kw.get("raw") or serialize_bundle(doc)
            out.append(Case(name, desc, data, kw.get("parcel", "BW-P2"), True, step, code))

        raw = serialize_bundle(base)
        # step 1: parse
        bad(
            "parse-whitespace",
            "a space after the first brace",
            1,
            "encoding",
            lambda d: None,
            raw=b"{ " + raw[1:],
        )
        bad(
            "parse-trailing",
            "bytes after the document",
            1,
            "encoding",
            lambda d: None,
            raw=raw + b"x",
        )
        bad(
            "parse-format",
            "the format before state commitments",
            1,
            "schema",
            lambda d: d.update(format="kpledger-bundle/1"),
        )
        bad(
            "parse-unknown-field",
            "an unknown top-level field",
            1,
            "schema",
            lambda d: d.update(extra=1),
        )
        bad(
            "parse-unsorted-headers",
            "headers out of order",
            1,
            "schema",
            lambda d: d["headers"].reverse(),
        )
        bad(
            "parse-duplicate-record",
            "one record twice",
            1,
            "schema",
            lambda d: d["records"].insert(0, d["records"][0]),
        )
        bad("parse-no-records", "no records", 1, "schema", lambda d: d.update(records=[]))
        bad(
            "parse-bad-subject",
            "a subject that is no parcel id",
            1,
            "schema",
            lambda d: d.update(subject="no id"),
        )
        bad(
            "parse-proof-hex",
            "a proof hash that is not hex",
            1,
            "encoding",
            lambda d: d["records"][1]["proof"].__setitem__(0, "zz" * 32),
        )
        # a binary field's length is its schema (bundle.md section 1), short or long alike
        bad(
            "parse-proof-short",
            "a proof hash one byte short",
            1,
            "schema",
            lambda d: d["records"][1]["proof"].__setitem__(0, d["records"][1]["proof"][0][2:]),
        )
        bad(
            "parse-proof-long",
            "a proof hash one byte long",
            1,
            "schema",
            lambda d: d["records"][1]["proof"].__setitem__(0, d["records"][1]["proof"][0] + "00"),
        )
        bad(
            "parse-header-prev-short",
            "a header's prev one digit short",
            1,
            "schema",
            lambda d: d["headers"][1]["header"].update(prev=d["headers"][1]["header"]["prev"][1:]),
        )
        bad(
            "parse-header-sig-long",
            "a header's signature one byte long",
            1,
            "schema",
            lambda d: d["headers"][0].update(sig=d["headers"][0]["sig"] + "00"),
        )
        # step 2: registry
        bad(
            "registry-sig-flipped",
            "a registry signature changed",
            2,
            "signature",
            lambda d: d["registry"]["sigs"][0].update(sig=_flip(d["registry"]["sigs"][0]["sig"])),
        )
        bad(
            "registry-threshold",
            "the threshold lowered after signing",
            2,
            "threshold",
            lambda d: d["registry"]["registry"]["governance"].update(threshold=1),
        )
        bad(
            "registry-sig-twice",
            "one key signs twice",
            2,
            "signature",
            lambda d: d["registry"]["sigs"].append(d["registry"]["sigs"][0]),
        )
        other = Network.create(("BW", "EU", "RU"), ("WDC",), seed=15).registry
        bad(
            "registry-not-pinned-one",
            "the registry of another network",
            2,
            "signature",
            lambda d: d.update(registry=json.loads(other.to_bytes())),
        )
        foreign = "ee" * 32
        for i, r in enumerate(base["records"]):
            bad(
                f"registry-record-network-{i}",
                f"record {r['record']['chain']}/{r['index']} names another network",
                2,
                "block",
                _update("records", i, "record", network=foreign),
            )
        for i, h in enumerate(base["headers"][:6]):
            bad(
                f"registry-header-network-{i}",
                f"header {h['header']['chain']}/{h['header']['height']} names another network",
                2,
                "block",
                _update("headers", i, "header", network=foreign),
            )
        # step 3: headers
        signers = s.net.signers
        for chain in ("BW", "EU", "RU"):
            heights = sorted(
                h["header"]["height"] for h in base["headers"] if h["header"]["chain"] == chain
            )
            for height in heights:
                bad(
                    f"headers-sig-{chain}-{height}",
                    f"the signature of {chain}/{height} changed",
                    3,
                    "signature",
                    _flip_sig(chain, height),
                )
        bw = sorted(h["header"]["height"] for h in base["headers"] if h["header"]["chain"] == "BW")

        # two consecutive BW headers, the lower one witnessing EU above height 1
        pairs = [
            (a, b)
            for a, b in itertools.pairwise(bw)
            if b == a + 1
            and any(
                w["chain"] == "EU" and w["height"] > 1
                for w in _header(base, "BW", a)["header"]["witness"]
            )
        ]
        assert pairs, "the story has no BW header witnessing EU above 1"
        eu1 = s.store.header("EU", 1)
        assert eu1 is not None

        def witness_back(d: Doc) -> None:
            top = _header(d, "BW", pairs[0][1])
            eu = next(w for w in top["header"]["witness"] if w["chain"] == "EU")
            eu["height"] = 1
            eu["hash"] = eu1.hash.hex()
            _resign(top, signers["BW"])

        bad(
            "headers-witness-back",
            "BW's last header witnesses EU lower than before",
            3,
            "block",
            witness_back,
        )

        def witness_drop(d: Doc) -> None:
            top = _header(d, "BW", bw[-1])
            top["header"]["witness"] = [w for w in top["header"]["witness"] if w["chain"] != "EU"]
            _resign(top, signers["BW"])

        bad("headers-witness-dropped", "BW's last header drops EU", 3, "block", witness_drop)

        def wrong_key(d: Doc) -> None:
            _resign(_header(d, "BW", bw[-1]), signers["WDC"])

        bad(
            "headers-wrong-key",
            "BW's last header signed by an auditor's key",
            3,
            "block",
            wrong_key,
        )

        def forked(d: Doc) -> None:
            h = _header(d, "BW", bw[0])
            h["header"]["time"] = h["header"]["time"][:-3] + "59Z"
            _resign(h, signers["BW"])

        bad("headers-fork", "BW's first header re-signed with another time", 3, "block", forked)

        def no_cosigners(d: Doc) -> None:
            d["headers"] = [h for h in d["headers"] if h["header"]["chain"] in ("BW",)]
            d["records"] = [r for r in d["records"] if r["record"]["chain"] == "BW"]

        bad(
            "headers-not-cosigned",
            "only BW's headers: nobody else witnesses them",
            3,
            "not-cosigned",
            no_cosigners,
            parcel="BW-P2",
        )

        def missing_before(d: Doc) -> None:
            d["headers"].remove(_header(d, "BW", bw[1]))

        bad(
            "headers-missing-block",
            "a record's preceding header left out",
            3,
            "schema",
            missing_before,
        )
        # step 4: inclusion
        for i, r in enumerate(base["records"]):
            if r["proof"]:
                bad(
                    f"inclusion-proof-{i}",
                    f"record {r['record']['chain']}/{r['index']}: a proof hash changed",
                    4,
                    "inclusion-proof",
                    _flip_proof(i),
                )
        for i, r in enumerate(base["records"]):
            if r["record"]["kind"] in ("parcel.register", "parcel.split", "parcel.transfer"):
                bad(
                    f"inclusion-field-{i}",
                    f"record {r['record']['chain']}/{r['index']}: its time changed",
                    4,
                    "inclusion-proof",
                    _update("records", i, "record", time="2026-01-01T00:00:00Z"),
                )
        # step 5: replay. A record the bundle's other records need, left out ...
        for name, desc, doc, code in omission_cases(base, LEFT_OUT):
            out.append(Case(name, desc, serialize_bundle(doc), "BW-P2", True, 5, code))
        # ... and chains sealed without the rules, one broken rule each (own registry)
        for c in replay_cases():
            step = None if c.code is None else 5
            out.append(Case(c.name, c.desc, c.data, c.parcel, False, step, c.code))
        # step 6: subject
        bad(
            "subject-pin",
            "the bundle is about another parcel than the one pinned",
            6,
            "schema",
            lambda d: None,
            parcel="BW-P3",
        )
        bad(
            "subject-unknown",
            "a subject no record creates",
            6,
            "unknown-reference",
            lambda d: d.update(subject="BW-NONE"),
            parcel=None,
        )
        _state_cases(s, base, out)
        _check(out, s.net)
        return out
    finally:
        s.store.close()


def _state_cases(s: _Story, base: Doc, out: list[Case]) -> None:
    """Step 6: the subject's state against its checkpoints (docs/spec/bundle.md, 6 and 7)."""

    def bad(name: str, desc: str, step: int, code: str, edit: Edit, of: Doc = base) -> None:
        doc = copy.deepcopy(of)
        edit(doc)
        parcel = doc["subject"] if isinstance(doc.get("subject"), str) else None
        out.append(Case(name, desc, serialize_bundle(doc), parcel, True, step, code))

    spent = build_bundle(s.store, "BW-P1")
    # the attack: the record that spent a parcel, or the one that closed its certificate
    for case, kind, key, value, of in (
        ("state-omit-split", "parcel.split", "parcel", "BW-P1", spent),
        ("state-omit-confirm", "certificate.confirm", "number", "BW-C1", base),
    ):
        (name, desc, doc, _), *_ = omission_cases(of, [(case, kind, key, value, "")])
        out.append(
            Case(name, desc, serialize_bundle(doc), of["subject"], True, 6, "record-omitted")
        )

    def older(d: Doc) -> None:
        d["state"][0]["height"] -= 1

    bad(
        "state-older",
        "BW's state proven at a header below its newest cosigned one",
        6,
        "record-omitted",
        older,
    )
    bad("state-none", "no state proofs", 6, "record-omitted", lambda d: d.update(state=[]))

    def drop_eu(d: Doc) -> None:
        d["state"] = [x for x in d["state"] if x["chain"] != "EU"]

    bad(
        "state-no-destination",
        "no state proof of the certificate's destination",
        6,
        "record-omitted",
        drop_eu,
    )

    def count(d: Doc) -> None:
        d["state"][0]["slot"]["count"] += 1

    bad("state-count", "the slot's count changed", 6, "state-proof", count)

    def path(d: Doc) -> None:
        d["state"][0]["slot"]["path"][0] = _flip(d["state"][0]["slot"]["path"][0])

    bad("state-path", "a hash of the slot's path flipped", 6, "state-proof", path)

    def latest(d: Doc) -> None:
        d["state"][0]["slot"]["record"] = d["records"][0]["proof"][0]

    bad("state-latest", "the slot's latest record replaced", 6, "state-proof", latest)

    def extra(d: Doc) -> None:
        d["state"].append({**d["state"][-1], "chain": "RU"})

    bad(
        "state-extra",
        "a state proof of a chain that never acted on the subject",
        6,
        "schema",
        extra,
    )

    def unsorted(d: Doc) -> None:
        d["state"].reverse()

    bad("state-unsorted", "state proofs not sorted by chain", 1, "schema", unsorted)

    def header_v1(d: Doc) -> None:
        d["headers"][0]["header"]["v"] = 1

    bad("state-header-v1", "a header of format 1", 1, "unsupported-version", header_v1)


def _check(out: list[Case], net: Network) -> None:
    """Every case is judged as it says, or the generator stops."""
    for c in out:
        try:
            verify_bundle(c.data, registry=net.registry if c.pin else None, parcel=c.parcel)
        except InvalidData as exc:
            step = getattr(exc, "bundle_step", None)
            if (step, exc.code) != (c.step, c.code):
                raise AssertionError(f"{c.name}: got step {step} {exc.code}: {exc}") from exc
            continue
        if c.step is not None:
            raise AssertionError(f"{c.name}: verified, expected step {c.step}")


def write(folder: Path) -> int:
    """Write the vectors into ``folder``; return how many."""
    net = Network.create(("BW", "EU", "RU"), ("WDC",), seed=14)
    all_cases = cases()
    (folder / "bundles").mkdir(parents=True, exist_ok=True)
    for old in (folder / "bundles").glob("*.json"):
        old.unlink()
    index = []
    for n, c in enumerate(all_cases):
        file = f"bundles/{n:03d}-{c.name}.json"
        (folder / file).write_bytes(c.data)
        want: dict[str, Any] = {"ok": True}
        if c.step is not None:
            want = {"ok": False, "step": c.step, "name": STEPS[c.step - 1], "code": c.code}
        index.append({"file": file, "desc": c.desc, "parcel": c.parcel, "pin": c.pin, "want": want})
    (folder / "registry.json").write_bytes(net.registry.to_bytes())
    (folder / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    return len(all_cases)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/spec/vectors")
    print(f"{write(folder)} vectors written to {folder}")


if __name__ == "__main__":
    main()
