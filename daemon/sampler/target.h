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
#include "proc/whois.h"
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
    char error[800]; /* empty when status is OK and nothing was missing */

    bool have_identity;
    ProcIdentity id; /* owned: released by targetsample_done() */

    /* Who the process is (proc/whois.h), found once per program image; with have_identity. */
    bool have_cgroup;            /* cgroup set; false when /proc/PID/cgroup could not be read */
    WhoisCgroup cgroup;          /* container, pod, unit */
    pid_t ns_pid;                /* its pid in its own PID namespace; 0 when unknown */
    pid_t top_ancestor;          /* the top of its fork tree (whois_top_ancestor(); itself
                                  *   when none); 0 until the interpreter is located */
    char group[WHOIS_GROUP_MAX]; /* the group template expanded; "" without identity */

    bool have_python; /* version known */
    char version[32];
    uint32_t hexversion;
    bool version_exact;
    bool shared;

    bool have_memory;
    ProcMemory mem;      /* mem.pss: the latest read, which may be older than this sample */
    double pss_at;       /* epoch seconds of the smaps_rollup read mem.pss comes from; 0: none */
    char pss_error[160]; /* why mem.pss is -1, when it is */

    bool have_py; /* the GC/pymalloc/thread counters */
    PySample py;
    char pymalloc_error[560]; /* why pymalloc is null, when it is */
    double busy_ratio;        /* share of polls that found the GC collecting; NaN when not polled */

    Census *census;         /* the latest census, a reference (NULL: none yet) */
    Census *prev_census;    /* the one before, for growth (a reference, or NULL) */
    char census_error[300]; /* why the latest census attempt failed, when it did */
    uint64_t censuses;      /* censuses attempted of this process since it is watched */
    /* Leak suspects at the latest census (borrowed from the sampler; NULL: none known). */
    const struct Suspects *suspects;

    /* The program image is new (the process started or exec()ed moments ago) and what it runs
     * may still be setting up: a reading that fails is retried at the next interval, and a
     * process that was Python is not given up as not Python yet. */
    bool settling;
    /* This sample found another program image than the last one (exec() in place): nothing
     * learnt about the previous image, its censuses included, applies any more. */
    bool new_image;

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

/* How long a program image settles (see TargetSample.settling): CPython sets up its runtime
 * in milliseconds; a large program, its threads and imports, in a few seconds. */
#define TARGET_SETTLE_SECONDS 10.0

/* How old the served names of a process (comm, cmdline, exe) may grow: they are read again at
 * a new program image and otherwise at the first sample this long after the last read, so a
 * rename (prctl(PR_SET_NAME), setproctitle) shows within this time or one interval, whichever
 * is longer. */
#define TARGET_NAMES_SECONDS 10.0

pid_t target_pid(const Target *t);
/* Whether the process behind the pid is still the one this target first saw (a pid can be
 * reused; the start time tells them apart). 0 until the first sample. */
uint64_t target_start_ticks(const Target *t);

/* Gets the target ready for target_census(), from what its last sample found; called by the
 * thread that samples it, while no census of it runs. -EINVAL when it is not a readable Python
 * process, -EAGAIN before its first good sample. */
int target_census_prepare(Target *t);

/* Takes a census of the target (prepared as above). It may run on another thread than
 * target_sample() and target_poll_gc() of the same target: it uses only what
 * target_census_prepare() made for it. Before anything is stopped or read, and again once the
 * process is stopped, its identity is checked against the sample it was prepared from: a pid
 * reused since (-ESRCH) or a process that exec()ed since (-ESTALE) is neither stopped long nor
 * read. A process another tracer holds (a debugger, strace) is not stopped: -EBUSY, "traced by
 * pid N (name)". Returns 0 with *ret (a reference for the caller), or -errno with the reason in
 * err. Never leaves it stopped. */
int target_census(Target *t, CensusMode mode, double max_pause, Census **ret, char *err,
                  size_t errlen);
/* Hands what a census of the target learnt to its sampling (the length of the permanent list,
 * which samples serve while its ends stay put). Called by the thread that samples it. */
void target_census_taken(Target *t, const Census *c);

/* Who holds the instances of `type` (python/refs.h), over a census copy sharing the census's
 * hints: prepared, checked and run as target_census() is. The caller frees *ret with
 * refs_free. */
int target_referrers(Target *t, const char *type, CensusMode mode, double max_pause, Refs **ret,
                     char *err, size_t errlen);

/* Bounds the read of the interpreter's state in each sample to `seconds` (0: no limit, the
 * default): a read that takes longer is abandoned, the sample's status is "error" with the
 * reason. */
void target_set_read_budget(Target *t, double seconds);

/* When smaps_rollup (PSS) is read: at most every `interval` seconds (0: never; the value of the
 * last read is kept in between, with its time), and not while the RSS is above max_rss bytes
 * (0: no limit). A new target reads it every sample, without a limit. */
void target_set_pss_policy(Target *t, double interval, uint64_t max_rss);

/* The service group template (config key `group`, checked by whois_template_check()); NULL:
 * WHOIS_TEMPLATE_DEFAULT. Copied; applies from the next sample. */
void target_set_group_template(Target *t, const char *tpl);

/* Polls the GC's `collecting` flag (one small read) and counts the answer toward the busy-ratio
 * estimate of the next sample, when a poll is due at `now` (clock_mono()): every `interval`
 * seconds, and every TARGET_QUIET_POLL_EVERY intervals while the GC stayed idle between the
 * last two samples, each poll then counting for as many. Returns when the next is due.
 * Silently reads nothing for a target that is not readable. */
double target_poll_gc(Target *t, double now, double interval);

/* How much rarer the polls of a quiet GC are: at the default 0.05 s, 5 a second instead of 20. */
#define TARGET_QUIET_POLL_EVERY 4

/* What a sample saw of the GC, to tell whether a collection can have run between two. */
typedef struct GcMark {
    bool known;           /* false: not a good sample, or a version without collection counts */
    bool collecting;      /* a collection running at the sample */
    uint64_t collections; /* collections finished, all generations */
} GcMark;
GcMark target_gc_mark(const PySample *py);
/* Whether no collection can have run between two samples: none finished, none ran at either. */
bool target_gc_quiet(GcMark before, GcMark after);

/* Samples the target. Never fails: what went wrong is in ret->status and ret->error. */
void target_sample(Target *t, PyElfCache *cache, ProcInfo *pi, bool force_frozen,
                   TargetSample *ret);
