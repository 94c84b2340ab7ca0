#!/usr/bin/python3
"""An embedding host: a C program named like no Python (as uwsgi is) that links libpython and
runs a script. pymemd must find the interpreter in it and read exactly what the script reports.
Builds the host at run time with cc against each pyenv interpreter's headers (3.8+). Also runs
the hosts tests/integration/debian-pythons.sh built against Debian sid's shared libpython3.13,
3.14 and 3.15 (appserver3.X, labels debian-sid-3.X-embedded in its manifest), started through
the suite's own loader: there /proc/PID/exe is the loader, and the interpreter is in the
libpython3.X.so.1.0 it loaded.
Ends with "N passed, M failed, K skipped"."""
import argparse
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

HOST = r'''
#include <Python.h>
int main(int argc, char **argv)
{
    Py_Initialize();
    int r = PyRun_SimpleString(argv[1]);
    Py_Finalize();
    return r;
}
'''
SCRIPT = r'''
import gc, json, os, sys
gc.set_threshold(555, 44, 33)
class Embedded: pass
keep = [Embedded() for _ in range(1234)]
gc.collect()
os.write(1, (json.dumps({"version": sys.version.split()[0], "threshold": gc.get_threshold(),
                         "stats": gc.get_stats()}) + "\n").encode())
os.read(0, 1)
'''


def debian_hosts():
    """(label, version, argv) of the embedding hosts in debian-pythons.sh's manifest, and the
    (label, reason) of those it skipped."""
    cache = os.environ.get("PYMEMD_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "pymemd")
    manifest = os.path.join(cache, "debian", "interpreters.tsv")
    hosts, skipped = [], []
    if not os.path.exists(manifest):
        return hosts, [("debian", "no %s (tests/integration/debian-pythons.sh)" % manifest)]
    with open(manifest, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3 or not fields[0].endswith("-embedded"):
                continue
            if fields[1] == "skip":
                skipped.append((fields[0], fields[2]))
            else:
                hosts.append((fields[0], fields[1], shlex.split(fields[2])
                              if not os.path.exists(fields[2]) else [fields[2]]))
    return hosts, skipped


def check(pymemd, argv, label, env, name_prefix, res):
    """Starts argv + [SCRIPT], compares pymemd's view with what the script says."""
    p = subprocess.Popen(argv + [SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        line = p.stdout.readline()
        if not line:
            p.kill()
            res["FAIL"] += 1
            print("FAIL embedding host %s: printed nothing: %s" % (
                label, p.communicate()[1].decode("utf-8", "replace")[-300:].strip()))
            return
        truth = json.loads(line)
        r = subprocess.run([pymemd, "--once", "--pid", str(p.pid)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        proc = json.loads(r.stdout)["processes"][0]
        gens = (proc.get("gc") or {}).get("generations") or []
        got = [g["threshold"] for g in gens]
        coll = [g["collections"] for g in gens]
        census = {t["name"]: t["count"] for t in (proc.get("objects") or {}).get("types", [])}
        build = (proc.get("python") or {}).get("build") or ""
        ok = (proc["status"] == "ok" and proc["python"]["version"] == truth["version"]
              and got == list(truth["threshold"])
              and coll == [s["collections"] for s in truth["stats"]]
              and census.get("Embedded") == 1234 and name_prefix in (proc.get("cmdline") or "")
              and build.startswith("shared"))
        kind = "PASS" if ok else "FAIL"
        res[kind] += 1
        print("%s embedding host %s (%s, build %s): status %s%s, version %s (target %s), "
              "thresholds %s, Embedded objects %s" % (
                  kind, label, proc.get("name"), build or None, proc["status"],
                  "" if proc["status"] == "ok" else " (%s)" % proc.get("error"),
                  (proc.get("python") or {}).get("version"), truth["version"], got,
                  census.get("Embedded")))
    finally:
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", required=True)
    a = ap.parse_args()
    res = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    cc = shutil.which("cc")
    tmp = tempfile.mkdtemp(prefix="pymemd-embed-")
    try:
        with open(os.path.join(tmp, "host.c"), "w") as f:
            f.write(HOST)
        versions = sorted(glob.glob(os.path.join(root, "versions", "3.*")))
        if not cc or not versions:
            print("SKIP embedding host: %s" % ("no cc" if not cc else "no pyenv interpreters"))
            res["SKIP"] += 1
        for vdir in versions:
            v = os.path.basename(vdir)
            minor = ".".join(v.split(".")[:2])
            if tuple(int(x) for x in minor.split(".")) < (3, 8):
                continue
            inc = os.path.join(vdir, "include", "python" + minor)
            lib = os.path.join(vdir, "lib")
            exe = os.path.join(tmp, "appserver-%s" % minor)
            b = subprocess.run([cc, "-o", exe, os.path.join(tmp, "host.c"), "-I" + inc, "-L" + lib,
                                "-lpython" + minor, "-Wl,-rpath," + lib],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if b.returncode != 0:
                print("SKIP embedding host %s: cannot build: %s" % (v, b.stderr.decode()[:120]))
                res["SKIP"] += 1
                continue
            p = subprocess.Popen([exe, SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 env=dict(os.environ, PYTHONHOME=vdir))
            try:
                truth = json.loads(p.stdout.readline())
                r = subprocess.run([a.pymemd, "--once", "--pid", str(p.pid)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
                proc = json.loads(r.stdout)["processes"][0]
                gens = (proc.get("gc") or {}).get("generations") or []
                got = [g["threshold"] for g in gens]
                coll = [g["collections"] for g in gens]
                census = {t["name"]: t["count"] for t in (proc.get("objects") or {}).get("types", [])}
                ok = (proc["status"] == "ok" and proc["python"]["version"] == truth["version"]
                      and got == list(truth["threshold"])
                      and coll == [s["collections"] for s in truth["stats"]]
                      and census.get("Embedded") == 1234 and proc["name"].startswith("appserver"))
                kind = "PASS" if ok else "FAIL"
                res[kind] += 1
                print("%s embedding host %s (%s): status %s, version %s, thresholds %s, "
                      "Embedded objects %s" % (kind, v, proc.get("name"), proc["status"],
                                               (proc.get("python") or {}).get("version"), got,
                                               census.get("Embedded")))
            finally:
                p.kill()
                p.wait()
        hosts, skipped = debian_hosts()
        for label, why in skipped:
            print("SKIP embedding host %s: %s" % (label, why))
            res["SKIP"] += 1
        for label, version, argv in hosts:
            # The host runs the script given as `-c`, like python (it calls Py_BytesMain).
            check(a.pymemd, argv + ["-c"], "%s %s" % (label, version),
                  dict(os.environ), "appserver", res)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed, %d skipped" % (res["PASS"], res["FAIL"], res["SKIP"]))
    return 1 if res["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
