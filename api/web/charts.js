// kpledger explorer: charts and the lineage graph, drawn as SVG by hand.
//
// Bars use percentage coordinates (no viewBox), so text keeps its size on a
// phone while the bars stretch; the lineage graph has fixed coordinates and
// scrolls sideways when it is wider than the screen.

const NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes and children (strings become text nodes). */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return el;
}

const FIXED = {
  BW: "#2a7ab0",
  RU: "#c0392b",
  AE: "#16a085",
  EU: "#2c3e91",
  IN: "#e67e22",
  CD: "#8e44ad",
  ZA: "#27ae60",
  AO: "#d4a017",
  CA: "#b03a5b",
  AU: "#5d6d7e",
  NA: "#1abc9c",
  SL: "#7f8c8d",
};

/** A stable colour per country code. */
export function colorOf(code) {
  if (FIXED[code]) return FIXED[code];
  let h = 0;
  for (const ch of code) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return `hsl(${h}, 55%, 45%)`;
}

function pct(x) {
  return `${Math.max(0, Math.min(100, x)).toFixed(3)}%`;
}

/**
 * Horizontal bars: rows of {label, value, text, href?, color?}. Negative values
 * draw to the left of a centre line (for differences).
 */
export function hbars(rows, { title = "", unit = "" } = {}) {
  const rowH = 26;
  const top = title ? 22 : 4;
  const height = top + rows.length * rowH + 6;
  const max = Math.max(1, ...rows.map((r) => Math.abs(r.value)));
  const signed = rows.some((r) => r.value < 0);
  const x0 = 24;
  const span = 56;
  const svg = s("svg", {
    class: "chart hbars",
    width: "100%",
    height,
    role: "img",
    "aria-label": title || "bar chart",
  });
  if (title) svg.append(s("text", { x: 0, y: 14, class: "chart-title" }, title));
  const zero = signed ? x0 + span / 2 : x0;
  const scale = signed ? span / 2 : span;
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const w = (Math.abs(r.value) / max) * scale;
    const x = r.value < 0 ? zero - w : zero;
    const label = s("text", { x: 0, y: y + 17, class: "chart-label" }, r.label);
    svg.append(r.href ? s("a", { href: r.href }, label) : label);
    svg.append(s("rect", { x: pct(x), y: y + 4, width: pct(Math.max(w, 0.3)), height: rowH - 8, rx: 3, fill: r.color || "#2a7ab0" }, s("title", {}, `${r.label}: ${r.text}${unit}`)));
    svg.append(s("text", { x: pct(x0 + span + 2), y: y + 17, class: "chart-value" }, r.text));
  });
  if (signed) svg.append(s("line", { x1: pct(zero), x2: pct(zero), y1: top, y2: height - 4, class: "chart-axis" }));
  return svg;
}

/**
 * Stacked horizontal bars: rows of {label, total, text, segments: [{key, value, text}]},
 * one colour per segment key, with a legend. Zero segments still appear in the
 * legend (an origin that rounds to nothing is still an origin: DOMAIN rule 9).
 */
export function stacked(rows, { title = "", legendTitle = "", color = colorOf, order = null } = {}) {
  const rowH = 30;
  const top = title ? 22 : 4;
  const keys = order || [...new Set(rows.flatMap((r) => r.segments.map((g) => g.key)))].sort();
  const max = Math.max(1, ...rows.map((r) => r.total));
  const x0 = rows.length === 1 && !rows[0].label ? 0 : 16;
  const span = rows.length === 1 && !rows[0].label ? 100 : 66;
  const legendY = top + rows.length * rowH + 8;
  const legendRows = Math.ceil(keys.length / 4);
  const svg = s("svg", {
    class: "chart stacked",
    width: "100%",
    height: legendY + legendRows * 20 + 4,
    role: "img",
    "aria-label": title || "stacked bar chart",
  });
  if (title) svg.append(s("text", { x: 0, y: 14, class: "chart-title" }, title));
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    if (r.label) svg.append(s("text", { x: 0, y: y + 19, class: "chart-label" }, r.label));
    let x = x0;
    const full = (r.total / max) * span;
    for (const g of r.segments) {
      const w = r.total ? (g.value / r.total) * full : 0;
      if (w <= 0) continue;
      svg.append(
        s("rect", { x: pct(x), y: y + 4, width: pct(w), height: rowH - 8, fill: color(g.key), class: "seg" }, s("title", {}, `${r.label ? `${r.label} ` : ""}${g.key}: ${g.text}`)),
      );
      x += w;
    }
    if (r.text && span < 100) svg.append(s("text", { x: pct(x0 + full + 1), y: y + 19, class: "chart-value" }, r.text));
  });
  keys.forEach((k, i) => {
    const col = i % 4;
    const y = legendY + Math.floor(i / 4) * 20;
    svg.append(s("rect", { x: pct(col * 25), y, width: 12, height: 12, rx: 2, fill: color(k) }));
    svg.append(s("text", { x: pct(col * 25 + 4), y: y + 11, class: "chart-legend", "data-key": k }, legendTitle ? `${legendTitle} ${k}` : k));
  });
  return svg;
}

// ---------------------------------------------------------------- lineage

const NODE_W = 268;
const GAP_X = 28;
const GAP_Y = 64;
const LINE = 16;

function day(time) {
  return (time || "").slice(0, 10);
}

function ct(hundredths) {
  return `${(hundredths / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })} ct`;
}

function clip(text, n = 32) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

/**
 * The hops of one parcel: registration at the mine, transfers, and each KP
 * certificate with its route (issuer -> the chain that confirmed it), in time
 * order. Events of one minute may come in any order: certificates are matched
 * by number, not by position.
 */
function hops(parcel, events) {
  const mine = events.filter((e) => e.parcel === parcel);
  const certs = new Map();
  const out = [];
  for (const e of mine) {
    if (e.kind === "parcel.register") out.push({ at: e.time, mine: true, text: `mined · ${e.chain} · ${day(e.time)}` });
    else if (e.kind === "parcel.transfer") out.push({ at: e.time, text: `transfer · ${e.chain} · ${day(e.time)}` });
    else if (e.kind.startsWith("certificate.") && e.certificate) {
      if (!certs.has(e.certificate)) certs.set(e.certificate, { cert: e.certificate, at: e.time });
      const c = certs.get(e.certificate);
      if (e.kind === "certificate.issue") Object.assign(c, { from: e.chain, issued: day(e.time), at: e.time });
      else if (e.kind === "certificate.confirm") c.to = e.chain;
      else if (e.kind === "certificate.void") c.void = true;
    }
  }
  for (const c of certs.values()) {
    const to = c.void ? "void" : c.to || "in transit";
    out.push({ at: c.at, cert: c.cert, text: `${c.cert} · ${c.from || "?"} → ${to} · ${c.issued || ""}` });
  }
  return out.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}

/** Longest-path layers from the roots (the registrations at the mines). */
function layers(ids, parents) {
  const layer = new Map();
  const visit = (id, depth = 0) => {
    if (layer.has(id)) return layer.get(id);
    if (depth > 10000) return 0;
    const ps = parents.get(id) || [];
    const l = ps.length ? 1 + Math.max(...ps.map((p) => visit(p, depth + 1))) : 0;
    layer.set(id, l);
    return l;
  };
  ids.forEach((id) => visit(id));
  return layer;
}

/**
 * The lineage of GET /v1/parcels/{id}/history as a graph, mines at the top and
 * today at the bottom: one box per parcel (jurisdiction, weight, status, its
 * hops with certificate, route and date), one arrow per split or merge edge
 * (labelled with kind, jurisdiction and date). `proven` is a Set of "chain/index"
 * of records proven in this browser; a parcel whose creating record is proven
 * gets a check mark.
 */
export function lineageGraph(history, { proven = new Set(), names = {} } = {}) {
  const parcels = new Map(history.parcels.map((p) => [p.id, p]));
  const edges = [];
  const seen = new Set();
  for (const e of [...history.ancestors, ...history.descendants]) {
    const k = `${e.parent}>${e.child}`;
    if (!seen.has(k)) {
      seen.add(k);
      edges.push(e);
    }
  }
  const ids = [...new Set([...parcels.keys(), ...edges.flatMap((e) => [e.parent, e.child])])].sort();
  const parents = new Map();
  const children = new Map();
  for (const e of edges) {
    if (!parents.has(e.child)) parents.set(e.child, []);
    parents.get(e.child).push(e.parent);
    if (!children.has(e.parent)) children.set(e.parent, []);
    children.get(e.parent).push(e.child);
  }
  const layer = layers(ids, parents);
  const rows = [];
  for (const id of ids) {
    const l = layer.get(id);
    (rows[l] ||= []).push(id);
  }
  // barycentre sweeps to keep edges short and uncrossed
  const pos = new Map();
  const place = () => rows.forEach((row) => row.forEach((id, i) => pos.set(id, i - (row.length - 1) / 2)));
  place();
  const mean = (list) => (list.length ? list.reduce((a, id) => a + pos.get(id), 0) / list.length : null);
  for (let pass = 0; pass < 4; pass++) {
    const down = pass % 2 === 0;
    const order = down ? rows.keys() : [...rows.keys()].reverse();
    for (const l of order) {
      const row = rows[l];
      if (!row) continue;
      const key = new Map(row.map((id) => [id, mean((down ? parents : children).get(id) || [])]));
      row.sort((a, b) => (key.get(a) ?? pos.get(a)) - (key.get(b) ?? pos.get(b)) || (a < b ? -1 : 1));
      row.forEach((id, i) => pos.set(id, i - (row.length - 1) / 2));
    }
  }
  // node boxes
  const box = new Map();
  for (const id of ids) {
    const lines = hops(id, history.events);
    box.set(id, { id, lines, h: 50 + Math.max(1, lines.length) * LINE });
  }
  const widest = Math.max(...rows.map((r) => (r ? r.length : 0)));
  const width = widest * NODE_W + (widest - 1) * GAP_X + 24;
  let y = 14;
  rows.forEach((row) => {
    if (!row) return;
    const rowH = Math.max(...row.map((id) => box.get(id).h));
    const rowW = row.length * NODE_W + (row.length - 1) * GAP_X;
    let x = (width - rowW) / 2;
    for (const id of row) {
      Object.assign(box.get(id), { x, y });
      x += NODE_W + GAP_X;
    }
    y += rowH + GAP_Y;
  });
  const height = y - GAP_Y + 14;
  const svg = s("svg", {
    class: "lineage",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "group",
    "aria-label": `lineage of ${history.subject}: ${ids.length} parcels, ${edges.length} splits and merges`,
    "data-focus-x": box.has(history.subject) ? box.get(history.subject).x + NODE_W / 2 : width / 2,
  });
  svg.append(
    s(
      "defs",
      {},
      s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" })),
    ),
  );
  const eventTime = new Map(history.events.map((e) => [`${e.chain}/${e.index}`, e.time]));
  // edges first, under the boxes
  for (const e of edges) {
    const a = box.get(e.parent);
    const b = box.get(e.child);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W / 2;
    const y1 = a.y + a.h;
    const x2 = b.x + NODE_W / 2;
    const y2 = b.y;
    const my = (y1 + y2) / 2;
    svg.append(
      s("path", {
        d: `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2 - 2}`,
        class: `edge edge-${e.kind}`,
        "marker-end": "url(#arrow)",
        "data-parent": e.parent,
        "data-child": e.child,
      }),
    );
  }
  // edge labels: one per record (a merge's edges share theirs), at the child's top
  const labelled = new Set();
  for (const e of edges) {
    const k = `${e.chain}/${e.index}`;
    const b = box.get(e.child);
    const key = `${k}>${e.child}`;
    if (!b || labelled.has(key) || (e.kind === "merge" && labelled.has(k))) continue;
    labelled.add(key);
    labelled.add(k);
    const a = box.get(e.parent);
    const text = `${e.kind} · ${e.chain} · ${day(eventTime.get(k))}`;
    const cx = e.kind === "merge" ? b.x + NODE_W / 2 : (a.x + b.x) / 2 + NODE_W / 2;
    const cy = b.y - GAP_Y / 2 + (e.kind === "split" ? 0 : 8);
    const w = text.length * 6.2 + 12;
    svg.append(
      s(
        "g",
        { class: `edge-label edge-label-${e.kind}` },
        s("rect", { x: cx - w / 2, y: cy - 10, width: w, height: 18, rx: 9 }),
        s("text", { x: cx, y: cy + 3, "text-anchor": "middle" }, text),
      ),
    );
  }
  for (const id of ids) {
    const b = box.get(id);
    const p = parcels.get(id);
    const subject = id === history.subject;
    const created = p ? `${p.created.chain}/${p.created.index}` : "";
    const ok = p && proven.has(created);
    const g = s("g", { class: `pnode${subject ? " subject" : ""}${p ? ` status-${p.status}` : ""}`, "data-parcel": id });
    g.append(s("rect", { x: b.x, y: b.y, width: NODE_W, height: b.h, rx: 8, class: "pbox" }));
    g.append(s("text", { x: b.x + 12, y: b.y + 20, class: "pid" }, clip(id, 24)));
    if (ok) g.append(s("text", { x: b.x + NODE_W - 12, y: b.y + 20, "text-anchor": "end", class: "pok" }, "✓ proven"));
    if (p) {
      g.append(s("text", { x: b.x + 12, y: b.y + 38, class: "pmeta" }, `${p.jurisdiction} · ${ct(p.weight)} · ${p.status.replace("_", " ")}`, s("title", {}, names[p.jurisdiction] || p.jurisdiction)));
    }
    b.lines.forEach((line, i) => {
      const ty = b.y + 38 + (i + 1) * LINE;
      if (line.mine) {
        const cx = b.x + 16;
        const cy = ty - 4;
        g.append(s("path", { d: `M${cx - 5},${cy - 2} L${cx - 2},${cy - 6} L${cx + 2},${cy - 6} L${cx + 5},${cy - 2} L${cx},${cy + 5} z`, class: "gem" }));
        g.append(s("text", { x: b.x + 26, y: ty, class: "phop mine" }, line.text));
      } else {
        g.append(s("text", { x: b.x + 12, y: ty, class: `phop${line.cert ? " cert" : ""}` }, clip(line.text, 38)));
      }
    });
    g.append(s("title", {}, `${id}${p ? ` — ${p.jurisdiction}, ${ct(p.weight)}, ${p.status}` : ""}`));
    svg.append(s("a", { href: `#/parcel/${encodeURIComponent(id)}`, class: "plink" }, g));
  }
  return svg;
}
