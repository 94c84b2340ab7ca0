#!/usr/bin/python3
"""bench_refchurn: referrers on a heap that grows and churns, counting the target's stops.

A target's thread keeps 50k Session instances in a module-level list and a dict, adding 200 every
2 ms and dropping the oldest 150 once past 50k (the GC disabled, so that no collection refuses a
request); --rebuild drops them by rebuilding the list (sessions = sessions[150:], a new list
object each time) instead of deleting in place. A running pymemd (census_min_interval 0) answers
GET .../referrers?type=Session&fresh=1 --n times, 0.2 s apart; printed: the stops of each request,
how many walked after the target was resumed, the pause (median, max) and the load average.
Figures only; nothing is asserted.

    tests/bench/bench_refchurn.py --pymemd build/pymemd --python PY [--n 20] [--rebuild]
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pymemdtest  # noqa: E402
from pymemdtest import CHILDREN, clean_env, read_line  # noqa: E402

TARGET = r'''
import gc, sys, threading, time
gc.disable()
class Session(object):
    pass
sessions, by_id = [], {}
def churn():
    global sessions
    n = 0
    while True:
        for _ in range(200):
            s = Session(); sessions.append(s); by_id[n] = s; n += 1
        if len(sessions) > 50000:
            if REBUILD:
                sessions = sessions[150:]
            else:
                del sessions[:150]
            for k in range(n - 50200, n - 50050):
                by_id.pop(k, None)
        time.sleep(0.002)
for i in range(20000):
    s = Session(); sessions.append(s); by_id[-i - 1] = s
threading.Thread(target=churn, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", default="build/pymemd")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--rebuild", action="store_true")
    a = ap.parse_args()
    target = TARGET.replace("REBUILD", "True" if a.rebuild else "False")
    p = CHILDREN.spawn([a.python, "-c", target], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, env=clean_env())
    d = None
    try:
        read_line(p, 60)
        d = pymemdtest.Pymemd(a.pymemd, ["--pid", str(p.pid), "--interval", "0.2",
                                         "--census-interval", "0"], "pymemd",
                              conf="census_min_interval = 0\n", env=clean_env()).start()
        pymemdtest.wait_ok(d, [p.pid])
        path = "/api/v1/processes/%d/referrers?type=Session&fresh=1" % p.pid
        rows, errors = [], 0
        for _ in range(a.n):
            try:
                x = d.json(path, timeout=60)
                rows.append((x["stops"], x["walked_after_resume"], x["pause_seconds"]))
            except pymemdtest.Fail as e:
                errors += 1
                print("error: %s" % str(e)[-160:])
            time.sleep(0.2)
        stops = [r[0] for r in rows]
        pauses = sorted(r[2] for r in rows) or [0]
        print("stops: %s" % stops)
        print("requests by stops: %s, failed: %d" % (
            ", ".join("%d: %d" % (s, stops.count(s)) for s in sorted(set(stops))), errors))
        print("walked after resume: %d of %d" % (sum(1 for r in rows if r[1]), len(rows)))
        print("pause: median %.1f ms, max %.1f ms; load %.2f" % (
            pauses[len(pauses) // 2] * 1e3, pauses[-1] * 1e3, os.getloadavg()[0]))
    finally:
        if d is not None:
            d.shutdown()
        CHILDREN.reap(p)


if __name__ == "__main__":
    sys.exit(main())
