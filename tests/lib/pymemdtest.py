"""What the test drivers share: the children they start, the interpreters they find, small
text and network helpers. Standard library only; runs on the system python3.

A driver finds it with:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
"""
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time


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
