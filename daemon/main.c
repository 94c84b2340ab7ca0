/* pymemd: reads memory and GC telemetry out of running CPython processes.
 *
 * main.c parses the command line and wires the modules together; it is the only place that
 * exits. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <getopt.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <signal.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "config/config.h"
#include "elf/debuginfo.h"
#include "http/http.h"
#include "http/webconfig.h"
#include "priv/listener.h"
#include "priv/privsep.h"
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
            "      --history SECONDS    samples kept per process for .../history (default\n"
            "                           3600, 0 keeps none; all together at most\n"
            "                           history_max_memory, 3 MiB)\n"
            "  -c, --config FILE        configuration file (flags override it; SIGHUP re-reads\n"
            "                           it); every key is described in config/pymemd.conf:\n"
            "                           census_match, max_census_pause[_on_demand],\n"
            "                           census_min_interval, pss_interval, pss_max_rss,\n"
            "                           history_max_memory, suspect_censuses, ...\n"
            "      --log-level LEVEL    error, warn, info or debug (default info)\n"
            "      --web.config.file FILE  TLS, client certificates, basic auth and headers,\n"
            "                           in Prometheus exporter-toolkit's web config format\n"
            "                           (config/web-config.yml); with TLS only https:// is\n"
            "                           served; SIGHUP re-reads users and headers\n"
            "      --cmdline MODE       what command lines show: redacted (default: values of\n"
            "                           password/secret/token/key/auth... flags and URL\n"
            "                           passwords become ***), full, or hidden (null)\n"
            "      --group TEMPLATE     the service group of each target (JSON \"group\", label\n"
            "                           of pymemd_target_info), from the fields {comm},\n"
            "                           {exe_base}, {top_python_ancestor}, {unit},\n"
            "                           {container_id}, {pod_uid} (default\n"
            "                           {top_python_ancestor}: a gunicorn master and its\n"
            "                           workers form one group)\n"
            "  -h, --help               this text\n"
            "  -V, --version            print the version and the CPython builds verified live\n"
            "\n"
            "Reading another user's process needs root or CAP_SYS_PTRACE. HTTP is served by\n"
            "a child process holding no privilege (pymemd --privsep-listener, started by\n"
            "pymemd itself; as the user pymemd, or nobody, when started as root).\n");
}

/* Returns -1 to go on, or an exit code (0 after --help/--version, 2 on a usage error). */
static int parse_args(int argc, char **argv, Cmdline *cl)
{
    enum {
        OPT_ONCE = 256,
        OPT_CENSUS,
        OPT_LOGLEVEL,
        OPT_REFERRERS,
        OPT_WEBCONFIG,
        OPT_CMDLINE,
        OPT_GROUP,
        OPT_HISTORY,
    };
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
        /* exporter-toolkit's spelling, and ours */
        {"web.config.file", required_argument, NULL, OPT_WEBCONFIG},
        {"web-config-file", required_argument, NULL, OPT_WEBCONFIG},
        {"cmdline", required_argument, NULL, OPT_CMDLINE},
        {"group", required_argument, NULL, OPT_GROUP},
        {"history", required_argument, NULL, OPT_HISTORY},
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
        case OPT_WEBCONFIG:
            key = "web_config_file";
            break;
        case OPT_CMDLINE:
            key = "cmdline";
            break;
        case OPT_GROUP:
            key = "group";
            break;
        case OPT_HISTORY:
            key = "history";
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
        char err[sizeof(s.error)] = "";
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
        .group = c->group,
        .pss_interval = c->pss_interval,
        .pss_max_rss = c->pss_max_rss,
        .census_nonblocking = c->census_nonblocking,
        .top_types = c->top_types,
        .history_seconds = c->history,
        .history_max_memory = c->history_max_memory,
        .suspect_censuses = c->suspect_censuses,
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

/* Loads the web config c names (none: an empty one, which changes nothing). */
static int load_web(const Config *c, WebConfig *ret, char *err, size_t errlen)
{
    if (!c->web_config_file[0]) {
        *ret = (WebConfig){0};
        return 0;
    }
    return webconfig_load(c->web_config_file, ret, err, errlen);
}

/* Hands the listener the text of the web config file it serves with (it may not be able to
 * read the file itself), for its new users and headers. */
static void web_to_listener(Privsep *ps, const char *path)
{
    char *text = NULL, err[1024] = "";
    size_t len = 0;
    int k = webconfig_read(path, &text, &len, err, sizeof(err));
    if (k >= 0)
        k = privsep_web_reload(ps, text, len);
    if (k < 0)
        log_error("reload: the HTTP listener keeps its web config: %s",
                  err[0] && !text ? err : strerror(-k));
    free(text);
}

/* SIGHUP: reads the configuration again. A bad file (the config or the web config) keeps the
 * running configuration. The web config is checked here; the listener, told to, reads it again
 * itself (its users and headers change at once; TLS and a new file name at the next restart). */
static void reload(const Cmdline *cl, Config *cur, WebConfig *web, Sampler *sampler, Privsep *ps,
                   double started_at)
{
    Config c;
    WebConfig w;
    char err[1024];
    sd_notify(0, "RELOADING=1");
    if (build_config(cl, &c, err, sizeof(err)) < 0) {
        log_error("reload: %s; keeping the running configuration", err);
    } else if (load_web(&c, &w, err, sizeof(err)) < 0) {
        log_error("reload: %s; keeping the running configuration", err);
        config_done(&c);
    } else {
        if (strcmp(c.web_config_file, cur->web_config_file) != 0)
            log_warn("reload: a new web config file (%s) takes effect at the next restart",
                     c.web_config_file[0] ? c.web_config_file : "none");
        else if (!webconfig_tls_equal(&w, web))
            log_warn("reload: the TLS settings of the web config take effect at the next "
                     "restart; its users and headers are applied now");
        if (strcmp(c.web_config_file, cur->web_config_file) == 0 && c.web_config_file[0])
            web_to_listener(ps, c.web_config_file);
        webconfig_done(web);
        *web = w;
        if (strcmp(c.listen, cur->listen) != 0)
            log_warn("reload: a new listen address (%s) takes effect at the next restart",
                     c.listen);
        log_set_level((LogLevel)c.log_level);
        privsep_log_level(ps, (LogLevel)c.log_level);
        json_set_cmdline_mode((CmdlineMode)c.cmdline);
        census_set_max_memory(c.census_max_memory);
        SamplerOptions so = sampler_options(&c, started_at);
        sampler_reconfigure(sampler, &so);
        snprintf(c.listen, sizeof(c.listen), "%s", cur->listen);
        snprintf(c.web_config_file, sizeof(c.web_config_file), "%s", cur->web_config_file);
        config_done(cur);
        *cur = c;
        log_info("reload: configuration applied");
    }
    sd_notify(0, "READY=1");
}

/* Waits up to `seconds` for the listener to exit (it does once the channel ends), then kills
 * it. Returns its wait status. */
static int reap_listener(pid_t pid, double seconds)
{
    int st = 0;
    for (double end = clock_mono() + seconds; clock_mono() < end;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return st;
        usleep(10000);
    }
    log_info("the HTTP listener (pid %d) did not exit within %gs; killing it", pid, seconds);
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

static void describe_status(int st, char *buf, size_t len)
{
    if (WIFSIGNALED(st))
        snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
}

/* Serves until SIGTERM or SIGINT, as two processes (priv/privsep.h): this one, which keeps the
 * capabilities, samples and stays systemd's main pid; and the HTTP listener, a new image with
 * none. The signals are blocked in every thread and taken here with sigtimedwait, which also
 * paces the systemd watchdog. Either side ending ends both: the listener exits when the channel
 * does, or by PR_SET_PDEATHSIG; a listener that dies makes this process stop (letting go of
 * any target a census holds) and exit 1, so that Restart=on-failure brings both back. */
static int run_daemon(const Cmdline *cl, Config *cfg, WebConfig *web, double started_at,
                      const char *argv0)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Bound here, with whatever privilege binding needs; served by the listener. */
    char err[512];
    int lfd = http_listen(cfg->listen, err, sizeof(err));
    if (lfd < 0) {
        log_error("%s", err);
        return 1;
    }
    pid_t lpid = 0;
    int sock = -1;
    /* The listener is told only what it needs, as options: it does not read the config file,
     * which may be readable only with the daemon's privileges. */
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    const char *largs[] = {"--listen",          cfg->listen,
                           "--log-level",       levels[cfg->log_level & 3],
                           "--web.config.file", cfg->web_config_file};
    int nlargs = cfg->web_config_file[0] ? (int)ARRAY_SIZE(largs) : 4;
    int k = privsep_spawn(lfd, argv0, largs, nlargs, &lpid, &sock);
    close(lfd);
    if (k < 0) {
        log_error("cannot start the HTTP listener: %s", strerror(-k));
        return 1;
    }
    Privsep *ps = NULL;
    if ((k = privsep_start(sock, &ps)) < 0) {
        log_error("cannot serve the HTTP listener: %s", strerror(-k));
        kill(lpid, SIGKILL);
        reap_listener(lpid, 0);
        return 1;
    }

    /* Snapshots go to the listener only: this process serves nothing from them. */
    census_set_max_memory(cfg->census_max_memory);
    /* A debuginfod server slow to answer must not hold up sampling (--once waits for it). */
    debuginfo_set_background(true);
    SamplerOptions so = sampler_options(cfg, started_at);
    Sampler *sampler = NULL;
    k = sampler_start(&so, NULL, privsep_publish, ps, &sampler);
    if (k < 0) {
        log_error("cannot start the sampler: %s", strerror(-k));
        privsep_free(ps);
        reap_listener(lpid, 5.0);
        return 1;
    }
    privsep_set_sampler(ps, sampler);
    log_info("listening on http%s://%s/ (HTTP listener: pid %d); watching %s every %gs",
             web->tls ? "s" : "", cfg->listen, lpid,
             cfg->all ? "every CPython process" : "the selected processes", cfg->interval);
    if (web->tls || web->nusers)
        log_info("web config %s: %s%s%s%s%s", cfg->web_config_file, web->tls ? "TLS" : "no TLS",
                 web->tls ? ", client certificates: " : "",
                 web->tls ? webconfig_client_auth_name(web->client_auth) : "",
                 web->nusers ? ", basic auth" : ", no basic auth",
                 web->nheaders ? ", extra headers" : "");
    if (web->http2_given)
        log_info("web config: http_server_config.http2 has no effect: pymemd serves HTTP/1.1");

    uint64_t wd_usec = 0;
    bool wd = sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0;
    double tick = wd ? (double)wd_usec / 2e6 : 1.0;
    /* Ready (READY=1, and /healthz 200) once the listener serves and has published the first
     * snapshot, so that no scrape after readiness gets "the first sample is not taken yet".
     * Until then the loop below looks every 10 ms. */
    bool ready = false, hup_pending = false, listener_gone = false;
    double last_wd = 0;
    int rc = 0;
    for (;;) {
        if (!ready && privsep_ready(ps)) {
            ready = true;
            sd_notify(0, "READY=1\nSTATUS=serving");
            if (hup_pending)
                reload(cl, cfg, web, sampler, ps, started_at);
        }
        double wait = ready ? tick : MIN(tick, 0.01);
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("signal %d: stopping", sig);
            break;
        }
        int st;
        bool closed = privsep_closed(ps);
        if (waitpid(lpid, &st, WNOHANG) == lpid || closed) {
            /* The channel ends when the listener dies (or breaks the protocol and is let
             * go): its exit status says which. */
            if (closed)
                st = reap_listener(lpid, 1.0);
            char how[128];
            describe_status(st, how, sizeof(how));
            log_error("the HTTP listener (pid %d) %s; stopping", lpid, how);
            listener_gone = true;
            rc = 1;
            break;
        }
        if (sig == SIGHUP && ready) {
            reload(cl, cfg, web, sampler, ps, started_at);
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
    /* Requests waiting in the sampler give up, the channel ends (and with it the listener),
     * then the sampler stops: a census in flight finishes and lets its target go first. */
    sampler_interrupt(sampler);
    privsep_stop(ps);
    sampler_stop(sampler);
    privsep_free(ps);
    /* It has been exiting since privsep_stop ended the channel, while the sampler stopped:
     * it only closes its connections, so it is normally gone by now (in milliseconds). A
     * sanitizer build scans for leaks at exit, which on a busy machine takes a second: it is
     * given half, then killed, so that SIGTERM stays quick and no child is left unreaped. */
    if (!listener_gone)
        reap_listener(lpid, 0.5);
    return rc;
}

/* The HTTP listener process (priv/listener.h): `pymemd --privsep-listener FDS OPTIONS...`, as
 * privsep_spawn executes it, with the options run_daemon passes (no config file). It drops its
 * privileges before it serves anything: whatever it must read with the privileges of a pymemd
 * started as root (a TLS key readable only by root) is read before
 * listener_drop_privileges(). */
static int run_listener(int argc, char **argv)
{
    int lfd, sock;
    pid_t parent;
    if (argc < 3 || listener_parse_arg(argv[2], &lfd, &sock, &parent) < 0) {
        fprintf(stderr, "pymemd: %s is for pymemd's own use\n", PRIVSEP_LISTENER_FLAG);
        return 2;
    }
    static Cmdline cl;
    argv[2] = argv[0];
    int r = parse_args(argc - 2, argv + 2, &cl);
    if (r >= 0)
        return r;
    Config cfg;
    char err[512];
    if (build_config(&cl, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "pymemd: %s\n", err);
        return 2;
    }
    log_set_level((LogLevel)cfg.log_level);
    /* Read with the privileges pymemd was started with: a TLS key may be readable only by
     * root. The sampler has checked the same file already. */
    WebConfig web;
    char werr[1024];
    if (load_web(&cfg, &web, werr, sizeof(werr)) < 0) {
        log_error("listener: %s", werr);
        config_done(&cfg);
        return 1;
    }
    if (listener_drop_privileges(err, sizeof(err)) < 0) {
        log_error("listener: %s", err);
        webconfig_done(&web);
        config_done(&cfg);
        return 1;
    }
    r = listener_run(lfd, sock, parent, cfg.listen, &web);
    webconfig_done(&web);
    config_done(&cfg);
    return r;
}

int main(int argc, char **argv)
{
    /* Both processes: allocations from 128 KiB up are mmap'd and unmapped when freed, always.
     * glibc otherwise raises that threshold to the largest block freed so far (up to 32 MiB), so
     * that after a first census or a first large body the same sizes come from a thread's heap,
     * where pages pinned by smaller long-lived blocks beside them stay resident: with 100
     * targets, the sampler's anonymous memory settled at 10 MiB instead of 6 in some starts. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    if (argc > 1 && strcmp(argv[1], PRIVSEP_LISTENER_FLAG) == 0)
        return run_listener(argc, argv);
    static Cmdline cl;
    double started_at = clock_real();
    int r = parse_args(argc, argv, &cl);
    if (r >= 0)
        return r;
    Config cfg;
    char err[1024];
    if (build_config(&cl, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "pymemd: %s\n", err);
        return 2;
    }
    log_set_level((LogLevel)cfg.log_level);
    json_set_cmdline_mode((CmdlineMode)cfg.cmdline);
    if (cl.referrers && (!cl.once || cfg.npids == 0)) {
        fprintf(stderr, "pymemd: --referrers needs --once and at least one --pid\n");
        return 2;
    }
    /* A web config that cannot be used refuses the start, as a bad config file does. */
    WebConfig web = {0};
    if (!cl.once && !cl.referrers && load_web(&cfg, &web, err, sizeof(err)) < 0) {
        fprintf(stderr, "pymemd: %s\n", err);
        config_done(&cfg);
        return 2;
    }
    r = cl.referrers ? run_referrers(&cfg, cl.referrers)
        : cl.once    ? run_once(&cfg, started_at)
                     : run_daemon(&cl, &cfg, &web, started_at, argv[0]);
    webconfig_done(&web);
    config_done(&cfg);
    return r;
}
