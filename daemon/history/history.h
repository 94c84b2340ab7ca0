/* history: per watched process, a ring of its recent samples, kept by the HTTP listener from
 * the snapshots it receives and served as GET /api/v1/processes/{pid}/history (DESIGN §4.2).
 *
 * A ring belongs to one process: a pid and its start time (a pid reused by another process
 * starts a new ring). Each snapshot adds one entry per process with a sample record
 * (snapshot.h, SnapSample); a later snapshot of the same sample (one published after a census)
 * replaces that entry instead of adding one. A process missing from the snapshots for
 * HISTORY_FORGET_SECONDS is forgotten.
 *
 * Entries are compressed, in blocks of HISTORY_BLOCK_BYTES (one allocation each). A block's
 * first entry is a keyframe: the read bits, the time's 8 bytes, each value read as a varint.
 * Every other entry is written against the one before it: a header byte with a bit per value
 * that changed (and one for read bits that changed, which then follow), the change of the time
 * step (the double's bits taken as an integer, so the time comes back bit for bit) and each
 * changed value's difference (objects_total's whenever it is read: once per census), as
 * zig-zag varints. Differences are taken modulo 2^64: any value comes back exactly, whatever
 * the jump; a value not read costs nothing and is null. A quiet process's sample takes about
 * 4-6 bytes (the time's jitter 1-3 of them), a keyframe about 30, any entry at most 92
 * (history.c, ENTRY_MAX). The newest entry can be written again (a later snapshot of the same
 * sample) since the coder's state before it is kept.
 *
 * Memory: each ring holds at most history_seconds / interval entries, and all rings together
 * at most history_max_memory bytes of blocks: with more than that holds, every ring is given
 * an equal share, and its oldest blocks go whole when it needs a new one. An entry beyond
 * history_seconds is dropped at once (no longer served; its bytes go with its block). Rings
 * grow a block at a time, so a young process costs what it has.
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
/* Bytes of one block of entries (an allocation of 504 is a 512-byte chunk of glibc's malloc). */
#define HISTORY_BLOCK_BYTES 504

typedef struct History History;

/* An empty history. The caller owns *ret. */
int history_new(History **ret);
/* NULL-safe; returns NULL. */
History *history_free(History *h);

/* What history_update() found, for its caller to log. */
typedef struct HistoryNews {
    bool capped;   /* history_max_memory started to shorten a ring (once per History) */
    size_t nrings; /*   with this many rings, */
    size_t share;  /*   each given this many bytes, */
    size_t kept;   /*   it keeps this many entries */
    size_t wanted; /*   of the history_seconds / interval asked for */
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

/* The samples of pid's ring, decoded, oldest first (for tests): in *ret (malloc'd, the caller
 * frees it; NULL when none) and *ret_n; a value not read is 0 (and its read bit clear), and
 * start_ticks 0. 0 or -ENOMEM. */
int history_samples(History *h, pid_t pid, SnapSample **ret, size_t *ret_n);
/* How many entries the ring of pid holds now and the bytes of its blocks (for tests): false
 * when none. */
bool history_ring_size(History *h, pid_t pid, size_t *ret_n, size_t *ret_bytes);
/* Bytes of blocks allocated over all rings (for tests and the cap). */
uint64_t history_bytes(History *h);
