/* mimalloc against a fake free-threaded interpreter laid out from the 3.13t table: one thread
 * state whose GC heap queues one page with blocks on all three free lists and on the heap's
 * delayed list, and one abandoned segment with a _GC_PRE page among pages of other tags. Then
 * each thing a hostile or torn target could get wrong, one at a time: refused with -EIO, never
 * a count. (The walk over real heaps is tested against 3.13t itself: tests/census.) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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

static const PyLayout *ft_table(void)
{
    for (size_t i = 0; i < pylayout_ntables; i++)
        if (pylayout_tables[i].mimalloc.present)
            return &pylayout_tables[i];
    return NULL;
}

static void put(uint8_t *p, uint64_t off, const void *v, size_t n)
{
    memcpy(p + off, v, n);
}
static void put64(uint8_t *p, uint64_t off, uint64_t v)
{
    put(p, off, &v, 8);
}
static void put32(uint8_t *p, uint64_t off, uint32_t v)
{
    put(p, off, &v, 4);
}
static void put16(uint8_t *p, uint64_t off, uint16_t v)
{
    put(p, off, &v, 2);
}

/* A page's mi_page_t inside its segment's header buffer. */
static uint8_t *page_at(MiFake *f, uint8_t *seg, unsigned slice)
{
    return seg + f->l.mimalloc.segment_slices + slice * f->l.mimalloc.page_size;
}

static void set_page(MiFake *f, uint8_t *pb, uint32_t slices, uint32_t tag, uint32_t bsize,
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

static uint64_t block1(MiFake *f, unsigned i)
{
    return f->start1 + i * 48ull;
}

/* Links block `from` of page 1 to `to` (0: the end of the list). */
static void link1(MiFake *f, unsigned from, uint64_t to)
{
    put64(f->blocks1, block1(f, from) - SEG1 - f->l.mimalloc.slice_span, to);
}

static void mifake_build(MiFake *f)
{
    memset(f, 0, sizeof(*f));
    const PyLayout *t = ft_table();
    assert_non_null(t);
    if (!t)
        return;
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
    assert_non_null(f->blocks2);

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

    assert_int_equal(rmem_fake_new(&f->r), 0);
    rmem_fake_add(f->r, RT, f->rt, l->runtime.size);
    rmem_fake_add(f->r, IS, f->is, l->interp.size);
    rmem_fake_add(f->r, TS, f->ts, l->tstate.impl_size);
    rmem_fake_add(f->r, SEG1, f->seg1, l->mimalloc.segment_size);
    rmem_fake_add(f->r, SEG2, f->seg2, l->mimalloc.segment_size);
    rmem_fake_add(f->r, SEG1 + span, f->blocks1, span);
    rmem_fake_add(f->r, SEG2 + span, f->blocks2, span);
}

static void mifake_maps(MiFake *f)
{
    f->maps = maps_free(f->maps);
    assert_int_equal(rmem_maps(f->r, &f->maps), 0);
}

static void mifake_free(MiFake *f)
{
    free(f->rt), free(f->is), free(f->ts), free(f->seg1), free(f->seg2), free(f->blocks1),
        free(f->blocks2);
    maps_free(f->maps);
    rmem_free(f->r);
}

static int fake_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    return rmem_read(ctx, addr, buf, len);
}

static int read_pages(MiFake *f, MiHeaps *h, char *why, size_t whylen)
{
    mifake_maps(f);
    return mimalloc_read_pages(&f->l, f->r, f->maps, RT, IS, h, why, whylen);
}

#define NEED_TABLE()                                                                               \
    do {                                                                                           \
        if (!ft_table()) {                                                                         \
            skip(); /* layouts.c generated without upstream-pythons.sh's 3.13t */                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static void pages_and_live_blocks(void **state)
{
    NEED_TABLE();
    MiFake f;
    mifake_build(&f);
    MiHeaps h;
    char why[200] = "";
    assert_int_equal(read_pages(&f, &h, why, sizeof(why)), 0);
    assert_int_equal(h.npages, 2);
    assert_int_equal(h.nheaps, 2); /* GC and GC_PRE of the one thread */
    assert_int_equal(h.abandoned_segments, 1);
    const MiPage *p = &h.pages[0];
    assert_int_equal(p->addr, f.page1);
    assert_int_equal(p->start, f.start1);
    assert_int_equal(p->bsize, 48);
    assert_int_equal(p->capacity, 10);
    assert_int_equal(p->used, 6);
    assert_int_equal(p->offset, 0);
    assert_int_equal(p->heap, 0);
    assert_int_equal(p->thread_free, block1(&f, 2)); /* the flag bits cleared */
    const MiPage *q = &h.pages[1];
    assert_int_equal(q->addr, f.page2);
    assert_int_equal(q->start, f.start2);
    assert_int_equal(q->bsize, 80);
    assert_int_equal(q->offset, f.l.mimalloc.pre_offset);
    assert_int_equal(q->heap, UINT32_MAX);
    assert_int_equal(h.block_bytes, 10 * 48 + 3 * 80);

    uint64_t *delayed;
    size_t nd;
    assert_int_equal(mimalloc_delayed_blocks(h.delayed[0], fake_read, f.r, 100, &delayed, &nd), 0);
    assert_int_equal(nd, 1);
    uint64_t live[2];
    assert_int_equal(mimalloc_page_live(p, fake_read, f.r, delayed, nd, live), 4);
    assert_int_equal(live[0], (1u << 0) | (1u << 6) | (1u << 8) | (1u << 9));
    assert_int_equal(mimalloc_page_live(q, fake_read, f.r, NULL, 0, live), 3);
    assert_int_equal(live[0], 7);
    free(delayed);
    mimalloc_heaps_done(&h);

    /* With the debug allocator's hooks on, every object is two words further in. */
    put32(f.rt, f.l.mimalloc.runtime_debug_enabled, 1);
    assert_int_equal(read_pages(&f, &h, why, sizeof(why)), 0);
    assert_int_equal(h.pages[0].offset, f.l.mimalloc.debug_offset);
    assert_int_equal(h.pages[1].offset, f.l.mimalloc.debug_offset + f.l.mimalloc.pre_offset);
    mimalloc_heaps_done(&h);
    mifake_free(&f);
}

/* A heap, page or segment that does not hold together: -EIO and the reason, nothing kept. */
static void expect_refused(MiFake *f, const char *words)
{
    MiHeaps h = {0};
    char why[200] = "";
    assert_int_equal(read_pages(f, &h, why, sizeof(why)), -EIO);
    assert_null(h.pages);
    if (!strstr(why, words))
        fail_msg("reason \"%s\" lacks \"%s\"", why, words);
}

static void hostile_heaps_are_refused(void **state)
{
    NEED_TABLE();
    MiFake f;
    const PyLayout *l;
    uint8_t *gc, *p1;
#define FRESH()                                                                                    \
    do {                                                                                           \
        mifake_build(&f);                                                                          \
        l = &f.l;                                                                                  \
        gc = f.ts + l->mimalloc.tstate_heaps + l->mimalloc.heap_gc * l->mimalloc.heap_size;        \
        p1 = page_at(&f, f.seg1, 1);                                                               \
    } while (0)

    FRESH(); /* a page count the queues do not have */
    put64(gc, l->mimalloc.heap_page_count, 2);
    expect_refused(&f, "page count");
    mifake_free(&f);

    FRESH(); /* a page queued in two queues: more pages than counted */
    put64(gc, l->mimalloc.heap_pages + 6 * l->mimalloc.queue_size, f.page1);
    expect_refused(&f, "page count");
    mifake_free(&f);

    FRESH(); /* a page that is not a slice of its segment */
    put64(gc, l->mimalloc.heap_pages + 5 * l->mimalloc.queue_size, f.page1 + 8);
    expect_refused(&f, "not a slice");
    mifake_free(&f);

    FRESH(); /* another heap's page (xheap), or another tag */
    put64(p1, l->mimalloc.page_xheap, f.heap_gc + 8);
    expect_refused(&f, "does not hold together");
    mifake_free(&f);
    FRESH();
    p1[l->mimalloc.page_tag_byte] =
        (uint8_t)(l->mimalloc.heap_gc_pre << l->mimalloc.page_tag_shift);
    expect_refused(&f, "does not hold together");
    mifake_free(&f);

    FRESH(); /* more in use than carved, and more carved than reserved */
    put32(p1, l->mimalloc.page_used, 11);
    expect_refused(&f, "does not hold together");
    mifake_free(&f);
    FRESH();
    put16(p1, l->mimalloc.page_capacity, 30);
    expect_refused(&f, "does not hold together");
    mifake_free(&f);

    FRESH(); /* blocks that do not fit the page */
    put16(p1, l->mimalloc.page_capacity, 2000);
    put16(p1, l->mimalloc.page_reserved, 2000);
    expect_refused(&f, "do not fit");
    mifake_free(&f);

    FRESH(); /* an abandoned segment off its alignment, or claiming more slices than it has */
    put64(f.is, l->mimalloc.interp_abandoned_visited, SEG2 + 4096);
    put64(f.is, l->mimalloc.interp_abandoned, 0);
    expect_refused(&f, "not a mapped segment");
    mifake_free(&f);
    FRESH();
    put64(f.seg2, l->mimalloc.segment_slice_entries, l->mimalloc.max_slices + 1);
    expect_refused(&f, "slices");
    mifake_free(&f);
    FRESH(); /* a slice spanning nothing would loop for ever */
    put32(page_at(&f, f.seg2, 2), l->mimalloc.page_slice_count, 0);
    expect_refused(&f, "spans nothing");
    mifake_free(&f);

    FRESH(); /* a thread state whose heaps are not mapped */
    put64(f.is, l->interp.threads_head, TS + l->tstate.impl_size);
    expect_refused(&f, "not mapped");
    mifake_free(&f);
#undef FRESH
}

/* Free lists that loop, leave the page, land between blocks or disagree with the counts. */
static void hostile_free_lists_are_refused(void **state)
{
    NEED_TABLE();
    MiFake f;
    mifake_build(&f);
    MiHeaps h;
    char why[200];
    assert_int_equal(read_pages(&f, &h, why, sizeof(why)), 0);
    MiPage p = h.pages[0];
    uint64_t live[2];
    link1(&f, 3, block1(&f, 1)); /* 1 -> 3 -> 1 */
    assert_int_equal(mimalloc_page_live(&p, fake_read, f.r, NULL, 0, live), -EIO);
    link1(&f, 3, SEG1 + 8 * f.l.mimalloc.slice_span); /* out of the page */
    assert_int_equal(mimalloc_page_live(&p, fake_read, f.r, NULL, 0, live), -EIO);
    link1(&f, 3, block1(&f, 4) + 8); /* between blocks */
    assert_int_equal(mimalloc_page_live(&p, fake_read, f.r, NULL, 0, live), -EIO);
    link1(&f, 3, 0);
    p.used = 5; /* free 2 + local 2 + used must be the capacity */
    assert_int_equal(mimalloc_page_live(&p, fake_read, f.r, NULL, 0, live), -EIO);
    p.used = 6;
    uint64_t twice[] = {block1(&f, 5)}; /* delayed, and on local_free too */
    assert_int_equal(mimalloc_page_live(&p, fake_read, f.r, twice, 1, live), -EIO);
    assert_int_equal(mimalloc_page_live(&p, fake_read, f.r, NULL, 0, live), 5);

    /* A delayed list that loops. */
    link1(&f, 4, block1(&f, 4));
    uint64_t *d = NULL;
    size_t nd = 0;
    assert_int_equal(mimalloc_delayed_blocks(block1(&f, 4), fake_read, f.r, 100, &d, &nd), -EIO);
    assert_null(d);
    mimalloc_heaps_done(&h);
    mifake_free(&f);
}

/* sys.getallocatedblocks(): page 1's 6 used, less its other threads' free (1) and its heap's
 * delayed block (1); the abandoned segment's two pages of 3 (the object heap's counts too); and
 * the runtime's interpreter_leaks. A queue that loops, or a delayed block on no page, is -EIO. */
static void allocated_blocks(void **state)
{
    NEED_TABLE();
    MiFake f;
    mifake_build(&f);
    const PyLayout *l = &f.l;
    put64(f.rt, l->runtime.obmalloc_interpreter_leaks, 5);
    int64_t blocks = 0, bytes = 0;
    char why[200];
    assert_int_equal(mimalloc_allocated(l, f.r, RT, IS, &blocks, &bytes, why, sizeof(why)), 0);
    assert_int_equal(blocks, 4 + 3 + 3 + 5);
    assert_int_equal(bytes, 4 * 48 + 6 * 80);

    uint8_t *gc = f.ts + l->mimalloc.tstate_heaps + l->mimalloc.heap_gc * l->mimalloc.heap_size;
    put64(gc, l->mimalloc.heap_thread_delayed_free, SEG1 + 8 * l->mimalloc.slice_span);
    assert_int_equal(mimalloc_allocated(l, f.r, RT, IS, &blocks, NULL, why, sizeof(why)), -EIO);
    put64(gc, l->mimalloc.heap_thread_delayed_free, 0);
    put64(page_at(&f, f.seg1, 1), l->mimalloc.page_next, f.page1); /* a queue that loops */
    assert_int_equal(mimalloc_allocated(l, f.r, RT, IS, &blocks, NULL, why, sizeof(why)), -EIO);
    assert_non_null(strstr(why, "page count"));
    mifake_free(&f);
}

/* Builds whose free lists are encoded (MI_ENCODE_FREELIST: debug builds) are not read. */
static void encoded_free_lists_are_not_read(void **state)
{
    NEED_TABLE();
    MiFake f;
    mifake_build(&f);
    f.l.mimalloc.encoded_freelist = true;
    MiHeaps h = {0};
    char why[200] = "";
    assert_int_equal(read_pages(&f, &h, why, sizeof(why)), -EOPNOTSUPP);
    assert_non_null(strstr(why, "MI_ENCODE_FREELIST"));
    f.l.mimalloc.encoded_freelist = false;
    f.l.mimalloc.present = false;
    assert_int_equal(read_pages(&f, &h, why, sizeof(why)), -EOPNOTSUPP);
    mifake_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pages_and_live_blocks),
        cmocka_unit_test(hostile_heaps_are_refused),
        cmocka_unit_test(hostile_free_lists_are_refused),
        cmocka_unit_test(allocated_blocks),
        cmocka_unit_test(encoded_free_lists_are_not_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
