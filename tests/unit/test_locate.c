/* locate: a target's own _Py_DebugOffsets, as stored in real CPython binaries (the .PyRuntime
 * section holds their initial image), are accepted and agree with the generated tables; a
 * corrupted image is refused as a whole. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "elf/elffile.h"
#include "python/locate.h"

typedef struct Binary {
    const char *label;
    char path[512];
} Binary;

/* The 3.13+ binaries on this machine: pyenv's libpython3.13 and the Debian interpreters the
 * test setup unpacked. */
static size_t find_binaries(Binary *out, size_t max)
{
    size_t n = 0;
    const char *home = getenv("HOME") ? getenv("HOME") : "/root";
    const char *pyenv = getenv("PYENV_ROOT");
    char root[400];
    snprintf(root, sizeof(root), "%s", pyenv ? pyenv : "");
    if (!pyenv)
        snprintf(root, sizeof(root), "%s/.pyenv", home);
    const char *cache = getenv("PYMEMD_CACHE_DIR");
    char croot[400], uroot[400];
    if (cache)
        snprintf(croot, sizeof(croot), "%s/debian", cache);
    else
        snprintf(croot, sizeof(croot), "%s/.cache/pymemd/debian", home);
    /* tests/integration/upstream-pythons.sh's builds of python.org's 3.13 tarball. */
    if (cache)
        snprintf(uroot, sizeof(uroot), "%s/upstream", cache);
    else
        snprintf(uroot, sizeof(uroot), "%s/.cache/pymemd/upstream", home);
    struct {
        const char *label, *base, *rel;
    } cand[] = {
        {"pyenv 3.13.0", root, "/versions/3.13.0/lib/libpython3.13.so.1.0"},
        {"Debian 3.13", croot, "/root-trixie/usr/bin/python3.13"},
        {"Debian 3.14", croot, "/root-sid/usr/bin/python3.14"},
        {"Debian 3.15", croot, "/root-sid/usr/bin/python3.15"},
        {"upstream 3.13", uroot, "/build-3.13/python"},
        {"upstream 3.13t", uroot, "/build-3.13t/python"},
    };
    for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]) && n < max; i++) {
        snprintf(out[n].path, sizeof(out[n].path), "%s%s", cand[i].base, cand[i].rel);
        out[n].label = cand[i].label;
        FILE *f = fopen(out[n].path, "r");
        if (!f) {
            printf("SKIP %s: %s not found\n", cand[i].label, out[n].path);
            continue;
        }
        fclose(f);
        n++;
    }
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

static void real_images_match_tables(void **state)
{
    Binary bins[8];
    size_t n = find_binaries(bins, 8);
    if (n == 0)
        skip();
    for (size_t i = 0; i < n; i++) {
        uint8_t img[2048];
        uint32_t hex;
        assert_int_equal(load_image(bins[i].path, img, sizeof(img), &hex), 0);
        assert_memory_equal(img, "xdebugpy", 8);
        /* Any table of the version says where the sizes are; they pick the layout. */
        const PyLayout *any = NULL;
        for (size_t t = 0; t < pylayout_ntables && !any; t++)
            if (hex >= pylayout_tables[t].hex_min && hex <= pylayout_tables[t].hex_max)
                any = &pylayout_tables[t];
        assert_non_null(any);
        PyLayoutFingerprint fp = pylayout_fingerprint(any, img, sizeof(img));
        const char *why = NULL;
        uint64_t ft; /* after the cookie and the version, in every version's debug offsets */
        memcpy(&ft, img + 16, 8);
        const PyLayout *t = pylayout_find(hex, &fp, ft != 0, &why);
        if (!t)
            fail_msg("%s (%08x): %s", bins[i].label, hex, why);
        PyLayout l = *t;
        int changed = pyloc_apply_debug_offsets(&l, img, sizeof(img));
        printf("%s: %08x -> table %s (%s), %d values differ\n", bins[i].label, hex, t->name,
               t->source, changed);
        /* Generated from the same headers the binary was built from: nothing differs. */
        assert_int_equal(changed, 0);
    }
}

static void corrupt_images_are_refused(void **state)
{
    Binary bins[8];
    size_t n = find_binaries(bins, 8);
    if (n == 0)
        skip();
    uint8_t img[2048];
    uint32_t hex;
    assert_int_equal(load_image(bins[0].path, img, sizeof(img), &hex), 0);
    PyLayoutFingerprint fp = pylayout_fingerprint(&pylayout_tables[0], img, 0);
    assert_int_equal(fp.gc_size, 0); /* too short an image gives no fingerprint */
    const char *why;
    const PyLayout *any = NULL;
    for (size_t t = 0; t < pylayout_ntables && !any; t++)
        if (hex >= pylayout_tables[t].hex_min && hex <= pylayout_tables[t].hex_max)
            any = &pylayout_tables[t];
    fp = pylayout_fingerprint(any, img, sizeof(img));
    const PyLayout *t = pylayout_find(hex, &fp, false, &why);
    assert_non_null(t);
    const typeof(t->debug_offsets) *d = &t->debug_offsets;

    struct {
        uint32_t where;
        uint64_t value;
    } bad[] = {
        {0, 0x4141414141414141ull},       /* cookie */
        {d->interp_gc, 1u << 30},         /* the GC state outside the interpreter */
        {d->interp_size, 0},              /* a zero-sized interpreter */
        {d->interp_size, 64u << 20},      /* an absurdly large one */
        {d->tstate_next, UINT64_MAX - 4}, /* overflowing offset + width */
        {d->gc_collecting, 1u << 20},     /* outside the GC state */
        {d->gc_size, 8},                  /* a GC state smaller than pymemd reads */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t copy[2048];
        memcpy(copy, img, sizeof(copy));
        memcpy(copy + bad[i].where, &bad[i].value, 8);
        PyLayout l = *t;
        assert_int_equal(pyloc_apply_debug_offsets(&l, copy, sizeof(copy)), -EINVAL);
        /* All or nothing: the table is untouched. */
        assert_memory_equal(&l, t, sizeof(l));
    }
    /* A valid image that moves a field is followed, and the change counted. */
    uint8_t copy[2048];
    memcpy(copy, img, sizeof(copy));
    uint64_t next;
    memcpy(&next, copy + d->tstate_next, 8);
    next += 8;
    memcpy(copy + d->tstate_next, &next, 8);
    PyLayout l = *t;
    assert_int_equal(pyloc_apply_debug_offsets(&l, copy, sizeof(copy)), 1);
    assert_int_equal(l.tstate.next, next);
}

/* The free-threaded 3.13t binary's own debug offsets: its flag is set, they pick the 3.13t table
 * (whose GC state is the free-threaded one) and agree with it, and its thread states are larger
 * than the PyThreadState they declare, with the allocation count in between. */
static void free_threaded_image(void **state)
{
    Binary bins[8];
    size_t n = find_binaries(bins, 8), i;
    for (i = 0; i < n && strcmp(bins[i].label, "upstream 3.13t") != 0; i++)
        ;
    if (i == n)
        skip();
    uint8_t img[2048];
    uint32_t hex;
    assert_int_equal(load_image(bins[i].path, img, sizeof(img), &hex), 0);
    assert_memory_equal(img, "xdebugpy", 8);
    const PyLayout *any = NULL;
    for (size_t t = 0; t < pylayout_ntables && !any; t++)
        if (hex >= pylayout_tables[t].hex_min && hex <= pylayout_tables[t].hex_max)
            any = &pylayout_tables[t];
    assert_non_null(any);
    uint64_t ft;
    memcpy(&ft, img + 16, 8);
    assert_int_equal(ft, 1);
    PyLayoutFingerprint fp = pylayout_fingerprint(any, img, sizeof(img));
    const char *why = NULL;
    const PyLayout *t = pylayout_find(hex, &fp, true, &why);
    if (!t)
        fail_msg("3.13t (%08x): %s", hex, why);
    assert_true(t->gc.free_threaded);
    assert_string_equal(t->name, "3.13t");
    assert_int_equal(t->debug_offsets.free_threaded, 16);
    PyLayout l = *t;
    assert_int_equal(pyloc_apply_debug_offsets(&l, img, sizeof(img)), 0);
    assert_true(l.tstate.size <= l.tstate.alloc_count);
    assert_true(l.tstate.alloc_count + 8 <= l.tstate.impl_size);
    /* Read as if it were a default build, the image never gets the free-threaded table. */
    const PyLayout *d = pylayout_find(hex, &fp, false, &why);
    assert_false(d && d->gc.free_threaded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(real_images_match_tables),
        cmocka_unit_test(corrupt_images_are_refused),
        cmocka_unit_test(free_threaded_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
