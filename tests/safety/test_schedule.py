#!/usr/bin/python3
"""pymemd's schedule does not harm targets or starve itself (issue 11 items 3, 5, 7; issue 10's
readiness race). Against a real pymemd and real CPython targets, standard library only:

- flood: two clients ask for ?fresh=1 censuses of one target (objects and growth) for 10 s.
  The target is censused at most ceil(10 / census_min_interval) + 1 times (the daemon's own
  censuses_total, and the distinct census times the clients were served); answers inside the
  window carry the latest census with an Age header; another target's sampled_at is never
  staler than 2 intervals (read from the JSON all along); WATCHDOG=1 keeps coming on the
  notify socket (WATCHDOG_USEC set) all through the flood;
- 429: when the last on-demand census failed (max_census_pause_on_demand too small for the
  heap), a request inside the window gets 429, Retry-After and a JSON error naming the failure;
- census_match: with --all and no census_match no process on the host is censused on schedule,
  and the target says why; with census_match, only the processes it matches; SIGHUP applies a
  new census_match;
- PSS cadence: smaps_rollup is read every pss_interval, not every sample, the value kept with
  the time of its read; above pss_max_rss, or with pss_interval 0, pss_bytes is null with the
  reason, and Prometheus leaves the series out;
- readiness: READY=1 (notify socket) and /healthz 200 come only once a first snapshot is
  published: every /metrics right after either is 200, in 15 fresh starts.

Prints PASS/FAIL/SKIP lines and ends with "N passed, M failed, K skipped"; exit status 0 iff
nothing failed.
"""
import argparse
import http.client
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.dont_write_bytecode = True
import pymemdtest  # noqa: E402
from pymemdtest import (RESULTS, Fail, NotifySocket, clean_env, pyenv_python,  # noqa: E402
                        request, run_driver, short, start_daemon)


# A target: N objects in reference cycles (so they are GC-tracked and stay), then it waits.
# Its first line is its own object count once quiescent, and its pid.
TARGET = r'''
import gc, json, os, sys, time
n = int(sys.argv[1])
class Node(object):
    __slots__ = ("peer", "payload")
keep = []
for i in range(n):
    a = Node(); b = Node()
    a.peer = b; b.peer = a
    a.payload = (i, "x")
    b.payload = [i]
    keep.append(a)
gc.collect()
os.write(1, (json.dumps({"objects": len(gc.get_objects()), "pid": os.getpid()}) + "\n").encode())
while True:
    time.sleep(0.05)
'''


def target(py, n, tag):
    """The TARGET script with n pairs under py; its truth is {"objects": gc.get_objects()}."""
    return pymemdtest.Target("target (%s)" % py, [py, "-c", TARGET, str(n), tag],
                             env=clean_env(), error=Fail, timeout=60)


def daemon(exe, args, conf, notify=None, watchdog_usec=None, wait=True):
    """pymemd with the configuration text conf, a notify socket and a watchdog when given;
    ready (the shared readiness wait), or only started without wait."""
    env = clean_env(NOTIFY_SOCKET=notify.path if notify else None,
                    WATCHDOG_USEC=str(watchdog_usec) if watchdog_usec else None)
    return start_daemon(exe, args, conf, env=env, ready_timeout=20, wait=wait)


def test_flood(exe, py, tmp):
    """Two clients flood ?fresh=1 for 10 s; the schedule holds."""
    name = "two clients flooding ?fresh=1 for 10 s (%s)" % py
    interval, window, flood = 1.0, 2.5, 10.0
    a = target(py, 150000, "flooded")
    b = target(py, 1000, "bystander")
    notify = NotifySocket(tmp)
    d = None
    try:
        d = daemon(exe, ["--pid", str(a.pid), "--pid", str(b.pid)],
                   "interval = %g\ncensus_interval = 0\ncensus_min_interval = %g\n"
                   % (interval, window), notify, watchdog_usec=2000000, wait=False)
        if notify.wait_for("READY=1", 30) is None:
            raise Fail("no READY=1 within 30 s: %s" % short(d.stderr()[-1500:], 1500))
        d.wait_process(a.pid)
        d.wait_process(b.pid)
        before = d.process(a.pid).get("censuses_total", 0)
        stop = threading.Event()
        answers = []      # (status, census at, Age header, Retry-After, wall time)
        staleness = []    # (wall time of the read, age of b's sampled_at)
        problems = []
        lock = threading.Lock()

        def flooder(path):
            c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
            try:
                while not stop.is_set():
                    r = d.get(path, conn=c)
                    st, body = r.status, r.body
                    now = time.time()
                    at = None
                    if st == 404 and "growth needs two censuses" in body.decode():
                        continue   # until the second census: growth has nothing to compare
                    if st == 200:
                        doc = json.loads(body)
                        at = doc.get("at") if "objects" in path else doc.get("to")
                    with lock:
                        answers.append((st, at, r.h("Age"), r.h("Retry-After"), now))
            except Exception as e:   # noqa: BLE001 -- reported as a failure
                with lock:
                    problems.append("%s: %s" % (path, e))
            finally:
                c.close()

        def watcher():
            c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
            try:
                while not stop.is_set():
                    r = d.get("/api/v1/processes/%d" % b.pid, conn=c)
                    st, body = r.status, r.body
                    now = time.time()
                    if st == 200:
                        staleness.append((now, now - json.loads(body)["sampled_at"]))
                    else:
                        problems.append("bystander: HTTP %d" % st)
                    time.sleep(0.1)
            except Exception as e:   # noqa: BLE001
                problems.append("watcher: %s" % e)
            finally:
                c.close()

        threads = [threading.Thread(target=flooder, args=(p,)) for p in (
            "/api/v1/processes/%d/objects?fresh=1&top=3" % a.pid,
            "/api/v1/processes/%d/growth?fresh=1" % a.pid)]
        threads.append(threading.Thread(target=watcher))
        t0 = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(flood)
        stop.set()
        for t in threads:
            t.join(60)
        t1 = time.monotonic()
        after = d.process(a.pid)
        taken = after.get("censuses_total", 0) - before
        bound = int(math.ceil(flood / window)) + 1
        if taken > bound:
            problems.append("%d censuses in %.0f s with census_min_interval %g (at most %d)" % (
                taken, flood, window, bound))
        if taken < 1:
            problems.append("no census taken at all")
        ats = sorted(set(x[1] for x in answers if x[1] is not None))
        if len(ats) > taken:
            problems.append("clients saw %d distinct censuses, the daemon counts %d" % (
                len(ats), taken))
        for x, y in zip(ats, ats[1:]):
            if y - x < window - 0.25:
                problems.append("censuses at %.3f and %.3f: %.2f s apart, under the window" % (
                    x, y, y - x))
        statuses = {}
        for st, at, age, retry, now in answers:
            statuses[st] = statuses.get(st, 0) + 1
            if st == 200 and age is not None and not (
                    0 <= int(age) <= window and abs(now - at - int(age)) <= 1.0 + 0.5):
                problems.append("Age %s for a census %.2f s old" % (age, now - at))
            if st not in (200,):
                problems.append("answer %d during the flood (the censuses succeed)" % st)
        reused = sum(1 for x in answers if x[0] == 200 and x[2] is not None)
        if reused < 10:
            problems.append("only %d answers from the latest census (Age header)" % reused)
        worst = max((s for _, s in staleness), default=None)
        if worst is None or len(staleness) < 20:
            problems.append("the bystander was read only %d times" % len(staleness))
        elif worst > 2 * interval:
            problems.append("the bystander's sampled_at was %.2f s old (over 2 intervals)" % worst)
        # Watchdog: WATCHDOG_USEC 2 s, so a ping every 1 s; none missing during the flood.
        pings = [t for t in notify.times("WATCHDOG=1") if t0 - 1 <= t <= t1]
        gaps = [y - x for x, y in zip([t0] + pings, pings + [t1])]
        if not pings or max(gaps) > 2.0:
            problems.append("watchdog pings during the flood: %d, largest gap %.2f s" % (
                len(pings), max(gaps)))
        if problems:
            RESULTS.out("FAIL", name, "; ".join(problems[:6]))
        else:
            RESULTS.out("PASS", name, "(%d requests %s, %d censuses (bound %d), %d from the latest "
                        "census; bystander at most %.2f s stale; %d watchdog pings, gap <= %.2f s)"
                        % (len(answers), statuses, taken, bound, reused, worst, len(pings),
                           max(gaps)))
    finally:
        if d:
            d.shutdown()
        notify.close()
        a.close()
        b.close()


def test_429(exe, py, tmp):
    """A failed on-demand census: the next request inside the window gets 429 + Retry-After."""
    name = "429 with Retry-After after a failed census inside the window (%s)" % py
    window = 30
    t = target(py, 400000, "too-big")
    d = None
    try:
        d = daemon(exe, ["--pid", str(t.pid)],
                   "interval = 0.5\ncensus_interval = 0\ncensus_min_interval = %d\n"
                   "max_census_pause_on_demand = 0.001\n" % window)
        d.wait_process(t.pid)
        path = "/api/v1/processes/%d/objects?fresh=1" % t.pid
        t0 = time.monotonic()   # the window opens when the census starts, after this
        r1 = d.get(path)
        r2 = d.get(path)
        r3 = d.get("/api/v1/processes/%d/growth?fresh=1" % t.pid)
        elapsed = time.monotonic() - t0
        p = d.process(t.pid)
        problems = []
        if r1.status != 503 or "abandoned" not in r1.json()["error"]["message"]:
            problems.append("first census: %d %s (expected 503, abandoned at the 1 ms budget)"
                            % (r1.status, short(r1.body, 120)))
        for label, r in (("objects", r2), ("growth", r3)):
            if r.status != 429:
                problems.append("%s again: %d %s (expected 429)" % (label, r.status,
                                                                    short(r.body, 120)))
                continue
            err = r.json().get("error", {})
            ra = r.h("Retry-After") or ""
            if err.get("code") != 429 or "abandoned" not in err.get("message", ""):
                problems.append("%s: JSON error %s" % (label, short(r.body, 160)))
            if not ra.isdigit() or not (window - elapsed - 1 <= int(ra) <= window):
                problems.append("%s: Retry-After %r (window %d s)" % (label, ra, window))
            if r.h("Content-Type") != "application/json":
                problems.append("%s: Content-Type %s" % (label, r.h("Content-Type")))
        if p["censuses_total"] != 1:
            problems.append("censuses_total %s (expected 1: the 429s took none)" %
                            p["censuses_total"])
        if problems:
            RESULTS.out("FAIL", name, "; ".join(problems))
        else:
            RESULTS.out("PASS", name, "(503 then 429 twice, Retry-After %s, %s)" % (
                r2.h("Retry-After"), short(r2.json()["error"]["message"], 100)))
    finally:
        if d:
            d.shutdown()
        t.close()


def test_census_match(exe, py, tmp):
    """--all censuses nobody on schedule unless census_match says so; SIGHUP changes it."""
    name = "census_match chooses who is censused on schedule; --all alone: nobody (%s)" % py
    tag = "pymemd-schedule-%d" % os.getpid()
    t = target(py, 1000, tag)
    other = target(py, 1000, "not-selected-%d" % os.getpid())
    d = None
    problems = []
    try:
        # --all, no census_match: no process on the host is censused on schedule.
        # A generous pause budget: this test is about who, not how long (test_budget is).
        conf = "interval = 0.3\ncensus_interval = 0.3\ndiscovery_interval = 0.2\n" \
               "max_census_pause = 2\n"
        d = daemon(exe, ["--all"], conf)
        d.wait_process(t.pid)
        # Wait until the schedule has looked at the target (it then says why no census).
        end = time.monotonic() + 20
        while time.monotonic() < end and not d.process(t.pid).get("objects_error"):
            time.sleep(0.1)
        time.sleep(1.0)   # a few more census intervals (0.3 s) for every process watched
        procs = d.json("/api/v1/processes")["processes"]
        censused = [(p["pid"], p["censuses_total"]) for p in procs if p.get("censuses_total")]
        if censused:
            problems.append("--all censused %s on schedule" % censused)
        mine = [p for p in procs if p["pid"] == t.pid]
        err = mine[0].get("objects_error") or "" if mine else ""
        if not mine or mine[0]["objects"] is not None or "census_match" not in err:
            problems.append("--all: the target's objects_error %r (should name census_match)"
                            % err)
        # SIGHUP: census_match = the tag. Only the target whose command line has it.
        d.write_conf(conf + "census_match = %s$\n" % tag)
        os.kill(d.p.pid, signal.SIGHUP)
        end = time.monotonic() + 15
        while time.monotonic() < end and not d.process(t.pid).get("objects"):
            time.sleep(0.1)
        p = d.process(t.pid)
        if not p.get("censuses_total") or not p.get("objects"):
            problems.append("after SIGHUP with census_match: target not censused (%s)" %
                            short(p.get("objects_error")))
        elif p["objects"]["total"] < t.truth["objects"] - 100 or \
                p["objects"]["total"] > t.truth["objects"] + 200:
            problems.append("census total %d, the target's own gc.get_objects() %d" % (
                p["objects"]["total"], t.truth["objects"]))
        time.sleep(1.0)
        procs = d.json("/api/v1/processes")["processes"]
        censused = sorted(p["pid"] for p in procs if p.get("censuses_total"))
        if censused != [t.pid]:
            problems.append("censused after SIGHUP: %s (expected only %d)" % (censused, t.pid))
        if problems:
            RESULTS.out("FAIL", name, "; ".join(problems))
        else:
            RESULTS.out("PASS", name, "(%d processes watched, none censused with --all; after "
                        "SIGHUP only pid %d (%d censuses))" % (
                            len(procs), t.pid, d.process(t.pid)["censuses_total"]))
    finally:
        if d:
            d.shutdown()
        t.close()
        other.close()


def test_budget(exe, py, tmp):
    """A scheduled census over max_census_pause is abandoned, then skipped and reported."""
    name = "scheduled census over max_census_pause: abandoned once, then skipped (%s)" % py
    t = target(py, 400000, "budget")
    d = None
    try:
        d = daemon(exe, ["--pid", str(t.pid)], "interval = 0.3\ncensus_interval = 0.3\n"
                   "max_census_pause = 0.001\n")
        d.wait_process(t.pid)
        # The first census (its scouting walk of the running heap takes a while) ends with an
        # error; from then on the schedule only skips, for 9 intervals.
        end = time.monotonic() + 60
        while time.monotonic() < end and not d.process(t.pid).get("objects_error"):
            time.sleep(0.05)
        first = d.process(t.pid)
        t0 = time.monotonic()
        errors = set([(first.get("objects_error") or "")[:40]])
        while time.monotonic() - t0 < 1.8:
            p = d.process(t.pid)
            errors.add((p.get("objects_error") or "")[:40])
            time.sleep(0.1)
        p = d.process(t.pid)
        d.shutdown()
        d = None
        # pymemd gone: whatever it did, the target runs.
        with open("/proc/%d/status" % t.pid) as f:
            state = [x for x in f if x.startswith("State:")][0].split()[1]
        problems = []
        # The first census is abandoned at 1 ms; the next 9 due ones (every 0.3 s) are skipped.
        if "abandoned" not in (first.get("objects_error") or ""):
            problems.append("first census: %r" % first.get("objects_error"))
        if p["censuses_total"] != 1:
            problems.append("censuses_total %d, 1.8 s after the first (expected 1: one "
                            "abandoned, then skipped)" % p["censuses_total"])
        if p["objects"] is not None:
            problems.append("a census fitted 1 ms: %s" % short(json.dumps(p["objects"]), 80))
        if "scheduled census skipped" not in (p.get("objects_error") or ""):
            problems.append("objects_error %r (seen: %s)" % (p.get("objects_error"), errors))
        if state != "S" and state != "R":
            problems.append("target state %s" % state)
        if problems:
            RESULTS.out("FAIL", name, "; ".join(problems))
        else:
            RESULTS.out("PASS", name, "(1 census, then 1.8 s of skips; objects_error: %s)" % short(
                p["objects_error"], 100))
    finally:
        if d:
            d.shutdown()
        t.close()


def test_pss(exe, py, tmp):
    """PSS read every pss_interval, not every sample; null with the reason when not read."""
    name = "PSS at its own cadence, null with a reason above pss_max_rss (%s)" % py
    t = target(py, 1000, "pss")
    problems = []
    d = None
    try:
        d = daemon(exe, ["--pid", str(t.pid)],
                   "interval = 0.1\ncensus_interval = 0\npss_interval = 1\n")
        d.wait_process(t.pid)
        seen = []
        end = time.monotonic() + 3.5
        while time.monotonic() < end:
            m = d.process(t.pid)
            seen.append((m["sampled_at"], m["memory"]["pss_read_at"], m["memory"]["pss_bytes"],
                         m["memory"]["pss_error"]))
            time.sleep(0.03)
        samples = sorted(set(x[0] for x in seen))
        reads = sorted(set(x[1] for x in seen))
        if len(samples) < 20:
            problems.append("only %d samples in 3.5 s at interval 0.1" % len(samples))
        if None in reads or any(x[2] is None or x[2] <= 0 or x[3] is not None for x in seen):
            problems.append("PSS null or with an error: %s" % [x for x in seen if x[2] is None
                                                               or x[3] is not None][:2])
        elif len(reads) > 5 or len(reads) < 3:
            problems.append("%d smaps_rollup reads in 3.5 s with pss_interval 1" % len(reads))
        for x, y in zip(reads, reads[1:]):
            if y - x < 0.9:
                problems.append("PSS read %.2f s after the previous one" % (y - x))
        for sampled, read, _, _ in seen:
            # The read is made during the sample, a moment after its sampled_at.
            if read is not None and not (-0.05 <= sampled - read <= 1.0 + 0.1 + 0.2):
                problems.append("a sample at %.2f serves a PSS read at %.2f" % (sampled, read))
                break
        d.shutdown()
        # Above pss_max_rss, and with pss_interval 0: null, the reason, no Prometheus series.
        for conf, word in (("pss_max_rss = 1K\n", "pss_max_rss"), ("pss_interval = 0\n",
                                                                  "pss_interval")):
            d = daemon(exe, ["--pid", str(t.pid)], "interval = 0.2\ncensus_interval = 0\n" + conf)
            m = d.wait_process(t.pid)["memory"]
            if m["pss_bytes"] is not None or m["pss_read_at"] is not None or \
                    word not in (m["pss_error"] or "") or not m["rss_bytes"]:
                problems.append("%s: memory %s" % (conf.strip(), m))
            text = d.get("/metrics?format=prometheus").body.decode()
            if "python_memory_proportional_bytes{" in text or \
                    "python_memory_resident_bytes{pid=\"%d\"" % t.pid not in text:
                problems.append("%s: Prometheus PSS/RSS series wrong" % conf.strip())
            d.shutdown()
            d = None
        if problems:
            RESULTS.out("FAIL", name, "; ".join(problems[:5]))
        else:
            RESULTS.out("PASS", name, "(%d samples, %d PSS reads in 3.5 s; null with the reason "
                        "above pss_max_rss and with pss_interval 0)" % (len(samples), len(reads)))
    finally:
        if d:
            d.shutdown()
        t.close()


def test_ready(exe, py, tmp):
    """READY=1 and /healthz 200 only once /metrics can be served (15 starts)."""
    name = "readiness: /metrics right after READY=1 or /healthz 200 is never 503"
    t = target(py, 200000, "ready")
    problems, early = [], 0
    try:
        for i in range(15):
            notify = NotifySocket(tmp) if i % 2 == 0 else None
            d = daemon(exe, ["--pid", str(t.pid)] if i % 3 else
                       ["--match", "^no-such-process-[x]yz$"],
                       "interval = 0.5\ncensus_interval = 0\n", notify, wait=False)
            try:
                if notify:
                    if notify.wait_for("READY=1", 20) is None:
                        problems.append("start %d: no READY=1" % i)
                        continue
                else:
                    end = time.monotonic() + 20
                    while time.monotonic() < end:
                        try:
                            r = request(d.port, "GET", "/healthz", timeout=5)
                            st, body = r.status, r.body
                        except OSError:
                            time.sleep(0.002)
                            continue
                        if st == 200:
                            break
                        early += 1
                        if st != 503 or json.loads(body)["error"]["code"] != 503:
                            problems.append("start %d: /healthz %d %s" % (i, st, short(body)))
                            break
                        time.sleep(0.002)
                for fmt in ("json", "prometheus", "openmetrics"):
                    r = d.get("/metrics?format=" + fmt)
                    if r.status != 200:
                        problems.append("start %d: /metrics?format=%s right after readiness: "
                                        "%d %s" % (i, fmt, r.status, short(r.body, 100)))
                r = d.get("/healthz")
                if r.status != 200:
                    problems.append("start %d: /healthz %d after READY=1" % (i, r.status))
            finally:
                d.shutdown()
                if notify:
                    notify.close()
        if problems:
            RESULTS.out("FAIL", name, "; ".join(problems[:5]))
        else:
            RESULTS.out("PASS", name, "(15 starts (8 with a notify socket); /healthz said 503 "
                        "\"starting\" %d times before the first snapshot)" % early)
    finally:
        t.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", required=True)
    ap.add_argument("--only", help="run only the test functions whose name contains this")
    a = ap.parse_args()
    return run_driver("the schedule does not harm targets or starve itself", run, a)


def run(a):
    exe = os.path.abspath(a.pymemd)
    label, py = pyenv_python(11)
    if not py:
        label, py = pyenv_python()
    py = py or "/usr/bin/python3"
    if os.geteuid() != 0:
        RESULTS.out("SKIP", "schedule tests", "need root or CAP_SYS_PTRACE to stop targets")
        return
    with tempfile.TemporaryDirectory(prefix="pymemd-schedule-") as tmp:
        for test in (test_ready, test_pss, test_429, test_budget, test_census_match,
                     test_flood):
            if a.only and a.only not in test.__name__:
                continue
            try:
                test(exe, py, tmp)
            except Exception as e:   # noqa: BLE001 -- a test that breaks fails
                RESULTS.out("FAIL", test.__doc__.strip().split("\n")[0],
                            "%s: %s" % (type(e).__name__, short(str(e), 300)))
                traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
