#!/usr/bin/python3
"""Never harm the target: what a census's ptrace stop must guarantee, against real interpreters.

    /usr/bin/python3 test_ptrace.py --pymemd build/pymemd --sigcount build/.../libsigcount.so

- killed targets are released at once: a 2,000-thread target SIGKILLed at every moment of a
  census (while its threads are being stopped, copied, let go) must be reapable by its parent
  at once; the parent (a Python process that forked it) measures its own waitpid();
- no signal is lost: a target counting real-time signals in C receives every one of 100,000
  sent while censuses run several times a second;
- a SIGSTOP or SIGTSTP sent while the target is stopped for a census still stops it;
- a target traced by another tracer (strace) is reported as such, its census is refused with
  that reason, and its counters are still read exactly;
- exec() in place (same pid, same start time, another interpreter, or the same one again):
  the first sample taken after the new image printed its own values reports exactly those,
  and within one interval; a census after the exec is of the new image;
- a pid reused by an unrelated process before the next sample: a census asked for then is
  refused, never taken of the new process and served as the old one;
- a shell set aside as not Python that exec()s Python in place is watched once it does.

Prints PASS/FAIL/SKIP lines and ends with "N passed, M failed, K skipped". Standard library
only; every process started is killed and reaped on every path.
"""
import argparse
import json
import mmap
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from pymemdtest import (CHILDREN, RESULTS, Fail, Stopping, clean_env,  # noqa: E402
                        proc_state, pyenv_python, read_line, run_driver, short, spawn_at,
                        start_daemon)

SYSTEM_PY = "/usr/bin/python3"
DEBIAN_BIN = os.path.expanduser("~/.cache/pymemd/debian/bin")


def daemon(pymemd, conf, args):
    """pymemd on a free loopback port with the given configuration text, ready."""
    return start_daemon(pymemd, args, conf, ready_timeout=15)


def proc_status(pid, key):
    """A field of /proc/PID/status, or None when the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def wait_for(cond, timeout, step=0.001):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


class Fresh(threading.Thread):
    """Clients asking for ?fresh=1 censuses of pid in a loop until stopped (or once)."""

    def __init__(self, daemon, pid, once=False):
        threading.Thread.__init__(self)
        self.daemon_ = daemon
        self.pid = pid
        self.once = once
        self.stop = threading.Event()
        self.statuses = {}
        self.last = None
        self.daemon = True

    def run(self):
        while not self.stop.is_set():
            try:
                st, doc = self.daemon_.status_json(
                    "/api/v1/processes/%d/objects?fresh=1&top=1" % self.pid)
            except (OSError, Fail) as e:
                st, doc = "error", {"error": {"message": str(e)}}
            self.statuses[st] = self.statuses.get(st, 0) + 1
            self.last = (st, doc)
            if self.once:
                return
            if st == 429:  # rate-limited: ask again when allowed
                time.sleep(0.05)


# --- 1. a killed target is released at once -----------------------------------------------

MANY_THREADS = r'''
import os, sys, threading
n, m = int(sys.argv[1]), int(sys.argv[2])
threading.stack_size(256 * 1024)
class Node(object):
    pass
keep = [Node() for _ in range(m)]
ev = threading.Event()
for _ in range(n):
    threading.Thread(target=ev.wait, daemon=True).start()
os.write(1, b"ready\n")
os.read(0, 1)
'''

# The target's parent: forks it, and once told, kills it and times its own waitpid().
PARENT = r'''
import os, subprocess, sys, time
py, script, n, m = sys.argv[1:5]
p = subprocess.Popen([py, "-c", script, n, m], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE)
if p.stdout.readline().strip() != b"ready":
    sys.exit(1)
os.write(1, b"%d\n" % p.pid)
sys.stdin.readline()
os.kill(p.pid, 9)
t0 = time.monotonic()
os.waitpid(p.pid, 0)
os.write(1, b"%.6f\n" % (time.monotonic() - t0))
sys.stdin.readline()
'''


def test_killed_released(pymemd, py, rounds=10, threads=2000, objects=200000):
    name = "a target SIGKILLed mid-census is reapable by its parent at once (%s, %d threads)" % (
        py, threads)
    conf = "census_interval = 0\ninterval = 0.1\nmax_census_pause = 5\ncensus_min_interval = 0\n"
    d = None
    bad, caught, notes = [], 0, []
    delays = [0, 0.0005, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.3]
    try:
        for i in range(rounds):
            delay = delays[i % len(delays)]
            parent = CHILDREN.spawn([SYSTEM_PY, "-c", PARENT, py, MANY_THREADS, str(threads),
                                     str(objects)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    env=clean_env())
            try:
                pid = int(read_line(parent, 60))
                d = daemon(pymemd, conf, ["--pid", str(pid)])
                d.wait_process(pid)
                fresh = Fresh(d, pid, once=True)
                fresh.start()
                traced = wait_for(lambda: proc_status(pid, "TracerPid") not in ("0", None) or
                                  not fresh.is_alive(), 30, step=0)
                seen = proc_status(pid, "TracerPid") not in ("0", None)
                if seen:
                    caught += 1
                if delay:
                    time.sleep(delay)
                parent.stdin.write(b"kill\n")
                parent.stdin.flush()
                try:
                    took = float(read_line(parent, 5))
                except RuntimeError:
                    took = None
                if took is None or took > 2.0:
                    bad.append("round %d (kill %.4f s after the stop began%s): the parent's "
                               "waitpid() %s" % (
                                   i, delay, "" if seen else ", census not caught",
                                   "took %.3f s" % took if took is not None else
                                   "still blocked after 5 s"))
                    # Only pymemd's exit lets such a zombie go.
                    d.shutdown()
                    d = None
                    if took is None:
                        took = float(read_line(parent, 10))
                notes.append("%.3f" % took)
                fresh.join(60)
                del traced
            finally:
                if d:
                    d.shutdown()
                    d = None
                CHILDREN.reap(parent)
        if caught == 0:
            RESULTS.out("FAIL", name, "no round caught the target stopped (census too quick?)")
        elif bad:
            RESULTS.out("FAIL", name, "; ".join(bad[:4]) + " (%d of %d rounds)" % (
                len(bad), rounds))
        else:
            RESULTS.out("PASS", name, "(%d rounds (%d caught mid-census), parent waited %s s)" % (
                rounds, caught, ", ".join(notes)))
    finally:
        if d:
            d.shutdown()


# --- 2. no signal lost; a stop signal still stops -------------------------------------------

SIGNALLED = r'''
import ctypes, mmap, os, signal, sys, threading, time
lib = ctypes.CDLL(sys.argv[1])
fd = os.open(sys.argv[2], os.O_RDWR)
mm = mmap.mmap(fd, 4096)
counter = ctypes.c_long.from_buffer(mm)
lib.sigcount_install.argtypes = [ctypes.c_int, ctypes.c_void_p]
if lib.sigcount_install(int(signal.SIGRTMIN), ctypes.addressof(counter)) != 0:
    sys.exit("sigcount_install failed")
class Node(object):
    pass
keep = [Node() for _ in range(30000)]
def spin():
    x = 0
    while True:
        x += 1
def nap():
    while True:
        time.sleep(0.0005)
threading.Thread(target=spin, daemon=True).start()
for _ in range(3):
    threading.Thread(target=nap, daemon=True).start()
os.write(1, b"ready\n")
os.read(0, 1)
'''


# Starts the target in a process group of its own inside this session: a stop signal other
# than SIGSTOP is discarded by the kernel in an orphaned process group (the target's own
# session would be one), and SIGTSTP must be able to stop it.
MIDDLE = r'''
import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], process_group=0, stdin=subprocess.PIPE)
os.write(1, b"%d\n" % p.pid)
p.wait()
'''


class Counted(object):
    """A Python target whose SIGRTMIN deliveries are counted in C, in a file both map."""

    def __init__(self, py, sigcount):
        self.file = tempfile.NamedTemporaryFile(prefix="pymemd-sigcount-")
        self.file.write(b"\0" * 4096)
        self.file.flush()
        self.mm = mmap.mmap(self.file.fileno(), 4096)
        self.p = CHILDREN.spawn([SYSTEM_PY, "-c", MIDDLE, py, "-c", SIGNALLED, sigcount,
                                 self.file.name],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=clean_env())
        self.pid = None
        self.pid = int(read_line(self.p, 60))
        if read_line(self.p, 60).strip() != "ready":
            raise RuntimeError("the signal-counting target did not start")

    def count(self):
        return struct.unpack_from("l", self.mm, 0)[0]

    def close(self):
        # Its parent (self.p) has not reaped it yet, so the pid is still the target's.
        if self.pid and self.p.poll() is None:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(self.pid, sig)
                except OSError:
                    pass
        CHILDREN.reap(self.p)
        self.mm.close()
        self.file.close()


def test_signals_not_lost(pymemd, py, sigcount, total=100000, seconds=25):
    name = "%d real-time signals sent during censuses all arrive (%s)" % (total, py)
    t = Counted(py, sigcount)
    d = None
    clients = []
    try:
        d = daemon(pymemd, "census_min_interval = 0\nmax_census_pause = 1\ncensus_interval = 0.2\ninterval = 0.05\n", ["--pid", str(t.pid)])
        d.wait_process(t.pid)
        clients = [Fresh(d, t.pid) for _ in range(2)]
        for c in clients:
            c.start()
        # Paced so that at most 2,000 are pending (RLIMIT_SIGPENDING is far above), spread over
        # `seconds` so that many censuses see signals in flight. Only accepted sends count.
        sent, refused = 0, 0
        start = time.monotonic()
        sig = int(signal.SIGRTMIN)
        while sent < total:
            due = total * (time.monotonic() - start) / seconds
            if sent >= due or sent - t.count() > 2000:
                time.sleep(0.001)
                continue
            try:
                os.kill(t.pid, sig)
                sent += 1
            except OSError as e:
                if e.errno != 11:  # EAGAIN: the queue is full; not sent
                    raise
                refused += 1
                time.sleep(0.001)
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(120)
        censuses = sum(c.statuses.get(200, 0) for c in clients)
        d.shutdown()
        d = None
        # pymemd is gone: nothing can hold a signal any more. Deliveries finish in microseconds.
        got = wait_for(lambda: t.count() >= sent and t.count(), 10, step=0.01) and t.count()
        got = t.count()
        statuses = {}
        for c in clients:
            for k, v in c.statuses.items():
                statuses[k] = statuses.get(k, 0) + v
        if censuses < 20:
            RESULTS.out("FAIL", name, "only %d on-demand censuses succeeded (%s): the test proves "
                        "nothing" % (censuses, statuses))
        elif got != sent:
            RESULTS.out("FAIL", name, "the target received %d of %d (%d lost) over %d on-demand "
                        "censuses and the periodic ones" % (got, sent, sent - got, censuses))
        else:
            RESULTS.out("PASS", name, "(received %d of %d; %d on-demand censuses (%s), %d sends "
                        "refused with EAGAIN and retried)" % (got, sent, censuses, statuses, refused))
    finally:
        for c in clients:
            c.stop.set()
        if d:
            d.shutdown()
        t.close()


def test_stop_signal_kept(pymemd, py, sigcount, rounds=150):
    name = "SIGSTOP/SIGTSTP sent during censuses still stop the target (%s)" % py
    t = Counted(py, sigcount)
    d = None
    clients = []
    try:
        d = daemon(pymemd, "census_min_interval = 0\nmax_census_pause = 1\ncensus_interval = 0.2\ninterval = 0.05\n", ["--pid", str(t.pid)])
        d.wait_process(t.pid)
        clients = [Fresh(d, t.pid) for _ in range(2)]
        for c in clients:
            c.start()
        bad = []
        for i in range(rounds):
            sig = signal.SIGSTOP if i % 2 == 0 else signal.SIGTSTP
            time.sleep(random.random() * 0.02)
            os.kill(t.pid, sig)
            if not wait_for(lambda: proc_state(t.pid) == "T", 3, step=0.0005):
                bad.append("round %d: %s sent, state still %s after 3 s" % (
                    i, sig.name, proc_state(t.pid)))
            os.kill(t.pid, signal.SIGCONT)
            if not wait_for(lambda: proc_state(t.pid) not in ("T", None), 3, step=0.0005):
                bad.append("round %d: SIGCONT sent, state still %s" % (i, proc_state(t.pid)))
            if len(bad) > 3:
                break
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(120)
        censuses = sum(c.statuses.get(200, 0) for c in clients)
        if bad:
            RESULTS.out("FAIL", name, "; ".join(bad[:4]))
        elif censuses < 10:
            RESULTS.out("FAIL", name, "only %d on-demand censuses succeeded: proves nothing" %
                        censuses)
        else:
            RESULTS.out("PASS", name, "(%d stop/continue rounds, %d on-demand censuses)" % (
                rounds, censuses))
    finally:
        for c in clients:
            c.stop.set()
        if d:
            d.shutdown()
        t.close()


# --- 3. a target traced by another tracer ---------------------------------------------------

PLAIN = r'''
import gc, json, os, sys
class %(cls)s(object):
    pass
keep = [%(cls)s() for _ in range(%(n)d)]
gc.collect()
gc.set_threshold(%(t0)d, %(t1)d, %(t2)d)
truth = {"version": "%%d.%%d.%%d" %% sys.version_info[:3], "threshold": list(gc.get_threshold()),
         "collections": [s["collections"] for s in gc.get_stats()] if hasattr(gc, "get_stats")
         else None, "pid": os.getpid()}
os.write(1, (json.dumps(truth) + "\n").encode())
os.read(0, 1)
'''


def plain_target(cls="Marker", n=1234, th=(50001, 11, 12)):
    return PLAIN % {"cls": cls, "n": n, "t0": th[0], "t1": th[1], "t2": th[2]}


def thresholds(p):
    return [g.get("threshold") for g in ((p.get("gc") or {}).get("generations") or [])][:3]


def collections(p):
    return [g.get("collections") for g in ((p.get("gc") or {}).get("generations") or [])][:3]


def census_count(doc, name):
    return sum(x.get("count", 0) for x in doc.get("types", []) if x.get("name") == name)


def test_traced_by_other(pymemd, py):
    name = "a target traced by strace: reported as such, census refused, counters read (%s)" % py
    strace = shutil.which("strace")
    if not strace:
        RESULTS.out("SKIP", name, "strace is not installed (scripts/deps.sh installs it)")
        return
    t = CHILDREN.spawn([py, "-c", plain_target()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       env=clean_env())
    s = d = None
    try:
        truth = json.loads(read_line(t, 60))
        s = CHILDREN.spawn([strace, "-f", "-o", "/dev/null", "-p", str(t.pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for(lambda: proc_status(t.pid, "TracerPid") == str(s.pid), 10, step=0.01):
            raise RuntimeError("strace did not attach (TracerPid %s)" %
                               proc_status(t.pid, "TracerPid"))
        d = daemon(pymemd, "census_min_interval = 0\nmax_census_pause = 1\ncensus_interval = 0.3\ninterval = 0.1\n", ["--pid", str(t.pid)])
        problems = []
        p = d.wait_process(t.pid)
        if thresholds(p) != truth["threshold"] or collections(p) != truth["collections"]:
            problems.append("counters %s/%s, the target says %s/%s" % (
                thresholds(p), collections(p), truth["threshold"], truth["collections"]))
        want = "traced by pid %d (strace)" % s.pid
        st, doc = d.status_json("/api/v1/processes/%d/objects?fresh=1" % t.pid)
        msg = (doc.get("error") or {}).get("message", "")
        if st == 200 or want not in msg:
            problems.append("?fresh=1 answered %s %s (expected a refusal saying \"%s\")" % (
                st, short(msg or json.dumps(doc), 160), want))
        p = wait_for(lambda: (lambda q: q if q and q.get("objects_error") else None)(
            d.process(t.pid, missing_ok=True)), 5, step=0.05)
        if not p or want not in (p.get("objects_error") or "") or p.get("objects") is not None:
            problems.append("scheduled census: objects_error %r, objects %s" % (
                (p or {}).get("objects_error"), short(json.dumps((p or {}).get("objects")), 60)))
        if p and p.get("status") != "ok":
            problems.append("status %s while traced: %s" % (p.get("status"), p.get("error")))
        # Once strace lets go, censuses work again.
        CHILDREN.reap(s)
        s = None
        wait_for(lambda: proc_status(t.pid, "TracerPid") == "0", 10, step=0.01)
        st, doc = d.status_json("/api/v1/processes/%d/objects?fresh=1" % t.pid)
        while st == 429:
            time.sleep(0.1)
            st, doc = d.status_json("/api/v1/processes/%d/objects?fresh=1" % t.pid)
        if st != 200 or census_count(doc, "Marker") != 1234:
            problems.append("after strace left: ?fresh=1 %s, Marker count %s (expected 1234)" % (
                st, census_count(doc, "Marker") if st == 200 else short(json.dumps(doc), 120)))
        if problems:
            RESULTS.out("FAIL", name, "; ".join(problems))
        else:
            RESULTS.out("PASS", name, "(census refused: \"%s\"; thresholds %s read while "
                        "traced)" % (
                short(msg, 140), truth["threshold"]))
    finally:
        if s:
            CHILDREN.reap(s)
        if d:
            d.shutdown()
        CHILDREN.reap(t)


# --- 4. exec() in place -----------------------------------------------------------------------

EXEC_IMAGE = r"""
import gc, json, os, sys
hop, hops, interps = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
cls = type("Image%d" % hop, (object,), {})
keep = [cls() for _ in range(2345)]
gc.collect()
gc.set_threshold(50001 + hop, 17, 19)
truth = {"version": "%d.%d.%d" % sys.version_info[:3], "threshold": list(gc.get_threshold()),
         "collections": [s["collections"] for s in gc.get_stats()] if hasattr(gc, "get_stats")
         else None, "pid": os.getpid(), "hop": hop}
os.write(1, (json.dumps(truth) + "\n").encode())
sys.stdin.readline()
if hop + 1 < hops:
    new = interps[(hop + 1) % len(interps)]
    os.execv(new[0], new + ["-c", "SCRIPT = %r\n" % SCRIPT + SCRIPT, str(hop + 1), str(hops),
                            sys.argv[3]])
os.read(0, 1)
"""
EXEC_SCRIPT = "SCRIPT = %r\n" % EXEC_IMAGE + EXEC_IMAGE


def interpreter_pairs():
    """(label, argv of A, argv of B): A exec()s B in place, B exec()s A, and so on."""
    pairs = []
    deb315 = os.path.join(DEBIAN_BIN, "debian-python3.15")
    if os.access(deb315, os.X_OK):
        pairs.append(("Debian 3.15 <-> /usr/bin/python3.11", [deb315], ["/usr/bin/python3.11"]))
    else:
        RESULTS.out("SKIP", "exec in place from Debian 3.15", "%s not built (debian-pythons.sh)" %
                    deb315)
    new_label, new = pyenv_python()
    old_label, old = pyenv_python(8)
    if new and old:
        pairs.append(("%s <-> %s" % (new_label, old_label), [new], [old]))
    else:
        RESULTS.out("SKIP", "exec in place between pyenv versions", "no pyenv 3.8 and newer")
    pairs.append(("/usr/bin/python3.11 -> itself", ["/usr/bin/python3.11"],
                  ["/usr/bin/python3.11"]))
    if new:
        pairs.append(("%s -> itself" % new_label, [new], [new]))
    return pairs


def test_exec_in_place(pymemd, label, a, b, hops=6, interval=0.05):
    """Each image sets its own thresholds (50001 + hop) and makes 2,345 objects of its own class,
    prints them, and on a line from the driver exec()s the next one. Samples every 50 ms, so
    that some land while a new image starts."""
    name = "exec() in place, %s: each new image is reported exactly within one interval" % label
    t = CHILDREN.spawn(a + ["-c", EXEC_SCRIPT, "0", str(hops), json.dumps([a, b])],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=clean_env())
    d = None
    try:
        truth = json.loads(read_line(t, 60))
        d = daemon(pymemd, "census_min_interval = 0\ncensus_interval = 0\ninterval = %g\n" % interval,
                   ["--pid", str(t.pid)])
        problems = []
        p = d.wait_process(t.pid, cond=lambda p: thresholds(p) == truth["threshold"])
        start0 = p.get("start_time")
        versions = [truth["version"]]
        for hop in range(1, hops):
            t.stdin.write(b"exec\n")
            t.stdin.flush()
            tb = json.loads(read_line(t, 60))
            t_truth = time.time()
            versions.append(tb["version"])
            # The first sample taken after the new image spoke must be of it, exactly.
            first = wait_for(lambda: (lambda q: q if q and (q.get("sampled_at") or 0) > t_truth
                                      else None)(d.process(t.pid, missing_ok=True)),
                             interval + 1.0, step=0.005)
            if not first:
                q = d.process(t.pid, missing_ok=True) or {}
                problems.append("hop %d: no sample within %.2f s (one interval and 1 s) of the "
                                "new image printing its values; the last: status %s, version %s, "
                                "error %s, %.2f s old" % (
                                    hop, interval + 1.0, q.get("status"),
                                    (q.get("python") or {}).get("version"),
                                    short(q.get("error"), 120),
                                    time.time() - (q.get("sampled_at") or 0)))
            else:
                got = (first.get("status"), (first.get("python") or {}).get("version"),
                       thresholds(first), collections(first))
                want = ("ok", tb["version"], tb["threshold"], tb["collections"])
                if got != want:
                    problems.append("hop %d: first sample after exec: status/version/thresholds/"
                                    "collections %s, the new image says %s (error %s)" % (
                                        hop, got, want, short(first.get("error"), 120)))
                if first.get("start_time") != start0:
                    problems.append("hop %d: start_time %s after exec, %s before" % (
                        hop, first.get("start_time"), start0))
            st, doc = d.status_json("/api/v1/processes/%d/objects?fresh=1" % t.pid)
            while st == 429:
                time.sleep(0.1)
                st, doc = d.status_json("/api/v1/processes/%d/objects?fresh=1" % t.pid)
            mine, old = "Image%d" % hop, "Image%d" % (hop - 1)
            if st != 200 or census_count(doc, mine) != 2345 or census_count(doc, old):
                problems.append("hop %d: census after exec: %s, %s %s (expected 2345), %s %s" % (
                    hop, st, mine,
                    census_count(doc, mine) if st == 200 else short(json.dumps(doc), 150),
                    old, census_count(doc, old) if st == 200 else "-"))
            if len(problems) > 3:
                break
        if problems:
            RESULTS.out("FAIL", name, "; ".join(problems))
        else:
            RESULTS.out("PASS", name, "(%d images (%s), each read exactly, censuses of the new "
                        "image)" % (
                hops, " -> ".join(versions)))
    finally:
        if d:
            d.shutdown()
        CHILDREN.reap(t)


def test_shell_execs_python(pymemd, py):
    """A process discovered while it was a shell (not Python, so set aside) that then exec()s
    Python in place, as `exec python3 app.py` at the end of a start script does: watched."""
    name = "a shell that exec()s Python in place is watched once it does (%s)" % py
    tag = "ptrace-sh-%d" % random.randrange(1 << 30)
    script = plain_target("FromShell", 321)
    t = CHILDREN.spawn(["/bin/sh", "-c", 'read x; exec "$0" -c "$1" "$2"', py, script, tag],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=clean_env())
    d = None
    try:
        d = daemon(pymemd, "census_min_interval = 0\ncensus_interval = 0\ninterval = 0.1\ndiscovery_interval = 0.1\n",
                   ["--match", tag])
        # Ten discoveries see the shell and set it aside as not Python.
        time.sleep(1.0)
        seen = d.process(t.pid, missing_ok=True)
        t.stdin.write(b"go\n")
        t.stdin.flush()
        truth = json.loads(read_line(t, 60))
        try:
            p = d.wait_process(t.pid, timeout=10,
                               cond=lambda p: thresholds(p) == truth["threshold"])
        except Fail as e:
            RESULTS.out("FAIL", name, "%s (while a shell: %s)" % (e, short(json.dumps(seen), 100)))
            return
        RESULTS.out("PASS", name, "(CPython %s, thresholds %s)" % (
            (p.get("python") or {}).get("version"), thresholds(p)))
    finally:
        if d:
            d.shutdown()
        CHILDREN.reap(t)


# --- 5. a pid reused before the next sample -------------------------------------------------

def test_pid_reuse(pymemd, py):
    name = "a pid reused between samples is never censused as the old process (%s)" % py
    path = "/proc/sys/kernel/ns_last_pid"
    if not os.access(path, os.W_OK):
        RESULTS.out("SKIP", name, "%s is not writable: a pid reuse cannot be forced" % path)
        return
    a = CHILDREN.spawn([py, "-c", plain_target("OnlyA", 777)], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, env=clean_env())
    b = d = None
    try:
        read_line(a, 60)
        pid = a.pid
        # Samples 30 s apart: the reuse happens between two of them.
        d = daemon(pymemd, "census_min_interval = 0\ncensus_interval = 0\ninterval = 30\n", ["--pid", str(pid)])
        pa = d.wait_process(pid)
        CHILDREN.reap(a)
        b = spawn_at(pid, [py, "-c", plain_target("OnlyB", 555)], tries=200,
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=clean_env())
        if not b:
            RESULTS.out("SKIP", name, "could not get pid %d again" % pid)
            return
        read_line(b, 60)
        st, doc = d.status_json("/api/v1/processes/%d/objects?fresh=1" % pid)
        p = d.process(pid, missing_ok=True) or {}
        msg = (doc.get("error") or {}).get("message", "")
        if st == 200 and p.get("start_time") == pa.get("start_time"):
            RESULTS.out("FAIL", name, "census of the new process (OnlyB %d, OnlyA %d) served while "
                        "pid %d is still reported as the old one (start_time %s, cmdline %s)" % (
                            census_count(doc, "OnlyB"), census_count(doc, "OnlyA"), pid,
                            p.get("start_time"), short(p.get("cmdline"), 60)))
        elif st == 200 and census_count(doc, "OnlyA"):
            RESULTS.out("FAIL", name, "a census naming the old process's objects after the reuse")
        elif st != 200 and "reused" not in msg:
            RESULTS.out("FAIL", name, "refused (%s) without saying the pid was reused: %s" % (
                st, short(msg, 160)))
        else:
            RESULTS.out("PASS", name, "(%s: %s)" % (st, short(msg or "census of the new process, "
                                                            "reported under its own identity", 160)))
    finally:
        if d:
            d.shutdown()
        if b:
            CHILDREN.reap(b)
        CHILDREN.reap(a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", required=True)
    ap.add_argument("--sigcount", required=True, help="the libsigcount.so test library")
    ap.add_argument("--only", help="run only the tests whose function name matches this regex")
    a = ap.parse_args()
    return run_driver("never harm the target: the ptrace stop of a census", run, a)


def run(a):
    tests = []
    if os.geteuid() != 0:
        RESULTS.out("SKIP", "ptrace safety tests",
                    "need root (or CAP_SYS_PTRACE) to stop processes")
    else:
        _, newest = pyenv_python()
        tests += [(test_killed_released, (a.pymemd, SYSTEM_PY)),
                  (test_signals_not_lost, (a.pymemd, SYSTEM_PY, a.sigcount)),
                  (test_stop_signal_kept, (a.pymemd, SYSTEM_PY, a.sigcount)),
                  (test_traced_by_other, (a.pymemd, SYSTEM_PY)),
                  (test_pid_reuse, (a.pymemd, SYSTEM_PY)),
                  (test_shell_execs_python, (a.pymemd, SYSTEM_PY))]
        if newest:
            tests += [(test_signals_not_lost, (a.pymemd, newest, a.sigcount)),
                      (test_traced_by_other, (a.pymemd, newest))]
        for label, pa, pb in interpreter_pairs():
            tests.append((test_exec_in_place, (a.pymemd, label, pa, pb)))
    for fn, args in tests:
        if a.only and not re.search(a.only, fn.__name__):
            continue
        try:
            fn(*args)
        except Stopping:
            raise
        except Exception as e:  # a broken case is a failure, not a crash of the suite
            RESULTS.out("FAIL", "%s%s" % (fn.__name__, args[1:2]), repr(e))


if __name__ == "__main__":
    sys.exit(main())
