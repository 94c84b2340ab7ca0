/* sampler: the thread that watches targets and publishes snapshots.
 *
 * Every interval it samples each target and swaps a fresh Snapshot into the holder; every
 * discovery interval it looks for new processes (--all / --match); in between it polls each
 * Python target's `collecting` flag for the GC busy-ratio estimate. Targets that exit are
 * dropped (explicit --pid ones stay, reported "gone"); a pid reused by another process starts a
 * new target. A target that fails is retried with exponential back-off and its last error stays
 * visible meanwhile. */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <sys/types.h>

#include "metrics/snapshot.h"

typedef struct SamplerOptions {
    const pid_t *pids;
    size_t npids;
    const char *const *matches; /* POSIX extended regex sources, checked to compile */
    size_t nmatches;
    bool all;
    double interval;           /* seconds between samples */
    double gc_poll_interval;   /* seconds between polls of `collecting`; 0: off */
    double discovery_interval; /* seconds between looks for new processes */
    double census_interval;    /* seconds between object censuses of each target; 0: none */
    double max_census_pause;   /* longest a census may keep a target stopped */
    bool census_nonblocking;   /* take censuses without stopping the target */
    unsigned top_types;        /* object types per target in Prometheus output */
    const char *version;
    double started_at;
} SamplerOptions;

typedef struct Sampler Sampler;

/* Starts the sampler thread. The options are copied (the thread compiles its own regexes). The
 * caller owns *ret. */
int sampler_start(const SamplerOptions *opt, SnapshotHolder *holder, Sampler **ret);
/* Applies new options at the next iteration (SIGHUP). The options are copied. */
int sampler_reconfigure(Sampler *s, const SamplerOptions *opt);
/* Stops and joins the thread, frees everything. NULL-safe. */
void sampler_stop(Sampler *s);
/* Takes a census of a watched pid now, in the sampler thread, and publishes a snapshot with it
 * before returning; waits at most `timeout` seconds. Returns 0, -ENOENT (not watched or not
 * readable Python), -ETIMEDOUT, or the census' own error with its sentence in err. */
int sampler_census_now(Sampler *s, pid_t pid, double timeout, char *err, size_t errlen);
/* Who holds the instances of `type` in pid (python/refs.h), computed by the sampler thread over
 * a fresh census copy, as census requests are. Returns 0 with the JSON document in *ret_json
 * (the caller frees it), or -errno with a sentence in err (-ENOENT: not watched or no such
 * type; -EINVAL: an ambiguous name). */
int sampler_referrers_now(Sampler *s, pid_t pid, const char *type, double timeout, char **ret_json,
                          char *err, size_t errlen);

/* Monotonic time of the last finished loop iteration: the watchdog checks it moves. */
double sampler_heartbeat(Sampler *s);

/* Whether a process identity is selected: --all, or a regex matching its name or command line
 * (exposed for tests). */
bool sampler_selects(bool all, const regex_t *re, size_t nre, const ProcIdentity *id);
