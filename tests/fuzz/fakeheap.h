/* A fake interpreter for the heap harness, built from the fuzzer's input: the same address
 * space as tests/unit/fakepy.h (runtime, interpreter, threads, gc.garbage, the permanent
 * generation, obmalloc state, arena table and arenas, at the same addresses), 3.15's GC stats
 * (struct gc_stats, which the GC state points to) and a HEAP region
 * holding whatever the input says, all served by the fake reader (rmem_fake_*).
 *
 * Input: byte 0 picks the layout table (modulo their number); byte 1 is the number of patches
 * (at most FH_MAX_PATCHES); then each patch is 13 bytes, a region (byte, modulo FH_NREGIONS), an
 * offset (u32 LE, modulo the region's size) and a u64 LE written there, so the fuzzer can break
 * any field of the interpreter's structures; the rest of the input is the HEAP region's bytes
 * (at most FH_HEAP_MAX). Seeds link objects in HEAP into the generation lists with patches
 * (tests/fuzz/heap_seeds.c writes them). */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "python/locate.h"
#include "python/pyread.h"
#include "remote/rmem.h"

enum {
    FH_RT = 0x10000000,
    FH_IS = 0x20000000,
    FH_TS = 0x30000000,
    FH_GARBAGE = 0x40000000,
    FH_FROZEN = 0x50000000,
    FH_OBM = 0x58000000,
    FH_ARENAS = 0x60000000,
    FH_ARENA0 = 0x70000000,
    FH_HEAP = 0x80000000,
    FH_GCSTATS = 0x48000000,
};
enum {
    FH_REG_RT,
    FH_REG_IS,
    FH_REG_TS,
    FH_REG_GARBAGE,
    FH_REG_FROZEN,
    FH_REG_OBM,
    FH_REG_ARENAS,
    FH_REG_ARENA,
    FH_REG_HEAP,
    FH_REG_GCSTATS,
    FH_REG_ARENA2, /* the second live arena's one pool */
    FH_NREGIONS
};
#define FH_MAX_PATCHES 64
#define FH_PATCH_SIZE  13
#define FH_HEAP_MAX    (64 * 1024)

typedef struct FakeHeap {
    const PyLayout *l;
    uint8_t *reg[FH_NREGIONS];
    size_t len[FH_NREGIONS];
    RAddr base[FH_NREGIONS];
    Rmem *r;
    PyLoc loc;
} FakeHeap;

static inline void fh_put64(uint8_t *p, uint32_t off, uint64_t v)
{
    memcpy(p + off, &v, 8);
}

static inline void fh_put32(uint8_t *p, uint32_t off, uint32_t v)
{
    memcpy(p + off, &v, 4);
}

static inline void fakeheap_free(FakeHeap *f)
{
    rmem_free(f->r);
    for (int i = 0; i < FH_NREGIONS; i++)
        if (!(i == FH_REG_OBM && f->l && f->l->obmalloc.kind == PYOBM_EMBEDDED))
            free(f->reg[i]);
    memset(f, 0, sizeof(*f));
}

/* The well-formed interpreter of fakepy.h (3 threads, counts and thresholds, 2 objects in
 * gc.garbage, 4 frozen objects, 2 live arenas), with heap_len bytes of HEAP. 0 or -ENOMEM. */
static inline int fakeheap_build(FakeHeap *f, const PyLayout *l, size_t heap_len)
{
    memset(f, 0, sizeof(*f));
    f->l = l;
    const RAddr bases[FH_NREGIONS] = {FH_RT,
                                      FH_IS,
                                      FH_TS,
                                      FH_GARBAGE,
                                      FH_FROZEN,
                                      FH_OBM,
                                      FH_ARENAS,
                                      FH_ARENA0,
                                      FH_HEAP,
                                      FH_GCSTATS,
                                      FH_ARENA0 + l->obmalloc.arena_size};
    const size_t lens[FH_NREGIONS] = {
        l->runtime.size,
        l->interp.size,
        3 * 0x1000,
        64,
        4 * 64,
        l->obmalloc.state_size,
        4 * (size_t)l->obmalloc.arena_object_size,
        /* Only the pools carved so far must be mapped: 3 of the first arena (and one spare),
         * 1 of the second, not the arenas' whole MiB each, which every input would allocate. */
        4 * (size_t)l->obmalloc.pool_size,
        heap_len ? heap_len : 16,
        l->gc.stats_kind == PYGCS_RING ? l->gc.stats_size : 16,
        l->obmalloc.pool_size,
    };
    for (int i = 0; i < FH_NREGIONS; i++) {
        f->base[i] = bases[i];
        /* Whole pages, as the kernel maps them: a census reads a page at a time. */
        f->len[i] = ((lens[i] ? lens[i] : 16) + 4095) & ~(size_t)4095;
        if (i == FH_REG_OBM && l->obmalloc.kind == PYOBM_EMBEDDED)
            continue;
        if (!(f->reg[i] = calloc(1, f->len[i]))) {
            fakeheap_free(f);
            return -ENOMEM;
        }
    }
    uint8_t *rt = f->reg[FH_REG_RT], *is = f->reg[FH_REG_IS], *ts = f->reg[FH_REG_TS];
    fh_put64(rt, l->runtime.interpreters_head, FH_IS);
    fh_put64(rt, l->runtime.interpreters_main, FH_IS);
    fh_put64(is, l->interp.threads_head, FH_TS);
    for (int i = 0; i < 3; i++)
        fh_put64(ts + i * 0x1000, l->tstate.next, i < 2 ? FH_TS + (i + 1) * 0x1000 : 0);

    /* 3.8 keeps the GC state in the runtime. */
    uint8_t *gc = l->interp.gc != PYL_NONE ? is + l->interp.gc : rt + l->runtime.gc;
    RAddr gc_addr = l->interp.gc != PYL_NONE ? FH_IS + l->interp.gc : FH_RT + l->runtime.gc;
    fh_put32(gc, l->gc.enabled, 1);
    const int thr[3] = {777, 55, 33}, cnt[3] = {5, 2, 1};
    for (uint32_t g = 0; g < l->gc.ngenerations && g < 3; g++) {
        uint32_t gen = l->gc.generations + g * l->gc.generation_size;
        fh_put64(gc, gen, gc_addr + gen);
        fh_put64(gc, gen + 8, gc_addr + gen);
        fh_put32(gc, gen + l->gc.generation_threshold, thr[g]);
        fh_put32(gc, gen + l->gc.generation_count, cnt[g]);
        if (l->gc.stats_kind == PYGCS_ARRAY) {
            uint32_t st = l->gc.stats + g * l->gc.stats_entry_size;
            fh_put64(gc, st + l->gc.stat_collections, 100 + g);
            fh_put64(gc, st + l->gc.stat_collected, 1000 + g);
            fh_put64(gc, st + l->gc.stat_uncollectable, g);
        }
    }
    if (l->gc.stats_kind == PYGCS_RING)
        fh_put64(gc, l->gc.stats, FH_GCSTATS); /* rings of zeros: every cursor at entry 0 */
    fh_put64(gc, l->gc.garbage, FH_GARBAGE);
    fh_put64(f->reg[FH_REG_GARBAGE], l->object.ob_size, 2);

    /* The permanent generation: head <-> n0 <-> n1 <-> n2 <-> n3 <-> head. */
    uint8_t *frozen = f->reg[FH_REG_FROZEN];
    RAddr head = gc_addr + l->gc.permanent_generation;
    fh_put64(gc, l->gc.permanent_generation, FH_FROZEN);
    fh_put64(gc, l->gc.permanent_generation + 8, FH_FROZEN + 3 * 64);
    for (int i = 0; i < 4; i++) {
        fh_put64(frozen + i * 64, 0, i < 3 ? (RAddr)FH_FROZEN + (i + 1) * 64 : head);
        fh_put64(frozen + i * 64, 8, i > 0 ? (RAddr)FH_FROZEN + (i - 1) * 64 : head);
    }

    bool obm = l->obmalloc.kind == PYOBM_EMBEDDED || l->obmalloc.kind == PYOBM_POINTER;
    if (obm) {
        uint8_t *o;
        if (l->obmalloc.kind == PYOBM_EMBEDDED) {
            o = f->reg[FH_REG_OBM] = is + l->interp.obmalloc;
            f->base[FH_REG_OBM] = FH_IS + l->interp.obmalloc;
        } else {
            o = f->reg[FH_REG_OBM];
            fh_put64(is, l->interp.obmalloc, FH_OBM);
        }
        uint8_t *arenas = f->reg[FH_REG_ARENAS], *arena = f->reg[FH_REG_ARENA];
        fh_put64(o, l->obmalloc.arenas, FH_ARENAS);
        fh_put32(o, l->obmalloc.maxarenas, 4);
        fh_put64(o, l->obmalloc.narenas_currently_allocated, 2);
        fh_put64(o, l->obmalloc.narenas_highwater, 3);
        if (l->obmalloc.raw_allocated_blocks != PYL_NONE)
            fh_put64(o, l->obmalloc.raw_allocated_blocks, 100);
        uint32_t asz = l->obmalloc.arena_object_size, pool = l->obmalloc.pool_size;
        fh_put64(arenas, 0 * asz + l->obmalloc.arena_address, FH_ARENA0);
        fh_put64(arenas, 0 * asz + l->obmalloc.arena_pool_address, FH_ARENA0 + 3 * pool);
        fh_put64(arenas, 2 * asz + l->obmalloc.arena_address, FH_ARENA0 + l->obmalloc.arena_size);
        fh_put64(arenas, 2 * asz + l->obmalloc.arena_pool_address,
                 FH_ARENA0 + l->obmalloc.arena_size + pool);
        fh_put32(arena, 0 * pool + l->obmalloc.pool_ref_count, 10);
        fh_put32(arena, 1 * pool + l->obmalloc.pool_ref_count, 20);
        fh_put32(arena, 2 * pool + l->obmalloc.pool_ref_count, 30);
        fh_put32(f->reg[FH_REG_ARENA2], l->obmalloc.pool_ref_count, 7);
    }
    if (rmem_fake_new(&f->r) < 0) {
        fakeheap_free(f);
        return -ENOMEM;
    }
    for (int i = 0; i < FH_NREGIONS; i++) {
        if (i == FH_REG_OBM && l->obmalloc.kind != PYOBM_POINTER)
            continue;
        if ((i == FH_REG_ARENAS || i == FH_REG_ARENA || i == FH_REG_ARENA2) && !obm)
            continue;
        if (i == FH_REG_GCSTATS && l->gc.stats_kind != PYGCS_RING)
            continue;
        if (rmem_fake_add(f->r, f->base[i], f->reg[i], f->len[i]) < 0) {
            fakeheap_free(f);
            return -ENOMEM;
        }
    }
    f->loc = (PyLoc){.status = PYLOC_OK, .runtime = FH_RT, .layout = *l, .obmalloc_ok = obm};
    return 0;
}

/* The GC state's address in the fake (the generation list heads are in it). */
static inline RAddr fakeheap_gc(const FakeHeap *f)
{
    const PyLayout *l = f->l;
    return l->interp.gc != PYL_NONE ? FH_IS + l->interp.gc : FH_RT + l->runtime.gc;
}

/* Builds the fake an input describes (see the top of this file). 0, -EINVAL when the input is
 * too short to say anything, -ENOMEM. */
static inline int fakeheap_from_input(FakeHeap *f, const uint8_t *data, size_t size)
{
    if (size < 2 || pylayout_ntables == 0)
        return -EINVAL;
    const PyLayout *l = &pylayout_tables[data[0] % pylayout_ntables];
    size_t npatch = data[1] % (FH_MAX_PATCHES + 1);
    if (size < 2 + npatch * FH_PATCH_SIZE)
        return -EINVAL;
    const uint8_t *heap = data + 2 + npatch * FH_PATCH_SIZE;
    size_t heap_len = size - 2 - npatch * FH_PATCH_SIZE;
    if (heap_len > FH_HEAP_MAX)
        heap_len = FH_HEAP_MAX;
    int k = fakeheap_build(f, l, heap_len);
    if (k < 0)
        return k;
    memcpy(f->reg[FH_REG_HEAP], heap, heap_len);
    for (size_t i = 0; i < npatch; i++) {
        const uint8_t *p = data + 2 + i * FH_PATCH_SIZE;
        unsigned reg = p[0] % FH_NREGIONS;
        uint32_t off;
        uint64_t v;
        memcpy(&off, p + 1, 4);
        memcpy(&v, p + 5, 8);
        if (!f->reg[reg] || f->len[reg] < 8)
            continue;
        off %= (uint32_t)(f->len[reg] - 7);
        fh_put64(f->reg[reg], off, v);
    }
    return 0;
}

/* Where the seed's objects are in HEAP. */
enum {
    FH_META = 0x0000,
    FH_LEAKY = 0x0400,
    FH_LIST = 0x0800,
    FH_NAMES = 0x0c00,
    FH_OBJS = 0x1000,
    FH_ITEMS = 0x1200,
    FH_SEED_LEN = 0x1400,
    FH_SLOT = 0x40,
};

typedef struct FhSeed {
    uint8_t heap[FH_SEED_LEN];
    uint8_t patches[FH_MAX_PATCHES][FH_PATCH_SIZE];
    size_t npatches;
} FhSeed;

static inline void fh_patch(FhSeed *sd, unsigned reg, uint32_t off, uint64_t v)
{
    uint8_t *p = sd->patches[sd->npatches++];
    p[0] = (uint8_t)reg;
    memcpy(p + 1, &off, 4);
    memcpy(p + 5, &v, 8);
}

static inline void fh_type_object(FhSeed *sd, const PyLayout *l, uint32_t at, uint32_t name,
                                  const char *s, uint64_t basicsize, uint64_t flags)
{
    fh_put64(sd->heap, at + 0, 1); /* ob_refcnt */
    fh_put64(sd->heap, at + l->object.ob_type, FH_HEAP + FH_META);
    fh_put64(sd->heap, at + l->object.tp_name, FH_HEAP + name);
    fh_put64(sd->heap, at + l->object.tp_basicsize, basicsize);
    fh_put64(sd->heap, at + l->object.tp_itemsize, 0);
    fh_put64(sd->heap, at + l->object.tp_flags, flags);
    memcpy(sd->heap + name, s, strlen(s) + 1);
}

/* The seed of fuzz_heap for layout l (tests/fuzz/corpus/heap/, tests/unit/test_refs.c): HEAP
 * holds the metatype "type", a static type "Leaky", "list", their names, and four objects linked
 * into generation 0, three Leaky and a list holding them; the four frozen objects of the fake are
 * types. So a census counts 4 type, 3 Leaky and 1 list, and the referrers of Leaky are one list
 * holding 3 references. The input is malloc'd into *ret (the caller frees it). 0 or -ENOMEM. */
static inline int fakeheap_seed(const PyLayout *l, uint8_t **ret, size_t *ret_len)
{
    FhSeed *sd = calloc(1, sizeof(*sd));
    if (!sd)
        return -ENOMEM;
    uint32_t hs = l->gc.head_size;
    fh_type_object(sd, l, FH_META, FH_NAMES, "type", 0x400, 0);
    fh_type_object(sd, l, FH_LEAKY, FH_NAMES + 0x10, "Leaky", 16, 0);
    fh_type_object(sd, l, FH_LIST, FH_NAMES + 0x20, "list", l->refs.list_basicsize, 0);

    /* Generation 0: head -> o0 -> o1 -> o2 -> o3 (the list) -> head. */
    FakeHeap f;
    if (fakeheap_build(&f, l, FH_SEED_LEN) < 0) {
        free(sd);
        return -ENOMEM;
    }
    RAddr head = fakeheap_gc(&f) + l->gc.generations;
    unsigned reg = l->interp.gc != PYL_NONE ? FH_REG_IS : FH_REG_RT;
    uint32_t hoff = (uint32_t)(head - f.base[reg]);
    fakeheap_free(&f);
    for (uint32_t i = 0; i < 4; i++) {
        uint32_t node = FH_OBJS + i * FH_SLOT;
        fh_put64(sd->heap, node, i < 3 ? FH_HEAP + node + FH_SLOT : head);
        fh_put64(sd->heap, node + 8, i > 0 ? FH_HEAP + node - FH_SLOT : head);
        fh_put64(sd->heap, node + hs, 1);
        fh_put64(sd->heap, node + hs + l->object.ob_type, FH_HEAP + (i < 3 ? FH_LEAKY : FH_LIST));
    }
    uint32_t list = FH_OBJS + 3 * FH_SLOT + hs;
    fh_put64(sd->heap, list + l->object.ob_size, 3);
    fh_put64(sd->heap, list + l->refs.list_items, FH_HEAP + FH_ITEMS);
    for (uint32_t i = 0; i < 3; i++)
        fh_put64(sd->heap, FH_ITEMS + 8 * i, FH_HEAP + FH_OBJS + i * FH_SLOT + hs);
    /* The frozen objects of the fake's permanent generation are types, so a census can size
     * them. */
    for (uint32_t i = 0; i < 4; i++)
        fh_patch(sd, FH_REG_FROZEN, i * 64 + hs + l->object.ob_type, FH_HEAP + FH_META);
    fh_patch(sd, reg, hoff, FH_HEAP + FH_OBJS);
    fh_patch(sd, reg, hoff + 8, FH_HEAP + FH_OBJS + 3 * FH_SLOT);

    size_t t = 0;
    while (t < pylayout_ntables && &pylayout_tables[t] != l)
        t++;
    size_t len = 2 + sd->npatches * FH_PATCH_SIZE + sizeof(sd->heap);
    uint8_t *in = malloc(len);
    if (!in) {
        free(sd);
        return -ENOMEM;
    }
    in[0] = (uint8_t)t;
    in[1] = (uint8_t)sd->npatches;
    memcpy(in + 2, sd->patches, sd->npatches * FH_PATCH_SIZE);
    memcpy(in + 2 + sd->npatches * FH_PATCH_SIZE, sd->heap, sizeof(sd->heap));
    free(sd);
    *ret = in;
    *ret_len = len;
    return 0;
}
