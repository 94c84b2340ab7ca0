#!/usr/bin/env python3
"""The Kubernetes manifests of deploy/kubernetes/, checked without a cluster:

- schemas: every document validates against the schemas of the pinned Kubernetes version
  (validate.mjs: the OpenAPI schemas compiled by the npm package kubernetes-models 5.1.0, and
  its TypeScript types for unknown fields; the PodMonitor against
  @kubernetes-models/prometheus-operator 6.0.0; all pinned with their hashes in
  tests/deploy/npm/package-lock.json, installed once into ~/.cache/pymemd/deploy/);
  a copy with a misspelt field, one with a bad quantity and one with a misspelt PodMonitor
  field are refused (so the check can fail);
- security: the DaemonSet shares the node's PID namespace and nothing else of the node, is not
  privileged, drops every capability and adds only SYS_PTRACE and DAC_READ_SEARCH plus the
  three its entry point (setpriv) needs to change user, and exactly those the Containerfile's
  setpriv keeps; no privilege escalation, read-only root file system, seccomp RuntimeDefault,
  no host path, no service account token, no RBAC object; each check also run on a copy
  broken in that one respect, which it must refuse;
- consistency: the memory limit is the systemd unit's MemoryMax, the probes ask /healthz on the
  container port the config listens on (9100, the image's EXPOSE), the config map is the file
  the container is told to read, the Service, PodMonitor and NetworkPolicy select the pods and
  name their port, the downward API gives POD_NAME and POD_NAMESPACE, fsGroup is the image's
  pymemd group;
- the ConfigMap's pymemd.conf is accepted by pymemd itself (--config F --once reading a real
  target, whose gc.get_count() it reports).

Needs node and npm (the npm registry, once, when the cache is empty): SKIP with the reason
without them. Prints PASS/FAIL/SKIP lines and ends with "N passed, M failed, K skipped".
"""
import argparse
import copy
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from pymemdtest import (RESULTS, Fail, Skip, Target, case, clean_env,  # noqa: E402
                        make_tag, run_driver, short, target_argv)

SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
MANIFESTS = os.path.join(SRC, "deploy", "kubernetes")
# What the container's entry point needs beyond what pymemd keeps: setpriv changes to the user
# pymemd (SETUID, SETGID) and empties the bounding set (SETPCAP).
KEPT = {"SYS_PTRACE", "DAC_READ_SEARCH"}
SETPRIV = {"SETUID", "SETGID", "SETPCAP"}


def cache_dir():
    base = os.environ.get("PYMEMD_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache",
                                                               "pymemd")
    return os.path.join(base, "deploy")


def node_modules():
    """The pinned packages, installed with npm ci into a directory named by the lock file's
    hash (so a new lock gets a new install); SKIP without node or npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise Skip("node and npm are not installed (the validators are npm packages)")
    lock = os.path.join(HERE, "npm", "package-lock.json")
    with open(lock, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    top = cache_dir()
    os.makedirs(top, exist_ok=True)
    where = os.path.join(top, "npm-" + digest)
    done = os.path.join(where, ".installed")
    with open(os.path.join(top, "npm.lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if not os.path.exists(done):
            shutil.rmtree(where, ignore_errors=True)
            os.makedirs(where)
            for name in ("package.json", "package-lock.json"):
                shutil.copy(os.path.join(HERE, "npm", name), where)
            p = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund",
                                "--loglevel=error"], cwd=where, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=300)
            if p.returncode != 0:
                shutil.rmtree(where, ignore_errors=True)
                raise Skip("npm ci of tests/deploy/npm failed (no registry?): %s"
                           % short(p.stdout.decode(errors="replace"), 300))
            open(done, "w").close()
    return node, os.path.join(where, "node_modules")


def validate(node, modules, files):
    p = subprocess.run([node, os.path.join(HERE, "validate.mjs"), modules] + list(files),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=240)
    try:
        out = json.loads(p.stdout)
    except ValueError:
        raise Fail("validate.mjs printed no JSON (status %d): %s %s" % (
            p.returncode, short(p.stdout, 200), short(p.stderr, 400)))
    return out["documents"], out["errors"]


def manifest_files():
    files = []
    for d, _, names in os.walk(MANIFESTS):
        files += [os.path.join(d, n) for n in sorted(names) if n.endswith(".yaml")]
    return sorted(files)


# ---- the security and consistency checks, on parsed documents ---------------------------------

def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def one(docs, kind):
    got = by_kind(docs, kind)
    if len(got) != 1:
        raise Fail("expected one %s, found %d" % (kind, len(got)))
    return got[0]


def containers(pod):
    return pod.get("containers", []) + pod.get("initContainers", []) + \
        pod.get("ephemeralContainers", [])


def parse_quantity(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|K|M|G|T)?", str(q))
    if not m:
        raise Fail("quantity %r not understood" % q)
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
            "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2)]
    return int(m.group(1)) * mult


def unit_memory_max():
    with open(os.path.join(SRC, "systemd", "pymemd.service")) as f:
        m = re.search(r"^MemoryMax=(\d+)([KMGT]?)$", f.read(), re.M)
    if not m:
        raise Fail("systemd/pymemd.service has no MemoryMax=")
    # systemd's K, M, G, T are powers of 1024.
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2)]


def containerfile():
    with open(os.path.join(SRC, "Containerfile")) as f:
        return f.read()


def image_ambient_caps():
    """The capabilities the Containerfile's setpriv keeps as ambient ones."""
    m = re.search(r'"--ambient-caps=-all,([^"]+)"', containerfile())
    if not m:
        raise Fail("the Containerfile's entry point has no --ambient-caps")
    return {c.lstrip("+").upper() for c in m.group(1).split(",")}


def image_uid():
    m = re.search(r"^ARG PYMEMD_UID=(\d+)$", containerfile(), re.M)
    if not m:
        raise Fail("the Containerfile has no ARG PYMEMD_UID")
    return int(m.group(1))


def security_problems(docs):
    """Every way the DaemonSet falls short of its security properties, as sentences."""
    bad = []
    ds = one(docs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    if pod.get("hostPID") is not True:
        bad.append("hostPID is not true")
    if pod.get("hostNetwork") or pod.get("hostIPC"):
        bad.append("the pod shares the node's network or IPC namespace")
    if pod.get("hostUsers") is False:
        # In a user namespace of its own, pymemd's capabilities would not count for the
        # node's processes.
        bad.append("hostUsers is false")
    if pod.get("automountServiceAccountToken") is not False:
        bad.append("the service account token is mounted")
    for v in pod.get("volumes", []):
        if "hostPath" in v:
            bad.append("volume %s is a hostPath" % v.get("name"))
    pod_seccomp = psc.get("seccompProfile", {}).get("type")
    for c in containers(pod):
        sc = c.get("securityContext", {})
        name = c.get("name")
        if sc.get("privileged") is not False:
            bad.append("%s: privileged is not false" % name)
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append("%s: allowPrivilegeEscalation is not false" % name)
        if sc.get("readOnlyRootFilesystem") is not True:
            bad.append("%s: readOnlyRootFilesystem is not true" % name)
        caps = sc.get("capabilities", {})
        if caps.get("drop") != ["ALL"]:
            bad.append("%s: capabilities.drop is %s, not [ALL]" % (name, caps.get("drop")))
        added = set(caps.get("add", []))
        if added != KEPT | SETPRIV:
            bad.append("%s: capabilities added %s, expected %s" % (
                name, sorted(added), sorted(KEPT | SETPRIV)))
        if sc.get("procMount", "Default") != "Default":
            bad.append("%s: procMount %s" % (name, sc.get("procMount")))
        seccomp = sc.get("seccompProfile", {}).get("type", pod_seccomp)
        if seccomp != "RuntimeDefault":
            bad.append("%s: seccomp profile %s, not RuntimeDefault" % (name, seccomp))
    rbac = [d["kind"] for d in docs if d.get("apiVersion", "").startswith(
        "rbac.authorization.k8s.io/")]
    if rbac:
        bad.append("RBAC objects: %s" % rbac)
    for sa in by_kind(docs, "ServiceAccount"):
        if sa.get("automountServiceAccountToken") is not False:
            bad.append("ServiceAccount %s mounts its token" % sa["metadata"]["name"])
    return bad


def check_schemas(c, ctx):
    docs, errors = validate(ctx.node, ctx.modules, ctx.files)
    for e in errors:
        c.ok(False, e)
    kinds = sorted("%s/%s" % (d["doc"]["apiVersion"], d["doc"]["kind"]) for d in docs)
    c.eq("documents", ["apps/v1/DaemonSet", "monitoring.coreos.com/v1/PodMonitor",
                       "networking.k8s.io/v1/NetworkPolicy", "v1/ConfigMap", "v1/Namespace",
                       "v1/Service", "v1/ServiceAccount"], kinds)
    ctx.docs = [d["doc"] for d in docs]
    c.note("%d documents in %d files" % (len(docs), len(ctx.files)))


def check_schemas_refuse(c, ctx):
    """Broken copies: the validator must name each fault."""
    tmp = tempfile.mkdtemp(prefix="pymemd-k8s-bad-")
    try:
        with open(os.path.join(MANIFESTS, "daemonset.yaml")) as f:
            ds = f.read()
        with open(os.path.join(MANIFESTS, "prometheus-operator", "podmonitor.yaml")) as f:
            pm = f.read()
        bad = {
            "misspelt field": (ds.replace("readOnlyRootFilesystem:", "readOnlyRootFileSystem:"),
                               "readOnlyRootFileSystem"),
            "bad quantity": (ds.replace("memory: 1536Mi", "memory: 1536Qi"), "quantity"),
            "wrong type": (ds.replace("hostPID: true", "hostPID: \"yes\""), "hostPID"),
            "PodMonitor field": (pm.replace("    - port: http-metrics",
                                            "    - portt: http-metrics"), "portt"),
        }
        paths = {}
        for i, (what, (text, word)) in enumerate(sorted(bad.items())):
            c.ok(text not in (pm, ds), "%s: the replacement did not apply" % what)
            paths[what] = os.path.join(tmp, "bad%d.yaml" % i)
            with open(paths[what], "w") as f:
                f.write(text)
        # One run for all (the compiler's start is most of its time); each error names its file.
        _, errors = validate(ctx.node, ctx.modules, sorted(paths.values()))
        for what, (_, word) in sorted(bad.items()):
            mine = [e for e in errors if e.startswith(os.path.basename(paths[what]) + "#")]
            c.ok(any(word in e for e in mine), "%s: not refused (%s)" % (what, mine))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def need_docs(ctx):
    if not ctx.docs:
        raise Skip("the manifests did not parse")
    return ctx.docs


def check_security(c, ctx):
    docs = need_docs(ctx)
    for b in security_problems(docs):
        c.ok(False, b)
    ds = one(docs, "DaemonSet")
    ctr = ds["spec"]["template"]["spec"]["containers"]
    c.eq("containers", ["pymemd"], [x["name"] for x in ctr])
    c.eq("the capabilities pymemd keeps (the Containerfile's setpriv)", sorted(KEPT),
         sorted(image_ambient_caps()))
    ns = one(docs, "Namespace")
    c.eq("Pod Security Admission level", "privileged",
         ns["metadata"]["labels"].get("pod-security.kubernetes.io/enforce"))
    for d in docs:
        if d["kind"] != "Namespace":
            c.eq("%s's namespace" % d["kind"], "pymemd", d["metadata"].get("namespace"))


def check_security_refuses(c, ctx):
    """Each property's check refuses a copy broken in that one respect."""
    docs = need_docs(ctx)

    def pod(ds):
        return ds["spec"]["template"]["spec"]

    def sc(ds):
        return pod(ds)["containers"][0]["securityContext"]
    breaks = {
        "no hostPID": lambda ds: pod(ds).pop("hostPID"),
        "hostNetwork": lambda ds: pod(ds).update(hostNetwork=True),
        "privileged": lambda ds: sc(ds).update(privileged=True),
        "escalation": lambda ds: sc(ds).update(allowPrivilegeEscalation=True),
        "writable root": lambda ds: sc(ds).update(readOnlyRootFilesystem=False),
        "SYS_ADMIN": lambda ds: sc(ds)["capabilities"]["add"].append("SYS_ADMIN"),
        "drop nothing": lambda ds: sc(ds)["capabilities"].pop("drop"),
        "unconfined": lambda ds: sc(ds).update(seccompProfile={"type": "Unconfined"}),
        "token": lambda ds: pod(ds).update(automountServiceAccountToken=True),
        "hostPath": lambda ds: pod(ds)["volumes"].append(
            {"name": "root", "hostPath": {"path": "/"}}),
    }
    for what, brk in sorted(breaks.items()):
        broken = copy.deepcopy(docs)
        brk(one(broken, "DaemonSet"))
        c.ok(security_problems(broken), "a DaemonSet with %s passed the checks" % what)
    broken = copy.deepcopy(docs) + [{"apiVersion": "rbac.authorization.k8s.io/v1",
                                     "kind": "ClusterRole", "metadata": {"name": "x"}}]
    c.ok(security_problems(broken), "an RBAC object passed the checks")


def config_text(docs):
    cm = one(docs, "ConfigMap")
    return cm["metadata"]["name"], cm["data"]["pymemd.conf"]


def check_consistency(c, ctx):
    docs = need_docs(ctx)
    ds = one(docs, "DaemonSet")
    tmpl = ds["spec"]["template"]
    pod = tmpl["spec"]
    ctr = pod["containers"][0]
    labels = tmpl["metadata"]["labels"]

    def selects(sel):
        return all(labels.get(k) == v for k, v in sel.get("matchLabels", {}).items()) and \
            not sel.get("matchExpressions")
    c.ok(selects(ds["spec"]["selector"]), "the DaemonSet's selector misses its pods")
    # Resources: requests for both, a memory limit equal to the unit's MemoryMax.
    res = ctr.get("resources", {})
    c.ok("cpu" in res.get("requests", {}) and "memory" in res.get("requests", {}),
         "no CPU and memory requests: %s" % res)
    c.eq("memory limit (the unit's MemoryMax)", unit_memory_max(),
         parse_quantity(res.get("limits", {}).get("memory", "0")))
    # Port: the config's listen, the container port, the image's EXPOSE, the probes.
    name, conf = config_text(docs)
    m = re.search(r"^listen = 0\.0\.0\.0:(\d+)$", conf, re.M)
    c.ok(m, "the ConfigMap's pymemd.conf does not listen on 0.0.0.0")
    port = int(m.group(1)) if m else None
    ports = {p["name"]: p["containerPort"] for p in ctr.get("ports", [])}
    c.eq("container port http-metrics", port, ports.get("http-metrics"))
    c.ok(re.search(r"^EXPOSE %s$" % port, containerfile(), re.M),
         "the Containerfile does not EXPOSE %s" % port)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = ctr.get(probe, {}).get("httpGet", {})
        c.eq(probe, {"path": "/healthz", "port": "http-metrics"},
             {"path": get.get("path"), "port": get.get("port")})
    # The config map is the file pymemd is told to read.
    mounts = {m["name"]: m for m in ctr.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    cfg = [n for n, v in vols.items() if v.get("configMap", {}).get("name") == name]
    c.eq("volumes of the ConfigMap", 1, len(cfg))
    if cfg:
        mnt = mounts.get(cfg[0], {})
        c.eq("its mount", {"mountPath": "/etc/pymemd", "readOnly": True},
             {"mountPath": mnt.get("mountPath"), "readOnly": mnt.get("readOnly")})
    c.eq("args", ["--config", "/etc/pymemd/pymemd.conf"], ctr.get("args"))
    # The downward API.
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
           for e in ctr.get("env", [])}
    c.eq("downward API", {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace",
                          "NODE_NAME": "spec.nodeName"},
         {k: env.get(k) for k in ("POD_NAME", "POD_NAMESPACE", "NODE_NAME")})
    c.eq("fsGroup (the image's pymemd group)", image_uid(),
         pod.get("securityContext", {}).get("fsGroup"))
    # Who selects the pods.
    svc = one(docs, "Service")
    c.ok(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
         "the Service does not select the pods")
    c.eq("Service targetPort", ["http-metrics"], [p["targetPort"] for p in svc["spec"]["ports"]])
    c.eq("Service clusterIP (headless)", "None", svc["spec"].get("clusterIP"))
    pm = one(docs, "PodMonitor")
    c.ok(selects(pm["spec"]["selector"]), "the PodMonitor does not select the pods")
    c.eq("PodMonitor namespaces", ["pymemd"], pm["spec"]["namespaceSelector"].get("matchNames"))
    c.eq("PodMonitor ports", ["http-metrics"],
         [e["port"] for e in pm["spec"]["podMetricsEndpoints"]])
    np = one(docs, "NetworkPolicy")
    c.ok(selects(np["spec"]["podSelector"]), "the NetworkPolicy does not select the pods")
    c.eq("NetworkPolicy ports", [["http-metrics"]],
         [[p["port"] for p in r.get("ports", [])] for r in np["spec"]["ingress"]])
    sa = one(docs, "ServiceAccount")
    c.eq("service account", sa["metadata"]["name"], pod.get("serviceAccountName"))


def check_config(c, ctx):
    """pymemd takes the ConfigMap's file and reads a real target with it."""
    docs = need_docs(ctx)
    _, conf = config_text(docs)
    tag, _ = make_tag("pymemdk8s")
    t = Target("target", target_argv([sys.executable], tag))
    fd, path = tempfile.mkstemp(prefix="pymemd-k8s-", suffix=".conf")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(conf)
        p = subprocess.run([ctx.pymemd, "--config", path, "--once", "--pid", str(t.pid)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                           timeout=60)
        if p.returncode != 0:
            raise Fail("pymemd --config (the ConfigMap's) --once exited %d: %s" % (
                p.returncode, short(p.stderr, 400)))
        procs = [x for x in json.loads(p.stdout)["processes"] if x.get("pid") == t.pid]
        if not procs or procs[0].get("status") != "ok":
            raise Fail("target not read: %s" % short(p.stdout, 400))
        gc_matches(c, t.truth, procs[0])
    finally:
        os.unlink(path)
        t.close()


# The target allocates a little after printing its ground truth (the integration matrix and the
# HTTP tests allow the same): generation 0's count within this, the rest exact.
GEN0_TOLERANCE = 20


def gc_matches(c, truth, proc):
    gens = proc["gc"]["generations"]
    got0 = gens[0]["count"]
    c.ok(abs(got0 - truth["get_count"][0]) <= GEN0_TOLERANCE,
         "generation 0 count: expected %d (+-%d), got %s" % (
             truth["get_count"][0], GEN0_TOLERANCE, got0))
    c.eq("generations 1 and 2 counts", list(truth["get_count"][1:]),
         [g["count"] for g in gens[1:]])
    c.eq("gc.get_threshold()", list(truth["get_threshold"]), [g["threshold"] for g in gens])
    for k in ("collections", "collected", "uncollectable"):
        c.eq(k, [st[k] for st in truth["get_stats"]], [g[k] for g in gens])
    c.eq("gc.isenabled()", truth["isenabled"], proc["gc"]["enabled"])
    c.eq("version", truth["version"], proc["python"]["version"])
    c.note("gc counts %s, the target's %s" % ([g["count"] for g in gens], truth["get_count"]))


class Ctx(object):
    pass


def run(args):
    ctx = Ctx()
    ctx.pymemd = args.pymemd
    ctx.files = manifest_files()
    ctx.docs = None
    try:
        ctx.node, ctx.modules = node_modules()
    except Skip as e:
        for name in ("schemas", "schemas-refuse", "security", "security-refuses",
                     "consistency", "config"):
            RESULTS.out("SKIP", "kubernetes-" + name, str(e))
        return
    case("kubernetes-schemas", check_schemas, ctx)
    case("kubernetes-schemas-refuse", check_schemas_refuse, ctx)
    case("kubernetes-security", check_security, ctx)
    case("kubernetes-security-refuses", check_security_refuses, ctx)
    case("kubernetes-consistency", check_consistency, ctx)
    case("kubernetes-config", check_config, ctx)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pymemd", required=True)
    args = ap.parse_args()
    return run_driver("deploy/kubernetes: schemas, security, consistency", run, args)


if __name__ == "__main__":
    sys.exit(main())
