/* bench_proc: what reading /proc costs the sampler per target and sample, and discovery per
 * process it passes over, the way pymemd reads now against the way it read before (issue 14).
 *
 *   bench_proc [--samples N]
 *
 * The target is a child of this program, asleep. Timed in alternating blocks, CPU time of this
 * process (user and system) per sample:
 *   sample, before  the stamp, libproc2's identity select, libproc2's memory select and a status
 *                   scan for VmHWM, the stamp again: ten /proc files and /proc/uptime twice
 *   sample, now     the stamp with the thread count, one status scan, the names (libproc2's
 *                   identity select) every 10th sample, the stamp again
 *   discovery, before / now  a process not taken: its identity each look / its stamp
 * Figures and ratios, not assertions. */
#include <errno.h>
#include <libproc2/pids.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc/procinfo.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct Bench {
    ProcInfo *pi;
    struct pids_info *memory; /* the memory select the sampler made before */
    pid_t pid;
    unsigned n;
} Bench;

static int sample_before(Bench *b)
{
    ProcStamp a, z;
    ProcIdentity id;
    ProcStatus st;
    unsigned u = (unsigned)b->pid;
    if (procinfo_stamp(b->pid, &a) < 0 || procinfo_identity(b->pi, b->pid, &id) < 0)
        return -1;
    procidentity_done(&id);
    if (!procps_pids_select(b->memory, &u, 1, PIDS_SELECT_PID))
        return -1;
    return procinfo_status(b->pid, &st) < 0 || procinfo_stamp(b->pid, &z) < 0 ? -1 : 0;
}

static int sample_now(Bench *b, ProcIdentity *names)
{
    ProcStamp a, z;
    ProcStatus st;
    ProcIdentity id;
    int threads;
    if (procinfo_stamp_threads(b->pid, &a, &threads) < 0 || procinfo_status(b->pid, &st) < 0)
        return -1;
    if (b->n++ % 10 == 0) {
        procidentity_done(names);
        if (procinfo_identity(b->pi, b->pid, names) < 0)
            return -1;
    }
    if (procidentity_copy(names, &id) < 0)
        return -1;
    procidentity_done(&id);
    return procinfo_stamp(b->pid, &z);
}

static int discover_before(Bench *b)
{
    ProcIdentity id;
    if (procinfo_identity(b->pi, b->pid, &id) < 0)
        return -1;
    procidentity_done(&id);
    return 0;
}

static int discover_now(Bench *b)
{
    ProcStamp st;
    return procinfo_stamp(b->pid, &st);
}

int main(int argc, char **argv)
{
    unsigned samples = 20000;
    if (argc == 3 && strcmp(argv[1], "--samples") == 0)
        samples = (unsigned)strtoul(argv[2], NULL, 10);
    else if (argc != 1) {
        fprintf(stderr, "usage: %s [--samples N]\n", argv[0]);
        return 2;
    }

    Bench b = {0};
    enum pids_item items[] = {PIDS_VM_RSS, PIDS_VM_SIZE, PIDS_VM_RSS_ANON, PIDS_VM_SWAP};
    if (procinfo_new(&b.pi) < 0 || procps_pids_new(&b.memory, items, 4) < 0) {
        fprintf(stderr, "bench_proc: libproc2 setup failed\n");
        return 1;
    }
    b.pid = fork();
    if (b.pid < 0)
        return 1;
    if (b.pid == 0) {
        for (;;)
            pause();
    }

    /* Alternating blocks of 1,000, so that a change of machine load hits both ways alike. */
    enum { BEFORE, NOW, DISC_BEFORE, DISC_NOW, NWAYS };
    static const char *const names[NWAYS] = {"sample, before", "sample, now", "discovery, before",
                                             "discovery, now"};
    double spent[NWAYS] = {0};
    unsigned done[NWAYS] = {0};
    ProcIdentity cached = {0};
    int bad = 0;
    for (unsigned at = 0; at < samples && !bad; at += 1000) {
        for (int w = 0; w < NWAYS && !bad; w++) {
            double t0 = cpu_now();
            for (unsigned i = 0; i < 1000 && !bad; i++) {
                int k = w == BEFORE        ? sample_before(&b)
                        : w == NOW         ? sample_now(&b, &cached)
                        : w == DISC_BEFORE ? discover_before(&b)
                                           : discover_now(&b);
                bad = k < 0;
            }
            spent[w] += cpu_now() - t0;
            done[w] += 1000;
        }
    }
    procidentity_done(&cached);
    kill(b.pid, SIGKILL);
    waitpid(b.pid, NULL, 0);
    procps_pids_unref(&b.memory);
    procinfo_free(b.pi);
    if (bad) {
        fprintf(stderr, "bench_proc: reading the child failed\n");
        return 1;
    }
    for (int w = 0; w < NWAYS; w++)
        printf("%-18s %7.1f us CPU per call (%u calls)\n", names[w], spent[w] / done[w] * 1e6,
               done[w]);
    printf("sample:    before / now = %.2f\n", spent[BEFORE] / spent[NOW]);
    printf("discovery: before / now = %.2f\n", spent[DISC_BEFORE] / spent[DISC_NOW]);
    return 0;
}
