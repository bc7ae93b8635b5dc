/* PhenoSeq prediction report: draws the plate map, heatmap, forest plot, effect-vs-confidence
   view and reliability diagram as inline SVG from the embedded JSON. No library, no network. */
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("phenoseq-data").textContent);
  const M = D.meta, W = D.wells, NS = "http://www.w3.org/2000/svg";
  const UP = "#b2182b", DOWN = "#2166ac", UNC = "#8c8c8c", SEL = "#e7298a", FLAG = "#e08214";
  const LV = Math.round(M.level * 100) + "%";
  const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779",
    "#6ece58", "#b5de2b", "#fde725"];
  const RDBU = ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7",
    "#f4a582", "#d6604d", "#b2182b", "#67001f"];
  const state = { layer: null, gene: null, sel: null, mark: null };
  const pickCol = {};  // gene index -> column of D.pick
  if (D.pick) D.pick.cols.forEach((g, k) => { pickCol[g] = k; });

  // ---------------------------------------------------------------- small helpers
  function el(tag, attrs, parent, text) {
    const n = document.createElementNS(NS, tag);
    for (const k in attrs || {}) n.setAttribute(k, attrs[k]);
    if (text !== undefined) n.textContent = text;
    if (parent) parent.appendChild(n);
    return n;
  }
  function svg(host, w, h) {
    return el("svg", { width: w, height: h, viewBox: "0 0 " + w + " " + h }, host);
  }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
  }
  function num(v, d, signed) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    let s = v.toFixed(d === undefined ? 2 : d);
    if (/^-0\.?0*$/.test(s)) s = s.slice(1);  // no "-0.00"
    return signed && s[0] !== "-" ? "+" + s : s;
  }
  function hex(c) { return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)); }
  function ramp(stops, t) {
    t = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0.5));
    const x = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
    const a = hex(stops[i]), b = hex(stops[i + 1]);
    return "rgb(" + a.map((v, k) => Math.round(v + f * (b[k] - v))).join(",") + ")";
  }
  const viridis = (t) => ramp(VIRIDIS, t);
  const diverging = (v, lim) => ramp(RDBU, 0.5 + 0.5 * v / (lim || 1));
  const call = (lo, hi) => (lo > 0 ? 1 : hi < 0 ? -1 : 0);
  const callColour = (c) => (c > 0 ? UP : c < 0 ? DOWN : UNC);
  const callName = (c) => (c > 0 ? "up" : c < 0 ? "down" : "uncertain (interval crosses 0)");
  function wellName(w) { return [w.p, w.w].filter(Boolean).join(" ") || w.g; }
  function niceTicks(lo, hi, n) {
    const span = hi - lo || 1, raw = span / (n || 5), mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= (n || 5)) || 10 * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(10));
    return out;
  }
  function width(id) { return document.getElementById(id).clientWidth; }
  function short(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }

  // ---------------------------------------------------------------- tooltip
  const tip = document.getElementById("tip");
  function hover(node, html) {
    node.addEventListener("mousemove", (e) => {
      tip.innerHTML = html();
      tip.style.display = "block";
      const x = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 6);
      const y = e.clientY + 16 + tip.offsetHeight > window.innerHeight
        ? e.clientY - tip.offsetHeight - 10 : e.clientY + 16;
      tip.style.left = Math.max(4, x) + "px";
      tip.style.top = Math.max(4, y) + "px";
    });
    node.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  }
  const NEWS = M.new_from === "seen_treatment";  // whether the summary says which are new
  function why(w) {
    if (w.flag) {
      return "flagged: confidence " + num(w.conf) + " < " + M.ood_threshold + (M.has_unc
        ? ": a larger expected error than almost every known-good calibration well"
        : ": morphology unlike the training wells (a new compound?)");
    }
    if (w.conf !== null && w.conf < 0.25) return "low confidence: few training wells look like it";
    return "";
  }
  function wellTip(i, line) {
    const w = W[i], reason = why(w);
    const rows = [["well", wellName(w)], ["group", w.g]].concat(w.detail);
    return "<b>" + esc(w.t) + "</b>" + (w.ctrl ? " (control)" : "") + "<br>" +
      (line ? line + "<br>" : "") +
      "confidence " + (w.conf === null ? "– (not calibrated)" : num(w.conf)) + "<br>" +
      (w.unc !== null ? "expected error " + num(w.unc, 3) + " (log1p)<br>" : "") +
      (w.new && NEWS ? "<span class=why>new compound: its treatment was not in training</span><br>" : "") +
      (reason ? "<span class=why>" + esc(reason) + "</span><br>" : "") +
      rows.map((r) => "<span style='color:#666'>" + esc(r[0]) + "</span> " + esc(r[1])).join("<br>");
  }

  // ---------------------------------------------------------------- plate map
  function geneValue(i) {
    const k = pickCol[state.gene];
    if (!D.pick || k === undefined) return null;
    const m = D.pick.m[i][k];
    return m === null ? null : { m: m, lo: D.pick.lo[i][k], hi: D.pick.hi[i][k] };
  }
  const rankOf = {};
  D.next.forEach((r) => { rankOf[r.i] = r.rank; });
  function layers() {
    const out = [];
    if (M.calibrated) out.push(["conf", "confidence"], ["flag", "unlike the training data (OOD)"]);
    if (M.has_delta && D.pick) out.push(["gene", "a gene's predicted change"]);
    out.push(["rank", "sequencing rank"]);
    return out;
  }
  function geneLim() {
    const k = pickCol[state.gene];
    let lim = 0;
    D.pick.m.forEach((row) => { if (row[k] !== null) lim = Math.max(lim, Math.abs(row[k])); });
    return lim || 1;
  }
  function wellStyle(i, lim) {
    // {fill, stroke, hollow, text, line}: how a predicted well looks in the current layer
    const w = W[i], L = state.layer;
    if (L === "rank") {
      const r = rankOf[i];
      return r ? { fill: viridis(0.15 + 0.7 * (r - 1) / Math.max(1, D.next.length - 1)),
        text: String(r), line: "sequencing rank " + r } : { fill: "#ececec", line: "not in the list" };
    }
    const isNew = NEWS ? " · new compound" : "";
    if (L === "flag") {
      return { fill: w.flag ? FLAG : "#9ecae1", hatch: w.new && NEWS, line: (w.flag
        ? "flagged: unlike the training data" : "like the training data") + (w.new ? isNew : "") };
    }
    if (L === "conf") {
      return { fill: viridis(w.conf), hatch: w.new, line: "confidence " + num(w.conf) +
        (w.new ? (NEWS ? isNew : " · flagged") : "") };
    }
    if (w.new) return { fill: "url(#ps-hatch)", line: (NEWS ? "new compound" : "flagged") + ": no value shown" };
    const v = geneValue(i), g = D.genes[state.gene];
    if (w.ctrl) return { fill: "#d9d9d9", text: "C", line: g + ": control well (no change)" };
    if (!v) return { fill: "#f0f0f0", text: "–", line: g + ": no control on this plate" };
    const c = call(v.lo, v.hi);
    const line = g + " " + num(v.m, 2, true) + " [" + num(v.lo, 2, true) + ", " +
      num(v.hi, 2, true) + "] " + callName(c);
    return c === 0 ? { fill: "#fff", stroke: "#9a9a9a", dash: "3,2", line: line }
      : { fill: diverging(v.m, lim), line: line };
  }
  function drawPlates() {
    const host = document.getElementById("plate-view");
    host.innerHTML = "";
    if (!M.layout) {
      host.innerHTML = "<p class=note>No well positions (Metadata_Well) in the summary: " +
        "no plate map. The tables below still rank the groups.</p>";
      return;
    }
    const nr = M.layout === 96 ? 8 : 16, nc = M.layout === 96 ? 12 : 24;
    const left = 22, top = 18;
    const cell = Math.max(14, Math.min(46, Math.floor((width("plate-view") - left - 6) / nc)));
    const lim = state.layer === "gene" ? geneLim() : 1;
    const at = {};
    W.forEach((w, i) => { if (w.pos) at[w.p + "|" + w.pos[0] + "|" + w.pos[1]] = i; });
    M.plates.forEach((p) => {
      const box = document.createElement("div");
      box.className = "plate";
      if (M.plates.length > 1 || p) box.innerHTML = "<h3>plate " + esc(p || "–") + "</h3>";
      host.appendChild(box);
      const s = svg(box, left + nc * cell + 6, top + nr * cell + 6);
      const fs = Math.min(12, Math.max(9, cell * 0.32));
      for (let c = 0; c < nc; c++) {
        el("text", { x: left + (c + 0.5) * cell, y: top - 5, "text-anchor": "middle",
          "font-size": fs }, s, String(c + 1));
      }
      for (let r = 0; r < nr; r++) {
        el("text", { x: left - 7, y: top + (r + 0.5) * cell + fs * 0.35, "text-anchor": "end",
          "font-size": fs }, s, String.fromCharCode(65 + r));
        for (let c = 0; c < nc; c++) {
          const cx = left + (c + 0.5) * cell, cy = top + (r + 0.5) * cell, rad = cell * 0.42;
          const i = at[p + "|" + r + "|" + c];
          if (i === undefined) {
            el("circle", { cx: cx, cy: cy, r: rad, fill: "none", stroke: "#c8c8c8" }, s);
            continue;
          }
          drawWell(s, i, cx, cy, rad, cell, lim);
        }
      }
    });
  }
  function drawWell(s, i, cx, cy, rad, cell, lim) {
    const w = W[i], st = wellStyle(i, lim);
    const g = el("g", { class: "well", "data-i": i }, s);
    const ring = w.flag && NEWS && state.layer !== "flag" && state.layer !== "rank";
    el("circle", { cx: cx, cy: cy, r: rad, fill: st.fill,
      stroke: ring ? FLAG : w.ctrl ? "#111" : (st.stroke || "#777"),
      "stroke-width": ring || w.ctrl ? 2.4 : 1, "stroke-dasharray": st.dash || "" }, g);
    if (st.hatch) el("circle", { cx: cx, cy: cy, r: rad, fill: "url(#ps-hatch-dark)" }, g);
    if (st.text) {
      const dark = state.layer === "rank" && st.text !== "C";
      el("text", { x: cx, y: cy + cell * 0.12, "text-anchor": "middle", "font-size": Math.max(8, cell * 0.32),
        fill: dark ? "#fff" : "#444", style: dark ? "fill:#fff" : "" }, g, st.text);
    }
    if (state.mark === i || state.sel === i) {
      el("circle", { cx: cx, cy: cy, r: rad + 3, fill: "none", stroke: SEL, "stroke-width": 3 }, g);
    }
    hover(g, () => wellTip(i, esc(st.line || "")));
    g.addEventListener("click", () => select(i, true));
  }
  function plateLegend() {
    const host = document.getElementById("plate-legend");
    host.innerHTML = "";
    const total = width("plate-legend"), s = svg(host, total, 42);
    let x = 0, y = 20;
    const L = state.layer;
    if (L === "conf" || L === "gene") {
      const lim = L === "gene" ? geneLim() : 1;
      const lo = L === "gene" ? -lim : 0, title = L === "gene"
        ? "log fold change of " + D.genes[state.gene] + " (vs control)" : "confidence";
      colourBar(s, 0, 4, 200, L === "gene" ? (t) => diverging(lo + t * 2 * lim, lim) : viridis,
        lo, lim, title);
      x = 250;
    }
    const keys = [["ring", "control (outlined)"], ["empty", "no prediction"], ["sel", "selected"]];
    if (M.new_from && (L === "conf" || L === "gene")) {
      if (NEWS && M.calibrated) keys.unshift(["flagring", "flagged unlike training (orange ring)"]);
      keys.unshift(L === "conf" ? ["newconf", (NEWS ? "new compound" : "flagged") + ": hatched"]
        : ["hatch", (NEWS ? "new compound (not in training)" : "flagged unlike training") + ": hatched, no value"]);
    }
    if (L === "gene") keys.unshift(["hollow", "uncertain (interval crosses 0)"]);
    if (L === "rank") keys.unshift(["rank", "rank in the list below"]);
    if (L === "flag") {
      keys.unshift(["flagged", "unlike the training data"], ["ok", "like the training data"]);
      if (NEWS) keys.splice(2, 0, ["newok", "new compound (not in training): hatched"]);
    }
    keys.forEach((k) => {
      const a = { r: 7, fill: "#fff", stroke: "#777" };
      if (k[0] === "ring") Object.assign(a, { fill: "#d9d9d9", stroke: "#111", "stroke-width": 2.4 });
      if (k[0] === "empty") a.stroke = "#c8c8c8";
      if (k[0] === "hatch") a.fill = "url(#ps-hatch)";
      if (k[0] === "hollow") a["stroke-dasharray"] = "3,2";
      if (k[0] === "rank") a.fill = viridis(0.15);
      if (k[0] === "sel") Object.assign(a, { fill: "none", stroke: SEL, "stroke-width": 3 });
      if (k[0] === "flagged") a.fill = FLAG;
      if (k[0] === "ok" || k[0] === "newok") a.fill = "#9ecae1";
      if (k[0] === "newconf") a.fill = viridis(0.5);
      if (k[0] === "flagring") Object.assign(a, { stroke: FLAG, "stroke-width": 2.4 });
      const t = el("text", { y: y + 4, "font-size": 12 }, s, k[1]);
      const w = 24 + t.getComputedTextLength();
      if (x + w > total && x > 250) { x = L === "conf" || L === "gene" ? 250 : 0; y += 22; }
      t.setAttribute("x", x + 20);
      a.cx = x + 8;
      a.cy = y;
      el("circle", a, s);
      if (k[0] === "newok" || k[0] === "newconf") {
        el("circle", Object.assign({}, a, { fill: "url(#ps-hatch-dark)", stroke: "none" }), s);
      }
      x += w;
    });
    s.setAttribute("height", Math.max(42, y + 14));
    s.setAttribute("viewBox", "0 0 " + total + " " + Math.max(42, y + 14));
  }
  function colourBar(s, x, y, w, scale, lo, hi, title) {
    for (let k = 0; k < 40; k++) {
      el("rect", { x: x + k * w / 40, y: y + 14, width: w / 40 + 0.5, height: 10, fill: scale(k / 39) }, s);
    }
    el("text", { x: x, y: y + 10, "font-size": 11.5 }, s, title);
    el("text", { x: x, y: y + 35, "font-size": 10 }, s, num(lo, lo === 0 ? 0 : 2, lo !== 0));
    el("text", { x: x + w, y: y + 35, "font-size": 10, "text-anchor": "end" }, s,
      num(hi, lo === 0 ? 0 : 2, lo !== 0));
    if (lo < 0) el("text", { x: x + w / 2, y: y + 35, "font-size": 10, "text-anchor": "middle" }, s, "0");
  }

  // ---------------------------------------------------------------- heatmap (genes x treatments)
  function label(i) {
    const w = W[i], dup = W.filter((v) => v.t === w.t).length > 1;
    return (w.flag ? "⚠ " : "") + w.t + (dup ? " · " + (w.w || w.g) : "");
  }
  function drawHeat() {
    const host = document.getElementById("heat-view");
    host.innerHTML = "";
    if (!D.heat) { host.innerHTML = "<p class=note>No changes vs control to show.</p>"; return; }
    const rows = D.heat.rows, cols = D.heat.cols, total = width("heat-view");
    const labW = Math.min(230, 16 + 6.6 * Math.max.apply(null, rows.map((i) => label(i).length)));
    const chars = Math.floor((labW - 16) / 6.6);
    const legendW = total >= 900 ? 200 : 0;
    const cell = Math.max(11, Math.min(24, Math.floor((total - labW - legendW - 10) / cols.length)));
    const gmax = Math.max.apply(null, cols.map((g) => D.genes[g].length));
    const topH = Math.min(110, 12 + 5.2 * gmax);
    const w = labW + cols.length * cell + 10 + legendW;
    const h = topH + rows.length * cell + (legendW ? Math.max(10, 110 - rows.length * cell) : 140);
    const s = svg(host, w, h);
    let lim = 0;
    const cellOf = (i, g) => {
      const k = pickCol[g];
      return { m: D.pick.m[i][k], lo: D.pick.lo[i][k], hi: D.pick.hi[i][k] };
    };
    rows.forEach((i) => cols.forEach((g) => { lim = Math.max(lim, Math.abs(cellOf(i, g).m || 0)); }));
    cols.forEach((g, c) => {
      const x = labW + (c + 0.5) * cell;
      el("text", { x: x, y: topH - 4, "font-size": 11, transform: "rotate(-60 " + x + " " + (topH - 4) + ")" },
        s, D.genes[g]);
    });
    rows.forEach((i, r) => {
      const y = topH + r * cell;
      const t = el("text", { x: labW - 6, y: y + cell * 0.5 + 4, "font-size": 11.5, "text-anchor": "end",
        class: "well", fill: W[i].flag ? FLAG : "#333", style: W[i].flag ? "fill:" + FLAG : "" }, s,
        short(label(i), chars));
      t.addEventListener("click", () => select(i, true));
      hover(t, () => wellTip(i, ""));
      cols.forEach((g, c) => {
        const v = cellOf(i, g), x = labW + c * cell;
        el("rect", { x: x, y: y, width: cell, height: cell, fill: (r + c) % 2 ? "#fbfbfb" : "#f5f5f5" }, s);
        const cl = call(v.lo, v.hi), conf = W[i].conf === null ? 1 : W[i].conf;
        const rad = (cell / 2 - 1) * Math.sqrt(0.12 + 0.88 * conf);
        const dot = el("circle", { cx: x + cell / 2, cy: y + cell / 2, r: rad, class: "well",
          fill: cl === 0 ? "none" : diverging(v.m, lim), stroke: cl === 0 ? UNC : "none",
          "stroke-width": 1.3 }, s);
        hover(dot, () => "<b>" + esc(D.genes[g]) + "</b> in " + esc(W[i].t) + "<br>" +
          num(v.m, 2, true) + " [" + num(v.lo, 2, true) + ", " + num(v.hi, 2, true) + "] " +
          callName(cl) + "<br>confidence " + num(W[i].conf));
        dot.addEventListener("click", () => select(i, true));
      });
    });
    heatLegend(s, legendW ? labW + cols.length * cell + 24 : 10,
      legendW ? topH : topH + rows.length * cell + 8, lim, !legendW);
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = "Colour: predicted log fold change vs the plate's control (diverging, " +
      "centred at 0, symmetric range ±" + num(lim) + "); dot size: the well's confidence" +
      (M.calibrated ? "" : " (not calibrated: all full size)") + "; hollow grey: the " + LV +
      " interval crosses 0. Genes: each treatment's strongest changes (" + cols.length +
      " of " + M.n_genes + "). Rows and columns ordered by hierarchical clustering " +
      "(average linkage, Euclidean)" + (D.heat.n_rows > rows.length ? "; " + rows.length +
      " of " + D.heat.n_rows + " treatments with the largest changes shown" : "") +
      ". ⚠: flagged unlike the training data.";
    host.appendChild(note);
  }
  function heatLegend(s, x, y, lim, wide) {
    colourBar(s, x, y, 160, (t) => diverging(-lim + 2 * lim * t, lim), -lim, lim, "log fold change");
    const y2 = wide ? y : y + 52, x2 = wide ? x + 200 : x;
    el("text", { x: x2, y: y2 + 10, "font-size": 11.5 }, s, M.calibrated ? "dot size = confidence" : "dot size: no confidence");
    [0.1, 0.5, 1].forEach((c, k) => {
      el("circle", { cx: x2 + 10 + k * 34, cy: y2 + 26, r: 10 * Math.sqrt(0.12 + 0.88 * c), fill: "#888" }, s);
      el("text", { x: x2 + 10 + k * 34, y: y2 + 48, "font-size": 10, "text-anchor": "middle" }, s, String(c));
    });
    const y3 = wide ? y : y2 + 62, x3 = wide ? x + 330 : x;
    el("circle", { cx: x3 + 10, cy: y3 + 26, r: 8, fill: "none", stroke: UNC, "stroke-width": 1.3 }, s);
    el("text", { x: x3 + 24, y: y3 + 30, "font-size": 11 }, s, "uncertain");
  }

  // ---------------------------------------------------------------- drill-down
  function genesOf(i) {
    // the embedded genes of group i: {g, m, lo, hi}
    const t = D.tops[i], out = {};
    if (!t) return out;
    t.genes.forEach((g, k) => { out[g] = { g: g, m: t.m[k], lo: t.lo[k], hi: t.hi[k] }; });
    if (D.pick) {
      D.pick.cols.forEach((g, k) => {
        if (!(g in out) && D.pick.m[i][k] !== null) {
          out[g] = { g: g, m: D.pick.m[i][k], lo: D.pick.lo[i][k], hi: D.pick.hi[i][k] };
        }
      });
    }
    return out;
  }
  function axisX(s, x0, x1, y, lo, hi, title) {
    const X = (v) => x0 + (v - lo) / (hi - lo) * (x1 - x0);
    el("line", { x1: x0, x2: x1, y1: y, y2: y, stroke: "#888" }, s);
    niceTicks(lo, hi, Math.max(3, Math.floor((x1 - x0) / 70))).forEach((v) => {
      el("line", { x1: X(v), x2: X(v), y1: y, y2: y + 4, stroke: "#888" }, s);
      el("text", { x: X(v), y: y + 16, "font-size": 11, "text-anchor": "middle" }, s, String(v));
    });
    el("text", { x: (x0 + x1) / 2, y: y + 32, "font-size": 12, "text-anchor": "middle" }, s, title);
    return X;
  }
  function axisY(s, x, y0, y1, lo, hi, title) {  // y0: bottom, y1: top (pixels)
    const Y = (v) => y0 - (v - lo) / (hi - lo) * (y0 - y1);
    niceTicks(lo, hi, 5).forEach((v) => {
      el("line", { x1: x - 4, x2: x, y1: Y(v), y2: Y(v), stroke: "#888" }, s);
      el("text", { x: x - 7, y: Y(v) + 4, "font-size": 11, "text-anchor": "end" }, s, String(v));
    });
    el("line", { x1: x, x2: x, y1: y1, y2: y0, stroke: "#888" }, s);
    const yl = (y1 + y0) / 2;
    el("text", { x: 12, y: yl, "font-size": 12, "text-anchor": "middle", transform: "rotate(-90 12 " + yl + ")" },
      s, title);
    return Y;
  }
  function drawForest(i) {
    const host = document.getElementById("forest-view");
    host.innerHTML = "";
    const t = D.tops[i], all = genesOf(i);
    const list = t.up.concat(t.down).map((g) => all[g]).sort((a, b) => b.m - a.m);
    const total = width("forest-view"), rowH = 19, top = 26, labW = 16 + 7 * Math.max.apply(null,
      list.map((v) => D.genes[v.g].length)), valW = 150;
    const h = top + list.length * rowH + 44, s = svg(host, total, h);
    let a = 0;
    list.forEach((v) => { a = Math.max(a, Math.abs(v.lo), Math.abs(v.hi)); });
    a = a * 1.05 || 1;
    el("text", { x: 0, y: 14, "font-size": 13, "font-weight": 600 }, s,
      "top " + M.top_n + " up and down genes: change and " + LV + " interval");
    const X = axisX(s, labW, total - valW, top + list.length * rowH + 4, -a, a,
      "predicted log fold change vs control");
    el("line", { x1: X(0), x2: X(0), y1: top - 4, y2: top + list.length * rowH + 4, stroke: "#444",
      "stroke-dasharray": "4,3" }, s);
    list.forEach((v, r) => {
      const y = top + r * rowH + rowH / 2, c = call(v.lo, v.hi), col = callColour(c);
      el("text", { x: labW - 8, y: y + 4, "font-size": 12, "text-anchor": "end" }, s, D.genes[v.g]);
      el("line", { x1: X(v.lo), x2: X(v.hi), y1: y, y2: y, stroke: col, "stroke-width": 2 }, s);
      const p = el("circle", { cx: X(v.m), cy: y, r: 4.5, fill: c === 0 ? "#fff" : col, stroke: col,
        "stroke-width": 1.5 }, s);
      hover(p, () => "<b>" + esc(D.genes[v.g]) + "</b>" +
        "<br>" + num(v.m, 2, true) + " [" + num(v.lo, 2, true) + ", " + num(v.hi, 2, true) + "]<br>" + callName(c));
      el("text", { x: total - valW + 10, y: y + 4, "font-size": 11.5, fill: c === 0 ? "#777" : col,
        style: "fill:" + (c === 0 ? "#777" : col) }, s,
        num(v.m, 2, true) + " [" + num(v.lo, 2, true) + ", " + num(v.hi, 2, true) + "]");
    });
  }
  function drawVolcano(i) {
    const host = document.getElementById("volcano-view");
    host.innerHTML = "";
    const pts = Object.values(genesOf(i)).map((v) => Object.assign({
      y: Math.abs(v.m) / Math.max((v.hi - v.lo) / 2, 1e-9), c: call(v.lo, v.hi) }, v));
    const total = width("volcano-view"), h = 380, left = 48, top = 26, bottom = 52;
    const s = svg(host, total, h);
    let a = 0, ymax = 1.2;
    pts.forEach((p) => { a = Math.max(a, Math.abs(p.m)); ymax = Math.max(ymax, p.y * 1.08); });
    a = a * 1.1 || 1;
    el("text", { x: 0, y: 14, "font-size": 13, "font-weight": 600 }, s,
      "effect vs confidence (" + pts.length + " embedded genes)");
    const X = axisX(s, left, total - 10, h - bottom, -a, a, "predicted log fold change vs control");
    const Y = axisY(s, left, h - bottom, top, 0, ymax, "|effect| / interval half-width (not a p-value)");
    el("line", { x1: left, x2: total - 10, y1: Y(1), y2: Y(1), stroke: "#999", "stroke-dasharray": "5,4" }, s);
    el("text", { x: total - 12, y: Y(1) + 14, "font-size": 11, "text-anchor": "end", fill: "#666" }, s,
      "above the line: " + LV + " interval excludes 0");
    el("line", { x1: X(0), x2: X(0), y1: top, y2: h - bottom, stroke: "#ccc" }, s);
    pts.sort((p, q) => p.y - q.y).forEach((p) => {
      const col = callColour(p.c);
      const dot = el("circle", { cx: X(p.m), cy: Y(p.y), r: 4, fill: p.c === 0 ? "#fff" : col,
        stroke: col, "fill-opacity": 0.85 }, s);
      hover(dot, () => "<b>" + esc(D.genes[p.g]) + "</b><br>" + num(p.m, 2, true) + " [" +
        num(p.lo, 2, true) + ", " + num(p.hi, 2, true) + "]<br>" + callName(p.c));
    });
    const placed = [];  // label boxes drawn so far: skip a label that would overlap one
    pts.slice().reverse().slice(0, 14).forEach((p) => {
      const name = D.genes[p.g], w = 6.4 * name.length, x = X(p.m), right = x > total - w - 20;
      const box = [right ? x - 6 - w : x + 6, Y(p.y) - 16, w, 13];
      if (placed.some((b) => box[0] < b[0] + b[2] && b[0] < box[0] + box[2] &&
        box[1] < b[1] + b[3] && b[1] < box[1] + box[3])) return;
      placed.push(box);
      el("text", { x: right ? x - 6 : x + 6, y: Y(p.y) - 5, "font-size": 11,
        "text-anchor": right ? "end" : "start" }, s, name);
    });
  }
  function controlName(w) {
    const cg = (w.detail.find((d) => d[0] === "control_group") || [])[1];
    const c = W.find((v) => v.g === cg);
    return c ? c.t + " (" + wellName(c) + ")" : cg || "of the plate";
  }
  function drill(i) {
    const w = W[i], info = document.getElementById("drill-info");
    if (!D.tops[i]) {
      info.textContent = w.t + ": no change vs control to show (" + (w.ctrl ? "a control well" : "no control") + ").";
      document.getElementById("forest-view").innerHTML = "";
      document.getElementById("volcano-view").innerHTML = "";
      return;
    }
    info.innerHTML = "<b>" + esc(w.t) + "</b> · " + esc(wellName(w)) + " · confidence " +
      (w.conf === null ? "– (not calibrated)" : num(w.conf)) +
      (w.unc !== null ? " · expected error " + num(w.unc, 3) : "") +
      (w.new && NEWS ? " · <span class=new>new compound</span>" : "") +
      (w.flag ? " · <span class=flag>flagged unlike the training data: do not act on it</span>" : "") +
      " · vs control " + esc(controlName(w));
    drawForest(i);
    drawVolcano(i);
  }

  // ---------------------------------------------------------------- reliability diagram
  function drawReliability() {
    const host = document.getElementById("reliability-view");
    host.innerHTML = "";
    if (!D.reliability) return;
    const cov = D.reliability.coverage, total = width("reliability-view");
    const pw = Math.min(420, Math.floor((total - 20) / 2)), ph = 300;
    ["pseudobulk", "delta"].forEach((kind, n) => {
      const box = document.createElement("div");
      box.style.display = "inline-block";
      host.appendChild(box);
      const s = svg(box, pw, ph), left = 46, top = 24, bottom = 48;
      el("text", { x: left, y: 14, "font-size": 13, "font-weight": 600 }, s,
        kind === "delta" ? "change vs control" : "pseudo-bulk");
      const X = axisX(s, left, pw - 10, ph - bottom, 0.4, 1, "nominal coverage");
      const Y = (v) => ph - bottom - (v - 0.4) / 0.6 * (ph - bottom - top);
      [0.4, 0.6, 0.8, 1].forEach((v) => el("text", { x: left - 6, y: Y(v) + 4, "font-size": 11,
        "text-anchor": "end" }, s, String(v)));
      el("line", { x1: X(0.4), x2: X(1), y1: Y(0.4), y2: Y(1), stroke: "#999", "stroke-dasharray": "4,3" }, s);
      [["seen", "#d1495b"], ["unseen", "#edae49"]].forEach((sub, k) => {
        const c = cov[kind + "/" + sub[0]];
        if (!c) return;
        const pts = Object.keys(c).map((lv) => [+lv, c[lv].coverage]).filter((p) => p[1] !== null);
        el("polyline", { points: pts.map((p) => X(p[0]) + "," + Y(p[1])).join(" "), fill: "none",
          stroke: sub[1], "stroke-width": 2 }, s);
        pts.forEach((p) => el("circle", { cx: X(p[0]), cy: Y(p[1]), r: 3.5, fill: sub[1] }, s));
        if (n === 0) el("text", { x: left + 10, y: top + 14 + 15 * k, "font-size": 11.5, fill: sub[1],
          style: "fill:" + sub[1] }, s, sub[0] + " treatments");
      });
    });
  }

  // ---------------------------------------------------------------- risk-coverage curve
  const SCORES = { confidence: ["confidence", "#d1495b"], uncertainty: ["expected error", "#2e86ab"],
    ood_score: ["distance to the training data", "#edae49"], interval_width: ["mean 90% interval width", "#8d99ae"] };
  function at(xs, ys, x) {  // the curve's value at coverage x (linear between its points)
    const k = xs.findIndex((v) => v >= x - 1e-9);
    if (k <= 0) return ys[Math.max(0, k)];
    return ys[k - 1] + (ys[k] - ys[k - 1]) * (x - xs[k - 1]) / Math.max(xs[k] - xs[k - 1], 1e-12);
  }
  function drawRisk() {
    const host = document.getElementById("risk-view"), keys = document.getElementById("risk-legend");
    host.innerHTML = "";
    keys.innerHTML = "";
    const R = D.risk;
    if (!R) return;
    const names = Object.keys(R.curves).sort((a, b) => (a === "confidence") - (b === "confidence"));
    const total = Math.min(820, width("risk-view")), h = 320, left = 58, top = 14, bottom = 48;
    const s = svg(host, total, h);
    let lo = Infinity, hi = -Infinity;
    names.map((n) => R.curves[n].y).concat([R.oracle, [R.random]]).forEach((ys) => ys.forEach((v) => {
      if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }));
    const pad = 0.08 * (hi - lo || Math.abs(hi) || 1);
    lo -= pad; hi += pad;
    const X = axisX(s, left, total - 12, h - bottom, 0, 1, "coverage: share of wells kept, most confident first");
    const Y = axisY(s, left, h - bottom, top, lo, hi, "mean error of the kept wells");
    const line = (xs, ys, attrs) => el("polyline", Object.assign({ fill: "none", points: xs.map((x, k) =>
      X(x) + "," + Y(ys[k])).join(" ") }, attrs), s);
    el("line", { x1: X(0), x2: X(1), y1: Y(R.random), y2: Y(R.random), stroke: "#666", "stroke-dasharray": "6,4" }, s);
    line(R.oracle.map((_, k) => (k + 1) / R.oracle.length), R.oracle, { stroke: "#222", "stroke-dasharray": "2,3",
      "stroke-width": 1.6 });
    names.forEach((n) => {
      const c = R.curves[n], main = n === "confidence", col = (SCORES[n] || [n, UNC])[1];
      line(c.x, c.y, { stroke: col, "stroke-width": main ? 2.8 : 1.4, "stroke-opacity": main ? 1 : 0.85 });
      if (main) {
        c.x.forEach((x, k) => {
          const p = el("circle", { cx: X(x), cy: Y(c.y[k]), r: 3, fill: col }, s);
          hover(p, () => "most confident " + Math.round(100 * x) + "% of wells: mean error " + num(c.y[k], 3));
        });
      }
    });
    riskMark(s, X, Y, h, top, bottom);
    riskKeys(keys, names);
  }
  function riskMark(s, X, Y, h, top, bottom) {
    const R = D.risk, c = R.curves.confidence;
    if (!R.mark || !c) return;
    const x = R.mark.x, y = at(c.x, c.y, x);
    el("line", { x1: X(x), x2: X(x), y1: top, y2: h - bottom, stroke: SEL, "stroke-dasharray": "4,3",
      "stroke-width": 1.5 }, s);
    const dot = el("circle", { cx: X(x), cy: Y(y), r: 6, fill: "none", stroke: SEL, "stroke-width": 2.5 }, s);
    const right = X(x) > X(0.6);
    el("text", { x: X(x) + (right ? -8 : 8), y: top + 12, "font-size": 11.5, "text-anchor": right ? "end" : "start",
      fill: SEL, style: "fill:" + SEL }, s, "threshold: confidence ≥ " + R.threshold + " keeps " +
      Math.round(100 * x) + "%");
    hover(dot, () => "the current threshold (confidence ≥ " + R.threshold + ") keeps " + Math.round(100 * x) +
      "% " + (R.mark.of === "evaluated" ? "of the evaluated wells" : "of this summary's wells") +
      "<br>their mean error " + num(y, 3) + " (all wells: " + num(R.random, 3) + ")");
  }
  function riskKeys(host, names) {
    const R = D.risk, item = (style, text) => "<span><i style='" + style + "'></i>" + esc(text) + "</span>";
    const out = names.slice().reverse().map((n) => {
      const c = R.curves[n], sc = SCORES[n] || [n, UNC];
      return item("border-top:" + (n === "confidence" ? 3 : 2) + "px solid " + sc[1], sc[0] + ": AURC " +
        num(c.aurc, 3) + (c.auroc === null ? "" : ", top-quartile-error AUROC " + num(c.auroc)));
    });
    out.push(item("border-top:2px dotted #222", "oracle (kept by the error itself): AURC " + num(R.oracle_aurc, 3)));
    out.push(item("border-top:2px dashed #666", "random order (the mean error): AURC " + num(R.random, 3)));
    if (R.mark && R.curves.confidence) out.push(item("border-top:2px dashed " + SEL, "current threshold"));
    host.innerHTML = out.join("");
  }

  // ---------------------------------------------------------------- selection, tables, CSV
  function select(i, scroll) {
    state.sel = i;
    const pick = document.getElementById("treat-pick");
    if (D.tops[i]) pick.value = String(i);
    drill(i);
    markRows();
    drawPlates();
    if (scroll && D.tops[i]) document.getElementById("drill").scrollIntoView({ block: "nearest" });
  }
  function markRows() {
    document.querySelectorAll("table.pick tbody tr").forEach((tr) => {
      const i = +tr.getAttribute("data-i");
      tr.classList.toggle("sel", i === state.mark || i === state.sel);
    });
  }
  function chips(i, key, n) {
    const t = D.tops[i], at = {};
    t.genes.forEach((g, k) => { at[g] = k; });
    return t[key].slice(0, n).map((g) => {
      const k = at[g], m = t.m[k], lo = t.lo[k], hi = t.hi[k];
      const cls = lo > 0 ? "up" : hi < 0 ? "down" : "unc";
      return "<span class='gene " + cls + "' title='" + num(m, 2, true) + " [" + num(lo, 2, true) +
        ", " + num(hi, 2, true) + "]'>" + esc(D.genes[g]) + " <small>" + num(m, 1, true) +
        "</small></span>";
    }).join("") || "<span class=muted>none</span>";
  }
  function moreRows() {  // the overview rows past the first ones, which the page leaves out
    const more = document.getElementById("more");
    if (!more) return;
    const from = +more.getAttribute("data-from"), n = +more.getAttribute("data-chips");
    more.querySelector("tbody").innerHTML = treated().slice(from).map((i) => {
      const w = W[i];
      return "<tr data-i=" + i + (w.flag ? " class=flagged" : "") + "><td>" + esc(w.t) +
        "</td><td>" + esc(wellName(w)) + "</td><td class=num>" + num(w.conf) +
        "</td><td class=num>" + num(w.unc, 3) + "</td><td>" +
        [w.flag ? "<span class=flag>unlike training</span>" : "",
          w.new && NEWS ? "<span class=new>new compound</span>" : ""].filter(Boolean).join(" ") + "</td><td>" +
        chips(i, "up", n) + "</td><td>" + chips(i, "down", n) + "</td></tr>";
    }).join("");
  }
  function wireTables() {
    document.querySelectorAll("table.overview tbody tr").forEach((tr) => {
      tr.addEventListener("click", () => select(+tr.getAttribute("data-i"), true));
    });
    document.querySelectorAll("#next-table tbody tr").forEach((tr) => {
      tr.addEventListener("click", () => {
        const i = +tr.getAttribute("data-i");
        state.mark = state.mark === i ? null : i;
        markRows();
        drawPlates();
        document.getElementById("plate").scrollIntoView({ block: "nearest" });
      });
    });
    document.querySelectorAll("table.sortable th").forEach((th) => {
      th.addEventListener("click", () => sortBy(th));
    });
  }
  function sortBy(th) {
    const table = th.closest("table"), k = +th.getAttribute("data-col");
    const asc = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    const body = table.tBodies[0], rows = Array.from(body.rows);
    const key = (tr) => {
      const t = tr.cells[k].textContent, v = parseFloat(t);
      return th.classList.contains("num") ? (Number.isNaN(v) ? -Infinity : v) : t.toLowerCase();
    };
    rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * (asc ? 1 : -1));
    rows.forEach((r) => body.appendChild(r));
  }
  function download(name, text) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }
  const csvCell = (v) => (/[",\n]/.test(String(v)) ? '"' + String(v).replace(/"/g, '""') + '"' : String(v));
  function csvList() {
    const head = ["rank", "plate", "well", "treatment", "group", "confidence", "expected_error",
      "mean_width", "wells_informed", "expected_error_reduction", "reason"];
    const rows = D.next.map((r) => {
      const w = W[r.i];
      return [r.rank, w.p, w.w, w.t, w.g, r.conf === null ? "" : r.conf, w.unc === null ? "" : w.unc,
        r.width, r.informed, r.priority, r.reason];
    });
    download("sequence_next.csv", [head].concat(rows).map((r) => r.map(csvCell).join(",")).join("\n") + "\n");
  }
  function csvPlate() {
    const nr = M.layout === 384 ? 16 : 8, nc = M.layout === 384 ? 24 : 12, lines = [];
    M.plates.forEach((p) => {
      lines.push(["plate " + p].concat(Array.from({ length: nc }, (_, c) => c + 1)).map(csvCell).join(","));
      for (let r = 0; r < nr; r++) {
        const row = [String.fromCharCode(65 + r)];
        for (let c = 0; c < nc; c++) {
          const i = W.findIndex((w) => w.p === p && w.pos && w.pos[0] === r && w.pos[1] === c);
          row.push(i >= 0 && rankOf[i] ? rankOf[i] : "");
        }
        lines.push(row.map(csvCell).join(","));
      }
      lines.push("");
    });
    download("sequence_next_plate.csv", lines.join("\n"));
  }

  // ---------------------------------------------------------------- controls and start
  function controls() {
    const layer = document.getElementById("layer"), gene = document.getElementById("gene-pick");
    layers().forEach((l) => { layer.add(new Option(l[1], l[0])); });
    state.layer = layers()[0][0];
    layer.value = state.layer;
    if (D.pick) {
      D.pick.cols.slice().sort((a, b) => D.genes[a].localeCompare(D.genes[b]))
        .forEach((g) => gene.add(new Option(D.genes[g], String(g))));
      state.gene = D.pick.cols[0];
      gene.value = String(state.gene);
    }
    const showGene = () => {
      document.getElementById("gene-label").style.display = state.layer === "gene" ? "" : "none";
    };
    showGene();
    layer.addEventListener("change", () => { state.layer = layer.value; showGene(); drawPlate(); });
    gene.addEventListener("change", () => { state.gene = +gene.value; drawPlate(); });
    const treat = document.getElementById("treat-pick");
    treated().forEach((i) => treat.add(new Option(label(i) + " (" + wellName(W[i]) + ")", String(i))));
    treat.addEventListener("change", () => select(+treat.value, false));
    document.getElementById("csv-list").addEventListener("click", csvList);
    document.getElementById("csv-plate").addEventListener("click", csvPlate);
  }
  function treated() {  // the order of the overview table: treatment, then well
    const key = (i) => [W[i].t, wellName(W[i])];
    return Object.keys(D.tops).map(Number).sort((a, b) => {
      const p = key(a), q = key(b);
      return p[0] < q[0] ? -1 : p[0] > q[0] ? 1 : p[1] < q[1] ? -1 : p[1] > q[1] ? 1 : 0;
    });
  }
  function drawPlate() { plateLegend(); drawPlates(); }
  function drawAll() {
    drawPlate();
    drawHeat();
    if (state.sel !== null) drill(state.sel);
    drawReliability();
    drawRisk();
  }
  controls();
  moreRows();
  wireTables();
  // open the treatment with the most confident change (|effect| / interval half-width)
  const sure = (i) => Math.max.apply(null, D.tops[i].m.map((m, k) =>
    Math.abs(m) / Math.max((D.tops[i].hi[k] - D.tops[i].lo[k]) / 2, 1e-9)));
  const first = treated().reduce((a, b) => (a === undefined || sure(b) > sure(a) ? b : a), undefined);
  state.sel = first === undefined ? null : first;
  if (state.sel !== null) document.getElementById("treat-pick").value = String(state.sel);
  else document.getElementById("drill").querySelector(".controls").style.display = "none";
  drawAll();
  markRows();
  let timer = null;
  window.addEventListener("resize", () => { clearTimeout(timer); timer = setTimeout(drawAll, 150); });
  document.body.setAttribute("data-ready", "1");
})();
