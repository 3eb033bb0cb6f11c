"""The web explorer in Debian's Chromium, headless, driven by Playwright.

A WDC auditor node serves the example story (``cli.example.run_example``)
with uvicorn on 127.0.0.1 in a background thread; its tokens are an auditor's
and the party IN-JDAV2W3X's (which holds the final parcel IN-CUT-1). The tests
search a parcel and watch its bundle verify in the browser, serve tampered
bundles and compare the failure the page names with the Python verifier's,
read the auditor dashboard, check that the public sees no values and no party
names, and run the page's verifier directly on bundles with key rotations and
governance records. Every page is saved as a screenshot under
``test-output/web/``.

Without ``/usr/bin/chromium`` (``apt-get install chromium chromium-driver``) the
tests skip and say so; ``KPL_REQUIRE_BROWSER=1`` (CI) turns that skip into a
failure (``tests/conftest.py``).
"""

from __future__ import annotations

import base64
import copy
import os
import random
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from kpledger.api.app import create_app
from kpledger.api.deps import Caller
from kpledger.api.provenance import history_view
from kpledger.api.routes import bundles
from kpledger.cli.certificate import check_certificate_proof
from kpledger.cli.example import ExampleResult, run_example
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Evidence, Header, SignedHeader
from kpledger.ledger.bundle import STEPS, check_bundle, serialize_bundle
from kpledger.ledger.canonical import Tag, canonical_bytes, sha256
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.merkle import MemoryTree, leaf_hash
from kpledger.ledger.records import Kind, Record
from kpledger.ledger.store import Store
from kpledger.ledger.store.bundles import build_bundle
from kpledger.node.config import NodeConfig, PeerConfig, TokenConfig, hash_token
from kpledger.node.gossip import Gossip, PeerState
from kpledger.node.node import Node
from tests.api.api_support import OPEN, leave_open
from tests.ledger.test_bundle_headers import forgeries
from tests.ledger.test_bundle_headers import stolen_key_story as header_story

pytestmark = pytest.mark.browser

#: Debian's Chromium; KPL_CHROMIUM names another build
CHROMIUM = Path(os.environ.get("KPL_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "web"
AUDITOR = "web-auditor-token"
PARTY = "web-party-surat-token"
FINAL = "IN-CUT-1"
#: what the public must never see: custodians, exporter and importer, values
SECRETS = ("IN-JDAV2W3X", "EU-LVESSCDL", "BW-M67M3DE7", "BW-ACL2HHH6", "Surat cutting works", "US$")
TIMEOUT = 15_000


# ---------------------------------------------------------------- the node


@dataclass
class Site:
    url: str
    example: ExampleResult
    node: Node
    app: Any = None


def _config(folder: Path) -> NodeConfig:
    return NodeConfig(
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
        tokens=(
            TokenConfig("auditor", "WDC-audit", hash_token(AUDITOR)),
            TokenConfig("party", "surat-web", hash_token(PARTY), "IN-JDAV2W3X"),
        ),
    )


@contextmanager
def serving(store: Store, folder: Path) -> Iterator[tuple[str, Node, Any]]:
    """A WDC node over ``store`` served with uvicorn on a free port: its URL, node, app."""
    node = Node(_config(folder), store, None)
    app = create_app(node)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", node, app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The example story served by a WDC node with uvicorn on a free port."""
    folder = tmp_path_factory.mktemp("web")
    example = run_example(f"sqlite:///{folder / 'example.db'}")
    leave_open(example)
    try:
        with serving(example.store, folder) as (url, node, app):
            yield Site(url, example, node, app)
    finally:
        example.store.close()


# ---------------------------------------------------------------- the browser


@dataclass
class Browser:
    context: Any
    site: Site
    errors: list[str] = field(default_factory=list)

    def _console(self, route: str, msg: Any) -> None:
        # a 4xx answer the page handles (an unknown id, a refused token) still logs one
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.errors.append(f"{route}: {msg.text}")

    def open(self, route: str, token: str | None = None, *, width: int = 1280) -> Any:
        """A new tab at ``/#route`` with ``token`` in its sessionStorage from the start."""
        page = self.context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.set_viewport_size({"width": width, "height": 900 if width > 600 else 844})
        page.on("pageerror", lambda exc: self.errors.append(f"{route}: {exc}"))
        page.on("console", lambda msg: self._console(route, msg))
        if token is not None:
            page.add_init_script(f"sessionStorage.setItem('kpl.token', {token!r});")
        page.goto(f"{self.site.url}/#{route}")
        return page


@pytest.fixture(scope="module")
def browser(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is absent: the browser tests need Debian's chromium "
            "(apt-get install -y chromium chromium-driver)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright")
    SHOTS.mkdir(parents=True, exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield Browser(context, site)
        finally:
            context.close()


@pytest.fixture
def tab(browser: Browser) -> Iterator[Browser]:
    """The browser, checked for page errors after the test; localStorage pins cleared."""
    browser.errors.clear()
    yield browser
    found = []
    for page in browser.context.pages:
        if not page.is_closed() and page.url.startswith(browser.site.url):
            # every page a test leaves open is checked by axe-core in its final state too
            found += [f"{page.url}: {p}" for p in accessibility(page)]
            page.evaluate("localStorage.clear()")
            page.close()
    assert browser.errors == []
    assert found == []


#: axe-core (tests/web/vendor/axe-core, MPL-2.0), run in the page on every state shot
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"


def accessibility(page: Any) -> list[str]:
    """axe-core's critical and serious violations on the page as it is now, one line each."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ['violations']});
          return r.violations.filter((v) => ['critical', 'serious'].includes(v.impact)).map(
            (v) => ({id: v.id, impact: v.impact, help: v.help,
                     nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' '))}));
        }"""
    )
    return [f"{v['impact']} {v['id']} ({v['help']}): {', '.join(v['nodes'])}" for v in found]


#: the screenshots of docs/ (README, docs/explorer.md), each a test's shot: docs name -> shot
DOC_SHOTS = {
    "parcel": "parcel",
    "parcel-phone": "parcel-phone",
    "certificate": "certificate",
    "certificate-expired": "certificate-expired",
    "certificate-refused": "certificate-refused",
    "auditor": "auditor",
    "lineage-200": "lineage-200-1280",
    "officer": "officer-issue",
}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shot(page: Any, name: str) -> None:
    """Save the page as a screenshot, after axe-core finds nothing critical or serious.
    With ``KPL_DOCS_SCREENSHOTS=1`` (``make screenshots``) the shots docs/ shows are
    written to docs/screenshots/ too."""
    problems = accessibility(page)
    assert problems == [], f"{name}: {problems}"
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if os.environ.get("KPL_DOCS_SCREENSHOTS") == "1":
        for doc, source in DOC_SHOTS.items():
            if source == name:
                shutil.copyfile(SHOTS / f"{name}.png", DOCS / f"{doc}.png")


def until(page: Any, expression: str, timeout: float = TIMEOUT / 1000) -> None:
    """Poll ``expression`` in the page until it is true. (``wait_for_function`` polls with
    ``eval`` inside the page, which the explorer's Content-Security-Policy forbids.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.05)


def verdict(page: Any) -> tuple[str, str]:
    """Wait for the verification to end; its status and text."""
    result = page.wait_for_selector(
        '#verify-result[data-status="verified"], #verify-result[data-status="failed"]'
    )
    return str(result.get_attribute("data-status")), str(result.inner_text())


# ---------------------------------------------------------------- searching and verifying


def test_search_parcel_shows_lineage_and_verifies(tab: Browser) -> None:
    page = tab.open("/", token=PARTY)
    page.wait_for_selector("#home-search")
    page.fill("#search", FINAL)
    page.press("#search", "Enter")
    page.wait_for_selector("svg.lineage")
    assert page.url.endswith(f"#/parcel/{FINAL}")
    status, text = verdict(page)
    assert status == "verified", text
    assert "Verified" in text
    # the lineage back to both mines, with its splits and merge
    graph = page.locator("svg.lineage")
    for parcel in ("BW-JW-1", "BW-OR-1", "BW-JW-1a", "BW-JW-1b", "EU-AW-1", "IN-CUT", FINAL):
        assert graph.locator(f'g.pnode[data-parcel="{parcel}"]').count() == 1, parcel
    assert graph.locator("path.edge-split").count() == 3
    assert graph.locator("path.edge-merge").count() == 4
    labels = str(graph.text_content())
    assert "BW-2026-0001 · BW → EU · 2026-03-02" in labels
    assert "EU-2026-0001 · EU → IN · 2026-03-02" in labels
    assert "mined · BW · 2026-03-02" in labels
    assert graph.locator("text.pok").count() == 7  # every parcel's creating record proven
    # every step named; the replay is not claimed
    steps = page.locator("#verify-steps li")
    assert [steps.nth(i).get_attribute("data-status") for i in range(6)] == [
        "ok",
        "ok",
        "ok",
        "ok",
        "skipped",
        "ok",
    ]
    anchor = page.inner_text("#trust-anchor")
    assert "this trusts the node" in anchor
    # one sentence of what was proven and against what; the steps folded below it
    sentence = page.inner_text("#verify-sentence")
    assert "in the log of the authority that wrote it" in sentence
    assert "checked against this node's word for the network (nothing pinned)" in sentence
    assert "custody rules not replayed here" in text
    assert not page.locator("#verify-steps").is_visible()
    page.click("#verify-details summary")
    assert page.locator("#verify-steps").is_visible()
    network = tab.site.example.store.registry.network_id
    assert network in page.inner_text("#bundle-network")
    # the records in order, each proven by the bundle with its leaf hash
    assert page.locator("#records tbody tr.proven").count() == 17
    assert "All 17 records" in page.inner_text("#proven-count")
    # the holding party sees its custodian and price
    assert page.inner_text("#f-custodian") == "IN-JDAV2W3X"
    assert page.inner_text("#f-price") == "US$ 1,177,478.54"
    assert "100.00 %" in page.inner_text("#origin")
    shot(page, "parcel")
    # the same page on a phone
    phone = tab.open(f"/parcel/{FINAL}", token=PARTY, width=390)
    assert verdict(phone)[0] == "verified"
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"
    assert phone.evaluate(BROKEN_IDS) == []
    shot(phone, "parcel-phone")
    cert = tab.open("/certificate/EU-2026-0001", token=PARTY, width=390)
    cert.wait_for_selector("#cert-status")
    assert cert.evaluate(BROKEN_IDS) == []
    assert cert.evaluate("document.documentElement.scrollWidth") <= 390
    shot(cert, "certificate-phone")


#: ids, certificate numbers and record references drawn on more than one line
BROKEN_IDS = """[...document.querySelectorAll('.id')]
  .filter((e) => e.getClientRects().length > 1).map((e) => e.textContent)"""


#: tables (and other boxes) in the content that scroll sideways, by the id of their table
SIDEWAYS = """[...document.querySelectorAll('main .scroll')]
  .filter((e) => e.scrollWidth > e.clientWidth + 1)
  .map((e) => `${(e.querySelector('table') || e).id || 'table'}: `
    + `${e.scrollWidth} > ${e.clientWidth}`)"""


def test_tables_read_on_a_phone_without_sideways_scrolling(tab: Browser) -> None:
    """At 390 px, every table of the parcel, certificate, audit and network pages fits the
    screen: each row reads as a list of labelled cells, ids never break mid-id."""
    pages = (
        (f"/parcel/{FINAL}", PARTY, "#records tbody tr.proven"),
        ("/certificate/EU-2026-0001", AUDITOR, '#cert-validation [data-status="verified"]'),
        ("/audit?period=2026", AUDITOR, "#findings-summary"),
        ("/network", None, "#participants"),
    )
    for route, token, ready in pages:
        page = tab.open(route, token=token, width=390)
        page.wait_for_selector(ready)
        until(page, "!document.querySelector('main .loading')")
        assert page.evaluate(SIDEWAYS) == [], route
        assert page.evaluate(BROKEN_IDS) == [], route
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, route
        labels = page.eval_on_selector_all(
            "main table tbody td:not([colspan])",
            "(tds) => tds.filter((td) => td.offsetParent !== null && !td.dataset.label).length",
        )
        assert labels == 0, route
        page.close()
    # each cell of a record says which column it is
    page = tab.open(f"/parcel/{FINAL}", token=PARTY, width=390)
    page.wait_for_selector("#records tbody tr.proven")
    first = page.locator("#records tbody tr").first
    assert first.locator("td").first.get_attribute("data-label") == "When (UTC)"
    assert not page.locator("#records thead").is_visible()
    page.close()


def test_search_finds_certificates_and_says_what_is_missing(tab: Browser) -> None:
    page = tab.open("/")
    page.fill("#search", "EU-2026-0001")
    page.press("#search", "Enter")
    page.wait_for_selector("#certificate")
    assert page.url.endswith("#/certificate/EU-2026-0001")
    page.fill("#search", "BW-NOPE-1")
    page.press("#search", "Enter")
    assert "No parcel or certificate BW-NOPE-1" in page.inner_text("#not-found")
    # small letters and a missing zero still find the certificate and the parcel
    for typed, found in (
        ("eu-2026-1", "certificate/EU-2026-0001"),
        ("EU-2026-001", "certificate/EU-2026-0001"),
        ("in-cut-1", "parcel/IN-CUT-1"),
        ("bw-jw-1a", "parcel/BW-JW-1a"),
    ):
        page.fill("#search", typed)
        page.press("#search", "Enter")
        until(page, f"location.hash === '#/{found}'")
    # a certificate number the ledger does not hold: what that means for a buyer
    page.goto(f"{tab.site.url}/#/certificate/EU-2026-0009")
    page.wait_for_selector("#absence")
    absence = page.inner_text("#absence")
    assert "most likely not a genuine KP certificate of this network" in absence
    assert "Ask the issuing authority (EU" in absence
    assert accessibility(page) == []
    page.goto(f"{tab.site.url}/#/certificate/EU-2026-01")
    page.wait_for_selector("#suggestions")
    assert page.inner_text("#suggestions") == "EU-2026-0001"
    shot(page, "certificate-not-found")


def test_a_typed_prefix_offers_the_ids_and_numbers_that_start_with_it(tab: Browser) -> None:
    page = tab.open("/")
    page.fill("#search", "bw-jw")
    page.press("#search", "Enter")
    until(page, "location.hash === '#/search/bw-jw'")
    page.wait_for_selector("#prefix-suggestions")
    offered = page.inner_text("#prefix-suggestions").splitlines()
    assert "Parcel BW-JW-1" in offered
    assert "Parcel BW-JW-1c" in offered
    assert all(line.split(" ")[-1].upper().startswith("BW-JW") for line in offered)
    assert "No parcel or certificate bw-jw" in page.inner_text("#not-found")
    page.click("#prefix-suggestions a >> text=BW-JW-1c")
    until(page, "location.hash === '#/parcel/BW-JW-1c'")
    # a certificate number cut short: the numbers that start with it
    page.goto(f"{tab.site.url}/#/certificate/EU-2026")
    page.wait_for_selector("#prefix-suggestions")
    assert page.inner_text("#prefix-suggestions") == "KP certificate EU-2026-0001"
    assert accessibility(page) == []


def _flip_digit(data: bytes, marker: bytes) -> bytes:
    at = data.index(marker, data.index(b'"records":[')) + len(marker)
    return data[:at] + (b"8" if data[at : at + 1] != b"8" else b"7") + data[at + 1 :]


def _flip_hex(data: bytes, marker: bytes, start: bytes = b"") -> bytes:
    at = data.index(marker, data.index(start) if start else 0) + len(marker)
    return data[:at] + (b"0" if data[at : at + 1] != b"0" else b"1") + data[at + 1 :]


TAMPERS: dict[str, tuple[int, Callable[[bytes], bytes]]] = {
    "record": (4, lambda d: _flip_digit(d, b'"weight":')),
    "proof": (4, lambda d: _flip_hex(d, b'"proof":["')),
    "header-signature": (3, lambda d: _flip_hex(d, b'"sig":"', b'"headers":[')),
    "registry-signature": (2, lambda d: _flip_hex(d, b'"sig":"', b'"sigs":[')),
    "not-canonical": (1, lambda d: d.replace(b'{"', b'{ "', 1)),
    "format": (1, lambda d: d.replace(b"kpledger-bundle/2", b"kpledger-bundle/1", 1)),
}


@pytest.mark.parametrize("kind", list(TAMPERS))
def test_tampered_bundle_names_the_failing_step(
    tab: Browser, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The node serves a bundle with one byte changed; the page names the step and the
    place exactly as the Python verifier does."""
    step, tamper = TAMPERS[kind]
    original = bundles.serialize_bundle
    monkeypatch.setattr(bundles, "serialize_bundle", lambda doc: tamper(original(doc)))
    good = original(build_bundle(tab.site.example.store, FINAL))
    expected = check_bundle(tamper(good), parcel=FINAL)
    assert not expected.ok
    assert expected.step == STEPS[step - 1]
    page = tab.open(f"/parcel/{FINAL}", token=AUDITOR)
    status, text = verdict(page)
    assert status == "failed", text
    assert f"failed at step {step} ({STEPS[step - 1]})" in text
    assert page.inner_text("#verify-error") == expected.error
    failed = page.locator(f'#verify-steps li[data-step="{step}"]')
    assert failed.get_attribute("data-status") == "failed"
    assert page.locator("svg.lineage text.pok").count() == 0
    if kind in ("record", "proof"):
        # the record whose proof fails is marked in the list of records
        where = re.search(r"record ([A-Z]+)/(\d+) inclusion proof", str(expected.error))
        assert where is not None, expected.error
        row = page.locator("#records tr.failed")
        assert row.count() == 1
        assert row.get_attribute("id") == f"rec-{where[1]}-{where[2]}"
        shot(page, "parcel-tampered")
    else:
        assert page.locator("#records tr.failed").count() == 0


def test_pinned_trust_anchor(tab: Browser) -> None:
    """A pinned registry or network id replaces the node's word; a wrong one fails step 2."""
    registry = tab.site.example.store.registry
    page = tab.open("/settings", token=AUDITOR)
    page.fill("#pin-network", "ab" * 32)
    page.click("#pin-save")
    page.wait_for_selector("#pin-status .pill.ok")
    page.goto(f"{tab.site.url}/#/parcel/{FINAL}")
    status, text = verdict(page)
    assert status == "failed"
    assert f"not the pinned network {'ab' * 8}" in text
    assert "step 2 (registry)" in text
    page.goto(f"{tab.site.url}/#/settings")
    page.fill("#pin-network", "")
    page.fill("#pin-registry", registry.to_bytes().decode())
    page.click("#pin-save")
    page.wait_for_selector("#pin-status .pill.ok")
    assert registry.network_id in page.inner_text("#pin-status")
    shot(page, "settings")
    page.goto(f"{tab.site.url}/#/parcel/{FINAL}")
    status, text = verdict(page)
    assert status == "verified", text
    assert "the registry you pinned" in page.inner_text("#trust-anchor")
    # the certificate page names the pinned registry as its anchor
    page.goto(f"{tab.site.url}/#/certificate/EU-2026-0001")
    page.wait_for_selector("#cert-proof-anchor")
    said = page.inner_text("#cert-proof-anchor")
    assert said.startswith("Inclusion proof checked against EU header "), said
    assert said.endswith(", trusting the pinned registry."), said


def _pdf_pages(data: bytes) -> int:
    """Pages of a PDF as Chromium writes it (one ``/Type /Page`` object per page)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))


def test_certificate_prints_on_one_a4_page(tab: Browser) -> None:
    """The printed certificate: one A4 page, Annex I fields and status, no on-screen
    controls or verification boxes."""
    page = tab.open(f"/certificate/{OPEN}", token=AUDITOR)
    page.wait_for_selector('#cert-validation [data-status="verified"]')
    until(page, "document.getElementById('cert-qr').naturalWidth > 0")
    page.emulate_media(media="print")
    assert not page.locator("#cert-verification").is_visible()
    assert not page.locator("header.top").is_visible()
    assert not page.locator("button").first.is_visible()
    printed = page.inner_text("main")
    for entry in (OPEN, "Kimberley Process Certificate", "Mixed", "never confirmed"):
        assert entry in printed, entry
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF-")
    assert _pdf_pages(pdf) == 1
    (SHOTS / "certificate.pdf").write_bytes(pdf)
    page.emulate_media(media="screen")


def test_unconfirmed_and_refused_certificates_are_never_green(tab: Browser) -> None:
    """OPEN (the mixed lot the EU refused, certified to the EU again) was never confirmed
    and is past its expiry: the page says so, and its proof pill is not green. The refused
    one shows the importer's reason code and words."""
    page = tab.open(f"/certificate/{OPEN}", token=AUDITOR)
    page.wait_for_selector('#cert-validation [data-status="verified"]')
    banner = page.locator("#cert-status")
    assert banner.get_attribute("data-status") == "expired"
    assert "Expired — never confirmed" in banner.inner_text()
    assert "banner bad" in str(banner.get_attribute("class"))
    assert page.locator("#cert-validation .pill.ok").count() == 0
    assert "Shipment status: expired" in page.inner_text("#cert-validation")
    mix = page.inner_text("#cert-mix")
    assert re.search(r"BW \d+\.\d %", mix), mix
    assert re.search(r"RU \d+\.\d %", mix), mix
    assert "VERIFIED" not in page.inner_text("main").upper().replace("NOT VERIFIED", "")
    shot(page, "certificate-expired")
    # the story's AE-2026-0001, refused by the EU (certificate.refuse): the public's page
    # says so with the importer's reason, read from the ledger's refusal record
    page = tab.open("/certificate/AE-2026-0001")
    page.wait_for_selector('#cert-validation [data-status="verified"]')
    banner = page.locator("#cert-status")
    assert banner.get_attribute("data-status") == "refused"
    text = banner.inner_text()
    assert "Refused by the importing authority" in text
    assert "holds Russian-origin rough: EU ban, also through third countries" in text
    assert "restricted-origin" in text
    assert page.locator("#cert-validation .pill.ok").count() == 0
    assert "VERIFIED" not in page.inner_text("main").upper().replace("NOT VERIFIED", "")
    assert "refused this shipment" in page.inner_text("#cert-proof-sentence")
    shot(page, "certificate-refused")


# ---------------------------------------------------------------- roles


def test_public_view_shows_no_values_or_party_names(tab: Browser) -> None:
    page = tab.open(f"/parcel/{FINAL}")
    page.wait_for_selector("svg.lineage")
    # record format 2: the public's bundle holds commitments only, and verifies here too
    status, text = verdict(page)
    assert status == "verified", text
    assert page.is_visible("#verify-button")
    html = page.content()
    for secret in SECRETS:
        assert secret not in html, secret
    assert "1,177,478" not in html
    assert page.locator("#f-custodian, #f-price").count() == 0
    assert "shown only to the party holding the parcel" in page.inner_text("#hidden-note")
    # record format 2: the value is shown as the commitment the ledger holds, nothing else
    parcel = httpx.get(f"{tab.site.url}/v1/parcels/{FINAL}", timeout=10).json()
    declared = page.inner_text("#f-price-committed")
    assert declared == (
        f"value: committed {parcel['committed']['value'][:12]}… — in clear for authorised "
        "roles only"
    ), declared
    shot(page, "parcel-public")
    cert = tab.open("/certificate/EU-2026-0001")
    cert.wait_for_selector('#cert-validation [data-status="verified"]')
    html = cert.content()
    for secret in (*SECRETS, "1,703,000", "SEAL-EU-2026-0001"):
        assert secret not in html, secret
    assert "authorised roles only" in cert.inner_text("#certificate")
    doc = httpx.get(f"{tab.site.url}/v1/certificates/EU-2026-0001", timeout=10).json()
    assert set(doc["committed"]) == {"value", "importer", "seal"}
    shown = cert.eval_on_selector_all(
        "#certificate [data-commitment]", "(els) => els.map((e) => e.dataset.commitment)"
    )
    assert sorted(shown) == sorted(doc["committed"].values())
    text = cert.inner_text("#certificate")
    for what, key in (("importer", "importer"), ("value", "value"), ("seal id", "seal")):
        said = f"{what}: committed {doc['committed'][key][:12]}… — in clear for authorised"
        assert said in text, (said, text)
    shot(cert, "certificate-public")


def test_an_entitled_caller_without_the_disclosure_sees_the_commitment(tab: Browser) -> None:
    """An auditor's node that holds no disclosure of a field (record format 2) answers with
    its commitment only: the certificate page shows that commitment and says why, never a
    value, while the fields the node does hold stay in clear."""
    doc = httpx.get(
        f"{tab.site.url}/v1/certificates/EU-2026-0001",
        headers={"Authorization": f"Bearer {AUDITOR}"},
        timeout=10,
    ).json()
    assert doc["value"] == 170_080_233
    commitment = tab.site.node.store.certificate("EU-2026-0001")
    assert commitment is not None

    def undisclosed(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        del body["value"]
        body["committed"] = {**body.get("committed", {}), "value": commitment.value}
        route.fulfill(response=response, json=body)

    page = tab.context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.add_init_script(f"sessionStorage.setItem('kpl.token', {AUDITOR!r});")
    page.route("**/v1/certificates/EU-2026-0001", undisclosed)
    page.goto(f"{tab.site.url}/#/certificate/EU-2026-0001")
    page.wait_for_selector('#cert-validation [data-status="verified"]')
    text = page.inner_text("#certificate")
    assert "US$" not in text
    said = f"value: committed {commitment.value[:12]}… — this node holds no disclosure of it"
    assert said in text, text
    assert "SEAL-EU-2026-0001" in text  # what the node does hold is still in clear
    assert accessibility(page) == []
    page.close()


def test_token_entered_from_the_parcel_page(tab: Browser) -> None:
    """The public page links to the token form, which leads back to the parcel, verified;
    the token stays in this tab's sessionStorage."""
    page = tab.open(f"/parcel/{FINAL}")
    page.click('#hidden-note a[href^="#/settings"]')
    page.wait_for_selector("#token")
    page.fill("#token", PARTY)
    page.click("#token-save")
    until(page, f"location.hash === '#/parcel/{FINAL}'")
    assert verdict(page)[0] == "verified"
    assert page.inner_text("#who") == "party · IN-JDAV2W3X"
    assert page.evaluate("sessionStorage.getItem('kpl.token')") == PARTY
    assert page.evaluate("localStorage.length") == 0
    wrong = tab.open("/settings")
    wrong.fill("#token", "not-a-token")
    wrong.click("#token-save")
    wrong.wait_for_selector("#settings-status:has-text('refused')")
    assert wrong.inner_text("#who") == "public"


def test_certificate_page_lists_annex_one_and_verifies(tab: Browser) -> None:
    page = tab.open("/certificate/EU-2026-0001", token=AUDITOR)
    page.wait_for_selector('#cert-validation [data-status="verified"]')
    text = page.inner_text("#certificate")
    for entry in (
        "EU-2026-0001",
        "BW — Botswana",  # origin
        "EU — European Union",  # issuing authority
        "2026-03-02",
        "2026-04-01",
        "EU-LVESSCDL",  # exporter
        "Surat cutting works",
        "IN — India",
        "13,000.00 ct",
        "US$ 1,700,802.33",
        "7102.31 — Non-industrial diamonds",
        "SEAL-EU-2026-0001",
        "CONFIRMED",
    ):
        assert entry in text, entry
    assert "11. Number of parcels\t1" in text
    # the exporter by its registered name and address, the importer once, with its address
    exporter = tab.site.example.store.party("EU-LVESSCDL")
    assert exporter is not None
    shown = page.inner_text("#cert-exporter")
    clear = tab.site.example.store.disclosures.clear([exporter.name, exporter.address])
    assert clear[exporter.name] in shown
    assert clear[exporter.address] in shown
    assert exporter.name not in shown  # never the commitment where the name is shown
    assert "licence EU-LVESSCDL" in shown
    # an address registered the same as the name is not printed twice
    assert clear[exporter.address] == clear[exporter.name]
    assert shown.count(clear[exporter.name]) == 1, shown
    assert page.inner_text("#certificate").count("Surat cutting works") == 1
    banner = page.inner_text("#cert-status")
    assert "Confirmed" in banner
    assert "IN — India confirmed receipt of 13,000.00 ct." in banner
    sentence = page.inner_text("#cert-proof-sentence")
    assert sentence.startswith("Proven in this browser: EU — European Union recorded the issue")
    # the anchor, said as `kpl certificate show` says it
    said = page.inner_text("#cert-proof-anchor")
    assert re.fullmatch(
        r"Inclusion proof checked against EU header \d+ signed by [0-9a-f]{16}, trusting "
        r"the node's registry \(pin the registry in Settings to check without trusting this "
        r"node\)\.",
        said,
    ), said
    key = tab.site.example.store.registry.participant("EU")
    assert key is not None
    assert f"signed by {key.key.key_id[:16]}," in said
    page.click("#cert-details summary")
    checks = page.inner_text("#cert-checks")
    assert checks.count("✓") == 4, checks  # key history, signed header, record, inclusion
    qr = page.wait_for_selector("#cert-qr")
    until(page, "document.getElementById('cert-qr').naturalWidth > 0")
    assert "#/certificate/EU-2026-0001" in str(qr.get_attribute("alt"))
    # beside the QR, the code it encodes: under the node's public base URL, not this tab's
    code = httpx.get(f"{tab.site.url}/v1/certificates/EU-2026-0001", timeout=10).json()["code"]
    assert code.startswith("http://127.0.0.1/#/certificate/EU-2026-0001?network=")
    assert page.inner_text("#cert-code") == code
    assert tab.site.url not in page.inner_text("#certificate")
    shot(page, "certificate")


def test_auditor_dashboard_shows_findings_and_their_records(tab: Browser) -> None:
    page = tab.open("/settings")
    page.fill("#token", AUDITOR)
    page.click("#token-save")
    until(page, "document.getElementById('who').textContent.startsWith('auditor')")
    page.goto(f"{tab.site.url}/#/audit?period=2026")
    page.wait_for_selector("#findings-summary")
    unconfirmed = page.inner_text("#finding-unconfirmed")
    assert OPEN in unconfirmed
    assert "AE → EU" in unconfirmed
    mirror = page.inner_text("#finding-mirror_mismatches")
    assert "AE → EU" in mirror
    assert "-12,000.00 ct" in mirror
    assert page.locator("#finding-mirror_mismatches svg.chart").count() == 1
    # production, certificates, exports, imports, and production by method
    assert page.locator("#stats svg.chart").count() == 5
    assert page.locator("#methods").count() == 1
    assert "39,000.00 ct" in page.inner_text("#stats")  # BW (with Letlhakane) and RU
    shot(page, "auditor")
    # a finding's record: fetched from the auditor's block range, its leaf hash recomputed
    page.click("#finding-unconfirmed a.rec-link")
    page.wait_for_selector("#record-match")
    assert page.inner_text("#record-match").strip().lower() == "matches"
    assert "certificate.issue" in page.inner_text("main")
    shot(page, "record")
    # the public sees the statistics, not the findings
    public = tab.open("/audit?period=2026")
    public.wait_for_selector("#stats")
    assert public.locator("#audit-needs-token").count() == 1
    assert public.locator("#findings-summary").count() == 0


# ---------------------------------------------------------------- the verifier itself


def _js_verify(page: Any, cases: list[tuple[bytes, str | None]]) -> list[dict[str, Any]]:
    """Run the page's verifier (verify.js) on bundle bytes; one result per case."""
    script = """async (cases) => {
      const m = await import('/web/verify.js');
      const out = [];
      for (const [b64, parcel] of cases) {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const r = await m.verifyBundle(bytes, parcel ? {parcel} : {});
        out.push({ok: r.ok, step: r.step, error: r.error});
      }
      return out;
    }"""
    encoded = [[base64.b64encode(data).decode(), parcel] for data, parcel in cases]
    result: list[dict[str, Any]] = page.evaluate(script, encoded)
    return result


def _story() -> tuple[Store, list[tuple[bytes, str | None]]]:
    """Bundles across a key rotation, a governance admission and a key replacement."""
    net = Network.create(("BW", "EU"), ("WDC",))
    sc = Scenario(net)
    store = Store.open("sqlite://", net.registry)

    def seal(chain: str, *records: Record) -> None:
        store.writer.apply(sc.seal(chain, *records))

    seal("BW", sc.party("BW", "BW-MINE", "miner"), sc.party("BW", "BW-EXP", "exporter"))
    seal("EU", sc.party("EU", "EU-IMP", "importer"))
    seal("BW", sc.register("BW", "BW-P1", "BW-MINE", 100_000, 13_400_000))
    seal(
        "BW", sc.split("BW", "BW-P1", [("BW-P2", 60_000, 8_040_000), ("BW-P3", 40_000, 5_360_000)])
    )
    rotated = Ed25519Signer.from_seed(sha256(b"kpledger-test: web BW rotated"))
    seal("BW", sc.record("BW", Kind.KEY_ROTATE, {"key": rotated.public.hex()}))
    net.signers["BW"] = rotated
    seal("BW", sc.transfer("BW", "BW-P2", "BW-EXP"))
    na = Ed25519Signer.from_seed(sha256(b"kpledger-test: web NA"))
    admit = {"code": "NA", "name": "Namibia", "role": "authority", "url": "http://x", "key": ""}
    seal("KP", sc.governance(Kind.MEMBER_ADMIT, {**admit, "key": na.public.hex()}))
    net.signers["NA"] = na
    seal("NA", sc.party("NA", "NA-IMP", "importer"))
    replaced = Ed25519Signer.from_seed(sha256(b"kpledger-test: web BW replaced"))
    head = sc.ledger.state.head("BW")
    assert head is not None
    body = {"code": "BW", "key": replaced.public.hex(), "from_height": head.height + 1}
    seal("KP", sc.governance(Kind.KEY_REPLACE, {**body, "reason": "key lost"}))
    net.signers["BW"] = replaced
    seal("BW", sc.issue("BW", "BW-2026-1", "NA", "BW-EXP", ["BW-P2"]))
    seal("NA", sc.confirm("NA", "BW-2026-1", "NA-IMP"))
    seal("BW", sc.issue("BW", "BW-2026-2", "EU", "BW-MINE", ["BW-P3"]))
    seal("EU", sc.confirm("EU", "BW-2026-2", "EU-IMP"))
    seal("BW")  # a heartbeat witnessing EU's last block: every block is cosigned
    cases: list[tuple[bytes, str | None]] = [
        (serialize_bundle(build_bundle(store, p)), p) for p in ("BW-P1", "BW-P2", "BW-P3")
    ]
    doc = build_bundle(store, "BW-P2")
    kinds = {(r["record"]["chain"], r["index"]): r["record"]["kind"] for r in doc["records"]}
    assert {"key.rotate", "member.admit", "key.replace"} <= set(kinds.values())
    for drop in ("key.rotate", "member.admit", "key.replace"):
        gone = next(k for k, v in kinds.items() if v == drop)
        cut = {
            **doc,
            "records": [r for r in doc["records"] if (r["record"]["chain"], r["index"]) != gone],
        }
        cases.append((serialize_bundle(cut), "BW-P2"))
    forged = {**doc, "records": [dict(r) for r in doc["records"]]}
    replace = next(r for r in forged["records"] if r["record"]["kind"] == "key.replace")
    replace["record"] = {**replace["record"], "sigs": replace["record"]["sigs"][:1]}
    cases.append((serialize_bundle(forged), "BW-P2"))
    return store, cases


def test_browser_verifier_matches_python_on_key_history(tab: Browser) -> None:
    store, cases = _story()
    try:
        page = tab.open("/")
        page.wait_for_selector("#home-search")
        got = _js_verify(page, cases)
        for (data, parcel), js in zip(cases, got, strict=True):
            py = check_bundle(data, parcel=parcel)
            if py.ok:
                assert js["ok"], js
            elif STEPS.index(py.step) >= 4:  # no replay in the browser; step 6 in part
                assert js["ok"] or js["step"] == "subject", (py.error, js)
            else:
                assert (js["step"], js["error"]) == (py.step, py.error)
        assert [js["ok"] for js in got[:3]] == [True, True, True]
        assert not any(js["ok"] for js in got[3:])
    finally:
        store.close()


def _certificate_page(tab: Browser, url: str, number: str, forge: Any = None) -> Any:
    """The certificate page at ``url`` with the auditor's token, its answer for ``number``
    passed through ``forge`` (a function of the JSON document) when given; the page once
    its check has ended."""
    page = tab.context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.on("pageerror", lambda exc: tab.errors.append(f"{number}: {exc}"))
    page.add_init_script(f"sessionStorage.setItem('kpl.token', {AUDITOR!r});")
    if forge is not None:

        def handle(route: Any) -> None:
            answer = route.fetch()
            route.fulfill(response=answer, json=forge(answer.json()))

        page.route(re.compile(rf".*/v1/certificates/{re.escape(number)}$"), handle)
    page.goto(f"{url}/#/certificate/{number}")
    page.wait_for_selector(
        '#cert-validation [data-status="verified"], #cert-validation [data-status="failed"]'
    )
    return page


def _without_a_signature(doc: dict[str, Any]) -> dict[str, Any]:
    """The key.replace of the key history carried with one governance signature of two."""
    for item in doc["proof"]["keys"]:
        if item["record"]["kind"] == "key.replace":
            item["record"]["sigs"] = item["record"]["sigs"][:1]
    return doc


def _thief_rotation(doc: dict[str, Any]) -> dict[str, Any]:
    """The key.rotate of the key history naming a thief's key instead."""
    thief = Ed25519Signer.from_seed(sha256(b"kpledger-test: web thief"))
    for item in doc["proof"]["keys"]:
        if item["record"]["kind"] == "key.rotate":
            item["record"]["body"] = {"key": thief.public.hex()}
    return doc


def _no_history(doc: dict[str, Any]) -> dict[str, Any]:
    doc["proof"].pop("keys")
    return doc


def test_certificate_page_checks_the_key_history_as_the_cli_does(
    tab: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """BW's key was rotated, then replaced by governance, before it issued BW-2026-2: the
    page learns BW's key from the proof's ``keys`` as ``kpl verify-certificate`` does
    (ledger/keyhistory.py) and verifies; a forged key record, or none, fails in the page
    and in the CLI's check alike."""
    store, _ = _story()
    try:
        with serving(store, tmp_path_factory.mktemp("rotated")) as (url, _node, _app):
            auditor = {"Authorization": f"Bearer {AUDITOR}"}
            doc = httpx.get(f"{url}/v1/certificates/BW-2026-2", headers=auditor).json()
            assert [k["record"]["kind"] for k in doc["proof"]["keys"]] == [
                "key.rotate",
                "key.replace",
            ]
            anchor = check_certificate_proof(doc, store.registry)
            assert anchor.rotated
            page = _certificate_page(tab, url, "BW-2026-2")
            assert page.get_attribute("#cert-validation [data-status]", "data-status") == "verified"
            said = page.inner_text("#cert-proof-anchor")
            assert f"signed by {anchor.key_id[:16]}," in said, said
            page.click("#cert-details summary")
            checks = page.inner_text("#cert-checks")
            assert checks.count("✓") == 4, checks
            assert "2 key records of BW and KP" in checks
            assert "the key of BW at height" in checks
            shot(page, "certificate-rotated")
            page.close()
            for forge, words in (
                (_without_a_signature, "key record KP/1: governance record r10: signed by 1 of 2"),
                (_thief_rotation, "key record BW/4: root: root mismatch"),
                (_no_history, f"names key {anchor.key_id[:16]} but the chain's key at that height"),
            ):
                forged = forge(
                    httpx.get(f"{url}/v1/certificates/BW-2026-2", headers=auditor).json()
                )
                with pytest.raises(InvalidData) as cli:
                    check_certificate_proof(forged, store.registry)
                assert words in str(cli.value), cli.value
                page = _certificate_page(tab, url, "BW-2026-2", forge)
                status = page.get_attribute("#cert-validation [data-status]", "data-status")
                sentence = page.inner_text("#cert-proof-sentence")
                assert status == "failed", (forge.__name__, sentence)
                assert words in sentence, (forge.__name__, sentence)
                assert "Do not rely on this certificate" in sentence
                page.close()
    finally:
        store.close()


def test_browser_verifier_refuses_the_headers_a_node_refuses(tab: Browser) -> None:
    """The forged headers of tests/ledger/test_bundle_headers.py (witness gone back or
    dropped, a stolen key after its replacement): the page fails each at step 3 with
    Python's message."""
    story = header_story()
    try:
        cases: list[tuple[bytes, str | None]] = [(f.bundle, story.parcel) for f in forgeries(story)]
        # a stolen key alone (tests/ledger/test_bundle_cosign.py): not cosigned
        net = Network.create(("BW", "EU", "RU"), ())
        sc = Scenario(net)
        forged = Store.open("sqlite://", net.registry)
        try:
            forged.writer.apply(sc.seal("BW", sc.party("BW", "BW-MINE", "miner")))
            forged.writer.apply(sc.seal("BW", sc.register("BW", "BW-FAKE", "BW-MINE", 9_000, 900)))
            forged.writer.apply(sc.seal("EU"))
            cases.append((serialize_bundle(build_bundle(forged, "BW-FAKE", partial=True)), None))
        finally:
            forged.close()
        page = tab.open("/")
        page.wait_for_selector("#home-search")
        for (data, parcel), js in zip(cases, _js_verify(page, cases), strict=True):
            py = check_bundle(data, parcel=parcel)
            assert py.step == "headers", py.error
            assert (js["ok"], js["step"], js["error"]) == (False, py.step, py.error)
    finally:
        story.store.close()


def test_browser_verifier_matches_python_on_byte_flips(tab: Browser) -> None:
    """Single-byte changes anywhere in a bundle: the browser fails at the same step as
    Python whenever Python fails in steps 1-4, and never says verified then."""
    good = serialize_bundle(build_bundle(tab.site.example.store, FINAL))
    rng = random.Random(9162)
    cases: list[tuple[bytes, str | None]] = []
    for at in rng.sample(range(len(good)), 400):
        new = rng.choice([b for b in b'0123456789abcdef"{}[],:xyz ' if b != good[at]])
        cases.append((good[:at] + bytes([new]) + good[at + 1 :], FINAL))
    first = good.index(b'"time":"', good.index(b'"records":[')) + len(b'"time":"')
    for bad in (b"2026-02-30T09", b"2026-03-02T24", b"2026-13-02T09", b"0000-03-02T09"):
        cases.append((good[:first] + bad + good[first + len(bad) :], FINAL))
    for bad in (b"2026-02-29", b"2026-00-01"):  # a date field: a registration's "produced"
        at = good.index(b'"produced":"') + len(b'"produced":"')
        cases.append((good[:at] + bad + good[at + len(bad) :], FINAL))
    page = tab.open("/")
    page.wait_for_selector("#home-search")
    same_message = 0
    early = 0
    for (data, parcel), js in zip(cases, _js_verify(page, cases), strict=True):
        py = check_bundle(data, parcel=parcel)
        if not py.ok and STEPS.index(py.step) < 4:
            early += 1
            assert not js["ok"], py.error
            assert js["step"] == py.step, (py.error, js["error"])
            # JSON syntax errors are worded by each language's parser; the rest match
            same_message += js["error"] == py.error or "not valid JSON" in str(py.error)
    assert early > 350
    assert same_message == early, f"{same_message} of {early} messages identical"


def test_browser_verifier_reads_stats_reports_as_python_does(tab: Browser) -> None:
    """A ``stats.report`` body (the quarterly statistics record) in a bundle: the browser
    parses it as Python does, and each spoiled one fails at the same step with the same
    message."""
    doc = build_bundle(tab.site.example.store, FINAL)
    report = {
        "quarter": "2026-Q1",
        "production": {"carats": 1_250_000, "parcels": 3, "value": 91_700_000},
        "exports": [{"partner": "AE", "carats": 450_000, "certificates": 1}],
        "imports": [],
    }

    def with_body(change: Callable[[dict[str, Any]], None]) -> bytes:
        new = copy.deepcopy(doc)
        body = copy.deepcopy(report)
        change(body)
        record = new["records"][0]["record"]
        record.update(kind="stats.report", body=body)
        return serialize_bundle(new)

    cases: list[tuple[bytes, str | None]] = [
        (with_body(lambda b: None), FINAL),
        (with_body(lambda b: b.update(quarter="2026-Q5")), FINAL),
        (with_body(lambda b: b["production"].update(carats=-1)), FINAL),
        (with_body(lambda b: b["production"].pop("parcels")), FINAL),
        (with_body(lambda b: b["exports"][0].update(value=-5)), FINAL),
        (with_body(lambda b: b["exports"].append(dict(b["exports"][0]))), FINAL),
        (
            with_body(
                lambda b: b["imports"].extend(
                    [{**b["exports"][0], "partner": p} for p in ("IN", "EU")]
                )
            ),
            FINAL,
        ),
        (with_body(lambda b: b.update(extra=1)), FINAL),
    ]
    page = tab.open("/")
    page.wait_for_selector("#home-search")
    for (data, parcel), js in zip(cases, _js_verify(page, cases), strict=True):
        py = check_bundle(data, parcel=parcel)
        assert not py.ok
        assert (js["ok"], js["step"], js["error"]) == (False, py.step, py.error)
    # the valid body passes parsing and fails only where the record's hash is proven
    assert check_bundle(cases[0][0], parcel=FINAL).step != "parse"


def test_browser_canonical_json_and_inclusion_proofs(tab: Browser) -> None:
    """verify.js's RFC 8785 bytes equal ledger.canonical's, and its RFC 9162 proofs check
    against ledger.merkle's trees for every leaf of every size up to 33."""
    values: list[Any] = [
        {"b": 1, "a": [True, False, None, -0, 9007199254740991, -9007199254740991]},
        {"text": 'quote " backslash \\ slash / tab \t nl \n nul \x00 us \x1f del \x7f'},
        {"unicode": "é € 😀 \u2028 \u2029 \ufeff", "é": 1, "€": 2, "😀": 3, "\ufb01": 4},
        {"": {"nested": [[], {}, [{}]]}, "z": "", "A": 0},
    ]
    page = tab.open("/")
    page.wait_for_selector("#home-search")
    got = page.evaluate(
        "async (vs) => { const m = await import('/web/verify.js'); "
        "return vs.map((v) => m.canonicalize(v)); }",
        values,
    )
    assert got == [canonical_bytes(v).decode() for v in values]
    refused = page.evaluate(
        """async () => { const m = await import('/web/verify.js');
        const e = new TextEncoder();
        const out = [];
        for (const t of ['{"a":1.5}', '{"a":1,"a":1}', '{"b":1,"a":2}', '{"a":"\\\\ud800"}',
                         '\\ufeff{}', '{"a":9007199254740993}']) {
          try { m.parseCanonical(e.encode(t), 'doc'); out.push('accepted'); }
          catch (err) { out.push(err.message); }
        }
        return out; }"""
    )
    assert all(r.startswith("doc: ") for r in refused), refused
    cases = []
    leaves = [leaf_hash(bytes([i])) for i in range(33)]
    for size in range(1, 34):
        tree = MemoryTree(leaves[:size])
        root = tree.root().hex()
        for index in range(size):
            proof = [p.hex() for p in tree.inclusion_proof(index, size)]
            cases.append([leaves[index].hex(), index, size, proof, root])
    bad = [*cases[100][:3], cases[100][3][:-1], cases[100][4]]
    wrong = [cases[100][0], cases[100][1], cases[100][2], cases[100][3], "00" * 32]
    results = page.evaluate(
        """async (cases) => { const m = await import('/web/verify.js');
        const out = [];
        for (const c of cases) {
          try { await m.verifyInclusion(...c); out.push('ok'); }
          catch (err) { out.push(err.message); }
        }
        return out; }""",
        [*cases, bad, wrong],
    )
    assert results[: len(cases)] == ["ok"] * len(cases)
    assert "too short (truncated)" in results[-2]
    assert results[-1].startswith("root: root mismatch: expected 0000")


# ---------------------------------------------------------------- the lineage drawing

#: every edge of the drawn lineage, sampled along its length from the DOM: it may touch
#: only its own two boxes, starting on its parent's bottom and ending on its child's top
GEOMETRY = """(svg) => {
  svg = svg || document.querySelector('svg.lineage');
  const boxes = [...svg.querySelectorAll('g.pnode')].map((g) => {
    const b = g.querySelector('rect.pbox').getBBox();
    return {id: g.dataset.parcel, x: b.x, y: b.y, w: b.width, h: b.height};
  });
  const byId = new Map(boxes.map((b) => [b.id, b]));
  const inside = (p, b, pad) =>
    p.x > b.x + pad && p.x < b.x + b.w - pad && p.y > b.y + pad && p.y < b.y + b.h - pad;
  const problems = [];
  const ends = new Set();
  let samples = 0;
  const edges = [...svg.querySelectorAll('path.edge')];
  for (const path of edges) {
    const from = path.dataset.parent, to = path.dataset.child;
    const name = `${from} -> ${to}`;
    const total = path.getTotalLength();
    const start = path.getPointAtLength(0), end = path.getPointAtLength(total);
    const pb = byId.get(from), cb = byId.get(to);
    if (!pb || !cb) { problems.push(`${name}: a box is missing`); continue; }
    if (Math.abs(start.y - (pb.y + pb.h)) > 1 || start.x <= pb.x || start.x >= pb.x + pb.w)
      problems.push(`${name}: does not start on ${from}'s bottom`);
    if (Math.abs(end.y - cb.y) > 1 || end.x <= cb.x || end.x >= cb.x + cb.w)
      problems.push(`${name}: does not end on ${to}'s top`);
    const key = `${end.x.toFixed(1)},${end.y.toFixed(1)}`;
    if (ends.has(key)) problems.push(`${name}: ends where another edge ends`);
    ends.add(key);
    for (let d = 0; d <= total; d += 2) {
      const p = path.getPointAtLength(d);
      samples += 1;
      for (const b of boxes) {
        if (b.id === from || b.id === to) {
          if (inside(p, b, 1) && d > 2 && d < total - 2)
            problems.push(`${name}: runs inside its own box ${b.id}`);
        } else if (inside(p, b, 0.5)) problems.push(`${name}: passes through ${b.id}`);
      }
    }
  }
  // every word drawn for a parcel (its lines, its "expand" control) stays inside its box
  const texts = [...svg.querySelectorAll('g.pnode text')]
    .map((t) => [t.closest('g.pnode').dataset.parcel, t]);
  for (const g of svg.querySelectorAll('g.expand'))
    for (const t of g.querySelectorAll('text, rect')) texts.push([g.dataset.expand, t]);
  for (const [id, t] of texts) {
    const b = byId.get(id), r = t.getBBox();
    const sides = {left: b.x - r.x, right: r.x + r.width - b.x - b.w,
                   top: b.y - r.y, bottom: r.y + r.height - b.y - b.h};
    for (const [side, out] of Object.entries(sides))
      if (out > 0)
        problems.push(`"${t.textContent}" runs ${out.toFixed(1)} px out of ${id}'s box (${side})`);
  }
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h)
        problems.push(`boxes ${a.id} and ${b.id} overlap`);
    }
  return {problems: [...new Set(problems)], boxes: boxes.length, edges: edges.length, samples};
}"""

#: draw a history document with lineage.js, everything expanded, and measure it
DRAW = """async ([history, collapse]) => {
  const m = await import('/web/lineage.js');
  const graph = m.graphOf(history);
  const collapsed = collapse ? m.defaultCollapsed(graph, history.subject) : new Set();
  const svg = m.lineageGraph(history, {collapsed});
  const holder = document.createElement('div');
  holder.append(svg);
  document.body.append(holder);
  const geometry = (GEOMETRY)(svg);
  holder.remove();
  return geometry;
}""".replace("GEOMETRY", GEOMETRY)


def _history(store: Store, parcel_id: str) -> dict[str, Any]:
    parcel = store.parcel(parcel_id)
    assert parcel is not None, parcel_id
    view = history_view(store, parcel, Caller("auditor"), None, 5000)
    out: dict[str, Any] = view.model_dump(mode="json", exclude_none=True)
    return out


def _demo_store() -> Store:
    """A five-authority KP story in memory, as ``kpl demo`` told it before its story became
    ``cli.story.KP_STORY``: parcels, certificates, merges and splits, among them the
    merge of Antwerp's EU-AW-1 with Russia's RU-UD-1 in Surat, which a drawing got wrong."""
    net = Network.create(("BW", "RU", "AE", "EU", "IN"), ("WDC",))
    sc = Scenario(net)
    store = Store.open("sqlite://", net.registry)

    def seal(chain: str, *records: Record) -> None:
        store.writer.apply(sc.seal(chain, *records))

    seal("BW", sc.party("BW", "BW-ACL2HHH6", "miner"), sc.party("BW", "BW-M67M3DE7", "exporter"))
    seal("RU", sc.party("RU", "RU-ME4A2QUB", "miner"))
    seal("AE", sc.party("AE", "AE-F6F7FV5W", "trader"))
    seal("EU", sc.party("EU", "EU-LVESSCDL", "importer"))
    seal("IN", sc.party("IN", "IN-JDAV2W3X", "manufacturer"))
    seal(
        "BW",
        sc.register("BW", "BW-JW-1", "BW-ACL2HHH6", 1_250_000, 125_000_000),
        sc.register("BW", "BW-OR-1", "BW-ACL2HHH6", 800_000, 80_000_000, mine="Orapa"),
    )
    seal(
        "RU",
        sc.register("RU", "RU-MI-1", "RU-ME4A2QUB", 900_000, 90_000_000, mine="Mir"),
        sc.register("RU", "RU-UD-1", "RU-ME4A2QUB", 600_000, 60_000_000, mine="Udachny"),
    )
    parts = [("BW-JW-1a", 500_000, 50_000_000), ("BW-JW-1b", 450_000, 45_000_000)]
    seal("BW", sc.split("BW", "BW-JW-1", [*parts, ("BW-JW-1c", 300_000, 30_000_000)]))
    seal("BW", *(sc.transfer("BW", p, "BW-M67M3DE7") for p in ("BW-JW-1a", "BW-JW-1b", "BW-OR-1")))
    seal(
        "BW",
        sc.issue("BW", "BW-2026-0001", "EU", "BW-M67M3DE7", ["BW-JW-1a", "BW-OR-1"]),
        sc.issue("BW", "BW-2026-0002", "AE", "BW-M67M3DE7", ["BW-JW-1b"]),
    )
    seal("RU", sc.issue("RU", "RU-2026-0001", "AE", "RU-ME4A2QUB", ["RU-MI-1"]))
    seal(
        "AE",
        sc.confirm("AE", "BW-2026-0002", "AE-F6F7FV5W"),
        sc.confirm("AE", "RU-2026-0001", "AE-F6F7FV5W"),
    )
    seal("AE", sc.merge("AE", ["BW-JW-1b", "RU-MI-1"], "AE-MIX-1", "AE-F6F7FV5W"))
    seal("EU", sc.confirm("EU", "BW-2026-0001", "EU-LVESSCDL"))
    seal("EU", sc.merge("EU", ["BW-JW-1a", "BW-OR-1"], "EU-AW-1", "EU-LVESSCDL"))
    seal("EU", sc.issue("EU", "EU-2026-0001", "IN", "EU-LVESSCDL", ["EU-AW-1"]))
    seal("RU", sc.issue("RU", "RU-2026-0002", "IN", "RU-ME4A2QUB", ["RU-UD-1"]))
    seal(
        "IN",
        sc.confirm("IN", "EU-2026-0001", "IN-JDAV2W3X"),
        sc.confirm("IN", "RU-2026-0002", "IN-JDAV2W3X"),
    )
    seal("IN", sc.merge("IN", ["EU-AW-1", "RU-UD-1"], "IN-CUT", "IN-JDAV2W3X"))
    seal(
        "IN",
        sc.split(
            "IN",
            "IN-CUT",
            [("IN-CUT-1", 900_000, 90_000_000), ("IN-CUT-2", 1_000_000, 100_000_000)],
        ),
    )
    return store


def _big_store(size: int = 200, seed: int = 15) -> tuple[Store, str]:
    """A lineage of ``size`` parcels on one chain: random splits and merges across
    generations (a lot mined long ago merged into a recent one makes a long edge), all
    ending in one parcel by merges of three."""
    net = Network.create(("BW",), ("WDC",))
    sc = Scenario(net)
    store = Store.open("sqlite://", net.registry)
    rng = random.Random(seed)
    seal = lambda *records: store.writer.apply(sc.seal("BW", *records))  # noqa: E731
    seal(sc.party("BW", "BW-MINE", "miner"))
    live: dict[str, tuple[int, int]] = {}
    roots = [(f"BW-M{i:02d}", 2_000_000, 200_000_000) for i in range(12)]
    seal(*(sc.register("BW", p, "BW-MINE", w, v) for p, w, v in roots))
    live.update({p: (w, v) for p, w, v in roots})
    made = len(roots)
    serial = 0

    def fresh() -> str:
        nonlocal serial
        serial += 1
        return f"BW-P{serial:03d}"

    while made < size:
        records: list[Record] = []
        for _ in range(3):
            pick = sorted(live)
            if rng.random() < 0.55 or len(pick) < 3:
                parent = rng.choice(pick)
                w, v = live.pop(parent)
                k = rng.choice((2, 2, 3))
                kids = [(fresh(), w // k, v // k) for _ in range(k - 1)]
                kids.append((fresh(), w - sum(x[1] for x in kids), v - sum(x[2] for x in kids)))
                records.append(sc.split("BW", parent, kids))
                live.update({p: (cw, cv) for p, cw, cv in kids})
                made += k
            else:
                parents = rng.sample(pick, rng.choice((2, 3)))
                child = fresh()
                got = [live.pop(p) for p in parents]
                weight, value = sum(g[0] for g in got), sum(g[1] for g in got)
                records.append(sc.merge("BW", parents, child, "BW-MINE", weight, value))
                live[child] = (weight, value)
                made += 1
        seal(*records)
    while len(live) > 1:
        group = sorted(live)[:3]
        child = fresh()
        got = [live.pop(p) for p in group]
        seal(sc.merge("BW", group, child, "BW-MINE"))
        live[child] = (sum(g[0] for g in got), sum(g[1] for g in got))
    (final,) = live
    return store, final


def test_lineage_edges_never_cross_a_box(tab: Browser) -> None:
    """The parcel page's drawing of the example, every parcel of ``kpl demo``'s story and a
    200-parcel lineage: no edge passes through a box it does not connect, every edge
    starts on its parent and ends on its own port on its child, no boxes overlap."""
    page = tab.open(f"/parcel/{FINAL}", token=AUDITOR)
    page.wait_for_selector("svg.lineage g.pnode")
    got = page.evaluate(GEOMETRY, None)
    assert got["problems"] == [], got
    assert (got["boxes"], got["edges"]) == (7, 7)
    demo = _demo_store()
    try:
        for parcel in sorted(p.id for p in demo.lineage.parcels(_DEMO_PARCELS).values()):
            history = _history(demo, parcel)
            got = page.evaluate(DRAW, [history, False])
            assert got["problems"] == [], (parcel, got)
        # the case of the issue: Russia's RU-UD-1 joins Antwerp's EU-AW-1 in Surat
        got = page.evaluate(DRAW, [_history(demo, "IN-CUT-2"), False])
        assert (got["boxes"], got["edges"]) == (7, 6), got
    finally:
        demo.close()
    big, final = _big_store()
    try:
        history = _history(big, final)
        assert len(history["parcels"]) >= 200
        full = page.evaluate(DRAW, [history, False])
        assert full["problems"] == [], full["problems"][:10]
        assert full["boxes"] == len(history["parcels"])
        assert full["edges"] == len({(e["parent"], e["child"]) for e in history["ancestors"]})
        assert full["samples"] > 10_000
        folded = page.evaluate(DRAW, [history, True])
        assert folded["problems"] == [], folded["problems"][:10]
        assert 0 < folded["boxes"] <= 40
    finally:
        big.close()


_DEMO_PARCELS = [
    "BW-JW-1",
    "BW-JW-1a",
    "BW-JW-1b",
    "BW-JW-1c",
    "BW-OR-1",
    "RU-MI-1",
    "RU-UD-1",
    "AE-MIX-1",
    "EU-AW-1",
    "IN-CUT",
    "IN-CUT-1",
    "IN-CUT-2",
]


VIEW = """async (history) => {
  const m = await import('/web/lineage.js');
  const view = m.lineageView(history);
  view.element.id = 'big-lineage';
  document.querySelector('main').prepend(view.element);
}"""


def test_large_lineage_fits_zooms_pans_and_expands(tab: Browser) -> None:
    """A 200-parcel lineage opens collapsed around the subject and fitted to the width;
    zoom, pan, expand and show-all work and keep the geometry truthful."""
    big, final = _big_store()
    try:
        history = _history(big, final)
    finally:
        big.close()
    for width in (1280, 390):
        page = tab.open("/", width=width)
        page.wait_for_selector("#home-search")
        page.evaluate(VIEW, history)
        page.wait_for_selector("#big-lineage svg.lineage")
        until(page, "document.querySelector('#big-lineage svg').dataset.scale !== undefined")
        note = page.inner_text("#lineage-note")
        assert re.fullmatch(rf"\d+ of {len(history['parcels'])} parcels shown", note), note
        frame = page.locator("#lineage-frame").bounding_box()
        drawn = page.locator("#big-lineage svg.lineage").bounding_box()
        assert drawn["width"] <= frame["width"] + 1, (drawn, frame)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        fitted = float(page.locator("#big-lineage svg").get_attribute("data-scale"))
        page.click("#lineage-zoom-in")
        zoomed = float(page.locator("#big-lineage svg").get_attribute("data-scale"))
        assert zoomed == pytest.approx(fitted * 1.25, rel=0.01)
        before = page.locator("#big-lineage svg").get_attribute("viewBox")
        page.focus("#lineage-frame")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowDown")
        assert page.locator("#big-lineage svg").get_attribute("viewBox") != before
        page.click("#lineage-fit")
        assert float(page.locator("#big-lineage svg").get_attribute("data-scale")) == fitted
        shot(page, f"lineage-200-{width}")
        shown = page.locator("#big-lineage g.pnode").count()
        page.locator("#big-lineage [data-expand]").first.click()
        until(page, f"document.querySelectorAll('#big-lineage g.pnode').length > {shown}")
        got = page.evaluate(GEOMETRY, None)
        assert got["problems"] == [], got["problems"][:10]
        page.click("#lineage-all")
        count = len(history["parcels"])
        until(page, f"document.querySelectorAll('#big-lineage g.pnode').length === {count}")
        assert page.inner_text("#lineage-note") == f"{len(history['parcels'])} parcels"
        page.close()


def test_every_page_passes_axe_and_has_a_skip_link(tab: Browser) -> None:
    """axe-core on the states the other tests do not photograph, at desktop and phone
    width: home, a search that finds nothing, settings signed in; the skip link moves the
    keyboard focus to the content without changing the route."""
    for width in (1280, 390):
        for route, token in (("/", None), ("/settings", AUDITOR), ("/search/NOPE-1", None)):
            page = tab.open(route, token=token, width=width)
            page.wait_for_selector("main h1")
            until(page, "!document.querySelector('main .loading')")
            assert accessibility(page) == [], (route, width)
            page.close()
    page = tab.open("/network")
    page.wait_for_selector("#participants")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "skip-link"
    assert page.is_visible("#skip-link")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.url.endswith("#/network")


def test_loading_and_unreachable_states(tab: Browser) -> None:
    """While the node has not answered the page says it is loading; when the node cannot
    be reached it says so in words, claims nothing verified, and retries on request."""
    held: list[Any] = []
    page = tab.context.new_page()
    page.set_default_timeout(TIMEOUT)

    def hold(route: Any) -> None:
        held.append(route)

    page.route("**/v1/parcels/**", hold)
    page.goto(f"{tab.site.url}/#/parcel/{FINAL}")
    page.wait_for_selector("#loading[role=status]")
    assert "Loading" in page.inner_text("#loading")
    assert accessibility(page) == []
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held
    for route in held:
        route.abort("connectionrefused")
    page.wait_for_selector("#unreachable")
    text = page.inner_text("#unreachable")
    assert "Node unreachable" in text
    assert "Nothing here has been checked" in text
    assert page.locator("#verify-result[data-status=verified]").count() == 0
    assert accessibility(page) == []
    shot(page, "unreachable")
    page.unroute("**/v1/parcels/**", hold)
    page.click("#unreachable button")
    page.wait_for_selector("svg.lineage g.pnode")
    page.close()


# ---------------------------------------------------------- the network (last: it adds evidence)


def test_network_page_and_equivocation_evidence(tab: Browser) -> None:
    page = tab.open("/network")
    page.wait_for_selector("#participants")
    text = page.inner_text("#participants")
    # each participant's row by its first cell (the example's keys are fresh on each
    # run: a key id may hold any code's letters)
    rows = {r.split("\t", 1)[0]: r for r in page.locator("#participants tr").all_inner_texts()}
    # (each authority sealed its 2026-Q1 report; BW also a late registration before it)
    for code, height in (("BW", 9), ("RU", 5), ("AE", 8), ("EU", 9), ("IN", 7)):
        assert f"\t{height}\t" in rows[code], rows[code]
    assert "World Diamond Council" in text
    assert tab.site.example.store.registry.network_id == page.inner_text("#network-id")
    assert "governance signatures checked in this browser" in page.inner_text("main")
    assert "No evidence" in page.inner_text("#evidence")
    # AE signs a second header at its head's height: the node holds the evidence,
    # and the page checks both signatures under AE's registry key
    head = tab.site.example.store.log.signed_head("AE")
    assert head is not None
    forged = Header.from_json({**head.header.to_json(), "root": "00" * 32})
    signer = tab.site.example.net.signers["AE"]
    other = SignedHeader(forged, signer.sign(Tag.SIG_HEADER, forged.raw))
    assert tab.site.node.add_evidence(Evidence.build(head, other))
    page.reload()
    page.wait_for_selector("table#evidence")
    evidence = page.inner_text("#evidence")
    assert "both signatures verify under the registry key" in evidence
    assert f"height {head.header.height}" in evidence
    shot(page, "network")


def test_stale_node_shows_how_far_behind(tab: Browser) -> None:
    """A chain behind what a peer announced, without progress for a minute: every page
    says by how many blocks, until the node is level again."""
    now = [1000.0]
    gossip = Gossip(tab.site.node, httpx.AsyncClient(), None, clock=lambda: now[0])
    held = tab.site.node.heads()["BW"]["height"]
    peer = PeerState(PeerConfig("BW", "http://127.0.0.1:9"), heads={"BW": held + 7})
    gossip.peers = {"BW": peer}
    assert gossip.sync_status()["BW"]["stale"] is False  # behind, but only just
    now[0] += 60
    tab.site.app.state.gossip = gossip
    try:
        page = tab.open("/network")
        page.wait_for_selector("#stale:not([hidden])")
        text = page.inner_text("#stale")
        assert "behind by 7 blocks on chain BW" in text, text
        shot(page, "stale")
        peer.heads = {"BW": held}  # level again
        page.reload()
        page.wait_for_selector("#participants")
        until(page, "document.getElementById('stale').hidden")
    finally:
        tab.site.app.state.gossip = None
