"""The explorer's artisanal pages in Debian's Chromium: a country's self-assessment over
time beside the ledger's internal controls, production split by method on the
statistics, the export-surplus finding for an observer, and an export lot's claims.

A WDC node serves Sierra Leone's story (``devtools.artisanal``) with uvicorn on
127.0.0.1; the browser machinery (Chromium, axe-core, screenshots) is
``tests/web/test_web_explorer``'s.
"""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from kpledger.api.app import create_app
from kpledger.devtools import artisanal as story
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.artisanal import assessment_body
from kpledger.ledger.bundle import check_bundle, serialize_bundle
from kpledger.ledger.records import Kind, Record
from kpledger.ledger.store import Store
from kpledger.ledger.store.bundles import build_bundle
from kpledger.node.config import NodeConfig, TokenConfig, hash_token
from kpledger.node.node import Node
from tests.web.test_web_explorer import Browser, Site, _js_verify, browser, shot, tab, until

__all__ = ["browser", "tab"]

pytestmark = pytest.mark.browser

OBSERVER = "web-observer-token"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Sierra Leone's story, a second self-assessment a year on, served by a WDC node."""
    folder = tmp_path_factory.mktemp("web-artisanal")
    net = Network.create(("SL", "EU", "BW"), ("WDC",))
    sc = Scenario(net)
    store = Store.open(f"sqlite:///{folder / 'sl.db'}", net.registry)

    def seal(chain: str, *records: Record) -> None:
        store.writer.apply(sc.seal(chain, *records))

    story.sierra_leone(sc, seal)
    story.smuggling(sc, seal)
    seal(
        "SL",
        sc.record(
            "SL",
            Kind.DIAGNOSTIC_ASSESS,
            assessment_body("formalisation.claim_registry", 3, "claims mapped", "2026-03-02"),
        ),
        sc.record(
            "SL",
            Kind.DIAGNOSTIC_ASSESS,
            assessment_body("fair_prices.price_information", 1, "no price board", "2026-03-02"),
        ),
    )
    config = NodeConfig(
        path=folder / "WDC.toml",
        code="WDC",
        host="127.0.0.1",
        port=8105,
        url="http://127.0.0.1",
        data_dir=folder,
        database_url="sqlite://",
        registry=folder / "genesis.json",
        key_file=None,
        secrets=None,
        tokens=(TokenConfig("observer", "civil-society", hash_token(OBSERVER)),),
    )
    node = Node(config, store, None)
    app = create_app(node)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Site(f"http://127.0.0.1:{sock.getsockname()[1]}", None, node, app)  # type: ignore[arg-type]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        store.close()


def rows(page: Any, selector: str) -> list[str]:
    return [str(t) for t in page.locator(selector).all_inner_texts()]


def test_country_page_shows_the_self_assessment_beside_the_measures(tab: Browser) -> None:
    page = tab.open("/country/SL")
    page.wait_for_selector("#assessments table")
    claims = page.inner_text('#assessments tr[data-indicator="formalisation.claim_registry"]')
    assert "Claims and mining areas registered and mapped" in claims  # the network's wording
    assert "2026-03-01: 2 / 4" in claims
    assert "2026-03-02: 3 / 4" in claims  # over time, in date order
    assert claims.index("2026-03-01: 2 / 4") < claims.index("2026-03-02: 3 / 4")
    # beside it, what the ledger measured that year: 885 of 2,885 exported carats traced
    assert "2026: 30.7 % of exports traced to registered claims" in claims
    prices = page.inner_text('#assessments tr[data-indicator="fair_prices.price_information"]')
    assert "2026-03-02: 1 / 4" in prices
    assert "first-sale price 137.3 % of the export price" in prices
    controls = page.inner_text("#country-controls")
    assert "16.00 ct" in controls.lower()  # the export surplus of 2026
    shot(page, "country-SL")


def test_statistics_split_production_by_method(tab: Browser) -> None:
    page = tab.open("/audit?period=2026-Q1")
    page.wait_for_selector("#methods table")
    methods = rows(page, '#methods table[data-table="methods"] tbody tr')
    assert any("SL" in r and "alluvial" in r and "8.85 ct" in r for r in methods)
    assert any("SL" in r and "artisanal" in r and "1.00 ct" in r and "—" in r for r in methods)
    assert any("BW" in r and "industrial" in r for r in methods)
    assert page.locator("#methods svg.chart").count() == 1
    assert "30.7 %" in page.inner_text("#controls")
    # the public sees the statistics, not the findings
    assert page.locator("#audit-needs-token").count() == 1
    shot(page, "methods")


def test_observer_reads_the_export_surplus_finding(tab: Browser) -> None:
    page = tab.open("/audit?period=2026-Q1", token=OBSERVER)
    until(
        page,
        "document.getElementById('who').textContent.startsWith('observer')",
    )
    page.wait_for_selector("#finding-export_surplus table")
    surplus = page.inner_text("#finding-export_surplus")
    assert "SL" in surplus
    assert "16.00 ct" in surplus
    assert "US$" not in page.inner_text("#finding-export_surplus")
    shot(page, "observer-audit")


def test_an_export_lot_lists_its_claims(tab: Browser) -> None:
    page = tab.open("/parcel/SL-LOT1")
    page.wait_for_selector("#claims")
    text = page.inner_text("#claims")
    assert "SL-C1" in text
    assert "3.70 ct" in text
    assert "SL-C2" in text
    assert "5.15 ct" in text


def test_pages_pass_axe(tab: Browser, tmp_path: Path) -> None:
    for route in ("/country/SL", "/network"):
        page = tab.open(route)
        page.wait_for_selector("main h1")
        shot(page, f"artisanal-{route.strip('/').replace('/', '-')}")


def test_the_browser_verifier_reads_the_artisanal_records_as_python_does(
    tab: Browser, site: Site
) -> None:
    """An export lot's bundle (claims, licences, their end, first sales) verifies in the
    page (steps 1-4); each artisanal body spoiled fails at the same step with the same
    message as the Python verifier."""
    doc = build_bundle(site.node.store, "SL-LOT1")
    good = serialize_bundle(doc)

    def spoiled(kind: str, change: Callable[[dict[str, Any]], None]) -> bytes:
        new = copy.deepcopy(doc)
        bodies = [r["record"]["body"] for r in new["records"] if r["record"]["kind"] == kind]
        change(bodies[-1])  # of the claims, SL-C2: the polygon
        return serialize_bundle(new)

    cases: list[tuple[bytes, str | None]] = [
        (good, "SL-LOT1"),
        (spoiled("claim.register", lambda b: b.update(location=b["location"][:2])), None),
        (spoiled("claim.register", lambda b: b.update(valid_until="2025-01-01")), None),
        (spoiled("claim.register", lambda b: b["location"][0].update(lat=90_000_001)), None),
        (spoiled("licence.digger", lambda b: b.update(type="miner")), None),
        (spoiled("licence.buyer", lambda b: b.update(zones=["SL-KONO", "SL-KONO"])), None),
        (spoiled("licence.end", lambda b: b.update(reason="lost")), None),
        (spoiled("parcel.purchase", lambda b: b.update(method="dredged")), None),
        (spoiled("parcel.purchase", lambda b: b.update(price=-1)), None),
        (spoiled("parcel.purchase", lambda b: b.update(extra=1)), None),
    ]
    page = tab.open("/")
    page.wait_for_selector("#home-search")
    got = _js_verify(page, cases)
    assert got[0]["ok"], got[0]
    for (data, parcel), js in zip(cases[1:], got[1:], strict=True):
        py = check_bundle(data, parcel=parcel)
        assert py.step == "parse", py.error
        assert (js["ok"], js["step"], js["error"]) == (False, py.step, py.error)
