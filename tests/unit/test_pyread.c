/* pyread against a fake interpreter laid out in local buffers from a layout table.
 *
 * A fake built from the same table cannot catch a wrong table (the integration matrix against
 * real interpreters does that); these tests pin the reader's own logic: the values it picks,
 * the walks it bounds and the inconsistencies it refuses. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fakepy.h"
#include "python/pyread.h"

static void reads_everything(const char *name)
{
    Fake f;
    fake_build(&f, name);
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, true, &s), 0);
    assert_true(s.enabled);
    assert_false(s.collecting);
    assert_int_equal(s.ngenerations, 3);
    int thr[3] = {777, 55, 33}, cnt[3] = {5, 2, 1};
    for (int g = 0; g < 3; g++) {
        assert_int_equal(s.gen[g].threshold, thr[g]);
        assert_int_equal(s.gen[g].count, cnt[g]);
        assert_int_equal(s.gen[g].collections, 100 + g);
        assert_int_equal(s.gen[g].collected, 1000 + g);
        assert_int_equal(s.gen[g].uncollectable, g);
        assert_int_equal(s.gen[g].candidates, -1);
        assert_true(isnan(s.gen[g].duration));
    }
    assert_int_equal(s.threads, 3);
    assert_int_equal(s.garbage, 2);
    assert_int_equal(s.frozen, 4);
    assert_true(s.pymalloc_ok);
    assert_int_equal(s.arenas, 2);
    assert_int_equal(s.arenas_highwater, 3);
    assert_int_equal(s.arena_bytes, 2 * (int64_t)f.l->obmalloc.arena_size);
    assert_int_equal(s.allocated_blocks, 100 + 10 + 20 + 30 + 7);
    /* pymalloc does not record the sizes of the blocks it hands to malloc: no bytes. */
    assert_int_equal(s.allocated_bytes, -1);
    assert_string_equal(s.blocks_reason, "");
    fake_free(&f);
}

static void reads_312(void **state)
{
    reads_everything("3.12");
}

static void reads_313(void **state)
{
    reads_everything("3.13");
}

/* The sampling path stays batched: a handful of reads, not one per field. */
static void batched(void **state)
{
    Fake f;
    fake_build(&f, "3.13");
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, true, &s), 0);
    uint64_t before = rmem_calls(f.r);
    /* Frozen list unchanged and fresh: not walked again. Reads: the batch, 3 threads (the
     * first shares a call with gc.garbage), the arena table, the pool headers. */
    assert_int_equal(pyreader_sample(pr, f.r, 1.0, false, &s), 0);
    assert_int_equal(rmem_calls(f.r) - before, 1 + 3 + 2);
    assert_int_equal(s.frozen, 4);
    fake_free(&f);
}

static void cyclic_thread_list_is_bounded(void **state)
{
    Fake f;
    fake_build(&f, "3.13");
    /* The last thread points back at the first: a corrupt (or hostile) list. */
    put64(f.ts + 2 * 0x1000, f.l->tstate.next, TS);
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, true, &s), -EIO);
    fake_free(&f);
}

/* A broken link in the frozen list makes frozen null with the reason, not the whole sample: the
 * walk is retried a few times (a frozen object freed under a walk spread over samples breaks a
 * link too), then left alone until the list changes or the count is old. */
static void broken_frozen_link_is_refused(void **state)
{
    Fake f;
    fake_build(&f, "3.13");
    put64(f.frozen + 2 * 64, 8, FROZEN); /* n2's prev should be n1 */
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pyreader_sample(pr, f.r, i, false, &s), 0);
        assert_int_equal(s.frozen, -1);
        assert_true(isnan(s.frozen_age));
        assert_int_equal(s.threads, 3); /* the rest of the sample is served */
    }
    assert_non_null(strstr(s.frozen_reason, "does not hold together"));
    /* Given up: the next sample does not walk (the batch, 3 threads, the arenas only). */
    uint64_t before = rmem_calls(f.r);
    assert_int_equal(pyreader_sample(pr, f.r, 3.0, false, &s), 0);
    assert_int_equal(rmem_calls(f.r) - before, 1 + 3 + 2);
    assert_int_equal(s.frozen, -1);
    /* Repaired, the list is counted again once the old verdict has aged out. */
    put64(f.frozen + 2 * 64, 8, FROZEN + 64);
    assert_int_equal(pyreader_sample(pr, f.r, 3.0 + PYREAD_FROZEN_MAX_AGE + 1, false, &s), 0);
    assert_int_equal(s.frozen, 4);
    assert_string_equal(s.frozen_reason, "");
    fake_free(&f);
}

/* A permanent list of n nodes at `base` (aligned to PYREAD_FROZEN_WINDOW), hung on the fake's
 * GC state. Scattered, each node lies in another window than the one before (node i in window
 * i % 64), so every link costs the walk a read; otherwise the nodes are 16 bytes apart, in
 * order, as gc.freeze() of a freshly allocated heap leaves them. *ret_len is the buffer's size;
 * the caller frees it. */
enum { SCATTER = 64 };

static RAddr chain_addr(RAddr base, size_t i, bool scattered)
{
    if (!scattered)
        return base + i * 16;
    return base + (i % SCATTER) * PYREAD_FROZEN_WINDOW + (i / SCATTER) * 16;
}

static uint8_t *frozen_chain(Fake *f, RAddr base, size_t n, bool scattered)
{
    const PyLayout *l = f->l;
    RAddr head = IS + l->interp.gc + l->gc.permanent_generation;
    /* Whole windows, as real memory comes in whole pages. */
    size_t len = scattered
                     ? SCATTER * PYREAD_FROZEN_WINDOW
                     : (n * 16 + PYREAD_FROZEN_WINDOW - 1) & ~(size_t)(PYREAD_FROZEN_WINDOW - 1);
    assert_true(!scattered || n <= SCATTER * PYREAD_FROZEN_WINDOW / 16);
    uint8_t *buf = calloc(1, len);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        uint8_t *node = buf + (chain_addr(base, i, scattered) - base);
        put64(node, 0, i + 1 < n ? chain_addr(base, i + 1, scattered) : head);
        put64(node, 8, i > 0 ? chain_addr(base, i - 1, scattered) : head);
    }
    put64(gcstate(f), l->gc.permanent_generation, base);
    put64(gcstate(f), l->gc.permanent_generation + 8, chain_addr(base, n - 1, scattered));
    rmem_fake_add(f->r, base, buf, len);
    return buf;
}

/* A long frozen list whose every link is a read (a forged one, at worst) costs each sample at
 * most PYREAD_FROZEN_READS reads: frozen is null with the reason until the walk, resumed sample
 * after sample, is through, then exact. */
static void long_frozen_list_is_walked_in_steps(void **state)
{
    Fake f;
    fake_build(&f, "3.13");
    const size_t n = 10 * PYREAD_FROZEN_READS + 23;
    uint8_t *chain = frozen_chain(&f, 0x80000000, n, true);
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    int samples = 0;
    do {
        uint64_t before = rmem_calls(f.r);
        assert_int_equal(pyreader_sample(pr, f.r, samples, false, &s), 0);
        /* The batch, 3 threads, the arenas, the walk's reads; the first sample also finds the
         * interpreter and its allocator state (2 reads). */
        assert_true(rmem_calls(f.r) - before <=
                    1 + 3 + 2 + PYREAD_FROZEN_READS + (samples == 0 ? 2 : 0));
        assert_int_equal(s.threads, 3);
        if (s.frozen < 0)
            assert_non_null(strstr(s.frozen_reason, "counting the permanent generation"));
        samples++;
    } while (s.frozen < 0 && samples < 100);
    assert_int_equal(s.frozen, n);
    assert_int_equal(samples, n / PYREAD_FROZEN_READS + 1);
    assert_true(s.frozen_age == 0.0);
    /* Counted and unchanged: later samples serve it with its age and do not walk. */
    uint64_t before = rmem_calls(f.r);
    assert_int_equal(pyreader_sample(pr, f.r, samples + 5.0, false, &s), 0);
    assert_int_equal(rmem_calls(f.r) - before, 1 + 3 + 2);
    assert_int_equal(s.frozen, n);
    assert_true(s.frozen_age == 6.0);
    rmem_free(f.r);
    f.r = NULL;
    free(chain);
    fake_free(&f);
}

/* Nodes in the order they were allocated: one read serves a window's worth of links, so
 * 100,000 of them are counted in one sample with a read per 16 KiB. */
static void frozen_list_in_memory_order_is_read_by_windows(void **state)
{
    Fake f;
    fake_build(&f, "3.12");
    const size_t n = 100000;
    uint8_t *chain = frozen_chain(&f, 0x80000000, n, false);
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    uint64_t before = rmem_calls(f.r);
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, false, &s), 0);
    assert_int_equal(s.frozen, n);
    size_t windows = (n * 16 + PYREAD_FROZEN_WINDOW - 1) / PYREAD_FROZEN_WINDOW;
    /* The batch, 3 threads, the arenas, finding the interpreter (and its allocator state when a
     * pointer leads there), a read per window. */
    size_t find = f.l->obmalloc.kind == PYOBM_POINTER ? 2 : 1;
    assert_int_equal(rmem_calls(f.r) - before, 1 + 3 + 2 + find + windows);
    rmem_free(f.r);
    f.r = NULL;
    free(chain);
    fake_free(&f);
}

/* A node freed ahead of the walk's frontier between two samples: the walk notices at the broken
 * back link, starts over, and counts the list as it is now. */
static void frozen_list_changed_under_the_walk(void **state)
{
    Fake f;
    fake_build(&f, "3.13");
    const size_t n = 3 * PYREAD_FROZEN_READS;
    RAddr base = 0x80000000;
    uint8_t *chain = frozen_chain(&f, base, n, true);
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, false, &s), 0);
    assert_int_equal(s.frozen, -1);
    /* Unlink the node the walk stands at: its neighbours now point at each other, as
     * gc_list_remove leaves them; the ends do not move. */
    size_t x = PYREAD_FROZEN_READS;
    put64(chain + (chain_addr(base, x - 1, true) - base), 0, chain_addr(base, x + 1, true));
    put64(chain + (chain_addr(base, x + 1, true) - base), 8, chain_addr(base, x - 1, true));
    put64(chain + (chain_addr(base, x, true) - base), 8, 0xdead0);
    for (int i = 1; i < 10 && s.frozen < 0; i++)
        assert_int_equal(pyreader_sample(pr, f.r, i, false, &s), 0);
    assert_int_equal(s.frozen, n - 1);
    rmem_free(f.r);
    f.r = NULL;
    free(chain);
    fake_free(&f);
}

/* pymemd --once has no next sample: a forced sample walks to the PYREAD_FROZEN_FORCED_* bounds. */
static void forced_sample_counts_at_once(void **state)
{
    Fake f;
    fake_build(&f, "3.12");
    const size_t n = 20 * PYREAD_FROZEN_READS;
    uint8_t *chain = frozen_chain(&f, 0x80000000, n, true);
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, true, &s), 0);
    assert_int_equal(s.frozen, n);
    rmem_free(f.r);
    f.r = NULL;
    free(chain);
    fake_free(&f);
}

/* A census hands over the length it walked in its copy: served without any walk while the
 * list's ends stay, with its age; when they move (gc.freeze() again), null until recounted. */
static void census_count_is_served_while_the_ends_stay(void **state)
{
    Fake f;
    fake_build(&f, "3.13");
    const size_t n = 50 * PYREAD_FROZEN_READS;
    RAddr base = 0x80000000;
    uint8_t *chain = frozen_chain(&f, base, n, true);
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, false, &s), 0);
    assert_int_equal(s.frozen, -1);
    pyreader_note_frozen(pr, (int64_t)n, base, chain_addr(base, n - 1, true), 0.5);
    uint64_t before = rmem_calls(f.r);
    assert_int_equal(pyreader_sample(pr, f.r, 2.0, false, &s), 0);
    assert_int_equal(rmem_calls(f.r) - before, 1 + 3 + 2);
    assert_int_equal(s.frozen, n);
    assert_true(s.frozen_age == 1.5);
    assert_string_equal(s.frozen_reason, "");
    /* The last node is dropped: the tail moved, so the old count is not served. */
    put64(chain + (chain_addr(base, n - 2, true) - base), 0,
          IS + f.l->interp.gc + f.l->gc.permanent_generation);
    put64(gcstate(&f), f.l->gc.permanent_generation + 8, chain_addr(base, n - 2, true));
    assert_int_equal(pyreader_sample(pr, f.r, 3.0, false, &s), 0);
    assert_int_equal(s.frozen, -1);
    assert_true(isnan(s.frozen_age));
    rmem_free(f.r);
    f.r = NULL;
    free(chain);
    fake_free(&f);
}

/* ---- arena tables checked against the mappings ---- */

static int live_arenas(Fake *f, size_t *ret_n)
{
    _cleanup_(maps_freep) Maps *m = NULL;
    assert_int_equal(rmem_maps(f->r, &m), 0);
    PyArena *v = NULL;
    uint32_t maxarenas;
    memcpy(&maxarenas, f->obm + f->l->obmalloc.maxarenas, 4);
    int k = pyread_arenas(f->l, f->r, m, ARENAS, maxarenas, &v, ret_n);
    free(v);
    return k;
}

static void arenas_within_mappings_are_read(void **state)
{
    Fake f;
    fake_build(&f, "3.13");
    size_t n = 0;
    assert_int_equal(live_arenas(&f, &n), 0);
    assert_int_equal(n, 2);
    fake_free(&f);
}

/* The forgery of the issue: 2,048 arenas claimed, all over the one real MiB. Each lies in
 * mapped memory, but they overlap: refused before anything is sized from them. */
static void overlapping_arenas_are_refused(void **state)
{
    Fake f;
    fake_build(&f, "3.13");
    const PyLayout *l = f.l;
    uint32_t asz = l->obmalloc.arena_object_size, n = 2048;
    uint8_t *table = calloc(n, asz);
    assert_non_null(table);
    for (uint32_t i = 0; i < n; i++) {
        put64(table, i * asz + l->obmalloc.arena_address, ARENA0);
        put64(table, i * asz + l->obmalloc.arena_pool_address, ARENA0 + l->obmalloc.arena_size);
    }
    rmem_fake_add(f.r, ARENAS + 0x100000, table, (size_t)n * asz);
    put64(f.obm, l->obmalloc.arenas, ARENAS + 0x100000);
    put32(f.obm, l->obmalloc.maxarenas, n);
    _cleanup_(maps_freep) Maps *m = NULL;
    assert_int_equal(rmem_maps(f.r, &m), 0);
    PyArena *v = NULL;
    size_t nv = 0;
    assert_int_equal(pyread_arenas(l, f.r, m, ARENAS + 0x100000, n, &v, &nv), -ERANGE);
    assert_null(v);
    /* The sample refuses the same table, and says the structures do not hold together. */
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, true, &s), -EIO);
    rmem_free(f.r);
    f.r = NULL;
    free(table);
    fake_free(&f);
}

/* Arenas claimed where nothing is mapped, and a table longer than its mapping. */
static void arenas_outside_mappings_are_refused(void **state)
{
    Fake f;
    fake_build(&f, "3.12");
    const PyLayout *l = f.l;
    uint32_t asz = l->obmalloc.arena_object_size;
    size_t n = 0;
    /* Slot 2 moved to an address with no mapping. */
    put64(f.arenas, 2 * asz + l->obmalloc.arena_address, 0x7ff000000000);
    put64(f.arenas, 2 * asz + l->obmalloc.arena_pool_address, 0x7ff000000000 + 4096);
    assert_int_equal(live_arenas(&f, &n), -ERANGE);
    /* Slot 2 back; the table claims a million entries where four are mapped. */
    put64(f.arenas, 2 * asz + l->obmalloc.arena_address, ARENA0 + l->obmalloc.arena_size);
    put64(f.arenas, 2 * asz + l->obmalloc.arena_pool_address,
          ARENA0 + l->obmalloc.arena_size + l->obmalloc.pool_size);
    assert_int_equal(live_arenas(&f, &n), 0);
    put32(f.obm, l->obmalloc.maxarenas, 1u << 20);
    assert_int_equal(live_arenas(&f, &n), -ERANGE);
    fake_free(&f);
}

static void finalizing_is_busy(void **state)
{
    Fake f;
    fake_build(&f, "3.13");
    put64(f.rt, f.l->runtime.finalizing, TS);
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, true, &s), -EBUSY);
    fake_free(&f);
}

static void garbage_flag_values_refused(void **state)
{
    Fake f;
    fake_build(&f, "3.12");
    put32(gcstate(&f), f.l->gc.enabled, 0x41414141);
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, true, &s), -EIO);
    fake_free(&f);
}

static void pool_address_outside_arena_refused(void **state)
{
    Fake f;
    fake_build(&f, "3.12");
    put64(f.arenas, f.l->obmalloc.arena_pool_address, ARENA0 + 64 * f.l->obmalloc.arena_size);
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, true, &s), -EIO);
    fake_free(&f);
}

/* Free-threaded 3.13t: the same fake with unused (zero) list heads, no pymalloc and a share of
 * generation 0's count still held by each thread. */
static const PyLayout *ft_fake(Fake *f, const int64_t alloc[3])
{
    const PyLayout *l = NULL;
    for (size_t i = 0; i < pylayout_ntables && !l; i++)
        if (pylayout_tables[i].free_threaded)
            l = &pylayout_tables[i];
    if (!l)
        return NULL;
    fake_build(f, l->name);
    uint8_t *gc = gcstate(f);
    for (uint32_t g = 0; g < 3; g++)
        memset(gc + l->gc.generations + g * l->gc.generation_size, 0, 16);
    memset(gc + l->gc.permanent_generation, 0, 16);
    for (int i = 0; i < 3; i++)
        put64(f->ts + i * 0x1000, l->tstate.alloc_count, (uint64_t)alloc[i]);
    return l;
}

static void ft_counts_every_thread(void **state)
{
    Fake f;
    /* One thread that allocated, one that freed more than it allocated, one nearly idle. */
    const int64_t alloc[3] = {300, -120, 7};
    if (!ft_fake(&f, alloc)) {
        skip();
        return;
    }
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, true, &s), 0);
    /* Generation 0: the global 5 plus 300 - 120 + 7; the older generations as they are. */
    assert_int_equal(s.gen[0].count, 5 + 300 - 120 + 7);
    assert_int_equal(s.gen[1].count, 2);
    assert_int_equal(s.gen[2].count, 1);
    int thr[3] = {777, 55, 33};
    for (int g = 0; g < 3; g++) {
        assert_int_equal(s.gen[g].threshold, thr[g]);
        assert_int_equal(s.gen[g].collections, 100 + g);
        assert_int_equal(s.gen[g].collected, 1000 + g);
        assert_int_equal(s.gen[g].uncollectable, g);
    }
    assert_true(s.enabled);
    assert_int_equal(s.threads, 3);
    assert_int_equal(s.garbage, 2);
    assert_int_equal(s.frozen, -1); /* not listed anywhere: null */
    assert_false(s.pymalloc_ok);
    assert_int_equal(s.allocated_blocks, -1);
    /* This fake has no mimalloc heaps to walk: neither blocks nor bytes, and why. */
    assert_int_equal(s.allocated_bytes, -1);
    assert_non_null(strstr(s.blocks_reason, "allocated_bytes: not read at this sample ("));
    fake_free(&f);
}

static void ft_absurd_thread_count_refused(void **state)
{
    Fake f;
    const int64_t alloc[3] = {1, 1 << 20, 1};
    if (!ft_fake(&f, alloc)) {
        skip();
        return;
    }
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, true, &s), -EIO);
    fake_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_312),
        cmocka_unit_test(reads_313),
        cmocka_unit_test(batched),
        cmocka_unit_test(cyclic_thread_list_is_bounded),
        cmocka_unit_test(broken_frozen_link_is_refused),
        cmocka_unit_test(long_frozen_list_is_walked_in_steps),
        cmocka_unit_test(frozen_list_in_memory_order_is_read_by_windows),
        cmocka_unit_test(frozen_list_changed_under_the_walk),
        cmocka_unit_test(forced_sample_counts_at_once),
        cmocka_unit_test(census_count_is_served_while_the_ends_stay),
        cmocka_unit_test(arenas_within_mappings_are_read),
        cmocka_unit_test(overlapping_arenas_are_refused),
        cmocka_unit_test(arenas_outside_mappings_are_refused),
        cmocka_unit_test(finalizing_is_busy),
        cmocka_unit_test(garbage_flag_values_refused),
        cmocka_unit_test(pool_address_outside_arena_refused),
        cmocka_unit_test(ft_counts_every_thread),
        cmocka_unit_test(ft_absurd_thread_count_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
