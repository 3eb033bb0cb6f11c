"""The officer's forms in headless Chromium against real node processes.

BW and EU run as ``kpl node run`` processes (the tests/node harness); the page
``/web/officer.html`` of each is opened with that authority's operator token.
BW registers production and issues a certificate from a held parcel (lines
and totals filled by its node from the ledger); the EU refuses it, BW issues
it again, and the EU confirms. Errors show the rule and the field. Screenshots
go to ``test-output/web/officer-*.png``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from kpledger.ledger.records import Kind
from kpledger.node.client import ClientError, NodeClient
from kpledger.node.compose import Composer
from tests.node.conftest import Cluster
from tests.web.test_web_explorer import ARGS, CHROMIUM, SHOTS, TIMEOUT, shot, until

pytestmark = pytest.mark.browser

WAIT = 60.0


@pytest.fixture
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is absent: the browser tests need Debian's chromium "
            "(apt-get install -y chromium chromium-driver)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright")
    SHOTS.mkdir(parents=True, exist_ok=True)
    profile = tmp_path_factory.mktemp("officer-chromium")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            yield context
        finally:
            context.close()


def open_page(context: Any, url: str, token: str | None, errors: list[str]) -> Any:
    page = context.new_page()
    page.set_default_timeout(TIMEOUT * 2)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if token is not None:
        page.add_init_script(f"sessionStorage.setItem('kpl.token', {token!r});")
    page.goto(f"{url}/web/officer.html")
    page.wait_for_selector('body[data-ready="1"]')
    return page


def outcome(page: Any, box: str) -> tuple[str, str]:
    """Wait until the outcome box ``box`` holds a final status; that status and text."""
    until(
        page,
        f"['committed','refused','invalid','error'].includes("
        f"document.getElementById('{box}').dataset.status)",
        timeout=WAIT,
    )
    el = page.locator(f"#{box}")
    return str(el.get_attribute("data-status")), str(el.inner_text())


def wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def status_of(client: NodeClient, number: str) -> str | None:
    try:
        return str(client.get(f"/v1/certificates/{number}")["status"])
    except ClientError:
        return None


@pytest.mark.timeout(500)
def test_officer_forms_register_issue_refuse_confirm(
    cluster: Callable[..., Cluster], chromium: Any
) -> None:
    c = cluster(("BW", "EU"))
    c.start("BW", "EU", "WDC")
    for code, party, role in (("BW", "BW-MINE", "miner"), ("EU", "EU-IMP", "importer")):
        client = c.operator(code)
        composer = Composer.connect(client)
        record = composer.record(
            Kind.PARTY_REGISTER, composer.party_register(party, party, role, "HQ")
        )
        client.submit([record])
        assert client.wait_settled([record["id"]], timeout=WAIT)[record["id"]]["status"] == (
            "committed"
        )
    bw_url, eu_url = c.nodes["BW"].url, c.nodes["EU"].url
    errors: list[str] = []

    # without the operator token the forms stay hidden and say what they need
    public = open_page(chromium, bw_url, None, errors)
    assert public.locator("#needs-operator").is_visible()
    assert public.locator("#register").is_hidden()

    bw = open_page(chromium, bw_url, c.token("BW", "operator_token"), errors)
    assert "Operator of BW" in bw.inner_text("#officer-status")

    # register production: a bad number and a future date are refused, naming the field
    bw.fill("#r-parcel", "BW-W1")
    bw.fill("#r-custodian", "BW-MINE")
    bw.fill("#r-carats", "heavy")
    bw.fill("#r-usd", "13,400.00")
    bw.fill("#r-mine", "Jwaneng")
    bw.click("#register-submit")
    status, text = outcome(bw, "register-outcome")
    assert status == "invalid", text
    assert "field: carats" in text
    bw.fill("#r-carats", "100.00")
    bw.fill("#r-produced", "2999-01-01")
    bw.click("#register-submit")
    status, text = outcome(bw, "register-outcome")
    assert status == "refused", text
    assert "Refused by rule time at body.produced" in text
    bw.fill("#r-produced", "")
    bw.click("#register-submit")
    status, text = outcome(bw, "register-outcome")
    assert status == "committed", text
    assert "Committed parcel.register: record BW/" in text
    assert bw.get_attribute("#register-outcome #subject-link", "href") == "/#/parcel/BW-W1"
    assert "/#/record/BW/" in str(bw.get_attribute("#register-outcome #record-link", "href"))
    # a record is written CHAIN/INDEX here too, as in the explorer and the CLI
    assert re.fullmatch(r"record BW/\d+", bw.inner_text("#register-outcome #record-link"))
    shot(bw, "officer-register")

    # issue: pick the held parcel; the node fills lines, totals and origin
    bw.wait_for_selector('input[data-parcel="BW-W1"]')
    bw.fill("#i-number", "BW-WEB-1")
    bw.fill("#i-destination", "EU")
    bw.fill("#i-importer", "Antwerp Rough NV")
    bw.fill("#i-address", "Antwerp")
    bw.check('input[data-parcel="BW-W1"]')
    bw.wait_for_selector("#issue-totals")
    totals = bw.inner_text("#issue-totals")
    assert "1 parcel(s), 100.00 ct, US$ 13,400.00; country of origin BW; exporter BW-MINE" in (
        totals
    )
    assert bw.locator("#issue-lines tbody tr").count() == 1
    shot(bw, "officer-issue")
    bw.click("#issue-submit")
    status, text = outcome(bw, "issue-outcome")
    assert status == "committed", text
    assert bw.get_attribute("#issue-outcome #subject-link", "href") == "/#/certificate/BW-WEB-1"

    # the EU refuses it; the parcel goes back to BW
    eu = open_page(chromium, eu_url, c.token("EU", "operator_token"), errors)
    reader = c.reader("EU")
    wait_for("EU to hold BW-WEB-1", lambda: status_of(reader, "BW-WEB-1") == "issued")
    eu.reload()
    eu.wait_for_selector('.incoming-item[data-number="BW-WEB-1"]')
    item = eu.locator('.incoming-item[data-number="BW-WEB-1"]')
    item.locator('select[name="code"]').select_option("documents")
    item.locator('input[name="reason"]').fill("importer unknown at the address")
    shot(eu, "officer-incoming")
    item.locator('form[data-act="refuse"] button').click()
    status, text = outcome(eu, "incoming-outcome")
    assert status == "committed", text
    assert "Committed certificate.refuse: record EU/" in text
    eu.wait_for_selector("#incoming-none")
    bw_reader = c.reader("BW")
    wait_for("BW to see the refusal", lambda: status_of(bw_reader, "BW-WEB-1") == "refused")

    # the auditor's dashboard lists the refusal with its reason
    wdc_reader = c.reader("WDC")
    wait_for("WDC to see the refusal", lambda: status_of(wdc_reader, "BW-WEB-1") == "refused")
    audit = chromium.new_page()
    audit.set_default_timeout(TIMEOUT * 2)
    audit.on("pageerror", lambda exc: errors.append(str(exc)))
    audit.add_init_script(
        f"sessionStorage.setItem('kpl.token', {c.token('WDC', 'auditor_token')!r});"
    )
    audit.goto(f"{c.nodes['WDC'].url}/#/audit?period={datetime.now(UTC).year}")
    audit.wait_for_selector("#finding-refusals")
    refusals = audit.inner_text("#finding-refusals")
    for text in ("BW-WEB-1", "BW → EU", "importer unknown at the address"):
        assert text in refusals, refusals
    assert "documents" in refusals.lower()  # the reason code, as a pill
    shot(audit, "officer-audit-refusals")
    audit.close()

    # issued again, and this time confirmed

    def back_in_pick_list() -> bool:
        bw.reload()
        bw.wait_for_selector('body[data-ready="1"]')
        return bool(bw.locator('input[data-parcel="BW-W1"]').count() == 1)

    wait_for("BW-W1 back in BW's pick list", back_in_pick_list)
    bw.fill("#i-number", "BW-WEB-2")
    bw.fill("#i-destination", "EU")
    bw.fill("#i-importer", "Antwerp Rough NV")
    bw.fill("#i-address", "Antwerp")
    bw.check('input[data-parcel="BW-W1"]')
    bw.wait_for_selector("#issue-totals")
    bw.click("#issue-submit")
    status, text = outcome(bw, "issue-outcome")
    assert status == "committed", text
    wait_for("EU to hold BW-WEB-2", lambda: status_of(reader, "BW-WEB-2") == "issued")
    eu.reload()
    eu.wait_for_selector('.incoming-item[data-number="BW-WEB-2"]')
    item = eu.locator('.incoming-item[data-number="BW-WEB-2"]')
    item.locator('input[name="custodian"]').fill("EU-NOBODY")
    item.locator('form[data-act="confirm"] button').click()
    status, text = outcome(eu, "incoming-outcome")
    assert status == "refused", text
    assert "rule 1 at body.custodian" in text
    item.locator('input[name="custodian"]').fill("EU-IMP")
    item.locator('form[data-act="confirm"] button').click()
    # (the submit handler marks the box "working" before the click returns)
    status, text = outcome(eu, "incoming-outcome")
    assert status == "committed", text
    parcel = reader.get("/v1/parcels/BW-W1")
    assert (parcel["jurisdiction"], parcel["status"]) == ("EU", "active")
    shot(eu, "officer-confirmed")
    assert errors == []
