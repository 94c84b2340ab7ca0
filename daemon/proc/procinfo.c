/* procinfo: identity and memory of a process, through libproc2 (procps-ng).
 *
 * libproc2 4.0.2 does most of the work, but four of its answers are not what our header promises,
 * so those are read from /proc directly (each was checked against the library, not assumed):
 *
 * - Peak RSS: 4.0.2 has no VmHWM item at all, so the `VmHWM:` line of /proc/PID/status is parsed
 *   here (a bounded, line-at-a-time scan that stops once it has what it needs).
 * - PSS: when /proc/PID/smaps_rollup cannot be opened (EACCES without ptrace rights), libproc2
 *   ignores the failure and reports PIDS_SMAP_PSS as 0 with the select still succeeding, which is
 *   indistinguishable from a real 0. Asking libproc2 for PSS and then re-reading the file to find
 *   out whether the 0 was real would make the kernel walk every page table twice (smaps_rollup is
 *   the costly file), so the `Pss:` line is parsed here and libproc2 is not asked for it.
 * - exe: libproc2 passes the link through escape_str(), which in the C locale a daemon runs in
 *   turns every non-ASCII byte (and any control character) into '?', and says "-" when the link
 *   cannot be read. A mangled path cannot be opened, and the header promises the readlink, so
 *   readlink() is called here directly: it is the same single syscall libproc2 makes.
 * - cmdline: PIDS_CMDLINE is escaped the same way and turns an empty cmdline into "[comm]", so
 *   PIDS_CMDLINE_V, which is raw, is joined here instead. It reports an empty or unreadable
 *   cmdline as the vector {"-"}, which is also what a process whose only argument is "-" looks
 *   like; only in that case is /proc/PID/cmdline read to tell them apart.
 *
 * What a sample reads every time (target_sample(): the stamp, the thread count, the uid and the
 * memory lines) is read here too, one read of /proc/PID/stat and one of /proc/PID/status, and
 * not through libproc2: a procps_pids_select() reads /proc/uptime, stat()s /proc/PID and reads
 * status (and stat, cmdline for the identity items) again for every call, 11 to 21 syscalls a
 * stack, which made /proc the larger part of the sampler's CPU with 10 targets. libproc2 stays
 * what lists processes and what reads the names (comm, cmdline) for discovery and at the
 * sampler's slow cadence for them. The memory values libproc2 gave were the same status lines'
 * numbers; a missing line (a kernel thread or a zombie has no memory lines) comes out as -1, not
 * as a process that uses no memory. */
#include "proc/procinfo.h"
#include "util/redact.h"
#include "util/utf8.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libproc2/pids.h>
#include <libproc2/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Three contexts, each asking only for what its call needs: libproc2 picks the files it reads
 * from the items, so an identity item in the memory context would cost a cmdline read every
 * second for nothing. For the same reason no PIDS_ENVIRON item is ever asked for: libproc2 opens
 * /proc/PID/environ only for those, and a process's environment (tokens, passwords) is nothing
 * pymemd reads or serves (tests/http/test_hardening.py checks it with strace). */
enum {
    ID_TGID,
    ID_CMD,
    ID_CMDLINE_V,
    ID_TICS_BEGAN,
    ID_RUID,
    ID_NLWP,
};
static enum pids_item identity_items[] = {
    PIDS_ID_TGID, PIDS_CMD, PIDS_CMDLINE_V, PIDS_TICS_BEGAN, PIDS_ID_RUID, PIDS_NLWP,
};

static enum pids_item list_items[] = {PIDS_ID_PID};

struct ProcInfo {
    struct pids_info *identity, *list;
    double boot_time; /* seconds since the epoch, from /proc/stat btime */
    long clk_tck;
};

ProcInfo *procinfo_free(ProcInfo *p)
{
    if (!p)
        return NULL;
    if (p->identity)
        procps_pids_unref(&p->identity);
    if (p->list)
        procps_pids_unref(&p->list);
    free(p);
    return NULL;
}

int procinfo_new(ProcInfo **ret)
{
    int r;

    if (!ret)
        return -EINVAL;

    _cleanup_(procinfo_freep) ProcInfo *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;

    r = procps_pids_new(&p->identity, identity_items, (int)ARRAY_SIZE(identity_items));
    if (r < 0)
        return r;
    r = procps_pids_new(&p->list, list_items, (int)ARRAY_SIZE(list_items));
    if (r < 0)
        return r;

    /* The boot time does not change while the system runs: read once, it turns every start tick
     * count into a wall-clock time without touching /proc/stat again. */
    struct stat_info *si = NULL;
    r = procps_stat_new(&si);
    if (r < 0)
        return r;
    errno = 0;
    struct stat_result *res = procps_stat_get(si, STAT_SYS_TIME_OF_BOOT);
    int err = errno;
    unsigned long boot = res ? res->result.ul_int : 0;
    procps_stat_unref(&si);
    if (!res)
        return err > 0 ? -err : -EIO;
    if (boot == 0)
        return -EIO;
    p->boot_time = (double)boot;

    p->clk_tck = sysconf(_SC_CLK_TCK);
    if (p->clk_tck <= 0)
        return -EINVAL;

    *ret = TAKE_PTR(p);
    return 0;
}

/* libproc2 signals errors through errno but does not always set it; a NULL with errno 0 still
 * has to come out as an error. */
static int libproc2_error(void)
{
    return errno > 0 ? -errno : -EIO;
}

/* Selects one pid in ctx. 0 and *ret set when it exists, -ESRCH when it does not. */
static int select_one(struct pids_info *ctx, pid_t pid, struct pids_stack **ret)
{
    unsigned u = (unsigned)pid;

    errno = 0;
    struct pids_fetch *f = procps_pids_select(ctx, &u, 1, PIDS_SELECT_PID);
    if (!f)
        return libproc2_error();
    if (f->counts->total < 1)
        return -ESRCH;
    *ret = f->stacks[0];
    return 0;
}

typedef struct ScanKey {
    const char *name; /* without the colon */
    bool kib;         /* the value is "N kB": converted to bytes */
} ScanKey;

static int64_t kib_to_bytes(uint64_t kib)
{
    if (kib > (uint64_t)INT64_MAX / 1024)
        return -1;
    return (int64_t)(kib * 1024);
}

/* "Name:<blanks>N[ kB]" on [s, end): stores the value (bytes for kB keys) in vals[i] for the key
 * it names. A line that names a key but is not in this form leaves it at -1: an unparsable line
 * is a value the kernel did not give us. */
static void scan_line(const char *s, const char *end, const ScanKey *keys, size_t n, int64_t *vals,
                      size_t *found)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(keys[i].name);
        if ((size_t)(end - s) <= len || memcmp(s, keys[i].name, len) != 0 || s[len] != ':')
            continue;
        if (vals[i] >= 0)
            return;

        const char *p = s + len + 1;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end || *p < '0' || *p > '9')
            return;
        uint64_t v = 0;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            unsigned d = (unsigned)(*p - '0');
            if (v > (UINT64_MAX - d) / 10)
                return;
            v = v * 10 + d;
        }
        if (keys[i].kib) {
            if (end - p < 3 || memcmp(p, " kB", 3) != 0)
                return;
            vals[i] = kib_to_bytes(v);
        } else {
            vals[i] = v > (uint64_t)INT64_MAX ? -1 : (int64_t)v;
        }
        if (vals[i] >= 0)
            (*found)++;
        return;
    }
}

/* Scans an open file for the keys, setting vals[i] to -1 for each key not seen. The file is read
 * through a fixed buffer a line at a time, so memory stays bounded whatever the kernel prints (a
 * status file's Groups line can run to hundreds of KiB), and reading stops as soon as every key
 * is found. Returns the raw -errno of read. */
static int scan_fd(int fd, const ScanKey *keys, size_t n, int64_t *vals)
{
    char buf[4096];
    size_t have = 0, found = 0;
    bool skipping = false;

    for (size_t i = 0; i < n; i++)
        vals[i] = -1;

    for (;;) {
        ssize_t k = read(fd, buf + have, sizeof(buf) - have);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0) {
            if (have > 0 && !skipping)
                scan_line(buf, buf + have, keys, n, vals, &found);
            return 0;
        }
        have += (size_t)k;

        char *s = buf, *nl;
        while ((nl = memchr(s, '\n', (size_t)(buf + have - s)))) {
            if (!skipping)
                scan_line(s, nl, keys, n, vals, &found);
            skipping = false;
            s = nl + 1;
            if (found == n)
                return 0;
        }

        /* A partial line stays for the next read; one that fills the whole buffer is longer
         * than any line we look for, so the rest of it is skipped. */
        size_t left = (size_t)(buf + have - s);
        if (left == sizeof(buf)) {
            skipping = true;
            have = 0;
        } else {
            memmove(buf, s, left);
            have = left;
        }
    }
}

/* open() of /proc/PID/<file>: the fd, or the raw -errno. */
static int open_proc_raw(pid_t pid, const char *file)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

/* scan_fd() of /proc/PID/<file>. Returns the raw -errno of open or read: the callers decide
 * which mean "gone". */
static int scan_proc_file(pid_t pid, const char *file, const ScanKey *keys, size_t n, int64_t *vals)
{
    _cleanup_(closep) int fd = open_proc_raw(pid, file);
    if (fd < 0) {
        for (size_t i = 0; i < n; i++)
            vals[i] = -1;
        return fd;
    }
    return scan_fd(fd, keys, n, vals);
}

static bool is_gone(int r)
{
    return r == -ENOENT || r == -ESRCH;
}

/* open_proc_raw(), with -ESRCH for every error that says the process is gone. */
static int open_proc(pid_t pid, const char *file)
{
    int fd = open_proc_raw(pid, file);
    return fd >= 0 || !is_gone(fd) ? fd : -ESRCH;
}

enum { ST_TGID, ST_UID, ST_VMSIZE, ST_VMHWM, ST_VMRSS, ST_RSSANON, ST_VMSWAP };
static const ScanKey status_keys[] = {
    [ST_TGID] = {"Tgid", false},    [ST_UID] = {"Uid", false},    [ST_VMSIZE] = {"VmSize", true},
    [ST_VMHWM] = {"VmHWM", true},   [ST_VMRSS] = {"VmRSS", true}, [ST_RSSANON] = {"RssAnon", true},
    [ST_VMSWAP] = {"VmSwap", true},
};
static const ScanKey rollup_keys[] = {{"Pss", true}};

int procstatus_parse_fd(int fd, ProcStatus *ret)
{
    int64_t st[ARRAY_SIZE(status_keys)];

    if (fd < 0 || !ret)
        return -EINVAL;
    int r = scan_fd(fd, status_keys, ARRAY_SIZE(status_keys), st);
    if (r < 0)
        return r;
    /* "Uid:" is followed by the real, effective, saved and filesystem uids: the scan stops at
     * the first, the real one, which is what the identity serves. */
    *ret = (ProcStatus){
        .tgid = st[ST_TGID],
        .uid = st[ST_UID],
        .mem =
            {
                .rss = st[ST_VMRSS],
                .vms = st[ST_VMSIZE],
                .anon = st[ST_RSSANON],
                .swap = st[ST_VMSWAP],
                .pss = -1,
                .peak_rss = st[ST_VMHWM],
            },
    };
    return 0;
}

int procinfo_status(pid_t pid, ProcStatus *ret)
{
    ProcStatus st;

    if (pid <= 0 || !ret)
        return -EINVAL;
    _cleanup_(closep) int fd = open_proc(pid, "status");
    if (fd < 0)
        return fd;
    int r = procstatus_parse_fd(fd, &st);
    if (r < 0)
        return is_gone(r) ? -ESRCH : r;
    /* /proc/TID resolves for any thread, but a thread is not a process. */
    if (st.tgid >= 0 && st.tgid != pid)
        return -ESRCH;
    *ret = st;
    return 0;
}

int procinfo_memory_status(ProcInfo *p, pid_t pid, ProcMemory *ret)
{
    ProcStatus st;

    if (!p || pid <= 0 || !ret)
        return -EINVAL;
    int r = procinfo_status(pid, &st);
    if (r < 0)
        return r;
    *ret = st.mem;
    return 0;
}

int procinfo_pss(pid_t pid, int64_t *ret)
{
    int64_t pss;
    int r = scan_proc_file(pid, "smaps_rollup", rollup_keys, ARRAY_SIZE(rollup_keys), &pss);
    /* Only a failed open says the process is gone: reading a zombie's rollup fails with ESRCH
     * after a successful open, and that is a PSS the kernel does not give, not a missing
     * process. Any other failure (EACCES, EPERM) leaves PSS at -1 too. */
    if (r == -ENOENT)
        return -ESRCH;
    *ret = r < 0 ? -1 : pss;
    return 0;
}

int procinfo_memory(ProcInfo *p, pid_t pid, ProcMemory *ret)
{
    ProcMemory m;
    int r = procinfo_memory_status(p, pid, &m);
    if (r < 0)
        return r;
    r = procinfo_pss(pid, &m.pss);
    if (r < 0)
        return r;
    *ret = m;
    return 0;
}

/* readlink() of /proc/PID/exe, grown until the link fits; NULL when it cannot be read
 * (a kernel thread, or no ptrace access). */
static char *read_exe(pid_t pid)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    for (size_t size = 256; size <= 65536; size *= 2) {
        char *buf = malloc(size);
        if (!buf)
            return NULL;
        ssize_t n = readlink(path, buf, size);
        if (n < 0) {
            free(buf);
            return NULL;
        }
        if ((size_t)n < size) {
            buf[n] = '\0';
            return buf;
        }
        free(buf);
    }
    return NULL;
}

/* Whether /proc/PID/cmdline is empty. 0 or 1, or -errno when it cannot be read. */
static int cmdline_empty(pid_t pid)
{
    char path[64], c;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t k;
    do
        k = read(fd, &c, 1);
    while (k < 0 && errno == EINTR);
    if (k < 0)
        return -errno;
    return k == 0;
}

/* Joins the arguments with spaces into *ret, NULL when that leaves nothing. */
static int join_cmdline(pid_t pid, char **v, char **ret)
{
    if (!v || !v[0]) {
        *ret = NULL;
        return 0;
    }

    if (strcmp(v[0], "-") == 0 && !v[1]) {
        int r = cmdline_empty(pid);
        if (is_gone(r))
            return -ESRCH;
        /* Empty, or unreadable: libproc2's "-" is then a placeholder, not an argument. */
        if (r != 0) {
            *ret = NULL;
            return 0;
        }
    }

    size_t len = 0;
    for (char **a = v; *a; a++)
        len += strlen(*a) + 1;
    if (len <= 1) {
        *ret = NULL;
        return 0;
    }

    char *s = malloc(len), *q = s;
    if (!s)
        return -ENOMEM;
    for (char **a = v; *a; a++) {
        if (a != v)
            *q++ = ' ';
        size_t l = strlen(*a);
        memcpy(q, *a, l);
        q += l;
    }
    *q = '\0';
    *ret = s;
    return 0;
}

void procidentity_done(ProcIdentity *id)
{
    if (!id)
        return;
    free(id->cmdline);
    id->cmdline = NULL;
    free(id->cmdline_redacted);
    id->cmdline_redacted = NULL;
    free(id->exe);
    id->exe = NULL;
}

int procidentity_copy(const ProcIdentity *src, ProcIdentity *ret)
{
    _cleanup_(procidentity_done) ProcIdentity id = *src;

    id.cmdline = id.cmdline_redacted = id.exe = NULL;
    if ((src->cmdline && !(id.cmdline = strdup(src->cmdline))) ||
        (src->cmdline_redacted && !(id.cmdline_redacted = strdup(src->cmdline_redacted))) ||
        (src->exe && !(id.exe = strdup(src->exe))))
        return -ENOMEM;
    *ret = id;
    id.cmdline = id.cmdline_redacted = id.exe = NULL;
    return 0;
}

/* Makes *s valid UTF-8 in a new buffer; NULL stays NULL. */
static int sanitize(char **s)
{
    if (!*s)
        return 0;
    size_t len = strlen(*s) * 3 + 1; /* every byte may become U+FFFD */
    char *clean = malloc(len);
    if (!clean)
        return -ENOMEM;
    utf8_sanitize(clean, len, *s);
    free(*s);
    *s = clean;
    return 0;
}

/* /proc/PID/comm: at most 15 bytes and a newline. */
static int read_comm(pid_t pid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = 0;
    if (buf[n - 1] == '\n')
        buf[n - 1] = 0;
    return 0;
}

int procinfo_identity(ProcInfo *p, pid_t pid, ProcIdentity *ret)
{
    struct pids_stack *s;
    int r;

    if (!p || pid <= 0 || !ret)
        return -EINVAL;

    r = select_one(p->identity, pid, &s);
    if (r < 0)
        return r;
    /* /proc/TID resolves for any thread, but a thread is not a process. */
    if (PIDS_VAL(ID_TGID, s_int, s, p->identity) != pid)
        return -ESRCH;

    _cleanup_(procidentity_done) ProcIdentity id = {
        .pid = pid,
        .start_ticks = PIDS_VAL(ID_TICS_BEGAN, ull_int, s, p->identity),
        .uid = PIDS_VAL(ID_RUID, u_int, s, p->identity),
        .threads = PIDS_VAL(ID_NLWP, s_int, s, p->identity),
    };
    id.start_time = procinfo_start_time(p, id.start_ticks);
    /* comm from /proc/PID/comm, not libproc2's PIDS_CMD, which turns every non-ASCII byte
     * into '?'. Text from the target is made valid UTF-8 here, once, for every consumer. */
    char comm[64];
    if (read_comm(pid, comm, sizeof(comm)) < 0) {
        const char *cmd = PIDS_VAL(ID_CMD, str, s, p->identity);
        snprintf(comm, sizeof(comm), "%s", cmd ? cmd : "");
    }
    utf8_sanitize(id.comm, sizeof(id.comm), comm);

    char **argv = PIDS_VAL(ID_CMDLINE_V, strv, s, p->identity);
    r = join_cmdline(pid, argv, &id.cmdline);
    if (r < 0)
        return r;
    /* Redacted from the vector, not the joined line: a value with blanks in it is one argument
     * and is hidden whole. */
    if (id.cmdline && !(id.cmdline_redacted = redact_argv((const char *const *)argv)))
        return -ENOMEM;
    r = sanitize(&id.cmdline);
    if (r < 0)
        return r;
    r = sanitize(&id.cmdline_redacted);
    if (r < 0)
        return r;
    id.exe = read_exe(pid);

    *ret = id;
    id.cmdline = id.cmdline_redacted = id.exe = NULL;
    return 0;
}

/* Stat fields (numbered as in proc(5)) the stamp is made of. */
enum {
    STAT_STATE = 3,
    STAT_NUM_THREADS = 20,
    STAT_STARTTIME = 22,
    STAT_STARTCODE = 26,
    STAT_STARTSTACK = 28,
    STAT_START_BRK = 47,
};

int procinfo_parse_stat(const char *buf, ProcStamp *ret, int *ret_threads)
{
    if (!buf || !ret)
        return -EINVAL;
    /* The comm (field 2) may hold any byte, ')' and blanks included: the fields start after
     * the last ')'. */
    const char *p = strrchr(buf, ')');
    if (!p)
        return -EIO;
    ProcStamp st = {0};
    long long threads = -1;
    p++;
    for (int field = STAT_STATE; field <= STAT_START_BRK; field++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return -EIO;
        if (field == STAT_STATE && (*p == 'Z' || *p == 'X'))
            return -ESRCH;
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (field == STAT_NUM_THREADS)
            threads = strtoll(p, &end, 10);
        else if (field == STAT_STARTTIME)
            st.start_ticks = v;
        else if (field == STAT_STARTCODE)
            st.start_code = v;
        else if (field == STAT_STARTSTACK)
            st.start_stack = v;
        else if (field == STAT_START_BRK)
            st.start_brk = v;
        p = field == STAT_STATE ? p + 1 : end;
    }
    if (threads < 0 || threads > INT_MAX)
        return -EIO;
    *ret = st;
    if (ret_threads)
        *ret_threads = (int)threads;
    return 0;
}

int procinfo_stamp_threads(pid_t pid, ProcStamp *ret, int *ret_threads)
{
    /* 52 fields of at most 20 digits and a comm of at most 64 bytes fit. */
    char path[64], buf[2048];
    ProcStamp st;
    int threads;

    if (pid <= 0 || !ret)
        return -EINVAL;
    _cleanup_(closep) int fd = open_proc(pid, "stat");
    if (fd < 0)
        return fd;
    ssize_t n;
    do
        n = read(fd, buf, sizeof(buf) - 1);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return is_gone(-errno) ? -ESRCH : -errno;
    buf[n] = 0;
    int r = procinfo_parse_stat(buf, &st, &threads);
    if (r < 0)
        return r;

    /* stat() follows the link to the executable itself, even once it is deleted on disk. Not
     * allowed (no ptrace access) or no executable (a kernel thread): 0, the same every time.
     * It is what tells an exec() of another executable when address space randomisation is off
     * (the stat fields then repeat), so each stamp makes this one syscall more. */
    struct stat sb;
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    if (stat(path, &sb) == 0) {
        st.exe_dev = sb.st_dev;
        st.exe_ino = sb.st_ino;
    }
    *ret = st;
    if (ret_threads)
        *ret_threads = threads;
    return 0;
}

int procinfo_stamp(pid_t pid, ProcStamp *ret)
{
    return procinfo_stamp_threads(pid, ret, NULL);
}

double procinfo_start_time(const ProcInfo *p, uint64_t start_ticks)
{
    return p->boot_time + (double)start_ticks / (double)p->clk_tck;
}

bool procstamp_same_process(const ProcStamp *a, const ProcStamp *b)
{
    return a->start_ticks == b->start_ticks;
}

bool procstamp_same_image(const ProcStamp *a, const ProcStamp *b)
{
    return procstamp_same_process(a, b) && a->exe_dev == b->exe_dev && a->exe_ino == b->exe_ino &&
           a->start_code == b->start_code && a->start_stack == b->start_stack &&
           a->start_brk == b->start_brk;
}

static const ScanKey tracer_keys[] = {{"TracerPid", false}};

int procinfo_tracer(pid_t tid, pid_t *ret)
{
    int64_t tracer;

    if (tid <= 0 || !ret)
        return -EINVAL;
    int r = scan_proc_file(tid, "status", tracer_keys, 1, &tracer);
    if (r < 0)
        return is_gone(r) ? -ESRCH : r;
    *ret = tracer > 0 ? (pid_t)tracer : 0;
    return 0;
}

int procinfo_tracer_any(pid_t pid, pid_t *ret)
{
    char path[64];

    if (pid <= 0 || !ret)
        return -EINVAL;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return is_gone(-errno) ? -ESRCH : -errno;
    struct dirent *de;
    pid_t found = 0;
    while (!found && (de = readdir(d))) {
        char *end;
        long tid = strtol(de->d_name, &end, 10);
        if (*end || tid <= 0)
            continue;
        char file[64];
        int64_t tracer;
        snprintf(file, sizeof(file), "task/%ld/status", tid);
        if (scan_proc_file(pid, file, tracer_keys, 1, &tracer) >= 0 && tracer > 0)
            found = (pid_t)tracer;
    }
    closedir(d);
    *ret = found;
    return 0;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

int procinfo_list(ProcInfo *p, pid_t **ret, size_t *ret_n)
{
    if (!p || !ret || !ret_n)
        return -EINVAL;

    errno = 0;
    struct pids_fetch *f = procps_pids_reap(p->list, PIDS_FETCH_TASKS_ONLY);
    if (!f)
        return libproc2_error();

    size_t n = f->counts->total > 0 ? (size_t)f->counts->total : 0;
    pid_t *v = malloc(MAX(n, (size_t)1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = PIDS_VAL(0, s_int, f->stacks[i], p->list);
    /* /proc is usually listed in pid order, but readdir() does not promise it. */
    qsort(v, n, sizeof(*v), cmp_pid);

    *ret = v;
    *ret_n = n;
    return 0;
}
