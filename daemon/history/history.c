#include "history/history.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/macro.h"
#include "util/strbuf.h"

/* The values of an entry, in this order; each has a SNAP_READ_* bit (the three collection
 * counters share SNAP_READ_GC). */
enum {
    F_RSS,
    F_PSS,
    F_ARENA,
    F_BLOCKS,
    F_GC0,
    F_GC1,
    F_GC2,
    F_OBJECTS,
    F_N,
};

static const uint32_t field_bit[F_N] = {
    SNAP_READ_RSS, SNAP_READ_PSS, SNAP_READ_ARENA, SNAP_READ_BLOCKS,
    SNAP_READ_GC,  SNAP_READ_GC,  SNAP_READ_GC,    SNAP_READ_OBJECTS,
};

typedef struct HistEntry {
    double t;
    uint32_t lo[F_N]; /* the low 32 bits of each value (sizes in KiB) */
} HistEntry;

_Static_assert(sizeof(HistEntry) + 1 == HISTORY_ENTRY_BYTES, "an entry is 41 bytes");

typedef struct Ring {
    pid_t pid;
    uint64_t start_ticks;
    double seen;         /* taken_at of the latest snapshot that listed the pid */
    double census_at;    /* the census whose total is recorded (0: none yet) */
    size_t cap, n, head; /* head: the oldest entry */
    HistEntry *e;        /* cap entries, then cap bytes of read bits: one allocation */
    int64_t last[F_N];   /* each value whole, at the newest entry that read it */
    bool have_last[F_N];
} Ring;

struct History {
    pthread_mutex_t lock;
    Ring *rings;
    size_t n, alloc;
    SnapSettings st;
    bool logged_cap;
};

static uint8_t *ring_read(const Ring *r)
{
    return (uint8_t *)(r->e + r->cap);
}

static size_t idx(const Ring *r, size_t i)
{
    return (r->head + i) % r->cap;
}

int history_new(History **ret)
{
    History *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    pthread_mutex_init(&h->lock, NULL);
    *ret = h;
    return 0;
}

History *history_free(History *h)
{
    if (!h)
        return NULL;
    for (size_t i = 0; i < h->n; i++)
        free(h->rings[i].e);
    free(h->rings);
    pthread_mutex_destroy(&h->lock);
    free(h);
    return NULL;
}

/* Entries each ring may hold: history_seconds / interval, rounded up, and an equal share of
 * history_max_memory (at least 2, so that a history always shows a change). *ret_wanted is the
 * first. */
static size_t ring_limit(const History *h, size_t *ret_wanted)
{
    const SnapSettings *st = &h->st;
    size_t wanted = 0;
    if (st->history_seconds > 0 && st->interval > 0)
        wanted = (size_t)fmin(ceil(st->history_seconds / st->interval), 1e9);
    *ret_wanted = wanted;
    if (!wanted)
        return 0;
    size_t share = (size_t)(st->history_max_memory / HISTORY_ENTRY_BYTES / MAX(h->n, 1));
    return MIN(wanted, MAX(share, 2));
}

/* Makes the ring hold `cap` entries, keeping the newest ones in order. -ENOMEM leaves it as it
 * was. */
static int ring_resize(Ring *r, size_t cap)
{
    HistEntry *e = malloc(cap * HISTORY_ENTRY_BYTES);
    if (!e)
        return -ENOMEM;
    uint8_t *rd = (uint8_t *)(e + cap);
    size_t keep = MIN(r->n, cap), skip = r->n - keep;
    for (size_t i = 0; i < keep; i++) {
        size_t k = idx(r, skip + i);
        e[i] = r->e[k];
        rd[i] = ring_read(r)[k];
    }
    free(r->e);
    r->e = e;
    r->cap = cap;
    r->n = keep;
    r->head = 0;
    return 0;
}

static void ring_clear(Ring *r)
{
    r->n = r->head = 0;
    memset(r->have_last, 0, sizeof(r->have_last));
}

static void values_of(const SnapSample *s, int64_t v[F_N])
{
    v[F_RSS] = (int64_t)s->rss_kib;
    v[F_PSS] = (int64_t)s->pss_kib;
    v[F_ARENA] = (int64_t)s->arena_kib;
    v[F_BLOCKS] = (int64_t)s->allocated_blocks;
    for (int g = 0; g < 3; g++)
        v[F_GC0 + g] = (int64_t)s->gc_collections[g];
    v[F_OBJECTS] = (int64_t)s->objects_total;
}

/* Appends (or, for the same sample again, replaces the newest entry with) s, with `read` its
 * read bits. Returns 1 when the ring had to restart (a value jumped by 2^31 or more), 0, or
 * -ENOMEM. */
static int ring_put(Ring *r, const SnapSample *s, uint32_t read, size_t limit)
{
    int64_t v[F_N];
    values_of(s, v);
    bool replace = r->n > 0 && r->e[idx(r, r->n - 1)].t == s->t;
    int restarted = 0;
    for (int f = 0; f < F_N; f++) {
        if (!(read & field_bit[f]) || !r->have_last[f])
            continue;
        /* A replaced entry's value may differ only by what a census added; its chain goes
         * through the value it replaces, which differs as little. */
        int64_t d = v[f] - r->last[f];
        if (d > INT32_MAX || d < INT32_MIN) {
            ring_clear(r);
            replace = false;
            restarted = 1;
            break;
        }
    }
    if (!replace) {
        if (r->cap > limit && ring_resize(r, limit) < 0)
            return -ENOMEM;
        if (r->n == r->cap && r->cap < limit &&
            ring_resize(r, MIN(limit, MAX((size_t)16, r->cap * 2))) < 0 && r->cap == 0)
            return -ENOMEM;
        if (r->n == r->cap) { /* full: the oldest goes */
            r->head = (r->head + 1) % r->cap;
            r->n--;
        }
        r->n++;
    }
    size_t k = idx(r, r->n - 1);
    HistEntry *e = &r->e[k];
    e->t = s->t;
    /* A replaced entry keeps what it read that the new record does not say (the newest values
     * kept whole are its own). */
    uint8_t was = replace ? ring_read(r)[k] : 0;
    for (int f = 0; f < F_N; f++) {
        if (read & field_bit[f]) {
            e->lo[f] = (uint32_t)v[f];
            r->last[f] = v[f];
            r->have_last[f] = true;
        } else if (!(was & field_bit[f])) {
            e->lo[f] = 0;
        }
    }
    ring_read(r)[k] = (uint8_t)(read | was);
    return restarted;
}

static Ring *find_ring(History *h, pid_t pid)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->rings[i].pid == pid)
            return &h->rings[i];
    return NULL;
}

static void drop_ring(History *h, size_t i)
{
    free(h->rings[i].e);
    h->rings[i] = h->rings[--h->n];
}

static Ring *new_ring(History *h, pid_t pid, uint64_t start_ticks)
{
    if (h->n == h->alloc) {
        size_t alloc = MAX((size_t)16, h->alloc * 2);
        Ring *n = realloc(h->rings, alloc * sizeof(*n));
        if (!n)
            return NULL;
        h->rings = n;
        h->alloc = alloc;
    }
    Ring *r = &h->rings[h->n++];
    *r = (Ring){.pid = pid, .start_ticks = start_ticks};
    return r;
}

void history_update(History *h, const Snapshot *s, HistoryNews *ret_news)
{
    HistoryNews news = {0};
    double now = snapshot_taken_at(s);
    pthread_mutex_lock(&h->lock);
    h->st = snapshot_settings(s);
    size_t wanted, limit;
    /* Rings first: who is new, who is a new process under an old pid. */
    for (size_t i = 0, n = snapshot_nprocs(s); i < n; i++) {
        SnapProc p;
        if (!snapshot_proc(s, i, &p))
            continue;
        Ring *r = find_ring(h, p.pid);
        if (r && p.sample.t > 0 && r->start_ticks != p.sample.start_ticks) {
            drop_ring(h, (size_t)(r - h->rings)); /* the pid was reused */
            r = NULL;
        }
        if (!r && p.sample.t > 0 && ring_limit(h, &wanted) > 0)
            r = new_ring(h, p.pid, p.sample.start_ticks);
        if (r)
            r->seen = now;
    }
    for (size_t i = 0; i < h->n;) {
        if (h->rings[i].seen < now - HISTORY_FORGET_SECONDS)
            drop_ring(h, i);
        else
            i++;
    }
    limit = ring_limit(h, &wanted);
    if (limit == 0) { /* history = 0 (now): nothing kept */
        while (h->n)
            drop_ring(h, h->n - 1);
    }
    for (size_t i = 0, n = snapshot_nprocs(s); limit && i < n; i++) {
        SnapProc p;
        Ring *r;
        if (!snapshot_proc(s, i, &p) || p.sample.t <= 0 || !(r = find_ring(h, p.pid)))
            continue;
        uint32_t read = p.sample.read;
        /* A census's total is recorded once, at the first sample that shows it. */
        if (!p.have_census || p.census_at == r->census_at)
            read &= ~(uint32_t)SNAP_READ_OBJECTS;
        bool same = r->n > 0 && r->e[idx(r, r->n - 1)].t == p.sample.t;
        if (same && !(read & SNAP_READ_OBJECTS)) {
            /* The same sample again, and no census to add: keep what it recorded, a total
             * included. */
            continue;
        }
        int k = ring_put(r, &p.sample, read, limit);
        if (k >= 0 && (read & SNAP_READ_OBJECTS))
            r->census_at = p.census_at;
        if (k == 1)
            news.restarted = p.pid;
    }
    if (limit && limit < wanted && !h->logged_cap) {
        h->logged_cap = true;
        news.capped = true;
        news.nrings = h->n;
        news.limit = limit;
        news.wanted = wanted;
    }
    pthread_mutex_unlock(&h->lock);
    if (ret_news)
        *ret_news = news;
}

/* A double as cJSON prints it (cJSON prints 15 significant digits when they read back within
 * its epsilon, which is not always the same double), so that "t" is exactly the number of the
 * PROCESS's "sampled_at". num is a cJSON number to print through. */
static void put_double(StrBuf *b, cJSON *num, double v)
{
    char buf[64];
    cJSON_SetNumberValue(num, v);
    if (cJSON_PrintPreallocated(num, buf, sizeof(buf), false))
        strbuf_puts(b, buf);
    else
        strbuf_puts(b, "null");
}

static void put_value(StrBuf *b, const char *key, bool read, int64_t v, int64_t unit)
{
    if (key)
        strbuf_printf(b, ",\"%s\":", key);
    if (read)
        strbuf_printf(b, "%" PRId64, v * unit);
    else
        strbuf_puts(b, "null");
}

char *history_json(History *h, pid_t pid, double since, size_t *ret_len)
{
    StrBuf b = {0};
    cJSON *num = cJSON_CreateNumber(0);
    if (!num)
        return NULL;
    pthread_mutex_lock(&h->lock);
    strbuf_printf(&b, "{\"pid\":%d,\"interval_seconds\":", (int)pid);
    put_double(&b, num, h->st.interval);
    strbuf_puts(&b, ",\"samples\":[");
    Ring *r = find_ring(h, pid);
    if (r && r->n) {
        const uint8_t *rd = ring_read(r);
        /* Backwards from the newest value kept whole to the oldest entry that read it... */
        int64_t v[F_N];
        uint32_t lo[F_N];
        bool have[F_N] = {false};
        for (size_t i = r->n; i-- > 0;) {
            size_t k = idx(r, i);
            for (int f = 0; f < F_N; f++) {
                if (!(rd[k] & field_bit[f]) || !r->have_last[f])
                    continue;
                v[f] = have[f] ? v[f] - (int32_t)(lo[f] - r->e[k].lo[f]) : r->last[f];
                lo[f] = r->e[k].lo[f];
                have[f] = true;
            }
        }
        /* ... then forwards, oldest first, as served. */
        bool first = true;
        memset(have, 0, sizeof(have));
        for (size_t i = 0; i < r->n; i++) {
            size_t k = idx(r, i);
            const HistEntry *e = &r->e[k];
            bool got[F_N];
            for (int f = 0; f < F_N; f++) {
                got[f] = (rd[k] & field_bit[f]) && r->have_last[f];
                if (!got[f])
                    continue;
                if (have[f])
                    v[f] += (int32_t)(e->lo[f] - lo[f]);
                lo[f] = e->lo[f];
                have[f] = true;
            }
            if (e->t < since)
                continue;
            strbuf_puts(&b, first ? "{\"t\":" : ",{\"t\":");
            first = false;
            put_double(&b, num, e->t);
            put_value(&b, "rss_bytes", got[F_RSS], v[F_RSS], 1024);
            put_value(&b, "pss_bytes", got[F_PSS], v[F_PSS], 1024);
            put_value(&b, "arena_bytes", got[F_ARENA], v[F_ARENA], 1024);
            put_value(&b, "allocated_blocks", got[F_BLOCKS], v[F_BLOCKS], 1);
            if (got[F_GC0])
                strbuf_printf(&b, ",\"gc_collections\":[%" PRId64 ",%" PRId64 ",%" PRId64 "]",
                              v[F_GC0], v[F_GC1], v[F_GC2]);
            else
                strbuf_puts(&b, ",\"gc_collections\":null");
            put_value(&b, "objects_total", got[F_OBJECTS], v[F_OBJECTS], 1);
            strbuf_puts(&b, "}");
        }
    }
    pthread_mutex_unlock(&h->lock);
    cJSON_Delete(num);
    strbuf_puts(&b, "]}");
    return strbuf_finish(&b, ret_len);
}

bool history_ring_size(History *h, pid_t pid, size_t *ret_n, size_t *ret_cap)
{
    pthread_mutex_lock(&h->lock);
    Ring *r = find_ring(h, pid);
    if (r) {
        *ret_n = r->n;
        *ret_cap = r->cap;
    }
    pthread_mutex_unlock(&h->lock);
    return r != NULL;
}

uint64_t history_bytes(History *h)
{
    pthread_mutex_lock(&h->lock);
    uint64_t total = 0;
    for (size_t i = 0; i < h->n; i++)
        total += (uint64_t)h->rings[i].cap * HISTORY_ENTRY_BYTES;
    pthread_mutex_unlock(&h->lock);
    return total;
}
