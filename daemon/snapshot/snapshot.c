#include "snapshot/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/clock.h"
#include "util/memfd.h"
#include "util/macro.h"

/* The block: a header, an index of fixed-size records (one per process, in the order given),
 * then the bytes the spans point at. Offsets are from the start of the block; the header and
 * the records are 8-byte multiples, so the index is aligned wherever the block is. The same
 * binary writes and reads it (the listener is this program, re-executed), so the layout is
 * native and versioned only by the magic. */
#define SNAP_MAGIC "PYMEMDS2"

typedef struct SnapSpan {
    uint64_t off, len;
} SnapSpan;

enum { REC_CENSUS = 1, REC_GROWTH = 2, REC_READABLE = 4 };

typedef struct SnapRec {
    int64_t pid;
    uint64_t flags;
    double census_at;
    SnapSpan process;
    SnapSpan census_error;
    SnapSpan census_head;
    SnapSpan census_items; /* the type items, joined by ',' */
    SnapSpan census_ends;  /* uint64_t per item: where it ends, from the start of the items */
    SnapSpan growth;
    SnapSample sample;
} SnapRec;

typedef struct SnapHeader {
    char magic[8];
    uint64_t size;
    double taken_at;
    uint64_t nprocs;
    SnapSpan body[SNAP_NFORMATS];
    SnapSpan processes; /* the PROCESS objects inside the JSON body, commas included */
    SnapSpan index;     /* nprocs SnapRec */
    SnapSettings settings;
} SnapHeader;

struct Snapshot {
    atomic_int refs;
    const unsigned char *block;
    size_t size;
    bool mapped; /* munmap, not free */
    const SnapHeader *h;
    const SnapRec *recs;
    /* gzip versions, made on first request under gz_lock. */
    pthread_mutex_t gz_lock;
    SnapBody gz[SNAP_NFORMATS];
    bool gz_failed[SNAP_NFORMATS];
};

/* ---- writer ------------------------------------------------------------------------------- */

struct SnapWriter {
    double taken_at;
    SnapSettings settings;
    unsigned char *data; /* the bytes after the header and the index; spans are relative to it
                          * until snapwriter_finish */
    size_t len, cap;
    bool oom;
    SnapSpan body[SNAP_NFORMATS];
    SnapSpan processes;
    SnapRec *recs;
    size_t nrecs;
};

/* The block of the last writer-made snapshot freed, kept for the next writer: a block past the
 * mmap threshold (128 KiB, main.c) is a fresh mapping each time, and faulting in its pages was
 * most of what a snapshot cost (10 targets, a 270 KiB block: 66 faults each interval). Only
 * blocks up to SPARE_MAX are kept, so that with many targets the sampler does not hold a large
 * block between intervals (a spare is resident memory). Taken and put back with an atomic
 * exchange: a snapshot may be freed on any thread. */
#define SPARE_MAX (1u << 20)
static _Atomic(unsigned char *) spare;

static void spare_put(unsigned char *block)
{
    if (block && malloc_usable_size(block) > SPARE_MAX) {
        free(block);
        return;
    }
    free(atomic_exchange(&spare, block));
}

int snapwriter_new(double taken_at, SnapWriter **ret)
{
    SnapWriter *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->taken_at = taken_at;
    w->data = atomic_exchange(&spare, NULL);
    w->cap = w->data ? malloc_usable_size(w->data) : 0;
    *ret = w;
    return 0;
}

SnapWriter *snapwriter_free(SnapWriter *w)
{
    if (w) {
        free(w->data);
        free(w->recs);
        free(w);
    }
    return NULL;
}

static SnapSpan put(SnapWriter *w, const void *p, size_t len)
{
    if (w->oom)
        return (SnapSpan){0};
    if (w->len + len > w->cap) {
        size_t cap = MAX(w->cap * 2, w->len + len + 4096);
        unsigned char *n = realloc(w->data, cap);
        if (!n) {
            w->oom = true;
            return (SnapSpan){0};
        }
        w->data = n;
        w->cap = cap;
    }
    if (len)
        memcpy(w->data + w->len, p, len);
    SnapSpan s = {w->len, len};
    w->len += len;
    return s;
}

static SnapSpan put_str(SnapWriter *w, const char *s)
{
    return put(w, s, s ? strlen(s) : 0);
}

/* A span from a to the end of b (both already written, in that order). */
static SnapSpan join(SnapSpan a, SnapSpan b)
{
    return (SnapSpan){a.off, b.off + b.len - a.off};
}

void snapwriter_body(SnapWriter *w, SnapFormat f, const char *data, size_t len)
{
    w->body[f] = put(w, data, len);
}

void snapwriter_json(SnapWriter *w, const char *head, const pid_t *pids,
                     const char *const *processes, const size_t *lens, size_t n, const char *tail)
{
    free(w->recs);
    w->recs = calloc(n ? n : 1, sizeof(*w->recs));
    w->nrecs = n;
    if (!w->recs) {
        w->oom = true;
        w->nrecs = 0;
    }
    SnapSpan first = put_str(w, head), start = {w->len, 0};
    for (size_t i = 0; i < w->nrecs; i++) {
        if (i)
            put(w, ",", 1);
        SnapSpan p = put(w, processes[i], lens[i]);
        w->recs[i].process = p;
        w->recs[i].pid = pids[i];
    }
    w->processes = (SnapSpan){start.off, w->len - start.off};
    SnapSpan last = put_str(w, tail);
    w->body[SNAP_JSON] = join(first, last);
}

void snapwriter_census(SnapWriter *w, size_t i, double at, const char *head,
                       const char *const *items, const size_t *lens, size_t nitems)
{
    if (i >= w->nrecs)
        return;
    SnapRec *r = &w->recs[i];
    r->flags |= REC_CENSUS;
    r->census_at = at;
    r->census_head = put_str(w, head);
    uint64_t *ends = calloc(nitems ? nitems : 1, sizeof(*ends));
    if (!ends) {
        w->oom = true;
        return;
    }
    size_t start = w->len;
    for (size_t k = 0; k < nitems; k++) {
        if (k)
            put(w, ",", 1);
        put(w, items[k], lens[k]);
        ends[k] = w->len - start;
    }
    r->census_items = (SnapSpan){start, w->len - start};
    /* Aligned, so the reader may index it as uint64_t. */
    static const char pad[8];
    put(w, pad, (8 - w->len % 8) % 8);
    r->census_ends = put(w, ends, nitems * sizeof(*ends));
    free(ends);
}

void snapwriter_readable(SnapWriter *w, size_t i, bool readable)
{
    if (i < w->nrecs && readable)
        w->recs[i].flags |= REC_READABLE;
}

void snapwriter_census_error(SnapWriter *w, size_t i, const char *census_error)
{
    if (i < w->nrecs)
        w->recs[i].census_error = put_str(w, census_error);
}

void snapwriter_growth(SnapWriter *w, size_t i, const char *growth, size_t len)
{
    if (i >= w->nrecs)
        return;
    w->recs[i].flags |= REC_GROWTH;
    w->recs[i].growth = put(w, growth, len);
}

void snapwriter_sample(SnapWriter *w, size_t i, const SnapSample *sample)
{
    if (i < w->nrecs)
        w->recs[i].sample = *sample;
}

void snapwriter_settings(SnapWriter *w, const SnapSettings *settings)
{
    w->settings = *settings;
}

static void shift(SnapSpan *s, uint64_t by)
{
    s->off += by;
}

static Snapshot *snapshot_wrap(const unsigned char *block, size_t size, bool mapped)
{
    Snapshot *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->gz_lock, NULL);
    s->block = block;
    s->size = size;
    s->mapped = mapped;
    s->h = (const SnapHeader *)(const void *)block;
    s->recs = (const SnapRec *)(const void *)(block + s->h->index.off);
    return s;
}

int snapwriter_finish(SnapWriter *w, Snapshot **ret)
{
    if (w->oom) {
        snapwriter_free(w);
        return -ENOMEM;
    }
    size_t base = sizeof(SnapHeader) + w->nrecs * sizeof(SnapRec);
    size_t size = base + w->len;
    /* The block is the writer's buffer, grown by the header and the index and its bytes moved
     * up: its pages are written already, where a new block of this size (past the mmap
     * threshold) would fault in every page again, each interval. Past the threshold, a realloc
     * to the same number of pages does nothing. */
    unsigned char *block = realloc(w->data, size);
    if (!block) {
        snapwriter_free(w);
        return -ENOMEM;
    }
    w->data = NULL;
    if (w->len)
        memmove(block + base, block, w->len);
    SnapHeader h = {
        .size = size, .taken_at = w->taken_at, .nprocs = w->nrecs, .settings = w->settings};
    memcpy(h.magic, SNAP_MAGIC, sizeof(h.magic));
    for (int f = 0; f < SNAP_NFORMATS; f++) {
        h.body[f] = w->body[f];
        shift(&h.body[f], base);
    }
    h.processes = w->processes;
    shift(&h.processes, base);
    h.index = (SnapSpan){sizeof(SnapHeader), w->nrecs * sizeof(SnapRec)};
    for (size_t i = 0; i < w->nrecs; i++) {
        SnapRec *r = &w->recs[i];
        SnapSpan *spans[] = {&r->process,      &r->census_error, &r->census_head,
                             &r->census_items, &r->census_ends,  &r->growth};
        for (size_t k = 0; k < ARRAY_SIZE(spans); k++)
            shift(spans[k], base);
    }
    memcpy(block, &h, sizeof(h));
    if (w->nrecs)
        memcpy(block + sizeof(h), w->recs, w->nrecs * sizeof(SnapRec));
    snapwriter_free(w);
    Snapshot *s = snapshot_wrap(block, size, false);
    if (!s) {
        free(block);
        return -ENOMEM;
    }
    *ret = s;
    return 0;
}

/* ---- validation and sharing ------------------------------------------------------------------ */

static bool span_ok(SnapSpan s, size_t size)
{
    return s.off <= size && s.len <= size - s.off;
}

/* Whether a block's header and index describe only bytes inside it. The block comes from the
 * sampler, which is trusted; checking costs little and turns a bug there into a refused
 * snapshot instead of a read out of bounds here. */
/* The casts from the block to its records below go through void *: the block is mmap()ed or
 * malloc()ed (aligned for any record), and block_valid() checks that every record's offset is a
 * multiple of 8. */
static bool block_valid(const unsigned char *block, size_t size)
{
    if (size < sizeof(SnapHeader))
        return false;
    const SnapHeader *h = (const SnapHeader *)(const void *)block;
    if (memcmp(h->magic, SNAP_MAGIC, sizeof(h->magic)) != 0 || h->size != size)
        return false;
    for (int f = 0; f < SNAP_NFORMATS; f++)
        if (!span_ok(h->body[f], size))
            return false;
    if (!span_ok(h->processes, size) || !span_ok(h->index, size) || h->index.off % 8 ||
        h->nprocs > size / sizeof(SnapRec) || h->index.len != h->nprocs * sizeof(SnapRec))
        return false;
    /* The settings size the listener's history: finite, and an interval it can divide by. */
    const SnapSettings *st = &h->settings;
    if (!isfinite(st->interval) || st->interval < 0 || !isfinite(st->history_seconds) ||
        st->history_seconds < 0)
        return false;
    const SnapRec *recs = (const SnapRec *)(const void *)(block + h->index.off);
    for (size_t i = 0; i < h->nprocs; i++) {
        const SnapRec *r = &recs[i];
        SnapSpan spans[] = {r->process,      r->census_error, r->census_head,
                            r->census_items, r->census_ends,  r->growth};
        for (size_t k = 0; k < ARRAY_SIZE(spans); k++)
            if (!span_ok(spans[k], size))
                return false;
        if (r->census_ends.off % 8 || r->census_ends.len % 8)
            return false;
        if (!isfinite(r->sample.t) || r->sample.t < 0 || r->sample.read & ~SNAP_READ_ALL)
            return false;
        const uint64_t *ends = (const uint64_t *)(const void *)(block + r->census_ends.off);
        uint64_t prev = 0;
        for (size_t k = 0; k < r->census_ends.len / 8; k++) {
            if (ends[k] < prev || ends[k] > r->census_items.len)
                return false;
            prev = ends[k];
        }
    }
    return true;
}

int snapshot_to_memfd(const Snapshot *s, int *ret_fd)
{
    return memfd_sealed("pymemd-snapshot", s->block, s->size, ret_fd);
}

int snapshot_from_fd(int fd_in, Snapshot **ret)
{
    _cleanup_(closep) int fd = fd_in;
    size_t size;
    int k = memfd_sealed_size(fd, &size);
    if (k < 0)
        return k;
    if (size < sizeof(SnapHeader))
        return -EINVAL;
    void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    if (!block_valid(p, size)) {
        munmap(p, size);
        return -EINVAL;
    }
    Snapshot *s = snapshot_wrap(p, size, true);
    if (!s) {
        munmap(p, size);
        return -ENOMEM;
    }
    *ret = s;
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------- */

Snapshot *snapshot_ref(Snapshot *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

Snapshot *snapshot_unref(Snapshot *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return NULL;
    for (int f = 0; f < SNAP_NFORMATS; f++)
        free((void *)s->gz[f].data);
    if (s->mapped)
        munmap((void *)s->block, s->size);
    else
        spare_put((unsigned char *)s->block);
    pthread_mutex_destroy(&s->gz_lock);
    free(s);
    return NULL;
}

double snapshot_taken_at(const Snapshot *s)
{
    return s->h->taken_at;
}

SnapSettings snapshot_settings(const Snapshot *s)
{
    return s->h->settings;
}

size_t snapshot_size(const Snapshot *s)
{
    return s->size;
}

static SnapBody at(const Snapshot *s, SnapSpan sp)
{
    return (SnapBody){(const char *)s->block + sp.off, sp.len};
}

SnapBody snapshot_body(const Snapshot *s, SnapFormat f)
{
    return at(s, s->h->body[f]);
}

static int gzip_body(SnapBody in, SnapBody *out)
{
    z_stream z = {0};
    /* windowBits 15 + 16: a gzip wrapper, as Content-Encoding: gzip wants. */
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, in.len);
    unsigned char *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (unsigned char *)in.data;
    z.avail_in = (uInt)in.len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    size_t len = z.total_out;
    deflateEnd(&z);
    if (r != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    out->data = (char *)buf;
    out->len = len;
    return 0;
}

const SnapBody *snapshot_gzip(Snapshot *s, SnapFormat f)
{
    pthread_mutex_lock(&s->gz_lock);
    if (!s->gz[f].data && !s->gz_failed[f])
        s->gz_failed[f] = gzip_body(snapshot_body(s, f), &s->gz[f]) < 0;
    const SnapBody *b = s->gz[f].data ? &s->gz[f] : NULL;
    pthread_mutex_unlock(&s->gz_lock);
    return b;
}

/* head, the body, tail: a malloc'd NUL-terminated string. */
static char *concat3(const char *head, size_t hlen, const char *body, size_t blen, const char *tail,
                     size_t tlen, size_t *ret_len)
{
    char *out = malloc(hlen + blen + tlen + 1);
    if (!out)
        return NULL;
    memcpy(out, head, hlen);
    if (blen)
        memcpy(out + hlen, body, blen);
    memcpy(out + hlen + blen, tail, tlen);
    out[hlen + blen + tlen] = 0;
    if (ret_len)
        *ret_len = hlen + blen + tlen;
    return out;
}

char *snapshot_processes(const Snapshot *s, size_t *ret_len)
{
    static const char head[] = "{\"processes\":[", tail[] = "]}";
    SnapBody b = at(s, s->h->processes);
    return concat3(head, sizeof(head) - 1, b.data, b.len, tail, sizeof(tail) - 1, ret_len);
}

size_t snapshot_nprocs(const Snapshot *s)
{
    return s->h->nprocs;
}

static const SnapRec *find_rec(const Snapshot *s, pid_t pid)
{
    for (size_t i = 0; i < s->h->nprocs; i++)
        if (s->recs[i].pid == pid)
            return &s->recs[i];
    return NULL;
}

bool snapshot_find(const Snapshot *s, pid_t pid, SnapProc *ret)
{
    const SnapRec *r = find_rec(s, pid);
    if (!r)
        return false;
    return snapshot_proc(s, (size_t)(r - s->recs), ret);
}

bool snapshot_proc(const Snapshot *s, size_t i, SnapProc *ret)
{
    if (i >= s->h->nprocs)
        return false;
    const SnapRec *r = &s->recs[i];
    pid_t pid = (pid_t)r->pid;
    *ret = (SnapProc){
        .pid = pid,
        .readable = r->flags & REC_READABLE,
        .process = at(s, r->process),
        .have_census = r->flags & REC_CENSUS,
        .census_at = r->census_at,
        .census_error = at(s, r->census_error),
        .have_growth = r->flags & REC_GROWTH,
        .growth = at(s, r->growth),
        .sample = r->sample,
    };
    return true;
}

char *snapshot_census(const Snapshot *s, pid_t pid, size_t top, size_t *ret_len)
{
    static const char tail[] = "]}";
    const SnapRec *r = find_rec(s, pid);
    if (!r || !(r->flags & REC_CENSUS))
        return NULL;
    size_t nitems = r->census_ends.len / sizeof(uint64_t);
    size_t n = top && top < nitems ? top : nitems;
    const uint64_t *ends = (const uint64_t *)(const void *)(s->block + r->census_ends.off);
    SnapBody head = at(s, r->census_head), items = at(s, r->census_items);
    return concat3(head.data, head.len, items.data, n ? ends[n - 1] : 0, tail, sizeof(tail) - 1,
                   ret_len);
}

/* ---- holder ---------------------------------------------------------------------------------- */

void holder_init(SnapshotHolder *h)
{
    pthread_mutex_init(&h->lock, NULL);
    h->cur = NULL;
    h->swapped_at = 0;
}

void holder_done(SnapshotHolder *h)
{
    h->cur = snapshot_unref(h->cur);
    pthread_mutex_destroy(&h->lock);
}

void holder_swap(SnapshotHolder *h, Snapshot *s)
{
    pthread_mutex_lock(&h->lock);
    Snapshot *old = h->cur;
    h->cur = s;
    h->swapped_at = clock_mono();
    pthread_mutex_unlock(&h->lock);
    /* The old one is freed outside the lock, once the last reader lets go. */
    snapshot_unref(old);
}

double holder_age(SnapshotHolder *h)
{
    pthread_mutex_lock(&h->lock);
    double age = h->cur ? clock_mono() - h->swapped_at : -1;
    pthread_mutex_unlock(&h->lock);
    return age;
}

Snapshot *holder_get(SnapshotHolder *h)
{
    pthread_mutex_lock(&h->lock);
    Snapshot *s = h->cur ? snapshot_ref(h->cur) : NULL;
    pthread_mutex_unlock(&h->lock);
    return s;
}
