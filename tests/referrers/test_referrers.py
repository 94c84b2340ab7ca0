#!/usr/bin/python3
"""Referrers against the target's own view, on every interpreter of the matrix.

Each target imports a module `leaky` that builds known holding structures around instances of
`Session`: a running function's local, a module-level dict cache, a list in a class attribute, a
closure, a __slots__ holder, an instance attribute, a deque, a generator's local, frame objects
(of a returned function, of a traceback, of a suspended generator), the builtins and sys
modules, the codec registry (no module holds it), a cycle with no root (the GC is disabled so it
stays), and one held only by itertools.repeat, a C type pymemd does not follow.
Once built it prints its own ground truth: for every object of gc.get_objects(), how many
of gc.get_referents(o) (what its tp_traverse visits) are Session instances, grouped by
type(o).__name__ (its own temporaries left out), then waits. pymemd --once --referrers Session
must give the same count, and referrers plus unfollowed must equal that grouping exactly; roots
must name the holders by their real names. On the free-threaded 3.13t of
tests/integration/upstream-pythons.sh (skipped, with the reason, without it) the same, and again
once a thread holding instances in a frame local has started and a collection has untracked the
modules, their dicts, the classes and the functions it made immortal: the chains run through them.

Prints PASS/FAIL/SKIP lines (tests/lib/pymemdtest.py) and ends with "N passed, M failed, K
skipped"; exit 1 on a FAIL.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pymemdtest  # noqa: E402
from pymemdtest import CHILDREN, Fail, Skip, case, clean_env, read_line, short  # noqa: E402

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

import sys, builtins, codecs
def _returned():
    held = Session()
    return sys._getframe()
returned_frame = _returned()  # a frame object that outlived its function: it owns its locals
def _raiser():
    doomed = Session()
    raise ValueError("kept")
try:
    _raiser()
except ValueError as e:
    kept_tb = e.__traceback__   # traceback -> traceback -> the raiser's frame -> its local
def _paused():
    inside = Session()
    yield 1
paused = _paused()
next(paused)
paused_frames = [paused.gi_frame]  # a suspended generator's frame object: the generator holds
                                   # its locals (3.11+), or this frame (up to 3.10)
builtins.leaky_builtin = Session()  # held only by the builtins module's dict
sys.leaky_sys = Session()           # held only by the sys module's dict
def _search(name, kept=Session()):  # held only by the codec registry's search functions
    return None
codecs.register(_search)
del _search
def _search_codec(name):            # its answer, kept only by the codec registry's cache
    if name != "leakycodec":
        return None
    def encode(text, errors="strict", kept=Session()):
        return text, len(text)
    return codecs.CodecInfo(encode, encode, name="leakycodec")
codecs.register(_search_codec)
codecs.lookup("leakycodec")
del _search_codec
codecs.register_error("leaky", lambda exc, kept=Session(): ("?", exc.end))  # an error handler
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

# A heap that moves between two requests: floats (nothing a walk reads) fill pools, which are
# freed again when asked to "move", and new instances take pools from the same arenas, pools the
# last walk did not read and the next copy therefore leaves out. They are held by a chain of
# tuples, not by a list, whose item array would be a new page outside the arenas (a miss of its
# own).
TARGET_MOVES = TARGET.replace("""
    sys.stdout.write(json.dumps(truth()) + "\\n")
    sys.stdout.flush()
    sys.stdin.read()
""", """
    junk = [i + 0.5 for i in range(20000)]
    sys.stdout.write(json.dumps(truth()) + "\\n")
    sys.stdout.flush()
    for line in sys.stdin:
        junk.clear()
        for _ in range(3000):  # small tuples: nothing new outside the arenas
            leaky.grown = (leaky.Session(), getattr(leaky, "grown", None))
        sys.stdout.write(json.dumps(truth()) + "\\n")
        sys.stdout.flush()
""")


def changing(setup, change):
    """TARGET whose serve() runs setup before its first answer, then for each line read runs
    change and answers again (both: lines of code indented as the function's body)."""
    return TARGET.replace("""
    sys.stdout.write(json.dumps(truth()) + "\\n")
    sys.stdout.flush()
    sys.stdin.read()
""", setup + """
    sys.stdout.write(json.dumps(truth()) + "\\n")
    sys.stdout.flush()
    for line in sys.stdin:""" + change + """
        sys.stdout.write(json.dumps(truth()) + "\\n")
        sys.stdout.flush()
""")


# A heap whose containers grow between two requests: a list and a dict of 1000 instances take 20000
# more each, held already (no new object that the last walk's pools would lack), so only their
# storage outside the arenas moves: from glibc's heap into a fresh mmap() (past its 128 KiB
# threshold), pages no walk has read yet. The list and the dict are the same objects, in pools
# the last walk read.
TARGET_GROWS = changing("""
    spare = [leaky.Session() for _ in range(20000)]
    leaky.growing_list = [leaky.Session() for _ in range(1000)]
    leaky.growing_dict = dict.fromkeys(leaky.growing_list[:])""", """
        leaky.growing_list.extend(spare)
        leaky.growing_dict.update(dict.fromkeys(spare))""")

# A target that replaces its list between two requests: the new list holds the same instances
# and more, its item array (168 KiB) in a fresh mmap(); the last walk never saw the list, so no
# holder names it. The spare instances are made before the first answer: the list is the only
# object new since, the newest of generation 0 (gc.disable(): the list never empties).
REPLACES_SETUP = """
    spare = [leaky.Session() for _ in range(20000)]
    leaky.replaced = [leaky.Session() for _ in range(1000)]"""
TARGET_REPLACES = changing(REPLACES_SETUP, """
        leaky.replaced = leaky.replaced + spare""")
# The same, with a collection of generation 0 right after: the new list is the newest of
# generation 1.
TARGET_REPLACES_AGED = changing(REPLACES_SETUP, """
        leaky.replaced = leaky.replaced + spare
        gc.collect(0)""")

# On a free-threaded build, the first thread started makes modules, their dicts, functions and
# classes immortal, and the next collection untracks them: gc.get_objects() no longer lists them,
# yet chains from sys.modules run through them. A thread holds instances in a frame local; the
# collection takes the cycle with no root, so it is made again after.
TARGET_FT = TARGET.replace("""
serve()
""", """
import threading
park, ready = threading.Lock(), threading.Lock()
park.acquire()
ready.acquire()
def parked():
    held = [leaky.Session() for _ in range(2)]   # another thread's frame local
    ready.release()
    park.acquire()
threading.Thread(target=parked, daemon=True).start()
ready.acquire()
gc.collect()
a, b = leaky.Session(), leaky.Session()        # a cycle with no root, again
a.peer, b.peer = b, a
del a, b
untracked = [m for m in ("leaky", "builtins", "sys") if gc.is_tracked(sys.modules[m])]
if untracked or gc.is_tracked(leaky.Registry) or gc.is_tracked(leaky._make):
    raise SystemExit("modules, classes and functions are still tracked: %r" % untracked)
serve()
""")

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
    "leaky.returned_frame": ("module global", 1),
    "leaky.kept_tb": ("module global", 1),
    "leaky.paused": ("module global", 1),
    "builtins.leaky_builtin": ("module global", 1),
    "sys.leaky_sys": ("module global", 1),
    "codecs.register() search functions": ("interpreter table", 1),
    "codecs search cache": ("interpreter table", 1),
    "codecs.register_error() handlers": ("interpreter table", 1),
}
UNREACHED = 3  # the cycle's two, and the one only itertools.repeat holds

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
    # The rest of the matrix: each suite's releases, debug builds (other offsets), builds
    # without PIE and interpreters embedded in another program.
    every, why = pymemdtest.debian_interpreters()
    if every is None:
        out.append(("debian (the rest of the matrix)", None, why))
    for label, cmd, _, why in every or ():
        if label not in [o[0] for o in out]:
            out.append((label, cmd[0] if cmd else None, why))
    out.append(("upstream-3.13",) + upstream_python("upstream-3.13"))
    return out


def upstream_python(label):
    """An interpreter of tests/integration/upstream-pythons.sh's manifest: (path, None) or
    (None, why not)."""
    cache = os.environ.get("PYMEMD_CACHE_DIR") or os.path.expanduser("~/.cache/pymemd")
    manifest = os.path.join(cache, "upstream", "interpreters.tsv")
    if not os.path.exists(manifest):
        return None, "%s is missing: run tests/integration/upstream-pythons.sh" % manifest
    with open(manifest, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 3 and fields[0] == label:
                if fields[1] == "skip":
                    return None, "upstream-pythons.sh skipped %s: %s" % (label, fields[2])
                if os.path.exists(fields[2]):
                    return fields[2], None
    return None, "%s lists no usable %s" % (manifest, label)


def spawn_target(python, tmp, target=TARGET):
    p = CHILDREN.spawn([python, "-c", target, tmp], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=clean_env())
    return p, json.loads(read_line(p, 60))


def referrers_of(doc):
    return dict((g["type"], [g["objects"], g["refs"]]) for g in doc["referrers"] + doc["unfollowed"])


def check_interpreter(c, python, why, pymemd, tmp, target=TARGET, more_roots=None):
    if python is None:
        raise Skip(why)
    p, truth = spawn_target(python, tmp, target)
    try:
        r = subprocess.run([pymemd, "--once", "--pid", str(p.pid), "--referrers", "Session"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                           universal_newlines=True)
        if r.returncode != 0:
            raise Fail("pymemd exited %d: %s" % (r.returncode, short(r.stderr)))
        doc = json.loads(r.stdout)
        c.eq("count", truth["count"], doc["count"])
        c.eq("referrers (the target's own gc.get_referents grouping)", truth["groups"],
             referrers_of(doc))
        c.eq("unfollowed", {"repeat": 1},
             dict((g["type"], g["objects"]) for g in doc["unfollowed"]))
        roots = dict((x["root"], (x["kind"], x["holds"])) for x in doc["roots"])
        for name, want in list(EXPECTED_ROOTS.items()) + list((more_roots or {}).items()):
            c.eq("root %s" % name, list(want), list(roots[name]) if name in roots else None)
        c.eq("weak", [[truth["weakref"], 1]], [[g["type"], g["objects"]] for g in doc["weak"]])
        c.eq("unreached", UNREACHED,
             sum(x["holds"] for x in doc["roots"] if x["kind"] == "unreached"))
        c.note("%d instances, %d referrer types, %d roots" % (
            doc["count"], len(doc["referrers"]), len(doc["roots"])))
    finally:
        CHILDREN.reap(p)


def check_http(c, python, pymemd, pymemctl, tmp):
    """The same answer over HTTP and through pymemctl, from a running daemon; the answers it
    keeps, and the rate limit."""
    p, truth = spawn_target(python, tmp)
    d = None
    try:
        # census_min_interval = 0: no window, but answers are kept all the same.
        d = pymemdtest.Pymemd(pymemd, ["--pid", str(p.pid), "--interval", "0.2",
                                       "--census-interval", "0"], "pymemd",
                              conf="census_min_interval = 0\n", env=clean_env()).start()
        base = "/api/v1/processes/%d/referrers?type=" % p.pid
        pymemdtest.wait_ok(d, [p.pid])
        r = d.get(base + "Session", timeout=60)
        c.eq("first request's status", 200, r.status)
        c.eq("first request's Age header (computed for it)", None, r.h("Age"))
        doc = r.json()
        c.eq("HTTP referrers", truth["groups"], referrers_of(doc))
        c.eq("HTTP count", truth["count"], doc["count"])
        st, err = d.status_json(base + "NoSuchType")
        c.eq("an unknown type's status", 404, st)
        # Without fresh=1 the kept answer answers, with its at and an Age header.
        r = d.get(base + "Session", timeout=60)
        c.eq("a second request's status", 200, r.status)
        c.eq("a second request's answer (the kept one)", doc, r.json())
        c.ok(r.h("Age") is not None and 0 <= int(r.h("Age")) <= 60,
             "a kept answer has an Age header of 0..60 s: %r" % r.h("Age"))
        # With fresh=1 and no window, a new one: another copy, another at.
        r = d.get(base + "Session&fresh=1", timeout=60)
        fresh = r.json()
        c.eq("fresh=1's Age header (computed for it)", None, r.h("Age"))
        c.ok(fresh["at"] > doc["at"], "fresh=1 was answered from a new copy: at %r, the first %r"
             % (fresh["at"], doc["at"]))
        c.eq("fresh=1's referrers", truth["groups"], referrers_of(fresh))
        # A census and a referrers walk need different pages outside the arenas (following
        # references reads a dict's entry table, a list's item array): each kind of request
        # remembers its own, so in turn every one stops the target once and walks after it is
        # resumed, and a census copies no more after a referrers walk than before it.
        seq = [("census", d.json("/api/v1/processes/%d/objects?fresh=1&top=1" % p.pid, timeout=60))
               for _ in range(2)]
        for kind in ("referrers", "census", "referrers"):
            path = base + "Session&fresh=1" if kind == "referrers" else \
                "/api/v1/processes/%d/objects?fresh=1&top=1" % p.pid
            seq.append((kind, d.json(path, timeout=60)))
        c.eq("census, census, referrers, census, referrers: stops, walked after resume",
             [[kind, 1, True] for kind, _ in seq],
             [[kind, x.get("stops"), x.get("walked_after_resume")] for kind, x in seq])
        c.eq("pages a census reads, before and after a referrers walk", seq[1][1]["pages_read"],
             seq[3][1]["pages_read"])
        c.eq("referrers taken between censuses", [truth["groups"]] * 2,
             [referrers_of(x) for kind, x in seq if kind == "referrers"])
        r = subprocess.run([pymemctl, "--url", "127.0.0.1:%d" % d.port, "referrers", str(p.pid),
                            "Session"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60, universal_newlines=True)
        for want in ("leaky._cache (module global)  holds 5",
                     "module leaky -> class Registry -> list pending"):
            c.ok(r.returncode == 0 and want in r.stdout, "pymemctl referrers (exit %d) lacks %r: %s"
                 % (r.returncode, want, short(r.stdout + r.stderr)))
        d.shutdown()
        d = None
        # Referrers copy the heap as a census does: inside census_min_interval a request is
        # answered with the kept answer for its type (fresh=1 or not), or, when there is none,
        # refused with 429 and Retry-After instead of stopping the target again.
        d = pymemdtest.Pymemd(pymemd, ["--pid", str(p.pid), "--interval", "0.2",
                                       "--census-interval", "0"], "pymemd",
                              conf="census_min_interval = 30\n", env=clean_env()).start()
        pymemdtest.wait_ok(d, [p.pid])
        first = d.json(base + "Session&fresh=1", timeout=60)
        r = d.get(base + "Session&fresh=1", timeout=60)
        c.eq("fresh=1 inside census_min_interval: status", 200, r.status)
        c.eq("fresh=1 inside census_min_interval: the kept answer", first, r.json())
        c.ok(r.h("Age") is not None and 0 <= int(r.h("Age")) <= 30,
             "fresh=1 inside census_min_interval: Age header of 0..30 s: %r" % r.h("Age"))
        r = d.get(base + "Registry&fresh=1", timeout=60)
        retry = r.h("Retry-After")
        c.eq("another type inside census_min_interval: status", 429, r.status)
        c.ok(retry and 0 < int(retry) <= 30, "429's Retry-After %r, expected 1..30" % retry)
    finally:
        if d is not None:
            d.shutdown()
        CHILDREN.reap(p)


def check_changed(c, python, pymemd, tmp, target, what, stops):
    """Referrers asked before the target changed its heap (target's "change" line), after, and
    again: the answer stays the target's own, each walk runs after resume, and each request stops
    the target as often as stops says."""
    p, truth = spawn_target(python, tmp, target)
    d = None
    try:
        d = pymemdtest.Pymemd(pymemd, ["--pid", str(p.pid), "--interval", "0.2",
                                       "--census-interval", "0"], "pymemd",
                              conf="census_min_interval = 0\n", env=clean_env()).start()
        pymemdtest.wait_ok(d, [p.pid])
        path = "/api/v1/processes/%d/referrers?type=Session&fresh=1" % p.pid
        docs = [d.json(path, timeout=60)]
        p.stdin.write(b"change\n")
        p.stdin.flush()
        changed = json.loads(read_line(p, 60))
        docs += [d.json(path, timeout=60) for _ in range(2)]
        c.eq("referrers before, after %s, and again" % what,
             [truth["groups"], changed["groups"], changed["groups"]],
             [referrers_of(x) for x in docs])
        c.eq("count before, after, again", [truth["count"], changed["count"], changed["count"]],
             [x["count"] for x in docs])
        c.eq("stops, walked after resume: before, after %s, again" % what,
             [[n, True] for n in stops],
             [[x.get("stops"), x.get("walked_after_resume")] for x in docs])
    finally:
        if d is not None:
            d.shutdown()
        CHILDREN.reap(p)


def check_moved(c, python, why, pymemd, tmp):
    """A referrers walk copies only the pools of the arenas the last one read (and whatever is new
    since): when the heap moved into pools it left out, the walk over the copy misses one, a walk
    of the running target learns them, and a second stop copies them; the answer stays the
    target's own, and the request after it stops the target once again."""
    if python is None:
        raise Skip(why)
    check_changed(c, python, pymemd, tmp, TARGET_MOVES, "the heap moved (a pool left out)",
                  [1, 2, 1])


def check_grown(c, python, why, pymemd, tmp):
    """A container that grew since the last referrers walk has its storage elsewhere, on pages the
    copy would lack; the last walk remembered the list and the dict as holders, and inside the
    next stop their storage as it is now is copied too: one stop, the walk after resume, and the
    answer the target's own (main: a second stop)."""
    if python is None:
        raise Skip(why)
    check_changed(c, python, pymemd, tmp, TARGET_GROWS, "the containers grew", [1, 1, 1])


def check_replaced(c, python, why, pymemd, tmp):
    """A list made since the last referrers walk (the target replaced its list by a longer one) is
    no holder the last walk knew; inside the next stop the newest objects of the young generations
    are visited, the new list among them, and its storage is copied too: one stop, the walk after
    resume, and the answer the target's own (main: a second stop)."""
    if python is None:
        raise Skip(why)
    check_changed(c, python, pymemd, tmp, TARGET_REPLACES, "the list was replaced", [1, 1, 1])


def check_replaced_aged(c, python, why, pymemd, tmp):
    """As check_replaced, the new list moved to generation 1 by a collection before the request:
    the newest of generation 1 are visited too."""
    if python is None:
        raise Skip(why)
    check_changed(c, python, pymemd, tmp, TARGET_REPLACES_AGED,
                  "the list was replaced, then generation 0 collected", [1, 1, 1])


def run(args, tmp):
    with open(os.path.join(tmp, "leaky.py"), "w") as f:
        f.write(LEAKY)
    for label, path, why in interpreters():
        case(label, check_interpreter, path, why, args.pymemd, tmp)
    ft, why = upstream_python("upstream-3.13t")
    case("upstream-3.13t", check_interpreter, ft, why, args.pymemd, tmp)
    case("upstream-3.13t, a thread started: modules, classes, functions untracked",
         check_interpreter, ft, why, args.pymemd, tmp, TARGET_FT,
         {"thread 2: parked(): held": ("thread frame local", 2)})
    case("http+pymemctl", check_http, sys.executable, args.pymemd, args.pymemctl, tmp)
    # Pools of 4 KiB in arenas of 256 KiB (up to 3.9), of 16 KiB in 1 MiB (3.10 on), the newest.
    for label, path, why in interpreters():
        if label.startswith("pyenv-3.8") or label in ("system-3.11", "debian-3.15"):
            case(label + ", the heap moved", check_moved, path, why, args.pymemd, tmp)
        if label.startswith("pyenv-3.11") or label in ("debian-3.13", "debian-3.15"):
            case(label + ", containers grew", check_grown, path, why, args.pymemd, tmp)
            case(label + ", a list replaced", check_replaced, path, why, args.pymemd, tmp)
            case(label + ", a list replaced, one collection since", check_replaced_aged, path, why,
                 args.pymemd, tmp)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", required=True)
    ap.add_argument("--pymemctl", required=True)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP all: reading other processes needs root or CAP_SYS_PTRACE")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        return pymemdtest.run_driver("referrers against the target's own gc.get_referents()",
                                     run, args, tmp)


if __name__ == "__main__":
    sys.exit(main())
