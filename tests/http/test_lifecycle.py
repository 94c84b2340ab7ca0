#!/usr/bin/python3
"""HTTP contract: target lifecycle (DESIGN.md sections 3-5).

    /usr/bin/python3 test_lifecycle.py --pymemd build/pymemd

A new target is picked up, an exited (or zombie) target is never "ok" again, identity
fields are stable, a process that exec()s another interpreter in place and a real PID reuse
(forced through /proc/sys/kernel/ns_last_pid when writable) are never mixed up; targets are
never left stopped; SIGTERM with idle and half-sent connections open exits 0 within 2 s; odd
process names (quotes, backslash, ')' and a UTF-8 sequence cut by the kernel's 15-byte comm
limit) and a command line that is not UTF-8.

The setup, parsers and expectations are in httpcommon.py; PASS/FAIL/SKIP lines, ending with
exactly `N passed, M failed, K skipped`; exit status 0 iff nothing failed.
"""
import http.client
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpcommon import *  # noqa: E402,F401,F403
from pymemdtest import spawn_at  # noqa: E402


def t_identity_stable(c, ctx):
    keys = ("pid", "name", "cmdline", "exe", "start_time")
    first = {}
    sampled = {}
    for _ in range(6):
        for p in ctx.main.processes():
            pid = p.get("pid")
            ident = dict((k, p.get(k)) for k in keys)
            ident["python.version"] = (p.get("python") or {}).get("version")
            if pid in first:
                for k, v in ident.items():
                    c.ok(first[pid][k] == v, "pid %s %s changed between samples: %s -> %s" % (
                        pid, k, shown(first[pid][k]), shown(v)))
            else:
                first[pid] = ident
            sampled.setdefault(pid, set()).add(p.get("sampled_at"))
        time.sleep(0.3)
    for t in ctx.targets:
        ident = first.get(t.pid)
        if not ident:
            c.diffs.append("pid %d missing" % t.pid)
            continue
        st = ident["start_time"]
        real = proc_start_time(t.pid)
        c.ok(isinstance(st, (int, float)) and real is not None and abs(st - real) < 2.0,
             "%s start_time: expected about %.2f (btime + /proc/PID/stat starttime), got %s" % (
                 t.label, real or 0, shown(st)))
        c.ok(len(sampled.get(t.pid, ())) >= 2,
             "%s: sampled_at did not change across 6 polls in 1.8 s" % t.label)
    c.note("pid, name, cmdline, exe, start_time and version stable over %d samples" %
           max(len(s) for s in sampled.values()) if sampled else "no samples")


def watch_pid(inst, pid, seconds, stop=None, interval=0.1):
    """Poll /api/v1/processes for pid; returns a list of (wall time, PROCESS
    or None)."""
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = None
        for p in inst.processes():
            if p.get("pid") == pid:
                found = p
                break
        out.append((time.time(), found))
        if stop and stop(found):
            break
        time.sleep(interval)
    return out


def t_new_target(c, ctx):
    it = ctx.interps[0]
    tag = ctx.tag + "-life"
    t0 = time.monotonic()
    t = Target("%s (started later)" % it[0], target_argv(it[1], tag), tag)
    ctx.late = t
    # The truth holds from the moment it was printed. Discovery may have found the process
    # while it was still starting, and a sample from then is "ok" with the values of that
    # moment (thresholds 700, 10, 10): only a sample taken after the truth was read counts.
    t_truth = time.time()
    obs = watch_pid(ctx.main, t.pid, DISCOVERY_WAIT + 5,
                    stop=lambda p: p is not None and p.get("status") == "ok" and
                    sampled_after(p, t_truth))
    last = obs[-1][1] if obs else None
    if last is None or last.get("status") != "ok" or not sampled_after(last, t_truth):
        raise Fail("a new target (pid %d, %s) matching --match was not reported \"ok\" in a "
                   "sample taken after it printed its truth within %.0f s (last seen: %s)" % (
                       t.pid, it[0], DISCOVERY_WAIT + 5, shown(last)))
    c.note("picked up after %.1f s" % (time.monotonic() - t0))
    json_expectations(c, "late target", t, last)
    _, ex = get_expo(c, ctx.main, "text")
    metric_expectations(c, "text", t, last, ex)


def judge_after_exit(c, obs, t_exit, what):
    """Every observation after the exit: absent, or not "ok", or an "ok"
    sampled before the exit (a snapshot older than the exit)."""
    turned = False
    bad = []
    for when, p in obs:
        if p is None or p.get("status") != "ok":
            turned = True
            continue
        sa = p.get("sampled_at")
        late = isinstance(sa, (int, float)) and sa > t_exit + 0.05 + (p.get("sample_seconds") or 0)
        if turned:
            bad.append("\"ok\" again at +%.2f s after it was gone" % (when - t_exit))
        elif late:
            bad.append("\"ok\" with sampled_at %.3f, %.2f s after the process exited" % (
                sa, sa - t_exit))
    c.ok(not bad, "%s: %s" % (what, "; ".join(bad[:3])))
    last = obs[-1][1] if obs else None
    c.ok(last is None or last.get("status") != "ok",
         "%s: still \"ok\" %.0f s after the process exited (sampled_at %s)" % (
             what, obs[-1][0] - t_exit if obs else 0, shown(last.get("sampled_at") if last else None)))
    if last is not None:
        c.ok(last.get("status") == "gone",
             "%s: expected absent or status \"gone\", got %s" % (what, shown(last.get("status"))))
    return last


def t_target_exit(c, ctx):
    t = getattr(ctx, "late", None)
    if t is None:
        raise Skip("no late target (the previous check failed)")
    pid = t.pid
    t.p.kill()
    t.p.wait()
    t_exit = time.time()
    obs = watch_pid(ctx.main, pid, DISCOVERY_WAIT,
                    stop=lambda p: False)
    last = judge_after_exit(c, obs, t_exit, "pid %d after SIGKILL" % pid)
    t.close()
    _, ex = get_expo(c, ctx.main, "text")
    up = ex.find("pymemd_target_up", pid=str(pid))
    c.ok(all(s.value == 0 for s in up), "pymemd_target_up{pid=%d} still 1 after exit" % pid)
    c.ok(not ex.find("python_gc_threshold", pid=str(pid)),
         "python_gc_threshold{pid=%d} still exported after exit" % pid)
    c.note("after %.0f s: %s" % (DISCOVERY_WAIT, "dropped" if last is None else
                                 "status %s" % last.get("status")))


def t_zombie(c, ctx):
    it = ctx.interps[0]
    tag = ctx.tag + "-zombie"
    t = Target("%s (zombie)" % it[0], target_argv(it[1], tag), tag)
    try:
        p = wait_sampled(ctx.main, [t.pid])
        if (p.get(t.pid) or {}).get("status") != "ok":
            raise Fail("target pid %d not sampled ok within %.0f s: %s" % (
                t.pid, DISCOVERY_WAIT, shown(p.get(t.pid))))
        os.kill(t.pid, signal.SIGKILL)        # not reaped: a zombie
        deadline = time.monotonic() + 5
        while proc_state(t.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        t_exit = time.time()
        c.eq("state of the killed, unreaped target", "Z", proc_state(t.pid))
        obs = watch_pid(ctx.main, t.pid, DISCOVERY_WAIT)
        last = judge_after_exit(c, obs, t_exit, "zombie pid %d" % t.pid)
        c.note("zombie: %s" % ("dropped" if last is None else "status %s, error %s" % (
            last.get("status"), short(last.get("error"), 80))))
    finally:
        t.close()


EXEC_WRAPPER = r"""
import os, runpy, sys
target, new, tag, fd = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.argv = [target, "--tag", tag]
try:
    runpy.run_path(target, run_name="__main__")
except SystemExit:
    pass
os.dup2(fd, 0)
os.execv(new, [new, target, "--tag", tag])
"""


def t_exec_in_place(c, ctx):
    """Same pid, same start_time, a different interpreter: exec()."""
    if len(ctx.interps) < 2:
        raise Skip("needs two interpreters of different versions")
    (la, ca), (lb, cb) = ctx.interps[1], ctx.interps[0]
    if len(cb) != 1:
        raise Skip("%s is started through a wrapper" % lb)
    tag = ctx.tag + "-exec"
    r, w = os.pipe()
    try:
        t = Target("%s exec'ing %s" % (la, lb),
                   list(ca) + ["-c", EXEC_WRAPPER, TARGET, cb[0], tag, str(r)], tag,
                   pass_fds=(r,))
    finally:
        os.close(r)
    t_truth = time.time()
    try:
        v_old = t.truth["version"]
        p = wait_sampled(ctx.main, [t.pid], after=t_truth)
        first = p.get(t.pid)
        if (first or {}).get("status") != "ok" or not sampled_after(first, t_truth):
            raise Fail("pid %d (%s) not sampled ok within %.0f s: %s" % (
                t.pid, la, DISCOVERY_WAIT, shown(first)))
        json_expectations(c, "before exec", t, first)
        start0 = first.get("start_time")
        t_before = time.time()
        t.p.stdin.close()                      # -> target.py returns -> execv
        old_truth = t.truth
        t.truth = t.next_truth()
        t_after = time.time()
        v_new = t.truth["version"]
        c.eq("pid after exec (from the target itself)", t.pid, t.truth["pid"])
        # The new image's truth holds from when it printed it: only a sample taken after
        # that is compared with it (one from between the exec and the print is "ok" with the
        # values of a starting interpreter).
        obs = watch_pid(ctx.main, t.pid, DISCOVERY_WAIT + 5,
                        stop=lambda p: p is not None and p.get("status") == "ok" and
                        (p.get("python") or {}).get("version") == v_new and
                        sampled_after(p, t_after))
        bad = []
        for when, p in obs:
            if p is None or p.get("status") != "ok":
                continue
            ver = (p.get("python") or {}).get("version")
            sa = p.get("sampled_at") or 0
            if ver == v_old and v_old != v_new and sa > t_after + 0.05:
                bad.append("\"ok\" as %s (the old interpreter) with sampled_at %.2f s after "
                           "the exec finished" % (v_old, sa - t_after))
            elif ver not in (v_old, v_new):
                bad.append("\"ok\" with version %s" % shown(ver))
        c.ok(not bad, "; ".join(sorted(set(bad))[:3]))
        last = obs[-1][1] if obs else None
        if last is None or last.get("status") != "ok" or \
                (last.get("python") or {}).get("version") != v_new or \
                not sampled_after(last, t_after):
            c.diffs.append("within %.0f s after exec of %s in place of %s (same pid %d, "
                           "same start_time), pymemd still reports %s" % (
                               DISCOVERY_WAIT + 5, v_new, v_old, t.pid,
                               "nothing" if last is None else "status %s, version %s, error %s"
                               % (last.get("status"), (last.get("python") or {}).get("version"),
                                  short(last.get("error"), 120))))
        else:
            json_expectations(c, "after exec", t, last)
            c.eq("start_time after exec (the kernel keeps it)", start0, last.get("start_time"))
            c.note("%s -> %s in %.1f s" % (v_old, v_new, obs[-1][0] - t_before))
        del old_truth
    finally:
        try:
            os.close(w)
        except OSError:
            pass
        t.close()


def t_pid_reuse(c, ctx):
    path = "/proc/sys/kernel/ns_last_pid"
    if not os.access(path, os.W_OK):
        raise Skip("%s is not writable (needs root and a writable /proc/sys): a real PID "
                   "reuse cannot be forced" % path)
    if len(ctx.interps) < 2:
        raise Skip("needs two interpreters of different versions")
    (la, ca), (lb, cb) = ctx.interps[1], ctx.interps[0]
    if len(ca) != 1 or len(cb) != 1:
        raise Skip("the interpreters must be plain executables (pid = target pid)")
    tag = ctx.tag + "-reuse"
    a = Target("%s (first owner)" % la, target_argv(ca, tag), tag)
    b = None
    try:
        p = wait_sampled(ctx.main, [a.pid])
        pa = p.get(a.pid)
        if (pa or {}).get("status") != "ok":
            raise Fail("first owner pid %d not sampled ok: %s" % (a.pid, shown(pa)))
        start_a = pa.get("start_time")
        pid = a.pid
        a.p.kill()
        a.p.wait()
        t_exit = time.time()
        CHILDREN.reap(a.p)
        b = spawn_at(pid, target_argv(cb, tag), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, env=clean_env(), cwd="/")
        if b is None:
            raise Skip("could not get pid %d again in 50 tries (other processes fork)" % pid)
        b_truth = json.loads(read_line(b, TARGET_TIMEOUT))
        t_b_truth = time.time()
        c.eq("the second process' own pid", pid, b_truth["pid"])
        v_a, v_b = a.truth["version"], b_truth["version"]
        # The second owner's values are compared in a sample taken after it printed them.
        obs = watch_pid(ctx.main, pid, DISCOVERY_WAIT + 5,
                        stop=lambda p: p is not None and p.get("status") == "ok" and
                        p.get("start_time") != start_a and sampled_after(p, t_b_truth))
        dup = []
        bad = []
        for when, p in obs:
            if p is None or p.get("status") != "ok":
                continue
            st = p.get("start_time")
            ver = (p.get("python") or {}).get("version")
            sa = p.get("sampled_at") or 0
            if st == start_a:
                if sa > t_exit + 0.05 + (p.get("sample_seconds") or 0):
                    bad.append("old start_time %s reported \"ok\" (version %s) with sampled_at "
                               "%.2f s after the first owner exited" % (st, ver, sa - t_exit))
                elif ver != v_a:
                    bad.append("old start_time with the new version %s (sampled_at %.3f s "
                               "after the first owner exited, sample_seconds %s, error %s)" % (
                                   ver, sa - t_exit, p.get("sample_seconds"),
                                   shown(p.get("error"))))
            elif ver != v_b:
                bad.append("new start_time %s with version %s (expected %s): mixed" % (
                    st, ver, v_b))
        c.ok(not bad, "; ".join(sorted(set(bad))[:3]))
        last = obs[-1][1] if obs else None
        if last is None or last.get("status") != "ok" or last.get("start_time") == start_a or \
                not sampled_after(last, t_b_truth):
            c.diffs.append("within %.0f s the new process with the reused pid %d was not "
                           "reported ok with a new start_time (last: %s)" % (
                               DISCOVERY_WAIT + 5, pid, shown(last)))
        else:
            tb = Ctx()
            tb.pid, tb.truth, tb.tag = pid, b_truth, tag
            json_expectations(c, "second owner", tb, last)
            real = proc_start_time(pid)
            c.ok(real is not None and abs(last.get("start_time") - real) < 2.0,
                 "second owner start_time: expected about %.2f, got %s" % (
                     real or 0, shown(last.get("start_time"))))
            _, ex = get_expo(c, ctx.main, "text")
            up = ex.find("pymemd_target_up", pid=str(pid))
            c.ok(len(up) <= 1, "pymemd_target_up{pid=%d}: %d series (duplicate pid labels "
                               "for two processes)" % (pid, len(up)))
            metric_expectations(c, "text", tb, last, ex)
            c.note("pid %d reused after %d tries: %s (start %.2f) -> %s (start %.2f)" % (
                pid, b.tries, v_a, start_a, v_b, last.get("start_time")))
        for p in ctx.main.processes():
            if p.get("pid") == pid and p.get("status") == "ok":
                c.ok(p.get("start_time") != start_a, "the old process is still listed ok")
    finally:
        a.close()
        if b is not None:
            CHILDREN.reap(b)


def t_sigterm_busy(c, ctx):
    inst = ctx.main
    inst.need()
    socks = []
    try:
        idle = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=5)
        idle.request("GET", "/healthz")
        idle.getresponse().read()                 # an idle keep-alive connection
        half = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
        half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")   # half a request
        socks = [idle, half]
        rc, took = inst.stop(signal.SIGTERM)
    finally:
        for s in socks:
            s.close()
    c.eq("exit status after SIGTERM", 0, rc)
    c.ok(took < STOP_LIMIT, "SIGTERM with an idle and a half-sent connection open: exited "
                            "after %.2f s (limit %.0f s)" % (took, STOP_LIMIT))
    c.ok(port_free(inst.port), "port %d still bound after exit" % inst.port)
    c.note("exit %s after %.2f s" % (rc, took))


ODD_WRAPPER = r"""
import ctypes, runpy, sys
name = bytes.fromhex(sys.argv[1])
ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)
target, tag = sys.argv[2], sys.argv[3]
sys.argv = [target, "--tag", tag]
runpy.run_path(target, run_name="__main__")
"""
# 14 bytes: quote, backslash, ')', a space, a whole 'ö' and a cut one.
ODD_COMM = b'py"q\\z) w\xc3\xb6rk\xc3'
ODD_PREFIX = 'py"q\\z) w\u00f6rk'


def t_odd_names(c, ctx):
    it = ctx.interps[0]
    if len(it[1]) != 1:
        raise Skip("%s is started through a wrapper" % it[0])
    tag = ctx.tag2 + "-odd"
    argv = list(it[1]) + ["-c", ODD_WRAPPER, ODD_COMM.hex(), TARGET, tag,
                          b"\xff\xfe-not-utf8", "\u00e9\u2713 \"q\" \\ end"]
    t = Target("%s with an odd comm" % it[0], argv, tag)
    ctx.all_targets.append(t)
    inst = Pymemd(ctx.exe, ["--match", ctx.regex2, "--interval", str(INTERVAL)], "pymemd (odd)")
    try:
        comm = proc_comm(t.pid)
        c.eq("comm set by the target", ODD_COMM, comm)
        inst.start()
        p = wait_sampled(inst, [t.pid])
        proc = p.get(t.pid)
        if proc is None:
            raise Fail("pid %d never listed" % t.pid)
        r = inst.get("/api/v1/processes/%d" % t.pid)
        one = strict_json(c, r, "/api/v1/processes/%d" % t.pid)
        json_expectations(c, "odd", t, one)
        name = one.get("name")
        c.ok(isinstance(name, str) and name.startswith(ODD_PREFIX),
             "name: expected %s followed by the cut character, got %s" % (
                 shown(ODD_PREFIX), shown(name)))
        cl = one.get("cmdline")
        c.ok(isinstance(cl, str) and tag in cl, "cmdline: expected to contain the tag, got %s"
             % shown(cl))
        strict_json(c, inst.get("/metrics"), "/metrics (JSON)")
        for fmt in ("text", "om"):
            text, ex = get_expo(c, inst, fmt)
            for pr in ex.problems:
                c.diffs.append("%s %s" % (FMT_NAME[fmt], pr))
            up = ex.find("pymemd_target_up", pid=str(t.pid))
            if c.eq("%s pymemd_target_up series" % FMT_NAME[fmt], 1, len(up)):
                c.eq("%s name label (= JSON name)" % FMT_NAME[fmt], name, up[0].labels.get("name"))
            metric_expectations(c, FMT_NAME[fmt], t, one, ex)
            err, _ = promtool_check(text, fmt == "om")
            if err:
                c.diffs.append("%s: %s" % (FMT_NAME[fmt], err))
        c.note("name %s" % shown(name))
        rc, took = inst.stop(signal.SIGTERM)
        c.eq("exit status after SIGTERM", 0, rc)
        c.ok(took < STOP_LIMIT, "exited after %.2f s (limit %.0f s)" % (took, STOP_LIMIT))
    finally:
        inst.close()
        t.close()


# Cases that need pymemd to read the targets (skipped when it may not).
for _fn in (t_new_target, t_target_exit, t_zombie, t_exec_in_place, t_pid_reuse, t_odd_names, t_identity_stable):
    _fn.needs_read = True


def cases(ctx):
    case("identity fields stable across samples", t_identity_stable, ctx)
    case("lifecycle: a new target is picked up", t_new_target, ctx)
    case("lifecycle: an exited target is never \"ok\" again", t_target_exit, ctx)
    case("lifecycle: a zombie target is never \"ok\"", t_zombie, ctx)
    case("lifecycle: exec() of another interpreter in place is not mixed", t_exec_in_place, ctx)
    case("lifecycle: a reused PID is not mixed with the old process", t_pid_reuse, ctx)
    case("targets never left stopped (while running)", t_never_stopped, ctx, "while pymemd runs")
    case("SIGTERM -> exit 0 within %.0f s (idle + half-sent connections)" % STOP_LIMIT,
         t_sigterm_busy, ctx)
    case("targets never left stopped (after SIGTERM)", t_never_stopped, ctx, "after pymemd exited")
    case("odd comm/cmdline: valid UTF-8 JSON, escaped labels", t_odd_names, ctx)


if __name__ == "__main__":
    sys.exit(drive("HTTP contract: target lifecycle", cases))
