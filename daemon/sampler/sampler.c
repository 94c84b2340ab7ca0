#include "sampler/sampler.h"

#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metrics/snaprender.h"
#include "sampler/suspects.h"
#include "remote/freeze.h"
#include "util/clock.h"
#include "util/log.h"

/* Back-off for a failing target: the first retry after one interval, doubling up to this. */
#define BACKOFF_MAX 60.0
/* How often threads a census could not let go at once are looked at (freeze_collect). */
#define FREEZE_COLLECT_INTERVAL 0.005

typedef struct Watched {
    Target *t;
    bool explicit_pid; /* named with --pid: reported even when gone or not Python */
    TargetSample last; /* the latest sample, kept for the snapshot while backing off */
    bool have_last;
    double retry_at; /* monotonic; 0: sample every interval */
    double backoff;
    Census *census, *prev_census; /* the latest two, references */
    /* Tallies of the last censuses (at most suspect_censuses + 1, oldest first, the latest
     * census's last) and the leak suspects found in them at the latest census. */
    SuspectTally *tallies[SUSPECTS_MAX_K + 1];
    size_t ntallies;
    Suspects *suspects;
    char census_error[300];
    double next_census;         /* monotonic */
    uint64_t censuses;          /* attempted, of this process */
    bool over_budget;           /* the last census needed more than max_census_pause */
    unsigned budget_skips;      /* scheduled censuses skipped since, for that reason */
    double sampled_mono;        /* when last sampled (monotonic; 0: never) */
    bool census_busy;           /* the census worker has its Target: not dropped meanwhile */
    double census_done;         /* monotonic end of its last census: the next waits for a
                                 * sample after it, so back-to-back censuses cannot keep a
                                 * target from being sampled */
    unsigned round;             /* the sampling round that last visited it */
    TargetStatus logged_status; /* to log transitions only */
    bool logged;
    LogRateLimit rl;
} Watched;

/* A process found not to be Python, remembered so discovery does not inspect it again, until
 * it exec()s another program (a shell script's `exec python3 app.py`). */
typedef struct Ignored {
    pid_t pid;
    uint64_t start_ticks;
    char *exe; /* NULL when it could not be read */
} Ignored;

/* A process discovery looked at and did not take (not selected, ignored, or a kernel thread),
 * with the stamp it had then: until it exec()s (a new stamp) or SAMPLER_PASSED_SECONDS go by,
 * discovery reads only its stamp, not its names (five files through libproc2 per process and
 * look, most of discovery's cost on a host with hundreds of processes). */
typedef struct Passed {
    pid_t pid;
    ProcStamp stamp;
    double judged; /* monotonic seconds */
} Passed;

/* How long discovery trusts a verdict on a process's names: a program that renames itself into
 * a match (prctl(PR_SET_NAME), setproctitle) without exec() is found within this time. */
#define SAMPLER_PASSED_SECONDS 30.0

/* A deep copy of SamplerOptions: opt points into the other fields. */
typedef struct OptCopy {
    SamplerOptions opt;
    pid_t *pids;
    char **match_src;
    char *census_match_src;
    char *group_src;
} OptCopy;

/* A census asked for over HTTP (?fresh=1), served by the sampler thread. */
typedef struct CensusRequest {
    pid_t pid;
    bool done;
    int result;
    double retry_after;
    char err[300];
    const char *referrers; /* GET .../referrers?type=T: T (the asker's); NULL for a census */
    bool fresh;            /* referrers: ?fresh=1, an earlier answer only inside the window */
    char *json;            /* the referrers' answer, for the asker to free */
    struct CensusRequest *next;
} CensusRequest;

/* The last census of a pid that ?fresh=1 caused, which opens the census_min_interval window
 * (scheduled ones do not: census_interval bounds them). Kept under the lock, so HTTP threads can
 * answer from it without waking the sampler. */
typedef struct CensusGate {
    pid_t pid;
    double at; /* monotonic */
    int result;
    char err[300];
} CensusGate;

/* The latest referrers answer of a pid for one type, kept so that asking again (inside
 * census_min_interval, or without ?fresh=1) is answered without stopping the target again. At
 * most REFS_ANSWERS_PER_PID per pid (the oldest goes); a pid's go when it is unwatched or execs. */
#define REFS_ANSWERS_PER_PID 8
typedef struct RefsAnswer {
    pid_t pid;
    char type[128]; /* as asked */
    double at;      /* monotonic: when computed */
    char *json;
} RefsAnswer;

/* The one census in flight, run by the census worker thread so that its walk (seconds for a
 * big heap) never holds up sampling. Guarded by the lock. */
typedef enum JobState { JOB_IDLE, JOB_QUEUED, JOB_DONE } JobState;
typedef struct CensusJob {
    JobState state;
    Target *t; /* borrowed from a Watched marked census_busy: it is not freed meanwhile */
    pid_t pid;
    CensusMode mode;
    double max_pause;
    bool on_demand;
    double started;      /* monotonic */
    char referrers[128]; /* a referrers job: the type asked for; "" for a census */
    int result;
    Census *census; /* the result, a reference */
    char *json;     /* a referrers job's answer (owned until handed to a request) */
    char err[300];
} CensusJob;

/* Back-off of scheduled censuses of a target whose last census needed more than
 * max_census_pause: one try in this many intervals. */
#define BUDGET_RETRY_EVERY 10

struct Sampler {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t census_done; /* signalled when a request is done */
    CensusRequest *requests;    /* guarded by lock, oldest first */
    CensusGate *gates;          /* guarded by lock */
    size_t ngates;
    RefsAnswer *answers; /* guarded by lock */
    size_t nanswers;
    CensusJob job;           /* guarded by lock */
    unsigned requests_added; /* guarded by lock: bumped by every new request */
    unsigned requests_seen;  /* what serve_requests last looked at (the thread's) */
    pthread_t worker;
    pthread_cond_t worker_wake;
    bool stop;
    OptCopy cur;       /* guarded by lock; the thread reads it freely (only it replaces it) */
    OptCopy pending;   /* from sampler_reconfigure(), taken in by the thread; guarded by lock */
    bool reconfigured; /* guarded by lock */
    SnapshotHolder *holder;
    SamplerPublishFn publish_cb;
    void *publish_ctx;
    bool once; /* sampler_once(): every target read in full (force_frozen) */
    _Atomic double heartbeat;

    /* Owned by the thread. */
    regex_t *re; /* compiled from opt.matches when the thread takes new options */
    size_t nre;
    regex_t census_re; /* compiled from opt.census_match, when set */
    bool have_census_re;
    unsigned round; /* sampling rounds so far */
    ProcInfo *pi;
    PyElfCache *cache;
    SnapCache *snapcache; /* the printed censuses publish() reuses; NULL until the first */
    /* At publish()'s last malloc_trim: the censuses attempted of the targets then, their number,
     * and the rounds published since. */
    uint64_t trim_censuses;
    size_t trim_nw;
    unsigned trim_rounds;
    Watched *w;
    size_t nw;
    Ignored *ignored;
    size_t nignored;
    Passed *passed; /* sorted by pid */
    size_t npassed;
};

static void optcopy_free(OptCopy *c)
{
    for (size_t i = 0; c->match_src && i < c->opt.nmatches; i++)
        free(c->match_src[i]);
    free(c->match_src);
    free(c->pids);
    free(c->census_match_src);
    free(c->group_src);
    *c = (OptCopy){0};
}

/* Deep-copies the options into *ret (whose opt points into its own copies). */
static int optcopy_make(const SamplerOptions *opt, OptCopy *ret)
{
    OptCopy c = {.opt = *opt};
    c.pids = calloc(opt->npids ? opt->npids : 1, sizeof(*c.pids));
    c.match_src = calloc(opt->nmatches ? opt->nmatches : 1, sizeof(*c.match_src));
    c.census_match_src = strdup(opt->census_match ? opt->census_match : "");
    c.group_src = strdup(opt->group ? opt->group : WHOIS_TEMPLATE_DEFAULT);
    bool ok = c.pids && c.match_src && c.census_match_src && c.group_src;
    for (size_t i = 0; ok && i < opt->nmatches; i++)
        ok = (c.match_src[i] = strdup(opt->matches[i])) != NULL;
    if (!ok) {
        optcopy_free(&c);
        return -ENOMEM;
    }
    if (opt->npids)
        memcpy(c.pids, opt->pids, opt->npids * sizeof(*c.pids));
    c.opt.pids = c.pids;
    c.opt.matches = (const char *const *)c.match_src;
    c.opt.census_match = c.census_match_src;
    c.opt.group = c.group_src;
    *ret = c;
    return 0;
}

bool sampler_selects(bool all, const regex_t *re, size_t nre, const ProcIdentity *id)
{
    if (all)
        return true;
    for (size_t i = 0; i < nre; i++) {
        if (regexec(&re[i], id->comm, 0, NULL, 0) == 0)
            return true;
        if (id->cmdline && regexec(&re[i], id->cmdline, 0, NULL, 0) == 0)
            return true;
    }
    return false;
}

bool sampler_census_selects(const regex_t *census_re, bool explicit_pid, const regex_t *re,
                            size_t nre, const ProcIdentity *id)
{
    if (census_re)
        return sampler_selects(false, census_re, 1, id);
    return explicit_pid || sampler_selects(false, re, nre, id);
}

static void free_regexes(Sampler *s)
{
    if (s->have_census_re)
        regfree(&s->census_re);
    s->have_census_re = false;
    for (size_t i = 0; i < s->nre; i++)
        regfree(&s->re[i]);
    free(s->re);
    s->re = NULL;
    s->nre = 0;
}

/* Compiles the patterns of new options. They were checked when the configuration was read; one
 * that fails anyway is skipped, with a warning. Called by the thread with the lock held. */
static void compile_regexes(Sampler *s)
{
    /* What discovery passed over was judged by the old patterns. */
    s->npassed = 0;
    free_regexes(s);
    s->re = calloc(s->cur.opt.nmatches ? s->cur.opt.nmatches : 1, sizeof(*s->re));
    if (!s->re)
        return;
    for (size_t i = 0; i < s->cur.opt.nmatches; i++) {
        if (regcomp(&s->re[s->nre], s->cur.opt.matches[i], REG_EXTENDED | REG_NOSUB) == 0)
            s->nre++;
        else
            log_warn("match \"%s\" does not compile; ignored", s->cur.opt.matches[i]);
    }
    const char *cm = s->cur.opt.census_match;
    if (cm && *cm) {
        s->have_census_re = regcomp(&s->census_re, cm, REG_EXTENDED | REG_NOSUB) == 0;
        if (!s->have_census_re)
            log_warn("census_match \"%s\" does not compile; nothing is censused on schedule", cm);
    }
}

/* ---- census gates (with the lock held) --------------------------------------------------- */

static CensusGate *gate_find(Sampler *s, pid_t pid)
{
    for (size_t i = 0; i < s->ngates; i++)
        if (s->gates[i].pid == pid)
            return &s->gates[i];
    return NULL;
}

static void gate_record(Sampler *s, pid_t pid, double at, int result, const char *err)
{
    CensusGate *g = gate_find(s, pid);
    if (!g) {
        CensusGate *n = realloc(s->gates, (s->ngates + 1) * sizeof(*n));
        if (!n)
            return; /* no gate: the next request takes a census, which is still correct */
        s->gates = n;
        g = &s->gates[s->ngates++];
    }
    *g = (CensusGate){.pid = pid, .at = at, .result = result};
    snprintf(g->err, sizeof(g->err), "%s", err);
}

static void gate_drop(Sampler *s, pid_t pid)
{
    CensusGate *g = gate_find(s, pid);
    if (g)
        *g = s->gates[--s->ngates];
}

/* ---- referrers answers kept (with the lock held) ------------------------------------------ */

static RefsAnswer *answer_find(Sampler *s, pid_t pid, const char *type)
{
    for (size_t i = 0; i < s->nanswers; i++)
        if (s->answers[i].pid == pid && strcmp(s->answers[i].type, type) == 0)
            return &s->answers[i];
    return NULL;
}

static void answer_remove(Sampler *s, RefsAnswer *a)
{
    free(a->json);
    *a = s->answers[--s->nanswers];
}

/* Drops every answer of pid (type NULL) or its answer for one type. */
static void answers_drop(Sampler *s, pid_t pid, const char *type)
{
    for (size_t i = s->nanswers; i-- > 0;)
        if (s->answers[i].pid == pid && (!type || strcmp(s->answers[i].type, type) == 0))
            answer_remove(s, &s->answers[i]);
}

/* Keeps json (taken over) as the latest answer of pid for type; on failure it is just freed:
 * the next request computes one again, which is still correct. */
static void answer_keep(Sampler *s, pid_t pid, const char *type, double at, char *json)
{
    answers_drop(s, pid, type);
    size_t mine = 0;
    RefsAnswer *oldest = NULL;
    for (size_t i = 0; i < s->nanswers; i++)
        if (s->answers[i].pid == pid) {
            mine++;
            if (!oldest || s->answers[i].at < oldest->at)
                oldest = &s->answers[i];
        }
    if (mine >= REFS_ANSWERS_PER_PID)
        answer_remove(s, oldest);
    RefsAnswer *n = realloc(s->answers, (s->nanswers + 1) * sizeof(*n));
    if (!n) {
        free(json);
        return;
    }
    s->answers = n;
    n[s->nanswers] = (RefsAnswer){.pid = pid, .at = at, .json = json};
    snprintf(n[s->nanswers].type, sizeof(n->type), "%s", type);
    s->nanswers++;
}

/* Whether a request for pid is answered without a census: inside census_min_interval of the
 * last census. Then *ret_result is 1 (serve the latest) or -EAGAIN with *ret_retry and the
 * reason the last failed in err. */
static bool gate_answers(Sampler *s, pid_t pid, double now, int *ret_result, double *ret_retry,
                         char *err, size_t errlen)
{
    double window = s->cur.opt.census_min_interval;
    const CensusGate *g = gate_find(s, pid);
    if (window <= 0 || !g || now - g->at >= window)
        return false;
    *ret_retry = window - (now - g->at);
    if (g->result >= 0) {
        *ret_result = 1;
        err[0] = 0;
    } else {
        *ret_result = -EAGAIN;
        snprintf(err, errlen,
                 "the census of process %d %.1fs ago failed (%s); census_min_interval (%gs) "
                 "allows the next in %.1fs",
                 pid, now - g->at, g->err, window, *ret_retry);
    }
    return true;
}

/* Answers every waiting request for pid. */
/* Whom an answer is for: the census requests of a pid, those for the referrers of one type, or
 * every request of the pid (it is not watched). */
typedef enum RequestKind {
    FOR_CENSUS,
    FOR_REFERRERS,
    FOR_ALL,
} RequestKind;

static bool request_matches(const CensusRequest *r, pid_t pid, RequestKind kind, const char *type)
{
    if (r->done || r->pid != pid)
        return false;
    if (kind == FOR_CENSUS)
        return !r->referrers;
    if (kind == FOR_REFERRERS)
        return r->referrers && strcmp(r->referrers, type) == 0;
    return true;
}

/* Answers the matching requests; each successful referrers request gets its own copy of json. */
static void finish_requests(Sampler *s, pid_t pid, RequestKind kind, const char *type, int result,
                            double retry, const char *err, const char *json)
{
    for (CensusRequest *r = s->requests; r; r = r->next) {
        if (!request_matches(r, pid, kind, type))
            continue;
        r->result = result;
        r->retry_after = retry;
        snprintf(r->err, sizeof(r->err), "%s", err);
        if (r->referrers && result >= 0 && !(r->json = strdup(json ? json : "{}"))) {
            r->result = -ENOMEM;
            snprintf(r->err, sizeof(r->err), "out of memory");
        }
        r->done = true;
    }
    pthread_cond_broadcast(&s->census_done);
}

/* Whether a referrers request is answered without a new copy of the heap, and how. Referrers
 * copy the heap as a census does, so ?fresh=1's window bounds them too, on a gate of their own
 * (keyed -pid): asking for referrers right after a fresh census is what a person does. Without
 * ?fresh=1 the latest answer for the type answers, however old; with it, only inside the window.
 * Then *ret_result is 1 with a copy of that answer in *ret_json, or -EAGAIN (inside the window
 * with no answer for that type, or its last attempt failed) with *ret_retry and the reason in
 * err, or -ENOMEM. */
static bool referrers_answered(Sampler *s, const CensusRequest *r, double now, int *ret_result,
                               double *ret_retry, char **ret_json, char *err, size_t errlen)
{
    const RefsAnswer *a = answer_find(s, r->pid, r->referrers);
    int result;
    bool gated = gate_answers(s, -r->pid, now, &result, ret_retry, err, errlen);
    if (!a && !gated)
        return false;
    if (a && (!r->fresh || gated)) {
        *ret_json = strdup(a->json);
        *ret_result = *ret_json ? 1 : -ENOMEM;
        if (!*ret_json)
            snprintf(err, errlen, "out of memory");
        return true;
    }
    if (!gated)
        return false;
    *ret_result = -EAGAIN;
    if (result >= 0)
        snprintf(err, errlen,
                 "referrers of process %d were computed %.1fs ago, not for '%s'; "
                 "census_min_interval (%gs) allows the next in %.1fs",
                 r->pid, s->cur.opt.census_min_interval - *ret_retry, r->referrers,
                 s->cur.opt.census_min_interval, *ret_retry);
    return true;
}

static Watched *find_watched(Sampler *s, pid_t pid)
{
    for (size_t i = 0; i < s->nw; i++)
        if (target_pid(s->w[i].t) == pid)
            return &s->w[i];
    return NULL;
}

static bool is_ignored(const Sampler *s, const ProcIdentity *id)
{
    for (size_t i = 0; i < s->nignored; i++) {
        const Ignored *g = &s->ignored[i];
        if (g->pid == id->pid && g->start_ticks == id->start_ticks &&
            (g->exe && id->exe ? strcmp(g->exe, id->exe) == 0 : g->exe == id->exe))
            return true;
    }
    return false;
}

static void ignore(Sampler *s, const ProcIdentity *id)
{
    Ignored *n = realloc(s->ignored, (s->nignored + 1) * sizeof(*n));
    if (!n)
        return;
    s->ignored = n;
    char *exe = id->exe ? strdup(id->exe) : NULL;
    if (id->exe && !exe)
        return;
    s->ignored[s->nignored++] = (Ignored){id->pid, id->start_ticks, exe};
}

/* How long one target's interpreter-state read may take: the interval, but at least a second
 * (a healthy read takes well under a millisecond; this only stops walks that would take
 * seconds, such as a huge or forged list, from making every other target stale). */
static double read_budget(const SamplerOptions *opt)
{
    return fmax(opt->interval, 1.0);
}

static int watch(Sampler *s, const SamplerOptions *opt, pid_t pid, bool explicit_pid)
{
    Watched *n = realloc(s->w, (s->nw + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    s->w = n;
    Watched *w = &s->w[s->nw];
    *w = (Watched){.explicit_pid = explicit_pid};
    int k = target_new(pid, &w->t);
    if (k < 0)
        return k;
    target_set_pss_policy(w->t, opt->pss_interval, opt->pss_max_rss);
    target_set_read_budget(w->t, read_budget(opt));
    target_set_group_template(w->t, opt->group);
    s->nw++;
    return 0;
}

/* Forgets the censuses' tallies and suspects (the process exec()ed, or is let go). */
static void trail_clear(Watched *w)
{
    for (size_t i = 0; i < w->ntallies; i++)
        suspects_tally_free(w->tallies[i]);
    w->ntallies = 0;
    w->suspects = suspects_free(w->suspects);
}

/* Takes census c into the tallies of w (keeping the last k + 1) and finds the suspects anew. On
 * allocation failure the suspects say so rather than show a list from fewer censuses. */
static void trail_add(Watched *w, const Census *c, unsigned k)
{
    k = MIN(MAX(k, 1u), (unsigned)SUSPECTS_MAX_K);
    SuspectTally *t = NULL;
    if (suspects_tally(c, &t) < 0) {
        trail_clear(w); /* a gap would make the next ones look consecutive */
        return;
    }
    if (w->ntallies == ARRAY_SIZE(w->tallies)) {
        suspects_tally_free(w->tallies[0]);
        memmove(w->tallies, w->tallies + 1, (w->ntallies - 1) * sizeof(w->tallies[0]));
        w->ntallies--;
    }
    w->tallies[w->ntallies++] = t;
    /* Fewer kept after a reload lowered suspect_censuses. */
    while (w->ntallies > (size_t)k + 1) {
        suspects_tally_free(w->tallies[0]);
        memmove(w->tallies, w->tallies + 1, (w->ntallies - 1) * sizeof(w->tallies[0]));
        w->ntallies--;
    }
    Suspects *found = NULL;
    suspects_find(c, (const SuspectTally *const *)w->tallies, w->ntallies, k, &found);
    suspects_free(w->suspects);
    w->suspects = found;
}

static void unwatch(Sampler *s, size_t i)
{
    Watched *w = &s->w[i];
    pthread_mutex_lock(&s->lock);
    gate_drop(s, target_pid(w->t));
    gate_drop(s, -target_pid(w->t));
    answers_drop(s, target_pid(w->t), NULL);
    pthread_mutex_unlock(&s->lock);
    census_free(w->census);
    census_free(w->prev_census);
    trail_clear(w);
    if (w->have_last)
        targetsample_done(&w->last);
    target_free(w->t);
    s->w[i] = s->w[--s->nw];
}

/* Brings the watched set in line with the options and the processes that exist now. */
static void discover(Sampler *s, const SamplerOptions *opt)
{
    for (size_t i = 0; i < opt->npids; i++)
        if (!find_watched(s, opt->pids[i]))
            watch(s, opt, opt->pids[i], true);
    /* Explicit targets no longer named (after a reload) go. */
    for (size_t i = 0; i < s->nw;) {
        bool named = false;
        for (size_t j = 0; j < opt->npids && !named; j++)
            named = opt->pids[j] == target_pid(s->w[i].t);
        if (s->w[i].explicit_pid && !named && !s->w[i].census_busy)
            unwatch(s, i); /* a busy one goes at the next look, once its census is in */
        else
            s->w[i++].explicit_pid = named;
    }
    if (!opt->all && opt->nmatches == 0)
        return;

    pid_t *pids = NULL;
    size_t n = 0;
    if (procinfo_list(s->pi, &pids, &n) < 0) {
        log_warn("cannot list processes; discovery skipped");
        return;
    }
    /* Forget ignored processes that exited, so the list stays as long as the host's. */
    size_t keep = 0;
    for (size_t i = 0; i < s->nignored; i++) {
        bool alive = false;
        for (size_t j = 0; j < n && !alive; j++)
            alive = pids[j] == s->ignored[i].pid;
        if (alive)
            s->ignored[keep++] = s->ignored[i];
        else
            free(s->ignored[i].exe);
    }
    s->nignored = keep;

    /* Both lists ascend: the verdicts of processes still there carry over, in order. */
    Passed *was = s->passed;
    size_t nwas = s->npassed, at = 0, npassed = 0;
    Passed *passed = calloc(n ? n : 1, sizeof(*passed));
    double now = clock_mono();
    pid_t self = getpid();
    for (size_t i = 0; i < n; i++) {
        while (at < nwas && was[at].pid < pids[i])
            at++;
        const Passed *old = at < nwas && was[at].pid == pids[i] ? &was[at] : NULL;
        if (pids[i] == self || find_watched(s, pids[i]))
            continue;
        ProcStamp st;
        if (procinfo_stamp(pids[i], &st) < 0)
            continue;
        if (old && passed && procstamp_same_image(&old->stamp, &st) &&
            now - old->judged < SAMPLER_PASSED_SECONDS) {
            passed[npassed++] = *old;
            continue;
        }
        ProcIdentity id;
        if (procinfo_identity(s->pi, pids[i], &id) < 0)
            continue;
        /* Kernel threads have neither a command line nor an executable. */
        bool take = !is_ignored(s, &id) && sampler_selects(opt->all, s->re, s->nre, &id) &&
                    (id.cmdline || id.exe);
        procidentity_done(&id);
        if (take)
            watch(s, opt, pids[i], false);
        else if (passed)
            passed[npassed++] = (Passed){pids[i], st, now};
    }
    free(was);
    s->passed = passed;
    s->npassed = passed ? npassed : 0;
    free(pids);
}

static void log_transition(Watched *w, const TargetSample *t)
{
    if (w->logged && w->logged_status == t->status)
        return;
    if (!log_ratelimit_ok(&w->rl, clock_mono(), 60.0, 5))
        return;
    const char *name = t->have_identity ? t->id.comm : "?";
    if (t->status == TARGET_OK)
        log_info("pid %d \"%s\": watching, CPython %s", t->pid, name, t->version);
    else
        log_warn("pid %d \"%s\": %s: %s", t->pid, name, target_status_name(t->status), t->error);
    w->logged = true;
    w->logged_status = t->status;
}

static void publish(Sampler *s, const SamplerOptions *opt);

/* Hands a census of w to the worker. Called with the lock not held, no job in flight. */
/* referrers: the type whose referrers are asked for, or NULL for a census. */
static void census_start(Sampler *s, Watched *w, const SamplerOptions *opt, bool on_demand,
                         const char *referrers)
{
    w->census_busy = true;
    w->censuses++;
    target_census_prepare(w->t); /* on failure target_census says why */
    pthread_mutex_lock(&s->lock);
    s->job = (CensusJob){
        .state = JOB_QUEUED,
        .t = w->t,
        .pid = target_pid(w->t),
        .mode = opt->census_nonblocking ? CENSUS_NONBLOCKING : CENSUS_FREEZE,
        .max_pause = on_demand ? opt->max_census_pause_on_demand : opt->max_census_pause,
        .on_demand = on_demand,
        .started = clock_mono(),
    };
    snprintf(s->job.referrers, sizeof(s->job.referrers), "%s", referrers ? referrers : "");
    pthread_cond_signal(&s->worker_wake);
    pthread_mutex_unlock(&s->lock);
}

static void *census_worker(void *arg)
{
    Sampler *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        if (s->job.state != JOB_QUEUED) {
            /* This thread is the tracer of every census (ptrace tracers are threads): threads
             * it could not let go yet (killed, or abandoned before they stopped) are its to
             * collect, and the target's parent waits for them, so look again soon. */
            pthread_mutex_unlock(&s->lock);
            size_t left = freeze_collect();
            pthread_mutex_lock(&s->lock);
            if (s->stop || s->job.state == JOB_QUEUED)
                continue;
            if (left == 0) {
                pthread_cond_wait(&s->worker_wake, &s->lock);
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += (long)(FREEZE_COLLECT_INTERVAL * 1e9);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->worker_wake, &s->lock, &ts);
            continue;
        }
        CensusJob j = s->job;
        pthread_mutex_unlock(&s->lock);
        Census *c = NULL;
        char err[300] = "", *json = NULL;
        int k;
        if (j.referrers[0]) {
            Refs *x = NULL;
            k = target_referrers(j.t, j.referrers, j.mode, j.max_pause, &x, err, sizeof(err));
            if (k >= 0 && !(json = refs_json(x))) {
                k = -ENOMEM;
                snprintf(err, sizeof(err), "out of memory");
            }
            refs_free(x);
        } else {
            k = target_census(j.t, j.mode, j.max_pause, &c, err, sizeof(err));
        }
        pthread_mutex_lock(&s->lock);
        s->job.result = k;
        s->job.census = c;
        s->job.json = json;
        snprintf(s->job.err, sizeof(s->job.err), "%s", err);
        s->job.state = JOB_DONE;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->lock);
    freeze_collect();
    freeze_forget(); /* this thread's exit lets go of what is left */
    return NULL;
}

/* Takes a finished census into its Watched, publishes, and answers the requests it serves.
 * Returns whether there was one. */
static bool census_collect(Sampler *s, const SamplerOptions *opt)
{
    pthread_mutex_lock(&s->lock);
    if (s->job.state != JOB_DONE) {
        pthread_mutex_unlock(&s->lock);
        return false;
    }
    CensusJob j = s->job;
    s->job = (CensusJob){.state = JOB_IDLE};
    pthread_mutex_unlock(&s->lock);

    Watched *w = NULL;
    for (size_t i = 0; i < s->nw && !w; i++)
        if (s->w[i].t == j.t)
            w = &s->w[i];
    assert(w); /* a busy target is never dropped */
    w->census_busy = false;
    w->census_done = clock_mono();
    if (j.referrers[0]) {
        /* Referrers leave the census as it was: they answer their askers only. */
        pthread_mutex_lock(&s->lock);
        gate_record(s, -j.pid, j.started, j.result, j.err);
        finish_requests(s, j.pid, FOR_REFERRERS, j.referrers, j.result, 0, j.err, j.json);
        if (j.result >= 0)
            answer_keep(s, j.pid, j.referrers, j.started, j.json);
        else
            answers_drop(s, j.pid, j.referrers); /* the latest attempt failed: say so */
        pthread_mutex_unlock(&s->lock);
        if (j.result < 0)
            free(j.json);
        return true;
    }
    if (j.result < 0) {
        snprintf(w->census_error, sizeof(w->census_error), "%s", j.err);
        if (j.result == -ETIMEDOUT)
            w->over_budget = true;
        if (!j.on_demand && log_ratelimit_ok(&w->rl, clock_mono(), 60.0, 5))
            log_warn("pid %d: census: %s", j.pid, j.err);
    } else {
        w->census_error[0] = 0;
        w->over_budget = j.census->frozen && j.census->pause_seconds > opt->max_census_pause;
        w->budget_skips = 0;
        target_census_taken(w->t, j.census);
        census_free(w->prev_census);
        w->prev_census = w->census;
        w->census = j.census;
        trail_add(w, j.census, opt->suspect_censuses);
    }
    publish(s, opt); /* the census, or its error and the attempt counted */
    pthread_mutex_lock(&s->lock);
    /* An on-demand census opens the census_min_interval window; a scheduled one does not
     * (census_interval bounds those), but when it succeeded it answers whoever waits for this
     * pid. A failed scheduled one leaves them waiting for an on-demand try with its budget. */
    if (j.on_demand)
        gate_record(s, j.pid, j.started, j.result, j.err);
    if (j.on_demand || j.result >= 0)
        finish_requests(s, j.pid, FOR_CENSUS, NULL, j.result, 0, j.err, NULL);
    pthread_mutex_unlock(&s->lock);
    return true;
}

/* The watched target sampled longest ago that this round has not visited, or NULL. */
static Watched *next_to_sample(Sampler *s)
{
    Watched *best = NULL;
    for (size_t i = 0; i < s->nw; i++) {
        Watched *w = &s->w[i];
        if (w->round != s->round && (!best || w->sampled_mono < best->sampled_mono))
            best = w;
    }
    return best;
}

/* Samples every target that is due, oldest-sampled first, within one interval: a round that
 * takes longer leaves the rest for the next round, which starts with them, so one slow target
 * cannot make every other one stale. A target whose own read took longer than the interval is
 * backed off, with the reason in its error. Drops the gone and the non-Python ones found by
 * discovery. */
static void sample_all(Sampler *s, const SamplerOptions *opt)
{
    double now = clock_mono(), deadline = now + opt->interval;
    s->round++;
    for (Watched *w; (w = next_to_sample(s));) {
        size_t i = (size_t)(w - s->w);
        w->round = s->round;
        if (w->retry_at > now && w->have_last)
            continue;
        if (clock_mono() > deadline && w->have_last)
            break;
        bool was_ok = w->have_last && w->last.status == TARGET_OK;
        TargetSample t;
        target_sample(w->t, s->cache, s->pi, s->once, &t);
        w->sampled_mono = clock_mono();
        bool not_python = t.status != TARGET_GONE && !targetsample_maybe_python(&t);
        /* A target the census worker holds is dropped (or started over) once the census is
         * in: it ends soon, the process being gone. */
        if (!w->explicit_pid && (t.status == TARGET_GONE || not_python) && !w->census_busy) {
            if (not_python && t.have_identity)
                ignore(s, &t.id);
            else if (t.status == TARGET_GONE && w->logged)
                log_info("pid %d: exited; no longer watched", t.pid);
            targetsample_done(&t);
            unwatch(s, i);
            continue;
        }
        if (w->explicit_pid && t.status == TARGET_GONE && t.have_identity &&
            target_start_ticks(w->t) != t.id.start_ticks && !w->census_busy) {
            /* The pid now names another process: start over with a fresh target for it. */
            pid_t pid = t.pid;
            targetsample_done(&t);
            unwatch(s, i);
            watch(s, opt, pid, true);
            s->w[s->nw - 1].round = s->round;
            continue;
        }
        if (t.new_image) {
            /* exec() in place: the censuses (and referrers) were of the old program. */
            pthread_mutex_lock(&s->lock);
            answers_drop(s, t.pid, NULL);
            pthread_mutex_unlock(&s->lock);
            w->census = census_free(w->census);
            w->prev_census = census_free(w->prev_census);
            trail_clear(w);
            w->census_error[0] = 0;
        }
        log_transition(w, &t);
        if (t.status == TARGET_OK && was_ok && t.sample_seconds > opt->interval) {
            /* Not the first read (which finds the interpreter): this process is slow to read
             * every time, and must not hold up the others. */
            w->backoff = w->backoff ? fmin(w->backoff * 2, BACKOFF_MAX) : opt->interval;
            w->retry_at = now + w->backoff;
            snprintf(t.error, sizeof(t.error),
                     "reading this process took %.2fs, longer than the interval (%gs): it is "
                     "sampled again in %gs so that the other targets stay fresh",
                     t.sample_seconds, opt->interval, w->backoff);
        } else if (t.status == TARGET_OK) {
            w->backoff = 0;
            w->retry_at = 0;
        } else if (t.settling) {
            /* A program image starting up: look again at the next interval. */
            w->backoff = 0;
            w->retry_at = 0;
        } else {
            w->backoff = w->backoff ? fmin(w->backoff * 2, BACKOFF_MAX) : opt->interval;
            w->retry_at = now + w->backoff;
        }
        if (w->have_last)
            targetsample_done(&w->last);
        w->last = t;
        w->have_last = true;
    }
}

/* The sample of w as the snapshot shows it: its last sample with the census state of the
 * Watched. A shallow view: every pointer in it stays the Watched's. */
static TargetSample sample_view(const Watched *w)
{
    TargetSample out = w->last;
    out.census = w->census;
    out.prev_census = w->prev_census;
    out.suspects = w->suspects;
    out.censuses = w->censuses;
    snprintf(out.census_error, sizeof(out.census_error), "%s", w->census_error);
    return out;
}

static int cmp_pid(const void *a, const void *b)
{
    const TargetSample *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* publish() trims the heap at least this often (rounds). */
#define TRIM_ROUNDS 30

/* Renders what the Watched hold now into a snapshot and publishes it: the snapshot is plain
 * data (rendered documents), so nothing of the sampler's state outlives this call in it. */
static void publish(Sampler *s, const SamplerOptions *opt)
{
    TargetSample *v = calloc(s->nw ? s->nw : 1, sizeof(*v));
    if (!v)
        return;
    size_t n = 0;
    for (size_t i = 0; i < s->nw; i++)
        if (s->w[i].have_last)
            v[n++] = sample_view(&s->w[i]);
    qsort(v, n, sizeof(*v), cmp_pid);
    JsonDaemonInfo info = {opt->version,   opt->started_at,      opt->interval,
                           opt->top_types, opt->history_seconds, opt->history_max_memory};
    Snapshot *snap = NULL;
    if (!s->snapcache)
        s->snapcache = snapcache_new(); /* NULL when out of memory: everything printed anew */
    int k = snaprender_new(&info, v, n, clock_real(), s->snapcache, &snap);
    free(v);
    if (k < 0) {
        log_error("out of memory building a snapshot; serving the previous one");
        return;
    }
    /* Handed on (to the listener process) before anyone waiting for this census is told. */
    if (s->publish_cb)
        s->publish_cb(s->publish_ctx, snap);
    if (s->holder)
        holder_swap(s->holder, snap);
    else
        snapshot_unref(snap);
    /* Rendering builds and frees a JSON tree per target each interval, and the census trees
     * when one comes in (see SnapCache): hand the freed memory back (100 targets: 10.5 MiB of
     * RSS instead of 12.3). Only after a census, when the targets changed, or every
     * TRIM_ROUNDS: between those, a round frees what the next one allocates again, and a trim
     * each round made the next fault in those pages anew (10 targets: 120 page faults a round,
     * a fifth of rendering's CPU). */
    uint64_t censuses = 0;
    for (size_t i = 0; i < s->nw; i++)
        censuses += s->w[i].censuses;
    if (censuses != s->trim_censuses || s->nw != s->trim_nw || ++s->trim_rounds >= TRIM_ROUNDS) {
        malloc_trim(0);
        s->trim_censuses = censuses;
        s->trim_nw = s->nw;
        s->trim_rounds = 0;
    }
}

/* Whether a census of w may start now: readable, not in a census, and sampled since its last
 * one. */
static bool census_ready(const Watched *w)
{
    return w->have_last && w->last.status == TARGET_OK && !w->census_busy &&
           w->sampled_mono > w->census_done;
}

static bool census_scheduled_for(const Sampler *s, const Watched *w)
{
    if (!w->last.have_identity)
        return false;
    if (s->cur.opt.census_match && *s->cur.opt.census_match && !s->have_census_re)
        return false; /* a pattern that did not compile selects nobody */
    return sampler_census_selects(s->have_census_re ? &s->census_re : NULL, w->explicit_pid, s->re,
                                  s->nre, &w->last.id);
}

/* Answers the census requests that need no census (inside census_min_interval, or for a pid
 * that is not a readable target); with no census in flight, starts one for the oldest of the
 * rest. Returns whether it started one. */
static bool serve_requests(Sampler *s, const SamplerOptions *opt)
{
    pthread_mutex_lock(&s->lock);
    s->requests_seen = s->requests_added;
    bool idle = s->job.state == JOB_IDLE;
    pid_t busy_pid = idle ? 0 : s->job.pid, start = 0;
    char start_type[sizeof(s->job.referrers)] = ""; /* copied: the asker may give up and go */
    for (CensusRequest *r = s->requests; r; r = r->next) {
        if (r->done || r->pid == busy_pid)
            continue; /* answered when the census in flight ends */
        pid_t pid = r->pid;
        int result;
        double retry = 0;
        char err[300] = "";
        const Watched *w = find_watched(s, pid);
        if (!w || !w->have_last || w->last.status != TARGET_OK) {
            snprintf(err, sizeof(err), "process %d is not a watched, readable Python process", pid);
            finish_requests(s, pid, FOR_ALL, NULL, -ENOENT, 0, err, NULL);
        } else if (r->referrers) {
            char *json = NULL;
            if (referrers_answered(s, r, clock_mono(), &result, &retry, &json, err, sizeof(err))) {
                r->result = result;
                r->retry_after = retry;
                snprintf(r->err, sizeof(r->err), "%s", err);
                r->json = json;
                r->done = true;
                pthread_cond_broadcast(&s->census_done);
            } else if (idle && !start && census_ready(w)) {
                start = pid;
                snprintf(start_type, sizeof(start_type), "%s", r->referrers);
            }
        } else if (gate_answers(s, pid, clock_mono(), &result, &retry, err, sizeof(err))) {
            finish_requests(s, pid, FOR_CENSUS, NULL, result, retry, err, NULL);
        } else if (idle && !start && census_ready(w)) {
            start = pid; /* the others wait: for the worker, or for a sample first */
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (!start)
        return false;
    census_start(s, find_watched(s, start), opt, true, start_type[0] ? start_type : NULL);
    return true;
}

/* Starts the scheduled census most overdue, if one is due and none is in flight. */
static void scheduled_census(Sampler *s, const SamplerOptions *opt)
{
    if (opt->census_interval <= 0)
        return;
    pthread_mutex_lock(&s->lock);
    bool idle = s->job.state == JOB_IDLE;
    pthread_mutex_unlock(&s->lock);
    if (!idle)
        return;
    double now = clock_mono();
    Watched *due = NULL;
    for (size_t i = 0; i < s->nw; i++) {
        Watched *w = &s->w[i];
        if (!census_ready(w) || now < w->next_census)
            continue;
        if (!census_scheduled_for(s, w)) {
            if (!w->census)
                snprintf(w->census_error, sizeof(w->census_error),
                         "not censused on schedule (census_match%s); ?fresh=1 takes one",
                         opt->census_match && *opt->census_match
                             ? " does not match it"
                             : " is not set, and only targets named by pid or match are");
            w->next_census = now + opt->census_interval;
            continue;
        }
        if (!due || w->next_census < due->next_census)
            due = w;
    }
    if (!due)
        return;
    due->next_census = now + opt->census_interval;
    if (due->over_budget && ++due->budget_skips < BUDGET_RETRY_EVERY) {
        snprintf(due->census_error, sizeof(due->census_error),
                 "scheduled census skipped: the last one needed to stop the process longer than "
                 "max_census_pause (%gs); tried again every %d census intervals; ?fresh=1 may "
                 "stop it up to max_census_pause_on_demand (%gs)",
                 opt->max_census_pause, BUDGET_RETRY_EVERY, opt->max_census_pause_on_demand);
        return;
    }
    due->budget_skips = 0;
    census_start(s, due, opt, false, NULL);
}

/* Whether a scheduled census is due now (so the loop comes round again without sleeping). */
static bool census_due(const Sampler *s, const SamplerOptions *opt)
{
    if (opt->census_interval <= 0)
        return false;
    double now = clock_mono();
    for (size_t i = 0; i < s->nw; i++)
        if (census_ready(&s->w[i]) && now >= s->w[i].next_census)
            return true;
    return false;
}

/* Queues req for the sampler thread and waits at most timeout seconds for its answer. Inside
 * census_min_interval the answer is known here, without waking the sampler. */
static int request_now(Sampler *s, CensusRequest *req, double timeout, double *ret_retry_after,
                       char *err, size_t errlen)
{
    pthread_mutex_lock(&s->lock);
    int result;
    double retry = 0;
    if (req->referrers
            ? referrers_answered(s, req, clock_mono(), &result, &retry, &req->json, err, errlen)
            : gate_answers(s, req->pid, clock_mono(), &result, &retry, err, errlen)) {
        pthread_mutex_unlock(&s->lock);
        *ret_retry_after = retry;
        return result;
    }
    CensusRequest **tail = &s->requests;
    while (*tail)
        tail = &(*tail)->next;
    *tail = req;
    s->requests_added++;
    pthread_cond_signal(&s->wake);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + timeout;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    int k = 0;
    while (!req->done && k != ETIMEDOUT && !s->stop)
        k = pthread_cond_timedwait(&s->census_done, &s->lock, &ts);
    /* Unlink the request: it lives on the asker's stack frame. */
    for (CensusRequest **p = &s->requests; *p; p = &(*p)->next)
        if (*p == req) {
            *p = req->next;
            break;
        }
    bool done = req->done;
    pthread_mutex_unlock(&s->lock);
    if (!done) {
        if (req->referrers)
            snprintf(err, errlen,
                     "the referrers did not finish within %gs; they go on, and their answer is "
                     "kept for the next request",
                     timeout);
        else
            snprintf(err, errlen, "the census did not finish within %gs", timeout);
        return -ETIMEDOUT;
    }
    snprintf(err, errlen, "%s", req->err);
    *ret_retry_after = req->retry_after;
    return req->result;
}

int sampler_census_now(Sampler *s, pid_t pid, double timeout, double *ret_retry_after, char *err,
                       size_t errlen)
{
    CensusRequest req = {.pid = pid};
    return request_now(s, &req, timeout, ret_retry_after, err, errlen);
}

int sampler_referrers_now(Sampler *s, pid_t pid, const char *type, bool fresh, double timeout,
                          double *ret_retry_after, char **ret_json, char *err, size_t errlen)
{
    CensusRequest req = {.pid = pid, .referrers = type, .fresh = fresh};
    int k = request_now(s, &req, timeout, ret_retry_after, err, errlen);
    if (k >= 0)
        *ret_json = req.json;
    else
        free(req.json);
    return k;
}

static void *run(void *arg)
{
    Sampler *s = arg;
    double next_sample = clock_mono(), next_discovery = next_sample, next_poll = next_sample;

    pthread_mutex_lock(&s->lock);
    compile_regexes(s);
    while (!s->stop) {
        if (s->reconfigured) {
            s->reconfigured = false;
            /* The options of the last turn are no longer in use here: replace them. */
            optcopy_free(&s->cur);
            s->cur = s->pending;
            s->pending = (OptCopy){0};
            compile_regexes(s);
            for (size_t i = 0; i < s->nw; i++) {
                target_set_pss_policy(s->w[i].t, s->cur.opt.pss_interval, s->cur.opt.pss_max_rss);
                target_set_read_budget(s->w[i].t, read_budget(&s->cur.opt));
                target_set_group_template(s->w[i].t, s->cur.opt.group);
            }
            next_discovery = next_sample = clock_mono();
        }
        SamplerOptions opt = s->cur.opt;
        pthread_mutex_unlock(&s->lock);

        double now = clock_mono();
        if (now >= next_discovery) {
            discover(s, &opt);
            next_discovery = now + opt.discovery_interval;
        }
        if (now >= next_sample) {
            sample_all(s, &opt);
            publish(s, &opt);
            next_poll = now; /* a target whose GC was seen working is polled at once */
            /* Keep the schedule: a slow sample does not shift every later one. */
            next_sample += opt.interval;
            if (next_sample < now)
                next_sample = now + opt.interval;
        }
        if (opt.gc_poll_interval > 0 && now >= next_poll) {
            /* Each target has its own cadence (a quiet GC is polled less often): wake for the
             * first due. */
            next_poll = now + TARGET_QUIET_POLL_EVERY * opt.gc_poll_interval;
            for (size_t i = 0; i < s->nw; i++)
                if (s->w[i].have_last && s->w[i].last.status == TARGET_OK)
                    next_poll =
                        fmin(next_poll, target_poll_gc(s->w[i].t, now, opt.gc_poll_interval));
        }
        /* Censuses run on the worker, one at a time, so they never hold up sampling here:
         * take a finished one in, then start the next (on demand before scheduled). */
        census_collect(s, &opt);
        if (!serve_requests(s, &opt))
            scheduled_census(s, &opt);
        /* The heartbeat (which feeds the systemd watchdog) moves only while the sampler keeps
         * its schedule: a turn that ends more than an interval behind proves nothing. */
        now = clock_mono();
        if (now < next_sample + opt.interval)
            atomic_store(&s->heartbeat, now);

        /* Wake at least once a second, so the heartbeat stays fresh with long intervals. */
        double until = fmin(fmin(next_sample, next_discovery), now + 1.0);
        if (opt.gc_poll_interval > 0)
            until = fmin(until, next_poll);
        double wait = until - clock_mono();
        pthread_mutex_lock(&s->lock);
        /* Sleep unless there is census work that can be done now: a finished census, or a new
         * request or a due census with the worker idle. The worker's end and new requests
         * wake us; requests seen already wait for the worker or for a sample. */
        bool idle = s->job.state == JOB_IDLE;
        bool work = s->job.state == JOB_DONE ||
                    (idle && (s->requests_added != s->requests_seen || census_due(s, &opt)));
        if (wait > 0 && !s->stop && !s->reconfigured && !work) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + wait;
            ts.tv_sec = (time_t)t;
            ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
            pthread_cond_timedwait(&s->wake, &s->lock, &ts);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* A sampler with no thread yet. */
static int sampler_new(const SamplerOptions *opt, SnapshotHolder *holder, SamplerPublishFn cb,
                       void *ctx, Sampler **ret)
{
    Sampler *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int k;
    if ((k = optcopy_make(opt, &s->cur)) < 0 || (k = procinfo_new(&s->pi)) < 0 ||
        (k = pyelfcache_new(&s->cache)) < 0) {
        procinfo_free(s->pi);
        optcopy_free(&s->cur);
        free(s);
        return k;
    }
    s->holder = holder;
    s->publish_cb = cb;
    s->publish_ctx = ctx;
    atomic_init(&s->heartbeat, clock_mono());
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_cond_init(&s->census_done, &ca);
    pthread_cond_init(&s->worker_wake, &ca);
    pthread_condattr_destroy(&ca);
    *ret = s;
    return 0;
}

/* Frees what the threads (stopped and joined, or never started) leave. */
static void sampler_destroy(Sampler *s)
{
    census_free(s->job.census);
    s->snapcache = snapcache_free(s->snapcache);
    while (s->nw)
        unwatch(s, s->nw - 1);
    free(s->w);
    for (size_t i = 0; i < s->nignored; i++)
        free(s->ignored[i].exe);
    free(s->ignored);
    free(s->passed);
    free(s->gates);
    while (s->nanswers)
        answer_remove(s, &s->answers[0]);
    free(s->answers);
    free_regexes(s);
    optcopy_free(&s->cur);
    optcopy_free(&s->pending);
    pyelfcache_free(s->cache);
    procinfo_free(s->pi);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->census_done);
    pthread_cond_destroy(&s->worker_wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int sampler_start(const SamplerOptions *opt, SnapshotHolder *holder, SamplerPublishFn cb, void *ctx,
                  Sampler **ret)
{
    Sampler *s = NULL;
    int k = sampler_new(opt, holder, cb, ctx, &s);
    if (k < 0)
        return k;
    if ((k = pthread_create(&s->worker, NULL, census_worker, s)) != 0) {
        sampler_destroy(s);
        return -k;
    }
    if ((k = pthread_create(&s->thread, NULL, run, s)) != 0) {
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_signal(&s->worker_wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->worker, NULL);
        sampler_destroy(s);
        return -k;
    }
    *ret = s;
    return 0;
}

int sampler_once(const SamplerOptions *opt, SnapshotHolder *holder)
{
    Sampler *s = NULL;
    int k = sampler_new(opt, holder, NULL, NULL, &s);
    if (k < 0)
        return k;
    s->once = true;
    compile_regexes(s);
    SamplerOptions o = s->cur.opt;
    discover(s, &o);
    sample_all(s, &o);
    /* The census follows the daemon's schedule policy (census_match), with the on-demand
     * budget: someone at a terminal asked for it now, as ?fresh=1 does. This thread is the
     * tracer, as the census worker is in the daemon. */
    for (size_t i = 0; o.census_interval > 0 && i < s->nw; i++) {
        Watched *w = &s->w[i];
        if (!census_ready(w) || !census_scheduled_for(s, w))
            continue;
        w->censuses++;
        target_census_prepare(w->t);
        Census *c = NULL;
        char err[300] = "";
        k = target_census(w->t, o.census_nonblocking ? CENSUS_NONBLOCKING : CENSUS_FREEZE,
                          o.max_census_pause_on_demand, &c, err, sizeof(err));
        if (k < 0) {
            snprintf(w->census_error, sizeof(w->census_error), "%s", err);
            continue;
        }
        target_census_taken(w->t, c);
        w->census = c;
        trail_add(w, c, o.suspect_censuses);
    }
    freeze_collect();
    publish(s, &o);
    sampler_destroy(s);
    return 0;
}

int sampler_reconfigure(Sampler *s, const SamplerOptions *opt)
{
    /* Copied here, taken in by the thread at its next turn: the options it runs with stay
     * valid until then. */
    OptCopy c;
    int k = optcopy_make(opt, &c);
    if (k < 0)
        return k;
    pthread_mutex_lock(&s->lock);
    optcopy_free(&s->pending);
    s->pending = c;
    s->reconfigured = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

double sampler_heartbeat(Sampler *s)
{
    return atomic_load(&s->heartbeat);
}

void sampler_interrupt(Sampler *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_cond_signal(&s->worker_wake);
    pthread_cond_broadcast(&s->census_done);
    pthread_mutex_unlock(&s->lock);
}

void sampler_stop(Sampler *s)
{
    if (!s)
        return;
    sampler_interrupt(s);
    pthread_join(s->thread, NULL);
    /* The worker finishes the census it runs (never leaving the target stopped) first. */
    pthread_join(s->worker, NULL);
    sampler_destroy(s);
}
