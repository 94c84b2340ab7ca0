#!/usr/bin/env python3
"""A small service that leaks the classic way: objects in reference cycles, kept alive by a cache
that is never trimmed. Watch it with pymemd: gen-2 collections run, nothing is collected, the
heap and the pymalloc arenas only grow.

    python3 demo/leaky_service.py &
    pymemd --once --pid $!
"""
import argparse
import gc
import threading
import time


class Session:
    """A session that points at its handler, which points back: a cycle."""

    def __init__(self, n):
        self.id = n
        self.payload = {"user": "u%d" % n, "items": list(range(20))}
        self.handler = Handler(self)


class Handler:
    def __init__(self, session):
        self.session = session


_cache = []  # the leak: every session ever served stays reachable from here


def serve(rate, stop):
    n = 0
    while not stop.is_set():
        for _ in range(rate):
            s = Session(n)
            _cache.append(s)
            n += 1
            # Short-lived garbage too, so the collector has real work.
            a = {}
            b = {"a": a}
            a["b"] = b
        time.sleep(1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=500, help="sessions leaked per second")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    args = ap.parse_args()
    stop = threading.Event()
    worker = threading.Thread(target=serve, args=(args.rate, stop), name="worker", daemon=True)
    worker.start()
    print("leaky_service: pid %d, leaking %d sessions/s, gc thresholds %s"
          % (__import__("os").getpid(), args.rate, gc.get_threshold()), flush=True)
    try:
        if args.seconds:
            time.sleep(args.seconds)
        else:
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    stop.set()


if __name__ == "__main__":
    main()
