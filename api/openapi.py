"""The OpenAPI schema's stable parts: operation ids and the typed record bodies.

* Operation ids are short and stable (``records.submit``, ``audit.report``):
  generated clients name their functions after them, so they must not change
  with a handler's Python name. A route not listed gets
  ``<router module>.<function>``.
* Records: ``/openapi.json`` carries every record kind as a schema, traced
  from the parsers in ``ledger.records`` (``ledger.record_schema``), joined
  in ``Record``, a union discriminated on ``kind``; ``RecordSubmission`` (one
  record, or ``{"records": [...]}``) is the body of ``POST /v1/records``.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

from kpledger.ledger.record_schema import kind_schemas, record_schema
from kpledger.ledger.records import Kind

__all__ = ["OPERATION_IDS", "add_record_schemas", "component_name", "operation_id"]

#: handler (module, function) -> operation id
OPERATION_IDS: dict[tuple[str, str], str] = {
    ("records", "submit"): "records.submit",
    ("records", "outcome"): "records.outcome",
    ("parcels", "get_parcel"): "parcels.get",
    ("parcels", "get_history"): "parcels.history",
    ("bundles", "get_bundle"): "parcels.bundle",
    ("bundles", "verify"): "bundles.verify",
    ("certificates", "get_certificate"): "certificates.get",
    ("audit", "report"): "audit.report",
    ("stats", "stats"): "stats.get",
    ("search", "prefix"): "search.prefix",
    ("peers", "heads"): "network.heads",
    ("peers", "gossip"): "network.gossip",
    ("peers", "blocks"): "network.blocks",
    ("peers", "evidence"): "network.evidence",
    ("peers", "disclosures"): "network.disclosures",
    ("ops", "healthz"): "ops.health",
    ("ops", "metrics"): "ops.metrics",
    ("web", "registry"): "network.registry",
    ("web", "whoami"): "auth.whoami",
    ("web", "network"): "network.view",
}

#: the most records one submission may carry
MAX_BATCH = 1000


def operation_id(route: APIRoute) -> str:
    module = route.endpoint.__module__.rsplit(".", 1)[-1]
    name = route.endpoint.__name__
    return OPERATION_IDS.get((module, name), f"{module}.{name}")


def component_name(kind: Kind | str) -> str:
    """``parcel.split`` -> ``ParcelSplit``."""
    return "".join(part.capitalize() for part in str(kind).replace("_", ".").split("."))


def add_record_schemas(schema: dict[str, Any]) -> None:
    """Add the record schemas to an OpenAPI document's components."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    mapping: dict[str, str] = {}
    for kind, body in kind_schemas().items():
        name = component_name(kind)
        components[f"{name}Body"] = {**body, "title": f"{name}Body"}
        components[f"{name}Record"] = {
            **record_schema(kind, f"#/components/schemas/{name}Body"),
            "title": f"{name}Record",
        }
        mapping[str(kind)] = f"#/components/schemas/{name}Record"
    components["Record"] = {
        "title": "Record",
        "description": "A record of any kind, told apart by `kind`. Weights are integer "
        "hundredths of a carat, values integer US cents, times UTC.",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "kind", "mapping": mapping},
    }
    components["RecordBatch"] = {
        "title": "RecordBatch",
        "type": "object",
        "description": f"Up to {MAX_BATCH:,} records, judged in order.",
        "properties": {
            "records": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": {"$ref": "#/components/schemas/Record"},
            }
        },
        "required": ["records"],
        "additionalProperties": False,
    }
    components["RecordSubmission"] = {
        "title": "RecordSubmission",
        "description": 'One record, or `{"records": [...]}`.',
        "oneOf": [
            {"$ref": "#/components/schemas/Record"},
            {"$ref": "#/components/schemas/RecordBatch"},
        ],
    }
