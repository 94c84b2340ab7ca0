/* procinfo: every value is compared with what the test reads from /proc itself, for a child that
 * the test controls: run from a copy of this binary whose name has a space and non-ASCII bytes,
 * with arguments to match, renamed with prctl, holding 20 MiB of touched anonymous memory and 3
 * extra threads, blocked on a pipe. Values that can move between two reads (rss, anon, pss) get
 * a few pages of slack; everything else must match exactly. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libproc2/pids.h>

#include "proc/procinfo.h"

#define CHILD_ENV    "PM_PROCINFO_CHILD"
#define CHILD_FLAG   "--pm-child"
#define CHILD_COMM   "pm-child"
#define CHILD_MEM    (20u << 20)
#define CHILD_EXTRA  3
#define SLACK_PAGES  4
#define EXIT_SKIPPED 77

/* The child under test, shared by the tests of the group; the teardown kills whatever is left. */
static struct {
    pid_t pid;
    int release_fd; /* closing it lets the child exit */
    char dir[PATH_MAX];
    char exe[PATH_MAX + 32]; /* the copy of this binary the child runs */
} child = {.release_fd = -1};

/* ---- the child side ------------------------------------------------------------------------ */

static void *idle_thread(void *arg)
{
    for (;;)
        pause();
    return NULL;
}

static int child_main(int ready_fd, int release_fd)
{
    if (prctl(PR_SET_NAME, CHILD_COMM) < 0)
        return 2;
    char *mem = mmap(NULL, CHILD_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return 3;
    memset(mem, 0x5a, CHILD_MEM);
    for (int i = 0; i < CHILD_EXTRA; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
            return 4;
    }
    if (write(ready_fd, "r", 1) != 1)
        return 5;
    close(ready_fd);
    char c;
    while (read(release_fd, &c, 1) < 0 && errno == EINTR)
        ;
    _exit(0);
}

/* ---- ground truth, read independently of the code under test ------------------------------- */

/* The whole file; the length, or -1. */
static ssize_t slurp(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    for (;;) {
        ssize_t k = read(fd, buf + len, size - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            close(fd);
            if (k < 0)
                return -1;
            buf[len] = '\0';
            return (ssize_t)len;
        }
        len += (size_t)k;
        assert_true(len < size - 1);
    }
}

static ssize_t slurp_pid(pid_t pid, const char *file, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    return slurp(path, buf, size);
}

/* The first number after "key:" at the start of a line, times 1024 for a kB value; -1 if the
 * key is not there. */
static int64_t field(const char *text, const char *key)
{
    size_t len = strlen(key);
    for (const char *s = text; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL) {
        if (strncmp(s, key, len) != 0 || s[len] != ':')
            continue;
        char *end;
        long long v = strtoll(s + len + 1, &end, 10);
        while (*end == ' ')
            end++;
        return strncmp(end, "kB", 2) == 0 ? v * 1024 : v;
    }
    return -1;
}

static int64_t status_field(pid_t pid, const char *key)
{
    static char buf[65536];
    assert_true(slurp_pid(pid, "status", buf, sizeof(buf)) > 0);
    return field(buf, key);
}

static int64_t rollup_pss(pid_t pid)
{
    static char buf[8192];
    assert_true(slurp_pid(pid, "smaps_rollup", buf, sizeof(buf)) > 0);
    return field(buf, "Pss");
}

/* Field 22 of /proc/PID/stat; fields are counted after the parenthesised comm, which may hold
 * anything. */
static uint64_t stat_starttime(pid_t pid)
{
    char buf[4096];
    assert_true(slurp_pid(pid, "stat", buf, sizeof(buf)) > 0);
    char *s = strrchr(buf, ')');
    assert_non_null(s);
    s += 2;
    for (int f = 3; f < 22; f++) {
        s = strchr(s, ' ');
        assert_non_null(s);
        s++;
    }
    return strtoull(s, NULL, 10);
}

static double boot_time(void)
{
    static char buf[65536];
    assert_true(slurp("/proc/stat", buf, sizeof(buf)) > 0);
    int64_t b = field(buf, "btime");
    if (b < 0) {
        const char *s = strstr(buf, "btime ");
        assert_non_null(s);
        b = strtoll(s + 6, NULL, 10);
    }
    return (double)b;
}

static void expect_cmdline(pid_t pid, char *out, size_t size)
{
    ssize_t n = slurp_pid(pid, "cmdline", out, size);
    assert_true(n >= 0);
    if (n > 0 && out[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (out[i] == '\0')
            out[i] = ' ';
    out[n] = '\0';
}

static bool readlink_pid(pid_t pid, const char *file, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    ssize_t n = readlink(path, out, size - 1);
    if (n < 0)
        return false;
    out[n] = '\0';
    return true;
}

/* v within [min(a, b) - slack, max(a, b) + slack], a and b read on either side of v. */
static bool between(int64_t v, int64_t a, int64_t b)
{
    int64_t slack = SLACK_PAGES * sysconf(_SC_PAGESIZE);
    return a >= 0 && b >= 0 && v >= MIN(a, b) - slack && v <= MAX(a, b) + slack;
}

static void assert_between(int64_t v, int64_t a, int64_t b)
{
    int64_t slack = SLACK_PAGES * sysconf(_SC_PAGESIZE);
    assert_true(a >= 0 && b >= 0);
    assert_in_range(v, MIN(a, b) - slack, MAX(a, b) + slack);
}

/* ---- setup ---------------------------------------------------------------------------------- */

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t k;
    int r = 0;
    while ((k = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)k) != k) {
            r = -1;
            break;
        }
    if (k < 0)
        r = -1;
    close(in);
    /* Closed before any fork: an exec of a file someone holds open for writing is ETXTBSY. */
    if (close(out) < 0)
        r = -1;
    return r;
}

/* Runs the copy of this binary with argv (which may be anything, even empty: the child is told
 * what it is through the environment) and waits until it is ready. The pid, or -1;
 * *release_fd is the pipe end whose closing lets the child exit. */
static pid_t spawn_child(char *const argv[], int *release_fd)
{
    int ready[2], release[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(release, O_CLOEXEC) < 0) {
        close(ready[0]);
        close(ready[1]);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Dies with the test, whatever happens to the test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        char env[64];
        /* dup() drops O_CLOEXEC. */
        snprintf(env, sizeof(env), CHILD_ENV "=%d,%d", dup(ready[1]), dup(release[0]));
        char *envp[] = {env, NULL};
        execve(child.exe, argv, envp);
        _exit(127);
    }
    close(ready[1]);
    close(release[0]);
    char c;
    ssize_t k = -1;
    while (pid > 0 && (k = read(ready[0], &c, 1)) < 0 && errno == EINTR)
        ;
    close(ready[0]);
    if (k != 1) {
        close(release[1]);
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        return -1;
    }
    *release_fd = release[1];
    return pid;
}

static int start_child(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        return -1;
    self[n] = '\0';
    /* Next to the test binary: the build directory is writable and, unlike /tmp at times, not
     * mounted noexec. */
    snprintf(child.dir, sizeof(child.dir), "%s/pm-procinfo-XXXXXX", dirname(self));
    if (!mkdtemp(child.dir)) {
        child.dir[0] = '\0';
        return -1;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        return -1;
    self[n] = '\0';
    snprintf(child.exe, sizeof(child.exe), "%s/pm child \xc3\xa9", child.dir);
    if (copy_file(self, child.exe) < 0)
        return -1;
    char flag[] = CHILD_FLAG, spaced[] = "arg with space", empty[] = "";
    char unicode[] = "\xc3\xbc"
                     "nic\xc3\xb6"
                     "de";
    char *argv[] = {child.exe, flag, spaced, empty, unicode, NULL};
    child.pid = spawn_child(argv, &child.release_fd);
    return child.pid > 0 ? 0 : -1;
}

static void reap_child(void)
{
    if (child.pid > 0) {
        kill(child.pid, SIGKILL);
        waitpid(child.pid, NULL, 0);
        child.pid = 0;
    }
}

static int group_teardown(void **state)
{
    reap_child();
    if (child.release_fd >= 0)
        close(child.release_fd);
    if (child.exe[0])
        unlink(child.exe);
    if (child.dir[0])
        rmdir(child.dir);
    return 0;
}

static int group_setup(void **state)
{
    if (start_child() == 0)
        return 0;
    group_teardown(state);
    return -1;
}

static int pi_setup(void **state)
{
    ProcInfo *p = NULL;
    if (procinfo_new(&p) < 0)
        return -1;
    *state = p;
    return 0;
}

static int pi_teardown(void **state)
{
    procinfo_free(*state);
    return 0;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void identity_child(void **state)
{
    ProcInfo *p = *state;
    _cleanup_(procidentity_done) ProcIdentity id = {0};
    char buf[65536], link[PATH_MAX];

    assert_int_equal(procinfo_identity(p, child.pid, &id), 0);
    assert_int_equal(id.pid, child.pid);

    assert_string_equal(id.comm, CHILD_COMM);
    assert_true(slurp_pid(child.pid, "comm", buf, sizeof(buf)) > 0);
    assert_string_equal(id.comm, strtok(buf, "\n"));

    /* Raw bytes, spaces inside arguments and the empty argument kept as they are. */
    expect_cmdline(child.pid, buf, sizeof(buf));
    assert_non_null(id.cmdline);
    assert_string_equal(id.cmdline, buf);
    assert_non_null(strstr(id.cmdline, " " CHILD_FLAG " "));
    assert_non_null(strstr(id.cmdline, " arg with space  \xc3\xbc"
                                       "nic\xc3\xb6"
                                       "de"));

    assert_true(readlink_pid(child.pid, "exe", link, sizeof(link)));
    assert_non_null(id.exe);
    assert_string_equal(id.exe, link);
    assert_string_equal(id.exe, child.exe);

    assert_int_equal(id.start_ticks, stat_starttime(child.pid));
    /* And it is a recent time, not an offset from boot. */
    assert_true(fabs(id.start_time - (double)time(NULL)) < 3600);

    /* The kernel computes btime from the wall clock at each read, so it can move by a second
     * when the clock is stepped: a fresh ProcInfo, made between two reads of it, must have
     * taken one of the two. */
    double b0 = boot_time();
    _cleanup_(procinfo_freep) ProcInfo *fresh = NULL;
    assert_int_equal(procinfo_new(&fresh), 0);
    double b1 = boot_time();
    _cleanup_(procidentity_done) ProcIdentity id2 = {0};
    assert_int_equal(procinfo_identity(fresh, child.pid, &id2), 0);
    double ticks = (double)id2.start_ticks / (double)sysconf(_SC_CLK_TCK);
    assert_true(fabs(id2.start_time - (b0 + ticks)) < 1e-6 ||
                fabs(id2.start_time - (b1 + ticks)) < 1e-6);

    assert_int_equal(id.uid, status_field(child.pid, "Uid"));
    assert_int_equal(id.threads, status_field(child.pid, "Threads"));
    assert_int_equal(id.threads, 1 + CHILD_EXTRA);
}

static void identity_self(void **state)
{
    ProcInfo *p = *state;
    _cleanup_(procidentity_done) ProcIdentity id = {0};
    char buf[65536], link[PATH_MAX];

    assert_int_equal(procinfo_identity(p, getpid(), &id), 0);
    assert_true(slurp_pid(getpid(), "comm", buf, sizeof(buf)) > 0);
    assert_string_equal(id.comm, strtok(buf, "\n"));
    assert_true(readlink_pid(getpid(), "exe", link, sizeof(link)));
    assert_string_equal(id.exe, link);
    expect_cmdline(getpid(), buf, sizeof(buf));
    assert_string_equal(id.cmdline, buf);
    assert_int_equal(id.uid, getuid());
    assert_int_equal(id.start_ticks, stat_starttime(getpid()));

    /* A second call on the same context gives the same answer, and done() is idempotent. */
    _cleanup_(procidentity_done) ProcIdentity again = {0};
    assert_int_equal(procinfo_identity(p, getpid(), &again), 0);
    assert_string_equal(again.cmdline, id.cmdline);
    assert_int_equal(again.start_ticks, id.start_ticks);
    procidentity_done(&again);
    assert_null(again.cmdline);
    assert_null(again.exe);
    procidentity_done(&again);
    procidentity_done(NULL);
}

/* libproc2 reports an empty cmdline as the argument vector {"-"}: a process whose one argument
 * really is "-" must keep it, and one with nothing (argc == 0, for which the kernel supplies a
 * single empty argument) must have none. */
static void cmdline_edges(void **state)
{
    ProcInfo *p = *state;
    char dash[] = "-";
    char *argvs[][2] = {{dash, NULL}, {NULL, NULL}};
    const char *expect[] = {"-", NULL};

    for (size_t i = 0; i < ARRAY_SIZE(argvs); i++) {
        int release_fd = -1;
        pid_t pid = spawn_child(argvs[i], &release_fd);
        assert_true(pid > 0);

        char buf[64];
        _cleanup_(procidentity_done) ProcIdentity id = {0};
        int r = procinfo_identity(p, pid, &id);
        expect_cmdline(pid, buf, sizeof(buf));
        close(release_fd);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, NULL, 0), pid);

        assert_int_equal(r, 0);
        assert_string_equal(id.comm, CHILD_COMM);
        if (expect[i]) {
            assert_string_equal(buf, expect[i]);
            assert_non_null(id.cmdline);
            assert_string_equal(id.cmdline, expect[i]);
        } else {
            assert_string_equal(buf, "");
            assert_null(id.cmdline);
        }
        assert_string_equal(id.exe, child.exe);
    }
}

static void memory_child(void **state)
{
    ProcInfo *p = *state;
    pid_t pid = child.pid;
    ProcMemory m;

    /* PSS also moves when other processes map or unmap the libraries the child shares (another
     * sanitised test starting, say), which can come and go between the two reads around the
     * call: a few tries keep such a blip from failing the test, a wrong value fails them all. */
    int64_t rss0, rss1, anon0, anon1, pss0, pss1;
    for (int i = 0; i < 5; i++) {
        rss0 = status_field(pid, "VmRSS");
        anon0 = status_field(pid, "RssAnon");
        pss0 = rollup_pss(pid);
        assert_int_equal(procinfo_memory(p, pid, &m), 0);
        rss1 = status_field(pid, "VmRSS");
        anon1 = status_field(pid, "RssAnon");
        pss1 = rollup_pss(pid);
        if (between(m.rss, rss0, rss1) && between(m.anon, anon0, anon1) &&
            between(m.pss, pss0, pss1))
            break;
    }
    assert_between(m.rss, rss0, rss1);
    assert_between(m.anon, anon0, anon1);
    assert_between(m.pss, pss0, pss1);
    assert_int_equal(m.vms, status_field(pid, "VmSize"));
    assert_int_equal(m.swap, status_field(pid, "VmSwap"));
    assert_int_equal(m.peak_rss, status_field(pid, "VmHWM"));

    /* The child's 20 MiB are private, touched and anonymous: all of them count everywhere. */
    assert_true(m.rss >= (int64_t)CHILD_MEM);
    assert_true(m.anon >= (int64_t)CHILD_MEM);
    assert_true(m.pss >= (int64_t)CHILD_MEM);
    assert_true(m.peak_rss >= m.rss);
    assert_true(m.vms >= m.rss);
}

static void memory_self(void **state)
{
    ProcInfo *p = *state;
    ProcMemory m;

    /* Many calls on one context: libproc2 reuses its stacks, the answers must stay right. */
    for (int i = 0; i < 50; i++) {
        int64_t rss0 = status_field(getpid(), "VmRSS");
        assert_int_equal(procinfo_memory(p, getpid(), &m), 0);
        int64_t rss1 = status_field(getpid(), "VmRSS");
        assert_between(m.rss, rss0, rss1);
        assert_true(m.pss > 0);
        assert_true(m.peak_rss > 0);
    }
}

static void list(void **state)
{
    ProcInfo *p = *state;
    _cleanup_(freep) pid_t *v = NULL;
    size_t n = 0;
    bool self = false, kid = false;

    assert_int_equal(procinfo_list(p, &v, &n), 0);
    assert_true(n >= 2);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(v[i - 1] < v[i]);
        self |= v[i] == getpid();
        kid |= v[i] == child.pid;
    }
    assert_true(self);
    assert_true(kid);

    /* Processes only: none of the child's threads. */
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)child.pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        pid_t tid = (pid_t)atoi(de->d_name);
        if (tid <= 0 || tid == child.pid)
            continue;
        for (size_t i = 0; i < n; i++)
            assert_int_not_equal(v[i], tid);
    }
    closedir(d);
}

static void thread_is_not_process(void **state)
{
    ProcInfo *p = *state;
    char path[64];
    pid_t tid = 0;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)child.pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) && tid == 0) {
        pid_t t = (pid_t)atoi(de->d_name);
        if (t > 0 && t != child.pid)
            tid = t;
    }
    closedir(d);
    assert_true(tid > 0);

    /* /proc/TID answers for a thread, but there is no process with that pid. */
    ProcIdentity id = {0};
    ProcMemory m = {.rss = 12345};
    assert_int_equal(procinfo_identity(p, tid, &id), -ESRCH);
    assert_null(id.cmdline);
    assert_int_equal(procinfo_memory(p, tid, &m), -ESRCH);
    assert_int_equal(m.rss, 12345);
    ProcStatus ps = {.tgid = 12345};
    assert_int_equal(procinfo_status(tid, &ps), -ESRCH);
    assert_int_equal(ps.tgid, 12345);
}

static void kernel_thread(void **state)
{
    ProcInfo *p = *state;
    char buf[64];

    /* Pid 2 is kthreadd on a host, but may be anything in a pid namespace: only a task with no
     * memory lines and an empty cmdline is a kernel thread for this test. */
    if (access("/proc/2/status", R_OK) < 0 || slurp_pid(2, "cmdline", buf, sizeof(buf)) != 0 ||
        status_field(2, "VmRSS") >= 0 || status_field(2, "PPid") != 0)
        skip();

    _cleanup_(procidentity_done) ProcIdentity id = {0};
    assert_int_equal(procinfo_identity(p, 2, &id), 0);
    assert_null(id.cmdline);
    assert_null(id.exe);
    assert_true(slurp_pid(2, "comm", buf, sizeof(buf)) > 0);
    assert_string_equal(id.comm, strtok(buf, "\n"));

    /* No memory lines: the kernel says nothing, so nothing is made up. */
    ProcMemory m;
    assert_int_equal(procinfo_memory(p, 2, &m), 0);
    assert_int_equal(m.rss, -1);
    assert_int_equal(m.vms, -1);
    assert_int_equal(m.anon, -1);
    assert_int_equal(m.swap, -1);
    assert_int_equal(m.pss, -1);
    assert_int_equal(m.peak_rss, -1);
}

/* Run in a process that may lack the rights to read target's smaps_rollup: the exit code says
 * what it found (0 right, EXIT_SKIPPED when the file was readable after all, else a failure). */
static int unreadable_check(pid_t target)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)target);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 || (errno != EACCES && errno != EPERM))
        return EXIT_SKIPPED;

    ProcInfo *p = NULL;
    if (procinfo_new(&p) < 0)
        return 10;
    ProcMemory m;
    int r = procinfo_memory(p, target, &m);
    if (r < 0)
        return 11;
    if (m.pss != -1)
        return 12;
    /* The status file is open to everyone, so the rest is still known. */
    if (m.rss <= 0 || m.vms <= 0 || m.peak_rss <= 0)
        return 13;

    ProcIdentity id = {0};
    if (procinfo_identity(p, target, &id) < 0)
        return 14;
    char link[PATH_MAX];
    bool exe_readable = readlink_pid(target, "exe", link, sizeof(link));
    if (exe_readable ? !id.exe || strcmp(id.exe, link) != 0 : id.exe != NULL)
        return 15;
    if (strcmp(id.comm, CHILD_COMM) != 0)
        return 16;
    procidentity_done(&id);
    procinfo_free(p);
    return 0;
}

static void pss_unreadable(void **state)
{
    int rel[2], ready[2];
    assert_int_equal(pipe2(rel, O_CLOEXEC), 0);
    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    pid_t parent = getpid();

    /* A target without ptrace access for anyone but a privileged reader. */
    pid_t target = fork();
    assert_true(target >= 0);
    if (target == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        prctl(PR_SET_NAME, CHILD_COMM);
        prctl(PR_SET_DUMPABLE, 0);
        close(rel[1]);
        if (write(ready[1], "r", 1) != 1)
            _exit(1);
        char c;
        while (read(rel[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(rel[0]);
    close(ready[1]);
    char c;
    ssize_t k;
    while ((k = read(ready[0], &c, 1)) < 0 && errno == EINTR)
        ;
    close(ready[0]);
    assert_int_equal(k, 1);

    /* root reads anything: the reader drops to nobody first. */
    pid_t reader = fork();
    assert_true(reader >= 0);
    if (reader == 0) {
        if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                               setresuid(65534, 65534, 65534) < 0))
            _exit(EXIT_SKIPPED);
        _exit(unreadable_check(target));
    }
    int status;
    assert_int_equal(waitpid(reader, &status, 0), reader);
    close(rel[1]);
    kill(target, SIGKILL);
    assert_int_equal(waitpid(target, NULL, 0), target);

    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == EXIT_SKIPPED)
        skip();
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void bad_arguments(void **state)
{
    ProcInfo *p = *state;
    ProcIdentity id = {0};
    ProcMemory m;
    pid_t *v = NULL;
    size_t n;

    assert_int_equal(procinfo_identity(p, 0, &id), -EINVAL);
    assert_int_equal(procinfo_identity(p, -1, &id), -EINVAL);
    assert_int_equal(procinfo_memory(p, 0, &m), -EINVAL);
    assert_int_equal(procinfo_list(NULL, &v, &n), -EINVAL);
    assert_null(procinfo_free(NULL));
}

/* Last: the child dies. As a zombie it still has a pid but no memory; reaped, it is gone. */
static void child_gone(void **state)
{
    ProcInfo *p = *state;
    pid_t pid = child.pid;
    char buf[4096];

    assert_int_equal(kill(pid, SIGKILL), 0);
    bool zombie = false;
    for (int i = 0; i < 2000 && !zombie; i++) {
        assert_true(slurp_pid(pid, "stat", buf, sizeof(buf)) > 0);
        zombie = strstr(buf, ") Z ") != NULL && status_field(pid, "VmRSS") < 0;
        if (!zombie)
            usleep(1000);
    }
    assert_true(zombie);
    ProcMemory m;
    assert_int_equal(procinfo_memory(p, pid, &m), 0);
    assert_int_equal(m.rss, -1);
    assert_int_equal(m.vms, -1);
    assert_int_equal(m.anon, -1);
    assert_int_equal(m.swap, -1);
    assert_int_equal(m.pss, -1);
    assert_int_equal(m.peak_rss, -1);

    assert_int_equal(waitpid(pid, NULL, 0), pid);
    child.pid = 0;

    ProcIdentity id = {.cmdline = NULL};
    m = (ProcMemory){.rss = 7};
    assert_int_equal(procinfo_identity(p, pid, &id), -ESRCH);
    assert_int_equal(procinfo_memory(p, pid, &m), -ESRCH);
    assert_int_equal(m.rss, 7);
}

/* ---- stamps: what tells a process, and a program image of it, apart ------------------------- */

static bool aslr_on(void)
{
    FILE *fp = fopen("/proc/sys/kernel/randomize_va_space", "r");
    int v = 0;
    if (fp) {
        if (fscanf(fp, "%d", &v) != 1)
            v = 0;
        fclose(fp);
    }
    return v > 0;
}

static void stamp_self(void **state)
{
    ProcInfo *p = *state;
    ProcStamp a, b;
    ProcIdentity id;
    assert_int_equal(procinfo_stamp(getpid(), &a), 0);
    assert_int_equal(procinfo_stamp(getpid(), &b), 0);
    assert_true(procstamp_same_image(&a, &b));
    assert_int_equal(procinfo_identity(p, getpid(), &id), 0);
    assert_int_equal(a.start_ticks, id.start_ticks);
    procidentity_done(&id);
    struct stat sb;
    assert_int_equal(stat("/proc/self/exe", &sb), 0);
    assert_int_equal(a.exe_dev, (uint64_t)sb.st_dev);
    assert_int_equal(a.exe_ino, (uint64_t)sb.st_ino);
    /* Our own stack and heap lie where the stamp says they start. */
    int local;
    assert_true(a.start_stack >= (uint64_t)(uintptr_t)&local);
    assert_true(a.start_code != 0 && a.start_brk != 0);
    /* Another process: another start, or at least another image. */
    ProcStamp init;
    if (procinfo_stamp(1, &init) == 0)
        assert_false(procstamp_same_image(&a, &init));
}

/* A shell that says "a", reads a line, exec()s `shell` (itself, or another program) that says
 * "b": the same process before and after, another image. */
static void exec_in_place(const char *shell, bool same_exe)
{
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    char script[256];
    snprintf(script, sizeof(script), "echo a; read x; exec %s -c 'echo b; read y'", shell);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        /* Only the ends it uses: our end of its stdin must be the only writer, so closing it
         * ends the shell's last read. */
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    char c[2];
    assert_int_equal(read(out[0], c, 2), 2);
    ProcStamp before, after;
    assert_int_equal(procinfo_stamp(pid, &before), 0);
    assert_int_equal(write(in[1], "\n", 1), 1);
    assert_int_equal(read(out[0], c, 2), 2); /* the new image is running */
    assert_int_equal(procinfo_stamp(pid, &after), 0);
    assert_true(procstamp_same_process(&before, &after));
    assert_int_equal(before.exe_dev == after.exe_dev && before.exe_ino == after.exe_ino, same_exe);
    /* The same executable again: told apart by where its stack and heap went, which only
     * address space randomisation makes differ. */
    if (!same_exe || aslr_on())
        assert_false(procstamp_same_image(&before, &after));
    close(in[1]);
    close(out[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
}

static void stamp_exec_same_executable(void **state)
{
    exec_in_place("/bin/sh", true);
}

static void stamp_exec_other_executable(void **state)
{
    struct stat a, b;
    if (stat("/bin/sh", &a) < 0 || stat("/bin/bash", &b) < 0 ||
        (a.st_dev == b.st_dev && a.st_ino == b.st_ino))
        skip();
    exec_in_place("/bin/bash", false);
}

/* A zombie has no image: -ESRCH, as for a process that is gone. */
static void stamp_zombie(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    siginfo_t si;
    /* WNOWAIT: waits for the exit without reaping, so the zombie stays. */
    assert_int_equal(waitid(P_PID, pid, &si, WEXITED | WNOWAIT), 0);
    ProcStamp st;
    assert_int_equal(procinfo_stamp(pid, &st), -ESRCH);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(procinfo_stamp(pid, &st), -ESRCH);
}

static void tracer_none(void **state)
{
    pid_t t = -1;
    assert_int_equal(procinfo_tracer(getpid(), &t), 0);
    assert_int_equal(t, 0);
    t = -1;
    assert_int_equal(procinfo_tracer_any(getpid(), &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(procinfo_tracer_any(INT_MAX, &t), -ESRCH);
}

/* ---- one read of stat and one of status, against libproc2 ---------------------------------- */

/* What libproc2 says of pid, for the values a sample now reads without it (ground truth: the
 * sampler took them from libproc2 before). */
typedef struct Proc2 {
    int tgid, threads;
    unsigned uid;
    unsigned long long start_ticks;
    int64_t rss, vms, anon, swap;
} Proc2;

static struct pids_info *proc2_new(void)
{
    enum pids_item items[] = {PIDS_ID_TGID, PIDS_NLWP,    PIDS_ID_RUID,     PIDS_TICS_BEGAN,
                              PIDS_VM_RSS,  PIDS_VM_SIZE, PIDS_VM_RSS_ANON, PIDS_VM_SWAP};
    struct pids_info *info = NULL;
    assert_true(procps_pids_new(&info, items, (int)ARRAY_SIZE(items)) >= 0);
    return info;
}

/* The context is made once by the caller: made and freed around each read, its memory would
 * change this process's VmSize between libproc2's read and ours. */
static Proc2 proc2_of(struct pids_info *info, pid_t pid)
{
    unsigned u = (unsigned)pid;
    struct pids_fetch *f = procps_pids_select(info, &u, 1, PIDS_SELECT_PID);
    assert_non_null(f);
    assert_int_equal(f->counts->total, 1);
    struct pids_stack *s = f->stacks[0];
    return (Proc2){
        .tgid = PIDS_VAL(0, s_int, s, info),
        .threads = PIDS_VAL(1, s_int, s, info),
        .uid = PIDS_VAL(2, u_int, s, info),
        .start_ticks = PIDS_VAL(3, ull_int, s, info),
        .rss = (int64_t)PIDS_VAL(4, ul_int, s, info) * 1024,
        .vms = (int64_t)PIDS_VAL(5, ul_int, s, info) * 1024,
        .anon = (int64_t)PIDS_VAL(6, ul_int, s, info) * 1024,
        .swap = (int64_t)PIDS_VAL(7, ul_int, s, info) * 1024,
    };
}

static void stat_status_against_libproc2(pid_t pid)
{
    ProcStamp st;
    ProcStatus ps;
    int threads = -1;
    Proc2 a, b;
    int64_t hwm0, hwm1;
    struct pids_info *info = proc2_new();

    /* RSS and anonymous memory can move between two reads even of a blocked process (reclaim),
     * and this process's own peak grows as the test touches memory: the value read in between
     * must lie between the values read before and after. */
    for (int i = 0; i < 5; i++) {
        hwm0 = status_field(pid, "VmHWM");
        a = proc2_of(info, pid);
        assert_int_equal(procinfo_stamp_threads(pid, &st, &threads), 0);
        assert_int_equal(procinfo_status(pid, &ps), 0);
        b = proc2_of(info, pid);
        hwm1 = status_field(pid, "VmHWM");
        if (between(ps.mem.rss, a.rss, b.rss) && between(ps.mem.anon, a.anon, b.anon) &&
            a.threads == b.threads && a.vms == b.vms && hwm0 == hwm1)
            break;
    }
    procps_pids_unref(&info);
    assert_int_equal(ps.tgid, a.tgid);
    assert_int_equal(ps.tgid, pid);
    assert_int_equal(ps.uid, a.uid);
    assert_int_equal(ps.uid, status_field(pid, "Uid"));
    assert_int_equal(threads, a.threads);
    assert_int_equal(threads, status_field(pid, "Threads"));
    assert_int_equal(st.start_ticks, a.start_ticks);
    assert_int_equal(st.start_ticks, stat_starttime(pid));
    assert_between(ps.mem.rss, a.rss, b.rss);
    assert_between(ps.mem.anon, a.anon, b.anon);
    assert_int_equal(ps.mem.vms, a.vms);
    assert_int_equal(ps.mem.swap, a.swap);
    assert_true(ps.mem.peak_rss >= hwm0 && ps.mem.peak_rss <= hwm1);
    assert_int_equal(ps.mem.pss, -1);
}

static void stat_status_child(void **state)
{
    (void)state;
    stat_status_against_libproc2(child.pid);
    int threads;
    ProcStamp st;
    assert_int_equal(procinfo_stamp_threads(child.pid, &st, &threads), 0);
    assert_int_equal(threads, 1 + CHILD_EXTRA);
}

static void stat_status_self(void **state)
{
    (void)state;
    stat_status_against_libproc2(getpid());
    /* The same stamp as procinfo_stamp() gives. */
    ProcStamp a, b;
    assert_int_equal(procinfo_stamp(getpid(), &a), 0);
    assert_int_equal(procinfo_stamp_threads(getpid(), &b, NULL), 0);
    assert_true(procstamp_same_image(&a, &b));
}

/* /proc/self/stat with its comm (field 2) replaced by comm. */
static void stat_with_comm(const char *comm, char *out, size_t size)
{
    char buf[4096];
    assert_true(slurp("/proc/self/stat", buf, sizeof(buf)) > 0);
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    assert_non_null(open);
    assert_non_null(close);
    *open = '\0';
    assert_true((size_t)snprintf(out, size, "%s(%s%s", buf, comm, close) < size);
}

static void parse_stat_hostile(void **state)
{
    (void)state;
    char buf[4096], text[8192];
    ProcStamp want, got;
    int want_threads, got_threads = -1;

    assert_true(slurp("/proc/self/stat", buf, sizeof(buf)) > 0);
    assert_int_equal(procinfo_parse_stat(buf, &want, &want_threads), 0);
    assert_int_equal(want.start_ticks, stat_starttime(getpid()));
    struct pids_info *info = proc2_new();
    assert_int_equal(want_threads, proc2_of(info, getpid()).threads);
    procps_pids_unref(&info);

    /* A comm with blanks, parentheses and fields of its own in it changes nothing. */
    static const char *const comms[] = {
        "a b", ") S 1 2 3", "x) Z 9 9 9 (", "()", ") ) )", "  ", "((",
    };
    for (size_t i = 0; i < ARRAY_SIZE(comms); i++) {
        stat_with_comm(comms[i], text, sizeof(text));
        got_threads = -1;
        assert_int_equal(procinfo_parse_stat(text, &got, &got_threads), 0);
        assert_int_equal(got.start_ticks, want.start_ticks);
        assert_int_equal(got.start_code, want.start_code);
        assert_int_equal(got.start_stack, want.start_stack);
        assert_int_equal(got.start_brk, want.start_brk);
        assert_int_equal(got_threads, want_threads);
    }

    /* Cut short before start_brk (field 47), or with no comm at all: not a stat line. */
    stat_with_comm("cut", text, sizeof(text));
    char *p = strrchr(text, ')');
    for (int f = 3; f <= 46; f++)
        p = strchr(p + 1, ' ');
    *p = '\0';
    assert_int_equal(procinfo_parse_stat(text, &got, NULL), -EIO);
    assert_int_equal(procinfo_parse_stat("1234 no parenthesis S 1 2 3", &got, NULL), -EIO);
    assert_int_equal(procinfo_parse_stat("", &got, NULL), -EIO);

    /* A zombie has no image left to stamp. */
    stat_with_comm("z", text, sizeof(text));
    p = strrchr(text, ')') + 2;
    *p = 'Z';
    assert_int_equal(procinfo_parse_stat(text, &got, NULL), -ESRCH);
}

/* An anonymous file holding text, at offset 0. */
static int text_fd(const char *text, size_t len)
{
    int fd = memfd_create("status", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static void parse_status_hostile(void **state)
{
    (void)state;
    static char real[65536];
    ssize_t n = slurp("/proc/self/status", real, sizeof(real));
    assert_true(n > 0);
    ProcStatus want;
    int fd = text_fd(real, (size_t)n);
    assert_int_equal(procstatus_parse_fd(fd, &want), 0);
    close(fd);
    assert_int_equal(want.tgid, getpid());
    assert_int_equal(want.uid, getuid());
    assert_int_equal(want.mem.vms, field(real, "VmSize"));
    assert_int_equal(want.mem.peak_rss, field(real, "VmHWM"));
    assert_int_equal(want.mem.swap, field(real, "VmSwap"));
    assert_true(want.mem.rss > 0 && want.mem.anon > 0);

    /* A Groups line of 400 KiB, far longer than the scanner's buffer, and the VmSwap line
     * gone: every other value as before, and the swap not made up. */
    size_t big = 400u << 10;
    char *text = malloc((size_t)n + big + 64);
    assert_non_null(text);
    char *groups = strstr(real, "\nGroups:"), *vmswap = strstr(real, "\nVmSwap:");
    assert_non_null(groups);
    assert_non_null(vmswap);
    assert_true(groups < vmswap);
    char *groups_end = strchr(groups + 1, '\n'), *vmswap_end = strchr(vmswap + 1, '\n');
    size_t len = 0;
    memcpy(text, real, (size_t)(groups - real) + 1);
    len = (size_t)(groups - real) + 1;
    len += (size_t)sprintf(text + len, "Groups:");
    for (size_t i = 0; i < big / 8; i++)
        len += (size_t)sprintf(text + len, "\t%06zu", i % 1000000);
    memcpy(text + len, groups_end, (size_t)(vmswap - groups_end));
    len += (size_t)(vmswap - groups_end);
    memcpy(text + len, vmswap_end, (size_t)(real + n - vmswap_end));
    len += (size_t)(real + n - vmswap_end);

    ProcStatus got;
    fd = text_fd(text, len);
    assert_int_equal(procstatus_parse_fd(fd, &got), 0);
    close(fd);
    free(text);
    assert_int_equal(got.tgid, want.tgid);
    assert_int_equal(got.uid, want.uid);
    assert_int_equal(got.mem.vms, want.mem.vms);
    assert_int_equal(got.mem.peak_rss, want.mem.peak_rss);
    assert_int_equal(got.mem.rss, want.mem.rss);
    assert_int_equal(got.mem.anon, want.mem.anon);
    assert_int_equal(got.mem.swap, -1);
    assert_int_equal(got.mem.pss, -1);

    /* What a kernel thread's status looks like: no memory lines at all. */
    static const char kthread[] = "Name:\tkthreadd\nUmask:\t0000\nState:\tS (sleeping)\n"
                                  "Tgid:\t2\nNgid:\t0\nPid:\t2\nPPid:\t0\nTracerPid:\t0\n"
                                  "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nThreads:\t1\n";
    fd = text_fd(kthread, sizeof(kthread) - 1);
    assert_int_equal(procstatus_parse_fd(fd, &got), 0);
    close(fd);
    assert_int_equal(got.tgid, 2);
    assert_int_equal(got.uid, 0);
    assert_int_equal(got.mem.rss, -1);
    assert_int_equal(got.mem.vms, -1);
    assert_int_equal(got.mem.anon, -1);
    assert_int_equal(got.mem.swap, -1);
    assert_int_equal(got.mem.peak_rss, -1);

    /* A value that is not a number of kB, and a name that only starts like a key. */
    static const char odd[] = "Tgid:\t7\nVmRSSx:\t5 kB\nVmRSS:\t12 pages\nVmSize:\t9 kB\n";
    fd = text_fd(odd, sizeof(odd) - 1);
    assert_int_equal(procstatus_parse_fd(fd, &got), 0);
    close(fd);
    assert_int_equal(got.tgid, 7);
    assert_int_equal(got.uid, -1);
    assert_int_equal(got.mem.rss, -1);
    assert_int_equal(got.mem.vms, 9 * 1024);
}

static void identity_copy(void **state)
{
    ProcInfo *p = *state;
    _cleanup_(procidentity_done) ProcIdentity id = {0}, copy = {0};
    assert_int_equal(procinfo_identity(p, child.pid, &id), 0);
    assert_int_equal(procidentity_copy(&id, &copy), 0);
    assert_int_equal(copy.pid, id.pid);
    assert_string_equal(copy.comm, id.comm);
    assert_non_null(copy.cmdline);
    assert_ptr_not_equal(copy.cmdline, id.cmdline);
    assert_string_equal(copy.cmdline, id.cmdline);
    assert_string_equal(copy.cmdline_redacted, id.cmdline_redacted);
    assert_string_equal(copy.exe, id.exe);
    assert_int_equal(copy.start_ticks, id.start_ticks);
    assert_true(copy.start_time == id.start_time);
    assert_true(procinfo_start_time(p, id.start_ticks) == id.start_time);
    assert_int_equal(copy.uid, id.uid);
    assert_int_equal(copy.threads, id.threads);
}

int main(void)
{
    const char *env = getenv(CHILD_ENV);
    int ready_fd, release_fd;
    if (env && sscanf(env, "%d,%d", &ready_fd, &release_fd) == 2)
        return child_main(ready_fd, release_fd);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(identity_child, pi_setup, pi_teardown),
        cmocka_unit_test_setup_teardown(identity_self, pi_setup, pi_teardown),
        cmocka_unit_test_setup_teardown(cmdline_edges, pi_setup, pi_teardown),
        cmocka_unit_test_setup_teardown(memory_child, pi_setup, pi_teardown),
        cmocka_unit_test_setup_teardown(memory_self, pi_setup, pi_teardown),
        cmocka_unit_test(stat_status_child),
        cmocka_unit_test(stat_status_self),
        cmocka_unit_test(parse_stat_hostile),
        cmocka_unit_test(parse_status_hostile),
        cmocka_unit_test_setup_teardown(identity_copy, pi_setup, pi_teardown),
        cmocka_unit_test_setup_teardown(list, pi_setup, pi_teardown),
        cmocka_unit_test_setup_teardown(thread_is_not_process, pi_setup, pi_teardown),
        cmocka_unit_test_setup_teardown(kernel_thread, pi_setup, pi_teardown),
        cmocka_unit_test(pss_unreadable),
        cmocka_unit_test_setup_teardown(bad_arguments, pi_setup, pi_teardown),
        cmocka_unit_test_setup_teardown(child_gone, pi_setup, pi_teardown),
        cmocka_unit_test_setup_teardown(stamp_self, pi_setup, pi_teardown),
        cmocka_unit_test(stamp_exec_same_executable),
        cmocka_unit_test(stamp_exec_other_executable),
        cmocka_unit_test(stamp_zombie),
        cmocka_unit_test(tracer_none),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
