#!/usr/bin/python3
"""Debug symbols for a stripped CPython 3.8-3.11: Debian's /usr/bin/python3.11 keeps its pymalloc
counters in static symbols that only its debug file (python3.11-dbg,
/usr/lib/debug/.build-id/xx/yyyy.debug) names. pymemd must read pymalloc exactly, as the target's
own sys.getallocatedblocks() says, in each case:

  installed       /usr/bin/python3.11 with python3.11-dbg installed
  deleted         a copy of it, started, then deleted (/proc/PID/exe "... (deleted)")
  unreadable      the same, but pymemd (as nobody with CAP_SYS_PTRACE only) cannot open the
                  deleted file: the build-id comes from the target's mapped first page
  debuginfod      a copy whose build-id has no installed debug file; the debug file (with the same
                  build-id) is served by a real debuginfod (Debian's package) on 127.0.0.1, with
                  DEBUGINFOD_URLS set; then again from libdebuginfod's cache with the server gone
and, with the reason pymemd gives for a null pymalloc:
  debuginfod-miss the server does not have the build-id
  debuginfod-mute the server accepts connections and never answers (bounded by pymemd's
                  time-out)
  no-urls         DEBUGINFOD_URLS unset
and, as a daemon, where a fetch runs in the background:
  daemon-mute     while the mute server holds the fetch, every target is still sampled on
                  time (no sample older than DAEMON_MAX_AGE s), the fetch is reported as under
                  way, then as timed out
  daemon-served   the served debug file arrives in the background and pymalloc becomes exact

The build-id of the copy is changed (in the binary and in a copy of its debug file alike) so that
the installed debug file cannot answer for it; nothing under /usr is modified.

    /usr/bin/python3 test_debuginfo.py --pymemd build/pymemd

Ends with "N passed, M failed, K skipped"; exit 77 when nothing could run (not root, no
python3.11-dbg, no debuginfod).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from pymemdtest import (CHILDREN, RESULTS, Fail, Pymemd, build_id, clean_env, free_port,  # noqa: E402
                        read_line, short)

SYSTEM_PYTHON = "/usr/bin/python3.11"
NOBODY = 65534
PYMEMD_TIMEOUT = 60      # seconds; pymemd's own debuginfod bound is 10 s
SERVER_TIMEOUT = 60      # seconds for debuginfod to index the served directory
# The daemon cases: sampling interval, and the oldest a sample may be while a fetch hangs (the
# fetch used to run on the sampling thread, which then took no sample for 10 s).
DAEMON_INTERVAL = 0.5
DAEMON_MAX_AGE = 3.0
# The target prints its own count, then sleeps: time.sleep allocates nothing, so the count at rest
# is the printed one (the int and str made to print it are freed before the sleep).
TARGET = "import sys, time; print(sys.getallocatedblocks(), flush=True); time.sleep(600)"


def report(kind, name, text):
    RESULTS.out(kind, name, text)
    sys.stdout.flush()


def installed_debug_file(bid):
    h = bid.hex()
    return "/usr/lib/debug/.build-id/%s/%s.debug" % (h[:2], h[2:])


def copy_with_build_id(src, dst, old, new, mode=0o755):
    """src to dst with its build-id bytes `old` replaced by `new` (same length, one place)."""
    with open(src, "rb") as f:
        data = bytearray(f.read())
    at = data.find(old)
    if at < 0 or data.find(old, at + 1) >= 0:
        raise RuntimeError("build-id of %s not found exactly once" % src)
    data[at:at + len(old)] = new
    with open(dst, "wb") as f:
        f.write(data)
    os.chmod(dst, mode)


class Target(object):
    def __init__(self, exe, delete=False):
        self.p = CHILDREN.spawn([exe, "-I", "-c", TARGET], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env=clean_env(), cwd="/")
        self.blocks = int(read_line(self.p, 30))
        self.pid = self.p.pid
        if delete:
            os.unlink(exe)

    def exe_link(self):
        return os.readlink("/proc/%d/exe" % self.pid)

    def close(self):
        CHILDREN.reap(self.p)


def run_pymemd(pymemd, pid, env, prefix=()):
    p = CHILDREN.spawn(list(prefix) + [pymemd, "--once", "--pid", str(pid)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env)
    t0 = time.monotonic()
    try:
        out, err = p.communicate(timeout=PYMEMD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RuntimeError("pymemd did not finish within %d s" % PYMEMD_TIMEOUT)
    finally:
        CHILDREN.reap(p)
    took = time.monotonic() - t0
    try:
        procs = [pr for pr in json.loads(out)["processes"] if pr.get("pid") == pid]
    except (ValueError, KeyError, TypeError):
        raise RuntimeError("pymemd printed no JSON (exit %s): %s" % (p.returncode, short(err)))
    if len(procs) != 1:
        raise RuntimeError("pymemd listed %d processes for pid %d" % (len(procs), pid))
    return procs[0], took


def pymemd_env(**extra):
    # No DEBUGINFOD_* from outside: each case says what it wants.
    env = clean_env(**extra)
    for k in list(env):
        if k.startswith("DEBUGINFOD_") and k not in extra:
            del env[k]
    return env


def expect_exact(name, target, proc, what):
    pm = proc.get("pymalloc") or {}
    got = pm.get("allocated_blocks")
    if proc.get("status") != "ok":
        report("FAIL", name, "status %s: %s" % (proc.get("status"), short(proc.get("error"))))
    elif got != target.blocks:
        report("FAIL", name, "pymalloc.allocated_blocks %s, the target's sys.getallocatedblocks() "
               "%d (error: %s)" % (json.dumps(got), target.blocks, short(proc.get("error"))))
    elif not isinstance(pm.get("arenas"), int) or pm["arenas"] < 1 or proc.get("error"):
        report("FAIL", name, "pymalloc %s, error %s" % (json.dumps(pm), json.dumps(proc.get("error"))))
    else:
        report("PASS", name, "%s: allocated_blocks %d = sys.getallocatedblocks(), arenas %d"
               % (what, got, pm["arenas"]))


def expect_null(name, proc, words, what):
    pm = proc.get("pymalloc") or {}
    err = proc.get("error") or ""
    if proc.get("status") != "ok":
        report("FAIL", name, "status %s: %s" % (proc.get("status"), short(err)))
    elif pm.get("allocated_blocks") is not None:
        report("FAIL", name, "pymalloc read (%s) although no debug file can be had" % json.dumps(pm))
    elif not all(w in err for w in words):
        report("FAIL", name, "error %s does not name %s" % (json.dumps(err), " and ".join(words)))
    else:
        report("PASS", name, "%s: pymalloc null, error: %s" % (what, short(err, 200)))


class Debuginfod(object):
    """Debian's debuginfod serving one directory on 127.0.0.1."""

    def __init__(self, exe, served, tmp):
        self.port = free_port()
        self.log = open(os.path.join(tmp, "debuginfod.log"), "wb")
        self.p = CHILDREN.spawn([exe, "-F", served, "-p", str(self.port), "-d",
                                 os.path.join(tmp, "debuginfod.sqlite")],
                                stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                env=clean_env())
        self.url = "http://127.0.0.1:%d" % self.port

    def wait_for(self, bid):
        """Until the server answers for bid (it scans the directory after starting)."""
        deadline = time.monotonic() + SERVER_TIMEOUT
        url = "%s/buildid/%s/debuginfo" % (self.url, bid.hex())
        last = None
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError("debuginfod exited with %s" % self.p.returncode)
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as e:
                last = e
            time.sleep(0.5)
        raise RuntimeError("debuginfod did not serve %s within %d s (%s)" % (url, SERVER_TIMEOUT, last))

    def close(self):
        CHILDREN.reap(self.p)
        self.log.close()


def nobody_prefix():
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return None, "setpriv (util-linux) is not installed"
    prefix = [setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
              "--inh-caps=+sys_ptrace", "--ambient-caps=+sys_ptrace", "--"]
    if subprocess.run(prefix + ["true"], timeout=10).returncode != 0:
        return None, "cannot give uid %d an ambient CAP_SYS_PTRACE here" % NOBODY
    return prefix, None


def daemon_cases(pymemd, tmp, exe_served, exe_missing, served, served_id):
    """The daemon fetches in the background: sampling goes on while a server hangs."""
    mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other = Target(SYSTEM_PYTHON)
    t = Target(exe_missing)
    d = None
    try:
        mute.bind(("127.0.0.1", 0))
        mute.listen(16)
        url = "http://127.0.0.1:%d" % mute.getsockname()[1]
        d = Pymemd(pymemd, ["--pid", str(t.pid), "--pid", str(other.pid), "--interval",
                            str(DAEMON_INTERVAL)], "pymemd (mute debuginfod)",
                   env=pymemd_env(DEBUGINFOD_URLS=url,
                                  DEBUGINFOD_CACHE_PATH=os.path.join(tmp, "daemon-mute-cache")))
        d.start()
        oldest = {t.pid: 0.0, other.pid: 0.0}
        saw_pending = saw_timeout = False
        other_exact = None
        end = time.monotonic() + 25
        while time.monotonic() < end and not saw_timeout:
            for p in d.processes():
                if p.get("pid") in oldest and isinstance(p.get("sampled_at"), (int, float)):
                    oldest[p["pid"]] = max(oldest[p["pid"]], time.time() - p["sampled_at"])
                if p.get("pid") == t.pid:
                    err = p.get("error") or ""
                    saw_pending = saw_pending or "being fetched from debuginfod" in err
                    saw_timeout = "debuginfod: no answer within" in err
                if p.get("pid") == other.pid:
                    other_exact = (p.get("pymalloc") or {}).get("allocated_blocks")
            time.sleep(0.2)
        worst = max(oldest.values())
        if worst > DAEMON_MAX_AGE:
            report("FAIL", "daemon-mute", "a sample %.1f s old while the fetch hung (at most %.1f "
                   "s allowed): the fetch held up sampling" % (worst, DAEMON_MAX_AGE))
        elif not saw_pending or not saw_timeout:
            report("FAIL", "daemon-mute", "the error never said %s" % (
                "the fetch was under way" if not saw_pending else "it timed out"))
        elif other_exact != other.blocks:
            report("FAIL", "daemon-mute", "the other target's allocated_blocks %s, its own "
                   "sys.getallocatedblocks() %d" % (other_exact, other.blocks))
        else:
            report("PASS", "daemon-mute", "%s never answers: fetch reported under way, then "
                   "timed out; oldest sample %.2f s; the other target exact" % (url, worst))
    except Fail as e:
        report("FAIL", "daemon-mute", str(e))
    finally:
        if d:
            d.stop()
        mute.close()
        t.close()
        other.close()

    dbgd = shutil.which("debuginfod")
    if not dbgd:
        report("SKIP", "daemon-served", "no debuginfod (Debian package debuginfod)")
        return
    server = Debuginfod(dbgd, served, tmp)
    t = Target(exe_served)
    d = None
    try:
        server.wait_for(served_id)
        d = Pymemd(pymemd, ["--pid", str(t.pid), "--interval", str(DAEMON_INTERVAL)],
                   "pymemd (debuginfod)",
                   env=pymemd_env(DEBUGINFOD_URLS=server.url,
                                  DEBUGINFOD_CACHE_PATH=os.path.join(tmp, "daemon-cache")))
        d.start()
        t0 = time.monotonic()
        p = d.wait_process(t.pid, timeout=30, cond=lambda p: (p.get("pymalloc") or {}).get(
            "allocated_blocks") is not None)
        expect_exact("daemon-served", t, p, "fetched in the background from %s, exact %.1f s "
                     "after start" % (server.url, time.monotonic() - t0))
    except Fail as e:
        report("FAIL", "daemon-served", str(e))
    finally:
        if d:
            d.stop()
        t.close()
        server.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pymemd", required=True)
    a = ap.parse_args()
    pymemd = os.path.abspath(a.pymemd)

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)

    why = None
    bid = build_id(SYSTEM_PYTHON) if os.path.exists(SYSTEM_PYTHON) else None
    if os.geteuid() != 0:
        why = "needs root (reads other processes, runs pymemd as nobody)"
    elif bid is None:
        why = "%s is missing or has no build-id" % SYSTEM_PYTHON
    elif not os.path.exists(installed_debug_file(bid)):
        why = ("%s is not installed (python3.11-dbg of the same version as python3.11; "
               "scripts/deps.sh installs it)" % installed_debug_file(bid))
    if why:
        report("SKIP", "(all)", why)
        print("0 passed, 0 failed, 1 skipped")
        return 77

    tmp = tempfile.mkdtemp(prefix="pymemd-debuginfo-")
    server = None
    try:
        # 1. The installed binary and its installed debug file.
        t = Target(SYSTEM_PYTHON)
        try:
            proc, _ = run_pymemd(pymemd, t.pid, pymemd_env())
            expect_exact("installed", t, proc, "%s, build-id %s" % (SYSTEM_PYTHON, bid.hex()))
        finally:
            t.close()

        # 2. A copy of it, deleted while it runs (an upgrade replaced the file).
        copy = os.path.join(tmp, "python3.11")
        shutil.copy2(SYSTEM_PYTHON, copy)
        t = Target(copy, delete=True)
        try:
            link = t.exe_link()
            if not link.endswith(" (deleted)"):
                report("FAIL", "deleted", "/proc/%d/exe is %r, not deleted" % (t.pid, link))
            else:
                proc, _ = run_pymemd(pymemd, t.pid, pymemd_env())
                expect_exact("deleted", t, proc, "/proc/PID/exe %s" % link)
        finally:
            t.close()

        # 3. The same, but pymemd cannot open the deleted file at all: nobody with
        # CAP_SYS_PTRACE, the file mode 0700 and owned by root. Only the target's memory has the
        # build-id.
        prefix, why = nobody_prefix()
        if prefix is None:
            report("SKIP", "unreadable", why)
        else:
            pub = tempfile.mkdtemp(prefix="pymemd-debuginfo-nobody-")
            try:
                os.chmod(pub, 0o755)
                exe = os.path.join(pub, "pymemd")
                shutil.copy2(pymemd, exe)
                os.chmod(exe, 0o755)
                shutil.copy2(SYSTEM_PYTHON, copy)
                os.chmod(copy, 0o700)
                t = Target(copy, delete=True)
                try:
                    r = subprocess.run(prefix + ["cat", "/proc/%d/exe" % t.pid],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       timeout=10)
                    if r.returncode == 0:
                        report("FAIL", "unreadable", "uid %d can read the deleted binary; the "
                               "case needs one it cannot" % NOBODY)
                    else:
                        proc, _ = run_pymemd(exe, t.pid, pymemd_env(), prefix=prefix)
                        expect_exact("unreadable", t, proc, "binary unreadable to pymemd (uid %d "
                                     "with CAP_SYS_PTRACE), build-id from memory" % NOBODY)
                finally:
                    t.close()
            finally:
                shutil.rmtree(pub, ignore_errors=True)

        # 4. debuginfod: a copy whose build-id no installed debug file has.
        served_id = bid[:-2] + bytes([bid[-2] ^ 0xff, bid[-1] ^ 0xff])
        missing_id = bid[:-2] + bytes([bid[-2] ^ 0xff, bid[-1] ^ 0xfe])
        for other in (served_id, missing_id):
            if os.path.exists(installed_debug_file(other)):
                raise RuntimeError("%s exists; cannot make a build-id without a debug file"
                                   % installed_debug_file(other))
        served = os.path.join(tmp, "served")
        os.mkdir(served)
        copy_with_build_id(installed_debug_file(bid), os.path.join(served, "python3.11.debug"),
                           bid, served_id, mode=0o644)
        exe_served = os.path.join(tmp, "python3.11-served")
        exe_missing = os.path.join(tmp, "python3.11-missing")
        copy_with_build_id(SYSTEM_PYTHON, exe_served, bid, served_id)
        copy_with_build_id(SYSTEM_PYTHON, exe_missing, bid, missing_id)
        cache = os.path.join(tmp, "debuginfod-cache")

        # Without DEBUGINFOD_URLS the reason says so.
        t = Target(exe_served)
        try:
            proc, _ = run_pymemd(pymemd, t.pid, pymemd_env())
            expect_null("no-urls", proc, ["DEBUGINFOD_URLS is not set", served_id.hex()[2:]],
                        "build-id %s" % served_id.hex())
        finally:
            t.close()

        dbgd = shutil.which("debuginfod")
        if not dbgd:
            for name in ("debuginfod", "debuginfod-cached", "debuginfod-miss"):
                report("SKIP", name, "no debuginfod (Debian package debuginfod)")
        else:
            server = Debuginfod(dbgd, served, tmp)
            server.wait_for(served_id)
            env = pymemd_env(DEBUGINFOD_URLS=server.url, DEBUGINFOD_CACHE_PATH=cache)
            t = Target(exe_served)
            try:
                proc, took = run_pymemd(pymemd, t.pid, env)
                expect_exact("debuginfod", t, proc, "debug file from %s in %.1f s" % (server.url, took))
            finally:
                t.close()
            t = Target(exe_missing)
            try:
                proc, _ = run_pymemd(pymemd, t.pid, env)
                expect_null("debuginfod-miss", proc,
                            ["debuginfod servers do not have it", missing_id.hex()[2:]],
                            "build-id %s not served" % missing_id.hex())
            finally:
                t.close()
            server.close()
            server = None
            # The server is gone: libdebuginfod's cache still has the file.
            t = Target(exe_served)
            try:
                proc, _ = run_pymemd(pymemd, t.pid, env)
                expect_exact("debuginfod-cached", t, proc, "server stopped, from %s" % cache)
            finally:
                t.close()

        # A server that accepts and never answers: pymemd gives up after its own bound.
        mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            mute.bind(("127.0.0.1", 0))
            mute.listen(16)
            url = "http://127.0.0.1:%d" % mute.getsockname()[1]
            t = Target(exe_missing)
            try:
                proc, took = run_pymemd(pymemd, t.pid, pymemd_env(
                    DEBUGINFOD_URLS=url, DEBUGINFOD_CACHE_PATH=os.path.join(tmp, "mute-cache")))
                expect_null("debuginfod-mute", proc, ["debuginfod: no answer within"],
                            "%s never answers; pymemd took %.1f s" % (url, took))
            finally:
                t.close()
        finally:
            mute.close()
        daemon_cases(pymemd, tmp, exe_served, exe_missing, served, served_id)
    except RuntimeError as e:
        report("FAIL", "setup", str(e))
    except KeyboardInterrupt:
        report("FAIL", "interrupted", "killed")
    finally:
        if server is not None:
            server.close()
        CHILDREN.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    print(RESULTS.summary())
    return 1 if RESULTS.failed else 0


if __name__ == "__main__":
    sys.exit(main())
