#!/usr/bin/python3
"""Privilege separation (issue 13 item 1), against a real pymemd and real CPython targets,
standard library only. Needs root (SKIP otherwise).

- root: pymemd started as root runs its HTTP side as a second process (the main pid's child,
  `--privsep-listener`) whose /proc status shows no capability in CapEff, CapPrm, CapAmb or the
  bounding set, NoNewPrivs 1, and the uid and gid of the `pymemd` user (or nobody); it holds the
  listening socket and the main pid (the sampler, which keeps its capabilities) holds none;
- the listener's credentials cannot read a target: a helper started with exactly the
  listener's uid, gid, no groups and no capabilities (setpriv) is refused opening
  /proc/TARGET/mem, process_vm_readv and PTRACE_SEIZE, while the same helper as root is
  allowed them (so the check can fail);
- as the unit runs it: pymemd as an unprivileged user holding CAP_SYS_PTRACE and
  CAP_DAC_READ_SEARCH only as ambient capabilities (setpriv) reads a root-owned target, and its
  listener, same uid, has no capability at all;
- killing the listener with SIGKILL while a census holds the target stopped: pymemd lets go of
  the target, exits 1, and nothing of it is left; killing the sampler (the main pid) with
  SIGKILL mid-census: the listener exits too (PR_SET_PDEATHSIG and the channel's end), the
  target is not left stopped and keeps answering;
- SIGTERM stops both sides with status 0.

Prints PASS/FAIL/SKIP lines and ends with "N passed, M failed, K skipped"; exit status 0 iff
nothing failed.
"""
import argparse
import ctypes
import json
import os
import pwd
import grp
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.dont_write_bytecode = True
import pymemdtest  # noqa: E402
from pymemdtest import (RESULTS, CHILDREN, Fail, Skip, case, clean_env,  # noqa: E402
                        request, run_driver, short, start_daemon)

PY = "/usr/bin/python3"

# A target with n objects in reference cycles; prints its pid, then answers each line on stdin
# with "pong" (proof that it runs).
TARGET = r'''
import gc, json, os, sys
n = int(sys.argv[1])
keep = []
for i in range(n):
    a = [i]; b = {"peer": a}; a.append(b)
    keep.append(a)
gc.collect()
os.write(1, (json.dumps({"pid": os.getpid()}) + "\n").encode())
for line in sys.stdin:
    os.write(1, b"pong\n")
'''


def target(n):
    return pymemdtest.Target("target", [PY, "-c", TARGET, str(n)], env=clean_env(), error=Fail,
                             timeout=120)


def pong(t, c):
    """Whether the target answers a line within 5 s (it runs, it is not stopped)."""
    try:
        t.p.stdin.write(b"ping\n")
        t.p.stdin.flush()
        line = pymemdtest.read_line(t.p, 5.0)
    except Exception as e:
        return c.ok(False, "the target does not answer: %s" % e)
    return c.ok(line.strip() == "pong", "the target answered %r" % line)


def status(pid):
    """/proc/PID/status as a dict, or None when it is gone (or a zombie)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            d = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
    except OSError:
        return None
    return None if d.get("State", "").startswith("Z") else d


def ppid_children(pid):
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open("/proc/%s/stat" % e, "rb") as f:
                    data = f.read()
                if int(data[data.rindex(b")") + 2:].split()[1]) == pid:
                    out.append(int(e))
            except (OSError, ValueError):
                pass
    return out


def listener_of(d):
    kids = [k for k in ppid_children(d.p.pid)
            if b"--privsep-listener" in open("/proc/%d/cmdline" % k, "rb").read()]
    if len(kids) != 1:
        raise Fail("pymemd (pid %d) has %d listener children, not 1" % (d.p.pid, len(kids)))
    return kids[0]


def listener_user():
    for name in ("pymemd", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    raise Skip("neither a pymemd nor a nobody user")


def listening_inodes(port):
    """Socket inodes listening on 127.0.0.1:port (/proc/net/tcp, state 0A)."""
    out = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == "0100007F:%04X" % port and fields[3] == "0A":
                out.add(fields[9])
    return out


def socket_inodes(pid):
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(link[8:-1])
    return out


def daemon(exe, args, wrap=(), conf="# pymemd on its defaults (an empty file is refused)\n"):
    # Pymemd starts exe itself: a wrap (setpriv) goes in through a small script.
    return start_daemon(wrap_script(wrap, exe) if wrap else exe, args, conf, ready_timeout=30)


def wrap_script(wrap, exe):
    path = "/tmp/pymemd-privsep-%d.sh" % os.getpid()
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec %s %s \"$@\"\n" % (" ".join(wrap), exe))
    os.chmod(path, 0o755)
    return path


def check_no_caps(c, st, bounding):
    for key in ("CapEff", "CapPrm", "CapAmb") + (("CapBnd",) if bounding else ()):
        c.eq("listener %s" % key, "0000000000000000", st.get(key))
    c.eq("listener NoNewPrivs", "1", st.get("NoNewPrivs"))


def root_creds(c, ctx):
    t = target(1000)
    d = daemon(ctx.exe, ["--pid", str(t.pid)])
    try:
        d.wait_process(t.pid)
        lp = listener_of(d)
        st, main = status(lp), status(d.p.pid)
        check_no_caps(c, st, True)
        pw = listener_user()
        c.eq("listener Uid", "\t".join([str(pw.pw_uid)] * 4), st.get("Uid"))
        c.eq("listener Gid", "\t".join([str(pw.pw_gid)] * 4), st.get("Gid"))
        c.eq("listener Groups", "", st.get("Groups", "").strip())
        c.ok(int(main["CapEff"], 16) & (1 << 19), "the sampler lost CAP_SYS_PTRACE: CapEff %s"
             % main["CapEff"])
        c.eq("sampler Uid", "0\t0\t0\t0", main.get("Uid"))
        lis = listening_inodes(d.port)
        c.ok(lis, "nothing listens on port %d" % d.port)
        c.ok(lis & socket_inodes(lp), "the listener does not hold the listening socket")
        c.ok(not (lis & socket_inodes(d.p.pid)), "the sampler holds the listening socket")
        # And it serves: a census through the channel, and the process from the snapshot.
        st_, doc = d.status_json("/api/v1/processes/%d/objects?fresh=1&top=3" % t.pid)
        c.eq("fresh census status", 200, st_)
        c.ok(len(doc.get("types", [])) == 3, "?top=3 gave %s" % short(json.dumps(doc), 200))
        c.note("listener pid %d uid %d" % (lp, pw.pw_uid))
        rc, _ = d.stop()
        c.eq("exit status after SIGTERM", 0, rc)
        end = time.monotonic() + 10
        while time.monotonic() < end and status(lp) is not None:
            time.sleep(0.02)
        c.ok(status(lp) is None, "the listener outlived the sampler")
    finally:
        d.close()
        t.close()


HELPER = r'''
import ctypes, json, os, sys
pid = int(sys.argv[1]); addr = int(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
out = {}
try:
    with open("/proc/%d/mem" % pid, "rb") as f:
        f.seek(addr); f.read(8)
    out["mem"] = 0
except OSError as e:
    out["mem"] = e.errno
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(8)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 8); remote = iovec(addr, 8)
libc.process_vm_readv.restype = ctypes.c_ssize_t
r = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
out["vm_readv"] = 0 if r == 8 else ctypes.get_errno()
libc.ptrace.restype = ctypes.c_long
r = libc.ptrace(0x4206, pid, None, None)   # PTRACE_SEIZE
out["seize"] = 0 if r == 0 else ctypes.get_errno()
if r == 0:
    libc.ptrace(17, pid, None, None)        # PTRACE_DETACH
print(json.dumps(out))
'''


def readable_addr(pid):
    """A mapped, readable address of pid (its first r mapping)."""
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            rng, perms = line.split()[:2]
            if perms.startswith("r"):
                return int(rng.split("-")[0], 16)
    raise Fail("pid %d has no readable mapping" % pid)


def run_helper(prefix, pid, addr):
    out = subprocess.run(list(prefix) + [PY, "-c", HELPER, str(pid), str(addr)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                         timeout=30)
    if out.returncode != 0:
        raise Fail("helper %s failed: %s" % (prefix, short(out.stderr)))
    return json.loads(out.stdout)


def listener_cannot_read(c, ctx):
    t = target(1000)
    d = daemon(ctx.exe, ["--pid", str(t.pid)])
    try:
        d.wait_process(t.pid)
        lp = listener_of(d)
        st = status(lp)
        uid, gid = st["Uid"].split()[0], st["Gid"].split()[0]
        addr = readable_addr(t.pid)
        # Exactly the listener's credentials: its uid and gid, no groups, no capabilities in any
        # set, no_new_privs.
        as_listener = ["setpriv", "--reuid", uid, "--regid", gid, "--clear-groups",
                       "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        got = run_helper(as_listener, t.pid, addr)
        for k in ("mem", "vm_readv", "seize"):
            c.ok(got[k] in (1, 13), "with the listener's credentials, %s of the target was %s"
                 % (k, "allowed" if got[k] == 0 else "refused with errno %d" % got[k]))
        ctl = run_helper([], t.pid, addr)
        c.eq("as root (the control)", {"mem": 0, "vm_readv": 0, "seize": 0}, ctl)
        c.note("listener creds: %s" % json.dumps(got))
        c.ok(pong(t, c), "the target stopped answering")
    finally:
        d.close()
        t.close()


def as_unit(c, ctx):
    pw = listener_user()
    t = target(1000)
    caps = "+sys_ptrace,+dac_read_search"
    wrap = ["setpriv", "--reuid", str(pw.pw_uid), "--regid", str(pw.pw_gid), "--clear-groups",
            "--inh-caps=" + caps, "--ambient-caps=" + caps, "--bounding-set=-all," + caps]
    d = daemon(ctx.exe, ["--pid", str(t.pid)], wrap=wrap)
    try:
        p = d.wait_process(t.pid)
        c.eq("target status", "ok", p["status"])
        main = status(d.p.pid)
        c.eq("sampler Uid", "\t".join([str(pw.pw_uid)] * 4), main.get("Uid"))
        c.ok(int(main["CapAmb"], 16) & (1 << 19), "the sampler has no ambient CAP_SYS_PTRACE")
        lp = listener_of(d)
        st = status(lp)
        check_no_caps(c, st, False)
        c.eq("listener Uid", main.get("Uid"), st.get("Uid"))
        st_, doc = d.status_json("/api/v1/processes/%d/objects?fresh=1" % t.pid)
        c.eq("fresh census status", 200, st_)
        rc, _ = d.stop()
        c.eq("exit status after SIGTERM", 0, rc)
    finally:
        d.close()
        t.close()


def kill_mid_census(c, ctx, which):
    # A heap big enough that its census keeps the target stopped for a while.
    t = target(600000)
    conf = "max_census_pause_on_demand = 60\ncensus_min_interval = 0\ncensus_interval = 0\n"
    d = daemon(ctx.exe, ["--pid", str(t.pid)], conf=conf)
    try:
        d.wait_process(t.pid)
        lp = listener_of(d)
        def ask():
            try:
                d.status_json("/api/v1/processes/%d/objects?fresh=1" % t.pid, timeout=90)
            except Exception:
                pass     # its connection dies with the listener: expected
        th = threading.Thread(target=ask, daemon=True)
        th.start()
        tasks = set(os.listdir("/proc/%d/task" % d.p.pid))
        end, stopped = time.monotonic() + 60, False
        while time.monotonic() < end and not stopped:
            s = status(t.pid)
            if s and s.get("TracerPid", "0") != "0":
                tasks = set(os.listdir("/proc/%d/task" % d.p.pid))
            # The tracer is the sampler's census thread: a task of the main pid.
            stopped = s is not None and s.get("State", "").startswith("t") and \
                s.get("TracerPid", "0") in tasks
            if not stopped:
                time.sleep(0.0005)
        if not stopped:
            raise Fail("never saw the target stopped by a census")
        victim = lp if which == "listener" else d.p.pid
        os.kill(victim, signal.SIGKILL)
        try:
            rc = d.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise Fail("pymemd did not exit within 60 s of the %s's death" % which)
        c.ok(rc != 0, "pymemd exited with status %s after its %s was killed" % (rc, which))
        c.note("exit status %s" % rc)
        end = time.monotonic() + 10
        while time.monotonic() < end and status(lp) is not None:
            time.sleep(0.02)
        c.ok(status(lp) is None, "the listener is still running")
        s = status(t.pid)
        c.ok(s is not None, "the target died")
        if s:
            c.ok(s["State"][0] in "RS", "the target is left %s" % s["State"])
            c.eq("target TracerPid", "0", s.get("TracerPid"))
        pong(t, c)
        if which == "listener":
            c.ok("HTTP listener" in d.stderr(), "the log does not say the listener died: %s"
                 % short(d.stderr()[-300:]))
    finally:
        d.close()
        t.close()


class Ctx(object):
    pass


def run(args):
    if os.geteuid() != 0:
        RESULTS.out("SKIP", "privsep", "needs root")
        return
    ctx = Ctx()
    ctx.exe = os.path.abspath(args.pymemd)
    case("root: the listener holds no capability, runs as the unprivileged user", root_creds,
         ctx)
    case("the listener's credentials cannot read or trace a target", listener_cannot_read, ctx)
    case("as the unit: ambient capabilities stay with the sampler", as_unit, ctx)
    case("SIGKILL to the listener mid-census: target let go, pymemd exits 1",
         kill_mid_census, ctx, "listener")
    case("SIGKILL to the sampler mid-census: target let go, the listener exits",
         kill_mid_census, ctx, "sampler")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", required=True)
    args = ap.parse_args()
    rc = run_driver("privilege separation", run, args)
    try:
        os.unlink("/tmp/pymemd-privsep-%d.sh" % os.getpid())
    except OSError:
        pass
    return rc


if __name__ == "__main__":
    sys.exit(main())
