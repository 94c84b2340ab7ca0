/* snapshot: an immutable, reference-counted picture of every target at one moment, as plain
 * data: rendered documents and a small index, in one contiguous block of bytes.
 *
 * The sampler renders one per interval (metrics/snaprender.h) and publishes it; what serves
 * HTTP takes a reference and answers only from it. Nothing in here is a reader, target or
 * census type: the block can be written to a sealed memfd and mapped read-only by the
 * unprivileged listener process (snapshot_to_memfd / snapshot_from_fd), which never sees
 * anything else of the sampler. The three /metrics bodies are rendered once per snapshot and
 * gzipped on first demand, so a scrape costs a lookup and a copy to the socket.
 *
 * Ownership: a Snapshot owns its block (malloc'd, or a mapping) and its gzip bodies; every
 * accessor's result points into it and is valid while the caller holds a reference. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum SnapFormat {
    SNAP_JSON = 0,
    SNAP_PROMETHEUS,
    SNAP_OPENMETRICS,
    SNAP_NFORMATS,
} SnapFormat;

typedef struct SnapBody {
    const char *data;
    size_t len;
} SnapBody;

/* What a sample read, as the history (history/history.h) keeps it: plain numbers, each with a
 * bit in `read` when it was read at this sample (JSON null otherwise: never a made-up zero).
 * Sizes are in KiB, the unit the kernel gives them in (and pymalloc arenas are whole KiB).
 * `pss_kib` is set only at the samples that read smaps_rollup (every pss_interval), not the
 * value carried between reads; `objects_total` is the total of the latest census, and the
 * history records it once, at the first sample after the census (see census_at). */
enum {
    SNAP_READ_RSS = 1u << 0,
    SNAP_READ_PSS = 1u << 1,
    SNAP_READ_ARENA = 1u << 2,
    SNAP_READ_BLOCKS = 1u << 3,
    SNAP_READ_GC = 1u << 4, /* gc_collections[0..2] */
    SNAP_READ_OBJECTS = 1u << 5,
    SNAP_READ_ALL = (1u << 6) - 1,
};

typedef struct SnapSample {
    double t;             /* sampled_at, epoch seconds; 0: no sample to record */
    uint64_t start_ticks; /* with the pid, the identity of the process (a reused pid differs) */
    uint32_t read;        /* SNAP_READ_* */
    uint32_t pad;
    uint64_t rss_kib, pss_kib, arena_kib, allocated_blocks, objects_total;
    uint64_t gc_collections[3];
} SnapSample;

/* What the daemon is configured with that the listener needs (it reads no config file): sent
 * with every snapshot, so a reload reaches it with the next one. */
typedef struct SnapSettings {
    double interval;             /* seconds between samples */
    double history_seconds;      /* how much history to keep per target; 0: none */
    uint64_t history_max_memory; /* bytes all history rings together may use */
} SnapSettings;

/* One watched process, as the HTTP side needs it. Strings are not NUL-terminated. */
typedef struct SnapProc {
    pid_t pid;
    bool readable;         /* its status is "ok" */
    SnapBody process;      /* the PROCESS JSON object */
    bool have_census;      /* census_* below are set */
    double census_at;      /* epoch seconds the latest census was taken */
    SnapBody census_error; /* why the latest census attempt failed ("" when it did not) */
    bool have_growth;      /* two censuses: growth is set */
    SnapBody growth;       /* the growth document */
    SnapSample sample;     /* what this sample read, for the history */
} SnapProc;

typedef struct Snapshot Snapshot;

/* ---- building (the sampler side) --------------------------------------------------------- */

typedef struct SnapWriter SnapWriter;

/* A writer for a snapshot taken at taken_at (epoch seconds). The caller owns *ret and either
 * finishes it (snapwriter_finish) or frees it. */
int snapwriter_new(double taken_at, SnapWriter **ret);
SnapWriter *snapwriter_free(SnapWriter *w);
/* Sets a /metrics body (copied). */
void snapwriter_body(SnapWriter *w, SnapFormat f, const char *data, size_t len);
/* Sets the JSON /metrics body: a head, the PROCESS objects (of pids[i]) joined by commas, and
 * a tail. The same bytes serve /api/v1/processes and each /api/v1/processes/PID without a
 * second copy. Called once, before the per-process calls below, which take an index into
 * these processes. */
void snapwriter_json(SnapWriter *w, const char *head, const pid_t *pids,
                     const char *const *processes, const size_t *lens, size_t n, const char *tail);
/* Adds the census of the process at index i of the processes given to snapwriter_json: the
 * census object rendered as `head` (ending in `"types":[`), the type items (largest count
 * first) and `]}`, so that ?top=N is a prefix of the items. */
void snapwriter_census(SnapWriter *w, size_t i, double at, const char *head,
                       const char *const *items, const size_t *lens, size_t nitems);
void snapwriter_readable(SnapWriter *w, size_t i, bool readable);
void snapwriter_census_error(SnapWriter *w, size_t i, const char *census_error);
void snapwriter_growth(SnapWriter *w, size_t i, const char *growth, size_t len);
/* Sets the sample record of the process at index i (copied). */
void snapwriter_sample(SnapWriter *w, size_t i, const SnapSample *sample);
/* Sets the settings the snapshot carries (copied; all zero until set). */
void snapwriter_settings(SnapWriter *w, const SnapSettings *settings);
/* Lays the block out and returns it as a snapshot with one reference (the writer is freed in
 * every case). -ENOMEM when any allocation along the way failed. */
int snapwriter_finish(SnapWriter *w, Snapshot **ret);

/* ---- sharing with the listener process ---------------------------------------------------- */

/* Writes the block to a new memfd, sealed against every change (shrink, grow, write, and new
 * seals), so the receiver may map it and trust that it never changes. The caller owns *ret_fd
 * (O_CLOEXEC). */
int snapshot_to_memfd(const Snapshot *s, int *ret_fd);
/* A snapshot from a memfd made by snapshot_to_memfd: the seals are checked, the block is
 * mapped read-only and its index validated (every span inside the block). Takes ownership of
 * fd (closed in every case). -EINVAL for a block that does not validate, -EPERM for missing
 * seals. */
int snapshot_from_fd(int fd, Snapshot **ret);

/* ---- reading (the HTTP side) -------------------------------------------------------------- */

Snapshot *snapshot_ref(Snapshot *s);
/* Drops a reference; the last one frees everything. NULL-safe, returns NULL. */
Snapshot *snapshot_unref(Snapshot *s);
double snapshot_taken_at(const Snapshot *s);
SnapSettings snapshot_settings(const Snapshot *s);
size_t snapshot_size(const Snapshot *s);
SnapBody snapshot_body(const Snapshot *s, SnapFormat f);
/* The gzip body of a format, compressed on first use. NULL if compression failed. */
const SnapBody *snapshot_gzip(Snapshot *s, SnapFormat f);
/* {"processes": [...]}: a malloc'd string the caller frees (its length in *ret_len), or NULL. */
char *snapshot_processes(const Snapshot *s, size_t *ret_len);
/* The process with this pid: true and *ret filled, or false. */
bool snapshot_find(const Snapshot *s, pid_t pid, SnapProc *ret);
size_t snapshot_nprocs(const Snapshot *s);
/* The process at index i (0 .. snapshot_nprocs() - 1): true and *ret filled, or false. */
bool snapshot_proc(const Snapshot *s, size_t i, SnapProc *ret);
/* The census document of a process that has one, with at most top types (0: all): a malloc'd
 * string the caller frees, or NULL on allocation failure. */
char *snapshot_census(const Snapshot *s, pid_t pid, size_t top, size_t *ret_len);

/* ---- where the latest snapshot lives ------------------------------------------------------ */

typedef struct SnapshotHolder {
    pthread_mutex_t lock;
    Snapshot *cur;
    double swapped_at; /* monotonic seconds of the latest holder_swap */
} SnapshotHolder;

void holder_init(SnapshotHolder *h);
void holder_done(SnapshotHolder *h);
/* Publishes s (taking over the caller's reference) and drops the previous one. */
void holder_swap(SnapshotHolder *h, Snapshot *s);
/* A new reference to the latest snapshot (NULL before the first); the caller unrefs it. */
Snapshot *holder_get(SnapshotHolder *h);
/* How long ago (monotonic seconds) the latest snapshot was published; -1 before the first. */
double holder_age(SnapshotHolder *h);
