"""A target for test_gcbusy.py: its own record of when its GC ran, the ground truth for pymemd's
python_gc_busy_ratio_estimate.

    python gcbusy_target.py --tag TAG

Prints {"pid": N} and waits. Each command on stdin, one a line:
  idle SECONDS   does nothing (no allocation, no collection) for that long
  busy SECONDS   full collections of a heap of 200,000 containers, each followed by a pause
                 of random length (so the share of time collecting is near a half and does
                 not beat with pymemd's polls)
  spans          prints {"spans": [[start, stop], ...]}: every collection's start and stop, by
                 time.time(), as the gc.callbacks saw them
Each command but spans answers {"done": true} once over.
"""
import gc
import json
import os
import random
import sys
import time

spans = []
started = [0.0]


def on_gc(phase, info):
    if phase == "start":
        started[0] = time.time()
    else:
        spans.append([started[0], time.time()])


def main():
    gc.disable()  # only the collections this script makes
    keep = [[i] for i in range(200000)]
    gc.callbacks.append(on_gc)
    print(json.dumps({"pid": os.getpid(), "objects": len(keep)}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "spans":
            print(json.dumps({"spans": spans}), flush=True)
            continue
        end = time.monotonic() + float(cmd[1])
        if cmd[0] == "idle":
            time.sleep(float(cmd[1]))
        elif cmd[0] == "busy":
            while time.monotonic() < end:
                t = time.monotonic()
                gc.collect()
                time.sleep(random.uniform(0, 2 * (time.monotonic() - t)))
        print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    main()
