/* snaprender: renders the samples of one moment into a Snapshot (snapshot/snapshot.h), the
 * plain data every HTTP answer and `pymemd --once` are served from. The sampler calls it; the
 * samples stay the caller's. */
#pragma once

#include "metrics/json.h"
#include "snapshot/snapshot.h"

/* What snaprender_new printed of each target's census and growth document, kept for the next
 * snapshot: a census changes only when one completes (every census_interval), while snapshots
 * are rendered every interval. Keyed by the Census objects themselves (it holds a reference to
 * each, so an address is never reused while it is a key) and the suspects list; an entry lives
 * while its pid is among the samples. Owned by one caller (the sampler); not thread-safe. */
typedef struct SnapCache SnapCache;

/* Returns an empty cache (the caller frees it with snapcache_free), or NULL when out of memory. */
SnapCache *snapcache_new(void);
/* Frees the cache and drops its census references. NULL-safe; returns NULL. */
SnapCache *snapcache_free(SnapCache *c);

/* Renders the three /metrics bodies, each PROCESS object, census (with its type items
 * separately, for ?top=N) and growth table of samples[0..n) (in pid order). With a cache (may be
 * NULL), a census or growth document unchanged since the last call is copied from it rather than
 * printed again, and so is the census inside each PROCESS object: the bytes are the same either
 * way. Returns 0 with a snapshot of one reference in *ret, or -ENOMEM. */
int snaprender_new(const JsonDaemonInfo *info, const TargetSample *samples, size_t n,
                   double taken_at, SnapCache *cache, Snapshot **ret);
