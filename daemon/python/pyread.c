#include "python/pyread.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "python/mimalloc.h"

/* Bounds on walks of remote lists: a corrupt or hostile target gets an error, not a hang. */
#define MAX_THREADS     100000
#define MAX_FROZEN      50000000
#define MAX_ARENAS      (1u << 20)
#define FROZEN_TORN_MAX 3 /* walks of the frozen list found torn in a row before giving up */
#define GC_STATE_MAX    4096
#define OBM_WINDOW_MAX  4096
#define STATS_MAX       8192
/* Free-threaded: a thread adds its allocation count to the global one when it reaches ±512
 * (LOCAL_ALLOC_COUNT_THRESHOLD, Python/gc_free_threading.c); a little headroom for the thread
 * that is between reaching it and adding it. */
#define FT_ALLOC_COUNT_MAX 4096
#define FT_COUNT_ATTEMPTS  4

struct PyReader {
    PyLoc loc;      /* a copy: the layout and addresses */
    RAddr interp;   /* main interpreter, 0 until known */
    RAddr obmalloc; /* its obmalloc state, 0 until known */
    /* The frozen count last known, and the ends of the list it was counted with. */
    bool frozen_known;
    int64_t frozen;
    uint64_t frozen_first, frozen_last;
    double frozen_at;
    /* The walk that counts it, spread over samples: where it stands. */
    bool walking;
    uint64_t walk_first, walk_last; /* the ends the walk started from */
    RAddr walk_prev, walk_node;
    int64_t walk_n;
    /* Walks that found a broken link in a row: the program may have freed a frozen object under
     * a walk spread over samples, so a few are retried at once. */
    int walk_torn;
    /* The last walk failed for good (a list that does not hold together, or too long): not
     * retried until the ends move or PYREAD_FROZEN_MAX_AGE passes. */
    bool walk_failed;
    double walk_failed_at;
    char walk_error[96];
    uint8_t *window; /* PYREAD_FROZEN_WINDOW bytes around the node the walk stands at */
    RAddr win_base;
    uint64_t win_len; /* 0: nothing read in this sample yet */
    Maps *maps;       /* the target's mappings, read again when arenas fall outside them */
    bool skip_blocks;
};

int pyreader_new(const PyLoc *loc, PyReader **ret)
{
    if (loc->status != PYLOC_OK || loc->layout.gc.size > GC_STATE_MAX)
        return -EINVAL;
    PyReader *pr = calloc(1, sizeof(*pr));
    if (pr)
        pr->window = malloc(PYREAD_FROZEN_WINDOW);
    if (!pr || !pr->window) {
        free(pr);
        return -ENOMEM;
    }
    pr->loc = *loc;
    *ret = pr;
    return 0;
}

void pyreader_set_allocated_blocks(PyReader *pr, bool on)
{
    pr->skip_blocks = !on;
}

PyReader *pyreader_free(PyReader *pr)
{
    if (pr) {
        maps_free(pr->maps);
        free(pr->window);
    }
    free(pr);
    return NULL;
}

static int64_t get_i64(const uint8_t *p, uint32_t off)
{
    int64_t v;
    memcpy(&v, p + off, sizeof(v));
    return v;
}

static int32_t get_i32(const uint8_t *p, uint32_t off)
{
    int32_t v;
    memcpy(&v, p + off, sizeof(v));
    return v;
}

/* Finds the main interpreter and, where the allocator state hangs off a pointer, that state.
 * Both live as long as the process, so they are read once. */
static int resolve_interp(PyReader *pr, Rmem *r)
{
    const PyLayout *l = &pr->loc.layout;
    uint64_t interp;
    int k = rmem_read_u64(r, pr->loc.runtime + l->runtime.interpreters_main, &interp);
    if (k < 0)
        return k;
    if (interp == 0)
        return -EBUSY; /* not initialised yet, or torn down */
    pr->interp = interp;
    pr->obmalloc = 0;
    if (l->obmalloc.kind == PYOBM_EMBEDDED) {
        pr->obmalloc = interp + l->interp.obmalloc;
    } else if (l->obmalloc.kind == PYOBM_POINTER) {
        uint64_t p;
        k = rmem_read_u64(r, interp + l->interp.obmalloc, &p);
        if (k < 0)
            return k;
        pr->obmalloc = p;
    }
    return 0;
}

static RAddr gc_address(const PyReader *pr)
{
    const PyLayout *l = &pr->loc.layout;
    return l->runtime.gc != PYL_NONE ? pr->loc.runtime + l->runtime.gc : pr->interp + l->interp.gc;
}

/* Counts the thread states of the main interpreter: one read per thread, since it is a linked
 * list. The first read also fetches what the first batch pointed at (the length of gc.garbage,
 * 3.15's statistics), to share a system call. */
static int count_threads(PyReader *pr, Rmem *r, uint64_t head, RmemIov *extra, size_t nextra,
                         int64_t *ret)
{
    const PyLayout *l = &pr->loc.layout;
    uint64_t next = 0;
    RmemIov iov[4];
    size_t n = 0;
    if (head)
        iov[n++] = (RmemIov){head + l->tstate.next, &next, 8};
    for (size_t i = 0; i < nextra && n < ARRAY_SIZE(iov); i++)
        iov[n++] = extra[i];
    int k = rmem_readv(r, iov, n);
    if (k < 0)
        return k;

    int64_t threads = head ? 1 : 0;
    while (next) {
        if (++threads > MAX_THREADS)
            return -EIO;
        k = rmem_read_u64(r, next + l->tstate.next, &next);
        if (k < 0)
            return k;
    }
    *ret = threads;
    return 0;
}

/* Free-threaded builds (free_threaded): counts the thread states like count_threads() and
 * sums their gc.alloc_count, the GC allocations minus deallocations each thread has not yet
 * added to generation 0's count (it adds them every 512, Python/gc_free_threading.c). */
static int ft_walk_threads(PyReader *pr, Rmem *r, uint64_t head, RmemIov *extra, size_t nextra,
                           int64_t *ret_threads, int64_t *ret_unflushed)
{
    const PyLayout *l = &pr->loc.layout;
    uint64_t next = 0, tstate = head;
    int64_t alloc = 0, threads = 0, unflushed = 0;
    RmemIov iov[4];
    size_t n = 0;
    if (head) {
        iov[n++] = (RmemIov){head + l->tstate.next, &next, 8};
        iov[n++] = (RmemIov){head + l->tstate.alloc_count, &alloc, 8};
    }
    for (size_t i = 0; i < nextra && n < ARRAY_SIZE(iov); i++)
        iov[n++] = extra[i];
    int k = rmem_readv(r, iov, n);
    while (k >= 0 && tstate) {
        /* One thread's count stays within ±512 of zero; more is not an alloc_count. */
        if (++threads > MAX_THREADS || alloc < -FT_ALLOC_COUNT_MAX || alloc > FT_ALLOC_COUNT_MAX)
            return -EIO;
        unflushed += alloc;
        tstate = next;
        if (tstate) {
            RmemIov t[2] = {{tstate + l->tstate.next, &next, 8},
                            {tstate + l->tstate.alloc_count, &alloc, 8}};
            k = rmem_readv(r, t, 2);
        }
    }
    if (k < 0)
        return k;
    *ret_threads = threads;
    *ret_unflushed = unflushed;
    return 0;
}

/* Free-threaded builds: sys.getallocatedblocks() counts the blocks in use in mimalloc's heaps
 * (python/mimalloc.c), and the same walk sums their bytes; there are no arenas, so those fields
 * stay null. Heaps caught mid-change by this sample of a running target leave both null for this
 * sample only, with the reason. */
static void ft_allocated_blocks(PyReader *pr, Rmem *r, PySample *s)
{
    int64_t blocks, bytes;
    char why[160];
    int k = mimalloc_allocated(&pr->loc.layout, r, pr->loc.runtime, pr->interp, &blocks, &bytes,
                               why, sizeof(why));
    if (k < 0) {
        snprintf(s->blocks_reason, sizeof(s->blocks_reason),
                 "allocated_blocks, allocated_bytes: not read at this sample (%s)",
                 why[0] ? why : strerror(-k));
        return;
    }
    s->pymalloc_ok = true;
    s->arenas = s->arenas_highwater = s->arena_bytes = -1;
    s->allocated_blocks = blocks;
    s->allocated_bytes = bytes;
}

/* The free-threaded part of a sample: threads, and generation 0's count as the global count plus
 * every thread's unflushed share. A thread that flushes while the list is walked would be
 * counted twice or not at all, so the global count is read again after the walk and the walk
 * repeated (a few times at most) until it did not move. gc: the GC state's bytes, whose
 * generation 0 count is updated to the value the walk agrees with. */
static int ft_sample_threads(PyReader *pr, Rmem *r, uint8_t *gc, uint64_t head, RmemIov *extra,
                             size_t nextra, PySample *s, int64_t *ret_unflushed)
{
    const PyLayout *l = &pr->loc.layout;
    uint32_t at = l->gc.generations + l->gc.generation_count;
    int64_t unflushed = 0;
    for (int attempt = 0; attempt < FT_COUNT_ATTEMPTS; attempt++) {
        int k =
            ft_walk_threads(pr, r, head, extra, attempt == 0 ? nextra : 0, &s->threads, &unflushed);
        if (k < 0)
            return k;
        int32_t before = get_i32(gc, at), after;
        k = rmem_read(r, gc_address(pr) + at, &after, sizeof(after));
        if (k < 0)
            return k;
        if (after == before)
            break;
        memcpy(gc + at, &after, sizeof(after));
    }
    *ret_unflushed = unflushed;
    return 0;
}

/* The 16 bytes of PyGC_Head at node: from the window read last when they lie in it, else
 * from a new read of the aligned window around node (or, near the end of a mapping, of its
 * page, or of the 16 bytes alone). Counts the reads in *reads. */
static int frozen_links(PyReader *pr, Rmem *r, RAddr node, uint64_t links[2], int64_t *reads)
{
    if (pr->win_len < 16 || node < pr->win_base || node - pr->win_base > pr->win_len - 16) {
        static const uint64_t sizes[] = {PYREAD_FROZEN_WINDOW, 4096};
        int k = -EFAULT;
        for (size_t i = 0; i < ARRAY_SIZE(sizes) && k == -EFAULT; i++) {
            RAddr base = node & ~(sizes[i] - 1);
            if (node - base > sizes[i] - 16)
                continue; /* the node straddles the window's end */
            (*reads)++;
            k = rmem_read(r, base, pr->window, sizes[i]);
            if (k >= 0) {
                pr->win_base = base;
                pr->win_len = sizes[i];
            }
        }
        if (k == -EFAULT) {
            pr->win_len = 0;
            (*reads)++;
            return rmem_read(r, node, links, 16);
        }
        if (k < 0)
            return k;
    }
    memcpy(links, pr->window + (node - pr->win_base), 16);
    return 0;
}

/* Advances the walk of the permanent generation, checking every back link, until it is back at
 * the head or has spent `reads` reads or `links` links. Returns 1 when it is back at the head
 * (pr->walk_n is the count), 0 when the budget ran out first, -EIO when a link does not hold
 * together (torn by the program since the last sample, or corrupt), -E2BIG past MAX_FROZEN, or
 * a read error. The window is not kept from one sample to the next: the program runs between. */
static int walk_frozen(PyReader *pr, Rmem *r, RAddr head, int64_t reads, int64_t links)
{
    int64_t done = 0, used = 0;
    pr->win_len = 0;
    while (pr->walk_node != head) {
        if (done >= links || used >= reads)
            return 0;
        uint64_t l[2]; /* PyGC_Head: _gc_next, _gc_prev (low two bits are flags) */
        int k = frozen_links(pr, r, pr->walk_node, l, &used);
        if (k < 0)
            return k == -EFAULT ? -EIO : k;
        if ((l[1] & ~3ull) != pr->walk_prev)
            return -EIO;
        if (++pr->walk_n > MAX_FROZEN)
            return -E2BIG;
        done++;
        pr->walk_prev = pr->walk_node;
        pr->walk_node = l[0] & ~1ull;
    }
    return 1;
}

/* The frozen count for this sample, from what is known and a bounded step of the walk. */
static int sample_frozen(PyReader *pr, Rmem *r, double now, bool force, uint64_t first,
                         uint64_t last, PySample *s)
{
    RAddr head = gc_address(pr) + pr->loc.layout.gc.permanent_generation;
    bool current = pr->frozen_known && pr->frozen_first == first && pr->frozen_last == last;
    bool moved = pr->walk_failed && (pr->walk_first != first || pr->walk_last != last);
    if (moved || (pr->walk_failed && now - pr->walk_failed_at > PYREAD_FROZEN_MAX_AGE))
        pr->walk_failed = false;
    bool want = !current || force || now - pr->frozen_at > PYREAD_FROZEN_MAX_AGE;
    if (want && !pr->walk_failed) {
        if (!pr->walking || pr->walk_first != first || pr->walk_last != last) {
            /* A walk begun under other ends counts a list that has changed since: start over. */
            pr->walking = true;
            pr->walk_first = first;
            pr->walk_last = last;
            pr->walk_prev = head;
            pr->walk_node = first & ~1ull;
            pr->walk_n = 0;
        }
        int k =
            force ? walk_frozen(pr, r, head, PYREAD_FROZEN_FORCED_READS, PYREAD_FROZEN_FORCED_LINKS)
                  : walk_frozen(pr, r, head, PYREAD_FROZEN_READS, PYREAD_FROZEN_LINKS);
        if (k == -ESRCH || k == -EPERM)
            return k;
        if (k == -EIO && ++pr->walk_torn < FROZEN_TORN_MAX) {
            pr->walking = false; /* start over at the next sample */
        } else if (k < 0) {
            pr->walking = false;
            pr->walk_torn = 0;
            pr->walk_failed = true;
            pr->walk_failed_at = now;
            snprintf(pr->walk_error, sizeof(pr->walk_error), "%s",
                     k == -E2BIG ? "it is longer than any real one (a corrupt or forged list)"
                                 : "a link does not hold together");
        } else if (k == 1) {
            pr->walking = false;
            pr->walk_torn = 0;
            pr->frozen_known = true;
            pr->frozen = pr->walk_n;
            pr->frozen_first = first;
            pr->frozen_last = last;
            pr->frozen_at = now;
            current = true;
        }
    }
    if (current) {
        s->frozen = pr->frozen;
        s->frozen_age = now - pr->frozen_at;
        return 0;
    }
    if (pr->walk_failed)
        snprintf(s->frozen_reason, sizeof(s->frozen_reason),
                 "frozen: the permanent generation (gc.freeze()) cannot be counted: %s; "
                 "retried when it changes",
                 pr->walk_error);
    else
        snprintf(s->frozen_reason, sizeof(s->frozen_reason),
                 "frozen: counting the permanent generation (gc.freeze()), %" PRId64
                 " objects so far, a stretch per sample, or at the next census",
                 pr->walk_n);
    return 0;
}

void pyreader_note_frozen(PyReader *pr, int64_t count, uint64_t first, uint64_t last, double at)
{
    pr->frozen_known = true;
    pr->frozen = count;
    pr->frozen_first = first;
    pr->frozen_last = last;
    pr->frozen_at = at;
    pr->walking = false; /* the census's count is newer than anything a walk in progress has */
    pr->walk_failed = false;
}

static int cmp_arena(const void *a, const void *b)
{
    const PyArena *x = a, *y = b;
    return (x->address > y->address) - (x->address < y->address);
}

int pyread_arenas(const PyLayout *l, Rmem *r, const Maps *maps, uint64_t arenas, uint32_t maxarenas,
                  PyArena **ret, size_t *ret_n)
{
    if (maxarenas > MAX_ARENAS)
        return -EIO;
    size_t asz = l->obmalloc.arena_object_size;
    /* The table is an allocation of the target: it cannot be larger than what is mapped there. */
    if (maxarenas && !maps_readable(maps, arenas, (uint64_t)maxarenas * asz))
        return -ERANGE;
    uint8_t *table = malloc(maxarenas ? (size_t)maxarenas * asz : 1);
    PyArena *v = calloc(maxarenas ? maxarenas : 1, sizeof(*v));
    int k = table && v ? 0 : -ENOMEM;
    if (k >= 0 && maxarenas)
        k = rmem_read(r, arenas, table, (size_t)maxarenas * asz);
    size_t n = 0;
    uint64_t pool = l->obmalloc.pool_size;
    for (uint32_t i = 0; k >= 0 && i < maxarenas; i++) {
        uint64_t address = (uint64_t)get_i64(table, i * asz + l->obmalloc.arena_address);
        uint64_t used_end = (uint64_t)get_i64(table, i * asz + l->obmalloc.arena_pool_address);
        if (!address)
            continue;
        /* Pools start at the first pool boundary in the arena (Objects/obmalloc.c). */
        uint64_t base = (address + pool - 1) & ~(pool - 1);
        if (used_end < base || used_end - base > l->obmalloc.arena_size)
            k = -EIO;
        else if (used_end > base && !maps_anon_readable(maps, address, used_end - address))
            k = -ERANGE; /* not memory an arena can be in */
        else if (used_end > base)
            v[n++] = (PyArena){address, used_end};
    }
    free(table);
    /* Overlapping arenas would let a forged table claim the same mapped MiB a thousand times. */
    if (k >= 0)
        qsort(v, n, sizeof(*v), cmp_arena);
    for (size_t i = 1; k >= 0 && i < n; i++)
        if (v[i].address < v[i - 1].used_end)
            k = -ERANGE;
    if (k < 0) {
        free(v);
        return k;
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

int pyread_arenas_mapped(const PyLayout *l, Rmem *r, Maps **maps, uint64_t arenas,
                         uint32_t maxarenas, PyArena **ret, size_t *ret_n)
{
    bool fresh = false;
    int k;
    if (!*maps) {
        if ((k = rmem_maps(r, maps)) < 0)
            return k;
        fresh = true;
    }
    k = pyread_arenas(l, r, *maps, arenas, maxarenas, ret, ret_n);
    if (k != -ERANGE || fresh)
        return k;
    *maps = maps_free(*maps);
    if ((k = rmem_maps(r, maps)) < 0)
        return k;
    return pyread_arenas(l, r, *maps, arenas, maxarenas, ret, ret_n);
}

/* sys.getallocatedblocks() for 3.9+: blocks handed out by the raw allocator plus, for every pool
 * carved from a live arena, its count of allocated blocks (Objects/obmalloc.c,
 * _PyInterpreterState_GetAllocatedBlocks). */
static int count_blocks(const PyLayout *l, Rmem *r, Maps **maps, uint64_t arenas,
                        uint32_t maxarenas, int64_t raw, int64_t *ret)
{
    if (!arenas) {
        *ret = raw;
        return maxarenas ? -EIO : 0;
    }
    PyArena *live;
    size_t nlive;
    int k = pyread_arenas_mapped(l, r, maps, arenas, maxarenas, &live, &nlive);
    if (k < 0)
        return k == -ERANGE ? -EIO : k;
    uint64_t pool = l->obmalloc.pool_size;
    size_t cap = nlive * (l->obmalloc.arena_size / pool + 1), n = 0;
    RmemIov *iov = calloc(cap ? cap : 1, sizeof(*iov));
    uint32_t *counts = calloc(cap ? cap : 1, sizeof(*counts));
    if (!iov || !counts) {
        free(live), free(iov), free(counts);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nlive; i++)
        for (uint64_t base = (live[i].address + pool - 1) & ~(pool - 1);
             base < live[i].used_end && n < cap; base += pool, n++)
            iov[n] = (RmemIov){base + l->obmalloc.pool_ref_count, &counts[n], sizeof(uint32_t)};
    k = rmem_readv(r, iov, n);
    int64_t total = raw;
    for (size_t i = 0; i < n; i++)
        total += counts[i];
    free(live), free(iov), free(counts);
    if (k < 0)
        return k;
    *ret = total;
    return 0;
}

/* gc.get_stats() numbers. stats: the array inside the GC state, or (3.15) struct gc_stats. */
static int parse_generations(const PyLayout *l, const uint8_t *gc, const uint8_t *stats,
                             PySample *s)
{
    s->ngenerations = MIN(l->gc.ngenerations, (uint32_t)PYREAD_MAX_GENERATIONS);
    for (unsigned g = 0; g < s->ngenerations; g++) {
        const uint8_t *gen = gc + l->gc.generations + g * l->gc.generation_size;
        PyGcGeneration *o = &s->gen[g];
        o->count = get_i32(gen, l->gc.generation_count);
        o->threshold = get_i32(gen, l->gc.generation_threshold);
        o->candidates = -1;
        o->duration = NAN;
        const uint8_t *st;
        if (l->gc.stats_kind == PYGCS_ARRAY) {
            st = stats + g * l->gc.stats_entry_size;
        } else {
            /* 3.15: each generation keeps a ring of entries; the one at the cursor is the newest
             * and carries the running totals gc.get_stats() reports. */
            int8_t idx;
            memcpy(&idx, stats + l->gc.stats_ring[g].index, 1);
            if (idx < 0 || (uint32_t)idx >= l->gc.stats_ring[g].len)
                return -EIO;
            st = stats + l->gc.stats_ring[g].offset + (uint32_t)idx * l->gc.stats_entry_size;
            o->candidates = get_i64(st, l->gc.stat_candidates);
            memcpy(&o->duration, st + l->gc.stat_duration, sizeof(double));
            if (o->candidates < 0 || !(o->duration >= 0))
                return -EIO;
        }
        o->collections = get_i64(st, l->gc.stat_collections);
        o->collected = get_i64(st, l->gc.stat_collected);
        o->uncollectable = get_i64(st, l->gc.stat_uncollectable);
        if (o->collections < 0 || o->collected < 0 || o->uncollectable < 0)
            return -EIO;
    }
    return 0;
}

/* The counters of the allocator, read in the first batch: for 3.12+ one window of struct
 * _obmalloc_state, before that one word per static. */
typedef struct ObmRead {
    uint8_t window[OBM_WINDOW_MAX];
    uint32_t lo; /* offset of window[0] inside the state */
    uint64_t narenas, highwater, arenas, raw, blocks, leaks;
    uint32_t maxarenas;
} ObmRead;

static size_t obm_iovs(const PyReader *pr, ObmRead *o, RmemIov *iov)
{
    const PyLayout *l = &pr->loc.layout;
    const PyObmallocSymbols *s = &pr->loc.obm;
    size_t n = 0;
    if (!pr->loc.obmalloc_ok)
        return 0;
    if (l->obmalloc.kind == PYOBM_SYMBOLS) {
        iov[n++] = (RmemIov){s->narenas_currently_allocated, &o->narenas, 8};
        iov[n++] = (RmemIov){s->narenas_highwater, &o->highwater, 8};
        if (l->obmalloc.counter_symbol) {
            iov[n++] = (RmemIov){s->allocated_blocks, &o->blocks, 8};
        } else {
            iov[n++] = (RmemIov){s->raw_allocated_blocks, &o->raw, 8};
            iov[n++] = (RmemIov){s->arenas, &o->arenas, 8};
            iov[n++] = (RmemIov){s->maxarenas, &o->maxarenas, 4};
        }
        return n;
    }
    if (!pr->obmalloc)
        return 0;
    uint32_t lo = MIN(l->obmalloc.arenas, l->obmalloc.narenas_currently_allocated);
    uint32_t hi = MAX(l->obmalloc.raw_allocated_blocks, l->obmalloc.narenas_highwater) + 8;
    if (hi - lo > sizeof(o->window))
        return 0;
    o->lo = lo;
    iov[n++] = (RmemIov){pr->obmalloc + lo, o->window, hi - lo};
    if (l->runtime.obmalloc_interpreter_leaks != PYL_NONE)
        iov[n++] = (RmemIov){pr->loc.runtime + l->runtime.obmalloc_interpreter_leaks, &o->leaks, 8};
    return n;
}

static int finish_obmalloc(PyReader *pr, Rmem *r, ObmRead *o, PySample *s)
{
    const PyLayout *l = &pr->loc.layout;
    if (l->obmalloc.kind != PYOBM_SYMBOLS) {
        o->narenas = (uint64_t)get_i64(o->window, l->obmalloc.narenas_currently_allocated - o->lo);
        o->highwater = (uint64_t)get_i64(o->window, l->obmalloc.narenas_highwater - o->lo);
        o->arenas = (uint64_t)get_i64(o->window, l->obmalloc.arenas - o->lo);
        o->maxarenas = (uint32_t)get_i32(o->window, l->obmalloc.maxarenas - o->lo);
        o->raw = (uint64_t)get_i64(o->window, l->obmalloc.raw_allocated_blocks - o->lo);
    }
    s->arenas = (int64_t)o->narenas;
    s->arenas_highwater = (int64_t)o->highwater;
    s->arena_bytes = s->arenas * (int64_t)l->obmalloc.arena_size;
    if (s->arenas < 0 || s->arenas_highwater < s->arenas)
        return -EIO;
    if (l->obmalloc.counter_symbol) {
        s->allocated_blocks = (int64_t)o->blocks;
        return 0;
    }
    if (pr->skip_blocks)
        return 0;
    int k = count_blocks(l, r, &pr->maps, o->arenas, o->maxarenas, (int64_t)o->raw,
                         &s->allocated_blocks);
    if (k < 0)
        return k;
    s->allocated_blocks += (int64_t)o->leaks;
    return 0;
}

int pyreader_bases(const PyReader *pr, RAddr *ret_gc, RAddr *ret_obmalloc, const PyLoc **ret_loc)
{
    if (!pr->interp)
        return -EAGAIN;
    *ret_gc = gc_address(pr);
    *ret_obmalloc = pr->obmalloc;
    *ret_loc = &pr->loc;
    return 0;
}

int pyreader_census_copy(const PyReader *pr, PyReader **ret)
{
    if (!pr->interp)
        return -EAGAIN;
    PyReader *c;
    int k = pyreader_new(&pr->loc, &c);
    if (k < 0)
        return k;
    c->interp = pr->interp;
    c->obmalloc = pr->obmalloc;
    *ret = c;
    return 0;
}

int pyreader_poll_collecting(PyReader *pr, Rmem *r, bool *ret)
{
    if (!pr->interp)
        return -EAGAIN;
    int32_t v;
    int k = rmem_read(r, gc_address(pr) + pr->loc.layout.gc.collecting, &v, sizeof(v));
    if (k < 0)
        return k;
    if (v != 0 && v != 1)
        return -EIO;
    *ret = v;
    return 0;
}

int pyreader_sample(PyReader *pr, Rmem *r, double now, bool force_frozen, PySample *ret)
{
    const PyLayout *l = &pr->loc.layout;
    int k;

    if (!pr->interp && (k = resolve_interp(pr, r)) < 0)
        return k;

    PySample s = {.frozen = -1,
                  .frozen_age = NAN,
                  .garbage = -1,
                  .heap_size = -1,
                  .threads = -1,
                  .arenas = -1,
                  .arenas_highwater = -1,
                  .arena_bytes = -1,
                  .allocated_blocks = -1,
                  .allocated_bytes = -1};
    uint8_t gc[GC_STATE_MAX];
    uint64_t finalizing = 0, main_interp = 0, tstate_head = 0;
    ObmRead obm = {0};
    RmemIov iov[12];
    size_t n = 0;
    iov[n++] = (RmemIov){pr->loc.runtime + l->runtime.finalizing, &finalizing, 8};
    iov[n++] = (RmemIov){pr->loc.runtime + l->runtime.interpreters_main, &main_interp, 8};
    iov[n++] = (RmemIov){gc_address(pr), gc, l->gc.size};
    iov[n++] = (RmemIov){pr->interp + l->interp.threads_head, &tstate_head, 8};
    n += obm_iovs(pr, &obm, iov + n);
    k = rmem_readv(r, iov, n);
    if (k < 0)
        return k;
    if (finalizing)
        return -EBUSY;
    if (main_interp != pr->interp) {
        /* The interpreter moved (a fork re-initialised it): find it again next time. */
        pr->interp = 0;
        pr->frozen_known = pr->walking = pr->walk_failed = false;
        pr->maps = maps_free(pr->maps);
        return -EAGAIN;
    }

    int enabled = get_i32(gc, l->gc.enabled), collecting = get_i32(gc, l->gc.collecting);
    if ((enabled != 0 && enabled != 1) || (collecting != 0 && collecting != 1))
        return -EIO;
    s.enabled = enabled;
    s.collecting = collecting;
    if (l->gc.heap_size != PYL_NONE)
        s.heap_size = get_i64(gc, l->gc.heap_size);

    /* Second batch: the first thread link, the length of gc.garbage and, on 3.15, the statistics
     * the GC state points at. */
    uint64_t garbage, garbage_len = 0;
    uint8_t ring[STATS_MAX];
    RmemIov extra[2];
    size_t nextra = 0;
    memcpy(&garbage, gc + l->gc.garbage, 8);
    if (garbage)
        extra[nextra++] = (RmemIov){garbage + l->object.ob_size, &garbage_len, 8};
    if (l->gc.stats_kind == PYGCS_RING) {
        uint64_t p;
        memcpy(&p, gc + l->gc.stats, 8);
        if (!p || l->gc.stats_size > sizeof(ring))
            return -EIO;
        extra[nextra++] = (RmemIov){p, ring, l->gc.stats_size};
    }
    int64_t unflushed = 0;
    if (l->free_threaded)
        k = ft_sample_threads(pr, r, gc, tstate_head, extra, nextra, &s, &unflushed);
    else
        k = count_threads(pr, r, tstate_head, extra, nextra, &s.threads);
    if (k < 0)
        return k;
    s.garbage = (int64_t)garbage_len;
    if (s.garbage < 0)
        return -EIO;
    k = parse_generations(l, gc, l->gc.stats_kind == PYGCS_RING ? ring : gc + l->gc.stats, &s);
    if (k < 0)
        return k;
    if (l->free_threaded) {
        /* What a collection would see: the global count and the threads' unflushed shares (the
         * target's own gc.get_count() adds only the calling thread's). Frozen objects are a bit
         * in each object's header, counted only by walking the heaps: not read here. */
        s.gen[0].count += unflushed;
        if (!pr->skip_blocks)
            ft_allocated_blocks(pr, r, &s);
        snprintf(s.frozen_reason, sizeof(s.frozen_reason),
                 "frozen: not read on free-threaded builds (frozen objects are a bit in each "
                 "object's header, counted only by walking the heaps)");
        *ret = s;
        return 0;
    }

    uint64_t pfirst, plast;
    memcpy(&pfirst, gc + l->gc.permanent_generation, 8);
    memcpy(&plast, gc + l->gc.permanent_generation + 8, 8);
    if ((k = sample_frozen(pr, r, now, force_frozen, pfirst, plast, &s)) < 0)
        return k;

    if (pr->loc.obmalloc_ok && (l->obmalloc.kind == PYOBM_SYMBOLS || pr->obmalloc)) {
        k = finish_obmalloc(pr, r, &obm, &s);
        if (k < 0)
            return k;
        s.pymalloc_ok = true;
    }
    *ret = s;
    return 0;
}
