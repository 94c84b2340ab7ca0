#!/usr/bin/python3
"""What pymemd gives away and what a hostile client can do to it (issue 13, items 3-5).

    /usr/bin/python3 test_hardening.py --pymemd build/pymemd

- command lines: redacted by default, full or hidden by setting (flag, config, SIGHUP), on
  every endpoint and format; secrets never in the log;
- the environment: a secret in the target's environment is in no output, and strace shows
  /proc/PID/environ is never opened;
- type keys of same-named classes: no address, the same in two censuses, found by referrers;
- listening beyond loopback: a warning that says what is exposed;
- request paths: %00 and trailing bytes after a pid are 400/404 JSON, never 200, no census;
- connections: 1,000 slow clients (from 100 addresses, and from one) leave every scrape
  answered within 1 s with the target's own values; idle ones are closed;
- libmicrohttpd's log: a client writing garbage for 5 s makes a bounded number of prefixed
  lines, none at --log-level error;
- configuration: an empty file, a FIFO, a directory or a missing file on SIGHUP is refused and
  the running selection kept (no widening to --all); a FIFO at start is refused at once.

The targets are the system python3 running a small script whose first line of output is its
ground truth (its own /proc/self/cmdline, gc thresholds, ids of its classes).
"""
import errno
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pymemdtest import *  # noqa: E402,F401,F403

PY = "/usr/bin/python3"
SECRETS = ("hunter2", "tok-4f1e9a", "pw-9c2d7b")
ENV_SECRET = "env-secret-77a1c3"

# The target: two classes both named Dup (100 and 200 instances), then its ground truth.
TARGET_SRC = r'''
import gc, json, os, sys
def make():
    class Dup(object):
        pass
    return Dup
A = make(); B = make()
keep = [A() for _ in range(100)] + [B() for _ in range(200)]
gc.collect()
with open("/proc/self/cmdline", "rb") as f:
    argv = [a.decode("utf-8") for a in f.read().split(b"\0")[:-1]]
truth = {"pid": os.getpid(), "cmdline": argv, "threshold": list(gc.get_threshold()),
         "enabled": gc.isenabled(), "ids": [id(A), id(B)]}
os.write(1, (json.dumps(truth) + "\n").encode())
os.read(0, 1)
'''


class Ctx(object):
    pass


def wait_for(fn, timeout, step=0.1):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def process_of(inst, pid):
    for p in inst.processes():
        if p.get("pid") == pid:
            return p
    return None


def sampled(inst, pid, timeout=15):
    p = wait_for(lambda: (lambda q: q if q and q.get("status") == "ok" else None)(
        process_of(inst, pid)), timeout)
    if not p:
        raise Fail("pid %d not sampled \"ok\" within %d s: %s; stderr %s" % (
            pid, timeout, shown(process_of(inst, pid)), short(inst.stderr()[-300:])))
    return p


def start_target(ctx, extra_args=()):
    argv = [PY, ctx.script] + list(extra_args)
    return Target("python3 target", argv, env=clean_env(PYMEMD_TEST_SECRET=ENV_SECRET))


def bodies(inst, pid):
    """Every document pymemd serves about pid, by name."""
    out = {}
    for name, path, hdrs in (
            ("/metrics json", "/metrics?format=json", None),
            ("/metrics prometheus", "/metrics?format=prometheus", None),
            ("/metrics openmetrics", "/metrics?format=openmetrics", None),
            ("/api/v1/processes", "/api/v1/processes", None),
            ("/api/v1/processes/PID", "/api/v1/processes/%d" % pid, None),
            ("objects", "/api/v1/processes/%d/objects" % pid, None),
            ("/", "/", None)):
        r = inst.get(path, hdrs)
        out[name] = (r.status, r.body.decode("utf-8", "replace"))
    return out


# ---- command lines and the environment ----------------------------------------------------

def t_cmdline_modes(c, ctx):
    args = ["--db-password", SECRETS[0], "token=" + SECRETS[1],
            "postgres://app:%s@db/app" % SECRETS[2], "--port", "8000"]
    t = start_target(ctx, args)
    try:
        full = " ".join(t.truth["cmdline"])
        redacted = full
        for s in SECRETS:
            redacted = redacted.replace(s, "***")
        c.ok(redacted != full and ctx.script in redacted, "bad test: %s" % redacted)
        # A busy machine can exceed the default pause budget (50 ms): this is not about pauses.
        conf = "interval = 0.2\ncensus_interval = 1\nmax_census_pause = 1\n"
        for mode, flag, want in (("redacted (default)", [], redacted),
                                 ("full", ["--cmdline", "full"], full),
                                 ("hidden", ["--cmdline", "hidden"], None)):
            inst = Pymemd(ctx.exe, ["--pid", str(t.pid), "--log-level", "debug"] + flag,
                          "pymemd --cmdline %s" % mode, conf=conf)
            try:
                inst.start()
                sampled(inst, t.pid)
                path = "/api/v1/processes/%d/objects" % t.pid
                if not wait_for(lambda: inst.get(path).status == 200, 15):
                    raise Fail("no census within 15 s: %s" % inst.get(path).describe())
                p = inst.json("/api/v1/processes/%d" % t.pid)
                c.eq("cmdline, %s" % mode, want, p.get("cmdline"))
                listed = process_of(inst, t.pid)
                c.eq("cmdline in /api/v1/processes, %s" % mode, want, listed.get("cmdline"))
                doc = [q for q in inst.doc()["processes"] if q["pid"] == t.pid]
                c.eq("cmdline in /metrics JSON, %s" % mode, want, doc and doc[0].get("cmdline"))
                for name, (status, body) in bodies(inst, t.pid).items():
                    c.ok(status == 200, "%s answered %d (%s)" % (name, status, mode))
                    c.ok(ENV_SECRET not in body,
                         "the environment's secret is in %s (%s)" % (name, mode))
                    if want != full:
                        for s in SECRETS:
                            c.ok(s not in body, "%r served in %s (%s)" % (s, name, mode))
                inst.stop(signal.SIGTERM)
                log = inst.stderr()
                c.ok(ENV_SECRET not in log, "the environment's secret is in the log (%s)" % mode)
                for s in SECRETS:
                    c.ok(s not in log, "%r is in the log (%s)" % (s, mode))
            finally:
                inst.close()

        # The setting follows the config file across SIGHUP.
        inst = Pymemd(ctx.exe, ["--pid", str(t.pid)], "pymemd (cmdline by config)",
                      conf=conf + "cmdline = full\n")
        try:
            inst.start()
            c.eq("cmdline = full in the config", full, sampled(inst, t.pid).get("cmdline"))
            inst.write_conf(conf + "cmdline = hidden\n")
            os.kill(inst.p.pid, signal.SIGHUP)
            got = wait_for(lambda: process_of(inst, t.pid).get("cmdline") is None, 5)
            c.ok(got, "after SIGHUP to cmdline = hidden, cmdline is still %s" % shown(
                process_of(inst, t.pid).get("cmdline")))
        finally:
            inst.close()
    finally:
        t.close()


def t_environ_never_opened(c, ctx):
    strace = shutil.which("strace")
    if not strace:
        raise Skip("no strace")
    t = start_target(ctx, ["--api-key", SECRETS[0]])
    log = tempfile.NamedTemporaryFile(prefix="pymemd-strace-", delete=False)
    log.close()
    try:
        p = CHILDREN.spawn([strace, "-f", "-qq", "-e", "trace=open,openat,openat2", "-o",
                            log.name, ctx.exe, "--once", "--pid", str(t.pid)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE,
                           # LeakSanitizer cannot run under a tracer (a sanitizer build).
                           env=dict(os.environ, ASAN_OPTIONS=os.environ.get(
                               "ASAN_OPTIONS", "") + ":detect_leaks=0"))
        out, err = p.communicate(timeout=60)
        CHILDREN.reap(p)
        c.ok(p.returncode == 0, "pymemd --once under strace: exit status %s: %s" % (
            p.returncode, short(err.decode("utf-8", "replace"), 300)))
        with open(log.name, errors="replace") as f:
            trace = f.read()
        proc = "/proc/%d/" % t.pid
        opened = sorted(set(re.findall(re.escape(proc) + r"[a-z_/]+", trace)))
        # The positive control: the trace does see what pymemd opens of the target.
        c.ok(proc + "status" in opened and proc + "maps" in opened,
             "strace did not see pymemd open the target's status and maps: %s" % opened)
        c.ok(not any("environ" in o for o in opened),
             "pymemd opened the target's environment: %s" % opened)
        # Of no process at all (a sanitizer runtime reads /proc/self/environ, its own).
        others = sorted(set(re.findall(r"/proc/[0-9]+/environ", trace)))
        c.ok(not others, "pymemd opened %s" % others)
        text = out.decode("utf-8", "replace") + err.decode("utf-8", "replace")
        c.ok(ENV_SECRET not in text, "the environment's secret is in --once's output")
        c.ok(SECRETS[0] not in text, "--api-key's value is in --once's output")
        c.note("opened of the target: %s" % ", ".join(o[len(proc):] for o in opened))
    finally:
        os.unlink(log.name)
        t.close()


# ---- type keys ----------------------------------------------------------------------------

def t_type_keys(c, ctx):
    t = start_target(ctx)
    conf = ("interval = 0.2\ncensus_interval = 0\ncensus_min_interval = 0.1\n"
            "max_census_pause_on_demand = 5\n")
    inst = Pymemd(ctx.exe, ["--pid", str(t.pid)], "pymemd (type keys)", conf=conf)
    try:
        inst.start()
        sampled(inst, t.pid)
        keys = []
        for n in range(2):
            if n:
                time.sleep(0.3)
            st, d = inst.status_json("/api/v1/processes/%d/objects?fresh=1" % t.pid)
            if st != 200:
                raise Fail("objects?fresh=1: %d %s" % (st, shown(d)))
            rows = sorted((x["count"], x["type"]) for x in d["types"] if x["name"] == "Dup")
            keys.append(rows)
        c.eq("Dup counts", [100, 200], [n for n, _ in keys[0]])
        c.eq("the keys of the second census", keys[0], keys[1])
        for n, k in keys[0]:
            c.ok(re.match(r"^Dup~[0-9a-f]{12}$", k), "key %r is not Dup~<12 hex digits>" % k)
            for i in t.truth["ids"]:
                c.ok("%x" % i not in k and "0x" not in k,
                     "key %r holds the address 0x%x" % (k, i))
        for n, k in keys[0]:
            st, d = inst.status_json("/api/v1/processes/%d/referrers?type=%s" % (t.pid, k))
            c.eq("referrers?type=%s: status" % k, 200, st)
            if st == 200:
                c.eq("referrers?type=%s: count" % k, n, d.get("count"))
            time.sleep(0.2)
        c.note("keys %s" % ", ".join(k for _, k in keys[0]))
    finally:
        inst.close()
        t.close()


# ---- listening beyond loopback ------------------------------------------------------------

WARNING = "listening beyond loopback without authentication"


def t_listen_warning(c, ctx):
    for listen, warned in (("0.0.0.0", True), ("127.0.0.1", False)):
        port = free_port()
        inst = Pymemd(ctx.exe, ["--listen", "%s:%d" % (listen, port), "--match",
                                "^no-such-process-[x]yz$"], "pymemd --listen %s" % listen)
        try:
            inst.start(port=port)
            log = inst.stderr()
            c.eq("warning for --listen %s" % listen, warned, WARNING in log)
            if warned:
                line = [x for x in log.splitlines() if WARNING in x][0]
                c.ok(line.startswith("pymemd: warn: "), "not a warning line: %s" % line)
                for what in ("command lines", "type names", "heap", "--web.config.file",
                             "127.0.0.1"):
                    c.ok(what in line, "the warning does not mention %s: %s" % (what, line))
        finally:
            inst.close()


# ---- request paths ------------------------------------------------------------------------

def censuses_of(inst, pid):
    r = inst.get("/metrics?format=prometheus")
    m = re.search(r'^pymemd_censuses_total\{pid="%d",[^}]*\} (\d+)$' % pid, r.text(), re.M)
    return int(m.group(1)) if m else None


def t_paths(c, ctx):
    t = start_target(ctx)
    inst = Pymemd(ctx.exe, ["--pid", str(t.pid)], "pymemd (paths)",
                  conf="interval = 0.2\ncensus_interval = 0\ncensus_min_interval = 0\n")
    try:
        inst.start()
        sampled(inst, t.pid)
        before = censuses_of(inst, t.pid)
        c.ok(before is not None, "no pymemd_censuses_total for the target")
        pid = t.pid
        for path, statuses in (
                ("/api/v1/processes/%d%%00" % pid, (400,)),
                ("/api/v1/processes/%d%%00x" % pid, (400,)),
                ("/api/v1/processes/%d/objects%%00x?fresh=1" % pid, (400,)),
                ("/api/v1/processes/%d%%00/objects?fresh=1" % pid, (400,)),
                ("/api/v1/processes/%d/objects?fresh=1%%00" % pid, (400,)),
                ("/api/v1/processes/%dabc" % pid, (400,)),
                ("/api/v1/processes/%dabc/objects?fresh=1" % pid, (400,)),
                ("/api/v1/processes/%d%%20" % pid, (400,)),
                ("/api/v1/processes/%d/objectsx?fresh=1" % pid, (404,)),
                ("/api/v1/processes/%d/objects/x?fresh=1" % pid, (404,)),
                ("/api/v1/processes/0%d" % pid, (400,)),
                ("/api/v1/processes/+%d" % pid, (400,)),
                ("/metrics%00.json", (400,))):
            r = inst.get(path)
            c.ok(r.status in statuses, "GET %s: expected %s, got %d" % (path, statuses,
                                                                        r.status))
            c.eq("GET %s: Content-Type" % path, "application/json", r.h("Content-Type"))
            try:
                e = r.json()
                c.eq("GET %s: error.code" % path, r.status, e["error"]["code"])
            except (ValueError, KeyError, TypeError):
                c.ok(False, "GET %s: not a JSON error: %s" % (path, short(r.raw, 120)))
        after = censuses_of(inst, t.pid)
        c.eq("censuses taken by those requests", before, after)
        # The control: a well-formed ?fresh=1 does take one.
        c.eq("GET .../objects?fresh=1", 200,
             inst.get("/api/v1/processes/%d/objects?fresh=1" % pid).status)
        c.ok(wait_for(lambda: (censuses_of(inst, pid) or 0) > (after or 0), 3),
             "a well-formed ?fresh=1 took no census (bad control)")
    finally:
        inst.close()
        t.close()


# ---- connections --------------------------------------------------------------------------

def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def slow_clients(port, sources):
    """One connection per source address, each having sent a request line and one header."""
    socks = []
    for src in sources:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((src, 0))
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        socks.append(s)
    # Wait until every connect has completed, then send the start of a request.
    pending = list(socks)
    end = time.monotonic() + 10
    while pending and time.monotonic() < end:
        _, w, _ = select.select([], pending[:500], [], 0.5)
        for s in w:
            pending.remove(s)
            try:
                s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                pass
    return socks


def still_open(socks):
    """How many of socks the server has not closed (a recv would block)."""
    n = 0
    for s in socks:
        try:
            d = s.recv(1, socket.MSG_PEEK)
            if d:
                n += 1          # an answer (e.g. 503) is not a closed connection yet
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def scrape_checks(c, inst, t, what, seconds):
    """Scrapes every 0.25 s for seconds: each answered within 1 s, with the target's values."""
    worst, n = 0.0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            r = request(inst.port, "GET", "/metrics", {"Accept": "text/plain;version=0.0.4"},
                        timeout=5)
        except OSError as e:
            c.ok(False, "%s: a scrape failed: %s" % (what, e))
            return
        took = time.monotonic() - t0
        worst = max(worst, took)
        n += 1
        c.ok(took < 1.0, "%s: a scrape took %.2f s" % (what, took))
        if r.status != 200:
            c.ok(False, "%s: a scrape answered %s" % (what, r.describe()))
            return
        text = r.text()
        for g, want in enumerate(t.truth["threshold"]):
            m = re.search(r'^python_gc_threshold\{pid="%d",[^}]*generation="%d"\} (\S+)$'
                          % (t.pid, g), text, re.M)
            c.ok(m and float(m.group(1)) == want,
                 "%s: python_gc_threshold generation %d: expected %s, got %s" % (
                     what, g, want, m and m.group(1)))
        m = re.search(r'^python_gc_enabled\{pid="%d",[^}]*\} (\S+)$' % t.pid, text, re.M)
        c.ok(m and float(m.group(1)) == (1 if t.truth["enabled"] else 0),
             "%s: python_gc_enabled: %s" % (what, m and m.group(1)))
        time.sleep(max(0, 0.25 - took))
    c.note("%s: %d scrapes, slowest %.3f s" % (what, n, worst))


def t_slow_clients(c, ctx):
    have = raise_nofile(4096)
    if have < 2200:
        raise Skip("RLIMIT_NOFILE of this test is %d" % have)
    t = start_target(ctx)
    inst = Pymemd(ctx.exe, ["--pid", str(t.pid)], "pymemd (slow clients)",
                  conf="interval = 0.2\ncensus_interval = 0\n")
    socks = []
    try:
        inst.start()
        sampled(inst, t.pid)
        # 1,000 slow clients from 100 addresses (10 each, under the per-client limit).
        sources = ["127.0.1.%d" % (1 + i % 100) for i in range(1000)]
        t0 = time.monotonic()
        socks = slow_clients(inst.port, sources)
        held = still_open(socks)
        c.eq("slow clients from 100 addresses held open", 1000, held)
        scrape_checks(c, inst, t, "1,000 slow clients", 3.0)
        # One header line every 10 s is too slow: they are closed after the idle timeout.
        gone = wait_for(lambda: still_open(socks) == 0, 12 - (time.monotonic() - t0), 0.5)
        c.ok(gone, "slow clients still open after %.0f s: %d" % (
            time.monotonic() - t0, still_open(socks)))
        c.note("idle slow clients closed after %.1f s" % (time.monotonic() - t0))
        close_all(socks)

        # 1,000 from one address: it keeps at most 128; the scrape from another is served.
        socks = slow_clients(inst.port, ["127.0.0.2"] * 1000)
        time.sleep(0.5)
        held = still_open(socks)
        c.ok(1 <= held <= 128, "one address holds %d connections (limit 128)" % held)
        scrape_checks(c, inst, t, "1,000 slow clients from one address", 2.0)
        c.note("one address: %d of 1000 held" % held)
        c.ok(inst.alive(), "pymemd died")
    finally:
        close_all(socks)
        inst.close()
        t.close()


def garbage_for(port, seconds):
    """Connects over and over, writing garbage, for seconds. Returns the connections made."""
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            s.sendall(b"\x16\x03\x01garbage \x00\xff\r\nnot: a header\r\n\r\n" * 4)
            try:
                s.recv(4096)
            except OSError:
                pass
            s.close()
            n += 1
        except OSError:
            pass
    return n


def t_log_flood(c, ctx):
    for level, most in (("error", 0), ("warn", 12)):
        inst = Pymemd(ctx.exe, ["--match", "^no-such-process-[x]yz$", "--log-level", level],
                      "pymemd --log-level %s" % level)
        try:
            inst.start()
            before = len(inst.stderr().splitlines())
            n = garbage_for(inst.port, 5.0)
            time.sleep(0.3)
            lines = inst.stderr().splitlines()[before:]
            c.ok(len(lines) <= most, "--log-level %s: %d lines from %d garbage connections "
                 "(at most %d): %s" % (level, len(lines), n, most, shown("\n".join(lines[:5]))))
            bad = [x for x in lines if not re.match(r"^pymemd: (error|warn|info|debug): ", x)]
            c.ok(not bad, "lines without pymemd's prefix: %s" % shown("\n".join(bad[:3])))
            if level == "warn":
                c.ok(any(x.startswith("pymemd: warn: http: ") for x in lines),
                     "no libmicrohttpd line at warn (is the logger wired?): %s" % shown(
                         "\n".join(lines[:3])))
            c.eq("GET /healthz after the flood (%s)" % level, 200, inst.get("/healthz").status)
            c.note("%s: %d connections, %d lines" % (level, n, len(lines)))
        finally:
            inst.close()


# ---- configuration ------------------------------------------------------------------------

def t_reload_refusals(c, ctx):
    t = start_target(ctx, ["--tag", ctx.tag])
    other = start_target(ctx)      # would be watched if the selection widened to --all
    conf = ("interval = 0.2\ndiscovery_interval = 0.2\ncensus_interval = 0\nmatch = %s\n"
            % ctx.tag)
    inst = Pymemd(ctx.exe, [], "pymemd (reload)", conf=conf)
    try:
        inst.start()
        sampled(inst, t.pid)
        c.ok(process_of(inst, other.pid) is None, "the other python is watched before reload")
        path = inst.conf

        def replace(kind):
            if os.path.isdir(path):
                os.rmdir(path)
            elif os.path.lexists(path):
                os.unlink(path)
            if kind == "empty":
                open(path, "w").close()
            elif kind == "fifo":
                os.mkfifo(path)
            elif kind == "directory":
                os.mkdir(path)

        for kind, said in (("empty", "the config file is empty"),
                           ("fifo", "is a FIFO, not a regular file"),
                           ("directory", "is a directory"),
                           ("missing", "No such file or directory")):
            replace(kind)
            mark = len(inst.stderr())
            os.kill(inst.p.pid, signal.SIGHUP)
            log = wait_for(lambda: "keeping the running configuration" in
                           inst.stderr()[mark:] and inst.stderr()[mark:], 3)
            c.ok(log and said in log, "%s config on SIGHUP: not refused within 3 s: %s" % (
                kind, shown(inst.stderr()[mark:][-300:])))
            time.sleep(0.6)      # three discovery rounds
            c.ok(inst.alive(), "pymemd died on a %s config" % kind)
            if not inst.alive():
                return
            c.eq("GET /healthz after a %s config" % kind, 200,
                 inst.get("/healthz", timeout=2).status)
            c.ok(process_of(inst, other.pid) is None,
                 "after a %s config the selection widened: the other python is watched" % kind)
            c.ok(process_of(inst, t.pid) is not None, "after a %s config the target is gone"
                 % kind)
        replace("missing")
    finally:
        inst.close()
        other.close()
        t.close()


def t_start_refusals(c, ctx):
    d = tempfile.mkdtemp(prefix="pymemd-conf-")
    try:
        fifo = os.path.join(d, "fifo.conf")
        os.mkfifo(fifo)
        empty = os.path.join(d, "empty.conf")
        open(empty, "w").close()
        for path, said in ((fifo, "is a FIFO, not a regular file"),
                           (empty, "the config file is empty"),
                           ("/dev/zero", "is a character device"),
                           (d, "is a directory")):
            p = CHILDREN.spawn([ctx.exe, "--config", path, "--listen",
                                "127.0.0.1:%d" % free_port()],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
            try:
                _, err = p.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                c.ok(False, "--config %s: still running after 5 s" % path)
                continue
            finally:
                CHILDREN.reap(p)
            err = err.decode("utf-8", "replace")
            c.eq("--config %s: exit status" % path, 2, p.returncode)
            c.ok(said in err, "--config %s: stderr does not say %r: %s" % (path, said,
                                                                           shown(err)))
    finally:
        shutil.rmtree(d)


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pymemd", required=True)
    opts = ap.parse_args()
    ctx = Ctx()
    ctx.exe = os.path.abspath(opts.pymemd)
    ctx.tag = "hardening-%d-%d" % (os.getpid(), int(time.time()))
    fd, ctx.script = tempfile.mkstemp(prefix="pymemd-hardening-", suffix=".py")
    with os.fdopen(fd, "w") as f:
        f.write(TARGET_SRC)
    os.chmod(ctx.script, 0o644)

    def run():
        try:
            case("cmdline: redacted, full, hidden; secrets in no output and no log",
                 t_cmdline_modes, ctx)
            case("environment: never opened (strace), never served", t_environ_never_opened,
                 ctx)
            case("type keys: no address, stable, found by referrers", t_type_keys, ctx)
            case("listening beyond loopback: a warning naming the risk", t_listen_warning, ctx)
            case("paths: %00 and trailing bytes are JSON 400/404, no census", t_paths, ctx)
            case("1,000 slow clients: scrapes within 1 s, right values; idle ones closed",
                 t_slow_clients, ctx)
            case("a client writing garbage: a bounded, prefixed log", t_log_flood, ctx)
            case("SIGHUP with an empty, FIFO, directory or missing config: refused, "
                 "selection kept", t_reload_refusals, ctx)
            case("start with a FIFO, empty, device or directory config: refused at once",
                 t_start_refusals, ctx)
        finally:
            os.unlink(ctx.script)
    return run_driver("harden: exposure, connections, parsers: %s" % ctx.exe, run)


if __name__ == "__main__":
    sys.exit(main())
