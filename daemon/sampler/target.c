#include "sampler/target.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/utf8.h"

struct Target {
    pid_t pid;
    bool have_stamp;
    ProcStamp stamp;    /* the process and program image the last sample read */
    double image_since; /* monotonic seconds: when that image started, or was first seen */
    bool was_python;    /* the process was a readable Python at some sample */
    /* The identity as procinfo_identity() last read it (names_stamp the stamp before it,
     * names_mono when): its names (comm, cmdline, exe) are served until the next read, at a new
     * stamp or once they are TARGET_NAMES_SECONDS old; the rest is read at every sample. */
    bool have_names;
    ProcIdentity names;
    ProcStamp names_stamp;
    double names_mono;
    /* The census's own: it runs on another thread than sampling, so it reads through its own
     * reader and Rmem, and checks the identity it is given, all made by target_census_prepare()
     * from what sampling found. */
    ProcStamp census_stamp;
    CensusHints *census_hints; /* what the last census learnt for the next */
    PyReader *census_reader;
    Rmem *census_rmem;
    unsigned interp_gen, census_gen; /* forget_interpreter() bumps the first: hints are stale */
    Rmem *rmem;
    bool located;
    PyLoc loc;
    PyReader *reader;
    /* Polls of the `collecting` flag since the last sample, and how many found it set; and the
     * same per sample for the last TARGET_BUSY_WINDOW samples, a ring. */
    unsigned polls, busy;
    unsigned ring_polls[TARGET_BUSY_WINDOW], ring_busy[TARGET_BUSY_WINDOW];
    unsigned ring_at;
    /* The GC's state at the last good sample, and whether it stayed idle from the sample before
     * (target_gc_quiet()): polled TARGET_QUIET_POLL_EVERY times less often while it does. */
    GcMark gc_mark;
    bool gc_quiet;
    double poll_due; /* clock_mono() of the next poll; 0: at the next chance */
    /* PSS at its own cadence (target_set_pss_policy): the last read and when it was made. */
    double pss_interval;
    uint64_t pss_max_rss;
    int64_t pss;
    double pss_at, pss_mono;
    double read_budget; /* seconds the interpreter-state read of a sample may take; 0: no limit */
    /* Who the process is, read once per program image (whois_done goes false with a new one);
     * the ancestor once it is known to be Python (a program that is not is dropped anyway). */
    bool whois_done;
    bool have_cgroup;
    WhoisCgroup cgroup;
    pid_t ns_pid;
    bool ancestor_done;
    pid_t top_ancestor;
    char top_comm[64];
    char group_tpl[WHOIS_TEMPLATE_MAX + 1];
};

const char *target_status_name(TargetStatus s)
{
    static const char *const names[] = {"ok", "unsupported", "denied", "gone", "error"};
    return (size_t)s < ARRAY_SIZE(names) ? names[s] : "error";
}

void targetsample_done(TargetSample *s)
{
    s->census = census_free(s->census);
    s->prev_census = census_free(s->prev_census);
    if (s->have_identity)
        procidentity_done(&s->id);
    s->have_identity = false;
}

bool targetsample_maybe_python(const TargetSample *s)
{
    if (s->have_python || s->settling)
        return true;
    if (s->status != TARGET_DENIED || !s->have_identity)
        return false;
    return strstr(s->id.comm, "python") || (s->id.exe && strstr(s->id.exe, "python"));
}

int target_new(pid_t pid, Target **ret)
{
    Target *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    int k = rmem_open(pid, &t->rmem);
    if (k < 0) {
        free(t);
        return k;
    }
    t->pid = pid;
    t->pss = -1;
    snprintf(t->group_tpl, sizeof(t->group_tpl), "%s", WHOIS_TEMPLATE_DEFAULT);
    t->pss_interval = -1; /* every sample, until a policy is set */
    *ret = t;
    return 0;
}

Target *target_free(Target *t)
{
    if (!t)
        return NULL;
    pyreader_free(t->reader);
    pyreader_free(t->census_reader);
    rmem_free(t->rmem);
    rmem_free(t->census_rmem);
    censushints_free(t->census_hints);
    procidentity_done(&t->names);
    free(t);
    return NULL;
}

/* Whether the pid still names the process and program image the last sample read. */
static int check_identity(pid_t pid, const ProcStamp *stamp, char *err, size_t errlen)
{
    ProcStamp now;
    if (procinfo_stamp(pid, &now) < 0) {
        snprintf(err, errlen, "process %d has exited", pid);
        return -ESRCH;
    }
    if (!procstamp_same_process(stamp, &now)) {
        snprintf(err, errlen,
                 "process %d has exited and its pid was reused by another process; census "
                 "refused (nothing of the new process was stopped or read)",
                 pid);
        return -ESRCH;
    }
    if (!procstamp_same_image(stamp, &now)) {
        snprintf(err, errlen,
                 "process %d exec()ed another program since it was last sampled; census refused "
                 "until the new program is sampled",
                 pid);
        return -ESTALE;
    }
    return 0;
}

/* /proc/PID/comm of the tracer, for the on-call who has to find it. */
static void comm_of(pid_t pid, char *buf, size_t size)
{
    char path[64], raw[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    snprintf(buf, size, "?");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, raw, sizeof(raw) - 1);
    close(fd);
    if (n <= 0)
        return;
    raw[n] = 0;
    raw[strcspn(raw, "\n")] = 0;
    utf8_sanitize(buf, size, raw);
}

/* A process has one tracer at a time: one that a debugger or strace holds cannot be stopped
 * for a census, and must not be taken from them. Only the leader is looked at before a census
 * (one file); all threads when stopping one was refused. A thread of pymemd's own (a thread the
 * previous census could not let go yet) does not count: the next freeze takes it back. */
static int check_tracer(pid_t pid, bool every_thread, char *err, size_t errlen)
{
    pid_t tracer = 0;
    int k = every_thread ? procinfo_tracer_any(pid, &tracer) : procinfo_tracer(pid, &tracer);
    if (k < 0 || tracer <= 0)
        return 0;
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d", tracer);
    if (access(path, F_OK) == 0)
        return 0;
    char name[64];
    comm_of(tracer, name, sizeof(name));
    snprintf(err, errlen,
             "traced by pid %d (%s): census refused (a process has one tracer at a time, and "
             "stopping it for a census needs to be that tracer; its counters are still read)",
             tracer, name);
    return -EBUSY;
}

int target_census_prepare(Target *t)
{
    t->census_reader = pyreader_free(t->census_reader);
    if (!t->reader || !t->have_stamp)
        return -EINVAL;
    t->census_stamp = t->stamp;
    if (t->census_gen != t->interp_gen) {
        /* Another program image, or one found afresh: what the last census learnt is void. */
        t->census_hints = censushints_free(t->census_hints);
        t->census_gen = t->interp_gen;
    }
    int k = 0;
    if (!t->census_rmem)
        k = rmem_open(t->pid, &t->census_rmem);
    if (k >= 0)
        k = pyreader_census_copy(t->reader, &t->census_reader);
    return k;
}

/* What a census and a referrers walk check before anything is stopped: the last sample may be
 * an interval old, and a pid reused or an exec() since must not get the process stopped, nor its
 * memory walked, as the one watched; and a process another tracer holds is not taken. */
static int census_precheck(Target *t, CensusMode mode, char *err, size_t errlen)
{
    if (!t->census_reader || !t->census_rmem) {
        snprintf(err, errlen, "not a readable Python process");
        return -EINVAL;
    }
    int k = check_identity(t->pid, &t->census_stamp, err, errlen);
    if (k >= 0 && mode == CENSUS_FREEZE)
        k = check_tracer(t->pid, false, err, errlen);
    return k;
}

/* Turns what the walk returned (k) into its reason: a tracer that got in first, which process
 * the pid names now; and a walk of a running process counts only if it is still the one
 * watched, since it could have changed under the walk. */
static int census_postcheck(Target *t, CensusMode mode, int k, char *err, size_t errlen)
{
    if (mode == CENSUS_FREEZE && (k == -EBUSY || k == -EPERM)) {
        int traced = check_tracer(t->pid, true, err, errlen);
        k = traced < 0 ? traced : k;
    }
    if (k == -ESTALE)
        check_identity(t->pid, &t->census_stamp, err, errlen); /* say which: reused, or exec()ed */
    else if (k >= 0 && mode == CENSUS_NONBLOCKING)
        k = check_identity(t->pid, &t->census_stamp, err, errlen);
    return k;
}

int target_census(Target *t, CensusMode mode, double max_pause, Census **ret, char *err,
                  size_t errlen)
{
    int k = census_precheck(t, mode, err, errlen);
    if (k < 0)
        return k;
    Census *c = NULL;
    k = census_take(t->census_reader, t->census_rmem, t->pid, &t->census_stamp, mode, max_pause,
                    &t->census_hints, &c, err, errlen);
    if ((k = census_postcheck(t, mode, k, err, errlen)) < 0) {
        census_free(c);
        return k;
    }
    *ret = c;
    return 0;
}

void target_set_read_budget(Target *t, double seconds)
{
    t->read_budget = seconds;
}

void target_set_group_template(Target *t, const char *tpl)
{
    snprintf(t->group_tpl, sizeof(t->group_tpl), "%s", tpl ? tpl : WHOIS_TEMPLATE_DEFAULT);
}

void target_set_pss_policy(Target *t, double interval, uint64_t max_rss)
{
    t->pss_interval = interval;
    t->pss_max_rss = max_rss;
}

/* Fills s->mem.pss by the policy: a fresh read when due, else the last one with its time. */
static void sample_pss(Target *t, TargetSample *s)
{
    s->mem.pss = -1;
    if (t->pss_interval == 0) {
        snprintf(s->pss_error, sizeof(s->pss_error), "not read: pss_interval is 0");
        return;
    }
    if (t->pss_max_rss && s->mem.rss >= 0 && (uint64_t)s->mem.rss > t->pss_max_rss) {
        /* A value from when the process was smaller would mislead more than none. */
        t->pss = -1;
        t->pss_at = 0;
        snprintf(s->pss_error, sizeof(s->pss_error),
                 "not read: RSS (%.0f MiB) is above pss_max_rss (%.0f MiB), and reading "
                 "smaps_rollup would stall the process while the kernel walks its page tables",
                 (double)s->mem.rss / 1048576.0, (double)t->pss_max_rss / 1048576.0);
        return;
    }
    double now = clock_mono();
    if (t->pss_at == 0 || t->pss_interval < 0 || now - t->pss_mono >= t->pss_interval) {
        int64_t v = -1;
        procinfo_pss(t->pid, &v); /* a vanished process shows in the next identity read */
        t->pss = v;
        t->pss_at = clock_real();
        t->pss_mono = now;
    }
    s->mem.pss = t->pss;
    if (t->pss >= 0)
        s->pss_at = t->pss_at;
    else
        snprintf(s->pss_error, sizeof(s->pss_error),
                 "/proc/%d/smaps_rollup is not readable (needs ptrace access)", t->pid);
}

void target_census_taken(Target *t, const Census *c)
{
    /* The census ran on its own reader: the sampling one learns the length of the permanent list
     * it walked, unless the interpreter was found afresh meanwhile (another program image). */
    if (t->reader && c && t->census_gen == t->interp_gen)
        pyreader_note_frozen(t->reader, c->generation[3], c->permanent_first, c->permanent_last,
                             c->permanent_at);
}

int target_referrers(Target *t, const char *type, CensusMode mode, double max_pause, Refs **ret,
                     char *err, size_t errlen)
{
    int k = census_precheck(t, mode, err, errlen);
    if (k < 0)
        return k;
    Refs *x = NULL;
    k = refs_take(t->census_reader, t->census_rmem, t->pid, &t->census_stamp, type, mode, max_pause,
                  &t->census_hints, &x, err, errlen);
    if ((k = census_postcheck(t, mode, k, err, errlen)) < 0) {
        refs_free(x);
        return k;
    }
    *ret = x;
    return 0;
}

GcMark target_gc_mark(const PySample *py)
{
    GcMark m = {.known = true, .collecting = py->collecting};
    for (unsigned i = 0; i < py->ngenerations && i < PYREAD_MAX_GENERATIONS; i++) {
        if (py->gen[i].collections < 0)
            return (GcMark){0}; /* not counted by this version: nothing can be concluded */
        m.collections += (uint64_t)py->gen[i].collections;
    }
    return m;
}

bool target_gc_quiet(GcMark before, GcMark after)
{
    /* A collection that ran in between either finished (and was counted) or is still running
     * at `after`; one running at `before` finishes later, perhaps uncounted yet. */
    return before.known && after.known && !before.collecting && !after.collecting &&
           before.collections == after.collections;
}

double target_poll_gc(Target *t, double now, double interval)
{
    if (now < t->poll_due)
        return t->poll_due;
    /* While the GC stays idle a poll stands for the TARGET_QUIET_POLL_EVERY it replaces: the
     * estimate stays a share of time, and a collection in a quiet stretch still counts, with
     * that weight, if a poll lands in it. */
    unsigned weight = t->gc_quiet ? TARGET_QUIET_POLL_EVERY : 1;
    t->poll_due = now + weight * interval;
    bool collecting;
    if (!t->reader || pyreader_poll_collecting(t->reader, t->rmem, &collecting) < 0)
        return t->poll_due;
    t->polls += weight;
    t->busy += collecting ? weight : 0;
    return t->poll_due;
}

pid_t target_pid(const Target *t)
{
    return t->pid;
}

uint64_t target_start_ticks(const Target *t)
{
    return t->have_stamp ? t->stamp.start_ticks : 0;
}

/* Turns an -errno from reading the target into its status and a sentence for the on-call. */
static void set_error(TargetSample *s, int err, const char *what)
{
    switch (err) {
    case -ESRCH:
    case -ENOENT:
        s->status = TARGET_GONE;
        snprintf(s->error, sizeof(s->error), "process %d has exited", s->pid);
        break;
    case -EPERM:
    case -EACCES:
        s->status = TARGET_DENIED;
        snprintf(s->error, sizeof(s->error),
                 "not allowed to read process %d (%s): run pymemd as root, as the target's user, "
                 "or with CAP_SYS_PTRACE (and check kernel.yama.ptrace_scope)",
                 s->pid, what);
        break;
    case -ETIMEDOUT:
        s->status = TARGET_ERROR;
        snprintf(s->error, sizeof(s->error),
                 "abandoned: %s took longer than this sample's budget; tried again later, with "
                 "back-off, so that the other targets stay fresh",
                 what);
        break;
    case -EBUSY:
        s->status = TARGET_ERROR;
        snprintf(s->error, sizeof(s->error),
                 "the interpreter is starting up or shutting down; not sampled");
        break;
    default:
        s->status = TARGET_ERROR;
        snprintf(s->error, sizeof(s->error),
                 "%s: %s (the target changed while being read; "
                 "retried on the next sample)",
                 what, strerror(-err));
        break;
    }
}

static void forget_interpreter(Target *t)
{
    t->ancestor_done = false;
    t->reader = pyreader_free(t->reader);
    t->interp_gen++; /* the census hints go at the next target_census_prepare() */
    t->located = false;
}

/* Whether what the interpreter was located as is final. Located while the image settles, it
 * may not be: a runtime not set up yet does not match its layout table ("unsupported"), a
 * libpython not mapped yet is "not Python", and a version read before the interpreter fills
 * in its own version string is inexact. */
static bool located_final(const Target *t, bool settling)
{
    return !settling || (t->loc.status == PYLOC_OK && t->loc.version_exact);
}

static void sample_python(Target *t, PyElfCache *cache, bool force_frozen, TargetSample *s)
{
    int k;
    if (t->located && (!located_final(t, s->settling) || pyloc_outdated(&t->loc)))
        forget_interpreter(t);
    if (!t->located) {
        k = pyloc_locate(cache, t->pid, t->rmem, &t->loc);
        if (k < 0) {
            set_error(s, k, "locating the interpreter");
            return;
        }
        t->located = true;
        if (t->loc.status == PYLOC_OK && (k = pyreader_new(&t->loc, &t->reader)) < 0) {
            set_error(s, k, "creating a reader");
            return;
        }
    }
    const PyLoc *loc = &t->loc;
    if (!t->ancestor_done && loc->status == PYLOC_OK) {
        /* Once per located interpreter: its parents' stat and exe are read, not sampled. */
        t->ancestor_done = true;
        t->top_ancestor = t->pid;
        t->top_comm[0] = 0;
        pid_t top;
        if (whois_top_ancestor(t->pid, &top) >= 0 && top != t->pid &&
            whois_comm(top, t->top_comm, sizeof(t->top_comm)) >= 0)
            t->top_ancestor = top;
    }
    if (loc->status != PYLOC_NOT_PYTHON && loc->hexversion) {
        s->have_python = true;
        snprintf(s->version, sizeof(s->version), "%s", loc->version);
        s->hexversion = loc->hexversion;
        s->version_exact = loc->version_exact;
        s->shared = loc->shared;
    }
    if (loc->status != PYLOC_OK) {
        s->status = loc->status == PYLOC_DENIED ? TARGET_DENIED : TARGET_UNSUPPORTED;
        snprintf(s->error, sizeof(s->error), "%s", loc->reason);
        /* Only a process known for Python is waited for: every program starting up would
         * otherwise be watched for seconds. */
        s->settling = s->settling && (t->was_python || s->have_python);
        return;
    }
    /* The budget covers the read of the interpreter's state, not finding the interpreter
     * (ELF files, once per process). */
    if (t->read_budget > 0)
        rmem_set_deadline(t->rmem, clock_mono() + t->read_budget);
    k = pyreader_sample(t->reader, t->rmem, clock_mono(), force_frozen, &s->py);
    if (k == -EAGAIN)
        k = pyreader_sample(t->reader, t->rmem, clock_mono(), force_frozen, &s->py);
    rmem_set_deadline(t->rmem, 0);
    if (k < 0) {
        set_error(s, k, "reading the interpreter state");
        /* Structures that no longer hold together may be a new program image (exec() of the
         * same executable): find the interpreter afresh on the next try. */
        if (k == -EFAULT || k == -EIO)
            forget_interpreter(t);
        return;
    }
    s->have_py = true;
    t->was_python = true;
    /* Free-threaded builds count allocated blocks but have no arenas: the reason goes too, and
     * why the blocks were not counted at this sample when they were not. */
    if (!s->py.pymalloc_ok || s->py.arenas < 0)
        snprintf(s->pymalloc_error, sizeof(s->pymalloc_error), "%s%s%s",
                 loc->obmalloc_reason[0] ? loc->obmalloc_reason : "pymalloc counters not readable",
                 s->py.blocks_reason[0] ? "; " : "", s->py.blocks_reason);
}

/* Takes in the stamp of a new sample: a new program image (exec() in place keeps the pid and
 * the start time) means everything learnt of the old one goes. */
static void new_stamp(Target *t, const ProcStamp *st, const ProcIdentity *id, TargetSample *s)
{
    if (!t->have_stamp) {
        /* Its age is the process's, which the start time tells. */
        t->image_since = clock_mono() - fmax(0.0, clock_real() - id->start_time);
    } else if (!procstamp_same_image(&t->stamp, st)) {
        forget_interpreter(t);
        t->whois_done = false;
        t->image_since = clock_mono();
        s->new_image = true;
    }
    t->stamp = *st;
    t->have_stamp = true;
    s->settling = clock_mono() - t->image_since < TARGET_SETTLE_SECONDS;
}

/* The cgroup and namespace pid of a new program image: a process is moved into its container's
 * cgroup and namespaces before it execs what runs there. */
static void read_whois(Target *t)
{
    if (t->whois_done)
        return;
    t->whois_done = true;
    t->have_cgroup = whois_read_cgroup(t->pid, &t->cgroup) >= 0;
    if (whois_ns_pid(t->pid, &t->ns_pid) < 0)
        t->ns_pid = 0;
}

/* The last part of a path ("" for none). */
static const char *base_name(const char *path)
{
    if (!path)
        return "";
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void fill_whois(const Target *t, TargetSample *s)
{
    s->have_cgroup = t->have_cgroup;
    if (t->have_cgroup)
        s->cgroup = t->cgroup;
    s->ns_pid = t->ns_pid;
    s->top_ancestor = t->ancestor_done ? t->top_ancestor : 0;
    const char *top = t->ancestor_done && t->top_comm[0] ? t->top_comm : s->id.comm;
    WhoisFields f = {
        .comm = s->id.comm,
        .exe_base = base_name(s->id.exe),
        .top_python_ancestor = top,
        .unit = t->have_cgroup ? t->cgroup.unit : "",
        .container_id = t->have_cgroup ? t->cgroup.container_id : "",
        .pod_uid = t->have_cgroup ? t->cgroup.pod_uid : "",
    };
    whois_template_expand(t->group_tpl, &f, s->group, sizeof(s->group));
}

/* The identity of this sample into *ret: the names from procinfo_identity() (libproc2), read
 * again only for a new stamp (another process or program image) or once TARGET_NAMES_SECONDS
 * old, since only a rename (prctl(PR_SET_NAME), setproctitle) changes them in between and reading
 * them costs five files; the start time, thread count and uid are this sample's own. */
static int sample_identity(Target *t, ProcInfo *pi, const ProcStamp *stamp, int threads,
                           const ProcStatus *st, ProcIdentity *ret)
{
    double now = clock_mono();
    if (!t->have_names || !procstamp_same_image(&t->names_stamp, stamp) ||
        now - t->names_mono >= TARGET_NAMES_SECONDS) {
        ProcIdentity id;
        int k = procinfo_identity(pi, t->pid, &id);
        if (k < 0)
            return k;
        procidentity_done(&t->names);
        t->names = id;
        t->names_stamp = *stamp;
        t->names_mono = now;
        t->have_names = true;
    }
    ProcIdentity id;
    int k = procidentity_copy(&t->names, &id);
    if (k < 0)
        return k;
    id.start_ticks = stamp->start_ticks;
    id.start_time = procinfo_start_time(pi, stamp->start_ticks);
    id.threads = threads;
    if (st->uid >= 0)
        id.uid = (uid_t)st->uid;
    *ret = id;
    return 0;
}

void target_sample(Target *t, PyElfCache *cache, ProcInfo *pi, bool force_frozen, TargetSample *ret)
{
    double t0 = clock_mono();
    TargetSample s = {.pid = t->pid, .status = TARGET_OK, .busy_ratio = NAN};
    t->ring_polls[t->ring_at] = t->polls;
    t->ring_busy[t->ring_at] = t->busy;
    t->ring_at = (t->ring_at + 1) % TARGET_BUSY_WINDOW;
    t->polls = t->busy = 0;
    unsigned polls = 0, busy = 0;
    for (unsigned i = 0; i < TARGET_BUSY_WINDOW; i++) {
        polls += t->ring_polls[i];
        busy += t->ring_busy[i];
    }
    if (polls > 0)
        s.busy_ratio = (double)busy / polls;
    s.sampled_at = clock_real();

    /* The stamp is read before everything else and again after: when both agree, all read in
     * between (identity, memory, the interpreter) is of one process and one program image.
     * Each /proc file is read once: stat for the stamp and the thread count, status for the
     * memory and the uid (sample_identity()). */
    ProcStamp before, after;
    ProcStatus st;
    int threads;
    int k = procinfo_stamp_threads(t->pid, &before, &threads);
    if (k >= 0)
        k = procinfo_status(t->pid, &st);
    if (k >= 0)
        k = sample_identity(t, pi, &before, threads, &st, &s.id);
    if (k < 0) {
        set_error(&s, k, "reading /proc");
        goto done;
    }
    s.have_identity = true;
    if (t->have_stamp && !procstamp_same_process(&t->stamp, &before)) {
        /* Same pid, another process: the one this target watched is gone. */
        s.status = TARGET_GONE;
        snprintf(s.error, sizeof(s.error), "process %d has exited (its pid was reused)", t->pid);
        goto done;
    }
    new_stamp(t, &before, &s.id, &s);
    read_whois(t);

    s.mem = st.mem;
    s.have_memory = true;
    sample_pss(t, &s);
    sample_python(t, cache, force_frozen, &s);
    if (s.status == TARGET_OK && s.pymalloc_error[0])
        snprintf(s.error, sizeof(s.error), "pymalloc: %s", s.pymalloc_error);
    if (s.status == TARGET_OK && s.have_py && s.py.frozen_reason[0]) {
        size_t n = strlen(s.error);
        snprintf(s.error + n, sizeof(s.error) - n, "%s%s", n ? "; " : "", s.py.frozen_reason);
    }

    k = procinfo_stamp(t->pid, &after);
    if (k < 0) {
        /* Gone by the end of the read: the pid may have named another process for part of it
         * (a short-lived one, reaped already), whose interpreter the read may have found. */
        s.have_py = s.have_python = s.have_memory = false;
        set_error(&s, k, "reading /proc");
    } else if (!procstamp_same_image(&before, &after)) {
        /* exec() while being read: what was read may be of either image, or of both. */
        s.have_py = s.have_python = s.have_memory = false;
        if (!procstamp_same_process(&before, &after)) {
            s.status = TARGET_GONE;
            snprintf(s.error, sizeof(s.error), "process %d has exited (its pid was reused)",
                     t->pid);
        } else {
            s.status = TARGET_ERROR;
            snprintf(s.error, sizeof(s.error),
                     "process %d exec()ed another program while being read; read again at the "
                     "next sample",
                     t->pid);
            new_stamp(t, &after, &s.id, &s);
        }
    }

done:
    /* A pid that names another process now: what was found of the old one is not its. */
    if (s.have_identity && s.status != TARGET_GONE)
        fill_whois(t, &s);
    GcMark mark = s.status == TARGET_OK && s.have_py ? target_gc_mark(&s.py) : (GcMark){0};
    t->gc_quiet = target_gc_quiet(t->gc_mark, mark);
    t->gc_mark = mark;
    if (!t->gc_quiet)
        t->poll_due = 0; /* a collection ran, or nothing is known: polled at the full rate now */
    s.sample_seconds = clock_mono() - t0;
    *ret = s;
}
