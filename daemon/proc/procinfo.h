/* procinfo: identity and memory of a process, through libproc2 (procps-ng). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/macro.h"

typedef struct ProcInfo ProcInfo;

typedef struct ProcIdentity {
    pid_t pid;
    char comm[64];
    char *cmdline; /* arguments joined with spaces, or NULL when empty (kernel threads) */
    char *exe;     /* readlink of /proc/PID/exe, or NULL when it cannot be read */
    uint64_t
        start_ticks;   /* stat field 22, clock ticks after boot: with pid, identifies a process */
    double start_time; /* seconds since the epoch */
    uid_t uid;         /* real uid */
    int threads;       /* kernel threads (tasks) of the process */
} ProcIdentity;

/* Byte counts; -1 where the kernel did not say (never a made-up zero). */
typedef struct ProcMemory {
    int64_t rss, vms, anon, swap, pss, peak_rss;
} ProcMemory;

/* A libproc2 context, reused across calls. The caller owns *ret.
 *
 * A ProcInfo must be used from one thread: a libproc2 pids_info keeps the results of the last
 * call inside itself (the next call frees them) and has no lock, and the library's read buffers
 * are thread-local. A thread that needs process information creates its own ProcInfo. */
int procinfo_new(ProcInfo **ret);
ProcInfo *procinfo_free(ProcInfo *p);
DEFINE_CLEANUP_FUNC(ProcInfo *, procinfo_free)

/* -ESRCH when the process does not exist. The strings in *ret are owned by the caller: free with
 * procidentity_done(). */
int procinfo_identity(ProcInfo *p, pid_t pid, ProcIdentity *ret);
void procidentity_done(ProcIdentity *id);

/* RSS, VMS, anonymous, swap (status), PSS (smaps_rollup), peak RSS (VmHWM). A field that cannot
 * be read (e.g. smaps_rollup without permission) is -1; -ESRCH when the process is gone. */
int procinfo_memory(ProcInfo *p, pid_t pid, ProcMemory *ret);
/* The same without PSS (ret->pss is -1): /proc/PID/status only, which costs the target
 * nothing. smaps_rollup is the costly file: the kernel walks the target's page tables under its
 * mmap lock (~100 ms per 4 GiB of RSS), so the sampler reads it at its own cadence. */
int procinfo_memory_status(ProcInfo *p, pid_t pid, ProcMemory *ret);
/* PSS from /proc/PID/smaps_rollup into *ret: bytes, or -1 when the kernel does not give it
 * (no permission, a zombie). -ESRCH when the process is gone. */
int procinfo_pss(pid_t pid, int64_t *ret);

/* Every process (not thread) on the host, ascending. The caller frees *ret. */
int procinfo_list(ProcInfo *p, pid_t **ret, size_t *ret_n);
