/* layout: the table lookup, the only code that compares versions, and the generated tables'
 * internal consistency. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "python/layout.h"

static size_t find(uint32_t hex, bool debug, bool ft, const PyLayout **cands, const char **why)
{
    *why = NULL;
    return pylayout_find(hex, debug, ft, cands, 16, why);
}

static void every_table_is_found_by_its_own_version_and_build(void **state)
{
    for (size_t i = 0; i < pylayout_ntables; i++) {
        const PyLayout *t = &pylayout_tables[i];
        const PyLayout *cands[16];
        const char *why;
        size_t n = find(t->hex_min | 0xf0, t->debug, t->free_threaded, cands, &why);
        bool seen = false;
        for (size_t k = 0; k < n; k++) {
            seen = seen || cands[k] == t;
            /* Only tables of the same build are candidates. */
            assert_int_equal(cands[k]->debug, t->debug);
            assert_int_equal(cands[k]->free_threaded, t->free_threaded);
        }
        if (!seen)
            fail_msg("table %s [%s] not found by its own version", t->name, t->source);
        /* Candidates of one version and build may only differ where the target can tell them
         * apart: the debug offsets' layout is the same, so one read of the image serves all. */
        for (size_t k = 0; k < n; k++)
            assert_memory_equal(&cands[k]->debug_offsets, &t->debug_offsets,
                                sizeof(t->debug_offsets));
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
        assert_true(t->runtime.interpreters_head < t->runtime.interpreters_main);
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
        if (t->free_threaded) {
            assert_true(t->tstate.alloc_count >= t->tstate.size);
            assert_true(t->tstate.alloc_count + 8 <= t->tstate.impl_size);
            assert_int_equal(t->obmalloc.kind, PYOBM_NONE);
        } else {
            assert_int_equal(t->tstate.alloc_count, 0);
        }
        /* 3.13+: every value pymemd takes from the target has a place in the debug offsets. */
        if (t->hex_min >= 0x030d0000u) {
            assert_true(t->debug_offsets.size > 0);
            assert_int_not_equal(t->debug_offsets.interp_gc, PYL_NONE);
            assert_int_not_equal(t->debug_offsets.type_tp_flags, PYL_NONE);
            assert_int_not_equal(t->debug_offsets.list_ob_size, PYL_NONE);
            assert_true(t->debug_offsets.iframe_executable + 8 <= t->debug_offsets.size);
        }
    }
}

static void versions_with_several_layouts(void **state)
{
    const PyLayout *c[16];
    const char *why;
    /* 3.13: upstream's PyGC_Head alignment and Debian's; the live target decides. */
    size_t n = find(0x030d12f0, false, false, c, &why);
    assert_int_equal(n, 2);
    assert_int_not_equal(c[0]->gc.generations, c[1]->gc.generations);
    /* 3.15: 3.15.0's GC stats (no update_seq) and 3.15.2's; their sizes differ. */
    n = find(0x030f00f0, false, false, c, &why);
    assert_int_equal(n, 2);
    assert_int_not_equal(c[0]->gc.stats_size, c[1]->gc.stats_size);
    /* A debug build has its own table, release tables are not offered for it. */
    n = find(0x030d12f0, true, false, c, &why);
    assert_int_equal(n, 1);
    assert_true(c[0]->debug);
    /* A patch release pymemd never saw is served by its minor's tables. */
    n = find(0x030d63f0, false, false, c, &why);
    assert_int_equal(n, 2);
}

static void unsupported_versions_say_why(void **state)
{
    const PyLayout *c[16];
    const char *why;
    assert_int_equal(find(0x030710f0, false, false, c, &why), 0);
    assert_non_null(strstr(why, "older than 3.8"));
    assert_int_equal(find(0x030e02f0, false, false, c, &why), 0);
    assert_non_null(strstr(why, "3.14.0-3.14.4"));
    assert_int_equal(find(0x030e04f0, true, false, c, &why), 0);
    assert_non_null(strstr(why, "incremental"));
    assert_int_equal(find(0x030c01f0, true, false, c, &why), 0);
    assert_non_null(strstr(why, "debug builds"));
    assert_int_equal(find(0x030b07f0, false, true, c, &why), 0);
    assert_non_null(strstr(why, "free-threaded"));
    /* Free-threaded builds other than 3.13t have no table; a build's kind is never taken for
     * the other's. */
    assert_int_equal(find(0x030e0af0, false, true, c, &why), 0);
    assert_non_null(strstr(why, "free-threaded"));
    /* An unknown minor is refused, never served by the newest table. */
    assert_int_equal(find(0x031000f0, false, false, c, &why), 0);
    assert_non_null(strstr(why, "newer"));
}

/* The free-threaded 3.13 table is found only for a target that says it is free-threaded, and a
 * default build's sizes never pick it (nor the reverse). */
/* The free-threaded 3.13 table is offered only to a target that says it is free-threaded, and
 * only it is offered to one. */
static void free_threaded_has_its_own_table(void **state)
{
    const PyLayout *ft = NULL;
    for (size_t i = 0; i < pylayout_ntables; i++)
        if (pylayout_tables[i].hex_min >> 16 == 0x030d && pylayout_tables[i].free_threaded)
            ft = &pylayout_tables[i];
    if (!ft) {
        skip(); /* generated without upstream-pythons.sh's 3.13t */
        return;
    }
    assert_string_equal(ft->name, "3.13t");
    const PyLayout *c[16];
    const char *why;
    size_t n = find(0x030d0ff0, false, true, c, &why);
    assert_int_equal(n, 1);
    assert_ptr_equal(c[0], ft);
    n = find(0x030d0ff0, false, false, c, &why);
    for (size_t k = 0; k < n; k++)
        assert_false(c[k]->free_threaded);
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
        cmocka_unit_test(every_table_is_found_by_its_own_version_and_build),
        cmocka_unit_test(tables_hold_together),
        cmocka_unit_test(versions_with_several_layouts),
        cmocka_unit_test(unsupported_versions_say_why),
        cmocka_unit_test(free_threaded_has_its_own_table),
        cmocka_unit_test(format_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
