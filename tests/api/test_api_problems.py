"""Errors are RFC 9457 problem documents with a stable ``type`` per error class."""

from __future__ import annotations

import pytest
from api_support import Example, bearer
from fastapi.testclient import TestClient

BASE = "urn:kpledger:problem:"


def problem(
    client: TestClient, path: str, status: int, code: str, **kw: object
) -> dict[str, object]:
    answer = client.get(path, **kw)  # type: ignore[arg-type]
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["type"] == BASE + code
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


@pytest.mark.parametrize(
    "path",
    ["/v1/parcels/XX-NOPE", "/v1/parcels/XX-NOPE/history", "/v1/certificates/XX-2026-9999"],
)
def test_unknown_ids_are_404(example: Example, path: str) -> None:
    problem(example.wdc, path, 404, "not-found")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/parcels/not-an-id", {}, "parcel_id"),
        ("/v1/certificates/lower-case", {}, "number"),
        ("/v1/parcels/IN-CUT-1/history", {"limit": "0"}, "query.limit"),
        ("/v1/stats", {"period": "2025-Q5"}, "query.period"),
        ("/v1/stats", {}, "query.period"),
        ("/v1/stats", {"period": "2025", "format": "xml"}, "query.format"),
    ],
)
def test_bad_input_is_422_with_the_field(
    example: Example, path: str, params: dict[str, str], field: str
) -> None:
    body = problem(
        example.wdc, path, 422, "request" if "." in field else "invalid-data", params=params
    )
    assert body["field"] == field


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-05-01", "until": "2026-04-01"}, "since"),
        ({"days": "0"}, "query.days"),
        ({"limit": "1001"}, "query.limit"),
        ({"until": "yesterday"}, "query.until"),
    ],
)
def test_bad_report_bounds_are_422(example: Example, params: dict[str, str], field: str) -> None:
    answer = example.wdc.get("/v1/audit/report", params=params, headers=bearer("auditor"))
    assert answer.status_code == 422
    assert answer.json()["field"] == field
    assert answer.json()["type"].startswith(BASE)


def test_audit_needs_an_auditor_token(example: Example) -> None:
    problem(example.wdc, "/v1/audit/report", 401, "unauthorized")
    for role in ("operator", "peer", "party:IN-JDAV2W3X"):
        problem(example.wdc, "/v1/audit/report", 403, "forbidden", headers=bearer(role))
        problem(example.eu, "/v1/audit/report", 403, "forbidden", headers=bearer(role))
    wrong = {"Authorization": "Bearer not-a-token"}
    problem(example.wdc, "/v1/audit/report", 401, "unauthorized", headers=wrong)
    problem(example.wdc, "/v1/audit/report", 401, "unauthorized", headers={"Authorization": "x"})
    answer = example.wdc.get("/v1/audit/report")
    assert answer.headers["www-authenticate"] == "Bearer"


def test_a_wrong_token_is_401_even_where_the_public_may_read(example: Example) -> None:
    problem(
        example.wdc,
        "/v1/parcels/IN-CUT-1",
        401,
        "unauthorized",
        headers={"Authorization": "Bearer x"},
    )


def test_openapi_documents_problems_and_every_new_route(example: Example) -> None:
    schema = example.wdc.get("/openapi.json").json()
    report = schema["paths"]["/v1/audit/report"]["get"]
    for status in ("401", "403", "422"):
        content = report["responses"][status]["content"]
        assert content["application/problem+json"]["schema"]["$ref"].endswith("/ProblemOut")
    assert report["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AuditReportOut"
    )
    stats = schema["paths"]["/v1/stats"]["get"]["responses"]["200"]["content"]
    assert set(stats) == {"application/json", "text/csv"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
