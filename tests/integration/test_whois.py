#!/usr/bin/python3
"""Who a target is: real CPython targets in cgroups, PID and mount namespaces made here, and
`pymemd --once` must name each one's container, pod, unit, cgroup, namespace pid and service
group exactly as they were made, and read its GC state exactly as the target prints it.

    /usr/bin/python3 test_whois.py --pymemd build/pymemd

Needs root (cgroups are created under the unified hierarchy, /sys/fs/cgroup or
/sys/fs/cgroup/unified, and under the v1 name=systemd one where the host has it) and
unshare(1). Targets (tests/integration/target.py on pyenv's newest 3.12, else the system
python3), each started by a shell that first moves itself into its cgroup, so the target is in
it from its first instruction:

  docker      .../pymemdtest-TAG.slice/docker-<64 hex>.scope           container (docker)
  service     .../pymemdtest-TAG.slice/web-TAG.service, a master that forks two workers (which
              rename themselves): the three are one group, the master's name
  pod         .../kubepods-burstable-pod<uid>.slice/cri-containerd-<64 hex>.scope, and in a PID
              and mount namespace of its own with another root: the interpreter is bind-mounted
              at /opt/py and started chroot'ed (its executable and libpython exist only there),
              as PID 1 of its namespace (memray#846/#867: attaching across namespaces)
  v1          hybrid hosts only: a docker scope in the v1 name=systemd hierarchy, the unified
              one left at "/"

Then once more with --group '{unit}|{top_python_ancestor}|{pod_uid}|{container_id}|{comm}|
{exe_base}': every field's value. Ends with "N passed, M failed, K skipped"; exit status 0 iff
nothing failed. Skips visibly without root, cgroups or unshare (a chroot without /sys, say).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.dont_write_bytecode = True
import pymemdtest as t   # noqa: E402

GEN0_TOLERANCE = 20   # the target allocates a little after printing its truth (as run_matrix)
TEMPLATE = "{unit}|{top_python_ancestor}|{pod_uid}|{container_id}|{comm}|{exe_base}"

# A master that forks two workers before running target.py; the workers rename themselves
# (so that their own name is not the group's) and print their truth to files of their own.
FORKER = r'''
import ctypes, os, runpy, sys
target, outdir = sys.argv[1], sys.argv[2]
rest = sys.argv[3:]
for i in range(2):
    if os.fork() == 0:
        ctypes.CDLL(None, use_errno=True).prctl(15, b"pmworker%d" % i, 0, 0, 0)
        fd = os.open(os.path.join(outdir, "worker%d.json" % i),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.close(fd)
        break
sys.argv = [target] + rest
runpy.run_path(target, run_name="__main__")
'''

# Builds the target's root inside its own mount namespace (run by sh under unshare): a tmpfs
# with the host's /usr, /etc and /dev, the interpreter's prefix at /opt/py and target.py's
# directory at /t, a /proc of the new PID namespace; then the interpreter as its PID 1.
NSROOT = r'''
set -e
R=$1; PREFIX=$2; TDIR=$3; shift 3
mount -t tmpfs pymemdtest "$R"
for d in usr etc dev bin sbin lib lib32 lib64 libx32; do
    if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$R/$d"
    elif [ -d "/$d" ]; then mkdir "$R/$d"; mount --rbind "/$d" "$R/$d"; fi
done
mkdir -p "$R/opt/py" "$R/t" "$R/proc" "$R/tmp"
mount --bind "$PREFIX" "$R/opt/py"
mount --bind "$TDIR" "$R/t"
mount -t proc proc "$R/proc"
mount -t tmpfs tmp "$R/tmp"
exec chroot "$R" env LD_LIBRARY_PATH=/opt/py/lib "$@"
'''


def ns_propagation():
    """What unshare --propagation takes here. "private" (its default) remounts / private, which
    fails with EINVAL where / is not a mount point (a chroot into a plain directory, as
    .ci/run's fresh root). There, "unchanged" keeps the NSROOT mounts from reaching the parent
    namespace only if no mount is shared with it. Returns (propagation, None), or (None, why
    not)."""
    with open("/proc/self/mountinfo") as f:
        rows = [line.split() for line in f]
    if any(len(r) > 4 and r[4] == "/" for r in rows):
        return "private", None
    if any(x.startswith("shared:") for r in rows if "-" in r for x in r[6:r.index("-")]):
        return None, ("/ is not a mount point here (a chroot?) and some mounts are shared: the "
                      "target's mount namespace would propagate its mounts back")
    return "unchanged", None


def hex64():
    return uuid.uuid4().hex + uuid.uuid4().hex


def unified_root():
    for d in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.exists(os.path.join(d, "cgroup.controllers")) or (
                d.endswith("unified") and os.path.exists(os.path.join(d, "cgroup.procs"))):
            return d
    return None


def v1_systemd_root():
    d = "/sys/fs/cgroup/systemd"
    if os.path.exists(os.path.join(d, "cgroup.procs")) and not os.path.exists(
            os.path.join(d, "cgroup.controllers")):
        return d
    return None


class Cgroups(object):
    """Cgroup directories made here, removed (deepest first) once their processes are gone."""

    def __init__(self):
        self.made = []

    def make(self, root, rel):
        path = root
        for part in rel.strip("/").split("/"):
            path = os.path.join(path, part)
            if not os.path.isdir(path):
                os.mkdir(path)
                self.made.append(path)
        return path

    def remove(self):
        for path in reversed(self.made):
            for _ in range(50):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)   # a killed member is reaped a moment later
            else:
                t.RESULTS.out("FAIL", "cleanup", "cgroup %s could not be removed" % path)
        self.made = []


def in_cgroup(procs_file, argv):
    """argv started by a shell that moves itself into the cgroup first."""
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', procs_file] + argv


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        if int(s[s.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(d))
    return out


def own_unified_path():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].rstrip("\n")
    return None


def comm_of(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().rstrip("\n")


def read_truth_file(path, deadline):
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read()
            if text.endswith("\n"):
                return json.loads(text)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise t.Fail("no truth in %s in time" % path)


def once(pymemd, regex, extra=()):
    r = subprocess.run([pymemd, "--once", "--match", regex, "--census-interval", "0"] +
                       list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if r.returncode != 0:
        raise t.Fail("pymemd --once exit %d: %s" % (r.returncode, t.short(r.stderr, 400)))
    return dict((p["pid"], p) for p in json.loads(r.stdout.decode())["processes"])


def gc_expectations(c, where, truth, proc):
    """The GC values as the target printed them (gen 0 with the suite's usual tolerance)."""
    c.eq("%s status" % where, "ok", proc.get("status"))
    if proc.get("status") != "ok":
        c.diffs.append("%s error: %s" % (where, t.shown(proc.get("error"))))
        return
    c.eq("%s python.version" % where, truth["version"], (proc.get("python") or {}).get("version"))
    gens = (proc.get("gc") or {}).get("generations") or []
    if not c.eq("%s generations" % where, 3, len(gens[:3])):
        return
    for i in range(3):
        st = truth["get_stats"][i]
        c.eq("%s gen %d threshold" % (where, i), truth["get_threshold"][i], gens[i]["threshold"])
        for k in ("collections", "collected", "uncollectable"):
            c.eq("%s gen %d %s" % (where, i, k), st[k], gens[i][k])
        if i:
            c.eq("%s gen %d count" % (where, i), truth["get_count"][i], gens[i]["count"])
        else:
            c.ok(abs(gens[0]["count"] - truth["get_count"][0]) <= GEN0_TOLERANCE,
                 "%s gen 0 count: expected %d (+-%d), got %s" % (
                     where, truth["get_count"][0], GEN0_TOLERANCE, gens[0]["count"]))


def identity_expectations(c, where, proc, want):
    for k in sorted(want):
        c.eq("%s %s" % (where, k), want[k], proc.get(k))


def run(pymemd):
    if os.geteuid() != 0:
        t.RESULTS.out("SKIP", "who a process is", "needs root to make cgroups and namespaces")
        return
    uroot = unified_root()
    if not uroot or not os.access(uroot, os.W_OK):
        t.RESULTS.out("SKIP", "who a process is",
                      "no writable cgroup v2 hierarchy at /sys/fs/cgroup or "
                      "/sys/fs/cgroup/unified (/sys not mounted here?)")
        return
    unshare = shutil.which("unshare")
    label, py = t.pyenv_python(12)
    if not py:
        label, py = "system-python3", "/usr/bin/python3"
    py = os.path.realpath(py)
    prefix = os.path.dirname(os.path.dirname(py))
    tag, regex = t.make_tag("pymemdwhois")
    t.say("targets: %s (%s); cgroups under %s%s" % (
        label, py, uroot, " and %s (v1)" % v1_systemd_root() if v1_systemd_root() else ""))

    cg = Cgroups()
    tmp = tempfile.mkdtemp(prefix="pymemd-whois-")
    targets = []
    try:
        slice_rel = "/pymemdtest-%s.slice" % tag
        docker_id, pod_cid = hex64(), hex64()
        pod_uid = str(uuid.uuid4())
        rel = {
            "docker": slice_rel + "/docker-%s.scope" % docker_id,
            "service": slice_rel + "/web-%s.service" % tag,
            "pod": slice_rel + "/kubepods.slice/kubepods-burstable.slice/"
                   "kubepods-burstable-pod%s.slice/cri-containerd-%s.scope" % (
                       pod_uid.replace("-", "_"), pod_cid),
        }
        procs = dict((k, os.path.join(cg.make(uroot, v), "cgroup.procs"))
                     for k, v in rel.items())

        def start(name, argv, procs_file, **kw):
            tg = t.Target(name, in_cgroup(procs_file, argv), tag, **kw)
            targets.append(tg)
            return tg

        docker = start("docker", t.target_argv([py], tag), procs["docker"])
        master = start("service", [py, "-c", FORKER, t.TARGET, tmp, "--tag", tag],
                       procs["service"])
        deadline = time.monotonic() + 30
        workers = [read_truth_file(os.path.join(tmp, "worker%d.json" % i), deadline)
                   for i in range(2)]

        ns = ns_pid = None
        propagation, ns_skip = ns_propagation()
        if unshare and propagation:
            nsroot = os.path.join(tmp, "root")
            os.mkdir(nsroot)
            argv = [unshare, "--pid", "--fork", "--mount", "--propagation", propagation,
                    "/bin/sh", "-c", NSROOT, "nsroot", nsroot, prefix, os.path.dirname(t.TARGET),
                    "/opt/py/bin/" + os.path.basename(py), "/t/" + os.path.basename(t.TARGET),
                    "--tag", tag]
            ns = start("pod", argv, procs["pod"])
            kids = children_of(ns.p.pid)
            ns_pid = kids[0] if len(kids) == 1 else None
        v1 = v1_id = v1_rel = None
        v1root = v1_systemd_root()
        if v1root:
            v1_id = hex64()
            v1_rel = slice_rel + "/docker-%s.scope" % v1_id
            v1 = start("v1", t.target_argv([py], tag), os.path.join(cg.make(v1root, v1_rel),
                                                                      "cgroup.procs"))

        first = once(pymemd, regex)
        second = once(pymemd, regex, ["--group", TEMPLATE])
        exe_base = os.path.basename(py)

        def t_docker(c):
            p = first.get(docker.pid) or {}
            gc_expectations(c, "docker", docker.truth, p)
            identity_expectations(c, "docker", p, {
                "container": {"id": docker_id, "runtime": "docker"}, "pod_uid": None,
                "qos_class": None, "unit": None, "cgroup": rel["docker"],
                "ns_pid": docker.pid, "top_python_ancestor_pid": docker.pid,
                "group": comm_of(docker.pid)})
            c.eq("docker group by template", "|%s||%s|%s|%s" % (
                comm_of(docker.pid), docker_id, comm_of(docker.pid), exe_base),
                (second.get(docker.pid) or {}).get("group"))
        t.case("a container's cgroup: docker id and runtime, no unit", t_docker)

        def t_service(c):
            mpid = master.pid
            mcomm = comm_of(mpid)
            for where, truth in [("master", master.truth)] + [
                    ("worker%d" % i, w) for i, w in enumerate(workers)]:
                pid = truth["pid"]
                p = first.get(pid) or {}
                gc_expectations(c, where, truth, p)
                identity_expectations(c, where, p, {
                    "container": None, "pod_uid": None, "qos_class": None,
                    "unit": "web-%s.service" % tag, "cgroup": rel["service"], "ns_pid": pid,
                    "top_python_ancestor_pid": mpid, "group": mcomm})
                if where != "master":
                    c.eq("%s own name" % where, "pmworker%s" % where[-1], p.get("name"))
                c.eq("%s group by template" % where, "web-%s.service|%s|||%s|%s" % (
                    tag, mcomm, comm_of(pid), exe_base), (second.get(pid) or {}).get("group"))
        t.case("a service's master and the workers it forked: one group, the master's name",
               t_service)

        def t_pod(c):
            if ns is None:
                raise t.Skip(ns_skip or "unshare(1) is not installed (util-linux)")
            if ns_pid is None:
                raise t.Fail("the namespaced target is not the one child of unshare (%d)"
                             % ns.p.pid)
            c.eq("the target's own getpid() in its namespace", 1, ns.truth["pid"])
            p = first.get(ns_pid) or {}
            gc_expectations(c, "pod", ns.truth, p)
            identity_expectations(c, "pod", p, {
                "container": {"id": pod_cid, "runtime": "containerd"}, "pod_uid": pod_uid,
                "qos_class": "burstable", "unit": None, "cgroup": rel["pod"], "ns_pid": 1,
                "top_python_ancestor_pid": ns_pid, "group": comm_of(ns_pid)})
            c.eq("pod executable (its own root's path)",
                 "/opt/py/bin/" + os.path.basename(py), ns.truth["executable"])
            c.ok(not os.path.exists(ns.truth["executable"]),
                 "%s exists on the host too: the test proves nothing about reading through "
                 "/proc/PID/root" % ns.truth["executable"])
            c.eq("pod group by template", "|%s|%s|%s|%s|%s" % (
                comm_of(ns_pid), pod_uid, pod_cid, comm_of(ns_pid), exe_base),
                (second.get(ns_pid) or {}).get("group"))
            c.note("exe as pymemd reads it: %s" % p.get("exe"))
        t.case("a pod's container in its own PID and mount namespace and root: pod, QoS, "
               "containerd, ns_pid 1", t_pod)

        def t_v1(c):
            if v1 is None:
                raise t.Skip("no v1 name=systemd hierarchy on this host (pure cgroup v2)")
            p = first.get(v1.pid) or {}
            gc_expectations(c, "v1", v1.truth, p)
            # The path is the unified one unless that is "/" (as this driver's own, which the
            # target inherits there); the container is told by the v1 line either way.
            own = own_unified_path()
            identity_expectations(c, "v1", p, {
                "container": {"id": v1_id, "runtime": "docker"},
                "cgroup": v1_rel if own == "/" else own, "unit": None})
        t.case("hybrid host: a container told by its v1 name=systemd cgroup", t_v1)

        def t_reload_refused(c):
            r = subprocess.run([pymemd, "--once", "--match", regex, "--group", "{pid}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            c.eq("exit status of a bad --group", 2, r.returncode)
            c.eq("stdout", b"", r.stdout)
            c.ok(b"group: unknown field {pid}" in r.stderr,
                 "stderr names the field: %s" % t.short(r.stderr, 300))
        t.case("a bad template is refused at start, with the field named", t_reload_refused)

        def t_reload(c):
            # The daemon: the group follows the template through SIGHUP at once (fields are
            # kept per image, the template applied per sample); a bad one is refused, the
            # running one kept.
            inst = t.Pymemd(pymemd, ["--match", regex, "--census-interval", "0"], "pymemd",
                            conf="group = {comm}\n")
            try:
                inst.start()
                comm = comm_of(docker.pid)
                p = inst.wait_process(docker.pid)
                c.eq("group with {comm}", comm, p.get("group"))
                inst.write_conf("group = {container_id}/{comm}\n")
                inst.p.send_signal(signal.SIGHUP)
                want = "%s/%s" % (docker_id, comm)
                p = inst.wait_process(docker.pid, cond=lambda p: p.get("group") == want)
                c.eq("group after SIGHUP", want, p.get("group"))
                inst.write_conf("group = {container}\n")
                before = inst.stderr().count("reload:")
                inst.p.send_signal(signal.SIGHUP)
                end = time.monotonic() + 10
                while time.monotonic() < end and inst.stderr().count("reload:") == before:
                    time.sleep(0.05)
                said = inst.stderr().split("reload:")[-1]
                c.ok("group: unknown field {container}" in said and
                     "keeping the running configuration" in said,
                     "the refused reload is logged with the field: %s" % t.short(said, 400))
                t0 = time.time()
                p = inst.wait_process(docker.pid,
                                      cond=lambda p: p.get("sampled_at", 0) > t0 + 0.5)
                c.eq("group after the refused SIGHUP", want, p.get("group"))
                s = inst.get("/metrics?format=prometheus").text()
                line = [ln for ln in s.splitlines()
                        if ln.startswith('pymemd_target_info{pid="%d",' % docker.pid)]
                c.eq("pymemd_target_info of the docker target", [
                    'pymemd_target_info{pid="%d",name="%s",group="%s",container_id="%s",'
                    'container_runtime="docker",pod_uid="",qos_class="",unit="",ns_pid="%d"} 1'
                    % (docker.pid, comm, want, docker_id, docker.pid)], line)
            finally:
                inst.shutdown()
        t.case("the daemon: group through SIGHUP, a bad template refused on reload; "
               "pymemd_target_info", t_reload)
    except (t.Fail, RuntimeError, OSError) as e:
        t.RESULTS.out("FAIL", "setup", str(e))
    finally:
        for tg in targets:
            tg.close()
        cg.remove()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pymemd", required=True)
    a = ap.parse_args()
    return t.run_driver("who a process is: cgroups, namespaces, groups", run,
                        os.path.abspath(a.pymemd))


if __name__ == "__main__":
    sys.exit(main())
