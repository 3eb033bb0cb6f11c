"""A second verifier of kpledger provenance bundles, built from docs/spec only.

It reads nothing of the project's code (no ``kpledger`` import): its inputs are
``docs/spec/bundle.md`` (sections 1-8), the JSON Schemas under
``docs/spec/schemas`` and the conformance vectors. It exists to show that the
specification is enough to build a verifier, and to catch the places where it
is not (each such place was fixed in the spec and is listed in the closing
note of the issue). Its only dependencies are the standard library,
``cryptography`` (Ed25519) and ``jsonschema`` (the spec's schemas).

``verify(data, pinned_registry=None, parcel=None)`` returns an ``Outcome``:
``ok`` with the subject's state, or the failing step (number and name), the
error code and a message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jsonschema import Draft202012Validator
from referencing import Registry as RefRegistry
from referencing import Resource

SPEC = Path(__file__).resolve().parents[2] / "docs" / "spec"
STEP_NAMES = {
    1: "parse",
    2: "registry",
    3: "headers",
    4: "inclusion",
    5: "replay",
    6: "subject",
    7: "disclosures",
}
MAX_BYTES = 64 * 1024 * 1024
MAX_INT = 2**53 - 1
GOVERNANCE_KINDS = {"member.admit", "member.suspend", "member.reinstate", "key.replace"}

T_HEADER = b"KPL-HEADER-V1\n"
T_REGISTRY = b"KPL-REGISTRY-V1\n"
T_SIG_HEADER = b"KPL-SIG-HEADER-V1\n"
T_SIG_REGISTRY = b"KPL-SIG-REGISTRY-V1\n"
T_SIG_RECORD = b"KPL-SIG-RECORD-V1\n"
T_STATE_KEY = b"KPL-STATE-KEY-V1\n"
T_STATE_LEAF = b"KPL-STATE-LEAF-V1\n"
T_STATE_NODE = b"KPL-STATE-NODE-V1\n"


class Fail(Exception):
    def __init__(self, step: int, code: str, message: str) -> None:
        super().__init__(f"step {step} ({STEP_NAMES[step]}): {code}: {message}")
        self.step = step
        self.code = code


@dataclass
class Outcome:
    ok: bool
    step: int | None = None
    name: str | None = None
    code: str | None = None
    message: str = ""
    state: dict[str, Any] | None = None


# -- section 1: canonical JSON -------------------------------------------------------


def _no_float(text: str) -> Any:
    raise ValueError(f"a number that is not an integer: {text}")


def _pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in items:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _jcs_string(s: str) -> str:
    parts = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            parts.append('\\"')
        elif ch == "\\":
            parts.append("\\\\")
        elif ch == "\b":
            parts.append("\\b")
        elif ch == "\f":
            parts.append("\\f")
        elif ch == "\n":
            parts.append("\\n")
        elif ch == "\r":
            parts.append("\\r")
        elif ch == "\t":
            parts.append("\\t")
        elif o < 0x20:
            parts.append(f"\\u{o:04x}")
        elif 0xD800 <= o <= 0xDFFF:
            raise ValueError("a lone surrogate in a string")
        else:
            parts.append(ch)
    parts.append('"')
    return "".join(parts)


def _utf16_key(k: str) -> bytes:
    return k.encode("utf-16-be")


def canonical(x: Any) -> bytes:
    return _canon(x).encode("utf-8")


def _canon(x: Any) -> str:
    if x is True:
        return "true"
    if x is False:
        return "false"
    if x is None:
        return "null"
    if isinstance(x, int):
        if not -MAX_INT <= x <= MAX_INT:
            raise ValueError(f"integer {x} out of range")
        return str(x)
    if isinstance(x, str):
        return _jcs_string(x)
    if isinstance(x, list):
        return "[" + ",".join(_canon(v) for v in x) + "]"
    if isinstance(x, dict):
        keys = sorted(x, key=_utf16_key)
        return "{" + ",".join(_jcs_string(k) + ":" + _canon(x[k]) for k in keys) + "}"
    raise ValueError(f"a value of type {type(x).__name__}")


def parse_canonical(data: bytes) -> Any:
    """The document, if ``data`` is exactly its canonical form; else ValueError."""
    text = data.decode("utf-8")
    doc = json.loads(
        text, object_pairs_hook=_pairs, parse_float=_no_float, parse_constant=_no_float
    )
    if canonical(doc) != data:
        raise ValueError("the bytes are not in canonical form (RFC 8785)")
    return doc


def sha256(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def ed25519_ok(key_hex: str, sig_hex: str, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(
            bytes.fromhex(sig_hex), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def key_id(key_hex: str) -> str:
    return sha256(bytes.fromhex(key_hex)).hex()


# -- the spec's schemas --------------------------------------------------------------


def _load_schemas() -> tuple[dict[str, Draft202012Validator], Any]:
    resources = []
    for path in sorted((SPEC / "schemas").rglob("*.schema.json")):
        doc = json.loads(path.read_text())
        resources.append((doc["$id"], Resource.from_contents(doc)))
    reg: Any = RefRegistry().with_resources(resources)
    base = "https://kpledger.invalid/spec/schemas/"
    names = ["registry", "signed-header", "record"]
    names += [
        "records/" + path.name.removesuffix(".schema.json")
        for path in sorted((SPEC / "schemas" / "records").glob("*.schema.json"))
    ]
    validators = {
        n: Draft202012Validator({"$ref": base + n + ".schema.json"}, registry=reg) for n in names
    }
    return validators, reg


_VALIDATORS, _ = _load_schemas()


HEX_PATTERNS = {"^[0-9a-f]{64}$": 64, "^[0-9a-f]{128}$": 128}


def _schema_error(name: str, doc: Any) -> tuple[str, str] | None:
    """The first schema error as (code, message): ``encoding`` for a string of a binary
    field's length whose digits are not lower-case hex (section 1), else ``schema``."""
    if name == "record" and isinstance(doc, dict) and f"records/{doc.get('kind')}" in _VALIDATORS:
        # the record schema's oneOf selects the schema of the record's kind: judge by that
        name = f"records/{doc['kind']}"
    top = list(_VALIDATORS[name].iter_errors(doc))
    if not top:
        return None
    errors = sorted(top, key=lambda e: [str(p) for p in e.absolute_path])
    e = errors[0]
    code = "schema"
    for x in errors:
        # a string of the right length whose digits are not lower-case hex (a wrong
        # length is `schema`, section 1)
        size = HEX_PATTERNS.get(x.validator_value) if x.validator == "pattern" else None
        if size is not None and isinstance(x.instance, str) and len(x.instance) == size:
            code, e = "encoding", x
            break
    return code, f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message[:200]}"


def _record_rules(r: dict[str, Any]) -> str | None:
    """Section 5's parse rules that the schemas cannot state."""
    b, kind = r["body"], r["kind"]
    lists = {
        "parcel.split": [c["parcel"] for c in b.get("children", [])] + [b.get("parcel")],
        "parcel.merge": [*b.get("parents", []), b.get("parcel")],
        "certificate.issue": [x["parcel"] for x in b.get("lines", [])],
        "certificate.confirm": [x["parcel"] for x in b.get("received", [])],
        "licence.buyer": list(b.get("zones", [])),
    }
    if kind == "stats.report":
        for name in ("exports", "imports"):
            partners = [c["partner"] for c in b[name]]
            if partners != sorted(set(partners)):
                return f"stats.report: {name} partners not sorted and distinct"
    ids = lists.get(kind)
    if ids is not None and len(set(ids)) != len(ids):
        return f"{kind}: an id appears twice"
    if kind == "claim.register" and len(b["location"]) == 2:
        return "claim.register: a location of two points"
    if "valid_from" in b and b["valid_until"] < b["valid_from"]:
        return f"{kind}: valid_until before valid_from"
    for k in ("produced", "issued", "expires", "bought", "assessed", "date", "valid_from"):
        for v in (b.get(k), b.get("valid_until") if k == "valid_from" else None):
            if isinstance(v, str):
                try:
                    dt.date.fromisoformat(v)
                except ValueError:
                    return f"{kind}: {v} is no calendar date"
    return None


# -- section 2: RFC 9162 inclusion ------------------------------------------------------


def leaf_hash(record: Any) -> bytes:
    return sha256(b"\x00", canonical(record))


def inclusion_ok(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = sha256(b"\x01", p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(b"\x01", r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# -- the verifier ----------------------------------------------------------------------


@dataclass
class Hdr:
    chain: str
    height: int
    size: int
    root: bytes
    state: bytes
    time: str
    prev: str
    witness: dict[str, tuple[int, str]]
    key_id: str
    sig: str
    body: dict[str, Any]
    hash: str


@dataclass
class Rec:
    chain: str
    index: int
    proof: list[bytes]
    record: dict[str, Any]
    leaf: bytes
    block: Hdr | None = None


def verify(data: bytes, pinned_registry: bytes | None = None, parcel: str | None = None) -> Outcome:
    try:
        return _verify(data, pinned_registry, parcel)
    except Fail as f:
        return Outcome(False, f.step, STEP_NAMES[f.step], f.code, str(f))


def _verify(data: bytes, pinned: bytes | None, parcel: str | None) -> Outcome:
    bundle, headers, records = _step1(data)
    reg, network, cosign = _step2(bundle, pinned, headers, records)
    by_chain = _step3(reg, network, cosign, headers, records)
    _step4(records)
    replay = Replay(reg, network, headers, records, by_chain)
    replay.run()
    subject = bundle["subject"]
    if parcel is not None and parcel != subject:
        raise Fail(6, "schema", f"the bundle is about {subject}, not {parcel}")
    if subject not in replay.parcels:
        raise Fail(6, "unknown-reference", f"no record of the bundle creates {subject}")
    _checkpoints(bundle["state"], subject, records, replay, by_chain, cosign)
    _step7(bundle.get("disclosures"), records)
    return Outcome(True, state=dict(replay.parcels[subject]))


COMMIT_TAG = b"KPL-COMMIT-V1\n"


def _at_path(record: Any, path: str) -> Any:
    """The value at a path such as ``body.lines[0].value``; KeyError if none."""
    node = record
    for part in path.split("."):
        name, _, rest = part.partition("[")
        node = node[name]
        while rest:
            num, _, rest = rest.partition("]")
            if not isinstance(node, list):
                raise KeyError(path)
            node = node[int(num)]
            rest = rest.removeprefix("[")
    return node


def confidential_paths(record: dict[str, Any]) -> set[str]:
    """Section 5's committed fields of a record, as field paths."""
    kind, body = record["kind"], record["body"]
    if kind == "party.register":
        return {"body.name", "body.address"}
    if kind in ("parcel.register", "parcel.merge") or (
        kind == "parcel.transfer" and "value" in body
    ):
        return {"body.value"}
    if kind == "parcel.split":
        return {f"body.children[{i}].value" for i in range(len(body["children"]))}
    if kind == "certificate.issue":
        lines = {f"body.lines[{i}].value" for i in range(len(body["lines"]))}
        return lines | {"body.importer.name", "body.importer.address", "body.value", "body.seal"}
    if kind in ("claim.register", "licence.digger"):
        return {"body.holder"}
    if kind == "parcel.purchase":
        return {"body.price"}
    return set()


def _step7(disclosures: Any, records: list[Rec]) -> None:
    """Section 5: each disclosure opens a committed field of a record of the bundle."""
    if disclosures is None:
        return
    by_leaf = {r.leaf.hex(): r.record for r in records}
    for i, d in enumerate(disclosures):
        where = f"disclosures[{i}]"
        record = by_leaf.get(d["record"])
        if record is None:
            raise Fail(7, "disclosure-mismatch", f"{where}: no record of the bundle has that hash")
        if d["path"] not in confidential_paths(record):
            raise Fail(7, "disclosure-mismatch", f"{where}: {d['path']} is no committed field")
        held = _at_path(record, d["path"])
        opened = sha256(COMMIT_TAG, bytes.fromhex(d["salt"]), canonical(d["value"])).hex()
        if opened != held["c"]:
            raise Fail(7, "disclosure-mismatch", f"{where}: the value does not open the commitment")


def _hexes(values: Any, what: str) -> list[bytes]:
    """32-byte binary values (section 1): not a string or not 64 characters long is
    ``schema``; 64 characters with one outside ``0-9a-f`` is ``encoding``."""
    out = []
    for v in values:
        if not isinstance(v, str) or len(v) != 64:
            raise Fail(1, "schema", f"{what}: {v!r} is not a string of 64 characters")
        if any(c not in "0123456789abcdef" for c in v):
            raise Fail(1, "encoding", f"{what}: {v!r} is not 64 lower-case hex digits")
        out.append(bytes.fromhex(v))
    return out


def _step1(data: bytes) -> tuple[dict[str, Any], list[Hdr], list[Rec]]:
    if len(data) > MAX_BYTES:
        raise Fail(1, "schema", f"{len(data)} bytes, over {MAX_BYTES}")
    try:
        doc = parse_canonical(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Fail(1, "encoding", str(exc)) from None
    fields = {"format", "registry", "subject", "headers", "records", "state"}
    if not isinstance(doc, dict) or set(doc) - {"disclosures"} != fields:
        keys = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise Fail(1, "schema", f"the bundle's fields are {keys}")
    if doc["format"] != "kpledger-bundle/2":
        raise Fail(1, "schema", f"format {doc['format']!r}")
    subj = doc["subject"]
    parcel_id = json.loads((SPEC / "schemas/bodies/parcel.register.schema.json").read_text())[
        "properties"
    ]["parcel"]["pattern"]
    if not isinstance(subj, str) or len(subj) > 56 or not re.fullmatch(parcel_id, subj):
        raise Fail(1, "schema", f"subject {subj!r} is no parcel id")
    hs, rs = doc["headers"], doc["records"]
    if not isinstance(hs, list) or not 1 <= len(hs) <= 30000:
        raise Fail(1, "schema", "headers: 1 to 30,000 expected")
    if not isinstance(rs, list) or not 1 <= len(rs) <= 10000:
        raise Fail(1, "schema", "records: 1 to 10,000 expected")
    headers: list[Hdr] = []
    for i, sh in enumerate(hs):
        hv = sh.get("header", {}).get("v") if isinstance(sh, dict) else None
        if isinstance(hv, int) and not isinstance(hv, bool) and hv != 2:
            raise Fail(1, "unsupported-version", f"headers[{i}]: header format {hv}")
        err = _schema_error("signed-header", sh)
        if err:
            raise Fail(1, err[0], f"headers[{i}]: {err[1]}")
        h = sh["header"]
        wit = {}
        for w in h["witness"]:
            wit[w["chain"]] = (w["height"], w["hash"])
        chains = [w["chain"] for w in h["witness"]]
        if chains != sorted(set(chains)) or h["chain"] in wit:
            raise Fail(1, "schema", f"headers[{i}]: witness not sorted, repeated or own chain")
        headers.append(
            Hdr(
                h["chain"],
                h["height"],
                h["size"],
                bytes.fromhex(h["root"]),
                bytes.fromhex(h["state"]),
                h["time"],
                h["prev"],
                wit,
                h["key_id"],
                sh["sig"],
                h,
                sha256(T_HEADER, canonical(h)).hex(),
            )
        )
    keys = [(h.chain, h.height) for h in headers]
    if keys != sorted(set(keys)):
        raise Fail(1, "schema", "headers not sorted by (chain, height) or repeated")
    records: list[Rec] = []
    for i, item in enumerate(rs):
        if not isinstance(item, dict) or set(item) != {"index", "proof", "record"}:
            raise Fail(1, "schema", f"records[{i}]: fields index, proof, record expected")
        idx, proof = item["index"], item["proof"]
        if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
            raise Fail(1, "schema", f"records[{i}].index: a non-negative integer expected")
        if not isinstance(proof, list) or len(proof) > 64:
            raise Fail(1, "schema", f"records[{i}].proof: at most 64 hashes")
        hashes = _hexes(proof, f"records[{i}].proof")
        rec = item["record"]
        v = rec.get("v") if isinstance(rec, dict) else None
        if isinstance(v, int) and not isinstance(v, bool) and v != 2:
            raise Fail(1, "unsupported-version", f"records[{i}].record: version {rec['v']}")
        err = _schema_error("record", rec)
        if err:
            raise Fail(1, err[0], f"records[{i}].record: {err[1]}")
        rule = _record_rules(rec)
        if rule:
            raise Fail(1, "schema", f"records[{i}].record: {rule}")
        if len(canonical(item["record"])) > 256 * 1024:
            raise Fail(1, "schema", f"records[{i}]: over 256 KiB")
        r = item["record"]
        records.append(Rec(r["chain"], idx, hashes, r, leaf_hash(r)))
    ds = doc.get("disclosures")
    if ds is not None:
        if not isinstance(ds, list) or not 1 <= len(ds) <= 100_000:
            raise Fail(1, "schema", "disclosures: 1 to 100,000 expected")
        for i, d in enumerate(ds):
            where = f"disclosures[{i}]"
            if not isinstance(d, dict) or set(d) != {"record", "path", "salt", "value"}:
                raise Fail(1, "schema", f"{where}: fields record, path, salt, value expected")
            _hexes([d["record"], d["salt"]], where)
            path = d["path"]
            if not isinstance(path, str) or not path.startswith("body.") or len(path) > 120:
                raise Fail(1, "schema", f"{where}.path: a field path of the body expected")
            value = d["value"]
            if path.rsplit(".", 1)[-1] in ("value", "price"):
                if (
                    not isinstance(value, int)
                    or isinstance(value, bool)
                    or not 0 <= value <= 10**15
                ):
                    raise Fail(1, "schema", f"{where}.value: an integer 0..10^15 expected")
            elif not isinstance(value, str):
                raise Fail(1, "schema", f"{where}.value: a string expected")
    rkeys = [(r.chain, r.index) for r in records]
    if rkeys != sorted(set(rkeys)):
        raise Fail(1, "schema", "records not sorted by (chain, index) or repeated")
    _parse_state(doc["state"])
    return doc, headers, records


def _count_sigs(
    sigs: list[dict[str, str]], message: bytes, keys: list[str], threshold: int
) -> str | None:
    """Section 3's counting: None when it passes, else 'signature' or 'threshold'."""
    by_id = {key_id(k): k for k in keys}
    seen: set[str] = set()
    for s in sigs:
        kid = s["key_id"]
        if kid not in by_id or kid in seen or not ed25519_ok(by_id[kid], s["sig"], message):
            return "signature"
        seen.add(kid)
    return None if len(seen) >= threshold else "threshold"


def _valid_signers(sigs: list[dict[str, str]], message: bytes, keys: list[str]) -> set[str]:
    """The distinct governance keys with a valid signature among ``sigs`` (others ignored)."""
    by_id = {key_id(k): k for k in keys}
    return {
        s["key_id"]
        for s in sigs
        if s["key_id"] in by_id and ed25519_ok(by_id[s["key_id"]], s["sig"], message)
    }


def _step2(
    bundle: dict[str, Any], pinned: bytes | None, headers: list[Hdr], records: list[Rec]
) -> tuple[dict[str, Any], str, int]:
    doc = bundle["registry"]
    err = _schema_error("registry", doc)
    if err:
        raise Fail(2, err[0], f"registry: {err[1]}")
    reg = doc["registry"]
    parts = reg["participants"]
    codes = [p["code"] for p in parts]
    if len(set(codes)) != len(codes) or "KP" in codes:
        raise Fail(2, "schema", "participant codes repeated or KP")
    gov = reg["governance"]
    if len(set(gov["keys"])) != len(gov["keys"]) or not 1 <= gov["threshold"] <= len(gov["keys"]):
        raise Fail(2, "schema", "governance keys repeated or threshold out of range")
    authorities = [p["code"] for p in parts if p["role"] == "authority"]
    if "sealer" in gov and gov["sealer"] not in authorities:
        raise Fail(2, "schema", "the sealer is not an authority")
    params = reg["params"]
    cosign = params.get("cosign", max(0, min(2, len(authorities) - 1)))
    if not 0 <= cosign <= max(0, len(authorities) - 1):
        raise Fail(2, "schema", f"cosign {cosign} out of range")
    body = canonical(reg)
    message = T_SIG_REGISTRY + body
    valid = _valid_signers(doc["sigs"], message, gov["keys"])
    if len(valid) < gov["threshold"]:
        raise Fail(2, "threshold", f"{len(valid)} valid signatures, {gov['threshold']} needed")
    if _count_sigs(doc["sigs"], message, gov["keys"], gov["threshold"]) is not None:
        raise Fail(2, "signature", "a registry signature is invalid, repeated or by another key")
    network = sha256(T_REGISTRY, body).hex()
    if pinned is not None and canonical(doc) != pinned:
        raise Fail(2, "signature", "the bundle's registry is not the pinned one")
    for h in headers:
        if h.body["network"] != network:
            raise Fail(2, "block", f"header {h.chain}/{h.height} names another network")
    for r in records:
        if r.record["network"] != network:
            raise Fail(2, "block", f"record {r.chain}/{r.index} names another network")
    return reg, network, cosign


def _key_at(events: list[tuple[str, int, str, int]], chain: str, height: int) -> str | None:
    best: tuple[int, int] | None = None
    key = None
    for c, frm, k, kp in events:
        if c == chain and frm <= height and (best is None or (frm, kp) > best):
            best, key = (frm, kp), k
    return key


def _step3(
    reg: dict[str, Any], network: str, cosign: int, headers: list[Hdr], records: list[Rec]
) -> dict[str, dict[int, Hdr]]:
    by_chain: dict[str, dict[int, Hdr]] = {}
    for h in headers:
        by_chain.setdefault(h.chain, {})[h.height] = h
    # a. pairwise rules
    for chain, hs in by_chain.items():
        ordered = [hs[k] for k in sorted(hs)]
        for i, a in enumerate(ordered):
            for h in ordered[i + 1 :]:
                where = f"{chain}/{a.height} then {chain}/{h.height}"
                if h.size < a.size or h.time < a.time:
                    raise Fail(3, "block", f"{where}: size or time goes back")
                for c, (ha, _) in a.witness.items():
                    if c not in h.witness:
                        raise Fail(3, "block", f"{where}: witness of {c} dropped")
                    if h.witness[c][0] < ha:
                        raise Fail(3, "block", f"{where}: witness of {c} went back")
    # b. witnessed KP headers are present
    kp = by_chain.get("KP", {})
    for h in headers:
        if "KP" in h.witness and h.witness["KP"][0] not in kp:
            raise Fail(
                3, "schema", f"{h.chain}/{h.height} witnesses KP/{h.witness['KP'][0]}, absent"
            )
    # c. every record has its block and the header just before
    for r in records:
        hs = by_chain.get(r.chain, {})
        cands = [hs[k] for k in sorted(hs) if hs[k].size > r.index]
        if not cands:
            raise Fail(3, "schema", f"record {r.chain}/{r.index} has no block in the bundle")
        r.block = cands[0]
        if r.block.height > 1 and r.block.height - 1 not in hs:
            raise Fail(
                3, "schema", f"record {r.chain}/{r.index}: the header before its block is absent"
            )
    # d. every KP record below the largest KP size
    kp_size = max((h.size for h in kp.values()), default=0)
    have = {r.index for r in records if r.chain == "KP"}
    missing = [i for i in range(kp_size) if i not in have]
    if missing:
        raise Fail(3, "schema", f"KP records {missing[:5]} absent")
    # e. signatures
    events: list[tuple[str, int, str, int]] = []
    for p in reg["participants"]:
        events.append((p["code"], 1, p["key"], 0))
    gov = reg["governance"]
    authorities = [p for p in reg["participants"] if p["role"] == "authority"]
    sealer_code = gov.get("sealer", authorities[0]["code"] if authorities else None)
    sealer = next((p for p in reg["participants"] if p["code"] == sealer_code), None)
    if sealer is not None:
        events.append(("KP", 1, sealer["key"], 0))
    blocks: dict[tuple[str, int], list[Rec]] = {}
    for r in records:
        assert r.block is not None
        blocks.setdefault((r.chain, r.block.height), []).append(r)
    chains = sorted(by_chain, key=lambda c: (c != "KP", c))
    for chain in chains:
        for height in sorted(by_chain[chain]):
            h = by_chain[chain][height]
            key = _key_at(events, chain, height)
            where = f"header {chain}/{height}"
            if key is None or key_id(key) != h.key_id:
                raise Fail(3, "block", f"{where}: key_id is not the chain's key at that height")
            if not ed25519_ok(key, h.sig, T_SIG_HEADER + canonical(h.body)):
                raise Fail(3, "signature", f"{where}: the signature does not verify")
            for r in blocks.get((chain, height), []):
                rec, kind = r.record, r.record["kind"]
                if kind == "key.rotate" and chain == "KP":
                    continue
                if kind not in ("key.rotate", "member.admit", "key.replace"):
                    continue
                _prove(r, 3)
                b = rec["body"]
                if kind == "key.rotate":
                    events.append((chain, height + 1, b["key"], 0))
                elif chain == "KP" and kind == "member.admit":
                    events.append((b["code"], 1, b["key"], r.index + 1))
                elif chain == "KP" and kind == "key.replace":
                    unsigned = {k: v for k, v in rec.items() if k != "sigs"}
                    signers = _valid_signers(
                        rec.get("sigs", []), T_SIG_RECORD + canonical(unsigned), gov["keys"]
                    )
                    if len(signers) < gov["threshold"]:
                        raise Fail(
                            3, "threshold", f"key.replace KP/{r.index}: governance signatures"
                        )
                    events.append((b["code"], b["from_height"], b["key"], r.index + 1))
    # f. prev links, witness hashes
    for chain, hs in by_chain.items():
        for height, h in hs.items():
            if height == 1 and h.prev != network:
                raise Fail(3, "block", f"{chain}/1 does not link to the network id")
            if height - 1 in hs and h.prev != hs[height - 1].hash:
                raise Fail(3, "block", f"{chain}/{height} does not link to {chain}/{height - 1}")
            for c, (wh, wx) in h.witness.items():
                held = by_chain.get(c, {}).get(wh)
                if held is not None and held.hash != wx:
                    raise Fail(
                        3, "witness-invalid", f"{chain}/{height} witnesses {c}/{wh} by another hash"
                    )
    # g. cosigned checkpoints
    for chain, height in sorted(blocks):
        hs = by_chain[chain]
        cosigners = set()
        for x, xs in by_chain.items():
            if x in (chain, "KP"):
                continue
            for xh in xs.values():
                w = xh.witness.get(chain)
                if w and w[0] >= height and all(k in hs for k in range(height, w[0] + 1)):
                    cosigners.add(x)
        if len(cosigners) < cosign:
            raise Fail(
                3,
                "not-cosigned",
                f"block {chain}/{height}: witnessed by {sorted(cosigners)}, cosign {cosign}",
            )
    return by_chain


# -- section 4.1 and step 6: the subject's state at its checkpoints ------------------------


def _parse_state(items: Any) -> list[dict[str, Any]]:
    """Step 1 shapes of the bundle's ``state`` (section 6), each slot as section 4.1 says."""
    if not isinstance(items, list) or len(items) > 64:
        raise Fail(1, "schema", "state: at most 64 items")
    code = re.compile(r"[A-Z]{2,8}")
    chains = []
    for i, x in enumerate(items):
        if not isinstance(x, dict) or set(x) != {"chain", "height", "slot"}:
            raise Fail(1, "schema", f"state[{i}]: chain, height and slot expected")
        if not isinstance(x["chain"], str) or not code.fullmatch(x["chain"]):
            raise Fail(1, "schema", f"state[{i}].chain")
        if not _int(x["height"], 1):
            raise Fail(1, "schema", f"state[{i}].height")
        slot = x["slot"]
        if not isinstance(slot, dict) or not _int(slot.get("count"), 0):
            raise Fail(1, "schema", f"state[{i}].slot.count")
        want = {"count", "path"} | ({"record"} if slot["count"] > 0 else set())
        if set(slot) - {"other"} != want or (slot["count"] > 0 and "other" in slot):
            raise Fail(1, "schema", f"state[{i}].slot: fields {sorted(slot)}")
        if not isinstance(slot["path"], list) or len(slot["path"]) > 256:
            raise Fail(1, "schema", f"state[{i}].slot.path: at most 256 hashes")
        _hexes(slot["path"], f"state[{i}].slot.path")
        if "record" in slot:
            _hexes([slot["record"]], f"state[{i}].slot.record")
        other = slot.get("other")
        if other is not None:
            if not isinstance(other, dict) or set(other) != {"key", "record", "count"}:
                raise Fail(1, "schema", f"state[{i}].slot.other: key, record, count expected")
            _hexes([other["key"], other["record"]], f"state[{i}].slot.other")
            if not _int(other["count"], 1):
                raise Fail(1, "schema", f"state[{i}].slot.other.count")
        chains.append(x["chain"])
    if chains != sorted(set(chains)):
        raise Fail(1, "schema", "state not sorted by chain, or a chain twice")
    return items


def _int(v: Any, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= MAX_INT


def _slot_root(parcel: str, slot: dict[str, Any]) -> bytes | None:
    """Fold a slot proof up to its root (section 4.1); None if ``other`` is not allowed."""
    key = sha256(T_STATE_KEY, parcel.encode())
    k = int.from_bytes(key, "big")
    path = [bytes.fromhex(h) for h in slot["path"]]
    if slot["count"] > 0:
        h = sha256(
            T_STATE_LEAF, key, bytes.fromhex(slot["record"]), slot["count"].to_bytes(8, "big")
        )
    elif "other" in slot:
        o = slot["other"]
        okey = bytes.fromhex(o["key"])
        if okey == key or (int.from_bytes(okey, "big") ^ k) >> (256 - len(path)):
            return None
        h = sha256(T_STATE_LEAF, okey, bytes.fromhex(o["record"]), o["count"].to_bytes(8, "big"))
    else:
        h = bytes(32)
    for i in range(len(path) - 1, -1, -1):
        if (k >> (255 - i)) & 1:
            h = sha256(T_STATE_NODE, path[i], h)
        else:
            h = sha256(T_STATE_NODE, h, path[i])
    return h


def _acts_on(rec: dict[str, Any], certs: dict[str, dict[str, Any]]) -> list[str]:
    """The parcels a record acts on: the table of section 4.1."""
    b, kind = rec["body"], rec["kind"]
    if kind in ("parcel.register", "parcel.purchase", "parcel.transfer", "parcel.release"):
        return [b["parcel"]]
    if kind == "parcel.split":
        return [b["parcel"], *(c["parcel"] for c in b["children"])]
    if kind == "parcel.merge":
        return [*b["parents"], b["parcel"]]
    if kind == "certificate.issue":
        return [line["parcel"] for line in b["lines"]]
    if kind == "certificate.confirm":
        return [line["parcel"] for line in b["received"]]
    if kind in ("certificate.refuse", "certificate.void"):
        return list(certs.get(b["number"], {}).get("parcels", []))
    return []


def _checkpoints(
    items: list[dict[str, Any]],
    subject: str,
    records: list[Rec],
    replay: Replay,
    by_chain: dict[str, dict[int, Hdr]],
    cosign: int,
) -> None:
    """Step 6's checkpoints: every chain that acted on the subject, or to which one of its
    certificates goes, proves the subject's slot at its newest cosigned header."""
    acting: dict[str, list[Rec]] = {}
    for r in sorted(records, key=lambda r: (r.chain, r.index)):
        if subject in _acts_on(r.record, replay.certs):
            acting.setdefault(r.chain, []).append(r)
    S = set(acting) | {c["destination"] for c in replay.certs.values() if subject in c["parcels"]}
    given = {x["chain"]: x for x in items}
    for chain in sorted(given):
        if chain not in S:
            raise Fail(6, "schema", f"a state item of {chain}, which never acted on {subject}")
    for chain in sorted(S):
        x = given.get(chain)
        if x is None:
            raise Fail(6, "record-omitted", f"no state item of {chain}")
        hs = by_chain.get(chain, {})
        top = None
        for c in sorted(hs, reverse=True):
            cosigners = set()
            for other, xs in by_chain.items():
                if other in (chain, "KP"):
                    continue
                for xh in xs.values():
                    w = xh.witness.get(chain)
                    if w and w[0] >= c and all(k in hs for k in range(c, w[0] + 1)):
                        cosigners.add(other)
            if len(cosigners) >= cosign:
                top = c
                break
        if top is None or x["height"] != top:
            raise Fail(6, "record-omitted", f"{chain}: state at {x['height']}, checkpoint {top}")
        if _slot_root(subject, x["slot"]) != hs[top].state:
            raise Fail(6, "state-proof", f"{chain}/{top}: the slot does not fold to its state")
        mine = acting.get(chain, [])
        want = (len(mine), mine[-1].leaf.hex() if mine else None)
        if (x["slot"]["count"], x["slot"].get("record")) != want:
            raise Fail(
                6,
                "record-omitted",
                f"{chain}/{top}: {x['slot']['count']} records, bundle {want[0]}",
            )


def _prove(r: Rec, step: int) -> None:
    """A record's inclusion in its block, and its time not after the block's."""
    b = r.block
    assert b is not None
    if not inclusion_ok(r.leaf, r.index, b.size, r.proof, b.root):
        raise Fail(
            step, "inclusion-proof", f"record {r.chain}/{r.index} against {b.chain}/{b.height}"
        )
    if r.record["time"] > b.time:
        raise Fail(step, "block", f"record {r.chain}/{r.index} is dated after its block")


def _step4(records: list[Rec]) -> None:
    for r in records:
        _prove(r, 4)


# -- section 8: the rule replay ------------------------------------------------------------


class Replay:
    def __init__(
        self,
        reg: dict[str, Any],
        network: str,
        headers: list[Hdr],
        records: list[Rec],
        by_chain: dict[str, dict[int, Hdr]],
    ) -> None:
        self.reg = reg
        self.network = network
        self.headers = headers
        self.by_chain = by_chain
        self.params = reg["params"]
        gov = reg["governance"]
        self.gov_keys, self.gov_threshold = gov["keys"], gov["threshold"]
        self.members: list[tuple[str, int, str, bool]] = [
            (p["code"], 0, p["role"], True) for p in reg["participants"]
        ]
        self.keys: list[tuple[str, int, str, int]] = [
            (p["code"], 1, p["key"], 0) for p in reg["participants"]
        ]
        self.parties: dict[str, dict[str, Any]] = {}
        self.parcels: dict[str, dict[str, Any]] = {}
        self.certs: dict[str, dict[str, Any]] = {}
        self.closings: dict[tuple[str, str], int] = {}
        self.restrictions: set[tuple[str, str]] = set()
        self.licences: dict[str, dict[str, Any]] = {}
        self.ids: set[tuple[str, str]] = set()
        self.recs: dict[tuple[str, int], list[Rec]] = {}
        for r in records:
            assert r.block is not None
            self.recs.setdefault((r.chain, r.block.height), []).append(r)

    # members
    def _member(self, code: str, k: float) -> tuple[str, bool] | None:
        best = None
        for c, size, role, active in self.members:
            if c == code and size <= k and (best is None or size >= best[0]):
                best = (size, role, active)
        return None if best is None else (best[1], best[2])

    def _is_authority(self, code: str, k: float) -> bool:
        m = self._member(code, k)
        return m is not None and m[0] == "authority"

    def _order(self) -> list[Hdr]:
        """Section 6 step 5: rounds over the chains (KP first, then by code); in each,
        a chain's next blocks are applied while each is ready."""
        blocks = {c: sorted(k for (cc, k) in self.recs if cc == c) for c in self.by_chain}
        blocks = {c: v for c, v in blocks.items() if v}
        done = dict.fromkeys(blocks, 0)
        chains = sorted(blocks, key=lambda c: (c != "KP", c))
        order: list[Hdr] = []

        def ready(h: Hdr) -> bool:
            for c, (wh, _) in h.witness.items():
                todo = blocks.get(c, [])
                if done.get(c, 0) < len(todo) and todo[done[c]] <= wh:
                    return False
            return True

        left = sum(len(v) for v in blocks.values())
        while left:
            progressed = False
            for c in chains:
                while done[c] < len(blocks[c]):
                    h = self.by_chain[c][blocks[c][done[c]]]
                    if not ready(h):
                        break
                    order.append(h)
                    done[c] += 1
                    left -= 1
                    progressed = True
            if not progressed:
                raise Fail(5, "witness-invalid", "the blocks' witnesses form a cycle")
        return order

    def run(self) -> None:
        for h in self._order():
            self.h = h
            self.C = h.chain
            self.date = h.time[:10]
            self.kp: float = float("inf") if h.chain == "KP" else self._witness_size("KP")
            if h.chain != "KP" and not self._is_authority(h.chain, self.kp):
                raise Fail(
                    5, "block", f"{h.chain}/{h.height}: not an authority at KP size {self.kp}"
                )
            for r in sorted(self.recs.get((h.chain, h.height), []), key=lambda r: r.index):
                self.r = r
                self._record(r)
        for h in self.headers:
            if h.chain == "KP":
                continue
            kp = self._witness_size("KP", h)
            if not self._is_authority(h.chain, kp):
                raise Fail(5, "block", f"{h.chain}/{h.height}: not an authority at KP size {kp}")

    def _witness(self, chain: str, h: Hdr | None = None) -> Hdr | None:
        h = h or self.h
        w = h.witness.get(chain)
        if w is None:
            return None
        return self.by_chain.get(chain, {}).get(w[0])

    def _witness_size(self, chain: str, h: Hdr | None = None) -> int:
        w = self._witness(chain, h)
        return 0 if w is None else w.size

    def fail(self, code: str, msg: str) -> Fail:
        r = self.r
        return Fail(5, code, f"record {r.chain}/{r.index} ({r.record['kind']}): {msg}")

    def _record(self, r: Rec) -> None:
        rec, C = r.record, self.C
        if rec["network"] != self.network:
            raise self.fail("unknown-reference", "another network")
        if rec["chain"] != C:
            raise self.fail("wrong-jurisdiction", "another chain")
        if (C, rec["id"]) in self.ids:
            raise self.fail("duplicate-record", f"id {rec['id']} taken")
        kind = rec["kind"]
        if (kind in GOVERNANCE_KINDS) != (C == "KP"):
            raise self.fail("governance-invalid", "governance kind off KP, or other kind on KP")
        if C == "KP":
            unsigned = {k: v for k, v in rec.items() if k != "sigs"}
            signers = _valid_signers(
                rec.get("sigs", []), T_SIG_RECORD + canonical(unsigned), self.gov_keys
            )
            if len(signers) < self.gov_threshold:
                raise self.fail("governance-invalid", "governance signatures do not count up")
        getattr(self, "k_" + kind.replace(".", "_"))(rec["body"])
        self.ids.add((C, rec["id"]))

    # shared checks
    def holding(self, p: str) -> dict[str, Any]:
        x = self.parcels.get(p)
        if x is None:
            raise self.fail("unknown-reference", f"no parcel {p}")
        if x["chain"] != self.C:
            raise self.fail("wrong-jurisdiction", f"{p} is under {x['chain']}")
        if x["status"] != "active":
            raise self.fail("already-spent", f"{p} is {x['status']}")
        cert = self.certs.get(x["certificate"]) if x["certificate"] else None
        if cert and cert["status"] == "refused":
            xc, xi, _ = cert["closed_ref"]
            if xc != self.C and self._witness_size(xc) <= xi:
                raise self.fail("witness-invalid", f"{p}: its return is not witnessed")
        return x

    def party(self, q: str) -> None:
        x = self.parties.get(q)
        if x is None or x["chain"] != self.C or not x["active"]:
            raise self.fail("inactive-party", f"{q} is no active party of {self.C}")

    def new(self, p: str) -> None:
        if not p.startswith(self.C + "-"):
            raise self.fail("wrong-jurisdiction", f"{p} is not an id of {self.C}")
        if p in self.parcels:
            raise self.fail("duplicate-record", f"parcel {p} exists")

    def authority(self, x: str) -> None:
        m = self._member(x, self.kp)
        if m is None or m[0] != "authority" or not m[1]:
            raise self.fail("participant-not-active", f"{x} is not an active authority")

    @staticmethod
    def c(v: Any) -> Any:
        """A committed value stands for its commitment (section 5)."""
        return v["c"] if isinstance(v, dict) and set(v) == {"c"} else v

    # 8.4
    @staticmethod
    def apportion(comp: dict[str, int], weights: list[int]) -> list[dict[str, int]]:
        if not comp:
            return [{} for _ in weights]
        L = dict(comp)
        T = sum(L.values())
        out = []
        for w in weights[:-1]:
            share = {c: w * L[c] // T for c in L}
            rest = w - sum(share.values())
            ranked = sorted(L, key=lambda c: (-((w * L[c]) % T), c.encode()))
            for c in ranked[:rest]:
                share[c] += 1
            out.append(dict(sorted(share.items())))
            for c in L:
                L[c] -= share[c]
            T -= w
        out.append(dict(sorted(L.items())))
        return out

    # 8.5
    def k_party_register(self, b: dict[str, Any]) -> None:
        if not b["party"].startswith(self.C + "-"):
            raise self.fail("wrong-jurisdiction", f"{b['party']} is not an id of {self.C}")
        if b["party"] in self.parties:
            raise self.fail("duplicate-record", f"party {b['party']} exists")
        self.parties[b["party"]] = {
            "chain": self.C,
            "name": self.c(b["name"]),
            "role": b["role"],
            "address": self.c(b["address"]),
            "active": True,
        }

    def k_party_revoke(self, b: dict[str, Any]) -> None:
        self.party(b["party"])
        self.parties[b["party"]]["active"] = False

    def _add_parcel(self, p: str, **kw: Any) -> None:
        base = {"chain": self.C, "status": "active", "certificate": None, "claims": {}}
        base.update(kw)
        self.parcels[p] = base

    def k_parcel_register(self, b: dict[str, Any]) -> None:
        self.new(b["parcel"])
        if b["produced"] > self.date:
            raise self.fail("future-dated", f"produced {b['produced']} after {self.date}")
        self.party(b["custodian"])
        self._add_parcel(
            b["parcel"],
            custodian=b["custodian"],
            weight=b["weight"],
            value=self.c(b["value"]),
            hs=b["hs"],
            origin={self.C: b["weight"]},
        )

    def k_parcel_transfer(self, b: dict[str, Any]) -> None:
        x = self.holding(b["parcel"])
        self.party(b["to"])
        x["custodian"] = b["to"]
        if "value" in b:
            x["value"] = self.c(b["value"])

    def k_parcel_split(self, b: dict[str, Any]) -> None:
        x = self.holding(b["parcel"])
        for ch in b["children"]:
            self.new(ch["parcel"])
            self.party(ch.get("custodian", x["custodian"]))
        weights = [ch["weight"] for ch in b["children"]]
        if sum(weights) != x["weight"]:
            raise self.fail("mass-not-conserved", f"{sum(weights)} != {x['weight']}")
        x["status"] = "spent"
        origins = self.apportion(x["origin"], weights)
        claims = self.apportion(x["claims"], weights)
        for ch, o, cl in zip(b["children"], origins, claims, strict=True):
            self._add_parcel(
                ch["parcel"],
                custodian=ch.get("custodian", x["custodian"]),
                weight=ch["weight"],
                value=self.c(ch["value"]),
                hs=x["hs"],
                origin=o,
                claims=cl,
            )

    def k_parcel_merge(self, b: dict[str, Any]) -> None:
        parents = [self.holding(p) for p in b["parents"]]
        self.new(b["parcel"])
        self.party(b["custodian"])
        if any(p["custodian"] != parents[0]["custodian"] for p in parents):
            raise self.fail("custody-conflict", "parents of several custodians")
        if sum(p["weight"] for p in parents) != b["weight"]:
            raise self.fail("mass-not-conserved", "parents' weights")
        if len({p["hs"] for p in parents}) != 1:
            raise self.fail("origin-not-carried", "parents of several hs")
        origin: dict[str, int] = {}
        claims: dict[str, int] = {}
        for p in parents:
            p["status"] = "spent"
            for k, v in p["origin"].items():
                origin[k] = origin.get(k, 0) + v
            for k, v in p["claims"].items():
                claims[k] = claims.get(k, 0) + v
        self._add_parcel(
            b["parcel"],
            custodian=b["custodian"],
            weight=b["weight"],
            value=self.c(b["value"]),
            hs=parents[0]["hs"],
            origin=dict(sorted(origin.items())),
            claims=dict(sorted(claims.items())),
        )

    def k_parcel_release(self, b: dict[str, Any]) -> None:
        x = self.parcels.get(b["parcel"])
        if x is None:
            raise self.fail("unknown-reference", f"no parcel {b['parcel']}")
        if x["chain"] != self.C:
            raise self.fail("wrong-jurisdiction", "parcel of another chain")
        if x["status"] != "held":
            raise self.fail("release-invalid", f"status {x['status']}")
        x["status"], x["certificate"] = "active", None

    def k_certificate_issue(self, b: dict[str, Any]) -> None:
        bad = "certificate-invalid"
        C = self.C
        if not b["number"].startswith(C + "-"):
            raise self.fail(bad, "number of another chain")
        if b["number"] in self.certs:
            raise self.fail("duplicate-record", f"certificate {b['number']} exists")
        self.authority(C)
        if b["destination"] == C:
            raise self.fail(bad, "destination is the issuer")
        m = self._member(b["destination"], self.kp)
        if m is None or m != ("authority", True):
            raise self.fail(bad, "destination not an active authority")
        self.party(b["exporter"])
        parcels = []
        codes: set[str] = set()
        for line in b["lines"]:
            x = self.holding(line["parcel"])
            if (
                x["custodian"] != b["exporter"]
                or x["weight"] != line["weight"]
                or x["hs"] != line["hs"]
            ):
                raise self.fail(bad, f"line {line['parcel']} does not match the parcel")
            if x["origin"] != line["origin"]:
                raise self.fail("origin-not-carried", f"line {line['parcel']} origin")
            codes |= set(line["origin"])
            parcels.append(x)
        if b["carats"] != sum(line["weight"] for line in b["lines"]):
            raise self.fail(bad, "carats")
        if b["parcels"] != len(b["lines"]):
            raise self.fail(bad, "parcels")
        if b["origin"] != (next(iter(codes)) if len(codes) == 1 else "mixed"):
            raise self.fail(bad, "origin")
        rec_date = dt.date.fromisoformat(self.r.record["time"][:10])
        issued = dt.date.fromisoformat(b["issued"])
        expires = dt.date.fromisoformat(b["expires"])
        back = self.params.get("issue_backdate_days", 3)
        if issued > rec_date or (rec_date - issued).days > back:
            raise self.fail(bad, "issued")
        if (
            expires < issued
            or expires < rec_date
            or (expires - issued).days > self.params["max_validity_days"]
        ):
            raise self.fail(bad, "validity")
        for line, x in zip(b["lines"], parcels, strict=True):
            x.update(status="in_transit", custodian=None, certificate=b["number"])
            x["value"] = self.c(line["value"])
        self.certs[b["number"]] = {
            "issuer": C,
            "destination": b["destination"],
            "exporter": b["exporter"],
            "status": "issued",
            "issued": b["issued"],
            "expires": b["expires"],
            "carats": b["carats"],
            "parcels": [line["parcel"] for line in b["lines"]],
            "issue_ref": (C, self.r.index, self.r.leaf.hex()),
            "closed_ref": None,
        }

    def _closing_common(self, b: dict[str, Any], bad: str) -> dict[str, Any]:
        cert = self.certs.get(b["number"])
        if cert is None:
            raise self.fail("unknown-reference", f"no certificate {b['number']}")
        ref = (b["ref"]["chain"], b["ref"]["index"], b["ref"]["hash"])
        if ref != cert["issue_ref"]:
            raise self.fail(bad, "ref is not the issue record")
        if self._witness(cert["issuer"]) is None or self._witness_size(cert["issuer"]) <= ref[1]:
            raise self.fail(bad, "the block does not witness the issue")
        if cert["destination"] != self.C:
            raise self.fail(bad, "not the destination")
        return cert

    def k_certificate_confirm(self, b: dict[str, Any]) -> None:
        bad = "confirmation-invalid"
        cert = self._closing_common(b, bad)
        self.authority(self.C)
        self.authority(cert["issuer"])
        if cert["status"] != "issued" or (self.C, b["number"]) in self.closings:
            raise self.fail(bad, "closed")
        if self.date > cert["expires"]:
            raise self.fail(bad, "expired")
        if {x["parcel"] for x in b["received"]} != set(cert["parcels"]):
            raise self.fail(bad, "received parcels")
        self.party(b["custodian"])
        for p in cert["parcels"]:
            if any((self.C, o) in self.restrictions for o in self.parcels[p]["origin"]):
                raise self.fail("restricted-origin", f"{p}")
        tol = self.params["tolerance_bp"]
        got = {x["parcel"]: x["weight"] for x in b["received"]}
        disc = any(
            abs(got[p] - self.parcels[p]["weight"]) * 10000 > tol * self.parcels[p]["weight"]
            for p in cert["parcels"]
        )
        total = sum(got.values())
        disc = disc or abs(total - cert["carats"]) * 10000 > tol * cert["carats"]
        for p in cert["parcels"]:
            x = self.parcels[p]
            x.update(chain=self.C, custodian=b["custodian"])
            if disc:
                x["status"] = "held"
            else:
                x.update(status="active", certificate=None)
        cert.update(
            status="discrepancy" if disc else "confirmed",
            closed_ref=(self.C, self.r.index, self.r.leaf.hex()),
            received=total,
        )
        self.closings[(self.C, b["number"])] = self.r.index

    def k_certificate_refuse(self, b: dict[str, Any]) -> None:
        bad = "refusal-invalid"
        cert = self._closing_common(b, bad)
        self.authority(self.C)
        if cert["status"] != "issued" or (self.C, b["number"]) in self.closings:
            raise self.fail(bad, "closed")
        if self.date > cert["expires"]:
            raise self.fail(bad, "expired")
        if b["code"] == "restricted-origin" and not any(
            (self.C, o) in self.restrictions
            for p in cert["parcels"]
            for o in self.parcels[p]["origin"]
        ):
            raise self.fail(bad, "no restricted origin")
        for p in cert["parcels"]:
            self.parcels[p].update(
                chain=cert["issuer"], custodian=cert["exporter"], status="active"
            )
        cert.update(status="refused", closed_ref=(self.C, self.r.index, self.r.leaf.hex()))
        self.closings[(self.C, b["number"])] = self.r.index

    def k_certificate_void(self, b: dict[str, Any]) -> None:
        bad = "void-invalid"
        cert = self.certs.get(b["number"])
        if cert is None:
            raise self.fail("unknown-reference", f"no certificate {b['number']}")
        if cert["issuer"] != self.C:
            raise self.fail("wrong-jurisdiction", "not the issuer")
        if cert["status"] != "issued":
            raise self.fail(bad, f"status {cert['status']}")
        dest = cert["destination"]
        w = self.h.witness.get(dest)
        if w is None or w[0] < b["importer_height"]:
            raise self.fail(bad, "the destination is not witnessed that high")
        at = self.by_chain.get(dest, {}).get(b["importer_height"])
        if at is None or at.time[:10] <= cert["expires"]:
            raise self.fail(bad, "the destination's header is not after expiry")
        closing = self.closings.get((dest, b["number"]))
        if closing is not None and closing < at.size:
            raise self.fail(bad, "closed by the destination")
        if self.date <= cert["expires"]:
            raise self.fail(bad, "not expired")
        times = [self.h.time] + [
            x.time for c in self.h.witness if c != "KP" and (x := self._witness(c)) is not None
        ]
        times.sort()
        if times[(len(times) - 1) // 2][:10] <= cert["expires"]:
            raise self.fail(bad, "median time not after expiry")
        for p in cert["parcels"]:
            self.parcels[p].update(
                chain=cert["issuer"], custodian=cert["exporter"], status="active", certificate=None
            )
        cert["status"] = "voided"

    def k_policy_restrict_origin(self, b: dict[str, Any]) -> None:
        if (self.C, b["origin"]) in self.restrictions:
            raise self.fail("duplicate-record", "in force")
        self.restrictions.add((self.C, b["origin"]))

    def k_policy_lift_origin(self, b: dict[str, Any]) -> None:
        if (self.C, b["origin"]) not in self.restrictions:
            raise self.fail("unknown-reference", "not in force")
        self.restrictions.discard((self.C, b["origin"]))

    def k_key_rotate(self, b: dict[str, Any]) -> None:
        if _key_at(self.keys, self.C, self.h.height) == b["key"]:
            raise self.fail("key-change-invalid", "the same key")
        self.keys.append((self.C, self.h.height + 1, b["key"], 0))

    def k_member_admit(self, b: dict[str, Any]) -> None:
        if b["code"] == "KP" or any(m[0] == b["code"] for m in self.members):
            raise self.fail("governance-invalid", f"{b['code']} exists")
        i = self.r.index
        self.members.append((b["code"], i + 1, b["role"], True))
        self.keys.append((b["code"], 1, b["key"], i + 1))

    def _set_active(self, b: dict[str, Any], value: bool) -> None:
        i = self.r.index
        m = self._member(b["code"], i)
        if m is None:
            raise self.fail("governance-invalid", "not a participant")
        if m[1] == value:
            raise self.fail("governance-invalid", "already so")
        self.members.append((b["code"], i + 1, m[0], value))

    def k_member_suspend(self, b: dict[str, Any]) -> None:
        self._set_active(b, False)

    def k_member_reinstate(self, b: dict[str, Any]) -> None:
        self._set_active(b, True)

    def k_key_replace(self, b: dict[str, Any]) -> None:
        i = self.r.index
        if b["code"] != "KP" and self._member(b["code"], i) is None:
            raise self.fail("governance-invalid", "not a participant")
        self.keys.append((b["code"], b["from_height"], b["key"], i + 1))

    # artisanal
    @staticmethod
    def in_force(x: dict[str, Any], d: str) -> bool:
        return x["valid_from"] <= d <= x["valid_until"] and (x["ended"] is None or d < x["ended"])

    def new_licence(self, x: str) -> None:
        if not x.startswith(self.C + "-") or x in self.licences:
            raise self.fail("registry-invalid", f"licence {x}")

    def k_claim_register(self, b: dict[str, Any]) -> None:
        self.new_licence(b["claim"])
        self.licences[b["claim"]] = {
            "chain": self.C,
            "type": "claim",
            "holder": self.c(b["holder"]),
            "claim": None,
            "zones": [b["zone"]],
            "valid_from": b["valid_from"],
            "valid_until": b["valid_until"],
            "ended": None,
        }

    def k_licence_digger(self, b: dict[str, Any]) -> None:
        self.new_licence(b["licence"])
        claim = self.licences.get(b["claim"])
        if claim is None or claim["type"] != "claim" or claim["chain"] != self.C:
            raise self.fail("registry-invalid", f"no claim {b['claim']}")
        self.licences[b["licence"]] = {
            "chain": self.C,
            "type": b["type"],
            "holder": self.c(b["holder"]),
            "claim": b["claim"],
            "zones": list(claim["zones"]),
            "valid_from": b["valid_from"],
            "valid_until": b["valid_until"],
            "ended": None,
        }

    def k_licence_buyer(self, b: dict[str, Any]) -> None:
        self.new_licence(b["licence"])
        self.party(b["party"])
        self.licences[b["licence"]] = {
            "chain": self.C,
            "type": b["type"],
            "holder": b["party"],
            "claim": None,
            "zones": list(b["zones"]),
            "valid_from": b["valid_from"],
            "valid_until": b["valid_until"],
            "ended": None,
        }

    def k_licence_end(self, b: dict[str, Any]) -> None:
        x = self.licences.get(b["licence"])
        if (
            x is None
            or x["chain"] != self.C
            or x["ended"] is not None
            or b["date"] < x["valid_from"]
        ):
            raise self.fail("registry-invalid", f"licence {b['licence']} cannot end")
        x["ended"], x["end_reason"] = b["date"], b["reason"]

    def k_parcel_purchase(self, b: dict[str, Any]) -> None:
        self.new(b["parcel"])
        if b["bought"] > self.date:
            raise self.fail("future-dated", "bought after the block")
        d = b["bought"]
        buyer = self.licences.get(b["buyer"])
        if (
            buyer is None
            or buyer["chain"] != self.C
            or buyer["type"] not in ("collector", "comptoir")
            or not self.in_force(buyer, d)
        ):
            raise self.fail("buyer-licence-invalid", b["buyer"])
        self.party(buyer["holder"])
        digger = self.licences.get(b["digger"])
        if (
            digger is None
            or digger["chain"] != self.C
            or digger["type"] not in ("digger", "cooperative")
            or not self.in_force(digger, d)
            or digger["claim"] != b["claim"]
        ):
            raise self.fail("digger-licence-invalid", b["digger"])
        claim = self.licences.get(b["claim"])
        if (
            claim is None
            or claim["chain"] != self.C
            or claim["type"] != "claim"
            or not self.in_force(claim, d)
            or claim["zones"][0] not in buyer["zones"]
        ):
            raise self.fail("claim-invalid", b["claim"])
        self._add_parcel(
            b["parcel"],
            custodian=buyer["holder"],
            weight=b["weight"],
            value=self.c(b["price"]),
            hs=b["hs"],
            origin={self.C: b["weight"]},
            claims={b["claim"]: b["weight"]},
        )

    def k_stats_report(self, b: dict[str, Any]) -> None:
        bad = "stats-report-invalid"
        quarter = b["quarter"]
        if self.r.record["id"] != f"stats-{quarter}":
            raise self.fail(bad, "record id")
        year, q = int(quarter[:4]), int(quarter[-1])
        end = (dt.date(year + 1, 1, 1) if q == 4 else dt.date(year, 3 * q + 1, 1)) - dt.timedelta(
            days=1
        )
        if self.date <= end.isoformat():
            raise self.fail(bad, "sealed before the quarter ended")
        min_cell = self.params.get("min_cell", 3)
        cells = [(b["production"], b["production"]["parcels"])]
        for name in ("exports", "imports"):
            for cell in b[name]:
                if cell["partner"] == self.C:
                    raise self.fail(bad, "trades with itself")
                if cell["certificates"] < 1:
                    raise self.fail(bad, "an empty trade cell")
                cells.append((cell, cell["certificates"]))
        for cell, count in cells:
            if ("value" in cell) != (count >= min_cell):
                raise self.fail("stats-cell-disclosed", f"a cell of {count} records")

    def k_diagnostic_assess(self, b: dict[str, Any]) -> None:
        if b["assessed"] > self.date:
            raise self.fail("future-dated", "assessed after the block")
