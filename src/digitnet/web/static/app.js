// digitnet serve: the page. Plain ES2020, no framework, no network beyond this server.
//
// Draw view: the pad is sent as a PNG to POST /api/predict (debounced, one request in flight,
// stale answers dropped); the answer fills the prediction, the 28x28 input, every layer's
// values, the forward pass in the seeds' notation, and the selected unit's weights.
// Training view: a run from GET /api/runs, its history from the run's event stream (or
// polling), drawn as curves, and the first layer's weights as an image.
// An ES module: what it shares with backward.js comes from common.js.
import {
  $, MINUS, actName, api, diverging, esc, gridCols, maxAbs, pct, supText, sym, WHITE,
} from "./common.js";

(() => {
  // ---- small helpers -------------------------------------------------------------------------
  const DEBOUNCE_MS = 150;
  const POLL_MS = 2000;
  const RUNS_POLL_MS = 3000;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "html") node.innerHTML = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  /** A number for people: 3 significant digits, a real minus sign. */
  function fmt(v, digits = 3) {
    if (v === null || v === undefined || !Number.isFinite(v)) return "–";
    let s;
    const a = Math.abs(v);
    if (a === 0) s = "0";
    else if (a >= 1000) s = v.toFixed(0);
    else if (a < 0.001) s = v.toExponential(1);
    else s = String(Number(v.toPrecision(digits)));
    return s.replace("-", MINUS);
  }
  const int = (n) => Number(n).toLocaleString("en-US");


  const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;

  function stats(vals) {
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    for (const v of vals) {
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
    }
    return { min, max, mean: vals.length ? sum / vals.length : NaN };
  }

  // ---- 28x28 images and unit grids ----------------------------------------------------------
  /** Paint a 28x28 (or any side x side) image into a canvas of that many pixels. */
  function paintImage(canvas, flat, side, mode, scale) {
    canvas.width = side;
    canvas.height = side;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(side, side);
    for (let i = 0; i < side * side; i++) {
      const v = flat ? flat[i] : 0;
      let c;
      if (mode === "grey") {
        const g = Math.round(255 * Math.max(0, Math.min(1, v)));
        c = [g, g, g];
      } else {
        c = flat ? diverging(v, scale) : WHITE;
      }
      img.data[4 * i] = c[0];
      img.data[4 * i + 1] = c[1];
      img.data[4 * i + 2] = c[2];
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  /** A grid of n cells on a canvas (crisp on any screen); returns its geometry. With
   *  {fit: true} the grid is square and never wider than maxWidth, whatever n is (its cells
   *  shrink below 4 px, to a fraction of a pixel if need be): the unit panel's three strips. */
  function makeGrid(n, maxWidth, maxCell = 16, { fit = false } = {}) {
    const cols = fit ? Math.max(1, Math.ceil(Math.sqrt(n))) : gridCols(n);
    const rows = Math.ceil(n / cols);
    const cell = fit
      ? Math.min(maxCell, maxWidth / cols)
      : Math.max(4, Math.min(maxCell, Math.floor(maxWidth / cols)));
    const canvas = el("canvas", { class: "grid" });
    const g = { canvas, n, cols, rows, cell, values: null, scale: 1, selected: -1 };
    const w = cols * cell;
    const h = rows * cell;
    const dpr = Math.min(3, window.devicePixelRatio || 1);
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
    canvas.dataset.cols = cols;
    canvas.dataset.rows = rows;
    canvas.dataset.cell = cell;
    canvas.dataset.n = n;
    g.dpr = dpr;
    paintGrid(g);
    return g;
  }

  function paintGrid(g) {
    const ctx = g.canvas.getContext("2d");
    const { cell, cols, dpr } = g;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, g.cols * cell, g.rows * cell);
    const gap = cell >= 8 ? 1 : cell >= 3 ? 0.5 : 0;
    for (let k = 0; k < g.n; k++) {
      const x = (k % cols) * cell;
      const y = Math.floor(k / cols) * cell;
      ctx.fillStyle = g.values ? rgb(diverging(g.values[k], g.scale)) : "#eceef1";
      ctx.fillRect(x + gap / 2, y + gap / 2, cell - gap, cell - gap);
    }
    if (g.selected >= 0 && g.selected < g.n) {
      const x = (g.selected % cols) * cell;
      const y = Math.floor(g.selected / cols) * cell;
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#111827";
      ctx.strokeRect(x + 1, y + 1, cell - 2, cell - 2);
    }
  }

  function cellAt(g, event) {
    const r = g.canvas.getBoundingClientRect();
    const col = Math.floor(((event.clientX - r.left) / r.width) * g.cols);
    const row = Math.floor(((event.clientY - r.top) / r.height) * g.rows);
    const k = row * g.cols + col;
    return col >= 0 && col < g.cols && row >= 0 && k < g.n ? k : -1;
  }

  // ---- state --------------------------------------------------------------------------------
  const state = {
    model: null,
    dense: [], // per dense layer l (1-based at index l-1): {l, n_in, n_out, act, zName, aName}
    answer: null, // the last /api/predict answer shown
    values: {}, // layer name -> values of the shown answer
    grids: {}, // "Z1" / "A1" -> grid
    outBars: null,
    selected: null, // {l, unit}
    weightCache: new Map(),
  };

  // ---- the drawing pad ----------------------------------------------------------------------
  const pad = $("pad");
  const padCtx = pad.getContext("2d", { willReadFrequently: true });
  const strokes = []; // each a list of [x, y] in canvas pixels
  let current = null;
  let padVersion = 0; // changes whenever the drawing changes
  let timer = null;
  let inFlight = false;
  let deferred = false;

  const lineWidth = () => pad.width / 13; // ~21 px on a 280 px pad: MNIST's pen, ~1/10 of the box

  function fillPad() {
    padCtx.save();
    padCtx.setTransform(1, 0, 0, 1, 0, 0);
    padCtx.fillStyle = "#ffffff";
    padCtx.fillRect(0, 0, pad.width, pad.height);
    padCtx.restore();
    padCtx.lineCap = "round";
    padCtx.lineJoin = "round";
    padCtx.strokeStyle = "#000000";
    padCtx.fillStyle = "#000000";
    padCtx.lineWidth = lineWidth();
  }

  function dot([x, y]) {
    padCtx.beginPath();
    padCtx.arc(x, y, lineWidth() / 2, 0, 2 * Math.PI);
    padCtx.fill();
  }

  function segment([x0, y0], [x1, y1]) {
    padCtx.beginPath();
    padCtx.moveTo(x0, y0);
    padCtx.lineTo(x1, y1);
    padCtx.stroke();
  }

  function redraw() {
    fillPad();
    for (const s of strokes) {
      dot(s[0]);
      if (s.length > 1) {
        padCtx.beginPath();
        padCtx.moveTo(s[0][0], s[0][1]);
        for (const p of s.slice(1)) padCtx.lineTo(p[0], p[1]);
        padCtx.stroke();
      }
    }
  }

  function padPoint(e) {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * pad.width, ((e.clientY - r.top) / r.height) * pad.height];
  }

  function hasInk() {
    return strokes.length > 0;
  }

  function padChanged() {
    padVersion++;
    pad.dataset.version = String(padVersion);
    const inked = hasInk();
    $("clear").disabled = !inked;
    $("undo").disabled = !inked;
    $("pad-hint").hidden = inked;
    if (!inked) {
      clearTimeout(timer);
      timer = null;
      showEmpty();
      return;
    }
    setPredState("waiting");
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(send, ms);
  }

  pad.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    pad.focus({ preventScroll: true });
    try {
      pad.setPointerCapture(e.pointerId);
    } catch (err) {
      // an already released pointer: draw anyway
    }
    const p = padPoint(e);
    current = [p];
    strokes.push(current);
    dot(p);
    padChanged();
    schedule(DEBOUNCE_MS);
  });

  pad.addEventListener("pointermove", (e) => {
    if (!current) return;
    e.preventDefault();
    const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const p = padPoint(ev);
      const last = current[current.length - 1];
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) < 1) continue;
      segment(last, p);
      current.push(p);
    }
    padChanged();
    schedule(DEBOUNCE_MS);
  });

  function endStroke(e) {
    if (!current) return;
    current = null;
    try {
      if (pad.hasPointerCapture(e.pointerId)) pad.releasePointerCapture(e.pointerId);
    } catch (err) {
      // nothing to release
    }
    clearTimeout(timer);
    timer = null;
    send();
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  pad.addEventListener("contextmenu", (e) => e.preventDefault());

  function clearPad() {
    strokes.length = 0;
    current = null;
    redraw();
    padChanged();
    pad.focus({ preventScroll: true });
  }

  function undo() {
    if (!strokes.length) return;
    strokes.pop();
    current = null;
    redraw();
    padChanged();
    if (hasInk()) {
      clearTimeout(timer);
      timer = null;
      send();
    }
  }

  $("clear").addEventListener("click", clearPad);
  $("undo").addEventListener("click", undo);
  pad.addEventListener("keydown", (e) => {
    if (e.key === "Escape" || e.key === "Delete" || e.key === "Backspace") {
      e.preventDefault();
      clearPad();
    }
  });
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z" && !$("view-draw").hidden) {
      e.preventDefault();
      undo();
    }
  });

  function padBlob() {
    return new Promise((resolve) => pad.toBlob((b) => resolve(b), "image/png"));
  }

  /** Send the pad (never more than one request at a time; answers to an old drawing dropped). */
  async function send() {
    timer = null;
    if (!hasInk() || !state.model) return;
    if (inFlight) {
      deferred = true;
      return;
    }
    const version = padVersion;
    inFlight = true;
    setStatus("Reading…", "busy");
    let result;
    try {
      const blob = await padBlob();
      result = await api("/api/predict", {
        method: "POST",
        headers: { "Content-Type": "image/png" },
        body: blob,
      });
    } finally {
      inFlight = false;
    }
    const fresh = version === padVersion && hasInk();
    if (fresh) {
      if (result.ok) {
        showAnswer(result.data, version);
      } else {
        showError(result.status === 400 ? `No digit found: ${result.error}` : `Could not read the drawing: ${result.error}`);
      }
    }
    if (deferred || (!fresh && hasInk() && timer === null && !current)) {
      deferred = false;
      if (timer === null) send();
    }
  }

  // ---- showing an answer --------------------------------------------------------------------
  const prediction = $("prediction");

  function setPredState(s) {
    prediction.dataset.state = s;
    document.body.dataset.predState = s;
  }

  function setStatus(text, kind = "") {
    const s = $("status");
    s.textContent = text;
    s.className = `status ${kind}`;
  }

  function showEmpty() {
    state.answer = null;
    state.values = {};
    prediction.textContent = "";
    prediction.dataset.sure = "";
    prediction.dataset.version = String(padVersion);
    $("prediction-placeholder").hidden = false;
    $("confidence").textContent = "";
    setPredState("empty");
    setStatus("Draw one digit, large, in the middle of the box.");
    paintImage($("image28"), null, 28, "grey");
    renderProbabilities(null);
    renderNetwork();
    renderMath();
    renderUnit();
  }

  function showError(message) {
    setPredState("error");
    setStatus(message, "error");
  }

  function showAnswer(answer, version) {
    // A number of several digits: the rest of the page shows its first digit (whose layers
    // the server traced); the big answer shows the number.
    const digits = answer.digits || [];
    const several = digits.length > 1;
    const a = several ? { ...answer, ...digits[0], confident: answer.confident, reason: answer.reason } : answer;
    const read = several ? answer.number : String(a.prediction);
    state.answer = a;
    state.values = {};
    for (const layer of a.layers || []) state.values[layer.name] = layer.values;
    const classes = (state.model && state.model.classes) || [];
    const name = classes[a.prediction];
    const sure = a.confident !== false;
    prediction.textContent = sure ? read : "not sure";
    prediction.dataset.version = String(version);
    prediction.title = sure && !several && name && name !== String(a.prediction) ? name : "";
    $("prediction-placeholder").hidden = true;
    const p = a.probabilities[a.prediction];
    $("confidence").textContent = sure ? (several ? `the number ${read}` : `${pct(p)} sure`) : `best guess ${read} (${pct(p)})`;
    prediction.dataset.sure = String(sure);
    setPredState("ready");
    const second = a.top3 && a.top3[1];
    if (!sure) setStatus(`Not sure: ${a.reason}.`, "warn");
    else if (several) setStatus(`Read the number ${read}; the network below shows its first digit, ${a.prediction}.`, "ok");
    else setStatus(second && second[1] > 0.05
      ? `Read as ${a.prediction}; ${second[0]} is a runner-up at ${pct(second[1], 0)}.`
      : `Read as ${a.prediction}.`, "ok");
    paintImage($("image28"), a.image28.flat(), 28, "grey");
    if (!state.selected && state.dense.length > 1) {
      // show what a unit does from the first answer on: the most active unit of layer 1
      const a1 = state.values[state.dense[0].aName] || [];
      let best = 0;
      a1.forEach((v, k) => { if (v > a1[best]) best = k; });
      state.selected = { l: 1, unit: best };
      state.autoSelected = true;
    }
    renderProbabilities(a);
    renderNetwork();
    renderMath();
    renderUnit();
  }

  // probabilities: ten labelled bars, built once
  function buildProbabilities() {
    const list = $("probabilities");
    list.textContent = "";
    const classes = state.model.classes;
    classes.forEach((c, d) => {
      list.append(el("li", { "data-testid": `prob-${d}`, "data-digit": d },
        el("span", { class: "label", text: c.length > 3 ? `${d}` : c, title: c }),
        el("span", { class: "track" }, el("span", { class: "fill" })),
        el("span", { class: "value", text: "" })));
    });
  }

  function renderProbabilities(a) {
    const items = $("probabilities").children;
    for (let d = 0; d < items.length; d++) {
      const li = items[d];
      const p = a ? a.probabilities[d] : 0;
      li.querySelector(".fill").style.width = `${(100 * p).toFixed(2)}%`;
      li.querySelector(".value").textContent = a ? pct(p) : "";
      li.classList.toggle("top", !!a && d === a.prediction);
      li.dataset.value = a ? String(p) : "";
      li.setAttribute("aria-label", a ? `${state.model.classes[d]}: ${pct(p)}` : `${state.model.classes[d]}`);
    }
  }

  // ---- the network view ---------------------------------------------------------------------
  function buildNetwork() {
    const box = $("network");
    box.textContent = "";
    state.grids = {};
    const L = state.dense.length;
    const narrow = window.matchMedia("(max-width: 700px)").matches;
    const maxGrid = narrow ? Math.min(300, window.innerWidth - 80) : 224;

    // A0 = X
    const inCanvas = el("canvas", { class: "pixelated input-img", width: 28, height: 28, "data-testid": "net-input",
      role: "img", "aria-label": "A0 = X, the 784 input pixels" });
    paintImage(inCanvas, null, 28, "grey");
    box.append(el("div", { class: "layer-col" },
      el("div", { class: "layer-title", html: `${sym("A", 0)} = <var>X</var>` }),
      el("div", { class: "layer-sub", text: "784 pixels" }),
      inCanvas));

    const arrow = (html) => el("div", { class: "arrow", "aria-hidden": "true", html: `<span>${html}</span>→` });
    for (const d of state.dense) {
      box.append(arrow(`${sym("W", d.l)}·${sym("A", d.l - 1)} + ${sym("b", d.l)}`));
      if (d.l < L) {
        const zg = makeGrid(d.n_out, maxGrid);
        const ag = makeGrid(d.n_out, maxGrid);
        const cols = [
          [zg, d.zName, `${sym("Z", d.l)}`, `${d.n_out} weighted sums`],
          [ag, d.aName, `${sym("A", d.l)}`, `${d.n_out} activations`],
        ];
        // one hidden layer: Z and A side by side; more: each layer's Z above its A
        const stacked = L > 2 && !narrow;
        const pair = stacked ? el("div", { class: "layer-col hidden-layer" }) : null;
        cols.forEach(([g, name, label, caption], i) => {
          if (i === 1 && stacked) {
            pair.append(el("div", { class: "down", "aria-hidden": "true", text: `↓ ${actName(d.act)}` }));
          } else if (i === 1) {
            box.append(arrow(actName(d.act)));
          }
          g.canvas.dataset.testid = `grid-${name}`;
          g.canvas.dataset.layer = String(d.l);
          g.canvas.setAttribute("tabindex", "0");
          g.canvas.setAttribute("role", "img");
          g.canvas.setAttribute("aria-label",
            `${name}: the ${d.n_out} units of layer ${d.l}; click a unit, or use the arrow keys, to see its weights`);
          wireGrid(g, d);
          state.grids[name] = g;
          const parts = [el("div", { class: "layer-title", html: label }),
            el("div", { class: "layer-sub", html: caption }), g.canvas];
          if (stacked) pair.append(...parts);
          else box.append(el("div", { class: "layer-col hidden-layer" }, ...parts));
        });
        if (stacked) box.append(pair);
      } else {
        box.append(buildOutput(d));
      }
    }
  }

  function buildOutput(d) {
    const col = el("div", { class: "layer-col output-layer" });
    col.append(el("div", { class: "layer-title", html: `${sym("A", d.l)} = ${actName(d.act)}(${sym("Z", d.l)})` }),
      el("div", { class: "layer-sub", text: `${d.n_out} outputs, one per class` }));
    const bars = el("div", { class: "out-bars", "data-testid": "output-bars", role: "group",
      "aria-label": `The output layer A${d.l}; click a bar to see its weights` });
    state.outBars = [];
    for (let k = 0; k < d.n_out; k++) {
      const fill = el("span", { class: "fill" });
      const b = el("button", { type: "button", class: "out-bar", "data-testid": `out-${k}`,
        "aria-label": `output ${state.model.classes[k]}`,
        onclick: () => selectUnit(d.l, k),
        onmouseenter: () => readout(d, k),
      }, el("span", { class: "bar-track" }, fill), el("span", { class: "bar-label", text: k }));
      state.outBars.push(b);
      bars.append(b);
    }
    col.append(bars);
    return col;
  }

  function wireGrid(g, d) {
    g.canvas.addEventListener("click", (e) => {
      const k = cellAt(g, e);
      if (k >= 0) selectUnit(d.l, k);
    });
    g.canvas.addEventListener("mousemove", (e) => {
      const k = cellAt(g, e);
      if (k >= 0) readout(d, k);
    });
    g.canvas.addEventListener("mouseleave", () => { $("readout").innerHTML = "&nbsp;"; });
    g.canvas.addEventListener("keydown", (e) => {
      const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -g.cols, ArrowDown: g.cols };
      const cur = state.selected && state.selected.l === d.l ? state.selected.unit : -1;
      if (e.key in moves) {
        e.preventDefault();
        const k = cur < 0 ? 0 : Math.max(0, Math.min(g.n - 1, cur + moves[e.key]));
        selectUnit(d.l, k, false);
      } else if ((e.key === "Enter" || e.key === " ") && cur < 0) {
        e.preventDefault();
        selectUnit(d.l, 0, false);
      }
    });
  }

  function readout(d, k) {
    const z = state.values[d.zName];
    const a = state.values[d.aName];
    const label = d.l === state.dense.length ? ` (class ${state.model.classes[k]})` : "";
    const zs = z ? ` ${sym("Z", d.l, k)} = ${fmt(z[k])}` : "";
    const as = a ? `, ${sym("A", d.l, k)} = ${fmt(a[k])}` : "";
    $("readout").innerHTML = `layer ${d.l}, unit ${k}${esc(label)}:${zs}${as}${z ? "" : " (draw a digit to see its value)"}`;
  }

  function renderNetwork() {
    if (!state.model) return;
    const input = document.querySelector("[data-testid=net-input]");
    if (input) paintImage(input, state.answer ? state.answer.image28.flat() : null, 28, "grey");
    for (const d of state.dense) {
      const z = state.values[d.zName];
      const a = state.values[d.aName];
      const scale = Math.max(z ? maxAbs(z) : 0, a ? maxAbs(a) : 0) || 1;
      for (const [name, vals] of [[d.zName, z], [d.aName, a]]) {
        const g = state.grids[name];
        if (!g) continue;
        g.values = vals || null;
        g.scale = scale;
        g.selected = state.selected && state.selected.l === d.l ? state.selected.unit : -1;
        paintGrid(g);
      }
      if (d.l === state.dense.length && state.outBars) {
        state.outBars.forEach((b, k) => {
          const p = a ? a[k] : 0;
          b.querySelector(".fill").style.height = `${(100 * Math.max(0, Math.min(1, p))).toFixed(1)}%`;
          b.classList.toggle("top", !!state.answer && k === state.answer.prediction);
          b.classList.toggle("selected", !!state.selected && state.selected.l === d.l && state.selected.unit === k);
          b.title = a ? `${sym("A", d.l, k).replace(/<[^>]+>/g, "")} = ${pct(p)}; Z = ${fmt(z ? z[k] : NaN)}` : "";
        });
      }
    }
  }

  // ---- the math -----------------------------------------------------------------------------
  function renderMath() {
    if (!state.model) return;
    const v = state.values;
    const has = !!state.answer;
    const rows = [];
    const x = has ? state.answer.image28.flat() : null;
    const inked = x ? x.filter((p) => p > 0.5).length : 0;
    rows.push([`${sym("A", 0)} = <var>X</var>`, "784 × 1",
      has ? `your drawing, 784 pixels in [0, 1]: ${inked} inked (&gt; 0.5)` : "your drawing, 784 pixels in [0, 1]"]);
    const L = state.dense.length;
    for (const d of state.dense) {
      const zv = v[d.zName];
      const av = v[d.aName];
      let zText = "";
      if (zv) {
        const s = stats(zv);
        zText = `min ${fmt(s.min)} · mean ${fmt(s.mean)} · max ${fmt(s.max)}`;
      }
      rows.push([`${sym("Z", d.l)} = ${sym("W", d.l)}·${sym("A", d.l - 1)} + ${sym("b", d.l)}`,
        `${sym("W", d.l)}: ${d.n_out} × ${d.n_in}, ${sym("b", d.l)}: ${d.n_out} × 1 → ${d.n_out} × 1`, zText]);
      let aText = "";
      if (av) {
        if (d.act === "softmax") {
          const top = state.answer.prediction;
          aText = `largest: ${sym("A", L, top)} = ${pct(av[top])} (digit ${esc(state.model.classes[top])}); they sum to 1`;
        } else if (d.act === "relu" || d.act === "leaky_relu") {
          const active = av.filter((a, i) => zv ? zv[i] > 0 : a > 0).length;
          aText = `${active} of ${d.n_out} units active (${sym("Z", d.l)} &gt; 0), the rest ${d.act === "relu" ? "0" : "scaled down"}`;
        } else {
          const s = stats(av);
          aText = `min ${fmt(s.min)} · mean ${fmt(s.mean)} · max ${fmt(s.max)}`;
        }
      }
      if (d.act) {
        rows.push([`${sym("A", d.l)} = ${actName(d.act)}(${sym("Z", d.l)})`, `${d.n_out} × 1`, aText]);
      }
    }
    rows.push([`prediction = argmax ${sym("A", L)}`, "",
      has ? `<strong>${esc(String(state.answer.prediction))}</strong>` : ""]);
    $("math").innerHTML = rows.map(([f, shape, val], i) =>
      `<div class="eq" data-testid="eq-${i}"><div class="f">${f}</div><div class="shape">${shape}</div>` +
      `<div class="val">${val || (has ? "" : "<span class=\"muted\">draw a digit</span>")}</div></div>`).join("");
    const acts = [...new Set(state.dense.map((d) => d.act).filter(Boolean))];
    const defs = acts.map((a) => ({
      relu: "ReLU(z) = max(0, z)",
      leaky_relu: "LeakyReLU(z) = z if z &gt; 0, else a small slope times z",
      sigmoid: "σ(z) = 1 / (1 + e<sup>−z</sup>)",
      tanh: "tanh(z) = (e<sup>z</sup> − e<sup>−z</sup>) / (e<sup>z</sup> + e<sup>−z</sup>)",
      softmax: "softmax(z)<sub>i</sub> = e<sup>z<sub>i</sub></sup> / Σ<sub>j</sub> e<sup>z<sub>j</sub></sup>",
      arctan: "arctan(z)", identity: "identity(z) = z",
    })[a] || esc(a));
    $("math-note").innerHTML = `<var>L</var> = ${L} dense layers, ${int(state.model.n_parameters)} parameters ` +
      `(every <var>W</var> and <var>b</var>). ${defs.join("; ")}.`;
  }

  // ---- one unit: its weights and what they make of the drawing ------------------------------
  async function selectUnit(l, unit, scroll = true) {
    state.selected = { l, unit };
    state.autoSelected = false;
    renderNetwork();
    await renderUnit();
    const card = $("unit-card");
    if (scroll && card.getBoundingClientRect().top > window.innerHeight - 80) {
      card.scrollIntoView({ behavior: "smooth", block: "nearest" });
    }
  }

  async function weightsOf(l, unit) {
    const key = `${l}/${unit}`;
    if (!state.weightCache.has(key)) {
      const r = await api(`/api/weights/${l}/${unit}`);
      if (!r.ok) return r;
      state.weightCache.set(key, r);
    }
    return state.weightCache.get(key);
  }

  /** The width of each of the unit panel's three strips (A, the row of W, the contributions),
   *  in CSS pixels: style.css gives their figures room for it, with the ⊙ and = between. */
  const UNIT_STRIP = 140;
  let unitToken = 0;
  async function renderUnit() {
    const sel = state.selected;
    const card = $("unit-card");
    $("unit-empty").hidden = !!sel;
    $("unit-view").hidden = !sel;
    $("unit-nav").hidden = !sel;
    if (!sel || !state.model) {
      $("unit-title").textContent = "One unit";
      delete card.dataset.layer;
      delete card.dataset.unit;
      return;
    }
    const token = ++unitToken;
    const d = state.dense[sel.l - 1];
    const L = state.dense.length;
    const u = sel.unit;
    const cls = sel.l === L ? ` · the output for ${esc(state.model.classes[u])}` : "";
    const why = state.autoSelected ? " · the most active unit" : "";
    $("unit-title").innerHTML = `Unit ${u} of layer ${sel.l}: ${sym("Z", sel.l, u)}${cls}${why}`;
    card.dataset.layer = String(sel.l);
    card.dataset.unit = String(u);
    const r = await weightsOf(sel.l, u);
    if (token !== unitToken) return; // another unit was picked meanwhile
    if (!r.ok) {
      $("unit-math").innerHTML = `<p class="error">Could not load the weights: ${esc(r.error)}</p>`;
      return;
    }
    const w = r.data.weights;
    const b = r.data.bias;
    const prev = sel.l - 1;
    const x = sel.l === 1
      ? (state.answer ? state.answer.image28.flat() : null)
      : (state.values[state.dense[prev - 1].aName] || null);
    const contrib = x ? w.map((wi, i) => wi * x[i]) : null;

    const xName = sym("A", prev);
    $("unit-x-cap").innerHTML = sel.l === 1 ? `${xName} = <var>X</var>, your drawing` : `${xName}, layer ${prev}'s output`;
    $("unit-w-cap").innerHTML = `${sym("W", sel.l, `${u},:`)} ${r.data.n_in} weights (row ${u} of ${sym("W", sel.l)})`;
    $("unit-c-cap").innerHTML = `${sym("W", sel.l, `${u},:`)} ⊙ ${xName}: each input's contribution`;

    const wScale = maxAbs(w) || 1;
    const cScale = contrib ? maxAbs(contrib) || 1 : 1;
    const boxes = [["unit-x-box", x, "x"], ["unit-w-box", w, "w"], ["unit-c-box", contrib, "c"]];
    for (const [id, vals, kind] of boxes) {
      const box = $(id);
      box.textContent = "";
      if (sel.l === 1) {
        const c = el("canvas", { class: "pixelated", width: 28, height: 28, role: "img" });
        if (kind === "x") paintImage(c, vals, 28, "grey");
        else paintImage(c, vals, 28, "div", kind === "w" ? wScale : cScale);
        c.setAttribute("aria-label", { x: "the drawing", w: "the unit's 784 weights as 28 by 28", c: "weights times pixels" }[kind]);
        box.append(c);
      } else {
        const g = makeGrid(r.data.n_in, UNIT_STRIP, 14, { fit: true });
        g.values = vals;
        g.scale = kind === "w" ? wScale : kind === "c" ? cScale : (vals ? maxAbs(vals) || 1 : 1);
        paintGrid(g);
        box.append(g.canvas);
      }
      if (!vals) box.append(el("span", { class: "empty-note", text: kind === "c" ? "draw a digit" : "" }));
    }

    // the numbers: Z = Σ w·x + b, and what the server found
    let html = "";
    const zName = sym("Z", sel.l, u);
    const server = state.values[d.zName];
    if (contrib) {
      let sum = 0;
      let pos = 0;
      let neg = 0;
      for (const c of contrib) {
        sum += c;
        if (c > 0) pos += c;
        else neg += c;
      }
      const z = sum + b;
      html += `<p class="z-line" data-testid="unit-z" data-value="${z}">${zName} = Σ<sub>i</sub> ` +
        `${sym("W", sel.l, `${u},i`)} ${sym("A", prev, "i")} + ${sym("b", sel.l, u)} = ` +
        `${fmt(sum, 4)} + (${fmt(b, 4)}) = <strong>${fmt(z, 4)}</strong></p>`;
      html += `<p class="parts">the inputs push it up by <span class="pos">+${fmt(pos)}</span> and down by ` +
        `<span class="neg">${fmt(neg)}</span>; the bias adds ${fmt(b)}.</p>`;
      const a = state.values[d.aName];
      if (a) {
        const verdict = d.act === "relu" ? (z > 0 ? "active: it passes Z on" : "silent: ReLU outputs 0") : "";
        html += `<p>${sym("A", sel.l, u)} = ${actName(d.act)}(${fmt(z, 4)}) ${d.act === "softmax" ? "(with the other outputs)" : ""} = ` +
          `<strong>${d.act === "softmax" ? pct(a[u]) : fmt(a[u], 4)}</strong> ${verdict ? `· ${verdict}` : ""}</p>`;
      }
      if (server) {
        const ok = Math.abs(server[u] - z) <= 1e-3 * Math.max(1, Math.abs(z));
        html += `<p class="muted">The server's forward pass gave ${zName} = ${fmt(server[u], 5)}${ok ? " ✓ the same" : ""}.</p>`;
      }
    } else {
      html += `<p class="z-line" data-testid="unit-z">${zName} = Σ<sub>i</sub> ${sym("W", sel.l, `${u},i`)} ` +
        `${sym("A", prev, "i")} + ${sym("b", sel.l, u)}, with ${sym("b", sel.l, u)} = ${fmt(b, 4)}. ` +
        `<span class="muted">Draw a digit to see its value.</span></p>`;
    }
    const ws = stats(w);
    html += `<p class="muted">Weights from ${fmt(ws.min)} to ${fmt(ws.max)}; colours scaled to ±${fmt(wScale)}` +
      `${contrib ? ` (weights) and ±${fmt(cScale)} (contributions)` : ""}.</p>`;
    $("unit-math").innerHTML = html;
    $("unit-prev").disabled = u <= 0;
    $("unit-next").disabled = u >= d.n_out - 1;
  }

  $("unit-prev").addEventListener("click", () => {
    if (state.selected && state.selected.unit > 0) selectUnit(state.selected.l, state.selected.unit - 1, false);
  });
  $("unit-next").addEventListener("click", () => {
    const s = state.selected;
    if (s && s.unit < state.dense[s.l - 1].n_out - 1) selectUnit(s.l, s.unit + 1, false);
  });

  // ---- the model ----------------------------------------------------------------------------
  function describeModel(m) {
    const meta = m.metadata || {};
    const metrics = meta.metrics || {};
    const arch = [784, ...state.dense.map((d) => d.n_out)].join("-");
    const acts = state.dense.slice(0, -1).map((d) => actName(d.act));
    const path = String(m.source).split("/");
    const short = path.length > 3 ? `…/${path.slice(-3).join("/")}` : m.source;
    // .model-extra: the file's path and the details, kept off a phone's first screen (style.css)
    let html = `<span class="model-extra"><span class="mono" title="${esc(m.source)}">${esc(short)}</span> · </span>` +
      `${arch}${acts.length ? ` · ${esc([...new Set(acts)].join(", "))}` : ""}` +
      `<span class="model-extra"> · ${int(m.n_parameters)} parameters</span>`;
    if (Number.isFinite(metrics.test_accuracy)) {
      const ds = typeof meta.dataset === "object" && meta.dataset ? meta.dataset.name : metrics.dataset;
      html += ` · test accuracy <strong>${pct(metrics.test_accuracy)}</strong>` +
        `${ds ? `<span class="model-extra"> (trained on ${esc(ds)})</span>` : ""}`;
    }
    $("model-info").innerHTML = html;
  }

  function denseLayers(m) {
    const out = [];
    const layers = (m.layers || []).filter((x) => x.kind !== "dropout");
    for (const layer of layers) {
      if (layer.kind === "dense") {
        const l = out.length + 1;
        const [nOut, nIn] = layer.W_shape || [layer.shape[0], out.length ? out[out.length - 1].n_out : 784];
        out.push({ l, n_in: nIn, n_out: nOut, act: null, zName: layer.name || `Z${l}`, aName: `A${l}` });
      } else if (out.length && !out[out.length - 1].act) {
        out[out.length - 1].act = layer.kind;
        out[out.length - 1].aName = layer.name || `A${out.length}`;
      }
    }
    for (const d of out) if (!d.act) d.aName = d.zName; // no activation: A = Z
    return out;
  }

  async function loadModel() {
    const r = await api("/api/model");
    if (!r.ok) {
      $("model-info").textContent = `No model: ${r.error}`;
      setStatus(`The model could not be loaded: ${r.error}`, "error");
      return;
    }
    state.model = r.data;
    state.dense = denseLayers(r.data);
    describeModel(r.data);
    buildProbabilities();
    buildNetwork();
    showEmpty();
    document.body.dataset.ready = "true";
    if (hasInk()) {
      setPredState("waiting");
      send();
    }
  }

  let lastNarrow = null;
  window.addEventListener("resize", () => {
    const narrow = window.matchMedia("(max-width: 700px)").matches;
    if (state.model && narrow !== lastNarrow) {
      lastNarrow = narrow;
      buildNetwork();
      renderNetwork();
    }
  });

  // ---- tabs ---------------------------------------------------------------------------------
  const tabs = [$("tab-draw"), $("tab-training")];
  function showTab(name, focus = false) {
    for (const t of tabs) {
      const on = t.id === `tab-${name}`;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
      if (on && focus) t.focus();
    }
    document.body.dataset.view = name;
    if (name === "training") training.start();
    else training.pause();
  }
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => {
      const name = t.id.slice(4);
      history.replaceState(null, "", name === "draw" ? location.pathname : `#${name}`);
      showTab(name);
    });
    t.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        const next = tabs[(i + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
        next.click();
        next.focus();
      }
    });
  });
  window.addEventListener("hashchange", () => showTab(location.hash === "#training" ? "training" : "draw"));

  // ---- the training view --------------------------------------------------------------------
  const training = (() => {
    let active = false;
    let runsTimer = null;
    let pollTimer = null;
    let source = null;
    let current = null; // the picked run's name
    let chosen = false; // the user picked one: do not follow new runs
    let weightsVersion = null;
    let lastHistory = null;
    const picker = $("run-picker");

    async function refreshRuns() {
      const r = await api("/api/runs");
      if (!active) return;
      if (!r.ok) {
        $("run-message").textContent = `Cannot list the runs: ${r.error}`;
        return;
      }
      const runs = r.data.runs || [];
      const served = r.data.served;
      const names = runs.map((x) => x.name);
      const same = names.length === picker.options.length && names.every((n, i) => picker.options[i].value === n);
      if (!same) {
        picker.textContent = "";
        for (const run of runs) picker.append(el("option", { value: run.name }));
      }
      runs.forEach((run, i) => {
        picker.options[i].textContent = optionText(run, served);
      });
      servedRun = served;
      if (!runs.length) {
        $("run-message").textContent = `No runs in ${r.data.root}/ yet. Start one with: digitnet train --out ${r.data.root}/NAME`;
        picker.disabled = true;
        return;
      }
      picker.disabled = false;
      let want = current;
      if (!chosen || !names.includes(want)) {
        const live = runs.find((x) => x.status === "training");
        want = (live && live.name) || (names.includes(current) ? current : null) ||
          (names.includes(served) ? served : runs[0].name);
      }
      picker.value = want;
      if (want !== current) follow(want);
    }

    let servedRun = null;
    function optionText(run, served) {
      const total = run.epochs ? `/${run.epochs}` : "";
      return `${run.name} · ${run.status} ${run.epochs_done}${total}${run.name === served ? " · served model" : ""}`;
    }

    function stopStream() {
      if (source) {
        source.close();
        source = null;
      }
      clearTimeout(pollTimer);
      pollTimer = null;
    }

    function follow(name) {
      stopStream();
      current = name;
      weightsVersion = null;
      lastHistory = null;
      $("weights-img").hidden = true;
      $("weights-empty").hidden = false;
      $("run-message").textContent = "";
      document.body.dataset.run = name;
      if (!active) return;
      const url = `/api/runs/${encodeURIComponent(name)}`;
      if (typeof EventSource === "function") {
        source = new EventSource(`${url}/events`);
        source.addEventListener("history", (e) => {
          try {
            render(JSON.parse(e.data));
          } catch (err) {
            // a malformed event: the next one will do
          }
        });
        source.addEventListener("done", () => stopStream());
        source.onerror = () => {
          // the stream failed (a proxy, an old server): fall back to polling
          if (source) source.close();
          source = null;
          if (current === name && active) poll(name);
        };
      } else {
        poll(name);
      }
    }

    let pollDelay = POLL_MS;
    async function poll(name) {
      clearTimeout(pollTimer);
      const r = await api(`/api/runs/${encodeURIComponent(name)}/history`);
      if (current !== name || !active) return;
      if (r.ok) {
        pollDelay = POLL_MS;
        render(r.data);
      } else {
        pollDelay = Math.min(30000, pollDelay * 2); // the server is gone: ask less and less often
        $("run-message").textContent = `Cannot read the run: ${r.error}`;
      }
      if (!r.ok || r.data.status !== "finished") pollTimer = setTimeout(() => poll(name), pollDelay);
    }

    function render(h) {
      if (h.name !== current) return;
      lastHistory = h;
      const rows = h.rows || [];
      const done = Number.isFinite(h.epochs_done) ? h.epochs_done : rows.length;
      $("epochs-done").textContent = String(done);
      $("epochs-total").textContent = h.epochs ? String(h.epochs) : "?";
      $("epochs-bar").max = Math.max(1, h.epochs || done || 1);
      $("epochs-bar").value = done;
      const option = [...picker.options].find((o) => o.value === h.name);
      if (option) option.textContent = optionText({ ...h, epochs_done: done }, servedRun);
      const badge = $("run-status");
      badge.textContent = h.status;
      badge.className = `badge ${h.status}`;
      const last = rows[rows.length - 1];
      const items = last ? [
        ["cost C", fmt(last.loss, 4)], ["accuracy", pct(last.accuracy, 2)],
        ["validation C", fmt(last.val_loss, 4)], ["validation accuracy", pct(last.val_accuracy, 2)],
        ["α in the last epoch (schedule below)", fmt(last.lr, 3)], ["seconds per epoch", fmt(last.seconds, 2)],
      ] : [];
      $("latest").innerHTML = items.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join("");
      $("run-message").textContent = h.status === "training" && !rows.length
        ? "Training has started: the first epoch is on its way." : "";
      const xMax = Math.max(h.epochs || 0, rows.length, 2);
      chart($("chart-loss"), rows, "loss", "val_loss", { xMax, percent: false, title: "cost C" });
      chart($("chart-acc"), rows, "accuracy", "val_accuracy", { xMax, percent: true, title: "accuracy" });
      chart($("chart-lr"), rows, "lr", null, { xMax, percent: false, title: "learning rate α", label: "α" });
      $("lr-note").textContent = scheduleNote(rows);
      showWeights(h);
    }

    function showWeights(h) {
      if (!h.weights_version || h.weights_version === weightsVersion) return;
      const version = h.weights_version;
      const url = `/api/runs/${encodeURIComponent(h.name)}/weights.png?v=${encodeURIComponent(version)}`;
      const loader = new Image();
      loader.onload = () => {
        if (current !== h.name) return;
        weightsVersion = version;
        const img = $("weights-img");
        img.src = url;
        img.hidden = false;
        img.dataset.version = version;
        $("weights-empty").hidden = true;
      };
      loader.onerror = () => {
        // the checkpoint was being replaced: the next change will try again
      };
      weightsVersion = version;
      loader.src = url;
    }

    function start() {
      if (active) return;
      active = true;
      refreshRuns();
      runsTimer = setInterval(refreshRuns, RUNS_POLL_MS);
      if (current) follow(current);
    }

    function pause() {
      active = false;
      clearInterval(runsTimer);
      runsTimer = null;
      stopStream();
    }

    picker.addEventListener("change", () => {
      chosen = true;
      follow(picker.value);
    });
    window.addEventListener("pagehide", stopStream);
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => { if (active && lastHistory) render(lastHistory); }, 150);
    });
    return { start, pause, get history() { return lastHistory; } };
  })();

  // ---- curves -------------------------------------------------------------------------------
  function niceTicks(lo, hi, count = 5) {
    const span = hi - lo || 1;
    const raw = span / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(10)));
    return ticks;
  }

  /** What the learning-rate curve shows, in words: where α started, peaked and ended. */
  function scheduleNote(rows) {
    const lrs = rows.map((r) => r.lr).filter(Number.isFinite);
    if (!lrs.length) return "";
    const top = Math.max(...lrs);
    const first = lrs[0];
    const last = lrs[lrs.length - 1];
    if (top - Math.min(...lrs) <= 1e-12 * top) return `α stayed at ${fmt(top)} (a constant schedule).`;
    const rise = first < top ? `rose from ${fmt(first)} (warm-up) to ${fmt(top)}` : `started at ${fmt(top)}`;
    const end = last < 1e-3 * top ? `fell to ${fmt(last)}, practically 0: the schedule ends the run with the smallest steps`
      : `fell to ${fmt(last)}`;
    return `α, the size of each step, is set per step by the run's schedule: it ${rise}, then ${end}.`;
  }

  function chart(box, rows, key, valKey, { xMax, percent, title, label = "training" }) {
    const W = Math.round(Math.max(300, Math.min(760, box.clientWidth || 520)));
    const H = W < 440 ? 220 : 260;
    const m = { l: 52, r: 14, t: 12, b: 36 };
    const pts = (k) => rows.filter((r) => Number.isFinite(r[k])).map((r) => [r.epoch, r[k]]);
    const train = pts(key);
    const val = pts(valKey);
    const all = [...train, ...val].map((p) => p[1]);
    box.dataset.points = String(rows.length);
    if (!all.length) {
      box.innerHTML = `<p class="empty">No epochs yet.</p>`;
      return;
    }
    let lo;
    let hi;
    if (percent) {
      lo = Math.max(0, Math.floor(Math.min(...all) * 20) / 20);
      hi = 1;
    } else {
      lo = 0;
      hi = Math.max(...all) || 1;
      const ticks = niceTicks(0, hi * 1.04, 5);
      const step = ticks.length > 1 ? ticks[1] - ticks[0] : hi;
      hi = Math.ceil((hi * 1.04) / step) * step;
    }
    if (hi - lo < 1e-9) hi = lo + 1;
    const X = (e) => m.l + ((e - 1) / Math.max(1, xMax - 1)) * (W - m.l - m.r);
    const Y = (v) => m.t + (1 - (v - lo) / (hi - lo)) * (H - m.t - m.b);
    const yt = niceTicks(lo, hi, 5);
    const xt = niceTicks(1, xMax, Math.min(xMax - 1, 8)).filter((t) => Number.isInteger(t) && t >= 1);
    const yLabel = (v) => (percent ? `${Math.round(v * 100)} %` : fmt(v, 2));
    const what = val.length ? "training and validation" : label;
    let s = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)} per epoch: ${esc(what)}">`;
    s += `<title>${esc(title)} per epoch</title>`;
    for (const t of yt) {
      s += `<line class="grid" x1="${m.l}" x2="${W - m.r}" y1="${Y(t)}" y2="${Y(t)}"/>`;
      s += `<text class="tick" x="${m.l - 6}" y="${Y(t) + 4}" text-anchor="end">${yLabel(t)}</text>`;
    }
    for (const t of xt) {
      s += `<text class="tick" x="${X(t)}" y="${H - m.b + 16}" text-anchor="middle">${t}</text>`;
    }
    s += `<line class="axis" x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}"/>`;
    s += `<text class="axis-label" x="${(m.l + W - m.r) / 2}" y="${H - 4}" text-anchor="middle">epoch</text>`;
    const path = (p) => p.map(([e, v], i) => `${i ? "L" : "M"}${X(e).toFixed(1)},${Y(v).toFixed(1)}`).join("");
    const dots = (p, cls, label) => (p.length > 80 ? "" : p.map(([e, v]) =>
      `<circle class="pt ${cls}" cx="${X(e).toFixed(1)}" cy="${Y(v).toFixed(1)}" r="3.2"><title>epoch ${e}, ${label}: ${percent ? pct(v, 2) : fmt(v, 4)}</title></circle>`).join(""));
    if (val.length) s += `<path class="line val" d="${path(val)}"/>`;
    s += `<path class="line train" d="${path(train)}"/>`;
    s += dots(val, "val", "validation") + dots(train, "train", label);
    s += "</svg>";
    box.innerHTML = s;
  }

  // ---- start --------------------------------------------------------------------------------
  fillPad();
  pad.dataset.version = String(padVersion);
  paintImage($("image28"), null, 28, "grey");
  lastNarrow = window.matchMedia("(max-width: 700px)").matches;
  showTab(location.hash === "#training" ? "training" : "draw");
  loadModel();
})();
