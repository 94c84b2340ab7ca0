/* bench_history: what the listener's history rings cost with every ring full, without waiting
 * an hour: feeds N processes (default 100) x S samples (default 3600, the hour at 1 s) through
 * history_update(), as the listener does with the snapshots, and prints the bytes of the rings
 * (history_bytes), what the process's anonymous memory grew by (RssAnon, which is what
 * bench_rss.sh counts of the listener), the CPU time of taking in one snapshot, and the time to
 * render one full ring as .../history serves it.
 *
 *   build/tests/bench/bench_history [N] [S] [JITTER_MS] [BUSY] [MAX_MEMORY]
 *
 * The samples are those of a quiet process: t every second plus a uniform jitter of +-JITTER_MS
 * (default 1), RSS changing at one sample in 10, blocks at every sample, GC generation 0 at one
 * in 10; BUSY = 1 changes every value at every sample by up to 2^20. MAX_MEMORY: the
 * history_max_memory in bytes (default 3 MiB, as pymemd). Prints figures, asserts nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "history/history.h"
#include "snapshot/snapshot.h"

static uint64_t rng = 1;

static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static long rss_anon_kib(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "RssAnon: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100;
    size_t steps = argc > 2 ? strtoul(argv[2], NULL, 10) : 3600;
    double jitter = (argc > 3 ? strtod(argv[3], NULL) : 1.0) * 1e-3;
    int busy = argc > 4 ? atoi(argv[4]) : 0;
    uint64_t max_memory = argc > 5 ? strtoull(argv[5], NULL, 10) : 3u << 20;
    SnapSettings st = {1.0, 3600.0, max_memory};
    SnapSample *cur = calloc(n, sizeof(*cur));
    pid_t *pids = calloc(n, sizeof(*pids));
    const char **bodies = calloc(n, sizeof(*bodies));
    size_t *lens = calloc(n, sizeof(*lens));
    History *h = NULL;
    if (!cur || !pids || !bodies || !lens || history_new(&h) < 0)
        return 1;
    for (size_t k = 0; k < n; k++) {
        pids[k] = (pid_t)(1000 + k);
        bodies[k] = "{}";
        lens[k] = 2;
        cur[k] = (SnapSample){
            .start_ticks = 1,
            .read = SNAP_READ_RSS | SNAP_READ_ARENA | SNAP_READ_BLOCKS | SNAP_READ_GC,
            .rss_kib = 9000 + k,
            .arena_kib = 3072,
            .allocated_blocks = 20000 + k * 17,
            .gc_collections = {13, 1, 0},
        };
    }
    long anon0 = rss_anon_kib();
    double cpu = 0, t0 = 1.8e9;
    for (size_t i = 0; i < steps; i++) {
        double at = t0 + (double)i;
        SnapWriter *w = NULL;
        if (snapwriter_new(at, &w) < 0)
            return 1;
        snapwriter_settings(w, &st);
        snapwriter_json(w, "{\"processes\":[", pids, bodies, lens, n, "]}");
        for (size_t k = 0; k < n; k++) {
            SnapSample *s = &cur[k];
            s->t = at + ((double)(rnd() % 2001) / 1000 - 1) * jitter;
            if (busy) {
                s->rss_kib += rnd() % (1u << 20);
                s->allocated_blocks += rnd() % (1u << 20);
                s->gc_collections[0] += rnd() % 100;
                s->gc_collections[1] += rnd() % 10;
            } else {
                if (rnd() % 10 == 0)
                    s->rss_kib += rnd() % 65 - 32;
                s->allocated_blocks += rnd() % 41 - 20;
                s->gc_collections[0] += rnd() % 10 == 0;
            }
            snapwriter_sample(w, k, s);
        }
        Snapshot *snap = NULL;
        if (snapwriter_finish(w, &snap) < 0)
            return 1;
        double c0 = cpu_now();
        history_update(h, snap, NULL);
        cpu += cpu_now() - c0;
        snapshot_unref(snap);
    }
    long anon1 = rss_anon_kib();
    uint64_t bytes = history_bytes(h);
    double w0 = wall_now(), c0 = cpu_now();
    size_t len = 0;
    int reps = 20;
    for (int r = 0; r < reps; r++)
        free(history_json(h, pids[0], 0, &len));
    double render = (wall_now() - w0) / reps, render_cpu = (cpu_now() - c0) / reps;
    printf("rings: %zu processes x %zu samples (jitter +-%g ms, %s), history_max_memory %.1f MiB\n",
           n, steps, jitter * 1e3, busy ? "busy" : "quiet", (double)max_memory / 1048576);
    size_t kept = 0, ring_bytes = 0;
    history_ring_size(h, pids[0], &kept, &ring_bytes);
    printf("ring bytes:        %.2f MiB, %zu samples kept of the first process, %.2f bytes a "
           "sample\n",
           (double)bytes / 1048576, kept, (double)ring_bytes / (double)kept);
    printf("RssAnon grew by:   %.2f MiB\n", (double)(anon1 - anon0) / 1024);
    printf("taking in a snapshot of %zu: %.1f us of CPU (%.2f us a process)\n", n,
           cpu / (double)steps * 1e6, cpu / (double)steps / (double)n * 1e6);
    printf("rendering one ring: %.2f ms of CPU, %.2f ms wall (%zu bytes of JSON)\n",
           render_cpu * 1e3, render * 1e3, len);
    history_free(h);
    free(cur);
    free(pids);
    free(bodies);
    free(lens);
    return 0;
}
