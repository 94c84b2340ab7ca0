#!/usr/bin/python3
"""HTTP contract: trends, GET /api/v1/processes/{pid}/history (DESIGN.md section 4.2) and the
leak suspects of .../growth.

    /usr/bin/python3 test_trends.py --pymemd build/pymemd

Real targets (tests/http/trend_target.py under pyenv 3.12, the system python3 and the newest
Debian interpreter) change in known steps (more objects, more written memory, gc.collect()s)
and print their own ground truth once quiescent. Meanwhile the driver reads every PROCESS
pymemd publishes. Then the history must:
  - list the samples oldest first, every one the driver saw published among them, each equal
    to the PROCESS of the same sample (same sampled_at): rss, pss (only at the samples that
    read smaps_rollup, null between), pymalloc's arena bytes and blocks (null where PROCESS has
    null), the collections per generation, and a census's total once, at the first sample that
    showed it;
  - at each step, show the target's own gc.get_stats() collections, its
    sys.getallocatedblocks() (within the slack the other drivers allow for what printing
    allocates) and the VmRSS the kernel reports for it while it sits still;
  - keep history / interval samples (`--history 1` at 0.2 s: 5);
  - answer ?seconds=N with the samples of the last N seconds, 400 for a bad N, 404 for a pid
    not watched; after the target exits, keep its samples and add none; after its pid is
    reused (forced through /proc/sys/kernel/ns_last_pid when writable), hold only the new
    process's samples.
Leak suspects: a target keeps more Leak instances at each step, and its Flat ones never change;
after K + 1 = 4 fresh censuses (suspect_censuses = 3) Leak is a suspect whose counts are the
target's own Counter of gc.get_objects() at each step, Flat is not, and before that the growth
says why there is no list; pymemd_leak_suspect_objects_per_second carries the same rate and
passes promtool and the OpenMetrics parser; a census without a rise ends it.

PASS/FAIL/SKIP lines, ending with exactly `N passed, M failed, K skipped`; exit 0 iff nothing
failed.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from httpcommon import Expo, promtool_check  # noqa: E402
from pymemdtest import (CHILDREN, RESULTS, Fail, Pymemd, Skip, Target, build_id,  # noqa: E402
                        case, clean_env, debian_python, make_tag, pyenv_python, read_line,
                        request, run_driver, say, short, shown, spawn_at)

TREND_TARGET = os.path.join(HERE, "trend_target.py")
INTERVAL = 0.2
BLOCKS_SLACK = 50      # what printing the truth allocates (as httpcommon.py allows)
STEPS = 3
CONF = """\
interval = %g
census_interval = 0
pss_interval = 1
census_min_interval = 0.1
history = 600
""" % INTERVAL


class Ctx(object):
    pass


def trend_argv(cmd, tag, *extra):
    return list(cmd) + [TREND_TARGET, "--tag", tag] + list(extra)


def vmrss(pid):
    """The target's VmRSS in bytes, as the kernel reports it, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Poller(object):
    """Reads GET /api/v1/processes/PID as fast as it is answered, keeping every PROCESS by its
    sampled_at (one per published sample: the driver sees what pymemd published)."""

    def __init__(self, inst, pid):
        self.inst, self.pid = inst, pid
        self.seen = {}
        self.rss = []   # (wall time, the kernel's VmRSS), read between the requests
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        path = "/api/v1/processes/%d" % self.pid
        while not self.stop:
            v = vmrss(self.pid)
            with self.lock:
                self.rss.append((time.time(), v))
            try:
                r = request(self.inst.port, "GET", path, timeout=5)
            except OSError:
                time.sleep(0.02)
                continue
            if r.status == 200:
                p = r.json()
                with self.lock:
                    # The latest PROCESS of a sample is kept: one published again after a
                    # census differs only by that census, which the history adds to the entry
                    # of that sample.
                    self.seen[p.get("sampled_at")] = p
            time.sleep(0.01)

    def after(self, t):
        """The PROCESSes sampled after wall time t, oldest first."""
        with self.lock:
            return [self.seen[k] for k in sorted(self.seen) if k is not None and k > t]

    def wait_after(self, t, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.after(t)
            if got and got[0].get("status") == "ok":
                return got[0]
            time.sleep(0.02)
        raise Fail("pid %d: no sample published within %.0f s after the target printed its "
                   "truth" % (self.pid, timeout))

    def stable_rss(self, t, before=0.05, after=0.1):
        """The VmRSS of the target around wall time t when every reading from `before` seconds
        before t to `after` seconds after it (at least one on each side of t) was the same;
        None when it moved or was not read closely enough."""
        with self.lock:
            near = [(w, v) for w, v in self.rss if t - before <= w <= t + after]
        if not any(w <= t for w, _ in near) or not any(w >= t + after / 2 for w, _ in near):
            return None
        vals = set(v for _, v in near)
        return vals.pop() if len(vals) == 1 else None

    def close(self):
        self.stop = True
        self.thread.join(10)


def history(inst, pid, query=""):
    r = inst.get("/api/v1/processes/%d/history%s" % (pid, query))
    if r.status != 200:
        raise Fail("GET .../%d/history%s: %s" % (pid, query, r.describe()))
    if r.h("Content-Type") != "application/json":
        raise Fail("GET .../history: Content-Type %s" % shown(r.h("Content-Type")))
    return r.json()


def expected_entry(p, census_ats):
    """What the history entry of the sample PROCESS p must hold. census_ats: the censuses
    already recorded (a total is recorded once, at the first sample showing it)."""
    mem = p.get("memory") or {}
    pm = p.get("pymalloc") or {}
    gc = p.get("gc") or {}
    gens = gc.get("generations") or []
    pss = mem.get("pss_bytes")
    read_at = mem.get("pss_read_at")
    objs = p.get("objects")
    total = None
    if objs and objs.get("at") not in census_ats:
        total = objs.get("total")
        census_ats.add(objs.get("at"))
    return {
        "t": p.get("sampled_at"),
        "rss_bytes": mem.get("rss_bytes"),
        "pss_bytes": pss if read_at is not None and read_at >= p.get("sampled_at") else None,
        "arena_bytes": pm.get("arena_bytes"),
        "allocated_blocks": pm.get("allocated_blocks"),
        "gc_collections": [g.get("collections") for g in gens[:3]] if len(gens) >= 3 else None,
        "objects_total": total,
    }


def python_without_debug_file(tmp):
    """A copy of the system's stripped python3.11 whose build-id no debug file has: pymemd cannot
    find pymalloc's statics in it, so pymalloc is null. (label, argv) or (None, reason)."""
    src = os.path.realpath("/usr/bin/python3.11")
    if not os.path.exists(src):
        return None, "no /usr/bin/python3.11"
    bid = build_id(src)
    if not bid:
        return None, "%s has no build-id" % src
    new = bid[:-2] + bytes([bid[-2] ^ 0xa5, bid[-1] ^ 0x5a])
    h = new.hex()
    if os.path.exists("/usr/lib/debug/.build-id/%s/%s.debug" % (h[:2], h[2:])):
        return None, "a debug file exists for the changed build-id %s" % h
    with open(src, "rb") as f:
        data = bytearray(f.read())
    at = data.find(bid)
    if at < 0 or data.find(bid, at + 1) >= 0:
        return None, "the build-id of %s is not there exactly once" % src
    data[at:at + len(bid)] = new
    dst = os.path.join(tmp, "python3.11")
    with open(dst, "wb") as f:
        f.write(data)
    os.chmod(dst, 0o755)
    return "python3.11 without a debug file", [dst]


def t_steps(c, ctx, label, cmd, pymalloc_null=False):
    tag = "%s-%s" % (ctx.tag, label.split()[0])
    t = Target(label, trend_argv(cmd, tag), tag)
    # No debuginfod: a build-id without a local debug file stays without one.
    inst = Pymemd(ctx.exe, ["--pid", str(t.pid)], "pymemd (history)", conf=CONF,
                  env=clean_env(DEBUGINFOD_URLS=None))
    poller = None
    try:
        inst.start()
        poller = Poller(inst, t.pid)
        truths = [(time.time(), t.truth)]
        # When each step was asked for: the target changes after it, so a sample taken before
        # it still shows the step before (the truth is read back only once the target changed).
        asked = []
        census_step = 2
        for step in range(1, STEPS + 1):
            asked.append(time.time())
            t.p.stdin.write(b"\n")
            t.p.stdin.flush()
            tr = t.next_truth()
            printed = time.time()
            first = poller.wait_after(printed)
            poller.wait_after(first["sampled_at"] + INTERVAL)
            if step == census_step:
                st, doc = inst.status_json("/api/v1/processes/%d/objects?fresh=1" % t.pid)
                c.eq("step %d: GET .../objects?fresh=1 status" % step, 200, st)
                poller.wait_after(time.time())
            truths.append((printed, tr))
        poller.wait_after(time.time())
        poller.close()
        h = history(inst, t.pid)
        c.eq("pid", t.pid, h.get("pid"))
        c.eq("interval_seconds", INTERVAL, h.get("interval_seconds"))
        samples = h.get("samples") or []
        ts = [e.get("t") for e in samples]
        c.ok(all(a < b for a, b in zip(ts, ts[1:])), "samples not oldest first: %s" % shown(ts))
        by_t = dict((e.get("t"), e) for e in samples)
        seen = poller.after(0)
        c.ok(seen, "no PROCESS seen")
        census_ats = set()
        matched = 0
        for p in seen:
            want = expected_entry(p, census_ats)
            if p.get("status") != "ok" or not samples or want["t"] < ts[0] or want["t"] > ts[-1]:
                continue
            got = by_t.get(want["t"])
            if not c.ok(got is not None, "the sample at %r (published, seen by the driver) is "
                                         "not in the history" % want["t"]):
                continue
            matched += 1
            for k, v in want.items():
                c.eq("sample at %r: %s (= its PROCESS)" % (want["t"], k), v, got.get(k))
        # RSS against the kernel's own VmRSS, wherever it stood still around the sample.
        rss_checked = 0
        for e in samples:
            v = poller.stable_rss(e["t"])
            if v is not None:
                rss_checked += 1
                c.eq("sample at %r: rss_bytes (the kernel's VmRSS around it)" % e["t"], v,
                     e.get("rss_bytes"))
        c.ok(rss_checked, "no sample had a stable VmRSS around it to compare with")
        totals = [e for e in samples if e.get("objects_total") is not None]
        c.eq("entries with objects_total (one census taken)", 1, len(totals))
        # The steps, against the target's own word.
        for i in range(1, len(truths)):
            printed, tr = truths[i]
            until = asked[i] if i < len(asked) else float("inf")
            mine = [e for e in samples if printed < e["t"] < until]
            if not c.ok(mine, "step %d: no sample between the truth and the next step" % i):
                continue
            for e in mine:
                coll = [s["collections"] for s in tr["stats"][:3]]
                c.eq("step %d, sample at %r: gc_collections (gc.get_stats())" % (i, e["t"]), coll,
                     e.get("gc_collections"))
                b = e.get("allocated_blocks")
                if b is not None:
                    c.ok(0 <= b - tr["allocated_blocks"] <= BLOCKS_SLACK,
                         "step %d, sample at %r: allocated_blocks %s, the target said %d (+%d)" % (
                             i, e["t"], b, tr["allocated_blocks"], BLOCKS_SLACK))

            prev = truths[i - 1][1]
            d = [a["collections"] - b["collections"] for a, b in zip(tr["stats"], prev["stats"])]
            c.note("step %d: collections +%s, blocks +%d" % (
                i, d[:3], tr["allocated_blocks"] - prev["allocated_blocks"]))
        nulls = sum(1 for e in samples if e.get("pss_bytes") is None)
        c.ok(0 < nulls < len(samples), "pss_bytes: expected null between smaps_rollup reads "
                                       "(pss_interval 1 s) and values at them, got %d null of %d"
                                       % (nulls, len(samples)))
        if pymalloc_null:
            # Unreadable here, so null at every sample, never a made-up number.
            c.eq("arena_bytes and allocated_blocks without a debug file",
                 [(None, None)] * len(samples),
                 [(e.get("arena_bytes"), e.get("allocated_blocks")) for e in samples])
            c.ok(samples and all(e.get("gc_collections") for e in samples),
                 "the GC's collections must still be there without pymalloc")
        pm = samples[-1].get("arena_bytes") if samples else None
        c.note("%d samples, %d checked against their PROCESS, %d against VmRSS, pymalloc %s" % (
            len(samples), matched, rss_checked, "read" if pm is not None else "null (not readable)"))

        # ?seconds=N: the last N seconds of the same samples.
        t0 = time.time()
        part = history(inst, t.pid, "?seconds=1").get("samples") or []
        full = history(inst, t.pid).get("samples") or []
        t1 = time.time()
        fd = dict((e["t"], e) for e in full)
        c.ok(part, "?seconds=1: no samples")
        for e in part:
            c.ok(e["t"] >= t0 - 1 - 0.01, "?seconds=1: a sample %.2f s old" % (t1 - e["t"]))
            c.eq("?seconds=1: sample at %r" % e["t"], fd.get(e["t"]), e)
        if part:
            older = [e for e in full if e["t"] < part[0]["t"]]
            c.ok(not older or older[-1]["t"] < t1 - 1,
                 "?seconds=1 left out a sample of the last second")
        for q in ("?seconds=0", "?seconds=-5", "?seconds=abc", "?seconds=nan", "?seconds=1e99"):
            r = inst.get("/api/v1/processes/%d/history%s" % (t.pid, q))
            c.eq("history%s: status" % q, 400, r.status)
        r = inst.get("/api/v1/processes/%d/history" % os.getpid())
        c.eq("history of a pid not watched: status", 404, r.status)
        c.ok(r.status == 404 and "error" in r.json(), "404 without a JSON error")

        # Exit: the samples stay (an explicit --pid is still listed, "gone"); none is added.
        n_before = len(full)
        t.p.stdin.close()
        t.p.wait(10)
        gone_at = time.time()
        end = time.monotonic() + 10
        while time.monotonic() < end:
            p = inst.process(t.pid, missing_ok=True)
            if p and p.get("status") == "gone":
                break
            time.sleep(0.1)
        time.sleep(3 * INTERVAL)
        after = history(inst, t.pid).get("samples") or []
        c.ok(len(after) >= n_before, "after the exit: %d samples, %d before" % (
            len(after), n_before))
        late = [e["t"] for e in after if e["t"] > gone_at]
        c.ok(not late, "after the exit: samples taken after it: %s" % shown(late))
    finally:
        if poller:
            poller.close()
        inst.shutdown()
        t.close()


def t_ring_length(c, ctx):
    label, cmd = ctx.interps[0]
    tag = "%s-ring" % ctx.tag
    t = Target(label, trend_argv(cmd, tag), tag)
    inst = Pymemd(ctx.exe, ["--pid", str(t.pid), "--interval", str(INTERVAL), "--history", "1",
                            "--census-interval", "0"], "pymemd (--history 1)")
    try:
        inst.start()
        poller = Poller(inst, t.pid)
        time.sleep(8 * INTERVAL)
        poller.wait_after(time.time())
        poller.close()
        samples = history(inst, t.pid).get("samples") or []
        c.eq("samples kept with --history 1 --interval 0.2", 5, len(samples))
        seen = [p["sampled_at"] for p in poller.after(0)]
        ts = [e["t"] for e in samples]
        c.eq("they are the newest 5 samples published, oldest first", seen[-5:], ts)
    finally:
        inst.shutdown()
        t.close()


def t_pid_reuse(c, ctx):
    path = "/proc/sys/kernel/ns_last_pid"
    if not os.access(path, os.W_OK):
        raise Skip("%s is not writable (needs root): a PID reuse cannot be forced" % path)
    label, cmd = ctx.interps[0]
    if len(cmd) != 1:
        raise Skip("the interpreter must be a plain executable (pid = target pid)")
    tag = "%s-reuse" % ctx.tag
    a = Target(label, trend_argv(cmd, tag), tag)
    pid = a.pid
    inst = Pymemd(ctx.exe, ["--pid", str(pid), "--interval", str(INTERVAL),
                            "--census-interval", "0"], "pymemd (pid reuse)")
    b = None
    try:
        inst.start()
        inst.wait_process(pid)
        time.sleep(3 * INTERVAL)
        old = history(inst, pid).get("samples") or []
        c.ok(len(old) >= 2, "first owner: %d samples" % len(old))
        a.p.kill()
        a.p.wait()
        CHILDREN.reap(a.p)
        b = spawn_at(pid, trend_argv(cmd, tag), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, env=clean_env(), cwd="/")
        if b is None:
            raise Skip("could not get pid %d again in 50 tries (other processes fork)" % pid)
        truth = json.loads(read_line(b, 30))
        born = time.time()
        c.eq("the second owner's pid", pid, truth["pid"])
        inst.wait_process(pid, cond=lambda p: p.get("sampled_at", 0) > born)
        time.sleep(3 * INTERVAL)
        new = history(inst, pid).get("samples") or []
        old_t = set(e["t"] for e in old)
        c.ok(new and not (old_t & set(e["t"] for e in new)),
             "after the pid was reused the history still holds the first owner's samples")
        start = inst.process(pid).get("start_time")
        c.ok(all(e["t"] >= start for e in new),
             "samples older than the second owner's start (%s): %s" % (
                 start, shown([e["t"] for e in new if e["t"] < start])))
        c.note("pid %d: %d samples of the first owner, then %d of the second" % (
            pid, len(old), len(new)))
    finally:
        if b is not None:
            CHILDREN.reap(b)
        inst.shutdown()
        a.close()


SUSPECT_CONF = """\
interval = %g
census_interval = 0
census_min_interval = 0.1
suspect_censuses = 3
""" % INTERVAL


def t_suspects(c, ctx):
    """A target keeps 2,000 more Leak instances at each step and its 100 Flat ones: after
    K + 1 = 4 fresh censuses Leak is a suspect with exactly the counts the target printed (its own
    Counter of gc.get_objects()), Flat is not; before, the growth says how many censuses are
    missing; a step that keeps nothing ends it."""
    label, cmd = ctx.interps[0]
    tag = "%s-suspects" % ctx.tag
    t = Target(label, trend_argv(cmd, tag), tag)
    inst = Pymemd(ctx.exe, ["--pid", str(t.pid)], "pymemd (suspects)", conf=SUSPECT_CONF)
    growth = "/api/v1/processes/%d/growth" % t.pid
    try:
        inst.start()
        inst.wait_process(t.pid)
        truths = [t.truth]
        ats = []

        def census():
            # census_min_interval is 0.1 s: a request inside it would get the last census.
            time.sleep(0.15)
            st, doc = inst.status_json("/api/v1/processes/%d/objects?fresh=1" % t.pid)
            if st != 200:
                raise Fail("?fresh=1: %d %s" % (st, short(json.dumps(doc))))
            if ats and doc.get("at") == ats[-1]:
                raise Fail("?fresh=1 answered with the previous census")
            ats.append(doc.get("at"))
            return doc

        def step(line=b"\n"):
            t.p.stdin.write(line)
            t.p.stdin.flush()
            truths.append(t.next_truth())

        census()
        for n in (1, 2):
            step()
            census()
            st, g = inst.status_json(growth)
            c.eq("growth after %d censuses: status" % (n + 1), 200, st)
            c.eq("growth after %d censuses: suspects" % (n + 1), None, g.get("suspects"))
            err = g.get("suspects_error") or ""
            c.ok("need 4 censuses" in err and "%d taken so far" % (n + 1) in err,
                 "growth after %d censuses: suspects_error %s" % (n + 1, shown(err)))
        step()
        census()
        st, g = inst.status_json(growth)
        c.eq("growth after 4 censuses: status", 200, st)
        c.eq("suspects_error", None, g.get("suspects_error"))
        sus = dict((x.get("type"), x) for x in g.get("suspects") or [])
        leak = sus.get("Leak")
        want = [tr["leak"] for tr in truths]
        c.eq("the target's own Leak counts (sanity: it leaks)", [0, 2000, 4000, 6000], want)
        if c.ok(leak is not None, "Leak is not a suspect: %s" % shown(g.get("suspects"))):
            c.eq("Leak counts (the target's Counter at each step)", want, leak.get("counts"))
            c.eq("Leak increase", want[-1] - want[0], leak.get("increase"))
            c.eq("Leak censuses", 3, leak.get("censuses"))
            # The censuses' "at" is printed to 15 significant digits (10 us), so the rate the
            # driver can work out from them is that close to pymemd's.
            rate = (want[-1] - want[0]) / (ats[-1] - ats[0])
            got = leak.get("per_second")
            c.ok(isinstance(got, float) and abs(got - rate) <= rate * 1e-4,
                 "Leak per_second: expected %r (from the censuses' at), got %s" % (rate,
                                                                                   shown(got)))
        c.eq("suspects_since (the first of the 4 censuses)", ats[0], g.get("suspects_since"))
        flat = [tr["flat"] for tr in truths]
        c.eq("the target's own Flat counts", [100] * 4, flat)
        c.ok("Flat" not in sus, "Flat (100 at every census) is a suspect: %s" % shown(
            sus.get("Flat")))

        # Prometheus: the rate per suspect, clean for promtool and the OpenMetrics parser.
        r = inst.get("/metrics?format=prometheus")
        text = r.text()
        ex = Expo(text, False)
        for p in ex.problems:
            c.diffs.append("text 0.0.4: %s" % p)
        fam = ex.families.get("pymemd_leak_suspect_objects_per_second") or {}
        c.eq("# TYPE pymemd_leak_suspect_objects_per_second", "gauge", fam.get("type"))
        v = ex.value("pymemd_leak_suspect_objects_per_second", pid=str(t.pid),
                     object_type="Leak")
        js = leak.get("per_second") if leak else None
        # The same double; JSON prints 15 digits when they read back within cJSON's epsilon.
        c.ok(isinstance(v, float) and isinstance(js, float) and abs(v - js) <= abs(js) * 1e-12,
             "pymemd_leak_suspect_objects_per_second{object_type=\"Leak\"}: %s, JSON %s" % (
                 shown(v), shown(js)))
        c.eq("no series for Flat", [], ex.find("pymemd_leak_suspect_objects_per_second",
                                               object_type="Flat"))
        try:
            err, _ = promtool_check(text)
            c.ok(not err, err or "")
            om = inst.get("/metrics?format=openmetrics").text()
            c.ok("pymemd_leak_suspect_objects_per_second" in om, "OpenMetrics lacks the suspects")
            err, _ = promtool_check(om, om=True)
            c.ok(not err, err or "")
        except Skip as e:
            c.note("format checkers: %s" % e)

        # A step that keeps nothing: Leak did not rise at the last census, so it is no suspect.
        step(b"hold\n")
        census()
        g = inst.json(growth)
        c.ok("Leak" not in [x.get("type") for x in g.get("suspects") or []],
             "Leak is still a suspect after a census without a rise")
        ex = Expo(inst.get("/metrics?format=prometheus").text(), False)
        c.eq("no Leak series after it stopped rising", [],
             ex.find("pymemd_leak_suspect_objects_per_second", object_type="Leak"))
        c.note("Leak counts %s over censuses %.2f s apart" % (
            want, (ats[3] - ats[0]) / 3))
    finally:
        inst.shutdown()
        t.close()


def run(exe):
    ctx = Ctx()
    ctx.exe = exe
    ctx.tag, _ = make_tag("pymemdtrend")
    ctx.interps = []
    label, path = pyenv_python(12)
    if path:
        ctx.interps.append((label, [path]))
    else:
        RESULTS.out("SKIP", "interpreter pyenv 3.12", "not installed")
    if os.path.exists("/usr/bin/python3"):
        ctx.interps.append(("system-python3", ["/usr/bin/python3"]))
    label, cmd = debian_python()
    if label:
        ctx.interps.append((label, cmd))
    else:
        RESULTS.out("SKIP", "interpreter debian", cmd)
    if not ctx.interps:
        RESULTS.out("FAIL", "setup", "no Python interpreter found")
        return
    for label, cmd in ctx.interps:
        case("history: known steps, every sample = its PROCESS (%s)" % label, t_steps, ctx,
             label, cmd)
    tmp = tempfile.mkdtemp(prefix="pymemd-trends-")
    try:
        label, cmd = python_without_debug_file(tmp)
        if label:
            case("history: null where not readable (%s: pymalloc null)" % label, t_steps, ctx,
                 label, cmd, True)
        else:
            RESULTS.out("SKIP", "history: null where not readable", cmd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    case("history: --history 1 keeps history / interval samples", t_ring_length, ctx)
    case("history: a reused pid starts a new history", t_pid_reuse, ctx)
    case("growth: leak suspects over 4 censuses, = the target's own counts; metric", t_suspects,
         ctx)


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pymemd", required=True)
    opts = ap.parse_args()
    exe = os.path.abspath(opts.pymemd)
    return run_driver("HTTP contract: trends: %s" % exe, run, exe)


if __name__ == "__main__":
    sys.exit(main())
