#!/usr/bin/python3
"""Object census: safety and edge cases, against real interpreters (stdlib only).

- same-named types are never merged;
- the walk over a copy taken while the target was stopped equals the target's own count, and
  so does the second copy that a copy falling short of new pages needs;
- pymemd SIGKILLed while it holds the target stopped: the target runs on;
- the target killed while pymemd holds it stopped: pymemd reports it, does not crash;
- a census over its pause budget (--once: max_census_pause_on_demand) is abandoned and the
  target resumed;
- a non-blocking census of a heap being mutated hard: never a crash, never a census that does
  not add up; an inconsistent walk is reported as such.

Prints PASS/FAIL/SKIP lines and ends with "N passed, M failed, K skipped".
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pymemdtest  # noqa: E402
from pymemdtest import (RESULTS, Pymemd, free_port, pyenv_python, pyenv_root, run_driver,  # noqa: E402
                        wait_ok)


def interpreters():
    """The newest pyenv interpreter and the system one: a shared and a static build."""
    out = []
    label, path = pyenv_python()
    if path:
        out.append(path)
    else:
        RESULTS.out("SKIP", "pyenv interpreters", "none under %s" % pyenv_root())
    out.append("/usr/bin/python3")
    return out


TARGET = r'''
import gc, os, sys, threading, time
mode = sys.argv[1]
n = int(sys.argv[2])
def make(name):
    return type(name, (), {})
if mode == "grow":
    import json
    from collections import Counter
    class Leak: pass
    leaks = []
    json.dumps(Counter(["warm up the encoder"]))
    sys.stdin.readline
    os.write(1, b"ready\n")
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        if line.startswith("big"):
            # New objects outside the pymalloc arenas (classes, large tuples): on pages the
            # previous census did not need.
            for i in range(int(line.split()[1])):
                k = make("Big%d" % i)
                leaks.append((k, k(), tuple(range(100 + i % 50))))
            gc.disable()
            os.write(1, (json.dumps(Counter(type(o).__name__ for o in gc.get_objects()))
                         + "\n").encode())
        else:
            leaks.extend(Leak() for _ in range(int(line)))
            os.write(1, b"grown\n")
    sys.exit(0)
if mode == "twins":
    A = make("Twin"); B = make("Twin")
    keep = [A() for _ in range(100)] + [B() for _ in range(200)]
else:
    class Node: pass
    keep = []
    for i in range(n):
        a = Node(); b = Node(); a.b = b; b.a = a; keep.append(a)
gc.collect()
beat = [0]
def heartbeat():
    while True:
        beat[0] += 1
        os.write(2, b".")
        time.sleep(0.01)
if mode == "churn":
    def churn():
        junk = []
        while True:
            junk.append([{} for _ in range(50)])
            if len(junk) > 200:
                del junk[:100]
    threading.Thread(target=churn, daemon=True).start()
threading.Thread(target=heartbeat, daemon=True).start()
os.write(1, b"ready\n")
os.read(0, 1)
'''


class Target(pymemdtest.Target):
    """TARGET in one of its modes, started and reaped by the shared harness; it prints
    "ready" and then waits, blocked reading its stdin."""

    def __init__(self, py, mode, n=0):
        pymemdtest.Target.__init__(self, "%s %s" % (py, mode), [py, "-c", TARGET, mode, str(n)],
                                   ready="ready")
        self.wait_reading()

    def wait_reading(self, timeout=30):
        """Waits until the target's main thread is blocked reading its stdin: quiescent (a
        census taken before sees a heap that then moves: a later census needing pages the
        earlier one did not, so a second stop)."""
        pymemdtest.wait_reading(self.pid, timeout)

    def beats(self):
        self.errf.seek(0, 2)
        return self.errf.tell()

    def state(self):
        with open("/proc/%d/status" % self.pid) as f:
            return dict(l.split(":", 1) for l in f if ":" in l)


def pymemd_once(pymemd, pid, conf=""):
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(conf)
        path = f.name
    try:
        r = subprocess.run([pymemd, "--once", "--pid", str(pid), "--config", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.unlink(path)
    return r


def proc_of(r, pid):
    doc = json.loads(r.stdout)
    return [p for p in doc["processes"] if p["pid"] == pid][0]


def test_twins(pymemd, py):
    t = Target(py, "twins")
    try:
        # --once takes the scheduled census, whose default pause budget (50 ms) a busy machine
        # can exceed; this test is about names, not pauses.
        p = proc_of(pymemd_once(pymemd, t.pid, "max_census_pause = 1\n"), t.pid)
        rows = [x for x in (p.get("objects") or {}).get("types", []) if x["name"] == "Twin"]
        counts = sorted(x["count"] for x in rows)
        keys = set(x["type"] for x in rows)
        if counts == [100, 200] and len(keys) == 2:
            RESULTS.out("PASS", "same-named types kept apart (%s)" % py, ", ".join(sorted(keys)))
        else:
            RESULTS.out("FAIL", "same-named types kept apart (%s)" % py, "rows %s" % rows)
    finally:
        t.close()


def wait_traced(pid, tracer, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open("/proc/%d/status" % pid) as f:
                for l in f:
                    if l.startswith("TracerPid:") and int(l.split()[1]) == tracer:
                        return True
        except OSError:
            return False
    return False


def test_kill_daemon(pymemd, py):
    """SIGKILL pymemd while it holds the target stopped: the kernel must let the target go."""
    t = Target(py, "big", 400000)
    try:
        conf = "max_census_pause = 30\n"
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write(conf)
        d = subprocess.Popen([pymemd, "--once", "--pid", str(t.pid), "--config", f.name],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        caught = wait_traced(t.pid, d.pid, 20)
        d.kill()
        d.wait()
        os.unlink(f.name)
        if not caught:
            RESULTS.out("SKIP", "SIGKILL of pymemd mid-census (%s)" % py,
                   "never saw the target traced (census too quick)")
            return
        before = t.beats()
        time.sleep(0.5)
        st = t.state()["State"].strip()
        after = t.beats()
        if after > before and not st.startswith("t"):
            RESULTS.out("PASS", "SIGKILL of pymemd mid-census (%s)" % py,
                   "target state %s, heartbeats go on (+%d)" % (st, after - before))
        else:
            RESULTS.out("FAIL", "SIGKILL of pymemd mid-census (%s)" % py,
                   "target state %s, heartbeats %d -> %d" % (st, before, after))
    finally:
        t.close()


def test_target_dies(pymemd, py):
    """Kill the target while pymemd holds it stopped: pymemd must answer, not crash or hang."""
    t = Target(py, "big", 400000)
    try:
        d = subprocess.Popen([pymemd, "--once", "--pid", str(t.pid)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        caught = wait_traced(t.pid, d.pid, 20)
        t.p.kill()
        out, err = d.communicate(timeout=60)
        if not caught:
            RESULTS.out("SKIP", "target killed mid-census (%s)" % py, "never saw the target traced")
            return
        if d.returncode < 0:
            RESULTS.out("FAIL", "target killed mid-census (%s)" % py,
                   "pymemd died of signal %d" % -d.returncode)
            return
        p = proc_of(subprocess.CompletedProcess([], d.returncode, out, err), t.pid)
        if p.get("objects") is None and p.get("objects_error"):
            RESULTS.out("PASS", "target killed mid-census (%s)" % py,
                   "exit %d, objects_error: %s" % (d.returncode, p["objects_error"][:80]))
        else:
            RESULTS.out("FAIL", "target killed mid-census (%s)" % py, "objects: %s" % (
                json.dumps(p.get("objects"))[:120]))
    finally:
        t.close()


def test_max_pause(pymemd, py):
    t = Target(py, "big", 400000)
    try:
        p = proc_of(pymemd_once(pymemd, t.pid, "max_census_pause_on_demand = 0.001\n"), t.pid)
        before = t.beats()
        time.sleep(0.3)
        running = t.beats() > before and not t.state()["State"].strip().startswith("t")
        err = p.get("objects_error") or ""
        if p.get("objects") is None and "abandoned" in err and running:
            RESULTS.out("PASS", "census over max_census_pause abandoned (%s)" % py, err[:90])
        else:
            RESULTS.out("FAIL", "census over max_census_pause abandoned (%s)" % py,
                   "objects %s, error %r, target running %s" % (
                       json.dumps(p.get("objects"))[:60], err, running))
    finally:
        t.close()


def test_nonblocking_churn(pymemd, py):
    t = Target(py, "churn", 20000)
    try:
        ok = inconsistent = 0
        for _ in range(10):
            p = proc_of(pymemd_once(pymemd, t.pid, "census_nonblocking = true\n"), t.pid)
            o = p.get("objects")
            if o is None:
                err = p.get("objects_error") or ""
                if "inconsistent" not in err and "collecting" not in err:
                    RESULTS.out("FAIL", "non-blocking census of a churning heap (%s)" % py,
                           "no census and no reason: %r" % err)
                    return
                inconsistent += 1
                continue
            total = sum(x["count"] for x in o["types"])
            gens = sum(g["count"] for g in o["generations"])
            if total != o["total"] or gens != o["total"] or o["frozen"]:
                RESULTS.out("FAIL", "non-blocking census of a churning heap (%s)" % py,
                       "a census that does not add up: types %d, generations %d, total %d" % (
                           total, gens, o["total"]))
                return
            ok += 1
        RESULTS.out("PASS", "non-blocking census of a churning heap (%s)" % py,
               "%d consistent, %d reported inconsistent, none wrong" % (ok, inconsistent))
    finally:
        t.close()


class Daemon(Pymemd):
    """A pymemd watching one target, taking censuses only when asked (?fresh=1)."""

    def __init__(self, pymemd, pid):
        # Every ?fresh=1 here must take a census of its own.
        Pymemd.__init__(self, pymemd, ["--pid", str(pid), "--log-level", "error"], "pymemd",
                        conf="census_interval = 0\ninterval = 0.2\ncensus_min_interval = 0\n")
        self.base = "/api/v1/processes/%d" % pid
        try:
            self.start()
            wait_ok(self, [pid])
        except BaseException:
            self.close()
            raise

    def api(self, path):
        """The JSON of GET /api/v1/processes/PID<path> (Fail unless 200)."""
        return self.json(self.base + path, timeout=60)


def test_growth(pymemd, py):
    """Two on-demand censuses around exactly 500 new objects of one class: /growth must name that
    class first, +500 objects, and the bytes of 500 such objects."""
    t = Target(py, "grow")
    d = None
    try:
        d = Daemon(pymemd, t.pid)
        first = d.api("/objects?fresh=1")
        t.p.stdin.write(b"500\n")
        t.p.stdin.flush()
        if t.p.stdout.readline().strip() != b"grown":
            raise RuntimeError("target did not grow")
        t.wait_reading()
        second = d.api("/objects?fresh=1")
        growth = d.api("/growth")
        top = growth["types"][0] if growth["types"] else {}
        per = [x for x in second["types"] if x["name"] == "Leak"]
        size = per[0]["bytes"] // per[0]["count"] if per and per[0]["count"] else None
        if (top.get("name") == "Leak" and top.get("count") == 500 and size and
                top.get("bytes") == 500 * size and growth["from"] == first["at"] and
                growth["to"] == second["at"]):
            RESULTS.out("PASS", "growth between two censuses (%s)" % py,
                   "Leak +500 objects, +%d bytes" % top["bytes"])
        else:
            RESULTS.out("FAIL", "growth between two censuses (%s)" % py,
                   "top row %s (expected Leak +500, +%s bytes)" % (top, 500 * size if size else "?"))
    finally:
        if d:
            d.close()
        t.close()


def by_name(census):
    out = {}
    for x in census["types"]:
        out[x["name"]] = out.get(x["name"], 0) + x["count"]
    return out


def test_snapshot(pymemd, py):
    """The walk runs after the target is resumed, over a copy that includes the pages outside the
    arenas the previous census needed (the first census scouts them). New objects on other pages
    make the copy fall short: a walk of the running target learns the pages, and a second stop
    copies them too, so that the walk still runs after the target is resumed. Every census must
    equal the target's own count."""
    t = Target(py, "grow")
    d = None
    name = "snapshot census, and its fallback when the heap moved (%s)" % py
    try:
        d = Daemon(pymemd, t.pid)
        first = d.api("/objects?fresh=1")
        t.p.stdin.write(b"big 300\n")
        t.p.stdin.flush()
        truth = json.loads(t.p.stdout.readline())
        t.wait_reading()
        second = d.api("/objects?fresh=1")
        third = d.api("/objects?fresh=1")
        problems = []
        for label, c, stops, after in (("first", first, 1, True), ("second", second, 2, True),
                                       ("third", third, 1, True)):
            if (c.get("stops"), c.get("walked_after_resume")) != (stops, after):
                problems.append("%s census: stops %s, walked_after_resume %s (expected %d, %s)" % (
                    label, c.get("stops"), c.get("walked_after_resume"), stops, after))
        for label, c in (("second", second), ("third", third)):
            ours = by_name(c)
            off = sum(abs(ours.get(k, 0) - truth.get(k, 0)) for k in set(ours) | set(truth))
            if off > 20 or ours.get("Big7") != 1 or ours.get("tuple", 0) < 300:
                worst = sorted(((abs(ours.get(k, 0) - truth.get(k, 0)), k)
                                for k in set(ours) | set(truth)), reverse=True)[:4]
                problems.append("%s census off the target's own count by %d: %s" % (
                    label, off, worst))
        if problems:
            RESULTS.out("FAIL", name, "; ".join(problems))
        else:
            RESULTS.out("PASS", name, "stops 1, 2, 1; pages read %d, %d, %d; counts as the target's" % (
                first["pages_read"], second["pages_read"], third["pages_read"]))
    finally:
        if d:
            d.close()
        t.close()


def run(pymemd):
    if os.geteuid() != 0:
        RESULTS.out("SKIP", "census tests", "need root or CAP_SYS_PTRACE to stop other processes")
        return
    for py in interpreters():
        for test in (test_twins, test_growth, test_snapshot, test_kill_daemon, test_target_dies,
                     test_max_pause, test_nonblocking_churn, test_census_memory_cap):
            try:
                test(pymemd, py)
            except Exception as e:  # a broken case is a failure, not a crash of the suite
                RESULTS.out("FAIL", "%s (%s)" % (test.__name__, py), repr(e))
    # Two 3M-object targets: on one interpreter only (the walk does not depend on it).
    try:
        test_frozen_large(pymemd, interpreters()[0])
    except Exception as e:  # a broken case is a failure, not a crash of the suite
        RESULTS.out("FAIL", "test_frozen_large", repr(e))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", required=True)
    a = ap.parse_args()
    return run_driver("census tests: %s" % a.pymemd, run, a.pymemd)


# ---- bounds (issue 11): the frozen count off the sampling path, the census memory cap ----

FROZEN_TARGET = r"""
import gc, os, sys
class Node: pass
keep = []
for i in range(int(sys.argv[1]) // 2):
    a = Node(); b = Node(); a.b = b; b.a = a; keep.append(a)
gc.collect()
gc.freeze()
os.write(1, ("%d\n" % gc.get_freeze_count()).encode())
os.read(0, 1)
"""


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else float("nan")


def test_frozen_large(pymemd, py):
    """3M frozen objects, beside a control target of the same 3M objects unfrozen, both watched
    by one pymemd: the frozen one's samples take no longer than the control's (the permanent
    list is walked a bounded stretch per sample, never one read per object in one go) and it is
    sampled as often, frozen is null with the reason until that walk is through, then exactly
    the target's gc.get_freeze_count(). Then a census counts the list in its copy and samples
    serve its count, with its age. (Before: 6 s per sample of the frozen target, every 60 s.)
    Freshness is compared with the control's rather than with the clock: on a machine as loaded
    as the test hosts get, a round of samples of two 3M-object targets may itself take seconds;
    the soak checks the clock."""
    name = "3M frozen objects: samples stay quick and fresh, frozen exact (%s)" % py
    procs, d, conf = [], None, None
    try:
        for freeze in (True, False):
            src = FROZEN_TARGET if freeze else FROZEN_TARGET.replace("gc.freeze()", "")
            procs.append(subprocess.Popen([py, "-c", src, "3000000"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE))
        truth = int(procs[0].stdout.readline())
        procs[1].stdout.readline()
        fpid, cpid = procs[0].pid, procs[1].pid
        port = free_port()
        interval = 0.5
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("interval = %g\ncensus_interval = 0\nmax_census_pause = 5\n" % interval)
        conf = f.name
        d = subprocess.Popen([pymemd, "--listen", "127.0.0.1:%d" % port, "--pid", str(fpid),
                              "--pid", str(cpid), "--config", conf, "--log-level", "error"])
        import urllib.request
        base = "http://127.0.0.1:%d/api/v1/processes" % port

        def listing():
            doc = json.loads(urllib.request.urlopen(base, timeout=10).read())
            return time.time(), {p["pid"]: p for p in doc["processes"]}

        problems, seen_null, exact_at, polls = [], False, None, 0
        secs = {fpid: [], cpid: []}
        stamps = {fpid: set(), cpid: set()}
        max_age = 0.0
        start = time.monotonic()
        while time.monotonic() - start < 240:
            time.sleep(0.25)
            try:
                now, procs_ = listing()
            except OSError:
                continue
            if any(procs_.get(x, {}).get("status") != "ok" for x in (fpid, cpid)):
                continue
            polls += 1
            for x in (fpid, cpid):
                if procs_[x]["sampled_at"] not in stamps[x]:
                    stamps[x].add(procs_[x]["sampled_at"])
                    secs[x].append(procs_[x]["sample_seconds"])
                max_age = max(max_age, now - procs_[x]["sampled_at"])
            proc = procs_[fpid]
            frozen = proc["gc"]["frozen"]
            if frozen is None:
                if "counting the permanent generation" not in (proc.get("error") or ""):
                    problems.append("frozen null without the reason: error %r" % proc.get("error"))
                seen_null = True
            elif frozen != truth or proc["gc"].get("frozen_age_seconds") is None:
                problems.append("frozen %s (age %s), the target says %d" % (
                    frozen, proc["gc"].get("frozen_age_seconds"), truth))
            elif exact_at is None:
                exact_at = time.monotonic() - start
            if exact_at is not None and time.monotonic() - start > exact_at + 5:
                break
        if exact_at is None:
            problems.append("frozen never equalled the target's %d within 240 s" % truth)
        if len(stamps[fpid]) < len(stamps[cpid]) - 1:
            problems.append("the frozen target was sampled %d times, the control %d times" % (
                len(stamps[fpid]), len(stamps[cpid])))
        mf, mc = median(secs[fpid]), median(secs[cpid])
        if not mf <= 2 * mc + 0.05:
            problems.append("samples of the frozen target took %.3f s (median), the control's "
                            "%.3f s" % (mf, mc))
        # A census counts the list in its copy; samples then serve that count, with its age.
        census = json.loads(urllib.request.urlopen(
            "%s/%d/objects?top=1&fresh=1" % (base, fpid), timeout=120).read())
        perm = [g["count"] for g in census["generations"] if g["generation"] == "permanent"]
        time.sleep(2 * interval)
        now, procs_ = listing()
        g = procs_[fpid]["gc"]
        if perm != [truth] or g["frozen"] != truth or not (
                g.get("frozen_age_seconds") is not None and
                g["frozen_age_seconds"] <= now - census["at"] + 1.0):
            problems.append("after a census: permanent generation %s, frozen %s, age %s "
                            "(census %.1f s ago)" % (perm, g["frozen"],
                                                     g.get("frozen_age_seconds"),
                                                     now - census["at"]))
        if problems:
            RESULTS.out("FAIL", name, "%s (%d problems; sample median %.3f s vs control %.3f s)" % (
                "; ".join(sorted(set(problems))[:3]), len(problems), mf, mc))
        else:
            RESULTS.out("PASS", name, "%d samples; frozen %d after %.1f s (null before: %s); "
                   "sample median %.3f s vs control %.3f s; oldest sample %.1f s; census age "
                   "served" % (len(stamps[fpid]), truth, exact_at, "yes" if seen_null else "no",
                               mf, mc, max_age))
    finally:
        if d:
            d.terminate()
            d.wait()
        if conf:
            os.unlink(conf)
        for p in procs:
            p.kill()
            p.wait()


def test_census_memory_cap(pymemd, py):
    """A census that would copy more than census_max_memory is refused with the reason, before
    anything is copied: pymemd's own peak RSS stays far below the target's arena bytes, and the
    rest of the sample is served."""
    name = "census over census_max_memory refused before copying (%s)" % py
    t = Target(py, "big", 1000000)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("census_max_memory = 16M\n")
        d = subprocess.Popen([pymemd, "--once", "--pid", str(t.pid), "--config", f.name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = d.stdout.read()
        d.stderr.read()
        _, status, usage = os.wait4(d.pid, 0)
        d.returncode = os.waitstatus_to_exitcode(status)
        os.unlink(f.name)
        p = proc_of(subprocess.CompletedProcess([], d.returncode, out, b""), t.pid)
        err = p.get("objects_error") or ""
        arena_mib = ((p.get("pymalloc") or {}).get("arena_bytes") or 0) / 2**20
        peak_mib = usage.ru_maxrss / 1024.0
        if (p.get("status") == "ok" and p.get("objects") is None and "census_max_memory" in err
                and "refused" in err and p["gc"]["generations"] and peak_mib < 48):
            RESULTS.out("PASS", name, "%s; pymemd peak RSS %.1f MiB" % (err[:110], peak_mib))
        else:
            RESULTS.out("FAIL", name, "status %s, objects %s, error %r, arenas %.0f MiB, pymemd peak "
                   "RSS %.1f MiB" % (p.get("status"), json.dumps(p.get("objects"))[:60], err,
                                     arena_mib, peak_mib))
    finally:
        t.close()


if __name__ == "__main__":
    sys.exit(main())
