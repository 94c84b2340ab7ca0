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
    /* The census's own: it runs on another thread than sampling, so it reads through its own
     * reader and Rmem, made by target_census_prepare() from what sampling found. */
    CensusHints *census_hints; /* what the last census learnt for the next */
    PyReader *census_reader;
    Rmem *census_rmem;
    unsigned interp_gen, census_gen; /* forget_interpreter() bumps the first: hints are stale */
    Rmem *rmem;
    bool located;
    PyLoc loc;
    PyReader *reader;
    /* Polls of the `collecting` flag since the last sample, and how many found it set; and the
     * same per sample for the last TARGET_BUSY_WINDOW samples, a ring. */
    unsigned polls, busy;
    unsigned ring_polls[TARGET_BUSY_WINDOW], ring_busy[TARGET_BUSY_WINDOW];
    unsigned ring_at;
    /* PSS at its own cadence (target_set_pss_policy): the last read and when it was made. */
    double pss_interval;
    uint64_t pss_max_rss;
    int64_t pss;
    double pss_at, pss_mono;
    double read_budget; /* seconds the interpreter-state read of a sample may take; 0: no limit */
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
    t->pss = -1;
    t->pss_interval = -1; /* every sample, until a policy is set */
    *ret = t;
    return 0;
}

Target *target_free(Target *t)
{
    if (!t)
        return NULL;
    pyreader_free(t->reader);
    pyreader_free(t->census_reader);
    rmem_free(t->rmem);
    rmem_free(t->census_rmem);
    free(t->exe);
    censushints_free(t->census_hints);
    free(t);
    return NULL;
}

int target_census_prepare(Target *t)
{
    t->census_reader = pyreader_free(t->census_reader);
    if (!t->reader)
        return -EINVAL;
    if (t->census_gen != t->interp_gen) {
        /* Another program image, or one found afresh: what the last census learnt is void. */
        t->census_hints = censushints_free(t->census_hints);
        t->census_gen = t->interp_gen;
    }
    int k = 0;
    if (!t->census_rmem)
        k = rmem_open(t->pid, &t->census_rmem);
    if (k >= 0)
        k = pyreader_census_copy(t->reader, &t->census_reader);
    return k;
}

int target_census(Target *t, CensusMode mode, double max_pause, Census **ret, char *err,
                  size_t errlen)
{
    if (!t->census_reader || !t->census_rmem) {
        snprintf(err, errlen, "not a readable Python process");
        return -EINVAL;
    }
    return census_take(t->census_reader, t->census_rmem, t->pid, mode, max_pause, &t->census_hints,
                       ret, err, errlen);
}

void target_set_read_budget(Target *t, double seconds)
{
    t->read_budget = seconds;
}

void target_set_pss_policy(Target *t, double interval, uint64_t max_rss)
{
    t->pss_interval = interval;
    t->pss_max_rss = max_rss;
}

/* Fills s->mem.pss by the policy: a fresh read when due, else the last one with its time. */
static void sample_pss(Target *t, TargetSample *s)
{
    s->mem.pss = -1;
    if (t->pss_interval == 0) {
        snprintf(s->pss_error, sizeof(s->pss_error), "not read: pss_interval is 0");
        return;
    }
    if (t->pss_max_rss && s->mem.rss >= 0 && (uint64_t)s->mem.rss > t->pss_max_rss) {
        /* A value from when the process was smaller would mislead more than none. */
        t->pss = -1;
        t->pss_at = 0;
        snprintf(s->pss_error, sizeof(s->pss_error),
                 "not read: RSS (%.0f MiB) is above pss_max_rss (%.0f MiB), and reading "
                 "smaps_rollup would stall the process while the kernel walks its page tables",
                 (double)s->mem.rss / 1048576.0, (double)t->pss_max_rss / 1048576.0);
        return;
    }
    double now = clock_mono();
    if (t->pss_at == 0 || t->pss_interval < 0 || now - t->pss_mono >= t->pss_interval) {
        int64_t v = -1;
        procinfo_pss(t->pid, &v); /* a vanished process shows in the next identity read */
        t->pss = v;
        t->pss_at = clock_real();
        t->pss_mono = now;
    }
    s->mem.pss = t->pss;
    if (t->pss >= 0)
        s->pss_at = t->pss_at;
    else
        snprintf(s->pss_error, sizeof(s->pss_error),
                 "/proc/%d/smaps_rollup is not readable (needs ptrace access)", t->pid);
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
    case -ETIMEDOUT:
        s->status = TARGET_ERROR;
        snprintf(s->error, sizeof(s->error),
                 "abandoned: %s took longer than this sample's budget; tried again later, with "
                 "back-off, so that the other targets stay fresh",
                 what);
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
    t->interp_gen++; /* the census hints go at the next target_census_prepare() */
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
    /* The budget covers the read of the interpreter's state, not finding the interpreter
     * (ELF files, once per process). */
    if (t->read_budget > 0)
        rmem_set_deadline(t->rmem, clock_mono() + t->read_budget);
    k = pyreader_sample(t->reader, t->rmem, clock_mono(), force_frozen, &s->py);
    if (k == -EAGAIN)
        k = pyreader_sample(t->reader, t->rmem, clock_mono(), force_frozen, &s->py);
    rmem_set_deadline(t->rmem, 0);
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

    if (procinfo_memory_status(pi, t->pid, &s.mem) >= 0) {
        s.have_memory = true;
        sample_pss(t, &s);
    }
    sample_python(t, cache, force_frozen, &s);
    if (s.status == TARGET_OK && s.pymalloc_error[0])
        snprintf(s.error, sizeof(s.error), "pymalloc: %s", s.pymalloc_error);

done:
    s.sample_seconds = clock_mono() - t0;
    *ret = s;
}
