#!/usr/bin/python3
"""Tests of `pymemctl top`'s numbers and of its terminal handling.

    /usr/bin/python3 test_top.py --pymemd build/pymemd --pymemctl build/client/pymemctl

Batch mode (`top -b -n N`) writes the frames the live view draws, as text;
these checks read them:

  * against a stand-in server that serves documented PROCESS and history
    JSON whose values the test chose: every column, the change and rate over
    the history and since the last refresh (a second sample of the same
    process, a sample that did not move, a pid reused), GC/s, the census's
    age, the sparklines in UTF-8 and in ASCII, and what an older pymemd
    without /history gets (the message saying so);
  * against a real pymemd watching a real CPython process that grows in
    steps on command and prints its own values (sys.getallocatedblocks(),
    gc.get_stats(), VmRSS) once quiescent: each frame's values are the
    daemon's JSON of the same moment; the change since the last refresh
    across one step is the difference of the two JSON samples; over the
    history, the change and rate are those of the history's own samples
    (when this pymemd serves /history), and the census's age is shown.

The live view runs on a pseudo-terminal (pty, TERM=xterm-256color, the
pty its controlling terminal): it draws on the alternate screen, redraws
for a new size (TIOCSWINSZ: the kernel's SIGWINCH) with the command-line
column a wide terminal has room for, quits on q with status 0, and on q
as on SIGTERM hands the terminal back: the main screen, a visible cursor,
the terminal modes it found.

Standard library only.  Prints one PASS/FAIL/SKIP line per check and ends
with exactly `N passed, M failed, K skipped`; exit status 0 iff nothing
failed.
"""

import argparse
import fcntl
import json
import math
import os
import random
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from pymemdtest import (CHILDREN, RESULTS, Fail, Pymemd, Skip, StandIn,  # noqa: E402
                        Target, case, clean_env, err_json, pyenv_python, short, wait_ok)

ARGS = None
DELTA = "\u0394"
BLOCKS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
ASCII = "_.-=+*#@"
TREND_WIDTH = 33  # batch mode without $COLUMNS: two sparklines of 16 and a blank


# --------------------------------------------------------------------------
# pymemctl's formats, computed independently

def c_round(x):
    """C's round(): halves away from zero."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def fmt_short(v, base, sign=False):
    """fmt_short(): 512, 13.6K, 135M; with sign +1.2M, -512, 0."""
    if v is None:
        return "-"
    a = abs(v)
    if sign and c_round(a) == 0:
        return "0"
    pre = ("-" if v < 0 else "+") if sign else ("-" if c_round(v) < 0 else "")
    if c_round(a) < base:
        return pre + "%.0f" % c_round(a)
    s = a / float(base)
    u = 0
    while s >= 999.5 and u + 1 < 6:
        s /= base
        u += 1
    return pre + ("%.1f" if s < 99.95 else "%.0f") % s + "KMGTPE"[u]


def rate(v):
    """fmt_rate(): collections per second."""
    if v is not None and abs(v) < 99.95:
        s = "%.1f" % v
        return "0.0" if s == "-0.0" else s
    return fmt_short(v, 1000)


def ago(d):
    """fmt_ago() of an age of d seconds."""
    if d < -1:
        return "in %.0f s" % -d
    if d < 10:
        return "%.1f s ago" % max(d, 0.0)
    if d < 120:
        return "%.0f s ago" % d
    if d < 7200:
        return "%.0f min ago" % (d / 60)
    return "%.0f h ago" % (d / 3600)


def ages(at, t0, t1):
    """Every age fmt_ago() can show for a time at, drawn between t0 and t1."""
    out = set()
    steps = int((t1 - t0) / 0.01) + 2
    for i in range(steps + 1):
        out.add(ago(min(t0 + i * 0.01, t1) - at))
    return out


def spark(values, width, utf8=True):
    """spark_append(): values oldest first (None: not read)."""
    chars = BLOCKS if utf8 else ASCII
    n = len(values)
    shown = min(n, width)
    cols = []
    for i in range(shown):
        part = [v for v in values[i * n // shown:(i + 1) * n // shown] if v is not None]
        cols.append(max(part) if part else None)
    # The scale is that of the columns: the lowest column is the lowest height.
    known = [v for v in cols if v is not None]
    lo, hi = (min(known), max(known)) if known else (0, 0)
    out = " " * (width - shown)
    for v in cols:
        if v is None:
            out += " "
            continue
        level = int(c_round((v - lo) / float(hi - lo) * 7)) if hi > lo else 0
        out += chars[max(0, min(7, level))]
    return out


def trend_cell(samples, width=TREND_WIDTH, utf8=True):
    half = (width - 1) // 2
    rss = [s.get("rss_bytes") for s in samples]
    heap = [s.get("arena_bytes") for s in samples]
    if all(v is None for v in heap):
        heap = [s.get("allocated_blocks") for s in samples]
    return spark(rss, half, utf8) + " " + spark(heap, width - 1 - half, utf8)


def gc_sum(s):
    g = s.get("gc_collections")
    if not g or any(x is None for x in g):
        return None
    return sum(g)


def over(samples, get):
    """(delta, rate) of the first and last samples where get() is known: trend_over()."""
    known = [(s["t"], get(s)) for s in samples if get(s) is not None]
    if len(known) < 2:
        return None, None
    (t0, v0), (t1, v1) = known[0], known[-1]
    d = v1 - v0
    return d, (d / (t1 - t0) if t1 > t0 else None)


def proc_sample(p):
    """A PROCESS object as a history sample (what trend_of_process() takes)."""
    gens = (p.get("gc") or {}).get("generations") or []
    cols = [g.get("collections") for g in gens]
    return {"t": p.get("sampled_at"),
            "rss_bytes": (p.get("memory") or {}).get("rss_bytes"),
            "arena_bytes": (p.get("pymalloc") or {}).get("arena_bytes"),
            "allocated_blocks": (p.get("pymalloc") or {}).get("allocated_blocks"),
            "gc_collections": cols if cols else None}


FIELDS = (("RSS", "rss_bytes", 1024), ("HEAP", "arena_bytes", 1024),
          ("BLOCKS", "allocated_blocks", 1000))


def want_changes(samples):
    """{column: text} of the change and rate columns over samples (oldest first)."""
    want = {}
    for col, key, base in FIELDS:
        d, r = over(samples, lambda s, k=key: s.get(k))
        want[DELTA + col] = fmt_short(d, base, True)
        want[("BLK" if col == "BLOCKS" else col) + "/s"] = fmt_short(r, base, True)
    d, r = over(samples, gc_sum)
    want["GC/s"] = rate(r)
    return want


def want_absolute(p):
    """{column: text} of the columns that show a PROCESS's own values."""
    mem, pm, gc = p.get("memory") or {}, p.get("pymalloc") or {}, p.get("gc") or {}
    gens = dict((g.get("generation"), g) for g in gc.get("generations") or [])
    w = {"PID": str(p["pid"]), "NAME": p["name"],
         "PYTHON": (p.get("python") or {}).get("version") or "-",
         "RSS": fmt_short(mem.get("rss_bytes"), 1024), "HEAP": fmt_short(pm.get("arena_bytes"), 1024),
         "BLOCKS": fmt_short(pm.get("allocated_blocks"), 1000),
         "BUSY": "-" if gc.get("busy_ratio_estimate") is None
         else "%.1f%%" % (gc["busy_ratio_estimate"] * 100)}
    for i in range(3):
        w["GEN%d" % i] = fmt_short((gens.get(i) or {}).get("count"), 1000)
    return w


def objects_count(p):
    o = p.get("objects")
    return fmt_short(o["total"], 1000) if o else "-"


# --------------------------------------------------------------------------
# Reading batch frames

OBJECTS_CELL = r"(-|\S+ \((?:in )?[\d.]+ (?:s|min|h|d)(?: ago)?\))"


def parse_frames(text):
    """[frame] of batch output; a frame is a dict: title, summary, message, cols (the
    header's names), rows {pid: {col: text}}, problems {pid: line}."""
    frames = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if not lines[i].startswith("pymemctl top - "):
            i += 1
            continue
        f = {"title": lines[i], "summary": lines[i + 1], "message": lines[i + 2],
             "header": lines[i + 3], "cols": lines[i + 3].split(), "rows": {}, "problems": {}}
        head = lines[i + 3]
        cols = f["cols"]
        trend_at = head.find("TREND") if "TREND" in cols else -1
        cmd_at = head.find("COMMAND") if "COMMAND" in cols else -1
        before = cols[:cols.index("TREND")] if trend_at >= 0 else [
            c for c in cols if c != "COMMAND"]
        pat = re.compile(r"^\s*" + r"\s+".join(
            OBJECTS_CELL if c == "OBJECTS" else r"(\S+)" for c in before) + r"\s*$")
        i += 4
        while i < len(lines) and lines[i] and not lines[i].startswith("pymemctl top - "):
            line = lines[i]
            i += 1
            m0 = re.match(r"^\s*(\d+) ", line)
            if not m0:
                continue
            pid = int(m0.group(1))
            head_part = line[:trend_at] if trend_at >= 0 else line
            m = pat.match(head_part)
            if not m:
                f["problems"][pid] = line
                continue
            row = dict(zip(before, m.groups()))
            if trend_at >= 0:
                end = cmd_at - 1 if cmd_at >= 0 else len(line)
                row["TREND"] = line[trend_at:end].ljust(end - trend_at)
            if cmd_at >= 0:
                row["COMMAND"] = line[cmd_at:]
            f["rows"][pid] = row
        frames.append(f)
    return frames


def top_batch(url, *args, env=None, timeout=60):
    argv = [ARGS.pymemctl, "--url", url, "top", "-b"] + list(args)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env or clean_env(COLUMNS=None),
                       timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# A stand-in pymemd whose answers the test chooses

class Fake(StandIn):
    """routes[path] is a callable returning a JSON-able object (served 200) or (status, body
    bytes); unknown paths answer 404 "no such path", as pymemd does. requests: the paths
    asked, without their query."""

    def __init__(self):
        self.requests = []
        self.routes = {}
        StandIn.__init__(self)

    def answer(self, path):
        path = path.split("?")[0]
        self.requests.append(path)
        route = self.routes.get(path)
        if route is None:
            st, body = 404, err_json(404, "no such path: %s" % path)
        else:
            r = route()
            st, body = r if isinstance(r, tuple) else (200, json.dumps(r).encode())
        return st, "application/json", body


T0 = time.time() - 200


def fake_proc(pid, t, rss, arena, blocks, collections, objects_at=None, name="worker",
              start=1000.0, status="ok"):
    p = {"pid": pid, "name": name, "cmdline": "python3 worker.py --id %d" % pid,
         "start_time": start, "status": status, "error": None,
         "python": {"version": "3.12.1", "hexversion": 51118576, "build": "shared"},
         "threads": 1,
         "memory": {"rss_bytes": rss, "vms_bytes": 1 << 30, "anon_bytes": None,
                    "swap_bytes": 0, "pss_bytes": None, "peak_rss_bytes": rss},
         "pymalloc": {"arenas": None, "arenas_highwater": None, "arena_bytes": arena,
                      "allocated_blocks": blocks},
         "gc": {"enabled": True, "collecting": False, "frozen": 0, "garbage": 0,
                "generations": [{"generation": g, "count": 7 * (g + 1), "threshold": 700,
                                 "collections": c, "collected": 0, "uncollectable": 0,
                                 "candidates": None, "duration_seconds": None}
                                for g, c in enumerate(collections)],
                "busy_ratio_estimate": 0.25},
         "objects": None, "sampled_at": t, "sample_seconds": 0.0001}
    if objects_at is not None:
        p["objects"] = {"at": objects_at, "total": 1234567, "pause_seconds": 0.01,
                        "walk_seconds": 0.02, "types": []}
    return p


def fake_history(n=11):
    """Samples 10 s apart: RSS up 10 MiB a step, arenas up 1 MiB (one not read), collections
    up 7 a step; allocated blocks never read."""
    out = []
    for i in range(n):
        out.append({"t": T0 + 10 * i, "rss_bytes": (1 << 30) + i * (10 << 20),
                    "pss_bytes": None,
                    "arena_bytes": None if i == 5 else (1000 << 20) + i * (1 << 20),
                    "allocated_blocks": None,
                    "gc_collections": [100 + 6 * i, 10 + i, 1], "objects_total": None})
    return out


def t_fake_history(c, fake):
    """History window: every column of the stand-in's values."""
    hist = fake_history()
    last = hist[-1]
    census_at = time.time() - 42.5
    p = fake_proc(4242, last["t"], last["rss_bytes"], last["arena_bytes"], 5000,
                  last["gc_collections"], objects_at=census_at)
    denied = dict(fake_proc(4343, last["t"], None, None, None, []), status="denied",
                  error="reading its memory needs CAP_SYS_PTRACE", gc=None, pymalloc=None)
    fake.routes.clear()
    fake.routes["/api/v1/processes"] = lambda: {"processes": [p, denied]}
    fake.routes["/api/v1/processes/4242/history"] = lambda: {"pid": 4242, "interval_seconds": 10,
                                                             "samples": hist}
    del fake.requests[:]
    t_before = time.time()
    rc, out, err = top_batch(fake.url, "-n", "1")
    t_after = time.time()
    c.eq("exit status", 0, rc)
    c.eq("stderr", "", err)
    frames = parse_frames(out)
    if not c.eq("frames", 1, len(frames)):
        raise Fail("no frame in: %s" % short(out, 400))
    f = frames[0]
    c.eq("columns (batch: all of them)",
         ["PID", "NAME", "PYTHON", "RSS", DELTA + "RSS", "RSS/s", "HEAP", DELTA + "HEAP",
          "HEAP/s", "BLOCKS", DELTA + "BLOCKS", "BLK/s", "GEN0", "GEN1", "GEN2", "GC/s",
          "OBJECTS", "BUSY", "TREND", "COMMAND"], f["cols"])
    c.ok(f["title"].startswith("pymemctl top - %s - " % fake.url) and
         f["title"].endswith("every 1 s; %s: 100 s of history" % DELTA), "title: %r" % f["title"])
    c.eq("summary", "2 processes, 1 ok; rss 1.1 GiB, objects 1,234,567; sort: rss", f["summary"])
    c.eq("message", "", f["message"])
    row = f["rows"].get(4242, {})
    want = want_absolute(p)
    want.update(want_changes(hist))
    # The values themselves, worked out by hand: 100 MiB in 100 s, 10 MiB of arenas, 70
    # collections.
    c.eq("hand-made: " + DELTA + "RSS", "+100M", want[DELTA + "RSS"])
    c.eq("hand-made: RSS/s", "+1.0M", want["RSS/s"])
    c.eq("hand-made: " + DELTA + "HEAP", "+10.0M", want[DELTA + "HEAP"])
    c.eq("hand-made: HEAP/s", "+102K", want["HEAP/s"])
    c.eq("hand-made: GC/s", "0.7", want["GC/s"])
    for col in want:
        c.eq("4242 %s" % col, want[col], row.get(col))
    c.eq("4242 COMMAND", p["cmdline"], row.get("COMMAND"))
    m = re.match(r"^(\S+) \((.*)\)$", row.get("OBJECTS", ""))
    c.ok(m and m.group(1) == "1.2M", "OBJECTS count: %r" % row.get("OBJECTS"))
    c.ok(m and m.group(2) in ages(census_at, t_before, t_after),
         "OBJECTS age %r is not the census's (at %.2f, drawn between %.2f and %.2f)" % (
             row.get("OBJECTS"), census_at, t_before, t_after))
    c.eq("4242 TREND", trend_cell(hist), row.get("TREND"))
    # The hand-made shape: 11 samples right-aligned in 16 columns, rising; the unread arena
    # sample is a blank.
    c.eq("hand-made TREND", "     " + "\u2581\u2582\u2582\u2583\u2584\u2585\u2585\u2586\u2587"
         "\u2587\u2588" + " " + "     " + "\u2581\u2582\u2582\u2583\u2584 \u2585\u2586\u2587"
         "\u2587\u2588", trend_cell(hist))
    c.ok(re.search(r"^\s*4343 worker\s+denied: reading its memory needs CAP_SYS_PTRACE$",
                   f["problems"].get(4343, ""), re.M), "denied row: %r" % f["problems"].get(4343))
    c.eq("history asked for the readable process only", ["/api/v1/processes",
                                                        "/api/v1/processes/4242/history"],
         fake.requests)
    # ASCII outside UTF-8: 'd' for the change and the sparkline in ASCII.
    rc, out, err = top_batch(fake.url, "-n", "1", env=clean_env(LC_ALL="C", COLUMNS=None))
    frames = parse_frames(out)
    f = frames[0] if frames else {"cols": [], "rows": {}}
    c.ok("dRSS" in f["cols"] and "dHEAP" in f["cols"], "C locale: headers %r" % f["cols"])
    c.eq("C locale: TREND", trend_cell(hist, utf8=False), f["rows"].get(4242, {}).get("TREND"))
    # $COLUMNS: the width of a terminal, columns dropped to fit it.
    rc, out, err = top_batch(fake.url, "-n", "1", env=clean_env(COLUMNS="80"))
    frames = parse_frames(out)
    lines = out.rstrip("\n").split("\n")
    c.ok(frames and all(len(l) <= 80 for l in lines), "COLUMNS=80: a line wider than 80: %r" % [
        l for l in lines if len(l) > 80][:1])
    if frames:
        for col in ("PID", "NAME", "RSS", DELTA + "RSS", "HEAP", "OBJECTS"):
            c.ok(col in frames[0]["cols"], "COLUMNS=80: no %s column: %r" % (col,
                                                                             frames[0]["cols"]))


def t_fake_refresh(c, fake):
    """Refresh window against a pymemd without /history: the message; a change between two
    samples; a refresh that finds the same sample keeps the change; a reused pid starts
    afresh."""
    answers = [
        [fake_proc(4242, 1000.0, 100 << 20, 10 << 20, 20000, [10, 1, 0]),
         fake_proc(5000, 1000.0, 50 << 20, 5 << 20, 9000, [4, 0, 0], start=50.0),
         fake_proc(6000, 1000.0, 10 << 20, 1 << 20, 900, [0, 0, 0], start=None)],
        # 2 s later: +3 MiB RSS, +1 MiB arenas, +2,500 blocks, +5 collections; pid 6000, whose
        # start time is not known, is the same process by its pid.
        [fake_proc(4242, 1002.0, 103 << 20, 11 << 20, 22500, [14, 2, 0]),
         fake_proc(5000, 1002.0, 50 << 20, 5 << 20, 9000, [4, 0, 0], start=50.0),
         fake_proc(6000, 1002.0, 11 << 20, 1 << 20, 900, [0, 0, 0], start=None)],
        # The daemon has not sampled since: the same sample; pid 5000 is a new process.
        [fake_proc(4242, 1002.0, 103 << 20, 11 << 20, 22500, [14, 2, 0]),
         fake_proc(5000, 1002.0, 60 << 20, 6 << 20, 9500, [0, 0, 0], start=77.0)],
    ]
    served = []
    del fake.requests[:]

    def processes():
        served.append(1)
        return {"processes": answers[min(len(served), len(answers)) - 1]}

    fake.routes.clear()
    fake.routes["/api/v1/processes"] = processes
    rc, out, err = top_batch(fake.url, "-n", "3", "-d", "0.1")
    c.eq("exit status", 0, rc)
    frames = parse_frames(out)
    if not c.eq("frames", 3, len(frames)):
        raise Fail("output: %s" % short(out, 400))
    c.eq("requests: the list, and one try at the history", [
        "/api/v1/processes", "/api/v1/processes/4242/history", "/api/v1/processes",
        "/api/v1/processes"], fake.requests)
    for i, f in enumerate(frames):
        c.ok(f["title"].endswith("; %s: since last refresh" % DELTA),
             "frame %d title: %r" % (i + 1, f["title"]))
        c.ok(f["message"].startswith("the trend needs a newer pymemd: %s has no "
                                     "/api/v1/processes/PID/history" % fake.url),
             "frame %d message: %r" % (i + 1, f["message"]))
        c.eq("frame %d: TREND without a history" % (i + 1), "-",
             f["rows"].get(4242, {}).get("TREND", "").strip())
    first = frames[0]["rows"].get(4242, {})
    for col in (DELTA + "RSS", "RSS/s", DELTA + "HEAP", DELTA + "BLOCKS", "GC/s"):
        c.eq("frame 1 %s: not known yet" % col, "-", first.get(col))
    want = {DELTA + "RSS": "+3.0M", "RSS/s": "+1.5M", DELTA + "HEAP": "+1.0M",
            "HEAP/s": "+512K", DELTA + "BLOCKS": "+2.5K", "BLK/s": "+1.2K", "GC/s": "2.5"}
    s1, s2 = proc_sample(answers[0][0]), proc_sample(answers[1][0])
    c.eq("hand-made values are the samples'", want, want_changes([s1, s2]))
    for n in (1, 2):
        row = frames[n]["rows"].get(4242, {})
        for col in want:
            c.eq("frame %d %s" % (n + 1, col), want[col], row.get(col))
    c.eq("frame 2: pid 5000 did not move", "0", frames[1]["rows"].get(5000, {}).get(DELTA + "RSS"))
    c.eq("frame 2: pid 6000 without a start time", "+1.0M",
         frames[1]["rows"].get(6000, {}).get(DELTA + "RSS"))
    c.eq("frame 3: pid 5000 reused: no change yet", "-",
         frames[2]["rows"].get(5000, {}).get(DELTA + "RSS"))
    c.eq("frame 3: pid 5000's own RSS", "60.0M", frames[2]["rows"].get(5000, {}).get("RSS"))
    # Sorted by RSS change: 4242 (+3 MiB) before 5000 (0) in frame 2.
    fake.routes["/api/v1/processes"] = lambda: {"processes": answers[0]}
    rc, out, err = top_batch(fake.url, "-n", "1")
    c.ok(parse_frames(out) and parse_frames(out)[0]["message"].startswith("the trend needs"),
         "history window without a history: message %r" % short(out, 200))


def t_fake_no_census(c, fake):
    p = fake_proc(4242, 1000.0, 100 << 20, 10 << 20, 20000, [10, 1, 0])
    q = fake_proc(4343, 1000.0, 100 << 20, 10 << 20, 20000, [10, 1, 0])
    fake.routes.clear()
    fake.routes["/api/v1/processes"] = lambda: {"processes": [p]}
    hist = [proc_sample(p)]
    fake.routes["/api/v1/processes/4242/history"] = lambda: {
        "pid": 4242, "interval_seconds": 1, "samples": hist}
    rc, out, err = top_batch(fake.url, "-n", "1")
    f = (parse_frames(out) or [{}])[0]
    c.eq("one sample: message", "no history yet (pymemd adds a sample each interval; none with "
         "history = 0): key w or --window refresh shows changes since the last refresh",
         f.get("message"))
    c.eq("one sample: no change yet", "-", f.get("rows", {}).get(4242, {}).get(DELTA + "RSS"))
    c.ok(f.get("title", "").endswith("%s: no history yet" % DELTA), "title: %r" % f.get(
        "title"))
    hist.insert(0, dict(proc_sample(p), t=p["sampled_at"] - 1))
    rc, out, err = top_batch(fake.url, "-n", "1")
    f = (parse_frames(out) or [{}])[0]
    c.eq("one: message", "no object census of pid 4242 yet: 'pymemctl objects --fresh 4242' "
         "takes one", f.get("message"))
    c.eq("two samples: no change", "0", f.get("rows", {}).get(4242, {}).get(DELTA + "RSS"))
    fake.routes["/api/v1/processes"] = lambda: {"processes": [p, q]}
    fake.routes["/api/v1/processes/4343/history"] = lambda: {
        "pid": 4343, "interval_seconds": 1, "samples": hist}
    rc, out, err = top_batch(fake.url, "-n", "1")
    f = (parse_frames(out) or [{}])[0]
    c.eq("two: message", "no object census of 2 processes yet: 'pymemctl objects --fresh PID' "
         "takes one", f.get("message"))
    fake.routes["/api/v1/processes"] = lambda: {"processes": []}
    rc, out, err = top_batch(fake.url, "-n", "1")
    c.ok("pymemd watches no Python process (yet): 'pymemctl ls' shows what it sees" in out,
         "nothing watched: %s" % short(out, 300))
    # A daemon that goes away during batch mode: the message, status 3.
    fake.routes["/api/v1/processes"] = lambda: (503, err_json(503, "stopping"))
    rc, out, err = top_batch(fake.url, "-n", "1")
    c.eq("503: exit status", 1, rc)
    c.ok("stopping" in err, "503: %r" % err)


def t_usage(c, fake):
    for args, what in ((["-n", "2"], "-n without -b"), (["-b", "-n", "0"], "-n 0"),
                       (["--window", "hour"], "--window hour"), (["-d", "0"], "-d 0")):
        r = subprocess.run([ARGS.pymemctl, "--url", fake.url, "top"] + args,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=clean_env(), timeout=30)
        c.eq("%s: exit status" % what, 2, r.returncode)
        c.ok(r.stderr.strip(), "%s: says nothing" % what)
    r = subprocess.run([ARGS.pymemctl, "--url", fake.url, "top"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                       timeout=30)
    c.eq("no terminal: exit status", 2, r.returncode)
    c.ok(b"pymemctl top -b -n 1" in r.stderr, "no terminal: does not say what to run: %r" %
         r.stderr)


# --------------------------------------------------------------------------
# A real pymemd and a real target that grows in steps

STEPPER = r'''
import gc, json, os, sys
gc.disable()


class Step(object):
    __slots__ = ("i", "other")

    def __init__(self, i):
        self.i = i
        self.other = None


keep = []


def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024


def truth():
    gc.collect()
    return json.dumps({"pid": os.getpid(), "allocated_blocks": sys.getallocatedblocks(),
                       "collections": [g["collections"] for g in gc.get_stats()],
                       "rss_bytes": rss()}) + "\n"


os.write(1, truth().encode())
while True:
    line = sys.stdin.readline()
    if not line:
        break
    keep.extend(Step(i) for i in range(int(line)))
    os.write(1, truth().encode())
'''

STEP = 200000  # objects of one step: several arenas, several MiB


def read_until(p, buf, pred, timeout=30):
    """Reads p's stdout into buf (a list of str chunks) until pred(text so far)."""
    deadline = time.monotonic() + timeout
    while True:
        text = "".join(buf)
        if pred(text):
            return text
        left = deadline - time.monotonic()
        if left <= 0:
            raise Fail("pymemctl wrote, within %.0f s: %s" % (timeout, short(text, 600)))
        r, _, _ = select.select([p.stdout], [], [], min(left, 0.5))
        if r:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                if pred("".join(buf)):
                    return "".join(buf)
                raise Fail("pymemctl ended (%s) after: %s" % (p.wait(), short("".join(buf), 600)))
            buf.append(chunk.decode("utf-8", "replace"))


def has_row(pid, nframes):
    def pred(text):
        fr = parse_frames(text)
        return len(fr) >= nframes and pid in fr[nframes - 1]["rows"]
    return pred


class Stepper(object):
    def __init__(self, ctx):
        self.label, exe = ctx.python
        self.tag = "pymemctltop%012x" % random.getrandbits(48)
        self.t = Target("stepper " + self.label, [exe, "-c", STEPPER, self.tag], self.tag,
                        error=Fail)
        self.pid = self.t.pid
        self.read_at = time.time()
        self.d = Pymemd(ARGS.pymemd, ["--match", self.tag[:9] + "[" + self.tag[9] + "]" +
                                      self.tag[10:], "--interval", "0.2",
                                      "--census-interval", "0"], "pymemd D")
        self.d.start()

    def settled(self):
        """The daemon's PROCESS of a sample taken after the target went quiet."""
        return wait_ok(self.d, [self.pid], timeout=20, after=self.read_at)[self.pid]

    def step(self, n=STEP):
        self.t.p.stdin.write(b"%d\n" % n)
        self.t.p.stdin.flush()
        truth = self.t.next_truth()
        self.read_at = time.time()
        return truth

    def history(self):
        r = self.d.get("/api/v1/processes/%d/history" % self.pid, {"Accept": "application/json"})
        if r.status == 404 and b"no such path" in r.body:
            return None
        if r.status != 200:
            raise Fail("history: %s" % r.describe())
        return r.json(strict=False)["samples"]

    def close(self):
        self.d.stop()
        self.t.close()


def check_frame_values(c, what, row, p):
    for col, want in want_absolute(p).items():
        if col in ("PYTHON", "NAME", "PID", "BUSY", "GEN0"):
            continue  # checked once below; gen0 moves with the census's own objects
        c.eq("%s %s (the daemon's JSON)" % (what, col), want, row.get(col))


def t_steps_refresh(c, ctx):
    """Since the last refresh, across a step the target took while pymemctl slept."""
    s = ctx.stepper
    j0 = s.settled()
    p = CHILDREN.spawn([ARGS.pymemctl, "--url", s.d.url, "top", "-b", "-n", "2", "-d", "5",
                        "--window", "refresh"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=clean_env(COLUMNS=None))
    buf = []
    try:
        read_until(p, buf, has_row(s.pid, 1))
        # pymemctl now waits 5 s for its next refresh: held still while the target steps.
        os.kill(p.pid, signal.SIGSTOP)
        truth0 = ctx.truth
        truth1 = s.step()
        ctx.truth = truth1
        j1 = s.settled()
        os.kill(p.pid, signal.SIGCONT)
        text = read_until(p, buf, has_row(s.pid, 2))
        c.eq("exit status", 0, p.wait(timeout=30))
    finally:
        CHILDREN.reap(p)
    f1, f2 = parse_frames(text)[:2]
    r1, r2 = f1["rows"][s.pid], f2["rows"][s.pid]
    check_frame_values(c, "frame 1", r1, j0)
    check_frame_values(c, "frame 2", r2, j1)
    c.eq("name", j1["name"], r2.get("NAME"))
    c.eq("python", j1["python"]["version"], r2.get("PYTHON"))
    for col in (DELTA + "RSS", DELTA + "HEAP", DELTA + "BLOCKS", "RSS/s", "GC/s"):
        c.eq("frame 1 %s: nothing to compare yet" % col, "-", r1.get(col))
    s0, s1 = proc_sample(j0), proc_sample(j1)
    for col, key, base in FIELDS:
        d = None if s0[key] is None or s1[key] is None else s1[key] - s0[key]
        c.eq("frame 2 %s: the JSON samples' difference" % (DELTA + col), fmt_short(d, base, True),
             r2.get(DELTA + col))
    # The target's own word: its blocks grew by the step, and one collection (gc.collect()).
    tb = truth1["allocated_blocks"] - truth0["allocated_blocks"]
    c.ok(tb >= STEP, "the target's own blocks grew by %d, not %d or more" % (tb, STEP))
    c.eq("the target's own collections: +1 (gc.collect())", 1,
         sum(truth1["collections"]) - sum(truth0["collections"]))
    # The rate is over the two samples pymemctl saw; their times are in the history, when
    # this pymemd keeps one: the shown rate is that of one pair of them.
    hist = s.history()
    if hist is None:
        c.note("no /history here: the rates since the last refresh are checked on the stand-in")
        return
    before = [h for h in hist if h["rss_bytes"] == s0["rss_bytes"] and
              h["allocated_blocks"] == s0["allocated_blocks"]]
    after = [h for h in hist if h["allocated_blocks"] == s1["allocated_blocks"] and
             h["rss_bytes"] == s1["rss_bytes"]]
    rates = set()
    for a in before:
        for b in after:
            if b["t"] > a["t"]:
                rates.add((fmt_short((b["rss_bytes"] - a["rss_bytes"]) / (b["t"] - a["t"]), 1024,
                                 True),
                           rate((gc_sum(b) - gc_sum(a)) / (b["t"] - a["t"]))))
    c.ok((r2.get("RSS/s"), r2.get("GC/s")) in rates,
         "RSS/s, GC/s %r are not those of any two samples of the history: %s" % (
             (r2.get("RSS/s"), r2.get("GC/s")), sorted(rates)[:6]))


def t_steps_history(c, ctx):
    """Over the history: the change and rate of its first and last samples, the trend, and
    the census's age."""
    s = ctx.stepper
    # The census first: reading the target's heap for it may fault pages in (RSS moves).
    census = s.d.json("/api/v1/processes/%d/objects?fresh=1&top=1" % s.pid, timeout=40)
    s.read_at = time.time()
    j = s.settled()
    h0 = s.history()
    if h0 is None:
        raise Skip("this pymemd serves no /api/v1/processes/PID/history (the trend's source)")
    t_before = time.time()
    rc, out, err = top_batch(s.d.url, "-n", "1")
    t_after = time.time()
    h1 = s.history()
    c.eq("exit status", 0, rc)
    f = (parse_frames(out) or [None])[0]
    if not f or s.pid not in f["rows"]:
        raise Fail("no row for %d: %s" % (s.pid, short(out, 500)))
    row = f["rows"][s.pid]
    check_frame_values(c, "frame", row, j)
    # pymemctl read the history at some moment between h0 and h1: one of these is it.
    cands = [h1[:k] for k in range(len(h0), len(h1) + 1)] if h1[:len(h0)] == h0 else [h0, h1]
    got = dict((col, row.get(col)) for col in want_changes(h0))
    got["TREND"] = row.get("TREND")
    wants = []
    for hs in cands:
        w = want_changes(hs)
        w["TREND"] = trend_cell(hs)
        wants.append(w)
    c.ok(got in wants, "changes, rates and trend are not those of the history: shown %r, "
         "the history's %r" % (got, wants[-1]))
    d_blocks = over(h1, lambda x: x.get("allocated_blocks"))[0]
    c.ok(d_blocks is None or d_blocks >= STEP, "the history saw no step: %s" % d_blocks)
    m = re.match(r"^(\S+) \((.*)\)$", row.get("OBJECTS", ""))
    c.ok(m and m.group(1) == fmt_short(census["total"], 1000),
         "OBJECTS %r, census total %s" % (row.get("OBJECTS"), census["total"]))
    c.ok(m and m.group(2) in ages(census["at"], t_before, t_after),
         "census age %r, census at %.2f, drawn between %.2f and %.2f" % (
             row.get("OBJECTS"), census["at"], t_before, t_after))


# --------------------------------------------------------------------------
# The live view on a pseudo-terminal

def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Pty(object):
    """pymemctl top with a pty as its controlling terminal (stdin, stdout, stderr)."""

    def __init__(self, url, rows=24, cols=80, extra=()):
        self.master, self.slave = os.openpty()
        set_size(self.slave, rows, cols)
        self.modes = termios.tcgetattr(self.slave)
        self.out = b""

        def ctty():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        # In a session of its own (CHILDREN's), whose controlling terminal the pty becomes.
        self.p = CHILDREN.spawn([ARGS.pymemctl, "--url", url, "top"] + list(extra),
                                stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                env=clean_env(TERM="xterm-256color"), preexec_fn=ctty)

    def read_until(self, pred, timeout=20, what="output"):
        deadline = time.monotonic() + timeout
        while not pred(self.out):
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fail("%s did not come within %.0f s; got: %r" % (
                    what, timeout, self.out[-600:]))
            r, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if r:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    if pred(self.out):
                        return
                    raise Fail("%s: the terminal closed; got %r" % (what, self.out[-600:]))
                self.out += chunk

    def finish(self, timeout=20):
        """Reads until pymemctl exits; its exit status."""
        deadline = time.monotonic() + timeout
        while self.p.poll() is None and time.monotonic() < deadline:
            r, _, _ = select.select([self.master], [], [], 0.1)
            if r:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    break
        try:
            code = self.p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise Fail("pymemctl did not exit; output: %r" % self.out[-600:])
        self.drain()  # what it wrote just before it exited
        return code

    def drain(self):
        while select.select([self.master], [], [], 0.1)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.out += chunk

    def close(self):
        CHILDREN.reap(self.p)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


SMCUP = b"\x1b[?1049h"
RMCUP = b"\x1b[?1049l"


def check_restored(c, t, what):
    c.ok(SMCUP in t.out, "%s: never went to the alternate screen" % what)
    c.ok(t.out.rfind(RMCUP) > t.out.rfind(SMCUP), "%s: did not leave the alternate screen" % what)
    tail = t.out[t.out.rfind(SMCUP):]
    c.ok(tail.rfind(b"\x1b[?25h") > tail.rfind(b"\x1b[?25l"), "%s: cursor left hidden" % what)
    c.eq("%s: terminal modes as they were" % what, t.modes, termios.tcgetattr(t.slave))


def t_pty(c, ctx):
    url = ctx.stepper.d.url
    try:
        for fd in os.openpty():
            os.close(fd)
    except OSError as e:
        raise Skip("no pseudo-terminal here (is /dev/pts mounted?): %s" % e)
    t = Pty(url)
    try:
        t.read_until(lambda o: b"q quit" in o and str(ctx.stepper.pid).encode() in o,
                     what="the first frame with the target's row")
        c.ok(b"COMMAND" not in t.out, "80 columns: a COMMAND column")
        c.ok(b"TREND" in t.out, "80 columns: no TREND column")
        mark = len(t.out)
        set_size(t.master, 30, 160)
        t.read_until(lambda o: b"COMMAND" in o[mark:], what="a COMMAND column after the resize")
        c.ok(b"GEN0" in t.out[mark:], "160 columns: no GEN0 column")
        mark = len(t.out)
        os.write(t.master, b"?")
        t.read_until(lambda o: b"Any key goes back" in o[mark:], what="the help screen")
        os.write(t.master, b" ")
        os.write(t.master, b"q")
        c.eq("q: exit status", 0, t.finish())
        check_restored(c, t, "q")
    finally:
        t.close()
    t = Pty(url)
    try:
        t.read_until(lambda o: b"q quit" in o, what="the first frame")
        t.p.send_signal(signal.SIGTERM)
        c.eq("SIGTERM: exit status", 128 + signal.SIGTERM, t.finish())
        check_restored(c, t, "SIGTERM")
    finally:
        t.close()
    # A daemon gone meanwhile: top stays, says so; on q, the message stays on the main screen.
    d = Pymemd(ARGS.pymemd, ["--match", "pymemctl-top-nothing-[x]", "--interval", "0.2"],
               "pymemd E")
    d.start()
    t = Pty(d.url, extra=["--interval", "0.2"])
    try:
        t.read_until(lambda o: b"q quit" in o, what="the first frame")
        d.stop()
        t.read_until(lambda o: b"cannot reach pymemd" in o, what="the message of a daemon gone")
        os.write(t.master, b"q")
        c.eq("daemon gone, q: exit status", 0, t.finish())
        check_restored(c, t, "daemon gone")
        after = t.out[t.out.rfind(RMCUP):]
        c.ok(b"pymemctl: when top ended: cannot reach pymemd at " + d.url.encode() in after,
             "the message is not on the main screen after top: %r" % after[-300:])
    finally:
        t.close()
        d.stop()


# --------------------------------------------------------------------------

class Ctx(object):
    pass


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", required=True)
    ap.add_argument("--pymemctl", required=True)
    ARGS = ap.parse_args()
    ARGS.pymemd = os.path.abspath(ARGS.pymemd)
    ARGS.pymemctl = os.path.abspath(ARGS.pymemctl)
    ctx = Ctx()
    fake = None
    try:
        fake = Fake()
        case("stand-in: usage errors", t_usage, fake)
        case("stand-in: every column over a history of known samples (UTF-8, ASCII, $COLUMNS)",
             t_fake_history, fake)
        case("stand-in without /history: changes since the last refresh, pid reuse, message",
             t_fake_refresh, fake)
        case("stand-in: what to run when a census is missing; nothing watched; errors",
             t_fake_no_census, fake)
        label, exe = pyenv_python(12)
        ctx.python = (label, exe) if exe else ("system-python3", "/usr/bin/python3")
        try:
            ctx.stepper = Stepper(ctx)
            ctx.truth = ctx.stepper.t.truth
        except Fail as e:
            raise Skip("no stepping target: %s" % e)
        try:
            ctx.stepper.settled()
        except Fail as e:
            if "denied" in str(e):
                raise Skip("pymemd may not read the target (CAP_SYS_PTRACE?): %s" % e)
            raise
        case("real target, one step between two refreshes: changes are the JSON's",
             t_steps_refresh, ctx)
        case("real target over its history: changes, rates, trend, census age", t_steps_history,
             ctx)
        case("live view on a pty: draws, resizes, help, q, SIGTERM, daemon gone; terminal "
             "restored", t_pty, ctx)
    except Skip as e:
        RESULTS.out("SKIP", "live daemon cases", str(e))
    except Fail as e:
        RESULTS.out("FAIL", "setup", str(e))
    except KeyboardInterrupt:
        RESULTS.out("FAIL", "interrupted")
    finally:
        if fake:
            fake.close()
        if getattr(ctx, "stepper", None):
            ctx.stepper.close()
        CHILDREN.stop_all()
    sys.stdout.write("%d passed, %d failed, %d skipped\n" % (
        RESULTS.passed, RESULTS.failed, RESULTS.skipped))
    return 1 if RESULTS.failed else 0


if __name__ == "__main__":
    sys.exit(main())
