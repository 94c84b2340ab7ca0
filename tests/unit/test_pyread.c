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
#include <string.h>

#include <cmocka.h>

#include "python/pyread.h"

enum {
    RT = 0x10000000,
    IS = 0x20000000,
    TS = 0x30000000,
    GARBAGE = 0x40000000,
    FROZEN = 0x50000000,
    OBM = 0x58000000,
    ARENAS = 0x60000000,
    ARENA0 = 0x70000000,
};

typedef struct Fake {
    const PyLayout *l;
    uint8_t *rt, *is, *ts, *garbage, *frozen, *obm, *arenas, *arena;
    size_t arena_len;
    Rmem *r;
    PyLoc loc;
} Fake;

static const PyLayout *table(const char *name)
{
    for (size_t i = 0; i < pylayout_ntables; i++)
        if (strcmp(pylayout_tables[i].name, name) == 0)
            return &pylayout_tables[i];
    return NULL;
}

static void put64(uint8_t *p, uint32_t off, uint64_t v)
{
    memcpy(p + off, &v, 8);
}

static void put32(uint8_t *p, uint32_t off, uint32_t v)
{
    memcpy(p + off, &v, 4);
}

static uint8_t *gcstate(Fake *f)
{
    return f->is + f->l->interp.gc;
}

/* A 3.12+ interpreter: 3 threads, thresholds (777,55,33), counts (5,2,1), stats per generation,
 * 2 objects in gc.garbage, 4 frozen objects, 2 live arenas out of 4 slots. */
static void fake_build(Fake *f, const char *name)
{
    memset(f, 0, sizeof(*f));
    f->l = table(name);
    assert_non_null(f->l);
    const PyLayout *l = f->l;
    f->rt = calloc(1, l->runtime.size);
    f->is = calloc(1, l->interp.size);
    f->ts = calloc(3, 0x1000);
    f->garbage = calloc(1, 64);
    f->frozen = calloc(4, 64);
    f->obm = calloc(1, l->obmalloc.state_size);
    f->arenas = calloc(4, l->obmalloc.arena_object_size);
    f->arena_len = 2 * l->obmalloc.arena_size;
    f->arena = calloc(1, f->arena_len);

    put64(f->rt, l->runtime.interpreters_head, IS);
    put64(f->rt, l->runtime.interpreters_main, IS);
    put64(f->is, l->interp.threads_head, TS);
    for (int i = 0; i < 3; i++)
        put64(f->ts + i * 0x1000, l->tstate.next, i < 2 ? TS + (i + 1) * 0x1000 : 0);

    uint8_t *gc = gcstate(f);
    RAddr gc_addr = IS + l->interp.gc;
    put32(gc, l->gc.enabled, 1);
    int thr[3] = {777, 55, 33}, cnt[3] = {5, 2, 1};
    for (int g = 0; g < 3; g++) {
        uint32_t gen = l->gc.generations + g * l->gc.generation_size;
        RAddr self = gc_addr + gen;
        put64(gc, gen, self);
        put64(gc, gen + 8, self);
        put32(gc, gen + l->gc.generation_threshold, thr[g]);
        put32(gc, gen + l->gc.generation_count, cnt[g]);
        uint32_t st = l->gc.stats + g * l->gc.stats_entry_size;
        put64(gc, st + l->gc.stat_collections, 100 + g);
        put64(gc, st + l->gc.stat_collected, 1000 + g);
        put64(gc, st + l->gc.stat_uncollectable, g);
    }
    put64(gc, l->gc.garbage, GARBAGE);
    put64(f->garbage, l->object.ob_size, 2);

    /* The permanent generation: head <-> n0 <-> n1 <-> n2 <-> n3 <-> head. */
    RAddr head = gc_addr + l->gc.permanent_generation;
    put64(gc, l->gc.permanent_generation, FROZEN);
    put64(gc, l->gc.permanent_generation + 8, FROZEN + 3 * 64);
    for (int i = 0; i < 4; i++) {
        put64(f->frozen + i * 64, 0, i < 3 ? (RAddr)FROZEN + (i + 1) * 64 : head);
        put64(f->frozen + i * 64, 8, i > 0 ? (RAddr)FROZEN + (i - 1) * 64 : head);
    }

    /* obmalloc: arena slots 0 and 2 live; slot 0 uses 3 pools, slot 2 uses 1. */
    assert_int_equal(rmem_fake_new(&f->r), 0);
    if (l->obmalloc.kind == PYOBM_NONE) { /* free-threaded: no pymalloc */
        rmem_fake_add(f->r, RT, f->rt, l->runtime.size);
        rmem_fake_add(f->r, IS, f->is, l->interp.size);
        rmem_fake_add(f->r, TS, f->ts, 3 * 0x1000);
        rmem_fake_add(f->r, GARBAGE, f->garbage, 64);
        f->loc = (PyLoc){.status = PYLOC_OK, .runtime = RT, .layout = *l};
        return;
    }
    if (l->obmalloc.kind == PYOBM_EMBEDDED) {
        free(f->obm);
        f->obm = f->is + l->interp.obmalloc;
    } else {
        put64(f->is, l->interp.obmalloc, OBM);
    }
    put64(f->obm, l->obmalloc.arenas, ARENAS);
    put32(f->obm, l->obmalloc.maxarenas, 4);
    put64(f->obm, l->obmalloc.narenas_currently_allocated, 2);
    put64(f->obm, l->obmalloc.narenas_highwater, 3);
    put64(f->obm, l->obmalloc.raw_allocated_blocks, 100);
    uint32_t asz = l->obmalloc.arena_object_size, pool = l->obmalloc.pool_size;
    put64(f->arenas, 0 * asz + l->obmalloc.arena_address, ARENA0);
    put64(f->arenas, 0 * asz + l->obmalloc.arena_pool_address, ARENA0 + 3 * pool);
    put64(f->arenas, 2 * asz + l->obmalloc.arena_address, ARENA0 + l->obmalloc.arena_size);
    put64(f->arenas, 2 * asz + l->obmalloc.arena_pool_address,
          ARENA0 + l->obmalloc.arena_size + pool);
    put32(f->arena, 0 * pool + l->obmalloc.pool_ref_count, 10);
    put32(f->arena, 1 * pool + l->obmalloc.pool_ref_count, 20);
    put32(f->arena, 2 * pool + l->obmalloc.pool_ref_count, 30);
    put32(f->arena, 3 * pool + l->obmalloc.pool_ref_count, 999); /* past pool_address: unused */
    put32(f->arena, l->obmalloc.arena_size + l->obmalloc.pool_ref_count, 7);

    rmem_fake_add(f->r, RT, f->rt, l->runtime.size);
    rmem_fake_add(f->r, IS, f->is, l->interp.size);
    rmem_fake_add(f->r, TS, f->ts, 3 * 0x1000);
    rmem_fake_add(f->r, GARBAGE, f->garbage, 64);
    rmem_fake_add(f->r, FROZEN, f->frozen, 4 * 64);
    if (l->obmalloc.kind == PYOBM_POINTER)
        rmem_fake_add(f->r, OBM, f->obm, l->obmalloc.state_size);
    rmem_fake_add(f->r, ARENAS, f->arenas, 4 * asz);
    rmem_fake_add(f->r, ARENA0, f->arena, f->arena_len);

    f->loc = (PyLoc){.status = PYLOC_OK, .runtime = RT, .layout = *l, .obmalloc_ok = true};
}

static void fake_free(Fake *f)
{
    if (f->l->obmalloc.kind != PYOBM_EMBEDDED)
        free(f->obm);
    free(f->rt), free(f->is), free(f->ts), free(f->garbage), free(f->frozen), free(f->arenas),
        free(f->arena);
    rmem_free(f->r);
}

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

static void broken_frozen_link_is_refused(void **state)
{
    Fake f;
    fake_build(&f, "3.13");
    put64(f.frozen + 2 * 64, 8, FROZEN); /* n2's prev should be n1 */
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f.loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, f.r, 0.0, true, &s), -EIO);
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
        cmocka_unit_test(finalizing_is_busy),
        cmocka_unit_test(garbage_flag_values_refused),
        cmocka_unit_test(pool_address_outside_arena_refused),
        cmocka_unit_test(ft_counts_every_thread),
        cmocka_unit_test(ft_absurd_thread_count_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
