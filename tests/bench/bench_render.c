/* bench_render: what the sampler's per-round rendering costs, without a daemon around it:
 * snaprender_new() (every /metrics format, each process's JSON, the census and growth documents,
 * the snapshot block) of N targets (default 10), R rounds (default 1,000) with one SnapCache, as
 * the sampler calls it once an interval between censuses. Each target is a quiet CPython 3.12 as
 * bench_rss.sh starts: identity, memory, three GC generations, pymalloc, a census of 300 types
 * (names like a real application's, a few with quotes or backslashes to escape), the census
 * before it, and leak suspects. Prints CPU (CLOCK_PROCESS_CPUTIME_ID) and minor page faults
 * (getrusage) per round, and the bytes of one snapshot.
 *
 *   build/tests/bench/bench_render [N] [ROUNDS] [DUMP]
 *
 * DUMP: a file to write the first snapshot's block to, to compare the bytes of two builds.
 *
 * As in pymemd, the mmap threshold is 128 KiB (main.c). A round ends with malloc_trim(0) every
 * TRIM_EVERY rounds (environment, default 1: what publish() did until it trimmed only after a
 * census or every 30 rounds; TRIM_EVERY=30 for that).
 *
 * Against another commit: tests/bench/bench_render_ab.sh builds this file in an export of that
 * commit and runs both binaries alternately (see there). Prints figures, asserts nothing. */
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "metrics/snaprender.h"
#include "sampler/suspects.h"

#define NTYPES 300

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long minflt_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static const char *const stems[] = {
    "dict",
    "list",
    "tuple",
    "function",
    "cell",
    "type",
    "method",
    "frozenset",
    "set",
    "weakref",
    "builtin_function_or_method",
    "getset_descriptor",
    "member_descriptor",
    "property",
    "wrapper_descriptor",
    "module",
    "ModuleSpec",
    "SourceFileLoader",
    "classmethod",
    "staticmethod",
    "Request",
    "Response",
    "Session",
    "Pattern",
    "Handler",
    "Logger",
    "HTTPConnection",
    "Record",
    "Node",
    "Future",
};

/* A census of NTYPES types, largest count first, `grow` more of type 7 per step. */
static Census *make_census(double at, int step)
{
    Census *c = calloc(1, sizeof(*c));
    c->types = calloc(NTYPES, sizeof(*c->types));
    c->strings = calloc(NTYPES, 96);
    if (!c || !c->types || !c->strings) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    atomic_init(&c->refs, 1);
    c->at = at;
    c->pause_seconds = 0.0021;
    c->walk_seconds = 0.013;
    c->frozen = true;
    char *p = c->strings;
    size_t nstems = sizeof(stems) / sizeof(stems[0]);
    for (size_t i = 0; i < NTYPES; i++) {
        if (i < nstems)
            snprintf(p, 96, "%s", stems[i]);
        else if (i % 50 == 0)
            snprintf(p, 96, "app.models.\"Quoted\\%zu\"", i);
        else
            snprintf(p, 96, "app.%s.%s%zu", i % 3 ? "views" : "services", stems[i % nstems], i);
        CensusType *t = &c->types[c->ntypes++];
        t->name = t->pyname = p;
        p += strlen(p) + 1;
        t->type = 0x7f0000001000ull + 0x400 * i;
        t->count = 60000 / (int64_t)(i + 1) + (i == 7 ? 25 * step : 0);
        t->bytes = t->count * (48 + 8 * (int64_t)(i % 9));
        c->total += t->count;
    }
    c->generation[0] = 311;
    c->generation[1] = 1809;
    c->generation[2] = c->total - 2120;
    return c;
}

static void fill(TargetSample *s, pid_t pid, Census *const c[3], const Suspects *sp)
{
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    s->status = TARGET_OK;
    s->have_identity = true;
    snprintf(s->id.comm, sizeof(s->id.comm), "python3.12");
    s->id.pid = pid;
    s->id.cmdline = strdup("python3.12 -c import time; time.sleep(3600)");
    s->id.exe = strdup("/usr/bin/python3.12");
    s->id.start_ticks = 123456 + (uint64_t)pid;
    s->id.start_time = 1.7e9 + pid;
    s->id.uid = 1000;
    s->id.threads = 1;
    s->have_cgroup = true;
    snprintf(s->cgroup.unit, sizeof(s->cgroup.unit), "session-3.scope");
    s->ns_pid = pid;
    s->top_ancestor = pid;
    snprintf(s->group, sizeof(s->group), "python3.12");
    s->have_python = true;
    snprintf(s->version, sizeof(s->version), "3.12.7");
    s->hexversion = 0x030c07f0;
    s->version_exact = true;
    s->have_memory = true;
    s->mem = (ProcMemory){.rss = 9695232 + 4096 * pid,
                          .vms = 19189760,
                          .anon = 5328896,
                          .swap = 0,
                          .pss = 6554624,
                          .peak_rss = 9695232 + 8192 * pid};
    s->pss_at = 1700000000.25;
    s->have_py = true;
    s->py.enabled = true;
    s->py.frozen = 0;
    s->py.frozen_age = 0.5;
    s->py.garbage = 0;
    s->py.heap_size = -1;
    s->py.ngenerations = 3;
    const int64_t thresholds[3] = {700, 10, 10};
    for (unsigned g = 0; g < 3; g++)
        s->py.gen[g] = (PyGcGeneration){.count = 17 * (g + 1),
                                        .threshold = thresholds[g],
                                        .collections = 1200 / (g + 1) + pid,
                                        .collected = 35 * (g + 1),
                                        .uncollectable = 0,
                                        .candidates = -1,
                                        .duration = NAN};
    s->py.threads = 1;
    s->py.pymalloc_ok = true;
    s->py.arenas = 12;
    s->py.arenas_highwater = 14;
    s->py.arena_bytes = 12 << 20;
    s->py.allocated_blocks = 61234 + pid;
    s->py.allocated_bytes = -1;
    s->busy_ratio = 0;
    s->census = census_ref(c[2]);
    s->prev_census = census_ref(c[1]);
    s->censuses = 3;
    s->suspects = sp;
    s->sampled_at = 1700000000.5;
    s->sample_seconds = 0.00041;
}

int main(int argc, char **argv)
{
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10;
    long rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
    long trim_every = getenv("TRIM_EVERY") ? strtol(getenv("TRIM_EVERY"), NULL, 10) : 1;
    if (trim_every <= 0)
        trim_every = 1;
    if (n == 0 || rounds <= 0) {
        fprintf(stderr, "usage: bench_render [N] [ROUNDS] [DUMP]\n");
        return 2;
    }
    Census *c[3];
    SuspectTally *t[3];
    for (int i = 0; i < 3; i++) {
        c[i] = make_census(1700000000.0 + 300 * i, i);
        if (suspects_tally(c[i], &t[i]) < 0)
            return 1;
    }
    Suspects *sp = NULL;
    if (suspects_find(c[2], (const SuspectTally *const *)t, 3, 2, &sp) < 0)
        return 1;
    TargetSample *s = calloc(n, sizeof(*s));
    if (!s)
        return 1;
    for (size_t i = 0; i < n; i++)
        fill(&s[i], (pid_t)(1000 + 7 * i), c, sp);
    JsonDaemonInfo info = {.version = "0.1.0",
                           .started_at = 1699999000,
                           .interval_seconds = 1,
                           .top_types = 20,
                           .history_seconds = 3600,
                           .history_max_memory = 3 << 20};
    SnapCache *cache = snapcache_new();
    /* The first round prints the censuses into the cache: not counted. */
    Snapshot *snap = NULL;
    if (snaprender_new(&info, s, n, 1700000001.0, cache, &snap) < 0)
        return 1;
    int fd = -1;
    size_t bytes = snapshot_to_memfd(snap, &fd) == 0 ? (size_t)lseek(fd, 0, SEEK_END) : 0;
    if (argc > 3) {
        FILE *f = fopen(argv[3], "we");
        char *block = malloc(bytes);
        if (!f || !block || pread(fd, block, bytes, 0) != (ssize_t)bytes ||
            fwrite(block, 1, bytes, f) != bytes) {
            fprintf(stderr, "cannot write %s\n", argv[3]);
            return 1;
        }
        fclose(f);
        free(block);
    }
    close(fd);
    snapshot_unref(snap);
    double c0 = cpu_now();
    long f0 = minflt_now();
    for (long r = 0; r < rounds; r++) {
        if (snaprender_new(&info, s, n, 1700000001.0 + (double)r, cache, &snap) < 0)
            return 1;
        snapshot_unref(snap);
        if ((r + 1) % trim_every == 0)
            malloc_trim(0);
    }
    double cpu = cpu_now() - c0;
    long faults = minflt_now() - f0;
    printf("%zu targets, %ld rounds: %.1f us CPU and %.1f minor faults per round, block %zu "
           "bytes\n",
           n, rounds, cpu / (double)rounds * 1e6, (double)faults / (double)rounds, bytes);
    snapcache_free(cache);
    for (size_t i = 0; i < n; i++) {
        census_free(s[i].census);
        census_free(s[i].prev_census);
        free(s[i].id.cmdline);
        free(s[i].id.exe);
    }
    free(s);
    suspects_free(sp);
    for (int i = 0; i < 3; i++) {
        suspects_tally_free(t[i]);
        census_free(c[i]);
    }
    return 0;
}
