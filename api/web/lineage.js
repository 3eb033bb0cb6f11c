// kpledger explorer: the lineage graph, a layered drawing written here.
//
// Layout (Sugiyama style, every step small enough to read):
//   1. layers: longest path from the registrations at the mines (layer 0);
//   2. an edge that spans several layers gets a thin placeholder in each layer
//      it crosses, so it runs in a column of its own and never over a box;
//   3. order in each layer: barycentre sweeps down and up, keeping the order
//      with the fewest crossings;
//   4. x: each item as close to the mean of its neighbours as the order and the
//      spacing allow (isotonic regression, sweeps down and up);
//   5. edges: orthogonal. An edge leaves its parent's bottom, drops to a
//      horizontal track of its own in the gap below the parent's layer (one
//      track per parent, so a split reads as one bus), runs sideways there (no
//      box is ever in a gap) and drops onto its own port on the child's top
//      (one port per incoming edge, so no two edges end at one point).
// Boxes occupy layer bands, horizontals occupy gaps, verticals run only in a
// box's own column or a placeholder's: no edge can pass through a box it does
// not connect. tests/web checks that from the drawn geometry.
//
// The view around the drawing fits it to the width of the screen, zooms and
// pans (buttons, drag, keyboard), and collapses a large lineage to the
// parcels near the subject, each collapsed parcel offering to expand.

import { s } from "./charts.js";

const NODE_W = 268;
const DUMMY_W = 12;
const SEP = 30;
const TRACK = 8;
const GAP_MIN = 44;
const LINE = 16;
const MARGIN = 16;
/** a lineage with more parcels than this opens collapsed around the subject */
export const COLLAPSE_OVER = 40;

function day(time) {
  return (time || "").slice(0, 10);
}

function ct(hundredths) {
  return `${(hundredths / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })} ct`;
}

function clip(text, n = 38) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

let ruler = null;

/**
 * `text` cut with "…" so that it is at most `px` wide in the drawing's font, measured
 * with a canvas (the browser's own font metrics), with a few pixels to spare. Outside a
 * browser (no canvas), cut at 38 characters.
 */
function fit(text, px, { size = 12, bold = false } = {}) {
  if (typeof document === "undefined") return clip(text);
  ruler = ruler || document.createElement("canvas").getContext("2d");
  if (!ruler) return clip(text);
  ruler.font = `${bold ? "bold " : ""}${size}px ${getComputedStyle(document.body).fontFamily}`;
  const room = px - 4;
  if (ruler.measureText(text).width <= room) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ruler.measureText(`${text.slice(0, mid)}…`).width <= room) lo = mid;
    else hi = mid - 1;
  }
  return `${text.slice(0, lo)}…`;
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
      else if (e.kind === "certificate.refuse") c.refused = e.chain;
    }
  }
  for (const c of certs.values()) {
    const to = c.void ? "void" : c.refused ? `${c.refused} refused` : c.to || "in transit";
    out.push({ at: c.at, cert: c.cert, text: `${c.cert} · ${c.from || "?"} → ${to} · ${c.issued || ""}` });
  }
  return out.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}

/** The graph of a history document: ids, unique edges, parents and children. */
export function graphOf(history) {
  const edges = [];
  const seen = new Set();
  for (const e of [...history.ancestors, ...history.descendants]) {
    const k = `${e.parent}>${e.child}`;
    if (!seen.has(k)) {
      seen.add(k);
      edges.push(e);
    }
  }
  const ids = [...new Set([...history.parcels.map((p) => p.id), ...edges.flatMap((e) => [e.parent, e.child])])].sort();
  const parents = new Map(ids.map((id) => [id, []]));
  const children = new Map(ids.map((id) => [id, []]));
  for (const e of edges) {
    parents.get(e.child).push(e.parent);
    children.get(e.parent).push(e.child);
  }
  return { ids, edges, parents, children };
}

/**
 * Which parcels show: every parcel, unless a parcel on the way from the subject
 * (breadth first, either direction) is collapsed. Returns the visible set and,
 * per collapsed parcel, how many parcels it hides.
 */
export function visibleParcels(graph, subject, collapsed) {
  const via = new Map([[subject, null]]);
  const queue = [subject];
  const order = [];
  while (queue.length) {
    const id = queue.shift();
    order.push(id);
    for (const n of [...(graph.parents.get(id) || []), ...(graph.children.get(id) || [])]) {
      if (!via.has(n)) {
        via.set(n, id);
        queue.push(n);
      }
    }
  }
  for (const id of graph.ids) if (!via.has(id)) via.set(id, null); // not connected: shown
  const shown = new Set();
  const hides = new Map();
  for (const id of graph.ids) {
    let hidden = null;
    for (let up = via.get(id); up !== null && up !== undefined; up = via.get(up)) if (collapsed.has(up)) hidden = up;
    if (hidden === null) shown.add(id);
    else hides.set(hidden, (hides.get(hidden) || 0) + 1);
  }
  return { shown, hides, via, order };
}

/** The collapsed set a large lineage opens with: the parcels at the largest distance
 * from the subject that keeps at most COLLAPSE_OVER parcels in view. */
export function defaultCollapsed(graph, subject) {
  if (graph.ids.length <= COLLAPSE_OVER) return new Set();
  const { via, order } = visibleParcels(graph, subject, new Set());
  const depth = new Map([[subject, 0]]);
  for (const id of order) if (via.get(id) !== null) depth.set(id, depth.get(via.get(id)) + 1);
  const hasNext = new Set([...via.values()].filter((v) => v !== null));
  let best = new Set([subject].filter((id) => hasNext.has(id)));
  for (let d = 1; d < 64; d++) {
    const cut = new Set([...depth].filter(([id, k]) => k === d && hasNext.has(id)).map(([id]) => id));
    if (!cut.size) return new Set();
    if (visibleParcels(graph, subject, cut).shown.size > COLLAPSE_OVER) return best;
    best = cut;
  }
  return best;
}

/** Longest-path layers from the roots. */
function layering(ids, parents) {
  const layer = new Map();
  const visit = (id) => {
    if (layer.has(id)) return layer.get(id);
    layer.set(id, 0); // a cycle cannot happen in a ledger; guard anyway
    const ps = parents.get(id) || [];
    const l = ps.length ? 1 + Math.max(...ps.map(visit)) : 0;
    layer.set(id, l);
    return l;
  };
  ids.forEach(visit);
  return layer;
}

function crossings(rows, down) {
  let total = 0;
  const index = new Map();
  rows.forEach((row) => row.forEach((n, i) => index.set(n, i)));
  for (let l = 0; l + 1 < rows.length; l++) {
    const segs = [];
    for (const n of rows[l]) for (const m of down.get(n) || []) segs.push([index.get(n), index.get(m)]);
    for (let i = 0; i < segs.length; i++)
      for (let j = i + 1; j < segs.length; j++) {
        const [a, b] = segs[i];
        const [c, d] = segs[j];
        if ((a - c) * (b - d) < 0) total += 1;
      }
  }
  return total;
}

/** Isotonic regression: positions as near `want` as possible with x[i+1]-x[i] >= gap[i]. */
function placeRow(want, gaps) {
  const offset = [0];
  for (let i = 1; i < want.length; i++) offset.push(offset[i - 1] + gaps[i - 1]);
  const blocks = [];
  want.forEach((w, i) => {
    blocks.push({ sum: w - offset[i], n: 1 });
    while (blocks.length > 1 && blocks[blocks.length - 2].sum / blocks[blocks.length - 2].n >= blocks[blocks.length - 1].sum / blocks[blocks.length - 1].n) {
      const top = blocks.pop();
      blocks[blocks.length - 1].sum += top.sum;
      blocks[blocks.length - 1].n += top.n;
    }
  });
  const out = [];
  for (const b of blocks) for (let k = 0; k < b.n; k++) out.push(b.sum / b.n + offset[out.length]);
  return out;
}

/**
 * Lay out parcels (`ids`, with box heights `heights`) and their edges. Returns
 * the boxes {x, y, w, h}, every edge's polyline [[x, y], ...] from the parent's
 * bottom to the child's top, and the size.
 */
export function layout(ids, edges, heights) {
  const parents = new Map(ids.map((id) => [id, []]));
  for (const e of edges) parents.get(e.child).push(e.parent);
  const layer = layering(ids, parents);
  const depth = Math.max(0, ...ids.map((id) => layer.get(id))) + 1;
  const rows = Array.from({ length: depth }, () => []);
  const width = new Map();
  const down = new Map();
  const up = new Map();
  const link = (a, b) => {
    if (!down.has(a)) down.set(a, []);
    if (!up.has(b)) up.set(b, []);
    down.get(a).push(b);
    up.get(b).push(a);
  };
  for (const id of ids) {
    rows[layer.get(id)].push(id);
    width.set(id, NODE_W);
  }
  const chains = edges.map((e, k) => {
    const chain = [e.parent];
    for (let l = layer.get(e.parent) + 1; l < layer.get(e.child); l++) {
      const d = `\u0000${k}:${l}`;
      rows[l].push(d);
      width.set(d, DUMMY_W);
      layer.set(d, l);
      chain.push(d);
    }
    chain.push(e.child);
    for (let i = 0; i + 1 < chain.length; i++) link(chain[i], chain[i + 1]);
    return chain;
  });
  // 3. order: barycentre sweeps, the best order kept
  const pos = new Map();
  const number = () => rows.forEach((row) => row.forEach((n, i) => pos.set(n, i)));
  number();
  let best = rows.map((r) => [...r]);
  let bestCross = crossings(rows, down);
  for (let pass = 0; pass < 12 && bestCross > 0; pass++) {
    const goingDown = pass % 2 === 0;
    const seq = goingDown ? [...rows.keys()].slice(1) : [...rows.keys()].reverse().slice(1);
    for (const l of seq) {
      const nb = goingDown ? up : down;
      const key = new Map(
        rows[l].map((n) => {
          const list = nb.get(n) || [];
          return [n, list.length ? list.reduce((a, m) => a + pos.get(m), 0) / list.length : pos.get(n)];
        }),
      );
      rows[l].sort((a, b) => key.get(a) - key.get(b) || pos.get(a) - pos.get(b));
      rows[l].forEach((n, i) => pos.set(n, i));
    }
    const c = crossings(rows, down);
    if (c < bestCross) {
      bestCross = c;
      best = rows.map((r) => [...r]);
    }
  }
  best.forEach((r, l) => (rows[l] = r));
  number();
  // 4. x coordinates (centres)
  const cx = new Map();
  for (const row of rows) {
    let x = 0;
    for (const n of row) {
      cx.set(n, x + width.get(n) / 2);
      x += width.get(n) + SEP;
    }
  }
  const gapsOf = (row) => row.slice(1).map((n, i) => (width.get(row[i]) + width.get(n)) / 2 + SEP);
  for (let pass = 0; pass < 8; pass++) {
    const goingDown = pass % 2 === 0;
    const seq = goingDown ? [...rows.keys()] : [...rows.keys()].reverse();
    for (const l of seq) {
      const row = rows[l];
      if (!row.length) continue;
      const nb = goingDown ? up : down;
      const want = row.map((n) => {
        const list = [...(nb.get(n) || []), ...(pass > 3 ? (goingDown ? down : up).get(n) || [] : [])];
        return list.length ? list.reduce((a, m) => a + cx.get(m), 0) / list.length : cx.get(n);
      });
      placeRow(want, gapsOf(row)).forEach((x, i) => cx.set(row[i], x));
    }
  }
  const left = Math.min(...[...cx].map(([n, x]) => x - width.get(n) / 2));
  for (const [n, x] of cx) cx.set(n, x - left + MARGIN);
  const totalW = Math.max(...[...cx].map(([n, x]) => x + width.get(n) / 2)) + MARGIN;
  // 5. tracks: one per upper item in each gap, ordered by x
  const tracks = rows.map((row) => row.filter((n) => (down.get(n) || []).length));
  const bandH = rows.map((row) => Math.max(0, ...row.filter((n) => heights.has(n)).map((n) => heights.get(n))));
  const top = [];
  const gapH = tracks.map((t) => Math.max(GAP_MIN, (t.length + 1) * TRACK + 16));
  let y = MARGIN;
  rows.forEach((_, l) => {
    top.push(y);
    y += bandH[l] + (l + 1 < rows.length ? gapH[l] : 0);
  });
  const totalH = y + MARGIN;
  const trackY = new Map();
  tracks.forEach((t, l) => {
    const g0 = top[l] + bandH[l];
    const step = (gapH[l] - 16) / (t.length + 1);
    t.forEach((n, i) => trackY.set(n, g0 + 8 + step * (i + 1)));
  });
  // ports on a box's top, one per incoming segment, ordered by the upper end's x
  const port = new Map();
  for (const [n, list] of up) {
    const sorted = [...list].sort((a, b) => cx.get(a) - cx.get(b));
    const w = width.get(n);
    sorted.forEach((m, i) => port.set(`${m}>${n}`, heights.has(n) ? cx.get(n) - w / 2 + (w * (i + 1)) / (sorted.length + 1) : cx.get(n)));
  }
  const boxes = new Map(ids.map((id) => [id, { x: cx.get(id) - NODE_W / 2, y: top[layer.get(id)], w: NODE_W, h: heights.get(id) }]));
  const paths = chains.map((chain) => {
    const p0 = chain[0];
    const pts = [[cx.get(p0), top[layer.get(p0)] + heights.get(p0)]];
    for (let i = 0; i + 1 < chain.length; i++) {
      const a = chain[i];
      const b = chain[i + 1];
      const ty = trackY.get(a);
      const bx = port.get(`${a}>${b}`);
      pts.push([cx.get(a), ty], [bx, ty]);
      const lb = layer.get(a) + 1;
      pts.push([bx, heights.has(b) ? top[lb] : top[lb] + bandH[lb]]);
    }
    // drop points that do not turn
    return pts.filter((p, i) => {
      if (i === 0 || i === pts.length - 1) return true;
      const [a, c] = [pts[i - 1], pts[i + 1]];
      return !((a[0] === p[0] && p[0] === c[0]) || (a[1] === p[1] && p[1] === c[1]));
    });
  });
  return { boxes, paths, width: totalW, height: totalH, crossings: bestCross };
}

function relation(id, edges, eventTime) {
  const ins = edges.filter((e) => e.child === id);
  if (!ins.length) return null;
  const e = ins[0];
  const when = day(eventTime.get(`${e.chain}/${e.index}`));
  if (e.kind === "merge") return { kind: "merge", text: `merge of ${ins.map((x) => x.parent).join(" + ")} · ${e.chain} · ${when}` };
  return { kind: e.kind, text: `${e.kind} of ${e.parent} · ${e.chain} · ${when}` };
}

/**
 * The lineage of GET /v1/parcels/{id}/history as an SVG drawing, mines at the
 * top and today at the bottom: one box per parcel (jurisdiction, weight,
 * status, how it was made, its hops with certificate, route and date), one
 * arrow per split or merge edge. `proven` is a Set of "chain/index" of records
 * proven in this browser (a parcel whose creating record is proven gets a
 * check mark); `collapsed` a Set of parcels whose further lineage is hidden.
 */
export function lineageGraph(history, { proven = new Set(), names = {}, collapsed = new Set() } = {}) {
  const graph = graphOf(history);
  const { shown, hides } = visibleParcels(graph, history.subject, collapsed);
  const parcels = new Map(history.parcels.map((p) => [p.id, p]));
  const ids = graph.ids.filter((id) => shown.has(id));
  const edges = graph.edges.filter((e) => shown.has(e.parent) && shown.has(e.child));
  const eventTime = new Map(history.events.map((e) => [`${e.chain}/${e.index}`, e.time]));
  const content = new Map();
  const heights = new Map();
  for (const id of ids) {
    const lines = hops(id, history.events);
    const rel = relation(id, graph.edges, eventTime);
    const more = hides.get(id) || 0;
    content.set(id, { lines, rel, more });
    heights.set(id, 46 + (lines.length + (rel ? 1 : 0) + (more ? 1 : 0)) * LINE);
  }
  const lay = layout(ids, edges, heights);
  const svg = s("svg", {
    class: "lineage",
    viewBox: `0 0 ${lay.width} ${lay.height}`,
    "data-width": lay.width,
    "data-height": lay.height,
    role: "group",
    "aria-label": `lineage of ${history.subject}: ${ids.length} of ${graph.ids.length} parcels shown, ${edges.length} splits and merges`,
  });
  svg.append(
    s(
      "defs",
      {},
      s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" })),
    ),
  );
  const plane = s("g", { class: "plane" });
  svg.append(plane);
  edges.forEach((e, k) => {
    const pts = lay.paths[k];
    plane.append(
      s("path", {
        d: pts.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" "),
        class: `edge edge-${e.kind}`,
        "marker-end": "url(#arrow)",
        "data-parent": e.parent,
        "data-child": e.child,
      }),
    );
  });
  for (const id of ids) {
    const b = lay.boxes.get(id);
    const p = parcels.get(id);
    const { lines, rel, more } = content.get(id);
    const subject = id === history.subject;
    const created = p ? `${p.created.chain}/${p.created.index}` : "";
    const ok = p && proven.has(created);
    const g = s("g", { class: `pnode${subject ? " subject" : ""}${p ? ` status-${p.status}` : ""}`, "data-parcel": id });
    g.append(s("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: 8, class: "pbox" }));
    g.append(s("text", { x: b.x + 12, y: b.y + 20, class: "pid" }, fit(id, b.w - (ok ? 96 : 24), { size: 13, bold: true })));
    if (ok) g.append(s("text", { x: b.x + b.w - 12, y: b.y + 20, "text-anchor": "end", class: "pok" }, "✓ proven"));
    if (p) {
      g.append(s("text", { x: b.x + 12, y: b.y + 38, class: "pmeta" }, fit(`${p.jurisdiction} · ${ct(p.weight)} · ${p.status.replace("_", " ")}`, b.w - 24), s("title", {}, names[p.jurisdiction] || p.jurisdiction)));
    }
    let ty = b.y + 38;
    if (rel) {
      ty += LINE;
      g.append(s("text", { x: b.x + 12, y: ty, class: `prel ${rel.kind}` }, fit(rel.text, b.w - 24), s("title", {}, rel.text)));
    }
    for (const line of lines) {
      ty += LINE;
      if (line.mine) {
        const gx = b.x + 16;
        const gy = ty - 4;
        g.append(s("path", { d: `M${gx - 5},${gy - 2} L${gx - 2},${gy - 6} L${gx + 2},${gy - 6} L${gx + 5},${gy - 2} L${gx},${gy + 5} z`, class: "gem" }));
        g.append(s("text", { x: b.x + 26, y: ty, class: "phop mine" }, fit(line.text, b.w - 38)));
      } else {
        g.append(s("text", { x: b.x + 12, y: ty, class: `phop${line.cert ? " cert" : ""}` }, fit(line.text, b.w - 24), s("title", {}, line.text)));
      }
    }
    g.append(s("title", {}, `${id}${p ? ` — ${p.jurisdiction}, ${ct(p.weight)}, ${p.status}` : ""}`));
    plane.append(s("a", { href: `#/parcel/${encodeURIComponent(id)}`, class: "plink" }, g));
    if (more) {
      ty += LINE;
      const label = `+ ${more} more parcel${more === 1 ? "" : "s"} · expand`;
      plane.append(
        s(
          "g",
          { class: "expand", role: "button", tabindex: "0", "data-expand": id, "aria-label": `${label}: the lineage behind ${id}` },
          s("rect", { x: b.x + 8, y: ty - 13, width: b.w - 16, height: 18, rx: 9 }),
          s("text", { x: b.x + b.w / 2, y: ty, "text-anchor": "middle" }, fit(label, b.w - 32, { bold: true })),
        ),
      );
    }
  }
  return svg;
}

/**
 * The lineage with its controls: fit to width, zoom, pan, collapse and expand.
 * `update(proven)` redraws with new check marks and keeps the view.
 */
export function lineageView(history, { names = {} } = {}) {
  const graph = graphOf(history);
  let collapsed = defaultCollapsed(graph, history.subject);
  let proven = new Set();
  let scale = null; // null: fit to width
  let vx = 0;
  let vy = 0;
  let svg = null;
  const frame = document.createElement("div");
  frame.className = "lineage-frame";
  frame.id = "lineage-frame";
  const button = (label, title, id) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "secondary small-button";
    b.id = id;
    b.textContent = label;
    b.title = title;
    b.setAttribute("aria-label", title);
    return b;
  };
  const fit = button("Fit", "fit the lineage to the width", "lineage-fit");
  const zoomIn = button("+", "zoom in", "lineage-zoom-in");
  const zoomOut = button("−", "zoom out", "lineage-zoom-out");
  const all = button("", "", "lineage-all");
  const note = document.createElement("span");
  note.className = "muted small";
  note.id = "lineage-note";
  const bar = document.createElement("div");
  bar.className = "row lineage-bar no-print";
  bar.append(fit, zoomOut, zoomIn, all, note);
  const root = document.createElement("div");
  root.append(bar, frame);

  const size = () => [Number(svg.getAttribute("data-width")), Number(svg.getAttribute("data-height"))];
  const fitScale = () => Math.min(1, (frame.clientWidth || 800) / size()[0]);
  const apply = () => {
    const [w, h] = size();
    const k = scale ?? fitScale();
    const viewW = (frame.clientWidth || 800) / k;
    const shownH = Math.min(h * k, Math.max(320, window.innerHeight * 0.75));
    const viewH = shownH / k;
    vx = Math.max(Math.min(vx, w - viewW), Math.min(0, (w - viewW) / 2));
    vy = Math.max(0, Math.min(vy, h - viewH));
    if (viewW >= w) vx = (w - viewW) / 2;
    svg.setAttribute("viewBox", `${vx.toFixed(1)} ${vy.toFixed(1)} ${viewW.toFixed(1)} ${viewH.toFixed(1)}`);
    svg.setAttribute("width", "100%");
    svg.setAttribute("height", String(Math.round(shownH)));
    svg.dataset.scale = k.toFixed(4);
  };
  const zoom = (factor) => {
    const k = scale ?? fitScale();
    const viewW = frame.clientWidth / k;
    const viewH = Number(svg.getAttribute("height")) / k;
    const midX = vx + viewW / 2;
    const midY = vy + viewH / 2;
    scale = Math.max(0.05, Math.min(3, k * factor));
    vx = midX - frame.clientWidth / scale / 2;
    vy = midY - viewH / (scale / k) / 2;
    apply();
  };
  const draw = () => {
    svg = lineageGraph(history, { proven, names, collapsed });
    frame.replaceChildren(svg);
    const hidden = graph.ids.length - svg.querySelectorAll("g.pnode").length;
    all.hidden = graph.ids.length <= COLLAPSE_OVER && !collapsed.size;
    all.textContent = hidden ? `Show all ${graph.ids.length} parcels` : "Collapse";
    all.title = hidden ? "expand every collapsed sub-lineage" : "collapse the far parts of the lineage";
    note.textContent = hidden ? `${graph.ids.length - hidden} of ${graph.ids.length} parcels shown` : `${graph.ids.length} parcels`;
    for (const el of svg.querySelectorAll("[data-expand]")) {
      const open = () => {
        const id = el.getAttribute("data-expand");
        collapsed.delete(id);
        const { via } = visibleParcels(graph, history.subject, new Set());
        const inner = new Set(via.values());
        for (const [n, v] of via) if (v === id && inner.has(n)) collapsed.add(n);
        draw();
      };
      el.addEventListener("click", open);
      el.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          open();
        }
      });
    }
    requestAnimationFrame(() => {
      if (scale === null) {
        vx = 0;
        vy = 0;
      }
      apply();
    });
  };
  fit.addEventListener("click", () => {
    scale = null;
    vx = 0;
    vy = 0;
    apply();
  });
  zoomIn.addEventListener("click", () => zoom(1.25));
  zoomOut.addEventListener("click", () => zoom(0.8));
  all.addEventListener("click", () => {
    collapsed = collapsed.size ? new Set() : defaultCollapsed(graph, history.subject);
    scale = null;
    draw();
  });
  // pan: drag with a pointer, or the arrow keys when the drawing has the focus
  frame.tabIndex = 0;
  frame.setAttribute("role", "region");
  frame.setAttribute("aria-label", "lineage drawing: drag or use the arrow keys to pan, + and - to zoom");
  let drag = null;
  let moved = false;
  frame.addEventListener("pointerdown", (ev) => {
    drag = { x: ev.clientX, y: ev.clientY, vx, vy };
    moved = false;
  });
  frame.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const k = scale ?? fitScale();
    const dx = ev.clientX - drag.x;
    const dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) moved = true;
    if (!moved) return;
    vx = drag.vx - dx / k;
    vy = drag.vy - dy / k;
    apply();
  });
  const stop = () => {
    drag = null;
  };
  frame.addEventListener("pointerup", stop);
  frame.addEventListener("pointerleave", stop);
  frame.addEventListener(
    "click",
    (ev) => {
      if (moved) {
        ev.preventDefault();
        ev.stopPropagation();
        moved = false;
      }
    },
    true,
  );
  frame.addEventListener("keydown", (ev) => {
    if (ev.target !== frame) return;
    const k = scale ?? fitScale();
    const step = 60 / k;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[ev.key]) {
      vx += moves[ev.key][0];
      vy += moves[ev.key][1];
      apply();
      ev.preventDefault();
    } else if (ev.key === "+" || ev.key === "=") zoom(1.25);
    else if (ev.key === "-") zoom(0.8);
  });
  window.addEventListener("resize", () => svg && svg.isConnected && apply());
  draw();
  return {
    element: root,
    update(newProven) {
      proven = newProven;
      const keep = { scale, vx, vy };
      draw();
      ({ scale, vx, vy } = keep);
    },
  };
}
