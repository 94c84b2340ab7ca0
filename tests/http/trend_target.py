"""A target that changes in known steps, for tests/http/test_trends.py.

    python3 trend_target.py --tag TAG [--leak N] [--megabytes M]

The collector is off (gc.disable()), so only the steps collect. Each line read on stdin is one
step: it keeps N more `Leak` instances (in reference cycles) and M MiB more of written bytes,
runs gc.collect(0) twice and gc.collect(1) once, and prints, once quiescent, one JSON line of its
own ground truth: gc.get_stats(), gc.get_count(), sys.getallocatedblocks() and the census of
gc.get_objects() by type name for Leak and Flat (whose 100 instances never change). Then it
sits still in the next read. At start it prints the same line for step 0. EOF ends it.
"""
import argparse
import gc
import json
import os
import platform
import sys
from collections import Counter


class Leak(object):
    def __init__(self):
        self.me = self    # a cycle: only the collector could free it, and it is kept anyway


class Flat(object):
    pass


def truth(step):
    # First, before this function makes anything: what is allocated here is what stays
    # allocated while the target sits still.
    blocks = sys.getallocatedblocks()
    stats = gc.get_stats()
    count = gc.get_count()
    census = Counter(type(o).__name__ for o in gc.get_objects())
    return {"pid": os.getpid(), "step": step, "version": platform.python_version(),
            "hexversion": sys.hexversion, "stats": stats, "count": list(count),
            "allocated_blocks": blocks, "leak": census["Leak"], "flat": census["Flat"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", required=True)
    ap.add_argument("--leak", type=int, default=2000)
    ap.add_argument("--megabytes", type=int, default=4)
    opts = ap.parse_args()
    gc.disable()
    flat = [Flat() for _ in range(100)]
    keep = []
    step = 0
    line = json.dumps(truth(step))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    while sys.stdin.readline():
        step += 1
        keep.append([Leak() for _ in range(opts.leak)])
        keep.append(b"x" * (opts.megabytes << 20))
        gc.collect(0)
        gc.collect(0)
        gc.collect(1)
        line = json.dumps(truth(step))
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    del flat, keep


if __name__ == "__main__":
    main()
