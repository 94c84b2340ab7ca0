#!/usr/bin/python3
"""Object census of a free-threaded CPython (3.13t), against the real interpreter (stdlib only).

A free-threaded interpreter keeps its GC objects in mimalloc heaps, not in generation lists;
pymemd walks every thread's GC heaps and the pages of threads that exited, from outside. The
target here makes each of the paths that walk has to get right, then prints its own census:

  - worker threads allocate objects with a pre-header (instances with a __dict__, in the
    _GC_PRE heap) and without (__slots__ instances, tuples, in the GC heap), plus a tuple too
    big for a small page, and drop every third: holes on their own free lists;
  - each worker hands objects to the main thread and drops its own references, so that their
    reference counts are merged; the main thread frees half of them after taking its census:
    blocks freed by another thread, on the pages' xthread_free lists or their heaps' delayed
    lists (the target's own gc.get_objects() would have collected those into the free lists,
    so these frees come after it, and the census the target prints subtracts what it freed);
  - a thread allocates, keeps its objects and exits: its pages are abandoned to the
    interpreter's pool, and the main thread frees half of another list of its objects.

Cases: the census by type equals the target's Counter(type(o).__name__ for o in
gc.get_objects()) (adjusted as said) exactly; bytes of the types sized by object.__sizeof__
equal the target's sys.getsizeof sums; after gc.freeze(), the frozen objects are the census's
permanent generation and equal gc.get_freeze_count() (less what was freed); pymalloc's
allocated_blocks equals the target's sys.getallocatedblocks(), and allocated_bytes moves by exactly
the mimalloc block size of each object several threads allocate and another frees.

The interpreter comes from tests/integration/upstream-pythons.sh (scripts/test.sh runs it first);
without it every case is skipped, with the reason. Prints PASS/FAIL/SKIP lines and ends with
"N passed, M failed, K skipped".
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pymemdtest  # noqa: E402
from pymemdtest import RESULTS, Skip, case, clean_env, run_driver, short  # noqa: E402

TARGET = r'''
import gc, json, os, sys, threading
from collections import Counter
n_threads = int(sys.argv[1])
freeze = sys.argv[2] == "freeze"


class Obj(object):
    pass


class Slot(object):
    __slots__ = ("a", "b")


# Warm up what the ground truth uses afterwards, so that it leaves nothing behind then. No
# generator expression after the census: on a free-threaded build a function object is freed
# only by a collection (deferred reference counting), and a genexpr makes one.
w = Counter(["warm"])
w.update([type(x).__name__ for x in [w]])
w.subtract(Counter(["warm"]))
json.dumps({"a": [w, 1, 2]})
del w

keep = []
held = []
gone = []


def worker(i, ready, taken, park):
    objs = [Obj() for _ in range(900)] + [Slot() for _ in range(900)]
    given.append(objs)
    ready.release()
    taken.acquire()          # main holds its own references now
    given.clear()
    del objs                 # merged reference counts: main frees them, on this thread's pages
    mine = [Obj() for _ in range(2000 + 500 * i)]
    mine += [Slot() for _ in range(1000)]
    mine += [(i, j, str(j)) for j in range(700)]
    mine += [{"k": [j]} for j in range(300)]
    mine += [[j] for j in range(300)]
    mine.append(tuple(range(20000 + i)))   # 160 KB: a page of its own
    del mine[::3]
    keep.append(mine)
    ready.release()
    park.acquire()


def leaver():
    keep.append([Slot() for _ in range(1234)] + [Obj() for _ in range(321)])
    gone.append([Obj() for _ in range(1000)] + [Slot() for _ in range(1000)])


gc.collect()
gc.disable()
park = threading.Lock()
park.acquire()
for i in range(n_threads):
    ready = threading.Lock()
    ready.acquire()
    taken = threading.Lock()
    taken.acquire()
    given = []
    t = threading.Thread(target=worker, args=(i, ready, taken, park), daemon=True)
    t.start()
    ready.acquire()
    held.append(list(given[0]))
    taken.release()
    ready.acquire()
t = threading.Thread(target=leaver)
t.start()
t.join()
if freeze:
    gc.freeze()

out = [0, 0, 0, 0]
out[0] = gc.get_freeze_count()    # before the frees below: it would collect them
sizes = {"Obj": 0, "Slot": 0, "tuple": 0}
names = [type(o).__name__ for o in gc.get_objects()]
for o in gc.get_objects():
    n = type(o).__name__
    if n in sizes:
        sizes[n] += sys.getsizeof(o)
del o
c = Counter(names)
del names
# The frees of other threads' blocks, after the census.
dead = Counter()
for h in held + gone:
    for x in h[::2]:
        dead[type(x).__name__] += 1
        if not freeze:
            sizes[type(x).__name__] -= sys.getsizeof(x)
    del h[::2]
del x, h
c.subtract(dead)
for k in list(c):
    if c[k] <= 0:
        del c[k]
c["Counter"] += 2             # c and dead
out[1] = sum(dead.values())
os.write(1, (json.dumps({"pid": os.getpid(), "census": c, "freeze_count": out[0],
                         "freed": out[1], "sizes": sizes}) + "\n").encode())
os.read(0, 1)
'''

# sys.getallocatedblocks(): threads hand objects to the main thread, which frees them after their
# owners dropped theirs (blocks waiting on the pages' xthread_free lists and the heaps' delayed
# lists, which the target's own count would first collect), and a thread exits leaving its pages
# abandoned. pymemd reads while the target blocks in os.read(0, 1); then the target counts
# itself, the first thing it does once woken: the one block that differs is the buffer os.read
# had allocated before it blocked, freed before the count.
TARGET_BLOCKS = r'''
import os, sys, threading


class Obj(object):
    pass


class Slot(object):
    __slots__ = ("a",)


held = []
gone = []


def worker(ready, taken, park, given):
    objs = [Obj() for _ in range(900)] + [Slot() for _ in range(900)]
    given.append(objs)
    ready.release()
    taken.acquire()
    given.clear()
    del objs
    ready.release()
    park.acquire()


park = threading.Lock()
park.acquire()
for i in range(int(sys.argv[1])):
    ready = threading.Lock()
    ready.acquire()
    taken = threading.Lock()
    taken.acquire()
    given = []
    threading.Thread(target=worker, args=(ready, taken, park, given), daemon=True).start()
    ready.acquire()
    held.append(list(given[0]))
    taken.release()
    ready.acquire()
t = threading.Thread(target=lambda: gone.append([Obj() for _ in range(700)]))
t.start()
t.join()
for h in held + gone:
    h.clear()
del h
os.write(1, b"{\"pid\": %d}\n" % os.getpid())
if os.read(0, 1):
    blocks = sys.getallocatedblocks()
    os.write(1, b"%d\n" % blocks)
os.read(0, 1)
'''

# The bytes in use of the mimalloc heaps, differentially. Worker threads, all at once, each fill
# a list of PER bytes objects of one size (lists that exist throughout: nothing in the window
# resizes a list or a dict, which 3.13t may free later, through QSBR); main takes references to
# all of them and the workers drop theirs (their counts merge: main's references now free them,
# from another thread than the pages' owner). Before A: one thread does this for LEFT objects and
# exits (its pages abandoned to the interpreter's pool), and the workers do one round that main
# frees, so that whatever a first round sets up once is there in A too. The target waits in
# os.read(0, 1) in each state while pymemd reads it; woken, it counts its own blocks
# (sys.getallocatedblocks()) first, with every worker parked at the same point. A: before the
# round; B: after it; C: main has freed the round's objects and the LEFT ones. So B - A is
# threads x PER blocks of the objects' mimalloc block size, C - B less that and LEFT more.
# The GC is off; os.read's buffer (one block) is in each of pymemd's reads, in none of the
# target's counts.
TARGET_BYTES = r"""
import gc, os, sys, threading
n_threads, per, length, left = (int(a) for a in sys.argv[1:5])
size = sys.getsizeof(bytes(length))
# Worker i fills slots[i]; the last one is the thread that exits.
slots = [[None] * per for _ in range(n_threads)] + [[None] * left]
held = [None] * (n_threads * per + left)
go = [threading.Lock() for _ in slots]
done = [threading.Lock() for _ in slots]
for lk in go + done:
    lk.acquire()


def worker(i):
    mine = slots[i]
    while True:            # parked at the same point in A and in B
        go[i].acquire()
        for j in range(len(mine)):
            mine[j] = bytes(length)
        del j              # an int of its own while parked
        done[i].release()
        go[i].acquire()    # main holds its references now: drop ours (their counts merge)
        for j in range(len(mine)):
            mine[j] = None
        del j
        done[i].release()
        if i == n_threads:
            return


def step(ids):
    for i in ids:
        go[i].release()
    for i in ids:
        done[i].acquire()


def hand_over(ids):
    step(ids)
    for i in ids:
        for j in range(len(slots[i])):
            held[i * per + j] = slots[i][j]
    step(ids)


def free(n):
    for k in range(n):
        held[k] = None


def wait():
    if not os.read(0, 1):
        sys.exit(0)
    os.write(1, b"%d\n" % sys.getallocatedblocks())


leaver = threading.Thread(target=worker, args=(n_threads,))
leaver.start()
hand_over([n_threads])
leaver.join()
del leaver
workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n_threads)]
for w in workers:
    w.start()
del w
gc.collect()
gc.disable()
# A round before A, so that whatever the first round sets up once is there in A.
hand_over(range(n_threads))
free(n_threads * per)
os.write(1, b'{"pid": %d, "size": %d}\n' % (os.getpid(), size))
wait()                     # A
hand_over(range(n_threads))
wait()                     # B
free(len(held))
wait()                     # C
os.read(0, 1)
"""


def mi_block_size(size):
    """The block size mimalloc's bins give a request of size bytes (mi_bin() in
    Objects/mimalloc/page-queue.c, neither MI_ALIGN2W nor MI_ALIGN4W; small and medium sizes)."""
    def mi_bin(wsize):
        if wsize <= 1:
            return 1
        if wsize <= 8:
            return wsize
        w = wsize - 1
        b = w.bit_length() - 1
        return (b << 2) + ((w >> (b - 2)) & 3) - 3

    wsize = (size + 7) // 8
    b = mi_bin(wsize)
    while mi_bin(wsize + 1) == b:
        wsize += 1
    return wsize * 8


THREADS = 4


def ft_python():
    """The free-threaded 3.13t of upstream-pythons.sh's manifest, or Skip."""
    cache = os.environ.get("PYMEMD_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "pymemd")
    manifest = os.path.join(cache, "upstream", "interpreters.tsv")
    if not os.path.exists(manifest):
        raise Skip("%s is missing: run tests/integration/upstream-pythons.sh" % manifest)
    with open(manifest, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 3 and fields[0] == "upstream-3.13t":
                if fields[1] == "skip":
                    raise Skip("upstream-pythons.sh skipped 3.13t: %s" % fields[2])
                if os.path.exists(fields[2]):
                    return fields[2], fields[1]
    raise Skip("%s lists no usable upstream-3.13t" % manifest)


def census_of(pymemd, pid):
    """pymemd --once's PROCESS of pid (the census taken with the target stopped)."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        # The census of --once, with the pause budget of a busy machine: this test is about the
        # numbers, not the pause.
        f.write("max_census_pause = 10\n")
        conf = f.name
    try:
        r = subprocess.run([pymemd, "--once", "--pid", str(pid), "--config", conf],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.unlink(conf)
    if r.returncode != 0:
        raise pymemdtest.Fail("pymemd --once exited %d: %s" % (r.returncode,
                                                               short(r.stderr.decode(), 300)))
    procs = [p for p in json.loads(r.stdout)["processes"] if p["pid"] == pid]
    if not procs:
        raise pymemdtest.Fail("pid %d not in pymemd --once's output" % pid)
    return procs[0]


def by_name(objs):
    """pymemd's rows summed by __name__ (two types of one name are two rows), as a Counter
    of names would merge them."""
    count, size = {}, {}
    for t in objs["types"]:
        count[t["name"]] = count.get(t["name"], 0) + t["count"]
        size[t["name"]] = size.get(t["name"], 0) + t["bytes"]
    return count, size


def start(py, mode):
    return pymemdtest.Target("3.13t %s" % mode, [py, "-c", TARGET, str(THREADS), mode],
                             env=clean_env())


def test_census(c, pymemd):
    py, version = ft_python()
    t = start(py, "plain")
    try:
        p = census_of(pymemd, t.pid)
        objs = p.get("objects")
        if not isinstance(objs, dict):
            raise pymemdtest.Fail("no census: %s" % p.get("objects_error"))
        want = t.truth["census"]
        count, size = by_name(objs)
        diff = sorted((k, count.get(k, 0), want.get(k, 0)) for k in set(count) | set(want)
                      if count.get(k, 0) != want.get(k, 0))
        c.ok(not diff, "types (name, pymemd, target) that differ: %s" % (diff[:8],))
        total = sum(want.values())
        c.eq("objects.total", total, objs.get("total"))
        c.eq("objects.gc_get_objects_count", total, objs.get("gc_get_objects_count"))
        gens = {g["generation"]: g["count"] for g in objs.get("generations", [])}
        c.eq("permanent generation", 0, gens.get("permanent"))
        for name, b in sorted(t.truth["sizes"].items()):
            c.eq("bytes of %s (sys.getsizeof summed)" % name, b, size.get(name))
        c.note("CPython %s, %d objects, %d freed by other threads after the target's census, "
               "pause %.1f ms, %d KiB copied" % (
                   version, total, t.truth["freed"], objs["pause_seconds"] * 1e3,
                   objs["copied_bytes"] // 1024))
    finally:
        t.close()


def test_freeze(c, pymemd):
    py, version = ft_python()
    t = start(py, "freeze")
    try:
        p = census_of(pymemd, t.pid)
        objs = p.get("objects")
        if not isinstance(objs, dict):
            raise pymemdtest.Fail("no census: %s" % p.get("objects_error"))
        gens = {g["generation"]: g["count"] for g in objs.get("generations", [])}
        listed = sum(t.truth["census"].values())
        frozen = t.truth["freeze_count"] - t.truth["freed"]
        c.eq("generation 0 (what gc.get_objects() lists)", listed, gens.get("0"))
        c.eq("objects.gc_get_objects_count", listed, objs.get("gc_get_objects_count"))
        c.eq("permanent (gc.get_freeze_count() less the frozen objects freed since)", frozen,
             gens.get("permanent"))
        c.eq("objects.total", listed + frozen, objs.get("total"))
        c.note("%d frozen" % frozen)
    finally:
        t.close()


def test_blocks(c, pymemd):
    py, version = ft_python()
    t = pymemdtest.Target("3.13t blocks", [py, "-c", TARGET_BLOCKS, str(THREADS)],
                          env=clean_env())
    try:
        pymemdtest.wait_reading(t.pid, parked=True)
        p = census_of(pymemd, t.pid)
        got = (p.get("pymalloc") or {}).get("allocated_blocks")
        t.p.stdin.write(b"x")
        t.p.stdin.flush()
        own = int(t.next_line())
        c.eq("pymalloc.allocated_blocks (the target's sys.getallocatedblocks() + os.read's "
             "buffer)", own + 1, got)
        c.note("%s blocks" % got)
    finally:
        t.close()


def test_bytes(c, pymemd):
    py, version = ft_python()
    per, length, left = 6000, 150, 2500
    t = pymemdtest.Target("3.13t bytes", [py, "-c", TARGET_BYTES, str(THREADS), str(per),
                                          str(length), str(left)], env=clean_env())
    try:
        size = t.truth["size"]
        bsize = mi_block_size(size)
        got, own = [], []
        for state in "ABC":
            # Its line printed, the target still goes on to os.read, its workers to their locks.
            pymemdtest.wait_reading(t.pid, parked=True)
            pm = census_of(pymemd, t.pid).get("pymalloc") or {}
            got.append((pm.get("allocated_blocks"), pm.get("allocated_bytes")))
            t.p.stdin.write(b"x")
            t.p.stdin.flush()
            own.append(int(t.next_line()))
        if any(b is None or n is None for b, n in got):
            raise pymemdtest.Fail("pymalloc.allocated_blocks/allocated_bytes null: %s" % (got,))
        n = THREADS * per
        c.eq("the target's sys.getallocatedblocks(), B - A", n, own[1] - own[0])
        c.eq("the target's sys.getallocatedblocks(), C - B", -(n + left), own[2] - own[1])
        for i, state in enumerate("ABC"):
            c.eq("pymalloc.allocated_blocks at %s (the target's count + os.read's buffer)" % state,
                 own[i] + 1, got[i][0])
        c.eq("pymalloc.allocated_bytes, B - A (%d x %d-byte blocks)" % (n, bsize), n * bsize,
             got[1][1] - got[0][1])
        c.eq("pymalloc.allocated_bytes, C - B (%d + %d freed)" % (n, left), -(n + left) * bsize,
             got[2][1] - got[1][1])
        c.ok(bsize != size, "the request (%d bytes) should not be a bin size, so that the block "
             "size is what is summed" % size)
        c.note("%d objects of %d bytes in %d-byte blocks; bytes in use %d, %d, %d" % (
            n, size, bsize, got[0][1], got[1][1], got[2][1]))
    finally:
        t.close()


def run(pymemd):
    case("free-threaded census by type equals the target's own", test_census, pymemd)
    case("free-threaded census after gc.freeze(): the frozen objects", test_freeze, pymemd)
    case("free-threaded sys.getallocatedblocks() with other threads' frees pending",
         test_blocks, pymemd)
    case("free-threaded bytes in use of the heaps, allocated and freed by several threads",
         test_bytes, pymemd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", required=True)
    a = ap.parse_args()
    return run_driver("census of free-threaded CPython (mimalloc heaps)", run,
                      os.path.abspath(a.pymemd))


if __name__ == "__main__":
    sys.exit(main())
