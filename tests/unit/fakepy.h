/* A fake interpreter for the unit tests of pyread and census: the structures a layout table
 * describes, laid out in local buffers behind a fake reader. Each test file includes it once. */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
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

static inline const PyLayout *table(const char *name)
{
    for (size_t i = 0; i < pylayout_ntables; i++)
        if (strcmp(pylayout_tables[i].name, name) == 0)
            return &pylayout_tables[i];
    return NULL;
}

static inline void put64(uint8_t *p, uint32_t off, uint64_t v)
{
    memcpy(p + off, &v, 8);
}

static inline void put32(uint8_t *p, uint32_t off, uint32_t v)
{
    memcpy(p + off, &v, 4);
}

static inline uint8_t *gcstate(Fake *f)
{
    return f->is + f->l->interp.gc;
}

/* A 3.12+ interpreter: 3 threads, thresholds (777,55,33), counts (5,2,1), stats per generation,
 * 2 objects in gc.garbage, 4 frozen objects, 2 live arenas out of 4 slots. */
static inline void fake_build(Fake *f, const char *name)
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
    if (l->obmalloc.kind == PYOBM_NONE) { /* free-threaded: no pymalloc */
        assert_int_equal(rmem_fake_new(&f->r), 0);
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

    assert_int_equal(rmem_fake_new(&f->r), 0);
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

static inline void fake_free(Fake *f)
{
    if (f->l->obmalloc.kind != PYOBM_EMBEDDED)
        free(f->obm);
    free(f->rt), free(f->is), free(f->ts), free(f->garbage), free(f->frozen), free(f->arenas),
        free(f->arena);
    rmem_free(f->r);
}
