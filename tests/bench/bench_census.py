#!/usr/bin/python3
"""bench_census: pymemd's census against the target's own fastest in-process census.

For each size (objects in reference cycles) it starts a target that times
Counter(map(type, gc.get_objects())) itself (best of 3), then has a running pymemd take censuses
of it on demand (GET .../objects?fresh=1, as an on-call engineer would; the copy buffer is warm
after the first) and prints, side by side: the target's own census time, pymemd's pause (how
long the target was stopped) and total time, best of 5, and the ratios. Also the first (cold)
census's pause, and pymemd's own peak RSS (VmHWM) over those censuses against the arena bytes
copied: what census_max_memory and the unit's MemoryMax are sized from. Figures only; nothing
is asserted.

    tests/bench/bench_census.py [--pymemd build/pymemd] [--python PY] [--sizes 100000,1000000]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

TARGET = r'''
import gc, os, sys, time
from collections import Counter
n = int(sys.argv[1])
class Node: pass
keep = []
for i in range(n // 2):
    a = Node(); b = Node(); a.b = b; b.a = a; keep.append(a)
gc.collect(); gc.disable()
best = 1e9
for _ in range(3):
    t = time.perf_counter(); c = Counter(map(type, gc.get_objects())); best = min(best, time.perf_counter() - t)
    c = None
os.write(1, ("%d %.6f\n" % (len(gc.get_objects()), best)).encode())
os.read(0, 1)
'''


def hwm_mib(pid):
    """pymemd's peak resident set so far, in MiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", default="build/pymemd")
    ap.add_argument("--python", default=None)
    ap.add_argument("--sizes", default="100000,1000000,5000000")
    a = ap.parse_args()
    py = a.python
    if not py:
        root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
        cand = os.path.join(root, "versions", "3.11.7", "bin", "python3.11")
        py = cand if os.path.exists(cand) else "/usr/bin/python3"
    print("interpreter: %s" % py)
    print("%10s %9s %9s %9s %10s %10s %8s %8s %8s %7s %9s %8s" % (
        "objects", "own_ms", "pause_ms", "total_ms", "pause/own", "total/own", "stop_ms",
        "copy_ms", "copy_MB", "pages", "cold_ms", "peak_MB"))
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("max_census_pause_on_demand = 60\ncensus_interval = 0\ncensus_min_interval = 0\n")
        conf = f.name
    for n in (int(x) for x in a.sizes.split(",")):
        p = subprocess.Popen([py, "-c", TARGET, str(n)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
        try:
            objs, own = p.stdout.readline().decode().split()
            own = float(own)
            port = 20000 + os.getpid() % 20000
            d = subprocess.Popen([a.pymemd, "--listen", "127.0.0.1:%d" % port, "--pid",
                                  str(p.pid), "--config", conf, "--log-level", "error"])
            best = cold = peak = None
            try:
                url = "http://127.0.0.1:%d/api/v1/processes/%d/objects?top=1&fresh=1" % (
                    port, p.pid)
                for attempt in range(100):
                    try:
                        urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5)
                        break
                    except OSError:
                        time.sleep(0.1)
                time.sleep(1.5)  # the first sample locates the interpreter
                for _ in range(6):
                    o = json.loads(urllib.request.urlopen(url, timeout=120).read())
                    if cold is None:
                        cold = o
                    elif best is None or o["pause_seconds"] < best["pause_seconds"]:
                        best = o
                peak = hwm_mib(d.pid)
            finally:
                d.terminate()
                d.wait()
            if not best:
                print("%10s census failed" % objs)
                continue
            print("%10s %9.1f %9.1f %9.1f %9.2fx %9.2fx %8.1f %8.1f %8.1f %7d %9.1f %8.1f" % (
                objs, own * 1e3, best["pause_seconds"] * 1e3, best["walk_seconds"] * 1e3,
                best["pause_seconds"] / own, best["walk_seconds"] / own,
                best["stop_seconds"] * 1e3, best["copy_seconds"] * 1e3,
                best["copied_bytes"] / 2**20, best["pages_read"], cold["pause_seconds"] * 1e3,
                peak))
        finally:
            p.kill()
            p.wait()
    os.unlink(conf)
    print("own: the target's Counter(map(type, gc.get_objects())), best of 3; pause: how long "
          "pymemd kept it stopped; total: pymemd's whole census (best of 5 warm); cold: the "
          "first census's pause; peak: pymemd's VmHWM (MiB) after the censuses")


if __name__ == "__main__":
    sys.exit(main())
