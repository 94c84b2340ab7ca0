# -*- coding: utf-8 -*-
"""Workload for the free-threaded comparison of run_matrix.py (CPython 3.13t and later).

On a free-threaded build each thread keeps the GC allocations minus deallocations it made since
it last added them to generation 0's count in a counter of its own (_PyThreadStateImpl
gc.alloc_count), and adds them only every 512 (Python/gc_free_threading.c).  pymemd reports
generation 0's count as the global count plus every thread's unflushed share; the target's own
gc.get_count() adds only the calling thread's, so it cannot print that number while the other
threads hold theirs.  This program makes it print it exactly, afterwards:

  1. Worker threads, each with its own plan, start from a flushed count (gc.get_count() flushes
     the caller's share) and then leave a known kind of share unflushed:
       allocating  +300 objects;
       crossing    1300 objects, so the count was flushed twice on the way (about +276 left);
       freeing     400 objects flushed, then 300 of them freed (about -300: negative shares);
       idle        nothing.
     Each then parks on a lock, from where it allocates nothing.
  2. Main prints the ground truth as ONE line of JSON (gc.get_stats(), get_threshold(),
     isenabled(), threading.active_count(), len(gc.garbage), and gc.get_count() last) and blocks
     in os.read(0, 1): every thread is now still.  The driver runs pymemd.
  3. The driver writes one byte.  The workers wake one after the other; each flushes its share
     at once (gc.get_count() is the first thing it calls; nothing between the wake-up and the
     call allocates) and records what get_count() said, then parks for good.  Main, the last,
     flushes its own share (what it allocated since the truth was taken) and prints a second
     line: {"flushed": gc.get_count(), "after_each": [...]}.  flushed[0] is the global count
     plus every thread's share as they were while pymemd read: what pymemd must report.  The
     differences between consecutive after_each values are the workers' shares.
  4. Blocks until stdin reaches EOF.

Only objects of a class of its own are allocated on purpose: no free list, so each allocation
and each deallocation is counted.
"""

import _thread
import gc
import json
import os
import platform
import sys
import threading

PLANS = [
    ("allocating", 300, 0),
    ("crossing", 1300, 0),
    ("freeing", 400, 300),
    ("idle", 0, 0),
]


class Obj(object):
    pass


def locked():
    lock = _thread.allocate_lock()
    lock.acquire()
    return lock


def worker(i, n_alloc, n_free, parked, park, nxt, results, forever):
    get_count = gc.get_count
    keep = []
    get_count()
    for _ in range(n_alloc):
        keep.append(Obj())
    if n_free:
        get_count()
        del keep[:n_free]
    parked.release()
    park.acquire()
    r = get_count()
    results[i] = r[0]
    nxt.release()
    forever.acquire()
    keep.append(None)


def main():
    if not getattr(sys, "_is_gil_enabled", None) or sys._is_gil_enabled():
        sys.stderr.write("ft_target.py: needs a free-threaded CPython with the GIL disabled\n")
        sys.exit(2)
    get_count = gc.get_count
    # No collection may start by itself: only the ones below, so the counts are known.
    gc.set_threshold(100000, 25, 35)
    gc.collect()
    gc.collect(1)
    gc.collect(0)

    n = len(PLANS)
    parked = [locked() for _ in range(n)]
    park = [locked() for _ in range(n)]
    final = locked()
    forever = locked()
    results = [None] * n
    threads = []
    for i, (name, n_alloc, n_free) in enumerate(PLANS):
        nxt = park[i + 1] if i + 1 < n else final
        t = threading.Thread(target=worker, name="pymemd-ft-" + name,
                             args=(i, n_alloc, n_free, parked[i], park[i], nxt, results, forever))
        t.daemon = True
        t.start()
        threads.append(t)
    for p in parked:
        p.acquire()

    truth = {
        "version": platform.python_version(),
        "hexversion": sys.hexversion,
        "pid": os.getpid(),
        "plans": [p[0] for p in PLANS],
        "get_stats": gc.get_stats(),
        "get_threshold": gc.get_threshold(),
        "isenabled": gc.isenabled(),
        "garbage": len(gc.garbage),
        "active_count": threading.active_count(),
        "get_count": None,
    }
    truth["get_count"] = get_count()
    os.write(1, (json.dumps(truth, sort_keys=True) + "\n").encode("utf-8"))

    # Still until the driver has read; then the flushes, with nothing allocated in between.
    wake = park[0]
    if os.read(0, 1):
        wake.release()
        final.acquire()
        flushed = get_count()
        os.write(1, (json.dumps({"flushed": flushed, "after_each": results}) + "\n")
                 .encode("utf-8"))
    while True:
        try:
            if not os.read(0, 1):
                break
        except (KeyboardInterrupt, OSError):
            break
    threads.append(None)


if __name__ == "__main__":
    main()
