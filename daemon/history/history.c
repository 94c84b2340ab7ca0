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
 * counters share SNAP_READ_GC). The first seven have a bit in an entry's "changed" mask;
 * objects_total, read once per census, is written whenever it is read. */
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

_Static_assert(SNAP_READ_ALL <= UINT8_MAX, "the read bits fit a byte");

/* An entry's header byte: bit f set when value f (< F_OBJECTS) changed; CHANGED_READ when the
 * read bits differ from the previous entry's and follow. */
#define CHANGED_READ 0x80u

/* The most bytes an entry takes: a header byte, a read byte, then the time and each value as
 * a varint of 64 bits (10 bytes at most). A keyframe (a read byte, the time's 8 bytes, the
 * values) is shorter. */
#define VARINT_MAX 10
#define ENTRY_MAX  (2 + VARINT_MAX * (1 + F_N))

/* A block of entries: one allocation of HISTORY_BLOCK_BYTES, its first entry a keyframe. */
typedef struct Block {
    struct Block *next;
    uint16_t used;     /* bytes of data written */
    uint16_t n;        /* entries in it */
    uint16_t last_off; /* where its newest entry starts */
    uint8_t data[];
} Block;

#define BLOCK_DATA (HISTORY_BLOCK_BYTES - offsetof(Block, data))
/* A copy lays blocks end to end in one malloc'ed buffer: each must start aligned. */
_Static_assert(HISTORY_BLOCK_BYTES % _Alignof(Block) == 0, "blocks copied end to end stay aligned");
_Static_assert(BLOCK_DATA >= 4 * ENTRY_MAX && BLOCK_DATA <= UINT16_MAX, "a block holds entries");

/* One decoded entry. v[f] means something only where read has field_bit[f]. */
typedef struct Entry {
    double t;
    uint8_t read;
    uint64_t v[F_N];
} Entry;

/* What coding the next entry of a block is relative to: the previous entry's time (as the
 * bits of the double, which for the positive times of samples grow with them) and time step,
 * its read bits, and each value at the latest entry of the block that read it. */
typedef struct Coder {
    uint64_t t, dt;
    uint8_t read;
    uint64_t v[F_N];
} Coder;

typedef struct Ring {
    pid_t pid;
    uint64_t start_ticks;
    double seen;      /* taken_at of the latest snapshot that listed the pid */
    double census_at; /* the census whose total is recorded (0: none yet) */
    Block *first, *last;
    size_t nblocks;
    size_t n;     /* entries served */
    size_t skip;  /* entries at the start of the first block no longer served */
    Coder after;  /* the coder past the newest entry */
    Coder before; /* and before it, to write the newest again */
    Entry newest;
} Ring;

struct History {
    pthread_mutex_t lock;
    Ring *rings;
    size_t n, alloc;
    SnapSettings st;
    bool logged_cap;
};

static uint64_t bits_of(double t)
{
    uint64_t u;
    memcpy(&u, &t, sizeof(u));
    return u;
}

static double double_of(uint64_t u)
{
    double t;
    memcpy(&t, &u, sizeof(t));
    return t;
}

/* Zig-zag: a difference near 0, of either sign, becomes a small unsigned number. Differences
 * are taken modulo 2^64, so any two values have one, exactly. */
static uint64_t zigzag(uint64_t d)
{
    return (d << 1) ^ (uint64_t) - (int64_t)(d >> 63);
}

static uint64_t unzigzag(uint64_t z)
{
    return (z >> 1) ^ (uint64_t) - (int64_t)(z & 1);
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t k = 0;
    while (v >= 0x80) {
        p[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[k++] = (uint8_t)v;
    return k;
}

/* Reads a varint at *pos of p[0..len): false past the end or beyond 10 bytes. */
static bool get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *ret)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 7 * VARINT_MAX; shift += 7) {
        if (*pos >= len)
            return false;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *ret = v;
            return true;
        }
    }
    return false;
}

/* Moves c past entry e. */
static void coder_step(Coder *c, const Entry *e, bool key)
{
    uint64_t t = bits_of(e->t);
    c->dt = key ? 0 : t - c->t;
    c->t = t;
    c->read = e->read;
    for (int f = 0; f < F_N; f++)
        if (e->read & field_bit[f])
            c->v[f] = e->v[f];
}

/* Writes e at out (ENTRY_MAX bytes): whole when key (the first entry of a block), else as
 * its differences from c. Returns its length and moves c past it. */
static size_t encode(uint8_t *out, Coder *c, const Entry *e, bool key)
{
    size_t k = 0;
    if (key) {
        out[k++] = e->read;
        uint64_t t = bits_of(e->t);
        memcpy(out + k, &t, sizeof(t));
        k += sizeof(t);
        for (int f = 0; f < F_N; f++)
            if (e->read & field_bit[f])
                k += put_varint(out + k, e->v[f]);
        coder_step(c, e, true);
        return k;
    }
    uint8_t head = 0;
    for (int f = 0; f < F_OBJECTS; f++)
        if ((e->read & field_bit[f]) && e->v[f] != c->v[f])
            head |= (uint8_t)(1u << f);
    if (e->read != c->read)
        head |= CHANGED_READ;
    out[k++] = head;
    if (head & CHANGED_READ)
        out[k++] = e->read;
    /* The time as the change of its step: samples come every interval, a step varying by the
     * jitter of the sampler only. */
    uint64_t t = bits_of(e->t);
    k += put_varint(out + k, zigzag(t - c->t - c->dt));
    for (int f = 0; f < F_N; f++)
        if ((e->read & field_bit[f]) && (f == F_OBJECTS || (head & (1u << f))))
            k += put_varint(out + k, zigzag(e->v[f] - c->v[f]));
    coder_step(c, e, false);
    return k;
}

/* Reads the entry at *pos of p[0..len) into e, the inverse of encode(). false when the bytes
 * end early (never for bytes encode() wrote). */
static bool decode(const uint8_t *p, size_t len, size_t *pos, Coder *c, Entry *e, bool key)
{
    uint64_t x;
    if (key) {
        if (*pos + 1 + sizeof(uint64_t) > len)
            return false;
        e->read = p[(*pos)++] & SNAP_READ_ALL;
        memcpy(&x, p + *pos, sizeof(x));
        *pos += sizeof(x);
        e->t = double_of(x);
        for (int f = 0; f < F_N; f++)
            if ((e->read & field_bit[f]) && !get_varint(p, len, pos, &e->v[f]))
                return false;
        coder_step(c, e, true);
        return true;
    }
    if (*pos >= len)
        return false;
    uint8_t head = p[(*pos)++];
    e->read = c->read;
    if (head & CHANGED_READ) {
        if (*pos >= len)
            return false;
        e->read = p[(*pos)++] & SNAP_READ_ALL;
    }
    if (!get_varint(p, len, pos, &x))
        return false;
    e->t = double_of(c->t + c->dt + unzigzag(x));
    for (int f = 0; f < F_N; f++) {
        e->v[f] = c->v[f];
        if ((e->read & field_bit[f]) && (f == F_OBJECTS || (head & (1u << f)))) {
            if (!get_varint(p, len, pos, &x))
                return false;
            e->v[f] += unzigzag(x);
        }
    }
    coder_step(c, e, false);
    return true;
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

static void ring_clear(Ring *r)
{
    while (r->first) {
        Block *b = r->first;
        r->first = b->next;
        free(b);
    }
    r->last = NULL;
    r->nblocks = r->n = r->skip = 0;
}

History *history_free(History *h)
{
    if (!h)
        return NULL;
    for (size_t i = 0; i < h->n; i++)
        ring_clear(&h->rings[i]);
    free(h->rings);
    pthread_mutex_destroy(&h->lock);
    free(h);
    return NULL;
}

/* What each ring may hold: at most history_seconds / interval entries, rounded up (returned;
 * 0: none), in at most an equal share of history_max_memory (*ret_share bytes, at least two
 * blocks, so that a history always shows a change). */
static size_t ring_limit(const History *h, size_t *ret_share)
{
    const SnapSettings *st = &h->st;
    size_t wanted = 0;
    if (st->history_seconds > 0 && st->interval > 0)
        wanted = (size_t)fmin(ceil(st->history_seconds / st->interval), 1e9);
    uint64_t share = st->history_max_memory / MAX(h->n, 1);
    *ret_share = (size_t)MAX(share, (uint64_t)2 * HISTORY_BLOCK_BYTES);
    return wanted;
}

/* Drops the oldest block, whole; returns it for reuse (the caller frees it or not). */
static Block *ring_drop_block(Ring *r)
{
    Block *b = r->first;
    r->first = b->next;
    if (!r->first)
        r->last = NULL;
    r->n -= b->n - r->skip;
    r->skip = 0;
    r->nblocks--;
    return b;
}

/* Drops the oldest entry: from what is served, and its block once none of it is. */
static void ring_drop_entry(Ring *r)
{
    if (r->skip + 1 == r->first->n) {
        free(ring_drop_block(r));
        return;
    }
    r->skip++;
    r->n--;
}

/* Appends e to r, in a new block when the newest is full (the oldest blocks going first when
 * the ring has its share of memory), then drops the oldest entries beyond `wanted`. Returns 1
 * when the share made it drop entries, 0, or -ENOMEM (r as it was). */
static int ring_append(Ring *r, const Entry *e, size_t wanted, size_t share)
{
    uint8_t buf[ENTRY_MAX];
    Coder c = r->after;
    size_t len = 0;
    int shortened = 0;
    if (r->last && r->last->n < UINT16_MAX) {
        len = encode(buf, &c, e, false);
        if (r->last->used + len > BLOCK_DATA)
            len = 0;
    }
    if (len == 0) {
        Block *b = NULL;
        /* The block the new one would put over the share is the oldest one, reused. */
        while (r->first && (r->nblocks + 1) * HISTORY_BLOCK_BYTES > share) {
            free(b);
            b = ring_drop_block(r);
            shortened = 1;
        }
        if (!b && !(b = malloc(HISTORY_BLOCK_BYTES)))
            return -ENOMEM;
        *b = (Block){0};
        if (r->last)
            r->last->next = b;
        else
            r->first = b;
        r->last = b;
        r->nblocks++;
        c = (Coder){0};
        len = encode(buf, &c, e, true);
    }
    Block *b = r->last;
    memcpy(b->data + b->used, buf, len);
    b->last_off = b->used;
    b->used = (uint16_t)(b->used + len);
    b->n++;
    r->n++;
    r->before = r->after;
    r->after = c;
    r->newest = *e;
    while (r->n > MAX(wanted, (size_t)1))
        ring_drop_entry(r);
    /* A share made smaller (more processes, a reload) is given back at once. */
    while (r->nblocks > 1 && r->nblocks * HISTORY_BLOCK_BYTES > share) {
        free(ring_drop_block(r));
        shortened = 1;
    }
    return shortened;
}

/* Takes the newest entry off (to write it again), with its block when it was its keyframe.
 * Only once between two appends: the coder before the newest is known, not the one before. */
static void ring_pop(Ring *r)
{
    Block *b = r->last;
    r->after = r->before;
    if (b->n > 1) {
        b->used = b->last_off;
        b->n--;
        r->n--;
        /* The oldest block, when every entry left in it was dropped already, goes too. */
        if (r->first == b && r->skip == b->n)
            free(ring_drop_block(r));
        return;
    }
    if (r->first == b) {
        free(ring_drop_block(r));
        return;
    }
    Block *prev = r->first;
    while (prev->next != b)
        prev = prev->next;
    prev->next = NULL;
    r->last = prev;
    r->nblocks--;
    r->n--;
    free(b);
}

static void entry_of(const SnapSample *s, uint32_t read, Entry *e)
{
    e->t = s->t;
    e->read = (uint8_t)(read & SNAP_READ_ALL);
    e->v[F_RSS] = s->rss_kib;
    e->v[F_PSS] = s->pss_kib;
    e->v[F_ARENA] = s->arena_kib;
    e->v[F_BLOCKS] = s->allocated_blocks;
    for (int g = 0; g < 3; g++)
        e->v[F_GC0 + g] = s->gc_collections[g];
    e->v[F_OBJECTS] = s->objects_total;
}

/* Appends s (with `read` its read bits) to r or, for the same sample again, writes the newest
 * entry again with what s adds: it keeps what it read that s does not say. As ring_append();
 * after -ENOMEM, a replaced entry is lost with its ring, which starts again. */
static int ring_put(Ring *r, const SnapSample *s, uint32_t read, size_t wanted, size_t share)
{
    Entry e;
    entry_of(s, read, &e);
    if (r->n == 0 || r->newest.t != s->t)
        return ring_append(r, &e, wanted, share);
    for (int f = 0; f < F_N; f++)
        if (!(e.read & field_bit[f]) && (r->newest.read & field_bit[f]))
            e.v[f] = r->newest.v[f];
    e.read |= r->newest.read;
    ring_pop(r);
    int k = ring_append(r, &e, wanted, share);
    if (k < 0)
        ring_clear(r);
    return k;
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
    ring_clear(&h->rings[i]);
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
    size_t share, wanted;
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
        if (!r && p.sample.t > 0 && ring_limit(h, &share) > 0)
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
    wanted = ring_limit(h, &share);
    if (wanted == 0) { /* history = 0 (now): nothing kept */
        while (h->n)
            drop_ring(h, h->n - 1);
    }
    for (size_t i = 0, n = snapshot_nprocs(s); wanted && i < n; i++) {
        SnapProc p;
        Ring *r;
        if (!snapshot_proc(s, i, &p) || p.sample.t <= 0 || !(r = find_ring(h, p.pid)))
            continue;
        uint32_t read = p.sample.read;
        /* A census's total is recorded once, at the first sample that shows it. */
        if (!p.have_census || p.census_at == r->census_at)
            read &= ~(uint32_t)SNAP_READ_OBJECTS;
        if (r->n > 0 && r->newest.t == p.sample.t && !(read & SNAP_READ_OBJECTS)) {
            /* The same sample again, and no census to add: keep what it recorded, a total
             * included. */
            continue;
        }
        int k = ring_put(r, &p.sample, read, wanted, share);
        if (k < 0)
            continue;
        if (read & SNAP_READ_OBJECTS)
            r->census_at = p.census_at;
        /* Memory, not history_seconds, shortened this ring: said once. */
        if (k == 1 && r->n < wanted && !h->logged_cap) {
            h->logged_cap = true;
            news.capped = true;
            news.nrings = h->n;
            news.share = share;
            news.kept = r->n;
            news.wanted = wanted;
        }
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

static void put_value(StrBuf *b, const char *key, bool read, uint64_t v, uint64_t unit)
{
    if (key)
        strbuf_printf(b, ",\"%s\":", key);
    if (read)
        strbuf_printf(b, "%" PRIu64, v * unit);
    else
        strbuf_puts(b, "null");
}

/* A copy of a ring's blocks, to decode outside the lock (rendering a full ring takes
 * milliseconds, during which the listener must be free to take in the next snapshot), and
 * where decoding it has come to. */
typedef struct Cursor {
    uint8_t *blocks; /* nblocks of HISTORY_BLOCK_BYTES, in order */
    size_t nblocks, skip, n;
    size_t bi, k, pos; /* block, entry in it, byte in it */
    Coder c;
} Cursor;

/* Copies the ring of pid into *ret, with the interval the history is kept at: false when
 * there is none (or no memory for the copy: then an empty list is served). */
static bool ring_copy(History *h, pid_t pid, Cursor *ret, double *ret_interval)
{
    pthread_mutex_lock(&h->lock);
    *ret_interval = h->st.interval;
    Ring *r = find_ring(h, pid);
    bool ok = r && r->n && (ret->blocks = malloc(r->nblocks * HISTORY_BLOCK_BYTES));
    if (ok) {
        size_t i = 0;
        for (const Block *b = r->first; b; b = b->next, i++)
            memcpy(ret->blocks + i * HISTORY_BLOCK_BYTES, b, offsetof(Block, data) + b->used);
        ret->nblocks = r->nblocks;
        ret->skip = r->skip;
        ret->n = r->n;
        ret->bi = ret->k = ret->pos = 0;
    }
    pthread_mutex_unlock(&h->lock);
    return ok;
}

/* The next entry of the copy, oldest first: false past the newest. */
static bool cursor_next(Cursor *cur, Entry *e)
{
    for (; cur->bi < cur->nblocks; cur->bi++, cur->k = cur->pos = 0) {
        const Block *b = (const void *)(cur->blocks + cur->bi * HISTORY_BLOCK_BYTES);
        while (cur->k < b->n) {
            bool key = cur->k++ == 0;
            if (key)
                cur->c = (Coder){0};
            if (!decode(b->data, b->used, &cur->pos, &cur->c, e, key))
                return false;
            if (cur->bi > 0 || cur->k > cur->skip)
                return true;
        }
    }
    return false;
}

char *history_json(History *h, pid_t pid, double since, size_t *ret_len)
{
    StrBuf b = {0};
    cJSON *num = cJSON_CreateNumber(0);
    if (!num)
        return NULL;
    Cursor cur;
    double interval;
    bool copied = ring_copy(h, pid, &cur, &interval);
    strbuf_printf(&b, "{\"pid\":%d,\"interval_seconds\":", (int)pid);
    put_double(&b, num, interval);
    strbuf_puts(&b, ",\"samples\":[");
    Entry e;
    bool first = true;
    while (copied && cursor_next(&cur, &e)) {
        if (e.t < since)
            continue;
        bool got[F_N];
        for (int f = 0; f < F_N; f++)
            got[f] = e.read & field_bit[f];
        strbuf_puts(&b, first ? "{\"t\":" : ",{\"t\":");
        first = false;
        put_double(&b, num, e.t);
        put_value(&b, "rss_bytes", got[F_RSS], e.v[F_RSS], 1024);
        put_value(&b, "pss_bytes", got[F_PSS], e.v[F_PSS], 1024);
        put_value(&b, "arena_bytes", got[F_ARENA], e.v[F_ARENA], 1024);
        put_value(&b, "allocated_blocks", got[F_BLOCKS], e.v[F_BLOCKS], 1);
        if (got[F_GC0])
            strbuf_printf(&b, ",\"gc_collections\":[%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]",
                          e.v[F_GC0], e.v[F_GC1], e.v[F_GC2]);
        else
            strbuf_puts(&b, ",\"gc_collections\":null");
        put_value(&b, "objects_total", got[F_OBJECTS], e.v[F_OBJECTS], 1);
        strbuf_puts(&b, "}");
    }
    if (copied)
        free(cur.blocks);
    cJSON_Delete(num);
    strbuf_puts(&b, "]}");
    return strbuf_finish(&b, ret_len);
}

int history_samples(History *h, pid_t pid, SnapSample **ret, size_t *ret_n)
{
    Cursor cur;
    double interval;
    if (!ring_copy(h, pid, &cur, &interval)) {
        *ret = NULL;
        *ret_n = 0;
        return 0;
    }
    SnapSample *s = calloc(cur.n, sizeof(*s));
    if (!s) {
        free(cur.blocks);
        return -ENOMEM;
    }
    size_t n = 0;
    Entry e;
    while (n < cur.n && cursor_next(&cur, &e)) {
        for (int f = 0; f < F_N; f++)
            if (!(e.read & field_bit[f]))
                e.v[f] = 0; /* what the coder kept, not a value of this sample */
        s[n] = (SnapSample){
            .t = e.t,
            .read = e.read,
            .rss_kib = e.v[F_RSS],
            .pss_kib = e.v[F_PSS],
            .arena_kib = e.v[F_ARENA],
            .allocated_blocks = e.v[F_BLOCKS],
            .objects_total = e.v[F_OBJECTS],
            .gc_collections = {e.v[F_GC0], e.v[F_GC1], e.v[F_GC2]},
        };
        n++;
    }
    free(cur.blocks);
    *ret = s;
    *ret_n = n;
    return 0;
}

bool history_ring_size(History *h, pid_t pid, size_t *ret_n, size_t *ret_bytes)
{
    pthread_mutex_lock(&h->lock);
    Ring *r = find_ring(h, pid);
    if (r) {
        *ret_n = r->n;
        *ret_bytes = r->nblocks * HISTORY_BLOCK_BYTES;
    }
    pthread_mutex_unlock(&h->lock);
    return r != NULL;
}

uint64_t history_bytes(History *h)
{
    pthread_mutex_lock(&h->lock);
    uint64_t total = 0;
    for (size_t i = 0; i < h->n; i++)
        total += (uint64_t)h->rings[i].nblocks * HISTORY_BLOCK_BYTES;
    pthread_mutex_unlock(&h->lock);
    return total;
}
