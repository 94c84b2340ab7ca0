#!/usr/bin/python3
"""bench_referrers: pymemd's referrers against the target's own gc.get_referrers().

For each size it starts a target holding that many Session instances (half in a module-level
dict, half in a list in a class attribute), which times, itself and best of 3:

- its own census, Counter(map(type, gc.get_objects())): what the pause is measured against
  (the goal is a pause of at most half of it, as for the census);
- gc.get_referrers(*instances), the question pymemd answers. It compares every reference it
  meets with each argument in turn, so it costs a + b x instances: up to 20k instances it is
  timed for all of them; above, for 1 and for 1,000 instances (one whole-heap walk each) and
  the line through those two points gives the time for all of them (printed "~", extrapolated;
  a real call at 1M instances would run for hours).

Then a running pymemd (census_min_interval 0, so that every request copies and walks anew)
answers GET .../referrers?type=Session&fresh=1 --reps times (one that takes longer than the
daemon's 30 s wait is then polled for without fresh=1 until its kept answer comes); printed side
by side: the target's times,
pymemd's pause (how long the target was stopped), walk after it and total request time, best
of --reps, and the ratios; for the pause, pymemd's own census of the same heap (c.pause:
?fresh=1 censuses, best of --reps); and the pause of a referrers request right after a census
(after c.: what a scheduled census followed by someone asking meets), with how often it stopped
the target. The machine's 1-minute load average is printed at the end of each row: every time
here, the target's own included, grows with it. Figures only; nothing is asserted.

    tests/bench/bench_referrers.py [--pymemd build/pymemd] [--python PY]
        [--sizes 100000,1000000,5000000] [--reps 3] [--nice -5]

--nice runs pymemd at that niceness (a negative one needs root): on a machine busy with other
work, a pause is mostly pymemd waiting for a CPU while the target stands still. Where the kernel
groups tasks by session (/proc/sys/kernel/sched_autogroup_enabled = 1) a niceness orders pymemd
only against this session's processes, not against work in other sessions.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

TARGET = r'''
import gc, os, sys, time
from collections import Counter
n = int(sys.argv[1])
class Session: pass
class Registry: pending = []
cache = {}
for i in range(n // 2):
    cache[i] = Session()
Registry.pending.extend(Session() for _ in range(n - n // 2))
gc.collect(); gc.disable()

def best(fn, *args):
    b = 1e9
    for _ in range(3):
        t = time.perf_counter(); r = fn(*args); b = min(b, time.perf_counter() - t)
        del r
    return b

census = best(lambda: Counter(map(type, gc.get_objects())))
insts = list(cache.values()) + Registry.pending
if n <= 20000:
    refs, how = best(gc.get_referrers, *insts), "measured"
else:
    one = best(gc.get_referrers, *insts[:1])
    k = 1000
    many = best(gc.get_referrers, *insts[:k])
    refs, how = one + (many - one) / (k - 1) * (n - 1), "extrapolated"
del insts
os.write(1, ("%d %.6f %.6f %s\n" % (len(gc.get_objects()), census, refs, how)).encode())
os.read(0, 1)
'''


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", default="build/pymemd")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--sizes", default="100000,1000000,5000000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--nice", type=int, default=0)
    a = ap.parse_args()
    print("%10s %10s %10s %12s %9s %9s %9s %9s %8s %8s %12s %5s" % (
        "instances", "objects", "census s", "get_refs s", "c.pause s", "pause s", "walk s",
        "total s", "pause/c", "total/r", "after c. s", "load"))
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
        conf.write("census_min_interval = 0\nmax_census_pause_on_demand = 10\n")
        conf.flush()
        for n in [int(x) for x in a.sizes.split(",")]:
            run(a, conf.name, n)
    return 0


def fetch(url):
    """The JSON answer, or None when pymemd gave up waiting for it (503)."""
    try:
        with urllib.request.urlopen(url, timeout=600) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        if e.code == 503 and "kept" in body:
            return None
        raise RuntimeError("pymemd answered %d: %s" % (e.code, body))


def run(a, conf, n):
    t = subprocess.Popen([a.python, "-c", TARGET, str(n)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, start_new_session=True)
    d = None
    try:
        objs, census, refs, how = t.stdout.readline().decode().split()
        census, refs = float(census), float(refs)
        port = free_port()
        d = subprocess.Popen((["nice", "-n", str(a.nice)] if a.nice else []) + [
                             a.pymemd, "--config", conf, "--listen", "127.0.0.1:%d" % port,
                              "--pid", str(t.pid), "--census-interval", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = "http://127.0.0.1:%d/api/v1/processes/%d" % (port, t.pid)
        for _ in range(200):
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if json.load(r).get("status") == "ok":
                        break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        best_pause = best_walk = best_total = 1e9
        for _ in range(a.reps):
            start, start_real = time.monotonic(), time.time()
            doc = fetch(url + "/referrers?type=Session&fresh=1")
            while doc is None:  # past the daemon's 30 s wait: the answer is kept when done
                time.sleep(0.2)
                doc = fetch(url + "/referrers?type=Session")
                if doc is not None and doc["at"] < start_real:
                    doc = None  # the previous request's
            best_total = min(best_total, time.monotonic() - start)
            best_pause = min(best_pause, doc["pause_seconds"])
            best_walk = min(best_walk, doc["walk_seconds"])
        # pymemd's own census of the same heap, for the pause: what the referrers copy adds
        # (the pages outside the arenas their walk reads, copied while the target is stopped).
        census_pause = 1e9
        for _ in range(a.reps):
            with urllib.request.urlopen(url + "/objects?fresh=1&top=1", timeout=600) as r:
                census_pause = min(census_pause, json.load(r)["pause_seconds"])
        # A referrers request right after a census: the pages outside the arenas that each
        # needs differ, and each kind remembers its own.
        after, stops = 1e9, set()
        for _ in range(a.reps):
            with urllib.request.urlopen(url + "/objects?fresh=1&top=1", timeout=600) as r:
                json.load(r)
            doc = fetch(url + "/referrers?type=Session&fresh=1")
            while doc is None:
                time.sleep(0.2)
                doc = fetch(url + "/referrers?type=Session")
            after = min(after, doc["pause_seconds"])
            stops.add(str(doc.get("stops", "?")))
        shown = ("~" if how == "extrapolated" else "") + "%.4g" % refs
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        print("%10d %10s %10.4f %12s %9.4f %9.4f %9.4f %9.4f %8.2f %8.4f %12s %5s" % (
            n, objs, census, shown, census_pause, best_pause, best_walk, best_total,
            best_pause / census, best_total / refs,
            "%.4f (%s)" % (after, "/".join(sorted(stops))), load), flush=True)
    finally:
        for p in (d, t):
            if p is not None:
                p.kill()
                p.wait()


if __name__ == "__main__":
    sys.exit(main())
