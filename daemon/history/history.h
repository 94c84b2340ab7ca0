/* history: per watched process, a ring of its recent samples, kept by the HTTP listener from
 * the snapshots it receives and served as GET /api/v1/processes/{pid}/history (DESIGN §4.2).
 *
 * A ring belongs to one process: a pid and its start time (a pid reused by another process
 * starts a new ring). Each snapshot adds one entry per process with a sample record
 * (snapshot.h, SnapSample); a later snapshot of the same sample (one published after a census)
 * replaces that entry instead of adding one. A process missing from the snapshots for
 * HISTORY_FORGET_SECONDS is forgotten.
 *
 * Entries are 41 bytes: the time as a double (exactly the sample's sampled_at) and, per value,
 * its low 32 bits (sizes in KiB), plus a byte of "read" bits. A value is found again from the
 * newest one, kept whole, by the differences of the low bits between the entries that read it:
 * exact as long as two consecutive readings of a value differ by less than 2^31 of its unit
 * (2 TiB, 2^31 blocks, collections or objects). A jump beyond that restarts the ring.
 *
 * Memory: each ring holds at most history_seconds / interval entries, and all rings together
 * at most history_max_memory bytes: with more processes than that holds, every ring is given an
 * equal share (shorter rings, oldest entries dropped). Rings grow as they fill, so a young
 * process costs what it has.
 *
 * Not thread-safe by itself beyond what it says: every function takes the History's lock. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "snapshot/snapshot.h"

/* A process absent from the snapshots this long loses its ring. */
#define HISTORY_FORGET_SECONDS 60.0
/* Bytes one entry takes. */
#define HISTORY_ENTRY_BYTES 41

typedef struct History History;

/* An empty history. The caller owns *ret. */
int history_new(History **ret);
/* NULL-safe; returns NULL. */
History *history_free(History *h);

/* What history_update() found, for its caller to log. */
typedef struct HistoryNews {
    bool capped;     /* history_max_memory started to shorten the rings (once per History) */
    size_t nrings;   /*   with this many rings, */
    size_t limit;    /*   each holding this many entries */
    size_t wanted;   /*   of the history_seconds / interval asked for */
    pid_t restarted; /* a ring restarted because a value jumped by 2^31 or more (0: none) */
} HistoryNews;

/* Takes in the snapshot s: settings, and one entry per process with a sample record; forgets
 * the processes absent for HISTORY_FORGET_SECONDS of the snapshots' time. Never fails: an entry
 * that cannot be stored (out of memory) is left out. */
void history_update(History *h, const Snapshot *s, HistoryNews *ret_news);

/* The history document of pid ({"pid", "interval_seconds", "samples": [...]}, oldest first),
 * with only the samples taken at or after `since` (epoch seconds; 0: all). A pid without a
 * ring gets an empty list. Returns a malloc'd string the caller frees (its length in
 * *ret_len), or NULL on allocation failure. */
char *history_json(History *h, pid_t pid, double since, size_t *ret_len);

/* How many entries the ring of pid holds now and may hold (for tests): false when none. */
bool history_ring_size(History *h, pid_t pid, size_t *ret_n, size_t *ret_cap);
/* Bytes of entries allocated over all rings (for tests and the cap). */
uint64_t history_bytes(History *h);
