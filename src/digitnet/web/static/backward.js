// digitnet serve: the backward view (an ES module beside app.js, which it never changes).
//
// It follows the forward view: whenever the page shows an answer for the drawing (the
// prediction's data-version), the pad is posted to POST /api/backprop with the label the learner
// chose (the predicted digit until they choose), on this tab's own session: a copy of the model
// on the server that only this tab changes. The answer fills the seeds' backward equations with
// this model's shapes and numbers; "Take one step" applies θ := θ − α dθ to the copy, "Step until
// it reads N" repeats it, "Reset" goes back to the trained model, "Save as a new model" writes
// the copy as a new file. The gradient check for the digit arrives a moment later.

import {
  $, MINUS, actName, api, diverging, esc, gridCols, maxAbs, pct, supText, sym,
} from "./common.js";

/** A number for people: `digits` significant digits, a real minus sign. */
function fmt(v, digits = 3) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  const a = Math.abs(v);
  let s;
  if (a === 0) s = "0";
  else if (a >= 1e5 || a < 1e-3) s = v.toExponential(Math.max(0, digits - 2));
  else s = String(Number(v.toPrecision(digits)));
  return s.replace("-", MINUS);
}
const signed = (v, d = 3) => (v > 0 ? `+${fmt(v, d)}` : fmt(v, d));
const d_ = (letter, l, sub) => `d${sym(letter, l, sub)}`;

const OFF = [214, 218, 225];

const postJSON = (url, doc) => api(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(doc) });

/** rows x cols values painted one pixel each on a canvas (scaled up by CSS, crisp). */
function paintMatrix(canvas, values, rows, cols, scale, off) {
  canvas.width = cols;
  canvas.height = rows;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(cols, rows);
  for (let i = 0; i < rows * cols; i++) {
    const c = off && off[i] ? OFF : diverging(values[i], scale);
    img.data.set([c[0], c[1], c[2], 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}


// ---- the card ---------------------------------------------------------------------------------
const card = document.createElement("article");
card.className = "card back-card";
card.id = "backward";
card.setAttribute("aria-labelledby", "back-title");
card.dataset.testid = "backward";
card.innerHTML = `
  <h2 id="back-title">5 · The backward pass: teach it this digit</h2>
  <p class="hint">Say what the digit should be; the seeds' backward equations fill with this model's numbers,
    and you take the gradient-descent step yourself. Steps change <strong>this tab's own copy</strong> of the
    model (the model file, other tabs and the command line never see it).</p>
  <div class="back-layout">
    <div class="back-controls">
      <div class="label-row" role="group" aria-labelledby="label-title">
        <span id="label-title" class="ctl-title">It should be</span>
        <div class="labels" id="labels"></div>
        <span class="label-note muted" id="label-note">draw a digit first</span>
      </div>
      <div class="alpha-row">
        <label for="alpha" class="ctl-title"><var>α</var> (learning rate)</label>
        <input type="number" id="alpha" data-testid="alpha" min="0.001" step="0.01" value="0.02" inputmode="decimal">
        <span class="muted" id="alpha-note"></span>
      </div>
      <div class="step-row">
        <button type="button" id="step" data-testid="step" class="primary" disabled>Take one step</button>
        <button type="button" id="step-until" data-testid="step-until" disabled>Step until it reads ?</button>
        <button type="button" id="reset" data-testid="reset" disabled>Reset</button>
        <button type="button" id="save" data-testid="save" disabled>Save as a new model</button>
      </div>
      <p class="status back-status" id="back-status" role="status" aria-live="polite" data-testid="back-status"></p>
      <div class="compare" id="compare" data-testid="compare" hidden></div>
      <p class="badge gradcheck" id="gradcheck" data-testid="gradcheck" data-state="empty">gradient check: waiting for a digit</p>
    </div>
    <div class="back-math" id="back-math" data-testid="back-math">
      <p class="empty">Draw a digit to see the backward pass.</p>
    </div>
  </div>`;

const anchor = document.querySelector(".net-card") || document.querySelector(".math-card");
anchor.after(card);

const labels = $("labels");
for (let d = 0; d < 10; d++) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = String(d);
  b.dataset.testid = `label-${d}`;
  b.setAttribute("aria-pressed", "false");
  b.disabled = true;
  b.addEventListener("click", () => chooseLabel(d));
  labels.append(b);
}

// ---- state ------------------------------------------------------------------------------------
const st = {
  session: null,
  chosen: null, // the label the learner chose, or null: the prediction
  doc: null, // the last backward answer shown
  version: null, // the forward view's answer version it was made for
  busy: false,
  again: false,
  unit: null, // the hidden unit of layer 1 whose dW¹ row is shown
  token: 0,
  steps: 0,
};
const prediction = $("prediction");
const pad = $("pad");

function setStatus(text, kind = "") {
  const s = $("back-status");
  s.textContent = text;
  s.className = `status back-status ${kind}`;
}

function padBlob() {
  return new Promise((resolve) => pad.toBlob((b) => resolve(b), "image/png"));
}

/** The backward pass for the pad as it is now (one request at a time; the latest wins). */
async function refresh() {
  if (st.busy) {
    st.again = true;
    return;
  }
  if (prediction.dataset.state !== "ready") return;
  st.busy = true;
  const version = prediction.dataset.version;
  try {
    const params = new URLSearchParams();
    if (st.chosen !== null) params.set("label", String(st.chosen));
    if (st.alphaSet) params.set("alpha", String(alpha())); // else the server's: the model's own
    if (st.session) params.set("session", st.session);
    const blob = await padBlob();
    let r = await api(`/api/backprop?${params}`, { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
    if (!r.ok && r.status === 404 && st.session) {
      // the server forgot this tab's copy (idle, or too many tabs): start a new one
      st.session = null;
      params.delete("session");
      r = await api(`/api/backprop?${params}`, { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
      if (r.ok) setStatus("The server had forgotten this tab's copy (idle too long): it starts again from the trained model.", "warn");
    }
    if (r.ok) {
      st.session = r.data.session;
      st.version = version;
      show(r.data);
    } else if (prediction.dataset.version === version) {
      setStatus(`No backward pass: ${r.error}`, "error");
    }
  } finally {
    st.busy = false;
  }
  if (st.again) {
    st.again = false;
    refresh();
  }
}

function alpha() {
  const v = Number($("alpha").value);
  return Number.isFinite(v) && v > 0 ? v : 0.02;
}

function chooseLabel(d) {
  st.chosen = d;
  refresh();
}

function clearView() {
  st.doc = null;
  st.chosen = null;
  st.unit = null;
  st.unitClicked = false;
  for (const b of labels.children) {
    b.disabled = true;
    b.setAttribute("aria-pressed", "false");
    b.classList.remove("predicted");
  }
  for (const id of ["step", "step-until", "reset"]) $(id).disabled = true;
  $("label-note").textContent = "draw a digit first";
  $("back-math").innerHTML = `<p class="empty">Draw a digit to see the backward pass.</p>`;
  $("compare").hidden = true;
  $("cost-inline") && ($("cost-inline").textContent = "");
  setBadge("empty", "gradient check: waiting for a digit");
  setStatus("");
  card.dataset.state = "empty";
}

// the forward view's answer changed: follow it
new MutationObserver(() => {
  const s = prediction.dataset.state;
  if (s === "empty") {
    clearView();
  } else if (s === "ready" && prediction.dataset.version !== st.version) {
    refresh();
  }
}).observe(prediction, { attributes: true, attributeFilter: ["data-state", "data-version"] });

// ---- showing a backward pass ------------------------------------------------------------------
function show(doc) {
  st.doc = doc;
  st.steps = doc.steps_taken;
  card.dataset.state = "ready";
  card.dataset.label = String(doc.label);
  card.dataset.prediction = String(doc.prediction);
  card.dataset.steps = String(doc.steps_taken);
  card.dataset.session = doc.session;
  for (const b of labels.children) {
    const d = Number(b.textContent);
    b.disabled = false;
    b.setAttribute("aria-pressed", String(d === doc.label));
    b.classList.toggle("predicted", d === doc.prediction);
  }
  $("label-note").innerHTML = st.chosen === null
    ? `the label is the predicted digit, ${doc.prediction}, until you choose one`
    : `you chose ${doc.label}; the copy reads ${doc.prediction}`;
  $("alpha").max = String(doc.max_alpha);
  if (!st.alphaSet) $("alpha").value = String(doc.alpha);
  $("alpha-note").textContent = `0 < α ≤ ${doc.max_alpha}`;
  $("step").disabled = false;
  $("step-until").disabled = false;
  $("step-until").textContent = `Step until it reads ${doc.label}`;
  $("step-until").title = `θ := θ − α dθ again and again until the copy reads ${doc.label}: at most ${doc.max_steps} steps a click`;
  $("reset").disabled = doc.steps_taken === 0;
  $("save").disabled = doc.steps_taken === 0;
  renderMath(doc);
  if (!st.unitClicked && doc.layers.length > 1) {
    // the hidden unit of layer 1 with the largest |dZ¹|: the one this digit moves most
    const dz = doc.layers[0].dZ;
    let best = 0;
    dz.forEach((v, k) => { if (Math.abs(v) > Math.abs(dz[best])) best = k; });
    st.unit = best;
  }
  showRow();
  checkGradient();
}

function renderMath(doc) {
  const L = doc.layers.length;
  const out = doc.layers[L - 1];
  const ce = doc.cost.kind === "cross_entropy";
  const smooth = doc.cost.label_smoothing || 0;
  const rows = [];
  // the cost
  const costF = ce
    ? `<var>C</var> = ${MINUS}Σ<sub><var>i</var></sub> <var>Y</var><sub><var>i</var></sub> log ${sym("A", L, "i")}`
    : `<var>C</var> = 1/<var>n</var> Σ<sub><var>i</var></sub> (${sym("A", L, "i")} ${MINUS} <var>Y</var><sub><var>i</var></sub>)²`;
  rows.push(eq(costF, ce ? "cross-entropy" : `mean squared error, n = ${out.n_out}`,
    `for this digit with label ${doc.label}: <strong class="cost" data-testid="cost" data-value="${doc.C}">${fmt(doc.C, 4)}</strong>` +
    (smooth ? ` <span class="muted">(the model was trained with label smoothing ${smooth}: <var>Y</var> is ${fmt(1 - smooth + smooth / out.n_out, 3)} at ${doc.label} and ${fmt(smooth / out.n_out, 3)} elsewhere)</span>` : "")));
  // the output error: ten signed bars next to A and Y
  const dzF = doc.output.formula === "A - Y"
    ? `${d_("Z", L)} = ${sym("A", L)} ${MINUS} <var>Y</var>`
    : `${d_("Z", L)} = 2/<var>n</var> (${sym("A", L)} ${MINUS} <var>Y</var>) ⊙ σ′(${sym("Z", L)})`;
  rows.push(eq(dzF, `${out.n_out} × 1`, outputTable(doc), "wide"));
  // dW and db of the output layer
  const prevL = L - 1;
  rows.push(eq(`${d_("W", L)} = 1/<var>m</var> ${d_("Z", L)}·${sym("A", prevL)}<sup>T</sup>`,
    `${out.n_out} × ${out.n_in}, <var>m</var> = 1 here (one digit)`,
    `<canvas class="heat pixelated" id="dWL" data-testid="dWL" role="img" aria-label="dW${L} as a heat map: ${out.n_out} rows, ${out.n_in} columns"></canvas>` +
    `<span class="heat-note">rows 0 to ${out.n_out - 1} from the top; row <var>k</var> is ${d_("Z", L, "k")} times ${sym("A", prevL)}<sup>T</sup>: ` +
    `largest ${signed(out.dW_max.value)} (row ${out.dW_max.row}), smallest ${signed(out.dW_min.value)} (row ${out.dW_min.row}); ` +
    `‖${d_("W", L)}‖ = ${fmt(out.dW_norm)}</span>`, "wide"));
  rows.push(eq(`${d_("b", L)} = 1/<var>m</var> Σ ${d_("Z", L)}`, `${out.n_out} × 1`,
    `= ${d_("Z", L)} (one column): ${out.db.map((v) => `<span class="${v > 0 ? "pos" : v < 0 ? "neg" : ""}">${signed(v, 2)}</span>`).join(" ")}`));
  // the hidden layers, from the top down
  for (let i = L - 2; i >= 0; i--) {
    const h = doc.layers[i];
    const l = h.l;
    const g = actName(h.activation);
    const on = h.n_out - h.off;
    rows.push(eq(`${d_("Z", l)} = ${sym("W", l + 1)}<sup>T</sup>·${d_("Z", l + 1)} ⊙ <var>g</var>′(${sym("Z", l)})`,
      `${h.n_out} × 1, <var>g</var> = ${esc(g)}`,
      `<div class="dz-wrap"><canvas class="dz-grid" id="dz-${l}" data-testid="dZ${l}" data-layer="${l}"></canvas>` +
      `<span class="heat-note">${h.off ? `<var>g</var>′ = 0 switched off <strong data-testid="off-${l}">${h.off}</strong> of ${h.n_out} units (grey): no gradient reaches them or their weights` : `<var>g</var>′ switched off no unit (${g} has <var>g</var>′ &gt; 0 everywhere)${h.saturated ? `, but ${h.saturated} ${h.saturated === 1 ? "is" : "are"} saturated (<var>g</var>′ under 1 % of its peak: they barely pass it on)` : ""}`}; ` +
      `${on} carry it. ‖${d_("Z", l)}‖ = ${fmt(h.dZ_norm)}; ‖${d_("W", l)}‖ = ${fmt(h.dW_norm)}, largest |entry| ${fmt(Math.max(Math.abs(h.dW_max.value), Math.abs(h.dW_min.value)))}` +
      `${l === 1 ? ". <strong>Click a unit</strong> for its row of dW¹." : ""}</span></div>`, "wide"));
  }
  // the clicked unit's row of dW¹
  if (L > 1) {
    rows.push(eq(`${d_("W", 1, "j,:")} = ${d_("Z", 1, "j")} · <var>X</var><sup>T</sup>`, `1 × ${doc.layers[0].n_in}`,
      `<div class="row-view"><canvas class="pixelated row-img" id="dW1-row" data-testid="dW1-row" width="28" height="28" role="img" aria-label="the chosen unit's row of dW1 as 28 by 28"></canvas>` +
      `<span class="heat-note" id="dW1-note">Click a unit of ${d_("Z", 1)}.</span></div>`, "wide"));
  }
  // the update
  const upd = doc.layers.map((h) => `‖<var>α</var> ${d_("W", h.l)}‖ = ${fmt(doc.alpha * h.dW_norm)}`).join(" · ");
  rows.push(eq(`<var>θ</var> := <var>θ</var> ${MINUS} <var>α</var> d<var>θ</var>`, `<var>α</var> = ${fmt(doc.alpha)}`,
    `for every ${sym("W", "l")} and ${sym("b", "l")}: ${upd}. ${doc.steps_taken ? `This copy has taken <strong data-testid="steps-taken">${doc.steps_taken}</strong> step${doc.steps_taken === 1 ? "" : "s"}.` : `<span data-testid="steps-taken" data-value="0">No step yet: the copy is the trained model.</span>`}`));
  $("back-math").innerHTML = rows.join("");
  paintOutput(doc);
  for (let i = 0; i < L - 1; i++) paintDZ(doc.layers[i]);
}

function eq(f, shape, val, cls = "") {
  return `<div class="eq ${cls}"><div class="f">${f}</div><div class="shape">${shape}</div><div class="val">${val}</div></div>`;
}

function outputTable(doc) {
  const o = doc.output;
  const scale = maxAbs(o.dZ) || 1;
  const L = doc.layers.length;
  let html = `<div class="dz-table" data-testid="output-error"><div class="th">digit</div><div class="th">${sym("A", L)}</div><div class="th"><var>Y</var></div><div class="th">${d_("Z", L)}</div><div class="th"></div>`;
  o.dZ.forEach((v, k) => {
    const w = (50 * Math.abs(v)) / scale;
    const bar = v >= 0
      ? `<span class="sbar pos" style="left:50%;width:${w.toFixed(1)}%"></span>`
      : `<span class="sbar neg" style="left:${(50 - w).toFixed(1)}%;width:${w.toFixed(1)}%"></span>`;
    html += `<div class="td digit${k === doc.label ? " is-label" : ""}">${k}</div><div class="td">${fmt(o.A[k], 3)}</div>` +
      `<div class="td">${fmt(o.Y[k], 3)}</div><div class="td bar" data-testid="dz-${k}" data-value="${v}" title="${fmt(v, 5)}"><span class="axis"></span>${bar}</div>` +
      `<div class="td num ${v > 0 ? "pos" : v < 0 ? "neg" : ""}">${signed(v, 2)}</div>`;
  });
  return `${html}</div>`;
}

function paintOutput(doc) {
  const out = doc.layers[doc.layers.length - 1];
  const c = $("dWL");
  const flat = out.dW.flat();
  paintMatrix(c, flat, out.n_out, out.n_in, maxAbs(flat) || 1);
  // each weight a cell at least 1 px wide, each row (one digit) at least 9 px tall
  const cw = Math.max(1, Math.min(28, Math.floor(560 / out.n_in)));
  const ch = Math.max(9, Math.min(cw, 20));
  c.style.width = `min(100%, ${out.n_in * cw}px)`;
  c.style.aspectRatio = `${out.n_in * cw} / ${out.n_out * ch}`;
}

function paintDZ(h) {
  const c = $(`dz-${h.l}`);
  const cols = gridCols(h.n_out, 16);
  const rows = Math.ceil(h.n_out / cols);
  const vals = new Array(rows * cols).fill(0);
  const off = new Array(rows * cols).fill(true);
  h.dZ.forEach((v, k) => { vals[k] = v; off[k] = h.g_prime[k] === 0; });
  paintMatrix(c, vals, rows, cols, maxAbs(h.dZ) || 1, off);
  const cell = Math.max(6, Math.min(16, Math.floor(300 / cols)));
  c.style.width = `${cols * cell}px`;
  c.style.height = `${rows * cell}px`;
  c.dataset.cols = String(cols);
  c.dataset.cell = String(cell);
  c.dataset.n = String(h.n_out);
  if (h.l === 1) {
    c.classList.add("clickable");
    c.tabIndex = 0;
    c.setAttribute("role", "img");
    c.setAttribute("aria-label", `dZ1: ${h.n_out} units; click one for its row of dW1`);
    c.addEventListener("click", (e) => {
      const r = c.getBoundingClientRect();
      const col = Math.floor(((e.clientX - r.left) / r.width) * cols);
      const row = Math.floor(((e.clientY - r.top) / r.height) * rows);
      const k = row * cols + col;
      if (col >= 0 && col < cols && k >= 0 && k < h.n_out) {
        st.unit = k;
        st.unitClicked = true;
        showRow();
        checkGradient();
      }
    });
  }
}

/** The chosen hidden unit's row of dW¹ as a 28x28 image (GET /api/backprop/1/{unit}). */
async function showRow() {
  const doc = st.doc;
  if (!doc || st.unit === null || doc.layers.length < 2 || !$("dW1-row")) return;
  const token = ++st.token;
  const u = st.unit;
  const r = await api(`/api/backprop/1/${u}?session=${encodeURIComponent(doc.session)}`);
  if (token !== st.token || st.doc !== doc) return;
  const note = $("dW1-note");
  if (!r.ok) {
    note.textContent = `Could not load the row: ${r.error}`;
    return;
  }
  const c = $("dW1-row");
  paintMatrix(c, r.data.dW, 28, 28, maxAbs(r.data.dW) || 1);
  c.dataset.unit = String(u);
  const h = doc.layers[0];
  note.innerHTML = `unit <var>j</var> = ${u}: ${d_("Z", 1, u)} = <strong data-testid="dZ1-unit" data-value="${r.data.dZ}">${signed(r.data.dZ, 4)}</strong>. ` +
    (r.data.dZ === 0
      ? `<var>g</var>′ switched this unit off: its whole row is 0, and a step leaves its weights alone.`
      : `The row is <strong>your drawing scaled by ${d_("Z", 1, u)}</strong>: ${r.data.dZ > 0 ? "red" : "blue"} where you drew, white elsewhere. ` +
        `A step moves these weights by ${MINUS}<var>α</var> times it, so the unit ${r.data.dZ > 0 ? "responds less" : "responds more"} to this drawing.`) +
    ` <span class="muted">(${h.n_out} units in layer 1.)</span>`;
  outline(u);
}

/** Mark unit u in the dZ¹ grid (a frame drawn over its cell). */
function outline(u) {
  const g = $("dz-1");
  if (!g) return;
  g.dataset.selected = String(u);
  const wrap = g.parentElement;
  let box = wrap.querySelector(".unit-frame");
  if (!box) {
    box = document.createElement("span");
    box.className = "unit-frame";
    wrap.style.position = "relative";
    wrap.prepend(box);
  }
  const cols = Number(g.dataset.cols);
  const cell = Number(g.dataset.cell);
  box.style.left = `${g.offsetLeft + (u % cols) * cell}px`;
  box.style.top = `${g.offsetTop + Math.floor(u / cols) * cell}px`;
  box.style.width = `${cell + 2}px`;
  box.style.height = `${cell + 2}px`;
}

// ---- the gradient check -----------------------------------------------------------------------
function setBadge(state, text, title = "") {
  const b = $("gradcheck");
  b.dataset.state = state;
  b.textContent = text;
  b.title = title;
}

let checkToken = 0;
async function checkGradient() {
  const doc = st.doc;
  if (!doc) return;
  const token = ++checkToken;
  setBadge("busy", "gradient check: comparing backprop with finite differences…");
  const unit = st.unit === null ? "" : `&unit=${st.unit}`;
  const r = await api(`/api/gradcheck?session=${encodeURIComponent(doc.session)}${unit}`);
  if (token !== checkToken) return;
  if (!r.ok) {
    setBadge("error", `gradient check failed: ${r.error}`);
    return;
  }
  const g = r.data;
  const per = g.layers.map((x) => `layer ${x.l}: ${x.max_relative_error.toExponential(1)} over ${x.n_checked} parameters`).join("; ");
  const ok = g.max_relative_error < 1e-6;
  // tiny gradients (the digit already reads right): finite differences of a cost near its
  // minimum lose digits to rounding, so the relative error grows while the answers agree to 1e-9
  const rounding = !ok && g.max_abs_difference < 1e-9;
  const text = ok
    ? `✓ backprop = finite differences, largest relative error ${g.max_relative_error.toExponential(0)}`
    : rounding
      ? `✓ backprop = finite differences to ${g.max_abs_difference.toExponential(0)} (absolute); relative error ${g.max_relative_error.toExponential(0)}: the gradients are tiny (at most ${g.max_abs_gradient.toExponential(0)}), rounding shows`
      : `✗ backprop ≠ finite differences, largest relative error ${g.max_relative_error.toExponential(0)}`;
  setBadge(ok ? "ok" : rounding ? "rounding" : "bad", text,
    `float64, central differences with ε = ${g.epsilon}; ${per}${g.row ? `; the whole row ${g.row.unit} of dW¹ (${g.row.n} weights): ${g.row.max_relative_error.toExponential(1)}` : ""}`);
  $("gradcheck").dataset.value = String(g.max_relative_error);
}

// ---- steps ------------------------------------------------------------------------------------
function summary(s) {
  return `<div class="col-big">${s.prediction}</div>` +
    `<dl><div><dt>p(${st.doc ? st.doc.label : "?"})</dt><dd>${pct(s.p_label)}</dd></div>` +
    `<div><dt><var>C</var></dt><dd>${fmt(s.C, 4)}</dd></div>` +
    `<div><dt>accuracy on ${s.test_n ? s.test_n.toLocaleString("en-US") : "1,000"} test digits</dt><dd>${pct(s.accuracy, 1)}</dd></div></dl>`;
}

function showCompare(r) {
  const box = $("compare");
  box.hidden = false;
  const dAcc = r.after.accuracy - r.before.accuracy;
  box.innerHTML = `<div class="col" data-testid="before"><h4>before</h4>${summary(r.before)}</div>` +
    `<div class="arrow-col">→<span>${r.steps} step${r.steps === 1 ? "" : "s"}<br><var>α</var> = ${fmt(r.alpha)}</span></div>` +
    `<div class="col" data-testid="after"><h4>after</h4>${summary(r.after)}</div>` +
    `<p class="muted compare-note">Accuracy on the 1,000 test digits ${dAcc === 0 ? "did not change" : `${dAcc > 0 ? "rose" : "fell"} by ${pct(Math.abs(dAcc), 1)}`}: ` +
    `one digit pulls the weights its own way, which can cost the others.</p>`;
}

async function step(until) {
  if (!st.doc) return;
  const buttons = ["step", "step-until", "reset", "save"].map($);
  buttons.forEach((b) => { b.disabled = true; });
  const label = st.doc.label;
  setStatus(until ? `Stepping until it reads ${label}…` : "Taking one step…", "busy");
  const r = await postJSON("/api/step", { session: st.session, label, alpha: alpha(), until });
  buttons.forEach((b) => { b.disabled = false; });
  if (!r.ok) {
    setStatus(`No step: ${r.error}`, "error");
    if (r.status === 404) st.session = null;
    return;
  }
  st.chosen = label;
  showCompare(r.data);
  show(r.data.backprop);
  if (until) {
    setStatus(r.data.reached
      ? `It reads ${label} after ${r.data.steps} step${r.data.steps === 1 ? "" : "s"}.`
      : `After ${r.data.steps} steps (at most ${st.doc.max_steps} a click) it still reads ${r.data.after.prediction}: try a larger α.`,
    r.data.reached ? "ok" : "warn");
  } else {
    setStatus(`One step taken: it now reads ${r.data.after.prediction}.`, "ok");
  }
}
$("step").addEventListener("click", () => step(false));
$("step-until").addEventListener("click", () => step(true));

$("reset").addEventListener("click", async () => {
  if (!st.session) return;
  const r = await postJSON("/api/reset", { session: st.session });
  if (!r.ok) {
    setStatus(`No reset: ${r.error}`, "error");
    return;
  }
  $("compare").hidden = true;
  setStatus("Back to the trained model.", "ok");
  if (r.data.layers) show(r.data);
});

$("save").addEventListener("click", async () => {
  if (!st.session) return;
  const r = await postJSON("/api/save", { session: st.session });
  if (!r.ok) {
    setStatus(`Not saved: ${r.error}`, "error");
    return;
  }
  setStatus(`Saved as a new model: ${r.data.path} (the original is unchanged). Serve it with: digitnet serve ${r.data.path}`, "ok");
  $("back-status").dataset.saved = r.data.path;
});

$("alpha").addEventListener("change", () => {
  st.alphaSet = true;
  const v = Number($("alpha").value);
  if (!(v > 0) || (st.doc && v > st.doc.max_alpha)) {
    setStatus(`α must be above 0 and at most ${st.doc ? st.doc.max_alpha : 10}.`, "error");
    return;
  }
  if (st.doc) refresh();
});

clearView();
