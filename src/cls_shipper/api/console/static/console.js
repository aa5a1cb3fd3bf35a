// The console's only script: live refresh of server-rendered fragments, and the coverage
// strip drawn on one canvas (thousands of windows, one element, one set of listeners).
"use strict";

(function () {
  const REFRESH_MS = 3000;
  const COLOURS = { s: "#2e7d32", f: "#c62828", r: "#1565c0", w: "#757575", g: "#ffffff",
                    n: "#f1f1f1", a: "#000000" };
  const NAMES = { s: "success", f: "failed", r: "running", w: "waiting" };
  // Worst first: a pixel column holding several windows shows the worst of them.
  const RANK = { f: 4, r: 2, w: 1, s: 0 };

  // Each status has a pattern as well as a colour, so colour is never the only signal.
  function pattern(ctx, kind) {
    const tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    const t = tile.getContext("2d");
    t.fillStyle = COLOURS[kind];
    t.fillRect(0, 0, 8, 8);
    t.strokeStyle = kind === "g" ? "#c62828" : "#ffffff";
    t.fillStyle = "#ffffff";
    t.lineWidth = 1.5;
    if (kind === "f") {          // cross-hatched
      t.beginPath(); t.moveTo(0, 0); t.lineTo(8, 8); t.moveTo(8, 0); t.lineTo(0, 8); t.stroke();
    } else if (kind === "r") {   // vertical stripes
      t.fillRect(3, 0, 2, 8);
    } else if (kind === "w") {   // dotted
      t.fillRect(3, 3, 2, 2);
    } else if (kind === "g") {   // diagonal lines on white
      t.beginPath(); t.moveTo(0, 8); t.lineTo(8, 0); t.stroke();
    }
    return ctx.createPattern(tile, "repeat");
  }

  function swatch(canvas) {
    const ctx = canvas.getContext("2d");
    const kind = canvas.dataset.kind;
    if (kind === "a") {
      ctx.fillStyle = "#000";
      ctx.beginPath(); ctx.moveTo(8, 2); ctx.lineTo(14, 12); ctx.lineTo(2, 12); ctx.fill();
      return;
    }
    ctx.fillStyle = kind === "n" ? COLOURS.n : pattern(ctx, kind);
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#999";
    ctx.strokeRect(0.5, 0.5, canvas.width - 1, canvas.height - 1);
  }

  // In the server's zone, the way every time on the page is written.
  const ZONE = document.documentElement.dataset.zone || "UTC";
  function fmt(ms) {
    return new Date(ms).toLocaleString("sv-SE", { timeZone: ZONE, hour12: false });
  }

  function Strip(canvas, data, began) {
    this.began = began;
    this.canvas = canvas;
    this.info = document.getElementById("strip-info");
    this.cursor = -1;
    this.set(data);
    canvas.addEventListener("mousemove", (e) => this.point(e));
    canvas.addEventListener("click", (e) => { this.point(e); this.open(); });
    canvas.addEventListener("keydown", (e) => this.key(e));
    window.addEventListener("resize", () => this.draw());
  }

  // The windows come as runs (timeline.py: `rs` first start, `rw` width, `rn` count, `rk`
  // status letter, seconds from the range start); `rc` is each run's first window index.
  Strip.prototype.set = function (data) {
    this.data = data;
    const rc = new Int32Array(data.rn.length + 1);
    const counts = { s: 0, f: 0, r: 0, w: 0 };
    for (let r = 0; r < data.rn.length; r++) {
      rc[r + 1] = rc[r] + data.rn[r];
      counts[data.rk[r]] += data.rn[r];
    }
    this.rc = rc;
    this.n = rc[data.rn.length];
    this.counts = counts;
    if (this.cursor >= this.n) this.cursor = this.n - 1;
    this.draw();
  };

  // Window i: [start, end, status letter].
  Strip.prototype.win = function (i) {
    const d = this.data, rc = this.rc;
    let lo = 0, hi = d.rn.length - 1;
    while (lo < hi) {              // the last run starting at or before window i
      const mid = (lo + hi + 1) >> 1;
      if (rc[mid] <= i) lo = mid; else hi = mid - 1;
    }
    const s = d.rs[lo] + (i - rc[lo]) * d.rw[lo];
    return [s, s + d.rw[lo], d.rk[lo]];
  };

  Strip.prototype.draw = function () {
    const c = this.canvas, d = this.data;
    const ratio = window.devicePixelRatio || 1;
    const width = c.parentElement.clientWidth;
    const height = 56;
    c.style.width = width + "px";
    c.style.height = height + "px";
    c.width = Math.round(width * ratio);
    c.height = Math.round(height * ratio);
    const ctx = c.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const total = (d.end - d.start) / 1000;
    const x = (sec) => Math.max(0, Math.min(width, (sec / total) * width));
    this.x = x; this.width = width;
    const top = 14, bar = height - top - 4;
    ctx.fillStyle = COLOURS.n;
    ctx.fillRect(0, top, width, bar);
    const fills = {};
    for (const k of "sfrwg") fills[k] = pattern(ctx, k);
    // Windows 2 px wide or more are drawn one by one, with a hairline between them; a run
    // of narrower ones marks the pixel columns it covers, and each column then shows the
    // worst status among its windows.
    const cols = new Int8Array(Math.ceil(width)).fill(-1);
    for (let r = 0; r < d.rn.length; r++) {
      const k = d.rk[r], w = d.rw[r];
      if (x(w) - x(0) >= 2) {
        ctx.fillStyle = fills[k];
        for (let j = 0; j < d.rn[r]; j++) {
          const x0 = x(d.rs[r] + j * w), x1 = x(d.rs[r] + (j + 1) * w);
          if (x1 > x0) ctx.fillRect(x0, top, Math.max(1, x1 - x0 - 0.5), bar);
        }
      } else {
        const first = Math.floor(x(d.rs[r]));
        const last = Math.min(cols.length - 1, Math.ceil(x(d.rs[r] + d.rn[r] * w)) - 1);
        for (let col = first; col <= Math.max(first, last) && col < cols.length; col++) {
          if (RANK[k] > cols[col]) cols[col] = RANK[k];
        }
      }
    }
    const byRank = ["s", "w", "r", "r", "f"];
    for (let col = 0; col < cols.length; col++) {
      if (cols[col] < 0) continue;
      let end = col;               // one rectangle for each stretch of equal columns
      while (end + 1 < cols.length && cols[end + 1] === cols[col]) end++;
      ctx.fillStyle = fills[byRank[cols[col]]];
      ctx.fillRect(col, top, end - col + 1, bar);
      col = end;
    }
    for (const [a, b] of d.gaps) {
      ctx.fillStyle = fills.g;
      ctx.fillRect(x(a), top, Math.max(2, x(b) - x(a)), bar);
      ctx.strokeStyle = "#c62828";
      ctx.strokeRect(x(a) + 0.5, top + 0.5, Math.max(2, x(b) - x(a)) - 1, bar - 1);
    }
    ctx.fillStyle = "#000";
    const flagged = Object.keys(d.flagged);
    for (const i of flagged) {
      const [s, e] = this.win(Number(i));
      const mid = (x(s) + x(e)) / 2;
      ctx.beginPath(); ctx.moveTo(mid, top - 1); ctx.lineTo(mid + 5, 2); ctx.lineTo(mid - 5, 2);
      ctx.fill();
    }
    if (this.cursor >= 0 && this.cursor < this.n) {
      const [s, e] = this.win(this.cursor);
      const x0 = x(s), x1 = x(e);
      ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
      ctx.strokeRect(x0 - 1, top - 2, Math.max(3, x1 - x0) + 2, bar + 4);
      ctx.lineWidth = 1;
    }
    c.dataset.windows = String(this.n);
    c.dataset.failed = String(this.counts.f);
    c.dataset.success = String(this.counts.s);
    c.dataset.gaps = String(d.gaps.length);
    c.dataset.flagged = String(flagged.length);
    if (!document.body.dataset.stripDrawnMs) {
      // The first draw after navigation: how long the page took to show its strip, and
      // how much of that was this script (parsing the data and drawing).
      const now = performance.now();
      document.body.dataset.stripDrawnMs = now.toFixed(1);
      document.body.dataset.stripScriptMs = (now - this.began).toFixed(1);
    }
  };

  Strip.prototype.at = function (px) {
    const d = this.data, total = (d.end - d.start) / 1000;
    const sec = (px / this.width) * total;
    let lo = 0, hi = d.rs.length - 1, r = -1;
    while (lo <= hi) {             // the last run starting at or before `sec`
      const mid = (lo + hi) >> 1;
      if (d.rs[mid] <= sec) { r = mid; lo = mid + 1; } else { hi = mid - 1; }
    }
    if (r < 0) return -1;
    const j = Math.floor((sec - d.rs[r]) / (d.rw[r] || 1));
    return j < d.rn[r] ? this.rc[r] + j : -1;
  };

  Strip.prototype.describe = function (i) {
    const d = this.data;
    if (i < 0) { this.info.textContent = "No task covers this point."; return; }
    const [s, e, kind] = this.win(i);
    const flag = d.flagged[i] ? " · audit: " + d.flagged[i] : "";
    this.info.textContent = "Window " + fmt(d.start + s * 1000) + " – " +
      fmt(d.start + e * 1000) + ": " + NAMES[kind] + flag + " (" + (i + 1) + " of " +
      this.n + ")";
  };

  Strip.prototype.point = function (e) {
    const rect = this.canvas.getBoundingClientRect();
    this.cursor = this.at(e.clientX - rect.left);
    this.describe(this.cursor);
  };

  Strip.prototype.open = function () {
    if (this.cursor < 0) return;
    const start = this.data.start + this.win(this.cursor)[0] * 1000;
    window.location.href = "/console/shippers/" + this.canvas.dataset.shipper + "/windows/" + start;
  };

  Strip.prototype.key = function (e) {
    const n = this.n;
    if (!n) return;
    const moves = { ArrowLeft: -1, ArrowRight: 1, PageUp: -10, PageDown: 10 };
    if (e.key in moves) this.cursor = Math.max(0, Math.min(n - 1, (this.cursor < 0 ? n : this.cursor) + moves[e.key]));
    else if (e.key === "Home") this.cursor = 0;
    else if (e.key === "End") this.cursor = n - 1;
    else if (e.key === "Enter") { this.open(); return; }
    else return;
    e.preventDefault();
    this.describe(this.cursor);
    this.draw();
  };

  function live(root, strip) {
    const url = root.dataset.live;
    async function tick() {
      if (document.hidden) return;
      let response;
      try {
        response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      } catch (err) {
        return;  // the server is restarting: try again next tick
      }
      if (response.status === 401) {
        window.location.href = "/console/signin?next=" + encodeURIComponent(location.pathname + location.search);
        return;
      }
      if (!response.ok) return;
      const body = await response.json();
      for (const [id, html] of Object.entries(body.html || {})) {
        const el = document.getElementById(id);
        // Never replace what the user is typing in or has focused.
        if (el && !el.contains(document.activeElement)) el.innerHTML = html;
      }
      if (body.strip && strip) strip.set(body.strip);
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    }
    setInterval(tick, REFRESH_MS);
  }

  function formatSwitch() {
    const select = document.getElementById("content_format");
    if (!select) return;
    const show = () => {
      for (const set of document.querySelectorAll("fieldset[data-format]")) {
        set.hidden = set.dataset.format !== select.value;
      }
    };
    select.addEventListener("change", show);
    show();
  }

  document.addEventListener("DOMContentLoaded", () => {
    let strip = null;
    const canvas = document.getElementById("strip");
    if (canvas) {
      const began = performance.now();
      strip = new Strip(canvas, JSON.parse(document.getElementById("strip-data").textContent),
                        began);
    }
    for (const el of document.querySelectorAll("canvas.swatch")) swatch(el);
    for (const root of document.querySelectorAll("[data-live]")) live(root, strip);
    formatSwitch();
  });
})();
