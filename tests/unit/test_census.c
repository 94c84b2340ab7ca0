/* census against the fake interpreter: the bounds it checks before anything is copied.
 *
 * The walk itself is tested against real interpreters (tests/census, the integration matrix);
 * these pin what must hold for any target, hostile ones included: a census sizes nothing from
 * an arena table its mappings cannot hold, and uses no more of pymemd's memory than
 * census_max_memory; a free-threaded target whose heaps do not check out is refused with the
 * reason. Non-blocking mode (or a
 * refusal before anything is stopped): no process is needed. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../fuzz/fakeheap.h"
#include "fakepy.h"
#include "python/census.h"

/* A fake that has been sampled once, as census_take requires. */
static PyReader *sampled(Fake *f)
{
    PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&f->loc, &pr), 0);
    PySample s;
    pyreader_sample(pr, f->r, 0.0, false, &s);
    return pr;
}

/* The forgery of issue 11: 2,048 arenas claimed over the one real MiB (it made pymemd copy
 * 2.1 GB per census). Refused before any buffer is sized, with the reason. */
static void forged_arena_table_is_refused(void **state)
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
    _cleanup_(pyreader_freep) PyReader *pr = sampled(&f);
    rmem_fake_add(f.r, ARENAS + 0x100000, table, (size_t)n * asz);
    put64(f.obm, l->obmalloc.arenas, ARENAS + 0x100000);
    put32(f.obm, l->obmalloc.maxarenas, n);
    CensusHints *hints = NULL;
    Census *c = NULL;
    char err[300] = "";
    assert_int_equal(
        census_take(pr, f.r, 0, NULL, CENSUS_NONBLOCKING, 1.0, &hints, &c, err, sizeof(err)),
        -ERANGE);
    assert_null(c);
    assert_non_null(strstr(err, "refused"));
    assert_non_null(strstr(err, "has not mapped"));
    censushints_free(hints);
    rmem_free(f.r);
    f.r = NULL;
    free(table);
    fake_free(&f);
}

/* A census whose arenas alone exceed census_max_memory is refused before anything is copied,
 * and says how much it would have needed. */
static void census_over_the_cap_is_refused(void **state)
{
    Fake f;
    fake_build(&f, "3.12");
    _cleanup_(pyreader_freep) PyReader *pr = sampled(&f);
    uint64_t old = census_max_memory();
    assert_true(old == CENSUS_MAX_MEMORY_DEFAULT);
    /* The fake's arenas use 4 pools: one pool less than that is too little. */
    census_set_max_memory(3 * f.l->obmalloc.pool_size);
    CensusHints *hints = NULL;
    Census *c = NULL;
    char err[300] = "";
    assert_int_equal(
        census_take(pr, f.r, 0, NULL, CENSUS_NONBLOCKING, 1.0, &hints, &c, err, sizeof(err)),
        -E2BIG);
    assert_null(c);
    assert_non_null(strstr(err, "more than census_max_memory"));
    census_set_max_memory(old);
    censushints_free(hints);
    fake_free(&f);
}

/* A free-threaded 3.13t target whose mimalloc heaps are not where its layout table says (the
 * fake has no heaps in its thread states): the census is unavailable, in the words the JSON's
 * objects_error carries, with what did not check out; nothing is counted. */
static void free_threaded_unchecked_heaps_are_refused(void **state)
{
    if (!table("3.13t")) {
        skip(); /* layouts.c generated without upstream-pythons.sh's 3.13t */
        return;
    }
    Fake f;
    fake_build(&f, "3.13t");
    _cleanup_(pyreader_freep) PyReader *pr = sampled(&f);

    CensusHints *hints = NULL;
    Census *c = NULL;
    char err[300] = "";
    assert_int_equal(
        census_take(pr, f.r, 0, NULL, CENSUS_NONBLOCKING, 1.0, &hints, &c, err, sizeof(err)), -EIO);
    assert_non_null(strstr(err, "census unavailable"));
    assert_non_null(strstr(err, "do not check out"));
    assert_non_null(strstr(err, "not mapped"));
    assert_null(c);
    censushints_free(hints);
    fake_free(&f);
}

/* Keys of same-named types: stable for one type, distinct for two, and without the address in
 * any spelling. */
static void type_keys_hide_addresses(void **state)
{
    const uint64_t a = 0x55d206c5e950, b = 0x55d206c5f1a0;
    char ka[64], ka2[64], kb[64], hex[32];
    assert_int_equal(census_type_key("Dup", a, ka, sizeof(ka)), 16);
    census_type_key("Dup", a, ka2, sizeof(ka2));
    census_type_key("Dup", b, kb, sizeof(kb));
    assert_string_equal(ka, ka2);
    assert_string_not_equal(ka, kb);
    assert_int_equal(strncmp(ka, "Dup~", 4), 0);
    assert_int_equal(strspn(ka + 4, "0123456789abcdef"), 12);
    for (const uint64_t *t = (const uint64_t[]){a, b, 0}; *t; t++) {
        snprintf(hex, sizeof(hex), "%" PRIx64, *t);
        assert_null(strstr(ka, hex));
        assert_null(strstr(kb, hex));
        /* Not even its low 24 bits, which ASLR leaves partly fixed. */
        snprintf(hex, sizeof(hex), "%06" PRIx64, *t & 0xffffff);
        assert_null(strstr(ka + 4, hex));
    }
    assert_null(strstr(ka, "0x"));
}

/* Found by tests/fuzz/fuzz_heap: an object whose ob_size, times its type's item size, passes
 * what an int64_t holds (or is INT64_MIN) made the byte count overflow (undefined behaviour).
 * The fuzzer's seed heap (three Leaky, a list) with one Leaky given items of 256 bytes and a
 * forged length: the census is refused as not holding together, whatever the layout. */
static void forged_object_length_is_refused(void **state)
{
    const int64_t forged[] = {INT64_C(72057591588590845), INT64_MIN, INT64_MAX,
                              (INT64_C(1) << 40) / 256 + 1};
    for (size_t t = 0; t < pylayout_ntables; t++) {
        const PyLayout *l = &pylayout_tables[t];
        if (l->free_threaded)
            continue;
        for (size_t i = 0; i < ARRAY_SIZE(forged) + 1; i++) {
            uint8_t *in = NULL;
            size_t len = 0;
            assert_int_equal(fakeheap_seed(l, &in, &len), 0);
            if (!in)
                return; /* not reached: for gcc's -Wnull-dereference */
            uint8_t *heap = in + 2 + in[1] * FH_PATCH_SIZE;
            put64(heap, FH_LEAKY + l->object.tp_itemsize, 256);
            /* The last case: a length that fits, 1 TiB of items exactly. */
            int64_t n = i < ARRAY_SIZE(forged) ? forged[i] : (INT64_C(1) << 40) / 256;
            put64(heap, FH_OBJS + l->gc.head_size + l->object.ob_size, (uint64_t)n);
            FakeHeap f;
            assert_int_equal(fakeheap_from_input(&f, in, len), 0);
            PyReader *pr = NULL;
            assert_int_equal(pyreader_new(&f.loc, &pr), 0);
            PySample s;
            assert_int_equal(pyreader_sample(pr, f.r, 0.0, true, &s), 0);
            CensusHints *hints = NULL;
            Census *c = NULL;
            char err[300] = "";
            int k = census_take(pr, f.r, 0, NULL, CENSUS_NONBLOCKING, 1.0, &hints, &c, err,
                                sizeof(err));
            if (i < ARRAY_SIZE(forged)) {
                assert_int_equal(k, -EIO);
                assert_null(c);
                assert_non_null(strstr(err, "inconsistent"));
            } else {
                if (k != 0)
                    fail_msg("%s: %s", l->name, err);
                assert_string_equal(c->types[1].name, "Leaky");
                assert_int_equal(c->types[1].count, 3);
                /* 16 bytes of basic size and the GC header each, and the items of the one. */
                assert_int_equal(c->types[1].bytes,
                                 3 * (16 + (int64_t)l->gc.head_size) + (INT64_C(1) << 40));
                census_free(c);
            }
            censushints_free(hints);
            pyreader_free(pr);
            fakeheap_free(&f);
            free(in);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forged_arena_table_is_refused),
        cmocka_unit_test(census_over_the_cap_is_refused),
        cmocka_unit_test(free_threaded_unchecked_heaps_are_refused),
        cmocka_unit_test(type_keys_hide_addresses),
        cmocka_unit_test(forged_object_length_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
