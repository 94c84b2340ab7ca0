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
    char *cmdline; /* arguments joined with spaces, or NULL when empty (kernel threads); for
                    *   matching: served only with cmdline = full */
    char *cmdline_redacted; /* the same through redact_argv(): what cmdline = redacted serves */
    char *exe;              /* readlink of /proc/PID/exe, or NULL when it cannot be read */
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
/* A deep copy of *src into *ret, which the caller frees with procidentity_done(). -ENOMEM leaves
 * *ret untouched. */
int procidentity_copy(const ProcIdentity *src, ProcIdentity *ret);
/* Wall-clock seconds of a start time in clock ticks after boot (ProcIdentity.start_time). */
double procinfo_start_time(const ProcInfo *p, uint64_t start_ticks);

/* What tells one process, and one program image of it, from another. A pid is reused once its
 * process is reaped; pid and start time together name one process. exec() keeps both (and with
 * a multi-threaded process the pid too) while it replaces the whole program, so the image is
 * told by the executable's file and by where the kernel placed its stack, code and heap: with
 * address space randomisation (the default) each exec draws new ones, even of the same
 * executable with the same arguments. */
typedef struct ProcStamp {
    uint64_t start_ticks;      /* stat field 22 */
    uint64_t exe_dev, exe_ino; /* of the file /proc/PID/exe names; 0 when it cannot be read */
    uint64_t start_code, start_stack, start_brk; /* stat fields 26, 28, 47; fixed per image */
} ProcStamp;

/* Reads pid's stamp from /proc/PID/stat and /proc/PID/exe: a few microseconds, no libproc2
 * (any thread may call it). -ESRCH when the process is gone or a zombie (a zombie has no image
 * left to read). */
int procinfo_stamp(pid_t pid, ProcStamp *ret);
/* The same, and from the same read of stat the process's thread count (field 20, what
 * ProcIdentity.threads is) into *ret_threads unless it is NULL. */
int procinfo_stamp_threads(pid_t pid, ProcStamp *ret, int *ret_threads);
/* The stamp's stat fields (exe_dev and exe_ino 0) and the thread count from the text of a stat
 * file, NUL-terminated. -ESRCH for a zombie, -EIO when the text is not a stat line. */
int procinfo_parse_stat(const char *buf, ProcStamp *ret, int *ret_threads);
/* Same process: the pid was not reused in between. */
bool procstamp_same_process(const ProcStamp *a, const ProcStamp *b);
/* Same process and same program image: it did not exec() in between. */
bool procstamp_same_image(const ProcStamp *a, const ProcStamp *b);

/* Who ptrace()s thread tid (any thread's id; a process's own is its leader's): *ret is the
 * tracer's thread id, 0 for none. Threads of the calling process count too; the caller decides
 * what its own tracing means. -ESRCH when tid is gone. */
int procinfo_tracer(pid_t tid, pid_t *ret);
/* The same for every thread of process pid (strace without -f, or `gdb -p TID`, traces one
 * thread only): the first tracer found, 0 for none. Reads one file per thread. */
int procinfo_tracer_any(pid_t pid, pid_t *ret);

/* RSS, VMS, anonymous, swap (status), PSS (smaps_rollup), peak RSS (VmHWM). A field that cannot
 * be read (e.g. smaps_rollup without permission) is -1; -ESRCH when the process is gone. */
int procinfo_memory(ProcInfo *p, pid_t pid, ProcMemory *ret);
/* The same without PSS (ret->pss is -1): procinfo_status() only, which costs the target
 * nothing. smaps_rollup is the costly file: the kernel walks the target's page tables under its
 * mmap lock (~100 ms per 4 GiB of RSS), so the sampler reads it at its own cadence. */
int procinfo_memory_status(ProcInfo *p, pid_t pid, ProcMemory *ret);
/* PSS from /proc/PID/smaps_rollup into *ret: bytes, or -1 when the kernel does not give it
 * (no permission, a zombie). -ESRCH when the process is gone. */
int procinfo_pss(pid_t pid, int64_t *ret);

/* What one sample needs of /proc/PID/status, from one read of it: each -1 when its line is
 * missing or cannot be parsed (a kernel thread and a zombie have no memory lines). */
typedef struct ProcStatus {
    int64_t tgid;
    int64_t uid;    /* the real uid, the first of the Uid line */
    ProcMemory mem; /* everything but pss, which is -1 */
} ProcStatus;

/* Reads /proc/PID/status once, without libproc2 (any thread may call it). -ESRCH when the
 * process is gone, or pid names a thread that is not a process's leader. */
int procinfo_status(pid_t pid, ProcStatus *ret);
/* The same scan of an open status file (for tests: any text). Bounded memory whatever the line
 * lengths; -errno of read(). */
int procstatus_parse_fd(int fd, ProcStatus *ret);

/* Every process (not thread) on the host, ascending. The caller frees *ret. */
int procinfo_list(ProcInfo *p, pid_t **ret, size_t *ret_n);
