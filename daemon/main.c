/* pymemd: reads memory and GC telemetry out of running CPython processes.
 *
 * main.c parses the command line and wires the modules together; it is the only place that
 * exits. */
#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <signal.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "config/config.h"
#include "http/http.h"
#include "pymemd/api.h"
#include "sampler/sampler.h"
#include "metrics/json.h"
#include "proc/procinfo.h"
#include "python/locate.h"
#include "python/refs.h"
#include "sampler/target.h"
#include "util/clock.h"
#include "util/log.h"

/* What the command line says: the flags become config keys, applied over the file's, so that
 * both are validated alike and a reload (SIGHUP) can re-apply them over a new file. */
typedef struct Cmdline {
    bool once;
    const char *referrers; /* --referrers TYPE (with --once) */
    const char *config;    /* --config FILE */
    struct {
        const char *key, *value;
    } flags[512];
    size_t nflags;
} Cmdline;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: pymemd [OPTIONS]\n"
            "Reads heap, pymalloc and garbage-collector telemetry out of running CPython\n"
            "processes, without touching them, and serves it over HTTP.\n"
            "\n"
            "Targets (with none given, every CPython process pymemd may read: --all):\n"
            "  -p, --pid PID            watch this process (repeatable)\n"
            "  -m, --match REGEX        watch processes whose name or command line matches\n"
            "                           (POSIX extended regex; repeatable)\n"
            "  -a, --all                watch every CPython process\n"
            "\n"
            "Running:\n"
            "      --once               sample the targets once, print the JSON document of\n"
            "                           GET /metrics to stdout and exit (1 when nothing could\n"
            "                           be read)\n"
            "      --referrers TYPE     with --once and --pid: print who holds the live\n"
            "                           instances of TYPE (the JSON of GET .../referrers)\n"
            "  -l, --listen HOST:PORT   HTTP address (default 127.0.0.1:9100; 9100 is also\n"
            "                           node_exporter's port: pick another if it runs here)\n"
            "  -i, --interval SECONDS   sampling interval (default 1)\n"
            "      --census-interval SECONDS  object census interval (default 60, 0 disables);\n"
            "                           on schedule only processes named by --pid/--match\n"
            "                           (or census_match), each stopped at most\n"
            "                           max_census_pause (0.05 s); ?fresh=1 censuses at most\n"
            "                           every census_min_interval (10 s) per process\n"
            "  -c, --config FILE        configuration file (flags override it; SIGHUP re-reads\n"
            "                           it); every key is described in config/pymemd.conf:\n"
            "                           census_match, max_census_pause[_on_demand],\n"
            "                           census_min_interval, pss_interval, pss_max_rss, ...\n"
            "      --log-level LEVEL    error, warn, info or debug (default info)\n"
            "  -h, --help               this text\n"
            "  -V, --version            print the version and the CPython builds verified live\n"
            "\n"
            "Reading another user's process needs root or CAP_SYS_PTRACE.\n");
}

/* Returns -1 to go on, or an exit code (0 after --help/--version, 2 on a usage error). */
static int parse_args(int argc, char **argv, Cmdline *cl)
{
    enum { OPT_ONCE = 256, OPT_CENSUS, OPT_LOGLEVEL, OPT_REFERRERS };
    static const struct option longopts[] = {
        {"pid", required_argument, NULL, 'p'},
        {"match", required_argument, NULL, 'm'},
        {"all", no_argument, NULL, 'a'},
        {"once", no_argument, NULL, OPT_ONCE},
        {"referrers", required_argument, NULL, OPT_REFERRERS},
        {"listen", required_argument, NULL, 'l'},
        {"interval", required_argument, NULL, 'i'},
        {"census-interval", required_argument, NULL, OPT_CENSUS},
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, OPT_LOGLEVEL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "p:m:al:i:c:hV", longopts, NULL)) != -1) {
        const char *key = NULL, *value = optarg;
        switch (c) {
        case 'p':
            key = "pid";
            break;
        case 'm':
            key = "match";
            break;
        case 'a':
            key = "all", value = "true";
            break;
        case 'l':
            key = "listen";
            break;
        case 'i':
            key = "interval";
            break;
        case OPT_CENSUS:
            key = "census_interval";
            break;
        case OPT_LOGLEVEL:
            key = "log_level";
            break;
        case OPT_ONCE:
            cl->once = true;
            break;
        case OPT_REFERRERS:
            cl->referrers = optarg;
            break;
        case 'c':
            cl->config = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("pymemd %s\n", PYMEMD_VERSION);
            /* What the integration matrix verified live (python/verified.c). */
            printf("verified live against CPython:\n");
            for (size_t i = 0; i < pylayout_nverified; i++)
                printf("  %s\n", pylayout_verified[i]);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (!key)
            continue;
        if (cl->nflags == ARRAY_SIZE(cl->flags)) {
            fprintf(stderr, "pymemd: too many options\n");
            return 2;
        }
        cl->flags[cl->nflags].key = key;
        cl->flags[cl->nflags++].value = value;
    }
    if (optind < argc) {
        fprintf(stderr, "pymemd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return -1;
}

/* Builds the configuration: defaults, then the file, then the flags. On failure *ret is
 * untouched and err says why. */
static int build_config(const Cmdline *cl, Config *ret, char *err, size_t errlen)
{
    Config c;
    config_init(&c);
    int k = 0;
    if (cl->config)
        k = config_load_file(&c, cl->config, err, errlen);
    for (size_t i = 0; k >= 0 && i < cl->nflags; i++) {
        char msg[400];
        k = config_set(&c, cl->flags[i].key, cl->flags[i].value, msg, sizeof(msg));
        if (k < 0) {
            /* config_set's message starts with the key's name: name the flag instead. */
            const char *key = cl->flags[i].key, *m = msg;
            size_t kl = strlen(key);
            if (strncmp(m, key, kl) == 0 && strncmp(m + kl, ": ", 2) == 0)
                m += kl + 2;
            char flag[32];
            snprintf(flag, sizeof(flag), "%s", key);
            for (char *f = flag; *f; f++)
                *f = *f == '_' ? '-' : *f;
            snprintf(err, errlen, "--%s: %s", flag, m);
        }
    }
    if (k < 0) {
        config_done(&c);
        return k;
    }
    if (c.npids == 0 && c.nmatches == 0)
        c.all = true;
    *ret = c;
    return 0;
}

/* --once --referrers: who holds the instances of a type in each --pid, one JSON line each. */
static int run_referrers(const Config *o, const char *type)
{
    _cleanup_(procinfo_freep) ProcInfo *pi = NULL;
    _cleanup_(pyelfcache_freep) PyElfCache *cache = NULL;
    int k = procinfo_new(&pi), bad = 0;
    if (k >= 0)
        k = pyelfcache_new(&cache);
    if (k < 0) {
        fprintf(stderr, "pymemd: cannot initialise: %s\n", strerror(-k));
        return 1;
    }
    for (size_t i = 0; i < o->npids; i++) {
        _cleanup_(target_freep) Target *t = NULL;
        if (target_new(o->pids[i], &t) < 0) {
            fprintf(stderr, "pymemd: process %d: cannot be watched\n", o->pids[i]);
            bad++;
            continue;
        }
        TargetSample s;
        target_sample(t, cache, pi, true, &s);
        char err[512] = "";
        Refs *x = NULL;
        if (s.status != TARGET_OK)
            snprintf(err, sizeof(err), "%s", s.error);
        else if ((k = target_census_prepare(t)) < 0)
            snprintf(err, sizeof(err), "cannot prepare a census: %s", strerror(-k));
        /* Asked for by a person, as ?fresh=1 is: the on-demand pause budget. */
        else if (target_referrers(t, type,
                                  o->census_nonblocking ? CENSUS_NONBLOCKING : CENSUS_FREEZE,
                                  o->max_census_pause_on_demand, &x, err, sizeof(err)) >= 0) {
            char *doc = refs_json(x);
            if (doc)
                printf("%s\n", doc);
            free(doc);
        }
        if (!x) {
            fprintf(stderr, "pymemd: process %d: %s\n", o->pids[i], err);
            bad++;
        }
        refs_free(x);
        targetsample_done(&s);
    }
    return bad ? 1 : 0;
}

static SamplerOptions sampler_options(const Config *c, double started_at)
{
    return (SamplerOptions){
        .pids = c->pids,
        .npids = c->npids,
        .matches = (const char *const *)c->matches,
        .nmatches = c->nmatches,
        .all = c->all,
        .interval = c->interval,
        .gc_poll_interval = c->gc_poll_interval,
        .discovery_interval = c->discovery_interval,
        .census_interval = c->census_interval,
        .max_census_pause = c->max_census_pause,
        .max_census_pause_on_demand = c->max_census_pause_on_demand,
        .census_min_interval = c->census_min_interval,
        .census_match = c->census_match,
        .pss_interval = c->pss_interval,
        .pss_max_rss = c->pss_max_rss,
        .census_nonblocking = c->census_nonblocking,
        .top_types = c->top_types,
        .version = PYMEMD_VERSION,
        .started_at = started_at,
    };
}

/* Samples every selected process once, through the daemon's own pipeline (sampler, snapshot),
 * and prints the snapshot's JSON document. */
static int run_once(const Config *o, double started_at)
{
    census_set_max_memory(o->census_max_memory);
    SnapshotHolder holder;
    holder_init(&holder);
    SamplerOptions so = sampler_options(o, started_at);
    int k = sampler_once(&so, &holder);
    Snapshot *snap = holder_get(&holder);
    holder_done(&holder);
    if (k < 0 || !snap) {
        fprintf(stderr, "pymemd: cannot sample: %s\n", strerror(k < 0 ? -k : ENOMEM));
        return 1;
    }
    SnapBody doc = snapshot_body(snap, SNAP_JSON);
    size_t n = snapshot_nprocs(snap), ok = 0;
    for (size_t i = 0; i < n; i++) {
        SnapProc p;
        ok += snapshot_proc(snap, i, &p) && p.readable;
    }
    fwrite(doc.data, 1, doc.len, stdout);
    putchar('\n');
    snapshot_unref(snap);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "pymemd: cannot write the document: %s\n", strerror(errno));
        return 1;
    }
    if (ok == 0) {
        fprintf(stderr, "pymemd: no target could be read%s\n",
                n == 0 ? " (no CPython process matched)" : "; see \"error\" of each process");
        return 1;
    }
    return 0;
}

/* GET .../objects?fresh=1: the sampler thread takes it (it owns the targets and their ptrace
 * state); a census (or a referrers walk) may stop a target for up to
 * max_census_pause_on_demand, so the wait allows that and the walk. */
static int referrers_now(void *ctx, pid_t pid, const char *type, double *ret_retry_after,
                         char **ret_json, char *err, size_t errlen)
{
    return sampler_referrers_now(ctx, pid, type, 30.0, ret_retry_after, ret_json, err, errlen);
}

static int census_now(void *ctx, pid_t pid, double *ret_retry_after, char *err, size_t errlen)
{
    return sampler_census_now(ctx, pid, 30.0, ret_retry_after, err, errlen);
}

/* SIGHUP: reads the configuration again. A bad file keeps the running configuration. */
static void reload(const Cmdline *cl, Config *cur, Sampler *sampler, double started_at)
{
    Config c;
    char err[512];
    sd_notify(0, "RELOADING=1");
    if (build_config(cl, &c, err, sizeof(err)) < 0) {
        log_error("reload: %s; keeping the running configuration", err);
    } else {
        if (strcmp(c.listen, cur->listen) != 0)
            log_warn("reload: a new listen address (%s) takes effect at the next restart",
                     c.listen);
        log_set_level((LogLevel)c.log_level);
        census_set_max_memory(c.census_max_memory);
        SamplerOptions so = sampler_options(&c, started_at);
        sampler_reconfigure(sampler, &so);
        snprintf(c.listen, sizeof(c.listen), "%s", cur->listen);
        config_done(cur);
        *cur = c;
        log_info("reload: configuration applied");
    }
    sd_notify(0, "READY=1");
}

/* Serves until SIGTERM or SIGINT. The signals are blocked in every thread and taken here with
 * sigtimedwait, which also paces the systemd watchdog. */
static int run_daemon(const Cmdline *cl, Config *cfg, double started_at)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    SnapshotHolder holder;
    holder_init(&holder);
    census_set_max_memory(cfg->census_max_memory);
    SamplerOptions so = sampler_options(cfg, started_at);
    Sampler *sampler = NULL;
    int k = sampler_start(&so, &holder, NULL, NULL, &sampler);
    if (k < 0) {
        log_error("cannot start the sampler: %s", strerror(-k));
        holder_done(&holder);
        return 1;
    }
    HttpServer *http = NULL;
    char err[512];
    k = http_start(cfg->listen, &holder, census_now, sampler, &http, err, sizeof(err));
    if (k < 0) {
        log_error("%s", err);
        sampler_stop(sampler);
        holder_done(&holder);
        return 1;
    }
    http_set_referrers(http, referrers_now, sampler);
    log_info("listening on http://%s/ ; watching %s every %gs", cfg->listen,
             cfg->all ? "every CPython process" : "the selected processes", cfg->interval);

    uint64_t wd_usec = 0;
    bool wd = sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0;
    double tick = wd ? (double)wd_usec / 2e6 : 1.0;
    /* Ready (READY=1, and /healthz 200) once the first snapshot is published, so that no
     * scrape after readiness gets "the first sample is not taken yet". Until then the loop
     * below looks every 10 ms. */
    bool ready = false, hup_pending = false;
    double last_wd = 0;
    for (;;) {
        if (!ready) {
            Snapshot *first = holder_get(&holder);
            if (first) {
                snapshot_unref(first);
                ready = true;
                sd_notify(0, "READY=1\nSTATUS=serving");
                if (hup_pending)
                    reload(cl, cfg, sampler, started_at);
            }
        }
        double wait = ready ? tick : MIN(tick, 0.01);
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("signal %d: stopping", sig);
            break;
        }
        if (sig == SIGHUP && ready) {
            reload(cl, cfg, sampler, started_at);
            continue;
        }
        if (sig == SIGHUP) {
            /* Not ready yet: RELOADING=1 ... READY=1 now would announce readiness early. */
            hup_pending = true;
            continue;
        }
        /* The watchdog is fed only while the sampler thread keeps its schedule. */
        double stale = MAX(10.0, 3 * cfg->interval), now = clock_mono();
        if (wd && now - last_wd >= tick && now - sampler_heartbeat(sampler) < stale) {
            sd_notify(0, "WATCHDOG=1");
            last_wd = now;
        }
    }
    sd_notify(0, "STOPPING=1");
    http_stop(http);
    sampler_stop(sampler);
    holder_done(&holder);
    return 0;
}

int main(int argc, char **argv)
{
    static Cmdline cl;
    double started_at = clock_real();
    int r = parse_args(argc, argv, &cl);
    if (r >= 0)
        return r;
    Config cfg;
    char err[512];
    if (build_config(&cl, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "pymemd: %s\n", err);
        return 2;
    }
    log_set_level((LogLevel)cfg.log_level);
    if (cl.referrers && (!cl.once || cfg.npids == 0)) {
        fprintf(stderr, "pymemd: --referrers needs --once and at least one --pid\n");
        return 2;
    }
    r = cl.referrers ? run_referrers(&cfg, cl.referrers)
        : cl.once    ? run_once(&cfg, started_at)
                     : run_daemon(&cl, &cfg, started_at);
    config_done(&cfg);
    return r;
}
