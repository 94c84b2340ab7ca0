/* layout: the table lookup, the only code that compares versions, and the generated tables'
 * internal consistency. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "python/layout.h"

static PyLayoutFingerprint fp_of(const PyLayout *t)
{
    return (PyLayoutFingerprint){t->runtime.size, t->interp.size, t->gc.size};
}

static void every_table_is_found_by_its_own_version(void **state)
{
    for (size_t i = 0; i < pylayout_ntables; i++) {
        const PyLayout *t = &pylayout_tables[i];
        const char *why = NULL;
        PyLayoutFingerprint fp = fp_of(t);
        const PyLayout *got = pylayout_find(t->hex_min | 0xf0, t->debug_offsets.size ? &fp : NULL,
                                            t->gc.free_threaded, &why);
        assert_ptr_equal(got, t);
    }
}

static void tables_hold_together(void **state)
{
    for (size_t i = 0; i < pylayout_ntables; i++) {
        const PyLayout *t = &pylayout_tables[i];
        assert_true(t->hex_min <= t->hex_max);
        assert_int_equal(t->gc.ngenerations, 3);
        assert_true(t->gc.generations + 3 * t->gc.generation_size <= t->gc.size);
        assert_true(t->gc.collecting + 4 <= t->gc.size);
        assert_true(t->gc.permanent_generation + 16 <= t->gc.size);
        assert_true(t->runtime.interpreters_main + 8 <= t->runtime.size);
        assert_true(t->interp.threads_head + 8 <= t->interp.size);
        if (t->interp.gc != PYL_NONE)
            assert_true(t->interp.gc + t->gc.size <= t->interp.size);
        else
            assert_true(t->runtime.gc + t->gc.size <= t->runtime.size);
        if (t->gc.stats_kind == PYGCS_ARRAY) {
            assert_int_equal(t->gc.stats_size, 3 * t->gc.stats_entry_size);
            assert_true(t->gc.stats + t->gc.stats_size <= t->gc.size);
        } else {
            for (int g = 0; g < 3; g++)
                assert_true(t->gc.stats_ring[g].offset +
                                t->gc.stats_ring[g].len * t->gc.stats_entry_size <=
                            t->gc.stats_size);
        }
        /* pymalloc's geometry: pools tile an arena. */
        if (t->obmalloc.kind != PYOBM_NONE)
            assert_int_equal(t->obmalloc.arena_size % t->obmalloc.pool_size, 0);
        /* Free-threaded: the per-thread count lies in _PyThreadStateImpl, past PyThreadState;
         * there is no pymalloc. Other builds have neither. */
        if (t->gc.free_threaded) {
            assert_true(t->tstate.alloc_count >= t->tstate.size);
            assert_true(t->tstate.alloc_count + 8 <= t->tstate.impl_size);
            assert_int_equal(t->obmalloc.kind, PYOBM_NONE);
        } else {
            assert_int_equal(t->tstate.alloc_count, 0);
        }
    }
}

static void unsupported_versions_say_why(void **state)
{
    const char *why = NULL;
    assert_null(pylayout_find(0x030710f0, NULL, false, &why));
    assert_non_null(strstr(why, "older than 3.8"));
    why = NULL;
    assert_null(pylayout_find(0x030e02f0, NULL, false, &why));
    assert_non_null(strstr(why, "3.14.0-3.14.4"));
    /* Told apart by the GC state size alone, too. */
    PyLayoutFingerprint inc = {316616, 225864, 240};
    why = NULL;
    assert_null(pylayout_find(0x030e0af0, &inc, false, &why));
    assert_non_null(strstr(why, "incremental"));
    /* Free-threaded builds other than 3.13t have no table; a build's kind is never taken for
     * the other's. */
    why = NULL;
    assert_null(pylayout_find(0x030e0af0, NULL, true, &why));
    assert_non_null(strstr(why, "free-threaded"));
    why = NULL;
    assert_null(pylayout_find(0x031000f0, NULL, false, &why));
    assert_non_null(strstr(why, "newer"));
    /* A 3.13 whose sizes match neither known 3.13 layout is refused, not guessed. */
    PyLayoutFingerprint odd = {1, 2, 240};
    why = NULL;
    assert_null(pylayout_find(0x030d07f0, &odd, false, &why));
    assert_non_null(strstr(why, "match no known layout"));
}

/* The free-threaded 3.13 table is found only for a target that says it is free-threaded, and a
 * default build's sizes never pick it (nor the reverse). */
static void free_threaded_has_its_own_table(void **state)
{
    const PyLayout *ft = NULL, *plain = NULL;
    for (size_t i = 0; i < pylayout_ntables; i++) {
        const PyLayout *t = &pylayout_tables[i];
        if (t->hex_min >> 16 != 0x030d)
            continue;
        if (t->gc.free_threaded)
            ft = t;
        else
            plain = t;
    }
    if (!ft) {
        skip(); /* generated without upstream-pythons.sh's 3.13t */
        return;
    }
    assert_non_null(plain);
    assert_string_equal(ft->name, "3.13t");
    const char *why = NULL;
    PyLayoutFingerprint fp = fp_of(ft);
    assert_ptr_equal(pylayout_find(0x030d0ff0, &fp, true, &why), ft);
    for (size_t i = 0; i < pylayout_ntables; i++) {
        const PyLayout *t = &pylayout_tables[i];
        if (t->hex_min >> 16 != 0x030d)
            continue;
        fp = fp_of(t);
        const PyLayout *as_default = pylayout_find(0x030d0ff0, &fp, false, &why);
        const PyLayout *as_ft = pylayout_find(0x030d0ff0, &fp, true, &why);
        assert_false(as_default && as_default->gc.free_threaded);
        assert_true(!as_ft || as_ft == ft);
    }
}

static void format_version(void **state)
{
    char buf[32];
    pylayout_format_version(0x030b02f0, buf, sizeof(buf));
    assert_string_equal(buf, "3.11.2");
    pylayout_format_version(0x030f00a3, buf, sizeof(buf));
    assert_string_equal(buf, "3.15.0a3");
    pylayout_format_version(0x030c00c1, buf, sizeof(buf));
    assert_string_equal(buf, "3.12.0rc1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_table_is_found_by_its_own_version),
        cmocka_unit_test(tables_hold_together),
        cmocka_unit_test(unsupported_versions_say_why),
        cmocka_unit_test(free_threaded_has_its_own_table),
        cmocka_unit_test(format_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
