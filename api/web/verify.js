// kpledger explorer: provenance bundles (kpledger-bundle/2) verified in the browser.
//
// This implements steps 1-4 of the verification that ledger/bundle.py specifies
// (its module docstring is the format's spec), with the browser's own WebCrypto
// (SHA-256 and Ed25519) and nothing else:
//
//   1 parse      RFC 8785 canonical JSON, no floats, exact fields and limits,
//                every header and record schema-checked, sorted and unique
//   2 registry   governance threshold signatures; the network id; the trust
//                anchor (a pinned registry or network id, else the node's word)
//   3 headers    sizes and times, the headers each record needs, the KP prefix,
//                every header signature under the key its chain has at its
//                height (the key history from rotations and replacements),
//                prev links and witnessed hashes
//   4 inclusion  every record's RFC 9162 inclusion proof against its block's root
//
// Step 5 (replaying the custody rules) is not run here: `kpl verify` does it.
// A partial step 6 checks that the bundle is about the parcel asked for, that a
// record creates it, and its checkpoints: on every chain that acted on it (or to
// which a certificate carrying it goes), its slot in the chain's parcel state at
// the newest cosigned header counts exactly the bundle's records of it there
// (docs/spec/bundle.md section 4.1), so no record of the subject is left out.
//
// Failures read exactly like the Python verifier's, and carry its error code (`code`,
// docs/spec/bundle.md section 10; tests/web/test_web_spec.py compares both):
//   "step 4 (inclusion): record BW/2 inclusion proof: root: root mismatch: ..."

export const FORMAT = "kpledger-bundle/2";
export const STEPS = ["parse", "registry", "headers", "inclusion", "replay", "subject", "disclosures"];
const GOVERNANCE = "KP";
const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;
const MAX_RECORDS = 10000;
const MAX_HEADERS = 30000;
const MAX_PROOF = 64;
const MAX_INDEX = Number.MAX_SAFE_INTEGER;
const MAX_WITNESS = 500;
const MAX_STATES = 64;
const MAX_STATE_DEPTH = 256;
const HEADER_VERSION = 2;
const MAX_LINES = 1000;
const MAX_PARTICIPANTS = 500;
const MAX_RECORD_BYTES = 256 * 1024;
const CARAT_MAX = 10 ** 12;

const TAG = {
  HEADER: "KPL-HEADER-V1\n",
  REGISTRY: "KPL-REGISTRY-V1\n",
  SIG_HEADER: "KPL-SIG-HEADER-V1\n",
  SIG_REGISTRY: "KPL-SIG-REGISTRY-V1\n",
  SIG_RECORD: "KPL-SIG-RECORD-V1\n",
  STATE_KEY: "KPL-STATE-KEY-V1\n",
  STATE_LEAF: "KPL-STATE-LEAF-V1\n",
  STATE_NODE: "KPL-STATE-NODE-V1\n",
};
const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

// The patterns of ledger/schema.py (Python's \A ... \Z), with their Python text for messages.
const CODE = [/^[A-Z]{2,8}$/, "\\A[A-Z]{2,8}\\Z"];
const LOCAL_ID = [/^[A-Z]{2,8}-[A-Za-z0-9][A-Za-z0-9._-]{0,47}$/, "\\A[A-Z]{2,8}-[A-Za-z0-9][A-Za-z0-9._-]{0,47}\\Z"];
const RECORD_ID = [/^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$/, "\\A[A-Za-z0-9][A-Za-z0-9._:-]{0,79}\\Z"];
const QUARTER = [/^[12][0-9]{3}-Q[1-4]$/, "\\A[12][0-9]{3}-Q[1-4]\\Z"];
const INDICATOR = [/^[a-z][a-z0-9_]{0,30}(\.[a-z][a-z0-9_]{0,30}){0,2}$/, "\\A[a-z][a-z0-9_]{0,30}(\\.[a-z][a-z0-9_]{0,30}){0,2}\\Z"];
const TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const CONTROL = /[\x00-\x1f\x7f]/;
// what Python's str.strip() removes
const PY_SPACE = "[\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const EDGE_SPACE = new RegExp(`^${PY_SPACE}|${PY_SPACE}$`);
const HEX = /^(?:[0-9a-f]{2})*$/;

const HS_CODES = ["7102.10", "7102.21", "7102.31"];
const PARTY_ROLES = ["exporter", "importer", "manufacturer", "miner", "trader"];
const PARTICIPANT_ROLES = ["auditor", "authority", "observer"];
const REFUSAL_CODES = ["documents", "other", "restricted-origin", "seal-broken", "weight-discrepancy"];
// the artisanal chain (ledger/records.py)
const METHODS = ["alluvial", "artisanal", "industrial"];
const DIGGER_TYPES = ["cooperative", "digger"];
const BUYER_TYPES = ["collector", "comptoir"];
const END_REASONS = ["expired", "revoked", "surrendered"];
const LAT_MAX = 90000000;
const LON_MAX = 180000000;
const MAX_VERTICES = 200;
const MAX_ZONES = 50;
const SCORE_MAX = 100;
// the quarterly statistics report (ledger/records.py StatsReport)
const MAX_PARTNERS = 300;
const CENTS_MAX = 10 ** 15;
const KEY_KINDS = new Set(["key.rotate", "key.replace", "member.admit"]);
const MAX_KEY_PROOFS = 1000; // ledger/keyhistory.py
const DM = "disclosure-mismatch";

// ---------------------------------------------------------------- errors

/**
 * Input that fails a check; `field` is the dotted path, `code` the error code of
 * docs/spec/bundle.md (the `code` of the ledger/errors.py class Python raises there).
 */
export class InvalidData extends Error {
  constructor(message, field = "", code = "schema") {
    super(field ? `${field}: ${message}` : message);
    this.field = field;
    this.detail = message;
    this.code = code;
  }
}

function pyList(items) {
  return `[${items.map((s) => `'${s}'`).join(", ")}]`;
}

// ---------------------------------------------------------------- bytes

const utf8 = new TextEncoder();

export function bytesToHex(bytes) {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

export function hexToBytes(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
  return out;
}

function concat(...parts) {
  const chunks = parts.map((p) => (typeof p === "string" ? utf8.encode(p) : p));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** WebCrypto, or a clear reason why this page cannot verify anything. */
export function cryptoProblem() {
  if (!globalThis.isSecureContext) {
    return "this page is not a secure context (open it over HTTPS or on localhost): the browser withholds WebCrypto";
  }
  if (!globalThis.crypto || !globalThis.crypto.subtle) return "this browser has no WebCrypto";
  return null;
}

function subtle() {
  const problem = cryptoProblem();
  if (problem) throw new InvalidData(problem, "", "unsupported-browser");
  return globalThis.crypto.subtle;
}

/** SHA-256 of the concatenated parts (strings as UTF-8). */
export async function sha256(...parts) {
  return new Uint8Array(await subtle().digest("SHA-256", concat(...parts)));
}

const keyCache = new Map();

async function importEd25519(keyHex) {
  let key = keyCache.get(keyHex);
  if (!key) {
    key = subtle().importKey("raw", hexToBytes(keyHex), { name: "Ed25519" }, false, ["verify"]);
    keyCache.set(keyHex, key);
  }
  try {
    return await key;
  } catch (err) {
    keyCache.delete(keyHex);
    if (err && err.name === "NotSupportedError") {
      throw new InvalidData("this browser's WebCrypto has no Ed25519", "", "unsupported-browser");
    }
    throw new InvalidData(`not an Ed25519 public key: ${err}`, "", "signature");
  }
}

/** True when `sigBytes` is an Ed25519 signature by the key `keyHex` over `tag || payload`. */
export async function ed25519Verify(keyHex, sigBytes, tag, payload) {
  const key = await importEd25519(keyHex);
  return subtle().verify({ name: "Ed25519" }, key, sigBytes, concat(tag, payload));
}

/** A key id: the lower-case hex SHA-256 of the raw 32-byte public key. */
export async function keyId(keyHex) {
  return bytesToHex(await sha256(hexToBytes(keyHex)));
}

// ---------------------------------------------------------------- RFC 8785

function wellFormed(text) {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

/**
 * RFC 8785 (JCS) text of a value made of objects, arrays, strings, integers,
 * booleans and null: keys sorted by UTF-16 code units, each string and integer
 * as ECMAScript's JSON.stringify writes it (which is what RFC 8785 prescribes).
 * Floats, integers beyond 2^53 - 1 and lone surrogates are refused, as the
 * Python side refuses them.
 */
export function canonicalize(value) {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isSafeInteger(value)) {
        throw new InvalidData(`floats are not allowed in signed documents (got ${value})`, "", "encoding");
      }
      return JSON.stringify(Object.is(value, -0) ? 0 : value);
    case "string":
      if (!wellFormed(value)) throw new InvalidData("a string holds a lone surrogate", "", "encoding");
      return JSON.stringify(value);
    case "object":
      if (Array.isArray(value)) return `[${value.map(canonicalize).join(",")}]`;
      return `{${Object.keys(value)
        .sort()
        .map((k) => `${canonicalize(k)}:${canonicalize(value[k])}`)
        .join(",")}}`;
    default:
      throw new InvalidData(`${typeof value} is not JSON`, "", "encoding");
  }
}

/**
 * Parse bytes that must already be canonical: UTF-8 (no BOM), JSON, no floats,
 * no duplicate keys (a duplicate makes the canonical text differ), and equal to
 * their own RFC 8785 form. Returns {value, text}.
 */
// Python's json.scanner NUMBER_RE: integer part, then an optional fraction and exponent
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;

/** The first float literal (a number with a fraction or an exponent) that starts outside
 * strings before `end`, as Python's scanner would meet it in a value position; or null. */
function floatBefore(text, end) {
  let inString = false;
  let last = "";
  for (let i = 0; i < end; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
    } else if ((c === "-" || (c >= "0" && c <= "9")) && (last === ":" || last === "[" || last === ",")) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (m && (m[1] || m[2])) return m[0];
      if (m) i += m[0].length - 1;
    }
    if (c !== " " && c !== "\n" && c !== "\t" && c !== "\r") last = c;
  }
  return null;
}

export function parseCanonical(data, what = "document") {
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(data);
  } catch {
    throw new InvalidData(`${what}: not valid JSON: not UTF-8`, "", "encoding");
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const at = /position (\d+)/.exec(err.message);
    const float = at ? floatBefore(text, Number(at[1])) : null;
    // Python's parser refuses a float literal as it meets it, before a later syntax error
    if (float !== null) throw new InvalidData(`${what}: floats are not allowed in signed documents (got ${float})`, "", "encoding");
    throw new InvalidData(`${what}: not valid JSON: ${err.message}`, "", "encoding");
  }
  let again;
  try {
    again = canonicalize(value);
  } catch (err) {
    if (err instanceof InvalidData) throw new InvalidData(`${what}: ${err.detail}`, "", "encoding");
    throw new InvalidData(`${what}: cannot canonicalise: ${err}`, "", "encoding");
  }
  if (again !== text) throw new InvalidData(`${what}: bytes are not in RFC 8785 canonical form`, "", "encoding");
  return { value, text };
}

// ---------------------------------------------------------------- schema

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Why a matched date or time is not a real one, in Python's datetime words; null if it is. */
function timeProblem(m, withTime) {
  const [y, mo, d, hh, mi, ss] = m.slice(1).map(Number);
  if (y < 1) return `year ${y} is out of range`;
  if (mo < 1 || mo > 12) return "month must be in 1..12";
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  if (d < 1 || d > days) return "day is out of range for month";
  if (!withTime) return null;
  if (hh > 23) return "hour must be in 0..23";
  if (mi > 59) return "minute must be in 0..59";
  if (ss > 59) return "second must be in 0..59";
  return null;
}

/** Typed fields of one object, refusing anything unexpected (ledger/schema.py's Fields). */
class Fields {
  constructor(value, path = "") {
    if (!isObject(value)) throw new InvalidData("expected an object", path);
    this.d = value;
    this.path = path;
    this.seen = new Set();
  }
  at(name) {
    return this.path ? `${this.path}.${name}` : name;
  }
  has(name) {
    return Object.hasOwn(this.d, name);
  }
  get(name) {
    this.seen.add(name);
    if (!this.has(name)) throw new InvalidData("is required", this.at(name));
    return this.d[name];
  }
  string(name, { pattern = null, max = 200 } = {}) {
    const v = this.get(name);
    const field = this.at(name);
    if (typeof v !== "string") throw new InvalidData("expected a string", field);
    const n = Array.from(v).length;
    if (!n || n > max) throw new InvalidData(`length must be 1..${max}`, field);
    if (CONTROL.test(v)) throw new InvalidData("no control characters", field);
    if (EDGE_SPACE.test(v)) throw new InvalidData("no surrounding spaces", field);
    if (pattern && !pattern[0].test(v)) throw new InvalidData(`does not match ${pattern[1]}`, field);
    return v;
  }
  optString(name, opts) {
    if (!this.has(name)) {
      this.seen.add(name);
      return null;
    }
    return this.string(name, opts);
  }
  choice(name, options) {
    const v = this.string(name, { max: 64 });
    if (!options.includes(v)) throw new InvalidData(`must be one of ${pyList(options)}`, this.at(name));
    return v;
  }
  integer(name, low, high) {
    const v = this.get(name);
    const field = this.at(name);
    if (typeof v !== "number" || !Number.isInteger(v)) throw new InvalidData("expected an integer", field);
    if (v < low || v > high) throw new InvalidData(`must be in ${low}..${high}`, field);
    return v;
  }
  optInteger(name, low, high) {
    if (!this.has(name)) {
      this.seen.add(name);
      return null;
    }
    return this.integer(name, low, high);
  }
  time(name) {
    const v = this.string(name, { max: 20 });
    const m = TIME.exec(v);
    if (!m) throw new InvalidData("expected a UTC time like 2026-01-31T12:00:00Z", this.at(name));
    const problem = timeProblem(m, true);
    if (problem) throw new InvalidData(`not a real time: ${problem}`, this.at(name));
    return v;
  }
  date(name) {
    const v = this.string(name, { max: 10 });
    const m = DATE.exec(v);
    if (!m) throw new InvalidData("expected a date like 2026-01-31", this.at(name));
    const problem = timeProblem(m, false);
    if (problem) throw new InvalidData(`not a real date: ${problem}`, this.at(name));
    return v;
  }
  hex(name, size, max = size * 2) {
    return checkHex(this.string(name, { max }), this.at(name), size);
  }
  items(name, low, high) {
    const v = this.get(name);
    const field = this.at(name);
    if (!Array.isArray(v)) throw new InvalidData("expected a list", field);
    if (v.length < low || v.length > high) throw new InvalidData(`must hold ${low}..${high} items`, field);
    return v.map((item, i) => [`${field}[${i}]`, item]);
  }
  obj(name) {
    return new Fields(this.get(name), this.at(name));
  }
  mapping(name) {
    const v = this.get(name);
    if (!isObject(v)) throw new InvalidData("expected an object", this.at(name));
    return v;
  }
  done() {
    const extra = Object.keys(this.d)
      .filter((k) => !this.seen.has(k))
      .sort();
    if (extra.length) throw new InvalidData(`unknown field(s) ${pyList(extra)}`, this.path);
  }
}

// A binary field's type and length are its schema, its digits its encoding (bundle.md
// section 1; ledger/canonical.py's from_hex, same order and words).
function checkHex(text, field, size) {
  if (typeof text !== "string") throw new InvalidData("expected a string of lower-case hex", field);
  if (size !== undefined && text.length !== size * 2) {
    throw new InvalidData(`expected ${size * 2} hex digits (${size} bytes), got ${text.length}`, field);
  }
  if (!HEX.test(text)) throw new InvalidData("expected lower-case hex", field, "encoding");
  return text;
}

/** One cell of a quarterly report (ledger/records.py _cell); answers its partner. */
function statsCell(f, countName, partner) {
  const code = partner ? f.string("partner", { pattern: CODE, max: 8 }) : "";
  f.integer("carats", 0, CARAT_MAX);
  f.integer(countName, 0, MAX_INDEX);
  f.optInteger("value", 0, CENTS_MAX);
  f.done();
  return code;
}

function unique(ids, field) {
  const seen = new Set();
  for (const id of ids) {
    if (seen.has(id)) throw new InvalidData(`${id} appears twice`, field);
    seen.add(id);
  }
}

function composition(value, field) {
  if (!isObject(value) || !Object.keys(value).length || Object.keys(value).length > 300) {
    throw new InvalidData("expected an object of 1..300 origins", field);
  }
  for (const [code, carats] of Object.entries(value)) {
    if (!CODE[0].test(code)) throw new InvalidData(`origin '${code}' is not a participant code`, field);
    if (typeof carats !== "number" || !Number.isInteger(carats) || carats < 0 || carats > CARAT_MAX) {
      throw new InvalidData(`origin ${code} must be an integer 0..${CARAT_MAX}`, field);
    }
  }
}

const weight = (f, n) => f.integer(n, 1, CARAT_MAX);
// record format 2: a confidential field holds a salted commitment {"c": <64 hex>}
const committed = (f, n) => {
  const v = f.get(n);
  if (!isObject(v)) {
    throw new InvalidData(`expected a commitment {"c": <64 hex digits>}: a confidential field is committed in record format 2 (submit it in clear to the writer's node)`, f.at(n));
  }
  const c = new Fields(v, f.at(n));
  c.hex("c", 32, 64);
  c.done();
};
const localId = (f, n) => f.string(n, { pattern: LOCAL_ID, max: 56 });
const code = (f, n) => f.string(n, { pattern: CODE, max: 8 });
const pubkey = (f, n) => f.hex(n, 32, 64);

function listId([path, item]) {
  if (typeof item !== "string") throw new InvalidData("expected a string", path);
  const f = new Fields({ id: item });
  try {
    return localId(f, "id");
  } catch (err) {
    throw new InvalidData(err.detail, path, err.code);
  }
}

function location(f, name) {
  const points = f.items(name, 1, MAX_VERTICES).map(([path, item]) => {
    const x = new Fields(item, path);
    x.integer("lat", -LAT_MAX, LAT_MAX);
    x.integer("lon", -LON_MAX, LON_MAX);
    x.done();
    return path;
  });
  if (points.length === 2) throw new InvalidData("one point, or a polygon of 3 or more vertices", f.at(name));
}

function validity(f) {
  const start = f.date("valid_from");
  const end = f.date("valid_until");
  if (end < start) throw new InvalidData(`ends ${end}, before it starts ${start}`, f.at("valid_until"));
}

/** The body schema of each record kind (ledger/records.py). */
const BODIES = {
  "party.register": (f) => {
    localId(f, "party");
    committed(f, "name");
    f.choice("role", PARTY_ROLES);
    committed(f, "address");
  },
  "party.revoke": (f) => {
    localId(f, "party");
    f.string("reason", { max: 300 });
  },
  "parcel.register": (f) => {
    localId(f, "parcel");
    localId(f, "custodian");
    weight(f, "weight");
    committed(f, "value");
    f.choice("hs", HS_CODES);
    f.string("mine", { max: 120 });
    f.date("produced");
  },
  "parcel.transfer": (f) => {
    localId(f, "parcel");
    localId(f, "to");
    if (f.has("value")) committed(f, "value");
  },
  "parcel.split": (f) => {
    const parent = localId(f, "parcel");
    const ids = f.items("children", 2, MAX_LINES).map(([path, item]) => {
      const c = new Fields(item, path);
      const id = localId(c, "parcel");
      weight(c, "weight");
      committed(c, "value");
      c.optString("custodian", { pattern: LOCAL_ID, max: 56 });
      c.done();
      return id;
    });
    unique([...ids, parent], f.at("children"));
  },
  "parcel.merge": (f) => {
    const parents = f.items("parents", 2, MAX_LINES).map(listId);
    const child = localId(f, "parcel");
    unique([...parents, child], f.at("parents"));
    localId(f, "custodian");
    weight(f, "weight");
    committed(f, "value");
  },
  "certificate.issue": (f) => {
    localId(f, "number");
    code(f, "destination");
    localId(f, "exporter");
    const importer = f.obj("importer");
    committed(importer, "name");
    committed(importer, "address");
    importer.done();
    const ids = f.items("lines", 1, MAX_LINES).map(([path, item]) => {
      const x = new Fields(item, path);
      const id = localId(x, "parcel");
      weight(x, "weight");
      committed(x, "value");
      x.choice("hs", HS_CODES);
      composition(x.mapping("origin"), x.at("origin"));
      x.done();
      return id;
    });
    unique(ids, f.at("lines"));
    f.integer("carats", 1, CARAT_MAX);
    committed(f, "value");
    f.integer("parcels", 1, MAX_LINES);
    f.string("origin", { max: 8 });
    f.date("issued");
    f.date("expires");
    committed(f, "seal");
  },
  "certificate.confirm": (f) => {
    localId(f, "number");
    const ref = f.obj("ref");
    code(ref, "chain");
    ref.integer("index", 0, MAX_INDEX);
    ref.hex("hash", 32, 64);
    ref.done();
    localId(f, "custodian");
    const ids = f.items("received", 1, MAX_LINES).map(([path, item]) => {
      const x = new Fields(item, path);
      const id = localId(x, "parcel");
      weight(x, "weight");
      x.done();
      return id;
    });
    unique(ids, f.at("received"));
  },
  "certificate.refuse": (f) => {
    localId(f, "number");
    const ref = f.obj("ref");
    code(ref, "chain");
    ref.integer("index", 0, MAX_INDEX);
    ref.hex("hash", 32, 64);
    ref.done();
    f.choice("code", REFUSAL_CODES);
    f.string("reason", { max: 300 });
  },
  "parcel.release": (f) => {
    localId(f, "parcel");
    f.string("reason", { max: 300 });
  },
  "certificate.void": (f) => {
    localId(f, "number");
    f.string("reason", { max: 300 });
    f.integer("importer_height", 1, MAX_INDEX);
  },
  "policy.restrict_origin": (f) => {
    code(f, "origin");
    f.string("reason", { max: 300 });
  },
  "key.rotate": (f) => {
    pubkey(f, "key");
  },
  "member.admit": (f) => {
    code(f, "code");
    f.string("name", { max: 200 });
    f.choice("role", PARTICIPANT_ROLES);
    f.string("url", { max: 300 });
    pubkey(f, "key");
  },
  "member.suspend": (f) => {
    code(f, "code");
    f.string("reason", { max: 300 });
  },
  "key.replace": (f) => {
    code(f, "code");
    pubkey(f, "key");
    f.integer("from_height", 1, MAX_INDEX);
    f.string("reason", { max: 300 });
  },
  "claim.register": (f) => {
    localId(f, "claim");
    committed(f, "holder");
    localId(f, "zone");
    location(f, "location");
    validity(f);
  },
  "licence.digger": (f) => {
    localId(f, "licence");
    committed(f, "holder");
    f.choice("type", DIGGER_TYPES);
    localId(f, "claim");
    validity(f);
  },
  "licence.buyer": (f) => {
    localId(f, "licence");
    localId(f, "party");
    f.choice("type", BUYER_TYPES);
    unique(f.items("zones", 1, MAX_ZONES).map(listId), f.at("zones"));
    validity(f);
  },
  "licence.end": (f) => {
    localId(f, "licence");
    f.choice("reason", END_REASONS);
    f.date("date");
    f.string("note", { max: 300 });
  },
  "parcel.purchase": (f) => {
    localId(f, "parcel");
    localId(f, "buyer");
    localId(f, "digger");
    localId(f, "claim");
    f.choice("method", METHODS);
    weight(f, "weight");
    committed(f, "price");
    f.choice("hs", HS_CODES);
    f.date("bought");
  },
  "diagnostic.assess": (f) => {
    f.string("indicator", { pattern: INDICATOR, max: 64 });
    f.integer("score", 0, SCORE_MAX);
    f.string("evidence", { max: 1000 });
    f.date("assessed");
  },
  "stats.report": (f) => {
    f.string("quarter", { pattern: QUARTER, max: 7 });
    statsCell(f.obj("production"), "parcels", false);
    for (const name of ["exports", "imports"]) {
      const partners = f
        .items(name, 0, MAX_PARTNERS)
        .map(([path, item]) => statsCell(new Fields(item, path), "certificates", true));
      const sorted = [...new Set(partners)].sort();
      if (sorted.length !== partners.length || sorted.some((p, i) => p !== partners[i])) {
        throw new InvalidData("partners must be sorted and distinct", f.at(name));
      }
    }
  },
};
BODIES["policy.lift_origin"] = BODIES["policy.restrict_origin"];
BODIES["member.reinstate"] = BODIES["member.suspend"];
const KINDS = Object.keys(BODIES).sort();

function sigList(f, name, low) {
  return f.items(name, low, 64).map(([path, item]) => {
    const s = new Fields(item, path);
    const out = { key_id: s.hex("key_id", 32, 64), sig: s.hex("sig", 64, 128) };
    s.done();
    return out;
  });
}

/** A record as on the wire (Record.from_value): envelope and body. */
function checkRecord(value, path) {
  const f = new Fields(value, path);
  const version = value && typeof value === "object" ? value.v : undefined;
  if (Number.isInteger(version) && version !== 2) {
    throw new InvalidData(`record format version ${version} is not accepted: this network writes and reads version 2 (committed confidential fields)`, f.at("v"), "unsupported-version");
  }
  f.integer("v", 2, 2);
  f.hex("network", 32, 64);
  code(f, "chain");
  const kind = f.choice("kind", KINDS);
  f.string("id", { pattern: RECORD_ID, max: 80 });
  f.time("time");
  const body = f.obj("body");
  BODIES[kind](body);
  body.done();
  if (f.has("sigs")) sigList(f, "sigs", 1);
  f.done();
  const text = canonicalize(value);
  const size = utf8.encode(text).length;
  if (size > MAX_RECORD_BYTES) {
    throw new InvalidData(`record is ${size} bytes; the limit is ${MAX_RECORD_BYTES}`, path);
  }
  return text;
}

/** A block header (Header.from_json); returns its canonical text. */
function checkHeader(value, path) {
  const f = new Fields(value, path);
  const version = value.v;
  if (version !== HEADER_VERSION && typeof version === "number" && Number.isInteger(version)) {
    throw new InvalidData(
      `header format ${version}: this network writes and reads format ${HEADER_VERSION} (format 1 has no parcel state commitment)`,
      f.at("v"),
      "unsupported-version",
    );
  }
  f.integer("v", HEADER_VERSION, HEADER_VERSION);
  f.hex("network", 32, 64);
  const chain = code(f, "chain");
  f.integer("height", 1, MAX_INDEX);
  f.hex("prev", 32, 64);
  f.integer("size", 0, MAX_INDEX);
  f.hex("root", 32, 64);
  f.hex("state", 32, 64);
  f.time("time");
  const chains = f.items("witness", 0, MAX_WITNESS).map(([wpath, item]) => {
    const w = new Fields(item, wpath);
    const c = code(w, "chain");
    w.integer("height", 1, MAX_INDEX);
    w.hex("hash", 32, 64);
    w.done();
    return c;
  });
  const sorted = [...new Set(chains)].sort();
  if (sorted.length !== chains.length || sorted.some((c, i) => c !== chains[i])) {
    throw new InvalidData("witness must be sorted by chain, one entry each", f.at("witness"));
  }
  if (chains.includes(chain)) throw new InvalidData("a chain does not witness itself", f.at("witness"));
  f.hex("key_id", 32, 64);
  f.done();
  return canonicalize(value);
}

function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareKeys([c1, n1], [c2, n2]) {
  return cmp(c1, c2) || n1 - n2;
}

/** A slot proof of the subject's parcel state (ledger/statetree.py StateProof.from_json). */
function checkSlot(value, path) {
  const f = new Fields(value, path);
  const count = f.integer("count", 0, MAX_INDEX);
  const record = count > 0 ? f.hex("record", 32, 64) : null;
  const steps = f.items("path", 0, MAX_STATE_DEPTH).map(([p, h]) => checkHex(h, p, 32));
  let other = null;
  if (count === 0 && f.has("other")) {
    const o = new Fields(f.mapping("other"), f.at("other"));
    other = { key: o.hex("key", 32, 64), record: o.hex("record", 32, 64), count: o.integer("count", 1, MAX_INDEX) };
    o.done();
  }
  f.done();
  return { count, record, path: steps, other };
}

/** Step 1 after the bytes: the bundle's fields. */
function checkBundle(value) {
  const f = new Fields(value);
  const format = f.string("format", { max: 64 });
  if (format !== FORMAT) {
    throw new InvalidData(`unsupported format '${format}'; this verifier reads ${FORMAT}`, "format");
  }
  const registry = f.mapping("registry");
  const subject = f.string("subject", { pattern: LOCAL_ID, max: 56 });
  const headers = f.items("headers", 1, MAX_HEADERS).map(([path, item]) => {
    const s = new Fields(item, path);
    const header = s.mapping("header");
    const raw = checkHeader(header, s.at("header"));
    const sig = s.hex("sig", 64, 128);
    s.done();
    return { header, raw, sig, name: `${header.chain}/${header.height}` };
  });
  const records = f.items("records", 1, MAX_RECORDS).map(([path, item]) => {
    const r = new Fields(item, path);
    const index = r.integer("index", 0, MAX_INDEX);
    const proof = r.items("proof", 0, MAX_PROOF).map(([hp, h]) => checkHex(h, hp, 32));
    const record = r.mapping("record");
    const raw = checkRecord(record, r.at("record"));
    r.done();
    return { index, proof, record, raw, chain: record.chain, name: `${record.chain}/${index}` };
  });
  const state = [];
  for (const [path, item] of f.items("state", 0, MAX_STATES)) {
    const x = new Fields(item, path);
    const chain = code(x, "chain");
    const height = x.integer("height", 1, MAX_INDEX);
    const slot = checkSlot(x.mapping("slot"), x.at("slot"));
    x.done();
    if (state.length && state[state.length - 1].chain >= chain) {
      throw new InvalidData("state must be sorted by chain, one each", path);
    }
    state.push({ chain, height, slot });
  }
  // optional: the disclosures an entitled caller's bundle carries (checked at step 7)
  const disclosures = f.has("disclosures")
    ? f.items("disclosures", 1, 100000).map(([path, item]) => {
        const d = new Fields(item, path);
        const out = { record: d.hex("record", 32, 64), path: d.string("path", { max: 120 }), salt: d.hex("salt", 32, 64), value: d.get("value") };
        d.done();
        if (!out.path.startsWith("body.")) throw new InvalidData("a disclosure's path names a field of the body", `${path}.path`);
        const cents = /\.(value|price)$/.test(out.path);
        if (cents ? !Number.isInteger(out.value) || out.value < 0 : typeof out.value !== "string") {
          throw new InvalidData(cents ? "expected an integer (US cents)" : "expected a string", `${path}.value`);
        }
        return out;
      })
    : [];
  f.done();
  for (let i = 1; i < headers.length; i++) {
    const a = [headers[i - 1].header.chain, headers[i - 1].header.height];
    if (compareKeys(a, [headers[i].header.chain, headers[i].header.height]) >= 0) {
      throw new InvalidData("headers must be sorted by (chain, height), one each", `headers[${i}]`);
    }
  }
  for (let i = 1; i < records.length; i++) {
    if (compareKeys([records[i - 1].chain, records[i - 1].index], [records[i].chain, records[i].index]) >= 0) {
      throw new InvalidData("records must be sorted by (chain, index), one each", `records[${i}]`);
    }
  }
  return { registry, subject, headers, records, disclosures, state };
}

// ---------------------------------------------------------------- registry

/**
 * Check a signed registry document ({registry, sigs}) as Registry.parse does:
 * its schema, then the governance threshold. Returns what the verifier needs.
 */
export async function checkRegistry(doc) {
  const outer = new Fields(doc);
  const body = outer.mapping("registry");
  const sigs = sigList(outer, "sigs", 0);
  outer.done();
  const f = new Fields(body, "registry");
  f.integer("v", 1, 1);
  const name = f.string("name", { max: 100 });
  f.time("created");
  const participants = f.items("participants", 1, MAX_PARTICIPANTS).map(([path, item]) => {
    const p = new Fields(item, path);
    const out = {
      code: code(p, "code"),
      name: p.string("name", { max: 200 }),
      role: p.choice("role", PARTICIPANT_ROLES),
      url: p.string("url", { max: 300 }),
      key: pubkey(p, "key"),
    };
    p.done();
    return out;
  });
  const codes = participants.map((p) => p.code);
  if (new Set(codes).size !== codes.length) {
    throw new InvalidData("participant codes must be unique", "registry.participants");
  }
  if (codes.includes(GOVERNANCE)) {
    throw new InvalidData(`${GOVERNANCE} is the governance chain, not a participant`, "registry.participants");
  }
  const g = f.obj("governance");
  const keys = g.items("keys", 1, 64).map(([path, k]) => checkHex(k, path, 32));
  const ids = await Promise.all(keys.map(keyId));
  if (new Set(ids).size !== ids.length) {
    throw new InvalidData("governance keys must be distinct", "registry.governance.keys");
  }
  const threshold = g.integer("threshold", 1, keys.length);
  // the KP sealer (secretariat) signs the KP chain's headers; default: the first authority
  const authorities = participants.filter((p) => p.role === "authority").map((p) => p.code);
  let sealer = authorities[0];
  if (g.has("sealer")) {
    sealer = code(g, "sealer");
    if (!authorities.includes(sealer)) {
      throw new InvalidData(`the KP sealer ${sealer} must be an authority of the registry`, "registry.governance.sealer");
    }
  }
  g.done();
  const params = f.obj("params");
  params.integer("tolerance_bp", 0, 10000);
  params.integer("max_validity_days", 1, 3660);
  params.integer("max_block_records", 1, 100000);
  params.integer("max_block_bytes", 1024, 256 * 1024 * 1024);
  params.integer("heartbeat_seconds", 1, 86400);
  params.optInteger("issue_backdate_days", 0, 31);
  const cosignParam = params.optInteger("cosign", 0, 64);
  params.optInteger("min_cell", 1, 1000);
  params.done();
  if (cosignParam !== undefined && cosignParam !== null && cosignParam > Math.max(authorities.length - 1, 0)) {
    throw new InvalidData(
      `cosign ${cosignParam} exceeds the ${authorities.length} authorities minus one`,
      "registry.params.cosign",
    );
  }
  // other authorities that must witness a block (Registry.cosign)
  const cosign = cosignParam ?? Math.max(0, Math.min(2, authorities.length - 1));
  f.done();
  const bodyText = canonicalize(body);
  const governance = keys.map((key, i) => ({ key, id: ids[i] }));
  await threshold_(TAG.SIG_REGISTRY, bodyText, sigs, governance, threshold, "genesis registry");
  // every signature must count: no unknown, duplicate or invalid one (bundle step 2)
  const byId = new Map(governance.map((k) => [k.id, k]));
  const seen = new Set();
  for (const [i, s] of sigs.entries()) {
    const field = `registry.sigs[${i}]`;
    const key = byId.get(s.key_id);
    if (!key) throw new InvalidData(`key ${s.key_id.slice(0, 16)} is not a governance key`, field, "signature");
    if (seen.has(s.key_id)) throw new InvalidData(`key ${s.key_id.slice(0, 16)} signs twice`, field, "signature");
    seen.add(s.key_id);
    if (!(await ed25519Verify(key.key, hexToBytes(s.sig), TAG.SIG_REGISTRY, bodyText))) {
      throw new InvalidData(`signature does not verify under key ${key.id.slice(0, 16)}`, field, "signature");
    }
  }
  const network = bytesToHex(await sha256(TAG.REGISTRY, bodyText));
  const kpKey = sealer ? participants.find((p) => p.code === sealer).key : null;
  return { network, name, participants, governance, threshold, kpKey, cosign, text: canonicalize(doc) };
}

/** verify_threshold: at least `threshold` distinct known keys signed; the rest count for nothing. */
async function threshold_(tag, payload, sigs, keys, threshold, what) {
  const byId = new Map(keys.map((k) => [k.id, k]));
  const valid = new Set();
  for (const s of sigs) {
    const key = byId.get(s.key_id);
    if (!key || valid.has(s.key_id)) continue;
    if (await ed25519Verify(key.key, hexToBytes(s.sig), tag, payload)) valid.add(s.key_id);
  }
  if (valid.size < threshold) {
    throw new InvalidData(`${what}: signed by ${valid.size} of ${threshold} required`, "", "threshold");
  }
}

// ---------------------------------------------------------------- RFC 9162

function largestPowerOfTwoBelow(n) {
  let k = 1n;
  while (k * 2n < n) k *= 2n;
  return k;
}

/** The number of hashes PATH(index, D[0:size]) has (RFC 9162 2.1.3.1). */
function pathLength(index, size) {
  let lo = 0n;
  let hi = BigInt(size);
  const i = BigInt(index);
  let n = 0;
  while (hi - lo > 1n) {
    const mid = lo + largestPowerOfTwoBelow(hi - lo);
    if (i < mid) hi = mid;
    else lo = mid;
    n++;
  }
  return n;
}

export async function leafHash(recordText) {
  return sha256(LEAF, recordText);
}

/**
 * RFC 9162 section 2.1.3.2, with the length and index checks up front
 * (ledger/merkle.py's verify_inclusion, same messages). Hashes are hex.
 */
const IP = "inclusion-proof";

export async function verifyInclusion(leafHex, index, size, proofHex, rootHex) {
  if (size <= 0) throw new InvalidData(`tree size ${size}: an empty tree includes no leaf`, "size", IP);
  if (index < 0 || index >= size) {
    throw new InvalidData(`leaf index ${index} is outside a tree of size ${size}`, "index", IP);
  }
  const want = pathLength(index, size);
  const got = proofHex.length;
  const where = `leaf ${index} of ${size}`;
  if (got > want) {
    throw new InvalidData(
      `proof has ${got} hashes, ${where} takes exactly ${want}: too long (extra or garbage elements)`,
      "proof",
      IP,
    );
  }
  if (got < want) {
    throw new InvalidData(`proof has ${got} hashes, ${where} takes exactly ${want}: too short (truncated)`, "proof", IP);
  }
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = hexToBytes(leafHex);
  for (const p of proofHex.map(hexToBytes)) {
    if (sn === 0n) throw new InvalidData("proof is longer than the path to the root", "proof", IP);
    if (fn & 1n || fn === sn) {
      r = await sha256(NODE, p, r);
      while (fn && !(fn & 1n)) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await sha256(NODE, r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new InvalidData("proof is shorter than the path to the root", "proof", IP);
  const calculated = bytesToHex(r);
  if (calculated !== rootHex) {
    throw new InvalidData(`root mismatch: expected ${rootHex}, calculated ${calculated}`, "root", IP);
  }
}

// ---------------------------------------------------------------- the verifier

/** The key that signs `chain` at `height`, whatever KP header it witnesses (state.key_at). */
/** A node's rule between two headers of one chain, a below h (ledger/bundle.py _witness_order). */
function witnessOrder(a, h) {
  const before = new Map(a.witness.map((w) => [w.chain, w.height]));
  for (const w of h.witness) {
    if (w.height < (before.get(w.chain) ?? 0)) {
      throw new InvalidData(
        `witness of ${w.chain} went back from ${before.get(w.chain)} to ${w.height} (since ${a.chain}/${a.height})`,
        "witness",
        "block",
      );
    }
  }
  const named = new Set(h.witness.map((w) => w.chain));
  const dropped = [...before.keys()].filter((c) => !named.has(c)).sort();
  if (dropped.length) {
    throw new InvalidData(`witness dropped ${pyList(dropped)} (since ${a.chain}/${a.height})`, "witness", "block");
  }
}

function keyAt(events, chain, height) {
  let best = null;
  for (const e of events) {
    if (e.chain !== chain || e.from > height) continue;
    if (!best || e.from > best.from || (e.from === best.from && e.kp >= best.kp)) best = e;
  }
  return best;
}

/** The key events before any block (chain.genesis): each participant's registry key,
 * and KP's sealer key. */
function genesisKeys(registry) {
  const events = registry.participants.map((p) => ({ chain: p.code, from: 1, key: p.key, kp: 0 }));
  if (registry.kpKey) events.push({ chain: GOVERNANCE, from: 1, key: registry.kpKey, kp: 0 });
  return events;
}

/** SignedHeader.verify_signature under the key `events` give the header's chain at its
 * height; resolves to that key event. */
async function checkHeaderKey(events, header, raw, sigHex) {
  const event = keyAt(events, header.chain, header.height);
  if (!event) throw new InvalidData(`no key for ${header.chain} at height ${header.height}`, "key_id", "block");
  const id = await keyId(event.key);
  if (id !== header.key_id) {
    throw new InvalidData(
      `${header.chain}/${header.height} names key ${header.key_id.slice(0, 16)} but the chain's key at that height is ${id.slice(0, 16)}`,
      "header.key_id",
      "block",
    );
  }
  if (!(await ed25519Verify(event.key, hexToBytes(sigHex), TAG.SIG_HEADER, raw))) {
    throw new InvalidData(`signature does not verify under key ${id.slice(0, 16)}`, "sig", "signature");
  }
  return event;
}

/** The key event a key record proves once its block is known (state.apply of the kind). */
function keyChange(record, index, height) {
  const body = record.body;
  if (record.kind === "key.rotate") return { chain: record.chain, from: height + 1, key: body.key, kp: 0 };
  if (record.kind === "member.admit") return { chain: body.code, from: 1, key: body.key, kp: index + 1 };
  return { chain: body.code, from: body.from_height, key: body.key, kp: index + 1 };
}

/** The unsigned text of a governance record, and its threshold of governance signatures. */
async function governanceSigned(record, registry) {
  const unsigned = { ...record };
  delete unsigned.sigs;
  await threshold_(TAG.SIG_RECORD, canonicalize(unsigned), record.sigs || [], registry.governance, registry.threshold, `governance record ${record.id}`);
}

/** One item of a certificate proof's `keys` (KeyProof.from_json). */
async function keyProof(value, path) {
  if (!isObject(value) || Object.keys(value).sort().join() !== "header,index,proof,record,sig") {
    throw new InvalidData("a key proof is {record, index, proof, header, sig}", path);
  }
  const { index, proof } = value;
  if (!Number.isSafeInteger(index) || index < 0) throw new InvalidData("must be an index (0 or more)", `${path}.index`);
  if (!Array.isArray(proof) || proof.length > MAX_PROOF) {
    throw new InvalidData(`must be a list of at most ${MAX_PROOF} hashes`, `${path}.proof`);
  }
  const text = checkRecord(value.record, `${path}.record`);
  if (!KEY_KINDS.has(value.record.kind)) {
    throw new InvalidData(`a ${value.record.kind} record changes no key`, `${path}.record.kind`);
  }
  proof.forEach((h) => checkHex(h, `${path}.proof`, 32));
  const raw = checkHeader(value.header, `${path}.header`);
  checkHex(value.sig, `${path}.sig`, 64);
  return { record: value.record, index, proof, header: value.header, raw, sig: value.sig, leaf: bytesToHex(await leafHash(text)) };
}

/**
 * ledger/keyhistory.py learn_keys: the key events of `chain` (and of KP) from the
 * registry and a certificate proof's `keys` list. KP's records by index first (each
 * with the governance threshold, its KP header signed by KP's key at that height),
 * then the chain's own rotations by index (each header signed by the key it replaces);
 * every record proved in its header's tree. Throws naming the key record that fails.
 */
export async function learnKeys(registry, chain, keys) {
  if (keys == null) keys = [];
  if (!Array.isArray(keys) || keys.length > MAX_KEY_PROOFS) {
    throw new InvalidData(`must be a list of at most ${MAX_KEY_PROOFS} key proofs`, "keys");
  }
  const proofs = [];
  for (const [i, item] of keys.entries()) proofs.push(await keyProof(item, `keys[${i}]`));
  const byIndex = (a, b) => a.index - b.index;
  const governance = proofs.filter((p) => p.record.chain === GOVERNANCE).sort(byIndex);
  const own = proofs.filter((p) => p.record.chain !== GOVERNANCE).sort(byIndex);
  const events = genesisKeys(registry);
  for (const p of [...governance, ...own]) {
    try {
      events.push(await provenKeyChange(registry, chain, events, p));
    } catch (err) {
      if (!(err instanceof InvalidData)) throw err;
      throw new InvalidData(`key record ${p.record.chain}/${p.index}: ${err.message}`, "keys", err.code);
    }
  }
  return events;
}

async function provenKeyChange(registry, chain, events, p) {
  const { record: r, header: h } = p;
  if (r.network !== registry.network || h.network !== registry.network) {
    throw new InvalidData("is not of this network", "network");
  }
  if (h.chain !== r.chain) throw new InvalidData(`comes with a header of ${h.chain}`, "header.chain");
  if (r.chain === GOVERNANCE) {
    if (r.kind === "key.rotate" || ![chain, GOVERNANCE].includes(r.body.code)) {
      throw new InvalidData(`changes no key of ${chain}`, "record");
    }
    await governanceSigned(r, registry);
  } else if (r.chain !== chain || r.kind !== "key.rotate") {
    throw new InvalidData(`is not a key.rotate of ${chain}`, "record");
  }
  if (!keyAt(events, h.chain, h.height)) {
    throw new InvalidData(`no key of ${h.chain} at height ${h.height}`, "header.key_id");
  }
  await checkHeaderKey(events, h, p.raw, p.sig);
  await verifyInclusion(p.leaf, p.index, h.size, p.proof, h.root);
  return keyChange(r, p.index, h.height);
}

class Verifier {
  constructor(options) {
    this.options = options;
    this.step = 1;
    this.headers = new Map(); // "chain/height" -> {header, raw, sig, hash}
    this.heights = new Map(); // chain -> ascending heights
    this.blockOf = new Map(); // "chain/index" -> height
    this.inBlock = new Map(); // "chain/height" -> [records]
    this.proven = new Map(); // "chain/index" -> leaf hash (hex)
    this.signatures = 0;
  }

  /** Restate a failure inside as "step N (name): where: ..." (the Python verifier's words). */
  async at(where, fn) {
    try {
      return await fn();
    } catch (err) {
      if (err && err.bundleStep) throw err;
      const message = err instanceof InvalidData ? err.message : `unexpected error: ${err}`;
      const n = this.step;
      const code = err instanceof InvalidData ? err.code : "unexpected";
      const out = new InvalidData(`step ${n} (${STEPS[n - 1]}): ${where ? `${where}: ` : ""}${message}`, "", code);
      out.bundleStep = n;
      out.where = where;
      out.reason = message;
      throw out;
    }
  }

  async run(data) {
    this.step = 1;
    const bundle = await this.at("", async () => {
      if (data.length > MAX_BUNDLE_BYTES) {
        throw new InvalidData(`bundle is ${data.length} bytes; the limit is ${MAX_BUNDLE_BYTES}`);
      }
      return checkBundle(parseCanonical(data, "bundle").value);
    });
    this.bundle = bundle;
    this.done(1, `${bundle.headers.length} signed headers and ${bundle.records.length} records, canonical`);
    this.step = 2;
    const registry = await this.at("", () => this.registry(bundle));
    this.registryInfo = registry;
    this.done(2, `network ${registry.network.slice(0, 16)}…, signed by ${registry.threshold} of ${registry.governance.length} governance keys; ${this.anchor.text}`);
    this.step = 3;
    await this.at("", () => this.checkHeaders(bundle, registry));
    this.done(3, `${this.signatures} header signatures under each chain's key at its height`);
    this.step = 4;
    await this.at("", async () => {
      for (const r of bundle.records) await this.at(`record ${r.name} inclusion proof`, () => this.prove(r));
    });
    this.done(4, `${bundle.records.length} RFC 9162 inclusion proofs against their blocks' signed roots`);
    this.step = 5;
    this.skip(5, "not run in the browser: replaying the custody rules needs `kpl verify`");
    this.step = 6;
    await this.at("", () => this.subject(bundle));
    const checkpoints = await this.at("", () => this.checkpoints(bundle, registry));
    this.done(6, `the bundle proves parcel ${bundle.subject}'s records, none left out up to ${checkpoints.join(", ")} (without the replay)`);
    this.step = 7;
    await this.at("", () => this.disclosures(bundle));
    this.done(7, bundle.disclosures.length ? `${bundle.disclosures.length} disclosed values open their commitments` : "none carried (committed fields stay committed)");
  }

  /** Step 7: each disclosure opens the commitment at its path in a record of the bundle. */
  async disclosures(bundle) {
    const byLeaf = new Map();
    for (const r of bundle.records) byLeaf.set(bytesToHex(await leafHash(r.raw)), r.record);
    for (const [i, d] of bundle.disclosures.entries()) {
      const where = `disclosures[${i}] (${d.path})`;
      const record = byLeaf.get(d.record);
      if (!record) throw new InvalidData(`${where}: opens no record of the bundle`, d.path, DM);
      let here = record;
      for (const part of d.path.split(".")) {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$/.exec(part);
        here = m && here ? here[m[1]] : undefined;
        if (m && m[2] !== undefined) here = Array.isArray(here) ? here[Number(m[2])] : undefined;
      }
      if (!isObject(here) || typeof here.c !== "string") throw new InvalidData(`${where}: not a committed field of this record`, d.path, DM);
      const digest = bytesToHex(await sha256("KPL-COMMIT-V1\n", hexToBytes(d.salt), canonicalize(d.value)));
      if (digest !== here.c) throw new InvalidData(`${where}: the disclosed value and salt do not open its commitment`, d.path, DM);
    }
  }

  done(n, detail) {
    this.options.onStep?.({ n, name: STEPS[n - 1], status: "ok", detail });
  }

  skip(n, detail) {
    this.options.onStep?.({ n, name: STEPS[n - 1], status: "skipped", detail });
  }

  // ------------------------------------------------------------ step 2
  async registry(bundle) {
    const registry = await checkRegistry(bundle.registry);
    const { pinnedRegistry, pinnedNetwork, nodeNetwork } = this.options;
    const short = registry.network.slice(0, 16);
    if (pinnedRegistry) {
      if (canonicalize(pinnedRegistry) !== registry.text) {
        throw new InvalidData(
          `the bundle's registry (network ${short}) differs from the trusted registry`,
          "registry",
          "signature",
        );
      }
      this.anchor = { kind: "pinned-registry", text: "equal to the registry you pinned" };
    } else if (pinnedNetwork) {
      if (pinnedNetwork !== registry.network) {
        throw new InvalidData(
          `the bundle's registry is network ${short}, not the pinned network ${pinnedNetwork.slice(0, 16)}`,
          "registry",
          "signature",
        );
      }
      this.anchor = { kind: "pinned-network", text: "the network id you pinned" };
    } else if (nodeNetwork) {
      if (nodeNetwork !== registry.network) {
        throw new InvalidData(
          `the bundle's registry is network ${short}, but this node says its network is ${nodeNetwork.slice(0, 16)}`,
          "registry",
          "signature",
        );
      }
      this.anchor = {
        kind: "node",
        text: "the network id this node claims (GET /v1/heads): this trusts the node",
      };
    } else {
      this.anchor = { kind: "none", text: "no trust anchor: consistent only with the registry it carries" };
    }
    for (const s of bundle.headers) {
      if (s.header.network !== registry.network) {
        throw new InvalidData(`header ${s.name} belongs to another network`, "headers", "block");
      }
    }
    for (const r of bundle.records) {
      if (r.record.network !== registry.network) {
        throw new InvalidData(`record ${r.name} belongs to another network`, "records", "block");
      }
    }
    return registry;
  }

  // ------------------------------------------------------------ step 3
  kpSize(h) {
    if (h.chain === GOVERNANCE) return null;
    for (const w of h.witness) {
      if (w.chain === GOVERNANCE) return this.headers.get(`${w.chain}/${w.height}`).header.size;
    }
    return 0;
  }

  async checkHeaders(bundle, registry) {
    for (const s of bundle.headers) {
      const { chain, height } = s.header;
      this.headers.set(`${chain}/${height}`, s);
      if (!this.heights.has(chain)) this.heights.set(chain, []);
      this.heights.get(chain).push(height);
    }
    // 3a. along each chain, sizes and times never go backwards
    for (const [chain, heights] of this.heights) {
      for (let i = 1; i < heights.length; i++) {
        const [lo, hi] = [heights[i - 1], heights[i]];
        const a = this.headers.get(`${chain}/${lo}`).header;
        const h = this.headers.get(`${chain}/${hi}`).header;
        await this.at(`header ${chain}/${hi}`, () => {
          if (h.size < a.size) throw new InvalidData(`size ${h.size} is below ${chain}/${lo}'s ${a.size}`, "size", "block");
          if (h.time < a.time) throw new InvalidData(`time ${h.time} is before ${chain}/${lo}'s ${a.time}`, "time", "block");
          witnessOrder(a, h);
        });
      }
    }
    // 3b. the KP header every header witnesses is in the bundle (it fixes the keys)
    for (const [name, s] of this.headers) {
      for (const w of s.header.witness) {
        if (w.chain === GOVERNANCE && !this.headers.has(`${w.chain}/${w.height}`)) {
          await this.at(`header ${name}`, () => {
            throw new InvalidData(`witnesses ${w.chain}/${w.height}, which the bundle lacks`, "witness");
          });
        }
      }
    }
    // 3c. every record's block: the first header with size > index, and the one before
    for (const r of bundle.records) {
      await this.at(`record ${r.name}`, () => {
        const heights = this.heights.get(r.chain) || [];
        const pos = heights.findIndex((h) => this.headers.get(`${r.chain}/${h}`).header.size > r.index);
        if (pos < 0) throw new InvalidData(`no header of ${r.chain} in the bundle covers it`);
        const height = heights[pos];
        if (height > 1 && !this.headers.has(`${r.chain}/${height - 1}`)) {
          throw new InvalidData(
            `the bundle lacks ${r.chain}/${height - 1}, the header before its block ${r.chain}/${height}`,
          );
        }
        this.blockOf.set(r.name, height);
        const key = `${r.chain}/${height}`;
        if (!this.inBlock.has(key)) this.inBlock.set(key, []);
        this.inBlock.get(key).push(r);
      });
    }
    // 3d. the governance prefix the headers witness is complete
    const kpSize = Math.max(0, ...(this.heights.get(GOVERNANCE) || []).map((h) => this.headers.get(`KP/${h}`).header.size));
    const have = new Set(bundle.records.filter((r) => r.chain === GOVERNANCE).map((r) => r.index));
    for (let i = 0; i < kpSize; i++) {
      if (!have.has(i)) {
        await this.at(`record KP/${i}`, () => {
          throw new InvalidData(
            `the bundle's KP headers reach size ${kpSize}, so it must hold every KP record below it`,
          );
        });
      }
    }
    // 3e. signatures, under the key each chain has at each height
    const events = genesisKeys(registry);
    const order = [...this.heights.keys()].sort((a, b) => (a === GOVERNANCE ? -1 : b === GOVERNANCE ? 1 : cmp(a, b)));
    for (const chain of order) {
      for (const height of this.heights.get(chain)) {
        const s = this.headers.get(`${chain}/${height}`);
        await this.at(`header ${chain}/${height}`, async () => {
          await checkHeaderKey(events, s.header, s.raw, s.sig);
          this.signatures++;
        });
        for (const r of this.inBlock.get(`${chain}/${height}`) || []) {
          const kind = r.record.kind;
          if (KEY_KINDS.has(kind) && (kind !== "key.rotate") === (chain === GOVERNANCE)) {
            await this.at(`key history: record ${r.name}`, async () => {
              await this.prove(r);
              events.push(await this.keyEvent(r, registry, height));
            });
          }
        }
      }
    }
    // 3f. consecutive headers link up, and witnesses held are the very headers named
    for (const s of this.headers.values()) s.hash = bytesToHex(await sha256(TAG.HEADER, s.raw));
    for (const [chain, heights] of this.heights) {
      const first = this.headers.get(`${chain}/${heights[0]}`).header;
      if (first.height === 1 && first.prev !== registry.network) {
        await this.at(`header ${chain}/1`, () => {
          throw new InvalidData("prev of the first block must be the network id", "prev", "block");
        });
      }
      for (let i = 1; i < heights.length; i++) {
        const [lo, hi] = [heights[i - 1], heights[i]];
        const a = this.headers.get(`${chain}/${lo}`);
        const h = this.headers.get(`${chain}/${hi}`).header;
        if (hi === lo + 1 && h.prev !== a.hash) {
          await this.at(`header ${chain}/${hi}`, () => {
            throw new InvalidData(`prev is not the hash of ${chain}/${lo}`, "prev", "block");
          });
        }
      }
    }
    for (const [name, s] of this.headers) {
      for (const w of s.header.witness) {
        const held = this.headers.get(`${w.chain}/${w.height}`);
        if (held && held.hash !== w.hash) {
          await this.at(`header ${name}`, () => {
            throw new InvalidData(`witnesses a ${w.chain}/${w.height} other than the bundle's`, "witness", "witness-invalid");
          });
        }
      }
    }
    // 3g. every block holding a record is cosigned by `cosign` other authorities
    await this.checkCosigned(registry);
  }

  /** chain -> [from, to, authority]: that authority (not KP) witnessed chain/to, and
   * through the held headers from..to, every block in between (ledger/bundle.py _spans). */
  spans() {
    const start = new Map();
    for (const [chain, heights] of this.heights) {
      heights.forEach((height, i) => {
        const linked = i > 0 && heights[i - 1] === height - 1;
        start.set(`${chain}/${height}`, linked ? start.get(`${chain}/${heights[i - 1]}`) : height);
      });
    }
    const spans = new Map();
    for (const s of this.headers.values()) {
      const other = s.header.chain;
      if (other === GOVERNANCE) continue;
      for (const w of s.header.witness) {
        const key = `${w.chain}/${w.height}`;
        if (w.chain !== other && start.has(key)) {
          if (!spans.has(w.chain)) spans.set(w.chain, []);
          spans.get(w.chain).push([start.get(key), w.height, other]);
        }
      }
    }
    return spans;
  }

  static cosigners(spans, chain, height) {
    return [
      ...new Set((spans.get(chain) || []).filter(([lo, hi, o]) => lo <= height && height <= hi && o !== chain).map(([, , o]) => o)),
    ].sort();
  }

  async checkCosigned(registry) {
    const need = registry.cosign;
    if (!need) return;
    const spans = this.spans();
    const blocks = [...this.inBlock.keys()].map((k) => {
      const at = k.lastIndexOf("/");
      return [k.slice(0, at), Number(k.slice(at + 1))];
    });
    blocks.sort(compareKeys);
    for (const [chain, height] of blocks) {
      const have = Verifier.cosigners(spans, chain, height);
      if (have.length < need) {
        await this.at("", () => {
          throw new InvalidData(
            `block ${chain}/${height} is cosigned by ${have.length} other authorities (${have.length ? have.join(", ") : "none"}); the network's cosign is ${need}`,
            "",
            "not-cosigned",
          );
        });
      }
    }
  }

  async keyEvent(r, registry, height) {
    if (r.record.kind === "key.replace") await governanceSigned(r.record, registry);
    return keyChange(r.record, r.index, height);
  }

  // ------------------------------------------------------------ step 4
  async prove(r) {
    if (this.proven.has(r.name)) return;
    const h = this.headers.get(`${r.chain}/${this.blockOf.get(r.name)}`).header;
    const leaf = bytesToHex(await leafHash(r.raw));
    await verifyInclusion(leaf, r.index, h.size, r.proof, h.root);
    if (r.record.time > h.time) {
      throw new InvalidData(`dated ${r.record.time}, after its block ${h.chain}/${h.height} of ${h.time}`, "time", "block");
    }
    this.proven.set(r.name, leaf);
  }

  // ------------------------------------------------------------ step 6 (partial)
  subject(bundle) {
    const want = this.options.parcel;
    if (want && want !== bundle.subject) {
      throw new InvalidData(`the bundle is about parcel ${bundle.subject}, not ${want}`, "subject");
    }
    const creates = bundle.records.some(({ record: { kind, body } }) => {
      if (kind === "parcel.register" || kind === "parcel.merge" || kind === "parcel.purchase") {
        return body.parcel === bundle.subject;
      }
      if (kind === "parcel.split") return body.children.some((c) => c.parcel === bundle.subject);
      return false;
    });
    if (!creates) throw new InvalidData(`no record of the bundle creates parcel ${bundle.subject}`, "subject", "unknown-reference");
  }

  /** Step 6's checkpoints (bundle.md section 4.1 and step 6): on every chain that acted on
   * the subject, or to which a certificate carrying it goes, the subject's slot at the
   * chain's newest cosigned header holds as many of its records, ending with the same one,
   * as the bundle. Answers the checkpoints as "chain/height". */
  async checkpoints(bundle, registry) {
    const subject = bundle.subject;
    const certs = new Map();
    for (const { record } of bundle.records) {
      if (record.kind === "certificate.issue") {
        certs.set(record.body.number, { parcels: record.body.lines.map((l) => l.parcel), destination: record.body.destination });
      }
    }
    const acting = new Map();
    for (const r of bundle.records) {
      if (!actsOn(r.record, certs).includes(subject)) continue;
      if (!acting.has(r.chain)) acting.set(r.chain, []);
      acting.get(r.chain).push(r);
    }
    const chains = new Set(acting.keys());
    for (const c of certs.values()) if (c.parcels.includes(subject)) chains.add(c.destination);
    const given = new Map(bundle.state.map((x) => [x.chain, x]));
    const extra = [...given.keys()].filter((c) => !chains.has(c)).sort();
    if (extra.length) {
      throw new InvalidData(`a state proof of ${extra[0]}, where no record of the bundle acts on ${subject} and none of its certificates goes`, "state");
    }
    const spans = this.spans();
    const out = [];
    for (const chain of [...chains].sort()) {
      const entry = given.get(chain);
      if (!entry) {
        throw new InvalidData(`no state proof of ${subject} on ${chain}, whose records act on it or to which one of its certificates goes`, "state", "record-omitted");
      }
      const heights = [...(this.heights.get(chain) || [])].sort((a, b) => b - a);
      const top = heights.find((h) => Verifier.cosigners(spans, chain, h).length >= registry.cosign);
      if (top === undefined || entry.height !== top) {
        throw new InvalidData(
          `the state proof of ${chain} is against ${chain}/${entry.height}; the bundle's newest cosigned header of ${chain} is ${top === undefined ? "none" : `${chain}/${top}`}`,
          `state.${chain}.height`,
          "record-omitted",
        );
      }
      const header = this.headers.get(`${chain}/${top}`).header;
      await this.at(`state of ${subject} on ${chain}/${top}`, () => foldSlot(subject, entry.slot, header.state));
      const mine = acting.get(chain) || [];
      const last = mine.length ? bytesToHex(await leafHash(mine[mine.length - 1].raw)) : null;
      if (entry.slot.count !== mine.length || entry.slot.record !== last) {
        throw new InvalidData(
          `${chain}/${top} commits to ${entry.slot.count} record(s) of ${chain} acting on ${subject}, the latest ${entry.slot.record ? entry.slot.record.slice(0, 16) : "none"}; the bundle holds ${mine.length}, the latest ${last ? last.slice(0, 16) : "none"}: a record of the subject is left out`,
          `state.${chain}`,
          "record-omitted",
        );
      }
      out.push(`${chain}/${top}`);
    }
    return out;
  }
}

/** The parcels a record acts on (bundle.md section 4.1; ledger/statetree.py parcels_acted_on). */
function actsOn(record, certs) {
  const b = record.body;
  switch (record.kind) {
    case "parcel.register":
    case "parcel.purchase":
    case "parcel.transfer":
    case "parcel.release":
      return [b.parcel];
    case "parcel.split":
      return [b.parcel, ...b.children.map((c) => c.parcel)];
    case "parcel.merge":
      return [...b.parents, b.parcel];
    case "certificate.issue":
      return b.lines.map((l) => l.parcel);
    case "certificate.confirm":
      return b.received.map((l) => l.parcel);
    case "certificate.refuse":
    case "certificate.void":
      return certs.has(b.number) ? certs.get(b.number).parcels : [];
    default:
      return [];
  }
}

function countBytes(n) {
  const out = new Uint8Array(8);
  let v = BigInt(n);
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Fold a slot proof up to a state root (bundle.md section 4.1); throws state-proof errors. */
async function foldSlot(parcel, slot, rootHex) {
  const key = await sha256(TAG.STATE_KEY, parcel);
  const k = BigInt(`0x${bytesToHex(key)}`);
  const depth = slot.path.length;
  let running;
  if (slot.count > 0) {
    running = await sha256(TAG.STATE_LEAF, key, hexToBytes(slot.record), countBytes(slot.count));
  } else if (slot.other) {
    const o = BigInt(`0x${slot.other.key}`);
    if (slot.other.key === bytesToHex(key) || (o ^ k) >> BigInt(256 - depth) !== 0n) {
      throw new InvalidData("the slot ending the path is not another parcel's under the same prefix", "other.key", "state-proof");
    }
    running = await sha256(TAG.STATE_LEAF, hexToBytes(slot.other.key), hexToBytes(slot.other.record), countBytes(slot.other.count));
  } else {
    running = new Uint8Array(32);
  }
  for (let i = depth - 1; i >= 0; i--) {
    const sibling = hexToBytes(slot.path[i]);
    running = (k >> BigInt(255 - i)) & 1n ? await sha256(TAG.STATE_NODE, sibling, running) : await sha256(TAG.STATE_NODE, running, sibling);
  }
  if (bytesToHex(running) !== rootHex) {
    throw new InvalidData(`parcel ${parcel}'s slot folds to ${bytesToHex(running)}, not the state root ${rootHex}`, "path", "state-proof");
  }
}

/**
 * Verify bundle bytes (a Uint8Array) in this browser.
 *
 * options: {parcel, pinnedRegistry (a signed registry object), pinnedNetwork (hex),
 * nodeNetwork (hex: what the node serving the page says), onStep(step)}.
 * Resolves to {ok, step, stepNumber, error, code (bundle.md's error code of a failure),
 * network, anchor, subject, proven, records, headers}.
 */
export async function verifyBundle(data, options = {}) {
  const v = new Verifier(options);
  const out = { ok: false, step: "parse", stepNumber: 1, error: null, code: null, proven: v.proven };
  try {
    await v.run(data);
    out.ok = true;
    out.step = "verified";
    out.stepNumber = null;
  } catch (err) {
    out.stepNumber = err.bundleStep || v.step;
    out.step = STEPS[out.stepNumber - 1];
    out.error = err instanceof InvalidData ? err.message : `step ${v.step}: ${err}`;
    out.code = err instanceof InvalidData ? err.code : "unexpected";
    out.where = err.where || "";
    out.reason = err.reason || out.error;
    options.onStep?.({ n: out.stepNumber, name: out.step, status: "failed", detail: out.error });
  }
  out.network = v.registryInfo ? v.registryInfo.network : null;
  out.registryName = v.registryInfo ? v.registryInfo.name : null;
  out.anchor = v.anchor || null;
  out.subject = v.bundle ? v.bundle.subject : null;
  out.records = v.bundle ? v.bundle.records : [];
  out.headers = v.bundle ? v.bundle.headers.length : 0;
  return out;
}

/**
 * Verify a certificate's inclusion proof (GET /v1/certificates/{number}) against a
 * checked registry, as `kpl verify-certificate` does (cli/certificate.py): the
 * issuer's key history learnt from the proof's `keys` (learnKeys), the header's
 * signature under the key the issuer's chain has at its height, the leaf (the full
 * record when the caller may see it, else its hash) at its index under the header's
 * root. Resolves to a list of {name, ok, detail}.
 */
export async function verifyCertificate(cert, registry) {
  const checks = [];
  const check = async (name, fn) => {
    try {
      const detail = await fn();
      checks.push({ name, ok: true, detail });
      return true;
    } catch (err) {
      checks.push({ name, ok: false, detail: err instanceof InvalidData ? err.message : String(err) });
      return false;
    }
  };
  const proof = cert.proof;
  if (!proof) {
    checks.push({ name: "proof", ok: false, detail: "the node sent no inclusion proof" });
    return checks;
  }
  let raw = "";
  let events = null;
  const issuer = cert.issue && cert.issue.chain;
  const historyOk = await check("key history", async () => {
    try {
      events = await learnKeys(registry, issuer, proof.keys);
    } catch (err) {
      if (err instanceof InvalidData) throw new InvalidData(`its key history does not check: ${err.message}`, "", err.code);
      throw err;
    }
    const n = (proof.keys || []).length;
    return n
      ? `${n} key record${n === 1 ? "" : "s"} of ${issuer} and KP, each signed and proved in its chain's log`
      : `${issuer} has signed with its registry key since genesis`;
  });
  const headerOk =
    historyOk &&
    (await check("signed header", async () => {
      raw = checkHeader(proof.header, "header");
      const h = proof.header;
      if (h.network !== registry.network) throw new InvalidData("belongs to another network", "header.network");
      if (h.chain !== issuer) throw new InvalidData(`is of chain ${h.chain}, not ${issuer}`, "header.chain");
      const who = registry.participants.find((p) => p.code === h.chain);
      if (!who) throw new InvalidData(`${h.chain} is not in the registry`, "header.chain");
      const rotated = keyAt(events, h.chain, h.height)?.key !== keyAt(genesisKeys(registry), h.chain, h.height)?.key;
      const whose = rotated ? `the key of ${h.chain} at height ${h.height} that its key records prove` : `${who.name}'s registry key`;
      try {
        checkHex(proof.sig, "sig", 64);
        await checkHeaderKey(events, h, raw, proof.sig);
      } catch (err) {
        if (err instanceof InvalidData) throw new InvalidData(`does not check under ${whose}: ${err.message}`, "", err.code);
        throw err;
      }
      return `${h.chain}/${h.height} (size ${h.size}, ${h.time}) signed by ${whose}`;
    }));
  let leaf = null;
  await check("record", async () => {
    if (proof.record && proof.record.kind) {
      const text = checkRecord(proof.record, "record");
      leaf = bytesToHex(await leafHash(text));
      const body = proof.record.body;
      if (proof.record.kind !== "certificate.issue" || body.number !== cert.number) {
        throw new InvalidData(`is a ${proof.record.kind}, not the issue of ${cert.number}`, "record");
      }
      const fields = ["destination", "carats", "issued", "expires", "origin", "exporter"];
      const differ = fields.filter((k) => cert[k] !== undefined && cert[k] !== body[k]);
      // a committed field shown as committed must carry the signed record's commitment
      if (cert.committed && cert.committed.value !== undefined && cert.committed.value !== body.value.c) differ.push("value");
      if (cert.issuer !== proof.record.chain) differ.push("issuer");
      if (differ.length) throw new InvalidData(`the page's ${differ.join(", ")} differ from the signed record`);
      if (leaf !== cert.issue.hash) throw new InvalidData(`leaf hash ${leaf} is not the issue record's ${cert.issue.hash}`);
      return "the full issue record: every public Annex I field shown comes from these bytes (value, importer and seal are commitments in it)";
    }
    leaf = checkHex(proof.record && proof.record.hash, "record.hash", 32);
    if (leaf !== cert.issue.hash) throw new InvalidData("the proof is for another record", "record.hash");
    return "the record's leaf hash only (its commercial fields are not public)";
  });
  if (headerOk && leaf) {
    await check("inclusion", async () => {
      if (proof.size !== proof.header.size) throw new InvalidData("the proof's size is not the header's", "size");
      if (proof.index !== cert.issue.index) throw new InvalidData("the proof's index is not the record's", "index");
      await verifyInclusion(leaf, proof.index, proof.size, proof.proof, proof.header.root);
      return `leaf ${proof.index} of ${proof.size}: ${proof.proof.length} hashes up to the signed root`;
    });
  }
  return checks;
}
