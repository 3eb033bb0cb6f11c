"""The JSON Schema files of the bundle specification (``docs/spec/schemas/``).

Every signed or hashed object a verifier parses gets one file (JSON Schema
2020-12), named by a path under ``SCHEMA_BASE``:

* ``registry.schema.json``: the signed genesis registry;
* ``header.schema.json``, ``signed-header.schema.json``: a block header, and
  a header with its signature (as in a bundle's ``headers``);
* ``block.schema.json``: a block as nodes exchange it (signed header and records);
* ``record.schema.json``: any record, one of ``records/<kind>.schema.json``,
  each with its body in ``bodies/<kind>.schema.json``.

Records, their bodies, headers, blocks and the registry's ``params`` are
traced from their parsers (``ledger.record_schema``), so a new field appears
here as soon as a parser reads it. The registry's envelope is written out
below instead: ``Registry.parse`` reads bytes and checks signatures while it
reads, which a trace cannot follow; ``tests/ledger/test_spec_schemas.py``
holds it to the parser (what one accepts or refuses, so does the other).
What a schema cannot say, a verifier still checks: signatures, hashes,
sorted and unique lists, the custody rules. Hex fields (network ids, hashes,
keys, signatures) are lower-case hex of their exact length here, as
``canonical.from_hex`` reads them.

Pure; ``python -m kpledger.devtools.spec_schemas docs/spec/schemas`` writes the files.
"""

from __future__ import annotations

import copy
from typing import Any

from kpledger.ledger.blocks import Block, SignedHeader
from kpledger.ledger.record_schema import (
    body_schema,
    header_schema,
    params_schema,
    record_schema,
    traced,
)
from kpledger.ledger.records import PARTICIPANT_ROLES, Kind
from kpledger.ledger.registry import MAX_PARTICIPANTS

__all__ = ["DRAFT", "SCHEMA_BASE", "spec_schemas"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
#: the base of every ``$id`` (the reserved ``.invalid`` domain: nothing is fetched from it)
SCHEMA_BASE = "https://kpledger.invalid/spec/schemas/"
#: the largest block the registry's ``params.max_block_records`` can allow
MAX_BLOCK_RECORDS = 100_000

#: field name -> its bytes, for the fields that hold lower-case hex of one length
_HEX_BYTES = {
    "network": 32,
    "prev": 32,
    "root": 32,
    "state": 32,
    "key_id": 32,
    "hash": 32,
    "key": 32,
    "sig": 64,
}
_TIME = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
_CODE = "^[A-Z]{2,8}$"

_HEADER_DOCS = {
    "v": "Header format version: 2 (format 1, without state, is refused).",
    "chain": "The chain this block extends: its authority's code, or KP.",
    "height": "The block's height on its chain, from 1.",
    "prev": "Hash of the chain's previous header (SHA-256 of 'KPL-HEADER-V1\\n' and its "
    "canonical bytes), or the network id at height 1; hex.",
    "size": "Records in the chain's log after this block.",
    "root": "RFC 9162 root of the chain's log at that size, hex.",
    "state": "Root of the chain's parcel state tree after the block (each parcel its "
    "records acted on: the latest of them and their count; bundle.md section 4), hex.",
    "time": "When the block was sealed, UTC (YYYY-MM-DDTHH:MM:SSZ).",
    "witness": "The heads of other chains the block has seen: one entry per chain, sorted "
    "by chain, never its own; heights never go back along a chain.",
    "key_id": "SHA-256 of the raw Ed25519 public key that signs the header, hex.",
}
_WITNESS_DOCS = {
    "chain": "A witnessed chain.",
    "height": "Its height as witnessed.",
    "hash": "Its header's hash at that height, hex.",
}
_PARAM_DOCS = {
    "tolerance_bp": "How far a received weight may differ from the certificate's before it "
    "is a discrepancy, in basis points (50 = 0.5 %).",
    "max_validity_days": "The longest a certificate may be valid, in days.",
    "max_block_records": "The most records in one block.",
    "max_block_bytes": "The most bytes in one block.",
    "heartbeat_seconds": "An idle authority seals an empty block after this many seconds.",
    "issue_backdate_days": "How many days a certificate's issue date may lie before its "
    "record's date (absent: the default).",
    "producers": "Per calendar year, the participants with recorded production (the audit "
    "report's reference); a year not named falls back to the shipped 2023 table.",
    "cosign": "Other authorities whose headers must witness a block before a bundle holding "
    "it verifies offline (absent: 2, or the authorities minus one if fewer).",
    "min_cell": "Statistical disclosure control: a public statistics cell, and a quarterly "
    "report's cell, built from fewer records than this shows no USD (absent: 3).",
}


def _hex(schema: Any, name: str = "") -> Any:
    """``schema`` with every string property named in ``_HEX_BYTES`` made exact lower-case
    hex (``name`` is the property ``schema`` describes, if any)."""
    if isinstance(schema, list):
        return [_hex(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: {p: _hex(v, p) for p, v in value.items()} if k == "properties" else _hex(value)
        for k, value in schema.items()
    }
    size = _HEX_BYTES.get(name)
    if size is not None and out.get("type") == "string" and "pattern" not in out:
        out.update(minLength=2 * size, maxLength=2 * size, pattern=f"^[0-9a-f]{{{2 * size}}}$")
    return out


def _redescribe(schema: dict[str, Any], docs: dict[str, str]) -> dict[str, Any]:
    for name, text in docs.items():
        schema["properties"][name]["description"] = text
    return schema


def _file(path: str, title: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": DRAFT, "$id": SCHEMA_BASE + path, "title": title, **_hex(schema)}


def _header() -> dict[str, Any]:
    schema = _redescribe(header_schema(), _HEADER_DOCS)
    _redescribe(schema["properties"]["witness"]["items"], _WITNESS_DOCS)
    return schema


def _signed_header() -> dict[str, Any]:
    schema = traced(SignedHeader.from_json, "signed header")
    schema["properties"]["header"] = {"$ref": "header.schema.json"}
    schema["properties"]["sig"]["description"] = (
        "Ed25519 signature of 'KPL-HEADER-V1\\n' and the header's canonical bytes, hex."
    )
    schema["description"] = "A block header with its signature by the chain's key."
    return schema


def _block() -> dict[str, Any]:
    schema = traced(lambda value: Block.from_json(value, max_records=MAX_BLOCK_RECORDS), "block")
    props = schema["properties"]
    props["header"] = {"$ref": "header.schema.json"}
    props["sig"]["description"] = "The header's signature (see signed-header.schema.json)."
    records = props["records"]
    records["items"] = {"$ref": "record.schema.json"}
    records["description"] = (
        "The block's records in log order; at most the registry's params.max_block_records."
    )
    schema["description"] = "A block as nodes exchange it: signed header and records."
    return schema


def _registry() -> dict[str, Any]:
    """The signed registry's envelope, written beside ``Registry.parse`` (module docstring)."""

    def text(description: str, max_len: int, pattern: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "description": description,
            "type": "string",
            "minLength": 1,
            "maxLength": max_len,
        }
        if pattern is not None:
            out["pattern"] = pattern
        return out

    def obj(props: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": props,
            "required": [k for k in props if k not in optional],
            "additionalProperties": False,
        }

    participant = obj(
        {
            "code": text("The participant's code (its chain, if an authority).", 8, _CODE),
            "name": text("Its name.", 200),
            "role": {
                "description": "authority (writes a chain) or auditor (reads every chain).",
                "type": "string",
                "enum": sorted(PARTICIPANT_ROLES),
            },
            "url": text("Its node's URL, as peers reach it.", 300),
            "key": text("Its Ed25519 public key, raw, hex.", 64),
        }
    )
    governance = obj(
        {
            "keys": {
                "description": "The governance keys (raw Ed25519 public keys, hex), distinct.",
                "type": "array",
                "minItems": 1,
                "maxItems": 64,
                "uniqueItems": True,
                "items": {
                    "type": "string",
                    "minLength": 64,
                    "maxLength": 64,
                    "pattern": "^[0-9a-f]{64}$",
                },
            },
            "threshold": {
                "description": "Governance signatures needed, at most the number of keys.",
                "type": "integer",
                "minimum": 1,
                "maximum": 64,
            },
            "sealer": text("The authority that seals chain KP (absent: the first).", 8, _CODE),
        },
        optional=("sealer",),
    )
    body = obj(
        {
            "v": {"description": "Registry format version: 1.", "type": "integer", "const": 1},
            "name": text("The network's name.", 100),
            "created": {
                "description": "When it was made, UTC.",
                "type": "string",
                "pattern": _TIME,
            },
            "participants": {
                "description": "Every participant at genesis, codes unique, KP not among them.",
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_PARTICIPANTS,
                "items": participant,
            },
            "governance": governance,
            "params": _redescribe(params_schema(), _PARAM_DOCS),
        }
    )
    sig = obj(
        {
            "key_id": text("SHA-256 of the governance key that signed, hex.", 64),
            "sig": text("Ed25519 signature of 'KPL-REGISTRY-V1\\n' and the registry's bytes.", 128),
        }
    )
    return {
        "description": "The signed genesis registry, the verifier's trust anchor; its network id "
        "is SHA-256 of 'KPL-REGISTRY-V1\\n' and the canonical bytes of 'registry'. At least "
        "the threshold of distinct governance keys must have signed.",
        **obj(
            {
                "registry": body,
                "sigs": {
                    "description": "Governance signatures over the registry.",
                    "type": "array",
                    "maxItems": 64,
                    "items": sig,
                },
            }
        ),
    }


def _records() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for kind in Kind:
        body = body_schema(kind, signed=True)
        out[f"bodies/{kind}.schema.json"] = _file(
            f"bodies/{kind}.schema.json", f"body of {kind}", body
        )
        record = copy.deepcopy(record_schema(kind, f"../bodies/{kind}.schema.json"))
        record.pop("title", None)
        out[f"records/{kind}.schema.json"] = _file(
            f"records/{kind}.schema.json", f"record {kind}", record
        )
    union = {
        "description": "A record: exactly one of the kinds of records/, chosen by its kind "
        "field. Its leaf hash is SHA-256 of 0x00 and its canonical bytes.",
        "type": "object",
        "required": ["kind"],
        "oneOf": [{"$ref": f"records/{kind}.schema.json"} for kind in Kind],
    }
    out["record.schema.json"] = _file("record.schema.json", "record", union)
    return out


def spec_schemas() -> dict[str, dict[str, Any]]:
    """Every schema file of ``docs/spec/schemas/``, by its path there."""
    files = {
        "registry.schema.json": _file("registry.schema.json", "signed registry", _registry()),
        "header.schema.json": _file("header.schema.json", "header", _header()),
        "signed-header.schema.json": _file(
            "signed-header.schema.json", "signed header", _signed_header()
        ),
        "block.schema.json": _file("block.schema.json", "block", _block()),
    }
    files.update(_records())
    return files
