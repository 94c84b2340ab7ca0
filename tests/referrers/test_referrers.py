#!/usr/bin/python3
"""Referrers against the target's own view, on every interpreter of the matrix.

Each target imports a module `leaky` that builds known holding structures around instances of
`Session`: a running function's local, a module-level dict cache, a list in a class attribute, a closure, a __slots__
holder, an instance attribute, a deque, a generator's local, a cycle with no root (the GC is
disabled so it stays), and one held only by itertools.repeat, a C type pymemd does not follow.
Once built it prints its own ground truth: for every object of gc.get_objects(), how many
of gc.get_referents(o) (what its tp_traverse visits) are Session instances, grouped by
type(o).__name__ (its own temporaries left out), then waits. pymemd --once --referrers Session
must give the same count, and referrers plus unfollowed must equal that grouping exactly; roots
must name the holders by their real names.

Prints PASS/FAIL/SKIP lines and ends with "N passed, M failed, K skipped"; exit 1 on a FAIL.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pymemdtest  # noqa: E402
from pymemdtest import CHILDREN, clean_env, read_line, short  # noqa: E402

LEAKY = r'''
import collections, itertools

class Session(object):
    def ping(self):
        return self

class Registry(object):
    pending = []            # a list in a class attribute

class Slotted(object):
    __slots__ = ("first", "second")

class Holder(object):
    pass

_cache = {}                 # a module-level dict cache
for i in range(5):
    _cache["k%d" % i] = Session()
Registry.pending.extend(Session() for _ in range(3))

def _make():
    captured = Session()
    def handler():
        return captured     # a closure
    return handler
callback = _make()

slotted = Slotted()
slotted.first = Session()
slotted.second = Session()
holder = Holder()
holder.session = Session()  # an instance attribute
queue = collections.deque(Session() for _ in range(70))  # two deque blocks

def _worker():
    local = Session()
    yield 1
worker = _worker()
next(worker)                # a generator's local

a, b = Session(), Session() # a cycle with no root
a.peer, b.peer = b, a
del a, b
forever = itertools.repeat(Session())  # held only by a C type pymemd does not follow

import weakref
pair = (Session(), 1)
bag = {Session()}
frozen = frozenset([Session()])
ordered = collections.OrderedDict(first=Session())
ordered[Session()] = 1      # a key: the OrderedDict's node and its dict entry both refer to it
by_key = {Session(): "x"}
factory = collections.defaultdict(list)
factory["s"] = Session()
weak_target = Session()
weak = weakref.ref(weak_target)  # weak: listed apart, not holding
class SubDict(dict):
    pass
subdict = SubDict(s=Session())
class SubList(list):
    pass
sublist = SubList([Session()])
exposed = Holder()
exposed.session = Session()
vars(exposed)               # its __dict__ made real
bound = Session().ping      # a bound method's __self__
'''

TARGET = r'''
import gc, json, sys
gc.disable()
sys.path.insert(0, sys.argv[1])
import leaky

def truth():
    objs = gc.get_objects()
    ids = set(id(o) for o in objs if type(o) is leaky.Session)
    groups = {}
    for o in objs:
        if o is objs or o is ids:
            continue
        if type(o).__name__ == "frame" and o.f_code is truth.__code__:
            continue        # up to 3.10 this running frame is a GC object
        n = sum(1 for r in gc.get_referents(o) if id(r) in ids)
        if n:
            g = groups.setdefault(type(o).__name__, [0, 0])
            g[0] += 1
            g[1] += n
    return {"count": len(ids), "groups": groups, "weakref": type(leaky.weak).__name__}

def serve():
    pending = [leaky.Session() for _ in range(4)]  # a running frame's local
    sys.stdout.write(json.dumps(truth()) + "\n")
    sys.stdout.flush()
    sys.stdin.read()

serve()
'''

# root -> (kind, instances held) that every interpreter must report.
EXPECTED_ROOTS = {
    "leaky._cache": ("module global", 5),
    "leaky.Registry.pending": ("class attribute", 3),
    "leaky.callback": ("module global", 1),
    "leaky.slotted": ("module global", 2),
    "leaky.holder": ("module global", 1),
    "leaky.queue": ("module global", 70),
    "leaky.worker": ("module global", 1),
    "leaky.pair": ("module global", 1),
    "leaky.bag": ("module global", 1),
    "leaky.frozen": ("module global", 1),
    "leaky.ordered": ("module global", 2),
    "leaky.by_key": ("module global", 1),
    "leaky.factory": ("module global", 1),
    "leaky.weak_target": ("module global", 1),
    "leaky.subdict": ("module global", 1),
    "leaky.sublist": ("module global", 1),
    "leaky.exposed": ("module global", 1),
    "leaky.bound": ("module global", 1),
    "thread 1: serve(): pending": ("thread frame local", 4),
}
UNREACHED = 3  # the cycle's two, and the one only itertools.repeat holds

RESULTS = {"PASS": 0, "FAIL": 0, "SKIP": 0}


def report(status, label, msg):
    RESULTS[status] += 1
    print("%s %s: %s" % (status, label, msg), flush=True)


def interpreters():
    out = []
    for minor in range(8, 14):
        label, path = pymemdtest.pyenv_python(minor)
        out.append((label or "pyenv-3.%d" % minor, path,
                    None if path else "no pyenv 3.%d installed" % minor))
    sysp = "/usr/bin/python3.11"
    out.append(("system-3.11", sysp if os.path.exists(sysp) else None,
                None if os.path.exists(sysp) else "no %s" % sysp))
    deb = os.path.expanduser("~/.cache/pymemd/debian/bin")
    for m in ("3.13", "3.14", "3.15"):
        p = os.path.join(deb, "debian-python" + m)
        ok = os.path.isfile(p) and os.access(p, os.X_OK)
        out.append(("debian-" + m, p if ok else None,
                    None if ok else "no %s (tests/integration/debian-pythons.sh makes it)" % p))
    # Later 3.13 releases visit a managed dict before its inline values (gh-130327): their table
    # is not 3.13.0's (layout.h refs.managed_dict_first).
    for name in ("debian-forky-3.13", "debian-sid-3.13"):
        p = os.path.join(deb, name)
        ok = os.path.isfile(p) and os.access(p, os.X_OK)
        out.append((name, p if ok else None,
                    None if ok else "no %s (tests/integration/debian-pythons.sh makes it)" % p))
    return out


def check(label, python, pymemd, tmp):
    p = CHILDREN.spawn([python, "-c", TARGET, tmp], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=clean_env())
    try:
        truth = json.loads(read_line(p, 60))
        r = subprocess.run([pymemd, "--once", "--pid", str(p.pid), "--referrers", "Session"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                           universal_newlines=True)
        if r.returncode != 0:
            return report("FAIL", label, "pymemd exited %d: %s" % (r.returncode, short(r.stderr)))
        doc = json.loads(r.stdout)
        got = {}
        for g in doc["referrers"] + doc["unfollowed"]:
            got[g["type"]] = [g["objects"], g["refs"]]
        problems = []
        if doc["count"] != truth["count"]:
            problems.append("count %d, the target says %d" % (doc["count"], truth["count"]))
        if got != truth["groups"]:
            problems.append("referrers %s, the target's own %s" % (sorted(got.items()),
                                                                    sorted(truth["groups"].items())))
        unf = dict((g["type"], g["objects"]) for g in doc["unfollowed"])
        if unf != {"repeat": 1}:
            problems.append("unfollowed %s, expected only repeat" % unf)
        roots = dict((x["root"], (x["kind"], x["holds"])) for x in doc["roots"])
        for name, want in EXPECTED_ROOTS.items():
            if roots.get(name) != want:
                problems.append("root %s: %s, expected %s" % (name, roots.get(name), want))
        weak = [(g["type"], g["objects"]) for g in doc["weak"]]
        if weak != [(truth["weakref"], 1)]:
            problems.append("weak %s, expected one %s" % (weak, truth["weakref"]))
        unreached = sum(x["holds"] for x in doc["roots"] if x["kind"] == "unreached")
        if unreached != UNREACHED:
            problems.append("%d unreached, expected %d" % (unreached, UNREACHED))
        if problems:
            return report("FAIL", label, "; ".join(problems))
        report("PASS", label, "%d instances, %d referrer types, %d roots" % (
            doc["count"], len(got), len(doc["roots"])))
    finally:
        CHILDREN.reap(p)


def check_http(python, pymemd, pymemctl, tmp):
    """The same answer over HTTP and through pymemctl, from a running daemon."""
    label = "http+pymemctl"
    p = CHILDREN.spawn([python, "-c", TARGET, tmp], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=clean_env())
    d = None
    try:
        truth = json.loads(read_line(p, 60))
        # census_min_interval = 0: this case checks the answers, one request after another;
        # the rate limit is checked below with a daemon that has it.
        d = pymemdtest.Pymemd(pymemd, ["--pid", str(p.pid), "--interval", "0.2",
                                       "--census-interval", "0"], "pymemd",
                              conf="census_min_interval = 0\n", env=clean_env()).start()
        port = d.port
        url = "http://127.0.0.1:%d/api/v1/processes/%d" % (port, p.pid)
        pymemdtest.wait_ok(d, [p.pid])
        with urllib.request.urlopen(url + "/referrers?type=Session", timeout=60) as r:
            doc = json.load(r)
        got = dict((g["type"], [g["objects"], g["refs"]])
                   for g in doc["referrers"] + doc["unfollowed"])
        problems = []
        if got != truth["groups"] or doc["count"] != truth["count"]:
            problems.append("HTTP referrers %s, the target's own %s" % (
                sorted(got.items()), sorted(truth["groups"].items())))
        try:
            urllib.request.urlopen(url + "/referrers?type=NoSuchType", timeout=60)
            problems.append("an unknown type was not refused")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                problems.append("an unknown type got HTTP %d, not 404" % e.code)
        r = subprocess.run([pymemctl, "--url", "127.0.0.1:%d" % port, "referrers", str(p.pid),
                            "Session"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60, universal_newlines=True)
        for want in ("leaky._cache (module global)  holds 5",
                     "module leaky -> class Registry -> list pending"):
            if r.returncode != 0 or want not in r.stdout:
                problems.append("pymemctl referrers (exit %d) lacks %r: %s" % (
                    r.returncode, want, short(r.stdout + r.stderr)))
        # Referrers copy the heap as a census does: a second request inside census_min_interval
        # is refused with 429 and Retry-After instead of stopping the target again.
        d.shutdown()
        d = pymemdtest.Pymemd(pymemd, ["--pid", str(p.pid), "--interval", "0.2",
                                       "--census-interval", "0"], "pymemd",
                              conf="census_min_interval = 30\n", env=clean_env()).start()
        url = "http://127.0.0.1:%d/api/v1/processes/%d" % (d.port, p.pid)
        pymemdtest.wait_ok(d, [p.pid])
        with urllib.request.urlopen(url + "/referrers?type=Session", timeout=60) as r:
            json.load(r)
        try:
            urllib.request.urlopen(url + "/referrers?type=Session", timeout=60)
            problems.append("a second request inside census_min_interval was answered")
        except urllib.error.HTTPError as e:
            retry = e.headers.get("Retry-After")
            if e.code != 429 or not retry or not 0 < int(retry) <= 30:
                problems.append("a second request inside census_min_interval got HTTP %d, "
                                "Retry-After %r (expected 429, 1..30)" % (e.code, retry))
        if problems:
            return report("FAIL", label, "; ".join(problems))
        report("PASS", label, "HTTP and pymemctl agree with the target; a second request "
               "inside census_min_interval gets 429")
    finally:
        if d is not None:
            d.shutdown()
        CHILDREN.reap(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", required=True)
    ap.add_argument("--pymemctl", required=True)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP all: reading other processes needs root or CAP_SYS_PTRACE")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "leaky.py"), "w") as f:
            f.write(LEAKY)
        try:
            for label, path, why in interpreters():
                if not path:
                    report("SKIP", label, why)
                    continue
                try:
                    check(label, path, args.pymemd, tmp)
                except Exception as e:  # one interpreter's failure is reported, not fatal
                    report("FAIL", label, "%s: %s" % (type(e).__name__, short(str(e))))
            try:
                check_http(sys.executable, args.pymemd, args.pymemctl, tmp)
            except Exception as e:
                report("FAIL", "http+pymemctl", "%s: %s" % (type(e).__name__, short(str(e))))
        finally:
            CHILDREN.stop_all()
    print("%d passed, %d failed, %d skipped" % (RESULTS["PASS"], RESULTS["FAIL"], RESULTS["SKIP"]))
    return 1 if RESULTS["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
