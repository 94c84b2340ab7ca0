#!/usr/bin/python3
"""bench_referrers: pymemd's referrers against the target's own gc.get_referrers().

For each size it starts a target holding that many Session instances (half in a module-level
dict, half in a list in a class attribute), which times its own gc.get_referrers(): for every
instance at once when that finishes in reasonable time (it compares each visited reference with
every argument, so it grows with instances x heap), else for one instance (one full walk of
the heap, a lower bound for any number of them). Then a running pymemd answers
GET .../referrers?type=Session three times; printed side by side: the target's time, pymemd's
pause (how long the target was stopped) and total time, best of 3, and the ratios. Figures
only; nothing is asserted.

    tests/bench/bench_referrers.py [--pymemd build/pymemd] [--python PY] [--sizes 100000,1000000,5000000]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

TARGET = r'''
import gc, os, sys, time
n = int(sys.argv[1])
class Session: pass
class Registry: pending = []
cache = {}
for i in range(n // 2):
    cache[i] = Session()
Registry.pending.extend(Session() for _ in range(n - n // 2))
gc.collect(); gc.disable()
insts = list(cache.values())[:1]
what = "one instance"
if n <= 20000:
    insts = list(cache.values()) + Registry.pending
    what = "all instances"
t = time.perf_counter(); r = gc.get_referrers(*insts); own = time.perf_counter() - t
del r, insts
os.write(1, ("%d %.6f %s\n" % (len(gc.get_objects()), own, what)).encode())
os.read(0, 1)
'''


def free_port():
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
    a = ap.parse_args()
    print("%10s %12s %-14s %12s %12s %12s %8s %8s" % (
        "instances", "objects", "target times", "target s", "pause s", "total s",
        "pause/t", "total/t"))
    for n in [int(x) for x in a.sizes.split(",")]:
        t = subprocess.Popen([a.python, "-c", TARGET, str(n)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, start_new_session=True)
        d = None
        try:
            objs, own, what = t.stdout.readline().decode().split(" ", 2)
            port = free_port()
            d = subprocess.Popen([a.pymemd, "--listen", "127.0.0.1:%d" % port, "--pid",
                                  str(t.pid), "--census-interval", "0"],
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
            best_pause = best_total = 1e9
            for _ in range(3):
                start = time.monotonic()
                with urllib.request.urlopen(url + "/referrers?type=Session", timeout=300) as r:
                    doc = json.load(r)
                best_total = min(best_total, time.monotonic() - start)
                best_pause = min(best_pause, doc["pause_seconds"])
            own = float(own)
            print("%10d %12s %-14s %12.4f %12.4f %12.4f %8.2f %8.2f" % (
                n, objs, what.strip(), own, best_pause, best_total, best_pause / own,
                best_total / own), flush=True)
        finally:
            for p in (d, t):
                if p is not None:
                    p.kill()
                    p.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
