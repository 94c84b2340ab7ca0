# -*- coding: utf-8 -*-
"""Workload for pymemd's integration tests: an ordinary Python program that
sets up a known GC/pymalloc state, prints what the interpreter says about
itself (the ground truth) as ONE line of JSON on stdout, and then sits still.

Runs unchanged on CPython 3.6 through 3.15: keep to syntax 3.6 accepts (no
walrus, no f-string '=' specifier, no dataclasses, no positional-only params).

    python3.X target.py [--threads N] [--freeze] [--disable] [--garbage N]
                        [--tag MARKER]

After printing, the main thread blocks in os.read(0, 1) without allocating
until stdin reaches EOF (the driver closes it) or the process is killed.
The values are taken in this order, on purpose:
  1. the census over gc.get_objects(), then sys._debugmallocstats() (fd 2
     redirected to a temp file), parsed: after the census, whose kept results
     could open a new arena after the arenas were counted;
  2. gc.get_stats(), get_threshold(), isenabled(), get_freeze_count(),
     len(gc.garbage), threading.active_count();
  3. sys.getallocatedblocks(), then gc.get_count() last of all,
so that what runs between the reading of a value and the moment the process
goes quiet is as small as possible.  Everything built after that (the JSON
text, the encoded bytes) is kept alive while waiting, so allocated blocks
can only grow by a handful after printing, never shrink.
"""

import gc
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
import types

# Everything the process must keep alive while it waits.
KEEP = []


def parse_args(argv):
    opts = {"threads": 0, "freeze": False, "disable": False, "garbage": 0,
            "tag": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--threads":
            opts["threads"] = int(argv[i + 1])
            i += 2
        elif a == "--garbage":
            opts["garbage"] = int(argv[i + 1])
            i += 2
        elif a == "--tag":
            opts["tag"] = argv[i + 1]
            i += 2
        elif a == "--freeze":
            opts["freeze"] = True
            i += 1
        elif a == "--disable":
            opts["disable"] = True
            i += 1
        else:
            sys.stderr.write("target.py: unknown argument %r\n" % (a,))
            sys.exit(2)
    return opts


class Node(object):
    """A small GC-tracked object with a __dict__, linked into cycles."""

    def __init__(self, i):
        self.i = i
        self.other = None
        self.payload = [i, str(i)]


def make_cycles(n):
    """n Node objects in rings of 10, each ring referring back to itself."""
    rings = []
    ring = []
    for i in range(n):
        node = Node(i)
        if ring:
            ring[-1].other = node
        ring.append(node)
        if len(ring) == 10:
            ring[-1].other = ring[0]
            rings.append(ring)
            ring = []
    if ring:
        ring[-1].other = ring[0]
        rings.append(ring)
    return rings


def _gen(n):
    x = [n]
    yield x


@types.coroutine
def _suspend():
    yield


async def _coro(n):
    await _suspend()
    return n


async def _agen(n):
    yield n


def _frame(n):
    return sys._getframe()


class Row(tuple):
    """Variable-sized: basicsize + itemsize * len, and a class of the test's own (plain tuples
    are also made by the interpreter while the ground truth is printed)."""


def make_sized():
    """Objects whose sizes are not all the same: Row of several lengths; generators,
    coroutines, async generators and frame objects, whose size is not basicsize + itemsize *
    ob_size but follows from their code object."""
    out = [Row(range(i % 9)) for i in range(50)]
    for i in range(20):
        g = _gen(i)
        next(g)
        c = _coro(i)
        c.send(None)
        out += [g, c, _agen(i), _frame(i)]
    return out


def make_garbage(n):
    """n unreachable objects, each in a reference cycle with itself."""
    for i in range(n):
        node = Node(i)
        node.other = node
    node = None


_NUM = r"([0-9][0-9,]*)"


def debug_malloc_stats():
    """Run sys._debugmallocstats() with the C-level stderr (fd 2) redirected
    to a temporary file and pull the arena numbers out of its text.

    Lines used (identical wording in 3.6 ... 3.13 and Debian 3.11):
        # arenas allocated current         =                    7
        # arenas highwater mark            =                    7
        7 arenas * 262144 bytes/arena      =            1,835,008
    ARENA_SIZE is 256 KiB before 3.10 and 1 MiB from 3.10 on.  With pymalloc
    off (PYTHONMALLOC=malloc) the function prints nothing useful and every
    value is None."""
    res = {"arenas": None, "arenas_highwater": None, "arena_size": None,
           "text": None}
    fn = getattr(sys, "_debugmallocstats", None)
    if fn is None:
        return res
    tmp = tempfile.TemporaryFile()
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(tmp.fileno(), 2)
        fn()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    tmp.seek(0)
    text = tmp.read().decode("utf-8", "replace")
    tmp.close()
    m = re.search(r"^# arenas allocated current\s*=\s*" + _NUM, text, re.M)
    if m:
        res["arenas"] = int(m.group(1).replace(",", ""))
    m = re.search(r"^# arenas highwater mark\s*=\s*" + _NUM, text, re.M)
    if m:
        res["arenas_highwater"] = int(m.group(1).replace(",", ""))
    m = re.search(r"^" + _NUM + r" arenas \* " + _NUM + r" bytes/arena", text,
                  re.M)
    if m:
        res["arena_size"] = int(m.group(2).replace(",", ""))
    # Only the lines that were parsed, for the report; not the whole table.
    keep = []
    for line in text.splitlines():
        if "arena" in line and not line.startswith("# arena map"):
            keep.append(line.strip())
    res["text"] = keep
    return res


def start_threads(n, stop):
    """Start n threads that block on `stop` and return once every one of
    them is parked inside Event.wait(), so none of them allocates after the
    ground truth is taken."""
    threads = []
    for i in range(n):
        t = threading.Thread(target=stop.wait, name="pymemd-idle-%d" % i)
        t.daemon = True
        t.start()
        threads.append(t)
    cond = getattr(stop, "_cond", None)
    waiters = getattr(cond, "_waiters", None)
    deadline = time.time() + 10.0
    if waiters is not None:
        while len(waiters) < n and time.time() < deadline:
            time.sleep(0.01)
    time.sleep(0.1)
    return threads


def main():
    opts = parse_args(sys.argv[1:])
    stop = threading.Event()
    KEEP.append(stop)

    gc.set_threshold(777, 55, 33)

    # A few thousand objects in reference cycles, kept alive.
    KEEP.append(make_cycles(3000))
    KEEP.append(make_sized())

    if opts["threads"]:
        KEEP.append(start_threads(opts["threads"], stop))

    if opts["garbage"]:
        gc.set_debug(gc.DEBUG_SAVEALL)
        make_garbage(opts["garbage"])
        gc.collect()
        gc.set_debug(0)

    # Full collection, then younger ones, so that every generation's count
    # is known and the generation 1 and 2 counts are not zero: a full
    # collection zeroes all counts; collect(1) adds 1 to generation 2's count,
    # each collect(0) adds 1 to generation 1's count.
    gc.collect()
    gc.collect(1)
    gc.collect(0)
    gc.collect(0)

    if opts["freeze"] and hasattr(gc, "freeze"):
        gc.freeze()

    if opts["disable"]:
        gc.disable()

    # Some fresh dicts: generation 0 count is then clearly non-zero (and far
    # below the threshold of 777, so no collection runs from here on).
    fresh = []
    for i in range(60):
        fresh.append({"i": i, "s": "x" * (i % 7)})
    KEEP.append(fresh)

    # Pre-build the result so that only values are stored below.
    truth = {
        "version": platform.python_version(),
        "hexversion": sys.hexversion,
        "implementation": platform.python_implementation(),
        "pid": os.getpid(),
        "executable": sys.executable,
        "argv": sys.argv[1:],
        "get_count": None,
        "get_threshold": None,
        "get_stats": None,
        "isenabled": None,
        "get_freeze_count": None,
        "garbage": None,
        "allocated_blocks": None,
        "active_count": None,
        "arenas": None,
        "arenas_highwater": None,
        "arena_size": None,
        "debugmallocstats": None,
    }
    KEEP.append(truth)
    has_freeze_count = hasattr(gc, "get_freeze_count")

    # 1. The target's own object census, as objgraph takes it: type(o).__name__ counted over
    # gc.get_objects(). Its temporaries are gone before the gc values below are read.
    # With it, per name, the bytes sys.getsizeof gives, for the names whose every object is sized
    # by object.__sizeof__ (basicsize + itemsize * |ob_size|) or is a generator, coroutine, async
    # generator or frame: the sizes pymemd reports. Other types' __sizeof__ counts more than the
    # object (a dict its table, a list its items).
    census = {}
    census_bytes = {}
    mixed = set()
    plain = object.__sizeof__
    special = ("generator", "coroutine", "async_generator", "frame")
    objs = gc.get_objects()
    for o in objs:
        name = type(o).__name__
        census[name] = census.get(name, 0) + 1
        if type(o).__sizeof__ is plain or name in special:
            census_bytes[name] = census_bytes.get(name, 0) + sys.getsizeof(o)
        else:
            mixed.add(name)
    for name in mixed:
        census_bytes.pop(name, None)
    objs = o = name = mixed = None
    # Serialised now: encoding a large dict after the gc values would move them (tuples that
    # go to the free list are not counted as freed by gc.get_count()).
    census_json = json.dumps(census, sort_keys=True)
    census_bytes_json = json.dumps(census_bytes, sort_keys=True)
    census = census_bytes = None

    # 1b. pymalloc arenas: after the census, whose kept results could open an arena, and before the
    # gc values, which its own allocations would move.
    ms = debug_malloc_stats()
    truth["arenas"] = ms["arenas"]
    truth["arenas_highwater"] = ms["arenas_highwater"]
    truth["arena_size"] = ms["arena_size"]
    truth["debugmallocstats"] = ms["text"]
    ms = None

    # 2. GC and thread values.
    truth["get_stats"] = gc.get_stats()
    truth["get_threshold"] = gc.get_threshold()
    truth["isenabled"] = gc.isenabled()
    if has_freeze_count:
        truth["get_freeze_count"] = gc.get_freeze_count()
    truth["garbage"] = len(gc.garbage)
    truth["active_count"] = threading.active_count()
    # 3. Last of all.
    truth["allocated_blocks"] = sys.getallocatedblocks()
    truth["get_count"] = gc.get_count()

    text = json.dumps(truth, sort_keys=True)
    line = (text[:-1] + ', "census": ' + census_json + ', "census_bytes": ' + census_bytes_json +
            "}\n").encode("utf-8")
    KEEP.append(line)
    os.write(1, line)

    # Quiescent: block without allocating until stdin is closed.
    while True:
        try:
            if not os.read(0, 1):
                break
        except KeyboardInterrupt:
            break
        except OSError:
            break


if __name__ == "__main__":
    main()
