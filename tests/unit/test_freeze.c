/* freeze: the ptrace stop of a census, against real processes this test starts.
 *
 * Each target is a grandchild: a middle process forks it and waits for it, as a service
 * manager would, and tells the test what its wait() returned. The test is only the tracer,
 * like pymemd, so it sees exactly what pymemd sees, and the middle process shows what the
 * target's real parent sees.
 *
 * Nothing here is timed. A check that something happens "eventually" (a stop signal stopping
 * the target) loops until it does; the implementation under test either makes it happen at once
 * or the test hangs and the harness's timeout fails it. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc/procinfo.h"
#include "remote/freeze.h"
#include "util/clock.h"

/* What the target, the test and a signal sender share: one MAP_SHARED page. */
typedef struct Shared {
    long ready;    /* threads of the target up and running */
    long received; /* SIGRTMIN deliveries the target counted */
    long sent;     /* SIGRTMIN the sender queued successfully */
    long stop;     /* set by the test: the sender stops */
} Shared;

static Shared *shared;

typedef struct Family {
    pid_t middle, target;
    int status_fd; /* the middle writes its wait() status of the target here */
    int fence_fd;  /* the target writes its count here on SIGRTMIN+1 */
} Family;

/* ---- the target ----------------------------------------------------------------------------- */

static int fence_out = -1;

static void on_rtmin(int sig)
{
    __atomic_add_fetch(&shared->received, 1, __ATOMIC_SEQ_CST);
}

/* Signals of lower number are delivered first, and only the main thread takes either: when this
 * runs, every SIGRTMIN queued before the fence has been handled. */
static void on_fence(int sig)
{
    long n = __atomic_load_n(&shared->received, __ATOMIC_SEQ_CST);
    if (write(fence_out, &n, sizeof(n)) != sizeof(n))
        _exit(3);
}

/* Work that enters and leaves the kernel often, as real threads do. */
static void *busy(void *arg)
{
    __atomic_add_fetch(&shared->ready, 1, __ATOMIC_SEQ_CST);
    for (volatile unsigned long i = 0;; i++)
        if (i % 4096 == 0) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    return NULL;
}

static void target_main(int threads)
{
    struct sigaction sa = {.sa_handler = on_rtmin, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGRTMIN, &sa, NULL);
    sa.sa_handler = on_fence;
    sigaction(SIGRTMIN + 1, &sa, NULL);
    /* The other threads block both: every delivery happens on the main thread, in order. */
    sigset_t rt, old;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigaddset(&rt, SIGRTMIN + 1);
    pthread_sigmask(SIG_BLOCK, &rt, &old);
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, busy, NULL) != 0)
            _exit(2);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    busy(NULL);
}

/* ---- the family ------------------------------------------------------------------------------ */

static Family spawn(int threads)
{
    int pid_pipe[2], status_pipe[2], fence_pipe[2];
    assert_int_equal(pipe(pid_pipe), 0);
    assert_int_equal(pipe(status_pipe), 0);
    assert_int_equal(pipe(fence_pipe), 0);
    memset(shared, 0, sizeof(*shared));
    pid_t m = fork();
    assert_true(m >= 0);
    if (m == 0) {
        pid_t x = fork();
        if (x == 0) {
            fence_out = fence_pipe[1];
            target_main(threads);
            _exit(0);
        }
        if (write(pid_pipe[1], &x, sizeof(x)) != sizeof(x))
            _exit(1);
        int st;
        while (waitpid(x, &st, 0) < 0)
            if (errno != EINTR)
                _exit(1);
        _exit(write(status_pipe[1], &st, sizeof(st)) == sizeof(st) ? 0 : 1);
    }
    close(pid_pipe[1]);
    close(status_pipe[1]);
    close(fence_pipe[1]);
    Family f = {.middle = m, .status_fd = status_pipe[0], .fence_fd = fence_pipe[0]};
    assert_int_equal(read(pid_pipe[0], &f.target, sizeof(f.target)), sizeof(f.target));
    close(pid_pipe[0]);
    while (__atomic_load_n(&shared->ready, __ATOMIC_SEQ_CST) < threads + 1)
        sched_yield();
    return f;
}

/* The target's wait() status as its parent saw it. Blocks until the parent has reaped it. */
static int reaped_status(Family *f)
{
    int st;
    assert_int_equal(read(f->status_fd, &st, sizeof(st)), sizeof(st));
    return st;
}

static void bury(Family *f)
{
    if (f->status_fd >= 0) {
        kill(f->target, SIGKILL); /* not reaped yet: its parent has not written its status */
        int st = reaped_status(f);
        (void)st;
        close(f->status_fd);
    }
    close(f->fence_fd);
    int st;
    assert_int_equal(waitpid(f->middle, &st, 0), f->middle);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Lets go of every leftover; the threads are dying or stopping, so this ends. */
static void collect_all(void)
{
    while (freeze_collect() > 0) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
}

/* A field of /proc/PID/task/TID/status, or -1 when the thread is gone. */
static long task_status(pid_t pid, pid_t tid, const char *key)
{
    char path[96], line[256];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    long v = -1;
    size_t len = strlen(key);
    while (fgets(line, sizeof(line), fp))
        if (strncmp(line, key, len) == 0 && line[len] == ':')
            v = strtol(line + len + 1, NULL, 10);
    fclose(fp);
    return v;
}

static char task_state(pid_t pid, pid_t tid)
{
    char path[96], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p ? p[2] : 0;
}

/* Every thread of the target, through `check(pid, tid)`; returns how many there were. */
static int each_thread(pid_t pid, void (*check)(pid_t, pid_t))
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        check(pid, (pid_t)atoi(de->d_name));
        n++;
    }
    closedir(d);
    return n;
}

static void check_stopped(pid_t pid, pid_t tid)
{
    assert_int_equal(task_state(pid, tid), 't');
    assert_int_equal(task_status(pid, tid, "TracerPid"), (long)getpid());
}

/* Let go: no thread is traced by us any more (a dead one may be a zombie its parent reaps). */
static void check_released(pid_t pid, pid_t tid)
{
    long tracer = task_status(pid, tid, "TracerPid");
    assert_true(tracer == 0 || tracer == -1);
    assert_int_not_equal(task_state(pid, tid), 't');
}

static int setup(void **state)
{
    shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return shared == MAP_FAILED ? -1 : 0;
}

static int teardown(void **state)
{
    collect_all();
    munmap(shared, 4096);
    return 0;
}

/* ---- the tests ------------------------------------------------------------------------------- */

/* Every thread stops in a ptrace stop of ours, and every one runs again after the thaw. */
static void stops_every_thread(void **state)
{
    Family f = spawn(8);
    ProcStamp st;
    assert_int_equal(procinfo_stamp(f.target, &st), 0);
    Freeze *fz = NULL;
    double before = clock_mono();
    assert_int_equal(freeze_process(f.target, &st, clock_mono() + 30, &fz), 0);
    double after = clock_mono();
    /* The pause counts from the first seize: inside the call, never before it. */
    assert_true(freeze_started(fz) >= before && freeze_started(fz) <= after);
    assert_int_equal(freeze_threads(fz), 9);
    assert_int_equal(each_thread(f.target, check_stopped), 9);
    freeze_thaw(fz);
    assert_int_equal(freeze_collect(), 0);
    assert_int_equal(each_thread(f.target, check_released), 9);
    bury(&f);
}

/* Killed while stopped: its parent's wait() returns as soon as we let go, with SIGKILL. */
static void killed_while_stopped_is_released(void **state)
{
    for (int round = 0; round < 5; round++) {
        Family f = spawn(20);
        Freeze *fz = NULL;
        assert_int_equal(freeze_process(f.target, NULL, clock_mono() + 30, &fz), 0);
        assert_int_equal(kill(f.target, SIGKILL), 0);
        freeze_thaw(fz);
        collect_all();
        /* Not traced by us any more: the kernel has told the parent. */
        each_thread(f.target, check_released);
        int st = reaped_status(&f);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        close(f.status_fd);
        f.status_fd = -1;
        bury(&f);
    }
}

/* Killed at any moment of repeated freezes and thaws (another process kills it after a delay
 * that varies): every thread is released, the parent sees SIGKILL. */
static void killed_at_any_moment_is_released(void **state)
{
    for (int round = 0; round < 12; round++) {
        Family f = spawn(30);
        pid_t killer = fork();
        assert_true(killer >= 0);
        if (killer == 0) {
            struct timespec ts = {0, 100000L * round * round};
            nanosleep(&ts, NULL);
            kill(f.target, SIGKILL);
            _exit(0);
        }
        int k;
        do {
            Freeze *fz = NULL;
            k = freeze_process(f.target, NULL, clock_mono() + 30, &fz);
            freeze_thaw(fz);
        } while (k == 0);
        assert_int_equal(k, -ESRCH);
        collect_all();
        each_thread(f.target, check_released);
        int st = reaped_status(&f);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        close(f.status_fd);
        f.status_fd = -1;
        int kst;
        assert_int_equal(waitpid(killer, &kst, 0), killer);
        bury(&f);
    }
}

/* A sender queues SIGRTMIN as fast as the target takes them while the target is frozen and
 * thawed 1,500 times: the target counts every one sent. */
static void no_signal_lost(void **state)
{
    Family f = spawn(2);
    pid_t sender = fork();
    assert_true(sender >= 0);
    if (sender == 0) {
        long sent = 0;
        union sigval v = {0};
        while (!__atomic_load_n(&shared->stop, __ATOMIC_SEQ_CST)) {
            /* At most 64 pending: far below RLIMIT_SIGPENDING, so a loss can only be ours. */
            if (sent - __atomic_load_n(&shared->received, __ATOMIC_SEQ_CST) >= 64) {
                sched_yield();
                continue;
            }
            if (sigqueue(f.target, SIGRTMIN, v) == 0)
                sent++;
            else if (errno != EAGAIN)
                _exit(1);
        }
        __atomic_store_n(&shared->sent, sent, __ATOMIC_SEQ_CST);
        _exit(0);
    }
    while (__atomic_load_n(&shared->received, __ATOMIC_SEQ_CST) < 100)
        sched_yield();
    for (int i = 0; i < 1500; i++) {
        Freeze *fz = NULL;
        assert_int_equal(freeze_process(f.target, NULL, clock_mono() + 30, &fz), 0);
        freeze_thaw(fz);
    }
    __atomic_store_n(&shared->stop, 1, __ATOMIC_SEQ_CST);
    int st;
    assert_int_equal(waitpid(sender, &st, 0), sender);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    long sent = shared->sent, got;
    assert_true(sent > 100);
    assert_int_equal(kill(f.target, SIGRTMIN + 1), 0);
    assert_int_equal(read(f.fence_fd, &got, sizeof(got)), sizeof(got));
    print_message("%ld signals sent, %ld received, across 1,500 freezes\n", sent, got);
    assert_int_equal(got, sent);
    bury(&f);
}

static void wait_state(pid_t pid, char want, bool equal)
{
    while ((task_state(pid, pid) == want) != equal)
        sched_yield();
}

/* A SIGSTOP sent just before the freeze (it may reach a thread between its seize and its stop)
 * or while the target is frozen still stops it once it is let go; one that stopped it before
 * the freeze keeps it stopped after. */
static void stop_signal_still_stops(void **state)
{
    Family f = spawn(3);
    for (int i = 0; i < 200; i++) {
        Freeze *fz = NULL;
        if (i % 2 == 0)
            assert_int_equal(kill(f.target, SIGSTOP), 0);
        assert_int_equal(freeze_process(f.target, NULL, clock_mono() + 30, &fz), 0);
        if (i % 2 == 1)
            assert_int_equal(kill(f.target, SIGSTOP), 0);
        freeze_thaw(fz);
        wait_state(f.target, 'T', true);
        /* Stopped already: frozen and thawed, it stays stopped. */
        assert_int_equal(freeze_process(f.target, NULL, clock_mono() + 30, &fz), 0);
        freeze_thaw(fz);
        wait_state(f.target, 'T', true);
        assert_int_equal(kill(f.target, SIGCONT), 0);
        wait_state(f.target, 'T', false);
    }
    assert_int_equal(freeze_collect(), 0);
    bury(&f);
}

/* Not the expected process once stopped: refused, and let go before anything is read. */
static void identity_checked_once_stopped(void **state)
{
    Family f = spawn(4);
    ProcStamp st;
    assert_int_equal(procinfo_stamp(f.target, &st), 0);
    ProcStamp reused = st, execed = st;
    reused.start_ticks++;
    execed.start_stack += 4096;
    Freeze *fz = NULL;
    assert_int_equal(freeze_process(f.target, &reused, clock_mono() + 30, &fz), -ESTALE);
    assert_int_equal(freeze_process(f.target, &execed, clock_mono() + 30, &fz), -ESTALE);
    assert_null(fz);
    assert_int_equal(freeze_collect(), 0);
    assert_int_equal(each_thread(f.target, check_released), 5);
    bury(&f);
}

/* Another tracer holds the target: -EBUSY, procinfo names it, and nothing of ours stays. */
static void other_tracer(void **state)
{
    Family f = spawn(2);
    int go[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    pid_t tracer = fork();
    assert_true(tracer >= 0);
    if (tracer == 0) {
        char c = ptrace(PTRACE_SEIZE, f.target, 0, 0) == 0 ? 'y' : 'n';
        if (write(done[1], &c, 1) != 1 || read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(0); /* the kernel detaches */
    }
    char c;
    assert_int_equal(read(done[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    pid_t who = 0;
    assert_int_equal(procinfo_tracer(f.target, &who), 0);
    assert_int_equal(who, tracer);
    assert_int_equal(procinfo_tracer_any(f.target, &who), 0);
    assert_int_equal(who, tracer);
    Freeze *fz = NULL;
    assert_int_equal(freeze_process(f.target, NULL, clock_mono() + 30, &fz), -EBUSY);
    assert_int_equal(freeze_collect(), 0);
    assert_int_equal(write(go[1], "x", 1), 1);
    int st;
    assert_int_equal(waitpid(tracer, &st, 0), tracer);
    /* Its tracer gone, the target can be frozen again. */
    assert_int_equal(procinfo_tracer_any(f.target, &who), 0);
    assert_int_equal(who, 0);
    assert_int_equal(freeze_process(f.target, NULL, clock_mono() + 30, &fz), 0);
    freeze_thaw(fz);
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
    bury(&f);
}

/* A pid no process has (above any pid_max): -ESRCH. A pid freed by a process the test started
 * is not used, as by then it may be another's. */
static void gone(void **state)
{
    Freeze *fz = NULL;
    assert_int_equal(freeze_process(INT_MAX, NULL, clock_mono() + 30, &fz), -ESRCH);
    assert_null(fz);
    assert_int_equal(freeze_collect(), 0);
}

int main(void)
{
    if (geteuid() != 0) {
        /* Tracing a grandchild needs CAP_SYS_PTRACE under Yama's default scope. */
        printf("not root: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stops_every_thread),
        cmocka_unit_test(killed_while_stopped_is_released),
        cmocka_unit_test(killed_at_any_moment_is_released),
        cmocka_unit_test(no_signal_lost),
        cmocka_unit_test(stop_signal_still_stops),
        cmocka_unit_test(identity_checked_once_stopped),
        cmocka_unit_test(other_tracer),
        cmocka_unit_test(gone),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
