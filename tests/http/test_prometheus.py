#!/usr/bin/python3
"""pymemd scraped by a real Prometheus server (Debian's prometheus 2.42).

    /usr/bin/python3 test_prometheus.py --pymemd build/pymemd [--prometheus PATH]

Starts a CPython target (tests/integration/target.py, which sets
gc.set_threshold(777, 55, 33) and prints its own ground truth), a pymemd
watching it (--match), and `prometheus` on a free loopback port with a
generated configuration (scrape_interval 1s) and a temporary storage
directory.  Three scrape jobs:

  pymemd        /metrics, negotiated (Prometheus 2.42 asks for OpenMetrics first);
  pymemd-text   /metrics?format=prometheus (text 0.0.4);
  sniff         a tiny server of this script that records the Accept header
                the installed Prometheus really sends.

Then, through Prometheus' HTTP API (/api/v1/query), it checks that both
pymemd jobs are up (Prometheus fails a scrape on a bad Content-Type or a
parse error; the target's lastError is printed then), that the stored
python_gc_threshold{generation="1"} is the target's own 55 (and 777, 33),
the collection counters equal gc.get_stats(), pymemd_target_up is 1, and the
metric types Prometheus recorded.  The Accept header the sniff job saw is
sent to pymemd too and must get OpenMetrics.

Standard library only.  Everything is bounded to 60 s.  Prints PASS/FAIL/SKIP
lines and ends with exactly `N passed, M failed, K skipped`; exit status 0 iff
nothing failed (a missing prometheus binary is a visible SKIP).
"""

import argparse
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import httpcommon as th   # noqa: E402  (shared helpers: targets, pymemd, parsing)

BUDGET = 60.0


class Sniffer(object):
    """Records the request headers of every scrape."""

    def __init__(self):
        seen = self.seen = []

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                seen.append(dict((k.lower(), v) for k, v in self.headers.items()))
                body = b"# HELP sniff_up 1\n# TYPE sniff_up gauge\nsniff_up 1\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Prom(object):
    def __init__(self, exe, workdir, config_text):
        self.port = None
        self.workdir = workdir
        self.cfg = os.path.join(workdir, "prometheus.yml")
        with open(self.cfg, "w") as f:
            f.write(config_text)
        self.logf = open(os.path.join(workdir, "prometheus.log"), "w+b")
        self.exe = exe
        self.p = None

    def start(self, deadline):
        for attempt in range(3):
            self.port = th.free_port()
            self.p = th.CHILDREN.spawn(
                [self.exe, "--config.file=" + self.cfg,
                 "--storage.tsdb.path=" + os.path.join(self.workdir, "data"),
                 "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
                cwd=self.workdir)
            while time.monotonic() < deadline:
                if self.p.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % self.port,
                                                timeout=2) as r:
                        if r.status == 200:
                            return
                except OSError:
                    pass
                time.sleep(0.2)
            if self.p.poll() is None:
                raise th.Fail("prometheus was not ready within the time budget; log: %s" %
                              th.short(self.log(), 400))
            if "address already in use" not in self.log():
                raise th.Fail("prometheus exited with status %s: %s" % (
                    self.p.returncode, th.short(self.log(), 400)))
            th.CHILDREN.reap(self.p)
        raise th.Fail("prometheus: no free port")

    def log(self):
        try:
            self.logf.flush()
            self.logf.seek(0)
            return self.logf.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def api(self, path, **params):
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            d = json.loads(r.read().decode("utf-8"))
        if d.get("status") != "success":
            raise th.Fail("%s: %s" % (path, th.shown(d)))
        return d["data"]

    def query(self, q):
        """{frozenset(labels): float} of an instant query."""
        data = self.api("/api/v1/query", query=q)
        out = {}
        for r in data.get("result", []):
            out[frozenset(r["metric"].items())] = float(r["value"][1])
        return out

    def one(self, q):
        res = self.query(q)
        if len(res) != 1:
            return None if not res else ("%d series" % len(res))
        return list(res.values())[0]

    def target_health(self, job):
        for t in self.api("/api/v1/targets").get("activeTargets", []):
            if t.get("labels", {}).get("job") == job:
                return t
        return None

    def close(self):
        if self.p is not None:
            try:
                self.p.send_signal(signal.SIGTERM)
                self.p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            th.CHILDREN.reap(self.p)
        try:
            self.logf.close()
        except OSError:
            pass


CONFIG = """# generated by tests/http/test_prometheus.py
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pymemd
    static_configs:
      - targets: ['127.0.0.1:%(pymemd)d']
  - job_name: pymemd-text
    params:
      format: [prometheus]
    static_configs:
      - targets: ['127.0.0.1:%(pymemd)d']
  - job_name: sniff
    static_configs:
      - targets: ['127.0.0.1:%(sniff)d']
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pymemd", required=True)
    ap.add_argument("--prometheus", default=None,
                    help="the prometheus server binary (default: prometheus on PATH)")
    opts = ap.parse_args()
    exe = os.path.abspath(opts.pymemd)
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        sys.stderr.write("test_prometheus.py: %s is not an executable file\n" % exe)
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    t0 = time.monotonic()
    th.say("pymemd scraped by Prometheus: %s" % exe)
    try:
        run(exe, opts.prometheus, t0 + BUDGET)
    except KeyboardInterrupt:
        th.RESULTS.out("FAIL", "run", "interrupted")
    finally:
        th.CHILDREN.stop_all()
    th.say("(%.1f s)" % (time.monotonic() - t0))
    R = th.RESULTS
    th.say("%d passed, %d failed, %d skipped" % (R.passed, R.failed, R.skipped))
    return 1 if R.failed else 0


def run(exe, prom_exe, deadline):
    prom_exe = prom_exe or shutil.which("prometheus") or (
        "/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None)
    if not prom_exe:
        th.RESULTS.out("SKIP", "Prometheus scrapes pymemd",
                       "prometheus is not installed (apt-get install prometheus)")
        return
    try:
        v = subprocess.run([prom_exe, "--version"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        th.say("prometheus: %s" % th.short(v.stdout.decode("utf-8", "replace")
                                           .splitlines()[0] if v.stdout else "?", 120))
    except (OSError, subprocess.TimeoutExpired):
        pass

    label, path = th.pyenv_python(12)
    if not path:
        label, path = "system-python3", "/usr/bin/python3"
    tag, regex = th.make_tag()
    tag += "-prom"
    try:
        target = th.Target(label, th.target_argv([path], tag), tag)
    except (RuntimeError, OSError) as e:
        th.RESULTS.out("FAIL", "setup: target", str(e))
        return
    tr = target.truth
    pid = target.pid
    th.say("target: %s %s pid %d, gc threshold %s" % (label, tr["version"], pid,
                                                     tr["get_threshold"]))
    inst = th.Pymemd(exe, ["--match", regex, "--interval", "0.5"], "pymemd")
    sniff = None
    prom = None
    workdir = tempfile.mkdtemp(prefix="pymemd-prom-")
    try:
        try:
            inst.start()
        except th.NotAvailable as e:
            th.RESULTS.out("SKIP", "Prometheus scrapes pymemd",
                           "this pymemd has no HTTP daemon: %s" % e)
            return
        except th.Fail as e:
            th.RESULTS.out("FAIL", "setup: pymemd --listen", str(e))
            return
        p = th.wait_sampled(inst, [pid], timeout=min(15, deadline - time.monotonic()))
        if (p.get(pid) or {}).get("status") != "ok":
            th.RESULTS.out("FAIL", "setup: target sampled",
                           "pid %d not ok in pymemd: %s" % (pid, th.shown(p.get(pid))))
            return
        sniff = Sniffer()
        prom = Prom(prom_exe, workdir, CONFIG % {"pymemd": inst.port, "sniff": sniff.port})

        def t_start(c):
            prom.start(deadline)
            c.note("listening on 127.0.0.1:%d" % prom.port)
        if not th.case("setup: prometheus starts", t_start):
            return

        # Wait until every job has been scraped at least once.
        jobs = ("pymemd", "pymemd-text", "sniff")
        up = {}
        while time.monotonic() < deadline - 5:
            up = dict((dict(k).get("job"), v) for k, v in prom.query("up").items())
            if all(j in up for j in jobs) and sniff.seen:
                break
            time.sleep(0.5)
        # One more scrape interval so that the values are stored.
        time.sleep(1.2)

        def t_up(c, job):
            v = up.get(job)
            if v is None:
                raise th.Fail("Prometheus has no up{job=%r} within the time budget" % job)
            t = prom.target_health(job) or {}
            if not c.eq('up{job="%s"}' % job, 1.0, v):
                c.diffs.append("target health %s, lastError %s" % (
                    th.shown(t.get("health")), th.shown(t.get("lastError"))))
            n = prom.one('scrape_samples_scraped{job="%s"}' % job)
            c.ok(isinstance(n, float) and n > 10, "scrape_samples_scraped{job=%r}: expected "
                                                 "> 10, got %s" % (job, th.shown(n)))
            c.note("health %s, %s samples per scrape, last scrape %.1f ms" % (
                t.get("health"), n, 1000 * float(t.get("lastScrapeDuration") or 0)))

        th.case('Prometheus scrapes /metrics (negotiated): up{job="pymemd"} == 1',
                t_up, "pymemd")
        th.case('Prometheus scrapes /metrics?format=prometheus: up{job="pymemd-text"} == 1',
                t_up, "pymemd-text")

        def t_values(c, job):
            sel = 'job="%s",pid="%d"' % (job, pid)
            for i in range(3):
                c.eq('python_gc_threshold{generation="%d",%s}' % (i, sel),
                     float(tr["get_threshold"][i]),
                     prom.one('python_gc_threshold{generation="%d",%s}' % (i, sel)))
                c.eq('python_gc_collections_total{generation="%d",%s}' % (i, sel),
                     float(tr["get_stats"][i]["collections"]),
                     prom.one('python_gc_collections_total{generation="%d",%s}' % (i, sel)))
                c.eq('python_gc_objects_collected_total{generation="%d",%s}' % (i, sel),
                     float(tr["get_stats"][i]["collected"]),
                     prom.one('python_gc_objects_collected_total{generation="%d",%s}' % (i, sel)))
            c.eq("pymemd_target_up{%s}" % sel, 1.0, prom.one("pymemd_target_up{%s}" % sel))
            c.eq("python_gc_enabled{%s}" % sel, 1.0, prom.one("python_gc_enabled{%s}" % sel))
            info = prom.query('python_info{%s}' % sel)
            if c.eq("python_info{%s} series" % sel, 1, len(info)):
                c.eq("python_info version label", tr["version"],
                     dict(list(info)[0]).get("version"))
            bi = prom.query('pymemd_build_info{job="%s"}' % job)
            c.eq('pymemd_build_info{job="%s"} series' % job, 1, len(bi))
            c.note('python_gc_threshold{generation="1"} = %s (the target set %d)' % (
                prom.one('python_gc_threshold{generation="1",%s}' % sel),
                tr["get_threshold"][1]))

        th.case("stored values = the target's own (OpenMetrics scrape)", t_values, "pymemd")
        th.case("stored values = the target's own (text scrape)", t_values, "pymemd-text")

        def t_metadata(c):
            md = prom.api("/api/v1/targets/metadata", match_target='{job="pymemd"}')
            types = {}
            for m in md:
                types[m.get("metric")] = m.get("type")
            c.eq("type of python_gc_threshold", "gauge", types.get("python_gc_threshold"))
            c.eq("type of pymemd_target_up", "gauge", types.get("pymemd_target_up"))
            # OpenMetrics names the counter family without _total.
            ct = types.get("python_gc_collections") or types.get("python_gc_collections_total")
            c.eq("type of python_gc_collections(_total)", "counter", ct)
            unknown = sorted(k for k, v in types.items() if v in ("unknown", "untyped"))
            c.ok(not unknown, "metrics Prometheus stored as unknown/untyped: %s" % unknown)
            c.note("%d metric families with metadata" % len(types))
        th.case("metric types as Prometheus recorded them", t_metadata)

        def t_sniff(c):
            if not sniff.seen:
                raise th.Fail("the sniff job was never scraped")
            h = sniff.seen[-1]
            acc = h.get("accept")
            ref = dict(th.PROM_ACCEPT)["Prometheus v2.45 (and the installed 2.42)"]
            c.note("Prometheus sent Accept: %s; Accept-Encoding: %s; User-Agent: %s" % (
                acc, h.get("accept-encoding"), h.get("user-agent")))
            if acc != ref:
                c.note("differs from the v2.45 header in ecosystem.md (%s)" % ref)
            r = inst.get("/metrics", [("Accept", acc),
                                      ("Accept-Encoding", h.get("accept-encoding") or "gzip")])
            c.eq("status", 200, r.status)
            c.eq("Content-Type for the installed Prometheus' own Accept", th.CT_OM,
                 r.h("Content-Type"))
        th.case("the installed Prometheus' own Accept header -> OpenMetrics", t_sniff)
    finally:
        if prom is not None:
            prom.close()
        if sniff is not None:
            sniff.close()
        inst.close()
        target.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
