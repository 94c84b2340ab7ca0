"""What the test drivers share: the children they start, the interpreters they find, small
text and network helpers, and the one test harness (Results, Fail/Skip, Check and case, the
Target running tests/integration/target.py, the Pymemd daemon with its one readiness wait,
run_driver). Standard library only; runs on the system python3.

A driver finds it with:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
"""
import gzip
import http.client
import http.server
import json
import os
import random
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback


class Stopping(Exception):
    """Raised in worker threads once the run is being torn down."""


class Children(object):
    """Every process a driver starts is registered here, in its own session (so its whole
    process group can be killed), and reaped on every path, including Ctrl-C and SIGTERM
    (meson's timeout)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.procs = set()
        self.stopping = False

    def spawn(self, argv, **kw):
        with self.lock:
            if self.stopping:
                raise Stopping()
            p = subprocess.Popen(argv, start_new_session=True, **kw)
            self.procs.add(p)
            return p

    def reap(self, p):
        """Kill p's process group and wait for p. Safe to call twice."""
        with self.lock:
            if p.returncode is None:
                # p is not reaped yet, so its pid (= its pgid) cannot have been reused: killing
                # the group is safe. SIGCONT first, so that nothing stays stopped.
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    try:
                        os.killpg(p.pid, sig)
                    except OSError:
                        pass
            self.procs.discard(p)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass

    def stop_all(self):
        with self.lock:
            self.stopping = True
            procs = list(self.procs)
        for p in procs:
            self.reap(p)


CHILDREN = Children()


def clean_env(**extra):
    """The environment for children: no PYTHON* variables from outside (PYTHONMALLOC=malloc
    would switch pymalloc off, PYTHONPATH could shadow modules), no proxies (pymemd is on
    loopback), no NO_COLOR or PYMEMD_URL unless given; extra sets (or, with None, removes)."""
    env = dict((k, v) for k, v in os.environ.items()
               if not k.startswith("PYTHON") and k.lower() not in (
                   "http_proxy", "https_proxy", "all_proxy", "no_proxy")
               and k not in ("NO_COLOR", "PYMEMD_URL"))
    env["LC_ALL"] = "C.UTF-8"
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def short(text, n=300):
    """text on one line, cut to n characters."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text if isinstance(text, str) else repr(text)
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "..."


def captured(f):
    """All a child wrote to the temporary file f, as text; "" once f is closed."""
    try:
        f.seek(0)
        return f.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def version_key(name):
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name)]


def pyenv_root():
    root = os.environ.get("PYENV_ROOT")
    if root:
        return root
    exe = shutil.which("pyenv")
    if exe:
        try:
            r = subprocess.run([exe, "root"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=10,
                               universal_newlines=True)
            if r.returncode == 0 and r.stdout.strip():
                return r.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return os.path.expanduser("~/.pyenv")


def pyenv_python(minor=None):
    """(label, path) of the newest pyenv 3.<minor>.x (any 3.x without minor), or (None, None)."""
    vdir = os.path.join(pyenv_root(), "versions")
    if not os.path.isdir(vdir):
        return None, None
    pattern = r"^3\.%s\.\d+$" % (minor if minor is not None else r"\d+")
    names = [n for n in os.listdir(vdir) if re.match(pattern, n)]
    for name in sorted(names, key=version_key, reverse=True):
        m = name.rsplit(".", 1)[0]
        for c in ("python" + m, "python3", "python"):
            p = os.path.join(vdir, name, "bin", c)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return "pyenv-" + name, p
    return None, None


def read_line(p, timeout, error=RuntimeError, children=CHILDREN):
    """The next line of p's stdout within timeout seconds, or raise error. What p printed
    after that line is kept for the next call."""
    fd = p.stdout.fileno()
    buf = getattr(p, "_pending", b"")
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise error("no JSON line from the target within %.0f s" % timeout)
        r, _, _ = select.select([fd], [], [], min(left, 0.5))
        if children is not None and children.stopping:
            raise Stopping()
        if not r:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            raise error("target exited before printing its JSON line")
        buf += chunk
    line, p._pending = buf.split(b"\n", 1)
    return line.decode("utf-8", "replace")


def free_port():
    """A loopback TCP port nobody listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


# --------------------------------------------------------------------------
# The harness every driver shares: results, checks, targets, pymemd daemons.

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(os.path.dirname(HERE), "integration", "target.py")
DISCOVERY_WAIT = 15.0   # discovery_interval defaults to 5 s: be generous
TARGET_TIMEOUT = 30.0   # seconds for a target to print its ground truth
STOP_LIMIT = 2.0        # SIGTERM/SIGINT -> exit 0 within this many seconds


PRINT_LOCK = threading.Lock()   # one line at a time, whichever thread prints


class Results(object):
    """The PASS/FAIL/SKIP counts of a driver, printed as they come; summary() is its last
    line."""

    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.lock = threading.Lock()
        self.failures = []
        self.by_group = {}

    def out(self, kind, name, text="", group=None, line=None):
        """Counts one check and prints it: "KIND name: text" (or line). With group, the check
        is also kept in by_group[group] as (name, kind, text), for a driver's own table."""
        with self.lock, PRINT_LOCK:
            if kind == "PASS":
                self.passed += 1
            elif kind == "FAIL":
                self.failed += 1
                self.failures.append(name)
            else:
                self.skipped += 1
            if group is not None:
                self.by_group.setdefault(group, []).append((name, kind, text))
            if line is None:
                line = "%s %s" % (kind, name)
                if text:
                    line += (": " if kind != "PASS" else " ") + text
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def summary(self):
        return "%d passed, %d failed, %d skipped" % (self.passed, self.failed, self.skipped)


RESULTS = Results()


def say(text):
    with PRINT_LOCK:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


class Fail(Exception):
    pass


class Skip(Exception):
    pass


class Check(object):
    """Collects differences; a case passes when it collected none."""

    def __init__(self):
        self.diffs = []
        self.notes = []

    def eq(self, what, expected, got):
        if type(expected) is not type(got) and not (
                isinstance(expected, (int, float)) and isinstance(got, (int, float))
                and not isinstance(expected, bool) and not isinstance(got, bool)):
            self.diffs.append("%s: expected %s, got %s" % (what, shown(expected), shown(got)))
        elif expected != got:
            self.diffs.append("%s: expected %s, got %s" % (what, shown(expected), shown(got)))
        return expected == got

    def ok(self, cond, text):
        if not cond:
            self.diffs.append(text)
        return bool(cond)

    def note(self, text):
        self.notes.append(text)


def shown(v):
    if isinstance(v, (bytes, str)):
        return json.dumps(short(v, 200) if isinstance(v, bytes) else v)[:260]
    try:
        return short(json.dumps(v), 200)
    except (TypeError, ValueError):
        return short(repr(v), 200)


def case(name, fn, *args):
    c = Check()
    try:
        # A case marked needs_read is skipped once the driver's context says pymemd may not
        # read the targets (ctx.denied).
        ctx = args[0] if args else None
        if getattr(ctx, "denied", None) and getattr(fn, "needs_read", False):
            raise Skip("pymemd may not read the targets: %s" % short(ctx.denied, 120))
        fn(c, *args)
    except Skip as e:
        RESULTS.out("SKIP", name, str(e))
        return None
    except Fail as e:
        c.diffs.append(str(e))
    except KeyboardInterrupt:
        raise
    except Exception as e:
        tb = traceback.extract_tb(sys.exc_info()[2])
        where = "%s:%d" % (os.path.basename(tb[-1].filename), tb[-1].lineno) if tb else "?"
        c.diffs.append("%s: %s (at %s)" % (type(e).__name__, e, where))
    if c.diffs:
        RESULTS.out("FAIL", name, "; ".join(c.diffs))
        return False
    RESULTS.out("PASS", name, "(%s)" % "; ".join(c.notes) if c.notes else "")
    return True



def debian_interpreters():
    """Every interpreter of the manifest written by tests/integration/debian-pythons.sh, as
    (label, argv, version, why) with argv None and why the reason when it cannot run; or
    ([], reason) as (None, reason) when there is no manifest."""
    cache = os.environ.get("PYMEMD_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "pymemd")
    manifest = os.path.join(cache, "debian", "interpreters.tsv")
    if not os.path.exists(manifest):
        return None, "manifest %s is missing (tests/integration/debian-pythons.sh makes it)" % (
            manifest)
    out = []
    with open(manifest, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3 or line.lstrip().startswith("#"):
                continue
            label, version, rest = fields[0], fields[1], "\t".join(fields[2:])
            if not label.startswith("debian"):
                label = "debian-" + label
            if version == "skip":
                out.append((label, None, None, "debian-pythons.sh skipped it: %s" % rest))
                continue
            cmd = [rest] if os.path.exists(rest) else shlex.split(rest)
            if not cmd or not os.path.exists(cmd[0]):
                out.append((label, None, version, "listed in %s, but %r does not exist" % (
                    manifest, rest)))
                continue
            out.append((label, cmd, version, None))
    if not out:
        return None, "manifest %s lists no interpreter" % manifest
    return out, None


def debian_python():
    """(label, argv) of the newest usable Debian interpreter of the manifest
    written by tests/integration/debian-pythons.sh, or (None, reason)."""
    every, why = debian_interpreters()
    if every is None:
        return None, why
    best = None
    for label, cmd, version, _ in every:
        if cmd and (best is None or version_key(version) > version_key(best[2])):
            best = (label, cmd, version)
    if best is None:
        return None, "the manifest lists no usable interpreter"
    return best[0], best[1]


class Target(object):
    """A running target (tests/integration/target.py, possibly through a wrapper, or any
    script) in its own session, its stderr kept. Its first line is its ground truth, one JSON
    object with its "pid" (self.truth); with ready, it is that word instead (self.truth None,
    self.pid the child's). error is the exception raised when it prints neither in time."""

    def __init__(self, label, argv, tag=None, pass_fds=(), env=None, ready=None,
                 error=RuntimeError, timeout=None):
        self.label = label
        self.tag = tag
        self.error = error
        self.timeout = TARGET_TIMEOUT if timeout is None else timeout
        self.errf = tempfile.TemporaryFile()
        self.p = CHILDREN.spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=self.errf, env=env or clean_env(), cwd="/",
                                pass_fds=pass_fds)
        self.truth = None
        self.pid = None
        try:
            if ready is None:
                self.truth = self.next_truth()
                try:
                    self.pid = int(self.truth["pid"])
                except (KeyError, TypeError, ValueError) as e:
                    raise self.error("%s printed no usable JSON (%r): %s" % (
                        self.label, e, short(json.dumps(self.truth))))
            else:
                line = self.next_line()
                if line.strip() != ready:
                    raise self.error("%s printed %s, not %s; stderr: %s" % (
                        self.label, short(line), ready, short(self.stderr(), 400)))
                self.pid = self.p.pid
        except BaseException:
            self.close()
            raise

    def next_line(self):
        try:
            return read_line(self.p, self.timeout)
        except RuntimeError as e:
            raise self.error("%s %s; stderr: %s" % (self.label, e, short(self.stderr(), 400)))

    def next_truth(self):
        line = self.next_line()
        try:
            return json.loads(line)
        except ValueError:
            raise self.error("%s printed no JSON: %s" % (self.label, short(line)))

    def stderr(self):
        return captured(self.errf)

    def alive(self):
        return self.p.poll() is None

    def close(self):
        CHILDREN.reap(self.p)
        try:
            self.errf.close()
        except OSError:
            pass


def target_argv(cmd, tag, extra=()):
    return list(cmd) + [TARGET, "--tag", tag] + list(extra)


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
        return chr(data[data.rindex(b")") + 2])
    except (OSError, ValueError, IndexError):
        return None


# read(2) and futex(2) by machine: /proc/PID/syscall names the system call a blocked thread is in.
READ_SYSCALL = {"x86_64": 0, "aarch64": 63}.get(os.uname().machine)
FUTEX_SYSCALL = {"x86_64": 202, "aarch64": 98}.get(os.uname().machine)


def wait_reading(pid, timeout=30, parked=False):
    """Waits until pid's main thread is blocked in read(0, ...) and, with parked, every other
    thread in futex(2) (a lock or condition wait): the process does nothing until its stdin is
    written. A line it printed is not enough: it still frees what it used to print it and sets
    up the next read afterwards, and its other threads may still be on their way to their
    locks. RuntimeError after timeout."""
    want = "%d 0x0 " % READ_SYSCALL if READ_SYSCALL is not None else None
    futex = "%d " % FUTEX_SYSCALL if FUTEX_SYSCALL is not None else None
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            with open("/proc/%d/syscall" % pid) as f:
                last = f.read()
            busy = []
            if parked and futex is not None:
                for tid in os.listdir("/proc/%d/task" % pid):
                    if int(tid) == pid:
                        continue
                    try:
                        with open("/proc/%d/task/%s/syscall" % (pid, tid)) as f:
                            if not f.read().startswith(futex):
                                busy.append(tid)
                    except FileNotFoundError:
                        pass                # a thread that has just exited
        except OSError as e:
            raise RuntimeError("target %d: /proc/PID/syscall: %s" % (pid, e))
        if (want is None or last.startswith(want)) and not busy:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("target %d not blocked reading stdin after %.0f s (syscall %s; "
                               "threads not in futex: %s)" % (pid, timeout, last.strip(), busy))
        time.sleep(0.01)



class Resp(object):
    def __init__(self, status, reason, headers, body, version=11):
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value)
        self.raw = body                 # as received (maybe gzip)
        self.version = version

    def h(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(vals) if vals else None

    @property
    def body(self):
        if (self.h("Content-Encoding") or "").strip().lower() == "gzip":
            return gzip.decompress(self.raw)
        return self.raw

    def text(self):
        return self.body.decode("utf-8")      # strict: must be UTF-8

    def json(self, strict=True):
        if strict:
            return json.loads(self.text())
        return json.loads(self.body.decode("utf-8", "replace"))

    def describe(self):
        return "%d %s, Content-Type %s, body %s" % (
            self.status, self.reason, shown(self.h("Content-Type")), shown(short(self.raw, 160)))


def request(port, method, path, headers=None, body=None, timeout=10.0, conn=None):
    """One request; headers is a list of (name, value) or a dict. No
    Accept-Encoding and no Accept unless given. Returns a Resp."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        for k, v in items:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, r.reason, r.getheaders(), data, r.version)
    finally:
        if own:
            conn.close()


def raw_request(port, data, timeout=5.0):
    """Send raw bytes, read until the server closes or timeout; returns the
    (status or None, raw bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            m = re.match(rb"HTTP/1\.[01] \d{3}[^\r\n]*\r\n(.*?)\r\n\r\n", buf, re.S)
            if m:
                cl = re.search(rb"(?im)^content-length:\s*(\d+)", m.group(1))
                if cl and len(buf) >= m.end() + int(cl.group(1)):
                    break
        m = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
        return (int(m.group(1)) if m else None), buf
    finally:
        s.close()



NOT_AVAILABLE = "not available in this build"


class NotAvailable(Exception):
    pass


class Pymemd(object):
    """A pymemd daemon on loopback. With conf, its configuration is that text, in a temporary
    file given with --config (write_conf replaces it, for a SIGHUP); with env, the environment
    of the daemon (inherited otherwise)."""

    def __init__(self, exe, args, name, conf=None, env=None):
        self.exe = exe
        self.name = name
        self.port = None
        self.p = None
        self.errf = tempfile.TemporaryFile()
        self.args = list(args)
        self.env = env
        self.conf = None
        if conf is not None:
            with tempfile.NamedTemporaryFile("w", prefix="pymemd-", suffix=".conf",
                                             delete=False) as f:
                f.write(conf)
            self.conf = f.name
            self.args = ["--config", self.conf] + self.args
        self.started_at = None

    def write_conf(self, text):
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self, port=None, ready_timeout=10.0, wait=True):
        """Start on a free port (retried if the port was taken meanwhile) and wait until it is
        ready; without wait, return as soon as it is started (for a driver that watches the
        start itself)."""
        for attempt in range(5):
            self.port = port or free_port()
            argv = [self.exe, "--listen", "127.0.0.1:%d" % self.port] + list(self.args)
            self.errf.seek(0)
            self.errf.truncate()
            self.started_at = time.time()
            self.p = CHILDREN.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=self.errf, env=self.env)
            self.argv = argv
            if not wait:
                return self
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline:
                if self.p.poll() is not None:
                    err = self.stderr()
                    if NOT_AVAILABLE in err:
                        raise NotAvailable(short(err, 300))
                    if port is None and re.search(r"in use|taken|EADDRINUSE", err, re.I) \
                            and attempt < 4:
                        break      # someone took the port meanwhile: another one
                    raise Fail("%s exited with status %s before serving: %s" % (
                        self.name, self.p.returncode, short(err, 400) or "(no stderr)"))
                if self.ready():
                    return self
                time.sleep(0.05)
            else:
                raise Fail("%s did not answer GET /healthz and GET /metrics with 200 within "
                           "%.0f s (stderr: %s)" % (self.name, ready_timeout,
                                                    short(self.stderr(), 300)))
        raise Fail("%s: could not find a free port" % self.name)

    def ready(self):
        """The one readiness test of every driver: /healthz and /metrics both answer 200.
        /healthz alone has answered before the first snapshot could be served (a scrape then
        got 503 "the first sample is not taken yet"); after this, no request may get a 503."""
        try:
            return all(request(self.port, "GET", path, timeout=2).status == 200
                       for path in ("/healthz", "/metrics"))
        except (OSError, http.client.HTTPException):
            return False

    def stderr(self):
        return captured(self.errf)

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def need(self):
        if not self.alive():
            raise Fail("%s is not running (exit status %s; stderr: %s)" % (
                self.name, None if self.p is None else self.p.returncode,
                short(self.stderr()[-600:], 600) or "(empty)"))

    def get(self, path, headers=None, **kw):
        self.need()
        try:
            return request(self.port, "GET", path, headers, **kw)
        except (OSError, http.client.HTTPException) as e:
            raise Fail("GET %s: %s: %s%s" % (path, type(e).__name__, e,
                                            "" if self.alive() else
                                            "; pymemd died: exit %s, stderr: %s" % (
                                                self.p.returncode,
                                                short(self.stderr()[-400:], 400))))

    def req(self, method, path, headers=None, body=None, **kw):
        self.need()
        try:
            return request(self.port, method, path, headers, body=body, **kw)
        except (OSError, http.client.HTTPException) as e:
            raise Fail("%s %s: %s: %s" % (method, path, type(e).__name__, e))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def json(self, path, **kw):
        """The JSON of GET path, which must answer 200 (Fail otherwise)."""
        r = self.get(path, {"Accept": "application/json"}, **kw)
        if r.status != 200:
            raise Fail("GET %s: %s" % (path, r.describe()))
        return r.json(strict=False)

    def doc(self):
        r = self.get("/metrics?format=json")
        if r.status != 200:
            raise Fail("GET /metrics?format=json: %s" % r.describe())
        return r.json(strict=False)

    def processes(self):
        r = self.get("/api/v1/processes")
        if r.status != 200:
            raise Fail("GET /api/v1/processes: %s" % r.describe())
        d = r.json(strict=False)     # strict UTF-8 is checked by the cases themselves
        if not isinstance(d, dict) or not isinstance(d.get("processes"), list):
            raise Fail("GET /api/v1/processes: no \"processes\" list: %s" % short(r.raw, 200))
        return d["processes"]

    def status_json(self, path, timeout=60):
        """(status, document) of GET path, whatever the status; a body that is not JSON comes
        as {"error": {"message": the body}}."""
        r = self.get(path, timeout=timeout)
        try:
            return r.status, r.json()
        except ValueError:
            return r.status, {"error": {"message": short(r.raw)}}

    def process(self, pid, missing_ok=False):
        """The PROCESS of GET /api/v1/processes/PID; Fail unless 200 (None with missing_ok)."""
        st, doc = self.status_json("/api/v1/processes/%d" % pid)
        if st == 200:
            return doc
        if missing_ok:
            return None
        raise Fail("GET /api/v1/processes/%d: %d %s" % (pid, st, short(json.dumps(doc))))

    def wait_process(self, pid, timeout=20.0, cond=None):
        """The PROCESS of pid once it is sampled "ok" (and cond(PROCESS) holds, when given);
        Fail when not within timeout."""
        end = time.monotonic() + timeout
        p = None
        while time.monotonic() < end:
            p = self.process(pid, missing_ok=True)
            if p and p.get("status") == "ok" and (cond is None or cond(p)):
                return p
            time.sleep(0.05)
        raise Fail("pid %d not sampled ok within %.0f s: %s" % (
            pid, timeout, short(json.dumps(p), 200)))

    def stop(self, sig=signal.SIGTERM, limit=STOP_LIMIT):
        """Send sig; return (exit status or None, seconds). Kills it if it
        did not exit within 10 s."""
        if self.p is None:
            return None, 0.0
        t0 = time.monotonic()
        try:
            self.p.send_signal(sig)
        except OSError:
            pass
        try:
            self.p.wait(timeout=max(limit, 10.0))
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - t0
        rc = self.p.returncode
        CHILDREN.reap(self.p)
        return rc, took

    def sanitizer_report(self):
        """The start of an AddressSanitizer, LeakSanitizer or UBSan report in its stderr, or
        None."""
        text = self.stderr()
        m = SANITIZER_REPORT.search(text)
        return short(text[m.start():], 600) if m else None

    def shutdown(self):
        """SIGTERM, wait for the exit and close: a sanitizer build reports leaks at a clean
        exit, and any sanitizer report is a failure, "pymemd's sanitizer report"."""
        self.stop()
        report = self.sanitizer_report() if self.p is not None else None
        if report:
            RESULTS.out("FAIL", "pymemd's sanitizer report", report)
        self.close()

    def close(self):
        if self.p is not None:
            CHILDREN.reap(self.p)
        try:
            self.errf.close()
        except OSError:
            pass
        if self.conf:
            try:
                os.unlink(self.conf)
            except OSError:
                pass
            self.conf = None


def start_daemon(exe, args, conf, env=None, ready_timeout=10.0, wait=True):
    """A pymemd logging warnings and errors only, with the configuration text conf and env
    (clean_env() when None), started and ready (only started, without wait); closed again (its
    configuration file gone) when it does not start."""
    d = Pymemd(exe, ["--log-level", "warn"] + list(args), "pymemd", conf=conf,
               env=clean_env() if env is None else env)
    try:
        return d.start(ready_timeout=ready_timeout, wait=wait)
    except BaseException:
        d.close()
        raise


SANITIZER_REPORT = re.compile(r"(ERROR: (Address|Leak)Sanitizer|runtime error:).*")


class NotifySocket(object):
    """A notify socket as systemd offers one (give its path as NOTIFY_SOCKET): every datagram
    is kept with its arrival time (monotonic)."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []   # (monotonic time, text)
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))

    def wait_for(self, word, timeout):
        """The arrival time of the first message with the line word, waiting up to timeout
        seconds; None if none came."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for t, m in self.messages:
                    if word in m.split("\n"):
                        return t
            time.sleep(0.002)
        return None

    def times(self, word):
        with self.lock:
            return [t for t, m in self.messages if word in m.split("\n")]

    def close(self):
        """Stops listening and removes the socket (its directory can take another)."""
        self.stop = True
        self.thread.join()
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def sampled_after(proc, after):
    """Whether PROCESS proc was sampled after the wall-clock time after (None: any time)."""
    sa = (proc or {}).get("sampled_at")
    return after is None or (isinstance(sa, (int, float)) and sa > after)


def wait_sampled(inst, pids, timeout=DISCOVERY_WAIT, want_ok=True, after=None):
    """Poll /api/v1/processes until every pid is there with status ok (or
    any status when not want_ok), in a sample taken after the wall-clock time after when
    given: a target's truth holds from when it printed it, and a sample from before, while it
    was starting, is "ok" with the values of that moment. Returns {pid: PROCESS} of the last
    poll."""
    deadline = time.monotonic() + timeout
    last = {}
    while True:
        # Pymemd.start waited for the first snapshot: any error here is a failure.
        last = dict((p.get("pid"), p) for p in inst.processes() if isinstance(p, dict))
        if all(pid in last and (not want_ok or last[pid].get("status") == "ok") and
               sampled_after(last[pid], after) for pid in pids):
            return last
        if time.monotonic() > deadline:
            return last
        time.sleep(0.1)


def wait_ok(inst, pids, timeout=DISCOVERY_WAIT, after=None):
    """{pid: PROCESS} once every pid is sampled "ok" (after the time after, when given); Fail
    when not within timeout."""
    last = wait_sampled(inst, pids, timeout, after=after)
    if not all((last.get(pid) or {}).get("status") == "ok" and sampled_after(last.get(pid), after)
               for pid in pids):
        raise Fail("%s: targets %s not sampled ok within %.0f s: %s" % (
            inst.name, pids, timeout, short(json.dumps(last), 300)))
    return last


def make_tag(prefix="pymemdhttp"):
    """A tag and a regex matching it but not itself (so that neither pymemd's
    own command line nor anything else holding the regex matches)."""
    tag = "%s%012x" % (prefix, random.getrandbits(48))
    regex = "%s[%s]%s" % (tag[:5], tag[5], tag[6:])
    return tag, regex


def run_driver(title, run, *args):
    """Runs run(*args) with SIGTERM/SIGINT turned into a failure of the run, kills every
    child on every path, prints the failures and the closing "N passed, M failed, K skipped";
    returns the exit status (1 if anything failed)."""
    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    t0 = time.monotonic()
    say(title)
    try:
        run(*args)
    except KeyboardInterrupt:
        say("interrupted: killing all children")
        RESULTS.out("FAIL", "run", "interrupted")
    finally:
        CHILDREN.stop_all()
    say("(%.1f s)" % (time.monotonic() - t0))
    if RESULTS.failures:
        say("failed: %s" % ", ".join(RESULTS.failures))
    say(RESULTS.summary())
    return 1 if RESULTS.failed else 0


def build_id(path):
    """The NT_GNU_BUILD_ID of an ELF file (bytes), from its program headers' PT_NOTE segments,
    or None."""
    with open(path, "rb") as f:
        data = f.read(1 << 16)
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz, _, p_align = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type != 4:   # PT_NOTE
            continue
        a = 8 if p_align == 8 else 4
        pos, end = p_offset, p_offset + p_filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            name = data[pos + 12:pos + 12 + namesz]
            desc_at = (pos + 12 + namesz + a - 1) & ~(a - 1)
            if ntype == 3 and name == b"GNU\0":
                return data[desc_at:desc_at + descsz]
            pos = (desc_at + descsz + a - 1) & ~(a - 1)
    return None


def err_json(code, msg):
    """pymemd's body of an error answer."""
    return json.dumps({"error": {"code": code, "message": msg}}).encode()


class StandIn(object):
    """A stand-in pymemd whose answers a test chooses: http.server in a thread on loopback
    (url), every GET answered with self.answer(path, query included) -> (status, content type,
    body), or left unanswered when that returns None. Subclasses provide answer()."""

    def __init__(self):
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                r = standin.answer(self.path)
                if r is None:
                    return
                st, ct, body = r
                self.send_response(st)
                self.send_header("Content-Type", ct)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path):
        raise NotImplementedError

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def spawn_at(pid, argv, tries=50, **kw):
    """Starts argv (CHILDREN.spawn with kw) as process `pid`, through
    /proc/sys/kernel/ns_last_pid: its Popen, whose .tries says how many starts it took; None
    when other processes kept taking the pid first."""
    for n in range(1, tries + 1):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        p = CHILDREN.spawn(argv, **kw)
        if p.pid == pid:
            p.tries = n
            return p
        CHILDREN.reap(p)
    return None
