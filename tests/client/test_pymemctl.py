#!/usr/bin/python3
"""Tests of pymemctl, the command-line client (DESIGN.md section 3), against a
real pymemd watching real CPython processes.

    /usr/bin/python3 test_pymemctl.py --pymemd build/pymemd \\
                                      --pymemctl build/client/pymemctl

Starts targets (tests/integration/target.py under pyenv's newest 3.12 when
there is one, and /usr/bin/python3; each prints its own gc/sys values as one
JSON line and then sits still), and two daemons on free loopback ports:

  A  --match TAG --interval 0.3           for the values and the live view
  B  --match TAG --interval 3600 --census-interval 0
                                           whose answers do not change, for
                                           `--json` byte for byte and for a
                                           target without an object census

and checks:
  * ls, show: the targets' own pid, version, thresholds (777, 55, 33), counts
    and get_stats() collections, frozen, garbage, threads, pymalloc arenas;
    RSS shown in human units and near the kernel's VmRSS; '-' for nulls;
  * objects, growth: the census table against the daemon's JSON (Node: 3,000),
    --top, --sort bytes, --fresh; exit 1 with the daemon's message where there
    is no census;
  * --json equal to the daemon's body byte for byte;
  * the same commands against a stand-in server serving the documented JSON
    shapes (3.15 generation fields, nulls, a denied target, growth, hostile
    names, non-pymemd answers, a server that never answers);
  * colour only on a terminal, never with NO_COLOR or --no-color;
  * top in an 80x24 tmux terminal: header, a row per target, sort keys, q,
    Ctrl-C and SIGTERM, the terminal restored (modes, cursor, main screen),
    a daemon that goes away while it runs (and is named after q); top's
    numbers are test_top.py's;
  * usage errors (2), unreachable URLs (3, naming the URL), daemon errors (1);
  * both man pages format without groff warnings and document every option.

Standard library only.  Prints one PASS/FAIL/SKIP line per check and ends
with exactly `N passed, M failed, K skipped`; exit status 0 iff nothing
failed.  Everything it starts runs in its own session and is killed on every
path; tmux runs on a private socket.
"""

import argparse
import json
import os
import pty
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DOC = os.path.join(ROOT, "doc")
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from pymemdtest import (CHILDREN, RESULTS, Check, Fail, Pymemd, Skip, StandIn,  # noqa: E402
                        Target, case, clean_env, err_json, free_port, pyenv_python,
                        pyenv_root, short, target_argv, wait_ok)
from test_top import fmt_short  # noqa: E402  top's narrow units: 512, 13.6K, 135M

INTERVAL = 0.3
DISCOVERY_WAIT = 20.0
GEN0_TOLERANCE = 20  # the target allocates a little after printing its truth
THRESHOLDS = [777, 55, 33]  # what target.py sets

ARGS = None


class Daemon(Pymemd):
    """The shared pymemd wrapper, started at once, whose fetch gives (status, body)."""

    def __init__(self, name, args):
        Pymemd.__init__(self, ARGS.pymemd, args, name)
        self.start()

    def fetch(self, path, timeout=30):
        r = self.get(path, {"Accept": "application/json"}, timeout=timeout)
        return r.status, r.body

    def wait_ok(self, pids, timeout=DISCOVERY_WAIT):
        return wait_ok(self, pids, timeout)


def vmrss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def ctl(*args, env=None, timeout=60, url=None):
    """Runs pymemctl; returns (exit status, stdout, stderr) as text."""
    argv = [ARGS.pymemctl]
    if url:
        argv += ["--url", url]
    argv += list(args)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env or clean_env(), timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def ctl_raw(*args, url=None, timeout=60):
    argv = [ARGS.pymemctl] + (["--url", url] if url else []) + list(args)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=clean_env(), timeout=timeout)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# What pymemctl's output should look like, computed independently

def human(n):
    """pymemctl's units: B below 1 KiB, then KiB..EiB with one decimal."""
    if n is None:
        return "-"
    sign = "-" if n < 0 else ""
    n = abs(n)
    if round(n) < 1024:
        return "%s%d B" % (sign, round(n))
    v = n / 1024.0
    units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    u = 0
    while v >= 1023.95 and u + 1 < len(units):
        v /= 1024.0
        u += 1
    return "%s%.1f %s" % (sign, v, units[u])


def count(n):
    return "-" if n is None else "{:,}".format(int(round(n)))


def delta(n):
    if n is None:
        return "-"
    return "0" if n == 0 else ("+" if n > 0 else "-") + "{:,}".format(abs(int(n)))


def delta_bytes(n):
    if n is None:
        return "-"
    return "0 B" if n == 0 else ("+" if n > 0 else "") + human(n)


def parse_human(s):
    m = re.match(r"^(-?[\d.]+) (B|KiB|MiB|GiB|TiB)$", s)
    if not m:
        return None
    mult = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
    return float(m.group(1)) * mult[m.group(2)]


LS_ROW = re.compile(r"^\s*(\d+)\s+(.+?)\s+(\S+)\s+(\S+)\s+(-|\S+ \S+)\s+(\S+)\s+(\S+)\s+(\S+)"
                    r"\s+(\S+)$")


def ls_rows(out):
    """{pid: dict(name, python, status, rss, gen0..2, objects)} of ls output."""
    lines = out.splitlines()
    if not lines or not re.match(r"^\s*PID\s+NAME\s+PYTHON\s+STATUS\s+RSS\s+GEN0\s+GEN1\s+GEN2"
                                 r"\s+OBJECTS$", lines[0]):
        raise Fail("ls: no header line: %s" % short(out, 200))
    rows = {}
    for line in lines[1:]:
        m = LS_ROW.match(line)
        if m:
            rows[int(m.group(1))] = dict(zip(
                ("name", "python", "status", "rss", "gen0", "gen1", "gen2", "objects"),
                m.groups()[1:]))
    return rows


def kv_lines(out):
    """{label: value} of show's "  label   value" lines (the first of each)."""
    d = {}
    for line in out.splitlines():
        m = re.match(r"^  (\S.{0,18}?)\s{2,}(\S.*)$", line) or \
            re.match(r"^  (\S.{18}) (\S.*)$", line)
        if m and m.group(1).strip() not in d:
            d[m.group(1).strip()] = m.group(2).strip()
    return d


def gen_table(out):
    """Rows of show's generation table: list of dicts keyed by its headers."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s+GEN\s+COUNT\s+THRESHOLD\s+COLLECTIONS", line):
            heads = line.split()
            rows = []
            for row in lines[i + 1:i + 4]:
                cells = re.split(r"\s{2,}", row.strip())
                rows.append(dict(zip(heads, cells)))
            return heads, rows
    raise Fail("show: no generation table: %s" % short(out, 300))


def type_table(out):
    """[(type, [cells...])] of an objects/growth table."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*TYPE\s+COUNT\s+BYTES", line):
            rows = []
            for row in lines[i + 1:]:
                if not row.strip() or row.startswith("..."):
                    break
                cells = re.split(r"\s{2,}", row.strip())
                rows.append((cells[0], cells[1:]))
            return rows
    raise Fail("no TYPE table in: %s" % short(out, 300))


# --------------------------------------------------------------------------
# Cases against the real daemon

class Ctx(object):
    pass


def t_ls(c, ctx):
    before = ctx.a.json("/api/v1/processes")
    rc, out, err = ctl("ls", url=ctx.a.url)
    after = ctx.a.json("/api/v1/processes")
    c.eq("exit status", 0, rc)
    c.eq("stderr", "", err)
    rows = ls_rows(out)
    for t in ctx.targets:
        row = rows.get(t.pid)
        if not c.ok(row, "no row for pid %d (%s): %s" % (t.pid, t.label, short(out))):
            continue
        procs = [dict((p["pid"], p) for p in d["processes"]).get(t.pid) for d in (before, after)]
        c.eq("%s version" % t.label, t.truth["version"], row["python"])
        c.eq("%s status" % t.label, "ok", row["status"])
        c.ok(row["name"] in [p["name"] for p in procs if p],
             "%s name %r is not the daemon's" % (t.label, row["name"]))
        rss_shown = [human(p["memory"]["rss_bytes"]) for p in procs if p]
        c.ok(row["rss"] in rss_shown, "%s rss %r is none of the daemon's %s" % (
            t.label, row["rss"], rss_shown))
        kernel = vmrss(t.pid)
        val = parse_human(row["rss"])
        c.ok(val is not None and abs(val - kernel) <= max(0.1 * kernel, 1 << 20),
             "%s rss %s is not near VmRSS %d" % (t.label, row["rss"], kernel))
        for g in (1, 2):
            c.eq("%s gen%d count (gc.get_count())" % (t.label, g), count(t.truth["get_count"][g]),
                 row["gen%d" % g])
        shown0 = [count(p["gc"]["generations"][0]["count"]) for p in procs if p]
        c.ok(row["gen0"] in shown0, "%s gen0 %r is none of the daemon's %s" % (
            t.label, row["gen0"], shown0))
        g0 = int(row["gen0"].replace(",", ""))
        c.ok(0 <= g0 - t.truth["get_count"][0] <= GEN0_TOLERANCE,
             "%s gen0 %d is not gc.get_count()[0] %d (+%d)" % (
                 t.label, g0, t.truth["get_count"][0], GEN0_TOLERANCE))
        objs = [p.get("objects") for p in procs if p]
        want = [count(o["total"]) if o else "-" for o in objs]
        c.ok(row["objects"] in want, "%s objects %r, daemon says %s" % (
            t.label, row["objects"], want))
    c.note("%d rows" % len(rows))


def show_check(c, t, out, proc):
    kv = kv_lines(out)
    c.ok(out.startswith("pid %d  " % t.pid), "title is not 'pid %d ...': %s" % (
        t.pid, short(out.splitlines()[0] if out else "", 100)))
    c.ok(kv.get("python", "").startswith(t.truth["version"] + " "),
         "python line %r does not start with %s" % (kv.get("python"), t.truth["version"]))
    c.ok(("hexversion %d" % t.truth["hexversion"]) in kv.get("python", ""),
         "python line %r lacks hexversion %d" % (kv.get("python"), t.truth["hexversion"]))
    c.eq("threads (threading.active_count())", count(t.truth["active_count"]), kv.get("threads"))
    c.eq("status", "ok", kv.get("status"))
    c.eq("enabled (gc.isenabled())", "yes" if t.truth["isenabled"] else "no", kv.get("enabled"))
    c.eq("gc.garbage (len(gc.garbage))", count(t.truth["garbage"]), kv.get("gc.garbage"))
    if t.truth.get("get_freeze_count") is not None:
        c.eq("frozen objects (gc.get_freeze_count())", count(t.truth["get_freeze_count"]),
             kv.get("frozen objects"))
    rss = kv.get("resident (rss)", "")
    m = re.match(r"^(\S+ \S+) \(([\d,]+) bytes\)$", rss)
    if c.ok(m, "rss line %r is not 'X MiB (N bytes)'" % rss):
        n = int(m.group(2).replace(",", ""))
        c.eq("rss units of its own bytes", human(n), m.group(1))
        kernel = vmrss(t.pid)
        c.ok(abs(n - kernel) <= max(0.1 * kernel, 1 << 20),
             "rss %d not near VmRSS %d" % (n, kernel))
    # pymalloc: the target's own count, or '-' where the daemon has null (never 0).
    arenas = proc["pymalloc"]["arenas"]
    if arenas is None:
        c.eq("arenas (null in the daemon's JSON)", "-", kv.get("arenas"))
        c.eq("allocated blocks (null)", "-", kv.get("allocated blocks"))
    elif t.truth.get("arenas") is not None:
        c.eq("arenas (sys._debugmallocstats())", count(t.truth["arenas"]), kv.get("arenas"))
    heads, rows = gen_table(out)
    c.ok("CANDIDATES" not in heads, "CANDIDATES column for a version that has none")
    for g in range(3):
        r = rows[g]
        st = t.truth["get_stats"][g]
        c.eq("gen%d GEN" % g, str(g), r.get("GEN"))
        c.eq("gen%d threshold" % g, count(t.truth["get_threshold"][g]), r.get("THRESHOLD"))
        c.eq("gen%d threshold is target.py's" % g, count(THRESHOLDS[g]), r.get("THRESHOLD"))
        c.eq("gen%d collections" % g, count(st["collections"]), r.get("COLLECTIONS"))
        c.eq("gen%d collected" % g, count(st["collected"]), r.get("COLLECTED"))
        c.eq("gen%d uncollectable" % g, count(st["uncollectable"]), r.get("UNCOLLECTABLE"))
        if g > 0:
            c.eq("gen%d count" % g, count(t.truth["get_count"][g]), r.get("COUNT"))
        else:
            c.eq("gen0 count = daemon's", count(proc["gc"]["generations"][0]["count"]),
                 r.get("COUNT"))


def t_show(c, ctx, t):
    rc, out, err = ctl("show", str(t.pid), url=ctx.a.url)
    proc = ctx.a.json("/api/v1/processes/%d" % t.pid)
    c.eq("exit status", 0, rc)
    c.eq("stderr", "", err)
    show_check(c, t, out, proc)
    for section in ("Identity", "Memory", "pymalloc", "Garbage collector", "Objects"):
        c.ok(re.search(r"^%s$" % section, out, re.M), "no %s section" % section)


def t_json_same(c, ctx):
    t = ctx.targets[0]
    for args, path in ((["ls"], "/api/v1/processes"),
                       (["show", str(t.pid)], "/api/v1/processes/%d" % t.pid)):
        st, body = ctx.b.fetch(path)
        rc, out, err = ctl_raw("--json", *args, url=ctx.b.url)
        st2, body2 = ctx.b.fetch(path)
        c.eq("%s: exit status" % " ".join(args), 0, rc)
        if body != body2:
            c.note("daemon B's answer changed between requests; compared with both")
        c.ok(out in (body, body2), "%s --json differs from GET %s: %s vs %s" % (
            " ".join(args), path, short(out, 120), short(body, 120)))
        # --json after the command means the same.
        rc, out3, err = ctl_raw(*(args + ["--json"]), url=ctx.b.url)
        c.ok(rc == 0 and out3 in (body, body2), "%s --json (after the command) differs" %
             args[0])


def t_no_census(c, ctx):
    t = ctx.targets[0]
    for sub, args in (("objects", ["objects", str(t.pid)]), ("growth", ["growth", str(t.pid)])):
        st, body = ctx.b.fetch("/api/v1/processes/%d/%s" % (t.pid, sub))
        if st == 200:
            raise Fail("daemon B (--census-interval 0) has a census for %s" % sub)
        msg = json.loads(body)["error"]["message"]
        rc, out, err = ctl(*args, url=ctx.b.url)
        c.eq("%s: exit status" % sub, 1, rc)
        c.ok(msg in err, "%s: stderr %r lacks the daemon's message %r" % (sub, short(err), msg))
        hint = "pymemctl %s --fresh %d" % (sub, t.pid)
        c.ok(hint in err, "%s: stderr %r does not say what to run (%r)" % (sub, short(err), hint))
        c.eq("%s: stdout" % sub, "", out)
        rc, out, err = ctl("--json", *args, url=ctx.b.url)
        c.eq("%s --json: exit status" % sub, 1, rc)
        c.ok(msg in err, "%s --json: stderr lacks the daemon's message" % sub)


def census_check(c, out, census, top=None, by_bytes=False):
    types = census["types"]
    key = (lambda x: (-x["bytes"], -x["count"], x["type"])) if by_bytes else \
        (lambda x: (-x["count"], -x["bytes"], x["type"]))
    want = sorted(types, key=key)
    if top is not None and top > 0:
        want = want[:top]
    rows = type_table(out)
    c.eq("rows", len(want), len(rows))
    for w, (name, cells) in zip(want, rows):
        c.eq("type", w["type"], name)
        c.eq("%s count" % w["type"], count(w["count"]), cells[0] if cells else None)
        c.eq("%s bytes" % w["type"], human(w["bytes"]), cells[1] if len(cells) > 1 else None)
    c.ok(("%s objects of" % count(census["total"])) in out,
         "header lacks '%s objects of': %s" % (count(census["total"]), short(out, 150)))


def t_objects(c, ctx, t):
    path = "/api/v1/processes/%d/objects" % t.pid
    st, body = ctx.a.fetch(path)
    if st != 200:
        # No census (yet): the command must say the daemon's message and exit 1.
        msg = json.loads(body)["error"]["message"]
        rc, out, err = ctl("objects", str(t.pid), url=ctx.a.url)
        c.eq("exit status without a census", 1, rc)
        c.ok(msg in err, "stderr %r lacks the daemon's message %r" % (short(err), msg))
        c.note("no census: HTTP %d" % st)
        return
    # A census may be taken between pymemctl's request and ours: retry until both
    # saw the same one.
    for attempt in range(3):
        before = json.loads(ctx.a.fetch(path)[1])
        rc, out, err = ctl("objects", str(t.pid), "--top", "0", url=ctx.a.url)
        census = json.loads(ctx.a.fetch(path)[1])
        if census["at"] == before["at"]:
            break
    c.eq("exit status", 0, rc)
    census_check(c, out, census)
    node = [x for x in census["types"] if x["type"] == "Node"]
    c.ok(node and node[0]["count"] == 3000, "the census has no 3000 Node objects: %s" % node)
    c.ok(re.search(r"^Node\s+3,000\s", out, re.M), "no 'Node 3,000' row")
    for attempt in range(3):
        before = json.loads(ctx.a.fetch(path)[1])
        rc, out, err = ctl("objects", str(t.pid), "--top", "3", "--sort", "bytes",
                           url=ctx.a.url)
        census = json.loads(ctx.a.fetch(path)[1])
        if census["at"] == before["at"]:
            break
    c.eq("--sort bytes: exit status", 0, rc)
    census_check(c, out, census, top=3, by_bytes=True)
    c.ok(re.search(r"^\.\.\. %d more types" % (len(census["types"]) - 3), out, re.M),
         "--top 3: no '... N more types' line")
    c.note("%d types" % len(census["types"]))


def t_objects_fresh(c, ctx, t):
    t0 = time.time()
    rc, out, err = ctl("objects", str(t.pid), "--fresh", "--top", "5", url=ctx.a.url)
    if rc != 0:
        st, body = ctx.a.fetch("/api/v1/processes/%d/objects?fresh=1" % t.pid)
        if st == 200:
            raise Fail("objects --fresh: exit %d (%s) though the daemon answers 200" % (
                rc, short(err)))
        c.eq("--fresh without census support: exit status", 1, rc)
        c.note("no census: HTTP %d" % st)
        return
    census = json.loads(ctx.a.fetch("/api/v1/processes/%d/objects" % t.pid)[1])
    c.ok(census["at"] >= t0 - 1, "census at %s is older than the request" % census["at"])
    c.ok(re.search(r"^census at \d\d:\d\d:\d\d \(", out, re.M), "no 'census at' line")
    rows = type_table(out)
    c.eq("--top 5 rows", 5, len(rows))


def t_objects_json(c, ctx, t):
    path = "/api/v1/processes/%d/objects?top=4" % t.pid
    st, body = ctx.a.fetch(path)
    if st != 200:
        rc, out, err = ctl("--json", "objects", str(t.pid), "--top", "4", url=ctx.a.url)
        c.eq("exit status without a census", 1, rc)
        c.note("no census: HTTP %d" % st)
        return
    for attempt in range(3):
        rc, out, err = ctl_raw("--json", "objects", str(t.pid), "--top", "4", url=ctx.a.url)
        st2, body2 = ctx.a.fetch(path)
        if out in (body, body2):
            break
        body = body2
    c.eq("exit status", 0, rc)
    c.ok(out in (body, body2), "--json differs from GET %s" % path)
    c.eq("types listed (top=4 passed on)", 4, len(json.loads(out)["types"]))


def t_growth(c, ctx, t):
    path = "/api/v1/processes/%d/growth" % t.pid
    # Two censuses, so that there is a growth table whatever the census interval.
    for _ in range(2):
        ctx.a.fetch("/api/v1/processes/%d/objects?fresh=1" % t.pid)
    st, body = ctx.a.fetch(path)
    rc, out, err = ctl("growth", str(t.pid), url=ctx.a.url)
    if st != 200:
        msg = json.loads(body)["error"]["message"]
        c.eq("exit status without growth", 1, rc)
        c.ok(msg in err, "stderr %r lacks the daemon's message %r" % (short(err), msg))
        c.note("no growth: HTTP %d" % st)
        return
    g = json.loads(ctx.a.fetch(path)[1])
    c.eq("exit status", 0, rc)
    c.ok(re.search(r"^pid %d: change between the censuses at " % t.pid, out, re.M),
         "no 'change between the censuses' line: %s" % short(out, 150))
    if not g["types"]:
        c.ok("no type changed" in out, "empty growth not said")
    else:
        rows = type_table(out)
        for w, (name, cells) in zip(g["types"], rows):
            c.eq("type", w["type"], name)
            c.eq("%s count" % name, delta(w["count"]), cells[0])
    rc, out, err = ctl_raw("--json", "growth", str(t.pid), url=ctx.a.url)
    st2, body2 = ctx.a.fetch(path)
    c.ok(rc == 0 and out in (body, body2), "growth --json differs from GET %s" % path)


CENSUS_MIN_INTERVAL = 10.0  # pymemd's default


def t_growth_fresh(c, ctx, t):
    """growth --fresh: a census now, then the growth table between it and the one before,
    which is the daemon's growth afterwards. Run once census_min_interval has passed since the
    latest census (inside it, the latest would be the answer and there may be only one)."""
    st, body = ctx.a.fetch("/api/v1/processes/%d/objects?top=1" % t.pid)
    before = json.loads(body) if st == 200 else {}
    if before.get("at"):
        time.sleep(max(0.0, before["at"] + CENSUS_MIN_INTERVAL + 0.5 - time.time()))
    rc, out, err = ctl("growth", "--fresh", str(t.pid), url=ctx.a.url)
    st, body = ctx.a.fetch("/api/v1/processes/%d/growth" % t.pid)
    latest = json.loads(ctx.a.fetch("/api/v1/processes/%d/objects?top=1" % t.pid)[1])
    if st != 200:
        raise Fail("GET growth after growth --fresh: %d %s (pymemctl: %d %s)" % (
            st, short(body), rc, short(err)))
    g = json.loads(body)
    c.eq("exit status", 0, rc)
    c.eq("growth compares up to the latest census", latest.get("at"), g.get("to"))
    c.ok(latest.get("at", 0) > before.get("at", 0),
         "no census taken: the latest is at %s, as before the command" % latest.get("at"))
    c.ok(re.search(r"^pid %d: change between the censuses at " % t.pid, out, re.M),
         "no 'change between the censuses' line: %s" % short(out, 150))
    if not g["types"]:
        c.ok("no type changed" in out, "empty growth not said")
        return
    rows = type_table(out)
    for w, (name, cells) in zip(g["types"], rows):
        c.eq("type", w["type"], name)
        c.eq("%s count" % name, delta(w["count"]), cells[0])
    c.eq("rows", min(len(g["types"]), 20), len(rows))


def t_unknown_pid(c, ctx):
    pid = 1
    while pid in [t.pid for t in ctx.targets]:
        pid += 1
    for cmd in ("show", "objects", "growth"):
        st, body = ctx.a.fetch("/api/v1/processes/%d%s" % (
            pid, "" if cmd == "show" else "/" + cmd))
        msg = json.loads(body)["error"]["message"]
        rc, out, err = ctl(cmd, str(pid), url=ctx.a.url)
        c.eq("%s %d: exit status" % (cmd, pid), 1, rc)
        c.ok(msg in err, "%s: stderr %r lacks the daemon's message %r" % (cmd, short(err), msg))
        c.ok(ctx.a.url in err, "%s: stderr does not name the URL" % cmd)
        c.eq("%s: stdout" % cmd, "", out)


def t_unreachable(c, ctx):
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    for args in (["ls"], ["show", "1"], ["objects", "1"], ["growth", "1"], ["--json", "ls"]):
        t0 = time.monotonic()
        rc, out, err = ctl(*args, url=url, timeout=30)
        took = time.monotonic() - t0
        c.eq("%s: exit status" % " ".join(args), 3, rc)
        c.ok(url in err, "%s: stderr %r does not name %s" % (" ".join(args), short(err), url))
        c.ok(took < 5, "%s: took %.1f s to find nothing listening" % (" ".join(args), took))
    # From the environment, and --url wins over it.
    rc, out, err = ctl("ls", env=clean_env(PYMEMD_URL=url))
    c.eq("PYMEMD_URL unreachable: exit status", 3, rc)
    c.ok(url in err, "PYMEMD_URL: stderr does not name %s" % url)
    rc, out, err = ctl("ls", env=clean_env(PYMEMD_URL=ctx.a.url))
    c.eq("PYMEMD_URL = daemon A: exit status", 0, rc)
    rc, out, err = ctl("--url", ctx.a.url, "ls", env=clean_env(PYMEMD_URL=url))
    c.eq("--url over PYMEMD_URL: exit status", 0, rc)
    rc, out, err = ctl("ls", "--url", ctx.a.url, env=clean_env(PYMEMD_URL=url))
    c.eq("--url after the command over PYMEMD_URL: exit status", 0, rc)
    # host:port without a scheme, a trailing slash.
    rc, out, err = ctl("ls", url="127.0.0.1:%d/" % ctx.a.port)
    c.eq("--url host:port/: exit status", 0, rc)
    # An unresolvable host is unreachable too.
    rc, out, err = ctl("ls", url="http://pymemd-test.invalid:9100", timeout=30)
    c.eq("unresolvable host: exit status", 3, rc)
    c.ok("pymemd-test.invalid" in err, "unresolvable host: not named in %r" % short(err))


def t_usage(c, ctx):
    cases = [
        ([], "no command"),
        (["nope"], "unknown command"),
        (["--bogus", "ls"], "unknown global option"),
        (["ls", "--bogus"], "unknown command option"),
        (["ls", "extra"], "ls with an argument"),
        (["show"], "show without PID"),
        (["show", "abc"], "show with a non-number"),
        (["show", "0"], "show 0"),
        (["show", "-5"], "show negative"),
        (["show", "1", "2"], "show with two PIDs"),
        (["objects"], "objects without PID"),
        (["objects", "1", "--sort", "size"], "--sort size"),
        (["objects", "1", "--top", "x"], "--top x"),
        (["objects", "1", "--top", "-1"], "--top -1"),
        (["objects", "1", "--top"], "--top without value"),
        (["growth", "1", "--sort", "bytes"], "growth --sort"),
        (["top", "--interval", "0"], "top --interval 0"),
        (["top", "--json"], "top --json"),
        (["--url", "ftp://x", "ls"], "ftp URL"),
        (["--url", "http://127.0.0.1:1?x=1", "ls"], "URL with a query"),
        (["--url", "", "ls"], "empty URL"),
        (["help", "nope"], "help for an unknown command"),
    ]
    for args, what in cases:
        rc, out, err = ctl(*args, url=None)
        c.eq("%s (%s): exit status" % (what, " ".join(args)), 2, rc)
        c.ok(err.strip(), "%s: nothing on stderr" % what)
        c.ok(ctx.a.url not in err, "%s: talked to a daemon" % what)
    rc, out, err = ctl("top", url=ctx.a.url)  # stdin/stdout are not a terminal
    c.eq("top without a terminal: exit status", 2, rc)
    c.ok("terminal" in err, "top without a terminal: %r does not say why" % short(err))


def t_help(c, ctx):
    rc, out, err = ctl("--help")
    c.eq("--help: exit status", 0, rc)
    for cmd in ("ls", "show PID", "objects PID", "growth PID", "top", "--url", "--json",
                "--no-color", "PYMEMD_URL"):
        c.ok(cmd in out, "--help does not mention %s" % cmd)
    for cmd, opts in (("ls", []), ("show", []), ("objects", ["--top", "--sort", "--fresh"]),
                      ("growth", ["--top", "--fresh"]),
                      ("top", ["--interval", "--window", "--batch", "--iterations"])):
        for argv in ([cmd, "--help"], ["help", cmd], ["--json", cmd, "-h"],
                     ["--no-color", "help", cmd]):
            rc, out, err = ctl(*argv)
            c.eq("%s: exit status" % " ".join(argv), 0, rc)
            c.ok(out.startswith("Usage: pymemctl %s" % cmd), "%s: no usage line: %s" % (
                " ".join(argv), short(out, 80)))
            for o in opts:
                c.ok(o in out, "%s --help does not mention %s" % (cmd, o))
    rc, out, err = ctl("--version")
    c.ok(rc == 0 and re.match(r"^pymemctl \d+\.\d+", out), "--version: %r" % out)
    # No line of help wider than 80 columns.
    for argv in (["--help"], ["ls", "--help"], ["show", "--help"], ["objects", "--help"],
                 ["growth", "--help"], ["top", "--help"]):
        out = ctl(*argv)[1]
        wide = [l for l in out.splitlines() if len(l) > 80]
        c.ok(not wide, "%s: lines wider than 80 columns: %s" % (" ".join(argv), wide[:1]))


def run_pty(args, env):
    """Runs pymemctl with stdout on a pseudo-terminal; returns its output bytes."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([ARGS.pymemctl] + args, stdin=subprocess.DEVNULL, stdout=slave,
                             stderr=subprocess.PIPE, env=env, start_new_session=True)
        os.close(slave)
        slave = -1
        out = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        p.wait(timeout=10)
        p.stderr.close()
        return p.returncode, out
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)


def t_color(c, ctx):
    t = ctx.targets[0]
    for args in (["ls"], ["show", str(t.pid)]):
        rc, out = run_pty(["--url", ctx.a.url] + args, clean_env(TERM="xterm"))
        c.eq("%s on a terminal: exit status" % args[0], 0, rc)
        c.ok(b"\x1b[" in out, "%s on a terminal: no colour" % args[0])
        rc, out = run_pty(["--url", ctx.a.url] + args, clean_env(TERM="xterm", NO_COLOR="1"))
        c.ok(rc == 0 and b"\x1b" not in out, "%s with NO_COLOR=1: escape sequences" % args[0])
        rc, out = run_pty(["--url", ctx.a.url, "--no-color"] + args, clean_env(TERM="xterm"))
        c.ok(rc == 0 and b"\x1b" not in out, "%s --no-color: escape sequences" % args[0])
        rc, out = run_pty(["--url", ctx.a.url] + args + ["--no-color"], clean_env(TERM="xterm"))
        c.ok(rc == 0 and b"\x1b" not in out, "%s ... --no-color: escape sequences" % args[0])
        rc, out, err = ctl_raw(*args, url=ctx.a.url)
        c.ok(rc == 0 and b"\x1b" not in out, "%s into a pipe: escape sequences" % args[0])
    # An empty NO_COLOR does not count (no-color.org).
    rc, out = run_pty(["--url", ctx.a.url, "ls"], clean_env(TERM="xterm", NO_COLOR=""))
    c.ok(b"\x1b[" in out, "ls with NO_COLOR='': no colour")


# --------------------------------------------------------------------------
# A stand-in server with the documented JSON shapes

NOW = time.time()

FAKE_OK = {
    "pid": 4242, "name": "gunicorn", "cmdline": "gunicorn: worker [app]",
    "exe": "/usr/bin/python3.15", "start_time": NOW - 7200, "status": "ok",
    "error": "pymalloc: allocated blocks not reachable",
    "python": {"version": "3.15.0", "hexversion": 51314928, "build": "static"},
    "threads": 4,
    "memory": {"rss_bytes": 1610612736, "vms_bytes": 4 << 30, "anon_bytes": 1288490189,
               "swap_bytes": None, "pss_bytes": None, "peak_rss_bytes": 2147483648},
    "pymalloc": {"arenas": 1234, "arenas_highwater": 1300, "arena_bytes": 1293942784,
                 "allocated_blocks": None},
    "gc": {"enabled": False, "collecting": False, "frozen": 0, "garbage": 3, "heap_size": None,
           "generations": [
               {"generation": 0, "count": 12, "threshold": 2000, "collections": 123456,
                "collected": 7890123, "uncollectable": 0, "candidates": 456789,
                "duration_seconds": 1.25},
               {"generation": 1, "count": 3, "threshold": 10, "collections": 12345,
                "collected": 1000, "uncollectable": 7, "candidates": 5678,
                "duration_seconds": 0.0042},
               {"generation": 2, "count": 0, "threshold": 0, "collections": 12,
                "collected": 0, "uncollectable": 0, "candidates": None,
                "duration_seconds": None}],
           "busy_ratio_estimate": 0.125},
    "objects": {"at": NOW - 5, "total": 1234567, "pause_seconds": 0.0123,
                "walk_seconds": 0.0456,
                "types": [{"type": "dict", "count": 500000, "bytes": 52428800},
                          {"type": "Leak", "count": 300000, "bytes": 24000000},
                          {"type": "list", "count": 200000, "bytes": 96000000},
                          {"type": "tuple", "count": 150000, "bytes": 1000},
                          {"type": "function", "count": 84567, "bytes": 13530720}]},
    "sampled_at": NOW, "sample_seconds": 0.00002,
}

FAKE_DENIED = {
    "pid": 4343, "name": "celery", "cmdline": "celery worker", "start_time": NOW - 60,
    "status": "denied", "error": "reading its memory needs CAP_SYS_PTRACE",
    "python": None, "threads": None,
    "memory": {"rss_bytes": None, "vms_bytes": None, "anon_bytes": None, "swap_bytes": None,
               "pss_bytes": None, "peak_rss_bytes": None},
    "pymalloc": None, "gc": None, "objects": None, "sampled_at": NOW, "sample_seconds": None,
}

# A name that tries to set the terminal's title and move the cursor.
FAKE_EVIL = dict(FAKE_DENIED, pid=4444, name="evil\x1b]0;pwned\x07\x1b[2J\u202e",
                 status="error", error="bad\x1b[31m red")

FAKE_GROWTH = {"pid": 4242, "from": NOW - 65, "to": NOW - 5,
               "types": [{"type": "Leak", "count": 30000, "bytes": 2400000},
                         {"type": "dict", "count": 1200, "bytes": 98304},
                         {"type": "str", "count": 0, "bytes": 0},
                         {"type": "tuple", "count": -5, "bytes": -320}]}


class Fake(StandIn):
    """routes[path] = (status, content type, body); requests: the paths asked, query
    included; /hang... is never answered."""

    def __init__(self):
        self.requests = []
        procs = [FAKE_OK, FAKE_DENIED, FAKE_EVIL]
        self.routes = {
            "/api/v1/processes": (200, "application/json",
                                  json.dumps({"processes": procs}).encode()),
            "/api/v1/processes/4242/objects": (200, "application/json",
                                               json.dumps(FAKE_OK["objects"]).encode()),
            "/api/v1/processes/4242/growth": (200, "application/json",
                                              json.dumps(FAKE_GROWTH).encode()),
            # Behind a path prefix (a reverse proxy), watching nothing yet.
            "/prefix/api/v1/processes": (200, "application/json", b'{"processes":[]}'),
            "/api/v1/processes/4343/objects": (
                404, "application/json", err_json(404, "no object census of process 4343: "
                                                       "status denied")),
        }
        for p in procs:
            self.routes["/api/v1/processes/%d" % p["pid"]] = (200, "application/json",
                                                              json.dumps(p).encode())
        StandIn.__init__(self)

    def answer(self, path):
        self.requests.append(path)
        path = path.split("?")[0]
        if path.startswith("/hang"):
            time.sleep(12)
            return None
        return self.routes.get(path, (
            404, "application/json", err_json(404, "no such path: %s" % path)))


def t_fake_ls(c, fake):
    rc, out, err = ctl("ls", url=fake.url)
    c.eq("exit status", 0, rc)
    rows = ls_rows(out)
    ok = rows.get(4242) or {}
    c.eq("rss 1.5 GiB", "1.5 GiB", ok.get("rss"))
    c.eq("gen0", "12", ok.get("gen0"))
    c.eq("objects", "1,234,567", ok.get("objects"))
    c.eq("python", "3.15.0", ok.get("python"))
    den = rows.get(4343) or {}
    c.eq("denied: status", "denied", den.get("status"))
    for k in ("rss", "gen0", "gen1", "gen2", "objects", "python"):
        c.eq("denied: %s is '-', never 0" % k, "-", den.get(k))
    c.ok(re.search(r"^pid 4343 \(celery\): denied: reading its memory needs CAP_SYS_PTRACE$",
                   out, re.M), "no line explaining the denied target: %s" % short(out, 400))
    c.ok("\x1b" not in out and "\x07" not in out and "\u202e" not in out,
         "a target's name or error reached the terminal raw")
    c.ok(re.search(r"^pid 4444 \(evil\?\]0;pwned\?\?\[2J\?\): error: bad\?\[31m red$", out,
                   re.M), "hostile name not shown cleaned: %r" % [
        l for l in out.splitlines() if "4444" in l])
    c.ok(re.search(r"^pid 4242", out, re.M) is None, "a line for the ok target")


def t_fake_empty(c, fake):
    rc, out, err = ctl("ls", url=fake.url + "/prefix/")
    c.eq("exit status", 0, rc)
    c.eq("request", "/prefix/api/v1/processes", fake.requests[-1])
    c.eq("output", "pymemd at %s/prefix watches no Python process (yet).\n" % fake.url, out)


def t_fake_show(c, fake):
    rc, out, err = ctl("show", "4242", url=fake.url)
    c.eq("exit status", 0, rc)
    kv = kv_lines(out)
    c.eq("swap (null)", "-", kv.get("swap"))
    c.eq("pss (null)", "-", kv.get("proportional (pss)"))
    c.eq("peak", "2.0 GiB (2,147,483,648 bytes)", kv.get("peak resident"))
    c.eq("allocated blocks (null)", "-", kv.get("allocated blocks"))
    c.eq("arenas", "1,234", kv.get("arenas"))
    c.eq("busy", "12.5%", kv.get("busy (estimate)"))
    c.eq("enabled", "no", kv.get("enabled"))
    c.eq("gc.garbage", "3", kv.get("gc.garbage"))
    c.eq("error of an ok target", FAKE_OK["error"], kv.get("error"))
    c.ok("heap size" not in kv, "heap size shown though null")
    heads, rows = gen_table(out)
    c.eq("3.15 columns", ["GEN", "COUNT", "THRESHOLD", "COLLECTIONS", "COLLECTED",
                          "UNCOLLECTABLE", "CANDIDATES", "TIME"], heads)
    c.eq("gen0 candidates", "456,789", rows[0].get("CANDIDATES"))
    c.eq("gen0 time", "1.25 s", rows[0].get("TIME"))
    c.eq("gen1 time", "4.2 ms", rows[1].get("TIME"))
    c.eq("gen1 uncollectable", "7", rows[1].get("UNCOLLECTABLE"))
    c.eq("gen2 candidates (null)", "-", rows[2].get("CANDIDATES"))
    c.eq("gen2 time (null)", "-", rows[2].get("TIME"))
    c.eq("gen0 collections", "123,456", rows[0].get("COLLECTIONS"))
    c.eq("census objects", "1,234,567", kv.get("objects"))
    c.eq("census stopped", "12.3 ms", kv.get("stopped for"))
    rc, out, err = ctl("show", "4343", url=fake.url)
    c.eq("denied: exit status", 0, rc)
    c.ok(re.search(r"^pid 4343 \(celery\): denied: reading its memory needs CAP_SYS_PTRACE$",
                   out, re.M), "show of a denied target does not say why first")
    kv = kv_lines(out)
    for k in ("resident (rss)", "arenas", "threads", "enabled", "python"):
        c.eq("denied: %s" % k, "-", kv.get(k))
    c.ok("no object census" in out, "denied: census section does not say there is none")


def t_fake_objects(c, fake):
    rc, out, err = ctl("objects", "4242", url=fake.url)
    c.eq("exit status", 0, rc)
    census_check(c, out, FAKE_OK["objects"])
    c.ok(re.search(r"^dict\s+500,000\s+50\.0 MiB\s+105 B$", out, re.M),
         "dict row: %s" % short(out))
    rc, out, err = ctl("objects", "4242", "--sort", "bytes", "--top", "2", url=fake.url)
    census_check(c, out, FAKE_OK["objects"], top=2, by_bytes=True)
    c.ok("... 3 more types (--top 0 shows all)" in out, "--top 2: no '... 3 more types'")
    c.eq("--top 2: request", "/api/v1/processes/4242/objects", fake.requests[-1])
    rc, out, err = ctl("objects", "4242", "--fresh", url=fake.url)
    c.eq("--fresh: request", "/api/v1/processes/4242/objects?fresh=1", fake.requests[-1])
    rc, out, err = ctl_raw("--json", "objects", "4242", "--top", "3", "--fresh", url=fake.url)
    c.eq("--json --top 3 --fresh: request", "/api/v1/processes/4242/objects?fresh=1&top=3",
         fake.requests[-1])
    c.eq("--json: body unchanged", fake.routes["/api/v1/processes/4242/objects"][2], out)
    rc, out, err = ctl("objects", "4343", url=fake.url)
    c.eq("no census: exit status", 1, rc)
    c.ok("no object census of process 4343: status denied" in err, "no census: %r" % err)


def t_fake_growth(c, fake):
    rc, out, err = ctl("growth", "4242", url=fake.url)
    c.eq("exit status", 0, rc)
    rows = type_table(out)
    want = [("Leak", ["+30,000", "+2.3 MiB"]), ("dict", ["+1,200", "+96.0 KiB"]),
            ("str", ["0", "0 B"]), ("tuple", ["-5", "-320 B"])]
    c.eq("rows", want, rows)
    c.ok(re.search(r"^pid 4242: change between the censuses at \S+ and \S+ \(60 s apart\)$",
                   out, re.M), "header: %s" % short(out.splitlines()[0] if out else "", 120))
    rc, out, err = ctl("growth", "4242", "--top", "1", url=fake.url)
    c.eq("--top 1 rows", 1, len(type_table(out)))
    c.ok("... 3 more types" in out, "--top 1: no '... 3 more types'")
    rc, out, err = ctl_raw("--json", "growth", "4242", url=fake.url)
    c.eq("--json: body unchanged", fake.routes["/api/v1/processes/4242/growth"][2], out)


def t_fake_not_pymemd(c, fake):
    fake.routes["/api/v1/processes/9001"] = (500, "text/plain", b"Internal Server Error\n")
    fake.routes["/api/v1/processes/9002"] = (200, "text/html", b"<html>node_exporter</html>")
    fake.routes["/api/v1/processes/9003"] = (503, "application/json",
                                             err_json(503, "the first sample is not taken yet"))
    rc, out, err = ctl("show", "9001", url=fake.url)
    c.eq("500 text: exit status", 1, rc)
    c.ok("HTTP 500" in err and fake.url in err, "500 text: %r" % short(err))
    rc, out, err = ctl("show", "9002", url=fake.url)
    c.eq("200 HTML: exit status", 1, rc)
    c.ok("JSON" in err and fake.url in err, "200 HTML: %r" % short(err))
    rc, out, err = ctl("show", "9003", url=fake.url)
    c.eq("503: exit status", 1, rc)
    c.ok("the first sample is not taken yet" in err, "503: %r" % short(err))
    rc, out, err = ctl("show", "9003", "--json", url=fake.url)
    c.eq("503 --json: exit status", 1, rc)
    c.eq("503 --json: stdout", "", out)


def t_fake_timeout(c, fake):
    t0 = time.monotonic()
    rc, out, err = ctl("ls", url=fake.url + "/hang", timeout=40)
    took = time.monotonic() - t0
    c.eq("exit status", 3, rc)
    c.ok(9 <= took <= 15, "gave up after %.1f s, not 10" % took)
    c.ok(fake.url in err and "timed out" in err.lower(), "message: %r" % short(err))
    c.note("%.1f s" % took)


# --------------------------------------------------------------------------
# top in tmux

class Tmux(object):
    """An interactive bash (with job control, as a person has it) in a tmux
    server of our own (its own socket), 80x24 unless told otherwise."""

    serial = 0

    def __init__(self, name, width=80, height=24):
        # A socket of its own each time: a server just killed may still be going away.
        Tmux.serial += 1
        self.sock = "pymemctl-test-%d-%s-%d" % (os.getpid(), name, Tmux.serial)
        self.tmp = tempfile.mkdtemp(prefix="pymemctl-tmux-")
        self.env = clean_env(TMUX=None, TERM="xterm-256color", PS1="$ ", HISTFILE="/dev/null")
        self.socket_path = None
        try:
            self.tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
                      "bash", "--norc", "--noprofile", "-i")
            self.socket_path = self.flag("#{socket_path}")
            self.wait_for(lambda s: s.rstrip().endswith("$"), what="the shell's prompt")
        except BaseException:
            self.close()
            raise

    def tmux(self, *args, check=True):
        r = subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                           timeout=20, universal_newlines=True)
        if check and r.returncode != 0:
            raise Fail("tmux %s: %s" % (" ".join(args), short(r.stderr)))
        return r.stdout

    def line(self, text):
        """Types a command line into the shell."""
        self.tmux("send-keys", "-t", "t", "-l", text)
        self.tmux("send-keys", "-t", "t", "Enter")

    def run(self, argv):
        """Runs argv from the shell, recording the terminal's modes before and
        after and the exit status."""
        q = " ".join("'%s'" % a.replace("'", "'\\''") for a in argv)
        self.line("clear; stty -g > %(d)s/before; echo BEFORE-PYMEMCTL; %(q)s; echo EXIT=$? > "
                  "%(d)s/exit; stty -g > %(d)s/after; echo AFTER-PYMEMCTL" % {"d": self.tmp,
                                                                           "q": q})

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t")

    def wait_for(self, pred, timeout=10, what="screen"):
        deadline = time.monotonic() + timeout
        s = ""
        while time.monotonic() < deadline:
            s = self.screen()
            try:
                if pred(s):
                    return s
            except IndexError:
                pass
            time.sleep(0.1)
        raise Fail("%s did not appear within %.0f s; the screen:\n%s" % (what, timeout, s))

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def flag(self, fmt):
        return self.tmux("display-message", "-p", "-t", "t", fmt).strip()

    def file(self, name):
        try:
            with open(os.path.join(self.tmp, name)) as f:
                return f.read().strip()
        except OSError:
            return None

    def child_pid(self):
        """pid of pymemctl, a child of the pane's shell."""
        pane = int(self.flag("#{pane_pid}"))
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            # Bytes: any process on the machine may have a name that is not UTF-8 (the
            # lifecycle test, running alongside, names one with a cut UTF-8 sequence).
            try:
                with open("/proc/%s/stat" % d, "rb") as f:
                    st = f.read()
            except OSError:
                continue
            comm = st[st.index(b"(") + 1:st.rindex(b")")]
            ppid = int(st[st.rindex(b")") + 2:].split()[1])
            if ppid == pane and comm == b"pymemctl":
                return int(d)
        return None

    def close(self):
        self.tmux("kill-server", check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.socket_path:
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass


def need_tmux():
    if not shutil.which("tmux"):
        raise Skip("tmux is not installed (Debian package tmux)")
    if not shutil.which("bash"):
        raise Skip("bash is not installed")


def top_rows(screen):
    """[(pid, line)] of the process rows on a top screen."""
    lines = screen.splitlines()
    rows = []
    for i, line in enumerate(lines):
        if re.match(r"^\s*PID\s+NAME\s", line):
            for row in lines[i + 1:]:
                m = re.match(r"^\s*(\d+)\s", row)
                if not m:
                    break
                rows.append((int(m.group(1)), row))
            break
    return rows


def on_top(s):
    return "q quit  ? help" in s or re.search(r"^pymemctl top - ", s, re.M)


def top_header(screen):
    for line in screen.splitlines():
        if re.match(r"^\s*PID\s+NAME\s", line):
            return line.split()
    return []


def check_restored(c, tm, code):
    s = tm.wait_for(lambda s: "AFTER-PYMEMCTL" in s, what="the shell after pymemctl")
    c.eq("exit status", "EXIT=%d" % code, tm.file("exit"))
    c.eq("terminal modes (stty -g) restored", tm.file("before"), tm.file("after"))
    c.eq("back on the main screen", "0", tm.flag("#{alternate_on}"))
    c.eq("cursor visible", "1", tm.flag("#{cursor_flag}"))
    c.ok("BEFORE-PYMEMCTL" in s and not on_top(s),
         "the main screen is not what it was: %s" % short(s, 300))
    return s


def t_top(c, ctx):
    need_tmux()
    tm = Tmux("main")
    try:
        tm.run([ARGS.pymemctl, "--url", ctx.a.url, "top"])
        pids = sorted(t.pid for t in ctx.targets)
        s = tm.wait_for(lambda s: len(top_rows(s)) >= len(pids), what="a row per target")
        lines = s.splitlines()
        c.ok(lines[0].startswith("pymemctl top - %s - " % ctx.a.url), "title: %r" % lines[0])
        c.ok(re.search(r"^\d+ processes, \d+ ok; rss \S+ \S+, objects \S+; sort: rss$",
                       lines[1]), "summary: %r" % lines[1])
        heads = top_header(s)
        c.eq("column header", lines[3].split(), heads)
        for col in ("PID", "NAME", "RSS", "\u0394RSS", "HEAP", "OBJECTS"):
            c.ok(col in heads, "80 columns: no %s column: %r" % (col, heads))
        c.ok("COMMAND" not in heads, "80 columns: a COMMAND column: %r" % heads)
        c.eq("alternate screen on", "1", tm.flag("#{alternate_on}"))
        c.eq("cursor hidden", "0", tm.flag("#{cursor_flag}"))
        c.eq("screen lines", 24, len(lines))
        c.ok(all(len(l) <= 80 for l in lines), "a line wider than 80 columns")
        c.ok(lines[-1].startswith("q quit"), "no key help on the last line: %r" % lines[-1])
        procs = ctx.a.json("/api/v1/processes")["processes"]
        byp = dict((p["pid"], p) for p in procs)
        for t in ctx.targets:
            row = dict(top_rows(s)).get(t.pid, "")
            p = byp[t.pid]
            c.ok(p["name"][:6] in row, "row of %d lacks name %r: %r" % (t.pid, p["name"], row))
            rss = fmt_short(p["memory"]["rss_bytes"], 1024)
            c.ok(re.search(r"\s%s\s" % re.escape(rss), row),
                 "row of %d lacks rss %s: %r" % (t.pid, rss, row))
            heap = fmt_short((p.get("pymalloc") or {}).get("arena_bytes"), 1024)
            c.ok(re.search(r"\s%s\s" % re.escape(heap), row),
                 "row of %d lacks heap %s: %r" % (t.pid, heap, row))
            if p.get("objects"):
                # The count, and the census's age after it.
                objs = fmt_short(p["objects"]["total"], 1000)
                c.ok(re.search(r"\s%s \([\d.]+ s ago\)" % re.escape(objs), row),
                     "row of %d lacks objects %s (N s ago): %r" % (t.pid, objs, row))
        order = [pid for pid, _ in top_rows(s)]
        rss = dict((p["pid"], p["memory"]["rss_bytes"]) for p in procs)
        want = sorted(order, key=lambda pid: (-rss.get(pid, 0), pid))
        c.eq("rows by rss, largest first", want, order)
        # Sort keys.
        tm.keys("p")
        s = tm.wait_for(lambda s: s.splitlines()[1].endswith("sort: pid"), what="sort: pid")
        order = [pid for pid, _ in top_rows(s)]
        c.eq("rows by pid after 'p'", sorted(order), order)
        tm.keys("R")
        s = tm.wait_for(lambda s: s.splitlines()[1].endswith("sort: pid (reversed)"),
                        what="sort: pid (reversed)")
        order = [pid for pid, _ in top_rows(s)]
        c.eq("rows by pid, reversed after 'R'", sorted(order, reverse=True), order)
        for key, name in (("o", "objects"), ("c", "gen0 count"), ("n", "name"), ("h", "heap"),
                          ("b", "busy"), ("g", "rss change"), ("G", "heap change"),
                          ("s", "gc/s"), ("r", "rss")):
            tm.keys(key)
            tm.wait_for(lambda s: s.splitlines()[1].endswith("sort: " + name),
                        what="sort: %s after '%s'" % (name, key))
        # Wider: the command line gets a column; back to 80: it goes.
        tm.tmux("resize-window", "-t", "t", "-x", "140", "-y", "30")
        s = tm.wait_for(lambda s: "COMMAND" in s, what="a COMMAND column at 140 columns")
        heads = top_header(s)
        for col in ("PYTHON", "GEN0", "GEN1", "GEN2", "GC/s", "RSS/s"):
            c.ok(col in heads, "140 columns: no %s column: %r" % (col, heads))
        at = [l for l in s.splitlines() if re.match(r"^\s*PID\s+NAME\s", l)][0].find("COMMAND")
        for pid, row in top_rows(s):
            cmd = byp.get(pid, {}).get("cmdline") or ""
            cell = row[at:].rstrip().rstrip("\u2026")
            c.ok(len(cell) >= 11 and cmd.startswith(cell),
                 "COMMAND of %d is not the start of %r: %r" % (pid, cmd, row))
        for t in ctx.targets:
            row = dict(top_rows(s)).get(t.pid, "")
            c.ok(re.search(r"\s%s\s" % re.escape(t.truth["version"]), row),
                 "row of %d lacks version: %r" % (t.pid, row))
            c.ok(re.search(r"\s%s\s+%s\s" % (count(t.truth["get_count"][1]),
                                             count(t.truth["get_count"][2])), row),
                 "row of %d lacks gen1/gen2 counts %s: %r" % (
                     t.pid, t.truth["get_count"][1:], row))
        tm.tmux("resize-window", "-t", "t", "-x", "80", "-y", "24")
        tm.wait_for(lambda s: "COMMAND" not in s and len(s.splitlines()) == 24,
                    what="no COMMAND column at 80 columns")
        tm.keys("q")
        check_restored(c, tm, 0)
    finally:
        tm.close()


def t_top_signals(c, ctx):
    need_tmux()
    for how, code in (("C-c", 0), ("SIGTERM", 128 + signal.SIGTERM),
                      ("SIGHUP", 128 + signal.SIGHUP)):
        tm = Tmux("sig")
        try:
            tm.run([ARGS.pymemctl, "--url", ctx.a.url, "top", "--interval", "0.5"])
            tm.wait_for(lambda s: top_rows(s), what="top's rows")
            if how == "C-c":
                tm.keys("C-c")
            else:
                pid = tm.child_pid()
                if not c.ok(pid, "%s: pymemctl's pid not found" % how):
                    continue
                os.kill(pid, getattr(signal, how))
            sub = Check()
            try:
                check_restored(sub, tm, code)
            except Fail as e:
                sub.diffs.append(str(e))
            c.diffs += ["%s: %s" % (how, d) for d in sub.diffs]
        finally:
            tm.close()


def t_top_suspend(c, ctx):
    need_tmux()
    tm = Tmux("tstp")
    try:
        tm.line("stty -g > %s/before" % tm.tmp)
        tm.line("'%s' --url %s top" % (ARGS.pymemctl, ctx.a.url))
        tm.wait_for(lambda s: top_rows(s), what="top's rows")
        tm.keys("C-z")
        s = tm.wait_for(lambda s: "Stopped" in s and not on_top(s),
                        what="the shell's 'Stopped' after Ctrl-Z")
        c.eq("stopped: back on the main screen", "0", tm.flag("#{alternate_on}"))
        c.eq("stopped: cursor visible", "1", tm.flag("#{cursor_flag}"))
        tm.line("stty -g > %s/during" % tm.tmp)
        tm.wait_for(lambda s: tm.file("during"), what="stty -g while stopped")
        c.eq("stopped: terminal modes restored", tm.file("before"), tm.file("during"))
        tm.line("fg")
        tm.wait_for(lambda s: top_rows(s), what="top's rows again after fg")
        c.eq("continued: alternate screen", "1", tm.flag("#{alternate_on}"))
        tm.keys("q")
        tm.line("echo EXIT=$? > %(d)s/exit; stty -g > %(d)s/after; echo AFTER-PYMEMCTL" %
                {"d": tm.tmp})
        s = tm.wait_for(lambda s: "AFTER-PYMEMCTL" in s.replace("echo AFTER", ""),
                        what="the shell after q")
        c.eq("exit status", "EXIT=0", tm.file("exit"))
        c.eq("terminal modes restored", tm.file("before"), tm.file("after"))
        c.eq("back on the main screen", "0", tm.flag("#{alternate_on}"))
    finally:
        tm.close()


def t_top_unreachable(c, ctx):
    need_tmux()
    url = "http://127.0.0.1:%d" % free_port()
    tm = Tmux("unreach")
    try:
        tm.run([ARGS.pymemctl, "--url", url, "top"])
        s = tm.wait_for(lambda s: "AFTER-PYMEMCTL" in s.replace("echo AFTER", ""),
                        what="the shell after top")
        c.eq("exit status", "EXIT=3", tm.file("exit"))
        c.ok("cannot reach pymemd at %s" % url in s.replace("\n", ""),
             "no message naming %s: %s" % (url, short(s, 300)))
        c.eq("terminal modes untouched", tm.file("before"), tm.file("after"))
        c.eq("main screen", "0", tm.flag("#{alternate_on}"))
    finally:
        tm.close()


def t_top_daemon_gone(c, ctx):
    need_tmux()
    d = Daemon("pymemd C", ["--match", ctx.tag, "--interval", str(INTERVAL)])
    tm = None
    try:
        d.wait_ok([t.pid for t in ctx.targets])
        tm = Tmux("gone")
        tm.run([ARGS.pymemctl, "--url", d.url, "top", "--interval", "0.3"])
        tm.wait_for(lambda s: len(top_rows(s)) >= len(ctx.targets), what="top's rows")
        d.stop()
        s = tm.wait_for(lambda s: "cannot reach pymemd at %s" % d.url in s,
                        what="the unreachable daemon's message")
        c.ok(len(top_rows(s)) >= len(ctx.targets), "the last data is no longer shown")
        c.ok(tm.child_pid(), "top exited when the daemon went away")
        tm.keys("q")
        s = check_restored(c, tm, 0)
        c.ok("pymemctl: when top ended: cannot reach pymemd at %s" % d.url in s.replace("\n", ""),
             "the daemon's absence is not said on the main screen: %s" % short(s, 300))
    finally:
        if tm:
            tm.close()
        d.stop()


# --------------------------------------------------------------------------
# Manual pages

def t_man(c, ctx):
    groff = shutil.which("groff")
    if not groff:
        raise Skip("groff is not installed (Debian package groff-base)")
    for page in ("pymemctl.1", "pymemd.8"):
        path = os.path.join(DOC, page)
        if not c.ok(os.path.exists(path), "%s is missing" % path):
            continue
        r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
        c.ok(r.returncode == 0 and not r.stderr.strip(),
             "%s: groff warnings: %s" % (page, short(r.stderr, 300)))
        r = subprocess.run([groff, "-man", "-Tascii", "-P-cbou", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=30,
                           env=clean_env(MANWIDTH="80"))
        text = r.stdout
        if page == "pymemctl.1":
            helps = ctl("--help")[1] + "".join(
                ctl(cmd, "--help")[1] for cmd in ("ls", "show", "objects", "growth", "top"))
            tool = ctl("--help")[1]
        else:
            helps = subprocess.run([ARGS.pymemd, "--help"], stdout=subprocess.PIPE,
                                   universal_newlines=True, timeout=10).stdout
            tool = helps
        for opt in sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", helps))):
            c.ok(opt in text, "%s does not document %s" % (page, opt))
        for cmd in re.findall(r"^  (ls|show|objects|growth|top)\b", tool, re.M):
            c.ok(re.search(r"\b%s\b" % cmd, text), "%s does not document %s" % (page, cmd))


# --------------------------------------------------------------------------

def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", required=True)
    ap.add_argument("--pymemctl", required=True)
    ARGS = ap.parse_args()
    ARGS.pymemd = os.path.abspath(ARGS.pymemd)
    ARGS.pymemctl = os.path.abspath(ARGS.pymemctl)

    ctx = Ctx()
    ctx.tag = "pymemctl-test-%d-%d" % (os.getpid(), random.randrange(1 << 30))
    ctx.targets = []
    fake = None
    try:
        pythons = []
        label, p312 = pyenv_python(12)
        if p312:
            pythons.append((label, p312))
        else:
            RESULTS.out("SKIP", "target pyenv 3.12", "no pyenv 3.12 in %s" % pyenv_root())
        pythons.append(("system-python3", "/usr/bin/python3"))
        for label, exe in pythons:
            try:
                ctx.targets.append(Target(label, target_argv([exe], ctx.tag), ctx.tag,
                                          error=Fail))
            except (Fail, OSError, ValueError) as e:
                RESULTS.out("SKIP", "target %s" % label, str(e))
        fake = Fake()
        for name, fn in (("stand-in: ls (nulls, a denied target, a hostile name)", t_fake_ls),
                         ("stand-in: ls of nothing, behind a path prefix", t_fake_empty),
                         ("stand-in: show (3.15 generation fields, nulls)", t_fake_show),
                         ("stand-in: objects (table, --sort, --top, --fresh, --json)",
                          t_fake_objects),
                         ("stand-in: growth (signs, units, --top, --json)", t_fake_growth),
                         ("stand-in: answers that are not pymemd's", t_fake_not_pymemd),
                         ("stand-in: a server that never answers -> 3 after 10 s",
                          t_fake_timeout)):
            case(name, fn, fake)
        case("manual pages format cleanly and document every option", t_man, ctx)
        if not ctx.targets:
            raise Skip("no target could be started")
        ctx.a = Daemon("pymemd A", ["--match", ctx.tag, "--interval", str(INTERVAL)])
        ctx.b = Daemon("pymemd B", ["--match", ctx.tag, "--interval", "3600",
                                    "--census-interval", "0"])
        pids = [t.pid for t in ctx.targets]
        try:
            ctx.a.wait_ok(pids)
            ctx.b.wait_ok(pids)
        except Fail as e:
            if "denied" in str(e):
                raise Skip("pymemd may not read the targets (CAP_SYS_PTRACE?): %s" % e)
            raise
        case("usage errors exit 2 and say why", t_usage, ctx)
        case("--help, COMMAND --help, help COMMAND, --version", t_help, ctx)
        case("--json prints the daemon's JSON byte for byte", t_json_same, ctx)
        case("objects/growth of a target without a census: exit 1, daemon's message",
             t_no_census, ctx)
        case("ls: every target's real values", t_ls, ctx)
        for t in ctx.targets:
            case("show %s: the target's own values" % t.label, t_show, ctx, t)
        t = ctx.targets[0]
        case("objects %s: the census table" % t.label, t_objects, ctx, t)
        case("objects %s --fresh" % t.label, t_objects_fresh, ctx, t)
        case("objects %s --json --top 4" % t.label, t_objects_json, ctx, t)
        case("growth %s" % t.label, t_growth, ctx, t)
        case("growth --fresh %s" % t.label, t_growth_fresh, ctx, t)
        case("unknown pid: exit 1 with the daemon's message", t_unknown_pid, ctx)
        case("unreachable daemon: exit 3 naming the URL; PYMEMD_URL and --url", t_unreachable,
             ctx)
        case("colour only on a terminal, never with NO_COLOR or --no-color", t_color, ctx)
        case("top in tmux 80x24: header, rows, sort keys, resize, q restores", t_top, ctx)
        case("top: Ctrl-C, SIGTERM, SIGHUP restore the terminal", t_top_signals, ctx)
        case("top: Ctrl-Z gives the terminal back, SIGCONT takes it again", t_top_suspend, ctx)
        case("top: the daemon going away is shown, top keeps running", t_top_daemon_gone, ctx)
        case("top: unreachable daemon -> 3 before taking the screen", t_top_unreachable, ctx)
    except Skip as e:
        RESULTS.out("SKIP", "live daemon cases", str(e))
    except Fail as e:
        RESULTS.out("FAIL", "setup", str(e))
    except KeyboardInterrupt:
        RESULTS.out("FAIL", "interrupted")
    finally:
        if fake:
            fake.close()
        CHILDREN.stop_all()
    sys.stdout.write("%d passed, %d failed, %d skipped\n" % (
        RESULTS.passed, RESULTS.failed, RESULTS.skipped))
    return 1 if RESULTS.failed else 0


if __name__ == "__main__":
    sys.exit(main())
