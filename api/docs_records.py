"""docs/records.md: every record kind, its fields and one example, generated.

``python -m kpledger.api.docs_records`` writes the page from the schemas the node
publishes in ``/openapi.json`` (traced from the parsers in
``ledger.records``) and the examples below; ``--check`` exits 1 if the file
on disk differs (a test runs it). The examples are one story on the EU's
chain, in order; ``tests/api/test_api_records_docs.py`` submits each of them
to an EU node serving ``kpl example``'s network (with the record's ``time``,
the dates and the confirmation's reference made current) and checks the
node's answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kpledger.ledger.record_schema import KIND_DOCS, kind_schemas
from kpledger.ledger.records import FORMAT_VERSION, Kind

__all__ = ["EXAMPLES", "EXAMPLE_TIME", "NETWORK", "example_record", "render"]

PAGE = Path(__file__).resolve().parents[1] / "docs" / "records.md"
#: what the examples show for the network id and time (a real record has its own)
NETWORK = "<network id: the genesis registry's hash, 64 hex digits>"
EXAMPLE_TIME = "2026-03-02T09:30:00Z"
_KEY = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"

#: kind -> (chain, id, body): one story on the EU's chain, then the governance chain
EXAMPLES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "party.register": (
        "EU",
        "eu-docs-1",
        {
            "party": "EU-DOCS-TRADER",
            "name": "Example Rough Trading BV",
            "role": "exporter",
            "address": "Hoveniersstraat 2, 2018 Antwerpen",
        },
    ),
    "parcel.register": (
        "EU",
        "eu-docs-2",
        {
            "parcel": "EU-DOCS-P1",
            "custodian": "EU-LVESSCDL",
            "weight": 125_000,
            "value": 16_375_000,
            "hs": "7102.31",
            "mine": "Example alluvial site",
            "produced": "2026-03-01",
        },
    ),
    "parcel.transfer": (
        "EU",
        "eu-docs-3",
        {"parcel": "EU-DOCS-P1", "to": "EU-DOCS-TRADER", "value": 16_500_000},
    ),
    "parcel.split": (
        "EU",
        "eu-docs-4",
        {
            "parcel": "EU-DOCS-P1",
            "children": [
                {"parcel": "EU-DOCS-P2", "weight": 75_000, "value": 9_900_000},
                {"parcel": "EU-DOCS-P3", "weight": 50_000, "value": 6_600_000},
            ],
        },
    ),
    "parcel.merge": (
        "EU",
        "eu-docs-5",
        {
            "parents": ["EU-DOCS-P2", "EU-DOCS-P3"],
            "parcel": "EU-DOCS-P4",
            "custodian": "EU-DOCS-TRADER",
            "weight": 125_000,
            "value": 16_500_000,
        },
    ),
    "certificate.issue": (
        "EU",
        "eu-docs-6",
        {
            "number": "EU-DOCS-2026-1",
            "destination": "IN",
            "exporter": "EU-DOCS-TRADER",
            "importer": {"name": "Surat Rough Importers Pvt Ltd", "address": "Surat, Gujarat"},
            "lines": [
                {
                    "parcel": "EU-DOCS-P4",
                    "weight": 125_000,
                    "value": 16_500_000,
                    "hs": "7102.31",
                    "origin": {"EU": 125_000},
                }
            ],
            "carats": 125_000,
            "value": 16_500_000,
            "parcels": 1,
            "origin": "EU",
            "issued": "2026-03-02",
            "expires": "2026-05-31",
            "seal": "EU-SEAL-000123",
        },
    ),
    "policy.restrict_origin": (
        "EU",
        "eu-docs-7",
        {"origin": "ZW", "reason": "Council decision on rough diamonds of this origin"},
    ),
    "policy.lift_origin": ("EU", "eu-docs-8", {"origin": "ZW", "reason": "decision repealed"}),
    "certificate.confirm": (
        "EU",
        "eu-docs-9",
        {
            "number": "AE-2026-0001",
            "ref": {"chain": "AE", "index": 7, "hash": "9f" * 32},
            "custodian": "EU-LVESSCDL",
            "received": [{"parcel": "AE-MIX-1", "weight": 300_000}],
        },
    ),
    "certificate.void": (
        "EU",
        "eu-docs-10",
        {
            "number": "EU-DOCS-2026-1",
            "reason": "not confirmed before expiry",
            "importer_height": 412,
        },
    ),
    "certificate.refuse": (
        "EU",
        "eu-docs-13",
        {
            "number": "AE-2026-0001",
            "ref": {"chain": "AE", "index": 7, "hash": "9f" * 32},
            "code": "restricted-origin",
            "reason": "the lines hold Russian-origin rough, which this participant does not import",
        },
    ),
    "parcel.release": (
        "EU",
        "eu-docs-14",
        {"parcel": "AE-MIX-1", "reason": "weights reconciled with the exporting authority"},
    ),
    "claim.register": (
        "EU",
        "eu-docs-15",
        {
            "claim": "EU-DOCS-CLAIM1",
            "holder": "Example Diggers Association",
            "zone": "EU-DOCS-ZONE1",
            "location": [
                {"lat": 8_650_000, "lon": -10_970_000},
                {"lat": 8_660_000, "lon": -10_950_000},
                {"lat": 8_640_000, "lon": -10_940_000},
            ],
            "valid_from": "2026-01-01",
            "valid_until": "2036-12-31",
        },
    ),
    "licence.digger": (
        "EU",
        "eu-docs-16",
        {
            "licence": "EU-DOCS-DL1",
            "holder": "Example Diggers Cooperative",
            "type": "cooperative",
            "claim": "EU-DOCS-CLAIM1",
            "valid_from": "2026-01-01",
            "valid_until": "2036-12-31",
        },
    ),
    "licence.buyer": (
        "EU",
        "eu-docs-17",
        {
            "licence": "EU-DOCS-BL1",
            "party": "EU-DOCS-TRADER",
            "type": "collector",
            "zones": ["EU-DOCS-ZONE1"],
            "valid_from": "2026-01-01",
            "valid_until": "2036-12-31",
        },
    ),
    "parcel.purchase": (
        "EU",
        "eu-docs-18",
        {
            "parcel": "EU-DOCS-A1",
            "buyer": "EU-DOCS-BL1",
            "digger": "EU-DOCS-DL1",
            "claim": "EU-DOCS-CLAIM1",
            "method": "alluvial",
            "weight": 235,
            "price": 52_000,
            "hs": "7102.31",
            "bought": "2026-03-01",
        },
    ),
    "licence.end": (
        "EU",
        "eu-docs-19",
        {
            "licence": "EU-DOCS-DL1",
            "reason": "surrendered",
            "date": "2026-03-02",
            "note": "the cooperative left the claim",
        },
    ),
    "diagnostic.assess": (
        "EU",
        "eu-docs-20",
        {
            "indicator": "controls.claim_registry",
            "score": 3,
            "evidence": "claims register published; 412 claims mapped",
            "assessed": "2026-03-01",
        },
    ),
    "stats.report": (
        "EU",
        "stats-2025-Q4",
        {
            "quarter": "2025-Q4",
            "production": {"carats": 0, "parcels": 0},
            "exports": [
                {"partner": "AE", "carats": 412_500, "certificates": 5, "value": 98_000_000},
                {"partner": "BW", "carats": 9_000, "certificates": 1},
            ],
            "imports": [
                {"partner": "BW", "carats": 300_000, "certificates": 4, "value": 63_500_000}
            ],
        },
    ),
    "party.revoke": (
        "EU",
        "eu-docs-11",
        {"party": "EU-DOCS-TRADER", "reason": "licence withdrawn"},
    ),
    "key.rotate": ("EU", "eu-docs-12", {"key": _KEY}),
    "member.admit": (
        "KP",
        "kp-docs-1",
        {
            "code": "NA",
            "name": "Namibia Ministry of Mines and Energy",
            "role": "authority",
            "url": "https://kp.example.na:8101",
            "key": _KEY,
        },
    ),
    "member.suspend": ("KP", "kp-docs-2", {"code": "NA", "reason": "plenary decision"}),
    "member.reinstate": ("KP", "kp-docs-3", {"code": "NA", "reason": "review completed"}),
    "key.replace": (
        "KP",
        "kp-docs-4",
        {"code": "NA", "key": _KEY, "from_height": 120, "reason": "signing key lost"},
    ),
}


def example_record(kind: str, *, network: str = NETWORK, time: str = EXAMPLE_TIME) -> Any:
    chain, record_id, body = EXAMPLES[kind]
    return {
        "v": FORMAT_VERSION,
        "network": network,
        "chain": chain,
        "kind": kind,
        "id": record_id,
        "time": time,
        "body": json.loads(json.dumps(body)),
    }


def _type(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "object")
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if kind == "array":
        return f"list of {_type(schema['items'])}"
    if kind == "string" and "format" in schema:
        return str(schema["format"])
    return str(kind)


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    if "minimum" in schema:
        parts.append(f"{schema['minimum']:,}..{schema['maximum']:,}")
    if "maxLength" in schema:
        parts.append(f"1..{schema['maxLength']} chars")
    if "pattern" in schema and "format" not in schema:
        parts.append(f"`{schema['pattern']}`")
    if "minItems" in schema:
        parts.append(f"{schema['minItems']}..{schema['maxItems']:,} items")
    if "minProperties" in schema:
        parts.append(f"{schema['minProperties']}..{schema['maxProperties']} entries")
    return ", ".join(parts)


def _rows(schema: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    required = set(schema.get("required", []))
    for name, field in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        need = "yes" if name in required else "no"
        description = str(field.get("description", "")).replace("|", "\\|")
        rows.append(
            f"| `{path}` | {_type(field)} | {need} | {_constraints(field)} | {description} |"
        )
        if field.get("type") == "object" and "properties" in field:
            rows += _rows(field, f"{path}.")
        items = field.get("items", {})
        if field.get("type") == "array" and "properties" in items:
            rows += _rows(items, f"{path}[].")
    return rows


def render() -> str:
    out = [
        "# Record kinds",
        "",
        "Generated by `python -m kpledger.api.docs_records` from the schemas the node publishes in",
        "`/openapi.json` (`Record`, a union discriminated on `kind`), which are traced from",
        "the parsers in `ledger/records.py`: edit those, not this file.",
        "",
        f"Every record is one JSON object: `v` ({FORMAT_VERSION}), `network` (the network id), "
        "`chain` (the",
        "chain that takes it: the submitting authority's code, or `KP` for governance),",
        "`kind`, `id` (the submitter's id, unique on its chain), `time` (UTC,",
        "`YYYY-MM-DDTHH:MM:SSZ`, at most a minute after the node's clock) and `body`.",
        "Governance records (chain `KP`) also carry `sigs`, a threshold of governance",
        "signatures. Weights are integer **hundredths of a carat** (`125000` is",
        "1,250.00 ct), values integer **US cents** (`16375000` is 163,750.00 USD).",
        "Unknown fields are refused; every string refuses control, bidirectional and",
        "invisible characters.",
        "",
        "Submit with `POST /v1/records` (operator token): one record, or",
        '`{"records": [...]}` with up to 1,000. The same `id` with the same bytes again is',
        "idempotent; the same `id` with other content is a `409` conflict naming the",
        "record that holds it. The examples below form one story on the EU's chain (then",
        "the governance chain), as `tests/api/test_api_records_docs.py` submits them; a",
        "real record has the network's id and its own time.",
        "",
    ]
    schemas = kind_schemas()
    out += ["| kind | what it does |", "|---|---|"]
    out += [
        f"| [`{k}`](#{str(k).replace('.', '')}) | {KIND_DOCS.get(str(k), '')} |" for k in schemas
    ]
    out.append("")
    for kind, schema in schemas.items():
        out += [f"## {kind}", "", str(schema.get("description", "")), ""]
        out += ["| field | type | required | range | meaning |", "|---|---|---|---|---|"]
        out += [*_rows(schema, "body."), ""]
        if str(kind) in EXAMPLES:
            text = json.dumps(example_record(str(kind)), indent=2, ensure_ascii=False)
            out += ["```json", text, "```", ""]
        else:
            out += ["(No example yet: add one to `api/docs_records.py`.)", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--out", type=Path, default=PAGE)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(
                f"{args.out} is out of date: run python -m kpledger.api.docs_records",
                file=sys.stderr,
            )
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


assert all(k in {str(x) for x in Kind} for k in EXAMPLES)
