/* bench_sample: what one sample of one target costs pymemd, side by side with baselines.
 *
 *   bench_sample [--samples N] PYTHON...
 *
 * For each interpreter it starts a target (thousands of objects in cycles, 4 threads), locates
 * it once, then times N samples three ways in the same run:
 *   pymemd    pyreader_sample(): the batched reads of the sampling path
 *   unbatched the same values read with one process_vm_readv per field, as a naive reader would
 *   status    one read of /proc/PID/status, the cheapest thing an exporter does per scrape
 * and prints CPU microseconds per sample, system calls per sample and the ratios. Figures, not
 * assertions: timing belongs here, not in the unit tests. The ELF work is done once: the second
 * locate of the same binary must open no file (printed as "ELF opens"). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "python/locate.h"
#include "python/pyread.h"

static const char target_src[] = "import gc, sys, threading\n"
                                 "class Leak:\n"
                                 "    def __init__(self): self.me = self\n"
                                 "keep = [Leak() for _ in range(20000)]\n"
                                 "ev = threading.Event()\n"
                                 "ts = [threading.Thread(target=ev.wait) for _ in range(3)]\n"
                                 "[t.start() for t in ts]\n"
                                 "gc.collect()\n"
                                 "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
                                 "sys.stdin.read()\n"
                                 "ev.set()\n";

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pid_t start_target(const char *python, int *ret_stdin)
{
    int in[2], out[2];
    if (pipe(in) < 0 || pipe(out) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl("/bin/sh", "sh", "-c", "exec \"$0\" -c \"$1\"", python, target_src, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    char buf[16] = "";
    ssize_t n = read(out[0], buf, sizeof(buf) - 1);
    close(out[0]);
    if (n <= 0 || strncmp(buf, "ready", 5) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(in[1]);
        return -1;
    }
    *ret_stdin = in[1];
    return pid;
}

/* The same fields pyreader_sample reads, one system call each. */
static int sample_unbatched(const PyLoc *loc, Rmem *r)
{
    const PyLayout *l = &loc->layout;
    uint64_t v, interp;
    int k = rmem_read_u64(r, loc->runtime + l->runtime.interpreters_main, &interp);
    if (k < 0)
        return k;
    RAddr gc = l->runtime.gc != PYL_NONE ? loc->runtime + l->runtime.gc : interp + l->interp.gc;
    uint32_t fields[] = {l->gc.enabled, l->gc.collecting, l->gc.garbage};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if ((k = rmem_read_u64(r, gc + fields[i], &v)) < 0)
            return k;
    for (uint32_t g = 0; g < 3; g++) {
        RAddr gen = gc + l->gc.generations + g * l->gc.generation_size;
        int32_t x;
        if ((k = rmem_read(r, gen + l->gc.generation_count, &x, 4)) < 0 ||
            (k = rmem_read(r, gen + l->gc.generation_threshold, &x, 4)) < 0)
            return k;
        if (l->gc.stats_kind == PYGCS_ARRAY) {
            RAddr st = gc + l->gc.stats + g * l->gc.stats_entry_size;
            if ((k = rmem_read_u64(r, st + l->gc.stat_collections, &v)) < 0 ||
                (k = rmem_read_u64(r, st + l->gc.stat_collected, &v)) < 0 ||
                (k = rmem_read_u64(r, st + l->gc.stat_uncollectable, &v)) < 0)
                return k;
        }
    }
    uint64_t t;
    if ((k = rmem_read_u64(r, interp + l->interp.threads_head, &t)) < 0)
        return k;
    while (t)
        if ((k = rmem_read_u64(r, t + l->tstate.next, &t)) < 0)
            return k;
    return 0;
}

static void read_status(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)!read(fd, buf, sizeof(buf));
        close(fd);
    }
}

int main(int argc, char **argv)
{
    int samples = 20000, first = 1;
    if (argc > 2 && strcmp(argv[1], "--samples") == 0) {
        samples = atoi(argv[2]);
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: bench_sample [--samples N] PYTHON...\n");
        return 2;
    }
    printf("%-20s %9s %6s %11s %6s %10s %6s %9s %7s %9s\n", "interpreter", "sample_us", "calls",
           "counters_us", "calls", "unbatch_us", "calls", "status_us", "ratio", "ELF opens");
    for (int a = first; a < argc; a++) {
        int in;
        pid_t pid = start_target(argv[a], &in);
        if (pid < 0) {
            printf("%-20s SKIP: could not start\n", argv[a]);
            continue;
        }
        PyElfCache *cache;
        Rmem *r;
        PyLoc loc;
        PyReader *pr;
        pyelfcache_new(&cache);
        rmem_open(pid, &r);
        if (pyloc_locate(cache, pid, r, &loc) < 0 || loc.status != PYLOC_OK ||
            pyreader_new(&loc, &pr) < 0) {
            printf("%-20s SKIP: %s\n", argv[a], loc.reason);
        } else {
            unsigned opens = pyelfcache_opens(cache);
            PyLoc again;
            pyloc_locate(cache, pid, r, &again); /* cached: must open nothing */
            unsigned reopened = pyelfcache_opens(cache) - opens;

            PySample s;
            pyreader_sample(pr, r, 0, true, &s);
            uint64_t c0 = rmem_calls(r);
            double t0 = cpu_now();
            for (int i = 0; i < samples; i++)
                pyreader_sample(pr, r, 1.0, false, &s);
            double ours = (cpu_now() - t0) / samples * 1e6;
            double ours_calls = (double)(rmem_calls(r) - c0) / samples;

            pyreader_set_allocated_blocks(pr, false);
            c0 = rmem_calls(r);
            t0 = cpu_now();
            for (int i = 0; i < samples; i++)
                pyreader_sample(pr, r, 1.0, false, &s);
            double counters = (cpu_now() - t0) / samples * 1e6;
            double counters_calls = (double)(rmem_calls(r) - c0) / samples;

            c0 = rmem_calls(r);
            t0 = cpu_now();
            for (int i = 0; i < samples; i++)
                sample_unbatched(&loc, r);
            double naive = (cpu_now() - t0) / samples * 1e6;
            double naive_calls = (double)(rmem_calls(r) - c0) / samples;

            t0 = cpu_now();
            for (int i = 0; i < samples; i++)
                read_status(pid);
            double status = (cpu_now() - t0) / samples * 1e6;

            char label[64];
            snprintf(label, sizeof(label), "%s (%s)", loc.version,
                     loc.shared ? "shared" : "static");
            printf("%-20s %9.2f %6.1f %11.2f %6.1f %10.2f %6.1f %9.2f %6.2fx %5u, +%u\n", label,
                   ours, ours_calls, counters, counters_calls, naive, naive_calls, status,
                   naive / counters, opens, reopened);
            pyreader_free(pr);
        }
        rmem_free(r);
        pyelfcache_free(cache);
        close(in);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    printf("sample_us: CPU per pyreader_sample, sys.getallocatedblocks() recomputed included;\n"
           "counters_us: the same without it (GC state, pymalloc counters, threads);\n"
           "unbatch_us: the GC and thread fields alone, one read each (a naive reader);\n"
           "status_us: one read of /proc/PID/status; ratio = unbatch_us / counters_us\n");
    return 0;
}
