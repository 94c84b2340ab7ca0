/* census: what is refused before anything is stopped or read. The walk itself is tested against
 * real interpreters (tests/census, the integration matrix): a fake built from the same table
 * could not catch a wrong one. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "python/census.h"

enum { RT = 0x10000000, IS = 0x20000000 };

static void put64(uint8_t *p, uint32_t off, uint64_t v)
{
    memcpy(p + off, &v, 8);
}

/* A free-threaded 3.13t target that has been sampled: a census says why there is none, in the
 * words the JSON's objects_error carries, and touches nothing. */
static void free_threaded_is_refused_with_its_reason(void **state)
{
    const PyLayout *l = NULL;
    for (size_t i = 0; i < pylayout_ntables && !l; i++)
        if (pylayout_tables[i].free_threaded)
            l = &pylayout_tables[i];
    if (!l) {
        skip(); /* layouts.c generated without upstream-pythons.sh's 3.13t */
        return;
    }
    uint8_t *rt = calloc(1, l->runtime.size), *is = calloc(1, l->interp.size);
    assert_non_null(rt);
    assert_non_null(is);
    put64(rt, l->runtime.interpreters_head, IS);
    put64(rt, l->runtime.interpreters_main, IS);
    memcpy(is + l->interp.gc + l->gc.enabled, &(int32_t){1}, 4);
    _cleanup_(rmem_freep) Rmem *r = NULL;
    assert_int_equal(rmem_fake_new(&r), 0);
    rmem_fake_add(r, RT, rt, l->runtime.size);
    rmem_fake_add(r, IS, is, l->interp.size);
    PyLoc loc = {.status = PYLOC_OK, .runtime = RT, .layout = *l};
    _cleanup_(pyreader_freep) PyReader *pr = NULL;
    assert_int_equal(pyreader_new(&loc, &pr), 0);
    PySample s;
    assert_int_equal(pyreader_sample(pr, r, 0.0, true, &s), 0);

    uint64_t calls = rmem_calls(r);
    CensusHints *hints = NULL;
    Census *c = NULL;
    char err[300] = "";
    assert_int_equal(census_take(pr, r, getpid(), CENSUS_FREEZE, 1.0, &hints, &c, err, sizeof(err)),
                     -EOPNOTSUPP);
    assert_string_equal(err, "object census of free-threaded builds is not supported yet");
    assert_null(c);
    assert_null(hints);
    assert_int_equal(rmem_calls(r), calls);
    free(rt);
    free(is);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(free_threaded_is_refused_with_its_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
