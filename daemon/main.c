/* pymemd: reads memory and GC telemetry out of running CPython processes.
 *
 * main.c parses the command line and wires the modules together; it is the only place that
 * exits. */
#include <errno.h>
#include <getopt.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "metrics/json.h"
#include "proc/procinfo.h"
#include "python/locate.h"
#include "sampler/target.h"
#include "util/log.h"

#define MAX_PIDS    4096
#define MAX_MATCHES 64

typedef struct Options {
    bool once;
    bool all;
    pid_t pids[MAX_PIDS];
    size_t npids;
    regex_t matches[MAX_MATCHES];
    char *match_src[MAX_MATCHES];
    size_t nmatches;
    double interval;
    double census_interval;
    const char *listen;
    const char *config;
} Options;

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
            "  -l, --listen HOST:PORT   HTTP address (default 127.0.0.1:9100)\n"
            "  -i, --interval SECONDS   sampling interval (default 1)\n"
            "      --census-interval SECONDS  object census interval (0 disables)\n"
            "  -c, --config FILE        configuration file (flags override it)\n"
            "      --log-level LEVEL    error, warn, info or debug (default info)\n"
            "  -h, --help               this text\n"
            "  -V, --version            print the version\n"
            "\n"
            "Reading another user's process needs root or CAP_SYS_PTRACE.\n");
}

static double now_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_seconds(const char *s, double *ret)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0 || v > 86400)
        return -EINVAL;
    *ret = v;
    return 0;
}

static int parse_args(int argc, char **argv, Options *o)
{
    enum { OPT_ONCE = 256, OPT_CENSUS, OPT_LOGLEVEL };
    static const struct option longopts[] = {
        {"pid", required_argument, NULL, 'p'},
        {"match", required_argument, NULL, 'm'},
        {"all", no_argument, NULL, 'a'},
        {"once", no_argument, NULL, OPT_ONCE},
        {"listen", required_argument, NULL, 'l'},
        {"interval", required_argument, NULL, 'i'},
        {"census-interval", required_argument, NULL, OPT_CENSUS},
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, OPT_LOGLEVEL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    int c, k;
    while ((c = getopt_long(argc, argv, "p:m:al:i:c:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': {
            char *end;
            long pid = strtol(optarg, &end, 10);
            if (*optarg == 0 || *end || pid <= 0 || pid > 0x3fffffff) {
                fprintf(stderr, "pymemd: --pid: '%s' is not a process id\n", optarg);
                return 2;
            }
            if (o->npids == MAX_PIDS) {
                fprintf(stderr, "pymemd: at most %d --pid options\n", MAX_PIDS);
                return 2;
            }
            o->pids[o->npids++] = (pid_t)pid;
            break;
        }
        case 'm':
            if (o->nmatches == MAX_MATCHES) {
                fprintf(stderr, "pymemd: at most %d --match options\n", MAX_MATCHES);
                return 2;
            }
            if ((k = regcomp(&o->matches[o->nmatches], optarg, REG_EXTENDED | REG_NOSUB)) != 0) {
                char err[128];
                regerror(k, &o->matches[o->nmatches], err, sizeof(err));
                fprintf(stderr, "pymemd: --match '%s': %s\n", optarg, err);
                return 2;
            }
            o->match_src[o->nmatches++] = optarg;
            break;
        case 'a':
            o->all = true;
            break;
        case OPT_ONCE:
            o->once = true;
            break;
        case 'l':
            o->listen = optarg;
            break;
        case 'i':
            if (parse_seconds(optarg, &o->interval) < 0 || o->interval < 0.01) {
                fprintf(stderr, "pymemd: --interval: '%s' is not a number of seconds >= 0.01\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_CENSUS:
            if (parse_seconds(optarg, &o->census_interval) < 0) {
                fprintf(stderr, "pymemd: --census-interval: '%s' is not a number of seconds\n",
                        optarg);
                return 2;
            }
            break;
        case 'c':
            o->config = optarg;
            break;
        case OPT_LOGLEVEL:
            if ((k = log_level_from_string(optarg)) < 0) {
                fprintf(stderr, "pymemd: --log-level: '%s' is not error, warn, info or debug\n",
                        optarg);
                return 2;
            }
            log_set_level((LogLevel)k);
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("pymemd %s\n", PYMEMD_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pymemd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (o->npids == 0 && o->nmatches == 0)
        o->all = true;
    return -1;
}

static bool matches(const Options *o, const ProcIdentity *id)
{
    for (size_t i = 0; i < o->nmatches; i++) {
        if (regexec(&o->matches[i], id->comm, 0, NULL, 0) == 0)
            return true;
        if (id->cmdline && regexec(&o->matches[i], id->cmdline, 0, NULL, 0) == 0)
            return true;
    }
    return false;
}

static bool looks_like_python(const TargetSample *s)
{
    if (s->have_python)
        return true;
    if (s->status != TARGET_DENIED || !s->have_identity)
        return false;
    /* A process pymemd may not read can still be named: show the Python-looking ones, so a
     * missing capability is visible instead of a silently empty list. */
    return strstr(s->id.comm, "python") || (s->id.exe && strstr(s->id.exe, "python"));
}

/* Samples every selected process once and prints the JSON document. */
static int run_once(const Options *o, double started_at)
{
    _cleanup_(procinfo_freep) ProcInfo *pi = NULL;
    _cleanup_(pyelfcache_freep) PyElfCache *cache = NULL;
    int k = procinfo_new(&pi);
    if (k >= 0)
        k = pyelfcache_new(&cache);
    if (k < 0) {
        fprintf(stderr, "pymemd: cannot initialise: %s\n", strerror(-k));
        return 1;
    }

    /* The explicit pids first, then those the patterns or --all select. */
    pid_t *listed = NULL;
    size_t nlisted = 0;
    if (o->all || o->nmatches) {
        k = procinfo_list(pi, &listed, &nlisted);
        if (k < 0) {
            fprintf(stderr, "pymemd: cannot list processes: %s\n", strerror(-k));
            return 1;
        }
    }
    size_t cap = o->npids + nlisted, n = 0;
    TargetSample *samples = calloc(cap ? cap : 1, sizeof(*samples));
    if (!samples) {
        free(listed);
        return 1;
    }
    pid_t self = getpid();
    for (size_t i = 0; i < cap; i++) {
        bool explicit_pid = i < o->npids;
        pid_t pid = explicit_pid ? o->pids[i] : listed[i - o->npids];
        if (pid == self)
            continue;
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = samples[j].pid == pid;
        if (dup)
            continue;
        if (!explicit_pid && !o->all) {
            ProcIdentity id;
            if (procinfo_identity(pi, pid, &id) < 0)
                continue;
            bool m = matches(o, &id);
            procidentity_done(&id);
            if (!m)
                continue;
        }
        _cleanup_(target_freep) Target *t = NULL;
        if (target_new(pid, &t) < 0)
            continue;
        TargetSample s;
        target_sample(t, cache, pi, true, &s);
        /* Explicit pids are always reported; discovered ones only when they are Python. */
        if (!explicit_pid && !looks_like_python(&s)) {
            targetsample_done(&s);
            continue;
        }
        samples[n++] = s;
    }
    free(listed);

    JsonDaemonInfo info = {PYMEMD_VERSION, started_at, o->interval};
    char *doc = json_document(&info, samples, n);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        ok += samples[i].status == TARGET_OK;
        targetsample_done(&samples[i]);
    }
    free(samples);
    if (!doc) {
        fprintf(stderr, "pymemd: out of memory\n");
        return 1;
    }
    puts(doc);
    free(doc);
    if (ok == 0) {
        fprintf(stderr, "pymemd: no target could be read%s\n",
                n == 0 ? " (no CPython process matched)" : "; see \"error\" of each process");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static Options o = {.interval = 1.0, .census_interval = 60.0};
    double started_at = now_real();
    int r = parse_args(argc, argv, &o);
    if (r >= 0)
        return r;
    if (o.once)
        return run_once(&o, started_at);
    fprintf(stderr, "pymemd: the HTTP daemon is not available in this build yet; use --once\n");
    return 2;
}
