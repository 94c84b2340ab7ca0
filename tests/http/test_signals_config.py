#!/usr/bin/python3
"""HTTP contract: signals, configuration, ports (DESIGN.md sections 3-5).

    /usr/bin/python3 test_signals_config.py --pymemd build/pymemd

No targets: every format valid; SIGHUP without --config keeps serving; SIGINT exits 0;
--config and SIGHUP re-reading it keep serving; a port already in use (and 9100, which
node_exporter uses) is a non-zero exit with a message that says how to choose another.

The setup, parsers and expectations are in httpcommon.py; PASS/FAIL/SKIP lines, ending with
exactly `N passed, M failed, K skipped`; exit status 0 iff nothing failed.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpcommon import *  # noqa: E402,F401,F403


def t_empty_and_signals(c, ctx):
    inst = Pymemd(ctx.exe, ["--match", "^no-such-process-[x]yz$", "--interval", str(INTERVAL)],
                  "pymemd (no targets)")
    try:
        inst.start()
        for accept, fmt in ((None, "json"), (PROM_ACCEPT[3][1], "om"),
                            ("text/plain;version=0.0.4", "text")):
            r = expect_format(c, inst, accept, fmt)
            if fmt == "json" and r.status == 200:
                c.eq("processes with no target", [], r.json().get("processes"))
            elif r.status == 200 and r.h("Content-Type") == CT_OF[fmt]:
                ex = Expo(r.text(), fmt == "om")
                for pr in ex.problems:
                    c.diffs.append("%s (no targets) %s" % (FMT_NAME[fmt], pr))
                err, _ = promtool_check(r.text(), fmt == "om")
                if err:
                    c.diffs.append("%s (no targets): %s" % (FMT_NAME[fmt], err))
        os.kill(inst.p.pid, signal.SIGHUP)
        time.sleep(0.5)
        c.ok(inst.alive(), "SIGHUP without --config killed pymemd (exit %s, stderr %s)" % (
            inst.p.returncode, short(inst.stderr()[-300:])))
        if inst.alive():
            c.eq("GET /healthz after SIGHUP", 200, inst.get("/healthz").status)
            c.eq("GET /metrics after SIGHUP", 200, inst.get("/metrics").status)
        rc, took = inst.stop(signal.SIGINT)
        c.eq("exit status after SIGINT", 0, rc)
        c.ok(took < STOP_LIMIT, "SIGINT: exited after %.2f s (limit %.0f s)" % (took, STOP_LIMIT))
        c.note("SIGINT: exit %s after %.2f s" % (rc, took))
    finally:
        inst.close()


def t_config_hup(c, ctx):
    conf = ("# written by tests/http/test_signals_config.py\n"
            "interval = 0.3\nmatch = %s\n" % ctx.regex)
    inst = Pymemd(ctx.exe, [], "pymemd (--config)", conf=conf)
    try:
        inst.start()
        pids = [t.pid for t in ctx.targets]
        p = wait_sampled(inst, pids)
        c.ok(all(pid in p for pid in pids), "the config file's match did not select the "
                                            "targets: %s" % sorted(p))
        doc = inst.doc()
        c.eq("interval_seconds from the config file", 0.3, doc["pymemd"].get("interval_seconds"))
        inst.write_conf(conf + "log_level = debug\n")
        os.kill(inst.p.pid, signal.SIGHUP)
        time.sleep(1.0)
        c.ok(inst.alive(), "SIGHUP with --config killed pymemd (exit %s, stderr %s)" % (
            inst.p.returncode, short(inst.stderr()[-300:])))
        if inst.alive():
            c.eq("GET /healthz after SIGHUP", 200, inst.get("/healthz").status)
            p = wait_sampled(inst, pids, timeout=5)
            c.ok(all(pid in p for pid in pids), "targets gone after SIGHUP: %s" % sorted(p))
            c.eq("GET /metrics (OpenMetrics) after SIGHUP", CT_OM,
                 inst.get("/metrics", [("Accept", PROM_ACCEPT[3][1])]).h("Content-Type"))
        rc, took = inst.stop(signal.SIGTERM)
        c.eq("exit status after SIGTERM", 0, rc)
        c.ok(took < STOP_LIMIT, "SIGTERM: exited after %.2f s" % took)
    finally:
        inst.close()


def port_in_use_case(c, ctx, port, holder):
    inst = None
    p = CHILDREN.spawn([ctx.exe, "--listen", "127.0.0.1:%d" % port, "--match",
                        "^no-such-process-[x]yz$"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            raise Fail("pymemd --listen 127.0.0.1:%d (port held by %s) was still running "
                       "after 10 s" % (port, holder))
        err = err.decode("utf-8", "replace")
        c.ok(p.returncode not in (0, None), "exit status: expected non-zero, got %s" %
             p.returncode)
        addr = "127.0.0.1:%d" % port
        c.ok(addr in err, "stderr does not name the address %s: %s" % (addr, shown(err)))
        c.ok(re.search(r"in use|taken|already|occupied|busy", err, re.I),
             "stderr does not say the port is taken: %s" % shown(err))
        c.ok(re.search(r"node[_ -]?exporter", err, re.I) and "9100" in err,
             "stderr does not mention that node_exporter commonly uses 9100: %s" % shown(err))
        c.ok("--listen" in err, "stderr does not say how to choose another port (--listen): %s"
             % shown(err))
        c.note("exit %s: %s" % (p.returncode, short(err, 200)))
    finally:
        CHILDREN.reap(p)


def t_port_in_use(c, ctx):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port_in_use_case(c, ctx, s.getsockname()[1], "this test")
    finally:
        s.close()


def t_port_9100_in_use(c, ctx):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder = "this test"
    try:
        try:
            s.bind(("127.0.0.1", 9100))
            s.listen(1)
        except OSError:
            holder = "another process (e.g. node_exporter)"
        port_in_use_case(c, ctx, 9100, holder)
    finally:
        s.close()


# Cases that need pymemd to read the targets (skipped when it may not).
for _fn in (t_config_hup,):
    _fn.needs_read = True


def cases(ctx):
    case("no targets: all formats valid; SIGHUP keeps serving; SIGINT -> exit 0",
         t_empty_and_signals, ctx)
    case("--config + SIGHUP keeps serving", t_config_hup, ctx)
    case("port in use -> non-zero exit + message", t_port_in_use, ctx)
    case("port 9100 in use -> message names node_exporter", t_port_9100_in_use, ctx)


if __name__ == "__main__":
    sys.exit(drive("HTTP contract: signals, configuration, ports", cases))
