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

#include "../fuzz/fakemi.h"
#include "python/mimalloc.h"

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

/* The fake's heaps, read: its two pages. */
static void build_and_read(MiFake *f, MiHeaps *h)
{
    char why[200] = "";
    assert_int_equal(mifake_build(f), 0);
    assert_int_equal(read_pages(f, h, why, sizeof(why)), 0);
    assert_int_equal(h->npages, 2);
}

static void pages_and_live_blocks(void **state)
{
    NEED_TABLE();
    MiFake f;
    MiHeaps h;
    char why[200] = "";
    build_and_read(&f, &h);
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
    /* An empty list: nothing sorted (fuzz_mimalloc found a qsort of NULL there, undefined
     * behaviour UBSan stops at). */
    assert_int_equal(mimalloc_delayed_blocks(0, fake_read, f.r, 100, &delayed, &nd), 0);
    assert_int_equal(nd, 0);
    free(delayed);
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

/* A second read into the first one's MiHeaps (what a census does once the target is stopped)
 * finds the same pages in the same buffers; one that is refused holds no page but keeps them. */
static void reread_reuses_buffers(void **state)
{
    NEED_TABLE();
    MiFake f;
    MiHeaps h;
    char why[200] = "";
    build_and_read(&f, &h);
    MiPage first[2];
    memcpy(first, h.pages, sizeof(first));
    const MiPage *pages = h.pages;
    uint8_t **hdrs = h.seg_hdrs;
    size_t nhdrs = h.nseg_hdrs;
    assert_true(nhdrs >= 1);
    assert_int_equal(mimalloc_reread_pages(&f.l, f.r, f.maps, RT, IS, &h, why, sizeof(why)), 0);
    assert_ptr_equal(h.pages, pages);
    assert_ptr_equal(h.seg_hdrs, hdrs);
    assert_int_equal(h.nseg_hdrs, nhdrs);
    assert_int_equal(h.npages, 2);
    assert_int_equal(h.nheaps, 2);
    assert_int_equal(h.abandoned_segments, 1);
    assert_int_equal(h.block_bytes, 10 * 48 + 3 * 80);
    assert_memory_equal(h.pages, first, sizeof(first));

    /* The heap's page count no longer matches its queues. */
    uint8_t *gc = f.ts + f.l.mimalloc.tstate_heaps + f.l.mimalloc.heap_gc * f.l.mimalloc.heap_size;
    put64(gc, f.l.mimalloc.heap_page_count, 2);
    assert_int_equal(mimalloc_reread_pages(&f.l, f.r, f.maps, RT, IS, &h, why, sizeof(why)), -EIO);
    assert_int_equal(h.npages, 0);
    assert_int_equal(h.nheaps, 0);
    assert_int_equal(h.block_bytes, 0);
    assert_ptr_equal(h.pages, pages);
    mimalloc_heaps_done(&h);
    assert_null(h.pages);
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
        assert_int_equal(mifake_build(&f), 0);                                                     \
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
    assert_int_equal(mifake_build(&f), 0);
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
    assert_int_equal(mifake_build(&f), 0);
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
    assert_int_equal(mifake_build(&f), 0);
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
        cmocka_unit_test(reread_reuses_buffers),
        cmocka_unit_test(hostile_heaps_are_refused),
        cmocka_unit_test(hostile_free_lists_are_refused),
        cmocka_unit_test(allocated_blocks),
        cmocka_unit_test(encoded_free_lists_are_not_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
