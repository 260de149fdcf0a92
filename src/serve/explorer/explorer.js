// aekit explorer: the page at `/` of `aekit serve`. Plain JavaScript, no network beyond the
// server it came from. `window.aekit` exposes what is shown, for the browser test.
"use strict";

const $ = (id) => document.getElementById(id);
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
const MAX_SLIDERS = 8;

const state = {
  runs: [], run: null, map: null, bounds: null,
  base: null, baseIndex: 0, range: 1, deltas: [],
  pinned: null, selected: null, shownCode: null, own: null,
  blend: null, manifold: null, priorSeed: 0,
  cls: null,
};
window.aekit = { state, shown: { decoded: 0 } };

// ---- requests -------------------------------------------------------------------------------

function status(text, isError) {
  const el = $("status");
  el.textContent = text || "";
  el.classList.toggle("error", !!isError);
}

async function call(path, body, contentType) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": contentType || "application/json" },
    body: contentType ? body : JSON.stringify(body),
  };
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

// Relative paths: the page also works behind a proxy that serves it under a prefix (a hosted
// notebook's /proxy/PORT/).
const runPath = (op) => `v1/runs/${encodeURIComponent(state.run.name)}/${op}`;

// A conditional run decodes every code under the class picked in the header (and encodes
// under a sample's own label where it has one).
const withClass = (body, cls = state.cls) => (cls === null ? body : { ...body, class: cls });

// Keeps at most one request of a kind in flight; the latest wish replaces any waiting one, so
// the view follows the pointer without queueing stale decodes.
function latest(fn) {
  let busy = false, waiting = null;
  const pump = async (args) => {
    busy = true;
    try { await fn(...args); } catch (e) { status(e.message, true); }
    busy = false;
    if (waiting) { const next = waiting; waiting = null; pump(next); }
  };
  return (...args) => { if (busy) waiting = args; else pump(args); };
}

// ---- drawing --------------------------------------------------------------------------------

// Raw value → grey level, exactly as the browser test recomputes it.
function level(v) {
  const [lo, hi] = state.run.value_range;
  const t = hi > lo ? (v - lo) / (hi - lo) : 0;
  return Math.round(Math.min(1, Math.max(0, t)) * 255);
}

// Draws one sample into `canvas` at its own resolution (CSS scales it up, pixelated).
function drawSample(canvas, values, mapper) {
  const img = state.run.image;
  const ctx = canvas.getContext("2d");
  if (state.run.series) return drawLines(canvas, values);
  if (!img) return drawBars(canvas, values);
  const { channels: c, height: h, width: w } = img;
  canvas.width = w; canvas.height = h;
  const out = ctx.createImageData(w, h);
  const plane = w * h;
  const to = mapper || level;
  for (let p = 0; p < plane; p++) {
    const r = to(values[p]);
    const g = c === 3 ? to(values[plane + p]) : r;
    const b = c === 3 ? to(values[2 * plane + p]) : r;
    out.data.set([r, g, b, 255], 4 * p);
  }
  ctx.putImageData(out, 0, 0);
}

// Where step `t` of a window of `w` steps and value `v` fall on a 240 x 112 canvas: the
// browser test recomputes these.
function linePoint(t, w, v) {
  return [w > 1 ? (t * 239) / (w - 1) : 0, 111 - (level(v) / 255) * 110];
}

const LINE_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];

// A window of a time series: each channel a line over time, on the run's value range.
function drawLines(canvas, values) {
  const { channels: c, window: w } = state.run.series;
  canvas.width = 240; canvas.height = 112;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, 240, 112);
  ctx.lineWidth = 1.5;
  for (let ch = 0; ch < c; ch++) {
    ctx.strokeStyle = LINE_COLOURS[ch % LINE_COLOURS.length];
    ctx.beginPath();
    for (let t = 0; t < w; t++) {
      const [x, y] = linePoint(t, w, values[ch * w + t]);
      if (t === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    }
    ctx.stroke();
  }
}

// Tabular samples: one bar per feature.
function drawBars(canvas, values) {
  canvas.width = 240; canvas.height = 112;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, 240, 112);
  ctx.fillStyle = "#2864d8";
  const bw = 240 / values.length;
  values.forEach((v, i) => {
    const hgt = (level(v) / 255) * 110;
    ctx.fillRect(i * bw, 111 - hgt, Math.max(1, bw - 1), hgt);
  });
}

// Squared errors as a heat map, scaled to the largest.
function drawHeat(canvas, errors) {
  const max = Math.max(1e-12, ...errors);
  const img = state.run.image;
  if (state.run.series) return drawStepErrors(canvas, errors, max);
  if (!img) return drawBars(canvas, errors);
  const { height: h, width: w, channels: c } = img;
  const plane = w * h;
  const summed = new Float64Array(plane);
  for (let k = 0; k < c * plane; k++) summed[k % plane] += errors[k] / c;
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const out = ctx.createImageData(w, h);
  for (let p = 0; p < plane; p++) {
    const t = Math.sqrt(summed[p] / max);
    out.data.set([Math.round(255 * Math.min(1, 2 * t)), Math.round(255 * Math.max(0, 2 * t - 1)), 40, 255], 4 * p);
  }
  ctx.putImageData(out, 0, 0);
}

// A window's squared errors summed over channels, one red bar per time step.
function drawStepErrors(canvas, errors, max) {
  const { channels: c, window: w } = state.run.series;
  canvas.width = 240; canvas.height = 112;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, 240, 112);
  ctx.fillStyle = "#d62728";
  const bw = 240 / w;
  for (let t = 0; t < w; t++) {
    let e = 0;
    for (let ch = 0; ch < c; ch++) e += errors[ch * w + t];
    const hgt = Math.sqrt(Math.min(1, e / (c * max))) * 110;
    ctx.fillRect(t * bw, 111 - hgt, Math.max(1, bw - 1), hgt);
  }
}

// ---- the code map ---------------------------------------------------------------------------

function mapBounds(points) {
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of points) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const pad = 0.06 * Math.max(x1 - x0, y1 - y0, 1e-6);
  return { x0: x0 - pad, x1: x1 + pad, y0: y0 - pad, y1: y1 + pad };
}

function toCanvas([x, y]) {
  const c = $("map"), b = state.bounds;
  return [((x - b.x0) / (b.x1 - b.x0)) * c.width, (1 - (y - b.y0) / (b.y1 - b.y0)) * c.height];
}

function fromCanvas(px, py) {
  const c = $("map"), b = state.bounds;
  return [b.x0 + (px / c.width) * (b.x1 - b.x0), b.y0 + (1 - py / c.height) * (b.y1 - b.y0)];
}

// A code's place on the map's plane.
function project(code) {
  const p = state.map.projection;
  if (!p) return code.length === 1 ? [code[0], 0] : [code[0], code[1]];
  return p.components.map((comp) => comp.reduce((s, w, j) => s + w * (code[j] - p.mean[j]), 0));
}

function drawMap() {
  const c = $("map"), ctx = c.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, c.width, c.height);
  const { points, labels } = state.map;
  ctx.globalAlpha = 0.75;
  points.forEach((pt, i) => {
    const [x, y] = toCanvas(pt);
    ctx.fillStyle = labels ? PALETTE[labels[i] % PALETTE.length] : "#2864d8";
    ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
  });
  ctx.globalAlpha = 1;
  const mark = (pt, color, size, shape) => {
    if (!pt) return;
    const [x, y] = toCanvas(pt);
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
    if (shape === "diamond") {
      ctx.moveTo(x, y - size); ctx.lineTo(x + size, y); ctx.lineTo(x, y + size); ctx.lineTo(x - size, y); ctx.closePath();
    } else {
      ctx.arc(x, y, size, 0, 2 * Math.PI);
    }
    ctx.stroke();
  };
  if (state.selected !== null) mark(points[state.selected], "#000", 6);
  mark(state.pinned, "#d62728", 7);
  if (state.shownCode) mark(project(state.shownCode), "#111", 6, "diamond");
  if (state.own) mark(state.own, "#9467bd", 8, "diamond");
}

function drawLegend() {
  const el = $("legend");
  el.textContent = "";
  const { classes, labels } = state.map;
  if (!labels) return;
  const seen = [...new Set(labels)].sort((a, b) => a - b);
  for (const l of seen) {
    const span = document.createElement("span");
    span.style.setProperty("--swatch", PALETTE[l % PALETTE.length]);
    span.textContent = classes && classes[l] !== undefined ? classes[l] : String(l);
    el.appendChild(span);
  }
}

function pointerPoint(ev) {
  const c = $("map"), r = c.getBoundingClientRect();
  return fromCanvas(((ev.clientX - r.left) / r.width) * c.width, ((ev.clientY - r.top) / r.height) * c.height);
}

function nearestSample(pt, radiusPx) {
  const [px, py] = toCanvas(pt);
  let best = null, bestD = radiusPx * radiusPx;
  state.map.points.forEach((q, i) => {
    const [x, y] = toCanvas(q);
    const d = (x - px) ** 2 + (y - py) ** 2;
    if (d <= bestD) { best = i; bestD = d; }
  });
  return best;
}

// ---- decoding what is shown -----------------------------------------------------------------

function show(x, code, source) {
  if (state.run.table) showDecodedRow(x); else drawSample($("decoded"), x);
  state.shownCode = code;
  $("decoded-caption").textContent = `${source}\nz = (${code.map((v) => v.toFixed(3)).join(", ")})`;
  window.aekit.shown = { decoded: window.aekit.shown.decoded + 1, source, code, x };
  drawMap();
}

const decodePoint = latest(async (pt, source) => {
  const r = await call(runPath("decode"), withClass({ map: [pt] }));
  show(r.x[0], r.codes[0], source);
  window.aekit.shown.point = pt;
});

const decodeCode = latest(async (code, source) => {
  const r = await call(runPath("decode"), withClass({ codes: [code] }));
  show(r.x[0], r.codes[0], source);
});

// ---- sliders --------------------------------------------------------------------------------

function buildSliders() {
  const box = $("sliders");
  box.textContent = "";
  const k = Math.min(state.run.latent, MAX_SLIDERS);
  state.deltas = new Array(k).fill(0);
  for (let d = 0; d < k; d++) {
    const label = document.createElement("label");
    label.textContent = `z${d + 1}`;
    label.htmlFor = `slider-${d}`;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", id: `slider-${d}`, min: -100, max: 100, step: 1, value: 0 });
    const out = document.createElement("output");
    out.id = `slider-${d}-value`;
    input.addEventListener("input", () => {
      state.deltas[d] = (Number(input.value) / 100) * state.range;
      out.textContent = (state.base[d] + state.deltas[d]).toFixed(2);
      decodeCode(slidersCode(), `sample ${state.baseIndex}, z${d + 1} ${signed(state.deltas[d])}`);
    });
    box.append(label, input, out);
  }
  if (state.run.latent > k) {
    const note = document.createElement("p");
    note.className = "hint";
    note.textContent = `the first ${k} of ${state.run.latent} code dimensions`;
    box.appendChild(note);
  }
}

const signed = (v) => (v >= 0 ? "+" : "") + v.toFixed(2);

function slidersCode() {
  return state.base.map((v, d) => v + (state.deltas[d] || 0));
}

function resetSliders() {
  state.deltas = state.deltas.map(() => 0);
  state.deltas.forEach((_, d) => {
    $(`slider-${d}`).value = 0;
    $(`slider-${d}-value`).textContent = state.base[d].toFixed(2);
  });
}

async function setBase(index) {
  const s = await call(runPath(`samples/${index}`));
  state.base = s.code[0];
  state.baseIndex = index;
  $("base-index").value = index;
  resetSliders();
  decodeCode(state.base, `sample ${index}`);
}

function setBaseCode(code, source) {
  state.base = code.slice();
  resetSliders();
  decodeCode(state.base, source);
}

// ---- the selected sample ----------------------------------------------------------------------

async function select(index) {
  state.selected = index;
  const s = await call(runPath(`samples/${index}`));
  if (state.run.table) return selectRow(index, s);
  const r = await call(runPath("reconstruct"), withClass({ x: s.x }, state.cls === null ? null : s.label ?? state.cls));
  drawSample($("selected-x"), s.x[0]);
  drawSample($("selected-recon"), r.x[0]);
  $("selected-caption").textContent = `#${index}${s.class !== null ? ` (${s.class})` : ""}`;
  drawMap();
}

// A typed table's row: each column's value, its reconstruction and its share of the row's
// score, the cell shaded by that share against the row's largest (the browser test reads
// `window.aekit.table`).
function selectRow(index, s) {
  const { score, columns } = s.explain;
  const shown = renderColumns($("selected-table"), columns);
  $("selected-caption").textContent = `#${index}${s.class !== null ? ` (${s.class})` : ""}: score ${score.toFixed(4)}`;
  window.aekit.table = { index, score, columns: shown };
  // The row, as the server takes it, ready to be changed and scored under "your own input".
  const kinds = Object.fromEntries(state.run.table.columns.map((c) => [c.name, c.kind]));
  const row = Object.fromEntries(columns.map((c) => [c.column, c.value === "" ? null
    : kinds[c.column] === "numeric" ? Number(c.value)
    : kinds[c.column] === "boolean" ? c.value === "true" : c.value]));
  $("row-json").value = JSON.stringify(row);
  drawMap();
}

// A row's columns into `table`: value, reconstruction, share of the score, each row shaded by
// its share against the largest.
function renderColumns(table, columns) {
  const most = Math.max(1e-12, ...columns.map((c) => c.share));
  table.textContent = "";
  const head = table.insertRow();
  for (const h of ["column", "value", "reconstructed", "share"]) {
    const th = document.createElement("th");
    th.textContent = h;
    head.appendChild(th);
  }
  const shown = columns.map((c) => {
    const tr = table.insertRow();
    const strength = Math.min(1, c.share / most);
    tr.style.background = `rgba(214, 39, 40, ${(0.6 * strength).toFixed(3)})`;
    for (const v of [c.column, c.value === "" ? "(missing)" : c.value, c.reconstructed, c.share.toFixed(4)]) {
      tr.insertCell().textContent = v;
    }
    return { ...c, strength };
  });
  return shown;
}

// A typed table's features (as the API decodes them, in the table's units) as its columns: a
// number, a boolean (probability ≥ ½), a category's most likely level.
function decodeRow(x) {
  return state.run.table.columns.map((c) => {
    if (c.kind === "numeric") return [c.name, Number(x[c.start].toPrecision(6)).toString()];
    if (c.kind === "boolean") return [c.name, String(x[c.start] >= 0.5)];
    const p = x.slice(c.start, c.start + c.levels.length);
    return [c.name, c.levels[p.indexOf(Math.max(...p))]];
  });
}

function showDecodedRow(x) {
  const table = $("decoded-table");
  table.textContent = "";
  const rows = decodeRow(x);
  for (const [name, value] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = name;
    tr.insertCell().textContent = value;
  }
  window.aekit.decodedRow = Object.fromEntries(rows);
}

// A typed table's own row (JSON, one object), scored and explained column by column.
async function scoreRow() {
  let row;
  try { row = JSON.parse($("row-json").value); } catch (e) { throw new Error(`the row is not JSON: ${e.message}`); }
  const s = await call(runPath("score"), { rows: [row], explain: 0 });
  const score = s.scores[0];
  const columns = renderColumns($("own-table"), s.explain[0].columns);
  verdict(score, s.threshold);
  window.aekit.ownRow = { score, threshold: s.threshold, columns, unseen: s.unseen };
  if (s.unseen.length) status(s.unseen.map((u) => `${u.column}: ${u.examples.join(", ")} never seen in training`).join("; "));
}

// "score S against threshold T: anomalous|normal" under your own input.
function verdict(score, threshold) {
  const el = $("score-text");
  el.textContent = "";
  if (threshold === null) {
    el.textContent = `score ${score.toFixed(4)} (no threshold stored with this run)`;
    return;
  }
  const word = document.createElement("span");
  const bad = score > threshold;
  word.className = bad ? "bad" : "good";
  word.textContent = bad ? "anomalous" : "normal";
  el.append(`score ${score.toFixed(4)} against threshold ${threshold.toFixed(4)}: `, word);
}

// ---- blending -------------------------------------------------------------------------------

const updateBlend = latest(async () => {
  const a = Number($("blend-a").value), b = Number($("blend-b").value);
  const key = `${a}/${b}/${state.cls}`;
  if (!state.blend || state.blend.key !== key) {
    const r = await call(runPath("blend"), withClass({ a, b, steps: 21 }));
    state.blend = { key, ...r };
  }
  const i = Number($("blend-t").value);
  $("blend-t-value").textContent = state.blend.weights[i].toFixed(2);
  drawSample($("blend-pixel"), state.blend.pixel[i]);
  drawSample($("blend-latent"), state.blend.latent[i]);
  window.aekit.blend = { t: state.blend.weights[i], index: i, pixel: state.blend.pixel[i], latent: state.blend.latent[i] };
});

// ---- the prior ------------------------------------------------------------------------------

// Φ⁻¹(p) (Acklam's approximation, as the library's `normal_quantile`).
function normalQuantile(p) {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549671010739319, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

async function samplePrior() {
  const r = await call(runPath("sample"), withClass({ n: 8, seed: state.priorSeed++ }));
  const strip = $("prior-samples");
  strip.textContent = "";
  r.x.forEach((x, i) => {
    const c = document.createElement("canvas");
    c.className = "pixels";
    drawSample(c, x);
    c.title = "click to explore this code";
    c.addEventListener("click", () => setBaseCode(r.codes[i], "prior sample"));
    strip.appendChild(c);
  });
}

async function drawManifold() {
  const n = Math.max(2, Math.min(30, Number($("manifold-n").value) || 12));
  const l = state.run.latent;
  const codes = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const z = new Array(l).fill(0);
      z[0] = normalQuantile((j + 0.5) / n);
      if (l > 1) z[1] = normalQuantile(1 - (i + 0.5) / n);
      codes.push(z);
    }
  }
  const r = await call(runPath("decode"), withClass({ codes }));
  const img = state.run.image;
  const canvas = $("manifold");
  if (!img) return;
  const { width: w, height: h } = img;
  canvas.width = n * w; canvas.height = n * h;
  const ctx = canvas.getContext("2d");
  const tile = document.createElement("canvas");
  r.x.forEach((x, k) => {
    drawSample(tile, x);
    ctx.drawImage(tile, (k % n) * w, Math.floor(k / n) * h);
  });
  state.manifold = { n, codes };
}

// ---- your own input -------------------------------------------------------------------------

async function scoreInput(body, contentType) {
  if (!contentType) body = withClass(body);
  const [s, e] = await Promise.all([
    call(runPath("score"), body, contentType),
    call(runPath("encode"), body, contentType),
  ]);
  const r = await call(runPath("reconstruct"), body, contentType);
  const x = contentType ? null : body.x[0];
  const errors = s.errors[0];
  if (x) drawSample($("own-x"), x);
  drawSample($("own-recon"), r.x[0]);
  drawHeat($("own-heat"), errors);
  const score = s.scores[0];
  verdict(score, s.threshold);
  window.aekit.own = { score, threshold: s.threshold, code: e.codes[0], recon: r.x[0] };
  state.own = e.map[0];
  drawMap();
  if (state.run.denoising) {
    const d = await call(runPath("reconstruct"), withClass({ x: [ownInputValues(x, r)], corrupt: true }));
    $("denoise-box").hidden = false;
    drawSample($("own-noisy"), d.noisy[0]);
    drawSample($("own-denoised"), d.x[0]);
  }
}

// The raw input, for the noisy → denoised view of a PNG: read back from the input canvas.
function ownInputValues(x, r) {
  if (x) return x;
  const img = state.run.image, [lo, hi] = state.run.value_range;
  const ctx = $("own-x").getContext("2d");
  const px = ctx.getImageData(0, 0, img.width, img.height).data;
  const plane = img.width * img.height, out = new Array(r.x[0].length);
  for (let k = 0; k < out.length; k++) out[k] = lo + (px[4 * (k % plane) + Math.floor(k / plane)] / 255) * (hi - lo);
  return out;
}

async function scoreFile(file) {
  if (!state.run.image) return status("this run's samples are not images: paste a CSV row", true);
  const bytes = await file.arrayBuffer();
  // Show the picture as the server will see it: resized to the run's size.
  const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
  const c = $("own-x"), img = state.run.image;
  c.width = img.width; c.height = img.height;
  const ctx = c.getContext("2d");
  ctx.drawImage(bitmap, 0, 0, img.width, img.height);
  await scoreInput(bytes, "image/png");
  status(`scored ${file.name}`);
}

// ---- wiring ---------------------------------------------------------------------------------

async function loadRun(name) {
  state.run = state.runs.find((r) => r.name === name);
  state.map = await call(runPath("codes"));
  state.bounds = mapBounds(state.map.points);
  state.pinned = null; state.selected = null; state.own = null; state.blend = null;
  $("run-about").textContent = `${state.run.architecture}, ${state.run.parameters.toLocaleString()} parameters; ${state.map.points.length} samples of ${state.map.data}`;
  $("map-axes").textContent = state.map.axes === "pca" ? "(first two principal components of the codes)" : "(the codes)";
  const prior = state.run.capabilities.prior;
  $("prior-panel").hidden = !prior;
  $("blend-latent-caption").textContent = prior ? "decode(slerp(h_a, h_b, t))" : "decode((1−t)·h_a + t·h_b)";
  $("blend-kind").textContent = prior ? "(spherical in code space)" : "";
  $("csv-box").hidden = !!state.run.image || !!state.run.table;
  // A typed table's selected row is a table of its columns, not a picture.
  $("selected-table").hidden = !state.run.table;
  $("selected-pair").hidden = !!state.run.table;
  // A series' own input is a window of values, a table's a row of its columns: not pictures.
  $("drop").hidden = !!state.run.series || !!state.run.table;
  $("row-box").hidden = !state.run.table;
  $("own-table").hidden = !state.run.table;
  $("own-pair").hidden = !!state.run.table;
  $("decoded").hidden = !!state.run.table;
  $("decoded-table").hidden = !state.run.table;
  $("denoise-box").hidden = true;
  buildClassPicker();
  const n = state.map.points.length - 1;
  for (const id of ["base-index", "blend-a", "blend-b"]) $(id).max = n;
  drawLegend();
  buildSliders();
  drawMap();
  await setBase(0);
  await select(0);
  updateBlend();
  if (prior) await drawManifold();
  status(`${state.run.name} loaded`);
  window.aekit.ready = state.run.name;
}

// The class picker of a conditional run: its classes by name where the data names them.
function buildClassPicker() {
  const k = state.run.condition_classes || 0;
  const picker = $("class-select");
  picker.textContent = "";
  $("class-box").hidden = k === 0;
  state.cls = k === 0 ? null : 0;
  for (let c = 0; c < k; c++) picker.add(new Option((state.run.classes || [])[c] ?? String(c), c));
}

async function setClass(cls) {
  state.cls = cls;
  state.blend = null;
  decodeCode(slidersCode(), `sample ${state.baseIndex}, class ${cls}`);
  updateBlend();
  if (state.run.capabilities.prior) await Promise.all([drawManifold(), samplePrior()]);
  window.aekit.cls = cls;
}

async function main() {
  const { runs } = await call("v1/runs");
  state.runs = runs.map((r) => ({ ...r, value_range: r.value_range || [0, 1] }));
  const select = $("run-select");
  for (const r of state.runs) select.add(new Option(`${r.name} — ${r.kind}, ${r.latent}-d code`, r.name));
  select.addEventListener("change", () => loadRun(select.value).catch((e) => status(e.message, true)));
  $("class-select").addEventListener("change", (ev) => setClass(Number(ev.target.value)).catch((e) => status(e.message, true)));

  const map = $("map");
  map.addEventListener("pointermove", (ev) => {
    if (!state.map) return;
    const pt = pointerPoint(ev);
    decodePoint(pt, `map (${pt[0].toFixed(2)}, ${pt[1].toFixed(2)})`);
  });
  map.addEventListener("click", (ev) => {
    const pt = pointerPoint(ev);
    state.pinned = pt;
    const near = nearestSample(pt, 6);
    if (near !== null) select(near).catch((e) => status(e.message, true));
    call(runPath("decode"), withClass({ map: [pt] }))
      .then((r) => setBaseCode(r.codes[0], `pinned (${pt[0].toFixed(2)}, ${pt[1].toFixed(2)})`))
      .catch((e) => status(e.message, true));
  });
  map.addEventListener("pointerleave", () => {
    if (state.base) decodeCode(slidersCode(), state.pinned ? "pinned point" : `sample ${state.baseIndex}`);
  });

  document.querySelectorAll("input[name=range]").forEach((r) => r.addEventListener("change", () => {
    state.range = Number(r.value);
    state.deltas.forEach((_, d) => $(`slider-${d}`).dispatchEvent(new Event("input")));
  }));
  $("reset-sliders").addEventListener("click", () => { resetSliders(); decodeCode(state.base, `sample ${state.baseIndex}`); });
  $("base-index").addEventListener("change", (ev) => setBase(Number(ev.target.value)).catch((e) => status(e.message, true)));

  $("blend-t").addEventListener("input", updateBlend);
  for (const id of ["blend-a", "blend-b"]) $(id).addEventListener("change", updateBlend);
  $("blend-a-selected").addEventListener("click", () => { if (state.selected !== null) { $("blend-a").value = state.selected; updateBlend(); } });
  $("blend-b-selected").addEventListener("click", () => { if (state.selected !== null) { $("blend-b").value = state.selected; updateBlend(); } });

  $("prior-sample").addEventListener("click", () => samplePrior().catch((e) => status(e.message, true)));
  $("manifold-draw").addEventListener("click", () => drawManifold().catch((e) => status(e.message, true)));
  $("manifold").addEventListener("click", (ev) => {
    if (!state.manifold) return;
    const c = $("manifold"), r = c.getBoundingClientRect(), n = state.manifold.n;
    const j = Math.min(n - 1, Math.floor(((ev.clientX - r.left) / r.width) * n));
    const i = Math.min(n - 1, Math.floor(((ev.clientY - r.top) / r.height) * n));
    setBaseCode(state.manifold.codes[i * n + j], `prior grid cell (${i}, ${j})`);
  });

  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    const file = ev.dataTransfer.files[0];
    if (file) scoreFile(file).catch((e) => status(e.message, true));
  });
  $("file-input").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    if (file) scoreFile(file).catch((e) => status(e.message, true));
  });
  $("row-score").addEventListener("click", () => scoreRow().catch((e) => status(e.message, true)));
  $("csv-score").addEventListener("click", () => {
    const values = $("csv-row").value.split(/[,\s;]+/).filter((s) => s.length).map(Number);
    scoreInput({ x: [values] }).catch((e) => status(e.message, true));
  });

  await loadRun(state.runs[0].name);
}

main().catch((e) => status(e.message, true));
