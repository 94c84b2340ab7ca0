#include "remote/freeze.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

/* Rounds of listing /proc/PID/task until no new thread shows up. */
#define MAX_ROUNDS 16

struct Freeze {
    pid_t pid;
    pid_t *tids;
    size_t n, cap;
};

size_t freeze_threads(const Freeze *f)
{
    return f->n;
}

static bool has(const Freeze *f, pid_t tid)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->tids[i] == tid)
            return true;
    return false;
}

/* Waits until tid reports its ptrace stop; gives up at the deadline. */
static int wait_stopped(pid_t tid, double deadline)
{
    for (;;) {
        int st;
        pid_t r = waitpid(tid, &st, __WALL | WNOHANG);
        if (r == tid) {
            if (WIFEXITED(st) || WIFSIGNALED(st))
                return -ESRCH;
            if (WIFSTOPPED(st))
                return 0;
            continue;
        }
        if (r < 0)
            return errno == ECHILD ? -ESRCH : -errno;
        if (clock_mono() >= deadline)
            return -ETIMEDOUT;
        struct timespec ts = {0, 20000}; /* 20 µs: a running thread stops within microseconds */
        nanosleep(&ts, NULL);
    }
}

/* Seizes and interrupts one thread. -ESRCH when it exited meanwhile (not an error for the
 * process as a whole). */
static int stop_thread(Freeze *f, pid_t tid, double deadline)
{
    if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0)
        return -errno;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        pid_t *n = realloc(f->tids, cap * sizeof(*n));
        if (!n) {
            ptrace(PTRACE_DETACH, tid, 0, 0);
            return -ENOMEM;
        }
        f->tids = n;
        f->cap = cap;
    }
    f->tids[f->n++] = tid;
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
        return -errno;
    return wait_stopped(tid, deadline);
}

void freeze_thaw(Freeze *f)
{
    if (!f)
        return;
    /* A thread in a ptrace stop resumes on detach. One that exited is gone already. */
    for (size_t i = 0; i < f->n; i++)
        ptrace(PTRACE_DETACH, f->tids[i], 0, 0);
    free(f->tids);
    free(f);
}

int freeze_process(pid_t pid, double deadline, Freeze **ret)
{
    Freeze *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->pid = pid;
    /* The polls in wait_stopped() sleep 20 µs; the default 50 µs timer slack would more than
     * triple that, and every microsecond here is one the target stands still. */
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);

    int k = 0;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        DIR *d = opendir(path);
        if (!d) {
            k = errno == ENOENT ? -ESRCH : -errno;
            break;
        }
        bool added = false;
        struct dirent *de;
        while ((de = readdir(d)) && k >= 0) {
            char *end;
            long tid = strtol(de->d_name, &end, 10);
            if (*end || tid <= 0 || has(f, (pid_t)tid))
                continue;
            k = stop_thread(f, (pid_t)tid, deadline);
            if (k == -ESRCH && tid != pid)
                k = 0; /* a thread that exited meanwhile */
            added = true;
        }
        closedir(d);
        if (k < 0 || !added)
            break;
        /* Threads started by threads that were running while we listed: look again. */
    }
    if (slack > 0)
        prctl(PR_SET_TIMERSLACK, slack, 0, 0, 0);
    if (k >= 0 && f->n == 0)
        k = -ESRCH;
    if (k < 0) {
        freeze_thaw(f);
        return k;
    }
    *ret = f;
    return 0;
}
