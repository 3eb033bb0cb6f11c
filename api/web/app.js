// kpledger explorer: pages over the node's provenance API.
//
// Every request goes to the node that served this page, with the caller's own
// token (kept in sessionStorage, sent as a Bearer token), so the API's roles
// decide what appears: the public sees no values and no party names, because
// the API does not send them. Nothing is loaded from anywhere else.

import { hbars, stacked, colorOf, s as svgEl } from "./charts.js";
import { lineageView } from "./lineage.js";
import {
  bytesToHex,
  canonicalize,
  checkRegistry,
  cryptoProblem,
  ed25519Verify,
  keyId,
  hexToBytes,
  leafHash,
  verifyBundle,
  verifyCertificate,
  STEPS,
} from "./verify.js";

const TOKEN_KEY = "kpl.token";
const PIN_REGISTRY = "kpl.pin.registry";
const PIN_NETWORK = "kpl.pin.network";
const LOCAL_ID = /^[A-Z]{2,8}-[A-Za-z0-9][A-Za-z0-9._-]{0,47}$/;
const HS = {
  "7102.10": "Diamonds, unsorted",
  "7102.21": "Industrial diamonds, unworked or simply sawn, cleaved or bruted",
  "7102.31": "Non-industrial diamonds, unworked or simply sawn, cleaved or bruted",
};

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  who: null,
  registry: null,
  heads: null,
  render: 0,
};

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const enc = encodeURIComponent;
const link = (href, text, attrs = {}) => h("a", { href, ...attrs }, text);
const parcelLink = (id) => link(`#/parcel/${enc(id)}`, id, { class: "id" });
const certLink = (n) => link(`#/certificate/${enc(n)}`, n, { class: "id" });
const pill = (text, cls = text) => h("span", { class: `pill ${cls}` }, String(text).replace("_", " "));
const short = (hex, n = 12) => (hex ? `${hex.slice(0, n)}…` : "");
const tokenLink = (text = "Enter a token") => link(`#/settings?back=${enc(location.hash || "#/")}`, text);

function ct(hundredths) {
  if (hundredths === undefined || hundredths === null) return "";
  return `${(hundredths / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })} ct`;
}

function usd(cents) {
  if (cents === undefined || cents === null) return "";
  return `US$ ${(cents / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

function when(time) {
  return time ? time.replace("T", " ").replace("Z", " UTC") : "";
}

function ago(time) {
  const s = (Date.now() - Date.parse(time)) / 1000;
  if (!Number.isFinite(s)) return "";
  if (s < 90) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function cellClass(c) {
  return [c.num ? "num" : "", c.wide ? "wide-only" : ""].join(" ").trim() || null;
}

function table(columns, rows, attrs = {}) {
  // on a phone each row reads as a list of labelled cells (style.css: table.rowcards, the
  // label from data-label); a table still wider than the screen scrolls, and the
  // keyboard can reach it too (tabindex)
  return h(
    "div",
    { class: "scroll", tabindex: "0" },
    h(
      "table",
      { ...attrs, class: ["rowcards", attrs.class].filter(Boolean).join(" ") },
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: cellClass(c) }, c.title)))),
      h(
        "tbody",
        {},
        rows.length
          ? rows.map((r) => h("tr", r.attrs || {}, columns.map((c) => h("td", { class: cellClass(c), "data-label": c.title }, c.cell(r)))))
          : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "none")),
      ),
    ),
  );
}

function card(title, ...children) {
  const attrs = children[0] && !(children[0] instanceof Node) && !Array.isArray(children[0]) && typeof children[0] === "object" ? children.shift() : {};
  return h("section", { class: "card", ...attrs }, title ? h("h2", {}, title) : null, ...children);
}

/**
 * A confidential field (record format 2) the caller does not get in clear: the ledger
 * holds only its salted commitment, so the page shows that, never a made-up value.
 * `entitled`: the caller may see the field, but this node holds no disclosure of it.
 */
function committedField(what, commitment, entitled) {
  const why = entitled ? "this node holds no disclosure of it" : "in clear for authorised roles only";
  return h(
    "span",
    { class: "hidden-field committed", "data-commitment": commitment },
    `${what}: committed `,
    h("code", { class: "id", title: `commitment ${commitment}` }, `${commitment.slice(0, 12)}…`),
    ` — ${why}`,
  );
}

function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(Boolean).map(([k, v, id]) => [h("dt", {}, k), h("dd", id ? { id } : {}, v)]),
  );
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

async function api(path, { bytes = false, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  if (auth && state.token) headers.Authorization = `Bearer ${state.token}`;
  let res;
  try {
    res = await fetch(path, { headers, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, `the node did not answer (${err.message})`);
  }
  if (!res.ok) {
    let detail = res.statusText;
    try {
      const problem = await res.json();
      detail = problem.detail || detail;
    } catch {
      // not a problem document
    }
    throw new ApiError(res.status, detail);
  }
  return bytes ? new Uint8Array(await res.arrayBuffer()) : res.json();
}

/** The registry as this node publishes it (public), cached. It is what the node says. */
async function nodeRegistry() {
  if (!state.registry) state.registry = await api("/v1/registry", { auth: false });
  return state.registry;
}

async function names() {
  try {
    const reg = await nodeRegistry();
    return Object.fromEntries(reg.registry.participants.map((p) => [p.code, p.name]));
  } catch {
    return {};
  }
}

function pins() {
  return {
    registry: localStorage.getItem(PIN_REGISTRY) || "",
    network: localStorage.getItem(PIN_NETWORK) || "",
  };
}

/** Options for the bundle verifier: the pinned trust anchor, else the node's own network id. */
async function anchorOptions() {
  const pin = pins();
  if (pin.registry) return { pinnedRegistry: JSON.parse(pin.registry) };
  if (pin.network) return { pinnedNetwork: pin.network };
  const heads = await api("/v1/heads", { auth: false });
  return { nodeNetwork: heads.network };
}

/**
 * A registry checked in this browser, and what it is trusted on: the pinned
 * registry; else the node's registry compared with a pinned network id; else
 * the node's word.
 */
async function trustedRegistry() {
  const pin = pins();
  if (pin.registry) {
    const reg = await checkRegistry(JSON.parse(pin.registry));
    return { reg, kind: "pinned", trusting: "the pinned registry", text: `the registry you pinned (network ${short(reg.network, 16)})` };
  }
  const reg = await checkRegistry(await nodeRegistry());
  if (pin.network) {
    if (pin.network !== reg.network) {
      throw new Error(`this node's registry is network ${short(reg.network, 16)}, not the pinned ${short(pin.network, 16)}`);
    }
    return { reg, kind: "pinned", trusting: "the node's registry, equal to the pinned network id", text: `this node's registry, equal to the network id you pinned (${short(reg.network, 16)})` };
  }
  return {
    reg,
    kind: "node",
    trusting: "the node's registry",
    text: `the registry this node serves (network ${short(reg.network, 16)}): this trusts the node; pin the registry in Settings to verify independently`,
  };
}

// ---------------------------------------------------------------- the frame

function start(title) {
  state.render += 1;
  const id = state.render;
  const main = document.getElementById("main");
  main.replaceChildren(h("p", { class: "loading", id: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Loading from this node…"));
  document.title = `${title} · kpledger explorer`;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", location.hash.startsWith(a.getAttribute("href")));
  }
  return {
    live: () => id === state.render,
    show: (...nodes) => {
      if (id === state.render) main.replaceChildren(...nodes);
    },
  };
}

function failure(err) {
  if (err instanceof ApiError && (err.status === 0 || err.status === 502 || err.status === 503 || err.status === 504)) {
    return h(
      "div",
      { class: "error", id: "unreachable", role: "alert" },
      h("b", {}, "Node unreachable. "),
      `The explorer could not get an answer from the node serving this page (${err.detail}). Nothing here has been checked; the ledger itself is unaffected. Check your connection, or try again in a moment. `,
      h("button", { type: "button", class: "secondary", onclick: () => route() }, "Try again"),
    );
  }
  if (err instanceof ApiError && err.status === 404) return h("p", { class: "error" }, err.detail);
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
    return h("p", { class: "error" }, `${err.detail} `, tokenLink());
  }
  return h("p", { class: "error" }, String(err.message || err));
}

async function whoami() {
  const badge = document.getElementById("who");
  try {
    state.who = await api("/v1/whoami");
  } catch (err) {
    if (err.status === 401 && state.token) {
      state.token = "";
      sessionStorage.removeItem(TOKEN_KEY);
      state.who = await api("/v1/whoami").catch(() => ({ role: "public" }));
      badge.title = "the token was refused";
    } else {
      state.who = { role: "public" };
    }
  }
  const who = state.who;
  badge.textContent = who.role === "public" ? "public" : `${who.role}${who.party ? ` · ${who.party}` : who.name ? ` · ${who.name}` : ""}`;
  badge.classList.toggle("signed", who.role !== "public");
  return who;
}

async function footer() {
  try {
    const heads = await api("/v1/heads", { auth: false });
    state.heads = heads;
    document.getElementById("node-info").textContent = `node ${heads.node} · network ${short(heads.network, 16)}`;
  } catch {
    // the footer is decoration
  }
}

// A node behind its peers answers from old data: say so on every page, per chain.
async function staleness() {
  const banner = document.getElementById("stale");
  try {
    const health = await api("/healthz", { auth: false });
    const behind = Object.entries(health.sync || {}).filter(([, s]) => s.stale);
    banner.hidden = behind.length === 0;
    banner.textContent = behind
      .map(([chain, s]) => `This node is behind by ${s.behind} blocks on chain ${chain} (no progress for ${Math.round(s.since_progress || 0)} s).`)
      .concat(behind.length ? ["Its answers may be out of date."] : [])
      .join(" ");
  } catch {
    // unknown staleness: leave the banner as it was
  }
}

// ---------------------------------------------------------------- search

/**
 * What a person may have meant by `q`: as typed; with the participant code in
 * capitals; all in capitals, and so with a trailing letter small again (BW-JW-1a);
 * a certificate number with its serial padded to four digits (EU-2026-1 and
 * EU-2026-001 for EU-2026-0001) or with a zero too many.
 */
function candidates(q) {
  const out = [];
  const add = (x) => {
    if (LOCAL_ID.test(x) && !out.includes(x)) out.push(x);
  };
  const dash = q.indexOf("-");
  const cased = [q, dash > 0 ? q.slice(0, dash).toUpperCase() + q.slice(dash) : q, q.toUpperCase()];
  cased.push(q.toUpperCase().replace(/([0-9])([A-Z]+)$/, (_, d, l) => d + l.toLowerCase()));
  for (const c of cased) {
    add(c);
    const m = /^([A-Z]{2,8})-(\d{4})-(\d{1,6})$/.exec(c);
    if (m) {
      const n = String(Number(m[3]));
      add(`${m[1]}-${m[2]}-${n.padStart(4, "0")}`);
    }
  }
  return out;
}

/** Every parcel and certificate that one of the candidates names, as [kind, id]. */
async function lookup(q) {
  const tries = candidates(q);
  const asks = tries.flatMap((c) => [
    api(`/v1/parcels/${enc(c)}`).then(() => ["parcel", c]),
    api(`/v1/certificates/${enc(c)}`).then(() => ["certificate", c]),
  ]);
  const settled = await Promise.allSettled(asks);
  const found = settled.filter((r) => r.status === "fulfilled").map((r) => r.value);
  const unreachable = settled.some((r) => r.status === "rejected" && r.reason instanceof ApiError && (r.reason.status === 0 || r.reason.status >= 500));
  return { found, unreachable };
}

async function search(q) {
  q = q.trim();
  if (!q) return;
  const { found } = candidates(q).length ? await lookup(q) : { found: [] };
  if (found.length === 1) location.hash = `#/${found[0][0]}/${enc(found[0][1])}`;
  else location.hash = `#/search/${enc(q)}`;
}

function absentCertificate(number) {
  const issuer = number.split("-")[0];
  return card(
    "What this means for a buyer",
    { class: "card", id: "absence" },
    h(
      "p",
      {},
      `Every KP certificate of this network is recorded by its issuing authority in that authority's log, and this node holds a copy of every log. A certificate ${number} that the ledger does not hold is most likely not a genuine KP certificate of this network: do not accept goods on its strength alone.`,
    ),
    h(
      "ul",
      {},
      h("li", {}, "Check the number on the paper certificate, character by character."),
      h("li", {}, `Ask the issuing authority (${issuer}, the code before the first dash) whether it issued ${number}.`),
      h("li", {}, "A certificate issued in the last minutes may not have reached this node yet: the network page shows how far behind each chain is. Try again shortly."),
    ),
  );
}

/** Up to ten parcel ids and ten certificate numbers starting with `q` (case ignored). */
async function startingWith(q) {
  const prefix = q.trim();
  if (!prefix || prefix.length > 56) return { parcels: [], certificates: [] };
  try {
    return await api(`/v1/search?prefix=${encodeURIComponent(prefix)}&limit=10`);
  } catch {
    return { parcels: [], certificates: [] };
  }
}

/** The card of ids and numbers that start with what was typed, less those already shown. */
function prefixCard(q, hits, shown, kinds = ["parcel", "certificate"]) {
  const label = { parcel: "Parcel", certificate: "KP certificate" };
  const items = [
    ...(kinds.includes("parcel") ? hits.parcels.map((id) => ["parcel", id]) : []),
    ...(kinds.includes("certificate") ? hits.certificates.map((id) => ["certificate", id]) : []),
  ].filter(([, id]) => !shown.includes(id));
  if (!items.length) return null;
  return card(
    `Starting with ${q.trim()}`,
    h("ul", { id: "prefix-suggestions" }, items.map(([k, id]) => h("li", {}, `${label[k]} `, k === "parcel" ? parcelLink(id) : certLink(id)))),
  );
}

async function searchPage(q) {
  const page = start(`Search ${q}`);
  const [{ found, unreachable }, hits] = await Promise.all([
    candidates(q.trim()).length ? lookup(q.trim()) : { found: [], unreachable: false },
    startingWith(q),
  ]);
  if (!page.live()) return;
  const label = { parcel: "Parcel", certificate: "KP certificate" };
  const exact = found.filter(([, id]) => id === q);
  const near = found.filter(([, id]) => id !== q);
  const looksLikeCertificate = /^[A-Za-z]{2,8}-\d{4}-\d+$/.test(q.trim());
  page.show(
    h("h1", {}, `Search: ${q}`),
    exact.length ? card("Found", h("ul", { id: "found" }, exact.map(([k, id]) => h("li", {}, `${label[k]} `, k === "parcel" ? parcelLink(id) : certLink(id))))) : null,
    near.length
      ? card(
          exact.length ? "Also" : "Did you mean",
          h("ul", { id: "suggestions" }, near.map(([k, id]) => h("li", {}, `${label[k]} `, k === "parcel" ? parcelLink(id) : certLink(id)))),
        )
      : null,
    prefixCard(q, hits, found.map(([, id]) => id)),
    unreachable ? failure(new ApiError(0, "some lookups got no answer")) : null,
    found.length
      ? null
      : card(
          null,
          h("p", { class: "error", id: "not-found" }, `No parcel or certificate ${q} on this node.`),
          h("p", { class: "muted" }, "Parcel ids and certificate numbers start with the code of the participant that minted them, as in BW-JW-1 or EU-2026-0001. Capitals and a missing leading zero in a certificate's serial number are tolerated."),
        ),
    !found.length && looksLikeCertificate ? absentCertificate(q.trim().toUpperCase()) : null,
  );
}

function home() {
  const page = start("Explorer");
  const form = h(
    "form",
    {
      class: "search big",
      onsubmit: (e) => {
        e.preventDefault();
        search(e.target.elements.q.value);
      },
    },
    h("input", { name: "q", type: "search", id: "home-search", placeholder: "e.g. IN-CUT-1 or EU-2026-0001", "aria-label": "Parcel id or certificate number", required: true }),
    h("button", { type: "submit" }, "Search"),
  );
  page.show(
    h("h1", {}, "Rough-diamond provenance explorer"),
    card(
      "Find a parcel or a KP certificate",
      form,
      h(
        "p",
        { class: "muted" },
        "A parcel's page draws its lineage back to the mines and checks its provenance bundle in this browser: every signature and every inclusion proof, with the browser's own cryptography.",
      ),
    ),
    h(
      "div",
      { class: "grid" },
      card("Network", h("p", {}, "Participants, each chain's height and time, peers and equivocation evidence."), link("#/network", "Open the network page")),
      card("Audit", h("p", {}, "KP statistics for a year or a quarter; with an auditor token, the findings and the records behind them."), link("#/audit", "Open the auditor dashboard")),
      card("Token and trust", h("p", {}, "Enter a token to see what your role may see, and pin the network's registry to verify without trusting this node."), link("#/settings", "Settings")),
    ),
  );
}

// ---------------------------------------------------------------- parcel

function recordRows(history) {
  const byRecord = new Map();
  for (const e of history.events) {
    const key = `${e.chain}/${e.index}`;
    if (!byRecord.has(key)) byRecord.set(key, { ...e, key, parcels: [] });
    byRecord.get(key).parcels.push(e.parcel);
  }
  return [...byRecord.values()].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.key < b.key ? -1 : 1));
}

function originCard(origin, shares, nameOf) {
  const total = Object.values(origin).reduce((a, b) => a + b, 0);
  const codes = Object.keys(origin).sort((a, b) => origin[b] - origin[a] || (a < b ? -1 : 1));
  const chart = stacked(
    [{ label: "", total, text: ct(total), segments: codes.map((c) => ({ key: c, value: origin[c], text: `${ct(origin[c])} (${shares[c]} %)` })) }],
    {},
  );
  return card(
    "Origin composition",
    { id: "origin" },
    h("div", { id: "origin-chart" }, chart),
    table(
      [
        { title: "Origin", cell: (r) => [svgEl("svg", { width: 12, height: 12, class: "swatch" }, svgEl("rect", { width: 12, height: 12, rx: 2, fill: colorOf(r.code) })), " ", `${r.code}${nameOf[r.code] ? ` · ${nameOf[r.code]}` : ""}`] },
        { title: "Weight", num: true, cell: (r) => (origin[r.code] ? ct(origin[r.code]) : "trace (< 0.01 ct)") },
        { title: "Share", num: true, cell: (r) => `${shares[r.code].toFixed(2)} %` },
      ],
      codes.map((code) => ({ code })),
    ),
    h("p", { class: "muted small" }, "Every origin that ever went into the parcel stays listed, even a share that rounds to nothing."),
  );
}

function claimsCard(claims) {
  const ids = Object.keys(claims || {}).sort((a, b) => claims[b] - claims[a] || (a < b ? -1 : 1));
  if (!ids.length) return null;
  return card(
    "Registered claims",
    { id: "claims" },
    table(
      [
        { title: "Claim", cell: (r) => r.id },
        { title: "Weight bought from it", num: true, cell: (r) => ct(claims[r.id]) },
      ],
      ids.map((id) => ({ id })),
    ),
    h("p", { class: "muted small" }, "The artisanal claims its stones were bought from at first sale, carried through every merge and split."),
  );
}

function stepList() {
  return h(
    "ol",
    { class: "steps", id: "verify-steps" },
    STEPS.map((name, i) => h("li", { "data-step": i + 1, "data-status": "pending" }, h("span", { class: "mark" }, "·"), h("span", {}, h("b", {}, `${i + 1} ${name}`), h("span", { class: "detail" }, "")))),
  );
}

function setStep(list, step) {
  const li = list.querySelector(`li[data-step="${step.n}"]`);
  if (!li) return;
  li.dataset.status = step.status;
  li.querySelector(".mark").textContent = { ok: "✓", failed: "✗", skipped: "–" }[step.status] || "·";
  li.querySelector(".detail").textContent = ` — ${step.detail}`;
}

function verifyPanel(parcelId, onProven) {
  const anchor = h("div", { class: "anchor", id: "trust-anchor" }, "Trust anchor: …");
  const claims = h("p", { class: "small", id: "bundle-network" });
  const steps = stepList();
  const result = h("div", { class: "verify-result", id: "verify-result", "data-status": "idle" }, "Not verified yet.");
  const download = h("span", {});
  const button = h("button", { type: "button", id: "verify-button", class: "no-print" }, "Verify in this browser");
  const run = async () => {
    button.disabled = true;
    steps.replaceWith(stepList());
    const list = document.getElementById("verify-steps") || steps;
    try {
      await runVerify(parcelId, { anchor, claims, list, result, download, onProven });
    } finally {
      button.disabled = false;
      button.textContent = "Verify again";
    }
  };
  button.addEventListener("click", run);
  const panel = card(
    "Verify in this browser",
    result,
    anchor,
    h("div", { class: "row" }, button, download),
    h(
      "details",
      { id: "verify-details" },
      h("summary", {}, "How it was checked: the steps and the trust anchor"),
      h(
        "p",
        { class: "muted" },
        "The page fetches the parcel's provenance bundle and checks it here with WebCrypto (SHA-256 and Ed25519): the registry's governance signatures, every block header's signature under the key its chain had at that height, and every record's RFC 9162 inclusion proof. Replaying the custody rules (step 5) is for ",
        h("code", {}, "kpl verify"),
        ".",
      ),
      claims,
      steps,
    ),
  );
  return { panel, run, result, anchor, button };
}

function describeAnchor(anchor, opts) {
  if (opts.pinnedRegistry) {
    anchor.className = "anchor pinned";
    anchor.textContent = "Trust anchor: the registry you pinned in Settings. The bundle's registry must equal it byte for byte.";
  } else if (opts.pinnedNetwork) {
    anchor.className = "anchor pinned";
    anchor.textContent = `Trust anchor: the network id you pinned (${short(opts.pinnedNetwork, 16)}). The bundle's registry must hash to it.`;
  } else {
    anchor.className = "anchor node";
    anchor.textContent = `Trust anchor: this node's word. The bundle's network id is compared with the one this node reports (GET /v1/heads: ${short(opts.nodeNetwork, 16)}), so this trusts the node serving this page. For an independent check, pin the network's registry (genesis.json from your authority) or its network id in Settings.`;
  }
}

async function runVerify(parcelId, ui) {
  const { anchor, claims, list, result, download, onProven } = ui;
  const problem = cryptoProblem();
  if (problem) {
    result.dataset.status = "failed";
    result.replaceChildren(`Cannot verify: ${problem}.`);
    return;
  }
  result.dataset.status = "running";
  result.replaceChildren("Fetching the bundle…");
  let opts;
  let data;
  try {
    opts = await anchorOptions();
    describeAnchor(anchor, opts);
    data = await api(`/v1/parcels/${enc(parcelId)}/bundle`, { bytes: true });
  } catch (err) {
    result.dataset.status = err instanceof ApiError && err.status < 500 ? "unavailable" : "failed";
    result.replaceChildren(`Could not fetch the bundle: ${err.detail || err.message}`);
    return;
  }
  const url = URL.createObjectURL(new Blob([data], { type: "application/json" }));
  download.replaceChildren(link(url, `Download the bundle (${data.length.toLocaleString("en-US")} bytes)`, { download: `${parcelId}.bundle.json`, class: "button secondary" }));
  result.replaceChildren("Verifying…");
  const began = performance.now();
  const res = await verifyBundle(data, { ...opts, parcel: parcelId, onStep: (step) => setStep(list, step) });
  const ms = Math.round(performance.now() - began);
  if (res.network) {
    const pinnedNote = opts.pinnedNetwork || opts.nodeNetwork;
    claims.replaceChildren(
      "The bundle claims network ",
      h("code", {}, res.network),
      res.registryName ? ` (“${res.registryName}”)` : "",
      pinnedNote ? (pinnedNote === res.network ? " — the same as the anchor." : " — not the anchor's.") : "",
    );
  }
  if (res.ok) {
    result.dataset.status = "verified";
    const against = opts.pinnedRegistry ? "the registry you pinned" : opts.pinnedNetwork ? "the network id you pinned" : "this node's word for the network (nothing pinned)";
    result.replaceChildren(
      "✓ Verified: records signed into the authorities' logs (custody rules not replayed here)",
      h(
        "span",
        { class: "sentence", id: "verify-sentence" },
        `Every record of ${res.subject}'s lineage back to the mines is in the log of the authority that wrote it, under ${res.headers} checkpoints signed with their keys, checked against ${against}. Whether each step followed the custody rules is checked by kpl verify on the downloaded bundle.`,
      ),
      h("span", { class: "why" }, `Steps 1–4 passed in ${ms} ms: ${res.headers} signed headers and ${res.records.length} records; step 5 (replay) not run in the browser.`),
    );
  } else {
    result.dataset.status = "failed";
    result.dataset.step = String(res.stepNumber);
    result.replaceChildren(`✗ Verification failed at step ${res.stepNumber} (${res.step})`, h("span", { class: "why", id: "verify-error" }, res.error));
    for (let n = res.stepNumber + 1; n <= STEPS.length; n++) setStep(list, { n, status: "skipped", detail: "not reached" });
  }
  onProven(res.ok ? res.proven : new Map(), res);
}

async function parcelPage(id) {
  const page = start(`Parcel ${id}`);
  let history;
  try {
    history = await api(`/v1/parcels/${enc(id)}/history`);
  } catch (err) {
    page.show(h("h1", {}, `Parcel ${id}`), failure(err));
    return;
  }
  const nameOf = await names();
  if (!page.live()) return;
  const p = history.parcels.find((x) => x.id === history.subject);
  const created = history.events.find((e) => e.parcel === p.id && e.chain === p.created.chain && e.index === p.created.index);
  const seesCommercial = p.custodian !== undefined || p.value !== undefined;
  const now = facts([
    ["Jurisdiction", `${p.jurisdiction}${nameOf[p.jurisdiction] ? ` · ${nameOf[p.jurisdiction]}` : ""}`, "f-jurisdiction"],
    ["Status", pill(p.status), "f-status"],
    ["Weight", ct(p.weight), "f-weight"],
    ["HS code", `${p.hs} — ${HS[p.hs] || ""}`],
    ["Origin", Object.entries(history.origin_shares).map(([c, s]) => `${c} ${s.toFixed(2)} %`).join(", ")],
    p.certificate ? ["Certificate", certLink(p.certificate)] : null,
    ["Created", created ? `${created.kind} · record ${created.chain}/${created.index} · ${when(created.time)}` : `record ${p.created.chain}/${p.created.index}`],
    p.custodian !== undefined ? ["Custodian", p.custodian, "f-custodian"] : null,
    p.value !== undefined ? ["Declared", usd(p.value), "f-price"] : null,
    p.value === undefined && p.committed && p.committed.value ? ["Declared value", committedField("value", p.committed.value, p.custodian !== undefined), "f-price-committed"] : null,
  ]);
  const hiddenNote = seesCommercial
    ? null
    : h("p", { class: "muted small", id: "hidden-note" }, "Custodian and price are shown only to the party holding the parcel, its authority and auditors. ", tokenLink(), ".");
  const lineage = lineageView(history, { names: nameOf });
  const graphBox = h("div", { class: "lineage-wrap", id: "lineage" }, lineage.element);
  const drawGraph = (proven) => lineage.update(proven);
  const rows = recordRows(history);
  const tbody = table(
    [
      { title: "When (UTC)", cell: (r) => h("span", { class: "nowrap" }, when(r.time).slice(0, 16)) },
      { title: "Record", wide: true, cell: (r) => h("code", { class: "id", title: `record ${r.index} of ${r.chain}'s log, in its block ${r.height}` }, `${r.chain}/${r.index}`) },
      { title: "Kind", cell: (r) => r.kind },
      { title: "Parcels", cell: (r) => r.parcels.map((x, i) => [i ? ", " : "", x === history.subject ? h("b", {}, x) : parcelLink(x)]) },
      { title: "Certificate", wide: true, cell: (r) => (r.certificate ? certLink(r.certificate) : "") },
      { title: "Leaf hash", wide: true, cell: (r) => h("code", { title: r.hash }, short(r.hash)) },
      { title: "Proof", cell: (r) => h("span", { id: `proof-${r.chain}-${r.index}`, class: "muted" }, "—") },
    ],
    rows.map((r) => ({ ...r, attrs: { id: `rec-${r.chain}-${r.index}` } })),
    { class: "wide", id: "records" },
  );
  const onProven = (proven, res) => {
    const set = new Set();
    for (const [key, leaf] of proven) {
      const [chain, index] = key.split("/");
      const row = rows.find((r) => r.chain === chain && String(r.index) === index);
      if (row && row.hash === leaf) set.add(key);
    }
    drawGraph(set);
    const failed = /^(?:key history: )?record ([A-Z]{2,8})\/(\d+)/.exec(res.where || "");
    let inBundle = 0;
    for (const r of rows) {
      const cell = document.getElementById(`proof-${r.chain}-${r.index}`);
      const tr = document.getElementById(`rec-${r.chain}-${r.index}`);
      if (!cell) continue;
      const ok = set.has(r.key);
      if (ok) inBundle += 1;
      const bad = failed && failed[1] === r.chain && failed[2] === String(r.index);
      cell.textContent = ok ? "✓ proven" : bad ? `✗ step ${res.stepNumber} fails here` : res.ok ? "not in the bundle" : "—";
      cell.className = ok ? "" : bad ? "bad" : "muted";
      tr.classList.toggle("proven", ok);
      tr.classList.toggle("failed", Boolean(bad));
    }
    const note = document.getElementById("proven-count");
    if (note && res.ok) {
      note.textContent = `${inBundle} of the ${rows.length} records listed here are proven by the verified bundle, with the same leaf hash; the rest act on descendants, after the parcel's last record in the bundle.`;
      if (inBundle === rows.length) note.textContent = `All ${rows.length} records listed here are proven by the verified bundle, with the same leaf hash.`;
    }
  };
  const verify = verifyPanel(history.subject, onProven);
  page.show(
    h("h1", {}, `Parcel ${history.subject}`, pill(p.status)),
    h("div", { class: "grid" }, card("Now", now, hiddenNote), originCard(history.origin, history.origin_shares, nameOf), claimsCard(history.claims)),
    card(
      "Lineage: from the mines to today",
      graphBox,
      h(
        "div",
        { class: "legend" },
        h("span", {}, h("span", { class: "sw split" }), "split"),
        h("span", {}, h("span", { class: "sw merge" }), "merge"),
        h("span", {}, "each box: jurisdiction, weight, status, and its hops (certificate · route · date)"),
        history.truncated ? h("b", {}, "lineage truncated") : null,
      ),
    ),
    verify.panel,
    card("Records, in order", h("p", { class: "muted small", id: "proven-count" }, "Verify the bundle to see which of these records it proves."), tbody),
  );
  // record format 2: a bundle holds commitments, not values, so anyone may take and
  // verify it; an entitled caller's also carries the disclosures its node holds
  verify.run();
}

// ---------------------------------------------------------------- certificate

/** One sentence on what a certificate's state means for the goods. */
function statusSentence(cert, authority) {
  const to = authority(cert.destination);
  switch (cert.status) {
    case "confirmed":
      return `${to} confirmed receipt${cert.received !== undefined ? ` of ${ct(cert.received)}` : ""}.`;
    case "issued":
      return `In transit: ${to} has not confirmed receipt yet, so the shipment is not accepted.`;
    case "discrepancy":
      return `${to} recorded a weight outside the tolerance: the parcels are held.`;
    case "expired":
      return `Its validity ended on ${cert.expires} before ${to} confirmed receipt: the shipment was never accepted.`;
    case "voided":
      return `${authority(cert.issuer)} voided it: it was never confirmed and the goods returned.`;
    case "refused":
      return `${to} refused this shipment${cert.refusal && cert.refusal.code ? ` (${cert.refusal.code})` : ""}${refusalReason(cert) ? `: ${refusalReason(cert)}` : ""}.`;
    default:
      return `The node reports the status “${cert.status}”.`;
  }
}

function refusalReason(cert) {
  for (const key of ["refusal", "refused", "closed"]) if (cert[key] && cert[key].reason) return cert[key].reason;
  return cert.reason || null;
}

/** The certificate's outcome, above everything, in the words and colour of its state. */
function certificateBanner(cert, authority) {
  const tone = { confirmed: "ok", issued: "warn", expired: "bad", discrepancy: "bad", voided: "bad", refused: "bad" }[cert.status] || "warn";
  const title = {
    confirmed: "Confirmed",
    issued: "In transit — not confirmed",
    expired: "Expired — never confirmed",
    discrepancy: "Discrepancy — parcels held",
    voided: "Voided",
    refused: "Refused by the importing authority",
  }[cert.status] || `Status: ${cert.status}`;
  return h("div", { class: `banner ${tone}`, id: "cert-status", "data-status": cert.status, role: "status" }, h("b", {}, title), " ", statusSentence(cert, authority));
}

async function certificatePage(number) {
  const page = start(`Certificate ${number}`);
  let cert;
  try {
    cert = await api(`/v1/certificates/${enc(number)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      const [{ found }, hits] = await Promise.all([lookup(number), startingWith(number)]);
      const near = found.filter(([k, id]) => k === "certificate" && id !== number);
      page.show(
        h("h1", {}, `Certificate ${number}`),
        h("p", { class: "error", id: "not-found" }, `The ledger holds no KP certificate ${number}.`),
        near.length ? card("Did you mean", h("ul", { id: "suggestions" }, near.map(([, id]) => h("li", {}, certLink(id))))) : null,
        prefixCard(number, hits, near.map(([, id]) => id), ["certificate"]),
        absentCertificate(number),
      );
      return;
    }
    page.show(h("h1", {}, `Certificate ${number}`), failure(err));
    return;
  }
  const nameOf = await names();
  const full = cert.proof && cert.proof.record && cert.proof.record.kind ? cert.proof.record.body : null;
  let hsCodes = full ? [...new Set(full.lines.map((l) => l.hs))] : [];
  if (!full) {
    const parcels = await Promise.allSettled(cert.parcels.map((p) => api(`/v1/parcels/${enc(p)}`)));
    hsCodes = [...new Set(parcels.filter((r) => r.status === "fulfilled").map((r) => r.value.hs))];
  }
  // the origin composition: from the signed lines when the caller sees them, else the parcels
  const mix = new Map();
  if (full) {
    for (const line of full.lines) for (const [c, q] of Object.entries(line.origin)) mix.set(c, (mix.get(c) || 0) + q);
  } else {
    const parcels = await Promise.allSettled(cert.parcels.map((p) => api(`/v1/parcels/${enc(p)}`)));
    for (const r of parcels) if (r.status === "fulfilled") for (const [c, q] of Object.entries(r.value.origin)) mix.set(c, (mix.get(c) || 0) + q);
  }
  const mixTotal = [...mix.values()].reduce((a, b) => a + b, 0);
  // names and addresses of exporter and importer, for those who may see them
  const parties = cert.exporter !== undefined ? await api(`/v1/certificates/${enc(number)}/parties`).catch(() => null) : null;
  const composition = [...mix].sort((a, b) => b[1] - a[1]).map(([c, q]) => `${c} ${((q * 100) / (mixTotal || 1)).toFixed(1)} %`).join(", ");
  if (!page.live()) return;
  const entitled = cert.exporter !== undefined;
  const committed = cert.committed || {};
  const hidden = (what, key) => (committed[key] ? committedField(what, committed[key], entitled) : h("span", { class: "hidden-field" }, `${what}: authorised roles only`));
  const partyLine = (party, key) =>
    party.name !== undefined ? party.name : party.committed && party.committed[key] ? committedField("name", party.committed[key], true) : null;
  const authority = (code) => `${code}${nameOf[code] ? ` — ${nameOf[code]}` : ""}`;
  const validation = h("div", { id: "cert-validation" }, h("span", { class: "muted" }, "checking the signature in this browser…"));
  // the code the QR encodes, under the node's configured public base URL (never this
  // tab's address, which may be an internal one)
  const url = cert.code || `${location.origin}${location.pathname}#/certificate/${number}`;
  const rows = [
    ["1. Unique certificate number", h("b", {}, cert.number)],
    ["2. Country of origin", cert.origin === "mixed" ? ["Mixed", composition ? h("span", { class: "sub", id: "cert-mix" }, composition) : null] : authority(cert.origin)],
    ["3. Issuing authority", authority(cert.issuer)],
    ["4. Date of issue", cert.issued],
    ["5. Date of expiry", cert.expires],
    [
      "6. Exporter",
      cert.exporter === undefined
        ? hidden("exporter")
        : parties
          ? h(
              "span",
              { id: "cert-exporter" },
              partyLine(parties.exporter, "name"),
              parties.exporter.address !== undefined
                ? parties.exporter.address !== parties.exporter.name
                  ? h("span", { class: "sub" }, parties.exporter.address)
                  : null
                : parties.exporter.committed && parties.exporter.committed.address
                  ? h("span", { class: "sub" }, committedField("address", parties.exporter.committed.address, true))
                  : null,
              h("span", { class: "sub" }, `licence ${cert.exporter}, ${authority(cert.issuer)}`),
            )
          : [cert.exporter, h("span", { class: "sub" }, `licensed party of ${authority(cert.issuer)}`)],
    ],
    [
      "7. Importer",
      cert.importer === undefined
        ? hidden("importer", "importer")
        : h(
            "span",
            { id: "cert-importer" },
            parties && parties.importer.name !== undefined ? parties.importer.name : cert.importer,
            parties && parties.importer.address && parties.importer.address !== parties.importer.name ? h("span", { class: "sub" }, parties.importer.address) : null,
          ),
    ],
    ["8. Country of destination", authority(cert.destination)],
    ["9. Carat weight", h("span", { id: "cert-carats" }, ct(cert.carats))],
    ["10. Value in USD", cert.value !== undefined ? usd(cert.value) : hidden("value", "value")],
    ["11. Number of parcels", String(full ? full.parcels : cert.parcels.length)],
    ["12. Harmonised System codes", hsCodes.length ? hsCodes.map((c) => h("span", { class: "sub" }, `${c} — ${HS[c] || ""}`)) : "—"],
    ["13. Validation by the exporting authority", validation],
    ["14. Seal", cert.seal !== undefined ? cert.seal : hidden("seal id", "seal")],
  ];
  const status = h("div", {}, pill(cert.status), cert.received !== undefined ? h("span", { class: "small" }, ` received ${ct(cert.received)}`) : null);
  const banner = certificateBanner(cert, authority);
  const doc = h(
    "article",
    { class: "certificate", id: "certificate" },
    h(
      "header",
      {},
      h(
        "div",
        {},
        h("div", { class: "kp-title" }, "Kimberley Process Certificate"),
        h("div", { class: "muted small" }, "rough diamonds · Annex I fields, as recorded on the ledger"),
        status,
      ),
      h("div", { class: "qr" }, h("img", { src: `/web/qr/${enc(number)}.svg`, alt: `QR code: ${url}`, id: "cert-qr" }), "Scan to verify: ", h("span", { id: "cert-code" }, url)),
    ),
    table(
      [
        { title: "Field", cell: (r) => r[0] },
        { title: "Entry", cell: (r) => r[1] },
      ],
      rows,
    ),
    h(
      "p",
      { class: "small muted" },
      "Parcels: ",
      cert.parcels.map((p, i) => [i ? ", " : "", parcelLink(p)]),
      ". Issue record ",
      h("code", {}, `${cert.issue.chain}/${cert.issue.index}`),
      cert.closed ? [" · closed by ", h("code", {}, `${cert.closed.chain}/${cert.closed.index}`)] : null,
      ".",
    ),
  );
  const checks = h("ul", { id: "cert-checks" });
  const summary = h("p", { id: "cert-proof-sentence" }, "Checking the issuing authority's signature and the inclusion proof in this browser…");
  page.show(
    h("div", { class: "row no-print" }, h("h1", {}, `Certificate ${cert.number}`), h("button", { type: "button", class: "secondary", onclick: () => window.print() }, "Print")),
    banner,
    doc,
    card(
      "What was checked in this browser",
      { class: "card no-print", id: "cert-verification" },
      summary,
      h("details", { id: "cert-details" }, h("summary", {}, "Technical steps and trust anchor"), h("div", { class: "anchor", id: "cert-anchor" }, "Trust anchor: …"), checks),
    ),
  );

  const problem = cryptoProblem();
  if (problem) {
    validation.replaceChildren(h("span", { class: "error" }, `cannot check: ${problem}`));
    return;
  }
  try {
    const trusted = await trustedRegistry();
    const anchor = document.getElementById("cert-anchor");
    anchor.className = `anchor ${trusted.kind}`;
    anchor.textContent = `Trust anchor: ${trusted.text}.`;
    const result = await verifyCertificate(cert, trusted.reg);
    checks.replaceChildren(...result.map((c) => h("li", { "data-ok": c.ok }, c.ok ? "✓ " : "✗ ", h("b", {}, c.name), `: ${c.detail}`)));
    const ok = result.length && result.every((c) => c.ok);
    const header = cert.proof && cert.proof.header;
    // the anchor, said as `kpl certificate show` says it
    const anchorSaid = ok
      ? `Inclusion proof checked against ${header.chain} header ${header.height} signed by ${String(header.key_id).slice(0, 16)}, trusting ${trusted.trusting}${trusted.kind === "node" ? " (pin the registry in Settings to check without trusting this node)" : ""}.`
      : `Inclusion proof NOT checked, trusting ${trusted.trusting}.`;
    // the proof is about the issue record; the shipment's outcome is the status, said beside it
    const settled = cert.status === "confirmed";
    validation.replaceChildren(
      ok
        ? h(
            "span",
            { "data-status": "verified" },
            pill("issue record proven", settled ? "ok" : "neutral"),
            ` signed checkpoint: ${header.chain} header ${header.height} of ${when(header.time)}, by ${nameOf[header.chain] || header.chain}'s key; the issue record is in its log. Shipment status: ${cert.status.replace("_", " ")}.`,
          )
        : h("span", { "data-status": "failed" }, pill("not verified", "bad"), " ", result.filter((c) => !c.ok).map((c) => c.detail).join("; ")),
    );
    summary.replaceChildren(
      ...(ok
        ? [
            `Proven in this browser: ${authority(cert.issuer)} recorded the issue of ${cert.number} in its log, under a checkpoint (${header.chain} header ${header.height}, ${when(header.time)}) signed with its key. `,
            h("span", { id: "cert-proof-anchor" }, anchorSaid),
            ` ${statusSentence(cert, authority)}`,
          ]
        : [
            h("span", { id: "cert-proof-anchor" }, anchorSaid),
            ` Not proven: ${result.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join("; ")}. Do not rely on this certificate.`,
          ]),
    );
    summary.dataset.status = ok ? "proven" : "failed";
  } catch (err) {
    validation.replaceChildren(h("span", { class: "error" }, String(err.message || err)));
  }
}

// ---------------------------------------------------------------- record (auditors, peers)

async function recordPage(chain, height, index, expected) {
  const page = start(`Record ${chain}/${index}`);
  let block;
  try {
    const answer = await api(`/v1/chains/${enc(chain)}/blocks?from=${height}&limit=1`);
    block = answer.blocks[0];
  } catch (err) {
    page.show(h("h1", {}, `Record ${chain}/${index}`), failure(err));
    return;
  }
  if (!block) {
    page.show(h("h1", {}, `Record ${chain}/${index}`), h("p", { class: "error" }, `no block ${chain}/${height}`));
    return;
  }
  const first = block.header.size - block.records.length;
  const record = block.records[Number(index) - first];
  if (!record) {
    page.show(h("h1", {}, `Record ${chain}/${index}`), h("p", { class: "error" }, `block ${chain}/${height} holds records ${first}..${block.header.size - 1}, not ${index}`));
    return;
  }
  const leaf = bytesToHex(await leafHash(canonicalize(record)));
  const ids = new Set();
  const walk = (v, k) => {
    if (typeof v === "string" && LOCAL_ID.test(v) && ["parcel", "number", "parents"].includes(k)) ids.add(`${k === "number" ? "c" : "p"}:${v}`);
    else if (Array.isArray(v)) v.forEach((x) => walk(x, k));
    else if (v && typeof v === "object") Object.entries(v).forEach(([kk, vv]) => walk(vv, kk));
  };
  walk(record.body, "");
  if (!page.live()) return;
  page.show(
    h("h1", {}, `Record ${chain}/${index}`, pill(record.kind, "")),
    card(
      null,
      facts([
        ["Block", `${chain}/${height} · ${when(block.header.time)} · log size ${block.header.size}`],
        ["Kind", record.kind],
        ["Record id", record.id],
        ["Time", when(record.time)],
        ["Leaf hash", h("code", {}, leaf)],
        expected ? ["Finding's hash", expected === leaf ? pill("matches", "ok") : pill("differs", "bad"), "record-match"] : null,
        [
          "Links",
          [...ids].map((x, i) => [i ? ", " : "", x.startsWith("c:") ? certLink(x.slice(2)) : parcelLink(x.slice(2))]),
        ],
      ]),
    ),
    card("The record as signed", h("pre", { class: "record-json" }, JSON.stringify(record, null, 2))),
  );
}

// ---------------------------------------------------------------- audit dashboard

function periodBounds(period) {
  const m = /^(\d{4})(?:-Q([1-4]))?$/.exec(period);
  if (!m) return null;
  const y = Number(m[1]);
  const q = m[2] ? Number(m[2]) : 0;
  const startMonth = q ? (q - 1) * 3 + 1 : 1;
  const endMonth = q ? q * 3 : 12;
  const last = new Date(Date.UTC(y, endMonth, 0)).getUTCDate();
  const pad = (n) => String(n).padStart(2, "0");
  return { since: `${y}-${pad(startMonth)}-01`, until: `${y}-${pad(endMonth)}-${pad(last)}` };
}

function recordLinks(records = []) {
  return records.map((r, i) => [
    i ? h("br") : null,
    link(`#/record/${enc(r.chain)}/${r.height}/${r.index}?hash=${r.hash}`, `${r.chain}/${r.index} ${r.kind}`, { class: "rec-link" }),
  ]);
}

const FINDINGS = [
  {
    key: "unconfirmed",
    title: "Certificates left unconfirmed",
    columns: [
      { title: "Certificate", cell: (r) => certLink(r.number) },
      { title: "Route", cell: (r) => `${r.issuer} → ${r.destination}` },
      { title: "Issued", cell: (r) => r.issued },
      { title: "Expires", cell: (r) => [r.expires, r.expired ? [" ", pill("expired")] : null] },
      { title: "Days open", num: true, cell: (r) => r.days_open },
      { title: "Weight", num: true, cell: (r) => ct(r.carats) },
      { title: "Records", cell: (r) => recordLinks(r.records) },
    ],
  },
  {
    key: "discrepancies",
    title: "Discrepancies between certificate and confirmation",
    columns: [
      { title: "Certificate", cell: (r) => certLink(r.number) },
      { title: "Route", cell: (r) => `${r.issuer} → ${r.destination}` },
      { title: "Declared", num: true, cell: (r) => ct(r.declared) },
      { title: "Received", num: true, cell: (r) => ct(r.received) },
      { title: "Difference", num: true, cell: (r) => `${ct(r.difference)} (${(r.difference_bp / 100).toFixed(2)} %)` },
      { title: "Records", cell: (r) => recordLinks(r.records) },
    ],
  },
  {
    key: "mirror_mismatches",
    title: "Mirror mismatches: exports against the partner's imports",
    columns: [
      { title: "Exporter → importer", cell: (r) => `${r.exporter} → ${r.importer}` },
      { title: "Exported", num: true, cell: (r) => `${ct(r.exported_carats)} (${r.exported_certificates})` },
      { title: "Imported", num: true, cell: (r) => `${ct(r.imported_carats)} (${r.imported_certificates})` },
      { title: "Difference", num: true, cell: (r) => ct(r.difference) },
      { title: "In transit", num: true, cell: (r) => r.in_transit },
      { title: "Records", cell: (r) => [recordLinks(r.records), r.records_truncated ? " …" : null] },
    ],
  },
  {
    key: "price_outliers",
    title: "Price outliers (USD per carat)",
    columns: [
      { title: "Certificate", cell: (r) => certLink(r.number) },
      { title: "Issuer · HS · origin", cell: (r) => `${r.issuer} · ${r.hs} · ${r.origin}` },
      { title: "Weight", num: true, cell: (r) => ct(r.carats) },
      { title: "USD/ct", num: true, cell: (r) => (r.usd_per_carat != null ? r.usd_per_carat.toFixed(2) : "not shown") },
      { title: "Group median", num: true, cell: (r) => (r.group_median != null ? `${r.group_median.toFixed(2)} (${r.group_size})` : "—") },
      { title: "2023 reference", num: true, cell: (r) => (r.reference != null ? r.reference.toFixed(2) : "—") },
      { title: "Why", cell: (r) => r.reasons.join(", ") },
      { title: "Records", cell: (r) => recordLinks(r.records) },
    ],
  },
  {
    key: "unrecorded_production",
    title: "Registrations where the KP statistics record no production",
    columns: [
      { title: "Participant", cell: (r) => r.chain },
      { title: "Parcel", cell: (r) => parcelLink(r.parcel) },
      { title: "Weight", num: true, cell: (r) => ct(r.weight) },
      { title: "Declared", num: true, cell: (r) => usd(r.value) },
      { title: "Mine · produced", cell: (r) => `${r.mine} · ${r.produced}` },
      { title: "Records", cell: (r) => recordLinks(r.records) },
    ],
  },
  {
    key: "suspended_activity",
    title: "Activity of suspended participants",
    columns: [
      { title: "Participant", cell: (r) => r.participant },
      { title: "Suspended", cell: (r) => [when(r.suspended), r.reinstated ? ` → ${when(r.reinstated)}` : ""] },
      { title: "Records sealed", num: true, cell: (r) => r.count },
      { title: "Records", cell: (r) => [recordLinks([r.suspension]), h("br"), recordLinks(r.records)] },
    ],
  },
  {
    key: "refusals",
    title: "Shipments refused by the importing authority",
    columns: [
      { title: "Certificate", cell: (r) => certLink(r.number) },
      { title: "Route", cell: (r) => `${r.issuer} → ${r.destination}` },
      { title: "Weight", num: true, cell: (r) => ct(r.carats) },
      { title: "Origin", cell: (r) => r.origin },
      { title: "Reason", cell: (r) => [pill(r.code), " ", r.reason] },
      { title: "Records", cell: (r) => recordLinks(r.records) },
    ],
  },
  {
    key: "disclosure_inconsistent",
    title: "Disclosed values that do not add up",
    columns: [
      { title: "Chain", cell: (r) => r.chain },
      { title: "Record", cell: (r) => r.kind },
      { title: "Rule", cell: (r) => [pill(r.code), ` rule ${r.rule}, ${r.field}`] },
      { title: "What", cell: (r) => r.reason },
      { title: "Records", cell: (r) => recordLinks(r.records) },
    ],
  },
  {
    key: "export_surplus",
    title: "Exports above recorded production plus imports",
    columns: [
      { title: "Producer", cell: (r) => link(`#/country/${enc(r.participant)}`, r.participant) },
      { title: "Exported", num: true, cell: (r) => ct(r.exported) },
      { title: "Produced", num: true, cell: (r) => ct(r.produced) },
      { title: "Imported", num: true, cell: (r) => ct(r.imported) },
      { title: "Surplus", num: true, cell: (r) => ct(r.surplus) },
      { title: "Certificates", cell: (r) => recordLinks(r.records) },
    ],
  },
  {
    key: "equivocation",
    title: "Equivocation: two signed histories of one chain",
    columns: [
      { title: "Chain", cell: (r) => r.chain },
      { title: "Headers", cell: (r) => r.headers.map((x, i) => [i ? h("br") : null, `${x.chain} header ${x.height} · size ${x.size} · root ${short(x.root)} · ${when(x.time)}`]) },
      { title: "Evidence id", cell: (r) => h("code", {}, short(r.id, 16)) },
    ],
  },
];

// one word per certificate state, the ledger's: "issued" is issued and not yet confirmed
// (the statistics' field for it is "unconfirmed")
const STATUS_KEYS = ["confirmed", "issued", "discrepancy", "voided"];
const STATUS_FIELD = { issued: "unconfirmed" };
const STATUS_COLORS = { confirmed: "#17803d", issued: "#d4a017", discrepancy: "#b3261e", voided: "#7f8c8d" };

const pct = (ppm) => (ppm === undefined || ppm === null ? "—" : `${(ppm / 10000).toFixed(1)} %`);

function controlsTable(rows, { year = false } = {}) {
  return table(
    [
      year ? { title: "Year", cell: (r) => r.year } : { title: "Producer", cell: (r) => link(`#/country/${enc(r.participant)}`, r.participant) },
      { title: "Exports traced to registered claims", num: true, cell: (r) => pct(r.traceable_ppm) },
      { title: "Production bought by licensed buyers", num: true, cell: (r) => pct(r.licensed_ppm) },
      { title: "Export surplus", num: true, cell: (r) => (r.surplus ? h("span", { class: "pill bad" }, ct(r.surplus)) : ct(0)) },
      { title: "First-sale price / export price", num: true, cell: (r) => (r.suppressed ? "withheld (< 3 purchases)" : pct(r.price_ratio_ppm)) },
    ],
    rows,
    { class: "controls" },
  );
}

function methodsCard(stats) {
  const methods = stats.methods || [];
  if (!methods.length) return null;
  return card(
    "Production by method",
    { id: "methods" },
    stacked(
      [...new Set(methods.map((m) => m.participant))].map((p) => {
        const list = methods.filter((m) => m.participant === p);
        const total = list.reduce((a, m) => a + m.carats, 0);
        return { label: p, total, text: ct(total), segments: list.map((m) => ({ key: m.method, value: m.carats, text: ct(m.carats) })) };
      }),
      { legendTitle: "method" },
    ),
    table(
      [
        { title: "Participant", cell: (r) => r.participant },
        { title: "Method", cell: (r) => r.method },
        { title: "Carats", num: true, cell: (r) => ct(r.carats) },
        { title: "Parcels", num: true, cell: (r) => r.parcels },
        { title: "First-sale USD/ct", num: true, cell: (r) => (r.cents_per_carat != null ? usd(r.cents_per_carat) : "—") },
      ],
      methods,
      { "data-table": "methods" },
    ),
    h("p", { class: "muted small" }, "Mine registrations count as industrial. A first-sale price is shown only for a cell of 3 or more purchases: no single purchase is exposed."),
  );
}

function statsSection(stats) {
  const t = stats.totals;
  const tiles = h(
    "div",
    { class: "tiles" },
    [
      ["Production", ct(t.production_carats), `${usd(t.production_value)} · ${t.production_parcels} parcels`],
      ["Exports", ct(t.export_carats), `${usd(t.export_value)} · ${t.export_certificates} certificates`],
      ["Imports", ct(t.import_carats), `${usd(t.import_value)} · ${t.import_certificates} certificates`],
      ["Certificates", String(t.certificates), "issued in the period"],
    ].map(([k, n, sub]) => h("div", { class: "tile" }, h("div", { class: "muted small" }, k), h("div", { class: "n" }, n), h("div", { class: "small muted" }, sub))),
  );
  const byParticipant = (rows) => {
    const out = new Map();
    for (const r of rows) {
      if (!out.has(r.participant)) out.set(r.participant, []);
      out.get(r.participant).push(r);
    }
    return [...out.entries()].map(([participant, list]) => ({
      label: participant,
      total: list.reduce((a, r) => a + r.carats, 0),
      text: ct(list.reduce((a, r) => a + r.carats, 0)),
      segments: list.map((r) => ({ key: r.partner, value: r.carats, text: ct(r.carats) })),
    }));
  };
  return h(
    "div",
    { id: "stats" },
    tiles,
    h(
      "div",
      { class: "grid wide" },
      card(
        "Production by participant",
        hbars(stats.production.map((r) => ({ label: r.participant, value: r.carats, text: ct(r.carats), color: colorOf(r.participant) })), { title: "carats" }),
        table(
          [
            { title: "Participant", cell: (r) => r.participant },
            { title: "Carats", num: true, cell: (r) => ct(r.carats) },
            { title: "USD", num: true, cell: (r) => (r.value === null ? "withheld (< 3)" : usd(r.value)) },
            { title: "Parcels", num: true, cell: (r) => r.parcels },
          ],
          stats.production,
        ),
      ),
      card(
        "Certificates by issuer and status",
        stacked(
          stats.certificates.map((r) => ({
            label: r.participant,
            total: r.total,
            text: String(r.total),
            segments: STATUS_KEYS.map((k) => ({ key: k, value: r[STATUS_FIELD[k] || k], text: String(r[STATUS_FIELD[k] || k]) })),
          })),
          { order: STATUS_KEYS, color: (k) => STATUS_COLORS[k] },
        ),
        table(
          [
            { title: "Issuer", cell: (r) => r.participant },
            { title: "Total", num: true, cell: (r) => r.total },
            { title: "Confirmed", num: true, cell: (r) => r.confirmed },
            { title: "Issued", num: true, cell: (r) => r.unconfirmed },
            { title: "Discrepancy", num: true, cell: (r) => r.discrepancy },
            { title: "Voided", num: true, cell: (r) => r.voided },
          ],
          stats.certificates,
        ),
      ),
      card(
        "Exports by participant and partner",
        stacked(byParticipant(stats.exports), { legendTitle: "to" }),
        table(
          [
            { title: "Exporter → partner", cell: (r) => `${r.participant} → ${r.partner}` },
            { title: "Carats", num: true, cell: (r) => ct(r.carats) },
            { title: "USD", num: true, cell: (r) => (r.value === null ? "withheld (< 3)" : usd(r.value)) },
            { title: "Certificates", num: true, cell: (r) => r.certificates },
          ],
          stats.exports,
        ),
      ),
      methodsCard(stats),
      stats.controls && stats.controls.length
        ? card("Internal controls of artisanal producers", { id: "controls" }, controlsTable(stats.controls))
        : null,
      card(
        "Imports by participant and partner",
        stacked(byParticipant(stats.imports), { legendTitle: "from" }),
        table(
          [
            { title: "Importer ← partner", cell: (r) => `${r.participant} ← ${r.partner}` },
            { title: "Received", num: true, cell: (r) => ct(r.carats) },
            { title: "Declared", num: true, cell: (r) => ct(r.declared) },
            { title: "USD", num: true, cell: (r) => (r.value === null ? "withheld (< 3)" : usd(r.value)) },
            { title: "Certificates", num: true, cell: (r) => r.certificates },
          ],
          stats.imports,
        ),
      ),
    ),
  );
}

async function auditPage(params) {
  const page = start("Audit");
  const period = params.get("period") || String(new Date().getUTCFullYear());
  const bounds = periodBounds(period);
  const form = h(
    "form",
    {
      class: "row no-print",
      id: "period-form",
      onsubmit: (e) => {
        e.preventDefault();
        location.hash = `#/audit?period=${enc(e.target.elements.period.value.trim())}`;
      },
    },
    h("label", { for: "period" }, "Period"),
    h("input", { id: "period", name: "period", value: period, pattern: "[12][0-9]{3}(-Q[1-4])?", title: "a year (2026) or a quarter (2026-Q1)", size: 9 }),
    h("button", { type: "submit" }, "Show"),
    h("a", { href: `/v1/stats?period=${enc(period)}&format=csv`, class: "button secondary", download: `kp-stats-${period}.csv` }, "Statistics as CSV"),
  );
  if (!bounds) {
    page.show(h("h1", {}, "Auditor dashboard"), form, h("p", { class: "error" }, "A period is a year (2026) or a quarter (2026-Q1)."));
    return;
  }
  // auditors, and observers (civil society: the findings without one certificate's price)
  const auditor = state.who && (state.who.role === "auditor" || state.who.role === "observer");
  const today = new Date().toISOString().slice(0, 10);
  const until = bounds.until < today ? bounds.until : today;
  const q = new URLSearchParams({ since: bounds.since, until });
  const [stats, report] = await Promise.allSettled([
    api(`/v1/stats?period=${enc(period)}`),
    auditor && bounds.since <= until ? api(`/v1/audit/report?${q}`) : Promise.resolve(null),
  ]);
  if (!page.live()) return;
  const parts = [h("h1", {}, `Auditor dashboard · ${period}`), form];
  if (!auditor) {
    parts.push(
      h(
        "p",
        { class: "notice", id: "audit-needs-token" },
        "The findings are for auditors and observers: enter an auditor or observer token in ",
        tokenLink("Settings"),
        ". The KP statistics below are public aggregates and name no party.",
      ),
    );
  } else if (bounds.since > until) {
    parts.push(h("p", { class: "notice" }, `The period ${period} has not begun: no findings yet.`));
  } else if (report.status === "rejected") {
    parts.push(failure(report.reason));
  } else if (report.value) {
    const r = report.value;
    const tiles = h(
      "div",
      { class: "tiles", id: "findings-summary" },
      FINDINGS.map((f) => {
        const n = r[f.key].items.length;
        return h("a", { class: `tile ${n ? "bad" : "ok"}`, href: `#/audit?period=${enc(period)}`, "data-finding": f.key, onclick: (e) => {
          e.preventDefault();
          document.getElementById(`finding-${f.key}`).scrollIntoView();
        } }, h("div", { class: "n" }, `${n}${r[f.key].truncated ? "+" : ""}`), h("div", { class: "small" }, f.title));
      }),
    );
    parts.push(
      h("p", { class: "muted small" }, `Report of node ${r.node}, ${r.since || "start"} to ${r.until}, generated ${when(r.generated)}. Thresholds: unconfirmed after ${r.thresholds.unconfirmed_days} days; tolerance ${(r.thresholds.tolerance_bp / 100).toFixed(2)} %; price outliers beyond ${r.thresholds.price_group_factor}× the group median or ${r.thresholds.price_reference_factor}× the 2023 KP reference.`),
      tiles,
    );
    const mirror = r.mirror_mismatches.items;
    for (const f of FINDINGS) {
      const block = h("section", { class: "card", id: `finding-${f.key}` }, h("h2", {}, f.title, " ", pill(String(r[f.key].items.length), r[f.key].items.length ? "bad" : "ok")));
      if (f.key === "mirror_mismatches" && mirror.length) {
        block.append(
          hbars(
            mirror.map((m) => ({ label: `${m.exporter}→${m.importer}`, value: m.difference, text: ct(m.difference), color: m.difference < 0 ? "#b3261e" : "#17803d" })),
            { title: "imported − exported, carats" },
          ),
        );
      }
      block.append(
        r[f.key].items.length
          ? table(f.columns, r[f.key].items, { class: "findings", "data-finding": f.key })
          : h("p", { class: "muted small", "data-finding": f.key }, "None in this period."),
      );
      parts.push(block);
    }
  }
  parts.push(h("h2", {}, `KP statistics · ${period}`));
  parts.push(stats.status === "fulfilled" ? statsSection(stats.value) : failure(stats.reason));
  page.show(...parts);
}

// ---------------------------------------------------------------- network

async function evidenceCheck(doc, reg) {
  const out = [];
  for (const side of ["a", "b"]) {
    const s = doc[side];
    const who = reg.participants.find((p) => p.code === s.header.chain);
    if (!who) return `${s.header.chain} is not in the registry`;
    if ((await keyId(who.key)) !== s.header.key_id) return "signed with a key other than the registry's (rotated): check it with kpl";
    const ok = await ed25519Verify(who.key, hexToBytes(s.sig), "KPL-SIG-HEADER-V1\n", canonicalize(s.header));
    out.push(ok);
  }
  const [x, y] = [doc.a.header, doc.b.header];
  const contradicts = x.height === y.height || (x.size === y.size && x.root !== y.root);
  return out.every(Boolean) && contradicts ? "both signatures verify under the registry key: the authority signed two histories" : "does not hold up in this browser";
}

async function networkPage() {
  const page = start("Network");
  const [net, reg, ev] = await Promise.allSettled([api("/v1/network", { auth: false }), nodeRegistry(), api("/v1/evidence", { auth: false })]);
  if (!page.live()) return;
  if (net.status === "rejected") {
    page.show(h("h1", {}, "Network"), failure(net.reason));
    return;
  }
  const n = net.value;
  const doc = reg.status === "fulfilled" ? reg.value : null;
  let checked = null;
  let regNote = "";
  if (doc && !cryptoProblem()) {
    try {
      checked = await checkRegistry(doc);
      const pin = pins().network;
      regNote = pin
        ? pin === checked.network
          ? "governance signatures checked in this browser; the network id equals the one you pinned"
          : "governance signatures checked, but the network id is NOT the one you pinned"
        : "governance signatures checked in this browser (the registry itself comes from this node)";
    } catch (err) {
      regNote = `the registry does not verify: ${err.message}`;
    }
  }
  const participants = doc ? doc.registry.participants : [];
  const keyIds = await Promise.all(participants.map((p) => (cryptoProblem() ? "" : keyId(p.key))));
  const chains = Object.keys(n.heads);
  const rows = [
    ...participants.map((p, i) => ({ ...p, keyId: keyIds[i], head: n.heads[p.code] })),
    ...(n.heads.KP ? [{ code: "KP", name: "Governance chain", role: "governance", url: "", keyId: "", head: n.heads.KP }] : []),
  ];
  const evidence = ev.status === "fulfilled" ? ev.value.evidence : [];
  const evRows = [];
  for (const d of evidence) {
    evRows.push({ d, verdict: checked ? await evidenceCheck(d, checked) : "" });
  }
  page.show(
    h("h1", {}, "Network"),
    card(
      null,
      facts([
        ["Network id", h("code", { id: "network-id" }, n.network)],
        ["Registry", doc ? `${doc.registry.name} · created ${when(doc.registry.created)} · ${doc.registry.governance.threshold} of ${doc.registry.governance.keys.length} governance keys` : "—"],
        ["Checked", regNote || "—"],
        ["This node", `${n.node}${n.chain ? ` (writes chain ${n.chain})` : " (holds every chain, writes none)"}`],
        ["Evidence held", String(n.evidence)],
      ]),
    ),
    card(
      "Participants and their chains",
      table(
        [
          { title: "Code", cell: (r) => (r.role === "authority" ? link(`#/country/${enc(r.code)}`, h("b", {}, r.code)) : h("b", {}, r.code)) },
          { title: "Name", cell: (r) => r.name },
          { title: "Role", cell: (r) => r.role },
          { title: "Height", num: true, cell: (r) => (r.head ? r.head.height : "—") },
          { title: "Last block", cell: (r) => (r.head ? [when(r.head.time), h("br"), h("span", { class: "muted small" }, ago(r.head.time))] : "no chain") },
          { title: "Log size", num: true, cell: (r) => (r.head ? r.head.size : "") },
          { title: "Sync lag", num: true, cell: (r) => (n.sync_lag[r.code] !== undefined ? `${n.sync_lag[r.code]} blocks` : "—") },
          { title: "Node URL", cell: (r) => r.url },
          { title: "Key id", cell: (r) => h("code", {}, short(r.keyId, 16)) },
        ],
        rows,
        { id: "participants" },
      ),
      chains.length ? hbars(chains.map((c) => ({ label: c, value: n.heads[c].height, text: `height ${n.heads[c].height}`, color: colorOf(c) })), { title: "chain heights" }) : null,
      h("p", { class: "muted small" }, "Sync lag: blocks this node was behind the best peer the last time it pulled that chain."),
    ),
    card(
      "Peers (this node's gossip)",
      n.peers.length
        ? table(
            [
              { title: "Peer", cell: (r) => r.code },
              { title: "URL", cell: (r) => r.url },
              { title: "State", cell: (r) => pill(r.reachable ? "reachable" : r.suspect ? "suspect" : "unreachable", r.reachable ? "ok" : "bad") },
              { title: "Last good exchange", cell: (r) => (r.last_ok_seconds != null ? `${r.last_ok_seconds} s ago` : "never") },
              { title: "Failures", num: true, cell: (r) => r.failures },
              { title: "Retry in", num: true, cell: (r) => `${r.backoff_seconds} s` },
            ],
            n.peers,
          )
        : h("p", { class: "muted" }, "This node gossips with no peers."),
    ),
    card(
      "Equivocation evidence",
      evRows.length
        ? table(
            [
              { title: "Chain", cell: (r) => r.d.a.header.chain },
              { title: "Headers", cell: (r) => [r.d.a, r.d.b].map((s, i) => [i ? h("br") : null, `height ${s.header.height} · size ${s.header.size} · root ${short(s.header.root)} · ${when(s.header.time)}`]) },
              { title: "In this browser", cell: (r) => r.verdict },
            ],
            evRows,
            { id: "evidence" },
          )
        : h("p", { class: "muted", id: "evidence" }, "No evidence: no authority has signed two histories."),
    ),
  );
}

// ---------------------------------------------------------------- settings

async function settingsPage(params = new URLSearchParams()) {
  const back = params.get("back");
  const page = start("Settings");
  const who = await whoami();
  const pin = pins();
  const status = h("p", { id: "settings-status", class: "small" });
  const tokenForm = h(
    "form",
    {
      id: "token-form",
      onsubmit: async (e) => {
        e.preventDefault();
        const value = e.target.elements.token.value.trim();
        state.token = value;
        if (value) sessionStorage.setItem(TOKEN_KEY, value);
        else sessionStorage.removeItem(TOKEN_KEY);
        const now = await whoami();
        status.textContent = value && now.role === "public" ? "The node refused that token." : `You are now: ${now.role}.`;
        if (value && now.role !== "public" && back && back.startsWith("#/") && !back.startsWith("#/settings")) {
          location.hash = back;
        }
      },
    },
    h("label", { for: "token" }, "API token (kept in this tab only, sent as a Bearer token)"),
    h("div", { class: "row" }, h("input", { id: "token", name: "token", type: "password", autocomplete: "off", size: 40 }), h("button", { type: "submit", id: "token-save" }, "Use token")),
  );
  const signOut = h("button", { type: "button", class: "secondary", id: "sign-out", onclick: async () => {
    state.token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    await whoami();
    settingsPage();
  } }, "Sign out");
  const pinStatus = h("p", { id: "pin-status" });
  const showPin = async () => {
    const p = pins();
    if (p.registry) {
      try {
        const reg = await checkRegistry(JSON.parse(p.registry));
        pinStatus.replaceChildren(pill("pinned", "ok"), ` registry “${reg.name}”, network `, h("code", {}, reg.network), " — its governance signatures verify.");
      } catch (err) {
        pinStatus.replaceChildren(pill("invalid", "bad"), ` the pinned registry does not verify: ${err.message}`);
      }
    } else if (p.network) {
      pinStatus.replaceChildren(pill("pinned", "ok"), " network id ", h("code", {}, p.network));
    } else {
      pinStatus.replaceChildren(pill("node", "warn"), " nothing pinned: verification compares with the network id this node reports, which trusts the node.");
    }
  };
  const regArea = h("textarea", { id: "pin-registry", placeholder: '{"registry": {...}, "sigs": [...]} — the genesis.json your authority gave you' }, pin.registry);
  const netInput = h("input", { id: "pin-network", size: 64, placeholder: "64 hex digits", value: pin.network, pattern: "[0-9a-f]{64}" });
  const file = h("input", { type: "file", accept: ".json,application/json", id: "pin-file", onchange: async (e) => {
    const f = e.target.files[0];
    if (f) regArea.value = await f.text();
  } });
  const savePin = async () => {
    const text = regArea.value.trim();
    const net = netInput.value.trim().toLowerCase();
    if (text) {
      try {
        const reg = await checkRegistry(JSON.parse(text));
        localStorage.setItem(PIN_REGISTRY, canonicalize(JSON.parse(text)));
        localStorage.removeItem(PIN_NETWORK);
        netInput.value = reg.network;
      } catch (err) {
        pinStatus.replaceChildren(pill("refused", "bad"), ` not a valid signed registry: ${err.message}`);
        return;
      }
    } else if (net) {
      if (!/^[0-9a-f]{64}$/.test(net)) {
        pinStatus.replaceChildren(pill("refused", "bad"), " a network id is 64 hex digits");
        return;
      }
      localStorage.removeItem(PIN_REGISTRY);
      localStorage.setItem(PIN_NETWORK, net);
    } else {
      localStorage.removeItem(PIN_REGISTRY);
      localStorage.removeItem(PIN_NETWORK);
    }
    await showPin();
  };
  page.show(
    h("h1", {}, "Token and trust anchor"),
    card(
      "Your role on this node",
      h("p", {}, "Now: ", h("b", { id: "settings-role" }, who.role), who.party ? ` (party ${who.party})` : "", who.name && who.role !== "public" ? ` — token “${who.name}”` : ""),
      tokenForm,
      state.token ? signOut : null,
      status,
      h("p", { class: "muted small" }, "Public: origins, weights, dates, jurisdictions, certificate status. A party sees its own parcels' custodian and price; an authority's operator its jurisdiction's; an auditor everything."),
    ),
    card(
      "Trust anchor for verification",
      h(
        "p",
        {},
        "A bundle is verified against a network registry. This node serves one, but using it would mean trusting the node. Pin the registry (genesis.json) or the network id you got from your own authority; it stays in this browser.",
      ),
      pinStatus,
      h("label", { for: "pin-registry" }, "Signed registry (paste or load genesis.json)"),
      regArea,
      h("div", { class: "row" }, h("label", { for: "pin-file", class: "inline" }, "Load genesis.json from a file:"), file),
      h("label", { for: "pin-network" }, "…or only its network id"),
      netInput,
      h(
        "div",
        { class: "row" },
        h("button", { type: "button", id: "pin-save", onclick: savePin }, "Pin"),
        h("button", { type: "button", class: "secondary", onclick: () => {
          regArea.value = "";
          netInput.value = "";
          savePin();
        } }, "Clear"),
      ),
    ),
  );
  await showPin();
}

// ---------------------------------------------------------------- a country's diagnostic

const MEASURE_TEXT = {
  traceable_ppm: (c) => `${pct(c.traceable_ppm)} of exports traced to registered claims`,
  licensed_ppm: (c) => `${pct(c.licensed_ppm)} of production bought by licensed buyers`,
  surplus: (c) => (c.surplus ? `export surplus ${ct(c.surplus)}` : "no export surplus"),
  price_ratio_ppm: (c) => (c.suppressed ? "first-sale price withheld (< 3 purchases)" : `first-sale price ${pct(c.price_ratio_ppm)} of the export price`),
};

async function countryPage(code) {
  const page = start(`Country ${code}`);
  const d = await api(`/v1/diagnostics/${enc(code)}`);
  if (!page.live()) return;
  const years = Object.keys(d.controls).sort();
  const byIndicator = new Map();
  for (const a of d.assessments) {
    if (!byIndicator.has(a.indicator)) byIndicator.set(a.indicator, []);
    byIndicator.get(a.indicator).push(a);
  }
  const listed = new Map(d.indicators.map((i) => [i.id, i]));
  const rows = [...byIndicator.entries()].map(([id, list]) => ({ id, list, ind: listed.get(id), attrs: { "data-indicator": id } }));
  page.show(
    h("h1", {}, `${code} · diagnostic self-assessment and internal controls`),
    h("p", { class: "muted" }, "What the authority says of itself (its diagnostic self-assessment, recorded on its own chain) beside what the ledger measures from its records. The indicator wording is the network's list."),
    card(
      "Self-assessment over time, beside the ledger's measure",
      { id: "assessments" },
      table(
        [
          { title: "Indicator", cell: (r) => [h("b", {}, r.list[0].title), h("br"), h("span", { class: "muted small" }, `${r.list[0].topic} · ${r.id}`)] },
          { title: "Scores (date: score / scale)", cell: (r) => r.list.map((a) => h("div", { class: "score" }, `${a.assessed}: ${a.score} / ${a.scale}`, " ", h("span", { class: "muted small", title: `leaf hash ${a.hash}` }, `record ${a.chain}/${a.index}`), h("div", { class: "muted small" }, a.evidence))) },
          { title: "Measured by the ledger", cell: (r) => (r.ind && r.ind.measure ? years.map((y) => h("div", { class: "measure" }, `${y}: ${MEASURE_TEXT[r.ind.measure](d.controls[y])}`)) : h("span", { class: "muted" }, "no ledger measure for this indicator")) },
        ],
        rows,
        { "data-table": "assessments" },
      ),
    ),
    card(
      "Internal controls by year, computed by the ledger",
      { id: "country-controls" },
      years.length ? controlsTable(years.map((y) => ({ ...d.controls[y], year: y })), { year: true }) : h("p", { class: "muted" }, "No first sales recorded: no artisanal controls to compute."),
    ),
  );
}

// ---------------------------------------------------------------- router

async function route() {
  const hash = location.hash || "#/";
  const [path, query = ""] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const params = new URLSearchParams(query);
  const [page, a, b, c] = parts;
  try {
    if (!page) home();
    else if (page === "parcel" && a) await parcelPage(a);
    else if (page === "certificate" && a) await certificatePage(a);
    else if (page === "search" && a) await searchPage(a);
    else if (page === "audit") await auditPage(params);
    else if (page === "network") await networkPage();
    else if (page === "country" && a) await countryPage(a);
    else if (page === "record" && c !== undefined) await recordPage(a, b, c, params.get("hash"));
    else if (page === "settings") await settingsPage(params);
    else start("Not found").show(h("h1", {}, "Not found"), h("p", {}, link("#/", "Back to the search")));
  } catch (err) {
    start("Error").show(h("h1", {}, "Something went wrong"), failure(err));
  }
  document.body.dataset.page = page || "home";
  document.body.dataset.ready = String(state.render);
}

async function main() {
  document.getElementById("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    search(document.getElementById("search").value);
  });
  // the skip link moves the focus without touching the URL's fragment (the router's)
  document.getElementById("skip-link").addEventListener("click", (e) => {
    e.preventDefault();
    document.getElementById("main").focus();
  });
  window.addEventListener("hashchange", route);
  footer();
  staleness();
  setInterval(staleness, 15000);
  await whoami();
  await route();
}

main();
