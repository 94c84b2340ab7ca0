/* snapshot: an immutable, reference-counted picture of every target at one moment.
 *
 * The sampler builds one per interval and swaps it into a SnapshotHolder; HTTP handlers take a
 * reference and render only from it, never from live sampler state. The three /metrics bodies
 * are rendered once per snapshot, and gzipped on first demand, so a scrape costs a lookup and
 * a copy to the socket. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "metrics/json.h"
#include "sampler/target.h"

typedef enum SnapFormat {
    SNAP_JSON = 0,
    SNAP_PROMETHEUS,
    SNAP_OPENMETRICS,
    SNAP_NFORMATS,
} SnapFormat;

typedef struct SnapBody {
    char *data;
    size_t len;
} SnapBody;

typedef struct Snapshot {
    atomic_int refs;
    double taken_at;
    TargetSample *samples; /* owned */
    size_t n;
    SnapBody body[SNAP_NFORMATS];
    /* gzip versions, made on first request under gz_lock. */
    pthread_mutex_t gz_lock;
    SnapBody gz[SNAP_NFORMATS];
    bool gz_failed[SNAP_NFORMATS];
} Snapshot;

/* Takes ownership of samples[0..n) (freed with the snapshot) and renders the bodies. Returns a
 * snapshot with one reference, or NULL on allocation failure (samples are freed then too). */
Snapshot *snapshot_new(const JsonDaemonInfo *info, TargetSample *samples, size_t n);
Snapshot *snapshot_ref(Snapshot *s);
void snapshot_unref(Snapshot *s);

/* The gzip body of a format, compressed on first use. NULL if compression failed. Valid while
 * the caller holds a reference. */
const SnapBody *snapshot_gzip(Snapshot *s, SnapFormat f);

/* The sample of a pid, or NULL. */
const TargetSample *snapshot_find(const Snapshot *s, pid_t pid);

/* Where the latest snapshot lives. */
typedef struct SnapshotHolder {
    pthread_mutex_t lock;
    Snapshot *cur;
} SnapshotHolder;

void holder_init(SnapshotHolder *h);
void holder_done(SnapshotHolder *h);
/* Publishes s (taking over the caller's reference) and drops the previous one. */
void holder_swap(SnapshotHolder *h, Snapshot *s);
/* A new reference to the latest snapshot (NULL before the first); the caller unrefs it. */
Snapshot *holder_get(SnapshotHolder *h);
