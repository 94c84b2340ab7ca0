/* locate: a target's own _Py_DebugOffsets, as stored in real CPython binaries (the .PyRuntime
 * section holds their initial image), are taken over the tables within the sizes they declare;
 * a corrupted image is refused as a whole; among the candidate tables of a version the live
 * target's structure picks exactly one, and pymalloc is judged on its own. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "elf/elffile.h"
#include "python/locate.h"

typedef struct Binary {
    char label[96];
    char path[512];
    bool debug;
} Binary;

#define MAX_BINARIES 48

static void add_binary(Binary *out, size_t *n, const char *label, const char *path, bool debug)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("SKIP %s: %s not found\n", label, path);
        return;
    }
    fclose(f);
    if (*n >= MAX_BINARIES)
        return;
    snprintf(out[*n].label, sizeof(out[*n].label), "%s", label);
    snprintf(out[*n].path, sizeof(out[*n].path), "%s", path);
    out[*n].debug = debug;
    (*n)++;
}

/* The 3.13+ binaries on this machine: pyenv's libpython3.13 and every python3.1N[d] of every
 * Debian suite the test setup unpacked under the cache (root-<suite>/usr/bin). */
static size_t find_binaries(Binary *out)
{
    size_t n = 0;
    const char *home = getenv("HOME") ? getenv("HOME") : "/root";
    const char *pyenv = getenv("PYENV_ROOT");
    char path[1024], label[96];
    if (pyenv)
        snprintf(path, sizeof(path), "%s/versions/3.13.0/lib/libpython3.13.so.1.0", pyenv);
    else
        snprintf(path, sizeof(path), "%s/.pyenv/versions/3.13.0/lib/libpython3.13.so.1.0", home);
    add_binary(out, &n, "pyenv 3.13.0", path, false);

    const char *cache = getenv("PYMEMD_CACHE_DIR");
    /* tests/integration/upstream-pythons.sh's builds of python.org's 3.13 tarball. */
    char upstream[400];
    if (cache)
        snprintf(upstream, sizeof(upstream), "%s/upstream", cache);
    else
        snprintf(upstream, sizeof(upstream), "%s/.cache/pymemd/upstream", home);
    snprintf(path, sizeof(path), "%s/build-3.13/python", upstream);
    add_binary(out, &n, "upstream 3.13", path, false);
    snprintf(path, sizeof(path), "%s/build-3.13t/python", upstream);
    add_binary(out, &n, "upstream 3.13t", path, false);

    char debian[400];
    if (cache)
        snprintf(debian, sizeof(debian), "%s/debian", cache);
    else
        snprintf(debian, sizeof(debian), "%s/.cache/pymemd/debian", home);
    DIR *d = opendir(debian);
    if (!d) {
        printf("SKIP Debian interpreters: no %s\n", debian);
        return n;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "root-", 5) != 0 || strchr(e->d_name, '.'))
            continue;
        /* The interpreters, their -nopie builds and the shared libpython of embedding hosts. */
        static const struct {
            const char *dir, *suffix;
        } kinds[] = {{"usr/bin/python", ""},
                     {"usr/bin/python", "-nopie"},
                     {"usr/lib/x86_64-linux-gnu/libpython", ".so.1.0"}};
        for (int minor = 13; minor < 20; minor++)
            for (int dbg = 0; dbg < 2; dbg++)
                for (size_t kind = 0; kind < sizeof(kinds) / sizeof(kinds[0]); kind++) {
                    char rel[96];
                    snprintf(rel, sizeof(rel), "%s3.%d%s%s", kinds[kind].dir, minor, dbg ? "d" : "",
                             kinds[kind].suffix);
                    snprintf(path, sizeof(path), "%s/%s/%s", debian, e->d_name, rel);
                    if (access(path, F_OK) != 0)
                        continue;
                    snprintf(label, sizeof(label), "Debian %s %s", e->d_name + 5,
                             strrchr(rel, '/') + 1);
                    add_binary(out, &n, label, path, dbg);
                }
    }
    closedir(d);
    return n;
}

static int load_image(const char *path, uint8_t *buf, size_t size, uint32_t *ret_hex)
{
    _cleanup_(elffile_freep) ElfFile *f = NULL;
    int k = elffile_open(path, &f);
    if (k < 0)
        return k;
    ElfSection sec;
    k = elffile_section(f, ".PyRuntime", &sec);
    if (k < 0)
        return k;
    k = elffile_read_vaddr(f, sec.addr, buf, size);
    if (k < 0)
        return k;
    uint64_t v;
    memcpy(&v, buf + 8, 8);
    *ret_hex = (uint32_t)v;
    return 0;
}

static uint64_t rd64(const uint8_t *img, uint32_t where)
{
    uint64_t v;
    memcpy(&v, img + where, 8);
    return v;
}

static void wr64(uint8_t *img, uint32_t where, uint64_t v)
{
    memcpy(img + where, &v, 8);
}

/* Every value the reader takes from an image is the image's. */
static void assert_follows_image(const PyLayout *l, const uint8_t *img)
{
    const typeof(l->debug_offsets) *d = &l->debug_offsets;
    assert_int_equal(l->runtime.size, rd64(img, d->runtime_size));
    assert_int_equal(l->runtime.interpreters_head, rd64(img, d->runtime_interpreters_head));
    assert_int_equal(l->runtime.finalizing, rd64(img, d->runtime_finalizing));
    assert_int_equal(l->interp.size, rd64(img, d->interp_size));
    assert_int_equal(l->interp.next, rd64(img, d->interp_next));
    assert_int_equal(l->interp.threads_head, rd64(img, d->interp_threads_head));
    assert_int_equal(l->interp.gc, rd64(img, d->interp_gc));
    assert_int_equal(l->tstate.size, rd64(img, d->tstate_size));
    assert_int_equal(l->tstate.next, rd64(img, d->tstate_next));
    assert_int_equal(l->gc.size, rd64(img, d->gc_size));
    assert_int_equal(l->gc.collecting, rd64(img, d->gc_collecting));
    assert_int_equal(l->object.ob_type, rd64(img, d->pyobject_ob_type));
    assert_int_equal(l->object.tp_name, rd64(img, d->type_tp_name));
    assert_int_equal(l->object.tp_flags, rd64(img, d->type_tp_flags));
    assert_int_equal(l->object.ob_size, rd64(img, d->list_ob_size));
    assert_int_equal(l->sizes.iframe_code, rd64(img, d->iframe_executable));
    if (d->gc_generation_stats != PYL_NONE)
        assert_int_equal(l->gc.stats, rd64(img, d->gc_generation_stats));
}

static void real_images_are_taken_over_the_tables(void **state)
{
    Binary bins[MAX_BINARIES];
    size_t n = find_binaries(bins);
    if (n == 0)
        skip();
    for (size_t i = 0; i < n; i++) {
        uint8_t img[2048];
        uint32_t hex = 0;
        assert_int_equal(load_image(bins[i].path, img, sizeof(img), &hex), 0);
        assert_memory_equal(img, "xdebugpy", 8);
        const PyLayout *cands[8];
        const char *why = NULL;
        uint64_t ft; /* after the cookie and the version, in every version's debug offsets */
        memcpy(&ft, img + 16, 8);
        size_t nc = pylayout_find(hex, bins[i].debug, ft != 0, cands, 8, &why);
        if (nc == 0)
            fail_msg("%s (%08x): %s", bins[i].label, hex, why);
        size_t accepted = 0;
        for (size_t c = 0; c < nc; c++) {
            PyLayout l = *cands[c];
            int k = pyloc_apply_debug_offsets(&l, img, sizeof(img));
            uint64_t gc_size = rd64(img, l.debug_offsets.gc_size);
            printf("%s: %08x, table %s [%s]: %d\n", bins[i].label, hex, cands[c]->name,
                   cands[c]->source, k);
            if (k >= 0) {
                accepted++;
                assert_follows_image(&l, img);
            } else {
                /* A valid image is refused by a table only for a GC layout it does not have. */
                assert_int_equal(k, -ENXIO);
                bool stats_differ =
                    l.debug_offsets.gc_generation_stats_size != PYL_NONE &&
                    rd64(img, l.debug_offsets.gc_generation_stats_size) != l.gc.stats_size;
                assert_true(gc_size != l.gc.size || stats_differ);
                assert_memory_equal(&l, cands[c], sizeof(l));
            }
        }
        /* At least one table fits every real binary; which of two with the same GC size is
         * the target's own is for the live target to tell (see the fake targets below). */
        if (accepted == 0)
            fail_msg("%s (%08x): no table takes its debug offsets", bins[i].label, hex);
    }
}

static const PyLayout *table_for(uint32_t hex, bool debug, const char *source_part)
{
    const PyLayout *cands[8];
    const char *why;
    size_t n = pylayout_find(hex, debug, false, cands, 8, &why);
    for (size_t i = 0; i < n; i++)
        if (!source_part || strstr(cands[i]->source, source_part))
            return cands[i];
    return NULL;
}

/* The debug offsets image a target of table t would carry. */
static void make_image(const PyLayout *t, uint32_t hex, uint8_t *img, size_t size)
{
    const typeof(t->debug_offsets) *d = &t->debug_offsets;
    assert_true(d->size <= size);
    memset(img, 0, size);
    memcpy(img, "xdebugpy", 8);
    wr64(img, d->version, hex);
    wr64(img, d->runtime_size, t->runtime.size);
    wr64(img, d->runtime_finalizing, t->runtime.finalizing);
    wr64(img, d->runtime_interpreters_head, t->runtime.interpreters_head);
    wr64(img, d->interp_size, t->interp.size);
    wr64(img, d->interp_id, t->interp.id);
    wr64(img, d->interp_next, t->interp.next);
    wr64(img, d->interp_threads_head, t->interp.threads_head);
    wr64(img, d->interp_gc, t->interp.gc);
    wr64(img, d->tstate_size, t->tstate.size);
    wr64(img, d->tstate_next, t->tstate.next);
    wr64(img, d->gc_size, t->gc.size);
    wr64(img, d->gc_collecting, t->gc.collecting);
    if (d->gc_generation_stats != PYL_NONE) {
        wr64(img, d->gc_generation_stats_size, t->gc.stats_size);
        wr64(img, d->gc_generation_stats, t->gc.stats);
    }
    wr64(img, d->pyobject_size, 16);
    wr64(img, d->pyobject_ob_type, t->object.ob_type);
    wr64(img, d->type_size, 416);
    wr64(img, d->type_tp_name, t->object.tp_name);
    wr64(img, d->type_tp_flags, t->object.tp_flags);
    wr64(img, d->list_size, 40);
    wr64(img, d->list_ob_size, t->object.ob_size);
    wr64(img, d->iframe_size, 80);
    wr64(img, d->iframe_executable, t->sizes.iframe_code);
}

static void patch_release_sizes_are_accepted(void **state)
{
    /* 3.13.5 -> 3.13.18 grew the runtime by 32 bytes, the interpreter and the thread state by 8;
     * no field pymemd reads moved. */
    const PyLayout *t = table_for(0x030d05f0, false, "Debian");
    assert_non_null(t);
    uint8_t img[2048];
    make_image(t, 0x030d12f0, img, sizeof(img));
    const typeof(t->debug_offsets) *d = &t->debug_offsets;
    wr64(img, d->runtime_size, t->runtime.size + 32);
    wr64(img, d->interp_size, t->interp.size + 8);
    wr64(img, d->tstate_size, t->tstate.size + 8);
    PyLayout l = *t;
    assert_int_equal(pyloc_apply_debug_offsets(&l, img, sizeof(img)), 0);
    assert_int_equal(l.runtime.size, t->runtime.size + 32);
    assert_int_equal(l.interp.size, t->interp.size + 8);
    assert_int_equal(l.tstate.size, t->tstate.size + 8);
    /* A field that moved is followed, and interpreters.main moves with interpreters.head. */
    wr64(img, d->runtime_interpreters_head, t->runtime.interpreters_head + 24);
    l = *t;
    assert_int_equal(pyloc_apply_debug_offsets(&l, img, sizeof(img)), 2);
    assert_int_equal(l.runtime.interpreters_head, t->runtime.interpreters_head + 24);
    assert_int_equal(l.runtime.interpreters_main, t->runtime.interpreters_main + 24);
}

static void corrupt_images_are_refused(void **state)
{
    const PyLayout *t = table_for(0x030d05f0, false, "Debian");
    assert_non_null(t);
    uint8_t img[2048];
    make_image(t, 0x030d05f0, img, sizeof(img));
    const typeof(t->debug_offsets) *d = &t->debug_offsets;

    struct {
        uint32_t where;
        uint64_t value;
    } bad[] = {
        {0, 0x4141414141414141ull},               /* cookie */
        {d->interp_gc, 1u << 30},                 /* the GC state outside the interpreter */
        {d->interp_size, t->interp.gc + 8},       /* an interpreter too small for its GC state */
        {d->interp_size, 0},                      /* a zero-sized interpreter */
        {d->interp_size, 64u << 20},              /* an absurdly large one */
        {d->tstate_next, UINT64_MAX - 4},         /* overflowing offset + width */
        {d->gc_collecting, 1u << 20},             /* outside the GC state */
        {d->type_tp_flags, 416},                  /* just outside the type object */
        {d->list_ob_size, 36},                    /* straddling the end of a list */
        {d->runtime_interpreters_head, 1u << 28}, /* outside the runtime */
        {d->runtime_size, t->runtime.interpreters_main}, /* main interpreter outside it */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t copy[2048];
        memcpy(copy, img, sizeof(copy));
        wr64(copy, bad[i].where, bad[i].value);
        PyLayout l = *t;
        if (pyloc_apply_debug_offsets(&l, copy, sizeof(copy)) != -EINVAL)
            fail_msg("corruption %zu was accepted", i);
        /* All or nothing: the table is untouched. */
        assert_memory_equal(&l, t, sizeof(l));
    }
    /* A GC state of another size is valid, but not this table's. */
    uint8_t copy[2048];
    memcpy(copy, img, sizeof(copy));
    wr64(copy, d->gc_size, t->gc.size + 24);
    PyLayout l = *t;
    assert_int_equal(pyloc_apply_debug_offsets(&l, copy, sizeof(copy)), -ENXIO);
    /* Too short an image. */
    assert_int_equal(pyloc_apply_debug_offsets(&l, img, d->size - 1), -EINVAL);
}

/* A fake target laid out by table t: runtime, one interpreter, a GC state whose generation 0
 * holds three objects, pymalloc's state behind the interpreter's pointer. */
#define RT_ADDR     0x10000000000ull
#define IS_ADDR     0x20000000000ull
#define HEAP_ADDR   0x30000000000ull
#define OBM_ADDR    0x40000000000ull
#define ARENAS_ADDR 0x50000000000ull

typedef struct Fake {
    uint8_t *rt, *is, *heap, *obm, *arenas;
    Rmem *r;
    Maps *maps;
    const PyLayout *t;
} Fake;

static void put64(uint8_t *buf, uint64_t off, uint64_t v)
{
    memcpy(buf + off, &v, 8);
}

static void put32(uint8_t *buf, uint64_t off, uint32_t v)
{
    memcpy(buf + off, &v, 4);
}

static void fake_new(Fake *f, const PyLayout *t, uint32_t hex)
{
    memset(f, 0, sizeof(*f));
    f->t = t;
    f->rt = calloc(1, t->runtime.size);
    f->is = calloc(1, t->interp.size);
    f->heap = calloc(1, 4096);
    f->obm = calloc(1, t->obmalloc.state_size);
    f->arenas = calloc(16, t->obmalloc.arena_object_size);
    assert_non_null(f->rt);
    make_image(t, hex, f->rt, 2048);
    put64(f->rt, t->runtime.interpreters_head, IS_ADDR);
    put64(f->rt, t->runtime.interpreters_main, IS_ADDR);
    uint64_t gc = t->interp.gc;
    put32(f->is, gc + t->gc.enabled, 1);
    int thresholds[3] = {2000, 10, 10};
    for (uint32_t g = 0; g <= 3; g++) {
        uint64_t off = g < 3 ? gc + t->gc.generations + g * t->gc.generation_size
                             : gc + t->gc.permanent_generation;
        uint64_t self = IS_ADDR + off;
        if (g < 3)
            put32(f->is, off + t->gc.generation_threshold, (uint32_t)thresholds[g]);
        if (g != 0) {
            put64(f->is, off, self);
            put64(f->is, off + 8, self);
            continue;
        }
        /* head <-> node0 <-> node1 <-> node2 <-> head; objects 64 bytes apart. */
        uint64_t node[3] = {HEAP_ADDR, HEAP_ADDR + 64, HEAP_ADDR + 128};
        put64(f->is, off, node[0]);
        put64(f->is, off + 8, node[2]);
        for (int i = 0; i < 3; i++) {
            put64(f->heap, node[i] - HEAP_ADDR, i < 2 ? node[i + 1] : self);
            put64(f->heap, node[i] - HEAP_ADDR + 8, i > 0 ? node[i - 1] : self);
        }
    }
    put64(f->is, t->interp.obmalloc, OBM_ADDR);
    put64(f->obm, t->obmalloc.narenas_currently_allocated, 2);
    put64(f->obm, t->obmalloc.narenas_highwater, 3);
    put64(f->obm, t->obmalloc.arenas, ARENAS_ADDR);
    put32(f->obm, t->obmalloc.maxarenas, 16);
    put64(f->obm, t->obmalloc.raw_allocated_blocks, 5);

    assert_int_equal(rmem_fake_new(&f->r), 0);
    rmem_fake_add(f->r, RT_ADDR, f->rt, t->runtime.size);
    rmem_fake_add(f->r, IS_ADDR, f->is, t->interp.size);
    rmem_fake_add(f->r, HEAP_ADDR, f->heap, 4096);
    rmem_fake_add(f->r, OBM_ADDR, f->obm, t->obmalloc.state_size);
    rmem_fake_add(f->r, ARENAS_ADDR, f->arenas, 16 * t->obmalloc.arena_object_size);
    char text[1024];
    snprintf(text, sizeof(text),
             "%llx-%llx rw-p 00000000 00:00 0\n%llx-%llx rw-p 00000000 00:00 0\n"
             "%llx-%llx rw-p 00000000 00:00 0\n%llx-%llx rw-p 00000000 00:00 0\n"
             "%llx-%llx rw-p 00000000 00:00 0\n",
             RT_ADDR, RT_ADDR + ((t->runtime.size + 4095) & ~4095u), IS_ADDR,
             IS_ADDR + ((t->interp.size + 4095) & ~4095u), HEAP_ADDR, HEAP_ADDR + 4096, OBM_ADDR,
             OBM_ADDR + ((t->obmalloc.state_size + 4095) & ~4095u), ARENAS_ADDR,
             ARENAS_ADDR + 4096);
    assert_int_equal(maps_parse(text, &f->maps), 0);
}

static void fake_free(Fake *f)
{
    rmem_free(f->r);
    maps_free(f->maps);
    free(f->rt);
    free(f->is);
    free(f->heap);
    free(f->obm);
    free(f->arenas);
}

static void choose(Fake *f, uint32_t hex, bool debug, PyLoc *loc)
{
    const PyLayout *cands[8];
    const char *why;
    size_t n = pylayout_find(hex, debug, false, cands, 8, &why);
    assert_true(n > 0);
    memset(loc, 0, sizeof(*loc));
    loc->runtime = RT_ADDR;
    loc->version_source = "debug offsets";
    pylayout_format_version(hex, loc->version, sizeof(loc->version));
    assert_int_equal(pyloc_choose_layout(loc, cands, n, f->rt, 2048, f->r, f->maps), 0);
}

static void the_live_target_picks_between_two_layouts(void **state)
{
    /* Debian's 3.13 (generations at 20) and upstream's (at 24): same version, same sizes. */
    const char *which[] = {"Debian", "upstream"};
    for (int w = 0; w < 2; w++) {
        const PyLayout *t = table_for(0x030d12f0, false, which[w]);
        assert_non_null(t);
        Fake f;
        fake_new(&f, t, 0x030d12f0);
        PyLoc loc;
        choose(&f, 0x030d12f0, false, &loc);
        if (loc.status != PYLOC_OK)
            fail_msg("%s: %s", which[w], loc.reason);
        assert_non_null(strstr(loc.layout.source, which[w]));
        assert_int_equal(loc.layout.gc.generations, t->gc.generations);
        assert_true(loc.obmalloc_ok);
        /* A busy target: an object is being linked in, its predecessor not yet updated. One side
         * of the list agreeing is enough. */
        put64(f.heap, 64 + 8, HEAP_ADDR + 128);
        choose(&f, 0x030d12f0, false, &loc);
        assert_int_equal(loc.status, PYLOC_OK);
        assert_non_null(strstr(loc.layout.source, which[w]));
        fake_free(&f);
    }
}

static void a_layout_that_does_not_check_out_is_refused_naming_both(void **state)
{
    const PyLayout *t = table_for(0x030d12f0, false, "Debian");
    Fake f;
    fake_new(&f, t, 0x030d12f0);
    /* Generation 0's first object names another predecessor than the head, its last another
     * successor: a list neither way. */
    put64(f.heap, 0 + 8, HEAP_ADDR + 128);
    put64(f.heap, 128, HEAP_ADDR + 64);
    PyLoc loc;
    choose(&f, 0x030d12f0, false, &loc);
    assert_int_equal(loc.status, PYLOC_UNSUPPORTED);
    assert_non_null(strstr(loc.reason, "Debian"));
    assert_non_null(strstr(loc.reason, "upstream"));
    assert_non_null(strstr(loc.reason, "generation 0"));
    fake_free(&f);

    /* The interpreter list that does not reach the main interpreter. */
    fake_new(&f, t, 0x030d12f0);
    put64(f.rt, t->runtime.interpreters_main, IS_ADDR + 8);
    choose(&f, 0x030d12f0, false, &loc);
    assert_int_equal(loc.status, PYLOC_UNSUPPORTED);
    assert_non_null(strstr(loc.reason, "main interpreter"));
    fake_free(&f);

    /* A collection that never ends (links mid-splice): not a verdict, try again later. */
    fake_new(&f, t, 0x030d12f0);
    put64(f.heap, 0 + 8, HEAP_ADDR + 128);
    put32(f.is, t->interp.gc + t->gc.collecting, 1);
    const PyLayout *cands[8];
    const char *why;
    size_t n = pylayout_find(0x030d12f0, false, false, cands, 8, &why);
    memset(&loc, 0, sizeof(loc));
    loc.runtime = RT_ADDR;
    assert_int_equal(pyloc_choose_layout(&loc, cands, n, f.rt, 2048, f.r, f.maps), -EAGAIN);
    fake_free(&f);

    /* GC flags out of range. */
    fake_new(&f, t, 0x030d12f0);
    put32(f.is, t->interp.gc + t->gc.enabled, 7);
    choose(&f, 0x030d12f0, false, &loc);
    assert_int_equal(loc.status, PYLOC_UNSUPPORTED);
    assert_non_null(strstr(loc.reason, "enabled 7"));
    fake_free(&f);
}

static void pymalloc_is_refused_alone(void **state)
{
    const PyLayout *t = table_for(0x030f02f0, false, "3.15.2");
    assert_non_null(t);
    Fake f;
    fake_new(&f, t, 0x030f02f0);
    /* 3.15: the GC stats behind their pointer. */
    uint8_t *stats = calloc(1, t->gc.stats_size);
    rmem_fake_add(f.r, HEAP_ADDR + 2048, stats, t->gc.stats_size);
    put64(f.is, t->interp.gc + t->gc.stats, HEAP_ADDR + 2048);
    /* More arenas in use than ever were: not a pymalloc state. */
    put64(f.obm, t->obmalloc.narenas_currently_allocated, 9);
    PyLoc loc;
    choose(&f, 0x030f02f0, false, &loc);
    if (loc.status != PYLOC_OK)
        fail_msg("%s", loc.reason);
    /* Among 3.15.0's and 3.15.2's tables the stats size picked 3.15.2's. */
    assert_int_equal(loc.layout.gc.stats_size, t->gc.stats_size);
    assert_false(loc.obmalloc_ok);
    assert_non_null(strstr(loc.obmalloc_reason, "does not check out"));
    fake_free(&f);
    free(stats);
}

/* The free-threaded 3.13t binary's own debug offsets: its flag is set, they pick the 3.13t table
 * (whose GC state is the free-threaded one) and agree with it, and its thread states are larger
 * than the PyThreadState they declare, with the allocation count in between. */
static void free_threaded_image(void **state)
{
    Binary bins[MAX_BINARIES];
    size_t n = find_binaries(bins), i;
    for (i = 0; i < n && strcmp(bins[i].label, "upstream 3.13t") != 0; i++)
        ;
    if (i == n)
        skip();
    uint8_t img[2048];
    uint32_t hex;
    assert_int_equal(load_image(bins[i].path, img, sizeof(img), &hex), 0);
    assert_memory_equal(img, "xdebugpy", 8);
    uint64_t ft;
    memcpy(&ft, img + 16, 8);
    assert_int_equal(ft, 1);
    const PyLayout *cands[8];
    const char *why = NULL;
    size_t nc = pylayout_find(hex, false, true, cands, 8, &why);
    if (nc == 0)
        fail_msg("3.13t (%08x): %s", hex, why);
    assert_int_equal(nc, 1);
    const PyLayout *t = cands[0];
    assert_true(t->free_threaded);
    assert_string_equal(t->name, "3.13t");
    assert_int_equal(t->debug_offsets.free_threaded, 16);
    PyLayout l = *t;
    assert_int_equal(pyloc_apply_debug_offsets(&l, img, sizeof(img)), 0);
    assert_true(l.tstate.size <= l.tstate.alloc_count);
    assert_true(l.tstate.alloc_count + 8 <= l.tstate.impl_size);
    /* Read as if it were a default build, the image never gets the free-threaded table. */
    nc = pylayout_find(hex, false, false, cands, 8, &why);
    for (size_t k = 0; k < nc; k++)
        assert_false(cands[k]->free_threaded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(real_images_are_taken_over_the_tables),
        cmocka_unit_test(patch_release_sizes_are_accepted),
        cmocka_unit_test(corrupt_images_are_refused),
        cmocka_unit_test(the_live_target_picks_between_two_layouts),
        cmocka_unit_test(a_layout_that_does_not_check_out_is_refused_naming_both),
        cmocka_unit_test(pymalloc_is_refused_alone),
        cmocka_unit_test(free_threaded_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
