"""The specification's JSON Schemas (docs/spec/schemas): what the generator writes, valid
JSON Schema 2020-12, accepting the project's objects and refusing what the parsers refuse.

Every invalid example is refused twice: by the schema, and by the parser for a reason of
form (schema or encoding), not a signature: the two describe the same format."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry as Schemas
from referencing import Resource

from kpledger.api.docs_records import EXAMPLES, example_record
from kpledger.devtools.realistic import realistic_blocks
from kpledger.devtools.spec_schemas import render, write
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Block, Header, SignedHeader
from kpledger.ledger.canonical import canonical_bytes
from kpledger.ledger.errors import EncodingError, SchemaError
from kpledger.ledger.records import Kind, Record, seal_record
from kpledger.ledger.registry import Params, Registry
from kpledger.ledger.spec_schema import SCHEMA_BASE

SPEC = Path(__file__).resolve().parents[2] / "docs" / "spec"
FOLDER = SPEC / "schemas"
Doc = dict[str, Any]


def _files() -> dict[str, Doc]:
    return {
        p.relative_to(FOLDER).as_posix(): json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(FOLDER.rglob("*.schema.json"))
    }


FILES = _files()
SCHEMAS = Schemas().with_resources(
    (doc["$id"], Resource.from_contents(doc)) for doc in FILES.values()
)


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(FILES[name], registry=SCHEMAS)


def test_the_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    assert sorted(FILES) == sorted(render())
    assert write(tmp_path) == len(FILES)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (FOLDER / name).read_bytes(), name
    assert {f"bodies/{k}.schema.json" for k in Kind} <= set(FILES)
    assert {f"records/{k}.schema.json" for k in Kind} <= set(FILES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_file_is_a_json_schema_with_its_own_id(name: str) -> None:
    Draft202012Validator.check_schema(FILES[name])
    assert FILES[name]["$id"] == SCHEMA_BASE + name


# ---------------------------------------------------------------- valid objects


def _network() -> tuple[Network, list[Block]]:
    """A realistic stream of blocks, then a key rotation and governance on chain KP."""
    net, blocks = realistic_blocks(400, chains=("BW", "RU", "EU"), block_records=60, seed=3)
    return net, blocks


def _governance() -> tuple[Network, list[Block]]:
    params = Params(producers=((2026, frozenset({"BW", "RU"})),), cosign=1)
    net = Network.create(("BW", "EU"), ("WDC",), params=params)
    sc = Scenario(net)
    out = [sc.seal("EU", sc.party("EU", "EU-IMP", "importer"))]
    eu = sc.ledger.state.head("EU")
    assert eu is not None
    key = Network.create(("BW", "EU"), (), seed=5).signers["EU"].public.hex()
    body = {"code": "EU", "key": key, "from_height": eu.height + 1, "reason": "a theft"}
    out.append(sc.seal("KP", sc.governance(Kind.KEY_REPLACE, body)))
    out.append(sc.seal("BW", sc.record("BW", Kind.KEY_ROTATE, {"key": key})))
    return net, out


NETWORKS = [_network(), _governance()]
BLOCKS = [b for _, blocks in NETWORKS for b in blocks]
RECORDS = [r for b in BLOCKS for r in b.records]


def _examples() -> Iterator[Doc]:
    """docs/records.md's example of every kind, on a real network id, as a writer's node
    signs it (confidential fields committed)."""
    network = NETWORKS[0][0].network_id
    for kind in EXAMPLES:
        yield seal_record(example_record(kind, network=network)).as_json()


def test_registries_are_accepted() -> None:
    check = validator("registry.schema.json")
    registries = [net.registry.to_bytes() for net, _ in NETWORKS]
    registries.append((SPEC / "vectors" / "registry.json").read_bytes())
    for raw in registries:
        Registry.parse(raw)
        check.validate(json.loads(raw))


def test_blocks_headers_and_records_are_accepted() -> None:
    blocks, headers, records = (
        validator("block.schema.json"),
        validator("signed-header.schema.json"),
        validator("record.schema.json"),
    )
    kinds = set()
    for b in BLOCKS:
        doc = b.to_json()
        blocks.validate(doc)
        headers.validate({"header": doc["header"], "sig": doc["sig"]})
        validator("header.schema.json").validate(doc["header"])
    for r in RECORDS:
        records.validate(r.as_json())
        validator(f"records/{r.kind}.schema.json").validate(r.as_json())
        kinds.add(r.kind)
    for doc in _examples():
        Record.from_value(doc)
        records.validate(doc)
        validator(f"bodies/{doc['kind']}.schema.json").validate(doc["body"])
        kinds.add(Kind(doc["kind"]))
    assert kinds == set(Kind)


def test_the_vectors_valid_bundles_hold_valid_headers_and_records() -> None:
    index = json.loads((SPEC / "vectors" / "index.json").read_text())
    headers, records = validator("signed-header.schema.json"), validator("record.schema.json")
    valid = [c for c in index if c["want"]["ok"]]
    assert valid
    for case in valid:
        bundle = json.loads((SPEC / "vectors" / case["file"]).read_bytes())
        validator("registry.schema.json").validate(bundle["registry"])
        for h in bundle["headers"]:
            headers.validate(h)
        for r in bundle["records"]:
            records.validate(r["record"])


# ---------------------------------------------------------------- invalid objects

Edit = Callable[[Doc], object]


def _edited(doc: Doc, edit: Edit) -> Doc:
    out = copy.deepcopy(doc)
    edit(out)
    return out


def _both_refuse(schema: str, doc: Doc, parse: Callable[[Doc], object]) -> None:
    errors = list(validator(schema).iter_errors(doc))
    assert errors, f"the schema {schema} accepts it"
    with pytest.raises((SchemaError, EncodingError)):
        parse(doc)


REGISTRY_EDITS: dict[str, Edit] = {
    "no signatures": lambda d: d.pop("sigs"),
    "an unknown field": lambda d: d["registry"].update(extra=1),
    "version 2": lambda d: d["registry"].update(v=2),
    "a lower-case code": lambda d: d["registry"]["participants"][0].update(code="bw"),
    "an unknown role": lambda d: d["registry"]["participants"][0].update(role="king"),
    "no participant": lambda d: d["registry"].update(participants=[]),
    "a key in capitals": lambda d: d["registry"]["participants"][0].update(
        key=d["registry"]["participants"][0]["key"].upper()
    ),
    "a short governance key": lambda d: d["registry"]["governance"]["keys"].__setitem__(
        0, "ab" * 31
    ),
    "threshold 0": lambda d: d["registry"]["governance"].update(threshold=0),
    "a negative tolerance": lambda d: d["registry"]["params"].update(tolerance_bp=-1),
    "cosign 65": lambda d: d["registry"]["params"].update(cosign=65),
    "a producers year of two digits": lambda d: d["registry"]["params"].update(
        producers={"26": ["BW"]}
    ),
    "a creation date without time": lambda d: d["registry"].update(created="2026-01-01"),
    "a signature without key id": lambda d: d["sigs"][0].pop("key_id"),
}


@pytest.mark.parametrize("what", sorted(REGISTRY_EDITS))
def test_the_registry_schema_refuses(what: str) -> None:
    doc = json.loads(NETWORKS[1][0].registry.to_bytes())
    bad = _edited(doc, REGISTRY_EDITS[what])
    _both_refuse("registry.schema.json", bad, lambda d: Registry.parse(canonical_bytes(d)))


HEADER_EDITS: dict[str, Edit] = {
    "height 0": lambda d: d["header"].update(height=0),
    "a negative size": lambda d: d["header"].update(size=-1),
    "an unknown field": lambda d: d["header"].update(extra=1),
    "no key id": lambda d: d["header"].pop("key_id"),
    "a short prev": lambda d: d["header"].update(prev=d["header"]["prev"][:63]),
    "a root in capitals": lambda d: d["header"].update(root=d["header"]["root"].upper()),
    "a time without Z": lambda d: d["header"].update(time=d["header"]["time"][:-1]),
    "a one-letter chain": lambda d: d["header"].update(chain="B"),
    "a witness without hash": lambda d: d["header"]["witness"][0].pop("hash"),
    "a witness at height 0": lambda d: d["header"]["witness"][0].update(height=0),
    "a short signature": lambda d: d.update(sig=d["sig"][:126]),
    "no signature": lambda d: d.pop("sig"),
}


@pytest.mark.parametrize("what", sorted(HEADER_EDITS))
def test_the_header_schema_refuses(what: str) -> None:
    witnessed = next(b for b in BLOCKS if b.header.witness)
    doc = witnessed.signed.to_json()
    bad = _edited(doc, HEADER_EDITS[what])
    _both_refuse("signed-header.schema.json", bad, SignedHeader.from_json)
    if "header" in bad and "sig" in bad and what != "a short signature":
        _both_refuse("header.schema.json", bad["header"], Header.from_json)


BLOCK_EDITS: dict[str, Edit] = {
    "records not a list": lambda d: d.update(records={}),
    "an unknown field": lambda d: d.update(extra=[]),
    "a record of an unknown kind": lambda d: d["records"][0].update(kind="parcel.steal"),
    "a record without body": lambda d: d["records"][0].pop("body"),
}


@pytest.mark.parametrize("what", sorted(BLOCK_EDITS))
def test_the_block_schema_refuses(what: str) -> None:
    doc = next(b for b in BLOCKS if b.records).to_json()
    bad = _edited(doc, BLOCK_EDITS[what])
    _both_refuse("block.schema.json", bad, lambda d: Block.from_json(d, max_records=1000))


def _first_required(doc: Doc) -> str:
    schema = FILES[f"bodies/{doc['kind']}.schema.json"]
    return str(schema["required"][0])


RECORD_EDITS: dict[str, Edit] = {
    "version 1": lambda d: d.update(v=1),
    "an id with a space": lambda d: d.update(id="an id"),
    "a network of 31 bytes": lambda d: d.update(network=d["network"][:62]),
    "an unknown field": lambda d: d.update(extra=1),
    "an unknown body field": lambda d: d["body"].update(zzz=1),
    "a required body field missing": lambda d: d["body"].pop(_first_required(d)),
    "the body of another kind": lambda d: d.update(
        kind="party.revoke" if d["kind"] != "party.revoke" else "party.register"
    ),
    "an empty signature list": lambda d: d.update(sigs=[]),
}


@pytest.mark.parametrize("what", sorted(RECORD_EDITS))
@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_the_record_schema_refuses(kind: str, what: str) -> None:
    doc = seal_record(example_record(kind, network=NETWORKS[0][0].network_id)).as_json()
    bad = _edited(doc, RECORD_EDITS[what])
    _both_refuse("record.schema.json", bad, Record.from_value)
