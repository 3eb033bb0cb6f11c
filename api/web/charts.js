// kpledger explorer: charts, drawn as SVG by hand.
//
// Bars use percentage coordinates (no viewBox), so text keeps its size on a
// phone while the bars stretch. The lineage graph is in lineage.js.

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
