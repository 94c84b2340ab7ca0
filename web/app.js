/* The page at /: pymemd's watched processes and, for the one selected, its history, census,
 * growth, leak suspects and referrers. Plain DOM and uPlot (web/vendor); every request goes to
 * the pymemd that served the page (same origin, so the browser sends its basic auth
 * credentials). Text from the targets (names, command lines, type names) only ever goes into
 * textContent, never into markup.
 *
 * For tests and scripts: every number shown sits in an element with data-k (its JSON key) and
 * data-v (the JSON value, unformatted); each chart's element carries data-points, data-first-t
 * and data-last-t of the history it draws; window.pymemdPage exposes the charts. */
"use strict";

(function () {
  const API = "/api/v1/processes";
  /* Series colours, fixed (light and dark mode alike): tests look for them in screenshots. */
  const COLORS = {
    rss: "#d62728",
    pss: "#9467bd",
    arena: "#1f77b4",
    blocks: "#2ca02c",
    gen0: "#ff7f0e",
    gen1: "#17becf",
    gen2: "#e377c2",
  };
  const TOP_TYPES = 25;
  const TOP_GROWTH = 15;
  const HISTORY_RESYNC = 60000;

  const state = {
    pid: null,            /* the selected process */
    pinned: false,        /* chosen by the user (or the URL), not picked automatically */
    procs: [],
    period: 2,            /* seconds between refreshes: the sampling interval, 1 s at least */
    charts: null,         /* {pid, mem, gc} */
    censusAt: null,       /* objects.at of the census shown */
    census: null,         /* the census document shown */
    growth: null,
    hist: null,           /* {pid, fullAt, samples, interval_seconds}: the history charted */
    referrers: null,      /* {pid, type} being shown */
    timer: null,
    inflight: null,       /* the refresh running, a promise */
    paused: false,        /* no refresh by the timer: the numbers stay put to be read */
  };

  /* ---- small helpers ------------------------------------------------------------------ */

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === "class") e.className = attrs[k];
      else if (k === "text") e.textContent = attrs[k];
      else if (k.startsWith("data-")) e.setAttribute(k, attrs[k]);
      else e[k] = attrs[k];
    }
    for (const kid of kids || []) e.appendChild(typeof kid === "string" ? document.createTextNode(kid) : kid);
    return e;
  }

  function isNum(v) { return typeof v === "number" && isFinite(v); }

  function fmtCount(v) {
    if (!isNum(v)) return "–";
    const neg = v < 0;
    let s = String(Math.round(Math.abs(v)));
    s = s.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (neg ? "-" : "") + s;
  }

  function fmtSigned(v, fmt) {
    if (!isNum(v)) return "–";
    return (v > 0 ? "+" : v < 0 ? "-" : "") + fmt(Math.abs(v));
  }

  /* 1024-based, one decimal from KiB on: as pymemctl prints them. */
  function fmtBytes(v) {
    if (!isNum(v)) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let a = Math.abs(v), i = 0;
    while (a >= 1024 && i < units.length - 1) { a /= 1024; i++; }
    return (v < 0 ? "-" : "") + (i === 0 ? String(Math.round(a)) : a.toFixed(1)) + " " + units[i];
  }

  function fmtAge(s) {
    if (!isNum(s)) return "–";
    s = Math.max(0, Math.floor(s));
    if (s < 120) return s + " s";
    if (s < 7200) return Math.floor(s / 60) + " min";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function fmtRate(v) {
    if (!isNum(v)) return "–";
    return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  function fmtTime(t) {
    if (!isNum(t)) return "–";
    const d = new Date(t * 1000);
    return d.toLocaleTimeString("en-GB", { hour12: false });
  }

  function get(o, path) {
    for (const k of path) {
      if (o === null || o === undefined) return undefined;
      o = o[k];
    }
    return o;
  }

  /* A table cell holding one JSON value: data-k/data-v for scripts, formatted text for people. */
  function cell(key, value, fmt, cls) {
    const text = fmt ? fmt(value) : value === null || value === undefined ? "–" : String(value);
    const td = el("td", { "class": (cls || "") + (value === null || value === undefined ? " null" : ""), text: text });
    td.setAttribute("data-k", key);
    td.setAttribute("data-v", JSON.stringify(value === undefined ? null : value));
    return td;
  }

  /* GET path as JSON: {status, json, headers}; a body that is not JSON gives json null. The URL
   * is built on location.origin: a page opened as https://user:pass@host/ resolves relative URLs
   * with the credentials in them, which fetch() refuses; the browser sends the credentials it
   * logged in with by itself. */
  async function getJSON(path, timeoutMs) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs || 15000);
    try {
      const r = await fetch(location.origin + path, { cache: "no-store", credentials: "same-origin", signal: ctl.signal,
                                    headers: { "Accept": "application/json" } });
      let json = null;
      try { json = await r.json(); } catch (e) { json = null; }
      return { status: r.status, json: json, headers: r.headers };
    } finally {
      clearTimeout(timer);
    }
  }

  function errorText(r) {
    const m = get(r, ["json", "error", "message"]);
    if (r.status === 401)
      return "pymemd asks for a user and password (basic_auth_users of its web config): reload the page to log in";
    if (r.status === 403)
      return "pymemd refused this client: " + (m || "403");
    return m ? m : "HTTP " + r.status;
  }

  function setStatus(text, bad) {
    const s = $("status");
    s.textContent = text;
    s.className = "status" + (bad ? " bad" : "");
  }

  /* ---- the process table ------------------------------------------------------------- */

  function renderProcs(procs) {
    const tbody = $("procs").tBodies[0];
    const rows = [];
    for (const p of procs) {
      const gens = get(p, ["gc", "generations"]) || [];
      const counts = gens.length ? gens.map((g) => g.count) : null;
      const colls = gens.length ? gens.map((g) => g.collections) : null;
      const census = p.objects || null;
      const age = census && isNum(census.at) && isNum(p.sampled_at) ? Math.max(0, p.sampled_at - census.at) : null;
      const tr = el("tr", { "data-pid": String(p.pid), "data-sampled-at": JSON.stringify(p.sampled_at === undefined ? null : p.sampled_at) }, [
        cell("pid", p.pid),
        cell("name", p.name, null, "type"),
        cell("python.version", get(p, ["python", "version"]) === undefined ? null : get(p, ["python", "version"])),
        cell("status", p.status, null, p.status === "ok" ? "st-ok" : "st-bad"),
        cell("memory.rss_bytes", get(p, ["memory", "rss_bytes"]), fmtBytes, "num"),
        cell("memory.pss_bytes", get(p, ["memory", "pss_bytes"]), fmtBytes, "num"),
        cell("pymalloc.arena_bytes", get(p, ["pymalloc", "arena_bytes"]), fmtBytes, "num"),
        cell("pymalloc.allocated_blocks", get(p, ["pymalloc", "allocated_blocks"]), fmtCount, "num"),
        cell("gc.count", counts, (v) => v ? v.map(fmtCount).join(" / ") : "–", "num"),
        cell("gc.collections", colls, (v) => v ? v.map(fmtCount).join(" / ") : "–", "num"),
        cell("objects.total", census ? census.total : null, fmtCount, "num"),
        cell("census_age_seconds", age, fmtAge, "num"),
      ]);
      if (p.error) tr.title = p.error;
      if (p.pid === state.pid) tr.classList.add("selected");
      tr.tabIndex = 0;
      tr.addEventListener("click", () => select(p.pid, true));
      tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(p.pid, true); } });
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
    $("procs-empty").hidden = procs.length > 0;
  }

  function select(pid, byUser) {
    if (byUser) {
      state.pinned = true;
      history.replaceState(null, "", "#pid=" + pid);
    }
    if (pid === state.pid) return;
    state.pid = pid;
    state.censusAt = null;
    state.census = null;
    state.growth = null;
    $("census-note").textContent = "";
    destroyCharts();
    for (const tr of $("procs").tBodies[0].rows)
      tr.classList.toggle("selected", tr.getAttribute("data-pid") === String(pid));
    $("types").tBodies[0].replaceChildren();
    $("growth").tBodies[0].replaceChildren();
    $("referrers").hidden = true;
    $("referrers-msg").textContent = "";
    $("referrers-note").textContent = "";
    state.referrers = null;
    $("suspects-box").hidden = true;
    if (byUser) refresh();
  }

  /* ---- charts ------------------------------------------------------------------------- */

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }

  function chartWidth(id) {
    return Math.max(300, $(id).clientWidth || 600);
  }

  function axis(scale, fmt, side) {
    const a = {
      stroke: cssVar("--muted"),
      grid: { stroke: cssVar("--line"), width: 1 },
      ticks: { stroke: cssVar("--line"), width: 1 },
    };
    if (scale) a.scale = scale;
    if (fmt) { a.values = (u, vals) => vals.map(fmt); a.size = 76; }
    if (side !== undefined) { a.side = side; a.grid = { show: false }; }
    return a;
  }

  function line(label, color, scale, fmt, opts) {
    const s = { label: label, stroke: color, width: 2, scale: scale, spanGaps: false,
                value: (u, v) => fmt(v), points: { show: false } };
    /* Dashed where it may lie on another series (the right axis has its own scale): both show. */
    if (opts && opts.dash) s.dash = [8, 6];
    /* A value read only every so often (PSS, every pss_interval): its readings joined, each a
     * dot; the legend gives the latest reading up to the moment shown, and when it was read. */
    if (opts && opts.sparse) {
      s.spanGaps = true;
      s.points = { show: true, size: 5, fill: color };
      s.value = (u, v, si, idx) => {
        if (isNum(v) || idx === null || idx === undefined) return fmt(v);
        const ys = u.data[si];
        for (let i = idx; i >= 0; i--)
          if (isNum(ys[i])) return fmt(ys[i]) + " (" + fmtTime(u.data[0][i]) + ")";
        return fmt(v);
      };
    }
    return s;
  }

  /* Ranges from 0: a flat series then sits at a height that says its size. */
  function fromZero(u, min, max) {
    return [0, max > 0 ? max * 1.15 : 1];
  }

  function makeCharts(pid) {
    const mem = new uPlot({
      width: chartWidth("chart-mem"), height: 240,
      scales: { x: { time: true }, bytes: { range: fromZero }, blocks: { range: fromZero } },
      series: [
        { value: (u, v) => fmtTime(v) },
        line("RSS", COLORS.rss, "bytes", fmtBytes),
        line("PSS", COLORS.pss, "bytes", fmtBytes, { sparse: true }),
        line("heap (arena bytes)", COLORS.arena, "bytes", fmtBytes),
        line("allocated blocks", COLORS.blocks, "blocks", fmtCount, { dash: true }),
      ],
      axes: [axis(), axis("bytes", fmtBytes), axis("blocks", fmtCount, 1)],
    }, [[], [], [], [], []], $("chart-mem"));
    const gc = new uPlot({
      width: chartWidth("chart-gc"), height: 240,
      scales: { x: { time: true }, rate: { range: fromZero } },
      series: [
        { value: (u, v) => fmtTime(v) },
        line("gen 0 /s", COLORS.gen0, "rate", fmtRate),
        line("gen 1 /s", COLORS.gen1, "rate", fmtRate),
        line("gen 2 /s", COLORS.gen2, "rate", fmtRate),
      ],
      axes: [axis(), axis("rate", fmtRate)],
    }, [[], [], [], []], $("chart-gc"));
    state.charts = { pid: pid, mem: mem, gc: gc };
  }

  function destroyCharts() {
    if (!state.charts) return;
    state.charts.mem.destroy();
    state.charts.gc.destroy();
    state.charts = null;
    for (const id of ["chart-mem", "chart-gc"]) {
      const c = $(id);
      c.removeAttribute("data-points");
      c.removeAttribute("data-first-t");
      c.removeAttribute("data-last-t");
    }
    $("history-note").textContent = "";
  }

  /* The history of p into state.hist: whole at first and every HISTORY_RESYNC ms (the ring drops
   * its oldest samples, a reused pid starts a new one), otherwise only what came since the last
   * sample held (?seconds= reaching back past it, on the daemon's clock), so that an open page
   * does not make pymemd render the whole hour every second. */
  async function loadHistory(p) {
    const held = state.hist && state.hist.pid === p.pid && state.hist.samples.length ? state.hist : null;
    const now = Date.now();
    let path = API + "/" + p.pid + "/history";
    const last = held ? held.samples[held.samples.length - 1].t : null;
    const incremental = held && now - held.fullAt < HISTORY_RESYNC && isNum(p.sampled_at);
    if (incremental)
      path += "?seconds=" + Math.max(1, Math.ceil(p.sampled_at - last + 2 * (held.interval_seconds || 1) + 1));
    const r = await getJSON(path);
    if (r.status !== 200 || !r.json) return r;
    const got = Array.isArray(r.json.samples) ? r.json.samples : [];
    if (incremental && (!got.length || got[0].t <= last)) {
      held.samples = held.samples.concat(got.filter((x) => x.t > last));
      held.interval_seconds = r.json.interval_seconds;
    } else if (incremental) {
      /* The answer does not reach back to the last sample held: samples were missed (or the
       * ring started again). Take it whole. */
      held.fullAt = 0;
      return loadHistory(p);
    } else {
      state.hist = { pid: p.pid, fullAt: now, samples: got, interval_seconds: r.json.interval_seconds };
    }
    return r;
  }

  function val(s, k) { return isNum(s[k]) ? s[k] : null; }

  function renderHistory(h) {
    const samples = Array.isArray(h.samples) ? h.samples : [];
    if (!state.charts) makeCharts(state.pid);
    const t = samples.map((s) => s.t);
    const gcRate = [0, 1, 2].map((g) => samples.map((s, i) => {
      if (i === 0) return null;
      const a = samples[i - 1].gc_collections, b = s.gc_collections, dt = s.t - samples[i - 1].t;
      if (!Array.isArray(a) || !Array.isArray(b) || !isNum(a[g]) || !isNum(b[g]) || !(dt > 0)) return null;
      return (b[g] - a[g]) / dt;
    }));
    state.charts.mem.setData([t, samples.map((s) => val(s, "rss_bytes")), samples.map((s) => val(s, "pss_bytes")),
                              samples.map((s) => val(s, "arena_bytes")), samples.map((s) => val(s, "allocated_blocks"))]);
    state.charts.gc.setData([t, gcRate[0], gcRate[1], gcRate[2]]);
    for (const [id, u] of [["chart-mem", state.charts.mem], ["chart-gc", state.charts.gc]]) {
      const c = $(id);
      /* The legend shows the latest values until the pointer picks another moment. */
      if (t.length && u.cursor.left < 0) u.setLegend({ idx: t.length - 1 });
      c.setAttribute("data-points", String(u.data[0].length));
      c.setAttribute("data-first-t", JSON.stringify(t.length ? t[0] : null));
      c.setAttribute("data-last-t", JSON.stringify(t.length ? t[t.length - 1] : null));
    }
    if (isNum(h.interval_seconds) && h.interval_seconds > 0)
      state.period = Math.min(10, Math.max(1, h.interval_seconds));
    const span = t.length > 1 ? t[t.length - 1] - t[0] : 0;
    $("history-note").textContent = samples.length + " samples over " + fmtAge(span) +
      (isNum(h.interval_seconds) ? ", one every " + h.interval_seconds + " s" : "");
  }

  /* ---- census, growth, suspects --------------------------------------------------------- */

  function renderCensus(p, objs, growth) {
    const delta = {};
    for (const g of (growth && growth.types) || []) delta[g.type] = g;
    const rows = (objs.types || []).map((ty) => {
      const d = delta[ty.type];
      const tr = el("tr", { "data-type": ty.type }, [
        cell("type", ty.type, null, "type"),
        cell("count", ty.count, fmtCount, "num"),
        cell("bytes", ty.bytes, fmtBytes, "num"),
        cell("growth.count", growth ? (d ? d.count : 0) : null, (v) => fmtSigned(v, fmtCount),
             "num" + (d && d.count > 0 ? " up" : "")),
        cell("growth.bytes", growth ? (d ? d.bytes : 0) : null, (v) => fmtSigned(v, fmtBytes), "num"),
      ]);
      const b = el("button", { type: "button", text: "referrers", title: "who holds the " + ty.type + " objects?" });
      b.className = "refs";
      b.addEventListener("click", () => { $("referrers-type").value = ty.type; loadReferrers(ty.type, false); });
      tr.appendChild(el("td", {}, [b]));
      return tr;
    });
    $("types").tBodies[0].replaceChildren(...rows);
    state.census = objs;
    renderCensusNote(p);
    $("types-note").textContent = (objs.ntypes > (objs.types || []).length) ?
      "the " + (objs.types || []).length + " largest by count of " + fmtCount(objs.ntypes) : "";
    const dl = $("referrers-types");
    dl.replaceChildren(...(objs.types || []).map((ty) => el("option", { value: ty.type })));
  }

  /* The census's age as of the process's latest sample (the daemon's clock, not the browser's). */
  function renderCensusNote(p) {
    const objs = state.census;
    const note = $("census-note");
    if (!objs) return;
    const age = isNum(p.sampled_at) ? Math.max(0, p.sampled_at - objs.at) : null;
    note.textContent = "census at " + fmtTime(objs.at) + ", " + fmtAge(age) + " old · " + fmtCount(objs.total) +
      " objects, " + fmtCount(objs.ntypes) + " types · target paused " + (objs.pause_seconds * 1000).toFixed(1) + " ms";
    note.setAttribute("data-at", JSON.stringify(objs.at));
    note.setAttribute("data-age", JSON.stringify(age));
  }

  function renderGrowth(growth, message) {
    const gn = $("growth-note");
    if (!growth) {
      $("growth").tBodies[0].replaceChildren();
      gn.textContent = message || "";
      gn.removeAttribute("data-from");
      gn.removeAttribute("data-to");
      $("suspects-box").hidden = true;
      return;
    }
    const types = (growth.types || []).slice(0, TOP_GROWTH);
    $("growth").tBodies[0].replaceChildren(...types.map((g) => el("tr", { "data-type": g.type }, [
      cell("type", g.type, null, "type"),
      cell("count", g.count, (v) => fmtSigned(v, fmtCount), "num" + (g.count > 0 ? " up" : g.count < 0 ? " down" : "")),
      cell("bytes", g.bytes, (v) => fmtSigned(v, fmtBytes), "num"),
    ])));
    gn.textContent = "between the censuses at " + fmtTime(growth.from) + " and " + fmtTime(growth.to) +
      " (" + fmtAge(growth.to - growth.from) + " apart)" + (types.length ? "" : ": no change");
    gn.setAttribute("data-from", JSON.stringify(growth.from));
    gn.setAttribute("data-to", JSON.stringify(growth.to));
    renderSuspects(growth);
  }

  /* growth.suspects: the types whose count rose at each of the last K censuses, largest increase
   * first, with their counts at those censuses; null with suspects_error while there are fewer
   * censuses than that. Shown when pymemd's growth has the key. */
  function renderSuspects(growth) {
    const box = $("suspects-box");
    const note = $("suspects-note");
    if (!("suspects" in growth)) { box.hidden = true; return; }
    box.hidden = false;
    const list = Array.isArray(growth.suspects) ? growth.suspects : [];
    const t = $("suspects");
    t.tHead.replaceChildren(el("tr", {}, [
      el("th", { text: "TYPE" }), el("th", { text: "COUNT AT EACH CENSUS" }),
      el("th", { "class": "num", text: "INCREASE" }), el("th", { "class": "num", text: "BYTES" }),
      el("th", { "class": "num", text: "PER SECOND" })]));
    t.tBodies[0].replaceChildren(...list.map((x) => {
      const tr = el("tr", { "data-type": String(x.type) }, [
        cell("type", x.type, null, "type"),
        cell("counts", Array.isArray(x.counts) ? x.counts : null,
             (v) => v ? v.map(fmtCount).join(" → ") : "–", "num"),
        cell("increase", isNum(x.increase) ? x.increase : null, (v) => fmtSigned(v, fmtCount), "num up"),
        cell("bytes_increase", isNum(x.bytes_increase) ? x.bytes_increase : null, (v) => fmtSigned(v, fmtBytes), "num"),
        cell("per_second", isNum(x.per_second) ? x.per_second : null, fmtRate, "num"),
      ]);
      if (x.name && x.name !== x.type) tr.title = x.name;
      return tr;
    }));
    t.hidden = !list.length;
    note.removeAttribute("data-error");
    if (growth.suspects === null || growth.suspects === undefined) {
      note.textContent = growth.suspects_error || "not known yet";
      note.setAttribute("data-error", note.textContent);
    } else if (!list.length) {
      note.textContent = "none: no type rose at every one of the last censuses" +
        (isNum(growth.suspects_since) ? " (since " + fmtTime(growth.suspects_since) + ")" : "");
    } else {
      note.textContent = "rose at every census since " + fmtTime(growth.suspects_since) +
        " (" + (list[0].censuses || "?") + " censuses)";
    }
  }

  /* ---- referrers ---------------------------------------------------------------------- */

  async function loadReferrers(type, fresh) {
    type = (type || "").trim();
    const pid = state.pid;
    const msg = $("referrers-msg");
    if (!type || pid === null) { msg.textContent = "choose a type of the census first"; return; }
    msg.className = "note";
    msg.textContent = "asking pymemd who holds " + type + "… (it copies the heap like a census: this can take seconds)";
    $("referrers-note").textContent = "";
    const box = $("referrers");
    box.setAttribute("data-state", "loading");
    let r;
    try {
      r = await getJSON(API + "/" + pid + "/referrers?type=" + encodeURIComponent(type) + (fresh ? "&fresh=1" : ""), 60000);
    } catch (e) {
      msg.className = "error";
      msg.textContent = "no answer from pymemd: " + e;
      box.setAttribute("data-state", "error");
      return;
    }
    if (pid !== state.pid) return;
    if (r.status !== 200) {
      /* An answer shown for another type would read as this one's. */
      if (!state.referrers || state.referrers.type !== type) box.hidden = true;
      msg.className = "error";
      box.setAttribute("data-state", "error");
      box.setAttribute("data-status", String(r.status));
      if (r.status === 429) {
        const after = r.headers.get("Retry-After");
        msg.textContent = "not now: " + errorText(r) + " — try again in " + (after || "a few") + " s.";
      } else if (r.status === 503) {
        msg.textContent = "pymemd could not answer in time: " + errorText(r) +
          " — it goes on, and keeps the answer: ask again (without recomputing) in a while.";
      } else {
        msg.textContent = errorText(r);
      }
      return;
    }
    renderReferrers(r.json, r.headers.get("Age"));
  }

  function renderReferrers(d, ageHeader) {
    const box = $("referrers");
    box.hidden = false;
    box.setAttribute("data-state", "shown");
    box.setAttribute("data-type", String(d.type));
    box.setAttribute("data-at", JSON.stringify(d.at));
    box.removeAttribute("data-status");
    state.referrers = { pid: state.pid, type: d.type };
    $("referrers-note").textContent = "of " + d.type;
    $("referrers-direct").tBodies[0].replaceChildren(...(d.referrers || []).map((r) => el("tr", { "data-type": r.type }, [
      cell("type", r.type, null, "type"),
      cell("objects", r.objects, fmtCount, "num"),
      cell("refs", r.refs, fmtCount, "num"),
    ])));
    $("referrers-roots").tBodies[0].replaceChildren(...(d.roots || []).map((r) => el("tr", {}, [
      cell("root", r.root, (v) => v === null ? "(none)" : v, "type"),
      cell("kind", r.kind),
      cell("holds", r.holds, fmtCount, "num"),
      cell("chain", r.chain, (v) => Array.isArray(v) && v.length ? v.join(" → ") : "", ""),
    ])));
    const unf = (d.unfollowed || []).map((u) => u.type + " ×" + fmtCount(u.objects));
    $("referrers-unfollowed").textContent = unf.length ?
      "not followed (C types pymemd cannot read the references of): " + unf.join(", ") : "";
    const msg = $("referrers-msg");
    msg.className = "note";
    msg.textContent = fmtCount(d.count) + " instances of " + d.type + "; computed at " + fmtTime(d.at) +
      (ageHeader !== null && ageHeader !== undefined ? " (" + fmtAge(Number(ageHeader)) + " ago, kept answer)" : " (just now)") +
      "; the target was paused " + (isNum(d.pause_seconds) ? (d.pause_seconds * 1000).toFixed(1) + " ms" : "–");
  }

  /* ---- the refresh loop --------------------------------------------------------------- */

  async function refreshDetail(p) {
    const detail = $("detail");
    detail.hidden = false;
    detail.setAttribute("data-pid", String(p.pid));
    $("detail-title").textContent = p.pid + " " + (p.name || "") +
      (get(p, ["python", "version"]) ? " · Python " + p.python.version : "") + " · " + p.status;
    $("detail-cmdline").textContent = p.cmdline || "";
    const err = $("detail-error");
    err.hidden = !p.error;
    err.textContent = p.error || "";

    const h = await loadHistory(p);
    if (p.pid !== state.pid) return;
    if (h.status === 200) renderHistory(state.hist);
    else $("history-note").textContent = "history: " + errorText(h);

    const at = get(p, ["objects", "at"]);
    if (!isNum(at)) {
      $("census-note").textContent = "no census yet" + (p.objects_error ? ": " + p.objects_error : "");
      renderGrowth(null, "");
      return;
    }
    if (at === state.censusAt) { renderCensusNote(p); return; }
    const o = await getJSON(API + "/" + p.pid + "/objects?top=" + TOP_TYPES);
    const g = await getJSON(API + "/" + p.pid + "/growth");
    if (p.pid !== state.pid) return;
    if (o.status !== 200 || !o.json) {
      $("census-note").textContent = errorText(o);
      return;
    }
    state.growth = g.status === 200 ? g.json : null;
    /* A census that came between the two requests: take both again at the next refresh. */
    state.censusAt = state.growth && state.growth.to !== o.json.at ? null : o.json.at;
    renderCensus(p, o.json, state.growth && state.growth.to === o.json.at ? state.growth : null);
    if (p.objects_error) $("census-note").textContent += " · the latest attempt failed: " + p.objects_error;
    renderGrowth(state.growth, g.status === 200 ? "" :
      errorText(g) + (g.status === 404 ? " (the next census comes by itself; pymemctl growth --fresh takes one now)" : ""));
  }

  /* One refresh at a time: a click or a test asking for one while the timer's runs shares it. */
  function refresh() {
    if (!state.inflight) state.inflight = doRefresh().finally(() => { state.inflight = null; });
    return state.inflight;
  }

  async function doRefresh() {
    clearTimeout(state.timer);
    try {
      const r = await getJSON(API);
      if (r.status !== 200 || !r.json) {
        setStatus(errorText(r), true);
      } else {
        const procs = r.json.processes || [];
        state.procs = procs;
        const want = /^#pid=(\d+)$/.exec(location.hash);
        if (want && state.pid === null) { state.pinned = true; select(Number(want[1]), false); }
        /* Until the user picks one, the first process read ok is shown. */
        if (!state.pinned && !procs.some((p) => p.pid === state.pid)) {
          const first = procs.find((p) => p.status === "ok") || procs[0];
          select(first ? first.pid : null, false);
        }
        renderProcs(procs);
        $("procs-note").textContent = procs.length + (procs.length === 1 ? " process" : " processes");
        const p = procs.find((x) => x.pid === state.pid);
        if (p) await refreshDetail(p);
        else if (state.pid !== null) {
          $("detail-title").textContent = state.pid + ": no longer watched (it exited, or no longer matches)";
          $("detail-error").hidden = true;
        } else $("detail").hidden = true;
        setStatus((state.paused ? "paused · refreshed " : "updated ") + fmtTime(Date.now() / 1000) +
                  (state.paused ? "" : " · every " + state.period + " s"), false);
        document.body.setAttribute("data-updated", String(Date.now()));
      }
    } catch (e) {
      setStatus("pymemd does not answer: " + e, true);
    }
    state.timer = setTimeout(() => { if (!state.paused) refresh(); }, state.period * 1000);
  }

  function togglePause() {
    state.paused = !state.paused;
    const b = $("pause");
    b.textContent = state.paused ? "resume updates" : "pause updates";
    b.setAttribute("aria-pressed", String(state.paused));
    document.body.classList.toggle("paused", state.paused);
    if (!state.paused) refresh();
    else setStatus("paused at " + fmtTime(Date.now() / 1000) + ": the numbers stay as they are", false);
  }

  window.addEventListener("resize", () => {
    if (!state.charts) return;
    state.charts.mem.setSize({ width: chartWidth("chart-mem"), height: 240 });
    state.charts.gc.setSize({ width: chartWidth("chart-gc"), height: 240 });
  });

  document.addEventListener("DOMContentLoaded", () => {
    $("referrers-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadReferrers($("referrers-type").value, false); });
    $("referrers-fresh").addEventListener("click", () => loadReferrers($("referrers-type").value, true));
    $("pause").addEventListener("click", togglePause);
    window.addEventListener("hashchange", () => {
      const want = /^#pid=(\d+)$/.exec(location.hash);
      if (want) select(Number(want[1]), true);
    });
    refresh();
  });

  window.pymemdPage = { state: state, COLORS: COLORS, refresh: refresh, togglePause: togglePause };
})();
