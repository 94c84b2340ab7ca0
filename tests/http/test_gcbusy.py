#!/usr/bin/python3
"""The GC busy-ratio estimate (python_gc_busy_ratio_estimate, gc.busy_ratio_estimate) against the
target's own record of when its GC ran.

    /usr/bin/python3 test_gcbusy.py --pymemd build/pymemd

A target (gcbusy_target.py, under the system python3 and pyenv 3.12) first does nothing, then
collects about half the time, recording each collection's start and stop through gc.callbacks.
pymemd polls the GC's `collecting` flag every gc_poll_interval (0.05 s), a quarter as often
while the GC stayed idle between two samples, each such poll counting four times. Then:
  - after the idle stretch the estimate is 0, and the target made no collection;
  - after the busy stretch the estimate equals the share of time the target spent collecting
    over exactly the samples the estimate covers (the last 60: from the history), within 0.15
    (over 4 standard deviations of 240 polls of a share near a half).

PASS/FAIL/SKIP lines, ending with exactly `N passed, M failed, K skipped`; exit 0 iff nothing
failed.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from pymemdtest import (RESULTS, Fail, Pymemd, Target, case, make_tag,  # noqa: E402
                        pyenv_python, read_line, run_driver, shown)

GCBUSY_TARGET = os.path.join(HERE, "gcbusy_target.py")
INTERVAL = 0.2
WINDOW = 60        # samples the estimate covers (TARGET_BUSY_WINDOW)
TOLERANCE = 0.15


def command(t, text, timeout=60):
    t.p.stdin.write((text + "\n").encode())
    t.p.stdin.flush()
    line = read_line(t.p, timeout)
    try:
        return json.loads(line)
    except ValueError:
        raise Fail("%s answered %r to %r" % (t.label, line, text))


def latest(inst, pid):
    r = inst.get("/api/v1/processes/%d" % pid)
    if r.status != 200:
        raise Fail("GET /api/v1/processes/%d: %s" % (pid, r.describe()))
    p = r.json()
    if p.get("status") != "ok":
        raise Fail("pid %d: status %s: %s" % (pid, shown(p.get("status")), p.get("error")))
    return p


def overlap(spans, a, b):
    return sum(max(0.0, min(stop, b) - max(start, a)) for start, stop in spans)


def t_busy(c, exe, label, cmd):
    tag, _ = make_tag("pymemdgcbusy")
    t = Target(label, list(cmd) + [GCBUSY_TARGET, "--tag", tag], tag)
    inst = Pymemd(exe, ["--pid", str(t.pid), "--interval", str(INTERVAL), "--census-interval",
                        "0", "--history", "30"], "pymemd (%s)" % label)
    try:
        inst.start()
        command(t, "idle 3")
        p = latest(inst, t.pid)
        c.eq("collections of the target while idle", [], command(t, "spans")["spans"])
        c.eq("the estimate after the idle stretch", 0.0,
             (p.get("gc") or {}).get("busy_ratio_estimate"))
        command(t, "busy %g" % (WINDOW * INTERVAL + 2))
        p = latest(inst, t.pid)
        est = (p.get("gc") or {}).get("busy_ratio_estimate")
        r = inst.get("/api/v1/processes/%d/history" % t.pid)
        if r.status != 200:
            raise Fail("GET .../history: %s" % r.describe())
        ts = [e["t"] for e in r.json().get("samples") or []]
        if p["sampled_at"] not in ts or ts.index(p["sampled_at"]) < WINDOW:
            raise Fail("the history does not hold the %d samples before the one read (%s): %s"
                       % (WINDOW, p["sampled_at"], ts[-3:]))
        k = ts.index(p["sampled_at"])
        a, b = ts[k - WINDOW], ts[k]
        spans = command(t, "spans")["spans"]
        truth = overlap(spans, a, b) / (b - a)
        c.note("%d collections; share of time collecting over the %d samples (%.1f s): "
               "%.3f; pymemd's estimate %s" % (len(spans), WINDOW, b - a, truth, est))
        if truth < 0.25:
            raise Fail("the target collected only %.3f of the time: the test needs a busier "
                       "GC (is the machine overloaded?)" % truth)
        c.ok(isinstance(est, float) and abs(est - truth) <= TOLERANCE,
             "estimate %s within %.2f of the target's own share %.3f" % (est, TOLERANCE, truth))
    finally:
        inst.shutdown()
        t.close()


def run(exe):
    interps = []
    if os.path.exists("/usr/bin/python3"):
        interps.append(("system-python3", ["/usr/bin/python3"]))
    label, path = pyenv_python(12)
    if path:
        interps.append((label, [path]))
    else:
        RESULTS.out("SKIP", "interpreter pyenv 3.12", "not installed")
    for label, cmd in interps:
        case("gc busy ratio: idle, then collecting: = the target's own share (%s)" % label,
             t_busy, exe, label, cmd)


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pymemd", required=True)
    opts = ap.parse_args()
    return run_driver("GC busy ratio: %s" % os.path.abspath(opts.pymemd), run,
                      os.path.abspath(opts.pymemd))


if __name__ == "__main__":
    sys.exit(main())
