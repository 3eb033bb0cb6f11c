"""Hostile input never makes a 5xx: huge integers, random JSON, extreme query values.

Every operation of the node's own ``/openapi.json`` is called with random path
and query values (huge and negative integers among them) and, where it takes
a body, random JSON documents: random shapes, and valid records, gossip
messages and bundles with one leaf replaced by something hostile (a
5,000-digit integer above all). Each call is made without a token and with
each role's token. An answer may refuse (4xx); it may never be a 5xx.
Bounded: ``KPL_FUZZ_EXAMPLES`` (default 60) examples per test, no deadline.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from api_support import TOKENS, serve
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpledger.cli.example import run_example
from kpledger.ledger.bundle import serialize_bundle
from kpledger.ledger.records import MAX_INDEX
from kpledger.ledger.store.bundles import build_bundle

EXAMPLES = int(os.environ.get("KPL_FUZZ_EXAMPLES", "60"))
_HERE = Path(tempfile.gettempdir())

_story = run_example("sqlite://")
_signer = _story.net.signers["EU"]
EU = serve("EU", _story.store, _HERE, _signer)
NETWORK = _story.store.registry.network_id
BUNDLE = json.loads(serialize_bundle(build_bundle(_story.store, _story.final_parcel)))
OPERATIONS = [
    (method.upper(), path, op)
    for path, ops in EU.get("/openapi.json").json()["paths"].items()
    for method, op in ops.items()
]
HEADERS = [{}] + [{"Authorization": f"Bearer {t}"} for t in TOKENS.values()]

fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)

# ---------------------------------------------------------------- JSON text


def huge(digits: int, sign: str = "") -> str:
    return sign + "9" * digits


HOSTILE_NUMBERS = st.one_of(
    st.integers(17, 6000).map(huge),
    st.integers(17, 6000).map(lambda n: huge(n, "-")),
    st.sampled_from(
        [
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            str(2**53),
            str(-(2**53)),
            "1e999",
            "-0",
            "0.5",
            "1E400",
        ]
    ),
)
LEAVES = st.one_of(
    st.sampled_from(["null", "true", "false", '""', "0", "-1"]),
    st.integers(-(2**63), 2**63).map(str),
    HOSTILE_NUMBERS,
    st.text(max_size=20).map(json.dumps),
)
KEYS = st.one_of(
    st.sampled_from(
        ["records", "network", "from", "heads", "evidence", "kind", "body", "height", "id", "v"]
    ),
    st.text(max_size=8),
)


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(items: dict[str, str]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in items.items()) + "}"


RANDOM_JSON = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(_array),
        st.dictionaries(KEYS, children, max_size=4).map(_object),
    ),
    max_leaves=12,
)


def dump_with(value: Any, path: tuple[Any, ...], text: str) -> str:
    """``value`` as JSON text with the leaf at ``path`` replaced by raw ``text``."""
    if not path:
        return text
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return _object(
            {k: dump_with(v, rest, text) if k == head else json.dumps(v) for k, v in value.items()}
        )
    return _array(
        [dump_with(v, rest, text) if i == head else json.dumps(v) for i, v in enumerate(value)]
    )


def leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaf_paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaf_paths(v, (*prefix, i))]
    return [prefix]


def _record(weight: int) -> dict[str, Any]:
    return {
        "v": 2,
        "network": NETWORK,
        "chain": "EU",
        "kind": "parcel.transfer",
        "id": "fuzz-1",
        "time": "2026-01-01T00:00:00Z",
        "body": {"parcel": "EU-AW-1", "to": "EU-LVESSCDL", "value": weight},
    }


TEMPLATES: list[Any] = [
    _record(100),
    {"records": [_record(100), _record(200)]},
    {
        "network": NETWORK,
        "from": "BW",
        "heads": {"BW": {"height": 1, "hash": "00"}},
        "evidence": [],
    },
    {"format": BUNDLE["format"], "subject": BUNDLE["subject"], "records": BUNDLE["records"][:2]},
]
# the template paths, computed once: a hostile leaf is put in one of them
MUTATION_SITES = [(t, p) for t in TEMPLATES for p in leaf_paths(t)]

MUTATED = st.tuples(st.sampled_from(MUTATION_SITES), HOSTILE_NUMBERS).map(
    lambda site_text: dump_with(site_text[0][0], site_text[0][1], site_text[1])
)
BODIES = st.one_of(RANDOM_JSON, MUTATED, st.binary(max_size=64).map(lambda b: b.decode("latin-1")))

# ---------------------------------------------------------------- path and query values

VALUES = st.one_of(
    HOSTILE_NUMBERS,
    st.sampled_from(["IN-CUT-1", "BW-2026-0001", "BW", "EU", "2026", "2026-Q1", "csv", "0", "-1"]),
    st.integers(-(2**70), 2**70).map(str),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/?#"), max_size=12),
)


def _params(op: dict[str, Any], where: str) -> list[str]:
    return [p["name"] for p in op.get("parameters", []) if p["in"] == where]


def _call(
    client: TestClient,
    method: str,
    path: str,
    op: dict[str, Any],
    draw: Any,
    headers: dict[str, str],
) -> Any:
    url = path
    for name in _params(op, "path"):
        url = url.replace("{" + name + "}", quote(draw(VALUES), safe="") or "x")
    query = {name: draw(VALUES) for name in _params(op, "query") if draw(st.booleans())}
    kwargs: dict[str, Any] = {"params": query, "headers": dict(headers)}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["content"] = draw(BODIES).encode("utf-8", "surrogatepass")
        kwargs["headers"]["Content-Type"] = "application/json"
    return client.request(method, url, **kwargs)


@pytest.mark.parametrize(
    ("method", "path", "op"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
@fuzz
@given(data=st.data(), who=st.sampled_from(HEADERS))
def test_no_operation_answers_5xx(
    method: str, path: str, op: dict[str, Any], data: st.DataObject, who: dict[str, str]
) -> None:
    answer = _call(EU, method, path, op, data.draw, who)
    assert answer.status_code < 500, f"{method} {answer.request.url}: {answer.text[:300]}"


# ---------------------------------------------------------------- the reported cases


@pytest.mark.parametrize(
    ("path", "role"),
    [("/v1/records", "operator"), ("/v1/gossip", "peer"), ("/v1/bundles/verify", None)],
)
def test_a_5000_digit_integer_is_a_problem_naming_it(path: str, role: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if role is not None:
        headers["Authorization"] = f"Bearer {TOKENS[role]}"
    body = ('{"records":[{"v":' + huge(5000) + "}]}").encode()
    answer = EU.post(path, content=body, headers=headers)
    if path == "/v1/bundles/verify":  # the verifier answers its verdict, step 1 failed
        assert answer.status_code == 200, answer.text
        assert answer.json()["ok"] is False
        assert answer.json()["step"] == "parse"
        assert "5000 digits" in answer.json()["error"]
        return
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == "urn:kpledger:problem:encoding"
    assert "5000 digits" in answer.json()["detail"]


@pytest.mark.parametrize("start", [str(2**63 - 1), str(2**53), huge(40), "-1", "0"])
def test_block_range_start_is_bounded(start: str) -> None:
    answer = EU.get(
        "/v1/chains/BW/blocks",
        params={"from": start},
        headers={"Authorization": f"Bearer {TOKENS['peer']}"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "query.from"


def test_block_range_start_at_the_bound_is_an_empty_range() -> None:
    answer = EU.get(
        "/v1/chains/BW/blocks",
        params={"from": str(MAX_INDEX)},
        headers={"Authorization": f"Bearer {TOKENS['peer']}"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"blocks": []}
