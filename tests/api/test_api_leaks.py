"""No clear value or party name reaches a caller who is not entitled to it.

One test over every GET endpoint of ``/openapi.json`` (so a new endpoint is
covered without a change here), filled with every id of the example story,
plus the explorer's pages, the certificates' QR codes, bundles, ``/metrics``,
error answers and the log, for each role: the public, a peer, a party
(``IN-JDAV2W3X``), the EU authority's operator and an auditor. Each confidential
value the store holds (``disclosures``) may appear only in the answers of a
role entitled to it (``ledger.entitle`` for the authority, the records naming
it or the parcels it holds for the party, everything for the auditor).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from api_support import Example, bearer
from fastapi.testclient import TestClient

from kpledger.ledger.entitle import entitled
from kpledger.ledger.records import Record
from kpledger.ledger.store import Store
from kpledger.ledger.store import tables as t

PARCELS = ["BW-JW-1", "BW-JW-1c", "BW-OR-1", "AE-MIX-1", "EU-AW-1", "IN-CUT-2", "IN-CUT-1"]
CERTIFICATES = ["BW-2026-0001", "BW-2026-0002", "RU-2026-0001", "AE-2026-0001", "EU-2026-0001"]
CHAINS = ["BW", "RU", "AE", "EU", "IN", "KP"]
FILL = {
    "parcel_id": [*PARCELS, "XX-NOPE"],
    "number": [*CERTIFICATES, "XX-2026-9999"],
    "record_id": ["r1", "r7", "r20", "nope"],
    "chain": CHAINS,
    "country": CHAINS,
    "period": ["2026", "2026-Q1"],
    "quarter": ["2026-Q1"],
    "prefix": ["BW", "EU-", "IN-J", "AE"],
}
PARTY = "IN-JDAV2W3X"
_PARTY_FIELDS = ("party", "custodian", "to", "exporter")


def urls(spec: dict[str, Any]) -> Iterator[str]:
    """Every GET of the schema, once for each value of each parameter it takes."""
    for path, ops in sorted(spec["paths"].items()):
        if "get" not in ops:
            continue
        params = [
            p for p in ops["get"].get("parameters", []) if p["in"] == "path" or p.get("required")
        ]
        combos: list[dict[str, str]] = [{}]
        for p in params:
            combos = [{**c, p["name"]: v} for c in combos for v in FILL[p["name"]]]
        for c in combos:
            url = path
            query = []
            for p in params:
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", c[p["name"]])
                else:
                    query.append(f"{p['name']}={c[p['name']]}")
            yield url + ("?" + "&".join(query) if query else "")


def harvest(client: TestClient, headers: dict[str, str]) -> str:
    spec = client.get("/openapi.json").json()
    extra = [
        "/",
        "/v1/stats?period=2026&format=csv",
        "/v1/audit/report?since=2026-01-01",
        *(f"/web/qr/{n}.svg" for n in CERTIFICATES),
        "/v1/parcels/bad id",
        "/v1/certificates/bad id/parties",
    ]
    texts = []
    for url in [*urls(spec), *extra]:
        answer = client.get(url, headers=headers)
        texts.append(f"{url} {answer.status_code} {answer.text}")
    return "\n".join(texts)


def held(store: Store) -> list[tuple[Record, str, int | str, str]]:
    """(record, path, clear value, commitment) of every disclosure the store holds."""
    d, r = t.disclosures.c, t.records.c
    out = []
    with store.engine.connect() as conn:
        rows = conn.execute(
            t.disclosures.join(t.records, r.leaf == d.record)
            .select()
            .with_only_columns(r.raw, d.path, d.value, d.commitment)
        ).all()
    for raw, path, value, commitment in rows:
        out.append((Record.parse(bytes(raw)), str(path), json.loads(value), str(commitment)))
    return out


def allowed(role: str, store: Store) -> Any:
    if role == "auditor":
        return lambda record, commitment: True
    if role == "operator":
        shipping = store.disclosures.exporters_to("EU")
        return lambda record, commitment: entitled("EU", "authority", record, shipping.__contains__)
    if role == "party":
        with store.engine.connect() as conn:  # every parcel the party holds, or held last
            own = {
                str(v)
                for (v,) in conn.execute(
                    t.parcels.select()
                    .with_only_columns(t.parcels.c.value)
                    .where(t.parcels.c.custodian == PARTY)
                )
            }
        return lambda record, commitment: (
            commitment in own or any(record.body_json.get(f) == PARTY for f in _PARTY_FIELDS)
        )
    return lambda record, commitment: False


def present(value: int | str, text: str) -> bool:
    if isinstance(value, int):
        return re.search(rf"(?<![0-9]){value}(?![0-9])", text) is not None
    return value in text


@pytest.fixture
def log_text(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.mark.timeout(300)
@pytest.mark.parametrize("role", ["public", "peer", "party", "operator", "auditor"])
def test_no_clear_value_or_name_where_not_entitled(
    example: Example, role: str, log_text: pytest.LogCaptureFixture
) -> None:
    client = example.eu if role in ("operator", "peer") else example.wdc
    headers = bearer(f"party:{PARTY}" if role == "party" else role) if role != "public" else {}
    text = harvest(client, headers)
    text += "\n" + "\n".join(r.getMessage() for r in log_text.records)
    public = example.wdc.get("/v1/registry").text  # country names are public
    ok = allowed(role, example.store)
    everything = held(example.store)
    # a clear value the caller may see (its certificate line, say) may equal one it may
    # not (the exporter's own register): only a value it may see nowhere is a leak
    seen = {value for record, _, value, commitment in everything if ok(record, commitment)}
    leaked, shown, hidden = [], 0, 0
    for record, path, value, commitment in everything:
        weak = (isinstance(value, int) and value < 100_000) or (
            isinstance(value, str) and (len(value) < 6 or value in public)
        )
        if weak:
            continue  # too short to tell from other text, or a country name
        if ok(record, commitment):
            shown += present(value, text)
            continue
        hidden += 1
        if value not in seen and present(value, text):
            leaked.append((record.chain, record.kind.value, record.id, path, value))
    assert not leaked, leaked[:10]
    assert hidden or role == "auditor"
    if role in ("auditor", "operator", "party"):
        assert shown > 0, "the entitled caller sees some clear values: the search works"
