#include "sampler/sampler.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"

/* Back-off for a failing target: the first retry after one interval, doubling up to this. */
#define BACKOFF_MAX 60.0

typedef struct Watched {
    Target *t;
    bool explicit_pid; /* named with --pid: reported even when gone or not Python */
    TargetSample last; /* the latest sample, kept for the snapshot while backing off */
    bool have_last;
    double retry_at; /* monotonic; 0: sample every interval */
    double backoff;
    Census *census, *prev_census; /* the latest two, references */
    char census_error[300];
    double next_census;         /* monotonic */
    TargetStatus logged_status; /* to log transitions only */
    bool logged;
    LogRateLimit rl;
} Watched;

/* A process found not to be Python, remembered so discovery does not inspect it again. */
typedef struct Ignored {
    pid_t pid;
    uint64_t start_ticks;
} Ignored;

/* A census asked for over HTTP (?fresh=1), served by the sampler thread. */
typedef struct CensusRequest {
    pid_t pid;
    bool done;
    int result;
    char err[300];
    const char *referrers; /* GET .../referrers?type=T: T; NULL for a census */
    char *json;            /* its answer, for the asker to free */
    struct CensusRequest *next;
} CensusRequest;

struct Sampler {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t census_done; /* signalled when a request is done */
    CensusRequest *requests;    /* guarded by lock */
    bool stop;
    SamplerOptions opt; /* guarded by lock */
    pid_t *pids;        /* the copies opt points into */
    char **match_src;
    bool reconfigured; /* guarded by lock */
    SnapshotHolder *holder;
    _Atomic double heartbeat;

    /* Owned by the thread. */
    regex_t *re; /* compiled from opt.matches when the thread takes new options */
    size_t nre;
    ProcInfo *pi;
    PyElfCache *cache;
    Watched *w;
    size_t nw;
    Ignored *ignored;
    size_t nignored;
};

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

static void free_regexes(Sampler *s)
{
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
    free_regexes(s);
    s->re = calloc(s->opt.nmatches ? s->opt.nmatches : 1, sizeof(*s->re));
    if (!s->re)
        return;
    for (size_t i = 0; i < s->opt.nmatches; i++) {
        if (regcomp(&s->re[s->nre], s->opt.matches[i], REG_EXTENDED | REG_NOSUB) == 0)
            s->nre++;
        else
            log_warn("match \"%s\" does not compile; ignored", s->opt.matches[i]);
    }
}

static Watched *find_watched(Sampler *s, pid_t pid)
{
    for (size_t i = 0; i < s->nw; i++)
        if (target_pid(s->w[i].t) == pid)
            return &s->w[i];
    return NULL;
}

static bool is_ignored(const Sampler *s, pid_t pid, uint64_t start)
{
    for (size_t i = 0; i < s->nignored; i++)
        if (s->ignored[i].pid == pid && s->ignored[i].start_ticks == start)
            return true;
    return false;
}

static void ignore(Sampler *s, pid_t pid, uint64_t start)
{
    Ignored *n = realloc(s->ignored, (s->nignored + 1) * sizeof(*n));
    if (!n)
        return;
    s->ignored = n;
    s->ignored[s->nignored++] = (Ignored){pid, start};
}

static int watch(Sampler *s, pid_t pid, bool explicit_pid)
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
    s->nw++;
    return 0;
}

static void unwatch(Sampler *s, size_t i)
{
    Watched *w = &s->w[i];
    census_free(w->census);
    census_free(w->prev_census);
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
            watch(s, opt->pids[i], true);
    /* Explicit targets no longer named (after a reload) go. */
    for (size_t i = 0; i < s->nw;) {
        bool named = false;
        for (size_t j = 0; j < opt->npids && !named; j++)
            named = opt->pids[j] == target_pid(s->w[i].t);
        if (s->w[i].explicit_pid && !named)
            unwatch(s, i);
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
    }
    s->nignored = keep;

    pid_t self = getpid();
    for (size_t i = 0; i < n; i++) {
        if (pids[i] == self || find_watched(s, pids[i]))
            continue;
        ProcIdentity id;
        if (procinfo_identity(s->pi, pids[i], &id) < 0)
            continue;
        /* Kernel threads have neither a command line nor an executable. */
        bool take = !is_ignored(s, pids[i], id.start_ticks) &&
                    sampler_selects(opt->all, s->re, s->nre, &id) && (id.cmdline || id.exe);
        procidentity_done(&id);
        if (take)
            watch(s, pids[i], false);
    }
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

/* Takes a census of one watched target and keeps it with the previous one. */
static int census_one(Watched *w, const SamplerOptions *opt, char *err, size_t errlen)
{
    Census *c = NULL;
    int k = target_census(w->t, opt->census_nonblocking ? CENSUS_NONBLOCKING : CENSUS_FREEZE,
                          opt->max_census_pause, &c, err, errlen);
    if (k < 0) {
        snprintf(w->census_error, sizeof(w->census_error), "%s", err);
        return k;
    }
    w->census_error[0] = 0;
    census_free(w->prev_census);
    w->prev_census = w->census;
    w->census = c;
    return 0;
}

/* Samples every target that is due; drops the gone and the non-Python ones found by discovery. */
static void sample_all(Sampler *s, const SamplerOptions *opt)
{
    double now = clock_mono();
    for (size_t i = 0; i < s->nw;) {
        Watched *w = &s->w[i];
        if (w->retry_at > now && w->have_last) {
            i++;
            continue;
        }
        TargetSample t;
        target_sample(w->t, s->cache, s->pi, false, &t);
        bool not_python = t.status != TARGET_GONE && !targetsample_maybe_python(&t);
        if (!w->explicit_pid && (t.status == TARGET_GONE || not_python)) {
            if (not_python && t.have_identity)
                ignore(s, t.pid, t.id.start_ticks);
            else if (t.status == TARGET_GONE && w->logged)
                log_info("pid %d: exited; no longer watched", t.pid);
            targetsample_done(&t);
            unwatch(s, i);
            continue;
        }
        if (w->explicit_pid && t.status == TARGET_GONE && t.have_identity &&
            target_start_ticks(w->t) != t.id.start_ticks) {
            /* The pid now names another process: start over with a fresh target for it. */
            pid_t pid = t.pid;
            targetsample_done(&t);
            unwatch(s, i);
            watch(s, pid, true);
            continue;
        }
        log_transition(w, &t);
        if (t.status == TARGET_OK) {
            w->backoff = 0;
            w->retry_at = 0;
            if (opt->census_interval > 0 && now >= w->next_census) {
                char err[300];
                if (census_one(w, opt, err, sizeof(err)) < 0 &&
                    log_ratelimit_ok(&w->rl, clock_mono(), 60.0, 5))
                    log_warn("pid %d: census: %s", t.pid, err);
                w->next_census = now + opt->census_interval;
            }
        } else {
            w->backoff = w->backoff ? fmin(w->backoff * 2, BACKOFF_MAX) : opt->interval;
            w->retry_at = now + w->backoff;
        }
        if (w->have_last)
            targetsample_done(&w->last);
        w->last = t;
        w->have_last = true;
        i++;
    }
}

/* Copies a sample for the snapshot, so the Watched keeps its own. */
static int copy_sample(const Watched *w, TargetSample *out)
{
    const TargetSample *in = &w->last;
    *out = *in;
    out->census = census_ref(w->census);
    out->prev_census = census_ref(w->prev_census);
    snprintf(out->census_error, sizeof(out->census_error), "%s", w->census_error);
    if (!in->have_identity)
        return 0;
    out->id.cmdline = in->id.cmdline ? strdup(in->id.cmdline) : NULL;
    out->id.exe = in->id.exe ? strdup(in->id.exe) : NULL;
    if ((in->id.cmdline && !out->id.cmdline) || (in->id.exe && !out->id.exe)) {
        free(out->id.cmdline);
        free(out->id.exe);
        out->have_identity = false;
        return -ENOMEM;
    }
    return 0;
}

static int cmp_pid(const void *a, const void *b)
{
    const TargetSample *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

static void publish(Sampler *s, const SamplerOptions *opt)
{
    TargetSample *v = calloc(s->nw ? s->nw : 1, sizeof(*v));
    if (!v)
        return;
    size_t n = 0;
    for (size_t i = 0; i < s->nw; i++)
        if (s->w[i].have_last && copy_sample(&s->w[i], &v[n]) >= 0)
            n++;
    qsort(v, n, sizeof(*v), cmp_pid);
    JsonDaemonInfo info = {opt->version, opt->started_at, opt->interval, opt->top_types};
    Snapshot *snap = snapshot_new(&info, v, n);
    if (!snap) {
        log_error("out of memory building a snapshot; serving the previous one");
        return;
    }
    snap->taken_at = clock_real();
    holder_swap(s->holder, snap);
    /* Rendering builds and frees a JSON tree per target each interval, and the previous
     * snapshot's bodies go: hand the freed memory back (100 targets: 10.5 MiB of RSS instead of
     * 12.3). */
    malloc_trim(0);
}

/* The oldest census request not served yet, or NULL. Called with the lock held. */
static CensusRequest *next_request(const Sampler *s)
{
    for (CensusRequest *r = s->requests; r; r = r->next)
        if (!r->done)
            return r;
    return NULL;
}

/* Takes the censuses asked for since the last look, one per request, then publishes. */
static void serve_requests(Sampler *s, const SamplerOptions *opt)
{
    pthread_mutex_lock(&s->lock);
    CensusRequest *todo = next_request(s);
    pthread_mutex_unlock(&s->lock);
    if (!todo)
        return;
    bool any = false;
    for (;;) {
        Watched *w = find_watched(s, todo->pid);
        int k;
        char err[300] = "";
        if (!w || !w->have_last || w->last.status != TARGET_OK) {
            k = -ENOENT;
            snprintf(err, sizeof(err), "process %d is not a watched, readable Python process",
                     todo->pid);
        } else if (todo->referrers) {
            Refs *x = NULL;
            k = target_referrers(w->t, todo->referrers,
                                 opt->census_nonblocking ? CENSUS_NONBLOCKING : CENSUS_FREEZE,
                                 opt->max_census_pause, &x, err, sizeof(err));
            if (k >= 0 && !(todo->json = refs_json(x)))
                k = -ENOMEM;
            refs_free(x);
        } else {
            k = census_one(w, opt, err, sizeof(err));
            any = any || k >= 0;
        }
        if (any)
            publish(s, opt);
        pthread_mutex_lock(&s->lock);
        todo->result = k;
        snprintf(todo->err, sizeof(todo->err), "%s", err);
        todo->done = true;
        pthread_cond_broadcast(&s->census_done);
        todo = next_request(s);
        pthread_mutex_unlock(&s->lock);
        if (!todo)
            return;
    }
}

int sampler_census_now(Sampler *s, pid_t pid, double timeout, char *err, size_t errlen)
{
    CensusRequest req = {.pid = pid};
    pthread_mutex_lock(&s->lock);
    req.next = s->requests;
    s->requests = &req;
    pthread_cond_signal(&s->wake);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + timeout;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    int k = 0;
    while (!req.done && k != ETIMEDOUT && !s->stop)
        k = pthread_cond_timedwait(&s->census_done, &s->lock, &ts);
    /* Unlink the request: it lives on this stack frame. */
    for (CensusRequest **p = &s->requests; *p; p = &(*p)->next)
        if (*p == &req) {
            *p = req.next;
            break;
        }
    bool done = req.done;
    pthread_mutex_unlock(&s->lock);
    if (!done) {
        snprintf(err, errlen, "the census did not finish within %gs", timeout);
        return -ETIMEDOUT;
    }
    snprintf(err, errlen, "%s", req.err);
    return req.result;
}

int sampler_referrers_now(Sampler *s, pid_t pid, const char *type, double timeout, char **ret_json,
                          char *err, size_t errlen)
{
    CensusRequest req = {.pid = pid, .referrers = type};
    pthread_mutex_lock(&s->lock);
    req.next = s->requests;
    s->requests = &req;
    pthread_cond_signal(&s->wake);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + timeout;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    int k = 0;
    while (!req.done && k != ETIMEDOUT && !s->stop)
        k = pthread_cond_timedwait(&s->census_done, &s->lock, &ts);
    for (CensusRequest **p = &s->requests; *p; p = &(*p)->next)
        if (*p == &req) {
            *p = req.next;
            break;
        }
    bool done = req.done;
    pthread_mutex_unlock(&s->lock);
    if (!done) {
        snprintf(err, errlen, "the referrers did not finish within %gs", timeout);
        return -ETIMEDOUT;
    }
    snprintf(err, errlen, "%s", req.err);
    if (req.result >= 0)
        *ret_json = req.json;
    else
        free(req.json);
    return req.result;
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
            compile_regexes(s);
            next_discovery = next_sample = clock_mono();
        }
        SamplerOptions opt = s->opt;
        pthread_mutex_unlock(&s->lock);

        double now = clock_mono();
        if (now >= next_discovery) {
            discover(s, &opt);
            next_discovery = now + opt.discovery_interval;
        }
        if (now >= next_sample) {
            sample_all(s, &opt);
            publish(s, &opt);
            /* Keep the schedule: a slow sample does not shift every later one. */
            next_sample += opt.interval;
            if (next_sample < now)
                next_sample = now + opt.interval;
        }
        if (opt.gc_poll_interval > 0 && now >= next_poll) {
            for (size_t i = 0; i < s->nw; i++)
                if (s->w[i].have_last && s->w[i].last.status == TARGET_OK)
                    target_poll_gc(s->w[i].t);
            next_poll = now + opt.gc_poll_interval;
        }
        serve_requests(s, &opt);
        atomic_store(&s->heartbeat, clock_mono());

        double until = fmin(next_sample, next_discovery);
        if (opt.gc_poll_interval > 0)
            until = fmin(until, next_poll);
        double wait = until - clock_mono();
        pthread_mutex_lock(&s->lock);
        if (wait > 0 && !s->stop && !s->reconfigured && !next_request(s)) {
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

static void free_copies(Sampler *s)
{
    for (size_t i = 0; s->match_src && i < s->opt.nmatches; i++)
        free(s->match_src[i]);
    free(s->match_src);
    free(s->pids);
    s->match_src = NULL;
    s->pids = NULL;
}

/* Deep-copies the options; the previous copies go only once the new ones exist. */
static int set_options(Sampler *s, const SamplerOptions *opt)
{
    pid_t *pids = calloc(opt->npids ? opt->npids : 1, sizeof(*pids));
    char **src = calloc(opt->nmatches ? opt->nmatches : 1, sizeof(*src));
    bool ok = pids && src;
    for (size_t i = 0; ok && i < opt->nmatches; i++)
        ok = (src[i] = strdup(opt->matches[i])) != NULL;
    if (!ok) {
        for (size_t i = 0; src && i < opt->nmatches; i++)
            free(src[i]);
        free(src);
        free(pids);
        return -ENOMEM;
    }
    if (opt->npids)
        memcpy(pids, opt->pids, opt->npids * sizeof(*pids));
    free_copies(s);
    s->pids = pids;
    s->match_src = src;
    s->opt = *opt;
    s->opt.pids = pids;
    s->opt.matches = (const char *const *)src;
    return 0;
}

int sampler_start(const SamplerOptions *opt, SnapshotHolder *holder, Sampler **ret)
{
    Sampler *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int k;
    if ((k = set_options(s, opt)) < 0 || (k = procinfo_new(&s->pi)) < 0 ||
        (k = pyelfcache_new(&s->cache)) < 0) {
        procinfo_free(s->pi);
        free_copies(s);
        free(s);
        return k;
    }
    s->holder = holder;
    atomic_init(&s->heartbeat, clock_mono());
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_cond_init(&s->census_done, &ca);
    pthread_condattr_destroy(&ca);
    if ((k = pthread_create(&s->thread, NULL, run, s)) != 0) {
        pyelfcache_free(s->cache);
        procinfo_free(s->pi);
        free_copies(s);
        free(s);
        return -k;
    }
    *ret = s;
    return 0;
}

int sampler_reconfigure(Sampler *s, const SamplerOptions *opt)
{
    pthread_mutex_lock(&s->lock);
    int k = set_options(s, opt);
    if (k >= 0)
        s->reconfigured = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return k;
}

double sampler_heartbeat(Sampler *s)
{
    return atomic_load(&s->heartbeat);
}

void sampler_stop(Sampler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_cond_broadcast(&s->census_done);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    while (s->nw)
        unwatch(s, s->nw - 1);
    free(s->w);
    free(s->ignored);
    free_regexes(s);
    free_copies(s);
    pyelfcache_free(s->cache);
    procinfo_free(s->pi);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->census_done);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
