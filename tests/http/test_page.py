#!/usr/bin/python3
"""The page at / in a real browser: Debian's headless Chromium, driven over WebDriver
(chromedriver, HTTP + JSON, urllib only).

    /usr/bin/python3 test_page.py --pymemd build/pymemd [--out-dir DIR]

Two real targets on a pyenv CPython: tests/integration/target.py, which prints its own values
(gc.get_stats(), gc.get_count(), sys.getallocatedblocks(), its census) once quiescent, and a
small leaking program (LEAKY) whose census grows. pymemd watches both; Chromium loads /, and:

- the page's process table (each cell's data-v and its text) equals the JSON API's PROCESS of
  the same sample (sampled_at), and the target's own values (collections, counts, allocated
  blocks, version);
- each chart holds exactly the samples of /history from its first to its last time, value for
  value, and a screenshot of each chart, one series shown at a time, has that series drawn in its
  colour (and no other series' colour);
- the top types are the census of /objects, the Node count the target's own; the growth of the
  leaking target is /growth's, and its leak suspects when /growth has them;
- referrers of Node, asked by clicking its row, are the kept answer /referrers serves after,
  3,000 instances as the target holds; a recompute inside census_min_interval for a type with no
  kept answer shows pymemd's 429 as a message with its Retry-After;
- the headers of / (exact Content-Type, a CSP without inline script, ETag and 304, gzip);
- all of it again over TLS with basic auth (--web.config.file: a self-signed certificate made by
  openssl, a bcrypt hash of a random password), the page loaded with the credentials the browser
  then sends with its own fetches.

Screenshots go to --out-dir (page.png, page-tls.png, chart crops; OCR of the table by tesseract
when installed must show the API's numbers). SKIP, with the reason, when chromium or
chromedriver is missing or Chromium cannot start (e.g. no usable /dev/shm in a fresh chroot).
PASS/FAIL/SKIP lines, ending with exactly `N passed, M failed, K skipped`.
"""
import argparse
import base64
import decimal
import gzip
import http.client
import json
import os
import re
import shutil
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import httpcommon as th   # noqa: E402

INTERVAL = 1.0          # pymemd --interval, and the page's refresh period
CENSUS_INTERVAL = 2.0
BUDGET = 110.0          # seconds for the whole driver

LEAKY = r"""
import gc, json, os, sys, threading, time
class Leak(object):
    def __init__(self, i):
        self.i = i
        self.payload = [i]
held = []
def leak():
    i = 0
    while True:
        held.extend(Leak(i + k) for k in range(100))
        i += 100
        time.sleep(0.5)
threading.Thread(target=leak, daemon=True).start()
os.write(1, (json.dumps({"pid": os.getpid()}) + "\n").encode())
try:
    os.read(0, 1)
except (OSError, KeyboardInterrupt):
    pass
"""

CHROME_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
    "--window-size=1400,1700", "--force-device-scale-factor=1", "--hide-scrollbars",
    # Nothing but loopback: no update checks, no sync, no name lookups of other hosts.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-first-run",
    "--no-default-browser-check", "--disable-breakpad", "--metrics-recording-only",
    "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--force-color-profile=srgb", "--disable-features=Translate,MediaRouter,OptimizationHints",
]


class NoBrowser(Exception):
    pass


# --------------------------------------------------------------------------
# WebDriver over urllib

class WebDriver(object):
    """A chromedriver child and one Chromium session."""

    def __init__(self, driver, binary, tmp):
        self.port = th.free_port()
        self.errf = tempfile.TemporaryFile()
        self.p = th.CHILDREN.spawn([driver, "--port=%d" % self.port],
                                   stdout=self.errf, stderr=subprocess.STDOUT,
                                   env=th.clean_env(HOME=tmp))
        self.sid = None
        end = time.monotonic() + 15
        while True:
            try:
                self.call("GET", "/status")
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > end or self.p.poll() is not None:
                    raise NoBrowser("chromedriver did not start: %s" % th.short(
                        th.captured(self.errf), 300))
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "acceptInsecureCerts": True,
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {"binary": binary, "args": CHROME_ARGS +
                                   ["--user-data-dir=%s" % os.path.join(tmp, "profile")]}}}}
        st, r = self.call("POST", "/session", caps, check=False, timeout=60)
        if st != 200:
            raise NoBrowser("Chromium did not start: %s" % th.short(
                json.dumps(r.get("value", r)), 400))
        self.sid = r["value"]["sessionId"]
        self.call("POST", "/session/%s/timeouts" % self.sid, {"script": 90000})

    def call(self, method, path, body=None, check=True, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                st, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            st, raw = e.code, e.read()
        doc = json.loads(raw.decode("utf-8")) if raw else {}
        if check and st != 200:
            raise th.Fail("WebDriver %s %s: %d %s" % (method, path, st,
                                                     th.short(json.dumps(doc), 300)))
        return (st, doc) if not check else doc.get("value")

    def s(self, rest):
        return "/session/%s%s" % (self.sid, rest)

    def go(self, url):
        self.call("POST", self.s("/url"), {"url": url}, timeout=60)

    def js(self, script, *args):
        return self.call("POST", self.s("/execute/sync"), {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        return self.call("POST", self.s("/execute/async"), {"script": script, "args": list(args)},
                         timeout=100)

    def find(self, css):
        v = self.call("POST", self.s("/element"), {"using": "css selector", "value": css})
        return list(v.values())[0]

    def click(self, css):
        self.call("POST", self.s("/element/%s/click" % self.find(css)), {})

    def screenshot(self, css=None):
        if css is None:
            v = self.call("GET", self.s("/screenshot"))
        else:
            v = self.call("GET", self.s("/element/%s/screenshot" % self.find(css)))
        return base64.b64decode(v)

    def log(self):
        st, d = self.call("POST", self.s("/se/log"), {"type": "browser"}, check=False)
        return d.get("value") if st == 200 else []

    def wait(self, script, what, timeout=30.0, *args):
        """The first truthy value of script within timeout seconds (Fail otherwise)."""
        end = time.monotonic() + timeout
        v = None
        while time.monotonic() < end:
            v = self.js(script, *args)
            if v:
                return v
            time.sleep(0.2)
        raise th.Fail("the page did not show %s within %.0f s (last: %s)" % (
            what, timeout, th.short(json.dumps(v), 200)))

    def close(self):
        if self.sid:
            try:
                self.call("DELETE", self.s(""), check=False, timeout=15)
            except (OSError, urllib.error.URLError):
                pass
            self.sid = None
        th.CHILDREN.reap(self.p)
        self.errf.close()


# --------------------------------------------------------------------------
# PNG (what Chromium writes: 8-bit RGB or RGBA, not interlaced)

def png_pixels(data):
    """(width, height, channels, rows): rows a list of bytes, channels 3 or 4."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise th.Fail("screenshot is not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise th.Fail("screenshot PNG: depth %d colour type %d interlace %d not handled" % (
            depth, ctype, interlace))
    ch = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * ch
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - ch] if x >= ch else 0
            b = prev[x]
            c = prev[x - ch] if x >= ch else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, ch, rows


def rgb(hexcolor):
    return tuple(int(hexcolor[i:i + 2], 16) for i in (1, 3, 5))


def count_colours(png, colours, tol=40):
    """{name: pixels within tol (each channel) of colours[name]}, and the width and height."""
    w, h, ch, rows = png_pixels(png)
    counts = dict((name, 0) for name in colours)
    want = [(name, c[0], c[1], c[2]) for name, c in colours.items()]
    for row in rows:
        for x in range(0, w * ch, ch):
            r, g, b = row[x], row[x + 1], row[x + 2]
            if r == g == b:
                continue      # grey: background, text, grid
            for name, r0, g0, b0 in want:
                if abs(r - r0) <= tol and abs(g - g0) <= tol and abs(b - b0) <= tol:
                    counts[name] += 1
    return counts, w, h


# --------------------------------------------------------------------------
# What the page must show: its formatting rules, as in web/app.js

def fmt_count(v):
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "–"
    s = "{:,}".format(int(round(abs(v))))
    return ("-" if v < 0 else "") + s


def fmt_bytes(v):
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "–"
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    a, i = abs(v), 0
    while a >= 1024 and i < len(units) - 1:
        a /= 1024.0
        i += 1
    # JavaScript's toFixed(1) rounds the exact binary value, a tie upwards (4.25 MiB, 17
    # arenas of 256 KiB, is "4.3"); Python's "%.1f" would round that tie to even.
    one = str(decimal.Decimal(a).quantize(decimal.Decimal("0.1"), decimal.ROUND_HALF_UP))
    return ("-" if v < 0 else "") + (str(int(round(a))) if i == 0 else one) + " " + units[i]


def fmt_age(s):
    if not isinstance(s, (int, float)):
        return "–"
    s = int(max(0, s) // 1)
    if s < 120:
        return "%d s" % s
    if s < 7200:
        return "%d min" % (s // 60)
    return "%d h %d min" % (s // 3600, (s % 3600) // 60)


def fmt_signed(v, fmt):
    if not isinstance(v, (int, float)):
        return "–"
    return ("+" if v > 0 else "-" if v < 0 else "") + fmt(abs(v))


def dig(d, path):
    for k in path.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def expected_cells(p):
    """{data-k: (value, text)} of the process table row of PROCESS p."""
    gens = dig(p, "gc.generations") or []
    counts = [g.get("count") for g in gens] if gens else None
    colls = [g.get("collections") for g in gens] if gens else None
    census = p.get("objects")
    age = None
    if census and isinstance(census.get("at"), (int, float)) and \
            isinstance(p.get("sampled_at"), (int, float)):
        age = max(0, p["sampled_at"] - census["at"])
    e = {}
    e["pid"] = (p["pid"], str(p["pid"]))
    e["name"] = (p.get("name"), p.get("name") if p.get("name") is not None else "–")
    ver = dig(p, "python.version")
    e["python.version"] = (ver, ver if ver is not None else "–")
    e["status"] = (p.get("status"), p.get("status"))
    for k in ("memory.rss_bytes", "memory.pss_bytes", "pymalloc.arena_bytes"):
        e[k] = (dig(p, k), fmt_bytes(dig(p, k)))
    e["pymalloc.allocated_blocks"] = (dig(p, "pymalloc.allocated_blocks"),
                                      fmt_count(dig(p, "pymalloc.allocated_blocks")))
    e["gc.count"] = (counts, " / ".join(fmt_count(v) for v in counts) if counts else "–")
    e["gc.collections"] = (colls, " / ".join(fmt_count(v) for v in colls) if colls else "–")
    e["objects.total"] = (census.get("total") if census else None,
                          fmt_count(census.get("total") if census else None))
    e["census_age_seconds"] = (age, fmt_age(age))
    return e


READ_ROWS = r"""
const out = {};
for (const tr of document.querySelectorAll('#procs tbody tr')) {
  const row = {sampled_at: JSON.parse(tr.getAttribute('data-sampled-at')), cells: {}};
  for (const td of tr.querySelectorAll('td[data-k]'))
    row.cells[td.getAttribute('data-k')] = {v: JSON.parse(td.getAttribute('data-v')), text: td.textContent};
  out[tr.getAttribute('data-pid')] = row;
}
return out;
"""

READ_TABLE = r"""
return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr')).map((tr) => {
  const row = {};
  for (const td of tr.querySelectorAll('td[data-k]'))
    row[td.getAttribute('data-k')] = {v: JSON.parse(td.getAttribute('data-v')), text: td.textContent};
  return row;
});
"""

REFRESH = r"""
const done = arguments[arguments.length - 1];
window.pymemdPage.refresh().then(() => done(true), (e) => done(String(e)));
"""

CHART = r"""
const u = window.pymemdPage.state.charts && window.pymemdPage.state.charts[arguments[0]];
if (!u) return null;
const el = document.getElementById(arguments[1]);
return {data: u.data, points: Number(el.getAttribute('data-points')),
        first: JSON.parse(el.getAttribute('data-first-t')), last: JSON.parse(el.getAttribute('data-last-t')),
        labels: u.series.map((s) => s.label), colors: u.series.map((s) => s.stroke && String(s.stroke))};
"""

SHOW_ONLY = r"""
const u = window.pymemdPage.state.charts[arguments[0]];
for (let i = 1; i < u.series.length; i++) u.setSeries(i, {show: arguments[1] === 0 || i === arguments[1]});
return true;
"""


# --------------------------------------------------------------------------
# The API, as the test reads it (with the same credentials and TLS as the browser)

class Api(object):
    def __init__(self, inst, tls=False, auth=None):
        self.inst = inst
        self.tls = tls
        self.auth = auth
        self.ctx = None
        if tls:
            self.ctx = ssl.create_default_context()
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE

    @property
    def base(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.inst.port)

    def page_url(self):
        if self.auth:
            return "%s://%s:%s@127.0.0.1:%d/" % ("https" if self.tls else "http", self.auth[0],
                                                 self.auth[1], self.inst.port)
        return self.base + "/"

    def get(self, path, headers=None, auth=True, timeout=60):
        """(status, {lower-case header: value}, body bytes)."""
        if self.tls:
            conn = http.client.HTTPSConnection("127.0.0.1", self.inst.port, timeout=timeout,
                                               context=self.ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.inst.port, timeout=timeout)
        h = dict(headers or {})
        if auth and self.auth:
            h["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % self.auth).encode()).decode()
        try:
            conn.request("GET", path, headers=h)
            r = conn.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            conn.close()

    def json(self, path):
        st, _, body = self.get(path)
        if st != 200:
            raise th.Fail("GET %s: %d %s" % (path, st, th.short(body, 200)))
        return json.loads(body.decode("utf-8"))

    def processes(self):
        return dict((p["pid"], p) for p in self.json("/api/v1/processes")["processes"])


# --------------------------------------------------------------------------
# The cases

class Ctx(object):
    pass


def synced_rows(wd, api, timeout=20.0):
    """The page's process table and the API's processes as they were when the page read them:
    the API is read, the page refreshed and read, the API read again, until both API reads show
    the same values in every cell (a sample lasts INTERVAL seconds, a census may come within it;
    a refresh takes a fraction of that): what the page fetched in between was that."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        a = api.processes()
        r = wd.js_async(REFRESH)
        if r is not True:
            raise th.Fail("the page's refresh failed: %s" % r)
        rows = wd.js(READ_ROWS)
        b = api.processes()
        if sorted(a) == sorted(b) and all(
                expected_cells(a[pid]) == expected_cells(b[pid]) and
                a[pid].get("sampled_at") == b[pid].get("sampled_at") for pid in a):
            return rows, b
        time.sleep(0.1)
    raise th.Fail("the API's processes changed during every refresh of the page for %.0f s" %
                  timeout)


def synced_doc(wd, api, path, key, script, what, timeout=20.0):
    """The API's document at path and what the page shows of it (script's value) for one and the
    same census: the API read, the page refreshed and read, the API read again, until the three
    agree on key ("at" of a census, "to" of a growth)."""
    end = time.monotonic() + timeout
    last = (None, None, None)
    while time.monotonic() < end:
        a = api.json(path)
        r = wd.js_async(REFRESH)
        if r is not True:
            raise th.Fail("the page's refresh failed: %s" % r)
        shown = wd.js(script)
        b = api.json(path)
        last = (a.get(key), shown, b.get(key))
        if last[0] is not None and last[0] == last[1] == last[2]:
            return b
        time.sleep(0.1)
    raise th.Fail("no moment within %.0f s when the page and %s showed the same %s (last: API %s, "
                  "page %s, API %s)" % (timeout, path, what, *last))


def t_table(c, ctx, wd, api, where):
    t = ctx.target
    rows, procs = synced_rows(wd, api)
    c.eq("%s: rows (pids)" % where, sorted(str(p) for p in procs), sorted(rows))
    for pid, p in procs.items():
        row = rows.get(str(pid), {}).get("cells", {})
        c.eq("%s pid %d sampled_at" % (where, pid), p.get("sampled_at"),
             (rows.get(str(pid)) or {}).get("sampled_at"))
        for k, (v, text) in expected_cells(p).items():
            got = row.get(k)
            if got is None:
                c.diffs.append("%s pid %d: no cell %s" % (where, pid, k))
                continue
            c.eq("%s pid %d %s (data-v)" % (where, pid, k), v, got["v"])
            c.eq("%s pid %d %s (text)" % (where, pid, k), text, got["text"])
    # The target's own word.
    row = rows[str(t.pid)]["cells"]
    tr = t.truth
    c.eq("%s python.version = the target's platform.python_version()" % where, tr["version"],
         row["python.version"]["v"])
    c.eq("%s collections = the target's gc.get_stats()" % where,
         [s["collections"] for s in tr["get_stats"]], row["gc.collections"]["v"])
    counts = row["gc.count"]["v"]
    c.eq("%s gc counts 1 and 2 = the target's gc.get_count()" % where,
         list(tr["get_count"][1:]), counts[1:] if isinstance(counts, list) else counts)
    if isinstance(counts, list):
        c.ok(abs(counts[0] - tr["get_count"][0]) <= th.GEN0_TOLERANCE,
             "%s gc count 0: %s, the target's %d (+-%d)" % (where, counts[0], tr["get_count"][0],
                                                           th.GEN0_TOLERANCE))
    blocks = row["pymalloc.allocated_blocks"]["v"]
    if tr.get("allocated_blocks") is not None:
        c.ok(isinstance(blocks, int) and 0 <= blocks - tr["allocated_blocks"] <= th.BLOCKS_SLACK,
             "%s allocated blocks: %s, the target's sys.getallocatedblocks() %d (+0..%d)" % (
                 where, blocks, tr["allocated_blocks"], th.BLOCKS_SLACK))
    c.note("pid %d: %s, %s blocks, collections %s" % (
        t.pid, row["memory.rss_bytes"]["text"], row["pymalloc.allocated_blocks"]["text"],
        row["gc.collections"]["text"]))


def t_refreshes(c, wd, where):
    """Two more refreshes by the page's own timer (every max(1, interval) = 1 s) in 10 s."""
    seen = set()
    end = time.monotonic() + 10
    while time.monotonic() < end and len(seen) < 3:
        seen.add(wd.js("return document.body.getAttribute('data-updated')"))
        time.sleep(0.25)
    c.ok(len(seen) >= 3, "%s: the page refreshed %d times in 10 s" % (where, len(seen) - 1))
    status = wd.js("return document.getElementById('status').textContent")
    c.ok(status.startswith("updated "), "%s: status line %s" % (where, th.shown(status)))


def select(wd, pid):
    wd.click('#procs tbody tr[data-pid="%d"]' % pid)
    wd.wait("return document.getElementById('detail').getAttribute('data-pid') === arguments[0] "
            "&& window.pymemdPage.state.pid === %d" % pid, "pid %d selected" % pid, 10.0, str(pid))


def t_charts(c, ctx, wd, api, where):
    pid = ctx.target.pid
    select(wd, pid)
    wd.wait("const e = document.getElementById('chart-mem'); "
            "return Number(e.getAttribute('data-points')) >= 3", "3 history samples charted", 30)
    wd.js_async(REFRESH)
    hist = api.json("/api/v1/processes/%d/history" % pid)
    samples = hist.get("samples") or []
    for key, elid, cols in (
            ("mem", "chart-mem", ["rss_bytes", "pss_bytes", "arena_bytes", "allocated_blocks"]),
            ("gc", "chart-gc", None)):
        ch = wd.js(CHART, key, elid)
        if ch is None:
            c.diffs.append("%s %s: no chart" % (where, elid))
            continue
        first, last = ch["first"], ch["last"]
        span = [s for s in samples if first is not None and first <= s["t"] <= last]
        c.eq("%s %s: data-points = the /history samples from its first to its last time" % (
            where, elid), len(span), ch["points"])
        c.eq("%s %s: points drawn = data-points" % (where, elid), ch["points"],
             len(ch["data"][0]))
        c.eq("%s %s: times" % (where, elid), [s["t"] for s in span], ch["data"][0])
        c.ok(samples and first == samples[0]["t"],
             "%s %s: starts at %s, /history at %s" % (where, elid, first,
                                                       samples[0]["t"] if samples else None))
        if cols:
            for i, k in enumerate(cols, 1):
                c.eq("%s %s: %s" % (where, elid, k), [s.get(k) for s in span], ch["data"][i])
        else:
            for g in range(3):
                want = [None]
                for a, b in zip(span, span[1:]):
                    ga, gb = a.get("gc_collections"), b.get("gc_collections")
                    want.append(None if not ga or not gb or ga[g] is None or gb[g] is None
                                else (gb[g] - ga[g]) / (b["t"] - a["t"]))
                got = ch["data"][g + 1]
                c.ok(len(got) == len(want) and all(
                    (x is None and y is None) or (x is not None and y is not None and
                                                  abs(x - y) < 1e-9)
                    for x, y in zip(want, got)),
                     "%s %s: gen %d collections/s: expected %s, got %s" % (
                         where, elid, g, th.short(json.dumps(want), 120),
                         th.short(json.dumps(got), 120)))
        ctx.chart_points = ch["points"]
    # Each series alone, in a screenshot of the chart's canvas: its colour is drawn along the
    # plot, no other series' colour is.
    colours = wd.js("return window.pymemdPage.COLORS")
    for key, elid, names in (("mem", "chart-mem", ["rss", "pss", "arena", "blocks"]),
                             ("gc", "chart-gc", ["gen0", "gen1", "gen2"])):
        for i, name in enumerate(names, 1):
            wd.js(SHOW_ONLY, key, i)
            png = wd.screenshot("#%s canvas" % elid)
            save(ctx, "%s-%s-%s.png" % (where.replace("+", "-"), elid, name), png)
            counts, w, _ = count_colours(png, dict((k, rgb(colours[k])) for k in names), tol=20)
            n = counts[name]
            c.ok(n >= w // 4, "%s %s: series %s alone: %d pixels of %s in a %d px wide canvas "
                              "(a line across it has more than %d)" % (
                                  where, elid, name, n, colours[name], w, w // 4))
            for other in names:
                if other != name:
                    c.ok(counts[other] < w // 20,
                         "%s %s: series %s alone, yet %d pixels of %s's colour" % (
                             where, elid, name, counts[other], other))
        wd.js(SHOW_ONLY, key, 0)
    c.note("%d points" % getattr(ctx, "chart_points", 0))


def t_census(c, ctx, wd, api, where):
    pid = ctx.target.pid
    select(wd, pid)
    read_at = "return JSON.parse(document.getElementById('census-note').getAttribute('data-at'))"
    wd.wait(read_at, "a census", 30)
    objs = synced_doc(wd, api, "/api/v1/processes/%d/objects?top=25" % pid, "at", read_at,
                      "census")
    rows = wd.js(READ_TABLE, "#types")
    c.eq("%s top types" % where, [(t["type"], t["count"], t["bytes"]) for t in objs["types"]],
         [(r["type"]["v"], r["count"]["v"], r["bytes"]["v"]) for r in rows])
    c.eq("%s top types (text)" % where,
         [(t["type"], fmt_count(t["count"]), fmt_bytes(t["bytes"])) for t in objs["types"]],
         [(r["type"]["text"], r["count"]["text"], r["bytes"]["text"]) for r in rows])
    node = [r for r in rows if r["type"]["v"] == "Node"]
    c.eq("%s Node count = the target's own census" % where, ctx.target.truth["census"]["Node"],
         node[0]["count"]["v"] if node else None)


def t_growth(c, ctx, wd, api, where):
    pid = ctx.leaky.pid
    select(wd, pid)
    read_to = ("return JSON.parse(document.getElementById('growth-note')"
               ".getAttribute('data-to') || 'null')")
    wd.wait(read_to, "the growth of the leaking target", 30)
    g = synced_doc(wd, api, "/api/v1/processes/%d/growth" % pid, "to", read_to, "growth")
    rows = wd.js(READ_TABLE, "#growth")
    want = g["types"][:15]
    c.eq("%s growth rows" % where, [(t["type"], t["count"], t["bytes"]) for t in want],
         [(r["type"]["v"], r["count"]["v"], r["bytes"]["v"]) for r in rows])
    c.eq("%s growth rows (text)" % where,
         [(t["type"], fmt_signed(t["count"], fmt_count), fmt_signed(t["bytes"], fmt_bytes))
          for t in want],
         [(r["type"]["text"], r["count"]["text"], r["bytes"]["text"]) for r in rows])
    leak = [t for t in g["types"] if t["type"] == "Leak"]
    c.ok(leak and leak[0]["count"] > 0, "%s: /growth shows no growth of Leak: %s" % (
        where, th.short(json.dumps(g["types"][:5]), 200)))
    shown = wd.js("return !document.getElementById('suspects-box').hidden")
    if "suspects" in g and g["suspects"] is None:
        # K + 1 censuses make the first list (suspect_censuses = 3: 4 censuses, 8 s here).
        end = time.monotonic() + 20
        while g["suspects"] is None and time.monotonic() < end:
            time.sleep(1)
            g = synced_doc(wd, api, "/api/v1/processes/%d/growth" % pid, "to", read_to, "growth")
        shown = wd.js("return !document.getElementById('suspects-box').hidden")
    if "suspects" in g:
        c.ok(shown, "%s: /growth has suspects, the page shows none" % where)
        c.ok(any(x.get("type") == "Leak" for x in g["suspects"] or []),
             "%s: Leak, which the target adds to at every census, is no suspect in /growth: %s" % (
                 where, th.short(json.dumps(g["suspects"]), 200)))
        srows = wd.js(READ_TABLE, "#suspects")
        sus = g["suspects"] or []
        c.eq("%s suspects" % where, [x.get("type") for x in sus],
             [r.get("type", {}).get("v") for r in srows])
        for x, r in zip(sus, srows):
            for k in ("counts", "increase", "bytes_increase", "per_second"):
                c.eq("%s suspect %s %s" % (where, x.get("type"), k), x.get(k),
                     (r.get(k) or {}).get("v"))
            c.eq("%s suspect %s counts (text)" % (where, x.get("type")),
                 " → ".join(fmt_count(v) for v in x["counts"]), (r.get("counts") or {}).get("text"))
        if g["suspects"] is None:
            err = wd.js("return document.getElementById('suspects-note').getAttribute('data-error')")
            c.eq("%s suspects_error shown" % where, g.get("suspects_error"), err)
            c.note("no suspects yet: %s" % g.get("suspects_error"))
        else:
            c.note("%d suspects (%s)" % (len(sus), ", ".join(x.get("type") for x in sus)))
    else:
        c.ok(not shown, "%s: the page shows suspects /growth does not have" % where)
        c.note("no suspects key in /growth (before the history work)")


def t_referrers(c, ctx, wd, api, where):
    pid = ctx.target.pid
    select(wd, pid)
    wd.wait("return document.querySelector('#types tbody tr[data-type=\"Node\"] button')",
            "the Node row", 30)
    wd.click('#types tbody tr[data-type="Node"] button')
    state = wd.wait("const b = document.getElementById('referrers'); const s = b.getAttribute('data-state'); "
                    "return s === 'shown' || s === 'error' ? s : null", "referrers of Node", 90)
    if state != "shown":
        raise th.Fail("%s: the page shows an error: %s" % (
            where, wd.js("return document.getElementById('referrers-msg').textContent")))
    d = api.json("/api/v1/processes/%d/referrers?type=Node" % pid)
    at = wd.js("return JSON.parse(document.getElementById('referrers').getAttribute('data-at'))")
    c.eq("%s referrers at (the kept answer /referrers serves)" % where, d["at"], at)
    c.eq("%s referrers count = the target's own census" % where,
         ctx.target.truth["census"]["Node"], d["count"])
    direct = wd.js(READ_TABLE, "#referrers-direct")
    c.eq("%s direct referrers" % where, [(r["type"], r["objects"], r["refs"]) for r in d["referrers"]],
         [(r["type"]["v"], r["objects"]["v"], r["refs"]["v"]) for r in direct])
    roots = wd.js(READ_TABLE, "#referrers-roots")
    c.eq("%s roots" % where, [(r["root"], r["kind"], r["holds"], r["chain"]) for r in d["roots"]],
         [(r["root"]["v"], r["kind"]["v"], r["holds"]["v"], r["chain"]["v"]) for r in roots])
    msg = wd.js("return document.getElementById('referrers-msg').textContent")
    c.ok(fmt_count(d["count"]) + " instances of Node" in msg,
         "%s: message %s does not give the count %s" % (where, th.shown(msg), d["count"]))
    c.note("%d referrer types, %d roots" % (len(d["referrers"]), len(d["roots"])))
    ctx.referrers_at = d["at"]


def t_429(c, ctx, wd, api, where):
    """A recompute for a type with no kept answer, inside census_min_interval (10 s) of the
    referrers just computed: pymemd answers 429 and the page says when to try again."""
    age = time.time() - ctx.referrers_at
    if age > 7:
        raise th.Skip("the referrers were computed %.1f s ago: too close to the 10 s "
                      "census_min_interval to expect a 429" % age)
    wd.js("document.getElementById('referrers-type').value = 'Row'")
    wd.click("#referrers-fresh")
    st = wd.wait("const b = document.getElementById('referrers'); "
                 "return b.getAttribute('data-state') === 'error' ? b.getAttribute('data-status') : null",
                 "the answer to a recompute of Row", 30)
    msg = wd.js("return document.getElementById('referrers-msg').textContent")
    c.eq("%s status of the recompute" % where, "429", st)
    m = re.search(r"try again in (\d+) s", msg)
    c.ok(m and 1 <= int(m.group(1)) <= 10,
         "%s: message %s: expected the Retry-After seconds (1-10)" % (
             where, th.shown(msg)))


def t_headers(c, ctx, api, where):
    st, h, body = api.get("/")
    c.eq("%s GET /: status" % where, 200, st)
    c.eq("%s GET /: Content-Type" % where, "text/html; charset=utf-8", h.get("content-type"))
    csp = h.get("content-security-policy") or ""
    c.ok("default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp,
         "%s GET /: Content-Security-Policy %s" % (where, th.shown(csp)))
    c.ok(b"<script>" not in body and not re.search(rb"<script(?![^>]*\bsrc=)", body),
         "%s GET /: inline script in the page" % where)
    etag = h.get("etag")
    c.ok(etag and etag.startswith('"'), "%s GET /: ETag %s" % (where, th.shown(etag)))
    st2, h2, body2 = api.get("/", {"If-None-Match": etag or '"x"'})
    c.eq("%s GET / If-None-Match: status" % where, 304, st2)
    c.eq("%s GET / If-None-Match: body" % where, b"", body2)
    for path, ct in (("/static/app.js", "text/javascript; charset=utf-8"),
                     ("/static/app.css", "text/css; charset=utf-8"),
                     ("/static/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
                     ("/static/uPlot.min.css", "text/css; charset=utf-8")):
        st, h, plain = api.get(path)
        c.eq("%s GET %s: status" % (where, path), 200, st)
        c.eq("%s GET %s: Content-Type" % (where, path), ct, h.get("content-type"))
        st, h, gz = api.get(path, {"Accept-Encoding": "gzip"})
        c.eq("%s GET %s gzip: Content-Encoding" % (where, path), "gzip", h.get("content-encoding"))
        c.ok(gzip.decompress(gz) == plain if h.get("content-encoding") == "gzip" else False,
             "%s GET %s: gzip body is not the plain one" % (where, path))
    if api.auth:
        st, h, _ = api.get("/", auth=False)
        c.eq("%s GET / without credentials: status" % where, 401, st)
        st, h, _ = api.get("/static/app.js", auth=False)
        c.eq("%s GET /static/app.js without credentials: status" % where, 401, st)


def t_screenshot(c, ctx, wd, api, where, name):
    select(wd, ctx.target.pid)
    wd.js_async(REFRESH)
    png = wd.screenshot()
    path = save(ctx, name, png)
    w, h, _, _ = png_pixels(png)
    c.ok(w >= 800 and h >= 600, "%s: screenshot %dx%d" % (where, w, h))
    # The charts as the page shows them, all series at once.
    colours = wd.js("return window.pymemdPage.COLORS")
    charts = wd.screenshot(".charts")
    save(ctx, name.replace(".png", "-charts.png"), charts)
    counts, _, _ = count_colours(charts, dict((k, rgb(colours[k])) for k in
                                              ("rss", "arena", "blocks")), tol=20)
    for name_, n in sorted(counts.items()):
        c.ok(n >= 100, "%s: %d pixels of %s (%s) in the charts" % (
            where, n, name_, colours[name_]))
    tess = shutil.which("tesseract")
    if not tess:
        c.note("%s saved; no OCR (tesseract-ocr not installed)" % path)
        return
    # Paused (phase() paused the page): the table shows the rows read here.
    rows = wd.js(READ_ROWS)
    row = rows[str(ctx.target.pid)]["cells"]
    table = wd.screenshot("#procs")
    tpath = save(ctx, name.replace(".png", "-table.png"), table)
    r = subprocess.run([tess, tpath, "stdout", "--psm", "6"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    text = r.stdout.decode("utf-8", "replace")
    flat = re.sub(r"\s+", "", text)
    for k in ("pid", "pymalloc.allocated_blocks", "objects.total", "memory.rss_bytes"):
        if row[k]["v"] is None:
            c.diffs.append("%s: %s is null in the API: nothing to read" % (where, k))
            continue
        want = re.sub(r"\s+", "", row[k]["text"])
        c.ok(want in flat, "%s: OCR of the table does not show %s %s (read: %s)" % (
            where, k, th.shown(row[k]["text"]), th.short(text, 300)))
    c.note("%s; OCR found the pid, allocated blocks, objects and RSS" % path)


def save(ctx, name, data):
    path = os.path.join(ctx.out_dir, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def no_console_errors(c, wd, where):
    errs = [e for e in wd.log() if e.get("level") == "SEVERE"]
    # A 429 the page asked for on purpose is logged by Chromium as a failed load.
    errs = [e for e in errs if "429" not in e.get("message", "")]
    c.ok(not errs, "%s: browser console errors: %s" % (where, th.short(json.dumps(errs), 400)))


# --------------------------------------------------------------------------
# Setup

def make_tls(d):
    """A self-signed certificate for 127.0.0.1, a user with a random password and its bcrypt
    hash; the web config's path and the (user, password)."""
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out",
                        "server.crt", "-days", "2", "-subj", "/CN=pymemd page test",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise th.Fail("openssl: %s" % th.short(r.stderr, 300))
    pw = base64.b32encode(os.urandom(10)).decode().lower()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt
    h = crypt.crypt(pw, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
    if not h or not h.startswith("$2"):
        raise th.Fail("crypt.crypt gave no bcrypt hash: %r" % h)
    path = os.path.join(d, "web.yml")
    with open(path, "w") as f:
        f.write("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                "basic_auth_users:\n  oncall: '%s'\n" % h)
    return path, ("oncall", pw)


def phase(ctx, where, args, tls=False, auth=None, shot="page.png"):
    # A busy machine can exceed the default pause budget of a scheduled census (50 ms), after
    # which the schedule skips the process for 9 intervals: this test is not about pauses. PSS
    # is read every 3 s, so that the history has PSS at some samples and null at others.
    inst = th.Pymemd(ctx.exe, ["--match", ctx.regex, "--interval", str(INTERVAL),
                               "--census-interval", str(CENSUS_INTERVAL)] + args,
                     "pymemd (%s)" % where, conf="max_census_pause = 1\npss_interval = 3\n")
    api = Api(inst, tls, auth)
    wd = None
    try:
        inst.start(wait=not tls)
        if tls:
            end = time.monotonic() + 15
            while True:
                inst.need()
                try:
                    if api.get("/healthz")[0] == 200:
                        break
                except (OSError, http.client.HTTPException):
                    pass
                if time.monotonic() > end:
                    raise th.Fail("%s: no HTTPS answer within 15 s: %s" % (
                        inst.name, th.short(inst.stderr(), 300)))
                time.sleep(0.1)
        end = time.monotonic() + th.DISCOVERY_WAIT
        while True:
            procs = api.processes()
            if all((procs.get(t.pid) or {}).get("status") == "ok" for t in ctx.targets):
                break
            if time.monotonic() > end:
                raise th.Fail("%s: targets not sampled ok: %s" % (
                    where, th.short(json.dumps(procs), 300)))
            time.sleep(0.2)

        th.case("%s: headers of / and its files" % where, t_headers, ctx, api, where)
        try:
            wd = WebDriver(ctx.driver, ctx.chromium, ctx.tmp)
        except NoBrowser as e:
            th.RESULTS.out("SKIP", "%s: the page in Chromium" % where, str(e))
            return
        wd.go(api.page_url())
        try:
            wd.wait("return document.querySelectorAll('#procs tbody tr').length >= 2",
                    "the two targets", 30)
        except th.Fail as e:
            th.RESULTS.out("FAIL", "%s: page loads" % where, "%s; page text: %s" % (
                e, th.short(wd.js("return document.body.innerText") or "", 300)))
            return
        th.case("%s: the page refreshes itself" % where, t_refreshes, wd, where)
        # From here on the page refreshes only when the test asks it to (its pause button):
        # what it shows stays put while it is compared and photographed.
        wd.click("#pause")
        wd.wait("return window.pymemdPage.state.paused", "paused", 5)
        th.case("%s: process table = the API's sample and the target's own values" % where,
                t_table, ctx, wd, api, where)
        th.case("%s: charts = /history, each series drawn" % where, t_charts, ctx, wd, api, where)
        th.case("%s: top types = /objects" % where, t_census, ctx, wd, api, where)
        th.case("%s: growth (and suspects) of the leaking target = /growth" % where, t_growth,
                ctx, wd, api, where)
        if th.case("%s: referrers of Node, clicked = /referrers" % where, t_referrers, ctx, wd,
                   api, where):
            th.case("%s: recompute inside census_min_interval -> 429 message" % where, t_429,
                    ctx, wd, api, where)
        th.case("%s: screenshot shows the values" % where, t_screenshot, ctx, wd, api, where,
                shot)
        th.case("%s: no errors in the browser console" % where, no_console_errors, wd, where)
    finally:
        if wd is not None:
            wd.close()
        inst.shutdown()


def body(ctx):
    ctx.driver = shutil.which("chromedriver")
    ctx.chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not ctx.driver or not ctx.chromium:
        th.RESULTS.out("SKIP", "the page in Chromium", "%s is not installed (chromium and "
                       "chromium-driver: scripts/deps.sh)" % (
                           "chromedriver" if not ctx.driver else "chromium"))
        return
    label, py = th.pyenv_python(12)
    if not py:
        label, py = th.pyenv_python()
    if not py:
        th.RESULTS.out("SKIP", "the page in Chromium", "no pyenv CPython in %s" % th.pyenv_root())
        return
    ctx.tmp = tempfile.mkdtemp(prefix="pymemd-page-")
    try:
        tag, ctx.regex = th.make_tag("pymemdpage")
        ctx.target = th.Target(label, th.target_argv([py], tag + "-a"), tag)
        leaky = os.path.join(ctx.tmp, "leaky.py")
        with open(leaky, "w") as f:
            f.write(LEAKY)
        ctx.leaky = th.Target(label + " (leaking)", [py, leaky, "--tag", tag + "-b"], tag)
        ctx.targets = [ctx.target, ctx.leaky]
        th.say("targets: %s pid %d, leaking pid %d; screenshots in %s" % (
            label, ctx.target.pid, ctx.leaky.pid, ctx.out_dir))
        for where in ("http", "https+auth"):
            try:
                if where == "http":
                    phase(ctx, where, [])
                else:
                    web, auth = make_tls(ctx.tmp)
                    phase(ctx, where, ["--web.config.file", web], tls=True, auth=auth,
                          shot="page-tls.png")
            except (th.Fail, OSError, urllib.error.URLError, http.client.HTTPException,
                    ValueError, KeyError) as e:
                th.RESULTS.out("FAIL", "%s: setup" % where, "%s: %s" % (type(e).__name__, e))
        th.case("targets never left stopped", lambda c: [
            c.ok(th.proc_state(t.pid) not in ("T", "t"), "pid %d is stopped" % t.pid)
            for t in ctx.targets])
    finally:
        for t in getattr(ctx, "targets", []):
            t.close()
        shutil.rmtree(ctx.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pymemd", required=True)
    ap.add_argument("--out-dir", default=None, help="where the screenshots go")
    opts = ap.parse_args()
    exe = os.path.abspath(opts.pymemd)
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        sys.stderr.write("test_page.py: %s is not an executable file\n" % exe)
        return 2
    ctx = Ctx()
    ctx.exe = exe
    ctx.out_dir = os.path.abspath(opts.out_dir or os.path.join(os.path.dirname(exe),
                                                               "page-screenshots"))
    os.makedirs(ctx.out_dir, exist_ok=True)
    return th.run_driver("the page at / in Chromium: %s" % exe, body, ctx)


if __name__ == "__main__":
    sys.exit(main())
