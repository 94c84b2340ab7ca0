# -*- coding: utf-8 -*-
"""A target that leaks one type steadily, for tests/config/test_grafana.py.

    python3 leak_target.py --tag TAG

It sets gc.set_threshold(777, 55, 33) as tests/integration/target.py does, so that the
dashboard's threshold panel has one known value for every target. Each line read on stdin keeps
2,000 more `Leak` instances; after each (and once at start) it prints, once quiescent, one JSON
line of its own ground truth: pid, version, gc.get_threshold() and the count of `Leak` in
gc.get_objects(). Then it sits still in the next read. EOF ends it. Syntax 3.6 accepts.
"""
import gc
import json
import os
import platform
import sys

KEEP = []


class Leak(object):
    pass


def truth(step):
    leak = sum(1 for o in gc.get_objects() if type(o) is Leak)
    return {"pid": os.getpid(), "step": step, "version": platform.python_version(),
            "threshold": list(gc.get_threshold()), "leak": leak}


def main():
    if "--tag" not in sys.argv[1:-1]:
        sys.stderr.write("usage: leak_target.py --tag TAG\n")
        return 2
    gc.set_threshold(777, 55, 33)
    step = 0
    while True:
        line = json.dumps(truth(step)) + "\n"
        KEEP.append(line)
        sys.stdout.write(line)
        sys.stdout.flush()
        if not sys.stdin.readline():
            return 0
        step += 1
        KEEP.append([Leak() for _ in range(2000)])


if __name__ == "__main__":
    sys.exit(main())
