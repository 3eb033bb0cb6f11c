// kpledger officer forms: register production, issue a certificate, confirm or
// refuse an incoming one. Nothing is computed here: the node composes every
// record from its own state (POST /v1/officer/compose, the code the `kpl`
// officer commands run), the page submits it (POST /v1/records) and follows
// it to its block. The operator token is the explorer's (sessionStorage).

const TOKEN_KEY = "kpl.token";
const token = sessionStorage.getItem(TOKEN_KEY) || "";
const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const carats = (n) => `${Math.floor(n / 100).toLocaleString("en-US")}.${String(n % 100).padStart(2, "0")} ct`;
const usd = (n) => `US$ ${Math.floor(n / 100).toLocaleString("en-US")}.${String(n % 100).padStart(2, "0")}`;
const origin = (o) => Object.entries(o).map(([c, q]) => `${c} ${carats(q)}`).join(", ");

class Problem extends Error {
  constructor(status, detail, field) {
    super(detail);
    this.status = status;
    this.field = field || "";
  }
}

async function api(path, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { headers, cache: "no-store" };
  if (body !== undefined) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new Problem(0, `the node did not answer (${err.message})`);
  }
  if (!res.ok) {
    let problem = {};
    try {
      problem = await res.json();
    } catch {
      // not a problem document
    }
    throw new Problem(res.status, problem.detail || res.statusText, problem.field);
  }
  return res.json();
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Show an outcome in `box`: its status (for people and tests) and what to say. */
function show(box, status, ...content) {
  box.dataset.status = status;
  box.className = `outcome ${status === "committed" ? "ok" : status === "working" ? "muted" : "error"}`;
  box.replaceChildren(h("p", {}, ...content));
}

function recordLink(o) {
  // written CHAIN/INDEX, as everywhere else (record INDEX of CHAIN's log)
  return h("a", { href: `/#/record/${enc(o.chain)}/${o.height}/${o.index}?hash=${enc(o.hash)}`, id: "record-link", title: `record ${o.index} of ${o.chain}'s log, in its block ${o.height}` },
    `record ${o.chain}/${o.index}`);
}

/** Compose `kind` from `fields` on the node, submit it, follow it to its block. */
async function act(kind, fields, box, subject) {
  show(box, "working", "Composing from the ledger ...");
  let record;
  try {
    record = (await api("/v1/officer/compose", { kind, fields })).record;
  } catch (err) {
    show(box, "invalid", `Not sent: ${err.message}`, err.field ? ` (field: ${err.field})` : "");
    return null;
  }
  show(box, "working", "Submitted; waiting for the block that seals it ...");
  let outcome;
  try {
    outcome = (await api("/v1/records", { records: [record] })).results[0];
    const deadline = Date.now() + 60_000;
    while (outcome.status === "pending") {
      if (Date.now() > deadline) throw new Problem(0, "still pending after 60 s; look the record up later");
      await sleep(200);
      const found = await api(`/v1/records/${enc(record.id)}`);
      if (found.status !== "pending") outcome = found;
    }
  } catch (err) {
    show(box, "error", `Failed: ${err.message}`);
    return null;
  }
  if (outcome.status === "committed") {
    show(box, "committed", `Committed ${kind}: `, recordLink(outcome), ". ", subject);
    return record;
  }
  const where = outcome.field ? ` at ${outcome.field}` : "";
  if (outcome.status === "rejected") {
    show(box, "refused", `Refused by rule ${outcome.rule}${where}: ${outcome.reason}`);
  } else {
    show(box, "invalid", `Invalid${where}: ${outcome.reason}`);
  }
  return null;
}

function values(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) {
    if (typeof v === "string" && v.trim() !== "") out[k] = v.trim();
  }
  return out;
}

// ---------------------------------------------------------------- register production

function registerForm() {
  const form = $("register-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const fields = values(form);
    const done = await act("parcel.register", fields, $("register-outcome"),
      h("a", { href: `/#/parcel/${enc(fields.parcel)}`, id: "subject-link" }, `Parcel ${fields.parcel}`));
    if (done) {
      form.reset();
      await loadParcels();
    }
  });
}

// ---------------------------------------------------------------- issue a certificate

async function loadParcels() {
  const box = $("i-parcels");
  let parcels;
  try {
    parcels = await api("/v1/officer/parcels");
  } catch (err) {
    box.replaceChildren(h("legend", {}, "Held parcels to ship"), h("p", { class: "error" }, err.message));
    return;
  }
  const items = parcels.map((p) => h("label", {},
    h("input", { type: "checkbox", name: "parcels", value: p.id, "data-parcel": p.id }),
    ` ${p.id} · ${carats(p.weight)} · ${p.hs} · ${origin(p.origin)} · held by ${p.custodian}`));
  box.replaceChildren(h("legend", {}, "Held parcels to ship"),
    ...(items.length ? items : [h("p", { class: "muted small" }, "This authority holds no active parcel.")]));
}

function issueFields(form) {
  const fields = values(form);
  fields.parcels = [...form.querySelectorAll('input[name="parcels"]:checked')].map((x) => x.value);
  return fields;
}

let previewing = 0;
async function preview() {
  const form = $("issue-form");
  const box = $("issue-preview");
  const fields = issueFields(form);
  if (!fields.parcels.length || !form.checkValidity()) {
    box.replaceChildren(h("p", { class: "muted small" }, "Pick parcels and fill the form: the lines and totals come from the ledger."));
    return;
  }
  const mine = ++previewing;
  let record;
  try {
    record = (await api("/v1/officer/compose", { kind: "certificate.issue", fields })).record;
  } catch (err) {
    if (mine === previewing) box.replaceChildren(h("p", { class: "error" }, err.message));
    return;
  }
  if (mine !== previewing) return;
  const b = record.body;
  box.replaceChildren(
    h("table", { id: "issue-lines" },
      h("thead", {}, h("tr", {}, h("th", {}, "Parcel"), h("th", {}, "Weight"), h("th", {}, "Value"), h("th", {}, "HS"), h("th", {}, "Origin"))),
      h("tbody", {}, b.lines.map((l) => h("tr", {}, h("td", {}, l.parcel), h("td", {}, carats(l.weight)), h("td", {}, usd(l.value)), h("td", {}, l.hs), h("td", {}, origin(l.origin)))))),
    h("p", { id: "issue-totals" },
      `${b.parcels} parcel(s), ${carats(b.carats)}, ${usd(b.value)}; country of origin ${b.origin}; exporter ${b.exporter}; issued ${b.issued}, expires ${b.expires}`),
  );
}

function issueForm() {
  const form = $("issue-form");
  form.addEventListener("change", preview);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const fields = issueFields(form);
    if (!fields.parcels.length) {
      show($("issue-outcome"), "invalid", "Pick at least one held parcel.");
      return;
    }
    const done = await act("certificate.issue", fields, $("issue-outcome"),
      h("a", { href: `/#/certificate/${enc(fields.number)}`, id: "subject-link" }, `Certificate ${fields.number}`));
    if (done) {
      form.reset();
      $("issue-preview").replaceChildren();
      await loadParcels();
    }
  });
}

// ---------------------------------------------------------------- incoming certificates

const CODES = ["restricted-origin", "documents", "seal-broken", "weight-discrepancy", "other"];

async function loadIncoming() {
  const list = $("incoming-list");
  let certs;
  try {
    certs = await api("/v1/officer/incoming");
  } catch (err) {
    list.replaceChildren(h("p", { class: "error" }, err.message));
    return;
  }
  if (!certs.length) {
    list.replaceChildren(h("p", { class: "muted small", id: "incoming-none" }, "No open certificate is addressed to this authority."));
    return;
  }
  list.replaceChildren(...certs.map((c) => {
    const box = $("incoming-outcome");
    const link = h("a", { href: `/#/certificate/${enc(c.number)}` }, `Certificate ${c.number}`);
    const confirm = h("form", { "data-act": "confirm", onsubmit: async (e) => {
      e.preventDefault();
      if (await act("certificate.confirm", { number: c.number, ...values(e.target) }, box, link)) await loadIncoming();
    } },
    h("label", { for: `c-${c.number}` }, "Custodian"),
    h("input", { id: `c-${c.number}`, name: "custodian", required: true, placeholder: "importing party" }),
    h("button", { type: "submit" }, "Confirm"));
    const refuse = h("form", { "data-act": "refuse", onsubmit: async (e) => {
      e.preventDefault();
      if (await act("certificate.refuse", { number: c.number, ...values(e.target) }, box, link)) await loadIncoming();
    } },
    h("label", { for: `code-${c.number}` }, "Reason code"),
    h("select", { id: `code-${c.number}`, name: "code" }, CODES.map((x) => h("option", {}, x))),
    h("label", { for: `why-${c.number}` }, "Reason"),
    h("input", { id: `why-${c.number}`, name: "reason", required: true }),
    h("button", { type: "submit", class: "danger" }, "Refuse"));
    return h("div", { class: "incoming-item", "data-number": c.number },
      h("strong", {}, c.number), ` from ${c.issuer} · ${c.parcels.length} parcel(s) · ${carats(c.carats)} · origin ${c.origin} · expires ${c.expires}`,
      confirm, refuse);
  }));
}

// ---------------------------------------------------------------- start

async function main() {
  let who = { role: "public" };
  try {
    who = await api("/v1/whoami");
  } catch {
    // shown below
  }
  const badge = $("who");
  badge.textContent = who.role;
  const status = $("officer-status");
  if (who.role !== "operator" || !who.chain) {
    status.replaceChildren(
      h("span", { class: "notice", id: "needs-operator" }, "These forms write to the ledger: they need this authority's operator token. ",
        h("a", { href: "/#/settings?back=%23%2F" }, "Enter it in the explorer's settings"), ", then come back."));
    document.body.dataset.ready = "1";
    return;
  }
  status.textContent = `Operator of ${who.chain} on node ${who.node}. Records are composed by the node from its ledger.`;
  for (const id of ["register", "issue", "incoming"]) $(id).hidden = false;
  registerForm();
  issueForm();
  await Promise.all([loadParcels(), loadIncoming(), preview()]);
  document.body.dataset.ready = "1";
}

main();
