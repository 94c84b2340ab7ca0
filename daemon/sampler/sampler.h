/* sampler: the thread that watches targets and publishes snapshots.
 *
 * Every interval it samples each target and swaps a fresh Snapshot into the holder; every
 * discovery interval it looks for new processes (--all / --match); in between it polls each
 * Python target's `collecting` flag for the GC busy-ratio estimate. Targets that exit are
 * dropped (explicit --pid ones stay, reported "gone"); a pid reused by another process starts a
 * new target. A target that fails is retried with exponential back-off and its last error stays
 * visible meanwhile.
 *
 * Schedule: each turn of the loop samples when a sample is due (oldest-sampled target first; a
 * round that outlasts the interval leaves the rest for the next round, which starts with them).
 * Censuses run one at a time on a worker thread, so their walks never hold up sampling: an
 * on-demand one (?fresh=1) before a scheduled one; the target being censused is sampled all
 * the same (the census reads through a reader of its own). Censuses of one target that ?fresh=1 may
 * cause are at least census_min_interval apart; inside that window a request is answered from the
 * latest census (or, when the last attempt failed, told when to retry), and requests for one pid
 * waiting together share one census. */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <sys/types.h>

#include "sampler/target.h"
#include "snapshot/snapshot.h"

typedef struct SamplerOptions {
    const pid_t *pids;
    size_t npids;
    const char *const *matches; /* POSIX extended regex sources, checked to compile */
    size_t nmatches;
    bool all;
    double interval;                   /* seconds between samples */
    double gc_poll_interval;           /* seconds between polls of `collecting`; 0: off */
    double discovery_interval;         /* seconds between looks for new processes */
    double census_interval;            /* seconds between object censuses of each target; 0: none */
    double max_census_pause;           /* longest a scheduled census may keep a target stopped */
    double max_census_pause_on_demand; /* the same for a census asked for over HTTP */
    double census_min_interval; /* seconds between censuses ?fresh=1 may cause; 0: no limit */
    const char *census_match;   /* regex: who is censused on schedule; "": --pid/--match ones */
    double pss_interval;        /* seconds between smaps_rollup reads; 0: never */
    uint64_t pss_max_rss;       /* no smaps_rollup read above this RSS; 0: no limit */
    bool census_nonblocking;    /* take censuses without stopping the target */
    unsigned top_types;         /* object types per target in Prometheus output */

    double history_seconds;      /* history kept per target by the listener (config history) */
    uint64_t history_max_memory; /* all history rings together (config history_max_memory) */
    const char *version;
    double started_at;
} SamplerOptions;

typedef struct Sampler Sampler;

/* Called on the sampler thread with each new snapshot (a reference the callee may take with
 * snapshot_ref), before it is swapped into the holder and before anyone waiting for the census
 * it holds is answered: the privileged process hands it to the listener here, so that an
 * answer to ?fresh=1 always follows its snapshot on the channel. */
typedef void (*SamplerPublishFn)(void *ctx, Snapshot *snap);

/* Starts the sampler thread, publishing into holder (when not NULL) and through cb with ctx
 * (when cb is not NULL). The options are copied (the thread compiles its own regexes). The caller
 * owns *ret. */
int sampler_start(const SamplerOptions *opt, SnapshotHolder *holder, SamplerPublishFn cb, void *ctx,
                  Sampler **ret);
/* `pymemd --once`: on the calling thread, with no thread started, looks for the targets,
 * samples each once in full, takes the censuses the schedule policy selects (with the
 * on-demand pause budget), and publishes one snapshot into holder, as the daemon does each
 * interval. */
int sampler_once(const SamplerOptions *opt, SnapshotHolder *holder);
/* Applies new options at the next iteration (SIGHUP). The options are copied. */
int sampler_reconfigure(Sampler *s, const SamplerOptions *opt);
/* Tells the threads to stop, and every caller waiting in sampler_census_now or
 * sampler_referrers_now to give up (-ETIMEDOUT), without waiting: those callers must be gone
 * before sampler_stop frees the sampler. */
void sampler_interrupt(Sampler *s);
/* Stops and joins the thread, frees everything. NULL-safe. */
void sampler_stop(Sampler *s);
/* Asks for a census of a watched pid (GET .../objects?fresh=1) and waits at most `timeout`
 * seconds. Returns 0 when a census was taken and published for this request (or for another
 * request for the same pid waiting at the same time); 1 when the latest census is younger than
 * census_min_interval of the last census ?fresh=1 caused and the published snapshot's (latest)
 * census is the answer; -EAGAIN when the last attempt inside that window failed: *ret_retry_after
 * is the seconds until a new one may be taken and err says why the last failed; -ENOENT (not
 * watched or not readable Python), -ETIMEDOUT, or the census' own error with its sentence in err.
 */
int sampler_census_now(Sampler *s, pid_t pid, double timeout, double *ret_retry_after, char *err,
                       size_t errlen);

/* Whether a target is censused on schedule: census_match ("" when not set) against its name
 * and command line, or, with no census_match, whether --pid or --match selected it (--all
 * alone does not: it would stop every Python program on the host, build tools included). */
bool sampler_census_selects(const regex_t *census_re, bool explicit_pid, const regex_t *re,
                            size_t nre, const ProcIdentity *id);
/* Who holds the instances of `type` in pid (python/refs.h), computed on the census thread over
 * a fresh census copy, one at a time with the censuses. The latest answer for each type asked
 * (a few per pid) is kept: without `fresh` it answers, however old; with `fresh` a new one is
 * computed, rate-limited like ?fresh=1 to one per census_min_interval per process, inside which
 * the kept answer for that type answers. Returns 0 (computed for this request, or for another
 * one for the same pid and type waiting at the same time) or 1 (a kept answer) with the JSON
 * document in *ret_json (the caller frees it); -EAGAIN inside the window with no answer kept for
 * that type (or its last attempt failed), with *ret_retry_after and the reason in err; or
 * -errno with a sentence in err (-ENOENT: not watched or no such type; -EINVAL: an ambiguous
 * name). */
int sampler_referrers_now(Sampler *s, pid_t pid, const char *type, bool fresh, double timeout,
                          double *ret_retry_after, char **ret_json, char *err, size_t errlen);

/* Monotonic time of the last finished loop iteration: the watchdog checks it moves. */
double sampler_heartbeat(Sampler *s);

/* Whether a process identity is selected: --all, or a regex matching its name or command line
 * (exposed for tests). */
bool sampler_selects(bool all, const regex_t *re, size_t nre, const ProcIdentity *id);
