/* A fake free-threaded interpreter laid out from the 3.13t table (the first with a mimalloc
 * layout), for the unit tests of python/mimalloc.c and its fuzzer: one thread state whose GC
 * heap queues one page with blocks on all three free lists and on the heap's delayed list, and
 * one abandoned segment with a _GC_PRE page among pages of other tags. Each file includes it
 * once. */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "python/mimalloc.h"

enum {
    RT = 0x10000000,
    IS = 0x20000000,
    TS = 0x30000000,
};
#define SEG1 0x4000000000ull /* both aligned to the 32 MiB of a segment */
#define SEG2 0x4002000000ull

typedef struct MiFake {
    PyLayout l;
    uint8_t *rt, *is, *ts, *seg1, *seg2, *blocks1, *blocks2;
    uint64_t page1, page2, start1, start2, heap_gc;
    Rmem *r;
    Maps *maps;
} MiFake;

static inline const PyLayout *ft_table(void)
{
    for (size_t i = 0; i < pylayout_ntables; i++)
        if (pylayout_tables[i].mimalloc.present)
            return &pylayout_tables[i];
    return NULL;
}

static inline void put(uint8_t *p, uint64_t off, const void *v, size_t n)
{
    memcpy(p + off, v, n);
}
static inline void put64(uint8_t *p, uint64_t off, uint64_t v)
{
    put(p, off, &v, 8);
}
static inline void put32(uint8_t *p, uint64_t off, uint32_t v)
{
    put(p, off, &v, 4);
}
static inline void put16(uint8_t *p, uint64_t off, uint16_t v)
{
    put(p, off, &v, 2);
}

/* A page's mi_page_t inside its segment's header buffer. */
static inline uint8_t *page_at(MiFake *f, uint8_t *seg, unsigned slice)
{
    return seg + f->l.mimalloc.segment_slices + slice * f->l.mimalloc.page_size;
}

static inline void set_page(MiFake *f, uint8_t *pb, uint32_t slices, uint32_t tag, uint32_t bsize,
                            uint16_t capacity, uint16_t reserved, uint32_t used)
{
    const PyLayout *l = &f->l;
    put32(pb, l->mimalloc.page_slice_count, slices);
    put32(pb, l->mimalloc.page_slice_offset, 0);
    pb[l->mimalloc.page_tag_byte] = (uint8_t)(tag << l->mimalloc.page_tag_shift);
    put32(pb, l->mimalloc.page_xblock_size, bsize);
    put16(pb, l->mimalloc.page_capacity, capacity);
    put16(pb, l->mimalloc.page_reserved, reserved);
    put32(pb, l->mimalloc.page_used, used);
}

static inline uint64_t block1(MiFake *f, unsigned i)
{
    return f->start1 + i * 48ull;
}

/* Links block `from` of page 1 to `to` (0: the end of the list). */
static inline void link1(MiFake *f, unsigned from, uint64_t to)
{
    put64(f->blocks1, block1(f, from) - SEG1 - f->l.mimalloc.slice_span, to);
}

static inline int mifake_build(MiFake *f)
{
    memset(f, 0, sizeof(*f));
    const PyLayout *t = ft_table();
    if (!t)
        return -ENOENT;
    f->l = *t;
    const PyLayout *l = &f->l;
    uint32_t span = l->mimalloc.slice_span;
    f->rt = calloc(1, l->runtime.size);
    f->is = calloc(1, l->interp.size);
    f->ts = calloc(1, l->tstate.impl_size);
    f->seg1 = calloc(1, l->mimalloc.segment_size);
    f->seg2 = calloc(1, l->mimalloc.segment_size);
    f->blocks1 = calloc(1, span);
    f->blocks2 = calloc(1, span);
    if (!f->rt || !f->is || !f->ts || !f->seg1 || !f->seg2 || !f->blocks1 || !f->blocks2)
        return -ENOMEM;

    put64(f->is, l->interp.threads_head, TS);
    put32(f->ts, l->mimalloc.tstate_initialized, 1);
    uint64_t heaps = TS + l->mimalloc.tstate_heaps;
    f->heap_gc = heaps + l->mimalloc.heap_gc * (uint64_t)l->mimalloc.heap_size;
    uint8_t *gc = f->ts + l->mimalloc.tstate_heaps + l->mimalloc.heap_gc * l->mimalloc.heap_size;

    /* Segment 1, slice 1: a GC page of 10 blocks of 48 bytes (20 reserved), 6 used. Small
     * blocks start 3 blocks into the page (_mi_segment_page_start_from_slice). */
    f->page1 = SEG1 + l->mimalloc.segment_slices + 1 * l->mimalloc.page_size;
    f->start1 = SEG1 + span + 3 * 48;
    uint8_t *p1 = page_at(f, f->seg1, 1);
    set_page(f, p1, 1, l->mimalloc.heap_gc, 48, 10, 20, 6);
    put64(p1, l->mimalloc.page_xheap, f->heap_gc);
    /* free: 1 -> 3; local_free: 5 -> 7; xthread_free: 2 (with a flag in its low bits); the
     * heap's delayed list: 4. In use: 0, 6, 8, 9. */
    put64(p1, l->mimalloc.page_free, block1(f, 1));
    link1(f, 1, block1(f, 3));
    put64(p1, l->mimalloc.page_local_free, block1(f, 5));
    link1(f, 5, block1(f, 7));
    put64(p1, l->mimalloc.page_xthread_free, block1(f, 2) | 1);
    put64(gc, l->mimalloc.heap_pages + 5 * l->mimalloc.queue_size + l->mimalloc.queue_first,
          f->page1);
    put64(gc, l->mimalloc.heap_page_count, 1);
    put64(gc, l->mimalloc.heap_thread_delayed_free, block1(f, 4));

    /* Segment 2, abandoned: slice 0 its header, 1 a _GC_PRE page of 3 blocks of 80 in use, 2 a
     * page of the object heap (not walked), 3 a free span. */
    put64(f->seg2, l->mimalloc.segment_slice_entries, 4);
    set_page(f, page_at(f, f->seg2, 0), 1, 0, 1, 1, 1, 1);
    set_page(f, page_at(f, f->seg2, 1), 1, l->mimalloc.heap_gc_pre, 80, 3, 3, 3);
    set_page(f, page_at(f, f->seg2, 2), 1, 1, 80, 3, 3, 3);
    set_page(f, page_at(f, f->seg2, 3), 1, 0, 0, 0, 0, 0);
    f->page2 = SEG2 + l->mimalloc.segment_slices + 1 * l->mimalloc.page_size;
    f->start2 = SEG2 + span + 80;
    /* The tagged list's pointer carries an ABA tag in the low bits (mi_tagged_segment). */
    put64(f->is, l->mimalloc.interp_abandoned, SEG2 | 5);

    if (rmem_fake_new(&f->r) < 0)
        return -ENOMEM;
    rmem_fake_add(f->r, RT, f->rt, l->runtime.size);
    rmem_fake_add(f->r, IS, f->is, l->interp.size);
    rmem_fake_add(f->r, TS, f->ts, l->tstate.impl_size);
    rmem_fake_add(f->r, SEG1, f->seg1, l->mimalloc.segment_size);
    rmem_fake_add(f->r, SEG2, f->seg2, l->mimalloc.segment_size);
    rmem_fake_add(f->r, SEG1 + span, f->blocks1, span);
    rmem_fake_add(f->r, SEG2 + span, f->blocks2, span);
    return 0;
}

static inline void mifake_maps(MiFake *f)
{
    f->maps = maps_free(f->maps);
    (void)rmem_maps(f->r, &f->maps);
}

static inline void mifake_free(MiFake *f)
{
    free(f->rt), free(f->is), free(f->ts), free(f->seg1), free(f->seg2), free(f->blocks1),
        free(f->blocks2);
    maps_free(f->maps);
    rmem_free(f->r);
}
