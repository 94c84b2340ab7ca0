#!/usr/bin/env python3
"""The container image (Containerfile), built and run with Podman from Debian's packages,
nothing pulled from a registry:

- the build stage installs debian/control's Build-Depends (checked without Podman);
- a base image is imported from the Debian 12 minbase root .ci/run caches
  (~/.cache/pymemd/ci/debian-12-minbase.tar.gz), or debootstrapped into
  ~/.cache/pymemd/deploy/ when there is none, and the Containerfile is built on it
  (--build-arg BASE=...); the images and their layers are kept in ~/.cache/pymemd/deploy/
  (a storage of its own), so a run after a change of the sources only rebuilds pymemd;
- the image: pymemd and pymemctl with every library they link, no compiler, no -dev package,
  the user pymemd, the configuration listening on 0.0.0.0:9100, port 9100 exposed;
- run as the DaemonSet runs it (--pid=host, every capability dropped but SYS_PTRACE,
  DAC_READ_SEARCH and setpriv's SETUID, SETGID, SETPCAP; read-only root, no_new_privs, the
  runtime's default seccomp filter), it reads a CPython process of the host: its gc counts,
  thresholds and collections are the ones the target printed (pymemctl --json inside the
  container, over the container's own loopback); the sampler runs as the user pymemd holding
  SYS_PTRACE and DAC_READ_SEARCH only, the listener as pymemd holding nothing (from the host's
  /proc); the target is left running, untraced.

SKIP with the reason when Podman cannot run here (not installed, no usable runtime, as in
.ci/run's fresh Debian root) or no Debian 12 root can be had. Prints PASS/FAIL/SKIP lines and
ends with "N passed, M failed, K skipped".
"""
import argparse
import fcntl
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from pymemdtest import (RESULTS, Fail, Skip, Target, case, make_tag, proc_state,  # noqa: E402
                        run_driver, say, short, target_argv)
from test_kubernetes import gc_matches  # noqa: E402

SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
BASE = "localhost/pymemd-deploy-base:bookworm"
IMAGE = "localhost/pymemd:test"
BUILD_IMAGE = "localhost/pymemd-build:test"
KEPT = (1 << 19) | (1 << 2)  # CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH


def cache_root():
    return os.environ.get("PYMEMD_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache",
                                                              "pymemd")


class Podman(object):
    """podman with a storage of its own under ~/.cache/pymemd/deploy, runc (crun refuses a
    hybrid cgroup hierarchy) and the file limits this machine allows."""

    def __init__(self):
        self.exe = shutil.which("podman")
        top = os.path.join(cache_root(), "deploy")
        self.prefix = [self.exe, "--root", os.path.join(top, "storage"),
                       "--runroot", "/run/pymemd-deploy", "--log-level", "error"]
        if shutil.which("runc"):
            self.prefix += ["--runtime", "runc"]
        self.top = top

    def run(self, args, timeout=120, check=True):
        # Buildah keeps the build's cache mounts (ccache's directory) under TMPDIR.
        tmp = os.path.join(self.top, "tmp")
        os.makedirs(tmp, exist_ok=True)
        env = dict(os.environ, TMPDIR=tmp)
        p = subprocess.run(self.prefix + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=env)
        if check and p.returncode != 0:
            raise Fail("podman %s: status %d: %s" % (" ".join(args[:2]), p.returncode,
                                                     short(p.stderr, 600)))
        return p


def debian_root(podman):
    """The base image: imported from .ci/run's cached minbase tarball or one of our own."""
    if podman.run(["image", "exists", BASE], check=False).returncode == 0:
        return "cached"
    tarball = os.path.join(cache_root(), "ci", "debian-12-minbase.tar.gz")
    if not os.path.exists(tarball):
        tarball = os.path.join(podman.top, "debian-12-minbase.tar.gz")
    if not os.path.exists(tarball):
        if not shutil.which("debootstrap"):
            raise Skip("no Debian 12 root: neither %s nor debootstrap" % tarball)
        work = os.path.join(podman.top, "debootstrap")
        shutil.rmtree(work, ignore_errors=True)
        say("debootstrap --variant=minbase bookworm into %s" % work)
        p = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", work],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
        if p.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            raise Skip("debootstrap failed: %s" % short(p.stdout, 300))
        subprocess.run(["tar", "--numeric-owner", "-C", work, "-czf", tarball + ".tmp", "."],
                       check=True)
        os.rename(tarball + ".tmp", tarball)
        shutil.rmtree(work, ignore_errors=True)
    podman.run(["import", "--change", 'CMD ["/bin/bash"]', tarball, BASE], timeout=300)
    return "imported from %s" % tarball


def usable(podman):
    """Podman runs a container here: SKIP otherwise."""
    if not podman.exe:
        raise Skip("podman is not installed (scripts/deps.sh installs podman and runc)")
    if os.geteuid() != 0:
        raise Skip("needs root (a rootful podman: --pid=host and the capabilities)")
    try:
        p = podman.run(["info", "--format", "{{.Host.OCIRuntime.Name}}"], check=False,
                       timeout=60)
    except subprocess.TimeoutExpired:
        raise Skip("podman cannot run here: podman info did not answer in 60 s")
    if p.returncode != 0:
        raise Skip("podman cannot run here: %s" % short(p.stderr, 300))
    return p.stdout.decode().strip()


def check_build_depends(c, ctx):
    """The build stage installs every Build-Depends of debian/control."""
    with open(os.path.join(SRC, "debian", "control")) as f:
        control = f.read()
    m = re.search(r"^Build-Depends:(.*?)^\S", control, re.M | re.S)
    deps = set()
    for alt in m.group(1).split(","):
        names = [re.sub(r"\(.*?\)", "", a).strip() for a in alt.split("|")]
        if names[0] and not names[0].startswith("debhelper"):
            deps.add(tuple(n for n in names if n))
    with open(os.path.join(SRC, "Containerfile")) as f:
        text = f.read()
    stage = text.split("FROM ${BASE}")[1]
    run = re.search(r"apt-get install (.*?)>/dev/null", stage, re.S).group(1)
    words = set(run.replace("\\", " ").split())
    # systemd's pkg-config file only says where the unit goes; the image has no unit.
    exempt = {("systemd-dev", "systemd")}
    for alt in sorted(deps - exempt):
        c.ok(any(n in words for n in alt), "the build stage lacks %s" % " | ".join(alt))
    c.ok(exempt <= deps, "debian/control no longer has %s: update the exemption" % exempt)
    c.note("%d Build-Depends" % len(deps))


def check_build(c, ctx):
    podman = ctx.podman
    t0 = time.monotonic()
    base = debian_root(podman)
    t1 = time.monotonic()
    # --network=host: the build stages reach the Debian mirror without a container network.
    build = ["build", "--network=host", "--layers", "--build-arg", "BASE=" + BASE,
             "-f", os.path.join(SRC, "Containerfile")]
    p = podman.run(build + ["-t", IMAGE, SRC], timeout=1500, check=False)
    if p.returncode != 0:
        raise Fail("podman build: status %d: %s" % (p.returncode, short(
            p.stdout[-3000:] + p.stderr[-2000:], 2000)))
    ctx.built = True
    # The images of earlier builds go, but not the layers the next build reuses: naming the
    # build stage (all cached by now) keeps its layer of compilers from the pruning.
    podman.run(build + ["--target", "build", "-t", BUILD_IMAGE, SRC], timeout=300)
    podman.run(["image", "prune", "-f"], timeout=300)
    c.note("base %s in %.0f s; build %.0f s" % (base, t1 - t0, time.monotonic() - t1))


def need_image(ctx):
    if not ctx.built:
        raise Skip("the image was not built")


def in_image(ctx, argv, entrypoint):
    return ctx.podman.run(["run", "--rm", "--network=none", "--entrypoint", entrypoint] +
                          ctx.limits + [IMAGE] + argv, timeout=120)


def check_image(c, ctx):
    need_image(ctx)
    podman = ctx.podman
    pkgs = in_image(ctx, ["-W", "-f", "${Package}\n"], "dpkg-query").stdout.decode().split()
    dev = [p for p in pkgs if p.endswith("-dev") or re.fullmatch(
        r"(gcc|g\+\+|cpp|clang|make|meson|ninja-build|pkgconf|pkg-config|binutils)(-\d+)?", p)]
    c.eq("compilers and -dev packages in the image", [], dev)
    ldd = in_image(ctx, ["/usr/sbin/pymemd", "/usr/bin/pymemctl"], "ldd").stdout.decode()
    c.ok("not found" not in ldd, "libraries missing: %s" % short(ldd, 400))
    c.ok("libmicrohttpd" in ldd and "libcurl" in ldd,
         "ldd does not list the expected libraries: %s" % short(ldd, 400))
    ver = in_image(ctx, ["--version"], "/usr/sbin/pymemd").stdout.decode()
    c.ok(ver.startswith("pymemd "), "pymemd --version: %s" % short(ver))
    ctl = in_image(ctx, ["--help"], "/usr/bin/pymemctl")
    c.ok(b"pymemctl" in ctl.stdout, "pymemctl --help: %s" % short(ctl.stdout))
    ident = in_image(ctx, ["pymemd"], "id").stdout.decode().strip()
    c.ok(re.fullmatch(r"uid=(\d+)\(pymemd\) gid=\1\(pymemd\) groups=\1\(pymemd\)", ident),
         "user pymemd: %s" % ident)
    conf = in_image(ctx, ["/etc/pymemd/pymemd.conf"], "cat").stdout.decode()
    c.eq("listen lines of the image's pymemd.conf", ["listen = 0.0.0.0:9100"],
         re.findall(r"^listen.*$", conf, re.M))
    info = json.loads(podman.run(["image", "inspect", IMAGE]).stdout)[0]
    cfg = info.get("Config", {})
    c.eq("exposed ports", ["9100/tcp"], sorted(cfg.get("ExposedPorts", {})))
    c.eq("entry point ends with", "/usr/sbin/pymemd", (cfg.get("Entrypoint") or [""])[-1])
    c.note("%d packages, %.0f MB" % (len(pkgs), info.get("Size", 0) / 1e6))


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def children(pid):
    kids = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids


def check_reads_host(c, ctx):
    need_image(ctx)
    podman = ctx.podman
    tag, _ = make_tag("pymemdctr")
    t = Target("target", target_argv([sys.executable], tag))
    name = "pymemd-deploy-test-%d" % os.getpid()
    try:
        podman.run(["run", "-d", "--name", name, "--pid=host", "--network=none", "--read-only",
                    "--cap-drop=all",
                    "--cap-add=SYS_PTRACE,DAC_READ_SEARCH,SETUID,SETGID,SETPCAP",
                    "--security-opt=no-new-privileges"] + ctx.limits +
                   [IMAGE, "--config", "/etc/pymemd/pymemd.conf", "--pid", str(t.pid)])
        after = time.time()
        got = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            p = podman.run(["exec", name, "pymemctl", "--json", "show", str(t.pid)], check=False)
            if p.returncode == 0:
                got = json.loads(p.stdout)
                if got.get("status") == "ok" and got.get("sampled_at", 0) > after:
                    break
            state = podman.run(["inspect", "-f", "{{.State.Running}}", name]).stdout
            if state.strip() != b"true":
                raise Fail("the container stopped: %s" % short(
                    podman.run(["logs", name], check=False).stderr, 600))
            time.sleep(0.5)
        if not got or got.get("status") != "ok":
            raise Fail("pymemctl show %d in the container: %s" % (t.pid, short(json.dumps(got))))
        gc_matches(c, t.truth, got)
        # Who holds what, seen from the host.
        main = int(podman.run(["inspect", "-f", "{{.State.Pid}}", name]).stdout)
        st = status(main)
        uid = st["Uid"].split()
        c.ok(len(set(uid)) == 1 and uid[0] != "0", "the sampler's uids: %s" % st["Uid"])
        for k in ("CapEff", "CapPrm", "CapAmb", "CapBnd"):
            c.eq("the sampler's %s" % k, KEPT, int(st[k], 16))
        c.eq("the sampler's NoNewPrivs", "1", st["NoNewPrivs"])
        kids = [k for k in children(main) if b"--privsep-listener" in open(
            "/proc/%d/cmdline" % k, "rb").read()]
        c.eq("listeners", 1, len(kids))
        if kids:
            ls = status(kids[0])
            c.eq("the listener's uids", st["Uid"], ls["Uid"])
            for k in ("CapEff", "CapPrm", "CapAmb"):
                c.eq("the listener's %s" % k, 0, int(ls[k], 16))
            c.eq("the listener's NoNewPrivs", "1", ls["NoNewPrivs"])
        c.ok(proc_state(t.pid) not in ("t", "T", None), "the target is %s" % proc_state(t.pid))
        podman.run(["stop", "-t", "10", name], timeout=60)
        rc = podman.run(["inspect", "-f", "{{.State.ExitCode}}", name]).stdout.strip()
        c.eq("pymemd's exit status on SIGTERM", b"0", rc)
        c.ok(t.alive() and proc_state(t.pid) not in ("t", "T"),
             "the target did not survive pymemd: %s" % proc_state(t.pid))
        with open("/proc/%d/status" % t.pid) as f:
            c.ok("TracerPid:\t0\n" in f.read(), "the target is still traced")
    finally:
        podman.run(["rm", "-f", "-t", "0", name], check=False, timeout=60)
        t.close()


class Ctx(object):
    pass


def run():
    ctx = Ctx()
    ctx.built = False
    case("container-build-depends", check_build_depends, ctx)
    ctx.podman = Podman()
    try:
        runtime = usable(ctx.podman)
    except Skip as e:
        for name in ("build", "image", "reads-host"):
            RESULTS.out("SKIP", "container-" + name, str(e))
        return
    say("podman %s, runtime %s" % (ctx.podman.exe, runtime))
    # Podman's default limits (1M files) may be above what this machine lets root set.
    nofile = min(4352, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    nproc = min(4096, resource.getrlimit(resource.RLIMIT_NPROC)[1])
    ctx.limits = ["--ulimit", "nofile=%d:%d" % (nofile, nofile),
                  "--ulimit", "nproc=%d:%d" % (nproc, nproc)]
    os.makedirs(ctx.podman.top, exist_ok=True)
    # One build at a time in the shared storage (two build dirs may run the suite at once).
    with open(os.path.join(ctx.podman.top, "podman.lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        case("container-build", check_build, ctx)
        case("container-image", check_image, ctx)
        case("container-reads-host", check_reads_host, ctx)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.parse_args()
    return run_driver("Containerfile: podman build, run with --pid=host", run)


if __name__ == "__main__":
    sys.exit(main())
