/* target: one watched process, from discovery to a finished sample.
 *
 * A Target owns the reader of its process and what was learnt about it (where the interpreter
 * is, which layout). target_sample() fills a self-contained TargetSample that renderers use
 * without touching the Target again. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc/procinfo.h"
#include "python/census.h"
#include "python/refs.h"
#include "python/locate.h"
#include "python/pyread.h"
#include "util/macro.h"

typedef enum TargetStatus {
    TARGET_OK = 0,
    TARGET_UNSUPPORTED, /* not Python, or a Python pymemd cannot read */
    TARGET_DENIED,      /* not allowed to read it */
    TARGET_GONE,        /* exited */
    TARGET_ERROR,       /* anything else: a torn read, a finalizing interpreter */
} TargetStatus;

const char *target_status_name(TargetStatus s);

typedef struct TargetSample {
    pid_t pid;
    TargetStatus status;
    char error[400]; /* empty when status is OK and nothing was missing */

    bool have_identity;
    ProcIdentity id; /* owned: released by targetsample_done() */

    bool have_python; /* version known */
    char version[32];
    uint32_t hexversion;
    bool version_exact;
    bool shared;

    bool have_memory;
    ProcMemory mem;

    bool have_py; /* the GC/pymalloc/thread counters */
    PySample py;
    char pymalloc_error[300]; /* why pymalloc is null, when it is */
    double busy_ratio;        /* share of polls that found the GC collecting; NaN when not polled */

    Census *census;         /* the latest census, a reference (NULL: none yet) */
    Census *prev_census;    /* the one before, for growth (a reference, or NULL) */
    char census_error[300]; /* why the latest census attempt failed, when it did */

    double sampled_at;     /* epoch seconds */
    double sample_seconds; /* wall time this sample took */
} TargetSample;

void targetsample_done(TargetSample *s);

/* Whether a sample is of a Python process, or of one pymemd may not read whose name or
 * executable says python: discovery (--all, --match) reports those and drops the rest, so that
 * a missing capability shows instead of an empty list. */
bool targetsample_maybe_python(const TargetSample *s);

/* Samples over which the busy ratio is estimated: at the default interval (1 s) and poll
 * interval (0.05 s), a minute and about 1,200 polls. */
#define TARGET_BUSY_WINDOW 60

typedef struct Target Target;

/* A target for `pid`. Nothing is read yet. The caller owns *ret. */
int target_new(pid_t pid, Target **ret);
Target *target_free(Target *t);
DEFINE_CLEANUP_FUNC(Target *, target_free)

pid_t target_pid(const Target *t);
/* Whether the process behind the pid is still the one this target first saw (a pid can be
 * reused; the start time tells them apart). 0 until the first sample. */
uint64_t target_start_ticks(const Target *t);

/* Takes a census of the target (which must have sampled ok once). Returns 0 with *ret (a
 * reference for the caller), or -errno with the reason in err. Never leaves it stopped. */
int target_census(Target *t, CensusMode mode, double max_pause, Census **ret, char *err,
                  size_t errlen);
/* Who holds the instances of `type` (python/refs.h), over a census copy sharing the census's
 * hints. The caller frees *ret with refs_free. */
int target_referrers(Target *t, const char *type, CensusMode mode, double max_pause, Refs **ret,
                     char *err, size_t errlen);

/* Polls the GC's `collecting` flag (one small read) and counts the answer toward the busy-ratio
 * estimate of the next sample. Silently does nothing for a target that is not readable. */
void target_poll_gc(Target *t);

/* Samples the target. Never fails: what went wrong is in ret->status and ret->error. */
void target_sample(Target *t, PyElfCache *cache, ProcInfo *pi, bool force_frozen,
                   TargetSample *ret);
