#include "sampler/target.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"

struct Target {
    pid_t pid;
    uint64_t start_ticks;
    char *exe; /* as first seen: a change means the process exec()ed another program */
    CensusHints *census_hints; /* what the last census learnt for the next */
    Rmem *rmem;
    bool located;
    PyLoc loc;
    PyReader *reader;
    /* Polls of the `collecting` flag since the last sample, and how many found it set; and the
     * same per sample for the last TARGET_BUSY_WINDOW samples, a ring. */
    unsigned polls, busy;
    unsigned ring_polls[TARGET_BUSY_WINDOW], ring_busy[TARGET_BUSY_WINDOW];
    unsigned ring_at;
};

const char *target_status_name(TargetStatus s)
{
    static const char *const names[] = {"ok", "unsupported", "denied", "gone", "error"};
    return (size_t)s < ARRAY_SIZE(names) ? names[s] : "error";
}

void targetsample_done(TargetSample *s)
{
    s->census = census_free(s->census);
    s->prev_census = census_free(s->prev_census);
    if (s->have_identity)
        procidentity_done(&s->id);
    s->have_identity = false;
}

bool targetsample_maybe_python(const TargetSample *s)
{
    if (s->have_python)
        return true;
    if (s->status != TARGET_DENIED || !s->have_identity)
        return false;
    return strstr(s->id.comm, "python") || (s->id.exe && strstr(s->id.exe, "python"));
}

int target_new(pid_t pid, Target **ret)
{
    Target *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    int k = rmem_open(pid, &t->rmem);
    if (k < 0) {
        free(t);
        return k;
    }
    t->pid = pid;
    *ret = t;
    return 0;
}

Target *target_free(Target *t)
{
    if (!t)
        return NULL;
    pyreader_free(t->reader);
    rmem_free(t->rmem);
    free(t->exe);
    censushints_free(t->census_hints);
    free(t);
    return NULL;
}

int target_census(Target *t, CensusMode mode, double max_pause, Census **ret, char *err,
                  size_t errlen)
{
    if (!t->reader) {
        snprintf(err, errlen, "not a readable Python process");
        return -EINVAL;
    }
    return census_take(t->reader, t->rmem, t->pid, mode, max_pause, &t->census_hints, ret, err,
                       errlen);
}

int target_referrers(Target *t, const char *type, CensusMode mode, double max_pause, Refs **ret,
                     char *err, size_t errlen)
{
    if (!t->reader) {
        snprintf(err, errlen, "not a readable Python process");
        return -EINVAL;
    }
    return refs_take(t->reader, t->rmem, t->pid, type, mode, max_pause, &t->census_hints, ret, err,
                     errlen);
}

void target_poll_gc(Target *t)
{
    bool collecting;
    if (!t->reader || pyreader_poll_collecting(t->reader, t->rmem, &collecting) < 0)
        return;
    t->polls++;
    t->busy += collecting;
}

pid_t target_pid(const Target *t)
{
    return t->pid;
}

uint64_t target_start_ticks(const Target *t)
{
    return t->start_ticks;
}

/* Turns an -errno from reading the target into its status and a sentence for the on-call. */
static void set_error(TargetSample *s, int err, const char *what)
{
    switch (err) {
    case -ESRCH:
    case -ENOENT:
        s->status = TARGET_GONE;
        snprintf(s->error, sizeof(s->error), "process %d has exited", s->pid);
        break;
    case -EPERM:
    case -EACCES:
        s->status = TARGET_DENIED;
        snprintf(s->error, sizeof(s->error),
                 "not allowed to read process %d (%s): run pymemd as root, as the target's user, "
                 "or with CAP_SYS_PTRACE (and check kernel.yama.ptrace_scope)",
                 s->pid, what);
        break;
    case -EBUSY:
        s->status = TARGET_ERROR;
        snprintf(s->error, sizeof(s->error),
                 "the interpreter is starting up or shutting down; not sampled");
        break;
    default:
        s->status = TARGET_ERROR;
        snprintf(s->error, sizeof(s->error),
                 "%s: %s (the target changed while being read; "
                 "retried on the next sample)",
                 what, strerror(-err));
        break;
    }
}

static void forget_interpreter(Target *t)
{
    t->reader = pyreader_free(t->reader);
    t->census_hints = censushints_free(t->census_hints);
    t->located = false;
}

static void sample_python(Target *t, PyElfCache *cache, bool force_frozen, TargetSample *s)
{
    int k;
    if (!t->located) {
        k = pyloc_locate(cache, t->pid, t->rmem, &t->loc);
        if (k < 0) {
            set_error(s, k, "locating the interpreter");
            return;
        }
        t->located = true;
        if (t->loc.status == PYLOC_OK && (k = pyreader_new(&t->loc, &t->reader)) < 0) {
            set_error(s, k, "creating a reader");
            return;
        }
    }
    const PyLoc *loc = &t->loc;
    if (loc->status != PYLOC_NOT_PYTHON && loc->hexversion) {
        s->have_python = true;
        snprintf(s->version, sizeof(s->version), "%s", loc->version);
        s->hexversion = loc->hexversion;
        s->version_exact = loc->version_exact;
        s->shared = loc->shared;
    }
    if (loc->status != PYLOC_OK) {
        s->status = loc->status == PYLOC_DENIED ? TARGET_DENIED : TARGET_UNSUPPORTED;
        snprintf(s->error, sizeof(s->error), "%s", loc->reason);
        return;
    }
    k = pyreader_sample(t->reader, t->rmem, clock_mono(), force_frozen, &s->py);
    if (k == -EAGAIN)
        k = pyreader_sample(t->reader, t->rmem, clock_mono(), force_frozen, &s->py);
    if (k < 0) {
        set_error(s, k, "reading the interpreter state");
        /* Structures that no longer hold together may be a new program image (exec() of the
         * same executable): find the interpreter afresh on the next try. */
        if (k == -EFAULT || k == -EIO)
            forget_interpreter(t);
        return;
    }
    s->have_py = true;
    if (!s->py.pymalloc_ok)
        snprintf(s->pymalloc_error, sizeof(s->pymalloc_error), "%s",
                 loc->obmalloc_reason[0] ? loc->obmalloc_reason : "pymalloc counters not readable");
}

void target_sample(Target *t, PyElfCache *cache, ProcInfo *pi, bool force_frozen, TargetSample *ret)
{
    double t0 = clock_mono();
    TargetSample s = {.pid = t->pid, .status = TARGET_OK, .busy_ratio = NAN};
    t->ring_polls[t->ring_at] = t->polls;
    t->ring_busy[t->ring_at] = t->busy;
    t->ring_at = (t->ring_at + 1) % TARGET_BUSY_WINDOW;
    t->polls = t->busy = 0;
    unsigned polls = 0, busy = 0;
    for (unsigned i = 0; i < TARGET_BUSY_WINDOW; i++) {
        polls += t->ring_polls[i];
        busy += t->ring_busy[i];
    }
    if (polls > 0)
        s.busy_ratio = (double)busy / polls;
    s.sampled_at = clock_real();

    int k = procinfo_identity(pi, t->pid, &s.id);
    if (k < 0) {
        set_error(&s, k, "reading /proc");
        goto done;
    }
    s.have_identity = true;
    if (t->start_ticks && t->start_ticks != s.id.start_ticks) {
        /* Same pid, another process: the one this target watched is gone. */
        s.status = TARGET_GONE;
        snprintf(s.error, sizeof(s.error), "process %d has exited (its pid was reused)", t->pid);
        goto done;
    }
    t->start_ticks = s.id.start_ticks;
    /* exec() keeps the pid and the start time but replaces the whole program: a new executable
     * means the interpreter (if any) must be found again. */
    if (s.id.exe && (!t->exe || strcmp(t->exe, s.id.exe) != 0)) {
        if (t->exe)
            forget_interpreter(t);
        free(t->exe);
        t->exe = strdup(s.id.exe);
    }

    if (procinfo_memory(pi, t->pid, &s.mem) >= 0)
        s.have_memory = true;
    sample_python(t, cache, force_frozen, &s);
    if (s.status == TARGET_OK && s.pymalloc_error[0])
        snprintf(s.error, sizeof(s.error), "pymalloc: %s", s.pymalloc_error);
    if (s.status == TARGET_OK && s.have_py && s.py.frozen_reason[0]) {
        size_t n = strlen(s.error);
        snprintf(s.error + n, sizeof(s.error) - n, "%s%s", n ? "; " : "", s.py.frozen_reason);
    }

done:
    s.sample_seconds = clock_mono() - t0;
    *ret = s;
}
