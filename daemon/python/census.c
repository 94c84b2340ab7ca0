#include "python/census.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "python/mimalloc.h"
#include "python/traverse.h"
#include "remote/crew.h"
#include "remote/freeze.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/utf8.h"

/* Bounds: a corrupt or hostile target gets an error, never a hang or an unbounded allocation. */
#define MAX_OBJECTS   200000000 /* nodes walked over all generations */
#define PAGE          4096u
#define HUGE_PAGE     (2u << 20)
#define CREW_MIN      (8u << 20) /* copies from this size on use two threads and huge pages */
#define READY_SPIN    0.005      /* seconds the crew's helper stays awake for the copy in a stop */
#define WARM_MAX      (128ull << 20) /* bytes a copy may be read ahead of the stop, at most (warm) */
#define NAME_MAX_LEN  128
#define CHECK_EVERY   4096       /* nodes between looks at the clock */
#define MAX_HINTS     65536      /* pages outside the arenas copied in advance (256 MiB) */
#define PREFETCH_MAX  (4u << 20) /* bytes census_prefetch reads ahead at most, per call */
#define PREFETCH_IOVS 256        /* pages per system call of census_prefetch */
#define MAX_HOLDERS   4096       /* objects whose storage outside the arenas is copied afresh */
#define HOLDER_SIG    48   /* bytes past its PyObject head that say where a holder's storage is */
#define MAX_YOUNG     4096 /* young objects visited inside the stop (refresh_young) */

/* pymemd's memory for one census (copy buffer, hinted pages, pages read on demand): set from
 * census_max_memory; censuses run one at a time, on the sampler thread. */
static _Atomic uint64_t max_memory = CENSUS_MAX_MEMORY_DEFAULT;

void census_set_max_memory(uint64_t bytes)
{
    atomic_store(&max_memory, bytes);
}

/* ---- type keys --------------------------------------------------------------------------- */

static uint64_t type_key_secret[2];
static pthread_once_t type_key_once = PTHREAD_ONCE_INIT;

static void type_key_init(void)
{
    /* getrandom() blocks only before the kernel's pool is first seeded (early boot), and then
     * briefly; a short read cannot happen for 16 bytes. Should it fail, the clock and the pid
     * still keep the key from being known in advance. */
    if (getrandom(type_key_secret, sizeof(type_key_secret), 0) !=
        (ssize_t)sizeof(type_key_secret)) {
        type_key_secret[0] = (uint64_t)(clock_real() * 1e9) ^ ((uint64_t)getpid() << 32);
        type_key_secret[1] = (uint64_t)(clock_mono() * 1e9) ^ (uint64_t)(uintptr_t)&type_key_secret;
    }
}

static uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND(v0, v1, v2, v3)                                                                   \
    do {                                                                                           \
        v0 += v1, v1 = rotl64(v1, 13), v1 ^= v0, v0 = rotl64(v0, 32);                              \
        v2 += v3, v3 = rotl64(v3, 16), v3 ^= v2;                                                   \
        v0 += v3, v3 = rotl64(v3, 21), v3 ^= v0;                                                   \
        v2 += v1, v1 = rotl64(v1, 17), v1 ^= v2, v2 = rotl64(v2, 32);                              \
    } while (0)

/* SipHash-2-4 (Aumasson and Bernstein, 2012) of the 8-byte little-endian message m: one block,
 * then the final block that carries the length (8) in its top byte. */
static uint64_t siphash_u64(const uint64_t k[2], uint64_t m)
{
    uint64_t v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1],
             v2 = 0x6c7967656e657261ull ^ k[0], v3 = 0x7465646279746573ull ^ k[1];
    const uint64_t last = 8ull << 56;
    v3 ^= m;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    v0 ^= m;
    v3 ^= last;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

int census_type_key(const char *name, uint64_t type, char *buf, size_t len)
{
    pthread_once(&type_key_once, type_key_init);
    /* 48 bits: two types of one name meeting in one census collide with a chance of 2^-48. */
    uint64_t h = siphash_u64(type_key_secret, type) >> 16;
    return snprintf(buf, len, "%s~%012" PRIx64, name, h);
}

uint64_t census_max_memory(void)
{
    return atomic_load(&max_memory);
}

/* Errors of a read in the walk that are not about the target's lists: they end the walk as
 * they are, where anything else means the lists do not hold together. */
static bool walk_fatal(int k)
{
    return k == -ENOMEM || k == -ENODATA || k == -E2BIG;
}

/* ---- a local view of the target's memory ------------------------------------------------ */

typedef struct Region {
    uint64_t base;
    size_t len;
    uint8_t *buf;
    uint8_t *page; /* per page of the region: PAGE_COPIED and USED_* bits; NULL: all copied */
} Region;

/* Who looked at a page: worth prefetching next time for that kind of request. */
enum { USED_WALK = 1, USED_VISIT = 2, PAGE_COPIED = 4 };

typedef struct PageSlot {
    uint64_t page; /* 0: empty */
    uint8_t *buf;  /* NULL when the page could not be read */
    bool owned;    /* buf is its own allocation (read on demand), not a slice of the prefetch */
    uint8_t used;  /* USED_* bits */
} PageSlot;

typedef struct View {
    Rmem *r;
    Maps **maps;     /* the target's mappings, kept by census_take for every pass */
    Region *regions; /* sorted by base, non-overlapping */
    size_t nregions;
    uint8_t *arena_buf;  /* one allocation behind every region */
    uint8_t *page_state; /* one allocation behind every region's page[] */
    const Region *last;  /* the region of the previous read: list neighbours share arenas */
    PageSlot *pages;     /* open addressing, capacity a power of two */
    size_t npages, cap;
    uint64_t pages_read;
    uint64_t mem_left; /* of census_max_memory, for pages read on demand */
    bool sealed;       /* the target runs again: a page that was not copied is a miss, not a read */
    double deadline;   /* monotonic: a visitor reading while the target is stopped stops then */
    uint64_t visitor_reads;
    uint8_t reader;  /* USED_WALK, or USED_VISIT while the visitor follows references */
    bool note_pools; /* a referrers pass: the arenas' pages read are noted, for its PoolSet */
    MiHeaps mi;      /* free-threaded builds: the GC heaps' pages (census_ft_plan) */
    uint64_t holder, holder_type; /* the object the visitor reads for (census_read_for) */
    struct Holder *held;          /* the objects whose reads left the arenas (MAX_HOLDERS) */
    size_t nheld, capheld;
} View;

/* An object whose references the visitor read outside the arenas: a list's item array, a dict's
 * key table, a deque's blocks, a heap type (malloc'ed, not in an arena). The object itself is
 * in the arenas (or, a heap type, on a hinted page), so inside the next stop its storage as it
 * is then can be found and copied before the target runs again, wherever it moved. */
typedef struct Holder {
    uint64_t addr, type;
    bool sig_ok;
    uint8_t sig[HOLDER_SIG]; /* its bytes past the head when the walk read it */
} Holder;

/* Pages outside the arenas, sorted, without duplicates. */
typedef struct PageSet {
    uint64_t *pages;
    size_t n;
    bool complete; /* false: more pages were needed than MAX_HINTS */
} PageSet;

/* The pymalloc pools a referrers walk read, and the arena parts it could have read: a pool of
 * those parts that it did not read (ints, strings, free pools: nothing it follows) is not
 * copied by the next referrers walk. */
typedef struct PoolSet {
    uint64_t *pools; /* sorted */
    size_t n;
    Region *known; /* sorted, base and len only; none: copy every arena whole */
    size_t nknown;
} PoolSet;

/* What one census of a target leaves for the next: the pages outside the arenas it needed.
 * They are copied along with the arenas, so the walk can run after the target is resumed. A
 * census and a referrers walk need different pages (following references reads a big dict's
 * entry table, a list's item array, which counting does not): each kind keeps its own, so that
 * neither makes the other copy too little (a second stop) or too much. */
struct CensusHints {
    PageSet walk;    /* what the census walk read */
    PageSet visit;   /* what a visitor (referrers) read besides */
    bool visited;    /* a visitor ran once: visit is known */
    PoolSet pools;   /* of the arenas, what a visitor's pass read */
    Holder *holders; /* what a visitor's pass read outside the arenas for, sorted by addr */
    size_t nholders;
};

CensusHints *censushints_free(CensusHints *h)
{
    if (h) {
        free(h->walk.pages);
        free(h->visit.pages);
        free(h->pools.pools);
        free(h->pools.known);
        free(h->holders);
        free(h);
    }
    return NULL;
}

/* The copy buffer: the arenas from its start, the prefetched pages at its end. */
typedef struct Buffer {
    uint8_t *buf;
    size_t cap;
} Buffer;

static void buffer_release(Buffer *b)
{
    if (b->buf)
        munmap(b->buf, b->cap);
    *b = (Buffer){0};
}

/* Maps at least `need` bytes, in huge pages where the kernel has them, and faults them in now,
 * while the target still runs: a fresh buffer costs more in page faults than the copy itself.
 * The slack covers arenas allocated between this estimate and the stop; beyond it the copy
 * falls back to malloc. */
static void buffer_reserve(Buffer *b, size_t need)
{
    size_t want = need + need / 8 + (1u << 20);
    want = MIN(want, MAX((size_t)census_max_memory(), need)); /* the slack too stays in the cap */
    if (b->cap >= want)
        return;
    buffer_release(b);
    bool huge = want >= CREW_MIN;
    if (huge)
        want = (want + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
    void *p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    if (huge)
        madvise(p, want, MADV_HUGEPAGE); /* fewer TLB misses in the copy and the walk */
    if (madvise(p, want, MADV_POPULATE_WRITE) < 0)
        memset(p, 0, want);
    *b = (Buffer){p, want};
}

static void view_done(View *v)
{
    free(v->regions);
    free(v->arena_buf);
    free(v->page_state);
    for (size_t i = 0; i < v->cap; i++)
        if (v->pages[i].owned)
            free(v->pages[i].buf);
    free(v->pages);
    free(v->held);
    mimalloc_heaps_done(&v->mi);
    *v = (View){.r = v->r, .maps = v->maps};
}

static PageSlot *page_slot(View *v, uint64_t page)
{
    size_t i = (size_t)((page >> 12) * 0x9e3779b97f4a7c15ull) & (v->cap - 1);
    while (v->pages[i].page && v->pages[i].page != page)
        i = (i + 1) & (v->cap - 1);
    return &v->pages[i];
}

static int page_grow(View *v, size_t need)
{
    size_t ncap = v->cap ? v->cap * 2 : 1024;
    while (ncap < need * 2)
        ncap *= 2;
    PageSlot *old = v->pages;
    size_t ocap = v->cap;
    /* Written now, not calloc()ed: its pages are faulted in here, before the target is
     * stopped, not by the copy of the hinted pages while it is. */
    v->pages = malloc(ncap * sizeof(*v->pages));
    if (!v->pages) {
        v->pages = old;
        return -ENOMEM;
    }
    memset(v->pages, 0, ncap * sizeof(*v->pages));
    v->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].page)
            *page_slot(v, old[i].page) = old[i];
    free(old);
    return 0;
}

/* The object the visitor reads for leaves the arenas, onto a page no other visit read before
 * it: noted once, for the next stop to copy its storage afresh (see refresh_storage). A page
 * that other visits read first (a type's, shared by its instances) makes no holder of each. */
static void note_holder(View *v)
{
    uint64_t addr = v->holder;
    if (v->nheld && v->held[v->nheld - 1].addr == addr)
        return; /* once per visit is enough */
    if (v->nheld == MAX_HOLDERS)
        return; /* the storage of those past it is copied as the hints name it, as before */
    if (v->nheld == v->capheld) {
        size_t ncap = v->capheld ? v->capheld * 2 : 64;
        Holder *h = realloc(v->held, ncap * sizeof(*h));
        if (!h)
            return;
        v->held = h;
        v->capheld = ncap;
    }
    v->held[v->nheld++] = (Holder){.addr = addr, .type = v->holder_type};
}

/* A page of the target, read on first use. -EFAULT when it is not mapped; -ENODATA when the
 * view is sealed and the page was not copied while the target was stopped. */
static int page_get(View *v, uint64_t page, const uint8_t **ret)
{
    if (page == 0)
        return -EFAULT;
    if (v->npages * 2 >= v->cap && page_grow(v, v->npages + 1) < 0)
        return -ENOMEM;
    PageSlot *s = page_slot(v, page);
    if (v->holder && v->reader == USED_VISIT && !(s->page && (s->used & USED_VISIT)))
        note_holder(v);
    if (!s->page) {
        if (v->sealed)
            return -ENODATA;
        if (v->mem_left < PAGE)
            return -E2BIG;
        v->mem_left -= PAGE;
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
        s->owned = true;
    }
    s->used |= v->reader;
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

/* Reads the pages of iov (each a fresh allocation of a page) in one go and puts them in the view;
 * when that fails (one is not mapped, say) they are dropped, to be read one by one if used. */
static void prefetch_flush(View *v, RmemIov *iov, size_t n)
{
    if (n && rmem_readv(v->r, iov, n) == 0) {
        for (size_t i = 0; i < n; i++) {
            *page_slot(v, iov[i].addr) = (PageSlot){iov[i].addr, iov[i].buf, true, 0};
            v->npages++;
            v->mem_left -= PAGE;
            v->pages_read++;
        }
        return;
    }
    for (size_t i = 0; i < n; i++)
        free(iov[i].buf);
}

void census_prefetch(void *rctx, uint64_t addr, size_t len)
{
    View *v = rctx;
    if (v->sealed || !len || addr + len < addr)
        return;
    len = MIN(len, (size_t)PREFETCH_MAX);
    uint64_t page = addr & ~(uint64_t)(PAGE - 1), end = addr + len;
    size_t want = (size_t)((end - page + PAGE - 1) / PAGE);
    if ((v->npages + want) * 2 >= v->cap && page_grow(v, v->npages + want) < 0)
        return;
    RmemIov iov[PREFETCH_IOVS];
    size_t n = 0;
    uint64_t budget = v->mem_left;
    for (; page < end; page += PAGE) {
        if (region_of(v, page) || page_slot(v, page)->page)
            continue; /* an arena's (copied, or read by region_touch), or already here */
        uint8_t *buf = budget >= PAGE ? malloc(PAGE) : NULL;
        if (!buf)
            break;
        budget -= PAGE;
        iov[n++] = (RmemIov){page, buf, PAGE};
        if (n == PREFETCH_IOVS) {
            prefetch_flush(v, iov, n);
            n = 0;
        }
    }
    prefetch_flush(v, iov, n);
}

/* Notes who read the pages of g under [addr, addr + len), and reads those the copy left out:
 * from the stopped target, or, sealed, -ENODATA. */
static int region_touch(View *v, const Region *g, uint64_t addr, size_t len)
{
    if (!len)
        return 0;
    for (size_t i = (addr - g->base) / PAGE, last = (addr + len - 1 - g->base) / PAGE; i <= last;
         i++) {
        if (!(g->page[i] & PAGE_COPIED)) {
            if (v->sealed)
                return -ENODATA;
            int k = rmem_read(v->r, g->base + i * PAGE, g->buf + i * PAGE,
                              MIN(PAGE, g->len - i * PAGE));
            if (k < 0)
                return k;
            v->pages_read++;
            g->page[i] |= PAGE_COPIED;
        }
        g->page[i] |= v->reader;
    }
    return 0;
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
        int k = g->page ? region_touch(v, g, addr, len) : 0;
        if (k < 0)
            return k;
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

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void pages_dedup(uint64_t *pages, size_t *n)
{
    qsort(pages, *n, sizeof(*pages), cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < *n; i++)
        if (u == 0 || pages[i] != pages[u - 1])
            pages[u++] = pages[i];
    *n = u;
}

/* Sets set to the pages of the view the readers in `who` used (and none in `skip`), and, with
 * keep, those it had: a walk that did not finish saw only part of what the next one needs. */
static void pageset_update(PageSet *set, const View *v, uint8_t who, uint8_t skip, bool keep)
{
    size_t old = keep ? set->n : 0;
    uint64_t *pages = malloc((v->npages + old + 1) * sizeof(*pages));
    if (!pages)
        return;
    size_t n = 0, want = 0;
    for (size_t i = 0; i < v->cap; i++) {
        const PageSlot *s = &v->pages[i];
        if (s->page && (s->used & who) && !(s->used & skip) && s->buf && want++ < MAX_HINTS)
            pages[n++] = s->page;
    }
    bool complete = want == n;
    for (size_t i = 0; i < old && n < MAX_HINTS; i++)
        pages[n++] = set->pages[i];
    pages_dedup(pages, &n);
    free(set->pages);
    *set = (PageSet){pages, n, complete};
}

/* Sets set to the pools of the view's arenas that were read, and the arena parts they were
 * read from; with keep, adds those it had (for a walk that did not finish). A view without
 * pages noted (a free-threaded heap) empties it: everything is copied. */
static void poolset_update(PoolSet *set, const View *v, uint64_t pool_size, bool keep)
{
    size_t npages = 0;
    for (size_t i = 0; i < v->nregions; i++)
        npages += v->regions[i].page ? (v->regions[i].len + PAGE - 1) / PAGE : 0;
    size_t old = keep ? set->n : 0;
    uint64_t *pools = malloc((npages + old + 1) * sizeof(*pools));
    Region *known = malloc((v->nregions + 1) * sizeof(*known));
    if (!pools || !known || !npages) {
        free(pools), free(known);
        free(set->pools), free(set->known);
        *set = (PoolSet){0};
        return;
    }
    size_t n = 0, nknown = 0;
    for (size_t i = 0; i < v->nregions; i++) {
        const Region *g = &v->regions[i];
        if (!g->page)
            continue;
        known[nknown++] = (Region){g->base, g->len, NULL, NULL};
        for (size_t j = 0; j < (g->len + PAGE - 1) / PAGE; j++) {
            uint64_t pool = (g->base + j * PAGE) & ~(pool_size - 1);
            if ((g->page[j] & (USED_WALK | USED_VISIT)) && (!n || pools[n - 1] != pool))
                pools[n++] = pool;
        }
    }
    for (size_t i = 0; i < old; i++)
        pools[n++] = set->pools[i];
    pages_dedup(pools, &n);
    free(set->pools), free(set->known);
    *set = (PoolSet){pools, n, known, nknown};
}

/* pymalloc's pool size: pools are aligned to it. */
static uint64_t pool_bytes(const PyLayout *l)
{
    uint64_t size = l->obmalloc.pool_size;
    return size >= PAGE && (size & (size - 1)) == 0 ? size : PAGE;
}

static int cmp_holder(const void *a, const void *b)
{
    const Holder *x = a, *y = b;
    return (x->addr > y->addr) - (x->addr < y->addr);
}

/* Sets the hints' holders to those the view's visitor noted, each with its bytes as the copy
 * has them; with keep, adds those it had that the view did not note. */
static void holders_update(CensusHints *h, View *v, const PyLayout *l, bool keep)
{
    size_t old = keep ? h->nholders : 0, n = 0;
    Holder *hs = malloc((v->nheld + old + 1) * sizeof(*hs));
    if (!hs)
        return;
    uint8_t reader = v->reader;
    v->reader = 0; /* reading a holder's head marks no page as used */
    v->holder = 0;
    for (size_t i = 0; i < v->nheld; i++) {
        Holder x = v->held[i];
        x.sig_ok = view_read(v, x.addr + l->object.ob_size, x.sig, HOLDER_SIG) >= 0;
        hs[n++] = x;
    }
    v->reader = reader;
    qsort(hs, n, sizeof(*hs), cmp_holder);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || hs[i].addr != hs[u - 1].addr)
            hs[u++] = hs[i];
    n = u;
    for (size_t i = 0; i < old && n < MAX_HOLDERS; i++)
        if (!bsearch(&h->holders[i], hs, u, sizeof(*hs), cmp_holder))
            hs[n++] = h->holders[i];
    qsort(hs, n, sizeof(*hs), cmp_holder);
    free(h->holders);
    h->holders = hs;
    h->nholders = MIN(n, (size_t)MAX_HOLDERS);
}

/* The pages the walk (and the visitor, with vis) used outside the arenas, for the next census
 * (or referrers walk) to prefetch, and with vis the arena pools it read and the objects it read
 * outside them for. A census leaves what it cannot know, the visitor's, as it was. */
static void hints_update(CensusHints **hp, View *v, const PyLayout *l, bool vis, bool keep)
{
    CensusHints *h = *hp ? *hp : calloc(1, sizeof(*h));
    if (!h)
        return;
    *hp = h;
    pageset_update(&h->walk, v, USED_WALK, 0, keep);
    if (vis) {
        pageset_update(&h->visit, v, USED_VISIT, USED_WALK, keep && h->visited);
        poolset_update(&h->pools, v, pool_bytes(l), keep && h->visited);
        holders_update(h, v, l, keep && h->visited);
        h->visited = true;
    }
}

/* The pages to copy with the arenas: the census walk's, and with vis the visitor's too, merged
 * (at most MAX_HINTS). *ret_complete: they name every page the last walk of this kind used. */
static int hints_pages(const CensusHints *h, bool vis, uint64_t **ret, size_t *ret_n,
                       bool *ret_complete)
{
    *ret = NULL;
    *ret_n = 0;
    *ret_complete = false;
    if (!h || (vis && !h->visited))
        return 0;
    size_t nv = vis ? h->visit.n : 0, n = 0;
    uint64_t *pages = malloc((h->walk.n + nv + 1) * sizeof(*pages));
    if (!pages)
        return -ENOMEM;
    for (size_t i = 0; i < h->walk.n; i++)
        pages[n++] = h->walk.pages[i];
    for (size_t i = 0; i < nv && n < MAX_HINTS; i++)
        pages[n++] = h->visit.pages[i];
    bool complete = h->walk.complete && (!vis || (h->visit.complete && n == h->walk.n + nv));
    pages_dedup(pages, &n);
    *ret = pages;
    *ret_n = n;
    *ret_complete = complete;
    return 0;
}

static int cmp_region(const void *a, const void *b)
{
    const Region *x = a, *y = b;
    return (x->base > y->base) - (x->base < y->base);
}

/* The carved part of every live pymalloc arena is where almost every GC-tracked object lives:
 * copied, the walk runs in local memory. Finds those parts and, with `layout`, gives each its
 * place in buffer (or in a fresh allocation when cap is too small) for the copy; without, only
 * counts their bytes. */
static int plan_arenas(View *v, const PyLoc *loc, uint64_t obmalloc, bool layout, uint8_t *buffer,
                       size_t cap, uint64_t *ret_total)
{
    const PyLayout *l = &loc->layout;
    uint64_t arenas = 0;
    uint32_t maxarenas = 0;
    int k;
    *ret_total = 0;
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
    if ((k = pyread_arenas_mapped(l, v->r, v->maps, arenas, maxarenas, &live, &nlive)) < 0)
        return k;
    uint64_t total = 0;
    for (size_t i = 0; i < nlive; i++)
        total += live[i].used_end - live[i].address;
    *ret_total = total;
    if (total > census_max_memory() || !layout) {
        free(live);
        return total > census_max_memory() ? -E2BIG : 0;
    }
    Region *regions = calloc(nlive ? nlive : 1, sizeof(*regions));
    uint8_t *state = v->note_pools ? calloc(total / PAGE + nlive + 1, 1) : NULL;
    uint8_t *buf = buffer, *owned = NULL;
    if (!buffer || cap < total)
        buf = owned = malloc(total ? total : 1);
    if (!regions || (v->note_pools && !state) || !buf) {
        free(live), free(regions), free(state), free(owned);
        return -ENOMEM;
    }
    uint64_t off = 0, pages = 0;
    for (size_t i = 0; i < nlive; i++) {
        size_t len = (size_t)(live[i].used_end - live[i].address);
        regions[i] = (Region){live[i].address, len, buf + off, state ? state + pages : NULL};
        off += len;
        pages += (len + PAGE - 1) / PAGE;
    }
    free(live);
    qsort(regions, nlive, sizeof(*regions), cmp_region);
    v->regions = regions;
    v->nregions = nlive;
    v->arena_buf = owned;
    v->page_state = state;
    *ret_total = total;
    return 0;
}

/* Whether page j of g is to be copied: with pools, only when the walk they came from read its
 * pool, or could not have (the page is new since). *known and *pool are cursors, for pages asked
 * about in increasing order. */
static bool page_wanted(const Region *g, size_t j, const PoolSet *pools, uint64_t pool_size,
                        size_t *known, size_t *pool)
{
    if (!pools)
        return true;
    uint64_t addr = g->base + j * PAGE, base = addr & ~(pool_size - 1);
    while (*known < pools->nknown && pools->known[*known].base + pools->known[*known].len <= addr)
        ++*known;
    if (*known == pools->nknown || addr < pools->known[*known].base)
        return true;
    while (*pool < pools->n && pools->pools[*pool] < base)
        ++*pool;
    return *pool < pools->n && pools->pools[*pool] == base;
}

/* Appends to iov the runs of the arenas' pages to copy (every page, without pools), marking
 * them copied. Returns how many iovs it added. */
static size_t plan_arena_iovs(View *v, const PoolSet *pools, uint64_t pool_size, RmemIov *iov)
{
    size_t m = 0, known = 0, pool = 0;
    for (size_t i = 0; i < v->nregions; i++) {
        Region *g = &v->regions[i];
        if (!g->page || !pools) {
            if (g->page)
                memset(g->page, PAGE_COPIED, (g->len + PAGE - 1) / PAGE);
            iov[m++] = (RmemIov){g->base, g->buf, g->len};
            continue;
        }
        bool open = false;
        for (size_t j = 0, np = (g->len + PAGE - 1) / PAGE; j < np; j++) {
            if (!page_wanted(g, j, pools, pool_size, &known, &pool)) {
                open = false;
                continue;
            }
            size_t len = MIN(PAGE, g->len - j * PAGE);
            g->page[j] |= PAGE_COPIED;
            if (open)
                iov[m - 1].len += len;
            else
                iov[m++] = (RmemIov){g->base + j * PAGE, g->buf + j * PAGE, len};
            open = true;
        }
    }
    return m;
}

/* Copies the arenas laid out (with pools, only the pools a walk of the same kind read) and the
 * pages the last census needed outside them (into store, PAGE bytes each) in one bulk read. A
 * page unmapped since is remembered as such. */
static int copy_all(View *v, Crew *crew, const PoolSet *pools, uint64_t pool_size,
                    const uint64_t *hints, size_t nhints, uint8_t *store, double deadline)
{
    size_t nh = store ? nhints : 0, n = nh, m = 0, npages = 0;
    if (nh && (v->npages + nh) * 2 >= v->cap && page_grow(v, v->npages + nh) < 0)
        return -ENOMEM;
    /* A run of pages at most every other page: bounds the arenas' iovs. */
    for (size_t i = 0; i < v->nregions; i++)
        n += v->regions[i].page ? (v->regions[i].len / PAGE + 2) / 2 : 1;
    RmemIov *iov = calloc(n ? n : 1, sizeof(*iov));
    int *status = calloc(n ? n : 1, sizeof(*status));
    if (!iov || !status) {
        free(iov), free(status);
        return -ENOMEM;
    }
    size_t narenas = m = plan_arena_iovs(v, pools, pool_size, iov);
    /* The hints are sorted: neighbouring pages go in one range (one iov costs about as much
     * as the copy of a page). */
    for (size_t i = 0; i < nh; i++) {
        uint64_t page = hints[i];
        PageSlot *s = page_slot(v, page);
        if (!page || s->page || region_of(v, page))
            continue; /* a duplicate, or inside an arena carved since */
        uint8_t *buf = store + npages++ * PAGE;
        *s = (PageSlot){page, buf, false, false};
        v->npages++;
        RmemIov *last = m > narenas ? &iov[m - 1] : NULL;
        if (last && last->addr + last->len == page)
            last->len += PAGE;
        else
            iov[m++] = (RmemIov){page, buf, PAGE};
    }
    int k = crew_read(crew, iov, m, status, deadline);
    for (size_t i = 0; i < m && k >= 0; i++) {
        if (status[i] == 0)
            continue;
        if (i < narenas) {
            k = -EFAULT; /* an arena went away: only a running target can do that */
            break;
        }
        /* Some page of the range is unmapped now: which, one by one. */
        for (size_t off = 0; off < iov[i].len && k >= 0; off += PAGE) {
            int e = rmem_read(v->r, iov[i].addr + off, (uint8_t *)iov[i].buf + off, PAGE);
            if (e == -EFAULT)
                page_slot(v, iov[i].addr + off)->buf = NULL;
            else
                k = e;
        }
    }
    v->pages_read += npages;
    free(iov), free(status);
    return k;
}

/* ---- types ------------------------------------------------------------------------------ */

/* How an object's size follows from its type. */
typedef enum Sizing {
    SIZE_GENERIC = 0, /* basicsize + itemsize * |ob_size| */
    SIZE_GENERATOR,   /* generator, coroutine, async_generator (3.11+): slots of the code's frame */
    SIZE_FRAME,       /* frame objects: the same, found through their frame */
} Sizing;

typedef struct TypeInfo {
    uint64_t type; /* 0: empty slot */
    int64_t basicsize, itemsize;
    unsigned long flags;
    bool heap;
    Sizing sizing;
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

/* Generators and frame objects have an item size but no ob_size (frames before 3.11 have one,
 * but their __sizeof__ does not use it): they are known by being the interpreter's own static
 * type of that name and basic size. */
static Sizing sizing_of(const PyLayout *l, const TypeInfo *ti)
{
    if (ti->heap || ti->itemsize != 8)
        return SIZE_GENERIC;
    if (l->sizes.gen_basicsize && ti->basicsize == l->sizes.gen_basicsize &&
        (strcmp(ti->tp_name, "generator") == 0 || strcmp(ti->tp_name, "coroutine") == 0 ||
         strcmp(ti->tp_name, "async_generator") == 0))
        return SIZE_GENERATOR;
    if (ti->basicsize == l->sizes.frame_basicsize && strcmp(ti->tp_name, "frame") == 0)
        return SIZE_FRAME;
    return SIZE_GENERIC;
}

/* The item slots __sizeof__ counts for the generator or frame object at obj: those of its code
 * object's frame, co_nlocalsplus + co_stacksize (3.11+); before 3.11, a frame's co_stacksize +
 * co_nlocals + len(co_cellvars) + len(co_freevars), less the one slot in its basic size. */
static int sized_items(View *v, const PyLayout *l, Sizing sizing, uint64_t obj, int64_t *ret)
{
    uint64_t code = 0, frame = 0;
    int k;
    if (sizing == SIZE_GENERATOR && l->sizes.gen_code != PYL_NONE)
        k = view_read(v, obj + l->sizes.gen_code, &code, 8);
    else if (sizing == SIZE_GENERATOR)
        k = view_read(v, obj + l->sizes.gen_iframe + l->sizes.iframe_code, &code, 8);
    else if (l->sizes.frame_frame != PYL_NONE) {
        k = view_read(v, obj + l->sizes.frame_frame, &frame, 8);
        if (k >= 0)
            k = view_read(v, frame + l->sizes.iframe_code, &code, 8);
    } else
        k = view_read(v, obj + l->sizes.frame_code, &code, 8);
    if (k < 0)
        return k;
    code &= ~(uint64_t)l->sizes.code_tag_bits;
    int32_t stack, locals;
    if ((k = view_read(v, code + l->sizes.code_stacksize, &stack, 4)) < 0)
        return k;
    int64_t items;
    if (l->sizes.code_nlocalsplus != PYL_NONE) {
        if ((k = view_read(v, code + l->sizes.code_nlocalsplus, &locals, 4)) < 0)
            return k;
        items = (int64_t)locals + stack;
    } else {
        uint64_t cells, frees;
        int64_t ncells, nfrees;
        if ((k = view_read(v, code + l->sizes.code_nlocals, &locals, 4)) < 0 ||
            (k = view_read(v, code + l->sizes.code_cellvars, &cells, 8)) < 0 ||
            (k = view_read(v, code + l->sizes.code_freevars, &frees, 8)) < 0 ||
            (k = view_read(v, cells + l->object.ob_size, &ncells, 8)) < 0 ||
            (k = view_read(v, frees + l->object.ob_size, &nfrees, 8)) < 0)
            return k;
        items = (int64_t)stack + locals + ncells + nfrees - 1;
    }
    if (stack < 0 || locals < 0 || items < 0 || items > (1 << 24))
        return -EIO;
    *ret = items;
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
        return walk_fatal(k) ? k : -EIO; /* -EIO: an ob_type that is not a type */
    if (ti.basicsize <= 0 || ti.basicsize > (1 << 24) || ti.itemsize < 0 || ti.itemsize > (1 << 16))
        return -EIO;
    char raw[NAME_MAX_LEN];
    if ((k = view_read_str(v, name_ptr, raw, sizeof(raw))) < 0 && walk_fatal(k))
        return k;
    if (k < 0)
        snprintf(raw, sizeof(raw), "<unreadable name>");
    utf8_sanitize(ti.tp_name, sizeof(ti.tp_name), raw);
    ti.heap = (ti.flags & l->object.flag_heaptype) != 0;
    ti.sizing = sizing_of(l, &ti);
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
    const CensusVisitor *vis; /* NULL: a plain census */
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
            return walk_fatal(k) ? k : -EIO;
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
        int64_t size = ti->basicsize + (int64_t)hs, items;
        if (ti->sizing != SIZE_GENERIC) {
            if ((k = sized_items(w->v, l, ti->sizing, node + hs, &items)) < 0)
                return walk_fatal(k) ? k : -EIO;
            size += items * ti->itemsize;
        } else if (ti->itemsize) {
            /* A length whose items would pass 1 TiB (or INT64_MIN, which has no absolute value)
             * is no object's: without this, a forged ob_size overflows the product (found by
             * tests/fuzz/fuzz_heap). itemsize is at most 1 << 16 (type_get). */
            int64_t obsize = (int64_t)hdr[(hs + l->object.ob_size) / 8];
            uint64_t len = obsize < 0 ? -(uint64_t)obsize : (uint64_t)obsize;
            if (len > (UINT64_C(1) << 40) / (uint64_t)ti->itemsize)
                return -EIO;
            size += (int64_t)len * ti->itemsize;
        }
        if (ti->flags & l->object.preheader_flags)
            size += l->object.preheader_size;
        if (w->vis && (k = w->vis->object(w->vis->ud, node + hs, type)) < 0)
            return k;
        ti->count++;
        if (__builtin_add_overflow(ti->bytes, size, &ti->bytes) ||
            __builtin_add_overflow(bytes, size, &bytes))
            return -EIO; /* more bytes than any process has: the sizes are forged */
        n++;
        prev = node;
        node = hdr[0] & ~1ull;
    }
    *ret_n = n;
    *ret_bytes = bytes;
    return 0;
}

/* ---- free-threaded builds: the mimalloc heaps -------------------------------------------- */

/* A page's blocks larger than this are copied only this far: the object's header (and what a
 * visitor reads beyond it comes from the hinted pages, or the stopped target). */
#define FT_BIG_BLOCK (64u << 10)
#define FT_BIG_HEAD  PAGE

static int ft_view_read(void *view, uint64_t addr, void *buf, size_t len)
{
    return view_read(view, addr, buf, len);
}

/* Free-threaded builds have no pymalloc arenas: what the walk needs are the blocks of the GC
 * heaps' pages in use. Reads those pages' metadata (mimalloc_reread_pages(): in a pass, while the
 * target is stopped, into the buffers the estimate before the stop allocated) and, with `layout`,
 * gives each page's blocks a region in buffer (or in an allocation of its own when cap is too
 * small) for copy_all(); without, only counts their bytes. The mappings are read again once when a
 * page's blocks are not in the kept ones. */
static int census_ft_plan(View *v, const PyLoc *loc, uint64_t interp, bool layout, uint8_t *buffer,
                          size_t cap, uint64_t *ret_total, char *why, size_t whylen)
{
    const PyLayout *l = &loc->layout;
    int k = -EIO;
    *ret_total = 0;
    for (int attempt = 0; attempt < 2 && k == -EIO; attempt++) {
        if (attempt > 0 || !*v->maps) {
            *v->maps = maps_free(*v->maps);
            if ((k = rmem_maps(v->r, v->maps)) < 0)
                return k;
        }
        k = mimalloc_reread_pages(l, v->r, *v->maps, loc->runtime, interp, &v->mi, why, whylen);
    }
    if (k < 0)
        return k;
    size_t n = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < v->mi.npages; i++) {
        const MiPage *p = &v->mi.pages[i];
        n += p->bsize > FT_BIG_BLOCK ? p->capacity : 1;
        total += p->bsize > FT_BIG_BLOCK ? (uint64_t)p->capacity * FT_BIG_HEAD
                                         : (uint64_t)p->capacity * p->bsize;
    }
    *ret_total = total;
    if (total > census_max_memory())
        return -E2BIG;
    if (!layout)
        return 0;
    Region *regions = calloc(n ? n : 1, sizeof(*regions));
    uint8_t *buf = buffer, *owned = NULL;
    if (!buffer || cap < total)
        buf = owned = malloc(total ? total : 1);
    if (!regions || !buf) {
        free(regions), free(owned);
        return -ENOMEM;
    }
    uint64_t off = 0;
    size_t m = 0;
    for (size_t i = 0; i < v->mi.npages; i++) {
        const MiPage *p = &v->mi.pages[i];
        if (p->bsize <= FT_BIG_BLOCK) {
            size_t len = (size_t)(p->capacity * p->bsize);
            regions[m++] = (Region){p->start, len, buf + off};
            off += len;
            continue;
        }
        for (uint32_t b = 0; b < p->capacity; b++) {
            regions[m++] = (Region){p->start + b * p->bsize, FT_BIG_HEAD, buf + off};
            off += FT_BIG_HEAD;
        }
    }
    qsort(regions, m, sizeof(*regions), cmp_region);
    for (size_t i = 1; i < m; i++)
        if (regions[i].base < regions[i - 1].base + regions[i - 1].len) {
            /* One page queued twice, or a thread's page also in an abandoned segment. */
            snprintf(why, whylen, "two pages overlap at %#" PRIx64, regions[i].base);
            free(regions), free(owned);
            return -EIO;
        }
    v->regions = regions;
    v->nregions = m;
    v->arena_buf = owned;
    return 0;
}

/* Counts one object found in a heap: its type and size as walk_list() does, but a free-threaded
 * object has no GC header (sys.getsizeof adds only the pre-header there, _PyType_PreHeaderSize). */
static int ft_count(Walk *w, uint64_t obj, const uint8_t *hdr, int64_t *ret_bytes)
{
    const PyLayout *l = w->l;
    uint64_t type;
    memcpy(&type, hdr + l->object.ob_type, 8);
    TypeInfo *ti;
    int k;
    if ((k = type_get(w->types, w->v, l, type, &ti)) < 0)
        return k;
    int64_t size = ti->basicsize, items;
    if (ti->sizing != SIZE_GENERIC) {
        if ((k = sized_items(w->v, l, ti->sizing, obj, &items)) < 0)
            return walk_fatal(k) ? k : -EIO;
        size += items * ti->itemsize;
    } else if (ti->itemsize) {
        int64_t obsize;
        memcpy(&obsize, hdr + l->object.ob_size, 8);
        uint64_t len = obsize < 0 ? -(uint64_t)obsize : (uint64_t)obsize;
        if (len > (UINT64_C(1) << 40) / (uint64_t)ti->itemsize)
            return -EIO;
        size += (int64_t)len * ti->itemsize;
    }
    if (ti->flags & l->object.preheader_flags)
        size += l->object.preheader_size;
    if (w->vis && (k = w->vis->object(w->vis->ud, obj, type)) < 0)
        return k;
    ti->count++;
    if (__builtin_add_overflow(ti->bytes, size, &ti->bytes))
        return -EIO;
    *ret_bytes = size;
    return 0;
}

/* Walks every block in use of the pages census_ft_plan() found, as gc_visit_heaps does, and
 * counts what gc.get_objects() would list: objects tracked (ob_gc_bits) and not marked
 * unreachable by a collection in progress. Frozen ones (gc.freeze()) go to generation[3], as
 * the permanent generation's do on other builds; the rest to generation[0]. */
static int census_ft_walk(Walk *w, Census *c)
{
    const PyLayout *l = w->l;
    const MiHeaps *mi = &w->v->mi;
    uint64_t *delayed = NULL, *live = NULL;
    size_t ndelayed = 0;
    int k = 0;
    /* Blocks other threads freed into a full page wait on its heap's delayed list. */
    for (size_t i = 0; i < mi->nheaps && k >= 0; i++) {
        uint64_t *d;
        size_t nd;
        if (!mi->delayed[i])
            continue;
        if ((k = mimalloc_delayed_blocks(mi->delayed[i], ft_view_read, w->v, mi->used_blocks + 1,
                                         &d, &nd)) < 0)
            break;
        uint64_t *all = realloc(delayed, (ndelayed + nd) * sizeof(*all));
        if (!all) {
            free(d);
            k = -ENOMEM;
            break;
        }
        delayed = all;
        memcpy(delayed + ndelayed, d, nd * sizeof(*d));
        ndelayed += nd;
        free(d);
        qsort(delayed, ndelayed, sizeof(*delayed), cmp_u64);
    }
    if (k >= 0 && !(live = malloc((l->mimalloc.max_blocks / 64 + 1) * sizeof(*live))))
        k = -ENOMEM;
    uint32_t hdr_len = l->object.ob_size + 8;
    uint8_t hdr[128];
    if (hdr_len > sizeof(hdr) || l->mimalloc.ob_gc_bits >= hdr_len)
        k = -EINVAL;
    for (size_t i = 0; i < mi->npages && k >= 0; i++) {
        const MiPage *p = &mi->pages[i];
        int64_t n = mimalloc_page_live(p, ft_view_read, w->v, delayed, ndelayed, live);
        if (n < 0) {
            k = walk_fatal((int)n) ? (int)n : -EIO;
            break;
        }
        for (uint32_t b = 0; b < p->capacity && k >= 0; b++) {
            if (!(live[b / 64] & (1ull << (b % 64))))
                continue;
            uint64_t obj = p->start + b * p->bsize + p->offset;
            if (++w->nodes > MAX_OBJECTS) {
                k = -EIO;
                break;
            }
            if (w->deadline && w->nodes % CHECK_EVERY == 0 && clock_mono() > w->deadline) {
                k = -ETIMEDOUT;
                break;
            }
            if ((k = view_read(w->v, obj, hdr, hdr_len)) < 0) {
                k = walk_fatal(k) ? k : -EIO;
                break;
            }
            uint8_t bits = hdr[l->mimalloc.ob_gc_bits];
            if (bits & l->mimalloc.bit_unreachable)
                continue;
            if (!(bits & l->mimalloc.bit_tracked)) {
                uint64_t type;
                memcpy(&type, hdr + l->object.ob_type, 8);
                if (w->vis && w->vis->untracked &&
                    (k = w->vis->untracked(w->vis->ud, obj, type)) < 0)
                    break;
                continue;
            }
            int g = bits & l->mimalloc.bit_frozen ? 3 : 0;
            int64_t size;
            if ((k = ft_count(w, obj, hdr, &size)) < 0)
                break;
            c->generation[g]++;
            if (__builtin_add_overflow(c->generation_bytes[g], size, &c->generation_bytes[g]))
                k = -EIO;
        }
    }
    free(delayed);
    free(live);
    return k;
}

static int cmp_type(const void *a, const void *b)
{
    const CensusType *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* The result table: one row per type object. Two types that share a __name__ are never merged:
 * each gets a qualified name (a static type's full tp_name, else census_type_key()). */
typedef struct Row {
    const TypeInfo *ti;
    bool shared; /* another type has the same __name__ */
} Row;

static int cmp_row_name(const void *a, const void *b)
{
    const Row *x = a, *y = b;
    return strcmp(short_name(x->ti), short_name(y->ti));
}

static int collect_types(const TypeTable *t, Census *c)
{
    Row *rows = calloc(t->n ? t->n : 1, sizeof(*rows));
    if (!rows)
        return -ENOMEM;
    /* Two names per type, each at most a qualified tp_name: the pool never needs more. */
    size_t n = 0, cap = 1, used = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->v[i].type && t->v[i].count) {
            rows[n++] = (Row){&t->v[i], false};
            cap += 2 * (strlen(t->v[i].tp_name) + 24);
        }
    /* Sorted by __name__, the types that share one are neighbours (a large program has
     * thousands of classes: comparing every pair would take seconds). */
    qsort(rows, n, sizeof(*rows), cmp_row_name);
    for (size_t i = 1; i < n; i++)
        if (cmp_row_name(&rows[i - 1], &rows[i]) == 0)
            rows[i - 1].shared = rows[i].shared = true;
    c->types = calloc(n ? n : 1, sizeof(*c->types));
    c->strings = malloc(cap);
    if (!c->types || !c->strings) {
        free(rows);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const TypeInfo *ti = rows[i].ti;
        CensusType *o = &c->types[c->ntypes++];
        o->type = ti->type;
        o->count = ti->count;
        o->bytes = ti->bytes;
        char *name = c->strings + used;
        int k;
        if (!rows[i].shared)
            k = snprintf(name, cap - used, "%s", short_name(ti));
        else if (strchr(ti->tp_name, '.'))
            k = snprintf(name, cap - used, "%s", ti->tp_name);
        else
            k = census_type_key(short_name(ti), ti->type, name, cap - used);
        used += (size_t)k + 1;
        char *pyname = c->strings + used;
        k = snprintf(pyname, cap - used, "%s", short_name(ti));
        used += (size_t)k + 1;
        o->name = name;
        o->pyname = pyname;
    }
    free(rows);
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

/* The sentence for a census refused by a bound: the arenas claimed more than the process maps
 * (-ERANGE), or the census would need more than census_max_memory (-E2BIG; need is what it
 * would need, 0 when unknown). */
static void set_err_bounds(char *err, size_t errlen, int k, uint64_t need)
{
    uint64_t cap = census_max_memory();
    if (k == -ERANGE)
        set_err(err, errlen,
                "refused: the pymalloc arena table claims memory the process has not mapped (a "
                "corrupt or forged table); nothing was copied");
    else if (k == -E2BIG && need)
        set_err(err, errlen,
                "refused: the census would need %" PRIu64 " MiB of pymemd's memory, more than "
                "census_max_memory (%" PRIu64 " MiB)",
                (need + (1u << 20) - 1) >> 20, cap >> 20);
    else if (k == -E2BIG)
        set_err(err, errlen,
                "abandoned: the census needed more than census_max_memory (%" PRIu64
                " MiB) of pymemd's memory; nothing reported",
                cap >> 20);
    else
        set_err(err, errlen, "cannot copy the pymalloc arenas: %s", strerror(-k));
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

/* What a visitor reads through: the copy, or the stopped target for what it lacks; then bounded
 * by the pause budget as the walk is, so that following references never keeps the target
 * stopped longer than a census would. */
static int census_read(void *view, uint64_t addr, void *buf, size_t len)
{
    View *v = view;
    if (v->deadline && ++v->visitor_reads % 4096 == 0 && clock_mono() > v->deadline)
        return -ETIMEDOUT;
    return view_read(view, addr, buf, len);
}

void census_read_for(void *rctx, uint64_t obj, uint64_t type)
{
    View *v = rctx;
    v->holder = obj;
    v->holder_type = type;
}

/* What one pass over the target needs and produces. */
typedef struct Pass {
    Rmem *r;
    pid_t pid;
    const ProcStamp *expect;
    CensusMode mode;
    const PyLoc *loc;
    uint64_t gc, obmalloc;
    Buffer *buf;
    const uint64_t *hints; /* the pages outside the arenas to copy, sorted */
    size_t nhints;
    const PoolSet *pools;  /* of the arenas, the pools to copy for a sealed walk; NULL: all */
    const Holder *holders; /* whose storage to copy afresh inside the stop (refresh_storage) */
    size_t nholders;
    double max_pause;
    double budget; /* seconds the target may still be kept stopped */
    const CensusVisitor *vis;
    char *err;
    size_t errlen;
} Pass;

static int drop_ref(void *ud, uint64_t ref, uint64_t key, bool weak)
{
    (void)ud, (void)ref, (void)key, (void)weak;
    return 0;
}

/* Whether a visit's k ends the visits inside the stop: past the pause's deadline, or out of
 * memory; the walk may miss a page then, and the next pass copies again. */
static bool refresh_over(int k)
{
    return k == -ETIMEDOUT || k == -E2BIG || k == -ENOMEM;
}

/* Visits again each holder whose head changed since the last walk read it, so that its storage
 * as it is now (a list's item array realloc'ed elsewhere, a dict's new key table) is in the view
 * when the walk reads it after the target is resumed. A holder that is no longer an object of its
 * type is passed over. */
static int refresh_holders(View *v, Traverser *t, const PyLayout *l, const Holder *hs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const Holder *h = &hs[i];
        uint8_t sig[HOLDER_SIG];
        uint64_t type;
        if (view_read(v, h->addr + l->object.ob_type, &type, 8) < 0 || type != h->type)
            continue;
        if (h->sig_ok && view_read(v, h->addr + l->object.ob_size, sig, HOLDER_SIG) >= 0 &&
            memcmp(sig, h->sig, HOLDER_SIG) == 0)
            continue; /* its storage is where it was: on the pages the hints name */
        int k = traverser_visit(t, h->addr, h->type, drop_ref, NULL);
        if (refresh_over(k))
            return k;
    }
    return 0;
}

/* Visits the newest objects of generation 0 (created since the last collection), then of
 * generation 1, MAX_YOUNG in all. A container made since the last walk (a list rebuilt by
 * slicing, a dict copied) is no holder the hints know, and its storage outside the arenas is on
 * pages they do not name; visited here, it is in the view when the walk reads it. An object whose
 * storage is in the arenas costs a visit over the copy. A target that never collects
 * (gc.disable()) keeps every object in generation 0: past the bound, a container whose storage
 * the walk then finds outside the copy fails it with -ENODATA, and the request stops the target a
 * second time, as it did before this. The lists are walked from their newest end (the head's
 * _gc_prev) along the _gc_prev links; `state` is the GC state read inside the stop. Free-threaded
 * builds have no generation lists. */
static int refresh_young(View *v, Traverser *t, const PyLayout *l, uint64_t gc,
                         const uint8_t *state)
{
    size_t left = MAX_YOUNG;
    for (uint32_t g = 0; g < 2 && g < l->gc.ngenerations && !l->free_threaded; g++) {
        uint32_t off = l->gc.generations + g * l->gc.generation_size;
        uint64_t head = gc + off, node;
        memcpy(&node, state + off + 8, 8);
        for (node &= ~3ull; node != head && left; left--) {
            uint64_t links[2], type;
            if (view_read(v, node, links, sizeof(links)) < 0 ||
                view_read(v, node + l->gc.head_size + l->object.ob_type, &type, 8) < 0)
                return -EIO; /* a list that does not hold together: the walk says so */
            int k = traverser_visit(t, node + l->gc.head_size, type, drop_ref, NULL);
            if (refresh_over(k))
                return k;
            node = links[1] & ~3ull;
        }
    }
    return 0;
}

/* Inside the stop, the view still reading what the copy lacks from the target: copies the
 * storage outside the arenas of the last walk's holders that changed, then of the young objects
 * (refresh_holders, refresh_young), reading on demand within the pause's deadline. The
 * references are dropped; the pages read stay. */
static void refresh_storage(View *v, const Pass *p, const uint8_t *state, double deadline)
{
    const PyLayout *l = &p->loc->layout;
    _cleanup_(traverser_freep) Traverser *t = NULL;
    if (traverser_new(l, census_read, v, &t) < 0)
        return;
    traverser_set_prefetch(t, census_prefetch);
    v->reader = 0; /* the walk marks what it uses itself */
    v->holder = 0;
    v->deadline = deadline;
    if (refresh_holders(v, t, l, p->holders, p->nholders) >= 0)
        refresh_young(v, t, l, p->gc, state);
    v->deadline = 0;
    v->reader = USED_WALK;
}

/* census_ft_plan() for a pass, with the pass's sentence for a heap that does not check out. */
static int census_ft_pass_plan(const Pass *p, View *v, size_t arena_cap, Census *c)
{
    char why[200] = "";
    uint64_t interp = p->gc - p->loc->layout.interp.gc;
    int k = census_ft_plan(v, p->loc, interp, true, p->buf->buf, arena_cap, &c->copied_bytes, why,
                           sizeof(why));
    if (k == -EOPNOTSUPP)
        set_err(p->err, p->errlen, "census unavailable on this free-threaded build: %s", why);
    else if (k == -EIO)
        set_err(p->err, p->errlen,
                "census unavailable: the free-threaded interpreter's mimalloc heaps do not check "
                "out against the layout table (%s)",
                why);
    return k;
}

/* The sentence for a walk of what (the object lists, the heaps) that ended in k < 0; broken
 * says how it did not hold together (-EIO with the target stopped). -ENODATA (a page the copy
 * lacked) gets none: the pass is copied again. */
static void set_walk_err(const Pass *p, int k, const char *what, const char *broken)
{
    if (k == -ETIMEDOUT)
        set_err(p->err, p->errlen,
                "abandoned: the census would have kept the process stopped longer than "
                "max_census_pause (%gs); the process was resumed",
                p->max_pause);
    else if (k == -EIO && p->mode == CENSUS_NONBLOCKING)
        set_err(p->err, p->errlen,
                "inconsistent: the process changed its %s while they were walked without "
                "stopping it; nothing reported",
                what);
    else if (k == -EIO)
        set_err(p->err, p->errlen, "%s", broken);
    else if (k == -E2BIG)
        set_err_bounds(p->err, p->errlen, k, 0);
    else if (k < 0 && k != -ENODATA)
        set_err(p->err, p->errlen, "the walk failed: %s", strerror(-k));
}

/* census_ft_walk() for a pass, with the pass's sentences. */
static int census_ft_pass_walk(const Pass *p, Walk *w, Census *c)
{
    int k = census_ft_walk(w, c);
    set_walk_err(p, k, "heaps",
                 "the mimalloc heaps do not hold together (a free list or a page count does not "
                 "agree with its page)");
    return k;
}

/* Reads, while the target still runs, what the stop is about to copy, into the same buffer, and
 * forgets it. The copy inside the stop then finds the target's pages, their page tables and the
 * buffer in the caches and takes about half as long (measured on Debian's 3.11.2: 9.4 MB in 0.8
 * to 1.3 ms instead of 1.4 to 2.5 at 105k objects, 78 MB in 5.5 to 6.8 ms instead of 7 to 15 at
 * 1M; at 5M, 400 MB, nothing), for one more copy of CPU time while nothing waits on it. Past
 * WARM_MAX the caches hold too little of it to matter, and a copy that does not fit the buffer
 * goes to a fresh allocation: neither is read ahead. */
static void warm(const Pass *p, View *v, Crew *crew, size_t arena_cap, bool seal)
{
    const PyLayout *l = &p->loc->layout;
    uint64_t bytes = 0;
    char why[200];
    int k;
    if (!p->buf->buf)
        return;
    v->note_pools = p->vis != NULL; /* as the copy will: with the pools to choose from */
    if (l->free_threaded)
        k = census_ft_plan(v, p->loc, p->gc - l->interp.gc, true, p->buf->buf, arena_cap, &bytes,
                           why, sizeof(why));
    else
        k = plan_arenas(v, p->loc, p->obmalloc, true, p->buf->buf, arena_cap, &bytes);
    if (k >= 0 && !v->arena_buf && bytes + p->nhints * PAGE <= WARM_MAX)
        copy_all(v, crew, seal ? p->pools : NULL, pool_bytes(l), p->hints, p->nhints,
                 p->buf->buf + arena_cap, 0);
    view_done(v);
}

/* One pass: stops the target (freeze mode), reads its GC state, copies the arenas and the pages
 * the hints name, and walks every generation list. With seal, the target is resumed before the
 * walk, which then runs over the copy alone and fails with -ENODATA at the first page it lacks;
 * without, the walk runs while the target is stopped and reads what it lacks on demand. */
static int census_pass(const Pass *p, bool seal, View *v, TypeTable *types, Census *c)
{
    const PyLayout *l = &p->loc->layout;
    size_t store = p->nhints * PAGE, arena_cap = p->buf->cap > store ? p->buf->cap - store : 0;
    uint8_t before[4096], after[4096];
    int64_t sum_before = 0, sum_after = 0;
    Freeze *fz = NULL;
    _cleanup_(crew_freep) Crew *crew = NULL;
    double t_plan = 0, t_copy = 0, t_copied = 0; /* for the log: where the pause went */
    uint64_t reads = 0;
    int k;
    if ((k = crew_new(p->r, p->buf->cap >= CREW_MIN, &crew)) < 0)
        return k;
    if (p->mode == CENSUS_FREEZE) {
        crew_ready(crew, READY_SPIN); /* awake from here to the copy in the stop */
        warm(p, v, crew, arena_cap, seal);
    }
    /* Room for the hinted pages is made before the stop. */
    if (p->nhints && (v->npages + p->nhints) * 2 >= v->cap &&
        (k = page_grow(v, v->npages + p->nhints)) < 0)
        return k;
    v->reader = USED_WALK;
    v->note_pools = p->vis != NULL;
    double pause_start = clock_mono(), deadline = 0;
    if (p->mode == CENSUS_FREEZE) {
        deadline = pause_start + p->budget;
        crew_ready(crew, READY_SPIN);
        k = freeze_process(p->pid, p->expect, deadline, &fz);
        if (k == -ETIMEDOUT) {
            set_err(p->err, p->errlen,
                    "abandoned: a thread did not stop within max_census_pause (%gs); the process "
                    "was resumed",
                    p->max_pause);
            return k;
        }
        if (k == -ESTALE) {
            set_err(p->err, p->errlen,
                    "refused: once stopped, the process was no longer the one watched (its pid "
                    "was reused, or it exec()ed another program); it was resumed unread");
            return k;
        }
        if (k < 0) {
            set_err(p->err, p->errlen, "cannot stop the process: %s", strerror(-k));
            return k;
        }
        c->stops++;
        /* Listing the threads before the first seize stops nothing: not part of the pause. */
        pause_start = freeze_started(fz);
    }
    double t_stopped = clock_mono();
    if (fz)
        c->stop_seconds += t_stopped - pause_start;
    if ((k = gc_state(p->r, l, p->gc, before, &sum_before)) < 0) {
        set_err(p->err, p->errlen,
                k == -EBUSY ? "the GC is collecting; census skipped" : "cannot read the GC state");
        goto out;
    }
    memcpy(&c->permanent_first, before + l->gc.permanent_generation, 8);
    memcpy(&c->permanent_last, before + l->gc.permanent_generation + 8, 8);
    c->permanent_at = clock_mono();
    /* The hints go to the end of the buffer; without one, the walk reads on demand. */
    t_plan = clock_mono();
    if (l->free_threaded)
        k = census_ft_pass_plan(p, v, arena_cap, c);
    else
        k = plan_arenas(v, p->loc, p->obmalloc, true, p->buf->buf, arena_cap, &c->copied_bytes);
    t_copy = clock_mono();
    reads = rmem_calls(p->r);
    if (k == -EOPNOTSUPP || (k == -EIO && l->free_threaded))
        goto out; /* census_ft_pass_plan() said why */
    if (k < 0 || (k = copy_all(v, crew, seal ? p->pools : NULL, pool_bytes(l), p->hints, p->nhints,
                               p->buf->buf ? p->buf->buf + arena_cap : NULL, deadline)) < 0) {
        if (k == -ETIMEDOUT)
            set_err(p->err, p->errlen,
                    "abandoned: copying the heap would have kept the process stopped longer "
                    "than max_census_pause (%gs); the process was resumed",
                    p->max_pause);
        else
            set_err_bounds(p->err, p->errlen, k, c->copied_bytes);
        goto out;
    }
    crew_rest(crew);
    /* What is left of census_max_memory after the copy is for pages read on demand. The copy
     * is in the buffer (hinted pages at its end), or, when the arenas outgrew the buffer since
     * it was sized, in an allocation of its own beside it. */
    uint64_t used = (uint64_t)p->buf->cap + (v->arena_buf ? c->copied_bytes : 0);
    v->mem_left = census_max_memory() > used ? census_max_memory() - used : 0;
    if (seal && fz && p->vis)
        refresh_storage(v, p, before, deadline);
    c->copy_seconds += clock_mono() - t_stopped;
    t_copied = clock_mono();
    reads = rmem_calls(p->r) - reads;
    if (seal && fz) {
        freeze_thaw(fz);
        fz = NULL;
        c->pause_seconds += clock_mono() - pause_start;
        v->sealed = true;
        c->snapshot = true;
        deadline = 0; /* the walk no longer pauses anyone */
    }
    if (p->vis)
        p->vis->reset(p->vis->ud);
    Walk w = {v, types, l, deadline, 0, p->vis};
    int64_t total = 0;
    if (l->free_threaded)
        k = census_ft_pass_walk(p, &w, c);
    for (int g = 0; g < CENSUS_GENERATIONS && k >= 0 && !l->free_threaded; g++) {
        uint32_t off = g < 3 ? l->gc.generations + (uint32_t)g * l->gc.generation_size
                             : l->gc.permanent_generation;
        uint64_t first;
        memcpy(&first, before + off, 8);
        k = walk_list(&w, p->gc + off, first, &c->generation[g], &c->generation_bytes[g]);
        if (k < 0) {
            char broken[64];
            snprintf(broken, sizeof(broken),
                     "the object lists do not hold together (generation %d)", g);
            set_walk_err(p, k, "object lists", broken);
        }
        total += c->generation[g];
    }
    if (l->free_threaded)
        total = c->generation[0] + c->generation[3];
    c->total = total;
    v->deadline = deadline;
    v->reader = USED_VISIT;
    if (k >= 0 && p->vis && (k = p->vis->done(p->vis->ud, census_read, v)) < 0 && k != -ENODATA) {
        if (k == -ETIMEDOUT)
            set_err(p->err, p->errlen,
                    "abandoned: following references over pages the copy lacked would have kept "
                    "the process stopped longer than max_census_pause (%gs); the process was "
                    "resumed, and the next try copies them in advance",
                    p->max_pause);
        else
            set_err(p->err, p->errlen, "following references failed: %s", strerror(-k));
    }
    if (k >= 0 && p->mode == CENSUS_NONBLOCKING) {
        /* A running mutator: the walk counts only if nothing moved meanwhile. */
        if ((k = gc_state(p->r, l, p->gc, after, &sum_after)) < 0 || sum_after != sum_before ||
            memcmp(before + l->gc.stats, after + l->gc.stats,
                   l->gc.stats_kind == PYGCS_ARRAY ? l->gc.stats_size : 8) != 0) {
            set_err(p->err, p->errlen,
                    "inconsistent: the process allocated or collected during the walk; nothing "
                    "reported");
            k = -EIO;
        }
    }
out:
    if (fz) {
        freeze_thaw(fz);
        c->pause_seconds += clock_mono() - pause_start;
    }
    if (t_copied > 0) /* logged once the target runs */
        log_debug("census of pid %d: stopped in %.2f ms, planned %zu regions in %.2f ms, copied "
                  "%.1f MB in %.2f ms with %" PRIu64 " reads",
                  (int)p->pid, (t_stopped - pause_start) * 1e3, v->nregions,
                  (t_copy - t_plan) * 1e3, c->copied_bytes / 1048576.0, (t_copied - t_copy) * 1e3,
                  reads);
    return k;
}

/* Forgets what a pass read and counted, for the next. */
static void pass_reset(View *v, TypeTable *types, Census *c)
{
    c->pages_read += v->pages_read;
    view_done(v);
    free(types->v);
    *types = (TypeTable){0};
    memset(c->generation, 0, sizeof(c->generation));
    memset(c->generation_bytes, 0, sizeof(c->generation_bytes));
    c->total = 0;
    c->snapshot = false;
}

/* A walk of the running target (its errors do not matter: torn or not, it names pages), with
 * the pages the hints name copied first; what it read is added to the hints (with keep) or
 * replaces them. */
static void scout(const Pass *p, View *v, TypeTable *types, CensusHints **hints, bool keep)
{
    char scratch[160];
    Census sc = {0};
    Pass sp = *p;
    sp.mode = CENSUS_NONBLOCKING;
    sp.err = scratch;
    sp.errlen = sizeof(scratch);
    census_pass(&sp, false, v, types, &sc);
    hints_update(hints, v, &p->loc->layout, p->vis != NULL, keep);
    pass_reset(v, types, &sc);
}

int census_take(PyReader *pr, Rmem *r, pid_t pid, const ProcStamp *expect, CensusMode mode,
                double max_pause, CensusHints **hints, Census **ret, char *err, size_t errlen)
{
    return census_take_visit(pr, r, pid, expect, mode, max_pause, NULL, hints, ret, err, errlen);
}

int census_take_visit(PyReader *pr, Rmem *r, pid_t pid, const ProcStamp *expect, CensusMode mode,
                      double max_pause, const CensusVisitor *vis, CensusHints **hints, Census **ret,
                      char *err, size_t errlen)
{
    Pass p = {.r = r,
              .pid = pid,
              .expect = expect,
              .mode = mode,
              .max_pause = max_pause,
              .err = err,
              .errlen = errlen,
              .budget = max_pause,
              .vis = vis};
    if (pyreader_bases(pr, &p.gc, &p.obmalloc, &p.loc) < 0) {
        set_err(err, errlen, "the interpreter has not been sampled yet");
        return -EAGAIN;
    }
    if (p.loc->layout.gc.size > 4096)
        return -EINVAL;
    if (p.loc->layout.free_threaded && !p.loc->layout.mimalloc.present) {
        /* No generation lists to walk, and no table of the mimalloc heaps its objects are in. */
        set_err(err, errlen, "census unavailable: no mimalloc layout for this free-threaded build");
        return -EOPNOTSUPP;
    }
    double t0 = clock_mono();
    Census *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    atomic_init(&c->refs, 1);
    c->at = clock_real();
    c->frozen = mode == CENSUS_FREEZE;

    /* The buffer is sized and faulted in while the target runs, once what the target claims
     * has been checked against its mappings and census_max_memory. */
    _cleanup_(maps_freep) Maps *maps = NULL;
    View v = {.r = r, .maps = &maps};
    TypeTable types = {0};
    Buffer buf = {0};
    uint64_t estimate = 0;
    int k;
    if (p.loc->layout.free_threaded) {
        char why[200];
        k = census_ft_plan(&v, p.loc, p.gc - p.loc->layout.interp.gc, false, NULL, 0, &estimate,
                           why, sizeof(why));
    } else {
        k = plan_arenas(&v, p.loc, p.obmalloc, false, NULL, 0, &estimate);
    }
    if (k == -ERANGE || k == -E2BIG) {
        set_err_bounds(err, errlen, k, estimate);
        census_free(c);
        return k;
    }
    if (k < 0)
        estimate = 0;
    p.buf = &buf;
    uint64_t *want = NULL;
    bool complete = false;
    if (mode == CENSUS_FREEZE && (!*hints || (vis && !(*hints)->visited))) {
        /* The first census (or referrers walk) of a process scouts: a walk of the running
         * target, torn or not, names the pages outside the arenas that it will need. */
        buffer_reserve(&buf, (size_t)estimate);
        scout(&p, &v, &types, hints, false);
    }
    if ((k = hints_pages(*hints, vis != NULL, &want, &p.nhints, &complete)) < 0) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    p.hints = want;
    p.pools = vis && *hints ? &(*hints)->pools : NULL;
    p.holders = vis && *hints ? (*hints)->holders : NULL;
    p.nholders = vis && *hints ? (*hints)->nholders : 0;
    buffer_reserve(&buf, (size_t)estimate + p.nhints * PAGE);

    /* Copied along with the arenas, the pages the hints name let the walk wait until the
     * target runs again. Should it find one missing (the heap moved: new large objects, a
     * container grown), a scout of the running target learns the pages it lacks and a second
     * stop copies them too, which costs a copy where walking while stopped would cost the whole
     * walk; only if that falls short again does a last pass walk with the target stopped and
     * read what it lacks on demand. */
    bool seal = mode == CENSUS_FREEZE && complete && buf.buf;
    k = census_pass(&p, seal, &v, &types, c);
    if (k == -ENODATA) {
        pass_reset(&v, &types, c);
        scout(&p, &v, &types, hints, true);
        free(want);
        want = NULL;
        if ((k = hints_pages(*hints, vis != NULL, &want, &p.nhints, &complete)) < 0) {
            set_err(err, errlen, "out of memory");
            goto out;
        }
        p.hints = want;
        buffer_reserve(&buf, (size_t)estimate + p.nhints * PAGE);
        p.budget = max_pause - c->pause_seconds;
        /* A heap that moved once moves on: the arenas are copied whole this time. */
        p.pools = NULL;
        p.holders = vis && *hints ? (*hints)->holders : NULL; /* the scout's, reallocated */
        p.nholders = vis && *hints ? (*hints)->nholders : 0;
        k = census_pass(&p, complete && buf.buf, &v, &types, c);
    }
    if (k == -ENODATA) {
        pass_reset(&v, &types, c);
        p.budget = max_pause - c->pause_seconds;
        k = census_pass(&p, false, &v, &types, c);
        if (k < 0) /* abandoned at max_census_pause, say: what it saw helps the next one */
            hints_update(hints, &v, &p.loc->layout, vis != NULL, true);
    }
out:
    free(want);
    if (k >= 0) {
        c->pages_read += v.pages_read;
        k = collect_types(&types, c);
    }
    if (k >= 0) /* before the buffer goes: holders_update reads the holders' heads in the copy */
        hints_update(hints, &v, &p.loc->layout, vis != NULL, false);
    buffer_release(&buf);
    free(types.v);
    view_done(&v);
    if (k < 0) {
        census_free(c);
        return k;
    }
    c->walk_seconds = clock_mono() - t0;
    /* The permanent list was walked whole: samples serve its length until its ends move. (A
     * free-threaded build has no such list: its frozen objects are a bit in their headers.) */
    if (!p.loc->layout.free_threaded)
        pyreader_note_frozen(pr, c->generation[3], c->permanent_first, c->permanent_last,
                             c->permanent_at);
    *ret = c;
    return 0;
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
