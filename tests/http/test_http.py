#!/usr/bin/python3
"""HTTP contract tests for the pymemd daemon (DESIGN.md sections 3, 4 and 5).

    /usr/bin/python3 test_http.py --pymemd build/pymemd

Starts real CPython targets (tests/integration/target.py: each prints its own
ground truth as one JSON line and then sits still), starts `pymemd --listen
127.0.0.1:PORT --match RE --interval 0.2` on a free loopback port, waits until
the targets are sampled, and checks every endpoint, format and error of the
contract against what the targets say about themselves:

  * content negotiation of GET /metrics: the exact Accept headers Prometheus
    v2.20, v2.45 (= 2.42), v2.49-v2.55 and v3.x send (each must get OpenMetrics
    1.0.0), text/plain (text 0.0.4), */*, none and browsers (JSON), q weights,
    ?format= overrides, the exact Content-Type every time, gzip and Vary;
  * both text formats checked line by line here and by `promtool check
    metrics` (errors fail; lint warnings are printed, not failed);
  * values equal the targets' own gc.get_threshold()/get_stats()/get_count()...;
  * /api/v1/processes[/{pid}[/objects|/growth]], /healthz, /, JSON errors
    with the right status (404, 405 + Allow, 400), odd requests never 5xx;
  * target lifecycle: a new target is picked up, an exited (or zombie) target
    is never "ok" again, identity fields are stable, a process that exec()s
    another interpreter in place and a real PID reuse (forced through
    /proc/sys/kernel/ns_last_pid when writable) are never mixed up;
  * odd process names (quotes, backslash, ')' and a UTF-8 sequence cut by the
    kernel's 15-byte comm limit) and a command line that is not UTF-8;
  * port already in use, SIGHUP (with and without --config), SIGTERM/SIGINT
    (exit 0 within 2 s, also with idle and half-sent connections open).

Standard library only (Python 3.9+).  Prints one PASS/FAIL/SKIP line per
check and ends with exactly `N passed, M failed, K skipped`.  Exit status 0
iff nothing failed.  Every process it starts runs in its own session and is
killed (SIGCONT, then SIGKILL to its group) on every path.
"""

import argparse
import gzip
import http.client
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TARGET = os.path.join(ROOT, "tests", "integration", "target.py")
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from pymemdtest import (CHILDREN, captured, clean_env, free_port, pyenv_python,  # noqa: E402
                        pyenv_root, read_line, short, version_key)

CT_JSON = "application/json"
CT_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CT_OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"
CT_OF = {"json": CT_JSON, "text": CT_TEXT, "om": CT_OM}
FMT_NAME = {"json": "JSON", "text": "Prometheus text 0.0.4", "om": "OpenMetrics 1.0.0"}

INTERVAL = 0.2          # --interval given to pymemd
DISCOVERY_WAIT = 15.0   # discovery_interval defaults to 5 s: be generous
TARGET_TIMEOUT = 30.0   # seconds for a target to print its ground truth
STOP_LIMIT = 2.0        # SIGTERM/SIGINT -> exit 0 within this many seconds
GEN0_TOLERANCE = 20     # the target allocates a little after printing
BLOCKS_SLACK = 50

# What Prometheus sends when it scrapes (ecosystem.md section 3.2; the v3
# strings are those of prometheus scrape/scrape_test.go TestAcceptHeader).
PROM_ACCEPT = [
    ("Prometheus v2.20",
     "application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
    ("Prometheus v2.45 (and the installed 2.42)",
     "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
     "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
    ("Prometheus v2.49-v2.55 (scrape_protocols)",
     "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
     "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
    ("Prometheus v3.x",
     "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
     "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
     "escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
    ("Prometheus v3.x, underscore escaping",
     "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,"
     "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
     "escaping=underscores;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
    ("Prometheus v3.x, protobuf first (native histograms)",
     "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
     "encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;"
     "escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
     "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;"
     "q=0.2,*/*;q=0.1"),
]

# (label, Accept or None, expected format)
OTHER_ACCEPT = [
    ("text/plain;version=0.0.4", "text/plain;version=0.0.4", "text"),
    ("text/plain (no version)", "text/plain", "text"),
    ("no Accept header", None, "json"),
    ("*/* (curl)", "*/*", "json"),
    ("application/json", "application/json", "json"),
    ("a browser's Accept",
     "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
     "json"),
    ("q: text 0.9 over OpenMetrics 0.5",
     "text/plain;q=0.9,application/openmetrics-text;q=0.5", "text"),
    ("q: OpenMetrics q=0 is not acceptable",
     "application/openmetrics-text;version=1.0.0;q=0,text/plain;version=0.0.4", "text"),
    ("q: tie text/OpenMetrics -> OpenMetrics",
     "text/plain,application/openmetrics-text", "om"),
    ("q: tie all three at 0.5 -> OpenMetrics",
     "application/json;q=0.5,text/plain;q=0.5,application/openmetrics-text;q=0.5", "om"),
    ("q: tie text/JSON -> text", "application/json;q=0.7,text/plain;version=0.0.4;q=0.7", "text"),
    ("q: JSON 1 over text 0.5", "application/json,text/plain;q=0.5", "json"),
    ("q: JSON 0.9 over OpenMetrics 0.3",
     "application/openmetrics-text;version=1.0.0;q=0.3,application/json;q=0.9", "json"),
    ("whitespace around ';' ',' and q",
     "application/openmetrics-text ; version=1.0.0 ; q=0.8 ,  text/plain ; q=0.9", "text"),
    ("media type in other case",
     "Application/OpenMetrics-Text;version=1.0.0", "om"),
    ("OpenMetrics version=2.0.0 is not acceptable",
     "application/openmetrics-text;version=2.0.0,text/plain;version=0.0.4;q=0.1", "text"),
    ("garbage Accept -> JSON", "this is not a media range", "json"),
    ("empty-ish Accept -> JSON", " ;;, ,", "json"),
]


# --------------------------------------------------------------------------
# Output

class Results(object):
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.lock = threading.Lock()
        self.failures = []

    def out(self, kind, name, text):
        with self.lock:
            if kind == "PASS":
                self.passed += 1
            elif kind == "FAIL":
                self.failed += 1
                self.failures.append(name)
            else:
                self.skipped += 1
            line = "%s %s" % (kind, name)
            if text:
                line += (": " if kind != "PASS" else " ") + text
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


RESULTS = Results()


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class Fail(Exception):
    pass


class Skip(Exception):
    pass


class Check(object):
    """Collects differences; a case passes when it collected none."""

    def __init__(self):
        self.diffs = []
        self.notes = []

    def eq(self, what, expected, got):
        if type(expected) is not type(got) and not (
                isinstance(expected, (int, float)) and isinstance(got, (int, float))
                and not isinstance(expected, bool) and not isinstance(got, bool)):
            self.diffs.append("%s: expected %s, got %s" % (what, shown(expected), shown(got)))
        elif expected != got:
            self.diffs.append("%s: expected %s, got %s" % (what, shown(expected), shown(got)))
        return expected == got

    def ok(self, cond, text):
        if not cond:
            self.diffs.append(text)
        return bool(cond)

    def note(self, text):
        self.notes.append(text)


def shown(v):
    if isinstance(v, (bytes, str)):
        return json.dumps(short(v, 200) if isinstance(v, bytes) else v)[:260]
    try:
        return short(json.dumps(v), 200)
    except (TypeError, ValueError):
        return short(repr(v), 200)


def case(name, fn, *args):
    c = Check()
    try:
        ctx = args[0] if args and isinstance(args[0], Ctx) else None
        if ctx is not None and getattr(ctx, "denied", None) and \
                getattr(fn, "needs_read", False):
            raise Skip("pymemd may not read the targets: %s" % short(ctx.denied, 120))
        fn(c, *args)
    except Skip as e:
        RESULTS.out("SKIP", name, str(e))
        return None
    except Fail as e:
        c.diffs.append(str(e))
    except KeyboardInterrupt:
        raise
    except Exception as e:
        tb = traceback.extract_tb(sys.exc_info()[2])
        where = "%s:%d" % (os.path.basename(tb[-1].filename), tb[-1].lineno) if tb else "?"
        c.diffs.append("%s: %s (at %s)" % (type(e).__name__, e, where))
    if c.diffs:
        RESULTS.out("FAIL", name, "; ".join(c.diffs))
        return False
    RESULTS.out("PASS", name, "(%s)" % "; ".join(c.notes) if c.notes else "")
    return True


# --------------------------------------------------------------------------
# Interpreters and targets

def debian_python():
    """(label, argv) of the newest usable Debian interpreter of the manifest
    written by tests/integration/debian-pythons.sh, or (None, reason)."""
    cache = os.environ.get("PYMEMD_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "pymemd")
    manifest = os.path.join(cache, "debian", "interpreters.tsv")
    if not os.path.exists(manifest):
        return None, "manifest %s is missing" % manifest
    best = None
    with open(manifest, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3 or line.lstrip().startswith("#") or fields[1] == "skip":
                continue
            label, version, rest = fields[0], fields[1], "\t".join(fields[2:])
            cmd = [rest] if os.path.exists(rest) else shlex.split(rest)
            if not cmd or not os.path.exists(cmd[0]):
                continue
            if not label.startswith("debian"):
                label = "debian-" + label
            if best is None or version_key(version) > version_key(best[2]):
                best = (label, cmd, version)
    if best is None:
        return None, "manifest %s lists no usable interpreter" % manifest
    return best[0], best[1]


class Target(object):
    """A running target.py (possibly through a wrapper) with its ground truth."""

    def __init__(self, label, argv, tag, pass_fds=(), env=None):
        self.label = label
        self.tag = tag
        self.errf = tempfile.TemporaryFile()
        self.p = CHILDREN.spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=self.errf, env=env or clean_env(), cwd="/",
                                pass_fds=pass_fds)
        self.truth = None
        self.pid = None
        try:
            self.truth = self.next_truth()
            self.pid = int(self.truth["pid"])
        except BaseException:
            self.close()
            raise

    def next_truth(self):
        try:
            line = read_line(self.p, TARGET_TIMEOUT)
        except RuntimeError as e:
            raise RuntimeError("%s %s; stderr: %s" % (self.label, e, short(self.stderr(), 400)))
        try:
            return json.loads(line)
        except ValueError:
            raise RuntimeError("%s printed no JSON: %s" % (self.label, short(line)))

    def stderr(self):
        return captured(self.errf)

    def alive(self):
        return self.p.poll() is None

    def close(self):
        CHILDREN.reap(self.p)
        try:
            self.errf.close()
        except OSError:
            pass


def target_argv(cmd, tag, extra=()):
    return list(cmd) + [TARGET, "--tag", tag] + list(extra)


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
        return chr(data[data.rindex(b")") + 2])
    except (OSError, ValueError, IndexError):
        return None


def proc_start_time(pid):
    """Wall-clock start time of pid from /proc (btime + starttime / CLK_TCK)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
        fields = data[data.rindex(b")") + 2:].split()
        start_ticks = int(fields[19])
        with open("/proc/stat") as f:
            btime = int(next(l for l in f if l.startswith("btime")).split()[1])
        return btime + start_ticks / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid, "rb") as f:
            return f.read().rstrip(b"\n")
    except OSError:
        return None


# --------------------------------------------------------------------------
# HTTP

class Resp(object):
    def __init__(self, status, reason, headers, body, version=11):
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value)
        self.raw = body                 # as received (maybe gzip)
        self.version = version

    def h(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(vals) if vals else None

    @property
    def body(self):
        if (self.h("Content-Encoding") or "").strip().lower() == "gzip":
            return gzip.decompress(self.raw)
        return self.raw

    def text(self):
        return self.body.decode("utf-8")      # strict: must be UTF-8

    def json(self, strict=True):
        if strict:
            return json.loads(self.text())
        return json.loads(self.body.decode("utf-8", "replace"))

    def describe(self):
        return "%d %s, Content-Type %s, body %s" % (
            self.status, self.reason, shown(self.h("Content-Type")), shown(short(self.raw, 160)))


def request(port, method, path, headers=None, body=None, timeout=10.0, conn=None):
    """One request; headers is a list of (name, value) or a dict. No
    Accept-Encoding and no Accept unless given. Returns a Resp."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        for k, v in items:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, r.reason, r.getheaders(), data, r.version)
    finally:
        if own:
            conn.close()


def raw_request(port, data, timeout=5.0):
    """Send raw bytes, read until the server closes or timeout; returns the
    (status or None, raw bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            m = re.match(rb"HTTP/1\.[01] \d{3}[^\r\n]*\r\n(.*?)\r\n\r\n", buf, re.S)
            if m:
                cl = re.search(rb"(?im)^content-length:\s*(\d+)", m.group(1))
                if cl and len(buf) >= m.end() + int(cl.group(1)):
                    break
        m = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
        return (int(m.group(1)) if m else None), buf
    finally:
        s.close()


def port_free(port):
    """True if a server could bind the port now (SO_REUSEADDR, as servers
    do: connections in TIME_WAIT do not count)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# --------------------------------------------------------------------------
# pymemd instances

NOT_AVAILABLE = "not available in this build"


class NotAvailable(Exception):
    pass


class Pymemd(object):
    def __init__(self, exe, args, name):
        self.exe = exe
        self.name = name
        self.port = None
        self.p = None
        self.errf = tempfile.TemporaryFile()
        self.args = args
        self.started_at = None

    def start(self, port=None, ready_timeout=10.0):
        """Start on a free port (retried if the port was taken meanwhile)."""
        for attempt in range(5):
            self.port = port or free_port()
            argv = [self.exe, "--listen", "127.0.0.1:%d" % self.port] + list(self.args)
            self.errf.seek(0)
            self.errf.truncate()
            self.started_at = time.time()
            self.p = CHILDREN.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=self.errf)
            self.argv = argv
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline:
                if self.p.poll() is not None:
                    err = self.stderr()
                    if NOT_AVAILABLE in err:
                        raise NotAvailable(short(err, 300))
                    if port is None and re.search(r"in use|taken|EADDRINUSE", err, re.I) \
                            and attempt < 4:
                        break      # someone took the port meanwhile: another one
                    raise Fail("%s exited with status %s before serving: %s" % (
                        self.name, self.p.returncode, short(err, 400) or "(no stderr)"))
                try:
                    r = request(self.port, "GET", "/healthz", timeout=2)
                    if r.status == 200:
                        return self
                except (OSError, http.client.HTTPException):
                    pass
                time.sleep(0.05)
            else:
                raise Fail("%s did not answer GET /healthz with 200 within %.0f s (stderr: %s)"
                           % (self.name, ready_timeout, short(self.stderr(), 300)))
        raise Fail("%s: could not find a free port" % self.name)

    def stderr(self):
        return captured(self.errf)

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def need(self):
        if not self.alive():
            raise Fail("%s is not running (exit status %s; stderr: %s)" % (
                self.name, None if self.p is None else self.p.returncode,
                short(self.stderr()[-600:], 600) or "(empty)"))

    def get(self, path, headers=None, **kw):
        self.need()
        try:
            return request(self.port, "GET", path, headers, **kw)
        except (OSError, http.client.HTTPException) as e:
            raise Fail("GET %s: %s: %s%s" % (path, type(e).__name__, e,
                                            "" if self.alive() else
                                            "; pymemd died: exit %s, stderr: %s" % (
                                                self.p.returncode,
                                                short(self.stderr()[-400:], 400))))

    def req(self, method, path, headers=None, body=None, **kw):
        self.need()
        try:
            return request(self.port, method, path, headers, body=body, **kw)
        except (OSError, http.client.HTTPException) as e:
            raise Fail("%s %s: %s: %s" % (method, path, type(e).__name__, e))

    def doc(self):
        r = self.get("/metrics?format=json")
        if r.status != 200:
            raise Fail("GET /metrics?format=json: %s" % r.describe())
        return r.json(strict=False)

    def processes(self):
        r = self.get("/api/v1/processes")
        if r.status != 200:
            raise Fail("GET /api/v1/processes: %s" % r.describe())
        d = r.json(strict=False)     # strict UTF-8 is checked by the cases themselves
        if not isinstance(d, dict) or not isinstance(d.get("processes"), list):
            raise Fail("GET /api/v1/processes: no \"processes\" list: %s" % short(r.raw, 200))
        return d["processes"]

    def stop(self, sig=signal.SIGTERM, limit=STOP_LIMIT):
        """Send sig; return (exit status or None, seconds). Kills it if it
        did not exit within 10 s."""
        if self.p is None:
            return None, 0.0
        t0 = time.monotonic()
        try:
            self.p.send_signal(sig)
        except OSError:
            pass
        try:
            self.p.wait(timeout=max(limit, 10.0))
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - t0
        rc = self.p.returncode
        CHILDREN.reap(self.p)
        return rc, took

    def close(self):
        if self.p is not None:
            CHILDREN.reap(self.p)
        try:
            self.errf.close()
        except OSError:
            pass


def wait_sampled(inst, pids, timeout=DISCOVERY_WAIT, want_ok=True):
    """Poll /api/v1/processes until every pid is there with status ok (or
    any status when not want_ok). Returns {pid: PROCESS} of the last poll."""
    deadline = time.monotonic() + timeout
    last = {}
    while True:
        try:
            last = dict((p.get("pid"), p) for p in inst.processes() if isinstance(p, dict))
        except Fail as e:
            # 503 "the first sample is not taken yet" right after the start is fine.
            if "503" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        if all(pid in last and (not want_ok or last[pid].get("status") == "ok")
               for pid in pids):
            return last
        if time.monotonic() > deadline:
            return last
        time.sleep(0.1)


# --------------------------------------------------------------------------
# Exposition parsing (text 0.0.4 and OpenMetrics 1.0.0)

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
OM_TYPES = ("counter", "gauge", "histogram", "gaugehistogram", "stateset", "info",
            "summary", "unknown")
TEXT_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
TARGET_METRIC = re.compile(r"^(python_|pymemd_target_up$|pymemd_sample_duration_seconds$|"
                           r"pymemd_census_pause_seconds$)")


class Sample(object):
    __slots__ = ("name", "labels", "value", "ts", "lineno", "family")

    def __init__(self, name, labels, value, ts, lineno):
        self.name, self.labels, self.value, self.ts, self.lineno = name, labels, value, ts, lineno
        self.family = None


class Expo(object):
    def __init__(self, text, om):
        self.om = om
        self.problems = []
        self.families = {}     # name -> {"type", "help", "unit"}
        self.samples = []
        self.parse(text)

    def bad(self, lineno, text):
        if len(self.problems) < 20:
            self.problems.append("line %d: %s" % (lineno, text))

    def parse(self, text):
        if not text.endswith("\n"):
            self.bad(0, "exposition does not end with a newline")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        fam_order = []         # family names in order of first appearance
        current = None
        closed = set()
        series = set()
        eof_at = None
        for i, line in enumerate(lines, 1):
            if eof_at is not None:
                self.bad(i, "content after # EOF: %s" % shown(line))
                break
            if line == "":
                if self.om:
                    self.bad(i, "empty line (OpenMetrics has none)")
                continue
            if line.startswith("#"):
                if self.om and line == "# EOF":
                    eof_at = i
                    continue
                m = re.match(r"^# (HELP|TYPE|UNIT) (\S+)(?: (.*))?$", line)
                if not m:
                    if self.om:
                        self.bad(i, "a '#' line that is not HELP/TYPE/UNIT/EOF: %s" % shown(line))
                    elif line.strip() == "# EOF":
                        self.bad(i, "'# EOF' in text 0.0.4 (an OpenMetrics marker)")
                    continue
                kind, name, rest = m.group(1), m.group(2), m.group(3)
                if kind == "UNIT" and not self.om:
                    self.bad(i, "# UNIT in text 0.0.4")
                    continue
                if not METRIC_NAME.match(name):
                    self.bad(i, "invalid metric name %s" % shown(name))
                if name in closed:
                    self.bad(i, "# %s for %s after its samples/another family "
                                "(families must be contiguous)" % (kind, name))
                fam = self.families.get(name)
                if fam is None:
                    fam = {"type": None, "help": None, "unit": None, "samples": 0}
                    self.families[name] = fam
                    fam_order.append(name)
                if current is not None and current != name:
                    closed.add(current)
                current = name
                key = kind.lower()
                if fam[key] is not None:
                    self.bad(i, "second # %s for %s" % (kind, name))
                if fam["samples"]:
                    self.bad(i, "# %s for %s after its samples" % (kind, name))
                if kind == "TYPE":
                    types = OM_TYPES if self.om else TEXT_TYPES
                    if rest not in types:
                        self.bad(i, "unknown type %s" % shown(rest))
                    fam["type"] = rest
                    if self.om and rest == "counter" and name.endswith("_total"):
                        self.bad(i, "OpenMetrics counter family %s must be named without "
                                    "_total (samples carry it)" % name)
                elif kind == "HELP":
                    fam["help"] = rest if rest is not None else ""
                    if rest is not None and re.search(r"\\[^\\n\"]" if self.om else r"\\[^\\n]",
                                                      rest):
                        self.bad(i, "bad escape in HELP %s" % shown(rest))
                else:
                    fam["unit"] = rest or ""
                    if rest and not name.endswith("_" + rest):
                        self.bad(i, "# UNIT %s: the metric name must end with _%s" % (name, rest))
                continue
            s = self.parse_sample(i, line)
            if s is None:
                continue
            fname = self.family_of(s.name)
            if fname is None:
                self.bad(i, "sample %s has no # TYPE" % s.name)
                fname = s.name
                if fname not in self.families:
                    self.families[fname] = {"type": None, "help": None, "unit": None,
                                            "samples": 0}
                    fam_order.append(fname)
            if fname in closed:
                self.bad(i, "sample of %s after another family started "
                            "(families must be contiguous)" % fname)
            if current is not None and current != fname:
                closed.add(current)
            current = fname
            s.family = fname
            self.families[fname]["samples"] += 1
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in series:
                self.bad(i, "duplicate series %s%s" % (s.name, fmt_labels(s.labels)))
            series.add(key)
            if s.ts is not None:
                self.bad(i, "sample %s carries a timestamp (%s)" % (s.name, s.ts))
            ftype = self.families[fname]["type"]
            if ftype == "counter":
                if self.om and s.name not in (fname + "_total", fname + "_created"):
                    self.bad(i, "OpenMetrics counter %s: sample %s must be %s_total" % (
                        fname, s.name, fname))
                if not (s.value >= 0):
                    self.bad(i, "counter %s is negative or NaN: %s" % (s.name, s.value))
            self.samples.append(s)
        if self.om and eof_at is None:
            self.bad(len(lines), "OpenMetrics exposition does not end with '# EOF'")

    def family_of(self, name):
        fams = self.families
        if name in fams and fams[name]["type"] is not None:
            if not (self.om and fams[name]["type"] == "counter"):
                return name
        if self.om:
            for suf in ("_total", "_created", "_count", "_sum", "_bucket", "_gcount", "_gsum",
                        "_info"):
                if name.endswith(suf) and name[:-len(suf)] in fams:
                    return name[:-len(suf)]
        else:
            for suf in ("_count", "_sum", "_bucket"):
                if name.endswith(suf) and name[:-len(suf)] in fams and \
                        fams[name[:-len(suf)]]["type"] in ("summary", "histogram"):
                    return name[:-len(suf)]
        if name in fams and fams[name]["type"] is not None:
            return name
        return None

    def parse_sample(self, i, line):
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
        if not m:
            self.bad(i, "not a sample line: %s" % shown(line))
            return None
        name = m.group(1)
        pos = m.end()
        labels = {}
        if pos < len(line) and line[pos] == "{":
            pos += 1
            while True:
                if pos < len(line) and line[pos] == "}":
                    pos += 1
                    break
                lm = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"").match(line, pos)
                if not lm:
                    self.bad(i, "bad label syntax at column %d: %s" % (pos + 1, shown(line)))
                    return None
                lname = lm.group(1)
                pos = lm.end()
                val = []
                while True:
                    if pos >= len(line):
                        self.bad(i, "unterminated label value: %s" % shown(line))
                        return None
                    ch = line[pos]
                    if ch == "\\":
                        nxt = line[pos + 1:pos + 2]
                        if nxt == "n":
                            val.append("\n")
                        elif nxt in ("\\", '"'):
                            val.append(nxt)
                        else:
                            self.bad(i, "bad escape \\%s in label value" % nxt)
                            val.append(nxt)
                        pos += 2
                        continue
                    if ch == '"':
                        pos += 1
                        break
                    val.append(ch)
                    pos += 1
                if lname in labels:
                    self.bad(i, "label %s twice in %s" % (lname, name))
                labels[lname] = "".join(val)
                if pos < len(line) and line[pos] == ",":
                    pos += 1
                    continue
                if pos < len(line) and line[pos] == "}":
                    pos += 1
                    break
                self.bad(i, "expected ',' or '}' at column %d: %s" % (pos + 1, shown(line)))
                return None
        rest = line[pos:]
        if not rest.startswith(" "):
            self.bad(i, "no space before the value: %s" % shown(line))
            return None
        parts = rest[1:].split(" ")
        if len(parts) not in (1, 2) or parts[0] == "":
            self.bad(i, "bad value/timestamp part %s" % shown(rest))
            return None
        try:
            if parts[0] in ("+Inf", "-Inf", "NaN", "Inf"):
                value = float(parts[0].replace("Inf", "inf").replace("NaN", "nan"))
            else:
                if not re.match(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$", parts[0]):
                    raise ValueError(parts[0])
                value = float(parts[0])
        except ValueError:
            self.bad(i, "bad value %s" % shown(parts[0]))
            return None
        ts = parts[1] if len(parts) == 2 else None
        return Sample(name, labels, value, ts, i)

    def find(self, name, **labels):
        want = dict((k, str(v)) for k, v in labels.items())
        return [s for s in self.samples if s.name == name and
                all(s.labels.get(k) == v for k, v in want.items())]

    def value(self, name, **labels):
        found = self.find(name, **labels)
        if len(found) == 1:
            return found[0].value
        if not found:
            return None
        return ("duplicate", len(found))

    def series_keys(self):
        return set((s.name, tuple(sorted(s.labels.items()))) for s in self.samples)


def fmt_labels(labels):
    return "{" + ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"')
                                       .replace("\n", "\\n"))
                          for k, v in sorted(labels.items())) + "}"


def promtool_check(text):
    """(errors or None, warnings list). Raises Skip without promtool."""
    exe = shutil.which("promtool")
    if not exe:
        raise Skip("promtool is not installed (apt-get install prometheus)")
    r = subprocess.run([exe, "check", "metrics"], input=text.encode("utf-8"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace").strip()
    lines = [l for l in out.splitlines() if l.strip()]
    # promtool 2.42: exit 0 clean, 3 = lint problems (naming/help: warnings),
    # 1 = "error while linting: text format parsing error ..." (an error).
    if r.returncode == 0:
        return None, lines
    if r.returncode == 3 and not any(l.startswith("error") for l in lines):
        return None, lines
    return "promtool check metrics exit %d: %s" % (r.returncode, short(out, 500)), lines


# --------------------------------------------------------------------------
# Ground truth

def json_expectations(c, where, t, proc):
    """Compare one PROCESS with the target's own truth (gc, version...)."""
    tr = t.truth
    c.eq("%s pid" % where, t.pid, proc.get("pid"))
    c.eq("%s status" % where, "ok", proc.get("status"))
    if proc.get("status") != "ok":
        c.diffs.append("%s error: %s" % (where, shown(proc.get("error"))))
        return
    py = proc.get("python") or {}
    c.eq("%s python.version" % where, tr["version"], py.get("version"))
    c.eq("%s python.hexversion" % where, tr["hexversion"], py.get("hexversion"))
    g = proc.get("gc") or {}
    c.eq("%s gc.enabled" % where, tr["isenabled"], g.get("enabled"))
    gens = g.get("generations")
    if not isinstance(gens, list) or len(gens) < 3:
        c.diffs.append("%s gc.generations: expected 3 entries, got %s" % (where, shown(gens)))
        return
    for i in range(3):
        gi = gens[i] if isinstance(gens[i], dict) else {}
        st = tr["get_stats"][i]
        c.eq("%s gc.generations[%d].generation" % (where, i), i, gi.get("generation"))
        c.eq("%s gc.generations[%d].threshold" % (where, i), tr["get_threshold"][i],
             gi.get("threshold"))
        for k in ("collections", "collected", "uncollectable"):
            c.eq("%s gc.generations[%d].%s" % (where, i, k), st[k], gi.get(k))
        cnt = gi.get("count")
        if i == 0:
            c.ok(isinstance(cnt, int) and abs(cnt - tr["get_count"][0]) <= GEN0_TOLERANCE,
                 "%s gc.generations[0].count: expected %d (+-%d), got %s" % (
                     where, tr["get_count"][0], GEN0_TOLERANCE, shown(cnt)))
        else:
            c.eq("%s gc.generations[%d].count" % (where, i), tr["get_count"][i], cnt)


def metric_expectations(c, where, t, proc, ex):
    """Compare an exposition's samples for target t with its truth."""
    tr = t.truth
    pid = str(t.pid)
    c.eq("%s pymemd_target_up{pid=%s}" % (where, pid), 1.0, ex.value("pymemd_target_up", pid=pid))
    for s in ex.find("pymemd_target_up", pid=pid):
        c.eq("%s pymemd_target_up label names" % where, ["name", "pid"], sorted(s.labels))
        c.eq("%s pymemd_target_up name label" % where, proc.get("name"), s.labels.get("name"))
    for i in range(3):
        gen = str(i)
        st = tr["get_stats"][i]
        c.eq('%s python_gc_threshold{generation="%d",pid="%s"}' % (where, i, pid),
             float(tr["get_threshold"][i]),
             ex.value("python_gc_threshold", pid=pid, generation=gen))
        for mname, k in (("python_gc_collections_total", "collections"),
                         ("python_gc_objects_collected_total", "collected"),
                         ("python_gc_objects_uncollectable_total", "uncollectable")):
            c.eq('%s %s{generation="%d",pid="%s"}' % (where, mname, i, pid), float(st[k]),
                 ex.value(mname, pid=pid, generation=gen))
        v = ex.value("python_gc_count", pid=pid, generation=gen)
        if i == 0:
            c.ok(isinstance(v, float) and abs(v - tr["get_count"][0]) <= GEN0_TOLERANCE,
                 '%s python_gc_count{generation="0",pid="%s"}: expected %d (+-%d), got %s' % (
                     where, pid, tr["get_count"][0], GEN0_TOLERANCE, shown(v)))
        else:
            c.eq('%s python_gc_count{generation="%d",pid="%s"}' % (where, i, pid),
                 float(tr["get_count"][i]), v)
    c.eq('%s python_gc_enabled{pid="%s"}' % (where, pid), 1.0 if tr["isenabled"] else 0.0,
         ex.value("python_gc_enabled", pid=pid))
    c.eq('%s python_threads{pid="%s"}' % (where, pid), float(tr["active_count"]),
         ex.value("python_threads", pid=pid))
    info = ex.find("python_info", pid=pid)
    if c.eq('%s python_info{pid="%s"} series' % (where, pid), 1, len(info)):
        lab = info[0].labels
        parts = tr["version"].split(".")
        c.eq("%s python_info version" % where, tr["version"], lab.get("version"))
        c.eq("%s python_info implementation" % where, tr["implementation"],
             lab.get("implementation"))
        c.eq("%s python_info major" % where, parts[0], lab.get("major"))
        c.eq("%s python_info minor" % where, parts[1], lab.get("minor"))
        c.eq("%s python_info patchlevel" % where, re.match(r"\d+", parts[2]).group(0),
             lab.get("patchlevel"))
        c.eq("%s python_info value" % where, 1.0, info[0].value)
    blocks = ex.value("python_pymalloc_allocated_blocks", pid=pid)
    if blocks is not None and tr.get("allocated_blocks") is not None:
        c.ok(isinstance(blocks, float) and 0 <= blocks - tr["allocated_blocks"] <= BLOCKS_SLACK,
             '%s python_pymalloc_allocated_blocks{pid="%s"}: expected %d..%d, got %s' % (
                 where, pid, tr["allocated_blocks"], tr["allocated_blocks"] + BLOCKS_SLACK,
                 shown(blocks)))
    arenas = ex.value("python_pymalloc_arenas", pid=pid)
    if arenas is not None and tr.get("arenas") is not None:
        c.eq('%s python_pymalloc_arenas{pid="%s"}' % (where, pid), float(tr["arenas"]), arenas)


# JSON field -> metric (target-level gauges/counters without generation).
NULL_MAP = [
    (("memory", "rss_bytes"), "python_memory_resident_bytes"),
    (("memory", "vms_bytes"), "python_memory_virtual_bytes"),
    (("memory", "anon_bytes"), "python_memory_anonymous_bytes"),
    (("memory", "swap_bytes"), "python_memory_swap_bytes"),
    (("memory", "pss_bytes"), "python_memory_proportional_bytes"),
    (("memory", "peak_rss_bytes"), "python_memory_peak_resident_bytes"),
    (("pymalloc", "arenas"), "python_pymalloc_arenas"),
    (("pymalloc", "arena_bytes"), "python_pymalloc_arena_bytes"),
    (("pymalloc", "allocated_blocks"), "python_pymalloc_allocated_blocks"),
    (("threads",), "python_threads"),
    (("gc", "enabled"), "python_gc_enabled"),
    (("gc", "busy_ratio_estimate"), "python_gc_busy_ratio_estimate"),
]
NULL_MAP_GEN = [
    ("count", "python_gc_count"),
    ("threshold", "python_gc_threshold"),
    ("collections", "python_gc_collections_total"),
    ("collected", "python_gc_objects_collected_total"),
    ("uncollectable", "python_gc_objects_uncollectable_total"),
    ("duration_seconds", "python_gc_duration_seconds_total"),
]


def dig(d, path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return "missing"
        d = d[k]
    return d


def null_consistency(c, where, proc, ex):
    """null in JSON <=> no sample; a value in JSON <=> a sample."""
    pid = str(proc.get("pid"))
    for path, mname in NULL_MAP:
        v = dig(proc, path)
        if v == "missing":
            continue
        have = ex.find(mname, pid=pid)
        if v is None:
            c.ok(not have, "%s %s is null in JSON but %s{pid=%s} = %s (a made-up value)" % (
                where, ".".join(path), mname, pid, have[0].value if have else None))
        else:
            c.ok(len(have) == 1, "%s %s is %s in JSON but %s{pid=%s} has %d samples" % (
                where, ".".join(path), shown(v), mname, pid, len(have)))
    gens = dig(proc, ("gc", "generations"))
    if isinstance(gens, list):
        for g in gens:
            if not isinstance(g, dict):
                continue
            for key, mname in NULL_MAP_GEN:
                if key not in g:
                    continue
                have = ex.find(mname, pid=pid, generation=str(g.get("generation")))
                if g[key] is None:
                    c.ok(not have, "%s gc.generations[%s].%s is null in JSON but %s has a "
                                   "sample (%s)" % (where, g.get("generation"), key, mname,
                                                    have[0].value if have else None))
                else:
                    c.ok(len(have) == 1, "%s gc.generations[%s].%s is %s in JSON but %s has "
                                         "%d samples" % (where, g.get("generation"), key,
                                                         shown(g[key]), mname, len(have)))


# --------------------------------------------------------------------------
# The checks

class Ctx(object):
    pass


def fetch_metrics(inst, accept=None, extra=(), path="/metrics"):
    h = []
    if accept is not None:
        h.append(("Accept", accept))
    h += list(extra)
    return inst.get(path, h)


def fmt_of_ct(ct):
    for f, v in CT_OF.items():
        if ct == v:
            return f
    return None


def check_body_format(c, fmt, r, what):
    """The body is really of the format its Content-Type says."""
    try:
        text = r.text()
    except (UnicodeDecodeError, OSError, EOFError) as e:
        c.diffs.append("%s: body is not (gzip of) UTF-8: %s" % (what, e))
        return None
    if fmt == "json":
        try:
            d = json.loads(text)
        except ValueError as e:
            c.diffs.append("%s: body is not JSON (%s): %s" % (what, e, shown(text[:120])))
            return None
        c.ok(isinstance(d, dict) and isinstance(d.get("processes"), list)
             and isinstance(d.get("pymemd"), dict),
             "%s: JSON has no pymemd/processes: %s" % (what, shown(text[:160])))
        return d
    if fmt == "om":
        c.ok(text.endswith("# EOF\n"), "%s: OpenMetrics body does not end with '# EOF\\n' "
                                       "(ends %s)" % (what, shown(text[-40:])))
    else:
        c.ok("# EOF" not in text, "%s: text 0.0.4 body contains '# EOF'" % what)
        c.ok(text.endswith("\n"), "%s: text body does not end with a newline" % what)
    c.ok("pymemd_build_info" in text, "%s: no pymemd_build_info in the body" % what)
    return text


def expect_format(c, inst, accept, fmt, extra=(), path="/metrics"):
    r = fetch_metrics(inst, accept, extra, path)
    what = "Accept %s" % (shown(accept) if accept is not None else "(none)")
    if path != "/metrics":
        what = "GET %s, %s" % (path, what)
    if not c.eq("%s: status" % what, 200, r.status):
        c.diffs.append("body: %s" % short(r.raw, 200))
        return r
    got = r.h("Content-Type")
    if got != CT_OF[fmt]:
        c.diffs.append("%s: expected %s (Content-Type %s), got Content-Type %s%s" % (
            what, FMT_NAME[fmt], json.dumps(CT_OF[fmt]), shown(got),
            " (= %s)" % FMT_NAME[fmt_of_ct(got)] if fmt_of_ct(got) else ""))
        return r
    check_body_format(c, fmt, r, what)
    return r


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


def expect_error(c, r, what, statuses, allow_non_json=False):
    """r must be one of statuses with a JSON error {"error":{"code","message"}}."""
    if r.status not in statuses:
        c.diffs.append("%s: expected status %s, got %s" % (
            what, "/".join(str(s) for s in statuses), r.describe()))
        return False
    if allow_non_json and r.h("Content-Type") != CT_JSON:
        return True
    c.eq("%s: Content-Type" % what, CT_JSON, r.h("Content-Type"))
    try:
        d = json.loads(r.raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        c.diffs.append("%s: body is not JSON: %s" % (what, shown(short(r.raw, 160))))
        return False
    e = d.get("error") if isinstance(d, dict) else None
    if not isinstance(e, dict):
        c.diffs.append("%s: no \"error\" object: %s" % (what, shown(d)))
        return False
    c.eq("%s: error.code" % what, r.status, e.get("code"))
    c.ok(isinstance(e.get("message"), str) and e.get("message"),
         "%s: error.message: expected a non-empty string, got %s" % (what, shown(e.get("message"))))
    return True


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
        for k in ("arenas", "arenas_highwater", "arena_bytes", "allocated_blocks"):
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


def get_expo(c, inst, fmt, gz=False):
    h = [("Accept", "text/plain;version=0.0.4" if fmt == "text" else PROM_ACCEPT[3][1])]
    if gz:
        h.append(("Accept-Encoding", "gzip"))
    r = inst.get("/metrics", h)
    if r.status != 200 or r.h("Content-Type") != CT_OF[fmt]:
        raise Fail("GET /metrics for %s: %s" % (FMT_NAME[fmt], r.describe()))
    try:
        text = r.text()
    except UnicodeDecodeError as e:
        c.diffs.append("%s body is not UTF-8: %s" % (FMT_NAME[fmt], e))
        text = r.body.decode("utf-8", "replace")
    return text, Expo(text, fmt == "om")


def check_exposition(c, inst, fmt, expect_pids=None):
    text, ex = get_expo(c, inst, fmt)
    for p in ex.problems:
        c.diffs.append("%s %s" % (FMT_NAME[fmt], p))
    # Target metrics carry pid and name; pid is a number.
    missing = set()
    for s in ex.samples:
        if TARGET_METRIC.match(s.name):
            if "pid" not in s.labels or "name" not in s.labels:
                missing.add(s.name)
            elif not re.match(r"^[1-9]\d*$", s.labels["pid"]):
                c.diffs.append("%s: pid label %s is not a pid" % (s.name, shown(s.labels["pid"])))
        for k in s.labels:
            if k in ("job", "instance", "type", "le", "quantile"):
                c.diffs.append("%s uses the reserved/clashing label %s" % (s.name, k))
        if s.name.startswith("process_") or s.name.startswith("scrape_"):
            c.diffs.append("%s uses a prefix reserved by Prometheus" % s.name)
    for m in sorted(missing):
        c.diffs.append("%s: samples without pid/name labels" % m)
    bi = ex.find("pymemd_build_info")
    if c.eq("pymemd_build_info series", 1, len(bi)):
        c.eq("pymemd_build_info value", 1.0, bi[0].value)
        c.ok("version" in bi[0].labels, "pymemd_build_info has no version label")
    # Types of the contract's families.
    types = {"python_gc_collections_total": "counter",
             "python_gc_objects_collected_total": "counter",
             "python_gc_objects_uncollectable_total": "counter",
             "python_gc_count": "gauge", "python_gc_threshold": "gauge",
             "python_gc_enabled": "gauge", "python_info": "gauge",
             "pymemd_target_up": "gauge", "pymemd_build_info": "gauge",
             "python_memory_resident_bytes": "gauge", "python_threads": "gauge"}
    for name, want in types.items():
        fam = name[:-6] if (fmt == "om" and want == "counter") else name
        got = (ex.families.get(fam) or {}).get("type")
        c.eq("%s # TYPE %s" % (FMT_NAME[fmt], fam), want, got)
        c.ok(ex.find(name), "%s: no %s samples" % (FMT_NAME[fmt], name))
    if expect_pids is not None:
        got = sorted(set(int(s.labels["pid"]) for s in ex.find("pymemd_target_up")
                         if s.labels.get("pid", "").isdigit()))
        c.eq("%s pids of pymemd_target_up" % FMT_NAME[fmt], sorted(expect_pids), got)
    err, warns = promtool_check(text)
    if err:
        c.diffs.append(err)
    if warns:
        names = sorted(set(w.split(" ", 1)[0] for w in warns))
        say("  promtool warnings for %s (%d, not failures): %s" % (
            FMT_NAME[fmt], len(warns), "; ".join(warns[:12]) + (" ..." if len(warns) > 12 else "")))
        c.note("promtool: no errors, %d lint warnings on %d names" % (len(warns), len(names)))
    else:
        c.note("promtool: clean")
    c.note("%d families, %d samples, %d bytes" % (len(ex.families), len(ex.samples), len(text)))
    return ex


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


def t_identity_stable(c, ctx):
    keys = ("pid", "name", "cmdline", "exe", "start_time")
    first = {}
    sampled = {}
    for _ in range(6):
        for p in ctx.main.processes():
            pid = p.get("pid")
            ident = dict((k, p.get(k)) for k in keys)
            ident["python.version"] = (p.get("python") or {}).get("version")
            if pid in first:
                for k, v in ident.items():
                    c.ok(first[pid][k] == v, "pid %s %s changed between samples: %s -> %s" % (
                        pid, k, shown(first[pid][k]), shown(v)))
            else:
                first[pid] = ident
            sampled.setdefault(pid, set()).add(p.get("sampled_at"))
        time.sleep(0.3)
    for t in ctx.targets:
        ident = first.get(t.pid)
        if not ident:
            c.diffs.append("pid %d missing" % t.pid)
            continue
        st = ident["start_time"]
        real = proc_start_time(t.pid)
        c.ok(isinstance(st, (int, float)) and real is not None and abs(st - real) < 2.0,
             "%s start_time: expected about %.2f (btime + /proc/PID/stat starttime), got %s" % (
                 t.label, real or 0, shown(st)))
        c.ok(len(sampled.get(t.pid, ())) >= 2,
             "%s: sampled_at did not change across 6 polls in 1.8 s" % t.label)
    c.note("pid, name, cmdline, exe, start_time and version stable over %d samples" %
           max(len(s) for s in sampled.values()) if sampled else "no samples")


# ---- lifecycle

def watch_pid(inst, pid, seconds, stop=None, interval=0.1):
    """Poll /api/v1/processes for pid; returns a list of (wall time, PROCESS
    or None)."""
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = None
        for p in inst.processes():
            if p.get("pid") == pid:
                found = p
                break
        out.append((time.time(), found))
        if stop and stop(found):
            break
        time.sleep(interval)
    return out


def t_new_target(c, ctx):
    it = ctx.interps[0]
    tag = ctx.tag + "-life"
    t0 = time.monotonic()
    t = Target("%s (started later)" % it[0], target_argv(it[1], tag), tag)
    ctx.late = t
    obs = watch_pid(ctx.main, t.pid, DISCOVERY_WAIT + 5,
                    stop=lambda p: p is not None and p.get("status") == "ok")
    last = obs[-1][1] if obs else None
    if last is None or last.get("status") != "ok":
        raise Fail("a new target (pid %d, %s) matching --match was not reported \"ok\" "
                   "within %.0f s (last seen: %s)" % (t.pid, it[0], DISCOVERY_WAIT + 5,
                                                     shown(last)))
    c.note("picked up after %.1f s" % (time.monotonic() - t0))
    json_expectations(c, "late target", t, last)
    _, ex = get_expo(c, ctx.main, "text")
    metric_expectations(c, "text", t, last, ex)


def judge_after_exit(c, obs, t_exit, what):
    """Every observation after the exit: absent, or not "ok", or an "ok"
    sampled before the exit (a snapshot older than the exit)."""
    turned = False
    bad = []
    for when, p in obs:
        if p is None or p.get("status") != "ok":
            turned = True
            continue
        sa = p.get("sampled_at")
        late = isinstance(sa, (int, float)) and sa > t_exit + 0.05 + (p.get("sample_seconds") or 0)
        if turned:
            bad.append("\"ok\" again at +%.2f s after it was gone" % (when - t_exit))
        elif late:
            bad.append("\"ok\" with sampled_at %.3f, %.2f s after the process exited" % (
                sa, sa - t_exit))
    c.ok(not bad, "%s: %s" % (what, "; ".join(bad[:3])))
    last = obs[-1][1] if obs else None
    c.ok(last is None or last.get("status") != "ok",
         "%s: still \"ok\" %.0f s after the process exited (sampled_at %s)" % (
             what, obs[-1][0] - t_exit if obs else 0, shown(last.get("sampled_at") if last else None)))
    if last is not None:
        c.ok(last.get("status") == "gone",
             "%s: expected absent or status \"gone\", got %s" % (what, shown(last.get("status"))))
    return last


def t_target_exit(c, ctx):
    t = getattr(ctx, "late", None)
    if t is None:
        raise Skip("no late target (the previous check failed)")
    pid = t.pid
    t.p.kill()
    t.p.wait()
    t_exit = time.time()
    obs = watch_pid(ctx.main, pid, DISCOVERY_WAIT,
                    stop=lambda p: False)
    last = judge_after_exit(c, obs, t_exit, "pid %d after SIGKILL" % pid)
    t.close()
    _, ex = get_expo(c, ctx.main, "text")
    up = ex.find("pymemd_target_up", pid=str(pid))
    c.ok(all(s.value == 0 for s in up), "pymemd_target_up{pid=%d} still 1 after exit" % pid)
    c.ok(not ex.find("python_gc_threshold", pid=str(pid)),
         "python_gc_threshold{pid=%d} still exported after exit" % pid)
    c.note("after %.0f s: %s" % (DISCOVERY_WAIT, "dropped" if last is None else
                                 "status %s" % last.get("status")))


def t_zombie(c, ctx):
    it = ctx.interps[0]
    tag = ctx.tag + "-zombie"
    t = Target("%s (zombie)" % it[0], target_argv(it[1], tag), tag)
    try:
        p = wait_sampled(ctx.main, [t.pid])
        if (p.get(t.pid) or {}).get("status") != "ok":
            raise Fail("target pid %d not sampled ok within %.0f s: %s" % (
                t.pid, DISCOVERY_WAIT, shown(p.get(t.pid))))
        os.kill(t.pid, signal.SIGKILL)        # not reaped: a zombie
        deadline = time.monotonic() + 5
        while proc_state(t.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        t_exit = time.time()
        c.eq("state of the killed, unreaped target", "Z", proc_state(t.pid))
        obs = watch_pid(ctx.main, t.pid, DISCOVERY_WAIT)
        last = judge_after_exit(c, obs, t_exit, "zombie pid %d" % t.pid)
        c.note("zombie: %s" % ("dropped" if last is None else "status %s, error %s" % (
            last.get("status"), short(last.get("error"), 80))))
    finally:
        t.close()


EXEC_WRAPPER = r"""
import os, runpy, sys
target, new, tag, fd = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.argv = [target, "--tag", tag]
try:
    runpy.run_path(target, run_name="__main__")
except SystemExit:
    pass
os.dup2(fd, 0)
os.execv(new, [new, target, "--tag", tag])
"""


def t_exec_in_place(c, ctx):
    """Same pid, same start_time, a different interpreter: exec()."""
    if len(ctx.interps) < 2:
        raise Skip("needs two interpreters of different versions")
    (la, ca), (lb, cb) = ctx.interps[1], ctx.interps[0]
    if len(cb) != 1:
        raise Skip("%s is started through a wrapper" % lb)
    tag = ctx.tag + "-exec"
    r, w = os.pipe()
    try:
        t = Target("%s exec'ing %s" % (la, lb),
                   list(ca) + ["-c", EXEC_WRAPPER, TARGET, cb[0], tag, str(r)], tag,
                   pass_fds=(r,))
    finally:
        os.close(r)
    try:
        v_old = t.truth["version"]
        p = wait_sampled(ctx.main, [t.pid])
        first = p.get(t.pid)
        if (first or {}).get("status") != "ok":
            raise Fail("pid %d (%s) not sampled ok within %.0f s: %s" % (
                t.pid, la, DISCOVERY_WAIT, shown(first)))
        json_expectations(c, "before exec", t, first)
        start0 = first.get("start_time")
        t_before = time.time()
        t.p.stdin.close()                      # -> target.py returns -> execv
        old_truth = t.truth
        t.truth = t.next_truth()
        t_after = time.time()
        v_new = t.truth["version"]
        c.eq("pid after exec (from the target itself)", t.pid, t.truth["pid"])
        # A sample of the new image taken while it was still starting (before target.py set its
        # thresholds) is right for its moment: compare with a sample taken after the new truth.
        obs = watch_pid(ctx.main, t.pid, DISCOVERY_WAIT + 5,
                        stop=lambda p: p is not None and p.get("status") == "ok" and
                        (p.get("python") or {}).get("version") == v_new and
                        (p.get("sampled_at") or 0) > t_after)
        bad = []
        for when, p in obs:
            if p is None or p.get("status") != "ok":
                continue
            ver = (p.get("python") or {}).get("version")
            sa = p.get("sampled_at") or 0
            if ver == v_old and v_old != v_new and sa > t_after + 0.05:
                bad.append("\"ok\" as %s (the old interpreter) with sampled_at %.2f s after "
                           "the exec finished" % (v_old, sa - t_after))
            elif ver not in (v_old, v_new):
                bad.append("\"ok\" with version %s" % shown(ver))
        c.ok(not bad, "; ".join(sorted(set(bad))[:3]))
        last = obs[-1][1] if obs else None
        if last is None or last.get("status") != "ok" or \
                (last.get("python") or {}).get("version") != v_new:
            c.diffs.append("within %.0f s after exec of %s in place of %s (same pid %d, "
                           "same start_time), pymemd still reports %s" % (
                               DISCOVERY_WAIT + 5, v_new, v_old, t.pid,
                               "nothing" if last is None else "status %s, version %s, error %s"
                               % (last.get("status"), (last.get("python") or {}).get("version"),
                                  short(last.get("error"), 120))))
        else:
            json_expectations(c, "after exec", t, last)
            c.eq("start_time after exec (the kernel keeps it)", start0, last.get("start_time"))
            c.note("%s -> %s in %.1f s" % (v_old, v_new, obs[-1][0] - t_before))
        del old_truth
    finally:
        try:
            os.close(w)
        except OSError:
            pass
        t.close()


def t_pid_reuse(c, ctx):
    path = "/proc/sys/kernel/ns_last_pid"
    if not os.access(path, os.W_OK):
        raise Skip("%s is not writable (needs root and a writable /proc/sys): a real PID "
                   "reuse cannot be forced" % path)
    if len(ctx.interps) < 2:
        raise Skip("needs two interpreters of different versions")
    (la, ca), (lb, cb) = ctx.interps[1], ctx.interps[0]
    if len(ca) != 1 or len(cb) != 1:
        raise Skip("the interpreters must be plain executables (pid = target pid)")
    tag = ctx.tag + "-reuse"
    a = Target("%s (first owner)" % la, target_argv(ca, tag), tag)
    b = None
    try:
        p = wait_sampled(ctx.main, [a.pid])
        pa = p.get(a.pid)
        if (pa or {}).get("status") != "ok":
            raise Fail("first owner pid %d not sampled ok: %s" % (a.pid, shown(pa)))
        start_a = pa.get("start_time")
        pid = a.pid
        a.p.kill()
        a.p.wait()
        t_exit = time.time()
        CHILDREN.reap(a.p)
        tries = 0
        for tries in range(1, 51):
            with open(path, "w") as f:
                f.write(str(pid - 1))
            cand = CHILDREN.spawn(target_argv(cb, tag), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  env=clean_env(), cwd="/")
            if cand.pid == pid:
                b = cand
                break
            CHILDREN.reap(cand)
        if b is None:
            raise Skip("could not get pid %d again in 50 tries (other processes fork)" % pid)
        b_truth = json.loads(read_line(b, TARGET_TIMEOUT))
        c.eq("the second process' own pid", pid, b_truth["pid"])
        v_a, v_b = a.truth["version"], b_truth["version"]
        obs = watch_pid(ctx.main, pid, DISCOVERY_WAIT + 5,
                        stop=lambda p: p is not None and p.get("status") == "ok" and
                        p.get("start_time") != start_a)
        dup = []
        bad = []
        for when, p in obs:
            if p is None or p.get("status") != "ok":
                continue
            st = p.get("start_time")
            ver = (p.get("python") or {}).get("version")
            sa = p.get("sampled_at") or 0
            if st == start_a:
                if sa > t_exit + 0.05 + (p.get("sample_seconds") or 0):
                    bad.append("old start_time %s reported \"ok\" (version %s) with sampled_at "
                               "%.2f s after the first owner exited" % (st, ver, sa - t_exit))
                elif ver != v_a:
                    bad.append("old start_time with the new version %s" % ver)
            elif ver != v_b:
                bad.append("new start_time %s with version %s (expected %s): mixed" % (
                    st, ver, v_b))
        c.ok(not bad, "; ".join(sorted(set(bad))[:3]))
        last = obs[-1][1] if obs else None
        if last is None or last.get("status") != "ok" or last.get("start_time") == start_a:
            c.diffs.append("within %.0f s the new process with the reused pid %d was not "
                           "reported ok with a new start_time (last: %s)" % (
                               DISCOVERY_WAIT + 5, pid, shown(last)))
        else:
            tb = Ctx()
            tb.pid, tb.truth, tb.tag = pid, b_truth, tag
            json_expectations(c, "second owner", tb, last)
            real = proc_start_time(pid)
            c.ok(real is not None and abs(last.get("start_time") - real) < 2.0,
                 "second owner start_time: expected about %.2f, got %s" % (
                     real or 0, shown(last.get("start_time"))))
            _, ex = get_expo(c, ctx.main, "text")
            up = ex.find("pymemd_target_up", pid=str(pid))
            c.ok(len(up) <= 1, "pymemd_target_up{pid=%d}: %d series (duplicate pid labels "
                               "for two processes)" % (pid, len(up)))
            metric_expectations(c, "text", tb, last, ex)
            c.note("pid %d reused after %d tries: %s (start %.2f) -> %s (start %.2f)" % (
                pid, tries, v_a, start_a, v_b, last.get("start_time")))
        for p in ctx.main.processes():
            if p.get("pid") == pid and p.get("status") == "ok":
                c.ok(p.get("start_time") != start_a, "the old process is still listed ok")
    finally:
        a.close()
        if b is not None:
            CHILDREN.reap(b)


def t_never_stopped(c, ctx, when):
    for t in ctx.all_targets:
        if t.alive():
            st = proc_state(t.pid)
            c.ok(st not in ("T", "t"), "%s pid %d is stopped (state %s) %s" % (
                t.label, t.pid, st, when))


def t_sigterm_busy(c, ctx):
    inst = ctx.main
    inst.need()
    socks = []
    try:
        idle = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=5)
        idle.request("GET", "/healthz")
        idle.getresponse().read()                 # an idle keep-alive connection
        half = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
        half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")   # half a request
        socks = [idle, half]
        rc, took = inst.stop(signal.SIGTERM)
    finally:
        for s in socks:
            s.close()
    c.eq("exit status after SIGTERM", 0, rc)
    c.ok(took < STOP_LIMIT, "SIGTERM with an idle and a half-sent connection open: exited "
                            "after %.2f s (limit %.0f s)" % (took, STOP_LIMIT))
    c.ok(port_free(inst.port), "port %d still bound after exit" % inst.port)
    c.note("exit %s after %.2f s" % (rc, took))


ODD_WRAPPER = r"""
import ctypes, runpy, sys
name = bytes.fromhex(sys.argv[1])
ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)
target, tag = sys.argv[2], sys.argv[3]
sys.argv = [target, "--tag", tag]
runpy.run_path(target, run_name="__main__")
"""
# 14 bytes: quote, backslash, ')', a space, a whole 'ö' and a cut one.
ODD_COMM = b'py"q\\z) w\xc3\xb6rk\xc3'
ODD_PREFIX = 'py"q\\z) w\u00f6rk'


def strict_json(c, r, what):
    """JSON must be valid UTF-8 (RFC 8259 section 8.1); on failure record
    it and go on with a lenient decoding so the other checks still run."""
    try:
        return json.loads(r.raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        bad = r.raw[max(0, e.start - 40):e.end + 20]
        c.diffs.append("%s is not valid UTF-8 (byte %r at offset %d, near %r): a command "
                       "line that is not UTF-8 must be escaped or replaced in JSON" % (
                           what, r.raw[e.start:e.end], e.start, bad))
        return json.loads(r.raw.decode("utf-8", "replace"))


def t_odd_names(c, ctx):
    it = ctx.interps[0]
    if len(it[1]) != 1:
        raise Skip("%s is started through a wrapper" % it[0])
    tag = ctx.tag2 + "-odd"
    argv = list(it[1]) + ["-c", ODD_WRAPPER, ODD_COMM.hex(), TARGET, tag,
                          b"\xff\xfe-not-utf8", "\u00e9\u2713 \"q\" \\ end"]
    t = Target("%s with an odd comm" % it[0], argv, tag)
    ctx.all_targets.append(t)
    inst = Pymemd(ctx.exe, ["--match", ctx.regex2, "--interval", str(INTERVAL)], "pymemd (odd)")
    try:
        comm = proc_comm(t.pid)
        c.eq("comm set by the target", ODD_COMM, comm)
        inst.start()
        p = wait_sampled(inst, [t.pid])
        proc = p.get(t.pid)
        if proc is None:
            raise Fail("pid %d never listed" % t.pid)
        r = inst.get("/api/v1/processes/%d" % t.pid)
        one = strict_json(c, r, "/api/v1/processes/%d" % t.pid)
        json_expectations(c, "odd", t, one)
        name = one.get("name")
        c.ok(isinstance(name, str) and name.startswith(ODD_PREFIX),
             "name: expected %s followed by the cut character, got %s" % (
                 shown(ODD_PREFIX), shown(name)))
        cl = one.get("cmdline")
        c.ok(isinstance(cl, str) and tag in cl, "cmdline: expected to contain the tag, got %s"
             % shown(cl))
        strict_json(c, inst.get("/metrics"), "/metrics (JSON)")
        for fmt in ("text", "om"):
            text, ex = get_expo(c, inst, fmt)
            for pr in ex.problems:
                c.diffs.append("%s %s" % (FMT_NAME[fmt], pr))
            up = ex.find("pymemd_target_up", pid=str(t.pid))
            if c.eq("%s pymemd_target_up series" % FMT_NAME[fmt], 1, len(up)):
                c.eq("%s name label (= JSON name)" % FMT_NAME[fmt], name, up[0].labels.get("name"))
            metric_expectations(c, FMT_NAME[fmt], t, one, ex)
            err, warns = promtool_check(text)
            if err:
                c.diffs.append("%s: %s" % (FMT_NAME[fmt], err))
        c.note("name %s" % shown(name))
        rc, took = inst.stop(signal.SIGTERM)
        c.eq("exit status after SIGTERM", 0, rc)
        c.ok(took < STOP_LIMIT, "exited after %.2f s (limit %.0f s)" % (took, STOP_LIMIT))
    finally:
        inst.close()
        t.close()


def t_empty_and_signals(c, ctx):
    inst = Pymemd(ctx.exe, ["--match", "^no-such-process-[x]yz$", "--interval", str(INTERVAL)],
                  "pymemd (no targets)")
    try:
        inst.start()
        for accept, fmt in ((None, "json"), (PROM_ACCEPT[3][1], "om"),
                            ("text/plain;version=0.0.4", "text")):
            r = expect_format(c, inst, accept, fmt)
            if fmt == "json" and r.status == 200:
                c.eq("processes with no target", [], r.json().get("processes"))
            elif r.status == 200 and r.h("Content-Type") == CT_OF[fmt]:
                ex = Expo(r.text(), fmt == "om")
                for pr in ex.problems:
                    c.diffs.append("%s (no targets) %s" % (FMT_NAME[fmt], pr))
                err, _ = promtool_check(r.text())
                if err:
                    c.diffs.append("%s (no targets): %s" % (FMT_NAME[fmt], err))
        os.kill(inst.p.pid, signal.SIGHUP)
        time.sleep(0.5)
        c.ok(inst.alive(), "SIGHUP without --config killed pymemd (exit %s, stderr %s)" % (
            inst.p.returncode, short(inst.stderr()[-300:])))
        if inst.alive():
            c.eq("GET /healthz after SIGHUP", 200, inst.get("/healthz").status)
            c.eq("GET /metrics after SIGHUP", 200, inst.get("/metrics").status)
        rc, took = inst.stop(signal.SIGINT)
        c.eq("exit status after SIGINT", 0, rc)
        c.ok(took < STOP_LIMIT, "SIGINT: exited after %.2f s (limit %.0f s)" % (took, STOP_LIMIT))
        c.note("SIGINT: exit %s after %.2f s" % (rc, took))
    finally:
        inst.close()


def t_config_hup(c, ctx):
    d = tempfile.mkdtemp(prefix="pymemd-http-conf-")
    inst = None
    try:
        conf = os.path.join(d, "pymemd.conf")
        with open(conf, "w") as f:
            f.write("# written by tests/http/test_http.py\n"
                    "interval = 0.3\nmatch = %s\n" % ctx.regex)
        inst = Pymemd(ctx.exe, ["--config", conf], "pymemd (--config)")
        inst.start()
        pids = [t.pid for t in ctx.targets]
        p = wait_sampled(inst, pids)
        c.ok(all(pid in p for pid in pids), "the config file's match did not select the "
                                            "targets: %s" % sorted(p))
        doc = inst.doc()
        c.eq("interval_seconds from the config file", 0.3, doc["pymemd"].get("interval_seconds"))
        with open(conf, "a") as f:
            f.write("log_level = debug\n")
        os.kill(inst.p.pid, signal.SIGHUP)
        time.sleep(1.0)
        c.ok(inst.alive(), "SIGHUP with --config killed pymemd (exit %s, stderr %s)" % (
            inst.p.returncode, short(inst.stderr()[-300:])))
        if inst.alive():
            c.eq("GET /healthz after SIGHUP", 200, inst.get("/healthz").status)
            p = wait_sampled(inst, pids, timeout=5)
            c.ok(all(pid in p for pid in pids), "targets gone after SIGHUP: %s" % sorted(p))
            c.eq("GET /metrics (OpenMetrics) after SIGHUP", CT_OM,
                 inst.get("/metrics", [("Accept", PROM_ACCEPT[3][1])]).h("Content-Type"))
        rc, took = inst.stop(signal.SIGTERM)
        c.eq("exit status after SIGTERM", 0, rc)
        c.ok(took < STOP_LIMIT, "SIGTERM: exited after %.2f s" % took)
    finally:
        if inst is not None:
            inst.close()
        shutil.rmtree(d, ignore_errors=True)


def port_in_use_case(c, ctx, port, holder):
    inst = None
    p = CHILDREN.spawn([ctx.exe, "--listen", "127.0.0.1:%d" % port, "--match",
                        "^no-such-process-[x]yz$"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            raise Fail("pymemd --listen 127.0.0.1:%d (port held by %s) was still running "
                       "after 10 s" % (port, holder))
        err = err.decode("utf-8", "replace")
        c.ok(p.returncode not in (0, None), "exit status: expected non-zero, got %s" %
             p.returncode)
        addr = "127.0.0.1:%d" % port
        c.ok(addr in err, "stderr does not name the address %s: %s" % (addr, shown(err)))
        c.ok(re.search(r"in use|taken|already|occupied|busy", err, re.I),
             "stderr does not say the port is taken: %s" % shown(err))
        c.ok(re.search(r"node[_ -]?exporter", err, re.I) and "9100" in err,
             "stderr does not mention that node_exporter commonly uses 9100: %s" % shown(err))
        c.ok("--listen" in err, "stderr does not say how to choose another port (--listen): %s"
             % shown(err))
        c.note("exit %s: %s" % (p.returncode, short(err, 200)))
    finally:
        CHILDREN.reap(p)


def t_port_in_use(c, ctx):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port_in_use_case(c, ctx, s.getsockname()[1], "this test")
    finally:
        s.close()


def t_port_9100_in_use(c, ctx):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder = "this test"
    try:
        try:
            s.bind(("127.0.0.1", 9100))
            s.listen(1)
        except OSError:
            holder = "another process (e.g. node_exporter)"
        port_in_use_case(c, ctx, 9100, holder)
    finally:
        s.close()


# --------------------------------------------------------------------------

# Cases that need pymemd to read the targets (skipped when it may not).
for _fn in (t_json_document, t_values, t_api_one, t_new_target, t_target_exit, t_zombie,
            t_exec_in_place, t_pid_reuse, t_odd_names, t_config_hup, t_identity_stable):
    _fn.needs_read = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pymemd", required=True, help="the pymemd binary to test")
    opts = ap.parse_args()
    exe = os.path.abspath(opts.pymemd)
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        sys.stderr.write("test_http.py: %s is not an executable file\n" % exe)
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    t0 = time.monotonic()
    say("pymemd HTTP contract tests: %s" % exe)
    try:
        run(exe)
    except KeyboardInterrupt:
        say("interrupted: killing all children")
        RESULTS.out("FAIL", "run", "interrupted")
    finally:
        CHILDREN.stop_all()
    say("(%.1f s)" % (time.monotonic() - t0))
    if RESULTS.failures:
        say("failed: %s" % ", ".join(RESULTS.failures))
    say("%d passed, %d failed, %d skipped" % (RESULTS.passed, RESULTS.failed, RESULTS.skipped))
    return 1 if RESULTS.failed else 0


def make_tag():
    """A tag and a regex matching it but not itself (so that neither pymemd's
    own command line nor anything else holding the regex matches)."""
    tag = "pymemdhttp%012x" % random.getrandbits(48)
    regex = "%s[%s]%s" % (tag[:5], tag[5], tag[6:])
    return tag, regex


def run(exe):
    ctx = Ctx()
    ctx.exe = exe
    ctx.tag, ctx.regex = make_tag()
    ctx.tag2, ctx.regex2 = make_tag()
    ctx.targets = []
    ctx.all_targets = []
    ctx.late = None
    ctx.denied = None

    # Interpreters: pyenv 3.12, the system python3, the newest Debian one.
    interps = []
    label, path = pyenv_python(12)
    if path:
        interps.append((label, [path]))
    else:
        RESULTS.out("SKIP", "interpreter pyenv 3.12", "no pyenv 3.12 in %s" % pyenv_root())
    if os.path.exists("/usr/bin/python3"):
        interps.append(("system-python3", ["/usr/bin/python3"]))
    label, cmd = debian_python()
    if label:
        interps.append((label, cmd))
    else:
        RESULTS.out("SKIP", "interpreter debian", cmd)
    if not interps:
        RESULTS.out("FAIL", "setup", "no Python interpreter found")
        return

    for i, (label, cmd) in enumerate(interps):
        tag = "%s-base%d" % (ctx.tag, i)
        try:
            t = Target(label, target_argv(cmd, tag), tag)
        except (RuntimeError, OSError) as e:
            RESULTS.out("FAIL", "setup: target %s" % label, str(e))
            continue
        t.label = "%s %s" % (label, t.truth["version"])
        ctx.targets.append(t)
        ctx.all_targets.append(t)
    say("targets: %s" % ", ".join("%s pid %d" % (t.label, t.pid) for t in ctx.targets))
    say("match: %s" % ctx.regex)
    # Distinct versions for the exec/reuse checks: newest first.
    ctx.interps = []
    seen = set()
    for t, (label, cmd) in zip(ctx.targets, interps):
        if t.truth["version"] not in seen and len(cmd) == 1:
            seen.add(t.truth["version"])
            ctx.interps.append((t.label, cmd))
    if not ctx.targets:
        return

    main = Pymemd(exe, ["--match", ctx.regex, "--interval", str(INTERVAL)], "pymemd")
    ctx.main = main
    try:
        main.start()
    except NotAvailable as e:
        RESULTS.out("SKIP", "all HTTP checks", "this pymemd has no HTTP daemon: %s" % e)
        return
    except Fail as e:
        RESULTS.out("FAIL", "setup: pymemd --listen", str(e))
        return
    say("pymemd: %s" % " ".join(main.argv))

    def t_sampled(c, ctx):
        pids = [t.pid for t in ctx.targets]
        t0 = time.monotonic()
        p = wait_sampled(main, pids)
        if pids and all((p.get(pid) or {}).get("status") == "denied" for pid in pids):
            ctx.denied = (p.get(pids[0]) or {}).get("error") or "denied"
            raise Skip("pymemd may not read the targets (%s): the value checks are "
                       "skipped" % short(ctx.denied, 160))
        for t in ctx.targets:
            pr = p.get(t.pid)
            c.ok(pr is not None and pr.get("status") == "ok",
                 "%s pid %d: not \"ok\" within %.0f s: %s" % (
                     t.label, t.pid, DISCOVERY_WAIT, shown(pr and
                                                           {"status": pr.get("status"),
                                                            "error": pr.get("error")})))
        c.note("all %d targets ok after %.2f s" % (len(pids), time.monotonic() - t0))
    if not case("setup: targets sampled", t_sampled, ctx):
        say("  (continuing; value checks of unsampled targets will fail)")

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
    case("OpenMetrics 1.0.0: format + promtool", t_expo, ctx, "om")
    case("text and OpenMetrics carry the same series", t_expo_same, ctx)
    for t in ctx.targets:
        case("metric values = ground truth: %s pid %d" % (t.label, t.pid), t_values, ctx, t)
    case("pymemd_build_info", t_build_info, ctx)
    case("pymemd --once prints the same document shape", t_once_same, ctx)
    case("GET /api/v1/processes", t_api_list, ctx)
    for t in ctx.targets:
        case("GET /api/v1/processes/{pid}: %s" % t.label, t_api_one, ctx, t)
    case("unwatched pid -> 404 JSON error", t_api_unwatched, ctx)
    case("bad pid strings -> 400/404 JSON error", t_api_badpid, ctx)
    case("objects/growth answer JSON (no census yet is fine)", t_api_census, ctx)
    case("unknown paths -> 404 JSON error", t_404, ctx)
    case("other methods -> 405 JSON error + Allow", t_405, ctx)
    case("odd requests never get 5xx", t_odd_requests, ctx)
    case("keep-alive connection", t_keepalive, ctx)
    case("concurrent requests", t_concurrency, ctx)
    case("stalled clients do not block others", t_slow_clients, ctx)
    case("identity fields stable across samples", t_identity_stable, ctx)
    case("lifecycle: a new target is picked up", t_new_target, ctx)
    case("lifecycle: an exited target is never \"ok\" again", t_target_exit, ctx)
    case("lifecycle: a zombie target is never \"ok\"", t_zombie, ctx)
    case("lifecycle: exec() of another interpreter in place is not mixed", t_exec_in_place, ctx)
    case("lifecycle: a reused PID is not mixed with the old process", t_pid_reuse, ctx)
    case("targets never left stopped (while running)", t_never_stopped, ctx, "while pymemd runs")
    case("SIGTERM -> exit 0 within %.0f s (idle + half-sent connections)" % STOP_LIMIT,
         t_sigterm_busy, ctx)
    case("targets never left stopped (after SIGTERM)", t_never_stopped, ctx, "after pymemd exited")
    case("odd comm/cmdline: valid UTF-8 JSON, escaped labels", t_odd_names, ctx)
    case("no targets: all formats valid; SIGHUP keeps serving; SIGINT -> exit 0",
         t_empty_and_signals, ctx)
    case("--config + SIGHUP keeps serving", t_config_hup, ctx)
    case("port in use -> non-zero exit + message", t_port_in_use, ctx)
    case("port 9100 in use -> message names node_exporter", t_port_9100_in_use, ctx)
    case("targets never left stopped (end)", t_never_stopped, ctx, "at the end")


if __name__ == "__main__":
    sys.exit(main())
