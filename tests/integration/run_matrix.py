#!/usr/bin/python3
"""Integration matrix for pymemd: every CPython on the machine, every scenario.

For each interpreter found (pyenv versions, the system /usr/bin/python3, the
Debian interpreters listed in the manifest written by debian-pythons.sh) and
each scenario of target.py, start the target, read the ground truth it prints
about itself, run `pymemd --once --pid PID` and compare the PROCESS object
field by field (DESIGN.md section 2 and 4).  Then a few one-off cases: a PID
that is gone, a process that is not Python, several targets in one call,
--match, and a target pymemd is not allowed to read.

    /usr/bin/python3 run_matrix.py --pymemd build/pymemd [--only LABEL]...
                                   [--jobs 2] [--keep-dir DIR] [--no-debian-fetch]

debian-pythons.sh (next to this file) is run first unless --no-debian-fetch;
it is idempotent and offline once its cache is complete.  --keep-dir keeps,
per case, the target's ground truth (<label>.<scenario>.<pid>.truth.json) and
pymemd's stdout/stderr, for looking into a failure.

Standard library only (Python 3.9+), no pytest.  Prints one line per
(interpreter, scenario): PASS, FAIL: <what differed> or SKIP: <reason>, then a
summary table of every interpreter (label, exact version, build kind with the
module that holds the interpreter, passed/FAILED n/m or skipped, and why), then
exactly `N passed, M failed, K skipped`.  Debian labels end in their build kind
(debug, nopie, embedded; none for release), see debian-pythons.sh.

Exit status: 0 when nothing failed and at least one interpreter ran; 1 when
something failed; 77 (meson's "skipped") when nothing failed but no
interpreter could run (e.g. no permission to read other processes); 2 on a
usage error.

Accepted outcomes that are not plain equality, on purpose:
  * 3.6 and 3.7: pymemd may answer status "unsupported" with an error that
    names the version; otherwise the values must be exact like 3.8+.
  * generation 0 count: |pymemd - target| <= 20 (the target allocates a
    little while printing); pymalloc.allocated_blocks: pymemd - target in
    [0, 50] (the target keeps what it allocates after printing alive).
  * pymalloc fields null only for a stripped, static 3.8-3.11 (Debian's
    /usr/bin/python3.11), whose obmalloc counters are static symbols that
    are gone; the reason must be in `error` (or a *reason/error field of
    `pymalloc`).  Reported as "n/a (reason)", not a failure.
  * pymalloc.allocated_bytes: null on every default build (pymalloc keeps
    no size for what it hands to malloc); on free-threaded builds at least
    8 bytes a block (no ground truth here: test_census_ft.py checks it
    differentially, to the byte).
  * memory.rss_bytes within 10% of VmRSS read by this driver just before
    and just after pymemd ran.
  * a PID that does not exist: a PROCESS with status "gone", or, if pymemd
    leaves it out of the document, a non-zero exit with a message on stderr.
"""

import argparse
import concurrent.futures
import fnmatch
import json
import os
import random
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "target.py")
FT_TARGET = os.path.join(HERE, "ft_target.py")
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import pymemdtest  # noqa: E402
from pymemdtest import (CHILDREN, RESULTS, Stopping, clean_env, pyenv_root, say,  # noqa: E402
                        captured, read_line, short,
                        version_key)

SCENARIOS = [
    ("default", []),
    ("threads", ["--threads", "3"]),
    ("freeze", ["--freeze"]),
    ("disable", ["--disable"]),
    ("garbage", ["--garbage", "5"]),
]

TARGET_TIMEOUT = 30.0   # seconds to wait for the target's JSON line
PYMEMD_TIMEOUT = 30.0   # seconds for one `pymemd --once`
GEN0_TOLERANCE = 20
BLOCKS_SLACK = 50
RSS_TOLERANCE = 0.10
DURATION_RTOL = 1e-9
PTRACE_REASON = "needs CAP_SYS_PTRACE (or same uid with ptrace_scope 0)"
NOBODY = 65534


# --------------------------------------------------------------------------
# Interpreters

class Interp(object):
    def __init__(self, label, cmd, source, version=None, skip=None, path=None, kind="release"):
        self.label = label
        self.cmd = cmd            # argv prefix that runs a script
        self.source = source      # pyenv | system | debian
        self.version = version
        self.hexversion = None
        self.skip = skip          # reason, or None
        self.path = path
        self.kind = kind          # release | debug | nopie | embedded (DEBIAN_KINDS)
        self.notes = []
        self.free_threaded = False   # a free-threaded build (3.13t): see probe_free_threaded


# Build kinds of debian-pythons.sh, the last part of a label (none: release).
DEBIAN_KINDS = ("debug", "nopie", "embedded")


def debian_kind(label):
    last = label.rsplit("-", 1)[-1]
    return last if last in DEBIAN_KINDS else "release"


PROBE = ("import platform, sys; print(platform.python_implementation()); "
         "print(platform.python_version()); print(sys.hexversion)")


def probe(interp):
    """Fill interp.version/hexversion or set interp.skip."""
    try:
        r = subprocess.run(interp.cmd + ["-c", PROBE], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=clean_env(), timeout=30,
                           universal_newlines=True)
    except (OSError, subprocess.TimeoutExpired) as e:
        interp.skip = "cannot run %s: %s" % (" ".join(interp.cmd), e)
        return
    lines = r.stdout.split()
    if r.returncode != 0 or len(lines) != 3:
        interp.skip = "probe of %s failed (exit %d): %s" % (
            " ".join(interp.cmd), r.returncode, short(r.stderr or r.stdout, 200))
        return
    impl, version, hexversion = lines
    interp.version = version
    interp.hexversion = int(hexversion)
    if impl != "CPython" or not version.startswith("3."):
        interp.skip = "not CPython 3 (%s %s)" % (impl, version)
    elif (interp.hexversion >> 16) < 0x0306:
        interp.skip = "CPython %s is older than 3.6" % version


def pyenv_interps():
    root = pyenv_root()
    vdir = os.path.join(root, "versions")
    out = []
    if not os.path.isdir(vdir):
        return out, "pyenv: no %s (PYENV_ROOT, `pyenv root`, ~/.pyenv)" % vdir
    for name in sorted(os.listdir(vdir), key=version_key):
        bindir = os.path.join(vdir, name, "bin")
        exe = None
        m = re.match(r"^(\d+)\.(\d+)(?:\.\d+)?(?:[a-z]+\d*)?(t?)$", name)
        cands = []
        if m:
            cands.append("python%s.%s%s" % (m.group(1), m.group(2), m.group(3)))
        if os.path.isdir(bindir):
            cands += sorted(f for f in os.listdir(bindir)
                            if re.match(r"^python\d+\.\d+t?$", f))
        cands += ["python3", "python"]
        for c in cands:
            p = os.path.join(bindir, c)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                exe = p
                break
        it = Interp("pyenv-" + name, [exe] if exe else [], "pyenv", path=exe)
        if exe is None:
            it.skip = "no python executable in %s" % bindir
        out.append(it)
    return out, None


def system_interp():
    path = "/usr/bin/python3"
    if not os.path.exists(path):
        it = Interp("system", [], "system")
        it.skip = "%s does not exist" % path
        return it
    it = Interp("system", [path], "system", path=os.path.realpath(path))
    return it


def cache_dir():
    return os.environ.get("PYMEMD_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "pymemd")


def debian_interps():
    manifest = os.path.join(cache_dir(), "debian", "interpreters.tsv")
    if not os.path.exists(manifest):
        return [], ("debian: manifest %s is missing (tests/integration/"
                    "debian-pythons.sh creates it)" % manifest)
    out = []
    with open(manifest, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) < 3:
                it = Interp("debian-line%d" % n, [], "debian")
                it.skip = "malformed manifest line %d: %r" % (n, line)
                out.append(it)
                continue
            label, version, rest = fields[0], fields[1], "\t".join(fields[2:])
            if not label.startswith("debian"):
                label = "debian-" + label
            if version == "skip":
                it = Interp(label, [], "debian", kind=debian_kind(label))
                it.skip = rest or "skipped by debian-pythons.sh (no reason given)"
                out.append(it)
                continue
            cmd = [rest] if os.path.exists(rest) else shlex.split(rest)
            it = Interp(label, cmd, "debian", version=version, path=cmd[0] if cmd else None,
                        kind=debian_kind(label))
            if not cmd or not os.path.exists(cmd[0]):
                it.skip = "listed in the manifest but %r does not exist" % rest
            out.append(it)
    if not out:
        return [], "debian: manifest %s lists no interpreters" % manifest
    return out, None


def fetch_debian(timeout=900):
    """Run debian-pythons.sh (next to this file) so that the manifest exists;
    it is idempotent and does no network once its cache is complete.  Its
    failure is not ours: a missing manifest is reported as a SKIP later."""
    script = os.path.join(HERE, "debian-pythons.sh")
    if not os.path.exists(script):
        say("debian-pythons.sh: not present next to run_matrix.py; not run")
        return
    p = CHILDREN.spawn(["bash", script], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        say("debian-pythons.sh: killed after %d s" % timeout)
        return
    finally:
        CHILDREN.reap(p)
    for line in out.decode("utf-8", "replace").splitlines():
        say("  " + line)
    if p.returncode != 0:
        say("debian-pythons.sh: exit status %d" % p.returncode)


def upstream_interps():
    """Upstream 3.13 and free-threaded 3.13t, built from python.org's tarball by
    upstream-pythons.sh; its manifest has the same form as debian-pythons.sh's."""
    manifest = os.path.join(cache_dir(), "upstream", "interpreters.tsv")
    if not os.path.exists(manifest):
        return [], ("upstream: manifest %s is missing (tests/integration/"
                    "upstream-pythons.sh creates it)" % manifest)
    out = []
    with open(manifest, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            if not line.strip():
                continue
            if len(fields) < 3:
                it = Interp("upstream-line%d" % n, [], "upstream")
                it.skip = "malformed manifest line %d: %r" % (n, line)
                out.append(it)
                continue
            label, version, rest = fields[0], fields[1], "\t".join(fields[2:])
            if version == "skip":
                it = Interp(label, [], "upstream")
                it.skip = rest or "skipped by upstream-pythons.sh (no reason given)"
                out.append(it)
                continue
            it = Interp(label, [rest], "upstream", version=version, path=rest)
            if not os.path.exists(rest):
                it.skip = "listed in the manifest but %r does not exist" % rest
            it.notes.append("python.org source, %s build" % (
                "free-threaded" if label.endswith("t") else "default"))
            out.append(it)
    return out, None


def fetch_upstream(timeout=3600):
    """Run upstream-pythons.sh: offline and quick once its builds are cached; a cold build
    takes minutes.  Its failure is reported as a SKIP later."""
    script = os.path.join(HERE, "upstream-pythons.sh")
    p = CHILDREN.spawn(["bash", script], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        say("upstream-pythons.sh: killed after %d s" % timeout)
        return
    finally:
        CHILDREN.reap(p)
    for line in out.decode("utf-8", "replace").splitlines():
        say("  " + line)
    if p.returncode != 0:
        say("upstream-pythons.sh: exit status %d" % p.returncode)


def probe_free_threaded(interp):
    """3.13+: whether the build is free-threaded (Py_GIL_DISABLED), which changes what can be
    compared (see compare_free_threaded)."""
    if interp.skip or not interp.hexversion or interp.hexversion < 0x030D0000:
        return
    try:
        r = subprocess.run(interp.cmd + ["-c", "import sysconfig; print(int(bool("
                                         "sysconfig.get_config_var('Py_GIL_DISABLED'))))"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=clean_env(), timeout=30,
                           universal_newlines=True)
    except (OSError, subprocess.TimeoutExpired) as e:
        interp.skip = "cannot ask %s whether it is free-threaded: %s" % (interp.label, e)
        return
    if r.returncode != 0 or r.stdout.strip() not in ("0", "1"):
        interp.skip = "cannot ask %s whether it is free-threaded: %s" % (
            interp.label, short(r.stderr or r.stdout, 200))
        return
    interp.free_threaded = r.stdout.strip() == "1"
    if interp.free_threaded:
        interp.notes.append("free-threaded")


def enumerate_interps():
    """All interpreters (usable or skipped) plus skip lines for whole sources."""
    interps = []
    source_skips = []
    lst, why = pyenv_interps()
    interps += lst
    if why:
        source_skips.append(why)
    interps.append(system_interp())
    lst, why = debian_interps()
    interps += lst
    if why:
        source_skips.append(why)
    lst, why = upstream_interps()
    interps += lst
    if why:
        source_skips.append(why)
    for it in interps:
        if it.skip:
            continue
        manifest_version = it.version
        probe(it)
        probe_free_threaded(it)
        if it.source == "system" and it.version:
            it.label = "system-%s" % it.version
        if (manifest_version and it.version and manifest_version != it.version
                and not it.skip):
            it.notes.append("manifest says %s, interpreter says %s"
                            % (manifest_version, it.version))
    return interps, source_skips


# --------------------------------------------------------------------------
# Facts about a running target, read by the driver itself.

def read_vmrss(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return data[data.rindex(")") + 2]
    except (OSError, ValueError, IndexError):
        return None


def elf_has_symtab(path):
    """True/False whether the ELF file has a .symtab, None if unreadable."""
    try:
        with open(path, "rb") as f:
            eh = f.read(64)
            if len(eh) < 64 or eh[:4] != b"\x7fELF" or eh[4] != 2:
                return None
            shoff = struct.unpack_from("<Q", eh, 0x28)[0]
            shentsize, shnum = struct.unpack_from("<HH", eh, 0x3A)
            if not shoff or not shnum or shentsize < 64:
                return False
            f.seek(shoff)
            sh = f.read(shentsize * shnum)
            for i in range(shnum):
                if len(sh) < i * shentsize + 8:
                    break
                if struct.unpack_from("<I", sh, i * shentsize + 4)[0] == 2:
                    return True   # SHT_SYMTAB
            return False
    except OSError:
        return None


def python_module(pid):
    """(path, kind, stripped) of the module holding the interpreter:
    libpython3.X.so (kind "shared") or the python3.X executable ("static")."""
    lib = exe = None
    try:
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) < 6:
                    continue
                path = parts[5].strip()
                base = os.path.basename(path)
                if re.match(r"^libpython3\.\d+[a-z]*\.so", base):
                    lib = lib or path
                elif re.match(r"^python3(\.\d+[a-z]*)?$", base):
                    exe = exe or path
    except OSError:
        return None, None, None
    if lib:
        return lib, "shared", elf_has_symtab(lib) is False
    if exe:
        return exe, "static", elf_has_symtab(exe) is False
    return None, None, None


def elf_pie(path):
    """"PIE" / "non-PIE" for an executable, None for a library or when unreadable."""
    try:
        with open(path, "rb") as f:
            eh = f.read(18)
    except OSError:
        return None
    if len(eh) < 18 or eh[:4] != b"\x7fELF":
        return None
    return {2: "non-PIE", 3: "PIE"}.get(struct.unpack_from("<H", eh, 16)[0])


def build_text(it, module):
    """What was run, for the table: the build kind and what the mapped module is."""
    text = it.kind
    path, kind, stripped = module or (None, None, None)
    if path:
        bits = [kind]
        if kind == "static":
            pie = elf_pie(path)
            if pie:
                bits.append(pie)
        if stripped:
            bits.append("stripped")
        text += " (%s %s)" % (" ".join(bits), os.path.basename(path))
    return text


# --------------------------------------------------------------------------
# Running things

class Target(pymemdtest.Target):
    """A running target.py with its ground truth (the shared harness's Target), under a tag of
    its own; with keep_dir, the truth is saved there."""

    def __init__(self, interp, args, keep_dir=None, name=""):
        self.interp = interp
        tag = "pymemd-test-%016x" % random.getrandbits(64)
        pymemdtest.Target.__init__(self, interp.label, interp.cmd + [TARGET] + args +
                                   ["--tag", tag], tag)
        if keep_dir:
            with open(os.path.join(keep_dir, "%s.%d.truth.json" % (name, self.pid)),
                      "w") as f:
                json.dump(self.truth, f, indent=1, sort_keys=True)


class PymemdRun(object):
    def __init__(self, rc, out, err, timed_out=False):
        self.rc = rc
        self.out = out
        self.err = err
        self.timed_out = timed_out
        self.doc = None
        self.parse_error = None
        if timed_out:
            self.parse_error = "pymemd did not finish within %.0f s" % PYMEMD_TIMEOUT
            return
        try:
            self.doc = json.loads(out) if out.strip() else None
        except ValueError as e:
            self.parse_error = "pymemd stdout is not JSON (%s): %s" % (e, short(out, 200))
            return
        if self.doc is None:
            self.parse_error = "pymemd printed nothing on stdout"
        elif not isinstance(self.doc, dict) or not isinstance(self.doc.get("processes"), list):
            self.parse_error = "pymemd JSON has no \"processes\" list: %s" % short(out, 200)
            self.doc = None

    def describe(self):
        return "exit %s, stderr: %s" % (self.rc, short(self.err, 300) or "(empty)")

    def processes(self, pid):
        if not self.doc:
            return []
        return [pr for pr in self.doc["processes"]
                if isinstance(pr, dict) and pr.get("pid") == pid]


def run_pymemd(pymemd, args, prefix=(), timeout=PYMEMD_TIMEOUT):
    p = CHILDREN.spawn(list(prefix) + [pymemd] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        CHILDREN.reap(p)
        return PymemdRun(None, "", "", timed_out=True)
    finally:
        CHILDREN.reap(p)
    return PymemdRun(p.returncode, out.decode("utf-8", "replace"),
                     err.decode("utf-8", "replace"))


def check_document(run):
    """Problems with the top-level document (DESIGN.md section 4)."""
    bad = []
    top = run.doc.get("pymemd")
    if not isinstance(top, dict):
        bad.append("document: no \"pymemd\" object")
    else:
        if not isinstance(top.get("version"), str):
            bad.append("pymemd.version: expected a string, got %r" % (top.get("version"),))
        for k in ("started_at", "interval_seconds"):
            if not isinstance(top.get(k), (int, float)) or isinstance(top.get(k), bool):
                bad.append("pymemd.%s: expected a number, got %r" % (k, top.get(k)))
    return bad


# --------------------------------------------------------------------------
# The comparison

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class Verdict(object):
    def __init__(self):
        self.diffs = []
        self.notes = []
        self.unsupported = None   # the accepted "unsupported" reason

    def diff(self, key, expected, got):
        self.diffs.append("%s: expected %s, got %s" % (key, expected, got))

    def eq(self, key, expected, got):
        # Same value and same JSON type: true is not 1, 3.0 is not 3.
        if type(expected) is not type(got) or expected != got:
            self.diff(key, json.dumps(expected), json.dumps(got))

    @property
    def ok(self):
        return not self.diffs

    def line(self):
        if self.diffs:
            return "FAIL: " + "; ".join(self.diffs)
        text = "PASS"
        if self.unsupported is not None:
            text += " (unsupported, accepted: %s)" % short(self.unsupported, 160)
        if self.notes:
            text += " (" + "; ".join(self.notes) + ")"
        return text


# Objects the target may create or free between counting them and pymemd's census (printing
# the ground truth, a thread waking up).
CENSUS_SLACK = 60


# Types whose bytes must be checked wherever the interpreter has them: each is sized its own way
# (pre-header, GC header, item count from ob_size or from a code object's frame).
BYTES_MUST = ("Node", "Row", "generator", "coroutine", "async_generator", "frame")


def compare_bytes(truth, objs, frozen, v):
    """Per type name, pymemd's bytes against the sum of sys.getsizeof the target took, for the
    names sized by object.__sizeof__ or by their code object, where both counted the same
    objects (an object made or freed after the target counted would differ by its size)."""
    want = truth.get("census_bytes")
    if want is None:
        return
    if frozen:
        # Frozen objects are in pymemd's per-type rows, not in gc.get_objects().
        v.notes.append("bytes not compared: %d frozen objects" % frozen)
        return
    ours, count = {}, {}
    for t in objs["types"]:
        ours[t.get("name")] = ours.get(t.get("name"), 0) + t.get("bytes", 0)
        count[t.get("name")] = count.get(t.get("name"), 0) + t.get("count", 0)
    checked, wrong = [], []
    for name, b in sorted(want.items()):
        if count.get(name) != truth["census"].get(name):
            continue
        checked.append(name)
        if ours.get(name) != b:
            wrong.append("%s %s (sys.getsizeof: %d)" % (name, ours.get(name), b))
    if wrong:
        v.diff("objects.types bytes", "sys.getsizeof summed per type", "; ".join(wrong[:5]))
    missing = [n for n in BYTES_MUST if n in want and n not in checked]
    if missing:
        v.diff("objects.types bytes", "comparable counts for %s" % ", ".join(BYTES_MUST),
               "counts differ for %s" % ", ".join(missing))
    v.notes.append("bytes of %d types = sys.getsizeof" % len(checked))


def compare(truth, proc, run, target, rss_before, rss_after, v=None):
    """Compare one PROCESS object with the target's ground truth."""
    v = v or Verdict()
    hexv = truth["hexversion"]
    minor = (hexv >> 16) & 0xFF
    status = proc.get("status")
    error = proc.get("error")
    ft = getattr(target.interp, "free_threaded", False)

    if status == "unsupported" and minor in (6, 7):
        want = "3.%d" % minor
        if not isinstance(error, str) or want not in error:
            v.diff("error", "a reason naming %s for status \"unsupported\"" % want,
                   json.dumps(error))
        else:
            v.unsupported = error
        return v
    if status != "ok":
        v.diff("status", "\"ok\"", "%s (error: %s)" % (json.dumps(status), short(error, 200)))
        return v
    if run.rc != 0:
        v.diff("exit status", 0, "%s (%s)" % (run.rc, short(run.err, 200)))

    if not isinstance(proc.get("cmdline"), str) or target.tag not in proc["cmdline"]:
        v.diff("cmdline", "to contain %s" % target.tag, short(json.dumps(proc.get("cmdline")), 200))

    py = proc.get("python") or {}
    v.eq("python.version", truth["version"], py.get("version"))
    v.eq("python.hexversion", hexv, py.get("hexversion"))
    mod_path, kind, stripped = python_module(target.pid)
    if kind and not (isinstance(py.get("build"), str) and py["build"].startswith(kind)):
        v.diff("python.build", "\"%s\" (%s is mapped)" % (kind, mod_path),
               json.dumps(py.get("build")))

    gc = proc.get("gc")
    if not isinstance(gc, dict):
        v.diff("gc", "an object", json.dumps(gc))
        gc = {}
    v.eq("gc.enabled", truth["isenabled"], gc.get("enabled"))
    v.eq("gc.collecting", False, gc.get("collecting"))
    if ft:
        ft_frozen(truth, gc, error, v)
    else:
        v.eq("gc.frozen", truth["get_freeze_count"], gc.get("frozen"))
    v.eq("gc.garbage", truth["garbage"], gc.get("garbage"))

    gens = gc.get("generations")
    stats = truth["get_stats"]
    if not isinstance(gens, list) or len(gens) != len(stats):
        v.diff("gc.generations", "a list of %d" % len(stats), short(json.dumps(gens), 200))
        gens = []
    for i, g in enumerate(gens):
        key = "gc.generations[%d]" % i
        if not isinstance(g, dict):
            v.diff(key, "an object", json.dumps(g))
            continue
        st = stats[i]
        v.eq(key + ".generation", i, g.get("generation"))
        v.eq(key + ".threshold", truth["get_threshold"][i], g.get("threshold"))
        for k in ("collections", "collected", "uncollectable"):
            v.eq(key + "." + k, st[k], g.get(k))
        exp_count = truth["get_count"][i]
        got_count = g.get("count")
        if i == 0 and ft and truth["active_count"] > 1:
            v.notes.append("gen0 count not compared: the other threads' unflushed shares are "
                           "unknown to the target (exact in the ft-counts case)")
        elif i == 0:
            if not is_int(got_count) or abs(got_count - exp_count) > GEN0_TOLERANCE:
                v.diff(key + ".count", "%d (+-%d)" % (exp_count, GEN0_TOLERANCE),
                       json.dumps(got_count))
        else:
            v.eq(key + ".count", exp_count, got_count)
        if "candidates" in st or "duration" in st:
            v.eq(key + ".candidates", st.get("candidates"), g.get("candidates"))
            exp_d = st.get("duration")
            got_d = g.get("duration_seconds")
            if exp_d is None:
                v.eq(key + ".duration_seconds", None, got_d)
            elif (not isinstance(got_d, (int, float)) or isinstance(got_d, bool)
                  or abs(got_d - exp_d) > DURATION_RTOL * max(abs(exp_d), 1e-300)):
                v.diff(key + ".duration_seconds", repr(exp_d), json.dumps(got_d))
        else:
            for k in ("candidates", "duration_seconds"):
                if g.get(k, "missing") is not None:
                    v.diff(key + "." + k, "null before 3.15", json.dumps(g.get(k, "missing")))

    v.eq("threads", truth["active_count"], proc.get("threads"))

    # pymalloc
    pm = proc.get("pymalloc")
    if not isinstance(pm, dict):
        v.diff("pymalloc", "an object", json.dumps(pm))
        pm = {}
    nulls = [k for k in ("arenas", "arenas_highwater", "arena_bytes", "allocated_blocks")
             if pm.get(k) is None]
    reason = None
    if nulls:
        reasons = [error] + [pm.get(k) for k in pm if "reason" in k or "error" in k or k == "note"]
        reasons = [r for r in reasons if isinstance(r, str) and r.strip()]
        may_be_null = kind == "static" and stripped and 8 <= minor <= 11
        if ft:
            # Free-threaded builds allocate with mimalloc: there is no pymalloc to read.
            may_be_null = True
            reasons = [r for r in reasons if "mimalloc" in r]
        if not may_be_null:
            v.diff("pymalloc." + ",".join(nulls), "numbers (%s %s build%s)" % (
                truth["version"], kind, ", stripped" if stripped else ""), "null")
        elif not reasons:
            v.diff("pymalloc", "a reason in error or pymalloc.*reason for null %s"
                   % ",".join(nulls), "none")
        else:
            reason = reasons[0]
            v.notes.append("pymalloc %s n/a (%s)" % (",".join(nulls), short(reason, 120)))
    if error is not None and reason is None:
        v.diff("error", "null", json.dumps(error))

    blocks = pm.get("allocated_blocks")
    if ft and blocks is None:
        v.diff("pymalloc.allocated_blocks", "mimalloc's blocks in use (free-threaded)", "null")
    # Their bytes: free-threaded builds only (exact values: tests/census/test_census_ft.py); a
    # block is at least 8 bytes.
    nbytes = pm.get("allocated_bytes", "missing")
    if ft and not (is_int(nbytes) and is_int(blocks) and nbytes >= 8 * blocks):
        v.diff("pymalloc.allocated_bytes", "at least 8 x allocated_blocks (free-threaded)",
               json.dumps(nbytes))
    if not ft and nbytes is not None:
        v.diff("pymalloc.allocated_bytes", "null (default build)", json.dumps(nbytes))
    if blocks is not None:
        exp = truth["allocated_blocks"]
        if not is_int(blocks) or not (0 <= blocks - exp <= BLOCKS_SLACK):
            v.diff("pymalloc.allocated_blocks", "%d..%d" % (exp, exp + BLOCKS_SLACK),
                   json.dumps(blocks))
    if truth.get("arenas") is None:
        v.notes.append("target's _debugmallocstats gave no arena lines")
    else:
        for k in ("arenas", "arenas_highwater"):
            if pm.get(k) is not None:
                v.eq("pymalloc." + k, truth[k], pm.get(k))
        if pm.get("arena_bytes") is not None and truth.get("arena_size"):
            v.eq("pymalloc.arena_bytes", truth["arenas"] * truth["arena_size"],
                 pm.get("arena_bytes"))

    # object census: pymemd's by-type table, grouped by __name__, against the target's own
    # Counter over gc.get_objects(). pymemd also counts the frozen generation, which
    # gc.get_objects() leaves out, so its excess over the target may add up to gc.frozen.
    census = truth.get("census")
    objs = proc.get("objects")
    if census is not None:
        if not isinstance(objs, dict) or not isinstance(objs.get("types"), list):
            v.diff("objects", "a census", "%s (objects_error: %s)" % (
                json.dumps(objs)[:80], proc.get("objects_error")))
        else:
            ours = {}
            for t in objs["types"]:
                ours[t.get("name")] = ours.get(t.get("name"), 0) + t.get("count", 0)
            frozen = (proc.get("gc") or {}).get("frozen") or 0
            if ft:
                # Free-threaded: no frozen list to sample (gc.frozen is null); the census counts
                # the frozen objects, a bit in each header, as its permanent generation.
                gens = dict((g.get("generation"), g.get("count"))
                            for g in objs.get("generations") or [])
                frozen = gens.get("permanent")
                v.eq("objects.generations[permanent].count (gc.get_freeze_count())",
                     truth["get_freeze_count"], frozen)
                frozen = frozen if is_int(frozen) else 0
            missing = sum(max(0, n - ours.get(k, 0)) for k, n in census.items())
            extra = sum(max(0, n - census.get(k, 0)) for k, n in ours.items())
            if missing > CENSUS_SLACK:
                worst = sorted(((n - ours.get(k, 0), k) for k, n in census.items()), reverse=True)[:4]
                v.diff("objects.types (missing)", "<= %d objects short" % CENSUS_SLACK,
                       "%d short, e.g. %s" % (missing, worst))
            if extra > frozen + CENSUS_SLACK:
                worst = sorted(((n - census.get(k, 0), k) for k, n in ours.items()), reverse=True)[:4]
                v.diff("objects.types (extra)", "<= frozen %d + %d" % (frozen, CENSUS_SLACK),
                       "%d extra, e.g. %s" % (extra, worst))
            listed = objs.get("gc_get_objects_count")
            want = sum(census.values())
            if not is_int(listed) or abs(listed - want) > CENSUS_SLACK:
                v.diff("objects.gc_get_objects_count", "%d +-%d" % (want, CENSUS_SLACK),
                       json.dumps(listed))
            if objs.get("total") != (listed or 0) + frozen:
                v.diff("objects.total", "gc_get_objects_count + frozen",
                       json.dumps(objs.get("total")))
            compare_bytes(truth, objs, frozen, v)

    # memory
    mem = proc.get("memory")
    if not isinstance(mem, dict):
        v.diff("memory", "an object", json.dumps(mem))
        mem = {}
    rss = mem.get("rss_bytes")
    refs = [r for r in (rss_before, rss_after) if r]
    if not is_int(rss):
        v.diff("memory.rss_bytes", "a number", json.dumps(rss))
    elif refs and not any(abs(rss - r) <= RSS_TOLERANCE * r for r in refs):
        v.diff("memory.rss_bytes", "VmRSS %s (+-10%%)" % "/".join(str(r) for r in refs), rss)
    peak = mem.get("peak_rss_bytes")
    if not is_int(peak) or (is_int(rss) and peak < rss):
        v.diff("memory.peak_rss_bytes", ">= rss_bytes %s" % (rss,), json.dumps(peak))
    return v


# --------------------------------------------------------------------------
# Free-threaded builds (3.13t): what differs from the default build's comparison.

# How `error` names the null gc.frozen (python/pyread.c; "frozen: <why>" like every frozen reason).
FT_FROZEN_REASON = "frozen: not read on free-threaded builds"


def ft_frozen(truth, gc, error, v):
    """gc.frozen is null on free-threaded builds (frozen objects are a bit in each header, not
    a list), with the reason in error."""
    got = gc.get("frozen")
    if got is not None:
        v.diff("gc.frozen", "null on a free-threaded build", json.dumps(got))
    elif not isinstance(error, str) or FT_FROZEN_REASON not in error:
        v.diff("error", "a reason for the null gc.frozen", json.dumps(error))
    else:
        v.notes.append("gc.frozen n/a (target: %s)" % truth.get("get_freeze_count"))


def ft_census(proc, v):
    """The free-threaded target of ft_counts prints no census of its own: pymemd's must be
    there all the same (walked in the mimalloc heaps), without an error."""
    objs = proc.get("objects")
    if not isinstance(objs, dict) or not is_int(objs.get("total")) or objs["total"] <= 0:
        v.diff("objects", "a census", "%s (objects_error: %s)" % (
            short(json.dumps(objs), 80), proc.get("objects_error")))
    v.eq("objects_error", None, proc.get("objects_error"))


def ft_counts(pymemd, interp, keep_dir):
    """Generation 0's count of a free-threaded target whose threads hold unflushed shares of it
    (allocating, crossing the flush threshold, freeing, idle): pymemd's must be exactly the
    count the target reports once every thread has flushed its share (ft_target.py)."""
    name = "%s.ft-counts" % interp.label
    errf = tempfile.TemporaryFile()
    p = CHILDREN.spawn(interp.cmd + [FT_TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=errf, env=clean_env(), cwd="/")
    try:
        try:
            truth = json.loads(read_line(p, TARGET_TIMEOUT))
        except (RuntimeError, ValueError) as e:
            return "FAIL", "FAIL: target: %s; stderr: %s" % (e, short(captured(errf), 300))
        pid = truth["pid"]
        before = read_vmrss(pid)
        run = run_pymemd(pymemd, ["--once", "--pid", str(pid)])
        after = read_vmrss(pid)
        save(keep_dir, name, run)
        p.stdin.write(b"x")
        p.stdin.flush()
        try:
            end = json.loads(read_line(p, TARGET_TIMEOUT))
        except (RuntimeError, ValueError) as e:
            return "FAIL", "FAIL: target's flushed counts: %s; stderr: %s" % (
                e, short(captured(errf), 300))
        if keep_dir:
            with open(os.path.join(keep_dir, name + ".truth.json"), "w") as f:
                json.dump({"truth": truth, "flushed": end}, f, indent=1, sort_keys=True)
        v = Verdict()
        if run.parse_error:
            v.diff("pymemd", "a JSON document", "%s (%s)" % (run.parse_error, run.describe()))
            return "FAIL", v.line()
        procs = run.processes(pid)
        if len(procs) != 1:
            v.diff("processes", "exactly one PROCESS with pid %d" % pid, len(procs))
            return "FAIL", v.line()
        proc = procs[0]
        if proc.get("status") != "ok":
            v.diff("status", "\"ok\"", "%s (error: %s)" % (json.dumps(proc.get("status")),
                                                             short(proc.get("error"), 200)))
            return "FAIL", v.line()
        gc = proc.get("gc") or {}
        gens = gc.get("generations") or []
        # The workers' shares, from the counts each saw right after flushing its own.
        seen = [truth["get_count"][0]] + end["after_each"]
        shares = dict(zip(truth["plans"], (b - a for a, b in zip(seen, seen[1:]))))
        main_share = end["flushed"][0] - seen[-1]
        if not (shares.get("allocating", 0) >= 250 and shares.get("freeing", 0) <= -250):
            v.diff("ft_target.py", "an allocating share >= 250 and a freeing one <= -250",
                   "shares %s" % shares)
        want = [end["flushed"][0], truth["get_count"][1], truth["get_count"][2]]
        got = [g.get("count") for g in gens]
        for i in range(3):
            v.eq("gc.generations[%d].count" % i, want[i], got[i] if i < len(got) else None)
        for i, g in enumerate(gens):
            v.eq("gc.generations[%d].threshold" % i, truth["get_threshold"][i], g.get("threshold"))
            for k in ("collections", "collected", "uncollectable"):
                v.eq("gc.generations[%d].%s" % (i, k), truth["get_stats"][i][k], g.get(k))
        v.eq("gc.enabled", truth["isenabled"], gc.get("enabled"))
        v.eq("gc.garbage", truth["garbage"], gc.get("garbage"))
        v.eq("threads", truth["active_count"], proc.get("threads"))
        rss = (proc.get("memory") or {}).get("rss_bytes")
        refs = [r for r in (before, after) if r]
        if not is_int(rss) or (refs and not any(abs(rss - r) <= RSS_TOLERANCE * r for r in refs)):
            v.diff("memory.rss_bytes", "VmRSS %s (+-10%%)" % "/".join(map(str, refs)), rss)
        ft_census(proc, v)
        if v.ok:
            v.notes.append("gen0 %d = target's %d + unflushed shares %s + main's since %d" % (
                want[0], truth["get_count"][0],
                ", ".join("%s %+d" % kv for kv in sorted(shares.items())), main_share))
        return ("PASS" if v.ok else "FAIL"), v.line()
    finally:
        CHILDREN.reap(p)
        errf.close()


def measure(pymemd, targets, args):
    """Run pymemd over running targets; return (run, {pid: (before, after)})."""
    before = dict((t.pid, read_vmrss(t.pid)) for t in targets)
    run = run_pymemd(pymemd, args)
    rss = dict((t.pid, (before[t.pid], read_vmrss(t.pid))) for t in targets)
    return run, rss


def judge(target, run, rss, v=None):
    """Verdict for one target from a pymemd run."""
    v = v or Verdict()
    state = proc_state(target.pid)
    if state in ("T", "t"):
        v.diff("target state", "running or sleeping", "stopped (%s) after pymemd exited" % state)
    if run.parse_error:
        v.diff("pymemd", "a JSON document", "%s (%s)" % (run.parse_error, run.describe()))
        return v
    for problem in check_document(run):
        v.diffs.append(problem)
    procs = run.processes(target.pid)
    if len(procs) != 1:
        v.diff("processes", "exactly one PROCESS with pid %d" % target.pid, len(procs))
        return v
    return compare(target.truth, procs[0], run, target, rss[0], rss[1], v)


def save(keep_dir, name, run):
    if keep_dir:
        with open(os.path.join(keep_dir, name + ".pymemd.json"), "w") as f:
            f.write(run.out)
        with open(os.path.join(keep_dir, name + ".pymemd.stderr"), "w") as f:
            f.write(run.err)


# --------------------------------------------------------------------------
# Results

def report(label, scenario, kind, text):
    """One result: counted by the shared RESULTS, and kept per interpreter (RESULTS.by_group,
    rows (scenario, kind, text)) for the summary."""
    RESULTS.out(kind, scenario, text, group=label,
                line="%-22s %-9s %s" % (label, scenario, text))


def run_interp(interp, pymemd, keep_dir):
    """All scenarios of one interpreter, one after another."""
    info = {"module": None, "unsupported": None, "ok_default": False,
            "status_ok": False}
    timeouts = 0
    for scen, args in SCENARIOS:
        target = None
        name = "%s.%s" % (interp.label, scen)
        if timeouts >= 2:
            report(interp.label, scen, "FAIL",
                           "FAIL: not run: pymemd timed out twice in a row on %s" % interp.label)
            continue
        try:
            try:
                target = Target(interp, args, keep_dir, name)
            except (RuntimeError, OSError) as e:
                report(interp.label, scen, "FAIL", "FAIL: target: %s" % e)
                continue
            if info["module"] is None:
                info["module"] = python_module(target.pid)
            run, rss = measure(pymemd, [target], ["--once", "--pid", str(target.pid)])
            save(keep_dir, name, run)
            if CHILDREN.stopping:
                raise Stopping()
            timeouts = timeouts + 1 if run.timed_out else 0
            v = judge(target, run, rss[target.pid])
            if v.unsupported is not None:
                info["unsupported"] = v.unsupported
            if v.unsupported is None and scen == "default":
                procs = run.processes(target.pid)
                if procs and procs[0].get("status") == "ok":
                    info["status_ok"] = True
                    info["ok_default"] = v.ok
            report(interp.label, scen, "PASS" if v.ok else "FAIL", v.line())
        finally:
            if target is not None:
                target.close()
    if interp.free_threaded:
        kind, text = ft_counts(pymemd, interp, keep_dir)
        report(interp.label, "ft-counts", kind, text)
    return info


# --------------------------------------------------------------------------
# Permission check

PTRACE_CHECK = r'''
import ctypes, os, sys
pid = int(sys.argv[1])
try:
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
except OSError as e:
    print("cannot read /proc/%d/maps: %s" % (pid, e.strerror)); sys.exit(1)
addr = None
for line in maps:
    parts = line.split()
    if len(parts) > 1 and parts[1].startswith("r"):
        addr = int(parts[0].split("-")[0], 16)
        break
if addr is None:
    print("no readable mapping"); sys.exit(1)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
libc = ctypes.CDLL(None, use_errno=True)
f = libc.process_vm_readv
f.restype = ctypes.c_ssize_t
f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
              ctypes.c_ulong, ctypes.c_ulong]
buf = ctypes.create_string_buffer(8)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 8)
remote = iovec(addr, 8)
n = f(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
if n != 8:
    print("process_vm_readv: %s" % os.strerror(ctypes.get_errno())); sys.exit(1)
'''


def check_ptrace():
    """Whether a process that is NOT the target's parent (like pymemd) may
    process_vm_readv it: start `sleep` and read it from a sibling."""
    sleeper = CHILDREN.spawn(["sleep", "60"], stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.05)
        r = subprocess.run([sys.executable, "-c", PTRACE_CHECK, str(sleeper.pid)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30, universal_newlines=True)
        if r.returncode == 0:
            return True, None
        return False, "%s: %s" % (PTRACE_REASON, short(r.stdout, 200))
    finally:
        CHILDREN.reap(sleeper)


# --------------------------------------------------------------------------
# One-off cases

def misc_gone(pymemd):
    p = CHILDREN.spawn(["true"], stdin=subprocess.DEVNULL)
    CHILDREN.reap(p)
    pid = p.pid
    if os.path.exists("/proc/%d" % pid):
        return "SKIP", "SKIP: pid %d was reused before the test could run" % pid
    run = run_pymemd(pymemd, ["--once", "--pid", str(pid)])
    if run.timed_out:
        return "FAIL", "FAIL: %s" % run.parse_error
    procs = run.processes(pid)
    if len(procs) == 1:
        st = procs[0].get("status")
        if st == "gone":
            return "PASS", "PASS (status \"gone\", exit %s, error: %s)" % (
                run.rc, short(procs[0].get("error"), 120))
        return "FAIL", "FAIL: status: expected \"gone\", got %s (error: %s)" % (
            json.dumps(st), short(procs[0].get("error"), 200))
    if not procs and run.doc is None and run.rc == 0:
        return "FAIL", "FAIL: %s (%s)" % (run.parse_error, run.describe())
    if not procs and run.rc not in (0, None) and run.err.strip():
        return "PASS", "PASS (no PROCESS; exit %s: %s)" % (run.rc, short(run.err, 160))
    return "FAIL", "FAIL: expected a PROCESS with status \"gone\" or a non-zero exit " \
        "with a message; got %d PROCESS objects, %s" % (len(procs), run.describe())


def misc_not_python(pymemd):
    sleeper = CHILDREN.spawn(["sleep", "100"], stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.05)
        run = run_pymemd(pymemd, ["--once", "--pid", str(sleeper.pid)])
        if run.parse_error:
            return "FAIL", "FAIL: %s (%s)" % (run.parse_error, run.describe())
        procs = run.processes(sleeper.pid)
        if len(procs) != 1:
            return "FAIL", "FAIL: expected one PROCESS for pid %d, got %d" % (
                sleeper.pid, len(procs))
        st, err = procs[0].get("status"), procs[0].get("error")
        if st != "unsupported":
            return "FAIL", "FAIL: status: expected \"unsupported\", got %s (error: %s)" % (
                json.dumps(st), short(err, 200))
        if not isinstance(err, str) or not re.search(r"python", err, re.I):
            return "FAIL", "FAIL: error: expected a text saying it is not a Python " \
                "process, got %s" % json.dumps(err)
        return "PASS", "PASS (error: %s)" % short(err, 120)
    finally:
        CHILDREN.reap(sleeper)


def misc_multi(pymemd, interps, keep_dir):
    targets = []
    try:
        for i, it in enumerate(interps):
            targets.append(Target(it, [], keep_dir, "misc.multi-pid.%d" % i))
        args = ["--once"]
        for t in targets:
            args += ["--pid", str(t.pid)]
        run, rss = measure(pymemd, targets, args)
        save(keep_dir, "misc.multi-pid", run)
        v = Verdict()
        if run.doc is not None:
            extra = sorted(set(pr.get("pid") for pr in run.doc["processes"]
                               if isinstance(pr, dict)) - set(t.pid for t in targets))
            if extra:
                v.diff("processes", "only pids %s" % [t.pid for t in targets], "also %s" % extra)
        for t in targets:
            sub = judge(t, run, rss[t.pid])
            v.diffs += ["[%s pid %d] %s" % (t.interp.label, t.pid, d) for d in sub.diffs]
            v.notes += ["%s: %s" % (t.interp.label, n) for n in sub.notes]
        if v.ok:
            v.notes.insert(0, " + ".join(t.interp.label for t in targets))
        return ("PASS" if v.ok else "FAIL"), v.line()
    except (RuntimeError, OSError) as e:
        return "FAIL", "FAIL: target: %s" % e
    finally:
        for t in targets:
            t.close()


def misc_match(pymemd, interp, keep_dir):
    target = None
    try:
        target = Target(interp, [], keep_dir, "misc.match")
        # "[x]yz" matches "xyz" but not itself, so pymemd's own command line
        # (which holds the regex) cannot match.
        tag = target.tag
        regex = "%s[%s]%s" % (tag[:-4], tag[-4], tag[-3:])
        run, rss = measure(pymemd, [target], ["--once", "--match", regex])
        save(keep_dir, "misc.match", run)
        v = Verdict()
        if run.doc is not None:
            pids = [pr.get("pid") for pr in run.doc["processes"] if isinstance(pr, dict)]
            if pids != [target.pid]:
                v.diff("processes", "only pid %d (%s)" % (target.pid, interp.label),
                       "pids %s" % pids)
        if v.ok:
            v = judge(target, run, rss[target.pid], v)
        if v.ok:
            v.notes.insert(0, "%s, --match %s" % (interp.label, regex))
        return ("PASS" if v.ok else "FAIL"), v.line()
    except (RuntimeError, OSError) as e:
        return "FAIL", "FAIL: target: %s" % e
    finally:
        if target is not None:
            target.close()


def misc_ptrace_only(pymemd, interps, keep_dir):
    """pymemd as nobody with CAP_SYS_PTRACE alone, against targets whose binaries nobody may
    open (they live under root's 0700 home). 3.13+ must still be read exactly, from the
    _Py_DebugOffsets cookie in memory; older versions must be "denied" naming the file and
    CAP_DAC_READ_SEARCH."""
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return "SKIP", "SKIP: setpriv (util-linux) is not installed"
    if os.geteuid() != 0:
        return "SKIP", "SKIP: needs root to run pymemd as another user (uid %d)" % os.geteuid()
    prefix = [setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
              "--inh-caps=+sys_ptrace", "--ambient-caps=+sys_ptrace", "--"]
    if subprocess.run(prefix + ["true"], timeout=10).returncode != 0:
        return "SKIP", "SKIP: cannot give uid %d an ambient CAP_SYS_PTRACE here" % NOBODY
    tmpdir = tempfile.mkdtemp(prefix="pymemd-ptrace-only-")
    notes = []
    try:
        os.chmod(tmpdir, 0o755)
        exe = os.path.join(tmpdir, "pymemd")
        shutil.copy2(pymemd, exe)
        os.chmod(exe, 0o755)
        for interp in interps:
            binary = os.path.realpath(interp.cmd[-1])
            if subprocess.run(prefix + ["test", "-r", binary], timeout=10).returncode == 0:
                notes.append("%s: readable by uid %d, not this case" % (interp.label, NOBODY))
                continue
            target = Target(interp, [], keep_dir, "misc.ptrace-only")
            try:
                run = run_pymemd(exe, ["--once", "--pid", str(target.pid)], prefix=prefix)
                save(keep_dir, "misc.ptrace-only." + interp.label, run)
                if run.parse_error:
                    return "FAIL", "FAIL: %s: %s" % (interp.label, run.parse_error)
                proc = run.processes(target.pid)[0]
                st, err = proc.get("status"), proc.get("error")
                if interp.hexversion >= 0x030D0000:
                    truth = target.truth
                    if st != "ok":
                        return "FAIL", "FAIL: %s: expected status ok from memory alone, got %s: %s" % (
                            interp.label, st, err)
                    got = [(g["threshold"], g["collections"]) for g in proc["gc"]["generations"]]
                    want = [(t, s_["collections"]) for t, s_ in zip(truth["get_threshold"],
                                                                    truth["get_stats"])]
                    if got != want:
                        return "FAIL", "FAIL: %s: thresholds/collections %s, target says %s" % (
                            interp.label, got, want)
                    notes.append("%s: ok from memory" % interp.label)
                else:
                    if st != "denied" or "CAP_DAC_READ_SEARCH" not in (err or ""):
                        return "FAIL", ("FAIL: %s: expected \"denied\" naming CAP_DAC_READ_SEARCH,"
                                        " got %s: %s" % (interp.label, st, err))
                    notes.append("%s: denied" % interp.label)
            finally:
                target.close()
        if not notes:
            return "SKIP", "SKIP: no interpreter to try"
        return "PASS", "PASS (" + "; ".join(notes) + ")"
    except (RuntimeError, OSError, subprocess.TimeoutExpired, KeyError, IndexError) as e:
        return "FAIL", "FAIL: %s" % e
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def misc_denied(pymemd, interp, keep_dir):
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return "SKIP", "SKIP: setpriv (util-linux) is not installed"
    if os.geteuid() != 0:
        return "SKIP", "SKIP: needs root to run pymemd as another user (uid %d)" % os.geteuid()
    prefix = [setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--"]
    tmpdir = None
    target = None
    try:
        exe = pymemd
        r = subprocess.run(prefix + ["test", "-x", exe], timeout=10)
        if r.returncode != 0:
            # The build directory may not be reachable for nobody.
            tmpdir = tempfile.mkdtemp(prefix="pymemd-denied-")
            os.chmod(tmpdir, 0o755)
            exe = os.path.join(tmpdir, "pymemd")
            shutil.copy2(pymemd, exe)
            os.chmod(exe, 0o755)
        target = Target(interp, [], keep_dir, "misc.denied")
        run = run_pymemd(exe, ["--once", "--pid", str(target.pid)], prefix=prefix)
        save(keep_dir, "misc.denied", run)
        if run.parse_error:
            return "FAIL", "FAIL: %s (%s)" % (run.parse_error, run.describe())
        procs = run.processes(target.pid)
        if len(procs) != 1:
            return "FAIL", "FAIL: expected one PROCESS for pid %d, got %d (%s)" % (
                target.pid, len(procs), run.describe())
        st, err = procs[0].get("status"), procs[0].get("error")
        if st != "denied":
            return "FAIL", "FAIL: status: expected \"denied\", got %s (error: %s)" % (
                json.dumps(st), short(err, 200))
        if not isinstance(err, str) or "CAP_SYS_PTRACE" not in err:
            return "FAIL", "FAIL: error: expected a text mentioning CAP_SYS_PTRACE, got %s" % (
                json.dumps(err))
        return "PASS", "PASS (pymemd as uid %d vs root-owned %s target; error: %s)" % (
            NOBODY, interp.label, short(err, 120))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return "FAIL", "FAIL: %s" % e
    finally:
        if target is not None:
            target.close()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pymemd", required=True, help="the pymemd binary to test")
    ap.add_argument("--only", action="append", default=[], metavar="LABEL",
                    help="run only interpreters with this label (glob; repeatable), "
                         "e.g. pyenv-3.12.1, 'debian-*'")
    ap.add_argument("--jobs", type=int, default=2,
                    help="interpreters tested in parallel (default 2)")
    ap.add_argument("--no-debian-fetch", action="store_true",
                    help="do not run debian-pythons.sh first; use the manifest as it is")
    ap.add_argument("--keep-dir", metavar="DIR",
                    help="write every target's ground truth and pymemd's output here")
    opts = ap.parse_args()

    pymemd = os.path.abspath(opts.pymemd)
    if not (os.path.isfile(pymemd) and os.access(pymemd, os.X_OK)):
        sys.stderr.write("run_matrix.py: %s is not an executable file\n" % pymemd)
        return 2
    if opts.keep_dir:
        os.makedirs(opts.keep_dir, exist_ok=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    # SIGINT too: a shell starts background jobs with SIGINT ignored, and
    # Python then never raises KeyboardInterrupt.
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    started = time.monotonic()
    say("pymemd integration matrix: %s" % pymemd)
    say("target: %s" % TARGET)
    try:
        return run_all(pymemd, opts, started)
    except KeyboardInterrupt:
        say("interrupted: killing all children")
        return 130
    finally:
        CHILDREN.stop_all()


def build_key(it):
    """How `pymemd --version` names an interpreter: "3.13.18", "3.13.18 debug"."""
    where = " ".join([it.label, it.path or ""] + list(it.cmd))
    # Debian's labels name the build kind ("debian-sid-3.13-debug"); pyenv's and upstream's
    # executables carry python.org's suffix ("python3.13d", "build-3.13t").
    if it.kind == "debug" or re.search(r"3\.\d+d\b", where):
        return "%s debug" % it.version
    if it.free_threaded or re.search(r"3\.\d+t\b", where):
        return "%s free-threaded" % it.version
    return it.version


def misc_verified(pymemd, usable, infos):
    """`pymemd --version` lists the interpreters verified live (python/verified.c): every
    interpreter read with status "ok" and all scenarios passing in this run must be listed, so
    the list cannot fall behind the matrix; a listed one that failed here is a failure above."""
    r = subprocess.run([pymemd, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=30)
    lines = r.stdout.splitlines()
    if r.returncode != 0 or "verified live against CPython:" not in lines:
        return "FAIL", "FAIL: pymemd --version lists no verified interpreters: %r" % r.stdout
    listed = set()
    for line in lines[lines.index("verified live against CPython:") + 1:]:
        words = line.replace(",", " ").split()
        if words:
            listed.add(words[0] + (" " + words[1] if len(words) > 1 and
                                   words[1] in ("debug", "free-threaded") else ""))
    missing, seen = [], set()
    for it in usable:
        rows = RESULTS.by_group.get(it.label, [])
        if not infos.get(it.label, {}).get("status_ok") or not rows or \
                any(kind != "PASS" for _, kind, _ in rows):
            continue
        key = build_key(it)
        seen.add(key)
        if key not in listed:
            missing.append("%s (%s)" % (key, it.label))
    if missing:
        return "FAIL", ("FAIL: passed here but not in pymemd --version (add to "
                        "daemon/python/verified.c): %s" % ", ".join(missing))
    return "PASS", "PASS: %d verified here; listed but not run here: %s" % (
        len(seen), ", ".join(sorted(listed - seen)) or "none")


def run_all(pymemd, opts, started):
    if not opts.no_debian_fetch:
        fetch_debian()
        fetch_upstream()
    interps, source_skips = enumerate_interps()
    excluded = []
    if opts.only:
        keep = []
        for it in interps:
            if any(fnmatch.fnmatch(it.label, pat) for pat in opts.only):
                keep.append(it)
            else:
                excluded.append(it.label)
        interps = keep
        if not interps:
            say("no interpreter matches --only %s" % " ".join(opts.only))
    for why in source_skips:
        report(why.split(":")[0], "(all)", "SKIP", "SKIP: " + why.split(": ", 1)[1])

    usable = []
    for it in interps:
        if it.skip:
            report(it.label, "(all)", "SKIP", "SKIP: " + it.skip)
        else:
            usable.append(it)
    say("interpreters: %s" % (", ".join("%s (%s)" % (it.label, " ".join(it.cmd))
                                          for it in usable) or "none"))

    allowed, why = check_ptrace()
    infos = {}
    if not allowed:
        for it in usable:
            for scen, _ in SCENARIOS:
                report(it.label, scen, "SKIP", "SKIP: " + why)
    else:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, opts.jobs))
        try:
            futs = dict((pool.submit(run_interp, it, pymemd, opts.keep_dir), it)
                        for it in usable)
            pending = set(futs)
            while pending:
                done, pending = concurrent.futures.wait(pending, timeout=0.5)
                for f in done:
                    it = futs[f]
                    try:
                        infos[it.label] = f.result()
                    except Stopping:
                        pass
                    except Exception as e:   # a bug in this driver: say so
                        report(it.label, "(all)", "FAIL",
                                       "FAIL: driver error: %r" % (e,))
        except BaseException:
            CHILDREN.stop_all()
            pool.shutdown(wait=False)
            raise
        pool.shutdown(wait=True)

    # One-off cases, with interpreters that pymemd read in the matrix (those
    # that passed first, newest first).
    def info(it, key):
        return infos.get(it.label, {}).get(key)
    pick = sorted((it for it in usable if info(it, "status_ok")),
                  key=lambda it: (not info(it, "ok_default"), -it.hexversion))
    misc = []
    misc.append(("gone-pid", lambda: misc_gone(pymemd)))
    if not allowed:
        for name in ("not-python", "multi-pid", "match", "denied", "ptrace-only"):
            misc.append((name, lambda: ("SKIP", "SKIP: " + why)))
    elif not pick:
        misc.append(("not-python", lambda: misc_not_python(pymemd)))
        for name in ("multi-pid", "match", "denied", "ptrace-only"):
            misc.append((name, lambda: ("SKIP", "SKIP: pymemd read no interpreter "
                                                "with status \"ok\" in the matrix")))
    else:
        # Two different versions for --pid A --pid B when possible.
        two = [pick[0]] + [it for it in pick[1:] if it.version != pick[0].version][:1]
        if len(two) < 2:
            two = [pick[0], pick[0]]
        misc.append(("not-python", lambda: misc_not_python(pymemd)))
        misc.append(("multi-pid", lambda: misc_multi(pymemd, two, opts.keep_dir)))
        misc.append(("match", lambda: misc_match(pymemd, pick[-1], opts.keep_dir)))
        misc.append(("denied", lambda: misc_denied(pymemd, pick[0], opts.keep_dir)))
        # The newest and the oldest interpreter read: one from memory alone, one denied.
        ends = [pick[0]] + [it for it in pick if it.hexversion < 0x030D0000][:1]
        misc.append(("ptrace-only", lambda: misc_ptrace_only(pymemd, ends, opts.keep_dir)))
    misc.append(("verified-list", lambda: misc_verified(pymemd, usable, infos)))
    for name, fn in misc:
        try:
            kind, text = fn()
        except Stopping:
            raise KeyboardInterrupt()
        report("misc", name, kind, text)

    # Summary: every interpreter, with its exact version and build kind, whether it ran, how
    # many of its scenarios passed, and why it was skipped or failed.
    say("")
    say("== summary (%.1f s) ==" % (time.monotonic() - started))
    ran = []
    rows_out = []
    for it in interps:
        rows = RESULTS.by_group.get(it.label, [])
        run_rows = [r for r in rows if r[1] != "SKIP"]
        info = infos.get(it.label, {})
        build = build_text(it, info.get("module"))
        if it.source == "pyenv":
            build = build.replace("release", "pyenv", 1)
        elif it.source == "system":
            build = build.replace("release", "system", 1)
        if not run_rows:
            reasons = sorted(set(r[2][len("SKIP: "):] for r in rows)) or [it.skip or "not run"]
            rows_out.append((it.label, it.version or "?", build, "skipped",
                             "; ".join(reasons)))
            continue
        ran.append(it)
        npass = sum(1 for r in run_rows if r[1] == "PASS")
        what = []
        if info.get("unsupported"):
            what.append("reported unsupported: %s" % short(info["unsupported"], 100))
        fails = [r for r in run_rows if r[1] == "FAIL"]
        if fails:
            what.append("%s %s" % (fails[0][0], short(fails[0][2], 160)))
        what += it.notes
        rows_out.append((it.label, it.version or "?", build,
                         "%s %d/%d" % ("passed" if npass == len(run_rows) else "FAILED",
                                       npass, len(run_rows)),
                         "; ".join(what)))
    w = [max([len(r[i]) for r in rows_out] + [len(h)])
         for i, h in enumerate(("interpreter", "version", "build"))]
    say("%-*s  %-*s  %-*s  %-12s  %s" % (w[0], "interpreter", w[1], "version", w[2], "build",
                                         "result", "why"))
    for r in rows_out:
        say("%-*s  %-*s  %-*s  %-12s  %s" % (w[0], r[0], w[1], r[1], w[2], r[2], r[3], r[4]))
    for why in source_skips:
        say("skipped: %s" % why)
    if excluded:
        say("not selected by --only: %s" % ", ".join(excluded))
    say("%d passed, %d failed, %d skipped" % (RESULTS.passed, RESULTS.failed, RESULTS.skipped))
    if RESULTS.failed:
        return 1
    if not ran:
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
