// digitnet serve: what the forward view (app.js) and the backward view (backward.js) both use,
// in one place: the seeds' notation as HTML, the diverging colours, the grid of units.

export const $ = (id) => document.getElementById(id);
export const MINUS = "\u2212";
const SUP = { 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
/** 12 → "¹²" (a layer's number as a superscript, in plain text). */
export const supText = (n) => String(n).split("").map((c) => SUP[c] || c).join("");

export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
export const pct = (p, d = 1) => (Number.isFinite(p) ? `${(100 * p).toFixed(d)}\u202f%` : "–");

/** Zˡ as HTML: a letter with a superscript (and an optional subscript). */
export function sym(letter, l, sub) {
  if (sub === undefined) return `<var>${letter}</var><sup>${esc(l)}</sup>`;
  return `<var>${letter}</var><span class="ss"><sup>${esc(l)}</sup><sub>${esc(sub)}</sub></span>`;
}

const ACT = {
  relu: "ReLU", leaky_relu: "LeakyReLU", sigmoid: "σ", tanh: "tanh", arctan: "arctan",
  identity: "identity", softmax: "softmax",
};
/** An activation's name as the seeds write it. */
export const actName = (kind) => ACT[kind] || kind;

// diverging colours (as the server's weights.png): blue negative, near-white zero, red positive
export const RED = [178, 24, 43];
export const BLUE = [33, 102, 172];
export const WHITE = [247, 247, 247];
export function diverging(v, scale) {
  let t = scale > 0 ? v / scale : 0;
  if (!Number.isFinite(t)) t = 0;
  t = Math.max(-1, Math.min(1, t));
  const c = t >= 0 ? RED : BLUE;
  const a = Math.sqrt(Math.abs(t)); // lift small values out of the white
  return [0, 1, 2].map((i) => Math.round(WHITE[i] + (c[i] - WHITE[i]) * a));
}
export const maxAbs = (vals) => vals.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** How many columns to lay n units out in: one row up to `oneRow`, else about twice as wide as
 *  tall, dividing n if it can. */
export function gridCols(n, oneRow = 12) {
  if (n <= oneRow) return n;
  const start = Math.ceil(Math.sqrt(2 * n));
  for (let c = start; c <= 2 * start; c++) if (n % c === 0) return c;
  return start;
}

/** GET/POST JSON: {ok, status, data, error}; never throws, never logs to the console. */
export async function api(url, options = {}) {
  try {
    const res = await fetch(url, options);
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      const msg = (data && data.error) || `the server answered ${res.status}`;
      return { ok: false, status: res.status, data, error: msg };
    }
    return { ok: true, status: res.status, data, error: null };
  } catch (e) {
    return { ok: false, status: 0, data: null, error: "cannot reach the digitnet server (is it still running?)" };
  }
}
