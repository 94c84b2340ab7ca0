#!/usr/bin/python3
"""soak: pymemd beside a churning fleet of Python processes, checked for harm to them.

For --duration seconds (default 600) it keeps --targets (default 20) Python processes alive,
round-robin over every interpreter on the machine (pyenv 3.8+, the system python3, Debian's
3.13/3.14/3.15 from ~/.cache/pymemd/debian), each living a random few seconds to half a minute
before the driver ends it (SIGTERM mostly, SIGKILL for one in five) and starts another. A
running pymemd watches them (--match on a tag in their command line) with a census every
--census-interval seconds, while --flooders (default 2) clients ask for ?fresh=1 censuses of
random targets as fast as they are answered, and the driver sends every target SIGRTMIN
signals at --signal-rate per second.

Checks (each reported with its figures; any failure makes the exit status 1):
  stopped    no target seen in a stop (State t or T in /proc/PID/status) for longer than
             --max-stopped seconds in a row, and none left stopped at the end
  unreaped   every ended target is reaped by this driver (its parent) within 1 s of
             becoming a zombie: a zombie that waitpid() cannot reap is one pymemd holds
  signals    every target ended with SIGTERM reports how many SIGRTMIN it received (one byte
             per delivery, through signal.set_wakeup_fd, so none are merged): equal to what
             was sent to it
  stale      every target pymemd reports with status ok was sampled at most 2 intervals
             before the listing was read, and no target that lived past its discovery is
             missing from the listing for more than 2 intervals plus a discovery interval
  flat       pymemd's RSS and open fds, read only between censuses (see Soak.memory): the
             least reading of the last fifth of the run against the least of the second fifth:
             RSS at most 25% or 8 MiB higher (whichever is more), fds at most 4 more; the first
             and last of the readings taken every 2 s regardless are printed too
  alive      pymemd itself answered /healthz to the end and exited 0 on SIGTERM

    /usr/bin/python3 tests/soak/soak.py --pymemd build/pymemd [--duration 600] [--smoke]

--smoke is a 2-minute run. Standard library only. Needs the rights to ptrace the targets (root,
or CAP_SYS_PTRACE); exits 77 (skipped) without them.
"""

import argparse
import collections
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from pymemdtest import (CHILDREN, Stopping, clean_env, free_port, proc_state,  # noqa: E402
                        pyenv_python, read_line, short)

# The target: a heap of the given size (some of it in cycles, some frozen when asked), a few
# idle threads when asked, a little allocation churn, and an exact count of the SIGRTMIN it is
# delivered. Python's own handler merges signals that arrive before it runs, but its C handler
# writes one byte per delivery to the wakeup fd, so the bytes are the count. On SIGTERM it
# drains the pipe once more and prints "signals N".
TARGET = r'''
import gc, os, signal, sys, threading, time
nobj, nthreads, freeze = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
RT = getattr(signal, "SIGRTMIN", 34)
r, w = os.pipe()
os.set_blocking(r, False)
os.set_blocking(w, False)
signal.set_wakeup_fd(w, warn_on_full_buffer=True)
signal.signal(RT, lambda s, f: None)
ending = []
signal.signal(signal.SIGTERM, lambda s, f: ending.append(1))
got = 0
def drain():
    global got
    while True:
        try:
            b = os.read(r, 65536)
        except BlockingIOError:
            return
        got += b.count(RT)
class Node(object):
    pass
keep = []
for i in range(nobj // 2):
    a = Node(); b = Node(); a.b = b; b.a = a; keep.append(a)
if freeze and hasattr(gc, "freeze"):
    gc.collect(); gc.freeze()
for _ in range(nthreads):
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
sys.stdout.write("ready %d\n" % os.getpid()); sys.stdout.flush()
churn = []
while not ending:
    drain()
    churn.append([{} for _ in range(50)])
    if len(churn) > 100:
        del churn[:50]
    time.sleep(0.005)
deadline = time.time() + 0.3
while time.time() < deadline:
    drain(); time.sleep(0.01)
drain()
sys.stdout.write("signals %d\n" % got); sys.stdout.flush()
os._exit(0)
'''


def interpreters():
    """(label, argv prefix) of every interpreter the soak rotates over."""
    out = []
    for minor in range(8, 14):
        label, path = pyenv_python(minor)
        if path:
            out.append((label, [path]))
    if os.path.exists("/usr/bin/python3"):
        out.append(("system", ["/usr/bin/python3"]))
    ddir = os.path.join(os.environ.get("PYMEMD_CACHE_DIR")
                        or os.path.expanduser("~/.cache/pymemd"), "debian", "bin")
    if os.path.isdir(ddir):
        for name in sorted(os.listdir(ddir)):
            p = os.path.join(ddir, name)
            if name.startswith("debian-python3") and os.access(p, os.X_OK):
                out.append((name, [p]))
    return out


def proc_status(path):
    """The fields of a /proc status file (PATH/status) as {name: value text}, {} when gone."""
    try:
        with open(path + "/status") as f:
            return dict((k, v.strip()) for k, _, v in (line.partition(":") for line in f))
    except OSError:
        return {}


def task_wait(task):
    """Where a thread of pymemd is blocked, from /proc/PID/task/TID: (syscall number, its first
    argument, context switches so far), or None while it runs (or is runnable) or is gone."""
    try:
        with open(task + "/syscall") as f:
            words = f.read().split()
    except OSError:
        return None
    st = proc_status(task)
    if len(words) < 2 or words[0] in ("running", "-1") or "voluntary_ctxt_switches" not in st:
        return None
    return (int(words[0]), int(words[1], 16), int(st["voluntary_ctxt_switches"]) +
            int(st["nonvoluntary_ctxt_switches"]))


def proc_rss_fds(pid):
    rss = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return rss, len(os.listdir("/proc/%d/fd" % pid))


class Target(object):
    def __init__(self, label, p, tag):
        self.label = label
        self.p = p
        self.pid = p.pid
        self.tag = tag
        self.lock = threading.Lock()
        self.sent = 0
        self.closing = False
        self.started = time.monotonic()
        self.ready_at = None
        self.stopped_since = None  # monotonic time a stop was first seen, None if running
        self.missing_since = None  # first listing without it, once it should have been found


class Soak(object):
    def __init__(self, a):
        self.a = a
        self.tag = "pymemd-soak-%d" % os.getpid()
        self.lock = threading.Lock()
        self.live = {}  # pid -> Target
        self.starting = 0
        self.done = False
        self.failures = []
        self.stats = collections.Counter()
        self.max_stopped = 0.0
        self.max_reap = 0.0
        self.max_stale = 0.0
        self.stale_events = []
        self.signal_mismatch = []
        self.unreaped = []
        self.left_stopped = []
        self.first_error = {}  # listing status -> the first error text seen with it
        self.http_codes = collections.Counter()
        self.http_errors = collections.Counter()
        self.fresh_latency = []
        self.mem = []  # (t, rss, fds), every 2 s
        self.quiet = []  # (t, rss, fds), read while no census was in flight
        self.dpid = None
        self.idle = {}  # tid -> (syscall, address) each thread of pymemd waited in at the start
        self.worker = None  # the census worker's tid, once seen tracing a target
        self.interps = interpreters()
        self.next_interp = 0
        self.interp_count = collections.Counter()
        self.port = free_port()

    def fail(self, what):
        with self.lock:
            self.failures.append(what)

    # -- targets ---------------------------------------------------------------------------

    def start_target(self):
        label, argv = self.interps[self.next_interp % len(self.interps)]
        self.next_interp += 1
        nobj = random.choice([2000, 20000, 100000, 200000])
        nthreads = random.choice([0, 0, 2, 8])
        freeze = "1" if random.random() < 0.3 else "0"
        p = CHILDREN.spawn(argv + ["-c", TARGET, str(nobj), str(nthreads), freeze, self.tag],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, env=clean_env())
        t = Target(label, p, self.tag)
        try:
            line = read_line(p, 60)
        except Exception as e:  # noqa: BLE001 - any failure to start is reported the same way
            CHILDREN.reap(p)
            self.stats["target start failures"] += 1
            self.stats["start failure: %s: %s" % (label, short(str(e), 80))] += 1
            return
        if not line.startswith("ready"):
            CHILDREN.reap(p)
            self.stats["target start failures"] += 1
            return
        t.ready_at = time.monotonic()
        t.lifetime = random.uniform(5, 30)
        with self.lock:
            self.live[t.pid] = t
        with self.lock:
            self.interp_count[label] += 1
            self.stats["targets started"] += 1

    def end_target(self, t):
        """Ends t (SIGTERM, or SIGKILL one time in five) and reaps it, checking it was not held
        stopped or unreaped and, after SIGTERM, that it got every signal sent."""
        with t.lock:
            t.closing = True  # no signal is sent after this: the count is final
        with self.lock:
            self.live.pop(t.pid, None)
        kill = random.random() < 0.2
        sig = signal.SIGKILL if kill else signal.SIGTERM
        os.kill(t.pid, sig)
        sent_at = time.monotonic()
        zombie_at = None
        while True:
            if t.p.poll() is not None:
                break
            now = time.monotonic()
            st = proc_state(t.pid)
            if st == "Z" and zombie_at is None:
                zombie_at = now
            if zombie_at is not None and now - zombie_at > 1.0:
                self.unreaped.append((t.pid, t.label))
                self.fail("unreaped: pid %d (%s) a zombie for more than 1 s that its parent "
                          "cannot reap" % (t.pid, t.label))
                break
            if zombie_at is None and now - sent_at > 15:
                self.fail("pid %d (%s) did not exit within 15 s of %s (state %s)" % (
                    t.pid, t.label, sig.name, st))
                break
            time.sleep(0.005)
        if zombie_at is not None:
            self.max_reap = max(self.max_reap, time.monotonic() - zombie_at)
        out = b""
        if t.p.returncode is not None and not kill:
            try:
                out = getattr(t.p, "_pending", b"") + t.p.stdout.read()
            except (OSError, ValueError):
                out = b""
        CHILDREN.reap(t.p)
        self.stats["targets ended (%s)" % sig.name] += 1
        if kill or t.p.returncode is None:
            return
        words = out.decode("utf-8", "replace").split()
        if len(words) != 2 or words[0] != "signals":
            self.fail("pid %d (%s) ended without reporting its signals: %r" % (
                t.pid, t.label, short(out, 80)))
            return
        got = int(words[1])
        self.stats["signals sent"] += t.sent
        self.stats["signals received"] += got
        if got != t.sent:
            self.signal_mismatch.append((t.pid, t.label, t.sent, got))
            self.fail("signals: pid %d (%s) was sent %d SIGRTMIN and received %d" % (
                t.pid, t.label, t.sent, got))

    def starter(self):
        try:
            self.start_target()
        finally:
            with self.lock:
                self.starting -= 1

    def fleet(self, until):
        """Keeps --targets alive: ends those past their lifetime, starts new ones (several at a
        time: a large heap takes a while to build)."""
        workers = []
        while time.monotonic() < until:
            with self.lock:
                old = [t for t in self.live.values()
                       if time.monotonic() - t.ready_at > t.lifetime]
                want = self.a.targets - (len(self.live) - len(old)) - self.starting
                self.starting += max(0, want)
            for t in old:
                workers.append(threading.Thread(target=self.end_target, args=(t,)))
                workers[-1].start()
            for _ in range(max(0, want)):
                workers.append(threading.Thread(target=self.starter))
                workers[-1].start()
            time.sleep(0.1)
            workers = [th for th in workers if th.is_alive()]
        for th in workers:
            th.join()

    def signaller(self):
        rt = getattr(signal, "SIGRTMIN", 34)
        period = 1.0 / self.a.signal_rate
        while not self.done:
            with self.lock:
                targets = list(self.live.values())
            for t in targets:
                with t.lock:
                    if t.closing:
                        continue
                    try:
                        os.kill(t.pid, rt)  # unreaped, so the pid is still this process's
                        t.sent += 1
                    except ProcessLookupError:
                        pass
            time.sleep(period)

    def watcher(self):
        """Stops: any target in State t/T for longer than --max-stopped in a row. Also names
        pymemd's census worker: the thread that stops a target for a census is its tracer."""
        while not self.done:
            now = time.monotonic()
            with self.lock:
                targets = list(self.live.values())
            for t in targets:
                fields = proc_status("/proc/%d" % t.pid)
                st = (fields.get("State") or "?").split()[0]
                tracer = int(fields.get("TracerPid") or 0)
                if (self.worker is None and tracer and
                        os.path.exists("/proc/%d/task/%d" % (self.dpid, tracer))):
                    self.worker = tracer
                if st in ("t", "T"):
                    if t.stopped_since is None:
                        t.stopped_since = now
                    held = now - t.stopped_since
                    self.max_stopped = max(self.max_stopped, held)
                    if held > self.a.max_stopped and not getattr(t, "reported_stop", False):
                        t.reported_stop = True
                        self.fail("stopped: pid %d (%s) in State %s for %.1f s" % (
                            t.pid, t.label, st, held))
                else:
                    t.stopped_since = None
            time.sleep(0.05)

    # -- pymemd ----------------------------------------------------------------------------

    def get(self, conn, path, timeout):
        conn.timeout = timeout
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()

    def flooder(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.done:
            with self.lock:
                pids = list(self.live)
            if not pids:
                time.sleep(0.05)
                continue
            pid = random.choice(pids)
            t0 = time.monotonic()
            try:
                code, _ = self.get(conn, "/api/v1/processes/%d/objects?top=1&fresh=1" % pid, 30)
                self.http_codes[code] += 1
                if code == 200:
                    self.fresh_latency.append(time.monotonic() - t0)
            except (OSError, http.client.HTTPException) as e:
                self.http_errors[type(e).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                time.sleep(0.05)

    def lister(self):
        """Staleness, from the listing a dashboard would read."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        interval = self.a.interval
        grace = self.a.discovery_interval + 2 * interval + 1.0
        while not self.done:
            try:
                code, body = self.get(conn, "/api/v1/processes", 30)
                now_wall, now = time.time(), time.monotonic()
            except (OSError, http.client.HTTPException) as e:
                self.stats["listing errors"] += 1
                self.stale_events.append("listing failed: %s" % e)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                time.sleep(interval)
                continue
            if code != 200:
                self.stats["listing status %d" % code] += 1
                time.sleep(interval)
                continue
            procs = {p["pid"]: p for p in json.loads(body)["processes"]}
            with self.lock:
                targets = list(self.live.values())
            for t in targets:
                p = procs.get(t.pid)
                if p is None:
                    if now - t.ready_at > grace:
                        if t.missing_since is None:
                            t.missing_since = now
                        if now - t.missing_since > 2 * interval:
                            self.stale_events.append("pid %d (%s) missing from the listing "
                                                     "%.1f s after it started" % (
                                                         t.pid, t.label, now - t.ready_at))
                            t.missing_since = now
                    continue
                t.missing_since = None
                if p.get("status") != "ok":
                    key = "listed with status %s (%s)" % (p.get("status"), t.label)
                    self.stats[key] += 1
                    self.first_error.setdefault(key, p.get("error"))
                    continue
                age = now_wall - p["sampled_at"]
                self.max_stale = max(self.max_stale, age)
                if age > 2 * interval:
                    self.stale_events.append("pid %d (%s) sampled %.1f s before the listing" % (
                        t.pid, t.label, age))
            time.sleep(interval / 2)

    def learn_idle(self, pid):
        """Where each thread of a pymemd watching nothing yet waits: the census worker waits
        for its next job on a condition variable, whose futex words lie within 8 bytes of each
        other (glibc waits on one of two in turn)."""
        seen = []
        for _ in range(2):
            seen.append(dict((tid, task_wait("/proc/%d/task/%s" % (pid, tid)))
                             for tid in os.listdir("/proc/%d/task" % pid)))
            time.sleep(0.3)
        self.idle = dict((int(tid), w[:2]) for tid, w in seen[0].items()
                         if w and seen[1].get(tid) and seen[1][tid][:2] == w[:2])

    def worker_idle(self, task):
        """The census worker's count of context switches when it is waiting for its next job
        (where it waited at the start), else None."""
        w = task_wait(task)
        i = self.idle.get(self.worker)
        if w and i and w[0] == i[0] and abs(w[1] - i[1]) <= 8:
            return w[2]
        return None

    def memory(self, pid):
        """Reads pymemd's RSS and fds every 2 s (self.mem), and, as often as it finds one, at a
        moment when no census or referrers walk was in flight (self.quiet).

        A census (or referrers walk) holds the copy of a target's heap, tens of MiB for the
        larger ones, from before the target is stopped until its walk ends; under load they
        run back to back, so every reading of a stretch can fall inside one. The census worker
        is the one thread that runs them: a reading counts as quiet when the worker was seen
        waiting for its next job before it and after it, with no context switch in between,
        so it never ran in between (woken, it shows "running" until it blocks again, and
        blocking again is a switch)."""
        last = 0.0
        while not self.done:
            now = time.monotonic()
            if now - last >= 2:
                try:
                    rss, fds = proc_rss_fds(pid)
                    self.mem.append((now, rss, fds))
                except OSError:
                    pass
                last = now
            if self.worker is not None:
                task = "/proc/%d/task/%d" % (pid, self.worker)
                before = self.worker_idle(task)
                if before is not None:
                    try:
                        rss, fds = proc_rss_fds(pid)
                    except OSError:
                        rss = None
                    if rss is not None and self.worker_idle(task) == before:
                        self.quiet.append((time.monotonic(), rss, fds))
                        time.sleep(0.1)
            time.sleep(0.01)

    def run(self):
        a = self.a
        if not self.interps:
            print("soak: no interpreter found")
            return 77
        conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
        conf.write("interval = %g\ncensus_interval = %g\ndiscovery_interval = %g\n"
                   "max_census_pause = %g\nmatch = %s\n" % (
                       a.interval, a.census_interval, a.discovery_interval,
                       a.max_census_pause, self.tag))
        conf.close()
        err = tempfile.TemporaryFile()
        d = CHILDREN.spawn([a.pymemd, "--config", conf.name, "--listen",
                            "127.0.0.1:%d" % self.port, "--log-level", "warn"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                           env=clean_env())
        try:
            conn = None
            self.dpid = d.pid
            for _ in range(100):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    if self.get(conn, "/healthz", 5)[0] == 200:  # sampling, worker started
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            self.learn_idle(d.pid)
            start = time.monotonic()
            print("soak: pymemd pid %d on port %d, %d interpreters: %s" % (
                d.pid, self.port, len(self.interps), " ".join(x[0] for x in self.interps)))
            sys.stdout.flush()
            threads = [threading.Thread(target=f, daemon=True) for f in
                       [self.signaller, self.watcher, self.lister] +
                       [self.flooder] * a.flooders]
            threads.append(threading.Thread(target=self.memory, args=(d.pid,), daemon=True))
            for th in threads:
                th.start()
            self.fleet(start + a.duration)
            # The end: every target goes the same way as during the run.
            with self.lock:
                rest = list(self.live.values())
            enders = [threading.Thread(target=self.end_target, args=(t,)) for t in rest]
            for th in enders:
                th.start()
            for th in enders:
                th.join()
            self.done = True
            for th in threads:
                th.join(timeout=35)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                self.get(conn, "/healthz", 5)
            except (OSError, http.client.HTTPException) as e:
                self.fail("alive: pymemd did not answer /healthz at the end: %s" % e)
            elapsed = time.monotonic() - start
        finally:
            self.done = True
            if d.poll() is None:
                d.send_signal(signal.SIGTERM)
            try:
                rc = d.wait(timeout=30)
            except subprocess.TimeoutExpired:
                rc = None
            CHILDREN.reap(d)
            os.unlink(conf.name)
        if rc != 0:
            self.fail("alive: pymemd exited with %s" % rc)
        err.seek(0)
        log = err.read().decode("utf-8", "replace").splitlines()
        return self.report(elapsed, log, start)

    def report(self, elapsed, log, start):
        a = self.a
        if self.stale_events:
            self.fail("stale: %d listings found a target older than 2 intervals or missing; "
                      "first: %s" % (len(self.stale_events), self.stale_events[0]))
        # Readings taken between censuses (no heap copy in the way): the floor (the least
        # reading) of the last fifth of the run against that of the second fifth (the first is
        # warm-up). The floors of every 2-s reading are printed beside them, for comparison.
        mem = self.mem
        first = last = floors = None
        if mem:
            warm = [m for m in mem if m[0] - start >= a.duration / 5] or mem
            first, last = warm[0], mem[-1]
        floors, anyfloors = fifth_floors(self.quiet, start, a.duration), fifth_floors(
            mem, start, a.duration)
        if floors:
            if floors[1] > max(floors[0] * 1.25, floors[0] + (8 << 20)):
                self.fail("flat: pymemd's RSS floor went from %.1f MiB to %.1f MiB" % (
                    floors[0] / 2**20, floors[1] / 2**20))
            if floors[3] > floors[2] + 4:
                self.fail("flat: pymemd's open fds went from %d to %d" % (floors[2], floors[3]))
        else:
            self.fail("flat: no reading of pymemd's RSS between censuses in the second or the "
                      "last fifth of the run (%d in all; census worker %s)" % (
                          len(self.quiet), "never seen tracing a target" if not self.worker else
                          "%d, %s" % (self.worker, "waiting at the start" if self.worker in
                                      self.idle else "not seen waiting at the start")))
        lat = sorted(self.fresh_latency)
        print("soak: %.0f s, %d targets at a time, interval %g s, census every %g s, "
              "%d flooders" % (elapsed, a.targets, a.interval, a.census_interval, a.flooders))
        print("  interpreters used: %s" % ", ".join(
            "%s x%d" % kv for kv in sorted(self.interp_count.items())))
        for k in sorted(self.stats):
            print("  %s: %d%s" % (k, self.stats[k], (" (first: %s)" % short(
                self.first_error[k], 160)) if self.first_error.get(k) else ""))
        print("  ?fresh=1 answers: %s; errors: %s; 200s p50 %.3f s, max %.3f s" % (
            dict(self.http_codes), dict(self.http_errors) or "none",
            lat[len(lat) // 2] if lat else float("nan"), lat[-1] if lat else float("nan")))
        print("  longest stop seen: %.2f s; slowest reap after the zombie appeared: %.3f s; "
              "oldest sample listed: %.2f s" % (self.max_stopped, self.max_reap, self.max_stale))
        if first:
            print("  pymemd RSS %.1f -> %.1f MiB (max %.1f), fds %d -> %d (max %d)" % (
                first[1] / 2**20, last[1] / 2**20, max(m[1] for m in mem) / 2**20,
                first[2], last[2], max(m[2] for m in mem)))
        if floors:
            print("  pymemd RSS floor between censuses %.1f -> %.1f MiB (max %.1f), fds floor "
                  "%d -> %d (second fifth -> last fifth; %d and %d readings)" % (
                      floors[0] / 2**20, floors[1] / 2**20,
                      max(m[1] for m in self.quiet) / 2**20, floors[2], floors[3], floors[4],
                      floors[5]))
        if anyfloors:
            print("  (floor of the readings every 2 s, censuses or not: %.1f -> %.1f MiB)" % (
                anyfloors[0] / 2**20, anyfloors[1] / 2**20))
        warn = [x for x in log if x.strip()]
        print("  pymemd logged %d lines%s" % (len(warn), (": " + short(warn[-1], 200))
                                               if warn else ""))
        checks = collections.OrderedDict((c, 0) for c in (
            "stopped", "unreaped", "signals", "stale", "flat", "alive"))
        other = 0
        for f in self.failures:
            key = f.split(":", 1)[0]
            if key in checks:
                checks[key] += 1
            else:
                other += 1
        for c, n in checks.items():
            print("  check %-9s %s" % (c, "ok" if n == 0 else "FAILED (%d)" % n))
        for f in self.failures[:30]:
            print("  FAIL: %s" % f)
        if len(self.failures) > 30:
            print("  ... %d more" % (len(self.failures) - 30))
        print("soak: %s" % ("passed" if not self.failures else
                            "%d failures" % len(self.failures)))
        return 1 if self.failures else 0


def fifth_floors(readings, start, duration):
    """The least RSS and fds of the readings (t, rss, fds) in the second fifth of the run and
    in the last: (rss 2nd, rss last, fds 2nd, fds last, how many 2nd, how many last), or None
    when either fifth has none."""
    early = [m for m in readings if duration / 5 <= m[0] - start < 2 * duration / 5]
    late = [m for m in readings if m[0] - start >= 4 * duration / 5]
    if not early or not late:
        return None
    return (min(m[1] for m in early), min(m[1] for m in late), min(m[2] for m in early),
            min(m[2] for m in late), len(early), len(late))


def can_trace():
    """Whether this driver may ptrace its children (so a pymemd it starts may too)."""
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            return f.read().strip() == "0"
    except OSError:
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pymemd", default="build/pymemd")
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--smoke", action="store_true", help="a 2-minute run")
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--census-interval", type=float, default=3.0)
    ap.add_argument("--discovery-interval", type=float, default=1.0)
    ap.add_argument("--max-census-pause", type=float, default=0.5)
    ap.add_argument("--flooders", type=int, default=2)
    ap.add_argument("--signal-rate", type=float, default=50.0,
                    help="SIGRTMIN per second sent to each target")
    ap.add_argument("--max-stopped", type=float, default=2.0,
                    help="seconds a target may be seen stopped in a row")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    if a.smoke:
        a.duration = 120
    random.seed(a.seed)
    if not can_trace():
        print("soak: SKIP: cannot ptrace other processes here")
        return 77
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda n, f: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return Soak(a).run()
    except (KeyboardInterrupt, Stopping):
        print("soak: interrupted")
        return 1
    finally:
        CHILDREN.stop_all()


if __name__ == "__main__":
    sys.exit(main())
