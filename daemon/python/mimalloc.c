#include "python/mimalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"

/* Bounds on what a hostile target can make the reader do. */
#define MI_MAX_THREADS   65536
#define MI_MAX_SEGMENTS  65536
#define MI_MAX_PAGES     (1u << 22) /* 256 GiB of 64 KiB pages */
#define MI_MAX_PAGE_SPAN (1ull << 40)

void mimalloc_heaps_done(MiHeaps *h)
{
    free(h->pages);
    free(h->delayed);
    for (size_t i = 0; i < h->nseg_hdrs; i++)
        free(h->seg_hdrs[i]);
    free(h->seg_hdrs);
    *h = (MiHeaps){0};
}

static void set_why(char *why, size_t whylen, const char *fmt, ...) _printf_(3, 4);
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static uint32_t get_u32(const uint8_t *b, uint32_t off)
{
    uint32_t v;
    memcpy(&v, b + off, sizeof(v));
    return v;
}

static uint16_t get_u16(const uint8_t *b, uint32_t off)
{
    uint16_t v;
    memcpy(&v, b + off, sizeof(v));
    return v;
}

static uint64_t get_u64(const uint8_t *b, uint32_t off)
{
    uint64_t v;
    memcpy(&v, b + off, sizeof(v));
    return v;
}

#define MI_MAX_SEGMENT_CACHE 4096 /* 128 GiB of segments */

/* Segment headers read so far: each holds the mi_page_t of all its pages, so a walk over pages
 * costs one read per segment instead of one per page (with the target stopped, that is about
 * 1,400 reads fewer at a million objects). */
typedef struct SegCache {
    const PyLayout *l;
    Rmem *r;
    MiHeaps *h; /* whose seg_hdrs hold the headers: segment segs[i]'s in seg_hdrs[i] */
    uint64_t *segs;
    size_t nsegs;
} SegCache;

static void segcache_done(SegCache *c)
{
    free(c->segs);
    c->segs = NULL, c->nsegs = 0;
}

/* The mi_page_t at `page`, out of its segment's header (read once). -EIO with why set when the
 * page is no slice of a segment or the segment is not mapped. */
static int segcache_page(SegCache *c, uint64_t page, const uint8_t **ret, char *why, size_t whylen)
{
    const PyLayout *l = c->l;
    uint64_t seg = page & ~((uint64_t)l->mimalloc.segment_span - 1);
    if (page - seg + l->mimalloc.page_size > l->mimalloc.segment_size) {
        set_why(why, whylen, "page %#" PRIx64 " is not a slice of its segment", page);
        return -EIO;
    }
    MiHeaps *h = c->h;
    for (size_t i = 0; i < c->nsegs; i++)
        if (c->segs[i] == seg) {
            *ret = h->seg_hdrs[i] + (page - seg);
            return 0;
        }
    if (c->nsegs >= MI_MAX_SEGMENT_CACHE) {
        set_why(why, whylen, "more than %u segments", MI_MAX_SEGMENT_CACHE);
        return -EIO;
    }
    if (c->nsegs % 64 == 0) {
        uint64_t *s = realloc(c->segs, (c->nsegs + 64) * sizeof(*s));
        if (!s)
            return -ENOMEM;
        c->segs = s;
    }
    if (c->nsegs == h->nseg_hdrs) { /* a header buffer no earlier read left */
        if (h->nseg_hdrs % 64 == 0) {
            uint8_t **v = realloc(h->seg_hdrs, (h->nseg_hdrs + 64) * sizeof(*v));
            if (!v)
                return -ENOMEM;
            h->seg_hdrs = v;
        }
        if (!(h->seg_hdrs[h->nseg_hdrs] = malloc(l->mimalloc.segment_size)))
            return -ENOMEM;
        h->nseg_hdrs++;
    }
    uint8_t *hdr = h->seg_hdrs[c->nsegs];
    int k = rmem_read(c->r, seg, hdr, l->mimalloc.segment_size);
    if (k < 0) {
        if (k == -EFAULT)
            set_why(why, whylen, "segment %#" PRIx64 " is not mapped", seg);
        return k == -EFAULT ? -EIO : k;
    }
    c->segs[c->nsegs++] = seg;
    *ret = hdr + (page - seg);
    return 0;
}

typedef struct Reader {
    const PyLayout *l;
    Rmem *r;
    const Maps *maps;
    MiHeaps *h;
    uint32_t base; /* the object's offset in a block: 0, or the debug allocator's words */
    SegCache segs; /* the thread heaps' pages, read by segment */
    char *why;
    size_t whylen;
} Reader;

/* Checks the mi_page_t in `pb` (read from `page`) and, when blocks of it are in use, keeps it.
 * heap: the owning thread heap's index, or UINT32_MAX for an abandoned page; tag: the heap
 * index (_Py_MIMALLOC_HEAP_GC or _GC_PRE) it must carry. */
static int keep_page(Reader *rd, uint64_t page, const uint8_t *pb, uint64_t heap_addr,
                     uint32_t heap, uint32_t tag)
{
    const PyLayout *l = rd->l;
    uint64_t seg = page & ~((uint64_t)l->mimalloc.segment_span - 1);
    uint64_t rel = page - seg;
    /* A page is an entry of its segment's slices[] (mimalloc's _mi_page_segment()). */
    if (rel < l->mimalloc.segment_slices ||
        (rel - l->mimalloc.segment_slices) % l->mimalloc.page_size ||
        (rel - l->mimalloc.segment_slices) / l->mimalloc.page_size >= l->mimalloc.max_slices) {
        set_why(rd->why, rd->whylen, "page %#" PRIx64 " is not a slice of its segment", page);
        return -EIO;
    }
    uint64_t idx = (rel - l->mimalloc.segment_slices) / l->mimalloc.page_size;
    uint32_t slice_count = get_u32(pb, l->mimalloc.page_slice_count);
    uint32_t slice_offset = get_u32(pb, l->mimalloc.page_slice_offset);
    uint32_t xbsize = get_u32(pb, l->mimalloc.page_xblock_size);
    uint32_t capacity = get_u16(pb, l->mimalloc.page_capacity);
    uint32_t reserved = get_u16(pb, l->mimalloc.page_reserved);
    uint32_t used = get_u32(pb, l->mimalloc.page_used);
    uint32_t ptag = (pb[l->mimalloc.page_tag_byte] >> l->mimalloc.page_tag_shift) & 0xf;
    uint64_t xheap = get_u64(pb, l->mimalloc.page_xheap);
    uint64_t psize = (uint64_t)slice_count * l->mimalloc.slice_span;
    if (slice_count == 0 || slice_offset != 0 || xbsize == 0 || psize > MI_MAX_PAGE_SPAN ||
        capacity > reserved || used > capacity || ptag != tag ||
        (heap != UINT32_MAX && xheap != heap_addr)) {
        set_why(rd->why, rd->whylen,
                "page %#" PRIx64 " does not hold together (slices %u offset %u, block size %u, "
                "capacity %u of %u, used %u, tag %u, heap %#" PRIx64 ")",
                page, slice_count, slice_offset, xbsize, capacity, reserved, used, ptag, xheap);
        return -EIO;
    }
    /* _mi_segment_page_start_from_slice(): small blocks start a few blocks into the page. */
    uint64_t start_offset = 0;
    if (xbsize >= 8 && xbsize <= 64)
        start_offset = 3ull * xbsize;
    else if (xbsize >= 8 && xbsize <= 512)
        start_offset = xbsize;
    if (start_offset >= psize) {
        set_why(rd->why, rd->whylen, "page %#" PRIx64 " is smaller than its first block", page);
        return -EIO;
    }
    uint64_t start = seg + idx * l->mimalloc.slice_span + start_offset;
    /* mi_page_block_size(): from MI_HUGE_BLOCK_SIZE on, the page is one block. */
    uint64_t bsize = xbsize < l->mimalloc.huge_block_size ? xbsize : psize - start_offset;
    if ((uint64_t)capacity * bsize > psize - start_offset ||
        (capacity > 1 && capacity > l->mimalloc.max_blocks)) {
        set_why(rd->why, rd->whylen,
                "page %#" PRIx64 ": %u blocks of %" PRIu64 " bytes do not fit its %" PRIu64
                " bytes",
                page, capacity, bsize, psize);
        return -EIO;
    }
    if (used == 0)
        return 0; /* nothing in use: gc_visit_heaps skips it too */
    if (!maps_readable(rd->maps, start, (uint64_t)capacity * bsize)) {
        set_why(rd->why, rd->whylen, "the blocks of page %#" PRIx64 " are not mapped", page);
        return -EIO;
    }
    if (rd->h->npages >= MI_MAX_PAGES) {
        set_why(rd->why, rd->whylen, "more than %u pages in the GC heaps", MI_MAX_PAGES);
        return -EIO;
    }
    if (rd->h->npages == rd->h->cap) {
        size_t ncap = rd->h->cap ? rd->h->cap * 2 : 256;
        MiPage *p = realloc(rd->h->pages, ncap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        rd->h->pages = p;
        rd->h->cap = ncap;
    }
    uint32_t offset = rd->base + (tag == l->mimalloc.heap_gc_pre ? l->mimalloc.pre_offset : 0);
    rd->h->pages[rd->h->npages++] = (MiPage){
        .addr = page,
        .start = start,
        .bsize = bsize,
        .capacity = capacity,
        .used = used,
        .free = get_u64(pb, l->mimalloc.page_free),
        .local_free = get_u64(pb, l->mimalloc.page_local_free),
        .thread_free = get_u64(pb, l->mimalloc.page_xthread_free) & ~(uint64_t)3,
        .offset = offset,
        .heap = heap,
    };
    rd->h->block_bytes += (uint64_t)capacity * bsize;
    rd->h->used_blocks += used;
    return 0;
}

/* Every page queue of one thread heap (mi_heap_visit_pages()): the page count must be the one
 * the heap keeps. */
static int read_heap(Reader *rd, uint64_t heap_addr, const uint8_t *hb, uint32_t heap, uint32_t tag)
{
    const PyLayout *l = rd->l;
    uint64_t want = get_u64(hb, l->mimalloc.heap_page_count), seen = 0;
    for (uint32_t q = 0; q < l->mimalloc.nqueues; q++) {
        uint64_t page = get_u64(hb, l->mimalloc.heap_pages + q * l->mimalloc.queue_size +
                                        l->mimalloc.queue_first);
        while (page) {
            if (++seen > want || seen > MI_MAX_PAGES) {
                set_why(rd->why, rd->whylen,
                        "heap %#" PRIx64 " queues more pages than its page count (%" PRIu64 ")",
                        heap_addr, want);
                return -EIO;
            }
            const uint8_t *pb;
            int k = segcache_page(&rd->segs, page, &pb, rd->why, rd->whylen);
            if (k < 0 || (k = keep_page(rd, page, pb, heap_addr, heap, tag)) < 0)
                return k;
            page = get_u64(pb, l->mimalloc.page_next);
        }
    }
    if (seen != want) {
        set_why(rd->why, rd->whylen,
                "heap %#" PRIx64 " queues %" PRIu64 " pages, its page count says %" PRIu64,
                heap_addr, seen, want);
        return -EIO;
    }
    return 0;
}

/* The pages of the GC heap tags in one abandoned segment (mi_segment_visit_pages()). */
static int read_segment(Reader *rd, uint64_t seg, uint8_t *sb, uint64_t *ret_next)
{
    const PyLayout *l = rd->l;
    if (seg & ((uint64_t)l->mimalloc.segment_span - 1) ||
        !maps_readable(rd->maps, seg, l->mimalloc.segment_size)) {
        set_why(rd->why, rd->whylen, "abandoned segment %#" PRIx64 " is not a mapped segment", seg);
        return -EIO;
    }
    int k = rmem_read(rd->r, seg, sb, l->mimalloc.segment_size);
    if (k == -EFAULT)
        set_why(rd->why, rd->whylen, "abandoned segment %#" PRIx64 " is not mapped", seg);
    if (k < 0)
        return k;
    uint64_t entries = get_u64(sb, l->mimalloc.segment_slice_entries);
    if (entries == 0 || entries > l->mimalloc.max_slices) {
        set_why(rd->why, rd->whylen, "abandoned segment %#" PRIx64 " has %" PRIu64 " slices", seg,
                entries);
        return -EIO;
    }
    /* mi_slices_start_iterate(): the first slice is the segment's own header page. */
    uint64_t i = get_u32(sb, l->mimalloc.segment_slices + l->mimalloc.page_slice_count);
    while (i < entries) {
        const uint8_t *pb = sb + l->mimalloc.segment_slices + i * l->mimalloc.page_size;
        uint32_t count = get_u32(pb, l->mimalloc.page_slice_count);
        uint32_t ptag = (pb[l->mimalloc.page_tag_byte] >> l->mimalloc.page_tag_shift) & 0xf;
        if (count == 0) {
            set_why(rd->why, rd->whylen,
                    "abandoned segment %#" PRIx64 ": slice %" PRIu64 " spans nothing", seg, i);
            return -EIO;
        }
        /* mi_slice_is_used(): a page has a block size. */
        if (get_u32(pb, l->mimalloc.page_xblock_size) > 0 &&
            (ptag == l->mimalloc.heap_gc || ptag == l->mimalloc.heap_gc_pre)) {
            uint64_t page = seg + l->mimalloc.segment_slices + i * l->mimalloc.page_size;
            if ((k = keep_page(rd, page, pb, 0, UINT32_MAX, ptag)) < 0)
                return k;
        }
        i += count;
    }
    *ret_next = get_u64(sb, l->mimalloc.segment_abandoned_next);
    return 0;
}

/* What h allocated, without what it holds. */
static MiHeaps heaps_kept(const MiHeaps *h)
{
    return (MiHeaps){.pages = h->pages,
                     .cap = h->cap,
                     .delayed = h->delayed,
                     .seg_hdrs = h->seg_hdrs,
                     .nseg_hdrs = h->nseg_hdrs};
}

int mimalloc_read_pages(const PyLayout *l, Rmem *r, const Maps *maps, uint64_t runtime,
                        uint64_t interp, MiHeaps *ret, char *why, size_t whylen)
{
    *ret = (MiHeaps){0};
    int k = mimalloc_reread_pages(l, r, maps, runtime, interp, ret, why, whylen);
    if (k < 0)
        mimalloc_heaps_done(ret);
    return k;
}

int mimalloc_reread_pages(const PyLayout *l, Rmem *r, const Maps *maps, uint64_t runtime,
                          uint64_t interp, MiHeaps *ret, char *why, size_t whylen)
{
    if (!l->mimalloc.present) {
        set_why(why, whylen, "no mimalloc layout for this build");
        return -EOPNOTSUPP;
    }
    if (l->mimalloc.encoded_freelist) {
        set_why(why, whylen,
                "this build encodes mimalloc's free lists (MI_ENCODE_FREELIST); not read");
        return -EOPNOTSUPP;
    }
    if (l->mimalloc.heap_size > 65536 || l->mimalloc.segment_size > (1u << 20) ||
        l->mimalloc.page_size == 0 || l->mimalloc.segment_span == 0 ||
        (l->mimalloc.segment_span & (l->mimalloc.segment_span - 1)) != 0) {
        set_why(why, whylen, "the mimalloc layout is out of range");
        return -EIO;
    }
    MiHeaps h = heaps_kept(ret);
    *ret = h;
    Reader rd = {.l = l,
                 .r = r,
                 .maps = maps,
                 .h = &h,
                 .segs = {.l = l, .r = r, .h = &h},
                 .why = why,
                 .whylen = whylen};
    int32_t debug_enabled;
    int k = rmem_read(r, runtime + l->mimalloc.runtime_debug_enabled, &debug_enabled, 4);
    if (k == -EFAULT)
        set_why(why, whylen, "_PyRuntime.allocators.is_debug_enabled is not mapped");
    if (k < 0)
        return k == -EFAULT ? -EIO : k;
    if (debug_enabled != 0 && debug_enabled != 1) {
        set_why(why, whylen, "_PyRuntime.allocators.is_debug_enabled is %d", debug_enabled);
        return -EIO;
    }
    /* gc_visit_heaps_lock_held(): the debug hooks put two words before every object. */
    rd.base = debug_enabled ? l->mimalloc.debug_offset : 0;

    uint8_t *hb = malloc(2 * (size_t)l->mimalloc.heap_size);
    uint8_t *sb = malloc(l->mimalloc.segment_size);
    uint64_t tstate;
    if (!hb || !sb) {
        k = -ENOMEM;
        goto fail;
    }
    if ((k = rmem_read_u64(r, interp + l->interp.threads_head, &tstate)) < 0) {
        if (k == -EFAULT)
            set_why(why, whylen, "the interpreter's thread list is not mapped");
        goto fail;
    }
    const uint32_t tags[2] = {l->mimalloc.heap_gc, l->mimalloc.heap_gc_pre};
    for (size_t n = 0; tstate; n++) {
        if (n >= MI_MAX_THREADS) {
            set_why(why, whylen, "more than %u thread states", MI_MAX_THREADS);
            k = -EIO;
            goto fail;
        }
        int32_t initialized;
        uint64_t next;
        uint64_t heaps = tstate + l->mimalloc.tstate_heaps;
        RmemIov iov[] = {
            {tstate + l->tstate.next, &next, 8},
            {tstate + l->mimalloc.tstate_initialized, &initialized, 4},
            {heaps + tags[0] * (uint64_t)l->mimalloc.heap_size, hb, l->mimalloc.heap_size},
            {heaps + tags[1] * (uint64_t)l->mimalloc.heap_size, hb + l->mimalloc.heap_size,
             l->mimalloc.heap_size},
        };
        if ((k = rmem_readv(r, iov, ARRAY_SIZE(iov))) < 0) {
            if (k == -EFAULT)
                set_why(why, whylen,
                        "the mimalloc heaps of thread state %#" PRIx64 " are not mapped", tstate);
            goto fail;
        }
        /* A thread that has not bound its heaps yet (tstate_mimalloc_bind()) has no objects. */
        if (initialized != 0) {
            for (int i = 0; i < 2; i++) {
                uint64_t heap_addr = iov[2 + i].addr;
                const uint8_t *b = hb + i * (size_t)l->mimalloc.heap_size;
                if (h.nheaps % 64 == 0) {
                    uint64_t *d = realloc(h.delayed, (h.nheaps + 64) * sizeof(*d));
                    if (!d) {
                        k = -ENOMEM;
                        goto fail;
                    }
                    h.delayed = d;
                }
                h.delayed[h.nheaps] = get_u64(b, l->mimalloc.heap_thread_delayed_free);
                if ((k = read_heap(&rd, heap_addr, b, (uint32_t)h.nheaps, tags[i])) < 0)
                    goto fail;
                h.nheaps++;
            }
        }
        tstate = next;
    }
    /* The abandoned pool (_mi_abandoned_pool_visit_blocks()): the tagged list, then the visited
     * one, each linked through abandoned_next. */
    uint64_t lists[2];
    RmemIov piov[] = {{interp + l->mimalloc.interp_abandoned, &lists[0], 8},
                      {interp + l->mimalloc.interp_abandoned_visited, &lists[1], 8}};
    if ((k = rmem_readv(r, piov, 2)) < 0) {
        if (k == -EFAULT)
            set_why(why, whylen, "the interpreter's abandoned pool is not mapped");
        goto fail;
    }
    lists[0] &= ~((uint64_t)l->mimalloc.segment_span - 1); /* mi_tagged_segment_ptr() */
    for (int i = 0; i < 2; i++) {
        uint64_t seg = lists[i];
        while (seg) {
            if (++h.abandoned_segments > MI_MAX_SEGMENTS) {
                set_why(why, whylen, "more than %u abandoned segments (a loop?)", MI_MAX_SEGMENTS);
                k = -EIO;
                goto fail;
            }
            if ((k = read_segment(&rd, seg, sb, &seg)) < 0)
                goto fail;
        }
    }
    free(hb);
    free(sb);
    segcache_done(&rd.segs);
    *ret = h;
    return 0;
fail:
    free(hb);
    free(sb);
    segcache_done(&rd.segs);
    *ret = heaps_kept(&h);
    return k == -EFAULT ? -EIO : k; /* said why above: a structure the layout misplaces */
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int mimalloc_delayed_blocks(uint64_t head, MiReadFn read, void *ctx, size_t max, uint64_t **ret,
                            size_t *ret_n)
{
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    while (head) {
        if (n >= max) {
            free(v);
            return -EIO;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                free(v);
                return -ENOMEM;
            }
            v = nv;
        }
        v[n++] = head;
        int k = read(ctx, head, &head, 8);
        if (k < 0) {
            free(v);
            return k;
        }
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_u64);
    for (size_t i = 1; i < n; i++)
        if (v[i] == v[i - 1]) { /* a loop */
            free(v);
            return -EIO;
        }
    *ret = v;
    *ret_n = n;
    return 0;
}

/* Marks the blocks of one free list in `mark`; returns how many, or -EIO when a link leaves the
 * page, lands between blocks, or comes back to a block already marked. */
static int64_t mark_list(const MiPage *p, uint64_t head, MiReadFn read, void *ctx, uint64_t *mark)
{
    int64_t n = 0;
    uint64_t end = p->start + (uint64_t)p->capacity * p->bsize;
    while (head) {
        if (head < p->start || head >= end || (head - p->start) % p->bsize)
            return -EIO;
        uint64_t i = (head - p->start) / p->bsize;
        if (mark[i / 64] & (1ull << (i % 64)))
            return -EIO;
        mark[i / 64] |= 1ull << (i % 64);
        n++;
        int k = read(ctx, head, &head, 8);
        if (k < 0)
            return k;
    }
    return n;
}

int64_t mimalloc_page_live(const MiPage *p, MiReadFn read, void *ctx, const uint64_t *delayed,
                           size_t ndelayed, uint64_t *live)
{
    size_t words = ((size_t)p->capacity + 63) / 64;
    memset(live, 0, words * sizeof(*live)); /* the free blocks first */
    int64_t nfree = mark_list(p, p->free, read, ctx, live);
    int64_t nlocal = nfree < 0 ? nfree : mark_list(p, p->local_free, read, ctx, live);
    int64_t nthread = nlocal < 0 ? nlocal : mark_list(p, p->thread_free, read, ctx, live);
    if (nthread < 0)
        return nthread;
    /* used counts every block not on free or local_free: those in use, those other threads freed
     * (xthread_free) and those waiting on the heap's delayed list. */
    if ((uint64_t)nfree + (uint64_t)nlocal + p->used != p->capacity)
        return -EIO;
    int64_t ndelay = 0;
    uint64_t end = p->start + (uint64_t)p->capacity * p->bsize;
    size_t lo = 0, hi = ndelayed;
    while (lo < hi) { /* the first delayed block at or after the page's start */
        size_t mid = (lo + hi) / 2;
        if (delayed[mid] < p->start)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < ndelayed && delayed[i] < end; i++) {
        uint64_t b = delayed[i];
        if ((b - p->start) % p->bsize)
            return -EIO;
        uint64_t j = (b - p->start) / p->bsize;
        if (live[j / 64] & (1ull << (j % 64)))
            return -EIO;
        live[j / 64] |= 1ull << (j % 64);
        ndelay++;
    }
    int64_t in_use = (int64_t)p->used - nthread - ndelay;
    if (in_use < 0)
        return -EIO;
    /* Now the complement: bit set for a block in use. */
    for (size_t w = 0; w < words; w++)
        live[w] = ~live[w];
    if (p->capacity % 64)
        live[words - 1] &= (1ull << (p->capacity % 64)) - 1;
    return in_use;
}

/* ---- sys.getallocatedblocks() ------------------------------------------------------------ */

/* A page's range and block size, for finding the page of a delayed block. */
typedef struct Span {
    uint64_t start, end, bsize;
} Span;

typedef struct Count {
    const PyLayout *l;
    Rmem *r;
    MiHeaps hdrs; /* only the segment headers' buffers */
    SegCache segs;
    Span *spans;
    size_t nspans, cap;
    uint64_t list_reads; /* free-list links followed, bounded */
    int64_t blocks, bytes;
    char *why;
    size_t whylen;
} Count;

#define MI_MAX_LIST_READS (1u << 20)

static void count_done(Count *c)
{
    segcache_done(&c->segs);
    mimalloc_heaps_done(&c->hdrs);
    free(c->spans);
}

/* The mi_page_t at `page`, out of its segment's header (read once). */
static int count_page(Count *c, uint64_t page, const uint8_t **ret)
{
    return segcache_page(&c->segs, page, ret, c->why, c->whylen);
}

/* The length of a free list of blocks in [start, end): every link followed in the target. */
static int64_t count_list(Count *c, uint64_t head, uint64_t start, uint64_t end, uint64_t bsize,
                          uint32_t capacity)
{
    int64_t n = 0;
    while (head) {
        if (head < start || head >= end || (head - start) % bsize || n >= capacity ||
            ++c->list_reads > MI_MAX_LIST_READS)
            return -EIO;
        n++;
        int k = rmem_read_u64(c->r, head, &head);
        if (k < 0)
            return k == -EFAULT ? -EIO : k;
    }
    return n;
}

/* One page, as _mi_heap_area_init() counts it after collecting the other threads' frees: used
 * less the blocks on xthread_free. tag: the heap's index its tag must be (UINT32_MAX: any heap
 * of the interpreter, for an abandoned segment's slice). */
static int count_one(Count *c, uint64_t page, const uint8_t *pb)
{
    const PyLayout *l = c->l;
    uint64_t seg = page & ~((uint64_t)l->mimalloc.segment_span - 1);
    uint64_t rel = page - seg - l->mimalloc.segment_slices;
    uint32_t slices = get_u32(pb, l->mimalloc.page_slice_count);
    uint32_t xbsize = get_u32(pb, l->mimalloc.page_xblock_size);
    uint32_t capacity = get_u16(pb, l->mimalloc.page_capacity);
    uint32_t used = get_u32(pb, l->mimalloc.page_used);
    uint64_t psize = (uint64_t)slices * l->mimalloc.slice_span;
    if (rel % l->mimalloc.page_size || slices == 0 || xbsize == 0 || used > capacity ||
        psize > MI_MAX_PAGE_SPAN) {
        set_why(c->why, c->whylen, "page %#" PRIx64 " does not hold together", page);
        return -EIO;
    }
    uint64_t start_offset = xbsize >= 8 && xbsize <= 64    ? 3ull * xbsize
                            : xbsize >= 8 && xbsize <= 512 ? xbsize
                                                           : 0;
    if (start_offset >= psize)
        return -EIO;
    uint64_t start = seg + rel / l->mimalloc.page_size * l->mimalloc.slice_span + start_offset;
    uint64_t bsize = xbsize < l->mimalloc.huge_block_size ? xbsize : psize - start_offset;
    uint64_t end = start + (uint64_t)capacity * bsize;
    int64_t tf = count_list(c, get_u64(pb, l->mimalloc.page_xthread_free) & ~(uint64_t)3, start,
                            end, bsize, capacity);
    if (tf < 0 || tf > used) {
        set_why(c->why, c->whylen,
                "the other threads' free list of page %#" PRIx64 " does not hold together", page);
        return tf < 0 && tf != -EIO ? (int)tf : -EIO;
    }
    c->blocks += used - tf;
    c->bytes += (int64_t)((used - tf) * bsize);
    if (c->nspans == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 256;
        Span *s = realloc(c->spans, ncap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        c->spans = s;
        c->cap = ncap;
    }
    c->spans[c->nspans++] = (Span){start, end, bsize};
    return 0;
}

static int cmp_span(const void *a, const void *b)
{
    const Span *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

int mimalloc_allocated(const PyLayout *l, Rmem *r, uint64_t runtime, uint64_t interp,
                       int64_t *ret_blocks, int64_t *ret_bytes, char *why, size_t whylen)
{
    if (!l->mimalloc.present || l->mimalloc.encoded_freelist || l->mimalloc.nheaps > 8 ||
        l->mimalloc.heap_size > 65536 || l->mimalloc.segment_size > (1u << 20)) {
        set_why(why, whylen, "no usable mimalloc layout for this build");
        return -EOPNOTSUPP;
    }
    Count c = {.l = l, .r = r, .segs = {.l = l, .r = r}, .why = why, .whylen = whylen};
    c.segs.h = &c.hdrs;
    why[0] = 0;
    size_t hsize = (size_t)l->mimalloc.nheaps * l->mimalloc.heap_size;
    uint8_t *hb = malloc(hsize);
    uint64_t *delayed = NULL;
    size_t ndelayed = 0;
    uint64_t tstate = 0;
    int k = hb ? rmem_read_u64(r, interp + l->interp.threads_head, &tstate) : -ENOMEM;
    for (size_t n = 0; k >= 0 && tstate; n++) {
        int32_t initialized;
        uint64_t next;
        RmemIov iov[] = {{tstate + l->tstate.next, &next, 8},
                         {tstate + l->mimalloc.tstate_initialized, &initialized, 4},
                         {tstate + l->mimalloc.tstate_heaps, hb, hsize}};
        if (n >= MI_MAX_THREADS) {
            set_why(why, whylen, "more than %u thread states", MI_MAX_THREADS);
            k = -EIO;
        }
        if (k < 0 || (k = rmem_readv(r, iov, ARRAY_SIZE(iov))) < 0)
            break;
        for (uint32_t i = 0; initialized && i < l->mimalloc.nheaps && k >= 0; i++) {
            const uint8_t *h = hb + i * (size_t)l->mimalloc.heap_size;
            uint64_t want = get_u64(h, l->mimalloc.heap_page_count), seen = 0;
            /* Blocks other threads freed into full pages: still counted in their pages' used
             * until the heap's owner takes them (_mi_heap_delayed_free_partial()). */
            uint64_t d = get_u64(h, l->mimalloc.heap_thread_delayed_free);
            while (d && k >= 0) {
                if (++c.list_reads > MI_MAX_LIST_READS) {
                    k = -EIO;
                    break;
                }
                if (ndelayed % 256 == 0) {
                    uint64_t *nd = realloc(delayed, (ndelayed + 256) * sizeof(*nd));
                    if (!nd) {
                        k = -ENOMEM;
                        break;
                    }
                    delayed = nd;
                }
                delayed[ndelayed++] = d;
                k = rmem_read_u64(r, d, &d);
            }
            for (uint32_t q = 0; q < l->mimalloc.nqueues && k >= 0; q++) {
                uint64_t page = get_u64(h, l->mimalloc.heap_pages + q * l->mimalloc.queue_size +
                                               l->mimalloc.queue_first);
                while (page && k >= 0) {
                    const uint8_t *pb;
                    if (++seen > want || seen > MI_MAX_PAGES)
                        k = -EIO;
                    else if ((k = count_page(&c, page, &pb)) >= 0 &&
                             (k = count_one(&c, page, pb)) >= 0)
                        page = get_u64(pb, l->mimalloc.page_next);
                }
            }
            if (k >= 0 && seen != want)
                k = -EIO;
            if (k == -EIO && !why[0])
                set_why(why, whylen, "the page queues of a heap do not match its page count");
        }
        tstate = next;
    }
    /* The abandoned segments: every slice in use, of any of the interpreter's heaps. */
    uint64_t lists[2] = {0, 0};
    RmemIov piov[] = {{interp + l->mimalloc.interp_abandoned, &lists[0], 8},
                      {interp + l->mimalloc.interp_abandoned_visited, &lists[1], 8}};
    if (k >= 0)
        k = rmem_readv(r, piov, 2);
    lists[0] &= ~((uint64_t)l->mimalloc.segment_span - 1);
    size_t nsegments = 0;
    for (int i = 0; i < 2 && k >= 0; i++) {
        uint64_t seg = lists[i];
        while (seg && k >= 0) {
            const uint8_t *sb;
            if (++nsegments > MI_MAX_SEGMENTS || (seg & ((uint64_t)l->mimalloc.segment_span - 1))) {
                k = -EIO;
                break;
            }
            if ((k = count_page(&c, seg + l->mimalloc.segment_slices, &sb)) < 0)
                break;
            sb -= l->mimalloc.segment_slices; /* the header itself */
            uint64_t entries = get_u64(sb, l->mimalloc.segment_slice_entries);
            if (entries == 0 || entries > l->mimalloc.max_slices) {
                k = -EIO;
                break;
            }
            uint64_t s = get_u32(sb, l->mimalloc.segment_slices + l->mimalloc.page_slice_count);
            while (s < entries && k >= 0) {
                const uint8_t *pb = sb + l->mimalloc.segment_slices + s * l->mimalloc.page_size;
                uint32_t count = get_u32(pb, l->mimalloc.page_slice_count);
                uint32_t ptag = (pb[l->mimalloc.page_tag_byte] >> l->mimalloc.page_tag_shift) & 0xf;
                if (count == 0) {
                    k = -EIO;
                    break;
                }
                if (get_u32(pb, l->mimalloc.page_xblock_size) > 0 && ptag < l->mimalloc.nheaps)
                    k = count_one(&c, seg + l->mimalloc.segment_slices + s * l->mimalloc.page_size,
                                  pb);
                s += count;
            }
            if (k >= 0)
                seg = get_u64(sb, l->mimalloc.segment_abandoned_next);
        }
    }
    /* Each delayed block, less its page's block. */
    if (k >= 0) {
        if (c.nspans > 1)
            qsort(c.spans, c.nspans, sizeof(*c.spans), cmp_span);
        for (size_t i = 0; i < ndelayed && k >= 0; i++) {
            size_t lo = 0, hi = c.nspans;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (c.spans[mid].end <= delayed[i])
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo == c.nspans || delayed[i] < c.spans[lo].start) {
                set_why(why, whylen, "a delayed-free block is on no page of its heap");
                k = -EIO;
                break;
            }
            c.blocks--;
            c.bytes -= (int64_t)c.spans[lo].bsize;
        }
    }
    int64_t leaks = 0;
    if (k >= 0 && l->runtime.obmalloc_interpreter_leaks != PYL_NONE)
        k = rmem_read(r, runtime + l->runtime.obmalloc_interpreter_leaks, &leaks, 8);
    if (k >= 0 && (c.blocks < 0 || leaks < 0)) {
        set_why(why, whylen, "more blocks freed than in use");
        k = -EIO;
    }
    if (k >= 0) {
        /* get_num_global_allocated_blocks(): the interpreter's blocks and those that
         * interpreters which have ended left behind. */
        *ret_blocks = c.blocks + leaks;
        if (ret_bytes)
            *ret_bytes = c.bytes;
    } else if (k == -EFAULT) {
        k = -EIO;
    }
    if (k == -EIO && !why[0])
        set_why(why, whylen, "the heaps do not hold together");
    free(hb);
    free(delayed);
    count_done(&c);
    return k;
}
