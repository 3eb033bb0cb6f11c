"""The explorer's routes without a browser: static files, QR codes and JSON helpers.

The node serves the explorer at ``/`` and ``/web/<file>`` (nothing else from
that folder), a QR code per certificate, and three read-only helpers:
``/v1/registry``, ``/v1/whoami`` and ``/v1/network``.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import httpx
import pytest
import segno
from fastapi.testclient import TestClient

from kpledger.api.app import create_app
from kpledger.api.routes.web import CSP, PAGES
from kpledger.cli.example import run_example
from kpledger.ledger.canonical import Tag, canonical_bytes, tagged_hash
from kpledger.ledger.certcode import CertificateCode
from kpledger.ledger.store import Store
from kpledger.node.config import NodeConfig, PeerConfig, TokenConfig, hash_token
from kpledger.node.gossip import Gossip
from kpledger.node.node import Node

WEB = Path(__file__).resolve().parents[2] / "api" / "web"


def _config(folder: Path, peers: tuple[PeerConfig, ...] = ()) -> NodeConfig:
    return NodeConfig(
        path=folder / "WDC.toml",
        code="WDC",
        host="127.0.0.1",
        port=8105,
        url="http://testserver",
        public_url="https://kp.example/explorer",
        data_dir=folder,
        database_url="sqlite://",
        registry=folder / "genesis.json",
        key_file=None,
        secrets=None,
        peers=peers,
        tokens=(
            TokenConfig("auditor", "WDC-audit", hash_token("aud")),
            TokenConfig("party", "surat", hash_token("surat"), "IN-JDAV2W3X"),
        ),
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    result = run_example(f"sqlite:///{tmp_path_factory.mktemp('routes') / 'example.db'}")
    yield result.store
    result.store.close()


@pytest.fixture(scope="module")
def client(store: Store, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    node = Node(_config(tmp_path_factory.mktemp("wdc")), store, None)
    return TestClient(create_app(node))


def test_index_is_served_with_a_strict_content_security_policy(client: TestClient) -> None:
    answer = client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["content-security-policy"] == CSP
    assert "connect-src 'self'" in CSP
    assert "default-src 'none'" in CSP
    assert '<script type="module" src="/web/app.js">' in answer.text


def test_every_explorer_file_is_served_and_nothing_else(client: TestClient) -> None:
    on_disk = {p.name for p in WEB.iterdir() if p.is_file()}
    assert on_disk == set(PAGES)
    for name, media in PAGES.items():
        answer = client.get(f"/web/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"] == media
        assert answer.content == resources.files("api").joinpath("web", name).read_bytes()
    for name in ("../app.py", "nope.js", "index.htm", "%2e%2e%2fapp.py"):
        assert client.get(f"/web/{name}").status_code == 404, name
    # the explorer files reference only each other
    html = (WEB / "index.html").read_text()
    for ref in re.findall(r'(?:src|href)="/web/([^"]+)"', html):
        assert ref in PAGES, ref
    for js in ("app.js", "verify.js", "charts.js", "lineage.js"):
        for ref in re.findall(r'from "\./([^"]+)"', (WEB / js).read_text()):
            assert ref in PAGES, ref


def test_explorer_loads_nothing_from_elsewhere() -> None:
    """Works offline with only the node: no URL but the SVG namespace in any file."""
    for name in PAGES:
        text = (WEB / name).read_text()
        urls = set(re.findall(r"https?://[^\s\"'`)<>]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not urls, (name, urls)


def test_certificate_qr_code_encodes_network_number_and_record_hash(
    client: TestClient, store: Store
) -> None:
    """The code names the network, the number and the issue record's hash, under the
    node's public base URL; a forged Host header changes nothing."""
    cert = store.certificate("EU-2026-0001")
    assert cert is not None
    network = store.registry.network_id
    url = (
        f"https://kp.example/explorer/#/certificate/EU-2026-0001?network={network}"
        f"&record={cert.issue_ref.hash.hex()}"
    )
    want = io.BytesIO()
    segno.make(url, error="m").save(
        want,
        kind="svg",
        scale=4,
        border=4,
        dark="#000",
        light="#fff",
        xmldecl=False,
        title=f"KP certificate EU-2026-0001: {url}",
    )
    for headers in ({}, {"Host": "evil.example"}):
        answer = client.get("/web/qr/EU-2026-0001.svg", headers=headers)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/svg+xml"
        assert answer.content == want.getvalue()
        assert b"evil.example" not in answer.content
        # the certificate's JSON carries the same code, for the page to print beside the QR
        doc = client.get("/v1/certificates/EU-2026-0001", headers=headers).json()
        assert doc["code"] == url
    code = CertificateCode.parse(url)
    assert (code.network, code.number, code.record) == (
        network,
        "EU-2026-0001",
        cert.issue_ref.hash,
    )
    assert client.get("/web/qr/EU-2099-9999.svg").status_code == 404
    bad = client.get("/web/qr/not a number.svg")
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


def test_registry_is_the_signed_genesis_registry(client: TestClient, store: Store) -> None:
    answer = client.get("/v1/registry")
    assert answer.status_code == 200
    assert answer.content == store.registry.to_bytes()
    body = answer.json()["registry"]
    network = tagged_hash(Tag.REGISTRY, canonical_bytes(body)).hex()
    assert network == client.get("/v1/heads").json()["network"]


def test_whoami_names_the_callers_role(client: TestClient) -> None:
    assert client.get("/v1/whoami").json() == {"role": "public", "node": "WDC"}
    auditor = client.get("/v1/whoami", headers={"Authorization": "Bearer aud"}).json()
    assert auditor == {"role": "auditor", "name": "WDC-audit", "node": "WDC"}
    party = client.get("/v1/whoami", headers={"Authorization": "Bearer surat"}).json()
    assert (party["role"], party["party"]) == ("party", "IN-JDAV2W3X")
    refused = client.get("/v1/whoami", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"


def test_network_view_heads_peers_and_lag(store: Store, tmp_path: Path) -> None:
    peers = (PeerConfig("BW", "http://127.0.0.1:8100"), PeerConfig("EU", "http://127.0.0.1:8103"))
    node = Node(_config(tmp_path, peers), store, None)
    gossip = Gossip(node, httpx.AsyncClient(), None)
    client = TestClient(create_app(node, gossip))
    view = client.get("/v1/network").json()
    assert view["heads"] == client.get("/v1/heads").json()["heads"]
    assert (view["node"], view["evidence"], view["sync_lag"]) == ("WDC", 0, {})
    assert [(p["code"], p["reachable"], p["failures"]) for p in view["peers"]] == [
        ("BW", False, 0),
        ("EU", False, 0),
    ]
    assert "last_ok_seconds" not in view["peers"][0]
    gossip.peers["BW"].ok(time.monotonic())
    gossip.peers["EU"].failed(time.monotonic(), bad=True)
    node.metrics.sync_lag.labels("IN").set(3)
    view = client.get("/v1/network").json()
    bw, eu = view["peers"]
    assert bw["reachable"]
    assert bw["last_ok_seconds"] < 5
    assert (eu["reachable"], eu["failures"], eu["suspect"]) == (False, 1, True)
    assert eu["backoff_seconds"] > 0
    assert view["sync_lag"] == {"IN": 3}


def test_certificate_parties_for_those_who_may_see_them(client: TestClient, store: Store) -> None:
    """Annex I fields 6 and 7 with names and addresses, for the printed certificate."""
    auditor = {"Authorization": "Bearer aud"}
    answer = client.get("/v1/certificates/EU-2026-0001/parties", headers=auditor)
    assert answer.status_code == 200
    doc = answer.json()
    party = store.party("EU-LVESSCDL")
    assert party is not None
    clear = store.disclosures.clear([party.name, party.address])
    assert doc["exporter"] == {
        "id": "EU-LVESSCDL",
        "name": clear[party.name],
        "address": clear[party.address],
    }
    assert doc["importer"]["name"] == "Surat cutting works"
    assert doc["importer"]["address"]
    assert client.get("/v1/certificates/EU-2026-0001/parties").status_code == 403
    surat = {"Authorization": "Bearer surat"}  # the importer's party is not the exporter
    assert client.get("/v1/certificates/EU-2026-0001/parties", headers=surat).status_code == 403
    missing = client.get("/v1/certificates/EU-2099-0001/parties", headers=auditor)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/certificates/bad id/parties", headers=auditor).status_code == 422
