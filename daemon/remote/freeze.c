#include "remote/freeze.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

/* Rounds of listing /proc/PID/task until no new thread shows up. */
#define MAX_ROUNDS 16

/* How long freeze_thaw() waits for the reports still on the way before it leaves the threads
 * to freeze_collect(): a SIGKILLed thread exits within microseconds, and a process of a few
 * thousand threads within milliseconds. */
#define THAW_GRACE 0.05

/* Between two looks at threads that have not reported yet: a running thread stops within
 * microseconds of its interrupt. */
#define POLL_NS 20000

typedef enum TraceeState {
    TRACEE_WAITING = 0, /* seized; its next report (a stop, or its exit) is not read yet */
    TRACEE_STOPPED,     /* in a ptrace stop whose report was read */
    TRACEE_DONE,        /* detached, or its exit collected: nothing left to do */
} TraceeState;

typedef struct Tracee {
    pid_t tid;
    TraceeState state;
    int sig; /* the signal whose delivery the stop held up, handed back at detach; 0: none */
} Tracee;

typedef struct TraceeList {
    Tracee *v;
    size_t n, cap;
} TraceeList;

struct Freeze {
    pid_t pid;
    TraceeList t;
    double started; /* monotonic: the first thread seized, the earliest any could stop; 0: none */
};

/* The threads this (tracer) thread could not let go yet. Only the tracer can wait for or detach
 * its tracees, so the list belongs to the thread. */
static __thread TraceeList leftovers;

static int reserve(TraceeList *l, size_t more)
{
    if (l->n + more <= l->cap)
        return 0;
    size_t cap = l->cap ? l->cap : 16;
    while (cap < l->n + more)
        cap *= 2;
    Tracee *v = realloc(l->v, cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    l->v = v;
    l->cap = cap;
    return 0;
}

double freeze_started(const Freeze *f)
{
    return f->started;
}

size_t freeze_threads(const Freeze *f)
{
    size_t n = 0;
    for (size_t i = 0; i < f->t.n; i++)
        n += f->t.v[i].state == TRACEE_STOPPED;
    return n;
}

static bool has(const Freeze *f, pid_t tid)
{
    for (size_t i = 0; i < f->t.n; i++)
        if (f->t.v[i].tid == tid)
            return true;
    return false;
}

/* Reads the next report of t, if there is one, without blocking. Returns whether its state
 * changed. */
static bool poll_tracee(Tracee *t)
{
    int st;
    pid_t r = waitpid(t->tid, &st, __WALL | WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR))
        return false;
    if (r < 0) {
        /* ECHILD: no tracee of ours has this tid any more. An exec() in another thread does
         * that: the execing thread takes the leader's tid and its own vanishes unreported. */
        t->state = TRACEE_DONE;
        return true;
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
        /* Collected: the kernel now tells the process's parent, or lets the process go. */
        t->state = TRACEE_DONE;
        return true;
    }
    if (!WIFSTOPPED(st))
        return false;
    /* The ptrace event is in status >> 16. PTRACE_EVENT_STOP is the stop of our interrupt, or
     * a group stop (SIGSTOP...) the thread entered: the kernel restores a group stop by itself
     * at detach. No event is a signal-delivery-stop: the thread was about to receive that
     * signal, and unless the detach hands it back it is lost. */
    if ((st >> 16) == 0)
        t->sig = WSTOPSIG(st);
    t->state = TRACEE_STOPPED;
    return true;
}

/* One step toward letting t go. Returns true once nothing is left to do. */
static bool release(Tracee *t)
{
    for (;;) {
        switch (t->state) {
        case TRACEE_DONE:
            return true;
        case TRACEE_STOPPED:
            if (ptrace(PTRACE_DETACH, t->tid, 0, (void *)(long)t->sig) == 0) {
                t->state = TRACEE_DONE;
                return true;
            }
            /* ESRCH: it left its stop, which only SIGKILL (or an exec() in another thread)
             * does, and it is dying: its exit is reported to us, and only once we collect it
             * is its parent told. (An exec() may also have handed its tid to the execing
             * thread, which reports a stop of its own.) */
            t->state = TRACEE_WAITING;
            t->sig = 0;
            continue;
        case TRACEE_WAITING:
            if (!poll_tracee(t))
                return false;
            continue;
        }
    }
}

/* Lets go of every tracee of l, waiting up to `grace` seconds for reports still on the way;
 * what is left joins the leftovers. Empties l. */
static void release_all(TraceeList *l, double grace)
{
    double until = clock_mono() + grace;
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < l->n; i++)
            left += !release(&l->v[i]);
        if (!left || clock_mono() >= until)
            break;
        struct timespec ts = {0, POLL_NS};
        nanosleep(&ts, NULL);
    }
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].state == TRACEE_DONE)
            continue;
        /* Out of memory: the thread stays traced until it reports to nobody; pymemd's exit
         * releases it. Nothing better can be done without memory. */
        if (reserve(&leftovers, 1) == 0)
            leftovers.v[leftovers.n++] = l->v[i];
    }
    l->n = 0;
}

size_t freeze_collect(void)
{
    size_t keep = 0;
    for (size_t i = 0; i < leftovers.n; i++)
        if (!release(&leftovers.v[i]))
            leftovers.v[keep++] = leftovers.v[i];
    leftovers.n = keep;
    if (!keep) {
        free(leftovers.v);
        leftovers = (TraceeList){0};
    }
    return keep;
}

void freeze_forget(void)
{
    free(leftovers.v);
    leftovers = (TraceeList){0};
}

/* A leftover with this tid, taken off the list: it is still ours, and seizing it again would
 * fail. */
static bool take_leftover(pid_t tid, Tracee *ret)
{
    for (size_t i = 0; i < leftovers.n; i++)
        if (leftovers.v[i].tid == tid) {
            *ret = leftovers.v[i];
            leftovers.v[i] = leftovers.v[--leftovers.n];
            return true;
        }
    return false;
}

/* The state letter of one thread (proc(5) stat field 3), or 0 when it cannot be read. */
static char task_state(pid_t pid, pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

/* Why PTRACE_SEIZE of tid said EPERM. */
static int seize_refused(pid_t pid, pid_t tid)
{
    pid_t tracer = 0;
    if (procinfo_tracer(tid, &tracer) == 0 && tracer > 0)
        return -EBUSY;
    /* A thread that has exited (a zombie, or reaped since) cannot be seized, and need not be. */
    char state = task_state(pid, tid);
    if (state == 0 || state == 'Z' || state == 'X')
        return tid == pid ? -ESRCH : 0;
    return -EPERM;
}

/* Seizes tid and asks it to stop. 0 also when it exited meanwhile (not an error for the
 * process as a whole, unless it is the leader). */
static int seize(Freeze *f, pid_t tid)
{
    /* Room first: a thread seized but not on the list could never be let go. */
    int k = reserve(&f->t, 1);
    if (k < 0)
        return k;
    Tracee t = {.tid = tid};
    if (!f->started)
        f->started = clock_mono();
    if (!take_leftover(tid, &t)) {
        if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) {
            if (errno == ESRCH)
                return tid == f->pid ? -ESRCH : 0;
            return errno == EPERM ? seize_refused(f->pid, tid) : -errno;
        }
    }
    f->t.v[f->t.n++] = t;
    /* ESRCH: killed since; its exit will be reported, and collected. */
    if (t.state == TRACEE_WAITING)
        ptrace(PTRACE_INTERRUPT, tid, 0, 0);
    return 0;
}

/* Waits until every tracee has stopped or exited. */
static int wait_stopped(Freeze *f, double deadline)
{
    bool all = false;
    for (;;) {
        size_t waiting = 0;
        bool moved = false;
        for (size_t i = 0; i < f->t.n; i++) {
            Tracee *t = &f->t.v[i];
            /* A stopped thread reports again only when it is killed. Its exit must be collected
             * all the same, or a leader that died waits for it forever (the kernel reports a
             * leader's exit only once its other threads are reaped): looked at on passes that
             * saw nothing else move. */
            if (t->state == TRACEE_DONE || (t->state == TRACEE_STOPPED && !all))
                continue;
            moved |= poll_tracee(t);
            waiting += t->state == TRACEE_WAITING;
        }
        if (!waiting)
            return 0;
        if (clock_mono() >= deadline)
            return -ETIMEDOUT;
        all = !moved;
        if (!moved) {
            struct timespec ts = {0, POLL_NS};
            nanosleep(&ts, NULL);
        }
    }
}

int freeze_process(pid_t pid, const ProcStamp *expect, double deadline, Freeze **ret)
{
    freeze_collect();
    Freeze *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->pid = pid;
    /* The polls sleep 20 µs; the default 50 µs timer slack would more than triple that, and
     * every microsecond here is one the target stands still. */
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);

    int k = 0;
    for (int round = 0; round < MAX_ROUNDS && k >= 0; round++) {
        DIR *d = opendir(path);
        if (!d) {
            k = errno == ENOENT ? -ESRCH : -errno;
            break;
        }
        /* All of a round's threads are asked to stop before any is waited for: they stop
         * together, not one after another. */
        size_t first = f->t.n;
        struct dirent *de;
        while ((de = readdir(d)) && k >= 0) {
            char *end;
            long tid = strtol(de->d_name, &end, 10);
            if (*end || tid <= 0 || has(f, (pid_t)tid))
                continue;
            k = seize(f, (pid_t)tid);
        }
        closedir(d);
        if (k >= 0)
            k = wait_stopped(f, deadline);
        if (f->t.n == first)
            break;
        /* Threads started by threads that were running while we listed: look again. */
    }
    if (slack > 0)
        prctl(PR_SET_TIMERSLACK, slack, 0, 0, 0);
    if (k >= 0) {
        /* The leader stands for the process: gone (or never seized), the process is. */
        k = -ESRCH;
        for (size_t i = 0; i < f->t.n; i++)
            if (f->t.v[i].tid == pid && f->t.v[i].state == TRACEE_STOPPED)
                k = 0;
    }
    if (k >= 0 && expect) {
        /* Stopped, the process cannot exec(), and while we trace it its pid cannot be reused:
         * what it is now, it stays until the thaw. Checked here, before a byte is read. */
        ProcStamp now;
        k = procinfo_stamp(pid, &now);
        if (k >= 0 && !procstamp_same_image(expect, &now))
            k = -ESTALE;
    }
    if (k < 0) {
        freeze_thaw(f);
        return k;
    }
    *ret = f;
    return 0;
}

void freeze_thaw(Freeze *f)
{
    if (!f)
        return;
    release_all(&f->t, THAW_GRACE);
    free(f->t.v);
    free(f);
}
