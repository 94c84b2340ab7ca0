#!/usr/bin/python3
"""HTTP contract: formats (DESIGN.md sections 3-5).

    /usr/bin/python3 test_formats.py --pymemd build/pymemd

Content negotiation and the formats of GET /metrics: the exact Accept headers
Prometheus v2.20, v2.45 (= 2.42), v2.49-v2.55 and v3.x send (each must get OpenMetrics 1.0.0),
text/plain (text 0.0.4), */*, none and browsers (JSON), q weights, ?format= overrides, the
exact Content-Type every time, gzip and Vary; both text formats line by line and by
`promtool check metrics`; values equal the targets' own gc.get_threshold()/get_stats()/
get_count()...; /healthz, the landing page, `pymemd --once`.

The setup, parsers and expectations are in httpcommon.py; PASS/FAIL/SKIP lines, ending with
exactly `N passed, M failed, K skipped`; exit status 0 iff nothing failed.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpcommon import *  # noqa: E402,F401,F403


def t_healthz(c, ctx):
    r = ctx.main.get("/healthz")
    c.eq("status", 200, r.status)
    c.eq("body", "ok", r.raw.decode("utf-8", "replace").strip())
    c.ok((r.h("Content-Type") or "").startswith("text/plain"),
         "Content-Type: expected text/plain..., got %s" % shown(r.h("Content-Type")))
    h = ctx.main.req("HEAD", "/healthz")
    c.eq("HEAD status", 200, h.status)
    c.eq("HEAD body", b"", h.raw)


def t_landing(c, ctx):
    r = ctx.main.get("/")
    c.eq("status", 200, r.status)
    ct = r.h("Content-Type") or ""
    c.ok(ct.startswith("text/html"), "Content-Type: expected text/html..., got %s" % shown(ct))
    body = r.raw.decode("utf-8", "replace")
    c.ok(re.search(r'href="?/metrics', body), "no link to /metrics in %s" % shown(body[:200]))
    c.ok(re.search(r'href="?/api/v1/processes', body),
         "no link to /api/v1/processes in %s" % shown(body[:300]))


def t_accept(c, ctx, accept, fmt):
    expect_format(c, ctx.main, accept, fmt)


def t_head_metrics(c, ctx):
    for accept, fmt in ((None, "json"), (PROM_ACCEPT[3][1], "om"),
                        ("text/plain;version=0.0.4", "text")):
        h = [("Accept", accept)] if accept else []
        r = ctx.main.req("HEAD", "/metrics", h)
        what = "HEAD /metrics Accept %s" % shown(accept)
        c.eq("%s: status" % what, 200, r.status)
        c.eq("%s: Content-Type" % what, CT_OF[fmt], r.h("Content-Type"))
        c.eq("%s: body" % what, b"", r.raw)


def t_format_override(c, ctx):
    v3 = PROM_ACCEPT[3][1]
    expect_format(c, ctx.main, v3, "json", path="/metrics?format=json")
    expect_format(c, ctx.main, v3, "text", path="/metrics?format=prometheus")
    expect_format(c, ctx.main, None, "om", path="/metrics?format=openmetrics")
    expect_format(c, ctx.main, "*/*", "text", path="/metrics?format=prometheus")
    expect_format(c, ctx.main, "text/plain", "json", path="/metrics?format=json")
    expect_format(c, ctx.main, "text/plain", "om", path="/metrics?format=openmetrics")


def t_format_bad(c, ctx):
    for q in ("format=xml", "format=", "format=JSONX", "format=text"):
        r = ctx.main.get("/metrics?" + q)
        expect_error(c, r, "GET /metrics?%s" % q, (400,))


def t_gzip(c, ctx):
    for accept, fmt in ((None, "json"), (PROM_ACCEPT[3][1], "om"),
                        ("text/plain;version=0.0.4", "text")):
        for ae in ("gzip", "deflate, gzip, br, zstd", "gzip;q=1.0, identity;q=0.5"):
            h = [("Accept-Encoding", ae)]
            if accept:
                h.append(("Accept", accept))
            r = ctx.main.get("/metrics", h)
            what = "%s with Accept-Encoding %s" % (FMT_NAME[fmt], shown(ae))
            if not c.eq("%s: status" % what, 200, r.status):
                continue
            c.eq("%s: Content-Encoding" % what, "gzip", r.h("Content-Encoding"))
            c.eq("%s: Content-Type" % what, CT_OF[fmt], r.h("Content-Type"))
            vary = [v.strip().lower() for v in (r.h("Vary") or "").split(",")]
            c.ok("accept-encoding" in vary and "accept" in vary,
                 "%s: Vary: expected Accept-Encoding and Accept, got %s" % (what, shown(r.h("Vary"))))
            cl = r.h("Content-Length")
            if cl is not None:
                c.eq("%s: Content-Length" % what, len(r.raw), int(cl))
            if r.h("Content-Encoding") == "gzip":
                c.ok(r.raw[:2] == b"\x1f\x8b", "%s: body is not gzip data" % what)
                try:
                    check_body_format(c, fmt, r, what)
                except (OSError, EOFError) as e:
                    c.diffs.append("%s: gunzip failed: %s" % (what, e))


def t_no_gzip(c, ctx):
    for ae in (None, "identity", "gzip;q=0", "deflate", "br"):
        for accept, fmt in ((None, "json"), (PROM_ACCEPT[3][1], "om")):
            h = []
            if ae is not None:
                h.append(("Accept-Encoding", ae))
            if accept:
                h.append(("Accept", accept))
            r = ctx.main.get("/metrics", h)
            what = "%s with Accept-Encoding %s" % (FMT_NAME[fmt], shown(ae))
            c.eq("%s: status" % what, 200, r.status)
            ce = r.h("Content-Encoding")
            c.ok(ce in (None, "identity"), "%s: expected no Content-Encoding, got %s" % (
                what, shown(ce)))
            c.ok(r.raw[:2] != b"\x1f\x8b", "%s: body is gzip data" % what)


def t_vary_identity(c, ctx):
    """Vary must also be on uncompressed negotiated responses, or a cache
    between curl and Prometheus serves one the other's format."""
    for accept in (None, PROM_ACCEPT[3][1], "text/plain"):
        h = [("Accept", accept)] if accept else []
        r = ctx.main.get("/metrics", h)
        vary = [v.strip().lower() for v in (r.h("Vary") or "").split(",")]
        c.ok("accept" in vary and "accept-encoding" in vary,
             "Accept %s without gzip: Vary: expected Accept and Accept-Encoding, got %s" % (
                 shown(accept), shown(r.h("Vary"))))


def t_json_document(c, ctx):
    r = ctx.main.get("/metrics")
    c.eq("Content-Type", CT_JSON, r.h("Content-Type"))
    d = r.json()
    top = d.get("pymemd")
    if not c.ok(isinstance(top, dict), "no \"pymemd\" object: %s" % shown(short(r.raw, 200))):
        return
    c.ok(isinstance(top.get("version"), str) and top.get("version"),
         "pymemd.version: expected a string, got %s" % shown(top.get("version")))
    sa = top.get("started_at")
    c.ok(isinstance(sa, (int, float)) and not isinstance(sa, bool)
         and abs(sa - ctx.main.started_at) < 5,
         "pymemd.started_at: expected about %.1f (when the test started it), got %s" % (
             ctx.main.started_at, shown(sa)))
    iv = top.get("interval_seconds")
    c.ok(isinstance(iv, (int, float)) and not isinstance(iv, bool)
         and abs(iv - INTERVAL) < 1e-9,
         "pymemd.interval_seconds: expected %s (--interval), got %s" % (INTERVAL, shown(iv)))
    procs = d.get("processes")
    if not c.ok(isinstance(procs, list), "processes: expected a list, got %s" % shown(procs)):
        return
    by = dict((p.get("pid"), p) for p in procs if isinstance(p, dict))
    pids = sorted(t.pid for t in ctx.targets)
    c.eq("pids in the document", pids, sorted(by))
    required = ("pid", "name", "cmdline", "start_time", "status", "error", "python", "threads",
                "memory", "pymalloc", "gc", "sampled_at", "sample_seconds")
    for t in ctx.targets:
        p = by.get(t.pid)
        if p is None:
            continue
        missing = [k for k in required if k not in p]
        c.ok(not missing, "%s PROCESS lacks %s" % (t.label, ", ".join(missing)))
        json_expectations(c, t.label, t, p)
        comm = proc_comm(t.pid)
        if comm is not None:
            c.eq("%s name (= /proc/PID/comm)" % t.label, comm.decode("utf-8", "replace"),
                 p.get("name"))
        cl = p.get("cmdline")
        c.ok(isinstance(cl, str) and t.tag in cl,
             "%s cmdline: expected to contain %s, got %s" % (t.label, t.tag, shown(cl)))
        mem = p.get("memory") or {}
        for k in ("rss_bytes", "vms_bytes", "anon_bytes", "swap_bytes", "pss_bytes",
                  "peak_rss_bytes"):
            c.ok(k in mem, "%s memory.%s missing" % (t.label, k))
        for k in ("arenas", "arenas_highwater", "arena_bytes", "allocated_blocks",
                  "allocated_bytes"):
            c.ok(k in (p.get("pymalloc") or {}), "%s pymalloc.%s missing" % (t.label, k))
        if p.get("error") is None:
            for k in ("arenas", "allocated_blocks"):
                c.ok((p.get("pymalloc") or {}).get(k) is not None,
                     "%s pymalloc.%s is null but error is null (the reason must be given)"
                     % (t.label, k))
        c.eq("%s threads" % t.label, t.truth["active_count"], p.get("threads"))
        rss = mem.get("rss_bytes")
        c.ok(isinstance(rss, int) and rss > 1 << 20,
             "%s memory.rss_bytes: expected > 1 MiB, got %s" % (t.label, shown(rss)))


def t_sampling_fresh(c, ctx):
    seen = {}
    t0 = time.time()
    for _ in range(8):
        d = ctx.main.doc()
        now = time.time()
        for p in d["processes"]:
            sa = p.get("sampled_at")
            if not isinstance(sa, (int, float)):
                c.diffs.append("pid %s sampled_at: expected a number, got %s" % (
                    p.get("pid"), shown(sa)))
                continue
            c.ok(sa <= now + 0.05, "pid %s sampled_at %.3f is in the future (now %.3f)" % (
                p.get("pid"), sa, now))
            c.ok(now - sa < 2.0, "pid %s sampled_at is %.2f s old with --interval %s" % (
                p.get("pid"), now - sa, INTERVAL))
            seen.setdefault(p.get("pid"), set()).add(sa)
            ss = p.get("sample_seconds")
            c.ok(isinstance(ss, (int, float)) and 0 <= ss < 1.0,
                 "pid %s sample_seconds: expected 0 <= x < 1, got %s" % (p.get("pid"), shown(ss)))
        time.sleep(0.25)
    for pid, s in seen.items():
        c.ok(len(s) >= 3, "pid %s: only %d distinct sampled_at in %.1f s with --interval %s" % (
            pid, len(s), time.time() - t0, INTERVAL))
    c.note("%d targets re-sampled %s times in %.1f s" % (
        len(seen), "/".join(str(len(s)) for s in seen.values()), time.time() - t0))


def t_expo(c, ctx, fmt):
    check_exposition(c, ctx.main, fmt, [t.pid for t in ctx.targets])


def t_expo_same(c, ctx):
    _, text_ex = get_expo(c, ctx.main, "text")
    _, om_ex = get_expo(c, ctx.main, "om")
    a, b = text_ex.series_keys(), om_ex.series_keys()
    only_t = sorted("%s%s" % (n, fmt_labels(dict(l))) for n, l in a - b)
    only_o = sorted("%s%s" % (n, fmt_labels(dict(l))) for n, l in b - a)
    c.ok(not only_t, "series only in text 0.0.4: %s" % short(", ".join(only_t), 400))
    c.ok(not only_o, "series only in OpenMetrics: %s" % short(", ".join(only_o), 400))


def t_values(c, ctx, t):
    procs = dict((p.get("pid"), p) for p in ctx.main.processes())
    proc = procs.get(t.pid)
    if proc is None:
        raise Fail("pid %d is not in /api/v1/processes" % t.pid)
    for fmt in ("text", "om"):
        _, ex = get_expo(c, ctx.main, fmt)
        metric_expectations(c, FMT_NAME[fmt], t, proc, ex)
        null_consistency(c, FMT_NAME[fmt], proc, ex)
    c.note("%s %s pid %d: threshold %s, collections %s" % (
        t.label, t.truth["version"], t.pid, t.truth["get_threshold"],
        [s["collections"] for s in t.truth["get_stats"]]))
    if proc.get("error"):
        c.note("error: %s" % short(proc.get("error"), 100))


def t_build_info(c, ctx):
    d = ctx.main.doc()
    _, ex = get_expo(c, ctx.main, "text")
    bi = ex.find("pymemd_build_info")
    if c.eq("pymemd_build_info series", 1, len(bi)):
        c.eq("pymemd_build_info version label (= JSON pymemd.version)",
             d["pymemd"]["version"], bi[0].labels.get("version"))
    r = subprocess.run([ctx.exe, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    c.ok(d["pymemd"]["version"] in out, "pymemd --version (%s) does not show version %s" % (
        shown(out.strip()), d["pymemd"]["version"]))


def t_once_same(c, ctx):
    r = subprocess.run([ctx.exe, "--once", "--match", ctx.regex], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    try:
        once = json.loads(r.stdout.decode("utf-8"))
    except ValueError:
        raise Fail("pymemd --once printed no JSON (exit %d, stderr %s)" % (
            r.returncode, short(r.stderr, 200)))
    d = ctx.main.doc()
    c.eq("top-level keys", sorted(once), sorted(d))
    c.eq("pymemd keys", sorted(once.get("pymemd", {})), sorted(d.get("pymemd", {})))
    ob = dict((p["pid"], p) for p in once.get("processes", []))
    for p in d.get("processes", []):
        o = ob.get(p["pid"])
        if o is None:
            c.diffs.append("pid %d in /metrics but not in --once" % p["pid"])
            continue
        # --once takes a census; the daemon may not have one yet.
        c.eq("pid %d PROCESS keys (besides objects)" % p["pid"],
             sorted(set(o) - {"objects"}), sorted(set(p) - {"objects"}))
        c.eq("pid %d gc keys" % p["pid"], sorted(o.get("gc") or {}), sorted(p.get("gc") or {}))


# Cases that need pymemd to read the targets (skipped when it may not).
for _fn in (t_json_document, t_values):
    _fn.needs_read = True


def cases(ctx):
    case("GET /healthz", t_healthz, ctx)
    case("GET / landing page", t_landing, ctx)
    for name, accept in PROM_ACCEPT:
        case("Accept of %s -> OpenMetrics" % name, t_accept, ctx, accept, "om")
    for name, accept, fmt in OTHER_ACCEPT:
        case("Accept %s -> %s" % (name, FMT_NAME[fmt]), t_accept, ctx, accept, fmt)
    case("HEAD /metrics", t_head_metrics, ctx)
    case("?format= overrides Accept", t_format_override, ctx)
    case("?format=<unknown> -> 400 JSON error", t_format_bad, ctx)
    case("gzip when Accept-Encoding allows it (+ Vary)", t_gzip, ctx)
    case("no gzip when Accept-Encoding does not allow it", t_no_gzip, ctx)
    case("Vary on uncompressed /metrics too", t_vary_identity, ctx)
    case("JSON document (/metrics) = targets' ground truth", t_json_document, ctx)
    case("snapshots are fresh (--interval %s)" % INTERVAL, t_sampling_fresh, ctx)
    case("Prometheus text 0.0.4: format + promtool", t_expo, ctx, "text")
    case("OpenMetrics 1.0.0: format + reference parser", t_expo, ctx, "om")
    case("text and OpenMetrics carry the same series", t_expo_same, ctx)
    for t in ctx.targets:
        case("metric values = ground truth: %s pid %d" % (t.label, t.pid), t_values, ctx, t)
    case("pymemd_build_info", t_build_info, ctx)
    case("pymemd --once prints the same document shape", t_once_same, ctx)


if __name__ == "__main__":
    sys.exit(drive("HTTP contract: formats", cases))
