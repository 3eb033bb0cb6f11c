"""GET /v1/search: parcel ids and certificate numbers by prefix, public, bounded."""

from __future__ import annotations

import pytest
from api_support import Example


def test_prefix_finds_ids_and_numbers_ignoring_case(example: Example) -> None:
    answer = example.wdc.get("/v1/search", params={"prefix": "bw-"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["prefix"] == "bw-"
    assert {"BW-JW-1", "BW-JW-1c", "BW-OR-1"} <= set(body["parcels"])
    assert {"BW-2026-0001", "BW-2026-0002"} <= set(body["certificates"])
    assert all(p.upper().startswith("BW-") for p in body["parcels"] + body["certificates"])
    assert body["parcels"] == sorted(body["parcels"])
    assert set(body) == {"prefix", "parcels", "certificates"}


def test_limit_bounds_each_list(example: Example) -> None:
    body = example.eu.get("/v1/search", params={"prefix": "BW-", "limit": 1}).json()
    assert len(body["parcels"]) == 1
    assert len(body["certificates"]) == 1


def test_nothing_found_is_an_empty_answer(example: Example) -> None:
    body = example.wdc.get("/v1/search", params={"prefix": "ZZ-%"}).json()
    assert body["parcels"] == []
    assert body["certificates"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "prefix"),
        ({"prefix": ""}, "prefix"),
        ({"prefix": "X" * 57}, "prefix"),
        ({"prefix": "BW", "limit": 0}, "limit"),
        ({"prefix": "BW", "limit": 51}, "limit"),
    ],
)
def test_bad_queries_are_problems_naming_the_field(
    example: Example, params: dict[str, object], field: str
) -> None:
    answer = example.wdc.get("/v1/search", params=params)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.text
