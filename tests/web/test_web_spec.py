"""The browser's verifier (api/web/verify.js) against the verifier written from
docs/spec alone (tests/spec/independent_verifier.py), in Debian's Chromium, headless.

Every conformance vector of docs/spec/vectors/, seeded single-field mutations of
the valid ones, and seeded random stories sealed without the rules
(tests/spec/mutations.py) run through verify.js in one page, in one batch. The
page implements steps 1 to 4, 6 (without the replay) and 7: where the
independent verifier fails at one of those, the page must fail at the same step
with the same error code; where the independent verifier fails at step 5
(replay), the page must not fail before it; where it verifies, the page must
verify. The reference verifier (ledger/bundle.py) is held to the same outcome.

verify.js is served by a bare static server on 127.0.0.1 (no node: nothing but
the module is needed), a secure context, so WebCrypto has SHA-256 and Ed25519.
Skipped without Chromium or Playwright unless ``KPL_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kpledger.ledger.bundle import verify_bundle
from kpledger.ledger.errors import InvalidData
from tests.spec.independent_verifier import canonical, verify
from tests.spec.mutations import mutated, random_story

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "api" / "web"
VECTORS = REPO / "docs" / "spec" / "vectors"
CASES: list[dict[str, Any]] = json.loads((VECTORS / "index.json").read_text())
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
#: how many mutated vectors and random stories; the whole batch verifies in seconds
MUTATIONS = 200
STORIES = 30
#: the steps verify.js runs (5, the replay, is `kpl verify`'s)
IN_BROWSER = {1, 2, 3, 4, 6, 7}


class _Files(SimpleHTTPRequestHandler):
    """``/`` an empty page, ``/web/...`` the files of api/web; nothing logged."""

    def do_GET(self) -> None:
        if self.path == "/":
            body = b"<!doctype html><html lang=en><title>verify.js</title></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if not re.fullmatch(r"/web/[a-z]+\.js", self.path):
            self.send_error(404)
            return
        self.path = self.path.removeprefix("/web")
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: the browser tests need Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Files, directory=str(WEB)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
            try:
                tab = browser.new_page()
                tab.set_default_timeout(60_000)
                errors: list[str] = []
                tab.on("pageerror", lambda exc: errors.append(str(exc)))
                tab.goto(f"http://127.0.0.1:{server.server_address[1]}/")
                yield tab
                assert errors == []
            finally:
                browser.close()
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _in_browser(page: Any, cases: list[tuple[bytes, bool, str | None]]) -> list[dict[str, Any]]:
    """verify.js's outcome for each (bundle bytes, pin registry.json?, parcel), in one batch."""
    script = """async ([registry, cases]) => {
      const m = await import('/web/verify.js');
      const out = [];
      for (const [b64, pin, parcel] of cases) {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const options = {};
        if (pin) options.pinnedRegistry = registry;
        if (parcel) options.parcel = parcel;
        const r = await m.verifyBundle(bytes, options);
        out.push({ok: r.ok, step: r.stepNumber, code: r.code, error: r.error});
      }
      return out;
    }"""
    registry = json.loads((VECTORS / "registry.json").read_text())
    encoded = [[base64.b64encode(d).decode(), pin, parcel] for d, pin, parcel in cases]
    result: list[dict[str, Any]] = page.evaluate(script, [registry, encoded])
    return result


def _reference(data: bytes, registry: bytes | None, parcel: str | None) -> tuple[int, str] | None:
    try:
        verify_bundle(data, registry=registry, parcel=parcel)
    except InvalidData as exc:
        return getattr(exc, "bundle_step", 0), exc.code
    return None


def _cases() -> list[tuple[str, bytes, bool, str | None]]:
    """(what, bundle bytes, pinned?, parcel): the vectors, mutated vectors, random stories."""
    out = [
        (c["file"], (VECTORS / c["file"]).read_bytes(), bool(c["pin"]), c["parcel"]) for c in CASES
    ]
    rng = random.Random(1414)
    valid = [c for c in CASES if c["want"]["ok"]]
    while len(out) < len(CASES) + MUTATIONS:
        case = rng.choice(valid)
        doc, change = mutated(json.loads((VECTORS / case["file"]).read_bytes()), rng)
        try:
            data = canonical(doc)
        except ValueError:
            continue
        out.append((f"{case['file']}: {change}", data, bool(case["pin"]), case["parcel"]))
    for n in range(STORIES):
        data, subject, steps = random_story(rng)
        out.append((f"story {n} {steps}", data, False, subject))
    return out


def test_the_browser_verifier_agrees_with_the_independent_one(page: Any) -> None:
    cases = _cases()
    pinned = canonical(json.loads((VECTORS / "registry.json").read_text()))
    began = time.monotonic()
    got = _in_browser(page, [(data, pin, parcel) for _, data, pin, parcel in cases])
    browser_seconds = time.monotonic() - began
    seen: set[tuple[int, str] | None] = set()
    replayed = 0
    for (what, data, pin, parcel), js in zip(cases, got, strict=True):
        registry = pinned if pin else None
        o = verify(data, registry, parcel)
        mine = None if o.ok else (o.step, o.code)
        assert _reference(data, registry, parcel) == mine, (what, o.message)
        page_said = None if js["ok"] else (js["step"], js["code"])
        if mine is not None and mine[0] == 5:
            # the replay is not run in the page: it must not fail before it
            replayed += 1
            assert page_said is None or page_said[0] > 5, (what, o.message, js["error"])
        else:
            assert page_said == mine, (what, o.message, js["error"])
        seen.add(mine)
    # the vectors' own verdicts hold in the page too
    for case, js in zip(CASES, got, strict=False):
        if case["want"]["ok"]:
            assert js["ok"], (case["file"], js["error"])
        elif case["want"]["step"] in IN_BROWSER:
            assert (js["step"], js["code"]) == (case["want"]["step"], case["want"]["code"]), case
    print(f"{len(cases)} bundles in {browser_seconds:.1f} s in the page, {replayed} left to replay")
    print("outcomes:", sorted(seen, key=str))
    steps = {s[0] for s in seen if s is not None}
    assert steps >= {1, 2, 3, 4, 5, 6}, steps
    assert len(seen) >= 15, seen  # many codes, not one failure repeated
    assert browser_seconds < 60
