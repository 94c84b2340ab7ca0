#include "python/census.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/freeze.h"
#include "util/clock.h"
#include "util/utf8.h"

/* Bounds: a corrupt or hostile target gets an error, never a hang or an unbounded allocation. */
#define MAX_OBJECTS  200000000    /* nodes walked over all generations */
#define MAX_COPY     (8ull << 30) /* arena bytes copied */
#define PAGE         4096u
#define NAME_MAX_LEN 128
#define CHECK_EVERY  4096 /* nodes between looks at the clock */

/* ---- a local view of the target's memory ------------------------------------------------ */

typedef struct Region {
    uint64_t base;
    size_t len;
    uint8_t *buf;
} Region;

typedef struct PageSlot {
    uint64_t page; /* 0: empty */
    uint8_t *buf;  /* NULL when the page could not be read */
} PageSlot;

typedef struct View {
    Rmem *r;
    Region *regions; /* sorted by base, non-overlapping */
    size_t nregions;
    uint8_t *arena_buf; /* one allocation behind every region */
    const Region *last; /* the region of the previous read: list neighbours share arenas */
    PageSlot *pages;    /* open addressing, capacity a power of two */
    size_t npages, cap;
    uint64_t pages_read;
} View;

struct CensusBuffer {
    uint8_t *buf;
    size_t cap;
};

CensusBuffer *censusbuffer_free(CensusBuffer *b)
{
    if (b) {
        munmap(b->buf, b->cap);
        free(b);
    }
    return NULL;
}

/* Makes sure *bp holds at least `need` bytes, faulted in now (MAP_POPULATE), while the target
 * still runs: page faults are then not part of the pause. The slack covers arenas allocated
 * between this estimate and the stop; beyond it the copy falls back to malloc. */
static void buffer_reserve(CensusBuffer **bp, size_t need)
{
    size_t want = need + need / 8 + (1u << 20);
    if (*bp && (*bp)->cap >= want)
        return;
    void *p =
        mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED)
        return; /* the copy falls back to malloc */
    CensusBuffer *b = *bp ? *bp : calloc(1, sizeof(*b));
    if (!b) {
        munmap(p, want);
        return;
    }
    if (b->buf)
        munmap(b->buf, b->cap);
    b->buf = p;
    b->cap = want;
    *bp = b;
}

static void view_done(View *v)
{
    free(v->regions);
    free(v->arena_buf);
    for (size_t i = 0; i < v->cap; i++)
        free(v->pages[i].buf);
    free(v->pages);
}

static PageSlot *page_slot(View *v, uint64_t page)
{
    size_t i = (size_t)((page >> 12) * 0x9e3779b97f4a7c15ull) & (v->cap - 1);
    while (v->pages[i].page && v->pages[i].page != page)
        i = (i + 1) & (v->cap - 1);
    return &v->pages[i];
}

static int page_grow(View *v)
{
    size_t ncap = v->cap ? v->cap * 2 : 1024;
    PageSlot *old = v->pages;
    size_t ocap = v->cap;
    v->pages = calloc(ncap, sizeof(*v->pages));
    if (!v->pages) {
        v->pages = old;
        return -ENOMEM;
    }
    v->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].page)
            *page_slot(v, old[i].page) = old[i];
    free(old);
    return 0;
}

/* A page of the target, read on first use. -EFAULT when it is not mapped. */
static int page_get(View *v, uint64_t page, const uint8_t **ret)
{
    if (page == 0)
        return -EFAULT;
    if (v->npages * 2 >= v->cap && page_grow(v) < 0)
        return -ENOMEM;
    PageSlot *s = page_slot(v, page);
    if (!s->page) {
        s->page = page;
        v->npages++;
        uint8_t *buf = malloc(PAGE);
        if (!buf)
            return -ENOMEM;
        v->pages_read++;
        int k = rmem_read(v->r, page, buf, PAGE);
        if (k < 0) {
            free(buf);
            return k;
        }
        s->buf = buf;
    }
    if (!s->buf)
        return -EFAULT;
    *ret = s->buf;
    return 0;
}

static const Region *region_of(const View *v, uint64_t addr)
{
    size_t lo = 0, hi = v->nregions;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const Region *g = &v->regions[mid];
        if (addr < g->base)
            hi = mid;
        else if (addr - g->base >= g->len)
            lo = mid + 1;
        else
            return g;
    }
    return NULL;
}

static int view_read(View *v, uint64_t addr, void *out, size_t len)
{
    if (addr + len < addr)
        return -EFAULT;
    const Region *g = v->last;
    if (!g || addr < g->base || addr - g->base >= g->len)
        g = region_of(v, addr);
    if (g && addr + len - g->base <= g->len) {
        v->last = g;
        memcpy(out, g->buf + (addr - g->base), len);
        return 0;
    }
    uint8_t *o = out;
    while (len > 0) {
        uint64_t page = addr & ~(uint64_t)(PAGE - 1);
        size_t off = (size_t)(addr - page), n = MIN(len, PAGE - off);
        const uint8_t *p;
        int k = page_get(v, page, &p);
        if (k < 0)
            return k;
        memcpy(o, p + off, n);
        o += n, addr += n, len -= n;
    }
    return 0;
}

static int view_read_str(View *v, uint64_t addr, char *buf, size_t size)
{
    size_t n = 0;
    while (n < size - 1) {
        char c;
        int k = view_read(v, addr + n, &c, 1);
        if (k < 0)
            return k;
        if (!c)
            break;
        buf[n++] = c;
    }
    buf[n] = 0;
    return 0;
}

static int cmp_region(const void *a, const void *b)
{
    const Region *x = a, *y = b;
    return (x->base > y->base) - (x->base < y->base);
}

/* The carved part of every live pymalloc arena is where almost every GC-tracked object lives:
 * copied, the walk runs in local memory. */
typedef struct CopyJob {
    Rmem *r;
    const RmemIov *iov;
    size_t n;
    int result;
} CopyJob;

static void *copy_job(void *arg)
{
    CopyJob *j = arg;
    j->result = rmem_readv(j->r, j->iov, j->n);
    return NULL;
}

/* Copies with two threads, each its half of the bytes: one process_vm_readv stream does not
 * saturate memory bandwidth (the machine class has two cores). */
static int copy_parallel(Rmem *r, const RmemIov *iov, size_t n, uint64_t total)
{
    size_t split = 0;
    uint64_t acc = 0;
    while (split < n && acc < total / 2)
        acc += iov[split++].len;
    pthread_t th;
    CopyJob second = {r, iov + split, n - split, 0};
    bool threaded =
        n - split > 0 && total > (8u << 20) && pthread_create(&th, NULL, copy_job, &second) == 0;
    int k = rmem_readv(r, iov, threaded ? split : n);
    if (threaded) {
        pthread_join(th, NULL);
        if (k >= 0)
            k = second.result;
    }
    return k;
}

/* Copies the carved part of every live pymalloc arena into buffer (or a fresh allocation when
 * it is too small). With ret_estimate, only reports how many bytes that would be. */
static int copy_arenas(View *v, const PyLoc *loc, uint64_t obmalloc, const CensusBuffer *buffer,
                       uint64_t *ret_bytes, uint64_t *ret_estimate)
{
    const PyLayout *l = &loc->layout;
    uint64_t arenas = 0;
    uint32_t maxarenas = 0;
    int k;
    if (ret_bytes)
        *ret_bytes = 0;
    if (ret_estimate)
        *ret_estimate = 0;
    if (l->obmalloc.kind == PYOBM_SYMBOLS) {
        if (!loc->obm.arenas || !loc->obm.maxarenas)
            return 0; /* stripped: every page on demand */
        RmemIov iov[] = {{loc->obm.arenas, &arenas, 8}, {loc->obm.maxarenas, &maxarenas, 4}};
        if ((k = rmem_readv(v->r, iov, 2)) < 0)
            return k;
    } else if (obmalloc) {
        RmemIov iov[] = {{obmalloc + l->obmalloc.arenas, &arenas, 8},
                         {obmalloc + l->obmalloc.maxarenas, &maxarenas, 4}};
        if ((k = rmem_readv(v->r, iov, 2)) < 0)
            return k;
    } else {
        return 0;
    }
    if (!arenas || maxarenas == 0)
        return 0;
    PyArena *live;
    size_t nlive;
    if ((k = pyread_arenas(l, v->r, arenas, maxarenas, &live, &nlive)) < 0)
        return k;
    Region *regions = calloc(nlive ? nlive : 1, sizeof(*regions));
    if (!regions) {
        free(live);
        return -ENOMEM;
    }
    size_t n = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < nlive; i++) {
        regions[n++] =
            (Region){live[i].address, (size_t)(live[i].used_end - live[i].address), NULL};
        total += live[i].used_end - live[i].address;
    }
    free(live);
    if (total > MAX_COPY) {
        free(regions);
        return -EIO;
    }
    if (ret_estimate) {
        /* Only sizing the buffer before the stop. */
        free(regions);
        *ret_estimate = total;
        return 0;
    }
    uint8_t *buf = NULL, *owned = NULL;
    if (buffer && buffer->cap >= total)
        buf = buffer->buf;
    else
        buf = owned = malloc(total ? total : 1);
    RmemIov *iov = calloc(n ? n : 1, sizeof(*iov));
    if (!buf || !iov) {
        free(owned), free(iov), free(regions);
        return -ENOMEM;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        regions[i].buf = buf + off;
        iov[i] = (RmemIov){regions[i].base, regions[i].buf, regions[i].len};
        off += regions[i].len;
    }
    k = copy_parallel(v->r, iov, n, total);
    free(iov);
    if (k < 0) {
        free(owned), free(regions);
        return k;
    }
    qsort(regions, n, sizeof(*regions), cmp_region);
    v->regions = regions;
    v->nregions = n;
    v->arena_buf = owned;
    *ret_bytes = total;
    return 0;
}

/* ---- types ------------------------------------------------------------------------------ */

typedef struct TypeInfo {
    uint64_t type; /* 0: empty slot */
    int64_t basicsize, itemsize;
    unsigned long flags;
    bool heap;
    char tp_name[NAME_MAX_LEN];
    int64_t count, bytes;
} TypeInfo;

typedef struct TypeTable {
    TypeInfo *v;
    size_t n, cap;
} TypeTable;

static TypeInfo *type_slot(TypeTable *t, uint64_t type)
{
    size_t i = (size_t)((type >> 4) * 0x9e3779b97f4a7c15ull) & (t->cap - 1);
    while (t->v[i].type && t->v[i].type != type)
        i = (i + 1) & (t->cap - 1);
    return &t->v[i];
}

static int type_grow(TypeTable *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 1024, ocap = t->cap;
    TypeInfo *old = t->v;
    t->v = calloc(ncap, sizeof(*t->v));
    if (!t->v) {
        t->v = old;
        return -ENOMEM;
    }
    t->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].type)
            *type_slot(t, old[i].type) = old[i];
    free(old);
    return 0;
}

/* The facts of a type object, read once per census. */
static int type_get(TypeTable *t, View *v, const PyLayout *l, uint64_t type, TypeInfo **ret)
{
    if (t->n * 2 >= t->cap && type_grow(t) < 0)
        return -ENOMEM;
    TypeInfo *s = type_slot(t, type);
    if (s->type) {
        *ret = s;
        return 0;
    }
    TypeInfo ti = {.type = type};
    uint64_t name_ptr;
    int k;
    if ((k = view_read(v, type + l->object.tp_name, &name_ptr, 8)) < 0 ||
        (k = view_read(v, type + l->object.tp_basicsize, &ti.basicsize, 8)) < 0 ||
        (k = view_read(v, type + l->object.tp_itemsize, &ti.itemsize, 8)) < 0 ||
        (k = view_read(v, type + l->object.tp_flags, &ti.flags, sizeof(ti.flags))) < 0)
        return -EIO; /* an ob_type that is not a type: the walk went astray */
    if (ti.basicsize <= 0 || ti.basicsize > (1 << 24) || ti.itemsize < 0 || ti.itemsize > (1 << 16))
        return -EIO;
    char raw[NAME_MAX_LEN];
    if (view_read_str(v, name_ptr, raw, sizeof(raw)) < 0)
        snprintf(raw, sizeof(raw), "<unreadable name>");
    utf8_sanitize(ti.tp_name, sizeof(ti.tp_name), raw);
    ti.heap = (ti.flags & l->object.flag_heaptype) != 0;
    *s = ti;
    t->n++;
    *ret = s;
    return 0;
}

/* type(o).__name__ is the part of tp_name after the last dot, for static types
 * ("collections.OrderedDict") and for heap types made from a PyType_Spec ("re.Pattern") alike;
 * a class statement's tp_name has no dot. (A class whose __name__ was later set to a dotted
 * string would need its ht_name read; that is not done.) */
static const char *short_name(const TypeInfo *ti)
{
    const char *dot = strrchr(ti->tp_name, '.');
    return dot ? dot + 1 : ti->tp_name;
}

/* ---- the walk --------------------------------------------------------------------------- */

typedef struct Walk {
    View *v;
    TypeTable *types;
    const PyLayout *l;
    double deadline; /* monotonic; 0: none */
    int64_t nodes;
} Walk;

/* Walks one circular generation list from its head, checking every back link. */
static int walk_list(Walk *w, uint64_t head, uint64_t first, int64_t *ret_n, int64_t *ret_bytes)
{
    const PyLayout *l = w->l;
    uint64_t prev = head, node = first & ~1ull;
    int64_t n = 0, bytes = 0;
    uint32_t hs = l->gc.head_size;
    while (node != head) {
        uint64_t hdr[5]; /* _gc_next, _gc_prev, then ob_refcnt, ob_type, ob_size */
        int k = view_read(w->v, node, hdr, sizeof(hdr));
        if (k < 0)
            return k == -ENOMEM ? k : -EIO;
        if ((hdr[1] & ~3ull) != prev)
            return -EIO;
        if (++w->nodes > MAX_OBJECTS)
            return -EIO;
        if (w->deadline && w->nodes % CHECK_EVERY == 0 && clock_mono() > w->deadline)
            return -ETIMEDOUT;
        uint64_t type = hdr[(hs + l->object.ob_type) / 8];
        TypeInfo *ti;
        if ((k = type_get(w->types, w->v, l, type, &ti)) < 0)
            return k;
        int64_t size = ti->basicsize + (int64_t)hs;
        if (ti->itemsize) {
            int64_t obsize = (int64_t)hdr[(hs + l->object.ob_size) / 8];
            size += (obsize < 0 ? -obsize : obsize) * ti->itemsize;
        }
        if (ti->flags & l->object.preheader_flags)
            size += l->object.preheader_size;
        ti->count++;
        ti->bytes += size;
        n++;
        bytes += size;
        prev = node;
        node = hdr[0] & ~1ull;
    }
    *ret_n = n;
    *ret_bytes = bytes;
    return 0;
}

static int cmp_type(const void *a, const void *b)
{
    const CensusType *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* The result table: one row per type object. Two types that share a __name__ are never merged:
 * each gets a qualified name (a static type's full tp_name, a heap type's address). */
static int collect_types(const TypeTable *t, Census *c)
{
    c->types = calloc(t->n ? t->n : 1, sizeof(*c->types));
    /* Two names per type, each at most a qualified tp_name: the pool never needs more. */
    size_t cap = 1, used = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->v[i].type && t->v[i].count)
            cap += 2 * (strlen(t->v[i].tp_name) + 24);
    c->strings = malloc(cap);
    if (!c->types || !c->strings)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        const TypeInfo *ti = &t->v[i];
        if (!ti->type || ti->count == 0)
            continue;
        bool shared = false;
        for (size_t j = 0; j < t->cap && !shared; j++)
            shared = j != i && t->v[j].type && t->v[j].count &&
                     strcmp(short_name(&t->v[j]), short_name(ti)) == 0;
        CensusType *o = &c->types[c->ntypes++];
        o->type = ti->type;
        o->count = ti->count;
        o->bytes = ti->bytes;
        char *name = c->strings + used;
        int n;
        if (!shared)
            n = snprintf(name, cap - used, "%s", short_name(ti));
        else if (strchr(ti->tp_name, '.'))
            n = snprintf(name, cap - used, "%s", ti->tp_name);
        else
            n = snprintf(name, cap - used, "%s@0x%" PRIx64, short_name(ti), ti->type);
        used += (size_t)n + 1;
        char *pyname = c->strings + used;
        n = snprintf(pyname, cap - used, "%s", short_name(ti));
        used += (size_t)n + 1;
        o->name = name;
        o->pyname = pyname;
    }
    qsort(c->types, c->ntypes, sizeof(*c->types), cmp_type);
    return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) _printf_(3, 4);
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Reads the GC state and checks no collection is running; the sum of collections tells a
 * later reading whether one ran in between. */
static int gc_state(Rmem *r, const PyLayout *l, uint64_t gc, uint8_t *buf, int64_t *ret_sum)
{
    int k = rmem_read(r, gc, buf, l->gc.size);
    if (k < 0)
        return k;
    int32_t collecting;
    memcpy(&collecting, buf + l->gc.collecting, 4);
    if (collecting)
        return -EBUSY;
    int64_t sum = 0;
    for (uint32_t g = 0; g < l->gc.ngenerations; g++) {
        int32_t count;
        memcpy(&count, buf + l->gc.generations + g * l->gc.generation_size + l->gc.generation_count,
               4);
        sum = sum * 31 + count; /* counts move with every allocation or collection */
    }
    *ret_sum = sum;
    return 0;
}

int census_take(PyReader *pr, Rmem *r, pid_t pid, CensusMode mode, double max_pause,
                CensusBuffer **buffer, Census **ret, char *err, size_t errlen)
{
    uint64_t gc, obmalloc;
    const PyLoc *loc;
    if (pyreader_bases(pr, &gc, &obmalloc, &loc) < 0) {
        set_err(err, errlen, "the interpreter has not been sampled yet");
        return -EAGAIN;
    }
    const PyLayout *l = &loc->layout;
    if (l->gc.size > 4096)
        return -EINVAL;
    double t0 = clock_mono(), pause_start = 0;
    Census *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    atomic_init(&c->refs, 1);
    c->at = clock_real();
    c->frozen = mode == CENSUS_FREEZE;

    Freeze *fz = NULL;
    View v = {.r = r};
    TypeTable types = {0};
    uint8_t before[4096], after[4096];
    int64_t sum_before = 0, sum_after = 0;
    int k;
    /* Sized while the target runs: faulting the buffer in is then not part of the pause. */
    uint64_t estimate = 0;
    if (copy_arenas(&v, loc, obmalloc, NULL, NULL, &estimate) >= 0 && estimate)
        buffer_reserve(buffer, (size_t)estimate);
    if (mode == CENSUS_FREEZE) {
        pause_start = clock_mono();
        k = freeze_process(pid, pause_start + max_pause, &fz);
        if (k == -ETIMEDOUT) {
            set_err(err, errlen,
                    "abandoned: a thread did not stop within max_census_pause "
                    "(%gs); the process was resumed",
                    max_pause);
            goto fail;
        }
        if (k < 0) {
            set_err(err, errlen, "cannot stop the process: %s", strerror(-k));
            goto fail;
        }
    }
    double t_stopped = clock_mono();
    c->stop_seconds = mode == CENSUS_FREEZE ? t_stopped - pause_start : 0;
    if ((k = gc_state(r, l, gc, before, &sum_before)) < 0) {
        set_err(err, errlen,
                k == -EBUSY ? "the GC is collecting; census skipped" : "cannot read the GC state");
        goto fail;
    }
    if ((k = copy_arenas(&v, loc, obmalloc, *buffer, &c->copied_bytes, NULL)) < 0) {
        set_err(err, errlen, "cannot copy the pymalloc arenas");
        goto fail;
    }
    c->copy_seconds = clock_mono() - t_stopped;
    Walk w = {&v, &types, l, mode == CENSUS_FREEZE ? pause_start + max_pause : 0, 0};
    for (int g = 0; g < CENSUS_GENERATIONS; g++) {
        uint32_t off = g < 3 ? l->gc.generations + (uint32_t)g * l->gc.generation_size
                             : l->gc.permanent_generation;
        uint64_t first;
        memcpy(&first, before + off, 8);
        k = walk_list(&w, gc + off, first, &c->generation[g], &c->generation_bytes[g]);
        if (k < 0) {
            if (k == -ETIMEDOUT)
                set_err(err, errlen,
                        "abandoned: the census would have kept the process stopped longer than "
                        "max_census_pause (%gs); the process was resumed",
                        max_pause);
            else if (mode == CENSUS_NONBLOCKING)
                set_err(err, errlen,
                        "inconsistent: the process changed its object lists while "
                        "they were walked without stopping it; nothing reported");
            else
                set_err(err, errlen, "the object lists do not hold together (generation %d)", g);
            goto fail;
        }
        c->total += c->generation[g];
    }
    if (mode == CENSUS_NONBLOCKING) {
        /* A running mutator: the walk counts only if nothing moved meanwhile. */
        if ((k = gc_state(r, l, gc, after, &sum_after)) < 0 || sum_after != sum_before ||
            memcmp(before + l->gc.stats, after + l->gc.stats,
                   l->gc.stats_kind == PYGCS_ARRAY ? l->gc.stats_size : 8) != 0) {
            set_err(err, errlen,
                    "inconsistent: the process allocated or collected during the "
                    "walk; nothing reported");
            k = -EIO;
            goto fail;
        }
    }
    if (fz) {
        freeze_thaw(fz);
        fz = NULL;
        c->pause_seconds = clock_mono() - pause_start;
    }
    c->pages_read = v.pages_read;
    if ((k = collect_types(&types, c)) < 0)
        goto fail;
    c->walk_seconds = clock_mono() - t0;
    free(types.v);
    view_done(&v);
    *ret = c;
    return 0;

fail:
    freeze_thaw(fz);
    free(types.v);
    view_done(&v);
    census_free(c);
    return k;
}

Census *census_ref(Census *c)
{
    if (c)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

Census *census_free(Census *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return NULL;
    free(c->types);
    free(c->strings);
    free(c);
    return NULL;
}
