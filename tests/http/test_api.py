#!/usr/bin/python3
"""HTTP contract: API and requests (DESIGN.md sections 3-5).

    /usr/bin/python3 test_api.py --pymemd build/pymemd

/api/v1/processes[/{pid}[/objects|/growth]]; JSON errors with the right status (404,
405 + Allow, 400) for unknown paths, bad pids, control characters in the path (%00-%1f, %7f,
which must never reach a handler cut short: no census taken by .../objects%00x?fresh=1);
odd requests never get a 5xx; keep-alive, concurrent and stalled clients.

The setup, parsers and expectations are in httpcommon.py; PASS/FAIL/SKIP lines, ending with
exactly `N passed, M failed, K skipped`; exit status 0 iff nothing failed.
"""
import http.client
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpcommon import *  # noqa: E402,F401,F403


def t_api_list(c, ctx):
    r = ctx.main.get("/api/v1/processes")
    c.eq("status", 200, r.status)
    c.eq("Content-Type", CT_JSON, r.h("Content-Type"))
    d = r.json()
    c.eq("keys", ["processes"], sorted(d) if isinstance(d, dict) else d)
    procs = d.get("processes") if isinstance(d, dict) else None
    if isinstance(procs, list):
        c.eq("pids", sorted(t.pid for t in ctx.targets),
             sorted(p.get("pid") for p in procs if isinstance(p, dict)))


def t_api_one(c, ctx, t):
    r = ctx.main.get("/api/v1/processes/%d" % t.pid)
    c.eq("status", 200, r.status)
    c.eq("Content-Type", CT_JSON, r.h("Content-Type"))
    if r.status == 200:
        json_expectations(c, t.label, t, r.json())


def t_api_unwatched(c, ctx):
    for pid in (os.getpid(), 1, 4194304):
        r = ctx.main.get("/api/v1/processes/%d" % pid)
        expect_error(c, r, "GET /api/v1/processes/%d (not watched)" % pid, (404,))


def t_api_badpid(c, ctx):
    for s in ("abc", "-1", "99999999999999999999", "0", "1.5", "+12", "0x10", "%20", "12abc",
              "%2F", "1%00"):
        r = ctx.main.get("/api/v1/processes/%s" % s)
        expect_error(c, r, "GET /api/v1/processes/%s" % s, (400, 404))


def t_control_chars(c, ctx):
    """libmicrohttpd decodes the path before the handler sees it, so %00 used to cut it short:
    /api/v1/processes/PID%00 answered 200 with the process, /metrics%00.json the metrics."""
    t = ctx.targets[0]
    paths = ["/api/v1/processes/%d%%%02x" % (t.pid, b) for b in list(range(0x20)) + [0x7f]]
    paths += ["/api/v1/processes/%d%%00x" % t.pid, "/api/v1/processes/%d%%00/objects" % t.pid,
              "/metrics%00.json", "/metrics%00", "/metrics%0a", "/metrics%7F", "/healthz%00",
              "/api/v1/processes%00", "/metrics?format=json%00", "/%00"]
    for path in paths:
        expect_error(c, ctx.main.get(path), "GET %s" % path, (400,))
    for path in ("/api/v1/processes/%dabc" % t.pid, "/api/v1/processes/%d.5" % t.pid):
        expect_error(c, ctx.main.get(path), "GET %s" % path, (400, 404))
    # The same target and paths without the control character are served: the 400s above
    # come from the character, not from the path.
    c.eq("GET /api/v1/processes/%d: status" % t.pid, 200,
         ctx.main.get("/api/v1/processes/%d" % t.pid).status)
    c.eq("GET /metrics: status", 200, ctx.main.get("/metrics").status)


def t_control_chars_census(c, ctx):
    """.../objects%00x?fresh=1 must not take a census: on a pymemd that takes none by itself
    (--census-interval 0), there is still none afterwards; ?fresh=1 proper takes one."""
    # A target of its own, which the main pymemd does not watch: two tracers cannot stop one
    # process at the same time, so a census of the main one must not meet ours.
    tag, _ = make_tag()
    t = Target("%s (census test)" % ctx.interps[0][0], target_argv(ctx.interps[0][1], tag), tag)
    inst = Pymemd(ctx.exe, ["--pid", str(t.pid), "--interval", str(INTERVAL),
                            "--census-interval", "0"], "pymemd (no periodic census)")
    try:
        inst.start()
        wait_sampled(inst, [t.pid])
        objects = "/api/v1/processes/%d/objects" % t.pid
        for bad in ("%00x?fresh=1", "%00?fresh=1", "%0a?fresh=1", "?fresh=1%00"):
            expect_error(c, inst.get(objects + bad, timeout=30), "GET %s%s" % (objects, bad),
                         (400,))
        r = inst.get(objects)
        if expect_error(c, r, "GET %s after the rejected requests (no census)" % objects, (404,)):
            msg = r.json().get("error", {}).get("message", "")
            c.ok("no object census" in msg, "%s: expected \"no object census ...\", got %s" % (
                objects, shown(msg)))
        r = inst.get(objects + "?fresh=1", timeout=30)
        c.eq("GET %s?fresh=1: status (the census the rejected requests did not take)" % objects,
             200, r.status)
    finally:
        inst.close()
        t.close()


def t_api_census(c, ctx):
    t = ctx.targets[0]
    notes = []
    for sub in ("objects", "growth", "objects?top=5", "objects?top=5&fresh=1"):
        path = "/api/v1/processes/%d/%s" % (t.pid, sub)
        r = ctx.main.get(path, timeout=30)
        if r.status == 200:
            c.eq("%s: Content-Type" % path, CT_JSON, r.h("Content-Type"))
            try:
                r.json()
            except ValueError:
                c.diffs.append("%s: 200 but not JSON" % path)
            notes.append("%s 200" % sub)
        else:
            expect_error(c, r, path, (404, 503))
            notes.append("%s %d" % (sub, r.status))
    for sub in ("objects", "growth"):
        path = "/api/v1/processes/%d/%s" % (os.getpid(), sub)
        expect_error(c, ctx.main.get(path), path + " (not watched)", (404,))
    for sub in ("objects?top=abc", "objects?top=-1"):
        path = "/api/v1/processes/%d/%s" % (t.pid, sub)
        r = ctx.main.get(path)
        expect_error(c, r, path, (400, 404, 503))
    c.note(", ".join(notes))


def t_404(c, ctx):
    for path in ("/nope", "/metrics/extra", "/api", "/api/v1", "/api/v2/processes",
                 "/api/v1/processes/%d/unknown" % ctx.targets[0].pid, "/healthz/x",
                 "/favicon.ico", "/METRICS"):
        expect_error(c, ctx.main.get(path), "GET %s" % path, (404,))


def t_405(c, ctx):
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for path in ("/metrics", "/healthz", "/api/v1/processes", "/"):
            body = b'{"x": 1}' if method in ("POST", "PUT", "PATCH") else None
            r = ctx.main.req(method, path, body=body)
            what = "%s %s" % (method, path)
            if expect_error(c, r, what, (405,)):
                allow = [a.strip().upper() for a in (r.h("Allow") or "").split(",")]
                c.ok("GET" in allow and "HEAD" in allow,
                     "%s: Allow: expected GET and HEAD, got %s" % (what, shown(r.h("Allow"))))
    # A request body larger than one read must not hang the daemon.
    r = ctx.main.req("POST", "/metrics", body=b"x" * 300000, timeout=10)
    c.eq("POST /metrics with a 300 kB body: status", 405, r.status)


def t_odd_requests(c, ctx):
    port = ctx.main.port
    cases = [
        ("HTTP/1.0 without Host", b"GET /healthz HTTP/1.0\r\n\r\n", (200,)),
        ("HTTP/1.1 without Host", b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
         (200, 400)),
        ("absolute URI", ("GET http://127.0.0.1:%d/healthz HTTP/1.1\r\nHost: x\r\n"
                          "Connection: close\r\n\r\n" % port).encode(), (200, 400, 404)),
        ("path traversal", b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close"
                           b"\r\n\r\n", (400, 404)),
        ("double slash", b"GET //metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         (200, 400, 404)),
        ("16 kB URI", b"GET /metrics?" + b"a" * 16000 + b" HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n", (200, 400, 404, 414, 431)),
        ("binary path", b"GET /\xff\xfe%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         (400, 404)),
        ("unknown method", b"BREW /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         (400, 405, 501)),
        ("not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, (None, 400)),
        ("64 headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
         b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(64)) +
         b"Connection: close\r\n\r\n", (200, 400, 431)),
    ]
    for what, data, ok in cases:
        try:
            status, raw = raw_request(port, data)
        except OSError as e:
            status, raw = None, str(e).encode()
        c.ok(status in ok or (status is not None and ok == (None, 400) and status < 500),
             "%s: expected %s, got %s (%s)" % (what, "/".join(str(s) for s in ok),
                                               status, shown(short(raw, 120))))
        # 501 is the right answer to an unrecognised method (RFC 9110 15.6.2).
        c.ok(status is None or status < 500 or (what == "unknown method" and status == 501),
             "%s: server error %s" % (what, status))
        if not ctx.main.alive():
            raise Fail("pymemd died after %s: %s" % (what, short(ctx.main.stderr()[-400:])))
    r = ctx.main.get("/healthz")
    c.eq("GET /healthz afterwards", 200, r.status)


def t_keepalive(c, ctx):
    conn = http.client.HTTPConnection("127.0.0.1", ctx.main.port, timeout=10)
    try:
        seq = [("/healthz", None), ("/metrics", None), ("/metrics", PROM_ACCEPT[1][1]),
               ("/api/v1/processes", None), ("/nope", None), ("/metrics?format=prometheus", None)]
        ports = set()
        closes = 0
        for path, accept in seq:
            h = [("Accept", accept)] if accept else []
            r = request(ctx.main.port, "GET", path, h, conn=conn)
            c.ok(r.status in (200, 404), "GET %s on a kept-alive connection: %s" % (
                path, r.describe()))
            if conn.sock is not None:
                ports.add(conn.sock.getsockname()[1])
            if (r.h("Connection") or "").lower() == "close" or conn.sock is None:
                closes += 1
        if closes:
            # Not in the contract; Prometheus and wrk reuse connections.
            c.note("the server closed the connection after %d of %d responses "
                   "(no keep-alive)" % (closes, len(seq)))
        else:
            c.note("%d requests on one connection" % len(seq))
    finally:
        conn.close()


def t_concurrency(c, ctx):
    errors = []
    lock = threading.Lock()
    accepts = [None, PROM_ACCEPT[3][1], "text/plain;version=0.0.4", PROM_ACCEPT[0][1]]
    wants = ["json", "om", "text", "om"]

    def worker(k):
        for j in range(5):
            i = (k + j) % 4
            try:
                h = [("Accept", accepts[i])] if accepts[i] else []
                if j % 2:
                    h.append(("Accept-Encoding", "gzip"))
                r = request(ctx.main.port, "GET", "/metrics", h, timeout=15)
                if r.status != 200 or r.h("Content-Type") != CT_OF[wants[i]]:
                    raise RuntimeError(r.describe())
                r.body
            except Exception as e:
                with lock:
                    errors.append("%s: %s" % (wants[i], e))
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(24)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    c.ok(not errors, "%d of 120 concurrent requests failed: %s" % (
        len(errors), short("; ".join(errors[:3]), 300)))
    c.note("120 requests from 24 threads in %.2f s" % (time.monotonic() - t0))


def t_slow_clients(c, ctx):
    socks = []
    try:
        for i in range(8):
            s = socket.create_connection(("127.0.0.1", ctx.main.port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")   # never finished
            socks.append(s)
        for i in range(4):
            socks.append(socket.create_connection(("127.0.0.1", ctx.main.port), timeout=5))
        t0 = time.monotonic()
        r = ctx.main.get("/healthz", timeout=5)
        took = time.monotonic() - t0
        c.eq("GET /healthz with 12 stalled connections open: status", 200, r.status)
        c.ok(took < 2.0, "GET /healthz took %.2f s with stalled connections open" % took)
        r = ctx.main.get("/metrics", [("Accept", PROM_ACCEPT[3][1])], timeout=5)
        c.eq("GET /metrics with stalled connections open: status", 200, r.status)
        c.note("answered in %.3f s" % took)
    finally:
        for s in socks:
            s.close()


def t_healthz_stalled(c, ctx):
    """/healthz answers 503 "stalled" once no snapshot has come for ten intervals (at least
    5 s), so that a liveness probe (Kubernetes has no systemd watchdog) sees a stuck sampler,
    and 200 again when snapshots come back. The sampler is stopped with SIGSTOP: it watches no
    target (and takes no census), so stopping it stops nobody else."""
    inst = Pymemd(ctx.exe, ["--match", "^no-such-process-pymemd-test$", "--interval", "0.2",
                            "--census-interval", "0"], "pymemd (stalled sampler)")
    try:
        inst.start()
        sampler = inst.p.pid
        r = inst.get("/healthz")
        c.eq("GET /healthz while sampling", 200, r.status)
        os.kill(sampler, signal.SIGSTOP)
        try:
            time.sleep(1.0)
            r = inst.get("/healthz")
            c.eq("GET /healthz 1 s after the sampler stopped (the limit is 5 s)", 200, r.status)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                r = inst.get("/healthz")
                if r.status != 200:
                    break
                time.sleep(0.2)
            if expect_error(c, r, "GET /healthz with the sampler stopped", (503,)):
                msg = r.json().get("error", {}).get("message", "")
                c.ok(msg.startswith("stalled: no new sample for "),
                     "expected \"stalled: no new sample for ...\", got %s" % shown(msg))
        finally:
            os.kill(sampler, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = inst.get("/healthz")
            if r.status == 200:
                break
            time.sleep(0.1)
        c.eq("GET /healthz once the sampler runs again", 200, r.status)
    finally:
        inst.close()


# Cases that need pymemd to read the targets (skipped when it may not).
for _fn in (t_api_one,):
    _fn.needs_read = True


def cases(ctx):
    case("GET /api/v1/processes", t_api_list, ctx)
    for t in ctx.targets:
        case("GET /api/v1/processes/{pid}: %s" % t.label, t_api_one, ctx, t)
    case("unwatched pid -> 404 JSON error", t_api_unwatched, ctx)
    case("bad pid strings -> 400/404 JSON error", t_api_badpid, ctx)
    case("control characters in the path (%00-%1f, %7f) -> 400 JSON error", t_control_chars,
         ctx)
    case("objects%00x?fresh=1 takes no census", t_control_chars_census, ctx)
    case("objects/growth answer JSON (no census yet is fine)", t_api_census, ctx)
    case("unknown paths -> 404 JSON error", t_404, ctx)
    case("other methods -> 405 JSON error + Allow", t_405, ctx)
    case("odd requests never get 5xx", t_odd_requests, ctx)
    case("keep-alive connection", t_keepalive, ctx)
    case("concurrent requests", t_concurrency, ctx)
    case("stalled clients do not block others", t_slow_clients, ctx)
    case("/healthz: 503 while the sampler publishes nothing, 200 after", t_healthz_stalled, ctx)


if __name__ == "__main__":
    sys.exit(drive("HTTP contract: API and requests", cases))
