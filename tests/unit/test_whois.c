/* whois: /proc/PID/cgroup as each runtime writes it (lines in the forms public projects record
 * from real hosts: Docker on Debian and CentOS, Kubernetes with either cgroup driver, CRI-O,
 * Podman rootful and rootless, systemd services, user units, nspawn), NSpid lines, the
 * template language; and, on this machine, the live files and a real fork tree for the
 * ancestor walk. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc/whois.h"

#define ID1  "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"
#define ID2  "3e74d3fd9db4c9dd921ae05c2502fb984d0cde1b36e581b13f79c639da4518a1"
#define UID  "3d274242-8ee0-11e9-a8a6-1e68d864ef1a"
#define UIDU "3d274242_8ee0_11e9_a8a6_1e68d864ef1a"

static WhoisCgroup parse(const char *text)
{
    WhoisCgroup w;
    memset(&w, 0x55, sizeof(w));
    assert_int_equal(whois_parse_cgroup(text, strlen(text), &w), 0);
    return w;
}

static void expect(const WhoisCgroup *w, const char *path, const char *id, const char *runtime,
                   const char *pod, const char *qos, const char *unit)
{
    assert_string_equal(w->path, path);
    assert_string_equal(w->container_id, id);
    if (runtime)
        assert_string_equal(w->runtime, runtime);
    else
        assert_null(w->runtime);
    assert_string_equal(w->pod_uid, pod);
    if (qos)
        assert_string_equal(w->qos_class, qos);
    else
        assert_null(w->qos_class);
    assert_string_equal(w->unit, unit);
}

static void docker(void **state)
{
    /* CentOS 7, systemd driver, cgroup v1 only. */
    WhoisCgroup w = parse("10:devices:/system.slice/docker-" ID1 ".scope\n"
                          "8:memory:/system.slice/docker-" ID1 ".scope\n"
                          "2:cpuacct,cpu:/system.slice/docker-" ID1 ".scope\n"
                          "1:name=systemd:/system.slice/docker-" ID1 ".scope\n");
    expect(&w, "/system.slice/docker-" ID1 ".scope", ID1, "docker", "", NULL, "");
    /* Debian, cgroupfs driver, v1: the id under /docker. */
    w = parse("10:net_prio:/docker/" ID2 "\n4:memory:/docker/" ID2 "\n2:cpu:/docker/" ID2 "\n");
    expect(&w, "/docker/" ID2, ID2, "docker", "", NULL, "");
    /* cgroup v2, systemd driver (Docker 20.10+ on a v2 host). */
    w = parse("0::/system.slice/docker-" ID1 ".scope\n");
    expect(&w, "/system.slice/docker-" ID1 ".scope", ID1, "docker", "", NULL, "");
    /* cgroup v2 with the private cgroup namespace Docker gives a container by default: the
     * process sees "/", and nothing can be told. */
    w = parse("0::/\n");
    expect(&w, "/", "", NULL, "", NULL, "");
    /* Hybrid: the unified line is "/" (systemd did not use it), the v1 lines tell. */
    w = parse("12:pids:/docker/" ID2 "\n1:name=systemd:/docker/" ID2 "\n0::/\n");
    expect(&w, "/docker/" ID2, ID2, "docker", "", NULL, "");
    /* dockerd itself is a service, not a container. */
    w = parse("0::/system.slice/docker.service\n");
    expect(&w, "/system.slice/docker.service", "", NULL, "", NULL, "docker.service");
}

static void kubernetes(void **state)
{
    /* cgroupfs driver, v1: runtime not in the path (containerd and dockershim alike). */
    WhoisCgroup w = parse("11:perf_event:/kubepods/besteffort/pod" UID "/" ID2 "\n"
                          "9:memory:/kubepods/besteffort/pod" UID "/" ID2 "\n"
                          "1:name=systemd:/kubepods/besteffort/pod" UID "/" ID2 "\n");
    expect(&w, "/kubepods/besteffort/pod" UID "/" ID2, ID2, NULL, UID, "besteffort", "");
    /* cgroupfs driver, a guaranteed pod: no QoS level in the path. */
    w = parse("0::/kubepods/pod" UID "/" ID2 "\n");
    expect(&w, "/kubepods/pod" UID "/" ID2, ID2, NULL, UID, "guaranteed", "");
    /* containerd, systemd driver, v2: the UID written with '_'. */
    w = parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU
              ".slice/cri-containerd-" ID1 ".scope\n");
    expect(&w,
           "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU
           ".slice/cri-containerd-" ID1 ".scope",
           ID1, "containerd", UID, "burstable", "");
    /* CRI-O, systemd driver, a guaranteed pod. */
    w = parse("0::/kubepods.slice/kubepods-pod" UIDU ".slice/crio-" ID2 ".scope\n");
    expect(&w, "/kubepods.slice/kubepods-pod" UIDU ".slice/crio-" ID2 ".scope", ID2, "cri-o", UID,
           "guaranteed", "");
    /* CRI-O, cgroupfs driver. */
    w = parse("4:memory:/kubepods/burstable/pod" UID "/crio-" ID1 "\n");
    expect(&w, "/kubepods/burstable/pod" UID "/crio-" ID1, ID1, "cri-o", UID, "burstable", "");
    /* CRI-O's monitor (conmon) is in the pod, not in a container. */
    w = parse("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UIDU
              ".slice/crio-conmon-" ID1 ".scope\n");
    expect(&w,
           "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UIDU
           ".slice/crio-conmon-" ID1 ".scope",
           "", NULL, UID, "besteffort", "crio-conmon-" ID1 ".scope");
    /* Read by a pymemd in its own cgroup namespace (a DaemonSet on a v2 node): the kernel
     * prints the path relative to the reader's root, with "..". */
    w = parse("0::/../../kubepods-besteffort.slice/kubepods-besteffort-pod" UIDU
              ".slice/cri-containerd-" ID2 ".scope\n");
    assert_string_equal(w.container_id, ID2);
    assert_string_equal(w.runtime, "containerd");
    assert_string_equal(w.pod_uid, UID);
    assert_string_equal(w.qos_class, "besteffort");
    /* Not a UID: no pod. */
    w = parse("0::/kubepods/burstable/podnot-a-uid/" ID2 "\n");
    assert_string_equal(w.pod_uid, "");
    assert_string_equal(w.container_id, ID2);
}

static void podman_and_machines(void **state)
{
    /* Rootful, v2: the container's processes in a "container" child of the scope. */
    WhoisCgroup w = parse("0::/machine.slice/libpod-" ID1 ".scope/container\n");
    expect(&w, "/machine.slice/libpod-" ID1 ".scope/container", ID1, "podman", "", NULL, "");
    /* Rootless, v2, under the user's manager. */
    w = parse("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID2 ".scope\n");
    expect(&w, "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID2 ".scope", ID2,
           "podman", "", NULL, "");
    /* cgroupfs manager, v1. */
    w = parse("5:memory:/libpod_parent/libpod-" ID2 "\n");
    expect(&w, "/libpod_parent/libpod-" ID2, ID2, "podman", "", NULL, "");
    /* Podman's conmon. */
    w = parse("0::/machine.slice/libpod-conmon-" ID1 ".scope\n");
    expect(&w, "/machine.slice/libpod-conmon-" ID1 ".scope", "", NULL, "", NULL,
           "libpod-conmon-" ID1 ".scope");
    /* systemd-nspawn started by machinectl: the container's own units count. */
    w = parse("0::/machine.slice/systemd-nspawn@debian12.service/payload/system.slice/"
              "gunicorn.service\n");
    expect(&w,
           "/machine.slice/systemd-nspawn@debian12.service/payload/system.slice/gunicorn.service",
           "debian12", "systemd-nspawn", "", NULL, "gunicorn.service");
    /* A machine registered by hand (systemd-nspawn without machinectl). */
    w = parse("0::/machine.slice/machine-build.scope/payload\n");
    expect(&w, "/machine.slice/machine-build.scope/payload", "build", "systemd-machined", "", NULL,
           "");
    /* ECS on EC2: a task id and a container id, runtime not in the path. */
    w = parse("8:memory:/ecs/haissam-ecs-classic/5a0d5ceddf6c44c1928d367a815d890f/" ID2 "\n");
    assert_string_equal(w.container_id, ID2);
    assert_null(w.runtime);
}

static void units(void **state)
{
    WhoisCgroup w = parse("0::/system.slice/gunicorn.service\n");
    expect(&w, "/system.slice/gunicorn.service", "", NULL, "", NULL, "gunicorn.service");
    /* A unit with a sub-cgroup of its own (Delegate=yes). */
    w = parse("0::/system.slice/celery.service/worker\n");
    assert_string_equal(w.unit, "celery.service");
    /* A user unit, under the user's manager: the innermost unit. */
    w = parse("0::/user.slice/user-1000.slice/user@1000.service/app.slice/jupyter.service\n");
    assert_string_equal(w.unit, "jupyter.service");
    /* A login session. */
    w = parse("0::/user.slice/user-1000.slice/session-4.scope\n");
    assert_string_equal(w.unit, "session-4.scope");
    /* systemd-run --scope: a transient scope, escapes kept as systemd names it. */
    w = parse("0::/system.slice/run-r0f3\\x2d1.scope\n");
    assert_string_equal(w.unit, "run-r0f3\\x2d1.scope");
    /* Hybrid: the unit from the unified line, the memory controller's path ignored. */
    w = parse("9:name=systemd:/system.slice/ssh.service\n4:memory:/system.slice/ssh.service\n"
              "0::/system.slice/ssh.service\n");
    expect(&w, "/system.slice/ssh.service", "", NULL, "", NULL, "ssh.service");
    /* This sandbox's own kind of file: everything "/" but one controller. */
    w = parse("9:name=systemd:/\n4:memory:/process_api/83dd567ac3ba23a7128560e70df1c529\n"
              "1:cpu:/\n0::/\n");
    expect(&w, "/process_api/83dd567ac3ba23a7128560e70df1c529", "", NULL, "", NULL, "");
    /* "service" and ".scope" alone are no unit names. */
    w = parse("0::/.service/.scope\n");
    assert_string_equal(w.unit, "");
}

static void hostile(void **state)
{
    WhoisCgroup w;
    assert_int_equal(whois_parse_cgroup("", 0, &w), -EINVAL);
    assert_int_equal(whois_parse_cgroup("garbage\nno colons\n", 18, &w), -EINVAL);
    /* Lines the kernel would not write are skipped; the good one counts. */
    w = parse("x\n::\n1:cpu:relative\n0::/system.slice/a.service");
    assert_string_equal(w.unit, "a.service");
    /* A path longer than WHOIS_PATH_MAX is cut and says so. */
    char big[4096] = "0::/";
    memset(big + 4, 'a', 2000);
    memcpy(big + 2004, ".service\n", 10);
    w = parse(big);
    assert_int_equal(strlen(w.path), WHOIS_PATH_MAX - 1);
    assert_string_equal(w.path + WHOIS_PATH_MAX - 4, "...");
    /* A unit name longer than the field is cut, not overrun. */
    assert_int_equal(strlen(w.unit), WHOIS_UNIT_MAX - 1);
    /* Bytes that are not UTF-8 in a name anyone may choose. */
    w = parse("0::/system.slice/caf\xe9.service\n");
    assert_string_equal(w.unit, "caf\xef\xbf\xbd.service");
    assert_string_equal(w.path, "/system.slice/caf\xef\xbf\xbd.service");
    /* Prefixes and suffixes with nothing between them. */
    w = parse("0::/kubepods-.slice/kubepods-pod.slice/docker-.scope/crio-/libpod-.scope/"
              "systemd-nspawn@.service/machine-.scope\n");
    assert_string_equal(w.container_id, "");
    assert_string_equal(w.pod_uid, "");
    assert_null(w.qos_class);
    assert_string_equal(w.unit, "machine-.scope");
    /* No NUL: only len bytes are looked at. */
    assert_int_equal(whois_parse_cgroup("0::/x.service/y.service", 14, &w), 0);
    assert_string_equal(w.unit, "x.service");
}

static void nspid(void **state)
{
    pid_t p = 0;
    const char *s = "Name:\tpython3\nTgid:\t4242\nNSpid:\t4242\t17\t1\nNSpgid:\t4242\t17\t1\n";
    assert_int_equal(whois_parse_nspid(s, strlen(s), &p), 0);
    assert_int_equal(p, 1);
    s = "Name:\tx\nNSpid:\t77\n";
    assert_int_equal(whois_parse_nspid(s, strlen(s), &p), 0);
    assert_int_equal(p, 77);
    s = "Name:\tx\nPid:\t77\n";
    assert_int_equal(whois_parse_nspid(s, strlen(s), &p), -ENOENT);
    s = "NSpid:\t\n";
    assert_int_equal(whois_parse_nspid(s, strlen(s), &p), -EINVAL);
    s = "NSpid:\t12x\n";
    assert_int_equal(whois_parse_nspid(s, strlen(s), &p), -EINVAL);
    s = "NSpid:\t99999999999999999999\n";
    assert_int_equal(whois_parse_nspid(s, strlen(s), &p), -EINVAL);
}

/* The live files: whatever this machine is, the parse of /proc/self/cgroup is what reading it
 * gives, and a process's pid in its own namespace is what getpid() says there. */
static void live(void **state)
{
    char text[65536];
    FILE *f = fopen("/proc/self/cgroup", "re");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text), f);
    fclose(f);
    WhoisCgroup a, b;
    assert_int_equal(whois_parse_cgroup(text, n, &a), 0);
    assert_int_equal(whois_read_cgroup(getpid(), &b), 0);
    assert_memory_equal(&a, &b, sizeof(a));

    pid_t p = 0;
    assert_int_equal(whois_ns_pid(getpid(), &p), 0);
    assert_int_equal(p, getpid());

    char comm[64];
    assert_int_equal(whois_comm(getpid(), comm, sizeof(comm)), 0);
    assert_string_equal(comm, "test_whois");

    /* A pid that names nothing (the highest possible is below 2^22). */
    assert_int_equal(whois_read_cgroup(1 << 23, &a), -ESRCH);
    assert_int_equal(whois_ns_pid(1 << 23, &p), -ESRCH);
    assert_int_equal(whois_comm(1 << 23, comm, sizeof(comm)), -ESRCH);
}

/* A real fork tree of this test binary: child and grandchild are forks of this process (one
 * image); a child that exec()s the same binary is another image; the test runner above this
 * process runs another program. */
static void ancestors(void **state)
{
    int to_child[2], from_child[2];
    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(from_child), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* The child forks the grandchild, reports its pid, and both wait to be told to go. */
        close(to_child[1]);
        close(from_child[0]);
        pid_t grandchild = fork();
        if (grandchild == 0) {
            char c;
            while (read(to_child[0], &c, 1) > 0)
                ;
            _exit(0);
        }
        if (write(from_child[1], &grandchild, sizeof(grandchild)) != sizeof(grandchild))
            _exit(1);
        char c;
        while (read(to_child[0], &c, 1) > 0)
            ;
        waitpid(grandchild, NULL, 0);
        _exit(0);
    }
    close(to_child[0]);
    close(from_child[1]);
    pid_t grandchild = 0;
    assert_int_equal(read(from_child[0], &grandchild, sizeof(grandchild)), sizeof(grandchild));

    pid_t top = 0;
    assert_int_equal(whois_top_ancestor(grandchild, &top), 0);
    assert_int_equal(top, getpid());
    assert_int_equal(whois_top_ancestor(child, &top), 0);
    assert_int_equal(top, getpid());
    /* The runner runs another program: this process is its own top. */
    assert_int_equal(whois_top_ancestor(getpid(), &top), 0);
    assert_int_equal(top, getpid());

    /* The same executable, exec()ed afresh by a child of ours: a program of its own. */
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t again = fork();
    assert_true(again >= 0);
    if (again == 0) {
        close(ready[0]);
        /* This test binary again (see main): it says it is up on its stdout, the pipe. */
        dup2(ready[1], 1);
        execl("/proc/self/exe", "test_whois", "--wait-forever", (char *)NULL);
        _exit(127);
    }
    close(ready[1]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_int_equal(whois_top_ancestor(again, &top), 0);
    assert_int_equal(top, again);
    kill(again, SIGKILL);
    waitpid(again, NULL, 0);

    close(to_child[1]);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(from_child[0]);
    assert_int_equal(whois_top_ancestor(child, &top), -ESRCH);
}

static void templates(void **state)
{
    char err[512], out[WHOIS_GROUP_MAX];
    assert_int_equal(whois_template_check(WHOIS_TEMPLATE_DEFAULT, err, sizeof(err)), 0);
    assert_int_equal(whois_template_check("{unit}/{top_python_ancestor}", err, sizeof(err)), 0);
    assert_int_equal(whois_template_check("pod-{pod_uid}:{comm}", err, sizeof(err)), 0);

    assert_int_equal(whois_template_check("{comn}", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "group: unknown field {comn} (known: {comm}, {exe_base}, "
                             "{top_python_ancestor}, {unit}, {container_id}, {pod_uid})");
    assert_int_equal(whois_template_check("x{comm", err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "group: \"{\" at byte 2 is not closed");
    assert_int_equal(whois_template_check("comm}", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "\"}\" at byte 5 closes no field"));
    assert_int_equal(whois_template_check("comm", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "names no field"));
    assert_int_equal(whois_template_check("", err, sizeof(err)), -EINVAL);
    assert_int_equal(whois_template_check("{}", err, sizeof(err)), -EINVAL);
    char big[WHOIS_TEMPLATE_MAX + 8];
    memset(big, 'x', sizeof(big) - 1);
    memcpy(big, "{comm}", 6);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(whois_template_check(big, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "at most 256"));

    WhoisFields f = {.comm = "python3",
                     .exe_base = "python3.11",
                     .top_python_ancestor = "gunicorn",
                     .unit = "web.service",
                     .container_id = "",
                     .pod_uid = NULL};
    whois_template_expand(WHOIS_TEMPLATE_DEFAULT, &f, out, sizeof(out));
    assert_string_equal(out, "gunicorn");
    whois_template_expand("{unit}/{top_python_ancestor}", &f, out, sizeof(out));
    assert_string_equal(out, "web.service/gunicorn");
    whois_template_expand("{exe_base}-{comm}", &f, out, sizeof(out));
    assert_string_equal(out, "python3.11-python3");
    /* Unknown values expand to nothing; a group left empty is the comm. */
    whois_template_expand("{container_id}{pod_uid}", &f, out, sizeof(out));
    assert_string_equal(out, "python3");
    whois_template_expand("c:{container_id}", &f, out, sizeof(out));
    assert_string_equal(out, "c:");
    /* Cut to the buffer, NUL-terminated. */
    char small[6];
    whois_template_expand("{unit}/{comm}", &f, small, sizeof(small));
    assert_string_equal(small, "web.s");
}

int main(int argc, char **argv)
{
    /* Started by the ancestors test as a program image of its own: say so, then wait. */
    if (argc == 2 && strcmp(argv[1], "--wait-forever") == 0) {
        if (write(1, "r", 1) != 1)
            return 1;
        for (;;)
            pause();
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(docker),
        cmocka_unit_test(kubernetes),
        cmocka_unit_test(podman_and_machines),
        cmocka_unit_test(units),
        cmocka_unit_test(hostile),
        cmocka_unit_test(nspid),
        cmocka_unit_test(live),
        cmocka_unit_test(ancestors),
        cmocka_unit_test(templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
