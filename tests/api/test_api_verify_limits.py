"""POST /v1/bundles/verify is bounded before parsing; bundles are served gzip-compressed."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

from api_support import Example, bearer

from kpledger.api.routes.bundles import accepts_gzip
from kpledger.node.config import HttpLimits

CAP = HttpLimits().verify_max_bytes


def test_the_public_cap_is_refused_from_content_length_before_reading(example: Example) -> None:
    body = b"[" + b"0," * (CAP // 2) + b"0]"
    assert len(body) > CAP
    answer = example.wdc.post("/v1/bundles/verify", content=body)
    assert answer.status_code == 413, answer.text
    assert answer.json()["type"] == "urn:kpledger:problem:too-large"
    assert str(CAP) in answer.json()["detail"]
    assert "without a token" in answer.json()["detail"]


def test_the_public_cap_is_counted_while_a_body_streams(example: Example) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 64 x 64 KiB = 4 MiB, with no Content-Length
            sent += 65536
            yield b" " * 65536

    answer = example.wdc.post("/v1/bundles/verify", content=chunks())
    assert answer.status_code == 413, answer.text


def test_a_token_lifts_the_public_cap(example: Example) -> None:
    body = b'{"format":"' + b"x" * (CAP + 10) + b'"}'
    answer = example.wdc.post("/v1/bundles/verify", content=body, headers=bearer("auditor"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] is False  # read whole and verified: a bad bundle


def test_a_real_bundle_fits_the_public_cap(example: Example) -> None:
    bundle = example.wdc.get(f"/v1/parcels/{example.final}/bundle", headers=bearer("auditor"))
    assert len(bundle.content) < CAP / 4
    answer = example.wdc.post(
        "/v1/bundles/verify", params={"parcel": example.final}, content=bundle.content
    )
    assert answer.status_code == 200
    assert answer.json()["ok"] is True, answer.json()


def test_bundles_are_sent_gzip_compressed_when_accepted(example: Example) -> None:
    path = f"/v1/parcels/{example.final}/bundle"
    plain = example.wdc.get(path, headers={**bearer("auditor"), "Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers
    packed = example.wdc.get(path, headers={**bearer("auditor"), "Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert packed.content == plain.content  # the client decodes: the same canonical bytes
    raw = int(packed.headers["content-length"])
    assert raw == len(gzip.compress(plain.content, compresslevel=6, mtime=0))
    assert raw < len(plain.content) / 3


def test_accept_encoding_parsing() -> None:
    assert accepts_gzip("gzip, deflate, br")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert accepts_gzip("*")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("")
